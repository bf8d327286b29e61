import * as net from 'node:net';

import { fullLocalServerName, nativeLocalAddress, socketPathProblem } from './local-names.js';
import {
  LocalSocketError,
  LocalSocketOption,
  LocalSocketState,
  type LocalSocketOptions,
} from './local-socket-enums.js';
import { errnoCode } from './native-errors.js';
import { LocalStreamSocket } from './local-stream-socket.js';
import type { NativeSocketHandle } from './native-handle.js';
import { OpenModeFlag, type OpenMode } from '../core/open-mode.js';
import { QIODevice } from '../core/qiodevice.js';
import { qWarning } from '../core/qlogging.js';
import { Signal } from '../core/signal.js';
import { timeLeft } from '../core/time-left.js';
import { waitOn } from '../core/wait-on.js';
import { SocketState } from '../kernel/socket-enums.js';

/** How long a connect may keep retrying while the server's backlog is full (Qt: 30 s). */
const CONNECT_TIMEOUT_MS = 30000;
/** Pause between retries while the server's backlog is full. */
const RETRY_DELAY_MS = 100;

/** Qt's texts for local socket errors: "<function>: <what>". */
function localErrorText(error: LocalSocketError, fn: string, detail?: string): string {
  const what = ((): string => {
    switch (error) {
      case LocalSocketError.ConnectionRefusedError:
        return 'Connection refused';
      case LocalSocketError.PeerClosedError:
        return 'Remote closed';
      case LocalSocketError.ServerNotFoundError:
        return 'Invalid name';
      case LocalSocketError.SocketAccessError:
        return 'Socket access error';
      case LocalSocketError.SocketResourceError:
        return 'Socket resource error';
      case LocalSocketError.SocketTimeoutError:
        return 'Socket operation timed out';
      case LocalSocketError.DatagramTooLargeError:
        return 'Datagram too large';
      case LocalSocketError.ConnectionError:
        return 'Connection error';
      case LocalSocketError.UnsupportedSocketOperationError:
        return 'The socket operation is not supported';
      case LocalSocketError.OperationError:
        return 'Operation not permitted when socket is in this state';
      default:
        return `Unknown error${detail ? ` ${detail}` : ''}`;
    }
  })();
  return `${fn}: ${what}`;
}

/** Maps an error of connecting to a local socket as Qt's QLocalSocket does. */
function mapLocalConnectError(err: unknown): LocalSocketError | 'retry' {
  switch (errnoCode(err)) {
    case 'EINVAL':
    case 'ECONNREFUSED':
    case 'ENOTSOCK':
      return LocalSocketError.ConnectionRefusedError;
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ENAMETOOLONG':
      return LocalSocketError.ServerNotFoundError;
    case 'EACCES':
    case 'EPERM':
      return LocalSocketError.SocketAccessError;
    case 'ETIMEDOUT':
      return LocalSocketError.SocketTimeoutError;
    case 'EAGAIN':
      // Every slot of the server's backlog is taken: Qt tries again later.
      return 'retry';
    case 'EMFILE':
    case 'ENFILE':
    case 'ENOBUFS':
    case 'ENOMEM':
      return LocalSocketError.SocketResourceError;
    default:
      return LocalSocketError.UnknownSocketError;
  }
}

/**
 * A local (Unix-domain, or on Windows named-pipe) connection, as Qt's QLocalSocket.
 *
 * Names follow Qt: an absolute path is used as is, any other name is a socket in the temp
 * directory (see `fullServerName()`). Signals, errors and texts are Qt's
 * ("QLocalSocket::connectToServer: Invalid name", "QLocalSocket: Remote closed", ...).
 * Reading, writing, `readBufferSize` backpressure and the waits behave as for QTcpSocket.
 *
 * Difference from Qt: Qt connects to a Unix socket synchronously inside
 * `connectToServer`; Node connects asynchronously, so `connected` comes after the call
 * returns (use `waitForConnected` or the signal).
 */
