/**
 * Hostile input against a live server: the Nest microservice of test/e2e/fixtures/server-app.ts
 * on ServerQt, in its own process, with maxFrameSize 1 MiB and incompleteFrameTimeout 500 ms.
 *
 * For a bounded time, 50 raw connections (node:net) send it random and mutated frame streams
 * (the generator of fuzz.spec.ts: every packet kind in JSON and CBOR, mutated bytes, corrupt
 * length headers, truncated and spliced frames, garbage, deep nesting, huge declared CBOR
 * lengths, CBOR tags, invalid UTF-8), cut at random chunk boundaries, and reconnect whenever
 * the server closes them or they give up waiting. Meanwhile 5 well-behaved ClientQt clients
 * (JSON and CBOR) keep sending requests and check every answer. Afterwards the server must
 * still run and answer, have counted the protocol errors with typed codes, and have kept its
 * RSS within a bound; no well-behaved request may have failed or gone missing.
 *
 * Then, one by one, the inputs that fuzzing found to kill the server (a request whose data
 * an echoing handler cannot encode back), each against a fresh server.
 *
 * The attackers rename the fixture's patterns `note` (its events are kept and printed as
 * JSON by the fixture's stdin "stats" command) and `big` (a handler that allocates the size
 * it is asked for) so that the fixture's own handlers do not decide the outcome.
 * LIVE_FUZZ_MS sets the fuzzing time per transport (default 8000); FUZZ_SEED the seed.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as net from 'node:net';

import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';

import { ClientQt } from '../../lib/index.js';

import {
  TRANSPORTS,
  rawConnect,
  sleep,
  startServer,
  waitEvent,
  within,
  type ServerApp,
  type TransportKind,
} from '../e2e/helpers.js';

import { generateInput } from './fuzz-engine.js';
import { Prng, cborHead, cborMap, cborText, deepJson, framed, resolveSeed } from './fuzz-lib.js';

const MiB = 1024 * 1024;
const seed = resolveSeed(process.env.FUZZ_SEED, 0x11fe2026);
const FUZZ_MS = Number(process.env.LIVE_FUZZ_MS ?? 8000);
const ATTACKERS = 50;
const CLIENTS = 5;
const IN_FLIGHT = 4;
/** RSS the server may gain over the fuzzing (50 peers may each hold a 1 MiB frame at once). */
const RSS_BOUND = 256 * MiB;
const SERVER_OPTIONS = { maxFrameSize: MiB, incompleteFrameTimeout: 500 };
const TYPED_CODES = [
  'QT_NULL_FRAME',
  'QT_EMPTY_FRAME',
  'QT_FRAME_TOO_LARGE',
  'QT_INVALID_PAYLOAD',
  'QT_PACKET_TOO_COMPLEX',
  'QT_INVALID_PACKET',
  // A fuzzed request may reuse the id of one still in flight on its connection.
  'QT_DUPLICATE_REQUEST_ID',
  'QT_INCOMPLETE_FRAME_TIMEOUT',
  'QT_SEND_BUFFER_OVERFLOW',
  'QT_WRITE_STALL',
];

interface Stats {
  protocolErrors: Array<{ code: string; message: string }>;
  connections: number;
  disconnects: number;
}

/** The server's resident set size, from /proc (Linux); null elsewhere. */
function rssOf(pid: number): number | null {
  const file = `/proc/${pid}/status`;
  if (!existsSync(file)) return null;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(file, 'utf8'));
  return m ? Number(m[1]) * 1024 : null;
}

/** The fixture's state, through its stdin (a reply through ClientQt could exceed 1 MiB). */
async function stdinStats(server: ServerApp): Promise<Stats> {
  server.command('stats');
  return (await waitEvent(server.run, 'stats', 10000)) as unknown as Stats;
}

/** Length-preserving renames of the fixture patterns the attackers must not reach. */
function defang(stream: Buffer): Buffer {
  let out: Buffer | null = null;
  for (const [from, to] of [
    ['note', 'noto'],
    ['big', 'bog'],
  ] as const) {
    const needle = Buffer.from(from);
    for (let i = (out ?? stream).indexOf(needle); i >= 0; i = out!.indexOf(needle, i + 1)) {
      out ??= Buffer.from(stream);
      out.write(to, i, 'latin1');
    }
  }
  return out ?? stream;
}

function tail(text: string, lines = 40): string {
  return text
    .split('\n')
    .filter((l) => !l.includes(' LOG ') && !l.includes(' WARN '))
    .slice(-lines)
    .join('\n');
}

