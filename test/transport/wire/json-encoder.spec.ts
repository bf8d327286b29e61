/**
 * The JSON encoder writes large strings by reference: its bytes must be JSON.stringify's, for
 * every shape of packet, and whatever JSON.stringify throws it throws.
 */
import { encodeJsonChunks } from '../../../lib/transport/wire/json-encoder.js';

const LARGE = 64 * 1024;

function bytesOf(value: unknown): Buffer {
  return Buffer.concat(encodeJsonChunks(value));
}

function expectSameAsStringify(value: unknown): void {
  expect(bytesOf(value).toString('utf8')).toBe(JSON.stringify(value));
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return null;
}

class Holder {
  constructor(readonly text: string) {}
}

describe('encodeJsonChunks', () => {
  const big = 'a'.repeat(LARGE);
  const bigUnicode = 'é€'.repeat(LARGE);

  it('a packet with no large string is one Buffer of JSON.stringify’s text', () => {
    const packet = { id: 'x1', pattern: { cmd: 'echo' }, data: { text: 'é', n: 1.5, ok: true } };
    const chunks = encodeJsonChunks(packet);
    expect(chunks).toHaveLength(1);
    expect(chunks[0].toString('utf8')).toBe(JSON.stringify(packet));
  });

  it('a large string in the payload goes as its own Buffer, the bytes as JSON.stringify’s', () => {
    for (const packet of [
      { id: 1, pattern: 'echo', data: big },
      { id: 2, response: bigUnicode, isDisposed: true },
      { data: { name: 'f.txt', content: big, size: LARGE } },
      { data: [big, 'small', bigUnicode] },
      big,
      [big],
    ]) {
      const chunks = encodeJsonChunks(packet);
      expect(chunks.length).toBeGreaterThan(1);
      expect(chunks.some((c) => c.length >= LARGE)).toBe(true);
      expectSameAsStringify(packet);
    }
  });

  it('large strings JSON escapes (quotes, backslashes, controls, surrogates) are escaped', () => {
    for (const s of [
      `${big}"`,
      `\\${big}`,
      `${big}\n`,
      `${big}\u0000\u001f`,
      `${big}\ud800`,
      `\udc00${big}`,
      `${big}😀`,
      `${big}\u2028\u007f`,
    ]) {
      expectSameAsStringify({ id: 1, data: s });
      expectSameAsStringify({ id: 1, data: { s, t: [s] } });
    }
  });

  it('properties JSON leaves out, toJSON with its key, dates, holes and odd keys are as JSON.stringify writes them', () => {
    const toJson = { toJSON: (key: string) => `key:${key}` };
    const hidden = { toJSON: () => undefined };
    const holes: unknown[] = [big];
    holes[3] = 'x';
    const withProto = JSON.parse(`{"__proto__": 1, "data": "${big}"}`) as object;
    for (const packet of [
      { a: undefined, b: () => 1, c: Symbol('s'), data: big, d: undefined },
      { data: big, tj: toJson, hidden, arr: [toJson, hidden, undefined, () => 1] },
      { when: new Date(0), data: big, nested: { when: new Date(1), s: big } },
      { data: holes },
      { data: big, inf: Infinity, nan: NaN, neg: -0, n: null },
      { '': big, 'é"\\': big, 10: 'ten', 2: big },
      { data: new Holder(big), other: big },
      { data: { deep: { deeper: { deepest: big } } } },
      { data: Object.assign(Object.create(null) as object, { s: big }) },
      { data: {}, empty: [], s: big },
      withProto,
    ]) {
      expectSameAsStringify(packet);
    }
  });

  it('a value with its own toJSON at the top is JSON.stringify’s whole', () => {
    const packet = { data: big, toJSON: () => ({ replaced: big }) };
    expectSameAsStringify(packet);
  });

  it('a cycle throws JSON.stringify’s error', () => {
    const packet: Record<string, unknown> = { id: 1, data: big };
    packet.self = packet;
    const deep: Record<string, unknown> = { s: big };
    deep.inner = { back: deep };
    for (const value of [packet, { id: 1, data: deep }]) {
      const expected = errorOf(() => JSON.stringify(value));
      const actual = errorOf(() => encodeJsonChunks(value));
      expect(actual).toBeInstanceOf(TypeError);
      expect((actual as Error).message).toBe((expected as Error).message);
    }
  });

  it('a BigInt and a throwing toJSON throw what JSON.stringify throws', () => {
    const boom = new Error('boom');
    for (const value of [
      { data: big, n: 1n },
      {
        data: big,
        bad: {
          toJSON: () => {
            throw boom;
          },
        },
      },
    ]) {
      const expected = errorOf(() => JSON.stringify(value));
      const actual = errorOf(() => encodeJsonChunks(value));
      expect(actual).toBeInstanceOf(Error);
      expect((actual as Error).message).toBe((expected as Error).message);
    }
  });

  it('random packets with large and small strings encode as JSON.stringify does', () => {
    let seed = 19;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const alphabet = ['a', 'é', '"', '\\', '\n', '\ud83d\ude00', '\ud800', ' ', '€', '\u0001'];
    const text = (long: boolean): string => {
      const c = alphabet[Math.floor(random() * alphabet.length)];
      const body = long ? 'x'.repeat(LARGE + Math.floor(random() * 10)) : 'k';
      return random() < 0.5 ? body : random() < 0.5 ? c + body : body + c;
    };
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 3 || r < 0.3) return text(random() < 0.4);
      if (r < 0.4) return [undefined, null, 1, true, 2.5][Math.floor(random() * 5)];
      if (r < 0.7) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 4); i > 0; i--)
        o[text(false) + String(i)] = value(depth + 1);
      return o;
    };
    for (let i = 0; i < 200; i++) expectSameAsStringify({ id: i, data: value(0) });
  });
});
