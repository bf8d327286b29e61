import cluster from 'node:cluster';
import { EventEmitter } from 'node:events';

import { Server, type CustomTransportStrategy, type WritePacket } from '@nestjs/microservices';
import { finalize, tap, type Subscription } from 'rxjs';

import {
  BindFlag,
  QLocalServer,
  QSslServer,
  QTcpServer,
  SocketError,
  socketErrorName,
  type QSslSocket,
} from '../qtnetwork/index.js';

import type { CodecName } from './wire/codec.js';
import {
  DuplicateRequestIdError,
  FrameTooLargeError,
  IdleAtCapacityError,
  MemoryBudgetExceededError,
  QtListenError,
  TlsHandshakeError,
  asTransportError,
  type QtTransportError,
} from './wire/errors.js';
import { resolveQtOptions, type QtTransportOptions, type ResolvedQtOptions } from './options.js';
import { MemoryBudget } from './wire/memory-budget.js';
import {
  ackPacket,
  classifyServerPacket,
  drainingPacket,
  pongPacket,
  takeAckId,
  type IncomingQtPacket,
} from './wire/packets.js';
import {
  QtConnection,
  type ConnectionLimits,
  type QtConnectionEvents,
  type QtStreamSocket,
} from './wire/qt-connection.js';
import { QtContext } from './qt-context.js';
import { sslConfiguration } from './tls.js';
import { streamReplies } from './stream-replies.js';
import { accessFlags, listenAddress, systemdListenFd } from './listening.js';
import { prepareLocalPath } from './local-path.js';
import { LOCAL_TRANSPORT, QtTelemetry, type QtCallTrace } from './telemetry/qt-telemetry.js';

/** The identifier of this transport (Nest's `transportId`). */
export const QT_TRANSPORT = Symbol.for('nestjs-qt-transport');

/** Nest's text for a request whose pattern has no handler. */
export const NO_MESSAGE_HANDLER =
  'There is no matching message handler defined in the remote service.';

/** The status ServerQt and ClientQt report through `status`. */
export type QtTransportStatus = 'connected' | 'disconnected' | 'reconnecting';

/** Events of ServerQt, for `on(event, callback)`. */
export interface QtServerEvents {
  [event: string]: (...args: never[]) => unknown;
  /** The server listens. */
  listening: () => void;
  /** A connection was accepted. */
  connection: (socket: QtStreamSocket) => void;
  /** A connection was closed because the peer broke the protocol or a limit. */
  protocolError: (error: QtTransportError, socket: QtStreamSocket) => void;
  /** A connection ended. */
  disconnect: (socket: QtStreamSocket) => void;
  /**
   * With `tls`: a client failed the TLS handshake (it was closed, never served). Not for a
   * peer that closed before sending anything (a health check): that is a debug log line only.
   */
  tlsError: (error: QtTransportError, socket: QtStreamSocket) => void;
  /** The server closed. */
  close: () => void;
}

/**
 * Handlers one connection may have running at once; beyond, its packets wait in the
 * socket (TCP holds the peer back), so a peer that pipelines thousands of requests cannot
 * make the server hold thousands of replies. Reading resumes below half of it.
 */
const MAX_ACTIVE_PER_CONNECTION = 128;

/**
 * The error reply to a request that arrives while the server closes: it was not run, so the
 * caller may send it elsewhere (ClientQt fails it with ServerClosingError).
 */
const SERVER_CLOSING = {
  code: 'QT_SERVER_CLOSING',
  message: 'The server is closing: the request was not run',
} as const;

/** How long a closing server waits for a peer to take its last replies before aborting. */
const CONNECTION_CLOSE_GRACE_MS = 2000;

/**
 * How long a closing server waits for a peer to answer its draining notice (or
 * `closeTimeout`, if smaller; docs/protocol.md, "Draining"). Until then everything the peer
 * sends is served, since it may have crossed the notice. A peer silent that long does not
 * know the packet (a Qt program, an older client): from then on its new requests are
 * answered with QT_SERVER_CLOSING, and its connection closes once nothing runs for it.
 */
