/**
 * Real Qt programs that do not know the draining notice keep working while ServerQt drains:
 * the example clients of examples/qt-client (client.py on PyQt5, client.cpp on Qt 5 C++)
 * run their whole scenario against the e2e server app, over TCP and a local socket, with
 * JSON and CBOR, while the server begins to close in the middle of it.
 *
 * The close begins inside the handler of the scenario's event (step 4, `note`: the server
 * app's "close-on note"), so the notice `{ draining: true }` is on the connection before the
 * reply to the request the program sent right after the event (step 5, `events`): the
 * program reads the notice first, skips it (it has no `id`), and gets its reply, because a
 * request that crossed the notice is served. The server then closes the connection of this
 * peer, which never answers the notice, once nothing runs for it, and its close completes.
 *
 * A client whose Qt is not installed is skipped with the reason printed.
 */
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { TRANSPORTS, startServer, waitEvent, type ServerApp } from '../e2e/helpers.js';
import { budget } from '../helpers/time-budget.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const EXAMPLES = path.resolve(here, '../../examples/qt-client');
const PYTHON = '/usr/bin/python3';
const CODECS = ['json', 'cbor'] as const;

/** Why a command cannot run here, or null when it ran and exited 0. */
function missing(command: string, args: string[], what: string): string | null {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 30000 });
  if (r.error) return `${what}: ${r.error.message}`;
  if (r.status !== 0) return `${what}: ${(r.stderr || r.stdout || `exit ${r.status}`).trim()}`;
  return null;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

/** Runs a command to its end; killed (SIGKILL) after `ms`. */
function run(command: string, args: string[], ms = budget(20000)): Promise<RunResult> {
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

interface QtClient {
  label: string;
  missing: string | null;
  /** Prepares it (compiles the C++ client); returns the command line before the arguments. */
  prepare(dir: string): Promise<string[]>;
}

const CLIENTS: QtClient[] = [
  {
    label: 'PyQt5 (client.py)',
    missing: missing(PYTHON, ['-c', 'import PyQt5.QtNetwork'], `PyQt5 for ${PYTHON}`),
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

const servers: ServerApp[] = [];

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(servers.map((s) => s.stop()));
});

for (const client of CLIENTS) {
  if (client.missing) {
    console.log(`Skipping the ${client.label} draining interop tests: ${client.missing}`);
    describe.skip(`${client.label} (unavailable)`, () => {
      it('completes its scenario while ServerQt drains', () => undefined);
    });
    continue;
  }

  describe(`${client.label} completes its scenario while ServerQt drains`, () => {
    let dir = '';
    let command: string[] = [];

    beforeAll(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'qt-client-drain-'));
      command = await client.prepare(dir);
    }, 200000);

    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    for (const transport of TRANSPORTS) {
      for (const codec of CODECS) {
        it(`over ${transport} with ${codec}: the close begins at its event; its next request is served after the notice; it exits 0 and the server closes`, async () => {
          const server = await startServer({ transport });
          servers.push(server);
          server.command('close-on note');
          await waitEvent(server.run, 'close-armed');
          const address = transport === 'tcp' ? `127.0.0.1:${server.port}` : server.fullServerName;

          const result = await run(command[0]!, [...command.slice(1), transport, address, codec]);
          const context = `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
          expect({ code: result.code, context }).toEqual({ code: 0, context });

          const lines = result.stdout
            .trim()
            .split('\n')
            .map((line) => JSON.parse(line) as Record<string, unknown>);
          expect(lines.map((l) => l.step)).toEqual([
            'request',
            'stream',
            'error',
            'event',
            'events',
          ]);
          expect(lines[0]!.replies).toEqual([{ id: 1, response: 10, isDisposed: true }]);
          // Step 5 was sent after the event whose handler began the close, and served.
          const replies = lines[4]!.replies as Array<Record<string, unknown>>;
          expect(replies).toHaveLength(1);
          expect(replies[0]).toMatchObject({ isDisposed: true });
          expect(replies[0]!.err).toBeUndefined();
          expect((replies[0]!.response as unknown[]).length).toBe(1);

          // The close had begun during the scenario, and it completes.
          await waitEvent(server.run, 'closing');
          await waitEvent(server.run, 'closed');
        });
      }
    }
  });
}
