/**
 * Interop, Nest calls Qt: ClientQt (and a Nest application that injects it) against real
 * Qt programs that implement docs/protocol.md, examples/qt-server/server.py (PyQt5, JSON)
 * and examples/qt-server/server.cpp (Qt 5 C++, JSON and CBOR, compiled here once), each
 * over TCP on 127.0.0.1 and over a local socket in a temporary directory.
 *
 * Each server runs as a child process, prints {"event":"ready",...} once listening and
 * {"event":"cancel","id":...} for every cancel frame it receives. A server whose toolkit is
 * missing (PyQt5 for /usr/bin/python3; qtbase5-dev, pkg-config, g++) is skipped with the
 * reason printed.
 */
import 'reflect-metadata';

import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Inject, Injectable, Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientsModule, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, take, tap, toArray } from 'rxjs';

import {
  ClientQt,
  QtConnectionError,
  QtTransportModule,
  type CodecName,
  type QtTransportOptions,
} from '../../lib/index.js';
import { startChild, type ChildRun } from '../helpers/child-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const exampleDir = path.resolve(here, '../../examples/qt-server');
const PYTHON = '/usr/bin/python3';
const NO_HANDLER = 'There is no matching message handler defined in the remote service.';

type Transport = 'tcp' | 'local';

interface QtServerProgram {
  id: string;
  label: string;
  /** Why it cannot run here, or null. */
  missing: string | null;
  codecs: CodecName[];
  /** Builds the program if needed (once); returns the command line without its arguments. */
  prepare(workDir: string): Promise<[string, ...string[]]>;
}

function succeeds(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 30000 });
  return result.status === 0;
}

const python: QtServerProgram = {
  id: 'py',
  label: 'PyQt5 server (server.py)',
  missing: succeeds(PYTHON, ['-c', 'import PyQt5.QtNetwork'])
    ? null
    : `${PYTHON} cannot import PyQt5.QtNetwork (Debian: apt-get install python3-pyqt5)`,
  codecs: ['json'],
  prepare: () => Promise.resolve([PYTHON, path.join(exampleDir, 'server.py')]),
};

const cpp: QtServerProgram = {
  id: 'cpp',
  label: 'Qt 5 C++ server (server.cpp)',
  missing: !succeeds('g++', ['--version'])
    ? 'g++ is not installed'
    : !succeeds('pkg-config', ['--exists', 'Qt5Network'])
      ? 'pkg-config finds no Qt5Network (Debian: apt-get install qtbase5-dev pkg-config)'
      : null,
  codecs: ['json', 'cbor'],
  async prepare(workDir) {
    const flags = spawnSync('pkg-config', ['--cflags', '--libs', 'Qt5Network'], {
      encoding: 'utf8',
    })
      .stdout.trim()
      .split(/\s+/);
    const binary = path.join(workDir, 'qt-server');
    await promisify(execFile)(
      'g++',
      ['-std=c++17', '-fPIC', path.join(exampleDir, 'server.cpp'), ...flags, '-o', binary],
      { timeout: 170000 },
    );
    return [binary];
  },
};

/** Every server process started here, stopped in afterAll whatever happened. */
const children: ChildRun[] = [];
let workDir = '';

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-server-'));
});

