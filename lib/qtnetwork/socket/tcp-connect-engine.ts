import * as net from 'node:net';
import * as os from 'node:os';

import { ByteQueue } from '../core/byte-queue.js';
import type { OpenMode } from '../core/open-mode.js';
import { qWarning } from '../core/qlogging.js';
import { QHostAddress } from '../kernel/qhost-address.js';
import { ProxyType } from '../kernel/qnetwork-proxy.js';
import { SocketError, SocketOption, SocketState } from '../kernel/socket-enums.js';
import type { BindAddress } from './bind-request.js';
import {
  ErrorText,
  mapBindError,
  mapConnectError,
  mapIoError,
  type MappedError,
} from './native-errors.js';
import { nativeDescriptor, type NativeSocketHandle } from './native-handle.js';
import type { Tunnel } from './proxy/proxy-tunnel.js';
import { ProxyConnect, resolveProxy } from './proxy-connect.js';
import {
  warnOptionUnsupported,
  type SocketEngine,
  type SocketEngineHost,
} from './socket-engine.js';
import { claimTcpBinding, releaseTcpBinding, type TcpBinding } from './tcp-bindings.js';

/** An empty read result, shared (it has no bytes anyone could change). */
const NO_BYTES = Buffer.alloc(0);

/** Qt's per-address connect timeout (QT_CONNECT_TIMEOUT), in ms. */
const CONNECT_TIMEOUT_MS = 30000;

/**
 * The engine under a stream socket (QTcpSocket, QSslSocket, and the Unix-domain stream of
 * QLocalSocket), over Node's `net.Socket`.
 *
 * Connecting: the addresses of a name are tried in turn, each for at most 30 s, directly or
 * through a proxy (ProxyConnect). The connection's bytes: writes wait in a queue that is
 * handed to Node on the next tick (all writes made in one synchronous run go out together),
 * at most WRITE_BATCH_BYTES at a time, so that `bytesWritten` reports progress while a slow
 * peer takes a large backlog (as Qt's does after each write to the kernel) rather than once
 * at the end of it; reads go to the device's buffer, which `readBufferSize` bounds: when it is full, reading
 * from the kernel pauses until the application reads, so a fast peer is held back by TCP
 * flow control rather than by memory.
 */
/**
 * Most bytes handed to Node (and so to the kernel) at once; the rest waits in the queue until
 * Node has written them. Large enough that a flush of ordinary packets is one write, small
 * enough that a peer reading at 100 KiB/s shows progress every ten seconds.
 */
export const WRITE_BATCH_BYTES = 1024 * 1024;

export class TcpConnectEngine implements SocketEngine {
  private sock: net.Socket | null = null;
  /** Bytes accepted by `write` and not yet handed to Node. */
  private readonly writeQueue = new ByteQueue();
  /** Bytes Node delivered beyond `readBufferSize`: at most one read's worth, never visible. */
  private readonly held = new ByteQueue();
  private readBufferMax = 0;
  private flushScheduled = false;
  /** Set for QSslSocket while written data must not reach the connection yet. */
  private writesHeld = false;
  /** Bytes handed to Node whose write callback has not run yet. */
  private unconfirmed = 0;
  private refillScheduled = false;
  private connectTimer: NodeJS.Timeout | null = null;
  private addressesToTry: string[] = [];
  private lastConnectError: MappedError | null = null;
  /** The port given to connectToHost. */
  private port = 0;
  /** What `bind` asked for: the local end of the next connection. */
  private binding: TcpBinding | null = null;
  /** Set for QSslSocket while nothing may be read from the connection. */
  private readingPaused = false;
  private readonly options = new Map<SocketOption, number>();
  /** The proxy the current connection goes through; null for a direct connection. */
  private proxy: ProxyConnect | null = null;

  constructor(private readonly host: SocketEngineHost) {}

  // ---------------------------------------------------------------- connecting

  prepareConnect(host: string, port: number): boolean {
    const proxy = resolveProxy(this.host.socket.proxy(), host, port);
    if (!proxy) {
      // No proxy that can tunnel: Qt fails at once, before any state change.
      this.host.setErrorAndEmit(
        SocketError.UnsupportedSocketOperationError,
        ErrorText.OperationNotSupported,
      );
      return false;
    }
    this.host.resetSocketLayer();
    this.proxy =
      proxy.type() === ProxyType.NoProxy
        ? null
        : new ProxyConnect(proxy, this.host, CONNECT_TIMEOUT_MS, (tunnel, target) =>
            this.onTunnelEstablished(tunnel, target),
          );
    this.writeQueue.clear();
    this.held.clear();
    this.port = port;
    return true;
  }

