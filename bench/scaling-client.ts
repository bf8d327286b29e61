/**
 * The client process of the scaling figures: `node scaling-client.js <config-json>` (a
 * ScalingConfig). It holds one ClientQt per side (the sides' servers are already running),
 * and measures the sides in turns: at each concurrency, `rounds` rounds, each giving every
 * side one slice of `durationMs / rounds` (in the reverse order every other round), so that
 * the machine's ups and downs fall on every side alike. The load is the throughput figures'
 * (load.ts). Prints one JSON line: per side and concurrency, requests/s, latency, and the
 * CPU time per request of this process and of the side's server processes (from /proc).
 */
import 'reflect-metadata';

import { ClientQt, type QtTransportOptions } from '../lib/index.js';
import {
  load,
  machineBusyMicros,
  percentile,
  processCpuMicros,
  proxyClient,
  throughput,
  type BenchClient,
  type ThroughputFigure,
} from './load.js';

export interface ScalingSideConfig {
  side: string;
  /** The servers' TCP ports on 127.0.0.1. */
  ports: number[];
  loadBalancing: 'first' | 'round-robin' | 'least-pending';
  connectionsPerEndpoint: number;
  /** Every process serving the ports (a cluster's primary and workers included). */
  serverPids: number[];
  /** The concurrencies this side is measured at. */
  concurrency: number[];
}

export interface ScalingConfig {
  sides: ScalingSideConfig[];
  /** ms per side and concurrency, over all rounds. */
  durationMs: number;
  rounds: number;
  /** ms at 256 in flight for each side before the phases, not measured. */
  warmupMs: number;
}

export interface ScalingFigure extends ThroughputFigure {
  /** CPU time of this client process per request answered (µs). */
  clientCpuUs: number;
  /** CPU time of the side's server processes, summed, per request answered (µs); null without /proc. */
  serverCpuUs: number | null;
  /**
   * Cores the whole machine kept busy over the side's slices, every process counted (the
   * client and servers, and whatever else runs); null without /proc.
   */
  machineBusyCores: number | null;
}

export interface ScalingResult {
  /** The connections the side's client held. */
  connections: number;
  throughput: Record<string, ScalingFigure>;
}

function serversCpu(pids: number[]): number | null {
  let sum = 0;
  for (const pid of pids) {
    const us = processCpuMicros(pid);
    if (us === null) return null;
    sum += us;
  }
  return sum;
}

function clientFor(side: ScalingSideConfig): ClientQt {
  // 'first' is the client as it was before balancing: the one-server options, no endpoints.
  const options: QtTransportOptions =
    side.loadBalancing === 'first'
      ? { transport: 'tcp', host: '127.0.0.1', port: side.ports[0] }
      : {
          transport: 'tcp',
          endpoints: side.ports.map((port) => ({ host: '127.0.0.1', port })),
          loadBalancing: side.loadBalancing,
          connectionsPerEndpoint: side.connectionsPerEndpoint,
        };
  return new ClientQt(options);
}

interface Totals {
  requests: number;
  seconds: number;
  clientUs: number;
  serverUs: number | null;
  machineUs: number | null;
  latencies: number[];
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]) as ScalingConfig;
  const qts = config.sides.map(clientFor);
  const clients: BenchClient[] = [];
  for (const qt of qts) {
    await qt.connect();
    clients.push(proxyClient(qt));
  }
  const results: Record<string, ScalingResult> = {};
  for (const [i, side] of config.sides.entries()) {
    await throughput(clients[i], 256, config.warmupMs);
    results[side.side] = { connections: qts[i].sockets().length, throughput: {} };
  }
  const levels = [...new Set(config.sides.flatMap((s) => s.concurrency))];
  const slice = config.durationMs / config.rounds;
  for (const c of levels) {
    const sides = [...config.sides.keys()].filter((i) => config.sides[i].concurrency.includes(c));
    const totals = new Map<number, Totals>(
      sides.map((i) => [
        i,
        { requests: 0, seconds: 0, clientUs: 0, serverUs: 0, machineUs: 0, latencies: [] },
      ]),
    );
    for (let round = 0; round < config.rounds; round++) {
      for (const i of round % 2 ? [...sides].reverse() : sides) {
        const t = totals.get(i)!;
        const client0 = process.cpuUsage();
        const servers0 = serversCpu(config.sides[i].serverPids);
        const machine0 = machineBusyMicros();
        const run = await load(clients[i], c, slice, t.latencies);
        const servers1 = serversCpu(config.sides[i].serverPids);
        const machine1 = machineBusyMicros();
        const used = process.cpuUsage(client0);
        t.requests += run.requests;
        t.seconds += run.seconds;
        t.clientUs += used.user + used.system;
        t.serverUs =
          t.serverUs === null || servers0 === null || servers1 === null
            ? null
            : t.serverUs + (servers1 - servers0);
        t.machineUs =
          t.machineUs === null || machine0 === null || machine1 === null
            ? null
            : t.machineUs + (machine1 - machine0);
      }
    }
    for (const [i, t] of totals) {
      t.latencies.sort((a, b) => a - b);
      results[config.sides[i].side].throughput[String(c)] = {
        rps: t.requests / t.seconds,
        p50: percentile(t.latencies, 50),
        p99: percentile(t.latencies, 99),
        clientCpuUs: t.clientUs / t.requests,
        serverCpuUs: t.serverUs === null ? null : t.serverUs / t.requests,
        machineBusyCores: t.machineUs === null ? null : t.machineUs / 1e6 / t.seconds,
      };
    }
  }
  await Promise.all(clients.map((c) => c.close()));
  process.stdout.write(`${JSON.stringify(results)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench scaling client failed: ${err instanceof Error ? err.stack : String(err)}\n`,
  );
  process.exit(1);
});
