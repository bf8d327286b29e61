import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';

import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { from, Observable, throwError, timeout } from 'rxjs';

import {
  LocalSocketError,
  ProxyType,
  QLocalSocket,
  QNetworkProxy,
  QSslSocket,
  QTcpSocket,
  SocketState,
  socketErrorName,
  type SocketError,
} from '../qtnetwork/index.js';

import { AckedEvents } from './wire/acked-events.js';
import {
  ClientClosedError,
  QtConnectionError,
  ServerClosingError,
  UntrustedSocketOwnerError,
  RequestTimeoutError,
  type QtTransportError,
} from './wire/errors.js';
import {
  resolveQtOptions,
  type QtProxyOptions,
  type QtTransportOptions,
  type ResolvedQtOptions,
} from './options.js';
import { ackOf, checkReplyPacket, type ReplyQtPacket } from './wire/packets.js';
import { QtConnection, type ConnectionLimits, type QtStreamSocket } from './wire/qt-connection.js';
import { sslConfiguration } from './tls.js';
import { prepareLocalPath } from './local-path.js';

/** Events of ClientQt, for `on(event, callback)`. */
export interface QtClientEvents {
  [event: string]: (...args: never[]) => unknown;
  /** Connected (also after a reconnect). */
  connect: (socket: QtStreamSocket) => void;
  /** The connection was lost or closed. */
  disconnect: () => void;
  /** A reconnect attempt is scheduled: attempt number and delay in ms. */
  reconnecting: (attempt: number, delayMs: number) => void;
  /** The server broke the protocol or a limit; the connection is closed. */
  protocolError: (error: QtTransportError) => void;
}

type Callback = (packet: WritePacket) => void;

/** The Qt proxy type of each `proxy.type`. */
const PROXY_TYPES: Record<QtProxyOptions['type'], ProxyType> = {
  socks5: ProxyType.Socks5Proxy,
  http: ProxyType.HttpProxy,
  none: ProxyType.NoProxy,
  default: ProxyType.DefaultProxy,
};

/** How long `close()` waits for the server to take what was emitted before aborting. */
const CLOSE_GRACE_MS = 5000;

/**
 * The error a failed request gets for an error reply's `err`: a server's closing notice
 * becomes ServerClosingError (the request did not run); anything else is passed on as sent.
 */
function replyError(err: unknown): unknown {
  if (
    typeof err === 'object' &&
    err !== null &&
    (err as { code?: unknown }).code === 'QT_SERVER_CLOSING'
  ) {
    const message = (err as { message?: unknown }).message;
    return new ServerClosingError(typeof message === 'string' ? message : 'The server is closing');
  }
  return err;
}

/** The name of a QLocalSocket error, e.g. 'ServerNotFoundError'. */
function localErrorName(error: LocalSocketError): string {
  return LocalSocketError[error] ?? 'UnknownSocketError';
}

/**
 * A NestJS ClientProxy on the Qt port: one multiplexed connection (numeric ids) over a
 * QTcpSocket (optionally through a proxy) or a QLocalSocket, connected lazily.
 *
 * - The first connection attempt is bounded by `connectTimeout`; if it fails, the requests
 *   waiting for it fail with the Qt error and its text, and the next `send` tries again.
 * - After an established connection is lost, `reconnect` retries with doubling delays and
 *   jitter; requests issued meanwhile wait for it (bounded by `requestTimeout` when set).
 * - `requestTimeout` bounds the time to a request's first reply; unsubscribing (or the
 *   timeout) sends a cancel frame, which tears the handler's Observable down.
 * - `emit` completes once the event's frame is written; `close()` writes what was emitted
 *   before it, and fails pending requests with ClientClosedError.
 */
export class ClientQt extends ClientProxy {
  private readonly opts: ResolvedQtOptions;
  /** The client's connection is held to the options, without a server's idle timeout. */
  private readonly limits: ConnectionLimits;
  private socket: QtStreamSocket | null = null;
  private conn: QtConnection | null = null;
  private connecting: Promise<QtStreamSocket> | null = null;
  private reconnecting: Promise<QtStreamSocket> | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private nextId = 1;
  /** Requests sent on the current connection and waiting for their last reply, by id. */
  private readonly calls = new Map<number, Callback>();
  private closedByUser = false;
  /** Acknowledged-event mode: events sent and not yet acknowledged; null when off. */
  private readonly unacked: AckedEvents<ReadPacket> | null;
  private readonly emitter = new EventEmitter();
  /** Why this client dropped a connection itself (a protocol error or a limit). */
  private readonly connectionFailure = new WeakMap<QtConnection, unknown>();

