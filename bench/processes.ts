/**
 * The processes of the benchmark: starting a bench script (server.ts, client.ts, ...) as a
 * child process, reading its stdout lines, and where it runs: pinned to one CPU with
 * `taskset -c` (util-linux), or under another wrapper such as `strace` (syscalls.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Kind } from './kinds.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ext = path.extname(fileURLToPath(import.meta.url));

export interface RunOptions {
  /** `ready` resolves the first stdout line this accepts. */
  until?: (line: string) => boolean;
  /** A command the node process runs under, e.g. `['taskset', '-c', '1']`; none by default. */
  wrapper?: string[];
}

export interface Running {
  /** Resolves every stdout line once the process has ended. */
  lines: Promise<string[]>;
  /** Resolves the first line `until` accepts. */
  ready: Promise<string>;
  /**
   * Sends SIGTERM to `pid` (default: the spawned process) and counts the exit that follows as
   * a normal end. Under a wrapper that stays in between (strace), pass node's own pid.
   */
  stop: (pid?: number) => void;
}

/** Runs bench/`script` in a new node process (under `wrapper`); resolves its stdout lines. */
export function run(script: string, args: string[], options: RunOptions = {}): Running {
  const node = [process.execPath, ...process.execArgv, path.join(here, `${script}${ext}`), ...args];
  const [command, ...rest] = [...(options.wrapper ?? []), ...node];
  const child = spawn(command, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  let stderr = '';
  let stopping = false;
  let markReady: (line: string) => void = () => undefined;
  const ready = new Promise<string>((resolve) => (markReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      if (options.until?.(line)) markReady(line);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<string[]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0 || stopping) resolve(lines);
      else
        reject(
          new Error(
            `${script} ${args[0]} exited with ${code ?? signal}: ${stderr.trim().slice(-500)}`,
          ),
        );
    });
  });
  return {
    lines: done,
    ready,
    stop: (pid) => {
      stopping = true;
      try {
        if (pid === undefined) child.kill('SIGTERM');
        else process.kill(pid, 'SIGTERM');
      } catch {
        // Already gone: its exit resolves `lines`.
      }
    },
  };
}

export interface StartedServer {
  /** The server's ready line: `pid` (node's own), and `workers` for a cluster primary. */
  readyLine: { pid: number; workers?: number[] };
  stop: () => Promise<void>;
}

/** Starts a server process (bench/server.ts) and waits for its ready line. */
export async function startServer(
  kind: Kind,
  address: string,
  extra: string[] = [],
  wrapper?: string[],
): Promise<StartedServer> {
  const server = run('server', [kind, address, ...extra], {
    until: (line) => line.startsWith('{"ready"'),
    wrapper,
  });
  const line = await Promise.race([
    server.ready,
    server.lines.then(() => Promise.reject(new Error(`${kind} server stopped`))),
  ]);
  const readyLine = JSON.parse(line) as StartedServer['readyLine'];
  return {
    readyLine,
    stop: async () => {
      // node's pid, not the wrapper's: taskset has become node, strace stays in between.
      server.stop(readyLine.pid);
      await server.lines.catch(() => undefined);
    },
  };
}

/** Where the server and client processes of the transports table run. */
export interface Pinning {
  /** The CPU of the server process (every thread of it), or null when not pinned. */
  server: number | null;
  /** The CPU of the client process, or null when not pinned. */
  client: number | null;
  /** One sentence for the results header: what was done, or why not. */
  text: string;
}

/** The CPUs in a list such as "0-3,6" (taskset's and /proc's form). */
function cpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(',')) {
    const [from, to] = part.split('-').map(Number);
    for (let cpu = from; cpu <= (to ?? from); cpu++) cpus.push(cpu);
  }
  return cpus.filter((cpu) => Number.isInteger(cpu));
}

/**
 * Pins the client to the first CPU this process may use and the server to the second, with
 * `taskset -c`; unpinned when asked to, or (with the reason in `text`) when taskset is
 * missing or fewer than two CPUs are allowed.
 */
export function choosePinning(wanted: boolean): Pinning {
  const unpinned = (why: string): Pinning => ({ server: null, client: null, text: why });
  if (!wanted) return unpinned('Processes not pinned (--unpinned).');
  if (process.platform !== 'linux') {
    return unpinned(`Processes not pinned: taskset is Linux only (this is ${process.platform}).`);
  }
  const probe = spawnSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error?.message ?? probe.stderr.trim();
    return unpinned(
      `Processes not pinned: taskset did not run (${why}; it is in util-linux: apt-get install util-linux).`,
    );
  }
  // "pid 123's current affinity list: 0-1"
  const allowed = cpuList(probe.stdout.slice(probe.stdout.lastIndexOf(':') + 1));
  if (allowed.length < 2) {
    return unpinned(`Processes not pinned: only CPU ${allowed.join(',')} is allowed here.`);
  }
  const [client, server] = allowed;
  const check = spawnSync('taskset', ['-c', String(server), 'true'], { encoding: 'utf8' });
  if (check.error || check.status !== 0) {
    const why = check.error?.message ?? check.stderr.trim();
    return unpinned(`Processes not pinned: taskset -c ${server} failed (${why}).`);
  }
  return {
    server,
    client,
    text:
      `Processes pinned with taskset -c: each server on CPU ${server}, each client on CPU ${client} ` +
      '(every thread of the process, its GC helpers included); the scaling figures unpinned.',
  };
}

/** The wrapper that runs a process on `cpu`, or none. */
export function onCpu(cpu: number | null): string[] | undefined {
  return cpu === null ? undefined : ['taskset', '-c', String(cpu)];
}
