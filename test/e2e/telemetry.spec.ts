/**
 * OpenTelemetry across a real connection: a client process and a server process, each with
 * the SDK registered (fixtures/otel-peer.ts), over TCP and over a local socket. The trace
 * context travels in the packets' metadata; spans, their parents, kinds, statuses and
 * attributes, and the duration histograms of both sides are read back from the processes.
 * Also: the package loads and serves in a tree where `@opentelemetry/api` is not installed.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, describe, expect, it } from '@jest/globals';

import { nodeWithTsArgs, startChild, type ChildRun } from '../helpers/child-process.js';
import { formatTraceTree, type SpanRecord } from '../helpers/otel-trace-tree.js';
import { CHILD_START_MS } from '../helpers/time-budget.js';
import { pollUntil, TRANSPORTS, uniqueName, waitEvent } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const PEER = path.join(here, 'fixtures', 'otel-peer.ts');
const WITHOUT_OTEL = path.join(here, 'fixtures', 'without-otel.ts');

/** The remote parent the client's calls run under (fixtures/otel-peer.ts). */
const REMOTE_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

interface MetricDump {
  name: string;
  unit: string;
  points: Array<{ attributes: Record<string, unknown>; count: number; sum: number }>;
}

interface ClientResult {
  results: { sum: number; stream: number[]; fail: unknown; meta: Record<string, string> };
  lastStreamValueAt: number;
  spans: SpanRecord[];
  metrics: MetricDump[];
}

const runs: ChildRun[] = [];
afterEach(async () => {
  for (const run of runs.splice(0)) await run.stop();
});

function start(args: string[], env: NodeJS.ProcessEnv = {}): ChildRun {
  const run = startChild(process.execPath, nodeWithTsArgs(PEER, ...args), {
    env: { ...process.env, ...env },
  });
  runs.push(run);
  return run;
}

/** Runs the server and then the client; returns the client's result and the server's spans. */
async function tracedRun(
  transport: 'tcp' | 'local',
  env: { server?: NodeJS.ProcessEnv; client?: NodeJS.ProcessEnv } = {},
): Promise<{
  client: ClientResult;
  server: { spans: SpanRecord[]; metrics: MetricDump[]; notes: unknown[] };
  port: number;
  path: string;
}> {
  const name = uniqueName('otel');
  const where = transport === 'tcp' ? [] : ['--name', name];
  const server = start(['--role', 'server', '--transport', transport, ...where], env.server);
  const ready = await waitEvent(server, 'ready', CHILD_START_MS);
  const port = Number(ready.port ?? 0);
  const target = transport === 'tcp' ? ['--port', String(port)] : ['--name', name];
  const clientRun = start(['--role', 'client', '--transport', transport, ...target], env.client);
  const client = (await waitEvent(clientRun, 'result', CHILD_START_MS)) as unknown as ClientResult;
  // The server ends a span as its last reply goes out: it may still be ending the last one.
  const dump = await pollUntil(
    async () => {
      server.proc.stdin!.write('dump\n');
      return (await waitEvent(server, 'dump')) as unknown as {
        spans: SpanRecord[];
        metrics: MetricDump[];
        notes: unknown[];
      };
    },
    (d) => d.spans.filter((s) => s.kind === 'SERVER' || s.kind === 'CONSUMER').length >= 5,
    CHILD_START_MS,
    'the server spans of sum, stream, fail, meta and note',
  );
  return {
    client,
    server: dump,
    port,
    path: transport === 'local' ? String(ready.fullServerName) : '',
  };
}

function one(spans: SpanRecord[], kind: string, name: string): SpanRecord {
  const found = spans.filter((s) => s.kind === kind && s.name === name);
  if (found.length !== 1) {
    throw new Error(
      `expected one ${kind} span "${name}", found ${found.length}:\n${formatTraceTree(spans).join('\n')}`,
    );
  }
  return found[0];
}

function points(metrics: MetricDump[], name: string): MetricDump['points'] {
  return metrics.find((m) => m.name === name)?.points ?? [];
}

