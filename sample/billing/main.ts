/**
 * The billing service: a Nest microservice on TCP, as one process or as a node:cluster of
 * BILLING_WORKERS processes sharing its port (sample/billing/primary.ts).
 *
 * - BILLING_WORKERS: processes serving (default 1: no cluster). Under systemd socket
 *   activation billing is always one process: the descriptor systemd passes belongs to it.
 * - BILLING_CLOSE_TIMEOUT_MS: how long a shutdown drains at most (default 10000); keep the
 *   supervisor's stop timeout above it (Kubernetes terminationGracePeriodSeconds,
 *   systemd TimeoutStopSec).
 * - BILLING_HOST, BILLING_PORT, BILLING_TLS_*: see app.ts.
 *
 * The primary loads no Nest code: it only forks, relays and supervises.
 */
import cluster from 'node:cluster';

import { runPrimary } from './primary.js';

function fail(message: string): never {
  process.stderr.write(`billing: could not start: ${message}\n`);
  process.exit(1);
}

function integerFromEnv(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    fail(`${name} must be an integer from ${min} to ${max}, not "${text}"`);
  }
  return n;
}

/** systemd passed this process a listening socket (sd_listen_fds). */
function socketActivated(): boolean {
  const pid = process.env.LISTEN_PID;
  return (
    Number(process.env.LISTEN_FDS ?? '0') >= 1 &&
    (pid === undefined || pid === '' || Number(pid) === process.pid)
  );
}

const closeTimeout = integerFromEnv('BILLING_CLOSE_TIMEOUT_MS', 10000, 0, 600000);
const workers = socketActivated() ? 1 : integerFromEnv('BILLING_WORKERS', 1, 1, 64);

if (cluster.isPrimary && workers > 1) {
  runPrimary('billing', workers, closeTimeout);
} else {
  const { startBilling } = await import('./app.js');
  startBilling(closeTimeout);
}
