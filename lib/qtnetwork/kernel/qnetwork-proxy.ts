import { globalNetworkProxy } from './global-network-proxy.js';
import {
  KnownHeaders,
  NetworkHeaders,
  type HeaderValue,
  type ParsedHeaderValue,
} from './network-headers.js';

/** `QNetworkProxy::ProxyType`, with Qt's values. */
export enum ProxyType {
  DefaultProxy = 0,
  Socks5Proxy = 1,
  NoProxy = 2,
  HttpProxy = 3,
  HttpCachingProxy = 4,
  FtpCachingProxy = 5,
}

/** `QNetworkProxy::Capability` (flags), with Qt's values. */
export enum ProxyCapability {
  TunnelingCapability = 0x0001,
  ListeningCapability = 0x0002,
  UdpTunnelingCapability = 0x0004,
  CachingCapability = 0x0008,
  HostNameLookupCapability = 0x0010,
  SctpTunnelingCapability = 0x00020,
  SctpListeningCapability = 0x00040,
}

/** `QNetworkProxy::Capabilities`: ProxyCapability values combined with `|`. */
export type ProxyCapabilities = number;

const C = ProxyCapability;
const ANY_TRANSPORT =
  C.TunnelingCapability |
  C.ListeningCapability |
  C.UdpTunnelingCapability |
  C.SctpTunnelingCapability |
  C.SctpListeningCapability;

/** Qt's capabilities for each type (checked against Qt 5.15). */
function defaultCapabilities(type: ProxyType): ProxyCapabilities {
  switch (type) {
    case ProxyType.Socks5Proxy:
      return (
        C.TunnelingCapability |
        C.ListeningCapability |
        C.UdpTunnelingCapability |
        C.HostNameLookupCapability
      );
    case ProxyType.HttpProxy:
      return C.TunnelingCapability | C.CachingCapability | C.HostNameLookupCapability;
    case ProxyType.HttpCachingProxy:
    case ProxyType.FtpCachingProxy:
      return C.CachingCapability | C.HostNameLookupCapability;
    default:
      return ANY_TRANSPORT;
  }
}

/** True for the types whose headers Qt keeps and sends (HttpProxy, HttpCachingProxy). */
function carriesHeaders(type: ProxyType): boolean {
  return type === ProxyType.HttpProxy || type === ProxyType.HttpCachingProxy;
}

/**
 * A proxy setting (Qt's QNetworkProxy): its type, host, port and credentials, what it can
 * do, and (for HTTP proxies) the headers sent with each request to it. `DefaultProxy` means
 * "use the application's setting"; `NoProxy` means a direct connection. Set one on a socket
 * with `setProxy`, or for the whole application with `QNetworkProxy.setApplicationProxy`.
 */
export class QNetworkProxy {
  static readonly ProxyType = ProxyType;
  static readonly Capability = ProxyCapability;
  /** Qt's `QNetworkRequest::KnownHeaders` (the port has no QNetworkRequest). */
  static readonly KnownHeaders = KnownHeaders;

  private proxyType: ProxyType;
  private host: string;
  private portNumber: number;
  private userName: string;
  private secret: string;
  private caps: number;
  private capsSet = false;
  private headers = new NetworkHeaders();
  /** Constructed without arguments and never changed: Qt's "null" proxy value. */
  private nullValue: boolean;

  /**
   * A proxy of `type` (default DefaultProxy) at `hostName`:`port` with optional
   * credentials. Without arguments it is Qt's null value, which equals only another null
   * value (not even an explicit `new QNetworkProxy(DefaultProxy)`), until a setter runs.
   */
  constructor(type?: ProxyType, hostName = '', port = 0, user = '', password = '') {
    this.nullValue = type === undefined;
    type ??= ProxyType.DefaultProxy;
    this.proxyType = type;
    this.host = hostName;
    this.portNumber = port;
    this.userName = user;
    this.secret = password;
    this.caps = defaultCapabilities(type);
  }

