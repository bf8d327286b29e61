import type { X509Certificate } from 'node:crypto';
import { domainToASCII } from 'node:url';

import { QHostAddress } from '../kernel/qhost-address.js';
import { AlternativeNameEntryType } from './qssl.js';
import { QSslCertificate } from './qssl-certificate.js';
import { QSslError, SslError, sslErrorFromOpenSsl } from './qssl-error.js';

/** The extended key usages a peer certificate needs (OIDs), and "any". */
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_USAGE = '2.5.29.37.0';

/** What the peer's certificate chain is checked against. */
export interface ChainCheck {
  /** The peer's certificates, its own first (as Node reports them). */
  chain: X509Certificate[];
  /** The trusted CA certificates (asked for only when OpenSSL rejected the chain). */
  trusted: () => X509Certificate[];
  /** 'server' when a client checks a server, 'client' when a server checks a client. */
  purpose: 'server' | 'client';
  /** OpenSSL's verification result as Node reports it (null: verified). */
  opensslResult: string | null;
  /** Qt's peerVerifyDepth (0 = no limit). */
  maxDepth: number;
  now?: Date;
}

function sameCertificate(a: X509Certificate, b: X509Certificate): boolean {
  return a.raw.equals(b.raw);
}

/**
 * The errors OpenSSL's verification would report for `chain`, each with its certificate,
 * in OpenSSL's order (and so Qt's): building the chain (a missing issuer, an untrusted
 * self-signed root), then CA and purpose checks, then signatures and validity dates from
 * the root down.
 *
 * Node reports only OpenSSL's final verification result; Qt lists every error OpenSSL's
 * callback saw, and `ignoreSslErrors(list)` must match all of them. The chain is therefore
 * walked here again with Node's certificate primitives. OpenSSL stays the judge: when it
 * verified the chain, no chain error is reported, and when it did not, its own result is
 * always among the errors.
 */
export function chainErrors(check: ChainCheck): QSslError[] {
  if (check.chain.length === 0) return [];
  const policy: QSslError[] = [];
  if (check.maxDepth > 0 && check.chain.length > check.maxDepth + 2) {
    // OpenSSL's "certificate chain too long", which Qt does not name.
    policy.push(new QSslError(SslError.UnspecifiedError, QSslCertificate.fromX509(check.chain[0])));
  }
  if (check.opensslResult === null) return policy;
  const found = walk(check.chain, check.trusted(), check.purpose, check.now ?? new Date());
  const reported = sslErrorFromOpenSsl(check.opensslResult);
  if (!found.some((e) => e.error() === reported)) {
    found.push(new QSslError(reported, QSslCertificate.fromX509(check.chain[0])));
  }
  return [...found, ...policy];
}

