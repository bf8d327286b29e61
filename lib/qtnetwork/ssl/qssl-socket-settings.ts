import { readFileSync } from 'node:fs';

import {
  EncodingFormat,
  ImplementedClass,
  KeyAlgorithm,
  PeerVerifyMode,
  SslProtocol,
  SupportedFeature,
} from './qssl.js';
import { PatternSyntax, QSslCertificate } from './qssl-certificate.js';
import { QSslCipher } from './qssl-cipher.js';
import {
  NO_SESSION,
  QSslConfiguration,
  configurationWith,
  settingsOf,
  type SslSession,
  type SslSettings,
} from './qssl-configuration.js';
import { QSslKey } from './qssl-key.js';
import * as backend from './ssl-backend.js';
import { QTcpSocket } from '../socket/qtcp-socket.js';

/** Edits the application's default configuration (Qt 5.15's static QSslSocket setters). */
function editDefault(edit: (c: QSslConfiguration) => void): void {
  const c = QSslConfiguration.defaultConfiguration();
  edit(c);
  QSslConfiguration.setDefaultConfiguration(c);
}

/**
 * The part of QSslSocket that reads and edits TLS settings, without a connection: Qt's
 * static functions (the TLS library, Qt 6's backend description, Qt 5.15's application-wide
 * defaults) and the socket's own configuration with Qt 5.15's accessors for each of its
 * settings. QSslSocket extends it with the handshake; it is not exported on its own.
 */
export abstract class SslSocketSettings extends QTcpSocket {
  /** The settings the next handshake uses. */
  protected settings: SslSettings = settingsOf(QSslConfiguration.defaultConfiguration());
  /** What the last handshake established (peer, cipher, protocol, ALPN). */
  protected session: SslSession = NO_SESSION;
  /** The name the peer's certificate is checked against ("" = the host connected to). */
  protected verificationName = '';

  /** True: Node always has TLS (OpenSSL). */
  static supportsSsl(): boolean {
    return true;
  }

  /** The TLS library in use, e.g. "OpenSSL 3.0.13". */
  static sslLibraryVersionString(): string {
    return backend.libraryVersionString();
  }

  /** OpenSSL's version number (0xMNN00PP0 for OpenSSL 3). */
  static sslLibraryVersionNumber(): number {
    return backend.libraryVersionNumber();
  }

  /** The TLS library Node was built with (the same as `sslLibraryVersionString`). */
  static sslLibraryBuildVersionString(): string {
    return backend.libraryVersionString();
  }

  /** The version number of the TLS library Node was built with (`sslLibraryVersionNumber`). */
  static sslLibraryBuildVersionNumber(): number {
    return backend.libraryVersionNumber();
  }

  // Qt 6's description of the TLS backend. The port has one, "openssl" (OpenSSL through
  // Node); `backendName` "" means the active one, and any other name has nothing.

  /** The backend in use: "openssl". */
  static activeBackend(): string {
    return backend.activeBackend();
  }

  /** The backends available: ["openssl"]. */
  static availableBackends(): string[] {
    return backend.availableBackends();
  }

  /**
   * Chooses the backend: true for "openssl" (the only one); false, with Qt's warning, for an
   * empty or unknown name. Once TLS is in use every call warns that a backend is (Qt 6.4).
   */
  static setActiveBackend(backendName: string): boolean {
    return backend.setActiveBackend(backendName);
  }

  /** The classes the backend implements: Key, Certificate and Socket (no DTLS, DH or curves). */
  static implementedClasses(backendName = ''): ImplementedClass[] {
    return backend.implementedClasses(backendName);
  }

  /** True if `implementedClasses(backendName)` has `cl`. */
  static isClassImplemented(cl: ImplementedClass, backendName = ''): boolean {
    return backend.implementedClasses(backendName).includes(cl);
  }

  /** The features the backend supports: all of Qt's but Alerts (Node reports none). */
  static supportedFeatures(backendName = ''): SupportedFeature[] {
    return backend.supportedFeatures(backendName);
  }

  /** True if `supportedFeatures(backendName)` has `feature`. */
  static isFeatureSupported(feature: SupportedFeature, backendName = ''): boolean {
    return backend.supportedFeatures(backendName).includes(feature);
  }

  /** The protocols a socket can negotiate: TLS 1.0 to 1.3 and their ranges (no DTLS). */
  static supportedProtocols(backendName = ''): SslProtocol[] {
    return backend.supportedProtocols(backendName);
  }

  /** True if `supportedProtocols(backendName)` has `protocol`. */
  static isProtocolSupported(protocol: SslProtocol, backendName = ''): boolean {
    return backend.supportedProtocols(backendName).includes(protocol);
  }

  // Qt 5.15's application-wide settings on QSslSocket (gone in Qt 6, where
  // QSslConfiguration.defaultConfiguration() holds them); they read and edit that default.

  /** The default configuration's trusted CA certificates. */
  static defaultCaCertificates(): QSslCertificate[] {
    return QSslConfiguration.defaultConfiguration().caCertificates();
  }

  /** Makes `certificates` the only CAs that new sockets trust. */
  static setDefaultCaCertificates(certificates: QSslCertificate[]): void {
    editDefault((c) => c.setCaCertificates(certificates));
  }

  /** Adds a CA certificate that new sockets trust, unless they trust it already (as Qt). */
  static addDefaultCaCertificate(certificate: QSslCertificate): void {
    editDefault((c) => {
      if (!c.caCertificates().some((known) => known.isEqual(certificate))) {
        c.addCaCertificate(certificate);
      }
    });
  }

  /** Adds CA certificates for new sockets: a list, or those read from a path. */
  static addDefaultCaCertificates(
    certificates: QSslCertificate[] | string,
    format: EncodingFormat = EncodingFormat.Pem,
    syntax: PatternSyntax = PatternSyntax.FixedString,
  ): boolean {
    let added = false;
    editDefault((c) => {
      added = c.addCaCertificates(certificates, format, syntax);
    });
    return added;
  }

  /** The system's CA certificates (Node's bundled store). */
  static systemCaCertificates(): QSslCertificate[] {
    return QSslConfiguration.systemCaCertificates();
  }

  /** The cipher suites new sockets offer. */
  static defaultCiphers(): QSslCipher[] {
    return QSslConfiguration.defaultConfiguration().ciphers();
  }

  /** Sets the cipher suites new sockets offer. */
  static setDefaultCiphers(ciphers: QSslCipher[]): void {
    editDefault((c) => c.setCiphers(ciphers));
  }

  /** Every cipher suite OpenSSL offers here. */
  static supportedCiphers(): QSslCipher[] {
    return QSslConfiguration.supportedCiphers();
  }

  // ---------------------------------------------------------------- configuration

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

  /** The cipher suites offered in the next handshake. */
  ciphers(): QSslCipher[] {
    return this.sslConfiguration().ciphers();
  }

  /** Sets the cipher suites to offer: a list, or OpenSSL's names joined with ':'. */
  setCiphers(ciphers: QSslCipher[] | string): void {
    this.change((c) => c.setCiphers(ciphers));
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

  /** Edits the settings the next handshake uses. */
  protected change(edit: (c: QSslConfiguration) => void): void {
    const c = configurationWith(this.settings, NO_SESSION);
    edit(c);
    this.settings = settingsOf(c);
  }
}
