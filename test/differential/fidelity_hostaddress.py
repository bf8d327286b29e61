#!/usr/bin/python3
"""QHostAddress on real Qt: the Qt side of fidelity-hostaddress.spec.ts.

Usage: /usr/bin/python3 fidelity_hostaddress.py SCENARIO 'JSON-PARAMS'
       /usr/bin/python3 fidelity_hostaddress.py --list

Each scenario has a twin of the same name in port-fidelity-hostaddress.ts that makes the
same calls on the port, in the same order, and logs the same lines. No network is used.

Scenarios run on Qt 5.15 (PyQt5), except those named hostaddress.qt6.*, which run on Qt 6
(PyQt6, imported only by them) where Qt 6 differs from Qt 5.15 or only Qt 6's binding
shows the value (toIPv4Address's ok flag): the port follows Qt 6.

Address specs, the same on both sides: '' is QHostAddress(), a SpecialAddress name is that
special address, 'u32:N' is the quint32 constructor, 'bytes:HEX' the 16-byte IPv6
constructor, anything else the text constructor.
"""

import sys

import qt_scenarios as kit

SCENARIOS = {}


def scenario(name):
    def register(fn):
        SCENARIOS[name] = fn
        return fn

    return register


SPECIALS = ['Null', 'Broadcast', 'LocalHost', 'LocalHostIPv6', 'Any', 'AnyIPv6', 'AnyIPv4']

# (name, value) of each ConversionModeFlag combination isEqual is asked with.
MODES = [
    ('Strict', 0),
    ('Mapped', 1),
    ('Compat', 2),
    ('Unspec', 4),
    ('Local', 8),
    ('Tolerant', 0xFF),
    ('Mapped|Compat', 3),
    ('Compat|Local', 10),
    ('Mapped|Unspec', 5),
]


class Qt:
    """QHostAddress of one PyQt major version, behind the few calls spelled differently."""

    def __init__(self, major):
        if major == 5:
            from PyQt5.QtNetwork import QHostAddress

            self.specials = QHostAddress
            self.mode = QHostAddress.ConversionMode
        else:
            from PyQt6.QtNetwork import QHostAddress

            self.specials = QHostAddress.SpecialAddress
            self.mode = QHostAddress.ConversionModeFlag
        self.H = QHostAddress

    def special(self, name):
        return getattr(self.specials, name)

    def make(self, spec):
        if spec == '':
            return self.H()
        if spec in SPECIALS:
            return self.H(self.special(spec))
        if spec.startswith('u32:'):
            return self.H(int(spec[4:]))
        if spec.startswith('bytes:'):
            return self.H(bytes.fromhex(spec[6:]))
        return self.H(spec)

    @staticmethod
    def protocol(a):
        p = a.protocol()
        return int(getattr(p, 'value', p))

    def describe(self, a):
        """[toString, protocol, isNull, scopeId, IPv6 form as hex]."""
        v6 = a.toIPv6Address()
        return [a.toString(), self.protocol(a), a.isNull(), a.scopeId(), bytes(v6[i] for i in range(16)).hex()]

    @staticmethod
    def classes(a):
        """The classifications, in a fixed order."""
        return [
            a.isLoopback(),
            a.isGlobal(),
            a.isLinkLocal(),
            a.isSiteLocal(),
            a.isUniqueLocalUnicast(),
            a.isMulticast(),
            a.isBroadcast(),
        ]


QT5 = Qt(5)

TEXTS = [
    '127.0.0.1', '127.1', '0x7f.1', '010.0.0.1', '4294967295', '1', '1.2.3', ' 1.2.3.4 ',
    '\x851.2.3.4', '\u00a01.2.3.4', '\ufeff1.2.3.4', '1.2.3.4\u2028', '256.1.1.1', 'localhost',
    '::', '::1', '::2', '::1.2.3.4', '::ffff:1.2.3.4', '::FFFF:7f00:1', '::ffff:0.0.0.0',
    '::ffff:0:1.2.3.4', '1:0:0:2:0:0:0:3', '2001:DB8::1', 'fe80::1%eth0', 'fe80::1%',
    'fe80::1%eth  0', 'fe80::1%eth0%1', 'FE80::1%ETH0', '::1%1', '[::1]', '1.2.3.4%eth0',
    ':::', '1:2:3:4:5:6:7:8:9', '',
]

BYTES = [
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
]

NUMBERS = [7, 8, 255, 16777216, 0x7F000001, 0x0A000001, 0xA9FE0101, 0xE0000001, 0xC0A80101, 0xFFFFFFFE, 0xFFFFFFFF]

CLASSIFIED = SPECIALS + [
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
]

