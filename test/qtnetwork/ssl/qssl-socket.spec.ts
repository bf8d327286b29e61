/**
 * QSslSocket over node:tls. Expected signal sequences, error lists and texts are Qt's, as
 * Qt 5.15 (PyQt5 5.15.8 with OpenSSL 3) produced them on this machine against the same
 * certificates (test/qtnetwork/qssl-qt-interop.spec.ts compares the two directly). Some
 * behaviours are ported from Qt's autotest tst_QSslSocket, written anew: the handshake
 * with and without ignoring errors, STARTTLS-style upgrades, writes before encryption,
 * the read buffer limit, protocol selection and peer verify names.
 */
import { readFileSync } from 'node:fs';
import * as net from 'node:net';

import { jest } from '@jest/globals';

import {
  OpenModeFlag,
  PeerVerifyMode,
  ProxyType,
  QNetworkProxy,
  QSslCertificate,
  QSslError,
  QSslKey,
  QSslSocket,
  QTcpServer,
  SocketError,
  SocketState,
  SslError,
  SslMode,
  SslProtocol,
  type NativeSocketHandle,
} from '../../../lib/qtnetwork/index.js';
import { startNetPeer } from '../../helpers/peers.js';
import * as proxies from '../../helpers/proxy-servers.js';
import {
  nextConnection,
  readBytes,
  recordSsl,
  sslClient,
  sslConfig,
  startSslServer,
  type SslSetup,
} from '../../helpers/qssl-helpers.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';
import { Resources } from '../../helpers/resources.js';
import { nextEmission, sleep, waitUntil } from '../../helpers/signals.js';
import { captureQtMessages } from '../../helpers/socket-log.js';

jest.setTimeout(20000);

const pki = sslPki();
afterAll(() => removeSslPki());
const res = new Resources();
afterEach(() => res.dispose());

const server = { cert: pki.serverCert, key: pki.serverKey };
const trustCa = { ca: [pki.caCert] };

/** What follows the TCP connection in every client sequence, as Qt 5.15 emits it. */
const CONNECTED = [
  'stateChanged(1)',
  'stateChanged(2)',
  'stateChanged(3)',
  'modeChanged(1)',
  'connected',
];
/** How Qt 5.15 ends a connection whose peer failed verification. */
const REFUSED_END = ['stateChanged(6)', 'stateChanged(0)', 'disconnected'];

/** Waits until `socket` is unconnected. */
async function unconnected(socket: QSslSocket): Promise<void> {
  await waitUntil(() => socket.state() === SocketState.UnconnectedState, 5000, 'UnconnectedState');
}

