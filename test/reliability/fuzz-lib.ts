/**
 * The pieces of the seeded mutation fuzzer (fuzz-engine.ts runs them, fuzz.spec.ts and
 * live-fuzz.spec.ts use them): a small PRNG, a corpus of valid frames (JSON and CBOR
 * requests, events, cancels, replies, streams, byte strings, nested maps), generators of
 * hostile payloads (deep nesting, huge declared CBOR lengths, invalid UTF-8, tags) and
 * byte-level mutators of payloads and of whole frame streams.
 *
 * Every input is derived from (seed, index) alone (`inputRng`), so any input of a run can
 * be regenerated from the seed and its index (fuzz-runner.ts --replay).
 */
import { encodePayload } from '../../lib/transport/wire/codec.js';

// ---------------------------------------------------------------- PRNG

/** sfc32: a small, fast, well-distributed 32-bit PRNG (PractRand-clean). */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    this.a = 0x9e3779b9;
    this.b = seed >>> 0;
    this.c = stream >>> 0;
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.u32() / 4294967296) * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** A 32-bit seed from FUZZ_SEED (a number, or any text, hashed) or the default. */
export function resolveSeed(text: string | undefined, fallback: number): number {
  if (text === undefined || text.trim() === '') return fallback >>> 0;
  const n = Number(text);
  if (Number.isInteger(n)) return n >>> 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The PRNG of input `index` of a run: independent of every other input. */
export function inputRng(seed: number, index: number): Prng {
  return new Prng(seed, Math.imul(index + 1, 0x9e3779b1) ^ (index >>> 16));
}

// ---------------------------------------------------------------- frames

/** A frame as QDataStream << QByteArray writes it. */
export function framed(payload: Buffer, length = payload.length): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(length >>> 0, 0);
  payload.copy(out, 4);
  return out;
}

/** A CBOR head (major type, argument); `bytes` forces the argument's width (0, 1, 2, 4, 8). */
export function cborHead(major: number, n: number | bigint, bytes?: 0 | 1 | 2 | 4 | 8): Buffer {
  const v = BigInt(n);
  const width = bytes ?? (v < 24n ? 0 : v < 0x100n ? 1 : v < 0x10000n ? 2 : v < 2n ** 32n ? 4 : 8);
  const m = major << 5;
  if (width === 0) return Buffer.from([m | Number(v)]);
  const out = Buffer.alloc(1 + width);
  out[0] = m | { 1: 24, 2: 25, 4: 26, 8: 27 }[width];
  if (width === 1) out[1] = Number(v);
  else if (width === 2) out.writeUInt16BE(Number(v), 1);
  else if (width === 4) out.writeUInt32BE(Number(v), 1);
  else out.writeBigUInt64BE(v, 1);
  return out;
}

/** A CBOR text string. */
export function cborText(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([cborHead(3, b.length), b]);
}

/** A CBOR map of text keys to already encoded values. */
export function cborMap(entries: Array<[string, Buffer]>): Buffer {
  return Buffer.concat([
    cborHead(5, entries.length),
    ...entries.flatMap(([k, v]) => [cborText(k), v]),
  ]);
}

// ---------------------------------------------------------------- corpus

