import * as http from 'node:http';
import * as net from 'node:net';

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
 * Qt's texts for the answers of an HTTP proxy (QHttpSocketEngine); those for the
 * connection to the proxy are in proxy-tunnel.ts.
 */
const TEXT = {
  denied: 'Proxy denied connection',
  communication: 'Error communicating with HTTP proxy',
  notHttp: 'Did not receive HTTP response from proxy',
  authParse: 'Error parsing authentication request from proxy',
  authRequired: 'Authentication required',
} as const;

/** The CONNECT target in authority form; IPv6 in brackets (RFC 3986), as Qt does not. */
export function connectAuthority(target: TunnelTarget): string {
  return net.isIPv6(target.host)
    ? `[${target.host}]:${target.port}`
    : `${target.host}:${target.port}`;
}

/** The realm of a Basic challenge, or null if the proxy offers no scheme the port speaks. */
function basicRealm(challenge: string | string[] | undefined): string | null {
  const values = Array.isArray(challenge) ? challenge : challenge ? [challenge] : [];
  for (const value of values) {
    const match = /^\s*Basic\b(?:.*?\brealm="([^"]*)")?/i.exec(value);
    if (match) return match[1] ?? '';
  }
  return null;
}

/** Maps the proxy's answer to CONNECT, as Qt does. */
function statusError(status: number, res: http.IncomingMessage): ProxyTunnelError {
  const E = SocketError;
  switch (status) {
    case 403:
    case 405:
      return new ProxyTunnelError(E.SocketAccessError, TEXT.denied);
    case 404:
      return new ProxyTunnelError(E.HostNotFoundError, 'Host not found');
    case 503:
      return new ProxyTunnelError(E.ConnectionRefusedError, 'Connection refused');
    case 407: {
      const realm = basicRealm(res.headers['proxy-authenticate']);
      if (realm === null) return new ProxyTunnelError(E.ProxyProtocolError, TEXT.authParse);
      return new ProxyTunnelError(
        E.ProxyAuthenticationRequiredError,
        TEXT.authRequired,
        'required',
        realm,
      );
    }
    default:
      return new ProxyTunnelError(E.ProxyProtocolError, TEXT.communication);
  }
}

/**
 * The CONNECT request's headers in Qt's order (QHttpSocketEngine): Proxy-Connection, Host,
 * a User-Agent unless the proxy's headers have one, the proxy's raw headers as they are
 * (a name Qt also writes is sent twice, as Qt does), then the credentials. Null if Node
 * refuses one of the proxy's headers (a name that is not an HTTP token, a value with a
 * control character such as a line break): Qt would write such bytes into the request.
 */
function connectHeaders(
  proxy: ProxyEndpoint,
  authority: string,
): Array<readonly [string, string]> | null {
  const own = proxy.headers ?? [];
  const out: Array<readonly [string, string]> = [
    ['Proxy-Connection', 'keep-alive'],
    ['Host', authority],
  ];
  if (!own.some(([name]) => name.toLowerCase() === 'user-agent')) {
    out.push(['User-Agent', 'Mozilla/5.0']);
  }
  for (const [name, value] of own) {
    try {
      http.validateHeaderName(name);
      http.validateHeaderValue(name, value);
    } catch {
      return null;
    }
    out.push([name, value]);
  }
  if (proxy.user || proxy.password) {
    const token = Buffer.from(`${proxy.user}:${proxy.password}`, 'latin1').toString('base64');
    out.push(['Proxy-Authorization', `Basic ${token}`]);
  }
  return out;
}

/**
 * Opens an HTTP CONNECT tunnel to `target` through `proxy` with Node's own HTTP client.
 * Credentials, when set, are sent as Basic authorization with the first request (Qt waits
 * for a 407 first); a 407 is reported for proxyAuthenticationRequired with its realm.
 * A proxy header Node refuses to write fails the attempt before anything is sent
 * (ProxyProtocolError, "Error communicating with HTTP proxy").
 */
export const openHttpTunnel: OpenTunnel = (proxy, target, timeoutMs, signal) =>
  new Promise((resolve, reject) => {
    if (proxy.host === '') {
      reject(proxyFailure('http', 'notFound'));
      return;
    }
    const authority = connectAuthority(target);
    const headers = connectHeaders(proxy, authority);
    if (!headers) {
      reject(new ProxyTunnelError(SocketError.ProxyProtocolError, TEXT.communication));
      return;
    }
    let settled = false;
    const finish = (result: Tunnel | ProxyTunnelError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (result instanceof ProxyTunnelError) reject(result);
      else resolve(result);
    };
    const req = http.request({
      host: proxy.host,
      port: proxy.port,
      method: 'CONNECT',
      path: authority,
      agent: false,
      setHost: false,
      // Qt accepts bare LF line endings in the proxy's answer; so does this parser.
      insecureHTTPParser: true,
    });
    // No "Connection: close" of Node's own (Qt sends none); appended one by one so that
    // the order is kept (a name given twice is sent twice, on adjacent lines).
    req.removeHeader('Connection');
    for (const [name, value] of headers) req.appendHeader(name, value);
    const onAbort = (): void => {
      req.destroy();
      finish(tunnelAborted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => {
      req.destroy();
      finish(proxyFailure('http', 'timedOut'));
    }, timeoutMs);
    req.on('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        socket.destroy();
        finish(statusError(status, res));
        return;
      }
      finish({ socket, head });
    });
    req.on('response', (res: http.IncomingMessage) => {
      // Not expected for CONNECT, but never leave a request hanging.
      res.resume();
      finish(statusError(res.statusCode ?? 0, res));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (typeof err.code === 'string' && err.code.startsWith('HPE_')) {
        finish(new ProxyTunnelError(SocketError.ProxyProtocolError, TEXT.notHttp));
      } else if (err.code === 'ECONNRESET' && /hang up/.test(err.message)) {
        finish(proxyFailure('http', 'closed'));
      } else {
        finish(proxyConnectionError(err, 'http'));
      }
    });
    req.end();
  });
