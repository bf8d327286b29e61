/**
 * Overload against a Nest microservice on ServerQt in its own process (issue 15), at a
 * reduced size with the same ratios as the reported attacks:
 *
 * - memory: peers that each send a maxFrameSize header and almost all of the frame, then one
 *   byte a second (which satisfies the stall and frame clocks), and peers that never read
 *   while many streams send to them. The server-wide budget (maxBufferedBytes) holds the
 *   process's memory near the budget; the attackers are held back (not read) and dropped
 *   with QT_MEMORY_BUDGET_EXCEEDED; a well-behaved client is answered throughout; nothing
 *   of a dropped peer stays referenced;
 * - the connection cap: silent connections holding every place no longer lock new clients
 *   out: the longest-idle one is closed for a newcomer (QT_IDLE_AT_CAPACITY), never one
 *   with a handler running.
 *
 * Memory is read from /proc (resident set) and from the server's process.memoryUsage()
 * after a forced collection (what is still referenced). Figures are printed as
 * `[reliability] <test>: {...}` lines.
 */
import * as net from 'node:net';

import { afterEach, describe, expect, it } from '@jest/globals';
import { firstValueFrom } from 'rxjs';

import { ClientQt } from '../../lib/index.js';
import { nodeWithTsArgs, startChild, type ChildRun } from '../helpers/child-process.js';
import {
  cborEncode,
  frame,
  json,
  pollUntil,
  rawConnect,
  waitEvent,
  within,
  type RawPeer,
  type ServerApp,
} from '../e2e/helpers.js';

import { RELIABILITY_FIXTURES, bump, figures, rssKiB } from './reliability-helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface BudgetStats {
  protocolErrors: Array<{ code: string; message: string }>;
  connections: number;
  disconnects: number;
  calls: Record<string, number>;
  streams: { started: number; ended: number };
  memory: NodeJS.MemoryUsage;
}

/** What each test started: stopped after it, even when it failed. */
const sockets: net.Socket[] = [];
const clients: ClientQt[] = [];
const timers: NodeJS.Timeout[] = [];
/** Bystander loops still running (a failed test leaves them so). */
const loads = new Set<() => Promise<unknown>>();

/** The budget-server fixture in its own process, and what a test needs of it. */
class BudgetServer {
  private constructor(
    readonly run: ChildRun,
    readonly pid: number,
    readonly port: number,
  ) {}

  static async start(options: Record<string, unknown>): Promise<BudgetServer> {
    const run = startChild(process.execPath, [
      '--expose-gc',
      ...nodeWithTsArgs(
        `${RELIABILITY_FIXTURES}/budget-server.ts`,
        '--options',
        JSON.stringify(options),
      ),
    ]);
    try {
      const ready = await waitEvent(run, 'ready', 30000);
      return new BudgetServer(run, Number(ready.pid), Number(ready.port));
    } catch (err) {
      await run.stop();
      throw err;
    }
  }

  /** What rawConnect needs to reach it. */
  get target(): ServerApp {
    return { transport: 'tcp', port: this.port } as ServerApp;
  }

  /** A ClientQt for it: no reconnect, a request timeout so that nothing hangs. */
  client(): ClientQt {
    const client = new ClientQt({
      transport: 'tcp',
      host: '127.0.0.1',
      port: this.port,
      reconnect: false,
      requestTimeout: 10000,
    });
    clients.push(client);
    return client;
  }

  async stats(): Promise<BudgetStats> {
    this.run.proc.stdin!.write('stats\n');
    return (await waitEvent(this.run, 'stats')) as unknown as BudgetStats;
  }

  /** Stats after two forced collections: memory.arrayBuffers is then what is referenced. */
  async collected(): Promise<BudgetStats> {
    this.run.proc.stdin!.write('gc\n');
    return (await waitEvent(this.run, 'stats')) as unknown as BudgetStats;
  }

