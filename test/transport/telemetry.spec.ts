// OpenTelemetry in one process: with `@opentelemetry/api` present and no SDK registered the
// transport records nothing and adds nothing to a packet; an SDK registered later is used
// from the next call, and nothing again once it is disabled. The W3C trace-context codec
// of packet metadata (lib/transport/telemetry/trace-context.ts) on its own.
// (Across two processes, with spans and metrics: test/e2e/telemetry.spec.ts.)
import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  context,
  createTraceState,
  metrics,
  propagation,
  ROOT_CONTEXT,
  trace,
  TraceFlags,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { firstValueFrom, lastValueFrom } from 'rxjs';

import { ClientQt, QtContext, ServerQt } from '../../lib/index.js';
import { otelApi } from '../../lib/transport/telemetry/otel-api.js';
import {
  extractTraceContext,
  injectTraceContext,
} from '../../lib/transport/telemetry/trace-context.js';

const seen: Array<{ metadata: unknown; activeSpan: boolean }> = [];

@Controller()
class PlainController {
  @MessagePattern('meta')
  meta(@Ctx() ctx: QtContext): unknown {
    seen.push({ metadata: ctx.getMetadata() ?? null, activeSpan: !!trace.getActiveSpan() });
    return ctx.getMetadata() ?? null;
  }

  @MessagePattern('fail')
  fail(): never {
    throw new RpcException('nope');
  }

  @EventPattern('note')
  note(@Payload() _data: unknown, @Ctx() ctx: unknown): void {
    const c = ctx as QtContext;
    seen.push({ metadata: c.getMetadata() ?? null, activeSpan: !!trace.getActiveSpan() });
  }
}

@Module({ controllers: [PlainController] })
class PlainModule {}

class ManualReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

describe('OpenTelemetry with the API present and no SDK registered', () => {
  let app: INestMicroservice;
  let client: ClientQt;

  beforeAll(async () => {
    const server = new ServerQt({ transport: 'tcp', port: 0 });
    app = await NestFactory.createMicroservice(PlainModule, { strategy: server, logger: false });
    await app.listen();
    const port = server.unwrap<{ serverPort(): number }>().serverPort();
    client = new ClientQt({ port });
  });

  afterAll(async () => {
    await client.close();
    await app.close();
    trace.disable();
    metrics.disable();
    context.disable();
  });

  /** A request, a failing request and an event; what the handlers saw. */
  async function calls(): Promise<typeof seen> {
    seen.length = 0;
    await firstValueFrom(client.send('meta', {}));
    await expect(firstValueFrom(client.send('fail', {}))).rejects.toEqual({
      status: 'error',
      message: 'nope',
    });
    await lastValueFrom(client.emit('note', {}), { defaultValue: undefined });
    // The event's handler runs after the frame is written: wait for it.
    for (let i = 0; i < 200 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    return [...seen];
  }

  it('calls work and nothing is recorded or sent; an SDK registered later is used from the next call; nothing again once it is disabled', async () => {
    // The API loads (it is installed) and nothing is registered with it.
    expect(otelApi()).not.toBeNull();
    expect(trace.getActiveSpan()).toBeUndefined();

    // 1. No SDK: the packets carry no metadata at all (the wire is as without telemetry).
    expect(await calls()).toEqual([
      { metadata: null, activeSpan: false },
      { metadata: null, activeSpan: false },
    ]);

    // 2. An SDK registered now: the next calls are traced and measured.
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const reader = new ManualReader();
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(provider);
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    const traced = await calls();
    expect(traced).toHaveLength(2);
    for (const s of traced) {
      expect(s.activeSpan).toBe(true);
      expect((s.metadata as Record<string, string>).traceparent).toMatch(
        /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/,
      );
    }
    const kinds = exporter
      .getFinishedSpans()
      .map((s) => `${s.name}:${s.kind}`)
      .sort();
    // SpanKind: SERVER 1, CLIENT 2, PRODUCER 3, CONSUMER 4.
    expect(kinds).toEqual(['fail:1', 'fail:2', 'meta:1', 'meta:2', 'note:3', 'note:4']);
    const { resourceMetrics } = await reader.collect();
    const names = resourceMetrics.scopeMetrics.flatMap((s) =>
      s.metrics.map((m) => m.descriptor.name),
    );
    expect(names.sort()).toEqual(['rpc.client.duration', 'rpc.server.duration']);

    // 3. Disabled again: nothing recorded, nothing sent.
    trace.disable();
    metrics.disable();
    exporter.reset();
    expect(await calls()).toEqual([
      { metadata: null, activeSpan: false },
      { metadata: null, activeSpan: false },
    ]);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});

describe('W3C trace context in packet metadata (telemetry/trace-context.ts)', () => {
  const api = otelApi()!;
  const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
  const SPAN_ID = 'b7ad6b7169203331';

  afterAll(() => propagation.disable());

  function parentOf(carrier: Record<string, unknown>): unknown {
    const span = trace.getSpanContext(extractTraceContext(api, ROOT_CONTEXT, carrier));
    return span ? { ...span, traceState: span.traceState?.serialize() } : null;
  }

  it('reads traceparent and tracestate without a registered propagator', () => {
    expect(
      parentOf({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`, tracestate: 'a=1,b=2', other: 'x' }),
    ).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
      isRemote: true,
      traceState: 'a=1,b=2',
    });
    // A later version may append fields; unsampled flags are kept.
    expect(parentOf({ traceparent: `cc-${TRACE_ID}-${SPAN_ID}-00-later` })).toMatchObject({
      traceId: TRACE_ID,
      traceFlags: 0,
    });
  });

  it.each([
    ['version ff', `ff-${TRACE_ID}-${SPAN_ID}-01`],
    ['version 00 with a fifth field', `00-${TRACE_ID}-${SPAN_ID}-01-x`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${SPAN_ID}-01`],
    ['an all-zero span id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
    ['a short trace id', `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`],
    ['a number', 42],
    ['a map', { traceId: TRACE_ID }],
  ])('ignores a traceparent that is %s (the server span starts a new trace)', (_what, value) => {
    expect(parentOf({ traceparent: value })).toBeNull();
  });

  it('writes traceparent (flags as two hex digits) and tracestate for a valid span; nothing without one', () => {
    const ctx = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: TraceFlags.SAMPLED,
      traceState: createTraceState('vendor=abc'),
    });
    const carrier: Record<string, unknown> = {};
    injectTraceContext(api, ctx, carrier);
    expect(carrier).toEqual({
      traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`,
      tracestate: 'vendor=abc',
    });
    const empty: Record<string, unknown> = {};
    injectTraceContext(api, ROOT_CONTEXT, empty);
    expect(empty).toEqual({});
  });

  it("uses the application's propagator when one is registered", () => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    try {
      const ctx = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: TRACE_ID,
        spanId: SPAN_ID,
        traceFlags: TraceFlags.NONE,
      });
      const carrier: Record<string, unknown> = {};
      injectTraceContext(api, ctx, carrier);
      expect(carrier).toEqual({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-00` });
      expect(parentOf(carrier)).toMatchObject({ traceId: TRACE_ID, spanId: SPAN_ID });
    } finally {
      propagation.disable();
    }
  });
});
