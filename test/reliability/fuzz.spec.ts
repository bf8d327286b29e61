/**
 * Hostile input, in process: a seeded mutation fuzzer drives FrameDecoder, decodePayload,
 * classifyServerPacket and checkReplyPacket with 1,000,000 inputs (fuzz-engine.ts lists
 * the invariants checked on every input), then a table of hand-made hostile inputs.
 *
 * Why not a coverage-guided fuzzer: Jazzer.js (@jazzer.js/core, the one such fuzzer on npm)
 * needs its own Jest runner (`@jazzer.js/jest-runner`, replacing this project's ESM runner
 * and ts-jest setup), instruments through CommonJS require hooks or, for ESM, Node loader
 * hooks that Jest's vm modules bypass, fuzzes only with JAZZER_FUZZ=1 and one test at a
 * time (under plain `jest` it only replays a corpus), pulls cmake-js and a libFuzzer addon,
 * and is no longer maintained as open source. A seeded mutation fuzzer with structure-aware
 * seeds (every packet kind in JSON and CBOR) and a reference framer as its oracle needs none
 * of that and runs the same inputs on every machine.
 *
 * The seed is printed; FUZZ_SEED=<number or text> replays another run, FUZZ_COUNT changes
 * the number of inputs, and any input can be regenerated from (seed, index):
 *   node --import ./test/fixtures/register-ts.mjs test/reliability/fuzz-runner.ts \
 *        --seed <seed> --replay <index>
 *
 * The fuzzer runs in a child process (fuzz-runner.ts) so that a hang is caught: it reports
 * every 10,000 inputs, and a run that says nothing for 30 s is killed and reported as a
 * hang near the last input it reported. The whole run is bounded by a time budget.
 */
import { decodePayload, encodePayload } from '../../lib/transport/wire/codec.js';
import { FrameDecoder, frameHeader } from '../../lib/transport/wire/frame-decoder.js';
import { FrameTooLargeError, QtTransportError } from '../../lib/transport/wire/errors.js';
import { checkReplyPacket, classifyServerPacket } from '../../lib/transport/wire/packets.js';
import { nodeWithTsArgs, startChild } from '../helpers/child-process.js';

import {
  KNOWN_CODES,
  runFuzz,
  type ExampleGroup,
  type FrameDecoderLike,
  type FuzzFailure,
  type FuzzSummary,
} from './fuzz-engine.js';
import {
  cborHead,
  cborMap,
  cborText,
  deepCbor,
  deepJson,
  framed,
  resolveSeed,
} from './fuzz-lib.js';

import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const RUNNER = path.join(here, 'fuzz-runner.ts');

/** The default seed (the runner's DEFAULT_SEED); FUZZ_SEED overrides it. */
const DEFAULT_SEED = 0x5eed2026;
const seed = resolveSeed(process.env.FUZZ_SEED, DEFAULT_SEED);
const COUNT = Number(process.env.FUZZ_COUNT ?? 1_000_000);
/** The run stops here even if COUNT is not reached (about 35 s for 1M inputs on 2 cores). */
const TIME_BUDGET_MS = Number(process.env.FUZZ_TIME_BUDGET_MS ?? 100_000);
/** No progress line for this long means a hang. */
const STALL_MS = 30_000;
const MiB = 1024 * 1024;

function formatFailures(failures: FuzzFailure[]): string {
  return failures
    .slice(0, 10)
    .map(
      (f) =>
        `- input ${f.index} (${f.kind}, ${f.length} bytes, maxFrameSize ${f.maxFrameSize}): ` +
        `${f.invariant}\n  ${f.detail.split('\n').join('\n  ')}\n  hex: ${f.hex.slice(0, 600)}`,
    )
    .join('\n');
}

function formatGroups(groups: ExampleGroup[]): string {
  return groups
    .map(
      (g) =>
        `- ${g.count} x ${g.key}${g.detail ? `\n  ${g.detail}` : ''}\n` +
        `  shortest: input ${g.index}, ${g.length} bytes: ${g.hex.slice(0, 300)}`,
    )
    .join('\n');
}