afterAll(async () => {
  await Promise.all(children.map((child) => child.stop()));
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

interface RunningServer {
  run: ChildRun;
  target: QtTransportOptions;
}

/** Starts a Qt server on `where`: a port ('0' = any) or a socket path; waits until it listens. */
async function startQtServer(
  command: [string, ...string[]],
  transport: Transport,
  where: string,
): Promise<RunningServer> {
  const [program, ...args] = command;
  const run = startChild(program, [...args, transport, where]);
  children.push(run);
  const ready = JSON.parse(await run.nextLine(15000)) as {
    event: string;
    port?: number;
    name?: string;
  };
  expect(ready.event).toBe('ready');
  const target: QtTransportOptions =
    transport === 'tcp'
      ? { transport, host: '127.0.0.1', port: ready.port }
      : { transport, name: ready.name };
  return { run, target };
}

/** Settles with the error a request fails with; fails the test if it succeeds. */
async function rejection(result: Promise<unknown>): Promise<unknown> {
  return result.then(
    (value) => {
      throw new Error(`expected an error, got ${JSON.stringify(value)}`);
    },
    (err: unknown) => err,
  );
}

// ------------------------------------------------------------ a Nest service that calls Qt

const QT_PROGRAM = 'QT_PROGRAM';

@Injectable()
class Calculator {
  constructor(@Inject(QT_PROGRAM) private readonly qt: ClientProxy) {}

  add(...values: number[]): Promise<number> {
    return lastValueFrom(this.qt.send<number>('sum', values));
  }

  countTo(n: number): Promise<number[]> {
    return lastValueFrom(this.qt.send<number>('count', { n, ms: 1 }).pipe(toArray()));
  }

  client(): ClientProxy {
    return this.qt;
  }
}

@Module({})
class CalculatorModule {
  static with(clients: DynamicModule): DynamicModule {
    return { module: CalculatorModule, imports: [clients], providers: [Calculator] };
  }
}

const nestModules = {
  QtTransportModule: (options: QtTransportOptions) =>
    QtTransportModule.forRoot({ clients: [{ name: QT_PROGRAM, options }] }),
  ClientsModule: (options: QtTransportOptions) =>
    ClientsModule.register([{ name: QT_PROGRAM, customClass: ClientQt, options }]),
};

// ------------------------------------------------------------------------------ the tests

describe.each([python, cpp])('ClientQt calls a real Qt program: $label', (program) => {
  if (program.missing) {
    console.log(`Skipping the ${program.label} interop tests: ${program.missing}`);
    describe.skip('(unavailable)', () => {
      it('needs the Qt toolkit', () => undefined);
    });
    return;
  }

  let command: [string, ...string[]];
  beforeAll(async () => {
    command = await program.prepare(workDir);
  }, 180000);

  describe.each<Transport>(['tcp', 'local'])('over %s', (transport) => {
    const address = (socketName: string): string =>
      transport === 'tcp' ? '0' : path.join(workDir, socketName);
    let server: RunningServer;
    beforeAll(async () => {
      server = await startQtServer(command, transport, address(`${program.id}.sock`));
    });
    afterAll(async () => {
      await server?.run.stop();
    });

    describe.each(program.codecs)('with %s payloads', (codec) => {
      let client: ClientQt;
      let disconnects = 0;
      const options = (): QtTransportOptions => ({
        ...server.target,
        codec,
        requestTimeout: 10000,
        reconnect: false,
      });

      beforeAll(async () => {
        client = new ClientQt(options());
        client.on('disconnect', () => disconnects++);
        await client.connect();
      });
      afterAll(async () => {
        await client?.close();
      });
      afterEach(() => {
        // Nothing here may break the connection.
        expect(disconnects).toBe(0);
      });

      it('request and reply', async () => {
        await expect(lastValueFrom(client.send<number>('sum', [1, 2]))).resolves.toBe(3);
        await expect(lastValueFrom(client.send<number>('sum', [1.5, 2, -10]))).resolves.toBe(-6.5);
      });

      it('values of every kind make the round trip (bytes as bytes in CBOR)', async () => {
        const blob = Buffer.from([0, 1, 2, 0x7b, 0xa0, 0xff]);
        const data = {
          blob,
          text: 'grüße, 你好, 🙂',
          int: -123456789,
          real: 0.25,
          nil: null,
          flags: [true, false],
          nested: { deeper: { list: [1, 'two', { three: 3 }] } },
        };
        const echoed = await lastValueFrom(client.send<typeof data>('echo', data));
        // JSON has no byte strings: a Buffer travels as Node's {type, data} object.
        expect(echoed).toEqual({ ...data, blob: codec === 'cbor' ? blob : blob.toJSON() });
        if (codec === 'cbor') expect(Buffer.isBuffer(echoed.blob)).toBe(true);
      });

      it('a 3 MiB payload arrives in many pieces and is reassembled both ways', async () => {
        const big = 'Qt'.repeat(1.5 * 1024 * 1024);
        const echoed = await lastValueFrom(client.send<string>('echo', big));
        expect(echoed.length).toBe(big.length);
        expect(echoed === big).toBe(true);
      });

      it('a stream: every value in order, isDisposed on the last one', async () => {
        const values = await lastValueFrom(
          client.send<number>('count', { n: 5, ms: 2 }).pipe(toArray()),
        );
        expect(values).toEqual([1, 2, 3, 4, 5]);
      });

      it('a stream without values: one {id, isDisposed} frame completes it', async () => {
        const values = await lastValueFrom(client.send('count', { n: 0 }).pipe(toArray()));
        expect(values).toEqual([]);
      });

      it("an error reply rejects with the server's err object", async () => {
        const err = await rejection(
          lastValueFrom(client.send('fail', { message: `nope over ${transport}/${codec}` })),
        );
        expect(err).toEqual({ status: 'error', message: `nope over ${transport}/${codec}` });
      });

      it('an unknown pattern rejects with the "no matching handler" text', async () => {
        const err = await rejection(lastValueFrom(client.send('no-such-pattern', {})));
        expect(err).toBe(NO_HANDLER);
      });

      it('an event gets no reply; a later request sees its effect', async () => {
        const note = { text: `hello from ${transport}/${codec}`, at: Date.now() };
        await lastValueFrom(client.emit('note', note), { defaultValue: undefined });
        // One connection, frames in order: the server has stored the note before it answers.
        const notes = await lastValueFrom(client.send<unknown[]>('notes', {}));
        expect(notes).toContainEqual(note);
      });

      it('events emitted right before close() still arrive', async () => {
        const once = new ClientQt(options());
        await once.connect();
        const tag = `${transport}/${codec}/${Date.now()}`;
        const notes = [1, 2, 3].map((i) => ({ text: `before close ${i} ${tag}`, at: Date.now() }));
        // close() is called at once, without waiting for the emits.
        const emitted = notes.map((note) =>
          lastValueFrom(once.emit('note', note), { defaultValue: undefined }),
        );
        await once.close();
        await Promise.all(emitted);
        // They came on another connection: nothing orders them before this client's
        // request, so ask until they are there (bounded).
        let stored: unknown[] = [];
        for (let i = 0; i < 100; i++) {
          stored = await lastValueFrom(client.send<unknown[]>('notes', {}));
          const texts = stored.map((s) => (s as { text?: unknown }).text);
          if (notes.every((n) => texts.includes(n.text))) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        for (const note of notes) expect(stored).toContainEqual(note);
      });

      it('concurrent requests and interleaved streams are matched by id', async () => {
        const sums = Array.from({ length: 25 }, (_, i) =>
          lastValueFrom(client.send<number>('sum', [i, 1000])),
        );
        const streams = [
          { n: 4, ms: 15 },
          { n: 7, ms: 4 },
          { n: 3, ms: 25 },
        ].map((d) => lastValueFrom(client.send<number>('count', d).pipe(toArray())));
        const failure = rejection(lastValueFrom(client.send('fail', { message: 'in the mix' })));
        expect(await Promise.all(sums)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1000));
        expect(await Promise.all(streams)).toEqual([
          [1, 2, 3, 4],
          [1, 2, 3, 4, 5, 6, 7],
          [1, 2, 3],
        ]);
        expect(await failure).toEqual({ status: 'error', message: 'in the mix' });
      });

      it('unsubscribing mid-stream sends a cancel; the connection stays up', async () => {
        const socket = client.unwrap();
        const firstThree = await firstValueFrom(
          client.send<number>('count', { n: 100000, ms: 5 }).pipe(take(3), toArray()),
        );
        expect(firstThree).toEqual([1, 2, 3]);
        const line = JSON.parse(await server.run.nextLine(5000)) as { event: string; id: unknown };
        expect(line.event).toBe('cancel');
        expect(typeof line.id).toBe('number');
        // Same connection, still serving.
        await expect(lastValueFrom(client.send<number>('sum', [20, 22]))).resolves.toBe(42);
        expect(client.unwrap()).toBe(socket);
      });

      it.each(Object.keys(nestModules) as Array<keyof typeof nestModules>)(
        'a Nest service calls it through a client from %s',
        async (moduleName) => {
          const app = await NestFactory.createApplicationContext(
            CalculatorModule.with(nestModules[moduleName](options())),
            { logger: false },
          );
          const calculator = app.get(Calculator);
          const injected = calculator.client();
          try {
            expect(injected).toBeInstanceOf(ClientQt);
            await expect(calculator.add(40, 2)).resolves.toBe(42);
            await expect(calculator.countTo(3)).resolves.toEqual([1, 2, 3]);
          } finally {
            await app.close();
          }
          // Closing the application closed its client.
          expect(() => injected.unwrap()).toThrow(/Not initialized/);
        },
      );
    });

    if (!program.codecs.includes('cbor')) {
      it('a CBOR request to this JSON-only program: it drops the connection, the request fails', async () => {
        const client = new ClientQt({
          ...server.target,
          codec: 'cbor',
          requestTimeout: 10000,
          reconnect: false,
        });
        try {
          const err = await rejection(lastValueFrom(client.send('sum', [1, 2])));
          expect(err).toBeInstanceOf(QtConnectionError);
        } finally {
          await client.close();
        }
        // The program goes on serving JSON clients.
        const other = new ClientQt({ ...server.target, requestTimeout: 10000 });
        try {
          await expect(lastValueFrom(other.send<number>('sum', [2, 2]))).resolves.toBe(4);
        } finally {
          await other.close();
        }
      });
    }

    it('the Qt program dies mid-stream: the request fails; after a restart the client reconnects', async () => {
      // A server of its own, at a fixed address it can be restarted on.
      let own = await startQtServer(command, transport, address(`${program.id}-restart.sock`));
      const client = new ClientQt({
        ...own.target,
        requestTimeout: 10000,
        reconnect: { retries: 20, initialDelay: 50, maxDelay: 500 },
      });
      const reconnects: number[] = [];
      client.on('reconnecting', (attempt: number) => reconnects.push(attempt));
      try {
        const values: number[] = [];
        const stream = lastValueFrom(
          client.send<number>('count', { n: 100000, ms: 5 }).pipe(
            tap((v) => {
              values.push(v);
              if (v === 3) void own.run.stop();
            }),
          ),
        );
        const err = await rejection(stream);
        expect(err).toBeInstanceOf(QtConnectionError);
        expect(values.slice(0, 3)).toEqual([1, 2, 3]);

        // The same port (Qt binds with SO_REUSEADDR) or the same socket path, left stale.
        const where = transport === 'tcp' ? String(own.target.port) : own.target.name!;
        own = await startQtServer(command, transport, where);
        await expect(lastValueFrom(client.send<number>('sum', [5, 6]))).resolves.toBe(11);
        expect(reconnects.length).toBeGreaterThan(0);
      } finally {
        await client.close();
        await own.run.stop();
      }
    });
  });
});
