import { X509Certificate, createHash, verify as verifySignature } from 'node:crypto';

import {
  CONTEXT,
  DerError,
  Tag,
  bitStringOf,
  childrenOf,
  explicit,
  integerBytesOf,
  isTagged,
  octetsOf,
  oidOf,
  parseDer,
  sequence,
  smallIntegerOf,
  timeOf,
  type DerElement,
} from './asn1-der.js';
import {
  QOcspCertificateStatus,
  QOcspRevocationReason,
  QOcspResponse,
  ocspResponseOf,
} from './qocsp-response.js';
import { QSslCertificate } from './qssl-certificate.js';
import { QSslError, SslError } from './qssl-error.js';

/**
 * The check of a stapled OCSP response (RFC 6960) that Qt's client makes after the
 * handshake when `QSslConfiguration.ocspStaplingEnabled()` is on and the peer is verified,
 * done here on the DER Node hands over: decode, verify who signed it, find the certificate
 * it speaks of, check its dates and read the status. What Qt reports, in Qt's order.
 */

/** What the check found. */
export interface OcspOutcome {
  /** The response read (Qt reads one; none when the response was unusable). */
  responses: QOcspResponse[];
  /** Verification errors, in the order Qt reports them. */
  errors: QSslError[];
  /** Set when the response cannot be read at all: the handshake fails with this text. */
  failure: string | null;
}

export interface OcspInput {
  /** The stapled response (DER); null when the server sent none. */
  response: Buffer | null;
  /** The peer's chain as Node reports it, its own certificate first. */
  peerChain: X509Certificate[];
  /** The trusted CA certificates. */
  trusted: () => X509Certificate[];
  now?: Date;
}

const BASIC_RESPONSE = '1.3.6.1.5.5.7.48.1.1';
const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
/** The time Qt allows for clock differences when checking a response's dates, in ms. */
const CLOCK_SKEW_MS = 60_000;

/** Node's names of the digests a CertID may use. */
const HASHES: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '1.2.840.113549.2.5': 'md5',
};

/** Signature algorithms: the digest Node's verify takes (null for EdDSA). */
const SIGNATURES: Record<string, string | null> = {
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
  '1.3.101.113': null,
};

/** The responseStatus values that are not "successful", as Qt names them. */
const STATUS_ERRORS: Record<number, SslError> = {
  1: SslError.OcspMalformedRequest,
  2: SslError.OcspInternalError,
  3: SslError.OcspTryLater,
  5: SslError.OcspSigRequred,
  6: SslError.OcspUnauthorized,
};

/**
 * RFC 5280's CRLReason codes and Qt's names for them (Qt numbers its own enum: 7 is
 * removeFromCRL, which is 8 on the wire; the reasons Qt does not name read as None).
 */
const REASONS: Record<number, QOcspRevocationReason> = {
  0: QOcspRevocationReason.Unspecified,
  1: QOcspRevocationReason.KeyCompromise,
  2: QOcspRevocationReason.CACompromise,
  3: QOcspRevocationReason.AffiliationChanged,
  4: QOcspRevocationReason.Superseded,
  5: QOcspRevocationReason.CessationOfOperation,
  6: QOcspRevocationReason.CertificateHold,
  8: QOcspRevocationReason.RemoveFromCRL,
};

interface CertId {
  hash: string | null;
  nameHash: Buffer;
  keyHash: Buffer;
  serial: Buffer;
}

interface SingleResponse {
  certId: CertId;
  status: QOcspCertificateStatus;
  reason: QOcspRevocationReason;
  thisUpdate: Date;
  nextUpdate: Date | null;
}

interface BasicResponse {
  tbs: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
  responderName: Buffer | null;
  responderKeyHash: Buffer | null;
  singles: SingleResponse[];
  certs: X509Certificate[];
}

/** The parts of a certificate the CertID is made of. */
interface CertParts {
  serial: Buffer;
  subject: Buffer;
  publicKeyBits: Buffer;
}

const partsCache = new WeakMap<X509Certificate, CertParts>();

function partsOf(x: X509Certificate): CertParts {
  let p = partsCache.get(x);
  if (!p) {
    // tbsCertificate: [0] version?, serialNumber, signature, issuer, validity, subject, spki
    const tbs = sequence(sequence(parseDer(x.raw))[0]);
    const at = isTagged(tbs[0], CONTEXT, 0) ? 1 : 0;
    p = {
      serial: integerBytesOf(tbs[at]),
      subject: tbs[at + 4].raw,
      publicKeyBits: bitStringOf(sequence(tbs[at + 5])[1]),
    };
    partsCache.set(x, p);
  }
  return p;
}

function digest(hash: string, data: Buffer): Buffer {
  return createHash(hash).update(data).digest();
}

function parseCertId(e: DerElement): CertId {
  const [algorithm, nameHash, keyHash, serial] = sequence(e);
  return {
    hash: HASHES[oidOf(sequence(algorithm)[0])] ?? null,
    nameHash: octetsOf(nameHash),
    keyHash: octetsOf(keyHash),
    serial: integerBytesOf(serial),
  };
}

