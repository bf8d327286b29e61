// The decoder fuzzer as a standalone process (fuzz.spec.ts runs it with a hang watchdog;
// a soak script can run it longer):
//
//   node --import ./test/fixtures/register-ts.mjs test/reliability/fuzz-runner.ts \
//        [--seed N|text] [--count N] [--from N] [--time-budget MS] [--progress-every N] [--stacks]
//   node --import ./test/fixtures/register-ts.mjs test/reliability/fuzz-runner.ts \
//        --seed N --replay INDEX        # prints input INDEX of that run and what it gives
//
// stdout carries one JSON object per line: { event: 'start', seed, count, from },
// { event: 'progress', inputs, index, elapsedMs, heapUsed, rss } every --progress-every
// inputs, then { event: 'summary', ...FuzzSummary } (fuzz-engine.ts). The exit code is 1
// when anything fuzz.spec.ts asserts on failed (an invariant, a round trip, a CBOR value
// of the documented subset), else 0. FUZZ_SEED / FUZZ_COUNT are the defaults of --seed /
// --count. Run it with --expose-gc (as fuzz.spec.ts does) for heap samples of live objects.
import { decodePayload } from '../../lib/transport/wire/codec.js';
import { FrameDecoder } from '../../lib/transport/wire/frame-decoder.js';
import { checkReplyPacket, classifyServerPacket } from '../../lib/transport/wire/packets.js';

import { canon, generateInput, runFuzz } from './fuzz-engine.js';
import { resolveSeed } from './fuzz-lib.js';

/** The seed used when neither --seed nor FUZZ_SEED is given. */
export const DEFAULT_SEED = 0x5eed2026;

const args = process.argv.slice(2);
const arg = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const print = (line: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(line) + '\n');
};

const seed = resolveSeed(arg('--seed') ?? process.env.FUZZ_SEED, DEFAULT_SEED);
const replay = arg('--replay');

if (replay !== undefined) {
  const input = generateInput(seed, Number(replay));
  const steps: string[] = [];
  const decoder = new FrameDecoder(input.maxFrameSize);
  let pushed = 0;
  try {
    for (const size of input.chunks) {
      decoder.push(input.stream.subarray(pushed, pushed + size));
      pushed += size;
      for (let f = decoder.next(); f !== null; f = decoder.next()) {
        let line = `frame of ${f.length} bytes: `;
        try {
          const { codec, value } = decodePayload(f);
          line += `${codec} ${canon(value).slice(0, 300)}`;
          for (const check of [classifyServerPacket, checkReplyPacket]) {
            try {
              check(value);
              line += ` | ${check.name} ok`;
            } catch (err) {
              line += ` | ${check.name}: ${(err as Error).message}`;
            }
          }
        } catch (err) {
          line += `${(err as Error).constructor.name}: ${(err as Error).message}`;
        }
        steps.push(line);
      }
    }
  } catch (err) {
    steps.push(`decoder: ${(err as Error).constructor.name}: ${(err as Error).message}`);
  }
  print({
    event: 'replay',
    seed,
    index: input.index,
    kind: input.kind,
    maxFrameSize: input.maxFrameSize,
    chunks: input.chunks,
    length: input.stream.length,
    hex: input.stream.toString('hex'),
    steps,
  });
  process.exit(0);
}

const count = Number(arg('--count') ?? process.env.FUZZ_COUNT ?? 1_000_000);
const from = Number(arg('--from') ?? 0);
const timeBudgetMs = Number(arg('--time-budget') ?? 600_000);
const progressEvery = Number(arg('--progress-every') ?? 100_000);

print({ event: 'start', seed, count, from, timeBudgetMs, pid: process.pid });
const summary = runFuzz({
  seed,
  count,
  from,
  timeBudgetMs,
  progressEvery,
  fastErrors: !args.includes('--stacks'),
  onProgress: (p) => print({ event: 'progress', ...p }),
});
print({ event: 'summary', ...summary });
const broken =
  summary.failures.length +
  summary.roundTrip.failed +
  summary.cbor.valueMismatch.length +
  summary.cbor.plainRejected.length;
process.exitCode = broken === 0 ? 0 : 1;
