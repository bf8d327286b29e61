import type { Deserializer, Serializer } from '@nestjs/microservices';

import type { CodecName } from './wire/codec.js';
import { InvalidOptionError } from './wire/errors.js';
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

/** Options of ServerQt and ClientQt (see API.md; unmarked ones apply to both). */
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

/** Options with every default filled in. */
export interface ResolvedQtOptions {
  transport: 'tcp' | 'local';
  host: string;
  port: number;
  name: string;
  socketAccess: Array<'user' | 'group' | 'other' | 'world'>;
  removeStaleSocket: boolean;
  maxPendingConnections: number;
  listenBacklogSize: number;
  socketOptions: Required<Pick<QtSocketOptions, 'lowDelay' | 'keepAlive'>> & QtSocketOptions;
  readBufferSize: number;
  proxy: QtProxyOptions;
  maxFrameSize: number;
  incompleteFrameTimeout: number;
  frameTimeout: number;
  minFrameRate: number;
  maxConnections: number;
  idleTimeout: number;
  maxSendBufferSize: number;
  codec: CodecName;
  serializer?: Serializer;
  deserializer?: Deserializer;
  requestTimeout: number;
  connectTimeout: number;
  reconnect: Required<QtReconnectOptions> | false;
  closeTimeout: number;
  socketActivation: boolean;
  acknowledgedEvents: Required<QtAcknowledgedEventsOptions> | false;
  tls: ResolvedTlsOptions | null;
}

