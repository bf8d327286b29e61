import { NetworkLayerProtocol } from './socket-enums.js';

/** `QHostAddress::SpecialAddress`, with Qt's values. */
export enum SpecialAddress {
  Null = 0,
  Broadcast = 1,
  LocalHost = 2,
  LocalHostIPv6 = 3,
  Any = 4,
  AnyIPv6 = 5,
  AnyIPv4 = 6,
}

/** `QHostAddress::ConversionModeFlag`: what `isEqual` treats as the same address. */
export enum ConversionModeFlag {
  StrictConversion = 0,
  ConvertV4MappedToIPv4 = 1,
  ConvertV4CompatToIPv4 = 2,
  ConvertUnspecifiedAddress = 4,
  ConvertLocalHost = 8,
  TolerantConversion = 0xff,
}

const LOOPBACK_V4 = 0x7f000001;

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
function parseIPv4(text: string): number | null {
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
function parseEmbeddedIPv4(text: string): number | null {
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

function parseIPv6(text: string): Uint8Array | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const words = (half: string): number[] | null => {
    if (half === '') return [];
    const out: number[] = [];
    const groups = half.split(':');
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i];
      if (i === groups.length - 1 && group.includes('.')) {
        const v4 = parseEmbeddedIPv4(group);
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

function formatIPv4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** Qt's IPv6 text form: lower-case hex, the longest run (two or more) of zero words as "::". */
function formatIPv6(b: Uint8Array): string {
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

function isAllZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

/**
 * An IPv4 or IPv6 address, as Qt's QHostAddress: parsed with Qt's rules (inet_aton forms
 * for IPv4, scope ids for IPv6), printed in Qt's canonical text, compared with Qt's
 * conversion modes. It holds addresses only, never host names.
 */
export class QHostAddress {
  static readonly SpecialAddress = SpecialAddress;
  static readonly ConversionModeFlag = ConversionModeFlag;

  private proto: NetworkLayerProtocol = NetworkLayerProtocol.UnknownNetworkLayerProtocol;
  private v4 = 0;
  private v6: Uint8Array = new Uint8Array(16);
  private scope = '';

  /** A null address, the address in `text` (null if it does not parse), a special address, or a copy. */
  constructor(address?: string | SpecialAddress | QHostAddress) {
    if (address instanceof QHostAddress) {
      this.proto = address.proto;
      this.v4 = address.v4;
      this.v6 = new Uint8Array(address.v6);
      this.scope = address.scope;
    } else if (typeof address === 'string') {
      this.setAddress(address);
    } else if (typeof address === 'number') {
      this.setSpecial(address);
    }
  }

  /**
   * Parses `address` (surrounding white space is ignored, as in Qt). Returns false, and
   * leaves the address null, if it is not an IPv4 or IPv6 address.
   */
  setAddress(address: string | SpecialAddress): boolean {
    this.clear();
    if (typeof address === 'number') {
      this.setSpecial(address);
      return true;
    }
    const text = address.trim();
    if (text.includes(':')) {
      const percent = text.indexOf('%');
      if (percent >= 0 && text.indexOf('%', percent + 1) >= 0) return false;
      const bytes = parseIPv6(percent >= 0 ? text.slice(0, percent) : text);
      if (!bytes) return false;
      this.proto = NetworkLayerProtocol.IPv6Protocol;
      this.v6 = bytes;
      this.scope = percent >= 0 ? text.slice(percent + 1) : '';
      return true;
    }
    const v4 = text === '' ? null : parseIPv4(text);
    if (v4 === null) return false;
    this.proto = NetworkLayerProtocol.IPv4Protocol;
    this.v4 = v4;
    return true;
  }

  /** Makes this the null address. */
  clear(): void {
    this.proto = NetworkLayerProtocol.UnknownNetworkLayerProtocol;
    this.v4 = 0;
    this.v6 = new Uint8Array(16);
    this.scope = '';
  }

  /** IPv4Protocol, IPv6Protocol, AnyIPProtocol (the dual-stack Any) or UnknownNetworkLayerProtocol (null). */
  protocol(): NetworkLayerProtocol {
    return this.proto;
  }

  /** True for the null address (the default, or a failed parse). */
  isNull(): boolean {
    return this.proto === NetworkLayerProtocol.UnknownNetworkLayerProtocol;
  }

  /** True for 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8. */
  isLoopback(): boolean {
    const v4 = this.asIPv4(ConversionModeFlag.ConvertV4MappedToIPv4);
    if (v4 !== null) return v4 >>> 24 === 127;
    if (this.proto === NetworkLayerProtocol.IPv6Protocol) {
      return this.v6.subarray(0, 15).every((x) => x === 0) && this.v6[15] === 1;
    }
    return false;
  }

  /** True for 224.0.0.0/4 and ff00::/8. */
  isMulticast(): boolean {
    const v4 = this.asIPv4(ConversionModeFlag.ConvertV4MappedToIPv4);
    if (v4 !== null) return v4 >>> 28 === 0xe;
    return this.proto === NetworkLayerProtocol.IPv6Protocol && this.v6[0] === 0xff;
  }

  /** True for 169.254.0.0/16 and fe80::/10. */
  isLinkLocal(): boolean {
    const v4 = this.asIPv4(ConversionModeFlag.ConvertV4MappedToIPv4);
    if (v4 !== null) return v4 >>> 16 === 0xa9fe;
    return (
      this.proto === NetworkLayerProtocol.IPv6Protocol &&
      this.v6[0] === 0xfe &&
      (this.v6[1] & 0xc0) === 0x80
    );
  }

  /** True for 255.255.255.255 (also IPv4-mapped). */
  isBroadcast(): boolean {
    return this.asIPv4(ConversionModeFlag.ConvertV4MappedToIPv4) === 0xffffffff;
  }

  /** The IPv4 address as a 32-bit number (IPv4-mapped IPv6 converts); 0 when not IPv4. */
  toIPv4Address(): number {
    return (
      this.asIPv4(
        ConversionModeFlag.ConvertV4MappedToIPv4 | ConversionModeFlag.ConvertUnspecifiedAddress,
      ) ?? 0
    );
  }

  /** The 16 bytes of the IPv6 form (IPv4 addresses are returned IPv4-mapped; 0.0.0.0 as "::"). */
  toIPv6Address(): Uint8Array {
    if (this.proto === NetworkLayerProtocol.IPv4Protocol && this.v4 !== 0) {
      const b = new Uint8Array(16);
      b[10] = 0xff;
      b[11] = 0xff;
      b[12] = this.v4 >>> 24;
      b[13] = (this.v4 >>> 16) & 0xff;
      b[14] = (this.v4 >>> 8) & 0xff;
      b[15] = this.v4 & 0xff;
      return b;
    }
    return new Uint8Array(this.v6);
  }

  /** The IPv6 scope id (zone), e.g. `'eth0'`; empty for IPv4 and unscoped addresses. */
  scopeId(): string {
    return this.scope;
  }

  /** Sets the IPv6 scope id; ignored for other protocols, as in Qt. */
  setScopeId(id: string): void {
    if (this.proto === NetworkLayerProtocol.IPv6Protocol) this.scope = id;
  }

  /** Qt's text form ("127.0.0.1", "::1", "fe80::1%eth0"); "" for null; "0.0.0.0" for Any. */
  toString(): string {
    switch (this.proto) {
      case NetworkLayerProtocol.IPv4Protocol:
      case NetworkLayerProtocol.AnyIPProtocol:
        return formatIPv4(this.v4);
      case NetworkLayerProtocol.IPv6Protocol:
        return formatIPv6(this.v6) + (this.scope ? `%${this.scope}` : '');
      default:
        return '';
    }
  }

  /**
   * Compares with Qt's conversion rules. The default, TolerantConversion, treats
   * "::ffff:1.2.3.4" as 1.2.3.4, "::1" as 127.0.0.1 and Any as either unspecified address.
   * Scope ids are not compared (as in Qt).
   */
  isEqual(
    other: QHostAddress | SpecialAddress,
    mode: number = ConversionModeFlag.TolerantConversion,
  ): boolean {
    const o = other instanceof QHostAddress ? other : new QHostAddress(other);
    const P = NetworkLayerProtocol;
    const unspecified = (mode & ConversionModeFlag.ConvertUnspecifiedAddress) !== 0;
    if (this.proto === P.IPv4Protocol || o.proto === P.IPv4Protocol) {
      const [v4side, otherSide] = this.proto === P.IPv4Protocol ? [this, o] : [o, this];
      switch (otherSide.proto) {
        case P.IPv4Protocol:
          return v4side.v4 === otherSide.v4;
        case P.IPv6Protocol:
          return otherSide.convertV6ToIPv4(mode) === v4side.v4;
        case P.AnyIPProtocol:
          return unspecified && v4side.v4 === 0;
        default:
          return false;
      }
    }
    if (this.proto === P.IPv6Protocol && o.proto === P.IPv6Protocol) {
      return this.v6.every((x, i) => x === o.v6[i]);
    }
    if (this.proto === P.IPv6Protocol || o.proto === P.IPv6Protocol) {
      const v6side = this.proto === P.IPv6Protocol ? this : o;
      const otherSide = v6side === this ? o : this;
      return (
        otherSide.proto === P.AnyIPProtocol &&
        unspecified &&
        (isAllZero(v6side.v6) || v6side.convertV6ToIPv4(mode) === 0)
      );
    }
    return this.proto === o.proto;
  }

  /** The address Node's `net` functions take (the text form, scope id included). */
  toNodeAddress(): string {
    return this.proto === NetworkLayerProtocol.AnyIPProtocol ? '::' : this.toString();
  }

  private setSpecial(special: SpecialAddress): void {
    this.clear();
    const P = NetworkLayerProtocol;
    switch (special) {
      case SpecialAddress.Broadcast:
        this.proto = P.IPv4Protocol;
        this.v4 = 0xffffffff;
        break;
      case SpecialAddress.LocalHost:
        this.proto = P.IPv4Protocol;
        this.v4 = LOOPBACK_V4;
        break;
      case SpecialAddress.LocalHostIPv6:
        this.proto = P.IPv6Protocol;
        this.v6[15] = 1;
        break;
      case SpecialAddress.Any:
        this.proto = P.AnyIPProtocol;
        break;
      case SpecialAddress.AnyIPv6:
        this.proto = P.IPv6Protocol;
        break;
      case SpecialAddress.AnyIPv4:
        this.proto = P.IPv4Protocol;
        break;
      default:
        break;
    }
  }

  /**
   * The IPv4 address this IPv6 address stands for under `mode`, or null. "::" and "::1"
   * are not IPv4-compatible addresses: they convert only as the unspecified address and
   * as localhost, with their own flags (as in Qt).
   */
  private convertV6ToIPv4(mode: number): number | null {
    const b = this.v6;
    if (!b.subarray(0, 8).every((x) => x === 0)) return null;
    const mid = ((b[8] << 24) | (b[9] << 16) | (b[10] << 8) | b[11]) >>> 0;
    const low = ((b[12] << 24) | (b[13] << 16) | (b[14] << 8) | b[15]) >>> 0;
    if (mid === 0xffff) return mode & ConversionModeFlag.ConvertV4MappedToIPv4 ? low : null;
    if (mid !== 0) return null;
    if (low === 1) return mode & ConversionModeFlag.ConvertLocalHost ? LOOPBACK_V4 : null;
    if (low === 0) {
      const flags =
        ConversionModeFlag.ConvertUnspecifiedAddress | ConversionModeFlag.ConvertV4CompatToIPv4;
      return mode & flags ? 0 : null;
    }
    return mode & ConversionModeFlag.ConvertV4CompatToIPv4 ? low : null;
  }

  private asIPv4(mode: number): number | null {
    switch (this.proto) {
      case NetworkLayerProtocol.IPv4Protocol:
        return this.v4;
      case NetworkLayerProtocol.IPv6Protocol:
        return this.convertV6ToIPv4(mode);
      case NetworkLayerProtocol.AnyIPProtocol:
        return mode & ConversionModeFlag.ConvertUnspecifiedAddress ? 0 : null;
      default:
        return null;
    }
  }
}
