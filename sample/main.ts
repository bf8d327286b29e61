/**
 * The sample system, end to end: starts three Nest services (inventory on a local socket,
 * billing on TCP, an HTTP gateway that calls both), drives a short scenario through the
 * gateway, prints what happened, shuts everything down and exits 0.
 *
 *   npm start                 run the scenario and exit
 *   npm start -- --serve      keep the services running and print curl commands
 *   npm start -- --verbose    also print the services' own logs
 *   npm start -- --tls        billing and the gateway talk TCP with mutual TLS (development
 *                             certificates made by sample/deploy/tls/make-dev-certs.sh)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from './common/free-port.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = new Set(process.argv.slice(2));
const serve = args.has('--serve');
const verbose = args.has('--verbose');
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
  log: string[];
  exited: Promise<number | null>;
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
        const { address } = JSON.parse(line) as { address: string };
        clearTimeout(timer);
        out(`  ${name.padEnd(10)} ${address.padEnd(44)} ready in ${Date.now() - started} ms`);
        resolve({ name, child, address, log, exited });
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

async function stopService(service: Service): Promise<number | null> {
  if (service.child.exitCode !== null) return service.child.exitCode;
  service.child.kill('SIGTERM');
  const timer = setTimeout(() => service.child.kill('SIGKILL'), 5000);
  const code = await service.exited;
  clearTimeout(timer);
  return code;
}

interface Step {
  title: string;
  route: string;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  expect: number;
}

const steps: Step[] = [
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
      "gateway → inventory 'inventory.reserve' → billing 'billing.quote' → event 'order.placed' → inventory, billing",
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
];

async function runScenario(gateway: string): Promise<boolean> {
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
    const request = `${step.method} ${step.path}${step.body ? ` ${JSON.stringify(step.body)}` : ''}`;
    out(`  ${i + 1}. ${step.title}: ${request}`);
    out(`     route:  ${step.route}`);
    out(
      `     answer: ${response.status} ${text}   (${ms.toFixed(1)} ms)${passed ? '' : `   ✗ expected ${step.expect}`}`,
    );
  }
  // The event reached billing: the invoice of the placed order is listed.
  return ok;
}

async function main(): Promise<number> {
  const [billingPort, gatewayPort] = await Promise.all([freePort(), freePort()]);
  const inventorySocket = `qt-sample-inventory-${process.pid}`;
  const env = {
    INVENTORY_SOCKET: inventorySocket,
    BILLING_HOST: '127.0.0.1',
    BILLING_PORT: String(billingPort),
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: String(gatewayPort),
    ...(withTls ? tlsEnvironment() : {}),
  };
  out('Starting the sample system: three Nest services, no external server.');
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
  try {
    services.push(
      ...(await Promise.all([startService('inventory', env), startService('billing', env)])),
    );
    services.push(await startService('gateway', env));
  } catch (err) {
    out(`✗ ${err instanceof Error ? err.message : String(err)}`);
    await stopAll();
    return 1;
  }
  const gateway = services.find((s) => s.name === 'gateway')!.address;

  out();
  out('Scenario:');
  let ok: boolean;
  try {
    ok = await runScenario(gateway);
  } catch (err) {
    out(`✗ the scenario failed: ${err instanceof Error ? err.message : String(err)}`);
    ok = false;
  }
  out();

  if (serve) {
    out('The services keep running. Try:');
    out(`  curl ${gateway}/products/sprocket`);
    out(
      `  curl -X POST -H 'content-type: application/json' -d '{"sku":"sprocket","quantity":5}' ${gateway}/orders`,
    );
    out(`  curl ${gateway}/stock`);
    out(`  curl ${gateway}/invoices`);
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
