import { QSslCertificate } from './qssl-certificate.js';

/** `QSslError::SslError`, with Qt 5.15's values. */
export enum SslError {
  UnspecifiedError = -1,
  NoError = 0,
  UnableToGetIssuerCertificate = 1,
  UnableToDecryptCertificateSignature = 2,
  UnableToDecodeIssuerPublicKey = 3,
  CertificateSignatureFailed = 4,
  CertificateNotYetValid = 5,
  CertificateExpired = 6,
  InvalidNotBeforeField = 7,
  InvalidNotAfterField = 8,
  SelfSignedCertificate = 9,
  SelfSignedCertificateInChain = 10,
  UnableToGetLocalIssuerCertificate = 11,
  UnableToVerifyFirstCertificate = 12,
  CertificateRevoked = 13,
  InvalidCaCertificate = 14,
  PathLengthExceeded = 15,
  InvalidPurpose = 16,
  CertificateUntrusted = 17,
  CertificateRejected = 18,
  SubjectIssuerMismatch = 19,
  AuthorityIssuerSerialNumberMismatch = 20,
  NoPeerCertificate = 21,
  HostNameMismatch = 22,
  NoSslSupport = 23,
  CertificateBlacklisted = 24,
  CertificateStatusUnknown = 25,
  OcspNoResponseFound = 26,
  OcspMalformedRequest = 27,
  OcspMalformedResponse = 28,
  OcspInternalError = 29,
  OcspTryLater = 30,
  OcspSigRequred = 31,
  OcspUnauthorized = 32,
  OcspResponseCannotBeTrusted = 33,
  OcspResponseCertIdUnknown = 34,
  OcspResponseExpired = 35,
  OcspStatusUnknown = 36,
}

/**
 * `QSslError::errorString()` texts, as Qt 5.15 returns them (read from PyQt5 5.15.8).
 * Errors without an entry read "Unknown error" (Qt 5.15 has no text for CertificateRevoked
 * or CertificateStatusUnknown either); NoSslSupport reads "", as in Qt.
 */
const TEXTS: Partial<Record<SslError, string>> = {
  [SslError.NoError]: 'No error',
  [SslError.UnableToGetIssuerCertificate]: 'The issuer certificate could not be found',
  [SslError.UnableToDecryptCertificateSignature]:
    'The certificate signature could not be decrypted',
  [SslError.UnableToDecodeIssuerPublicKey]: 'The public key in the certificate could not be read',
  [SslError.CertificateSignatureFailed]: 'The signature of the certificate is invalid',
  [SslError.CertificateNotYetValid]: 'The certificate is not yet valid',
  [SslError.CertificateExpired]: 'The certificate has expired',
  [SslError.InvalidNotBeforeField]: "The certificate's notBefore field contains an invalid time",
  [SslError.InvalidNotAfterField]: "The certificate's notAfter field contains an invalid time",
  [SslError.SelfSignedCertificate]: 'The certificate is self-signed, and untrusted',
  [SslError.SelfSignedCertificateInChain]:
    'The root certificate of the certificate chain is self-signed, and untrusted',
  [SslError.UnableToGetLocalIssuerCertificate]:
    'The issuer certificate of a locally looked up certificate could not be found',
  [SslError.UnableToVerifyFirstCertificate]: 'No certificates could be verified',
  [SslError.InvalidCaCertificate]: 'One of the CA certificates is invalid',
  [SslError.PathLengthExceeded]: 'The basicConstraints path length parameter has been exceeded',
  [SslError.InvalidPurpose]: 'The supplied certificate is unsuitable for this purpose',
  [SslError.CertificateUntrusted]: 'The root CA certificate is not trusted for this purpose',
  [SslError.CertificateRejected]:
    'The root CA certificate is marked to reject the specified purpose',
  [SslError.SubjectIssuerMismatch]:
    'The current candidate issuer certificate was rejected because its subject name did not match the issuer name of the current certificate',
  [SslError.AuthorityIssuerSerialNumberMismatch]:
    'The current candidate issuer certificate was rejected because its issuer name and serial number was present and did not match the authority key identifier of the current certificate',
  [SslError.NoPeerCertificate]: 'The peer did not present any certificate',
  [SslError.HostNameMismatch]:
    'The host name did not match any of the valid hosts for this certificate',
  [SslError.NoSslSupport]: '',
  [SslError.CertificateBlacklisted]: 'The peer certificate is blacklisted',
  [SslError.OcspNoResponseFound]: 'No OCSP status response found',
  [SslError.OcspMalformedRequest]: 'The OCSP status request had invalid syntax',
  [SslError.OcspMalformedResponse]:
    'OCSP response contains an unexpected number of SingleResponse structures',
  [SslError.OcspInternalError]: 'OCSP responder reached an inconsistent internal state',
  [SslError.OcspTryLater]:
    'OCSP responder was unable to return a status for the requested certificate',
  [SslError.OcspSigRequred]:
    'The server requires the client to sign the OCSP request in order to construct a response',
  [SslError.OcspUnauthorized]:
    'The client is not authorized to request OCSP status from this server',
  [SslError.OcspResponseCannotBeTrusted]: "OCSP responder's identity cannot be verified",
  [SslError.OcspResponseCertIdUnknown]:
    'The identity of a certificate in an OCSP response cannot be established',
  [SslError.OcspResponseExpired]: 'The certificate status response has expired',
  [SslError.OcspStatusUnknown]: "The certificate's status is unknown",
};

