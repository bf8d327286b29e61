/**
 * Bare local names live in this user's private directory, `<tmpdir>/nestjs-qt-<uid>` (mode
 * 0700), never in the shared temp directory (docs/reliability.md, "Local sockets: who is
 * listening"). Servers and clients run as child processes (fixtures/local-name.ts), each
 * with this test's own TMPDIR (mode 1777, like /tmp): Jest's sandbox has its own copy of
 * process.env, and nothing here may touch the machine's real private directory. Where the
 * tests run as root, a real process of another user (uid 65534) plays the squatter.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';

import { InvalidOptionError, resolveQtOptions } from '../../lib/index.js';
import { nodeWithTsArgs, startChild, type ChildRun } from '../helpers/child-process.js';
import { CHILD_START_MS } from '../helpers/time-budget.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/local-name.ts');
const UID = process.getuid!();
const OTHER_UID = 65534;
let tmp = '';
const children: ChildRun[] = [];

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'qt-local-path-'));
  chmodSync(tmp, 0o1777);
});

afterEach(async () => {
  for (const child of children.splice(0)) await child.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** This test's private directory (what the children compute; checked by 'where'). */
const privateDir = (): string => path.join(tmp, `nestjs-qt-${UID}`);

/** Runs the fixture in `mode` with this test's TMPDIR; resolves its first JSON line. */
async function fixture(
  mode: 'where' | 'serve' | 'call',
  name: string,
): Promise<{ run: ChildRun; line: Record<string, unknown> }> {
  const run = startChild(process.execPath, nodeWithTsArgs(FIXTURE, mode, name), {
    env: { ...process.env, TMPDIR: tmp },
  });
  children.push(run);
  let text: string;
  try {
    text = await run.nextLine(CHILD_START_MS);
  } catch (err) {
    throw new Error(`${mode} printed nothing; stderr: ${run.stderr()}`, { cause: err });
  }
  return { run, line: JSON.parse(text) as Record<string, unknown> };
}

/** Starts a server on `name`; resolves it once it listens (fails the test otherwise). */
async function serve(name: string): Promise<{ run: ChildRun; path: string }> {
  const { run, line } = await fixture('serve', name);
  expect(line).toMatchObject({ event: 'ready' });
  return { run, path: line.path as string };
}

/** Stops a server started by `serve` the polite way (stdin ends: it closes, then exits). */
async function stopServer(run: ChildRun): Promise<void> {
  run.proc.stdin!.end();
  expect(await run.exited).toEqual({ code: 0, signal: null });
}

