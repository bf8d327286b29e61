import * as dns from 'node:dns/promises';
import { EventEmitter } from 'node:events';

import { Server, type CustomTransportStrategy, type WritePacket } from '@nestjs/microservices';
import { finalize, type Observable, type Subscription } from 'rxjs';

import {
  LocalServerSocketOption,
  QHostAddress,
  QLocalServer,
  QSslServer,
  QTcpServer,
  socketErrorName,
  type QTcpSocket,
  type SocketError,
} from '../qtnetwork/index.js';

import type { CodecName } from './wire/codec.js';
import {
  FrameTooLargeError,
  QtListenError,
  TlsHandshakeError,
  asTransportError,
  type QtTransportError,
} from './wire/errors.js';
import { resolveQtOptions, type QtTransportOptions, type ResolvedQtOptions } from './options.js';
import {
  ackPacket,
  classifyServerPacket,
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
  /** With `tls`: a client failed the TLS handshake (it was closed, never served). */
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

/** How long a closing server waits for a peer to take its last replies before aborting. */
const CONNECTION_CLOSE_GRACE_MS = 2000;

/** One accepted connection and the streamed replies it has running, by request id. */
class ServerConnection {
  readonly conn: QtConnection;
  readonly requests = new Map<string | number, Subscription>();

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
    for (const sub of this.requests.values()) sub.unsubscribe();
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
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private closing = false;
  /** True while maxConnections is reached and connections wait (logged once per episode). */
  private atCapacity = false;

  /** Validates `options` at once; a wrong option throws InvalidOptionError. */
  constructor(options: QtTransportOptions = {}) {
    super();
    this.opts = resolveQtOptions(options, 'server');
    this.limits = { ...this.opts, maxActiveWork: MAX_ACTIVE_PER_CONNECTION };
    this.initializeSerializer(options as never);
    this.initializeDeserializer(options as never);
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
   * Closes gracefully: stops accepting, lets handlers in flight finish (up to
   * `closeTimeout`), writes their replies, then closes every connection (and removes the
   * local socket file). Nothing runs on the old connections afterwards.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const server = this.qtServer;
    this.qtServer = null;
    server?.close();
    if (this.inFlight > 0 && this.opts.closeTimeout > 0) {
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
    if (o.transport === 'local') {
      const local = new QLocalServer();
      local.setMaxPendingConnections(o.maxPendingConnections);
      local.setListenBacklogSize(o.listenBacklogSize);
      local.setSocketOptions(accessFlags(o.socketAccess));
      if (activated !== null) {
        ok = await local.listen(activated);
      } else {
        if (o.removeStaleSocket) await QLocalServer.removeStaleServer(o.name);
        ok = await local.listen(o.name);
      }
      server = local;
    } else {
      const tcp = o.tls ? this.sslServer(o.tls) : new QTcpServer();
      tcp.setMaxPendingConnections(o.maxPendingConnections);
      tcp.setListenBacklogSize(o.listenBacklogSize);
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

  /** A QSslServer for `tls`; handshake failures are logged and reported as `tlsError`. */
  private sslServer(tls: NonNullable<ResolvedQtOptions['tls']>): QSslServer {
    const server = new QSslServer();
    server.setSslConfiguration(sslConfiguration(tls));
    server.setHandshakeTimeout(tls.handshakeTimeout);
    const report = (socket: QTcpSocket): void => {
      const error = new TlsHandshakeError(
        `${socket.peerAddress().toString()}:${socket.peerPort()}`,
        socket.errorString(),
      );
      this.logger.warn(`Refusing a connection: ${error.message} (${error.code})`);
      this.emitter.emit('tlsError', error, socket);
    };
    server.handshakeInterruptedOnError.connect((socket) => report(socket));
    server.errorOccurred.connect((socket) => report(socket));
    return server;
  }

  /**
   * Takes the Qt server's pending connections, up to `maxConnections` served at once.
   * Beyond it they stay in Qt's pending queue and the backlog (both bounded; the Qt server
   * refuses what does not fit) until a connection ends.
   */
  private acceptPending(server: QTcpServer | QLocalServer): void {
    const max = this.opts.maxConnections;
    while (max === 0 || this.connections.size < max) {
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
    if (!this.atCapacity && server.hasPendingConnections()) {
      this.atCapacity = true;
      this.logger.warn(
        `maxConnections (${max}) reached: new connections wait until one ends (at most maxPendingConnections + listenBacklogSize of them; more are refused)`,
      );
    }
  }

  private adopt(socket: QtStreamSocket): void {
    QtConnection.applySocketOptions(socket, this.opts);
    const entry = new ServerConnection(socket, this.limits, {
      onPacket: (self, value, codec) => this.onPacket(self, value, codec),
      onProtocolError: (self, error) => this.reportProtocolError(self, error),
      onClosed: (self) => {
        self.cancelAll();
        this.connections.delete(self);
        this.emitter.emit('disconnect', self.socket);
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
    if (this.closing) return;
    let classified: ReturnType<typeof classifyServerPacket>;
    try {
      classified = classifyServerPacket(value);
    } catch (err) {
      this.protocolError(entry, err);
      return;
    }
    if (classified.kind === 'cancel') {
      const sub = entry.requests.get(classified.packet.id);
      entry.requests.delete(classified.packet.id);
      sub?.unsubscribe();
      return;
    }
    this.dispatch(entry, classified.packet, codec);
  }

  /** Handles one request or event; counts it as in flight until its handler is done. */
  private dispatch(entry: ServerConnection, raw: IncomingQtPacket, codec: CodecName): void {
    this.inFlight++;
    entry.conn.beginWork();
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      entry.conn.endWork();
      this.workDone();
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
    const pattern = this.normalizePattern(packet.pattern as string);
    const context = new QtContext([entry.socket, pattern, packet.id, packet.metadata]);
    if (packet.id === undefined) {
      // An event sent in the acknowledged mode is acknowledged once its handler has run
      // (also when it failed: the failure is the handler's, and is logged by Nest).
      const acknowledge = (): void => {
        if (ackId !== undefined && !entry.conn.isClosed()) entry.conn.send(ackPacket(ackId), codec);
        finish();
      };
      this.handleEvent(pattern, packet as never, context).then(acknowledge, (err: unknown) => {
        this.handleError(err as never);
        acknowledge();
      });
      return;
    }
    const id = packet.id;
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
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
      this.onProcessingEndHook?.(this.transportId, context);
      finish();
    };
    Promise.resolve(
      this.onProcessingStartHook(this.transportId, context, async () => {
        try {
          const stream$ = this.transformToObservable(await handler(packet.data, context));
          // A handler that finishes while the server closes still gets its reply out;
          // only a connection that is already gone has nobody to answer.
          if (entry.conn.isClosed()) {
            end();
            return;
          }
          const subscription = this.streamReplies(stream$.pipe(finalize(end)), entry, id, codec);
          if (!ended) entry.requests.set(id, subscription);
        } catch (err) {
          this.reply(entry, id, { err, isDisposed: true } as WritePacket, codec);
          end();
        }
      }),
    ).catch((err: unknown) => {
      this.handleError(err as never);
      end();
    });
  }

  /**
   * Writes a handler's Observable to the peer as Nest's TCP transport does: one reply per
   * value, `isDisposed` on the last (merged into the last value when it completes within
   * the same tick), an error reply that ends the request. A value is held back for one
   * tick only, to be merged with a completion that follows it.
   */
  private streamReplies(
    stream$: Observable<unknown>,
    entry: ServerConnection,
    id: string | number,
    codec: CodecName,
  ): Subscription {
    let held: { value: unknown } | null = null;
    let flushScheduled = false;
    const flush = (): void => {
      flushScheduled = false;
      if (held) {
        const { value } = held;
        held = null;
        this.reply(entry, id, { response: value } as WritePacket, codec);
      }
    };
    return stream$.subscribe({
      next: (value) => {
        if (held) this.reply(entry, id, { response: held.value } as WritePacket, codec);
        held = { value };
        if (!flushScheduled) {
          flushScheduled = true;
          process.nextTick(flush);
        }
      },
      error: (err: unknown) => {
        flush();
        this.reply(entry, id, { err, isDisposed: true } as WritePacket, codec);
      },
      complete: () => {
        const last = held;
        held = null;
        this.reply(
          entry,
          id,
          (last ? { response: last.value, isDisposed: true } : { isDisposed: true }) as WritePacket,
          codec,
        );
      },
    });
  }

  /** Handlers are keyed by the normalized pattern: look it up directly before Nest's parsing. */
  override getHandlerByPattern(pattern: string): ReturnType<Server['getHandlerByPattern']> {
    return this.messageHandlers.get(pattern) ?? super.getHandlerByPattern(pattern);
  }

  /**
   * Sends one reply. A reply that cannot be sent as it is (larger than maxFrameSize, or
   * not encodable: a cycle, nesting too deep, a value the codec has no form for) is
   * replaced by an error reply that ends the request; nothing thrown here reaches the
   * handler's stream, so no reply can take the server down.
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
      entry.conn.send(this.serializer.serialize({ ...data, id } as never) as unknown, codec);
      return;
    } catch (err) {
      failure =
        err instanceof FrameTooLargeError
          ? `Reply of ${err.size} bytes exceeds maxFrameSize (${err.limit} bytes)`
          : `Reply could not be encoded as ${codec.toUpperCase()}: ${err instanceof Error ? err.message : String(err)}`;
    }
    const sub = entry.requests.get(id);
    entry.requests.delete(id);
    try {
      entry.conn.send({ id, err: failure, isDisposed: true }, codec);
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

  /** One request or event less in flight; wakes `close()` when none is left. */
  private workDone(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

/** The first descriptor systemd passed to this process (sd_listen_fds), or null. */
function systemdListenFd(): number | null {
  const count = Number(process.env.LISTEN_FDS ?? '0');
  const pid = process.env.LISTEN_PID;
  if (!Number.isInteger(count) || count < 1) return null;
  if (pid !== undefined && pid !== '' && Number(pid) !== process.pid) return null;
  return 3;
}

/** QLocalServer access flags for the `socketAccess` option. */
function accessFlags(access: Array<'user' | 'group' | 'other' | 'world'>): number {
  let flags = 0;
  for (const a of access) {
    if (a === 'user') flags |= LocalServerSocketOption.UserAccessOption;
    if (a === 'group') flags |= LocalServerSocketOption.GroupAccessOption;
    if (a === 'other') flags |= LocalServerSocketOption.OtherAccessOption;
    if (a === 'world') flags |= LocalServerSocketOption.WorldAccessOption;
  }
  return flags;
}

/** The address to listen on: an address as given, or a host name's first address. */
async function listenAddress(host: string): Promise<QHostAddress> {
  const literal = new QHostAddress(host);
  if (!literal.isNull()) return literal;
  const { address } = await dns.lookup(host);
  return new QHostAddress(address);
}
