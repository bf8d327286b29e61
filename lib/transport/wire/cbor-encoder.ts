/**
 * A CBOR encoder for packets (RFC 8949, the subset Qt's QCborValue reads): maps with text
 * keys, arrays, text strings, byte strings, integers (64-bit), doubles, booleans and null
 * (undefined is written as null). Definite lengths only, no tags.
 *
 * It returns the encoding as a list of Buffers: large byte strings are referenced, not
 * copied, so a 16 MiB Buffer goes to the socket with its bytes untouched (the socket
 * writes the list with one writev).
 */

/** Byte strings at least this long are referenced instead of copied. */
const REFERENCE_AT = 64 * 1024;
const TWO_POW_32 = 2 ** 32;

class ChunkWriter {
  readonly chunks: Buffer[] = [];
  private buf = Buffer.allocUnsafe(4096);
  private pos = 0;
  private start = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.cut();
    this.buf = Buffer.allocUnsafe(Math.max(4096, n));
    this.pos = 0;
    this.start = 0;
  }

  /** Ends the current small-write region as a chunk (a view, no copy). */
  private cut(): void {
    if (this.pos > this.start) {
      this.chunks.push(this.buf.subarray(this.start, this.pos));
      this.start = this.pos;
    }
  }

  head(major: number, length: number): void {
    this.ensure(9);
    const m = major << 5;
    if (length < 24) {
      this.buf[this.pos++] = m | length;
    } else if (length < 0x100) {
      this.buf[this.pos++] = m | 24;
      this.buf[this.pos++] = length;
    } else if (length < 0x10000) {
      this.buf[this.pos++] = m | 25;
      this.buf.writeUInt16BE(length, this.pos);
      this.pos += 2;
    } else if (length < TWO_POW_32) {
      this.buf[this.pos++] = m | 26;
      this.buf.writeUInt32BE(length, this.pos);
      this.pos += 4;
    } else {
      this.buf[this.pos++] = m | 27;
      this.buf.writeBigUInt64BE(BigInt(length), this.pos);
      this.pos += 8;
    }
  }

  /** A head whose argument is a bigint up to 2^64 - 1. */
  headBig(major: number, n: bigint): void {
    if (n < BigInt(TWO_POW_32)) {
      this.head(major, Number(n));
      return;
    }
    this.ensure(9);
    this.buf[this.pos++] = (major << 5) | 27;
    this.buf.writeBigUInt64BE(n, this.pos);
    this.pos += 8;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  double(n: number): void {
    this.ensure(9);
    this.buf[this.pos++] = 0xfb;
    this.buf.writeDoubleBE(n, this.pos);
    this.pos += 8;
  }

  text(s: string): void {
    const length = Buffer.byteLength(s, 'utf8');
    this.head(3, length);
    if (length >= REFERENCE_AT) {
      this.cut();
      this.chunks.push(Buffer.from(s, 'utf8'));
      return;
    }
    this.ensure(length);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += length;
  }

  bytes(b: Uint8Array): void {
    this.head(2, b.length);
    if (b.length >= REFERENCE_AT) {
      this.cut();
      this.chunks.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      return;
    }
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  finish(): Buffer[] {
    this.cut();
    return this.chunks;
  }
}

function writeValue(w: ChunkWriter, value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
      w.text(value);
      return;
    case 'number':
      if (Number.isInteger(value) && Number.isSafeInteger(value)) {
        if (value >= 0) w.head(0, value);
        else w.head(1, -1 - value);
      } else {
        w.double(value);
      }
      return;
    case 'bigint':
      if (value >= 0n && value < 2n ** 64n) w.headBig(0, value);
      else if (value < 0n && value >= -(2n ** 64n)) w.headBig(1, -1n - value);
      else throw new RangeError('CBOR: a bigint outside 64 bits has no plain CBOR form');
      return;
    case 'boolean':
      w.byte(value ? 0xf5 : 0xf4);
      return;
    case 'undefined':
      w.byte(0xf6);
      return;
    case 'object':
      break;
    default:
      // Functions and symbols have no CBOR form; JSON drops them, here they become null.
      w.byte(0xf6);
      return;
  }
  if (value === null) {
    w.byte(0xf6);
    return;
  }
  if (value instanceof Uint8Array) {
    w.bytes(value);
    return;
  }
  // The same limit as the decoder's (MAX_NESTING in codec.ts): containers only.
  if (depth > 512) throw new RangeError('CBOR: value nested too deeply');
  if (Array.isArray(value)) {
    w.head(4, value.length);
    for (const item of value) writeValue(w, item, depth + 1);
    return;
  }
  if (value instanceof Date) {
    w.text(value.toISOString());
    return;
  }
  const toJSON = (value as { toJSON?: () => unknown }).toJSON;
  if (typeof toJSON === 'function') {
    writeValue(w, toJSON.call(value), depth + 1);
    return;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  w.head(5, keys.length);
  for (const key of keys) {
    w.text(key);
    writeValue(w, record[key], depth + 1);
  }
}

/** Encodes `value` as CBOR; the result is a list of Buffers to be written in order. */
export function encodeCborChunks(value: unknown): Buffer[] {
  const w = new ChunkWriter();
  writeValue(w, value, 0);
  return w.finish();
}
