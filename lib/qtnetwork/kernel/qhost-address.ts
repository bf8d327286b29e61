import {
  clearBitsFrom,
  formatIp4,
  formatIp6,
  ip4Bytes,
  netmaskPrefixLength,
  parseIp4,
  parseIp6,
  samePrefix,
  simplified,
  toUInt,
} from './ip-address-utils.js';
import { NetworkLayerProtocol } from './socket-enums.js';

/**
 * `QHostAddress::SpecialAddress`, with Qt's values. Being a TypeScript enum, each value is a
 * plain number at run time; see `QHostAddress`'s constructor for how numbers are read.
 */
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

/** `QHostAddress::ConversionMode`: ConversionModeFlag values combined with `|`. */
export type ConversionMode = number;

/**
 * Qt's private address classification. The kinds from GlobalAddress on share its bit, so
 * private-network, unique-local and site-local addresses are global too (as Qt documents).
 */
enum AddressClass {
  Unknown = 0,
  Loopback = 1,
  LocalNet = 2,
  LinkLocal = 3,
  Multicast = 4,
  Broadcast = 5,
  Global = 16,
  PrivateNetwork = 18,
  UniqueLocal = 19,
  SiteLocal = 20,
}

const P = NetworkLayerProtocol;
const LOOPBACK_V4 = 0x7f000001;
const BROADCAST_V4 = 0xffffffff;
/** Numbers up to this one are read as SpecialAddress values, larger ones as IPv4 addresses. */
const LAST_SPECIAL = SpecialAddress.AnyIPv4;

function word32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/**
 * The IPv4 address the IPv6 address `b` stands for under `mode`, or null (Qt's
 * convertToIpv4). "::" converts as the unspecified address or, like any other
 * IPv4-compatible address except "::1", with ConvertV4CompatToIPv4; "::1" only as localhost.
 */
function convertToIPv4(b: Uint8Array, mode: ConversionMode): number | null {
  if (mode === ConversionModeFlag.StrictConversion) return null;
  if (word32(b, 0) !== 0 || word32(b, 4) !== 0) return null;
  const mid = word32(b, 8);
  const low = word32(b, 12);
  if (mid === 0xffff && mode & ConversionModeFlag.ConvertV4MappedToIPv4) return low;
  if (mid !== 0) return null;
  if (low === 0 && mode & ConversionModeFlag.ConvertUnspecifiedAddress) return 0;
  if (low === 1 && mode & ConversionModeFlag.ConvertLocalHost) return LOOPBACK_V4;
  if (low !== 1 && mode & ConversionModeFlag.ConvertV4CompatToIPv4) return low;
  return null;
}

function isZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

/**
 * An IPv4 or IPv6 address, as Qt's QHostAddress: parsed with Qt's rules (inet_aton forms
 * for IPv4, scope ids for IPv6), printed in Qt's canonical text, classified and compared
 * as Qt 6 does. It holds addresses only, never host names.
 *
 * Numbers: Qt has one constructor for a `SpecialAddress` and another for an IPv4 address
 * as a quint32. TypeScript's enum values are plain numbers, so a number stands for the
 * special address of that value when it is 0 to 6 (`SpecialAddress.AnyIPv4`), and for the
 * IPv4 address when it is 7 to 0xFFFFFFFF: `new QHostAddress(0x7f000001)` is 127.0.0.1,
 * `new QHostAddress(SpecialAddress.LocalHost)` (that is, 2) is 127.0.0.1 too. For an IPv4
 * address that may be below 0.0.0.7, use `QHostAddress.fromIPv4Address(n)`, which always
 * reads `n` as an address. Other numbers throw a RangeError.
 */
export class QHostAddress {
  static readonly SpecialAddress = SpecialAddress;
  static readonly ConversionModeFlag = ConversionModeFlag;

  private proto: NetworkLayerProtocol = P.UnknownNetworkLayerProtocol;
  /**
   * The IPv4 form, as Qt keeps it: the address itself for IPv4; for IPv6, the IPv4 address
   * an IPv4-mapped address carries (0 for any other IPv6 address).
   */
  private a = 0;
  /** The IPv6 form: the address itself for IPv6; for IPv4, its IPv4-mapped form ("::" for 0.0.0.0). */
  private a6 = new Uint8Array(16);
  private scope = '';

  /** The IPv4 address `ip4Addr` (0 to 0xFFFFFFFF), never a special address: 2 is 0.0.0.2. */
  static fromIPv4Address(ip4Addr: number): QHostAddress {
    const address = new QHostAddress();
    address.setIPv4(checkedIPv4(ip4Addr));
    return address;
  }

