/**
 * The checked loop of the decoder fuzzer: generates input `i` of a seeded run
 * (fuzz-lib.ts), pushes it into a fresh FrameDecoder in random chunks, decodes every frame
 * with decodePayload and checks it with classifyServerPacket and checkReplyPacket, and
 * checks these invariants on every input:
 *
 * - nothing throws but a QtTransportError with a known code (QT_NULL_FRAME, QT_EMPTY_FRAME,
 *   QT_FRAME_TOO_LARGE from the decoder, QT_INVALID_PAYLOAD and QT_PACKET_TOO_COMPLEX
 *   (nesting deeper than MAX_NESTING, found before decoding) from decodePayload,
 *   QT_INVALID_PACKET from the packet checks);
 * - the decoder cuts exactly the frames a reference framer cuts (same bytes), each one in
 *   the drain right after the chunk that completed it, and raises a header error in the
 *   drain right after the chunk that completed that header (none of the body is needed);
 * - the decoder never holds more than maxFrameSize + 4 bytes after a drain, and holds
 *   exactly the bytes of the incomplete frame (isMidFrame() agrees);
 * - a decoded payload is a map, of the codec its first byte names, and a packet either
 *   classifies or throws InvalidPacketError;
 * - decoding does not depend on what was decoded before (a payload decoded again later
 *   gives the same value);
 * - and, reported separately: a packet the decoder accepts can be encoded back with its
 *   codec (a handler that returns its input would otherwise throw while replying), and a
 *   CBOR payload agrees with a strict reader of the documented subset (`strictCbor` below).
 */
import { MAX_NESTING } from '../../lib/transport/wire/codec.js';
import { decodePayload, encodePayload, type CodecName } from '../../lib/transport/wire/codec.js';
import { InvalidPacketError, QtTransportError } from '../../lib/transport/wire/errors.js';
import { FrameDecoder } from '../../lib/transport/wire/frame-decoder.js';
import { checkReplyPacket, classifyServerPacket } from '../../lib/transport/wire/packets.js';

import {
  Prng,
  chunking,
  corruptLength,
  framed,
  headerOffsets,
  hostilePayload,
  inputRng,
  mutate,
  seedPayloads,
} from './fuzz-lib.js';

const MiB = 1024 * 1024;

export const FRAME_CODES = ['QT_NULL_FRAME', 'QT_EMPTY_FRAME', 'QT_FRAME_TOO_LARGE'] as const;
export const PAYLOAD_CODES = ['QT_INVALID_PAYLOAD', 'QT_PACKET_TOO_COMPLEX'] as const;
export const KNOWN_CODES = [...FRAME_CODES, ...PAYLOAD_CODES, 'QT_INVALID_PACKET'] as const;

/** One generated input: a byte stream, how it is cut into chunks, and the decoder's limit. */
export interface FuzzInput {
  index: number;
  kind: string;
  stream: Buffer;
  chunks: number[];
  maxFrameSize: number;
}

/** An invariant that did not hold. */
export interface FuzzFailure {
  index: number;
  invariant: string;
  detail: string;
  kind: string;
  maxFrameSize: number;
  length: number;
  /** The input stream in hex (the first 4 KiB). */
  hex: string;
}

/** A group of inputs that broke the same rule, with the shortest one as its example. */
export interface ExampleGroup {
  key: string;
  /** What differs, for the shortest example. */
  detail?: string;
  count: number;
  index: number;
  length: number;
  hex: string;
}

export interface HeapSample {
  inputs: number;
  heapUsed: number;
  rss: number;
}

