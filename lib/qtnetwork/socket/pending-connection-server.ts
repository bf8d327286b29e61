import cluster from 'node:cluster';
import * as net from 'node:net';

import { AcceptQueue, DEFAULT_BACKLOG } from './accept-queue.js';
import type { MappedError } from './native-errors.js';
import { nativeDescriptor, type NativeSocketHandle } from './native-handle.js';
import { qWarning } from '../core/qlogging.js';
import { BindFlag, SocketError } from '../kernel/socket-enums.js';

/** What a server needs of the sockets it hands out. */
export interface PendingSocket {
  /** Adopts an accepted connection; false if the socket cannot use it. */
  setSocketDescriptor(handle: NativeSocketHandle): boolean;
  /** Closes at once (a pending socket nobody took, when the server closes). */
  abort(): void;
}

/**
 * A Node server that accepts the way the port's servers need: connections stay un-read
 * until handed out (the AcceptQueue holds them in the kernel's place), and a peer's end of
 * stream does not close our side (Qt sockets are half-open until told otherwise).
 */
export function createAcceptingServer(): net.Server {
  return net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
}

/**
 * Runs `start`, a `server.listen(...)` call given `done` as its callback, and resolves the
 * error it failed with (thrown at once or emitted later), or null once the server listens.
 */
export function listenOutcome(
  server: net.Server,
  start: (done: () => void) => void,
): Promise<Error | null> {
  return new Promise((resolve) => {
    server.once('error', resolve);
    try {
      start(() => resolve(null));
    } catch (err) {
      resolve(err as Error);
    }
  });
}

/**
 * What QTcpServer and QLocalServer share. In Qt the two classes are unrelated and each
 * carries its own copy of the pending-connection API, the last error and the accept loop;
 * here they are written once, on top of the AcceptQueue, and each class keeps what is
 * its own: how it listens, which socket it makes, when it emits `newConnection`.
 */
export abstract class PendingConnectionServer<S extends PendingSocket> {
  /** True while listening (for QTcpServer also through a SOCKS5 BIND, with no Node server). */
  protected listening = false;
  /** True while a `listen` is under way; `close()` clears it to cancel that listen. */
  protected binding = false;
  protected readonly queue = new AcceptQueue<S>({
    handOut: (raw) => this.incomingConnection(raw),
    afterHandOut: () => this.incomingConnectionDone(),
    pendingCount: () => this.totalPendingConnections(),
  });
  private server: net.Server | null = null;
  private bindMode: number = BindFlag.DefaultForPlatform;
  private serverErr = SocketError.UnknownSocketError;
  private serverErrText = '';

  /** True while listening. */
  isListening(): boolean {
    return this.listening;
  }

  /** The last error; UnknownSocketError until one occurs. */
  serverError(): SocketError {
    return this.serverErr;
  }

  /** The last error's text; empty until one occurs (as in Qt). */
  errorString(): string {
    return this.serverErrText;
  }

  /** How many connections may be handed out before `nextPendingConnection` (default 30). */
  maxPendingConnections(): number {
    return this.queue.maxPending;
  }

  /** Sets the pending-connection limit; raising it hands out waiting connections. */
  setMaxPendingConnections(n: number): void {
    this.queue.maxPending = n;
    this.queue.scheduleDrain();
  }

  /** The listen backlog, which also bounds the connections waiting beyond the pending limit (default 50). */
  listenBacklogSize(): number {
    return this.queue.backlog;
  }

  /** Sets the backlog; applies to the next `listen` (and to the waiting bound at once). */
  setListenBacklogSize(size: number): void {
    this.queue.backlog = size < 0 ? DEFAULT_BACKLOG : size;
  }

  /**
   * Port extension (Qt's servers take no bind mode): BindFlag values for the next `listen`.
   * `ShareAddress` lets a process started by `node:cluster` (a worker) share the cluster
   * primary's listening socket for the same address: every worker that listens there
   * serves, and the primary hands each new connection to one of them. Outside a worker it
   * changes nothing: a second server on an address in use fails with AddressInUseError.
   * `DefaultForPlatform` (the default) and `DontShareAddress` give the server a socket of
   * its own, worker or not; `DontShareAddress` wins when combined with `ShareAddress`.
   * `ReuseAddressHint` changes nothing: Node already sets SO_REUSEADDR on every TCP
   * listening socket on Unix, as Qt's QTcpServer does.
   */
  setListenBindMode(mode: number): void {
    this.bindMode = mode;
  }

