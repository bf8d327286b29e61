/**
 * Pre-shared keys and saved sessions between the port and real Qt 5.15 (PyQt5, run with
 * Debian's /usr/bin/python3; test/fixtures/qssl_features_peer.py):
 *
 * - a Qt PSK client is served by the port's QSslServer, and the port's PSK client by a Qt
 *   server: each side's slot sees the other's hint or identity, with Qt's limits;
 * - a session ticket the port's client saved resumes in a Qt client, and one Qt saved
 *   resumes in the port's client (both are OpenSSL's session encoding), against a node:tls
 *   server that reports the resumption.
 *
 * Skipped, with the reason printed, when PyQt5 is not installed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';

import { jest } from '@jest/globals';

import {
  PeerVerifyMode,
  QSslConfiguration,
  QSslServer,
  QSslSocket,
  SocketState,
  SslOption,
  SslProtocol,
} from '../../../lib/qtnetwork/index.js';
import { fixturesDir, startChild, type ChildRun } from '../../helpers/child-process.js';
import { readBytes, sslClient, startSslServer } from '../../helpers/qssl-helpers.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';
import { Resources } from '../../helpers/resources.js';
import { waitUntil } from '../../helpers/signals.js';

jest.setTimeout(30000);

const PYTHON = '/usr/bin/python3';
const PEER = path.join(fixturesDir, 'qssl_features_peer.py');
const probe = spawnSync(
  PYTHON,
  ['-c', 'from PyQt5.QtNetwork import QSslSocket; assert QSslSocket.supportsSsl()'],
  { encoding: 'utf8', timeout: 20000 },
);
const missing = probe.error
  ? probe.error.message
  : probe.status !== 0
    ? (probe.stderr || `exit ${probe.status}`).trim().split('\n').pop()
    : null;
if (missing)
  console.log(`PSK and session interop with real Qt skipped: PyQt5 for ${PYTHON}: ${missing}`);
const maybe = missing ? describe.skip : describe;

const pki = sslPki();
afterAll(() => removeSslPki());
const res = new Resources();
afterEach(() => res.dispose());

const CIPHER = 'PSK-AES128-CBC-SHA256';
const KEY = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');

function python(args: string[]): ChildRun {
  const child = startChild(PYTHON, ['-B', PEER, ...args]);
  res.add(() => child.stop());
  return child;
}

/** Lines the child prints until END. */
async function untilEnd(child: ChildRun): Promise<string[]> {
  const lines: string[] = [];
  for (let l = await child.nextLine(15000); l !== 'END'; l = await child.nextLine(15000)) {
    lines.push(l);
  }
  return lines;
}

function pskConfiguration(base: QSslConfiguration): QSslConfiguration {
  base.setCiphers(CIPHER);
  base.setProtocol(SslProtocol.TlsV1_2);
  base.setPeerVerifyMode(PeerVerifyMode.VerifyNone);
  return base;
}

maybe('PSK with real Qt', () => {
  test("a Qt client is served by the port's QSslServer: each sees the other's hint and identity", async () => {
    const server = res.server(new QSslServer());
    const config = pskConfiguration(QSslConfiguration.defaultConfiguration());
    config.setPreSharedKeyIdentityHint('port hint');
    server.setSslConfiguration(config);
    const seen: string[] = [];
    server.preSharedKeyAuthenticationRequired.connect((_s, a) => {
      seen.push(
        `${a.identity().toString()} ${a.identityHint().toString()} ${a.maximumIdentityLength()} ${a.maximumPreSharedKeyLength()}`,
      );
      a.setPreSharedKey(KEY);
    });
    expect(await server.listen('127.0.0.1', 0)).toBe(true);
    server.newConnection.connect(() => {
      const s = server.nextPendingConnection();
      if (!s) return;
      res.socket(s);
      s.readyRead.connect(() => {
        if (s.canReadLine()) s.write(s.readAll());
      });
    });
    const lines = await untilEnd(
      python([
        'psk-client',
        '127.0.0.1',
        String(server.serverPort()),
        KEY.toString('hex'),
        'qt client',
      ]),
    );
    expect(lines).toEqual([
      'psk hint="port hint" maxIdentity=255 maxKey=512',
      `encrypted ${CIPHER}`,
      'read hello from qt',
    ]);
    expect(seen).toEqual(['qt client port hint 0 512']);
  });

  test("the port's client is served by a Qt server: the same limits, the hint and identity across", async () => {
    const child = python(['psk-server', 'qt hint', KEY.toString('hex')]);
    const port = Number((await child.nextLine(15000)).replace('PORT ', ''));
    const client = res.socket(new QSslSocket());
    client.setSslConfiguration(pskConfiguration(client.sslConfiguration()));
    const seen: string[] = [];
    client.preSharedKeyAuthenticationRequired.connect((a) => {
      seen.push(
        `${a.identityHint().toString()} ${a.maximumIdentityLength()} ${a.maximumPreSharedKeyLength()}`,
      );
      a.setIdentity('port client');
      a.setPreSharedKey(KEY);
    });
    client.connectToHostEncrypted('127.0.0.1', port);
    await waitUntil(
      () => client.isEncrypted() || client.state() === SocketState.UnconnectedState,
      15000,
    );
    expect(client.isEncrypted()).toBe(true);
    expect(client.sessionCipher().name()).toBe(CIPHER);
    client.write('ping');
    expect((await readBytes(client, 4)).toString()).toBe('ping');
    expect(seen).toEqual(['qt hint 255 512']);
    expect(await child.nextLine()).toBe(
      'psk identity="port client" hint="qt hint" maxIdentity=0 maxKey=512',
    );
    expect(await child.nextLine()).toBe(`encrypted ${CIPHER}`);
  });
});

