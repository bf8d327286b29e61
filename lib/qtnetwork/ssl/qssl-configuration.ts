import { X509Certificate, getCiphers } from 'node:crypto';
import * as tls from 'node:tls';

import { qWarning } from '../core/qlogging.js';
import { toBuffer } from '../core/to-buffer.js';
import {
  EncodingFormat,
  NextProtocolNegotiationStatus,
  PeerVerifyMode,
  SslOption,
  SslProtocol,
} from './qssl.js';
import { PatternSyntax, QSslCertificate } from './qssl-certificate.js';
import { QSslCipher } from './qssl-cipher.js';
import { QSslKey } from './qssl-key.js';
import { markBackendInUse } from './ssl-backend.js';

/**
 * What a configuration sets, shared by its copies until one of them changes something
 * (copy on write), so sockets made from one server configuration share one TLS context.
 */
export interface SslSettings {
  readonly protocol: SslProtocol;
  readonly peerVerifyMode: PeerVerifyMode;
  readonly peerVerifyDepth: number;
  readonly localCertificate: QSslCertificate;
  readonly localCertificateChain: readonly QSslCertificate[];
  readonly privateKey: QSslKey;
  /** Null: the default cipher list. */
  readonly ciphers: readonly QSslCipher[] | null;
  /** Whether the system's CA certificates are trusted (Qt's on-demand root loading). */
  readonly systemCaCertificates: boolean;
  /** CA certificates trusted besides (or, without the system's, instead of) the system's. */
  readonly caCertificates: readonly QSslCertificate[];
  readonly sslOptions: number;
  readonly allowedNextProtocols: readonly Buffer[];
  readonly handshakeMustInterruptOnError: boolean;
  /** The PSK identity hint a server sends; null: none (Qt's null QByteArray). */
  readonly preSharedKeyIdentityHint: Buffer | null;
  readonly ocspStaplingEnabled: boolean;
  /** A saved session (OpenSSL's encoding) a client resumes; empty: none. */
  readonly sessionTicket: Buffer;
  /** The lifetime hint of `sessionTicket`, in seconds; -1 until a handshake saved one. */
  readonly sessionTicketLifeTimeHint: number;
}

/** What a socket's configuration reports about its session. */
export interface SslSession {
  readonly peerCertificate: QSslCertificate;
  readonly peerCertificateChain: readonly QSslCertificate[];
  readonly sessionCipher: QSslCipher;
  readonly sessionProtocol: SslProtocol;
  readonly nextNegotiatedProtocol: Buffer;
  readonly nextProtocolNegotiationStatus: NextProtocolNegotiationStatus;
}

/** Qt's default options: no empty fragments, no legacy renegotiation, no compression, no persistence. */
const DEFAULT_SSL_OPTIONS =
  SslOption.SslOptionDisableEmptyFragments |
  SslOption.SslOptionDisableLegacyRenegotiation |
  SslOption.SslOptionDisableCompression |
  SslOption.SslOptionDisableSessionPersistence;

const EMPTY_SETTINGS: SslSettings = {
  protocol: SslProtocol.SecureProtocols,
  peerVerifyMode: PeerVerifyMode.AutoVerifyPeer,
  peerVerifyDepth: 0,
  localCertificate: new QSslCertificate(),
  localCertificateChain: [],
  privateKey: new QSslKey(),
  ciphers: null,
  systemCaCertificates: true,
  caCertificates: [],
  sslOptions: DEFAULT_SSL_OPTIONS,
  allowedNextProtocols: [],
  handshakeMustInterruptOnError: false,
  preSharedKeyIdentityHint: null,
  ocspStaplingEnabled: false,
  sessionTicket: Buffer.alloc(0),
  sessionTicketLifeTimeHint: -1,
};

/** An empty session (no handshake yet). */
export const NO_SESSION: SslSession = {
  peerCertificate: new QSslCertificate(),
  peerCertificateChain: [],
  sessionCipher: new QSslCipher(),
  sessionProtocol: SslProtocol.UnknownProtocol,
  nextNegotiatedProtocol: Buffer.alloc(0),
  nextProtocolNegotiationStatus: NextProtocolNegotiationStatus.NextProtocolNegotiationNone,
};

let systemCas: QSslCertificate[] | null = null;
let defaultSettings: SslSettings = EMPTY_SETTINGS;

