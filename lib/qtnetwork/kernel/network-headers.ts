import { qWarning } from '../core/qlogging.js';

/**
 * `QNetworkRequest::KnownHeaders`, with Qt's values. The port has no QNetworkRequest; the
 * enum is here for `QNetworkProxy.header`/`setHeader` (and reachable as
 * `QNetworkProxy.KnownHeaders`).
 */
export enum KnownHeaders {
  ContentTypeHeader = 0,
  ContentLengthHeader = 1,
  LocationHeader = 2,
  LastModifiedHeader = 3,
  CookieHeader = 4,
  SetCookieHeader = 5,
  ContentDispositionHeader = 6,
  UserAgentHeader = 7,
  ServerHeader = 8,
  IfModifiedSinceHeader = 9,
  ETagHeader = 10,
  IfMatchHeader = 11,
  IfNoneMatchHeader = 12,
}

/**
 * A value for `setHeader` (Qt takes a QVariant): a string (sent as UTF-8), a number, a
 * boolean ("true"/"false"), a `Date` (QDateTime: Last-Modified and If-Modified-Since only,
 * sent as an HTTP date) or a `URL` (QUrl: Location only). `null` removes the header.
 */
export type HeaderValue = string | number | boolean | Date | URL;

/**
 * What `header` answers: the value given to `setHeader` as it was given, or the raw header
 * parsed as Qt parses it: a string for Content-Type, Content-Disposition, User-Agent, Server
 * and ETag; a number for Content-Length; a `URL` for Location; a `Date` for the two dates;
 * a string array for If-Match and If-None-Match. `null` when absent or unparseable.
 */
export type ParsedHeaderValue = HeaderValue | string[];

/** The name Qt writes for each known header. */
const NAMES: Readonly<Record<KnownHeaders, string>> = {
  [KnownHeaders.ContentTypeHeader]: 'Content-Type',
  [KnownHeaders.ContentLengthHeader]: 'Content-Length',
  [KnownHeaders.LocationHeader]: 'Location',
  [KnownHeaders.LastModifiedHeader]: 'Last-Modified',
  [KnownHeaders.CookieHeader]: 'Cookie',
  [KnownHeaders.SetCookieHeader]: 'Set-Cookie',
  [KnownHeaders.ContentDispositionHeader]: 'Content-Disposition',
  [KnownHeaders.UserAgentHeader]: 'User-Agent',
  [KnownHeaders.ServerHeader]: 'Server',
  [KnownHeaders.IfModifiedSinceHeader]: 'If-Modified-Since',
  [KnownHeaders.ETagHeader]: 'ETag',
  [KnownHeaders.IfMatchHeader]: 'If-Match',
  [KnownHeaders.IfNoneMatchHeader]: 'If-None-Match',
};

const BY_LOWER_NAME = new Map<string, KnownHeaders>(
  Object.entries(NAMES).map(([k, name]) => [name.toLowerCase(), Number(k) as KnownHeaders]),
);

/** Header names compare as Qt compares them: ASCII letters without regard to case. */
function sameName(a: Buffer, b: Buffer): boolean {
  return (
    a.length === b.length &&
    a.toString('latin1').toLowerCase() === b.toString('latin1').toLowerCase()
  );
}

/** Bytes from a string (UTF-8, as a C++ string literal) or a Buffer (copied). */
function bytes(data: Buffer | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
}

/** Qt's name of the QVariant type a value would have, for its warning. */
function variantTypeName(value: HeaderValue): string {
  if (typeof value === 'string') return 'QString';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return 'double';
    return value >= -0x80000000 && value <= 0x7fffffff ? 'int' : 'qlonglong';
  }
  return value instanceof Date ? 'QDateTime' : 'QUrl';
}

/** A copy of a value, so that neither the caller nor the headers share a mutable object. */
function copyValue<T extends ParsedHeaderValue>(value: T): T {
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (value instanceof URL) return new URL(value.href) as T;
  if (Array.isArray(value)) return [...value] as T;
  return value;
}

/** QVariant::toByteArray for the types that have it; null for the ones that do not. */
function plainBytes(value: HeaderValue): Buffer | null {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (typeof value === 'number') return Buffer.from(String(value), 'latin1');
  if (typeof value === 'boolean') return Buffer.from(value ? 'true' : 'false', 'latin1');
  return null;
}

