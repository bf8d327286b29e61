/**
 * QtConnection with a server-wide MemoryBudget, over real loopback QTcpSocket pairs: an
 * incoming frame that spans reads is reserved whole when its header arrives, and waits
 * (not read) while the budget has no room; a frame to send that does not fit is refused
 * (MemoryBudgetExceededError) unless essential; charges are given back as the kernel takes
 * the bytes and when the connection ends; the budget drops the connection holding the most.
 * And idleMs(), what ServerQt reads to pick a connection to close at maxConnections.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import { QHostAddress, QTcpServer, QTcpSocket } from '../../../lib/qtnetwork/index.js';
import {
  MemoryBudgetExceededError,
  QtConnection,
  encodePayload,
  frameHeader,
  resolveQtOptions,
  type CodecName,
  type QtStreamSocket,
  type QtTransportError,
  type QtTransportOptions,
} from '../../../lib/transport/index.js';
import { MemoryBudget, type BudgetHolder } from '../../../lib/transport/wire/memory-budget.js';
import { Resources } from '../../helpers/resources.js';
import { waitUntil } from '../../helpers/signals.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const res = new Resources();
afterEach(() => res.dispose());

async function socketPair(): Promise<{ a: QtStreamSocket; b: QtStreamSocket }> {
  const server = res.server(new QTcpServer());
  expect(await server.listen(new QHostAddress('127.0.0.1'), 0)).toBe(true);
  const a = res.socket(new QTcpSocket());
  a.connectToHost('127.0.0.1', server.serverPort());
  expect(await a.waitForConnected(5000)).toBe(true);
  if (!server.hasPendingConnections()) await server.waitForNewConnection(5000);
  const b = res.socket(server.nextPendingConnection()!);
  return { a, b };
}

interface Watched {
  conn: QtConnection;
  packets: Array<{ value: unknown; codec: CodecName }>;
  errors: QtTransportError[];
  closed(): boolean;
}

function watch(
  socket: QtStreamSocket,
  budget: MemoryBudget | null,
  options: QtTransportOptions = {},
): Watched {
  const packets: Watched['packets'] = [];
  const errors: QtTransportError[] = [];
  let closed = false;
  const limits = { ...resolveQtOptions(options, 'server'), memoryBudget: budget };
  const conn = new QtConnection(socket, limits, {
    onPacket: (value, codec) => packets.push({ value, codec }),
    onProtocolError: (error) => errors.push(error),
    onClosed: () => {
      closed = true;
    },
  });
  res.add(() => conn.abort());
  conn.start();
  return { conn, packets, errors, closed: () => closed };
}

function frame(value: unknown, codec: CodecName = 'json'): Buffer {
  const payload = encodePayload(codec, value);
  return Buffer.concat([frameHeader(payload.length), payload]);
}

/** Another connection's share of the budget, held by the test. */
const other: BudgetHolder = { shed: () => undefined };

