/**
 * QSslServer (Qt 6.4): only connections whose handshake succeeded are handed out; clients
 * that fail it (no certificate or an untrusted one under mutual TLS, plain bytes, silence)
 * are closed and reported through the server's signals; connections in their handshake
 * count against the pending-connection limit.
 */
import * as net from 'node:net';

import { jest } from '@jest/globals';

import {
  PeerVerifyMode,
  QSslServer,
  QSslSocket,
  SocketError,
  SocketState,
  SslError,
} from '../../../lib/qtnetwork/index.js';
import {
  nextConnection,
  readBytes,
  recordSsl,
  sslClient,
  startSslServer,
} from '../../helpers/qssl-helpers.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';
import { Resources } from '../../helpers/resources.js';
import { sleep, waitUntil } from '../../helpers/signals.js';

jest.setTimeout(20000);

const pki = sslPki();
afterAll(() => removeSslPki());
const res = new Resources();
afterEach(() => res.dispose());

const serverFiles = { cert: pki.serverCert, key: pki.serverKey };
const trustCa = { ca: [pki.caCert] };
const mutual = { ...serverFiles, ca: [pki.caCert], verify: PeerVerifyMode.VerifyPeer };

/** Records the server's signals, with the socket's errorString where it helps. */
function recordServer(server: QSslServer): string[] {
  const log: string[] = [];
  server.startedEncryptionHandshake.connect(() => log.push('startedEncryptionHandshake'));
  server.peerVerifyError.connect((_s, e) => log.push(`peerVerifyError(${e.error()})`));
  server.sslErrors.connect((_s, errors) =>
    log.push(`sslErrors([${errors.map((e) => e.error()).join(', ')}])`),
  );
  server.errorOccurred.connect((s, e) => log.push(`errorOccurred(${e}:${s.errorString()})`));
  server.pendingConnectionAvailable.connect(() => log.push('pendingConnectionAvailable'));
  server.newConnection.connect(() => log.push('newConnection'));
  return log;
}

/** A plain TCP client, destroyed after the test; resolves once connected. */
async function rawClient(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  res.add(() => s.destroy());
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  return s;
}

/** Resolves when `s` is closed by the peer. */
function closedByPeer(s: net.Socket, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (s.destroyed || s.readableEnded) return resolve();
    const t = setTimeout(() => reject(new Error('not closed by the server')), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve();
    });
    s.resume();
  });
}

test('hands out a QSslSocket only once encrypted: pendingConnectionAvailable, then newConnection', async () => {
  const server = await startSslServer(res, serverFiles);
  const log = recordServer(server);
  const seenInSlot: Array<boolean | null> = [];
  server.newConnection.connect(() => {
    const s = server.nextPendingConnection();
    if (s) res.socket(s);
    seenInSlot.push(s ? s.isEncrypted() : null);
  });
  const client = sslClient(res, trustCa);
  client.connectToHostEncrypted('localhost', server.serverPort());
  expect(await client.waitForEncrypted(5000)).toBe(true);
  await waitUntil(() => seenInSlot.length > 0);
  expect(seenInSlot).toEqual([true]);
  expect(log).toEqual([
    'startedEncryptionHandshake',
    'pendingConnectionAvailable',
    'newConnection',
  ]);
  expect(server.handshakeTimeout()).toBe(5000);
});

test('data written by the client right away is waiting when the socket is handed out', async () => {
  const server = await startSslServer(res, serverFiles);
  const client = sslClient(res, trustCa);
  client.connectToHostEncrypted('localhost', server.serverPort());
  client.write('hello');
  const peer = await nextConnection(res, server);
  expect((await readBytes(peer, 5)).toString()).toBe('hello');
  peer.write('world');
  expect((await readBytes(client, 5)).toString()).toBe('world');
});