const DRAIN_ACK_WAIT_MS = 1000;

/**
 * At maxConnections, how long a connection must have been idle before it may be closed to
 * admit a waiting one: a connection in use (something at least every second) keeps its
 * place, and a server full of silent peers takes a newcomer within about a second.
 */
const MIN_IDLE_TO_CLOSE_MS = 1000;

/** One accepted connection and the streamed replies it has running, by request id. */
class ServerConnection {
  readonly conn: QtConnection;
  /** The subscriptions of handlers' streams, by request id. */
  readonly requests = new Map<string | number, Subscription>();
  /** Ids of the requests in flight (as on the wire), from arrival until their last reply. */
  readonly pending = new Set<string | number>();
  /** Requests cancelled before their handler's stream existed: it is not subscribed. */
  readonly cancelled = new Set<string | number>();
  /**
   * Requests whose stream has sent a value and not ended yet, with what writes their last
   * reply: a close ends them at once.
   */
  readonly streaming = new Map<string | number, () => void>();
  /** Requests and events of this connection whose handler has not finished. */
  work = 0;
  /** The codec of the last packet received: the draining notice speaks the peer's language. */
  lastCodec: CodecName = 'json';
  /**
   * Where this connection is in a drain (docs/protocol.md, "Draining"):
   * - 'serving': no drain;
   * - 'notified': the server sent its notice and serves everything while it waits for the
   *   peer's answer (up to DRAIN_ACK_WAIT_MS);
   * - 'peerDone': the peer said it sends nothing more (in answer, or on its own): the
   *   connection closes once nothing runs for it;
   * - 'unaware': no answer came in time: new requests get QT_SERVER_CLOSING, and the
   *   connection closes once nothing runs for it.
   */
  drain: 'serving' | 'notified' | 'peerDone' | 'unaware' = 'serving';
  /** Ends the wait for the peer's answer. */
  ackTimer: NodeJS.Timeout | null = null;
  /** The drain rule has started closing this connection. */
  drainClosing = false;

  constructor(
    readonly socket: QtStreamSocket,
    limits: ConnectionLimits,
    events: {
      [K in keyof QtConnectionEvents]: (
        self: ServerConnection,
        ...args: Parameters<QtConnectionEvents[K]>
      ) => void;
    },
  ) {
    this.conn = new QtConnection(socket, limits, {
      onPacket: (value, codec) => events.onPacket(this, value, codec),
      onProtocolError: (error) => events.onProtocolError(this, error),
      onClosed: () => events.onClosed(this),
    });
  }

  /** Tears down every handler's stream still running for this connection. */
  cancelAll(): void {
    for (const id of this.pending) this.cancelled.add(id);
    for (const sub of [...this.requests.values()]) sub.unsubscribe();
    this.requests.clear();
  }
}

/**
 * A NestJS microservice transport strategy on the Qt port: a QTcpServer or a QLocalServer,
 * framed exactly as Qt's `QDataStream << QByteArray`, with JSON or CBOR packets in Nest's
 * shape. Use it with `NestFactory.createMicroservice(AppModule, { strategy: new ServerQt(options) })`.
 */
