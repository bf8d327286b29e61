/**
 * One benchmark client process, in one of two modes; each prints one JSON line.
 *
 *   node client.js <kind> <address> <settings-json> [<server-pid>]
 *     every phase of the transports table against a server of that kind (a ClientResult);
 *     with the server's pid, the CPU time per request of both processes in each phase
 *   node client.js <kind> <address> --calls <n> [--warmup <n>]
 *     `warmup` then exactly `n` echo requests, one at a time (syscalls.ts counts them)
 *   node client.js <kind> <address> --payload <MiB> [--times <n>] [--cbor] [--pid <server-pid>]
 *     one warm-up then `n` (default 5) echo round trips of one payload size (JSON string, or
 *     a Buffer through CBOR); prints each one's ms and the CPU time of both processes (µs)
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { ClientTCP } from '@nestjs/microservices';

import { ClientQt } from '../lib/index.js';
import { benchPkiDir, isRaw, type Kind } from './kinds.js';
import {
  processCpuMicros,
  proxyClient,
  throughput,
  type BenchClient,
  type ThroughputFigure,
} from './load.js';
import { onRawFrames, rawFrame } from './raw-frames.js';

export type { ThroughputFigure } from './load.js';

export interface Settings {
  /** ms per throughput phase. */
  durationMs: number;
  concurrency: number[];
  events: number;
  /** Payload sizes in MiB. */
  payloadMiB: number[];
}

/** CPU time (user + system, every thread) per request answered or event sent, in µs. */
export interface CpuFigure {
  client: number;
  /** null when the server's pid was not given or /proc could not be read. */
  server: number | null;
}

export interface ClientResult {
  kind: Kind;
  throughput: Record<string, ThroughputFigure>;
  /** Per throughput phase ('1', '16', '256': the concurrency) and for 'events'. */
  cpuUs?: Record<string, CpuFigure>;
  eventsPerSec: number | null;
  payloadJsonMs: Record<string, number>;
  payloadCborMs: Record<string, number>;
  rss: Record<string, number>;
}

const MiB = 1024 * 1024;

/** The raw reference: length-prefixed JSON frames, replies matched by id. */
async function rawClient(kind: Kind, address: string): Promise<BenchClient> {
  const socket =
    kind === 'raw-unix'
      ? net.connect({ path: address })
      : net.connect({ port: Number(address), host: '127.0.0.1' });
  if (kind === 'raw-net') socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let nextId = 1;
  const waiting = new Map<number, (v: unknown) => void>();
  let statsWaiter: ((v: unknown) => void) | null = null;
  onRawFrames(socket, (frames) => {
    for (const frame of frames) {
      const value = JSON.parse(frame.subarray(4).toString()) as { id?: number; data?: unknown };
      if (value.id === undefined) {
        statsWaiter?.(value);
        statsWaiter = null;
      } else {
        waiting.get(value.id)?.(value.data);
        waiting.delete(value.id);
      }
    }
  });
  // Corked, the header and body leave in one writev, as the other clients send a frame.
  const send = (body: Buffer): void => {
    socket.cork();
    for (const part of rawFrame(body)) socket.write(part);
    socket.uncork();
  };
  return {
    request: (pattern, data) => {
      if (pattern === 'stats') {
        return new Promise((resolve) => {
          statsWaiter = resolve;
          send(Buffer.from('stats'));
        });
      }
      const id = nextId++;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        send(Buffer.from(JSON.stringify({ id, pattern, data })));
      });
    },
    emit: async () => undefined,
    close: async () => {
      socket.destroy();
    },
  };
}

async function serverStats(client: BenchClient): Promise<{ events?: number; rss: number }> {
  return (await client.request('stats', {})) as { events?: number; rss: number };
}

