/**
 * QtConnection over real Qt socket pairs (QTcpSocket on loopback, QLocalSocket on a Unix
 * socket): packets both ways, frame limits both ways, the packet-values limit, the
 * send-buffer cap, the incomplete-frame timeout, backpressure against a peer that does not
 * read, whenWritten().
 */
import {
  QHostAddress,
  QLocalServer,
  QLocalSocket,
  QTcpServer,
  QTcpSocket,
} from '../../../lib/qtnetwork/index.js';
import {
  FrameTimeoutError,
  FrameTooLargeError,
  IncompleteFrameTimeoutError,
  InvalidOptionError,
  InvalidPayloadError,
  PacketTooComplexError,
  QtConnection,
  SendBufferOverflowError,
  encodePayload,
  frameHeader,
  resolveQtOptions,
  type CodecName,
  type QtStreamSocket,
  type QtTransportError,
  type QtTransportOptions,
} from '../../../lib/transport/index.js';
import { uniqueLocalName } from '../../helpers/qlocal-helpers.js';
import { Resources } from '../../helpers/resources.js';
import { sleep, waitUntil } from '../../helpers/signals.js';

const MiB = 1024 * 1024;
const res = new Resources();
afterEach(() => res.dispose());

type Kind = 'tcp' | 'local';

/** A connected socket pair: `a` connected to a server, `b` the server's end. */
async function socketPair(kind: Kind): Promise<{ a: QtStreamSocket; b: QtStreamSocket }> {
  if (kind === 'tcp') {
    const server = res.server(new QTcpServer());
    expect(await server.listen(new QHostAddress('127.0.0.1'), 0)).toBe(true);
    const a = res.socket(new QTcpSocket());
    a.connectToHost('127.0.0.1', server.serverPort());
    expect(await a.waitForConnected(5000)).toBe(true);
    if (!server.hasPendingConnections()) await server.waitForNewConnection(5000);
    const b = res.socket(server.nextPendingConnection()!);
    return { a, b };
  }
  const server = res.server(new QLocalServer());
  expect(await server.listen(uniqueLocalName('qtconn'))).toBe(true);
  const a = res.socket(new QLocalSocket());
  a.connectToServer(server.fullServerName());
  expect(await a.waitForConnected(5000)).toBe(true);
  if (!server.hasPendingConnections()) await server.waitForNewConnection(5000);
  const b = res.socket(server.nextPendingConnection()!);
  return { a, b };
}

interface Watched {
  conn: QtConnection;
  socket: QtStreamSocket;
  packets: Array<{ value: unknown; codec: CodecName }>;
  errors: QtTransportError[];
  closed(): boolean;
}

/** A QtConnection on `socket` that records what it reports. */
function watch(socket: QtStreamSocket, options: QtTransportOptions = {}): Watched {
  const packets: Watched['packets'] = [];
  const errors: QtTransportError[] = [];
  let closed = false;
  const conn = new QtConnection(socket, resolveQtOptions(options, 'server'), {
    onPacket: (value, codec) => packets.push({ value, codec }),
    onProtocolError: (error) => errors.push(error),
    onClosed: () => {
      closed = true;
    },
  });
  res.add(() => conn.abort());
  conn.start();
  return { conn, socket, packets, errors, closed: () => closed };
}

function frame(value: unknown, codec: CodecName = 'json'): Buffer {
  const payload = encodePayload(codec, value);
  return Buffer.concat([frameHeader(payload.length), payload]);
}

/** Reads raw bytes from `socket` until `n` have arrived. */
async function readRaw(socket: QtStreamSocket, n: number, ms = 5000): Promise<Buffer> {
  await waitUntil(() => socket.bytesAvailable() >= n, ms, `${n} raw bytes`);
  return socket.read(n);
}

/** Makes `socket` stop reading from the kernel (a peer that does not read). */
function stopReading(socket: QtStreamSocket): void {
  socket.setReadBufferSize(1024);
}

/** Makes `socket` read and discard everything, now and from now on. */
function drain(socket: QtStreamSocket): void {
  socket.setReadBufferSize(0);
  socket.readyRead.connect(() => void socket.readAll());
  socket.readAll();
}

