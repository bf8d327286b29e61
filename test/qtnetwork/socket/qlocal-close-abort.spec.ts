/**
 * QLocalServer.close() and QLocalSocket.abort(): what they keep and what they emit.
 *
 * - QLocalServer.close() clears serverError()/errorString() when the server was listening
 *   and keeps them when it was not (Qt 5.15 and 6.4 alike, recorded with PyQt5 and PyQt6).
 *   A close() while a listen is still binding (Node binds asynchronously; Qt has no such
 *   moment) cancels that listen.
 * - QLocalSocket.abort() follows Qt 6.4 (the port's rule where Qt 5.15 and 6 differ;
 *   docs/qt-differences.md): the connection ends first (stateChanged(0),
 *   readChannelFinished, disconnected, the device still open), then the device closes
 *   (aboutToClose, openMode() NotOpen). Qt 5.15 emits aboutToClose first and keeps the
 *   device open. test/differential/fidelity-proxylocal.spec.ts compares these with real Qt.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { jest } from '@jest/globals';

import {
  LocalSocketState,
  OpenModeFlag,
  QLocalServer,
  QLocalSocket,
  SocketError,
} from '../../../lib/qtnetwork/index.js';
import {
  makeTempDir,
  recordLocalSignals,
  removeDir,
  uniqueLocalName,
} from '../../helpers/qlocal-helpers.js';
import { Resources } from '../../helpers/resources.js';
import { nextEmission } from '../../helpers/signals.js';

jest.setTimeout(10000);

const res = new Resources();
afterEach(() => res.dispose());

const IN_USE = 'QLocalServer::listen: Address in use';

function newServer(): QLocalServer {
  return res.server(new QLocalServer());
}

function newSocket(): QLocalSocket {
  return res.socket(new QLocalSocket());
}

/** A private directory with a regular file `busy` in it (listening there fails: in use). */
function workDir(): { dir: string; busy: string; free: string } {
  const dir = makeTempDir('close-abort');
  res.add(() => removeDir(dir));
  const busy = path.join(dir, 'busy');
  fs.writeFileSync(busy, '');
  return { dir, busy, free: path.join(dir, 'free') };
}

function errorOf(server: QLocalServer): [SocketError, string] {
  return [server.serverError(), server.errorString()];
}

describe('QLocalServer.close() and the last error', () => {
  it('failed listen, then a successful listen (error kept), then close(): the error is cleared', async () => {
    const { busy, free } = workDir();
    const server = newServer();
    expect(await server.listen(busy)).toBe(false);
    expect(errorOf(server)).toEqual([SocketError.AddressInUseError, IN_USE]);
    expect(await server.listen(free)).toBe(true);
    expect(errorOf(server)).toEqual([SocketError.AddressInUseError, IN_USE]);
    server.close();
    expect(errorOf(server)).toEqual([SocketError.UnknownSocketError, '']);
  });

  it('failed listen, then close() without listening: the error stays, also after a second close()', async () => {
    const { busy } = workDir();
    const server = newServer();
    expect(await server.listen(busy)).toBe(false);
    server.close();
    expect(errorOf(server)).toEqual([SocketError.AddressInUseError, IN_USE]);
    server.close();
    expect(errorOf(server)).toEqual([SocketError.AddressInUseError, IN_USE]);
  });

  it('close() while listen() is binding cancels it: false, not listening, no socket file, error untouched; the name can be listened on again', async () => {
    const { busy, free } = workDir();
    const server = newServer();
    expect(await server.listen(busy)).toBe(false);
    const pending = server.listen(free);
    server.close();
    expect(await pending).toBe(false);
    expect(server.isListening()).toBe(false);
    expect(server.serverName()).toBe('');
    expect(fs.existsSync(free)).toBe(false);
    expect(errorOf(server)).toEqual([SocketError.AddressInUseError, IN_USE]);
    expect(await server.listen(free)).toBe(true);
    expect(server.fullServerName()).toBe(free);
  });

  it('close() and a new listen() while the first still binds: only the second counts', async () => {
    const { dir, free } = workDir();
    const other = path.join(dir, 'other');
    const server = newServer();
    const first = server.listen(free);
    server.close();
    const second = server.listen(other);
    expect(await first).toBe(false);
    expect(await second).toBe(true);
    expect(server.isListening()).toBe(true);
    expect(server.fullServerName()).toBe(other);
    expect(fs.existsSync(free)).toBe(false);
    // The server accepts on the second name.
    const client = newSocket();
    client.connectToServer(other);
    expect(await client.waitForConnected(5000)).toBe(true);
  });
});

