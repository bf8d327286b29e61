/**
 * Floods and hostile peers against servers in their own processes (loopback TCP), with the
 * server process's descriptors counted from /proc/<pid>/fd:
 *
 * - the Qt layer's documented flood bound: a QTcpServer that does not take its connections
 *   holds at most maxPendingConnections + listenBacklogSize of them and closes the rest;
 * - a Nest microservice on ServerQt, which takes every pending connection at once, so that
 *   bound does not apply to it: its descriptors follow the peers' open connections, and
 *   return to where they were when the peers go; ClientQt clients are served throughout;
 * - slow-loris peers: the stall timer (incompleteFrameTimeout) is reset by every byte, so a
 *   peer trickling one byte per second is dropped by the frame timer (frameTimeout, extended
 *   by minFrameRate so that a slow but honest sender of a large frame is not);
 * - maxConnections: the peers served at once are bounded; more wait in the Qt server's
 *   bounded queues and are served when a place frees; idleTimeout closes idle peers;
 * - peers that never read, and peers that declare a 4 GiB frame.
 *
 * Figures are printed as `[reliability] <test>: {...}` lines.
 */
import { execFileSync } from 'node:child_process';

import { firstValueFrom } from 'rxjs';

import { ClientQt } from '../../lib/index.js';
import { nodeWithTsArgs, startChild, type ChildRun } from '../helpers/child-process.js';
import { CHILD_START_MS } from '../helpers/time-budget.js';
import {
  cborDecode,
  cborEncode,
  frame,
  header,
  json,
  pollUntil,
  rawConnect,
  sleep,
  startServer,
  waitEvent,
  within,
  type RawPeer,
  type ServerApp,
} from '../e2e/helpers.js';

import {
  FdSampler,
  RELIABILITY_FIXTURES,
  boundedOutcome,
  bump,
  countFds,
  errorLabel,
  figures,
  probe,
  rawAttempt,
  rssKiB,
  type RawAttempt,
} from './reliability-helpers.js';

const MiB = 1024 * 1024;
const MAX_PENDING = 16;
const BACKLOG = 64;
const BURSTS = 10;
const BURST_SIZE = 500;
/** Descriptors a process may open or close on its own meanwhile (timers, stdio, epoll). */
const SLACK = 6;
const STALL_MS = 2000;
const FRAME_MS = 5000;
const MAX_SEND_BUFFER = 8 * MiB;

interface ServerStats {
  protocolErrors: Array<{ code: string; message: string }>;
  calls: Record<string, number>;
  connections: number;
  disconnects: number;
}

async function serverStats(server: ServerApp): Promise<ServerStats> {
  server.command('stats');
  return (await waitEvent(server.run, 'stats')) as unknown as ServerStats;
}

/** Polls the descriptor count of `pid` until it is at most `limit`; returns the last reading. */
async function fdsDownTo(pid: number, limit: number, ms = 10000): Promise<number> {
  return pollUntil(
    async () => countFds(pid),
    (n) => n <= limit,
    ms,
    `descriptors of ${pid} down to ${limit}`,
  );
}

/** Waits until `attempt` has settled, or marks it hung after `ms`. */
async function settleOrHang(attempt: RawAttempt, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    attempt.settled.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
  return settled;
}

/**
 * Loops of ClientQt requests ('sum' of random numbers, `concurrency` at a time per client)
 * until `stop()`; every request is bounded by a deadline and its answer checked.
 */
function clientLoad(clients: ClientQt[], concurrency: number) {
  const load = startClientLoad(clients, concurrency);
  runningLoads.add(load);
  return load;
}

/** Loads still running: stopped after each test, even a failed one. */
const runningLoads = new Set<{ stop(): Promise<void> }>();

