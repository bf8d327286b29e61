/**
 * ServerQt drains before it closes (docs/protocol.md, "Draining"), against the Nest server
 * app in its own process, over TCP and over a local socket, with raw framed peers on
 * `node:net` that speak the protocol by hand:
 *
 * - a peer that answers the notice: the notice is the first frame after the close began;
 *   every request it sent before its answer is served (requests that crossed the notice
 *   included), none is refused; its connection closes after its last reply;
 * - a peer that does not answer (as a Qt program or an older client): served until the
 *   acknowledgement wait ends, then its requests get QT_SERVER_CLOSING and its events are
 *   dropped, and its connection closes once nothing runs for it;
 * - an endless stream still ends at once with QT_STREAM_ENDED_BY_CLOSE, after the notice;
 * - a peer that sends `{ draining: true }` to a server that is not closing: accepted
 *   silently, its connection closes once its handler is done, the server serves on;
 * - SIGTERM through Nest's shutdown hooks (app.enableShutdownHooks()) runs the same drain.
 *
 * Every wait is on an event (a frame, a close, a line of the server's stdout), bounded by a
 * budget; nothing asserts how long anything took.
 */
import * as net from 'node:net';

import { budget } from '../helpers/time-budget.js';

import {
  TRANSPORTS,
  cborDecode,
  cborEncode,
  frame,
  rawConnect,
  sleep,
  startServer,
  uniqueName,
  waitEvent,
  within,
  type RawPeer,
  type ServerApp,
} from './helpers.js';

type Codec = 'json' | 'cbor';
type Packet = Record<string, unknown>;

const NOTICE = { draining: true };
const SERVER_CLOSING = {
  code: 'QT_SERVER_CLOSING',
  message: 'The server is closing: the request was not run',
};
const STREAM_ENDED_BY_CLOSE = {
  code: 'QT_STREAM_ENDED_BY_CLOSE',
  message: 'The server is closing: the stream was ended',
};

/** One frame holding `packet` in `codec`. */
function packetFrame(codec: Codec, packet: Packet): Buffer {
  return frame(codec === 'json' ? JSON.stringify(packet) : cborEncode(packet));
}

/** A frame's packet, decoded with the codec its first byte names; checks that codec. */
function decode(payload: Buffer, codec: Codec): Packet {
  const json = payload[0] === 0x7b;
  expect(json ? 'json' : 'cbor').toBe(codec);
  return (json ? JSON.parse(payload.toString('utf8')) : cborDecode(payload)) as Packet;
}

/** The packets `peer` has received so far. */
function packets(peer: RawPeer, codec: Codec): Packet[] {
  return peer.frames.map((f) => decode(f, codec));
}

/** Waits until a received packet satisfies `match`; returns all packets so far. */
async function waitPacket(
  peer: RawPeer,
  codec: Codec,
  match: (p: Packet) => boolean,
  what: string,
): Promise<Packet[]> {
  const deadline = Date.now() + budget(15000);
  for (;;) {
    const all = packets(peer, codec);
    if (all.some(match)) return all;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`${what}: not within budget; got ${JSON.stringify(all)}`);
    await peer.waitFrames(all.length + 1, left).catch((err: unknown) => {
      throw new Error(`${what}: ${String(err)}; got ${JSON.stringify(packets(peer, codec))}`);
    });
  }
}

type Stats = {
  calls: Record<string, number>;
  teardowns: string[];
  events: Array<{ data: { tag?: string } | null }>;
  protocolErrors: Array<{ code: string; message: string }>;
};

async function stats(server: ServerApp): Promise<Stats> {
  server.command('stats');
  return (await waitEvent(server.run, 'stats')) as unknown as Stats;
}