  /** Validates `options` at once; a wrong option throws InvalidOptionError. */
  constructor(options: QtTransportOptions = {}) {
    super();
    this.opts = resolveQtOptions(options, 'client');
    this.limits = { ...this.opts, idleTimeout: 0 };
    this.unacked = this.opts.acknowledgedEvents
      ? new AckedEvents<ReadPacket>(this.opts.acknowledgedEvents)
      : null;
    this.initializeSerializer(options as never);
    this.initializeDeserializer(options as never);
  }

  /** Connects (once; later calls share the connection or the attempt in progress). */
  connect(): Promise<QtStreamSocket> {
    this.closedByUser = false;
    if (this.conn && !this.conn.isClosed() && this.socket) return Promise.resolve(this.socket);
    if (this.reconnecting) return this.reconnecting;
    if (this.connecting) return this.connecting;
    const attempt = this.openConnection().finally(() => {
      if (this.connecting === attempt) this.connecting = null;
    });
    this.connecting = attempt;
    return attempt;
  }

  /**
   * Closes: pending requests fail with ClientClosedError, events emitted before on an
   * established connection are still written, then the connection closes. Resolves when it
   * has. An event still waiting for the first connection attempt is not sent: its `emit`
   * fails with ClientClosedError.
   */
  async close(): Promise<void> {
    this.closedByUser = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const closedError = new ClientClosedError();
    this.unacked?.failAll(closedError);
    for (const [id, callback] of [...this.calls.entries()]) {
      this.calls.delete(id);
      (callback as Callback)({ err: closedError, isDisposed: true });
    }
    // Events emitted just before close() reach dispatchEvent a few promise callbacks later:
    // keep the connection until they have been written.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const conn = this.conn;
    const socket = this.socket;
    this.conn = null;
    this.socket = null;
    if (conn && socket) await conn.closeAndWait(CLOSE_GRACE_MS);
    this._status$.next('disconnected');
  }

  /** Registers a listener for one of QtClientEvents. */
  override on(event: string, callback: (...args: never[]) => unknown): void {
    this.emitter.on(event, callback as (...args: unknown[]) => void);
  }

  /** The QTcpSocket or QLocalSocket of the current connection; throws when there is none. */
  unwrap<T = QtStreamSocket>(): T {
    if (!this.socket) {
      throw new Error('Not initialized. Please call the "connect" method first.');
    }
    return this.socket as T;
  }

  /** Sends a request; with `requestTimeout`, fails with RequestTimeoutError if no reply comes in time. */
  override send<TResult = unknown, TInput = unknown>(
    pattern: unknown,
    data: TInput,
  ): Observable<TResult> {
    // Nest's own checks (and its error) for a missing pattern or data.
    if (pattern === null || pattern === undefined || data === null || data === undefined) {
      return super.send<TResult, TInput>(pattern, data);
    }
    // Nest's ClientProxy.send, without the operator chain on the common path: when the
    // connection is up the request is published at subscription, with no promise hop.
    const source = new Observable<TResult>((observer) => {
      const nestCallback = this.createObserver(observer);
      // Nest's observer takes only a truthy `err` for an error; an error reply of 0, '' or
      // false must fail the request too.
      const callback: Callback = (packet) => {
        if ('err' in packet && packet.err !== undefined && packet.err !== null && !packet.err) {
          observer.error(this.serializeError(packet.err));
          return;
        }
        nestCallback(packet);
      };
      if (this.conn && !this.conn.isClosed()) {
        return this.publish(this.packetOf(pattern, data), callback);
      }
      let teardown: (() => void) | null = null;
      let cancelled = false;
      this.connect().then(
        () => {
          if (!cancelled) teardown = this.publish(this.packetOf(pattern, data), callback);
        },
        (err: unknown) => observer.error(err),
      );
      return () => {
        cancelled = true;
        teardown?.();
      };
    });
    const ms = this.opts.requestTimeout;
    if (ms <= 0) return source;
    const name = typeof pattern === 'string' ? pattern : JSON.stringify(pattern);
    return source.pipe(
      timeout({ first: ms, with: () => throwError(() => new RequestTimeoutError(name, ms)) }),
    );
  }

