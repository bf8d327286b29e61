/**
 * The parts of QHostAddress's API that are the port's own shape for a Qt member: numbers
 * (Qt's quint32 and SpecialAddress overloads), 16-byte forms (Qt's quint8* / Q_IPV6ADDR),
 * toIPv4Address's `bool *ok`, `equals` for operator==, subnets as tuples (QPair), and
 * isPrivateUse (Qt 6.6, newer than the Qt this machine has, so reasoned from Qt's docs).
 * The values Qt itself gives are checked live in test/differential/fidelity-hostaddress.spec.ts.
 */
import {
  ConversionModeFlag,
  NetworkLayerProtocol,
  QHostAddress,
  SpecialAddress,
} from '../../../lib/qtnetwork/index.js';

const IPv4 = NetworkLayerProtocol.IPv4Protocol;
const IPv6 = NetworkLayerProtocol.IPv6Protocol;

describe('QHostAddress: numbers', () => {
  it('a number from 7 up is an IPv4 address, as Qt reads a quint32', () => {
    expect(new QHostAddress(0x7f000001).toString()).toBe('127.0.0.1');
    expect(new QHostAddress(0x7f000001).protocol()).toBe(IPv4);
    expect(new QHostAddress(7).toString()).toBe('0.0.0.7');
    expect(new QHostAddress(0xffffffff).toString()).toBe('255.255.255.255');
    expect(new QHostAddress(0x7f000001).isLoopback()).toBe(true);
  });

  it('a number from 0 to 6 is the SpecialAddress of that value', () => {
    expect(new QHostAddress(SpecialAddress.LocalHost).toString()).toBe('127.0.0.1');
    expect(new QHostAddress(2).toString()).toBe('127.0.0.1');
    expect(new QHostAddress(0).isNull()).toBe(true);
    expect(new QHostAddress(4).protocol()).toBe(NetworkLayerProtocol.AnyIPProtocol);
  });

  it('fromIPv4Address always reads the number as an IPv4 address', () => {
    expect(QHostAddress.fromIPv4Address(2).toString()).toBe('0.0.0.2');
    expect(QHostAddress.fromIPv4Address(6).toString()).toBe('0.0.0.6');
    const zero = QHostAddress.fromIPv4Address(0);
    expect(zero.isNull()).toBe(false);
    expect(zero.protocol()).toBe(IPv4);
    expect(zero.equals(SpecialAddress.AnyIPv4)).toBe(true);
    expect(QHostAddress.fromIPv4Address(0x0a000001).toString()).toBe('10.0.0.1');
  });

  it('setAddress(number) follows the same rule and returns true', () => {
    const a = new QHostAddress('fe80::1%eth0');
    expect(a.setAddress(0x0a000001)).toBe(true);
    expect(a.toString()).toBe('10.0.0.1');
    expect(a.scopeId()).toBe('');
    expect(a.setAddress(SpecialAddress.LocalHostIPv6)).toBe(true);
    expect(a.toString()).toBe('::1');
  });

  it.each([-1, 2 ** 32, 1.5, Number.NaN, Infinity])(
    '%d is neither an address nor a SpecialAddress: RangeError',
    (n) => {
      expect(() => new QHostAddress(n)).toThrow(RangeError);
      expect(() => new QHostAddress().setAddress(n)).toThrow(RangeError);
      expect(() => QHostAddress.fromIPv4Address(n)).toThrow(RangeError);
    },
  );

  it('a value that is no address form is a TypeError', () => {
    const bad = {} as unknown as string;
    expect(() => new QHostAddress(bad)).toThrow(TypeError);
  });
});