/** Packets of every kind the protocol has, as JavaScript values. */
export function seedPackets(): Array<Record<string, unknown>> {
  const bytes = Buffer.from([0, 1, 2, 0xff, 0x7b, 0xa0]);
  return [
    { id: 1, pattern: 'sum', data: [1, 2, 3] },
    { id: 2, pattern: 'range', data: 3 },
    { id: 'req-7', pattern: { cmd: 'sum' }, data: [40, 2] },
    { id: 3, pattern: 'store', data: { name: 'a.bin', blob: bytes } },
    { id: 4.5, pattern: 'echo', data: { tag: 't', nested: { a: [1, { b: [true, null] }] } } },
    { id: 5, pattern: 'ctx', data: null, metadata: { trace: 'x', n: 1 } },
    { id: -1, pattern: { cmd: 'ctx', v: 2 }, data: 'héllo ✓ \u{1f600}' },
    { id: 6, pattern: 'big', data: 2 ** 53 - 1 },
    { id: 7, pattern: 'float', data: [0.5, -1.25e-7, 1e300, -0] },
    { pattern: 'note', data: { text: 'hi' } },
    { pattern: { evt: 'x' }, data: [bytes, 'a'] },
    { id: 2, cancel: true },
    { id: 'req-7', cancel: true },
    { response: 6, isDisposed: true, id: 1 },
    { response: 0, id: 2 },
    { isDisposed: true, id: 2 },
    { err: { status: 'error', message: 'nope' }, isDisposed: true, id: 4 },
    {
      err: 'There is no matching message handler defined in the remote service.',
      isDisposed: true,
      status: 'error',
      id: 5,
    },
    { response: { size: 4, blob: bytes }, isDisposed: true, id: 3 },
    { id: 8, pattern: 'echo', data: { a: { b: { c: { d: { e: { f: [[[[[]]]]] } } } } } } },
    { id: 9, pattern: 'x'.repeat(300), data: 'y'.repeat(70) },
    { id: 10, pattern: 'sum', data: Array.from({ length: 40 }, (_, i) => i * 1000003) },
  ];
}

const JSON_TEXTS = [
  '{"id":1,"pattern":"sum","data":[1,2,3]}',
  '{"id":1,"pattern":"sum","data":[1,2,3]}   \n\t',
  '{ "id" : "a\\u0000b", "pattern" : "p\\ud83d\\ude00", "data" : "\\ud800" }',
  '{"id":1e400,"pattern":"sum"}',
  '{"id":-0,"pattern":"sum","data":-1.5E-10}',
  '{"id":12345678901234567890,"pattern":"sum"}',
  '{"id":1,"pattern":"a","pattern":"b","id":"2"}',
  '{"__proto__":{"pattern":"polluted"},"id":1}',
  '{"constructor":{"prototype":{"x":1}},"pattern":"p"}',
  '{"id":1,"pattern":{"cmd":"sum","__proto__":null}}',
  '{"id":1,"cancel":true,"pattern":"x"}',
  '{"id":null,"cancel":true}',
  '{"id":1,"pattern":"sum","metadata":[]}',
  '{"id":{},"pattern":"sum"}',
  '{"pattern":null}',
  '{}',
  '{"response":null,"id":"1"}',
  '{"id":1,"pattern":"echo","data":{"type":"Buffer","data":[1,2,3]}}',
];

/** Hand-built CBOR payloads: the docs' examples and the corners of the subset. */
function cborSeeds(): Buffer[] {
  const h = (hex: string): Buffer => Buffer.from(hex, 'hex');
  return [
    // The docs' CBOR request, byte for byte.
    h(
      'a3' +
        '626964' +
        '03' +
        '677061747465726e' +
        '6573746f7265' +
        '6464617461' +
        'a2' +
        '646e616d65' +
        '65612e62696e' +
        '64626c6f62' +
        '44000102ff',
    ),
    cborMap([
      ['id', cborHead(0, 3)],
      ['pattern', cborText('store')],
      ['data', cborMap([['blob', h('44000102ff')]])],
    ]),
    // Floats of every width, 64-bit integers, undefined, negative integers.
    cborMap([
      ['id', h('f93c00')],
      ['pattern', cborText('sum')],
      ['data', h('86f97e00fa7f800000fb7ff8000000000000f980003bffffffffffffffff1bffffffffffffffff')],
    ]),
    cborMap([
      ['id', h('1b0000000100000000')],
      ['pattern', cborText('sum')],
      ['data', h('f7')],
    ]),
    cborMap([
      ['pattern', cborText('note')],
      ['data', cborMap([['text', cborText('hi')]])],
    ]),
    // An indefinite-length map and array (outside the documented subset).
    Buffer.concat([
      h('bf'),
      cborText('id'),
      h('01'),
      cborText('pattern'),
      cborText('sum'),
      cborText('data'),
      h('9f0102ff'),
      h('ff'),
    ]),
  ];
}