const MiB = 1024 * 1024;
/** Node's timers hold at most 2^31 - 1 ms; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_FRAME_LIMIT = 0xfffffffe;

const DEFAULTS = {
  transport: 'tcp',
  host: '127.0.0.1',
  port: 3000,
  removeStaleSocket: true,
  maxPendingConnections: 30,
  listenBacklogSize: 50,
  readBufferSize: 0,
  maxFrameSize: 64 * MiB,
  incompleteFrameTimeout: 30000,
  frameTimeout: 30000,
  minFrameRate: 65536,
  maxConnections: 1000,
  idleTimeout: 0,
  maxSendBufferSize: 128 * MiB,
  codec: 'json',
  requestTimeout: 0,
  connectTimeout: 5000,
  closeTimeout: 10000,
  reconnect: { retries: 10, initialDelay: 100, maxDelay: 5000 },
} as const;

const KNOWN = new Set<string>([
  'transport',
  'host',
  'port',
  'name',
  'socketAccess',
  'removeStaleSocket',
  'maxPendingConnections',
  'listenBacklogSize',
  'socketOptions',
  'readBufferSize',
  'proxy',
  'maxFrameSize',
  'incompleteFrameTimeout',
  'frameTimeout',
  'minFrameRate',
  'maxConnections',
  'idleTimeout',
  'maxSendBufferSize',
  'codec',
  'serializer',
  'deserializer',
  'requestTimeout',
  'connectTimeout',
  'reconnect',
  'closeTimeout',
  'socketActivation',
  'acknowledgedEvents',
  'tls',
]);

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

function oneOf<T extends string>(
  name: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidOptionError(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, 'true or false', value);
  return value;
}

function plainObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(name, 'an object', value);
  }
  return value as Record<string, unknown>;
}

function onlyKeys(name: string, value: Record<string, unknown>, keys: string[]): void {
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) {
      throw new InvalidOptionError(`${name}.${key}`, `one of the keys ${keys.join(', ')}`, key);
    }
  }
}

function acknowledgedEvents(value: unknown): Required<QtAcknowledgedEventsOptions> | false {
  if (value === undefined || value === false) return false;
  if (value === true) return { maxUnacked: 10000, maxResends: 5 };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(
      'acknowledgedEvents',
      'true, false or an object { maxUnacked, maxResends }',
      value,
    );
  }
  const v = value as Record<string, unknown>;
  onlyKeys('acknowledgedEvents', v, ['maxUnacked', 'maxResends']);
  return {
    maxUnacked: integer('acknowledgedEvents.maxUnacked', v.maxUnacked, 10000, 1),
    maxResends: integer('acknowledgedEvents.maxResends', v.maxResends, 5, 0),
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
  const o = input === undefined ? {} : plainObject('options', input);
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) {
      throw new InvalidOptionError(key, `a known option (${[...KNOWN].join(', ')})`, o[key]);
    }
  }
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
  const socketAccessValue = o.socketAccess ?? ['user'];
  const accessAllowed = ['user', 'group', 'other', 'world'] as const;
  if (
    !Array.isArray(socketAccessValue) ||
    socketAccessValue.some((v) => !(accessAllowed as readonly string[]).includes(v as string))
  ) {
    throw new InvalidOptionError(
      'socketAccess',
      "an array of 'user', 'group', 'other', 'world'",
      o.socketAccess,
    );
  }
  const socketOptionsInput =
    o.socketOptions === undefined ? {} : plainObject('socketOptions', o.socketOptions);
  onlyKeys('socketOptions', socketOptionsInput, [
    'lowDelay',
    'keepAlive',
    'keepAliveIdle',
    'sendBufferSize',
    'receiveBufferSize',
    'typeOfService',
  ]);
  const keepAliveIdle =
    socketOptionsInput.keepAliveIdle === undefined
      ? undefined
      : integer(
          'socketOptions.keepAliveIdle',
          socketOptionsInput.keepAliveIdle,
          0,
          1000,
          MAX_TIMER_MS,
        );
  if (keepAliveIdle !== undefined && socketOptionsInput.keepAlive === false) {
    throw new InvalidOptionError(
      'socketOptions.keepAliveIdle',
      'no value when socketOptions.keepAlive is false',
      keepAliveIdle,
    );
  }
  const socketOptions = {
    lowDelay: bool('socketOptions.lowDelay', socketOptionsInput.lowDelay, true),
    keepAlive: bool(
      'socketOptions.keepAlive',
      socketOptionsInput.keepAlive,
      keepAliveIdle !== undefined,
    ),
    keepAliveIdle,
    sendBufferSize:
      socketOptionsInput.sendBufferSize === undefined
        ? undefined
        : integer('socketOptions.sendBufferSize', socketOptionsInput.sendBufferSize, 0, 1),
    receiveBufferSize:
      socketOptionsInput.receiveBufferSize === undefined
        ? undefined
        : integer('socketOptions.receiveBufferSize', socketOptionsInput.receiveBufferSize, 0, 1),
    typeOfService:
      socketOptionsInput.typeOfService === undefined
        ? undefined
        : integer('socketOptions.typeOfService', socketOptionsInput.typeOfService, 0, 0, 255),
  };
  const proxyInput = o.proxy === undefined ? { type: 'default' } : plainObject('proxy', o.proxy);
  onlyKeys('proxy', proxyInput, ['type', 'hostName', 'port', 'user', 'password']);
  const proxyType = oneOf(
    'proxy.type',
    proxyInput.type,
    ['socks5', 'http', 'none', 'default'] as const,
    'default',
  );
  if (proxyType === 'socks5' || proxyType === 'http') {
    if (typeof proxyInput.hostName !== 'string' || proxyInput.hostName === '') {
      throw new InvalidOptionError('proxy.hostName', 'a non-empty string', proxyInput.hostName);
    }
    integer('proxy.port', proxyInput.port ?? -1, 0, 1, 65535);
  }
  for (const key of ['user', 'password'] as const) {
    if (proxyInput[key] !== undefined && typeof proxyInput[key] !== 'string') {
      throw new InvalidOptionError(`proxy.${key}`, 'a string', proxyInput[key]);
    }
  }
  let reconnect: Required<QtReconnectOptions> | false;
  if (o.reconnect === false) {
    reconnect = false;
  } else {
    if (
      o.reconnect !== undefined &&
      (typeof o.reconnect !== 'object' || o.reconnect === null || Array.isArray(o.reconnect))
    ) {
      throw new InvalidOptionError(
        'reconnect',
        'false or an object { retries, initialDelay, maxDelay }',
        o.reconnect,
      );
    }
    const r = (o.reconnect ?? {}) as Record<string, unknown>;
    onlyKeys('reconnect', r, ['retries', 'initialDelay', 'maxDelay']);
    reconnect = {
      retries: integer('reconnect.retries', r.retries, DEFAULTS.reconnect.retries, 0),
      initialDelay: integer(
        'reconnect.initialDelay',
        r.initialDelay,
        DEFAULTS.reconnect.initialDelay,
        1,
        MAX_TIMER_MS,
      ),
      maxDelay: integer(
        'reconnect.maxDelay',
        r.maxDelay,
        DEFAULTS.reconnect.maxDelay,
        1,
        MAX_TIMER_MS,
      ),
    };
  }
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
    transport,
    host: (o.host as string | undefined) ?? DEFAULTS.host,
    port: integer('port', o.port, DEFAULTS.port, 0, 65535),
    name: (o.name as string | undefined) ?? '',
    socketAccess: [...(socketAccessValue as Array<'user' | 'group' | 'other' | 'world'>)],
    removeStaleSocket: bool('removeStaleSocket', o.removeStaleSocket, DEFAULTS.removeStaleSocket),
    maxPendingConnections: integer(
      'maxPendingConnections',
      o.maxPendingConnections,
      DEFAULTS.maxPendingConnections,
      1,
    ),
    listenBacklogSize: integer(
      'listenBacklogSize',
      o.listenBacklogSize,
      DEFAULTS.listenBacklogSize,
      1,
    ),
    socketOptions,
    readBufferSize: integer('readBufferSize', o.readBufferSize, DEFAULTS.readBufferSize, 0),
    proxy: {
      type: proxyType,
      hostName: proxyInput.hostName as string | undefined,
      port: proxyInput.port as number | undefined,
      user: proxyInput.user as string | undefined,
      password: proxyInput.password as string | undefined,
    },
    maxFrameSize: integer(
      'maxFrameSize',
      o.maxFrameSize,
      DEFAULTS.maxFrameSize,
      1,
      MAX_FRAME_LIMIT,
    ),
    incompleteFrameTimeout: integer(
      'incompleteFrameTimeout',
      o.incompleteFrameTimeout,
      DEFAULTS.incompleteFrameTimeout,
      1,
      MAX_TIMER_MS,
    ),
    frameTimeout: integer('frameTimeout', o.frameTimeout, DEFAULTS.frameTimeout, 0, MAX_TIMER_MS),
    minFrameRate: integer('minFrameRate', o.minFrameRate, DEFAULTS.minFrameRate, 1),
    maxConnections: integer('maxConnections', o.maxConnections, DEFAULTS.maxConnections, 0),
    idleTimeout: integer('idleTimeout', o.idleTimeout, DEFAULTS.idleTimeout, 0, MAX_TIMER_MS),
    maxSendBufferSize: integer(
      'maxSendBufferSize',
      o.maxSendBufferSize,
      DEFAULTS.maxSendBufferSize,
      1,
    ),
    codec: oneOf('codec', o.codec, ['json', 'cbor'] as const, DEFAULTS.codec),
    serializer: o.serializer as Serializer | undefined,
    deserializer: o.deserializer as Deserializer | undefined,
    requestTimeout: integer(
      'requestTimeout',
      o.requestTimeout,
      DEFAULTS.requestTimeout,
      0,
      MAX_TIMER_MS,
    ),
    connectTimeout: integer(
      'connectTimeout',
      o.connectTimeout,
      DEFAULTS.connectTimeout,
      1,
      MAX_TIMER_MS,
    ),
    reconnect,
    closeTimeout: integer('closeTimeout', o.closeTimeout, DEFAULTS.closeTimeout, 0, MAX_TIMER_MS),
    socketActivation: bool('socketActivation', o.socketActivation, false),
    acknowledgedEvents: acknowledgedEvents(o.acknowledgedEvents),
    tls: resolveTlsOptions(o.tls, role, transport, MAX_TIMER_MS),
  };
}
