import type { X509Certificate } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';

import { ErrorText } from '../socket/native-errors.js';
import { nativeDescriptor, type NativeSocketHandle } from '../socket/native-handle.js';
import { OpenModeFlag, type OpenMode } from '../core/open-mode.js';
import type { QHostAddress } from '../kernel/qhost-address.js';
import { qWarning } from '../core/qlogging.js';
import { PeerVerifyMode, SslMode, SslOption } from './qssl.js';
import { QSslCipher } from './qssl-cipher.js';
import {
  NO_SESSION,
  trustedCertificates,
  withSavedSession,
  type SslSettings,
} from './qssl-configuration.js';
import type { QOcspResponse } from './qocsp-response.js';
import type { QSslPreSharedKeyAuthenticator } from './qssl-pre-shared-key-authenticator.js';
import { QSslError, SslError } from './qssl-error.js';
import { SslSocketSettings } from './qssl-socket-settings.js';
import { Signal } from '../core/signal.js';
import {
  NetworkLayerProtocol,
  PauseMode,
  SocketError,
  SocketState,
} from '../kernel/socket-enums.js';
import {
  SslContextError,
  isOpensslError,
  isRefusedProtocol,
  opensslReason,
  secureContextFor,
  shareContext,
} from './ssl-context.js';
import { chainErrors, isMatchingHostname } from './ssl-verify.js';
import * as backend from './ssl-backend.js';
import { checkOcspResponse } from './ocsp-check.js';
import { openTlsLayer, sendCloseNotifyOnDestroy } from './tls-layer.js';
import { opensslResult, peerChainOf, sessionOf, ticketLifetimeHintOf } from './tls-session.js';

/** True unless SslOptionDisableSessionPersistence is on: a client keeps and offers sessions. */
function keepsSessions(settings: SslSettings): boolean {
  return (settings.sslOptions & SslOption.SslOptionDisableSessionPersistence) === 0;
}

/**
 * What may follow host and port in `connectToHostEncrypted`: Qt's two overloads, then the
 * port's `(mode, sslPeerName)`. One list of argument tuples, so that the method has a single
 * signature instead of three overloads repeating the same parameters.
 */
type EncryptedConnectArgs =
  | [mode?: OpenMode, protocol?: NetworkLayerProtocol]
  | [sslPeerName: string, mode?: OpenMode, protocol?: NetworkLayerProtocol]
  | [mode: OpenMode | undefined, sslPeerName: string | undefined];

/**
 * A TCP socket with TLS (Qt's QSslSocket), over Node's `tls`: the TCP connection is made
 * as QTcpSocket makes it (proxies included), then the handshake runs over it.
 *
 * Signals follow Qt: `connectToHostEncrypted` gives stateChanged(ConnectedState),
 * modeChanged(SslClientMode), connected, then (after the handshake) encrypted. Verification
 * problems are reported with peerVerifyError (each) and sslErrors (all); a slot connected
 * to sslErrors may call `ignoreSslErrors()` to go on. When the peer must be verified and
 * the errors are not ignored, the handshake fails: errorOccurred(SslHandshakeFailedError)
 * with the first error's text, and the connection closes.
 *
 * Data written before `encrypted` waits in the write buffer and goes out encrypted after
 * the handshake, never in clear. Reading, writing, the read buffer limit and closing work
 * as in QTcpSocket, over the encrypted stream.
 *
 * Node does the handshake and OpenSSL's verification (with `rejectUnauthorized: false`);
 * the port then applies Qt's rules: its host name check, its error list, its verify modes.
 * Pre-shared keys (`preSharedKeyAuthenticationRequired`), OCSP stapling (`ocspResponses()`)
 * and saved sessions (`newSessionTicketReceived`) work as in Qt, over Node's PSK callbacks,
 * status requests and sessions (tls-layer.ts, ocsp-check.ts, tls-session.ts).
 *
 * The accessors of the socket's TLS settings and Qt's static functions (the TLS library,
 * the backend, Qt 5.15's defaults) are in SslSocketSettings, which this class extends.
 */
