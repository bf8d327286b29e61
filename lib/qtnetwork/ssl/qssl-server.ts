import { type NativeSocketHandle } from '../socket/native-handle.js';
import { QSslConfiguration } from './qssl-configuration.js';
import { QSslError } from './qssl-error.js';
import { type QSslPreSharedKeyAuthenticator } from './qssl-pre-shared-key-authenticator.js';
import { QSslSocket } from './qssl-socket.js';
import { QTcpServer } from '../socket/qtcp-server.js';
import { type QTcpSocket } from '../socket/qtcp-socket.js';
import { Signal } from '../core/signal.js';
import { SocketError, SocketState } from '../kernel/socket-enums.js';

/** Qt's default handshake timeout, in ms. */
const DEFAULT_HANDSHAKE_TIMEOUT = 5000;
/** The first byte of a TLS handshake record. */
const TLS_HANDSHAKE_RECORD = 0x16;

interface Handshake {
  timer: NodeJS.Timeout;
  disconnect: Array<() => void>;
}

/**
 * A TCP server whose connections are encrypted (Qt 6.4's QSslServer): each accepted
 * connection becomes a QSslSocket with the server's configuration and runs the server
 * handshake; only connections whose handshake succeeded are handed out. The server's
 * signals pass on those of the sockets still in their handshake, with the socket first.
 *
 * A client that sends something other than a TLS handshake is closed at its first byte,
 * one that fails the handshake (no certificate or an untrusted one where one is required,
 * a protocol error) is closed after errorOccurred(socket, error), and one that does not
 * finish within `handshakeTimeout()` is closed after errorOccurred(socket,
 * SocketTimeoutError). None of them reaches `nextPendingConnection()`.
 *
 * Bounds: connections in their handshake count against `maxPendingConnections()` together
 * with those handed out and not yet taken (as Qt 6.4 counts them); further connections wait
 * un-read in the accept queue, at most `listenBacklogSize()` of them, and any beyond are
 * refused. A flood of clients that never finish the handshake therefore holds at most
 * maxPendingConnections + listenBacklogSize descriptors, each for at most the handshake
 * timeout.
 *
 * Difference from Qt: Qt 6 emits `newConnection` as soon as a connection is accepted,
 * before its handshake, when `nextPendingConnection()` still returns null; the port emits
 * it (after `pendingConnectionAvailable`) when an encrypted socket is added, so code
 * written for QTcpServer works unchanged.
 */
export class QSslServer extends QTcpServer {
  /** A socket's verification errors (see QSslSocket.sslErrors); a slot may ignore them. */
  readonly sslErrors = new Signal<[socket: QSslSocket, errors: QSslError[]]>('sslErrors');
  /** A socket's verification error, as it is found (see QSslSocket.peerVerifyError). */
  readonly peerVerifyError = new Signal<[socket: QSslSocket, error: QSslError]>('peerVerifyError');
  /**
   * An error of a socket in its handshake; the socket is then closed and never handed out.
   * Also emitted with SocketTimeoutError when a handshake runs out of time.
   */
  readonly errorOccurred = new Signal<[socket: QSslSocket, socketError: SocketError]>(
    'errorOccurred',
  );
  /** A socket's first verification error, with early error reporting on (Qt 6). */
  readonly handshakeInterruptedOnError = new Signal<[socket: QSslSocket, error: QSslError]>(
    'handshakeInterruptedOnError',
  );
  /**
   * A socket in its handshake needs a pre-shared key (see
   * QSslSocket.preSharedKeyAuthenticationRequired): a slot fills in `authenticator`.
   */
  readonly preSharedKeyAuthenticationRequired = new Signal<
    [socket: QSslSocket, authenticator: QSslPreSharedKeyAuthenticator]
  >('preSharedKeyAuthenticationRequired');
  /** The client began a TLS handshake on `socket` (its first byte was a handshake record). */
  readonly startedEncryptionHandshake = new Signal<[socket: QSslSocket]>(
    'startedEncryptionHandshake',
  );

  private configuration = QSslConfiguration.defaultConfiguration();
  private timeoutMs = DEFAULT_HANDSHAKE_TIMEOUT;
  private readonly handshakes = new Map<QSslSocket, Handshake>();
  private readonly closeWaiters = new Set<() => void>();

  /** Sets the configuration of the connections accepted from now on (call it before `listen`). */
  setSslConfiguration(configuration: QSslConfiguration): void {
    this.configuration = new QSslConfiguration(configuration);
  }

  /** The configuration given to accepted connections. */
  sslConfiguration(): QSslConfiguration {
    return new QSslConfiguration(this.configuration);
  }

  /** Sets the time, in ms, a new connection has to finish its handshake (default 5000). */
  setHandshakeTimeout(timeout: number): void {
    if (!Number.isInteger(timeout) || timeout < 0) {
      throw new RangeError(
        `setHandshakeTimeout: timeout must be a non-negative integer, got ${timeout}`,
      );
    }
    this.timeoutMs = timeout;
  }

  /** The handshake timeout in ms. */
  handshakeTimeout(): number {
    return this.timeoutMs;
  }

  /** Takes the oldest encrypted connection, or null if none is pending. */
  override nextPendingConnection(): QSslSocket | null {
    return super.nextPendingConnection() as QSslSocket | null;
  }