function parseSingle(e: DerElement): SingleResponse {
  const [certId, certStatus, thisUpdate, ...rest] = sequence(e);
  let status: QOcspCertificateStatus;
  let reason = QOcspRevocationReason.None;
  if (isTagged(certStatus, CONTEXT, 0)) {
    status = QOcspCertificateStatus.Good;
  } else if (isTagged(certStatus, CONTEXT, 1) && certStatus.constructed) {
    // RevokedInfo (implicit): revocationTime, [0] EXPLICIT CRLReason OPTIONAL
    status = QOcspCertificateStatus.Revoked;
    const [revocationTime, why] = childrenOf(certStatus);
    timeOf(revocationTime);
    if (why !== undefined) {
      const code = smallIntegerOf(explicit(why, 0), Tag.Enumerated);
      reason = REASONS[code] ?? QOcspRevocationReason.None;
    }
  } else if (isTagged(certStatus, CONTEXT, 2)) {
    status = QOcspCertificateStatus.Unknown;
  } else {
    throw new DerError('bad certStatus');
  }
  const next = rest.find((r) => isTagged(r, CONTEXT, 0));
  return {
    certId: parseCertId(certId),
    status,
    reason,
    thisUpdate: timeOf(thisUpdate),
    nextUpdate: next ? timeOf(explicit(next, 0)) : null,
  };
}

function parseBasic(der: Buffer): BasicResponse {
  const [tbsElement, algorithm, signature, certs] = sequence(parseDer(der));
  const tbs = sequence(tbsElement);
  let i = isTagged(tbs[0], CONTEXT, 0) ? 1 : 0;
  const responder = tbs[i++];
  let responderName: Buffer | null = null;
  let responderKeyHash: Buffer | null = null;
  if (isTagged(responder, CONTEXT, 1)) responderName = explicit(responder, 1).raw;
  else if (isTagged(responder, CONTEXT, 2)) responderKeyHash = octetsOf(explicit(responder, 2));
  else throw new DerError('bad responderID');
  timeOf(tbs[i++]); // producedAt
  const singles = sequence(tbs[i]).map(parseSingle);
  return {
    tbs: tbsElement.raw,
    signatureAlgorithm: oidOf(sequence(algorithm)[0]),
    signature: bitStringOf(signature),
    responderName,
    responderKeyHash,
    singles,
    certs: certs ? sequence(explicit(certs, 0)).map((c) => new X509Certificate(c.raw)) : [],
  };
}

/** True if `id` names a certificate issued by `issuer` (its name and key hashes). */
function issuedBy(id: CertId, issuer: X509Certificate): boolean {
  if (id.hash === null) return false;
  const p = partsOf(issuer);
  return (
    digest(id.hash, p.subject).equals(id.nameHash) &&
    digest(id.hash, p.publicKeyBits).equals(id.keyHash)
  );
}

/** True if `id` names `cert`, issued by `issuer`. */
function namesCertificate(id: CertId, cert: X509Certificate, issuer: X509Certificate): boolean {
  return partsOf(cert).serial.equals(id.serial) && issuedBy(id, issuer);
}

function isSignedBy(basic: BasicResponse, signer: X509Certificate): boolean {
  if (!(basic.signatureAlgorithm in SIGNATURES)) return false;
  try {
    return verifySignature(
      SIGNATURES[basic.signatureAlgorithm],
      basic.tbs,
      { key: signer.publicKey, dsaEncoding: 'der' },
      basic.signature,
    );
  } catch {
    return false;
  }
}

/**
 * The signer's chain up to a trusted self-signed certificate, as OpenSSL builds it for an
 * OCSP responder (issuers from the trusted store first, then from the untrusted ones;
 * issuers must be CAs, signatures and dates valid); null when there is none.
 */
function trustedChain(
  signer: X509Certificate,
  untrusted: X509Certificate[],
  trusted: X509Certificate[],
  now: Date,
): X509Certificate[] | null {
  const isTrusted = (x: X509Certificate): boolean => trusted.some((t) => t.raw.equals(x.raw));
  const path = [signer];
  for (let cur = signer; ;) {
    if (cur.checkIssued(cur)) {
      if (!isTrusted(cur)) return null;
      break;
    }
    if (path.length > 32) return null;
    const issuer =
      trusted.find((t) => cur.checkIssued(t)) ??
      untrusted.find((c) => !path.includes(c) && cur.checkIssued(c));
    if (!issuer || !cur.verify(issuer.publicKey)) return null;
    path.push(issuer);
    cur = issuer;
  }
  for (let i = 0; i < path.length; i++) {
    const x = path[i];
    if (i > 0 && !x.ca) return null;
    if (now < new Date(x.validFrom) || now > new Date(x.validTo)) return null;
  }
  return path;
}

