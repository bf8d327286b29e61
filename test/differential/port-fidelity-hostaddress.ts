/**
 * QHostAddress on the port: the twins of the scenarios in fidelity_hostaddress.py, which
 * make the same calls on real Qt. Each twin logs the same lines in the same order; the
 * address specs ('' null, SpecialAddress names, 'u32:N', 'bytes:HEX', text) are read the
 * same way on both sides, except that 'u32:N' is `QHostAddress.fromIPv4Address(N)` here
 * (Qt's QHostAddress(quint32), which the port's numeric constructor is only from 7 up: see
 * hostaddress.known.quint32Small).
 */
import {
  QHostAddress,
  SpecialAddress,
  type NetworkLayerProtocol,
} from '../../lib/qtnetwork/index.js';

import type { EventLog, Scenario } from './port-scenarios.js';

const SPECIALS = [
  'Null',
  'Broadcast',
  'LocalHost',
  'LocalHostIPv6',
  'Any',
  'AnyIPv6',
  'AnyIPv4',
] as const;
type SpecialName = (typeof SPECIALS)[number];

function isSpecial(spec: string): spec is SpecialName {
  return (SPECIALS as readonly string[]).includes(spec);
}

/** [name, value] of each ConversionModeFlag combination isEqual is asked with. */
const MODES: Array<[string, number]> = [
  ['Strict', 0],
  ['Mapped', 1],
  ['Compat', 2],
  ['Unspec', 4],
  ['Local', 8],
  ['Tolerant', 0xff],
  ['Mapped|Compat', 3],
  ['Compat|Local', 10],
  ['Mapped|Unspec', 5],
];

