import * as dgram from 'node:dgram';
import * as dns from 'node:dns';
import * as os from 'node:os';

import { DatagramQueue } from './datagram-queue.js';
import { ErrorText, errnoCode, mapBindError, mapConnectError } from './native-errors.js';
import { nativeDatagramDescriptor, type NativeSocketHandle } from './native-handle.js';
import { OpenModeFlag, type OpenMode } from '../core/open-mode.js';
import { QAbstractSocket } from './qabstract-socket.js';
import { QHostAddress, SpecialAddress } from '../kernel/qhost-address.js';
import { type WritableData } from '../core/qiodevice.js';
import { qWarning } from '../core/qlogging.js';
import { QNetworkDatagram } from '../kernel/qnetwork-datagram.js';
import { Signal } from '../core/signal.js';
import {
  BindFlag,
  NetworkLayerProtocol,
  SocketError,
  SocketOption,
  SocketState,
  SocketType,
} from '../kernel/socket-enums.js';
import { waitOn, type Settle } from '../core/wait-on.js';

/** The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header). */
const MAX_IPV4_PAYLOAD = 65507;
/** The largest UDP payload over IPv6 without jumbograms: 65535 - 8 (UDP header). */
const MAX_IPV6_PAYLOAD = 65527;
/** Default bound of the pending datagrams, in bytes (payload + overhead each). */
const DEFAULT_READ_BUFFER_SIZE = 256 * 1024;

const NO_BYTES = Buffer.alloc(0);

/** What `readDatagram` returns: the payload (truncated to `maxSize`) and who sent it. */
export interface ReadDatagramResult {
  data: Buffer;
  host: QHostAddress;
  port: number;
}

/**
 * A UDP socket (Qt's QUdpSocket) over Node's `dgram`: QAbstractSocket with socketType()
 * UdpSocket, Qt's states, signals, error codes and texts.
 *
 * Use it as in Qt: `bind()` then `writeDatagram()` / `readDatagram()` (or
 * `receiveDatagram()`, which returns a QNetworkDatagram); or `connectToHost()` to a peer
 * and then `write()` / `read()`, one datagram per call. A socket that sends before being
 * bound is bound to Any on a system-chosen port, as in Qt.
 *
 * readyRead follows Qt's rule for datagrams: it is emitted when datagrams arrive, once for
 * all that arrived together, and not again until the application has read one (any of
 * `readDatagram`, `receiveDatagram`, `read`); if datagrams are still waiting after such a
 * read, it is emitted again on the next turn of the event loop.
 *
 * It extends QAbstractSocket as in Qt, so state, errors, addresses, signals and the
 * QIODevice calls are the base's; every call that touches the operating-system socket is
 * overridden here (the base's TCP connection stays unused).
 *
 * Differences Node forces (docs/qt-differences.md, "QUdpSocket"):
 * - `bind()` returns `Promise<boolean>`: Node binds asynchronously. stateChanged(BoundState)
 *   is emitted before the Promise resolves, as Qt emits it before bind() returns. The
 *   automatic bind of a first `writeDatagram` on an unbound socket completes after the call
 *   returns, so its stateChanged(BoundState) comes after that datagram's bytesWritten.
 * - `connectToHost()` reaches ConnectedState on a later turn of the event loop, also for an
 *   address (Qt connects a UDP socket at once); writes made meanwhile are sent once connected.
 * - Node reads every datagram from the kernel at once, so pending datagrams are bounded here
 *   (`setReadBufferSize`, default 256 KiB, each datagram counted as its payload plus 256
 *   bytes): one that does not fit is dropped and counted by `droppedDatagramCount()`. Qt
 *   leaves them in the kernel, whose receive buffer drops the same way.
 * - A received QNetworkDatagram has no hop limit (-1) or interface index (0), and its
 *   destination only when the socket is bound to one specific address; Node does not report
 *   them. Sending ignores a datagram's sender, hop limit and interface index.
 * - Errors of a send (other than a datagram too large, a bad address or a missing port,
 *   which are checked first, as the kernel would refuse them at once) come after
 *   `writeDatagram` returned, through errorOccurred.
 * - Node refuses a destination other than the peer on a connected socket: such a
 *   `writeDatagram` fails with NetworkError (Linux would send it).
 * - An ICMP port unreachable from a connected peer is reported as in Qt (readyRead, then
 *   ConnectionRefusedError from the next read), but `hasPendingDatagrams()` does not
 *   swallow it as Qt 5.15's kernel peek does.
 * - Proxies are not used (Qt can send UDP through a SOCKS5 proxy).
 */
export class QUdpSocket extends QAbstractSocket {
  private udp: dgram.Socket | null = null;
  /** Address family of `udp`: 4 (udp4) or 6 (udp6). */
  private family: 4 | 6 = 4;
  /** The udp6 socket takes IPv6 only (bound to an IPv6 address, or to AnyIPv6). */
  private ipv6Only = false;
  /** `udp` is bound (or connected) and usable. */
  private ready = false;
  /** The address and port the bind in flight asked for; null when none is in flight. */
  private bindRequest: { any: boolean; port: number; reuseAddr: boolean } | null = null;
  /** Resolves the Promise of the `bind()` in flight. */
  private bindSettle: Settle | null = null;
  /** The destination of received datagrams when the socket is bound to one address. */
  private boundDestination: QHostAddress | null = null;
  private readonly pending = new DatagramQueue(DEFAULT_READ_BUFFER_SIZE);
  /** Qt's hasPendingData: readyRead was emitted and the application has not read since. */
  private notified = false;
  private readyReadTimer: NodeJS.Immediate | null = null;
  private inReadyRead = false;
  private inBytesWritten = false;
  /** An ICMP port unreachable reported for the connected peer, not yet reported to the app. */
  private refused = false;
  /** Incremented on every connect attempt and reset, so late callbacks of old ones are ignored. */
  private attempt = 0;
  private connectPort = 0;
  private peerTarget: QHostAddress | null = null;
  /** Datagrams written while Node is still connecting the socket. */
  private preConnectWrites: Buffer[] = [];
  private closeWhenConnected = false;
  private aborting = false;
  /** Node cannot read the multicast options back: the values set (Linux defaults first). */
  private multicastTtl = 1;
  private multicastLoopback = 1;
  private multicastInterfaceName = '';
  /** A datagram (or a refusal) arrived: what waitForReadyRead waits for. */
  private readonly arrived = new Signal<[]>('datagramArrived');

