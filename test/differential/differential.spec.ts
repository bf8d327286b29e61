/**
 * Differential suite: each scenario runs once on real Qt 5.15 (PyQt5, live, in a child
 * `/usr/bin/python3 qt_scenarios.py` process) and once on the port (port-scenarios.ts),
 * against the SAME peers (node:net servers on loopback TCP or Unix sockets that this file
 * starts, or real proxy servers from test/helpers/proxy-servers.ts), and the two event lists
 * must be equal: signals with their arguments in order, state(), error() and errorString()
 * at each step, return values, Qt warnings, and what the peer received.
 *
 * How to add a scenario:
 * 1. Write it in qt_scenarios.py (`@scenario('area.what')`) and its twin, with the same
 *    name and the same calls in the same order, in port-scenarios.ts. Use the Log helpers
 *    (step, value, mark) so both print the same lines; wait with wait_until/settle (never on
 *    how bytes are chunked: wait until all bytes are there, then record totals); log no
 *    ports, PIDs or temporary paths (use booleans, or rel() for paths).
 * 2. Add a Case to CASES below: its params (the peers' ports and paths; `setup` runs once
 *    per side, so files a scenario changes are made fresh for each run) and, if it talks to a
 *    recording peer, `peer` (the peer's view is appended to both lists).
 * 3. Run `/usr/bin/python3 test/differential/qt_scenarios.py NAME 'JSON'` to see Qt's
 *    events, then this spec. If the port differs: fix a small, clear bug in lib/qtnetwork; or,
 *    for a difference docs/qt-differences.md documents, either `normalise` Qt's list (only
 *    that documented difference, with a comment naming the docs section) or declare it
 *    `known` and record both lists in known-differences.ts (run with
 *    QT_DIFF_RECORD=/tmp/rec.jsonl to get them), so the test fails if either side changes.
 *
 * Skips (with a printed reason): everything if /usr/bin/python3 (or $QT_DIFF_PYTHON) cannot
 * import PyQt5; a proxy's cases if its binary (danted, microsocks, tinyproxy) is not
 * installed (QT_TEST_HIDE_BINARIES=danted,... pretends it is not).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { jest } from '@jest/globals';

import { makeStaleSocket, makeTempDir, removeDir } from '../helpers/qlocal-helpers.js';
import {
  missingBinaryReason,
  startDante,
  startMicrosocks,
  startTinyproxy,
  type RunningProxy,
} from '../helpers/proxy-servers.js';
import {
  closedPort,
  pyqt5MissingReason,
  startPeer,
  type PeerBehaviour,
  type RecordingPeer,
} from './peers.js';
import { makeRunner, type Case } from './runner.js';
import { PORT_SCENARIOS, type ScenarioParams } from './port-scenarios.js';

jest.setTimeout(60000);

/** Debian's interpreter, which sees python3-pyqt5 (QT_DIFF_PYTHON overrides it). */
const PYTHON = process.env.QT_DIFF_PYTHON ?? '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const DRIVER = path.join(here, 'qt_scenarios.py');

const PREFIX = 'differential:';
const pyqtMissing = pyqt5MissingReason(PYTHON);
const proxyMissing = {
  dante: missingBinaryReason('danted', 'dante-server'),
  microsocks: missingBinaryReason('microsocks', 'microsocks'),
  tinyproxy: missingBinaryReason('tinyproxy', 'tinyproxy'),
};
if (pyqtMissing) console.log(`${PREFIX} every scenario skipped: ${pyqtMissing}`);
for (const [name, reason] of Object.entries(proxyMissing)) {
  if (reason && !pyqtMissing) console.log(`${PREFIX} scenarios through ${name} skipped: ${reason}`);
}

// ---------------------------------------------------------------------- running both sides

const { check, listQt } = makeRunner({ python: PYTHON, driver: DRIVER, table: PORT_SCENARIOS });

// ---------------------------------------------------------------------- normalisations

