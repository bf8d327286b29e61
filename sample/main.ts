/**
 * The sample system, end to end: starts three Nest services (inventory on a local socket,
 * billing on TCP as a node:cluster of BILLING_WORKERS processes, 2 by default, and an HTTP
 * gateway that calls both), drives a short scenario through the gateway, prints what
 * happened, shuts everything down and exits 0.
 *
 *   npm start                 run the scenario and exit
 *   npm start -- --serve      keep the services running and print curl commands
 *   npm start -- --verbose    also print the services' own logs and the trace of one order
 *   npm start -- --tls        billing and the gateway talk TCP with mutual TLS (development
 *                             certificates made by sample/deploy/tls/make-dev-certs.sh)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from './common/free-port.js';
import type { SpanRecord } from './common/trace-tree.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = new Set(process.argv.slice(2));
const serve = args.has('--serve');
const verbose = args.has('--verbose');
// With --verbose every service records its spans (sample/common/trace-tree.ts) and prints
// them; the trace of one call is drawn after the scenario.
if (verbose) process.env.SAMPLE_TRACE = '1';
const spans: SpanRecord[] = [];
const withTls = args.has('--tls');

/** The sample's root (sample/ in the sources, dist/sample/ when built): the scripts are in the sources. */
const scriptsRoot = path.resolve(
  here,
  path.basename(path.dirname(here)) === 'dist' ? '../../sample' : '.',
);

/** Makes development certificates in a temporary directory; returns the TLS environment. */
function tlsEnvironment(): Record<string, string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qt-sample-tls-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  execFileSync('bash', [path.join(scriptsRoot, 'deploy/tls/make-dev-certs.sh'), dir], {
    stdio: 'ignore',
  });
  return {
    BILLING_TLS_CERT: path.join(dir, 'billing.pem'),
    BILLING_TLS_KEY: path.join(dir, 'billing.key'),
    BILLING_TLS_CLIENT_CA: path.join(dir, 'ca.pem'),
    BILLING_TLS_CA: path.join(dir, 'ca.pem'),
    GATEWAY_TLS_CERT: path.join(dir, 'gateway.pem'),
    GATEWAY_TLS_KEY: path.join(dir, 'gateway.key'),
  };
}

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

interface Service {
  name: string;
  child: ChildProcess;
  address: string;
  /** A cluster's worker pids (billing with BILLING_WORKERS > 1). */
  workers?: number[];
  log: string[];
  exited: Promise<number | null>;
}

/** The pids that serve: a cluster's workers, or the process itself. */
function servingPids(service: Service): number[] {
  return service.workers ?? [service.child.pid!];
}

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return true;
}

