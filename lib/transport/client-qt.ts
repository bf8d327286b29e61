import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';

import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { from, Observable, throwError, timeout } from 'rxjs';

import { AckedEvents } from './wire/acked-events.js';
import { ClientClosedError, QtConnectionError, RequestTimeoutError } from './wire/errors.js';
import {
  resolveQtOptions,
  type QtEndpoint,
  type QtTransportOptions,
  type ResolvedQtOptions,
} from './options.js';
import {
  ackOf,
  checkReplyPacket,
  drainingPacket,
  isDrainingPacket,
  pingPacket,
  pongOf,
  type ReplyQtPacket,
} from './wire/packets.js';
import { QtConnection, type ConnectionLimits, type QtStreamSocket } from './wire/qt-connection.js';
import { dial } from './client-dial.js';
import {
  CLOSE_GRACE_MS,
  addressesOf,
  fixedSlots,
  planSlots,
  resolveEndpoints,
  traced,
  lostError,
  payloadOf,
  replyError,
  type Call,
  type Callback,
  type Channel,
  type PendingPing,
  type QtEndpointEvent,
  type Slot,
  type Waiter,
} from './client-parts.js';

export type { QtClientEvents, QtEndpointEvent } from './client-parts.js';
import { localServerPath } from './local-path.js';
import { QtRecord, type QtOutgoingPacket } from './qt-record.js';
import { LOCAL_TRANSPORT, QtTelemetry } from './telemetry/qt-telemetry.js';

/**
 * A NestJS ClientProxy on the Qt port: multiplexed connections (numeric ids) over
 * QTcpSocket (optionally through a proxy, or TLS) or QLocalSocket, connected lazily.
 *
 * - `loadBalancing: 'first'` (default): one connection, to the first endpoint (and the
 *   first of its addresses) that connects. 'round-robin' / 'least-pending': a connection
 *   per address of every endpoint (times `connectionsPerEndpoint`); host names are resolved
 *   again every `resolveInterval` and when a connection is lost: new addresses are
 *   connected, vanished ones drained.
 * - The first connection attempt is bounded by `connectTimeout`; if every endpoint fails,
 *   the requests waiting for it fail with the Qt error and its text, and the next `send`
 *   tries again. A lost connection is retried with `reconnect`'s backoff (forever while
 *   other connections serve); requests issued meanwhile wait (bounded by `requestTimeout`).
 * - A request that a lost connection had not written whole goes out on another (it cannot
 *   have run); one that was written fails with QtConnectionError (never sent twice).
 * - A server's draining notice (docs/protocol.md, "Draining") is answered; that connection
 *   gets nothing new and closes once its requests are answered.
 * - `requestTimeout` bounds the time to a request's first reply; unsubscribing (or the
 *   timeout) sends a cancel frame, which tears the handler's Observable down.
 * - `emit` completes once the event's frame is written; `close()` writes what was emitted
 *   before it, and fails pending requests with ClientClosedError.
 */
export class ClientQt extends ClientProxy {
  private readonly opts: ResolvedQtOptions;
  /** The client's connections are held to the options, without a server's idle timeout. */
  private readonly limits: ConnectionLimits;
  private readonly balancing: boolean;
  private slots: Slot[] = [];
  /** Every open connection, draining ones included. */
  private readonly channels = new Set<Channel>();
  private waiters: Waiter[] = [];
  private nextId = 1;
  /** The integer of the next ping (docs/protocol.md, "Ping"). */
  private nextPing = 1;
  /** Turn of round-robin and of least-pending's ties. */
  private turn = 0;
  private closedByUser = false;
  /** Acknowledged-event mode: events sent and not yet acknowledged; null when off. */
  private readonly unacked: AckedEvents<ReadPacket> | null;
  private readonly emitter = new EventEmitter();
  /** Spans and durations, when an OpenTelemetry SDK is registered. */
  private readonly telemetry: QtTelemetry;
  private resolveTimer: NodeJS.Timeout | null = null;
  private resolving: Promise<void> | null = null;
  private resolvedOnce = false;
  /** Why the last resolution found no address for a name (the error a waiting request gets). */
  private resolveError: unknown = null;
  private lastStatus: 'connected' | 'reconnecting' | 'disconnected' | null = null;
  /** The last event's write promise and its Observable (emit shares them within a burst). */
  private lastEvent: { sent: Promise<unknown> | null; observable$: Observable<unknown> | null } = {
    sent: null,
    observable$: null,
  };