/** Valid payloads: every seed packet as JSON and as CBOR, plus hand-written edge cases. */
export function seedPayloads(): Buffer[] {
  const out: Buffer[] = [];
  for (const p of seedPackets()) {
    out.push(encodePayload('json', p));
    out.push(encodePayload('cbor', p));
  }
  for (const t of JSON_TEXTS) out.push(Buffer.from(t, 'utf8'));
  out.push(...cborSeeds());
  return out;
}

// ---------------------------------------------------------------- hostile payloads

/** CBOR values outside the documented subset: tags, shared references, bignums, dates. */
const CBOR_HOSTILE_VALUES = [
  'c0' + cborText('not a date').toString('hex'), // tag 0, an invalid date string
  'c1fb7ff8000000000000', // tag 1, NaN epoch
  'c11b7fffffffffffffff', // tag 1, a huge epoch
  'c1' + '01', // tag 1, a valid date
  'c249010000000000000000', // tag 2, a bignum over 64 bits
  'c34a0102030405060708090a', // tag 3, a negative bignum
  'd81ca16161d81d00', // tag 28/29: a map that contains itself
  'd81c82d81d00d81d00', // an array that contains itself twice
  'd90102' + '820101', // tag 258: a Set
  'd81b82' + cborText('RegExp').toString('hex') + cborText('a+').toString('hex'),
  'd81b82' + cborText('Error').toString('hex') + cborText('boom').toString('hex'),
  'd84748' + '0000000000000000', // tag 71: a typed array
  'd85649' + '000000000000000000', // tag 86: Float64Array of 9 bytes
  'c482210a', // tag 4: decimal fraction
  'd9d9f7a0', // tag 55799: self-described CBOR
  'd9dfff8300816178' + '01', // cbor-x inline record definition
  'd9dffe8300816179d9e00005', // cbor-x record definitions
  'd9dff9' + '82' + '4100' + '4100', // cbor-x bundled strings
  'd8338100', // tag 51: packed table
  'c6' + '01', // tag 6: packed reference
  'd81900', // tag 25: string reference
  'd9010080', // tag 256: string-ref namespace
  'f820', // simple(32)
  'f7', // undefined
  'f97c00', // +Infinity as float16
];

/** Heads that declare enormous lengths or counts. */
function hugeHead(rng: Prng): Buffer {
  const major = rng.pick([2, 3, 4, 5]);
  const n = rng.pick<number | bigint>([
    2n ** 63n,
    2n ** 64n - 1n,
    2n ** 53n,
    2n ** 32n - 1n,
    2n ** 31n,
    0x7fffffff,
    1 << 24,
    0xffff,
  ]);
  const width = typeof n === 'bigint' || n >= 2 ** 32 ? 8 : rng.pick([4, 8] as const);
  return Buffer.concat([cborHead(major, n, width), rng.bytes(rng.int(12))]);
}

/** Deeply nested JSON (arrays or objects), optionally unterminated. */
export function deepJson(depth: number, objects: boolean, closed: boolean): Buffer {
  const open = objects ? '{"a":' : '[';
  const close = objects ? '}' : ']';
  const inner = objects ? '1' : '';
  return Buffer.from(
    `{"id":1,"pattern":"echo","data":${open.repeat(depth)}${inner}${closed ? close.repeat(depth) : ''}}`,
    'utf8',
  );
}

/** Deeply nested CBOR (arrays or maps) as a request's data, optionally truncated. */
export function deepCbor(depth: number, maps: boolean, closed: boolean): Buffer {
  const prefix = cborMap([
    ['id', cborHead(0, 1)],
    ['pattern', cborText('echo')],
  ]);
  // Replace the map's head (2 pairs) with 3 pairs, then the key "data".
  prefix[0] = 0xa3;
  const level = maps ? Buffer.from([0xa1, 0x61, 0x61]) : Buffer.from([0x81]);
  const body = Buffer.alloc(level.length * depth);
  for (let i = 0; i < depth; i++) level.copy(body, i * level.length);
  return Buffer.concat([
    prefix,
    cborText('data'),
    body,
    closed ? Buffer.from([0x00]) : Buffer.alloc(0),
  ]);
}

