import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';

import { ErrorText } from '../socket/native-errors.js';
import { nativeDescriptor, type NativeSocketHandle } from '../socket/native-handle.js';
import { OpenModeFlag, type OpenMode } from '../core/open-mode.js';
import type { QHostAddress } from '../kernel/qhost-address.js';
import { qWarning } from '../core/qlogging.js';
import {
  EncodingFormat,
  KeyAlgorithm,
  NextProtocolNegotiationStatus,
  PeerVerifyMode,
  SslMode,
  SslOption,
  SslProtocol,
} from './qssl.js';
import { PatternSyntax, QSslCertificate } from './qssl-certificate.js';
import { QSslCipher, protocolFromString } from './qssl-cipher.js';
import {
  NO_SESSION,
  QSslConfiguration,
  configurationWith,
  settingsOf,
  trustedCertificates,
  type SslSession,
  type SslSettings,
} from './qssl-configuration.js';
import { QSslError, SslError } from './qssl-error.js';
import { QSslKey } from './qssl-key.js';
import { QTcpSocket } from '../socket/qtcp-socket.js';
import { Signal } from '../core/signal.js';
import { NetworkLayerProtocol, SocketError, SocketState } from '../kernel/socket-enums.js';
import {
  SslContextError,
  isOpensslError,
  isRefusedProtocol,
  opensslReason,
  secureContextFor,
} from './ssl-context.js';
import { chainErrors, isMatchingHostname } from './ssl-verify.js';

/** What Node's TLS socket keeps about verification (`ssl` is Node's own TLS handle). */
interface TlsHandle {
  verifyError?: () => { code?: string } | null | undefined;
}

/** The peer's chain as Node reports it (detailed `getPeerCertificate(true)`), own first. */
function peerChainOf(t: tls.TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let c: tls.DetailedPeerCertificate | undefined = t.getPeerCertificate(true);
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    try {
      out.push(new X509Certificate(c.raw));
    } catch {
      break;
    }
    const next: tls.DetailedPeerCertificate | undefined = c.issuerCertificate;
    if (!next || next === c) break;
    c = next;
  }
  return out;
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
 */
export class QSslSocket extends QTcpSocket {
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

  private settings: SslSettings = settingsOf(QSslConfiguration.defaultConfiguration());
  private session: SslSession = NO_SESSION;
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
  private verificationName = '';
  private tlsSocket: tls.TLSSocket | null = null;
  private raw: net.Socket | null = null;
  private rawBytesReported = 0;

  constructor() {
    super();
    // Connected first, so it runs before the application's slots.
    this.stateChanged.connect((state) => {
      if (state === SocketState.UnconnectedState) this.connectionEnded();
    });
    // Qt reports the encrypted bytes after bytesWritten; the application's slots run first.
    this.bytesWritten.connect(() => queueMicrotask(() => this.reportEncryptedBytes()));
  }

  /** True: Node always has TLS (OpenSSL). */
  static supportsSsl(): boolean {
    return true;
  }

  /** The TLS library in use, e.g. "OpenSSL 3.0.13". */
  static sslLibraryVersionString(): string {
    return `OpenSSL ${process.versions.openssl}`;
  }

  /** OpenSSL's version number (0xMNN00PP0 for OpenSSL 3). */
  static sslLibraryVersionNumber(): number {
    const [major = 0, minor = 0, patch = 0] = process.versions.openssl
      .split(/[.+-]/)
      .map((n) => Number.parseInt(n, 10) || 0);
    return major * 0x10000000 + minor * 0x100000 + patch * 0x10;
  }