EQUAL = SPECIALS + [
    '0.0.0.0', '127.0.0.1', '1.2.3.4', '0.0.0.1', '255.255.255.255', '::', '::1',
    '::1.2.3.4', '::ffff:1.2.3.4', '::ffff:0.0.0.0', '::ffff:127.0.0.1', '::0.0.0.1',
    '::127.0.0.1', '::ffff:255.255.255.255', 'fe80::1', 'fe80::1%eth0', '2001:db8::1', '::2',
]

IN_SUBNET_ADDRESSES = [
    '10.1.2.3', '10.1.2.200', '10.2.0.1', '11.0.0.1', '0.0.0.0', '255.255.255.255',
    '::ffff:10.1.2.3', '2001:db8::1', '2001:db8:0:1::1', '2001:db9::1', 'fe80::1%eth0', '::',
    'Any', 'Null', 'AnyIPv4', 'AnyIPv6',
]
IN_SUBNET_NETWORKS = [
    '10.0.0.0', '10.1.2.0', '10.1.2.255', '0.0.0.0', '::ffff:10.0.0.0', '2001:db8::',
    'fe80::', '::', 'Any', 'Null', 'AnyIPv4',
]
NETMASKS = [-1, 0, 1, 7, 8, 9, 15, 16, 23, 24, 25, 31, 32, 33, 64, 96, 100, 127, 128, 129, 1000]

SUBNETS = [
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
]

# Inputs Qt 5.15 and Qt 6 read differently (Qt 6 trims only ASCII white space around a
# prefix length); run on Qt 6 only.
SUBNETS_QT6 = ['10.1.2.3/\u00a024', '10.1.2.3/24\u2003', '10.1.2.3/\x8524', '1.2.3.4/\u300024']

V4_OK = SPECIALS + [
    '0.0.0.0', '1.2.3.4', '255.255.255.255', '::', '::1', '::2', '::1.2.3.4', '::ffff:0.0.0.0',
    '::ffff:1.2.3.4', '::ffff:ffff:ffff', '::ffff:0:1.2.3.4', '2001:db8::1', 'fe80::1%eth0',
    'u32:7', 'bytes:00000000000000000000ffff0a000001', 'junk',
]


# ---------------------------------------------------------------------- construction


@scenario('hostaddress.text')
def text(scope, p, log):
    for spec in TEXTS:
        a = QT5.H()
        log.value('setAddress(%s)' % spec, a.setAddress(spec))
        log.value('after', QT5.describe(a))
        log.value('ctor', QT5.describe(QT5.H(spec)))


@scenario('hostaddress.numbers')
def numbers(scope, p, log):
    for n in NUMBERS:
        log.value('ctor(%d)' % n, QT5.describe(QT5.H(n)))
        a = QT5.H('fe80::1%eth0')
        a.setAddress(n)
        log.value('setAddress(%d)' % n, QT5.describe(a))
    # The port's fromIPv4Address(n) is Qt's QHostAddress(quint32) for every n.
    for n in [0, 1, 2, 3, 4, 5, 6] + NUMBERS:
        log.value('ipv4(%d)' % n, QT5.describe(QT5.H(n)))
    for name in SPECIALS:
        log.value(name, QT5.describe(QT5.H(QT5.special(name))))
        a = QT5.H('1.2.3.4')
        a.setAddress(QT5.special(name))
        log.value('setAddress(%s)' % name, QT5.describe(a))


@scenario('hostaddress.bytes')
def bytes_forms(scope, p, log):
    for hx in BYTES:
        log.value('ctor(%s)' % hx, QT5.describe(QT5.H(bytes.fromhex(hx))))
        a = QT5.H()
        a.setAddress(bytes.fromhex(hx))
        log.value('setAddress', QT5.describe(a))
    for spec in ['1.2.3.4', '0.0.0.0', '255.255.255.255', 'LocalHost', 'Any', 'AnyIPv4', 'fe80::1%eth0', '']:
        a = QT5.make(spec)
        round_trip = QT5.H(a.toIPv6Address())
        log.value('roundTrip(%s)' % spec, QT5.describe(round_trip))


# ---------------------------------------------------------------------- classification


@scenario('hostaddress.classify')
def classify(scope, p, log):
    for spec in CLASSIFIED:
        a = QT5.make(spec)
        log.value(spec, QT5.classes(a) + [a.isNull(), a.toString(), QT5.protocol(a), a.toIPv4Address()])


@scenario('hostaddress.qt6.toIPv4Address')
def qt6_to_ipv4(scope, p, log):
    qt6 = Qt(6)
    for spec in V4_OK:
        value, ok = qt6.make(spec).toIPv4Address()
        log.value(spec, [value, ok])


# ---------------------------------------------------------------------- subnets