// ---------------------------------------------------------------- the attackers

interface AttackTally {
  connections: number;
  inputs: number;
  bytes: number;
  closedByServer: number;
  gaveUp: number;
  connectErrors: number;
  repliesBytes: number;
}

let inputCounter = 0;

/** One raw connection after another until `deadline`, each sending one fuzzed input. */
async function attacker(
  server: ServerApp,
  id: number,
  deadline: number,
  tally: AttackTally,
): Promise<void> {
  const rng = new Prng(seed, 0xa77ac + id);
  // Stops early if the server dies: the test reports that.
  while (Date.now() < deadline && server.run.running()) {
    const socket =
      server.transport === 'tcp'
        ? net.createConnection({ host: '127.0.0.1', port: server.port })
        : net.createConnection({ path: server.fullServerName });
    let closed = false;
    const closedPromise = new Promise<void>((resolve) =>
      socket.once('close', () => {
        closed = true;
        resolve();
      }),
    );
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => (tally.repliesBytes += d.length));
    const connected = await Promise.race([
      new Promise<boolean>((resolve) => socket.once('connect', () => resolve(true))),
      closedPromise.then(() => false),
    ]);
    if (!connected) {
      tally.connectErrors++;
      await sleep(20);
      continue;
    }
    tally.connections++;
    // A few inputs per connection: the server closes it at the first protocol error.
    for (let n = rng.range(1, 4); n > 0 && !closed && Date.now() < deadline; n--) {
      const input = generateInput(seed, inputCounter++);
      const stream = defang(input.stream);
      tally.inputs++;
      let pos = 0;
      for (const size of input.chunks) {
        if (closed) break;
        socket.write(stream.subarray(pos, pos + size));
        pos += size;
        tally.bytes += size;
        if (rng.chance(0.2)) await sleep(rng.int(15));
      }
      if (rng.chance(0.3)) await sleep(rng.int(30));
    }
    // Wait for the server to close it (a protocol error, a stalled frame) or give up.
    const wait = rng.range(20, 900);
    await Promise.race([closedPromise, sleep(wait)]);
    if (closed) tally.closedByServer++;
    else tally.gaveUp++;
    socket.destroy();
    await closedPromise;
  }
}

// ---------------------------------------------------------------- the well-behaved clients

interface ClientTally {
  sent: number;
  answered: number;
  errors: string[];
  wrong: string[];
}

type Check = (answer: unknown) => string | null;

function sameJson(expected: unknown): Check {
  const text = JSON.stringify(expected);
  return (answer) =>
    JSON.stringify(answer) === text ? null : `expected ${text}, got ${JSON.stringify(answer)}`;
}

async function wellBehaved(
  server: ServerApp,
  client: ClientQt,
  id: number,
  codec: 'json' | 'cbor',
  deadline: number,
  tally: ClientTally,
): Promise<void> {
  const rng = new Prng(seed, 0xc11e + id);
  let n = 0;
  const one = async (): Promise<void> => {
    const tag = `c${id}-${n++}`;
    const values = Array.from({ length: rng.int(20) }, () => rng.range(-1000, 1000));
    const sum = values.reduce((a, b) => a + b, 0);
    let run: () => Promise<unknown>;
    let check: Check;
    switch (rng.int(5)) {
      case 0:
        run = () => firstValueFrom(client.send('sum', values));
        check = sameJson(sum);
        break;
      case 1:
        run = () => firstValueFrom(client.send({ cmd: 'sum' }, values));
        check = sameJson(sum);
        break;
      case 2:
        run = () => lastValueFrom(client.send('streaming', values).pipe(toArray()));
        check = sameJson(values);
        break;
      case 3: {
        const data: Record<string, unknown> = {
          tag,
          nested: { values, text: 'é ✓ \u{1f600}', flag: rng.chance(0.5), none: null },
        };
        if (codec === 'cbor') {
          const blob = Buffer.from(rng.bytes(rng.int(64)));
          data.blob = blob;
          run = () => firstValueFrom(client.send('echo', data));
          check = (answer) => {
            const a = answer as { tag?: unknown; blob?: unknown; nested?: unknown };
            if (a?.tag !== tag || !Buffer.isBuffer(a.blob) || !a.blob.equals(blob)) {
              return `echo ${tag}: got ${JSON.stringify(answer)}`;
            }
            return sameJson(data.nested)(a.nested);
          };
        } else {
          run = () => firstValueFrom(client.send('echo', data));
          check = sameJson(data);
        }
        break;
      }
      default:
        run = () => firstValueFrom(client.send('ping', {}));
        check = sameJson('pong');
    }
    tally.sent++;
    try {
      const answer = await run();
      tally.answered++;
      const problem = check(answer);
      if (problem !== null && tally.wrong.length < 20) tally.wrong.push(problem);
      else if (problem !== null) tally.wrong.push('…');
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      tally.errors.push(`${String(e.code ?? '')} ${String(e.message ?? err)}`.slice(0, 300));
    }
  };
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (Date.now() < deadline && server.run.running()) await one();
    }),
  );
}

