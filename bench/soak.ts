/**
 * Soak: a steady load on one ServerQt (the benchmark's server, TCP, in its own process) for
 * N minutes, sampling the server's RSS and open descriptors; reports whether they grew
 * beyond noise.
 *
 *   npm run soak -- --minutes 10 [--rate 2000]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { firstValueFrom, lastValueFrom } from 'rxjs';

import { ClientQt } from '../lib/index.js';
import { freePort } from '../sample/common/free-port.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const minutes = arg('--minutes', 1);
const rate = arg('--rate', 2000);
const SAMPLE_MS = Math.max(2000, Math.round((minutes * 60000) / 60));

function descriptors(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

async function main(): Promise<void> {
  const port = await freePort();
  const ext = path.extname(fileURLToPath(import.meta.url));
  const server = spawn(
    process.execPath,
    [...process.execArgv, path.join(here, `server${ext}`), 'qt-tcp', String(port)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"ready"'));
      if (line) resolve((JSON.parse(line) as { pid: number }).pid);
    });
    server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  // Several clients, reconnecting now and then, so that connections come and go too.
  const clients = Array.from({ length: 4 }, () => new ClientQt({ port }));
  await Promise.all(clients.map((c) => c.connect()));
  const samples: Array<{
    t: number;
    rssMiB: number;
    fds: number;
    requests: number;
    failures: number;
  }> = [];
  let requests = 0;
  let failures = 0;
  const failureCodes: Record<string, number> = {};
  const start = Date.now();
  const end = start + minutes * 60000;
  const perTick = Math.max(1, Math.round(rate / 100));
  const load = setInterval(() => {
    for (let i = 0; i < perTick; i++) {
      const c = clients[(requests + i) % clients.length];
      const p =
        i % 10 === 0
          ? lastValueFrom(c.emit('count', { i }), { defaultValue: undefined })
          : firstValueFrom(c.send('echo', { n: requests + i, text: 'x'.repeat(64) }));
      p.then(
        () => requests++,
        (err: unknown) => {
          failures++;
          const code = (err as { code?: string }).code ?? 'error';
          failureCodes[code] = (failureCodes[code] ?? 0) + 1;
        },
      );
    }
  }, 10);
  const churn = setInterval(() => {
    // Replace one client: a closed connection and a new one, every few seconds.
    const i = Math.floor(Math.random() * clients.length);
    const old = clients[i];
    clients[i] = new ClientQt({ port });
    void old.close();
  }, 5000);
  const sample = async (): Promise<void> => {
    const stats = (await firstValueFrom(clients[0].send('stats', {}))) as { rss: number };
    samples.push({
      t: Math.round((Date.now() - start) / 1000),
      rssMiB: Math.round((stats.rss / 1048576) * 10) / 10,
      fds: descriptors(pid),
      requests,
      failures,
    });
    const s = samples.at(-1)!;
    process.stderr.write(
      `t=${s.t}s rss=${s.rssMiB} MiB fds=${s.fds} requests=${s.requests} failures=${s.failures}\n`,
    );
  };
  await sample();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    await sample();
  }
  clearInterval(load);
  clearInterval(churn);
  await new Promise((r) => setTimeout(r, 500));
  await sample();
  await Promise.all(clients.map((c) => c.close()));
  server.kill('SIGTERM');
  // Growth: the last third's median against the first third's (after warm-up).
  const third = Math.max(1, Math.floor(samples.length / 3));
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const early = samples.slice(1, 1 + third);
  const late = samples.slice(-third);
  const report = {
    minutes,
    rate,
    samples,
    rssEarlyMiB: median(early.map((s) => s.rssMiB)),
    rssLateMiB: median(late.map((s) => s.rssMiB)),
    fdsEarly: median(early.map((s) => s.fds)),
    fdsLate: median(late.map((s) => s.fds)),
    requests,
    failures,
    failureCodes,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`soak failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
