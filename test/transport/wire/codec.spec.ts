/**
 * The payload codecs: detection by the first byte, decoding errors, the limits on values and
 * nesting checked before decoding, JSON, and CBOR as plain RFC 8949 that Qt's QCborValue
 * reads, checked against real Qt 5 (PyQt5 + QtCore).
 */
import { spawnSync } from 'node:child_process';

import { jest } from '@jest/globals';

import {
  InvalidPayloadError,
  PacketTooComplexError,
  QtTransportError,
  decodePayload,
  detectCodec,
  encodePayload,
} from '../../../lib/transport/index.js';
import { MAX_NESTING } from '../../../lib/transport/wire/codec.js';

/** The packet of the QCborValue tests. */
const QT_PACKET = {
  id: 1,
  pattern: 'sum',
  data: {
    buf: Buffer.from([1, 2, 3]),
    n: null,
    u: undefined,
    f: 1.5,
    s: 'é',
    arr: [1, 'a'],
    nested: { x: true },
  },
};

function thrown<T extends Error>(fn: () => unknown, type: new (...args: never[]) => T): T {
  let caught: unknown = null;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(type);
  return caught as T;
}

/**
 * A small walk over CBOR bytes that reports how each item is encoded: major type, whether
 * lengths are definite, map key types, tags. Throws on anything malformed.
 */
interface CborFacts {
  majors: Set<number>;
  indefinite: number;
  tags: number[];
  nonTextKeys: number;
  byteStrings: Buffer[];
  simple: number[];
}

function cborFacts(bytes: Buffer): CborFacts {
  const facts: CborFacts = {
    majors: new Set(),
    indefinite: 0,
    tags: [],
    nonTextKeys: 0,
    byteStrings: [],
    simple: [],
  };
  let at = 0;
  const arg = (info: number): number => {
    if (info < 24) return info;
    const n = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (n === undefined) throw new Error(`reserved/indefinite additional info ${info} at ${at}`);
    const v = bytes.readUIntBE(at, Math.min(n, 6));
    at += n;
    return v;
  };
  const item = (): number => {
    if (at >= bytes.length) throw new Error('truncated CBOR');
    const first = bytes[at++];
    const major = first >> 5;
    const info = first & 0x1f;
    facts.majors.add(major);
    if (info === 31) {
      facts.indefinite++;
      throw new Error(`indefinite length item (0x${first.toString(16)})`);
    }
    switch (major) {
      case 0:
      case 1:
        arg(info);
        break;
      case 2: {
        const n = arg(info);
        facts.byteStrings.push(bytes.subarray(at, at + n));
        at += n;
        break;
      }
      case 3:
        at += arg(info);
        break;
      case 4: {
        const n = arg(info);
        for (let i = 0; i < n; i++) item();
        break;
      }
      case 5: {
        const n = arg(info);
        for (let i = 0; i < n; i++) {
          if (item() !== 3) facts.nonTextKeys++;
          item();
        }
        break;
      }
      case 6:
        facts.tags.push(arg(info));
        item();
        break;
      case 7:
        facts.simple.push(info);
        if (info === 24) at += 1;
        else if (info === 25) at += 2;
        else if (info === 26) at += 4;
        else if (info === 27) at += 8;
        break;
    }
    return major;
  };
  item();
  if (at !== bytes.length) throw new Error(`${bytes.length - at} bytes after the CBOR item`);
  return facts;
}

describe('detectCodec', () => {
  it("is 'json' for a first byte '{'", () => {
    expect(detectCodec(Buffer.from('{"id":1}'))).toBe('json');
    expect(detectCodec(Buffer.from('{'))).toBe('json');
  });

  it("is 'cbor' for every first byte 0xA0–0xBF (a CBOR map header)", () => {
    for (let b = 0xa0; b <= 0xbf; b++) expect(detectCodec(Buffer.from([b]))).toBe('cbor');
  });

  it('is null for any other first byte, and for an empty payload', () => {
    for (let b = 0; b <= 0xff; b++) {
      if (b === 0x7b || (b >= 0xa0 && b <= 0xbf)) continue;
      expect({ b, codec: detectCodec(Buffer.from([b])) }).toEqual({ b, codec: null });
    }
    expect(detectCodec(Buffer.alloc(0))).toBeNull();
    // Not JSON objects at the first byte: whitespace, an array, a string, a BOM.
    expect(detectCodec(Buffer.from(' {}'))).toBeNull();
    expect(detectCodec(Buffer.from('[1]'))).toBeNull();
    expect(detectCodec(Buffer.from('"x"'))).toBeNull();
    expect(detectCodec(Buffer.from('\ufeff{}'))).toBeNull();
  });
});