  /** A null address. */
  constructor();
  /** The IPv4 or IPv6 address in `address`; null if it does not parse (see `setAddress`). */
  constructor(address: string);
  /** The special address; a plain number 0 to 6 is read as one (see the class comment). */
  constructor(address: SpecialAddress);
  /** The IPv4 address `ip4Addr` when it is 7 or more (0x7f000001 is 127.0.0.1; see the class comment). */
  constructor(ip4Addr: number);
  /** The IPv6 address in 16 bytes, network byte order (a Buffer will do). */
  constructor(ip6Addr: Uint8Array);
  /** A copy of `copy`. */
  constructor(copy: QHostAddress);
  constructor(address?: string | SpecialAddress | number | Uint8Array | QHostAddress | null);
  constructor(address?: string | SpecialAddress | number | Uint8Array | QHostAddress | null) {
    if (address instanceof QHostAddress) {
      this.proto = address.proto;
      this.a = address.a;
      this.a6 = new Uint8Array(address.a6);
      this.scope = address.scope;
    } else if (address !== undefined && address !== null) {
      this.setAddress(address);
    }
  }

  /**
   * Sets the address. Text is parsed as Qt does (white space around it is ignored);
   * returns false, and leaves the address null, if it is not an IPv4 or IPv6 address.
   * The other forms are those of the constructor and return true (Qt's return nothing).
   * The scope id is replaced: by the text's, or by none.
   */
  setAddress(address: string): boolean;
  setAddress(address: SpecialAddress): boolean;
  setAddress(ip4Addr: number): boolean;
  setAddress(ip6Addr: Uint8Array): boolean;
  setAddress(address: string | SpecialAddress | number | Uint8Array): boolean;
  setAddress(address: string | SpecialAddress | number | Uint8Array): boolean {
    if (typeof address === 'number') {
      const value = checkedIPv4(address);
      if (value <= LAST_SPECIAL) this.setSpecial(value as SpecialAddress);
      else this.setIPv4(value);
      return true;
    }
    if (address instanceof Uint8Array) {
      if (address.length !== 16) {
        throw new RangeError(`QHostAddress: an IPv6 address is 16 bytes, not ${address.length}`);
      }
      this.setIPv6(address);
      return true;
    }
    if (typeof address !== 'string') {
      throw new TypeError(
        'QHostAddress: an address is a string, a number, 16 bytes or a SpecialAddress',
      );
    }
    return this.parse(address);
  }

  /** Makes this the null address. */
  clear(): void {
    this.proto = P.UnknownNetworkLayerProtocol;
    this.a = 0;
    this.a6 = new Uint8Array(16);
    this.scope = '';
  }

  /** IPv4Protocol, IPv6Protocol, AnyIPProtocol (the dual-stack Any) or UnknownNetworkLayerProtocol (null). */
  protocol(): NetworkLayerProtocol {
    return this.proto;
  }

  /** True for the null address (the default, or a failed parse). */
  isNull(): boolean {
    return this.proto === P.UnknownNetworkLayerProtocol;
  }

  /** True for 127.0.0.0/8 (also IPv4-mapped) and ::1. */
  isLoopback(): boolean {
    return this.classify() === AddressClass.Loopback;
  }

  /**
   * True for an address not reserved for a special purpose: not loopback, link-local,
   * multicast, broadcast, 0.0.0.0/8, 240.0.0.0/4, "::" or fe00::/9. Private networks
   * (RFC 1918), unique-local (fc00::/7) and site-local (fec0::/10) addresses are global.
   */
  isGlobal(): boolean {
    return (this.classify() & AddressClass.Global) !== 0;
  }

  /** True for 169.254.0.0/16 (also IPv4-mapped) and fe80::/10. */
  isLinkLocal(): boolean {
    return this.classify() === AddressClass.LinkLocal;
  }

  /** True for the deprecated IPv6 site-local addresses, fec0::/10. */
  isSiteLocal(): boolean {
    return this.classify() === AddressClass.SiteLocal;
  }

  /** True for IPv6 unique local unicast addresses, fc00::/7. */
  isUniqueLocalUnicast(): boolean {
    return this.classify() === AddressClass.UniqueLocal;
  }

  /**
   * True for the private networks of RFC 1918 (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,
   * also IPv4-mapped) and IPv6 unique local unicast addresses (Qt 6.6).
   */
  isPrivateUse(): boolean {
    const kind = this.classify();
    return kind === AddressClass.PrivateNetwork || kind === AddressClass.UniqueLocal;
  }

