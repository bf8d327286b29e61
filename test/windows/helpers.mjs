// Shared by the Windows tests (test/windows/*.test.mjs), which node.exe runs with its own
// test runner (node:test) against the built package in dist/: see
// scripts/deploy/windows-check.sh. Plain JavaScript, so that nothing has to be compiled on
// the Windows side; Jest never picks these files up (its testMatch is *.spec.ts).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * True under Wine: its prefix has Wine's own programs in system32 (real Windows has no
 * winecfg.exe). The tests use it only to tell a Wine difference from a defect.
 */
export const UNDER_WINE =
  process.platform === 'win32' &&
  existsSync(path.join(process.env.SystemRoot ?? 'C:\\windows', 'system32', 'winecfg.exe'));

/** Why the suites skip outside Windows (printed once, and node:test prints it per suite). */
const NOT_WINDOWS_REASON =
  'skipped: named pipes need a Windows process (node.exe); scripts/deploy/windows-check.sh runs these under Wine';

/** Suite option: these tests mean something only in a Windows process (node.exe). */
export const WINDOWS_ONLY = { skip: process.platform === 'win32' ? false : NOT_WINDOWS_REASON };
if (process.platform !== 'win32') console.log(NOT_WINDOWS_REASON);

let counter = 0;
/** A pipe name unique to this process and call. */
export function uniqueName(label) {
  return `qt-win-${process.pid}-${label}-${++counter}`;
}

/** Resolves once `condition()` is true; rejects with `what` after `ms`. Polls every 10 ms. */
export async function waitFor(condition, what, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Resolves the first emission of a Qt-port Signal (its arguments); rejects after `ms`. */
export function nextSignal(signal, what, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.disconnect(slot);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const slot = (...args) => {
      clearTimeout(timer);
      signal.disconnect(slot);
      resolve(args);
    };
    signal.connect(slot);
  });
}

/**
 * Runs `script` (a file in test/windows/fixtures) in a second node.exe process. Its stdout
 * carries one JSON object per line; `next(event, ms)` resolves the next line whose `event`
 * is that, `stop()` ends stdin (the fixture then exits) and waits for the exit.
 */
export function startChild(script, args = []) {
  const child = spawn(process.execPath, [path.join(here, 'fixtures', script), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const lines = [];
  const waiters = [];
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => {
    stdout += d;
    let nl;
    while ((nl = stdout.indexOf('\n')) >= 0) {
      const line = stdout.slice(0, nl).trim();
      stdout = stdout.slice(nl + 1);
      if (!line) continue;
      try {
        lines.push(JSON.parse(line));
      } catch {
        continue;
      }
      for (const w of [...waiters]) w();
    }
  });
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stderr: () => stderr,
    next(event, ms = 20000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const i = lines.findIndex((l) => l.event === event);
          if (i < 0) return false;
          const [line] = lines.splice(i, 1);
          done();
          resolve(line);
          return true;
        };
        const done = () => {
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(check), 1);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no "${event}" line from ${script} within ${ms} ms; stderr: ${stderr}`));
        }, ms);
        waiters.push(check);
        check();
      });
    },
    async stop(ms = 10000) {
      child.stdin.end();
      const timer = setTimeout(() => child.kill(), ms);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
