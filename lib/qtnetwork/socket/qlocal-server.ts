import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as path from 'node:path';

import {
  fullLocalServerName,
  nativeLocalAddress,
  probeLocalServer,
  socketPathProblem,
  type LocalServerStatus,
} from './local-names.js';
import { LocalServerSocketOption, type LocalServerSocketOptions } from './local-socket-enums.js';
import { errnoCode, type MappedError } from './native-errors.js';
import { type NativeSocketHandle } from './native-handle.js';
import {
  PendingConnectionServer,
  createAcceptingServer,
  listenOutcome,
} from './pending-connection-server.js';
import { QLocalSocket } from './qlocal-socket.js';
import { Signal } from '../core/signal.js';
import { SocketError } from '../kernel/socket-enums.js';

const LISTEN = 'QLocalServer::listen';
const WINDOWS = process.platform === 'win32';
const LINUX = process.platform === 'linux';

/** Qt's mapping of a listen failure to an error and its text. */
function mapListenError(err: unknown): MappedError {
  const code = errnoCode(err);
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return { error: SocketError.SocketAccessError, text: `${LISTEN}: Permission denied` };
    case 'ELOOP':
    case 'ENOENT':
    case 'ENAMETOOLONG':
    case 'EROFS':
    case 'ENOTDIR':
      return nameError();
    case 'EADDRINUSE':
    case 'EEXIST':
      return addressInUse();
    default:
      return {
        error: SocketError.UnknownSocketError,
        text: `${LISTEN}: Unknown error${code ? ` ${code}` : ''}`,
      };
  }
}

/** 'absent' if nothing is at `full`, else 'unknown' (without connecting to it). */
function pathStatus(full: string): LocalServerStatus {
  try {
    fs.lstatSync(full);
    return 'unknown';
  } catch (err) {
    return errnoCode(err) === 'ENOENT' ? 'absent' : 'unknown';
  }
}

function addressInUse(): MappedError {
  return { error: SocketError.AddressInUseError, text: `${LISTEN}: Address in use` };
}

/** Qt's error for a name that cannot be a server's; `detail` says why, where the port knows. */
function nameError(detail?: string): MappedError {
  const text = `${LISTEN}: Name error${detail ? ` (${detail})` : ''}`;
  return { error: SocketError.HostNotFoundError, text };
}

/** File permission bits for QLocalServer.SocketOption flags (Qt's mapping). */
function modeFor(options: number): number {
  let mode = 0;
  if (options & LocalServerSocketOption.UserAccessOption) mode |= 0o700;
  if (options & LocalServerSocketOption.GroupAccessOption) mode |= 0o070;
  if (options & LocalServerSocketOption.OtherAccessOption) mode |= 0o007;
  return mode;
}

/**
 * Windows: what Node can do of Qt's pipe ACL. Qt gives a pipe with access options a DACL
 * of its own: full access for the user (User), the primary group (Group), Everyone
 * (Other). Node sets no DACL at creation; it can only add Everyone afterwards (libuv's
 * uv_pipe_chmod, through `readableAll`/`writableAll`). So OtherAccessOption (and World)
 * grants Everyone read and write, as Qt does; User and Group leave the pipe with Windows'
 * default DACL (docs/qt-differences.md, "Windows").
 */
function pipeAccess(options: number): { readableAll: boolean; writableAll: boolean } {
  const everyone = (options & LocalServerSocketOption.OtherAccessOption) !== 0;
  return { readableAll: everyone, writableAll: everyone };
}

/**
 * The bound path of an inherited Unix-socket descriptor (Qt asks getsockname). Node has no
 * such call, so on Linux the socket's inode is looked up in /proc/net/unix.
 */
function boundPathOfDescriptor(fd: number): string {
  if (!LINUX) return '';
  try {
    const link = fs.readlinkSync(`/proc/self/fd/${fd}`);
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (!inode) return '';
    for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[6] === inode) return (cols[7] ?? '').replace(/^@/, '');
    }
  } catch {
    // Not available: the names stay empty.
  }
  return '';
}

/** A server that listens, with what its `close()` must undo. */
interface Bound {
  server: net.Server;
  /** The socket file this server put in place; null if it owns none. */
  file: string | null;
  /** Runs after the server closed (see temporarySocketPath). */
  release: () => void;
}

/** A listening server that is no longer wanted: closes it and removes its socket file. */
function discard(bound: Bound): void {
  const identity = bound.file ? fileIdentity(bound.file) : null;
  bound.server.close();
  bound.release();
  if (bound.file && identity) removeOwnSocket(bound.file, identity);
}

