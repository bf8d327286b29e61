/**
 * The benchmark: the same Nest controller behind this transport (TCP, local socket, TCP +
 * TLS) and Nest's Transport.TCP (without and with tlsOptions), and the same length-prefixed
 * echo in plain `net` over TCP and over a Unix socket (what each substrate allows), each
 * server and client in its own process, on loopback. Every figure is the median of 3
 * repetitions (kinds interleaved), with the spread; ratios are this transport's figure over
 * Nest's TCP transport's.
 *
 * - Pinning: each server process runs on one CPU and each client on another (`taskset -c`,
 *   every thread of the process), so that the two never take turns on one core and the
 *   scheduler does not move them; without taskset or a second CPU the run is unpinned and
 *   the header says why.
 * - CPU per request: for each throughput phase (1, 16 and 256 in flight) and the events
 *   phase, the client's user + system time (process.cpuUsage()) and the server's
 *   (/proc/<pid>/stat, clock ticks) over the phase, divided by the requests (events).
 * - Targets: those of issue 19, each a ratio of medians, met or missed.
 * - Scaling (scaling.ts), in each repetition: one balancing ClientQt against one and two
 *   server processes, and against two node:cluster workers. Unpinned: it measures what
 *   several servers and a client make of every core, as a deployment shares them.
 *
 *   npm run bench              full run (a few minutes)
 *   npm run bench -- --quick   short phases, 1 and 16 MiB payloads (about two minutes; CI)
 *   --unpinned                 server and client processes not pinned to CPUs
 *   --balancing round-robin    the scaling figures' balancing mode (default least-pending)
 *   --no-cluster               without the cluster workers
 *   --scaling-only             only the scaling figures, printed (no results file written)
 *   --kinds qt-tcp,nest-tcp    only these kinds, no scaling figures, printed (nothing written)
 *   --from <results.json>      re-renders a results file, without measuring
 *
 * Syscalls per request of each process: npm run bench:syscalls (syscalls.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from '../sample/common/free-port.js';
import type { ClientResult, Settings } from './client.js';
import { cell, figure, type Figure } from './figures.js';
import { KINDS, LABELS, type Kind } from './kinds.js';
import { makeBenchPki } from './pki.js';
import { choosePinning, onCpu, run, startServer, type StartedServer } from './processes.js';
import type { ScalingConfig, ScalingResult } from './scaling-client.js';
import {
  renderScaling,
  scalingModel,
  scalingRows,
  sideLabel,
  type Balancing,
  type ScalingReport,
  type ScalingSettings,
  type Side,
} from './scaling.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const quick = process.argv.includes('--quick');
const REPETITIONS = 3;

const settings: Settings = quick
  ? { durationMs: 700, concurrency: [1, 16, 256], events: 20000, payloadMiB: [1, 16] }
  : { durationMs: 3000, concurrency: [1, 16, 256], events: 100000, payloadMiB: [1, 16, 64] };

const balancingAt = process.argv.indexOf('--balancing');
// least-pending: in A/B runs on the 2-core benchmark machine (two servers, the two modes back
// to back) it beat round-robin in 13 of 16 pairs, at less CPU per request: with three busy
// processes on two cores a server is often off its core, and round-robin keeps giving it
// half the new requests while least-pending sends them to the other.
const balancing: Balancing =
  balancingAt >= 0 && process.argv[balancingAt + 1] === 'round-robin'
    ? 'round-robin'
    : 'least-pending';
const withCluster = !process.argv.includes('--no-cluster');
const scalingOnly = process.argv.includes('--scaling-only');
const kindsAt = process.argv.indexOf('--kinds');
/** --kinds: only these kinds, no scaling figures, nothing written (a quick look while optimising). */
const someKinds =
  kindsAt >= 0 ? KINDS.filter((k) => process.argv[kindsAt + 1]?.split(',').includes(k)) : null;
// Only the transports table is pinned: the scaling figures measure what several server
// processes and a client make of every core, as a deployment would share them.
const pinning = choosePinning(!process.argv.includes('--unpinned'));

