import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

import { QHostAddress } from '../kernel/qhost-address.js';
import { qWarning } from '../core/qlogging.js';
import { AlternativeNameEntryType, EncodingFormat } from './qssl.js';
import { QSslKey } from './qssl-key.js';

/** `QSslCertificate::SubjectInfo`: the name attributes `subjectInfo`/`issuerInfo` read. */
export enum SubjectInfo {
  Organization = 0,
  CommonName = 1,
  LocalityName = 2,
  OrganizationalUnitName = 3,
  CountryName = 4,
  StateOrProvinceName = 5,
  DistinguishedNameQualifier = 6,
  SerialNumber = 7,
  EmailAddress = 8,
}

/** `QSslCertificate::PatternSyntax` (Qt 6), for `fromPath`. */
export enum PatternSyntax {
  RegularExpression = 0,
  Wildcard = 1,
  FixedString = 2,
}

/** The attribute short names OpenSSL (and so Qt) uses for each SubjectInfo. */
const ATTRIBUTE: Record<SubjectInfo, string> = {
  [SubjectInfo.Organization]: 'O',
  [SubjectInfo.CommonName]: 'CN',
  [SubjectInfo.LocalityName]: 'L',
  [SubjectInfo.OrganizationalUnitName]: 'OU',
  [SubjectInfo.CountryName]: 'C',
  [SubjectInfo.StateOrProvinceName]: 'ST',
  [SubjectInfo.DistinguishedNameQualifier]: 'dnQualifier',
  [SubjectInfo.SerialNumber]: 'serialNumber',
  [SubjectInfo.EmailAddress]: 'emailAddress',
};

/** A name as Node's legacy certificate object gives it: attribute → value(s). */
type NameObject = Record<string, string | string[] | undefined>;

const PEM_CERTIFICATE =
  /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;

/** A whole DER element (tag, length, contents) starting at `offset`; null if malformed. */
function derElementLength(der: Buffer, offset: number): number | null {
  if (offset + 2 > der.length) return null;
  const first = der[offset + 1];
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4 || offset + 2 + n > der.length) return null;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + der[offset + 2 + i];
  return 2 + n + len;
}

function parse(der: Buffer): X509Certificate | null {
  try {
    return new X509Certificate(der);
  } catch {
    return null;
  }
}

/** Every certificate in `data`: PEM blocks in order, or concatenated DER certificates. */
function parseAll(
  data: Buffer | string,
  format: EncodingFormat,
  max = Infinity,
): X509Certificate[] {
  const out: X509Certificate[] = [];
  if (format === EncodingFormat.Pem) {
    const text = typeof data === 'string' ? data : data.toString('latin1');
    for (const m of text.matchAll(PEM_CERTIFICATE)) {
      if (out.length >= max) break;
      const x = parse(Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
      if (!x) break;
      out.push(x);
    }
    return out;
  }
  const der = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  let offset = 0;
  while (offset < der.length && out.length < max) {
    const len = derElementLength(der, offset);
    if (len === null || offset + len > der.length) break;
    const x = parse(der.subarray(offset, offset + len));
    if (!x) break;
    out.push(x);
    offset += len;
  }
  return out;
}

/** Splits Node's `subjectAltName` text ("DNS:a, IP Address:1.2.3.4, DNS:\"b, c\""). */
function parseAltNames(text: string | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      // Node quotes values that contain separators, JSON-style.
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      } catch {
        value = text.slice(colon + 2, j);
      }
      next = text.indexOf(',', j + 1);
    } else {
      next = text.indexOf(', ', colon + 1);
      value = text.slice(colon + 1, next < 0 ? text.length : next);
    }
    out.push([type, value]);
    if (next < 0) break;
    i = next + 1;
    while (text[i] === ' ') i++;
  }
  return out;
}

function valuesOf(name: NameObject | undefined, attribute: string): string[] {
  const v = name?.[attribute];
  if (v === undefined) return [];
  return Array.isArray(v) ? [...v] : [v];
}

/** Files under `base` (recursively, bounded), for wildcard and regular-expression paths. */
function listFiles(base: string, out: string[] = [], depth = 0): string[] {
  if (depth > 16 || out.length > 10000) return out;
  let entries: string[];
  try {
    entries = readdirSync(base);
  } catch {
    return out;
  }
  for (const e of entries) {
    const full = path.join(base, e);
    try {
      const st = statSync(full);
      if (st.isDirectory()) listFiles(full, out, depth + 1);
      else if (st.isFile()) out.push(full);
    } catch {
      // unreadable entries are skipped, as QDirIterator skips them
    }
  }
  return out;
}