describe('decodePayload', () => {
  it('decodes JSON (UTF-8) and CBOR, telling which', () => {
    expect(decodePayload(Buffer.from('{"id":"a","pattern":"é","data":[1,null]}'))).toEqual({
      codec: 'json',
      value: { id: 'a', pattern: 'é', data: [1, null] },
    });
    expect(decodePayload(Buffer.from('a2626964016170f5', 'hex'))).toEqual({
      codec: 'cbor',
      value: { id: 1, p: true },
    });
  });

  it('a first byte that is neither "{" nor a CBOR map: InvalidPayloadError (QT_INVALID_PAYLOAD) naming the byte', () => {
    for (const bad of [Buffer.from('[1,2]'), Buffer.from([0x82, 1, 2]), Buffer.from('hello')]) {
      const err = thrown(() => decodePayload(bad), InvalidPayloadError);
      expect(err).toBeInstanceOf(QtTransportError);
      expect(err.code).toBe('QT_INVALID_PAYLOAD');
      expect(err.message).toContain(`0x${bad[0].toString(16).padStart(2, '0')}`);
    }
  });

  it('an empty payload is an InvalidPayloadError', () => {
    expect(thrown(() => decodePayload(Buffer.alloc(0)), InvalidPayloadError).code).toBe(
      'QT_INVALID_PAYLOAD',
    );
  });

  it('bad JSON: InvalidPayloadError saying JSON, with the parser error as cause', () => {
    for (const text of ['{"a":', '{a:1}', '{"a":1} trailing', '{"a":1}}']) {
      const err = thrown(() => decodePayload(Buffer.from(text)), InvalidPayloadError);
      expect(err.code).toBe('QT_INVALID_PAYLOAD');
      expect(err.message).toContain('JSON');
      expect(err.cause).toBeInstanceOf(Error);
    }
  });

  it('bad CBOR: InvalidPayloadError saying CBOR (truncated map, truncated string, garbage after the map)', () => {
    for (const hex of ['a1', 'a16161', 'a1616162', 'a16161c1fb', 'a000', 'a1616101ff']) {
      const err = thrown(() => decodePayload(Buffer.from(hex, 'hex')), InvalidPayloadError);
      expect({ hex, code: err.code }).toEqual({ hex, code: 'QT_INVALID_PAYLOAD' });
      expect(err.message).toContain('CBOR');
    }
  });
});

// ------------------------------------------------------- packet limits, before decoding

/** A payload's values as the limit counts them: every map, array, key and scalar. */
function valuesIn(value: unknown): number {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return 1;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + valuesIn(v), 1);
  return Object.values(value).reduce((n: number, v) => n + 1 + valuesIn(v), 1);
}

/** The error decodePayload throws for `payload` under `maxPacketValues` (null if none). */
function refusal(payload: Buffer, maxPacketValues?: number): QtTransportError | null {
  try {
    decodePayload(payload, maxPacketValues === undefined ? undefined : { maxPacketValues });
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(QtTransportError);
    return err as QtTransportError;
  }
}

/** Asserts that `payload` holds exactly `n` values: accepted at a limit of n, refused at n - 1. */
function expectValues(payload: Buffer, n: number): void {
  expect({ at: n, error: refusal(payload, n)?.message ?? null }).toEqual({ at: n, error: null });
  const err = refusal(payload, n - 1);
  expect(err).toBeInstanceOf(PacketTooComplexError);
  expect(err!.code).toBe('QT_PACKET_TOO_COMPLEX');
}

/** `{"d":<levels arrays>}`: the packet's map, then `levels` nested arrays (JSON or CBOR). */
function nested(codec: 'json' | 'cbor', levels: number, close = true): Buffer {
  if (codec === 'json') {
    return Buffer.from(`{"d":${'['.repeat(levels)}${close ? ']'.repeat(levels) : ''}}`);
  }
  // a1 "d", then 81 (an array of one) for every level but the last, which is 80 (empty).
  const body = Buffer.alloc(levels, 0x81);
  if (levels > 0) body[levels - 1] = 0x80;
  return Buffer.concat([Buffer.from('a16164', 'hex'), close ? body : body.subarray(0, -1)]);
}

/** A small seeded PRNG (LCG) for the generated packets below. */
function lcg(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * n);
  };
}

