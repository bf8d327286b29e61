/**
 * QLocalServer's and QLocalSocket's observable behaviour, signal by signal: return values,
 * errors and their texts, names, socket-file modes, and QLocalSocket's signals in order with
 * the socket's state and error text at each one. The expected values were recorded from
 * real Qt 5.15 (PyQt5) on this machine with the same peers. "[returns]" marks where the call
 * under test returned, so that what is emitted inside the call is told apart from what
 * comes later.
 *
 * Documented differences (docs/qt-differences.md), asserted as the port does them:
 * - Qt connects to a Unix socket synchronously; the port emits stateChanged(Connecting)
 *   inside connectToServer() and the rest (connected, or a refused / missing server's error)
 *   after it returns. An empty or too-long name fails inside the call, as in Qt.
 * - removeServer() and listen() with access options never remove a file that is not a
 *   socket (Qt deletes or renames over it).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { jest } from '@jest/globals';

import {
  LocalServerSocketOption,
  LocalSocketError,
  LocalSocketState,
  OpenModeFlag,
  QLocalServer,
  QLocalSocket,
  SocketError,
} from '../../../lib/qtnetwork/index.js';
import {
  isSocketAt,
  makeStaleSocket,
  makeTempDir,
  modeFromUmask,
  recordLocalSignals,
  removeDir,
  uniqueLocalName,
} from '../../helpers/qlocal-helpers.js';
import { Resources } from '../../helpers/resources.js';
import { nextEmission, sleep, waitUntil } from '../../helpers/signals.js';
import { captureQtMessages } from '../../helpers/socket-log.js';

jest.setTimeout(10000);

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.resolve(here, '../../fixtures');

const res = new Resources();
afterEach(() => res.dispose());

const S_IFSOCK = 0o140000;
const REMOTE_CLOSED = 'errorOccurred(1, "QLocalSocket: Remote closed", state=3)';
const INVALID_NAME = 'errorOccurred(2, "QLocalSocket::connectToServer: Invalid name", state=2)';
const REFUSED = 'errorOccurred(0, "QLocalSocket::connectToServer: Connection refused", state=2)';

function newServer(): QLocalServer {
  return res.server(new QLocalServer());
}

function newSocket(): QLocalSocket {
  return res.socket(new QLocalSocket());
}

/** A unique name whose socket file is removed after the test. */
function freshName(tag: string): string {
  const name = uniqueLocalName(tag);
  res.add(() => QLocalServer.removeServer(name));
  return name;
}

/** A private directory, removed after the test. */
function tempDir(tag: string): string {
  const dir = makeTempDir(tag);
  res.add(() => removeDir(dir));
  return dir;
}

function warnings(): string[] {
  const captured = captureQtMessages();
  res.add(captured.restore);
  return captured.messages;
}

async function listeningOn(name: string): Promise<QLocalServer> {
  const server = newServer();
  expect(await server.listen(name)).toBe(true);
  return server;
}

async function takeConnection(server: QLocalServer): Promise<QLocalSocket> {
  if (!server.hasPendingConnections()) {
    expect((await server.waitForNewConnection(5000))[0]).toBe(true);
  }
  const s = server.nextPendingConnection();
  expect(s).not.toBeNull();
  return res.socket(s!);
}

/** A connected client and the server's end of its connection. */
async function connectedPair(
  tag: string,
): Promise<{ server: QLocalServer; name: string; client: QLocalSocket; peer: QLocalSocket }> {
  const name = freshName(tag);
  const server = await listeningOn(name);
  const client = newSocket();
  client.connectToServer(name);
  expect(await client.waitForConnected(5000)).toBe(true);
  const peer = await takeConnection(server);
  return { server, name, client, peer };
}

// ====================================================================== QLocalServer

