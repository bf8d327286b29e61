#!/usr/bin/python3
"""QNetworkProxy's value API, QLocalServer.close() and QLocalSocket.abort() on real Qt: the
Qt side of fidelity-proxylocal.spec.ts.

Usage: /usr/bin/python3 fidelity_proxylocal.py SCENARIO 'JSON-PARAMS'
       /usr/bin/python3 fidelity_proxylocal.py --list

Each scenario has a twin of the same name in port-fidelity-proxylocal.ts that makes the
same calls on the port, in the same order, and logs the same lines.

Scenarios run on Qt 5.15 (PyQt5), except those with "qt6" in their name, which run on
Qt 6 (PyQt6, imported only by them). The proxy scenarios run on both (Qt 5.15 and 6.4
agree on them); the QLocalSocket abort and close scenarios run on Qt 6 only, because the
port follows Qt 6 there (Qt 5.15's different order is the known difference local.abort of
differential.spec.ts).

Header values are logged the same way on both sides: strings, numbers, booleans and lists
as JSON, a date as "date:<ISO 8601, UTC, seconds>", a URL as "url:<encoded form>", no value
as null.
"""

import sys
import time

import qt_scenarios as kit

SCENARIOS = {}


def scenario(name):
    def register(fn):
        SCENARIOS[name] = fn
        return fn

    return register


class Qt:
    """QNetworkProxy (and friends) of one PyQt major version, behind the calls spelled differently."""

    def __init__(self, major):
        self.major = major
        if major == 5:
            from PyQt5.QtCore import QByteArray, QDate, QDateTime, Qt as QtNs, QTime, QUrl
            from PyQt5.QtNetwork import QNetworkProxy, QNetworkRequest

            self.caps = QNetworkProxy.Capabilities
        else:
            from PyQt6.QtCore import QByteArray, QDate, QDateTime, Qt as QtNs, QTime, QUrl
            from PyQt6.QtNetwork import QNetworkProxy, QNetworkRequest

            self.caps = QNetworkProxy.Capability
        self.P = QNetworkProxy
        self.K = QNetworkRequest.KnownHeaders
        self.QByteArray = QByteArray
        self.QDate, self.QTime, self.QDateTime, self.QUrl = QDate, QTime, QDateTime, QUrl
        self.utc = QtNs.TimeSpec.UTC
        self.iso = QtNs.DateFormat.ISODate

    @staticmethod
    def num(e):
        return int(getattr(e, 'value', e))

    def proxy(self, type_=None, host='', port=0, user='', password=''):
        if type_ is None:
            return self.P()
        return self.P(self.P.ProxyType(type_), host, port, user, password)

    def set_caps(self, p, caps):
        p.setCapabilities(self.caps(caps))

    def fields(self, p):
        return [self.num(p.type()), p.hostName(), p.port(), p.user(), p.password(), self.num(p.capabilities())]

    @staticmethod
    def names(p):
        return [bytes(n).decode('latin1') for n in p.rawHeaderList()]

    def header(self, p, h):
        return self.show(p.header(self.K(h)))

    def show(self, v):
        if v is None:
            return None
        if isinstance(v, self.QDateTime):
            return 'date:' + v.toUTC().toString(self.iso)
        if isinstance(v, self.QUrl):
            return 'url:' + bytes(v.toEncoded()).decode('latin1')
        return v

    def value(self, spec):
        """A header value from its spec: ['date', y, m, d, h, mi, s], ['url', text], or a plain value."""
        if isinstance(spec, list) and spec and spec[0] == 'date':
            y, mo, d, h, mi, s = spec[1:]
            return self.QDateTime(self.QDate(y, mo, d), self.QTime(h, mi, s), self.utc)
        if isinstance(spec, list) and spec and spec[0] == 'url':
            return self.QUrl(spec[1])
        return spec

    def set_header(self, p, h, spec):
        p.setHeader(self.K(h), self.value(spec))

    def set_raw(self, p, name, value):
        """value None removes the header (Qt's null QByteArray)."""
        p.setRawHeader(name.encode('latin1'), self.QByteArray() if value is None else value.encode('latin1'))

    @staticmethod
    def raw(p, name):
        return bytes(p.rawHeader(name.encode('latin1'))).decode('latin1')