const INVALID_UTF8 = [
  [0xc3, 0x28],
  [0xa0, 0xa1],
  [0xe2, 0x28, 0xa1],
  [0xf0, 0x28, 0x8c, 0xbc],
  [0xed, 0xa0, 0x80], // an encoded surrogate
  [0xc0, 0xaf], // overlong '/'
  [0xff],
  [0xfe, 0xff],
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
].map((b) => Buffer.from(b));

/** A payload made to be hostile, of one of several kinds. `big` allows inputs up to ~1 MiB. */
export function hostilePayload(rng: Prng, big: boolean): { payload: Buffer; kind: string } {
  // Deep nesting (3, 4) costs ~1 ms an input: half the weight of the others.
  const kind = big ? rng.range(6, 8) : rng.pick([0, 0, 1, 1, 2, 2, 3, 4, 5, 5]);
  switch (kind) {
    case 0: {
      // A request whose data is one CBOR value outside the subset.
      const value = Buffer.from(rng.pick(CBOR_HOSTILE_VALUES), 'hex');
      const target = rng.pick(['data', 'pattern', 'id', 'metadata']);
      const entries: Array<[string, Buffer]> = [
        ['id', cborHead(0, rng.int(1000))],
        ['pattern', cborText(rng.pick(['echo', 'sum', 'note']))],
      ];
      const i = entries.findIndex(([k]) => k === target);
      if (i >= 0) entries[i] = [target, value];
      else entries.push([target, value]);
      return { payload: cborMap(entries), kind: 'cbor-extension' };
    }
    case 1: {
      // A huge declared length or count.
      const entries: Array<[string, Buffer]> = [
        ['id', cborHead(0, 1)],
        ['pattern', cborText('echo')],
        ['data', hugeHead(rng)],
      ];
      const payload = rng.chance(0.2) ? hugeHead(rng) : cborMap(entries);
      if (payload[0]! < 0xa0 || payload[0]! > 0xbf) payload[0] = 0xbb; // keep the CBOR detection
      return { payload, kind: 'cbor-huge-length' };
    }
    case 2: {
      // Invalid UTF-8 in a JSON string or a CBOR text string (key or value).
      const bad = rng.pick(INVALID_UTF8);
      if (rng.chance(0.5)) {
        const text = Buffer.concat([
          Buffer.from('{"id":1,"pattern":"', 'utf8'),
          bad,
          Buffer.from('","data":"x', 'utf8'),
          rng.pick(INVALID_UTF8),
          Buffer.from('"}', 'utf8'),
        ]);
        return { payload: text, kind: 'json-invalid-utf8' };
      }
      const s = Buffer.concat([Buffer.from('p'), bad]);
      const payload = cborMap([
        ['id', cborHead(0, 1)],
        ['pattern', Buffer.concat([cborHead(3, s.length), s])],
      ]);
      return { payload, kind: 'cbor-invalid-utf8' };
    }
    case 3:
      return {
        payload: deepJson(rng.range(100, 1500), rng.chance(0.5), rng.chance(0.8)),
        kind: 'json-deep',
      };
    case 4:
      return {
        payload: deepCbor(rng.range(100, 1500), rng.chance(0.5), rng.chance(0.8)),
        kind: 'cbor-deep',
      };
    case 5: {
      // A map whose keys are not text, or duplicate, or __proto__.
      const key = rng.pick([
        cborHead(0, 7),
        Buffer.from([0xf5]),
        Buffer.from([0x40]),
        Buffer.from([0xa0]),
        Buffer.from([0x80]),
        cborText('__proto__'),
        cborText('pattern'),
      ]);
      const payload = Buffer.concat([
        Buffer.from([0xa3]),
        cborText('pattern'),
        cborText('sum'),
        key,
        rng.chance(0.5) ? cborMap([['pattern', cborText('x')]]) : cborHead(0, 1),
        cborText('id'),
        cborHead(0, 9),
      ]);
      return { payload, kind: 'cbor-keys' };
    }
    case 6:
      return {
        payload: deepJson(rng.range(10000, 120000), rng.chance(0.5), rng.chance(0.9)),
        kind: 'json-very-deep',
      };
    case 7:
      return {
        payload: deepCbor(rng.range(10000, 120000), rng.chance(0.5), rng.chance(0.9)),
        kind: 'cbor-very-deep',
      };
    default: {
      // A large valid packet (up to ~900 KiB) carrying a byte string or text.
      const size = rng.range(64 * 1024, 900 * 1024);
      const asCbor = rng.chance(0.5);
      const value = asCbor ? rng.bytes(size) : 'z'.repeat(size);
      return {
        payload: encodePayload(asCbor ? 'cbor' : 'json', { id: 1, pattern: 'echo', data: value }),
        kind: 'large',
      };
    }
  }
}