  /** Validates `options` at once; a wrong option throws InvalidOptionError. */
  constructor(options: QtTransportOptions = {}) {
    super();
    this.opts = resolveQtOptions(options, 'client');
    this.limits = { ...this.opts, idleTimeout: 0 };
    this.balancing = this.opts.loadBalancing !== 'first';
    this.unacked = this.opts.acknowledgedEvents
      ? new AckedEvents<ReadPacket>(this.opts.acknowledgedEvents)
      : null;
    this.initializeSerializer(options as never);
    this.initializeDeserializer(options as never);
    if (!this.balancing || this.opts.transport === 'local')
      this.slots = fixedSlots(this.opts, this.balancing);
    const o = this.opts;
    this.telemetry = new QtTelemetry('client', () =>
      o.transport === 'local'
        ? { address: localServerPath(o.name), transport: LOCAL_TRANSPORT }
        : { address: o.endpoints[0].host, port: o.endpoints[0].port, transport: 'tcp' },
    );
  }

  /** Connects (once; later calls share the connections or the attempts in progress). */
  async connect(): Promise<QtStreamSocket> {
    this.closedByUser = false;
    let channel = this.pick();
    if (!channel) {
      await this.whenReady();
      channel = this.pick();
    }
    if (!channel) throw new QtConnectionError('NotConnected', 'The client is not connected');
    return channel.socket;
  }

  /**
   * Closes: pending requests fail with ClientClosedError, events emitted before on an
   * established connection are still written, then the connections close. Resolves when
   * they have. An event still waiting for a first connection is not sent: its `emit` fails
   * with ClientClosedError.
   */
  async close(): Promise<void> {
    this.closedByUser = true;
    if (this.resolveTimer) clearInterval(this.resolveTimer);
    this.resolveTimer = null;
    for (const slot of this.slots) this.stopRetrying(slot);
    const closedError = new ClientClosedError();
    this.unacked?.failAll(closedError);
    this.failWaiters(closedError);
    for (const channel of this.channels) {
      for (const call of [...channel.calls.values()]) this.finish(call, { err: closedError });
      this.failPings(channel, closedError);
    }
    // Events emitted just before close() reach dispatchEvent a few promise callbacks later:
    // keep the connections until they have been written.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const open = [...this.channels];
    this.channels.clear();
    for (const slot of this.slots) slot.channel = null;
    await Promise.all(open.map((c) => c.conn.closeAndWait(CLOSE_GRACE_MS)));
    this.lastStatus = 'disconnected';
    this._status$.next('disconnected');
  }

  /** Registers a listener for one of QtClientEvents. */
  override on(event: string, callback: (...args: never[]) => unknown): void {
    this.emitter.on(event, callback as (...args: unknown[]) => void);
  }

  /**
   * The QTcpSocket or QLocalSocket of a connection that takes requests: the one connection
   * with 'first', the next one in turn with balancing (see `sockets()` for all). Throws when
   * there is none.
   */
  unwrap<T = QtStreamSocket>(): T {
    const channel = this.pick(false);
    if (!channel) throw new Error('Not initialized. Please call the "connect" method first.');
    return channel.socket as T;
  }

  /** The sockets of every open connection (draining ones included). */
  sockets(): QtStreamSocket[] {
    return [...this.channels].map((c) => c.socket);
  }