describe('connectToHostEncrypted', () => {
  test("emits Qt's sequence: connected, then encrypted after the handshake", async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    const log = recordSsl(client);
    const bytes: number[] = [];
    client.encryptedBytesWritten.connect((n) => bytes.push(n));
    expect(client.mode()).toBe(SslMode.UnencryptedMode);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(true);
    expect(log).toEqual([...CONNECTED, 'encrypted']);
    expect(client.isEncrypted()).toBe(true);
    expect(client.mode()).toBe(SslMode.SslClientMode);
    // The ClientHello (and the client's Finished) went out before `encrypted`.
    expect(bytes.length).toBeGreaterThan(0);
    expect(client.peerCertificate().subjectInfo(QSslCertificate.SubjectInfo.CommonName)).toEqual([
      'localhost',
    ]);
    expect(client.sessionProtocol()).toBe(SslProtocol.TlsV1_3);
    const cipher = client.sessionCipher();
    expect(cipher.isNull()).toBe(false);
    expect(cipher.protocolString()).toBe('TLSv1.3');
    expect(cipher.usedBits()).toBeGreaterThanOrEqual(128);
    expect(client.sslHandshakeErrors()).toEqual([]);
    const conf = client.sslConfiguration();
    expect(conf.peerCertificate().isEqual(client.peerCertificate())).toBe(true);
    expect(conf.sessionCipher().name()).toBe(cipher.name());
  });

  test('the server side sees the same session and is handed out only once encrypted', async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    const peer = await nextConnection(res, srv);
    expect(peer).toBeInstanceOf(QSslSocket);
    expect(peer.isEncrypted()).toBe(true);
    expect(peer.mode()).toBe(SslMode.SslServerMode);
    expect(peer.sessionProtocol()).toBe(SslProtocol.TlsV1_3);
    expect(await client.waitForEncrypted(5000)).toBe(true);
    expect(peer.sessionCipher().name()).toBe(client.sessionCipher().name());
  });

  test('data written before encrypted waits, counted by bytesToWrite, and arrives after the handshake', async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    const written: number[] = [];
    client.bytesWritten.connect((n) => written.push(n));
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(client.write('early bird')).toBe(10);
    await nextEmission(client.connected);
    expect(client.write(' and friends')).toBe(12);
    expect(client.bytesToWrite()).toBe(22);
    expect(written).toEqual([]);
    await nextEmission(client.encrypted);
    const peer = await nextConnection(res, srv);
    expect((await readBytes(peer, 22)).toString()).toBe('early bird and friends');
    await waitUntil(() => client.bytesToWrite() === 0);
    expect(written.reduce((a, b) => a + b, 0)).toBe(22);
  });

  test('nothing written before the handshake reaches the wire in clear: the first bytes are a ClientHello', async () => {
    const received: Buffer[] = [];
    const peer = await startNetPeer('127.0.0.1', (s) =>
      s.on('data', (d: Buffer) => received.push(d)),
    );
    res.add(() => peer.close());
    const client = sslClient(res, trustCa);
    client.connectToHostEncrypted('127.0.0.1', peer.port);
    client.write('SECRET-PLAINTEXT');
    await waitUntil(() => received.length > 0);
    await sleep(200);
    client.write('MORE-SECRET');
    await sleep(100);
    const all = Buffer.concat(received);
    // A TLS handshake record: content type 22, version 3.x.
    expect(all[0]).toBe(0x16);
    expect(all[1]).toBe(0x03);
    expect(all.includes('SECRET')).toBe(false);
    expect(client.isEncrypted()).toBe(false);
    expect(client.bytesToWrite()).toBe(27);
  });

  test("a peer that does not speak TLS fails the handshake with OpenSSL's reason", async () => {
    const peer = await startNetPeer('127.0.0.1', (s) => {
      s.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    });
    res.add(() => peer.close());
    const client = sslClient(res, trustCa);
    const log = recordSsl(client);
    client.connectToHostEncrypted('127.0.0.1', peer.port);
    expect(await client.waitForEncrypted(5000)).toBe(false);
    expect(client.error()).toBe(SocketError.SslHandshakeFailedError);
    expect(client.errorString()).toBe(
      'Error during SSL handshake: error:0A00010B:SSL routines::wrong version number',
    );
    expect(client.state()).toBe(SocketState.UnconnectedState);
    expect(log).toEqual([
      ...CONNECTED,
      `error(13:${client.errorString()})`,
      'stateChanged(0)',
      'disconnected',
    ]);
  });

  test('a server that closes during the handshake is RemoteHostClosedError, as in Qt', async () => {
    const peer = await startNetPeer('127.0.0.1', (s) => s.once('data', () => s.destroy()));
    res.add(() => peer.close());
    const client = sslClient(res, trustCa);
    client.connectToHostEncrypted('127.0.0.1', peer.port);
    expect(await client.waitForEncrypted(5000)).toBe(false);
    expect(client.error()).toBe(SocketError.RemoteHostClosedError);
    expect(client.errorString()).toBe('The remote host closed the connection');
  });

  test('waitForEncrypted times out against a silent server with SocketTimeoutError, leaving the socket connected', async () => {
    const peer = await startNetPeer('127.0.0.1');
    res.add(() => peer.close());
    const client = sslClient(res, trustCa);
    client.connectToHostEncrypted('127.0.0.1', peer.port);
    const t0 = Date.now();
    expect(await client.waitForEncrypted(300)).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(client.error()).toBe(SocketError.SocketTimeoutError);
    expect(client.state()).toBe(SocketState.ConnectedState);
  });

  test('disconnectFromHost while connecting: the handshake completes, the data goes out, then it closes', async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    const log = recordSsl(client);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    client.write('last words');
    client.disconnectFromHost();
    const peer = await nextConnection(res, srv);
    expect((await readBytes(peer, 10)).toString()).toBe('last words');
    await unconnected(client);
    expect(log).toContain('encrypted');
    expect(log.slice(-3)).toEqual(REFUSED_END);
  });
});