const scalingSettings: ScalingSettings = {
  balancing,
  durationMs: settings.durationMs,
  rounds: quick ? 2 : 6,
  warmupMs: quick ? 500 : 1000,
  concurrency: {
    'first-1': [1, 256],
    'balanced-1': [1, 256],
    'balanced-2': [256],
    'cluster-2': [256],
  },
  cores: os.cpus().length,
};

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** One repetition of `kind`: its server, then its client process, each on its CPU. */
async function measure(kind: Kind): Promise<ClientResult> {
  const tag = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const address =
    kind === 'qt-local'
      ? `qt-bench-${tag}`
      : kind === 'raw-unix'
        ? path.join(os.tmpdir(), `qt-bench-raw-${tag}.sock`)
        : String(await freePort());
  const server = await startServer(kind, address, [], onCpu(pinning.server));
  try {
    const client = run(
      'client',
      [kind, address, JSON.stringify(settings), String(server.readyLine.pid)],
      { wrapper: onCpu(pinning.client) },
    );
    const lines = await client.lines;
    return JSON.parse(lines.at(-1)!) as ClientResult;
  } finally {
    await server.stop();
    if (kind === 'raw-unix') fs.rmSync(address, { force: true });
  }
}

/** A side of the scaling figures and the servers it uses. */
interface SideTarget {
  side: Side;
  ports: number[];
  pids: number[];
}

/** One scaling-client process measuring `targets` in turns; resolves its results by side. */
async function scalingClient(targets: SideTarget[]): Promise<Record<string, ScalingResult>> {
  const config: ScalingConfig = {
    sides: targets.map((t) => ({
      side: t.side,
      ports: t.ports,
      loadBalancing: t.side === 'first-1' ? 'first' : balancing,
      connectionsPerEndpoint: t.side === 'cluster-2' ? 2 : 1,
      serverPids: t.pids,
      concurrency: scalingSettings.concurrency[t.side],
    })),
    durationMs: scalingSettings.durationMs,
    rounds: scalingSettings.rounds,
    warmupMs: scalingSettings.warmupMs,
  };
  const lines = await run('scaling-client', [JSON.stringify(config)]).lines;
  return JSON.parse(lines.at(-1)!) as Record<string, ScalingResult>;
}

/** Starts a server of `kind` on each of `ports`; stops those that started if one fails. */
async function startServers(kind: Kind, ports: number[]): Promise<StartedServer[]> {
  const started = await Promise.allSettled(ports.map((p) => startServer(kind, String(p))));
  const up = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(up.map((s) => s.stop()));
    throw failed.reason;
  }
  return up;
}

/**
 * One repetition of the scaling figures: two server processes, and one client process that
 * measures the 2-server side and the two 1-server sides ('first' and balancing, on the
 * first server) in turns; then two cluster workers, where they start (a failure is a note
 * in the report, not the end of the benchmark).
 */
