/**
 * The benchmark: the same Nest controller behind this transport (TCP and local socket),
 * Nest's Transport.TCP and a raw `net` echo, each server and client in its own process, on
 * loopback. Every figure is the median of 3 repetitions (kinds interleaved), with the
 * spread; ratios are this transport's figure over Nest's TCP transport's.
 *
 *   npm run bench              full run (a few minutes)
 *   npm run bench -- --quick   short phases, 1 and 16 MiB payloads (under two minutes; CI)
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from '../sample/common/free-port.js';
import type { ClientResult, Settings } from './client.js';
import { KINDS, LABELS, type Kind } from './kinds.js';
import { makeBenchPki } from './pki.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const quick = process.argv.includes('--quick');
const REPETITIONS = 3;

const settings: Settings = quick
  ? { durationMs: 700, concurrency: [1, 16, 256], events: 20000, payloadMiB: [1, 16] }
  : { durationMs: 3000, concurrency: [1, 16, 256], events: 100000, payloadMiB: [1, 16, 64] };

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
  ready: Promise<void>;
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
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      if (until?.(line)) markReady();
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

async function measure(kind: Kind): Promise<ClientResult> {
  const address =
    kind === 'qt-local'
      ? `qt-bench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
      : String(await freePort());
  const server = run('server', [kind, address], (line) => line.startsWith('{"ready"'));
  const serverExit = server.lines.catch((err: unknown) => {
    throw err;
  });
  await Promise.race([
    server.ready,
    serverExit.then(() => Promise.reject(new Error(`${kind} server stopped`))),
  ]);
  try {
    const client = run('client', [kind, address, JSON.stringify(settings)]);
    const lines = await client.lines;
    return JSON.parse(lines.at(-1)!) as ClientResult;
  } finally {
    server.kill();
    await server.lines.catch(() => undefined);
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

interface Figure {
  median: number;
  min: number;
  max: number;
}

function figure(values: number[]): Figure {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
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

function fmt(n: number): string {
  if (n >= 1000) return Math.round(n).toLocaleString('en-US');
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function cell(f: Figure | undefined): string {
  if (!f) return '—';
  return `${fmt(f.median)} (${fmt(f.min)}–${fmt(f.max)})`;
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
}

function render(machine: Machine, table: Row[]): string {
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
  return md.join('\n') + '\n';
}

async function main(): Promise<void> {
  const from = process.argv.indexOf('--from');
  if (from >= 0) {
    // Re-renders a results file (e.g. after the report format changed), without measuring.
    const saved = JSON.parse(fs.readFileSync(process.argv[from + 1], 'utf8')) as {
      machine: Machine;
      rows: Row[];
    };
    process.stdout.write(render(saved.machine, saved.rows));
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
  const started = Date.now();
  for (let rep = 1; rep <= REPETITIONS; rep++) {
    for (const kind of KINDS) {
      log(`repetition ${rep}/${REPETITIONS}: ${LABELS[kind]}`);
      results[kind].push(await measure(kind));
    }
  }
  const table = rows(results);
  const machine = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()}`,
    versions: versions(),
    settings: { ...settings, repetitions: REPETITIONS, quick },
    seconds: Math.round((Date.now() - started) / 1000),
  };
  const markdown = render(machine, table);

  const outDir = path.join(root, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const base = quick ? 'quick' : 'latest';
  fs.writeFileSync(path.join(outDir, `${base}.md`), markdown);
  fs.writeFileSync(
    path.join(outDir, `${base}.json`),
    JSON.stringify({ machine, rows: table, raw: results }, null, 2) + '\n',
  );
  process.stdout.write(markdown);
  log(`written: bench/results/${base}.md and ${base}.json (${machine.seconds} s)`);
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
