/**
 * FrameDecoder and frameHeader: the framing of Qt's `QDataStream << QByteArray` (a 32-bit
 * big-endian length, then the bytes), checked byte for byte against real Qt 5 (PyQt5).
 */
import { spawnSync } from 'node:child_process';

import {
  EmptyFrameError,
  FrameDecoder,
  FrameTooLargeError,
  NullFrameError,
  QtTransportError,
  frameHeader,
} from '../../../lib/transport/index.js';

/** A small deterministic PRNG (mulberry32), so "random" chunkings are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function frame(payload: Buffer): Buffer {
  return Buffer.concat([frameHeader(payload.length), payload]);
}

/** Pushes `chunks` one by one, collecting every frame `next()` yields after each push. */
function decodeChunks(decoder: FrameDecoder, chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let f = decoder.next(); f !== null; f = decoder.next()) out.push(Buffer.from(f));
  }
  return out;
}

/** Expects `fn` to throw an error of `type` and returns it. */
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

const PAYLOADS: Buffer[] = [
  Buffer.from('{"id":1,"pattern":"sum","data":[1,2,3]}'),
  Buffer.from([0xa1, 0x61, 0x61, 0x01]),
  Buffer.from('x'),
  Buffer.alloc(300, 0xab),
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
  Buffer.from('{"pattern":"note","data":"é – ünïcödé"}'),
];
const STREAM = Buffer.concat(PAYLOADS.map(frame));

describe('frameHeader', () => {
  it('is the 32-bit big-endian length, as QDataStream writes a QByteArray size', () => {
    expect(frameHeader(0x01020304)).toEqual(Buffer.from([1, 2, 3, 4]));
    expect(frameHeader(7)).toEqual(Buffer.from([0, 0, 0, 7]));
    expect(frameHeader(0)).toEqual(Buffer.from([0, 0, 0, 0]));
    expect(frameHeader(70000)).toEqual(Buffer.from([0, 1, 0x11, 0x70]));
    expect(frameHeader(0xfffffffe)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xfe]));
    expect(frameHeader(5).length).toBe(4);
  });
});

describe('FrameDecoder: splitting a stream into frames', () => {
  it('decodes several frames pushed as one chunk', () => {
    const decoder = new FrameDecoder(1024);
    expect(decodeChunks(decoder, [STREAM])).toEqual(PAYLOADS);
    expect(decoder.isMidFrame()).toBe(false);
    expect(decoder.bufferedBytes()).toBe(0);
  });

  it('decodes the same frames fed one byte at a time (every possible boundary)', () => {
    const decoder = new FrameDecoder(1024);
    const chunks = Array.from(STREAM, (b) => Buffer.from([b]));
    expect(decodeChunks(decoder, chunks)).toEqual(PAYLOADS);
    expect(decoder.isMidFrame()).toBe(false);
  });

  it('decodes the stream split into two chunks at every possible offset', () => {
    const wrong: number[] = [];
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const decoder = new FrameDecoder(1024);
      const got = decodeChunks(decoder, [STREAM.subarray(0, cut), STREAM.subarray(cut)]);
      const same = got.length === PAYLOADS.length && got.every((f, i) => f.equals(PAYLOADS[i]));
      if (!same || decoder.isMidFrame()) wrong.push(cut);
    }
    expect(wrong).toEqual([]);
  });

  it('decodes the stream in random-sized chunks (fixed seeds)', () => {
    for (const seed of [1, 2, 3, 42, 2024, 0xdecaf]) {
      const random = prng(seed);
      const chunks: Buffer[] = [];
      for (let at = 0; at < STREAM.length;) {
        const size = 1 + Math.floor(random() * 40);
        // Copies: each chunk has memory of its own, as a socket read has.
        chunks.push(Buffer.from(STREAM.subarray(at, at + size)));
        at += size;
      }
      const decoder = new FrameDecoder(1024);
      expect({ seed, got: decodeChunks(decoder, chunks) }).toEqual({ seed, got: PAYLOADS });
      expect(decoder.bufferedBytes()).toBe(0);
    }
  });

  it('returns null until a frame is complete, and the frame once it is', () => {
    const decoder = new FrameDecoder(1024);
    expect(decoder.next()).toBeNull();
    decoder.push(Buffer.from([0, 0, 0, 3, 0x61]));
    expect(decoder.next()).toBeNull();
    decoder.push(Buffer.from([0x62]));
    expect(decoder.next()).toBeNull();
    decoder.push(Buffer.from([0x63, 0, 0]));
    expect(decoder.next()).toEqual(Buffer.from('abc'));
    expect(decoder.next()).toBeNull();
  });

  it('accepts a frame of exactly maxFrameSize bytes', () => {
    const decoder = new FrameDecoder(16);
    decoder.push(frame(Buffer.alloc(16, 7)));
    expect(decoder.next()).toEqual(Buffer.alloc(16, 7));
  });
});