describe(`the decoder under ${COUNT} fuzzed inputs (seed ${seed})`, () => {
  let summary: FuzzSummary | null = null;
  let runError: Error | null = null;

  beforeAll(
    async () => {
      console.log(
        `fuzz.spec: seed ${seed} (FUZZ_SEED=${seed} replays this run), ${COUNT} inputs, ` +
          `time budget ${TIME_BUDGET_MS} ms`,
      );
      const run = startChild(process.execPath, [
        '--expose-gc',
        ...nodeWithTsArgs(
          RUNNER,
          '--seed',
          String(seed),
          '--count',
          String(COUNT),
          '--time-budget',
          String(TIME_BUDGET_MS),
          '--progress-every',
          '10000',
        ),
      ]);
      let lastIndex = -1;
      try {
        for (;;) {
          let line: string;
          try {
            line = await run.nextLine(STALL_MS);
          } catch (err) {
            if (run.running()) {
              runError = new Error(
                `the fuzzer reported nothing for ${STALL_MS} ms after input ${lastIndex}: a hang ` +
                  `in inputs ${lastIndex + 1}..${lastIndex + 10000} (replay them with ` +
                  `fuzz-runner.ts --seed ${seed} --from ${lastIndex + 1} --count 10000)`,
              );
            } else {
              const exit = await run.exited;
              runError = new Error(
                `the fuzzer died (exit ${exit.code}, signal ${exit.signal}) after input ` +
                  `${lastIndex}: ${(err as Error).message}`,
              );
            }
            return;
          }
          const event = JSON.parse(line) as { event: string; index?: number };
          if (event.event === 'progress') lastIndex = event.index!;
          if (event.event === 'summary') {
            summary = event as unknown as FuzzSummary;
            return;
          }
        }
      } finally {
        await run.stop();
      }
    },
    TIME_BUDGET_MS + 2 * STALL_MS,
  );

  afterAll(() => {
    if (!summary) return;
    const s = summary;
    const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
    console.log(
      [
        `fuzz.spec: seed ${s.seed}: ${s.inputs} inputs, ${s.frames} frames in ${s.durationMs} ms ` +
          `(stopped by ${s.stoppedBy})`,
        `  outcome per input (what a server connection ends with): ${JSON.stringify(s.outcomes)}`,
        `  inputs per kind: ${JSON.stringify(s.kinds)}`,
        `  ms per kind: ${JSON.stringify(s.msByKind)}`,
        `  payloads: ${JSON.stringify(s.payloads)}`,
        `  as a server sees them: ${JSON.stringify(s.serverPackets)}`,
        `  as a client sees them: ${JSON.stringify(s.clientPackets)}`,
        `  invariant failures: ${s.failures.length}`,
        `  round trip: ${s.roundTrip.checked} accepted packets encoded again, ${s.roundTrip.failed} failed`,
        `  CBOR vs a strict reader of the documented subset: ${s.cbor.bothAccept} both accept ` +
          `(${s.cbor.valueMismatch.reduce((a, g) => a + g.count, 0)} with another value), ` +
          `${s.cbor.bothReject} both reject, ${s.cbor.counts.plainRejected ?? 0} only the strict ` +
          `reader accepts, ${s.cbor.counts.extensionAccepted ?? 0} only the decoder accepts:`,
        formatGroups(s.cbor.extensionAccepted).replace(/^/gm, '    '),
        `  heap after GC (inputs: used / rss): ${s.heap.map((h) => `${h.inputs}: ${mib(h.heapUsed)} / ${mib(h.rss)}`).join(', ')}`,
        `  slowest input: ${JSON.stringify(s.slowest)}`,
      ].join('\n'),
    );
  });

  it('runs to the end without a crash or a hang', () => {
    if (runError) throw runError;
    expect(summary).not.toBeNull();
    expect(summary!.seed).toBe(seed);
    if (summary!.stoppedBy === 'time') {
      console.warn(
        `fuzz.spec: the time budget (${TIME_BUDGET_MS} ms) stopped the run after ` +
          `${summary!.inputs} of ${COUNT} inputs (a slow or busy machine)`,
      );
    } else {
      expect(summary!.inputs).toBe(COUNT);
    }
  });

  it('holds every invariant on every input (typed errors only, exact framing, bounded buffering)', () => {
    expect(summary).not.toBeNull();
    if (summary!.failures.length > 0) {
      throw new Error(
        `${summary!.failures.length} invariant failures (seed ${seed}):\n` +
          formatFailures(summary!.failures),
      );
    }
  });

  it('reaches every outcome: valid packets and each typed error code', () => {
    expect(summary).not.toBeNull();
    const s = summary!;
    for (const code of KNOWN_CODES)
      expect({ code, n: s.outcomes[code] ?? 0 }).not.toEqual({ code, n: 0 });
    expect(s.outcomes.valid ?? 0).toBeGreaterThan(0);
    for (const kind of ['request', 'event', 'cancel'])
      expect(s.serverPackets[kind] ?? 0).toBeGreaterThan(0);
    expect(s.clientPackets.reply ?? 0).toBeGreaterThan(0);
    expect(s.payloads.json ?? 0).toBeGreaterThan(0);
    expect(s.payloads.cbor ?? 0).toBeGreaterThan(0);
  });

  it('keeps the heap bounded: live heap after GC grows by less than 200 MiB over the run', () => {
    expect(summary).not.toBeNull();
    const heap = summary!.heap;
    if (summary!.inputs >= 100_000) expect(heap.length).toBeGreaterThanOrEqual(2);
    const growth = heap[heap.length - 1]!.heapUsed - heap[0]!.heapUsed;
    expect(growth).toBeLessThan(200 * MiB);
  });

  it('accepts only packets it can encode back with their codec (else a handler that returns its input kills the server: see live-fuzz.spec.ts)', () => {
    expect(summary).not.toBeNull();
    const rt = summary!.roundTrip;
    expect(rt.checked).toBeGreaterThan(0);
    if (rt.failed > 0) {
      throw new Error(
        `${rt.failed} of ${rt.checked} accepted packets do not encode again with their codec; ` +
          `by error, the shortest input of each (a frame stream, in hex):\n` +
          formatGroups(rt.groups),
      );
    }
  });

  it('decodes a CBOR payload of the documented subset to the value a strict reader gives', () => {
    expect(summary).not.toBeNull();
    const { valueMismatch, plainRejected, bothAccept } = summary!.cbor;
    expect(bothAccept).toBeGreaterThan(0);
    if (valueMismatch.length + plainRejected.length > 0) {
      throw new Error(
        `CBOR payloads inside the documented subset (docs/protocol.md) that decodePayload ` +
          `alters or rejects:\n${formatGroups([...valueMismatch, ...plainRejected])}`,
      );
    }
  });
});

