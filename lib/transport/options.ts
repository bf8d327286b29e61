import { getHeapStatistics } from 'node:v8';

import type { Deserializer, Serializer } from '@nestjs/microservices';

import { DEFAULT_MAX_PACKET_VALUES, type CodecName } from './wire/codec.js';
import { QTcpServer } from '../qtnetwork/index.js';

import { InvalidOptionError } from './wire/errors.js';
import { isBareLocalName } from './local-path.js';
import { resolveTlsOptions, type QtTlsOptions, type ResolvedTlsOptions } from './tls.js';

/** Socket options applied to every connection (Qt's QAbstractSocket::SocketOption). */
export interface QtSocketOptions {
  /** TCP_NODELAY (LowDelayOption). Default true. */
  lowDelay?: boolean;
  /** SO_KEEPALIVE (KeepAliveOption). Default false. */
  keepAlive?: boolean;
  /**
   * Ms a connection may be idle before the first keepalive probe (TCP_KEEPIDLE); turns
   * `keepAlive` on. Default: the system's (Linux: 2 hours). With a value set, Node probes
   * 10 times, 1 s apart (measured on Node 20, Linux), so a dead peer is known about
   * keepAliveIdle + 10 s after the last byte from it. At least 1000.
   */
  keepAliveIdle?: number;
  /** SO_SNDBUF in bytes. Node cannot set it on TCP sockets: accepted, warned, not applied. */
  sendBufferSize?: number;
  /** SO_RCVBUF in bytes. Node cannot set it on TCP sockets: accepted, warned, not applied. */
  receiveBufferSize?: number;
  /** IP type of service. Node cannot set it: accepted, warned, not applied. */
  typeOfService?: number;
}

/** A client's proxy, as QNetworkProxy. */
export interface QtProxyOptions {
  /** 'socks5', 'http' (CONNECT), 'none' (direct) or 'default' (the application proxy). */
  type: 'socks5' | 'http' | 'none' | 'default';
  hostName?: string;
  port?: number;
  user?: string;
  password?: string;
}

/** Reconnection after an established connection is lost (ms, doubling, with jitter). */
export interface QtReconnectOptions {
  /** Attempts before giving up. Default 10. */
  retries?: number;
  /** First delay in ms. Default 100. */
  initialDelay?: number;
  /** Largest delay in ms. Default 5000. */
  maxDelay?: number;
}

/** Bounds of the acknowledged-event mode. */
export interface QtAcknowledgedEventsOptions {
  /** Events waiting for their acknowledgement at once; another emit fails. Default 10000. */
  maxUnacked?: number;
  /** Times one event is sent again after reconnects before it fails. Default 5. */
  maxResends?: number;
}

/**
 * Options of ServerQt and ClientQt (README.md "Configuration"; unmarked ones apply to both).
 */