  /**
   * A protocol-level round trip (docs/protocol.md, "Ping") that the server answers without
   * running any handler, so a server whose handlers are all busy still answers. Connects if
   * needed and goes out on the connection the next request would take (with balancing,
   * successive pings go round the connections as requests do). Resolves with the round
   * trip in ms, from the ping's write to its pong (to the microsecond). Rejects with
   * QtConnectionError when no connection can be made, or it is lost before the pong (`code`
   * is Qt's error name, the message Qt's text); with RequestTimeoutError when `timeout` ms
   * (default `connectTimeout`; connecting included) pass without a pong, unless a
   * connection attempt failed meanwhile (then with that attempt's QtConnectionError); with
   * ClientClosedError when the client is closed first.
   */
  ping(timeout: number = this.opts.connectTimeout): Promise<number> {
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
      return Promise.reject(
        new RangeError(`ping: timeout must be a positive number of ms, not ${String(timeout)}`),
      );
    }
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
    return new Promise<number>((resolve, reject) => {
      const n = this.nextPing++;
      let channel: Channel | null = null;
      let done = false;
      const end = (): boolean => {
        if (done) return false;
        done = true;
        clearTimeout(timer);
        if (channel) {
          channel.pings.delete(n);
          this.closeIfDone(channel);
        }
        return true;
      };
      const pending: PendingPing = {
        sentAt: 0,
        resolve: (ms) => end() && resolve(ms),
        reject: (err) => end() && reject(err),
      };
      const timer = setTimeout(() => {
        // Still waiting for a connection: a failed attempt says more than the time does.
        const failed = channel ? null : this.slots.find((s) => s.lastError)?.lastError;
        pending.reject(
          failed instanceof QtConnectionError ? failed : new RequestTimeoutError('ping', timeout),
        );
      }, timeout);
      const sendOn = (ready: Channel): void => {
        channel = ready;
        ready.pings.set(n, pending);
        pending.sentAt = performance.now();
        try {
          // The transport's own frame, not a Nest packet: Nest's serializer is not for it.
          if (!ready.conn.send(pingPacket(n), this.opts.codec)) {
            pending.reject(ready.failure ?? lostError(ready.socket));
          }
        } catch (err) {
          pending.reject(err);
        }
      };
      const now = this.pick();
      if (now) {
        sendOn(now);
        return;
      }
      this.whenReady().then(
        () => {
          if (done) return;
          const ready = this.pick();
          if (ready) sendOn(ready);
          else pending.reject(new QtConnectionError('NotConnected', 'The client is not connected'));
        },
        (err: unknown) => pending.reject(err),
      );
    });
  }

  /** Sends a request; with `requestTimeout`, fails with RequestTimeoutError if no reply comes in time. */
  override send<TResult = unknown, TInput = unknown>(
    pattern: unknown,
    data: TInput,
  ): Observable<TResult> {
    // Nest's own checks (and its error) for a missing pattern or data.
    const payload = payloadOf(data);
    if (pattern === null || pattern === undefined || payload === null || payload === undefined) {
      return super.send<TResult, unknown>(pattern, payload);
    }
    // Nest's ClientProxy.send, without the operator chain on the common path: when a
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
      return this.publish(this.packetOf(pattern, data), callback);
    });
    const ms = this.opts.requestTimeout;
    // An object pattern is stringified for RequestTimeoutError only when there is a timeout.
    const name = ms > 0 && typeof pattern !== 'string' ? JSON.stringify(pattern) : String(pattern);
    const timed =
      ms <= 0
        ? source
        : source.pipe(
            timeout({ first: ms, with: () => throwError(() => new RequestTimeoutError(name, ms)) }),
          );
    return this.telemetry.enabled()
      ? traced(
          () => this.telemetry.startCall('request', this.normalizePattern(pattern as never)),
          timed,
        )
      : timed;
  }

  /**
   * Emits an event (Nest's ClientProxy.emit): hot, completes once the frame is written.
   * When a connection is up, the frame is queued at once, without Nest's operator chain.
   */
  override emit<TResult = unknown, TInput = unknown>(
    pattern: unknown,
    data: TInput,
  ): Observable<TResult> {
    const payload = payloadOf(data);
    if (pattern === null || pattern === undefined || payload === null || payload === undefined) {
      return super.emit<TResult, unknown>(pattern, payload);
    }
    // A PRODUCER span from here until the frame is written (acknowledged, in that mode).
    const call = this.telemetry.enabled()
      ? this.telemetry.startCall('event', this.normalizePattern(pattern as never))
      : null;
    const packet = call
      ? call.run(() => this.packetOf(pattern, data))
      : this.packetOf(pattern, data);
    // Not connected yet: once connected, as Nest's emit does (its packet, though, would have
    // no metadata on Nest 11, which has no createPacket).
    const sent: Promise<TResult> = this.unacked
      ? this.connect().then(() => this.emitAcknowledged<TResult>(packet))
      : this.pick(false)
        ? this.dispatchEvent<TResult>(packet)
        : this.connect().then(() => this.dispatchEvent<TResult>(packet));
    // Events queued in one burst share their connection's write promise (whenWritten), and
    // so one Observable of it: an emit loop allocates no promise or Observable per event.
    if (!call && sent === this.lastEvent.sent)
      return this.lastEvent.observable$ as Observable<TResult>;
    // Nobody may subscribe: the failure is still delivered to whoever does.
    sent.catch(() => undefined);
    if (call) {
      sent.then(
        () => call.end(),
        (err: unknown) => {
          call.fail(err);
          call.end();
        },
      );
    }
    const observable$ = from(sent);
    if (!call) this.lastEvent = { sent, observable$ };
    return observable$;
  }

  /** The options in force, with every default filled in. */
  resolvedOptions(): Readonly<ResolvedQtOptions> {
    return this.opts;
  }

  /**
   * Sends `packet` on a connection that takes requests, or once one is up. Returns the
   * teardown: unsubscribing before the last reply sends a cancel.
   */
  protected publish(packet: ReadPacket, callback: Callback): () => void {
    const call: Call = {
      id: 0,
      channel: null,
      packet,
      callback,
      endOffset: 0,
      moved: false,
      done: false,
      trace: this.telemetry.current(),
    };
    if (this.closedByUser) {
      this.finish(call, { err: new ClientClosedError() });
      return () => undefined;
    }
    this.route(call);
    return () => this.cancel(call);
  }

  /** Not async: the frame's whenWritten is the one promise an event costs here. */
  protected dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    try {
      const channel = this.pick();
      if (!channel) throw new QtConnectionError('NotConnected', 'The client is not connected');
      this.sendPacket(channel.conn, packet);
      return channel.conn.whenWritten() as Promise<unknown> as Promise<T>;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  // ---------------------------------------------------------------- requests

  /** Sends `call` on the connection `pick` chooses, or waits for one. */
  private route(call: Call): void {
    const channel = this.pick();
    if (channel) {
      this.sendCall(channel, call);
      return;
    }
    this.whenReady().then(
      () => {
        if (call.done) return;
        const ready = this.pick();
        if (ready) this.sendCall(ready, call);
        else
          this.finish(call, {
            err: new QtConnectionError('NotConnected', 'The client is not connected'),
          });
      },
      (err: unknown) => this.finish(call, { err }),
    );
  }

  private sendCall(channel: Channel, call: Call): void {
    call.id = this.nextId++;
    call.channel = channel;
    channel.calls.set(call.id, call);
    call.trace?.setPeer(channel.slot.info.address, channel.slot.info.port);
    try {
      // The id goes onto the call's own packet (packetOf made it for this call), as Nest's
      // ClientTCP assigns it: a `{ ...packet, id }` copy is allocated by V8 (Node 20) in the
      // old generation, where the copies pile up until a full collection.
      (call.packet as ReadPacket & { id?: number }).id = call.id;
      this.sendPacket(channel.conn, call.packet);
    } catch (err) {
      this.finish(call, { err });
      return;
    }
    call.endOffset = channel.conn.sentBytes();
  }

  /** The caller unsubscribed before the last reply: tell the server to stop. */
  private cancel(call: Call): void {
    if (call.done) return;
    const channel = call.channel;
    if (channel && !channel.conn.isClosed()) {
      this.sendPacket(channel.conn, { id: call.id, cancel: true });
    }
    this.finish(call, null);
  }

  /** Ends `call`, delivering `result` (null: nothing, it was cancelled). */
  private finish(call: Call, result: WritePacket | null): void {
    if (call.done) return;
    call.done = true;
    const channel = call.channel;
    if (channel) {
      channel.calls.delete(call.id);
      this.closeIfDone(channel);
    }
    if (result) {
      // Every caller passes a packet made for this call: marked in place (no spread copy).
      result.isDisposed = true;
      call.callback(result);
    }
  }

  /** Closes a channel taken out of use once nothing waits for an answer on it. */
  private closeIfDone(channel: Channel): void {
    if (channel.draining && channel.calls.size === 0 && channel.pings.size === 0) {
      channel.conn.close();
    }
  }

  /** Fails the pings waiting for their pong on `channel`. */
  private failPings(channel: Channel, err: unknown): void {
    for (const pending of [...channel.pings.values()]) pending.reject(err);
  }

  /** Sends an event that the server acknowledges; resolves on the acknowledgement. */
  private async emitAcknowledged<T>(packet: ReadPacket): Promise<T> {
    await this.unacked!.add(packet, (numbered) => {
      const channel = this.pick();
      // Not connected: it goes out with the other orphans once a connection is up.
      if (channel) this.sendPacket(channel.conn, numbered);
      return channel;
    });
    return undefined as T;
  }

  /** Serializes (Nest's serializer) and sends one packet with the configured codec. */
  private sendPacket(conn: QtConnection, packet: object): void {
    conn.send(this.serializer.serialize(packet as never) as unknown, this.opts.codec);
  }

  /**
   * The packet for `pattern` and `data`: made by Nest's createPacket, which runs the dispatch
   * hook, where the Nest major has it (12), or here with the hook run as Nest 12 does (11);
   * then a QtRecord's metadata laid over the hook's, and the trace context of the call being
   * started, if it is traced.
   */
  private packetOf(pattern: unknown, data: unknown): ReadPacket {
    const record = data instanceof QtRecord ? data : null;
    const payload: unknown = record ? record.data : data;
    const create = (this as unknown as { createPacket?: (p: unknown, d: unknown) => ReadPacket })
      .createPacket;
    let packet: QtOutgoingPacket;
    if (typeof create === 'function') {
      packet = create.call(this, pattern, payload);
    } else {
      packet = { pattern, data: payload };
      this.onDispatchHook?.(packet as ReadPacket);
    }
    if (record) packet.metadata = { ...packet.metadata, ...record.metadata };
    this.telemetry.inject(packet);
    return packet as ReadPacket;
  }

  /**
   * Sets a hook called with every outgoing packet, requests and events alike, right before
   * it is sent; it may set `packet.metadata`, which the handler reads with
   * `QtContext.getMetadata()`. Nest 12's ClientProxy has it; this gives it on Nest 11 too.
   */
  override setOnDispatchHook(hook: (packet: QtOutgoingPacket) => void): void {
    this.onDispatchHook = hook as (packet: ReadPacket) => void;
  }

  // ---------------------------------------------------------------- choosing a connection

  /**
   * The connection for the next request: the only one ('first'), the next in turn
   * ('round-robin'), or the one with the fewest requests in flight ('least-pending', ties
   * in turn). Null when none takes requests. `advance` false peeks without taking a turn.
   */
  private pick(advance = true): Channel | null {
    const slots = this.slots;
    const n = slots.length;
    if (n === 1) {
      const only = slots[0].channel;
      return only && !only.draining && !only.conn.isClosed() ? only : null;
    }
    const start = this.turn % Math.max(n, 1);
    let best: Channel | null = null;
    for (let i = 0; i < n; i++) {
      const channel = slots[(start + i) % n].channel;
      if (!channel || channel.draining || channel.conn.isClosed()) continue;
      if (this.opts.loadBalancing !== 'least-pending') {
        best = channel;
        if (advance) this.turn = start + i + 1;
        return best;
      }
      if (!best || channel.calls.size < best.calls.size) best = channel;
    }
    if (best && advance) this.turn = start + 1;
    return best;
  }

  /** Resolves once a connection takes requests (connecting what is not); rejects when none can. */
  private whenReady(): Promise<void> {
    if (this.pick(false)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      void this.activate();
    });
  }

  private wakeWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
  }

  private failWaiters(err: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  /**
   * Starts connecting every slot that is neither connected nor connecting nor waiting for
   * its backoff (resolving host names first, the first time, with balancing).
   */
  private async activate(): Promise<void> {
    if (this.balancing && this.opts.transport === 'tcp') {
      if (!this.resolvedOnce) await this.refreshEndpoints();
      if (this.closedByUser) return;
      this.startResolveTimer();
    }
    let started = false;
    for (const slot of this.slots) {
      if (slot.channel || slot.connecting || slot.timer || slot.retired) continue;
      this.open(slot);
      started = true;
    }
    if (!started) this.checkHopeless();
  }

  /** Fails the waiters when no connection is up, none is being made and none will be. */
  private checkHopeless(): void {
    if (this.waiters.length === 0 || this.pick(false)) return;
    if (this.slots.some((s) => s.connecting || s.timer)) return;
    const failed = this.slots.find((s) => s.lastError)?.lastError ?? this.resolveError;
    this.failWaiters(
      failed ?? new QtConnectionError('HostNotFoundError', 'No endpoint to connect to'),
    );
  }

  // ---------------------------------------------------------------- slots and connections

  private endpointEvent(slot: Slot, state: QtEndpointEvent['state']): void {
    this.emitter.emit('endpoint', { ...slot.info, state });
  }

  /** One connection attempt for `slot`: its targets in order, the first that connects. */
  private open(slot: Slot): void {
    if (slot.connecting || slot.channel || slot.retired || this.closedByUser) return;
    slot.connecting = true;
    void (async () => {
      let lastError: unknown = null;
      for (const target of slot.targets) {
        try {
          return await dial(this.opts, target);
        } catch (err) {
          lastError = err;
        }
      }
      throw lastError;
    })().then(
      (socket) => {
        slot.connecting = false;
        if (this.closedByUser || slot.retired) {
          socket.abort();
          if (this.closedByUser) this.failWaiters(new ClientClosedError());
          return;
        }
        this.adopt(slot, socket);
      },
      (err: unknown) => {
        slot.connecting = false;
        slot.lastError = err;
        if (this.closedByUser) {
          this.failWaiters(new ClientClosedError());
          return;
        }
        // Retried with the backoff when it had been up, or while others serve; otherwise it
        // waits for the next request (the waiting ones fail now if nothing else can serve).
        if (slot.reconnecting || (this.balancing && this.pick(false))) this.retry(slot);
        this.checkHopeless();
        this.updateStatus();
      },
    );
  }

  /** Schedules the next attempt of `slot` with `reconnect`'s backoff, or gives up. */
  private retry(slot: Slot): void {
    const policy = this.opts.reconnect;
    if (policy === false || slot.retired || this.closedByUser) {
      slot.reconnecting = false;
      return;
    }
    const othersServe = this.pick(false) !== null;
    if (slot.attempt >= policy.retries && !othersServe) {
      // Out of attempts with nothing else serving: give up until the next request.
      slot.reconnecting = false;
      slot.attempt = 0;
      if (!this.slots.some((s) => s.reconnecting || s.connecting || s.channel)) {
        this.unacked?.failAll(slot.lastError);
      }
      return;
    }
    // Forever while others serve: the attempt count stops at `retries`, the delay at its cap.
    slot.attempt = Math.min(slot.attempt + 1, Math.max(policy.retries, 1));
    const base = Math.min(policy.maxDelay, policy.initialDelay * 2 ** (slot.attempt - 1));
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.emitter.emit('reconnecting', slot.attempt, delay, { ...slot.info, state: 'down' });
    slot.timer = setTimeout(() => {
      slot.timer = null;
      this.open(slot);
    }, delay);
  }

  private stopRetrying(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.reconnecting = false;
    slot.attempt = 0;
  }

  private adopt(slot: Slot, socket: QtStreamSocket): void {
    QtConnection.applySocketOptions(socket, this.opts);
    const channel: Channel = {
      socket,
      slot,
      calls: new Map(),
      pings: new Map(),
      draining: false,
      failure: null,
      conn: null as unknown as QtConnection,
    };
    const conn = new QtConnection(socket, this.limits, {
      onPacket: (value) => this.onPacket(channel, value),
      onProtocolError: (error) => {
        // The requests on this connection fail with this cause, not as a plain close.
        channel.failure = error;
        this.emitter.emit('protocolError', error);
      },
      onClosed: () => this.onConnectionLost(channel),
    });
    (channel as { conn: QtConnection }).conn = conn;
    slot.channel = channel;
    slot.reconnecting = false;
    slot.attempt = 0;
    slot.lastError = null;
    this.channels.add(channel);
    this.updateStatus();
    this.emitter.emit('connect', socket);
    this.endpointEvent(slot, 'up');
    conn.start();
    this.unacked?.resend((packet) => {
      this.sendPacket(conn, packet);
      return channel;
    }, true);
    this.wakeWaiters();
  }

  private onPacket(channel: Channel, value: unknown): void {
    const ack = ackOf(value);
    if (ack) {
      this.unacked?.acknowledge(ack.ackId);
      return;
    }
    if (isDrainingPacket(value)) {
      this.drain(channel, 'draining');
      return;
    }
    const pong = pongOf(value);
    if (pong) {
      // A pong for a ping no longer waited for (timed out) is dropped, as a late reply is.
      const pending = channel.pings.get(pong.pong);
      pending?.resolve(Math.round((performance.now() - pending.sentAt) * 1000) / 1000);
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
      channel.failure = err;
      this.emitter.emit('protocolError', err);
      channel.conn.abort();
      return;
    }
    // This client's ids are numbers; a string id never matches one of them.
    const call = channel.calls.get(reply.id as number);
    if (!call) return;
    // An error reply is one that carries `err` (null and absent are no error); 0, '' and
    // false are errors too, delivered as they are.
    if (reply.err !== undefined && reply.err !== null) {
      this.finish(call, { err: replyError(reply.err) });
      return;
    }
    if (reply.isDisposed) {
      this.finish(call, { response: reply.response });
      return;
    }
    call.callback({ response: reply.response });
  }

  /**
   * Takes `channel` out of use: its server drains ('draining', answered with the draining
   * packet: nothing more comes from this client on it) or its address vanished ('removed').
   * Its requests keep their answers; it closes once the last has come. The slot connects
   * again at once (a draining server's replacement may already listen) unless retired.
   */
  private drain(channel: Channel, why: 'draining' | 'removed'): void {
    if (channel.draining) return;
    channel.draining = true;
    if (!channel.conn.isClosed()) this.sendPacket(channel.conn, drainingPacket());
    const slot = channel.slot;
    if (slot.channel === channel) slot.channel = null;
    this.endpointEvent(slot, why);
    this.closeIfDone(channel);
    if (why === 'draining' && !slot.retired && !this.closedByUser) {
      slot.reconnecting = true;
      this.open(slot);
    }
    this.updateStatus();
  }

  private onConnectionLost(channel: Channel): void {
    if (!this.channels.delete(channel)) return;
    const slot = channel.slot;
    const wasInUse = slot.channel === channel;
    if (wasInUse) slot.channel = null;
    this.emitter.emit('disconnect');
    const lost = channel.failure ?? lostError(channel.socket);
    // What the connection had not written whole cannot have run: it goes out elsewhere,
    // once (a request the server drops the connection for, such as a frame over its
    // maxFrameSize, would otherwise go round for ever). What it had written may have run:
    // it fails, and is never sent twice.
    const written = channel.conn.writtenBytes();
    for (const call of [...channel.calls.values()]) {
      channel.calls.delete(call.id);
      call.channel = null;
      if (call.endOffset > written && !call.moved && !this.closedByUser) {
        call.moved = true;
        this.route(call);
      } else this.finish(call, { err: lost });
    }
    this.failPings(channel, lost);
    this.unacked?.orphan(channel);
    if (this.pick(false)) {
      const other = this.pick(false)!;
      this.unacked?.resend((packet) => {
        this.sendPacket(other.conn, packet);
        return other;
      }, true);
    }
    if (!this.closedByUser && wasInUse && !slot.retired) {
      this.endpointEvent(slot, 'down');
      slot.lastError = lost;
      if (this.opts.reconnect === false) {
        if (!this.pick(false)) this.unacked?.failAll(lost);
      } else {
        slot.reconnecting = true;
        this.retry(slot);
      }
    }
    if (this.balancing && !this.closedByUser) void this.refreshEndpoints();
    this.checkHopeless();
    this.updateStatus();
  }

  /** 'connected' while any connection takes requests; 'reconnecting' while one is retried. */
  private updateStatus(): void {
    if (this.closedByUser) return;
    const status = this.pick(false)
      ? 'connected'
      : this.slots.some((s) => s.reconnecting)
        ? 'reconnecting'
        : this.lastStatus === null
          ? null
          : 'disconnected';
    if (status === null || status === this.lastStatus) return;
    this.lastStatus = status;
    this._status$.next(status);
  }

  // ---------------------------------------------------------------- resolving (balancing)

  private startResolveTimer(): void {
    if (this.resolveTimer || this.opts.resolveInterval === 0) return;
    this.resolveTimer = setInterval(() => void this.refreshEndpoints(), this.opts.resolveInterval);
    this.resolveTimer.unref();
  }

  /**
   * Resolves every endpoint's host (all addresses) and brings the slots in line: a slot per
   * address × connectionsPerEndpoint; new ones are connected (when the client is in use),
   * vanished ones drained. A name that fails to resolve keeps its previous addresses.
   * Through a SOCKS5 or HTTP proxy, names are the proxy's to resolve: used as they are.
   */
  private refreshEndpoints(): Promise<void> {
    if (this.resolving) return this.resolving;
    const run = (async () => {
      const previous = addressesOf(this.slots);
      const throughProxy = this.opts.proxy.type === 'socks5' || this.opts.proxy.type === 'http';
      const { wanted, error } = await resolveEndpoints(this.opts.endpoints, throughProxy, previous);
      if (error) this.resolveError = error;
      this.applyEndpoints(wanted);
      this.resolvedOnce = true;
    })().finally(() => {
      this.resolving = null;
    });
    this.resolving = run;
    return run;
  }

  private applyEndpoints(wanted: Array<{ endpoint: QtEndpoint; address: string }>): void {
    if (this.closedByUser) return;
    const plan = planSlots(this.slots, wanted, this.opts.connectionsPerEndpoint);
    for (const { slot, first } of plan.added) {
      if (first) this.endpointEvent(slot, 'added');
      // Connected now if the client is in use; otherwise by the next request.
      if (this.resolvedOnce && (this.channels.size > 0 || this.waiters.length > 0)) {
        queueMicrotask(() => this.open(slot));
      }
    }
    // Vanished addresses: drained (their requests keep their answers), never retried.
    for (const slot of plan.vanished) {
      slot.retired = true;
      this.stopRetrying(slot);
      if (slot.channel) this.drain(slot.channel, 'removed');
      else this.endpointEvent(slot, 'removed');
    }
    this.slots = plan.next;
    this.updateStatus();
  }
}
