/**
 * QSslSocket with PauseOnSslErrors, over real TLS on loopback. The expected sequences are
 * what Qt 5.15 (PyQt5) and Qt 6.4 (PyQt6) gave on this machine for a client of a server with
 * a self-signed certificate, which wrote "hello" once encrypted, while the client wrote
 * "ping" before the handshake: after sslErrors the handshake stops, with no error, the
 * connection up, nothing read and nothing written; `resume()` goes on from the event loop,
 * to `encrypted` (then readyRead(5)) when the errors have been ignored meanwhile, or to
 * SslHandshakeFailedError and the close otherwise. Two resume() calls continue once (Qt 6;
 * Qt 5.15 then stops reading, see docs/qt-differences.md).
 */
import * as net from 'node:net';

import { jest } from '@jest/globals';

import {
  PauseMode,
  QAbstractSocket,
  QSslSocket,
  SocketError,
  SocketState,
  type QSslServer,
} from '../../../lib/qtnetwork/index.js';
import { readBytes, recordSsl, sslClient, startSslServer } from '../../helpers/qssl-helpers.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';
import { Resources } from '../../helpers/resources.js';
import { nextEmission, waitUntil } from '../../helpers/signals.js';

jest.setTimeout(20000);

const pki = sslPki();
afterAll(() => removeSslPki());
const res = new Resources();
afterEach(() => res.dispose());

const selfSigned = { cert: pki.selfSignedCert, key: pki.selfSignedKey };
const trusted = { cert: pki.serverCert, key: pki.serverKey };
const trustCa = { ca: [pki.caCert] };

/** What the client emits up to the verification errors of a self-signed server. */
const UP_TO_ERRORS = [
  'stateChanged(1)',
  'stateChanged(2)',
  'stateChanged(3)',
  'modeChanged(1)',
  'connected',
  'peerVerifyError(9)',
  'sslErrors([9])',
];

/** A server that writes "hello" to each connection once it is encrypted. */
async function greetingServer(setup: typeof selfSigned): Promise<QSslServer> {
  const srv = await startSslServer(res, setup);
  srv.newConnection.connect(() => {
    const peer = srv.nextPendingConnection();
    if (!peer) return;
    res.socket(peer);
    peer.write('hello');
    greeted.push(peer);
  });
  return srv;
}
const greeted: QSslSocket[] = [];
afterEach(() => {
  greeted.length = 0;
});

/** A client with PauseOnSslErrors that records its signals, readyRead included. */
function pausingClient(): { client: QSslSocket; log: string[] } {
  const client = sslClient(res, trustCa);
  client.setPauseMode(PauseMode.PauseOnSslErrors);
  const log = recordSsl(client);
  client.readyRead.connect(() => log.push(`readyRead(${client.bytesAvailable()})`));
  return { client, log };
}

/**
 * One loopback round trip on a connection of its own: once it is back, the event loop has
 * polled every socket whose data had reached this host before it started.
 */
async function roundTrip(): Promise<void> {
  const echo = net.createServer((c) => c.pipe(c));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  const { port } = echo.address() as net.AddressInfo;
  const c = net.connect(port, '127.0.0.1');
  c.write('x');
  await new Promise((resolve) => c.once('data', resolve));
  c.destroy();
  await new Promise((resolve) => echo.close(resolve));
}

/** Connects, waits until the handshake has paused and the server's "hello" has been sent. */
async function pausedAfterErrors(): Promise<{
  client: QSslSocket;
  log: string[];
  peer: QSslSocket;
}> {
  const srv = await greetingServer(selfSigned);
  const { client, log } = pausingClient();
  client.connectToHostEncrypted('localhost', srv.serverPort());
  client.write('ping');
  await waitUntil(() => greeted.length === 1, 5000, "the server's side");
  const peer = greeted[0];
  if (peer.bytesToWrite() > 0) await nextEmission(peer.bytesWritten, 5000);
  await waitUntil(() => log.includes('sslErrors([9])'), 5000, 'sslErrors');
  await roundTrip();
  return { client, log, peer };
}

test('PauseOnSslErrors: after sslErrors the handshake waits, no error, nothing read or written', async () => {
  const { client, log, peer } = await pausedAfterErrors();
  expect(log).toEqual(UP_TO_ERRORS);
  expect(client.state()).toBe(SocketState.ConnectedState);
  expect(client.error()).toBe(SocketError.UnknownSocketError);
  expect(client.isEncrypted()).toBe(false);
  // "ping" waits for the handshake; "hello" waits in the connection.
  expect(client.bytesToWrite()).toBe(4);
  expect(client.bytesAvailable()).toBe(0);
  expect(peer.bytesAvailable()).toBe(0);
  // Ignoring the errors alone does not go on: resume() does.
  client.ignoreSslErrors();
  await roundTrip();
  expect(log).toEqual(UP_TO_ERRORS);
});

