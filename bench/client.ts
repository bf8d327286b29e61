/**
 * One benchmark client process: `node client.js <kind> <address> <settings-json>` runs
 * every phase against a server of that kind and prints one JSON line of results.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { ClientTCP } from '@nestjs/microservices';

import { ClientQt } from '../lib/index.js';
import { benchPkiDir, type Kind } from './kinds.js';
import { proxyClient, throughput, type BenchClient, type ThroughputFigure } from './load.js';
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

export interface ClientResult {
  kind: Kind;
  throughput: Record<string, ThroughputFigure>;
  eventsPerSec: number | null;
  payloadJsonMs: Record<string, number>;
  payloadCborMs: Record<string, number>;
  rss: Record<string, number>;
}

const MiB = 1024 * 1024;

/** The raw reference: length-prefixed JSON frames, replies matched by id. */
async function rawClient(port: number): Promise<BenchClient> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.setNoDelay(true);
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
  const send = (body: Buffer): void => {
    for (const part of rawFrame(body)) socket.write(part);
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

async function main(): Promise<void> {
  const [kind, address, settingsJson] = process.argv.slice(2) as [Kind, string, string];
  const settings = JSON.parse(settingsJson) as Settings;
  const maxFrameSize = 128 * MiB;
  let client: BenchClient;
  let cbor: BenchClient | null = null;
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
    client = proxyClient(json);
    const c = new ClientQt({ ...base, maxFrameSize, codec: 'cbor' });
    await c.connect();
    cbor = proxyClient(c);
  } else if (kind === 'nest-tcp' || kind === 'nest-tls') {
    const nest = new ClientTCP({
      host: '127.0.0.1',
      port: Number(address),
      ...(kind === 'nest-tls' ? { tlsOptions: { ca: fs.readFileSync(ca) } } : {}),
    });
    await nest.connect();
    client = proxyClient(nest as never);
  } else {
    client = await rawClient(Number(address));
  }

  const result: ClientResult = {
    kind,
    throughput: {},
    eventsPerSec: null,
    payloadJsonMs: {},
    payloadCborMs: {},
    rss: {},
  };
  result.rss.idle = (await serverStats(client)).rss;
  await throughput(client, 16, Math.min(500, settings.durationMs)); // warm-up
  for (const c of settings.concurrency) {
    const { rps, p50, p99 } = await throughput(client, c, settings.durationMs);
    result.throughput[String(c)] = { rps, p50, p99 };
  }
  result.rss.afterThroughput = (await serverStats(client)).rss;
  if (kind !== 'raw-net') {
    result.eventsPerSec = await eventsPerSec(client, settings.events);
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