  /** The BindFlag values set with `setListenBindMode`; DefaultForPlatform by default. */
  listenBindMode(): number {
    return this.bindMode;
  }

  /** True if a connection can be taken with `nextPendingConnection`. */
  hasPendingConnections(): boolean {
    return this.queue.pending.length > 0;
  }

  /**
   * Takes the oldest pending connection (its parent is now the caller), or null if none.
   * Taking one lets the next waiting connection be handed out.
   */
  nextPendingConnection(): S | null {
    return this.queue.next();
  }

  /**
   * The listening descriptor, or -1 when not listening (read from Node's internal handle).
   * Also -1 in a cluster worker that shares the primary's socket: the descriptor is the
   * primary's, and the worker holds none.
   */
  socketDescriptor(): number {
    return this.listening ? nativeDescriptor(this.server) : -1;
  }

  /**
   * True when the next `listen` goes through the cluster primary: ShareAddress (without
   * DontShareAddress) in a `node:cluster` worker. Node's `exclusive: false` then asks the
   * primary for its socket, which the primary binds once for all workers.
   */
  protected listensThroughPrimary(): boolean {
    const mode = this.bindMode;
    return (
      cluster.isWorker &&
      (mode & BindFlag.ShareAddress) !== 0 &&
      (mode & BindFlag.DontShareAddress) === 0
    );
  }

  /** Called for each accepted connection the pending limit lets through (Qt's virtual). */
  protected abstract incomingConnection(handle: NativeSocketHandle): void;

  /** Adds `socket` to the pending connections (works whether or not the server listens). */
  protected addPendingConnection(socket: S): void {
    this.queue.addPending(socket);
  }

  /** Runs after each `incomingConnection`; QTcpServer emits `newConnection` here. */
  protected incomingConnectionDone(): void {}

  /**
   * The connections that count against `maxPendingConnections()` (Qt's private
   * `totalPendingConnections`): the pending list. QSslServer adds the connections still in
   * their handshake.
   */
  protected totalPendingConnections(): number {
    return this.queue.pending.length;
  }

  /**
   * The usual body of `incomingConnection`: `socket` adopts the connection and joins the
   * pending list. A connection the socket refuses is closed, since nobody else will.
   * False if it was refused.
   */
  protected addIncoming(socket: S, handle: NativeSocketHandle): boolean {
    if (!socket.setSocketDescriptor(handle)) {
      handle.destroy();
      return false;
    }
    this.addPendingConnection(socket);
    return true;
  }

  /** Records the last error (`serverError`, `errorString`). */
  protected setServerError(mapped: MappedError): void {
    this.serverErr = mapped.error;
    this.serverErrText = mapped.text;
  }

  /**
   * True, after Qt's warning "`caller`() called when already listening", if the server
   * listens or is about to; the caller then does nothing.
   */
  protected alreadyListening(caller: string): boolean {
    if (!this.listening && !this.binding) return false;
    qWarning(`${caller}() called when already listening`);
    return true;
  }

  /**
   * Hands the connections of `server`, which now listens, to the queue. Errors after this
   * point are accept errors, for `onAcceptError`.
   */
  protected startAccepting(server: net.Server, onAcceptError: (err: Error) => void): void {
    server.removeAllListeners('error');
    server.on('error', onAcceptError);
    server.on('connection', (raw: net.Socket) => {
      // A connection the closed (or replaced) server accepted in its last moments.
      if (server !== this.server || !this.listening) {
        raw.destroy();
        return;
      }
      this.queue.offer(raw);
    });
    this.server = server;
    this.listening = true;
    this.queue.start();
  }

  /**
   * Stops listening: cancels a listen under way, closes the connections still waiting and
   * the pending ones nobody took (Qt deletes them), then the Node server.
   */
  protected stopListening(): void {
    const server = this.server;
    this.server = null;
    this.listening = false;
    this.binding = false;
    for (const socket of this.queue.stop()) socket.abort();
    server?.close();
  }
}
