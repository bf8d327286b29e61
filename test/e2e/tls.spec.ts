/**
 * TLS in the transport, end to end: a Nest microservice on ServerQt with mutual TLS (its
 * own process; client certificates from the test CA required) and ClientQt clients that
 * should be served or refused. The whole RPC suite also runs over this setup (rpc.spec.ts,
 * kind 'tls'); this file covers who gets in and what a refused client sees.
 */
import * as net from 'node:net';

import { firstValueFrom } from 'rxjs';

import { ClientQt, QtConnectionError } from '../../lib/index.js';
import { removeSslPki, sslPki } from '../helpers/qssl-pki.js';

import { clientTlsOptions, startServer, within, type ServerApp } from './helpers.js';

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

afterAll(() => removeSslPki());
