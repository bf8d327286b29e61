/**
 * Faults under load, against a Nest microservice on ServerQt in its own process, over TCP
 * and over a local socket:
 *
 * - the server is killed (SIGKILL) in the middle of a load and started again on the same
 *   port or name: ClientQt clients (requestTimeout, reconnect on) come back by themselves,
 *   and every request issued either succeeds with the right answer or fails with a clear
 *   error (QtConnectionError carrying a Qt error name, or RequestTimeoutError) — none hangs;
 * - a graceful app.close() with 150 slow requests in flight and more arriving around it
 *   (about 200 in all): every request whose handler started gets its reply; every other one
 *   fails with a connection error.
 *
 * Figures are printed as `[reliability] <test>: {...}` lines.
 */
import { firstValueFrom } from 'rxjs';

import { ClientQt, QtConnectionError, RequestTimeoutError } from '../../lib/index.js';
import { LocalSocketError, SocketError } from '../../lib/qtnetwork/index.js';
import {
  TRANSPORTS,
  sleep,
  startServer,
  waitEvent,
  within,
  type ServerApp,
} from '../e2e/helpers.js';

import {
  boundedOutcome,
  bump,
  errorLabel,
  figures,
  readJsonLines,
  type Outcome,
} from './reliability-helpers.js';

/** Every Qt error name a QtConnectionError may carry (QAbstractSocket and QLocalSocket). */
const QT_ERROR_NAMES = new Set<string>([
  ...Object.keys(SocketError).filter((k) => Number.isNaN(Number(k))),
  ...Object.keys(LocalSocketError).filter((k) => Number.isNaN(Number(k))),
]);

/** True for the errors the transport promises: a Qt-named connection error or a timeout. */
function isClearError(error: unknown): boolean {
  if (error instanceof RequestTimeoutError) return true;
  return error instanceof QtConnectionError && QT_ERROR_NAMES.has(error.qtError);
}