describe("QLocalSocket.abort() in Qt 6's order", () => {
  async function connectedClient(): Promise<{ client: QLocalSocket; peer: QLocalSocket }> {
    const name = uniqueLocalName('abort');
    res.add(() => QLocalServer.removeServer(name));
    const server = newServer();
    expect(await server.listen(name)).toBe(true);
    const client = newSocket();
    client.connectToServer(name);
    expect(await client.waitForConnected(5000)).toBe(true);
    if (!server.hasPendingConnections()) await server.waitForNewConnection(5000);
    const peer = res.socket(server.nextPendingConnection()!);
    return { client, peer };
  }

  it('connected: stateChanged(0), readChannelFinished, disconnected with the device still open, then aboutToClose in UnconnectedState; NotOpen after', async () => {
    const { client } = await connectedClient();
    const rec = recordLocalSignals(client);
    const mode = (): number => client.openMode();
    client.stateChanged.connect(() => rec.mark(`  openMode=${mode()}`));
    client.disconnected.connect(() => rec.mark(`  openMode=${mode()}`));
    client.aboutToClose.connect(() => rec.mark(`  state=${client.state()} openMode=${mode()}`));
    expect(client.write('abc')).toBe(3);
    client.abort();
    rec.mark('[abort returns]');
    const open = OpenModeFlag.ReadWrite | OpenModeFlag.Unbuffered;
    expect(rec.log).toEqual([
      'stateChanged(0)',
      `  openMode=${open}`,
      'readChannelFinished',
      'disconnected',
      `  openMode=${open}`,
      'aboutToClose',
      `  state=0 openMode=${open}`,
      '[abort returns]',
    ]);
    expect(client.openMode()).toBe(OpenModeFlag.NotOpen);
    expect(client.bytesToWrite()).toBe(0);
    expect(client.isValid()).toBe(false);
    client.abort();
    expect(rec.log.at(-1)).toBe('[abort returns]');
  });

  it('after the peer closed (Unconnected, still open): only aboutToClose, and the device closes', async () => {
    const { client, peer } = await connectedClient();
    const gone = nextEmission(client.disconnected, 5000);
    peer.abort();
    await gone;
    expect(client.state()).toBe(LocalSocketState.UnconnectedState);
    expect(client.isOpen()).toBe(true);
    const rec = recordLocalSignals(client);
    client.abort();
    expect(rec.log).toEqual(['aboutToClose']);
    expect(client.isOpen()).toBe(false);
  });

  it('after disconnectFromServer() completed (Unconnected, still open): only aboutToClose', async () => {
    const { client } = await connectedClient();
    const gone = nextEmission(client.disconnected, 5000);
    client.disconnectFromServer();
    await gone;
    expect(client.isOpen()).toBe(true);
    const rec = recordLocalSignals(client);
    client.abort();
    expect(rec.log).toEqual(['aboutToClose']);
    expect(client.isOpen()).toBe(false);
  });

  it('never connected: emits nothing', () => {
    const client = newSocket();
    const rec = recordLocalSignals(client);
    client.abort();
    expect(rec.log).toEqual([]);
  });

  it('while connecting (the port connects asynchronously): stateChanged(0) only, no aboutToClose (the device is not open yet)', () => {
    const { free } = workDir();
    const client = newSocket();
    const rec = recordLocalSignals(client);
    client.connectToServer(free);
    client.abort();
    expect(rec.log).toEqual(['stateChanged(2)', 'stateChanged(0)']);
    expect(client.state()).toBe(LocalSocketState.UnconnectedState);
  });
});
