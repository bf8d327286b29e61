import type * as net from 'node:net';

import { ErrorText, mapBindError, type MappedError } from './native-errors.js';
import { type NativeSocketHandle } from './native-handle.js';
import {
  PendingConnectionServer,
  createAcceptingServer,
  listenOutcome,
} from './pending-connection-server.js';
import { QHostAddress, SpecialAddress } from '../kernel/qhost-address.js';
import { ProxyCapability, ProxyType, QNetworkProxy } from '../kernel/qnetwork-proxy.js';
import { QNetworkProxyFactory } from '../kernel/qnetwork-proxy-factory.js';
import { QNetworkProxyQuery, QueryType } from '../kernel/qnetwork-proxy-query.js';
import { ProxyTunnelError } from './proxy/proxy-tunnel.js';
import { openSocks5Bind, type Socks5Bind } from './proxy/socks5-tunnel.js';
import { QTcpSocket } from './qtcp-socket.js';
import { checkPort } from '../core/check-port.js';
import { Signal } from '../core/signal.js';
import { NetworkLayerProtocol, SocketError } from '../kernel/socket-enums.js';

/** Platforms where Node's `reusePort` sets SO_REUSEPORT (Node's `net` documentation). */
const REUSE_PORT_PLATFORMS: readonly string[] = ['linux', 'freebsd', 'sunos', 'aix'];

/**
 * A TCP server (Qt's QTcpServer) over Node's `net.Server`.
 *
 * Pending connections follow Qt: at most `maxPendingConnections()` accepted connections
 * are handed out (`newConnection`, `hasPendingConnections`) before the application takes
 * them with `nextPendingConnection()`. Qt leaves further connections in the kernel's accept
 * queue; Node accepts every connection at once, so the port keeps them un-read, in order,
 * in a queue of its own bounded by `listenBacklogSize()` (default 50), and closes any
 * connection beyond that bound. A connection flood therefore holds at most
 * maxPendingConnections + listenBacklogSize descriptors.
 *
 * Port extensions for many processes: `setListenBindMode(BindFlag.ShareAddress)` shares
 * the cluster primary's socket in a `node:cluster` worker; `setReusePortEnabled(true)`
 * listens with SO_REUSEPORT (docs/qt-differences.md).
 */
export class QTcpServer extends PendingConnectionServer<QTcpSocket> {
  /** Emitted each time a new connection is available (after `incomingConnection`). */
  readonly newConnection = new Signal<[]>('newConnection');
  /** Emitted when accepting a connection failed; accepting is paused, as in Qt. */
  readonly acceptError = new Signal<[error: SocketError]>('acceptError');
  /** Emitted by `addPendingConnection` when a connection joins the pending list (Qt 6.4). */
  readonly pendingConnectionAvailable = new Signal<[]>('pendingConnectionAvailable');

  private address = new QHostAddress();
  private port = 0;
  private serverProxy = new QNetworkProxy(ProxyType.DefaultProxy);
  /** A SOCKS5 BIND listening for its one connection. */
  private bind: Socks5Bind | null = null;
  /** See setReusePortEnabled. */
  private reusePort = false;