describe('QHostAddress: 16-byte IPv6 forms', () => {
  it('takes a Uint8Array or a Buffer of 16 bytes, network byte order', () => {
    const bytes = new Uint8Array(16);
    bytes[0] = 0xfe;
    bytes[1] = 0x80;
    bytes[15] = 1;
    expect(new QHostAddress(bytes).toString()).toBe('fe80::1');
    const buffer = Buffer.from('00000000000000000000ffff01020304', 'hex');
    const mapped = new QHostAddress(buffer);
    expect(mapped.protocol()).toBe(IPv6);
    expect(mapped.toString()).toBe('::ffff:1.2.3.4');
    expect(mapped.toIPv4Address()).toBe(0x01020304);
    const b = new QHostAddress();
    expect(b.setAddress(buffer)).toBe(true);
    expect(b.toString()).toBe('::ffff:1.2.3.4');
  });

  it('keeps its own copy of the bytes, and toIPv6Address returns a copy', () => {
    const bytes = new Uint8Array(16);
    bytes[15] = 1;
    const a = new QHostAddress(bytes);
    bytes[15] = 2;
    expect(a.toString()).toBe('::1');
    const out = a.toIPv6Address();
    expect(out).toHaveLength(16);
    out[15] = 3;
    expect(a.toString()).toBe('::1');
  });

  it.each([0, 4, 15, 17])('%d bytes is a RangeError', (n) => {
    expect(() => new QHostAddress(new Uint8Array(n))).toThrow(RangeError);
  });

  it('toIPv6Address gives IPv4 addresses IPv4-mapped, 0.0.0.0 as "::"', () => {
    expect(Buffer.from(new QHostAddress('1.2.3.4').toIPv6Address()).toString('hex')).toBe(
      '00000000000000000000ffff01020304',
    );
    expect(Buffer.from(new QHostAddress('0.0.0.0').toIPv6Address()).toString('hex')).toBe(
      '00000000000000000000000000000000',
    );
  });
});

describe('QHostAddress: toIPv4Address(ok)', () => {
  const rows: Array<[string | SpecialAddress, number, boolean]> = [
    ['1.2.3.4', 0x01020304, true],
    ['::ffff:1.2.3.4', 0x01020304, true],
    ['::', 0, true],
    [SpecialAddress.Any, 0, true],
    ['::1', 0, false],
    ['::1.2.3.4', 0, false],
    ['fe80::1', 0, false],
    [SpecialAddress.Null, 0, false],
  ];
  it.each(rows)('%j -> %d, ok %s', (spec, value, ok) => {
    const flag = { value: !ok };
    expect(new QHostAddress(spec).toIPv4Address(flag)).toBe(value);
    expect(flag.value).toBe(ok);
    expect(new QHostAddress(spec).toIPv4Address()).toBe(value);
  });
});

describe('QHostAddress: equals (operator==) and swap', () => {
  it('equals is isEqual with StrictConversion', () => {
    const v4 = new QHostAddress('1.2.3.4');
    const mapped = new QHostAddress('::ffff:1.2.3.4');
    expect(v4.equals(mapped)).toBe(false);
    expect(v4.isEqual(mapped)).toBe(true);
    expect(v4.equals(mapped)).toBe(v4.isEqual(mapped, ConversionModeFlag.StrictConversion));
    expect(new QHostAddress('fe80::1%eth0').equals(new QHostAddress('fe80::1%eth1'))).toBe(true);
  });

  it('equals a SpecialAddress as Qt compares with one', () => {
    expect(new QHostAddress('127.0.0.1').equals(SpecialAddress.LocalHost)).toBe(true);
    expect(new QHostAddress('::1').equals(SpecialAddress.LocalHost)).toBe(false);
    expect(new QHostAddress(SpecialAddress.Any).equals(SpecialAddress.Any)).toBe(true);
    expect(new QHostAddress('0.0.0.0').equals(SpecialAddress.Any)).toBe(false);
    expect(new QHostAddress().equals(SpecialAddress.Null)).toBe(true);
  });

  it('swap exchanges everything, scope ids included', () => {
    const a = new QHostAddress('fe80::1%eth0');
    const b = new QHostAddress(SpecialAddress.Any);
    a.swap(b);
    expect(a.protocol()).toBe(NetworkLayerProtocol.AnyIPProtocol);
    expect(b.toString()).toBe('fe80::1%eth0');
    expect(b.scopeId()).toBe('eth0');
    b.setScopeId('eth1');
    expect(a.scopeId()).toBe('');
  });
});

