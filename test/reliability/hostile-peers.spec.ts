/**
 * What hostile or careless peers broke in the second adversarial round (issue 15), each
 * reproduced against a real ServerQt in its own process, or a raw server that a ClientQt
 * talks to:
 * - duplicate request ids in flight on one connection: a protocol error, and no handler's
 *   stream outlives its connection (600 connections × 64 duplicates left 38,400 streams
 *   running before);
 * - foreign-shaped replies: unknown fields are ignored, an error reply stays an error, a
 *   request sent to a client is a protocol error;
 * - a client that drops a connection itself fails the requests on it with the real cause;
 *   an error reply whose `err` is 0, '' or false fails its request;
 * - a close with endless streams open ends them at once with an error reply, and a request
 *   that arrives while the server closes is answered (not run) instead of left hanging.
 */
import { chownSync } from 'node:fs';
import * as net from 'node:net';

import { afterEach, describe, expect, it } from '@jest/globals';
import { firstValueFrom, type Observable } from 'rxjs';

import {
  ClientQt,
  FrameTooLargeError,
  InvalidPacketError,
  QtConnectionError,
  UntrustedSocketOwnerError,
  encodePayload,
  frameHeader,
  FrameDecoder,
} from '../../lib/index.js';
import {
  TRANSPORTS,
  frame,
  rawConnect,
  startServer,
  waitEvent,
  within,
  type RawPeer,
  type ServerApp,
} from '../e2e/helpers.js';