describe('verification (Qt 5.15 lists and texts)', () => {
  async function refusedBy(
    setup: Parameters<typeof startSslServer>[1],
    host = 'localhost',
    clientSetup: SslSetup = trustCa,
  ) {
    const srv = await startSslServer(res, setup);
    const client = sslClient(res, clientSetup);
    const log = recordSsl(client);
    client.connectToHostEncrypted(host, srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(false);
    await unconnected(client);
    return { client, log };
  }

  test('an expired certificate: CertificateExpired, then SslHandshakeFailedError and the connection closes', async () => {
    const { client, log } = await refusedBy({ cert: pki.expiredCert, key: pki.serverKey });
    expect(log).toEqual([
      ...CONNECTED,
      'peerVerifyError(6)',
      'sslErrors([6])',
      'error(13:The certificate has expired)',
      ...REFUSED_END,
    ]);
    expect(client.error()).toBe(SocketError.SslHandshakeFailedError);
    const [err] = client.sslHandshakeErrors();
    expect(err.error()).toBe(SslError.CertificateExpired);
    expect(err.certificate().isEqual(QSslCertificate.fromPath(pki.expiredCert)[0])).toBe(true);
    expect(client.isEncrypted()).toBe(false);
  });

  test('a certificate for another host: HostNameMismatch', async () => {
    const { log } = await refusedBy({ cert: pki.wrongHostCert, key: pki.wrongHostKey });
    expect(log).toEqual([
      ...CONNECTED,
      'peerVerifyError(22)',
      'sslErrors([22])',
      'error(13:The host name did not match any of the valid hosts for this certificate)',
      ...REFUSED_END,
    ]);
  });

  test('a self-signed certificate: SelfSignedCertificate', async () => {
    const { log } = await refusedBy(
      { cert: pki.selfSignedCert, key: pki.selfSignedKey },
      'localhost',
      {},
    );
    expect(log).toEqual([
      ...CONNECTED,
      'peerVerifyError(9)',
      'sslErrors([9])',
      'error(13:The certificate is self-signed, and untrusted)',
      ...REFUSED_END,
    ]);
  });

  test('a certificate from an unknown CA, sent alone: UnableToGetLocalIssuerCertificate and UnableToVerifyFirstCertificate', async () => {
    const { log } = await refusedBy(server, 'localhost', { ca: [pki.otherCaCert] });
    expect(log).toEqual([
      ...CONNECTED,
      'peerVerifyError(11)',
      'peerVerifyError(12)',
      'sslErrors([11, 12])',
      'error(13:The issuer certificate of a locally looked up certificate could not be found)',
      ...REFUSED_END,
    ]);
  });

  test('a chain ending in an unknown root: SelfSignedCertificateInChain', async () => {
    // The server trusts its CA, so OpenSSL sends the CA along with the certificate.
    const { log } = await refusedBy({ ...server, ca: [pki.caCert] }, 'localhost', {
      ca: [pki.otherCaCert],
    });
    expect(log).toEqual([
      ...CONNECTED,
      'peerVerifyError(10)',
      'sslErrors([10])',
      'error(13:The root certificate of the certificate chain is self-signed, and untrusted)',
      ...REFUSED_END,
    ]);
  });

  test('several errors: the host name first in sslErrors, last among peerVerifyError', async () => {
    const { client, log } = await refusedBy(
      { cert: pki.wrongHostCert, key: pki.wrongHostKey },
      'localhost',
      { ca: [pki.otherCaCert] },
    );
    expect(log).toEqual([
      ...CONNECTED,
      'peerVerifyError(11)',
      'peerVerifyError(12)',
      'peerVerifyError(22)',
      'sslErrors([22, 11, 12])',
      'error(13:The host name did not match any of the valid hosts for this certificate)',
      ...REFUSED_END,
    ]);
    expect(client.sslHandshakeErrors().map((e) => e.error())).toEqual([22, 11, 12]);
  });

  test('ignoreSslErrors() from a slot connected to sslErrors lets the handshake go on', async () => {
    const srv = await startSslServer(res, { cert: pki.expiredCert, key: pki.serverKey });
    const client = sslClient(res, trustCa);
    const log = recordSsl(client);
    client.sslErrors.connect(() => client.ignoreSslErrors());
    client.connectToHostEncrypted('localhost', srv.serverPort());
    client.write('ping');
    expect(await client.waitForEncrypted(5000)).toBe(true);
    expect(log).toEqual([...CONNECTED, 'peerVerifyError(6)', 'sslErrors([6])', 'encrypted']);
    const peer = await nextConnection(res, srv);
    expect((await readBytes(peer, 4)).toString()).toBe('ping');
    expect(client.sslHandshakeErrors().map((e) => e.error())).toEqual([
      SslError.CertificateExpired,
    ]);
  });

  test('ignoreSslErrors(list) set before connecting: the expected errors pass, others do not', async () => {
    const srv = await startSslServer(res, { cert: pki.expiredCert, key: pki.serverKey });
    const expired = QSslCertificate.fromPath(pki.expiredCert)[0];
    const ok = sslClient(res, trustCa);
    ok.ignoreSslErrors([new QSslError(SslError.CertificateExpired, expired)]);
    ok.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await ok.waitForEncrypted(5000)).toBe(true);

    // Qt compares the certificate too: an error without it does not match.
    const noCert = sslClient(res, trustCa);
    noCert.ignoreSslErrors([new QSslError(SslError.CertificateExpired)]);
    noCert.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await noCert.waitForEncrypted(5000)).toBe(false);

    const other = sslClient(res, trustCa);
    other.ignoreSslErrors([new QSslError(SslError.HostNameMismatch, expired)]);
    other.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await other.waitForEncrypted(5000)).toBe(false);
    expect(other.errorString()).toBe('The certificate has expired');
  });

  test('ignoreSslErrors() called after connectToHostEncrypted, before the handshake, applies to it', async () => {
    const srv = await startSslServer(res, { cert: pki.selfSignedCert, key: pki.selfSignedKey });
    const client = sslClient(res, trustCa);
    const log = recordSsl(client);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    client.ignoreSslErrors();
    // -1: no time limit, as Qt's waitForEncrypted(-1).
    expect(await client.waitForEncrypted(-1)).toBe(true);
    expect(log).toEqual([...CONNECTED, 'peerVerifyError(9)', 'sslErrors([9])', 'encrypted']);
  });

  test('a slot that aborts on sslErrors ends it; SslHandshakeFailedError follows, as in Qt', async () => {
    const srv = await startSslServer(res, { cert: pki.expiredCert, key: pki.serverKey });
    const client = sslClient(res, trustCa);
    const log = recordSsl(client);
    client.sslErrors.connect(() => client.abort());
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(false);
    expect(log).toEqual([
      ...CONNECTED,
      'peerVerifyError(6)',
      'sslErrors([6])',
      'stateChanged(0)',
      'disconnected',
      'error(13:The certificate has expired)',
    ]);
    expect(client.isEncrypted()).toBe(false);
  });

  test('a slot that aborts on peerVerifyError ends the handshake there', async () => {
    const srv = await startSslServer(res, { cert: pki.wrongHostCert, key: pki.wrongHostKey });
    const client = sslClient(res, trustCa);
    const log = recordSsl(client);
    client.peerVerifyError.connect(() => client.abort());
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(false);
    expect(log).toEqual([...CONNECTED, 'peerVerifyError(22)', 'stateChanged(0)', 'disconnected']);
  });

  test('VerifyNone accepts an untrusted server without any error', async () => {
    const srv = await startSslServer(res, { cert: pki.selfSignedCert, key: pki.selfSignedKey });
    const client = sslClient(res, { verify: PeerVerifyMode.VerifyNone });
    const log = recordSsl(client);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(true);
    expect(log).toEqual([...CONNECTED, 'encrypted']);
  });

  test('QueryPeer reports the errors but goes on', async () => {
    const srv = await startSslServer(res, { cert: pki.expiredCert, key: pki.serverKey });
    const client = sslClient(res, { ...trustCa, verify: PeerVerifyMode.QueryPeer });
    const log = recordSsl(client);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(true);
    expect(log).toEqual([...CONNECTED, 'peerVerifyError(6)', 'sslErrors([6])', 'encrypted']);
  });

  test("connecting to 127.0.0.1 matches the certificate's IP address", async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    client.connectToHostEncrypted('127.0.0.1', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(true);
  });

  test('the sslPeerName overload and setPeerVerifyName check against that name', async () => {
    const srv = await startSslServer(res, { cert: pki.wrongHostCert, key: pki.wrongHostKey });
    const a = sslClient(res, trustCa);
    a.connectToHostEncrypted('127.0.0.1', srv.serverPort(), 'wrong.example');
    expect(await a.waitForEncrypted(5000)).toBe(true);
    expect(a.peerVerifyName()).toBe('wrong.example');

    const b = sslClient(res, trustCa);
    b.connectToHostEncrypted(
      'localhost',
      srv.serverPort(),
      OpenModeFlag.ReadWrite,
      'wrong.example',
    );
    expect(await b.waitForEncrypted(5000)).toBe(true);

    const c = sslClient(res, trustCa);
    c.setPeerVerifyName('localhost');
    c.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await c.waitForEncrypted(5000)).toBe(false);
    expect(c.sslHandshakeErrors().map((e) => e.error())).toEqual([SslError.HostNameMismatch]);
  });
});

