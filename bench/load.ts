/**
 * The request load every client process of the benchmark applies (client.ts for the
 * transports table, scaling-client.ts for the scaling figures): `concurrency` workers, each
 * sending the same ~100-byte 'echo' request again as soon as its reply arrives, for
 * `durationMs`.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

import { firstValueFrom, lastValueFrom, type Observable } from 'rxjs';

export interface ThroughputFigure {
  rps: number;
  p50: number;
  p99: number;
}

/** A phase's figure with what it took: requests answered and the phase's seconds. */
export interface ThroughputRun extends ThroughputFigure {
  requests: number;
  seconds: number;
}

export interface BenchClient {
  request(pattern: string, data: unknown): Promise<unknown>;
  emit(pattern: string, data: unknown): Promise<void>;
  close(): Promise<void>;
}

/** A client over Nest's ClientProxy API (this transport or Nest's TCP). */
export function proxyClient(client: {
  send(p: string, d: unknown): Observable<unknown>;
  emit(p: string, d: unknown): Observable<unknown>;
  connect(): Promise<unknown>;
  close(): unknown;
}): BenchClient {
  return {
    request: (p, d) => firstValueFrom(client.send(p, d)),
    emit: (p, d) =>
      lastValueFrom(client.emit(p, d), { defaultValue: undefined }).then(() => undefined),
    close: async () => {
      await client.close();
    },
  };
}

/** The p-th percentile of `sorted` (ascending). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * `concurrency` requests in flight for `durationMs`; each answered request's latency (ms) is
 * appended to `latencies`. Resolves the requests answered and the seconds it took (until the
 * last reply).
 */
export async function load(
  client: BenchClient,
  concurrency: number,
  durationMs: number,
  latencies: number[],
): Promise<{ requests: number; seconds: number }> {
  const payload = { text: 'x'.repeat(60), n: 42, ok: true };
  const before = latencies.length;
  const end = performance.now() + durationMs;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await client.request('echo', payload);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { requests: latencies.length - before, seconds: (performance.now() - start) / 1000 };
}

/** `concurrency` requests in flight for `durationMs`: requests/s and latency percentiles. */
export async function throughput(
  client: BenchClient,
  concurrency: number,
  durationMs: number,
): Promise<ThroughputRun> {
  const latencies: number[] = [];
  const { requests, seconds } = await load(client, concurrency, durationMs, latencies);
  latencies.sort((a, b) => a - b);
  return {
    rps: requests / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    requests,
    seconds,
  };
}

let userHz: number | undefined;

/**
 * Clock ticks per second of /proc's times (`getconf CLK_TCK`, read once); 100, the value on
 * every Linux port Node runs on, when getconf is missing.
 */
export function clockTicks(): number {
  if (userHz === undefined) {
    try {
      const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      userHz = Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
    } catch {
      userHz = 100;
    }
  }
  return userHz;
}

/**
 * CPU time (user + system, every thread) a process has used so far, in µs, from
 * /proc/<pid>/stat (to one clock tick, 10 ms at 100 per second); null where there is no /proc or no such process.
 */
export function processCpuMicros(pid: number): number | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return ((utime + stime) * 1e6) / clockTicks();
}

/**
 * CPU time the whole machine has spent busy so far (every core, every process: all but
 * idle and iowait), in µs, from /proc/stat; null where there is none.
 */
export function machineBusyMicros(): number | null {
  let stat: string;
  try {
    stat = fs.readFileSync('/proc/stat', 'utf8');
  } catch {
    return null;
  }
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return null;
  // user nice system idle iowait irq softirq steal (guest time is inside user already)
  const [user, nice, system, , , irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq + (steal ?? 0);
  return Number.isFinite(busy) ? (busy * 1e6) / clockTicks() : null;
}