  /** Codes of the connections dropped since `before` protocol errors had been seen. */
  async codesSince(before: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const e of (await this.stats()).protocolErrors.slice(before)) bump(counts, e.code);
    return counts;
  }
}

/** Samples a process's resident memory and keeps the largest reading (KiB). */
class RssSampler {
  private peak: number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.peak = rssKiB(pid);
    this.timer = setInterval(() => (this.peak = Math.max(this.peak, rssKiB(this.pid))), 20);
    this.timer.unref();
  }

  stop(): number {
    clearInterval(this.timer);
    this.peak = Math.max(this.peak, rssKiB(this.pid));
    return this.peak;
  }
}

/**
 * A ClientQt asking 'sum' one request after another until stopped: the well-behaved client
 * whose answers must keep coming while the server is attacked.
 */
function bystander(client: ClientQt) {
  const result = { sent: 0, correct: 0, failed: [] as string[], slowestMs: 0 };
  let stopped = false;
  const stop = async () => {
    stopped = true;
    await loop;
    loads.delete(stop);
    return result;
  };
  loads.add(stop);
  const loop = (async () => {
    while (!stopped) {
      const data = [result.sent, 1, 2];
      result.sent++;
      const started = Date.now();
      try {
        const answer = await firstValueFrom(client.send<number>('sum', data));
        if (answer === result.sent + 2) result.correct++;
        else result.failed.push(`wrong answer ${answer}`);
      } catch (err) {
        result.failed.push(String(err));
      }
      result.slowestMs = Math.max(result.slowestMs, Date.now() - started);
      // One request every 50 ms or so: a steady client, not a flood of its own.
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return { result, stop };
}

let server: BudgetServer | null = null;

afterEach(async () => {
  for (const stop of [...loads]) await stop();
  for (const t of timers.splice(0)) clearInterval(t);
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of clients.splice(0)) await c.close();
  await server?.run.stop();
  server = null;
});

/** A raw attacker connection; errors are expected (the server drops it). */
async function rawSocket(port: number): Promise<net.Socket> {
  const socket = net.createConnection({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => reject(new Error('closed before connecting')));
  });
  return socket;
}

describe('overload: the server-wide memory budget (maxBufferedBytes)', () => {
  const FRAME = 4 * MiB;
  const BUDGET = 32 * MiB;
  const ATTACKERS = 40;
  /** Shed holders the test waits for: at the 1 s pressure period, about 8 s of attack. */
  const DROPS = 8;
  /**
   * What the budget does not count, per connection: the read that carried a frame's header
   * (up to 64 KiB, Node's read size), the socket's read buffer while reading is stopped
   * (64 KiB) and the part of one read beyond it (up to 64 KiB).
   */
  const UNCOUNTED_PER_CONNECTION = 3 * 64 * KiB;
  /**
   * Resident memory beyond the budget: the uncounted reads of every connection; the frame
   * of each dropped peer, which stays allocated until V8's next full collection (none may
   * run during the test); and the growth of the JS heap while the bystander runs.
   */
  const RSS_MARGIN = (ATTACKERS + 1) * UNCOUNTED_PER_CONNECTION + DROPS * FRAME + 8 * MiB;

  it(`${ATTACKERS} peers each sending a ${FRAME / MiB} MiB header and all but 200 bytes of the frame, then one byte a second (maxFrameSize ${FRAME / MiB} MiB, maxBufferedBytes ${BUDGET / MiB} MiB): resident memory grows by less than the budget + ${Math.round(RSS_MARGIN / MiB)} MiB (about ${(ATTACKERS * FRAME) / MiB} MiB without the budget), what stays referenced is within the budget and the uncounted reads, the attackers are not read beyond the budget and are dropped with QT_MEMORY_BUDGET_EXCEEDED and nothing else, and a ClientQt is answered throughout`, async () => {
    server = await BudgetServer.start({
      maxFrameSize: FRAME,
      maxBufferedBytes: BUDGET,
      incompleteFrameTimeout: 3000,
    });
    const client = server.client();
    await client.connect();
    // An honest frame of the largest size is served (and its code paths are warm).
    const honest = 'h'.repeat(FRAME - 200);
    expect(await firstValueFrom(client.send<number>('size', honest))).toBe(honest.length);
    const warm = bystander(client);
    await pollUntil(
      async () => warm.result.correct,
      (n) => n >= 10,
      10000,
      'the bystander warmed up',
    );
    await warm.stop();
    const baseline = await server.collected();
    const rssBefore = rssKiB(server.pid);
    const sampler = new RssSampler(server.pid);
    const load = bystander(client);

    // Each attacker's frame: a valid 'size' request, so only its incompleteness is hostile.
    const body = Buffer.from(
      JSON.stringify({ id: 1, pattern: 'size', data: 'x'.repeat(FRAME - 64) }).padEnd(FRAME),
    );
    const attack = frame(body);
    const sentUpTo: number[] = [];
    const attackers: net.Socket[] = [];
    for (let i = 0; i < ATTACKERS; i++) {
      const socket = await rawSocket(server.port);
      socket.write(attack.subarray(0, attack.length - 200));
      sentUpTo.push(attack.length - 200);
      attackers.push(socket);
    }
    const received = attackers.map(() => 0);
    attackers.forEach((s, i) => s.on('data', (d: Buffer) => (received[i] += d.length)));
    // One byte a second from each, while the kernel has taken what came before it.
    timers.push(
      setInterval(() => {
        attackers.forEach((s, i) => {
          if (s.destroyed || s.writableLength > 0 || sentUpTo[i]! >= attack.length - 1) return;
          s.write(attack.subarray(sentUpTo[i]!, sentUpTo[i]! + 1));
          sentUpTo[i]!++;
        });
      }, 1000),
    );
    const started = Date.now();
    await pollUntil(
      () => server!.stats(),
      (st) => st.protocolErrors.length >= DROPS,
      40000,
      `${DROPS} attackers dropped`,
    );
    const droppedMs = Date.now() - started;
    const rssPeak = sampler.stop();
    const during = await server.collected();
    const bystanderResult = await load.stop();
    const codes = await server.codesSince(0);
    const closed = attackers.filter((s) => s.destroyed || s.readableEnded).length;
    const stats = await server.stats();
    figures('memory budget, trickling peers', {
      attackers: ATTACKERS,
      frameBytes: FRAME,
      budgetMiB: BUDGET / MiB,
      droppedWithinMs: droppedMs,
      codes,
      attackersClosedSoFar: closed,
      rssKiBBefore: rssBefore,
      rssKiBPeak: rssPeak,
      rssGrowthMiB: +((rssPeak - rssBefore) / 1024).toFixed(1),
      referencedBuffersMiBBefore: +(baseline.memory.arrayBuffers / MiB).toFixed(1),
      referencedBuffersMiBDuring: +(during.memory.arrayBuffers / MiB).toFixed(1),
      bystander: bystanderResult,
      sizeCalls: stats.calls.size,
    });
    expect((rssPeak - rssBefore) * KiB).toBeLessThan(BUDGET + RSS_MARGIN);
    expect(during.memory.arrayBuffers - baseline.memory.arrayBuffers).toBeLessThanOrEqual(
      BUDGET + (ATTACKERS + 1) * UNCOUNTED_PER_CONNECTION,
    );
    expect(Object.keys(codes)).toEqual(['QT_MEMORY_BUDGET_EXCEEDED']);
    expect(codes.QT_MEMORY_BUDGET_EXCEEDED).toBeGreaterThanOrEqual(DROPS);
    for (const e of stats.protocolErrors) expect(e.message).toContain('maxBufferedBytes');
    // No attacker's frame was ever complete: none reached the handler, none was answered.
    expect(stats.calls.size).toBe(1);
    expect(received.every((n) => n === 0)).toBe(true);
    expect(bystanderResult.failed).toEqual([]);
    expect(bystanderResult.correct).toBe(bystanderResult.sent);
    expect(bystanderResult.correct).toBeGreaterThan(DROPS);
  }, 60000);

  const PEERS = 6;
  const STREAMS = 50;
  const VALUE = 64 * KiB;
  const STREAM_BUDGET = 64 * MiB;
  /**
   * Resident memory beyond the budget: each stream's last value, held for a tick before it
   * is sent (so that a completion can be merged into it), and each stream's refused reply
   * until it is collected, both outside the budget; and the growth of the JS heap.
   */
  const STREAM_MARGIN = 2 * PEERS * STREAMS * VALUE + 8 * MiB;

  it(`peers that never read while many streams send to them (${PEERS} peers × ${STREAMS} streams of ${VALUE / KiB} KiB CBOR Buffers every 10 ms, maxBufferedBytes ${STREAM_BUDGET / MiB} MiB): resident memory grows by less than the budget + ${Math.round(STREAM_MARGIN / MiB)} MiB, their replies are refused (each stream ends), the peer holding the most is dropped with QT_MEMORY_BUDGET_EXCEEDED, and once they are gone nothing of theirs stays referenced, and a ClientQt is answered throughout`, async () => {
    const budget = STREAM_BUDGET;
    server = await BudgetServer.start({
      maxFrameSize: 8 * MiB,
      maxBufferedBytes: budget,
      // Far longer than the budget's 1 s pressure period, so that the peers are dropped by
      // the budget whatever the machine's load, not by the write-stall rule racing it.
      incompleteFrameTimeout: 20000,
    });
    const client = server.client();
    await client.connect();
    const warm = bystander(client);
    await pollUntil(
      async () => warm.result.correct,
      (n) => n >= 10,
      10000,
      'warm-up',
    );
    await warm.stop();
    const baseline = await server.collected();
    const rssBefore = rssKiB(server.pid);
    const sampler = new RssSampler(server.pid);
    const load = bystander(client);
    const peers: RawPeer[] = [];
    for (let p = 0; p < PEERS; p++) {
      const peer = await rawConnect(server.target);
      sockets.push(peer.socket);
      peer.socket.pause();
      const requests = Array.from({ length: STREAMS }, (_, id) =>
        frame(cborEncode({ id, pattern: 'blobs', data: { bytes: VALUE, everyMs: 10 } })),
      );
      peer.socket.write(Buffer.concat(requests));
      peers.push(peer);
    }
    // The budget refuses their replies (each stream ends with an error reply) and drops the
    // peer holding the most (the paused ones would stall later: QT_WRITE_STALL). One left with less
    // than the pause threshold waiting is not dropped (it costs at most that, within the
    // budget): the peers then leave, and what matters is that nothing of theirs stays.
    await pollUntil(
      () => server!.stats(),
      (st) => st.protocolErrors.length >= 1 && st.streams.ended === PEERS * STREAMS,
      20000,
      'every stream ended and the budget dropped a peer',
    );
    const rssPeak = sampler.stop();
    const bystanderResult = await load.stop();
    for (const peer of peers) peer.destroy();
    const stats = await pollUntil(
      () => server!.stats(),
      (st) => st.disconnects === PEERS,
      10000,
      'every peer gone',
    );
    const after = await server.collected();
    const codes: Record<string, number> = {};
    for (const e of stats.protocolErrors) bump(codes, e.code);
    figures('memory budget, non-reading peers with streams', {
      peers: peers.length,
      streams: stats.streams,
      budgetMiB: budget / MiB,
      codes,
      rssKiBBefore: rssBefore,
      rssKiBPeak: rssPeak,
      rssGrowthMiB: +((rssPeak - rssBefore) / 1024).toFixed(1),
      referencedBuffersMiBBefore: +(baseline.memory.arrayBuffers / MiB).toFixed(1),
      referencedBuffersMiBAfter: +(after.memory.arrayBuffers / MiB).toFixed(1),
      heapUsedMiBBefore: +(baseline.memory.heapUsed / MiB).toFixed(1),
      heapUsedMiBAfter: +(after.memory.heapUsed / MiB).toFixed(1),
      bystander: bystanderResult,
    });
    expect((rssPeak - rssBefore) * KiB).toBeLessThan(budget + STREAM_MARGIN);
    for (const code of Object.keys(codes)) {
      expect(['QT_MEMORY_BUDGET_EXCEEDED', 'QT_WRITE_STALL']).toContain(code);
    }
    expect(stats.protocolErrors[0]!.code).toBe('QT_MEMORY_BUDGET_EXCEEDED');
    expect(stats.streams).toEqual({ started: PEERS * STREAMS, ended: PEERS * STREAMS });
    // Nothing of the dropped peers is referenced: their buffers went with them.
    expect(after.memory.arrayBuffers - baseline.memory.arrayBuffers).toBeLessThan(2 * MiB);
    expect(after.memory.heapUsed - baseline.memory.heapUsed).toBeLessThan(8 * MiB);
    expect(bystanderResult.failed).toEqual([]);
    expect(bystanderResult.correct).toBe(bystanderResult.sent);
  }, 60000);
});

describe('overload: maxConnections reached by silent connections', () => {
  const CAP = 20;

  it(`maxConnections ${CAP}, held by one connection with a handler running (connected first) and ${CAP - 1} silent ones: each of 3 new ClientQt clients is admitted and answered, and for each the longest-idle silent connection is closed (QT_IDLE_AT_CAPACITY), in the order they connected; the busy connection is never closed and gets its answer`, async () => {
    server = await BudgetServer.start({ maxConnections: CAP });
    const busy = await rawConnect(server.target);
    sockets.push(busy.socket);
    busy.socket.write(frame({ id: 1, pattern: 'slow', data: { tag: 'busy', ms: 15000 } }));
    await waitEvent(server.run, 'slow-start');
    const silent: RawPeer[] = [];
    for (let i = 0; i < CAP - 1; i++) {
      const peer = await rawConnect(server.target);
      sockets.push(peer.socket);
      silent.push(peer);
    }
    await pollUntil(
      () => server!.stats(),
      (st) => st.connections === CAP,
      10000,
      `${CAP} connections served`,
    );
    const answers: number[] = [];
    const admittedMs: number[] = [];
    for (let k = 0; k < 3; k++) {
      const client = server.client();
      const started = Date.now();
      answers.push(await firstValueFrom(client.send<number>('sum', [k, 40, 2])));
      admittedMs.push(Date.now() - started);
      // Its place came from the longest-idle silent connection.
      await within(silent[k]!.closed, 5000, `silent connection ${k} closed`);
    }
    const stats = await server.stats();
    const codes = stats.protocolErrors.map((e) => e.code);
    figures('maxConnections, silent connections', {
      maxConnections: CAP,
      admittedAndAnsweredMs: admittedMs,
      silentClosed: silent.map((p) => p.isClosed()),
      busyOpen: !busy.isClosed(),
      codes,
      connectionsServedAtEnd: stats.connections - stats.disconnects,
    });
    expect(answers).toEqual([42, 43, 44]);
    expect(silent.map((p) => p.isClosed())).toEqual([
      true,
      true,
      true,
      ...Array<boolean>(CAP - 4).fill(false),
    ]);
    expect(silent.slice(0, 3).every((p) => p.received() === 0)).toBe(true);
    expect(codes).toEqual(Array(3).fill('QT_IDLE_AT_CAPACITY'));
    expect(stats.protocolErrors[0]!.message).toContain(`maxConnections (${CAP})`);
    expect(stats.connections - stats.disconnects).toBe(CAP);
    expect(busy.isClosed()).toBe(false);
    const reply = await busy.waitFrames(1, 20000).then((f) => json(f[0]!));
    expect(reply).toMatchObject({ id: 1, response: 'slow-done' });
  }, 60000);
});