/**
 * docs/qt-differences.md, "QLocalSocket and QLocalServer" (first row of the table): Qt
 * connects to a Unix socket synchronously inside connectToServer(); the port emits
 * stateChanged(ConnectingState) inside the call and everything after it (connected, or a
 * missing or refusing server's error) after the call returns. This moves what Qt emitted
 * inside the call after stateChanged(2) to just after the "[connectToServer returns]"
 * marker; nothing else changes. (An empty or too-long name fails inside the call in both, and
 * those scenarios are compared without this.)
 */
function asyncLocalConnect(qt: string[]): string[] {
  const out = [...qt];
  let from = 0;
  for (;;) {
    const marker = out.indexOf('[connectToServer returns]', from);
    if (marker < 0) return out;
    const connecting = out.lastIndexOf('stateChanged(2)', marker);
    if (connecting < from) throw new Error('no stateChanged(2) before [connectToServer returns]');
    const inside = out.splice(connecting + 1, marker - connecting - 1);
    out.splice(connecting + 2, 0, ...inside);
    from = connecting + 2 + inside.length;
  }
}

// ---------------------------------------------------------------------- peers

const peers: RecordingPeer[] = [];
const dirs: string[] = [];
let idle: RecordingPeer;
let closing: RecordingPeer;
let data4: RecordingPeer;
let data25: RecordingPeer;
let echo: RecordingPeer;
let localClosing: RecordingPeer;
let localIdle: RecordingPeer;
let localData25: RecordingPeer;
let shared: string;
let refusedPort: number;

async function peer(behaviour: PeerBehaviour, where?: { path: string }): Promise<RecordingPeer> {
  const p = await startPeer(behaviour, where);
  peers.push(p);
  return p;
}

/** A private directory for one run, removed by the returned cleanup. */
function runDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = makeTempDir(`diff-${tag}`);
  return { dir, cleanup: () => removeDir(dir) };
}

let nameCounter = 0;
/** A relative local server name (it maps to the temp directory) no one else uses. */
function uniqueName(tag: string): string {
  nameCounter += 1;
  return `qtdiff-${tag}-${process.pid}-${nameCounter}`;
}

/** One name for both runs (each run's close() removes the socket file). */
const TWICE_NAME = uniqueName('twice');
const TMP = os.tmpdir().replace(/\/+$/, '');
const TOO_LONG = `/tmp/${'x'.repeat(120)}`;

// ---------------------------------------------------------------------- the scenarios