describe("mutual TLS (VerifyPeer with the clients' CA)", () => {
  test('a client with the right certificate is served, and the server sees it', async () => {
    const server = await startSslServer(res, mutual);
    const client = sslClient(res, { ...trustCa, cert: pki.clientCert, key: pki.clientKey });
    client.connectToHostEncrypted('localhost', server.serverPort());
    const peer = await nextConnection(res, server);
    expect(peer.peerCertificate().subjectInfo('CN')).toEqual(['test client']);
    expect(peer.sslHandshakeErrors()).toEqual([]);
    client.write('authenticated');
    expect((await readBytes(peer, 13)).toString()).toBe('authenticated');
  });

  test('a client without a certificate is refused (NoPeerCertificate) and never handed out', async () => {
    const server = await startSslServer(res, mutual);
    const log = recordServer(server);
    const client = sslClient(res, trustCa);
    const clientLog = recordSsl(client);
    client.connectToHostEncrypted('localhost', server.serverPort());
    await waitUntil(() => client.state() === SocketState.UnconnectedState);
    expect(log).toEqual([
      'startedEncryptionHandshake',
      'peerVerifyError(21)',
      'sslErrors([21])',
      'errorOccurred(13:The peer did not present any certificate)',
    ]);
    expect(server.hasPendingConnections()).toBe(false);
    // With TLS 1.3 the client has finished its part: it sees the server close the connection.
    expect(clientLog.slice(-4)).toEqual([
      'error(1:The remote host closed the connection)',
      'stateChanged(6)',
      'stateChanged(0)',
      'disconnected',
    ]);
  });

  test('a client certificate from an unknown CA is refused', async () => {
    const server = await startSslServer(res, mutual);
    const refused: SslError[][] = [];
    server.sslErrors.connect((_s, errors) => refused.push(errors.map((e) => e.error())));
    const client = sslClient(res, {
      ...trustCa,
      cert: pki.otherClientCert,
      key: pki.otherClientKey,
    });
    client.connectToHostEncrypted('localhost', server.serverPort());
    await waitUntil(() => client.state() === SocketState.UnconnectedState);
    expect(refused).toEqual([
      [SslError.UnableToGetLocalIssuerCertificate, SslError.UnableToVerifyFirstCertificate],
    ]);
    await sleep(50);
    expect(server.hasPendingConnections()).toBe(false);
  });

  test('by default (QueryPeer) a server asks for a certificate but accepts any, reporting the errors', async () => {
    const server = await startSslServer(res, { ...serverFiles, ca: [pki.caCert] });
    const log = recordServer(server);
    const client = sslClient(res, {
      ...trustCa,
      cert: pki.otherClientCert,
      key: pki.otherClientKey,
    });
    client.connectToHostEncrypted('localhost', server.serverPort());
    const peer = await nextConnection(res, server);
    expect(peer.peerCertificate().subjectInfo('CN')).toEqual(['stranger']);
    expect(log).toEqual([
      'startedEncryptionHandshake',
      'peerVerifyError(11)',
      'peerVerifyError(12)',
      'sslErrors([11, 12])',
      'pendingConnectionAvailable',
      'newConnection',
    ]);
    const anonymous = sslClient(res, trustCa);
    anonymous.connectToHostEncrypted('localhost', server.serverPort());
    const second = await nextConnection(res, server);
    expect(second.peerCertificate().isNull()).toBe(true);
  });

  test("a slot connected to the server's sslErrors may let a client in", async () => {
    const server = await startSslServer(res, mutual);
    server.sslErrors.connect((socket) => socket.ignoreSslErrors());
    const client = sslClient(res, {
      ...trustCa,
      cert: pki.otherClientCert,
      key: pki.otherClientKey,
    });
    client.connectToHostEncrypted('localhost', server.serverPort());
    const peer = await nextConnection(res, server);
    expect(peer.isEncrypted()).toBe(true);
  });
});

test('a client that sends plain bytes is closed at its first byte, without a signal', async () => {
  const server = await startSslServer(res, serverFiles);
  const log = recordServer(server);
  const raw = await rawClient(server.serverPort());
  raw.write('GET / HTTP/1.1\r\n\r\n');
  await closedByPeer(raw);
  expect(log).toEqual([]);
  expect(server.hasPendingConnections()).toBe(false);
});

test('a client that never starts the handshake is closed after handshakeTimeout with SocketTimeoutError', async () => {
  const server = await startSslServer(res, serverFiles);
  server.setHandshakeTimeout(200);
  const errors: Array<[SocketError, string]> = [];
  server.errorOccurred.connect((s, e) => errors.push([e, s.errorString()]));
  const raw = await rawClient(server.serverPort());
  const t0 = Date.now();
  await closedByPeer(raw);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
  expect(errors).toEqual([[SocketError.SocketTimeoutError, 'Socket operation timed out']]);
});