  /** True for 224.0.0.0/4 (also IPv4-mapped) and ff00::/8. */
  isMulticast(): boolean {
    return this.classify() === AddressClass.Multicast;
  }

  /** True for 255.255.255.255 (also IPv4-mapped); not for a network's own broadcast address. */
  isBroadcast(): boolean {
    return this.classify() === AddressClass.Broadcast;
  }

  /**
   * True if this address is in the network `subnet`/`netmask`: the first `netmask` bits
   * (capped at 32 or 128) are those of `subnet`, which can be any address of that network.
   * False when the protocols differ (an IPv4-mapped IPv6 address is not in an IPv4 network),
   * for Any and null addresses, and for a negative `netmask`. The scope id is not compared.
   * The pair form takes what `parseSubnet` returns.
   */
  isInSubnet(subnet: QHostAddress, netmask: number): boolean;
  isInSubnet(subnet: readonly [QHostAddress, number]): boolean;
  isInSubnet(subnet: QHostAddress | readonly [QHostAddress, number], netmask?: number): boolean {
    const [network, length] = subnet instanceof QHostAddress ? [subnet, netmask] : subnet;
    const prefix = checkedInt('netmask', length);
    if (network.proto !== this.proto || prefix < 0) return false;
    if (this.proto === P.IPv4Protocol) {
      return samePrefix(ip4Bytes(this.a), ip4Bytes(network.a), Math.min(prefix, 32));
    }
    if (this.proto === P.IPv6Protocol) {
      return samePrefix(this.a6, network.a6, Math.min(prefix, 128));
    }
    return false;
  }

  /**
   * Parses a network, "address/prefix-length", as Qt does; returns its network address
   * (host bits cleared) and prefix length, or `[null address, -1]` when it does not parse.
   * Accepted: "a.b.c.d/n" (n 0 to 32), "a.b.c.d/255.255.255.0" (a netmask, any form
   * `setAddress` reads), "ipv6/n" (n 0 to 128, scope id kept), and IPv4 with trailing parts
   * left out, with or without a last dot ("10/8", "192.168.1.", "10.1"): without a prefix,
   * 8 bits for each part given. IPv4 parts are decimal (leading zeros allowed, no hex).
   */
  static parseSubnet(subnet: string): [QHostAddress, number] {
    const invalid = (): [QHostAddress, number] => [new QHostAddress(), -1];
    if (subnet === '') return invalid();
    const slash = subnet.indexOf('/');
    const netText = slash >= 0 ? subnet.slice(0, slash) : subnet;
    const isIPv6 = netText.includes(':');
    let netmask = -1;
    if (slash >= 0) {
      const maskText = subnet.slice(slash + 1);
      if (!isIPv6 && maskText.includes('.')) {
        const mask = new QHostAddress();
        if (!mask.setAddress(maskText)) return invalid();
        netmask = netmaskPrefixLength(mask.proto === P.IPv4Protocol ? ip4Bytes(mask.a) : mask.a6);
        if (netmask < 0) return invalid();
      } else {
        const value = toUInt(maskText);
        if (value === null) return invalid();
        // Qt stores the unsigned value in an int: 4294967295 becomes -1, "no prefix given".
        netmask = value | 0;
      }
    }

    if (isIPv6) {
      if (netmask > 128) return invalid();
      if (netmask < 0) netmask = 128;
      const net = new QHostAddress();
      if (!net.setAddress(netText)) return invalid();
      const scope = net.scope;
      const bytes = new Uint8Array(net.a6);
      clearBitsFrom(bytes, netmask);
      net.setIPv6(bytes);
      net.scope = scope;
      return [net, netmask];
    }

    if (netmask > 32) return invalid();
    const parts = netText.split('.');
    if (parts.length > 4) return invalid();
    if (parts[parts.length - 1] === '') parts.pop();
    let address = 0;
    for (const part of parts) {
      const value = toUInt(part);
      if (value === null || value > 255) return invalid();
      address = address * 256 + value;
    }
    address *= 2 ** (8 * (4 - parts.length));
    if (netmask === -1) {
      netmask = 8 * parts.length;
    } else if (netmask === 0) {
      address = 0;
    } else if (netmask !== 32) {
      // Shift counts are taken modulo 32 here as on x86, where Qt gives the same answer for
      // the (meaningless) negative prefix lengths that the int conversion above can make.
      const shift = 32 - netmask;
      address = (address & ((0xffffffff >>> shift) << shift)) >>> 0;
    }
    return [QHostAddress.fromIPv4Address(address), netmask];
  }