QT5 = Qt(5)
_qt6 = []


def qt6():
    if not _qt6:
        _qt6.append(Qt(6))
    return _qt6[0]


# ProxyType values: DefaultProxy 0, Socks5Proxy 1, NoProxy 2, HttpProxy 3, HttpCachingProxy 4,
# FtpCachingProxy 5. Capabilities: Tunneling 1, Listening 2, UdpTunneling 4, Caching 8,
# HostNameLookup 16.
TYPES = [0, 1, 2, 3, 4, 5]
CAP_SETS = [None, 0, 8, 1, 9, 2 | 16]


def both(name):
    """Registers a proxy scenario twice: as `name` on Qt 5.15 and as `name.qt6` on Qt 6."""

    def register(fn):
        SCENARIOS[name] = lambda scope, p, log: fn(QT5, p, log)
        SCENARIOS[name + '.qt6'] = lambda scope, p, log: with_qt6_warnings(log, lambda: fn(qt6(), p, log))
        return fn

    return register


def with_qt6_warnings(log, run):
    """Runs `run` with Qt 6's warnings logged as kit.main logs Qt 5's."""
    from PyQt6.QtCore import QtMsgType, qInstallMessageHandler

    def on_message(msg_type, _context, message):
        if msg_type == QtMsgType.QtWarningMsg:
            log.add('warning(%s)' % kit.js(message))

    qInstallMessageHandler(on_message)
    try:
        run()
    finally:
        qInstallMessageHandler(None)


def reset_application_proxy(qt):
    qt.P.setApplicationProxy(qt.proxy(2))


# --- QNetworkProxy


@both('proxy.applicationProxy')
def proxy_application_proxy(qt, p, log):
    cases = [
        ('default', lambda: qt.proxy(0, 'h', 5, 'u', 'pw')),
        ('defaultCaps', lambda: with_caps(qt, qt.proxy(0, 'h', 5, 'u', 'pw'), 8)),
        ('noProxyFields', lambda: qt.proxy(2, 'h', 5, 'u', 'pw')),
        ('socks5', lambda: qt.proxy(1, 'h', 5, 'u', 'pw')),
        ('http', lambda: with_raw(qt, qt.proxy(3, 'h', 8080, 'u', 'pw'), 'X-A', '1')),
        ('httpCaching', lambda: qt.proxy(4, 'h', 3128)),
        ('ftpCaching', lambda: with_caps(qt, qt.proxy(5, 'h', 21), 1)),
    ]
    for label, make in cases:
        qt.P.setApplicationProxy(make())
        app = qt.P.applicationProxy()
        log.value(label, qt.fields(app) + [qt.names(app)])
        log.value(label + '.isNoProxy', app == qt.proxy(2))
    reset_application_proxy(qt)


def with_caps(qt, p, caps):
    qt.set_caps(p, caps)
    return p


def with_raw(qt, p, name, value):
    qt.set_raw(p, name, value)
    return p


@both('proxy.cachingTransparent')
def proxy_caching_transparent(qt, p, log):
    for t in TYPES:
        row = []
        for caps in CAP_SETS:
            x = qt.proxy(t)
            if caps is not None:
                qt.set_caps(x, caps)
            row.append([x.isCachingProxy(), x.isTransparentProxy()])
        log.value('type%d' % t, row)


