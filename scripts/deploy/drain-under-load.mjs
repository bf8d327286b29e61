#!/usr/bin/env node
// Keeps CONCURRENCY requests in flight against URL; once AFTER requests have succeeded, runs
// COMMAND (e.g. `podman pod stop -t 20 billing-pod-0`), and keeps the load up until the
// command has finished and for 2 s more. Prints one JSON line:
//   { ok, failed, errors: { status-or-error: count }, command: exit status, ms }
// and exits 0 (the caller judges the numbers). At most 90 s in all; if AFTER successes do
// not come within 30 s, the command is not run (command: null).
// Usage: node drain-under-load.mjs URL CONCURRENCY AFTER -- COMMAND [ARGS...]
import { spawn } from 'node:child_process';

const { fetch, AbortSignal } = globalThis;

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const [url, concurrency, after] = argv.slice(0, dash);
const command = argv.slice(dash + 1);
if (dash < 0 || !url || command.length === 0) {
  console.error('usage: drain-under-load.mjs URL CONCURRENCY AFTER -- COMMAND [ARGS...]');
  process.exit(2);
}

const started = Date.now();
const hardEnd = started + 90_000;
let ok = 0;
let failed = 0;
const errors = {};
let stopAt = Infinity; // load ends here, once the command is done
let status = null;
let launched = false;

const launch = () => {
  launched = true;
  const child = spawn(command[0], command.slice(1), { stdio: 'ignore' });
  child.on('exit', (code, signal) => {
    status = code ?? signal;
    stopAt = Date.now() + 2000;
  });
  child.on('error', (e) => {
    status = e.message;
    stopAt = Date.now();
  });
};

async function worker() {
  while (Date.now() < Math.min(stopAt, hardEnd)) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      await r.arrayBuffer();
      if (r.ok) ok++;
      else {
        failed++;
        errors[r.status] = (errors[r.status] ?? 0) + 1;
      }
    } catch (e) {
      failed++;
      const key = e?.cause?.code ?? e?.name ?? String(e);
      errors[key] = (errors[key] ?? 0) + 1;
    }
    if (!launched && ok >= Number(after)) launch();
    // Never reached AFTER successes in 30 s: give up (command stays null).
    if (!launched && Date.now() - started > 30_000) stopAt = Date.now();
  }
}

await Promise.all(Array.from({ length: Number(concurrency) }, worker));
console.log(JSON.stringify({ ok, failed, errors, command: status, ms: Date.now() - started }));
