import { QSslCertificate } from './qssl-certificate.js';

/** `QOcspCertificateStatus`: what an OCSP responder says about a certificate. */
export enum QOcspCertificateStatus {
  Good = 0,
  Revoked = 1,
  Unknown = 2,
}

/** `QOcspRevocationReason`: why a certificate was revoked (RFC 5280's CRLReason). */
export enum QOcspRevocationReason {
  /** Not revoked, or revoked without a reason given. */
  None = -1,
  Unspecified = 0,
  KeyCompromise = 1,
  CACompromise = 2,
  AffiliationChanged = 3,
  Superseded = 4,
  CessationOfOperation = 5,
  CertificateHold = 6,
  RemoveFromCRL = 7,
}

interface OcspFields {
  readonly certificateStatus: QOcspCertificateStatus;
  readonly revocationReason: QOcspRevocationReason;
  readonly responder: QSslCertificate;
  readonly subject: QSslCertificate;
}

const EMPTY: OcspFields = {
  certificateStatus: QOcspCertificateStatus.Unknown,
  revocationReason: QOcspRevocationReason.None,
  responder: new QSslCertificate(),
  subject: new QSslCertificate(),
};

let makeResponse: (fields: OcspFields) => QOcspResponse;

/**
 * The status of the peer's certificate that a server stapled to the handshake (Qt's
 * QOcspResponse), as QSslSocket read it with `QSslConfiguration.setOcspStaplingEnabled`.
 * A value class: copies compare equal (`isEqual`). A default one says Unknown, with no
 * reason and null certificates.
 */
export class QOcspResponse {
  private f: OcspFields;

  static {
    makeResponse = (fields) => {
      const r = new QOcspResponse();
      r.f = fields;
      return r;
    };
  }

  /** A copy of `other`, or an empty response (Unknown, no reason, null certificates). */
  constructor(other?: QOcspResponse) {
    this.f = other ? other.f : EMPTY;
  }

  /** Good, Revoked or Unknown (the default). */
  certificateStatus(): QOcspCertificateStatus {
    return this.f.certificateStatus;
  }

  /** Why the certificate was revoked; None unless it was revoked with a reason. */
  revocationReason(): QOcspRevocationReason {
    return this.f.revocationReason;
  }

  /**
   * As Qt: the issuer of the certificate whose status this is (the peer's CA, found in its
   * chain), null when the response does not name that certificate.
   */
  responder(): QSslCertificate {
    return this.f.responder;
  }

  /** The certificate whose status this is (the peer's). */
  subject(): QSslCertificate {
    return this.f.subject;
  }

  /** Exchanges the contents of this response and `other`. */
  swap(other: QOcspResponse): void {
    [this.f, other.f] = [other.f, this.f];
  }

  /** True if both say the same about the same certificates (Qt's operator==). */
  isEqual(other: QOcspResponse): boolean {
    return (
      this.f.certificateStatus === other.f.certificateStatus &&
      this.f.revocationReason === other.f.revocationReason &&
      this.f.responder.isEqual(other.f.responder) &&
      this.f.subject.isEqual(other.f.subject)
    );
  }
}

/** A response with these fields (for the OCSP check; applications get them from sockets). */
export function ocspResponseOf(fields: OcspFields): QOcspResponse {
  return makeResponse(fields);
}