  /**
   * Listens on `address` (default Any: IPv4 and IPv6) and `port` (0 = a free port).
   * Resolves false if already listening (with Qt's warning; the server keeps listening) or
   * if the address cannot be used: AddressInUseError, SocketAddressNotAvailableError,
   * SocketAccessError, with Qt's texts. A failure's error stays until the next failure.
   */
  async listen(
    address: QHostAddress | SpecialAddress | string = SpecialAddress.Any,
    port = 0,
  ): Promise<boolean> {
    if (this.alreadyListening('QTcpServer::listen')) return false;
    checkPort(port, 'QTcpServer.listen');
    let addr = new QHostAddress(address);
    // Qt 5.15 listens on the IPv4 any-address when given a null address.
    if (addr.isNull()) addr = new QHostAddress(SpecialAddress.AnyIPv4);
    const proxy = this.resolveProxy(addr, port);
    if (!proxy) {
      this.setServerError({
        error: SocketError.UnsupportedSocketOperationError,
        text: ErrorText.OperationNotSupported,
      });
      return false;
    }
    if (proxy.type() === ProxyType.Socks5Proxy) return this.listenThroughSocks5(proxy, addr, port);
    if (this.reusePort && !QTcpServer.supportsReusePort()) {
      // Node before 22.12 ignores `reusePort` without a word: the server would listen
      // alone, and a second process on the port would fail later and elsewhere.
      this.setServerError({
        error: SocketError.UnsupportedSocketOperationError,
        text: ErrorText.UnsupportedOperation,
      });
      return false;
    }
    // Any is dual-stack (IPv6 socket accepting IPv4 too); AnyIPv6 and IPv6 addresses are
    // IPv6 only, as Qt sets IPV6_V6ONLY for them.
    const ipv6Only = addr.protocol() === NetworkLayerProtocol.IPv6Protocol;
    // SO_REUSEPORT means a socket per process, with the kernel spreading connections over
    // them, so it also takes a worker off the primary's shared socket.
    const options: net.ListenOptions & { reusePort?: boolean } = {
      host: addr.toNodeAddress(),
      port,
      backlog: this.queue.backlog,
      ipv6Only,
      exclusive: this.reusePort || !this.listensThroughPrimary(),
    };
    if (this.reusePort) options.reusePort = true;
    return this.startServer(addr, (server, done) => server.listen(options, done));
  }

  /**
   * Port extension: lets other sockets, in this process or others, listen on the same
   * address and port at once (SO_REUSEPORT), the kernel spreading new connections over
   * them. Each of them must enable it. Applies to the next `listen`, which fails with
   * UnsupportedSocketOperationError where `supportsReusePort()` is false. In a cluster
   * worker it overrides ShareAddress (see `setListenBindMode`): the worker gets a socket
   * of its own. Default false.
   */
  setReusePortEnabled(enabled: boolean): void {
    this.reusePort = enabled;
  }

  /** True if `setReusePortEnabled(true)` was called. */
  isReusePortEnabled(): boolean {
    return this.reusePort;
  }

  /**
   * Port extension: true where this Node can listen with SO_REUSEPORT (Node 22.12+ or
   * 23.1+ on Linux, FreeBSD, Solaris or AIX), the way QSslSocket::supportsSsl() tells of
   * TLS.
   */
  static supportsReusePort(
    version: string = process.versions.node,
    platform: string = process.platform,
  ): boolean {
    if (!REUSE_PORT_PLATFORMS.includes(platform)) return false;
    const [major = 0, minor = 0] = version.split('.').map(Number);
    if (major === 22) return minor >= 12;
    if (major === 23) return minor >= 1;
    return major > 23;
  }

  /**
   * Serves on an inherited listening TCP descriptor (for example from systemd socket
   * activation). Resolves false if already listening or if `descriptor` is not a listening
   * TCP socket. Node binds asynchronously, hence the Promise.
   */
  async setSocketDescriptor(descriptor: number): Promise<boolean> {
    if (this.alreadyListening('QTcpServer::setSocketDescriptor')) return false;
    // `exclusive`: the descriptor is this process's own; in a cluster worker Node would
    // otherwise ask the primary to listen on the primary's descriptor of that number.
    return this.startServer(null, (server, done) =>
      server.listen({ fd: descriptor, exclusive: true }, done),
    );
  }

  /**
   * Stops listening. Pending connections that were not taken, and connections still
   * waiting, are closed (Qt deletes them). `listen` may be called again afterwards.
   */
  close(): void {
    this.bind?.cancel();
    this.bind = null;
    this.address = new QHostAddress();
    this.port = 0;
    this.stopListening();
  }

  /** The address listened on (Any prints as "0.0.0.0"); null address when not listening. */
  serverAddress(): QHostAddress {
    return new QHostAddress(this.address);
  }

  /** The port listened on; 0 when not listening. */
  serverPort(): number {
    return this.port;
  }