export interface FuzzSummary {
  seed: number;
  inputs: number;
  frames: number;
  durationMs: number;
  stoppedBy: 'count' | 'time' | 'failures';
  /** Per input, what a server connection would end with: 'valid', 'incomplete' or an error code. */
  outcomes: Record<string, number>;
  /** Per input kind (seed, mutated, stream-mutated, garbage, hostile kinds). */
  kinds: Record<string, number>;
  payloads: Record<string, number>;
  serverPackets: Record<string, number>;
  clientPackets: Record<string, number>;
  failures: FuzzFailure[];
  roundTrip: { checked: number; failed: number; groups: ExampleGroup[] };
  cbor: {
    bothAccept: number;
    bothReject: number;
    valueMismatch: ExampleGroup[];
    plainRejected: ExampleGroup[];
    extensionAccepted: ExampleGroup[];
    counts: Record<string, number>;
  };
  heap: HeapSample[];
  /** Milliseconds spent per input kind. */
  msByKind: Record<string, number>;
  slowest: { index: number; ms: number; kind: string; length: number };
}

export interface FuzzOptions {
  seed: number;
  count: number;
  /** Stop after this long even if `count` is not reached. */
  timeBudgetMs: number;
  /** First input index (to resume or replay a range). */
  from?: number;
  /** Inputs between progress reports (a watchdog's heartbeat). */
  progressEvery?: number;
  /** Inputs between heap samples (after a full GC when --expose-gc is on). */
  heapEvery?: number;
  onProgress?: (p: { inputs: number; index: number; elapsedMs: number } & HeapSample) => void;
  maxFailures?: number;
  /**
   * Errors without stack traces while fuzzing (Error.stackTraceLimit = 0; about a third
   * faster): an unexpected error is thrown again with its stack for the report.
   */
  fastErrors?: boolean;
  /** The decoder under test (a FrameDecoder by default; the self-test passes broken ones). */
  makeDecoder?: (maxFrameSize: number) => FrameDecoderLike;
}

/** What the loop uses of a FrameDecoder. */
export type FrameDecoderLike = Pick<
  FrameDecoder,
  'push' | 'next' | 'bufferedBytes' | 'expectedBytes' | 'isMidFrame'
>;

let corpusCache: Buffer[] | null = null;
function corpus(): Buffer[] {
  corpusCache ??= seedPayloads();
  return corpusCache;
}

/** Input `index` of the run with `seed` (the same on every call). */
export function generateInput(seed: number, index: number): FuzzInput {
  const rng = inputRng(seed, index);
  const seeds = corpus();
  let maxFrameSize = rng.chance(0.85) ? MiB : rng.pick([1, 4, 16, 64, 300, 4096, 65536]);
  let kind: string;
  let stream: Buffer;
  const r = rng.int(1000);
  if (r < 1) {
    // Rare, expensive: very deep nesting, huge valid frames.
    const h = hostilePayload(rng, rng.chance(0.4));
    maxFrameSize = 4 * MiB;
    kind = h.kind;
    stream = framed(h.payload);
  } else if (r < 25) {
    const h = hostilePayload(rng, false);
    const payload = rng.chance(0.5) ? mutate(rng, h.payload, seeds, 2) : h.payload;
    kind = h.kind;
    stream = framed(payload);
  } else if (r < 50) {
    kind = 'garbage';
    const garbage = rng.bytes(rng.range(0, 96));
    stream = rng.chance(0.5) ? garbage : framed(garbage);
  } else {
    const frames = rng.chance(0.7) ? 1 : rng.range(2, 5);
    const parts: Buffer[] = [];
    let mutated = false;
    for (let i = 0; i < frames; i++) {
      let payload = rng.pick(seeds);
      if (rng.chance(0.8)) {
        payload = mutate(rng, payload, seeds);
        mutated = true;
      }
      parts.push(framed(payload));
    }
    stream = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    kind = mutated ? 'mutated' : 'seed';
    if (rng.chance(0.3)) {
      kind = 'stream-mutated';
      stream = mutateStream(rng, stream, maxFrameSize, seeds);
    }
  }
  return {
    index,
    kind,
    stream,
    chunks: chunking(rng, stream.length, headerOffsets(stream)),
    maxFrameSize,
  };
}