describe('QLocalServer (Qt 5.15 values)', () => {
  it('initially: serverError() -1, errorString() "", maxPendingConnections() 30, serverName() "", fullServerName() "", socketOptions() 0', () => {
    const server = newServer();
    expect(server.serverError()).toBe(SocketError.UnknownSocketError);
    expect(server.serverError()).toBe(-1);
    expect(server.errorString()).toBe('');
    expect(server.maxPendingConnections()).toBe(30);
    expect(server.serverName()).toBe('');
    expect(server.fullServerName()).toBe('');
    expect(server.socketOptions()).toBe(0);
    expect(server.isListening()).toBe(false);
  });

  it('listen("") is false with HostNotFoundError (2), "QLocalServer::listen: Name error"', async () => {
    const server = newServer();
    expect(await server.listen('')).toBe(false);
    expect(server.serverError()).toBe(2);
    expect(server.errorString()).toBe('QLocalServer::listen: Name error');
    expect(server.serverName()).toBe('');
    expect(server.fullServerName()).toBe('');
  });

  it('listen(name): serverName() is the name, fullServerName() os.tmpdir()/name, a socket file whose mode follows the umask (0o140755 with umask 022)', async () => {
    const name = freshName('listen');
    const server = await listeningOn(name);
    expect(server.serverName()).toBe(name);
    expect(server.fullServerName()).toBe(`${os.tmpdir()}/${name}`);
    expect(server.serverError()).toBe(-1);
    expect(server.errorString()).toBe('');
    const mode = fs.lstatSync(server.fullServerName()).mode;
    expect(mode).toBe(S_IFSOCK | modeFromUmask());
    // whatever the umask: a socket, and neither group nor others may write to it
    expect(mode & 0o170000).toBe(S_IFSOCK);
    expect(mode & 0o022).toBe(0);
  });

  it('listen(name) honours TMPDIR, read at the time of the call (QDir::tempPath): a child process with TMPDIR set listens and connects there', async () => {
    // Jest gives each test file a copy of process.env that node:os does not read, so the
    // check runs in a child process (importing the library's sources through the
    // fixtures' TypeScript hooks) with TMPDIR set in its real environment.
    const dir = tempDir('tmpdir');
    const name = uniqueLocalName('intmpdir');
    const script = [
      "import * as fs from 'node:fs';",
      'const { QLocalServer, QLocalSocket } = await import(process.argv[1]);',
      'const server = new QLocalServer();',
      'const ok = await server.listen(process.argv[2]);',
      'const full = server.fullServerName();',
      'let socket = false;',
      'try { socket = fs.lstatSync(full).isSocket(); } catch {}',
      'const client = new QLocalSocket();',
      'client.connectToServer(process.argv[2]);',
      'const clientFull = client.fullServerName();',
      'const connected = await client.waitForConnected(5000);',
      'client.abort();',
      'server.close();',
      'console.log(JSON.stringify({ ok, full, socket, clientFull, connected }));',
    ].join('\n');
    const child = spawn(
      process.execPath,
      [
        '--import',
        pathToFileURL(path.join(fixtures, 'register-ts.mjs')).href,
        '--input-type=module',
        '-e',
        script,
        pathToFileURL(path.join(here, '../../../lib/qtnetwork/index.ts')).href,
        name,
      ],
      { env: { ...process.env, TMPDIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const killer = setTimeout(() => child.kill('SIGKILL'), 20000);
    res.add(() => {
      clearTimeout(killer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(JSON.parse(out)).toEqual({
      ok: true,
      full: `${dir}/${name}`,
      socket: true,
      clientFull: `${dir}/${name}`,
      connected: true,
    });
    expect(fs.readdirSync(dir)).toEqual([]);
  }, 25000);

  it('listen() while listening: false, with the warning "QLocalServer::listen() called when already listening"; the server goes on as before', async () => {
    const messages = warnings();
    const name = freshName('twice');
    const server = await listeningOn(name);
    expect(await server.listen(freshName('other'))).toBe(false);
    expect(messages).toEqual(['QLocalServer::listen() called when already listening']);
    expect(server.isListening()).toBe(true);
    expect(server.serverName()).toBe(name);
    expect(server.serverError()).toBe(-1);
    expect(server.errorString()).toBe('');
  });

  it('a second server on the same name: false, AddressInUseError (8), "QLocalServer::listen: Address in use", serverName() ""; the first one still serves', async () => {
    const name = freshName('inuse');
    const first = await listeningOn(name);
    const second = newServer();
    expect(await second.listen(name)).toBe(false);
    expect(second.serverError()).toBe(8);
    expect(second.errorString()).toBe('QLocalServer::listen: Address in use');
    expect(second.serverName()).toBe('');
    expect(second.fullServerName()).toBe('');
    expect(second.isListening()).toBe(false);

    const client = newSocket();
    client.connectToServer(name);
    expect(await client.waitForConnected(5000)).toBe(true);
    await takeConnection(first);
  });

  it('listen on a path holding a regular file: false, 8, "QLocalServer::listen: Address in use"; the file is left as it was', async () => {
    const dir = tempDir('regular');
    const file = path.join(dir, 'regular');
    fs.writeFileSync(file, 'keep me');
    const server = newServer();
    expect(await server.listen(file)).toBe(false);
    expect(server.serverError()).toBe(8);
    expect(server.errorString()).toBe('QLocalServer::listen: Address in use');
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('listen with WorldAccessOption on a path holding a regular file: false, 8, "Address in use"; the file is left (deliberate difference: Qt 5.15 renames its socket over it)', async () => {
    const dir = tempDir('regularworld');
    const file = path.join(dir, 'regular');
    fs.writeFileSync(file, 'keep me');
    const server = newServer();
    server.setSocketOptions(LocalServerSocketOption.WorldAccessOption);
    expect(await server.listen(file)).toBe(false);
    expect(server.serverError()).toBe(8);
    expect(server.errorString()).toBe('QLocalServer::listen: Address in use');
    expect(fs.lstatSync(file).isFile()).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
    expect(fs.readdirSync(dir)).toEqual(['regular']);
  });

  it('listen on a stale socket (its process was killed): without options false, 8, "Address in use"; with WorldAccessOption it listens there (mode 0o777) and serves', async () => {
    const dir = tempDir('stale');
    const stale = path.join(dir, 'stale');
    makeStaleSocket(stale);

    const plain = newServer();
    expect(await plain.listen(stale)).toBe(false);
    expect(plain.serverError()).toBe(8);
    expect(plain.errorString()).toBe('QLocalServer::listen: Address in use');
    expect(isSocketAt(stale)).toBe(true);

    const world = newServer();
    world.setSocketOptions(LocalServerSocketOption.WorldAccessOption);
    expect(await world.listen(stale)).toBe(true);
    expect(world.fullServerName()).toBe(stale);
    expect(fs.lstatSync(stale).mode).toBe(S_IFSOCK | 0o777);
    const client = newSocket();
    client.connectToServer(stale);
    expect(await client.waitForConnected(5000)).toBe(true);
    await takeConnection(world);
    expect(fs.readdirSync(dir)).toEqual(['stale']);
  });

  const modes: Array<[string, number, number | null]> = [
    ['UserAccessOption', LocalServerSocketOption.UserAccessOption, 0o700],
    ['GroupAccessOption', LocalServerSocketOption.GroupAccessOption, 0o070],
    ['OtherAccessOption', LocalServerSocketOption.OtherAccessOption, 0o007],
    ['WorldAccessOption', LocalServerSocketOption.WorldAccessOption, 0o777],
    ['NoOptions (umask)', LocalServerSocketOption.NoOptions, null],
  ];
  it.each(modes)('socket file mode with %s', async (_label, options, bits) => {
    const server = newServer();
    server.setSocketOptions(options);
    const name = freshName('mode');
    expect(await server.listen(name)).toBe(true);
    expect(server.socketOptions()).toBe(options);
    expect(fs.lstatSync(server.fullServerName()).mode).toBe(S_IFSOCK | (bits ?? modeFromUmask()));
  });

  it('removeServer: a name with nothing there is true; a socket file is removed (true)', async () => {
    expect(QLocalServer.removeServer(uniqueLocalName('nonexistent'))).toBe(true);
    const dir = tempDir('remove');
    const stale = path.join(dir, 'sock');
    makeStaleSocket(stale);
    expect(QLocalServer.removeServer(stale)).toBe(true);
    expect(fs.existsSync(stale)).toBe(false);

    const name = freshName('removelive');
    const server = await listeningOn(name);
    expect(QLocalServer.removeServer(name)).toBe(true);
    expect(fs.existsSync(server.fullServerName())).toBe(false);
  });

  it('removeServer on a regular file is false and leaves it (deliberate difference: Qt 5.15 deletes it)', () => {
    const dir = tempDir('removefile');
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'keep me');
    expect(QLocalServer.removeServer(file)).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('close(): names become "", the socket file is removed, a pending client nobody took sees errorOccurred(1) "QLocalSocket: Remote closed" and ends Unconnected', async () => {
    const name = freshName('close');
    const server = await listeningOn(name);
    const file = server.fullServerName();
    const client = newSocket();
    client.connectToServer(name);
    expect(await client.waitForConnected(5000)).toBe(true);
    await waitUntil(() => server.hasPendingConnections(), 5000, 'a pending connection');
    const rec = recordLocalSignals(client);
    const gone = nextEmission(client.disconnected);

    server.close();
    rec.mark('[returns]');
    expect(server.serverName()).toBe('');
    expect(server.fullServerName()).toBe('');
    expect(server.isListening()).toBe(false);
    expect(server.hasPendingConnections()).toBe(false);
    expect(fs.existsSync(file)).toBe(false);

    await gone;
    expect(rec.log).toEqual([
      '[returns]',
      REMOTE_CLOSED,
      'stateChanged(6)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
    ]);
    expect(client.state()).toBe(LocalSocketState.UnconnectedState);
    expect(client.error()).toBe(LocalSocketError.PeerClosedError);
    expect(client.serverName()).toBe('');
    expect(client.fullServerName()).toBe('');
  });

  it('waitForNewConnection(10) when not listening is [false, false]; listening with no client, waitForNewConnection(20) is [false, true] and serverError() stays -1 / "" (unlike QTcpServer)', async () => {
    const server = newServer();
    expect(await server.waitForNewConnection(10)).toEqual([false, false]);
    expect(await server.listen(freshName('wfnc'))).toBe(true);
    expect(await server.waitForNewConnection(20)).toEqual([false, true]);
    expect(server.serverError()).toBe(-1);
    expect(server.errorString()).toBe('');
  });

  it('waitForNewConnection(50) with a connection already pending and none arriving is [true, true] (Qt 5.15 QLocalServer returns whether a connection is pending, and reports the timeout)', async () => {
    const name = freshName('wfncpending');
    const server = await listeningOn(name);
    const client = newSocket();
    client.connectToServer(name);
    expect(await client.waitForConnected(5000)).toBe(true);
    await waitUntil(() => server.hasPendingConnections(), 5000, 'a pending connection');
    expect(await server.waitForNewConnection(50)).toEqual([true, true]);
    expect(server.serverError()).toBe(-1);
    expect(server.hasPendingConnections()).toBe(true);
  });
});

// ====================================================================== QLocalSocket

describe('QLocalSocket signal order (Qt 5.15)', () => {
  it('connectToServer(name): stateChanged(2) inside the call; stateChanged(3), connected after it returns (Qt: all inside); openMode() 35 on the client, 3 on the accepted socket, whose names are ""', async () => {
    const name = freshName('connect');
    const server = await listeningOn(name);
    const client = newSocket();
    const rec = recordLocalSignals(client);
    client.connectToServer(name);
    rec.mark('[returns]');
    expect(client.state()).toBe(LocalSocketState.ConnectingState);
    expect(client.serverName()).toBe(name);
    expect(client.fullServerName()).toBe(`${os.tmpdir()}/${name}`);
    await nextEmission(client.connected);
    expect(rec.log).toEqual(['stateChanged(2)', '[returns]', 'stateChanged(3)', 'connected']);
    expect(client.openMode()).toBe(35);
    expect(client.openMode()).toBe(OpenModeFlag.ReadWrite | OpenModeFlag.Unbuffered);
    expect(client.serverName()).toBe(name);
    expect(client.fullServerName()).toBe(`${os.tmpdir()}/${name}`);

    const peer = await takeConnection(server);
    expect(peer.openMode()).toBe(3);
    expect(peer.state()).toBe(LocalSocketState.ConnectedState);
    expect(peer.serverName()).toBe('');
    expect(peer.fullServerName()).toBe('');
  });

  it('the peer writes "data\\n" and disconnects: readyRead(5), errorOccurred(1, "QLocalSocket: Remote closed", state=3), stateChanged(6), stateChanged(0), readChannelFinished, disconnected with 5 bytes still available; then readAll() is the data and readInto() -1', async () => {
    const { client, peer } = await connectedPair('remoteclose');
    const rec = recordLocalSignals(client);
    client.disconnected.connect(() => rec.mark(`[bytesAvailable=${client.bytesAvailable()}]`));
    const gone = nextEmission(client.disconnected);
    peer.write('data\n');
    peer.disconnectFromServer();
    await gone;
    expect(rec.log).toEqual([
      'readyRead(5)',
      REMOTE_CLOSED,
      'stateChanged(6)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
      '[bytesAvailable=5]',
    ]);
    expect(client.readAll().toString()).toBe('data\n');
    expect(client.readInto(Buffer.alloc(10))).toBe(-1);
    expect(client.state()).toBe(LocalSocketState.UnconnectedState);
    expect(client.serverName()).toBe('');
    expect(client.fullServerName()).toBe('');
  });

  it('connectToServer to a name nobody serves: stateChanged(2), [returns], errorOccurred(2, "QLocalSocket::connectToServer: Invalid name", state=2), stateChanged(0); serverName() "" afterwards', async () => {
    const client = newSocket();
    const rec = recordLocalSignals(client);
    const failed = nextEmission(client.errorOccurred);
    client.connectToServer(uniqueLocalName('missing'));
    rec.mark('[returns]');
    await failed;
    await sleep(20);
    expect(rec.log).toEqual(['stateChanged(2)', '[returns]', INVALID_NAME, 'stateChanged(0)']);
    expect(client.error()).toBe(LocalSocketError.ServerNotFoundError);
    expect(client.serverName()).toBe('');
    expect(client.fullServerName()).toBe('');
    expect(client.isOpen()).toBe(false);
  });

  const syncFailures: Array<[string, () => string]> = [
    ['an empty name', () => ''],
    ['a path longer than 107 bytes', () => `/tmp/${'x'.repeat(120)}`],
  ];
  it.each(syncFailures)(
    'connectToServer with %s fails inside the call, as in Qt: stateChanged(2), errorOccurred(2, "Invalid name", state=2), stateChanged(0), [returns]',
    async (_what, nameOf) => {
      const client = newSocket();
      const rec = recordLocalSignals(client);
      client.connectToServer(nameOf());
      rec.mark('[returns]');
      expect(client.state()).toBe(LocalSocketState.UnconnectedState);
      await sleep(20);
      expect(rec.log).toEqual(['stateChanged(2)', INVALID_NAME, 'stateChanged(0)', '[returns]']);
      expect(client.serverName()).toBe('');
      expect(client.errorString()).toBe('QLocalSocket::connectToServer: Invalid name');
    },
  );

  const refusedPaths: Array<[string, (dir: string) => string]> = [
    [
      'a regular file',
      (dir) => {
        const p = path.join(dir, 'file');
        fs.writeFileSync(p, 'x');
        return p;
      },
    ],
    [
      'a stale socket',
      (dir) => {
        const p = path.join(dir, 'stale');
        makeStaleSocket(p);
        return p;
      },
    ],
    [
      'a directory',
      (dir) => {
        const p = path.join(dir, 'dir');
        fs.mkdirSync(p);
        return p;
      },
    ],
  ];
  it.each(refusedPaths)(
    'connectToServer to %s: errorOccurred(0, "QLocalSocket::connectToServer: Connection refused", state=2), stateChanged(0) (after the call returns in the port)',
    async (_what, make) => {
      const target = make(tempDir('refused'));
      const client = newSocket();
      const rec = recordLocalSignals(client);
      const ended = nextEmission(client.errorOccurred);
      client.connectToServer(target);
      rec.mark('[returns]');
      await ended;
      await sleep(20);
      expect(rec.log).toEqual(['stateChanged(2)', '[returns]', REFUSED, 'stateChanged(0)']);
      expect(client.error()).toBe(LocalSocketError.ConnectionRefusedError);
      expect(client.state()).toBe(LocalSocketState.UnconnectedState);
      expect(fs.existsSync(target)).toBe(true);
    },
  );

  it('waitForReadyRead(100) on an idle connection: errorOccurred(5, "QLocalSocket: Socket operation timed out", state=3), still connected; then write("abc") + abort() in Qt 6\'s order: stateChanged(0), readChannelFinished, disconnected, aboutToClose; the device is closed', async () => {
    const { client } = await connectedPair('timeout');
    const rec = recordLocalSignals(client);
    expect(await client.waitForReadyRead(100)).toBe(false);
    rec.mark('[returns]');
    expect(client.state()).toBe(LocalSocketState.ConnectedState);
    expect(client.error()).toBe(LocalSocketError.SocketTimeoutError);

    expect(client.write('abc')).toBe(3);
    client.abort();
    rec.mark('[abort returns]');
    await sleep(20);
    expect(rec.log).toEqual([
      'errorOccurred(5, "QLocalSocket: Socket operation timed out", state=3)',
      '[returns]',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
      'aboutToClose',
      '[abort returns]',
    ]);
    expect(client.openMode()).toBe(OpenModeFlag.NotOpen);
    expect(client.serverName()).toBe('');
    expect(client.bytesToWrite()).toBe(0);
    expect(client.state()).toBe(LocalSocketState.UnconnectedState);
  });

  it('write("abc") then disconnectFromServer(): stateChanged(6), [returns in ClosingState], bytesWritten(3), stateChanged(0), readChannelFinished, disconnected; the peer gets "abc"', async () => {
    const { client, peer } = await connectedPair('dfs');
    const rec = recordLocalSignals(client);
    const gone = nextEmission(client.disconnected);
    const peerGone = nextEmission(peer.disconnected);
    expect(client.write('abc')).toBe(3);
    client.disconnectFromServer();
    rec.mark(`[returns state=${client.state()}]`);
    await gone;
    expect(rec.log).toEqual([
      'stateChanged(6)',
      '[returns state=6]',
      'bytesWritten(3)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
    ]);
    await peerGone;
    expect(peer.readAll().toString()).toBe('abc');
  });

  it('connectToServer(name) while connected: warning "QLocalSocket::setServerName() called while not in unconnected state", errorOccurred(19, "QLocalSocket::connectToserver: Operation not permitted when socket is in this state", state=3); still connected', async () => {
    const messages = warnings();
    const { client, name } = await connectedPair('again');
    const rec = recordLocalSignals(client);
    client.connectToServer(name);
    rec.mark('[returns]');
    await sleep(20);
    expect(messages).toEqual([
      'QLocalSocket::setServerName() called while not in unconnected state',
    ]);
    expect(rec.log).toEqual([
      'errorOccurred(19, "QLocalSocket::connectToserver: Operation not permitted when socket is in this state", state=3)',
      '[returns]',
    ]);
    expect(client.state()).toBe(LocalSocketState.ConnectedState);
    expect(client.serverName()).toBe(name);
  });

  it('write() on a socket that never connected: -1 with "QIODevice::write (QLocalSocket): device not open"; isOpen() false, error() -1, errorString() "Unknown error"', () => {
    const messages = warnings();
    const socket = newSocket();
    expect(socket.write('abc')).toBe(-1);
    expect(messages).toEqual(['QIODevice::write (QLocalSocket): device not open']);
    expect(socket.isOpen()).toBe(false);
    expect(socket.error()).toBe(-1);
    expect(socket.errorString()).toBe('Unknown error');
  });

  it('an unconnected socket: the waits are false (waitForBytesWritten warns), socketDescriptor() -1; setServerName("x") gives serverName() "x" and fullServerName() "" until connected', async () => {
    const messages = warnings();
    const socket = newSocket();
    const rec = recordLocalSignals(socket);
    expect(await socket.waitForConnected(10)).toBe(false);
    expect(await socket.waitForReadyRead(10)).toBe(false);
    expect(await socket.waitForBytesWritten(10)).toBe(false);
    expect(messages).toEqual([
      'QAbstractSocket::waitForBytesWritten() is not allowed in UnconnectedState',
    ]);
    expect(socket.socketDescriptor()).toBe(-1);
    socket.setServerName('x');
    expect(socket.serverName()).toBe('x');
    expect(socket.fullServerName()).toBe('');
    expect(rec.log).toEqual([]);
  });
});