export class QSslSocket extends SslSocketSettings {
  static readonly SslMode = SslMode;
  static readonly PeerVerifyMode = PeerVerifyMode;

  /** Emitted when the handshake has succeeded: the connection is encrypted. */
  readonly encrypted = new Signal<[]>('encrypted');
  /**
   * Emitted after the handshake with every verification error. Unless a slot calls
   * `ignoreSslErrors()` (or the errors were expected), a peer that must be verified is
   * refused.
   */
  readonly sslErrors = new Signal<[errors: QSslError[]]>('sslErrors');
  /** Emitted for each verification error as it is found, before sslErrors. */
  readonly peerVerifyError = new Signal<[error: QSslError]>('peerVerifyError');
  /** Emitted when the mode changes (UnencryptedMode to SslClientMode or SslServerMode). */
  readonly modeChanged = new Signal<[mode: SslMode]>('modeChanged');
  /** Emitted with the number of encrypted bytes handed to the operating system. */
  readonly encryptedBytesWritten = new Signal<[written: number]>('encryptedBytesWritten');
  /**
   * With `QSslConfiguration.setHandshakeMustInterruptOnError(true)`: emitted for the first
   * verification error instead of peerVerifyError; the handshake fails unless a slot calls
   * `continueInterruptedHandshake()` (Qt 6).
   */
  readonly handshakeInterruptedOnError = new Signal<[error: QSslError]>(
    'handshakeInterruptedOnError',
  );
  /**
   * Emitted during a handshake with a pre-shared key (a PSK cipher suite, TLS 1.2): the
   * slot fills in `authenticator` before it returns, a client with its identity and the key,
   * a server with the key for the client's identity. Without a key the handshake fails.
   */
  readonly preSharedKeyAuthenticationRequired = new Signal<
    [authenticator: QSslPreSharedKeyAuthenticator]
  >('preSharedKeyAuthenticationRequired');
  /**
   * Emitted for each session ticket a TLS 1.3 server sends, when
   * SslOptionDisableSessionPersistence is off: `sslConfiguration().sessionTicket()` then
   * holds a session that a later connection can resume.
   */
  readonly newSessionTicketReceived = new Signal<[]>('newSessionTicketReceived');

  private sslMode = SslMode.UnencryptedMode;
  private connectionEncrypted = false;
  private autoStartHandshake = false;
  /** Set by connectToHostEncrypted so that the connectToHost it calls keeps the SSL state. */
  private initialized = false;
  /** disconnectFromHost was called before the handshake could finish. */
  private sslPendingClose = false;
  private sslAborting = false;
  /** disconnectFromHost (not abort) is closing the connection: send close_notify. */
  private closingGracefully = false;
  private ignoreAll = false;
  private ignoreList: QSslError[] = [];
  private handshakeErrorList: QSslError[] = [];
  private continueInterrupted = false;
  /** The handshake stopped on verification errors (PauseOnSslErrors) until `resume()`. */
  private sslPaused = false;
  private tlsSocket: tls.TLSSocket | null = null;
  private raw: net.Socket | null = null;
  private rawBytesReported = 0;
  /** What the server stapled (client, OCSP stapling on): undefined until it said. */
  private stapled: Buffer | null | undefined = undefined;
  private ocspList: QOcspResponse[] = [];

  constructor() {
    super();
    backend.markBackendInUse();
    // Connected first, so it runs before the application's slots.
    this.stateChanged.connect((state) => {
      if (state === SocketState.UnconnectedState) this.connectionEnded();
    });
    // Qt reports the encrypted bytes after bytesWritten; the application's slots run first.
    this.bytesWritten.connect(() => queueMicrotask(() => this.reportEncryptedBytes()));
  }

  // ---------------------------------------------------------------- connecting

