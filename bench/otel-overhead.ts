/**
 * What OpenTelemetry costs the transport: requests per second of one ClientQt against one
 * ServerQt (each in its own process, TCP on loopback, a small JSON echo) at 1 and 16
 * requests in flight, in each of these modes:
 *
 *   baseline  a build of the package from before the telemetry (--baseline <its dist/lib/index.js>)
 *   no-api    this build, `@opentelemetry/api` not resolvable (processes run from os.tmpdir())
 *   no-sdk    this build, the API installed and nothing registered with it
 *   sdk       this build, an SDK in both processes: tracer provider with a batch span
 *             processor into an in-memory exporter (emptied every second), AsyncLocalStorage
 *             context manager, W3C propagator, meter provider with a periodic reader into an
 *             in-memory exporter; every request makes a CLIENT and a SERVER span and two
 *             histogram points
 *
 * Modes are interleaved, round after round; each figure is the median of the rounds, with
 * the lowest and highest.
 *
 *   npm run build && node dist/bench/otel-overhead.js [--quick] [--rounds N] [--baseline PATH]
 *   node dist/bench/otel-overhead.js --in-process --baseline PATH [--sdk] [--turns N]
 *     (the A/B of the baseline and this build in one process: see inProcess below)
 *   node --import ./test/fixtures/register-ts.mjs bench/otel-overhead.ts …   (from the sources)
 *
 * A baseline build: `git archive <commit> | tar -x -C /tmp/base`, link node_modules into it,
 * `npx tsc -p tsconfig.build.json` there; pass /tmp/base/dist/lib/index.js.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';

type Lib = typeof import('../lib/index.js');
type Mode = 'baseline' | 'no-api' | 'no-sdk' | 'sdk';

const script = fileURLToPath(import.meta.url);
const CONCURRENCY = [1, 16];
const PAYLOAD = { order: 42, items: ['a', 'b', 'c'] };

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** The package under test: `libPath` (a build's index.js), or this build's own. */
async function loadLib(libPath: string): Promise<Lib> {
  if (libPath === 'self') return import('../lib/index.js');
  return (await import(pathToFileURL(libPath).href)) as Lib;
}

/** Registers an OpenTelemetry SDK in this process (mode 'sdk'). */
async function registerSdk(): Promise<void> {
  const { context, metrics, propagation, trace } = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
  const { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } =
    await import('@opentelemetry/sdk-trace-base');
  const {
    InMemoryMetricExporter,
    MeterProvider,
    PeriodicExportingMetricReader,
    AggregationTemporality,
  } = await import('@opentelemetry/sdk-metrics');
  const spans = new InMemorySpanExporter();
  const points = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // OTEL_BENCH_SDK (e.g. 'trace,context'): parts of the SDK only, to see what costs what.
  const parts = (process.env.OTEL_BENCH_SDK ?? 'trace,context,metrics').split(',');
  if (parts.includes('context')) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  }
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  if (parts.includes('trace')) {
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans)] }),
    );
  }
  if (parts.includes('metrics'))
    metrics.setGlobalMeterProvider(
      new MeterProvider({
        readers: [
          new PeriodicExportingMetricReader({ exporter: points, exportIntervalMillis: 1000 }),
        ],
      }),
    );
  // The exporters keep what they get: emptied, so that memory does not grow with the run.
  setInterval(() => {
    spans.reset();
    points.reset();
  }, 1000).unref();
}

// ---------------------------------------------------------------- server process

@Controller()
class EchoController {
  @MessagePattern('echo')
  echo(@Payload() data: unknown): unknown {
    return data;
  }

  /** The server process's CPU time so far (µs), for the client's per-request figure. */
  @MessagePattern('cpu')
  cpu(): number {
    const { user, system } = process.cpuUsage();
    return user + system;
  }
}

@Module({ controllers: [EchoController] })
class EchoModule {}