/** A QTcpServer that makes QSslSockets of its connections, as Qt's tests do for STARTTLS. */
class PlainSslServer extends QTcpServer {
  protected override incomingConnection(handle: NativeSocketHandle): void {
    const socket = new QSslSocket();
    if (!socket.setSocketDescriptor(handle)) {
      handle.destroy();
      return;
    }
    this.addPendingConnection(socket);
  }

  override nextPendingConnection(): QSslSocket | null {
    return super.nextPendingConnection() as QSslSocket | null;
  }
}

describe('encryption on an established connection', () => {
  test('STARTTLS: plain lines first, then startClientEncryption/startServerEncryption', async () => {
    const srv = res.server(new PlainSslServer());
    expect(await srv.listen('127.0.0.1', 0)).toBe(true);
    const client = sslClient(res, trustCa);
    client.connectToHost('127.0.0.1', srv.serverPort());
    expect(await client.waitForConnected(5000)).toBe(true);
    const peer = await nextConnection(res, srv);
    peer.setSslConfiguration(sslConfig(server));

    client.write('STARTTLS\r\n');
    expect((await readBytes(peer, 10)).toString()).toBe('STARTTLS\r\n');
    peer.write('OK\r\n');
    peer.startServerEncryption();
    expect(peer.mode()).toBe(SslMode.SslServerMode);
    expect((await readBytes(client, 4)).toString()).toBe('OK\r\n');
    const modes: SslMode[] = [];
    client.modeChanged.connect((m) => modes.push(m));
    client.setPeerVerifyName('localhost');
    client.startClientEncryption();
    expect(modes).toEqual([SslMode.SslClientMode]);
    client.write('secret');
    expect(await client.waitForEncrypted(5000)).toBe(true);
    expect(await peer.waitForEncrypted(5000)).toBe(true);
    expect((await readBytes(peer, 6)).toString()).toBe('secret');
    peer.write('reply');
    expect((await readBytes(client, 5)).toString()).toBe('reply');
  });

  test('bytes received and not read when the server starts encryption go to the handshake', async () => {
    const srv = res.server(new PlainSslServer());
    expect(await srv.listen('127.0.0.1', 0)).toBe(true);
    const client = sslClient(res, trustCa);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    const peer = await nextConnection(res, srv);
    peer.setSslConfiguration(sslConfig(server));
    // The ClientHello arrives on the plain socket first.
    await waitUntil(() => peer.bytesAvailable() > 0);
    expect(peer.peek(1)[0]).toBe(0x16);
    peer.startServerEncryption();
    expect(peer.bytesAvailable()).toBe(0);
    expect(await client.waitForEncrypted(5000)).toBe(true);
    expect(await peer.waitForEncrypted(5000)).toBe(true);
  });

  test('startClientEncryption warns and does nothing unless connected in plain mode', async () => {
    const messages = captureQtMessages();
    res.add(() => messages.restore());
    const client = sslClient(res, trustCa);
    client.startClientEncryption();
    expect(messages.messages).toEqual([
      'QSslSocket::startClientEncryption: cannot start handshake when not connected',
    ]);
    expect(client.mode()).toBe(SslMode.UnencryptedMode);

    const srv = await startSslServer(res, server);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(true);
    client.startClientEncryption();
    expect(messages.messages[1]).toBe(
      'QSslSocket::startClientEncryption: cannot start handshake on non-plain connection',
    );
  });
});

