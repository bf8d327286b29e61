import { performance } from 'node:perf_hooks';

import type {
  Attributes,
  Context,
  Histogram,
  MeterProvider,
  Span,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api';

import { otelApi, type OtelApi } from './otel-api.js';
import { extractTraceContext, injectTraceContext } from './trace-context.js';

/**
 * OpenTelemetry for ServerQt and ClientQt (README, "Tracing and metrics"): a span per
 * request (CLIENT / SERVER) and per event (PRODUCER / CONSUMER), W3C trace context in the
 * packet's metadata, and call-duration histograms, by OpenTelemetry's RPC semantic
 * conventions. Nothing is created, measured or added to a packet unless an SDK has
 * registered a tracer provider or a meter provider with `@opentelemetry/api`; without the
 * API installed nothing is even loaded.
 */

/** The `rpc.system` (`rpc.system.name`) of this transport's spans and metrics. */
export const RPC_SYSTEM = 'nestjs_qt';

/** The instrumentation scope of the tracer and the meter. */
export const INSTRUMENTATION_SCOPE = 'nestjs-qt-transport';

/**
 * Bucket boundaries (seconds) the stable conventions advise for `rpc.*.call.duration`; the
 * SDK's defaults suit the milliseconds of `rpc.*.duration`.
 */
const CALL_DURATION_BUCKETS_S = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/**
 * Which RPC conventions to emit, by `OTEL_SEMCONV_STABILITY_OPT_IN` as the conventions ask
 * of instrumentations: by default those of semantic conventions v1.37 (`rpc.system`,
 * `rpc.client.duration` / `rpc.server.duration` in ms); `rpc` for the newer ones
 * (`rpc.system.name`, `rpc.client.call.duration` / `rpc.server.call.duration` in s);
 * `rpc/dup` for both.
 */
interface Conventions {
  legacy: boolean;
  stable: boolean;
}

function conventionsFromEnv(): Conventions {
  const optIn = (process.env.OTEL_SEMCONV_STABILITY_OPT_IN ?? '').split(',').map((v) => v.trim());
  if (optIn.includes('rpc/dup')) return { legacy: true, stable: true };
  if (optIn.includes('rpc')) return { legacy: false, stable: true };
  return { legacy: true, stable: false };
}

/** `network.transport` of a local socket: a Unix domain socket, or a named pipe on Windows. */
export const LOCAL_TRANSPORT: 'unix' | 'pipe' = process.platform === 'win32' ? 'pipe' : 'unix';

/** Where the server of a call is: its address (a host, an address or a socket path). */
export interface QtServerLocation {
  /** `server.address`: the host as configured, an address, or the local socket's path. */
  address: string;
  /** `server.port` (TCP only). */
  port?: number;
  /** `network.transport`: 'tcp', 'unix' (a local socket) or 'pipe' (Windows). */
  transport: 'tcp' | 'unix' | 'pipe';
}

/** One call's span and duration; the no-op one when nothing is registered. */
export interface QtCallTrace {
  /** False for the no-op trace: callers skip work that only telemetry needs. */
  readonly active: boolean;
  /**
   * Runs `fn` with this call's span as the active span (with a context manager registered,
   * spans started inside, and in what `fn` awaits, are its children).
   */
  run<T>(fn: () => T): T;
  /** The TCP connection the call went out on (client): `network.peer.address` / `.port`. */
  setPeer(address: string, port: number): void;
  /** The call failed: status ERROR, `error.type`; the first failure counts. */
  fail(error: unknown): void;
  /** Ends the span and records the duration; later calls do nothing. */
  end(): void;
}

const NOOP_CALL: QtCallTrace = {
  active: false,
  run: (fn) => fn(),
  setPeer: () => undefined,
  fail: () => undefined,
  end: () => undefined,
};

/** How many patterns' attributes one client or server keeps made. */
const MAX_CACHED_PATTERNS = 256;

/** The attributes of a call: of its span, and of its duration by each convention. */
interface CallAttributes {
  span: Attributes;
  legacy: Attributes;
  stable: Attributes;
}

/** A duration histogram, in the unit of its conventions. */
interface DurationHistogram {
  histogram: Histogram;
  /** Multiplies milliseconds into the histogram's unit. */
  scale: number;
  stable: boolean;
}

interface Instruments {
  client: DurationHistogram[];
  server: DurationHistogram[];
}

// What the registered SDK gave, looked up again on every call but rebuilt only when the
// registration changed (an SDK may be registered after a client or server was made).
let conventions: Conventions | undefined;
let noopTracerProvider: TracerProvider | undefined;
let lastTracerProvider: TracerProvider | undefined;
let lastTracer: Tracer | null = null;
let lastMeterProvider: MeterProvider | undefined;
let lastInstruments: Instruments | null = null;
/** The call whose `run` is on the stack: what `inject` writes and `current` returns. */
let running: InstrumentedCall | null = null;

function tracerOf(api: OtelApi): Tracer | null {
  const global = api.trace.getTracerProvider();
  // The API's proxy provider stands in until an SDK registers its own behind it.
  const provider = global instanceof api.ProxyTracerProvider ? global.getDelegate() : global;
  noopTracerProvider ??= new api.ProxyTracerProvider().getDelegate();
  if (provider === noopTracerProvider) return null;
  if (provider !== lastTracerProvider) {
    lastTracerProvider = provider;
    lastTracer = provider.getTracer(INSTRUMENTATION_SCOPE);
  }
  return lastTracer;
}

function instrumentsOf(api: OtelApi): Instruments | null {
  const provider = api.metrics.getMeterProvider();
  if (provider !== lastMeterProvider) {
    lastMeterProvider = provider;
    const meter = provider.getMeter(INSTRUMENTATION_SCOPE);
    if (meter === api.createNoopMeter()) {
      lastInstruments = null;
    } else {
      const c = (conventions ??= conventionsFromEnv());
      const histograms = (side: 'client' | 'server'): DurationHistogram[] => {
        const list: DurationHistogram[] = [];
        const direction = side === 'client' ? 'outbound' : 'inbound';
        if (c.legacy) {
          list.push({
            histogram: meter.createHistogram(`rpc.${side}.duration`, {
              unit: 'ms',
              description: `Measures the duration of ${direction} RPC.`,
              valueType: api.ValueType.DOUBLE,
            }),
            scale: 1,
            stable: false,
          });
        }
        if (c.stable) {
          list.push({
            histogram: meter.createHistogram(`rpc.${side}.call.duration`, {
              unit: 's',
              description: `Measures the duration of ${direction} remote procedure calls (RPC).`,
              valueType: api.ValueType.DOUBLE,
              advice: { explicitBucketBoundaries: CALL_DURATION_BUCKETS_S },
            }),
            scale: 1 / 1000,
            stable: true,
          });
        }
        return list;
      };
      lastInstruments = { client: histograms('client'), server: histograms('server') };
    }
  }
  return lastInstruments;
}

/**
 * The low-cardinality `error.type` of a failure: its `code` (this transport's `QT_*` codes,
 * Qt's error names such as `ConnectionRefusedError`, Node's `E*` codes), else the class name
 * of an Error subclass, else `_OTHER` (an error reply such as an RpcException's payload, or
 * the unknown-pattern text).
 */
export function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    if (error instanceof Error && error.name !== 'Error') return error.name;
  }
  return '_OTHER';
}