@both('proxy.headers.raw')
def proxy_headers_raw(qt, p, log):
    x = qt.proxy(3)
    for name, value in [('A', '1'), ('B', '2'), ('a', '3'), ('C', ''), ('', 'v')]:
        qt.set_raw(x, name, value)
    log.value('names', qt.names(x))
    log.value('A', qt.raw(x, 'A'))
    log.value('has', [x.hasRawHeader(b'c'), x.hasRawHeader(b'C'), x.hasRawHeader(b'D')])
    log.value('missing', qt.raw(x, 'D'))
    qt.set_raw(x, 'B', None)
    log.value('afterRemove', qt.names(x))
    qt.set_raw(x, 'Nothing', None)
    log.value('removeMissing', qt.names(x))
    for t in TYPES:
        y = qt.proxy(t)
        qt.set_raw(y, 'X-A', '1')
        qt.set_header(y, 7, 'ua/1')
        log.value('type%d' % t, [qt.names(y), y.hasRawHeader(b'x-a'), qt.raw(y, 'X-A'), qt.header(y, 7)])
    z = qt.proxy(3)
    qt.set_header(z, 7, 'u')
    z.setType(qt.P.ProxyType(1))
    log.value('asSocks5', [qt.names(z), qt.header(z, 7)])
    z.setType(qt.P.ProxyType(4))
    log.value('asHttpCaching', [qt.names(z), qt.header(z, 7)])
    a = with_raw(qt, qt.proxy(3, 'h', 1), 'A', '1')
    log.value('equalIgnoresHeaders', a == qt.proxy(3, 'h', 1))
    # A header setter ends a null proxy's null state, whatever the type (its getters would
    # crash Qt on a null proxy, so none is called).
    n = qt.proxy()
    qt.set_raw(n, 'A', '1')
    m = qt.proxy()
    qt.set_header(m, 7, 'x')
    log.value('nullAfterSetters', [n == qt.proxy(), m == qt.proxy(), n == qt.proxy(0)])


# [header, value spec]; Last-Modified 3, If-Modified-Since 9, Location 2, Content-Length 1,
# Content-Type 0, User-Agent 7, ETag 10, If-Match 11, Cookie 4, Set-Cookie 5.
SET_HEADER = [
    [1, 12],
    [1, '12'],
    [1, 1.5],
    [1, 'abc'],
    [1, True],
    [1, ''],
    [0, 5],
    [0, 'text/plain'],
    [7, 'ü-agent'],
    [3, ['date', 1994, 11, 6, 8, 49, 37]],
    [9, ['date', 2024, 2, 29, 23, 59, 59]],
    [3, 'yesterday'],
    [7, ['date', 1994, 11, 6, 8, 49, 37]],
    [2, ['url', 'http://example.com/a b?q=1#f']],
    [2, 'rel/path'],
    [7, ['url', 'http://x/']],
    [10, '"a"'],
    [11, '"a", "b"'],
    [4, 'a=b'],
    [4, 5],
    [5, 5.5],
    [5, False],
]


@both('proxy.headers.known')
def proxy_headers_known(qt, p, log):
    for h, spec in SET_HEADER:
        x = qt.proxy(3)
        qt.set_header(x, h, spec)
        log.value('set', [h, qt.header(x, h), [[n, qt.raw(x, n)] for n in qt.names(x)]])
    x = qt.proxy(3)
    qt.set_header(x, 1, 5)
    qt.set_header(x, 7, 'u')
    qt.set_header(x, 1, None)
    log.value('removed', [qt.names(x), qt.header(x, 1), qt.header(x, 7)])
    qt.set_raw(x, 'Content-Length', '9')
    log.value('rawAfterRemove', qt.header(x, 1))
    y = qt.proxy(3)
    qt.set_header(y, 1, 5)
    qt.set_raw(y, 'Content-Length', 'x')
    log.value('lengthOnce', qt.header(y, 1))
    qt.set_raw(y, 'content-length', '7')
    log.value('lengthOnceAgain', [qt.header(y, 1), qt.names(y)])
    z = qt.proxy(3)
    qt.set_raw(z, 'Content-Length', 'x')
    qt.set_raw(z, 'Content-Length', '7')
    log.value('lengthInvalidFirst', qt.header(z, 1))
    u = qt.proxy(3)
    qt.set_header(u, 7, 'u')
    qt.set_raw(u, 'user-agent', '')
    log.value('emptyRaw', [qt.names(u), qt.header(u, 7)])


