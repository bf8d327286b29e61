/**
 * Client-side balancing over several replicas (API.md, "Many processes and many replicas"):
 * ClientQt with `endpoints` and 'round-robin' / 'least-pending' against three replica
 * processes (fixtures/replica-app.ts, each a Nest microservice on ServerQt) on loopback;
 * a replica killed, restarted, and stopped with SIGTERM under load (its draining must fail
 * nothing). Figures are printed as `[scaling] <test>: {...}` lines.
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Controller, Inject, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientsModule } from '@nestjs/microservices';
import { afterEach, describe, expect, it } from '@jest/globals';
import { firstValueFrom } from 'rxjs';

import { ClientQt, QSslSocket, QtConnectionError, type QtEndpointEvent } from '../../lib/index.js';
import { clientTlsOptions, serverTlsOptions } from '../e2e/helpers.js';
import { missingBinaryReason, startMicrosocks } from '../helpers/proxy-servers.js';
import { nodeWithTsArgs, startChild, type ChildRun } from '../helpers/child-process.js';
import { freePort } from '../helpers/net.js';
import { budget, CHILD_START_MS } from '../helpers/time-budget.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/replica-app.ts');

const figures = (test: string, data: Record<string, unknown>): void =>
  console.log(`[scaling] ${test}: ${JSON.stringify(data)}`);

interface Replica {
  run: ChildRun;
  port: number;
  pid: number;
}

const replicas: Replica[] = [];
const clients: ClientQt[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const r of replicas.splice(0)) await r.run.stop();
});

/** Starts a replica on `port` (a free one by default); resolves once it listens. */
async function startReplica(port = 0, extra: string[] = []): Promise<Replica> {
  const run = startChild(
    process.execPath,
    nodeWithTsArgs(FIXTURE, '--port', String(port), ...extra),
  );
  const line = JSON.parse(await run.nextLine(CHILD_START_MS)) as { port: number; pid: number };
  const replica = { run, port: line.port, pid: line.pid };
  replicas.push(replica);
  return replica;
}

function client(options: ConstructorParameters<typeof ClientQt>[0]): {
  client: ClientQt;
  events: QtEndpointEvent[];
} {
  const c = new ClientQt({
    reconnect: { retries: 1000, initialDelay: 50, maxDelay: 200 },
    ...options,
  });
  clients.push(c);
  const events: QtEndpointEvent[] = [];
  c.on('endpoint', (e: QtEndpointEvent) => events.push(e));
  return { client: c, events };
}

/** Resolves once `check` holds, checking after each endpoint event and every 20 ms. */
async function until(check: () => boolean, what: string, ms = budget(15000)): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const upPorts = (events: QtEndpointEvent[]): Set<number> => {
  const up = new Set<number>();
  for (const e of events) {
    if (e.state === 'up') up.add(e.port);
    else if (e.state === 'down' || e.state === 'draining' || e.state === 'removed')
      up.delete(e.port);
  }
  return up;
};

const whoami = (c: ClientQt): Promise<{ pid: number; port: number }> =>
  firstValueFrom(c.send<{ pid: number; port: number }>('whoami', {}));