describe('FrameDecoder: zero copy', () => {
  it('returns a frame lying inside one chunk as a view of that chunk (same ArrayBuffer)', () => {
    const chunk = Buffer.alloc(STREAM.length);
    STREAM.copy(chunk);
    const decoder = new FrameDecoder(1024);
    decoder.push(chunk);
    let offset = 0;
    for (const payload of PAYLOADS) {
      const f = decoder.next()!;
      expect(f).toEqual(payload);
      expect(f.buffer).toBe(chunk.buffer);
      expect(f.byteOffset).toBe(chunk.byteOffset + offset + 4);
      offset += 4 + payload.length;
    }
  });

  it('returns a view when the header came in an earlier chunk and the body in one chunk', () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(Buffer.from([0, 0]));
    decoder.push(Buffer.from([0, 5]));
    const body = Buffer.alloc(5, 0x41);
    decoder.push(body);
    const f = decoder.next()!;
    expect(f.toString()).toBe('AAAAA');
    expect(f.buffer).toBe(body.buffer);
  });

  it('joins a frame that spans chunks into one Buffer with the right bytes', () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(Buffer.from([0, 0, 0, 6, 0x61, 0x62]));
    decoder.push(Buffer.from([0x63, 0x64]));
    decoder.push(Buffer.from([0x65, 0x66]));
    expect(decoder.next()!.toString()).toBe('abcdef');
  });
});

describe('FrameDecoder: bad headers are errors the moment their 4 bytes arrive', () => {
  it('0xFFFFFFFF (a null QByteArray) throws NullFrameError (QT_NULL_FRAME)', () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(Buffer.from([0xff, 0xff, 0xff]));
    expect(decoder.next()).toBeNull();
    decoder.push(Buffer.from([0xff]));
    const err = thrown(() => decoder.next(), NullFrameError);
    expect(err).toBeInstanceOf(QtTransportError);
    expect(err.code).toBe('QT_NULL_FRAME');
    expect(err.name).toBe('NullFrameError');
  });

  it('a length above maxFrameSize throws FrameTooLargeError with size and limit after only the header', () => {
    const decoder = new FrameDecoder(1000);
    decoder.push(frameHeader(1001));
    const err = thrown(() => decoder.next(), FrameTooLargeError);
    expect(err.code).toBe('QT_FRAME_TOO_LARGE');
    expect(err.size).toBe(1001);
    expect(err.limit).toBe(1000);
    expect(err.message).toContain('1001');
    expect(err.message).toContain('1000');
  });

  it('a 4 GiB - 2 header with a small limit is rejected without waiting for any body', () => {
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    decoder.push(Buffer.from([0xff, 0xff]));
    expect(decoder.next()).toBeNull();
    decoder.push(Buffer.from([0xff, 0xfe]));
    const err = thrown(() => decoder.next(), FrameTooLargeError);
    expect(err.size).toBe(0xfffffffe);
    expect(err.limit).toBe(64 * 1024 * 1024);
  });

  it('a length of 0 throws EmptyFrameError (QT_EMPTY_FRAME)', () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(Buffer.from([0, 0, 0, 0]));
    const err = thrown(() => decoder.next(), EmptyFrameError);
    expect(err.code).toBe('QT_EMPTY_FRAME');
  });

  it('a bad header after good frames: the good frames come first, then the error', () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(Buffer.concat([frame(Buffer.from('{}')), Buffer.from([0xff, 0xff, 0xff, 0xff])]));
    expect(decoder.next()!.toString()).toBe('{}');
    thrown(() => decoder.next(), NullFrameError);
  });
});