# [raw name, raw value, header number]
PARSE = [
    ['content-length', ' 42 ', 1],
    ['Content-Length', 'x', 1],
    ['Content-Length', '-3', 1],
    ['Content-Length', '+8', 1],
    ['Content-Length', '', 1],
    ['Last-Modified', 'Sun, 06 Nov 1994 08:49:37 GMT', 3],
    ['Last-Modified', 'Sunday, 06-Nov-94 08:49:37 GMT', 3],
    ['Last-Modified', 'Sun Nov  6 08:49:37 1994', 3],
    ['If-Modified-Since', 'Sun, 6 Nov 1994 8:49:37 GMT', 9],
    ['If-Modified-Since', 'Thu, 29 Feb 2024 23:59:59 GMT', 9],
    ['Last-Modified', 'garbage', 3],
    ['Last-Modified', 'Sun, 31 Feb 1994 08:49:37 GMT', 3],
    ['Last-Modified', 'Sun, 06 nov 1994 08:49:37 GMT', 3],
    ['Last-Modified', 'Sunday, 06-Nov-1994 08:49:37 GMT', 3],
    ['Last-Modified', 'Sun, 06 Nov 1994 08:49 GMT', 3],
    ['Last-Modified', ' Sun, 06 Nov 1994 08:49:37 GMT ', 3],
    ['Location', 'http://e.com/x', 2],
    ['Location', '/relative', 2],
    ['If-Match', '"a", W/"b", c', 11],
    ['If-None-Match', '"a", W/"b", c', 12],
    ['If-Match', ' * ', 11],
    ['If-Match', 'c', 11],
    ['ETag', ' W/"x" ', 10],
    ['ETag', 'x', 10],
    ['Server', ' s ', 8],
    ['Content-Disposition', 'attachment', 6],
    ['Content-Type', 'text/html; charset=utf-8', 0],
    ['User-Agent', '\u00fcx', 7],
]


@both('proxy.headers.parse')
def proxy_headers_parse(qt, p, log):
    for name, value, h in PARSE:
        x = qt.proxy(3)
        qt.set_raw(x, name, value)
        log.value('parse', [name, value, qt.header(x, h), qt.raw(x, name)])


@both('proxy.swap')
def proxy_swap(qt, p, log):
    a = with_raw(qt, qt.proxy(3, 'h', 1, 'u', 'p'), 'A', '1')
    b = with_caps(qt, qt.proxy(1, 'k', 2), 2)
    a.swap(b)
    log.value('a', qt.fields(a) + [qt.names(a)])
    log.value('b', qt.fields(b) + [qt.names(b)])
    a.setType(qt.P.ProxyType(3))
    log.value('stickyCaps', qt.num(a.capabilities()))
    c = qt.proxy(3)
    d = qt.proxy()
    c.swap(d)
    log.value('nullSwapped', [c == qt.proxy(), d == qt.proxy(), d == qt.proxy(3)])


# --- the proxy's headers on the wire: HTTP CONNECT through the spec's recording proxy
# (p['proxyPort']), which appends the request's header lines to the events


CONNECT_TARGET = 'qt-proxy-headers.invalid'


def connect_with_headers(major, p, log):
    if major == 5:
        from PyQt5.QtNetwork import QTcpSocket

        qt, wait_until, settle = QT5, kit.wait_until, kit.settle
    else:
        from PyQt6.QtNetwork import QTcpSocket

        qt, wait_until, settle = qt6(), loop6().wait_until, loop6().settle
    proxy = qt.proxy(3, '127.0.0.1', p['proxyPort'])
    qt.set_raw(proxy, 'X-Trace', 'abc')
    qt.set_raw(proxy, 'x-empty', '')
    qt.set_raw(proxy, 'X-Latin', 'f\u00fcr')
    qt.set_header(proxy, 1, 0)
    qt.set_raw(proxy, 'user-agent', 'agent/2')
    qt.set_raw(proxy, 'X-Trace', 'def')
    s = QTcpSocket()
    s.setProxy(proxy)
    s.connectToHost(CONNECT_TARGET, 4242)
    wait_until(lambda: num(s.state()) in (0, 3), what='connected')
    log.value('state', num(s.state()))
    s.abort()
    settle()


@scenario('proxy.connect.headers')
def proxy_connect_headers(scope, p, log):
    connect_with_headers(5, p, log)


