/**
 * Balancing over a name with several A records, served by a real resolver: dnsmasq in a
 * network namespace (test/helpers/dns-rig.ts), replicas listening on the namespace's
 * addresses, and the balancing client (fixtures/dns-client.ts) run inside it. The records
 * change (dnsmasq reloads its hosts file): the client connects the new address and drains
 * the vanished ones at its next resolution. Needs root, `ip` and dnsmasq; otherwise skipped
 * with the reason printed.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, describe, expect, it } from '@jest/globals';

import { nodeWithTsArgs, type ChildRun } from '../helpers/child-process.js';
import { dnsRigUnavailable, startDnsRig, type DnsRig } from '../helpers/dns-rig.js';
import { budget, CHILD_START_MS } from '../helpers/time-budget.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPLICA = path.join(here, 'fixtures/replica-app.ts');
const CLIENT = path.join(here, 'fixtures/dns-client.ts');
const PORT = 4000;
const INTERVAL = 300;

const skipReason = dnsRigUnavailable();
if (skipReason) console.log(`[scaling] DNS balancing tests skipped: ${skipReason}`);
const describeRig = skipReason ? describe.skip : describe;

const figures = (test: string, data: Record<string, unknown>): void =>
  console.log(`[scaling] ${test}: ${JSON.stringify(data)}`);

let rig: DnsRig | null = null;
const runs: ChildRun[] = [];

afterEach(async () => {
  for (const run of runs.splice(0)) await run.stop();
  await rig?.close();
  rig = null;
});

interface Line {
  event: string;
  [key: string]: unknown;
}

/** Reads the client's lines until `want` matches one; returns every line read. */
async function readUntil(run: ChildRun, want: (l: Line) => boolean, seen: Line[]): Promise<Line> {
  const deadline = Date.now() + budget(20000);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`not seen in time; lines: ${JSON.stringify(seen.slice(-10))}`);
    const line = JSON.parse(await run.nextLine(left)) as Line;
    seen.push(line);
    if (line.event === 'error') throw new Error(`the client failed: ${String(line.message)}`);
    if (want(line)) return line;
  }
}

function countBy(values: number[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const v of values) m[v] = (m[v] ?? 0) + 1;
  return m;
}

describeRig('balancing over a name with several A records (dnsmasq)', () => {
  it('uses every address; when the records change, connects the new one and drains the vanished ones at the next resolution', async () => {
    rig = await startDnsRig();
    const [a1, a2, a3] = rig.addresses;
    const spare = rig.spareAddresses[0];
    const pidOf = new Map<string, number>();
    for (const host of [a1, a2, a3, spare]) {
      const run = rig.startInNs(
        process.execPath,
        nodeWithTsArgs(REPLICA, '--host', host, '--port', String(PORT)),
      );
      runs.push(run);
      pidOf.set(host, (JSON.parse(await run.nextLine(CHILD_START_MS)) as { pid: number }).pid);
    }
    const client = rig.startInNs(
      process.execPath,
      nodeWithTsArgs(
        CLIENT,
        '--host',
        rig.hostName,
        '--port',
        String(PORT),
        '--interval',
        String(INTERVAL),
      ),
    );
    runs.push(client);
    const seen: Line[] = [];
    const up = new Set<string>();
    const track = (l: Line): void => {
      if (l.event !== 'endpoint') return;
      if (l.state === 'up') up.add(l.address as string);
      if (l.state === 'removed' || l.state === 'down') up.delete(l.address as string);
    };

    client.proc.stdin!.write('round 1\n');
    await readUntil(client, (l) => (track(l), l.event === 'round'), seen);
    while (up.size < 3) await readUntil(client, (l) => (track(l), l.event === 'endpoint'), seen);
    client.proc.stdin!.write('round 30\n');
    const first = await readUntil(client, (l) => (track(l), l.event === 'round'), seen);
    expect(countBy(first.pids as number[])).toEqual({
      [pidOf.get(a1)!]: 10,
      [pidOf.get(a2)!]: 10,
      [pidOf.get(a3)!]: 10,
    });

    const changedAt = seen.length;
    const before = Date.now();
    await rig.setRecords([a1, spare]);
    // Wait for the client's view: a2 and a3 removed, the spare up.
    while (up.has(a2) || up.has(a3) || !up.has(spare)) {
      await readUntil(client, (l) => (track(l), l.event === 'endpoint'), seen);
    }
    const noticedMs = Date.now() - before;
    const changes = seen.slice(changedAt).filter((l) => l.event === 'endpoint');
    expect(changes.filter((l) => l.state === 'removed').map((l) => l.address)).toEqual(
      expect.arrayContaining([a2, a3]),
    );
    expect(changes.some((l) => l.address === spare && l.state === 'added')).toBe(true);

    client.proc.stdin!.write('round 20\n');
    const second = await readUntil(client, (l) => (track(l), l.event === 'round'), seen);
    expect(countBy(second.pids as number[])).toEqual({
      [pidOf.get(a1)!]: 10,
      [pidOf.get(spare)!]: 10,
    });
    // The vanished addresses' connections were closed once drained: two remain.
    expect(second.sockets).toBe(2);
    figures('dns re-resolution', {
      resolveIntervalMs: INTERVAL,
      changeSeenAfterMs: noticedMs,
      events: changes.map((l) => `${String(l.address)}:${String(l.state)}`),
    });
  }, 60000);
});