/** Settles with the value or the error, never rejects. */
function outcome<T>(source: Observable<T>): Promise<{ value?: T; error?: unknown }> {
  return firstValueFrom(source).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

type Stats = {
  calls: Record<string, number>;
  liveNever: number;
  teardowns: string[];
  protocolErrors: Array<{ code: string; message: string }>;
};

/** Waits until `values` holds at least `n` entries (bounded). */
async function pollValues(values: unknown[], n: number): Promise<void> {
  for (let i = 0; i < 400 && values.length < n; i++) await new Promise((r) => setTimeout(r, 25));
  expect(values.length).toBeGreaterThanOrEqual(n);
}

async function stats(server: ServerApp): Promise<Stats> {
  server.command('stats');
  return (await waitEvent(server.run, 'stats')) as unknown as Stats;
}

/** Asks for stats until `done(stats)` holds (the server works through its sockets meanwhile). */
async function statsUntil(server: ServerApp, done: (s: Stats) => boolean): Promise<Stats> {
  for (let i = 0; i < 600; i++) {
    const s = await stats(server);
    if (done(s)) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  return stats(server);
}

describe.each(TRANSPORTS)('hostile peers against ServerQt over %s', (transport) => {
  const servers: ServerApp[] = [];
  const raws: RawPeer[] = [];
  const clients: ClientQt[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const r of raws.splice(0)) r.destroy();
    for (const s of servers.splice(0)) await s.stop();
  });
  const start = async (options?: Record<string, unknown>): Promise<ServerApp> => {
    const server = await startServer({ transport, options });
    servers.push(server);
    return server;
  };

  it('a duplicate request id in flight closes that connection (QT_DUPLICATE_REQUEST_ID); no stream outlives its connection, over 100 connections × 64 ids', async () => {
    // closeTimeout far beyond the test's own timeout: a close that waited for a leaked
    // stream could not finish in time.
    // Room to queue every connection while the server is busy with the others' frames.
    const server = await start({ closeTimeout: 3_600_000, listenBacklogSize: 256 });
    const CONNECTIONS = 100;
    const IDS = 64;
    const peers: RawPeer[] = [];
    for (let c = 0; c < CONNECTIONS; c++) {
      const peer = await rawConnect(server);
      raws.push(peer);
      peers.push(peer);
      const batch: Buffer[] = [];
      for (let i = 0; i < IDS; i++) {
        batch.push(frame({ id: i, pattern: 'never', data: `c${c}-first-${i}` }));
      }
      for (let i = 0; i < IDS; i++) {
        batch.push(frame({ id: i, pattern: 'never', data: `c${c}-again-${i}` }));
      }
      peer.socket.write(Buffer.concat(batch));
    }
    for (const peer of peers) await within(peer.closed, 20000, 'the server to drop the peer');
    const after = await statsUntil(
      server,
      (s) => s.protocolErrors.length >= CONNECTIONS && s.liveNever === 0,
    );
    const duplicates = after.protocolErrors.filter((e) => e.code === 'QT_DUPLICATE_REQUEST_ID');
    expect(duplicates).toHaveLength(CONNECTIONS);
    expect(duplicates[0]!.message).toBe('Request id 0 is already in flight on this connection');
    // Only the first of each pair reached a handler; no stream of theirs is left running
    // (those subscribed before their connection closed were torn down with it).
    expect(after.calls.never).toBe(CONNECTIONS * IDS);
    expect(after.liveNever).toBe(0);
    expect(after.teardowns.filter((t) => t.includes('-again-'))).toEqual([]);
    // Nothing is left in flight: the close does not wait for anything.
    server.command('close');
    await waitEvent(server.run, 'closed', 20000);
  }, 60000);

  it('a duplicate of a request whose stream runs: the connection closes and every stream of it is torn down (none leaks)', async () => {
    const server = await start();
    const peer = await rawConnect(server);
    raws.push(peer);
    const IDS = 64;
    const batch: Buffer[] = [];
    for (let i = 0; i < IDS; i++)
      batch.push(frame({ id: `r${i}`, pattern: 'never', data: `s${i}` }));
    peer.socket.write(Buffer.concat(batch));
    await statsUntil(server, (s) => s.liveNever === IDS);
    peer.socket.write(frame({ id: 'r7', pattern: 'never', data: 'dup' }));
    await within(peer.closed, 10000, 'the server to drop the peer');
    const after = await statsUntil(server, (s) => s.liveNever === 0);
    expect(after.liveNever).toBe(0);
    expect(after.teardowns.filter((t) => /^s\d+$/.test(t))).toHaveLength(IDS);
    expect(after.teardowns).not.toContain('dup');
    expect(after.protocolErrors.map((e) => e.code)).toEqual(['QT_DUPLICATE_REQUEST_ID']);
  });

  it('the same id again after its request ended is fine', async () => {
    const server = await start();
    const peer = await rawConnect(server);
    raws.push(peer);
    peer.socket.write(frame({ id: 1, pattern: 'ping', data: null }));
    await peer.waitFrames(1);
    peer.socket.write(frame({ id: 1, pattern: 'ping', data: null }));
    const frames = await peer.waitFrames(2);
    expect(frames.map((f) => JSON.parse(f.toString()) as unknown)).toEqual([
      { id: 1, response: 'pong', isDisposed: true },
      { id: 1, response: 'pong', isDisposed: true },
    ]);
    expect(peer.isClosed()).toBe(false);
  });

  it('a cancel for a request whose handler has not answered yet is kept: its stream is never subscribed', async () => {
    const server = await start();
    const peer = await rawConnect(server);
    raws.push(peer);
    // 'slow' answers after 200 ms; the cancel arrives first. Then a ping proves the
    // connection works and that no reply for id 5 ever comes.
    peer.socket.write(frame({ id: 5, pattern: 'slow', data: 200 }));
    peer.socket.write(frame({ id: 5, cancel: true }));
    await waitEvent(server.run, 'slow-start');
    await statsUntil(server, (s) => s.calls.slow === 1);
    // Longer than id 5's 200 ms: had id 5 been answered, its reply would come first.
    peer.socket.write(frame({ id: 6, pattern: 'slow', data: 400 }));
    const [reply] = await peer.waitFrames(1);
    expect(JSON.parse(reply!.toString())).toEqual({
      id: 6,
      response: 'slow-done',
      isDisposed: true,
    });
  });

  it('close() with an endless stream open ends it at once with QT_STREAM_ENDED_BY_CLOSE instead of waiting closeTimeout', async () => {
    const server = await start({ closeTimeout: 3_600_000 });
    const client = new ClientQt({ ...server.target, reconnect: false });
    clients.push(client);
    const values: number[] = [];
    const ended = new Promise<unknown>((resolve) => {
      client.send<number>('ticker', 'open').subscribe({
        next: (v) => values.push(v),
        error: resolve,
        complete: () => resolve('completed'),
      });
    });
    // The stream has sent values: it is open when the close begins.
    await pollValues(values, 2);
    server.command('close');
    await waitEvent(server.run, 'closing');
    expect(await within(ended, 10000, 'the stream to end')).toEqual({
      code: 'QT_STREAM_ENDED_BY_CLOSE',
      message: 'The server is closing: the stream was ended',
    });
    await waitEvent(server.run, 'closed', 20000);
  }, 60000);
});

