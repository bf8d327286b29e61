/**
 * The enums of Qt's `QSsl` namespace and of QSslSocket, with Qt's names and numeric values.
 *
 * Values are Qt 5.15's (checked against PyQt5 5.15.8), like the rest of the port. Qt 6
 * renumbered `SslProtocol` when it dropped SSLv2/SSLv3 (there TlsV1_2 is 2 and TlsV1_3 is
 * 12): compare protocols by name, not by number, when talking to a Qt 6 program.
 * `ImplementedClass` and `SupportedFeature` exist only in Qt 6; their values are Qt 6.4's
 * (checked against PyQt6).
 */

/** `QSsl::KeyType`. */
export enum KeyType {
  PrivateKey = 0,
  PublicKey = 1,
}

/** `QSsl::EncodingFormat`. */
export enum EncodingFormat {
  Pem = 0,
  Der = 1,
}

/** `QSsl::KeyAlgorithm`. */
export enum KeyAlgorithm {
  Opaque = 0,
  Rsa = 1,
  Dsa = 2,
  Ec = 3,
  Dh = 4,
}

/** `QSsl::AlternativeNameEntryType`: the kinds of subject alternative names. */
export enum AlternativeNameEntryType {
  EmailEntry = 0,
  DnsEntry = 1,
  IpAddressEntry = 2,
}

/** `QSsl::SslProtocol` (Qt 5.15 values). */
export enum SslProtocol {
  SslV3 = 0,
  SslV2 = 1,
  TlsV1_0 = 2,
  TlsV1_1 = 3,
  TlsV1_2 = 4,
  AnyProtocol = 5,
  TlsV1SslV3 = 6,
  SecureProtocols = 7,
  TlsV1_0OrLater = 8,
  TlsV1_1OrLater = 9,
  TlsV1_2OrLater = 10,
  DtlsV1_0 = 11,
  DtlsV1_0OrLater = 12,
  DtlsV1_2 = 13,
  DtlsV1_2OrLater = 14,
  TlsV1_3 = 15,
  TlsV1_3OrLater = 16,
  UnknownProtocol = -1,
}

/** `QSsl::SslOption` (flags; combine with `|`). */
export enum SslOption {
  SslOptionDisableEmptyFragments = 0x01,
  SslOptionDisableSessionTickets = 0x02,
  SslOptionDisableCompression = 0x04,
  SslOptionDisableServerNameIndication = 0x08,
  SslOptionDisableLegacyRenegotiation = 0x10,
  SslOptionDisableSessionSharing = 0x20,
  SslOptionDisableSessionPersistence = 0x40,
  SslOptionDisableServerCipherPreference = 0x80,
}

/**
 * `QSsl::ImplementedClass` (Qt 6): the classes a TLS backend may implement (see
 * `QSslSocket.implementedClasses`).
 */
export enum ImplementedClass {
  Key = 0,
  Certificate = 1,
  Socket = 2,
  DiffieHellman = 3,
  EllipticCurve = 4,
  Dtls = 5,
  DtlsCookie = 6,
}

/**
 * `QSsl::SupportedFeature` (Qt 6): the features a TLS backend may support (see
 * `QSslSocket.supportedFeatures`).
 */
export enum SupportedFeature {
  CertificateVerification = 0,
  ClientSideAlpn = 1,
  ServerSideAlpn = 2,
  Ocsp = 3,
  Psk = 4,
  SessionTicket = 5,
  Alerts = 6,
}

/** `QSslSocket::PeerVerifyMode`. */
export enum PeerVerifyMode {
  /** No certificate is asked for (on a server) and none is checked. */
  VerifyNone = 0,
  /** The peer's certificate is asked for, but an invalid or missing one is accepted. */
  QueryPeer = 1,
  /** The peer must present a valid certificate, or the handshake fails. */
  VerifyPeer = 2,
  /** VerifyPeer for a client, QueryPeer for a server (the default). */
  AutoVerifyPeer = 3,
}

/** `QSslSocket::SslMode`. */
export enum SslMode {
  UnencryptedMode = 0,
  SslClientMode = 1,
  SslServerMode = 2,
}

/** `QSslConfiguration::NextProtocolNegotiationStatus` (ALPN). */
export enum NextProtocolNegotiationStatus {
  NextProtocolNegotiationNone = 0,
  NextProtocolNegotiationNegotiated = 1,
  NextProtocolNegotiationUnsupported = 2,
}

/**
 * Qt's `QSsl` namespace: `QSsl.SslProtocol.TlsV1_2`, `QSsl.KeyAlgorithm.Ec`, ... (the
 * enums are also exported on their own).
 */
export const QSsl = {
  KeyType,
  EncodingFormat,
  KeyAlgorithm,
  AlternativeNameEntryType,
  SslProtocol,
  SslOption,
  ImplementedClass,
  SupportedFeature,
} as const;