describe('QtConnection with a memory budget', () => {
  it('a frame that spans reads is reserved whole at its header; without room it is not read (its bytes stay in the kernel) until the budget has room, then it is delivered', async () => {
    const budget = new MemoryBudget(8 * MiB, { graceMs: 60000 });
    const { a, b } = await socketPair();
    const B = watch(b, budget);
    expect(budget.tryCharge(other, 6 * MiB)).toBe(true);
    const big = frame({ pattern: 'big', data: 'y'.repeat(2 * MiB) });
    a.write(big);
    await waitUntil(() => budget.waiting() === 1, 5000, 'the frame waits for budget');
    // Reading stopped: the socket holds at most its bounded read buffer meanwhile.
    expect(b.bytesAvailable()).toBeLessThanOrEqual(64 * KiB);
    expect(B.packets).toEqual([]);
    budget.release(other, 6 * MiB);
    await waitUntil(() => B.packets.length === 1, 5000, 'the frame delivered');
    expect((B.packets[0]!.value as { data: string }).data).toHaveLength(2 * MiB);
    // Delivered: its reservation is given back.
    expect(budget.used()).toBe(0);
    expect(B.errors).toEqual([]);
  });

  it('waiting is not held against the peer, but once granted its frame must go on arriving: a peer that sends nothing more is dropped by the stall timer (QT_INCOMPLETE_FRAME_TIMEOUT) and its reservation given back', async () => {
    const budget = new MemoryBudget(8 * MiB, { graceMs: 60000 });
    const { a, b } = await socketPair();
    const B = watch(b, budget, { incompleteFrameTimeout: 300 });
    budget.charge(other, 8 * MiB);
    const big = frame({ pattern: 'big', data: 'y'.repeat(2 * MiB) });
    a.write(big.subarray(0, 1000));
    await waitUntil(() => budget.waiting() === 1, 5000, 'the frame waits for budget');
    const grantedAt = Date.now();
    budget.release(other, 8 * MiB);
    expect(budget.heldBy(other)).toBe(0);
    await waitUntil(() => B.closed(), 5000, 'the granted peer dropped');
    expect(Date.now() - grantedAt).toBeGreaterThanOrEqual(290);
    expect(B.errors.map((e) => e.code)).toEqual(['QT_INCOMPLETE_FRAME_TIMEOUT']);
    expect(budget.used()).toBe(0);
  });

  it('a frame that arrives whole in one read needs no reservation, even with the budget full', async () => {
    const budget = new MemoryBudget(1 * MiB, { graceMs: 60000 });
    const { a, b } = await socketPair();
    const B = watch(b, budget);
    budget.charge(other, 1 * MiB);
    a.write(frame({ pattern: 'small', data: [1, 2, 3] }));
    await waitUntil(() => B.packets.length === 1, 5000, 'the small frame delivered');
    expect(budget.waiting()).toBe(0);
  });

  it('send(): a frame that does not fit is refused with MemoryBudgetExceededError (action "refused"), nothing written; an essential one goes out beyond the budget; charges are given back once the kernel has the bytes', async () => {
    const budget = new MemoryBudget(2 * MiB, { graceMs: 60000 });
    const { a, b } = await socketPair();
    const A = watch(a, budget);
    const B = watch(b, null);
    budget.charge(other, 2 * MiB);
    let caught: unknown = null;
    try {
      A.conn.send({ pattern: 'p', data: 'z'.repeat(100 * KiB) }, 'json');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MemoryBudgetExceededError);
    const err = caught as MemoryBudgetExceededError;
    expect(err.code).toBe('QT_MEMORY_BUDGET_EXCEEDED');
    expect(err.action).toBe('refused');
    expect(err.message).toContain('maxBufferedBytes 2097152');
    expect(a.bytesToWrite()).toBe(0);
    expect(A.conn.send({ id: 1, err: 'no room', isDisposed: true }, 'json', true)).toBe(true);
    expect(budget.used()).toBeGreaterThan(2 * MiB);
    await waitUntil(() => B.packets.length === 1, 5000, 'the essential frame arrived');
    await waitUntil(() => budget.used() === 2 * MiB, 5000, 'its charge given back');
    expect(A.closed()).toBe(false);
  });

  it('a connection that ends gives back everything: its waiting frame and what was queued for its peer', async () => {
    const budget = new MemoryBudget(8 * MiB, { graceMs: 60000 });
    const { a, b } = await socketPair();
    b.setReadBufferSize(1024);
    const A = watch(a, budget);
    // 3 MiB: below the 4 MiB at which the connection would stop reading its peer.
    for (let i = 0; i < 30; i++) {
      A.conn.send({ pattern: 'q', data: 'q'.repeat(100 * KiB) }, 'json');
    }
    expect(budget.used()).toBeGreaterThan(30 * 100 * KiB);
    // A frame from the other side that waits for room.
    budget.charge(other, 8 * MiB);
    b.write(frame({ pattern: 'late', data: 'l'.repeat(MiB) }));
    await waitUntil(() => budget.waiting() === 1, 5000, 'the frame waits');
    A.conn.abort();
    expect(A.closed()).toBe(true);
    expect(budget.waiting()).toBe(0);
    expect(budget.used()).toBe(8 * MiB);
  });

  it('when the budget stays exhausted, the connection holding the most is dropped with MemoryBudgetExceededError (action "dropped") and gives its share to the waiting frame', async () => {
    const budget = new MemoryBudget(8 * MiB, { graceMs: 100 });
    const p1 = await socketPair();
    const p2 = await socketPair();
    const holder = watch(p1.b, budget);
    const waiter = watch(p2.b, budget);
    // Almost all of a 6 MiB frame: reserved, never completed.
    const six = frame({ pattern: 'six', data: 's'.repeat(6 * MiB) });
    p1.a.write(six.subarray(0, six.length - 10));
    await waitUntil(() => budget.used() >= 6 * MiB, 5000, '6 MiB reserved');
    const two = frame({ pattern: 'two', data: 't'.repeat(2 * MiB) });
    p2.a.write(two);
    await waitUntil(() => holder.closed(), 5000, 'the largest holder dropped');
    expect(holder.errors).toHaveLength(1);
    const err = holder.errors[0] as MemoryBudgetExceededError;
    expect(err).toBeInstanceOf(MemoryBudgetExceededError);
    expect(err.action).toBe('dropped');
    expect(err.bytes).toBeGreaterThanOrEqual(6 * MiB);
    await waitUntil(() => waiter.packets.length === 1, 5000, 'the waiting frame delivered');
    expect(waiter.errors).toEqual([]);
  });
});

describe('QtConnection.idleMs', () => {
  it('is -1 while a frame is half received, while work runs, while bytes wait for the peer; otherwise the ms since the last activity', async () => {
    const { a, b } = await socketPair();
    const B = watch(b, null);
    expect(B.conn.idleMs()).toBeGreaterThanOrEqual(0);
    const half = frame({ pattern: 'half', data: 1 });
    a.write(half.subarray(0, 6));
    await waitUntil(() => B.conn.isMidFrame(), 5000, 'half a frame received');
    expect(B.conn.idleMs()).toBe(-1);
    a.write(half.subarray(6));
    await waitUntil(() => B.packets.length === 1, 5000, 'the frame delivered');
    const now = Date.now();
    expect(B.conn.idleMs(now)).toBeGreaterThanOrEqual(0);
    expect(B.conn.idleMs(now + 5000)).toBeGreaterThanOrEqual(5000);
    B.conn.beginWork();
    expect(B.conn.idleMs()).toBe(-1);
    B.conn.endWork();
    expect(B.conn.idleMs()).toBeGreaterThanOrEqual(0);
    B.conn.send({ id: 1, response: 'r' }, 'json');
    expect(B.conn.idleMs()).toBe(-1);
    await waitUntil(() => B.conn.idleMs() >= 0, 5000, 'the reply handed to the kernel');
    B.conn.abort();
    expect(B.conn.idleMs()).toBe(-1);
  });
});