/** Length-header corruption, truncation, splicing of two streams, or byte mutations. */
function mutateStream(rng: Prng, stream: Buffer, maxFrameSize: number, seeds: Buffer[]): Buffer {
  switch (rng.int(5)) {
    case 0:
    case 1: {
      const offsets = headerOffsets(stream);
      if (offsets.length === 0) return stream;
      const out = Buffer.from(stream);
      const at = rng.pick(offsets);
      out.writeUInt32BE(corruptLength(rng, out.readUInt32BE(at), maxFrameSize), at);
      return out;
    }
    case 2:
      return stream.subarray(0, rng.int(stream.length + 1));
    case 3: {
      const other = framed(rng.pick(seeds));
      return Buffer.concat([
        stream.subarray(0, rng.int(stream.length + 1)),
        other.subarray(rng.int(other.length + 1)),
      ]);
    }
    default:
      return mutate(rng, stream, seeds, 3);
  }
}

// ---------------------------------------------------------------- reference framer

interface Reference {
  frames: Array<{ start: number; end: number }>;
  error: { code: string; at: number } | null;
}

function referenceFrames(stream: Buffer, maxFrameSize: number): Reference {
  const frames: Reference['frames'] = [];
  let pos = 0;
  while (pos + 4 <= stream.length) {
    const length = stream.readUInt32BE(pos);
    const at = pos + 4;
    if (length === 0xffffffff) return { frames, error: { code: 'QT_NULL_FRAME', at } };
    if (length === 0) return { frames, error: { code: 'QT_EMPTY_FRAME', at } };
    if (length > maxFrameSize) return { frames, error: { code: 'QT_FRAME_TOO_LARGE', at } };
    if (at + length > stream.length) break;
    frames.push({ start: at, end: at + length });
    pos = at + length;
  }
  return { frames, error: null };
}

// ---------------------------------------------------------------- strict CBOR reader

/** A rejection by strictCbor (no stack trace: the fuzzer makes millions of them). */
class StrictCborError {
  constructor(readonly reason: string) {}
}

/**
 * A reader of exactly the CBOR subset docs/protocol.md documents (RFC 8949 core: maps with
 * text keys, arrays, text and byte strings, integers, floats, false/true/null/undefined;
 * definite lengths only, no tags, nothing after the value), for differential checking. An
 * integer beyond 2^53 becomes the nearest double, as QCborValue makes it.
 */