/** The device and inode of the file at `file`, or null. */
function fileIdentity(file: string): { dev: number; ino: number } | null {
  try {
    const st = fs.lstatSync(file);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** Removes the socket at `file` only if it is still the one with `identity`. */
function removeOwnSocket(file: string, identity: { dev: number; ino: number }): void {
  try {
    const st = fs.lstatSync(file);
    if (st.isSocket() && st.dev === identity.dev && st.ino === identity.ino) fs.unlinkSync(file);
  } catch {
    // Already gone.
  }
}

/**
 * A local server (Qt's QLocalServer) on Unix-domain sockets, or named pipes on Windows.
 *
 * Names follow Qt: an absolute path is used as is; any other name is a socket in the temp
 * directory. Errors and texts are Qt's ("QLocalServer::listen: Address in use", ...).
 *
 * Socket files are handled with care:
 * - Without access options, an existing file at the path gives AddressInUseError and is
 *   left alone (as in Qt).
 * - With access options (User/Group/Other/World), the socket is created in a private
 *   directory beside the path, given its mode, then renamed over the path, so there is no
 *   moment when it is reachable with looser permissions (Qt's method). Qt renames over
 *   whatever is there; the port does so only when the path is free or holds a stale socket
 *   (one nobody accepts on); a live server's socket gives AddressInUseError.
 * - A path that exists and is not a socket is never removed, by anything in this class.
 * - Path lengths are checked: Node silently truncates a socket path longer than the
 *   platform's limit; here such a name is refused with HostNotFoundError.
 * - In a `node:cluster` worker, `setListenBindMode(BindFlag.ShareAddress)` shares the
 *   primary's socket at the path (every worker must give the same name); the primary owns
 *   that file (see listenShared and docs/qt-differences.md).
 *
 * On Windows a name is the named pipe `\\.\pipe\<name>` (a name that already starts so is
 * used as it is), as in Qt. There are no files: a second listen on a name in use gives
 * AddressInUseError (libuv creates the first instance exclusively; Qt would add instances
 * to the other server's pipe), `removeServer` does nothing and returns true (Qt), and access
 * options map as pipeAccess says (docs/qt-differences.md, "Windows").
 *
 * Pending connections behave as for QTcpServer (see PendingConnectionServer and AcceptQueue).
 */
export class QLocalServer extends PendingConnectionServer<QLocalSocket> {
  static readonly SocketOption = LocalServerSocketOption;

  /** Emitted each time a new connection is available. */
  readonly newConnection = new Signal<[]>('newConnection');

  private name = '';
  private fullName = '';
  private options: LocalServerSocketOptions = LocalServerSocketOption.NoOptions;
  /** Identity of the socket file this server created, so that `close()` removes only it. */
  private ownFile: { dev: number; ino: number } | null = null;
  /** Runs after the server closed (see temporarySocketPath). */
  private releaseOnClose: () => void = () => undefined;
  /** Counts `listen` and `close` calls, so that a listen that finishes after a close is undone. */
  private attempt = 0;

  /**
   * Listens on the local server `name`, or (a number) serves on an inherited listening
   * Unix-socket descriptor (socket activation). Resolves false, with Qt's error, if already
   * listening, if the name is empty or too long (HostNotFoundError, "Name error"), in use
   * (AddressInUseError), or not permitted (SocketAccessError). A `close()` before the
   * Promise settles cancels the listen: it resolves false, with no error.
   *
   * Check the resolved value (`if (!(await server.listen(name)))`): the Promise itself is
   * always truthy.
   */
  async listen(name: string | number): Promise<boolean> {
    if (this.alreadyListening(LISTEN)) return false;
    if (typeof name === 'number') return this.listenDescriptor(name);
    if (name === '') {
      this.setServerError(nameError());
      return false;
    }
    const full = fullLocalServerName(name);
    const problem = socketPathProblem(full);
    if (problem) {
      this.setServerError(nameError(problem));
      return false;
    }
    const attempt = this.startAttempt();
    let result: Bound | MappedError;
    try {
      result = await this.bindAndListen(full);
    } finally {
      this.endAttempt(attempt);
    }
    if (!('server' in result)) {
      if (attempt === this.attempt) this.setServerError(result);
      return false;
    }
    if (attempt !== this.attempt) {
      discard(result);
      return false;
    }
    this.started(result);
    this.name = name;
    this.fullName = full;
    return true;
  }

  /**
   * Stops listening, closes pending connections nobody took, and removes the socket file
   * this server created (only if it is still that file). `listen` may be called again.
   * A worker that shares the cluster primary's socket removes nothing: the file is the
   * primary's, and Node removes it once no worker listens there any more.
   *
   * Closing a listening server clears `serverError()` and `errorString()`; closing one that
   * was not listening keeps them (Qt 5.15 and 6.4 alike). A listen under way is cancelled.
   */
  close(): void {
    const wasListening = this.listening;
    this.attempt++;
    this.stopListening();
    this.releaseOnClose();
    this.releaseOnClose = () => undefined;
    const own = this.ownFile;
    this.ownFile = null;
    if (own && this.fullName) removeOwnSocket(this.fullName, own);
    this.name = '';
    this.fullName = '';
    if (wasListening) this.setServerError({ error: SocketError.UnknownSocketError, text: '' });
  }

  /** The name given to `listen`; "" when not listening. */
  serverName(): string {
    return this.name;
  }

  /** The socket's path (or pipe name); "" when not listening. */
  fullServerName(): string {
    return this.fullName;
  }

  /**
   * Removes the socket file behind `name`, as Qt does to clean up after a crashed server.
   * True if it was removed or nothing was there. Unlike Qt, a path that is not a socket
   * (a regular file, a directory, a symbolic link) is never removed: false. On Windows
   * there is no file (a pipe ends with its server): true, as in Qt.
   */
  static removeServer(name: string): boolean {
    const full = fullLocalServerName(name);
    if (WINDOWS) return true;
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(full);
    } catch (err) {
      return errnoCode(err) === 'ENOENT';
    }
    if (!stat.isSocket()) return false;
    try {
      fs.unlinkSync(full);
      return true;
    } catch (err) {
      return errnoCode(err) === 'ENOENT';
    }
  }

  /**
   * Tells what is at the path of `name`: 'absent', 'live' (a server accepts on it),
   * 'stale' (a socket file nobody accepts on), 'not-a-socket', or 'unknown'. Not in Qt.
   * On Windows only 'live', 'absent' or 'unknown' (a pipe never outlives its server).
   */
  static serverStatus(name: string, timeoutMs?: number): Promise<LocalServerStatus> {
    return probeLocalServer(name, timeoutMs);
  }

  /**
   * Removes the socket file of `name` only if it is stale (nobody accepts on it) and is
   * still the file that was probed (a server may have taken the name meanwhile). True if
   * it was removed or nothing was there; never touches a live server's socket or a file
   * that is not a socket. Not in Qt.
   */
  static async removeStaleServer(name: string, timeoutMs?: number): Promise<boolean> {
    if (WINDOWS) return (await probeLocalServer(name, timeoutMs)) === 'absent';
    return removeStaleFile(fullLocalServerName(name), timeoutMs);
  }

  /**
   * Waits up to `msecs` (-1 = no limit) for a new connection. Resolves
   * `[hasPendingConnections(), timedOut]`, as Qt's QLocalServer does (so `[true, true]`
   * when a connection was already pending and none arrived); `[false, false]` when not
   * listening.
   */
  async waitForNewConnection(msecs = 0): Promise<[boolean, boolean]> {
    if (!this.listening) return [false, false];
    const [, timedOut] = await this.queue.waitForNew(msecs, () => undefined);
    // Qt's QLocalServer answers whether a connection is pending, even after a timeout.
    return [this.hasPendingConnections(), timedOut];
  }

  /** Sets the access options (QLocalServer.SocketOption flags) used by the next `listen`. */
  setSocketOptions(options: LocalServerSocketOptions): void {
    this.options = options;
  }

  /** The access options. */
  socketOptions(): LocalServerSocketOptions {
    return this.options;
  }

  /**
   * Called for each accepted connection: makes a QLocalSocket of it, adds it to the pending
   * connections and emits newConnection (Qt emits it from here for QLocalServer).
   */
  protected override incomingConnection(handle: NativeSocketHandle): void {
    if (this.addIncoming(new QLocalSocket(), handle)) this.newConnection.emit();
  }

  // ---------------------------------------------------------------- internals

  private async bindAndListen(full: string): Promise<Bound | MappedError> {
    const abstract =
      LINUX && (this.options & LocalServerSocketOption.AbstractNamespaceOption) !== 0;
    const shared = this.listensThroughPrimary();
    if (WINDOWS || abstract) {
      const server = createAcceptingServer();
      const err = await listenOn(
        server,
        nativeLocalAddress(full, abstract),
        this.queue.backlog,
        !shared,
        undefined,
        WINDOWS ? pipeAccess(this.options) : undefined,
      );
      if (err) {
        server.close();
        return mapListenError(err);
      }
      return { server, file: null, release: () => undefined };
    }
    const access = modeFor(this.options);
    if (shared) return this.listenShared(full, access);
    // Without access options an existing file is never replaced (Qt); with them, only a
    // stale socket is (Qt replaces anything). Only then does it matter whether a socket
    // there is stale: without options the path is not probed, so a live server there never
    // sees a connection (Qt's listen does not connect either).
    const status = access !== 0 ? await probeLocalServer(full) : pathStatus(full);
    const replaceStale = status === 'stale' && access !== 0;
    if (status !== 'absent' && !replaceStale) return addressInUse();

    // The socket is always bound under a temporary name and then linked into place. libuv
    // unlinks a Unix socket's bound path when the server closes; binding elsewhere means it
    // only ever removes that temporary name, never a file someone else has put at `full`.
    const temp = temporarySocketPath(full);
    if (!temp) return nameError();
    const server = createAcceptingServer();
    // With access options the socket gets its mode at creation (through the umask), so
    // it is never reachable with looser permissions; without them it follows the umask.
    const previous = access !== 0 ? process.umask(0o777 & ~access) : null;
    const restore = (): void => {
      if (previous !== null) process.umask(previous);
    };
    let err: Error | null;
    try {
      err = await listenOn(server, temp.bindPath, this.queue.backlog, true, restore);
    } finally {
      restore();
    }
    if (err) {
      server.close();
      temp.cleanup();
      temp.release();
      return mapListenError(err);
    }
    const placed = await placeSocket(temp.realPath, full, replaceStale);
    temp.cleanup();
    if (placed) {
      server.close();
      temp.release();
      return placed;
    }
    return { server, file: full, release: temp.release };
  }

  /**
   * ShareAddress in a cluster worker: the primary binds `full` itself, once, and every
   * worker that listens on the same name shares that socket, so the bind-elsewhere-and-
   * link trick (one temporary path per process) cannot be used. A stale socket is removed
   * first when access options are set (as the private path does by replacing it); any
   * other file there makes the primary's bind fail with AddressInUseError, unless it is the
   * socket the primary already listens on for another worker. The access mode is applied
   * once listening: until then the socket has the mode the primary's umask gives it (with
   * the usual 022, only its owner can connect). The socket file belongs to the primary:
   * Node removes it when the last worker stops listening, so `close()` leaves it alone.
   */
  private async listenShared(full: string, access: number): Promise<Bound | MappedError> {
    if (access !== 0) await removeStaleFile(full);
    const server = createAcceptingServer();
    const err = await listenOn(server, full, this.queue.backlog, false);
    if (err) {
      server.close();
      return mapListenError(err);
    }
    if (access !== 0) {
      const problem = applyAccessMode(full, access);
      if (problem) {
        server.close();
        return problem;
      }
    }
    return { server, file: null, release: () => undefined };
  }

  /** Starts a listen: a new attempt number, and `binding` until it ends. */
  private startAttempt(): number {
    this.binding = true;
    return ++this.attempt;
  }

  /** Ends the listen `attempt`; `binding` stays if a newer listen is under way. */
  private endAttempt(attempt: number): void {
    if (attempt === this.attempt) this.binding = false;
  }

  private started(bound: Bound): void {
    // Node reports a failed accept as an 'error' event, which would end the process with
    // no listener; the port's QLocalServer has no acceptError signal to pass it on.
    this.startAccepting(bound.server, () => undefined);
    this.releaseOnClose = bound.release;
    this.ownFile = bound.file ? fileIdentity(bound.file) : null;
  }

  private async listenDescriptor(fd: number): Promise<boolean> {
    const attempt = this.startAttempt();
    const server = createAcceptingServer();
    const err = await listenOutcome(server, (done) =>
      // `exclusive`: the descriptor is this process's own, even in a cluster worker.
      server.listen({ fd, backlog: this.queue.backlog, exclusive: true }, done),
    );
    this.endAttempt(attempt);
    if (attempt !== this.attempt) {
      server.close();
      return false;
    }
    const handleType = (server as unknown as { _handle?: { constructor?: { name?: string } } })
      ._handle?.constructor?.name;
    if (err || handleType !== 'Pipe') {
      server.close();
      this.setServerError({
        error: SocketError.UnsupportedSocketOperationError,
        text: `${LISTEN}: Invalid socket descriptor`,
      });
      return false;
    }
    this.started({ server, file: null, release: () => undefined });
    const full = boundPathOfDescriptor(fd);
    this.fullName = full;
    this.name = full.slice(full.lastIndexOf('/') + 1) || full;
    return true;
  }
}

/**
 * The identity of the socket file at `full`, or null if there is none. The change time is
 * part of it: a file system may give a socket made right after another's removal the same
 * inode number.
 */
function socketIdentity(full: string): string | null {
  try {
    const st = fs.lstatSync(full, { bigint: true });
    return st.isSocket() ? `${st.dev}:${st.ino}:${st.ctimeNs}` : null;
  } catch {
    return null;
  }
}

/**
 * Removes the socket file at `full` if nobody accepts on it, and only if it is still the
 * file that was probed: another process (a cluster worker starting at the same moment)
 * may have removed it and listened there meanwhile. True if it was removed or absent.
 */
async function removeStaleFile(full: string, timeoutMs?: number): Promise<boolean> {
  const probed = socketIdentity(full);
  const status = await probeLocalServer(full, timeoutMs);
  if (status === 'absent') return true;
  if (status !== 'stale' || probed === null) return false;
  const now = socketIdentity(full);
  if (now !== probed) return now === null;
  try {
    fs.unlinkSync(full);
    return true;
  } catch (err) {
    return errnoCode(err) === 'ENOENT';
  }
}

/**
 * Gives the socket at `full` the permission bits `mode` (a socket bound by another
 * process, so its mode could not come from this process's umask). Refuses anything that
 * is not a socket, so a link put there is never followed. Null on success.
 */
function applyAccessMode(full: string, mode: number): MappedError | null {
  try {
    if (!fs.lstatSync(full).isSocket()) return addressInUse();
    fs.chmodSync(full, mode);
    return null;
  } catch (err) {
    return mapListenError(err);
  }
}

/** Where to bind before linking into place (same file system as the target). */
interface TemporarySocket {
  /** The address given to bind (may be a short alias of `realPath`). */
  bindPath: string;
  /** The socket file's real path. */
  realPath: string;
  /** Removes the socket file and the private directory. */
  cleanup: () => void;
  /** Releases what must live as long as the server (called after the server closes). */
  release: () => void;
}

/**
 * A private directory (mode 0700) beside the target, with the socket `s` in it. When that
 * path is too long for a socket address, Linux can still bind there through the short
 * alias /proc/self/fd/<dir>/s; the directory descriptor then stays open until the server
 * closes, because libuv unlinks the bound path at close and that alias must still name
 * the private directory then. Null if neither fits.
 */
function temporarySocketPath(full: string): TemporarySocket | null {
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(path.dirname(full), '.q'));
  } catch {
    return null;
  }
  const realPath = path.join(dir, 's');
  const cleanup = (): void => {
    fs.rmSync(realPath, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  };
  if (!socketPathProblem(realPath)) {
    return { bindPath: realPath, realPath, cleanup, release: () => undefined };
  }
  if (LINUX) {
    try {
      const fd = fs.openSync(dir, 'r');
      let open = true;
      return {
        bindPath: `/proc/self/fd/${fd}/s`,
        realPath,
        cleanup,
        release: () => {
          if (open) fs.closeSync(fd);
          open = false;
        },
      };
    } catch {
      // Fall through: no way to bind there.
    }
  }
  cleanup();
  return null;
}

