/**
 * Pre-shared keys (TLS-PSK) on QSslSocket and QSslServer: the authenticator each side's
 * slot receives (the limits are Qt 5.15's with OpenSSL 3: a 255-byte identity, a 512-byte
 * key; a server offers no identity), the handshake that follows, and what fails it. As in
 * Qt, PSK is TLS 1.2's (a PSK cipher suite): the ClientHello of a TLS 1.3 client offers no
 * key. test/qtnetwork/ssl/qssl-features-interop.spec.ts runs the same against real Qt.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';

import { jest } from '@jest/globals';

import {
  PeerVerifyMode,
  QSslConfiguration,
  QSslPreSharedKeyAuthenticator,
  QSslServer,
  QSslSocket,
  SocketError,
  SocketState,
  SslProtocol,
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
import { waitUntil } from '../../helpers/signals.js';

jest.setTimeout(20000);

const pki = sslPki();
afterAll(() => removeSslPki());
const res = new Resources();
afterEach(() => res.dispose());

const CIPHER = 'PSK-AES128-CBC-SHA256';
const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

/** What an authenticator holds, as one line. */
function fields(a: QSslPreSharedKeyAuthenticator): string {
  return [
    `hint=${JSON.stringify(a.identityHint().toString())}`,
    `identity=${JSON.stringify(a.identity().toString())}`,
    `maxIdentity=${a.maximumIdentityLength()}`,
    `maxKey=${a.maximumPreSharedKeyLength()}`,
    `key=${a.preSharedKey().length}`,
  ].join(' ');
}

/** A QSslServer for PSK only: no certificate, TLS 1.2, a PSK cipher suite. */
async function pskServer(hint: string | null): Promise<QSslServer> {
  const server = res.server(new QSslServer());
  const config = QSslConfiguration.defaultConfiguration();
  config.setCiphers(CIPHER);
  config.setProtocol(SslProtocol.TlsV1_2);
  if (hint !== null) config.setPreSharedKeyIdentityHint(hint);
  server.setSslConfiguration(config);
  if (!(await server.listen('127.0.0.1', 0))) throw new Error(server.errorString());
  return server;
}

/** A client for PSK: VerifyNone (a PSK server presents no certificate), TLS 1.2, the cipher. */
function pskClient(verify = PeerVerifyMode.VerifyNone): QSslSocket {
  const client = res.socket(new QSslSocket());
  const config = client.sslConfiguration();
  config.setCiphers(CIPHER);
  config.setProtocol(SslProtocol.TlsV1_2);
  config.setPeerVerifyMode(verify);
  client.setSslConfiguration(config);
  return client;
}

async function settled(socket: QSslSocket): Promise<void> {
  await waitUntil(
    () => socket.isEncrypted() || socket.state() === SocketState.UnconnectedState,
    10000,
    'encrypted or closed',
  );
}