describe('data over TLS', () => {
  test('1 MiB echoes back byte for byte', async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    const peer = await nextConnection(res, srv);
    peer.readyRead.connect(() => peer.write(peer.readAll()));
    const data = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 10)) & 0xff;
    let written = 0;
    client.bytesWritten.connect((n) => (written += n));
    expect(client.write(data)).toBe(data.length);
    const echoed = await readBytes(client, data.length, 15000);
    expect(echoed.equals(data)).toBe(true);
    expect(written).toBe(data.length);
  });

  test('setReadBufferSize bounds bytesAvailable over TLS, and all the data still arrives', async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    client.setReadBufferSize(1024);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    const peer = await nextConnection(res, srv);
    const data = Buffer.alloc(256 * 1024, 0x5a);
    peer.write(data);
    await waitUntil(() => client.bytesAvailable() === 1024);
    await sleep(100);
    expect(client.bytesAvailable()).toBe(1024);
    const all = await readBytes(client, data.length, 15000);
    expect(all.equals(data)).toBe(true);
  });

  test('disconnectFromHost after encryption sends pending data, then the peer sees the connection close', async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    const peer = await nextConnection(res, srv);
    expect(await client.waitForEncrypted(5000)).toBe(true);
    const peerLog = recordSsl(peer);
    client.write(Buffer.alloc(100000, 1));
    client.disconnectFromHost();
    expect(client.state()).toBe(SocketState.ClosingState);
    expect((await readBytes(peer, 100000)).length).toBe(100000);
    await unconnected(peer);
    expect(peer.error()).toBe(SocketError.RemoteHostClosedError);
    expect(peerLog).toEqual([
      'error(1:The remote host closed the connection)',
      'stateChanged(6)',
      'stateChanged(0)',
      'disconnected',
    ]);
    // As in Qt, the socket stays "encrypted" and keeps the peer's certificate; the cipher goes.
    await unconnected(client);
    expect(client.isEncrypted()).toBe(true);
    expect(client.peerCertificate().isNull()).toBe(false);
    expect(client.sessionCipher().isNull()).toBe(true);
  });

  test('a new connectToHostEncrypted starts afresh', async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    for (let i = 0; i < 2; i++) {
      client.connectToHostEncrypted('localhost', srv.serverPort());
      expect(await client.waitForEncrypted(5000)).toBe(true);
      const peer = await nextConnection(res, srv);
      client.write(`round ${i}`);
      expect((await readBytes(peer, 7)).toString()).toBe(`round ${i}`);
      client.disconnectFromHost();
      await unconnected(client);
    }
  });
});