export interface QtTransportOptions {
  /** 'tcp' (default) or 'local' (Unix-domain socket / Windows named pipe). */
  transport?: 'tcp' | 'local';
  /** TCP host: the address to listen on (server) or connect to (client). Default '127.0.0.1'. */
  host?: string;
  /** TCP port. Default 3000. */
  port?: number;
  /** Local server name, or an absolute socket path. Required for 'local'. */
  name?: string;
  /** Server, local: who may connect (QLocalServer.SocketOption). Default ['user']. */
  socketAccess?: Array<'user' | 'group' | 'other' | 'world'>;
  /** Server, local: remove a socket file nobody accepts on before listening. Default true. */
  removeStaleSocket?: boolean;
  /**
   * Client, local: the uids a local server's socket file may belong to besides this
   * process's own uid and root's, or 'any' to connect whoever owns it. Default [] (only
   * self and root): a socket another user made in a shared directory is refused.
   */
  trustedSocketOwners?: number[] | 'any';
  /** Server: connections handed out before they are taken (Qt's pending limit). Default 30. */
  maxPendingConnections?: number;
  /** Server: listen backlog and bound of waiting connections. Default 50. */
  listenBacklogSize?: number;
  /** Socket options for every connection. Default { lowDelay: true }. */
  socketOptions?: QtSocketOptions;
  /** Bytes a connection buffers from the kernel before reading stops; 0 = unbounded. Default 0. */
  readBufferSize?: number;
  /** Client: the proxy to connect through. Default { type: 'default' }. */
  proxy?: QtProxyOptions;
  /** Largest frame in bytes, both directions. Default 64 MiB. */
  maxFrameSize?: number;
  /**
   * Values one incoming packet may hold: every map, array, string (map keys too), number,
   * boolean and null counts one. They are counted on the frame's bytes before it is decoded;
   * a packet with more closes its connection (PacketTooComplexError), so that one frame
   * cannot build millions of objects. At least 1; from `maxFrameSize` on, no packet is
   * refused for its count (every value takes a byte). Default 1000000.
   */
  maxPacketValues?: number;
  /** Ms a peer may stall in the middle of a frame. Default 30000. */
  incompleteFrameTimeout?: number;
  /**
   * Ms one incoming frame may take from its first byte to its last, extended by one second
   * for every `minFrameRate` bytes received of it: a peer that trickles a frame (slow loris)
   * is dropped even though it keeps making progress. 0 turns it off. Default 30000.
   */
  frameTimeout?: number;
  /** Bytes per second of a frame that extend `frameTimeout` by one second. Default 65536. */
  minFrameRate?: number;
  /**
   * Server: connections served at once; further ones wait in the pending queue and the
   * backlog (`maxPendingConnections`, `listenBacklogSize`) until one ends, and beyond those
   * are refused. 0 = no limit. Default 1000.
   */
  maxConnections?: number;
  /**
   * Server: ms a connection may stay open with no frame arriving and no handler of its
   * running before it is closed. 0 = never. Default 0 (a ClientQt keeps its connection open
   * between requests).
   */
  idleTimeout?: number;
  /** Bytes queued for a peer that does not read before it is dropped. Default 128 MiB. */
  maxSendBufferSize?: number;
  /**
   * Server: bytes buffered in and out across all connections (incoming frames reserved at
   * their header, replies until the kernel takes them). A frame that does not fit waits
   * (its peer is not read); a reply that does not fit is replaced by an error reply; while
   * the budget stays exhausted the connection holding the most is dropped. 0 = no budget.
   * Default: a quarter of the V8 heap limit, and at least twice `maxFrameSize`.
   */
  maxBufferedBytes?: number;
  /** Client: the encoding of requests ('json' or 'cbor'). Default 'json'. */
  codec?: CodecName;
  /** Nest's serializer hook. */
  serializer?: Serializer;
  /** Nest's deserializer hook. */
  deserializer?: Deserializer;
  /** Client: ms until a request's first reply before it fails; 0 = none. Default 0. */
  requestTimeout?: number;
  /** Client: ms for one connection attempt. Default 5000. */
  connectTimeout?: number;
  /**
   * Server, TCP: let independent processes listen on the same port (SO_REUSEPORT), where the
   * installed Node supports it (22.12+, 23.1+); elsewhere InvalidOptionError. Default false.
   * Cluster workers share the primary's socket without it.
   */
  reusePort?: boolean;
  /**
   * Client, TCP: several servers of one service, `{ host, port }` each; `host`/`port` are the
   * one-server form. Default none (`host`/`port`).
   */
  endpoints?: QtEndpoint[];
  /**
   * Client: how requests are spread. 'first' (default): one connection, to the first address
   * that connects (Qt's rule). 'round-robin': each request to the next connection.
   * 'least-pending': to the connection with the fewest requests in flight (ties in turn).
   * With balancing, a host name that resolves to several addresses is one endpoint each.
   */
  loadBalancing?: 'first' | 'round-robin' | 'least-pending';
  /** Client, balancing: ms between resolving host names again; 0 = only when one is lost. Default 30000. */
  resolveInterval?: number;
  /** Client, balancing: connections to each endpoint (address). Default 1. */
  connectionsPerEndpoint?: number;
  /** Client: reconnection after a lost connection; false turns it off. */
  reconnect?: QtReconnectOptions | false;
  /** Server: ms `close()` waits for handlers in flight. Default 10000. */
  closeTimeout?: number;
  /**
   * Server: serve on the listening descriptor systemd passes (LISTEN_FDS, descriptor 3)
   * when there is one, instead of binding; without one, listen as usual. Default false.
   */
  socketActivation?: boolean;
  /**
   * Client: acknowledged events. `emit` then completes when the server has run the event's
   * handler; events not acknowledged when a connection is lost are sent again after the
   * reconnect (at least once delivery), each at most `maxResends` times, with at most
   * `maxUnacked` waiting. Default false (an event completes once written).
   */
  acknowledgedEvents?: boolean | QtAcknowledgedEventsOptions;
  /**
   * TLS over TCP (QSslServer / QSslSocket): certificate, key, CA, verify mode, peer name.
   * Default none (plain TCP).
   */
  tls?: QtTlsOptions;
}

