/**
 * Ping (docs/protocol.md, "Ping") end to end, against a Nest microservice on ServerQt in
 * another process: ClientQt.ping() over TCP and local sockets, JSON and CBOR; the server
 * answers without running a handler, also on a connection whose 128 handlers all run and
 * while it drains; a raw peer gets the pong bytes exactly; nothing listening, a server that
 * never answers, and a connection lost before the pong fail the ping with typed errors.
 */
import * as net from 'node:net';

import { firstValueFrom, type Subscription } from 'rxjs';

import {
  ClientClosedError,
  ClientQt,
  QtConnectionError,
  RequestTimeoutError,
  encodePayload,
  frameHeader,
  type CodecName,
} from '../../lib/index.js';
import { budget } from '../helpers/time-budget.js';

import {
  TRANSPORTS,
  freePort,
  frame,
  json,
  pollUntil,
  rawConnect,
  startServer,
  uniqueName,
  waitEvent,
  within,
  type RawPeer,
  type ServerApp,
} from './helpers.js';

interface Stats {
  calls: Record<string, number>;
  liveNever: number;
  teardowns: string[];
}

/** The frame `packet` makes in `codec`, header included. */
function framed(codec: CodecName, packet: unknown): Buffer {
  const payload = encodePayload(codec, packet);
  return Buffer.concat([frameHeader(payload.length), payload]);
}

/** The payload of a frame: `value` encoded in `codec`. */
function payload(codec: CodecName, value: unknown): string {
  return encodePayload(codec, value).toString('hex');
}

describe.each(TRANSPORTS)('ping over %s', (transport) => {
  let server: ServerApp;
  let observer: ClientQt;
  const clients: ClientQt[] = [];
  const raws: RawPeer[] = [];

  const stats = (): Promise<Stats> => firstValueFrom(observer.send<Stats>('stats', {}));
  const client = (options: Record<string, unknown> = {}): ClientQt => {
    const c = new ClientQt({ ...server.target, ...options });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await startServer({ transport });
    observer = new ClientQt(server.target);
  });

  afterEach(async () => {
    for (const r of raws.splice(0)) r.destroy();
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await observer?.close();
    await server?.stop();
  });

  it.each<CodecName>(['json', 'cbor'])(
    'ClientQt.ping() with %s resolves with a round trip in ms, and no handler runs',
    async (codec) => {
      const before = (await stats()).calls;
      const c = client({ codec });
      const ms = await c.ping();
      expect(typeof ms).toBe('number');
      expect(Number.isFinite(ms) && ms >= 0).toBe(true);
      expect((await stats()).calls).toEqual(before);
    },
  );

  it('several pings in flight on one connection are each matched to their pong', async () => {
    const c = client({ codec: 'cbor' });
    await c.connect();
    const socket = c.unwrap();
    const times = await Promise.all(Array.from({ length: 20 }, () => c.ping()));
    expect(times).toHaveLength(20);
    for (const ms of times) expect(ms).toBeGreaterThanOrEqual(0);
    // The same connection served them all.
    expect(c.unwrap()).toBe(socket);
    expect(c.sockets()).toHaveLength(1);
  });

  it('a connection whose 128 handlers all run (its limit) still gets its pongs', async () => {
    const before = await stats();
    const c = client();
    const subs: Subscription[] = [];
    // 200 requests that never answer: 128 run, the rest wait behind the limit, in order.
    for (let i = 0; i < 200; i++) {
      subs.push(c.send('never', `busy-${transport}-${i}`).subscribe({ error: () => undefined }));
    }
    await pollUntil(stats, (s) => s.liveNever - before.liveNever >= 128, budget(10000), '128');
    const full = await stats();
    // At the limit: the server took no more of them from that connection.
    expect(full.calls.never - (before.calls.never ?? 0)).toBe(128);
    expect(await within(c.ping(budget(5000)), budget(10000), 'the pong')).toBeGreaterThanOrEqual(0);
    // Still at the limit: the pong came without any of the waiting requests being run.
    expect((await stats()).calls.never - (before.calls.never ?? 0)).toBe(128);
    // Closing the connection tears its handlers down (cancels would wait behind the limit).
    await c.close();
    for (const s of subs) s.unsubscribe();
    await pollUntil(stats, (s) => s.liveNever === before.liveNever, budget(10000), 'teardowns');
  });

  it.each<CodecName>(['json', 'cbor'])(
    'a raw peer that sends a %s ping gets exactly the pong frame, in that codec',
    async (codec) => {
      const peer = await rawConnect(server);
      raws.push(peer);
      peer.socket.write(framed(codec, { ping: 42 }));
      const [pong] = await peer.waitFrames(1, budget(5000));
      expect(Buffer.concat([frameHeader(pong.length), pong]).toString('hex')).toBe(
        framed(codec, { pong: 42 }).toString('hex'),
      );
      // A ping is not a request: the connection goes on serving requests.
      peer.socket.write(frame({ id: 1, pattern: 'sum', data: [2, 3] }));
      const frames = await peer.waitFrames(2, budget(5000));
      expect(json(frames[1])).toEqual({ id: 1, response: 5, isDisposed: true });
    },
  );

  it('a ping whose value is not an integer is a protocol error: that connection closes', async () => {
    const peer = await rawConnect(server);
    raws.push(peer);
    peer.socket.write(frame({ ping: 'x' }));
    await within(peer.closed, budget(5000), 'the close');
    expect(peer.frames).toHaveLength(0);
  });

  it('a ping on a closed client fails with ClientClosedError', async () => {
    const c = client();
    await c.ping();
    await c.close();
    await expect(c.ping()).rejects.toBeInstanceOf(ClientClosedError);
  });
});

