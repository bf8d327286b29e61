/**
 * Real proxy servers for tests, on loopback: dante (SOCKS5, with BIND and username
 * authentication against system users), microsocks (SOCKS5 CONNECT), tinyproxy (HTTP
 * CONNECT, Basic authentication) as child processes, and npm's `proxy` package (HTTP
 * CONNECT) in this process. Each server gets a free port, its own generated configuration in
 * a private temporary directory, and is stopped by PID (SIGTERM, then SIGKILL) with its exit
 * awaited, so no process, file or directory outlives the test file. See /work/shared/PEERS.md
 * for how these servers behave here.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { createProxy } from 'proxy';

/** Where the Debian packages put the servers' binaries. */
const BINARIES = {
  danted: ['/usr/sbin/danted', '/usr/bin/danted'],
  microsocks: ['/usr/bin/microsocks', '/usr/local/bin/microsocks'],
  tinyproxy: ['/usr/bin/tinyproxy', '/usr/sbin/tinyproxy', '/usr/local/bin/tinyproxy'],
} as const;

export type ProxyBinary = keyof typeof BINARIES;

/**
 * The binary's path, or null if it is not installed. `QT_TEST_HIDE_BINARIES=danted,tinyproxy`
 * makes the named binaries count as missing (to check that their tests skip with a reason).
 */
export function findBinary(name: ProxyBinary): string | null {
  const hidden = (process.env.QT_TEST_HIDE_BINARIES ?? '').split(',').map((n) => n.trim());
  if (hidden.includes(name)) return null;
  for (const candidate of BINARIES[name]) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // try the next place
    }
  }
  const which = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim() : '';
  return found === '' ? null : found;
}

/** Why tests that need `name` cannot run here, or null when they can. */
export function missingBinaryReason(name: ProxyBinary, pkg: string): string | null {
  return findBinary(name) === null
    ? `${name} is not installed (Debian package ${pkg}; .ci/run installs it with apt)`
    : null;
}

import { freePort } from './net.js';

export { freePort };

/** True once a TCP connection to host:port succeeds. */
function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.setTimeout(1000, () => done(false));
  });
}

/** A proxy server the test can reach, and stop. */
export interface RunningProxy {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** What the server wrote to stdout and stderr so far (its log). */
  log(): string;
  /** Stops the server and waits until it has exited (or closed); removes its files. */
  stop(): Promise<void>;
}

/** A child process with its output collected and an awaited stop. */
interface Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
  running(): boolean;
  output(): string;
}

function spawnChild(command: string, args: string[]): Child {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let running = true;
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      running = false;
      resolve();
    });
    proc.once('error', (err) => {
      running = false;
      output += `spawn error: ${err.message}\n`;
      resolve();
    });
  });
  return { proc, exited, running: () => running, output: () => output };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True if `promise` settles within `ms` (the timer is cleared either way). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The PIDs of the processes whose parent is `pid` (Linux /proc). */
function childPids(pid: number): number[] {
  const result: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return result;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...; comm may contain spaces, so parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) result.push(Number(entry));
    } catch {
      // the process went away
    }
  }
  return result;
}

function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // A zombie ("Z") has exited; its parent reaps it.
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Stops `child`: SIGTERM, up to `graceMs` to exit, then SIGKILL; always waits for the exit
 * event (so the process is reaped). Processes it forked (dante's negotiate/request/io
 * children), recorded before the signal, are waited for too and killed if they linger.
 */