// ---------------------------------------------------------------- the oracle can fail

/** A FrameDecoder that checks maxFrameSize only once the whole body has arrived. */
class LateLimitDecoder implements FrameDecoderLike {
  private readonly inner = new FrameDecoder(0xfffffffe);
  constructor(private readonly max: number) {}
  push(chunk: Buffer): void {
    this.inner.push(chunk);
  }
  next(): Buffer | null {
    const frame = this.inner.next();
    if (frame && frame.length > this.max) throw new FrameTooLargeError(frame.length, this.max);
    return frame;
  }
  bufferedBytes(): number {
    return this.inner.bufferedBytes();
  }
  expectedBytes(): number {
    return this.inner.expectedBytes();
  }
  isMidFrame(): boolean {
    return this.inner.isMidFrame();
  }
}

/** A FrameDecoder that throws a plain TypeError on a frame starting with 0x00. */
class UntypedErrorDecoder extends LateLimitDecoder {
  private readonly real: FrameDecoder;
  constructor(max: number) {
    super(max);
    this.real = new FrameDecoder(max);
  }
  override push(chunk: Buffer): void {
    this.real.push(chunk);
  }
  override next(): Buffer | null {
    const frame = this.real.next();
    if (frame && frame[0] === 0x00) throw new TypeError('boom');
    return frame;
  }
  override bufferedBytes(): number {
    return this.real.bufferedBytes();
  }
  override expectedBytes(): number {
    return this.real.expectedBytes();
  }
  override isMidFrame(): boolean {
    return this.real.isMidFrame();
  }
}

describe('the fuzzer catches a broken decoder (its oracle can fail)', () => {
  it.each([
    [
      'a decoder that checks maxFrameSize late',
      (max: number) => new LateLimitDecoder(max),
      'as soon as its 4 bytes arrive',
    ],
    [
      'a decoder that throws an untyped error',
      (max: number) => new UntypedErrorDecoder(max),
      'only a typed frame error',
    ],
  ])('%s', (_name, makeDecoder, invariant) => {
    const s = runFuzz({ seed, count: 20_000, timeBudgetMs: 60_000, makeDecoder, maxFailures: 5 });
    expect(s.failures.length).toBeGreaterThan(0);
    expect(s.failures.map((f) => f.invariant).join('\n')).toContain(invariant);
  });
});

// ---------------------------------------------------------------- hand-made hostile inputs

