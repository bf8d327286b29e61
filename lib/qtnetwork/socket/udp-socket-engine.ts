import * as dgram from 'node:dgram';

import { qWarning } from '../core/qlogging.js';
import type { Settle } from '../core/wait-on.js';
import { QHostAddress, SpecialAddress } from '../kernel/qhost-address.js';
import {
  BindFlag,
  NetworkLayerProtocol,
  SocketError,
  SocketOption,
  SocketState,
} from '../kernel/socket-enums.js';
import type { BindAddress } from './bind-request.js';
import { DatagramQueue } from './datagram-queue.js';
import { ErrorText, errnoCode, mapBindError, mapConnectError } from './native-errors.js';
import { nativeDatagramDescriptor } from './native-handle.js';
import {
  warnOptionUnsupported,
  type SocketEngine,
  type SocketEngineHost,
} from './socket-engine.js';
import { ipv4Text, maxPayload, resolveInterface, truncate } from './udp-helpers.js';

/** Default bound of the pending datagrams, in bytes (payload + overhead each). */
const DEFAULT_READ_BUFFER_SIZE = 256 * 1024;

const NO_BYTES = Buffer.alloc(0);

/**
 * The engine under a QUdpSocket, over Node's `dgram`: binds (Any is dual-stack, with
 * Qt's fallback to IPv4), connects to one peer, sends and receives datagrams, keeps the
 * received ones in a bounded queue, and emits readyRead by Qt's rule for datagrams (once
 * for all that arrived together, not again until the application has read one).
 */
export class UdpSocketEngine implements SocketEngine {
  /** The datagrams received and not read yet. */
  readonly pending = new DatagramQueue(DEFAULT_READ_BUFFER_SIZE);
  private sock: dgram.Socket | null = null;
  /** Address family of `sock`: 4 (udp4) or 6 (udp6). */
  private family: 4 | 6 = 4;
  /** The udp6 socket takes IPv6 only (bound to an IPv6 address, or to AnyIPv6). */
  private ipv6Only = false;
  /** `sock` is bound (or connected) and usable. */
  private ready = false;
  /** The address and port the bind in flight asked for; null when none is in flight. */
  private bindRequest: { any: boolean; port: number; reuseAddr: boolean } | null = null;
  /** Resolves the Promise of the `bind()` in flight. */
  private bindSettle: Settle | null = null;
  /** The destination of received datagrams when the socket is bound to one address. */
  private boundDestination: QHostAddress | null = null;
  /** Qt's hasPendingData: readyRead was emitted and the application has not read since. */
  private notified = false;
  private readyReadTimer: NodeJS.Immediate | null = null;
  /** An ICMP port unreachable reported for the connected peer, not yet reported to the app. */
  private refused = false;
  /** The port given to connectToHost. */
  private port = 0;
  private peerTarget: QHostAddress | null = null;
  /** Datagrams written while Node is still connecting the socket; each goes out once it has. */
  private writeQueue: Buffer[] = [];
  /** Node cannot read the multicast options back: the values set (Linux defaults first). */
  private multicastTtl = 1;
  private multicastLoopback = 1;
  private multicastInterfaceName = '';

  constructor(private readonly host: SocketEngineHost) {}

  // ---------------------------------------------------------------- binding and connecting

  bind(address: BindAddress, port: number, mode: number): Promise<boolean> {
    if (this.host.socket.state() !== SocketState.UnconnectedState || this.sock) {
      qWarning('QNativeSocketEngine::bind() was not called in QAbstractSocket::UnconnectedState');
      this.host.setErrorAndEmit(SocketError.UnknownSocketError, ErrorText.Unknown);
      return Promise.resolve(false);
    }
    const addr = new QHostAddress(address);
    if (typeof address === 'string' && addr.isNull()) {
      this.host.setErrorAndEmit(
        SocketError.SocketAddressNotAvailableError,
        ErrorText.AddressNotAvailable,
      );
      return Promise.resolve(false);
    }
    return new Promise<boolean>((resolve) => {
      this.bindSettle = resolve;
      // A null address never gets here (bindRequest makes it AnyIPv4, as Qt does).
      this.startBind(addr, port, mode);
    });
  }

