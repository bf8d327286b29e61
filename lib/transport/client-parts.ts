/**
 * ClientQt's parts that need no client: its events, the records of its connections
 * (Channel), requests (Call) and endpoint slots (Slot), and the errors a request gets.
 */
import * as dns from 'node:dns/promises';
import { isIP } from 'node:net';

import { QLocalSocket, socketErrorName, type SocketError } from '../qtnetwork/index.js';

import type { ReadPacket, WritePacket } from '@nestjs/microservices';

import type { QtEndpoint, ResolvedQtOptions } from './options.js';
import { QtConnectionError, ServerClosingError, type QtTransportError } from './wire/errors.js';
import type { QtConnection, QtStreamSocket } from './wire/qt-connection.js';
import { localErrorName, type DialTarget } from './client-dial.js';
import { QtRecord } from './qt-record.js';
import type { QtCallTrace } from './telemetry/qt-telemetry.js';
import { Observable } from 'rxjs';

/** What `on('endpoint', …)` reports about one endpoint (an address, with balancing). */
export interface QtEndpointEvent {
  /** The host as configured (a name or an address); the local name for a local socket. */
  host: string;
  /** The address connected to: one of the host's addresses (balancing), or `host`. */
  address: string;
  port: number;
  /**
   * 'added' (found by resolving), 'up' (connected), 'draining' (its server is closing: it
   * takes nothing new), 'down' (its connection was lost; it is retried), 'removed' (its
   * address vanished from the name's records: drained, not retried).
   */
  state: 'added' | 'up' | 'draining' | 'down' | 'removed';
}

/** Events of ClientQt, for `on(event, callback)`. */
export interface QtClientEvents {
  [event: string]: (...args: never[]) => unknown;
  /** A connection was made (also after a reconnect; with balancing, one per connection). */
  connect: (socket: QtStreamSocket) => void;
  /** A connection was lost or closed. */
  disconnect: () => void;
  /** A reconnect attempt is scheduled: attempt number, delay in ms, and for which endpoint. */
  reconnecting: (attempt: number, delayMs: number, endpoint: QtEndpointEvent) => void;
  /** The server broke the protocol or a limit; the connection is closed. */
  protocolError: (error: QtTransportError) => void;
  /** An endpoint came, went, or changed (see QtEndpointEvent). */
  endpoint: (event: QtEndpointEvent) => void;
}

export type Callback = (packet: WritePacket) => void;

/** How long `close()` waits for the server to take what was emitted before aborting. */
export const CLOSE_GRACE_MS = 5000;

/**
 * The error a failed request gets for an error reply's `err`: a server's closing notice
 * becomes ServerClosingError (the request did not run); anything else is passed on as sent.
 */
