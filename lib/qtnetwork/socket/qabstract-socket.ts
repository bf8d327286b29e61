import * as dns from 'node:dns';
import * as net from 'node:net';
import { domainToASCII } from 'node:url';

import { checkPort } from '../core/check-port.js';
import { OpenModeFlag, type OpenMode } from '../core/open-mode.js';
import { QIODevice } from '../core/qiodevice.js';
import { qWarning } from '../core/qlogging.js';
import { Signal } from '../core/signal.js';
import { timeLeft } from '../core/time-left.js';
import { waitOn, type Settle } from '../core/wait-on.js';
import type { QAuthenticator } from '../kernel/qauthenticator.js';
import { QHostAddress } from '../kernel/qhost-address.js';
import { ProxyType, QNetworkProxy } from '../kernel/qnetwork-proxy.js';
import {
  BindFlag,
  NetworkLayerProtocol,
  PauseMode,
  type BindMode,
  type PauseModes,
  SocketError,
  SocketOption,
  SocketState,
  SocketType,
} from '../kernel/socket-enums.js';
import { bindRequest, type BindAddress } from './bind-request.js';
import { ErrorText } from './native-errors.js';
import type { NativeSocketHandle } from './native-handle.js';
import type { SocketEngine, SocketEngineHost } from './socket-engine.js';
import { TcpConnectEngine } from './tcp-connect-engine.js';

/**
 * The base of Qt's sockets (QAbstractSocket): Qt's state machine, signal order, error codes
 * and texts, and the waits. The operating-system socket is a socket engine's (Qt has one
 * under its sockets too): TcpConnectEngine over Node's `net.Socket` for stream sockets,
 * UdpSocketEngine over `dgram` for QUdpSocket.
 *
 * On a stream socket, writes are buffered and handed to the operating system on the next
 * tick (all writes made in one synchronous run go out together); `bytesWritten` reports
 * what was handed over. Reads come from a buffer that `readBufferSize` bounds: when it is
 * full the socket stops reading from the kernel until the application reads, so a fast peer
 * is held back by TCP flow control rather than by memory.
 *
 * What Qt does by blocking, the `waitFor*` methods do with Promises, with Qt's timeout
 * rules (-1 waits forever) and errors. Signals keep being emitted while a wait is pending.
 *
 * `BindResult` is what `bind` returns: a boolean for TCP (QTcpSocket), a Promise for UDP
 * (QUdpSocket), which Node binds asynchronously.
 */
export abstract class QAbstractSocket<
  BindResult extends boolean | Promise<boolean> = boolean | Promise<boolean>,