  proxyResolvesNames(): boolean {
    return this.proxy !== null && this.proxy.resolvesNames();
  }

  connectToName(name: string): void {
    this.proxy?.open(name, this.port);
  }

  connectTo(addresses: QHostAddress[]): void {
    this.addressesToTry = addresses.map((a) => a.toNodeAddress());
    this.lastConnectError = null;
    this.connectToNextAddress();
  }

  /**
   * Binds the local end of the next connection. Node binds a TCP client socket only when
   * it connects, so a port taken elsewhere is reported by connectToHost; here, as in Qt, an
   * address that is not on this host is refused with SocketAddressNotAvailableError, and a
   * port bound by another socket of this process with AddressInUseError unless both share
   * it (see tcp-bindings.ts).
   */
  bind(address: BindAddress, port: number, mode: number): boolean {
    if (this.host.socket.state() !== SocketState.UnconnectedState) {
      qWarning('QNativeSocketEngine::bind() was not called in QAbstractSocket::UnconnectedState');
      this.host.setErrorAndEmit(SocketError.UnknownSocketError, ErrorText.Unknown);
      return false;
    }
    const addr = address instanceof QHostAddress ? address : new QHostAddress(address);
    if (addr.isNull() || !isLocalAddress(addr)) {
      this.host.setErrorAndEmit(
        SocketError.SocketAddressNotAvailableError,
        ErrorText.AddressNotAvailable,
      );
      return false;
    }
    this.forgetBinding();
    const binding = claimTcpBinding(this, addr, port, mode);
    if (!binding) {
      this.host.setErrorAndEmit(SocketError.AddressInUseError, ErrorText.AddressInUse);
      return false;
    }
    this.binding = binding;
    this.host.setLocal(addr, port);
    this.host.setStateAndEmit(SocketState.BoundState);
    return true;
  }

  /** True while the socket has a local end from `bind` (kept through failed connects, as Qt). */
  hasBinding(): boolean {
    return this.binding !== null;
  }

  forgetBinding(): void {
    if (this.binding) releaseTcpBinding(this.binding);
    this.binding = null;
  }

  adopt(descriptor: number | NativeSocketHandle, state: SocketState, mode: OpenMode): boolean {
    this.host.resetSocketLayer();
    let sock: net.Socket;
    try {
      sock =
        typeof descriptor === 'number'
          ? new net.Socket({ fd: descriptor, allowHalfOpen: true, readable: true, writable: true })
          : descriptor;
    } catch {
      this.host.setError(SocketError.UnsupportedSocketOperationError, ErrorText.InvalidDescriptor);
      return false;
    }
    if (!this.host.acceptsNativeSocket(sock)) {
      if (typeof descriptor === 'number') sock.destroy();
      this.host.setError(SocketError.UnsupportedSocketOperationError, ErrorText.InvalidDescriptor);
      return false;
    }
    this.host.beginSession(mode, '');
    this.writeQueue.clear();
    this.held.clear();
    this.attach(sock);
    this.fetchConnectionParameters();
    if (this.host.socket.state() !== state) this.host.setStateAndEmit(state);
    if (this.sock === sock) sock.resume();
    return true;
  }

  reset(): void {
    this.readingPaused = false;
    this.clearConnectTimer();
    this.proxy?.cancel();
    this.options.clear();
    this.unconfirmed = 0;
    const sock = this.sock;
    this.sock = null;
    if (sock && !sock.destroyed) sock.destroy();
  }

  // ---------------------------------------------------------------- the connection

  isValid(): boolean | null {
    return this.sock !== null ? !this.sock.destroyed : null;
  }

  descriptor(): number {
    return nativeDescriptor(this.sock);
  }

  stopReading(): void {
    this.sock?.pause();
  }

  drainBeforeClose(): boolean {
    if (!this.sock || !this.writesPending()) return false;
    // As in Qt, the data goes out from the event loop: bytesToWrite() still counts it
    // when disconnectFromHost() returns.
    this.scheduleFlush();
    return true;
  }

