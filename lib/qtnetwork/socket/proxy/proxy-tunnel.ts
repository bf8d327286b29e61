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

/** Maps an error of the TCP connection to the proxy itself, with the engine's own texts. */
export function proxyConnectionError(
  err: unknown,
  texts: { refused: string; notFound: string; closed: string; timedOut: string },
): ProxyTunnelError {
  switch (errnoCode(err)) {
    case 'ECONNREFUSED':
      return new ProxyTunnelError(SocketError.ProxyConnectionRefusedError, texts.refused);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return new ProxyTunnelError(SocketError.ProxyNotFoundError, texts.notFound);
    case 'ETIMEDOUT':
      return new ProxyTunnelError(SocketError.ProxyConnectionTimeoutError, texts.timedOut);
    case 'ECONNRESET':
    case 'EPIPE':
      return new ProxyTunnelError(SocketError.ProxyConnectionClosedError, texts.closed);
    default:
      return new ProxyTunnelError(
        SocketError.ProxyConnectionClosedError,
        `${texts.closed} (${err instanceof Error ? err.message : String(err)})`,
      );
  }
}