> extends QIODevice {
  static readonly SocketState = SocketState;
  static readonly SocketError = SocketError;
  static readonly SocketType = SocketType;
  static readonly SocketOption = SocketOption;
  static readonly NetworkLayerProtocol = NetworkLayerProtocol;
  static readonly BindFlag = BindFlag;
  static readonly PauseMode = PauseMode;

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
  private readonly engine: SocketEngine;
  private socketState = SocketState.UnconnectedState;
  private socketError = SocketError.UnknownSocketError;
  /** Incremented on every connect attempt and reset, so late callbacks of old ones are ignored. */
  private generation = 0;
  private emittingReadyRead = false;
  private emittingBytesWritten = false;
  /** disconnectFromHost was called while connecting: close once connected. */
  private pendingClose = false;
  /** abort() was called (until the next connection): close without ClosingState or draining. */
  private aborting = false;
  /** close() was called (until the next connection): the buffers go once the connection has. */
  private closeCalled = false;
  private peerNameText = '';
  private localAddr = new QHostAddress();
  private localPortNumber = 0;
  private peerAddr = new QHostAddress();
  private peerPortNumber = 0;
  /** Idle ms before the first keepalive probe; 0 = the system's (setKeepAliveIdleTime). */
  private keepAliveIdleMs = 0;
  /** The proxy set with `setProxy` (DefaultProxy: the application's setting). */
  private socketProxy = new QNetworkProxy(ProxyType.DefaultProxy);
  /** PauseMode flags set with `setPauseMode`. */
  private pauseModes: PauseModes = PauseMode.PauseNever;
  private tag = '';

  /**
   * `createEngine` makes the socket engine under this socket; a TCP one unless given (what
   * QTcpSocket and any other stream socket use).
   */
  protected constructor(
    private readonly type: SocketType,
    createEngine: (host: SocketEngineHost) => SocketEngine = (host) => new TcpConnectEngine(host),
  ) {
    super();
    this.engine = createEngine(this.engineHost());
  }

  // ---------------------------------------------------------------- connecting

  /**
   * Starts connecting to `host` (a name or an address) on `port`, opening the device in
   * `mode`. Signals follow Qt's order: stateChanged(HostLookupState),
   * stateChanged(ConnectingState), hostFound, stateChanged(ConnectedState), connected.
   * A failure ends in stateChanged(UnconnectedState) then errorOccurred. Each address of a
   * name is tried in turn, each for at most 30 s (Qt's connect timeout). A UDP socket
   * connects to the first address: `write()` and `read()` then exchange datagrams with that
   * peer only (the kernel drops datagrams from anyone else), and a bound one keeps its local
   * address and port.
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
    checkPort(port, 'connectToHost');
    if (!this.engine.prepareConnect(hostName, port)) return;
    this.peerAddr = new QHostAddress();
    this.peerPortNumber = 0;
    // A bound socket keeps its local end, also after a failed attempt (as in Qt).
    if (s !== SocketState.BoundState && !this.engine.hasBinding?.()) {
      this.localAddr = new QHostAddress();
      this.localPortNumber = 0;
    }
    const generation = this.beginSession(mode, hostName);
    // Open, but with no channels until the connection is up (as in Qt).
    this.setReadChannelCount(0);
    this.setWriteChannelCount(0);
    this.setStateAndEmit(SocketState.HostLookupState);
    if (!this.isCurrent(generation, SocketState.HostLookupState)) return;

    const literal = new QHostAddress(hostName);
    if (!literal.isNull()) {
      this.connectToAddresses([literal], protocol);
      return;
    }
    if (this.engine.proxyResolvesNames?.()) {
      // The proxy resolves the name: no local lookup, so no hostFound (as in Qt).
      this.setStateAndEmit(SocketState.ConnectingState);
      if (!this.isCurrent(generation, SocketState.ConnectingState)) return;
      this.engine.connectToName?.(domainToASCII(hostName) || hostName);
      return;
    }
    dns.lookup(hostName, { all: true }, (err, addresses) => {
      if (!this.isCurrent(generation, SocketState.HostLookupState)) return;
      const found = err ? [] : addresses.map((a) => new QHostAddress(a.address));
      this.connectToAddresses(found, protocol);
    });
  }

  /**
   * Closes the connection once pending writes are written: stateChanged(ClosingState),
   * then (after the last `bytesWritten`) stateChanged(UnconnectedState),
   * readChannelFinished and disconnected (also for a UDP socket that was only bound, as in
   * Qt). Called while connecting, it closes as soon as the connection is up. The device
   * stays open (use `close()`).
   */
  disconnectFromHost(): void {
    const s = this.socketState;
    if (s === SocketState.UnconnectedState) return;
    if (
      !this.aborting &&
      (s === SocketState.ConnectingState || s === SocketState.HostLookupState)
    ) {
      this.pendingClose = true;
      return;
    }
    this.engine.stopReading?.();
    if (!this.aborting) {
      if (s !== SocketState.ClosingState) {
        this.setStateAndEmit(SocketState.ClosingState);
        if (this.socketState !== SocketState.ClosingState) return;
      }
      if (this.engine.drainBeforeClose?.()) return;
    }
    const previous = this.socketState;
    this.resetSocketLayer();
    this.setStateAndEmit(SocketState.UnconnectedState);
    this.readChannelFinished.emit();
    if (previous === SocketState.ConnectedState || previous === SocketState.ClosingState) {
      this.disconnected.emit();
    }
    // Nothing can be written any more; what was received stays readable (Qt).
    this.setWriteChannelCount(0);
    this.clearAddresses();
    if (this.closeCalled) {
      this.buffer.clear();
      this.engine.discardWrites();
    }
  }

  /**
   * Drops unwritten data and closes at once (synchronously), without ClosingState:
   * aboutToClose, stateChanged(UnconnectedState), readChannelFinished, disconnected.
   */
  abort(): void {
    this.engine.discardWrites();
    if (this.socketState === SocketState.UnconnectedState) {
      this.engine.closeUnconnected?.();
      return;
    }
    this.aborting = true;
    this.close();
  }

  /**
   * Closes the device (aboutToClose; unread data is dropped) and then the connection, as
   * `disconnectFromHost` does: pending writes are still written first. A UDP socket's
   * automatic bind still in flight is abandoned.
   */
  override close(): void {
    super.close();
    if (this.socketState !== SocketState.UnconnectedState) {
      this.closeCalled = true;
      this.disconnectFromHost();
    }
    this.clearAddresses();
    if (this.socketState === SocketState.UnconnectedState) this.engine.closeUnconnected?.();
  }

  /**
   * Hands buffered writes to the operating system now instead of on the next tick. True if
   * anything was handed over (never for UDP, which does not buffer).
   */
  flush(): boolean {
    return this.engine.flush?.() ?? false;
  }

  /**
   * Binds to `address` (Any when omitted, the IPv4 any-address when null; text must be an
   * address, not a host name) and `port` (0 = any) and enters BoundState: Qt's
   * `bind(port?, mode?)` and `bind(address, port?, mode?)`. `mode`: BindFlag values; as Qt on Linux, ShareAddress or
   * ReuseAddressHint set SO_REUSEADDR, which both sockets need to share a port.
   * TCP (a boolean): binds the local end of the next connection. An address not on this
   * host fails with SocketAddressNotAvailableError, a port bound by another socket of this
   * process that may not share it with AddressInUseError, as in Qt; a port taken elsewhere
   * is reported by `connectToHost` (Node binds a TCP client only when it connects).
   * UDP (a Promise, Node binds asynchronously): resolves true once bound, after
   * stateChanged(BoundState), `localAddress()` and `localPort()` set; false after
   * errorOccurred: AddressInUseError, SocketAccessError (a privileged port),
   * SocketAddressNotAvailableError (an address not on this host).
   */
  bind(port?: number, mode?: BindMode): BindResult;
  bind(address: BindAddress, port?: number, mode?: BindMode): BindResult;
  bind(...args: [(number | BindAddress)?, number?, BindMode?]): BindResult {
    const { address, port, mode } = bindRequest(args);
    return this.engine.bind(address, port, mode) as BindResult;
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

  /** TcpSocket for QTcpSocket, UdpSocket for QUdpSocket. */
  socketType(): SocketType {
    return this.type;
  }

  /**
   * As Qt: while there is an operating-system socket, whether it can be used (for UDP:
   * whether it is bound or connected); otherwise `isOpen()` (so a socket whose connection
   * ended or failed, still open as a device, is valid, as in Qt 5.15).
   */
  isValid(): boolean {
    return this.engine.isValid() ?? this.isOpen();
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
   * The operating-system descriptor, or -1 when there is none (for UDP: until bound or
   * connected). Node reads it from its internal handle; on Windows it is always -1.
   */
  socketDescriptor(): number {
    return this.engine.descriptor();
  }

  /**
   * Adopts an existing connection: an accepted connection from QTcpServer's
   * `incomingConnection`, or a descriptor number of a connected TCP socket (for example one
   * inherited from a parent process). Enters `state` (default ConnectedState) and opens
   * in `mode`. Returns false, with UnsupportedSocketOperationError, if it cannot be used
   * (always for QUdpSocket: Node cannot adopt a UDP descriptor).
   */
  setSocketDescriptor(
    descriptor: number | NativeSocketHandle,
    state: SocketState = SocketState.ConnectedState,
    mode: OpenMode = OpenModeFlag.ReadWrite,
  ): boolean {
    return this.engine.adopt(descriptor, state, mode);
  }

  // ---------------------------------------------------------------- reading and writing

  /**
   * Bytes that can be read now; for UDP, the size of the next datagram (what one `read()`
   * returns at most), as Linux's FIONREAD.
   */
  override bytesAvailable(): number {
    return super.bytesAvailable() + (this.engine.readableBeyondBuffer?.() ?? 0);
  }

  /**
   * Bytes written and not yet handed to the operating system (own buffer plus Node's); for
   * UDP, which does not buffer, the datagrams written while the socket is still connecting.
   */
  override bytesToWrite(): number {
    return this.engine.bytesToWrite();
  }

  /**
   * The read buffer's limit in bytes; 0 means unbounded (the default). For UDP: the bound
   * of the pending datagrams, each counted as its payload plus 256, default 256 KiB (Qt's
   * readBufferSize does nothing for UDP; the kernel's receive buffer is its bound).
   */
  readBufferSize(): number {
    return this.engine.readBufferSize();
  }

  /**
   * Limits the read buffer to `size` bytes (0 = unbounded). When the buffer is full the
   * socket stops reading from the kernel, and resumes when the application reads or the
   * limit grows; `bytesAvailable()` never exceeds a non-zero limit. For UDP: the bound of
   * the pending datagrams; those already waiting stay, new ones are dropped while they do
   * not fit, and at least one is always kept.
   */
  setReadBufferSize(size: number): void {
    if (!Number.isInteger(size) || size < 0) {
      throw new RangeError(`setReadBufferSize: size must be a non-negative integer, got ${size}`);
    }
    this.engine.setReadBufferSize(size);
  }

  /**
   * Sets a socket option while there is an operating-system socket (in Qt too, options set
   * before connectToHost are ignored). TCP: LowDelayOption (TCP_NODELAY) and
   * KeepAliveOption (SO_KEEPALIVE); Node cannot set TypeOfServiceOption or the buffer sizes
   * on a TCP socket. UDP (bound or connected): MulticastTtlOption (0-255),
   * MulticastLoopbackOption (0/1), ReceiveBufferSizeSocketOption and
   * SendBufferSizeSocketOption (bytes; Linux doubles the value). Other options are ignored
   * with a warning (see docs/qt-differences.md).
   */
  setSocketOption(option: SocketOption, value: number | boolean): void {
    this.engine.setOption(option, typeof value === 'boolean' ? (value ? 1 : 0) : value);
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
    this.engine.setKeepAliveIdle?.(msecs);
  }

  /** The idle time set with `setKeepAliveIdleTime` (0 = the system's). */
  keepAliveIdleTime(): number {
    return this.keepAliveIdleMs;
  }

  /**
   * The option's value; undefined when there is no operating-system socket (Qt's invalid
   * QVariant); -1 for options Node cannot read (TypeOfService, buffer sizes of a TCP
   * socket, path MTU). A UDP socket's multicast options read back the value last set
   * (Linux's defaults, 1 and 1, before), as Node cannot read them.
   */
  socketOption(option: SocketOption): number | undefined {
    return this.engine.option(option);
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

  /**
   * Qt's protocol tag (Qt 5.13): a name for the protocol spoken over this socket, which
   * Qt's proxy factories may look at. Only stored here; "" by default.
   */
  protocolTag(): string {
    return this.tag;
  }

  /** Sets the protocol tag (see `protocolTag`). */
  setProtocolTag(tag: string): void {
    this.tag = tag;
  }

  // ---------------------------------------------------------------- pausing

  /** The PauseMode flags set with `setPauseMode`; PauseNever by default. */
  pauseMode(): PauseModes {
    return this.pauseModes;
  }

  /**
   * When the socket pauses, as PauseMode flags; set it before connecting. The only pause
   * is QSslSocket's PauseOnSslErrors: on verification errors that are not ignored, the
   * handshake stops after sslErrors (no error, the connection stays up, nothing is read or
   * written) until `resume()`.
   */
  setPauseMode(mode: PauseModes): void {
    this.pauseModes = mode;
  }

  /**
   * Continues a paused socket (see `setPauseMode`); does nothing on one that is not paused
   * (Qt 6; Qt 5.15 stops a plain socket's reading when it is resumed without a pause).
   */
  resume(): void {
    // QAbstractSocket itself never pauses; QSslSocket overrides this.
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
    return waitOn(
      msecs,
      (settle) => [this.connected.connect(() => settle(true)), this.whenUnconnected(settle, false)],
      () => {
        const now = this.socketState;
        if (now === SocketState.HostLookupState || now === SocketState.ConnectingState) {
          this.setError(SocketError.SocketTimeoutError, ErrorText.SocketOperationTimeout);
          this.resetSocketLayer();
          this.setStateAndEmit(SocketState.UnconnectedState);
        }
      },
    );
  }

  /**
   * Resolves true when new data has been buffered (for UDP: at once if a datagram is
   * waiting, else when one arrives, readyRead being emitted first if it is due), false if
   * the connection ends or `msecs` pass. A timeout emits SocketTimeoutError ("Network
   * operation timed out") and leaves the socket open (a UDP socket stays bound).
   */
  override async waitForReadyRead(msecs = 30000): Promise<boolean> {
    const s = this.socketState;
    if (s === SocketState.UnconnectedState || s === SocketState.ClosingState) return false;
    const start = Date.now();
    if (isConnecting(s) && !(await this.waitForConnected(msecs))) return false;
    if (this.engine.announceReadable?.()) return true;
    return this.waitOrTimeOut(timeLeft(msecs, start), (settle) => [
      this.readActivity.connect(() => {
        this.engine.announceReadable?.();
        settle(true);
      }),
      this.whenUnconnected(settle, false),
    ]);
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
    const pending = (): boolean => this.engine.writesPending?.() ?? false;
    if (!pending()) return false;
    const start = Date.now();
    if (isConnecting(this.socketState)) {
      // Data written before the connection goes out as soon as it is up, possibly before
      // this continuation runs: count a bytesWritten emitted meanwhile.
      let written = false;
      const off = this.bytesWritten.connect(() => (written = true));
      const ok = await this.waitForConnected(msecs);
      off();
      if (!ok) return false;
      if (written) return true;
    }
    if (!pending()) return false;
    this.engine.flush?.();
    return this.waitOrTimeOut(timeLeft(msecs, start), (settle) => [
      this.bytesWritten.connect(() => settle(true)),
      this.whenUnconnected(settle, false),
    ]);
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
    if (isConnecting(this.socketState) && !(await this.waitForConnected(msecs))) return false;
    if (this.state() === SocketState.UnconnectedState) return true;
    return this.waitOrTimeOut(timeLeft(msecs, start), (settle) => [
      this.whenUnconnected(settle, true),
    ]);
  }

  // ---------------------------------------------------------------- for subclasses

  /**
   * Sets what `state()` reports, and nothing else: no stateChanged, as in Qt (a subclass
   * that wants the signal emits it).
   */
  protected setSocketState(state: SocketState): void {
    this.socketState = state;
  }

  /**
   * Sets what `error()` reports, and nothing else: `errorString()` keeps its text (Qt's
   * `setErrorString` changes that) and errorOccurred is not emitted, as in Qt.
   */
  protected setSocketError(error: SocketError): void {
    this.socketError = error;
  }

  /** Sets the error and its text without emitting (`setSocketError` + `setErrorString`). */
  protected setError(error: SocketError, text: string): void {
    this.socketError = error;
    this.setErrorString(text);
  }

  /** Sets the error and its text, then emits errorOccurred. */
  protected setErrorAndEmit(error: SocketError, text: string): void {
    this.setError(error, text);
    this.errorOccurred.emit(error);
  }

  /** Changes the state and emits stateChanged: how the socket's own transitions are made. */
  protected setStateAndEmit(state: SocketState): void {
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
   * For QSslSocket: puts a protocol layer (TLS) over the connection (see
   * TcpConnectEngine.layerSocket): `layer` gets the current Node socket, paused, and returns
   * the socket that carries the connection from then on; signals, buffers and the state
   * machine carry on over it. Returns false when there is no connection (or no stream).
   */
  protected layerSocket(layer: (sock: net.Socket) => net.Socket): boolean {
    return this.engine instanceof TcpConnectEngine && this.engine.layerSocket(layer);
  }

  /**
   * While `held`, written data stays in the write buffer (counted by `bytesToWrite`) instead
   * of going to the connection; releasing it sends what waits on the next tick. QSslSocket
   * holds what is written before its handshake completes, so none of it leaves in clear.
   */
  protected setWritesHeld(held: boolean): void {
    if (this.engine instanceof TcpConnectEngine) this.engine.setWritesHeld(held);
  }

  /**
   * While `paused`, nothing is taken from the connection: received data waits in the
   * system (and TCP flow control holds the peer back). QSslSocket pauses this way on
   * verification errors with PauseOnSslErrors (Qt pauses the socket notifiers).
   */
  protected setReadingPaused(paused: boolean): void {
    if (this.engine instanceof TcpConnectEngine) this.engine.setReadingPaused(paused);
  }

  /** Drops the data waiting in the write buffer (QSslSocket, after a failed handshake). */
  protected discardPendingWrites(): void {
    this.engine.discardWrites();
  }

  /** Whether a connection handed to `setSocketDescriptor` is of this socket's kind. */
  protected acceptsNativeSocket(sock: net.Socket): boolean {
    // A TCP connection has IP addresses; a Unix-domain one does not.
    return !sock.destroyed && net.isIP(sock.remoteAddress ?? sock.localAddress ?? '') !== 0;
  }

  protected override readData(maxSize: number): Buffer | null {
    return this.engine.readData(maxSize);
  }

  protected override writeData(data: Buffer): number {
    return this.engine.writeData(data);
  }

  protected override bufferConsumed(): void {
    this.engine.bufferConsumed?.();
  }

  /**
   * What `skip` cannot take from the buffer (Qt 6's override): nothing more on a stream
   * socket, which buffers all it receives; -1 once the connection is gone.
   */
  protected override skipData(maxSize: number): number {
    if (this.socketState !== SocketState.ConnectedState) return -1;
    return this.type === SocketType.UdpSocket ? super.skipData(maxSize) : 0;
  }

  // ---------------------------------------------------------------- internals

  /** What the engine may do to this socket (see SocketEngineHost). */
  private engineHost(): SocketEngineHost {
    return {
      socket: this,
      buffer: this.buffer,
      generation: () => this.generation,
      setStateAndEmit: (state) => this.setStateAndEmit(state),
      setError: (error, text) => this.setError(error, text),
      setErrorAndEmit: (error, text) => this.setErrorAndEmit(error, text),
      setLocal: (address, port) => {
        this.localAddr = new QHostAddress(address);
        this.localPortNumber = port;
      },
      setPeer: (address, port) => {
        this.peerAddr = new QHostAddress(address);
        this.peerPortNumber = port;
      },
      resetSocketLayer: () => this.resetSocketLayer(),
      failConnect: (error, text) => this.failConnect(error, text),
      connectionEstablished: () => this.connectionEstablished(),
      beginSession: (mode, peerName) => {
        this.beginSession(mode, peerName);
      },
      readActivity: () => this.readActivity.emit(),
      emitReadyRead: () => this.emitReadyRead(),
      emittingReadyRead: () => this.emittingReadyRead,
      emitBytesWritten: (n) => this.emitBytesWritten(n),
      acceptsNativeSocket: (sock) => this.acceptsNativeSocket(sock),
    };
  }

  /** True while `generation` is the current connection and the state is still `state`. */
  private isCurrent(generation: number, state: SocketState): boolean {
    return generation === this.generation && this.socketState === state;
  }

  /**
   * A connection starts (connectToHost, or an adopted one): no error, the device open in
   * `mode`, no close or abort pending. Returns the new generation.
   */
  private beginSession(mode: OpenMode, peerName: string): number {
    this.peerNameText = peerName;
    this.aborting = false;
    this.closeCalled = false;
    this.pendingClose = false;
    this.socketError = SocketError.UnknownSocketError;
    this.open(mode);
    return ++this.generation;
  }

  /** The addresses of `candidates` of the wanted protocol are tried, after hostFound. */
  private connectToAddresses(candidates: QHostAddress[], protocol: NetworkLayerProtocol): void {
    const addresses = candidates.filter(
      (a) =>
        (protocol === NetworkLayerProtocol.AnyIPProtocol ||
          protocol === NetworkLayerProtocol.UnknownNetworkLayerProtocol ||
          a.protocol() === protocol) &&
        (this.engine.canReach?.(a) ?? true),
    );
    if (addresses.length === 0) {
      this.failConnect(SocketError.HostNotFoundError, ErrorText.HostNotFound);
      return;
    }
    const generation = this.generation;
    this.setStateAndEmit(SocketState.ConnectingState);
    if (!this.isCurrent(generation, SocketState.ConnectingState)) return;
    this.hostFound.emit();
    if (!this.isCurrent(generation, SocketState.ConnectingState)) return;
    this.engine.connectTo(addresses);
  }

  /** Ends a failed connect attempt: the socket layer goes, UnconnectedState, errorOccurred. */
  private failConnect(error: SocketError, text: string): void {
    this.resetSocketLayer();
    this.engine.connectFailed?.();
    this.setError(error, text);
    this.setStateAndEmit(SocketState.UnconnectedState);
    this.errorOccurred.emit(error);
  }

  /**
   * The engine has connected: ConnectedState and connected, then the close asked for while
   * connecting. True if the connection is still up and nobody asked to close it.
   */
  private connectionEstablished(): boolean {
    const generation = this.generation;
    this.setReadChannelCount(this.isReadable() ? 1 : 0);
    this.setWriteChannelCount(this.isWritable() ? 1 : 0);
    this.setStateAndEmit(SocketState.ConnectedState);
    if (!this.isCurrent(generation, SocketState.ConnectedState)) return false;
    this.connected.emit();
    if (!this.isCurrent(generation, SocketState.ConnectedState)) return false;
    if (this.pendingClose) {
      this.pendingClose = false;
      this.disconnectFromHost();
      return false;
    }
    return true;
  }

  private emitReadyRead(): void {
    // Qt does not re-emit readyRead from within a slot connected to it (channelReadyRead,
    // which follows it, may recurse), nor emit it for a channel that is not the current one.
    if (!this.emittingReadyRead && this.currentReadChannel() === 0) {
      this.emittingReadyRead = true;
      try {
        this.readyRead.emit();
      } finally {
        this.emittingReadyRead = false;
      }
    }
    this.channelReadyRead.emit(0);
  }

  private emitBytesWritten(n: number): void {
    // Likewise bytesWritten, then channelBytesWritten.
    if (!this.emittingBytesWritten && this.currentWriteChannel() === 0) {
      this.emittingBytesWritten = true;
      try {
        this.bytesWritten.emit(n);
      } finally {
        this.emittingBytesWritten = false;
      }
    }
    this.channelBytesWritten.emit(0, n);
  }

  /** Drops the operating-system socket (Qt's `resetSocketLayer`); late callbacks are ignored. */
  private resetSocketLayer(): void {
    this.generation++;
    this.engine.reset();
  }

  private clearAddresses(): void {
    this.localAddr = new QHostAddress();
    this.localPortNumber = 0;
    this.peerAddr = new QHostAddress();
    this.peerPortNumber = 0;
    // Qt keeps peerName() after the connection ends; only addresses and ports are cleared.
    this.engine.forgetBinding?.();
  }

  /** Connects a slot that settles a wait with `value` when the socket becomes unconnected. */
  private whenUnconnected(settle: Settle, value: boolean): () => void {
    return this.stateChanged.connect((st) => {
      if (st === SocketState.UnconnectedState) settle(value);
    });
  }

  /** A wait whose timeout emits SocketTimeoutError and leaves the socket as it is. */
  private waitOrTimeOut(
    msecs: number,
    watch: (settle: Settle) => Array<() => void>,
  ): Promise<boolean> {
    return waitOn(msecs, watch, () =>
      this.setErrorAndEmit(SocketError.SocketTimeoutError, ErrorText.NetworkTimeout),
    );
  }
}

/** True while a connection is being made (host lookup or connecting). */
function isConnecting(state: SocketState): boolean {
  return state === SocketState.HostLookupState || state === SocketState.ConnectingState;
}
