// QTcpServer's port extensions for many processes (docs/qt-differences.md, "Bind modes of
// servers"): setListenBindMode(ShareAddress) shares the node:cluster primary's socket in a
// worker and changes nothing elsewhere; setReusePortEnabled listens with SO_REUSEPORT
// where Node can. Real loopback sockets and real cluster processes (fixtures/cluster-listen.ts).
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BindFlag, QTcpServer, SocketError, SpecialAddress } from '../../../lib/qtnetwork/index.js';
import { startCluster, type ClusterRun } from '../../helpers/cluster-run.js';
import { freePort } from '../../helpers/net.js';
import { Scope } from '../../helpers/qt-scope.js';
import { CHILD_START_MS, budget } from '../../helpers/time-budget.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLUSTER_LISTEN = path.join(here, 'fixtures', 'cluster-listen.ts');
/** A primary and two workers start one after another, on a busy machine. */
const T = 4 * CHILD_START_MS + budget(20000);

const REUSE_PORT = QTcpServer.supportsReusePort();
if (!REUSE_PORT) {
  console.log(
    `qtcp-server-bind-mode.spec: the two-servers-on-one-port reusePort test is skipped: Node ${process.versions.node} on ${process.platform} cannot set SO_REUSEPORT (Node 22.12+ or 23.1+ on Linux, FreeBSD, Solaris or AIX)`,
  );
} else {
  console.log(
    `qtcp-server-bind-mode.spec: the "no SO_REUSEPORT" test is skipped: Node ${process.versions.node} on ${process.platform} can set SO_REUSEPORT, so listen with reusePort succeeds here`,
  );
}

let scope: Scope;
const clusters: ClusterRun[] = [];
beforeEach(() => {
  scope = new Scope();
});
afterEach(async () => {
  scope.dispose();
  await Promise.all(clusters.splice(0).map((c) => c.stop()));
});