const CASES: Case[] = [
  // --- QTcpSocket
  {
    scenario: 'tcp.connect.success',
    title: 'connect to 127.0.0.1, then disconnectFromHost with nothing pending',
    setup: () => ({ params: { port: idle.port }, peer: idle }),
  },
  {
    scenario: 'tcp.connect.refused',
    title: 'connection refused, twice (the second connectToHost resets the error)',
    setup: () => ({ params: { port: refusedPort } }),
  },
  {
    scenario: 'tcp.connect.hostNotFound',
    title: 'host not found (a .invalid name)',
    setup: () => ({ params: { host: `no-such-host-${process.pid}.invalid` } }),
  },
  {
    scenario: 'tcp.connect.localhost',
    title: 'connect to the name "localhost" (host lookup), then abort',
    setup: () => ({ params: { port: idle.port }, peer: idle }),
  },
  {
    scenario: 'tcp.connect.whileConnecting',
    title:
      'connectToHost while connecting: OperationError and a warning, the first attempt goes on',
    setup: () => ({ params: { port: idle.port }, peer: idle }),
  },
  {
    scenario: 'tcp.unconnected.calls',
    title:
      'write, putChar, the waits, readAll, disconnectFromHost, abort and close on a socket that never connected',
    setup: () => ({ params: {} }),
  },
  {
    scenario: 'tcp.peerClose.unread',
    title:
      'the peer writes "line1\\nrest" and closes: RemoteHostClosedError, the data stays readable, write fails',
    setup: () => ({ params: { port: closing.port }, peer: closing }),
  },
  {
    scenario: 'tcp.disconnectFromHost.pendingWrites',
    title:
      'disconnectFromHost with 10 bytes unwritten: ClosingState, the bytes go out, then Unconnected',
    setup: () => ({ params: { port: idle.port }, peer: idle }),
  },
  {
    scenario: 'tcp.abort.pendingWrites',
    title:
      'abort with 3 bytes unwritten: synchronous, the bytes are dropped; abort again does nothing',
    setup: () => ({ params: { port: idle.port }, peer: idle }),
  },
  {
    scenario: 'tcp.close.pendingWrites',
    title: 'close with 3 bytes unwritten: aboutToClose, ClosingState, the bytes go out',
    setup: () => ({ params: { port: idle.port }, peer: idle }),
  },
  {
    scenario: 'tcp.close.unreadData',
    title: 'close with 4 bytes unread: the data is dropped',
    setup: () => ({ params: { port: data4.port }, peer: data4 }),
  },
  {
    scenario: 'tcp.readBufferSize',
    title: 'readBufferSize 10 with 25 bytes sent: 10, 10, 5 available in turn',
    setup: () => ({ params: { port: data25.port }, peer: data25 }),
  },
  {
    scenario: 'tcp.waitFor.timeouts',
    title:
      'waitForReadyRead / waitForBytesWritten / waitForDisconnected time out on an idle connection',
    setup: () => ({ params: { port: idle.port }, peer: idle }),
  },

  // --- QTcpServer
  {
    scenario: 'tcpServer.listen.addressInUse',
    title: 'listen on a port in use: AddressInUseError',
    setup: () => ({ params: { port: idle.port } }),
  },
  {
    scenario: 'tcpServer.listen.twice',
    title: 'listen twice: false with a warning, still listening; close; listen again',
    setup: () => ({ params: {} }),
  },
  {
    scenario: 'tcpServer.waitForNewConnection.timeout',
    title: 'waitForNewConnection: not listening, then a timeout (SocketTimeoutError)',
    setup: () => ({ params: {} }),
  },
  {
    scenario: 'tcpServer.pendingConnections.limit',
    title:
      'setMaxPendingConnections(2) with 4 clients: 2 handed out, one more per nextPendingConnection',
    setup: () => ({ params: {} }),
  },

  // --- QLocalSocket
  {
    scenario: 'local.connect.emptyName',
    title: 'connectToServer(""): ServerNotFoundError inside the call',
    setup: () => ({ params: {} }),
  },
  {
    scenario: 'local.connect.tooLong',
    title: 'connectToServer with a path longer than sun_path: ServerNotFoundError inside the call',
    setup: () => ({ params: { path: TOO_LONG } }),
  },
  {
    scenario: 'local.connect.notFound',
    title: 'connectToServer to a relative name nobody serves: ServerNotFoundError',
    setup: () => ({ params: { name: uniqueName('missing') } }),
    normalise: asyncLocalConnect,
  },
  {
    scenario: 'local.connect.regularFile',
    title: 'connectToServer to a regular file: ConnectionRefusedError',
    setup: () => ({ params: { name: path.join(shared, 'file') } }),
    normalise: asyncLocalConnect,
  },
  {
    scenario: 'local.connect.directory',
    title: 'connectToServer to a directory: ConnectionRefusedError',
    setup: () => ({ params: { name: path.join(shared, 'dir') } }),
    normalise: asyncLocalConnect,
  },
  {
    scenario: 'local.connect.staleSocket',
    title: 'connectToServer to a stale socket file: ConnectionRefusedError',
    setup: () => ({ params: { name: path.join(shared, 'stale') } }),
    normalise: asyncLocalConnect,
  },
  {
    scenario: 'local.peerClose.unread',
    title: 'the local peer writes "data\\n" and closes: PeerClosedError, the data stays readable',
    setup: () => ({ params: { path: localClosing.path }, peer: localClosing }),
    normalise: asyncLocalConnect,
  },
  {
    scenario: 'local.disconnectFromServer.pendingWrites',
    title: 'disconnectFromServer with 3 bytes unwritten',
    setup: () => ({ params: { path: localIdle.path, dir: shared }, peer: localIdle }),
    normalise: asyncLocalConnect,
  },
  {
    scenario: 'local.readBufferSize',
    title: 'readBufferSize 10 with 25 bytes sent: 10, 10, 5 available in turn',
    setup: () => ({ params: { path: localData25.path }, peer: localData25 }),
    normalise: asyncLocalConnect,
  },

  // --- QLocalServer
  {
    scenario: 'localServer.listen.emptyName',
    title: 'listen(""): HostNotFoundError "Name error"',
    setup: () => ({ params: {} }),
  },
  {
    scenario: 'localServer.listen.inUse',
    title: "listen on a live server's socket: AddressInUseError, the socket stays",
    setup: () => ({ params: { path: localIdle.path }, peer: localIdle }),
  },
  {
    scenario: 'localServer.listen.regularFile',
    title: 'listen on a regular file: AddressInUseError, the file stays',
    setup: () => {
      const { dir, cleanup } = runDir('listenfile');
      const file = path.join(dir, 'file');
      fs.writeFileSync(file, 'keep me');
      return { params: { path: file }, cleanup };
    },
  },
  {
    scenario: 'localServer.listen.twice',
    title: 'listen twice on a relative name: false with a warning; close removes the socket file',
    setup: () => {
      const name = TWICE_NAME;
      return {
        params: { name, tmp: TMP },
        cleanup: () => fs.rmSync(path.join(TMP, name), { force: true }),
      };
    },
  },
  {
    scenario: 'localServer.removeServer',
    title:
      'removeServer: nothing there, a stale socket, a live server (whose clients then get ServerNotFoundError)',
    setup: () => {
      const { dir, cleanup } = runDir('remove');
      const stale = path.join(dir, 'stale');
      makeStaleSocket(stale);
      return {
        params: { missing: path.join(dir, 'missing'), stale, live: path.join(dir, 'live') },
        cleanup,
      };
    },
    normalise: asyncLocalConnect,
  },

  // --- documented differences: both sides must keep giving what was recorded
  // (known-differences.ts; docs/qt-differences.md says why)
  {
    scenario: 'local.close.pendingWrites',
    title: 'close with 3 bytes unwritten (known difference: Qt 5.15 emits aboutToClose twice)',
    setup: () => ({ params: { path: localIdle.path }, peer: localIdle }),
    known: {
      section:
        'Differences found by the differential suite: "QLocalSocket.close() emits aboutToClose once"',
    },
  },
  {
    scenario: 'local.abort',
    title:
      'waitForReadyRead timeout, then abort with 3 bytes unwritten (known difference: the port follows Qt 6: aboutToClose last, device closed; fidelity-proxylocal.spec.ts compares with Qt 6)',
    setup: () => ({ params: { path: localIdle.path }, peer: localIdle }),
    known: {
      section: 'Differences found by the differential suite: "QLocalSocket.abort() follows Qt 6"',
    },
  },
  {
    scenario: 'localServer.pendingConnections.limit',
    title: 'setMaxPendingConnections(2) with 5 clients (known difference: Qt hands out 4 at once)',
    setup: () => {
      const { dir, cleanup } = runDir('pending');
      return { params: { path: path.join(dir, 'server') }, cleanup };
    },
    known: {
      section:
        'QLocalSocket and QLocalServer: "QLocalServer checks maxPendingConnections after accepting"',
    },
  },
  {
    scenario: 'localServer.listen.tooLong',
    title: 'listen with a path longer than sun_path (known difference: Qt reports a stale errno)',
    setup: () => ({ params: { path: TOO_LONG } }),
    known: { section: 'QLocalSocket and QLocalServer: "A path longer than sun_path"' },
  },
  {
    scenario: 'localServer.removeServer.regularFile',
    title: 'removeServer on a regular file (known difference: Qt deletes it, the port keeps it)',
    setup: () => {
      const { dir, cleanup } = runDir('removefile');
      const file = path.join(dir, 'file');
      fs.writeFileSync(file, 'keep me');
      return { params: { path: file }, cleanup };
    },
    known: {
      section:
        'QLocalSocket and QLocalServer: "removeServer(name) deletes whatever file is at the path"',
    },
  },
];