/** A short description of a failure for the span status. */
function errorMessage(error: unknown): string {
  if (typeof error === 'string') return error;
  if (typeof error === 'object' && error !== null) {
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string') return message;
  }
  return String(error);
}

/** Makes `call` the running one; returns the one it replaces. */
function enter(call: InstrumentedCall | null): InstrumentedCall | null {
  const previous = running;
  running = call;
  return previous;
}

class InstrumentedCall implements QtCallTrace {
  readonly active = true;
  private failed = false;
  private failure: unknown;
  private ended = false;
  private readonly started = performance.now();

  constructor(
    private readonly api: OtelApi,
    readonly span: Span | null,
    readonly ctx: Context,
    private readonly histograms: DurationHistogram[],
    private readonly attributes: CallAttributes,
  ) {}

  run<T>(fn: () => T): T {
    const previous = enter(this);
    try {
      return this.span ? this.api.context.with(this.ctx, fn) : fn();
    } finally {
      enter(previous);
    }
  }

  setPeer(address: string, port: number): void {
    // A local socket has no port, and its path is already the server.address.
    if (this.ended || !this.span || port <= 0) return;
    this.span.setAttribute('network.peer.address', address);
    this.span.setAttribute('network.peer.port', port);
  }

  fail(error: unknown): void {
    if (this.ended || this.failed) return;
    this.failed = true;
    this.failure = error;
    if (!this.span) return;
    this.span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: errorMessage(error) });
    this.span.setAttribute('error.type', errorType(error));
    if (error instanceof Error) this.span.recordException(error);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.span?.end();
    if (this.histograms.length === 0) return;
    const ms = performance.now() - this.started;
    const type = this.failed ? errorType(this.failure) : undefined;
    for (const { histogram, scale, stable } of this.histograms) {
      const attributes = stable ? this.attributes.stable : this.attributes.legacy;
      histogram.record(ms * scale, type ? { ...attributes, 'error.type': type } : attributes);
    }
  }
}