async function measureScaling(
  rep: number,
  into: Record<Side, ScalingResult[]>,
  notes: Set<string>,
): Promise<void> {
  const ports = [await freePort()];
  while (ports.length < 2) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  log(`repetition ${rep}/${REPETITIONS}: scaling, 1 and 2 server processes`);
  const servers = await startServers('qt-tcp', ports);
  const pids = servers.map((s) => s.readyLine.pid);
  try {
    // The 2-server side first: its warm-up warms both servers before anything is measured.
    const results = await scalingClient([
      { side: 'balanced-2', ports, pids },
      { side: 'first-1', ports: ports.slice(0, 1), pids: pids.slice(0, 1) },
      { side: 'balanced-1', ports: ports.slice(0, 1), pids: pids.slice(0, 1) },
    ]);
    for (const side of ['balanced-2', 'first-1', 'balanced-1'] as const) {
      into[side].push(results[side]);
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
  if (!withCluster) return;
  log(`repetition ${rep}/${REPETITIONS}: scaling, ${sideLabel('cluster-2', balancing)}`);
  const port = await freePort();
  let cluster: StartedServer | null = null;
  try {
    cluster = await startServer('qt-tcp', String(port), ['2']);
    const all = [cluster.readyLine.pid, ...(cluster.readyLine.workers ?? [])];
    const results = await scalingClient([{ side: 'cluster-2', ports: [port], pids: all }]);
    into['cluster-2'].push(results['cluster-2']);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    log(`cluster workers not measured: ${why}`);
    notes.add(
      `2 cluster workers: not measured in a repetition (${why.split('\n')[0].slice(0, 200)})`,
    );
  } finally {
    await cluster?.stop();
  }
}

type Row = {
  name: string;
  unit: string;
  higherIsBetter: boolean;
  values: Partial<Record<Kind, Figure>>;
};

function rows(results: Record<Kind, ClientResult[]>): Row[] {
  const out: Row[] = [];
  const pick = (
    name: string,
    unit: string,
    higherIsBetter: boolean,
    get: (r: ClientResult) => number | null | undefined,
  ): void => {
    const values: Partial<Record<Kind, Figure>> = {};
    for (const kind of KINDS) {
      const list = results[kind].map(get).filter((v): v is number => typeof v === 'number');
      if (list.length > 0) values[kind] = figure(list);
    }
    out.push({ name, unit, higherIsBetter, values });
  };
  // Client, server and their sum, µs of CPU time per request (or event) of one phase.
  const cpu = (what: string, key: string): void => {
    pick(`client CPU per ${what}`, 'µs', false, (r) => r.cpuUs?.[key]?.client);
    pick(`server CPU per ${what}`, 'µs', false, (r) => r.cpuUs?.[key]?.server);
    pick(`CPU per ${what}, client + server`, 'µs', false, (r) => {
      const f = r.cpuUs?.[key];
      return f && f.server !== null ? f.client + f.server : undefined;
    });
  };
  for (const c of settings.concurrency) {
    pick(`requests/s at ${c} in flight`, 'req/s', true, (r) => r.throughput[String(c)]?.rps);
    pick(`p50 latency at ${c} in flight`, 'ms', false, (r) => r.throughput[String(c)]?.p50);
    pick(`p99 latency at ${c} in flight`, 'ms', false, (r) => r.throughput[String(c)]?.p99);
    cpu(`request at ${c} in flight`, String(c));
  }
  pick('events delivered/s (counted by the server)', 'events/s', true, (r) => r.eventsPerSec);
  cpu('event', 'events');
  for (const mib of settings.payloadMiB) {
    pick(`${mib} MiB JSON string round trip`, 'ms', false, (r) => r.payloadJsonMs[String(mib)]);
    pick(`${mib} MiB Buffer round trip (CBOR)`, 'ms', false, (r) => r.payloadCborMs[String(mib)]);
  }
  pick('server RSS idle', 'MiB', false, (r) => r.rss.idle / 1048576);
  pick(
    'server RSS after the throughput phase',
    'MiB',
    false,
    (r) => r.rss.afterThroughput / 1048576,
  );
  pick(
    'server RSS after the events phase',
    'MiB',
    false,
    (r) => (r.rss.afterEvents ?? NaN) / 1048576,
  );
  pick('server RSS after the payload phase', 'MiB', false, (r) => r.rss.afterPayload / 1048576);
  return out
    .map((row) => ({
      ...row,
      values: Object.fromEntries(
        Object.entries(row.values).filter(([, f]) => !Number.isNaN(f!.median)),
      ),
    }))
    .filter((row) => Object.keys(row.values).length > 0);
}

function ratio(row: Row, kind: Kind, base: Kind = 'nest-tcp'): string {
  const mine = row.values[kind]?.median;
  const nest = row.values[base]?.median;
  if (mine === undefined || nest === undefined || nest === 0) return '—';
  return `${(mine / nest).toFixed(2)}×`;
}

/**
 * The targets of issue 19 ("Performance, second round"), each as a measured ratio of medians
 * and whether it is met. Every ratio is this transport over Nest's Transport.TCP in the same
 * run, except where a row names another base (this transport's TCP, Nest with tlsOptions).
 */
function targets(table: Row[]): string[] {
  const get = (name: string, kind: Kind): number | undefined =>
    table.find((r) => r.name === name)?.values[kind]?.median;
  const lines: string[] = [];
  const add = (
    target: string,
    mine: number | undefined,
    base: number | undefined,
    goal: number,
    atLeast: boolean,
  ): void => {
    if (mine === undefined || base === undefined || base === 0) {
      lines.push(`| ${target} | — | not measured |`);
      return;
    }
    const r = mine / base;
    const met = atLeast ? r >= goal : r <= goal;
    lines.push(`| ${target} | ${r.toFixed(2)}× | ${met ? 'met' : 'missed'} |`);
  };
  /** `name`'s figure of `kind` over its figure of `base`. */
  const vs = (
    target: string,
    name: string,
    kind: Kind,
    base: Kind,
    goal: number,
    atLeast: boolean,
  ): void => add(target, get(name, kind), get(name, base), goal, atLeast);
  const rps = (c: number): string => `requests/s at ${c} in flight`;
  const events = 'events delivered/s (counted by the server)';
  const json = (mib: number): string => `${mib} MiB JSON string round trip`;

  vs('TCP requests/s at 1 in flight ≥ 1.3× Nest', rps(1), 'qt-tcp', 'nest-tcp', 1.3, true);
  vs(
    'TCP p99 at 1 in flight ≤ 1.0× Nest',
    'p99 latency at 1 in flight',
    'qt-tcp',
    'nest-tcp',
    1,
    false,
  );
  vs('TCP requests/s at 16 in flight ≥ 2.0× Nest', rps(16), 'qt-tcp', 'nest-tcp', 2, true);
  vs('TCP requests/s at 256 in flight ≥ 2.5× Nest', rps(256), 'qt-tcp', 'nest-tcp', 2.5, true);
  vs(
    'TCP p99 at 16 in flight ≤ 0.3× Nest',
    'p99 latency at 16 in flight',
    'qt-tcp',
    'nest-tcp',
    0.3,
    false,
  );
  vs(
    'TCP CPU per request (client + server) at 16 in flight ≤ 0.4× Nest',
    'CPU per request at 16 in flight, client + server',
    'qt-tcp',
    'nest-tcp',
    0.4,
    false,
  );
  for (const c of [1, 16, 256]) {
    vs(
      `local requests/s at ${c} in flight ≥ 1.15× this transport's TCP`,
      rps(c),
      'qt-local',
      'qt-tcp',
      1.15,
      true,
    );
  }
  vs("local events/s ≥ 1.15× this transport's TCP", events, 'qt-local', 'qt-tcp', 1.15, true);
  vs('TCP events delivered/s ≥ 3× Nest', events, 'qt-tcp', 'nest-tcp', 3, true);
  vs('local events delivered/s ≥ 3× Nest', events, 'qt-local', 'nest-tcp', 3, true);
  for (const mib of [1, 16, 64]) {
    vs(
      `TCP ${mib} MiB JSON round trip ≤ 0.8× Nest's time`,
      json(mib),
      'qt-tcp',
      'nest-tcp',
      0.8,
      false,
    );
  }
  add(
    "TCP 16 MiB Buffer (CBOR) round trip ≤ 0.2× Nest's 16 MiB JSON",
    get('16 MiB Buffer round trip (CBOR)', 'qt-tcp'),
    get(json(16), 'nest-tcp'),
    0.2,
    false,
  );
  for (const mib of [1, 16, 64]) {
    vs(
      `TLS ${mib} MiB JSON round trip ≤ 1.0× Nest with tlsOptions`,
      json(mib),
      'qt-tls',
      'nest-tls',
      1,
      false,
    );
  }
  vs(
    'TCP server RSS after the throughput phase ≤ 1.0× Nest',
    'server RSS after the throughput phase',
    'qt-tcp',
    'nest-tcp',
    1,
    false,
  );
  return ['| target | measured | |', '|---|---|---|', ...lines];
}

function versions(): Record<string, string> {
  const read = (p: string): string => {
    try {
      return (
        JSON.parse(fs.readFileSync(path.join(root, 'node_modules', p, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
    } catch {
      return '?';
    }
  };
  return {
    node: process.version,
    '@nestjs/microservices': read('@nestjs/microservices'),
    '@nestjs/core': read('@nestjs/core'),
    'nestjs-qt-transport': (
      JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }
    ).version,
  };
}

interface Machine {
  date: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  versions: Record<string, string>;
  settings: Settings & { repetitions: number; quick: boolean };
  seconds: number;
  /** os.loadavg() when the run started and when it ended (other work on the machine). */
  loadAverage?: { start: number[]; end: number[] };
  /** Where the transports table's processes ran (processes.ts, choosePinning). */
  pinning?: string;
}

function render(machine: Machine, table: Row[], scaling?: ScalingReport): string {
  const settings = machine.settings;
  const quick = settings.quick;
  const md: string[] = [];
  md.push(`# Benchmark${quick ? ' (quick)' : ''}`);
  md.push('');
  md.push(
    `${machine.date} · ${machine.cpu} · ${machine.cores} cores · ${machine.memoryGiB} GiB · ${machine.platform}`,
  );
  md.push(
    `Node ${machine.versions.node} · @nestjs/microservices ${machine.versions['@nestjs/microservices']} · nestjs-qt-transport ${machine.versions['nestjs-qt-transport']}`,
  );
  if (machine.loadAverage) {
    const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(', ');
    md.push(
      `Load average (1, 5, 15 min) at the start: ${la(machine.loadAverage.start)}; at the end: ${la(machine.loadAverage.end)}`,
    );
  }
  md.push(
    `Each figure: median of ${settings.repetitions} repetitions (min–max). Throughput phases ${settings.durationMs} ms, ` +
      `~100-byte JSON payload; ${settings.events} events; server and client in separate processes on loopback. ` +
      'Ratios: this transport / Nest TCP.',
  );
  if (machine.pinning) md.push(machine.pinning);
  md.push(
    "CPU per request: each process's user + system time over the phase, every thread " +
      '(client: process.cpuUsage(); server: /proc/<pid>/stat, in clock ticks), divided by the ' +
      'requests answered; per event: by the events sent, over the whole events phase. ' +
      "Large payloads: this transport's server and clients allow 128 MiB frames; Nest's " +
      'default limit (128 Mi characters) already holds 64 MiB.',
  );
  md.push('');
  const kinds = KINDS.filter((k) => table.some((row) => row.values[k]));
  md.push(
    `| figure | ${kinds.map((k) => LABELS[k]).join(' | ')} | TCP / Nest | local / Nest | TLS / Nest TLS |`,
  );
  md.push(`|---|${kinds.map(() => '---').join('|')}|---|---|---|`);
  for (const row of table) {
    md.push(
      `| ${row.name} (${row.unit}) | ${kinds.map((k) => cell(row.values[k])).join(' | ')} | ${ratio(row, 'qt-tcp')} | ${ratio(row, 'qt-local')} | ${ratio(row, 'qt-tls', 'nest-tls')} |`,
    );
  }
  md.push('');
  md.push(
    `Targets (issue 19): medians of ${settings.repetitions} interleaved repetitions; "met" compares ` +
      `the medians${settings.repetitions < 3 ? ' (fewer than 3 repetitions: not a verdict)' : ''}:`,
  );
  md.push('');
  md.push(...targets(table));
  if (scaling) md.push('', ...renderScaling(scaling));
  return md.join('\n') + '\n';
}

async function main(): Promise<void> {
  const from = process.argv.indexOf('--from');
  if (from >= 0) {
    // Re-renders a results file (e.g. after the report format changed), without measuring.
    const saved = JSON.parse(fs.readFileSync(process.argv[from + 1], 'utf8')) as {
      machine: Machine;
      rows: Row[];
      scaling?: ScalingReport;
    };
    process.stdout.write(render(saved.machine, saved.rows, saved.scaling));
    return;
  }
  const results: Record<Kind, ClientResult[]> = {
    'qt-tcp': [],
    'qt-local': [],
    'nest-tcp': [],
    'raw-net': [],
    'raw-unix': [],
    'qt-tls': [],
    'nest-tls': [],
  };
  // Certificates for the TLS kinds, shared by their server and client processes.
  const pki = makeBenchPki();
  process.env.QT_BENCH_PKI = pki;
  process.once('exit', () => fs.rmSync(pki, { recursive: true, force: true }));
  const scalingResults: Record<Side, ScalingResult[]> = {
    'first-1': [],
    'balanced-1': [],
    'balanced-2': [],
    'cluster-2': [],
  };
  if (someKinds?.length === 0) throw new Error(`--kinds wants some of ${KINDS.join(', ')}`);
  const notes = new Set<string>();
  const started = Date.now();
  const loadAtStart = os.loadavg();
  if (!scalingOnly) log(pinning.text);
  for (let rep = 1; rep <= REPETITIONS; rep++) {
    for (const kind of scalingOnly ? [] : (someKinds ?? KINDS)) {
      log(`repetition ${rep}/${REPETITIONS}: ${LABELS[kind]}`);
      results[kind].push(await measure(kind));
    }
    if (!someKinds) await measureScaling(rep, scalingResults, notes);
  }
  const table = rows(results);
  const scalingTable = scalingRows(scalingResults);
  const scaling: ScalingReport = {
    settings: scalingSettings,
    rows: scalingTable,
    model: scalingModel(scalingTable, scalingSettings.cores),
    notes: [...notes],
  };
  const machine = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()}`,
    versions: versions(),
    settings: { ...settings, repetitions: REPETITIONS, quick },
    seconds: Math.round((Date.now() - started) / 1000),
    loadAverage: { start: loadAtStart, end: os.loadavg() },
    pinning: pinning.text,
  };
  if (scalingOnly) {
    process.stdout.write(renderScaling(scaling).join('\n') + '\n');
    log(`scaling only, nothing written (${machine.seconds} s)`);
    return;
  }
  if (someKinds) {
    process.stdout.write(render(machine, table));
    log(`${someKinds.join(', ')} only, nothing written (${machine.seconds} s)`);
    return;
  }
  const markdown = render(machine, table, scaling);

  const outDir = path.join(root, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const base = quick ? 'quick' : 'latest';
  fs.writeFileSync(path.join(outDir, `${base}.md`), markdown);
  fs.writeFileSync(
    path.join(outDir, `${base}.json`),
    JSON.stringify(
      { machine, rows: table, raw: results, scaling: { ...scaling, raw: scalingResults } },
      null,
      2,
    ) + '\n',
  );
  process.stdout.write(markdown);
  log(`written: bench/results/${base}.md and ${base}.json (${machine.seconds} s)`);
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