/** Bytes of the configuration's own (a later change to the caller's Buffer does not reach it). */
function ownBytes(p: Buffer | string): Buffer {
  return Buffer.from(toBuffer(p));
}

let settingsOfConfig: (c: QSslConfiguration) => SslSettings;
let makeConfig: (settings: SslSettings, session: SslSession) => QSslConfiguration;

/**
 * TLS settings for a QSslSocket or QSslServer (Qt's QSslConfiguration): local certificate
 * and key, trusted CAs, protocol, peer verification, ciphers, options, ALPN, the PSK identity
 * hint, OCSP stapling and a saved session. A value class:
 * `new QSslConfiguration(other)` copies; sockets and servers keep copies of what they are
 * given and hand out copies. The session fields (`peerCertificate`, `sessionCipher`...)
 * are filled in only in the configuration a socket returns.
 *
 * The default CA certificates are the system's: Node's bundled Mozilla store
 * (`tls.rootCertificates`), as Qt's default is the platform's store.
 */
export class QSslConfiguration {
  private s: SslSettings;
  private session: SslSession;
  private nullConfig: boolean;

  static {
    settingsOfConfig = (c) => c.s;
    makeConfig = (settings, session) => {
      const c = new QSslConfiguration();
      c.s = settings;
      c.session = session;
      c.nullConfig = false;
      return c;
    };
  }

  /**
   * A copy of `other`, or an empty configuration (`isNull()` until a setter is called),
   * whose settings are Qt's defaults.
   */
  constructor(other?: QSslConfiguration) {
    this.s = other ? other.s : EMPTY_SETTINGS;
    this.session = other ? other.session : NO_SESSION;
    this.nullConfig = other ? other.nullConfig : true;
  }

  /** The application's default configuration (new sockets start from it). */
  static defaultConfiguration(): QSslConfiguration {
    // As in Qt 6, reading the default loads the TLS backend: its choice is made from then on.
    markBackendInUse();
    return makeConfig(defaultSettings, NO_SESSION);
  }

  /** Sets the application's default configuration, for sockets and servers made afterwards. */
  static setDefaultConfiguration(configuration: QSslConfiguration): void {
    defaultSettings = configuration.s;
  }

  /** The system's CA certificates (Node's bundled store), read once. */
  static systemCaCertificates(): QSslCertificate[] {
    systemCas ??= tls.rootCertificates.flatMap((pem) => QSslCertificate.fromData(pem));
    return [...systemCas];
  }

  /** Every cipher suite OpenSSL offers here, by OpenSSL's names. */
  static supportedCiphers(): QSslCipher[] {
    return getCiphers().map((n) => {
      const name = n.toUpperCase();
      return new QSslCipher(
        name,
        name.startsWith('TLS_') ? SslProtocol.TlsV1_3 : SslProtocol.TlsV1_2,
      );
    });
  }

  /** True for a configuration made empty and never changed. */
  isNull(): boolean {
    return this.nullConfig;
  }

  /** The protocol (versions) to negotiate; default SecureProtocols (TLS 1.2 and 1.3). */
  protocol(): SslProtocol {
    return this.s.protocol;
  }

  /** Sets the protocol to negotiate. */
  setProtocol(protocol: SslProtocol): void {
    this.update({ protocol });
  }

  /** How the peer's certificate is checked; default AutoVerifyPeer. */
  peerVerifyMode(): PeerVerifyMode {
    return this.s.peerVerifyMode;
  }

  /** Sets how the peer's certificate is checked. */
  setPeerVerifyMode(mode: PeerVerifyMode): void {
    this.update({ peerVerifyMode: mode });
  }

  /** How many certificates of the peer's chain are checked; 0 (default) = no limit. */
  peerVerifyDepth(): number {
    return this.s.peerVerifyDepth;
  }

  /** Sets the verification depth (0 = no limit); a negative depth is refused with Qt's warning. */
  setPeerVerifyDepth(depth: number): void {
    if (depth < 0) {
      qWarning(`QSslConfiguration::setPeerVerifyDepth: cannot set negative depth of ${depth}`);
      return;
    }
    this.update({ peerVerifyDepth: depth });
  }

  /** The certificate presented to the peer; null if none. */
  localCertificate(): QSslCertificate {
    if (!this.s.localCertificate.isNull()) return this.s.localCertificate;
    return this.s.localCertificateChain[0] ?? new QSslCertificate();
  }