async function serve(mode: Mode, libPath: string): Promise<void> {
  if (mode === 'sdk') await registerSdk();
  const { ServerQt } = await loadLib(libPath);
  const strategy = new ServerQt({ transport: 'tcp', host: '127.0.0.1', port: 0 });
  const app = await NestFactory.createMicroservice(EchoModule, { strategy, logger: false });
  await app.listen();
  const port = strategy.unwrap<InstanceType<Lib['QTcpServer']>>().serverPort();
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

// ---------------------------------------------------------------- client process

/** This process's CPU time so far (µs). */
function cpuNow(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/**
 * Requests per second with `concurrency` requests always in flight, over `ms`, and the CPU
 * time both processes spent per request (µs): a figure that a machine busy with other work
 * disturbs much less than the rate.
 */
async function measure(
  client: InstanceType<Lib['ClientQt']>,
  concurrency: number,
  ms: number,
): Promise<{ perSecond: number; cpuMicros: number }> {
  let done = 0;
  let stop = false;
  const serverCpu = await firstValueFrom(client.send<number>('cpu', {}));
  const clientCpu = cpuNow();
  const worker = async (): Promise<void> => {
    while (!stop) {
      await firstValueFrom(client.send('echo', PAYLOAD));
      done++;
    }
  };
  const started = performance.now();
  const workers = Array.from({ length: concurrency }, worker);
  await sleep(ms);
  const count = done;
  const elapsed = performance.now() - started;
  const clientSpent = cpuNow() - clientCpu;
  stop = true;
  await Promise.all(workers);
  // The requests that finish after the window cost a little CPU in both: not worth a correction.
  const serverSpent = (await firstValueFrom(client.send<number>('cpu', {}))) - serverCpu;
  return { perSecond: (count * 1000) / elapsed, cpuMicros: (clientSpent + serverSpent) / count };
}

async function load(mode: Mode, libPath: string, port: number, ms: number): Promise<void> {
  if (mode === 'sdk') await registerSdk();
  const { ClientQt } = await loadLib(libPath);
  const client = new ClientQt({ transport: 'tcp', host: '127.0.0.1', port });
  await client.connect();
  for (const concurrency of CONCURRENCY) {
    await measure(client, concurrency, Math.min(1000, ms)); // warm-up
    const { perSecond, cpuMicros } = await measure(client, concurrency, ms);
    process.stdout.write(`${JSON.stringify({ concurrency, perSecond, cpuMicros })}\n`);
  }
  await client.close();
}

// ---------------------------------------------------------------- the run

/** Node's arguments for a child: this process's own (a loader from the sources), absolute. */
function childExecArgv(): string[] {
  return process.execArgv.map((a) =>
    a.startsWith('./') || a.startsWith('../') ? path.resolve(a) : a,
  );
}

function child(args: string[], cwd: string): { proc: ChildProcess; lines: AsyncIterator<string> } {
  const proc = spawn(process.execPath, [...childExecArgv(), script, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  async function* read(): AsyncGenerator<string> {
    let buffered = '';
    for await (const chunk of proc.stdout!) {
      buffered += String(chunk);
      let i: number;
      while ((i = buffered.indexOf('\n')) >= 0) {
        yield buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
      }
    }
  }
  return { proc, lines: read() };
}

async function next(lines: AsyncIterator<string>, what: string): Promise<Record<string, number>> {
  const { value, done } = await lines.next();
  if (done) throw new Error(`${what}: the process ended early`);
  return JSON.parse(value) as Record<string, number>;
}

/** What one measurement gave: req/s and CPU µs per request (client + server). */
interface Figure {
  perSecond: number;
  cpuMicros: number;
}

/** One round of one mode: a server and a client process; the figures by concurrency. */
async function round(mode: Mode, libPath: string, ms: number): Promise<Map<number, Figure>> {
  // Without the API: run where it does not resolve (the ES module form looks from the
  // working directory; see lib/transport/telemetry/otel-api.ts).
  const cwd = mode === 'no-api' ? os.tmpdir() : process.cwd();
  const server = child(['--serve', mode, libPath], cwd);
  try {
    const { port } = await next(server.lines, `${mode} server`);
    const client = child(['--load', mode, libPath, String(port), String(ms)], cwd);
    const figures = new Map<number, Figure>();
    for (const _ of CONCURRENCY) {
      const { concurrency, perSecond, cpuMicros } = await next(client.lines, `${mode} client`);
      figures.set(concurrency, { perSecond, cpuMicros });
    }
    await new Promise((resolve) => client.proc.once('exit', resolve));
    return figures;
  } finally {
    server.proc.kill('SIGTERM');
    await new Promise((resolve) => server.proc.once('exit', resolve));
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** "median (lowest-highest) ±x% vs the reference". */
function cell(values: number[], reference: number[] | null, digits: number): string {
  const m = median(values);
  const f = (v: number): string => v.toFixed(digits);
  const range = `${f(m)} (${f(Math.min(...values))}-${f(Math.max(...values))})`;
  if (!reference) return range;
  const ref = median(reference);
  const change = ((m - ref) / ref) * 100;
  return `${range} ${change >= 0 ? '+' : ''}${change.toFixed(1)}%`;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const rounds = Number(argValue('--rounds') ?? (quick ? 3 : 7));
  const ms = quick ? 1000 : 3000;
  const baseline = argValue('--baseline');
  const modes: Array<{ mode: Mode; lib: string }> = [
    ...(baseline ? [{ mode: 'baseline' as const, lib: path.resolve(baseline) }] : []),
    { mode: 'no-api', lib: 'self' },
    { mode: 'no-sdk', lib: 'self' },
    { mode: 'sdk', lib: 'self' },
  ];
  const results = new Map<Mode, Map<number, Figure[]>>();
  for (let r = 1; r <= rounds; r++) {
    // Interleaved, and in a different order each round, so that drift hits every mode.
    const order = r % 2 ? modes : [...modes].reverse();
    for (const { mode, lib } of order) {
      const figures = await round(mode, lib, ms);
      const byConcurrency = results.get(mode) ?? new Map<number, Figure[]>();
      for (const [c, f] of figures) byConcurrency.set(c, [...(byConcurrency.get(c) ?? []), f]);
      results.set(mode, byConcurrency);
      const shown = [...figures].map(
        ([c, f]) => `c=${c} ${Math.round(f.perSecond)}/s ${f.cpuMicros.toFixed(1)} µs CPU`,
      );
      process.stderr.write(`round ${r}/${rounds} ${mode.padEnd(8)} ${shown.join('  ')}\n`);
    }
  }
  const reference: Mode = baseline ? 'baseline' : 'no-api';
  const column = (mode: Mode, c: number, key: keyof Figure): number[] =>
    results
      .get(mode)!
      .get(c)!
      .map((f) => f[key]);
  const table = (key: keyof Figure, title: string, digits: number): string[] => [
    '',
    title,
    '',
    `| mode     | ${CONCURRENCY.map((c) => `${c} in flight`.padEnd(34)).join(' | ')} |`,
    `| -------- | ${CONCURRENCY.map(() => '-'.repeat(34)).join(' | ')} |`,
    ...modes.map(({ mode }) => {
      const cells = CONCURRENCY.map((c) =>
        cell(
          column(mode, c, key),
          mode === reference ? null : column(reference, c, key),
          digits,
        ).padEnd(34),
      );
      return `| ${mode.padEnd(8)} | ${cells.join(' | ')} |`;
    }),
  ];
  const lines = [
    '',
    `OpenTelemetry overhead: median of ${rounds} rounds of ${ms} ms (lowest-highest), change vs ${reference}`,
    `node ${process.version}, ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; ClientQt -> ServerQt, TCP on loopback`,
    ...table('perSecond', 'requests per second', 0),
    ...table('cpuMicros', 'CPU time per request, client + server (µs)', 1),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ---------------------------------------------------------------- A/B in one process

/**
 * `--in-process --baseline PATH [--sdk]`: a ServerQt and a ClientQt of the baseline build and
 * a pair of this build in one process, taking turns in short slices (250 ms, 40 turns each by
 * default) at 1 and 16 in flight; each slice's requests and the process's CPU time. Two
 * processes on a busy machine wait for each other's turn on a core, and that noise swamps
 * a difference of a few per cent; one process, with the two builds alternating every
 * quarter second, sees the same machine for both. With `--sdk` an SDK is registered
 * first: the baseline then pays the SDK's context manager only, this build also its spans
 * and histograms.
 */
/**
 * The change of `values` against `reference`, slice by slice (each slice against the
 * baseline's slice next to it): the median of the ratios, and their middle half.
 */
function pairedChange(values: number[], reference: number[]): string {
  const ratios = values.map((v, i) => v / reference[i] - 1).sort((a, b) => a - b);
  const at = (q: number): number =>
    ratios[Math.min(ratios.length - 1, Math.floor(q * ratios.length))];
  const pct = (r: number): string => `${r >= 0 ? '+' : ''}${(r * 100).toFixed(1)}%`;
  return `${pct(median(ratios))} (${pct(at(0.25))} to ${pct(at(0.75))})`;
}

async function inProcess(baselinePath: string, withSdk: boolean, turns: number): Promise<void> {
  if (withSdk) await registerSdk();
  const pairs: Array<{ name: string; client: InstanceType<Lib['ClientQt']> }> = [];
  for (const [name, libPath] of [
    ['baseline', path.resolve(baselinePath)],
    [withSdk ? 'sdk' : 'no-sdk', 'self'],
  ] as const) {
    const { ServerQt, ClientQt } = await loadLib(libPath);
    const strategy = new ServerQt({ transport: 'tcp', host: '127.0.0.1', port: 0 });
    const app = await NestFactory.createMicroservice(EchoModule, { strategy, logger: false });
    await app.listen();
    const port = strategy.unwrap<InstanceType<Lib['QTcpServer']>>().serverPort();
    const client = new ClientQt({ transport: 'tcp', host: '127.0.0.1', port });
    await client.connect();
    pairs.push({ name, client });
  }
  const SLICE_MS = 250;
  const slice = async (
    client: InstanceType<Lib['ClientQt']>,
    concurrency: number,
  ): Promise<{ count: number; cpu: number; ms: number }> => {
    let done = 0;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        await firstValueFrom(client.send('echo', PAYLOAD));
        done++;
      }
    };
    const cpu0 = cpuNow();
    const t0 = performance.now();
    const workers = Array.from({ length: concurrency }, worker);
    await sleep(SLICE_MS);
    stop = true;
    await Promise.all(workers);
    return { count: done, cpu: cpuNow() - cpu0, ms: performance.now() - t0 };
  };
  const lines = [
    '',
    `One process, ${turns} alternating slices of ${SLICE_MS} ms per build${withSdk ? ', SDK registered' : ', no SDK'}: req/s and CPU µs per request, median (lowest-highest)`,
    `node ${process.version}, ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
    '',
    '| build    | in flight | req/s                      | CPU µs per request     | CPU vs baseline, paired    |',
    '| -------- | --------- | -------------------------- | ---------------------- | -------------------------- |',
  ];
  for (const concurrency of CONCURRENCY) {
    for (const p of pairs) await slice(p.client, concurrency); // warm-up
    const perSecond = new Map<string, number[]>();
    const cpuMicros = new Map<string, number[]>();
    for (let t = 0; t < turns; t++) {
      for (const p of t % 2 ? [...pairs].reverse() : pairs) {
        const { count, cpu, ms } = await slice(p.client, concurrency);
        perSecond.set(p.name, [...(perSecond.get(p.name) ?? []), (count * 1000) / ms]);
        cpuMicros.set(p.name, [...(cpuMicros.get(p.name) ?? []), cpu / count]);
      }
    }
    for (const p of pairs) {
      const rate = perSecond.get(p.name)!;
      const cpu = cpuMicros.get(p.name)!;
      const ref = pairs[0].name;
      const paired = p.name === ref ? '' : pairedChange(cpu, cpuMicros.get(ref)!);
      lines.push(
        `| ${p.name.padEnd(8)} | ${String(concurrency).padEnd(9)} | ${cell(rate, p.name === ref ? null : perSecond.get(ref)!, 0).padEnd(26)} | ${cell(cpu, null, 2).padEnd(22)} | ${paired.padEnd(26)} |`,
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exit(0);
}

const role = process.argv[2];
const run =
  role === '--serve'
    ? serve(process.argv[3] as Mode, process.argv[4])
    : role === '--load'
      ? load(
          process.argv[3] as Mode,
          process.argv[4],
          Number(process.argv[5]),
          Number(process.argv[6]),
        )
      : process.argv.includes('--in-process')
        ? inProcess(
            argValue('--baseline') ?? '',
            process.argv.includes('--sdk'),
            Number(argValue('--turns') ?? 40),
          )
        : main();
run.catch((err: unknown) => {
  process.stderr.write(
    `otel-overhead ${role ?? ''} failed: ${err instanceof Error ? err.stack : String(err)}\n`,
  );
  process.exit(1);
});
