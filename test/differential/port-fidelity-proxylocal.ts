/**
 * QNetworkProxy's value API, QLocalServer.close() and QLocalSocket.abort() on the port: the
 * twins of the scenarios in fidelity_proxylocal.py, which make the same calls on real Qt.
 * Each twin logs the same lines in the same order. The proxy scenarios have one twin for
 * both Qt versions (`name` and `name.qt6`: Qt 5.15 and 6.4 agree); the QLocalSocket ones are
 * compared with Qt 6 (`local.qt6.*`), which the port follows.
 *
 * Header values are logged as the driver logs them: strings, numbers, booleans and lists as
 * JSON, a Date as "date:<ISO 8601, UTC, seconds>", a URL as "url:<href>", none as null.
 */
import {
  KnownHeaders,
  ProxyType,
  QLocalServer,
  QLocalSocket,
  QNetworkProxy,
  QTcpSocket,
  type HeaderValue,
  type ParsedHeaderValue,
} from '../../lib/qtnetwork/index.js';

import {
  record,
  settle,
  waitUntil,
  type EventLog,
  type Scenario,
  type ScenarioParams,
  type Scope,
} from './port-scenarios.js';

const T = ProxyType;

function proxy(type?: ProxyType, host = '', port = 0, user = '', password = ''): QNetworkProxy {
  return type === undefined
    ? new QNetworkProxy()
    : new QNetworkProxy(type, host, port, user, password);
}

function fields(p: QNetworkProxy): unknown[] {
  return [p.type(), p.hostName(), p.port(), p.user(), p.password(), p.capabilities()];
}

function names(p: QNetworkProxy): string[] {
  return p.rawHeaderList().map((n) => n.toString('latin1'));
}