/** Through real proxies; each group needs its server. */
interface ProxyGroup {
  label: string;
  skip: string | null;
  start: () => Promise<RunningProxy>;
  cases: (proxy: () => RunningProxy) => Case[];
}

const MICRO_CREDENTIALS = { user: 'qtdiff', password: `ms${process.pid}secret` };
const TINY_CREDENTIALS = { user: 'qtdiff', password: `tp${process.pid}secret` };

function via(proxy: RunningProxy, type: 'socks5' | 'http', extra: ScenarioParams): ScenarioParams {
  return { proxyType: type, proxyHost: proxy.host, proxyPort: proxy.port, ...extra };
}

const PROXY_GROUPS: ProxyGroup[] = [
  {
    label: 'dante (SOCKS5, no authentication)',
    skip: proxyMissing.dante,
    start: () => startDante(),
    cases: (proxy) => [
      {
        scenario: 'proxy.connect.echo',
        title: 'SOCKS5 (dante): connect, echo, disconnect',
        setup: () => ({ params: via(proxy(), 'socks5', { port: echo.port }), peer: echo }),
      },
      {
        scenario: 'proxy.connect.fails',
        title: 'SOCKS5 (dante): refused destination',
        setup: () => ({ params: via(proxy(), 'socks5', { port: refusedPort }) }),
      },
      {
        scenario: 'proxy.connect.fails',
        title: 'SOCKS5 (dante): a destination name that does not resolve',
        setup: () => ({
          params: via(proxy(), 'socks5', {
            host: `no-such-host-${process.pid}.invalid`,
            port: echo.port,
          }),
        }),
      },
    ],
  },
  {
    label: 'microsocks (SOCKS5, -u/-P)',
    skip: proxyMissing.microsocks,
    start: () => startMicrosocks(MICRO_CREDENTIALS),
    cases: (proxy) => [
      {
        scenario: 'proxy.connect.fails',
        title: 'SOCKS5 (microsocks): wrong password',
        setup: () => ({
          params: via(proxy(), 'socks5', {
            port: echo.port,
            user: MICRO_CREDENTIALS.user,
            password: 'wrong-password',
          }),
        }),
      },
      {
        scenario: 'proxy.connect.fails',
        title: 'SOCKS5 (microsocks): no credentials for a proxy that requires them',
        setup: () => ({ params: via(proxy(), 'socks5', { port: echo.port }) }),
      },
      {
        scenario: 'proxy.connect.echo',
        title: 'SOCKS5 (microsocks): the right credentials, echo',
        setup: () => ({
          params: via(proxy(), 'socks5', { port: echo.port, ...MICRO_CREDENTIALS }),
          peer: echo,
        }),
      },
    ],
  },
  {
    label: 'tinyproxy (HTTP CONNECT, no authentication)',
    skip: proxyMissing.tinyproxy,
    start: () => startTinyproxy(),
    cases: (proxy) => [
      {
        scenario: 'proxy.connect.echo',
        title: 'HTTP (tinyproxy): connect, echo, disconnect',
        setup: () => ({ params: via(proxy(), 'http', { port: echo.port }), peer: echo }),
      },
      {
        scenario: 'proxy.connect.fails',
        title: 'HTTP (tinyproxy): refused destination',
        setup: () => ({ params: via(proxy(), 'http', { port: refusedPort }) }),
      },
    ],
  },
  {
    label: 'tinyproxy (HTTP CONNECT, BasicAuth)',
    skip: proxyMissing.tinyproxy,
    start: () => startTinyproxy(TINY_CREDENTIALS),
    cases: (proxy) => [
      {
        scenario: 'proxy.connect.fails',
        title: 'HTTP (tinyproxy): wrong password',
        setup: () => ({
          params: via(proxy(), 'http', {
            port: echo.port,
            user: TINY_CREDENTIALS.user,
            password: 'wrong-password',
          }),
        }),
      },
      {
        scenario: 'proxy.connect.fails',
        title: 'HTTP (tinyproxy): no credentials for a proxy that requires them',
        setup: () => ({ params: via(proxy(), 'http', { port: echo.port }) }),
      },
    ],
  },
];