@scenario('proxy.connect.headers.qt6')
def proxy_connect_headers_qt6(scope, p, log):
    connect_with_headers(6, p, log)


# --- documented differences (known-differences.ts)


@scenario('proxy.known.headers')
def proxy_known_headers(scope, p, log):
    qt = QT5
    for name, value, h in [
        ['Cookie', 'a=b; c=d', 4],
        ['Set-Cookie', 'a=b; Path=/', 5],
        ['Last-Modified', 'Sun, 06 Nov 1994 08:49:37 UTC', 3],
        ['Last-Modified', 'Sun, 06 Nov 1994 24:00:00 GMT', 3],
        ['Last-Modified', 'Sun Nov 6 8:49 1994', 3],
    ]:
        x = qt.proxy(3)
        qt.set_raw(x, name, value)
        v = x.header(qt.K(h))
        # A cookie list is logged by its length (the port has no QNetworkCookie).
        log.value('parse', [name, value, ('cookies:%d' % len(v)) if isinstance(v, list) else qt.show(v)])


# --- QLocalServer: close() and the last error (Qt 5.15; Qt 6.4 is the same). p['stale'] is a
# stale socket file (listening there fails: AddressInUseError), p['path'] a free path.


@scenario('localServer.close.afterListen')
def local_server_close_after_listen(scope, p, log):
    from PyQt5.QtNetwork import QLocalServer

    server = scope.keep(QLocalServer())
    log.value('listen', server.listen(p['stale']))
    log.server_step('failed listen', server)
    log.value('listen', server.listen(p['path']))
    log.server_step('listening', server)
    server.close()
    log.server_step('closed', server)
    server.close()
    log.server_step('closed again', server)


@scenario('localServer.close.notListening')
def local_server_close_not_listening(scope, p, log):
    from PyQt5.QtNetwork import QLocalServer

    server = scope.keep(QLocalServer())
    log.value('listen', server.listen(p['stale']))
    log.server_step('failed listen', server)
    server.close()
    log.server_step('closed', server)
    server.close()
    log.server_step('closed again', server)
    log.value('listen', server.listen(''))
    log.server_step('failed listen (empty name)', server)
    server.close()
    log.server_step('closed', server)


# --- QLocalSocket: abort() and close() on Qt 6 (the port's reference)


class Loop6:
    """The Qt 6 event loop, for the qt6 local scenarios (kit's helpers run Qt 5's)."""

    def __init__(self):
        from PyQt6.QtCore import QCoreApplication, QEventLoop, QTimer

        self.QEventLoop, self.QTimer = QEventLoop, QTimer
        self.app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])

    def spin(self, ms):
        loop = self.QEventLoop()
        self.QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_until(self, predicate, ms=5000, what='condition'):
        deadline = time.monotonic() + ms / 1000.0
        while not predicate():
            if time.monotonic() > deadline:
                raise kit.ScenarioTimeout('timed out after %d ms waiting for %s' % (ms, what))
            self.spin(5)

    def settle(self):
        self.spin(kit.SETTLE_MS)


_loop6 = []


def loop6():
    if not _loop6:
        _loop6.append(Loop6())
    return _loop6[0]


def num(e):
    return int(getattr(e, 'value', e))


def record6(sock, log):
    """kit.record for a PyQt6 QLocalSocket (same lines)."""
    sock.stateChanged.connect(lambda s: log.add('stateChanged(%d)' % num(s)))
    sock.connected.connect(lambda: log.add('connected'))
    sock.readyRead.connect(lambda: log.add('readyRead(%d)' % sock.bytesAvailable()))
    sock.bytesWritten.connect(lambda n: log.add('bytesWritten(%d)' % n))
    sock.errorOccurred.connect(
        lambda e: log.add('errorOccurred(%d, %s, state=%d)' % (num(e), kit.js(sock.errorString()), num(sock.state())))
    )
    sock.readChannelFinished.connect(lambda: log.add('readChannelFinished'))
    sock.aboutToClose.connect(lambda: log.add('aboutToClose'))
    sock.disconnected.connect(lambda: log.add('disconnected'))