  /**
   * Waits up to `msecs` (-1 = no limit, 0 = only what has already arrived) for a new
   * connection. Resolves `[result, timedOut]` as PySide's binding returns them:
   * `[true, false]` when a connection arrived, `[false, true]` on timeout (serverError()
   * is then SocketTimeoutError, as in Qt), `[false, false]` when the server is not
   * listening or closes meanwhile. A connection already waiting is handed out even while
   * accepting is paused, as in Qt.
   */
  waitForNewConnection(msecs = 0): Promise<[boolean, boolean]> {
    return this.queue.waitForNew(msecs, () =>
      this.setServerError({
        error: SocketError.SocketTimeoutError,
        text: ErrorText.NetworkTimeout,
      }),
    );
  }

  /** Stops handing out new connections; they wait (bounded by the backlog) until resumed. */
  pauseAccepting(): void {
    this.queue.paused = true;
  }

  /** Resumes handing out connections after `pauseAccepting` or an accept error. */
  resumeAccepting(): void {
    this.queue.paused = false;
    this.queue.scheduleDrain();
  }

  /** The proxy set with `setProxy`; DefaultProxy (the application's setting) by default. */
  proxy(): QNetworkProxy {
    return QNetworkProxy.from(this.serverProxy);
  }

  /**
   * Sets the proxy for the next `listen`. A SOCKS5 proxy listens on the server's behalf
   * (BIND) for exactly one connection; a proxy that cannot listen (HTTP) makes `listen`
   * fail with UnsupportedSocketOperationError. A loopback listen address never uses a
   * proxy (as in Qt).
   */
  setProxy(proxy: QNetworkProxy): void {
    this.serverProxy = QNetworkProxy.from(proxy);
  }

  /**
   * Called for each accepted connection. The default makes a QTcpSocket of it and calls
   * `addPendingConnection`; override it to use another socket class, and call
   * `addPendingConnection` to make the socket available to `nextPendingConnection`.
   */
  protected override incomingConnection(handle: NativeSocketHandle): void {
    this.addIncoming(new QTcpSocket(), handle);
  }

  /** Adds `socket` to the pending connections (works whether or not the server listens). */
  protected override addPendingConnection(socket: QTcpSocket): void {
    super.addPendingConnection(socket);
    this.pendingConnectionAvailable.emit();
  }

  /** Runs after each `incomingConnection`: emits `newConnection`, as Qt does. */
  protected override incomingConnectionDone(): void {
    this.newConnection.emit();
  }

  /** Re-examines the pending limit later, after `totalPendingConnections()` dropped. */
  protected pendingCountDropped(): void {
    this.queue.scheduleDrain();
  }

  private async startServer(
    address: QHostAddress | null,
    start: (server: net.Server, done: () => void) => void,
  ): Promise<boolean> {
    this.binding = true;
    const server = createAcceptingServer();
    const result = await listenOutcome(server, (done) => start(server, done));
    const cancelled = !this.binding;
    this.binding = false;
    if (result || cancelled) {
      server.close();
      if (result) this.setServerError(this.mapStartError(result, address));
      return false;
    }
    const bound = server.address();
    if (bound === null || typeof bound === 'string') {
      // A descriptor that is not a TCP socket (a Unix-domain one, for instance).
      server.close();
      this.setServerError({
        error: SocketError.UnsupportedSocketOperationError,
        text: ErrorText.InvalidDescriptor,
      });
      return false;
    }
    this.startAccepting(server, (err) => this.onAcceptError(err));
    this.address = address ?? new QHostAddress(bound.address);
    this.port = bound.port;
    return true;
  }

  private mapStartError(err: Error, address: QHostAddress | null): MappedError {
    const mapped = mapBindError(err);
    const unusable =
      mapped.error === SocketError.UnknownSocketError ||
      mapped.error === SocketError.UnsupportedSocketOperationError;
    if (address === null && unusable) {
      return {
        error: SocketError.UnsupportedSocketOperationError,
        text: ErrorText.InvalidDescriptor,
      };
    }
    return mapped;
  }