  prepareConnect(_host: string, port: number): boolean {
    this.port = port;
    this.writeQueue = [];
    return true;
  }

  canReach(address: QHostAddress): boolean {
    return !this.sock || this.nodeAddressFor(address) !== null;
  }

  connectTo(addresses: QHostAddress[]): void {
    const target = addresses[0];
    const sock =
      this.sock ??
      this.createSocket(
        target.protocol() === NetworkLayerProtocol.IPv4Protocol ? 4 : 6,
        false,
        false,
      );
    this.peerTarget = new QHostAddress(target);
    const nodeAddress = this.nodeAddressFor(target) ?? target.toNodeAddress();
    const generation = this.host.generation();
    try {
      sock.connect(this.port, nodeAddress, (err?: Error) => {
        if (this.sock !== sock || generation !== this.host.generation()) return;
        if (err) this.onConnectFailed(err);
        else this.onConnected(sock);
      });
    } catch (err) {
      this.onConnectFailed(err);
    }
  }

  /** A failed connect closed the socket it had bound: its local end goes with it. */
  connectFailed(): void {
    this.host.setLocal(new QHostAddress(), 0);
    this.host.setPeer(new QHostAddress(), 0);
  }

  /** Node cannot adopt a UDP descriptor. */
  adopt(): boolean {
    this.host.setError(SocketError.UnsupportedSocketOperationError, ErrorText.UnsupportedOperation);
    return false;
  }