describe.each(TRANSPORTS)('OpenTelemetry between two processes (%s)', (transport) => {
  it('a server span is the child of the client span across the connection, in one trace; handlers run inside it; events are PRODUCER / CONSUMER; an RpcException is ERROR on both sides; streams end at the last reply; attributes and durations by the RPC conventions', async () => {
    const { client, server, port, path: socketPath } = await tracedRun(transport);
    const all = [...client.spans, ...server.spans];
    const tree = formatTraceTree(all).join('\n');

    // Calls worked, and every span of both processes is in the caller's trace.
    expect(client.results.sum).toBe(6);
    expect(client.results.stream).toEqual([1, 2, 3]);
    expect(client.results.fail).toEqual({ status: 'error', message: 'nope' });
    for (const s of all)
      expect({ span: s.name, traceId: s.traceId }).toEqual({
        span: s.name,
        traceId: REMOTE_TRACE_ID,
      });

    const scenario = one(client.spans, 'INTERNAL', 'scenario');
    for (const name of ['sum', 'stream', 'fail', 'meta']) {
      const clientSpan = one(client.spans, 'CLIENT', name);
      const serverSpan = one(server.spans, 'SERVER', name);
      expect(clientSpan.parentSpanId).toBe(scenario.spanId);
      // The server's parent is the client's span: carried in the packet's metadata.
      expect({ name, parent: serverSpan.parentSpanId }).toEqual({
        name,
        parent: clientSpan.spanId,
      });
      // The caller's tracestate travels with the trace.
      expect(serverSpan.traceState).toBe('vendor=abc');
    }
    // A span the handler starts (after an await) is a child of the SERVER span.
    expect(one(server.spans, 'INTERNAL', 'sum.work').parentSpanId).toBe(
      one(server.spans, 'SERVER', 'sum').spanId,
    );

    // Events: PRODUCER on the client, CONSUMER (its child) on the server; the handler runs in it.
    const producer = one(client.spans, 'PRODUCER', 'note');
    const consumer = one(server.spans, 'CONSUMER', 'note');
    expect(producer.parentSpanId).toBe(scenario.spanId);
    expect(consumer.parentSpanId).toBe(producer.spanId);
    expect(server.notes).toEqual([
      {
        metadata: {
          traceparent: `00-${REMOTE_TRACE_ID}-${producer.spanId}-01`,
          tracestate: 'vendor=abc',
        },
        activeSpanId: consumer.spanId,
      },
    ]);

    // The packet's metadata: the QtRecord's own, and the W3C trace context of the CLIENT span.
    const meta = one(client.spans, 'CLIENT', 'meta');
    expect(client.results.meta).toEqual({
      tenant: 'acme',
      traceparent: `00-${REMOTE_TRACE_ID}-${meta.spanId}-01`,
      tracestate: 'vendor=abc',
    });

    // An RpcException: status ERROR with its message, and error.type, on both sides.
    for (const span of [one(client.spans, 'CLIENT', 'fail'), one(server.spans, 'SERVER', 'fail')]) {
      expect(span.status).toBe('ERROR');
      expect(span.statusMessage).toBe('nope');
      expect(span.attributes['error.type']).toBe('_OTHER');
    }
    for (const name of ['sum', 'stream', 'meta']) {
      expect(one(client.spans, 'CLIENT', name).status).toBe('UNSET');
      expect(one(server.spans, 'SERVER', name).status).toBe('UNSET');
    }

    // A stream's spans last until its last reply: three values 50 ms apart.
    const clientStream = one(client.spans, 'CLIENT', 'stream');
    const serverStream = one(server.spans, 'SERVER', 'stream');
    expect(serverStream.durationMs).toBeGreaterThanOrEqual(140);
    expect(clientStream.durationMs).toBeGreaterThanOrEqual(serverStream.durationMs);
    expect(clientStream.startMs + clientStream.durationMs).toBeGreaterThanOrEqual(
      client.lastStreamValueAt - 1,
    );

    // Attributes (RPC semantic conventions, v1.37 by default).
    const address = transport === 'tcp' ? '127.0.0.1' : socketPath;
    const location =
      transport === 'tcp'
        ? { 'server.address': address, 'server.port': port, 'network.transport': 'tcp' }
        : { 'server.address': address, 'network.transport': 'unix' };
    const clientSum = one(client.spans, 'CLIENT', 'sum');
    expect(clientSum.attributes).toEqual({
      'rpc.system': 'nestjs_qt',
      'rpc.method': 'sum',
      ...location,
      // The connection the call went out on (TCP: an address of the endpoint).
      ...(transport === 'tcp'
        ? { 'network.peer.address': '127.0.0.1', 'network.peer.port': port }
        : {}),
    });
    expect(one(server.spans, 'SERVER', 'sum').attributes).toEqual({
      'rpc.system': 'nestjs_qt',
      'rpc.method': 'sum',
      ...location,
    });
    expect(producer.attributes).toMatchObject({ 'rpc.system': 'nestjs_qt', 'rpc.method': 'note' });
    expect(consumer.attributes).toMatchObject({ 'rpc.system': 'nestjs_qt', 'rpc.method': 'note' });

    // Duration histograms: one point per method (requests only), error.type on the failed one.
    for (const [metrics, name] of [
      [client.metrics, 'rpc.client.duration'],
      [server.metrics, 'rpc.server.duration'],
    ] as const) {
      expect(metrics.find((m) => m.name === name)?.unit).toBe('ms');
      const byMethod = new Map(points(metrics, name).map((p) => [p.attributes['rpc.method'], p]));
      expect([...byMethod.keys()].sort()).toEqual(['fail', 'meta', 'stream', 'sum']);
      for (const p of byMethod.values()) {
        expect(p.count).toBe(1);
        expect(p.attributes).toMatchObject({ 'rpc.system': 'nestjs_qt', ...location });
      }
      expect(byMethod.get('fail')!.attributes['error.type']).toBe('_OTHER');
      expect(byMethod.get('sum')!.attributes['error.type']).toBeUndefined();
      expect(byMethod.get('stream')!.sum).toBeGreaterThanOrEqual(140);
    }

    // The tree as the sample prints it.
    const shape = formatTraceTree(all).map((line) =>
      line.replace(/ \[.*$| \d+\.\d ms.*$/, '').replace(/\s+$/, ''),
    );
    expect(shape.filter((l) => l.includes('sum'))).toEqual(
      [
        '├─ client CLIENT   sum',
        '│  └─ server SERVER   sum',
        '│     └─ server INTERNAL sum.work',
      ].map((l) => `   ${l}`),
    );
    expect(tree).toContain('ERROR: nope');
  });
});

describe('OpenTelemetry semantic-convention opt-in (OTEL_SEMCONV_STABILITY_OPT_IN)', () => {
  it('"rpc" gives the stable names (rpc.system.name, rpc.*.call.duration in s, no server address on metrics); "rpc/dup" gives both', async () => {
    const { client, server } = await tracedRun('tcp', {
      server: { OTEL_SEMCONV_STABILITY_OPT_IN: 'rpc' },
      client: { OTEL_SEMCONV_STABILITY_OPT_IN: 'http,rpc/dup' },
    });
    const serverSum = one(server.spans, 'SERVER', 'sum');
    expect(serverSum.attributes['rpc.system.name']).toBe('nestjs_qt');
    expect(serverSum.attributes['rpc.system']).toBeUndefined();
    expect(server.metrics.map((m) => [m.name, m.unit])).toEqual([
      ['rpc.server.call.duration', 's'],
    ]);
    const serverPoint = points(server.metrics, 'rpc.server.call.duration').find(
      (p) => p.attributes['rpc.method'] === 'stream',
    )!;
    expect(serverPoint.attributes).toEqual({
      'rpc.system.name': 'nestjs_qt',
      'rpc.method': 'stream',
      'network.transport': 'tcp',
    });
    expect(serverPoint.sum).toBeGreaterThanOrEqual(0.14);
    expect(serverPoint.sum).toBeLessThan(10);

    const clientSum = one(client.spans, 'CLIENT', 'sum');
    expect(clientSum.attributes).toMatchObject({
      'rpc.system': 'nestjs_qt',
      'rpc.system.name': 'nestjs_qt',
    });
    expect(client.metrics.map((m) => [m.name, m.unit]).sort()).toEqual([
      ['rpc.client.call.duration', 's'],
      ['rpc.client.duration', 'ms'],
    ]);
  });
});

describe('without @opentelemetry/api installed', () => {
  let scratch = '';
  afterEach(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    scratch = '';
  });

  it('the package loads, serves and calls: the API is an optional peer', async () => {
    // A tree with the package's sources and every dependency but @opentelemetry/*.
    scratch = mkdtempSync(path.join(os.tmpdir(), 'qt-no-otel-'));
    const modules = path.join(scratch, 'node_modules');
    mkdirSync(modules);
    for (const entry of readdirSync(path.join(root, 'node_modules'))) {
      if (entry === '@opentelemetry' || entry.startsWith('.')) continue;
      symlinkSync(path.join(root, 'node_modules', entry), path.join(modules, entry));
    }
    const pkg = path.join(scratch, 'pkg');
    cpSync(path.join(root, 'lib'), path.join(pkg, 'lib'), { recursive: true });
    cpSync(WITHOUT_OTEL, path.join(pkg, 'app.ts'));
    // The premise: from the package's files, the API does not resolve.
    const fromLib = createRequire(path.join(pkg, 'lib', 'transport', 'telemetry', 'otel-api.ts'));
    expect(() => fromLib.resolve('@opentelemetry/api')).toThrow(/Cannot find module/);

    const run = startChild(process.execPath, nodeWithTsArgs(path.join(pkg, 'app.ts')), {
      cwd: scratch,
    });
    runs.push(run);
    const result = await waitEvent(run, 'result', CHILD_START_MS);
    expect(result).toEqual({
      event: 'result',
      apiResolvable: false,
      otelLoaded: false,
      sum: 6,
      metadata: { tenant: 'acme' },
    });
    expect(await run.exited).toEqual({ code: 0, signal: null });
  });
});
