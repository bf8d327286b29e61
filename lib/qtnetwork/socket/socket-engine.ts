import type * as net from 'node:net';

import type { ByteQueue } from '../core/byte-queue.js';
import type { OpenMode } from '../core/open-mode.js';
import { qWarning } from '../core/qlogging.js';
import type { QHostAddress } from '../kernel/qhost-address.js';
import { SocketOption, type SocketError, type SocketState } from '../kernel/socket-enums.js';
import type { BindAddress } from './bind-request.js';
import type { NativeSocketHandle } from './native-handle.js';
import type { QAbstractSocket } from './qabstract-socket.js';

/**
 * The layer under a QAbstractSocket that owns the operating-system socket (Qt's
 * QAbstractSocketEngine): one per kind of socket, TCP (TcpConnectEngine) or UDP
 * (UdpSocketEngine). QAbstractSocket keeps the state machine, the signals and the waits, and
 * asks its engine for everything that depends on the kind of socket. Optional members are
 * what only some kinds do; a missing one does nothing (or answers false, 0).
 */
export interface SocketEngine {
  // ---------------------------------------------------------------- connecting

  /**
   * Gets ready for `connectToHost(host, port)`, before any state change. False when the
   * connection cannot even start (the engine has reported the error with errorOccurred).
   */
  prepareConnect(host: string, port: number): boolean;
  /** True when the connection goes through a proxy that resolves host names itself. */
  proxyResolvesNames?(): boolean;
  /** Connects to `name` through that proxy (the socket is in ConnectingState). */
  connectToName?(name: string): void;
  /** Whether `address` can be reached from this socket; the others are not tried. */
  canReach?(address: QHostAddress): boolean;
  /** Connects to `addresses` (the first that answers); hostFound has been emitted. */
  connectTo(addresses: QHostAddress[]): void;
  /** A connect attempt failed, the socket layer is reset; anything the kind forgets then. */
  connectFailed?(): void;
  /** QAbstractSocket.bind for this kind of socket (the port is checked already). */
  bind(address: BindAddress, port: number, mode: number): boolean | Promise<boolean>;
  /** True while a local end given to `bind` waits for the next connection (TCP). */
  hasBinding?(): boolean;
  /** Forgets the address `bind` asked for (the socket's addresses are being cleared). */
  forgetBinding?(): void;
  /** QAbstractSocket.setSocketDescriptor for this kind of socket. */
  adopt(descriptor: number | NativeSocketHandle, state: SocketState, mode: OpenMode): boolean;
  /** Drops the operating-system socket and whatever is in flight on it (Qt's resetSocketLayer). */
  reset(): void;
  /** Called by close() and abort() in UnconnectedState: drops a socket still being set up. */
  closeUnconnected?(): void;

  // ---------------------------------------------------------------- the connection

  /** Whether the operating-system socket can be used; null when there is none. */
  isValid(): boolean | null;
  /** The operating-system descriptor, or -1. */
  descriptor(): number;
  /** Closing: stop taking data from the kernel. */
  stopReading?(): void;
  /** Closing: true if written data must still go out first (and has been sent on its way). */
  drainBeforeClose?(): boolean;

  // ---------------------------------------------------------------- reading and writing

  /** Bytes readable beyond the device's buffer (a UDP socket's next datagram). */
  readableBeyondBuffer?(): number;
  /** Bytes written and not yet handed to the operating system. */
  bytesToWrite(): number;
  /** True while written data has not been reported by bytesWritten yet. */
  writesPending?(): boolean;
  /** Hands buffered writes to the operating system now; true if anything was handed over. */
  flush?(): boolean;
  /** Drops the data waiting to be written. */
  discardWrites(): void;
  /** The read buffer's limit in bytes (0 = unbounded). */
  readBufferSize(): number;
  /** Sets that limit (already checked to be a non-negative integer). */
  setReadBufferSize(size: number): void;
  /** The application took bytes from the device's buffer. */
  bufferConsumed?(): void;
  /** QIODevice.readData for this kind of socket. */
  readData(maxSize: number): Buffer | null;
  /** QIODevice.writeData for this kind of socket. */
  writeData(data: Buffer): number;
  /** For waitForReadyRead: true if data is waiting already (readyRead emitted if it is due). */
  announceReadable?(): boolean;

  // ---------------------------------------------------------------- options

  /** Sets an option (the value as a number). */
  setOption(option: SocketOption, value: number): void;
  /** An option's value; undefined without an operating-system socket. */
  option(option: SocketOption): number | undefined;
  /** The keepalive idle time changed (ms; 0 = the system's). */
  setKeepAliveIdle?(msecs: number): void;
}

/**
 * What an engine may do to the socket above it: the socket's public calls and signals
 * through `socket`, and the protected parts of QAbstractSocket through these functions.
 */
export interface SocketEngineHost {
  /** The socket itself (its state, signals and public calls). */
  readonly socket: QAbstractSocket;
  /** The device's read buffer (what `read()` serves). */
  readonly buffer: ByteQueue;
  /** The number of the current connection: it changes on every connect attempt and reset. */
  generation(): number;
  /** Changes the state and emits stateChanged. */
  setStateAndEmit(state: SocketState): void;
  /** Sets the error and its text without emitting. */
  setError(error: SocketError, text: string): void;
  /** Sets the error and its text, then emits errorOccurred. */
  setErrorAndEmit(error: SocketError, text: string): void;
  /** Sets what `localAddress()` and `localPort()` report. */
  setLocal(address: QHostAddress, port: number): void;
  /** Sets what `peerAddress()` and `peerPort()` report. */
  setPeer(address: QHostAddress, port: number): void;
  /** Resets the engine (`reset`) and starts a new generation. */
  resetSocketLayer(): void;
  /** Ends a failed connect attempt: UnconnectedState, then errorOccurred. */
  failConnect(error: SocketError, text: string): void;
  /**
   * The engine has connected: ConnectedState, connected, then a close asked for meanwhile.
   * True if the connection is still up and nobody asked to close it.
   */
  connectionEstablished(): boolean;
  /** An adopted connection starts: no error, the device open in `mode`, no close pending. */
  beginSession(mode: OpenMode, peerName: string): void;
  /** Data arrived from the peer, even if it was discarded: wakes waitForReadyRead. */
  readActivity(): void;
  /** Emits readyRead, unless a slot connected to it is running. */
  emitReadyRead(): void;
  /** True while a slot connected to readyRead is running (Qt does not re-emit it then). */
  emittingReadyRead(): boolean;
  /** Emits bytesWritten(n), unless a slot connected to it is running. */
  emitBytesWritten(n: number): void;
  /** Whether a connection handed to setSocketDescriptor is of this socket's kind. */
  acceptsNativeSocket(sock: net.Socket): boolean;
}

/** The warning for an option the engine cannot set, in Qt's words. */
export function warnOptionUnsupported(option: SocketOption): void {
  qWarning(
    `QAbstractSocket::setSocketOption: ${SocketOption[option] ?? option} is not supported by Node.js on this socket`,
  );
}