test('ignoreSslErrors() then resume(): encrypted (after resume returns), then the held data moves both ways', async () => {
  const { client, log, peer } = await pausedAfterErrors();
  client.ignoreSslErrors();
  client.resume();
  // Qt goes on from the event loop, not inside resume().
  expect(log).toEqual(UP_TO_ERRORS);
  expect(await client.waitForEncrypted(5000)).toBe(true);
  await waitUntil(() => client.bytesAvailable() === 5, 5000, '"hello"');
  expect(log).toEqual([...UP_TO_ERRORS, 'encrypted', 'readyRead(5)']);
  expect(client.readAll().toString()).toBe('hello');
  expect((await readBytes(peer, 4)).toString()).toBe('ping');
});

test('resume() without ignoring the errors: SslHandshakeFailedError with the first error, then the close', async () => {
  const { client, log, peer } = await pausedAfterErrors();
  client.resume();
  expect(log).toEqual(UP_TO_ERRORS);
  await waitUntil(() => client.state() === SocketState.UnconnectedState, 5000, 'the close');
  expect(log).toEqual([
    ...UP_TO_ERRORS,
    'error(13:The certificate is self-signed, and untrusted)',
    'stateChanged(6)',
    'stateChanged(0)',
    'disconnected',
  ]);
  expect(client.isEncrypted()).toBe(false);
  expect(peer.bytesAvailable()).toBe(0);
});

test('resume() twice while paused continues once (Qt 6): one encrypted, and reading goes on', async () => {
  const { client, log } = await pausedAfterErrors();
  client.ignoreSslErrors();
  client.resume();
  client.resume();
  await waitUntil(() => client.bytesAvailable() === 5, 5000, '"hello"');
  expect(log).toEqual([...UP_TO_ERRORS, 'encrypted', 'readyRead(5)']);
});

test('errors ignored from the sslErrors slot: no pause, encrypted at once', async () => {
  const srv = await greetingServer(selfSigned);
  const { client, log } = pausingClient();
  client.sslErrors.connect(() => client.ignoreSslErrors());
  client.connectToHostEncrypted('localhost', srv.serverPort());
  expect(await client.waitForEncrypted(5000)).toBe(true);
  expect(log.slice(0, UP_TO_ERRORS.length + 1)).toEqual([...UP_TO_ERRORS, 'encrypted']);
});

test('a trusted server: PauseOnSslErrors changes nothing, and resume() on an encrypted socket does nothing', async () => {
  const srv = await greetingServer(trusted);
  const { client, log } = pausingClient();
  client.connectToHostEncrypted('localhost', srv.serverPort());
  expect(await client.waitForEncrypted(5000)).toBe(true);
  client.resume();
  await waitUntil(() => client.bytesAvailable() === 5, 5000, '"hello"');
  expect(log).toEqual([
    'stateChanged(1)',
    'stateChanged(2)',
    'stateChanged(3)',
    'modeChanged(1)',
    'connected',
    'encrypted',
    'readyRead(5)',
  ]);
});

test('without PauseOnSslErrors the same server is refused at once (the default, PauseNever)', async () => {
  const srv = await greetingServer(selfSigned);
  const client = sslClient(res, trustCa);
  expect(client.pauseMode()).toBe(QAbstractSocket.PauseMode.PauseNever);
  const log = recordSsl(client);
  client.connectToHostEncrypted('localhost', srv.serverPort());
  expect(await client.waitForEncrypted(5000)).toBe(false);
  expect(log.slice(UP_TO_ERRORS.length - 2, UP_TO_ERRORS.length + 1)).toEqual([
    'peerVerifyError(9)',
    'sslErrors([9])',
    'error(13:The certificate is self-signed, and untrusted)',
  ]);
});

test('a connection closed while paused: resume() afterwards does nothing', async () => {
  const { client, log } = await pausedAfterErrors();
  client.abort();
  const closed = [...log];
  expect(closed.slice(-2)).toEqual(['stateChanged(0)', 'disconnected']);
  client.ignoreSslErrors();
  client.resume();
  await roundTrip();
  expect(log).toEqual(closed);
  expect(client.isEncrypted()).toBe(false);
});