/** A node:tls echo server that records whether each connection resumed a session. */
async function resumingServer(): Promise<{ port: number; reused: boolean[] }> {
  const reused: boolean[] = [];
  const connections = new Set<net.Socket>();
  const server = tls.createServer(
    { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) },
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

/** The port's client, keeping sessions: connects (offering `ticket`), echoes once, returns its ticket. */
async function portSession(port: number, ticket?: Buffer): Promise<[Buffer, number]> {
  const client = sslClient(res, { ca: [pki.caCert] });
  const config = client.sslConfiguration();
  config.setSslOption(SslOption.SslOptionDisableSessionPersistence, false);
  if (ticket) config.setSessionTicket(ticket);
  client.setSslConfiguration(config);
  let tickets = 0;
  client.newSessionTicketReceived.connect(() => tickets++);
  client.connectToHostEncrypted('localhost', port);
  await waitUntil(() => client.isEncrypted(), 10000, 'encrypted');
  client.write('x');
  await readBytes(client, 1);
  client.disconnectFromHost();
  await waitUntil(() => client.state() === SocketState.UnconnectedState);
  return [client.sslConfiguration().sessionTicket(), tickets];
}

maybe('session tickets with real Qt', () => {
  test("a ticket the port's client saved resumes in a Qt client", async () => {
    const server = await resumingServer();
    const [ticket, tickets] = await portSession(server.port);
    expect(tickets).toBeGreaterThan(0);
    const lines = await untilEnd(
      python([
        'session-client',
        'localhost',
        String(server.port),
        pki.caCert,
        ticket.toString('hex'),
      ]),
    );
    expect(lines.filter((l) => l.startsWith('error'))).toEqual([]);
    expect(server.reused).toEqual([false, true]);
  });

  test("a ticket a Qt client saved resumes in the port's client", async () => {
    const server = await resumingServer();
    const lines = await untilEnd(
      python(['session-client', 'localhost', String(server.port), pki.caCert, '-']),
    );
    const hex = lines.find((l) => l.startsWith('ticket '))!.slice('ticket '.length);
    expect(lines).toContain('tickets 2');
    expect(hex.length).toBeGreaterThan(0);
    await portSession(server.port, Buffer.from(hex, 'hex'));
    expect(server.reused).toEqual([false, true]);
  });
});

// The port's QSslServer resumes the sessions it issued, also while it asks for client
// certificates (QueryPeer, its default), where OpenSSL fails the handshake unless a session
// context is set. Qt's servers never resume (each socket makes its own TLS context).
maybe("the port's QSslServer and a Qt client that keeps sessions", () => {
  test('the Qt client offering the ticket of its first connection is served on its second', async () => {
    const server = await startSslServer(res, { cert: pki.serverCert, key: pki.serverKey });
    server.newConnection.connect(() => {
      const s = server.nextPendingConnection();
      if (!s) return;
      res.socket(s);
      s.readyRead.connect(() => s.write(s.readAll()));
    });
    const run = (ticket: string) =>
      untilEnd(
        python(['session-client', 'localhost', String(server.serverPort()), pki.caCert, ticket]),
      );
    const first = await run('-');
    const hex = first.find((l) => l.startsWith('ticket '))!.slice('ticket '.length);
    expect(first).toContain('tickets 2');
    const second = await run(hex);
    expect(second.filter((l) => l.startsWith('error'))).toEqual([]);
    expect(second.some((l) => l.startsWith('ticket '))).toBe(true);
  });
});
