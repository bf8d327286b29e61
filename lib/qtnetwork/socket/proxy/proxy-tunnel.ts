import type * as net from 'node:net';

import { errnoCode } from '../native-errors.js';
import { SocketError } from '../../kernel/socket-enums.js';

/** Where a tunnel should lead. */
export interface TunnelTarget {
  /** An IP address, or a host name the proxy resolves (already in ASCII form). */
  host: string;
  port: number;
}

/** The credentials to offer the proxy. */
export interface ProxyCredentials {
  user: string;
  password: string;
}

/** A proxy endpoint with its credentials. */
export interface ProxyEndpoint extends ProxyCredentials {
  host: string;
  port: number;
  /**
   * Headers to send with an HTTP CONNECT after the port's own (QNetworkProxy's raw
   * headers), in order, as Latin-1 strings (one character per byte). SOCKS5 ignores them.
   */
  headers?: ReadonlyArray<readonly [name: string, value: string]>;
}

/** An established tunnel: the socket to the proxy, now carrying the target's bytes. */
export interface Tunnel {
  socket: net.Socket;
  /** The address the proxy reports for its end (SOCKS5 BND.ADDR); undefined for HTTP. */
  boundAddress?: string;
  /** The port the proxy reports for its end (SOCKS5 BND.PORT); undefined for HTTP. */
  boundPort?: number;
  /** Bytes the proxy sent after its reply: the first of the target's data. */
  head: Buffer;
}

/**
 * Why a tunnel could not be made, as Qt reports it. `authentication` marks the failures
 * after which Qt emits proxyAuthenticationRequired and may try again with new credentials.
 */
export class ProxyTunnelError extends Error {
  constructor(
    readonly error: SocketError,
    readonly text: string,
    readonly authentication: 'none' | 'required' = 'none',
    readonly realm = '',
  ) {
    super(text);
    this.name = 'ProxyTunnelError';
  }
}

/**
 * Opens a tunnel to `target` through `proxy`, giving up after `timeoutMs` or when `signal`
 * aborts. Each engine (HTTP CONNECT, SOCKS5) is one of these, so that the socket picks one
 * by the proxy's type and calls it the same way.
 */
export type OpenTunnel = (
  proxy: ProxyEndpoint,
  target: TunnelTarget,
  timeoutMs: number,
  signal: AbortSignal,
) => Promise<Tunnel>;

/** Which of Qt's proxy engines reports a failure: QHttpSocketEngine or QSocks5SocketEngine. */
export type ProxyEngine = 'http' | 'socks5';

/** A failure of the TCP connection to the proxy itself, before any tunnel through it. */
export type ProxyConnectionFailure = 'refused' | 'notFound' | 'closed' | 'timedOut';

/** Qt's error for each failure, the same in both engines. */
const FAILURE_ERROR: Record<ProxyConnectionFailure, SocketError> = {
  refused: SocketError.ProxyConnectionRefusedError,
  notFound: SocketError.ProxyNotFoundError,
  closed: SocketError.ProxyConnectionClosedError,
  timedOut: SocketError.ProxyConnectionTimeoutError,
};

/** Qt's text for each failure: the two engines word the same failures differently. */
const FAILURE_TEXT: Record<ProxyEngine, Record<ProxyConnectionFailure, string>> = {
  http: {
    refused: 'Proxy connection refused',
    notFound: 'Proxy server not found',
    closed: 'Proxy connection closed prematurely',
    timedOut: 'Proxy server connection timed out',
  },
  socks5: {
    refused: 'Connection to proxy refused',
    notFound: 'Proxy host not found',
    closed: 'Connection to proxy closed prematurely',
    timedOut: 'Connection to proxy timed out',
  },
};

/** The failures Node's error codes stand for; any other code ends the connection too. */
const ERRNO_FAILURE = new Map<string, ProxyConnectionFailure>([
  ['ECONNREFUSED', 'refused'],
  ['ENOTFOUND', 'notFound'],
  ['EAI_AGAIN', 'notFound'],
  ['EAI_FAIL', 'notFound'],
  ['EAI_NONAME', 'notFound'],
  ['ETIMEDOUT', 'timedOut'],
  ['ECONNRESET', 'closed'],
  ['EPIPE', 'closed'],
]);

/** `failure` of the connection to the proxy, with Qt's error and `engine`'s text. */
export function proxyFailure(
  engine: ProxyEngine,
  failure: ProxyConnectionFailure,
): ProxyTunnelError {
  return new ProxyTunnelError(FAILURE_ERROR[failure], FAILURE_TEXT[engine][failure]);
}

/** Maps an error of the TCP connection to the proxy itself, with `engine`'s texts. */
export function proxyConnectionError(err: unknown, engine: ProxyEngine): ProxyTunnelError {
  const failure = ERRNO_FAILURE.get(errnoCode(err) ?? '');
  if (failure) return proxyFailure(engine, failure);
  // Qt has no word for the rest; the closed text keeps Node's reason beside it.
  return new ProxyTunnelError(
    SocketError.ProxyConnectionClosedError,
    `${FAILURE_TEXT[engine].closed} (${err instanceof Error ? err.message : String(err)})`,
  );
}

/** What a tunnel ends with when its opener aborts it (the socket was closed meanwhile). */
export function tunnelAborted(): ProxyTunnelError {
  return new ProxyTunnelError(SocketError.OperationError, 'Aborted');
}
