/**
 * QAbstractSocket's read buffer limit (setReadBufferSize) against a peer that sends 64 MiB:
 * the limit bounds what the socket buffers, TCP flow control holds the sender back while
 * the application does not read, and reading (or raising the limit) resumes the transfer
 * with every byte intact. Also Qt's tst_QTcpSocket::increaseReadBufferSize.
 *
 * The sender is a plain `node:net` server, so what is measured on its side (bytes whose
 * write completed, i.e. that the kernel accepted) does not depend on the code under test.
 */
import * as net from 'node:net';

import { QTcpSocket, SocketState } from '../../../lib/qtnetwork/index.js';
import { Scope } from '../../helpers/qt-scope.js';
import { nextEmission, sleep, waitUntil } from '../../helpers/signals.js';
import { connectedPair } from '../../helpers/tcp-pair.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const LIMIT = 64 * KiB;
const TOTAL = 64 * MiB;
const CHUNK = 64 * KiB;

/** byte i of the stream is i % 251 (251 is prime, so chunk boundaries never line up with it). */
const PATTERN = Buffer.alloc(251 + CHUNK);
for (let i = 0; i < PATTERN.length; i++) PATTERN[i] = i % 251;

function patternAt(offset: number, length: number): Buffer {
  const start = offset % 251;
  return PATTERN.subarray(start, start + length);
}

/** Checks `data` against the pattern from stream offset `offset`; returns the first bad offset or -1. */
function firstMismatch(data: Buffer, offset: number): number {
  for (let pos = 0; pos < data.length; pos += CHUNK) {
    const piece = data.subarray(pos, Math.min(data.length, pos + CHUNK));
    if (!piece.equals(patternAt(offset + pos, piece.length))) {
      for (let i = 0; i < piece.length; i++) {
        if (piece[i] !== (offset + pos + i) % 251) return offset + pos + i;
      }
    }
  }
  return -1;
}

/**
 * A `node:net` server that, once `start()` is called, writes `total` pattern bytes to the
 * first connection, honouring backpressure ('drain'), then ends it. `flushed` counts the
 * bytes whose write callback ran (handed to the kernel).
 */
class PatternSender {
  readonly server = net.createServer();
  socket: net.Socket | null = null;
  sent = 0;
  flushed = 0;
  private started = false;
  private connectedResolve: (() => void) | null = null;
  readonly connected = new Promise<void>((r) => (this.connectedResolve = r));