function startClientLoad(clients: ClientQt[], concurrency: number) {
  const counts = { sent: 0, correct: 0, wrong: 0, hung: 0, errors: {} as Record<string, number> };
  let stopped = false;
  const loops: Array<Promise<void>> = [];
  for (const client of clients) {
    for (let k = 0; k < concurrency; k++) {
      loops.push(
        (async () => {
          while (!stopped) {
            const data = Array.from({ length: 5 }, () => Math.floor(Math.random() * 1000));
            const expected = data.reduce((a, b) => a + b, 0);
            counts.sent++;
            const result = await boundedOutcome(client.send<number>('sum', data), 15000);
            if (result.kind === 'ok') {
              if (result.value === expected) counts.correct++;
              else counts.wrong++;
            } else if (result.kind === 'hung') {
              counts.hung++;
            } else {
              bump(counts.errors, errorLabel(result.error));
              await sleep(10);
            }
          }
        })(),
      );
    }
  }
  return {
    counts,
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

describe('floods: the Qt layer’s documented bound (a QTcpServer that never takes its connections)', () => {
  let run: ChildRun | null = null;
  const attempts: RawAttempt[] = [];

  afterAll(async () => {
    for (const a of attempts.splice(0)) a.socket.destroy();
    await run?.stop();
  });

  it(`${BURSTS * BURST_SIZE} connection attempts in ${BURSTS} bursts of ${BURST_SIZE}, maxPendingConnections ${MAX_PENDING}, listenBacklogSize ${BACKLOG}: the process never holds more than ${MAX_PENDING} + ${BACKLOG} of them; exactly that many stay open; the port closes the others cleanly (FIN), and those the kernel's listen queue dropped are reset at their first byte; none hangs`, async () => {
    run = startChild(
      process.execPath,
      nodeWithTsArgs(
        `${RELIABILITY_FIXTURES}/accept-only-server.ts`,
        '--max-pending',
        String(MAX_PENDING),
        '--backlog',
        String(BACKLOG),
      ),
    );
    const ready = await waitEvent(run, 'ready', CHILD_START_MS);
    const port = Number(ready.port);
    const pid = Number(ready.pid);
    await sleep(200);
    const baseline = countFds(pid);
    const sampler = new FdSampler(pid, 2);
    const started = Date.now();
    let connectHung = 0;
    for (let b = 0; b < BURSTS; b++) {
      const burst = Array.from({ length: BURST_SIZE }, () =>
        rawAttempt({ host: '127.0.0.1', port }),
      );
      attempts.push(...burst);
      const settled = await Promise.all(burst.map((a) => settleOrHang(a, 15000)));
      connectHung += settled.filter((s) => !s).length;
      sampler.sample();
    }
    // The port closes a refused connection right after accepting it: let the last FINs arrive.
    await sleep(500);
    const closedByPort = attempts.filter((a) => a.closed);
    // A connection the kernel's listen queue dropped (SYN cookies) looks connected to its
    // client and nothing ever closes it, as with Qt; its first byte is reset (or, accepted
    // late through its cookie, refused by the port), after retransmissions when the queue is
    // busy. A connection the port holds reads nothing and stays open.
    const stillOpen = attempts.filter((a) => !a.closed);
    // In small groups: a synchronised wave of hundreds of first bytes would overflow the
    // listen queue again, and each retransmission wave gets only its 64 places.
    for (let i = 0; i < stillOpen.length; i += 32) {
      for (const a of stillOpen.slice(i, i + 32)) a.socket.write('x');
      await sleep(20);
    }
    await pollUntil(
      async () => stillOpen.filter((a) => !a.closed).length,
      (n) => n <= MAX_PENDING + BACKLOG,
      15000,
      'the connections dropped by the kernel to be reset',
    ).catch(() => undefined);
    // Anything else that was going to close.
    await sleep(300);
    sampler.sample();
    sampler.stop();
    // The server's side, from the kernel: its established connections on the port.
    const serverSide = execFileSync(
      'ss',
      ['-Htn', 'state', 'established', `( sport = :${port} )`],
      {
        encoding: 'utf8',
      },
    )
      .split('\n')
      .filter((l) => l.trim() !== '').length;
    const held = stillOpen.filter((a) => !a.closed);
    const resetAtFirstByte = stillOpen.filter((a) => a.closed);
    const portClosesWithFin = closedByPort.filter((a) => a.ended && a.errorCode === null);
    run.proc.stdin!.write('stats\n');
    const stats = await waitEvent(run, 'stats');
    figures('qt-layer flood', {
      attempts: attempts.length,
      connectHung,
      closedByPortWithFin: portClosesWithFin.length,
      closedByPort: closedByPort.length,
      droppedByKernelListenQueue: resetAtFirstByte.length,
      droppedErrors: [...new Set(resetAtFirstByte.map((a) => a.errorCode))],
      heldOpen: held.length,
      serverSideEstablished: serverSide,
      baselineFds: baseline,
      maxFds: sampler.max(),
      bound: baseline + MAX_PENDING + BACKLOG,
      fdSamples: sampler.count(),
      newConnectionSignals: stats.newConnection,
      ms: Date.now() - started,
    });
    expect(connectHung).toBe(0);
    expect(sampler.max()).toBeLessThanOrEqual(baseline + MAX_PENDING + BACKLOG + SLACK);
    expect(held).toHaveLength(MAX_PENDING + BACKLOG);
    expect(serverSide).toBe(MAX_PENDING + BACKLOG);
    expect(closedByPort.length + resetAtFirstByte.length + held.length).toBe(attempts.length);
    // The port's refusals are clean: the client sees the server's FIN ('end', then 'close').
    expect(portClosesWithFin).toHaveLength(closedByPort.length);
    expect(closedByPort.length).toBeGreaterThan(0);
    expect(stats.newConnection).toBe(MAX_PENDING);
    expect(stats.hasPendingConnections).toBe(true);
  }, 60000);
});

describe('floods against a Nest microservice on ServerQt (TCP)', () => {
  let server: ServerApp;
  let pid: number;
  const clients: ClientQt[] = [];
  const raws: RawPeer[] = [];
  const attempts: RawAttempt[] = [];

  const raw = async (): Promise<RawPeer> => {
    const peer = await rawConnect(server);
    raws.push(peer);
    return peer;
  };
  const newClient = async (): Promise<ClientQt> => {
    const client = new ClientQt({ ...server.target, reconnect: false, requestTimeout: 10000 });
    clients.push(client);
    await client.connect();
    return client;
  };
  /** Descriptors with the bystander clients connected and no peer: measured first. */
  let baseline = 0;

  beforeAll(async () => {
    server = await startServer({
      transport: 'tcp',
      options: {
        maxPendingConnections: MAX_PENDING,
        listenBacklogSize: BACKLOG,
        incompleteFrameTimeout: STALL_MS,
        frameTimeout: FRAME_MS,
        maxSendBufferSize: MAX_SEND_BUFFER,
      },
    });
    pid = server.run.proc.pid!;
    for (let i = 0; i < 4; i++) await newClient();
    await sleep(200);
    baseline = countFds(pid);
  });

  afterEach(async () => {
    for (const load of runningLoads) await load.stop();
    runningLoads.clear();
    for (const r of raws.splice(0)) r.destroy();
    for (const a of attempts.splice(0)) a.socket.destroy();
    // Every test leaves the server's descriptors where they were.
    await fdsDownTo(pid, baseline + 2);
  });

  afterAll(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server?.stop();
  });

  it(`${BURSTS * BURST_SIZE} connection attempts in ${BURSTS} bursts of ${BURST_SIZE} (maxPendingConnections ${MAX_PENDING}, listenBacklogSize ${BACKLOG}), each then sending a ping: every attempt is answered or reset, none hangs; the server holds one descriptor per open peer and no more, and is back to its baseline after each burst; 4 ClientQt clients are answered correctly throughout; the server still answers afterwards`, async () => {
    const before = await serverStats(server);
    const load = clientLoad(clients, 1);
    const sampler = new FdSampler(pid, 2);
    const started = Date.now();
    const perBurst: Array<{ maxFds: number; afterFds: number; ms: number }> = [];
    const outcomes = { connectHung: 0, closedBeforePing: 0, answered: 0, reset: 0, hung: 0 };
    const resetErrors: Record<string, number> = {};
    let notBackWithin10s = 0;
    for (let b = 0; b < BURSTS; b++) {
      const t0 = Date.now();
      const burst = Array.from({ length: BURST_SIZE }, () =>
        rawAttempt({ host: '127.0.0.1', port: server.port }),
      );
      attempts.push(...burst);
      const settled = await Promise.all(burst.map((a) => settleOrHang(a, 15000)));
      outcomes.connectHung += settled.filter((s) => !s).length;
      outcomes.closedBeforePing += burst.filter((a) => a.closed).length;
      // Pings in groups of 32 (see the Qt-layer test: a synchronised wave of first bytes
      // from connections the listen queue dropped would overflow it again).
      const pings: Array<Promise<'answered' | 'closed' | 'hung'>> = [];
      for (let i = 0; i < burst.length; i += 32) {
        burst.slice(i, i + 32).forEach((a, k) => {
          const ping = frame({ id: i + k, pattern: 'ping', data: null });
          pings.push(probe(a, ping, (r) => r.includes('"pong"'), 15000));
        });
        await sleep(5);
      }
      const results = await Promise.all(pings);
      const held = sampler.sample();
      burst.forEach((a, i) => {
        if (results[i] === 'answered') outcomes.answered++;
        else if (results[i] === 'hung') outcomes.hung++;
        else {
          outcomes.reset++;
          bump(resetErrors, a.errorCode ?? (a.ended ? 'FIN' : 'close'));
        }
      });
      for (const a of burst) a.socket.destroy();
      attempts.length = 0;
      const after = await fdsDownTo(pid, baseline + 2).catch(() => {
        notBackWithin10s++;
        return countFds(pid);
      });
      perBurst.push({ maxFds: held, afterFds: after, ms: Date.now() - t0 });
    }
    sampler.stop();
    await load.stop();
    const stats = await serverStats(server);
    const afterwards = await firstValueFrom(clients[0]!.send<number>('sum', [40, 2]));
    const maxFds = sampler.max();
    figures('ServerQt flood', {
      attempts: BURSTS * BURST_SIZE,
      ...outcomes,
      resetErrors,
      connectionsAccepted: stats.connections - before.connections,
      baselineFds: baseline,
      maxFds,
      qtLayerBound: baseline + MAX_PENDING + BACKLOG,
      exceedsQtLayerBound: maxFds > baseline + MAX_PENDING + BACKLOG,
      perBurst,
      notBackWithin10s,
      clientRequests: load.counts,
      ms: Date.now() - started,
    });
    expect(outcomes.connectHung).toBe(0);
    expect(outcomes.hung).toBe(0);
    expect(outcomes.answered + outcomes.reset).toBe(BURSTS * BURST_SIZE);
    expect(outcomes.answered).toBeGreaterThan(0);
    // ServerQt closes none of them itself: it takes every connection it is handed.
    expect(outcomes.closedBeforePing).toBe(0);
    expect(stats.connections - before.connections).toBeGreaterThanOrEqual(outcomes.answered);
    // One descriptor per open peer connection at most, and none left behind.
    expect(maxFds).toBeLessThanOrEqual(baseline + BURST_SIZE + SLACK);
    expect(notBackWithin10s).toBe(0);
    expect(load.counts.wrong).toBe(0);
    expect(load.counts.hung).toBe(0);
    expect(load.counts.errors).toEqual({});
    expect(load.counts.correct).toBe(load.counts.sent);
    expect(load.counts.correct).toBeGreaterThan(0);
    expect(afterwards).toBe(42);
  }, 60000);

  it(`slow-loris, one byte per second (frameTimeout ${FRAME_MS} ms, incompleteFrameTimeout ${STALL_MS} ms, minFrameRate 64 KiB/s): none of 150 trickling peers is dropped by the stall timer, every one is dropped by the frame timer (QT_FRAME_TIMEOUT) and receives nothing — 75 trickling a small request, 75 a 1 MiB frame; a peer sending a 2 MiB request at about 256 KiB/s, longer than frameTimeout in total, is answered; a control peer that stops mid-frame is dropped (QT_INCOMPLETE_FRAME_TIMEOUT); a peer trickling a 4 GiB header (0xFFFFFFFE) is open until its 4th byte and then dropped at once (QT_FRAME_TOO_LARGE); a bystander client is answered every second`, async () => {
    const before = await serverStats(server);
    const small = await Promise.all(Array.from({ length: 75 }, () => raw()));
    const endless = await Promise.all(Array.from({ length: 75 }, () => raw()));
    const trickling = [...small, ...endless];
    const control = await raw();
    const huge = await raw();
    const steady = await raw();
    // Ids are per connection: every small peer may use the same one (a 22-byte frame).
    const request = frame(cborEncode({ id: 1, pattern: 'ping' }));
    const endlessHeader = header(MiB);
    const hugeHeader = header(0xfffffffe);
    const bigRequest = frame(cborEncode({ id: 7, pattern: 'ping', data: Buffer.alloc(2 * MiB) }));
    const sampler = new FdSampler(pid, 20);
    const started = Date.now();
    // The control peer sends a header and 3 bytes, then stops.
    control.socket.write(Buffer.concat([header(100), Buffer.from('{"i')]));
    // The steady peer: 64 KiB every 250 ms, about 8 s for the whole frame.
    const steadySending = (async () => {
      for (let at = 0; at < bigRequest.length && !steady.isClosed(); at += 64 * 1024) {
        steady.socket.write(bigRequest.subarray(at, at + 64 * 1024));
        await sleep(250);
      }
    })();
    let bystanderAnswers = 0;
    let ticks = 0;
    const dropTimes: number[] = [];
    const hugeOpenBeforeByte: boolean[] = [];
    const open = new Set(trickling);
    for (let tick = 0; open.size > 0 && tick < 20; tick++) {
      ticks++;
      const byte = (b: Buffer): Buffer => b.subarray(tick % b.length, (tick % b.length) + 1);
      for (const peer of small) if (!peer.isClosed()) peer.socket.write(byte(request));
      for (const peer of endless) {
        if (!peer.isClosed()) peer.socket.write(tick < 4 ? byte(endlessHeader) : Buffer.from(' '));
      }
      if (tick < 4) {
        hugeOpenBeforeByte.push(!huge.isClosed());
        huge.socket.write(byte(hugeHeader));
      }
      const answer = await firstValueFrom(clients[1]!.send<number>('sum', [tick, 1]));
      if (answer === tick + 1) bystanderAnswers++;
      await sleep(1000);
      for (const peer of [...open]) {
        if (peer.isClosed()) {
          open.delete(peer);
          dropTimes.push(Date.now() - started);
        }
      }
    }
    await steadySending;
    const steadyReply = await steady.waitFrames(1, 10000).then(
      (f) => cborDecode(f[0]!) as Record<string, unknown>,
      () => null,
    );
    sampler.stop();
    const stats = await serverStats(server);
    const newErrors = stats.protocolErrors.slice(before.protocolErrors.length);
    const codes: Record<string, number> = {};
    for (const e of newErrors) bump(codes, e.code);
    const droppedBefore = (ms: number): number => dropTimes.filter((t) => t < ms).length;
    figures('slow-loris', {
      peers: trickling.length,
      byteIntervalMs: 1000,
      frameTimeoutMs: FRAME_MS,
      incompleteFrameTimeoutMs: STALL_MS,
      ticks,
      dropped: dropTimes.length,
      droppedBeforeFrameTimeout: droppedBefore(FRAME_MS),
      firstDropMs: Math.min(...dropTimes),
      lastDropMs: Math.max(...dropTimes),
      receivedByTrickling: trickling.reduce((n, p) => n + p.received(), 0),
      steadyAnswered: steadyReply?.response === 'pong',
      steadySendMs: 8 * 1000,
      controlDropped: control.isClosed(),
      hugeHeaderOpenBeforeBytes1to4: hugeOpenBeforeByte,
      hugeHeaderDropped: huge.isClosed(),
      protocolErrors: codes,
      baselineFds: baseline,
      maxFds: sampler.max(),
      bystanderAnswers,
    });
    // Every trickling peer was dropped, none before frameTimeout, none answered.
    expect(dropTimes).toHaveLength(trickling.length);
    expect(droppedBefore(FRAME_MS)).toBe(0);
    expect(trickling.reduce((n, p) => n + p.received(), 0)).toBe(0);
    expect(steadyReply).toMatchObject({ id: 7, response: 'pong' });
    expect(steady.isClosed()).toBe(false);
    expect(control.isClosed()).toBe(true);
    expect(hugeOpenBeforeByte).toEqual([true, true, true, true]);
    expect(huge.isClosed()).toBe(true);
    expect(huge.received()).toBe(0);
    expect(codes).toEqual({
      QT_FRAME_TIMEOUT: trickling.length,
      QT_FRAME_TOO_LARGE: 1,
      QT_INCOMPLETE_FRAME_TIMEOUT: 1,
    });
    expect(bystanderAnswers).toBe(ticks);
  }, 60000);

  it(`peers that never read are dropped with a logged reason (maxSendBufferSize ${MAX_SEND_BUFFER / MiB} MiB, incompleteFrameTimeout ${STALL_MS} ms): 6 that pipeline 24 requests for 1 MiB replies at once overflow (QT_SEND_BUFFER_OVERFLOW); then 4 that ask for one 1 MiB reply every 30 ms stall (QT_WRITE_STALL); a ClientQt is served`, async () => {
    const before = await serverStats(server);
    const stderrBefore = server.run.stderr().length;
    const rssBefore = rssKiB(pid);
    const burst = await Promise.all(Array.from({ length: 6 }, () => raw()));
    const paced = await Promise.all(Array.from({ length: 4 }, () => raw()));
    const sampler = new FdSampler(pid, 20);
    let maxRss = rssBefore;
    const rssTimer = setInterval(() => (maxRss = Math.max(maxRss, rssKiB(pid))), 50);
    rssTimer.unref();
    const started = Date.now();
    for (const peer of [...burst, ...paced]) peer.socket.pause();
    const droppedCount = async (): Promise<number> =>
      (await serverStats(server)).protocolErrors.length - before.protocolErrors.length;
    // First group: everything at once, far beyond maxSendBufferSize.
    for (const peer of burst) {
      const requests = Array.from({ length: 24 }, (_, i) =>
        frame({ id: i, pattern: 'big', data: MiB }),
      );
      peer.socket.write(Buffer.concat(requests));
    }
    await pollUntil(droppedCount, (n) => n >= burst.length, 20000, 'the burst group dropped').catch(
      () => undefined,
    );
    // Second group, once the server is idle again: one request at a time, so that the queue
    // for each peer passes the pause threshold (4 MiB) but stays under maxSendBufferSize.
    // The next ones go out once the server has run the handlers of those sent (or after half
    // a second, when it no longer reads from a peer): a server slowed down by a busy machine
    // must not read several requests of a peer at once and queue their replies together.
    const bigBefore = (await serverStats(server)).calls.big ?? 0;
    let pacedSent = 0;
    for (let i = 0; i < 100 && paced.some((p) => !p.isClosed()); i++) {
      for (const peer of paced) {
        if (!peer.isClosed()) {
          peer.socket.write(frame({ id: i, pattern: 'big', data: MiB }));
          pacedSent++;
        }
      }
      await sleep(30);
      await pollUntil(
        () => serverStats(server),
        (st) => (st.calls.big ?? 0) - bigBefore >= pacedSent,
        500,
      ).catch(() => undefined);
      if ((await droppedCount()) >= burst.length + paced.length) break;
    }
    const stats = await pollUntil(
      () => serverStats(server),
      (st) => st.protocolErrors.length - before.protocolErrors.length >= 10,
      20000,
      'all 10 non-reading peers dropped',
    ).catch(() => serverStats(server));
    const droppedMs = Date.now() - started;
    clearInterval(rssTimer);
    sampler.stop();
    const codes = stats.protocolErrors.slice(before.protocolErrors.length).map((e) => e.code);
    const count: Record<string, number> = {};
    for (const c of codes) bump(count, c);
    const logged = server.run.stderr().slice(stderrBefore);
    const loggedReasons = {
      QT_SEND_BUFFER_OVERFLOW: logged.split('(QT_SEND_BUFFER_OVERFLOW)').length - 1,
      QT_WRITE_STALL: logged.split('(QT_WRITE_STALL)').length - 1,
    };
    const bystander = await firstValueFrom(clients[2]!.send<number>('sum', [1, 2]));
    // The client side: a paused peer sees the close once it reads again.
    for (const peer of [...burst, ...paced]) peer.socket.resume();
    const closed = await Promise.all(
      [...burst, ...paced].map((p) =>
        within(p.closed, 10000, 'close').then(
          () => true,
          () => false,
        ),
      ),
    );
    figures('non-readers', {
      burstPeers: burst.length,
      pacedPeers: paced.length,
      pacedRequestsSent: pacedSent,
      codes: count,
      loggedReasons,
      droppedWithinMs: droppedMs,
      clientSawClose: closed.filter(Boolean).length,
      rssKiBBefore: rssBefore,
      rssKiBMax: maxRss,
      maxFds: sampler.max(),
      baselineFds: baseline,
    });
    expect(codes).toHaveLength(10);
    expect(codes.slice(0, 6)).toEqual(Array(6).fill('QT_SEND_BUFFER_OVERFLOW'));
    expect(codes.slice(6)).toEqual(Array(4).fill('QT_WRITE_STALL'));
    expect(loggedReasons).toEqual(count);
    expect(closed.every(Boolean)).toBe(true);
    expect(bystander).toBe(3);
  }, 60000);

  it('500 peers that declare a 4 GiB frame (250 × 0xFFFFFFFE, 250 × 0xFFFFFFFF), in bursts of 100, are each dropped at once with QT_FRAME_TOO_LARGE / QT_NULL_FRAME on the header alone, receive nothing, and cost no memory', async () => {
    const before = await serverStats(server);
    const rssBefore = rssKiB(pid);
    const started = Date.now();
    const peers: RawPeer[] = [];
    for (let b = 0; b < 5; b++) {
      const burst = await Promise.all(Array.from({ length: 100 }, () => raw()));
      burst.forEach((p, i) => p.socket.write(header(i % 2 === 0 ? 0xfffffffe : 0xffffffff)));
      peers.push(...burst);
      await Promise.all(burst.map((p) => within(p.closed, 5000, 'the peer to be dropped')));
    }
    const stats = await serverStats(server);
    const count: Record<string, number> = {};
    for (const e of stats.protocolErrors.slice(before.protocolErrors.length)) bump(count, e.code);
    const rssAfter = rssKiB(pid);
    figures('4 GiB headers', {
      peers: peers.length,
      codes: count,
      bytesReceivedByPeers: peers.reduce((n, p) => n + p.received(), 0),
      rssKiBBefore: rssBefore,
      rssKiBAfter: rssAfter,
      ms: Date.now() - started,
    });
    // Dropped on the header alone: the codes are the size checks, never the stall timer.
    expect(count).toEqual({ QT_FRAME_TOO_LARGE: 250, QT_NULL_FRAME: 250 });
    expect(peers.every((p) => p.received() === 0)).toBe(true);
    // Nothing of a 4 GiB frame was allocated (a generous margin for the heap's own growth).
    expect(rssAfter - rssBefore).toBeLessThan(64 * 1024);
    expect(await firstValueFrom(clients[3]!.send<number>('sum', [2, 2]))).toBe(4);
  }, 30000);
});

describe('maxConnections and idleTimeout on a Nest microservice on ServerQt (TCP)', () => {
  const CAP = 20;
  const CAP_PENDING = 4;
  const CAP_BACKLOG = 8;
  const IDLE_MS = 1500;
  let server: ServerApp | null = null;
  const raws: RawPeer[] = [];
  const clients: ClientQt[] = [];

  afterEach(async () => {
    for (const r of raws.splice(0)) r.destroy();
    for (const c of clients.splice(0)) await c.close();
    await server?.stop();
    server = null;
  });

  /** A raw peer that pings once and reports whether it was answered within `ms`. */
  const pingOnce = async (peer: RawPeer, id: number, ms: number): Promise<boolean> => {
    peer.socket.write(frame({ id, pattern: 'ping', data: null }));
    return peer.waitFrames(1, ms).then(
      (f) => json(f[0]!).response === 'pong',
      () => false,
    );
  };

  it(`maxConnections ${CAP} (maxPendingConnections ${CAP_PENDING}, listenBacklogSize ${CAP_BACKLOG}): ${CAP} peers are served, each then with a handler running; of 40 more, none is served while the first ones stay (a connection at work is never closed for a newcomer), the server's descriptors stay within ${CAP} + ${CAP_PENDING} + ${CAP_BACKLOG}, and those that do not fit are closed or refused; when 10 of the first go, 10 waiting peers are served; a ClientQt is served once the others leave`, async () => {
    server = await startServer({
      transport: 'tcp',
      options: {
        maxConnections: CAP,
        maxPendingConnections: CAP_PENDING,
        listenBacklogSize: CAP_BACKLOG,
      },
    });
    const pid = server.run.proc.pid!;
    await sleep(200);
    const baseline = countFds(pid);
    const first: RawPeer[] = [];
    for (let i = 0; i < CAP; i++) first.push(await rawConnect(server));
    raws.push(...first);
    const firstAnswered = await Promise.all(first.map((p, i) => pingOnce(p, i, 5000)));
    // Each keeps a handler running: an idle one would be closed for a newcomer after a second
    // (overload.spec.ts), and this test is about connections that are all at work.
    first.forEach((p, i) => p.socket.write(frame({ id: 1000 + i, pattern: 'slow', data: 60000 })));
    for (let i = 0; i < CAP; i++) await waitEvent(server.run, 'slow-start');
    // 40 more attempts: some wait (accepted by the kernel or the Qt layer), the rest are
    // refused by the Qt layer's bounded queue.
    const sampler = new FdSampler(pid, 20);
    const extra = Array.from({ length: 40 }, () =>
      rawAttempt({ host: '127.0.0.1', port: server!.port }),
    );
    await Promise.all(extra.map((a) => settleOrHang(a, 5000)));
    const waitingPings = extra.map((a, i) => {
      if (a.closed || a.errorCode) return Promise.resolve('closed' as const);
      // A ping, then a handler that keeps the connection at work once it is served.
      return probe(
        a,
        Buffer.concat([
          frame({ id: 100 + i, pattern: 'ping', data: null }),
          frame({ id: 200 + i, pattern: 'slow', data: 60000 }),
        ]),
        (r) => r.includes('"pong"'),
        8000,
      );
    });
    await sleep(1500);
    const answeredWhileFull = extra.filter((a) => a.received.length > 0).length;
    const statsFull = await serverStats(server);
    const fdsFull = sampler.max();
    // Ten of the first peers leave: as many waiting ones are served.
    for (const p of first.slice(0, 10)) p.destroy();
    const results = await Promise.all(waitingPings);
    sampler.stop();
    const statsAfter = await serverStats(server);
    const servedLater = results.filter((r) => r === 'answered').length;
    for (const a of extra) a.socket.destroy();
    for (const p of first) p.destroy();
    await fdsDownTo(pid, baseline + 2);
    const client = new ClientQt({ ...server.target, reconnect: false, requestTimeout: 5000 });
    clients.push(client);
    const answer = await firstValueFrom(client.send<number>('sum', [40, 2]));
    figures('maxConnections', {
      maxConnections: CAP,
      maxPendingConnections: CAP_PENDING,
      listenBacklogSize: CAP_BACKLOG,
      firstServed: firstAnswered.filter(Boolean).length,
      extraAttempts: extra.length,
      extraClosedOrRefused: results.filter((r) => r === 'closed').length,
      answeredWhileFull,
      servedAfterTenLeft: servedLater,
      stillWaitingAtEnd: results.filter((r) => r === 'hung').length,
      servedAtOnceWhileFull: statsFull.connections - statsFull.disconnects,
      baselineFds: baseline,
      maxFdsWhileFull: fdsFull,
      connectionsAccepted: statsAfter.connections,
    });
    expect(firstAnswered.every(Boolean)).toBe(true);
    expect(answeredWhileFull).toBe(0);
    expect(statsFull.connections - statsFull.disconnects).toBe(CAP);
    expect(fdsFull).toBeLessThanOrEqual(baseline + CAP + CAP_PENDING + CAP_BACKLOG + SLACK);
    expect(servedLater).toBe(10);
    // The others were refused, or still wait for a place (the server is full again).
    expect(results.filter((r) => r === 'hung').length).toBeLessThanOrEqual(
      CAP_PENDING + CAP_BACKLOG,
    );
    expect(statsAfter.connections - statsAfter.disconnects).toBeLessThanOrEqual(CAP);
    expect(answer).toBe(42);
  }, 60000);

  it(`idleTimeout ${IDLE_MS} ms: a peer that connects and sends nothing is closed (QT_IDLE_TIMEOUT); one that pings every 300 ms, and one whose handler runs for 3 s stay open`, async () => {
    server = await startServer({ transport: 'tcp', options: { idleTimeout: IDLE_MS } });
    const idle = await rawConnect(server);
    const chatty = await rawConnect(server);
    const busy = await rawConnect(server);
    raws.push(idle, chatty, busy);
    busy.socket.write(frame({ id: 1, pattern: 'slow', data: 3000 }));
    const started = Date.now();
    let idleClosedMs = -1;
    void idle.closed.then(() => (idleClosedMs = Date.now() - started));
    let pings = 0;
    while (Date.now() - started < 3500) {
      chatty.socket.write(frame({ id: ++pings, pattern: 'ping', data: null }));
      await sleep(300);
    }
    const busyReply = await busy.waitFrames(1, 5000).then(
      (f) => json(f[0]!),
      () => null,
    );
    await within(idle.closed, 5000, 'the idle peer to be closed');
    const stats = await serverStats(server);
    figures('idleTimeout', {
      idleTimeoutMs: IDLE_MS,
      idleClosed: idle.isClosed(),
      idleClosedAfterMs: idleClosedMs,
      chattyPings: pings,
      chattyAnswers: chatty.frames.length,
      chattyOpen: !chatty.isClosed(),
      busyAnswered: busyReply?.response,
      busyOpen: !busy.isClosed(),
      protocolErrors: stats.protocolErrors.map((e) => e.code),
    });
    expect(idle.isClosed()).toBe(true);
    expect(idle.received()).toBe(0);
    expect(chatty.isClosed()).toBe(false);
    expect(chatty.frames).toHaveLength(pings);
    expect(busyReply).toMatchObject({ id: 1, response: 'slow-done' });
    expect(busy.isClosed()).toBe(false);
    expect(stats.protocolErrors.map((e) => e.code)).toEqual(['QT_IDLE_TIMEOUT']);
  }, 30000);
});

describe('floods: memory held for a peer that does not read (a handler whose reply really occupies memory)', () => {
  let run: ChildRun | null = null;
  let peer: RawPeer | null = null;

  afterAll(async () => {
    peer?.destroy();
    await run?.stop();
  });

  it(`a non-reading peer that pipelines 1,000 requests for 1 MiB replies in one write (about 33 KB) is dropped (maxSendBufferSize ${MAX_SEND_BUFFER / MiB} MiB), and the server's memory does not grow with the number of requests: not every handler runs, and resident memory grows by less than 256 MiB (it grew by about 1 GiB, one reply per request, before the per-connection limit on handlers in flight)`, async () => {
    run = startChild(
      process.execPath,
      nodeWithTsArgs(
        `${RELIABILITY_FIXTURES}/blob-server.ts`,
        '--options',
        JSON.stringify({ maxSendBufferSize: MAX_SEND_BUFFER, incompleteFrameTimeout: STALL_MS }),
      ),
    );
    const ready = await waitEvent(run, 'ready', CHILD_START_MS);
    const pid = Number(ready.pid);
    const target: ServerApp = {
      transport: 'tcp',
      port: Number(ready.port),
    } as ServerApp;
    peer = await rawConnect(target);
    peer.socket.pause();
    await sleep(200);
    const rssBefore = rssKiB(pid);
    let maxRss = rssBefore;
    const rssTimer = setInterval(() => (maxRss = Math.max(maxRss, rssKiB(pid))), 10);
    rssTimer.unref();
    const requests = Buffer.concat(
      Array.from({ length: 1000 }, (_, i) =>
        frame(cborEncode({ id: i, pattern: 'blob', data: MiB })),
      ),
    );
    peer.socket.write(requests);
    for (let i = 0; i < 100; i++) {
      await sleep(50);
      run.proc.stdin!.write('stats\n');
      const polled = await waitEvent(run, 'stats');
      if ((polled.protocolErrors as string[]).length > 0) break;
    }
    // Let whatever the drop left running finish, while memory is still sampled.
    await sleep(500);
    clearInterval(rssTimer);
    run.proc.stdin!.write('stats\n');
    const stats = await waitEvent(run, 'stats');
    figures('non-reader memory', {
      requestBytes: requests.length,
      requests: 1000,
      replyBytes: MiB,
      handlerCalls: stats.blobCalls,
      protocolErrors: stats.protocolErrors,
      rssKiBBefore: rssBefore,
      rssKiBMax: maxRss,
      growthMiB: Math.round((maxRss - rssBefore) / 1024),
    });
    expect(stats.protocolErrors).toEqual(['QT_SEND_BUFFER_OVERFLOW']);
    expect(stats.blobCalls as number).toBeLessThan(1000);
    expect(maxRss - rssBefore).toBeLessThan(256 * 1024);
  }, 30000);
});
