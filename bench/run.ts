/**
 * The benchmark: the same Nest controller behind this transport (TCP and local socket),
 * Nest's Transport.TCP and a raw `net` echo, each server and client in its own process, on
 * loopback. Every figure is the median of 3 repetitions (kinds interleaved), with the
 * spread; ratios are this transport's figure over Nest's TCP transport's. Each repetition
 * also measures the scaling figures (scaling.ts): one balancing ClientQt against one and
 * two server processes, and against two node:cluster workers.
 *
 *   npm run bench              full run (a few minutes)
 *   npm run bench -- --quick   short phases, 1 and 16 MiB payloads (about two minutes; CI)
 *   --balancing round-robin    the scaling figures' balancing mode (default least-pending)
 *   --no-cluster               without the cluster workers
 *   --scaling-only             only the scaling figures, printed (no results file written)
 *   --from <results.json>      re-renders a results file, without measuring
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from '../sample/common/free-port.js';
import type { ClientResult, Settings } from './client.js';
import { cell, figure, type Figure } from './figures.js';
import { KINDS, LABELS, type Kind } from './kinds.js';
import { makeBenchPki } from './pki.js';
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

/** Runs `script` in a child process; resolves its stdout lines. */
function run(
  script: string,
  args: string[],
  until?: (line: string) => boolean,
): {
  lines: Promise<string[]>;
  kill: () => void;
  /** Resolves the first line `until` accepts. */
  ready: Promise<string>;
} {
  const ext = path.extname(fileURLToPath(import.meta.url));
  const child = spawn(
    process.execPath,
    [...process.execArgv, path.join(here, `${script}${ext}`), ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  let buffered = '';
  let stderr = '';
  let markReady: (line: string) => void = () => undefined;
  const ready = new Promise<string>((resolve) => (markReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      if (until?.(line)) markReady(line);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<string[]>((resolve, reject) => {
    child.once('exit', (code) => {
      if (code === 0 || child.killed) resolve(lines);
      else
        reject(new Error(`${script} ${args[0]} exited with ${code}: ${stderr.trim().slice(-500)}`));
    });
  });
  return { lines: done, kill: () => child.kill('SIGTERM'), ready };
}

interface StartedServer {
  /** The server's ready line: `pid`, and `workers` for a cluster primary. */
  readyLine: { pid: number; workers?: number[] };
  stop: () => Promise<void>;
}

/** Starts a server process (bench/server.ts) and waits for its ready line. */
async function startServer(
  kind: Kind,
  address: string,
  extra: string[] = [],
): Promise<StartedServer> {
  const server = run('server', [kind, address, ...extra], (line) => line.startsWith('{"ready"'));
  const serverExit = server.lines.catch((err: unknown) => {
    throw err;
  });
  const line = await Promise.race([
    server.ready,
    serverExit.then(() => Promise.reject(new Error(`${kind} server stopped`))),
  ]);
  return {
    readyLine: JSON.parse(line) as StartedServer['readyLine'],
    stop: async () => {
      server.kill();
      await server.lines.catch(() => undefined);
    },
  };
}

async function measure(kind: Kind): Promise<ClientResult> {
  const address =
    kind === 'qt-local'
      ? `qt-bench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
      : String(await freePort());
  const server = await startServer(kind, address);
  try {
    const client = run('client', [kind, address, JSON.stringify(settings)]);
    const lines = await client.lines;
    return JSON.parse(lines.at(-1)!) as ClientResult;
  } finally {
    await server.stop();
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
  for (const c of settings.concurrency) {
    pick(`requests/s at ${c} in flight`, 'req/s', true, (r) => r.throughput[String(c)]?.rps);
    pick(`p50 latency at ${c} in flight`, 'ms', false, (r) => r.throughput[String(c)]?.p50);
    pick(`p99 latency at ${c} in flight`, 'ms', false, (r) => r.throughput[String(c)]?.p99);
  }
  pick('events delivered/s (counted by the server)', 'events/s', true, (r) => r.eventsPerSec);
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
  return out.map((row) => ({
    ...row,
    values: Object.fromEntries(
      Object.entries(row.values).filter(([, f]) => !Number.isNaN(f!.median)),
    ),
  }));
}

function ratio(row: Row, kind: Kind, base: Kind = 'nest-tcp'): string {
  const mine = row.values[kind]?.median;
  const nest = row.values[base]?.median;
  if (mine === undefined || nest === undefined || nest === 0) return '—';
  return `${(mine / nest).toFixed(2)}×`;
}

/** The targets, each as a measured ratio (medians) and whether it is met. */
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
  for (const c of [16, 256]) {
    add(
      `TCP requests/s at ${c} in flight ≥ 2.0× Nest TCP`,
      get(`requests/s at ${c} in flight`, 'qt-tcp'),
      get(`requests/s at ${c} in flight`, 'nest-tcp'),
      2,
      true,
    );
    add(
      `local requests/s at ${c} in flight ≥ 1.2× this transport's TCP`,
      get(`requests/s at ${c} in flight`, 'qt-local'),
      get(`requests/s at ${c} in flight`, 'qt-tcp'),
      1.2,
      true,
    );
  }
  add(
    'TCP p99 at 16 in flight ≤ 0.3× Nest TCP',
    get('p99 latency at 16 in flight', 'qt-tcp'),
    get('p99 latency at 16 in flight', 'nest-tcp'),
    0.3,
    false,
  );
  add(
    'events/s ≥ 3× Nest TCP',
    get('events delivered/s (counted by the server)', 'qt-tcp'),
    get('events delivered/s (counted by the server)', 'nest-tcp'),
    3,
    true,
  );
  add(
    '16 MiB Buffer (CBOR) round trip ≤ 0.2× Nest 16 MiB JSON',
    get('16 MiB Buffer round trip (CBOR)', 'qt-tcp'),
    get('16 MiB JSON string round trip', 'nest-tcp'),
    0.2,
    false,
  );
  add(
    '16 MiB JSON round trip ≤ 1.0× Nest',
    get('16 MiB JSON string round trip', 'qt-tcp'),
    get('16 MiB JSON string round trip', 'nest-tcp'),
    1,
    false,
  );
  add(
    'server RSS after the throughput phase ≤ 1.0× Nest',
    get('server RSS after the throughput phase', 'qt-tcp'),
    get('server RSS after the throughput phase', 'nest-tcp'),
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
  md.push('');
  md.push(
    `| figure | ${KINDS.map((k) => LABELS[k]).join(' | ')} | TCP / Nest | local / Nest | TLS / Nest TLS |`,
  );
  md.push(`|---|${KINDS.map(() => '---').join('|')}|---|---|---|`);
  for (const row of table) {
    md.push(
      `| ${row.name} (${row.unit}) | ${KINDS.map((k) => cell(row.values[k])).join(' | ')} | ${ratio(row, 'qt-tcp')} | ${ratio(row, 'qt-local')} | ${ratio(row, 'qt-tls', 'nest-tls')} |`,
    );
  }
  md.push('');
  md.push('Targets (medians; "met" compares the medians):');
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
  const notes = new Set<string>();
  const started = Date.now();
  const loadAtStart = os.loadavg();
  for (let rep = 1; rep <= REPETITIONS; rep++) {
    for (const kind of scalingOnly ? [] : KINDS) {
      log(`repetition ${rep}/${REPETITIONS}: ${LABELS[kind]}`);
      results[kind].push(await measure(kind));
    }
    await measureScaling(rep, scalingResults, notes);
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
  };
  if (scalingOnly) {
    process.stdout.write(renderScaling(scaling).join('\n') + '\n');
    log(`scaling only, nothing written (${machine.seconds} s)`);
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