/**
 * OpenSSL's certificate verification results (the `code` Node gives them) and the
 * QSslError Qt's OpenSSL backend turns each into; anything else is UnspecifiedError.
 */
const FROM_OPENSSL: Record<string, SslError> = {
  UNABLE_TO_GET_ISSUER_CERT: SslError.UnableToGetIssuerCertificate,
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: SslError.UnableToDecryptCertificateSignature,
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: SslError.UnableToDecodeIssuerPublicKey,
  CERT_SIGNATURE_FAILURE: SslError.CertificateSignatureFailed,
  CERT_NOT_YET_VALID: SslError.CertificateNotYetValid,
  CERT_HAS_EXPIRED: SslError.CertificateExpired,
  ERROR_IN_CERT_NOT_BEFORE_FIELD: SslError.InvalidNotBeforeField,
  ERROR_IN_CERT_NOT_AFTER_FIELD: SslError.InvalidNotAfterField,
  DEPTH_ZERO_SELF_SIGNED_CERT: SslError.SelfSignedCertificate,
  SELF_SIGNED_CERT_IN_CHAIN: SslError.SelfSignedCertificateInChain,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: SslError.UnableToGetLocalIssuerCertificate,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: SslError.UnableToVerifyFirstCertificate,
  CERT_REVOKED: SslError.CertificateRevoked,
  INVALID_CA: SslError.InvalidCaCertificate,
  PATH_LENGTH_EXCEEDED: SslError.PathLengthExceeded,
  INVALID_PURPOSE: SslError.InvalidPurpose,
  CERT_UNTRUSTED: SslError.CertificateUntrusted,
  CERT_REJECTED: SslError.CertificateRejected,
};

/** The QSslError for an OpenSSL verification result code as Node reports it. */
export function sslErrorFromOpenSsl(code: string): SslError {
  return FROM_OPENSSL[code] ?? SslError.UnspecifiedError;
}

/**
 * An error found while verifying the peer's identity (Qt's QSslError): what went wrong,
 * and the certificate it concerns (null when it concerns none, e.g. NoPeerCertificate).
 * A value class: errors are equal when their error and certificate are.
 */
export class QSslError {
  static readonly SslError = SslError;

  private readonly err: SslError;
  private readonly cert: QSslCertificate;

  /** `new QSslError()` is NoError; the certificate defaults to a null certificate. */
  constructor(error: SslError = SslError.NoError, certificate?: QSslCertificate) {
    this.err = error;
    this.cert = certificate ?? new QSslCertificate();
  }

  /** The kind of error. */
  error(): SslError {
    return this.err;
  }

  /** Qt's text for the error, e.g. "The certificate has expired". */
  errorString(): string {
    return TEXTS[this.err] ?? 'Unknown error';
  }

  /** The certificate the error concerns; a null certificate if none. */
  certificate(): QSslCertificate {
    return this.cert;
  }

  /** Qt's `operator==`: same error and same certificate (two null certificates are equal). */
  isEqual(other: QSslError): boolean {
    return this.err === other.err && this.cert.isEqual(other.cert);
  }

  /** The error's text (as Qt's `QDebug` prints it). */
  toString(): string {
    return this.errorString();
  }
}