/** A raw server that answers every request frame with what `answer` returns. */
async function rawServer(
  answer: (request: { id: number; pattern: unknown }) => Buffer[],
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let f = decoder.next(); f !== null; f = decoder.next()) {
        const request = JSON.parse(f.toString()) as { id: number; pattern: unknown };
        for (const out of answer(request)) socket.write(out);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** One frame holding `packet` as JSON. */
function replyFrame(packet: Record<string, unknown>): Buffer {
  const payload = encodePayload('json', packet);
  return Buffer.concat([frameHeader(payload.length), payload]);
}

describe('ClientQt against foreign-shaped and hostile replies', () => {
  let server: { port: number; close(): Promise<void> } | null = null;
  const clients: ClientQt[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server?.close();
    server = null;
  });
  const client = (extra: Record<string, unknown> = {}): ClientQt => {
    const c = new ClientQt({ host: '127.0.0.1', port: server!.port, reconnect: false, ...extra });
    clients.push(c);
    return c;
  };

  it('unknown fields are ignored: a reply with extra fields resolves to its response, an error reply with extra fields fails', async () => {
    server = await rawServer(({ id, pattern }) => [
      pattern === 'ok'
        ? replyFrame({ id, response: 42, isDisposed: true, version: 2, traceId: 'abc' })
        : replyFrame({ id, err: 'boom', isDisposed: true, version: 2 }),
    ]);
    const c = client();
    expect(await outcome(c.send('ok', {}))).toEqual({ value: 42 });
    expect(await outcome(c.send('bad', {}))).toEqual({ error: 'boom' });
  });

  it.each([
    ['0', 0],
    ['an empty string', ''],
    ['false', false],
  ])('an error reply whose err is %s fails the request with that value', async (_what, err) => {
    server = await rawServer(({ id }) => [replyFrame({ id, err, isDisposed: true })]);
    expect(await outcome(client().send('x', {}))).toEqual({ error: err });
  });

  it('err: null is no error: the response arrives', async () => {
    server = await rawServer(({ id }) => [
      replyFrame({ id, err: null, response: 'fine', isDisposed: true }),
    ]);
    expect(await outcome(client().send('x', {}))).toEqual({ value: 'fine' });
  });

  it('a request sent to a client is a protocol error: the requests on that connection fail with InvalidPacketError, not as a plain close', async () => {
    server = await rawServer(() => [replyFrame({ id: 1, pattern: 'sneaky', data: 1 })]);
    const c = client();
    const errors: unknown[] = [];
    c.on('protocolError', (e: unknown) => errors.push(e));
    const { error } = await outcome(c.send('x', {}));
    expect(error).toBeInstanceOf(InvalidPacketError);
    expect(error).toMatchObject({ code: 'QT_INVALID_PACKET' });
    expect(errors).toEqual([error]);
  });

  it('a reply over the client’s maxFrameSize fails the request with FrameTooLargeError (the cause), not RemoteHostClosedError', async () => {
    server = await rawServer(({ id }) => [
      replyFrame({ id, response: 'x'.repeat(4096), isDisposed: true }),
    ]);
    const { error } = await outcome(client({ maxFrameSize: 1024 }).send('x', {}));
    expect(error).toBeInstanceOf(FrameTooLargeError);
    expect(error).not.toBeInstanceOf(QtConnectionError);
    expect(error).toMatchObject({ code: 'QT_FRAME_TOO_LARGE', limit: 1024 });
  });
});

/** Why a socket cannot be given to another owner here, or null. */
function chownReason(): string | null {
  if (typeof process.getuid !== 'function') return 'no uids on this platform';
  return process.getuid() === 0
    ? null
    : `the tests run as uid ${process.getuid()}, not root: they cannot chown a socket`;
}

describe('a local socket owned by another user (a squatter in a shared directory)', () => {
  const reason = chownReason();
  if (reason) console.log(`socket-owner tests skipped: ${reason}`);
  const test = reason ? it.skip : it;
  const OTHER_UID = 65534;
  let server: ServerApp | null = null;
  const clients: ClientQt[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server?.stop();
    server = null;
  });
  const client = (extra: Record<string, unknown> = {}): ClientQt => {
    const c = new ClientQt({ ...server!.target, reconnect: false, ...extra });
    clients.push(c);
    return c;
  };

  test('ClientQt refuses it (UntrustedSocketOwnerError, nothing sent) unless its uid is in trustedSocketOwners or they are "any"', async () => {
    server = await startServer({ transport: 'local' });
    // The server's socket file now belongs to another user, as a squatter's would.
    chownSync(server.fullServerName, OTHER_UID, OTHER_UID);
    const refused = await outcome(client().send('ping', {}));
    expect(refused.error).toBeInstanceOf(UntrustedSocketOwnerError);
    expect(refused.error).toBeInstanceOf(QtConnectionError);
    expect(refused.error).toMatchObject({
      code: 'QT_UNTRUSTED_SOCKET_OWNER',
      ownerUid: OTHER_UID,
      path: server.fullServerName,
    });
    expect(await outcome(client({ trustedSocketOwners: [OTHER_UID] }).send('ping', {}))).toEqual({
      value: 'pong',
    });
    expect(await outcome(client({ trustedSocketOwners: 'any' }).send('ping', {}))).toEqual({
      value: 'pong',
    });
    // Only the two trusting clients reached the server.
    expect((await stats(server)).calls.ping).toBe(2);
  });

  test("a socket of the client's own user (or root's) is trusted by default", async () => {
    server = await startServer({ transport: 'local' });
    expect(await outcome(client().send('ping', {}))).toEqual({ value: 'pong' });
  });
});
