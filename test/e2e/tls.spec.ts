/**
 * TLS in the transport, end to end: a Nest microservice on ServerQt with mutual TLS (its
 * own process; client certificates from the test CA required) and ClientQt clients that
 * should be served or refused. The whole RPC suite also runs over this setup (rpc.spec.ts,
 * kind 'tls'); this file covers who gets in and what a refused client sees, and (with the
 * server in this process, to see its log and its `tlsError` events) which refused peers
 * the server reports.
 */
import 'reflect-metadata';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';

import { Controller, Module, type INestMicroservice, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';

import {
  ClientQt,
  QtConnectionError,
  ServerQt,
  type QTcpServer,
  type QTcpSocket,
  type QtTransportError,
  type QtTransportOptions,
} from '../../lib/index.js';
import { removeSslPki, sslPki } from '../helpers/qssl-pki.js';

import {
  clientTlsOptions,
  serverTlsOptions,
  startServer,
  within,
  type ServerApp,
} from './helpers.js';

interface Stats {
  calls: Record<string, number>;
  connections: number;
}

describe('e2e over mutual TLS: who is served and who is refused', () => {
  let server: ServerApp;
  let good: ClientQt;
  const clients: ClientQt[] = [];

  const stats = (): Promise<Stats> => firstValueFrom(good.send<Stats>('stats', {}));
  const client = (tls: Record<string, unknown> | undefined): ClientQt => {
    const c = new ClientQt({
      transport: 'tcp',
      host: '127.0.0.1',
      port: server.port,
      requestTimeout: 10000,
      reconnect: false,
      ...(tls ? { tls } : {}),
    });
    clients.push(c);
    return c;
  };
  /** The error of one 'sum' request from `c`, or null if it was answered. */
  const failure = async (c: ClientQt): Promise<Error | null> =>
    firstValueFrom(c.send<number>('sum', [1, 2])).then(
      () => null,
      (err: unknown) => err as Error,
    );

  beforeAll(async () => {
    server = await startServer({ transport: 'tls' });
    good = new ClientQt({ ...server.target, requestTimeout: 10000 });
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  afterAll(async () => {
    await good?.close();
    await server?.stop();
  });

  it('a client with a certificate from the trusted CA is served over an encrypted socket', async () => {
    expect(await firstValueFrom(good.send<number>('sum', [40, 2]))).toBe(42);
    const ctx = await firstValueFrom(good.send<Record<string, unknown>>('ctx', {}));
    expect(ctx.socket).toBe('QSslSocket');
  });

  it.each([
    ['without a client certificate', () => ({ ca: sslPki().caCert })],
    [
      'with a certificate from a CA the server does not trust',
      () => ({
        ca: sslPki().caCert,
        certificate: sslPki().otherClientCert,
        privateKey: sslPki().otherClientKey,
      }),
    ],
  ])(
    'a client %s is refused: its request fails with a connection error, no handler runs, the server never counts the connection',
    async (_label, tls) => {
      const before = await stats();
      const err = await failure(client(tls()));
      const after = await stats();
      expect(err).toBeInstanceOf(QtConnectionError);
      expect(after.calls.sum ?? 0).toBe(before.calls.sum ?? 0);
      expect(after.connections).toBe(before.connections);
      // The server goes on serving.
      expect(await firstValueFrom(good.send<number>('sum', [1, 1]))).toBe(2);
    },
  );

  it('a client that does not trust the server (system CAs only) fails the handshake with SslHandshakeFailedError and sends nothing', async () => {
    const before = await stats();
    const { clientCert, clientKey } = sslPki();
    const err = await failure(client({ certificate: clientCert, privateKey: clientKey }));
    expect(err).toBeInstanceOf(QtConnectionError);
    expect((err as QtConnectionError).code).toBe('SslHandshakeFailedError');
    expect(err!.message.length).toBeGreaterThan(0);
    const after = await stats();
    expect(after.calls.sum ?? 0).toBe(before.calls.sum ?? 0);
    expect(after.connections).toBe(before.connections);
  });

  it('a client that expects another server name fails the handshake (host name mismatch)', async () => {
    const err = await failure(client({ ...clientTlsOptions(), peerName: 'billing.example' }));
    expect(err).toBeInstanceOf(QtConnectionError);
    expect((err as QtConnectionError).code).toBe('SslHandshakeFailedError');
    expect(err!.message).toMatch(/host ?name/i);
  });

  it('a plain TCP client is refused (never served) and the server goes on serving', async () => {
    const before = await stats();
    const plain = client(undefined);
    const err = await failure(plain);
    expect(err).toBeInstanceOf(Error);
    const after = await stats();
    expect(after.calls.sum ?? 0).toBe(before.calls.sum ?? 0);
    expect(await firstValueFrom(good.send<number>('sum', [2, 2]))).toBe(4);
  });

  it('a TLS client against a plain TCP server sends no request in clear text: the first bytes are a TLS handshake record', async () => {
    const received: Buffer[] = [];
    const plainServer = net.createServer((s) => {
      s.on('data', (d) => received.push(d));
      s.on('error', () => undefined);
      setTimeout(() => s.destroy(), 300);
    });
    await new Promise<void>((r) => plainServer.listen(0, '127.0.0.1', r));
    try {
      const c = new ClientQt({
        transport: 'tcp',
        host: '127.0.0.1',
        port: (plainServer.address() as net.AddressInfo).port,
        requestTimeout: 5000,
        reconnect: false,
        tls: clientTlsOptions(),
      });
      clients.push(c);
      const err = await within(failure(c), 10000, 'the request to fail');
      expect(err).toBeInstanceOf(QtConnectionError);
      const bytes = Buffer.concat(received);
      expect(bytes.length).toBeGreaterThan(5);
      // A TLS record: content type 22 (handshake), version 3.x.
      expect(bytes[0]).toBe(0x16);
      expect(bytes[1]).toBe(0x03);
      expect(bytes.includes(Buffer.from('"pattern"'))).toBe(false);
    } finally {
      plainServer.close();
    }
  });
});

@Controller()
class SumController {
  @MessagePattern('sum')
  sum(@Payload() data: [number, number]): number {
    return data[0] + data[1];
  }
}

@Module({ controllers: [SumController] })
class SumModule {}

interface LogLine {
  level: string;
  message: string;
}

/** Nest's log of the app, kept, with an event per line to wait on. */
class CapturingLogger implements LoggerService {
  readonly lines: LogLine[] = [];
  readonly events = new EventEmitter();
  log(message: unknown): void {
    this.add('log', message);
  }
  error(message: unknown): void {
    this.add('error', message);
  }
  warn(message: unknown): void {
    this.add('warn', message);
  }
  debug(message: unknown): void {
    this.add('debug', message);
  }
  verbose(message: unknown): void {
    this.add('verbose', message);
  }
  /** The lines that name `peer` ("address:port"). */
  about(peer: string): LogLine[] {
    return this.lines.filter((l) => l.message.includes(peer));
  }
  /** The next line at `level` that names `peer`. */
  next(level: string, peer: string): Promise<LogLine> {
    return new Promise((resolve) => {
      const on = (line: LogLine): void => {
        if (line.level !== level || !line.message.includes(peer)) return;
        this.events.off('line', on);
        resolve(line);
      };
      this.events.on('line', on);
    });
  }
  private add(level: string, message: unknown): void {
    const line = { level, message: String(message) };
    this.lines.push(line);
    this.events.emit('line', line);
  }
}

interface InProcessServer {
  app: INestMicroservice;
  server: ServerQt;
  port: number;
  logger: CapturingLogger;
  /** The tlsError events, with the peer ("address:port") of each. */
  tlsErrors: Array<{ error: QtTransportError; peer: string }>;
  events: EventEmitter;
}

async function startInProcess(options: QtTransportOptions): Promise<InProcessServer> {
  const server = new ServerQt({ transport: 'tcp', host: '127.0.0.1', port: 0, ...options });
  const logger = new CapturingLogger();
  const tlsErrors: InProcessServer['tlsErrors'] = [];
  const events = new EventEmitter();
  server.on('tlsError', (error: QtTransportError, socket: QTcpSocket) => {
    const peer = `${socket.peerAddress().toString()}:${socket.peerPort()}`;
    tlsErrors.push({ error, peer });
    events.emit('tlsError', peer);
  });
  server.on('disconnect', () => events.emit('disconnect'));
  const app = await NestFactory.createMicroservice(SumModule, { strategy: server, logger });
  await app.listen();
  return { app, server, port: server.unwrap<QTcpServer>().serverPort(), logger, tlsErrors, events };
}

/** A raw TCP connection to 127.0.0.1:`port`, once connected, and its "address:port" as the server sees it. */
async function rawConnect(port: number): Promise<{ sock: net.Socket; peer: string }> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return { sock, peer: `127.0.0.1:${sock.localPort}` };
}

/** Resolves when `events` emits `event` with `peer` as its argument. */
function eventFor(events: EventEmitter, event: string, peer: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (p: string): void => {
      if (p !== peer) return;
      events.off(event, on);
      resolve();
    };
    events.on(event, on);
  });
}