  /**
   * Emits an event (Nest's ClientProxy.emit): hot, completes once the frame is written.
   * When the connection is up, the frame is queued at once, without Nest's operator chain.
   */
  override emit<TResult = unknown, TInput = unknown>(
    pattern: unknown,
    data: TInput,
  ): Observable<TResult> {
    if (
      this.unacked &&
      pattern !== null &&
      pattern !== undefined &&
      data !== null &&
      data !== undefined
    ) {
      const packet = this.packetOf(pattern, data);
      const acknowledged = this.connect().then(() => this.emitAcknowledged<TResult>(packet));
      acknowledged.catch(() => undefined);
      return from(acknowledged);
    }
    const conn = this.conn;
    if (
      pattern === null ||
      pattern === undefined ||
      data === null ||
      data === undefined ||
      !conn ||
      conn.isClosed()
    ) {
      return super.emit<TResult, TInput>(pattern, data);
    }
    const written = this.dispatchEvent<TResult>(this.packetOf(pattern, data));
    // Nobody may subscribe: the failure is still delivered to whoever does.
    written.catch(() => undefined);
    return from(written);
  }

  /** Sends an event that the server acknowledges; resolves on the acknowledgement. */
  private async emitAcknowledged<T>(packet: ReadPacket): Promise<T> {
    await this.unacked!.add(packet, (numbered) => {
      const conn = this.conn;
      // Not connected: it goes out with the others after the reconnect.
      if (conn && !conn.isClosed()) this.sendPacket(conn, numbered);
    });
    return undefined as T;
  }

  /** Serializes (Nest's serializer) and sends one packet with the configured codec. */
  private sendPacket(conn: QtConnection, packet: object): void {
    conn.send(this.serializer.serialize(packet as never) as unknown, this.opts.codec);
  }

  /** Nest's createPacket (which runs the dispatch hook) where the Nest major has it. */
  private packetOf(pattern: unknown, data: unknown): ReadPacket {
    const create = (this as unknown as { createPacket?: (p: unknown, d: unknown) => ReadPacket })
      .createPacket;
    return typeof create === 'function' ? create.call(this, pattern, data) : { pattern, data };
  }

  /** The options in force, with every default filled in. */
  resolvedOptions(): Readonly<ResolvedQtOptions> {
    return this.opts;
  }

  protected publish(packet: ReadPacket, callback: Callback): () => void {
    if (this.closedByUser) {
      callback({ err: new ClientClosedError(), isDisposed: true });
      return () => undefined;
    }
    const conn = this.conn;
    if (!conn || conn.isClosed()) {
      callback({
        err: new QtConnectionError('NotConnected', 'The client is not connected'),
        isDisposed: true,
      });
      return () => undefined;
    }
    const id = this.nextId++;
    this.calls.set(id, callback);
    try {
      this.sendPacket(conn, { ...packet, id });
    } catch (err) {
      this.calls.delete(id);
      callback({ err, isDisposed: true });
      return () => undefined;
    }
    return () => {
      if (!this.calls.delete(id)) return;
      // The caller unsubscribed before the last reply: tell the server to stop.
      if (this.conn === conn && !conn.isClosed()) {
        this.sendPacket(conn, { id, cancel: true });
      }
    };
  }