describe.each(TRANSPORTS)('faults over %s', (transport) => {
  const servers: ServerApp[] = [];
  const clients: ClientQt[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const s of servers.splice(0)) await s.stop();
  });

  const REQUEST_TIMEOUT = 5000;
  /** A request with no outcome this long after it was issued counts as hung. */
  const DEADLINE = REQUEST_TIMEOUT + 5000;

  it(`kill -9 of the server under load (6 clients × 5 requests in flight, requestTimeout ${REQUEST_TIMEOUT} ms, reconnect on), then a restart on the same ${transport === 'tcp' ? 'port' : 'name'}: every request succeeds with the right sum or fails with a Qt-named QtConnectionError or a RequestTimeoutError; none hangs; every client reconnects by itself`, async () => {
    const first = await startServer({ transport });
    servers.push(first);
    for (let i = 0; i < 6; i++) {
      const client = new ClientQt({
        ...first.target,
        requestTimeout: REQUEST_TIMEOUT,
        reconnect: { retries: 100, initialDelay: 50, maxDelay: 500 },
      });
      clients.push(client);
      await client.connect();
    }
    const reconnects = { disconnects: 0, connects: 0 };
    for (const c of clients) {
      c.on('disconnect', () => reconnects.disconnects++);
      c.on('connect', () => reconnects.connects++);
    }

    type Phase = 'before' | 'down' | 'after';
    let phase: Phase = 'before';
    const counts: Record<Phase, Record<string, number>> = { before: {}, down: {}, after: {} };
    const durations: number[] = [];
    let stopped = false;
    const loops = clients.flatMap((client) =>
      Array.from({ length: 5 }, async () => {
        while (!stopped) {
          const issuedIn = phase;
          const data = Array.from({ length: 4 }, () => Math.floor(Math.random() * 100));
          const expected = data.reduce((a, b) => a + b, 0);
          const result: Outcome<number> = await boundedOutcome(
            client.send<number>('asyncSum', data),
            DEADLINE,
          );
          durations.push(result.ms);
          if (result.kind === 'ok') {
            bump(counts[issuedIn], result.value === expected ? 'ok' : 'wrong answer');
          } else if (result.kind === 'hung') {
            bump(counts[issuedIn], 'hung');
          } else {
            bump(
              counts[issuedIn],
              isClearError(result.error)
                ? errorLabel(result.error)
                : `unclear: ${errorLabel(result.error)}`,
            );
            // A failed request is retried after a pause, as an application would.
            await sleep(20);
          }
        }
      }),
    );

    let restartedMs: number | undefined;
    try {
      await sleep(1500);
      const killedAt = Date.now();
      phase = 'down';
      await first.run.stop('SIGKILL');
      // Down for longer than requestTimeout: requests waiting for the reconnect time out.
      await sleep(REQUEST_TIMEOUT);
      const second = await startServer({ transport, port: first.port, name: first.name });
      servers.push(second);
      phase = 'after';
      restartedMs = Date.now() - killedAt;
      await sleep(2500);
    } finally {
      // The loops end whatever happened, so that nothing outlives the test.
      stopped = true;
    }
    await within(Promise.all(loops), DEADLINE + 2000, 'every request to settle');

    // Every client is back, on its own: a request succeeds, status is connected.
    const finals = await Promise.all(
      clients.map((c) => boundedOutcome(c.send<number>('sum', [20, 22]), DEADLINE)),
    );
    const statuses = await Promise.all(clients.map((c) => firstValueFrom(c.status)));

    const total = (key: string): number =>
      Object.values(counts).reduce((n, c) => n + (c[key] ?? 0), 0);
    const issued = durations.length;
    const unclear = Object.values(counts)
      .flatMap((c) => Object.keys(c))
      .filter((k) => k.startsWith('unclear'));
    durations.sort((a, b) => a - b);
    figures(`kill -9 and restart (${transport})`, {
      issued,
      succeeded: total('ok'),
      failed: issued - total('ok') - total('hung') - total('wrong answer'),
      hung: total('hung'),
      wrongAnswers: total('wrong answer'),
      byPhase: counts,
      restartedAfterMs: restartedMs,
      slowestRequestMs: durations.at(-1),
      medianRequestMs: durations[Math.floor(durations.length / 2)],
      clientDisconnects: reconnects.disconnects,
      clientConnects: reconnects.connects,
      finalRequests: finals.map((f) => f.kind),
      statuses,
    });
    expect(total('hung')).toBe(0);
    expect(total('wrong answer')).toBe(0);
    expect(unclear).toEqual([]);
    expect(counts.before.ok ?? 0).toBeGreaterThan(0);
    expect(counts.after.ok ?? 0).toBeGreaterThan(0);
    for (const f of finals) expect(f).toMatchObject({ kind: 'ok', value: 42 });
    expect(statuses).toEqual(clients.map(() => 'connected'));
    // Each client lost its connection once and made a new one by itself.
    expect(reconnects.disconnects).toBe(clients.length);
    expect(reconnects.connects).toBe(clients.length);
  }, 60000);

  it('graceful app.close() with 150 slow requests in flight and more arriving every 4 ms around the close (until 30 were sent after it began): every request whose handler started gets its reply (those that crossed the draining notice too); every other one fails with a QtConnectionError; none hangs or times out', async () => {
    const server = await startServer({ transport });
    servers.push(server);
    for (let i = 0; i < 4; i++) {
      const client = new ClientQt({ ...server.target, reconnect: false, requestTimeout: 20000 });
      clients.push(client);
      await client.connect();
    }
    const HANDLER_MS = 1500;
    const outcomes: Array<Promise<Outcome<string>>> = [];
    const sentAfterClosing: number[] = [];
    let closingSeen = false;
    const send = (i: number): void => {
      if (closingSeen) sentAfterClosing.push(i);
      outcomes.push(
        boundedOutcome(clients[i % clients.length]!.send<string>('slow', HANDLER_MS), 30000),
      );
    };

    let started = 0;
    for (let i = 0; i < 150; i++) send(i);
    await readJsonLines(
      server.run,
      (line) => line.event === 'slow-start' && ++started === 150,
      15000,
    );
    // More, one every 4 ms: the close is asked for after the 10th, and sending goes on until
    // 30 have been sent after the server said it was closing (at most 500 in all).
    const t0 = Date.now();
    let closeRequestedAt = 0;
    let closingRead: Promise<void> = Promise.resolve();
    for (let i = 150; i < 650 && sentAfterClosing.length < 30; i++) {
      send(i);
      if (i === 160) {
        server.command('close');
        closeRequestedAt = Date.now();
        // 'closing' is printed once ServerQt has stopped taking work.
        closingRead = readJsonLines(
          server.run,
          (line) => {
            if (line.event !== 'closing') return false;
            closingSeen = true;
            return true;
          },
          10000,
        );
      }
      await sleep(4);
    }
    await closingRead;
    const results = await Promise.all(outcomes);
    const closed = await waitEvent(server.run, 'closed', 20000);
    server.command('stats');
    const stats = (await waitEvent(server.run, 'stats')) as { calls: Record<string, number> };
    const handlersStarted = stats.calls.slow ?? 0;

    const labels: Record<string, number> = {};
    for (const r of results) {
      bump(
        labels,
        r.kind === 'ok'
          ? `ok:${r.value}`
          : r.kind === 'hung'
            ? 'hung'
            : errorLabel((r as { error: unknown }).error),
      );
    }
    const replies = results.filter((r) => r.kind === 'ok').length;
    const lateFailed = sentAfterClosing.filter((i) => {
      const r = results[i]!;
      return r.kind === 'error' && r.error instanceof QtConnectionError;
    }).length;
    // Sent before the client read the server's draining notice: served (docs/protocol.md,
    // "Draining"); sent after: the client had nowhere else to send them.
    const lateServed = sentAfterClosing.filter((i) => results[i]!.kind === 'ok').length;
    figures(`graceful close under load (${transport})`, {
      requests: results.length,
      handlersStarted,
      repliesReceived: replies,
      sentAfterClosingSeen: sentAfterClosing.length,
      sentAfterClosingFailed: lateFailed,
      sentAfterClosingServed: lateServed,
      outcomes: labels,
      handlerMs: HANDLER_MS,
      closeAskedAfterMs: closeRequestedAt - t0,
      closed,
    });
    expect(sentAfterClosing).toHaveLength(30);
    expect(labels.hung ?? 0).toBe(0);
    // Every handler that started answered, and only those.
    expect(replies).toBe(handlersStarted);
    expect(handlersStarted).toBeGreaterThanOrEqual(150);
    for (const r of results) {
      if (r.kind === 'ok') expect(r.value).toBe('slow-done');
      else expect((r as { error: unknown }).error).toBeInstanceOf(QtConnectionError);
    }
    expect(lateFailed + lateServed).toBe(sentAfterClosing.length);
  }, 60000);
});
