/**
 * The scaling figures: one balancing ClientQt against one server process and against two
 * (and two node:cluster workers on one port), and the cost of balancing with a single
 * endpoint ('first' against the balancing mode, same server). run.ts starts the processes;
 * this file makes the table, the bound and the goals from their results.
 */
import { cell, figure, fmt, type Figure } from './figures.js';
import type { ScalingFigure, ScalingResult } from './scaling-client.js';

/**
 * - first-1: today's client (loadBalancing 'first') against one server;
 * - balanced-1: the balancing client, the same single endpoint;
 * - balanced-2: the balancing client against two server processes (two ports);
 * - cluster-2: the balancing client, 2 connections to one port served by 2 cluster workers.
 */
export type Side = 'first-1' | 'balanced-1' | 'balanced-2' | 'cluster-2';
export const SIDES: Side[] = ['first-1', 'balanced-1', 'balanced-2', 'cluster-2'];
export type Balancing = 'round-robin' | 'least-pending';

export function sideLabel(side: Side, balancing: Balancing): string {
  switch (side) {
    case 'first-1':
      return "1 server, 'first'";
    case 'balanced-1':
      return `1 server, '${balancing}'`;
    case 'balanced-2':
      return `2 server processes, '${balancing}'`;
    case 'cluster-2':
      return `2 cluster workers (one port, 2 connections), '${balancing}'`;
  }
}

export interface ScalingSettings {
  balancing: Balancing;
  /** ms per phase. */
  durationMs: number;
  /** Turns per side and concurrency (each `durationMs / rounds`). */
  rounds: number;
  /** ms at 256 in flight for each side before its phases, not measured. */
  warmupMs: number;
  /** Concurrencies of each side. */
  concurrency: Record<Side, number[]>;
  cores: number;
}

export interface ScalingRow {
  name: string;
  unit: string;
  values: Partial<Record<Side, Figure>>;
}

export function scalingRows(results: Partial<Record<Side, ScalingResult[]>>): ScalingRow[] {
  const out: ScalingRow[] = [];
  const pick = (
    name: string,
    unit: string,
    c: number,
    get: (f: ScalingFigure) => number | null,
  ): void => {
    const values: Partial<Record<Side, Figure>> = {};
    for (const side of SIDES) {
      const list = (results[side] ?? [])
        .map((r) => r.throughput[String(c)])
        .filter((f): f is ScalingFigure => f !== undefined)
        .map(get)
        .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      if (list.length > 0) values[side] = figure(list);
    }
    if (Object.keys(values).length > 0) out.push({ name, unit, values });
  };
  pick('requests/s at 1 in flight', 'req/s', 1, (f) => f.rps);
  pick('requests/s at 256 in flight', 'req/s', 256, (f) => f.rps);
  pick('p50 latency at 256 in flight', 'ms', 256, (f) => f.p50);
  pick('p99 latency at 256 in flight', 'ms', 256, (f) => f.p99);
  pick('client CPU per request at 256 in flight', 'µs', 256, (f) => f.clientCpuUs);
  pick("servers' CPU per request at 256 in flight", 'µs', 256, (f) => f.serverCpuUs);
  pick('CPU per request at 256 in flight, client + servers', 'µs', 256, (f) =>
    f.serverCpuUs === null ? null : f.clientCpuUs + f.serverCpuUs,
  );
  pick('cores busy at 256 in flight, client + servers', 'cores', 256, (f) =>
    f.serverCpuUs === null ? null : (f.rps * (f.clientCpuUs + f.serverCpuUs)) / 1e6,
  );
  pick('cores busy at 256 in flight, other processes', 'cores', 256, (f) =>
    f.machineBusyCores === null || f.serverCpuUs === null
      ? null
      : Math.max(0, f.machineBusyCores - (f.rps * (f.clientCpuUs + f.serverCpuUs)) / 1e6),
  );
  return out;
}

/**
 * What 2 servers can reach on this machine, from the 1-server run's CPU time per request
 * (medians at 256 in flight): c for the client process, s for the server process. Each
 * request costs c + s of CPU time, wherever it runs, so `cores` cores answer at most
 * cores / (c + s) requests per second; the client is one JavaScript thread, so at most
 * 1 / c; each server is one too, so 2 servers at most 2 / s. The bound is the smallest.
 */
