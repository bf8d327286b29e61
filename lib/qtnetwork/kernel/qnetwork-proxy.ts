import { globalNetworkProxy } from './global-network-proxy.js';

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

const C = ProxyCapability;
const ANY_TRANSPORT =
  C.TunnelingCapability |
  C.ListeningCapability |
  C.UdpTunnelingCapability |
  C.SctpTunnelingCapability |
  C.SctpListeningCapability;

/** Qt's capabilities for each type (checked against Qt 5.15). */
function defaultCapabilities(type: ProxyType): number {
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

/**
 * A proxy setting (Qt's QNetworkProxy): its type, host, port and credentials, and what it
 * can do. `DefaultProxy` means "use the application's setting"; `NoProxy` means a direct
 * connection. Set one on a socket with `setProxy`, or for the whole application with
 * `QNetworkProxy.setApplicationProxy`.
 */
export class QNetworkProxy {
  static readonly ProxyType = ProxyType;
  static readonly Capability = ProxyCapability;

  private proxyType: ProxyType;
  private host: string;
  private portNumber: number;
  private userName: string;
  private secret: string;
  private caps: number;
  private capsSet = false;
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
    p.nullValue = other.nullValue;
    return p;
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
  capabilities(): number {
    return this.caps;
  }

  /** Overrides the capabilities (they then stay when the type changes, as in Qt). */
  setCapabilities(capabilities: number): void {
    this.nullValue = false;
    this.caps = capabilities;
    this.capsSet = true;
  }

  /** True if type, host, port, credentials and capabilities are all equal. */
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
   * application proxy factory and the system configuration, as in Qt. Connections to localhost and loopback addresses
   * never go through it.
   */
  static setApplicationProxy(proxy: QNetworkProxy): void {
    const p = QNetworkProxy.from(proxy);
    // As in Qt, "the default" as the application's setting means no proxy.
    if (p.type() === ProxyType.DefaultProxy) p.setType(ProxyType.NoProxy);
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
}