  /**
   * The IPv4 address as a number (127.0.0.1 is 0x7f000001), also for an IPv4-mapped IPv6
   * address; 0 for Any and "::". Pass `ok` (Qt's `bool *ok`) to learn whether the address
   * has an IPv4 form: `ok.value` becomes false for null and other IPv6 addresses, which
   * return 0.
   */
  toIPv4Address(ok?: { value: boolean }): number {
    if (ok) {
      ok.value =
        this.proto === P.IPv4Protocol ||
        this.proto === P.AnyIPProtocol ||
        (this.proto === P.IPv6Protocol &&
          convertToIPv4(
            this.a6,
            ConversionModeFlag.ConvertV4MappedToIPv4 | ConversionModeFlag.ConvertUnspecifiedAddress,
          ) !== null);
    }
    return this.a;
  }

  /** A copy of the 16 bytes of the IPv6 form (IPv4 addresses come IPv4-mapped; 0.0.0.0 as "::"). */
  toIPv6Address(): Uint8Array {
    return new Uint8Array(this.a6);
  }

  /** The IPv6 scope id (zone), e.g. `'eth0'`; empty for IPv4 and unscoped addresses. */
  scopeId(): string {
    return this.proto === P.IPv6Protocol ? this.scope : '';
  }

  /** Sets the IPv6 scope id; ignored for other protocols, as in Qt. */
  setScopeId(id: string): void {
    if (this.proto === P.IPv6Protocol) this.scope = id;
  }

  /** Qt's text form ("127.0.0.1", "::1", "fe80::1%eth0"); "" for null; "0.0.0.0" for Any. */
  toString(): string {
    switch (this.proto) {
      case P.IPv4Protocol:
      case P.AnyIPProtocol:
        return formatIp4(this.a);
      case P.IPv6Protocol:
        return formatIp6(this.a6) + (this.scope ? `%${this.scope}` : '');
      default:
        return '';
    }
  }

  /**
   * Compares with Qt's conversion rules. The default, TolerantConversion, treats
   * "::ffff:1.2.3.4" as 1.2.3.4, "::1" as 127.0.0.1, "::1.2.3.4" as 1.2.3.4, and Any as equal
   * to "::" and 0.0.0.0. Scope ids are not compared (as in Qt).
   */
  isEqual(
    other: QHostAddress | SpecialAddress,
    mode: ConversionMode = ConversionModeFlag.TolerantConversion,
  ): boolean {
    const o = other instanceof QHostAddress ? other : new QHostAddress(other);
    const unspecified = (mode & ConversionModeFlag.ConvertUnspecifiedAddress) !== 0;
    if (this.proto === P.IPv4Protocol) {
      switch (o.proto) {
        case P.IPv4Protocol:
          return this.a === o.a;
        case P.IPv6Protocol:
          return convertToIPv4(o.a6, mode) === this.a;
        case P.AnyIPProtocol:
          return unspecified && this.a === 0;
        default:
          return false;
      }
    }
    if (this.proto === P.IPv6Protocol) {
      switch (o.proto) {
        case P.IPv4Protocol:
          return convertToIPv4(this.a6, mode) === o.a;
        case P.IPv6Protocol:
          return this.a6.every((x, i) => x === o.a6[i]);
        case P.AnyIPProtocol:
          return unspecified && isZero(this.a6);
        default:
          return false;
      }
    }
    if (this.proto === P.AnyIPProtocol && unspecified) {
      if (o.proto === P.IPv4Protocol) return o.a === 0;
      if (o.proto === P.IPv6Protocol) return isZero(o.a6);
    }
    return this.proto === o.proto;
  }

  /**
   * Qt's `operator==`: `isEqual(other, StrictConversion)`, so "::ffff:1.2.3.4" does not
   * equal 1.2.3.4 and Any equals only Any. Takes a SpecialAddress too (`address == QHostAddress::Any`).
   */
  equals(other: QHostAddress | SpecialAddress): boolean {
    return this.isEqual(other, ConversionModeFlag.StrictConversion);
  }

  /** Exchanges this address with `other` (scope ids included). */
  swap(other: QHostAddress): void {
    [this.proto, other.proto] = [other.proto, this.proto];
    [this.a, other.a] = [other.a, this.a];
    [this.a6, other.a6] = [other.a6, this.a6];
    [this.scope, other.scope] = [other.scope, this.scope];
  }

  /** The address Node's `net` functions take (the text form, scope id included). */
  toNodeAddress(): string {
    return this.proto === P.AnyIPProtocol ? '::' : this.toString();
  }