  private onAcceptError(err: Error): void {
    const mapped = mapBindError(err);
    this.setServerError(
      mapped.error === SocketError.UnknownSocketError
        ? { error: SocketError.SocketResourceError, text: ErrorText.OutOfResources }
        : mapped,
    );
    // Qt pauses accepting after an accept error that is not temporary.
    this.pauseAccepting();
    this.acceptError.emit(this.serverError());
  }

  /** Qt's choice of proxy for a server; null when none can listen. */
  private resolveProxy(address: QHostAddress, port: number): QNetworkProxy | null {
    if (address.isLoopback()) return new QNetworkProxy(ProxyType.NoProxy);
    const candidates =
      this.serverProxy.type() !== ProxyType.DefaultProxy
        ? [this.serverProxy]
        : QNetworkProxyFactory.proxyForQuery(new QNetworkProxyQuery(port, '', QueryType.TcpServer));
    const usable = candidates.find((p) => p.capabilities() & ProxyCapability.ListeningCapability);
    if (!usable || usable.type() === ProxyType.DefaultProxy) return null;
    return QNetworkProxy.from(usable);
  }

  /**
   * Listens through a SOCKS5 proxy (BIND): resolves once the proxy reports where it
   * listens (serverAddress/serverPort are that address), then hands out the one connection
   * the proxy relays, with the peer's address from the proxy's second reply. Qt 5.15 hands
   * out a socket before any peer has connected; the port waits for the peer, as Qt's source
   * intends (docs/qt-differences.md).
   */
  private async listenThroughSocks5(
    proxy: QNetworkProxy,
    address: QHostAddress,
    port: number,
  ): Promise<boolean> {
    this.binding = true;
    const target = address.toNodeAddress() === '::' ? '0.0.0.0' : address.toNodeAddress();
    const bind = openSocks5Bind(
      {
        host: proxy.hostName(),
        port: proxy.port(),
        user: proxy.user(),
        password: proxy.password(),
      },
      { host: target, port },
      30000,
    );
    this.bind = bind;
    let bound: { host: string; port: number };
    try {
      bound = await bind.bound;
    } catch (err) {
      this.binding = false;
      if (this.bind === bind) this.bind = null;
      // Qt reports the any-address after a failed BIND.
      this.address = new QHostAddress(SpecialAddress.AnyIPv4);
      this.port = 0;
      this.setServerError(bindFailure(err));
      return false;
    }
    if (this.bind !== bind || !this.binding) {
      bind.cancel();
      return false;
    }
    this.binding = false;
    this.listening = true;
    this.address = new QHostAddress(bound.host);
    this.port = bound.port;
    this.queue.start();
    bind.established.then(
      (tunnel) => {
        if (this.bind !== bind) {
          tunnel.socket.destroy();
          return;
        }
        this.bind = null;
        this.listening = false;
        const socket = new BoundProxySocket();
        if (
          !socket.adopt(tunnel.socket, tunnel.peerHost, tunnel.peerPort, this.address, this.port)
        ) {
          tunnel.socket.destroy();
          return;
        }
        this.addPendingConnection(socket);
        this.newConnection.emit();
      },
      (err: unknown) => {
        if (this.bind !== bind) return;
        this.bind = null;
        this.listening = false;
        this.setServerError(bindFailure(err));
        this.acceptError.emit(this.serverError());
      },
    );
    return true;
  }
}

/** The error of a SOCKS5 BIND that failed: the proxy's, as Qt reports it, or unknown. */
function bindFailure(err: unknown): MappedError {
  return err instanceof ProxyTunnelError
    ? { error: err.error, text: err.text }
    : { error: SocketError.UnknownSocketError, text: ErrorText.Unknown };
}

/** The socket a SOCKS5 BIND hands out: the control connection, with the peer's address. */
class BoundProxySocket extends QTcpSocket {
  adopt(
    handle: net.Socket,
    peerHost: string,
    peerPort: number,
    local: QHostAddress,
    localPort: number,
  ): boolean {
    if (!this.setSocketDescriptor(handle)) return false;
    this.setPeerAddress(new QHostAddress(peerHost));
    this.setPeerPort(peerPort);
    this.setLocalAddress(local);
    this.setLocalPort(localPort);
    return true;
  }
}
