import * as net from 'node:net';

import { SocksClient, type SocksProxy } from 'socks';

import {
  ProxyTunnelError,
  proxyConnectionError,
  proxyFailure,
  tunnelAborted,
  type OpenTunnel,
  type ProxyEndpoint,
  type Tunnel,
  type TunnelTarget,
} from './proxy-tunnel.js';
import { SocketError } from '../../kernel/socket-enums.js';

/**
 * Qt's texts for what a SOCKS5 proxy answers (QSocks5SocketEngine); those for the
 * connection to the proxy are in proxy-tunnel.ts.
 */
const TEXT = {
  protocol: 'SOCKS version 5 protocol error',
  authFailed: 'Proxy authentication failed',
  authMethod: 'Proxy authentication failed: Socks5 host did not support authentication method.',
} as const;

/**
 * SOCKS5 reply codes (RFC 1928 REP) as Qt maps them. For 01 and 02 Qt reports "Host not
 * found" when the target was sent as a name, since the proxy could not resolve it.
 */
function replyError(name: string, targetIsName: boolean): ProxyTunnelError {
  const E = SocketError;
  switch (name) {
    case 'Failure':
      return targetIsName
        ? new ProxyTunnelError(E.HostNotFoundError, 'Host not found')
        : new ProxyTunnelError(E.NetworkError, 'General SOCKSv5 server failure');
    case 'NotAllowed':
      return targetIsName
        ? new ProxyTunnelError(E.HostNotFoundError, 'Host not found')
        : new ProxyTunnelError(E.SocketAccessError, 'Connection not allowed by SOCKSv5 server');
    case 'NetworkUnreachable':
      return new ProxyTunnelError(E.NetworkError, 'Network unreachable');
    case 'HostUnreachable':
      return new ProxyTunnelError(E.HostNotFoundError, 'Host not found');
    case 'ConnectionRefused':
      return new ProxyTunnelError(E.ConnectionRefusedError, 'Connection refused');
    case 'TTLExpired':
      return new ProxyTunnelError(E.NetworkError, 'TTL expired');
    case 'CommandNotSupported':
      return new ProxyTunnelError(
        E.UnsupportedSocketOperationError,
        'SOCKSv5 command not supported',
      );
    case 'AddressNotSupported':
      return new ProxyTunnelError(E.UnsupportedSocketOperationError, 'Address type not supported');
    case 'Granted':
      // "Rejected" with code 00: the reply's version byte was not 5.
      return new ProxyTunnelError(E.ProxyProtocolError, TEXT.protocol);
    default:
      return new ProxyTunnelError(E.UnknownSocketError, 'Unknown SOCKSv5 proxy error code');
  }
}

/**
 * Maps the `socks` library's failure (it reports them as messages) to Qt's error. The
 * library's message texts are part of its API (its `ERRORS` table).
 */
function mapSocksError(err: unknown, targetIsName: boolean): ProxyTunnelError {
  const message = err instanceof Error ? err.message : String(err);
  const rejected = /^Socks5 proxy rejected connection - (.*)$/.exec(message);
  if (rejected) return replyError(rejected[1], targetIsName);
  const E = SocketError;
  switch (message) {
    case 'Socket closed':
      return proxyFailure('socks5', 'closed');
    case 'Proxy connection timed out':
      return proxyFailure('socks5', 'timedOut');
    case 'Received invalid Socks5 initial handshake (no accepted authentication type)':
    case 'Socks5 Authentication failed':
      return new ProxyTunnelError(E.ProxyAuthenticationRequiredError, TEXT.authFailed, 'required');
    case 'Received invalid Socks5 initial handshake (unknown authentication type)':
      return new ProxyTunnelError(E.SocketAccessError, TEXT.authMethod);
    case 'Received invalid Socks5 initial handshake (invalid socks version)':
    case 'Received invalid Socks5 initial handshake response':
    case 'Received invalid Socks5 final handshake response':
      return new ProxyTunnelError(E.ProxyProtocolError, TEXT.protocol);
    default:
      // An error of the socket itself during the handshake (reset, broken pipe, ...).
      return proxyFailure('socks5', 'closed');
  }
}

/**
 * Checks what the `socks` library lets through but Qt rejects, from the bytes the proxy
 * sent: a method the client did not offer (Qt: SocketAccessError), and a request reply
 * whose version is not 5 or whose reserved byte is not 0 (Qt: ProxyProtocolError). The
 * library does not expose these bytes, hence this check over a copy of them.
 */
function qtReplyCheck(received: Buffer, offeredUserPass: boolean): ProxyTunnelError | null {
  if (received.length < 2) return null;
  if (received[0] !== 0x05)
    return new ProxyTunnelError(SocketError.ProxyProtocolError, TEXT.protocol);
  const method = received[1];
  if (method === 0x02 && !offeredUserPass) {
    return new ProxyTunnelError(SocketError.SocketAccessError, TEXT.authMethod);
  }
  const reply = method === 0x02 ? 4 : 2;
  if (received.length >= reply + 3 && (received[reply] !== 0x05 || received[reply + 2] !== 0x00)) {
    return new ProxyTunnelError(SocketError.ProxyProtocolError, TEXT.protocol);
  }
  return null;
}

/**
 * Records the first bytes a socket receives (enough for the SOCKS5 handshake replies).
 * A method the client did not offer ends the handshake before the library answers it
 * (Qt sends nothing more then).
 */
function tapHandshake(sock: net.Socket, offeredUserPass: boolean): () => Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  const tap = (chunk: Buffer): void => {
    if (total < 600) {
      chunks.push(chunk);
      total += chunk.length;
    }
    const first = chunks[0];
    const method = first.length >= 2 ? first[1] : chunks.length > 1 ? chunks[1][0] : -1;
    if (method === 0x02 && !offeredUserPass) sock.destroy();
  };
  sock.prependListener('data', tap);
  return () => {
    sock.removeListener('data', tap);
    return Buffer.concat(chunks);
  };
}