export class QLocalSocket extends QIODevice {
  static readonly LocalSocketState = LocalSocketState;
  static readonly LocalSocketError = LocalSocketError;
  static readonly SocketOption = LocalSocketOption;

  /** Emitted when the connection is established. */
  readonly connected = new Signal<[]>('connected');
  /** Emitted when an established connection has closed. */
  readonly disconnected = new Signal<[]>('disconnected');
  /** Emitted on every state change, with the new state. */
  readonly stateChanged = new Signal<[state: LocalSocketState]>('stateChanged');
  /** Emitted when an error occurs; `errorString()` describes it. */
  readonly errorOccurred = new Signal<[error: LocalSocketError]>('errorOccurred');

  private readonly stream = new LocalStreamSocket();
  private socketState = LocalSocketState.UnconnectedState;
  private socketError = LocalSocketError.UnknownSocketError;
  private name = '';
  private fullName = '';
  private options: LocalSocketOptions = LocalSocketOption.NoOptions;
  private connecting: net.Socket | null = null;
  private connectingMode: OpenMode = OpenModeFlag.NotOpen;
  private retryTimer: NodeJS.Timeout | null = null;
  private deadline = 0;
  /** Incremented on every connect attempt and reset, so late callbacks of old ones are ignored. */
  private generation = 0;

  constructor() {
    super();
    const s = this.stream;
    s.readyRead.connect(() => this.readyRead.emit());
    s.bytesWritten.connect((n) => this.bytesWritten.emit(n));
    s.disconnected.connect(() => this.disconnected.emit());
    s.readChannelFinished.connect(() => this.readChannelFinished.emit());
    s.stateChanged.connect((state) => this.onStreamState(state));
    s.errorOccurred.connect((error) => {
      // The stream's errors share their values with LocalSocketError (RemoteHostClosedError
      // is PeerClosedError, NetworkError is ConnectionError, ...), as Qt casts them.
      const local = error as number as LocalSocketError;
      this.socketError = local;
      this.setErrorString(localErrorText(local, 'QLocalSocket'));
      this.errorOccurred.emit(local);
    });
  }

  // ---------------------------------------------------------------- connecting

  /**
   * Connects to the server `name` (or, without a name, the one set by `setServerName`),
   * opening the device in `mode` once connected. Emits stateChanged(ConnectingState) at
   * once; then stateChanged(ConnectedState) and connected, or errorOccurred then
   * stateChanged(UnconnectedState) (Qt's order for local sockets). Errors:
   * ServerNotFoundError (no such name, empty, or a path too long for a socket address),
   * ConnectionRefusedError (nobody accepts: a stale socket file or not a socket),
   * SocketAccessError (permission denied). While the server's backlog is full the
   * connect is retried, for up to 30 s, as Qt does.
   */
  connectToServer(name?: string | OpenMode, mode: OpenMode = OpenModeFlag.ReadWrite): void {
    if (typeof name === 'string') {
      this.setServerName(name);
    } else if (typeof name === 'number') {
      mode = name;
    }
    const s = this.socketState;
    if (s === LocalSocketState.ConnectedState || s === LocalSocketState.ConnectingState) {
      // (Qt spells the function "connectToserver" in this one message.)
      this.setError(LocalSocketError.OperationError, 'QLocalSocket::connectToserver');
      this.errorOccurred.emit(LocalSocketError.OperationError);
      return;
    }
    this.setErrorString('');
    this.socketError = LocalSocketError.UnknownSocketError;
    this.setState(LocalSocketState.ConnectingState);
    if (this.socketState !== LocalSocketState.ConnectingState) return;
    if (this.name === '') {
      this.failConnect(LocalSocketError.ServerNotFoundError);
      return;
    }
    this.fullName = fullLocalServerName(this.name);
    if (socketPathProblem(this.fullName)) {
      this.failConnect(LocalSocketError.ServerNotFoundError);
      return;
    }
    this.connectingMode = mode;
    this.deadline = Date.now() + CONNECT_TIMEOUT_MS;
    this.tryConnect();
  }

