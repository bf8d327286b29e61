import { globalNetworkProxy } from './global-network-proxy.js';
import { QHostAddress } from './qhost-address.js';
import { qWarning } from '../core/qlogging.js';
import { ProxyType, QNetworkProxy } from './qnetwork-proxy.js';
import { QNetworkProxyQuery, QueryType } from './qnetwork-proxy-query.js';

/** True for the hosts Qt never sends through an application-level proxy. */
function isLocalHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.startsWith('localhost.')) return true;
  const address = new QHostAddress(h);
  return !address.isNull() && address.isLoopback();
}

/** Reads an environment variable by its lower-case name, then its upper-case one. */
function env(name: string): string {
  return process.env[name] || process.env[name.toUpperCase()] || '';
}

/**
 * True if `no_proxy` says `host` (and `port`) must be reached directly. Entries are
 * separated by commas; `*` matches everything; an entry matches the host itself and its
 * subdomains (a leading `.` or `*.` changes nothing); an entry `host:port` matches that
 * port only. Case does not matter.
 */
function bypassedByNoProxy(host: string, port: number): boolean {
  const list = env('no_proxy');
  if (!list) return false;
  const h = host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
  const hostAddress = new QHostAddress(h);
  for (const raw of list.split(',')) {
    let entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    let entryPort = -1;
    const portMatch = /^(.*[^:\]]|\[.*\]):(\d+)$/.exec(entry);
    if (portMatch && !/^[0-9a-f:]+$/.test(entry)) {
      entry = portMatch[1];
      entryPort = Number(portMatch[2]);
    }
    entry = entry
      .replace(/^\*/, '')
      .replace(/^\./, '')
      .replace(/\.$/, '')
      .replace(/^\[(.*)\]$/, '$1');
    if (entryPort >= 0 && entryPort !== port) continue;
    const entryAddress = new QHostAddress(entry);
    if (!entryAddress.isNull()) {
      // An address matches only itself, never as a suffix of another address.
      if (!hostAddress.isNull() && hostAddress.isEqual(entryAddress)) return true;
      continue;
    }
    if (h === entry || h.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** Parses a proxy URL from the environment; null when it names no proxy the port speaks. */
function parseProxyUrl(value: string, queryType: QueryType): QNetworkProxy | null {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const port = url.port ? Number(url.port) : 0;
  switch (url.protocol) {
    case 'socks5:':
    case 'socks5h:':
      return new QNetworkProxy(ProxyType.Socks5Proxy, host, port || 1080, user, password);
    case 'http:':
      // An HTTP proxy cannot listen or carry datagrams.
      if (queryType === QueryType.TcpServer || queryType === QueryType.UdpSocket) return null;
      return new QNetworkProxy(ProxyType.HttpProxy, host, port || 8080, user, password);
    default:
      return null;
  }
}

/**
 * Decides which proxies to use for a connection (Qt's QNetworkProxyFactory). Subclass it
 * and install it with `setApplicationProxyFactory`, or use the system configuration
 * (environment variables) with `setUseSystemConfiguration(true)`.
 */
export abstract class QNetworkProxyFactory {
  /** The proxies to try for `query`, in order; an empty list means a direct connection. */
  abstract queryProxy(query: QNetworkProxyQuery): QNetworkProxy[];

  /**
   * Installs `factory` for the whole application (null removes it). Replaces the
   * application proxy and the system configuration, as in Qt.
   */
  static setApplicationProxyFactory(factory: QNetworkProxyFactory | null): void {
    if (factory === globalNetworkProxy.factory) return;
    globalNetworkProxy.applicationProxy = null;
    globalNetworkProxy.factory = factory;
    globalNetworkProxy.useSystem = false;
  }

  /**
   * Uses the environment's proxy settings (`all_proxy`, `http_proxy`, `https_proxy`,
   * `ftp_proxy`, `no_proxy`, lower-case names first) for sockets whose proxy is
   * DefaultProxy. Enabling it replaces the application proxy and factory. Off by default
   * (Qt builds with system proxies turn it on; see docs/qt-differences.md).
   */
  static setUseSystemConfiguration(enable: boolean): void {
    globalNetworkProxy.useSystem = enable;
    if (enable) {
      globalNetworkProxy.applicationProxy = null;
      globalNetworkProxy.factory = null;
    }
  }

  /** True if the system configuration is in use. */
  static usesSystemConfiguration(): boolean {
    return globalNetworkProxy.useSystem;
  }

  /**
   * The proxies for `query` under the application's settings: localhost and loopback
   * addresses never use a proxy; then the application proxy, or the factory, or the
   * system configuration (followed by NoProxy), or NoProxy.
   */
  static proxyForQuery(query: QNetworkProxyQuery): QNetworkProxy[] {
    const noProxy = (): QNetworkProxy => new QNetworkProxy(ProxyType.NoProxy);
    if (query.queryType() !== QueryType.TcpServer && isLocalHost(query.peerHostName())) {
      return [noProxy()];
    }
    const factory = globalNetworkProxy.factory;
    if (factory) {
      const result = factory.queryProxy(query);
      if (result.length === 0) {
        qWarning('QNetworkProxyFactory: factory has returned an empty result set');
        return [noProxy()];
      }
      return result.map((p) => QNetworkProxy.from(p));
    }
    const app = globalNetworkProxy.applicationProxy;
    if (app && app.type() !== ProxyType.DefaultProxy) return [QNetworkProxy.from(app)];
    if (globalNetworkProxy.useSystem) {
      return [...QNetworkProxyFactory.systemProxyForQuery(query), noProxy()];
    }
    return [noProxy()];
  }

  /**
   * The proxy the environment names for `query` (Qt's generic Unix implementation):
   * `no_proxy` first; then `http_proxy`, `https_proxy` or `ftp_proxy` by the query's
   * protocol tag, else `all_proxy`, falling back to `http_proxy`. Schemes: `socks5://`
   * and `socks5h://` (port 1080 by default), `http://` or none (port 8080 by default).
   */
  static systemProxyForQuery(
    query: QNetworkProxyQuery = new QNetworkProxyQuery(),
  ): QNetworkProxy[] {
    const noProxy = [new QNetworkProxy(ProxyType.NoProxy)];
    if (bypassedByNoProxy(query.peerHostName(), query.peerPort())) return noProxy;
    const tag = query.protocolTag().toLowerCase();
    const byTag: Record<string, string> = {
      http: 'http_proxy',
      https: 'https_proxy',
      ftp: 'ftp_proxy',
    };
    const value = env(byTag[tag] ?? 'all_proxy') || env('http_proxy');
    if (!value) return noProxy;
    const proxy = parseProxyUrl(value, query.queryType());
    return proxy ? [proxy] : noProxy;
  }
}

globalNetworkProxy.resolveForEmptyQuery = () =>
  QNetworkProxyFactory.proxyForQuery(new QNetworkProxyQuery())[0];