// ---------------------------------------------------------------- the test

describe.each(TRANSPORTS)('live fuzzing over %s', (transport: TransportKind) => {
  let server: ServerApp | null = null;
  const clients: ClientQt[] = [];

  beforeAll(async () => {
    console.log(`live-fuzz.spec (${transport}): seed ${seed} (FUZZ_SEED overrides), ${FUZZ_MS} ms`);
    server = await startServer({ transport, options: SERVER_OPTIONS });
    for (let i = 0; i < CLIENTS; i++) {
      const c = new ClientQt({
        ...server.target,
        codec: i % 2 === 0 ? 'json' : 'cbor',
        reconnect: false,
        requestTimeout: 15000,
      });
      clients.push(c);
      await c.connect();
    }
  });

  afterAll(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server?.stop();
  });

  it(
    `${ATTACKERS} hostile connections for ${FUZZ_MS} ms: the server survives, counts typed errors, keeps its RSS bounded, and answers every well-behaved request correctly`,
    async () => {
      const s = server!;
      const pid = s.run.proc.pid!;
      // Warm up the server (JIT, pools) before the RSS baseline.
      for (const c of clients) expect(await firstValueFrom(c.send('sum', [1, 2, 3]))).toBe(6);
      const before = await stdinStats(s);
      const rssBefore = rssOf(pid);

      const deadline = Date.now() + FUZZ_MS;
      const attack: AttackTally = {
        connections: 0,
        inputs: 0,
        bytes: 0,
        closedByServer: 0,
        gaveUp: 0,
        connectErrors: 0,
        repliesBytes: 0,
      };
      const good: ClientTally[] = clients.map(() => ({
        sent: 0,
        answered: 0,
        errors: [],
        wrong: [],
      }));
      let rssPeak = rssBefore ?? 0;
      const sampler = setInterval(() => {
        const r = rssOf(pid);
        if (r !== null && r > rssPeak) rssPeak = r;
      }, 200);
      try {
        await Promise.all([
          ...Array.from({ length: ATTACKERS }, (_, i) => attacker(s, i, deadline, attack)),
          ...clients.map((c, i) =>
            wellBehaved(s, c, i, i % 2 === 0 ? 'json' : 'cbor', deadline, good[i]!),
          ),
        ]);
      } finally {
        clearInterval(sampler);
      }

      const alive = s.run.running();
      const sent = good.reduce((a, t) => a + t.sent, 0);
      const answered = good.reduce((a, t) => a + t.answered, 0);
      console.log(
        `live-fuzz.spec (${transport}): ${attack.inputs} fuzzed inputs (${(attack.bytes / MiB).toFixed(1)} MiB) ` +
          `on ${attack.connections} connections (${attack.closedByServer} closed by the server, ` +
          `${attack.gaveUp} given up, ${attack.connectErrors} failed to connect, ` +
          `${(attack.repliesBytes / MiB).toFixed(1)} MiB of replies); well-behaved: ${sent} sent, ` +
          `${answered} answered; server ${alive ? 'alive' : 'DEAD'}`,
      );
      if (!alive) {
        const exit = await s.run.exited;
        throw new Error(
          `the server died during fuzzing (exit ${exit.code}, signal ${exit.signal}); its stderr ` +
            `(Nest's LOG and WARN lines left out):\n${tail(s.run.stderr())}`,
        );
      }

      // Every well-behaved request was answered, correctly, without an error.
      const errors = good.flatMap((t) => t.errors);
      const wrong = good.flatMap((t) => t.wrong);
      expect({ errors: errors.slice(0, 10), errorCount: errors.length }).toEqual({
        errors: [],
        errorCount: 0,
      });
      expect(wrong).toEqual([]);
      expect(answered).toBe(sent);
      expect(sent).toBeGreaterThan(0);
      expect(attack.inputs).toBeGreaterThan(ATTACKERS);

      // It still answers, on an existing connection and on a new one.
      expect(await within(firstValueFrom(clients[0]!.send('sum', [40, 2])), 10000, 'sum')).toBe(42);
      const fresh = new ClientQt({ ...s.target, reconnect: false, requestTimeout: 10000 });
      try {
        expect(await within(firstValueFrom(fresh.send('sum', [20, 22])), 10000, 'sum')).toBe(42);
      } finally {
        await fresh.close();
      }

      // Protocol errors were counted, each with a typed code.
      const after = await stdinStats(s);
      const errorsSeen = after.protocolErrors.slice(before.protocolErrors.length);
      const byCode: Record<string, number> = {};
      for (const e of errorsSeen) byCode[e.code] = (byCode[e.code] ?? 0) + 1;
      console.log(
        `live-fuzz.spec (${transport}): protocol errors by code ${JSON.stringify(byCode)}; ` +
          `connections ${after.connections - before.connections}; RSS ` +
          (rssBefore === null
            ? 'not measured (no /proc on this system)'
            : `${(rssBefore / MiB).toFixed(0)} MiB before, peak ${(rssPeak / MiB).toFixed(0)} MiB, ` +
              `${((rssOf(pid) ?? 0) / MiB).toFixed(0)} MiB after`),
      );
      expect(errorsSeen.length).toBeGreaterThan(0);
      const untyped = errorsSeen.filter((e) => !TYPED_CODES.includes(e.code));
      expect(untyped.slice(0, 5)).toEqual([]);
      for (const code of ['QT_INVALID_PAYLOAD', 'QT_FRAME_TOO_LARGE'])
        expect(byCode[code] ?? 0).toBeGreaterThan(0);

      // RSS stayed within a bound (Linux only: elsewhere there is no /proc to read it from).
      if (rssBefore === null) {
        console.log(
          'live-fuzz.spec: the RSS bound is not checked: /proc/<pid>/status is not available',
        );
      } else {
        expect(rssPeak - rssBefore).toBeLessThan(RSS_BOUND);
        expect(rssOf(pid)! - rssBefore).toBeLessThan(RSS_BOUND);
      }
    },
    FUZZ_MS + 60000,
  );
});