/** The `socks` library's description of the proxy (SOCKS5, credentials if any). */
function socksProxy(proxy: ProxyEndpoint): SocksProxy {
  return {
    host: proxy.host,
    port: proxy.port,
    type: 5,
    userId: proxy.user || undefined,
    password: proxy.password || undefined,
  };
}

/** Opens the TCP connection to the proxy, mapping its failures to Qt's proxy errors. */
function connectToProxy(proxy: ProxyEndpoint, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (proxy.host === '') {
      reject(proxyFailure('socks5', 'notFound'));
      return;
    }
    const sock = net.connect({ host: proxy.host, port: proxy.port });
    const onAbort = (): void => {
      sock.destroy();
      reject(tunnelAborted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    sock.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      sock.destroy();
      reject(proxyConnectionError(err, 'socks5'));
    });
  });
}

/**
 * Opens a SOCKS5 tunnel (CONNECT) to `target` through `proxy`. The handshake itself is the
 * `socks` library's; this module connects to the proxy first (so that a proxy that cannot
 * be reached is told apart from one that refuses the target) and maps every failure to
 * Qt's error and text. Offers no-auth, and username/password when credentials are set
 * (Qt offers only the one method; see docs/qt-differences.md).
 */
export const openSocks5Tunnel: OpenTunnel = async (proxy, target, timeoutMs, signal) => {
  const sock = await connectToProxy(proxy, signal);
  const targetIsName = net.isIP(target.host) === 0;
  const onAbort = (): void => {
    sock.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  const offeredUserPass = proxy.user !== '' || proxy.password !== '';
  const handshakeBytes = tapHandshake(sock, offeredUserPass);
  try {
    const info = await SocksClient.createConnection({
      proxy: socksProxy(proxy),
      command: 'connect',
      destination: { host: target.host, port: target.port },
      existing_socket: sock,
      timeout: timeoutMs,
    });
    if (signal.aborted) throw tunnelAborted();
    const rejected = qtReplyCheck(handshakeBytes(), offeredUserPass);
    if (rejected) throw rejected;
    // The library rewrites a reported 0.0.0.0 to the proxy's configured IP address (which is
    // not set here, leaving no host): Qt reports what the proxy said, so restore it.
    const bound = info.remoteHost?.host;
    return {
      socket: info.socket as net.Socket,
      boundAddress: bound === undefined || bound === '' ? '0.0.0.0' : bound,
      boundPort: info.remoteHost?.port ?? 0,
      head: Buffer.alloc(0),
    };
  } catch (err) {
    sock.destroy();
    if (err instanceof ProxyTunnelError) throw err;
    throw qtReplyCheck(handshakeBytes(), offeredUserPass) ?? mapSocksError(err, targetIsName);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
};

/** A SOCKS5 BIND in progress: the proxy's listening address, then the one connection. */
export interface Socks5Bind {
  /** BND.ADDR/BND.PORT of the first reply: where the proxy listens for the peer. */
  bound: Promise<{ host: string; port: number }>;
  /** The peer's connection (its address from the second reply), carried on the control socket. */
  established: Promise<Tunnel & { peerHost: string; peerPort: number }>;
  /** Abandons the BIND. */
  cancel(): void;
}

/**
 * Asks a SOCKS5 proxy to listen for one connection (BIND). The handshake is the `socks`
 * library's; failures are mapped to Qt's errors as for CONNECT.
 */
export function openSocks5Bind(
  proxy: ProxyEndpoint,
  bindAddress: TunnelTarget,
  timeoutMs: number,
): Socks5Bind {
  const abort = new AbortController();
  let socket: net.Socket | null = null;
  let resolveBound!: (v: { host: string; port: number }) => void;
  let rejectBound!: (e: unknown) => void;
  let resolveEstablished!: (v: Tunnel & { peerHost: string; peerPort: number }) => void;
  let rejectEstablished!: (e: unknown) => void;
  const bound = new Promise<{ host: string; port: number }>((res, rej) => {
    resolveBound = res;
    rejectBound = rej;
  });
  const established = new Promise<Tunnel & { peerHost: string; peerPort: number }>((res, rej) => {
    resolveEstablished = res;
    rejectEstablished = rej;
  });
  // Whoever does not wait for one of them must not see an unhandled rejection.
  established.catch(() => undefined);
  const fail = (err: unknown): void => {
    const mapped = err instanceof ProxyTunnelError ? err : mapSocksError(err, false);
    socket?.destroy();
    rejectBound(mapped);
    rejectEstablished(mapped);
  };
  connectToProxy(proxy, abort.signal).then((sock) => {
    socket = sock;
    const client = new SocksClient({
      proxy: socksProxy(proxy),
      command: 'bind',
      destination: bindAddress,
      timeout: timeoutMs,
    });
    client.once('error', fail);
    client.once('bound', (info: { remoteHost?: { host?: string; port?: number } }) => {
      const host = info.remoteHost?.host;
      resolveBound({
        host: host === undefined || host === '' ? '0.0.0.0' : host,
        port: info.remoteHost?.port ?? 0,
      });
    });
    client.once(
      'established',
      (info: { socket: net.Socket; remoteHost?: { host?: string; port?: number } }) => {
        resolveEstablished({
          socket: info.socket,
          head: Buffer.alloc(0),
          peerHost: info.remoteHost?.host ?? '',
          peerPort: info.remoteHost?.port ?? 0,
        });
      },
    );
    client.connect(sock);
  }, fail);
  return {
    bound,
    established,
    cancel: () => {
      abort.abort();
      socket?.destroy();
    },
  };
}