/** One server of a service (the `endpoints` option). */
export interface QtEndpoint {
  host: string;
  port: number;
}

/** Options with every default filled in. */
export interface ResolvedQtOptions {
  transport: 'tcp' | 'local';
  host: string;
  port: number;
  name: string;
  socketAccess: Array<'user' | 'group' | 'other' | 'world'>;
  removeStaleSocket: boolean;
  trustedSocketOwners: number[] | 'any';
  maxPendingConnections: number;
  listenBacklogSize: number;
  socketOptions: Required<Pick<QtSocketOptions, 'lowDelay' | 'keepAlive'>> & QtSocketOptions;
  readBufferSize: number;
  proxy: QtProxyOptions;
  maxFrameSize: number;
  maxPacketValues: number;
  incompleteFrameTimeout: number;
  frameTimeout: number;
  minFrameRate: number;
  maxConnections: number;
  idleTimeout: number;
  maxSendBufferSize: number;
  maxBufferedBytes: number;
  codec: CodecName;
  serializer?: Serializer;
  deserializer?: Deserializer;
  requestTimeout: number;
  connectTimeout: number;
  reusePort: boolean;
  /** The servers to use: `endpoints`, or `[{ host, port }]`; empty for a local socket. */
  endpoints: QtEndpoint[];
  loadBalancing: 'first' | 'round-robin' | 'least-pending';
  resolveInterval: number;
  connectionsPerEndpoint: number;
  reconnect: Required<QtReconnectOptions> | false;
  closeTimeout: number;
  socketActivation: boolean;
  acknowledgedEvents: Required<QtAcknowledgedEventsOptions> | false;
  tls: ResolvedTlsOptions | null;
}

const MiB = 1024 * 1024;
/** Node's timers hold at most 2^31 - 1 ms; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** 0xFFFFFFFF is QDataStream's null QByteArray, never a length. */
const MAX_FRAME_LIMIT = 0xfffffffe;

/** Every key of T, each one required: a table that cannot miss an option nor invent one. */
type EveryKey<T> = { readonly [K in keyof T]-?: unknown };

/**
 * The one place where defaults are set: every option (README.md "Configuration"), with the
 * value it takes when it is not given. Its keys, in this order, are also the known option
 * names, at the top level and in the nested objects; an option without a default is listed
 * as undefined.
 */
