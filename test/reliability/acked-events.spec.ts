// The acknowledged-event mode: with the server killed (SIGKILL) in the middle of a stream
// of events and started again, every event emitted in that mode reaches a handler at
// least once; emit() completes only when the server has run the handler.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { lastValueFrom } from 'rxjs';

import { freePort } from '../helpers/net.js';
import { ClientQt } from '../../lib/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const register = path.resolve(here, '../fixtures/register-ts.mjs');

interface Server {
  child: ChildProcess;
  exited: Promise<void>;
}

async function startServer(port: number, file: string): Promise<Server> {
  const child = spawn(
    process.execPath,
    ['--import', register, path.join(here, 'fixtures/ack-server.ts'), String(port)],
    {
      env: { ...process.env, TICK_FILE: file },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`ack-server not ready: ${out}`)), 20000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('"ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    void exited.then(() => reject(new Error(`ack-server exited: ${out}`)));
  });
  return { child, exited };
}

async function stop(server: Server | null, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!server || server.child.exitCode !== null) return;
  server.child.kill(signal);
  await server.exited;
}

describe('acknowledged events', () => {
  let dir: string;
  let server: Server | null = null;
  let client: ClientQt | null = null;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-acked-'));
  });

  afterEach(async () => {
    await client?.close();
    client = null;
    await stop(server, 'SIGKILL');
    server = null;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every event emitted in the acknowledged mode reaches a handler at least once across a SIGKILL of the server', async () => {
    const port = await freePort();
    const file = path.join(dir, 'ticks.txt');
    server = await startServer(port, file);
    client = new ClientQt({
      port,
      acknowledgedEvents: { maxUnacked: 5000, maxResends: 5 },
      reconnect: { retries: 100, initialDelay: 20, maxDelay: 200 },
    });
    await client.connect();
    const total = 1500;
    const acknowledged: Array<Promise<unknown>> = [];
    let killedAt = -1;
    for (let i = 0; i < total; i++) {
      acknowledged.push(lastValueFrom(client.emit('tick', { i }), { defaultValue: undefined }));
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
      if (i === 500) {
        // Kill the server while events are in flight, and start it again a little later.
        killedAt = i;
        await stop(server, 'SIGKILL');
        setTimeout(() => {
          void startServer(port, file).then((s) => (server = s));
        }, 300);
      }
    }
    const outcome = await Promise.race([
      Promise.allSettled(acknowledged),
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 40000)),
    ]);
    expect(outcome).not.toBe('timeout');
    const settled = outcome as PromiseSettledResult<unknown>[];
    const failed = settled.filter((s) => s.status === 'rejected');
    expect(failed).toEqual([]);
    const seen = fs.readFileSync(file, 'utf8').trim().split('\n').map(Number);
    const unique = new Set(seen);
    const missing = Array.from({ length: total }, (_, i) => i).filter((i) => !unique.has(i));
    console.log(
      `acknowledged events: ${total} emitted, server killed after #${killedAt}; ` +
        `${unique.size} distinct reached a handler, ${seen.length - unique.size} delivered twice, ${missing.length} lost`,
    );
    expect(missing).toEqual([]);
  }, 60000);

  it('emit() in the acknowledged mode completes only after the handler ran (the index is already recorded)', async () => {
    const port = await freePort();
    const file = path.join(dir, 'ticks.txt');
    server = await startServer(port, file);
    client = new ClientQt({ port, acknowledgedEvents: true });
    await lastValueFrom(client.emit('tick', { i: 42 }), { defaultValue: undefined });
    expect(fs.readFileSync(file, 'utf8')).toBe('42\n');
  }, 30000);

  it('with reconnect off, unacknowledged events fail with a connection error instead of waiting forever', async () => {
    const port = await freePort();
    const file = path.join(dir, 'ticks.txt');
    server = await startServer(port, file);
    client = new ClientQt({ port, acknowledgedEvents: true, reconnect: false });
    await client.connect();
    await stop(server, 'SIGKILL');
    const result = await Promise.race([
      lastValueFrom(client.emit('tick', { i: 1 }), { defaultValue: undefined }).then(
        () => 'acknowledged',
        (err: unknown) => (err as { code?: string }).code ?? 'error',
      ),
      new Promise<string>((r) => setTimeout(() => r('hung'), 10000)),
    ]);
    expect(result).not.toBe('hung');
    expect(result).not.toBe('acknowledged');
  }, 30000);
});