  constructor() {
    super(SocketType.UdpSocket);
  }

  // ---------------------------------------------------------------- binding and connecting

  /**
   * Binds to `address` (Any by default: IPv4 and IPv6; a null address binds Any, as in
   * Qt) and `port` (0 = a free port). Resolves true once bound, after
   * stateChanged(BoundState); `localAddress()` and `localPort()` then tell where. On failure
   * it resolves false after errorOccurred: AddressInUseError ("The bound address is already
   * in use"), SocketAccessError for a privileged port ("The address is protected"),
   * SocketAddressNotAvailableError for an address not on this host. `mode`: BindFlag values;
   * ShareAddress or ReuseAddressHint set SO_REUSEADDR (both sockets need it), as Qt does on
   * Unix. A string must be an address (host names are not resolved).
   */
  override bind(
    address: QHostAddress | SpecialAddress | string = SpecialAddress.Any,
    port = 0,
    mode: number = BindFlag.DefaultForPlatform,
  ): Promise<boolean> {
    checkPort(port, 'bind');
    if (this.state() !== SocketState.UnconnectedState || this.udp) {
      qWarning('QNativeSocketEngine::bind() was not called in QAbstractSocket::UnconnectedState');
      this.setErrorAndEmit(SocketError.UnknownSocketError, ErrorText.Unknown);
      return Promise.resolve(false);
    }
    const addr = new QHostAddress(address);
    if (typeof address === 'string' && addr.isNull()) {
      this.setErrorAndEmit(
        SocketError.SocketAddressNotAvailableError,
        ErrorText.AddressNotAvailable,
      );
      return Promise.resolve(false);
    }
    return new Promise<boolean>((resolve) => {
      this.bindSettle = resolve;
      this.startBind(addr.isNull() ? new QHostAddress(SpecialAddress.Any) : addr, port, mode);
    });
  }

  /**
   * Connects the socket to `host` (an address or a name) and `port`, opening it in `mode`:
   * `write()` and `read()` then exchange datagrams with that peer only (the kernel drops
   * datagrams from anyone else). Signals: stateChanged(HostLookupState),
   * stateChanged(ConnectingState), hostFound, stateChanged(ConnectedState), connected. A bound
   * socket keeps its local address and port.
   */
  override connectToHost(
    host: string | QHostAddress,
    port: number,
    mode: OpenMode = OpenModeFlag.ReadWrite,
    protocol: NetworkLayerProtocol = NetworkLayerProtocol.AnyIPProtocol,
  ): void {
    const hostName = host instanceof QHostAddress ? host.toString() : host;
    const s = this.state();
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
    const attempt = ++this.attempt;
    this.connectPort = port;
    this.closeWhenConnected = false;
    this.preConnectWrites = [];
    this.open(mode);
    this.setError(SocketError.UnknownSocketError, '');
    this.setPeerName(hostName);
    this.setPeerAddress(new QHostAddress());
    this.setPeerPort(0);
    if (!this.udp) {
      this.setLocalAddress(new QHostAddress());
      this.setLocalPort(0);
    }
    this.setState(SocketState.HostLookupState);
    if (attempt !== this.attempt || this.state() !== SocketState.HostLookupState) return;
    const literal = new QHostAddress(hostName);
    if (!literal.isNull()) {
      this.connectToTarget(attempt, [literal], protocol);
      return;
    }
    dns.lookup(hostName, { all: true }, (err, addresses) => {
      if (attempt !== this.attempt || this.state() !== SocketState.HostLookupState) return;
      const found = err ? [] : addresses.map((a) => new QHostAddress(a.address));
      this.connectToTarget(attempt, found, protocol);
    });
  }

  /**
   * Closes the socket: stateChanged(ClosingState), stateChanged(UnconnectedState),
   * readChannelFinished, disconnected (also for a socket that was only bound, as in Qt).
   * Datagrams not read yet are dropped. The device stays open (use `close()`).
   */
  override disconnectFromHost(): void {
    const s = this.state();
    if (s === SocketState.UnconnectedState) return;
    if (
      !this.aborting &&
      (s === SocketState.HostLookupState || s === SocketState.ConnectingState)
    ) {
      this.closeWhenConnected = true;
      return;
    }
    if (!this.aborting && s !== SocketState.ClosingState) {
      this.setState(SocketState.ClosingState);
      if (this.state() !== SocketState.ClosingState) return;
    }
    const previous = this.state();
    this.dropSocket();
    this.setState(SocketState.UnconnectedState);
    this.readChannelFinished.emit();
    if (previous === SocketState.ConnectedState || previous === SocketState.ClosingState) {
      this.disconnected.emit();
    }
    this.clearEndpoints();
  }

