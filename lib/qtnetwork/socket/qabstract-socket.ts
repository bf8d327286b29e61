import * as dns from 'node:dns';
import { domainToASCII } from 'node:url';
import * as net from 'node:net';
import * as os from 'node:os';

import { ByteQueue } from '../core/byte-queue.js';
import { openHttpTunnel } from './proxy/http-connect-tunnel.js';
import { ErrorText, mapConnectError, mapIoError, type MappedError } from './native-errors.js';
import { nativeDescriptor, type NativeSocketHandle } from './native-handle.js';
import { OpenModeFlag, type OpenMode } from '../core/open-mode.js';
import { ProxyTunnelError, type Tunnel } from './proxy/proxy-tunnel.js';
import { QAuthenticator } from '../kernel/qauthenticator.js';
import { QHostAddress, SpecialAddress } from '../kernel/qhost-address.js';
import { QIODevice } from '../core/qiodevice.js';
import { qWarning } from '../core/qlogging.js';
import { ProxyCapability, ProxyType, QNetworkProxy } from '../kernel/qnetwork-proxy.js';
import { QNetworkProxyFactory } from '../kernel/qnetwork-proxy-factory.js';
import { QNetworkProxyQuery, QueryType } from '../kernel/qnetwork-proxy-query.js';
import { Signal } from '../core/signal.js';
import { openSocks5Tunnel } from './proxy/socks5-tunnel.js';
import {
  BindFlag,
  NetworkLayerProtocol,
  SocketError,
  SocketOption,
  SocketState,
  SocketType,
} from '../kernel/socket-enums.js';
import { waitOn, type Settle } from '../core/wait-on.js';

/** An empty read result, shared (it has no bytes anyone could change). */
const NO_BYTES = Buffer.alloc(0);

/** Qt's per-address connect timeout (QT_CONNECT_TIMEOUT), in ms. */
const CONNECT_TIMEOUT_MS = 30000;

/**
 * The base of Qt's sockets (QAbstractSocket), over Node's `net.Socket`: Qt's state
 * machine, signal order, buffers, error codes and texts.
 *
 * Writes are buffered and handed to the operating system on the next tick (all writes
 * made in one synchronous run go out together); `bytesWritten` reports what was handed
 * over. Reads come from a buffer that `readBufferSize` bounds: when it is full the socket
 * stops reading from the kernel until the application reads, so a fast peer is held back
 * by TCP flow control rather than by memory.
 *
 * What Qt does by blocking, the `waitFor*` methods do with Promises, with Qt's timeout
 * rules (-1 waits forever) and errors. Signals keep being emitted while a wait is pending.
 */
export abstract class QAbstractSocket extends QIODevice {
  static readonly SocketState = SocketState;
  static readonly SocketError = SocketError;
  static readonly SocketType = SocketType;
  static readonly SocketOption = SocketOption;
  static readonly NetworkLayerProtocol = NetworkLayerProtocol;
  static readonly BindFlag = BindFlag;

  /** Emitted when the host name has been resolved and connecting starts. */
  readonly hostFound = new Signal<[]>('hostFound');
  /** Emitted when the connection is established. */
  readonly connected = new Signal<[]>('connected');
  /** Emitted when an established connection has closed (never after a failed connect). */
  readonly disconnected = new Signal<[]>('disconnected');
  /** Emitted on every state change, with the new state. */
  readonly stateChanged = new Signal<[state: SocketState]>('stateChanged');
  /** Emitted when an error occurs; `errorString()` describes it. */
  readonly errorOccurred = new Signal<[error: SocketError]>('errorOccurred');
  /**
   * Emitted when the proxy asks for credentials: a slot that sets a user or password on
   * `authenticator` makes the socket try again with them; otherwise the connect fails
   * with ProxyAuthenticationRequiredError.
   */
  readonly proxyAuthenticationRequired = new Signal<
    [proxy: QNetworkProxy, authenticator: QAuthenticator]
  >('proxyAuthenticationRequired');

  /** Data arrived from the peer (even if discarded): what waitForReadyRead waits for. */
  private readonly readActivity = new Signal<[]>('readActivity');
  private socketState = SocketState.UnconnectedState;
  private socketError = SocketError.UnknownSocketError;
  private sock: net.Socket | null = null;
  /** Bytes accepted by `write` and not yet handed to Node. */
  private readonly writeQueue = new ByteQueue();
  /** Bytes Node delivered beyond `readBufferSize`: at most one read's worth, never visible. */
  private readonly held = new ByteQueue();
  private readBufferMax = 0;
  private flushScheduled = false;
  /** Set by a subclass (QSslSocket) while written data must not reach the connection yet. */
  private writesHeld = false;
  /** Bytes handed to Node whose write callback has not run yet. */
  private unconfirmed = 0;
  private refillScheduled = false;
  private emittingReadyRead = false;
  private emittingBytesWritten = false;
  private pendingClose = false;
  private abortCalled = false;
  private closeCalled = false;
  /** Incremented on every connect attempt and reset, so late callbacks of old ones are ignored. */
  private generation = 0;
  private connectTimer: NodeJS.Timeout | null = null;
  private addressesToTry: string[] = [];
  private lastConnectError: MappedError | null = null;
  private hostName = '';
  private port = 0;
  private peerNameText = '';
  private localAddr = new QHostAddress();
  private localPortNumber = 0;
  private peerAddr = new QHostAddress();
  private peerPortNumber = 0;
  private boundAddress: QHostAddress | null = null;
  private readonly options = new Map<SocketOption, number>();
  /** Idle ms before the first keepalive probe; 0 = the system's (setKeepAliveIdleTime). */
  private keepAliveIdleMs = 0;
  private preferredProtocol = NetworkLayerProtocol.AnyIPProtocol;
  /** The proxy set with `setProxy` (DefaultProxy: the application's setting). */
  private socketProxy = new QNetworkProxy(ProxyType.DefaultProxy);
  /** The proxy the current connection goes through; null for a direct connection. */
  private proxyInUse: QNetworkProxy | null = null;
  /** Cancels a tunnel being opened. */
  private tunnelAbort: AbortController | null = null;