  /**
   * For QSslSocket: puts a protocol layer (TLS) over the connection. Bytes already queued
   * for writing are handed to the current connection first, unless writes are held (Qt's
   * plain socket has them already); bytes received and not read yet are pushed back into
   * it (in Qt they are still in the plain socket, so the new layer reads them first).
   * `layer` gets the current Node socket, paused, and returns the socket that carries the
   * connection from then on. Returns false when there is no connection.
   */
  layerSocket(layer: (sock: net.Socket) => net.Socket): boolean {
    const sock = this.sock;
    if (!sock || sock.destroyed) return false;
    this.flushWrites();
    sock.pause();
    const buffer = this.host.buffer;
    this.held.moveTo(buffer, this.held.size);
    if (buffer.size > 0) sock.unshift(buffer.read(buffer.size));
    this.attach(layer(sock));
    return true;
  }

  // ---------------------------------------------------------------- reading and writing

  bytesToWrite(): number {
    return this.writeQueue.size + (this.sock ? this.sock.writableLength : 0);
  }

  writesPending(): boolean {
    return (
      this.writeQueue.size > 0 ||
      this.unconfirmed > 0 ||
      (this.sock !== null && this.sock.writableLength > 0)
    );
  }

  flush(): boolean {
    return this.flushWrites();
  }

  discardWrites(): void {
    this.writeQueue.clear();
  }

  /**
   * While `paused`, the connection is not read (QSslSocket's PauseOnSslErrors); un-pausing
   * resumes it from the event loop, as far as the read buffer's limit allows.
   */
  setReadingPaused(paused: boolean): void {
    this.readingPaused = paused;
    if (paused) this.sock?.pause();
    else this.scheduleRefill();
  }

  /** While `held`, written data stays queued; releasing it sends what waits on the next tick. */
  setWritesHeld(held: boolean): void {
    this.writesHeld = held;
    if (!held && this.writeQueue.size > 0) this.scheduleFlush();
  }

  readBufferSize(): number {
    return this.readBufferMax;
  }

  setReadBufferSize(size: number): void {
    if (size === this.readBufferMax) return;
    this.readBufferMax = size;
    if (size !== 0 && this.host.buffer.size >= size) this.sock?.pause();
    this.scheduleRefill();
  }

  bufferConsumed(): void {
    if (this.readBufferMax > 0) this.scheduleRefill();
  }

  readData(maxSize: number): Buffer | null {
    // Every byte received is in the device's buffer already: this only tells the end.
    if (!this.sock || this.host.socket.state() !== SocketState.ConnectedState) {
      return maxSize > 0 ? null : NO_BYTES;
    }
    return NO_BYTES;
  }

  writeData(data: Buffer): number {
    const s = this.host.socket.state();
    if (s === SocketState.UnconnectedState) {
      this.host.setError(SocketError.UnknownSocketError, ErrorText.NotConnected);
      return -1;
    }
    this.writeQueue.push(data);
    if (s === SocketState.ConnectedState || s === SocketState.ClosingState) this.scheduleFlush();
    return data.length;
  }

  // ---------------------------------------------------------------- options

  /**
   * LowDelayOption (TCP_NODELAY) and KeepAliveOption (SO_KEEPALIVE) apply while there is a
   * connection; Node cannot set the others on a TCP socket.
   */
  setOption(option: SocketOption, value: number): void {
    const sock = this.sock;
    if (!sock) return;
    switch (option) {
      case SocketOption.LowDelayOption:
        sock.setNoDelay(value !== 0);
        this.options.set(option, value !== 0 ? 1 : 0);
        break;
      case SocketOption.KeepAliveOption:
        sock.setKeepAlive(value !== 0, this.host.socket.keepAliveIdleTime());
        this.options.set(option, value !== 0 ? 1 : 0);
        break;
      default:
        warnOptionUnsupported(option);
    }
  }

  option(option: SocketOption): number | undefined {
    if (!this.sock) return undefined;
    switch (option) {
      case SocketOption.LowDelayOption:
      case SocketOption.KeepAliveOption:
        return this.options.get(option) ?? 0;
      default:
        return -1;
    }
  }