function show(v: ParsedHeaderValue | null): unknown {
  if (v instanceof Date) return `date:${v.toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
  if (v instanceof URL) return `url:${v.href}`;
  return v;
}

function header(p: QNetworkProxy, h: KnownHeaders): unknown {
  return show(p.header(h));
}

/** A date spec: ['date', y, m, d, h, mi, s] (UTC); a URL spec: ['url', text]. */
type ValueSpec =
  HeaderValue | ['date', number, number, number, number, number, number] | ['url', string];

function value(spec: ValueSpec): HeaderValue {
  if (Array.isArray(spec)) {
    if (spec[0] === 'date') {
      const [, y, mo, d, h, mi, s] = spec;
      return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
    }
    return new URL(spec[1]);
  }
  return spec;
}

/** Sets a raw header from Latin-1 text (as the driver encodes it); null removes it. */
function setRaw(p: QNetworkProxy, name: string, v: string | null): void {
  p.setRawHeader(Buffer.from(name, 'latin1'), v === null ? null : Buffer.from(v, 'latin1'));
}

function raw(p: QNetworkProxy, name: string): string {
  return p.rawHeader(Buffer.from(name, 'latin1')).toString('latin1');
}

function withCaps(p: QNetworkProxy, caps: number): QNetworkProxy {
  p.setCapabilities(caps);
  return p;
}

function withRaw(p: QNetworkProxy, name: string, v: string): QNetworkProxy {
  setRaw(p, name, v);
  return p;
}

const TYPES = [0, 1, 2, 3, 4, 5] as ProxyType[];
const CAP_SETS: Array<number | null> = [null, 0, 8, 1, 9, 2 | 16];

// ---------------------------------------------------------------- QNetworkProxy

function applicationProxy(log: EventLog): void {
  const cases: Array<[string, () => QNetworkProxy]> = [
    ['default', () => proxy(T.DefaultProxy, 'h', 5, 'u', 'pw')],
    ['defaultCaps', () => withCaps(proxy(T.DefaultProxy, 'h', 5, 'u', 'pw'), 8)],
    ['noProxyFields', () => proxy(T.NoProxy, 'h', 5, 'u', 'pw')],
    ['socks5', () => proxy(T.Socks5Proxy, 'h', 5, 'u', 'pw')],
    ['http', () => withRaw(proxy(T.HttpProxy, 'h', 8080, 'u', 'pw'), 'X-A', '1')],
    ['httpCaching', () => proxy(T.HttpCachingProxy, 'h', 3128)],
    ['ftpCaching', () => withCaps(proxy(T.FtpCachingProxy, 'h', 21), 1)],
  ];
  for (const [label, make] of cases) {
    QNetworkProxy.setApplicationProxy(make());
    const app = QNetworkProxy.applicationProxy();
    log.value(label, [...fields(app), names(app)]);
    log.value(`${label}.isNoProxy`, app.isEqual(proxy(T.NoProxy)));
  }
  QNetworkProxy.setApplicationProxy(proxy(T.NoProxy));
}

function cachingTransparent(log: EventLog): void {
  for (const t of TYPES) {
    const row = CAP_SETS.map((caps) => {
      const x = proxy(t);
      if (caps !== null) x.setCapabilities(caps);
      return [x.isCachingProxy(), x.isTransparentProxy()];
    });
    log.value(`type${t}`, row);
  }
}

function headersRaw(log: EventLog): void {
  const x = proxy(T.HttpProxy);
  for (const [name, v] of [
    ['A', '1'],
    ['B', '2'],
    ['a', '3'],
    ['C', ''],
    ['', 'v'],
  ]) {
    setRaw(x, name, v);
  }
  log.value('names', names(x));
  log.value('A', raw(x, 'A'));
  log.value('has', [x.hasRawHeader('c'), x.hasRawHeader('C'), x.hasRawHeader('D')]);
  log.value('missing', raw(x, 'D'));
  setRaw(x, 'B', null);
  log.value('afterRemove', names(x));
  setRaw(x, 'Nothing', null);
  log.value('removeMissing', names(x));
  for (const t of TYPES) {
    const y = proxy(t);
    setRaw(y, 'X-A', '1');
    y.setHeader(KnownHeaders.UserAgentHeader, 'ua/1');
    log.value(`type${t}`, [
      names(y),
      y.hasRawHeader('x-a'),
      raw(y, 'X-A'),
      header(y, KnownHeaders.UserAgentHeader),
    ]);
  }
  const z = proxy(T.HttpProxy);
  z.setHeader(KnownHeaders.UserAgentHeader, 'u');
  z.setType(T.Socks5Proxy);
  log.value('asSocks5', [names(z), header(z, KnownHeaders.UserAgentHeader)]);
  z.setType(T.HttpCachingProxy);
  log.value('asHttpCaching', [names(z), header(z, KnownHeaders.UserAgentHeader)]);
  const a = withRaw(proxy(T.HttpProxy, 'h', 1), 'A', '1');
  log.value('equalIgnoresHeaders', a.isEqual(proxy(T.HttpProxy, 'h', 1)));
  const n = proxy();
  setRaw(n, 'A', '1');
  const m = proxy();
  m.setHeader(KnownHeaders.UserAgentHeader, 'x');
  log.value('nullAfterSetters', [
    n.isEqual(proxy()),
    m.isEqual(proxy()),
    n.isEqual(proxy(T.DefaultProxy)),
  ]);
}

/** [header, value spec], as SET_HEADER in the driver. */
const SET_HEADER: Array<[KnownHeaders, ValueSpec]> = [
  [1, 12],
  [1, '12'],
  [1, 1.5],
  [1, 'abc'],
  [1, true],
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
  [5, false],
];

function headersKnown(log: EventLog): void {
  const K = KnownHeaders;
  for (const [h, spec] of SET_HEADER) {
    const x = proxy(T.HttpProxy);
    x.setHeader(h, value(spec));
    log.value('set', [h, header(x, h), names(x).map((n) => [n, raw(x, n)])]);
  }
  const x = proxy(T.HttpProxy);
  x.setHeader(K.ContentLengthHeader, 5);
  x.setHeader(K.UserAgentHeader, 'u');
  x.setHeader(K.ContentLengthHeader, null);
  log.value('removed', [names(x), header(x, K.ContentLengthHeader), header(x, K.UserAgentHeader)]);
  setRaw(x, 'Content-Length', '9');
  log.value('rawAfterRemove', header(x, K.ContentLengthHeader));
  const y = proxy(T.HttpProxy);
  y.setHeader(K.ContentLengthHeader, 5);
  setRaw(y, 'Content-Length', 'x');
  log.value('lengthOnce', header(y, K.ContentLengthHeader));
  setRaw(y, 'content-length', '7');
  log.value('lengthOnceAgain', [header(y, K.ContentLengthHeader), names(y)]);
  const z = proxy(T.HttpProxy);
  setRaw(z, 'Content-Length', 'x');
  setRaw(z, 'Content-Length', '7');
  log.value('lengthInvalidFirst', header(z, K.ContentLengthHeader));
  const u = proxy(T.HttpProxy);
  u.setHeader(K.UserAgentHeader, 'u');
  setRaw(u, 'user-agent', '');
  log.value('emptyRaw', [names(u), header(u, K.UserAgentHeader)]);
}

/** [raw name, raw value, header], as PARSE in the driver. */
const PARSE: Array<[string, string, KnownHeaders]> = [
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
];

function headersParse(log: EventLog): void {
  for (const [name, v, h] of PARSE) {
    const x = proxy(T.HttpProxy);
    setRaw(x, name, v);
    log.value('parse', [name, v, header(x, h), raw(x, name)]);
  }
}

function swap(log: EventLog): void {
  const a = withRaw(proxy(T.HttpProxy, 'h', 1, 'u', 'p'), 'A', '1');
  const b = withCaps(proxy(T.Socks5Proxy, 'k', 2), 2);
  a.swap(b);
  log.value('a', [...fields(a), names(a)]);
  log.value('b', [...fields(b), names(b)]);
  a.setType(T.HttpProxy);
  log.value('stickyCaps', a.capabilities());
  const c = proxy(T.HttpProxy);
  const d = proxy();
  c.swap(d);
  log.value('nullSwapped', [c.isEqual(proxy()), d.isEqual(proxy()), d.isEqual(proxy(T.HttpProxy))]);
}

const CONNECT_TARGET = 'qt-proxy-headers.invalid';

async function connectWithHeaders(p: ScenarioParams, log: EventLog): Promise<void> {
  const px = proxy(T.HttpProxy, '127.0.0.1', p.proxyPort!);
  setRaw(px, 'X-Trace', 'abc');
  setRaw(px, 'x-empty', '');
  setRaw(px, 'X-Latin', 'f\u00fcr');
  px.setHeader(KnownHeaders.ContentLengthHeader, 0);
  setRaw(px, 'user-agent', 'agent/2');
  setRaw(px, 'X-Trace', 'def');
  const s = new QTcpSocket();
  s.setProxy(px);
  s.connectToHost(CONNECT_TARGET, 4242);
  await waitUntil(() => [0, 3].includes(s.state()), 5000, 'connected');
  log.value('state', s.state());
  s.abort();
  await settle();
}

function both(
  name: string,
  run: (p: ScenarioParams, log: EventLog) => void | Promise<void>,
): Record<string, Scenario> {
  const scenario: Scenario = async (_scope, p, log) => run(p, log);
  return { [name]: scenario, [`${name}.qt6`]: scenario };
}

// ---------------------------------------------------------------- QLocalServer

function serverStep(log: EventLog, label: string, server: QLocalServer): void {
  log.serverStep(label, server);
}

// ---------------------------------------------------------------- QLocalSocket (Qt 6)

function step6(log: EventLog, label: string, s: QLocalSocket): void {
  log.mark(label);
  log.value('state', s.state());
  log.value('error', s.error());
  log.value('errorString', s.errorString());
  log.value('isOpen', s.isOpen());
}

function watchInside(s: QLocalSocket, log: EventLog): void {
  s.stateChanged.connect(() => log.add(`  isOpen=${JSON.stringify(s.isOpen())}`));
  s.disconnected.connect(() => log.add(`  isOpen=${JSON.stringify(s.isOpen())}`));
  s.aboutToClose.connect(() =>
    log.add(`  state=${s.state()} isOpen=${JSON.stringify(s.isOpen())}`),
  );
}

async function connectedPair(
  scope: Scope,
  p: ScenarioParams,
): Promise<{ client: QLocalSocket; peer: QLocalSocket }> {
  const server = scope.keep(new QLocalServer());
  if (!(await server.listen(p.path!))) throw new Error(`listen failed: ${server.errorString()}`);
  const client = scope.keep(new QLocalSocket());
  client.connectToServer(p.path!);
  await waitUntil(() => client.state() === 3, 5000, 'connected');
  await waitUntil(() => server.hasPendingConnections(), 5000, 'accepted');
  const peer = scope.keep(server.nextPendingConnection()!);
  await settle();
  return { client, peer };
}

export const PROXYLOCAL_SCENARIOS: Record<string, Scenario> = {
  ...both('proxy.applicationProxy', (_p, log) => applicationProxy(log)),
  ...both('proxy.cachingTransparent', (_p, log) => cachingTransparent(log)),
  ...both('proxy.headers.raw', (_p, log) => headersRaw(log)),
  ...both('proxy.headers.known', (_p, log) => headersKnown(log)),
  ...both('proxy.headers.parse', (_p, log) => headersParse(log)),
  ...both('proxy.swap', (_p, log) => swap(log)),
  ...both('proxy.connect.headers', connectWithHeaders),

  async 'proxy.known.headers'(_scope, _p, log) {
    const K = KnownHeaders;
    for (const [name, v, h] of [
      ['Cookie', 'a=b; c=d', K.CookieHeader],
      ['Set-Cookie', 'a=b; Path=/', K.SetCookieHeader],
      ['Last-Modified', 'Sun, 06 Nov 1994 08:49:37 UTC', K.LastModifiedHeader],
      ['Last-Modified', 'Sun, 06 Nov 1994 24:00:00 GMT', K.LastModifiedHeader],
      ['Last-Modified', 'Sun Nov 6 8:49 1994', K.LastModifiedHeader],
    ] as Array<[string, string, KnownHeaders]>) {
      const x = proxy(T.HttpProxy);
      setRaw(x, name, v);
      const parsed = x.header(h);
      log.value('parse', [
        name,
        v,
        Array.isArray(parsed) ? `cookies:${parsed.length}` : show(parsed),
      ]);
    }
  },

  async 'localServer.close.afterListen'(scope, p, log) {
    const server = scope.keep(new QLocalServer());
    log.value('listen', await server.listen(p.stale!));
    serverStep(log, 'failed listen', server);
    log.value('listen', await server.listen(p.path!));
    serverStep(log, 'listening', server);
    server.close();
    serverStep(log, 'closed', server);
    server.close();
    serverStep(log, 'closed again', server);
  },

  async 'localServer.close.notListening'(scope, p, log) {
    const server = scope.keep(new QLocalServer());
    log.value('listen', await server.listen(p.stale!));
    serverStep(log, 'failed listen', server);
    server.close();
    serverStep(log, 'closed', server);
    server.close();
    serverStep(log, 'closed again', server);
    log.value('listen', await server.listen(''));
    serverStep(log, 'failed listen (empty name)', server);
    server.close();
    serverStep(log, 'closed', server);
  },

  async 'local.qt6.abort.connected'(scope, p, log) {
    const { client } = await connectedPair(scope, p);
    record(client, log);
    watchInside(client, log);
    log.value('write', client.write('abc'));
    client.abort();
    step6(log, 'abort returns', client);
    log.value('bytesToWrite', client.bytesToWrite());
    log.value('isValid', client.isValid());
    log.value('serverName', client.serverName());
    await settle();
    log.mark('settled');
    client.abort();
    step6(log, 'abort again returns', client);
  },

  async 'local.qt6.abort.afterPeerClosed'(scope, p, log) {
    const { client, peer } = await connectedPair(scope, p);
    record(client, log);
    peer.abort();
    await waitUntil(() => client.state() === 0, 5000, 'peer close seen');
    await settle();
    step6(log, 'peer closed', client);
    client.abort();
    step6(log, 'abort returns', client);
  },

  async 'local.qt6.abort.afterDisconnectFromServer'(scope, p, log) {
    const { client } = await connectedPair(scope, p);
    record(client, log);
    client.disconnectFromServer();
    await waitUntil(() => client.state() === 0, 5000, 'disconnected');
    await settle();
    step6(log, 'disconnected', client);
    client.abort();
    step6(log, 'abort returns', client);
  },

  async 'local.qt6.abort.unconnected'(scope, _p, log) {
    const client = scope.keep(new QLocalSocket());
    record(client, log);
    client.abort();
    step6(log, 'abort returns', client);
  },

  async 'local.qt6.abort.afterFailedConnect'(scope, p, log) {
    const client = scope.keep(new QLocalSocket());
    client.connectToServer(p.missing!);
    await waitUntil(() => client.state() === 0, 5000, 'failed');
    await settle();
    record(client, log);
    step6(log, 'failed', client);
    client.abort();
    step6(log, 'abort returns', client);
  },

  async 'local.qt6.close.connected'(scope, p, log) {
    const { client } = await connectedPair(scope, p);
    record(client, log);
    watchInside(client, log);
    client.close();
    step6(log, 'close returns', client);
    await settle();
    log.mark('settled');
    client.abort();
    step6(log, 'abort after close returns', client);
  },
};
