/**
 * Real Qt programs as clients: the example clients of examples/qt-client — client.py on
 * PyQt5 (run with Debian's /usr/bin/python3) and client.cpp on Qt 5 C++ (compiled here) —
 * call the handlers of the e2e server app (ServerQt in its own process) over TCP on
 * 127.0.0.1 and over a local socket, with JSON and with CBOR frames: a request, a streamed
 * reply, an RpcException, and an event checked through a follow-up request.
 *
 * A client whose Qt is not installed is skipped with the reason printed.
 */
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { localServerPath } from '../../lib/index.js';
import {
  TRANSPORTS,
  freePort,
  startServer,
  type ServerApp,
  type TransportKind,
} from '../e2e/helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const EXAMPLES = path.resolve(here, '../../examples/qt-client');
const PYTHON = '/usr/bin/python3';
const CODECS = ['json', 'cbor'] as const;
type Codec = (typeof CODECS)[number];

/** Why a command cannot run here, or null when it ran and exited 0. */
function missing(command: string, args: string[], what: string): string | null {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 30000 });
  if (r.error) return `${what}: ${r.error.message}`;
  if (r.status !== 0) return `${what}: ${(r.stderr || r.stdout || `exit ${r.status}`).trim()}`;
  return null;
}

interface QtClient {
  label: string;
  /** Why it cannot run here, or null. */
  missing: string | null;
  /** Prepares it (compiles the C++ client); returns the command line before the arguments. */
  prepare(dir: string): Promise<string[]>;
}

const CLIENTS: QtClient[] = [
  {
    label: 'PyQt5 (client.py)',
    missing: missing(PYTHON, ['-c', 'import PyQt5.QtNetwork'], `PyQt5 for ${PYTHON}`),
    // -B: no __pycache__ left in examples/qt-client
    prepare: async () => [PYTHON, '-B', path.join(EXAMPLES, 'client.py')],
  },
  {
    label: 'Qt 5 C++ (client.cpp)',
    missing:
      missing('pkg-config', ['--exists', 'Qt5Network'], 'pkg-config Qt5Network (qtbase5-dev)') ??
      missing('g++', ['--version'], 'g++'),
    async prepare(dir) {
      const flags = spawnSync('pkg-config', ['--cflags', '--libs', 'Qt5Network'], {
        encoding: 'utf8',
      }).stdout.trim();
      const binary = path.join(dir, 'client');
      const args = [
        '-std=c++17',
        '-fPIC',
        path.join(EXAMPLES, 'client.cpp'),
        ...flags.split(/\s+/),
      ];
      const r = await run('g++', [...args, '-o', binary], 180000);
      if (r.code !== 0) throw new Error(`compiling client.cpp failed:\n${r.stderr}`);
      return [binary];
    },
  },
];

/** Child processes still running, killed in afterAll. */
const children = new Set<ChildProcess>();

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; killed (SIGKILL) after `ms`. */
function run(command: string, args: string[], ms = 20000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { timeout: ms, killSignal: 'SIGKILL', maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        children.delete(child);
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr: error && code === null ? `${stderr}\n${error}` : stderr });
      },
    );
    children.add(child);
  });
}

const servers = new Map<TransportKind, ServerApp>();

beforeAll(async () => {
  if (CLIENTS.every((c) => c.missing)) return;
  for (const transport of TRANSPORTS) servers.set(transport, await startServer({ transport }));
}, 60000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all([...servers.values()].map((s) => s.stop()));
});

/**
 * Where a client reaches the server: `127.0.0.1:PORT`, or the local server's socket path. A
 * Qt program looks for a bare name in the shared temp directory (Qt's rule); the server's
 * bare name lives in its user's private directory, so the Qt program is given the path,
 * as examples/qt-client/README.md tells users to do.
 */
function address(server: ServerApp): string {
  if (server.transport === 'tcp') return `127.0.0.1:${server.port}`;
  expect(localServerPath(server.name)).toBe(server.fullServerName);
  return localServerPath(server.name);
}

for (const client of CLIENTS) {
  if (client.missing) {
    console.log(`Skipping the ${client.label} interop tests: ${client.missing}`);
    describe.skip(`${client.label} (unavailable)`, () => {
      it('calls ServerQt handlers', () => undefined);
    });
    continue;
  }

  describe(`${client.label} calls ServerQt handlers`, () => {
    let dir = '';
    let command: string[] = [];

    beforeAll(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'qt-client-'));
      command = await client.prepare(dir);
    }, 200000);

    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const start = (...args: string[]): Promise<RunResult> =>
      run(command[0]!, [...command.slice(1), ...args]);

    for (const transport of TRANSPORTS) {
      for (const codec of CODECS) {
        it(`over ${transport} with ${codec}: request, stream, RpcException, event`, async () => {
          const server = servers.get(transport)!;
          const result = await start(transport, address(server), codec);
          const context = `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
          expect({ code: result.code, context }).toEqual({ code: 0, context });
          expectScenario(result.stdout, transport, codec);
        });
      }
    }

    it('exits non-zero when nothing listens', async () => {
      const result = await start('tcp', `127.0.0.1:${await freePort()}`, 'json');
      expect(result.code).not.toBe(0);
      expect(result.code).not.toBeNull(); // it failed by itself, it was not killed
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/connect: Connection refused/);
    });
  });
}

/** The five JSON lines of a client's run, checked exactly. */
function expectScenario(stdout: string, transport: TransportKind, codec: Codec): void {
  const lines = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(lines.map((l) => l.step)).toEqual(['request', 'stream', 'error', 'event', 'events']);
  const [request, stream, error, event, events] = lines;

  // (a) one value: a single reply that ends the request
  expect(request).toEqual({
    step: 'request',
    codec,
    replies: [{ id: 1, response: 10, isDisposed: true }],
  });
  // (b) an Observable of 1, 2, 3: one reply per value, isDisposed on the last
  expect(stream).toEqual({
    step: 'stream',
    codec,
    replies: [
      { id: 2, response: 1 },
      { id: 2, response: 2 },
      { id: 2, response: 3, isDisposed: true },
    ],
  });
  // (c) new RpcException({ code, message }): the map arrives as err
  expect(error).toEqual({
    step: 'error',
    codec,
    replies: [{ id: 3, err: { code: 'E_DEMO', message: 'nope' }, isDisposed: true }],
  });
  // (d) the event, then the server's record of it, on the client's own kind of socket
  const sent = event!.sent as { pattern: string; data: { tag: string; text: string } };
  expect(sent).toEqual({
    pattern: 'note',
    data: { tag: expect.stringContaining(`-${transport}-${codec}-`), text: expect.any(String) },
  });
  const replies = events!.replies as Array<Record<string, unknown>>;
  expect(events!.codec).toBe(codec);
  expect(replies).toHaveLength(1);
  expect(replies[0]).toEqual({
    id: expect.any(Number),
    isDisposed: true,
    response: [
      {
        pattern: 'note',
        idType: 'undefined',
        socket: transport === 'tcp' ? 'QTcpSocket' : 'QLocalSocket',
        data: sent.data,
      },
    ],
  });
}