  private parse(text: string): boolean {
    this.clear();
    const address = simplified(text);
    if (address === '') return false;
    if (address.includes(':')) {
      const percent = address.lastIndexOf('%');
      const bytes = parseIp6(percent >= 0 ? address.slice(0, percent) : address);
      if (bytes) {
        this.setIPv6(bytes);
        this.scope = percent >= 0 ? address.slice(percent + 1) : '';
        return true;
      }
      return false;
    }
    const v4 = parseIp4(address);
    if (v4 === null) return false;
    this.setIPv4(v4);
    return true;
  }

  private setIPv4(a: number): void {
    this.clear();
    this.proto = P.IPv4Protocol;
    this.a = a;
    // Qt keeps the IPv4-mapped form, except for 0.0.0.0, whose IPv6 form is "::".
    if (a !== 0) {
      this.a6[10] = 0xff;
      this.a6[11] = 0xff;
      this.a6.set(ip4Bytes(a), 12);
    }
  }

  private setIPv6(bytes: Uint8Array): void {
    this.clear();
    this.proto = P.IPv6Protocol;
    this.a6 = new Uint8Array(bytes);
    this.a =
      convertToIPv4(
        this.a6,
        ConversionModeFlag.ConvertV4MappedToIPv4 | ConversionModeFlag.ConvertUnspecifiedAddress,
      ) ?? 0;
  }

  private setSpecial(special: SpecialAddress): void {
    this.clear();
    switch (special) {
      case SpecialAddress.Broadcast:
        this.setIPv4(BROADCAST_V4);
        break;
      case SpecialAddress.LocalHost:
        this.setIPv4(LOOPBACK_V4);
        break;
      case SpecialAddress.AnyIPv4:
        this.setIPv4(0);
        break;
      case SpecialAddress.LocalHostIPv6: {
        const bytes = new Uint8Array(16);
        bytes[15] = 1;
        this.setIPv6(bytes);
        break;
      }
      case SpecialAddress.AnyIPv6:
        this.setIPv6(new Uint8Array(16));
        break;
      case SpecialAddress.Any:
        this.proto = P.AnyIPProtocol;
        break;
      default:
        break;
    }
  }

  /** What kind of address this is (Qt's QHostAddressPrivate::classify, with Qt 6.6's private networks). */
  private classify(): AddressClass {
    const a = this.a;
    if (a !== 0) {
      // IPv4, or IPv4-mapped IPv6 (except ::ffff:0.0.0.0).
      if (a >>> 24 === 127) return AddressClass.Loopback;
      if (a >>> 28 === 0xe) return AddressClass.Multicast;
      if (a >>> 16 === 0xa9fe) return AddressClass.LinkLocal;
      if (a >>> 24 === 0) return AddressClass.LocalNet;
      if (a >>> 28 === 0xf) {
        return a === BROADCAST_V4 ? AddressClass.Broadcast : AddressClass.Unknown;
      }
      if (a >>> 24 === 10 || a >>> 20 === 0xac1 || a >>> 16 === 0xc0a8) {
        return AddressClass.PrivateNetwork;
      }
      return AddressClass.Global;
    }
    const b = this.a6;
    if (word32(b, 0) !== 0 || word32(b, 4) !== 0) {
      switch (b[0]) {
        case 0xff:
          return AddressClass.Multicast;
        case 0xfe:
          if ((b[1] & 0xc0) === 0xc0) return AddressClass.SiteLocal;
          if ((b[1] & 0xc0) === 0x80) return AddressClass.LinkLocal;
          return AddressClass.Unknown;
        case 0xfc:
        case 0xfd:
          return AddressClass.UniqueLocal;
        default:
          return AddressClass.Global;
      }
    }
    const mid = word32(b, 8);
    const low = word32(b, 12);
    if (mid === 0 && low === 1) return AddressClass.Loopback;
    if (mid === 0xffff) return AddressClass.LocalNet; // ::ffff:0.0.0.0
    if (mid !== 0 || low !== 0) return AddressClass.Global;
    if (this.proto === P.UnknownNetworkLayerProtocol) return AddressClass.Unknown;
    return AddressClass.LocalNet; // "::", 0.0.0.0 and Any
  }
}

/** `n` if it is a quint32 (what Qt's ip4Addr parameters take); a RangeError otherwise. */
function checkedIPv4(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new RangeError(
      `QHostAddress: ${n} is not an IPv4 address or a SpecialAddress (an integer from 0 to 4294967295)`,
    );
  }
  return n;
}

/** `n` if it is an int (what Qt's int parameters take); a RangeError otherwise. */
function checkedInt(name: string, n: number | undefined): number {
  if (n === undefined || !Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) {
    throw new RangeError(`QHostAddress: ${name} ${n} is not an int`);
  }
  return n;
}