function countBy<T>(values: T[]): Map<T, number> {
  const m = new Map<T, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

const endpointsOf = (rs: Replica[]): Array<{ host: string; port: number }> =>
  rs.map((r) => ({ host: '127.0.0.1', port: r.port }));

describe('balancing over three replicas', () => {
  it("'round-robin' sends one request in three to each replica, in turn", async () => {
    const rs = [await startReplica(), await startReplica(), await startReplica()];
    const { client: c, events } = client({
      endpoints: endpointsOf(rs),
      loadBalancing: 'round-robin',
    });
    await c.connect();
    await until(() => upPorts(events).size === 3, 'three connections up');
    const pids: number[] = [];
    for (let i = 0; i < 300; i++) pids.push((await whoami(c)).pid);
    const counts = countBy(pids);
    figures('round-robin', { perReplica: [...counts.values()] });
    expect([...counts.keys()].sort()).toEqual(rs.map((r) => r.pid).sort());
    expect([...counts.values()]).toEqual([100, 100, 100]);
  });

  it("'least-pending' keeps away from a replica busy with slow handlers; 'round-robin' does not", async () => {
    const slow = await startReplica(0, ['--delay', '300']);
    const fast = [await startReplica(), await startReplica()];
    const all = [slow, ...fast];
    const shareOfSlow = async (mode: 'least-pending' | 'round-robin'): Promise<number> => {
      const { client: c, events } = client({ endpoints: endpointsOf(all), loadBalancing: mode });
      await c.connect();
      await until(() => upPorts(events).size === 3, 'three connections up');
      const pids: number[] = [];
      // 16 in flight until 240 have been answered.
      let issued = 0;
      const worker = async (): Promise<void> => {
        while (issued < 240) {
          issued++;
          pids.push((await firstValueFrom(c.send<{ pid: number }>('work', 0))).pid);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      return (countBy(pids).get(slow.pid) ?? 0) / pids.length;
    };
    const leastPending = await shareOfSlow('least-pending');
    const roundRobin = await shareOfSlow('round-robin');
    figures('least-pending', { shareOfSlowReplica: leastPending, roundRobinShare: roundRobin });
    // Round-robin gives the slow replica its third whatever it costs; least-pending sends it
    // a request only while its queue is no longer than the others'.
    expect(roundRobin).toBeCloseTo(1 / 3, 1);
    expect(leastPending).toBeLessThan(1 / 6);
  }, 120000);

  it('a replica killed (SIGKILL): every later request is served by the others; restarted on its port, it is used again', async () => {
    const rs = [await startReplica(), await startReplica(), await startReplica()];
    const { client: c, events } = client({
      endpoints: endpointsOf(rs),
      loadBalancing: 'round-robin',
    });
    await c.connect();
    await until(() => upPorts(events).size === 3, 'three connections up');
    const victim = rs[1];
    await victim.run.stop('SIGKILL');
    await until(() => !upPorts(events).has(victim.port), 'the client to see the loss');
    const after: number[] = [];
    for (let i = 0; i < 60; i++) after.push((await whoami(c)).pid);
    expect(after).not.toContain(victim.pid);
    expect(new Set(after)).toEqual(new Set([rs[0].pid, rs[2].pid]));

    const reborn = await startReplica(victim.port);
    await until(
      () => upPorts(events).has(victim.port),
      'the client to reconnect to the restarted replica',
    );
    const again: number[] = [];
    for (let i = 0; i < 60; i++) again.push((await whoami(c)).pid);
    expect(countBy(again).get(reborn.pid)).toBe(20);
    figures('kill and restart', {
      servedByOthers: after.length,
      servedAfterRestart: Object.fromEntries(countBy(again)),
    });
  }, 60000);

  it('a replica stopped with SIGTERM under 16 requests in flight drains: no request fails, its work is finished, the others take the rest', async () => {
    const rs = [await startReplica(), await startReplica(), await startReplica()];
    const { client: c, events } = client({
      endpoints: endpointsOf(rs),
      loadBalancing: 'round-robin',
    });
    await c.connect();
    await until(() => upPorts(events).size === 3, 'three connections up');
    const victim = rs[1];
    const outcomes: Array<{ pid?: number; error?: string }> = [];
    let stop = false;
    let sigtermAt = -1;
    const worker = async (): Promise<void> => {
      while (!stop) {
        try {
          const reply = await firstValueFrom(c.send<{ pid: number }>('work', 20));
          outcomes.push({ pid: reply.pid });
        } catch (err) {
          outcomes.push({
            error: `${(err as Error).constructor.name}:${(err as { code?: string }).code}`,
          });
        }
        if (sigtermAt < 0 && outcomes.length >= 100) {
          sigtermAt = outcomes.length;
          victim.run.proc.kill('SIGTERM');
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    const exited = victim.run.exited;
    await until(() => sigtermAt >= 0, 'the SIGTERM');
    const exit = await exited;
    const atExit = outcomes.length;
    await until(
      () => outcomes.length >= atExit + 200,
      '200 more requests after the replica exited',
    );
    stop = true;
    await Promise.all(workers);
    const failed = outcomes.filter((o) => o.error);
    const servedByVictim = outcomes.filter((o) => o.pid === victim.pid).length;
    figures('rolling stop (SIGTERM)', {
      requests: outcomes.length,
      failed: failed.length,
      failures: failed.slice(0, 5),
      servedByVictim,
      victimExit: exit,
    });
    expect(failed).toEqual([]);
    expect(servedByVictim).toBeGreaterThan(0);
    expect(exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);
    expect(events.some((e) => e.port === victim.port && e.state === 'draining')).toBe(true);
  }, 60000);

  it("'first' with endpoints: one connection, to the first endpoint that connects", async () => {
    const down = await freePort();
    const r = await startReplica();
    const { client: c } = client({
      endpoints: [
        { host: '127.0.0.1', port: down },
        { host: '127.0.0.1', port: r.port },
      ],
    });
    expect((await whoami(c)).pid).toBe(r.pid);
    expect(c.sockets()).toHaveLength(1);
  });

  it('requests that a killed replica had taken fail with QtConnectionError (never sent twice)', async () => {
    const rs = [await startReplica(), await startReplica()];
    const { client: c, events } = client({
      endpoints: endpointsOf(rs),
      loadBalancing: 'round-robin',
    });
    await c.connect();
    await until(() => upPorts(events).size === 2, 'two connections up');
    const pending = Array.from({ length: 8 }, () =>
      firstValueFrom(c.send<{ pid: number }>('work', 60000)).then(
        (v) => ({ pid: v.pid }),
        (e: unknown) => ({ error: e }),
      ),
    );
    // Four went to each replica; wait until the kernel has them all (written).
    await until(
      () => c.sockets().every((s) => s.bytesToWrite() === 0),
      'the requests to be written',
    );
    await rs[0].run.stop('SIGKILL');
    await until(() => !upPorts(events).has(rs[0].port), 'the loss');
    await rs[1].run.stop('SIGKILL');
    const results = await Promise.all(pending);
    for (const r of results)
      expect((r as { error: unknown }).error).toBeInstanceOf(QtConnectionError);
  }, 30000);
});

describe('requests on a connection that is lost', () => {
  it('those it had not written whole go out on another connection and are answered there; those it had written fail', async () => {
    const [stopped, other] = [await startReplica(), await startReplica()];
    const { client: c, events } = client({
      endpoints: endpointsOf([stopped, other]),
      loadBalancing: 'round-robin',
    });
    await c.connect();
    await until(() => upPorts(events).size === 2, 'two connections up');
    // The first replica stops reading (SIGSTOP): the kernel takes a few MiB for it, the
    // rest of what goes its way waits in the client, unwritten.
    stopped.run.proc.kill('SIGSTOP');
    const blob = 'x'.repeat(2 * 1024 * 1024);
    const results = Array.from({ length: 24 }, () =>
      firstValueFrom(c.send<{ pid: number }>('work', blob)).then(
        (v) => ({ pid: v.pid }) as { pid?: number; error?: unknown },
        (e: unknown) => ({ error: e }) as { pid?: number; error?: unknown },
      ),
    );
    const towardsStopped = c
      .sockets()
      .find((s) => (s as unknown as { peerPort(): number }).peerPort() === stopped.port)!;
    await until(() => towardsStopped.bytesToWrite() > 0, 'a backlog towards the stopped replica');
    await stopped.run.stop('SIGKILL');
    const settled = await Promise.all(results);
    const answered = settled.filter((r) => r.pid !== undefined);
    const failed = settled.filter((r) => r.error !== undefined);
    figures('lost with a backlog', {
      requests: 24,
      answeredByOther: answered.length,
      failed: failed.length,
    });
    // Every answer came from the other replica: 12 were its own, the rest moved over.
    expect(answered.every((r) => r.pid === other.pid)).toBe(true);
    expect(answered.length).toBeGreaterThan(12);
    // What the stopped replica's kernel had taken may have been read: it fails, never re-sent.
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(f.error).toBeInstanceOf(QtConnectionError);
    expect(answered.length + failed.length).toBe(24);
  }, 60000);
});

describe('balancing with TLS and through a proxy, per connection', () => {
  it('TLS: each resolved address is verified against the configured name; requests spread over both replicas', async () => {
    const tlsServer = JSON.stringify({ tls: serverTlsOptions() });
    const rs = [
      await startReplica(0, ['--options', tlsServer]),
      await startReplica(0, ['--options', tlsServer]),
    ];
    const { client: c, events } = client({
      // 'localhost' resolves to 127.0.0.1 (and maybe ::1, where nothing listens: that
      // address is retried and never used); the certificate is checked for 'localhost'.
      endpoints: rs.map((r) => ({ host: 'localhost', port: r.port })),
      loadBalancing: 'round-robin',
      tls: clientTlsOptions(),
    });
    await c.connect();
    await until(
      () => events.filter((e) => e.state === 'up' && e.address === '127.0.0.1').length >= 2,
      'both TLS connections up',
    );
    const pids: number[] = [];
    for (let i = 0; i < 20; i++) pids.push((await whoami(c)).pid);
    expect([...countBy(pids).values()]).toEqual([10, 10]);
    for (const s of c.sockets()) expect((s as QSslSocket).isEncrypted()).toBe(true);
  }, 60000);

  const noSocks = missingBinaryReason('microsocks', 'microsocks');
  if (noSocks) console.log(`[scaling] SOCKS5 balancing test skipped: ${noSocks}`);
  (noSocks ? it.skip : it)(
    'SOCKS5: the endpoints go through the proxy as given; requests spread over both replicas',
    async () => {
      const proxy = await startMicrosocks();
      try {
        const rs = [await startReplica(), await startReplica()];
        const { client: c, events } = client({
          endpoints: endpointsOf(rs),
          loadBalancing: 'least-pending',
          proxy: { type: 'socks5', hostName: proxy.host, port: proxy.port },
        });
        await c.connect();
        await until(() => upPorts(events).size === 2, 'two connections up');
        // Both connections went through the proxy, each to its replica.
        for (const r of rs) expect(proxy.log()).toContain(`connected to 127.0.0.1:${r.port}`);
        const pids = new Set<number>();
        for (let i = 0; i < 20; i++) pids.add((await whoami(c)).pid);
        expect(pids).toEqual(new Set(rs.map((r) => r.pid)));
      } finally {
        await proxy.stop();
      }
    },
    60000,
  );
});

describe('a Nest app with ClientsModule and endpoints', () => {
  it('injects a balancing ClientQt that spreads requests over the replicas', async () => {
    const rs = [await startReplica(), await startReplica()];
    @Controller()
    class Holder {
      constructor(@Inject('REPLICAS') readonly replicas: ClientQt) {}
    }
    @Module({
      imports: [
        ClientsModule.register([
          {
            name: 'REPLICAS',
            customClass: ClientQt,
            options: { endpoints: endpointsOf(rs), loadBalancing: 'round-robin' },
          },
        ]),
      ],
      controllers: [Holder],
    })
    class AppModule {}
    const app: INestApplicationContext = await NestFactory.createApplicationContext(AppModule, {
      logger: false,
    });
    try {
      const c = app.get(Holder).replicas;
      const events: QtEndpointEvent[] = [];
      c.on('endpoint', (e: QtEndpointEvent) => events.push(e));
      await c.connect();
      await until(() => upPorts(events).size === 2, 'two connections up');
      const pids: number[] = [];
      for (let i = 0; i < 20; i++) pids.push((await whoami(c)).pid);
      expect([...countBy(pids).values()]).toEqual([10, 10]);
    } finally {
      await app.close();
    }
  });
});
