/**
 * ServerQt in node:cluster workers (API.md, "Many processes and many replicas"): with no
 * option, every worker of a cluster serves on the primary's socket, TCP and local alike,
 * and a worker that dies leaves the others serving on it; outside a worker a second server
 * on an address in use still fails with AddressInUseError, as in Qt.
 *
 * Real processes: a cluster primary (fixtures/cluster-app.ts) forks two workers, each a
 * Nest microservice whose 'pid' handler answers with its pid; the test calls it through
 * many ClientQt, one connection each, until both workers have answered.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { firstValueFrom } from 'rxjs';

import { ClientQt, QtListenError, ServerQt, type QtTransportOptions } from '../../lib/index.js';
import { startCluster, type ClusterRun } from '../helpers/cluster-run.js';
import { freePort } from '../helpers/net.js';
import { Resources } from '../helpers/resources.js';
import { CHILD_START_MS, budget } from '../helpers/time-budget.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLUSTER_APP = path.join(here, 'fixtures', 'cluster-app.ts');
/** A primary and two workers (a Nest app each) start, on a busy machine; then some calls. */
const T = 4 * CHILD_START_MS + budget(30000);
/** Clients per round; each ClientQt is one connection, which the primary gives one worker. */
const CLIENTS = 20;

let res: Resources;
beforeEach(() => {
  res = new Resources();
});
afterEach(async () => {
  await res.dispose();
});

/** A fresh directory, removed after the test. */
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-cluster-'));
  res.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts cluster-app with `args`, stopped (primary and workers, by PID) after the test. */
function cluster(args: string[], env: NodeJS.ProcessEnv = process.env): ClusterRun {
  const run = startCluster(CLUSTER_APP, args, env);
  res.add(() => run.stop());
  return run;
}

/**
 * Calls 'pid' through rounds of CLIENTS fresh ClientQt (one connection each) until every
 * pid in `expected` has answered, at most `rounds` rounds; resolves the pids seen.
 */
async function pidsAnswering(
  target: QtTransportOptions,
  expected: ReadonlySet<number>,
  rounds = 3,
): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let round = 0; round < rounds && seen.size < expected.size; round++) {
    const clients = Array.from(
      { length: CLIENTS },
      () => new ClientQt({ ...target, reconnect: false, requestTimeout: budget(15000) }),
    );
    try {
      const pids = await Promise.all(clients.map((c) => firstValueFrom(c.send<number>('pid', {}))));
      for (const pid of pids) seen.add(pid);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  }
  return seen;
}

/** Reads the two workers' 'ready' lines and 'all-ready'; resolves their reports. */
async function twoReady(run: ClusterRun): Promise<Array<Record<string, unknown>>> {
  const reports = [await run.next('ready'), await run.next('ready')];
  const all = await run.next('all-ready');
  expect(new Set(all.pids as number[])).toEqual(new Set(reports.map((r) => r.pid)));
  return reports;
}

describe('ServerQt in node:cluster workers', () => {
  it(
    'TCP: two workers listen on one port with no option, and calls reach both',
    async () => {
      const port = await freePort();
      const run = cluster(['--transport', 'tcp', '--port', String(port)]);
      const reports = await twoReady(run);
      for (const r of reports) expect(r.port).toBe(port);
      const pids = new Set(reports.map((r) => Number(r.pid)));
      const target: QtTransportOptions = { transport: 'tcp', host: '127.0.0.1', port };
      expect(await pidsAnswering(target, pids)).toEqual(pids);
    },
    T,
  );

  it(
    'local: two workers listen on one bare name (making the private directory together), and calls reach both',
    async () => {
      // A fresh TMPDIR: both workers find no <tmpdir>/nestjs-qt-<uid> and make it at once.
      const tmp = tempDir();
      const name = `cluster-${process.pid}`;
      const run = cluster(['--transport', 'local', '--name', name], {
        ...process.env,
        TMPDIR: tmp,
      });
      const reports = await twoReady(run);
      const socketPath = `${tmp}/nestjs-qt-${process.getuid!()}/${name}`;
      for (const r of reports) expect(r.fullServerName).toBe(socketPath);
      expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
      // socketAccess's default, 'user': the mode is set on the shared socket too.
      expect(fs.lstatSync(socketPath).mode & 0o777).toBe(0o700);
      const pids = new Set(reports.map((r) => Number(r.pid)));
      const target: QtTransportOptions = { transport: 'local', name: socketPath };
      expect(await pidsAnswering(target, pids)).toEqual(pids);
    },
    T,
  );

  it.each(['tcp', 'local'] as const)(
    '%s: a worker killed with SIGKILL leaves the other serving on the same address',
    async (transport) => {
      const port = transport === 'tcp' ? await freePort() : 0;
      const socketPath = path.join(tempDir(), 's');
      const run = cluster(
        transport === 'tcp'
          ? ['--transport', 'tcp', '--port', String(port)]
          : ['--transport', 'local', '--name', socketPath],
      );
      const reports = await twoReady(run);
      const [victim, survivor] = reports.map((r) => Number(r.pid)) as [number, number];
      process.kill(victim, 'SIGKILL');
      expect(await run.next('worker-exit')).toMatchObject({ pid: victim, signal: 'SIGKILL' });
      if (transport === 'local') expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
      const target: QtTransportOptions =
        transport === 'tcp'
          ? { transport, host: '127.0.0.1', port }
          : { transport, name: socketPath };
      expect(await pidsAnswering(target, new Set([victim, survivor]), 1)).toEqual(
        new Set([survivor]),
      );
    },
    T,
  );
});

describe('ServerQt outside a cluster worker', () => {
  /** Listens with `server` directly (as Nest does); resolves the error, if any. */
  function listen(server: ServerQt): Promise<unknown> {
    return new Promise((resolve) => void server.listen((err?: unknown) => resolve(err)));
  }

  it.each(['tcp', 'local'] as const)(
    '%s: a second server on the same address in one process fails with AddressInUseError',
    async (transport) => {
      const options: QtTransportOptions =
        transport === 'tcp'
          ? { transport, host: '127.0.0.1', port: await freePort() }
          : { transport, name: path.join(tempDir(), 's') };
      const first = new ServerQt(options);
      res.add(() => first.close());
      expect(await listen(first)).toBeUndefined();
      const second = new ServerQt(options);
      res.add(() => second.close());
      const err = await listen(second);
      expect(err).toBeInstanceOf(QtListenError);
      expect(err).toMatchObject({
        code: 'AddressInUseError',
        message:
          transport === 'tcp'
            ? 'The bound address is already in use'
            : 'QLocalServer::listen: Address in use',
      });
    },
  );
});
