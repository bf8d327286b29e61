/**
 * A real DNS resolver for tests: dnsmasq in a network namespace of the rig's own, serving a
 * name whose A records the test rewrites while clients run. Servers, clients and dnsmasq all
 * live in that one namespace; `ip netns exec` puts /etc/netns/<ns>/resolv.conf over
 * /etc/resolv.conf for every process started there, so both of Node's paths reach dnsmasq:
 * `dns.lookup` (glibc getaddrinfo, through nsswitch `hosts: files dns`; /etc/hosts does not
 * know the name) and `dns.resolve4` (c-ares). No mocks: the records come over UDP port 53.
 *
 * Inside the namespace: `lo`, and a veth pair (both ends inside; this kernel has no `dummy`
 * driver) whose first end carries the service addresses 10.77.<k>.1, .2, ... and the
 * resolver's 10.77.<k>.53, all in 10.77.<k>.0/24. Another address of that /24 answers no
 * ARP: a connect to it fails with EHOSTUNREACH after about 3 s, as a vanished host does.
 *
 * dnsmasq answers with TTL 0 and is authoritative for `.qt-test` (unknown names there are
 * NXDOMAIN, a served name has no AAAA), so neither glibc (no cache) nor c-ares (it caches by
 * TTL) keeps an old answer: a running client sees a change at its next lookup. Each rig
 * stops what it started by PID and deletes its namespace, /etc/netns/<ns> and its temporary
 * directory; a rig whose owning process died first is swept by the next one started.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { startChild, type ChildRun } from './child-process.js';
import { budget } from './time-budget.js';

/** Namespaces, /etc/netns entries and temporary directories are `qtdns-<owner pid>-<n>`. */
const PREFIX = 'qtdns';
const OWNED = new RegExp(`^${PREFIX}-(\\d+)-`);
const DNSMASQ_PLACES = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq'];
/** dnsmasq answers every name under this domain itself. */
const DOMAIN = 'qt-test';
const RESOLVER_HOST = 53;
const MAX_ADDRESSES = RESOLVER_HOST - 1;
/** Interface names inside the namespace: no other namespace sees them. */
const DEV = `${PREFIX}0`;
const PEER_DEV = `${PREFIX}0p`;