describe('ping while the server drains', () => {
  it.each<CodecName>(['json', 'cbor'])(
    'a %s peer is answered after the draining notice, as before it',
    async (codec) => {
      const server = await startServer({ transport: 'local', options: { closeTimeout: 30000 } });
      const peer = await rawConnect(server);
      try {
        // A handler that runs holds the close (and the connection) open.
        peer.socket.write(framed(codec, { id: 1, pattern: 'never', data: 'drain-hold' }));
        peer.socket.write(framed(codec, { ping: 1 }));
        await peer.waitFrames(1, budget(5000));
        server.command('close');
        await waitEvent(server.run, 'closing');
        const notice = await peer.waitFrames(2, budget(5000));
        expect(notice[1].toString('hex')).toBe(payload(codec, { draining: true }));
        peer.socket.write(framed(codec, { ping: 2 }));
        const frames = await peer.waitFrames(3, budget(5000));
        expect(frames.map((f) => f.toString('hex'))).toEqual([
          payload(codec, { pong: 1 }),
          payload(codec, { draining: true }),
          payload(codec, { pong: 2 }),
        ]);
      } finally {
        peer.destroy();
        await server.stop();
      }
    },
  );
});

describe('ping failures', () => {
  const clients: ClientQt[] = [];
  const servers: net.Server[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const s of servers.splice(0)) s.close();
  });

  const client = (options: Record<string, unknown>): ClientQt => {
    const c = new ClientQt(options);
    clients.push(c);
    return c;
  };

  /** A TCP server that accepts and then does `onData` with what it receives. */
  async function rawServer(onData: (socket: net.Socket) => void): Promise<number> {
    const srv = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.on('data', () => onData(socket));
    });
    servers.push(srv);
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    return (srv.address() as net.AddressInfo).port;
  }

  it('nothing listening on the TCP port: QtConnectionError ConnectionRefusedError, Qt text', async () => {
    const port = await freePort();
    const error = await client({ transport: 'tcp', host: '127.0.0.1', port })
      .ping()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QtConnectionError);
    expect(error).toMatchObject({ code: 'ConnectionRefusedError', message: 'Connection refused' });
  });

  it('no local server of that name: QtConnectionError ServerNotFoundError, Qt text', async () => {
    const error = await client({ transport: 'local', name: uniqueName('nobody') })
      .ping()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QtConnectionError);
    expect(error).toMatchObject({
      code: 'ServerNotFoundError',
      message: 'QLocalSocket::connectToServer: Invalid name',
    });
  });

  it('a server that accepts and never answers: RequestTimeoutError after the timeout', async () => {
    let received = 0;
    const port = await rawServer(() => received++);
    const c = client({ transport: 'tcp', host: '127.0.0.1', port });
    const error = await c.ping(300).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(error).toMatchObject({ code: 'QT_REQUEST_TIMEOUT', timeoutMs: 300 });
    // It was sent: the peer got the ping and did not answer it.
    expect(received).toBeGreaterThan(0);
    // The connection stays usable for the next ping (it times out the same way).
    await expect(c.ping(100)).rejects.toBeInstanceOf(RequestTimeoutError);
    expect(c.sockets()).toHaveLength(1);
  });

  it('a connection lost before the pong: QtConnectionError RemoteHostClosedError', async () => {
    const port = await rawServer((socket) => socket.destroy());
    const error = await client({ transport: 'tcp', host: '127.0.0.1', port, reconnect: false })
      .ping(budget(5000))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QtConnectionError);
    expect(error).toMatchObject({ code: 'RemoteHostClosedError' });
    expect((error as Error).message).toContain('The remote host closed the connection');
  });

  it('a timeout that is not a positive number is refused', async () => {
    const c = client({ transport: 'tcp', host: '127.0.0.1', port: 1 });
    await expect(c.ping(0)).rejects.toBeInstanceOf(RangeError);
    await expect(c.ping(Number.NaN)).rejects.toBeInstanceOf(RangeError);
  });
});
