// QLocalServer's bind mode (port extension, docs/qt-differences.md "Bind modes of
// servers"), on real Unix-domain sockets and real node:cluster processes
// (fixtures/cluster-listen.ts): with ShareAddress the workers share the primary's socket at
// one path, its access mode is applied, a stale file is recovered from, and the file stays
// while any worker serves; outside a worker nothing is shared, as in Qt.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  BindFlag,
  LocalServerSocketOption,
  QLocalServer,
  SocketError,
} from '../../../lib/qtnetwork/index.js';
import { startCluster, type ClusterRun } from '../../helpers/cluster-run.js';
import { isSocketAt, makeStaleSocket, permissionBits } from '../../helpers/qlocal-helpers.js';
import { Resources } from '../../helpers/resources.js';
import { CHILD_START_MS, budget } from '../../helpers/time-budget.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLUSTER_LISTEN = path.join(here, 'fixtures', 'cluster-listen.ts');
const ADDRESS_IN_USE = 'QLocalServer::listen: Address in use';
/** A primary and two workers start one after another, on a busy machine. */
const T = 4 * CHILD_START_MS + budget(20000);
const { NoOptions, UserAccessOption, WorldAccessOption } = LocalServerSocketOption;

let res: Resources;
beforeEach(() => {
  res = new Resources();
});
afterEach(async () => {
  await res.dispose();
});

/** A fresh private directory, removed after the test. */
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qls-bind-'));
  res.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A cluster-listen primary with two local workers on `socketPath`, stopped after the test. */
function cluster(socketPath: string, mode: number, access = NoOptions): ClusterRun {
  const run = startCluster(CLUSTER_LISTEN, [
    '--kind',
    'local',
    '--address',
    socketPath,
    '--mode',
    String(mode),
    '--access',
    String(access),
  ]);
  res.add(() => run.stop());
  return run;
}

/** The pid a cluster-listen worker answers a connection on `socketPath` with. */
function askPid(socketPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer'));
    }, budget(10000));
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Number(text.trim()));
    });
  });
}

/** Connects until every pid in `expected` has answered (a bounded number of times). */
async function pidsAnswering(socketPath: string, expected: Set<number>): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < 40 && seen.size < expected.size; i++) seen.add(await askPid(socketPath));
  return seen;
}