  /** Sets the certificate presented to the peer (without intermediates). */
  setLocalCertificate(certificate: QSslCertificate): void {
    this.update({ localCertificate: certificate, localCertificateChain: [] });
  }

  /** The chain presented to the peer: the local certificate first, then intermediates. */
  localCertificateChain(): QSslCertificate[] {
    return [...this.s.localCertificateChain];
  }

  /** Sets the chain presented to the peer; its first certificate is the local certificate. */
  setLocalCertificateChain(chain: QSslCertificate[]): void {
    this.update({ localCertificate: new QSslCertificate(), localCertificateChain: [...chain] });
  }

  /** The private key of the local certificate; null if none. */
  privateKey(): QSslKey {
    return this.s.privateKey;
  }

  /** Sets the private key of the local certificate. */
  setPrivateKey(key: QSslKey): void {
    this.update({ privateKey: key });
  }

  /** The cipher suites offered; the default list unless `setCiphers` was called. */
  ciphers(): QSslCipher[] {
    return this.s.ciphers ? [...this.s.ciphers] : QSslConfiguration.supportedCiphers();
  }

  /**
   * Sets the cipher suites offered: QSslCipher objects, or OpenSSL's names joined with ':'
   * (Qt 5.15's string form).
   */
  setCiphers(ciphers: QSslCipher[] | string): void {
    const list =
      typeof ciphers === 'string'
        ? ciphers
            .split(':')
            .filter((n) => n !== '')
            .map((n) => new QSslCipher(n))
        : [...ciphers];
    this.update({ ciphers: list });
  }

  /**
   * The trusted CA certificates: the system's (unless replaced with `setCaCertificates`)
   * and those added.
   */
  caCertificates(): QSslCertificate[] {
    const own = [...this.s.caCertificates];
    return this.s.systemCaCertificates
      ? [...QSslConfiguration.systemCaCertificates(), ...own]
      : own;
  }

  /** Trusts exactly `certificates` (the system's are no longer trusted, as in Qt). */
  setCaCertificates(certificates: QSslCertificate[]): void {
    this.update({ caCertificates: [...certificates], systemCaCertificates: false });
  }

  /** Adds one trusted CA certificate. */
  addCaCertificate(certificate: QSslCertificate): void {
    this.update({ caCertificates: [...this.s.caCertificates, certificate] });
  }

  /**
   * Adds trusted CA certificates: a list, or the certificates read from a path (as
   * `QSslCertificate.fromPath`). Returns true if any were added from a path.
   */
  addCaCertificates(
    certificates: QSslCertificate[] | string,
    format: EncodingFormat = EncodingFormat.Pem,
    syntax: PatternSyntax = PatternSyntax.FixedString,
  ): boolean {
    const list =
      typeof certificates === 'string'
        ? QSslCertificate.fromPath(certificates, format, syntax)
        : certificates;
    this.update({ caCertificates: [...this.s.caCertificates, ...list] });
    return list.length > 0;
  }

  /** Turns `option` on or off. */
  setSslOption(option: SslOption, on: boolean): void {
    this.update({ sslOptions: on ? this.s.sslOptions | option : this.s.sslOptions & ~option });
  }

  /** Whether `option` is on. */
  testSslOption(option: SslOption): boolean {
    return (this.s.sslOptions & option) !== 0;
  }

  /** The protocols offered with ALPN, in order of preference. */
  allowedNextProtocols(): Buffer[] {
    return this.s.allowedNextProtocols.map((p) => Buffer.from(p));
  }

  /** Sets the protocols offered with ALPN (e.g. "h2", "http/1.1"). */
  setAllowedNextProtocols(protocols: Array<Buffer | string>): void {
    this.update({ allowedNextProtocols: protocols.map(ownBytes) });
  }

  /** Whether a verification error interrupts the handshake at once (Qt 6; default false). */
  handshakeMustInterruptOnError(): boolean {
    return this.s.handshakeMustInterruptOnError;
  }

  /**
   * With `interrupt`, the first verification error is reported by the socket's
   * `handshakeInterruptedOnError` instead of `peerVerifyError`, and the handshake fails
   * unless a slot calls `continueInterruptedHandshake()`.
   */
  setHandshakeMustInterruptOnError(interrupt: boolean): void {
    this.update({ handshakeMustInterruptOnError: interrupt });
  }

