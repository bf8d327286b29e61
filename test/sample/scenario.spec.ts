// Runs the sample exactly as `npm start` does (from the sources, through the TypeScript
// loader the other process tests use) and checks what it prints and that it exits 0.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { privateSocketDirectory } from '../../lib/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const register = path.join(root, 'test/fixtures/register-ts.mjs');

function runSample(
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', register, path.join(root, 'sample/main.ts'), ...extra],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** True while `pid` runs a sample service (a pid reused by another program does not count). */
function sampleProcessAlive(pid: number): boolean {
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // A zombie has exited; only its parent has not collected it yet.
    return cmdline.includes('sample/billing/main') && !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** billing's cluster as the sample prints it: the primary's pid and its workers'. */
function clusterOf(output: string): { primary: number; workers: number[] } {
  const m = /cluster primary (\d+), workers (\d+(?:, \d+)*)/.exec(output);
  expect(m).not.toBeNull();
  return { primary: Number(m![1]), workers: m![2]!.split(', ').map(Number) };
}

/** The pids the scenario's last step saw answering. */
function answeringOf(output: string): number[] {
  const m = /billing workers answering: (\d+(?:, \d+)*)/.exec(output);
  expect(m).not.toBeNull();
  return m![1]!.split(', ').map(Number);
}

describe('the sample system (npm start)', () => {
  it('starts three services, runs the scenario through the gateway, shuts down cleanly and exits 0', async () => {
    const { code, output } = await runSample();
    if (code !== 0) console.log(output);
    expect(code).toBe(0);
    // Each service announced where it listens: a local socket, TCP, HTTP.
    // A bare name: the socket is in this user's private directory, not in the shared one.
    expect(output).toMatch(
      new RegExp(`inventory +${privateSocketDirectory()}/qt-sample-inventory-\\d+ +ready`),
    );
    expect(output).toMatch(/billing +127\.0\.0\.1:\d+ +ready/);
    expect(output).toMatch(/gateway +http:\/\/127\.0\.0\.1:\d+ +ready/);
    // billing is a cluster: a primary and two workers, which both answered the gateway.
    expect(output).toContain('billing as 2 cluster workers');
    const billing = clusterOf(output);
    expect(billing.workers).toHaveLength(2);
    expect(billing.workers).not.toContain(billing.primary);
    expect(answeringOf(output)).toEqual([...billing.workers].sort((a, b) => a - b));
    expect(output).toMatch(
      /answer: 200 \{"calls":8,"answeredBy":\[\{"host":"[^"]+","pid":\d+,"calls":4\},\{"host":"[^"]+","pid":\d+,"calls":4\}\]\}/,
    );
    // The scenario's answers: a product, an order, the two RpcExceptions as HTTP errors,
    // a streamed reply, and the invoice the event produced.
    expect(output).toContain('answer: 200 {"sku":"widget","inStock":12,"unitPrice":4.5}');
    expect(output).toMatch(
      /answer: 201 \{"order":\{"id":"[0-9a-f]{8}","sku":"widget","quantity":3\},"total":13\.5,"stockLeft":9\}/,
    );
    expect(output).toContain(
      'answer: 409 {"statusCode":409,"message":"Only 2 gizmo in stock, 99 requested"}',
    );
    expect(output).toContain(
      'answer: 404 {"statusCode":404,"message":"Unknown product \\"doohickey\\""}',
    );
    expect(output).toContain(
      'answer: 200 [{"sku":"widget","inStock":9},{"sku":"gizmo","inStock":2},{"sku":"sprocket","inStock":40}]',
    );
    expect(output).toMatch(
      /answer: 200 \[\{"orderId":"[0-9a-f]{8}","sku":"widget","quantity":3,"total":13\.5\}\]/,
    );
    expect(output).not.toContain('✗');
    expect(output).toContain(
      'Done: every step answered as expected, every service stopped cleanly.',
    );
    // No socket file is left behind.
    const leftovers = fs
      .readdirSync(privateSocketDirectory())
      .filter((f) => f.startsWith('qt-sample-inventory-'));
    const mine = output.match(/qt-sample-inventory-(\d+)/)?.[0];
    expect(leftovers).not.toContain(mine);
    // Every billing process has stopped: the primary waited for its workers.
    for (const pid of [billing.primary, ...billing.workers]) {
      expect({ pid, alive: sampleProcessAlive(pid) }).toEqual({ pid, alive: false });
    }
  }, 120000);

  it("with --verbose, prints the trace of the order across the three services: the gateway's HTTP span, its CLIENT/PRODUCER spans, and the services' SERVER/CONSUMER spans under them", async () => {
    const { code, output } = await runSample(['--verbose']);
    if (code !== 0) console.log(output);
    expect(code).toBe(0);
    const start = output.indexOf('The trace of step 2');
    expect(start).toBeGreaterThan(0);
    const tree = output.slice(start).split('\n').slice(1, 11).join('\n');
    expect(tree).toMatch(/└─ gateway +SERVER +POST \/orders/);
    expect(tree).toMatch(/├─ gateway +CLIENT +inventory\.reserve \[nestjs_qt unix /);
    expect(tree).toMatch(/│ {2}└─ inventory +SERVER +inventory\.reserve/);
    expect(tree).toMatch(/├─ gateway +CLIENT +billing\.quote \[nestjs_qt tcp /);
    expect(tree).toMatch(/│ {2}└─ billing \d+ +SERVER +billing\.quote/);
    expect(tree).toMatch(/└─ inventory +CONSUMER +order\.placed/);
    expect(tree).toMatch(/└─ billing \d+ +CONSUMER +order\.placed/);
    expect(output).toContain('Done: every step answered as expected');
  }, 120000);

  it('with --tls, billing serves mutual TLS and the gateway reaches it with its client certificate: the scenario answers the same', async () => {
    const { code, output } = await runSample(['--tls']);
    if (code !== 0) console.log(output);
    expect(code).toBe(0);
    expect(output).toContain('over TCP with mutual TLS');
    expect(output).toMatch(/billing +127\.0\.0\.1:\d+ \(mutual TLS\) +ready/);
    // Each worker serves TLS on the shared port; both answered.
    expect(answeringOf(output)).toEqual(clusterOf(output).workers.sort((a, b) => a - b));
    // The calls to billing (an order, its invoice) went through TLS.
    expect(output).toMatch(
      /answer: 201 \{"order":\{"id":"[0-9a-f]{8}","sku":"widget","quantity":3\},"total":13\.5,"stockLeft":9\}/,
    );
    expect(output).toMatch(
      /answer: 200 \[\{"orderId":"[0-9a-f]{8}","sku":"widget","quantity":3,"total":13\.5\}\]/,
    );
    expect(output).not.toContain('✗');
    expect(output).toContain(
      'Done: every step answered as expected, every service stopped cleanly.',
    );
  }, 120000);

  it('with BILLING_WORKERS=1, billing is one process, as before: the scenario answers the same', async () => {
    const { code, output } = await runSample([], { BILLING_WORKERS: '1' });
    if (code !== 0) console.log(output);
    expect(code).toBe(0);
    expect(output).not.toContain('cluster');
    expect(output).toContain('(one process: BILLING_WORKERS=1)');
    expect(answeringOf(output)).toHaveLength(1);
    expect(output).toMatch(
      /answer: 200 \[\{"orderId":"[0-9a-f]{8}","sku":"widget","quantity":3,"total":13\.5\}\]/,
    );
    expect(output).toContain(
      'Done: every step answered as expected, every service stopped cleanly.',
    );
  }, 120000);
});

describe('billing as a cluster (sample/billing/main.ts)', () => {
  function runBilling(
    env: NodeJS.ProcessEnv,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', register, path.join(root, 'sample/billing/main.ts')],
        {
          cwd: root,
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, NO_COLOR: '1', ...env },
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('a worker that cannot listen stops the primary and the other workers: exit code 1, with the reason', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as net.AddressInfo;
    try {
      const { code, stdout, stderr } = await runBilling({
        BILLING_WORKERS: '2',
        BILLING_HOST: '127.0.0.1',
        BILLING_PORT: String(port),
      });
      expect(code).toBe(1);
      const output = stdout + stderr;
      expect(output).not.toContain('{"ready"');
      expect(output).toMatch(/could not start: .*\(AddressInUseError\)/);
      expect(output).toContain('a worker stopped before every worker was ready');
    } finally {
      taken.close();
    }
  }, 90000);

  it('a wrong BILLING_WORKERS is refused before anything starts', async () => {
    const { code, stderr } = await runBilling({ BILLING_WORKERS: 'two' });
    expect(code).toBe(1);
    expect(stderr).toContain(
      'billing: could not start: BILLING_WORKERS must be an integer from 1 to 64, not "two"',
    );
  }, 30000);
});
