/**
 * Saved sessions (session tickets) on QSslSocket: with SslOptionDisableSessionPersistence
 * off, a client keeps its session in `sslConfiguration().sessionTicket()` (OpenSSL's
 * encoding, as Qt's), announces each TLS 1.3 ticket with `newSessionTicketReceived`, and a
 * later connection given that ticket resumes the session, which a node:tls server reports
 * (`isSessionReused()`). What is kept when, and the lifetime hints, are what Qt 5.15 did
 * against the same server on this machine; test/qtnetwork/ssl/qssl-features-interop.spec.ts
 * resumes with tickets exchanged between the port and real Qt.
 */
import * as net from 'node:net';
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';

import { jest } from '@jest/globals';

import {
  QSslConfiguration,
  QSslSocket,
  SocketState,
  SslOption,
  SslProtocol,
} from '../../../lib/qtnetwork/index.js';
import { nextConnection, sslClient, startSslServer } from '../../helpers/qssl-helpers.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';
import { Resources } from '../../helpers/resources.js';
import { waitUntil } from '../../helpers/signals.js';

jest.setTimeout(20000);

const pki = sslPki();
afterAll(() => removeSslPki());
const res = new Resources();
afterEach(() => res.dispose());

interface RecordingServer {
  port: number;
  /** isSessionReused() of each connection, in order. */
  reused: boolean[];
}