def step6(log, label, s):
    log.mark(label)
    log.value('state', num(s.state()))
    log.value('error', num(s.error()))
    log.value('errorString', s.errorString())
    log.value('isOpen', s.isOpen())


def watch_inside6(s, log):
    """Logs, inside the slots, whether the device is still open (and the state in aboutToClose)."""
    s.stateChanged.connect(lambda _s: log.add('  isOpen=%s' % kit.js(s.isOpen())))
    s.disconnected.connect(lambda: log.add('  isOpen=%s' % kit.js(s.isOpen())))
    s.aboutToClose.connect(lambda: log.add('  state=%d isOpen=%s' % (num(s.state()), kit.js(s.isOpen()))))


def connected_pair6(scope, p):
    """A listening Qt 6 server at p['path'], a client connected to it and the server's end."""
    from PyQt6.QtNetwork import QLocalServer, QLocalSocket

    loop = loop6()
    server = scope.keep(QLocalServer())
    if not server.listen(p['path']):
        raise RuntimeError('listen failed: %s' % server.errorString())
    client = scope.keep(QLocalSocket())
    client.connectToServer(p['path'])
    loop.wait_until(lambda: num(client.state()) == 3, what='connected')
    loop.wait_until(server.hasPendingConnections, what='accepted')
    peer = scope.keep(server.nextPendingConnection())
    loop.settle()
    return client, peer


@scenario('local.qt6.abort.connected')
def local_abort_connected(scope, p, log):
    client, _peer = connected_pair6(scope, p)
    record6(client, log)
    watch_inside6(client, log)
    log.value('write', client.write(b'abc'))
    client.abort()
    step6(log, 'abort returns', client)
    log.value('bytesToWrite', client.bytesToWrite())
    log.value('isValid', client.isValid())
    log.value('serverName', client.serverName())
    loop6().settle()
    log.mark('settled')
    client.abort()
    step6(log, 'abort again returns', client)


@scenario('local.qt6.abort.afterPeerClosed')
def local_abort_after_peer_closed(scope, p, log):
    client, peer = connected_pair6(scope, p)
    record6(client, log)
    peer.abort()
    loop6().wait_until(lambda: num(client.state()) == 0, what='peer close seen')
    loop6().settle()
    step6(log, 'peer closed', client)
    client.abort()
    step6(log, 'abort returns', client)


@scenario('local.qt6.abort.afterDisconnectFromServer')
def local_abort_after_disconnect(scope, p, log):
    client, _peer = connected_pair6(scope, p)
    record6(client, log)
    client.disconnectFromServer()
    loop6().wait_until(lambda: num(client.state()) == 0, what='disconnected')
    loop6().settle()
    step6(log, 'disconnected', client)
    client.abort()
    step6(log, 'abort returns', client)


@scenario('local.qt6.abort.unconnected')
def local_abort_unconnected(scope, p, log):
    from PyQt6.QtNetwork import QLocalSocket

    loop6()
    client = scope.keep(QLocalSocket())
    record6(client, log)
    client.abort()
    step6(log, 'abort returns', client)


@scenario('local.qt6.abort.afterFailedConnect')
def local_abort_after_failed_connect(scope, p, log):
    from PyQt6.QtNetwork import QLocalSocket

    loop = loop6()
    client = scope.keep(QLocalSocket())
    client.connectToServer(p['missing'])
    loop.wait_until(lambda: num(client.state()) == 0, what='failed')
    loop.settle()
    record6(client, log)
    step6(log, 'failed', client)
    client.abort()
    step6(log, 'abort returns', client)


@scenario('local.qt6.close.connected')
def local_close_connected(scope, p, log):
    client, _peer = connected_pair6(scope, p)
    record6(client, log)
    watch_inside6(client, log)
    client.close()
    step6(log, 'close returns', client)
    loop6().settle()
    log.mark('settled')
    client.abort()
    step6(log, 'abort after close returns', client)


if __name__ == '__main__':
    sys.exit(kit.main(SCENARIOS))