export function replyError(err: unknown): unknown {
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

/** The payload of `send` / `emit`'s data: a QtRecord's own, or the data. */
export function payloadOf(data: unknown): unknown {
  return data instanceof QtRecord ? data.data : data;
}

/** One connection and the requests waiting for their last reply on it. */
export interface Channel {
  readonly socket: QtStreamSocket;
  readonly conn: QtConnection;
  readonly slot: Slot;
  readonly calls: Map<number, Call>;
  /** Pings sent on it and not answered yet, by their integer. */
  readonly pings: Map<number, PendingPing>;
  /** Its server drains (or its address vanished): nothing new goes out on it. */
  draining: boolean;
  /** Why this client dropped it itself (a protocol error or a limit). */
  failure: unknown;
}

/** A request in flight: where it went, and how far the connection must have written it. */
export interface Call {
  id: number;
  channel: Channel | null;
  readonly packet: ReadPacket;
  readonly callback: Callback;
  /** The connection's sentBytes() right after the request's frame was queued. */
  endOffset: number;
  /** It was moved to another connection once already (its first was lost mid-write). */
  moved: boolean;
  /** Answered, failed or cancelled. */
  done: boolean;
  /** Its span, when it is traced (telemetry/qt-telemetry.ts). */
  readonly trace: QtCallTrace | null;
}

/** A ping waiting for its pong (`ClientQt.ping`). */
export interface PendingPing {
  /** performance.now() when the ping was queued for writing. */
  sentAt: number;
  resolve(ms: number): void;
  reject(err: unknown): void;
}

/**
 * A place for one connection: to one address of an endpoint (balancing), or, with 'first',
 * to the first of the endpoints that connects. It holds at most one usable connection and
 * gets a new one with `reconnect`'s backoff when it is lost.
 */
export interface Slot {
  readonly key: string;
  readonly targets: DialTarget[];
  readonly info: Omit<QtEndpointEvent, 'state'>;
  channel: Channel | null;
  connecting: boolean;
  /** It had a connection and lost it (or its server drained): attempts follow the backoff. */
  reconnecting: boolean;
  attempt: number;
  timer: NodeJS.Timeout | null;
  /** Its address vanished: drained and never connected again. */
  retired: boolean;
  lastError: unknown;
}

export interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** The error of requests on a lost connection: the socket's own, or a plain close. */
export function lostError(socket: QtStreamSocket): QtConnectionError {
  // A keepalive timeout is a NetworkError, "Connection timed out"; a plain close from the
  // peer otherwise.
  const socketError = socket.error() as number;
  const code =
    socket instanceof QLocalSocket
      ? socketError >= 0
        ? localErrorName(socketError)
        : 'PeerClosedError'
      : socketError >= 0
        ? socketErrorName(socketError as SocketError)
        : 'RemoteHostClosedError';
  return new QtConnectionError(code, `The connection was lost: ${socket.errorString()}`);
}

/**
 * Every address of every endpoint (`dns.lookup`, all of them), for balancing. Through a
 * SOCKS5 or HTTP proxy, and for an address, the host is used as it is. A name that fails
 * to resolve keeps its `previous` addresses (by `host|port`), and `error` says why.
 */
export async function resolveEndpoints(
  endpoints: readonly QtEndpoint[],
  throughProxy: boolean,
  previous: ReadonlyMap<string, string[]>,
): Promise<{ wanted: Array<{ endpoint: QtEndpoint; address: string }>; error: unknown }> {
  const wanted: Array<{ endpoint: QtEndpoint; address: string }> = [];
  let error: unknown = null;
  for (const endpoint of endpoints) {
    let addresses: string[];
    if (throughProxy || isIP(endpoint.host)) addresses = [endpoint.host];
    else {
      try {
        const found = await dns.lookup(endpoint.host, { all: true });
        addresses = [...new Set(found.map((a) => a.address))];
      } catch (err) {
        addresses = previous.get(`${endpoint.host}|${endpoint.port}`) ?? [];
        error = new QtConnectionError(
          'HostNotFoundError',
          `Host ${endpoint.host} not found: ${(err as Error).message}`,
        );
      }
    }
    for (const address of addresses) wanted.push({ endpoint, address });
  }
  return { wanted, error };
}

// ---------------------------------------------------------------- slots

export function newSlot(key: string, targets: DialTarget[], info: Slot['info']): Slot {
  return {
    key,
    targets,
    info,
    channel: null,
    connecting: false,
    reconnecting: false,
    attempt: 0,
    timer: null,
    retired: false,
    lastError: null,
  };
}

/**
 * The slots when nothing is resolved: one for 'first' (it dials the endpoints in order), or
 * connectionsPerEndpoint of them for a local socket with balancing.
 */
export function fixedSlots(o: ResolvedQtOptions, balancing: boolean): Slot[] {
  if (o.transport === 'local') {
    const copies = balancing ? o.connectionsPerEndpoint : 1;
    return Array.from({ length: copies }, (_, i) =>
      newSlot(`local|${i}`, [{ kind: 'local' }], { host: o.name, address: o.name, port: 0 }),
    );
  }
  const targets: DialTarget[] = o.endpoints.map((e) => ({
    kind: 'tcp',
    host: e.host,
    port: e.port,
  }));
  const first = o.endpoints[0];
  return [newSlot('first', targets, { host: first.host, address: first.host, port: first.port })];
}

/** The addresses the live slots connect to, by `host|port` (what a failed lookup keeps). */
export function addressesOf(slots: readonly Slot[]): Map<string, string[]> {
  const byEndpoint = new Map<string, string[]>();
  for (const slot of slots) {
    if (slot.retired) continue;
    const key = `${slot.info.host}|${slot.info.port}`;
    const list = byEndpoint.get(key) ?? [];
    if (!list.includes(slot.info.address)) list.push(slot.info.address);
    byEndpoint.set(key, list);
  }
  return byEndpoint;
}

export interface SlotPlan {
  /**
   * The slots from now on: the kept ones in their previous order, then the new ones (a
   * resolver that rotates its answers must not reorder round-robin's turn).
   */
  next: Slot[];
  /** New slots; `first` marks an address's first copy (the one its 'added' event names). */
  added: Array<{ slot: Slot; first: boolean }>;
  /** Slots whose address is no longer wanted. */
  vanished: Slot[];
}

/**
 * Lines the slots up with the resolved addresses: one slot per address ×
 * connectionsPerEndpoint, keeping the slots that still match (and their connections).
 */
export function planSlots(
  slots: readonly Slot[],
  wanted: ReadonlyArray<{ endpoint: QtEndpoint; address: string }>,
  copies: number,
): SlotPlan {
  const byKey = new Map(slots.map((s) => [s.key, s]));
  const kept = new Set<Slot>();
  const added: SlotPlan['added'] = [];
  for (const { endpoint, address } of wanted) {
    for (let i = 0; i < copies; i++) {
      const key = `${endpoint.host}|${address}|${endpoint.port}|${i}`;
      const existing = byKey.get(key);
      if (existing) {
        kept.add(existing);
        continue;
      }
      if (added.some((a) => a.slot.key === key)) continue; // an address listed twice
      // TLS checks each address's certificate against the configured name.
      const peerName = isIP(endpoint.host) ? undefined : endpoint.host;
      const slot = newSlot(key, [{ kind: 'tcp', host: address, port: endpoint.port, peerName }], {
        host: endpoint.host,
        address,
        port: endpoint.port,
      });
      added.push({ slot, first: i === 0 });
    }
  }
  return {
    next: [...slots.filter((s) => kept.has(s)), ...added.map((a) => a.slot)],
    added,
    vanished: slots.filter((s) => !kept.has(s)),
  };
}

/**
 * `request$` in a CLIENT span started at subscription (`start`; a child of the context
 * active then) and ended at its last reply, its error (status ERROR) or unsubscription; the
 * request is sent inside the span, so its metadata carries the span's trace context.
 */
export function traced<T>(start: () => QtCallTrace, request$: Observable<T>): Observable<T> {
  return new Observable<T>((observer) => {
    const call = start();
    const subscription = call.run(() =>
      request$.subscribe({
        next: (value) => observer.next(value),
        error: (err: unknown) => {
          call.fail(err);
          call.end();
          observer.error(err);
        },
        complete: () => {
          call.end();
          observer.complete();
        },
      }),
    );
    return () => {
      subscription.unsubscribe();
      call.end();
    };
  });
}
