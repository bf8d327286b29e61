/**
 * Syscalls per request: the benchmark's server and client (server.ts, client.ts) each run
 * under `strace -f -c` while the client makes a fixed number of echo requests, one at a
 * time; the table gives, per kind and process, the syscalls per request (every thread) and
 * the six most frequent. It is evidence for making a request cheaper, not a speed figure:
 * strace slows every syscall down, so nothing here is timed.
 *
 * Each kind runs twice, with the same warm-up: once with no calls after it and once with
 * `calls`. The counts of the first are taken from those of the second, so that start-up
 * (loading modules, Nest's bootstrap, connecting) and shutdown fall out, and what is left
 * is divided by `calls`. Processes are not pinned (counts do not depend on it).
 *
 *   npm run bench:syscalls                 20,000 calls per kind after 2,000 warm-up calls
 *   --calls <n>  --warmup <n>              other counts
 *   --kinds qt-tcp,raw-unix                some of qt-tcp, qt-local, nest-tcp, raw-net, raw-unix
 *
 * Needs strace (apt-get install strace) and permission to trace child processes (ptrace); without
 * them it says why and exits 0. Writes bench/results/syscalls.md and prints it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from '../sample/common/free-port.js';
import { fmt } from './figures.js';
import { LABELS, type Kind } from './kinds.js';
import { run, startServer } from './processes.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');

const TRACED: Kind[] = ['qt-tcp', 'qt-local', 'nest-tcp', 'raw-net', 'raw-unix'];
const TOP = 6;

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback;
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} wants a whole number`);
  return value;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Syscall name → calls, from an `strace -c` summary. */
type Counts = Map<string, number>;

/**
 * Reads an `strace -c` summary: with `-U name,calls` its rows are "name calls"; in the
 * default layout "% time, seconds, usecs/call, calls, [errors,] syscall". The total row is
 * left out (the caller sums).
 */
function parseSummary(text: string): Counts {
  const counts: Counts = new Map();
  let header: string[] | null = null;
  for (const line of text.split('\n')) {
    const cells = line.trim().split(/\s+/);
    if (header === null) {
      if (cells.includes('syscall')) header = cells;
      continue;
    }
    if (cells.length < 2 || cells[0].startsWith('-')) continue;
    const nameFirst = header[0] === 'syscall';
    const name = nameFirst ? cells[0] : cells[cells.length - 1];
    const calls = Number(nameFirst ? cells[1] : cells[3]);
    if (name === 'total' || !Number.isFinite(calls)) continue;
    counts.set(name, (counts.get(name) ?? 0) + calls);
  }
  return counts;
}

/**
 * The strace command line to run a process under (summary into `file`), or why there is
 * none: strace missing, or not allowed to trace (no ptrace in this container).
 */
function straceWrapper(): { wrapper: (file: string) => string[]; version: string } | string {
  const version = spawnSync('strace', ['-V'], { encoding: 'utf8' });
  if (version.error) {
    return `strace not found (${version.error.message}); install it with apt-get install strace`;
  }
  const flags = (file: string): string[] => ['-f', '-c', '-U', 'name,calls', '-o', file];
  const plain = (file: string): string[] => ['-f', '-c', '-o', file];
  for (const make of [flags, plain]) {
    const probe = spawnSync('strace', [...make(os.devNull), 'true'], { encoding: 'utf8' });
    if (!probe.error && probe.status === 0) {
      return {
        wrapper: (file) => ['strace', ...make(file)],
        version: version.stdout.split('\n')[0].trim(),
      };
    }
  }
  const probe = spawnSync('strace', ['-c', '-o', os.devNull, 'true'], { encoding: 'utf8' });
  return `strace cannot trace here (${probe.stderr.trim().split('\n')[0] || `exit ${probe.status}`})`;
}

interface Traced {
  server: Counts;
  client: Counts;
}