const DEFAULTS = {
  /** 'tcp' or 'local' (Unix-domain socket / Windows named pipe). */
  transport: 'tcp',
  /** TCP host: listened on (server) or connected to (client). */
  host: '127.0.0.1',
  /** TCP port. */
  port: 3000,
  /** Local server name or absolute socket path; '' for TCP, required for 'local'. */
  name: '',
  /** Server, local: who may connect (QLocalServer.SocketOption flags). */
  socketAccess: ['user'],
  /** Server, local: remove a socket file nobody accepts on before listening. */
  removeStaleSocket: true,
  /** Client, local: uids trusted to own the server's socket besides self and root ('any': all). */
  trustedSocketOwners: [] as number[] | 'any',
  /** Server: connections accepted but not yet taken (Qt's pending limit). */
  maxPendingConnections: 30,
  /** Server: kernel listen backlog, and bound of connections waiting beyond it. */
  listenBacklogSize: 50,
  /** Every connection's QAbstractSocket options; keepAlive turns on with keepAliveIdle (ms). */
  socketOptions: {
    lowDelay: true,
    keepAlive: false,
    keepAliveIdle: undefined,
    sendBufferSize: undefined,
    receiveBufferSize: undefined,
    typeOfService: undefined,
  } as const satisfies EveryKey<QtSocketOptions>,
  /** Bytes a connection buffers from the kernel before reading stops; 0 = unbounded. */
  readBufferSize: 0,
  /** Client: the QNetworkProxy to connect through; 'default' = the application proxy. */
  proxy: {
    type: 'default',
    hostName: undefined,
    port: undefined,
    user: undefined,
    password: undefined,
  } as const satisfies EveryKey<QtProxyOptions>,
  /** Bytes per frame, both directions. */
  maxFrameSize: 64 * MiB,
  /** Values (maps, arrays, strings, numbers, ...) one incoming packet may hold. */
  maxPacketValues: DEFAULT_MAX_PACKET_VALUES,
  /** Ms a peer may stall in the middle of a frame. */
  incompleteFrameTimeout: 30000,
  /** Ms one incoming frame may take, extended by 1 s per minFrameRate bytes; 0 = off. */
  frameTimeout: 30000,
  /** Bytes per second of a frame that extend frameTimeout by one second. */
  minFrameRate: 65536,
  /** Server: connections served at once; 0 = no limit. */
  maxConnections: 1000,
  /** Server: ms a connection may stay with no frame and no handler running; 0 = never. */
  idleTimeout: 0,
  /** Bytes queued for a peer that does not read before it is dropped. */
  maxSendBufferSize: 128 * MiB,
  /** Server: bytes buffered across connections; none here: derived from the heap (below). */
  maxBufferedBytes: undefined,
  /** Client: the encoding of requests, 'json' or 'cbor'. */
  codec: 'json',
  /** Nest's serializer hook; none: Nest's own. */
  serializer: undefined,
  /** Nest's deserializer hook; none: Nest's own. */
  deserializer: undefined,
  /** Client: ms until a request's first reply before it fails; 0 = none. */
  requestTimeout: 0,
  /** Client: ms for one connection attempt. */
  connectTimeout: 5000,
  /** Server, TCP: SO_REUSEPORT, for independent processes on one port. */
  reusePort: false,
  /** Client, TCP: several servers of one service; none: host and port. */
  endpoints: undefined,
  /** Client: 'first' (one connection), 'round-robin' or 'least-pending'. */
  loadBalancing: 'first',
  /** Client, balancing: ms between resolutions of host names; 0 = only on a lost connection. */
  resolveInterval: 30000,
  /** Client, balancing: connections to each address. */
  connectionsPerEndpoint: 1,
  /** Client: attempts, and first and largest delay in ms, after a lost connection. */
  reconnect: {
    retries: 10,
    initialDelay: 100,
    maxDelay: 5000,
  } as const satisfies EveryKey<QtReconnectOptions>,
  /** Server: ms close() waits for handlers in flight. */
  closeTimeout: 10000,
  /** Server: serve on the descriptor systemd passes (LISTEN_FDS) when there is one. */
  socketActivation: false,
  /** Client: off unless given; `true` means these bounds (events waiting, resends of one). */
  acknowledgedEvents: {
    maxUnacked: 10000,
    maxResends: 5,
  } as const satisfies EveryKey<QtAcknowledgedEventsOptions>,
  /** TLS over TCP; none: plain TCP (its own defaults are in tls.ts). */
  tls: null,
} as const satisfies EveryKey<QtTransportOptions>;

/** The known option names, in DEFAULTS' order (the order an unknown-option error lists). */
const KNOWN_OPTIONS: readonly string[] = Object.keys(DEFAULTS);

type Options = Record<string, unknown>;
type Defaults = typeof DEFAULTS;
/** The top-level options whose default is a number / a boolean. */
type IntegerOption = {
  [K in keyof Defaults]: Defaults[K] extends number ? K : never;
}[keyof Defaults];
type BooleanOption = {
  [K in keyof Defaults]: Defaults[K] extends boolean ? K : never;
}[keyof Defaults];

function isObject(value: unknown): value is Options {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `'a', 'b', 'c'`: the accepted values as an error message lists them. */
function quoted(values: readonly string[]): string {
  return values.map((v) => `'${v}'`).join(', ');
}

function integer(
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** An integer that has no default: undefined stays undefined. */
function optionalInteger(
  name: string,
  value: unknown,
  min: number,
  max?: number,
): number | undefined {
  return value === undefined ? undefined : integer(name, value, 0, min, max);
}

/** The top-level integer option `key`, or its default. */
function integerOption(o: Options, key: IntegerOption, min: number, max?: number): number {
  return integer(key, o[key], DEFAULTS[key], min, max);
}

/** The top-level option `key`, in ms that a timer can wait, or its default. */
function msOption(o: Options, key: IntegerOption, min: number): number {
  return integerOption(o, key, min, MAX_TIMER_MS);
}

function oneOf<T extends string>(
  name: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidOptionError(name, `one of ${quoted(allowed)}`, value);
  }
  return value as T;
}

function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, 'true or false', value);
  return value;
}