/** Queues `mib` MiB for the peer of `w` in one go (1 MiB CBOR frames). */
function flood(w: Watched, mib: number): void {
  const blob = Buffer.alloc(MiB - 64, 0x61);
  for (let i = 0; i < mib; i++)
    expect(w.conn.send({ pattern: 'flood', data: blob }, 'cbor')).toBe(true);
}

describe.each(['tcp', 'local'] as const)('QtConnection over %s', (kind) => {
  it('carries packets both ways, JSON and CBOR, each decoded with its codec', async () => {
    const { a, b } = await socketPair(kind);
    const A = watch(a);
    const B = watch(b);
    const blob = Buffer.alloc(300 * 1024);
    for (let i = 0; i < blob.length; i++) blob[i] = i & 0xff;

    expect(A.conn.send({ id: 1, pattern: 'sum', data: [1, 2, 3] }, 'json')).toBe(true);
    expect(
      A.conn.send({ id: 'x', pattern: 'bin', data: { buf: Buffer.from([1, 2]) } }, 'cbor'),
    ).toBe(true);
    expect(A.conn.send({ pattern: 'big', data: blob }, 'cbor')).toBe(true);
    await waitUntil(() => B.packets.length === 3, 5000, '3 packets at B');
    expect(B.packets[0]).toEqual({
      codec: 'json',
      value: { id: 1, pattern: 'sum', data: [1, 2, 3] },
    });
    expect(B.packets[1]).toEqual({
      codec: 'cbor',
      value: { id: 'x', pattern: 'bin', data: { buf: Buffer.from([1, 2]) } },
    });
    expect(B.packets[2].codec).toBe('cbor');
    expect((B.packets[2].value as { data: Buffer }).data.equals(blob)).toBe(true);

    expect(B.conn.send({ id: 1, response: 6, isDisposed: true }, 'json')).toBe(true);
    expect(B.conn.send({ id: 'x', response: Buffer.from('ok'), isDisposed: true }, 'cbor')).toBe(
      true,
    );
    await waitUntil(() => A.packets.length === 2, 5000, '2 packets at A');
    expect(A.packets).toEqual([
      { codec: 'json', value: { id: 1, response: 6, isDisposed: true } },
      { codec: 'cbor', value: { id: 'x', response: Buffer.from('ok'), isDisposed: true } },
    ]);
    expect([A.errors, B.errors, A.closed(), B.closed()]).toEqual([[], [], false, false]);
  });

  it('the first frame of a burst is handed to the kernel during send(); the frames after it in the same run go together on the next tick', async () => {
    const { a, b } = await socketPair(kind);
    const A = watch(a);
    const B = watch(b);
    const sizes = [1, 2, 3].map((n) => frame({ id: n, pattern: 'p', data: 'x'.repeat(n) }).length);
    expect(A.conn.send({ id: 1, pattern: 'p', data: 'x' }, 'json')).toBe(true);
    // Handed over at once: nothing waits in the socket.
    expect(a.bytesToWrite()).toBe(0);
    expect(A.conn.send({ id: 2, pattern: 'p', data: 'xx' }, 'json')).toBe(true);
    expect(A.conn.send({ id: 3, pattern: 'p', data: 'xxx' }, 'json')).toBe(true);
    // The rest of the burst waits for the socket's flush.
    expect(a.bytesToWrite()).toBe(sizes[1] + sizes[2]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(a.bytesToWrite()).toBe(0);
    // A new run is a new burst: its first frame goes at once again.
    expect(A.conn.send({ id: 4, pattern: 'p', data: 'x' }, 'json')).toBe(true);
    expect(a.bytesToWrite()).toBe(0);
    await waitUntil(() => B.packets.length === 4, 5000, '4 packets at B');
    expect(B.packets.map((p) => (p.value as { id: number }).id)).toEqual([1, 2, 3, 4]);
    expect(A.errors).toEqual([]);
  });

  it('a long burst is handed to the kernel in parts during the run: at most 256 writes or 64 KiB of it wait in the socket at any time', async () => {
    const { a, b } = await socketPair(kind);
    const A = watch(a);
    const B = watch(b);
    // 3,000 small frames (~100 KiB, which the kernel takes) in one synchronous run.
    let most = 0;
    for (let i = 0; i < 3000; i++) {
      expect(A.conn.send({ id: i, pattern: 'p', data: 'x' }, 'json')).toBe(true);
      most = Math.max(most, a.bytesToWrite());
    }
    const small = frame({ id: 2999, pattern: 'p', data: 'x' }).length;
    expect(most).toBeLessThanOrEqual(256 * small);
    expect(a.bytesToWrite()).toBeLessThan(256 * small);
    // Larger frames: the byte bound hands them over before 256 have gathered.
    most = 0;
    for (let i = 0; i < 40; i++) {
      expect(A.conn.send({ id: i, pattern: 'p', data: 'y'.repeat(3000) }, 'json')).toBe(true);
      most = Math.max(most, a.bytesToWrite());
    }
    expect(most).toBeLessThan(64 * 1024 + 4096);
    await waitUntil(() => B.packets.length === 3040, 10000, '3,040 packets at B');
    expect(B.packets.slice(2998, 3001).map((p) => (p.value as { id: number }).id)).toEqual([
      2998, 2999, 0,
    ]);
    expect(A.errors).toEqual([]);
  });

  it('writes exactly frameHeader(n) + payload on the wire', async () => {
    const { a, b } = await socketPair(kind);
    const A = watch(a);
    const packet = { id: 7, pattern: 'p', data: 'é' };
    A.conn.send(packet, 'json');
    A.conn.send(packet, 'cbor');
    const expected = Buffer.concat([frame(packet, 'json'), frame(packet, 'cbor')]);
    expect(await readRaw(b, expected.length)).toEqual(expected);
  });

  it('send() of a packet over maxFrameSize throws FrameTooLargeError and writes nothing', async () => {
    const { a, b } = await socketPair(kind);
    const A = watch(a, { maxFrameSize: 64 });
    const big = { pattern: 'p', data: 'x'.repeat(100) };
    const size = encodePayload('json', big).length;
    let caught: unknown = null;
    try {
      A.conn.send(big, 'json');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FrameTooLargeError);
    expect(caught).toMatchObject({ code: 'QT_FRAME_TOO_LARGE', size, limit: 64 });
    expect(a.bytesToWrite()).toBe(0);
    expect(A.closed()).toBe(false);
    // The next thing on the wire is the next packet: nothing of the refused one.
    const small = { pattern: 'p', data: 1 };
    expect(A.conn.send(small, 'json')).toBe(true);
    const expected = frame(small);
    expect(await readRaw(b, expected.length)).toEqual(expected);
    await sleep(50);
    expect(b.bytesAvailable()).toBe(0);
  });

  it('a received header over maxFrameSize closes the connection at once with FrameTooLargeError', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b, { maxFrameSize: 100 });
    a.write(frameHeader(101)); // the header alone: no body is ever sent
    await waitUntil(() => B.closed(), 5000, 'B closed');
    expect(B.errors).toHaveLength(1);
    expect(B.errors[0]).toBeInstanceOf(FrameTooLargeError);
    expect(B.errors[0]).toMatchObject({ size: 101, limit: 100 });
    await waitUntil(() => a.state() === 0, 5000, 'the peer to see the close');
  });

  it('a payload that is neither JSON nor CBOR closes the connection with InvalidPayloadError', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b);
    a.write(Buffer.concat([frameHeader(5), Buffer.from('hello')]));
    await waitUntil(() => B.closed(), 5000, 'B closed');
    expect(B.errors.map((e) => e.constructor)).toEqual([InvalidPayloadError]);
    expect(B.packets).toEqual([]);
  });

  it('maxPacketValues: packets up to the limit are delivered; one with more values closes the connection with PacketTooComplexError', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b, { maxPacketValues: 10 });
    // 1 (map) + 2 (key, "x") + 2 (key, [ ) + 5 zeros = 10 values: delivered, both codecs.
    const packet = { pattern: 'x', data: [0, 0, 0, 0, 0] };
    a.write(frame(packet, 'json'));
    a.write(frame(packet, 'cbor'));
    await waitUntil(() => B.packets.length === 2, 5000, '2 packets at B');
    a.write(frame({ ...packet, data: [...packet.data, 0] }, 'cbor'));
    await waitUntil(() => B.closed(), 5000, 'B closed');
    expect(B.errors.map((e) => e.constructor)).toEqual([PacketTooComplexError]);
    expect(B.errors[0].message).toContain('more than 10 values (maxPacketValues)');
    expect(B.packets.length).toBe(2);
  });

  it('maxSendBufferSize: a peer that never reads is dropped with SendBufferOverflowError', async () => {
    const { a, b } = await socketPair(kind);
    stopReading(b);
    const A = watch(a, { maxSendBufferSize: 2 * MiB });
    const chunk = { pattern: 'p', data: Buffer.alloc(64 * 1024, 1) };
    const deadline = Date.now() + 20000;
    let sent = 0;
    // Send in turns, letting the sockets move what they can, until the queue overflows.
    while (!A.closed() && Date.now() < deadline && sent < 512 * MiB) {
      for (let i = 0; i < 4 && !A.closed(); i++) {
        if (A.conn.send(chunk, 'cbor')) sent += 64 * 1024;
      }
      await new Promise((r) => setImmediate(r));
    }
    expect(A.closed()).toBe(true);
    expect(A.errors).toHaveLength(1);
    const err = A.errors[0] as SendBufferOverflowError;
    expect(err).toBeInstanceOf(SendBufferOverflowError);
    expect(err.code).toBe('QT_SEND_BUFFER_OVERFLOW');
    expect(err.limit).toBe(2 * MiB);
    expect(err.queued).toBeGreaterThan(2 * MiB);
    expect(A.conn.send(chunk, 'cbor')).toBe(false);
  });

  it('incompleteFrameTimeout: a peer stalled mid-body gets IncompleteFrameTimeoutError and is closed', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b, { incompleteFrameTimeout: 200 });
    a.write(Buffer.concat([frameHeader(10), Buffer.from('{"a"')]));
    await waitUntil(() => B.closed(), 10000, 'B closed by the stall timer');
    expect(B.errors).toHaveLength(1);
    const err = B.errors[0] as IncompleteFrameTimeoutError;
    expect(err).toBeInstanceOf(IncompleteFrameTimeoutError);
    expect(err).toMatchObject({
      code: 'QT_INCOMPLETE_FRAME_TIMEOUT',
      timeoutMs: 200,
      received: 4,
      expected: 10,
    });
    await waitUntil(() => a.state() === 0, 5000, 'the peer to see the close');
  });

  it('incompleteFrameTimeout: a peer stalled inside a header is closed too', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b, { incompleteFrameTimeout: 200 });
    a.write(Buffer.from([0, 0]));
    await waitUntil(() => B.closed(), 10000, 'B closed by the stall timer');
    expect(B.errors[0]).toBeInstanceOf(IncompleteFrameTimeoutError);
    expect(B.errors[0]).toMatchObject({ received: 2, expected: 4 });
  });

  it('incompleteFrameTimeout: every byte of progress resets it (a slow frame that takes much longer in total is accepted)', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b, { incompleteFrameTimeout: 400 });
    let reads = 0;
    b.readyRead.connect(() => reads++);
    const bytes = frame({ a: 12345 }); // 4 + 11 bytes
    for (const byte of bytes) {
      const before = reads;
      a.write(Buffer.from([byte]));
      await waitUntil(() => reads > before, 5000, 'the byte to arrive');
      await sleep(80);
    }
    // 15 gaps of 80 ms: three times the timeout in total.
    await waitUntil(() => B.packets.length === 1, 5000, 'the packet');
    expect(B.packets[0].value).toEqual({ a: 12345 });
    expect(B.errors).toEqual([]);
    expect(B.closed()).toBe(false);
  });

  it('frameTimeout: a peer trickling a frame, each byte within incompleteFrameTimeout, is dropped with FrameTimeoutError once the frame is older than frameTimeout', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b, { incompleteFrameTimeout: 1000, frameTimeout: 600 });
    const bytes = frame({ pattern: 'x'.repeat(40) });
    let sent = 0;
    const started = Date.now();
    while (!B.closed() && sent < bytes.length && Date.now() - started < 5000) {
      a.write(bytes.subarray(sent, sent + 1));
      sent++;
      await sleep(50);
    }
    await waitUntil(() => B.closed(), 5000, 'B closed by the frame timer');
    expect(sent).toBeLessThan(bytes.length);
    expect(B.packets).toEqual([]);
    expect(B.errors).toHaveLength(1);
    const err = B.errors[0] as FrameTimeoutError;
    expect(err).toBeInstanceOf(FrameTimeoutError);
    expect(err.code).toBe('QT_FRAME_TIMEOUT');
    expect(err.elapsedMs).toBeGreaterThanOrEqual(600);
    expect(err.allowedMs).toBe(600 + Math.floor((err.received * 1000) / 65536));
    expect(err.received).toBeGreaterThan(4);
    expect(err.expected).toBe(bytes.length);
  });

  it('frameTimeout is extended by a second for every minFrameRate bytes received: a large frame sent steadily for longer than frameTimeout is accepted', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b, { frameTimeout: 300, minFrameRate: 16 * 1024 });
    const bytes = frame({ pattern: 'big', data: 'y'.repeat(64 * 1024) });
    // 8 KiB every 100 ms: about 0.8 s in all, each 8 KiB buying 500 ms more.
    for (let at = 0; at < bytes.length; at += 8 * 1024) {
      a.write(bytes.subarray(at, at + 8 * 1024));
      await sleep(100);
    }
    await waitUntil(() => B.packets.length === 1, 5000, 'the large packet');
    expect(B.errors).toEqual([]);
    expect(B.closed()).toBe(false);
  });

  it('frameTimeout runs per frame: many frames, each quick, for far longer than frameTimeout in all, and idle time between them, are accepted', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b, { frameTimeout: 300 });
    for (let n = 0; n < 12; n++) {
      const bytes = frame({ n });
      // Each frame in two writes, 20 ms apart; 100 ms between frames.
      a.write(bytes.subarray(0, 5));
      await sleep(20);
      a.write(bytes.subarray(5));
      await sleep(100);
    }
    await waitUntil(() => B.packets.length === 12, 5000, 'twelve packets');
    expect(B.errors).toEqual([]);
    expect(B.closed()).toBe(false);
  });

  it('frameTimeout 0 turns the frame clock off (the stall timer still applies)', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b, { frameTimeout: 0, incompleteFrameTimeout: 400 });
    const bytes = frame({ pattern: 'z'.repeat(10) });
    for (let i = 0; i < bytes.length; i++) {
      a.write(bytes.subarray(i, i + 1));
      await sleep(60);
    }
    await waitUntil(() => B.packets.length === 1, 5000, 'the packet');
    expect(B.errors).toEqual([]);
  });

  it('incompleteFrameTimeout does not run between frames (an idle peer is never timed out)', async () => {
    const { a, b } = await socketPair(kind);
    const B = watch(b, { incompleteFrameTimeout: 200 });
    a.write(frame({ n: 1 }));
    await waitUntil(() => B.packets.length === 1, 5000, 'the first packet');
    await sleep(800);
    expect(B.closed()).toBe(false);
    expect(B.errors).toEqual([]);
    a.write(frame({ n: 2 }));
    await waitUntil(() => B.packets.length === 2, 5000, 'the second packet');
    await sleep(800);
    expect(B.closed()).toBe(false);
  });

  it('backpressure: while > 4 MiB is queued for a peer that does not read, packets from it are held (read buffer bounded), then delivered in order', async () => {
    const { a, b } = await socketPair(kind);
    stopReading(b);
    const A = watch(a);
    expect(a.readBufferSize()).toBe(0);
    flood(A, 24);
    expect(A.conn.queuedBytes()).toBeGreaterThan(4 * MiB);
    // Paused: the socket's read buffer is bounded now.
    expect(a.readBufferSize()).toBeGreaterThan(0);

    const count = 20;
    const pad = 'p'.repeat(16 * 1024);
    for (let seq = 0; seq < count; seq++) b.write(frame({ seq, pad }));
    const limit = a.readBufferSize();
    await waitUntil(() => a.bytesAvailable() >= limit, 10000, 'the paused read buffer to fill');
    await sleep(100);
    expect(A.packets).toEqual([]);
    expect(a.bytesAvailable()).toBeLessThanOrEqual(limit);
    expect(a.readBufferSize()).toBe(limit);
    expect(A.closed()).toBe(false);

    drain(b);
    await waitUntil(() => A.packets.length === count, 20000, 'the held packets');
    expect(A.packets.map((p) => (p.value as { seq: number }).seq)).toEqual(
      Array.from({ length: count }, (_, i) => i),
    );
    expect(A.errors).toEqual([]);
    await A.conn.whenWritten();
    // Resumed: the socket's read buffer is unbounded again (the option is 0).
    expect(a.readBufferSize()).toBe(0);
  }, 40000);

  it('backpressure does not count against the peer: a frame held back while paused is not an incomplete-frame timeout', async () => {
    const { a, b } = await socketPair(kind);
    stopReading(b);
    const A = watch(a, { incompleteFrameTimeout: 1500 });
    let reads = 0;
    a.readyRead.connect(() => reads++);
    const whole = frame({ seq: 1, pad: 'q'.repeat(8 * 1024) });
    // The peer sends the first 100 bytes; the connection reads them (mid-frame now).
    b.write(whole.subarray(0, 100));
    await waitUntil(() => reads > 0 && a.bytesAvailable() === 0, 5000, 'the first part');
    // The connection pauses (it has a lot queued for the peer); the peer sends the rest at once.
    flood(A, 24);
    expect(a.readBufferSize()).toBeGreaterThan(0);
    b.write(whole.subarray(100));
    // The peer reads again, slowly: its socket holds at most 128 KiB and the test takes that
    // every 50 ms (a 1 MiB reply gets through in about 400 ms, progress, so it is not a peer
    // that stopped reading: see the write-stall test below). It keeps this up for three times
    // incompleteFrameTimeout, taking at most 11.25 MiB of the 24 queued, so reading stays
    // paused and the held frame stays incomplete for longer than the timeout: a connection
    // that counted held-back bytes against the peer would have dropped it by now.
    b.setReadBufferSize(128 * 1024);
    const started = Date.now();
    while (Date.now() - started < 4500) {
      await sleep(50);
      b.read(128 * 1024);
    }
    expect(a.readBufferSize()).toBeGreaterThan(0); // still paused: the frame was held all along
    expect(A.errors).toEqual([]);
    expect(A.closed()).toBe(false);
    drain(b);
    await waitUntil(() => A.packets.length === 1, 20000, 'the held packet');
    expect((A.packets[0].value as { seq: number }).seq).toBe(1);
  }, 40000);

  it('a peer that takes none of its waiting replies for incompleteFrameTimeout while reading is paused is dropped (WriteStallError)', async () => {
    const { a, b } = await socketPair(kind);
    stopReading(b);
    const A = watch(a, { incompleteFrameTimeout: 300 });
    flood(A, 24);
    await waitUntil(() => A.errors.length > 0, 5000, 'the write-stall error');
    expect(A.errors.map((e) => (e as { code: string }).code)).toEqual(['QT_WRITE_STALL']);
    await waitUntil(() => A.closed(), 5000, 'the connection to close');
  }, 20000);

  it('whenWritten() resolves at once with nothing queued, and once sent data is handed over', async () => {
    const { a, b } = await socketPair(kind);
    const A = watch(a);
    await A.conn.whenWritten();
    // The first frame of a burst is handed over at once; the second (under the 64 KiB a
    // burst gathers before it is handed over) waits in the socket.
    A.conn.send({ pattern: 'p', data: 1 }, 'cbor');
    A.conn.send({ pattern: 'p', data: Buffer.alloc(32 * 1024) }, 'cbor');
    expect(a.bytesToWrite()).toBeGreaterThan(0);
    await A.conn.whenWritten();
    expect(a.bytesToWrite()).toBe(0);
    const B = watch(b);
    await waitUntil(() => B.packets.length === 2, 5000, 'the packets');
  });

  it('whenWritten() callers within one burst share one promise, resolved once the whole burst is handed over', async () => {
    const { a, b } = await socketPair(kind);
    const A = watch(a);
    A.conn.send({ pattern: 'e', data: 1 }, 'json');
    const first = A.conn.whenWritten();
    A.conn.send({ pattern: 'e', data: Buffer.alloc(256 * 1024) }, 'cbor');
    const second = A.conn.whenWritten();
    expect(second).toBe(first);
    await first;
    expect(A.conn.writtenBytes()).toBe(A.conn.sentBytes());
    expect(a.bytesToWrite()).toBe(0);
    // The next run is a new burst with a waiter of its own.
    await new Promise<void>((resolve) => setImmediate(resolve));
    A.conn.send({ pattern: 'e', data: 3 }, 'json');
    const third = A.conn.whenWritten();
    expect(third).not.toBe(first);
    await third;
    expect(A.conn.writtenBytes()).toBe(A.conn.sentBytes());
    const B = watch(b);
    await waitUntil(() => B.packets.length === 3, 5000, 'the packets');
  });

  it('whenWritten() rejects when the connection is aborted before the data is written', async () => {
    const { a, b } = await socketPair(kind);
    stopReading(b);
    const A = watch(a);
    flood(A, 16);
    const written = A.conn.whenWritten();
    A.conn.abort();
    await expect(written).rejects.toMatchObject({ code: 'QT_CONNECTION_CLOSED' });
    expect(A.closed()).toBe(true);
    await expect(A.conn.whenWritten()).rejects.toMatchObject({ code: 'QT_CONNECTION_CLOSED' });
    expect(A.conn.send({ pattern: 'p' }, 'json')).toBe(false);
  });

  it('whenWritten() rejects when the peer goes away before the data is written', async () => {
    const { a, b } = await socketPair(kind);
    stopReading(b);
    const A = watch(a);
    flood(A, 16);
    const written = A.conn.whenWritten();
    b.abort();
    await expect(written).rejects.toMatchObject({ code: 'QT_CONNECTION_CLOSED' });
    await waitUntil(() => A.closed(), 5000, 'A closed');
  });
});