  /**
   * Qt's `open(mode)` for a local socket: `connectToServer(mode)` with the name set by
   * `setServerName`, then whether the device is open. Node connects asynchronously, so
   * this is false until `connected` (Qt: true at once for a listening server).
   */
  override open(mode: OpenMode): boolean {
    this.connectToServer(mode);
    return this.isOpen();
  }

  /**
   * Adopts an existing local connection: an accepted one from QLocalServer, or a
   * descriptor number of a connected Unix-domain socket. Enters `state` (default
   * ConnectedState) without emitting stateChanged, as Qt does.
   */
  setSocketDescriptor(
    descriptor: number | NativeSocketHandle,
    state: LocalSocketState = LocalSocketState.ConnectedState,
    mode: OpenMode = OpenModeFlag.ReadWrite,
  ): boolean {
    this.cancelConnect();
    super.open(mode);
    this.socketState = state;
    this.name = '';
    this.fullName = '';
    // As in Qt, a descriptor the stream refuses leaves the state and mode as given.
    return this.stream.setSocketDescriptor(descriptor, state as number as SocketState, mode);
  }

  /**
   * Sets the name to connect to; only while unconnected (otherwise Qt's warning and no
   * change). `serverName()` returns it until the connection ends.
   */
  setServerName(name: string): void {
    if (this.socketState !== LocalSocketState.UnconnectedState) {
      qWarning('QLocalSocket::setServerName() called while not in unconnected state');
      return;
    }
    this.name = name;
  }

  /** The name given to `connectToServer`/`setServerName`; "" once unconnected and for accepted sockets. */
  serverName(): string {
    return this.name;
  }

  /** The path (or pipe name) connected to; "" when not connected. */
  fullServerName(): string {
    return this.fullName;
  }

  /** Sets QLocalSocket.SocketOption flags (AbstractNamespaceOption: Linux's abstract namespace). */
  setSocketOptions(options: LocalSocketOptions): void {
    this.options = options;
  }

  /** The socket options. */
  socketOptions(): LocalSocketOptions {
    return this.options;
  }

  /**
   * Closes once pending writes are written: stateChanged(ClosingState), bytesWritten,
   * stateChanged(UnconnectedState), readChannelFinished, disconnected. While connecting, it
   * abandons the attempt (stateChanged(UnconnectedState)).
   */
  disconnectFromServer(): void {
    if (this.cancelConnect()) return;
    this.stream.disconnectFromHost();
  }

  /**
   * Drops unwritten data, ends the connection at once and closes the device, in Qt 6's
   * order: the connection first (stateChanged(UnconnectedState), readChannelFinished,
   * disconnected, with the device still open), then the device (aboutToClose, openMode()
   * NotOpen). A socket whose connection already ended but which is still open only closes
   * the device. Qt 5.15 emits aboutToClose first and leaves the device open
   * (docs/qt-differences.md, "Differences found by the differential suite").
   */
  abort(): void {
    this.cancelConnect();
    this.stream.abort();
    super.close();
    this.clearNames();
  }

  /** Closes the device (aboutToClose; unread data dropped) and the connection; pending writes are still written. */
  override close(): void {
    const wasConnecting = this.socketState === LocalSocketState.ConnectingState;
    super.close();
    if (wasConnecting) this.cancelConnect();
    this.stream.close();
    this.clearNames();
  }

  /** Hands buffered writes to the operating system now; true if anything was handed over. */
  flush(): boolean {
    return this.stream.flush();
  }

  // ---------------------------------------------------------------- state

  /** The current state. */
  state(): LocalSocketState {
    return this.socketState;
  }

  /** The last error; UnknownSocketError when none occurred. */
  error(): LocalSocketError {
    return this.socketError;
  }

  /** True while there is a usable connection. */
  isValid(): boolean {
    return this.stream.isValid();
  }

  /** The operating-system descriptor, or -1. */
  socketDescriptor(): number {
    return this.stream.socketDescriptor();
  }

  // ---------------------------------------------------------------- reading and writing

  /** Bytes readable now. */
  override bytesAvailable(): number {
    return super.bytesAvailable() + this.stream.bytesAvailable();
  }