/** One server and one client of `kind`, both under strace: their counts. */
async function trace(
  kind: Kind,
  calls: number,
  warmup: number,
  dir: string,
  wrapper: (file: string) => string[],
): Promise<Traced> {
  const tag = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const address =
    kind === 'qt-local'
      ? `qt-bench-${tag}`
      : kind === 'raw-unix'
        ? path.join(os.tmpdir(), `qt-bench-raw-${tag}.sock`)
        : String(await freePort());
  const serverFile = path.join(dir, `${kind}-${calls}-server.txt`);
  const clientFile = path.join(dir, `${kind}-${calls}-client.txt`);
  const server = await startServer(kind, address, [], wrapper(serverFile));
  try {
    const client = run(
      'client',
      [kind, address, '--calls', String(calls), '--warmup', String(warmup)],
      {
        wrapper: wrapper(clientFile),
      },
    );
    await client.lines;
  } finally {
    await server.stop();
    if (kind === 'raw-unix') fs.rmSync(address, { force: true });
  }
  return {
    server: parseSummary(fs.readFileSync(serverFile, 'utf8')),
    client: parseSummary(fs.readFileSync(clientFile, 'utf8')),
  };
}

/** Per request: the measured run's counts less the baseline's, over `calls`. */
function perRequest(measured: Counts, baseline: Counts, calls: number): Counts {
  const out: Counts = new Map();
  for (const [name, n] of measured) out.set(name, (n - (baseline.get(name) ?? 0)) / calls);
  for (const [name, n] of baseline) if (!measured.has(name)) out.set(name, -n / calls);
  return out;
}

function row(kind: Kind, processName: string, counts: Counts): string {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const top = [...counts]
    .filter(([, n]) => n >= 0.005) // what fmt shows as 0.00 is start-up noise, not the request's
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(([name, n]) => `${name} ${fmt(n)}`)
    .join(' · ');
  return `| ${LABELS[kind]} | ${processName} | ${fmt(total)} | ${top} |`;
}

async function main(): Promise<void> {
  const calls = option('--calls', 20000);
  const warmup = option('--warmup', 2000);
  const kindsAt = process.argv.indexOf('--kinds');
  const kinds =
    kindsAt >= 0
      ? (process.argv[kindsAt + 1].split(',') as Kind[]).filter((k) => TRACED.includes(k))
      : TRACED;
  if (calls === 0 || kinds.length === 0) throw new Error('nothing to measure');
  const strace = straceWrapper();
  if (typeof strace === 'string') {
    log(`syscall counts not measured: ${strace}`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-bench-strace-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const started = Date.now();
  const lines: string[] = [];
  for (const kind of kinds) {
    log(`${LABELS[kind]}: ${warmup} warm-up calls, then 0 and ${calls} calls, under strace`);
    const baseline = await trace(kind, 0, warmup, dir, strace.wrapper);
    const measured = await trace(kind, calls, warmup, dir, strace.wrapper);
    lines.push(row(kind, 'server', perRequest(measured.server, baseline.server, calls)));
    lines.push(row(kind, 'client', perRequest(measured.client, baseline.client, calls)));
  }
  const md = [
    '# Syscalls per request',
    '',
    `${new Date().toISOString()} · ${strace.version} · Node ${process.version} · ${os.cpus()[0]?.model ?? 'unknown'} · ${os.type()} ${os.release()}`,
    `${calls} echo requests (~100-byte JSON), one at a time, after ${warmup} warm-up calls; each ` +
      'process under `strace -f -c` (every thread), less a run with the warm-up only. ' +
      `Per request: syscalls of that process, in total and the ${TOP} most frequent.`,
    '',
    '| kind | process | syscalls / request | most frequent (per request) |',
    '|---|---|---|---|',
    ...lines,
    '',
  ].join('\n');
  const outDir = path.join(root, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'syscalls.md'), md);
  process.stdout.write(md);
  log(`written: bench/results/syscalls.md (${Math.round((Date.now() - started) / 1000)} s)`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `syscall counts failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
