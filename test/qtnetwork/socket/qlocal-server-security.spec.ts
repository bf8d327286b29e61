// Security and recovery behaviour of QLocalServer's socket files, on real Unix-domain
// sockets, real processes and real users (nothing is mocked):
// - access options keep other users out (a client run as `nobody`), and the socket never
//   appears at its path with looser permissions than asked for, even for a moment;
// - a server killed with SIGKILL leaves a stale socket that is recognised and recovered
//   from, while a live server's socket and anything that is not a socket (a file, a
//   directory, a symbolic link) is never removed, replaced or followed;
// - close() removes only the server's own file; socket activation (listen(fd)); Linux's
//   abstract namespace; socket paths too long for `sun_path` are refused, never truncated.
// The server side runs in this process or in a child `node` (fixtures/serve-local.mjs,
// which imports the TypeScript sources through fixtures/register-ts.mjs); other users and
// raw observers are /usr/bin/python3 children.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  LocalServerSocketOption,
  LocalSocketError,
  LocalSocketOption,
  LocalSocketState,
  QLocalServer,
  QLocalSocket,
  SocketError,
} from '../../../lib/qtnetwork/index.js';
import {
  fixturesDir,
  nodeWithTsArgs,
  startChild,
  type ChildExit,
  type ChildRun,
} from '../../helpers/child-process.js';
import { Resources } from '../../helpers/resources.js';
import { sleep, waitUntil } from '../../helpers/signals.js';
import { CHILD_START_MS, budget } from '../../helpers/time-budget.js';

const PYTHON = '/usr/bin/python3';
const SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate';
const SERVE_LOCAL = path.join(fixturesDir, 'serve-local.mjs');
const S_IFSOCK = 0o140000;
const S_IFDIR = 0o040000;
const ADDRESS_IN_USE = 'QLocalServer::listen: Address in use';
/** Every test finishes well within this, a child's start-up included. */
const T = CHILD_START_MS + budget(15000);
/** Where the tests make their directories (fixed now: one test changes TMPDIR). */
const TMP_BASE = os.tmpdir();

const { NoOptions, UserAccessOption, GroupAccessOption, OtherAccessOption, WorldAccessOption } =
  LocalServerSocketOption;

/** Every access option, and none. */
const ACCESS_CASES: Array<[string, number]> = [
  ['NoOptions', NoOptions],
  ['UserAccessOption', UserAccessOption],
  ['GroupAccessOption', GroupAccessOption],
  ['OtherAccessOption', OtherAccessOption],
  ['WorldAccessOption', WorldAccessOption],
];

let res: Resources;
beforeEach(() => {
  res = new Resources();
});
afterEach(async () => {
  await res.dispose();
});

// ------------------------------------------------------------------------------ helpers

