import { QAuthenticator } from '../kernel/qauthenticator.js';
import { ProxyCapability, ProxyType, QNetworkProxy } from '../kernel/qnetwork-proxy.js';
import { QNetworkProxyFactory } from '../kernel/qnetwork-proxy-factory.js';
import { QNetworkProxyQuery, QueryType } from '../kernel/qnetwork-proxy-query.js';
import { SocketError, SocketState } from '../kernel/socket-enums.js';
import { ErrorText } from './native-errors.js';
import { openHttpTunnel } from './proxy/http-connect-tunnel.js';
import { ProxyTunnelError, type Tunnel } from './proxy/proxy-tunnel.js';
import { openSocks5Tunnel } from './proxy/socks5-tunnel.js';
import type { SocketEngineHost } from './socket-engine.js';

/**
 * Which proxy a TCP connection to `host`:`port` uses, in Qt's order: `socketProxy` (the
 * socket's own) unless it is DefaultProxy; otherwise the application's setting (application
 * proxy, factory or system configuration; never for localhost or loopback addresses). The
 * first candidate that can tunnel wins, as a copy; null if none can.
 */
export function resolveProxy(
  socketProxy: QNetworkProxy,
  host: string,
  port: number,
): QNetworkProxy | null {
  const candidates =
    socketProxy.type() !== ProxyType.DefaultProxy
      ? [socketProxy]
      : QNetworkProxyFactory.proxyForQuery(
          new QNetworkProxyQuery(host, port, '', QueryType.TcpSocket),
        );
  const usable = candidates.find((p) => p.capabilities() & ProxyCapability.TunnelingCapability);
  if (!usable || usable.type() === ProxyType.DefaultProxy) return null;
  return QNetworkProxy.from(usable);
}

/**
 * One connection made through a proxy (the part Qt's SOCKS5 and HTTP socket engines play):
 * opens a tunnel to the target, SOCKS5 or HTTP CONNECT, and when the proxy asks for
 * credentials emits proxyAuthenticationRequired and tries again with what a slot set. A
 * tunnel that is up goes to `onTunnel`; a failure ends the connect attempt.
 */
export class ProxyConnect {
  /** Cancels the tunnel being opened. */
  private abort: AbortController | null = null;

  constructor(
    private readonly proxy: QNetworkProxy,
    private readonly host: SocketEngineHost,
    private readonly timeoutMs: number,
    private readonly onTunnel: (tunnel: Tunnel, target: string) => void,
  ) {}

  /** True when the proxy resolves host names, so that the socket looks none up. */
  resolvesNames(): boolean {
    return (this.proxy.capabilities() & ProxyCapability.HostNameLookupCapability) !== 0;
  }

  /** Opens a tunnel to `target` (an address or a name the proxy resolves) on `port`. */
  open(target: string, port: number): void {
    const proxy = this.proxy;
    const generation = this.host.generation();
    // A tunnel that comes after a reset or a new attempt belongs to nobody.
    const stillWanted = (): boolean =>
      generation === this.host.generation() &&
      this.host.socket.state() === SocketState.ConnectingState;
    const abort = new AbortController();
    this.abort = abort;
    const endpoint = {
      host: proxy.hostName(),
      port: proxy.port(),
      user: proxy.user(),
      password: proxy.password(),
      headers: proxy
        .rawHeaderList()
        .map(
          (name) => [name.toString('latin1'), proxy.rawHeader(name).toString('latin1')] as const,
        ),
    };
    const openTunnel = proxy.type() === ProxyType.Socks5Proxy ? openSocks5Tunnel : openHttpTunnel;
    openTunnel(endpoint, { host: target, port }, this.timeoutMs, abort.signal).then(
      (tunnel) => {
        if (!stillWanted()) {
          tunnel.socket.destroy();
          return;
        }
        this.abort = null;
        this.onTunnel(tunnel, target);
      },
      (err: unknown) => {
        if (!stillWanted()) return;
        this.abort = null;
        this.failed(err, target, port);
      },
    );
  }

  /** Abandons the tunnel being opened, if any. */
  cancel(): void {
    this.abort?.abort();
    this.abort = null;
  }

  private failed(err: unknown, target: string, port: number): void {
    const failure =
      err instanceof ProxyTunnelError
        ? err
        : new ProxyTunnelError(SocketError.UnknownSocketError, ErrorText.Unknown);
    if (failure.authentication === 'required') {
      const authenticator = new QAuthenticator();
      authenticator.setRealmFromChallenge(failure.realm);
      const generation = this.host.generation();
      this.host.socket.proxyAuthenticationRequired.emit(
        QNetworkProxy.from(this.proxy),
        authenticator,
      );
      if (
        generation !== this.host.generation() ||
        this.host.socket.state() !== SocketState.ConnectingState
      ) {
        return;
      }
      if (authenticator.user() !== '' || authenticator.password() !== '') {
        this.proxy.setUser(authenticator.user());
        this.proxy.setPassword(authenticator.password());
        this.open(target, port);
        return;
      }
    }
    this.host.failConnect(failure.error, failure.text);
  }
}