describe('a PSK handshake between QSslSocket and QSslServer', () => {
  test('each side fills its authenticator; the connection is encrypted with the PSK suite', async () => {
    const server = await pskServer('hint-1');
    const serverSide: string[] = [];
    server.preSharedKeyAuthenticationRequired.connect((socket, a) => {
      serverSide.push(`${socket instanceof QSslSocket} ${fields(a)}`);
      a.setPreSharedKey(KEY);
    });
    const client = pskClient();
    const log = recordSsl(client);
    client.preSharedKeyAuthenticationRequired.connect((a) => {
      log.push(`psk ${fields(a)}`);
      a.setIdentity('client-1');
      a.setPreSharedKey(KEY);
    });
    client.connectToHostEncrypted('127.0.0.1', server.serverPort());
    const peer = await nextConnection(res, server);
    await settled(client);
    expect(log).toEqual([
      'stateChanged(1)',
      'stateChanged(2)',
      'stateChanged(3)',
      'modeChanged(1)',
      'connected',
      'psk hint="hint-1" identity="" maxIdentity=255 maxKey=512 key=0',
      'encrypted',
    ]);
    expect(serverSide).toEqual([
      'true hint="hint-1" identity="client-1" maxIdentity=0 maxKey=512 key=0',
    ]);
    expect(client.sessionCipher().name()).toBe(CIPHER);
    expect(peer.sessionProtocol()).toBe(SslProtocol.TlsV1_2);
    expect(peer.peerCertificate().isNull()).toBe(true);
    client.write('over a shared key');
    expect((await readBytes(peer, 17)).toString()).toBe('over a shared key');
  });

  test("the server's socket emits the signal itself too, before QSslServer passes it on", async () => {
    const server = await pskServer(null);
    const order: string[] = [];
    server.preSharedKeyAuthenticationRequired.connect((_s, a) => {
      order.push(`server ${a.preSharedKey().length}`);
      a.setPreSharedKey(KEY);
    });
    server.startedEncryptionHandshake.connect((socket) =>
      socket.preSharedKeyAuthenticationRequired.connect((a) => order.push(`socket ${fields(a)}`)),
    );
    const client = pskClient();
    client.preSharedKeyAuthenticationRequired.connect((a) => {
      expect(a.identityHint().length).toBe(0);
      a.setIdentity('c');
      a.setPreSharedKey(KEY);
    });
    client.connectToHostEncrypted('127.0.0.1', server.serverPort());
    await nextConnection(res, server);
    // QSslServer connected first, when it made the socket; the application's slot after.
    expect(order).toEqual([
      'server 0',
      'socket hint="" identity="c" maxIdentity=0 maxKey=512 key=16',
    ]);
  });

  test('an identity over 255 bytes is cut to 255, a key over 512 to 512', async () => {
    const server = await pskServer(null);
    let seen = '';
    const longKey = Buffer.alloc(600, 7);
    server.preSharedKeyAuthenticationRequired.connect((_s, a) => {
      seen = a.identity().toString();
      a.setPreSharedKey(longKey);
    });
    const client = pskClient();
    client.preSharedKeyAuthenticationRequired.connect((a) => {
      a.setIdentity('x'.repeat(300));
      a.setPreSharedKey(longKey);
    });
    client.connectToHostEncrypted('127.0.0.1', server.serverPort());
    await nextConnection(res, server);
    await settled(client);
    expect(seen).toBe('x'.repeat(255));
    expect(client.isEncrypted()).toBe(true);
  });
});

describe('what fails a PSK handshake', () => {
  test('a server slot that sets no key: both sides fail the handshake', async () => {
    const server = await pskServer(null);
    const serverErrors: SocketError[] = [];
    server.errorOccurred.connect((_s, e) => serverErrors.push(e));
    server.preSharedKeyAuthenticationRequired.connect(() => undefined);
    const client = pskClient();
    client.preSharedKeyAuthenticationRequired.connect((a) => {
      a.setIdentity('who');
      a.setPreSharedKey(KEY);
    });
    client.connectToHostEncrypted('127.0.0.1', server.serverPort());
    await settled(client);
    await waitUntil(() => serverErrors.length > 0);
    expect(client.isEncrypted()).toBe(false);
    expect(serverErrors[0]).toBe(SocketError.SslHandshakeFailedError);
    expect(server.hasPendingConnections()).toBe(false);
  });

  test('a client slot that sets no key fails its own handshake', async () => {
    const server = await pskServer(null);
    let asked = 0;
    server.preSharedKeyAuthenticationRequired.connect(() => asked++);
    const client = pskClient();
    client.preSharedKeyAuthenticationRequired.connect((a) => a.setIdentity('no key'));
    client.connectToHostEncrypted('127.0.0.1', server.serverPort());
    await settled(client);
    expect(client.isEncrypted()).toBe(false);
    expect(client.error()).toBe(SocketError.SslHandshakeFailedError);
    expect(client.errorString()).toMatch(/^Error during SSL handshake: /);
    expect(asked).toBe(0);
  });

  test('different keys fail the handshake', async () => {
    const server = await pskServer(null);
    server.preSharedKeyAuthenticationRequired.connect((_s, a) => a.setPreSharedKey('one key'));
    const client = pskClient();
    client.preSharedKeyAuthenticationRequired.connect((a) => a.setPreSharedKey('another key'));
    client.connectToHostEncrypted('127.0.0.1', server.serverPort());
    await settled(client);
    expect(client.isEncrypted()).toBe(false);
    expect(client.error()).toBe(SocketError.SslHandshakeFailedError);
  });

  test('a client that verifies the server (the default) refuses one without a certificate, as Qt', async () => {
    const server = await pskServer(null);
    server.preSharedKeyAuthenticationRequired.connect((_s, a) => a.setPreSharedKey(KEY));
    const client = pskClient(PeerVerifyMode.AutoVerifyPeer);
    client.preSharedKeyAuthenticationRequired.connect((a) => a.setPreSharedKey(KEY));
    const log = recordSsl(client);
    client.connectToHostEncrypted('127.0.0.1', server.serverPort());
    await settled(client);
    await waitUntil(() => client.state() === SocketState.UnconnectedState);
    expect(log.slice(5)).toEqual([
      'peerVerifyError(21)',
      'sslErrors([21])',
      'error(13:The peer did not present any certificate)',
      'stateChanged(6)',
      'stateChanged(0)',
      'disconnected',
    ]);
  });

  test('a slot that aborts the socket ends the handshake; no key is used', async () => {
    const server = await pskServer(null);
    server.preSharedKeyAuthenticationRequired.connect((_s, a) => a.setPreSharedKey(KEY));
    const client = pskClient();
    client.preSharedKeyAuthenticationRequired.connect((a) => {
      a.setPreSharedKey(KEY);
      client.abort();
    });
    client.connectToHostEncrypted('127.0.0.1', server.serverPort());
    await settled(client);
    expect(client.isEncrypted()).toBe(false);
    expect(client.state()).toBe(SocketState.UnconnectedState);
    expect(server.hasPendingConnections()).toBe(false);
  });
});