  protected async dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    const conn = this.conn;
    if (!conn || conn.isClosed())
      throw new QtConnectionError('NotConnected', 'The client is not connected');
    this.sendPacket(conn, packet);
    await conn.whenWritten();
    return undefined as T;
  }

  // ---------------------------------------------------------------- connecting

  private createSocket(): QtStreamSocket {
    if (this.opts.transport === 'local') return new QLocalSocket();
    let socket: QTcpSocket;
    if (this.opts.tls) {
      const ssl = new QSslSocket();
      ssl.setSslConfiguration(sslConfiguration(this.opts.tls));
      socket = ssl;
    } else {
      socket = new QTcpSocket();
    }
    const p = this.opts.proxy;
    const type = PROXY_TYPES[p.type];
    socket.setProxy(
      new QNetworkProxy(type, p.hostName ?? '', p.port ?? 0, p.user ?? '', p.password ?? ''),
    );
    if (this.opts.readBufferSize > 0) socket.setReadBufferSize(this.opts.readBufferSize);
    return socket;
  }

  /**
   * Connects and completes the TLS handshake (bounded by connectTimeout, then the
   * handshake timeout). Nothing is written before `encrypted`: requests wait for this.
   */
  private async connectEncrypted(socket: QSslSocket): Promise<boolean> {
    const tls = this.opts.tls!;
    socket.connectToHostEncrypted(this.opts.host, this.opts.port, undefined, tls.peerName);
    if (!(await socket.waitForConnected(this.opts.connectTimeout))) return false;
    return socket.waitForEncrypted(tls.handshakeTimeout);
  }

  /**
   * Refuses a local server socket that another user owns (docs/reliability.md, "Local
   * sockets"): in a shared directory such as /tmp anyone can listen on a name first and
   * would receive this client's requests. A missing file is left to the connect to report.
   */
  private checkSocketOwner(path: string): void {
    const trusted = this.opts.trustedSocketOwners;
    if (trusted === 'any' || typeof process.getuid !== 'function') return;
    let owner: number;
    try {
      owner = statSync(path).uid;
    } catch {
      return;
    }
    if (owner === process.getuid() || owner === 0 || trusted.includes(owner)) return;
    throw new UntrustedSocketOwnerError(path, owner);
  }

  private async openConnection(): Promise<QtStreamSocket> {
    const localPath =
      this.opts.transport === 'local' ? prepareLocalPath(this.opts.name, false) : '';
    if (localPath) this.checkSocketOwner(localPath);
    const socket = this.createSocket();
    const ok =
      socket instanceof QLocalSocket
        ? (socket.connectToServer(localPath),
          await socket.waitForConnected(this.opts.connectTimeout))
        : socket instanceof QSslSocket
          ? await this.connectEncrypted(socket)
          : (socket.connectToHost(this.opts.host, this.opts.port),
            await socket.waitForConnected(this.opts.connectTimeout));
    if (!ok) {
      // Still connecting: the attempt ran out of connectTimeout (a QLocalSocket keeps trying).
      const timedOut = socket.state() === SocketState.ConnectingState;
      const handshakeTimedOut =
        socket instanceof QSslSocket &&
        socket.state() === SocketState.ConnectedState &&
        !socket.isEncrypted();
      const error = timedOut
        ? new QtConnectionError(
            'SocketTimeoutError',
            `Connection timed out after ${this.opts.connectTimeout} ms`,
          )
        : handshakeTimedOut
          ? new QtConnectionError(
              'SslHandshakeFailedError',
              `The TLS handshake did not complete within ${this.opts.tls!.handshakeTimeout} ms`,
            )
          : socket instanceof QLocalSocket
            ? new QtConnectionError(localErrorName(socket.error()), socket.errorString())
            : new QtConnectionError(
                socketErrorName(socket.error() as SocketError),
                socket.errorString(),
              );
      socket.abort();
      throw error;
    }
    if (this.closedByUser) {
      socket.abort();
      throw new ClientClosedError();
    }
    this.adopt(socket);
    return socket;
  }

  private adopt(socket: QtStreamSocket): void {
    QtConnection.applySocketOptions(socket, this.opts);
    const conn = new QtConnection(socket, this.limits, {
      onPacket: (value) => this.onReply(value),
      onProtocolError: (error) => {
        // The requests on this connection fail with this cause, not as a plain close.
        this.connectionFailure.set(conn, error);
        this.emitter.emit('protocolError', error);
      },
      onClosed: () => this.onConnectionLost(conn),
    });
    this.socket = socket;
    this.conn = conn;
    this._status$.next('connected');
    this.emitter.emit('connect', socket);
    conn.start();
    this.unacked?.resend((packet) => this.sendPacket(conn, packet));
  }

  private onReply(value: unknown): void {
    const ack = ackOf(value);
    if (ack) {
      this.unacked?.acknowledge(ack.ackId);
      return;
    }
    let reply: ReplyQtPacket;
    try {
      // The packet is checked as it came (a request or event sent to a client is a protocol
      // error), and only the reply's own fields reach Nest's deserializer: it would take a
      // packet with any other key (a version, a trace id) for a foreign payload and resolve
      // the request with the whole packet, an error reply included.
      const { id, response, err, isDisposed, status } = checkReplyPacket(value);
      reply = checkReplyPacket(
        this.deserializer.deserialize({ id, response, err, isDisposed, status }) as unknown,
      );
    } catch (err) {
      const conn = this.conn;
      if (conn) this.connectionFailure.set(conn, err);
      this.emitter.emit('protocolError', err);
      conn?.abort();
      return;
    }
    // This client's ids are numbers; a string id never matches one of them.
    const id = reply.id as number;
    const callback = this.calls.get(id);
    if (!callback) return;
    // An error reply is one that carries `err` (null and absent are no error); 0, '' and
    // false are errors too, delivered as they are.
    if (reply.err !== undefined && reply.err !== null) {
      this.calls.delete(id);
      callback({ err: replyError(reply.err), isDisposed: true });
      return;
    }
    if (reply.isDisposed) {
      this.calls.delete(id);
      callback({ response: reply.response, isDisposed: true });
      return;
    }
    callback({ response: reply.response });
  }

  private onConnectionLost(conn: QtConnection): void {
    if (this.conn !== conn) return;
    this.conn = null;
    const socket = this.socket;
    this.socket = null;
    this.emitter.emit('disconnect');
    // Requests already sent on this connection can no longer be answered.
    // The socket's own error when it has one (a keepalive timeout is a NetworkError,
    // "Connection timed out"); a plain close from the peer otherwise.
    const socketError = socket ? (socket.error() as number) : -1;
    const code =
      socket instanceof QLocalSocket
        ? socketError >= 0
          ? localErrorName(socketError as LocalSocketError)
          : 'PeerClosedError'
        : socketError >= 0
          ? socketErrorName(socketError as SocketError)
          : 'RemoteHostClosedError';
    const failure = this.connectionFailure.get(conn);
    this.connectionFailure.delete(conn);
    const lost =
      failure ??
      new QtConnectionError(code, `The connection was lost: ${socket?.errorString() ?? 'closed'}`);
    for (const [id, callback] of [...this.calls.entries()]) {
      this.calls.delete(id);
      callback({ err: lost, isDisposed: true });
    }
    if (this.closedByUser || this.opts.reconnect === false) {
      this.unacked?.failAll(lost);
      this._status$.next('disconnected');
      return;
    }
    this.startReconnecting(this.opts.reconnect);
  }

  private startReconnecting(policy: {
    retries: number;
    initialDelay: number;
    maxDelay: number;
  }): void {
    this._status$.next('reconnecting');
    let settle!: { resolve: (s: QtStreamSocket) => void; reject: (e: unknown) => void };
    const promise = new Promise<QtStreamSocket>((resolve, reject) => {
      settle = { resolve, reject };
    });
    // Nobody may be waiting for it: never an unhandled rejection.
    promise.catch(() => undefined);
    this.reconnecting = promise;
    let attempt = 0;
    let lastError: unknown = null;
    const next = (): void => {
      if (this.closedByUser) {
        this.reconnecting = null;
        settle.reject(new ClientClosedError());
        return;
      }
      if (attempt >= policy.retries) {
        this.reconnecting = null;
        const failure =
          lastError ?? new QtConnectionError('UnknownSocketError', 'Reconnecting failed');
        this.unacked?.failAll(failure);
        this._status$.next('disconnected');
        settle.reject(failure);
        return;
      }
      attempt++;
      const base = Math.min(policy.maxDelay, policy.initialDelay * 2 ** (attempt - 1));
      const delay = Math.round(base / 2 + Math.random() * (base / 2));
      this.emitter.emit('reconnecting', attempt, delay);
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        this.openConnection().then(
          (socket) => {
            this.reconnecting = null;
            settle.resolve(socket);
          },
          (err: unknown) => {
            lastError = err;
            next();
          },
        );
      }, delay);
    };
    next();
  }
}