  protected constructor(private readonly type: SocketType) {
    super();
  }

  // ---------------------------------------------------------------- connecting

  /**
   * Starts connecting to `host` (a name or an address) on `port`, opening the device in
   * `mode`. Signals follow Qt's order: stateChanged(HostLookupState),
   * stateChanged(ConnectingState), hostFound, stateChanged(ConnectedState), connected.
   * A failure ends in stateChanged(UnconnectedState) then errorOccurred. Each address of a
   * name is tried in turn, each for at most 30 s (Qt's connect timeout).
   */
  connectToHost(
    host: string | QHostAddress,
    port: number,
    mode: OpenMode = OpenModeFlag.ReadWrite,
    protocol: NetworkLayerProtocol = NetworkLayerProtocol.AnyIPProtocol,
  ): void {
    const hostName = host instanceof QHostAddress ? host.toString() : host;
    const s = this.socketState;
    if (
      s === SocketState.ConnectedState ||
      s === SocketState.ConnectingState ||
      s === SocketState.ClosingState ||
      s === SocketState.HostLookupState
    ) {
      qWarning(
        `QAbstractSocket::connectToHost() called when already looking up or connecting/connected to "${hostName}"`,
      );
      this.setErrorAndEmit(SocketError.OperationError, ErrorText.ConnectInProgress);
      return;
    }
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`connectToHost: port must be an integer from 0 to 65535, got ${port}`);
    }
    const proxy = this.resolveProxy(hostName, port);
    if (!proxy) {
      // No proxy that can tunnel: Qt fails at once, before any state change.
      this.setErrorAndEmit(
        SocketError.UnsupportedSocketOperationError,
        ErrorText.OperationNotSupported,
      );
      return;
    }
    this.resetSocketLayer();
    this.proxyInUse = proxy.type() === ProxyType.NoProxy ? null : proxy;
    this.writeQueue.clear();
    this.held.clear();
    this.hostName = hostName;
    this.port = port;
    this.preferredProtocol = protocol;
    this.peerNameText = hostName;
    this.peerAddr = new QHostAddress();
    this.peerPortNumber = 0;
    if (s !== SocketState.BoundState) {
      this.localAddr = new QHostAddress();
      this.localPortNumber = 0;
    }
    this.abortCalled = false;
    this.closeCalled = false;
    this.pendingClose = false;
    this.socketError = SocketError.UnknownSocketError;
    this.open(mode);

    const generation = ++this.generation;
    this.setState(SocketState.HostLookupState);
    if (generation !== this.generation) return;

    const literal = new QHostAddress(hostName);
    if (!literal.isNull()) {
      this.startConnecting([literal]);
      return;
    }
    if (
      this.proxyInUse &&
      this.proxyInUse.capabilities() & ProxyCapability.HostNameLookupCapability
    ) {
      // The proxy resolves the name: no local lookup, so no hostFound (as in Qt).
      this.setState(SocketState.ConnectingState);
      if (generation !== this.generation || this.socketState !== SocketState.ConnectingState)
        return;
      this.connectThroughProxy(domainToASCII(hostName) || hostName);
      return;
    }
    dns.lookup(hostName, { all: true }, (err, addresses) => {
      if (generation !== this.generation || this.socketState !== SocketState.HostLookupState)
        return;
      const found = err ? [] : addresses.map((a) => new QHostAddress(a.address));
      this.startConnecting(found);
    });
  }

  /**
   * Closes the connection once pending writes are written: stateChanged(ClosingState),
   * then (after the last `bytesWritten`) stateChanged(UnconnectedState),
   * readChannelFinished and disconnected. Called while connecting, it closes as soon as
   * the connection is up.
   */
  disconnectFromHost(): void {
    const s = this.socketState;
    if (s === SocketState.UnconnectedState) return;
    if (
      !this.abortCalled &&
      (s === SocketState.ConnectingState || s === SocketState.HostLookupState)
    ) {
      this.pendingClose = true;
      return;
    }
    if (this.sock) this.sock.pause();
    if (!this.abortCalled) {
      if (s !== SocketState.ClosingState) {
        this.setState(SocketState.ClosingState);
        if (this.socketState !== SocketState.ClosingState) return;
      }
      if (this.sock && this.writesPending()) {
        // As in Qt, the data goes out from the event loop: bytesToWrite() still counts it
        // when disconnectFromHost() returns.
        this.scheduleFlush();
        return;
      }
    }
    const previous = this.socketState;
    this.resetSocketLayer();
    this.socketState = SocketState.UnconnectedState;
    this.stateChanged.emit(SocketState.UnconnectedState);
    this.readChannelFinished.emit();
    if (previous === SocketState.ConnectedState || previous === SocketState.ClosingState) {
      this.disconnected.emit();
    }
    this.clearAddresses();
    if (this.closeCalled) {
      this.buffer.clear();
      this.writeQueue.clear();
    }
  }

  /**
   * Drops unwritten data and closes at once (synchronously): aboutToClose,
   * stateChanged(UnconnectedState), readChannelFinished, disconnected.
   */
  abort(): void {
    this.writeQueue.clear();
    if (this.socketState === SocketState.UnconnectedState) return;
    this.abortCalled = true;
    this.close();
  }

  /**
   * Closes the device (aboutToClose; unread data is dropped) and then the connection, as
   * `disconnectFromHost` does: pending writes are still written first.
   */
  override close(): void {
    super.close();
    if (this.socketState !== SocketState.UnconnectedState) {
      this.closeCalled = true;
      this.disconnectFromHost();
    }
    this.clearAddresses();
  }

  /**
   * Hands buffered writes to the operating system now instead of on the next tick. True if
   * anything was handed over.
   */
  flush(): boolean {
    return this.flushWrites();
  }

  /**
   * Binds the local end of the next connection to `address` and `port` (0 = any port) and
   * enters BoundState. Node binds a TCP client socket only when it connects, so a port
   * that is taken is reported by `connectToHost`, not here; an address that is not on this
   * host is refused here, with SocketAddressNotAvailableError, as in Qt.
   * The result is a boolean here and in QTcpSocket; QUdpSocket binds in the kernel, which
   * Node does asynchronously, and returns `Promise<boolean>`.
   */
  bind(
    address: QHostAddress | SpecialAddress | string = SpecialAddress.Any,
    port = 0,
    _mode: number = BindFlag.DefaultForPlatform,
  ): boolean | Promise<boolean> {
    if (this.socketState !== SocketState.UnconnectedState) {
      qWarning('QAbstractSocket::bind() called on a socket that is not unconnected');
      return false;
    }
    const addr = address instanceof QHostAddress ? address : new QHostAddress(address);
    if (addr.isNull() || !isLocalAddress(addr)) {
      this.setErrorAndEmit(
        SocketError.SocketAddressNotAvailableError,
        ErrorText.AddressNotAvailable,
      );
      return false;
    }
    this.boundAddress = addr;
    this.localAddr = new QHostAddress(addr);
    this.localPortNumber = port;
    this.setState(SocketState.BoundState);
    return true;
  }

  // ---------------------------------------------------------------- state and errors

  /** The current state. */
  state(): SocketState {
    return this.socketState;
  }

  /** The last error; UnknownSocketError when none occurred. */
  error(): SocketError {
    return this.socketError;
  }

  /** TcpSocket for QTcpSocket. */
  socketType(): SocketType {
    return this.type;
  }

  /**
   * As Qt: while there is an operating-system socket, whether it can be used; otherwise
   * `isOpen()` (so a socket whose connection ended or failed, still open as a device, is
   * valid, as in Qt 5.15).
   */
  isValid(): boolean {
    return this.sock !== null ? !this.sock.destroyed : this.isOpen();
  }

  /** The local address once connected (or bound); null address otherwise. */
  localAddress(): QHostAddress {
    return new QHostAddress(this.localAddr);
  }

  /** The local port once connected (or bound); 0 otherwise. */
  localPort(): number {
    return this.localPortNumber;
  }

  /** The peer's address while connected; null address otherwise. */
  peerAddress(): QHostAddress {
    return new QHostAddress(this.peerAddr);
  }

  /** The peer's port while connected; 0 otherwise. */
  peerPort(): number {
    return this.peerPortNumber;
  }

  /** The host name given to `connectToHost`; "" for accepted sockets and when unconnected. */
  peerName(): string {
    return this.peerNameText;
  }

  /**
   * The operating-system descriptor, or -1 when there is none. Node reads it from its
   * internal handle; on Windows it is always -1.
   */
  socketDescriptor(): number {
    return nativeDescriptor(this.sock);
  }

  /**
   * Adopts an existing connection: an accepted connection from QTcpServer's
   * `incomingConnection`, or a descriptor number of a connected TCP socket (for example one
   * inherited from a parent process). Enters `state` (default ConnectedState) and opens
   * in `mode`. Returns false, with UnsupportedSocketOperationError, if it cannot be used.
   */
  setSocketDescriptor(
    descriptor: number | NativeSocketHandle,
    state: SocketState = SocketState.ConnectedState,
    mode: OpenMode = OpenModeFlag.ReadWrite,
  ): boolean {
    this.resetSocketLayer();
    let sock: net.Socket;
    try {
      sock =
        typeof descriptor === 'number'
          ? new net.Socket({ fd: descriptor, allowHalfOpen: true, readable: true, writable: true })
          : descriptor;
    } catch {
      this.setError(SocketError.UnsupportedSocketOperationError, ErrorText.InvalidDescriptor);
      return false;
    }
    if (!this.acceptsNativeSocket(sock)) {
      if (typeof descriptor === 'number') sock.destroy();
      this.setError(SocketError.UnsupportedSocketOperationError, ErrorText.InvalidDescriptor);
      return false;
    }
    this.generation++;
    this.socketError = SocketError.UnknownSocketError;
    this.open(mode);
    this.writeQueue.clear();
    this.held.clear();
    this.abortCalled = false;
    this.closeCalled = false;
    this.pendingClose = false;
    this.peerNameText = '';
    this.attach(sock);
    this.fetchConnectionParameters();
    if (this.socketState !== state) this.setState(state);
    if (this.sock === sock) sock.resume();
    return true;
  }

  // ---------------------------------------------------------------- reading and writing

  /** Bytes written and not yet handed to the operating system (own buffer plus Node's). */
  override bytesToWrite(): number {
    return this.writeQueue.size + (this.sock ? this.sock.writableLength : 0);
  }

  /** The read buffer's limit in bytes; 0 means unbounded (the default). */
  readBufferSize(): number {
    return this.readBufferMax;
  }

  /**
   * Limits the read buffer to `size` bytes (0 = unbounded). When the buffer is full the
   * socket stops reading from the kernel, and resumes when the application reads or the
   * limit grows; `bytesAvailable()` never exceeds a non-zero limit.
   */
  setReadBufferSize(size: number): void {
    if (!Number.isInteger(size) || size < 0) {
      throw new RangeError(`setReadBufferSize: size must be a non-negative integer, got ${size}`);
    }
    if (size === this.readBufferMax) return;
    this.readBufferMax = size;
    if (size !== 0 && this.buffer.size >= size) this.sock?.pause();
    this.scheduleRefill();
  }

  /**
   * Sets a socket option. LowDelayOption (TCP_NODELAY) and KeepAliveOption (SO_KEEPALIVE)
   * apply while the socket has a connection (in Qt too, options set before connectToHost
   * are ignored). Node cannot set TypeOfServiceOption or the buffer sizes on a TCP socket:
   * those are ignored with a warning (see docs/qt-differences.md).
   */
  setSocketOption(option: SocketOption, value: number | boolean): void {
    const sock = this.sock;
    if (!sock) return;
    const n = typeof value === 'boolean' ? (value ? 1 : 0) : value;
    switch (option) {
      case SocketOption.LowDelayOption:
        sock.setNoDelay(n !== 0);
        this.options.set(option, n !== 0 ? 1 : 0);
        break;
      case SocketOption.KeepAliveOption:
        sock.setKeepAlive(n !== 0, this.keepAliveIdleMs);
        this.options.set(option, n !== 0 ? 1 : 0);
        break;
      default:
        qWarning(
          `QAbstractSocket::setSocketOption: ${SocketOption[option] ?? option} is not supported by Node.js on this socket`,
        );
    }
  }

  /**
   * Port extension (Qt has no call for it; a Qt program sets TCP_KEEPIDLE with setsockopt on
   * `socketDescriptor()`): the idle time before the first keepalive probe, in ms, rounded
   * down to whole seconds by the system, used whenever KeepAliveOption is on (at once if it
   * already is). 0 = the system's default (Linux: 2 hours). With a value set, Node also sets
   * the probes: 10, 1 s apart (measured with Node 20 on Linux).
   */
  setKeepAliveIdleTime(msecs: number): void {
    if (!Number.isInteger(msecs) || msecs < 0) {
      throw new RangeError(
        `setKeepAliveIdleTime: msecs must be a non-negative integer, got ${msecs}`,
      );
    }
    this.keepAliveIdleMs = msecs;
    if (this.sock && this.options.get(SocketOption.KeepAliveOption) === 1) {
      this.sock.setKeepAlive(true, msecs);
    }
  }

  /** The idle time set with `setKeepAliveIdleTime` (0 = the system's). */
  keepAliveIdleTime(): number {
    return this.keepAliveIdleMs;
  }

  /**
   * The option's value; undefined when there is no connection (Qt's invalid QVariant);
   * -1 for options Node cannot read (TypeOfService, buffer sizes, path MTU).
   */
  socketOption(option: SocketOption): number | undefined {
    if (!this.sock) return undefined;
    switch (option) {
      case SocketOption.LowDelayOption:
      case SocketOption.KeepAliveOption:
        return this.options.get(option) ?? 0;
      default:
        return -1;
    }
  }

  /** The proxy set with `setProxy`; DefaultProxy (the application's setting) by default. */
  proxy(): QNetworkProxy {
    return QNetworkProxy.from(this.socketProxy);
  }

  /**
   * Sets the proxy for the next `connectToHost`: a SOCKS5 or HTTP (CONNECT) proxy,
   * NoProxy for a direct connection, or DefaultProxy to use the application's setting.
   * An explicit proxy is used even for loopback targets (the application's is not).
   */
  setProxy(proxy: QNetworkProxy): void {
    this.socketProxy = QNetworkProxy.from(proxy);
  }

  // ---------------------------------------------------------------- waiting

  /**
   * Resolves true once connected (at once if already), false if the attempt fails or
   * `msecs` pass (-1 = no limit). On timeout the attempt is abandoned: SocketTimeoutError
   * ("Socket operation timed out") and UnconnectedState, without errorOccurred (as Qt).
   */
  waitForConnected(msecs = 30000): Promise<boolean> {
    const s = this.socketState;
    if (s === SocketState.ConnectedState) return Promise.resolve(true);
    if (s !== SocketState.HostLookupState && s !== SocketState.ConnectingState) {
      return Promise.resolve(false);
    }
    return this.waitFor(
      msecs,
      (settle) => [
        this.connected.connect(() => settle(true)),
        this.stateChanged.connect((st) => {
          if (st === SocketState.UnconnectedState) settle(false);
        }),
      ],
      () => {
        const now = this.socketState;
        if (now === SocketState.HostLookupState || now === SocketState.ConnectingState) {
          this.setError(SocketError.SocketTimeoutError, ErrorText.SocketOperationTimeout);
          this.resetSocketLayer();
          this.setState(SocketState.UnconnectedState);
        }
      },
    );
  }

  /**
   * Resolves true when new data has been buffered, false if the connection ends or
   * `msecs` pass. A timeout emits SocketTimeoutError and leaves the socket open.
   */
  override async waitForReadyRead(msecs = 30000): Promise<boolean> {
    const s = this.socketState;
    if (s === SocketState.UnconnectedState || s === SocketState.ClosingState) return false;
    const start = Date.now();
    if (s === SocketState.HostLookupState || s === SocketState.ConnectingState) {
      if (!(await this.waitForConnected(msecs))) return false;
    }
    return this.waitFor(
      remaining(msecs, start),
      (settle) => [
        this.readActivity.connect(() => settle(true)),
        this.stateChanged.connect((st) => {
          if (st === SocketState.UnconnectedState) settle(false);
        }),
      ],
      () => this.setErrorAndEmit(SocketError.SocketTimeoutError, ErrorText.NetworkTimeout),
    );
  }

  /**
   * Resolves true when some pending data has been handed to the operating system; false
   * at once if nothing is pending, or on error, disconnection or timeout (SocketTimeoutError).
   */
  override async waitForBytesWritten(msecs = 30000): Promise<boolean> {
    if (this.socketState === SocketState.UnconnectedState) {
      qWarning('QAbstractSocket::waitForBytesWritten() is not allowed in UnconnectedState');
      return false;
    }
    if (!this.writesPending()) return false;
    const start = Date.now();
    const s = this.socketState;
    if (s === SocketState.HostLookupState || s === SocketState.ConnectingState) {
      // Data written before the connection goes out as soon as it is up, possibly before
      // this continuation runs: count a bytesWritten emitted meanwhile.
      let written = false;
      const off = this.bytesWritten.connect(() => (written = true));
      const ok = await this.waitForConnected(msecs);
      off();
      if (!ok) return false;
      if (written) return true;
    }
    if (!this.writesPending()) return false;
    this.flushWrites();
    return this.waitFor(
      remaining(msecs, start),
      (settle) => [
        this.bytesWritten.connect(() => settle(true)),
        this.stateChanged.connect((st) => {
          if (st === SocketState.UnconnectedState) settle(false);
        }),
      ],
      () => this.setErrorAndEmit(SocketError.SocketTimeoutError, ErrorText.NetworkTimeout),
    );
  }

  /**
   * Resolves true when the socket has disconnected, false on timeout (SocketTimeoutError).
   * In UnconnectedState it warns and resolves false at once, as Qt does.
   */
  async waitForDisconnected(msecs = 30000): Promise<boolean> {
    if (this.socketState === SocketState.UnconnectedState) {
      qWarning('QAbstractSocket::waitForDisconnected() is not allowed in UnconnectedState');
      return false;
    }
    const start = Date.now();
    const s = this.socketState;
    if (s === SocketState.HostLookupState || s === SocketState.ConnectingState) {
      if (!(await this.waitForConnected(msecs))) return false;
    }
    if (this.state() === SocketState.UnconnectedState) return true;
    return this.waitFor(
      remaining(msecs, start),
      (settle) => [
        this.stateChanged.connect((st) => {
          if (st === SocketState.UnconnectedState) settle(true);
        }),
      ],
      () => this.setErrorAndEmit(SocketError.SocketTimeoutError, ErrorText.NetworkTimeout),
    );
  }

  // ---------------------------------------------------------------- for subclasses

  /** Sets the error and its text without emitting (Qt's `setSocketError` + `setErrorString`). */
  protected setError(error: SocketError, text: string): void {
    this.socketError = error;
    this.setErrorString(text);
  }

  /** Sets the error and its text, then emits errorOccurred. */
  protected setErrorAndEmit(error: SocketError, text: string): void {
    this.setError(error, text);
    this.errorOccurred.emit(error);
  }

  /** Changes the state and emits stateChanged (Qt's protected `setSocketState` + signal). */
  protected setState(state: SocketState): void {
    this.socketState = state;
    this.stateChanged.emit(state);
  }

  /** Sets the local address reported by `localAddress()` (Qt's protected setter). */
  protected setLocalAddress(address: QHostAddress): void {
    this.localAddr = new QHostAddress(address);
  }

  /** Sets the local port reported by `localPort()`. */
  protected setLocalPort(port: number): void {
    this.localPortNumber = port;
  }

  /** Sets the peer address reported by `peerAddress()`. */
  protected setPeerAddress(address: QHostAddress): void {
    this.peerAddr = new QHostAddress(address);
  }

  /** Sets the peer port reported by `peerPort()`. */
  protected setPeerPort(port: number): void {
    this.peerPortNumber = port;
  }

  /** Sets the name reported by `peerName()`. */
  protected setPeerName(name: string): void {
    this.peerNameText = name;
  }

  /**
   * For QSslSocket: puts a protocol layer (TLS) over the connection. Bytes already queued
   * for writing are handed to the current connection first, unless writes are held (Qt's
   * plain socket has them already); bytes received and not read yet are pushed back into
   * it (in Qt they are still in the plain socket, so the new layer reads them first).
   * `layer` gets the current Node socket, paused, and returns the socket that carries the
   * connection from then on: signals, buffers and the state machine carry on over it.
   * Returns false when there is no connection.
   */
  protected layerSocket(layer: (sock: net.Socket) => net.Socket): boolean {
    const sock = this.sock;
    if (!sock || sock.destroyed) return false;
    this.flushWrites();
    sock.pause();
    this.held.moveTo(this.buffer, this.held.size);
    if (this.buffer.size > 0) sock.unshift(this.buffer.read(this.buffer.size));
    this.attach(layer(sock));
    return true;
  }

  /**
   * While `held`, written data stays in the write buffer (counted by `bytesToWrite`) instead
   * of going to the connection; releasing it sends what waits on the next tick. QSslSocket
   * holds what is written before its handshake completes, so none of it leaves in clear.
   */
  protected setWritesHeld(held: boolean): void {
    this.writesHeld = held;
    if (!held && this.writeQueue.size > 0) this.scheduleFlush();
  }

  /** Drops the data waiting in the write buffer (QSslSocket, after a failed handshake). */
  protected discardPendingWrites(): void {
    this.writeQueue.clear();
  }

  /** Whether a connection handed to `setSocketDescriptor` is of this socket's kind. */
  protected acceptsNativeSocket(sock: net.Socket): boolean {
    // A TCP connection has IP addresses; a Unix-domain one does not.
    return !sock.destroyed && net.isIP(sock.remoteAddress ?? sock.localAddress ?? '') !== 0;
  }

  protected override readData(maxSize: number): Buffer | null {
    if (!this.sock || this.socketState !== SocketState.ConnectedState) {
      return maxSize > 0 ? null : NO_BYTES;
    }
    return NO_BYTES;
  }

  protected override writeData(data: Buffer): number {
    if (this.socketState === SocketState.UnconnectedState) {
      this.setError(SocketError.UnknownSocketError, ErrorText.NotConnected);
      return -1;
    }
    this.writeQueue.push(data);
    if (
      this.socketState === SocketState.ConnectedState ||
      this.socketState === SocketState.ClosingState
    ) {
      this.scheduleFlush();
    }
    return data.length;
  }

  protected override bufferConsumed(): void {
    if (this.readBufferMax > 0) this.scheduleRefill();
  }

  // ---------------------------------------------------------------- internals

  private startConnecting(candidates: QHostAddress[]): void {
    const wanted = this.preferredProtocol;
    const addresses = candidates.filter(
      (a) =>
        wanted === NetworkLayerProtocol.AnyIPProtocol ||
        wanted === NetworkLayerProtocol.UnknownNetworkLayerProtocol ||
        a.protocol() === wanted,
    );
    if (addresses.length === 0) {
      this.socketState = SocketState.UnconnectedState;
      this.setError(SocketError.HostNotFoundError, ErrorText.HostNotFound);
      this.stateChanged.emit(SocketState.UnconnectedState);
      this.errorOccurred.emit(SocketError.HostNotFoundError);
      return;
    }
    const generation = this.generation;
    this.addressesToTry = addresses.map((a) => a.toNodeAddress());
    this.lastConnectError = null;
    this.setState(SocketState.ConnectingState);
    if (generation !== this.generation || this.socketState !== SocketState.ConnectingState) return;
    this.hostFound.emit();
    if (generation !== this.generation || this.socketState !== SocketState.ConnectingState) return;
    this.connectToNextAddress();
  }

  private connectToNextAddress(): void {
    if (this.proxyInUse) {
      const target = this.addressesToTry.shift();
      this.addressesToTry = [];
      if (target !== undefined) this.connectThroughProxy(target);
      return;
    }
    const host = this.addressesToTry.shift();
    if (host === undefined) {
      const failure = this.lastConnectError ?? {
        error: SocketError.ConnectionRefusedError,
        text: ErrorText.ConnectionRefused,
      };
      this.resetSocketLayer();
      this.socketState = SocketState.UnconnectedState;
      this.setError(failure.error, failure.text);
      this.stateChanged.emit(SocketState.UnconnectedState);
      this.errorOccurred.emit(failure.error);
      return;
    }
    this.resetSocketLayer();
    const sock = new net.Socket({ allowHalfOpen: true });
    this.attach(sock);
    const generation = this.generation;
    const connectOptions: net.TcpSocketConnectOpts = { host, port: this.port };
    if (this.boundAddress) {
      const local = this.boundAddress.toNodeAddress();
      if (local !== '::' && local !== '0.0.0.0') connectOptions.localAddress = local;
      if (this.localPortNumber) connectOptions.localPort = this.localPortNumber;
    }
    this.connectTimer = setTimeout(() => {
      if (generation !== this.generation) return;
      this.lastConnectError = {
        error: SocketError.SocketTimeoutError,
        text: ErrorText.ConnectionTimedOut,
      };
      this.connectToNextAddress();
    }, CONNECT_TIMEOUT_MS);
    sock.connect(connectOptions);
  }

  /** Installs the event handlers on `sock` and makes it the socket's connection. */
  private attach(sock: net.Socket): void {
    this.sock = sock;
    const generation = this.generation;
    const current = (): boolean => this.sock === sock && this.generation === generation;
    sock.on('connect', () => {
      if (current()) this.onConnected();
    });
    sock.on('data', (chunk: Buffer) => {
      if (current()) this.onData(chunk);
    });
    sock.on('end', () => {
      if (current())
        this.onRemoteClosed({
          error: SocketError.RemoteHostClosedError,
          text: ErrorText.RemoteHostClosed,
        });
    });
    // An 'error' listener stays for the socket's whole life, so that an error after the
    // socket was dropped is never an unhandled 'error' event.
    sock.on('error', (err: Error) => {
      if (current()) this.onSocketError(err);
    });
    sock.on('close', () => {
      if (current() && this.socketState !== SocketState.ConnectingState) {
        this.onRemoteClosed({
          error: SocketError.RemoteHostClosedError,
          text: ErrorText.RemoteHostClosed,
        });
      }
    });
  }

  private onConnected(fetchParameters = true): void {
    this.clearConnectTimer();
    this.addressesToTry = [];
    if (fetchParameters) this.fetchConnectionParameters();
    const generation = this.generation;
    this.setState(SocketState.ConnectedState);
    if (generation !== this.generation || this.socketState !== SocketState.ConnectedState) return;
    this.connected.emit();
    if (generation !== this.generation || this.socketState !== SocketState.ConnectedState) return;
    if (this.pendingClose) {
      this.pendingClose = false;
      this.disconnectFromHost();
      return;
    }
    if (this.writeQueue.size > 0) this.scheduleFlush();
  }

  /**
   * Which proxy a connection to `host`:`port` uses, in Qt's order: the socket's own proxy
   * unless it is DefaultProxy; otherwise the application's setting (application proxy,
   * factory or system configuration; never for localhost or loopback addresses). The
   * first candidate that can tunnel wins; null if none can.
   */
  private resolveProxy(host: string, port: number): QNetworkProxy | null {
    const candidates =
      this.socketProxy.type() !== ProxyType.DefaultProxy
        ? [this.socketProxy]
        : QNetworkProxyFactory.proxyForQuery(
            new QNetworkProxyQuery(host, port, '', QueryType.TcpSocket),
          );
    const usable = candidates.find((p) => p.capabilities() & ProxyCapability.TunnelingCapability);
    if (!usable || usable.type() === ProxyType.DefaultProxy) return null;
    return QNetworkProxy.from(usable);
  }

  /** Opens a tunnel through the proxy in use to `target` (an address or a name). */
  private connectThroughProxy(target: string): void {
    const proxy = this.proxyInUse!;
    const generation = this.generation;
    const abort = new AbortController();
    this.tunnelAbort = abort;
    const endpoint = {
      host: proxy.hostName(),
      port: proxy.port(),
      user: proxy.user(),
      password: proxy.password(),
    };
    const open = proxy.type() === ProxyType.Socks5Proxy ? openSocks5Tunnel : openHttpTunnel;
    open(endpoint, { host: target, port: this.port }, CONNECT_TIMEOUT_MS, abort.signal).then(
      (tunnel) => {
        if (generation !== this.generation || this.socketState !== SocketState.ConnectingState) {
          tunnel.socket.destroy();
          return;
        }
        this.tunnelAbort = null;
        this.onTunnelEstablished(tunnel, target);
      },
      (err: unknown) => {
        if (generation !== this.generation || this.socketState !== SocketState.ConnectingState) {
          return;
        }
        this.tunnelAbort = null;
        this.onTunnelFailed(err, target);
      },
    );
  }

  private onTunnelEstablished(tunnel: Tunnel, target: string): void {
    const sock = tunnel.socket;
    this.attach(sock);
    // Through SOCKS5 the local end is what the proxy reports (BND.ADDR/BND.PORT); through
    // HTTP it is this end of the connection to the proxy. The peer is the target, whose
    // address is known only when it was given as one.
    this.localAddr = new QHostAddress(tunnel.boundAddress ?? sock.localAddress ?? '');
    this.localPortNumber = tunnel.boundPort ?? sock.localPort ?? 0;
    this.peerAddr = new QHostAddress(net.isIP(target) ? target : '');
    this.peerPortNumber = this.port;
    this.onConnected(false);
    if (this.sock === sock) {
      if (tunnel.head.length > 0) this.onData(tunnel.head);
      sock.resume();
    }
  }

  private onTunnelFailed(err: unknown, target: string): void {
    const failure =
      err instanceof ProxyTunnelError
        ? err
        : new ProxyTunnelError(SocketError.UnknownSocketError, ErrorText.Unknown);
    if (failure.authentication === 'required') {
      const proxy = this.proxyInUse!;
      const authenticator = new QAuthenticator();
      authenticator.setRealmFromChallenge(failure.realm);
      const generation = this.generation;
      this.proxyAuthenticationRequired.emit(QNetworkProxy.from(proxy), authenticator);
      if (generation !== this.generation || this.socketState !== SocketState.ConnectingState) {
        return;
      }
      if (authenticator.user() !== '' || authenticator.password() !== '') {
        proxy.setUser(authenticator.user());
        proxy.setPassword(authenticator.password());
        this.connectThroughProxy(target);
        return;
      }
    }
    this.resetSocketLayer();
    this.socketState = SocketState.UnconnectedState;
    this.setError(failure.error, failure.text);
    this.stateChanged.emit(SocketState.UnconnectedState);
    this.errorOccurred.emit(failure.error);
  }

  private fetchConnectionParameters(): void {
    const sock = this.sock;
    if (!sock) return;
    this.localAddr = new QHostAddress(sock.localAddress ?? '');
    this.localPortNumber = sock.localPort ?? 0;
    this.peerAddr = new QHostAddress(sock.remoteAddress ?? '');
    this.peerPortNumber = sock.remotePort ?? 0;
  }

  private onData(chunk: Buffer): void {
    if (!this.isReadable()) {
      // Opened write-only (or closed): Qt discards the input, but a waitForReadyRead
      // still sees that data arrived.
      this.readActivity.emit();
      return;
    }
    let visible = chunk;
    if (this.readBufferMax > 0) {
      const room = this.readBufferMax - this.buffer.size;
      if (room < chunk.length) {
        visible = chunk.subarray(0, Math.max(0, room));
        this.held.push(chunk.subarray(visible.length));
        this.sock?.pause();
      }
    }
    if (visible.length === 0) return;
    this.buffer.push(visible);
    this.readActivity.emit();
    this.emitReadyRead();
  }

  private emitReadyRead(): void {
    // Qt does not re-emit readyRead from within a slot connected to it.
    if (this.emittingReadyRead) return;
    this.emittingReadyRead = true;
    try {
      this.readyRead.emit();
    } finally {
      this.emittingReadyRead = false;
    }
  }

  private scheduleRefill(): void {
    if (this.refillScheduled) return;
    this.refillScheduled = true;
    setImmediate(() => {
      this.refillScheduled = false;
      this.refill();
    });
  }

  /** Moves held bytes into the buffer as room allows, and resumes reading when all fit. */
  private refill(): void {
    const sock = this.sock;
    if (!sock || sock.destroyed) return;
    const room = this.readBufferMax === 0 ? Infinity : this.readBufferMax - this.buffer.size;
    if (room <= 0) return;
    const moved = this.held.moveTo(this.buffer, room);
    if (
      this.held.size === 0 &&
      sock.isPaused() &&
      this.socketState === SocketState.ConnectedState
    ) {
      sock.resume();
    }
    if (moved > 0 && this.isReadable()) {
      this.readActivity.emit();
      this.emitReadyRead();
    }
  }

  /** True while written data has not been reported by bytesWritten yet. */
  private writesPending(): boolean {
    return (
      this.writeQueue.size > 0 ||
      this.unconfirmed > 0 ||
      (this.sock !== null && this.sock.writableLength > 0)
    );
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      this.flushWrites();
    });
  }

  private flushWrites(): boolean {
    const sock = this.sock;
    const s = this.socketState;
    if (!sock || (s !== SocketState.ConnectedState && s !== SocketState.ClosingState)) return false;
    if (this.writesHeld) return false;
    const total = this.writeQueue.size;
    if (total === 0) return false;
    const chunks = this.writeQueue.takeAll();
    const generation = this.generation;
    this.unconfirmed += total;
    const done = (err?: Error | null): void => {
      // The generation, not the Node socket, tells whether this is still the same
      // connection: `layerSocket` swaps the socket of a connection that goes on.
      if (this.generation !== generation) return;
      this.unconfirmed -= total;
      if (!err) this.onBytesWritten(total);
    };
    if (chunks.length === 1) {
      sock.write(chunks[0], done);
    } else {
      sock.cork();
      for (let i = 0; i < chunks.length - 1; i++) sock.write(chunks[i]);
      sock.write(chunks[chunks.length - 1], done);
      sock.uncork();
    }
    return true;
  }

  private onBytesWritten(n: number): void {
    if (!this.emittingBytesWritten) {
      this.emittingBytesWritten = true;
      try {
        this.bytesWritten.emit(n);
      } finally {
        this.emittingBytesWritten = false;
      }
    }
    if (this.socketState === SocketState.ClosingState && !this.writesPending()) {
      this.disconnectFromHost();
    }
  }

  private onSocketError(err: Error): void {
    if (this.socketState === SocketState.ConnectingState) {
      this.clearConnectTimer();
      this.lastConnectError = mapConnectError(err);
      this.connectToNextAddress();
      return;
    }
    const mapped = mapIoError(err);
    if (
      (err as { syscall?: string }).syscall === 'write' &&
      mapped.error !== SocketError.RemoteHostClosedError
    ) {
      // Qt aborts the socket when writing fails for a reason other than the peer leaving.
      this.setErrorAndEmit(mapped.error, mapped.text);
      this.abort();
      return;
    }
    this.onRemoteClosed(mapped);
  }

  /** The connection ended from the other side (or failed): Qt's order of signals. */
  private onRemoteClosed(reason: MappedError): void {
    const s = this.socketState;
    if (s !== SocketState.ConnectedState && s !== SocketState.ClosingState) return;
    // Bytes held back by readBufferSize are still the peer's data: keep them readable.
    this.held.moveTo(this.buffer, this.held.size);
    const generation = this.generation;
    this.setErrorAndEmit(reason.error, reason.text);
    if (generation !== this.generation) return;
    this.resetSocketLayer();
    this.writeQueue.clear();
    this.disconnectFromHost();
  }

  private clearConnectTimer(): void {
    if (this.connectTimer) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
  }

  /** Drops the operating-system socket (Qt's `resetSocketLayer`). */
  private resetSocketLayer(): void {
    this.clearConnectTimer();
    this.tunnelAbort?.abort();
    this.tunnelAbort = null;
    this.options.clear();
    this.unconfirmed = 0;
    const sock = this.sock;
    this.sock = null;
    this.generation++;
    if (sock && !sock.destroyed) sock.destroy();
  }

  private clearAddresses(): void {
    this.localAddr = new QHostAddress();
    this.localPortNumber = 0;
    this.peerAddr = new QHostAddress();
    this.peerPortNumber = 0;
    // Qt keeps peerName() after the connection ends; only addresses and ports are cleared.
    this.boundAddress = null;
  }

  /** One wait (see waitOn). */
  private waitFor(
    msecs: number,
    watch: (settle: Settle) => Array<() => void>,
    onTimeout: () => void,
  ): Promise<boolean> {
    return waitOn(msecs, watch, onTimeout);
  }
}

function remaining(msecs: number, start: number): number {
  if (msecs < 0) return -1;
  return Math.max(0, msecs - (Date.now() - start));
}

function isLocalAddress(addr: QHostAddress): boolean {
  const text = addr.toNodeAddress();
  if (text === '::' || text === '0.0.0.0' || addr.isLoopback()) return true;
  const interfaces = os.networkInterfaces();
  return Object.values(interfaces).some((list) =>
    (list ?? []).some((i) => new QHostAddress(i.address).isEqual(addr)),
  );
}
