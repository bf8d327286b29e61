import type { Context, SpanContext } from '@opentelemetry/api';

import type { OtelApi } from './otel-api.js';

/** The W3C Trace Context keys a packet's `metadata` carries (docs/protocol.md, "Metadata"). */
export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';

/**
 * version-traceid-parentid-flags (https://www.w3.org/TR/trace-context/#traceparent-header).
 * A later version may append fields after a dash; version ff is invalid.
 */
const TRACEPARENT_FORMAT =
  /^\s*(?!ff)([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?\s*$/;

/**
 * Writes the trace context of `ctx` into `carrier` (a packet's metadata): through the
 * propagator the application registered (which may add its own keys, such as baggage), and
 * as W3C `traceparent` / `tracestate` when that propagator wrote none (no propagator is
 * registered by default), so that the wire always carries W3C trace context.
 */
export function injectTraceContext(
  api: OtelApi,
  ctx: Context,
  carrier: Record<string, unknown>,
): void {
  api.propagation.inject(ctx, carrier);
  if (typeof carrier[TRACEPARENT] === 'string') return;
  const span = api.trace.getSpanContext(ctx);
  if (!span || !api.isSpanContextValid(span)) return;
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, '0');
  carrier[TRACEPARENT] = `00-${span.traceId}-${span.spanId}-${flags}`;
  const state = span.traceState?.serialize();
  if (state) carrier[TRACESTATE] = state;
}

/**
 * The context whose remote parent is the trace context `carrier` holds (a packet's
 * metadata), on `base`: read by the application's propagator, else as W3C `traceparent` /
 * `tracestate`. `base` as it is when the carrier holds none that is valid.
 */
export function extractTraceContext(
  api: OtelApi,
  base: Context,
  carrier: Record<string, unknown>,
): Context {
  const extracted = api.propagation.extract(base, carrier);
  const found = api.trace.getSpanContext(extracted);
  if (found && api.isSpanContextValid(found)) return extracted;
  const parent = parseTraceparent(api, carrier[TRACEPARENT], carrier[TRACESTATE]);
  return parent ? api.trace.setSpanContext(extracted, parent) : extracted;
}

/** The remote span context of a `traceparent` value (and `tracestate`), or null if invalid. */
function parseTraceparent(api: OtelApi, header: unknown, state: unknown): SpanContext | null {
  if (typeof header !== 'string') return null;
  const match = TRACEPARENT_FORMAT.exec(header);
  // Version 00 has exactly four fields.
  if (!match || (match[1] === '00' && match[5] !== undefined)) return null;
  const span: SpanContext = {
    traceId: match[2],
    spanId: match[3],
    traceFlags: parseInt(match[4], 16),
    isRemote: true,
  };
  if (!api.isSpanContextValid(span)) return null;
  // createTraceState is missing from the oldest 1.x APIs: the parent is kept without it.
  if (typeof state === 'string' && typeof api.createTraceState === 'function') {
    span.traceState = api.createTraceState(state);
  }
  return span;
}
