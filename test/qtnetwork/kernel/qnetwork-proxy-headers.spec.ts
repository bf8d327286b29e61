/**
 * QNetworkProxy's value API beyond type/host/port: setApplicationProxy of a DefaultProxy,
 * isCachingProxy/isTransparentProxy, the header API (KnownHeaders with Qt's values, raw
 * headers) and swap. The expected values were recorded from Qt 5.15 (PyQt5) and Qt 6.4
 * (PyQt6), which agree on all of them; test/differential/fidelity-proxylocal.spec.ts
 * compares them live. Where the port differs (no QNetworkCookie; HTTP dates read strictly),
 * docs/qt-differences.md ("Proxies") says so.
 */
import {
  KnownHeaders,
  ProxyCapability,
  ProxyType,
  QNetworkProxy,
} from '../../../lib/qtnetwork/index.js';
import { captureQtMessages } from '../../helpers/socket-log.js';

afterEach(() => QNetworkProxy.setApplicationProxy(new QNetworkProxy(ProxyType.NoProxy)));

const T = ProxyType;
const K = KnownHeaders;
const ALL_TYPES = [
  T.DefaultProxy,
  T.Socks5Proxy,
  T.NoProxy,
  T.HttpProxy,
  T.HttpCachingProxy,
  T.FtpCachingProxy,
];

function fields(p: QNetworkProxy): unknown[] {
  return [p.type(), p.hostName(), p.port(), p.user(), p.password(), p.capabilities()];
}

function names(p: QNetworkProxy): string[] {
  return p.rawHeaderList().map((n) => n.toString('latin1'));
}

function http(): QNetworkProxy {
  return new QNetworkProxy(T.HttpProxy);
}

/** Runs `fn` and returns the Qt warnings it printed. */
function warningsOf(fn: () => void): string[] {
  const captured = captureQtMessages();
  try {
    fn();
  } finally {
    captured.restore();
  }
  return captured.messages;
}

describe('setApplicationProxy(DefaultProxy)', () => {
  it('stores a blank NoProxy: no host, port, credentials or headers; capabilities of NoProxy (0x67)', () => {
    const p = new QNetworkProxy(T.DefaultProxy, 'h', 5, 'u', 'pw');
    p.setCapabilities(ProxyCapability.CachingCapability);
    QNetworkProxy.setApplicationProxy(p);
    const app = QNetworkProxy.applicationProxy();
    expect(fields(app)).toEqual([T.NoProxy, '', 0, '', '', 0x67]);
    expect(app.isEqual(new QNetworkProxy(T.NoProxy))).toBe(true);
    expect(app.isEqual(new QNetworkProxy())).toBe(false);
  });

  it('any other type is stored with all its fields', () => {
    QNetworkProxy.setApplicationProxy(new QNetworkProxy(T.Socks5Proxy, 'h', 5, 'u', 'pw'));
    expect(fields(QNetworkProxy.applicationProxy())).toEqual([
      T.Socks5Proxy,
      'h',
      5,
      'u',
      'pw',
      0x17,
    ]);
  });
});

describe('isCachingProxy / isTransparentProxy: by capability, as in Qt', () => {
  it.each(ALL_TYPES)('type %i with its default capabilities', (type) => {
    const p = new QNetworkProxy(type);
    const caching = [T.HttpProxy, T.HttpCachingProxy, T.FtpCachingProxy].includes(type);
    const transparent = [T.DefaultProxy, T.Socks5Proxy, T.NoProxy, T.HttpProxy].includes(type);
    expect([p.isCachingProxy(), p.isTransparentProxy()]).toEqual([caching, transparent]);
  });

  it.each(ALL_TYPES)('type %i: the capabilities decide, whatever the type', (type) => {
    const answers = [
      0,
      ProxyCapability.CachingCapability,
      ProxyCapability.TunnelingCapability,
      ProxyCapability.CachingCapability | ProxyCapability.TunnelingCapability,
    ].map((caps) => {
      const p = new QNetworkProxy(type);
      p.setCapabilities(caps);
      return [p.isCachingProxy(), p.isTransparentProxy()];
    });
    expect(answers).toEqual([
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]);
  });
});