/** A node:tls server (echo) that records whether each connection resumed a session. */
async function startTlsServer(maxVersion: tls.SecureVersion): Promise<RecordingServer> {
  const reused: boolean[] = [];
  const connections = new Set<net.Socket>();
  const server = tls.createServer(
    { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), maxVersion },
    (socket) => {
      reused.push(socket.isSessionReused());
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => socket.write(d));
    },
  );
  server.on('connection', (c: net.Socket) => {
    connections.add(c);
    c.on('close', () => connections.delete(c));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  res.add(
    () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, reused };
}

/** A client trusting the PKI's CA, keeping sessions unless `keep` is false. */
function client(keep = true, edit?: (c: QSslConfiguration) => void): QSslSocket {
  const socket = sslClient(res, { ca: [pki.caCert] });
  const config = socket.sslConfiguration();
  config.setSslOption(SslOption.SslOptionDisableSessionPersistence, !keep);
  edit?.(config);
  socket.setSslConfiguration(config);
  return socket;
}

/** Connects, waits for encryption and for `tickets` TLS 1.3 tickets, then disconnects. */
async function session(
  socket: QSslSocket,
  port: number,
  tickets = 0,
): Promise<{ atEncrypted: [number, number]; announced: Array<[number, number]> }> {
  let atEncrypted: [number, number] = [-2, -2];
  const announced: Array<[number, number]> = [];
  const view = (): [number, number] => {
    const c = socket.sslConfiguration();
    return [c.sessionTicket().length, c.sessionTicketLifeTimeHint()];
  };
  socket.encrypted.connect(() => (atEncrypted = view()));
  socket.newSessionTicketReceived.connect(() => announced.push(view()));
  socket.connectToHostEncrypted('localhost', port);
  await waitUntil(() => socket.isEncrypted(), 10000, 'encrypted');
  // A server's tickets follow its handshake: an echo makes sure they have all arrived.
  socket.write('x');
  await waitUntil(() => socket.bytesAvailable() > 0 && announced.length >= tickets, 10000);
  socket.disconnectFromHost();
  await waitUntil(() => socket.state() === SocketState.UnconnectedState);
  return { atEncrypted, announced };
}

describe('TLS 1.3', () => {
  test("the handshake's session is kept at encrypted (hint 0), then each ticket is announced (hint 7200)", async () => {
    const server = await startTlsServer('TLSv1.3');
    const first = client();
    const { atEncrypted, announced } = await session(first, server.port, 2);
    expect(atEncrypted[0]).toBeGreaterThan(0);
    expect(atEncrypted[1]).toBe(0);
    expect(announced).toHaveLength(2);
    for (const [length, hint] of announced) {
      expect(length).toBeGreaterThan(atEncrypted[0]);
      expect(hint).toBe(7200);
    }
    expect(first.sessionProtocol()).toBe(SslProtocol.TlsV1_3);
  });

  test('a second connection given the ticket resumes the session; its peer certificate is known', async () => {
    const server = await startTlsServer('TLSv1.3');
    const first = client();
    await session(first, server.port, 2);
    const ticket = first.sslConfiguration().sessionTicket();
    const second = client(true, (c) => c.setSessionTicket(ticket));
    const { atEncrypted } = await session(second, server.port);
    expect(server.reused).toEqual([false, true]);
    // As Qt: a resumed session leaves the configured ticket and hint as they were.
    expect(atEncrypted).toEqual([ticket.length, -1]);
    expect(second.peerCertificate().subjectInfo('CN')).toEqual(['localhost']);
    expect(second.sslHandshakeErrors()).toEqual([]);
  });

  test('the same socket resumes its own session when it connects again', async () => {
    const server = await startTlsServer('TLSv1.3');
    const socket = client();
    await session(socket, server.port, 2);
    await session(socket, server.port);
    expect(server.reused).toEqual([false, true]);
  });
});

describe('TLS 1.2', () => {
  test('the session (with its ticket) is kept at encrypted, hint 7200, without newSessionTicketReceived', async () => {
    const server = await startTlsServer('TLSv1.2');
    const first = client();
    const { atEncrypted, announced } = await session(first, server.port);
    expect(atEncrypted[0]).toBeGreaterThan(0);
    expect(atEncrypted[1]).toBe(7200);
    expect(announced).toEqual([]);
    const second = client(true, (c) =>
      c.setSessionTicket(first.sslConfiguration().sessionTicket()),
    );
    await session(second, server.port);
    expect(server.reused).toEqual([false, true]);
  });

  test('with SslOptionDisableSessionSharing nothing is kept at encrypted (as Qt); TLS 1.3 tickets still are', async () => {
    const sharing = (c: QSslConfiguration): void =>
      c.setSslOption(SslOption.SslOptionDisableSessionSharing, true);
    const tls12 = await startTlsServer('TLSv1.2');
    expect((await session(client(true, sharing), tls12.port)).atEncrypted).toEqual([0, -1]);
    const tls13 = await startTlsServer('TLSv1.3');
    const { atEncrypted, announced } = await session(client(true, sharing), tls13.port, 2);
    expect(atEncrypted).toEqual([0, -1]);
    expect(announced).toHaveLength(2);
  });
});

describe('with SslOptionDisableSessionPersistence (the default)', () => {
  test('nothing is kept or announced, and a ticket that was set is not offered', async () => {
    const server = await startTlsServer('TLSv1.3');
    const keeper = client();
    await session(keeper, server.port, 2);
    const ticket = keeper.sslConfiguration().sessionTicket();

    const plain = sslClient(res, { ca: [pki.caCert] });
    expect(
      plain.sslConfiguration().testSslOption(SslOption.SslOptionDisableSessionPersistence),
    ).toBe(true);
    const { atEncrypted, announced } = await session(plain, server.port);
    expect(atEncrypted).toEqual([0, -1]);
    expect(announced).toEqual([]);

    const given = client(false, (c) => c.setSessionTicket(ticket));
    const result = await session(given, server.port);
    // The ticket stays in the configuration, unused.
    expect(result.atEncrypted).toEqual([ticket.length, -1]);
    expect(server.reused).toEqual([false, false, false]);
  });
});

describe('odd tickets and servers', () => {
  test('bytes that are no session are ignored: a full handshake', async () => {
    const server = await startTlsServer('TLSv1.3');
    const socket = client(true, (c) => c.setSessionTicket(Buffer.from('not a session')));
    await session(socket, server.port, 2);
    expect(server.reused).toEqual([false]);
    expect(socket.isEncrypted()).toBe(true);
  });

  test("QSslServer resumes a session it issued, also while asking for client certificates (Node's client)", async () => {
    const server = await startSslServer(res, { cert: pki.serverCert, key: pki.serverKey });
    /** Connects with `session`; resolves once encrypted and, if `ticket`, a ticket arrived. */
    const connect = (session: Buffer | undefined, ticket: boolean) =>
      new Promise<{ reused: boolean; saved: Buffer | undefined }>((resolve, reject) => {
        let saved: Buffer | undefined;
        let reused: boolean | undefined;
        const c = tls.connect({
          host: '127.0.0.1',
          port: server.serverPort(),
          servername: 'localhost',
          ca: readFileSync(pki.caCert),
          session,
        });
        res.add(() => c.destroy());
        const done = (): void => {
          if (reused !== undefined && (!ticket || saved)) resolve({ reused, saved });
        };
        c.on('session', (s: Buffer) => {
          saved ??= s;
          done();
        });
        c.on('error', reject);
        c.on('secureConnect', () => {
          reused = c.isSessionReused();
          done();
        });
      });
    const first = await connect(undefined, true);
    await nextConnection(res, server);
    expect(first.reused).toBe(false);
    expect(first.saved).toBeDefined();
    const second = await connect(first.saved, false);
    const peer = await nextConnection(res, server);
    expect(second.reused).toBe(true);
    expect(peer.isEncrypted()).toBe(true);
  });
});

describe('QSslConfiguration', () => {
  test('sessionTicket is empty and its hint -1 by default; setSessionTicket copies the bytes', () => {
    for (const c of [new QSslConfiguration(), QSslConfiguration.defaultConfiguration()]) {
      expect(c.sessionTicket()).toEqual(Buffer.alloc(0));
      expect(c.sessionTicketLifeTimeHint()).toBe(-1);
    }
    const config = new QSslConfiguration();
    const bytes = Buffer.from('abc');
    config.setSessionTicket(bytes);
    bytes.write('X');
    expect(config.sessionTicket().toString()).toBe('abc');
    expect(config.sessionTicketLifeTimeHint()).toBe(-1);
    expect(new QSslConfiguration(config).sessionTicket().toString()).toBe('abc');
  });
});