/** An HTTP date in the preferred form (RFC 9110 IMF-fixdate), as Qt writes it. */
function toHttpDate(date: Date): string {
  return Number.isNaN(date.getTime()) ? '' : date.toUTCString();
}

/** The raw bytes Qt writes for `value` as `header`; null when Qt cannot use that type there. */
function rawValueOf(header: KnownHeaders, value: HeaderValue): Buffer | null {
  switch (header) {
    case KnownHeaders.CookieHeader:
    case KnownHeaders.SetCookieHeader:
      // Qt takes QNetworkCookie values only; the port has no QNetworkCookie.
      return null;
    case KnownHeaders.LocationHeader:
      return value instanceof URL ? Buffer.from(value.href, 'latin1') : plainBytes(value);
    case KnownHeaders.LastModifiedHeader:
    case KnownHeaders.IfModifiedSinceHeader:
      return value instanceof Date ? Buffer.from(toHttpDate(value), 'latin1') : plainBytes(value);
    default:
      return plainBytes(value);
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{1,2}):(\\d{2}):(\\d{2})';
/** RFC 1123: "Sun, 06 Nov 1994 08:49:37 GMT". */
const RFC1123 = new RegExp(`^[A-Za-z]{3}, (\\d{1,2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
/** RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" (years 1900 + yy, as Qt reads them). */
const RFC850 = new RegExp(`^[A-Za-z]{4,}, (\\d{1,2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
/** asctime: "Sun Nov  6 08:49:37 1994". */
const ASCTIME = new RegExp(`^[A-Za-z]{3} +${MONTH} +(\\d{1,2}) +${TIME} +(\\d{4})$`);

/** A UTC date from its parts, or null if there is no such date or time. */
function utcDate(
  y: number,
  month: string,
  d: number,
  h: number,
  m: number,
  s: number,
): Date | null {
  const mon = MONTHS.indexOf(month);
  if (h > 23 || m > 59 || s > 59) return null;
  const date = new Date(Date.UTC(y, mon, d, h, m, s));
  date.setUTCFullYear(y);
  return date.getUTCMonth() === mon && date.getUTCDate() === d ? date : null;
}

/**
 * An HTTP date in one of its three forms (RFC 9110 §5.6.7), or null. Qt's parser is looser
 * (it also takes "UTC" for "GMT", for instance); the port reads exactly these forms.
 */
export function parseHttpDate(text: string): Date | null {
  let m = RFC1123.exec(text);
  if (m) return utcDate(+m[3], m[2], +m[1], +m[4], +m[5], +m[6]);
  m = RFC850.exec(text);
  if (m) return utcDate(1900 + +m[3], m[2], +m[1], +m[4], +m[5], +m[6]);
  m = ASCTIME.exec(text);
  if (m) return utcDate(+m[6], m[1], +m[2], +m[3], +m[4], +m[5]);
  return null;
}

/** Qt's QByteArray::trimmed: ASCII white space off both ends. */
function trimmed(text: string): string {
  return text.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** The entity tags of an If-Match (strong only) or If-None-Match (weak too) list. */
function parseTagList(text: string, weakToo: boolean): string[] {
  const all = trimmed(text);
  if (all === '*') return ['*'];
  return all
    .split(',')
    .map(trimmed)
    .filter(
      (tag) => (tag.startsWith('"') || (weakToo && tag.startsWith('W/"'))) && tag.endsWith('"'),
    );
}

/** A raw header's value as Qt parses it for `header`; null when it does not parse. */
function parseRawValue(header: KnownHeaders, raw: Buffer): ParsedHeaderValue | null {
  const text = raw.toString('latin1');
  switch (header) {
    case KnownHeaders.ContentTypeHeader:
    case KnownHeaders.ContentDispositionHeader:
    case KnownHeaders.UserAgentHeader:
    case KnownHeaders.ServerHeader:
      return text;
    case KnownHeaders.ContentLengthHeader: {
      const digits = trimmed(text);
      if (!/^[+-]?\d+$/.test(digits)) return null;
      const n = BigInt(digits);
      return n < INT64_MIN || n > INT64_MAX ? null : Number(n);
    }
    case KnownHeaders.LocationHeader:
      // Qt wants an absolute URL (with a scheme); a WHATWG URL always has one.
      return URL.canParse(text) ? new URL(text) : null;
    case KnownHeaders.LastModifiedHeader:
    case KnownHeaders.IfModifiedSinceHeader:
      return parseHttpDate(text);
    case KnownHeaders.ETagHeader: {
      const tag = trimmed(text);
      return (tag.startsWith('"') || tag.startsWith('W/"')) && tag.endsWith('"') ? tag : null;
    }
    case KnownHeaders.IfMatchHeader:
      return parseTagList(text, false);
    case KnownHeaders.IfNoneMatchHeader:
      return parseTagList(text, true);
    default:
      // Cookie and Set-Cookie parse to QNetworkCookie lists in Qt; the port has none.
      return null;
  }
}

/**
 * The raw and the known ("cooked") headers of a request or proxy, kept together as Qt's
 * QNetworkHeadersPrivate keeps them: setting one sets the other.
 *
 * - Raw headers keep their order; setting a name that is there (in any case) removes the old
 *   entry and appends the new one, with the new spelling.
 * - `setRawHeader` of a known header also parses it for `header()`; an unparseable value
 *   reads as null. As in Qt, a Content-Length that is known already keeps its parsed value.
 * - `setHeader` stores the value as given (returned by `header()` as is) and writes its raw
 *   form; a type Qt cannot use for that header gives Qt's warning and changes nothing.
 */
export class NetworkHeaders {
  private raw: Array<[name: Buffer, value: Buffer]> = [];
  /** The known headers; null is Qt's invalid QVariant (set, but not parseable). */
  private cooked = new Map<KnownHeaders, ParsedHeaderValue | null>();

  /** A deep copy. */
  clone(): NetworkHeaders {
    const copy = new NetworkHeaders();
    copy.raw = this.raw.map(([n, v]) => [Buffer.from(n), Buffer.from(v)]);
    for (const [k, v] of this.cooked) copy.cooked.set(k, v === null ? null : copyValue(v));
    return copy;
  }

  hasRawHeader(name: Buffer | string): boolean {
    const key = bytes(name);
    return this.raw.some(([n]) => sameName(n, key));
  }

  /** The value of the first raw header called `name`; empty when there is none. */
  rawHeader(name: Buffer | string): Buffer {
    const key = bytes(name);
    const found = this.raw.find(([n]) => sameName(n, key));
    return found ? Buffer.from(found[1]) : Buffer.alloc(0);
  }

  rawHeaderList(): Buffer[] {
    return this.raw.map(([n]) => Buffer.from(n));
  }

  /** The raw headers as name/value pairs, in order (copies). */
  rawHeaderPairs(): Array<[name: Buffer, value: Buffer]> {
    return this.raw.map(([n, v]) => [Buffer.from(n), Buffer.from(v)]);
  }

  /** Sets (or, with null, removes) a raw header; an empty name is ignored, as in Qt. */
  setRawHeader(name: Buffer | string, value: Buffer | string | null): void {
    const key = bytes(name);
    if (key.length === 0) return;
    const data = value === null ? null : bytes(value);
    this.replaceRaw(key, data);
    const known = BY_LOWER_NAME.get(key.toString('latin1').toLowerCase());
    if (known === undefined) return;
    if (data === null) {
      this.cooked.delete(known);
    } else if (known === KnownHeaders.ContentLengthHeader && this.cooked.has(known)) {
      // Qt parses Content-Length only once (QTBUG-15311).
    } else {
      this.cooked.set(known, parseRawValue(known, data));
    }
  }

  header(header: KnownHeaders): ParsedHeaderValue | null {
    const value = this.cooked.get(header);
    return value === undefined || value === null ? null : copyValue(value);
  }

  setHeader(header: KnownHeaders, value: HeaderValue | null): void {
    const name = NAMES[header] as string | undefined;
    if (name === undefined) {
      qWarning(`QNetworkRequest::setHeader: invalid header value KnownHeader(${header}) received`);
      return;
    }
    const key = Buffer.from(name, 'latin1');
    if (value === null) {
      this.replaceRaw(key, null);
      this.cooked.delete(header);
      return;
    }
    const raw = rawValueOf(header, value);
    if (raw === null || raw.length === 0) {
      qWarning(
        `QNetworkRequest::setHeader: QVariant of type ${variantTypeName(value)} cannot be used with header ${name}`,
      );
      return;
    }
    this.replaceRaw(key, raw);
    this.cooked.set(header, copyValue(value));
  }

  private replaceRaw(name: Buffer, value: Buffer | null): void {
    this.raw = this.raw.filter(([n]) => !sameName(n, name));
    if (value !== null) this.raw.push([name, value]);
  }
}
