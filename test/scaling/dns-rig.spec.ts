/**
 * The DNS rig (test/helpers/dns-rig.ts) itself: dnsmasq in a network namespace, reached by a
 * long-running Node process there through both dns.lookup (glibc) and dns.resolve4 (c-ares).
 * Needs root, `ip` and dnsmasq; otherwise every test here is skipped with the reason printed.
 *
 * Figures are printed as `[scaling] <test>: {...}` lines.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { startChild, type ChildRun } from '../helpers/child-process.js';
import {
  dnsRigUnavailable,
  startDnsRig,
  sweepLeftoverRigs,
  type DnsAnswer,
  type DnsRig,
} from '../helpers/dns-rig.js';
import { budget } from '../helpers/time-budget.js';

const skipReason = dnsRigUnavailable();
if (skipReason) console.log(`[scaling] DNS rig tests skipped: ${skipReason}`);
const describeRig = skipReason ? describe.skip : describe;

const figures = (test: string, data: Record<string, unknown>): void =>
  console.log(`[scaling] ${test}: ${JSON.stringify(data)}`);

const sorted = (answer: string[] | { error: string }): string[] | { error: string } =>
  Array.isArray(answer) ? [...answer].sort() : answer;

const namespaces = (): string[] =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(/\s+/)[0]);

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A client stand-in: one JSON line per stdin line. `resolve NAME`: both resolvers' answers.
 * `serve PORT A,B,...`: listens on each address (each connection gets the address it
 * reached). `connect PORT A,B,...`: connects to each and reports what the server said.
 */
const CLIENT = `
const dns = require('node:dns');
const net = require('node:net');
const none = (e) => e && (e.code === 'ENOTFOUND' || e.code === 'ENODATA');
const settle = (p) => p.then((a) => a, (e) => (none(e) ? [] : { error: String(e.code || e) }));
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const listen = (port, host) => new Promise((resolve) => {
  const server = net.createServer((s) => s.end(s.localAddress));
  server.once('error', (e) => resolve({ host, error: e.code }));
  server.listen({ port, host }, () => resolve({ host, listening: server.address().address }));
});
const greet = (port, host) => new Promise((resolve) => {
  let said = '';
  const s = net.connect({ port, host });
  s.setTimeout(5000, () => s.destroy(new Error('timeout')));
  s.on('data', (d) => (said += d));
  s.on('end', () => resolve(said));
  s.on('error', (e) => resolve('error ' + (e.code || e.message)));
});
require('node:readline').createInterface({ input: process.stdin }).on('line', async (line) => {
  const [op, a, b] = line.split(' ');
  if (op === 'resolve') {
    const [lookup, resolve4] = await Promise.all([
      settle(dns.promises.lookup(a, { all: true }).then((r) => r.map((x) => x.address))),
      settle(dns.promises.resolve4(a)),
    ]);
    out({ lookup, resolve4 });
  } else if (op === 'serve') {
    out({ served: await Promise.all(b.split(',').map((h) => listen(Number(a), h))) });
  } else if (op === 'connect') {
    out({ reached: await Promise.all(b.split(',').map((h) => greet(Number(a), h))) });
  }
});
out({ event: 'ready', pid: process.pid });
`;

const PORT = 7000;

describeRig('DNS rig: dnsmasq in a network namespace', () => {
  let rig: DnsRig | null = null;
  let client: ChildRun | null = null;
  let startMs = 0;

  const ask = async <T>(line: string): Promise<T> => {
    client!.proc.stdin!.write(`${line}\n`);
    return JSON.parse(await client!.nextLine(budget(15000))) as T;
  };

  beforeAll(async () => {
    const t0 = Date.now();
    rig = await startDnsRig();
    startMs = Date.now() - t0;
    client = rig.startInNs(process.execPath, ['-e', CLIENT]);
    const ready = JSON.parse(await client.nextLine()) as { pid: number };
    // `ip netns exec` execs node: stopping the ChildRun by PID reaches the client itself.
    expect(ready.pid).toBe(client.proc.pid);
  });

  afterAll(async () => {
    await client?.stop();
    await rig?.close();
  });

  it('a Node process in the namespace resolves the name to the three served addresses through both dns.lookup (glibc via nsswitch) and dns.resolve4 (c-ares)', async () => {
    const answer = await ask<DnsAnswer>(`resolve ${rig!.hostName}`);
    figures('initial records', { startMs, ns: rig!.ns, hostName: rig!.hostName, answer });
    expect(rig!.addresses).toHaveLength(3);
    expect(sorted(answer.lookup)).toEqual([...rig!.addresses].sort());
    expect(sorted(answer.resolve4)).toEqual([...rig!.addresses].sort());
    // dnsmasq answered, not /etc/hosts: the queries are in its log.
    expect(rig!.log()).toContain(`query[A] ${rig!.hostName}`);
  });

  it('a server in the namespace can listen on every service and spare address, and a client reaches each address the name resolves to', async () => {
    const all = [...rig!.addresses, ...rig!.spareAddresses];
    const { served } = await ask<{ served: Array<{ host: string; listening?: string }> }>(
      `serve ${PORT} ${all.join(',')}`,
    );
    expect(served.map((s) => s.listening)).toEqual(all);
    const answer = await ask<DnsAnswer>(`resolve ${rig!.hostName}`);
    const resolved = answer.lookup as string[];
    const { reached } = await ask<{ reached: string[] }>(`connect ${PORT} ${resolved.join(',')}`);
    expect(reached).toEqual(resolved);
  });

  it('setRecords with two other addresses: the same running process sees only those at its next lookup (TTL 0, nothing cached), then the three again', async () => {
    const t0 = Date.now();
    await rig!.setRecords(rig!.spareAddresses);
    const setMs = Date.now() - t0;
    const changed = await ask<DnsAnswer>(`resolve ${rig!.hostName}`);
    const t1 = Date.now();
    await rig!.setRecords(rig!.addresses);
    const backMs = Date.now() - t1;
    const back = await ask<DnsAnswer>(`resolve ${rig!.hostName}`);
    figures('setRecords', { setMs, backMs, changed, back });
    expect(rig!.spareAddresses).toHaveLength(2);
    expect(sorted(changed.lookup)).toEqual([...rig!.spareAddresses].sort());
    expect(sorted(changed.resolve4)).toEqual([...rig!.spareAddresses].sort());
    expect(sorted(back.lookup)).toEqual([...rig!.addresses].sort());
    expect(sorted(back.resolve4)).toEqual([...rig!.addresses].sort());
  });

  it('setRecords([]) makes the name NXDOMAIN (both resolvers answer nothing), and records come back after it', async () => {
    await rig!.setRecords([]);
    const empty = await ask<DnsAnswer>(`resolve ${rig!.hostName}`);
    await rig!.setRecords(rig!.addresses.slice(0, 1));
    const one = await ask<DnsAnswer>(`resolve ${rig!.hostName}`);
    expect(empty).toEqual({ lookup: [], resolve4: [] });
    expect(one).toEqual({ lookup: [rig!.addresses[0]], resolve4: [rig!.addresses[0]] });
  });

  it('setRecords rejects an address that is not IPv4, naming it', async () => {
    await expect(rig!.setRecords(['10.77.0.1', 'not-an-address'])).rejects.toThrow(
      'not an IPv4 address: not-an-address',
    );
  });
});