  /** A copy of `other`. */
  static from(other: QNetworkProxy): QNetworkProxy {
    const p = new QNetworkProxy(
      other.proxyType,
      other.host,
      other.portNumber,
      other.userName,
      other.secret,
    );
    p.caps = other.caps;
    p.capsSet = other.capsSet;
    p.headers = other.headers.clone();
    p.nullValue = other.nullValue;
    return p;
  }

  /** Exchanges every field (type, host, port, credentials, capabilities, headers) with `other`. */
  swap(other: QNetworkProxy): void {
    const mine = QNetworkProxy.from(this);
    this.assign(other);
    other.assign(mine);
  }

  /** The proxy type. */
  type(): ProxyType {
    return this.proxyType;
  }

  /** Sets the type; the capabilities follow the new type unless `setCapabilities` was called. */
  setType(type: ProxyType): void {
    this.nullValue = false;
    this.proxyType = type;
    if (!this.capsSet) this.caps = defaultCapabilities(type);
  }

  /** The proxy's host name or address. */
  hostName(): string {
    return this.host;
  }

  /** Sets the proxy's host name or address. */
  setHostName(hostName: string): void {
    this.nullValue = false;
    this.host = hostName;
  }

  /** The proxy's port; 0 when not set. */
  port(): number {
    return this.portNumber;
  }

  /** Sets the proxy's port. */
  setPort(port: number): void {
    this.nullValue = false;
    this.portNumber = port;
  }

  /** The user name for the proxy; "" for none. */
  user(): string {
    return this.userName;
  }

  /** Sets the user name for the proxy. */
  setUser(user: string): void {
    this.nullValue = false;
    this.userName = user;
  }

  /** The password for the proxy; "" for none. */
  password(): string {
    return this.secret;
  }

  /** Sets the password for the proxy. */
  setPassword(password: string): void {
    this.nullValue = false;
    this.secret = password;
  }

  /** What the proxy can do (ProxyCapability flags); by default Qt's set for its type. */
  capabilities(): ProxyCapabilities {
    return this.caps;
  }

  /** Overrides the capabilities (they then stay when the type changes, as in Qt). */
  setCapabilities(capabilities: ProxyCapabilities): void {
    this.nullValue = false;
    this.caps = capabilities;
    this.capsSet = true;
  }

  /** True if the proxy caches what it fetches: its capabilities include CachingCapability. */
  isCachingProxy(): boolean {
    return (this.caps & C.CachingCapability) !== 0;
  }

  /**
   * True if the proxy passes data through unchanged (it can tunnel): its capabilities
   * include TunnelingCapability. Both tests look at the capabilities only, as in Qt, so
   * `setCapabilities` changes their answers.
   */
  isTransparentProxy(): boolean {
    return (this.caps & C.TunnelingCapability) !== 0;
  }

  // ---------------------------------------------------------------- headers
  // Qt keeps headers for HttpProxy and HttpCachingProxy only: for other types the getters
  // answer as if there were none and the setters do nothing. Headers set while the type was
  // an HTTP one come back when it is again. An HttpProxy sends its raw headers with its
  // CONNECT request, after Qt's own (see http-connect-tunnel.ts).

  /**
   * The known header `header`: the value given to `setHeader`, or the raw header parsed as
   * Qt parses it (see ParsedHeaderValue); null if absent or unparseable. The port has no
   * QNetworkCookie: Cookie and Set-Cookie are raw headers only (null here).
   */
  header(header: KnownHeaders): ParsedHeaderValue | null {
    return carriesHeaders(this.proxyType) ? this.headers.header(header) : null;
  }

  /**
   * Sets the known header `header` (and its raw form) to `value`; null removes it. A type Qt
   * cannot use for that header (a Date for User-Agent, anything for Cookie) gives Qt's
   * warning and changes nothing, as does an empty string. Only for HTTP proxy types (on a
   * null `QNetworkProxy()` it still ends the null state, as in Qt).
   */
  setHeader(header: KnownHeaders, value: HeaderValue | null): void {
    // Like every setter, it ends the null state, whatever the type (Qt detaches).
    this.nullValue = false;
    if (carriesHeaders(this.proxyType)) this.headers.setHeader(header, value);
  }