describe('FrameDecoder: isMidFrame, bufferedBytes, expectedBytes, reset', () => {
  it('reports the state of the frame being read', () => {
    const decoder = new FrameDecoder(1024);
    expect([decoder.isMidFrame(), decoder.bufferedBytes(), decoder.expectedBytes()]).toEqual([
      false,
      0,
      -1,
    ]);

    decoder.push(Buffer.from([0, 0]));
    expect(decoder.next()).toBeNull();
    expect([decoder.isMidFrame(), decoder.bufferedBytes(), decoder.expectedBytes()]).toEqual([
      true,
      2,
      -1,
    ]);

    decoder.push(Buffer.from([0, 10, 1, 2, 3]));
    expect(decoder.next()).toBeNull();
    expect([decoder.isMidFrame(), decoder.bufferedBytes(), decoder.expectedBytes()]).toEqual([
      true,
      3,
      10,
    ]);

    // The rest of the frame and 2 bytes of the next header.
    decoder.push(Buffer.from([4, 5, 6, 7, 8, 9, 10, 0, 0]));
    expect(decoder.next()).toEqual(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    expect(decoder.next()).toBeNull();
    expect([decoder.isMidFrame(), decoder.bufferedBytes(), decoder.expectedBytes()]).toEqual([
      true,
      2,
      -1,
    ]);

    decoder.push(Buffer.from([0, 1, 0x7b]));
    expect(decoder.next()).toEqual(Buffer.from('{'));
    expect([decoder.isMidFrame(), decoder.bufferedBytes(), decoder.expectedBytes()]).toEqual([
      false,
      0,
      -1,
    ]);
  });

  it('is mid-frame right after a complete header with no body yet', () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(frameHeader(5));
    expect(decoder.next()).toBeNull();
    expect(decoder.isMidFrame()).toBe(true);
    expect(decoder.bufferedBytes()).toBe(0);
    expect(decoder.expectedBytes()).toBe(5);
  });

  it('reset() drops everything buffered and starts again at a header', () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(Buffer.from([0, 0, 0, 9, 1, 2]));
    expect(decoder.next()).toBeNull();
    decoder.reset();
    expect([decoder.isMidFrame(), decoder.bufferedBytes(), decoder.expectedBytes()]).toEqual([
      false,
      0,
      -1,
    ]);
    decoder.push(frame(Buffer.from('ok')));
    expect(decoder.next()!.toString()).toBe('ok');
  });
});

// ------------------------------------------------------------------ real Qt (PyQt5)

const PYTHON = '/usr/bin/python3';

/** Why real-Qt tests cannot run here, or null when /usr/bin/python3 imports PyQt5. */
function pyQt5Missing(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import PyQt5.QtCore'], { timeout: 20000, encoding: 'utf8' });
  if (r.error) return `${PYTHON} cannot run: ${r.error.message}`;
  if (r.status !== 0) return `${PYTHON} cannot import PyQt5: ${r.stderr.trim().split('\n').pop()}`;
  return null;
}