  /**
   * Waits up to `msecs` (-1 = no limit) until an encrypted connection is pending:
   * `[true, false]` then, `[false, true]` on timeout (serverError() SocketTimeoutError),
   * `[false, false]` when the server is not listening or closes. Qt's returns as soon as
   * a connection is accepted, before its handshake; the port waits for the handshake.
   */
  override async waitForNewConnection(msecs = 0): Promise<[boolean, boolean]> {
    if (!this.isListening()) return [false, false];
    if (this.hasPendingConnections()) return [true, false];
    const outcome = await new Promise<'ready' | 'timeout' | 'closed'>((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const finish = (value: 'ready' | 'timeout' | 'closed'): void => {
        if (timer) clearTimeout(timer);
        offReady();
        this.closeWaiters.delete(onClose);
        resolve(value);
      };
      const offReady = this.pendingConnectionAvailable.connect(() => finish('ready'));
      const onClose = (): void => finish('closed');
      this.closeWaiters.add(onClose);
      if (msecs >= 0) timer = setTimeout(() => finish('timeout'), msecs);
    });
    if (outcome === 'ready') return [true, false];
    if (outcome === 'closed') return [false, false];
    // QTcpServer's own wait sets Qt's timeout error; with no time left it only does that
    // (and accepts a connection that is already waiting, as Qt's wait would).
    await super.waitForNewConnection(0);
    return [false, true];
  }

  /** Stops listening; connections still in their handshake are closed too. */
  override close(): void {
    for (const socket of [...this.handshakes.keys()]) {
      this.forget(socket);
      socket.abort();
    }
    for (const w of [...this.closeWaiters]) w();
    super.close();
  }

  /** Makes a QSslSocket of the connection and waits for the client's handshake. */
  protected override incomingConnection(handle: NativeSocketHandle): void {
    const socket = new QSslSocket();
    socket.setSslConfiguration(this.configuration);
    if (!socket.setSocketDescriptor(handle)) {
      handle.destroy();
      return;
    }
    const disconnect = [
      socket.peerVerifyError.connect((e) => this.peerVerifyError.emit(socket, e)),
      socket.sslErrors.connect((errors) => this.sslErrors.emit(socket, errors)),
      socket.handshakeInterruptedOnError.connect((e) =>
        this.handshakeInterruptedOnError.emit(socket, e),
      ),
      socket.preSharedKeyAuthenticationRequired.connect((authenticator) =>
        this.preSharedKeyAuthenticationRequired.emit(socket, authenticator),
      ),
      socket.errorOccurred.connect((e) => {
        this.errorOccurred.emit(socket, e);
        if (!socket.isEncrypted()) this.drop(socket);
      }),
      socket.encrypted.connect(() => {
        this.forget(socket);
        this.addPendingConnection(socket);
        this.newConnection.emit();
      }),
      socket.stateChanged.connect((state) => {
        // Closed during the handshake in any other way.
        if (state === SocketState.UnconnectedState) this.drop(socket);
      }),
    ];
    const offReadyRead = socket.readyRead.connect(() => {
      if (socket.bytesAvailable() <= 0) return;
      offReadyRead();
      if (socket.peek(1)[0] !== TLS_HANDSHAKE_RECORD) {
        // Not TLS: closed without a word, as Qt does.
        this.drop(socket);
        return;
      }
      const h = this.handshakes.get(socket);
      if (h) h.timer.refresh();
      socket.startServerEncryption();
      if (this.handshakes.has(socket)) this.startedEncryptionHandshake.emit(socket);
    });
    disconnect.push(offReadyRead);
    const timer = setTimeout(() => this.timedOut(socket), this.timeoutMs);
    this.handshakes.set(socket, { timer, disconnect });
  }

  /** Sockets are handed out when their handshake succeeds, with `newConnection` then. */
  protected override incomingConnectionDone(): void {}

  /** Pending connections plus those still in their handshake (as Qt 6.4 counts). */
  protected override totalPendingConnections(): number {
    return super.totalPendingConnections() + this.handshakes.size;
  }

  /**
   * Only encrypted QSslSockets are handed out: anything else (a connection relayed by a
   * SOCKS5 BIND, which the port does not encrypt) is closed.
   */
  protected override addPendingConnection(socket: QTcpSocket): void {
    if (!(socket instanceof QSslSocket) || !socket.isEncrypted()) {
      socket.abort();
      return;
    }
    super.addPendingConnection(socket);
  }

  private timedOut(socket: QSslSocket): void {
    if (!this.handshakes.has(socket)) return;
    this.forget(socket);
    socket['handshakeTimedOut']();
    socket.disconnectFromHost();
    this.errorOccurred.emit(socket, SocketError.SocketTimeoutError);
    socket.abort();
  }

  /** Stops following `socket`'s handshake (it succeeded or the socket goes). */
  private forget(socket: QSslSocket): boolean {
    const h = this.handshakes.get(socket);
    if (!h) return false;
    clearTimeout(h.timer);
    for (const d of h.disconnect) d();
    this.handshakes.delete(socket);
    this.pendingCountDropped();
    return true;
  }

  /** The handshake failed: the socket is closed (Qt deletes it) and never handed out. */
  private drop(socket: QSslSocket): void {
    if (!this.forget(socket)) return;
    // Closed after the current emission has finished, as Qt's deleteLater.
    setImmediate(() => socket.abort());
  }
}