/** Feeds `stream` to a decoder in `chunks` and decodes/classifies every frame; returns what happened. */
function drive(
  stream: Buffer,
  maxFrameSize: number,
  chunk = stream.length,
): { frames: number; error: QtTransportError | null; pushedAtError: number; buffered: number } {
  const decoder = new FrameDecoder(maxFrameSize);
  let frames = 0;
  let pushed = 0;
  try {
    while (pushed < stream.length) {
      const piece = stream.subarray(pushed, pushed + chunk);
      decoder.push(piece);
      pushed += piece.length;
      expect(decoder.bufferedBytes()).toBeLessThanOrEqual(maxFrameSize + 4 + chunk);
      for (let f = decoder.next(); f !== null; f = decoder.next()) {
        frames++;
        const { value } = decodePayload(f);
        classifyServerPacket(value);
      }
    }
  } catch (err) {
    if (!(err instanceof QtTransportError)) throw err;
    return { frames, error: err, pushedAtError: pushed, buffered: decoder.bufferedBytes() };
  }
  return { frames, error: null, pushedAtError: -1, buffered: decoder.bufferedBytes() };
}

const request = (data: Buffer): Buffer =>
  cborMap([
    ['id', cborHead(0, 1)],
    ['pattern', cborText('echo')],
    ['data', data],
  ]);