async function stopChild(child: Child, graceMs = 2000): Promise<void> {
  const pid = child.proc.pid;
  if (pid === undefined || !child.running()) {
    await child.exited;
    return;
  }
  const forked = childPids(pid);
  child.proc.kill('SIGTERM');
  if (!(await settlesWithin(child.exited, graceMs))) {
    child.proc.kill('SIGKILL');
    if (!(await settlesWithin(child.exited, 5000))) {
      throw new Error(`process ${pid} did not exit after SIGKILL`);
    }
  }
  const deadline = Date.now() + graceMs;
  for (const p of forked) {
    while (isAlive(p) && Date.now() < deadline) await delay(20);
    if (isAlive(p)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
}

/**
 * Starts a server on a fresh free port (up to 3 ports, in case another process takes the
 * port between the check and the server's bind) and waits until it accepts connections.
 */
async function startOnFreePort(
  name: string,
  launch: (port: number) => { child: Child; cleanup: () => void },
  readyMs = 5000,
): Promise<RunningProxy> {
  let lastOutput = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const { child, cleanup } = launch(port);
    const deadline = Date.now() + readyMs;
    let ready = false;
    while (child.running() && Date.now() < deadline) {
      if (await canConnect('127.0.0.1', port)) {
        ready = true;
        break;
      }
      await delay(25);
    }
    if (ready && child.running()) {
      return {
        name,
        host: '127.0.0.1',
        port,
        log: () => child.output(),
        stop: async () => {
          try {
            await stopChild(child);
          } finally {
            cleanup();
          }
        },
      };
    }
    lastOutput = child.output();
    await stopChild(child).finally(cleanup);
  }
  throw new Error(`${name} did not start accepting connections; its output:\n${lastOutput}`);
}

/** A private temporary directory for one server's files; removed by the returned function. */
function privateDir(prefix: string): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

// ------------------------------------------------------------------ dante

export interface DanteOptions {
  /** `socksmethod: username` (system users) instead of `none`. */
  usernameAuth?: boolean;
  /** Also `external: ::1`, so IPv6 targets can be reached. */
  ipv6?: boolean;
}

/** The danted.conf for one instance (one keyword per line in the rules, as dante requires). */
export function danteConfig(port: number, options: DanteOptions = {}): string {
  return [
    'logoutput: stderr',
    `internal: 127.0.0.1 port = ${port}`,
    'external: 127.0.0.1',
    ...(options.ipv6 ? ['external: ::1'] : []),
    'clientmethod: none',
    `socksmethod: ${options.usernameAuth ? 'username' : 'none'}`,
    'user.privileged: root',
    'user.unprivileged: nobody',
    'client pass {',
    '        from: 0/0',
    '        to: 0/0',
    '}',
    'socks pass {',
    '        from: 0/0',
    '        to: 0/0',
    '        command: bind connect bindreply',
    '}',
    '',
  ].join('\n');
}

/** Starts danted with a generated configuration. */
export function startDante(options: DanteOptions = {}): Promise<RunningProxy> {
  const binary = findBinary('danted');
  if (!binary) throw new Error('danted is not installed');
  return startOnFreePort(`dante${options.usernameAuth ? ' (username)' : ''}`, (port) => {
    const { dir, remove } = privateDir('qt-dante-');
    const conf = path.join(dir, 'danted.conf');
    fs.writeFileSync(conf, danteConfig(port, options));
    const child = spawnChild(binary, ['-f', conf, '-p', path.join(dir, 'danted.pid')]);
    return { child, cleanup: remove };
  });
}

// ------------------------------------------------------------------ microsocks

/** Starts microsocks on 127.0.0.1, with `-u user -P password` when given. */
export function startMicrosocks(credentials?: {
  user: string;
  password: string;
}): Promise<RunningProxy> {
  const binary = findBinary('microsocks');
  if (!binary) throw new Error('microsocks is not installed');
  return startOnFreePort(`microsocks${credentials ? ' (-u/-P)' : ''}`, (port) => {
    const args = ['-i', '127.0.0.1', '-p', String(port)];
    if (credentials) args.push('-u', credentials.user, '-P', credentials.password);
    return { child: spawnChild(binary, args), cleanup: () => undefined };
  });
}

// ------------------------------------------------------------------ tinyproxy

/** The tinyproxy.conf: no ConnectPort (CONNECT to any port), loopback only. */
export function tinyproxyConfig(
  port: number,
  credentials?: { user: string; password: string },
): string {
  return [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    'MaxClients 50',
    'Allow 127.0.0.1',
    'LogLevel Info',
    ...(credentials ? [`BasicAuth ${credentials.user} ${credentials.password}`] : []),
    '',
  ].join('\n');
}

/** Starts tinyproxy in the foreground (`-d -c conf`). */
export function startTinyproxy(credentials?: {
  user: string;
  password: string;
}): Promise<RunningProxy> {
  const binary = findBinary('tinyproxy');
  if (!binary) throw new Error('tinyproxy is not installed');
  return startOnFreePort(`tinyproxy${credentials ? ' (BasicAuth)' : ''}`, (port) => {
    const { dir, remove } = privateDir('qt-tinyproxy-');
    const conf = path.join(dir, 'tinyproxy.conf');
    fs.writeFileSync(conf, tinyproxyConfig(port, credentials));
    return { child: spawnChild(binary, ['-d', '-c', conf]), cleanup: remove };
  });
}

// ------------------------------------------------------------------ npm `proxy`

export interface NpmProxy extends RunningProxy {
  /** Every CONNECT request the proxy received: its request target and headers. */
  readonly connects: Array<{ url: string; headers: http.IncomingHttpHeaders }>;
  /** The remote ports of the connections the proxy accepted (the clients' local ports). */
  readonly clientPorts: number[];
}

/** Starts npm's `proxy` on 127.0.0.1 (through its API), with an optional authenticate hook. */
export async function startNpmProxy(
  authenticate?: (req: http.IncomingMessage) => boolean,
): Promise<NpmProxy> {
  const server = createProxy();
  if (authenticate) server.authenticate = authenticate;
  const connects: Array<{ url: string; headers: http.IncomingHttpHeaders }> = [];
  const clientPorts: number[] = [];
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    if (s.remotePort !== undefined) clientPorts.push(s.remotePort);
    s.once('close', () => sockets.delete(s));
  });
  server.on('connect', (req: http.IncomingMessage) => {
    connects.push({ url: req.url ?? '', headers: { ...req.headers } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    name: `npm proxy${authenticate ? ' (authenticate)' : ''}`,
    host: '127.0.0.1',
    port,
    connects,
    clientPorts,
    log: () => connects.map((c) => `CONNECT ${c.url}`).join('\n'),
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The user and password of a Basic Proxy-Authorization header, or null. */
export function basicCredentials(
  req: http.IncomingMessage,
): { user: string; password: string } | null {
  const header = req.headers['proxy-authorization'];
  const match = typeof header === 'string' ? /^Basic\s+(\S+)$/i.exec(header) : null;
  if (!match) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

// ------------------------------------------------------------------ system users (dante)

/** A throwaway system user, for dante's username method (it checks the system's passwords). */
export interface SystemUser {
  readonly name: string;
  readonly password: string;
  remove(): void;
}

/** Why a system user cannot be created here, or null when it can. */
export function systemUserUnavailableReason(): string | null {
  if (process.platform !== 'linux') return 'system users are created only on Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'creating a system user needs root';
  }
  for (const tool of ['useradd', 'userdel', 'chpasswd']) {
    const which = spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]);
    if (which.status !== 0) return `${tool} is not available`;
  }
  return null;
}

function run(command: string, args: string[], input?: string): void {
  const result = spawnSync(command, args, { input, encoding: 'utf8', timeout: 10000 });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}`,
    );
  }
}

/** Creates a user without home directory or login shell, with a random password. */
export function createSystemUser(name: string): SystemUser {
  const password = `pw${randomBytes(9).toString('hex')}`;
  run('useradd', ['-M', '-s', '/usr/sbin/nologin', name]);
  try {
    run('chpasswd', [], `${name}:${password}\n`);
  } catch (err) {
    run('userdel', [name]);
    throw err;
  }
  let removed = false;
  return {
    name,
    password,
    remove: () => {
      if (removed) return;
      removed = true;
      run('userdel', [name]);
    },
  };
}

// ------------------------------------------------------------------ /proc/net/tcp

/**
 * The local ports of this host's established IPv4 TCP connections to 127.0.0.1:`port`
 * (from /proc/net/tcp): the clients of a server listening there.
 */
export function establishedClientPorts(port: number): number[] {
  let table: string;
  try {
    table = fs.readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return [];
  }
  const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const ports: number[] = [];
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4) continue;
    const [, local, remote, state] = fields;
    if (remote === want && state === '01') ports.push(parseInt(local.split(':')[1], 16));
  }
  return ports;
}