/**
 * The telemetry of one ServerQt or ClientQt. `locate` tells where its server is (called on
 * the first instrumented call, and again until it answers).
 */
export class QtTelemetry {
  private location: QtServerLocation | null = null;
  private readonly attributes = new Map<string, CallAttributes>();

  constructor(
    private readonly side: 'client' | 'server',
    private readonly locate: () => QtServerLocation | null,
  ) {}

  /** True while an SDK has registered a tracer provider or a meter provider. */
  enabled(): boolean {
    const api = otelApi();
    return api !== null && (tracerOf(api) !== null || instrumentsOf(api) !== null);
  }

  /**
   * Starts the span of a request (CLIENT, SERVER) or an event (PRODUCER, CONSUMER) for
   * `pattern` (the normalized pattern: `rpc.method` and the span's name). The client's parent
   * is the active context; the server's is the trace context in the packet's `metadata`
   * (none: a new trace). Durations are recorded for requests only.
   */
  startCall(kind: 'request' | 'event', pattern: string, metadata?: unknown): QtCallTrace {
    const api = otelApi();
    if (!api) return NOOP_CALL;
    const tracer = tracerOf(api);
    const instruments = kind === 'request' ? instrumentsOf(api) : null;
    if (!tracer && !instruments) return NOOP_CALL;
    const attributes = this.attributesOf(pattern);
    let span: Span | null = null;
    let ctx = api.ROOT_CONTEXT;
    if (tracer) {
      const client = this.side === 'client';
      let parent: Context;
      if (client) parent = api.context.active();
      else {
        parent =
          typeof metadata === 'object' && metadata !== null
            ? extractTraceContext(api, api.ROOT_CONTEXT, metadata as Record<string, unknown>)
            : api.ROOT_CONTEXT;
      }
      const spanKind =
        kind === 'request'
          ? client
            ? api.SpanKind.CLIENT
            : api.SpanKind.SERVER
          : client
            ? api.SpanKind.PRODUCER
            : api.SpanKind.CONSUMER;
      span = tracer.startSpan(pattern, { kind: spanKind, attributes: attributes.span }, parent);
      ctx = api.trace.setSpan(parent, span);
    }
    const histograms = instruments ? instruments[this.side] : [];
    return new InstrumentedCall(api, span, ctx, histograms, attributes);
  }

  /**
   * The attributes of a call of `pattern` (the SDK copies them): made once per pattern, up to
   * MAX_CACHED_PATTERNS of them, as a pattern stands for a handler and their number is small.
   */
  private attributesOf(pattern: string): CallAttributes {
    const cached = this.attributes.get(pattern);
    if (cached) return cached;
    const c = (conventions ??= conventionsFromEnv());
    const where = this.where();
    const common: Attributes = { 'rpc.method': pattern };
    if (where) {
      common['server.address'] = where.address;
      if (where.port !== undefined) common['server.port'] = where.port;
      common['network.transport'] = where.transport;
    }
    const span: Attributes = { ...common };
    if (c.legacy) span['rpc.system'] = RPC_SYSTEM;
    if (c.stable) span['rpc.system.name'] = RPC_SYSTEM;
    const made: CallAttributes = {
      span: Object.freeze(span),
      legacy: Object.freeze({ 'rpc.system': RPC_SYSTEM, ...common }),
      // server.address and server.port are opt-in on the stable duration metrics.
      stable: Object.freeze({
        'rpc.system.name': RPC_SYSTEM,
        'rpc.method': pattern,
        ...(where ? { 'network.transport': where.transport } : {}),
      }),
    };
    // Not kept before the location is known (a server not listening yet).
    if (where && this.attributes.size < MAX_CACHED_PATTERNS) this.attributes.set(pattern, made);
    return made;
  }

  /**
   * Writes the trace context of the call being started (inside its `run`) into the packet's
   * `metadata` (a copy: a hook may share one object between packets). Nothing otherwise.
   */
  inject(packet: { metadata?: Record<string, unknown> }): void {
    const call = running;
    if (!call?.span) return;
    const api = otelApi()!;
    const carrier: Record<string, unknown> = {};
    injectTraceContext(api, call.ctx, carrier);
    if (Object.keys(carrier).length > 0) packet.metadata = { ...packet.metadata, ...carrier };
  }

  /** The call whose `run` is on the stack (so that later steps of a request find it), if any. */
  current(): QtCallTrace | null {
    return running;
  }

  private where(): QtServerLocation | null {
    this.location ??= this.locate();
    return this.location;
  }
}