@scenario('hostaddress.subnet.isInSubnet')
def in_subnet(scope, p, log):
    for spec in IN_SUBNET_ADDRESSES:
        a = QT5.make(spec)
        for net in IN_SUBNET_NETWORKS:
            n = QT5.make(net)
            bits = ''.join('1' if a.isInSubnet(n, m) else '0' for m in NETMASKS)
            log.value('%s in %s' % (spec, net), [bits, a.isInSubnet((n, 24))])
    for text_ in ['10.0.0.0/8', '10.1.2.0/24', '0/0', '2001:db8::/32', 'fe80::/10', 'junk']:
        pair = QT5.H.parseSubnet(text_)
        log.value('in %s' % text_, [QT5.make(s).isInSubnet(pair) for s in IN_SUBNET_ADDRESSES])


def log_subnets(qt, texts, log):
    for text_ in texts:
        a, n = qt.H.parseSubnet(text_)
        log.value(text_, [a.toString(), qt.protocol(a), n, a.scopeId()])


@scenario('hostaddress.subnet.parseSubnet')
def parse_subnet(scope, p, log):
    log_subnets(QT5, SUBNETS, log)


@scenario('hostaddress.qt6.parseSubnet')
def qt6_parse_subnet(scope, p, log):
    log_subnets(Qt(6), SUBNETS_QT6, log)


# ---------------------------------------------------------------------- equality


def log_equality(qt, log, skip_ipv6_any):
    for x in EQUAL:
        for y in EQUAL:
            a, b = qt.make(x), qt.make(y)
            if skip_ipv6_any and qt.protocol(a) == 1 and qt.protocol(b) == 2:
                continue
            row = ''.join('1' if a.isEqual(b, qt.mode(v)) else '0' for _, v in MODES)
            row += '=' + ('1' if a == b else '0')
            if y in SPECIALS:
                row += ('1' if a == qt.special(y) else '0')
            log.value('%s,%s' % (x, y), row)


@scenario('hostaddress.equality')
def equality(scope, p, log):
    # Qt 5.15 says an IPv6 address isEqual Any when ConvertUnspecifiedAddress is set; Qt 6
    # fixed it, and hostaddress.qt6.equality checks those pairs on Qt 6.
    log_equality(QT5, log, True)


@scenario('hostaddress.qt6.equality')
def qt6_equality(scope, p, log):
    log_equality(Qt(6), log, False)


@scenario('hostaddress.swap')
def swap(scope, p, log):
    pairs = [('1.2.3.4', 'fe80::1%eth0'), ('', 'Any'), ('::ffff:1.2.3.4', 'AnyIPv4'), ('::1', '::1')]
    for x, y in pairs:
        a, b = QT5.make(x), QT5.make(y)
        a.swap(b)
        log.value('swap(%s,%s)' % (x, y), [QT5.describe(a), QT5.describe(b)])
        b.setScopeId('changed')
        log.value('after', [QT5.describe(a), QT5.describe(b)])
    a = QT5.H('fe80::1%eth0')
    copy = QT5.H(a)
    copy.setScopeId('eth9')
    copy.setAddress('1.2.3.4')
    log.value('copy', [QT5.describe(a), QT5.describe(copy)])


# ---------------------------------------------------------------------- known differences


@scenario('hostaddress.known.quint32Small')
def known_quint32_small(scope, p, log):
    for n in range(0, 7):
        log.value('ctor(%d)' % n, QT5.describe(QT5.H(n)))
        a = QT5.H()
        a.setAddress(n)
        log.value('setAddress(%d)' % n, QT5.describe(a))


@scenario('hostaddress.known.staleScope')
def known_stale_scope(scope, p, log):
    a = QT5.H('fe80::1%eth0')
    a.setAddress(QT5.special('AnyIPv6'))
    log.value('AnyIPv6', QT5.describe(a))
    a.clear()
    log.value('clear', QT5.describe(a))
    a.setAddress(bytes.fromhex('fe800000000000000000000000000002'))
    log.value('bytes', QT5.describe(a))
    a.setAddress(0x01020304)
    a.setAddress(QT5.special('LocalHostIPv6'))
    log.value('LocalHostIPv6', QT5.describe(a))


@scenario('hostaddress.known.parseSubnetMapped')
def known_parse_subnet_mapped(scope, p, log):
    for text_ in ['::ffff:1.2.3.4/96', '::ffff:10.1.2.3/104', '::ffff:1.2.3.4/0']:
        a, n = QT5.H.parseSubnet(text_)
        log.value(text_, [a.toString(), n, a.toIPv4Address(), a.isGlobal()])


if __name__ == '__main__':
    sys.exit(kit.main(SCENARIOS))