describe('ServerQt with TLS (in this process): a peer that sends nothing is a probe, not a failed handshake', () => {
  let running: InProcessServer;
  const clients: ClientQt[] = [];

  beforeAll(async () => {
    running = await startInProcess({ tls: serverTlsOptions() as QtTransportOptions['tls'] });
  });

  afterAll(async () => {
    for (const c of clients) await c.close();
    await running?.app.close();
  });

  it.each([
    ['closes at once (FIN), as a TCP health check does', (s: net.Socket) => s.end()],
    ['resets at once (RST), as some port scanners do', (s: net.Socket) => s.resetAndDestroy()],
  ])(
    'a raw TCP peer that %s is logged at debug level only: no warning, no tlsError; a TLS client is then served',
    async (_label, close) => {
      const { sock, peer } = await rawConnect(running.port);
      const seen = running.logger.next('debug', peer);
      close(sock);
      const line = await within(seen, 10000, 'the debug line for the probe');
      expect(line.message).toContain('closed before sending anything');
      expect(running.logger.about(peer).map((l) => l.level)).toEqual(['debug']);
      expect(running.tlsErrors.filter((e) => e.peer === peer)).toEqual([]);

      const lines = running.logger.lines.length;
      const errors = running.tlsErrors.length;
      const c = new ClientQt({
        transport: 'tcp',
        host: '127.0.0.1',
        port: running.port,
        requestTimeout: 10000,
        reconnect: false,
        tls: clientTlsOptions(),
      });
      clients.push(c);
      expect(await firstValueFrom(c.send<number>('sum', [40, 2]))).toBe(42);
      expect(running.tlsErrors.length).toBe(errors);
      expect(running.logger.lines.slice(lines).filter((l) => l.level === 'warn')).toEqual([]);
    },
  );

  it('a raw peer that sends the start of a TLS record and then bytes that are no handshake, then closes, is warned about and reported as tlsError', async () => {
    const { sock, peer } = await rawConnect(running.port);
    const reported = eventFor(running.events, 'tlsError', peer);
    const warned = running.logger.next('warn', peer);
    // A handshake record header (type 22, version 3.1, length 80), then no ClientHello.
    sock.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x50, 0x01, 0xff, 0xff]));
    sock.end();
    await within(reported, 10000, 'the tlsError event');
    const line = await within(warned, 10000, 'the warning');
    expect(line.message).toContain('Refusing a connection: TLS handshake with');
    const errors = running.tlsErrors.filter((e) => e.peer === peer);
    expect(errors.map((e) => e.error.code)).toEqual(['QT_TLS_HANDSHAKE_FAILED']);
    expect(running.logger.about(peer).some((l) => l.level === 'debug')).toBe(false);
  });

  it('a TLS client without a client certificate (a real ClientHello, a failed handshake) is warned about and reported as tlsError', async () => {
    const sock = tls.connect({
      host: '127.0.0.1',
      port: running.port,
      ca: readFileSync(sslPki().caCert),
      servername: 'localhost',
    });
    sock.on('error', () => undefined);
    await new Promise<void>((resolve) => sock.once('connect', resolve));
    const peer = `127.0.0.1:${sock.localPort}`;
    const reported = eventFor(running.events, 'tlsError', peer);
    const warned = running.logger.next('warn', peer);
    await within(reported, 10000, 'the tlsError event');
    await within(warned, 10000, 'the warning');
    sock.destroy();
    expect(running.tlsErrors.filter((e) => e.peer === peer).map((e) => e.error.code)).toEqual([
      'QT_TLS_HANDSHAKE_FAILED',
    ]);
  });

  it('a plain-text peer (first byte not a TLS record) is closed by the server without a word, as QSslServer does: no warning, no tlsError', async () => {
    const { sock, peer } = await rawConnect(running.port);
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    sock.write('GET / HTTP/1.0\r\n\r\n');
    // The server closes it: by then it has decided (QSslServer forgets the socket first).
    await within(closed, 10000, 'the server to close the connection');
    expect(running.logger.about(peer)).toEqual([]);
    expect(running.tlsErrors.filter((e) => e.peer === peer)).toEqual([]);
  });
});

describe('ServerQt without TLS (in this process): a probe that connects and closes is quiet', () => {
  it('a raw TCP peer that closes at once is a connection and a disconnect, nothing logged', async () => {
    const running = await startInProcess({});
    try {
      const connected = new Promise<void>((resolve) =>
        running.server.on('connection', () => resolve()),
      );
      const disconnected = new Promise<void>((resolve) =>
        running.events.once('disconnect', () => resolve()),
      );
      const before = running.logger.lines.length;
      const { sock } = await rawConnect(running.port);
      await within(connected, 10000, 'the connection event');
      sock.end();
      await within(disconnected, 10000, 'the disconnect event');
      expect(running.logger.lines.slice(before)).toEqual([]);
    } finally {
      await running.app.close();
    }
  });
});

afterAll(() => removeSslPki());