  /**
   * Reads everything available now. What the stream holds is taken straight from its
   * buffer, so a chunk the kernel delivered reaches the caller as it is, as on a QTcpSocket
   * (QIODevice's readAll would read it in 16 KiB pieces through readData and join those:
   * one more copy of every larger chunk). A read transaction or Text mode takes QIODevice's
   * way, which keeps or translates the bytes.
   */
  override readAll(): Buffer {
    const available = this.stream.bytesAvailable();
    if (
      available === 0 ||
      this.buffer.size > 0 ||
      !this.isReadable() ||
      this.isTransactionStarted() ||
      this.isTextModeEnabled()
    ) {
      return super.readAll();
    }
    return this.stream.readBuffered(available);
  }

  /** Bytes written and not yet handed to the operating system. */
  override bytesToWrite(): number {
    return this.stream.bytesToWrite();
  }

  /** True if a complete line can be read now. */
  override canReadLine(): boolean {
    return super.canReadLine() || this.stream.canReadLine();
  }

  /** The read buffer's limit in bytes; 0 = unbounded (default). */
  readBufferSize(): number {
    return this.stream.readBufferSize();
  }

  /** Limits the read buffer (real backpressure, as QAbstractSocket.setReadBufferSize). */
  setReadBufferSize(size: number): void {
    this.stream.setReadBufferSize(size);
  }

  // ---------------------------------------------------------------- waiting

  /**
   * Resolves true once connected (at once if already), false if the attempt fails, or if
   * `msecs` pass (-1 = no limit); a timeout leaves the attempt running, as in Qt.
   */
  waitForConnected(msecs = 30000): Promise<boolean> {
    if (this.socketState !== LocalSocketState.ConnectingState) {
      return Promise.resolve(this.socketState === LocalSocketState.ConnectedState);
    }
    return waitOn(
      msecs,
      (settle) => [
        this.connected.connect(() => settle(true)),
        this.stateChanged.connect((st) => {
          if (st === LocalSocketState.UnconnectedState) settle(false);
        }),
      ],
      () => undefined,
    );
  }

  /** Resolves true when new data arrives; a timeout emits SocketTimeoutError and leaves the socket open. */
  override async waitForReadyRead(msecs = 30000): Promise<boolean> {
    if (this.socketState === LocalSocketState.UnconnectedState) return false;
    const start = Date.now();
    if (this.socketState === LocalSocketState.ConnectingState) {
      if (!(await this.waitForConnected(msecs))) return false;
    }
    return this.stream.waitForReadyRead(timeLeft(msecs, start));
  }

  /** Resolves true when pending data has been handed to the operating system. */
  override waitForBytesWritten(msecs = 30000): Promise<boolean> {
    return this.stream.waitForBytesWritten(msecs);
  }

  /** Resolves true when the connection has closed; warns and resolves false when unconnected. */
  waitForDisconnected(msecs = 30000): Promise<boolean> {
    if (this.socketState === LocalSocketState.UnconnectedState) {
      qWarning('QLocalSocket::waitForDisconnected() is not allowed in UnconnectedState');
      return Promise.resolve(false);
    }
    return this.stream.waitForDisconnected(msecs);
  }

  // ---------------------------------------------------------------- QIODevice

  protected override readData(maxSize: number): Buffer | null {
    const available = this.stream.bytesAvailable();
    if (available > 0 && maxSize > 0) return this.stream.readBuffered(Math.min(maxSize, available));
    if (maxSize === 0 || this.socketState === LocalSocketState.ConnectedState) {
      return Buffer.alloc(0);
    }
    return null;
  }

  protected override writeData(data: Buffer): number {
    return this.stream.writeBytes(data);
  }

  /**
   * A line from the stream below, as Qt 6 reads it (Qt 5.15 reads byte by byte here, which
   * differs only in Text mode: it drops every '\r' of the line).
   */
  protected override readLineData(maxSize: number): Buffer | null {
    if (maxSize === 0) return Buffer.alloc(0);
    // QIODevice.readLine leaves room for a terminating NUL: ask for one byte more.
    return this.stream.readLine(maxSize + 1);
  }