  constructor(readonly total: number) {
    this.server.on('connection', (s) => {
      s.on('error', () => undefined);
      this.socket = s;
      this.connectedResolve?.();
      if (this.started) this.pump();
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  start(): void {
    this.started = true;
    if (this.socket) this.pump();
  }

  /** True when the sender has bytes Node could not hand to the kernel (waiting for 'drain'). */
  heldBack(): boolean {
    return this.socket !== null && this.socket.writableNeedDrain && this.sent < this.total;
  }

  close(): void {
    this.socket?.destroy();
    this.server.close();
  }

  private pump(): void {
    const s = this.socket!;
    while (this.sent < this.total && !s.destroyed) {
      const length = Math.min(CHUNK, this.total - this.sent);
      const chunk = patternAt(this.sent, length);
      this.sent += length;
      const ok = s.write(chunk, (err) => {
        if (!err) this.flushed += length;
      });
      if (!ok) {
        s.once('drain', () => this.pump());
        return;
      }
    }
    if (this.sent >= this.total) s.end();
  }
}

/** Resolves when `value()` has not changed for `quietMs` (polled), bounded by `ms`. */
async function waitForStall(value: () => number, quietMs: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let last = value();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new Error(`no stall within ${ms} ms (value ${value()})`);
    await sleep(20);
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}

let scope: Scope;
let senders: PatternSender[];

beforeEach(() => {
  scope = new Scope();
  senders = [];
});

afterEach(() => {
  scope.dispose();
  for (const s of senders) s.close();
});

/** A PatternSender and a QTcpSocket connected to it with readBufferSize LIMIT. */
async function setup(total = TOTAL): Promise<{ sender: PatternSender; client: QTcpSocket }> {
  const sender = new PatternSender(total);
  senders.push(sender);
  const port = await sender.listen();
  const client = scope.socket();
  client.setReadBufferSize(LIMIT);
  client.connectToHost('127.0.0.1', port);
  expect(await client.waitForConnected(5000)).toBe(true);
  await sender.connected;
  return { sender, client };
}

describe('read buffer limit with a peer that sends 64 MiB', () => {
  it('bytesAvailable() never exceeds readBufferSize at any readyRead, with an application that reads slowly', async () => {
    const { sender, client } = await setup();
    let received = 0;
    let maxAvailable = 0;
    let readyReads = 0;
    let mismatch = -1;
    client.readyRead.connect(() => {
      readyReads++;
      maxAvailable = Math.max(maxAvailable, client.bytesAvailable());
      // Read less than arrives, so an unbounded buffer would grow.
      const data = client.read(16 * KiB);
      if (mismatch < 0) mismatch = firstMismatch(data, received);
      received += data.length;
    });
    sender.start();
    await waitUntil(
      () =>
        received + client.bytesAvailable() >= TOTAL ||
        client.state() !== SocketState.ConnectedState,
      18000,
      'the whole transfer',
    );
    const rest = client.readAll();
    if (mismatch < 0) mismatch = firstMismatch(rest, received);
    received += rest.length;

    expect(maxAvailable).toBeLessThanOrEqual(LIMIT);
    expect(maxAvailable).toBe(LIMIT); // the limit was reached, so it is what bounded the buffer
    expect(client.bytesAvailable()).toBe(0);
    expect(received).toBe(TOTAL);
    expect(mismatch).toBe(-1);
    expect(readyReads).toBeGreaterThan(TOTAL / LIMIT);
  }, 20000);

  it('while the application does not read, TCP flow control holds the sender back and memory stays bounded; reading resumes and all 64 MiB arrive intact', async () => {
    const { sender, client } = await setup();
    let maxAvailable = 0;
    let readyReads = 0;
    const watch = client.readyRead.connect(() => {
      readyReads++;
      maxAvailable = Math.max(maxAvailable, client.bytesAvailable());
    });

    const before = process.memoryUsage();
    sender.start();

    // (b) The application does not read: the buffer fills to the limit, then the sender stops.
    await waitUntil(() => client.bytesAvailable() >= LIMIT, 10000, 'a full read buffer');
    await waitForStall(() => sender.flushed, 500, 10000);
    const after = process.memoryUsage();

    expect(client.bytesAvailable()).toBe(LIMIT);
    expect(maxAvailable).toBeLessThanOrEqual(LIMIT);
    expect(readyReads).toBeGreaterThan(0);
    // The sender is blocked: Node holds bytes the kernel would not take, and far less than the
    // whole stream has left it (what did leave sits in the two kernels' socket buffers).
    expect(sender.heldBack()).toBe(true);
    expect(sender.flushed).toBeLessThan(TOTAL / 2);
    expect(sender.sent).toBeLessThan(TOTAL);
    // The client process did not take the stream into memory.
    const growth = {
      arrayBuffers: after.arrayBuffers - before.arrayBuffers,
      rss: after.rss - before.rss,
    };
    expect(growth.arrayBuffers).toBeLessThan(32 * MiB);
    expect(growth.rss).toBeLessThan(32 * MiB);

    // Still stalled a little later: nothing more is taken while the application does not read.
    const flushedAtStall = sender.flushed;
    await sleep(200);
    expect(sender.flushed).toBe(flushedAtStall);
    expect(client.bytesAvailable()).toBe(LIMIT);

    // (c) The application reads: reading resumes and every byte arrives, in order.
    watch();
    let received = 0;
    let mismatch = -1;
    const consume = (): void => {
      maxAvailable = Math.max(maxAvailable, client.bytesAvailable());
      const data = client.readAll();
      if (mismatch < 0) mismatch = firstMismatch(data, received);
      received += data.length;
    };
    client.readyRead.connect(consume);
    consume();
    await waitUntil(
      () =>
        received + client.bytesAvailable() >= TOTAL ||
        client.state() !== SocketState.ConnectedState,
      18000,
      'the rest of the transfer',
    );
    consume();
    expect(received).toBe(TOTAL);
    expect(mismatch).toBe(-1);
    expect(maxAvailable).toBeLessThanOrEqual(LIMIT);
    expect(sender.flushed).toBe(TOTAL);
  }, 30000);

  it('raising the limit with setReadBufferSize(0) resumes reading without the application reading', async () => {
    const { sender, client } = await setup();
    sender.start();
    await waitUntil(() => client.bytesAvailable() >= LIMIT, 10000, 'a full read buffer');
    await waitForStall(() => sender.flushed, 500, 10000);
    expect(client.bytesAvailable()).toBe(LIMIT);
    expect(sender.heldBack()).toBe(true);

    const ready = nextEmission(client.readyRead);
    client.setReadBufferSize(0);
    expect(client.readBufferSize()).toBe(0);
    await ready;
    await waitUntil(() => client.bytesAvailable() >= TOTAL, 18000, 'all 64 MiB buffered');
    expect(client.bytesAvailable()).toBe(TOTAL);
    const all = client.readAll();
    expect(all.length).toBe(TOTAL);
    expect(firstMismatch(all, 0)).toBe(-1);
  }, 30000);
});

describe('readBufferSize with small transfers', () => {
  it('increaseReadBufferSize: readyRead again each time the limit grows', async () => {
    const { client: active, peer: passive } = await connectedPair(scope);
    const data = Buffer.alloc(512, 'a');

    // Qt sets the limit after writing but before its event loop runs; here the client reads
    // as soon as data arrives, so the limit is set first.
    active.setReadBufferSize(256);
    let ready = nextEmission(active.readyRead);
    passive.write(data);
    expect(await passive.waitForBytesWritten(5000)).toBe(true);
    await ready;
    await waitUntil(() => active.bytesAvailable() >= 256, 5000, '256 bytes');
    expect(active.bytesAvailable()).toBe(active.readBufferSize());

    // increase the buffer size and iterate again:
    ready = nextEmission(active.readyRead);
    active.setReadBufferSize(384);
    await ready;
    expect(active.bytesAvailable()).toBe(active.readBufferSize());

    // once more, but now it should read everything there was to read
    ready = nextEmission(active.readyRead);
    active.setReadBufferSize(1024);
    await ready;
    expect(active.bytesAvailable()).toBe(data.length);

    // drain it and compare
    expect(active.readAll()).toEqual(data);

    // now one more test by setting the buffer size to unlimited:
    active.setReadBufferSize(256);
    ready = nextEmission(active.readyRead);
    passive.write(data);
    expect(await passive.waitForBytesWritten(5000)).toBe(true);
    await ready;
    await waitUntil(() => active.bytesAvailable() >= 256, 5000, '256 bytes');
    expect(active.bytesAvailable()).toBe(active.readBufferSize());
    ready = nextEmission(active.readyRead);
    active.setReadBufferSize(0);
    await ready;
    expect(active.bytesAvailable()).toBe(data.length);
    expect(active.readAll()).toEqual(data);
  });

  it('shrinking the limit below what is buffered keeps the data; reading resumes only below the new limit', async () => {
    // Recorded from Qt 5.15: limit 1024 and 512 buffered; shrink to 256: still 512; 512 more
    // arrive at the socket but none is read (no readyRead); readAll; then readyRead with 256.
    const { client, peer } = await connectedPair(scope);
    client.setReadBufferSize(1024);
    const readySizes: number[] = [];
    client.readyRead.connect(() => readySizes.push(client.bytesAvailable()));

    peer.write(Buffer.alloc(512, 'a'));
    await waitUntil(() => client.bytesAvailable() >= 512, 5000, '512 bytes');
    expect(client.bytesAvailable()).toBe(512);

    client.setReadBufferSize(256);
    expect(client.readBufferSize()).toBe(256);
    expect(client.bytesAvailable()).toBe(512);

    const countBefore = readySizes.length;
    peer.write(Buffer.alloc(512, 'b'));
    expect(await peer.waitForBytesWritten(5000)).toBe(true);
    await sleep(200); // the bytes are at the client's socket; give it every chance to read them
    expect(client.bytesAvailable()).toBe(512);
    expect(readySizes.length).toBe(countBefore);

    const ready = nextEmission(client.readyRead);
    expect(client.readAll()).toEqual(Buffer.alloc(512, 'a'));
    await ready;
    expect(client.bytesAvailable()).toBe(256);
    expect(client.peek(256)).toEqual(Buffer.alloc(256, 'b'));

    const ready2 = nextEmission(client.readyRead);
    client.setReadBufferSize(0);
    await ready2;
    expect(client.bytesAvailable()).toBe(512);
    expect(client.readAll()).toEqual(Buffer.alloc(512, 'b'));
  });

  it('a limit set before connecting applies from the first byte', async () => {
    const sender = new PatternSender(4 * LIMIT);
    senders.push(sender);
    const port = await sender.listen();
    const client = scope.socket();
    client.setReadBufferSize(1000);
    const sizes: number[] = [];
    client.readyRead.connect(() => sizes.push(client.bytesAvailable()));
    client.connectToHost('127.0.0.1', port);
    expect(await client.waitForConnected(5000)).toBe(true);
    sender.start();
    await waitUntil(() => client.bytesAvailable() >= 1000, 5000, '1000 bytes');
    await sleep(100);
    expect(client.bytesAvailable()).toBe(1000);
    expect(Math.max(...sizes)).toBe(1000);
    expect(firstMismatch(client.readAll(), 0)).toBe(-1);
  });

  it('data held back by the limit is still readable after the peer closes', async () => {
    const { client, peer } = await connectedPair(scope);
    client.setReadBufferSize(100);
    const payload = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    peer.write(payload);
    expect(await peer.waitForBytesWritten(5000)).toBe(true);
    await waitUntil(() => client.bytesAvailable() >= 100, 5000, '100 bytes');
    const disconnected = nextEmission(client.disconnected);
    peer.disconnectFromHost();
    // The client must read to see the peer's close.
    const chunks: Buffer[] = [client.readAll()];
    const stop = client.readyRead.connect(() => chunks.push(client.readAll()));
    await disconnected;
    stop();
    chunks.push(client.readAll());
    expect(Buffer.concat(chunks)).toEqual(payload);
  });
});