  setKeepAliveIdle(msecs: number): void {
    if (this.sock && this.options.get(SocketOption.KeepAliveOption) === 1) {
      this.sock.setKeepAlive(true, msecs);
    }
  }

  // ---------------------------------------------------------------- internals

  private connectToNextAddress(): void {
    if (this.proxy) {
      // The proxy gets the first address; it makes its own attempts.
      const target = this.addressesToTry.shift();
      this.addressesToTry = [];
      if (target !== undefined) this.proxy.open(target, this.port);
      return;
    }
    const address = this.addressesToTry.shift();
    if (address === undefined) {
      const failure = this.lastConnectError ?? {
        error: SocketError.ConnectionRefusedError,
        text: ErrorText.ConnectionRefused,
      };
      this.host.failConnect(failure.error, failure.text);
      return;
    }
    this.host.resetSocketLayer();
    const sock = new net.Socket({ allowHalfOpen: true });
    this.attach(sock);
    const generation = this.host.generation();
    const connectOptions: net.TcpSocketConnectOpts = { host: address, port: this.port };
    if (this.binding) {
      const local = this.binding.address.toNodeAddress();
      if (local !== '::' && local !== '0.0.0.0') connectOptions.localAddress = local;
      if (this.binding.port) connectOptions.localPort = this.binding.port;
    }
    this.connectTimer = setTimeout(() => {
      if (generation !== this.host.generation()) return;
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
    const generation = this.host.generation();
    const current = (): boolean => this.sock === sock && this.host.generation() === generation;
    const remoteClosed: MappedError = {
      error: SocketError.RemoteHostClosedError,
      text: ErrorText.RemoteHostClosed,
    };
    sock.on('connect', () => {
      if (current()) this.onConnected();
    });
    sock.on('data', (chunk: Buffer) => {
      if (current()) this.onData(chunk);
    });
    sock.on('end', () => {
      if (current()) this.onRemoteClosed(remoteClosed);
    });
    // An 'error' listener stays for the socket's whole life, so that an error after the
    // socket was dropped is never an unhandled 'error' event.
    sock.on('error', (err: Error) => {
      if (current()) this.onSocketError(err);
    });
    sock.on('close', () => {
      if (current() && this.host.socket.state() !== SocketState.ConnectingState) {
        this.onRemoteClosed(remoteClosed);
      }
    });
  }

  private onConnected(fetchParameters = true): void {
    this.clearConnectTimer();
    this.addressesToTry = [];
    if (fetchParameters) this.fetchConnectionParameters();
    if (this.host.connectionEstablished() && this.writeQueue.size > 0) this.scheduleFlush();
  }

  private onTunnelEstablished(tunnel: Tunnel, target: string): void {
    const sock = tunnel.socket;
    this.attach(sock);
    // Through SOCKS5 the local end is what the proxy reports (BND.ADDR/BND.PORT); through
    // HTTP it is this end of the connection to the proxy. The peer is the target, whose
    // address is known only when it was given as one.
    this.host.setLocal(
      new QHostAddress(tunnel.boundAddress ?? sock.localAddress ?? ''),
      tunnel.boundPort ?? sock.localPort ?? 0,
    );
    this.host.setPeer(new QHostAddress(net.isIP(target) ? target : ''), this.port);
    this.onConnected(false);
    if (this.sock === sock) {
      if (tunnel.head.length > 0) this.onData(tunnel.head);
      sock.resume();
    }
  }

  private fetchConnectionParameters(): void {
    const sock = this.sock;
    if (!sock) return;
    this.host.setLocal(new QHostAddress(sock.localAddress ?? ''), sock.localPort ?? 0);
    this.host.setPeer(new QHostAddress(sock.remoteAddress ?? ''), sock.remotePort ?? 0);
  }

  private onData(chunk: Buffer): void {
    if (!this.host.socket.isReadable()) {
      // Opened write-only (or closed): Qt discards the input, but a waitForReadyRead
      // still sees that data arrived.
      this.host.readActivity();
      return;
    }
    const buffer = this.host.buffer;
    let visible = chunk;
    if (this.readBufferMax > 0) {
      const room = this.readBufferMax - buffer.size;
      if (room < chunk.length) {
        visible = chunk.subarray(0, Math.max(0, room));
        this.held.push(chunk.subarray(visible.length));
        this.sock?.pause();
      }
    }
    if (visible.length === 0) return;
    buffer.push(visible);
    this.host.readActivity();
    this.host.emitReadyRead();
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
    const buffer = this.host.buffer;
    const room = this.readBufferMax === 0 ? Infinity : this.readBufferMax - buffer.size;
    if (room <= 0) return;
    const moved = this.held.moveTo(buffer, room);
    if (
      this.held.size === 0 &&
      !this.readingPaused &&
      sock.isPaused() &&
      this.host.socket.state() === SocketState.ConnectedState
    ) {
      sock.resume();
    }
    if (moved > 0 && this.host.socket.isReadable()) {
      this.host.readActivity();
      this.host.emitReadyRead();
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(this.flushOnTick);
  }

  /** scheduleFlush's callback, made once: no closure per flush. */
  private readonly flushOnTick = (): void => {
    this.flushScheduled = false;
    this.flushWrites();
  };

  private flushWrites(): boolean {
    const sock = this.sock;
    const s = this.host.socket.state();
    if (!sock || (s !== SocketState.ConnectedState && s !== SocketState.ClosingState)) return false;
    if (this.writesHeld) return false;
    // The batch bounds what Node holds for the kernel. A write the kernel took at once is
    // confirmed (its callback) only on the next tick, so counting unconfirmed bytes instead
    // would stop a long synchronous run of flushes (a burst of events) after 1 MiB.
    const room = WRITE_BATCH_BYTES - Math.min(this.unconfirmed, sock.writableLength);
    if (this.writeQueue.size === 0 || room <= 0) return false;
    const chunks = this.writeQueue.take(room);
    let total = 0;
    for (const chunk of chunks) total += chunk.length;
    const generation = this.host.generation();
    this.unconfirmed += total;
    const done = (err?: Error | null): void => {
      // The generation, not the Node socket, tells whether this is still the same
      // connection: `layerSocket` swaps the socket of a connection that goes on.
      if (this.host.generation() !== generation) return;
      this.unconfirmed -= total;
      if (err) return;
      this.onBytesWritten(total);
      // The next batch of a backlog (a slot may have flushed it already).
      if (this.host.generation() === generation) this.flushWrites();
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
    this.host.emitBytesWritten(n);
    if (this.host.socket.state() === SocketState.ClosingState && !this.writesPending()) {
      this.host.socket.disconnectFromHost();
    }
  }

  private onSocketError(err: Error): void {
    if (this.host.socket.state() === SocketState.ConnectingState) {
      this.clearConnectTimer();
      if ((err as { syscall?: string }).syscall === 'bind') {
        // The local end given to bind() is taken (Qt would have failed in bind()): every
        // address would fail the same way.
        const mapped = mapBindError(err);
        this.addressesToTry = [];
        this.host.failConnect(mapped.error, mapped.text);
        return;
      }
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
      this.host.setErrorAndEmit(mapped.error, mapped.text);
      this.host.socket.abort();
      return;
    }
    this.onRemoteClosed(mapped);
  }

  /** The connection ended from the other side (or failed): Qt's order of signals. */
  private onRemoteClosed(reason: MappedError): void {
    const s = this.host.socket.state();
    if (s !== SocketState.ConnectedState && s !== SocketState.ClosingState) return;
    // Bytes held back by readBufferSize are still the peer's data: keep them readable.
    this.held.moveTo(this.host.buffer, this.held.size);
    const generation = this.host.generation();
    this.host.setErrorAndEmit(reason.error, reason.text);
    if (generation !== this.host.generation()) return;
    this.host.resetSocketLayer();
    this.writeQueue.clear();
    this.host.socket.disconnectFromHost();
  }

  private clearConnectTimer(): void {
    if (this.connectTimer) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
  }
}

/** Whether `addr` is the any-address, a loopback address or an address of this host. */
function isLocalAddress(addr: QHostAddress): boolean {
  const text = addr.toNodeAddress();
  if (text === '::' || text === '0.0.0.0' || addr.isLoopback()) return true;
  const interfaces = os.networkInterfaces();
  return Object.values(interfaces).some((list) =>
    (list ?? []).some((i) => new QHostAddress(i.address).isEqual(addr)),
  );
}