/** Strings that stress the JSON scan: escapes (also at the 32-byte mark), quotes, brackets. */
const TRICKY_STRINGS = [
  '',
  'plain',
  'a "quoted" word',
  'back\\slash',
  'ends in a backslash \\',
  '\\"',
  '\\\\"',
  '"',
  '[{"not":"structure"}],:',
  'é ✓ \u{1f600} 中文',
  '\u0000\u001f\n\t\r\b\f',
  'x'.repeat(31) + '"',
  'x'.repeat(30) + '\\"' + 'y'.repeat(40),
  'x'.repeat(32) + '\\',
  '\\'.repeat(65) + '"' + 'z'.repeat(100),
  '"'.repeat(100),
  'q'.repeat(5000) + '"' + '\\'.repeat(7),
  // JSON text inside a string: escaped quotes close together, for longer than 4 KiB.
  JSON.stringify(Array.from({ length: 400 }, (_, i) => ({ a: i, b: 'x"\\' }))),
];

function randomValue(rand: (n: number) => number, depth: number): unknown {
  switch (rand(depth > 6 ? 6 : 8)) {
    case 0:
      return TRICKY_STRINGS[rand(TRICKY_STRINGS.length)];
    case 1:
      return rand(2) ? rand(1000) - 500 : (rand(1e6) - 5e5) / 7;
    case 2:
      return [true, false, null][rand(3)];
    case 3:
      return 'k'.repeat(rand(40));
    case 4:
      return -1e-7 * rand(1000);
    case 5:
      return 2 ** 40 + rand(1000);
    case 6:
      return Array.from({ length: rand(6) }, () => randomValue(rand, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: rand(6) }, (_, i) => [
          `${TRICKY_STRINGS[rand(TRICKY_STRINGS.length)]}${i}`,
          randomValue(rand, depth + 1),
        ]),
      );
  }
}