describe('TLS 1.3', () => {
  test('a TLS 1.3 client is not asked for a key when writing its ClientHello (as Qt); certificates are used', async () => {
    const server = await startSslServer(res, { cert: pki.serverCert, key: pki.serverKey });
    const client = sslClient(res, { ca: [pki.caCert] });
    let asked = 0;
    client.preSharedKeyAuthenticationRequired.connect(() => asked++);
    client.connectToHostEncrypted('localhost', server.serverPort());
    await settled(client);
    expect(client.isEncrypted()).toBe(true);
    expect(client.sessionProtocol()).toBe(SslProtocol.TlsV1_3);
    expect(asked).toBe(0);
  });

  test("QSslServer answers a TLS 1.3 client that offers a key (Node's tls): the slot sees its identity", async () => {
    const server = res.server(new QSslServer());
    server.setSslConfiguration(QSslConfiguration.defaultConfiguration());
    const identities: string[] = [];
    server.preSharedKeyAuthenticationRequired.connect((_s, a) => {
      identities.push(a.identity().toString());
      a.setPreSharedKey(KEY);
    });
    expect(await server.listen('127.0.0.1', 0)).toBe(true);
    const raw = net.connect(server.serverPort(), '127.0.0.1');
    const node = tls.connect({
      socket: raw,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ psk: KEY, identity: 'node client' }),
    });
    res.add(() => node.destroy());
    const protocol = await new Promise<string | null>((resolve, reject) => {
      node.once('secureConnect', () => resolve(node.getProtocol()));
      node.once('error', reject);
    });
    expect(protocol).toBe('TLSv1.3');
    expect(identities).toEqual(['node client']);
    const peer = await nextConnection(res, server);
    expect(peer.peerCertificate().isNull()).toBe(true);
  });
});

describe('QSslPreSharedKeyAuthenticator', () => {
  test('an empty one has empty fields and limits of 0; setters keep what they get', () => {
    const a = new QSslPreSharedKeyAuthenticator();
    expect(fields(a)).toBe('hint="" identity="" maxIdentity=0 maxKey=0 key=0');
    a.setIdentity(Buffer.from('id'));
    a.setPreSharedKey('x'.repeat(1000));
    // Not cut here: the handshake cuts to the limits.
    expect(a.identity().toString()).toBe('id');
    expect(a.preSharedKey().length).toBe(1000);
  });

  test('a value class: copies are equal and independent, swap exchanges, isEqual compares all', () => {
    const a = new QSslPreSharedKeyAuthenticator();
    a.setIdentity('alice');
    const b = new QSslPreSharedKeyAuthenticator(a);
    expect(b.isEqual(a)).toBe(true);
    b.setIdentity('bob');
    expect(a.identity().toString()).toBe('alice');
    expect(b.isEqual(a)).toBe(false);
    a.swap(b);
    expect(a.identity().toString()).toBe('bob');
    expect(b.identity().toString()).toBe('alice');
    const bytes = a.identity();
    bytes.write('X');
    expect(a.identity().toString()).toBe('bob');
  });
});

describe('QSslConfiguration.preSharedKeyIdentityHint', () => {
  test('empty by default; set as text or bytes; copies keep it', () => {
    const config = new QSslConfiguration();
    expect(config.preSharedKeyIdentityHint()).toEqual(Buffer.alloc(0));
    config.setPreSharedKeyIdentityHint('hint');
    expect(new QSslConfiguration(config).preSharedKeyIdentityHint().toString()).toBe('hint');
    config.setPreSharedKeyIdentityHint(Buffer.from([1, 2]));
    expect(config.preSharedKeyIdentityHint()).toEqual(Buffer.from([1, 2]));
  });
});