describe('configuration', () => {
  test('setProtocol(TlsV1_2) negotiates TLS 1.2; a TLS 1.3-only client cannot reach a TLS 1.2-only server', async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    client.setProtocol(SslProtocol.TlsV1_2);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(true);
    expect(client.sessionProtocol()).toBe(SslProtocol.TlsV1_2);
    expect(client.sessionCipher().protocolString()).toBe('TLSv1.2');
    expect(client.sessionCipher().keyExchangeMethod()).toBe('ECDH');
    expect(client.sessionCipher().authenticationMethod()).toBe('ECDSA');

    const old = res.server(new PlainSslServer());
    expect(await old.listen('127.0.0.1', 0)).toBe(true);
    const c13 = sslClient(res, trustCa);
    c13.setProtocol(SslProtocol.TlsV1_3OrLater);
    c13.connectToHostEncrypted('localhost', old.serverPort());
    const peer = await nextConnection(res, old);
    const conf = sslConfig(server);
    conf.setProtocol(SslProtocol.TlsV1_2);
    peer.setSslConfiguration(conf);
    await waitUntil(() => peer.bytesAvailable() > 0);
    peer.startServerEncryption();
    expect(await c13.waitForEncrypted(5000)).toBe(false);
    expect(c13.error()).toBe(SocketError.SslHandshakeFailedError);
    expect(c13.errorString()).toMatch(
      /^Error during SSL handshake: error:[0-9A-F]{8}:SSL routines::/,
    );
  });

  test("SSLv3 and DTLS are refused with SslInvalidUserDataError and Qt's texts", async () => {
    const srv = await startSslServer(res, server);
    const messages = captureQtMessages();
    res.add(() => messages.restore());
    const dtls = sslClient(res, trustCa);
    dtls.setProtocol(SslProtocol.DtlsV1_2);
    const errors: SocketError[] = [];
    dtls.errorOccurred.connect((e) => errors.push(e));
    dtls.connectToHostEncrypted('localhost', srv.serverPort());
    await waitUntil(() => errors.length > 0);
    expect(errors).toEqual([SocketError.SslInvalidUserDataError]);
    expect(dtls.errorString()).toBe('Attempted to use an unsupported protocol.');
    expect(dtls.mode()).toBe(SslMode.UnencryptedMode);

    const ssl3 = sslClient(res, trustCa);
    ssl3.setProtocol(SslProtocol.SslV3);
    ssl3.connectToHostEncrypted('localhost', srv.serverPort());
    await waitUntil(() => ssl3.error() === SocketError.SslInvalidUserDataError);
    expect(ssl3.errorString()).toBe('unsupported protocol');
    await unconnected(ssl3);
  });

  test('a certificate without its key is SslInvalidUserDataError', async () => {
    const srv = await startSslServer(res, server);
    const client = res.socket(new QSslSocket());
    client.setLocalCertificate(pki.clientCert);
    client.setCaCertificates(QSslCertificate.fromPath(pki.caCert));
    client.connectToHostEncrypted('localhost', srv.serverPort());
    await waitUntil(() => client.error() === SocketError.SslInvalidUserDataError);
    expect(client.errorString()).toBe('Cannot provide a certificate with no key, ');
  });

  test('setLocalCertificate/setPrivateKey take files and buffers; a mismatching key is refused', async () => {
    const srv = await startSslServer(res, {
      ...server,
      ca: [pki.caCert],
      verify: PeerVerifyMode.VerifyPeer,
    });
    const fromFiles = res.socket(new QSslSocket());
    fromFiles.setCaCertificates(QSslCertificate.fromPath(pki.caCert));
    fromFiles.setLocalCertificate(pki.clientCert);
    fromFiles.setPrivateKey(pki.clientKey);
    expect(fromFiles.localCertificate().subjectDisplayName()).toBe('test client');
    expect(fromFiles.privateKey().isNull()).toBe(false);
    fromFiles.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await fromFiles.waitForEncrypted(5000)).toBe(true);
    const peer = await nextConnection(res, srv);
    expect(peer.peerCertificate().subjectDisplayName()).toBe('test client');

    const fromBuffers = res.socket(new QSslSocket());
    fromBuffers.setCaCertificates(QSslCertificate.fromPath(pki.caCert));
    fromBuffers.setLocalCertificate(readFileSync(pki.clientCert));
    fromBuffers.setPrivateKey(readFileSync(pki.serverKey));
    fromBuffers.connectToHostEncrypted('localhost', srv.serverPort());
    await waitUntil(() => fromBuffers.error() === SocketError.SslInvalidUserDataError);
    expect(fromBuffers.errorString()).toMatch(/^Private key does not certify public key, /);
  });

  test('ALPN: allowedNextProtocols are negotiated', async () => {
    const serverConf = sslConfig(server);
    serverConf.setAllowedNextProtocols(['qt-rpc/2', 'qt-rpc/1']);
    const srv = res.server(new (await import('../../../lib/qtnetwork/index.js')).QSslServer());
    srv.setSslConfiguration(serverConf);
    expect(await srv.listen('127.0.0.1', 0)).toBe(true);
    const client = sslClient(res, trustCa);
    const conf = client.sslConfiguration();
    conf.setAllowedNextProtocols(['qt-rpc/1']);
    client.setSslConfiguration(conf);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(true);
    expect(client.sslConfiguration().nextNegotiatedProtocol().toString()).toBe('qt-rpc/1');
    expect(client.sslConfiguration().nextProtocolNegotiationStatus()).toBe(1);
  });

  test('an encrypted key is read with its passphrase', async () => {
    const key = new QSslKey(
      readFileSync(pki.serverKeyEncrypted),
      undefined,
      undefined,
      undefined,
      'secret',
    );
    expect(key.isNull()).toBe(false);
    const srv = await startSslServer(res, {
      cert: pki.serverCert,
      key: pki.serverKeyEncrypted,
      passphrase: 'secret',
    });
    const client = sslClient(res, trustCa);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(true);
  });

  test('socketDescriptor is the TCP descriptor while encrypted', async () => {
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    expect(await client.waitForEncrypted(5000)).toBe(true);
    if (process.platform !== 'win32') expect(client.socketDescriptor()).toBeGreaterThan(2);
    expect(client.isValid()).toBe(true);
    expect(client.peerPort()).toBe(srv.serverPort());
    expect(client.peerName()).toBe('localhost');
  });

  test('a plain connectToHost on a QSslSocket stays plain', async () => {
    const peer = await startNetPeer('127.0.0.1', (s) => s.on('data', (d) => s.write(d)));
    res.add(() => peer.close());
    const client = res.socket(new QSslSocket());
    client.connectToHost('127.0.0.1', peer.port);
    expect(await client.waitForConnected(5000)).toBe(true);
    client.write('plain');
    expect((await readBytes(client, 5)).toString()).toBe('plain');
    expect(client.mode()).toBe(SslMode.UnencryptedMode);
    expect(await client.waitForEncrypted(100)).toBe(false);
  });
});