  /** Skips in the stream below, as Qt 6 does. */
  protected override skipData(maxSize: number): number {
    return this.stream.skip(maxSize);
  }

  // ---------------------------------------------------------------- internals

  private tryConnect(): void {
    const generation = ++this.generation;
    const abstract = (this.options & LocalSocketOption.AbstractNamespaceOption) !== 0;
    const sock = new net.Socket({ allowHalfOpen: true });
    this.connecting = sock;
    const onConnect = (): void => {
      sock.removeListener('error', onError);
      if (generation !== this.generation || this.connecting !== sock) {
        sock.destroy();
        return;
      }
      this.connecting = null;
      const mode = this.connectingMode;
      if (!this.stream.setSocketDescriptor(sock, SocketState.ConnectedState, mode)) {
        sock.destroy();
        this.failConnect(LocalSocketError.UnknownSocketError);
        return;
      }
      // Qt opens a QLocalSocket unbuffered: the buffering happens in the stream below.
      super.open(mode | OpenModeFlag.Unbuffered);
      this.connected.emit();
    };
    const onError = (err: Error): void => {
      sock.removeListener('connect', onConnect);
      sock.destroy();
      if (generation !== this.generation || this.connecting !== sock) return;
      this.connecting = null;
      const mapped = mapLocalConnectError(err);
      if (mapped === 'retry') {
        if (Date.now() >= this.deadline) {
          this.failConnect(LocalSocketError.SocketTimeoutError);
          return;
        }
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          if (
            generation === this.generation &&
            this.socketState === LocalSocketState.ConnectingState
          ) {
            this.tryConnect();
          }
        }, RETRY_DELAY_MS);
        return;
      }
      this.failConnect(mapped, errnoCode(err));
    };
    sock.once('connect', onConnect);
    sock.once('error', onError);
    sock.connect({ path: nativeLocalAddress(this.fullName, abstract) });
  }

  /** Qt's order for a failed connect: errorOccurred, then stateChanged(UnconnectedState). */
  private failConnect(error: LocalSocketError, detail?: string): void {
    this.cancelConnect(false);
    this.setError(error, 'QLocalSocket::connectToServer', detail);
    this.errorOccurred.emit(error);
    if (this.socketState === LocalSocketState.UnconnectedState) return;
    this.clearNames();
    super.close();
    this.setState(LocalSocketState.UnconnectedState);
  }

  /**
   * Abandons a connection attempt in progress; returns true if there was one. With
   * `announce`, the state returns to Unconnected with stateChanged.
   */
  private cancelConnect(announce = true): boolean {
    if (this.socketState !== LocalSocketState.ConnectingState) return false;
    this.generation++;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    const sock = this.connecting;
    this.connecting = null;
    if (sock) {
      sock.removeAllListeners('connect');
      sock.on('error', () => undefined);
      sock.destroy();
    }
    if (announce) {
      this.clearNames();
      this.setState(LocalSocketState.UnconnectedState);
    }
    return true;
  }

  private onStreamState(state: SocketState): void {
    let next: LocalSocketState;
    switch (state) {
      case SocketState.UnconnectedState:
        next = LocalSocketState.UnconnectedState;
        this.clearNames();
        break;
      case SocketState.ConnectingState:
        next = LocalSocketState.ConnectingState;
        break;
      case SocketState.ConnectedState:
        next = LocalSocketState.ConnectedState;
        break;
      case SocketState.ClosingState:
        next = LocalSocketState.ClosingState;
        break;
      default:
        return;
    }
    this.setState(next);
  }

  private setState(state: LocalSocketState): void {
    if (this.socketState === state) return;
    this.socketState = state;
    this.stateChanged.emit(state);
  }

  private setError(error: LocalSocketError, fn: string, detail?: string): void {
    this.socketError = error;
    this.setErrorString(localErrorText(error, fn, detail));
  }

  private clearNames(): void {
    this.name = '';
    this.fullName = '';
  }
}
