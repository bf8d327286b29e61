/**
 * Child processes for tests: reads their stdout line by line, keeps their stderr for error
 * messages, and stops them (SIGKILL by default) and waits until they have exited, so a test
 * can register `stop` with its clean-up and never leave a process behind.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { CHILD_START_MS, budget } from './time-budget.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The directory of the test fixtures. */
export const fixturesDir = path.resolve(here, '../fixtures');

/**
 * `node --import register-ts.mjs`: lets a child Node import the library's TypeScript
 * sources, as the JavaScript that Jest's global set-up transpiled before the tests started
 * (fixtures/ts-cache.mjs), so a child's start-up does not wait for the compiler.
 */
export function nodeWithTsArgs(script: string, ...args: string[]): string[] {
  return ['--import', path.join(fixturesDir, 'register-ts.mjs'), script, ...args];
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildRun {
  readonly proc: ChildProcess;
  /**
   * Resolves with the next line of stdout (without the newline); rejects after `ms`
   * (CHILD_START_MS by default) or at its end.
   */
  nextLine(ms?: number): Promise<string>;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves once the process has exited. */
  readonly exited: Promise<ChildExit>;
  /** True until the process has exited. */
  running(): boolean;
  /** Sends `signal` (SIGKILL by default) if it still runs, and waits (a 5 s budget) until it has exited. */
  stop(signal?: NodeJS.Signals): Promise<ChildExit>;
}

/** Spawns `command` with piped stdio. */
export function startChild(command: string, args: string[], options: SpawnOptions = {}): ChildRun {
  const proc = spawn(command, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let buffered = '';
  const lines: string[] = [];
  let ended = false;
  let wake: (() => void) | null = null;
  let exitInfo: ChildExit | null = null;

  const exited = new Promise<ChildExit>((resolve) => {
    proc.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    proc.once('error', (err) => {
      stderr += `spawn error: ${err.message}\n`;
      exitInfo = { code: null, signal: null };
      ended = true;
      wake?.();
      resolve(exitInfo);
    });
  });
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  proc.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let i: number;
    while ((i = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
    }
    wake?.();
  });
  proc.stdout!.on('end', () => {
    ended = true;
    wake?.();
  });
  // A child that exits early must not make the test's writes throw EPIPE.
  proc.stdin!.on('error', () => undefined);

  const describe = (): string =>
    `${path.basename(command)} ${args.map((a) => (a.length > 60 ? a.slice(0, 57) + '...' : a)).join(' ')}`;

  return {
    proc,
    exited,
    stderr: () => stderr,
    running: () => exitInfo === null,
    async nextLine(ms = CHILD_START_MS): Promise<string> {
      const deadline = Date.now() + ms;
      while (lines.length === 0) {
        if (ended) {
          throw new Error(`${describe()}: stdout ended without a line; stderr: ${stderr}`);
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(`${describe()}: no line within ${ms} ms; stderr: ${stderr}`);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            wake = null;
            resolve();
          }, left);
          wake = () => {
            clearTimeout(timer);
            wake = null;
            resolve();
          };
        });
      }
      return lines.shift()!;
    },
    async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<ChildExit> {
      if (exitInfo === null && proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
      }
      let timer: NodeJS.Timeout | undefined;
      const ms = budget(5000);
      const result = await Promise.race([
        exited,
        new Promise<ChildExit>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${describe()} (pid ${proc.pid}) did not exit within ${ms} ms`)),
            ms,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      proc.stdin?.destroy();
      proc.stdout?.destroy();
      proc.stderr?.destroy();
      return result;
    },
  };
}
