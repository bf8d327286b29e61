/**
 * The text and bit helpers behind QHostAddress (Qt keeps them in QIPAddressUtils and
 * QNetmask): Qt's IPv4 and IPv6 parsers and printers, QString::simplified() and
 * QString::toUInt() as Qt 6 defines them, and netmask arithmetic on 16-byte addresses.
 */

/** The characters QChar::isSpace() accepts, which QString::simplified() removes. */
const QT_SPACE_RUN = /[\t\n\v\f\r \x85\p{Zs}\p{Zl}\p{Zp}]+/gu;

/**
 * QString::simplified(): white space trimmed from both ends and each inner run of it made
 * one space. Unlike String.prototype.trim, U+FEFF is kept and U+0085 removed, as in Qt.
 */
export function simplified(text: string): string {
  return text.replace(QT_SPACE_RUN, ' ').replace(/^ | $/g, '');
}

/**
 * Qt 6's QString::toUInt() in base 10: ASCII white space around the number, an optional
 * '+', then decimal digits, at most 4294967295. Null when the text is not such a number.
 */
export function toUInt(text: string): number | null {
  const match = /^[\t\n\v\f\r ]*\+?([0-9]+)[\t\n\v\f\r ]*$/.exec(text);
  if (!match) return null;
  const digits = match[1].replace(/^0+(?=.)/, '');
  if (digits.length > 10) return null;
  const value = Number(digits);
  return value <= 0xffffffff ? value : null;
}

/**
 * Parses one IPv4 number the way C's strtoull does with base 0 (which Qt uses):
 * `0x` prefix is hex, a leading `0` is octal, anything else decimal.
 */
function parseIp4Number(text: string): number | null {
  let base = 10;
  let digits = text;
  if (/^0[xX]/.test(text)) {
    base = 16;
    digits = text.slice(2);
  } else if (text.length > 1 && text[0] === '0') {
    base = 8;
    digits = text.slice(1);
  }
  const valid = base === 16 ? /^[0-9a-fA-F]+$/ : base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) return null;
  const value = parseInt(digits, base);
  return Number.isSafeInteger(value) ? value : null;
}

/**
 * Qt's IPv4 parser (inet_aton rules): "a.b.c.d", "a.b.c" (c is 16 bits), "a.b" (b is 24
 * bits) and "a" (32 bits), each part decimal, octal or hex.
 */
export function parseIp4(text: string): number | null {
  if (text === '') return null;
  const parts = text.split('.');
  if (parts.length > 4) return null;
  let address = 0;
  for (let i = 0; i < parts.length; i++) {
    const value = parseIp4Number(parts[i]);
    if (value === null) return null;
    const last = i === parts.length - 1;
    // The last part fills all the bytes that remain.
    const bits = last ? 8 * (4 - i) : 8;
    if (value >= 2 ** bits) return null;
    address = address * 2 ** bits + value;
  }
  return address >>> 0;
}

/** Strict dotted quad, no leading zeros: the only IPv4 form allowed inside IPv6. */
function parseEmbeddedIp4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let address = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    address = address * 256 + value;
  }
  return address >>> 0;
}

/** Qt's IPv6 parser (no scope id: the caller splits it off). */
export function parseIp6(text: string): Uint8Array | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const words = (half: string): number[] | null => {
    if (half === '') return [];
    const out: number[] = [];
    const groups = half.split(':');
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i];
      if (i === groups.length - 1 && group.includes('.')) {
        const v4 = parseEmbeddedIp4(group);
        if (v4 === null) return null;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
        out.push(parseInt(group, 16));
      }
    }
    return out;
  };
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  if (head === null || tail === null) return null;
  // An embedded IPv4 address may only end the address.
  if (halves.length === 2 && halves[0].includes('.')) return null;
  const count = head.length + tail.length;
  if (halves.length === 1 ? count !== 8 : count > 7) return null;
  const all = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return bytes;
}

export function formatIp4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** Qt's IPv6 text form: lower-case hex, the longest run (two or more) of zero words as "::". */
export function formatIp6(b: Uint8Array): string {
  const zero10 = b.subarray(0, 10).every((x) => x === 0);
  let embeddedIp4 = false;
  if (zero10) {
    if (b[10] === 0xff && b[11] === 0xff) {
      embeddedIp4 = true;
    } else if (b[10] === 0 && b[11] === 0) {
      if (b[12] !== 0 || b[13] !== 0 || b[14] !== 0) embeddedIp4 = true;
      else if (b[15] === 0) return '::';
    }
  }
  let runLength = 0;
  let runOffset = -1;
  for (let i = 0; i < 16; i += 2) {
    if (b[i] === 0 && b[i + 1] === 0) {
      let j = i;
      while (j < 16 && b[j] === 0 && b[j + 1] === 0) j += 2;
      if (j - i > runLength) {
        runLength = j - i;
        runOffset = i;
      }
      i = j;
    }
  }
  if (runLength < 4) runOffset = -1;
  let out = runOffset === 0 ? ':' : '';
  for (let i = 0; i < 16; i += 2) {
    if (i === runOffset) {
      out += ':';
      i += runLength - 2;
      continue;
    }
    if (i === 12 && embeddedIp4) {
      return out + `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
    }
    out += ((b[i] << 8) | b[i + 1]).toString(16);
    if (i !== 14) out += ':';
  }
  return out;
}

/** An IPv4 address as its four bytes, most significant first. */
export function ip4Bytes(a: number): Uint8Array {
  return Uint8Array.of(a >>> 24, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff);
}

/** The number of leading one bits of a byte that is ones-then-zeros (255, 254, ... 0), else -1. */
function leadingOnes(byte: number): number {
  for (let n = 0; n <= 8; n++) if (byte === ((0xff00 >> n) & 0xff)) return n;
  return -1;
}

/**
 * The prefix length a netmask written as an address stands for (255.255.255.0 is 24), or
 * -1 when its bits are not ones followed by zeros (QNetmask::setAddress).
 */
export function netmaskPrefixLength(bytes: Uint8Array): number {
  let length = 0;
  let i = 0;
  while (i < bytes.length && bytes[i] === 0xff) {
    length += 8;
    i++;
  }
  if (i === bytes.length) return length;
  const ones = leadingOnes(bytes[i]);
  if (ones < 0) return -1;
  for (let j = i + 1; j < bytes.length; j++) if (bytes[j] !== 0) return -1;
  return length + ones;
}

/** Sets to zero every bit of `bytes` from bit `start` on (bit 0 is the top bit of byte 0). */
export function clearBitsFrom(bytes: Uint8Array, start: number): void {
  for (let bit = start; bit < bytes.length * 8; bit++) {
    bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  }
}

/** True when the first `prefix` bits of `a` and `b` are equal. */
export function samePrefix(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return (a[whole] & mask) === (b[whole] & mask);
}