describe('QLocalServer bind mode (port extension)', () => {
  it('listenBindMode() is DefaultForPlatform until set', () => {
    const server = res.server(new QLocalServer());
    expect(server.listenBindMode()).toBe(BindFlag.DefaultForPlatform);
    server.setListenBindMode(BindFlag.ShareAddress);
    expect(server.listenBindMode()).toBe(BindFlag.ShareAddress);
  });

  it.each([
    ['no access options', NoOptions],
    ['UserAccessOption', UserAccessOption],
  ])(
    'outside a cluster worker ShareAddress shares nothing (%s): a second server on the name fails with AddressInUseError and leaves the first one serving',
    async (_label, access) => {
      const socketPath = path.join(tempDir(), 's');
      const first = res.server(new QLocalServer());
      first.setListenBindMode(BindFlag.ShareAddress);
      first.setSocketOptions(access);
      expect(await first.listen(socketPath)).toBe(true);
      const second = res.server(new QLocalServer());
      second.setListenBindMode(BindFlag.ShareAddress);
      second.setSocketOptions(access);
      expect(await second.listen(socketPath)).toBe(false);
      expect(second.serverError()).toBe(SocketError.AddressInUseError);
      expect(second.errorString()).toBe(ADDRESS_IN_USE);
      second.close();
      expect(isSocketAt(socketPath)).toBe(true);
      expect(first.isListening()).toBe(true);
      // The first server still owns its file: closing it removes it, as without the mode.
      first.close();
      expect(fs.existsSync(socketPath)).toBe(false);
    },
  );

  it(
    'ShareAddress in node:cluster workers: both listen on one path and serve; closing one keeps the file and the other serving; closing the last removes it',
    async () => {
      const socketPath = path.join(tempDir(), 's');
      const run = cluster(socketPath, BindFlag.ShareAddress);
      const reports = [await run.next('listen'), await run.next('listen')];
      for (const r of reports) {
        expect(r).toMatchObject({ ok: true, fullServerName: socketPath, descriptor: -1 });
      }
      await run.next('all-listening');
      const pids = new Set(reports.map((r) => Number(r.pid)));
      expect(await pidsAnswering(socketPath, pids)).toEqual(pids);

      const [firstPid, secondPid] = [...pids];
      run.command(`close ${firstPid}`);
      expect(await run.next('closed')).toMatchObject({ pid: firstPid, fileExists: true });
      expect(isSocketAt(socketPath)).toBe(true);
      for (let i = 0; i < 4; i++) expect(await askPid(socketPath)).toBe(secondPid);

      run.command(`close ${secondPid}`);
      expect(await run.next('closed')).toMatchObject({ pid: secondPid, fileExists: false });
    },
    T,
  );

  it.each([
    ['UserAccessOption', UserAccessOption, 0o700],
    ['WorldAccessOption', WorldAccessOption, 0o777],
  ])(
    'ShareAddress in node:cluster workers with %s: the shared socket gets the mode asked for',
    async (_label, access, bits) => {
      const socketPath = path.join(tempDir(), 's');
      const run = cluster(socketPath, BindFlag.ShareAddress, access);
      expect(await run.next('listen')).toMatchObject({ ok: true });
      expect(await run.next('listen')).toMatchObject({ ok: true });
      await run.next('all-listening');
      expect(permissionBits(socketPath)).toBe(bits);
    },
    T,
  );

  it(
    'ShareAddress in node:cluster workers with access options replaces a stale socket, and both workers serve',
    async () => {
      const socketPath = path.join(tempDir(), 's');
      makeStaleSocket(socketPath);
      const run = cluster(socketPath, BindFlag.ShareAddress, UserAccessOption);
      const reports = [await run.next('listen'), await run.next('listen')];
      for (const r of reports) expect(r).toMatchObject({ ok: true });
      const pids = new Set(reports.map((r) => Number(r.pid)));
      expect(await pidsAnswering(socketPath, pids)).toEqual(pids);
    },
    T,
  );

  it(
    'ShareAddress in node:cluster workers without access options leaves a stale socket alone and fails with AddressInUseError, as Qt does',
    async () => {
      const socketPath = path.join(tempDir(), 's');
      makeStaleSocket(socketPath);
      const staleIno = fs.lstatSync(socketPath).ino;
      const run = cluster(socketPath, BindFlag.ShareAddress);
      for (let i = 0; i < 2; i++) {
        expect(await run.next('listen')).toMatchObject({
          ok: false,
          error: 'AddressInUseError',
          errorString: ADDRESS_IN_USE,
        });
      }
      expect(fs.lstatSync(socketPath).ino).toBe(staleIno);
    },
    T,
  );

  it(
    "ShareAddress in node:cluster workers where another process's server listens: both workers fail with AddressInUseError and that server keeps its file",
    async () => {
      const socketPath = path.join(tempDir(), 's');
      const other = res.server(new QLocalServer());
      other.setSocketOptions(UserAccessOption);
      expect(await other.listen(socketPath)).toBe(true);
      const ino = fs.lstatSync(socketPath).ino;
      const run = cluster(socketPath, BindFlag.ShareAddress, UserAccessOption);
      for (let i = 0; i < 2; i++) {
        expect(await run.next('listen')).toMatchObject({ ok: false, error: 'AddressInUseError' });
      }
      expect(fs.lstatSync(socketPath).ino).toBe(ino);
      expect(other.isListening()).toBe(true);
    },
    T,
  );

  it(
    'DefaultForPlatform in node:cluster workers keeps a socket per server: the second worker fails with AddressInUseError',
    async () => {
      const socketPath = path.join(tempDir(), 's');
      const run = cluster(socketPath, BindFlag.DefaultForPlatform);
      const first = await run.next('listen');
      expect(first).toMatchObject({ ok: true, fullServerName: socketPath });
      expect(Number(first.descriptor)).toBeGreaterThanOrEqual(0);
      expect(await run.next('listen')).toMatchObject({
        ok: false,
        error: 'AddressInUseError',
        errorString: ADDRESS_IN_USE,
      });
      expect(await askPid(socketPath)).toBe(first.pid);
    },
    T,
  );
});

describe('QLocalServer.removeStaleServer', () => {
  it('removes a stale socket and leaves a live one and a missing one alone', async () => {
    const dir = tempDir();
    const stale = path.join(dir, 'stale');
    makeStaleSocket(stale);
    expect(await QLocalServer.removeStaleServer(stale)).toBe(true);
    expect(fs.existsSync(stale)).toBe(false);
    expect(await QLocalServer.removeStaleServer(path.join(dir, 'missing'))).toBe(true);
    const live = path.join(dir, 'live');
    const server = res.server(new QLocalServer());
    expect(await server.listen(live)).toBe(true);
    expect(await QLocalServer.removeStaleServer(live)).toBe(false);
    expect(isSocketAt(live)).toBe(true);
  });
});