/** Runs a command as uid 65534 (a real other user); resolves its stdout. */
function asOtherUser(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      uid: OTHER_UID,
      gid: OTHER_UID,
      env: { TMPDIR: tmp, PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`)),
    );
  });
}

const asRoot = UID === 0;
const skipReason = asRoot ? null : `runs as uid ${UID}, cannot start a process of another user`;
if (skipReason) console.log(`other-user cases skipped: ${skipReason}`);
const rootIt = asRoot ? it : it.skip;

describe('localServerPath', () => {
  it('puts a bare name in <tmpdir>/nestjs-qt-<uid> and leaves an absolute path alone, without touching the disk', async () => {
    expect((await fixture('where', 'orders')).line).toEqual({
      dir: privateDir(),
      path: path.join(privateDir(), 'orders'),
    });
    expect((await fixture('where', '/run/app/orders.sock')).line.path).toBe('/run/app/orders.sock');
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe('a bare name over ServerQt and ClientQt', () => {
  it('the server makes the private directory (0700, this uid) and listens inside it; a client of the same user finds it; nothing is left in the shared directory', async () => {
    const server = await serve('orders');
    const stat = lstatSync(privateDir());
    expect(stat.isDirectory()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o700);
    expect(stat.uid).toBe(UID);
    expect(server.path).toBe(path.join(privateDir(), 'orders'));
    expect(lstatSync(server.path).isSocket()).toBe(true);
    expect(readdirSync(tmp)).toEqual([`nestjs-qt-${UID}`]);
    expect((await fixture('call', 'orders')).line).toMatchObject({
      event: 'result',
      value: { from: expect.any(Number) },
    });
    await stopServer(server.run);
    // Closing removes the socket; the directory stays for the next server.
    expect(readdirSync(privateDir())).toEqual([]);
    const again = await serve('orders');
    await stopServer(again.run);
  });

  it('a client never creates the directory: with none, it fails with ServerNotFoundError', async () => {
    expect((await fixture('call', 'orders')).line).toMatchObject({
      event: 'error',
      error: { class: 'QtConnectionError', code: 'ServerNotFoundError' },
    });
    expect(existsSync(privateDir())).toBe(false);
  });
});

/** Server and client both refuse the directory; it is left exactly as it was. */
async function expectRefused(reason: RegExp): Promise<void> {
  const dir = privateDir();
  const before = lstatSync(dir);
  const listen = (await fixture('serve', 'orders')).line;
  expect(listen).toMatchObject({
    event: 'listen-error',
    error: { class: 'UnsafeSocketDirectoryError', code: 'QT_UNSAFE_SOCKET_DIRECTORY', path: dir },
  });
  expect((listen.error as { message: string }).message).toMatch(reason);
  expect((await fixture('call', 'orders')).line).toMatchObject({
    event: 'error',
    error: { class: 'UnsafeSocketDirectoryError', code: 'QT_UNSAFE_SOCKET_DIRECTORY' },
  });
  const after = lstatSync(dir);
  expect([after.mode, after.uid, after.ino]).toEqual([before.mode, before.uid, before.ino]);
}

describe('an unsafe private directory is refused by server and client, and left as it is', () => {
  it('a symbolic link (to a directory someone else chose)', async () => {
    const target = path.join(tmp, 'elsewhere');
    mkdirSync(target, { mode: 0o700 });
    symlinkSync(target, privateDir());
    await expectRefused(/symbolic link/);
    expect(readdirSync(target)).toEqual([]);
  });

  it('a regular file', async () => {
    writeFileSync(privateDir(), 'x');
    await expectRefused(/not a directory/);
  });

  it.each(['755', '777', '710'])('a directory of this user with mode 0%s', async (mode) => {
    mkdirSync(privateDir());
    chmodSync(privateDir(), parseInt(mode, 8));
    await expectRefused(new RegExp(`mode is 0${mode}`));
    expect(readdirSync(privateDir())).toEqual([]);
  });

  rootIt('a 0700 directory that another user (uid 65534) made first', async () => {
    await asOtherUser(`require('fs').mkdirSync(${JSON.stringify(privateDir())}, { mode: 0o700 })`);
    expect(lstatSync(privateDir()).uid).toBe(OTHER_UID);
    await expectRefused(/belongs to uid 65534/);
  });
});

describe('a squatter (a real process of uid 65534) against a bare name', () => {
  rootIt(
    "cannot listen in the private directory; listening at Qt's shared path changes nothing: the server starts and the client reaches it",
    async () => {
      const server = await serve('orders');
      // Qt's rule would have put 'orders' at <tmpdir>/orders: the squatter takes that path,
      // and tries the private directory too.
      const squatter = await asOtherUser(`
      const net = require('net');
      const tryListen = (p) => new Promise((resolve) => {
        const s = net.createServer();
        s.once('error', (e) => resolve(e.code));
        s.listen(p, () => resolve('listening'));
      });
      (async () => {
        const shared = await tryListen(${JSON.stringify(path.join(tmp, 'orders'))});
        const inside = await tryListen(${JSON.stringify(path.join(privateDir(), 'evil'))});
        console.log(JSON.stringify({ shared, inside }));
        process.exit(0);
      })();
    `);
      expect(JSON.parse(squatter)).toEqual({ shared: 'listening', inside: 'EACCES' });
      expect((await fixture('call', 'orders')).line).toMatchObject({
        event: 'result',
        value: { from: expect.any(Number) },
      });
      await stopServer(server.run);
    },
  );
});

describe('socketAccess with a bare name', () => {
  it('anything beyond the owner is an InvalidOptionError for a server (others cannot enter the directory); an absolute name takes it; a client ignores it', () => {
    for (const access of [['group'], ['user', 'other'], ['world']]) {
      expect(() =>
        resolveQtOptions(
          { transport: 'local', name: 'orders', socketAccess: access as ['group'] },
          'server',
        ),
      ).toThrow(InvalidOptionError);
    }
    expect(() =>
      resolveQtOptions({ transport: 'local', name: 'orders', socketAccess: ['world'] }, 'server'),
    ).toThrow(/socketAccess.*private directory/);
    expect(
      resolveQtOptions(
        { transport: 'local', name: '/run/app/orders.sock', socketAccess: ['group'] },
        'server',
      ).socketAccess,
    ).toEqual(['group']);
    expect(
      resolveQtOptions({ transport: 'local', name: 'orders', socketAccess: ['user'] }, 'server')
        .socketAccess,
    ).toEqual(['user']);
  });
});