  /** True if the raw header `headerName` is set (names compare without regard to case). */
  hasRawHeader(headerName: Buffer | string): boolean {
    return carriesHeaders(this.proxyType) && this.headers.hasRawHeader(headerName);
  }

  /** The raw header `headerName`'s value; empty if not set. */
  rawHeader(headerName: Buffer | string): Buffer {
    return carriesHeaders(this.proxyType) ? this.headers.rawHeader(headerName) : Buffer.alloc(0);
  }

  /** The raw headers' names, in the order they were set (a replaced one moves to the end). */
  rawHeaderList(): Buffer[] {
    return carriesHeaders(this.proxyType) ? this.headers.rawHeaderList() : [];
  }

  /**
   * Sets the raw header `headerName` (a string is taken as UTF-8) to `headerValue`,
   * replacing any of that name; `null` removes it (Qt's null QByteArray), while an empty
   * value is kept and sent as such. A known header's parsed value follows. Only for HTTP
   * proxy types.
   */
  setRawHeader(headerName: Buffer | string, headerValue: Buffer | string | null): void {
    this.nullValue = false;
    if (carriesHeaders(this.proxyType)) this.headers.setRawHeader(headerName, headerValue);
  }

  /**
   * True if type, host, port, credentials and capabilities are all equal (headers are not
   * compared, as in Qt).
   */
  isEqual(other: QNetworkProxy): boolean {
    if (this.nullValue || other.nullValue) return this.nullValue === other.nullValue;
    return (
      this.proxyType === other.proxyType &&
      this.host === other.host &&
      this.portNumber === other.portNumber &&
      this.userName === other.userName &&
      this.secret === other.secret &&
      this.caps === other.caps
    );
  }

  /** True if the proxy can tunnel TCP connections. */
  canTunnel(): boolean {
    return (this.caps & C.TunnelingCapability) !== 0;
  }

  /**
   * Sets the proxy every socket uses when its own proxy is DefaultProxy. Replaces any
   * application proxy factory and the system configuration, as in Qt. Connections to
   * localhost and loopback addresses never go through it. A DefaultProxy here stands for
   * "no proxy": Qt then stores a plain `new QNetworkProxy(NoProxy)`, dropping the host,
   * port, credentials, capabilities and headers it carried (checked with Qt 5.15 and 6.4).
   */
  static setApplicationProxy(proxy: QNetworkProxy): void {
    const p =
      proxy.type() === ProxyType.DefaultProxy
        ? new QNetworkProxy(ProxyType.NoProxy)
        : QNetworkProxy.from(proxy);
    globalNetworkProxy.applicationProxy = p;
    globalNetworkProxy.factory = null;
    globalNetworkProxy.useSystem = false;
  }

  /**
   * The application's proxy: the one set with `setApplicationProxy`, or, with a factory or
   * the system configuration in use, their first answer for an empty query (as Qt);
   * NoProxy when nothing is set.
   */
  static applicationProxy(): QNetworkProxy {
    const p = globalNetworkProxy.applicationProxy;
    if (p) return QNetworkProxy.from(p);
    const resolve = globalNetworkProxy.resolveForEmptyQuery;
    if ((globalNetworkProxy.factory || globalNetworkProxy.useSystem) && resolve) return resolve();
    return new QNetworkProxy(ProxyType.NoProxy);
  }

  /** Makes this a copy of `other` (the field-by-field assignment `swap` needs). */
  private assign(other: QNetworkProxy): void {
    const copy = QNetworkProxy.from(other);
    this.proxyType = copy.proxyType;
    this.host = copy.host;
    this.portNumber = copy.portNumber;
    this.userName = copy.userName;
    this.secret = copy.secret;
    this.caps = copy.caps;
    this.capsSet = copy.capsSet;
    this.headers = copy.headers;
    this.nullValue = copy.nullValue;
  }
}