/** A running rig. Every address and name is usable only inside `ns`. */
export interface DnsRig {
  /** The network namespace's name: `qtdns-<pid>-<n>`. */
  readonly ns: string;
  /** Served for `hostName` from the start, and assigned to an up interface: servers listen here. */
  readonly addresses: readonly string[];
  /** Assigned to the same interface but not served at first: for records added later. */
  readonly spareAddresses: readonly string[];
  /** dnsmasq's address (port 53), the only `nameserver` in the namespace's resolv.conf. */
  readonly resolverAddress: string;
  /** The name served, 'svc.qt-test' by default. */
  readonly hostName: string;
  /** dnsmasq's PID (`ip netns exec` execs it, so it is the spawned process itself). */
  readonly dnsmasqPid: number;
  /**
   * Makes `name` (default `hostName`) resolve to `addrs` (IPv4; empty: NXDOMAIN): rewrites
   * the hosts file, sends dnsmasq SIGHUP, and resolves once both `dns.lookup` and
   * `dns.resolve4` in the namespace answer exactly `addrs` (in any order); rejects if they do
   * not within a 10 s budget.
   */
  setRecords(addrs: readonly string[], name?: string): Promise<void>;
  /** What `dns.lookup(name, { all: true })` and `dns.resolve4(name)` answer in the namespace now. */
  query(name?: string): Promise<DnsAnswer>;
  /** `command args` in the namespace (`ip netns exec <ns> command args`). */
  spawnInNs(command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** The same, as a ChildRun (child-process.ts): lines of stdout, `stop()` by PID. */
  startInNs(command: string, args: string[], options?: SpawnOptions): ChildRun;
  /** dnsmasq's log so far: one line per query (`query[A] svc.qt-test from ...`) and per reload. */
  log(): string;
  /**
   * Stops dnsmasq (SIGTERM, then SIGKILL) and SIGKILLs anything else still in the namespace,
   * then deletes the namespace, /etc/netns/<ns> and the temporary directory. Idempotent.
   */
  close(): Promise<void>;
}

/** One answer from each of Node's resolvers: addresses, or the error code. */
export interface DnsAnswer {
  lookup: string[] | { error: string };
  resolve4: string[] | { error: string };
}

export interface DnsRigOptions {
  /** How many addresses are served from the start (default 3). */
  addresses?: number;
  /** How many more are assigned but not served (default 2). */
  spareAddresses?: number;
  /** The name served; must end in '.qt-test' (default 'svc.qt-test'). */
  hostName?: string;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // already gone, or never made
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** dnsmasq's path, or null. `QT_TEST_HIDE_BINARIES=dnsmasq` makes it count as missing. */
function findDnsmasq(): string | null {
  const hidden = (process.env.QT_TEST_HIDE_BINARIES ?? '').split(',').map((n) => n.trim());
  if (hidden.includes('dnsmasq')) return null;
  return (
    DNSMASQ_PLACES.find((p) => {
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }) ?? null
  );
}

let unavailableCache: string | null | undefined;

/**
 * Why a rig cannot run here, or null. Checks root, `ip`, dnsmasq, what glibc will consult,
 * and that a namespace with a veth pair can be made (a probe namespace, deleted at once).
 */
export function dnsRigUnavailable(): string | null {
  if (unavailableCache === undefined) unavailableCache = checkAvailable();
  return unavailableCache;
}

function checkAvailable(): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not running as root (ip netns needs it)';
  try {
    ip('-V');
  } catch {
    return 'the `ip` command (iproute2) is not installed';
  }
  if (findDnsmasq() === null) {
    return 'dnsmasq is not installed (Debian package dnsmasq-base; .ci/run installs it with apt)';
  }
  try {
    if (!fs.statSync('/etc/resolv.conf').isFile()) throw new Error('not a file');
  } catch {
    // `ip netns exec` mounts the namespace's resolv.conf over it: there must be one.
    return '/etc/resolv.conf is missing, so `ip netns exec` has nothing to mount over';
  }
  const hostsLine = /^\s*hosts:(.*)$/m.exec(safeRead('/etc/nsswitch.conf'))?.[1] ?? ' files dns';
  if (!/\bdns\b/.test(hostsLine)) {
    return `/etc/nsswitch.conf has "hosts:${hostsLine}": glibc lookups would not ask dnsmasq`;
  }
  if (['/run/nscd/socket', '/var/run/nscd/socket'].some((s) => fs.existsSync(s))) {
    // nscd lives outside the namespace and would answer glibc lookups with its own cache.
    return 'nscd is running: glibc lookups in a namespace would be answered by it';
  }
  const ns = `${PREFIX}-${process.pid}-probe`;
  try {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', PEER_DEV);
    return null;
  } catch (err) {
    return `network namespaces or veth pairs are not usable here: ${(err as Error).message.trim()}`;
  } finally {
    tryIp('netns', 'del', ns);
  }
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The owner's PID from a `qtdns-<pid>-...` name, if the owner is dead; otherwise null. */
function deadOwner(name: string): number | null {
  const m = OWNED.exec(name);
  if (!m) return null;
  const pid = Number(m[1]);
  return pid !== process.pid && !isAlive(pid) ? pid : null;
}

/** The PIDs of the processes in namespace `ns` (none if it does not exist). */
function pidsIn(ns: string): number[] {
  try {
    return ip('netns', 'pids', ns).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Removes what rigs of dead processes left: their namespaces (after SIGKILLing what still
 * runs there: their dnsmasq, their servers), /etc/netns entries and temporary directories.
 * Another live process's rig is never touched.
 */
export function sweepLeftoverRigs(): string[] {
  const swept: string[] = [];
  let names: string[] = [];
  try {
    names = ip('netns', 'list')
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '');
  } catch {
    // no `ip netns` here
  }
  for (const ns of names.filter((n) => deadOwner(n) !== null)) {
    for (const pid of pidsIn(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    tryIp('netns', 'del', ns);
    swept.push(ns);
  }
  for (const [dir, entries] of [
    ['/etc/netns', safeList('/etc/netns')],
    [os.tmpdir(), safeList(os.tmpdir())],
  ] as const) {
    for (const entry of entries.filter((e) => deadOwner(e) !== null)) {
      fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
      swept.push(path.join(dir, entry));
    }
  }
  return swept;
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * A long-lived Node in the namespace that answers one JSON line per name read from stdin:
 * cheaper to poll than a process per query, and it sees what a long-running client sees.
 */
const PROBER = `
const dns = require('node:dns');
const none = (e) => e && (e.code === 'ENOTFOUND' || e.code === 'ENODATA');
const settle = (p) => p.then((a) => a, (e) => (none(e) ? [] : { error: String(e.code || e) }));
require('node:readline').createInterface({ input: process.stdin }).on('line', async (name) => {
  const [lookup, resolve4] = await Promise.all([
    settle(dns.promises.lookup(name, { all: true }).then((r) => r.map((a) => a.address))),
    settle(dns.promises.resolve4(name)),
  ]);
  process.stdout.write(JSON.stringify({ lookup, resolve4 }) + '\\n');
});
`;

const sameSet = (answer: string[] | { error: string }, want: readonly string[]): boolean =>
  Array.isArray(answer) &&
  answer.length === want.length &&
  [...answer].sort().join() === [...want].sort().join();

let rigsStarted = 0;

/**
 * Starts a rig: sweeps leftovers of dead processes, makes the namespace and its addresses,
 * starts dnsmasq, and resolves once a Node process in the namespace gets the initial records
 * through both `dns.lookup` and `dns.resolve4`. Throws the reason if dnsRigUnavailable().
 */
export async function startDnsRig(options: DnsRigOptions = {}): Promise<DnsRig> {
  const reason = dnsRigUnavailable();
  if (reason) throw new Error(`the DNS rig cannot run here: ${reason}`);
  const served = options.addresses ?? 3;
  const spare = options.spareAddresses ?? 2;
  const hostName = options.hostName ?? `svc.${DOMAIN}`;
  if (!Number.isInteger(served) || served < 1 || !Number.isInteger(spare) || spare < 0) {
    throw new RangeError(`addresses must be >= 1 and spareAddresses >= 0 (integers)`);
  }
  if (served + spare > MAX_ADDRESSES) {
    throw new RangeError(`addresses + spareAddresses must be at most ${MAX_ADDRESSES}`);
  }
  if (!hostName.endsWith(`.${DOMAIN}`)) {
    throw new RangeError(`hostName must end in .${DOMAIN}, not ${JSON.stringify(hostName)}`);
  }
  sweepLeftoverRigs();

  const seq = ++rigsStarted;
  const ns = `${PREFIX}-${process.pid}-${seq}`;
  // Each rig has a namespace of its own, so equal addresses in two rigs never meet; a <k>
  // from the pid only keeps one rig's addresses apart from another's in logs and captures.
  const net24 = `10.77.${(process.pid + seq) % 256}`;
  const all = Array.from({ length: served + spare }, (_, i) => `${net24}.${i + 1}`);
  const addresses = all.slice(0, served);
  const spareAddresses = all.slice(served);
  const resolverAddress = `${net24}.${RESOLVER_HOST}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${ns}-`));
  const etcDir = path.join('/etc/netns', ns);
  const hostsFile = path.join(dir, 'hosts');
  const logFile = path.join(dir, 'dnsmasq.log');
  const records = new Map<string, readonly string[]>([[hostName, addresses]]);

  let dnsmasq: ChildRun | null = null;
  let prober: ChildRun | null = null;
  let closed: Promise<void> | null = null;
  let queue: Promise<unknown> = Promise.resolve();

  const writeHosts = (): void => {
    const lines = [...records].flatMap(([name, addrs]) => addrs.map((a) => `${a} ${name}\n`));
    fs.writeFileSync(`${hostsFile}.new`, lines.join(''));
    fs.renameSync(`${hostsFile}.new`, hostsFile);
  };

  const dnsmasqGone = (): Error | null =>
    dnsmasq && !dnsmasq.running()
      ? new Error(`dnsmasq exited; stderr: ${dnsmasq.stderr()}; log: ${safeRead(logFile)}`)
      : null;

  const query = (name = hostName): Promise<DnsAnswer> => {
    // One question at a time: answers come back in the order asked.
    const asked = queue.then(async () => {
      prober!.proc.stdin!.write(`${name}\n`);
      return JSON.parse(await prober!.nextLine(budget(10000))) as DnsAnswer;
    });
    queue = asked.catch(() => undefined);
    return asked;
  };

  /** Polls until both resolvers answer `want` for `name`; throws after `ms`. */
  const waitForAnswer = async (name: string, want: readonly string[], ms: number) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const gone = dnsmasqGone();
      if (gone) throw gone;
      const last = await query(name);
      if (sameSet(last.lookup, want) && sameSet(last.resolve4, want)) return;
      if (Date.now() > deadline) {
        throw new Error(
          `${name} did not resolve to ${JSON.stringify(want)} within ${ms} ms in ${ns}; ` +
            `last answer ${JSON.stringify(last)}`,
        );
      }
      await sleep(20);
    }
  };

  const close = (): Promise<void> => {
    closed ??= (async () => {
      const problems: string[] = [];
      await prober?.stop().catch((err: unknown) => problems.push(String(err)));
      if (dnsmasq) {
        await dnsmasq
          .stop('SIGTERM')
          .catch(() =>
            dnsmasq!.stop('SIGKILL').catch((err: unknown) => problems.push(String(err))),
          );
      }
      // What the test started in the namespace and left running ends here, by PID.
      const deadline = Date.now() + budget(5000);
      for (let pids = pidsIn(ns); pids.length > 0; pids = pidsIn(ns)) {
        if (Date.now() > deadline) {
          problems.push(`processes ${pids.join(' ')} still in ${ns}`);
          break;
        }
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // exited meanwhile
          }
        }
        await sleep(20);
      }
      tryIp('netns', 'del', ns);
      fs.rmSync(etcDir, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
      if (
        ip('netns', 'list')
          .split('\n')
          .some((l) => l.split(/\s+/)[0] === ns)
      ) {
        problems.push(`namespace ${ns} is still there`);
      }
      if (problems.length > 0) throw new Error(`closing the DNS rig: ${problems.join('; ')}`);
    })();
    return closed;
  };