/**
 * OpenSSL's OCSP_basic_verify with no flags, as Qt calls it: the signer (named by the
 * responder ID, among the response's certificates and the peer's chain) made the
 * signature, its chain reaches a trusted root, and it may speak for the certificates in
 * the response: it is their issuer, or a responder that their issuer delegated (with the
 * OCSPSigning usage).
 */
function isTrustworthy(
  basic: BasicResponse,
  peerChain: X509Certificate[],
  trusted: X509Certificate[],
  now: Date,
): boolean {
  const candidates = [...peerChain, ...basic.certs];
  const signer = candidates.find((c) =>
    basic.responderName
      ? partsOf(c).subject.equals(basic.responderName)
      : digest('sha1', partsOf(c).publicKeyBits).equals(basic.responderKeyHash!),
  );
  if (!signer || !isSignedBy(basic, signer)) return false;
  const chain = trustedChain(signer, candidates, trusted, now);
  if (!chain || basic.singles.length === 0) return false;
  const first = basic.singles[0].certId;
  const sameIssuer = basic.singles.every(
    (s) =>
      s.certId.hash === first.hash &&
      s.certId.nameHash.equals(first.nameHash) &&
      s.certId.keyHash.equals(first.keyHash),
  );
  if (!sameIssuer) return false;
  if (chain.length > 1 && issuedBy(first, chain[1])) {
    return (signer.keyUsage ?? []).includes(OCSP_SIGNING);
  }
  return issuedBy(first, signer);
}

/** Checks the stapled response `input.response` against the peer's certificate. */
export function checkOcspResponse(input: OcspInput): OcspOutcome {
  const none = (errors: QSslError[], failure: string | null = null): OcspOutcome => ({
    responses: [],
    errors,
    failure,
  });
  const der = input.response;
  if (!der || der.length === 0) return none([new QSslError(SslError.OcspNoResponseFound)]);

  let status: number;
  let bytes: DerElement | undefined;
  try {
    const outer = sequence(parseDer(der));
    status = smallIntegerOf(outer[0], Tag.Enumerated);
    bytes = outer[1];
  } catch {
    return none([], 'Failed to decode OCSP response');
  }
  if (status !== 0) {
    // An error message from the responder, not signed: no status.
    return none([new QSslError(STATUS_ERRORS[status] ?? SslError.NoError)]);
  }
  let basic: BasicResponse;
  try {
    if (!bytes) throw new DerError('no responseBytes');
    const [type, response] = sequence(explicit(bytes, 0));
    if (oidOf(type) !== BASIC_RESPONSE) throw new DerError('not a basic response');
    basic = parseBasic(octetsOf(response));
  } catch {
    return none([], 'Failed to extract basic OCSP response');
  }

  const now = input.now ?? new Date();
  const peer = input.peerChain[0];
  const peerCert = peer ? QSslCertificate.fromX509(peer) : new QSslCertificate();
  const errors: QSslError[] = [];
  if (!isTrustworthy(basic, input.peerChain, input.trusted(), now)) {
    errors.push(new QSslError(SslError.OcspResponseCannotBeTrusted));
  }
  if (basic.singles.length !== 1) {
    errors.push(new QSslError(SslError.OcspMalformedResponse));
    return none(errors);
  }
  const single = basic.singles[0];

  // Which certificate of the peer's chain issued the peer's certificate, if the response
  // is about the peer's certificate at all (Qt's "responder").
  let responder: X509Certificate | null = null;
  if (peer) {
    const candidates = peer.checkIssued(peer) ? [peer] : input.peerChain;
    responder =
      candidates.find(
        (issuer) => namesCertificate(single.certId, peer, issuer) && peer.checkIssued(issuer),
      ) ?? null;
  }
  if (!responder) errors.push(new QSslError(SslError.OcspResponseCertIdUnknown, peerCert));

  const t = now.getTime();
  const tooEarly = single.thisUpdate.getTime() > t + CLOCK_SKEW_MS;
  const tooLate = single.nextUpdate !== null && single.nextUpdate.getTime() < t - CLOCK_SKEW_MS;
  const backwards = single.nextUpdate !== null && single.nextUpdate < single.thisUpdate;
  if (tooEarly || tooLate || backwards) {
    errors.push(new QSslError(SslError.OcspResponseExpired, peerCert));
  }
  if (single.status === QOcspCertificateStatus.Revoked) {
    errors.push(new QSslError(SslError.CertificateRevoked, peerCert));
  } else if (single.status === QOcspCertificateStatus.Unknown) {
    errors.push(new QSslError(SslError.OcspStatusUnknown, peerCert));
  }
  const response = ocspResponseOf({
    certificateStatus: single.status,
    revocationReason:
      single.status === QOcspCertificateStatus.Revoked ? single.reason : QOcspRevocationReason.None,
    responder: responder ? QSslCertificate.fromX509(responder) : new QSslCertificate(),
    subject: peerCert,
  });
  return { responses: [response], errors, failure: null };
}
