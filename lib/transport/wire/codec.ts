import { Decoder } from 'cbor-x';

import { encodeCborChunks } from './cbor-encoder.js';

import { InvalidPayloadError } from './errors.js';

/** The payload encodings a frame may carry; told apart by the first byte. */
export type CodecName = 'json' | 'cbor';

const OPEN_BRACE = 0x7b;

const cborDecoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Deepest nesting accepted in a packet (what the encoder writes back, too). */
export const MAX_NESTING = 512;

/**
 * Holds a decoded CBOR value to the documented subset, so that whatever a server accepts
 * it can also send back: plain maps and arrays (no shared or cyclic references), byte
 * strings as Buffers, no tagged values (dates, bignums beyond 64 bits, sets, typed arrays),
 * nesting up to MAX_NESTING. 64-bit integers (Qt writes qint64 values such as timestamps
 * that way) become numbers, as JSON numbers are (cbor-x returns bigints, and its own
 * `int64AsNumber` option truncates negative ones to 32 bits).
 */
function normalizeCbor(value: unknown, seen: WeakSet<object>, depth: number): unknown {
  if (typeof value === 'bigint') {
    if (value > 2n ** 64n - 1n || value < -(2n ** 64n)) {
      throw new InvalidPayloadError('CBOR integer outside 64 bits (a tagged bignum)');
    }
    return Number(value);
  }
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return value;
  if (depth > MAX_NESTING) throw new InvalidPayloadError(`CBOR nested deeper than ${MAX_NESTING}`);
  if (seen.has(value)) throw new InvalidPayloadError('CBOR shared or cyclic reference (a tag)');
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = normalizeCbor(value[i], seen, depth + 1);
    return value;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new InvalidPayloadError(
      `CBOR tagged value (${(value as object).constructor?.name ?? 'object'}) outside the documented subset`,
    );
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) record[key] = normalizeCbor(record[key], seen, depth + 1);
  return value;
}

/** Throws if a JSON value nests deeper than MAX_NESTING (checked without recursion). */
function checkJsonDepth(value: unknown): void {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_NESTING)
      throw new InvalidPayloadError(`JSON nested deeper than ${MAX_NESTING}`);
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
}

/** The codec of a payload from its first byte: `{` is JSON, a CBOR map header is CBOR. */
export function detectCodec(payload: Buffer): CodecName | null {
  const first = payload[0];
  if (first === OPEN_BRACE) return 'json';
  if (first >= 0xa0 && first <= 0xbf) return 'cbor';
  return null;
}

/** Decodes a frame's payload, detecting its codec; throws InvalidPayloadError. */
export function decodePayload(payload: Buffer): { codec: CodecName; value: unknown } {
  const codec = detectCodec(payload);
  if (codec === null) {
    throw new InvalidPayloadError(
      `the first byte 0x${(payload[0] ?? 0).toString(16).padStart(2, '0')} is neither JSON ("{") nor a CBOR map`,
    );
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
  if (codec === 'cbor') {
    value = normalizeCbor(value, new WeakSet(), 0);
  } else if (payload.length > 2 * MAX_NESTING) {
    // Deeper nesting needs at least two bytes a level: small payloads cannot have it.
    checkJsonDepth(value);
  }
  return { codec, value };
}

/** Encodes a packet with `codec`, as one Buffer. */
export function encodePayload(codec: CodecName, value: unknown): Buffer {
  if (codec === 'json') return Buffer.from(JSON.stringify(value), 'utf8');
  const chunks = encodeCborChunks(value);
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/**
 * Encodes a packet with `codec` as a list of Buffers to write in order: CBOR references
 * large byte strings instead of copying them (see cbor-encoder.ts).
 */
export function encodePayloadChunks(codec: CodecName, value: unknown): Buffer[] {
  if (codec === 'json') return [Buffer.from(JSON.stringify(value), 'utf8')];
  return encodeCborChunks(value);
}