/** Proxies that are not listening: need no binary. */
const PROXY_NOT_LISTENING: Case[] = [
  {
    scenario: 'proxy.connect.fails',
    title: 'SOCKS5 proxy not listening: ProxyConnectionRefusedError',
    setup: () => ({
      params: {
        proxyType: 'socks5',
        proxyHost: '127.0.0.1',
        proxyPort: refusedPort,
        port: echo.port,
      },
    }),
  },
  {
    scenario: 'proxy.connect.fails',
    title: 'HTTP proxy not listening: ProxyConnectionRefusedError',
    setup: () => ({
      params: {
        proxyType: 'http',
        proxyHost: '127.0.0.1',
        proxyPort: refusedPort,
        port: echo.port,
      },
    }),
  },
];

// ---------------------------------------------------------------------- the tests

const describeQt = pyqtMissing ? describe.skip : describe;

describeQt('Qt 5.15 (PyQt5) and the port, scenario by scenario', () => {
  beforeAll(async () => {
    idle = await peer({ kind: 'idle' });
    closing = await peer({ kind: 'send', data: 'line1\nrest', end: true });
    data4 = await peer({ kind: 'send', data: 'data', end: false });
    data25 = await peer({ kind: 'send', data: 'abcdefghijklmnopqrstuvwxy', end: false });
    echo = await peer({ kind: 'echo' });
    refusedPort = await closedPort();
    shared = makeTempDir('diff-shared');
    dirs.push(shared);
    fs.writeFileSync(path.join(shared, 'file'), 'x');
    fs.mkdirSync(path.join(shared, 'dir'));
    makeStaleSocket(path.join(shared, 'stale'));
    localClosing = await peer(
      { kind: 'send', data: 'data\n', end: true },
      { path: path.join(shared, 'closing') },
    );
    localIdle = await peer({ kind: 'idle' }, { path: path.join(shared, 'idle') });
    localData25 = await peer(
      { kind: 'send', data: 'abcdefghijklmnopqrstuvwxy', end: false },
      { path: path.join(shared, 'data25') },
    );
  });

  afterAll(async () => {
    for (const p of peers.splice(0)) await p.close();
    for (const d of dirs.splice(0)) removeDir(d);
  });

  it('the Qt driver and the port know the same scenarios', async () => {
    const listed = await listQt();
    expect(Object.keys(PORT_SCENARIOS).sort()).toEqual(listed);
  });

  describe.each(CASES.map((c) => [c.scenario, c] as const))('%s', (_name, c) => {
    it(c.title, () => check(c));
  });

  describe('proxies that are not listening', () => {
    it.each(PROXY_NOT_LISTENING.map((c) => [c.title, c] as const))('%s', (_title, c) => check(c));
  });

  for (const group of PROXY_GROUPS) {
    (group.skip ? describe.skip : describe)(`through ${group.label}`, () => {
      let server: RunningProxy | null = null;
      beforeAll(async () => {
        server = await group.start();
      });
      afterAll(async () => {
        await server?.stop();
        server = null;
      });
      const cases = group.cases(() => server!);
      it.each(cases.map((c) => [c.title, c] as const))('%s', (_title, c) => check(c));
    });
  }
});

if (pyqtMissing) {
  it('differential scenarios are skipped: real Qt is not available', () => {
    console.log(`${PREFIX} ${pyqtMissing}`);
    expect(pyqtMissing).not.toBeNull();
  });
}