export interface ScalingModel {
  cores: number;
  clientCpuUs: number;
  serverCpuUs: number;
  /** cores / (c + s), in req/s. */
  allCores: number;
  /** 1 core / c. */
  clientThread: number;
  /** 2 servers × 1 core / s. */
  serverThreads: number;
  bound: number;
  /**
   * Cores the other processes of the machine left free during the 2-server slices (cores
   * less their busy cores), and the bound on those instead of on every core; null without
   * /proc/stat. Not a goal: it tells how much of a miss the machine's other load explains.
   */
  freeCores: number | null;
  freeCoresBound: number | null;
  oneServerRps: number;
  twoServerRps: number | null;
  clusterRps: number | null;
}

export function scalingModel(rows: ScalingRow[], cores: number): ScalingModel | null {
  const get = (name: string, side: Side): number | undefined =>
    rows.find((r) => r.name === name)?.values[side]?.median;
  const c = get('client CPU per request at 256 in flight', 'balanced-1');
  const s = get("servers' CPU per request at 256 in flight", 'balanced-1');
  const one = get('requests/s at 256 in flight', 'balanced-1');
  if (c === undefined || s === undefined || one === undefined || c <= 0 || s <= 0) return null;
  const allCores = (cores * 1e6) / (c + s);
  const clientThread = 1e6 / c;
  const serverThreads = (2 * 1e6) / s;
  const others = get('cores busy at 256 in flight, other processes', 'balanced-2');
  const freeCores = others === undefined ? null : Math.max(0, cores - others);
  return {
    cores,
    clientCpuUs: c,
    serverCpuUs: s,
    allCores,
    clientThread,
    serverThreads,
    bound: Math.min(allCores, clientThread, serverThreads),
    freeCores,
    freeCoresBound:
      freeCores === null
        ? null
        : Math.min((freeCores * 1e6) / (c + s), clientThread, serverThreads),
    oneServerRps: one,
    twoServerRps: get('requests/s at 256 in flight', 'balanced-2') ?? null,
    clusterRps: get('requests/s at 256 in flight', 'cluster-2') ?? null,
  };
}

/** The goals of the scaling figures, as the transports' targets: medians, met or missed. */
function goals(rows: ScalingRow[], model: ScalingModel | null, balancing: Balancing): string[] {
  const get = (name: string, side: Side): number | undefined =>
    rows.find((r) => r.name === name)?.values[side]?.median;
  const lines: string[] = [];
  const add = (
    goal: string,
    mine: number | null | undefined,
    base: number | null | undefined,
    target: number,
    atLeast: boolean,
  ): void => {
    if (mine === undefined || mine === null || base === undefined || base === null || !base) {
      lines.push(`| ${goal} | — | not measured |`);
      return;
    }
    const r = mine / base;
    const met = atLeast ? r >= target : r <= target;
    lines.push(`| ${goal} | ${r.toFixed(2)}× | ${met ? 'met' : 'missed'} |`);
  };
  const total = 'CPU per request at 256 in flight, client + servers';
  add(
    '2 server processes: requests/s at 256 in flight ≥ 0.90× the bound',
    model?.twoServerRps,
    model?.bound,
    0.9,
    true,
  );
  add(
    '2 server processes: CPU per request ≤ 1.10× 1 server',
    get(total, 'balanced-2'),
    get(total, 'balanced-1'),
    1.1,
    false,
  );
  for (const c of [256, 1]) {
    add(
      `1 endpoint: '${balancing}' requests/s at ${c} in flight ≥ 0.95× 'first'`,
      get(`requests/s at ${c} in flight`, 'balanced-1'),
      get(`requests/s at ${c} in flight`, 'first-1'),
      0.95,
      true,
    );
  }
  return ['| goal | measured | |', '|---|---|---|', ...lines];
}

export interface ScalingReport {
  settings: ScalingSettings;
  rows: ScalingRow[];
  model: ScalingModel | null;
  /** Why a side was not measured (the cluster workers, when they fail to start). */
  notes: string[];
}