describe('QtConnection: a very long incompleteFrameTimeout', () => {
  it('2^31 ms is either rejected as an option or honoured (not turned into a 1 ms timer)', async () => {
    let options: QtTransportOptions | null = { incompleteFrameTimeout: 2 ** 31 };
    try {
      resolveQtOptions(options, 'server');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidOptionError);
      options = null;
    }
    if (options === null) return;
    const { a, b } = await socketPair('tcp');
    const B = watch(b, options);
    a.write(Buffer.concat([frameHeader(10), Buffer.from('{')]));
    await sleep(300);
    expect(B.errors).toEqual([]);
    expect(B.closed()).toBe(false);
  });
});

describe.each(['tcp', 'local'] as const)('QtConnection at its work limit, over %s', (kind) => {
  /**
   * A connection whose owner starts one unit of work per packet other than a ping, as a
   * server runs a handler per request, with room for `limit` at once.
   */
  function busy(socket: QtStreamSocket, limit: number) {
    const packets: unknown[] = [];
    const errors: QtTransportError[] = [];
    const conn: QtConnection = new QtConnection(
      socket,
      { ...resolveQtOptions({}, 'server'), maxActiveWork: limit },
      {
        onPacket: (value) => {
          packets.push(value);
          if ((value as { ping?: unknown }).ping === undefined) conn.beginWork();
        },
        onProtocolError: (error) => errors.push(error),
        onClosed: () => undefined,
      },
    );
    res.add(() => conn.abort());
    conn.start();
    return { conn, packets, errors };
  }

  it('delivers the pings behind the limit at once; the other packets wait, then come in order', async () => {
    const { a, b } = await socketPair(kind);
    const A = busy(a, 4);
    const sent: unknown[] = [];
    for (let seq = 0; seq < 10; seq++) sent.push({ id: seq, pattern: 'work' });
    sent.splice(7, 0, { ping: 1 });
    sent.push({ ping: 2 });
    b.write(Buffer.concat(sent.map((p, i) => frame(p, i % 2 === 0 ? 'json' : 'cbor'))));
    await waitUntil(() => A.packets.length === 6, 5000, '4 requests and the 2 pings');
    expect(A.packets).toEqual([
      { id: 0, pattern: 'work' },
      { id: 1, pattern: 'work' },
      { id: 2, pattern: 'work' },
      { id: 3, pattern: 'work' },
      { ping: 1 },
      { ping: 2 },
    ]);
    // Below half of the limit, the waiting packets come, in order, and no ping twice.
    A.conn.endWork();
    A.conn.endWork();
    A.conn.endWork();
    await waitUntil(() => A.packets.length === 9, 5000, 'three more requests');
    expect(A.packets.slice(6)).toEqual([
      { id: 4, pattern: 'work' },
      { id: 5, pattern: 'work' },
      { id: 6, pattern: 'work' },
    ]);
    for (let i = 0; i < 4; i++) A.conn.endWork();
    await waitUntil(() => A.packets.length === 12, 5000, 'the rest');
    expect(A.packets.slice(9)).toEqual([
      { id: 7, pattern: 'work' },
      { id: 8, pattern: 'work' },
      { id: 9, pattern: 'work' },
    ]);
    expect(A.errors).toEqual([]);
  });

  it('a ping arriving later, while the limit holds, is delivered too', async () => {
    const { a, b } = await socketPair(kind);
    const A = busy(a, 2);
    b.write(Buffer.concat([frame({ id: 1, pattern: 'w' }), frame({ id: 2, pattern: 'w' })]));
    b.write(frame({ id: 3, pattern: 'w' }));
    await waitUntil(() => A.packets.length === 2, 5000, 'two requests');
    b.write(frame({ ping: 9 }));
    await waitUntil(() => A.packets.length === 3, 5000, 'the ping');
    expect(A.packets[2]).toEqual({ ping: 9 });
  });

  it('reads ahead at most 64 KiB: a ping behind a larger frame waits for its turn', async () => {
    const { a, b } = await socketPair(kind);
    const A = busy(a, 1);
    b.write(frame({ id: 1, pattern: 'w' }));
    b.write(frame({ ping: 0 }));
    b.write(frame({ id: 2, pattern: 'big', data: 'x'.repeat(100 * 1024) }));
    b.write(frame({ ping: 1 }));
    // The ping before the large frame passes the limit; the one behind it does not.
    await waitUntil(() => A.packets.length === 2, 5000, 'the request and the first ping');
    expect(A.packets[1]).toEqual({ ping: 0 });
    await sleep(100);
    expect(A.packets).toHaveLength(2);
    // Its turn: the large request is taken (and holds the limit again); the ping behind it
    // is then read ahead and answered.
    A.conn.endWork();
    await waitUntil(() => A.packets.length === 4, 5000, 'the large request and the ping');
    expect((A.packets[2] as { id: number }).id).toBe(2);
    expect(A.packets[3]).toEqual({ ping: 1 });
    expect(A.errors).toEqual([]);
  });

  it('a bad frame header read ahead closes the connection at once', async () => {
    const { a, b } = await socketPair(kind);
    const A = busy(a, 1);
    b.write(Buffer.concat([frame({ id: 1, pattern: 'w' }), frameHeader(0)]));
    await waitUntil(() => A.errors.length === 1, 5000, 'the error');
    expect(A.errors[0].code).toBe('QT_EMPTY_FRAME');
    expect(A.conn.isClosed()).toBe(true);
  });
});
