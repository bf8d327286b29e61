/**
 * ByteQueue: the chunk list behind QIODevice's read buffer and QAbstractSocket's write
 * buffer (Qt's QRingBuffer plays this part).
 */
import { ByteQueue } from '../../../lib/qtnetwork/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const str = (buf: Buffer): string => buf.toString('latin1');

/** Does `part` share memory with `whole` (is it a view into the same bytes)? */
function sharesMemory(part: Buffer, whole: Buffer): boolean {
  return (
    part.buffer === whole.buffer &&
    part.byteOffset >= whole.byteOffset &&
    part.byteOffset + part.length <= whole.byteOffset + whole.length
  );
}

/** A queue holding "abc" | "defg" | "hi" as three chunks. */
function threeChunks(): ByteQueue {
  const q = new ByteQueue();
  q.push(b('abc'));
  q.push(b('defg'));
  q.push(b('hi'));
  return q;
}

describe('ByteQueue', () => {
  it('starts empty: size 0, reads and peeks return empty buffers, indexOf is -1', () => {
    const q = new ByteQueue();
    expect(q.size).toBe(0);
    expect(q.read(10).length).toBe(0);
    expect(q.peek(10).length).toBe(0);
    expect(q.skip(10)).toBe(0);
    expect(q.indexOf(0x0a)).toBe(-1);
    expect(q.takeAll()).toEqual([]);
  });

  it('push adds to size; empty chunks are ignored', () => {
    const q = new ByteQueue();
    q.push(b('abc'));
    q.push(Buffer.alloc(0));
    q.push(b('de'));
    expect(q.size).toBe(5);
    expect(q.takeAll().map(str)).toEqual(['abc', 'de']);
  });

  it('read returns bytes in FIFO order across chunk boundaries', () => {
    const q = threeChunks();
    expect(str(q.read(2))).toBe('ab');
    expect(q.size).toBe(7);
    expect(str(q.read(3))).toBe('cde');
    expect(q.size).toBe(4);
    expect(str(q.read(100))).toBe('fghi');
    expect(q.size).toBe(0);
    expect(q.read(1).length).toBe(0);
  });

  it('read(0), read of a negative or fractional size', () => {
    const q = threeChunks();
    expect(q.read(0).length).toBe(0);
    expect(q.read(-5).length).toBe(0);
    expect(q.size).toBe(9);
    expect(str(q.read(2.9))).toBe('ab');
    expect(q.size).toBe(7);
  });

  it('peek does not consume and sees across chunks', () => {
    const q = threeChunks();
    expect(str(q.peek(5))).toBe('abcde');
    expect(q.size).toBe(9);
    expect(str(q.peek(100))).toBe('abcdefghi');
    q.skip(4);
    expect(str(q.peek(3))).toBe('efg');
    expect(str(q.peek(4))).toBe('efgh');
    expect(q.size).toBe(5);
    expect(str(q.read(5))).toBe('efghi');
  });

  it('read and peek within one chunk are zero-copy views of the pushed chunk', () => {
    const first = b('0123456789');
    const second = b('abcdef');
    const q = new ByteQueue();
    q.push(first);
    q.push(second);

    const p = q.peek(4);
    expect(str(p)).toBe('0123');
    expect(sharesMemory(p, first)).toBe(true);

    q.skip(2);
    const r = q.read(5); // "23456", inside the first chunk
    expect(str(r)).toBe('23456');
    expect(sharesMemory(r, first)).toBe(true);
    // Proof of sharing: the view sees a change to the pushed chunk.
    first[2] = 0x58; // 'X'
    expect(str(r)).toBe('X3456');

    const rest = q.read(3); // "789": the rest of the first chunk, still a view
    expect(sharesMemory(rest, first)).toBe(true);
    const inSecond = q.read(6);
    expect(str(inSecond)).toBe('abcdef');
    expect(sharesMemory(inSecond, second)).toBe(true);
  });

  it('a read across chunks is a copy that owns its memory', () => {
    const first = b('abc');
    const second = b('def');
    const q = new ByteQueue();
    q.push(first);
    q.push(second);
    const r = q.read(5);
    expect(str(r)).toBe('abcde');
    expect(sharesMemory(r, first)).toBe(false);
    expect(sharesMemory(r, second)).toBe(false);
    first[0] = 0x5a;
    expect(str(r)).toBe('abcde');
    expect(str(q.read(1))).toBe('f');
  });

  it('skip drops up to n bytes across chunks and returns how many', () => {
    const q = threeChunks();
    expect(q.skip(0)).toBe(0);
    expect(q.skip(-1)).toBe(0);
    expect(q.skip(4)).toBe(4);
    expect(q.size).toBe(5);
    expect(str(q.peek(1))).toBe('e');
    expect(q.skip(3)).toBe(3); // ends exactly on a chunk boundary
    expect(str(q.peek(2))).toBe('hi');
    expect(q.skip(10)).toBe(2);
    expect(q.size).toBe(0);
    expect(q.skip(1)).toBe(0);
  });

  it('indexOf finds a byte across chunks, relative to the unread start', () => {
    const q = threeChunks();
    expect(q.indexOf(0x61)).toBe(0); // 'a'
    expect(q.indexOf(0x64)).toBe(3); // 'd', first byte of chunk 2
    expect(q.indexOf(0x69)).toBe(8); // 'i', last byte
    expect(q.indexOf(0x7a)).toBe(-1);
    q.skip(2); // "c" | "defg" | "hi"
    expect(q.indexOf(0x63)).toBe(0);
    expect(q.indexOf(0x61)).toBe(-1); // consumed bytes are not found
    expect(q.indexOf(0x68)).toBe(5);
  });

  it('indexOf respects the limit (only the first `limit` bytes are searched)', () => {
    const q = threeChunks();
    expect(q.indexOf(0x64, 3)).toBe(-1); // 'd' is at 3, outside the first 3 bytes
    expect(q.indexOf(0x64, 4)).toBe(3);
    expect(q.indexOf(0x68, 7)).toBe(-1); // 'h' at 7
    expect(q.indexOf(0x68, 8)).toBe(7);
    expect(q.indexOf(0x61, 0)).toBe(-1);
    expect(q.indexOf(0x69, 1000)).toBe(8);

    // A byte that occurs in a chunk only beyond the limit, with the head offset inside it.
    const r = new ByteQueue();
    r.push(b('xxxxNxxN'));
    r.skip(2); // "xxNxxN"
    expect(r.indexOf(0x4e, 2)).toBe(-1);
    expect(r.indexOf(0x4e, 3)).toBe(2);
  });

  it('unshift puts bytes back in front, also after a partial read', () => {
    const q = threeChunks();
    expect(str(q.read(2))).toBe('ab');
    q.unshift(b('b'));
    q.unshift(b('XY'));
    q.unshift(Buffer.alloc(0));
    expect(q.size).toBe(10);
    expect(q.indexOf(0x63)).toBe(3);
    expect(str(q.read(4))).toBe('XYbc');
    expect(str(q.read(100))).toBe('defghi');

    const e = new ByteQueue();
    e.unshift(b('z'));
    expect(e.size).toBe(1);
    expect(str(e.read(1))).toBe('z');
  });

  it('takeAll returns the chunks in order without copying, trimmed to the unread part', () => {
    const first = b('abc');
    const second = b('defg');
    const q = new ByteQueue();
    q.push(first);
    q.push(second);
    q.skip(1);
    const chunks = q.takeAll();
    expect(chunks.map(str)).toEqual(['bc', 'defg']);
    expect(sharesMemory(chunks[0], first)).toBe(true);
    expect(chunks[1]).toBe(second);
    expect(q.size).toBe(0);
    expect(q.read(10).length).toBe(0);
    q.push(b('new'));
    expect(str(q.read(10))).toBe('new');
  });

  it('take(max) removes the first max bytes as views of the chunks, splitting the one at the limit', () => {
    const first = b('abc');
    const second = b('defgh');
    const q = new ByteQueue();
    q.push(first);
    q.push(second);
    q.skip(1);
    const part = q.take(4); // 'bc' + 'de'
    expect(part.map(str)).toEqual(['bc', 'de']);
    expect(sharesMemory(part[0], first)).toBe(true);
    expect(sharesMemory(part[1], second)).toBe(true);
    expect(q.size).toBe(3);
    expect(q.take(2).map(str)).toEqual(['fg']);
    expect(q.take(0)).toEqual([]);
    expect(q.take(100).map(str)).toEqual(['h']);
    expect(q.size).toBe(0);
    q.push(b('xy'));
    expect(str(q.read(10))).toBe('xy');
  });

  it('clear empties the queue', () => {
    const q = threeChunks();
    q.read(1);
    q.clear();
    expect(q.size).toBe(0);
    expect(q.peek(10).length).toBe(0);
    q.push(b('x'));
    expect(str(q.read(10))).toBe('x');
  });

  it('moveTo moves up to max bytes to the back of another queue, splitting chunks', () => {
    const q = threeChunks();
    const t = new ByteQueue();
    t.push(b('>'));
    expect(q.moveTo(t, 5)).toBe(5); // "abc" + "de"
    expect(q.size).toBe(4);
    expect(t.size).toBe(6);
    expect(str(q.peek(10))).toBe('fghi');
    expect(q.moveTo(t, 0)).toBe(0);
    expect(q.moveTo(t, 100)).toBe(4);
    expect(q.size).toBe(0);
    expect(str(t.read(100))).toBe('>abcdefghi');
    expect(q.moveTo(t, 10)).toBe(0);
  });

  it('moveTo does not copy: the target holds views of the source chunks', () => {
    const chunk = b('0123456789');
    const q = new ByteQueue();
    q.push(chunk);
    q.skip(1);
    const t = new ByteQueue();
    q.moveTo(t, 4);
    const [moved] = t.takeAll();
    expect(str(moved)).toBe('1234');
    expect(sharesMemory(moved, chunk)).toBe(true);
    expect(str(q.read(10))).toBe('56789');
  });

  it('a long queue of small chunks drains in order through take, read, moveTo and unshift', () => {
    // Thousands of chunks: the front of the chunk list is dropped in steps (not per chunk),
    // also while more chunks are pushed and some are put back.
    const q = new ByteQueue();
    const chunkOf = (i: number): Buffer => b(`<${i}>`);
    let expected = '';
    for (let i = 0; i < 5000; i++) {
      q.push(chunkOf(i));
      expected += `<${i}>`;
    }
    let got = '';
    got += q.take(3000).map(str).join('');
    got += str(q.read(7));
    for (let i = 5000; i < 6000; i++) {
      q.push(chunkOf(i));
      expected += `<${i}>`;
    }
    const back = q.read(5);
    q.unshift(back);
    const t = new ByteQueue();
    expect(q.moveTo(t, 4000)).toBe(4000);
    got += t.takeAll().map(str).join('');
    expect(q.indexOf(0x3c)).toBe(str(q.peek(q.size)).indexOf('<'));
    got += q
      .take(q.size - 10)
      .map(str)
      .join('');
    got += str(q.read(100));
    expect(got).toBe(expected);
    expect(q.size).toBe(0);
    q.push(b('again'));
    expect(q.takeAll().map(str)).toEqual(['again']);
  });

  it('randomized differential test against a Buffer.concat model (fixed seed)', () => {
    // mulberry32: a small deterministic PRNG, so a failure is reproducible.
    let seed = 0x5eed1234;
    const rand = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const int = (n: number): number => Math.floor(rand() * n);
    const randomBytes = (n: number): Buffer => {
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i++) out[i] = int(8); // few distinct values, so indexOf hits
      return out;
    };

    const q = new ByteQueue();
    let model = Buffer.alloc(0);
    const other = new ByteQueue();
    let otherModel = Buffer.alloc(0);
    const log: string[] = [];

    for (let step = 0; step < 5000; step++) {
      const op = int(9);
      switch (op) {
        case 0:
        case 1: {
          const chunk = randomBytes(int(40));
          log.push(`push(${chunk.length})`);
          // The queue keeps the chunk by reference: the model gets its own copy.
          model = Buffer.concat([model, Buffer.from(chunk)]);
          q.push(chunk);
          break;
        }
        case 2: {
          const n = int(60) - 5;
          log.push(`read(${n})`);
          const k = Math.min(Math.max(0, n), model.length);
          expect(q.read(n)).toEqual(model.subarray(0, k));
          model = model.subarray(k);
          break;
        }
        case 3: {
          const n = int(60);
          log.push(`peek(${n})`);
          expect(q.peek(n)).toEqual(model.subarray(0, Math.min(n, model.length)));
          break;
        }
        case 4: {
          const n = int(50);
          log.push(`skip(${n})`);
          const k = Math.min(n, model.length);
          expect(q.skip(n)).toBe(k);
          model = model.subarray(k);
          break;
        }
        case 5: {
          const byte = int(9);
          const limit = rand() < 0.5 ? undefined : int(80);
          log.push(`indexOf(${byte}, ${limit})`);
          const end = limit === undefined ? model.length : Math.min(limit, model.length);
          expect(q.indexOf(byte, limit)).toBe(model.subarray(0, end).indexOf(byte));
          break;
        }
        case 6: {
          const chunk = randomBytes(int(5));
          log.push(`unshift(${chunk.length})`);
          model = Buffer.concat([Buffer.from(chunk), model]);
          q.unshift(chunk);
          break;
        }
        case 7: {
          const n = int(50);
          log.push(`moveTo(${n})`);
          const k = Math.min(n, model.length);
          expect(q.moveTo(other, n)).toBe(k);
          otherModel = Buffer.concat([otherModel, model.subarray(0, k)]);
          model = model.subarray(k);
          expect(other.size).toBe(otherModel.length);
          if (rand() < 0.2) {
            expect(Buffer.concat(other.takeAll())).toEqual(otherModel);
            otherModel = Buffer.alloc(0);
          }
          break;
        }
        default: {
          if (rand() < 0.1) {
            log.push('takeAll');
            expect(Buffer.concat(q.takeAll())).toEqual(model);
            model = Buffer.alloc(0);
          }
          break;
        }
      }
      if (q.size !== model.length) {
        throw new Error(`size ${q.size} != ${model.length} after: ${log.slice(-10).join(', ')}`);
      }
    }
    expect(Buffer.concat(q.takeAll())).toEqual(model);
  });
});