/** The top-level boolean option `key`, or its default. */
function boolOption(o: Options, key: BooleanOption): boolean {
  return bool(key, o[key], DEFAULTS[key]);
}

function plainObject(name: string, value: unknown): Options {
  if (!isObject(value)) throw new InvalidOptionError(name, 'an object', value);
  return value;
}

/** Rejects a key of the nested option `name` that its DEFAULTS entry does not list. */
function onlyKeys(name: string, value: Options, defaults: object): void {
  const keys = Object.keys(defaults);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) {
      throw new InvalidOptionError(`${name}.${key}`, `one of the keys ${keys.join(', ')}`, key);
    }
  }
}

/** `input` as an object of known options only. */
function knownOptions(input: QtTransportOptions | undefined): Options {
  const o = input === undefined ? {} : plainObject('options', input);
  for (const key of Object.keys(o)) {
    if (!KNOWN_OPTIONS.includes(key)) {
      throw new InvalidOptionError(key, `a known option (${KNOWN_OPTIONS.join(', ')})`, o[key]);
    }
  }
  return o;
}

/** What to listen on or connect to, but the port: transport, host and local name. */
function resolveEndpoint(o: Options): Pick<ResolvedQtOptions, 'transport' | 'host' | 'name'> {
  const transport = oneOf('transport', o.transport, ['tcp', 'local'] as const, DEFAULTS.transport);
  if (o.host !== undefined && (typeof o.host !== 'string' || o.host === '')) {
    throw new InvalidOptionError('host', 'a non-empty string (host name or address)', o.host);
  }
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === '')) {
    throw new InvalidOptionError(
      'name',
      'a non-empty string (server name or absolute path)',
      o.name,
    );
  }
  if (transport === 'local' && o.name === undefined) {
    throw new InvalidOptionError(
      'name',
      "a server name or absolute path (required with transport 'local')",
      undefined,
    );
  }
  return {
    transport,
    host: (o.host as string | undefined) ?? DEFAULTS.host,
    name: (o.name as string | undefined) ?? DEFAULTS.name,
  };
}

/**
 * A bare local name lives in this user's private 0700 directory (local-path.ts), which no
 * other user can enter: access for group or others there would be granted and never usable.
 */
function checkAccessReachable(
  endpoint: Pick<ResolvedQtOptions, 'transport' | 'name'>,
  access: ResolvedQtOptions['socketAccess'],
): void {
  if (endpoint.transport !== 'local' || !isBareLocalName(endpoint.name)) return;
  if (access.every((flag) => flag === 'user')) return;
  throw new InvalidOptionError(
    'socketAccess',
    "['user'] with a bare name (it lives in this user's private directory, which other " +
      'users cannot enter); give an absolute name in a directory they can reach',
    access,
  );
}

/** Server, local: who may connect; a copy, so later changes to the input do not leak in. */
function resolveTrustedOwners(value: unknown): ResolvedQtOptions['trustedSocketOwners'] {
  if (value === undefined) return [];
  if (value === 'any') return 'any';
  if (!Array.isArray(value) || value.some((v) => !Number.isInteger(v) || (v as number) < 0)) {
    throw new InvalidOptionError('trustedSocketOwners', "an array of uids or 'any'", value);
  }
  return [...(value as number[])];
}

function resolveSocketAccess(value: unknown): ResolvedQtOptions['socketAccess'] {
  const allowed: readonly string[] = ['user', 'group', 'other', 'world'];
  const access = value ?? DEFAULTS.socketAccess;
  if (!Array.isArray(access) || access.some((v) => !allowed.includes(v as string))) {
    throw new InvalidOptionError('socketAccess', `an array of ${quoted(allowed)}`, value);
  }
  return [...(access as ResolvedQtOptions['socketAccess'])];
}

