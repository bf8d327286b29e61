import { Decoder } from 'cbor-x';

import { encodeCborChunks } from './cbor-encoder.js';

import { InvalidPayloadError } from './errors.js';

/** The payload encodings a frame may carry; told apart by the first byte. */
export type CodecName = 'json' | 'cbor';

const OPEN_BRACE = 0x7b;

// 64-bit integers (Qt writes qint64 values such as timestamps that way) decode as numbers,
// as JSON numbers do; `int64AsNumber` is a cbor-x option its type declarations omit.
const cborDecoder = new Decoder({
  useRecords: false,
  mapsAsObjects: true,
  int64AsNumber: true,
} as ConstructorParameters<typeof Decoder>[0]);

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