/** The line a cluster-listen worker answers a connection with: its pid. */
function askPid(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
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

describe('QTcpServer bind mode (port extension)', () => {
  it('listenBindMode() is DefaultForPlatform until setListenBindMode sets other flags', () => {
    const server = scope.server();
    expect(server.listenBindMode()).toBe(BindFlag.DefaultForPlatform);
    server.setListenBindMode(BindFlag.ShareAddress | BindFlag.ReuseAddressHint);
    expect(server.listenBindMode()).toBe(BindFlag.ShareAddress | BindFlag.ReuseAddressHint);
  });

  it.each([
    ['ShareAddress', BindFlag.ShareAddress],
    ['ReuseAddressHint', BindFlag.ReuseAddressHint],
    ['DontShareAddress', BindFlag.DontShareAddress],
  ])(
    'outside a cluster worker %s shares nothing: a second server on the port fails with AddressInUseError',
    async (_name, mode) => {
      const first = scope.server();
      first.setListenBindMode(mode);
      expect(await first.listen(SpecialAddress.LocalHost, 0)).toBe(true);
      const second = scope.server();
      second.setListenBindMode(mode);
      expect(await second.listen(SpecialAddress.LocalHost, first.serverPort())).toBe(false);
      expect(second.serverError()).toBe(SocketError.AddressInUseError);
      expect(second.errorString()).toBe('The bound address is already in use');
      expect(second.isListening()).toBe(false);
      expect(first.isListening()).toBe(true);
      expect(first.socketDescriptor()).toBeGreaterThanOrEqual(0);
    },
  );

  it(
    'ShareAddress in node:cluster workers: both workers listen on one port, both are handed connections, neither holds a descriptor',
    async () => {
      const port = await freePort();
      const cluster = startCluster(CLUSTER_LISTEN, [
        '--kind',
        'tcp',
        '--address',
        String(port),
        '--mode',
        String(BindFlag.ShareAddress),
      ]);
      clusters.push(cluster);
      const reports = [await cluster.next('listen'), await cluster.next('listen')];
      for (const r of reports) {
        expect(r).toMatchObject({ ok: true, port, errorString: '', descriptor: -1 });
      }
      await cluster.next('all-listening');
      const pids = new Set(reports.map((r) => Number(r.pid)));
      // The primary hands connections out in turn; a bounded number shows both workers.
      const seen = new Set<number>();
      for (let i = 0; i < 40 && seen.size < pids.size; i++) seen.add(await askPid(port));
      expect(seen).toEqual(pids);
    },
    T,
  );

  it(
    'DefaultForPlatform in node:cluster workers keeps a socket per server: the second worker fails with AddressInUseError',
    async () => {
      const port = await freePort();
      const cluster = startCluster(CLUSTER_LISTEN, [
        '--kind',
        'tcp',
        '--address',
        String(port),
        '--mode',
        String(BindFlag.DefaultForPlatform),
      ]);
      clusters.push(cluster);
      const first = await cluster.next('listen');
      const second = await cluster.next('listen');
      expect(first).toMatchObject({ ok: true, port });
      expect(Number(first.descriptor)).toBeGreaterThanOrEqual(0);
      expect(second).toMatchObject({
        ok: false,
        error: 'AddressInUseError',
        errorString: 'The bound address is already in use',
      });
      expect(await askPid(port)).toBe(first.pid);
    },
    T,
  );

  it(
    'ShareAddress | DontShareAddress in node:cluster workers does not share: DontShareAddress wins',
    async () => {
      const port = await freePort();
      const cluster = startCluster(CLUSTER_LISTEN, [
        '--kind',
        'tcp',
        '--address',
        String(port),
        '--mode',
        String(BindFlag.ShareAddress | BindFlag.DontShareAddress),
      ]);
      clusters.push(cluster);
      expect(await cluster.next('listen')).toMatchObject({ ok: true, port });
      expect(await cluster.next('listen')).toMatchObject({
        ok: false,
        error: 'AddressInUseError',
      });
    },
    T,
  );
});

describe('QTcpServer reusePort (port extension)', () => {
  it('supportsReusePort() is true from Node 22.12 and 23.1, on the platforms Node names', () => {
    const table: Array<[string, string, boolean]> = [
      ['20.20.0', 'linux', false],
      ['22.11.0', 'linux', false],
      ['22.12.0', 'linux', true],
      ['23.0.0', 'linux', false],
      ['23.1.0', 'linux', true],
      ['24.0.0', 'linux', true],
      ['24.0.0', 'freebsd', true],
      ['24.0.0', 'darwin', false],
      ['24.0.0', 'win32', false],
    ];
    for (const [version, platform, expected] of table) {
      expect([version, platform, QTcpServer.supportsReusePort(version, platform)]).toEqual([
        version,
        platform,
        expected,
      ]);
    }
  });

  it('isReusePortEnabled() is false until setReusePortEnabled(true)', () => {
    const server = scope.server();
    expect(server.isReusePortEnabled()).toBe(false);
    server.setReusePortEnabled(true);
    expect(server.isReusePortEnabled()).toBe(true);
    server.setReusePortEnabled(false);
    expect(server.isReusePortEnabled()).toBe(false);
  });

  (REUSE_PORT ? it : it.skip)(
    'with reusePort, two servers in one process listen on one port; one without it is refused',
    async () => {
      const first = scope.server();
      first.setReusePortEnabled(true);
      expect(await first.listen(SpecialAddress.LocalHost, 0)).toBe(true);
      const second = scope.server();
      second.setReusePortEnabled(true);
      expect(await second.listen(SpecialAddress.LocalHost, first.serverPort())).toBe(true);
      const third = scope.server();
      expect(await third.listen(SpecialAddress.LocalHost, first.serverPort())).toBe(false);
      expect(third.serverError()).toBe(SocketError.AddressInUseError);
    },
  );

  (REUSE_PORT ? it.skip : it)(
    `where Node has no SO_REUSEPORT (this is Node ${process.versions.node} on ${process.platform}), listen with reusePort fails with UnsupportedSocketOperationError and nothing listens`,
    async () => {
      const server = scope.server();
      server.setReusePortEnabled(true);
      expect(await server.listen(SpecialAddress.LocalHost, 0)).toBe(false);
      expect(server.serverError()).toBe(SocketError.UnsupportedSocketOperationError);
      expect(server.errorString()).toBe('Unsupported socket operation');
      expect(server.isListening()).toBe(false);
      expect(server.serverPort()).toBe(0);
      // The server is usable again without the flag.
      server.setReusePortEnabled(false);
      expect(await server.listen(SpecialAddress.LocalHost, 0)).toBe(true);
    },
  );
});