/** Resolves true if a new connection to the server's address succeeds (and closes it). */
function connects(server: ServerApp): Promise<boolean> {
  return new Promise((resolve) => {
    const socket =
      server.transport === 'local'
        ? net.createConnection({ path: server.fullServerName })
        : net.createConnection({ host: '127.0.0.1', port: server.port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe.each(TRANSPORTS)('ServerQt drains before it closes, over %s', (transport) => {
  const servers: ServerApp[] = [];
  const raws: RawPeer[] = [];
  afterEach(async () => {
    for (const r of raws.splice(0)) r.destroy();
    for (const s of servers.splice(0)) await s.stop();
  });
  const start = async (spec: { options?: Packet; shutdownHooks?: boolean } = {}) => {
    const server = await startServer({ transport, ...spec });
    servers.push(server);
    return server;
  };
  const connect = async (server: ServerApp): Promise<RawPeer> => {
    const peer = await rawConnect(server);
    raws.push(peer);
    return peer;
  };

  it.each(['json', 'cbor'] as const)(
    'a peer that answers (%s): the notice comes first, everything sent before the answer is served (nothing refused), the connection closes after the last reply, and no new connection is taken',
    async (codec) => {
      const server = await start();
      const peer = await connect(server);
      const send = (packet: Packet): boolean => peer.socket.write(packetFrame(codec, packet));
      const tag = uniqueName('answering');

      // A handler in flight when the close begins, and long after the answer.
      send({ id: 'slow', pattern: 'slow', data: 1500 });
      await waitEvent(server.run, 'slow-start');
      server.command('close');
      await waitEvent(server.run, 'closing');
      // Sent without reading anything: these cross the notice.
      for (let i = 1; i <= 3; i++) send({ id: `crossed-${i}`, pattern: 'ping', data: null });
      send({ pattern: 'note', data: { tag } });

      const upToNotice = await waitPacket(peer, codec, (p) => p.draining === true, 'the notice');
      // Only what was sent before the close began may precede the notice: at most the slow
      // reply, on a machine slow enough to finish it before the close.
      const beforeNotice = upToNotice.slice(
        0,
        upToNotice.findIndex((p) => p.draining === true),
      );
      for (const p of beforeNotice) expect(p.id).toBe('slow');
      // The listener stopped when the close began.
      expect(await connects(server)).toBe(false);

      // Read, and still before answering: one more request, then the answer.
      await waitPacket(peer, codec, (p) => p.id === 'crossed-3', 'the crossed replies');
      send({ id: 'before-answer', pattern: 'ping', data: null });
      await waitPacket(peer, codec, (p) => p.id === 'before-answer', 'the last reply');
      expect(peer.isClosed()).toBe(false);
      send(NOTICE);

      await within(peer.closed, budget(15000), 'the server to close the connection');
      const all = packets(peer, codec);
      const pong = (id: string): Packet => ({ id, response: 'pong', isDisposed: true });
      expect(all).toEqual(
        expect.arrayContaining([
          pong('crossed-1'),
          pong('crossed-2'),
          pong('crossed-3'),
          pong('before-answer'),
          { id: 'slow', response: 'slow-done', isDisposed: true },
          NOTICE,
        ]),
      );
      // Nothing else: no refusal, no second notice; the slow reply came before the close.
      expect(all).toHaveLength(6);
      await waitEvent(server.run, 'closed');
      const s = await stats(server);
      expect(s.calls.ping).toBe(4);
      expect(s.calls.slow).toBe(1);
      expect(s.events.filter((e) => e.data?.tag === tag)).toHaveLength(1);
      expect(s.protocolErrors).toEqual([]);
    },
  );

  it('a peer with nothing in flight is served until it answers and closed at once after; a peer that never answers is served until the acknowledgement wait ends, then gets QT_SERVER_CLOSING, and is closed once its last handler is done', async () => {
    // closeTimeout far beyond the test: the connections close by the drain rules alone.
    const server = await start({ options: { closeTimeout: 600_000 } });
    const answering = await connect(server);
    const silent = await connect(server);
    const neverTag = uniqueName('held');
    const lateTag = uniqueName('late-event');
    // The silent peer holds a handler that only its own cancel ends.
    silent.socket.write(frame({ id: 'held', pattern: 'never', data: neverTag }));
    answering.socket.write(frame({ id: 'hello', pattern: 'ping', data: null }));
    await waitPacket(answering, 'json', (p) => p.id === 'hello', 'the first reply');
    // A 'never' request is running once the server has answered a later one on that socket.
    silent.socket.write(frame({ id: 'hello', pattern: 'ping', data: null }));
    await waitPacket(silent, 'json', (p) => p.id === 'hello', 'the silent peer reply');

    server.command('close');
    await waitEvent(server.run, 'closing');
    const a = await waitPacket(answering, 'json', (p) => p.draining === true, 'the notice');
    expect(a.slice(1)).toEqual([NOTICE]);
    // Nothing runs for it, and it has not answered yet: it is kept, and served.
    answering.socket.write(frame({ id: 'before-answer', pattern: 'ping', data: null }));
    const b = await waitPacket(answering, 'json', (p) => p.id === 'before-answer', 'a reply');
    expect(b.slice(2)).toEqual([{ id: 'before-answer', response: 'pong', isDisposed: true }]);
    answering.socket.write(frame(NOTICE));
    await within(answering.closed, budget(15000), 'the answering peer to be closed');
    expect(packets(answering, 'json')).toHaveLength(3);

    const s0 = await waitPacket(silent, 'json', (p) => p.draining === true, 'the notice');
    expect(s0.slice(1)).toEqual([NOTICE]);
    // Requests, one at a time: served while the server waits for an answer, refused (not
    // run) from the end of that wait on. The pace only keeps the loop from spinning.
    let served = 0;
    let refusal: Packet | undefined;
    for (let i = 0; refusal === undefined; i++) {
      const id = `late-${i}`;
      silent.socket.write(frame({ id, pattern: 'ping', data: null }));
      const reply = (await waitPacket(silent, 'json', (p) => p.id === id, id)).at(-1)!;
      if (reply.response === 'pong') served++;
      else refusal = reply;
      if (refusal === undefined) await sleep(50);
    }
    expect(refusal).toEqual({ id: `late-${served}`, err: SERVER_CLOSING, isDisposed: true });
    // From then on: refused again, and an event is dropped.
    silent.socket.write(frame({ pattern: 'note', data: { tag: lateTag } }));
    silent.socket.write(frame({ id: 'refused-too', pattern: 'ping', data: null }));
    const refusedToo = await waitPacket(silent, 'json', (p) => p.id === 'refused-too', 'refusal');
    expect(refusedToo.at(-1)).toEqual({ id: 'refused-too', err: SERVER_CLOSING, isDisposed: true });
    expect(silent.isClosed()).toBe(false);

    // Its last handler ends (torn down by its cancel): the connection is closed.
    silent.socket.write(frame({ id: 'held', cancel: true }));
    await within(silent.closed, budget(15000), 'the silent peer to be closed');
    await waitEvent(server.run, 'closed');
    const s = await stats(server);
    expect(s.teardowns).toContain(neverTag);
    expect(s.calls.ping).toBe(3 + served);
    expect(s.events.filter((e) => e.data?.tag === lateTag)).toEqual([]);
    expect(s.protocolErrors).toEqual([]);
    // Every packet the silent peer got: its first reply, the notice, the pongs, two refusals.
    expect(packets(silent, 'json')).toHaveLength(2 + served + 2);
  });

  it('an endless stream still ends at once with QT_STREAM_ENDED_BY_CLOSE, after the notice; then the answer closes the connection', async () => {
    const server = await start({ options: { closeTimeout: 600_000 } });
    const peer = await connect(server);
    const tag = uniqueName('ticker');
    peer.socket.write(frame({ id: 7, pattern: 'ticker', data: tag }));
    await peer.waitFrames(2, budget(15000));

    server.command('close');
    await waitEvent(server.run, 'closing');
    await waitPacket(peer, 'json', (p) => p.err !== undefined, 'the end of the stream');
    const all = packets(peer, 'json');
    const notice = all.findIndex((p) => p.draining === true);
    expect(notice).toBeGreaterThanOrEqual(2);
    expect(all.filter((p) => p.draining === true)).toHaveLength(1);
    // Before the notice only values; after it at most the value held for the last reply,
    // and the error reply that ends the stream.
    for (const p of all.slice(0, notice))
      expect(p).toEqual({ id: 7, response: expect.any(Number) });
    const after = all.slice(notice + 1);
    expect(after.at(-1)).toEqual({ id: 7, err: STREAM_ENDED_BY_CLOSE, isDisposed: true });
    for (const p of after.slice(0, -1)) expect(p).toEqual({ id: 7, response: expect.any(Number) });
    expect(after.length).toBeLessThanOrEqual(2);

    peer.socket.write(frame(NOTICE));
    await within(peer.closed, budget(15000), 'the server to close the connection');
    expect(peer.frames).toHaveLength(all.length);
    await waitEvent(server.run, 'closed');
    expect((await stats(server)).teardowns).toContain(tag);
  });

  it.each(['json', 'cbor'] as const)(
    'a peer that sends { draining: true } (%s) to a server that is not closing: no reply and no error; its connection closes once its handler is done; the server serves on',
    async (codec) => {
      const server = await start();
      const peer = await connect(server);
      // In one write: a request still running when the packet arrives.
      peer.socket.write(
        Buffer.concat([
          packetFrame(codec, { id: 1, pattern: 'slow', data: 300 }),
          packetFrame(codec, NOTICE),
        ]),
      );
      await within(peer.closed, budget(15000), 'the server to close the connection');
      expect(packets(peer, codec)).toEqual([{ id: 1, response: 'slow-done', isDisposed: true }]);

      const next = await connect(server);
      next.socket.write(packetFrame(codec, { id: 2, pattern: 'sum', data: [1, 2] }));
      await waitPacket(next, codec, (p) => p.id === 2, 'a reply on a new connection');
      expect(packets(next, codec)).toEqual([{ id: 2, response: 3, isDisposed: true }]);
      const s = await stats(server);
      expect(s.protocolErrors).toEqual([]);
      expect(s.calls.slow).toBe(1);
    },
  );

  it('SIGTERM through Nest shutdown hooks drains: an answering peer gets its replies, then its connection closes; a silent peer is closed; the process ends by the signal', async () => {
    const server = await start({ shutdownHooks: true });
    const answering = await connect(server);
    const silent = await connect(server);
    answering.socket.write(frame({ id: 'slow', pattern: 'slow', data: 1000 }));
    await waitEvent(server.run, 'slow-start');
    silent.socket.write(frame({ id: 'hello', pattern: 'ping', data: null }));
    await waitPacket(silent, 'json', (p) => p.id === 'hello', 'the silent peer reply');

    server.run.proc.kill('SIGTERM');
    await waitPacket(answering, 'json', (p) => p.draining === true, 'the notice');
    answering.socket.write(
      Buffer.concat([frame({ id: 'after', pattern: 'ping', data: null }), frame(NOTICE)]),
    );
    const s = await waitPacket(silent, 'json', (p) => p.draining === true, 'the notice');
    expect(s.slice(1)).toEqual([NOTICE]);

    await within(answering.closed, budget(15000), 'the answering peer to be closed');
    expect(packets(answering, 'json')).toEqual(
      expect.arrayContaining([
        NOTICE,
        { id: 'after', response: 'pong', isDisposed: true },
        { id: 'slow', response: 'slow-done', isDisposed: true },
      ]),
    );
    expect(answering.frames).toHaveLength(3);
    await within(silent.closed, budget(15000), 'the silent peer to be closed');
    expect(silent.frames).toHaveLength(2);
    expect(await within(server.run.exited, budget(15000), 'the server to exit')).toEqual({
      code: null,
      signal: 'SIGTERM',
    });
  });
});