  const inNs = (command: string, args: string[]): string[] => [
    'netns',
    'exec',
    ns,
    command,
    ...args,
  ];

  try {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', PEER_DEV);
    for (const a of [...all, resolverAddress]) ip('-n', ns, 'addr', 'add', `${a}/24`, 'dev', DEV);
    ip('-n', ns, 'link', 'set', PEER_DEV, 'up');
    ip('-n', ns, 'link', 'set', DEV, 'up');
    fs.mkdirSync(etcDir, { recursive: true });
    // A short timeout, so that a lookup while dnsmasq is down fails in about 2 s, not 10.
    fs.writeFileSync(
      path.join(etcDir, 'resolv.conf'),
      `nameserver ${resolverAddress}\noptions timeout:1 attempts:2\n`,
    );
    writeHosts();
    dnsmasq = startChild(
      'ip',
      inNs(findDnsmasq()!, [
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        // Root keeps the right to read the hosts file (in a 0700 directory) on SIGHUP.
        '--user=root',
        '--no-resolv',
        '--no-hosts',
        `--addn-hosts=${hostsFile}`,
        `--local=/${DOMAIN}/`,
        `--listen-address=${resolverAddress}`,
        '--bind-interfaces',
        `--pid-file=${path.join(dir, 'dnsmasq.pid')}`,
        '--local-ttl=0',
        `--log-facility=${logFile}`,
        '--log-queries',
      ]),
    );
    prober = startChild('ip', inNs(process.execPath, ['-e', PROBER]));
    await waitForAnswer(hostName, addresses, budget(15000));
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }

  return {
    ns,
    addresses,
    spareAddresses,
    resolverAddress,
    hostName,
    dnsmasqPid: dnsmasq.proc.pid!,
    async setRecords(addrs, name = hostName) {
      if (closed) throw new Error(`the DNS rig ${ns} is closed`);
      const bad = addrs.find((a) => !net.isIPv4(a));
      if (bad !== undefined) throw new TypeError(`setRecords: not an IPv4 address: ${bad}`);
      if (!name.endsWith(`.${DOMAIN}`)) {
        throw new RangeError(`setRecords: the name must end in .${DOMAIN}, not ${name}`);
      }
      records.set(name, [...addrs]);
      writeHosts();
      process.kill(dnsmasq!.proc.pid!, 'SIGHUP');
      await waitForAnswer(name, addrs, budget(10000));
    },
    query,
    spawnInNs: (command, args, spawnOptions = {}) => spawn('ip', inNs(command, args), spawnOptions),
    startInNs: (command, args, spawnOptions = {}) =>
      startChild('ip', inNs(command, args), spawnOptions),
    log: () => safeRead(logFile),
    close,
  };
}
