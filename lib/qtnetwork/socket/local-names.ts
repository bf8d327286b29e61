import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';

/**
 * How local server names become socket addresses, shared by QLocalServer and QLocalSocket.
 *
 * As in Qt on Unix: a name that is an absolute path is used as it is; any other name is a
 * socket file in the system temp directory (`os.tmpdir()`, which honours TMPDIR, as Qt's
 * QDir::tempPath does). On Windows a name maps to a named pipe, `\\.\pipe\<name>`.
 */

const WINDOWS = process.platform === 'win32';
const PIPE_PREFIX = '\\\\.\\pipe\\';

/**
 * Longest socket path the kernel takes, in bytes: `sun_path` holds 108 bytes on Linux
 * (104 on the BSDs and macOS) including the terminating NUL.
 */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** The full path (or pipe name) behind a local server name. */
export function fullLocalServerName(name: string): string {
  if (WINDOWS) return name.startsWith(PIPE_PREFIX) ? name : PIPE_PREFIX + name;
  if (name.startsWith('/')) return name;
  const tmp = os.tmpdir().replace(/\/+$/, '');
  return `${tmp}/${name}`;
}

/**
 * The address to give Node for `fullPath`: the path itself, or, in Linux's abstract
 * namespace, the path behind a NUL byte (no file is created).
 */
export function nativeLocalAddress(fullPath: string, abstract: boolean): string {
  return abstract && process.platform === 'linux' ? `\0${fullPath}` : fullPath;
}

/**
 * Why `fullPath` cannot be a socket address, or null if it can. Node (libuv) silently
 * truncates a path longer than `sun_path` and binds or connects to the truncated path;
 * this check is what prevents that.
 */
export function socketPathProblem(fullPath: string): string | null {
  // A pipe name's length is Windows' to judge (ENAMETOOLONG is a name error too); an empty
  // one would reach libuv as the bare prefix, which fails with EBADF.
  if (WINDOWS) return fullPath === PIPE_PREFIX ? 'the pipe name is empty' : null;
  const bytes = Buffer.byteLength(fullPath);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    return `the socket path is ${bytes} bytes long; the limit is ${MAX_SOCKET_PATH_BYTES}`;
  }
  if (fullPath.includes('\0')) return 'the socket path contains a NUL byte';
  return null;
}

/** What is at a local server's path. */
export type LocalServerStatus =
  /** Nothing is there. */
  | 'absent'
  /** A socket a server accepts on. */
  | 'live'
  /** A socket file nobody accepts on (its server died without removing it). */
  | 'stale'
  /** Something that is not a socket (a regular file, a directory, a symbolic link). */
  | 'not-a-socket'
  /** A socket whose state could not be told (for example: permission denied). */
  | 'unknown';

/** True if `fullPath` is a socket file (a symbolic link is not followed and is not one). */
export function isSocketFile(fullPath: string): boolean {
  try {
    return fs.lstatSync(fullPath).isSocket();
  } catch {
    return false;
  }
}

/**
 * Tells whether a server accepts on the socket at `name` (a server name or a path), by
 * connecting to it: refused means stale. Never follows a symbolic link. A live server sees
 * one connection that closes at once. `timeoutMs` bounds the probe (a server whose
 * backlog is full counts as live). On Windows a named pipe exists only while a server has
 * it open, so there it is 'live' or 'absent' (never 'stale'), or 'unknown' (access denied).
 */
export async function probeLocalServer(name: string, timeoutMs = 2000): Promise<LocalServerStatus> {
  const fullPath = fullLocalServerName(name);
  if (WINDOWS) return probePipe(fullPath, timeoutMs);
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(fullPath);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'unknown';
  }
  if (!stat.isSocket()) return 'not-a-socket';
  if (socketPathProblem(fullPath)) return 'unknown';
  return new Promise((resolve) => {
    const probe = net.connect({ path: fullPath });
    const finish = (status: LocalServerStatus): void => {
      clearTimeout(timer);
      probe.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => finish('live'), timeoutMs);
    probe.once('connect', () => finish('live'));
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') finish('stale');
      else if (err.code === 'EAGAIN') finish('live');
      else if (err.code === 'ENOENT') finish('absent');
      else finish('unknown');
    });
  });
}

/**
 * Windows: connects to the pipe. Connected, or every instance busy (libuv then waits for
 * one; the probe gives up at `timeoutMs`): 'live'. No such pipe: 'absent'.
 */
function probePipe(fullPath: string, timeoutMs: number): Promise<LocalServerStatus> {
  if (socketPathProblem(fullPath)) return Promise.resolve('unknown');
  return new Promise((resolve) => {
    const probe = net.connect({ path: fullPath });
    const finish = (status: LocalServerStatus): void => {
      clearTimeout(timer);
      probe.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => finish('live'), timeoutMs);
    probe.once('connect', () => finish('live'));
    probe.once('error', (err: NodeJS.ErrnoException) => {
      finish(err.code === 'ENOENT' ? 'absent' : 'unknown');
    });
  });
}