/** Starts a service process and waits for its ready line (or its clear failure message). */
function startService(name: string, env: NodeJS.ProcessEnv): Promise<Service> {
  const started = Date.now();
  // Built (dist/sample/*.js) or run from the sources through a loader (tests): the
  // services are started the same way as this script was.
  const ext = path.extname(fileURLToPath(import.meta.url));
  const child = spawn(
    process.execPath,
    [...process.execArgv, path.join(here, name, `main${ext}`)],
    {
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const log: string[] = [];
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not become ready within 20 s`));
    }, 20000);
    const onLine = (line: string): void => {
      if (line.startsWith('{"ready"')) {
        const { address, workers } = JSON.parse(line) as { address: string; workers?: number[] };
        clearTimeout(timer);
        out(`  ${name.padEnd(10)} ${address.padEnd(44)} ready in ${Date.now() - started} ms`);
        if (workers) {
          out(`  ${''.padEnd(10)} cluster primary ${child.pid}, workers ${workers.join(', ')}`);
        }
        resolve({ name, child, address, workers, log, exited });
        return;
      }
      if (line.startsWith('{"span"')) {
        spans.push((JSON.parse(line) as { span: SpanRecord }).span);
        return;
      }
      log.push(line);
      if (verbose) out(`  [${name}] ${line}`);
    };
    const feed = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    };
    child.stdout!.on('data', feed);
    child.stderr!.on('data', feed);
    void exited.then((code) => {
      clearTimeout(timer);
      const reason =
        log.filter((l) => /could not start|Error/.test(l)).at(-1) ?? `exit code ${code}`;
      reject(new Error(`${name} stopped before it was ready: ${reason.trim()}`));
    });
  });
}

/**
 * SIGTERM, then SIGKILL after 5 s; resolves the exit code (a cluster primary forwards the
 * signal and exits once its workers have: 0 if all closed cleanly).
 */
async function stopService(service: Service): Promise<number | null> {
  let code: number | null = service.child.exitCode;
  if (code === null) {
    service.child.kill('SIGTERM');
    const timer = setTimeout(() => service.child.kill('SIGKILL'), 5000);
    code = await service.exited;
    clearTimeout(timer);
  }
  // A worker that outlived its primary would still hold the port.
  for (const pid of service.workers ?? []) {
    if (!alive(pid)) continue;
    out(`  ${service.name} worker ${pid} outlived its primary`);
    process.kill(pid, 'SIGKILL');
    code = code === 0 ? 1 : code;
  }
  return code;
}

interface Step {
  title: string;
  route: string;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  expect: number;
  /** A line about the answer, and whether it is what the step expects. */
  check?: (body: string) => { note: string; ok: boolean };
}

/** The scenario, given the billing service that answers it and the gateway's connections to it. */
const scenario = (billing: Service, connections: string, balancing: string): Step[] => [
  {
    title: 'look up a product',
    route:
      "gateway → inventory (local socket) 'inventory.check' ∥ billing (TCP, CBOR) 'billing.quote'",
    method: 'GET',
    path: '/products/widget',
    expect: 200,
  },
  {
    title: 'place an order',
    route:
      "gateway → inventory 'inventory.reserve' → billing 'billing.quote' → event 'order.placed' → inventory, billing (acknowledged)",
    method: 'POST',
    path: '/orders',
    body: { sku: 'widget', quantity: 3 },
    expect: 201,
  },
  {
    title: 'order more than is in stock',
    route: "gateway → inventory 'inventory.reserve': RpcException → HTTP 409",
    method: 'POST',
    path: '/orders',
    body: { sku: 'gizmo', quantity: 99 },
    expect: 409,
  },
  {
    title: 'order a product nobody sells',
    route: "gateway → inventory 'inventory.reserve': RpcException → HTTP 404",
    method: 'POST',
    path: '/orders',
    body: { sku: 'doohickey', quantity: 1 },
    expect: 404,
  },
  {
    title: 'all stock levels',
    route: "gateway → inventory 'inventory.levels' (a streamed reply, one frame per product)",
    method: 'GET',
    path: '/stock',
    expect: 200,
  },
  {
    title: 'invoices',
    route: "gateway → billing 'billing.invoices' (filled by the 'order.placed' event)",
    method: 'GET',
    path: '/invoices',
    expect: 200,
  },
  {
    title: 'health',
    route: 'gateway → ping inventory ∥ ping billing (answered without running a handler)',
    method: 'GET',
    path: '/health',
    expect: 200,
  },
  {
    title: "billing's processes",
    route: billing.workers
      ? `gateway → billing 'billing.worker' × 8, ${balancing} over ${connections} connections; the cluster primary handed them to its ${billing.workers.length} workers in turn`
      : `gateway → billing 'billing.worker' × 8 (one process: BILLING_WORKERS=1)`,
    method: 'GET',
    path: '/billing/workers',
    expect: 200,
    check: (body) => {
      const { answeredBy } = JSON.parse(body) as { answeredBy: Array<{ pid: number }> };
      const answering = answeredBy.map((a) => a.pid).sort((a, b) => a - b);
      const expected = [...servingPids(billing)].sort((a, b) => a - b);
      const ok = JSON.stringify(answering) === JSON.stringify(expected);
      return {
        note: `billing workers answering: ${answering.join(', ')}${ok ? '' : `   ✗ expected ${expected.join(', ')}`}`,
        ok,
      };
    },
  },
];

/** The trace of step 2 (POST /orders) across the three services, as a tree. */
async function printOrderTrace(): Promise<void> {
  // The services' last spans end as their replies go out: give the lines a moment.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const root = spans
    .filter((s) => s.kind === 'SERVER' && s.name === 'POST /orders')
    .sort((a, b) => a.startMs - b.startMs)[0];
  if (!root) {
    out('No trace was recorded (are the OpenTelemetry packages installed?).');
    return;
  }
  const { formatTraceTree } = await import('./common/trace-tree.js');
  out('The trace of step 2 (OpenTelemetry spans of every service, W3C context in the packets):');
  for (const line of formatTraceTree(spans.filter((s) => s.traceId === root.traceId))) {
    out(`  ${line}`);
  }
  out();
}

async function runScenario(gateway: string, steps: Step[]): Promise<boolean> {
  let ok = true;
  for (const [i, step] of steps.entries()) {
    const started = process.hrtime.bigint();
    const response = await fetch(`${gateway}${step.path}`, {
      method: step.method,
      headers: step.body ? { 'content-type': 'application/json' } : undefined,
      body: step.body ? JSON.stringify(step.body) : undefined,
    });
    const text = await response.text();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const passed = response.status === step.expect;
    ok &&= passed;
    const checked = passed ? step.check?.(text) : undefined;
    ok &&= checked?.ok ?? true;
    const request = `${step.method} ${step.path}${step.body ? ` ${JSON.stringify(step.body)}` : ''}`;
    out(`  ${i + 1}. ${step.title}: ${request}`);
    out(`     route:  ${step.route}`);
    out(
      `     answer: ${response.status} ${text}   (${ms.toFixed(1)} ms)${passed ? '' : `   ✗ expected ${step.expect}`}`,
    );
    if (checked) out(`     ${checked.note}`);
  }
  // The event reached billing: the invoice of the placed order is listed.
  return ok;
}

async function main(): Promise<number> {
  const [billingPort, gatewayPort] = await Promise.all([freePort(), freePort()]);
  const inventorySocket = `qt-sample-inventory-${process.pid}`;
  // Billing as a cluster of two workers; the gateway opens a connection per worker (the
  // primary hands out connections, not requests) and balances its calls over them.
  const billingWorkers = process.env.BILLING_WORKERS ?? '2';
  const billingConnections = process.env.BILLING_CONNECTIONS ?? billingWorkers;
  const env = {
    INVENTORY_SOCKET: inventorySocket,
    BILLING_HOST: '127.0.0.1',
    BILLING_PORT: String(billingPort),
    BILLING_WORKERS: billingWorkers,
    BILLING_CONNECTIONS: billingConnections,
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: String(gatewayPort),
    ...(withTls ? tlsEnvironment() : {}),
  };
  out(
    `Starting the sample system: three Nest services${billingWorkers === '1' ? '' : `, billing as ${billingWorkers} cluster workers`}, no external server.`,
  );
  if (withTls)
    out('The gateway reaches billing over TCP with mutual TLS (development certificates).');
  const services: Service[] = [];
  const stopAll = async (): Promise<boolean> => {
    out('Shutting down: gateway, billing, inventory.');
    let clean = true;
    for (const service of [...services].reverse()) {
      const code = await stopService(service);
      if (code !== 0) {
        clean = false;
        out(`  ${service.name} exited with code ${code}`);
        for (const line of service.log.slice(-10)) out(`    [${service.name}] ${line}`);
      }
    }
    return clean;
  };
  // All three at once: the gateway connects to the others on its first call, not before.
  const started = await Promise.allSettled(
    ['inventory', 'billing', 'gateway'].map((name) => startService(name, env)),
  );
  for (const result of started) if (result.status === 'fulfilled') services.push(result.value);
  const failures = started.filter((r) => r.status === 'rejected');
  if (failures.length > 0) {
    for (const { reason } of failures) {
      out(`✗ ${reason instanceof Error ? reason.message : String(reason)}`);
    }
    await stopAll();
    return 1;
  }
  const gateway = services.find((s) => s.name === 'gateway')!.address;
  const billing = services.find((s) => s.name === 'billing')!;

  out();
  out('Scenario:');
  let ok: boolean;
  try {
    ok = await runScenario(
      gateway,
      scenario(billing, billingConnections, process.env.BILLING_BALANCING || 'round-robin'),
    );
  } catch (err) {
    out(`✗ the scenario failed: ${err instanceof Error ? err.message : String(err)}`);
    ok = false;
  }
  out();
  if (verbose) await printOrderTrace();

  if (serve) {
    out('The services keep running. Try:');
    out(`  curl ${gateway}/products/sprocket`);
    out(
      `  curl -X POST -H 'content-type: application/json' -d '{"sku":"sprocket","quantity":5}' ${gateway}/orders`,
    );
    out(`  curl ${gateway}/stock`);
    out(`  curl ${gateway}/invoices`);
    out(`  curl ${gateway}/billing/workers`);
    out('Press Ctrl+C to stop.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  const clean = await stopAll();
  out(
    ok && clean
      ? 'Done: every step answered as expected, every service stopped cleanly.'
      : '✗ Something went wrong (see above).',
  );
  return ok && clean ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`sample failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