describe('QHostAddress: subnets', () => {
  it('isInSubnet takes a network and prefix, or the pair parseSubnet returns', () => {
    const a = new QHostAddress('192.168.1.77');
    expect(a.isInSubnet(new QHostAddress('192.168.1.0'), 24)).toBe(true);
    expect(a.isInSubnet(new QHostAddress('192.168.1.0'), 26)).toBe(false);
    expect(a.isInSubnet([new QHostAddress('192.168.1.64'), 26])).toBe(true);
    const pair = QHostAddress.parseSubnet('192.168.0.0/16');
    expect(pair[0]).toBeInstanceOf(QHostAddress);
    expect(pair[1]).toBe(16);
    expect(a.isInSubnet(pair)).toBe(true);
  });

  it('a negative prefix is never a network; one that is no int is a RangeError', () => {
    const a = new QHostAddress('10.0.0.1');
    expect(a.isInSubnet(new QHostAddress('10.0.0.0'), -1)).toBe(false);
    expect(() => a.isInSubnet(new QHostAddress('10.0.0.0'), 8.5)).toThrow(RangeError);
  });

  it("parseSubnet gives Qt's (null, -1) for what it cannot read", () => {
    const [address, length] = QHostAddress.parseSubnet('10.1.2.3/33');
    expect(address.isNull()).toBe(true);
    expect(length).toBe(-1);
  });

  it('a prefix of 4294967295 reads as no prefix, as Qt stores it in an int', () => {
    const [address, length] = QHostAddress.parseSubnet('10.1.2.3/4294967295');
    expect(address.toString()).toBe('10.1.2.3');
    expect(length).toBe(32);
  });

  it('the network of an IPv4-mapped subnet keeps its IPv4 form in step with its text', () => {
    const [network] = QHostAddress.parseSubnet('::ffff:10.1.2.3/104');
    expect(network.toString()).toBe('::ffff:10.0.0.0');
    expect(network.toIPv4Address()).toBe(0x0a000000);
  });
});

describe('QHostAddress: isPrivateUse (Qt 6.6: RFC 1918 and unique local)', () => {
  const rows: Array<[string, boolean]> = [
    ['9.255.255.255', false],
    ['10.0.0.0', true],
    ['10.255.255.255', true],
    ['11.0.0.0', false],
    ['172.15.255.255', false],
    ['172.16.0.0', true],
    ['172.31.255.255', true],
    ['172.32.0.0', false],
    ['192.167.255.255', false],
    ['192.168.0.0', true],
    ['192.168.255.255', true],
    ['192.169.0.0', false],
    ['::ffff:10.0.0.1', true],
    ['::ffff:172.16.0.1', true],
    ['fbff:ffff::', false],
    ['fc00::', true],
    ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['fe80::1', false],
    ['fec0::1', false],
    ['127.0.0.1', false],
    ['169.254.1.1', false],
    ['100.64.0.1', false],
    ['1.2.3.4', false],
    ['::10.0.0.1', false],
    ['', false],
  ];
  it.each(rows)('%j: %s', (text, privateUse) => {
    expect(new QHostAddress(text).isPrivateUse()).toBe(privateUse);
  });

  it('private and unique-local addresses stay global, as Qt documents', () => {
    for (const text of ['10.0.0.1', '172.16.0.1', '192.168.1.1', '::ffff:10.0.0.1', 'fd00::1']) {
      expect(new QHostAddress(text).isGlobal()).toBe(true);
    }
  });

  it('special addresses are not for private use', () => {
    for (const s of Object.values(SpecialAddress).filter((v) => typeof v === 'number')) {
      expect(new QHostAddress(s).isPrivateUse()).toBe(false);
    }
  });
});
