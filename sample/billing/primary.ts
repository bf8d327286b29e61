/**
 * Billing as a node:cluster primary. It holds the listening socket and hands each new
 * connection to the next worker in turn (round-robin); the workers run the Nest app, each
 * with the same ServerQt options (a ServerQt in a worker shares the primary's socket with
 * no option). The primary:
 * - says it is ready (one JSON line on stdout, with the workers' pids) once every worker
 *   listens, and gives up with exit code 1 if a worker stops before that;
 * - passes invoices between the workers (invoices.ts);
 * - replaces a worker that dies, unless workers keep dying (then it stops, exit code 1,
 *   for systemd or Kubernetes to restart it all);
 * - on SIGTERM or SIGINT sends SIGTERM to every worker, whose Nest app closes (ServerQt
 *   drains its connections), and exits 0 once all have exited cleanly; SIGKILL to any
 *   still running after the drain time and 5 s more.
 * It imports nothing from Nest, so that it starts at once. A worker whose primary dies
 * exits at once (node:cluster), so none is left behind.
 */
import cluster, { type Worker } from 'node:cluster';

import type { Invoice } from '../common/patterns.js';
import type { ReadyMessage } from '../common/ready.js';
import { isInvoiceMessage, type InvoiceMessage } from './invoices.js';

/** Replacements allowed within RESTART_WINDOW_MS before the primary gives up. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60000;

function isReadyMessage(m: unknown): m is ReadyMessage {
  return typeof m === 'object' && m !== null && 'ready' in m && 'address' in m;
}

export function runPrimary(service: string, count: number, closeTimeout: number): void {
  const log = (line: string): void => {
    process.stderr.write(`[${service} primary ${process.pid}] ${line}\n`);
  };
  // Round-robin is Node's default except on Windows; set, since the sample relies on it.
  cluster.schedulingPolicy = cluster.SCHED_RR;
  // The workers run with this process's Node options (the TypeScript loader in the tests).
  cluster.setupPrimary({ execArgv: process.execArgv });

  const live = new Set<Worker>();
  const listening = new Map<Worker, string>();
  const invoices = new Map<string, Invoice>();
  const restarts: number[] = [];
  let announced = false;
  let stopping = false;
  let clean = true;

  const send = (worker: Worker, message: InvoiceMessage): void => {
    if (worker.isConnected()) worker.send(message);
  };

  const onMessage = (worker: Worker, m: unknown): void => {
    if (isReadyMessage(m)) {
      listening.set(worker, m.address);
      if (announced) log(`worker ${worker.process.pid} serves`);
      else if (listening.size === count) {
        announced = true;
        const ready: ReadyMessage = {
          ready: service,
          address: m.address,
          workers: [...listening.keys()].map((w) => w.process.pid!).sort((a, b) => a - b),
        };
        process.stdout.write(`${JSON.stringify(ready)}\n`);
      }
      return;
    }
    if (!isInvoiceMessage(m)) return;
    if ('invoicesWanted' in m) send(worker, { invoices: [...invoices.values()] });
    if ('invoice' in m) {
      invoices.set(m.invoice.orderId, m.invoice);
      for (const other of live) if (other !== worker) send(other, { invoices: [m.invoice] });
      send(worker, { relayed: m.seq });
    }
  };

  const stop = (why: string, failed = false): void => {
    if (failed) clean = false;
    if (stopping) return;
    stopping = true;
    log(`${why}: stopping ${live.size} worker(s)`);
    if (live.size === 0) process.exit(clean ? 0 : 1);
    for (const worker of live) worker.process.kill('SIGTERM');
    setTimeout(() => {
      log(`worker(s) still running ${closeTimeout + 5000} ms after SIGTERM: SIGKILL`);
      clean = false;
      for (const worker of live) worker.process.kill('SIGKILL');
    }, closeTimeout + 5000).unref();
  };

  const onExit = (worker: Worker, code: number | null, signal: string | null): void => {
    live.delete(worker);
    listening.delete(worker);
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (stopping) {
      // A worker stopped before it had set its own handlers ends by the signal itself.
      if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGINT') {
        clean = false;
        log(`worker ${worker.process.pid} exited with ${how}`);
      }
      if (live.size === 0) process.exit(clean ? 0 : 1);
      return;
    }
    log(`worker ${worker.process.pid} exited with ${how}`);
    if (!announced) return stop('a worker stopped before every worker was ready', true);
    const now = Date.now();
    while (restarts.length > 0 && now - restarts[0]! > RESTART_WINDOW_MS) restarts.shift();
    if (restarts.length >= MAX_RESTARTS) {
      return stop(`${MAX_RESTARTS} workers replaced within ${RESTART_WINDOW_MS / 1000} s`, true);
    }
    restarts.push(now);
    fork();
  };

  const fork = (): void => {
    const worker = cluster.fork();
    live.add(worker);
    worker.on('message', (m: unknown) => onMessage(worker, m));
    worker.on('exit', (code: number | null, signal: string | null) => onExit(worker, code, signal));
  };

  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  for (let i = 0; i < count; i++) fork();
}