test('a raw TLS peer from node:net and node:tls interoperates (sanity check of the test PKI)', async () => {
  const srv = await startSslServer(res, server);
  const raw = net.connect(srv.serverPort(), '127.0.0.1');
  res.add(() => raw.destroy());
  const { connect } = await import('node:tls');
  const t = connect({ socket: raw, ca: readFileSync(pki.caCert), servername: 'localhost' });
  res.add(() => t.destroy());
  await new Promise<void>((resolve, reject) => {
    t.once('secureConnect', () => resolve());
    t.once('error', reject);
  });
  expect(t.authorized).toBe(true);
});

describe('closing an encrypted connection', () => {
  /**
   * A relay between a client and `port` that keeps what the client sends, so the last TLS
   * record can be read (TLS 1.2: an alert record has content type 21).
   */
  async function relay(port: number): Promise<{ port: number; fromClient: () => Buffer }> {
    const chunks: Buffer[] = [];
    const srv = net.createServer((c) => {
      const up = net.connect(port, '127.0.0.1');
      c.on('data', (d: Buffer) => {
        chunks.push(d);
        up.write(d);
      });
      up.on('data', (d: Buffer) => c.write(d));
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
      c.on('error', () => undefined);
      up.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
    res.add(() => new Promise<void>((resolve) => srv.close(() => resolve())));
    return {
      port: (srv.address() as net.AddressInfo).port,
      fromClient: () => Buffer.concat(chunks),
    };
  }

  /** The content type of the last TLS record in `data`. */
  function lastRecordType(data: Buffer): number {
    let offset = 0;
    let type = -1;
    while (offset + 5 <= data.length) {
      type = data[offset];
      offset += 5 + data.readUInt16BE(offset + 3);
    }
    return type;
  }

  test.each([
    ['disconnectFromHost sends a close_notify alert, as Qt does', true],
    ['abort does not', false],
  ])('%s', async (_name, graceful) => {
    const srv = await startSslServer(res, server);
    const hop = await relay(srv.serverPort());
    const client = sslClient(res, trustCa);
    client.setProtocol(SslProtocol.TlsV1_2);
    client.connectToHostEncrypted('localhost', hop.port, 'localhost');
    expect(await client.waitForEncrypted(5000)).toBe(true);
    const peer = await nextConnection(res, srv);
    client.write('bye');
    await readBytes(peer, 3);
    if (graceful) client.disconnectFromHost();
    else client.abort();
    await unconnected(peer);
    expect(peer.error()).toBe(SocketError.RemoteHostClosedError);
    // 21: alert; 23: application data (the last thing written before an abort).
    expect(lastRecordType(hop.fromClient())).toBe(graceful ? 21 : 23);
  });
});

describe('through proxies (the TLS handshake runs inside the tunnel)', () => {
  const { startMicrosocks, startNpmProxy, findBinary } = proxies;
  const cases: Array<
    [string, () => Promise<{ host: string; port: number; stop(): Promise<void> }>, ProxyType]
  > = [["npm's proxy (HTTP CONNECT)", () => startNpmProxy(), ProxyType.HttpProxy]];
  if (findBinary('microsocks'))
    cases.push(['microsocks (SOCKS5)', () => startMicrosocks(), ProxyType.Socks5Proxy]);
  else console.log('QSslSocket through microsocks skipped: microsocks is not installed');

  test.each(cases)('%s', async (_name, start, type) => {
    const proxy = await start();
    res.add(() => proxy.stop());
    const srv = await startSslServer(res, server);
    const client = sslClient(res, trustCa);
    client.setProxy(new QNetworkProxy(type, proxy.host, proxy.port));
    const log = recordSsl(client);
    client.connectToHostEncrypted('localhost', srv.serverPort());
    client.write('via proxy');
    expect(await client.waitForEncrypted(5000)).toBe(true);
    expect(log).toContain('modeChanged(1)');
    const peer = await nextConnection(res, srv);
    expect((await readBytes(peer, 9)).toString()).toBe('via proxy');
    expect(client.peerCertificate().subjectDisplayName()).toBe('localhost');
  });
});