// ---------------------------------------------------------------- the inputs that killed it

const echoRequest = (data: Buffer): Buffer =>
  cborMap([
    ['id', cborHead(0, 1)],
    ['pattern', cborText('echo')],
    ['data', data],
  ]);

describe('inputs found by fuzzing that an echoing handler cannot send back (over tcp)', () => {
  let server: ServerApp | null = null;

  beforeEach(async () => {
    server = await startServer({ transport: 'tcp', options: SERVER_OPTIONS });
  });

  afterEach(async () => {
    await server?.stop();
    server = null;
  });

  it.each([
    [
      'CBOR: a date with a NaN epoch (tag 1)',
      echoRequest(Buffer.from('c1fb7ff8000000000000', 'hex')),
    ],
    [
      'CBOR: a map that contains itself (tags 28/29)',
      echoRequest(Buffer.from('d81ca16161d81d00', 'hex')),
    ],
    ['CBOR: a 72-bit bignum (tag 2)', echoRequest(Buffer.from('c249010000000000000000', 'hex'))],
    ['JSON: data nested 100,000 levels deep (200 kB)', deepJson(100_000, false, true)],
  ])(
    '%s: the server answers with an error or drops the connection, and lives on',
    async (_name, payload) => {
      const s = server!;
      const peer = await rawConnect(s);
      try {
        peer.socket.write(framed(payload));
        // Either a reply for id 1, or the connection closed: whichever comes first.
        await within(
          Promise.race([peer.waitFrames(1, 5000).catch(() => undefined), peer.closed]),
          6000,
          'an answer or a close',
        );
        await sleep(200); // an uncaught exception would end the process by now
        if (!s.run.running()) {
          const exit = await s.run.exited;
          throw new Error(
            `one ${framed(payload).length}-byte frame killed the server (exit ${exit.code}); ` +
              `frame (hex, first 200 bytes): ${framed(payload).subarray(0, 200).toString('hex')}\n` +
              tail(s.run.stderr(), 25),
          );
        }
        const client = new ClientQt({ ...s.target, reconnect: false, requestTimeout: 10000 });
        try {
          expect(await firstValueFrom(client.send('sum', [40, 2]))).toBe(42);
        } finally {
          await client.close();
        }
      } finally {
        peer.destroy();
      }
    },
  );
});