  /**
   * Connects to `host`:`port` and starts the client handshake once connected. The
   * certificate must name `host`, or `sslPeerName` when given (Qt's overload with
   * `sslPeerName` third). Port convenience: `(host, port, mode, sslPeerName)` is accepted
   * too. Called while connecting or connected it warns and does nothing, as Qt.
   */
  connectToHostEncrypted(host: string, port: number, ...args: EncryptedConnectArgs): void {
    const [a, b, c] = args;
    let peerName: string | undefined;
    let mode: OpenMode;
    let protocol = NetworkLayerProtocol.AnyIPProtocol;
    if (typeof a === 'string') {
      peerName = a;
      mode = (b as OpenMode | undefined) ?? OpenModeFlag.ReadWrite;
      protocol = c ?? NetworkLayerProtocol.AnyIPProtocol;
    } else {
      mode = a ?? OpenModeFlag.ReadWrite;
      if (typeof b === 'string') peerName = b;
      else protocol = (b as NetworkLayerProtocol | undefined) ?? NetworkLayerProtocol.AnyIPProtocol;
    }
    const s = this.state();
    if (s !== SocketState.UnconnectedState && s !== SocketState.BoundState) {
      qWarning('QSslSocket::connectToHostEncrypted() called when already connecting/connected');
      return;
    }
    this.init();
    this.autoStartHandshake = true;
    this.initialized = true;
    if (peerName !== undefined) this.verificationName = peerName;
    // Nothing written from now on may leave before the handshake.
    this.setWritesHeld(true);
    this.connectToHost(host, port, mode, protocol);
  }

  /** As QTcpSocket's; a plain connection unless called by `connectToHostEncrypted`. */
  override connectToHost(
    host: string | QHostAddress,
    port: number,
    mode: OpenMode = OpenModeFlag.ReadWrite,
    protocol: NetworkLayerProtocol = NetworkLayerProtocol.AnyIPProtocol,
  ): void {
    const s = this.state();
    // Already busy: QAbstractSocket warns and reports the error; the SSL state stays.
    if (!this.initialized && (s === SocketState.UnconnectedState || s === SocketState.BoundState)) {
      this.init();
    }
    this.initialized = false;
    super.connectToHost(host, port, mode, protocol);
  }

  /**
   * Starts the client handshake on an established plain connection (STARTTLS). Data
   * written before this call goes out in clear; data written after it, encrypted.
   */
  startClientEncryption(): void {
    this.startEncryption(SslMode.SslClientMode, 'startClientEncryption');
  }

  /**
   * Starts the server handshake on an established connection: an accepted one (see
   * QSslServer) or a plain one (STARTTLS). Bytes received and not read yet are handed to
   * the handshake (in Qt they are still in the plain socket).
   */
  startServerEncryption(): void {
    this.startEncryption(SslMode.SslServerMode, 'startServerEncryption');
  }

  /**
   * Closes after pending writes, as QTcpSocket does. Called before the handshake has
   * finished, it closes once the handshake is done and the data written so far has gone
   * out encrypted (as Qt); with nothing to write it closes at once.
   */
  override disconnectFromHost(): void {
    const s = this.state();
    if (s === SocketState.UnconnectedState) return;
    if (
      this.sslAborting ||
      (this.sslMode === SslMode.UnencryptedMode && !this.autoStartHandshake)
    ) {
      super.disconnectFromHost();
      return;
    }
    if (s === SocketState.HostLookupState || s === SocketState.ConnectingState) {
      this.sslPendingClose = true;
      return;
    }
    if (!this.connectionEncrypted && this.tlsSocket && this.bytesToWrite() > 0) {
      if (s !== SocketState.ClosingState) this.setStateAndEmit(SocketState.ClosingState);
      this.sslPendingClose = true;
      return;
    }
    this.closingGracefully = true;
    super.disconnectFromHost();
  }