  /** Closes the Node socket and forgets everything tied to it (Qt's resetSocketLayer). */
  reset(): void {
    const sock = this.sock;
    this.sock = null;
    this.ready = false;
    this.bindRequest = null;
    this.boundDestination = null;
    this.peerTarget = null;
    this.writeQueue = [];
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

  /** An automatic bind still in flight is abandoned. */
  closeUnconnected(): void {
    if (this.sock) this.host.resetSocketLayer();
  }

  // ---------------------------------------------------------------- the socket

  isValid(): boolean | null {
    return this.sock !== null ? this.ready : null;
  }

  descriptor(): number {
    return this.ready ? nativeDatagramDescriptor(this.sock) : -1;
  }

  /** The address received datagrams were sent to, when the socket is bound to one. */
  destination(): QHostAddress | null {
    return this.boundDestination;
  }

  /** Qt's QT_CHECK_BOUND: warns and returns false unless bound or connected. */
  checkBound(method: string): boolean {
    if (this.sock && this.ready) return true;
    qWarning(`QUdpSocket::${method}() called on a QUdpSocket when not in QUdpSocket::BoundState`);
    return false;
  }

  // ---------------------------------------------------------------- datagrams

  /** True while a refusal by the connected peer waits to be reported. */
  hasRefusal(): boolean {
    return this.refused;
  }

  /** The application read: readyRead may come again, at once if datagrams are still waiting. */
  afterRead(): void {
    this.notified = false;
    if (this.pending.length > 0 || this.refused) this.scheduleReadyRead();
  }

  /**
   * A read found no datagram: a pending refusal is reported (ConnectionRefusedError), or
   * else TemporaryError ("No datagram available for reading").
   */
  reportNothingToRead(): void {
    if (!this.refused) {
      this.host.setErrorAndEmit(SocketError.TemporaryError, ErrorText.NoDatagram);
      return;
    }
    this.refused = false;
    this.host.setErrorAndEmit(SocketError.ConnectionRefusedError, ErrorText.ConnectionRefused);
  }

  /**
   * Sends `payload` to `target`:`targetPort` (a null target: the connected peer) and emits
   * bytesWritten; returns its size, or -1 with the error emitted. An unbound socket is first
   * bound to Any.
   */
  sendDatagram(payload: Buffer, target: QHostAddress, targetPort: number): number {
    const s = this.host.socket.state();
    if (s === SocketState.ConnectedState || s === SocketState.ConnectingState) {
      const peer = this.peerTarget;
      const toPeer =
        peer !== null && (target.isNull() || (target.isEqual(peer) && targetPort === this.port));
      if (!toPeer) return this.sendFailed(SocketError.NetworkError, ErrorText.SendDatagram);
      if (payload.length > maxPayload(this.nodeAddressFor(peer) ?? '')) {
        return this.sendFailed(SocketError.DatagramTooLargeError, ErrorText.DatagramTooLarge);
      }
      this.sendToPeer(payload);
      this.host.socket.bytesWritten.emit(payload.length);
      return payload.length;
    }
    if (s === SocketState.UnconnectedState && !this.sock) {
      this.startBind(new QHostAddress(SpecialAddress.Any), 0, BindFlag.DefaultForPlatform);
    }
    const sock = this.sock;
    const nodeAddress = target.isNull() ? null : this.nodeAddressFor(target);
    if (!sock || nodeAddress === null || targetPort === 0) {
      return this.sendFailed(SocketError.NetworkError, ErrorText.SendDatagram);
    }
    if (payload.length > maxPayload(nodeAddress)) {
      return this.sendFailed(SocketError.DatagramTooLargeError, ErrorText.DatagramTooLarge);
    }
    try {
      sock.send(payload, targetPort, nodeAddress, (err) => {
        if (err && this.sock === sock) this.onSendError(err);
      });
    } catch {
      return this.sendFailed(SocketError.NetworkError, ErrorText.SendDatagram);
    }
    this.host.socket.bytesWritten.emit(payload.length);
    return payload.length;
  }

  // ---------------------------------------------------------------- multicast

  /** Joins or leaves `groupAddress` on `iface` (the system's choice when undefined). */
  changeMembership(
    join: boolean,
    groupAddress: QHostAddress | string,
    iface: string | QHostAddress | undefined,
  ): boolean {
    const sock = this.sock!;
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

  /** Sets the interface outgoing multicast datagrams leave by. Needs a bound socket. */
  setMulticastInterface(iface: string | QHostAddress): void {
    if (!this.ready || !this.sock) {
      qWarning(
        'QUdpSocket::setMulticastInterface() called on a QUdpSocket when not in QUdpSocket::BoundState',
      );
      return;
    }
    const resolved = resolveInterface(iface, this.family);
    if (!resolved) return;
    try {
      this.sock.setMulticastInterface(resolved.node);
      this.multicastInterfaceName = resolved.name;
    } catch {
      // The system refused it; Qt ignores a failed setsockopt here too.
    }
  }

  /** The name of the interface set with `setMulticastInterface`; '' when none was set. */
  multicastInterface(): string {
    return this.multicastInterfaceName;
  }

  // ---------------------------------------------------------------- reading and writing

  readableBeyondBuffer(): number {
    return this.pending.peek()?.data.length ?? 0;
  }

  bytesToWrite(): number {
    return this.writeQueue.reduce((n, b) => n + b.length, 0);
  }

  discardWrites(): void {
    this.writeQueue = [];
  }

  readBufferSize(): number {
    return this.pending.maxBytes;
  }

  setReadBufferSize(size: number): void {
    this.pending.setMaxBytes(size);
  }

  /** A connected socket's `read()`: the next datagram, truncated to `maxSize` (Qt's recv). */
  readData(maxSize: number): Buffer | null {
    if (!this.sock || this.host.socket.state() !== SocketState.ConnectedState) {
      return maxSize > 0 ? null : NO_BYTES;
    }
    if (maxSize === 0) return NO_BYTES;
    const d = this.pending.shift();
    if (!d) {
      if (this.refused) {
        // Qt's readData on a failed read: the error is set, the socket layer dropped and the
        // state made Unconnected (Qt changes it without emitting stateChanged; the port emits it).
        this.refused = false;
        this.host.setError(SocketError.ConnectionRefusedError, ErrorText.ConnectionRefused);
        this.host.resetSocketLayer();
        this.host.setStateAndEmit(SocketState.UnconnectedState);
        return null;
      }
      return NO_BYTES;
    }
    this.afterRead();
    return truncate(d.data, maxSize);
  }

  /** A connected socket's `write()`: one datagram to the peer. */
  writeData(data: Buffer): number {
    const s = this.host.socket.state();
    const peer = this.peerTarget;
    if (
      !this.sock ||
      peer === null ||
      (s !== SocketState.ConnectedState && s !== SocketState.ConnectingState)
    ) {
      this.host.setError(SocketError.UnknownSocketError, ErrorText.NotConnected);
      return -1;
    }
    if (data.length > maxPayload(this.nodeAddressFor(peer) ?? '')) {
      this.host.setError(SocketError.DatagramTooLargeError, ErrorText.DatagramTooLarge);
      return -1;
    }
    this.sendToPeer(data);
    this.host.emitBytesWritten(data.length);
    return data.length;
  }

  announceReadable(): boolean {
    if (this.pending.length === 0 && !this.refused) return false;
    this.emitDatagramsReady();
    return true;
  }

  // ---------------------------------------------------------------- options

  /**
   * MulticastTtlOption, MulticastLoopbackOption and the buffer sizes, while bound or
   * connected (ignored before, as in Qt).
   */
  setOption(option: SocketOption, value: number): void {
    const sock = this.sock;
    if (!sock || !this.ready) return;
    try {
      switch (option) {
        case SocketOption.MulticastTtlOption:
          sock.setMulticastTTL(value);
          this.multicastTtl = value;
          break;
        case SocketOption.MulticastLoopbackOption:
          sock.setMulticastLoopback(value !== 0);
          this.multicastLoopback = value !== 0 ? 1 : 0;
          break;
        case SocketOption.ReceiveBufferSizeSocketOption:
          sock.setRecvBufferSize(value);
          break;
        case SocketOption.SendBufferSizeSocketOption:
          sock.setSendBufferSize(value);
          break;
        default:
          warnOptionUnsupported(option);
      }
    } catch {
      // The system refused the value; Qt ignores a failed setsockopt as well.
    }
  }

  option(option: SocketOption): number | undefined {
    const sock = this.sock;
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

  // ---------------------------------------------------------------- internals

  /** Creates the Node socket and installs its handlers. */
  private createSocket(family: 4 | 6, reuseAddr: boolean, ipv6Only: boolean): dgram.Socket {
    const sock = dgram.createSocket({
      type: family === 4 ? 'udp4' : 'udp6',
      reuseAddr,
      ipv6Only,
    });
    this.sock = sock;
    this.family = family;
    this.ipv6Only = ipv6Only;
    this.ready = false;
    this.pending.clear(true);
    sock.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      if (this.sock === sock) this.onDatagram(msg, rinfo);
    });
    // The 'error' listener stays for the socket's whole life, so that a late error is never
    // an unhandled 'error' event.
    sock.on('error', (err: Error) => {
      if (this.sock === sock) this.onSocketError(err);
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
      if (this.sock === sock) this.onBound(sock, any);
    });
    try {
      sock.bind({ port, address, exclusive: true });
    } catch (err) {
      this.onBindFailed(err);
    }
  }

  /** `sock` is bound (or connected) and usable; returns its local address and port. */
  private socketReady(sock: dgram.Socket): { address: string; port: number } {
    this.bindRequest = null;
    this.ready = true;
    try {
      // Qt enables broadcasting on every UDP socket.
      sock.setBroadcast(true);
    } catch {
      // not fatal: only sends to a broadcast address would fail
    }
    return sock.address();
  }

  private onBound(sock: dgram.Socket, any: boolean): void {
    const local = this.socketReady(sock);
    this.host.setLocal(
      any ? new QHostAddress(SpecialAddress.Any) : new QHostAddress(local.address),
      local.port,
    );
    const settle = this.bindSettle;
    this.bindSettle = null;
    // A connect started while binding goes on from here; only a plain bind enters BoundState.
    if (this.host.socket.state() === SocketState.UnconnectedState) {
      this.host.setStateAndEmit(SocketState.BoundState);
    }
    settle?.(true);
  }

  private onBindFailed(err: unknown): void {
    const request = this.bindRequest;
    if (request?.any && this.family === 6 && errnoCode(err) === 'EAFNOSUPPORT') {
      // No IPv6 on this host: Any falls back to IPv4, as Qt does.
      const failed = this.sock;
      this.sock = null;
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
    if (this.host.socket.state() !== SocketState.UnconnectedState) {
      // A connect was waiting for this bind.
      this.host.failConnect(mapped.error, mapped.text);
    } else {
      this.host.resetSocketLayer();
      this.host.setErrorAndEmit(mapped.error, mapped.text);
    }
    settle?.(false);
  }

  private onConnected(sock: dgram.Socket): void {
    const local = this.socketReady(sock);
    this.host.setLocal(new QHostAddress(local.address), local.port);
    this.host.setPeer(this.peerTarget ?? new QHostAddress(), this.port);
    const queued = this.writeQueue;
    this.writeQueue = [];
    for (const datagram of queued) this.sendConnected(datagram);
    this.host.connectionEstablished();
  }

  private onConnectFailed(err: unknown): void {
    const mapped = mapConnectError(err);
    this.host.failConnect(mapped.error, mapped.text);
  }

  /** Sends to the connected peer, or keeps the datagram until Node has connected the socket. */
  private sendToPeer(data: Buffer): void {
    if (this.host.socket.state() !== SocketState.ConnectedState || !this.ready) {
      this.writeQueue.push(data);
      return;
    }
    this.sendConnected(data);
  }

  /** Hands a datagram to Node's connected socket. */
  private sendConnected(data: Buffer): void {
    const sock = this.sock;
    if (!sock) return;
    try {
      sock.send(data, (err) => {
        if (err && this.sock === sock) this.onSendError(err);
      });
    } catch (err) {
      this.onSendError(err);
    }
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!this.pending.push({ data: msg, address: rinfo.address, port: rinfo.port })) return;
    this.host.readActivity();
    this.scheduleReadyRead();
  }

  private onSocketError(err: Error): void {
    if (this.bindRequest && !this.ready) {
      this.onBindFailed(err);
      return;
    }
    if (!this.ready && this.host.socket.state() === SocketState.ConnectingState) {
      // The implicit bind of a connect failed.
      this.onConnectFailed(err);
      return;
    }
    if (errnoCode(err) === 'ECONNREFUSED') {
      this.onRefused();
      return;
    }
    this.host.setErrorAndEmit(SocketError.NetworkError, ErrorText.ReceiveDatagram);
  }

  private onSendError(err: unknown): void {
    switch (errnoCode(err)) {
      case 'ECONNREFUSED':
        // The kernel reports an ICMP port unreachable on whichever call comes next.
        this.onRefused();
        return;
      case 'EMSGSIZE':
        this.host.setErrorAndEmit(SocketError.DatagramTooLargeError, ErrorText.DatagramTooLarge);
        return;
      case 'ECONNRESET':
        this.host.setErrorAndEmit(SocketError.RemoteHostClosedError, ErrorText.RemoteHostClosed);
        return;
      default:
        this.host.setErrorAndEmit(SocketError.NetworkError, ErrorText.SendDatagram);
    }
  }

  /**
   * The connected peer answered with ICMP port unreachable. Qt sees the socket become
   * readable (readyRead) and reports the error from the next read.
   */
  private onRefused(): void {
    this.refused = true;
    this.host.readActivity();
    this.scheduleReadyRead();
  }

  private scheduleReadyRead(): void {
    if (this.notified || this.readyReadTimer) return;
    this.readyReadTimer = setImmediate(() => {
      this.readyReadTimer = null;
      this.emitDatagramsReady();
    });
  }

  private emitDatagramsReady(): void {
    if (this.notified || this.host.emittingReadyRead()) return;
    if (this.pending.length === 0 && !this.refused) return;
    if (this.readyReadTimer) {
      clearImmediate(this.readyReadTimer);
      this.readyReadTimer = null;
    }
    this.notified = true;
    this.host.emitReadyRead();
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

  private sendFailed(error: SocketError, text: string): number {
    this.host.setErrorAndEmit(error, text);
    return -1;
  }
}
