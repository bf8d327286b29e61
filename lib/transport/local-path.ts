import { lstatSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import { UnsafeSocketDirectoryError } from './wire/errors.js';

/**
 * Where the transport's local sockets live.
 *
 * The Qt layer keeps Qt's rule (a bare name is a file in the temp directory, shared by every
 * user). The transport does not: a bare `name` given to ServerQt or ClientQt is a socket in
 * a directory of this user's own, `<tmpdir>/nestjs-qt-<uid>`, mode 0700, that no other user
 * can enter, list or write. Nobody else can take the name first or listen in its place.
 * Server and client of one user find the same path with no configuration; services of
 * different users (or a Qt program that keeps Qt's rule) use an absolute path, which is
 * used as it is. On Windows names are named pipes, which have no directory: unchanged.
 *
 * The directory stays under the temp directory (so `TMPDIR` moves it, as API.md's "Local
 * names" says) rather than `$XDG_RUNTIME_DIR`, which a systemd service, a container or cron
 * often lacks while the user's shell has it: server and client must agree without help.
 */

const WINDOWS = process.platform === 'win32';
const PIPE_PREFIX = '\\\\.\\pipe\\';

/** This user's private directory for bare local names (`<tmpdir>/nestjs-qt-<uid>`). */
export function privateSocketDirectory(): string {
  const tmp = os.tmpdir().replace(/\/+$/, '');
  return `${tmp}/nestjs-qt-${process.getuid?.() ?? 0}`;
}

/**
 * The socket path (or pipe name) a ServerQt or ClientQt uses for `name`: an absolute path
 * as it is, a bare name inside this user's private directory. This is the path to give a
 * Qt program's `QLocalSocket.connectToServer` (see examples/qt-client). Pure: it neither
 * creates nor checks the directory.
 */
export function localServerPath(name: string): string {
  if (WINDOWS) return name.startsWith(PIPE_PREFIX) ? name : PIPE_PREFIX + name;
  if (name.startsWith('/')) return name;
  return `${privateSocketDirectory()}/${name}`;
}

/** True when `name` is placed in the private directory (not a path, not a pipe). */
export function isBareLocalName(name: string): boolean {
  return !WINDOWS && !name.startsWith('/');
}

/**
 * The path for `name`, after making sure the private directory is safe to use: a real
 * directory (not a symbolic link) owned by this user with no access for group or others.
 * `create` (the server) makes it, mode 0700, when it is missing; a client leaves a missing
 * one alone (its connect then reports ServerNotFoundError). Anything else at that path —
 * another user's directory made first, a link, a looser mode — throws
 * UnsafeSocketDirectoryError and is never changed or used.
 */
export function prepareLocalPath(name: string, create: boolean): string {
  const path = localServerPath(name);
  if (!isBareLocalName(name)) return path;
  const dir = privateSocketDirectory();
  let problem = directoryProblem(dir);
  if (problem === 'absent' && create) {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      // Lost a race with another process of this user (EEXIST): the checks below decide.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new UnsafeSocketDirectoryError(dir, `it cannot be created: ${String(err)}`);
      }
    }
    problem = directoryProblem(dir);
  }
  if (problem !== null && problem !== 'absent') throw new UnsafeSocketDirectoryError(dir, problem);
  return path;
}

/** Why `dir` may not hold this user's sockets; 'absent' when missing; null when fine. */
function directoryProblem(dir: string): string | null {
  let stat;
  try {
    stat = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    return `it cannot be inspected: ${String(err)}`;
  }
  if (stat.isSymbolicLink()) return 'it is a symbolic link';
  if (!stat.isDirectory()) return 'it is not a directory';
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    return `it belongs to uid ${stat.uid}, not to this process's uid ${uid}`;
  }
  if ((stat.mode & 0o077) !== 0) {
    return `its mode is 0${(stat.mode & 0o777).toString(8)}; group and others must have no access (0700)`;
  }
  return null;
}