  /**
   * Closes the device (aboutToClose when it was open) and the socket, as
   * `disconnectFromHost` does; an automatic bind still in flight is abandoned.
   */
  override close(): void {
    super.close();
    if (this.state() === SocketState.UnconnectedState && this.udp) this.dropSocket();
  }

  /**
   * Closes at once, without ClosingState: stateChanged(UnconnectedState),
   * readChannelFinished, and disconnected if it was connected.
   */
  override abort(): void {
    this.preConnectWrites = [];
    if (this.state() === SocketState.UnconnectedState) {
      if (this.udp) this.dropSocket();
      return;
    }
    this.aborting = true;
    try {
      this.close();
    } finally {
      this.aborting = false;
    }
  }

  /** Node cannot adopt a UDP descriptor: always false, with UnsupportedSocketOperationError. */
  override setSocketDescriptor(
    _descriptor: number | NativeSocketHandle,
    _state: SocketState = SocketState.ConnectedState,
    _mode: OpenMode = OpenModeFlag.ReadWrite,
  ): boolean {
    this.setError(SocketError.UnsupportedSocketOperationError, ErrorText.UnsupportedOperation);
    return false;
  }

  /** The operating-system descriptor while bound or connected; -1 otherwise (and on Windows). */
  override socketDescriptor(): number {
    return this.ready ? nativeDatagramDescriptor(this.udp) : -1;
  }

  /** As Qt: while there is a socket, whether it is bound or connected; otherwise `isOpen()`. */
  override isValid(): boolean {
    return this.udp !== null ? this.ready : this.isOpen();
  }

  // ---------------------------------------------------------------- datagrams

  /** True if at least one datagram is waiting to be read. */
  hasPendingDatagrams(): boolean {
    if (!this.checkBound('hasPendingDatagrams')) return false;
    return this.pending.length > 0;
  }

  /** The size of the first pending datagram in bytes, or -1 when none is waiting. */
  pendingDatagramSize(): number {
    if (!this.checkBound('pendingDatagramSize')) return -1;
    return this.pending.peek()?.data.length ?? -1;
  }

  /**
   * Reads the next datagram: at most `maxSize` bytes of it (the rest of that datagram is
   * lost, as in Qt; 0 discards it), with the sender's address and port. Null when none is
   * waiting (TemporaryError, "No datagram available for reading"), when a connected socket's
   * peer refused an earlier datagram (ConnectionRefusedError, "Connection refused", as Qt
   * reports an ICMP port unreachable), or when the socket is not bound (a warning).
   */
  readDatagram(maxSize: number): ReadDatagramResult | null {
    if (!Number.isInteger(maxSize) || maxSize < 0) {
      throw new RangeError(
        `readDatagram: maxSize must be a non-negative integer, got ${String(maxSize)}`,
      );
    }
    if (!this.checkBound('readDatagram')) return null;
    const d = this.pending.shift();
    this.afterRead();
    if (!d) {
      if (!this.reportRefusal()) {
        this.setErrorAndEmit(SocketError.TemporaryError, ErrorText.NoDatagram);
      }
      return null;
    }
    return { data: truncate(d.data, maxSize), host: new QHostAddress(d.address), port: d.port };
  }

  /**
   * Reads the next datagram with its metadata: payload (at most `maxSize` bytes; -1 = all
   * of it), sender address and port, destination when known. An invalid (null) datagram
   * when none is waiting; with a `maxSize` of 0 or more that also sets TemporaryError, as
   * `readDatagram` does. A refusal by a connected peer is reported as by `readDatagram`.
   */
  receiveDatagram(maxSize = -1): QNetworkDatagram {
    if (!Number.isInteger(maxSize)) {
      throw new RangeError(`receiveDatagram: maxSize must be an integer, got ${String(maxSize)}`);
    }
    if (!this.checkBound('receiveDatagram')) return new QNetworkDatagram();
    const d = this.pending.shift();
    if (!d) {
      if (maxSize >= 0 || this.refused) {
        this.afterRead();
        if (!this.reportRefusal()) {
          this.setErrorAndEmit(SocketError.TemporaryError, ErrorText.NoDatagram);
        }
      }
      return new QNetworkDatagram();
    }
    this.afterRead();
    const datagram = new QNetworkDatagram(maxSize >= 0 ? truncate(d.data, maxSize) : d.data);
    datagram.setSender(new QHostAddress(d.address), d.port);
    if (this.boundDestination) datagram.setDestination(this.boundDestination, this.localPort());
    return datagram;
  }