describe('hand-made hostile inputs', () => {
  it.each([
    ['a null frame (0xFFFFFFFF)', frameHeader(0xffffffff), 'QT_NULL_FRAME'],
    ['an empty frame', frameHeader(0), 'QT_EMPTY_FRAME'],
    ['a header one byte over maxFrameSize', frameHeader(MiB + 1), 'QT_FRAME_TOO_LARGE'],
    ['a header of 0xFFFFFFFE', frameHeader(0xfffffffe), 'QT_FRAME_TOO_LARGE'],
  ])(
    '%s is rejected on its 4th byte, fed one byte at a time, with nothing buffered',
    (_n, header, code) => {
      const stream = Buffer.concat([header, Buffer.alloc(64, 0x7b)]);
      const r = drive(stream, MiB, 1);
      expect(r.error?.code).toBe(code);
      expect(r.pushedAtError).toBe(4);
      expect(r.buffered).toBe(0);
    },
  );

  it('a header of exactly maxFrameSize is accepted and waits for its body', () => {
    const decoder = new FrameDecoder(MiB);
    decoder.push(frameHeader(MiB));
    expect(decoder.next()).toBeNull();
    expect(decoder.expectedBytes()).toBe(MiB);
    expect(decoder.bufferedBytes()).toBe(0);
  });

  it.each([
    ['a byte string claiming 2^63 bytes', request(cborHead(2, 2n ** 63n, 8))],
    ['a byte string claiming 2^64-1 bytes', request(cborHead(2, 2n ** 64n - 1n, 8))],
    ['a text string claiming 2^63 bytes', request(cborHead(3, 2n ** 63n, 8))],
    ['an array claiming 2^32-1 items', request(cborHead(4, 0xffffffff, 4))],
    ['an array claiming 2^24 items', request(cborHead(4, 1 << 24, 8))],
    ['a map claiming 2^32-1 pairs', request(cborHead(5, 0xffffffff, 4))],
    ['a top-level map claiming 2^64-1 pairs', cborHead(5, 2n ** 64n - 1n, 8)],
    ['an indefinite byte string', request(Buffer.from('5f4101ff', 'hex'))],
    ['an unterminated indefinite map', Buffer.from('bf6161', 'hex')],
    ['a map with bytes after it', Buffer.from('a1616101ff', 'hex')],
    ['a map whose key is a map', Buffer.from('a1a0a0', 'hex')],
    ['an invalid RegExp in tag 27', request(Buffer.from('d81b826652656745787061' + '28', 'hex'))],
    ['a Float64Array of 9 bytes', request(Buffer.from('d85649000000000000000000', 'hex'))],
    ['an unterminated JSON object', Buffer.from('{"id":1,"pattern":"x"', 'utf8')],
    ['JSON with a byte-order mark', Buffer.from('\ufeff{"id":1,"pattern":"x"}', 'utf8')],
    ['JSON with leading whitespace', Buffer.from(' {"id":1,"pattern":"x"}', 'utf8')],
    ['an array at the top', Buffer.from('[1,2]', 'utf8')],
  ])('%s: InvalidPayloadError, quickly and without a large allocation', (_name, payload) => {
    const before = process.memoryUsage().heapUsed;
    const r = drive(framed(payload), 4 * MiB);
    expect(r.error?.code).toBe('QT_INVALID_PAYLOAD');
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(64 * MiB);
  });

  it.each([
    ['unterminated deep JSON (100,000 levels)', deepJson(100_000, false, false)],
    ['unterminated deep CBOR (100,000 levels)', deepCbor(100_000, false, false)],
  ])(
    '%s: PacketTooComplexError at the 513th level, quickly and without a large allocation',
    (_name, payload) => {
      const before = process.memoryUsage().heapUsed;
      const r = drive(framed(payload), 4 * MiB);
      expect(r.error?.code).toBe('QT_PACKET_TOO_COMPLEX');
      expect(process.memoryUsage().heapUsed - before).toBeLessThan(64 * MiB);
    },
  );

  it.each([
    ['an id that is a map', '{"id":{},"pattern":"sum"}'],
    ['no pattern', '{"id":1,"data":2}'],
    ['a null pattern', '{"id":1,"pattern":null}'],
    ['a numeric pattern', '{"id":1,"pattern":7}'],
    ['metadata that is an array', '{"id":1,"pattern":"x","metadata":[]}'],
    ['a cancel without an id', '{"cancel":true}'],
    ['a reply sent to a server', '{"id":1,"response":2,"isDisposed":true}'],
    ['an id of 1e400 (Infinity)', '{"id":1e400,"pattern":"x"}'],
    ['a prototype-polluting packet', '{"__proto__":{"pattern":"x"},"id":1}'],
  ])('%s: InvalidPacketError', (_name, text) => {
    const r = drive(framed(Buffer.from(text, 'utf8')), MiB);
    expect(r.error?.code).toBe('QT_INVALID_PACKET');
  });

  it('a CBOR __proto__ key does not reach the prototype', () => {
    const payload = cborMap([
      ['__proto__', cborMap([['pattern', cborText('polluted')]])],
      ['id', cborHead(0, 1)],
    ]);
    const { value } = decodePayload(payload);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(() => classifyServerPacket(value)).toThrow(QtTransportError);
  });

  it('invalid UTF-8 in JSON and CBOR text is read with U+FFFD, not thrown on', () => {
    const json = Buffer.concat([
      Buffer.from('{"id":1,"pattern":"a', 'utf8'),
      Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80, 0xff]),
      Buffer.from('"}', 'utf8'),
    ]);
    expect(classifyServerPacket(decodePayload(json).value).kind).toBe('request');
    const text = Buffer.from([0x61, 0xc3, 0x28, 0xff]);
    const cbor = cborMap([
      ['id', cborHead(0, 1)],
      ['pattern', Buffer.concat([cborHead(3, text.length), text])],
    ]);
    expect(classifyServerPacket(decodePayload(cbor).value).kind).toBe('request');
  });

  it('a reply is rejected by the server check and a request by the client check', () => {
    const reply = decodePayload(Buffer.from('{"id":1,"response":2}', 'utf8')).value;
    const req = decodePayload(Buffer.from('{"id":1,"pattern":"x"}', 'utf8')).value;
    expect(() => classifyServerPacket(reply)).toThrow(QtTransportError);
    expect(() => checkReplyPacket(req)).toThrow(QtTransportError);
  });

  // Qt writes a qint64 below -2^32 as a CBOR negative integer with an 8-byte argument (0x3b);
  // so does this package's own encoder. They must come back as the same number.
  it.each([-4294967297, -5_000_000_000, -(2 ** 40), -(2 ** 53) + 1])(
    'the negative 64-bit CBOR integer %d decodes to itself',
    (n) => {
      const payload = encodePayload('cbor', { id: 1, pattern: 'sum', data: [n] });
      expect(payload.includes(0x3b)).toBe(true);
      expect(decodePayload(payload).value).toEqual({ id: 1, pattern: 'sum', data: [n] });
    },
  );

  it('qint64 minimum (-2^63, CBOR 3b7fffffffffffffff) decodes to -9223372036854775808', () => {
    const payload = Buffer.concat([
      Buffer.from([0xa1]),
      cborText('n'),
      Buffer.from('3b7fffffffffffffff', 'hex'),
    ]);
    expect((decodePayload(payload).value as { n: number }).n).toBe(-(2 ** 63));
  });
});