function resolveSocketOptions(value: unknown): ResolvedQtOptions['socketOptions'] {
  const s = value === undefined ? {} : plainObject('socketOptions', value);
  onlyKeys('socketOptions', s, DEFAULTS.socketOptions);
  const keepAliveIdle = optionalInteger(
    'socketOptions.keepAliveIdle',
    s.keepAliveIdle,
    1000,
    MAX_TIMER_MS,
  );
  if (keepAliveIdle !== undefined && s.keepAlive === false) {
    throw new InvalidOptionError(
      'socketOptions.keepAliveIdle',
      'no value when socketOptions.keepAlive is false',
      keepAliveIdle,
    );
  }
  const keepAliveByDefault = keepAliveIdle !== undefined || DEFAULTS.socketOptions.keepAlive;
  return {
    lowDelay: bool('socketOptions.lowDelay', s.lowDelay, DEFAULTS.socketOptions.lowDelay),
    keepAlive: bool('socketOptions.keepAlive', s.keepAlive, keepAliveByDefault),
    keepAliveIdle,
    sendBufferSize: optionalInteger('socketOptions.sendBufferSize', s.sendBufferSize, 1),
    receiveBufferSize: optionalInteger('socketOptions.receiveBufferSize', s.receiveBufferSize, 1),
    typeOfService: optionalInteger('socketOptions.typeOfService', s.typeOfService, 0, 255),
  };
}

/** Client: the proxy; a SOCKS5 or HTTP proxy needs its host name and port. */
function resolveProxy(value: unknown): QtProxyOptions {
  const p = value === undefined ? {} : plainObject('proxy', value);
  onlyKeys('proxy', p, DEFAULTS.proxy);
  const types = ['socks5', 'http', 'none', 'default'] as const;
  const type = oneOf('proxy.type', p.type, types, DEFAULTS.proxy.type);
  if (type === 'socks5' || type === 'http') {
    if (typeof p.hostName !== 'string' || p.hostName === '') {
      throw new InvalidOptionError('proxy.hostName', 'a non-empty string', p.hostName);
    }
    integer('proxy.port', p.port ?? -1, 0, 1, 65535);
  }
  for (const key of ['user', 'password'] as const) {
    if (p[key] !== undefined && typeof p[key] !== 'string') {
      throw new InvalidOptionError(`proxy.${key}`, 'a string', p[key]);
    }
  }
  return {
    type,
    hostName: p.hostName as string | undefined,
    port: p.port as number | undefined,
    user: p.user as string | undefined,
    password: p.password as string | undefined,
  };
}

/** Client: reconnection after a lost connection, or false. */
function resolveReconnect(value: unknown): ResolvedQtOptions['reconnect'] {
  if (value === false) return false;
  if (value !== undefined && !isObject(value)) {
    throw new InvalidOptionError(
      'reconnect',
      'false or an object { retries, initialDelay, maxDelay }',
      value,
    );
  }
  const r = value ?? {};
  const d = DEFAULTS.reconnect;
  onlyKeys('reconnect', r, d);
  return {
    retries: integer('reconnect.retries', r.retries, d.retries, 0),
    initialDelay: integer(
      'reconnect.initialDelay',
      r.initialDelay,
      d.initialDelay,
      1,
      MAX_TIMER_MS,
    ),
    maxDelay: integer('reconnect.maxDelay', r.maxDelay, d.maxDelay, 1, MAX_TIMER_MS),
  };
}

/** Nest's serializer and deserializer hooks, each an object with its method. */
function resolveHooks(o: Options): Pick<ResolvedQtOptions, 'serializer' | 'deserializer'> {
  for (const key of ['serializer', 'deserializer'] as const) {
    const hook = o[key] as { serialize?: unknown; deserialize?: unknown } | undefined;
    const method = key === 'serializer' ? 'serialize' : 'deserialize';
    if (
      hook !== undefined &&
      (typeof hook !== 'object' || hook === null || typeof hook[method] !== 'function')
    ) {
      throw new InvalidOptionError(key, `an object with a ${method}() method`, hook);
    }
  }
  return {
    serializer: o.serializer as Serializer | undefined,
    deserializer: o.deserializer as Deserializer | undefined,
  };
}

/** The port (both roles), and how the server's listening socket holds waiting connections. */
function resolveListening(
  o: Options,
): Pick<
  ResolvedQtOptions,
  'port' | 'removeStaleSocket' | 'maxPendingConnections' | 'listenBacklogSize'
> {
  return {
    port: integerOption(o, 'port', 0, 65535),
    removeStaleSocket: boolOption(o, 'removeStaleSocket'),
    maxPendingConnections: integerOption(o, 'maxPendingConnections', 1),
    listenBacklogSize: integerOption(o, 'listenBacklogSize', 1),
  };
}