  /** Drops unwritten data and closes at once, handshake or not. */
  override abort(): void {
    this.sslAborting = true;
    this.closingGracefully = false;
    try {
      super.abort();
    } finally {
      this.sslAborting = false;
    }
  }

  /**
   * Resolves true once the connection is encrypted (at once if it is), false if the
   * handshake fails, the connection ends, or `msecs` pass (-1 = no limit). A timeout
   * emits SocketTimeoutError and leaves the connection as it is, as in Qt. Qt returns false
   * when the socket is already encrypted; the port returns true.
   */
  async waitForEncrypted(msecs = 30000): Promise<boolean> {
    if (this.connectionEncrypted && this.state() !== SocketState.UnconnectedState) return true;
    if (this.state() === SocketState.UnconnectedState) return false;
    if (this.sslMode === SslMode.UnencryptedMode && !this.autoStartHandshake) return false;
    const start = Date.now();
    const s = this.state();
    if (s === SocketState.HostLookupState || s === SocketState.ConnectingState) {
      if (!(await this.waitForConnected(msecs))) return false;
    }
    if (this.connectionEncrypted) return true;
    if (this.state() === SocketState.UnconnectedState) return false;
    const left = msecs < 0 ? -1 : Math.max(0, msecs - (Date.now() - start));
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const finish = (value: boolean): void => {
        if (timer) clearTimeout(timer);
        offEncrypted();
        offState();
        resolve(value);
      };
      const offEncrypted = this.encrypted.connect(() => finish(true));
      const offState = this.stateChanged.connect((st) => {
        if (st === SocketState.UnconnectedState) finish(false);
      });
      if (left >= 0) {
        timer = setTimeout(() => {
          offEncrypted();
          offState();
          this.setErrorAndEmit(SocketError.SocketTimeoutError, ErrorText.NetworkTimeout);
          resolve(false);
        }, left);
      }
    });
  }

  // ---------------------------------------------------------------- state

  /** UnencryptedMode, or SslClientMode/SslServerMode once a handshake has started. */
  mode(): SslMode {
    return this.sslMode;
  }

  /** True once the handshake has succeeded (it stays true after the connection closes, as in Qt). */
  isEncrypted(): boolean {
    return this.connectionEncrypted;
  }

  /**
   * Without arguments: goes on despite the verification errors of this handshake (call it
   * from a slot connected to sslErrors, or after connectToHostEncrypted). With a list: goes
   * on if every error found is in it (error and certificate equal), which may be set
   * before connecting.
   */
  ignoreSslErrors(errors?: QSslError[]): void {
    if (errors === undefined) this.ignoreAll = true;
    else this.ignoreList = [...errors];
  }

  /** The verification errors of the last handshake. */
  sslHandshakeErrors(): QSslError[] {
    return [...this.handshakeErrorList];
  }

  /**
   * The certificate status the server stapled to the last handshake, as checked (a client
   * with `setOcspStaplingEnabled(true)` that verifies the server); empty otherwise.
   */
  ocspResponses(): QOcspResponse[] {
    return [...this.ocspList];
  }

  /** From a slot connected to handshakeInterruptedOnError: lets the handshake go on. */
  continueInterruptedHandshake(): void {
    this.continueInterrupted = true;
  }

  /**
   * Continues a handshake paused on verification errors (PauseOnSslErrors), from the event
   * loop after this call returns, as in Qt: if `ignoreSslErrors()` covers the errors now,
   * `encrypted` follows and data moves again; otherwise the handshake fails as it would have
   * without the pause (SslHandshakeFailedError, then the connection closes). Does nothing
   * when the socket is not paused.
   */
  override resume(): void {
    if (!this.sslPaused) return;
    setImmediate(() => {
      const t = this.tlsSocket;
      // A second resume() queued meanwhile finds nothing to do (as Qt 6).
      if (!this.sslPaused || !t) return;
      this.sslPaused = false;
      this.setReadingPaused(false);
      if (this.verifyErrorsHaveBeenIgnored()) this.completeHandshake(t);
      else this.refuseHandshake(t);
    });
  }

  /** Always 0: Node keeps no encrypted bytes waiting to be decrypted where the port can see them. */
  encryptedBytesAvailable(): number {
    return 0;
  }

  /** Always 0: encrypted bytes go from Node's TLS layer straight to the operating system. */
  encryptedBytesToWrite(): number {
    return 0;
  }

  /** The operating-system descriptor of the TCP connection, or -1. */
  override socketDescriptor(): number {
    return this.raw && !this.raw.destroyed ? nativeDescriptor(this.raw) : super.socketDescriptor();
  }

  /** As QTcpSocket's; the SSL state starts afresh (plain mode). */
  override setSocketDescriptor(
    descriptor: number | NativeSocketHandle,
    state: SocketState = SocketState.ConnectedState,
    mode: OpenMode = OpenModeFlag.ReadWrite,
  ): boolean {
    this.init();
    return super.setSocketDescriptor(descriptor, state, mode);
  }

  protected override setStateAndEmit(state: SocketState): void {
    super.setStateAndEmit(state);
    // Qt starts the handshake when the plain socket connects, before emitting connected.
    if (
      state === SocketState.ConnectedState &&
      this.autoStartHandshake &&
      this.sslMode === SslMode.UnencryptedMode &&
      this.state() === SocketState.ConnectedState
    ) {
      this.startClientEncryption();
    }
  }

  // ---------------------------------------------------------------- internals

  /** Qt's QSslSocketPrivate::init: a fresh SSL state for a new connection. */
  private init(): void {
    this.sslMode = SslMode.UnencryptedMode;
    this.autoStartHandshake = false;
    this.connectionEncrypted = false;
    this.ignoreAll = false;
    this.sslPendingClose = false;
    this.closingGracefully = false;
    this.sslPaused = false;
    this.handshakeErrorList = [];
    this.session = NO_SESSION;
    this.stapled = undefined;
    this.ocspList = [];
    this.dropTls();
    // As in Qt, a list of expected errors set before connecting is kept.
    this.setWritesHeld(false);
  }

  private startEncryption(mode: SslMode, method: string): void {
    if (this.sslMode !== SslMode.UnencryptedMode) {
      qWarning(`QSslSocket::${method}: cannot start handshake on non-plain connection`);
      return;
    }
    if (this.state() !== SocketState.ConnectedState) {
      qWarning(`QSslSocket::${method}: cannot start handshake when not connected`);
      return;
    }
    const settings = this.settings;
    if (isRefusedProtocol(settings.protocol)) {
      qWarning(`QSslSocket::${method}: QSslConfiguration with unexpected protocol`);
      this.setErrorAndEmit(
        SocketError.SslInvalidUserDataError,
        'Attempted to use an unsupported protocol.',
      );
      return;
    }
    this.sslMode = mode;
    this.modeChanged.emit(mode);
    if (this.state() !== SocketState.ConnectedState || this.sslMode !== mode) return;
    const client = mode === SslMode.SslClientMode;
    let context: tls.SecureContext;
    try {
      if (!client && settings.ocspStaplingEnabled) {
        throw new SslContextError('Server-side QSslSocket does not support OCSP stapling');
      }
      context = secureContextFor(settings, !client);
    } catch (err) {
      // Qt leaves the plain connection open, with nothing able to leave it; the port closes it.
      this.setErrorAndEmit(
        SocketError.SslInvalidUserDataError,
        err instanceof SslContextError ? err.text : String(err),
      );
      this.abort();
      return;
    }
    // What was written before this call goes out in clear first (unless connectToHostEncrypted
    // held it from the start); what is written from now on waits for the handshake.
    this.layerSocket((raw) => {
      this.raw = raw;
      this.rawBytesReported = raw.bytesWritten;
      const resume = client && keepsSessions(settings) && settings.sessionTicket.length > 0;
      const t = openTlsLayer(raw, {
        client,
        settings,
        context,
        serverName: client ? this.serverNameIndication(settings) : undefined,
        session: resume ? settings.sessionTicket : undefined,
        requestOcsp: client && settings.ocspStaplingEnabled,
        askPsk: (authenticator) => {
          this.preSharedKeyAuthenticationRequired.emit(authenticator);
          return this.raw === raw;
        },
      });
      if (client) {
        t.once('secureConnect', () => this.handshakeDone(t));
        t.on('OCSPResponse', (response: Buffer | null) => {
          if (this.tlsSocket === t) this.stapled = response;
        });
        t.on('session', (session: Buffer) => this.sessionReceived(t, session));
      } else {
        t.once('secure', () => this.handshakeDone(t));
      }
      // Registered before QAbstractSocket's own listeners, so TLS failures are told apart
      // from transport ones first.
      t.on('error', (err: Error) => this.onTlsError(t, err));
      sendCloseNotifyOnDestroy(t, () => this.closingGracefully && this.connectionEncrypted);
      this.tlsSocket = t;
      return t;
    });
    this.setWritesHeld(true);
    // The first handshake flight has been handed to the connection by now.
    setImmediate(() => this.reportEncryptedBytes());
  }

  /** The name a client sends with SNI: the peer's name unless disabled or an address. */
  private serverNameIndication(settings: SslSettings): string | undefined {
    const name = this.verificationName || this.peerName();
    const sni =
      (settings.sslOptions & SslOption.SslOptionDisableServerNameIndication) === 0 &&
      name !== '' &&
      net.isIP(name) === 0;
    return sni ? name : undefined;
  }

  private onTlsError(t: tls.TLSSocket, err: Error): void {
    if (this.tlsSocket !== t || !isOpensslError(err)) {
      // A transport error (reset, end of stream): QAbstractSocket reports it as Qt does.
      return;
    }
    if (!this.connectionEncrypted) {
      this.setErrorAndEmit(
        SocketError.SslHandshakeFailedError,
        `Error during SSL handshake: ${opensslReason(err)}`,
      );
    } else {
      this.setErrorAndEmit(
        SocketError.SslInternalError,
        `Error while reading: ${opensslReason(err)}`,
      );
    }
    if (this.tlsSocket === t) this.abort();
  }

  /** Node's TLS handshake is done: Qt's verification, then `encrypted` or failure. */
  private handshakeDone(t: tls.TLSSocket): void {
    if (this.tlsSocket !== t) return;
    this.reportEncryptedBytes();
    const settings = this.settings;
    const client = this.sslMode === SslMode.SslClientMode;
    const chain = peerChainOf(t);
    this.session = sessionOf(t, chain, settings);
    const peer = this.session.peerCertificate;
    const verifyMode = settings.peerVerifyMode;
    const doVerifyPeer =
      verifyMode === PeerVerifyMode.VerifyPeer ||
      (verifyMode === PeerVerifyMode.AutoVerifyPeer && client);
    const alive = (): boolean =>
      this.tlsSocket === t &&
      (this.state() === SocketState.ConnectedState ||
        (this.state() === SocketState.ClosingState && this.sslPendingClose));

    // OpenSSL's chain errors come first, as Qt's verify callback reports them during the
    // handshake (Qt collects none in VerifyNone mode).
    const fromChain =
      verifyMode === PeerVerifyMode.VerifyNone || peer.isNull()
        ? []
        : chainErrors({
            chain,
            trusted: () => trustedCertificates(settings),
            purpose: client ? 'server' : 'client',
            opensslResult: opensslResult(t, client),
            maxDepth: settings.peerVerifyDepth,
          });
    if (settings.handshakeMustInterruptOnError && doVerifyPeer && fromChain.length > 0) {
      if (!this.interruptOnChainErrors(t, fromChain, alive)) return;
    } else {
      for (const e of fromChain) {
        this.peerVerifyError.emit(e);
        if (!alive()) return;
      }
    }
    // Then the stapled OCSP response's errors, first in the list, as in Qt.
    const errors: QSslError[] = [];
    if (client && doVerifyPeer && settings.ocspStaplingEnabled) {
      const fromOcsp = this.checkStapledStatus(t, chain, settings);
      if (fromOcsp === null) return;
      for (const e of fromOcsp) {
        errors.push(e);
        this.peerVerifyError.emit(e);
        if (!alive()) return;
      }
    }
    if (!peer.isNull()) {
      const name = this.verificationName || this.peerName();
      if (client && !isMatchingHostname(peer, name)) {
        const e = new QSslError(SslError.HostNameMismatch, peer);
        errors.push(e);
        this.peerVerifyError.emit(e);
        if (!alive()) return;
      }
    } else if (doVerifyPeer) {
      const e = new QSslError(SslError.NoPeerCertificate);
      errors.push(e);
      this.peerVerifyError.emit(e);
      if (!alive()) return;
    }
    errors.push(...fromChain);
    this.handshakeErrorList = errors;
    if (errors.length > 0) {
      this.sslErrors.emit([...errors]);
      if (doVerifyPeer && !this.verifyErrorsHaveBeenIgnored()) {
        if ((this.pauseMode() & PauseMode.PauseOnSslErrors) !== 0) {
          // Qt stops here until resume(): no error yet, nothing read or written meanwhile.
          if (alive()) {
            this.sslPaused = true;
            this.setReadingPaused(true);
          }
          return;
        }
        this.refuseHandshake(t);
        return;
      }
      if (!alive()) return;
    }
    this.completeHandshake(t);
  }

  /**
   * Early error reporting (Qt 6): handshakeInterruptedOnError for each chain error; unless
   * a slot lets the handshake go on, it fails with that error. False when it stopped.
   */
  private interruptOnChainErrors(
    t: tls.TLSSocket,
    fromChain: QSslError[],
    alive: () => boolean,
  ): boolean {
    for (const e of fromChain) {
      this.continueInterrupted = false;
      this.handshakeInterruptedOnError.emit(e);
      if (!alive()) return false;
      if (!this.continueInterrupted) {
        this.handshakeErrorList = [e];
        this.discardPendingWrites();
        this.setErrorAndEmit(SocketError.SslHandshakeFailedError, e.errorString());
        if (this.tlsSocket === t) this.abort();
        return false;
      }
    }
    return true;
  }

  /**
   * Qt's check of the response the server stapled (client, OCSP stapling on, verifying the
   * server): the verification errors it gives, or null when the response could not be read
   * at all, in which case the handshake has failed with Qt's text.
   */
  private checkStapledStatus(
    t: tls.TLSSocket,
    chain: X509Certificate[],
    settings: SslSettings,
  ): QSslError[] | null {
    const outcome = checkOcspResponse({
      response: this.stapled ?? null,
      peerChain: chain,
      trusted: () => trustedCertificates(settings),
    });
    this.ocspList = outcome.responses;
    if (outcome.failure === null) return outcome.errors;
    this.setErrorAndEmit(SocketError.SslHandshakeFailedError, outcome.failure);
    if (this.tlsSocket === t) this.abort();
    return null;
  }

  /**
   * The peer failed verification: SslHandshakeFailedError with the first error's text,
   * then the connection closes. As in Qt, the failure is reported even when a slot has
   * closed the socket already.
   */
  private refuseHandshake(t: tls.TLSSocket): void {
    this.discardPendingWrites();
    this.setErrorAndEmit(
      SocketError.SslHandshakeFailedError,
      this.handshakeErrorList[0].errorString(),
    );
    if (this.tlsSocket !== t) return;
    this.sslPendingClose = false;
    super.disconnectFromHost();
  }

  /** The handshake succeeded: `encrypted`, then what was written meanwhile goes out. */
  private completeHandshake(t: tls.TLSSocket): void {
    const settings = this.settings;
    // A client keeps the new session (a TLS 1.2 ticket; TLS 1.3's come after `encrypted`)
    // unless told not to share or keep sessions; a resumed one was saved already (as Qt).
    if (
      this.sslMode === SslMode.SslClientMode &&
      keepsSessions(settings) &&
      (settings.sslOptions & SslOption.SslOptionDisableSessionSharing) === 0 &&
      !t.isSessionReused()
    ) {
      const session = t.getSession();
      if (session) this.saveSession(session);
    }
    this.connectionEncrypted = true;
    this.encrypted.emit();
    if (this.tlsSocket !== t) return;
    this.setWritesHeld(false);
    if (this.sslPendingClose) {
      this.sslPendingClose = false;
      this.disconnectFromHost();
    }
  }

  /** A TLS 1.3 ticket arrived: kept, and announced, unless sessions are not kept (as Qt). */
  private sessionReceived(t: tls.TLSSocket, session: Buffer): void {
    // TLS 1.2's session was kept when the handshake completed; Qt announces only TLS 1.3's.
    if (this.tlsSocket !== t || t.getProtocol() !== 'TLSv1.3') return;
    if (!keepsSessions(this.settings)) return;
    this.saveSession(session);
    this.newSessionTicketReceived.emit();
  }

  /** Keeps `session` in the socket's configuration, for `sessionTicket()` and the next connection. */
  private saveSession(session: Buffer): void {
    const previous = this.settings;
    this.settings = withSavedSession(previous, session, ticketLifetimeHintOf(session));
    shareContext(previous, this.settings);
  }

  private verifyErrorsHaveBeenIgnored(): boolean {
    if (this.ignoreList.length > 0) {
      return this.handshakeErrorList.every((e) => this.ignoreList.some((i) => i.isEqual(e)));
    }
    return this.ignoreAll;
  }

  /** Emits encryptedBytesWritten with what the TLS layer handed to the connection since last time. */
  private reportEncryptedBytes(): void {
    const raw = this.raw;
    if (!raw) return;
    const total = raw.bytesWritten;
    const delta = total - this.rawBytesReported;
    if (delta <= 0) return;
    this.rawBytesReported = total;
    this.encryptedBytesWritten.emit(delta);
  }

  private dropTls(): void {
    const raw = this.raw;
    this.tlsSocket = null;
    this.raw = null;
    if (raw && !raw.destroyed) raw.destroy();
  }

  /** The connection ended: the TLS layer goes; Qt keeps isEncrypted(), mode() and the peer. */
  private connectionEnded(): void {
    if (this.raw) this.reportEncryptedBytes();
    this.dropTls();
    this.sslPaused = false;
    this.sslPendingClose = false;
    this.closingGracefully = false;
    if (!this.session.sessionCipher.isNull()) {
      this.session = { ...this.session, sessionCipher: new QSslCipher() };
    }
  }

  /**
   * For QSslServer: the handshake ran out of time. Qt leaves the socket's error unset; the
   * port sets it (without emitting) so that `errorString()` says what happened.
   */
  private handshakeTimedOut(): void {
    this.setError(SocketError.SocketTimeoutError, ErrorText.SocketOperationTimeout);
  }

  /**
   * Not in Qt, hence private; ServerQt calls it as `socket['peerSentBytes']()`: whether the
   * peer sent anything, counted on the connection under the TLS layer (handshake records
   * included) or, before a handshake began, as bytes waiting unread. Still right in the
   * slots of errorOccurred (the TLS layer goes with the state change after it): a peer that
   * connected and closed without a byte is a TCP health check or a port scan.
   */
  private peerSentBytes(): boolean {
    return (this.raw !== null && this.raw.bytesRead > 0) || this.bytesAvailable() > 0;
  }
}