  /**
   * Sends one datagram; returns its size, or -1 with the error set and errorOccurred
   * emitted. `data` is bytes (a string is sent as UTF-8) for `host`:`port`, or a
   * QNetworkDatagram (its destination, or the connected peer when it has none).
   * bytesWritten(size) is emitted before it returns, as in Qt. Failures: a payload over
   * 65507 bytes (IPv4) or 65527 (IPv6): DatagramTooLargeError, "Datagram was too large to
   * send"; no address, port 0, or an address of the other family than the socket's:
   * NetworkError, "Unable to send a message". An unbound socket is first bound to Any.
   */
  writeDatagram(
    data: WritableData | QNetworkDatagram,
    host?: QHostAddress | string,
    port?: number,
  ): number {
    let payload: Buffer;
    let target: QHostAddress;
    let targetPort: number;
    if (data instanceof QNetworkDatagram) {
      payload = data.data();
      target = data.destinationAddress();
      targetPort = Math.max(0, data.destinationPort());
    } else {
      payload = toBuffer(data);
      target = host === undefined ? new QHostAddress() : new QHostAddress(host);
      targetPort = checkPort(port ?? 0, 'writeDatagram');
    }
    const s = this.state();
    if (s === SocketState.ConnectedState || s === SocketState.ConnectingState) {
      const peer = this.peerTarget;
      const toPeer =
        peer !== null &&
        (target.isNull() || (target.isEqual(peer) && targetPort === this.connectPort));
      if (!toPeer) return this.sendFailed(SocketError.NetworkError, ErrorText.SendDatagram);
      if (payload.length > maxPayload(this.nodeAddressFor(peer) ?? '')) {
        return this.sendFailed(SocketError.DatagramTooLargeError, ErrorText.DatagramTooLarge);
      }
      this.sendToPeer(payload);
      this.bytesWritten.emit(payload.length);
      return payload.length;
    }
    if (s === SocketState.UnconnectedState && !this.udp) {
      this.startBind(new QHostAddress(SpecialAddress.Any), 0, BindFlag.DefaultForPlatform);
    }
    const sock = this.udp;
    const nodeAddress = target.isNull() ? null : this.nodeAddressFor(target);
    if (!sock || nodeAddress === null || targetPort === 0) {
      return this.sendFailed(SocketError.NetworkError, ErrorText.SendDatagram);
    }
    if (payload.length > maxPayload(nodeAddress)) {
      return this.sendFailed(SocketError.DatagramTooLargeError, ErrorText.DatagramTooLarge);
    }
    try {
      sock.send(payload, targetPort, nodeAddress, (err) => {
        if (err && this.udp === sock) this.onSendError(err);
      });
    } catch {
      return this.sendFailed(SocketError.NetworkError, ErrorText.SendDatagram);
    }
    this.bytesWritten.emit(payload.length);
    return payload.length;
  }

  /**
   * Port extension: the number of datagrams waiting to be read (Qt has no such call; its
   * datagrams wait in the kernel).
   */
  pendingDatagramCount(): number {
    return this.pending.length;
  }

  /**
   * Port extension: datagrams dropped because the pending ones filled `readBufferSize`,
   * since the socket was last bound (by `bind`, by a first `writeDatagram`, or by
   * `connectToHost` on an unbound socket). Qt's kernel buffer drops silently.
   */
  droppedDatagramCount(): number {
    return this.pending.dropped;
  }

  // ---------------------------------------------------------------- multicast

  /**
   * Joins the multicast group `groupAddress` on `iface` (an interface name such as `'lo'`,
   * or one of its addresses; the system's choice when omitted). The socket must be bound
   * (to AnyIPv4 for an IPv4 group, as Qt requires). True on success; false otherwise,
   * without changing `error()` (as in Qt).
   */
  joinMulticastGroup(groupAddress: QHostAddress | string, iface?: string | QHostAddress): boolean {
    if (!this.checkBound('joinMulticastGroup')) return false;
    return this.changeMembership(true, groupAddress, iface);
  }

  /** Leaves a group joined with `joinMulticastGroup` (same `iface`). True on success. */
  leaveMulticastGroup(groupAddress: QHostAddress | string, iface?: string | QHostAddress): boolean {
    if (!this.checkBound('leaveMulticastGroup')) return false;
    return this.changeMembership(false, groupAddress, iface);
  }

  /**
   * Sets the interface outgoing multicast datagrams leave by (IP_MULTICAST_IF /
   * IPV6_MULTICAST_IF): a name such as `'lo'`, or one of its addresses. Needs a bound socket.
   */
  setMulticastInterface(iface: string | QHostAddress): void {
    if (!this.ready || !this.udp) {
      qWarning(
        'QUdpSocket::setMulticastInterface() called on a QUdpSocket when not in QUdpSocket::BoundState',
      );
      return;
    }
    const resolved = resolveInterface(iface, this.family);
    if (!resolved) return;
    try {
      this.udp.setMulticastInterface(resolved.node);
      this.multicastInterfaceName = resolved.name;
    } catch {
      // The system refused it; Qt ignores a failed setsockopt here too.
    }
  }

  /** The name of the interface set with `setMulticastInterface`; '' when none was set. */
  multicastInterface(): string {
    if (!this.checkBound('multicastInterface')) return '';
    return this.multicastInterfaceName;
  }

  // ---------------------------------------------------------------- options and buffers

  /**
   * Sets an option while the socket is bound or connected (ignored before, as in Qt):
   * MulticastTtlOption (0-255), MulticastLoopbackOption (0/1), ReceiveBufferSizeSocketOption
   * and SendBufferSizeSocketOption (bytes; Linux doubles the value). Others are not
   * available on a Node UDP socket: a warning, nothing set.
   */
  override setSocketOption(option: SocketOption, value: number | boolean): void {
    const sock = this.udp;
    if (!sock || !this.ready) return;
    const n = typeof value === 'boolean' ? (value ? 1 : 0) : value;
    try {
      switch (option) {
        case SocketOption.MulticastTtlOption:
          sock.setMulticastTTL(n);
          this.multicastTtl = n;
          break;
        case SocketOption.MulticastLoopbackOption:
          sock.setMulticastLoopback(n !== 0);
          this.multicastLoopback = n !== 0 ? 1 : 0;
          break;
        case SocketOption.ReceiveBufferSizeSocketOption:
          sock.setRecvBufferSize(n);
          break;
        case SocketOption.SendBufferSizeSocketOption:
          sock.setSendBufferSize(n);
          break;
        default:
          qWarning(
            `QAbstractSocket::setSocketOption: ${SocketOption[option] ?? option} is not supported by Node.js on this socket`,
          );
      }
    } catch {
      // The system refused the value; Qt ignores a failed setsockopt as well.
    }
  }