describe('decodePayload: a `__proto__` key (docs/protocol.md)', () => {
  it('JSON: an own property named __proto__; the prototype is untouched', () => {
    const value = decodePayload(Buffer.from('{"__proto__":{"polluted":1},"a":1}')).value as Record<
      string,
      unknown
    >;
    expect(Object.keys(value)).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('CBOR: an own property named __proto_ (renamed by the decoder); the prototype is untouched', () => {
    const key = Buffer.from('__proto__');
    // { "__proto__": { "polluted": 1 }, "a": 1 }
    const payload = Buffer.concat([
      Buffer.from([0xa2, 0x60 + key.length]),
      key,
      Buffer.from([0xa1, 0x68]),
      Buffer.from('polluted'),
      Buffer.from([0x01, 0x61, 0x61, 0x01]),
    ]);
    const value = decodePayload(payload).value as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto_', 'a']);
    expect(value.__proto_).toEqual({ polluted: 1 });
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('decodePayload: maxPacketValues and the nesting limit, checked before decoding', () => {
  it('counts every map, array, key, string, number, boolean and null as one value (JSON)', () => {
    expectValues(Buffer.from('{}'), 1);
    expectValues(Buffer.from('{"a":1}'), 3);
    expectValues(Buffer.from('{"a":[1,-2.5e+3,true,false,null,"s",{},[]]}'), 11);
    expectValues(Buffer.from('{\n  "a" : [ 1 , { "b" : "c" } ] \n}\n '), 7);
    expectValues(Buffer.from('{"id":1,"pattern":"sum","data":[1,2,3]}'), 10);
  });

  it('counts the same way in CBOR: keys too, and a tag as one more', () => {
    expectValues(Buffer.from('a0', 'hex'), 1);
    expectValues(Buffer.from('a1616101', 'hex'), 3);
    // {"a": [1, -1, 1.5 (half), 100000.0 (double), true, false, null, undefined, h'00', "s"]}
    expectValues(
      Buffer.from('a161618a0120f93e00fb40f86a0000000000f5f4f6f7410061' + '73', 'hex'),
      13,
    );
    // {"a": 2(h'0102')}: a bignum tag (decoded to 258) counts one, its byte string one.
    expectValues(Buffer.from('a16161c2420102', 'hex'), 4);
  });

  it('CBOR indefinite-length maps and arrays count as their items, ended by their break', () => {
    // {_ "a": [_ 1, 2], "b": {_ "x": null}}
    const payload = Buffer.from('bf61619f0102ff6162bf6178f6ffff', 'hex');
    expect(decodePayload(payload).value).toEqual({ a: [1, 2], b: { x: null } });
    expectValues(payload, 9);
    // Empty ones, and nested ones.
    expectValues(Buffer.from('bf61619fffff', 'hex'), 3);
    expectValues(Buffer.from('a161619f9f9fffffff', 'hex'), 5);
    expect(decodePayload(Buffer.from('a161619f9f9fffffff', 'hex')).value).toEqual({ a: [[[]]] });
  });

  it('CBOR heads that are not well formed: InvalidPayloadError saying where (breaks, reserved values, cut short, trailing bytes)', () => {
    for (const [hex, words] of [
      ['bf6161ff', 'a break where an item must be'], // a key without its value
      ['a1616181c0ff', 'a break where an item must be'], // a tag without its item
      ['a16161ff', 'a break outside'],
      ['a161619f01', 'cut short'],
      ['a161615f4101ff', 'indefinite length not on a map or array'], // cbor-x reads none
      ['a161611c', 'reserved additional information'],
      ['a161613f', 'indefinite length not on a map or array'],
      ['a16161c1fb0000', 'cut short in a head'],
      ['a161615a00010000', 'cut short in a string'],
      ['a1616101a0', 'trailing bytes (1)'],
      ['a161619bffffffffffffffff', 'cut short'], // an array claiming 2^64-1 items
    ] as const) {
      const err = refusal(Buffer.from(hex, 'hex'));
      expect({ hex, err: err?.constructor.name }).toEqual({ hex, err: 'InvalidPayloadError' });
      expect({ hex, message: err!.message }).toEqual({
        hex,
        message: expect.stringContaining(words) as string,
      });
      expect(err!.message).toMatch(/CBOR does not decode: .* at byte \d+$/);
    }
  });

  it('a payload with tags is still held to the subset after decoding: shared and cyclic references (tags 28, 29) are refused', () => {
    for (const hex of ['a16161d81ca16162d81d00', 'a1616182d81ca0d81d00']) {
      const err = refusal(Buffer.from(hex, 'hex'));
      expect({ hex, err: err?.message }).toEqual({
        hex,
        err: 'Invalid frame payload: CBOR shared or cyclic reference (a tag)',
      });
    }
  });

  it('strings are skipped whole: escapes, quotes, brackets and commas inside them count nothing', () => {
    for (const s of TRICKY_STRINGS) {
      const payload = Buffer.from(JSON.stringify({ [s]: [s, s] }));
      expect(decodePayload(payload, { maxPacketValues: 5 }).value).toEqual({ [s]: [s, s] });
      expectValues(payload, 5);
    }
  });

  it('the count agrees with the decoded packet exactly, for generated packets in both codecs', () => {
    const rand = lcg(0x5ca1ab1e);
    for (let i = 0; i < 300; i++) {
      const packet = { id: i, pattern: 'p', data: randomValue(rand, 0) };
      const n = valuesIn(packet);
      const json = Buffer.from(JSON.stringify(packet, null, rand(2) ? 2 : undefined));
      expect(decodePayload(json).value).toEqual(packet);
      expectValues(json, n);
      expectValues(encodePayload('cbor', packet), n);
    }
  });

  it('refuses the first value past the limit with PacketTooComplexError, naming the limit and the option; JSON.parse never runs', () => {
    const parse = jest.spyOn(JSON, 'parse');
    try {
      const payload = Buffer.from(`{"d":[${Array(5000).fill('{}').join(',')}]}`);
      const err = refusal(payload, 100) as PacketTooComplexError;
      expect(err).toBeInstanceOf(PacketTooComplexError);
      expect(err.exceeded).toBe('values');
      expect(err.limit).toBe(100);
      // The 101st value is the 98th {} of the array: at byte 6 + 97 * 3.
      expect(err.offset).toBe(6 + 97 * 3);
      expect(err.message).toBe(
        'JSON packet holds more than 100 values (maxPacketValues); refused at byte 297',
      );
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });

  it('holds a default of 1,000,000 values when no limit is given, in both codecs', () => {
    // The packet's map, "d", the array: 3 values; then the array's zeros.
    const json = (zeros: number): Buffer =>
      Buffer.from(`{"d":[${Array(zeros).fill('0').join(',')}]}`);
    expect(refusal(json(999_997))).toBeNull();
    expect(refusal(json(999_998))?.message).toContain('more than 1000000 values');
    const cbor = (zeros: number): Buffer => {
      const b = Buffer.alloc(8 + zeros); // zeros are 0x00, one byte each
      b.write('a161649a', 0, 'hex');
      b.writeUInt32BE(zeros, 4);
      return b;
    };
    expect(refusal(cbor(999_997))).toBeNull();
    expect(refusal(cbor(999_998))?.message).toContain('more than 1000000 values');
  });

  it.each(['json', 'cbor'] as const)(
    '%s: nesting 512 levels below the packet is accepted, 513 refused (PacketTooComplexError) before decoding',
    (codec) => {
      expect(refusal(nested(codec, 512))).toBeNull();
      const err = refusal(nested(codec, 513)) as PacketTooComplexError;
      expect(err).toBeInstanceOf(PacketTooComplexError);
      expect(err.exceeded).toBe('depth');
      expect(err.limit).toBe(MAX_NESTING);
      expect(err.message).toContain('nested deeper than 512 levels');
      // The opening of level 513: after the packet's head and key, 512 levels of one byte.
      expect(err.offset).toBe((codec === 'json' ? 5 : 3) + 512);
      // Maps nest the same way as arrays.
      if (codec === 'json') {
        const maps = (n: number): Buffer =>
          Buffer.from(`{"d":${'{"a":'.repeat(n - 1)}{}${'}'.repeat(n - 1)}}`);
        expect(refusal(maps(512))).toBeNull();
        expect(refusal(maps(513))).toBeInstanceOf(PacketTooComplexError);
      }
    },
  );

  it.each(['json', 'cbor'] as const)(
    '%s: a deep payload cut short is refused at the 513th level, not read to its end',
    (codec) => {
      const payload = nested(codec, 200_000, false);
      const err = refusal(payload) as PacketTooComplexError;
      expect(err).toBeInstanceOf(PacketTooComplexError);
      expect(err.offset).toBeLessThan(600);
    },
  );

  it('the nesting limit holds at any payload length, also where the JSON scan could be skipped', () => {
    // 513 levels written with no padding are longer than the shortcut allows...
    expect(refusal(nested('json', 513))).toBeInstanceOf(PacketTooComplexError);
    // ... and a long string beside them does not hide them.
    const padded = Buffer.from(
      `{"s":"${'x'.repeat(2000)}","d":${'['.repeat(513)}${']'.repeat(513)}}`,
    );
    expect(refusal(padded)).toBeInstanceOf(PacketTooComplexError);
    // A small limit is held on a small payload too.
    expectValues(Buffer.from('{"a":[1,2]}'), 5);
  });

  it('a 16 MiB string is one value (the scan skips it)', () => {
    const big = 'é'.repeat(8 * 1024 * 1024);
    expectValues(Buffer.from(JSON.stringify({ s: big })), 3);
    expectValues(encodePayload('cbor', { s: big }), 3);
  });
});

describe('encodePayload: JSON', () => {
  it('is JSON.stringify as UTF-8', () => {
    const packet = { id: 1, pattern: 'sum', data: [1, 2, 3] };
    expect(encodePayload('json', packet).toString('utf8')).toBe(
      '{"id":1,"pattern":"sum","data":[1,2,3]}',
    );
    expect(encodePayload('json', { s: 'é' })).toEqual(
      Buffer.from([0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xc3, 0xa9, 0x22, 0x7d]),
    );
    expect(encodePayload('json', { id: 'x', u: undefined }).toString()).toBe('{"id":"x"}');
  });

  it('round-trips through decodePayload', () => {
    const packet = { id: 'req-1', pattern: { cmd: 'x' }, data: { a: [1, 'b', null, true] } };
    expect(decodePayload(encodePayload('json', packet))).toEqual({ codec: 'json', value: packet });
  });
});

describe('encodePayload: CBOR is plain RFC 8949', () => {
  it('a Buffer becomes a byte string (major type 2), as does a Uint8Array', () => {
    expect(encodePayload('cbor', { b: Buffer.from([1, 2, 3]) }).toString('hex')).toBe(
      'a161624301' + '0203',
    );
    expect(encodePayload('cbor', { b: new Uint8Array([9, 8]) }).toString('hex')).toBe(
      'a16162420908',
    );
  });

  it('undefined becomes null (0xF6), at any depth, without changing the input', () => {
    expect(encodePayload('cbor', { u: undefined }).toString('hex')).toBe('a16175f6');
    const input = { a: [1, undefined], b: { c: undefined } };
    expect(encodePayload('cbor', input).toString('hex')).toBe('a2616182' + '01f6' + '6162a16163f6');
    expect(input).toEqual({ a: [1, undefined], b: { c: undefined } });
    expect('c' in input.b).toBe(true);
  });

  it('maps have text keys and definite lengths, also with more than 23 entries', () => {
    const big: Record<string, number> = {};
    for (let i = 0; i < 30; i++) big[`k${i}`] = i;
    const bytes = encodePayload('cbor', { id: 1, pattern: 'p', data: big });
    const facts = cborFacts(bytes);
    expect(facts.indefinite).toBe(0);
    expect(facts.nonTextKeys).toBe(0);
    expect(bytes[0]).toBe(0xa3);
    expect(bytes.includes(Buffer.from([0xb8, 30]))).toBe(true);
  });

  it('no tags: repeated object shapes and repeated strings are written out plainly (no records, no shared strings)', () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({ name: 'same-name', value: i, ok: true }));
    const bytes = encodePayload('cbor', { id: 2, pattern: 'rows', data: rows });
    const facts = cborFacts(bytes);
    expect(facts.tags).toEqual([]);
    expect(facts.indefinite).toBe(0);
    expect(facts.nonTextKeys).toBe(0);
    // Every row spells its keys and strings out.
    expect(bytes.toString('latin1').split('same-name').length - 1).toBe(40);
    expect(decodePayload(bytes).value).toEqual({ id: 2, pattern: 'rows', data: rows });
  });

  it('the packet of the Qt test encodes to the expected bytes', () => {
    const facts = cborFacts(encodePayload('cbor', QT_PACKET));
    expect(facts.tags).toEqual([]);
    expect(facts.byteStrings).toEqual([Buffer.from([1, 2, 3])]);
    expect(facts.majors).toEqual(new Set([0, 2, 3, 4, 5, 7]));
  });

  it('round-trips through decodePayload, Buffers as Buffers', () => {
    const { codec, value } = decodePayload(encodePayload('cbor', QT_PACKET));
    expect(codec).toBe('cbor');
    expect(value).toEqual({ ...QT_PACKET, data: { ...QT_PACKET.data, u: null } });
    expect(Buffer.isBuffer((value as typeof QT_PACKET).data.buf)).toBe(true);
  });
});

// ------------------------------------------------------------------ real Qt

const PYTHON = '/usr/bin/python3';

/**
 * Real Qt 5's QCborValue, from Python. PyQt5 wraps QCborStreamReader/Writer but not
 * QCborValue (and its readString()/append(str) bindings are broken), so the script calls
 * QtCore's own exported functions with ctypes, on the libQt5Core that PyQt5 has loaded:
 * QCborValue::fromCbor(QByteArray), toDiagnosticNotation(), toVariant() (converted to
 * Python by PyQt5), QCborValue::fromVariant() and toCbor(). Results returned by value are
 * passed as a hidden first pointer argument, as the x86-64 System V C++ ABI does.
 *
 * Input (stdin, JSON): { cbor: [hex...], json: [hex...] }. Output (stdout, JSON): for each
 * CBOR payload, Qt's parser error and offset, its diagnostic notation, its toVariant() in a
 * typed form ({"$bytes": hex}, {"$double": x}), and its re-encoding by toCbor(); for each
 * JSON payload, QJsonDocument::fromJson's error and the compact re-encoding; plus a reply
 * packet written by Qt (QCborValue::fromVariant(...).toCbor() and
 * QJsonDocument::toJson(Compact)).
 */
const QT_CBOR = String.raw`
import sys, json, ctypes
from PyQt5 import sip
from PyQt5.QtCore import QByteArray, QVariant, QJsonValue, QJsonDocument, QJsonParseError

lib = ctypes.CDLL('libQt5Core.so.5')
P = ctypes.c_void_p
def fn(name, *args):
    f = getattr(lib, name); f.restype = P; f.argtypes = list(args); return f
fromCbor = fn('_ZN10QCborValue8fromCborERK10QByteArrayP16QCborParserError', P, P, P)
toDiagnosticNotation = fn('_ZNK10QCborValue20toDiagnosticNotationE6QFlagsINS_24DiagnosticNotationOptionEE', P, P, ctypes.c_int)
toUtf8 = fn('_ZN7QString13toUtf8_helperERKS_', P, P)
toVariant = fn('_ZNK10QCborValue9toVariantEv', P, P)
fromVariant = fn('_ZN10QCborValue11fromVariantERK8QVariant', P, P)
toCbor = fn('_ZN10QCborValue6toCborE6QFlagsINS_14EncodingOptionEE', P, P, ctypes.c_int)

keep = []
def mem():
    b = ctypes.create_string_buffer(64); keep.append(b); return b
def addr(b):
    return ctypes.addressof(b)
def qbytes(b):
    return bytes(sip.wrapinstance(addr(b), QByteArray))

def diag(value):
    s, u = mem(), mem()
    toDiagnosticNotation(addr(s), addr(value), 0)
    toUtf8(addr(u), addr(s))
    return qbytes(u).decode('utf-8')

def typed(v):
    if isinstance(v, QByteArray): return {'$bytes': bytes(v).hex()}
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)): return v
    if isinstance(v, float): return {'$double': v}
    if isinstance(v, dict): return {k: typed(x) for k, x in v.items()}
    if isinstance(v, list): return [typed(x) for x in v]
    return {'$other': repr(v)}

def encode(value):
    out = mem()
    toCbor(addr(out), addr(value), 0)
    return qbytes(out).hex()

request = json.load(sys.stdin)
parsed = []
for h in request.get('cbor', []):
    ba = QByteArray(bytes.fromhex(h)); keep.append(ba)
    value, err = mem(), mem()
    fromCbor(addr(value), sip.unwrapinstance(ba), addr(err))
    variant = mem()
    toVariant(addr(variant), addr(value))
    parsed.append({
        'offset': ctypes.c_int64.from_buffer(err, 0).value,
        'error': ctypes.c_int.from_buffer(err, 8).value,
        'diag': diag(value),
        'variant': typed(sip.wrapinstance(addr(variant), QVariant)),
        'toCbor': encode(value),
    })
jsons = []
for h in request.get('json', []):
    error = QJsonParseError()
    doc = QJsonDocument.fromJson(QByteArray(bytes.fromhex(h)), error)
    jsons.append({'error': int(error.error), 'isObject': doc.isObject(),
                  'compact': bytes(doc.toJson(QJsonDocument.Compact)).decode('utf-8')})

reply = QVariant({
    'id': 7,
    'isDisposed': True,
    'response': {
        'bytes': QByteArray(b'\x00\xff\x10'),
        'text': '\u00e9t\u00e9',
        'f': 2.25,
        'neg': -5,
        'big': 2 ** 40,
        'arr': [1, 'a', True],
        'nested': {'ok': False},
        'null': QJsonValue(),
        'undef': None,
    },
})
keep.append(reply)
written = mem()
fromVariant(addr(written), sip.unwrapinstance(reply))
doc = QJsonDocument.fromVariant(QVariant({'id': 'q-1', 'pattern': 'sum', 'data': [1, 2, 3]}))
print(json.dumps({
    'cbor': parsed,
    'json': jsons,
    'qtCbor': encode(written),
    'qtCborDiag': diag(written),
    'qtJson': bytes(doc.toJson(QJsonDocument.Compact)).hex(),
}))
`;

interface QtCborResult {
  cbor: Array<{
    offset: number;
    error: number;
    diag: string;
    variant: unknown;
    toCbor: string;
  }>;
  json: Array<{ error: number; isObject: boolean; compact: string }>;
  qtCbor: string;
  qtCborDiag: string;
  qtJson: string;
}

function qtUnavailable(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return `the ctypes calls into QtCore assume Linux x86-64 (this is ${process.platform}/${process.arch})`;
  }
  const r = spawnSync(
    PYTHON,
    ['-c', 'import ctypes; from PyQt5 import sip, QtCore; ctypes.CDLL("libQt5Core.so.5")'],
    {
      timeout: 20000,
      encoding: 'utf8',
    },
  );
  if (r.error) return `${PYTHON} cannot run: ${r.error.message}`;
  if (r.status !== 0) {
    return `${PYTHON} cannot import PyQt5 / load libQt5Core.so.5: ${r.stderr.trim().split('\n').pop()}`;
  }
  return null;
}

function runQt(input: { cbor?: string[]; json?: string[] }): QtCborResult {
  const r = spawnSync(PYTHON, ['-c', QT_CBOR], {
    input: JSON.stringify(input),
    timeout: 20000,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`PyQt5 script failed (${r.status ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as QtCborResult;
}

const qtMissing = qtUnavailable();
if (qtMissing) console.log(`codec.spec: the real-Qt (QCborValue) tests are skipped: ${qtMissing}`);
const withQt = qtMissing ? it.skip : it;

describe("real Qt 5 reads our CBOR with QCborValue::fromCbor, and we read Qt's", () => {
  withQt(
    'QCborValue::fromCbor reads the packet without error; Qt sees a byte array, null, a double, text, an array, a map',
    () => {
      const ours = encodePayload('cbor', QT_PACKET);
      const [parsed] = runQt({ cbor: [ours.toString('hex')] }).cbor;
      expect(parsed.error).toBe(0); // QCborError::NoError
      expect(parsed.offset).toBe(ours.length); // everything consumed
      expect(parsed.diag).toBe(
        '{"id": 1, "pattern": "sum", "data": {"buf": h\'010203\', "n": null, "u": null, ' +
          '"f": 1.5, "s": "\\u00E9", "arr": [1, "a"], "nested": {"x": true}}}',
      );
      expect(parsed.variant).toEqual({
        id: 1,
        pattern: 'sum',
        data: {
          buf: { $bytes: '010203' },
          n: null,
          u: null,
          f: { $double: 1.5 },
          s: 'é',
          arr: [1, 'a'],
          nested: { x: true },
        },
      });
    },
  );

  withQt("QCborValue's own re-encoding (toCbor) of our packet is byte-identical to ours", () => {
    const ours = encodePayload('cbor', QT_PACKET);
    const [parsed] = runQt({ cbor: [ours.toString('hex')] }).cbor;
    expect(parsed.toCbor).toBe(ours.toString('hex'));
  });

  withQt(
    'integers, negative numbers, big numbers, empty containers and long strings read as Qt expects',
    () => {
      const packet = {
        id: 'abc',
        pattern: { cmd: 'x' },
        data: {
          small: 23,
          byte: 200,
          neg: -1000,
          u32: 4294967295,
          empty: {},
          none: [],
          long: 'x'.repeat(300),
          blob: Buffer.alloc(300, 0x5a),
          keys: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i])),
        },
      };
      const ours = encodePayload('cbor', packet);
      const [parsed] = runQt({ cbor: [ours.toString('hex')] }).cbor;
      expect(parsed.error).toBe(0);
      expect(parsed.offset).toBe(ours.length);
      expect(parsed.diag).not.toMatch(/\d+\(/); // no tags (diagnostic notation "N(...)")
      expect(parsed.variant).toEqual({
        id: 'abc',
        pattern: { cmd: 'x' },
        data: {
          small: 23,
          byte: 200,
          neg: -1000,
          u32: 4294967295,
          empty: {},
          none: [],
          long: 'x'.repeat(300),
          blob: { $bytes: '5a'.repeat(300) },
          keys: packet.data.keys,
        },
      });
    },
  );

  withQt(
    "Qt's QCborValue::fromVariant(...).toCbor() decodes to the expected values (QByteArray → Buffer)",
    () => {
      const qt = runQt({});
      const bytes = Buffer.from(qt.qtCbor, 'hex');
      const { codec, value } = decodePayload(bytes);
      expect(codec).toBe('cbor');
      const { big: _big, ...response } = (value as { response: Record<string, unknown> }).response;
      expect({ ...(value as object), response }).toEqual({
        id: 7,
        isDisposed: true,
        response: {
          bytes: Buffer.from([0x00, 0xff, 0x10]),
          text: 'été',
          f: 2.25,
          neg: -5,
          arr: [1, 'a', true],
          nested: { ok: false },
          null: null,
          undef: undefined,
        },
      });
      expect('undef' in response).toBe(true);
      expect(Buffer.isBuffer(response.bytes)).toBe(true);
      expect(qt.qtCborDiag).toContain('"bytes": h\'00ff10\'');
      expect(qt.qtCborDiag).toContain('"undef": undefined');
    },
  );

  withQt(
    'a Qt qint64 beyond 32 bits (e.g. QDateTime::currentMSecsSinceEpoch()) decodes to a JS number, not a BigInt',
    () => {
      const qt = runQt({});
      // Qt writes 2^40 as a CBOR unsigned integer with an 8-byte argument.
      expect(qt.qtCbor).toContain('1b0000010000000000');
      const { value } = decodePayload(Buffer.from(qt.qtCbor, 'hex'));
      const big = (value as { response: { big: unknown } }).response.big;
      expect(typeof big).toBe('number');
      expect(big).toBe(2 ** 40);
      // A handler's answer must stay encodable as JSON too.
      expect(() => JSON.stringify(value)).not.toThrow();
    },
  );

  withQt(
    'a JS integer beyond 32 bits is sent as a CBOR integer: QCborValue reads an integer, not a double',
    () => {
      const packet = {
        id: 1,
        pattern: 'p',
        data: { t: 1_700_000_000_000, big: 2 ** 40, neg: -(2 ** 40) },
      };
      const [parsed] = runQt({ cbor: [encodePayload('cbor', packet).toString('hex')] }).cbor;
      expect(parsed.error).toBe(0);
      expect(parsed.diag).toBe(
        '{"id": 1, "pattern": "p", "data": {"t": 1700000000000, "big": 1099511627776, "neg": -1099511627776}}',
      );
      expect(parsed.variant).toEqual({ id: 1, pattern: 'p', data: packet.data });
    },
  );

  withQt("Qt's re-encoding of our packet decodes back to our packet", () => {
    const ours = encodePayload('cbor', QT_PACKET);
    const [parsed] = runQt({ cbor: [ours.toString('hex')] }).cbor;
    expect(decodePayload(Buffer.from(parsed.toCbor, 'hex')).value).toEqual({
      ...QT_PACKET,
      data: { ...QT_PACKET.data, u: null },
    });
  });

  withQt(
    'QJsonDocument::fromJson reads our JSON; QJsonDocument::toJson(Compact) decodes with decodePayload',
    () => {
      const packet = { id: 3, pattern: 'sum', data: { s: 'é', list: [1, 2.5, null, true] } };
      const qt = runQt({ json: [encodePayload('json', packet).toString('hex')] });
      expect(qt.json[0].error).toBe(0); // QJsonParseError::NoError
      expect(qt.json[0].isObject).toBe(true);
      expect(JSON.parse(qt.json[0].compact)).toEqual(packet);
      expect(decodePayload(Buffer.from(qt.qtJson, 'hex'))).toEqual({
        codec: 'json',
        value: { id: 'q-1', pattern: 'sum', data: [1, 2, 3] },
      });
    },
  );
});