export function strictCbor(data: Buffer): unknown {
  function fail(reason: string): never {
    throw new StrictCborError(reason);
  }
  let pos = 0;
  let depth = 0;
  const need = (n: number): void => {
    if (n > data.length - pos) fail('CBOR: truncated');
  };
  const argument = (info: number): number => {
    if (info < 24) return info;
    if (info === 24) {
      need(1);
      return data[pos++]!;
    }
    if (info === 25) {
      need(2);
      pos += 2;
      return data.readUInt16BE(pos - 2);
    }
    if (info === 26) {
      need(4);
      pos += 4;
      return data.readUInt32BE(pos - 4);
    }
    if (info === 27) {
      need(8);
      pos += 8;
      return Number(data.readBigUInt64BE(pos - 8));
    }
    fail(`CBOR: indefinite length or reserved info ${info}`);
  };
  const item = (): unknown => {
    need(1);
    const initial = data[pos++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      if (info === 23) return undefined;
      if (info === 25) {
        need(2);
        const v = data.readUInt16BE(pos);
        pos += 2;
        const sign = v & 0x8000 ? -1 : 1;
        const exp = (v >> 10) & 0x1f;
        const mant = v & 0x3ff;
        if (exp === 0) return sign * 2 ** -14 * (mant / 1024);
        if (exp === 31) return mant ? NaN : sign * Infinity;
        return sign * 2 ** (exp - 15) * (1 + mant / 1024);
      }
      if (info === 26) {
        need(4);
        pos += 4;
        return data.readFloatBE(pos - 4);
      }
      if (info === 27) {
        need(8);
        pos += 8;
        return data.readDoubleBE(pos - 8);
      }
      fail(`CBOR: simple value or break ${info}`);
    }
    if (major === 6) fail('CBOR: a tag');
    if (major === 1 && info === 27) {
      need(8);
      pos += 8;
      return Number(-1n - data.readBigUInt64BE(pos - 8));
    }
    const n = argument(info);
    switch (major) {
      case 0:
        return n;
      case 1:
        return -1 - n;
      case 2:
        need(n);
        pos += n;
        return Buffer.from(data.subarray(pos - n, pos));
      case 3:
        need(n);
        pos += n;
        return data.toString('utf8', pos - n, pos);
      case 4: {
        need(n); // every item takes at least one byte
        // The documented limit: containers nested up to MAX_NESTING levels below the packet.
        if (++depth > MAX_NESTING + 1) fail('CBOR: nested too deeply');
        const out: unknown[] = [];
        for (let i = 0; i < n; i++) out.push(item());
        depth--;
        return out;
      }
      default: {
        need(2 * n);
        // The documented limit: containers nested up to MAX_NESTING levels below the packet.
        if (++depth > MAX_NESTING + 1) fail('CBOR: nested too deeply');
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const key = item();
          if (typeof key !== 'string') fail('CBOR: a map key that is not text');
          Object.defineProperty(out, key, {
            value: item(),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        depth--;
        return out;
      }
    }
  };
  const value = item();
  if (pos !== data.length) fail(`CBOR: ${data.length - pos} bytes after the value`);
  return value;
}

// ---------------------------------------------------------------- canonical values

/** A canonical text of a decoded value (cycles and depth bounded) to compare two decodings. */
export function canon(value: unknown, depth = 0, path: Set<object> = new Set()): string {
  if (depth > 40) return '…';
  switch (typeof value) {
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'string':
      return JSON.stringify(value);
    case 'undefined':
      return 'undefined';
    case 'boolean':
      return String(value);
    case 'object':
      break;
    default:
      return typeof value;
  }
  if (value === null) return 'null';
  if (path.has(value)) return '<cycle>';
  if (value instanceof Uint8Array) {
    return `${value.constructor.name}:${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
  }
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}:${String(value)}`;
  if (value instanceof Date) return `date:${value.getTime()}`;
  if (value instanceof RegExp || value instanceof Error)
    return `${value.constructor.name}:${String(value)}`;
  path.add(value);
  try {
    if (Array.isArray(value) || value instanceof Set) {
      return `[${[...value].map((v) => canon(v, depth + 1, path)).join(',')}]`;
    }
    if (value instanceof Map) {
      return `map{${[...value].map(([k, v]) => `${canon(k, depth + 1, path)}:${canon(v, depth + 1, path)}`).join(',')}}`;
    }
    const rec = value as Record<string, unknown>;
    const keys = Object.keys(rec).sort();
    const name =
      Object.getPrototypeOf(value) === Object.prototype
        ? ''
        : (value.constructor?.name ?? 'null-proto');
    return `${name}{${keys.map((k) => `${JSON.stringify(k)}:${canon(rec[k], depth + 1, path)}`).join(',')}}`;
  } finally {
    path.delete(value);
  }
}

// ---------------------------------------------------------------- the loop

const PROTO = Buffer.from('__proto__');

function hexOf(b: Buffer): string {
  return b.length > 4096 ? b.subarray(0, 4096).toString('hex') + '…' : b.toString('hex');
}

function addGroup(
  groups: Map<string, ExampleGroup>,
  key: string,
  input: FuzzInput,
  cap = 40,
  detail?: string,
): void {
  const g = groups.get(key);
  if (g) {
    g.count++;
    if (input.stream.length < g.length) {
      g.index = input.index;
      g.length = input.stream.length;
      g.hex = hexOf(input.stream);
      if (detail !== undefined) g.detail = detail;
    }
    return;
  }
  if (groups.size >= cap) return;
  groups.set(key, {
    key,
    count: 1,
    index: input.index,
    length: input.stream.length,
    hex: hexOf(input.stream),
    ...(detail === undefined ? {} : { detail }),
  });
}

/** Where two decodings of one payload first differ: a group key and the values there. */
function firstDifference(
  a: unknown,
  b: unknown,
  path: string,
  depth = 0,
): { key: string; detail: string } | null {
  if (depth > 40) return null;
  const kind = (v: unknown): string =>
    v === null ? 'null' : Buffer.isBuffer(v) ? 'bytes' : Array.isArray(v) ? 'array' : typeof v;
  const ka = kind(a);
  const kb = kind(b);
  const leaf = (what: string): { key: string; detail: string } => ({
    key: `${what}: ${ka} read as ${kb}${ka === 'number' && kb === 'number' ? ` (${Math.sign(a as number) < 0 ? 'negative' : 'positive'}, |x| ${Math.abs(a as number) >= 2 ** 32 ? '>=' : '<'} 2^32)` : ''}`,
    detail: `at ${path}: strict reader ${canon(a).slice(0, 120)}, decoder ${canon(b).slice(0, 120)}`,
  });
  if (ka !== kb) return leaf('a different type');
  if (ka === 'array') {
    const x = a as unknown[];
    const y = b as unknown[];
    if (x.length !== y.length) return leaf('a different length');
    for (let i = 0; i < x.length; i++) {
      const d = firstDifference(x[i], y[i], `${path}[${i}]`, depth + 1);
      if (d) return d;
    }
    return null;
  }
  if (ka === 'object') {
    const x = a as Record<string, unknown>;
    const y = b as Record<string, unknown>;
    const keys = Object.keys(x);
    if (keys.join('\u0000') !== Object.keys(y).join('\u0000')) return leaf('different keys');
    for (const k of keys) {
      const d = firstDifference(x[k], y[k], `${path}.${k}`, depth + 1);
      if (d) return d;
    }
    return null;
  }
  return canon(a) === canon(b) ? null : leaf('a different value');
}

const bump = (m: Record<string, number>, k: string): void => {
  m[k] = (m[k] ?? 0) + 1;
};

/** Runs `again` (which repeats the operation that threw) with stack traces on; describes its error. */
function describeAgain(err: unknown, again: () => unknown): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 30;
  try {
    again();
    return `${describeError(err)}\n(repeating the operation did not throw)`;
  } catch (second) {
    return describeError(second);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.constructor.name}${code === undefined ? '' : ` (${String(code)})`}: ${err.message}\n${err.stack ?? ''}`;
  }
  return `a non-Error was thrown: ${String(err)}`;
}

/** The key of an encode failure: the error's class and message without numbers. */
function failureKey(err: unknown): string {
  const text = err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err);
  return text.replace(/\d+/g, 'N').slice(0, 160);
}

/** Runs the fuzzer; synchronous (a caller that needs a hang watchdog runs it in a child process). */
export function runFuzz(options: FuzzOptions): FuzzSummary {
  const { seed, count, timeBudgetMs } = options;
  const from = options.from ?? 0;
  const progressEvery = options.progressEvery ?? 10_000;
  const heapEvery = options.heapEvery ?? 100_000;
  const makeDecoder = options.makeDecoder ?? ((max: number) => new FrameDecoder(max));
  const maxFailures = options.maxFailures ?? 50;
  const started = performance.now();

  const outcomes: Record<string, number> = {};
  const kinds: Record<string, number> = {};
  const msByKind: Record<string, number> = {};
  const payloads: Record<string, number> = {};
  const serverPackets: Record<string, number> = {};
  const clientPackets: Record<string, number> = {};
  const cborCounts: Record<string, number> = {};
  const failures: FuzzFailure[] = [];
  const roundTripGroups = new Map<string, ExampleGroup>();
  const mismatch = new Map<string, ExampleGroup>();
  const plainRejected = new Map<string, ExampleGroup>();
  const extensionAccepted = new Map<string, ExampleGroup>();
  const recent: Array<{ payload: Buffer; canon: string }> = [];
  let roundTripChecked = 0;
  let roundTripFailed = 0;
  let bothAccept = 0;
  let bothReject = 0;
  let frames = 0;
  const heap: HeapSample[] = [];
  const slowest = { index: -1, ms: 0, kind: '', length: 0 };
  let stoppedBy: FuzzSummary['stoppedBy'] = 'count';

  // With --expose-gc (the runner is started with it), a sample counts live objects only.
  const gc = (globalThis as { gc?: () => void }).gc;
  const sample = (inputs: number): HeapSample => {
    gc?.();
    const m = process.memoryUsage();
    const s = { inputs, heapUsed: m.heapUsed, rss: m.rss };
    heap.push(s);
    return s;
  };

  let input!: FuzzInput;
  const fail = (invariant: string, detail: string): void => {
    if (failures.length >= maxFailures) return;
    failures.push({
      index: input.index,
      invariant,
      detail: detail.slice(0, 3000),
      kind: input.kind,
      maxFrameSize: input.maxFrameSize,
      length: input.stream.length,
      hex: hexOf(input.stream),
    });
  };

  /** Checks one frame's payload; returns the first error code a server would close with. */
  const checkFrame = (frame: Buffer): string | null => {
    frames++;
    const first = frame[0];
    const expectedCodec: CodecName | null =
      first === 0x7b
        ? 'json'
        : first !== undefined && first >= 0xa0 && first <= 0xbf
          ? 'cbor'
          : null;
    let decoded: { codec: CodecName; value: unknown } | null = null;
    let payloadError: unknown = null;
    try {
      decoded = decodePayload(frame);
    } catch (err) {
      payloadError = err;
    }

    if (expectedCodec === 'cbor' && !frame.includes(PROTO)) {
      let strictOk = true;
      let strictValue: unknown;
      let strictReason = '';
      try {
        strictValue = strictCbor(frame);
      } catch (err) {
        strictOk = false;
        strictReason = err instanceof StrictCborError ? err.reason : String(err);
      }
      if (strictOk && decoded) {
        bothAccept++;
        const diff = firstDifference(strictValue, decoded.value, '$');
        if (diff) addGroup(mismatch, diff.key, input, 40, diff.detail);
      } else if (strictOk) {
        addGroup(plainRejected, failureKey(payloadError), input);
        bump(cborCounts, 'plainRejected');
      } else if (decoded) {
        addGroup(
          extensionAccepted,
          strictReason.replace(/\d+/g, 'N'),
          input,
          40,
          canon(decoded.value).slice(0, 200),
        );
        bump(cborCounts, 'extensionAccepted');
      } else {
        bothReject++;
      }
    }

    if (payloadError !== null || decoded === null) {
      const code = payloadError instanceof QtTransportError ? payloadError.code : '';
      const known = (PAYLOAD_CODES as readonly string[]).includes(code);
      if (!known) {
        fail(
          'decodePayload throws only InvalidPayloadError or PacketTooComplexError',
          describeAgain(payloadError, () => decodePayload(frame)),
        );
      }
      const outcome = known ? code : 'QT_INVALID_PAYLOAD';
      bump(payloads, outcome);
      return outcome;
    }
    const { codec, value } = decoded;
    bump(payloads, codec);
    if (codec !== expectedCodec)
      fail('codec follows the first byte', `first byte ${first}, codec ${codec}`);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      fail('a decoded payload is a map', `got ${canon(value).slice(0, 200)}`);
    }

    if (codec === 'cbor') {
      if (recent.length < 64) recent.push({ payload: Buffer.from(frame), canon: canon(value) });
      else if (input.index % 7 === 0)
        recent[input.index % 64] = { payload: Buffer.from(frame), canon: canon(value) };
    }

    let serverError: string | null = null;
    let accepted = false;
    try {
      const c = classifyServerPacket(value);
      const p = c.packet as { id?: unknown; pattern?: unknown };
      const idOk = (id: unknown): boolean =>
        typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
      if (c.kind === 'cancel' && !idOk(p.id)) fail('a cancel carries an id', canon(value));
      if (c.kind === 'request' && !idOk(p.id)) fail('a request carries an id', canon(value));
      const input = value as { id?: unknown; pattern?: unknown };
      if (c.kind === 'draining' && (input.id !== undefined || input.pattern !== undefined)) {
        fail('a draining packet has no id and no pattern', canon(value));
      }
      if (
        c.kind !== 'cancel' &&
        c.kind !== 'draining' &&
        typeof p.pattern !== 'string' &&
        (typeof p.pattern !== 'object' || p.pattern === null)
      ) {
        fail('a request or event carries a pattern', canon(value));
      }
      bump(serverPackets, c.kind);
      accepted = true;
    } catch (err) {
      if (!(err instanceof InvalidPacketError) || err.code !== 'QT_INVALID_PACKET') {
        fail(
          'classifyServerPacket throws only InvalidPacketError',
          describeAgain(err, () => classifyServerPacket(value)),
        );
      }
      bump(serverPackets, 'QT_INVALID_PACKET');
      serverError = 'QT_INVALID_PACKET';
    }
    try {
      const reply = checkReplyPacket(value);
      if (
        typeof reply.id !== 'string' &&
        !(typeof reply.id === 'number' && Number.isFinite(reply.id))
      ) {
        fail('a reply carries an id', canon(value));
      }
      bump(clientPackets, 'reply');
      accepted = true;
    } catch (err) {
      if (!(err instanceof InvalidPacketError) || err.code !== 'QT_INVALID_PACKET') {
        fail(
          'checkReplyPacket throws only InvalidPacketError',
          describeAgain(err, () => checkReplyPacket(value)),
        );
      }
      bump(clientPackets, 'QT_INVALID_PACKET');
    }

    if (accepted) {
      roundTripChecked++;
      try {
        encodePayload(codec, value);
      } catch (err) {
        roundTripFailed++;
        addGroup(roundTripGroups, `${codec}: ${failureKey(err)}`, input);
      }
    }
    return serverError;
  };

  const stackTraceLimit = Error.stackTraceLimit;
  if (options.fastErrors) Error.stackTraceLimit = 0;
  sample(0);
  const end = from + count;
  let done = 0;
  for (let index = from; index < end; index++) {
    if ((index - from) % 1000 === 0 && index > from) {
      if (performance.now() - started > timeBudgetMs) {
        stoppedBy = 'time';
        break;
      }
      if (failures.length >= maxFailures) {
        stoppedBy = 'failures';
        break;
      }
    }
    const t0 = performance.now();
    input = generateInput(seed, index);
    bump(kinds, input.kind);
    const { stream, maxFrameSize } = input;
    const ref = referenceFrames(stream, maxFrameSize);
    const decoder = makeDecoder(maxFrameSize);
    let pushed = 0;
    let consumed = 0;
    let nextFrame = 0;
    let outcome: string | null = null;
    let headerError = false;

    chunks: for (const size of input.chunks) {
      const chunk = stream.subarray(pushed, pushed + size);
      decoder.push(chunk);
      const chunkStart = pushed;
      pushed += size;
      for (;;) {
        let frame: Buffer | null;
        try {
          frame = decoder.next();
        } catch (err) {
          headerError = true;
          const code = err instanceof QtTransportError ? err.code : null;
          if (
            !(err instanceof QtTransportError) ||
            !(FRAME_CODES as readonly string[]).includes(code!)
          ) {
            fail(
              'the decoder throws only a typed frame error',
              `${describeError(err)}\n(fuzz-runner.ts --seed ${seed} --replay ${index} shows its stack)`,
            );
          } else if (!ref.error || ref.error.code !== code) {
            fail(
              'the decoder raises the error the reference raises',
              `decoder ${code}, reference ${JSON.stringify(ref.error)}`,
            );
          } else if (ref.error.at > pushed || ref.error.at <= chunkStart) {
            fail(
              'a bad header is rejected as soon as its 4 bytes arrive',
              `header complete at byte ${ref.error.at}, rejected after chunk [${chunkStart}, ${pushed})`,
            );
          }
          if (nextFrame !== ref.frames.length) {
            fail(
              'every frame before a bad header is delivered',
              `${nextFrame} of ${ref.frames.length}`,
            );
          }
          outcome ??= code ?? 'untyped';
          break chunks;
        }
        if (frame === null) break;
        const expected = ref.frames[nextFrame++];
        if (!expected) {
          fail(
            'the decoder cuts the frames the reference cuts',
            `an extra frame of ${frame.length} bytes`,
          );
          break chunks;
        }
        if (!frame.equals(stream.subarray(expected.start, expected.end))) {
          fail('the decoder cuts the frames the reference cuts', `frame ${nextFrame - 1} differs`);
        }
        if (expected.end > pushed || expected.end <= chunkStart) {
          fail(
            'a frame is delivered as soon as it is complete',
            `frame ending at ${expected.end}, chunk [${chunkStart}, ${pushed})`,
          );
        }
        consumed = expected.end;
        const code = checkFrame(frame);
        outcome ??= code;
      }
      const leftover = pushed - consumed;
      const buffered = decoder.bufferedBytes();
      if (buffered > maxFrameSize + 4) {
        fail(
          'the decoder buffers at most maxFrameSize + 4 bytes',
          `${buffered} bytes buffered, limit ${maxFrameSize}`,
        );
      }
      const headerRead = decoder.expectedBytes() >= 0;
      if (buffered !== leftover - (headerRead ? 4 : 0) || decoder.isMidFrame() !== leftover > 0) {
        fail(
          'the decoder holds exactly the incomplete frame',
          `leftover ${leftover}, buffered ${buffered}, expected ${decoder.expectedBytes()}, midFrame ${decoder.isMidFrame()}`,
        );
      }
    }
    if (!headerError) {
      if (ref.error)
        fail('the decoder raises the error the reference raises', `missed ${ref.error.code}`);
      if (nextFrame !== ref.frames.length) {
        fail(
          'the decoder cuts the frames the reference cuts',
          `${nextFrame} of ${ref.frames.length} frames`,
        );
      }
    }
    outcome ??= decoder.isMidFrame() ? 'incomplete' : 'valid';
    bump(outcomes, outcome);

    // A payload decoded again later decodes the same way (no state kept between payloads).
    if (index % 97 === 0 && recent.length > 0) {
      const r = recent[index % recent.length]!;
      let again: string;
      try {
        again = canon(decodePayload(r.payload).value);
      } catch (err) {
        again = `throws ${describeError(err)}`;
      }
      if (again !== r.canon) {
        fail(
          'decoding is stateless',
          `payload ${r.payload.toString('hex').slice(0, 400)} first ${r.canon.slice(0, 200)} then ${again.slice(0, 200)}`,
        );
      }
    }

    const ms = performance.now() - t0;
    msByKind[input.kind] = (msByKind[input.kind] ?? 0) + ms;
    if (ms > slowest.ms)
      Object.assign(slowest, { index, ms, kind: input.kind, length: stream.length });
    done++;
    if (failures.length >= maxFailures) {
      stoppedBy = 'failures';
      break;
    }
    if (done % heapEvery === 0) sample(done);
    if (done % progressEvery === 0) {
      const s = heap[heap.length - 1]!;
      options.onProgress?.({
        ...s,
        inputs: done,
        index,
        elapsedMs: Math.round(performance.now() - started),
      });
    }
  }
  Error.stackTraceLimit = stackTraceLimit;
  if (heap[heap.length - 1]!.inputs !== done) sample(done);

  return {
    seed,
    inputs: done,
    frames,
    durationMs: Math.round(performance.now() - started),
    stoppedBy,
    outcomes,
    kinds,
    payloads,
    serverPackets,
    clientPackets,
    failures,
    roundTrip: {
      checked: roundTripChecked,
      failed: roundTripFailed,
      groups: [...roundTripGroups.values()],
    },
    cbor: {
      bothAccept,
      bothReject,
      valueMismatch: [...mismatch.values()],
      plainRejected: [...plainRejected.values()],
      extensionAccepted: [...extensionAccepted.values()],
      counts: cborCounts,
    },
    heap,
    msByKind: Object.fromEntries(Object.entries(msByKind).map(([k, v]) => [k, Math.round(v)])),
    slowest: { ...slowest, ms: Math.round(slowest.ms * 100) / 100 },
  };
}