describe('KnownHeaders', () => {
  it("has Qt's values and is reachable from QNetworkProxy", () => {
    expect(QNetworkProxy.KnownHeaders).toBe(KnownHeaders);
    expect([
      K.ContentTypeHeader,
      K.ContentLengthHeader,
      K.LocationHeader,
      K.LastModifiedHeader,
      K.CookieHeader,
      K.SetCookieHeader,
      K.ContentDispositionHeader,
      K.UserAgentHeader,
      K.ServerHeader,
      K.IfModifiedSinceHeader,
      K.ETagHeader,
      K.IfMatchHeader,
      K.IfNoneMatchHeader,
    ]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });
});

describe('raw headers', () => {
  it('keep their order; a name set again (any case) moves to the end with its new spelling; an empty value stays; null removes; an empty name is ignored', () => {
    const p = http();
    p.setRawHeader('A', '1');
    p.setRawHeader('B', '2');
    p.setRawHeader('a', '3');
    p.setRawHeader('C', '');
    p.setRawHeader('', 'v');
    expect(names(p)).toEqual(['B', 'a', 'C']);
    expect(p.rawHeader('A').toString()).toBe('3');
    expect([p.hasRawHeader('c'), p.hasRawHeader('D')]).toEqual([true, false]);
    expect(p.rawHeader('D')).toEqual(Buffer.alloc(0));
    p.setRawHeader('B', null);
    expect(names(p)).toEqual(['a', 'C']);
  });

  it('exist only for HttpProxy and HttpCachingProxy; they come back when the type does', () => {
    for (const type of ALL_TYPES) {
      const p = new QNetworkProxy(type);
      p.setRawHeader('X-A', '1');
      p.setHeader(K.UserAgentHeader, 'ua/1');
      const kept = type === T.HttpProxy || type === T.HttpCachingProxy;
      expect([names(p), p.hasRawHeader('x-a'), p.header(K.UserAgentHeader)]).toEqual(
        kept ? [['X-A', 'User-Agent'], true, 'ua/1'] : [[], false, null],
      );
    }
    const p = http();
    p.setHeader(K.UserAgentHeader, 'u');
    p.setType(T.Socks5Proxy);
    expect([names(p), p.header(K.UserAgentHeader)]).toEqual([[], null]);
    p.setType(T.HttpProxy);
    expect([names(p), p.header(K.UserAgentHeader)]).toEqual([['User-Agent'], 'u']);
  });

  it('setting one on a null QNetworkProxy() ends its null state, whatever the type (Qt detaches)', () => {
    const n = new QNetworkProxy();
    n.setRawHeader('A', '1');
    const m = new QNetworkProxy();
    m.setHeader(K.UserAgentHeader, 'x');
    expect([n.isEqual(new QNetworkProxy()), m.isEqual(new QNetworkProxy())]).toEqual([
      false,
      false,
    ]);
    expect(n.isEqual(new QNetworkProxy(T.DefaultProxy))).toBe(true);
    // Qt 5.15 and 6.4 crash reading headers of a null proxy; the port answers: none.
    expect([names(new QNetworkProxy()), new QNetworkProxy().header(K.UserAgentHeader)]).toEqual([
      [],
      null,
    ]);
  });

  it('are not compared by isEqual', () => {
    const a = http();
    a.setRawHeader('A', '1');
    expect(a.isEqual(http())).toBe(true);
  });
});

describe('setHeader: the value is kept as given, the raw form as Qt writes it', () => {
  const date = new Date(Date.UTC(1994, 10, 6, 8, 49, 37));
  it.each<[string, KnownHeaders, string | number | boolean | Date | URL, string]>([
    ['number', K.ContentLengthHeader, 12, '12'],
    ['string', K.ContentLengthHeader, '12', '12'],
    ['fraction', K.ContentLengthHeader, 1.5, '1.5'],
    ['unparseable string', K.ContentLengthHeader, 'abc', 'abc'],
    ['boolean', K.ContentLengthHeader, true, 'true'],
    ['number as text header', K.ContentTypeHeader, 5, '5'],
    ['UTF-8 text', K.UserAgentHeader, 'ü-agent', 'Ã¼-agent'],
    ['Date', K.LastModifiedHeader, date, 'Sun, 06 Nov 1994 08:49:37 GMT'],
    ['string date', K.LastModifiedHeader, 'yesterday', 'yesterday'],
    ['URL', K.LocationHeader, new URL('http://example.com/a b'), 'http://example.com/a%20b'],
    ['relative string', K.LocationHeader, 'rel/path', 'rel/path'],
    ['ETag', K.ETagHeader, '"a"', '"a"'],
    ['If-Match text', K.IfMatchHeader, '"a", "b"', '"a", "b"'],
  ])('%s', (_what, header, value, raw) => {
    const p = http();
    expect(warningsOf(() => p.setHeader(header, value))).toEqual([]);
    expect(p.header(header)).toEqual(value);
    expect(p.rawHeaderList().length).toBe(1);
    expect(p.rawHeader(p.rawHeaderList()[0]).toString('latin1')).toBe(raw);
  });

  it.each<[KnownHeaders, string | number | boolean | Date | URL, string]>([
    [K.UserAgentHeader, new Date(0), 'QDateTime cannot be used with header User-Agent'],
    [K.UserAgentHeader, new URL('http://x/'), 'QUrl cannot be used with header User-Agent'],
    [K.CookieHeader, 'a=b', 'QString cannot be used with header Cookie'],
    [K.CookieHeader, 5, 'int cannot be used with header Cookie'],
    [K.CookieHeader, 5.5, 'double cannot be used with header Cookie'],
    [K.SetCookieHeader, true, 'bool cannot be used with header Set-Cookie'],
    [K.ContentLengthHeader, '', 'QString cannot be used with header Content-Length'],
  ])("a type Qt cannot use (%i, %p): Qt's warning, nothing set", (header, value, warning) => {
    const p = http();
    expect(warningsOf(() => p.setHeader(header, value))).toEqual([
      `QNetworkRequest::setHeader: QVariant of type ${warning}`,
    ]);
    expect([names(p), p.header(header)]).toEqual([[], null]);
  });

  it('an unknown header number: warning, nothing set', () => {
    const p = http();
    expect(warningsOf(() => p.setHeader(99 as KnownHeaders, 'a'))).toEqual([
      'QNetworkRequest::setHeader: invalid header value KnownHeader(99) received',
    ]);
    expect(names(p)).toEqual([]);
  });

  it('null removes the header and its raw form', () => {
    const p = http();
    p.setHeader(K.ContentLengthHeader, 5);
    p.setHeader(K.ContentLengthHeader, null);
    expect([names(p), p.header(K.ContentLengthHeader)]).toEqual([[], null]);
  });

  it('a returned Date, URL or array is a copy', () => {
    const p = http();
    p.setHeader(K.LastModifiedHeader, new Date(0));
    (p.header(K.LastModifiedHeader) as Date).setTime(5);
    expect((p.header(K.LastModifiedHeader) as Date).getTime()).toBe(0);
    p.setRawHeader('If-Match', '"a"');
    (p.header(K.IfMatchHeader) as string[]).push('x');
    expect(p.header(K.IfMatchHeader)).toEqual(['"a"']);
  });
});

describe('setRawHeader of a known header: parsed as Qt parses it', () => {
  const nov6 = new Date(Date.UTC(1994, 10, 6, 8, 49, 37));
  it.each<[string, string, KnownHeaders, unknown]>([
    ['content-length', ' 42 ', K.ContentLengthHeader, 42],
    ['Content-Length', 'x', K.ContentLengthHeader, null],
    ['Content-Length', '-3', K.ContentLengthHeader, -3],
    ['Content-Length', '', K.ContentLengthHeader, null],
    ['Last-Modified', 'Sun, 06 Nov 1994 08:49:37 GMT', K.LastModifiedHeader, nov6],
    ['Last-Modified', 'Sunday, 06-Nov-94 08:49:37 GMT', K.LastModifiedHeader, nov6],
    ['Last-Modified', 'Sun Nov  6 08:49:37 1994', K.LastModifiedHeader, nov6],
    ['If-Modified-Since', 'Sun, 6 Nov 1994 8:49:37 GMT', K.IfModifiedSinceHeader, nov6],
    ['Last-Modified', 'garbage', K.LastModifiedHeader, null],
    ['Last-Modified', 'Sun, 31 Feb 1994 08:49:37 GMT', K.LastModifiedHeader, null],
    ['Last-Modified', 'Sun, 06 nov 1994 08:49:37 GMT', K.LastModifiedHeader, null],
    ['Last-Modified', 'Sunday, 06-Nov-1994 08:49:37 GMT', K.LastModifiedHeader, null],
    ['Location', 'http://e.com/x', K.LocationHeader, new URL('http://e.com/x')],
    ['Location', '/relative', K.LocationHeader, null],
    ['If-Match', '"a", W/"b", c', K.IfMatchHeader, ['"a"']],
    ['If-None-Match', '"a", W/"b", c', K.IfNoneMatchHeader, ['"a"', 'W/"b"']],
    ['If-Match', ' * ', K.IfMatchHeader, ['*']],
    ['ETag', ' W/"x" ', K.ETagHeader, 'W/"x"'],
    ['ETag', 'x', K.ETagHeader, null],
    ['Server', ' s ', K.ServerHeader, ' s '],
    ['Content-Disposition', 'attachment', K.ContentDispositionHeader, 'attachment'],
    ['Cookie', 'a=b; c=d', K.CookieHeader, null],
  ])('%s: %p', (name, value, header, expected) => {
    const p = http();
    p.setRawHeader(name, value);
    expect(p.header(header)).toEqual(expected);
    expect(p.rawHeader(name).toString('latin1')).toBe(value);
  });

  it('bytes are read as Latin-1', () => {
    const p = http();
    p.setRawHeader('User-Agent', Buffer.from([0xfc, 0x78]));
    expect(p.header(K.UserAgentHeader)).toBe('üx');
  });

  it('an empty raw value of a text header reads as ""', () => {
    const p = http();
    p.setHeader(K.UserAgentHeader, 'u');
    p.setRawHeader('user-agent', '');
    expect([names(p), p.header(K.UserAgentHeader)]).toEqual([['user-agent'], '']);
  });

  it('Content-Length is parsed once: a later raw value leaves the parsed one (QTBUG-15311)', () => {
    const p = http();
    p.setHeader(K.ContentLengthHeader, 5);
    p.setRawHeader('Content-Length', 'x');
    expect(p.header(K.ContentLengthHeader)).toBe(5);
    p.setRawHeader('content-length', '7');
    expect([p.header(K.ContentLengthHeader), names(p)]).toEqual([5, ['content-length']]);
  });
});

describe('swap', () => {
  it('exchanges every field, headers included', () => {
    const a = new QNetworkProxy(T.HttpProxy, 'h', 1, 'u', 'p');
    a.setRawHeader('A', '1');
    const b = new QNetworkProxy(T.Socks5Proxy, 'k', 2);
    b.setCapabilities(ProxyCapability.ListeningCapability);
    a.swap(b);
    expect([...fields(a), names(a)]).toEqual([T.Socks5Proxy, 'k', 2, '', '', 0x2, []]);
    expect([...fields(b), names(b)]).toEqual([T.HttpProxy, 'h', 1, 'u', 'p', 0x19, ['A']]);
    // The sticky capabilities travel too: b's type change keeps a's default set.
    a.setType(T.HttpProxy);
    expect(a.capabilities()).toBe(0x2);
  });
});
