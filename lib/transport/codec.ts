import { Decoder, Encoder } from 'cbor-x';

import { InvalidPayloadError } from './errors.js';

/** The payload encodings a frame may carry; told apart by the first byte. */
export type CodecName = 'json' | 'cbor';

const OPEN_BRACE = 0x7b;

/**
 * Plain RFC 8949 CBOR that Qt's QCborValue reads: definite-length maps with text keys,
 * byte strings for Buffers, no record or structure extensions, no shared strings.
 */
const cborEncoder = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  tagUint8Array: false,
  structuredClone: false,
  pack: false,
  bundleStrings: false,
});
// 64-bit integers (Qt writes qint64 values such as timestamps that way) decode as numbers,
// as JSON numbers do; `int64AsNumber` is a cbor-x option its type declarations omit.
const cborDecoder = new Decoder({
  useRecords: false,
  mapsAsObjects: true,
  int64AsNumber: true,
} as ConstructorParameters<typeof Decoder>[0]);

const TWO_POW_32 = 2 ** 32;

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
  try {
    const value =
      codec === 'json' ? JSON.parse(payload.toString('utf8')) : cborDecoder.decode(payload);
    return { codec, value };
  } catch (err) {
    throw new InvalidPayloadError(
      `${codec.toUpperCase()} does not decode: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

/**
 * Prepares a value for CBOR as Qt reads it: undefined becomes null (QCborValue has no use
 * for it), and whole numbers beyond 32 bits become CBOR integers (cbor-x would write them
 * as doubles, which QCborValue reads as non-integers).
 */
function undefinedToNull(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && Math.abs(value) >= TWO_POW_32 ? BigInt(value) : value;
  }
  if (value === null || typeof value !== 'object') return value;
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const v = undefinedToNull(value[i]);
      if (v !== value[i]) {
        copy ??= value.slice();
        copy[i] = v;
      }
    }
    return copy ?? value;
  }
  if (value instanceof Date || value instanceof Map || value instanceof Set) return value;
  const record = value as Record<string, unknown>;
  let copy: Record<string, unknown> | null = null;
  for (const key of Object.keys(record)) {
    const v = undefinedToNull(record[key]);
    if (v !== record[key]) {
      copy ??= { ...record };
      copy[key] = v;
    }
  }
  return copy ?? value;
}

/** Encodes a packet with `codec`. */
export function encodePayload(codec: CodecName, value: unknown): Buffer {
  if (codec === 'json') return Buffer.from(JSON.stringify(value), 'utf8');
  return cborEncoder.encode(undefinedToNull(value));
}