async function eventsPerSec(client: BenchClient, count: number): Promise<number> {
  await client.request('reset', {});
  const start = performance.now();
  const written: Array<Promise<void>> = [];
  for (let i = 0; i < count; i++) written.push(client.emit('count', { i }));
  await Promise.all(written);
  const deadline = Date.now() + 60000;
  for (;;) {
    const s = await serverStats(client);
    if ((s.events ?? 0) >= count) break;
    if (Date.now() > deadline) throw new Error(`only ${s.events} of ${count} events arrived`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return count / ((performance.now() - start) / 1000);
}

async function roundTrip(client: BenchClient, data: unknown): Promise<number> {
  const t0 = performance.now();
  const reply = await client.request('echo', data);
  const ms = performance.now() - t0;
  const size = (x: unknown): number =>
    typeof x === 'string' ? x.length : Buffer.isBuffer(x) ? x.length : -1;
  if (size(reply) !== size(data)) throw new Error('the echo came back different');
  return ms;
}

/**
 * Starts counting CPU time of this process and of `serverPid`; the returned function gives
 * each one's time since then per `count` (µs).
 */
function cpuMeter(serverPid: number | null): (count: number) => CpuFigure {
  // The server's first, so that the client's count starts after reading it (and after the
  // first read's `getconf CLK_TCK`), and ends before the second.
  const server0 = serverPid === null ? null : processCpuMicros(serverPid);
  const client0 = process.cpuUsage();
  return (count) => {
    const used = process.cpuUsage(client0);
    const server1 = serverPid === null ? null : processCpuMicros(serverPid);
    return {
      client: (used.user + used.system) / count,
      server: server0 === null || server1 === null ? null : (server1 - server0) / count,
    };
  };
}

/** The client of `kind` (JSON), and for this transport a second one that speaks CBOR. */
async function connect(
  kind: Kind,
  address: string,
  withCbor: boolean,
): Promise<{ client: BenchClient; cbor: BenchClient | null }> {
  const maxFrameSize = 128 * MiB;
  const ca = kind === 'qt-tls' || kind === 'nest-tls' ? path.join(benchPkiDir(), 'ca.pem') : '';
  if (kind === 'qt-tcp' || kind === 'qt-local' || kind === 'qt-tls') {
    const base =
      kind === 'qt-tcp'
        ? { transport: 'tcp' as const, port: Number(address) }
        : kind === 'qt-tls'
          ? { transport: 'tcp' as const, port: Number(address), tls: { ca } }
          : { transport: 'local' as const, name: address };
    const json = new ClientQt({ ...base, maxFrameSize });
    await json.connect();
    if (!withCbor) return { client: proxyClient(json), cbor: null };
    const c = new ClientQt({ ...base, maxFrameSize, codec: 'cbor' });
    await c.connect();
    return { client: proxyClient(json), cbor: proxyClient(c) };
  }
  if (kind === 'nest-tcp' || kind === 'nest-tls') {
    const nest = new ClientTCP({
      host: '127.0.0.1',
      port: Number(address),
      ...(kind === 'nest-tls' ? { tlsOptions: { ca: fs.readFileSync(ca) } } : {}),
    });
    await nest.connect();
    return { client: proxyClient(nest as never), cbor: null };
  }
  return { client: await rawClient(kind, address), cbor: null };
}

/** `warmup` then `calls` echo requests, one at a time; the syscall counts' load. */
async function sequentialCalls(
  kind: Kind,
  address: string,
  calls: number,
  warmup: number,
): Promise<void> {
  const { client } = await connect(kind, address, false);
  const payload = { text: 'x'.repeat(60), n: 42, ok: true };
  for (let i = 0; i < warmup; i++) await client.request('echo', payload);
  const start = performance.now();
  for (let i = 0; i < calls; i++) await client.request('echo', payload);
  const seconds = (performance.now() - start) / 1000;
  await client.close();
  process.stdout.write(`${JSON.stringify({ kind, calls, warmup, seconds })}\n`);
  process.exit(0);
}

/** `times` round trips of one payload size, after one warm-up (a profile's or an A/B's load). */
async function payloadRuns(kind: Kind, address: string, args: string[]): Promise<void> {
  const option = (name: string): string | undefined => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const mib = Number(option('--payload'));
  const times = Number(option('--times') ?? '5');
  const useCbor = args.includes('--cbor');
  const pid = option('--pid');
  const { client, cbor } = await connect(kind, address, useCbor);
  const target = useCbor && cbor ? cbor : client;
  const data = useCbor ? Buffer.alloc(mib * MiB, 0x61) : 'a'.repeat(mib * MiB);
  await roundTrip(target, data);
  const ms: number[] = [];
  const cpu = cpuMeter(pid === undefined ? null : Number(pid));
  const own = process.cpuUsage();
  for (let i = 0; i < times; i++) ms.push(await roundTrip(target, data));
  const cpuUs = cpu(times);
  const { user, system } = process.cpuUsage(own);
  Object.assign(cpuUs, { clientUser: user / times, clientSystem: system / times });
  await client.close();
  await cbor?.close();
  process.stdout.write(`${JSON.stringify({ kind, mib, cbor: useCbor, ms, cpuUs })}\n`);
  process.exit(0);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const [kind, address] = args as [Kind, string];
  if (args[2] === '--payload') return payloadRuns(kind, address, args);
  if (args[2] === '--calls') {
    const warmupAt = args.indexOf('--warmup');
    const warmup = warmupAt >= 0 ? Number(args[warmupAt + 1]) : 0;
    return sequentialCalls(kind, address, Number(args[3]), warmup);
  }
  const settings = JSON.parse(args[2]) as Settings;
  const serverPid = args[3] ? Number(args[3]) : null;
  const { client, cbor } = await connect(kind, address, true);

  const cpuUs: Record<string, CpuFigure> = {};
  const result: ClientResult = {
    kind,
    throughput: {},
    cpuUs,
    eventsPerSec: null,
    payloadJsonMs: {},
    payloadCborMs: {},
    rss: {},
  };
  result.rss.idle = (await serverStats(client)).rss;
  await throughput(client, 16, Math.min(500, settings.durationMs)); // warm-up
  for (const c of settings.concurrency) {
    const cpu = cpuMeter(serverPid);
    const { rps, p50, p99, requests } = await throughput(client, c, settings.durationMs);
    cpuUs[String(c)] = cpu(requests);
    result.throughput[String(c)] = { rps, p50, p99 };
  }
  result.rss.afterThroughput = (await serverStats(client)).rss;
  if (!isRaw(kind)) {
    const cpu = cpuMeter(serverPid);
    result.eventsPerSec = await eventsPerSec(client, settings.events);
    cpuUs.events = cpu(settings.events);
    result.rss.afterEvents = (await serverStats(client)).rss;
  }
  for (const mib of settings.payloadMiB) {
    result.payloadJsonMs[String(mib)] = await roundTrip(client, 'a'.repeat(mib * MiB));
    if (cbor)
      result.payloadCborMs[String(mib)] = await roundTrip(cbor, Buffer.alloc(mib * MiB, 0x61));
  }
  result.rss.afterPayload = (await serverStats(client)).rss;
  await client.close();
  await cbor?.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench client failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