  /**
   * The option's value; undefined before the socket is bound or connected. The multicast
   * options read back the value last set (Linux's defaults, 1 and 1, before), as Node cannot
   * read them; the buffer sizes are the kernel's; other options read -1.
   */
  override socketOption(option: SocketOption): number | undefined {
    const sock = this.udp;
    if (!sock || !this.ready) return undefined;
    try {
      switch (option) {
        case SocketOption.MulticastTtlOption:
          return this.multicastTtl;
        case SocketOption.MulticastLoopbackOption:
          return this.multicastLoopback;
        case SocketOption.ReceiveBufferSizeSocketOption:
          return sock.getRecvBufferSize();
        case SocketOption.SendBufferSizeSocketOption:
          return sock.getSendBufferSize();
        default:
          return -1;
      }
    } catch {
      return -1;
    }
  }

  /**
   * The bound of the pending datagrams in bytes, each counted as its payload plus 256;
   * 0 = unbounded. Default 256 KiB. (Qt's readBufferSize does nothing for UDP; the kernel's
   * receive buffer is its bound.)
   */
  override readBufferSize(): number {
    return this.pending.maxBytes;
  }

  /**
   * Sets the bound of the pending datagrams (bytes; 0 = unbounded). Datagrams already
   * waiting stay; new ones are dropped while they do not fit. At least one is always kept.
   */
  override setReadBufferSize(size: number): void {
    if (!Number.isInteger(size) || size < 0) {
      throw new RangeError(`setReadBufferSize: size must be a non-negative integer, got ${size}`);
    }
    this.pending.setMaxBytes(size);
  }

  /** The size of the next datagram (what one `read()` returns at most), as Linux's FIONREAD. */
  override bytesAvailable(): number {
    return this.buffer.size + (this.pending.peek()?.data.length ?? 0);
  }

  /** Datagrams written while the socket is still connecting; 0 otherwise (UDP is unbuffered). */
  override bytesToWrite(): number {
    return this.preConnectWrites.reduce((n, b) => n + b.length, 0);
  }

  // ---------------------------------------------------------------- waiting

  /**
   * Resolves true once connected (at once if already), false if the attempt fails or
   * `msecs` pass (-1 = no limit); on timeout the attempt is abandoned with SocketTimeoutError.
   */
  override waitForConnected(msecs = 30000): Promise<boolean> {
    const s = this.state();
    if (s === SocketState.ConnectedState) return Promise.resolve(true);
    if (s !== SocketState.HostLookupState && s !== SocketState.ConnectingState) {
      return Promise.resolve(false);
    }
    return waitOn(
      msecs,
      (settle) => [
        this.connected.connect(() => settle(true)),
        this.stateChanged.connect((st) => {
          if (st === SocketState.UnconnectedState) settle(false);
        }),
      ],
      () => {
        const now = this.state();
        if (now === SocketState.HostLookupState || now === SocketState.ConnectingState) {
          this.setError(SocketError.SocketTimeoutError, ErrorText.SocketOperationTimeout);
          this.dropSocket();
          this.setState(SocketState.UnconnectedState);
        }
      },
    );
  }

  /**
   * Resolves true when a datagram is waiting: at once if one already is, else when one
   * arrives (readyRead is emitted first if it is due). False if the socket is not bound or
   * connected, closes, or `msecs` pass (SocketTimeoutError, "Network operation timed out";
   * the socket stays bound).
   */
  override async waitForReadyRead(msecs = 30000): Promise<boolean> {
    const s = this.state();
    if (s === SocketState.UnconnectedState || s === SocketState.ClosingState) return false;
    const start = Date.now();
    if (s === SocketState.HostLookupState || s === SocketState.ConnectingState) {
      if (!(await this.waitForConnected(msecs))) return false;
    }
    if (this.pending.length > 0 || this.refused) {
      this.emitDatagramsReady();
      return true;
    }
    const left = msecs < 0 ? -1 : Math.max(0, msecs - (Date.now() - start));
    return waitOn(
      left,
      (settle) => [
        this.arrived.connect(() => {
          this.emitDatagramsReady();
          settle(true);
        }),
        this.stateChanged.connect((st) => {
          if (st === SocketState.UnconnectedState) settle(false);
        }),
      ],
      () => this.setErrorAndEmit(SocketError.SocketTimeoutError, ErrorText.NetworkTimeout),
    );
  }

  // ---------------------------------------------------------------- QIODevice

  /** A connected socket's `read()`: the next datagram, truncated to `maxSize` (Qt's recv). */
  protected override readData(maxSize: number): Buffer | null {
    if (!this.udp || this.state() !== SocketState.ConnectedState) {
      return maxSize > 0 ? null : NO_BYTES;
    }
    if (maxSize === 0) return NO_BYTES;
    const d = this.pending.shift();
    if (!d) {
      if (this.refused) {
        // Qt's readData on a failed read: the error is set, the socket layer dropped and the
        // state made Unconnected (Qt changes it without emitting stateChanged; the port emits it).
        this.refused = false;
        this.setError(SocketError.ConnectionRefusedError, ErrorText.ConnectionRefused);
        this.dropSocket();
        this.setState(SocketState.UnconnectedState);
        return null;
      }
      return NO_BYTES;
    }
    this.afterRead();
    return truncate(d.data, maxSize);
  }

