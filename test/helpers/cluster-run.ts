/**
 * A `node:cluster` primary started as a child process by a test, with its workers: reads
 * the primary's JSON lines, and stops the primary and every worker it reported by PID, so
 * that no process outlives its test even if the primary is killed first.
 */
import { readFileSync } from 'node:fs';

import { nodeWithTsArgs, startChild, type ChildRun } from './child-process.js';
import { CHILD_START_MS, budget } from './time-budget.js';

export interface ClusterRun {
  readonly run: ChildRun;
  /** The worker PIDs reported so far (they are stopped with the primary). */
  readonly workerPids: Set<number>;
  /**
   * The next JSON line whose `event` is `event` (other lines are skipped); rejects after
   * `ms`, by default the start-up of two processes (the primary, then a worker).
   */
  next(event: string, ms?: number): Promise<Record<string, unknown>>;
  /** Writes one command line to the primary's stdin. */
  command(line: string): void;
  /** Asks the primary to end its workers and exit, then kills whatever is left, by PID. */
  stop(): Promise<void>;
}

/** Starts `script` (a TypeScript fixture) as a cluster primary with `args`. */
export function startCluster(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): ClusterRun {
  const run = startChild(process.execPath, nodeWithTsArgs(script, ...args), { env });
  const workerPids = new Set<number>();
  const remember = (line: Record<string, unknown>): void => {
    if (typeof line.pid === 'number' && line.pid !== run.proc.pid) workerPids.add(line.pid);
    if (Array.isArray(line.pids)) for (const p of line.pids) workerPids.add(Number(p));
  };
  return {
    run,
    workerPids,
    async next(event: string, ms = 2 * CHILD_START_MS): Promise<Record<string, unknown>> {
      const deadline = Date.now() + ms;
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no "${event}" line within ${ms} ms: ${run.stderr()}`);
        const text = await run.nextLine(left);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue;
        }
        remember(line);
        if (line.event === event) return line;
      }
    },
    command(line: string): void {
      run.proc.stdin?.write(line + '\n');
    },
    async stop(): Promise<void> {
      if (run.running()) {
        run.proc.stdin?.write('exit\n');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          run.exited,
          new Promise((resolve) => (timer = setTimeout(resolve, budget(10000)))),
        ]).finally(() => clearTimeout(timer));
      }
      await run.stop();
      // A primary that exits by itself has ended its workers first; one that had to be
      // killed may leave some behind.
      for (const pid of workerPids) killWorker(pid, script);
    },
  };
}

/** SIGKILL to `pid` if it is still a process running `script` (never a reused PID). */
function killWorker(pid: number, script: string): void {
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(script)) return;
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