  /** The TLS library Node was built with (the same as `sslLibraryVersionString`). */
  static sslLibraryBuildVersionString(): string {
    return QSslSocket.sslLibraryVersionString();
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
      if (s !== SocketState.ClosingState) this.setState(SocketState.ClosingState);
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

  /** The socket's configuration, with the session's details (peer certificate, cipher...). */
  sslConfiguration(): QSslConfiguration {
    return configurationWith(this.settings, this.session);
  }

  /** Takes the settings of `configuration` (not its session fields) for the next handshake. */
  setSslConfiguration(configuration: QSslConfiguration): void {
    this.settings = settingsOf(configuration);
  }

  /** The certificate presented to the peer. */
  localCertificate(): QSslCertificate {
    return this.sslConfiguration().localCertificate();
  }

  /**
   * Sets the certificate presented to the peer: a QSslCertificate, the PEM or DER bytes of
   * one (port convenience), or the path of a file holding one (Qt's overload).
   */
  setLocalCertificate(
    certificate: QSslCertificate | Buffer | string,
    format: EncodingFormat = EncodingFormat.Pem,
  ): void {
    const cert =
      certificate instanceof QSslCertificate
        ? certificate
        : Buffer.isBuffer(certificate)
          ? new QSslCertificate(certificate, format)
          : (QSslCertificate.fromPath(certificate, format)[0] ?? new QSslCertificate());
    this.change((c) => c.setLocalCertificate(cert));
  }

  /** The chain presented to the peer, the local certificate first. */
  localCertificateChain(): QSslCertificate[] {
    return this.sslConfiguration().localCertificateChain();
  }

  /** Sets the chain presented to the peer (the local certificate first, then intermediates). */
  setLocalCertificateChain(chain: QSslCertificate[]): void {
    this.change((c) => c.setLocalCertificateChain(chain));
  }

  /** The private key of the local certificate. */
  privateKey(): QSslKey {
    return this.settings.privateKey;
  }

  /**
   * Sets the private key: a QSslKey, the bytes of one (port convenience), or the path of a
   * file holding one (Qt's overload). Without `algorithm` the key's own is used.
   */
  setPrivateKey(
    key: QSslKey | Buffer | string,
    algorithm?: KeyAlgorithm,
    format: EncodingFormat = EncodingFormat.Pem,
    passPhrase?: Buffer | string,
  ): void {
    let k: QSslKey;
    if (key instanceof QSslKey) {
      k = key;
    } else {
      let data: Buffer | null = Buffer.isBuffer(key) ? key : null;
      if (data === null) {
        try {
          data = readFileSync(key as string);
        } catch {
          data = null;
        }
      }
      k = data
        ? new QSslKey(data, algorithm, format, QSslKey.KeyType.PrivateKey, passPhrase)
        : new QSslKey();
    }
    this.change((c) => c.setPrivateKey(k));
  }

  /** The trusted CA certificates (the system's by default). */
  caCertificates(): QSslCertificate[] {
    return this.sslConfiguration().caCertificates();
  }

  /** Trusts exactly `certificates` for the next handshake. */
  setCaCertificates(certificates: QSslCertificate[]): void {
    this.change((c) => c.setCaCertificates(certificates));
  }

  /** Adds one trusted CA certificate. */
  addCaCertificate(certificate: QSslCertificate): void {
    this.change((c) => c.addCaCertificate(certificate));
  }

  /** Adds trusted CA certificates: a list, or those read from a path. */
  addCaCertificates(
    certificates: QSslCertificate[] | string,
    format: EncodingFormat = EncodingFormat.Pem,
    syntax: PatternSyntax = PatternSyntax.FixedString,
  ): boolean {
    let added = false;
    this.change((c) => {
      added = c.addCaCertificates(certificates, format, syntax);
    });
    return added;
  }

  /** The protocol to negotiate (default SecureProtocols). */
  protocol(): SslProtocol {
    return this.settings.protocol;
  }

  /** Sets the protocol to negotiate. */
  setProtocol(protocol: SslProtocol): void {
    this.change((c) => c.setProtocol(protocol));
  }

  /**
   * How the peer's certificate is checked. AutoVerifyPeer (the default) means VerifyPeer
   * for a client and QueryPeer for a server.
   */
  peerVerifyMode(): PeerVerifyMode {
    return this.settings.peerVerifyMode;
  }

  /** Sets how the peer's certificate is checked. */
  setPeerVerifyMode(mode: PeerVerifyMode): void {
    this.change((c) => c.setPeerVerifyMode(mode));
  }

  /** The verification depth (0 = no limit). */
  peerVerifyDepth(): number {
    return this.settings.peerVerifyDepth;
  }

  /** Sets the verification depth (0 = no limit). */
  setPeerVerifyDepth(depth: number): void {
    this.change((c) => c.setPeerVerifyDepth(depth));
  }

  /** The name the peer's certificate is checked against ("" = the host connected to). */
  peerVerifyName(): string {
    return this.verificationName;
  }

  /** Sets the name the peer's certificate must carry (and the SNI name sent). */
  setPeerVerifyName(hostName: string): void {
    this.verificationName = hostName;
  }

  /** The peer's certificate after the handshake; null before (or if it sent none). */
  peerCertificate(): QSslCertificate {
    return this.sslConfiguration().peerCertificate();
  }

  /**
   * The peer's chain, its own certificate first. Node reports the chain with the issuers
   * it found in the local CA store added, where Qt lists what the peer sent.
   */
  peerCertificateChain(): QSslCertificate[] {
    return this.sslConfiguration().peerCertificateChain();
  }

  /** The cipher in use; null before the handshake and after the connection closes. */
  sessionCipher(): QSslCipher {
    return this.sslConfiguration().sessionCipher();
  }

  /** The protocol in use (TlsV1_2, TlsV1_3); UnknownProtocol before the handshake. */
  sessionProtocol(): SslProtocol {
    return this.sslConfiguration().sessionProtocol();
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

  /** From a slot connected to handshakeInterruptedOnError: lets the handshake go on. */
  continueInterruptedHandshake(): void {
    this.continueInterrupted = true;
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

  protected override setState(state: SocketState): void {
    super.setState(state);
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
    this.handshakeErrorList = [];
    this.session = NO_SESSION;
    this.dropTls();
    // As in Qt, a list of expected errors set before connecting is kept.
    this.setWritesHeld(false);
  }

  private change(edit: (c: QSslConfiguration) => void): void {
    const c = configurationWith(this.settings, NO_SESSION);
    edit(c);
    this.settings = settingsOf(c);
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
    let context: tls.SecureContext;
    try {
      context = secureContextFor(settings);
    } catch (err) {
      // Qt leaves the plain connection open, with nothing able to leave it; the port closes it.
      this.setErrorAndEmit(
        SocketError.SslInvalidUserDataError,
        err instanceof SslContextError ? err.text : String(err),
      );
      this.abort();
      return;
    }
    const client = mode === SslMode.SslClientMode;
    // What was written before this call goes out in clear first (unless connectToHostEncrypted
    // held it from the start); what is written from now on waits for the handshake.
    this.layerSocket((raw) => {
      this.raw = raw;
      this.rawBytesReported = raw.bytesWritten;
      const alpn =
        settings.allowedNextProtocols.length > 0
          ? settings.allowedNextProtocols.map((p) => p.toString('latin1'))
          : undefined;
      let t: tls.TLSSocket;
      if (client) {
        const name = this.verificationName || this.peerName();
        const sni =
          (settings.sslOptions & SslOption.SslOptionDisableServerNameIndication) === 0 &&
          name !== '' &&
          net.isIP(name) === 0
            ? name
            : undefined;
        t = tls.connect({
          socket: raw,
          secureContext: context,
          rejectUnauthorized: false,
          // The port checks the name itself, with Qt's rules, after the handshake.
          checkServerIdentity: () => undefined,
          ...(sni ? { servername: sni } : {}),
          ...(alpn ? { ALPNProtocols: alpn } : {}),
        });
        t.once('secureConnect', () => this.handshakeDone(t));
      } else {
        t = new tls.TLSSocket(raw, {
          isServer: true,
          secureContext: context,
          requestCert: settings.peerVerifyMode !== PeerVerifyMode.VerifyNone,
          rejectUnauthorized: false,
          ...(alpn ? { ALPNProtocols: alpn } : {}),
        });
        t.once('secure', () => this.handshakeDone(t));
      }
      // Registered before QAbstractSocket's own listeners, so TLS failures are told apart
      // from transport ones first.
      t.on('error', (err: Error) => this.onTlsError(t, err));
      // Qt ends an encrypted connection that it closes (not aborts) with a close_notify
      // alert (SSL_shutdown). QAbstractSocket closes by destroying the socket, which sends
      // none; end() writes it at once when nothing else is waiting.
      const destroy = t.destroy.bind(t);
      t.destroy = (error?: Error): tls.TLSSocket => {
        if (
          error === undefined &&
          this.closingGracefully &&
          this.connectionEncrypted &&
          !t.destroyed &&
          !t.writableEnded &&
          t.writableLength === 0
        ) {
          t.end();
        }
        return destroy(error);
      };
      this.tlsSocket = t;
      return t;
    });
    this.setWritesHeld(true);
    // The first handshake flight has been handed to the connection by now.
    setImmediate(() => this.reportEncryptedBytes());
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
    const peer = chain.length > 0 ? QSslCertificate.fromX509(chain[0]) : new QSslCertificate();
    const alpn = t.alpnProtocol;
    this.session = {
      peerCertificate: peer,
      peerCertificateChain: chain.map((x) => QSslCertificate.fromX509(x)),
      sessionCipher: new QSslCipher(t.getCipher()?.name ?? '', protocolFromString(t.getProtocol())),
      sessionProtocol: protocolFromString(t.getProtocol()),
      nextNegotiatedProtocol: typeof alpn === 'string' ? Buffer.from(alpn) : Buffer.alloc(0),
      nextProtocolNegotiationStatus:
        typeof alpn === 'string'
          ? NextProtocolNegotiationStatus.NextProtocolNegotiationNegotiated
          : settings.allowedNextProtocols.length > 0
            ? NextProtocolNegotiationStatus.NextProtocolNegotiationUnsupported
            : NextProtocolNegotiationStatus.NextProtocolNegotiationNone,
    };
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
            opensslResult: this.opensslResult(t),
            maxDepth: settings.peerVerifyDepth,
          });
    if (settings.handshakeMustInterruptOnError && doVerifyPeer && fromChain.length > 0) {
      for (const e of fromChain) {
        this.continueInterrupted = false;
        this.handshakeInterruptedOnError.emit(e);
        if (!alive()) return;
        if (!this.continueInterrupted) {
          this.handshakeErrorList = [e];
          this.discardPendingWrites();
          this.setErrorAndEmit(SocketError.SslHandshakeFailedError, e.errorString());
          if (this.tlsSocket === t) this.abort();
          return;
        }
      }
    } else {
      for (const e of fromChain) {
        this.peerVerifyError.emit(e);
        if (!alive()) return;
      }
    }
    const errors: QSslError[] = [];
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
      // As in Qt, the failure is reported even when a slot has closed the socket already.
      if (doVerifyPeer && !this.verifyErrorsHaveBeenIgnored()) {
        this.discardPendingWrites();
        this.setErrorAndEmit(SocketError.SslHandshakeFailedError, errors[0].errorString());
        if (this.tlsSocket !== t) return;
        this.sslPendingClose = false;
        super.disconnectFromHost();
        return;
      }
      if (!alive()) return;
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

  /** OpenSSL's verification result for the peer (null: verified). */
  private opensslResult(t: tls.TLSSocket): string | null {
    if (this.sslMode === SslMode.SslClientMode) {
      return t.authorizationError ? String(t.authorizationError) : null;
    }
    // Node computes a server's result only inside tls.Server; it is read from the TLS
    // handle as tls.Server does. Were that unavailable, the peer is reported unverified.
    const handle = (t as unknown as { ssl?: TlsHandle | null }).ssl;
    if (!handle || typeof handle.verifyError !== 'function') return 'UNSPECIFIED';
    return handle.verifyError()?.code ?? null;
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
}
