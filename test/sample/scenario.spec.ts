// Runs the sample exactly as `npm start` does (from the sources, through the TypeScript
// loader the other process tests use) and checks what it prints and that it exits 0.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { privateSocketDirectory } from '../../lib/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const register = path.join(root, 'test/fixtures/register-ts.mjs');

function runSample(extra: string[] = []): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', register, path.join(root, 'sample/main.ts'), ...extra],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
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
  }, 120000);

  it('with --tls, billing serves mutual TLS and the gateway reaches it with its client certificate: the scenario answers the same', async () => {
    const { code, output } = await runSample(['--tls']);
    if (code !== 0) console.log(output);
    expect(code).toBe(0);
    expect(output).toContain('over TCP with mutual TLS');
    expect(output).toMatch(/billing +127\.0\.0\.1:\d+ \(mutual TLS\) +ready/);
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
});
