/**
 * Helpers of the reliability specs (floods, faults, netns): descriptor and memory readings
 * of a child process from /proc, a sampler of the largest descriptor count, outcomes of
 * requests bounded by a deadline, and a figures line for docs/reliability.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { firstValueFrom, type Observable } from 'rxjs';

import type { ChildRun } from '../helpers/child-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const RELIABILITY_FIXTURES = path.join(here, 'fixtures');

/** Open descriptors of process `pid` (entries of /proc/<pid>/fd); -1 if it is gone. */
export function countFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** Resident memory of process `pid` in KiB (VmRSS), or -1. */
export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

/** Samples a process's descriptor count every `everyMs` and keeps the largest. */
export class FdSampler {
  private maxSeen = 0;
  private samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 5,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    // A test that fails before stop() must not keep the test process alive.
    this.timer.unref();
  }

  /** Takes one reading now (also called by the timer); returns it. */
  sample(): number {
    const n = countFds(this.pid);
    this.samples++;
    if (n > this.maxSeen) this.maxSeen = n;
    return n;
  }

  max(): number {
    return this.maxSeen;
  }

  count(): number {
    return this.samples;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Prints one line of figures, tagged so that it can be collected for docs/reliability.md. */
export function figures(test: string, values: Record<string, unknown>): void {
  console.log(`[reliability] ${test}: ${JSON.stringify(values)}`);
}

/** How a request ended. */
export type Outcome<T> =
  | { kind: 'ok'; value: T; ms: number }
  | { kind: 'error'; error: unknown; ms: number }
  | { kind: 'hung'; ms: number };

/** Subscribes to `source` for its first value; 'hung' if nothing settles within `deadlineMs`. */
export function boundedOutcome<T>(source: Observable<T>, deadlineMs: number): Promise<Outcome<T>> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    firstValueFrom(source).then(
      (value): Outcome<T> => ({ kind: 'ok', value, ms: Date.now() - started }),
      (error: unknown): Outcome<T> => ({ kind: 'error', error, ms: Date.now() - started }),
    ),
    new Promise<Outcome<T>>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'hung', ms: Date.now() - started }), deadlineMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** `ClassName:code` of an error, e.g. 'QtConnectionError:RemoteHostClosedError'. */
export function errorLabel(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.constructor.name}:${typeof code === 'string' ? code : '-'}`;
  }
  return `non-Error:${JSON.stringify(error)}`;
}

/** Adds one to `counts[key]`. */
export function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** What became of one raw connection attempt. */
export interface RawAttempt {
  readonly socket: net.Socket;
  /** Resolves once the attempt connected, failed, or was closed. */
  readonly settled: Promise<void>;
  connected: boolean;
  /** Saw 'end' (the server closed its side cleanly). */
  ended: boolean;
  closed: boolean;
  errorCode: string | null;
  /** Bytes received. */
  readonly received: Buffer[];
}

/** Starts a raw `node:net` connection attempt that sends nothing; errors are recorded, not thrown. */
export function rawAttempt(options: net.NetConnectOpts): RawAttempt {
  const socket = net.createConnection(options);
  const attempt: RawAttempt = {
    socket,
    settled: undefined as unknown as Promise<void>,
    connected: false,
    ended: false,
    closed: false,
    errorCode: null,
    received: [],
  };
  socket.on('data', (chunk: Buffer) => attempt.received.push(chunk));
  socket.on('error', (err: NodeJS.ErrnoException) => {
    attempt.errorCode = err.code ?? err.message;
  });
  socket.on('end', () => {
    attempt.ended = true;
  });
  (attempt as { settled: Promise<void> }).settled = new Promise<void>((resolve) => {
    socket.once('connect', () => {
      attempt.connected = true;
      resolve();
    });
    socket.once('close', () => {
      attempt.closed = true;
      resolve();
    });
  });
  return attempt;
}

/**
 * Writes `payload` on a connected attempt and waits until `answered()` holds for what it
 * received, or the connection closes, or `ms` pass: 'answered', 'closed' or 'hung'.
 */
export async function probe(
  attempt: RawAttempt,
  payload: Buffer,
  answered: (received: Buffer) => boolean,
  ms: number,
): Promise<'answered' | 'closed' | 'hung'> {
  if (attempt.closed) return 'closed';
  const socket = attempt.socket;
  socket.write(payload);
  const deadline = Date.now() + ms;
  for (;;) {
    if (answered(Buffer.concat(attempt.received))) return 'answered';
    if (attempt.closed) return 'closed';
    const left = deadline - Date.now();
    if (left <= 0) return 'hung';
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        socket.off('data', done);
        socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, left);
      socket.on('data', done);
      socket.on('close', done);
    });
  }
}

/**
 * Reads the child's stdout lines until `stop` says so or `ms` pass; calls `onLine` with each
 * parsed JSON line; ends when `onLine` returns true, throws after `ms`.
 */
export async function readJsonLines(
  run: ChildRun,
  onLine: (line: Record<string, unknown>) => boolean | void,
  ms: number,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`readJsonLines: condition not met within ${ms} ms`);
    const line = await run.nextLine(left);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (onLine(parsed) === true) return;
  }
}
