/**
 * End-to-end limits with raw peers (`node:net` over TCP or the Unix socket) against a Nest
 * microservice on ServerQt in another process, configured with
 * incompleteFrameTimeout 500 ms, maxSendBufferSize 1 MiB and maxFrameSize 1 MiB:
 * a peer stalled mid-frame is dropped, a trickling or idle one is not, a peer that does
 * not read is dropped once more than maxSendBufferSize is queued for it, and every
 * protocol error closes only the offending connection while a ClientQt on another
 * connection keeps being served on the same socket.
 */
import { firstValueFrom } from 'rxjs';

import { ClientQt } from '../../lib/index.js';

import {
  TRANSPORTS,
  frame,
  header,
  json,
  pollUntil,
  rawConnect,
  sleep,
  startServer,
  within,
  type RawPeer,
  type ServerApp,
} from './helpers.js';

const MiB = 1024 * 1024;
const INCOMPLETE_FRAME_TIMEOUT = 500;

interface Stats {
  protocolErrors: Array<{ code: string; message: string }>;
  calls: Record<string, number>;
}

describe.each(TRANSPORTS)('e2e limits over %s: raw peers against the server', (transport) => {
  let server: ServerApp;
  let bystander: ClientQt;
  let bystanderSocket: unknown;
  const raws: RawPeer[] = [];

  const stats = (): Promise<Stats> => firstValueFrom(bystander.send<Stats>('stats', {}));
  const raw = async (): Promise<RawPeer> => {
    const peer = await rawConnect(server);
    raws.push(peer);
    return peer;
  };

  /** The bystander is answered, on the connection it had from the start. */
  async function expectBystanderServed(): Promise<void> {
    expect(await firstValueFrom(bystander.send<number>('sum', [40, 2]))).toBe(42);
    expect(bystander.unwrap()).toBe(bystanderSocket);
  }

  /** Waits for the protocol errors logged after the first `before`, and returns them. */
  async function newProtocolErrors(before: number): Promise<Stats['protocolErrors']> {
    const s = await pollUntil(
      stats,
      (v) => v.protocolErrors.length > before,
      5000,
      'a protocolError on the server',
    );
    return s.protocolErrors.slice(before);
  }

  beforeAll(async () => {
    server = await startServer({
      transport,
      options: {
        incompleteFrameTimeout: INCOMPLETE_FRAME_TIMEOUT,
        maxSendBufferSize: MiB,
        maxFrameSize: MiB,
      },
    });
    bystander = new ClientQt({ ...server.target, reconnect: false, requestTimeout: 10000 });
    await bystander.connect();
    bystanderSocket = bystander.unwrap();
  });

  afterEach(() => {
    for (const r of raws.splice(0)) r.destroy();
  });

  afterAll(async () => {
    await bystander?.close();
    await server?.stop();
  });

  it('a peer stalled in the middle of a frame is dropped after incompleteFrameTimeout', async () => {
    const before = (await stats()).protocolErrors.length;
    const peer = await raw();
    peer.socket.write(Buffer.concat([header(1000), Buffer.alloc(10, 0x20)]));
    await within(peer.closed, 5000, 'the stalled peer to be dropped');
    expect(peer.received()).toBe(0);
    const errors = await newProtocolErrors(before);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('QT_INCOMPLETE_FRAME_TIMEOUT');
    expect(errors[0]!.message).toContain(`${INCOMPLETE_FRAME_TIMEOUT} ms`);
    await expectBystanderServed();
  });

  it('a peer trickling one byte every 100 ms of a 30-byte frame is not dropped and is answered', async () => {
    const before = (await stats()).protocolErrors.length;
    const peer = await raw();
    // 30 bytes of JSON: trailing spaces are JSON whitespace.
    const payload = Buffer.from('{"id":9,"pattern":"ping"}'.padEnd(30, ' '));
    expect(payload.length).toBe(30);
    const bytes = frame(payload);
    for (const byte of bytes) {
      expect(peer.isClosed()).toBe(false);
      peer.socket.write(Buffer.from([byte]));
      await sleep(100);
    }
    const [reply] = await peer.waitFrames(1, 5000);
    expect(json(reply!)).toMatchObject({ id: 9, response: 'pong', isDisposed: true });
    expect(peer.isClosed()).toBe(false);
    expect((await stats()).protocolErrors.length).toBe(before);
  });

  it('an idle peer (nothing sent, or between frames) is not dropped', async () => {
    const before = (await stats()).protocolErrors.length;
    const silent = await raw();
    const between = await raw();
    between.socket.write(frame({ id: 1, pattern: 'ping', data: null }));
    await between.waitFrames(1);
    await sleep(INCOMPLETE_FRAME_TIMEOUT * 2.5);
    expect(silent.isClosed()).toBe(false);
    expect(between.isClosed()).toBe(false);
    silent.socket.write(frame({ id: 2, pattern: 'ping', data: null }));
    between.socket.write(frame({ id: 3, pattern: 'ping', data: null }));
    expect(json((await silent.waitFrames(1))[0]!)).toMatchObject({ id: 2, response: 'pong' });
    expect(json((await between.waitFrames(2))[1]!)).toMatchObject({ id: 3, response: 'pong' });
    expect((await stats()).protocolErrors.length).toBe(before);
  });

  /**
   * Sends up to `count` 'big' requests (256 KiB replies) one every 10 ms, so that the
   * server never has much more than one reply to write at a time; stops early once
   * `stop()` says so.
   */
  async function pacedBigRequests(
    peer: RawPeer,
    count: number,
    stop: () => Promise<boolean> = async () => false,
  ): Promise<number> {
    let sent = 0;
    while (sent < count && !peer.isClosed()) {
      peer.socket.write(frame({ id: sent, pattern: 'big', data: 256 * 1024 }));
      sent++;
      await sleep(10);
      if (sent % 8 === 0 && (await stop())) break;
    }
    return sent;
  }

  it('a peer that does not read is dropped once more than maxSendBufferSize is queued; others are served', async () => {
    const before = (await stats()).protocolErrors.length;
    const peer = await raw();
    peer.socket.pause();
    // Up to 25 MiB of replies, one at a time: the kernel buffers fill, then the server's
    // queue for this peer grows past 1 MiB.
    const sent = await pacedBigRequests(peer, 100, async () => {
      const s = await stats();
      return s.protocolErrors.length > before;
    });
    const errors = await newProtocolErrors(before);
    expect(errors.map((e) => e.code)).toEqual(['QT_SEND_BUFFER_OVERFLOW']);
    expect(sent).toBeGreaterThan(4);
    await expectBystanderServed();
    // The server side was checked above: a paused peer sees its reset once it reads again.
    peer.socket.resume();
    await within(peer.closed, 10000, 'the non-reading peer to see its connection closed');
    expect(peer.received()).toBeLessThan(sent * 256 * 1024);
  });

  it('a peer that reads its replies is served in full, with the same load (one request at a time)', async () => {
    const before = (await stats()).protocolErrors.length;
    const peer = await raw();
    for (let i = 0; i < 100; i++) {
      peer.socket.write(frame({ id: i, pattern: 'big', data: 256 * 1024 }));
      await peer.waitFrames(i + 1, 10000);
    }
    const replies = peer.frames.map(json);
    expect(replies.map((r) => r.id)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(replies.every((r) => (r.response as string).length === 256 * 1024)).toBe(true);
    expect(peer.isClosed()).toBe(false);
    expect((await stats()).protocolErrors.slice(before)).toEqual([]);
  });

  it('a peer that reads its replies is served in full when it pipelines replies within maxSendBufferSize in one write', async () => {
    const before = (await stats()).protocolErrors.length;
    const peer = await raw();
    const requests: Buffer[] = [];
    // 3 replies of 256 KiB = 768 KiB waiting at once, under the 1 MiB limit.
    for (let i = 0; i < 3; i++) requests.push(frame({ id: i, pattern: 'big', data: 256 * 1024 }));
    peer.socket.write(Buffer.concat(requests));
    const replies = await peer.waitFrames(3, 20000);
    expect(replies.map((r) => json(r).id)).toEqual([0, 1, 2]);
    expect(peer.isClosed()).toBe(false);
    expect((await stats()).protocolErrors.slice(before)).toEqual([]);
  });

  const protocolErrors: Array<[string, () => Buffer, string]> = [
    ['a length header of 0xFFFFFFFF', () => header(0xffffffff), 'QT_NULL_FRAME'],
    // Only the 4 header bytes are sent: the close comes from the size check, not a timeout.
    ['a length header over maxFrameSize', () => header(MiB + 1), 'QT_FRAME_TOO_LARGE'],
    ['a zero-length frame', () => header(0), 'QT_EMPTY_FRAME'],
    ['a payload neither JSON nor CBOR', () => frame(Buffer.from('hello')), 'QT_INVALID_PAYLOAD'],
    ['JSON that does not parse', () => frame(Buffer.from('{"id":1,')), 'QT_INVALID_PAYLOAD'],
    ['a packet without a pattern', () => frame({ id: 1, data: [1, 2] }), 'QT_INVALID_PACKET'],
    [
      'a reply sent to the server',
      () => frame({ id: 1, response: 3, isDisposed: true }),
      'QT_INVALID_PACKET',
    ],
    ['a cancel without an id', () => frame({ cancel: true }), 'QT_INVALID_PACKET'],
  ];

  it.each(protocolErrors)('%s closes only that connection', async (_what, bytes, code) => {
    const before = (await stats()).protocolErrors.length;
    const other = await raw();
    const peer = await raw();
    peer.socket.write(bytes());
    await within(peer.closed, 5000, 'the offending connection to close');
    expect(peer.received()).toBe(0);
    const errors = await newProtocolErrors(before);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe(code);
    await expectBystanderServed();
    // Another raw connection opened before is untouched as well.
    expect(other.isClosed()).toBe(false);
    other.socket.write(frame({ id: 5, pattern: 'sum', data: [2, 3] }));
    expect(json((await other.waitFrames(1))[0]!)).toMatchObject({ id: 5, response: 5 });
  });
});