function make(spec: string): QHostAddress {
  if (spec === '') return new QHostAddress();
  if (isSpecial(spec)) return new QHostAddress(SpecialAddress[spec]);
  if (spec.startsWith('u32:')) return QHostAddress.fromIPv4Address(Number(spec.slice(4)));
  if (spec.startsWith('bytes:')) return new QHostAddress(Buffer.from(spec.slice(6), 'hex'));
  return new QHostAddress(spec);
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** [toString, protocol, isNull, scopeId, IPv6 form as hex]. */
function describe(a: QHostAddress): [string, NetworkLayerProtocol, boolean, string, string] {
  return [a.toString(), a.protocol(), a.isNull(), a.scopeId(), hex(a.toIPv6Address())];
}

/** The classifications, in a fixed order. */
function classes(a: QHostAddress): boolean[] {
  return [
    a.isLoopback(),
    a.isGlobal(),
    a.isLinkLocal(),
    a.isSiteLocal(),
    a.isUniqueLocalUnicast(),
    a.isMulticast(),
    a.isBroadcast(),
  ];
}

// prettier-ignore
const TEXTS = [
  '127.0.0.1', '127.1', '0x7f.1', '010.0.0.1', '4294967295', '1', '1.2.3', ' 1.2.3.4 ',
  '\x851.2.3.4', '\u00a01.2.3.4', '\ufeff1.2.3.4', '1.2.3.4\u2028', '256.1.1.1', 'localhost',
  '::', '::1', '::2', '::1.2.3.4', '::ffff:1.2.3.4', '::FFFF:7f00:1', '::ffff:0.0.0.0',
  '::ffff:0:1.2.3.4', '1:0:0:2:0:0:0:3', '2001:DB8::1', 'fe80::1%eth0', 'fe80::1%',
  'fe80::1%eth  0', 'fe80::1%eth0%1', 'FE80::1%ETH0', '::1%1', '[::1]', '1.2.3.4%eth0',
  ':::', '1:2:3:4:5:6:7:8:9', '',
];

const BYTES = [
  '00000000000000000000000000000000',
  '00000000000000000000000000000001',
  '00000000000000000000ffff01020304',
  '00000000000000000000ffff00000000',
  '00000000000000000000ffff7f000001',
  '00000000000000000000000001020304',
  'fe800000000000000000000000000001',
  'ff020000000000000000000000000001',
  '20010db8000000000000000000000001',
  'fc000000000000000000000000000001',
  'ffffffffffffffffffffffffffffffff',
];

// prettier-ignore
const NUMBERS = [
  7, 8, 255, 16777216, 0x7f000001, 0x0a000001, 0xa9fe0101, 0xe0000001, 0xc0a80101, 0xfffffffe,
  0xffffffff,
];

// prettier-ignore
const CLASSIFIED = [
  ...SPECIALS,
  '0.0.0.0', '0.0.0.1', '0.255.255.255', '1.2.3.4', '10.0.0.1', '100.64.0.1', '127.0.0.1',
  '127.255.255.255', '169.254.0.1', '169.253.255.255', '172.16.0.1', '192.0.2.1',
  '192.168.1.1', '223.255.255.255', '224.0.0.1', '239.255.255.255', '240.0.0.1',
  '255.255.255.254', '255.255.255.255',
  '::', '::1', '::2', '::1.2.3.4', '::127.0.0.1', '::ffff:0.0.0.0', '::ffff:0.0.0.1',
  '::ffff:1.2.3.4', '::ffff:10.0.0.1', '::ffff:127.0.0.1', '::ffff:169.254.1.1',
  '::ffff:224.0.0.1', '::ffff:255.255.255.255', '::ffff:0:1.2.3.4', '64:ff9b::1.2.3.4',
  '1::', '2001:db8::1', '2000::', '4000::1', 'fbff::1', 'fc00::', 'fd12:3456::1',
  'fdff:ffff::', 'fe00::', 'fe7f::1', 'fe80::', 'fe80::1%eth0', 'febf::1', 'fec0::',
  'fec0::1%3', 'feff::1', 'ff00::', 'ff02::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  'u32:167772161', 'u32:4294967295', 'bytes:00000000000000000000ffff7f000001',
  'bytes:fe800000000000000000000000000001', '&&&', '',
];

// prettier-ignore
const EQUAL = [
  ...SPECIALS,
  '0.0.0.0', '127.0.0.1', '1.2.3.4', '0.0.0.1', '255.255.255.255', '::', '::1',
  '::1.2.3.4', '::ffff:1.2.3.4', '::ffff:0.0.0.0', '::ffff:127.0.0.1', '::0.0.0.1',
  '::127.0.0.1', '::ffff:255.255.255.255', 'fe80::1', 'fe80::1%eth0', '2001:db8::1', '::2',
];

// prettier-ignore
const IN_SUBNET_ADDRESSES = [
  '10.1.2.3', '10.1.2.200', '10.2.0.1', '11.0.0.1', '0.0.0.0', '255.255.255.255',
  '::ffff:10.1.2.3', '2001:db8::1', '2001:db8:0:1::1', '2001:db9::1', 'fe80::1%eth0', '::',
  'Any', 'Null', 'AnyIPv4', 'AnyIPv6',
];
// prettier-ignore
const IN_SUBNET_NETWORKS = [
  '10.0.0.0', '10.1.2.0', '10.1.2.255', '0.0.0.0', '::ffff:10.0.0.0', '2001:db8::',
  'fe80::', '::', 'Any', 'Null', 'AnyIPv4',
];
// prettier-ignore
const NETMASKS = [
  -1, 0, 1, 7, 8, 9, 15, 16, 23, 24, 25, 31, 32, 33, 64, 96, 100, 127, 128, 129, 1000,
];

// prettier-ignore
const SUBNETS = [
  '', '/', '10/8', '10', '10.', '10.1', '10.1.', '10.1.2', '10.1.2.', '10.1.2.3', '10.1.2.3.',
  '10.1.2.3/32', '10.1.2.3/33', '10.1.2.3/0', '10.1.2.3/24', '10.1.2.3/255.255.255.0',
  '10.1.2.3/255.255.0.255', '10.1.2.3/255.255.255.255', '10.1.2.3/0.0.0.0', '10.1.2.3/255.0',
  '10.1.2.3/255.', '10.1.2.3/255.255.255.254', '10.1.2.3/128.0.0.0', '10.1.2.3/0x18',
  '10.1.2.3/+24', '10.1.2.3/-1', '10.1.2.3/ 24', ' 10.1.2.3/24', '10.1.2.3 /24',
  '10.1.2.3/24 ', '10.1.2.3/\t24', '10.1.2.3/24\n', '10.1.2.3/\r24', '10.1.2.3/2 4',
  '10.1.2.3/', '10.1.2.3/abc', '10.1.2.3/24/8', '256.1.1.1/8', '0x0a.1.2.3/8', '010.1.2.3/8',
  '1.2.3.4.5/8', '10..2/8', '.10/8', ' 10 . 1/16', '+10.1/16', '-0.1/16', '10.1. /16',
  '10.1../16', '10.1.2..', '10.1.2.3/+0', '10.1.2.3/-0', '10.1.2.3/0024', '10.1.2.3/00',
  '10.1.2.3/00000000000000000000008', '10.1.2.3/1e1', '10.1.2.3/4294967295',
  '10.1.2.3/4294967296', '10.1.2.3/255.255.255.128', '10/255.0.0.0', '10/0x8',
  '1.2.3.4/0xff.0.0.0', '1.2.3.4/::0.0.0.0', '1.2.3.4/::ffff:255.255.255.0',
  '1.2.3.4/255.255.255.0 ', '1.2.3.4/255.255.255.0/', '/8', '/0', '.', './8', '0/0',
  '255.255.255.255/31', '192.168.1.77/26', '１０.1/8', '10.1.2.3/２４',
  '::/0', '::1', '::1/128', '::1/129', '::1/4294967295', 'fe80::1/10', 'fe80::1%eth0/64',
  'fe80::1%/64', 'fe80::1%a/b/64', '2001:db8::ff/120', '2001:db8::1/ffff:ffff::',
  '2001:db8::1/-1', '::ffff:1.2.3.4/96', '::ffff:1.2.3.4/120', '::1.2.3.4/104',
  '1.2.3.4:5/8', 'fe80::1/', ':::/8', '[::1]/128', ' ::1/128', '::1/ 128',
];

/** Inputs Qt 5.15 and Qt 6 read differently; compared with Qt 6 only. */
const SUBNETS_QT6 = [
  '10.1.2.3/\u00a024',
  '10.1.2.3/24\u2003',
  '10.1.2.3/\x8524',
  '1.2.3.4/\u300024',
];

// prettier-ignore
const V4_OK = [
  ...SPECIALS,
  '0.0.0.0', '1.2.3.4', '255.255.255.255', '::', '::1', '::2', '::1.2.3.4', '::ffff:0.0.0.0',
  '::ffff:1.2.3.4', '::ffff:ffff:ffff', '::ffff:0:1.2.3.4', '2001:db8::1', 'fe80::1%eth0',
  'u32:7', 'bytes:00000000000000000000ffff0a000001', 'junk',
];

// ---------------------------------------------------------------------- scenarios

const logSubnets = (texts: string[], log: EventLog): void => {
  for (const text of texts) {
    const [a, n] = QHostAddress.parseSubnet(text);
    log.value(text, [a.toString(), a.protocol(), n, a.scopeId()]);
  }
};

const logEquality = (log: EventLog, skipIPv6Any: boolean): void => {
  for (const x of EQUAL) {
    for (const y of EQUAL) {
      const a = make(x);
      const b = make(y);
      if (skipIPv6Any && a.protocol() === 1 && b.protocol() === 2) continue;
      let row = MODES.map(([, v]) => (a.isEqual(b, v) ? '1' : '0')).join('');
      row += '=' + (a.equals(b) ? '1' : '0');
      if (isSpecial(y)) row += a.equals(SpecialAddress[y]) ? '1' : '0';
      log.value(`${x},${y}`, row);
    }
  }
};

export const HOSTADDRESS_SCENARIOS: Record<string, Scenario> = {
  'hostaddress.text': async (_scope, _p, log) => {
    for (const spec of TEXTS) {
      const a = new QHostAddress();
      log.value(`setAddress(${spec})`, a.setAddress(spec));
      log.value('after', describe(a));
      log.value('ctor', describe(new QHostAddress(spec)));
    }
  },

  'hostaddress.numbers': async (_scope, _p, log) => {
    for (const n of NUMBERS) {
      log.value(`ctor(${n})`, describe(new QHostAddress(n)));
      const a = new QHostAddress('fe80::1%eth0');
      a.setAddress(n);
      log.value(`setAddress(${n})`, describe(a));
    }
    for (const n of [0, 1, 2, 3, 4, 5, 6, ...NUMBERS]) {
      log.value(`ipv4(${n})`, describe(QHostAddress.fromIPv4Address(n)));
    }
    for (const name of SPECIALS) {
      log.value(name, describe(new QHostAddress(SpecialAddress[name])));
      const a = new QHostAddress('1.2.3.4');
      a.setAddress(SpecialAddress[name]);
      log.value(`setAddress(${name})`, describe(a));
    }
  },

  'hostaddress.bytes': async (_scope, _p, log) => {
    for (const hx of BYTES) {
      log.value(`ctor(${hx})`, describe(new QHostAddress(Buffer.from(hx, 'hex'))));
      const a = new QHostAddress();
      a.setAddress(Buffer.from(hx, 'hex'));
      log.value('setAddress', describe(a));
    }
    const specs = [
      '1.2.3.4',
      '0.0.0.0',
      '255.255.255.255',
      'LocalHost',
      'Any',
      'AnyIPv4',
      'fe80::1%eth0',
      '',
    ];
    for (const spec of specs) {
      const roundTrip = new QHostAddress(make(spec).toIPv6Address());
      log.value(`roundTrip(${spec})`, describe(roundTrip));
    }
  },

  'hostaddress.classify': async (_scope, _p, log) => {
    for (const spec of CLASSIFIED) {
      const a = make(spec);
      log.value(spec, [...classes(a), a.isNull(), a.toString(), a.protocol(), a.toIPv4Address()]);
    }
  },

  'hostaddress.qt6.toIPv4Address': async (_scope, _p, log) => {
    for (const spec of V4_OK) {
      const ok = { value: false };
      const value = make(spec).toIPv4Address(ok);
      log.value(spec, [value, ok.value]);
    }
  },

  'hostaddress.subnet.isInSubnet': async (_scope, _p, log) => {
    for (const spec of IN_SUBNET_ADDRESSES) {
      const a = make(spec);
      for (const net of IN_SUBNET_NETWORKS) {
        const n = make(net);
        const bits = NETMASKS.map((m) => (a.isInSubnet(n, m) ? '1' : '0')).join('');
        log.value(`${spec} in ${net}`, [bits, a.isInSubnet([n, 24])]);
      }
    }
    for (const text of ['10.0.0.0/8', '10.1.2.0/24', '0/0', '2001:db8::/32', 'fe80::/10', 'junk']) {
      const pair = QHostAddress.parseSubnet(text);
      log.value(
        `in ${text}`,
        IN_SUBNET_ADDRESSES.map((s) => make(s).isInSubnet(pair)),
      );
    }
  },

  'hostaddress.subnet.parseSubnet': async (_scope, _p, log) => {
    logSubnets(SUBNETS, log);
  },

  'hostaddress.qt6.parseSubnet': async (_scope, _p, log) => {
    logSubnets(SUBNETS_QT6, log);
  },

  'hostaddress.equality': async (_scope, _p, log) => {
    // Qt 5.15's IPv6-isEqual-Any answers are not Qt 6's; hostaddress.qt6.equality has them.
    logEquality(log, true);
  },

  'hostaddress.qt6.equality': async (_scope, _p, log) => {
    logEquality(log, false);
  },

  'hostaddress.swap': async (_scope, _p, log) => {
    const pairs: Array<[string, string]> = [
      ['1.2.3.4', 'fe80::1%eth0'],
      ['', 'Any'],
      ['::ffff:1.2.3.4', 'AnyIPv4'],
      ['::1', '::1'],
    ];
    for (const [x, y] of pairs) {
      const a = make(x);
      const b = make(y);
      a.swap(b);
      log.value(`swap(${x},${y})`, [describe(a), describe(b)]);
      b.setScopeId('changed');
      log.value('after', [describe(a), describe(b)]);
    }
    const a = new QHostAddress('fe80::1%eth0');
    const copy = new QHostAddress(a);
    copy.setScopeId('eth9');
    copy.setAddress('1.2.3.4');
    log.value('copy', [describe(a), describe(copy)]);
  },

  // docs/qt-differences.md, "QHostAddress": a number 0 to 6 is a SpecialAddress here.
  'hostaddress.known.quint32Small': async (_scope, _p, log) => {
    for (let n = 0; n < 7; n++) {
      log.value(`ctor(${n})`, describe(new QHostAddress(n)));
      const a = new QHostAddress();
      a.setAddress(n);
      log.value(`setAddress(${n})`, describe(a));
    }
  },

  // docs/qt-differences.md, "QHostAddress": replacing an address drops its scope id here.
  'hostaddress.known.staleScope': async (_scope, _p, log) => {
    const a = new QHostAddress('fe80::1%eth0');
    a.setAddress(SpecialAddress.AnyIPv6);
    log.value('AnyIPv6', describe(a));
    a.clear();
    log.value('clear', describe(a));
    a.setAddress(Buffer.from('fe800000000000000000000000000002', 'hex'));
    log.value('bytes', describe(a));
    a.setAddress(0x01020304);
    a.setAddress(SpecialAddress.LocalHostIPv6);
    log.value('LocalHostIPv6', describe(a));
  },

  // docs/qt-differences.md, "QHostAddress": parseSubnet's IPv4-mapped network keeps its IPv4 form in step.
  'hostaddress.known.parseSubnetMapped': async (_scope, _p, log) => {
    for (const text of ['::ffff:1.2.3.4/96', '::ffff:10.1.2.3/104', '::ffff:1.2.3.4/0']) {
      const [a, n] = QHostAddress.parseSubnet(text);
      log.value(text, [a.toString(), n, a.toIPv4Address(), a.isGlobal()]);
    }
  },
};