/** The bounds on what one peer may cost: buffers, frame size and pace, connections. */
function resolveLimits(
  o: Options,
): Pick<
  ResolvedQtOptions,
  | 'readBufferSize'
  | 'maxFrameSize'
  | 'maxPacketValues'
  | 'incompleteFrameTimeout'
  | 'frameTimeout'
  | 'minFrameRate'
  | 'maxConnections'
  | 'idleTimeout'
  | 'maxSendBufferSize'
  | 'maxBufferedBytes'
> {
  const limits = {
    readBufferSize: integerOption(o, 'readBufferSize', 0),
    maxFrameSize: integerOption(o, 'maxFrameSize', 1, MAX_FRAME_LIMIT),
    maxPacketValues: integerOption(o, 'maxPacketValues', 1),
    incompleteFrameTimeout: msOption(o, 'incompleteFrameTimeout', 1),
    frameTimeout: msOption(o, 'frameTimeout', 0),
    minFrameRate: integerOption(o, 'minFrameRate', 1),
    maxConnections: integerOption(o, 'maxConnections', 0),
    idleTimeout: msOption(o, 'idleTimeout', 0),
    maxSendBufferSize: integerOption(o, 'maxSendBufferSize', 1),
  };
  return {
    ...limits,
    maxBufferedBytes: resolveMaxBufferedBytes(o.maxBufferedBytes, limits.maxFrameSize),
  };
}

/**
 * Server: the memory budget, or 0 for none. A budget must hold two frames of
 * `maxFrameSize`, so that the largest frame always fits beside the part kept for small
 * ones (an eighth, see wire/memory-budget.ts).
 *
 * The default is a quarter of the V8 heap limit. The buffers counted live outside the V8
 * heap, so the heap limit does not bound them; it is used as the measure of what memory
 * this process is meant to have: V8 derives it from the machine's memory (about a quarter
 * of it, at most about 4 GiB; Node uses a cgroup's limit when it is lower) and operators
 * set it with --max-old-space-size to fit their container. Every buffered frame also costs
 * heap once decoded (a JSON frame becomes a string at least as large), so the process may
 * reach heap limit + budget: a quarter keeps that at 1.25 times the heap limit, which fits
 * a container whose heap was set to three quarters of it, and leaves most of a machine free
 * with V8's own sizing (4144 MiB heap, 1036 MiB budget on a 24 GiB machine). A half would
 * not fit such a container.
 */
function resolveMaxBufferedBytes(value: unknown, maxFrameSize: number): number {
  const least = 2 * maxFrameSize;
  if (value === undefined) {
    return Math.max(Math.floor(getHeapStatistics().heap_size_limit / 4), least);
  }
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    (value !== 0 && value < least) ||
    value < 0 ||
    value > Number.MAX_SAFE_INTEGER
  ) {
    throw new InvalidOptionError(
      'maxBufferedBytes',
      `0 (no budget) or an integer of at least twice maxFrameSize (${least})`,
      value,
    );
  }
  return value;
}

/** Requests (codec, timeouts), connecting, and how a server starts and stops. */
function resolveRequests(
  o: Options,
): Pick<
  ResolvedQtOptions,
  'codec' | 'requestTimeout' | 'connectTimeout' | 'closeTimeout' | 'socketActivation'
> {
  return {
    codec: oneOf('codec', o.codec, ['json', 'cbor'] as const, DEFAULTS.codec),
    requestTimeout: msOption(o, 'requestTimeout', 0),
    connectTimeout: msOption(o, 'connectTimeout', 1),
    closeTimeout: msOption(o, 'closeTimeout', 0),
    socketActivation: boolOption(o, 'socketActivation'),
  };
}

/** Why this Node cannot listen with SO_REUSEPORT, or null when it can (QTcpServer's rule). */
export function reusePortProblem(
  version = process.versions.node,
  platform: string = process.platform,
): string | null {
  if (QTcpServer.supportsReusePort(version, platform)) return null;
  if (QTcpServer.supportsReusePort('24.0.0', platform)) {
    return `Node 22.12 or later (23.1 or later on 23) for SO_REUSEPORT; this is Node ${version}`;
  }
  return `a platform where Node has SO_REUSEPORT (Linux, FreeBSD, Solaris, AIX); this is ${platform}`;
}