/** The "Scaling" section of latest.md. */
export function renderScaling(report: ScalingReport): string[] {
  const { settings, rows, model } = report;
  const sides = SIDES.filter((side) => rows.some((r) => r.values[side]));
  const md: string[] = [];
  md.push('## Scaling');
  md.push('');
  md.push(
    `This transport over TCP, one ClientQt in one client process; each server a Nest app on ServerQt in its own process ` +
      `(the cluster workers: forked by one primary, serving on its port). The request of the throughput figures, ` +
      `${settings.durationMs} ms per side and concurrency after ${settings.warmupMs} ms of warm-up at 256 in flight; ` +
      `the 1- and 2-server sides are measured by one client process in turns (${settings.rounds} rounds of ` +
      `${Math.round(settings.durationMs / settings.rounds)} ms slices, the order reversed every other round), so that the ` +
      `machine's ups and downs fall on each side alike; the cluster workers come after them. CPU per request: user + system time of the processes over the phase (every thread), ` +
      `divided by the requests answered; servers' CPU is the sum over the server processes. Cores busy: requests/s × ` +
      `CPU per request, and for other processes the machine's busy time over the same slices (/proc/stat) less that. ` +
      `Balancing: '${settings.balancing}'.`,
  );
  md.push('');
  md.push(`| figure | ${sides.map((s) => sideLabel(s, settings.balancing)).join(' | ')} |`);
  md.push(`|---|${sides.map(() => '---').join('|')}|`);
  for (const row of rows) {
    md.push(`| ${row.name} (${row.unit}) | ${sides.map((s) => cell(row.values[s])).join(' | ')} |`);
  }
  md.push('');
  if (model) {
    const c = model.clientCpuUs;
    const s = model.serverCpuUs;
    md.push(
      `Bound for 2 servers on ${model.cores} cores, from the 1-server run at 256 in flight ` +
        `(client c = ${fmt(c)} µs, server s = ${fmt(s)} µs of CPU per request): ` +
        `min(${model.cores} cores / (c + s) = ${fmt(model.allCores)}, 1 core / c = ${fmt(model.clientThread)}, ` +
        `2 servers × 1 core / s = ${fmt(model.serverThreads)}) = **${fmt(model.bound)} req/s**.`,
    );
    md.push('');
    const vs = (rps: number | null): string =>
      rps === null
        ? 'not measured'
        : `${fmt(rps)} req/s = ${(rps / model.bound).toFixed(2)}× the bound, ${(rps / model.oneServerRps).toFixed(2)}× 1 server`;
    md.push(`- 1 server: ${fmt(model.oneServerRps)} req/s`);
    md.push(`- 2 server processes: ${vs(model.twoServerRps)}`);
    md.push(`- 2 cluster workers: ${vs(model.clusterRps)}`);
    if (model.freeCores !== null && model.freeCoresBound !== null && model.twoServerRps !== null) {
      md.push(
        `- other processes left ${model.freeCores.toFixed(2)} of the ${model.cores} cores free during the 2-server ` +
          `slices (median); on those, the bound is ${fmt(model.freeCoresBound)} req/s, and 2 server processes ` +
          `reached ${(model.twoServerRps / model.freeCoresBound).toFixed(2)}× that`,
      );
    }
  } else {
    md.push('Bound: not computed (no CPU time per request for the 1-server run).');
  }
  const get = (name: string, side: Side): number | undefined =>
    rows.find((r) => r.name === name)?.values[side]?.median;
  const over = (name: string): string => {
    const mine = get(name, 'balanced-1');
    const base = get(name, 'first-1');
    return mine === undefined || base === undefined ? '—' : `${(mine / base).toFixed(2)}×`;
  };
  md.push(
    `- 1 endpoint, '${settings.balancing}' / 'first': requests/s ${over('requests/s at 256 in flight')} at 256 in flight, ` +
      `${over('requests/s at 1 in flight')} at 1; CPU per request at 256 in flight ${over('CPU per request at 256 in flight, client + servers')}`,
  );
  for (const note of report.notes) md.push(`- ${note}`);
  md.push('');
  md.push('Goals (medians):');
  md.push('');
  md.push(...goals(rows, model, settings.balancing));
  return md;
}