/**
 * Puts the socket bound at `temp` at `full`: a hard link, which fails if anything is
 * there; or, when `replaceStale`, a rename over the socket file if it is still stale.
 * Returns an error, or null on success.
 */
async function placeSocket(
  temp: string,
  full: string,
  replaceStale: boolean,
): Promise<MappedError | null> {
  if (replaceStale) {
    // Check again just before replacing: the path may have changed meanwhile.
    const status = await probeLocalServer(full);
    if (status === 'stale') {
      try {
        fs.renameSync(temp, full);
        return null;
      } catch (err) {
        return mapListenError(err);
      }
    }
    if (status !== 'absent') return addressInUse();
  }
  try {
    fs.linkSync(temp, full);
    return null;
  } catch (err) {
    return mapListenError(err);
  }
}

/**
 * Listens on `address`; resolves the error, or null. `exclusive` false shares the cluster
 * primary's socket in a worker. `bound` runs right after the bind. `access` (Windows) adds
 * Everyone to the pipe's DACL.
 */
function listenOn(
  server: net.Server,
  address: string,
  backlog: number,
  exclusive: boolean,
  bound?: () => void,
  access?: { readableAll: boolean; writableAll: boolean },
): Promise<Error | null> {
  return listenOutcome(server, (done) => {
    try {
      server.listen({ path: address, backlog, exclusive, ...access }, done);
    } finally {
      // Node binds a Unix socket synchronously inside listen(), so the bind is over here,
      // whether it failed or not (a failure is reported later, as an 'error' event).
      bound?.();
    }
  });
}