/** A fresh directory under the system temp directory, removed after the test. */
function tempDir(mode = 0o700): string {
  const dir = fs.mkdtempSync(path.join(TMP_BASE, 'qls-sec-'));
  fs.chmodSync(dir, mode);
  res.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A socket path in `dir`: "shared-name.sock", or with `nearLimit` a path of about 100 bytes
 * in a subdirectory, so long that QLocalServer's private directory beside it would not fit
 * in sun_path (QLocalServer then binds at the path itself, under a umask).
 */
function socketPathIn(dir: string, nearLimit: boolean): string {
  if (!nearLimit) return path.join(dir, 'shared-name.sock');
  const parent = path.join(dir, 'd'.repeat(100 - dir.length - 1));
  fs.mkdirSync(parent);
  expect(Buffer.byteLength(path.join(parent, '.qlsXXXXXX', 's'))).toBeGreaterThan(107);
  return path.join(parent, 's');
}

/** A tracked QLocalServer with `options`. */
function newServer(options: number = NoOptions): QLocalServer {
  const s = res.server(new QLocalServer());
  s.setSocketOptions(options);
  return s;
}

/** Echoes "echo:<data>" on every connection `server` accepts; records what it received. */
function serveEcho(server: QLocalServer): { received: () => string; connections: () => number } {
  let connections = 0;
  let received = '';
  server.newConnection.connect(() => {
    for (let c = server.nextPendingConnection(); c; c = server.nextPendingConnection()) {
      const sock = res.socket(c);
      connections++;
      sock.readyRead.connect(() => {
        const data = sock.readAll();
        received += data.toString();
        sock.write(Buffer.concat([Buffer.from('echo:'), data]));
      });
    }
  });
  return { received: () => received, connections: () => connections };
}

/** Reads until `n` bytes have arrived (or the time runs out / the connection ends). */
async function readAtLeast(sock: QLocalSocket, n: number, ms = 5000): Promise<string> {
  const deadline = Date.now() + ms;
  let got = Buffer.alloc(0);
  while (got.length < n) {
    const chunk = sock.readAll();
    if (chunk.length > 0) {
      got = Buffer.concat([got, chunk]);
      continue;
    }
    const left = deadline - Date.now();
    if (left <= 0 || !(await sock.waitForReadyRead(left))) {
      got = Buffer.concat([got, sock.readAll()]);
      break;
    }
  }
  return got.toString();
}

/** Connects a QLocalSocket to `name`, sends `tag` and expects "echo:<tag>" back. */
async function expectEcho(
  name: string,
  tag = 'ping',
  clientOptions: number = LocalSocketOption.NoOptions,
): Promise<void> {
  const c = res.socket(new QLocalSocket());
  c.setSocketOptions(clientOptions);
  c.connectToServer(name);
  const connected = await c.waitForConnected(5000);
  expect(connected ? 'connected' : `not connected: ${c.errorString()}`).toBe('connected');
  c.write(tag);
  expect(await readAtLeast(c, 5 + tag.length, 10000)).toBe(`echo:${tag}`);
  c.abort();
}

/** Connects a QLocalSocket to `name` and reports how the attempt ended. */
async function tryConnect(
  name: string,
  clientOptions: number = LocalSocketOption.NoOptions,
): Promise<{ connected: boolean; error: LocalSocketError; text: string; state: LocalSocketState }> {
  const c = res.socket(new QLocalSocket());
  c.setSocketOptions(clientOptions);
  c.connectToServer(name);
  const connected = await c.waitForConnected(5000);
  const result = { connected, error: c.error(), text: c.errorString(), state: c.state() };
  c.abort();
  return result;
}

/** What identifies a file: device, inode, type and mode, owner. */
function identity(p: string): { dev: number; ino: number; mode: number; uid: number } {
  const st = fs.lstatSync(p);
  return { dev: st.dev, ino: st.ino, mode: st.mode, uid: st.uid };
}

/** True if nothing at all is at `p` (not even a dangling symbolic link). */
function absent(p: string): boolean {
  try {
    fs.lstatSync(p);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** The private directories (".qls*") of QLocalServer's rename method left in `dir`. */
function qlsLeftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.startsWith('.qls'));
}

/** A fingerprint of whatever is at `p` (without following a symbolic link), or 'absent'. */
function snapshot(p: string): Record<string, unknown> | 'absent' {
  if (absent(p)) return 'absent';
  const st = fs.lstatSync(p);
  const snap: Record<string, unknown> = {
    dev: st.dev,
    ino: st.ino,
    mode: st.mode,
    uid: st.uid,
    size: st.size,
    mtimeMs: st.mtimeMs,
    nlink: st.nlink,
  };
  if (st.isFile()) snap.content = fs.readFileSync(p, 'utf8');
  if (st.isDirectory()) snap.entries = fs.readdirSync(p).sort();
  if (st.isSymbolicLink()) snap.link = fs.readlinkSync(p);
  return snap;
}

/** Starts fixtures/serve-local.mjs (a QLocalServer in a child node) on `name`. */
async function startChildServer(
  name: string,
  options: number = NoOptions,
): Promise<{ run: ChildRun; report: Record<string, unknown> }> {
  const run = startChild(
    process.execPath,
    nodeWithTsArgs(SERVE_LOCAL, '--path', name, '--options', String(options)),
  );
  res.add(() => run.stop());
  const report = JSON.parse(await run.nextLine(CHILD_START_MS)) as Record<string, unknown>;
  expect(report).toMatchObject({ ok: true, listening: true, fullServerName: name });
  return { run, report };
}

/** A server in a child process on `p`, killed with SIGKILL: its socket file stays behind. */
async function makeStaleSocketBySigkill(p: string): Promise<fs.Stats> {
  const { run } = await startChildServer(p);
  const exit = await run.stop('SIGKILL');
  expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
  const st = fs.lstatSync(p);
  expect(st.isSocket()).toBe(true);
  return st;
}

/** A socket file nobody accepts on, made by a python process that binds and exits. */
async function makeStaleSocketByPython(p: string): Promise<void> {
  const run = startChild(PYTHON, [
    '-c',
    'import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\nprint("bound", flush=True)',
    p,
  ]);
  res.add(() => run.stop());
  expect(await run.nextLine(CHILD_START_MS)).toBe('bound');
  expect(await run.exited).toEqual({ code: 0, signal: null });
  expect(fs.lstatSync(p).isSocket()).toBe(true);
}

/** Waits (bounded) for a child's exit; null if it has not exited within `ms`. */
async function exitWithin(run: ChildRun, ms: number): Promise<ChildExit | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([run.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// -------------------------------------------------------------- another user (nobody)

/** Why a client cannot be run as `nobody` here, or nobody's ids. */
function nobodyIdentity(): { uid: number; gid: number } | string {
  const uid = process.getuid?.();
  if (uid !== 0)
    return `the tests run as uid ${uid}, not root: they cannot start a process as another user`;
  if (!fs.existsSync(PYTHON)) return `${PYTHON} is missing`;
  try {
    const nuid = Number(execFileSync('id', ['-u', 'nobody']).toString().trim());
    const ngid = Number(execFileSync('id', ['-g', 'nobody']).toString().trim());
    if (!Number.isInteger(nuid) || !Number.isInteger(ngid))
      return 'id printed no number for nobody';
    if (nuid === 0 || ngid === 0) return 'user nobody has uid or gid 0';
    return { uid: nuid, gid: ngid };
  } catch (err) {
    return `user nobody does not exist (${(err as Error).message.split('\n')[0]})`;
  }
}

/** Connects to argv[1] with a raw AF_UNIX socket; prints one JSON line with what happened. */
const NOBODY_CLIENT = `
import errno, json, os, socket, sys
out = {'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups()}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    out['error'] = errno.errorcode.get(e.errno, str(e.errno))
    print(json.dumps(out), flush=True)
    sys.exit(0)
out['connected'] = True
s.sendall(b'from-nobody')
data = b''
while len(data) < len(b'echo:from-nobody'):
    chunk = s.recv(100)
    if not chunk:
        break
    data += chunk
out['reply'] = data.decode()
print(json.dumps(out), flush=True)
`;

async function connectAsNobody(
  who: { uid: number; gid: number },
  p: string,
): Promise<Record<string, unknown>> {
  const run = startChild(PYTHON, ['-c', NOBODY_CLIENT, p], {
    uid: who.uid,
    gid: who.gid,
    cwd: '/',
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' },
  });
  res.add(() => run.stop());
  const out = JSON.parse(await run.nextLine(CHILD_START_MS)) as Record<string, unknown>;
  expect(await exitWithin(run, budget(5000))).toEqual({ code: 0, signal: null });
  return out;
}

describe('QLocalServer access options against another user (a client run as nobody)', () => {
  it.each([
    ['UserAccessOption', UserAccessOption, 0o700],
    ['GroupAccessOption', GroupAccessOption, 0o070],
  ])(
    'another user cannot connect to a %s server: EACCES, and the server sees no connection',
    async (_name, option, perm) => {
      const who = nobodyIdentity();
      if (typeof who === 'string') {
        console.log(`qlocal-server-security: cannot run a client as another user: ${who}`);
        expect(who).toMatch(/\S/);
        return;
      }
      const dir = tempDir(0o755); // nobody may traverse it; only the socket's mode decides
      const p = path.join(dir, 'private.sock');
      const server = newServer(option);
      const echo = serveEcho(server);
      expect(await server.listen(p)).toBe(true);
      expect(identity(p)).toMatchObject({ mode: S_IFSOCK | perm, uid: 0 });

      const out = await connectAsNobody(who, p);
      expect(out).toMatchObject({ uid: who.uid, gid: who.gid, error: 'EACCES' });
      expect(out.groups).not.toContain(0);
      await sleep(20); // let any accept that did happen reach the server
      expect(echo.connections()).toBe(0);
      expect(echo.received()).toBe('');

      // The server itself works: its owner (root, this process) is served.
      await expectEcho(p, 'owner');
    },
    T,
  );

  it.each([
    ['WorldAccessOption', WorldAccessOption, 0o777],
    ['OtherAccessOption', OtherAccessOption, 0o007],
  ])(
    'another user connects to a %s server, and the server sees the connection (positive control)',
    async (_name, option, perm) => {
      const who = nobodyIdentity();
      if (typeof who === 'string') {
        console.log(`qlocal-server-security: cannot run a client as another user: ${who}`);
        expect(who).toMatch(/\S/);
        return;
      }
      const dir = tempDir(0o755);
      const p = path.join(dir, 'shared.sock');
      const server = newServer(option);
      const echo = serveEcho(server);
      expect(await server.listen(p)).toBe(true);
      expect(identity(p)).toMatchObject({ mode: S_IFSOCK | perm, uid: 0 });

      const out = await connectAsNobody(who, p);
      expect(out).toMatchObject({
        uid: who.uid,
        gid: who.gid,
        connected: true,
        reply: 'echo:from-nobody',
      });
      expect(echo.connections()).toBe(1);
      expect(echo.received()).toBe('from-nobody');
    },
    T,
  );
});

// ------------------------------------------------------------------------ stale sockets

describe('QLocalServer recovers from a stale socket (its server was killed with SIGKILL)', () => {
  it(
    'a plain listen gets AddressInUseError and leaves the stale file; serverStatus is "stale"; removeStaleServer removes it; then listen succeeds and serves',
    async () => {
      const dir = tempDir();
      const p = path.join(dir, 'crashed.sock');
      await makeStaleSocketBySigkill(p);
      const before = identity(p);

      const server = newServer();
      expect(await server.listen(p)).toBe(false);
      expect(server.serverError()).toBe(SocketError.AddressInUseError);
      expect(server.errorString()).toBe(ADDRESS_IN_USE);
      expect(server.isListening()).toBe(false);
      expect(identity(p)).toEqual(before);

      expect(await QLocalServer.serverStatus(p)).toBe('stale');
      expect(identity(p)).toEqual(before);
      expect((await tryConnect(p)).error).toBe(LocalSocketError.ConnectionRefusedError);

      expect(await QLocalServer.removeStaleServer(p)).toBe(true);
      expect(absent(p)).toBe(true);
      expect(await QLocalServer.serverStatus(p)).toBe('absent');

      const echo = serveEcho(server);
      expect(await server.listen(p)).toBe(true);
      expect(server.fullServerName()).toBe(p);
      expect(fs.lstatSync(p).isSocket()).toBe(true);
      await expectEcho(p, 'recovered');
      expect(echo.received()).toBe('recovered');
      expect(qlsLeftovers(dir)).toEqual([]);
    },
    T,
  );

  it.each([
    ['UserAccessOption', UserAccessOption, 0o700],
    ['WorldAccessOption', WorldAccessOption, 0o777],
  ])(
    "with %s a new server replaces the stale socket directly (Qt's rename), with the option's mode",
    async (_name, option, perm) => {
      const dir = tempDir();
      const p = path.join(dir, 'crashed.sock');
      const stale = await makeStaleSocketBySigkill(p);

      const server = newServer(option);
      serveEcho(server);
      expect(await server.listen(p)).toBe(true);
      expect(server.isListening()).toBe(true);
      const st = fs.lstatSync(p);
      expect(st.isSocket()).toBe(true);
      expect(st.mode).toBe(S_IFSOCK | perm);
      expect(st.ino).not.toBe(stale.ino);
      expect(await QLocalServer.serverStatus(p)).toBe('live');
      await expectEcho(p, 'replaced');
      expect(qlsLeftovers(dir)).toEqual([]);
    },
    T,
  );
});

// ---------------------------------------------------------------------- live servers

describe("QLocalServer never removes or replaces a live server's socket", () => {
  it.each([
    ['a server in another process (no options)', 'child', NoOptions],
    ['a server in this process (UserAccessOption)', 'here', UserAccessOption],
  ])(
    '%s: serverStatus is live, removeStaleServer false, listen with any access option gets AddressInUseError; the file stays and the first server still serves',
    async (_name, where, firstOptions) => {
      const dir = tempDir();
      const p = path.join(dir, 'live.sock');
      if (where === 'child') {
        await startChildServer(p, firstOptions);
      } else {
        const first = newServer(firstOptions);
        serveEcho(first);
        expect(await first.listen(p)).toBe(true);
      }
      const before = identity(p);
      await expectEcho(p, 'first');

      expect(await QLocalServer.serverStatus(p)).toBe('live');
      expect(await QLocalServer.removeStaleServer(p)).toBe(false);
      expect(identity(p)).toEqual(before);
      await expectEcho(p, 'after-removeStaleServer');

      for (const [optionName, option] of ACCESS_CASES) {
        const second = newServer(option);
        const ok = await second.listen(p);
        expect({
          optionName,
          ok,
          listening: second.isListening(),
          error: second.serverError(),
          text: second.errorString(),
        }).toEqual({
          optionName,
          ok: false,
          listening: false,
          error: SocketError.AddressInUseError,
          text: ADDRESS_IN_USE,
        });
        second.close(); // closing the failed server must not touch the live file either
        expect({ optionName, file: identity(p) }).toEqual({ optionName, file: before });
      }
      expect(qlsLeftovers(dir)).toEqual([]);
      await expectEcho(p, 'after-failed-listens');
      expect(await QLocalServer.serverStatus(p)).toBe('live');
    },
    T,
  );
});

// ------------------------------------------------------------ paths that are not sockets

interface NotSocketCase {
  /** Paths to fingerprint before and after (the server path first). */
  watched: string[];
  /** A live server behind the path, which must still serve afterwards. */
  liveTarget?: string;
}

const NOT_SOCKET_KINDS: Array<[string, (dir: string, p: string) => Promise<NotSocketCase>]> = [
  [
    'a regular file',
    async (_dir, p) => {
      fs.writeFileSync(p, 'precious data\n', { mode: 0o644 });
      return { watched: [p] };
    },
  ],
  [
    'a directory (with a file in it)',
    async (_dir, p) => {
      fs.mkdirSync(p, { mode: 0o755 });
      fs.writeFileSync(path.join(p, 'inside.txt'), 'inside\n');
      return { watched: [p, path.join(p, 'inside.txt')] };
    },
  ],
  [
    'a symbolic link to a regular file',
    async (dir, p) => {
      const target = path.join(dir, 'target.txt');
      fs.writeFileSync(target, 'target data\n', { mode: 0o600 });
      fs.symlinkSync(target, p);
      return { watched: [p, target] };
    },
  ],
  [
    'a symbolic link to a live socket',
    async (dir, p) => {
      const target = path.join(dir, 'live-target.sock');
      const live = newServer();
      serveEcho(live);
      expect(await live.listen(target)).toBe(true);
      fs.symlinkSync(target, p);
      return { watched: [p, target], liveTarget: target };
    },
  ],
  [
    'a symbolic link to a stale socket',
    async (dir, p) => {
      const target = path.join(dir, 'stale-target.sock');
      await makeStaleSocketByPython(target);
      fs.symlinkSync(target, p);
      return { watched: [p, target] };
    },
  ],
  [
    'a dangling symbolic link',
    async (dir, p) => {
      const target = path.join(dir, 'nothing-here.sock');
      fs.symlinkSync(target, p);
      return { watched: [p, target] };
    },
  ],
];

describe('QLocalServer never removes or follows a path that is not a socket', () => {
  it.each(NOT_SOCKET_KINDS)(
    '%s at the server path: listen with and without access options fails with AddressInUseError; removeServer and removeStaleServer return false; serverStatus is "not-a-socket"; nothing changes',
    async (_kind, make) => {
      const dir = tempDir();
      const p = path.join(dir, 'server-path');
      const made = await make(dir, p);
      const before = made.watched.map(snapshot);
      const dirBefore = fs.readdirSync(dir).sort();
      const unchanged = (): void => {
        expect(made.watched.map(snapshot)).toEqual(before);
        expect(fs.readdirSync(dir).sort()).toEqual(dirBefore);
      };

      for (const [optionName, option] of ACCESS_CASES) {
        const server = newServer(option);
        const ok = await server.listen(p);
        expect({
          optionName,
          ok,
          listening: server.isListening(),
          error: server.serverError(),
          text: server.errorString(),
        }).toEqual({
          optionName,
          ok: false,
          listening: false,
          error: SocketError.AddressInUseError,
          text: ADDRESS_IN_USE,
        });
        server.close();
        unchanged();
      }

      expect(QLocalServer.removeServer(p)).toBe(false);
      unchanged();
      expect(await QLocalServer.removeStaleServer(p)).toBe(false);
      unchanged();
      expect(await QLocalServer.serverStatus(p)).toBe('not-a-socket');
      unchanged();
      expect(qlsLeftovers(dir)).toEqual([]);
      if (made.liveTarget) await expectEcho(made.liveTarget, 'still-live');
    },
    T,
  );
});

// --------------------------------------------------------------- no looser moment, ever

/**
 * Polls os.lstat(target) (and the .qls* entries of parent) until stdin ends; prints SEEN
 * when something appears at target and GONE when it goes, and at the end the modes seen.
 */
const MODE_WATCHER = `
import json, os, sys, threading, time
target, parent, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
stop = threading.Event()
def wait_stdin():
    sys.stdin.read()
    stop.set()
threading.Thread(target=wait_stdin, daemon=True).start()
modes, qls = {}, {}
samples = 0
present = False
print('READY', flush=True)
deadline = time.monotonic() + limit
while not stop.is_set() and time.monotonic() < deadline:
    samples += 1
    try:
        m = os.lstat(target).st_mode
        modes[m] = modes.get(m, 0) + 1
        if not present:
            present = True
            print('SEEN', flush=True)
    except FileNotFoundError:
        if present:
            present = False
            print('GONE', flush=True)
    try:
        for e in os.scandir(parent):
            if e.name.startswith('.qls'):
                try:
                    qm = e.stat(follow_symlinks=False).st_mode
                except FileNotFoundError:
                    continue
                qls[qm] = qls.get(qm, 0) + 1
    except FileNotFoundError:
        pass
print(json.dumps({'samples': samples, 'modes': {str(k): v for k, v in modes.items()},
                  'qls': {str(k): v for k, v in qls.items()}}), flush=True)
`;

describe('QLocalServer with UserAccessOption has no looser window', () => {
  it.each([
    ['a short path (private directory, then rename)', false],
    ['a path near the 107-byte limit (no room for the private directory)', true],
  ])(
    'the socket never appears at %s with a mode other than 0700, over 20 listen/close rounds; no .qls directory is left after listen, close or a failed listen',
    async (_name, nearLimit) => {
      const dir = tempDir();
      let parent = dir;
      if (nearLimit) {
        parent = path.join(dir, 'd'.repeat(100 - dir.length - 1));
        fs.mkdirSync(parent);
        // The private directory's socket would not fit in sun_path: the other method runs.
        expect(Buffer.byteLength(path.join(parent, '.qlsXXXXXX', 's'))).toBeGreaterThan(107);
      }
      const p = path.join(parent, 's');
      expect(Buffer.byteLength(p)).toBeLessThanOrEqual(107);

      const watcher = startChild(PYTHON, ['-c', MODE_WATCHER, p, parent, '120']);
      res.add(() => watcher.stop());
      expect(await watcher.nextLine(CHILD_START_MS)).toBe('READY');
      // Each socket stays in place until the watcher has seen it, and each is gone for the
      // watcher before the next appears: every round is observed, however busy the machine.
      const watcherSaw = async (change: 'SEEN' | 'GONE'): Promise<void> => {
        expect(await watcher.nextLine(budget(5000))).toBe(change);
      };

      for (let round = 0; round < 20; round++) {
        const server = newServer(UserAccessOption);
        const ok = await server.listen(p);
        expect({ round, ok, error: server.errorString() }).toEqual({ round, ok: true, error: '' });
        expect({ round, mode: fs.lstatSync(p).mode }).toEqual({ round, mode: S_IFSOCK | 0o700 });
        expect(qlsLeftovers(parent)).toEqual([]);
        await watcherSaw('SEEN');
        server.close();
        expect({ round, absent: absent(p) }).toEqual({ round, absent: true });
        expect(qlsLeftovers(parent)).toEqual([]);
        await watcherSaw('GONE');
      }

      // Failed listens leave nothing behind either: the path is taken by a live server...
      const holder = newServer(UserAccessOption);
      expect(await holder.listen(p)).toBe(true);
      await watcherSaw('SEEN');
      for (const option of [UserAccessOption, WorldAccessOption]) {
        const loser = newServer(option);
        expect(await loser.listen(p)).toBe(false);
        expect(loser.serverError()).toBe(SocketError.AddressInUseError);
        expect(qlsLeftovers(parent)).toEqual([]);
      }
      holder.close();
      await watcherSaw('GONE');
      // ... or its directory does not exist.
      const missing = newServer(UserAccessOption);
      expect(await missing.listen(path.join(parent, 'missing', 's'))).toBe(false);
      expect(missing.serverError()).toBe(SocketError.HostNotFoundError);
      expect(qlsLeftovers(parent)).toEqual([]);
      expect(fs.readdirSync(parent)).toEqual([]);

      watcher.proc.stdin!.end();
      const report = JSON.parse(await watcher.nextLine(budget(5000))) as {
        samples: number;
        modes: Record<string, number>;
        qls: Record<string, number>;
      };
      const modesSeen = Object.keys(report.modes).map(Number);
      // Everything ever seen at the path was a socket with mode 0700 ...
      expect(modesSeen.map((m) => '0o' + m.toString(8))).toEqual(['0o140700']);
      // ... and private directories, when caught, were 0700 as well.
      const qlsModes = Object.keys(report.qls).map((m) => '0o' + Number(m).toString(8));
      for (const m of qlsModes) expect(m).toBe('0o' + (S_IFDIR | 0o700).toString(8));
      expect(await exitWithin(watcher, budget(5000))).toEqual({ code: 0, signal: null });
    },
    T,
  );
});

// --------------------------------------------------------------- close() and ownership

describe('QLocalServer.close() removes only its own socket file', () => {
  it.each([
    ['NoOptions', NoOptions, false],
    ['UserAccessOption', UserAccessOption, false],
    ['UserAccessOption, path near the 107-byte limit', UserAccessOption, true],
  ])(
    "(%s) after the file was replaced by another server's socket, closing the first server leaves the second's file, which still serves",
    async (_name, option, nearLimit) => {
      const p = socketPathIn(tempDir(), nearLimit);
      const first = newServer(option);
      expect(await first.listen(p)).toBe(true);
      const firstFile = identity(p);

      expect(QLocalServer.removeServer(p)).toBe(true);
      expect(absent(p)).toBe(true);
      const second = newServer(option);
      const echo = serveEcho(second);
      expect(await second.listen(p)).toBe(true);
      const secondFile = identity(p);
      expect(secondFile.ino).not.toBe(firstFile.ino); // the first socket still holds its inode

      first.close();
      expect(first.isListening()).toBe(false);
      expect(absent(p) ? "the second server's file was removed" : identity(p)).toEqual(secondFile);
      await expectEcho(p, 'second');
      expect(echo.received()).toBe('second');
      expect(await QLocalServer.serverStatus(p)).toBe('live');
    },
    T,
  );

  it.each([
    ['NoOptions', NoOptions, false],
    ['UserAccessOption', UserAccessOption, false],
    ['UserAccessOption, path near the 107-byte limit', UserAccessOption, true],
  ])(
    '(%s) after the file was replaced by a regular file, close() leaves that file alone',
    async (_name, option, nearLimit) => {
      const p = socketPathIn(tempDir(), nearLimit);
      const server = newServer(option);
      expect(await server.listen(p)).toBe(true);
      expect(QLocalServer.removeServer(p)).toBe(true);
      fs.writeFileSync(p, 'not yours\n');
      const before = snapshot(p);
      server.close();
      expect(snapshot(p)).toEqual(before);
    },
    T,
  );
});

// ------------------------------------------------------------------ socket activation

/** Without systemd-socket-activate: binds argv[1], puts it at descriptor 3 and execs argv[2:]. */
const ACTIVATE_PY = `
import os, socket, sys
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(p)
s.listen(16)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ['LISTEN_FDS'] = '1'
os.environ['LISTEN_PID'] = str(os.getpid())
sys.stderr.write('Listening on %s as 3.\\n' % p)
sys.stderr.flush()
os.execv(sys.argv[2], sys.argv[2:])
`;

describe('QLocalServer.listen(fd): socket activation', () => {
  it(
    'serves on descriptor 3 passed by systemd-socket-activate: fullServerName() is the path, serverName() its last component, data flows both ways',
    async () => {
      const dir = tempDir();
      const p = path.join(dir, 'activated.sock');
      const nodeArgs = [process.execPath, ...nodeWithTsArgs(SERVE_LOCAL, '--fd', '3')];
      let run: ChildRun;
      if (fs.existsSync(SOCKET_ACTIVATE)) {
        run = startChild(SOCKET_ACTIVATE, ['-l', p, ...nodeArgs]);
      } else {
        console.log(
          `qlocal-server-security: ${SOCKET_ACTIVATE} is missing (Debian package systemd); a python parent passes the listening descriptor instead`,
        );
        run = startChild(PYTHON, ['-c', ACTIVATE_PY, p, ...nodeArgs]);
      }
      res.add(() => run.stop());
      await waitUntil(
        () => run.stderr().includes('Listening on') || !run.running(),
        CHILD_START_MS,
        'the activator to listen',
      );
      expect(run.running()).toBe(true);
      expect(fs.lstatSync(p).isSocket()).toBe(true);

      // systemd-socket-activate starts the program on the first connection.
      const c = res.socket(new QLocalSocket());
      c.connectToServer(p);
      expect(await c.waitForConnected(5000)).toBe(true);
      const report = JSON.parse(await run.nextLine(CHILD_START_MS)) as Record<string, unknown>;
      expect(report).toMatchObject({
        ok: true,
        listening: true,
        fullServerName: p,
        serverName: 'activated.sock',
        descriptor: 3,
        listenFds: '1',
        error: SocketError.UnknownSocketError,
        errorString: '',
      });
      c.write('ping');
      expect(await readAtLeast(c, 'echo:ping'.length, 10000)).toBe('echo:ping');
      await expectEcho(p, 'second-client');

      run.proc.stdin!.end();
      expect(await exitWithin(run, budget(5000))).toEqual({ code: 0, signal: null });
    },
    T,
  );
});

// ------------------------------------------------------------------ abstract namespace

/** Connects to the abstract address b"\\0" + argv[1] (Qt's length), sends argv[2], prints the reply. */
const ABSTRACT_RAW_CLIENT = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(b'\\0' + sys.argv[1].encode())
except OSError as e:
    print(json.dumps({'connected': False, 'error': str(e)}), flush=True)
    sys.exit(0)
tag = sys.argv[2].encode()
s.sendall(tag)
data = b''
while len(data) < len(tag) + 5:
    chunk = s.recv(100)
    if not chunk:
        break
    data += chunk
print(json.dumps({'connected': True, 'reply': data.decode()}), flush=True)
`;

/** Listens on the abstract address b"\\0" + argv[1] (Qt's length); echoes "echo:<data>" until stdin ends. */
const ABSTRACT_RAW_SERVER = `
import socket, sys, threading
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(b'\\0' + sys.argv[1].encode())
s.listen(8)
print('READY', flush=True)
def serve():
    while True:
        c, _ = s.accept()
        data = c.recv(100)
        c.sendall(b'echo:' + data)
threading.Thread(target=serve, daemon=True).start()
sys.stdin.read()
`;

/** Real Qt 6: a QLocalSocket with AbstractNamespaceOption to argv[1]; sends argv[2], prints the reply. */
const QT6_ABSTRACT_CLIENT = `
import json, sys
from PyQt6.QtCore import QCoreApplication
from PyQt6.QtNetwork import QLocalSocket
app = QCoreApplication([])
c = QLocalSocket()
c.setSocketOptions(QLocalSocket.SocketOption.AbstractNamespaceOption)
c.connectToServer(sys.argv[1])
ok = c.waitForConnected(3000)
reply = b''
if ok:
    tag = sys.argv[2].encode()
    c.write(tag)
    c.waitForBytesWritten(3000)
    while len(reply) < len(tag) + 5 and c.waitForReadyRead(3000):
        reply += bytes(c.readAll())
print(json.dumps({'connected': ok, 'error': '' if ok else c.errorString(), 'reply': reply.decode()}), flush=True)
`;

/**
 * True if Node binds an abstract Unix-socket name padded with NULs to the whole sun_path
 * (seen as trailing '@'s in /proc/net/unix). Binding a Unix socket is synchronous in Node.
 */
function nodePadsAbstractNames(): boolean {
  const name = `qtport-pad-probe-${process.pid}`;
  const server = net.createServer();
  try {
    server.listen({ path: `\0${name}` });
    const line = fs
      .readFileSync('/proc/net/unix', 'utf8')
      .split('\n')
      .find((l) => l.includes(`@${name}`));
    return line !== undefined && !line.trimEnd().endsWith(`@${name}`);
  } catch {
    return false;
  } finally {
    server.close();
  }
}

describe('QLocalServer in the abstract namespace (Linux)', () => {
  const itLinux = process.platform === 'linux' ? it : it.skip;
  if (process.platform !== 'linux') {
    console.log('qlocal-server-security: the abstract namespace exists on Linux only; skipped');
  }

  itLinux(
    'AbstractNamespaceOption: no file at fullServerName(); a QLocalSocket with AbstractNamespaceOption connects; a plain QLocalSocket gets ServerNotFoundError',
    async () => {
      const dir = tempDir();
      const full = path.join(dir, 'abstract.sock');

      const server = newServer(LocalServerSocketOption.AbstractNamespaceOption);
      const echo = serveEcho(server);
      expect(await server.listen(full)).toBe(true);
      expect(server.serverName()).toBe(full);
      expect(server.fullServerName()).toBe(full);
      expect(absent(full)).toBe(true);
      expect(fs.readdirSync(dir)).toEqual([]);
      await expectEcho(full, 'abstract', LocalSocketOption.AbstractNamespaceOption);
      expect(echo.received()).toBe('abstract');

      expect(await tryConnect(full)).toEqual({
        connected: false,
        error: LocalSocketError.ServerNotFoundError,
        text: 'QLocalSocket::connectToServer: Invalid name',
        state: LocalSocketState.UnconnectedState,
      });
      expect(fs.readdirSync(dir)).toEqual([]);

      server.close();
      expect(fs.readdirSync(dir)).toEqual([]);
      expect((await tryConnect(full, LocalSocketOption.AbstractNamespaceOption)).error).toBe(
        LocalSocketError.ConnectionRefusedError,
      );
    },
    T,
  );

  itLinux(
    'AbstractNamespaceOption with a relative name: fullServerName() is the name in the temp directory, where no file appears; an abstract client connects by the name',
    async () => {
      const name = `qls-abstract-${process.pid}-${Date.now()}`;
      const full = path.join(os.tmpdir(), name);
      const server = newServer(LocalServerSocketOption.AbstractNamespaceOption);
      serveEcho(server);
      expect(await server.listen(name)).toBe(true);
      expect(server.serverName()).toBe(name);
      expect(server.fullServerName()).toBe(full);
      expect(absent(full)).toBe(true);
      await expectEcho(name, 'by-name', LocalSocketOption.AbstractNamespaceOption);
      expect((await tryConnect(name)).error).toBe(LocalSocketError.ServerNotFoundError);
      server.close();
      expect(absent(full)).toBe(true);
    },
    T,
  );

  // Node 20 (libuv 1.46) binds and connects an abstract name NUL-padded to the whole
  // sun_path, which is a different address from Qt's: the port then interoperates in the
  // abstract namespace only with itself (docs/qt-differences.md). The Qt-address tests
  // below run where Node uses the exact length.
  const pads = process.platform === 'linux' && nodePadsAbstractNames();
  const qtAbstractSkip =
    process.platform !== 'linux'
      ? 'the abstract namespace exists on Linux only'
      : pads
        ? "this Node pads abstract socket names to the full sun_path, so Qt's exact-length " +
          'abstract addresses cannot be reached (docs/qt-differences.md)'
        : null;
  /** `it`, or `it.skip` with the reason printed for this test. */
  const itQtAbstract = (title: string, fn: () => Promise<void>, timeout?: number): void => {
    if (qtAbstractSkip === null) {
      it(title, fn, timeout);
      return;
    }
    console.log(`qlocal-server-security: skipped "${title}": ${qtAbstractSkip}`);
    it.skip(title, fn, timeout);
  };

  // Qt binds an abstract name as exactly its bytes (address length = offsetof(sun_path) + 1 +
  // name length); /proc/net/unix then shows "@<path>". A peer that uses another length (for
  // example the whole 108-byte sun_path, NUL-padded) is a different address: Qt's clients
  // get "Connection refused". These tests speak Qt's address with a raw socket, and with
  // real Qt 6 (PyQt6) when it is installed.
  itQtAbstract(
    "AbstractNamespaceOption binds Qt's address (the path's bytes, no padding): /proc/net/unix shows \"@<path>\" and a raw client using Qt's address length connects",
    async () => {
      const full = path.join(tempDir(), 'qt-abstract.sock');
      const server = newServer(LocalServerSocketOption.AbstractNamespaceOption);
      const echo = serveEcho(server);
      expect(await server.listen(full)).toBe(true);

      const addresses = fs
        .readFileSync('/proc/net/unix', 'utf8')
        .split('\n')
        .map((line) => line.trim().split(/\s+/)[7] ?? '')
        .filter((a) => a.startsWith(`@${full}`));
      expect(addresses).toEqual([`@${full}`]);

      const client = startChild(PYTHON, ['-c', ABSTRACT_RAW_CLIENT, full, 'raw']);
      res.add(() => client.stop());
      expect(JSON.parse(await client.nextLine(CHILD_START_MS))).toEqual({
        connected: true,
        reply: 'echo:raw',
      });
      expect(echo.received()).toBe('raw');
    },
    T,
  );

  itQtAbstract(
    'a real Qt 6 QLocalSocket (PyQt6) with AbstractNamespaceOption connects to an AbstractNamespaceOption server and exchanges data',
    async () => {
      const hasPyQt6 =
        fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import PyQt6.QtNetwork']).status === 0;
      if (!hasPyQt6) {
        console.log(
          'qlocal-server-security: PyQt6 is not installed (apt-get install -y --no-install-recommends python3-pyqt6); the Qt 6 peer test cannot run',
        );
        expect(hasPyQt6).toBe(false);
        return;
      }
      const full = path.join(tempDir(), 'qt6-abstract.sock');
      const server = newServer(LocalServerSocketOption.AbstractNamespaceOption);
      const echo = serveEcho(server);
      expect(await server.listen(full)).toBe(true);

      const client = startChild(PYTHON, ['-c', QT6_ABSTRACT_CLIENT, full, 'qt6']);
      res.add(() => client.stop());
      expect(JSON.parse(await client.nextLine(CHILD_START_MS))).toEqual({
        connected: true,
        error: '',
        reply: 'echo:qt6',
      });
      expect(echo.received()).toBe('qt6');
    },
    T,
  );

  itQtAbstract(
    "a QLocalSocket with AbstractNamespaceOption reaches a server bound at Qt's abstract address (a raw socket, exact length)",
    async () => {
      const full = path.join(tempDir(), 'raw-abstract.sock');
      const peer = startChild(PYTHON, ['-c', ABSTRACT_RAW_SERVER, full]);
      res.add(() => peer.stop());
      expect(await peer.nextLine(CHILD_START_MS)).toBe('READY');
      await expectEcho(full, 'to-qt-address', LocalSocketOption.AbstractNamespaceOption);
    },
    T,
  );
});

// ---------------------------------------------------------------------- long paths

describe('QLocalServer refuses socket paths too long for sun_path, never truncates them', () => {
  it(
    'a 150-byte path: listen (with and without access options) fails with HostNotFoundError and creates nothing, not even a truncated name; a QLocalSocket gets ServerNotFoundError',
    async () => {
      const dir = tempDir();
      const long = path.join(dir, 'L'.repeat(150 - dir.length - 1));
      expect(Buffer.byteLength(long)).toBe(150);
      const base = path.basename(long);

      for (const [optionName, option] of ACCESS_CASES) {
        const server = newServer(option);
        const ok = await server.listen(long);
        expect({
          optionName,
          ok,
          listening: server.isListening(),
          error: server.serverError(),
        }).toEqual({
          optionName,
          ok: false,
          listening: false,
          error: SocketError.HostNotFoundError,
        });
        expect(server.errorString()).toMatch(/^QLocalServer::listen: Name error/);
        // Node would have bound the first 107 bytes of the path.
        expect({
          optionName,
          entries: fs.readdirSync(dir).filter((n) => base.startsWith(n) || n.startsWith('.qls')),
        }).toEqual({ optionName, entries: [] });
      }
      expect(fs.readdirSync(dir)).toEqual([]);

      // A client does not reach the server behind the truncated name either.
      const truncated = long.slice(0, 107);
      const server107 = newServer();
      const echo = serveEcho(server107);
      expect(await server107.listen(truncated)).toBe(true); // exactly 107 bytes fits
      expect(server107.fullServerName()).toBe(truncated);
      expect(await tryConnect(long)).toEqual({
        connected: false,
        error: LocalSocketError.ServerNotFoundError,
        text: 'QLocalSocket::connectToServer: Invalid name',
        state: LocalSocketState.UnconnectedState,
      });
      await sleep(20);
      expect(echo.connections()).toBe(0);

      // And the long name is refused as a name, not reported as the truncated one in use.
      const again = newServer();
      expect(await again.listen(long)).toBe(false);
      expect(again.serverError()).toBe(SocketError.HostNotFoundError);
      await expectEcho(truncated, 'still-107');
    },
    T,
  );

  it(
    '108 bytes, or 107 characters that take more than 107 bytes in UTF-8, are refused too',
    async () => {
      const dir = tempDir();
      const p108 = path.join(dir, 'x'.repeat(108 - dir.length - 1));
      expect(Buffer.byteLength(p108)).toBe(108);
      const wide = path.join(dir, 'é'.repeat(Math.ceil((107 - dir.length) / 2) + 1));
      expect(wide.length).toBeLessThanOrEqual(107);
      expect(Buffer.byteLength(wide)).toBeGreaterThan(107);
      for (const p of [p108, wide]) {
        for (const option of [NoOptions, UserAccessOption]) {
          const server = newServer(option);
          expect(await server.listen(p)).toBe(false);
          expect(server.serverError()).toBe(SocketError.HostNotFoundError);
        }
        expect((await tryConnect(p)).error).toBe(LocalSocketError.ServerNotFoundError);
      }
      expect(fs.readdirSync(dir)).toEqual([]);
    },
    T,
  );
});
