import { Decoder } from 'cbor-x';

import { encodeCborChunks } from './cbor-encoder.js';
import { encodeJsonChunks } from './json-encoder.js';

import { InvalidPayloadError } from './errors.js';
import { scanCbor, scanJson } from './packet-scan.js';

/** The payload encodings a frame may carry; told apart by the first byte. */
export type CodecName = 'json' | 'cbor';

const OPEN_BRACE = 0x7b;

const cborDecoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Deepest nesting accepted in a packet (what the encoder writes back, too). */
export const MAX_NESTING = 512;

/**
 * Values one packet may hold when the caller gives no limit (`maxPacketValues`'s default):
 * decoding a million of the smallest values (`{}`, or CBOR's empty maps) takes 0.15–0.35 s
 * of CPU and 60–80 MiB of heap on the project's machine, the most one frame should cost a
 * server. A 64 MiB frame has room for 22 million of them in JSON, 64 million in CBOR.
 */
export const DEFAULT_MAX_PACKET_VALUES = 1_000_000;

/**
 * JSON payloads up to this length need no scan for their depth: each level of nesting
 * takes two bytes (the bracket that opens it and the one that closes it), so a payload
 * JSON.parse accepts must be longer to nest deeper than MAX_NESTING below the packet. No
 * scan for their count either when they are no longer than the limit: every value takes at
 * least one byte of its own. Most requests are that small and cost nothing more.
 */
const JSON_SAFE_LENGTH = 2 * (MAX_NESTING + 1) + 1;

/** The limits decodePayload keeps; the connection limits (ConnectionLimits) satisfy it. */
export interface PayloadLimits {
  /** Values one packet may hold (every map, array, string, number, ...). */
  readonly maxPacketValues?: number;
}

/**
 * Holds a decoded CBOR value to the documented subset, so that whatever a server accepts
 * it can also send back: plain maps and arrays (no shared or cyclic references), byte
 * strings as Buffers, no tagged values (dates, bignums beyond 64 bits, sets, typed arrays),
 * nesting up to MAX_NESTING (checked by scanCbor before decoding, so this recursion is
 * bounded). 64-bit integers (Qt writes qint64 values such as timestamps that way) become
 * numbers, as JSON numbers are (cbor-x returns bigints, and its own `int64AsNumber` option
 * truncates negative ones to 32 bits). `seen` finds shared references; null when the
 * payload has no tag, since only tags (28, 29) share them: a set of a million objects costs
 * twice their decoding.
 */
function normalizeCbor(value: unknown, seen: WeakSet<object> | null): unknown {
  if (typeof value === 'bigint') {
    if (value > 2n ** 64n - 1n || value < -(2n ** 64n)) {
      throw new InvalidPayloadError('CBOR integer outside 64 bits (a tagged bignum)');
    }
    return Number(value);
  }
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return value;
  if (seen !== null) {
    if (seen.has(value)) throw new InvalidPayloadError('CBOR shared or cyclic reference (a tag)');
    seen.add(value);
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = normalizeCbor(value[i], seen);
    return value;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new InvalidPayloadError(
      `CBOR tagged value (${(value as object).constructor?.name ?? 'object'}) outside the documented subset`,
    );
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) record[key] = normalizeCbor(record[key], seen);
  return value;
}

/** The codec of a payload from its first byte: `{` is JSON, a CBOR map header is CBOR. */
export function detectCodec(payload: Buffer): CodecName | null {
  const first = payload[0];
  if (first === OPEN_BRACE) return 'json';
  if (first >= 0xa0 && first <= 0xbf) return 'cbor';
  return null;
}

/**
 * Decodes a frame's payload, detecting its codec. Its values and nesting are counted on its
 * bytes first: beyond `limits.maxPacketValues` (default DEFAULT_MAX_PACKET_VALUES) or
 * MAX_NESTING it throws PacketTooComplexError before anything is built. Throws
 * InvalidPayloadError for a payload that does not decode.
 */
export function decodePayload(
  payload: Buffer,
  limits: PayloadLimits = {},
): { codec: CodecName; value: unknown } {
  const codec = detectCodec(payload);
  if (codec === null) {
    throw new InvalidPayloadError(
      `the first byte 0x${(payload[0] ?? 0).toString(16).padStart(2, '0')} is neither JSON ("{") nor a CBOR map`,
    );
  }
  const maxValues = limits.maxPacketValues ?? DEFAULT_MAX_PACKET_VALUES;
  const scanLimits = { maxValues, maxNesting: MAX_NESTING };
  let tagged = false;
  if (codec === 'cbor') tagged = scanCbor(payload, scanLimits);
  else if (payload.length > maxValues || payload.length > JSON_SAFE_LENGTH) {
    scanJson(payload, scanLimits);
  }
  let value: unknown;
  try {
    value = codec === 'json' ? JSON.parse(payload.toString('utf8')) : cborDecoder.decode(payload);
  } catch (err) {
    throw new InvalidPayloadError(
      `${codec.toUpperCase()} does not decode: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  if (codec === 'cbor') value = normalizeCbor(value, tagged ? new WeakSet() : null);
  return { codec, value };
}

/** Encodes a packet with `codec`, as one Buffer. */
export function encodePayload(codec: CodecName, value: unknown): Buffer {
  const chunks = encodePayloadChunks(codec, value);
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/**
 * Encodes a packet with `codec` as a list of Buffers to write in order: both codecs
 * reference large strings (CBOR: and byte strings) instead of copying them into one text
 * (see json-encoder.ts and cbor-encoder.ts).
 */
export function encodePayloadChunks(codec: CodecName, value: unknown): Buffer[] {
  if (codec === 'json') return encodeJsonChunks(value);
  return encodeCborChunks(value);
}
