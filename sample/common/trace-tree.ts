/**
 * Spans as plain records, and the tree of one trace as text: what the telemetry tests print
 * and compare, and what the sample's `npm start -- --verbose` can print for one call.
 *
 * A process that wants its spans seen elsewhere calls `recordSpans(service, onSpan)` once
 * at start-up (before its first call): it registers an OpenTelemetry SDK (a tracer provider
 * with an AsyncLocalStorage context manager) and hands every finished span to `onSpan` as a
 * JSON-friendly SpanRecord, e.g. to print it as one line; whoever collects the lines of
 * every process gives them to `formatTraceTree`. Only `@opentelemetry/api`,
 * `@opentelemetry/sdk-trace-base` and `@opentelemetry/context-async-hooks` are needed.
 */
import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { Observable } from 'rxjs';
import {
  BasicTracerProvider,
  type ReadableSpan,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** One finished span, as JSON can carry it between processes. */
export interface SpanRecord {
  /** The process (service) that recorded it. */
  service: string;
  name: string;
  /** 'CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER' or 'INTERNAL'. */
  kind: string;
  traceId: string;
  spanId: string;
  /** The parent's span id; undefined for a root span. */
  parentSpanId?: string;
  /** The span's W3C tracestate, when it has one. */
  traceState?: string;
  /** Start, in ms since the epoch. */
  startMs: number;
  durationMs: number;
  status: 'UNSET' | 'OK' | 'ERROR';
  statusMessage?: string;
  attributes: Record<string, unknown>;
}

/** The record of `span`, finished in `service`. */
export function spanRecord(span: ReadableSpan, service: string): SpanRecord {
  const ms = ([s, ns]: [number, number]): number => s * 1000 + ns / 1e6;
  const parent = span.parentSpanContext;
  return {
    service,
    name: span.name,
    kind: SpanKind[span.kind],
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: parent?.spanId,
    traceState: span.spanContext().traceState?.serialize() || undefined,
    startMs: ms(span.startTime),
    durationMs: ms(span.duration),
    status: SpanStatusCode[span.status.code] as SpanRecord['status'],
    statusMessage: span.status.message || undefined,
    attributes: { ...span.attributes },
  };
}

/**
 * Registers an SDK that reports every span this process finishes to `onSpan`, and an
 * AsyncLocalStorage context manager (so that spans started in a handler are children of its
 * SERVER span). Returns what shuts it down.
 */
export function recordSpans(
  service: string,
  onSpan: (record: SpanRecord) => void,
): { shutdown(): Promise<void> } {
  const processor: SpanProcessor = {
    onStart: () => undefined,
    onEnd: (span) => onSpan(spanRecord(span, service)),
    forceFlush: async () => undefined,
    shutdown: async () => undefined,
  };
  const provider = new BasicTracerProvider({ spanProcessors: [processor] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  return { shutdown: () => provider.shutdown() };
}

/** An attribute summary for a line of the tree: the RPC attributes, when there are any. */
function rpcSummary(attributes: Record<string, unknown>): string {
  const system = attributes['rpc.system'] ?? attributes['rpc.system.name'];
  if (system === undefined) return '';
  const address = attributes['server.address'];
  const port = attributes['server.port'];
  const where =
    address === undefined ? '' : port === undefined ? `${address}` : `${address}:${port}`;
  return ` [${system} ${attributes['network.transport'] ?? '?'} ${where}]`;
}

/**
 * The spans of `records`, one tree per trace, as lines of text:
 *
 *     trace 0af7651916cd43dd8448eb211c80319c
 *     └─ gateway   INTERNAL  order                                   4.1 ms
 *        └─ gateway   CLIENT    reserve [nestjs_qt unix /tmp/…]      2.0 ms
 *           └─ inventory SERVER reserve [nestjs_qt unix /tmp/…]      0.6 ms
 *
 * Children in start order; a span whose parent is not among the records (a parent in a
 * process that reported nothing) is shown as a root of its trace, marked "(parent not
 * recorded)". Failed spans end with "ERROR: message".
 */
export function formatTraceTree(records: readonly SpanRecord[]): string[] {
  const byId = new Map(records.map((r) => [r.spanId, r]));
  const children = new Map<string, SpanRecord[]>();
  const roots: SpanRecord[] = [];
  for (const r of records) {
    if (r.parentSpanId && byId.has(r.parentSpanId)) {
      const list = children.get(r.parentSpanId) ?? [];
      list.push(r);
      children.set(r.parentSpanId, list);
    } else {
      roots.push(r);
    }
  }
  const byStart = (a: SpanRecord, b: SpanRecord): number => a.startMs - b.startMs;
  const serviceWidth = Math.max(0, ...records.map((r) => r.service.length));
  const lines: string[] = [];
  const walk = (r: SpanRecord, indent: string, last: boolean): void => {
    const status =
      r.status === 'ERROR' ? `  ERROR${r.statusMessage ? `: ${r.statusMessage}` : ''}` : '';
    const orphan = r.parentSpanId && !byId.has(r.parentSpanId) ? ' (parent not recorded)' : '';
    lines.push(
      `${indent}${last ? '└─' : '├─'} ${r.service.padEnd(serviceWidth)} ${r.kind.padEnd(8)} ` +
        `${r.name}${rpcSummary(r.attributes)} ${r.durationMs.toFixed(1)} ms${status}${orphan}`,
    );
    const kids = (children.get(r.spanId) ?? []).sort(byStart);
    kids.forEach((k, i) => walk(k, indent + (last ? '   ' : '│  '), i === kids.length - 1));
  };
  const traces = new Map<string, SpanRecord[]>();
  for (const r of roots.sort(byStart)) {
    const list = traces.get(r.traceId) ?? [];
    list.push(r);
    traces.set(r.traceId, list);
  }
  for (const [traceId, tops] of traces) {
    lines.push(`trace ${traceId}`);
    tops.forEach((r, i) => walk(r, '', i === tops.length - 1));
  }
  return lines;
}

/**
 * An interceptor for an HTTP app that makes a SERVER span per request and runs the handler
 * in it, so that the transport's CLIENT spans of that request are its children (the
 * sample's gateway uses it with `--verbose`).
 */
export function httpSpanInterceptor(): NestInterceptor {
  return {
    intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
      const req = ctx.switchToHttp().getRequest<{ method: string; url: string }>();
      const span = trace
        .getTracer('sample-gateway')
        .startSpan(`${req.method} ${req.url}`, { kind: SpanKind.SERVER });
      return new Observable((subscriber) =>
        context.with(trace.setSpan(context.active(), span), () =>
          next.handle().subscribe({
            next: (value) => subscriber.next(value),
            error: (err: unknown) => {
              span.setStatus({ code: SpanStatusCode.ERROR });
              span.end();
              subscriber.error(err);
            },
            complete: () => {
              span.end();
              subscriber.complete();
            },
          }),
        ),
      );
    },
  };
}