  /** A connected socket's `write()`: one datagram to the peer. */
  protected override writeData(data: Buffer): number {
    const s = this.state();
    const peer = this.peerTarget;
    if (
      !this.udp ||
      peer === null ||
      (s !== SocketState.ConnectedState && s !== SocketState.ConnectingState)
    ) {
      this.setError(SocketError.UnknownSocketError, ErrorText.NotConnected);
      return -1;
    }
    if (data.length > maxPayload(this.nodeAddressFor(peer) ?? '')) {
      this.setError(SocketError.DatagramTooLargeError, ErrorText.DatagramTooLarge);
      return -1;
    }
    this.sendToPeer(data);
    if (!this.inBytesWritten) {
      this.inBytesWritten = true;
      try {
        this.bytesWritten.emit(data.length);
      } finally {
        this.inBytesWritten = false;
      }
    }
    return data.length;
  }

  // ---------------------------------------------------------------- internals

  /** Creates the Node socket and installs its handlers. */
  private createSocket(family: 4 | 6, reuseAddr: boolean, ipv6Only: boolean): dgram.Socket {
    const sock = dgram.createSocket({
      type: family === 4 ? 'udp4' : 'udp6',
      reuseAddr,
      ipv6Only,
    });
    this.udp = sock;
    this.family = family;
    this.ipv6Only = ipv6Only;
    this.ready = false;
    this.pending.clear(true);
    sock.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      if (this.udp === sock) this.onDatagram(msg, rinfo);
    });
    // The 'error' listener stays for the socket's whole life, so that a late error is never
    // an unhandled 'error' event.
    sock.on('error', (err: Error) => {
      if (this.udp === sock) this.onUdpError(err);
    });
    return sock;
  }

  /** Starts binding a new socket to `addr`:`port`; `onBound` or `onBindFailed` follow. */
  private startBind(addr: QHostAddress, port: number, mode: number): void {
    const any = addr.protocol() === NetworkLayerProtocol.AnyIPProtocol;
    const reuseAddr = (mode & (BindFlag.ShareAddress | BindFlag.ReuseAddressHint)) !== 0;
    const ipv4 = addr.protocol() === NetworkLayerProtocol.IPv4Protocol;
    // AnyIPv6 ("::") takes IPv6 only, as in Qt; Any is dual-stack.
    const ipv6Only = !any && !ipv4 && addr.toNodeAddress() === '::';
    this.bindRequest = { any, port, reuseAddr };
    this.boundDestination =
      any || addr.toNodeAddress() === '::' || addr.toString() === '0.0.0.0'
        ? null
        : new QHostAddress(addr);
    this.bindSocket(
      this.createSocket(ipv4 ? 4 : 6, reuseAddr, ipv6Only),
      any ? '::' : addr.toNodeAddress(),
      port,
      any,
    );
  }

  private bindSocket(sock: dgram.Socket, address: string, port: number, any: boolean): void {
    sock.once('listening', () => {
      if (this.udp === sock) this.onBound(sock, any);
    });
    try {
      sock.bind({ port, address, exclusive: true });
    } catch (err) {
      this.onBindFailed(err);
    }
  }

  private onBound(sock: dgram.Socket, any: boolean): void {
    this.bindRequest = null;
    this.ready = true;
    try {
      // Qt enables broadcasting on every UDP socket.
      sock.setBroadcast(true);
    } catch {
      // not fatal: only sends to a broadcast address would fail
    }
    const local = sock.address();
    this.setLocalAddress(
      any ? new QHostAddress(SpecialAddress.Any) : new QHostAddress(local.address),
    );
    this.setLocalPort(local.port);
    const settle = this.bindSettle;
    this.bindSettle = null;
    // A connect started while binding goes on from here; only a plain bind enters BoundState.
    if (this.state() === SocketState.UnconnectedState) this.setState(SocketState.BoundState);
    settle?.(true);
  }

  private onBindFailed(err: unknown): void {
    const request = this.bindRequest;
    if (request?.any && this.family === 6 && errnoCode(err) === 'EAFNOSUPPORT') {
      // No IPv6 on this host: Any falls back to IPv4, as Qt does.
      const failed = this.udp;
      this.udp = null;
      try {
        failed?.close();
      } catch {
        // already closed
      }
      const sock = this.createSocket(4, request.reuseAddr, false);
      this.bindSocket(sock, '0.0.0.0', request.port, true);
      return;
    }
    const mapped = mapBindError(err);
    const settle = this.bindSettle;
    this.bindSettle = null;
    this.dropSocket();
    if (this.state() !== SocketState.UnconnectedState) {
      // A connect was waiting for this bind.
      this.failConnect(mapped.error, mapped.text);
    } else {
      this.setErrorAndEmit(mapped.error, mapped.text);
    }
    settle?.(false);
  }

  private connectToTarget(
    attempt: number,
    candidates: QHostAddress[],
    protocol: NetworkLayerProtocol,
  ): void {
    const usable = candidates.filter(
      (a) =>
        (protocol === NetworkLayerProtocol.AnyIPProtocol ||
          protocol === NetworkLayerProtocol.UnknownNetworkLayerProtocol ||
          a.protocol() === protocol) &&
        (!this.udp || this.nodeAddressFor(a) !== null),
    );
    const target = usable[0];
    if (target === undefined) {
      this.dropSocket();
      this.failConnect(SocketError.HostNotFoundError, ErrorText.HostNotFound);
      return;
    }
    this.setState(SocketState.ConnectingState);
    if (attempt !== this.attempt || this.state() !== SocketState.ConnectingState) return;
    this.hostFound.emit();
    if (attempt !== this.attempt || this.state() !== SocketState.ConnectingState) return;
    const sock =
      this.udp ??
      this.createSocket(
        target.protocol() === NetworkLayerProtocol.IPv4Protocol ? 4 : 6,
        false,
        false,
      );
    this.peerTarget = new QHostAddress(target);
    const nodeAddress = this.nodeAddressFor(target) ?? target.toNodeAddress();
    try {
      sock.connect(this.connectPort, nodeAddress, (err?: Error) => {
        if (this.udp !== sock || attempt !== this.attempt) return;
        if (err) this.onConnectFailed(err);
        else this.onUdpConnected(sock, attempt);
      });
    } catch (err) {
      this.onConnectFailed(err);
    }
  }

  private onUdpConnected(sock: dgram.Socket, attempt: number): void {
    this.bindRequest = null;
    this.ready = true;
    try {
      sock.setBroadcast(true);
    } catch {
      // not fatal
    }
    const local = sock.address();
    this.setLocalAddress(new QHostAddress(local.address));
    this.setLocalPort(local.port);
    this.setPeerAddress(this.peerTarget ?? new QHostAddress());
    this.setPeerPort(this.connectPort);
    const queued = this.preConnectWrites;
    this.preConnectWrites = [];
    for (const datagram of queued) this.sendConnected(datagram);
    this.setState(SocketState.ConnectedState);
    if (attempt !== this.attempt || this.state() !== SocketState.ConnectedState) return;
    this.connected.emit();
    if (attempt !== this.attempt || this.state() !== SocketState.ConnectedState) return;
    if (this.closeWhenConnected) {
      this.closeWhenConnected = false;
      this.disconnectFromHost();
    }
  }

  private onConnectFailed(err: unknown): void {
    const mapped = mapConnectError(err);
    this.dropSocket();
    this.failConnect(mapped.error, mapped.text);
  }

  /** Ends a connect attempt: UnconnectedState, then errorOccurred (Qt's order). */
  private failConnect(error: SocketError, text: string): void {
    this.clearEndpoints();
    this.setError(error, text);
    this.setState(SocketState.UnconnectedState);
    this.errorOccurred.emit(error);
  }

  /** Sends to the connected peer, or keeps the datagram until Node has connected the socket. */
  private sendToPeer(data: Buffer): void {
    if (this.state() !== SocketState.ConnectedState || !this.ready) {
      this.preConnectWrites.push(data);
      return;
    }
    this.sendConnected(data);
  }

  /** Hands a datagram to Node's connected socket. */
  private sendConnected(data: Buffer): void {
    const udp = this.udp;
    if (!udp) return;
    try {
      udp.send(data, (err) => {
        if (err && this.udp === udp) this.onSendError(err);
      });
    } catch (err) {
      this.onSendError(err);
    }
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!this.pending.push({ data: msg, address: rinfo.address, port: rinfo.port })) return;
    this.arrived.emit();
    this.scheduleReadyRead();
  }

  private onUdpError(err: Error): void {
    if (this.bindRequest && !this.ready) {
      this.onBindFailed(err);
      return;
    }
    if (!this.ready && this.state() === SocketState.ConnectingState) {
      // The implicit bind of a connect failed.
      this.onConnectFailed(err);
      return;
    }
    if (errnoCode(err) === 'ECONNREFUSED') {
      this.onRefused();
      return;
    }
    this.setErrorAndEmit(SocketError.NetworkError, ErrorText.ReceiveDatagram);
  }

  private onSendError(err: unknown): void {
    switch (errnoCode(err)) {
      case 'ECONNREFUSED':
        // The kernel reports an ICMP port unreachable on whichever call comes next.
        this.onRefused();
        return;
      case 'EMSGSIZE':
        this.setErrorAndEmit(SocketError.DatagramTooLargeError, ErrorText.DatagramTooLarge);
        return;
      case 'ECONNRESET':
        this.setErrorAndEmit(SocketError.RemoteHostClosedError, ErrorText.RemoteHostClosed);
        return;
      default:
        this.setErrorAndEmit(SocketError.NetworkError, ErrorText.SendDatagram);
    }
  }

  /**
   * The connected peer answered with ICMP port unreachable. Qt sees the socket become
   * readable (readyRead) and reports the error from the next read.
   */
  private onRefused(): void {
    this.refused = true;
    this.arrived.emit();
    this.scheduleReadyRead();
  }

  /** Reports a pending refusal (ConnectionRefusedError); false if there is none. */
  private reportRefusal(): boolean {
    if (!this.refused) return false;
    this.refused = false;
    this.setErrorAndEmit(SocketError.ConnectionRefusedError, ErrorText.ConnectionRefused);
    return true;
  }

  private scheduleReadyRead(): void {
    if (this.notified || this.readyReadTimer) return;
    this.readyReadTimer = setImmediate(() => {
      this.readyReadTimer = null;
      this.emitDatagramsReady();
    });
  }

  private emitDatagramsReady(): void {
    if (this.notified || this.inReadyRead) return;
    if (this.pending.length === 0 && !this.refused) return;
    if (this.readyReadTimer) {
      clearImmediate(this.readyReadTimer);
      this.readyReadTimer = null;
    }
    this.notified = true;
    this.inReadyRead = true;
    try {
      this.readyRead.emit();
    } finally {
      this.inReadyRead = false;
    }
  }

  /** The application read: readyRead may come again, at once if datagrams are still waiting. */
  private afterRead(): void {
    this.notified = false;
    if (this.pending.length > 0 || this.refused) this.scheduleReadyRead();
  }

  /**
   * The address Node must be given to reach `target` from this socket (Qt's
   * adjustAddressProtocol): IPv4 as IPv4-mapped IPv6 on a dual-stack socket; null when the
   * socket cannot reach that family.
   */
  private nodeAddressFor(target: QHostAddress): string | null {
    const v4 = ipv4Text(target);
    if (this.family === 4) return v4;
    if (v4 !== null && target.protocol() === NetworkLayerProtocol.IPv4Protocol) {
      const boundV6 = this.boundDestination !== null && ipv4Text(this.boundDestination) === null;
      return this.ipv6Only || boundV6 ? null : `::ffff:${v4}`;
    }
    return target.toNodeAddress();
  }

  private changeMembership(
    join: boolean,
    groupAddress: QHostAddress | string,
    iface: string | QHostAddress | undefined,
  ): boolean {
    const sock = this.udp!;
    const group = new QHostAddress(groupAddress);
    if (group.isNull()) return false;
    const groupIsV4 = group.protocol() === NetworkLayerProtocol.IPv4Protocol;
    if (groupIsV4 && this.family === 6) {
      qWarning(
        'QAbstractSocket: cannot bind to QHostAddress::Any (or an IPv6 address) and join an IPv4 multicast group; bind to QHostAddress::AnyIPv4 instead if you want to do this',
      );
      return false;
    }
    if (!groupIsV4 && this.family === 4) return false;
    let nodeIface: string | undefined;
    if (iface !== undefined) {
      const resolved = resolveInterface(iface, this.family);
      if (!resolved) return false;
      nodeIface = resolved.node;
    }
    try {
      if (join) sock.addMembership(group.toNodeAddress(), nodeIface);
      else sock.dropMembership(group.toNodeAddress(), nodeIface);
      return true;
    } catch {
      return false;
    }
  }

  /** Qt's QT_CHECK_BOUND: warns and returns false unless bound or connected. */
  private checkBound(method: string): boolean {
    if (this.udp && this.ready) return true;
    qWarning(`QUdpSocket::${method}() called on a QUdpSocket when not in QUdpSocket::BoundState`);
    return false;
  }

  private sendFailed(error: SocketError, text: string): number {
    this.setErrorAndEmit(error, text);
    return -1;
  }

  private clearEndpoints(): void {
    this.setLocalAddress(new QHostAddress());
    this.setLocalPort(0);
    this.setPeerAddress(new QHostAddress());
    this.setPeerPort(0);
  }

  /** Closes the Node socket and forgets everything tied to it (Qt's resetSocketLayer). */
  private dropSocket(): void {
    const sock = this.udp;
    this.udp = null;
    this.ready = false;
    this.attempt++;
    this.bindRequest = null;
    this.boundDestination = null;
    this.peerTarget = null;
    this.preConnectWrites = [];
    this.pending.clear();
    this.refused = false;
    this.notified = false;
    if (this.readyReadTimer) {
      clearImmediate(this.readyReadTimer);
      this.readyReadTimer = null;
    }
    this.multicastTtl = 1;
    this.multicastLoopback = 1;
    this.multicastInterfaceName = '';
    const settle = this.bindSettle;
    this.bindSettle = null;
    if (sock) {
      try {
        sock.close();
      } catch {
        // already closed
      }
    }
    settle?.(false);
  }
}

