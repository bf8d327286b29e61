/**
 * A small reader of DER (the ASN.1 encoding of certificates, OCSP responses and OpenSSL's
 * saved sessions), for the few structures the port reads that Node does not parse: the
 * OCSP response a server staples and the ticket lifetime in a saved session.
 *
 * It decodes one element at a time, on demand, without recursion: a hostile input costs at
 * most a walk over its bytes. Anything that is not well-formed DER (indefinite lengths,
 * lengths past the end, trailing bytes where one element is expected) throws DerError.
 */

/** The input is not the DER the caller expected. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** Identifier classes. */
export const UNIVERSAL = 0;
export const CONTEXT = 2;

/** Universal tag numbers used by the port. */
export const Tag = {
  Boolean: 1,
  Integer: 2,
  BitString: 3,
  OctetString: 4,
  Null: 5,
  ObjectIdentifier: 6,
  Enumerated: 10,
  Sequence: 16,
  Set: 17,
  UtcTime: 23,
  GeneralizedTime: 24,
} as const;

/** One element: its identifier, its content octets and its whole encoding. */
export interface DerElement {
  /** 0 universal, 1 application, 2 context-specific, 3 private. */
  readonly cls: number;
  readonly constructed: boolean;
  readonly tag: number;
  readonly content: Buffer;
  /** Identifier, length and content: what a signature covers. */
  readonly raw: Buffer;
}

/** Tag numbers above this are refused (nothing the port reads uses them). */
const MAX_TAG = 0x1fffff;

/** Reads the element that starts at `offset`; returns it and the offset after it. */
function readAt(buf: Buffer, offset: number): { element: DerElement; next: number } {
  let pos = offset;
  const byte = (): number => {
    if (pos >= buf.length) throw new DerError('truncated element');
    return buf[pos++];
  };
  const first = byte();
  const cls = first >> 6;
  const constructed = (first & 0x20) !== 0;
  let tag = first & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    for (;;) {
      const b = byte();
      tag = tag * 128 + (b & 0x7f);
      if (tag > MAX_TAG) throw new DerError('tag number too large');
      if ((b & 0x80) === 0) break;
    }
  }
  let length = byte();
  if (length === 0x80) throw new DerError('indefinite length is not DER');
  if (length > 0x80) {
    const count = length & 0x7f;
    if (count > 4) throw new DerError('length too large');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + byte();
  }
  const end = pos + length;
  if (end > buf.length) throw new DerError('length past the end');
  return {
    element: {
      cls,
      constructed,
      tag,
      content: buf.subarray(pos, end),
      raw: buf.subarray(offset, end),
    },
    next: end,
  };
}

/** The single element that `buf` holds (trailing bytes are an error). */
export function parseDer(buf: Buffer): DerElement {
  const { element, next } = readAt(buf, 0);
  if (next !== buf.length) throw new DerError('trailing bytes after the element');
  return element;
}

/** The elements inside a constructed element (a SEQUENCE, a SET, an explicit tag). */
export function childrenOf(e: DerElement): DerElement[] {
  if (!e.constructed) throw new DerError('not a constructed element');
  const out: DerElement[] = [];
  for (let pos = 0; pos < e.content.length;) {
    const { element, next } = readAt(e.content, pos);
    out.push(element);
    pos = next;
  }
  return out;
}

/** True if `e` has class `cls` (UNIVERSAL, CONTEXT...) and tag number `tag`. */
export function isTagged(e: DerElement | undefined, cls: number, tag: number): boolean {
  return e !== undefined && e.cls === cls && e.tag === tag;
}

/** `e`, checked to be the universal element `tag`. */
export function expectUniversal(e: DerElement | undefined, tag: number): DerElement {
  if (e === undefined || e.cls !== UNIVERSAL || e.tag !== tag) {
    throw new DerError(`expected universal tag ${tag}`);
  }
  return e;
}

/** The children of `e`, checked to be a SEQUENCE. */
export function sequence(e: DerElement | undefined): DerElement[] {
  return childrenOf(expectUniversal(e, Tag.Sequence));
}

/** The one element inside an explicit context tag `[tag]`. */
export function explicit(e: DerElement, tag: number): DerElement {
  if (!isTagged(e, CONTEXT, tag) || !e.constructed) {
    throw new DerError(`expected explicit tag [${tag}]`);
  }
  const inner = childrenOf(e);
  if (inner.length !== 1) throw new DerError(`[${tag}] must hold one element`);
  return inner[0];
}

/** An OBJECT IDENTIFIER in dotted form. */
export function oidOf(e: DerElement | undefined): string {
  const c = expectUniversal(e, Tag.ObjectIdentifier).content;
  if (c.length === 0 || (c[c.length - 1] & 0x80) !== 0) throw new DerError('bad object identifier');
  const arcs: number[] = [];
  let value = 0;
  for (const b of c) {
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128)
      throw new DerError('object identifier arc too large');
    if ((b & 0x80) !== 0) continue;
    if (arcs.length === 0) {
      const top = value < 40 ? 0 : value < 80 ? 1 : 2;
      arcs.push(top, value - top * 40);
    } else {
      arcs.push(value);
    }
    value = 0;
  }
  return arcs.join('.');
}

/** The value of a small INTEGER or ENUMERATED (up to 48 bits, sign included). */
export function smallIntegerOf(e: DerElement | undefined, tag: number = Tag.Integer): number {
  const c = expectUniversal(e, tag).content;
  if (c.length === 0 || c.length > 6) throw new DerError('integer empty or too large');
  return c.readIntBE(0, c.length);
}

/** The content octets of an INTEGER (two's complement, as encoded). */
export function integerBytesOf(e: DerElement | undefined): Buffer {
  const c = expectUniversal(e, Tag.Integer).content;
  if (c.length === 0) throw new DerError('empty integer');
  return c;
}

/** The bits of a BIT STRING whose length is a whole number of bytes. */
export function bitStringOf(e: DerElement | undefined): Buffer {
  const c = expectUniversal(e, Tag.BitString).content;
  if (c.length === 0 || c[0] !== 0) throw new DerError('bit string with unused bits');
  return c.subarray(1);
}

/** The content of an OCTET STRING. */
export function octetsOf(e: DerElement | undefined): Buffer {
  return expectUniversal(e, Tag.OctetString).content;
}

const GENERALIZED = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?Z$/;
const UTC = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** A GeneralizedTime (or UTCTime), in UTC as DER requires. */
export function timeOf(e: DerElement | undefined): Date {
  if (e === undefined || e.cls !== UNIVERSAL) throw new DerError('expected a time');
  const text = e.content.toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (e.tag === Tag.GeneralizedTime && (m = GENERALIZED.exec(text))) {
    year = Number(m[1]);
  } else if (e.tag === Tag.UtcTime && (m = UTC.exec(text))) {
    const yy = Number(m[1]);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
  } else {
    throw new DerError('bad time');
  }
  const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
  const t = Date.UTC(
    year,
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
    ms,
  );
  if (Number.isNaN(t)) throw new DerError('bad time');
  return new Date(t);
}