describeRig('DNS rig: clean-up', () => {
  it('close() stops dnsmasq and what the test left running in the namespace (by PID), and deletes the namespace, /etc/netns/<ns> and the temporary files', async () => {
    const rig = await startDnsRig({ addresses: 1, spareAddresses: 0 });
    const sleeper = rig.startInNs('sleep', ['600']);
    try {
      const pidFile = fs.readFileSync(
        path.join(
          os.tmpdir(),
          fs.readdirSync(os.tmpdir()).find((e) => e.startsWith(`${rig.ns}-`))!,
          'dnsmasq.pid',
        ),
        'utf8',
      );
      expect(Number(pidFile.trim())).toBe(rig.dnsmasqPid);
      expect(isAlive(rig.dnsmasqPid)).toBe(true);
      expect(namespaces()).toContain(rig.ns);
    } finally {
      await rig.close();
    }
    const sleeperExit = await sleeper.exited;
    expect(sleeperExit.signal).toBe('SIGKILL');
    expect(isAlive(rig.dnsmasqPid)).toBe(false);
    expect(namespaces()).not.toContain(rig.ns);
    expect(fs.existsSync(path.join('/etc/netns', rig.ns))).toBe(false);
    expect(fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith(`${rig.ns}-`))).toEqual([]);
    // A second close is harmless.
    await rig.close();
  });

  it('a new rig sweeps the namespace, processes and files of a rig whose owning process is dead, and leaves a live owner alone', async () => {
    const dead = startChild('true', []);
    await dead.exited;
    const deadPid = dead.proc.pid!;
    const owner = startChild('sleep', ['600']);
    const orphanNs = `qtdns-${deadPid}-1`;
    const liveNs = `qtdns-${owner.proc.pid}-1`;
    const orphanTmp = fs.mkdtempSync(path.join(os.tmpdir(), `${orphanNs}-`));
    let orphan: ChildRun | null = null;
    try {
      for (const ns of [orphanNs, liveNs]) {
        execFileSync('ip', ['netns', 'add', ns]);
        fs.mkdirSync(path.join('/etc/netns', ns), { recursive: true });
      }
      orphan = startChild('ip', ['netns', 'exec', orphanNs, 'sleep', '600']);
      // Wait (bounded) until the sleeper is inside the namespace.
      const deadline = Date.now() + budget(5000);
      while (
        !execFileSync('ip', ['netns', 'pids', orphanNs], { encoding: 'utf8' }).trim() &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const swept = sweepLeftoverRigs();
      expect(swept).toEqual(
        expect.arrayContaining([orphanNs, path.join('/etc/netns', orphanNs), orphanTmp]),
      );
      expect((await orphan.exited).signal).toBe('SIGKILL');
      expect(namespaces()).not.toContain(orphanNs);
      expect(fs.existsSync(orphanTmp)).toBe(false);
      expect(namespaces()).toContain(liveNs);
      expect(fs.existsSync(path.join('/etc/netns', liveNs))).toBe(true);
    } finally {
      await orphan?.stop();
      await owner.stop();
      for (const ns of [orphanNs, liveNs]) {
        try {
          execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
        } catch {
          // swept already
        }
        fs.rmSync(path.join('/etc/netns', ns), { recursive: true, force: true });
      }
      fs.rmSync(orphanTmp, { recursive: true, force: true });
    }
  });
});