function toBuffer(data: WritableData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function checkPort(port: number, method: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`${method}: port must be an integer from 0 to 65535, got ${port}`);
  }
  return port;
}

/** At most `maxSize` bytes of `data`; a truncated copy, so the rest is not kept alive. */
function truncate(data: Buffer, maxSize: number): Buffer {
  return data.length > maxSize ? Buffer.from(data.subarray(0, maxSize)) : data;
}

/** The largest payload to `nodeAddress` (IPv4 and IPv4-mapped addresses contain a dot). */
function maxPayload(nodeAddress: string): number {
  return nodeAddress.includes('.') ? MAX_IPV4_PAYLOAD : MAX_IPV6_PAYLOAD;
}

/** The dotted IPv4 text of an IPv4 or IPv4-mapped address; null for other addresses. */
function ipv4Text(address: QHostAddress): string | null {
  if (address.protocol() === NetworkLayerProtocol.IPv4Protocol) return address.toString();
  if (address.protocol() !== NetworkLayerProtocol.IPv6Protocol) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address.toString());
  return mapped ? mapped[1] : null;
}

/**
 * What Node takes for an interface: for IPv4 one of its IPv4 addresses, for IPv6 `::%name`.
 * `iface` is an interface name or one of its addresses; null if no such interface.
 */
function resolveInterface(
  iface: string | QHostAddress,
  family: 4 | 6,
): { node: string; name: string } | null {
  const interfaces = os.networkInterfaces();
  const asAddress = iface instanceof QHostAddress ? iface : new QHostAddress(iface);
  let name: string | undefined;
  if (asAddress.isNull()) {
    name = typeof iface === 'string' && interfaces[iface] ? iface : undefined;
  } else {
    name = Object.keys(interfaces).find((n) =>
      (interfaces[n] ?? []).some((i) => new QHostAddress(i.address).isEqual(asAddress)),
    );
  }
  if (name === undefined) return null;
  if (family === 6) return { node: `::%${name}`, name };
  const v4 = (interfaces[name] ?? []).find((i) => i.family === 'IPv4');
  return v4 ? { node: v4.address, name } : null;
}