/** Runs a PyQt5 script with `input` on stdin; returns its stdout parsed as JSON. */
function runQt<T>(script: string, input: unknown): T {
  const r = spawnSync(PYTHON, ['-c', script], {
    input: JSON.stringify(input),
    timeout: 20000,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(`PyQt5 script failed (${r.status ?? r.signal}): ${r.stderr}`);
  }
  return JSON.parse(r.stdout) as T;
}

/**
 * Input: a list of payloads in hex, or null for a null QByteArray(). Writes each with
 * `QDataStream << QByteArray` to its own QBuffer and prints [hex, ...]; also prints the
 * bytes of all of them written to one stream.
 */
const QT_WRITE = `
import sys, json
from PyQt5.QtCore import QByteArray, QBuffer, QDataStream, QIODevice
payloads = json.load(sys.stdin)
def ba(p):
    return QByteArray() if p is None else QByteArray(bytes.fromhex(p))
each = []
for p in payloads:
    buf = QBuffer(); buf.open(QIODevice.WriteOnly)
    out = QDataStream(buf)
    out << ba(p)
    assert out.status() == QDataStream.Ok
    each.append(bytes(buf.data()).hex())
buf = QBuffer(); buf.open(QIODevice.WriteOnly)
out = QDataStream(buf)
for p in payloads:
    out << ba(p)
print(json.dumps({"each": each, "all": bytes(buf.data()).hex(), "isNull": [ba(p).isNull() for p in payloads]}))
`;

/**
 * Input: hex of a byte stream. Reads QByteArrays with QDataStream >> until the end; prints
 * [{hex, isNull}] and the stream's final status.
 */
const QT_READ = `
import sys, json
from PyQt5.QtCore import QByteArray, QBuffer, QDataStream, QIODevice
data = QByteArray(bytes.fromhex(json.load(sys.stdin)))
buf = QBuffer(data); buf.open(QIODevice.ReadOnly)
inp = QDataStream(buf)
frames = []
while not inp.atEnd() and inp.status() == QDataStream.Ok:
    ba = QByteArray()
    inp >> ba
    frames.append({"hex": bytes(ba).hex(), "isNull": ba.isNull()})
print(json.dumps({"frames": frames, "status": int(inp.status())}))
`;

const qtMissing = pyQt5Missing();
if (qtMissing) {
  console.log(`frame-decoder.spec: the real-Qt (PyQt5) tests are skipped: ${qtMissing}`);
}
const withQt = qtMissing ? it.skip : it;

describe('FrameDecoder and frameHeader against real Qt 5 QDataStream (PyQt5)', () => {
  const big = Buffer.alloc(70000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  const payloads = [
    Buffer.from('{"id":1,"pattern":"sum","data":[1,2,3]}'),
    Buffer.from([0xa2, 0x62, 0x69, 0x64, 0x01, 0x61, 0x62, 0x43, 0, 1, 2]),
    Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    big,
  ];

  withQt(
    "frameHeader(n) + payload is exactly Qt's QDataStream << QByteArray; Qt's empty and null QByteArray are 0 and 0xFFFFFFFF",
    () => {
      const qt = runQt<{ each: string[]; all: string; isNull: boolean[] }>(QT_WRITE, [
        ...payloads.map((p) => p.toString('hex')),
        '',
        null,
      ]);
      expect(qt.isNull).toEqual([false, false, false, false, false, true]);
      payloads.forEach((p, i) => {
        expect(qt.each[i]).toBe(frame(p).toString('hex'));
      });
      expect(qt.each[4]).toBe(frameHeader(0).toString('hex'));
      expect(qt.each[4]).toBe('00000000');
      expect(qt.each[5]).toBe('ffffffff');
      expect(qt.all).toBe(qt.each.join(''));
    },
  );

  withQt("the decoder reads Qt's bytes: every frame, at every chunking", () => {
    const qt = runQt<{ each: string[]; all: string }>(
      QT_WRITE,
      payloads.map((p) => p.toString('hex')),
    );
    const qtBytes = Buffer.from(qt.all, 'hex');
    expect(decodeChunks(new FrameDecoder(1 << 20), [qtBytes])).toEqual(payloads);
    const random = prng(7);
    const chunks: Buffer[] = [];
    for (let at = 0; at < qtBytes.length;) {
      const size = 1 + Math.floor(random() * 5000);
      chunks.push(qtBytes.subarray(at, at + size));
      at += size;
    }
    expect(decodeChunks(new FrameDecoder(1 << 20), chunks)).toEqual(payloads);
    const small = qtBytes.subarray(0, Buffer.from(qt.each.slice(0, 3).join(''), 'hex').length);
    expect(
      decodeChunks(
        new FrameDecoder(1 << 20),
        Array.from(small, (b) => Buffer.from([b])),
      ),
    ).toEqual(payloads.slice(0, 3));
  });

  withQt("the decoder rejects Qt's empty QByteArray and null QByteArray()", () => {
    const qt = runQt<{ each: string[] }>(QT_WRITE, ['7b7d', '', null]);
    const empty = new FrameDecoder(1024);
    empty.push(Buffer.from(qt.each[0] + qt.each[1], 'hex'));
    expect(empty.next()!.toString()).toBe('{}');
    thrown(() => empty.next(), EmptyFrameError);
    const nul = new FrameDecoder(1024);
    nul.push(Buffer.from(qt.each[2], 'hex'));
    thrown(() => nul.next(), NullFrameError);
  });

  withQt("Qt's QDataStream >> QByteArray reads our framing back", () => {
    const ours = Buffer.concat(payloads.map(frame));
    const qt = runQt<{ frames: Array<{ hex: string; isNull: boolean }>; status: number }>(
      QT_READ,
      ours.toString('hex'),
    );
    expect(qt.status).toBe(0); // QDataStream::Ok
    expect(qt.frames).toEqual(payloads.map((p) => ({ hex: p.toString('hex'), isNull: false })));
  });
});