function wildcardToRegExp(pattern: string): RegExp {
  let re = '';
  for (const ch of pattern) {
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * An X.509 certificate (Qt's QSslCertificate), over Node's `X509Certificate`. A value
 * class: a default-constructed or unparsable certificate is null (`isNull()`).
 *
 * Methods that return a QByteArray in Qt (`toPem`, `toDer`, `digest`, `serialNumber`,
 * `version`) return a Buffer; name lookups return strings.
 */
export class QSslCertificate {
  static readonly SubjectInfo = SubjectInfo;
  static readonly PatternSyntax = PatternSyntax;

  private x509: X509Certificate | null;
  private legacy: ReturnType<X509Certificate['toLegacyObject']> | null = null;

  /**
   * The first certificate in `data` (PEM text or bytes, or DER), or a null certificate when
   * there is none or `data` is omitted.
   */
  constructor(
    data?: Buffer | string | QSslCertificate,
    format: EncodingFormat = EncodingFormat.Pem,
  ) {
    if (data instanceof QSslCertificate) {
      this.x509 = data.x509;
    } else {
      this.x509 = data === undefined ? null : (parseAll(data, format, 1)[0] ?? null);
    }
  }

  /**
   * The certificates in the file at `filePath` (all of them for PEM). With
   * PatternSyntax.Wildcard (`*`, `?`) or RegularExpression, every file whose whole path
   * matches is read. A path that does not exist gives an empty list.
   */
  static fromPath(
    filePath: string,
    format: EncodingFormat = EncodingFormat.Pem,
    syntax: PatternSyntax = PatternSyntax.FixedString,
  ): QSslCertificate[] {
    let files: string[];
    if (syntax === PatternSyntax.FixedString) {
      files = [filePath];
    } else {
      // The part of the path before the first segment with a pattern is searched.
      const absolute = path.resolve(filePath);
      const segments = absolute.split(path.sep);
      const special = syntax === PatternSyntax.Wildcard ? /[*?[]/ : /[\\^$.|?*+()[\]{}]/;
      const firstPattern = segments.findIndex((s, i) => i > 0 && special.test(s));
      const base =
        firstPattern < 0 ? absolute : segments.slice(0, firstPattern).join(path.sep) || path.sep;
      let matcher: RegExp;
      try {
        matcher =
          syntax === PatternSyntax.Wildcard
            ? wildcardToRegExp(absolute)
            : new RegExp(`^(?:${filePath})$`);
      } catch {
        qWarning(`QSslCertificate::fromPath: invalid pattern "${filePath}"`);
        return [];
      }
      files = listFiles(base).filter((f) => matcher.test(f));
    }
    const out: QSslCertificate[] = [];
    for (const f of files) {
      if (!existsSync(f)) continue;
      try {
        if (!statSync(f).isFile()) continue;
        out.push(...QSslCertificate.fromData(readFileSync(f), format));
      } catch {
        // an unreadable file contributes nothing
      }
    }
    return out;
  }

  /** Every certificate in `data`: all PEM blocks, or concatenated DER certificates. */
  static fromData(
    data: Buffer | string,
    format: EncodingFormat = EncodingFormat.Pem,
  ): QSslCertificate[] {
    return parseAll(data, format).map((x) => QSslCertificate.fromX509(x));
  }

  /** Wraps a Node certificate. */
  static fromX509(x509: X509Certificate): QSslCertificate {
    const c = new QSslCertificate();
    c.x509 = x509;
    return c;
  }

  /** True for a null certificate (nothing parsed). */
  isNull(): boolean {
    return this.x509 === null;
  }

  /** Makes this a null certificate. */
  clear(): void {
    this.x509 = null;
    this.legacy = null;
  }

  /** Qt's `operator==`: the same DER encoding (two null certificates are equal). */
  isEqual(other: QSslCertificate): boolean {
    if (this.x509 === null || other.x509 === null) return this.x509 === other.x509;
    return this.x509.raw.equals(other.x509.raw);
  }

  /** The Node certificate behind this one (Qt's native `handle()`); null for a null one. */
  handle(): X509Certificate | null {
    return this.x509;
  }

  /** The X.509 version, as text ("3"); empty for a null certificate. */
  version(): Buffer {
    if (!this.x509) return Buffer.alloc(0);
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] EXPLICIT INTEGER, ... } };
    // without the [0] element the version is 1.
    const der = this.x509.raw;
    const tbs = headerLength(der, 0);
    const at = tbs + headerLength(der, tbs);
    let version = 1;
    if (der[at] === 0xa0) {
      const int = at + headerLength(der, at);
      if (der[int] === 0x02) version = der[int + 1 + der[int + 1]] + 1;
    }
    return Buffer.from(String(version), 'latin1');
  }

  /** The serial number as Qt prints it: lowercase hex bytes joined by ':'. */
  serialNumber(): Buffer {
    if (!this.x509) return Buffer.alloc(0);
    let hex = this.x509.serialNumber.toLowerCase();
    if (hex.length % 2) hex = `0${hex}`;
    return Buffer.from(hex.match(/../g)!.join(':'), 'latin1');
  }

  /** The digest of the DER encoding; `algorithm` is a Node hash name (Qt's default: MD5). */
  digest(algorithm = 'md5'): Buffer {
    if (!this.x509) return Buffer.alloc(0);
    return createHash(algorithm).update(this.x509.raw).digest();
  }

  /** The subject's values for `attribute`: a SubjectInfo or a short name ("CN", "O"...). */
  subjectInfo(attribute: SubjectInfo | string): string[] {
    return valuesOf(this.legacyObject()?.subject, attributeName(attribute));
  }

  /** The issuer's values for `attribute`: a SubjectInfo or a short name ("CN", "O"...). */
  issuerInfo(attribute: SubjectInfo | string): string[] {
    return valuesOf(this.legacyObject()?.issuer, attributeName(attribute));
  }

  /** The attribute names present in the subject ("CN", "O", ...). */
  subjectInfoAttributes(): string[] {
    return Object.keys(this.legacyObject()?.subject ?? {});
  }

  /** The attribute names present in the issuer. */
  issuerInfoAttributes(): string[] {
    return Object.keys(this.legacyObject()?.issuer ?? {});
  }

  /** A name for the subject: its CN, else OU, else O (Qt 5.12). */
  subjectDisplayName(): string {
    return displayName(this.legacyObject()?.subject);
  }

  /** A name for the issuer: its CN, else OU, else O (Qt 5.12). */
  issuerDisplayName(): string {
    return displayName(this.legacyObject()?.issuer);
  }

  /** The start of the validity period; an invalid Date for a null certificate. */
  effectiveDate(): Date {
    return new Date(this.x509 ? this.x509.validFrom : NaN);
  }

  /** The end of the validity period; an invalid Date for a null certificate. */
  expiryDate(): Date {
    return new Date(this.x509 ? this.x509.validTo : NaN);
  }

  /** True if the certificate names itself as its issuer (Qt: X509_check_issued on itself). */
  isSelfSigned(): boolean {
    return this.x509 !== null && this.x509.checkIssued(this.x509);
  }

  /** Always false: the port keeps no blacklist (Qt's lists a few compromised 2011 certificates). */
  isBlacklisted(): boolean {
    return false;
  }

  /**
   * The subject alternative names by kind (Qt's QMultiMap): DNS names, e-mail addresses
   * and IP addresses (as QHostAddress prints them).
   */
  subjectAlternativeNames(): Map<AlternativeNameEntryType, string[]> {
    const out = new Map<AlternativeNameEntryType, string[]>();
    const add = (kind: AlternativeNameEntryType, value: string): void => {
      const list = out.get(kind);
      if (list) list.push(value);
      else out.set(kind, [value]);
    };
    for (const [type, value] of parseAltNames(this.x509?.subjectAltName)) {
      if (type === 'DNS') add(AlternativeNameEntryType.DnsEntry, value);
      else if (type === 'email') add(AlternativeNameEntryType.EmailEntry, value);
      else if (type === 'IP Address') {
        const a = new QHostAddress(value);
        add(AlternativeNameEntryType.IpAddressEntry, a.isNull() ? value : a.toString());
      }
    }
    return out;
  }

  /** The certificate's public key; a null key for a null certificate. */
  publicKey(): QSslKey {
    return this.x509 ? QSslKey.fromKeyObject(this.x509.publicKey) : new QSslKey();
  }

  /** PEM encoding; empty for a null certificate. */
  toPem(): Buffer {
    if (!this.x509) return Buffer.alloc(0);
    const b64 = this.x509.raw.toString('base64').replace(/.{64}/g, '$&\n');
    return Buffer.from(
      `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`,
      'latin1',
    );
  }

  /** DER encoding; empty for a null certificate. */
  toDer(): Buffer {
    return this.x509 ? Buffer.from(this.x509.raw) : Buffer.alloc(0);
  }

  private legacyObject(): { subject?: NameObject; issuer?: NameObject } | null {
    if (!this.x509) return null;
    this.legacy ??= this.x509.toLegacyObject();
    return this.legacy as unknown as { subject?: NameObject; issuer?: NameObject };
  }
}

function headerLength(der: Buffer, offset: number): number {
  const first = der[offset + 1];
  return first < 0x80 ? 2 : 2 + (first & 0x7f);
}

function attributeName(attribute: SubjectInfo | string): string {
  return typeof attribute === 'string' ? attribute : ATTRIBUTE[attribute];
}

function displayName(name: NameObject | undefined): string {
  for (const attr of ['CN', 'OU', 'O']) {
    const v = valuesOf(name, attr);
    if (v.length > 0) return v[0];
  }
  return '';
}