export class ServerQt
  extends Server<Record<string, (...args: never[]) => unknown>, QtTransportStatus>
  implements CustomTransportStrategy
{
  override transportId: symbol = QT_TRANSPORT;
  private readonly opts: ResolvedQtOptions;
  /** What every connection is held to (the options, and the per-connection handler limit). */
  private readonly limits: ConnectionLimits;
  private qtServer: QTcpServer | QLocalServer | null = null;
  private readonly connections = new Set<ServerConnection>();
  private readonly emitter = new EventEmitter();
  /** Spans and durations, when an OpenTelemetry SDK is registered. */
  private readonly telemetry: QtTelemetry;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private closing = false;
  /** True while maxConnections is reached and connections wait (logged once per episode). */
  private atCapacity = false;
  /** acceptPending's loop runs: a place freed meanwhile is its to fill. */
  private accepting = false;
  /** Looks again, while connections wait at the cap, for one idle long enough to close. */
  private capacityTimer: NodeJS.Timeout | null = null;

  /** Validates `options` at once; a wrong option throws InvalidOptionError. */
  constructor(options: QtTransportOptions = {}) {
    super();
    this.opts = resolveQtOptions(options, 'server');
    this.limits = {
      ...this.opts,
      maxActiveWork: MAX_ACTIVE_PER_CONNECTION,
      memoryBudget:
        this.opts.maxBufferedBytes > 0 ? new MemoryBudget(this.opts.maxBufferedBytes) : null,
    };
    this.initializeSerializer(options as never);
    this.initializeDeserializer(options as never);
    this.telemetry = new QtTelemetry('server', () => {
      const server = this.qtServer;
      if (!server) return null;
      return server instanceof QLocalServer
        ? { address: server.fullServerName(), transport: LOCAL_TRANSPORT }
        : { address: this.opts.host, port: server.serverPort(), transport: 'tcp' };
    });
  }

  /**
   * Starts listening. A failure reaches Nest through `callback` as an Error whose message
   * is Qt's `errorString()` and whose `code` is the Qt error's name
   * (e.g. 'AddressInUseError'); nothing is left half-open.
   */
  async listen(callback: (err?: unknown, ...optionalParams: unknown[]) => void): Promise<void> {
    try {
      await this.start();
    } catch (err) {
      this._status$.next('disconnected');
      callback(err);
      return;
    }
    this._status$.next('connected');
    this.emitter.emit('listening');
    callback();
  }

  /**
   * Closes gracefully, draining (docs/protocol.md, "Draining"): stops accepting, tells every
   * connection that the server is draining, and serves what arrives until its peer answers
   * that it sends nothing more; each connection then closes once its handlers are done and
   * their replies written. A peer that does not answer within DRAIN_ACK_WAIT_MS gets
   * QT_SERVER_CLOSING for its new requests and is closed once nothing runs for it. All of
   * it within `closeTimeout`; then whatever is left is closed (and the local socket file
   * removed). Nothing runs on the old connections afterwards.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const server = this.qtServer;
    this.qtServer = null;
    server?.close();
    const ackWaitMs = Math.min(DRAIN_ACK_WAIT_MS, this.opts.closeTimeout);
    for (const c of this.connections) this.notifyDraining(c, ackWaitMs);
    // A stream that is sending values may never end by itself: end it now, with an error
    // reply that says why, rather than hold the close for closeTimeout. Handlers that have
    // not answered yet keep their time.
    for (const c of this.connections) {
      for (const [id, endStream] of [...c.streaming]) {
        const sub = c.requests.get(id);
        c.requests.delete(id);
        c.streaming.delete(id);
        endStream();
        sub?.unsubscribe();
      }
    }
    if (!this.drained() && this.opts.closeTimeout > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.closeTimeout);
        timer.unref();
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    // Nest writes a reply on the tick after the handler's stream ends: let that happen.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const closing: Array<Promise<void>> = [];
    for (const c of [...this.connections]) {
      if (c.ackTimer) clearTimeout(c.ackTimer);
      c.cancelAll();
      closing.push(c.conn.closeAndWait(CONNECTION_CLOSE_GRACE_MS));
    }
    await Promise.all(closing);
    this._status$.next('disconnected');
    this.emitter.emit('close');
  }

  /** Registers a listener for one of QtServerEvents. */
  on(event: string, callback: (...args: never[]) => unknown): void {
    this.emitter.on(event, callback as (...args: unknown[]) => void);
  }

  /** The QTcpServer or QLocalServer; throws before `listen`. */
  unwrap<T = QTcpServer | QLocalServer>(): T {
    if (!this.qtServer) {
      throw new Error(
        'Not initialized. Please call the "listen"/"startAllMicroservices" method before accessing the server.',
      );
    }
    return this.qtServer as T;
  }

  /** The options in force, with every default filled in. */
  resolvedOptions(): Readonly<ResolvedQtOptions> {
    return this.opts;
  }

  // ---------------------------------------------------------------- listening

  private async start(): Promise<void> {
    this.closing = false;
    const o = this.opts;
    let server: QTcpServer | QLocalServer;
    let ok: boolean;
    const activated = o.socketActivation ? systemdListenFd() : null;
    // In a node:cluster worker (PM2's cluster mode too) every worker serves on the
    // primary's socket, so that N workers on one address is a pool, not N-1 failures.
    const bindMode = cluster.isWorker ? BindFlag.ShareAddress : BindFlag.DefaultForPlatform;
    if (o.transport === 'local') {
      const local = new QLocalServer();
      local.setMaxPendingConnections(o.maxPendingConnections);
      local.setListenBacklogSize(o.listenBacklogSize);
      local.setSocketOptions(accessFlags(o.socketAccess));
      local.setListenBindMode(bindMode);
      if (activated !== null) {
        ok = await local.listen(activated);
      } else {
        const path = prepareLocalPath(o.name, true);
        if (o.removeStaleSocket) await QLocalServer.removeStaleServer(path);
        ok = await local.listen(path);
      }
      server = local;
    } else {
      const tcp = o.tls ? this.sslServer(o.tls) : new QTcpServer();
      tcp.setMaxPendingConnections(o.maxPendingConnections);
      tcp.setListenBacklogSize(o.listenBacklogSize);
      tcp.setListenBindMode(bindMode);
      // Validated at construction: true only where this Node has SO_REUSEPORT.
      tcp.setReusePortEnabled(o.reusePort);
      ok =
        activated !== null
          ? await tcp.setSocketDescriptor(activated)
          : await tcp.listen(await listenAddress(o.host), o.port);
      server = tcp;
    }
    if (!ok) {
      const err = new QtListenError(
        socketErrorName(server.serverError() as SocketError),
        server.errorString(),
      );
      server.close();
      throw err;
    }
    server.newConnection.connect(() => this.acceptPending(server));
    this.qtServer = server;
  }

  /**
   * A QSslServer for `tls`; handshake failures are logged and reported as `tlsError`. A peer
   * that closed before sending a byte is a TCP health check (Docker's, a Kubernetes
   * tcpSocket probe) or a port scan, not a failed handshake: a warning for each, several a
   * minute, would bury the real ones, so it is logged at debug level only (a level that is
   * "debug" in Nest's logger, nest-winston and nestjs-pino alike; "verbose" is not).
   */
  private sslServer(tls: NonNullable<ResolvedQtOptions['tls']>): QSslServer {
    const server = new QSslServer();
    server.setSslConfiguration(sslConfiguration(tls));
    server.setHandshakeTimeout(tls.handshakeTimeout);
    const report = (socket: QSslSocket, socketError?: SocketError): void => {
      const peer = `${socket.peerAddress().toString()}:${socket.peerPort()}`;
      if (socketError === SocketError.RemoteHostClosedError && !socket['peerSentBytes']()) {
        this.logger.debug?.(`A connection from ${peer} closed before sending anything`);
        return;
      }
      const error = new TlsHandshakeError(peer, socket.errorString());
      this.logger.warn(`Refusing a connection: ${error.message} (${error.code})`);
      this.emitter.emit('tlsError', error, socket);
    };
    server.handshakeInterruptedOnError.connect((socket) => report(socket));
    server.errorOccurred.connect((socket, socketError) => report(socket, socketError));
    return server;
  }

  /**
   * Takes the Qt server's pending connections, up to `maxConnections` served at once. At
   * the cap, a waiting connection takes the place of the served one idle the longest (no
   * frame arriving, no handler running, nothing queued for it), once that one has been idle
   * MIN_IDLE_TO_CLOSE_MS; it is closed with IdleAtCapacityError. A connection at work is
   * never closed for a newcomer: with none idle, newcomers stay in Qt's pending queue and
   * the backlog (both bounded; the Qt server refuses what does not fit) until a connection
   * ends or has been idle long enough.
   */
  private acceptPending(server: QTcpServer | QLocalServer): void {
    // Closing a connection below calls back here (its onClosed): this loop fills the place.
    if (this.accepting) return;
    this.accepting = true;
    try {
      this.takePending(server);
    } finally {
      this.accepting = false;
    }
  }

  private takePending(server: QTcpServer | QLocalServer): void {
    const max = this.opts.maxConnections;
    for (;;) {
      if (max !== 0 && this.connections.size >= max) {
        if (!server.hasPendingConnections()) return;
        const idle = this.longestIdle();
        if (!idle || idle.idleMs < MIN_IDLE_TO_CLOSE_MS) {
          this.waitAtCapacity(server, idle ? MIN_IDLE_TO_CLOSE_MS - idle.idleMs : 0);
          return;
        }
        const before = this.connections.size;
        this.protocolError(idle.entry, new IdleAtCapacityError(idle.idleMs, max));
        if (this.connections.size >= before) return;
        continue;
      }
      const socket = server.nextPendingConnection();
      if (!socket) {
        this.atCapacity = false;
        return;
      }
      if (this.closing) {
        socket.abort();
        continue;
      }
      this.adopt(socket);
    }
  }

  /** The served connection idle the longest, if any is idle. */
  private longestIdle(): { entry: ServerConnection; idleMs: number } | null {
    const now = Date.now();
    let found: { entry: ServerConnection; idleMs: number } | null = null;
    for (const entry of this.connections) {
      const idleMs = entry.conn.idleMs(now);
      if (idleMs >= 0 && (!found || idleMs > found.idleMs)) found = { entry, idleMs };
    }
    return found;
  }

  /**
   * Connections wait at the cap: logged once, and looked at again when the idle one may be
   * closed (`inMs`), or in MIN_IDLE_TO_CLOSE_MS when none is idle (one may become idle).
   */
  private waitAtCapacity(server: QTcpServer | QLocalServer, inMs: number): void {
    if (!this.atCapacity) {
      this.atCapacity = true;
      this.logger.warn(
        `maxConnections (${this.opts.maxConnections}) reached: new connections wait until one ends or has been idle ${MIN_IDLE_TO_CLOSE_MS} ms (at most maxPendingConnections + listenBacklogSize of them; more are refused)`,
      );
    }
    if (this.capacityTimer) return;
    this.capacityTimer = setTimeout(
      () => {
        this.capacityTimer = null;
        if (this.qtServer === server && !this.closing) this.acceptPending(server);
      },
      inMs > 0 ? inMs : MIN_IDLE_TO_CLOSE_MS,
    );
    this.capacityTimer.unref();
  }

  private adopt(socket: QtStreamSocket): void {
    QtConnection.applySocketOptions(socket, this.opts);
    const entry = new ServerConnection(socket, this.limits, {
      onPacket: (self, value, codec) => this.onPacket(self, value, codec),
      onProtocolError: (self, error) => this.reportProtocolError(self, error),
      onClosed: (self) => {
        if (self.ackTimer) clearTimeout(self.ackTimer);
        self.cancelAll();
        this.connections.delete(self);
        this.emitter.emit('disconnect', self.socket);
        this.wakeIfDrained();
        // A place is free: take a connection that waits for one.
        if (this.qtServer && !this.closing) this.acceptPending(this.qtServer);
      },
    });
    this.connections.add(entry);
    this.emitter.emit('connection', socket);
    entry.conn.start();
  }

  // ---------------------------------------------------------------- packets

  private onPacket(entry: ServerConnection, value: unknown, codec: CodecName): void {
    let classified: ReturnType<typeof classifyServerPacket>;
    try {
      classified = classifyServerPacket(value);
    } catch (err) {
      this.protocolError(entry, err);
      return;
    }
    const { kind, packet } = classified;
    entry.lastCodec = codec;
    if (kind === 'draining') {
      this.onPeerDraining(entry);
      return;
    }
    if (kind === 'ping') {
      this.pong(entry, packet.ping, codec);
      return;
    }
    if (kind === 'cancel') {
      const sub = entry.requests.get(packet.id);
      entry.requests.delete(packet.id);
      entry.streaming.delete(packet.id);
      if (sub) sub.unsubscribe();
      else if (entry.pending.has(packet.id)) entry.cancelled.add(packet.id);
      return;
    }
    if (kind === 'request') {
      const id = packet.id!;
      // Ids are unique among a connection's requests in flight (docs/protocol.md): a second
      // one would leave the first stream with nobody able to cancel it.
      if (entry.pending.has(id)) {
        this.protocolError(entry, new DuplicateRequestIdError(id));
        return;
      }
      // While the peer may not have seen the draining notice, what it sends is served: it
      // may have crossed the notice. Refused only from a peer that has not answered in time.
      if (entry.drain === 'unaware') {
        // Not run: the caller may safely send it elsewhere.
        this.reply(entry, id, { err: SERVER_CLOSING, isDisposed: true } as WritePacket, codec);
        return;
      }
      entry.pending.add(id);
    } else if (entry.drain === 'unaware') {
      // Events are not acknowledged then: an acknowledged event is sent again after the
      // client reconnects; a plain one is dropped, as on a lost connection.
      return;
    }
    this.dispatch(entry, packet, codec);
  }

  /**
   * Answers a ping at once, in its codec, whatever the connection's handlers do and while
   * the server drains (docs/protocol.md, "Ping"): the pong proves that this event loop and
   * this connection's protocol work, not that a handler would succeed.
   */
  private pong(entry: ServerConnection, n: number, codec: CodecName): void {
    try {
      // Essential, as an acknowledgement: a small frame that goes out even when the memory
      // budget is full (a server that is short of memory still answers that it lives).
      entry.conn.send(pongPacket(n), codec, true);
    } catch {
      // Not sendable (a maxFrameSize below its few bytes): the ping goes unanswered.
    }
  }

  /** Handles one request or event; counts it as in flight until its handler is done. */
  private dispatch(entry: ServerConnection, raw: IncomingQtPacket, codec: CodecName): void {
    this.inFlight++;
    entry.work++;
    entry.conn.beginWork();
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      if (raw.id !== undefined) {
        entry.pending.delete(raw.id);
        entry.cancelled.delete(raw.id);
      }
      entry.work--;
      entry.conn.endWork();
      this.workDone();
      this.closeIfDrained(entry);
    };
    const { packet, ackId } = takeAckId(raw);
    const deserialized = this.deserializer.deserialize(packet) as unknown;
    if (deserialized instanceof Promise) {
      deserialized.then(
        (packet: IncomingQtPacket) => this.dispatchPacket(entry, packet, codec, finish, ackId),
        (err: unknown) => {
          this.handleError(err as never);
          finish();
        },
      );
    } else {
      this.dispatchPacket(entry, deserialized as IncomingQtPacket, codec, finish, ackId);
    }
  }

  private dispatchPacket(
    entry: ServerConnection,
    packet: IncomingQtPacket,
    codec: CodecName,
    finish: () => void,
    ackId?: number,
  ): void {
    if (!this.telemetry.enabled()) {
      this.runPacket(entry, packet, codec, finish, ackId, null);
      return;
    }
    // A SERVER (CONSUMER) span whose parent is the caller's span, from the packet's metadata;
    // the handler runs inside it, so that spans it starts are its children.
    const call = this.telemetry.startCall(
      packet.id === undefined ? 'event' : 'request',
      this.normalizePattern(packet.pattern as string),
      packet.metadata,
    );
    call.run(() => this.runPacket(entry, packet, codec, finish, ackId, call));
  }

  /** Runs the handler of one request or event; `call` is its span, when traced. */
  private runPacket(
    entry: ServerConnection,
    packet: IncomingQtPacket,
    codec: CodecName,
    finish: () => void,
    ackId: number | undefined,
    call: QtCallTrace | null,
  ): void {
    const pattern = this.normalizePattern(packet.pattern as string);
    const context = new QtContext([entry.socket, pattern, packet.id, packet.metadata]);
    if (packet.id === undefined) {
      // An event sent in the acknowledged mode is acknowledged once its handler has run
      // (also when it failed: the failure is the handler's, and is logged by Nest).
      const acknowledge = (): void => {
        // The span ends before the frame that ends the peer's span leaves (see stream-replies.ts).
        call?.end();
        // Essential: a handled event is acknowledged even when the memory budget is full.
        if (ackId !== undefined && !entry.conn.isClosed()) {
          entry.conn.send(ackPacket(ackId), codec, true);
        }
        finish();
      };
      this.handleEvent(pattern, packet as never, context).then(acknowledge, (err: unknown) => {
        this.handleError(err as never);
        call?.fail(err);
        acknowledge();
      });
      return;
    }
    const id = packet.id;
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
      call?.fail(NO_MESSAGE_HANDLER);
      call?.end();
      this.reply(
        entry,
        id,
        { err: NO_MESSAGE_HANDLER, isDisposed: true, status: 'error' } as WritePacket,
        codec,
      );
      finish();
      return;
    }
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      entry.requests.delete(id);
      entry.streaming.delete(id);
      this.onProcessingEndHook?.(this.transportId, context);
      call?.end();
      finish();
    };
    Promise.resolve(
      this.onProcessingStartHook(this.transportId, context, async () => {
        try {
          const stream$ = this.transformToObservable(await handler(packet.data, context));
          // A handler that finishes while the server closes still gets its reply out;
          // only a connection that is already gone has nobody to answer.
          if (entry.conn.isClosed() || entry.cancelled.has(id)) {
            end();
            return;
          }
          // The span learns of an error reply (an RpcException) as it goes out.
          const replies$ = call ? stream$.pipe(tap({ error: (err) => call.fail(err) })) : stream$;
          const subscription = streamReplies(
            replies$.pipe(finalize(end)),
            entry.streaming,
            id,
            call,
            (reply) => this.reply(entry, id, reply, codec),
          );
          if (!ended) entry.requests.set(id, subscription);
        } catch (err) {
          call?.fail(err);
          call?.end();
          this.reply(entry, id, { err, isDisposed: true } as WritePacket, codec);
          end();
        }
      }),
    ).catch((err: unknown) => {
      this.handleError(err as never);
      call?.fail(err);
      end();
    });
  }

  /** Handlers are keyed by the normalized pattern: look it up directly before Nest's parsing. */
  override getHandlerByPattern(pattern: string): ReturnType<Server['getHandlerByPattern']> {
    return this.messageHandlers.get(pattern) ?? super.getHandlerByPattern(pattern);
  }

  /**
   * Sends one reply. A reply that cannot be sent as it is (larger than maxFrameSize, not
   * fitting the memory budget, or not encodable: a cycle, nesting too deep, a value the
   * codec has no form for) is replaced by an error reply that ends the request; nothing
   * thrown here reaches the handler's stream, so no reply can take the server down.
   */
  private reply(
    entry: ServerConnection,
    id: string | number,
    data: WritePacket,
    codec: CodecName,
  ): void {
    if (entry.conn.isClosed()) return;
    let failure: string;
    try {
      // The id goes onto the packet itself, which every caller makes afresh for this reply:
      // not a copy with `{ ...data, id }`, which V8 (Node 20) allocates in the old
      // generation, so that at a high request rate the copies piled up there until a full
      // collection and grew the heap, and the server's RSS, by several MiB.
      (data as WritePacket & { id: string | number }).id = id;
      entry.conn.send(this.serializer.serialize(data as never) as unknown, codec);
      return;
    } catch (err) {
      failure =
        err instanceof FrameTooLargeError
          ? `Reply of ${err.size} bytes exceeds maxFrameSize (${err.limit} bytes); raise the maxFrameSize option of both the server and the client to carry it`
          : err instanceof MemoryBudgetExceededError
            ? `Reply of ${err.bytes} bytes does not fit the server's memory budget (${err.used} of maxBufferedBytes ${err.limit} bytes in use) (${err.code})`
            : `Reply could not be encoded as ${codec.toUpperCase()}: ${err instanceof Error ? err.message : String(err)}`;
    }
    const sub = entry.requests.get(id);
    entry.requests.delete(id);
    try {
      // Essential: the error reply that ends the request goes out even beyond the budget.
      entry.conn.send({ id, err: failure, isDisposed: true }, codec, true);
    } catch (err) {
      this.protocolError(entry, err);
    }
    sub?.unsubscribe();
  }

  /** Drops a connection whose packet broke the protocol (or that no reply could be sent to). */
  private protocolError(entry: ServerConnection, err: unknown): void {
    this.reportProtocolError(entry, asTransportError(err));
    entry.conn.abort();
  }

  /** Logs and reports why a connection is being closed. */
  private reportProtocolError(entry: ServerConnection, error: QtTransportError): void {
    this.logger.warn(`Closing a connection: ${error.message} (${error.code})`);
    this.emitter.emit('protocolError', error, entry.socket);
  }

  /** One request or event less in flight. */
  private workDone(): void {
    this.inFlight--;
    this.wakeIfDrained();
  }

  // ---------------------------------------------------------------- draining

  /** Nothing runs and no connection is left: `close()` has nothing more to wait for. */
  private drained(): boolean {
    return this.inFlight === 0 && this.connections.size === 0;
  }

  /** Wakes `close()` once the server has drained. */
  private wakeIfDrained(): void {
    if (this.idleWaiters.length === 0 || !this.drained()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Tells the peer that this server is closing (in the codec it last used) and gives it
   * `ackWaitMs` to answer; a peer silent that long is taken for one that does not know the
   * packet.
   */
  private notifyDraining(entry: ServerConnection, ackWaitMs: number): void {
    if (entry.drain !== 'serving' || entry.conn.isClosed()) return;
    entry.drain = 'notified';
    let sent = false;
    try {
      // Essential: a small frame that must go out even when the memory budget is full.
      sent = entry.conn.send(drainingPacket(), entry.lastCodec, true);
    } catch {
      // Not sendable (a maxFrameSize below its few bytes): nobody will answer it.
    }
    if (!sent) {
      entry.drain = 'unaware';
      this.closeIfDrained(entry);
      return;
    }
    entry.ackTimer = setTimeout(() => {
      entry.ackTimer = null;
      if (entry.drain !== 'notified') return;
      entry.drain = 'unaware';
      this.closeIfDrained(entry);
    }, ackWaitMs);
    entry.ackTimer.unref();
  }

  /**
   * The peer sends nothing more on this connection: in answer to the notice, or on its own
   * while the server is not closing (a client leaving an address). It closes once nothing
   * runs for it. An answer after the wait changes nothing: the connection already closes so.
   */
  private onPeerDraining(entry: ServerConnection): void {
    if (entry.ackTimer) clearTimeout(entry.ackTimer);
    entry.ackTimer = null;
    if (entry.drain !== 'unaware') entry.drain = 'peerDone';
    this.closeIfDrained(entry);
  }

  /**
   * Closes a connection whose drain is over (its peer answered, or did not in time) once no
   * handler of it runs; its last replies are written first.
   */
  private closeIfDrained(entry: ServerConnection): void {
    if (entry.drain !== 'peerDone' && entry.drain !== 'unaware') return;
    if (entry.work > 0 || entry.drainClosing || entry.conn.isClosed()) return;
    entry.drainClosing = true;
    // Nest writes a reply on the tick after the handler's stream ends: let that happen.
    setImmediate(() => {
      if (entry.work > 0) {
        // A request came meanwhile: the connection closes when it is done.
        entry.drainClosing = false;
        return;
      }
      void entry.conn.closeAndWait(CONNECTION_CLOSE_GRACE_MS);
    });
  }
}