  /** The PSK identity hint a server sends to its clients; empty (null) by default. */
  preSharedKeyIdentityHint(): Buffer {
    const hint = this.s.preSharedKeyIdentityHint;
    return hint ? Buffer.from(hint) : Buffer.alloc(0);
  }

  /**
   * Sets the PSK identity hint a server sends (see QSslSocket's
   * `preSharedKeyAuthenticationRequired`); sent as UTF-8 text.
   */
  setPreSharedKeyIdentityHint(hint: Buffer | string): void {
    this.update({ preSharedKeyIdentityHint: ownBytes(hint) });
  }

  /** Whether a client asks the server for a stapled OCSP response (default false). */
  ocspStaplingEnabled(): boolean {
    return this.s.ocspStaplingEnabled;
  }

  /**
   * With `enabled`, a client asks for the certificate status during the handshake and, when
   * it verifies the server, checks the response: a missing, untrusted or bad response and a
   * revoked certificate are verification errors (see QSslSocket's `ocspResponses()`). A
   * server refuses a configuration with stapling on, as Qt does.
   */
  setOcspStaplingEnabled(enabled: boolean): void {
    this.update({ ocspStaplingEnabled: enabled });
  }

  /**
   * The saved session of a client: set with `setSessionTicket`, or kept by the socket after
   * a handshake when SslOptionDisableSessionPersistence is off (it is on by default).
   */
  sessionTicket(): Buffer {
    return Buffer.from(this.s.sessionTicket);
  }

  /**
   * A session saved earlier (`sessionTicket()` of a previous connection), which the next
   * handshake offers to resume, when SslOptionDisableSessionPersistence is off.
   */
  setSessionTicket(sessionTicket: Buffer): void {
    this.update({ sessionTicket: ownBytes(sessionTicket) });
  }

  /** The server's lifetime hint for the saved session, in seconds; -1 if none was saved. */
  sessionTicketLifeTimeHint(): number {
    return this.s.sessionTicketLifeTimeHint;
  }

  /** The peer's certificate (in a socket's configuration, after the handshake). */
  peerCertificate(): QSslCertificate {
    return this.session.peerCertificate;
  }

  /** The peer's chain, the peer's certificate first (after the handshake). */
  peerCertificateChain(): QSslCertificate[] {
    return [...this.session.peerCertificateChain];
  }

  /** The cipher in use (after the handshake); null otherwise. */
  sessionCipher(): QSslCipher {
    return this.session.sessionCipher;
  }

  /** The protocol in use (after the handshake); UnknownProtocol otherwise. */
  sessionProtocol(): SslProtocol {
    return this.session.sessionProtocol;
  }

  /** The protocol ALPN agreed on; empty if none. */
  nextNegotiatedProtocol(): Buffer {
    return Buffer.from(this.session.nextNegotiatedProtocol);
  }

  /** Whether ALPN agreed on a protocol. */
  nextProtocolNegotiationStatus(): NextProtocolNegotiationStatus {
    return this.session.nextProtocolNegotiationStatus;
  }

  private update(change: Partial<SslSettings>): void {
    this.s = { ...this.s, ...change };
    this.nullConfig = false;
  }
}

/** The settings of `configuration` (shared, never changed in place). */
export function settingsOf(configuration: QSslConfiguration): SslSettings {
  return settingsOfConfig(configuration);
}

/** A configuration with `settings` reporting `session` (what a socket hands out). */
export function configurationWith(settings: SslSettings, session: SslSession): QSslConfiguration {
  return makeConfig(settings, session);
}

/** `settings` with a session saved by a handshake (a socket keeps it for its next one). */
export function withSavedSession(
  settings: SslSettings,
  session: Buffer,
  hint: number,
): SslSettings {
  return { ...settings, sessionTicket: session, sessionTicketLifeTimeHint: hint };
}

/** The trusted CA certificates of `settings`, as Node certificates. */
export function trustedCertificates(settings: SslSettings): X509Certificate[] {
  const own = settings.caCertificates.map((c) => c.handle()).filter((x) => x !== null);
  if (!settings.systemCaCertificates) return own;
  const system = QSslConfiguration.systemCaCertificates()
    .map((c) => c.handle())
    .filter((x) => x !== null);
  return [...system, ...own];
}