/** Many processes and many replicas: reusePort (server), the client's endpoints and balancing. */
function resolveScaling(
  o: Options,
  role: 'server' | 'client',
  endpoint: Pick<ResolvedQtOptions, 'transport' | 'host'>,
): Pick<
  ResolvedQtOptions,
  'reusePort' | 'endpoints' | 'loadBalancing' | 'resolveInterval' | 'connectionsPerEndpoint'
> {
  const reusePort = boolOption(o, 'reusePort');
  if (reusePort && role === 'server') {
    if (endpoint.transport !== 'tcp') {
      throw new InvalidOptionError(
        'reusePort',
        "false with transport 'local' (a TCP option)",
        true,
      );
    }
    const problem = reusePortProblem();
    if (problem) throw new InvalidOptionError('reusePort', `false here: it needs ${problem}`, true);
  }
  let endpoints: QtEndpoint[] = [];
  if (o.endpoints !== undefined) {
    if (endpoint.transport !== 'tcp') {
      throw new InvalidOptionError('endpoints', "no value with transport 'local'", o.endpoints);
    }
    const list = o.endpoints;
    if (!Array.isArray(list) || list.length === 0) {
      throw new InvalidOptionError('endpoints', 'a non-empty array of { host, port }', list);
    }
    endpoints = list.map((e: unknown, i) => {
      const name = `endpoints[${i}]`;
      const entry = plainObject(name, e);
      onlyKeys(name, entry, { host: '', port: 0 });
      if (typeof entry.host !== 'string' || entry.host === '') {
        throw new InvalidOptionError(`${name}.host`, 'a non-empty string', entry.host);
      }
      return { host: entry.host, port: integer(`${name}.port`, entry.port ?? -1, 0, 1, 65535) };
    });
  } else if (endpoint.transport === 'tcp') {
    endpoints = [{ host: endpoint.host, port: integerOption(o, 'port', 0, 65535) }];
  }
  return {
    reusePort,
    endpoints,
    loadBalancing: oneOf(
      'loadBalancing',
      o.loadBalancing,
      ['first', 'round-robin', 'least-pending'] as const,
      DEFAULTS.loadBalancing,
    ),
    resolveInterval: msOption(o, 'resolveInterval', 0),
    connectionsPerEndpoint: integerOption(o, 'connectionsPerEndpoint', 1, 64),
  };
}

/** Client: acknowledged events, off unless given. */
function resolveAcknowledgedEvents(value: unknown): ResolvedQtOptions['acknowledgedEvents'] {
  if (value === undefined || value === false) return false;
  const d = DEFAULTS.acknowledgedEvents;
  if (value === true) return { ...d };
  if (!isObject(value)) {
    throw new InvalidOptionError(
      'acknowledgedEvents',
      'true, false or an object { maxUnacked, maxResends }',
      value,
    );
  }
  onlyKeys('acknowledgedEvents', value, d);
  return {
    maxUnacked: integer('acknowledgedEvents.maxUnacked', value.maxUnacked, d.maxUnacked, 1),
    maxResends: integer('acknowledgedEvents.maxResends', value.maxResends, d.maxResends, 0),
  };
}

/**
 * Validates options once, at construction, and fills in the defaults. A wrong option
 * throws InvalidOptionError naming the option and what it accepts.
 */
export function resolveQtOptions(
  input: QtTransportOptions | undefined,
  role: 'server' | 'client',
): ResolvedQtOptions {
  const o = knownOptions(input);
  // The options are checked in this order (the spreads below included): of several wrong
  // options, the first is the one reported.
  const endpoint = resolveEndpoint(o);
  const socketAccess = resolveSocketAccess(o.socketAccess);
  if (role === 'server') checkAccessReachable(endpoint, socketAccess);
  const trustedSocketOwners = resolveTrustedOwners(o.trustedSocketOwners);
  const socketOptions = resolveSocketOptions(o.socketOptions);
  const proxy = resolveProxy(o.proxy);
  const reconnect = resolveReconnect(o.reconnect);
  const hooks = resolveHooks(o);
  return {
    ...endpoint,
    ...resolveListening(o),
    socketAccess,
    trustedSocketOwners,
    socketOptions,
    proxy,
    ...resolveLimits(o),
    ...hooks,
    ...resolveRequests(o),
    ...resolveScaling(o, role, endpoint),
    reconnect,
    acknowledgedEvents: resolveAcknowledgedEvents(o.acknowledgedEvents),
    tls: resolveTlsOptions(o.tls, role, endpoint.transport, MAX_TIMER_MS),
  };
}