function walk(
  chain: X509Certificate[],
  trusted: X509Certificate[],
  purpose: 'server' | 'client',
  now: Date,
): QSslError[] {
  const errors: QSslError[] = [];
  const error = (e: SslError, x: X509Certificate): void => {
    errors.push(new QSslError(e, QSslCertificate.fromX509(x)));
  };
  const isTrusted = (x: X509Certificate): boolean => trusted.some((t) => sameCertificate(t, x));

  // 1. Build the path from the peer's certificate to a self-signed one, issuers from the
  //    trusted store first (OpenSSL's default), then from what the peer sent.
  const leaf = chain[0];
  const path: X509Certificate[] = [leaf];
  let topSelfSigned = false;
  for (let cur = leaf; path.length <= 32;) {
    if (cur.checkIssued(cur)) {
      topSelfSigned = true;
      if (!isTrusted(cur)) {
        error(
          path.length === 1
            ? SslError.SelfSignedCertificate
            : SslError.SelfSignedCertificateInChain,
          cur,
        );
      }
      break;
    }
    const issuer =
      trusted.find((t) => cur.checkIssued(t)) ??
      chain.find((c) => !path.includes(c) && cur.checkIssued(c));
    if (!issuer) {
      if (isTrusted(cur)) {
        error(SslError.UnableToGetIssuerCertificate, cur);
      } else {
        error(SslError.UnableToGetLocalIssuerCertificate, cur);
        if (path.length === 1) error(SslError.UnableToVerifyFirstCertificate, cur);
      }
      break;
    }
    path.push(issuer);
    cur = issuer;
  }

  // 2. Issuers must be CAs; certificates that name their usages must allow this purpose.
  for (let i = 1; i < path.length; i++) {
    if (!path[i].ca) error(SslError.InvalidCaCertificate, path[i]);
  }
  const wanted = purpose === 'server' ? SERVER_AUTH : CLIENT_AUTH;
  for (const x of path) {
    const usages = x.keyUsage;
    if (usages && usages.length > 0 && !usages.includes(wanted) && !usages.includes(ANY_USAGE)) {
      error(SslError.InvalidPurpose, x);
    }
  }

  // 3. Signatures and dates, from the top down. As OpenSSL does, a top certificate that is
  //    not self-signed is not checked itself, and a lone unverifiable leaf not at all.
  if (!topSelfSigned && path.length === 1) return errors;
  const first = topSelfSigned ? path.length - 1 : path.length - 2;
  for (let i = first; i >= 0; i--) {
    const x = path[i];
    const issuer = path[i + 1];
    if (issuer && !x.verify(issuer.publicKey)) error(SslError.CertificateSignatureFailed, x);
    if (now < new Date(x.validFrom)) error(SslError.CertificateNotYetValid, x);
    if (now > new Date(x.validTo)) error(SslError.CertificateExpired, x);
  }
  return errors;
}

/**
 * Qt's host name check (QSslSocketPrivate::isMatchingHostname): the subject's common names
 * and DNS alternative names, with Qt's wildcard rules, then the IP address alternative
 * names. Unlike RFC 6125 (and `tls.checkServerIdentity`), Qt also accepts a common name
 * when the certificate has DNS alternative names.
 */
export function isMatchingHostname(certificate: QSslCertificate, peerName: string): boolean {
  const host = (domainToASCII(peerName) || peerName).toLowerCase();
  for (const cn of certificate.subjectInfo('CN')) {
    if (matchesName(cn, host)) return true;
  }
  const alt = certificate.subjectAlternativeNames();
  for (const dns of alt.get(AlternativeNameEntryType.DnsEntry) ?? []) {
    if (matchesName(dns, host)) return true;
  }
  const ips = alt.get(AlternativeNameEntryType.IpAddressEntry) ?? [];
  if (ips.length > 0) {
    const peer = new QHostAddress(peerName);
    if (!peer.isNull()) {
      for (const ip of ips) {
        const a = new QHostAddress(ip);
        if (!a.isNull() && a.toString() === peer.toString()) return true;
      }
    }
  }
  return false;
}

function ace(name: string): string {
  return (domainToASCII(name) || name).toLowerCase();
}

/** One name of the certificate against the (ASCII, lower-case) host name. */
function matchesName(name: string, host: string): boolean {
  const wildcard = name.indexOf('*');
  if (wildcard < 0) return ace(name) === host;
  const firstDot = name.indexOf('.');
  const secondDot = name.indexOf('.', firstDot + 1);
  // At least three labels, the star last in the first one, one star only, not in an IDN label.
  if (secondDot < 0 || secondDot + 1 >= name.length) return false;
  if (wildcard + 1 !== firstDot) return false;
  if (name.lastIndexOf('*') !== wildcard) return false;
  if (name.toLowerCase().startsWith('xn--')) return false;
  if (host.slice(0, wildcard).toLowerCase() !== name.slice(0, wildcard).toLowerCase()) return false;
  const hostDot = host.indexOf('.');
  const rest = host.slice(hostDot + 1);
  const nameRest = name.slice(firstDot + 1);
  if (rest !== nameRest && rest !== ace(nameRest)) return false;
  // No wildcard matches an IP address.
  return new QHostAddress(host).isNull();
}