test('a client that stalls mid-handshake is closed after handshakeTimeout', async () => {
  const server = await startSslServer(res, serverFiles);
  server.setHandshakeTimeout(300);
  const errors: SocketError[] = [];
  server.errorOccurred.connect((_s, e) => errors.push(e));
  const started: QSslSocket[] = [];
  server.startedEncryptionHandshake.connect((s) => started.push(s));
  const raw = await rawClient(server.serverPort());
  // The first bytes of a ClientHello record, then nothing.
  raw.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40, 0x01]));
  await closedByPeer(raw);
  expect(started.length).toBe(1);
  expect(errors).toEqual([SocketError.SocketTimeoutError]);
});

test('connections in their handshake count against maxPendingConnections; the backlog bounds the rest', async () => {
  const server = await startSslServer(res, serverFiles);
  server.setMaxPendingConnections(2);
  server.setListenBacklogSize(1);
  server.setHandshakeTimeout(10000);
  const started: QSslSocket[] = [];
  server.startedEncryptionHandshake.connect((s) => started.push(s));
  // Silent clients: each holds a slot until its handshake times out.
  const silent = [];
  for (let i = 0; i < 2; i++) silent.push(await rawClient(server.serverPort()));
  await sleep(100);
  // A real client waits un-read in the backlog while the slots are taken...
  const client = sslClient(res, trustCa);
  client.connectToHostEncrypted('localhost', server.serverPort());
  expect(await client.waitForConnected(5000)).toBe(true);
  await sleep(100);
  // ...and one more connection is beyond the backlog: refused.
  const refused = await rawClient(server.serverPort());
  await closedByPeer(refused);
  await sleep(200);
  expect(client.isEncrypted()).toBe(false);
  expect(started.length).toBe(0);
  // Freeing a slot lets the waiting client through.
  silent[0].destroy();
  expect(await client.waitForEncrypted(5000)).toBe(true);
  const peer = await nextConnection(res, server);
  expect(peer.isEncrypted()).toBe(true);
  expect(started.length).toBe(1);
});

test('close() closes the connections still in their handshake', async () => {
  const server = await startSslServer(res, serverFiles);
  const raw = await rawClient(server.serverPort());
  await sleep(50);
  server.close();
  await closedByPeer(raw);
  expect(server.isListening()).toBe(false);
});

test('waitForNewConnection waits for an encrypted connection; it times out with SocketTimeoutError', async () => {
  const server = await startSslServer(res, serverFiles);
  expect(await server.waitForNewConnection(100)).toEqual([false, true]);
  expect(server.serverError()).toBe(SocketError.SocketTimeoutError);
  const client = sslClient(res, trustCa);
  client.connectToHostEncrypted('localhost', server.serverPort());
  expect(await server.waitForNewConnection(5000)).toEqual([true, false]);
  const peer = server.nextPendingConnection();
  expect(peer).toBeInstanceOf(QSslSocket);
  res.socket(peer!);
  const closed = server.waitForNewConnection(-1);
  server.close();
  expect(await closed).toEqual([false, false]);
});

test('sslConfiguration() is a copy; the configuration applies to connections accepted later', async () => {
  const server = res.server(new QSslServer());
  const conf = server.sslConfiguration();
  expect(conf.localCertificate().isNull()).toBe(true);
  const withCert = (await import('../../helpers/qssl-helpers.js')).sslConfig(serverFiles);
  server.setSslConfiguration(withCert);
  withCert.setPeerVerifyMode(PeerVerifyMode.VerifyPeer);
  expect(server.sslConfiguration().peerVerifyMode()).toBe(PeerVerifyMode.AutoVerifyPeer);
  expect(await server.listen('127.0.0.1', 0)).toBe(true);
  const client = sslClient(res, trustCa);
  client.connectToHostEncrypted('localhost', server.serverPort());
  const peer = await nextConnection(res, server);
  expect(peer.localCertificate().subjectInfo('CN')).toEqual(['localhost']);
});