// ---------------------------------------------------------------- mutators

const INTERESTING_BYTES = [
  0x00, 0x01, 0x7f, 0x80, 0xff, 0x7b, 0x7d, 0x22, 0x5c, 0x5b, 0x5d, 0x3a, 0x2c, 0x18, 0x19, 0x1a,
  0x1b, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xa0, 0xbb, 0xc0, 0xc1, 0xd8, 0xd9, 0xf4, 0xf5, 0xf6, 0xf7,
  0xf9, 0xfb, 0xfc, 0xfe,
];

const JSON_TOKENS = [
  '"pattern":',
  '"id":',
  '"cancel":true',
  '"response":1',
  '"isDisposed":true',
  '"err":"e"',
  '"metadata":',
  '"__proto__":',
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  '"',
  '\\',
  '\\u',
  '\\ud800',
  'null',
  'true',
  '1e999',
  '-0',
  '[[[[[[[[',
  '{"a":{"a":{"a":',
  '\u00ff',
  '\ufeff',
].map((t) => Buffer.from(t, 'utf8'));

const CBOR_TOKENS = [
  cborHead(2, 2n ** 63n, 8),
  cborHead(3, 2n ** 64n - 1n, 8),
  cborHead(4, 0xffffffff, 4),
  cborHead(5, 0xffffffff, 4),
  Buffer.from([0x5f]),
  Buffer.from([0x7f]),
  Buffer.from([0x9f]),
  Buffer.from([0xbf]),
  Buffer.from([0xff]),
  Buffer.from([0xc1]),
  Buffer.from([0xd8, 0x1c]),
  Buffer.from([0xd8, 0x1d, 0x00]),
  Buffer.from([0xf7]),
  Buffer.from([0xf9, 0x7e, 0x00]),
  Buffer.from([0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
  cborText('pattern'),
  cborText('id'),
  cborText('cancel'),
  cborText('__proto__'),
  Buffer.from([0x81, 0x81, 0x81, 0x81, 0x81, 0x81]),
  Buffer.from([0xa1, 0x61, 0x61, 0xa1, 0x61, 0x61]),
];

/** Extreme values to write over 1, 2, 4 or 8 bytes. */
function extremeBytes(rng: Prng): Buffer {
  const width = rng.pick([1, 2, 4, 8]);
  const fill = rng.pick([0x00, 0xff, 0x7f, 0x80]);
  const out = Buffer.alloc(width, fill);
  if (fill === 0x7f) out.fill(0xff, 1);
  if (fill === 0x80) out.fill(0x00, 1);
  if (rng.chance(0.25)) out[width - 1] = (out[width - 1]! + rng.pick([1, -1])) & 0xff;
  return out;
}

/** One byte-level mutation of `data` (returns a new Buffer; `data` is not modified). */
export function mutateOnce(rng: Prng, data: Buffer, donors: readonly Buffer[]): Buffer {
  const n = data.length;
  const pos = rng.int(n + 1);
  switch (rng.int(11)) {
    case 0: {
      // Flip 1 to 8 bits.
      if (n === 0) return Buffer.from([rng.u32() & 0xff]);
      const out = Buffer.from(data);
      for (let k = rng.range(1, 8); k > 0; k--) out[rng.int(n)]! ^= 1 << rng.int(8);
      return out;
    }
    case 1: {
      // Set a byte to a random or interesting value.
      if (n === 0) return Buffer.from([rng.pick(INTERESTING_BYTES)]);
      const out = Buffer.from(data);
      out[rng.int(n)] = rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.u32() & 0xff;
      return out;
    }
    case 2:
      // Insert random bytes.
      return Buffer.concat([data.subarray(0, pos), rng.bytes(rng.range(1, 8)), data.subarray(pos)]);
    case 3: {
      // Delete a range.
      const len = rng.range(1, Math.max(1, Math.min(16, n - pos)));
      return Buffer.concat([data.subarray(0, pos), data.subarray(Math.min(n, pos + len))]);
    }
    case 4: {
      // Duplicate a range somewhere.
      if (n === 0) return data;
      const from = rng.int(n);
      const len = rng.range(1, Math.min(32, n - from));
      const piece = data.subarray(from, from + len);
      const times = rng.chance(0.1) ? rng.range(2, 50) : 1;
      return Buffer.concat([
        data.subarray(0, pos),
        ...Array<Buffer>(times).fill(piece),
        data.subarray(pos),
      ]);
    }
    case 5:
      // Truncate.
      return data.subarray(0, rng.int(n + 1));
    case 6: {
      // Splice with another payload: our prefix, its suffix.
      const other = rng.pick(donors);
      return Buffer.concat([data.subarray(0, pos), other.subarray(rng.int(other.length + 1))]);
    }
    case 7: {
      // Overwrite bytes with an extreme value (lengths, integers, float bits).
      if (n === 0) return extremeBytes(rng);
      const out = Buffer.from(data);
      const e = extremeBytes(rng);
      e.copy(out, rng.int(n), 0, e.length);
      return out;
    }
    case 8:
      // Insert a JSON token.
      return Buffer.concat([data.subarray(0, pos), rng.pick(JSON_TOKENS), data.subarray(pos)]);
    case 9:
      // Insert a CBOR token (a huge head, a tag, an indefinite-length start, a break...).
      return Buffer.concat([data.subarray(0, pos), rng.pick(CBOR_TOKENS), data.subarray(pos)]);
    default: {
      // Swap two ranges' order (move a chunk).
      if (n < 2) return data;
      const a = rng.int(n);
      const b = rng.range(a, n);
      return Buffer.concat([data.subarray(b), data.subarray(a, b), data.subarray(0, a)]);
    }
  }
}

/** 1 to `max` stacked mutations. */
export function mutate(rng: Prng, data: Buffer, donors: readonly Buffer[], max = 4): Buffer {
  let out = data;
  for (let k = rng.range(1, max); k > 0; k--) out = mutateOnce(rng, out, donors);
  return out;
}

/** A length header value to corrupt a frame with. */
export function corruptLength(rng: Prng, actual: number, maxFrameSize: number): number {
  return (
    rng.pick([
      0,
      0xffffffff,
      0xfffffffe,
      maxFrameSize,
      maxFrameSize + 1,
      Math.max(0, actual - 1),
      actual + 1,
      0x7fffffff,
      0x80000000,
      rng.u32(),
      rng.int(64),
    ]) >>> 0
  );
}

/** Positions of the frame headers of a well-formed stream. */
export function headerOffsets(stream: Buffer): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos + 4 <= stream.length) {
    out.push(pos);
    pos += 4 + stream.readUInt32BE(pos);
  }
  return out;
}

/** Random chunk sizes that add up to `length`. */
export function chunking(rng: Prng, length: number, offsets: number[]): number[] {
  if (length === 0) return [];
  const mode = rng.int(10);
  if (mode < 3) return [length];
  if (mode === 3 && length <= 256) return Array<number>(length).fill(1);
  const cuts = new Set<number>();
  if (mode === 4) {
    // Cut right around frame headers.
    for (const o of offsets) for (const d of [-1, 0, 1, 3, 4, 5]) cuts.add(o + d);
  } else {
    for (let k = rng.range(1, 8); k > 0; k--) cuts.add(rng.range(1, length - 1));
  }
  const sorted = [...cuts].filter((c) => c > 0 && c < length).sort((a, b) => a - b);
  const sizes: number[] = [];
  let last = 0;
  for (const c of sorted) {
    sizes.push(c - last);
    last = c;
  }
  sizes.push(length - last);
  return sizes;
}
