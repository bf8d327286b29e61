/**
 * Which proxy a QTcpSocket uses, in Qt 5.15's order: the socket's own proxy unless it is
 * DefaultProxy; else the application proxy, or the application proxy factory, or the
 * system configuration (environment variables), each setter replacing the other two; never
 * an application-level proxy for localhost and loopback targets. Plus the value classes
 * (QNetworkProxy, QNetworkProxyQuery, QAuthenticator).
 *
 * Connections go to relaying proxies scripted on loopback (test/helpers/scripted-proxy.ts)
 * that record what they were asked, and to local echo servers; names such as
 * "qt-proxy-test.invalid" only ever reach a proxy, which relays them to the echo server,
 * so the test sees which proxy was asked. "0.0.0.0" is used as a target that is not
 * loopback by Qt's bypass rule and that Linux still routes to the local host.
 *
 * Expected behaviour is Qt's (see the proxy behaviour spec), adjusted by the documented
 * differences (docs/qt-differences.md, "Proxies"): the system configuration is off by
 * default; environment names are read lower-case first, then upper-case; URLs without a
 * port use 1080 (socks5, socks5h) and 8080 (http); socks5h is a normal SOCKS5 proxy;
 * no_proxy is case-insensitive, `*` matches everything, entries match the host and its
 * subdomains at a dot boundary and `host:port` entries match that port only.
 */
import * as dns from 'node:dns';
import * as net from 'node:net';

import { jest } from '@jest/globals';

import {
  ProxyCapability,
  ProxyType,
  QAuthenticator,
  QNetworkProxy,
  QNetworkProxyFactory,
  QNetworkProxyQuery,
  QTcpSocket,
  QueryType,
  SocketError,
  SocketState,
} from '../../../lib/qtnetwork/index.js';
import { hasIPv6Loopback } from '../../helpers/net.js';
import { captureQtMessages, readLineFrom } from '../../helpers/qt-scope.js';
import { Resources } from '../../helpers/resources.js';
import {
  httpRelay,
  readSocksGreeting,
  readSocksRequest,
  readSocksUserPass,
  socksRelay,
  socksReply,
  startEchoServer,
  startScriptedProxy,
  type EchoServer,
  type RelayLog,
  type ScriptedProxy,
} from '../../helpers/scripted-proxy.js';
import { sleep } from '../../helpers/signals.js';
import { recordSignals, type SignalLog } from '../../helpers/socket-log.js';

jest.setTimeout(10000);

// ------------------------------------------------------------------ global state

const PROXY_VARS = ['all_proxy', 'http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy'].flatMap(
  (n) => [n, n.toUpperCase()],
);
let savedEnv: Record<string, string | undefined> = {};

function resetGlobalProxySettings(): void {
  QNetworkProxy.setApplicationProxy(new QNetworkProxy(ProxyType.NoProxy));
  QNetworkProxyFactory.setApplicationProxyFactory(null);
  QNetworkProxyFactory.setUseSystemConfiguration(false);
}

const res = new Resources();

beforeEach(() => {
  savedEnv = {};
  for (const name of PROXY_VARS) {
    savedEnv[name] = process.env[name];
    delete process.env[name];
  }
  resetGlobalProxySettings();
});

afterEach(async () => {
  try {
    await res.dispose();
  } finally {
    resetGlobalProxySettings();
    for (const name of PROXY_VARS) {
      if (savedEnv[name] === undefined) delete process.env[name];
      else process.env[name] = savedEnv[name];
    }
  }
});

// ------------------------------------------------------------------ fixtures

const NAME_TARGET = 'qt-proxy-test.invalid';
const NAME_PORT = 7;

interface Relay {
  proxy: ScriptedProxy;
  log: RelayLog;
  /** As a QNetworkProxy of its type. */
  qt(): QNetworkProxy;
  /** Its URL for an environment variable (scheme://127.0.0.1:port). */
  url(scheme?: string): string;
}

interface World {
  echo: EchoServer;
  /** Two SOCKS5 relays and one HTTP relay, all relaying to `echo`. */
  socksA: Relay;
  socksB: Relay;
  http: Relay;
}

async function relay(kind: 'socks5' | 'http', echo: EchoServer): Promise<Relay> {
  const log: RelayLog = { targets: [], requests: [] };
  const upstream = (): { host: string; port: number } => ({ host: echo.host, port: echo.port });
  const proxy = await startScriptedProxy(
    kind === 'socks5' ? socksRelay(upstream, log) : httpRelay(upstream, log),
  );
  res.add(() => proxy.close());
  const type = kind === 'socks5' ? ProxyType.Socks5Proxy : ProxyType.HttpProxy;
  return {
    proxy,
    log,
    qt: () => new QNetworkProxy(type, '127.0.0.1', proxy.port),
    url: (scheme = kind) => `${scheme}://127.0.0.1:${proxy.port}`,
  };
}

async function echoServer(host = '127.0.0.1'): Promise<EchoServer> {
  const echo = await startEchoServer(host);
  res.add(() => echo.close());
  return echo;
}

async function world(): Promise<World> {
  const echo = await echoServer();
  return {
    echo,
    socksA: await relay('socks5', echo),
    socksB: await relay('socks5', echo),
    http: await relay('http', echo),
  };
}

/** A factory that records its queries and answers with `answer()`. */
class RecordingFactory extends QNetworkProxyFactory {
  readonly queries: QNetworkProxyQuery[] = [];
  constructor(private readonly answer: () => QNetworkProxy[]) {
    super();
  }
  override queryProxy(query: QNetworkProxyQuery): QNetworkProxy[] {
    this.queries.push(query);
    return this.answer();
  }
}

function newSocket(): { socket: QTcpSocket; rec: SignalLog } {
  const socket = res.socket(new QTcpSocket());
  return { socket, rec: recordSignals(socket) };
}

/** Connects, then checks that the echo answers through whatever path was taken. */
async function connectAndEcho(socket: QTcpSocket, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      offC();
      offE();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no connection to ${host}:${port} within 5 s (state ${socket.state()})`));
    }, 5000);
    const offC = socket.connected.connect(() => {
      done();
      resolve();
    });
    const offE = socket.errorOccurred.connect((e) => {
      done();
      reject(new Error(`errorOccurred(${e}) "${socket.errorString()}" connecting to ${host}`));
    });
    socket.connectToHost(host, port);
  });
  socket.write('ping\n');
  expect(await readLineFrom(socket)).toBe('ping\n');
}

function describeProxy(p: QNetworkProxy): string {
  const name = ProxyType[p.type()];
  return p.type() === ProxyType.NoProxy || p.type() === ProxyType.DefaultProxy
    ? name
    : `${name}(${p.hostName()}:${p.port()})`;
}

function describeList(list: QNetworkProxy[]): string[] {
  return list.map(describeProxy);
}

/** All accepted connections of the relays in `w`. */
function proxyConnections(w: World): number {
  return (
    w.socksA.proxy.connections.length +
    w.socksB.proxy.connections.length +
    w.http.proxy.connections.length
  );
}

// ====================================================================== the socket's own proxy

type GlobalMode = 'application proxy' | 'factory' | 'system configuration';
const GLOBAL_MODES: GlobalMode[] = ['application proxy', 'factory', 'system configuration'];

/** Makes `relay` the application-level proxy in `mode`; returns the factory if any. */
function installGlobal(mode: GlobalMode, r: Relay): RecordingFactory | null {
  switch (mode) {
    case 'application proxy':
      QNetworkProxy.setApplicationProxy(r.qt());
      return null;
    case 'factory': {
      const f = new RecordingFactory(() => [r.qt()]);
      QNetworkProxyFactory.setApplicationProxyFactory(f);
      return f;
    }
    case 'system configuration':
      process.env.all_proxy = r.url();
      QNetworkProxyFactory.setUseSystemConfiguration(true);
      return null;
  }
}

describe("the socket's own proxy", () => {
  it.each(GLOBAL_MODES)(
    'an explicit SOCKS5 proxy wins over the %s, even for a 127.0.0.1 target',
    async (mode) => {
      const w = await world();
      const factory = installGlobal(mode, w.socksA);
      const { socket } = newSocket();
      socket.setProxy(w.socksB.qt());
      await connectAndEcho(socket, '127.0.0.1', w.echo.port);
      expect(w.socksB.log.targets).toEqual([`127.0.0.1:${w.echo.port}`]);
      expect(w.socksA.proxy.connections).toHaveLength(0);
      if (factory) expect(factory.queries).toHaveLength(0);
    },
  );

  it('an explicit HTTP proxy wins over the application proxy', async () => {
    const w = await world();
    QNetworkProxy.setApplicationProxy(w.socksA.qt());
    const { socket } = newSocket();
    socket.setProxy(w.http.qt());
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.http.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
    expect(w.socksA.proxy.connections).toHaveLength(0);
  });

  it.each(GLOBAL_MODES)(
    'an explicit NoProxy connects directly although the %s would proxy the target',
    async (mode) => {
      const w = await world();
      const factory = installGlobal(mode, w.socksA);
      // The target is not bypassed by the loopback rule: the global setting would proxy it.
      expect(
        describeList(QNetworkProxyFactory.proxyForQuery(new QNetworkProxyQuery('0.0.0.0', 1)))[0],
      ).toBe(describeProxy(w.socksA.qt()));
      factory?.queries.splice(0);
      const { socket, rec } = newSocket();
      socket.setProxy(new QNetworkProxy(ProxyType.NoProxy));
      await connectAndEcho(socket, '0.0.0.0', w.echo.port);
      expect(proxyConnections(w)).toBe(0);
      expect(w.echo.accepted).toHaveLength(1);
      expect(rec.log.slice(0, 5)).toEqual([
        'stateChanged(1)',
        'stateChanged(2)',
        'hostFound',
        'stateChanged(3)',
        'connected',
      ]);
      if (factory) expect(factory.queries).toHaveLength(0);
    },
  );

  it('proxy() returns what setProxy stored (a copy); DefaultProxy by default', () => {
    const socket = res.socket(new QTcpSocket());
    expect(socket.proxy().type()).toBe(ProxyType.DefaultProxy);
    const p = new QNetworkProxy(ProxyType.Socks5Proxy, 'h', 1080, 'u', 'pw');
    socket.setProxy(p);
    p.setHostName('changed');
    expect(
      socket.proxy().isEqual(new QNetworkProxy(ProxyType.Socks5Proxy, 'h', 1080, 'u', 'pw')),
    ).toBe(true);
  });
});

// ====================================================================== application proxy

describe('DefaultProxy on the socket: the application proxy', () => {
  it('a SOCKS5 application proxy is asked for a name target (sent unresolved, no hostFound)', async () => {
    const w = await world();
    QNetworkProxy.setApplicationProxy(w.socksA.qt());
    const { socket, rec } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.socksA.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
    expect(rec.log.slice(0, 4)).toEqual([
      'stateChanged(1)',
      'stateChanged(2)',
      'stateChanged(3)',
      'connected',
    ]);
  });

  it('an HTTP application proxy is asked for a name target', async () => {
    const w = await world();
    QNetworkProxy.setApplicationProxy(w.http.qt());
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.http.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
  });

  it('an application proxy that cannot tunnel (HttpCachingProxy): errorOccurred(10) inside connectToHost, no stateChanged', () => {
    QNetworkProxy.setApplicationProxy(
      new QNetworkProxy(ProxyType.HttpCachingProxy, '127.0.0.1', 3128),
    );
    const { socket, rec } = newSocket();
    socket.connectToHost(NAME_TARGET, NAME_PORT);
    rec.mark('[returns]');
    expect(rec.log).toEqual([
      'errorOccurred(10, "Operation on socket is not supported", state=0)',
      '[returns]',
    ]);
    expect(socket.state()).toBe(SocketState.UnconnectedState);
  });

  it('applicationProxy() is NoProxy by default; setApplicationProxy(DefaultProxy) stores NoProxy', () => {
    expect(QNetworkProxy.applicationProxy().type()).toBe(ProxyType.NoProxy);
    QNetworkProxy.setApplicationProxy(new QNetworkProxy(ProxyType.Socks5Proxy, 'h', 1));
    expect(describeProxy(QNetworkProxy.applicationProxy())).toBe('Socks5Proxy(h:1)');
    QNetworkProxy.setApplicationProxy(new QNetworkProxy(ProxyType.DefaultProxy, 'h', 1));
    expect(QNetworkProxy.applicationProxy().type()).toBe(ProxyType.NoProxy);
    expect(
      describeList(QNetworkProxyFactory.proxyForQuery(new QNetworkProxyQuery('x.example', 1))),
    ).toEqual(['NoProxy']);
  });
});

// ====================================================================== factory

describe('the application proxy factory', () => {
  it('queryProxy gets a TcpSocket query (peer host, peer port, empty tag) and its proxy is used', async () => {
    const w = await world();
    const factory = new RecordingFactory(() => [w.socksA.qt()]);
    QNetworkProxyFactory.setApplicationProxyFactory(factory);
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(factory.queries).toHaveLength(1);
    const q = factory.queries[0];
    expect({
      peerHostName: q.peerHostName(),
      peerPort: q.peerPort(),
      queryType: q.queryType(),
      protocolTag: q.protocolTag(),
    }).toEqual({
      peerHostName: NAME_TARGET,
      peerPort: NAME_PORT,
      queryType: QueryType.TcpSocket,
      protocolTag: '',
    });
    expect(QueryType.TcpSocket).toBe(0);
    expect(w.socksA.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
  });

  it('installing a factory replaces the application proxy', async () => {
    const w = await world();
    QNetworkProxy.setApplicationProxy(w.socksA.qt());
    const factory = new RecordingFactory(() => [w.socksB.qt()]);
    QNetworkProxyFactory.setApplicationProxyFactory(factory);
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.socksB.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
    expect(w.socksA.proxy.connections).toHaveLength(0);
    expect(factory.queries).toHaveLength(1);
  });

  it('setApplicationProxy replaces the factory (which is then never asked)', async () => {
    const w = await world();
    const factory = new RecordingFactory(() => [w.socksB.qt()]);
    QNetworkProxyFactory.setApplicationProxyFactory(factory);
    QNetworkProxy.setApplicationProxy(w.socksA.qt());
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.socksA.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
    expect(w.socksB.proxy.connections).toHaveLength(0);
    expect(factory.queries).toHaveLength(0);
  });

  it('setApplicationProxyFactory(null) with no factory installed changes nothing (the application proxy stays)', () => {
    QNetworkProxy.setApplicationProxy(new QNetworkProxy(ProxyType.Socks5Proxy, 'h', 1));
    QNetworkProxyFactory.setApplicationProxyFactory(null);
    expect(
      describeList(QNetworkProxyFactory.proxyForQuery(new QNetworkProxyQuery('x.example', 1))),
    ).toEqual(['Socks5Proxy(h:1)']);
  });

  it('an empty result warns "QNetworkProxyFactory: factory has returned an empty result set" and connects directly', async () => {
    const w = await world();
    const factory = new RecordingFactory(() => []);
    QNetworkProxyFactory.setApplicationProxyFactory(factory);
    const qt = captureQtMessages();
    res.add(() => qt.restore());
    const { socket } = newSocket();
    await connectAndEcho(socket, '0.0.0.0', w.echo.port);
    expect(factory.queries).toHaveLength(1);
    expect(qt.messages).toEqual(['QNetworkProxyFactory: factory has returned an empty result set']);
    expect(proxyConnections(w)).toBe(0);
    expect(w.echo.accepted).toHaveLength(1);
  });

  it.each([
    [
      'only a non-tunnelling proxy (HttpCachingProxy)',
      () => [new QNetworkProxy(ProxyType.HttpCachingProxy, '127.0.0.1', 3128)],
    ],
    [
      '[DefaultProxy] (passed through; it cannot be used)',
      () => [new QNetworkProxy(ProxyType.DefaultProxy)],
    ],
  ])(
    'a factory returning %s: errorOccurred(10) inside connectToHost, no stateChanged',
    (_what, answer) => {
      QNetworkProxyFactory.setApplicationProxyFactory(new RecordingFactory(answer));
      const { socket, rec } = newSocket();
      socket.connectToHost(NAME_TARGET, NAME_PORT);
      rec.mark('[returns]');
      expect(rec.log).toEqual([
        'errorOccurred(10, "Operation on socket is not supported", state=0)',
        '[returns]',
      ]);
      expect(socket.error()).toBe(SocketError.UnsupportedSocketOperationError);
      expect(socket.state()).toBe(SocketState.UnconnectedState);
    },
  );

  it('the first candidate with TunnelingCapability wins: [HttpCaching, Socks5 B, Socks5 A] uses B', async () => {
    const w = await world();
    QNetworkProxyFactory.setApplicationProxyFactory(
      new RecordingFactory(() => [
        new QNetworkProxy(ProxyType.HttpCachingProxy, '127.0.0.1', 1),
        w.socksB.qt(),
        w.socksA.qt(),
      ]),
    );
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.socksB.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
    expect(w.socksA.proxy.connections).toHaveLength(0);
  });

  it('applicationProxy() with a factory installed is the factory\'s first answer for an empty query (Qt calls it with host "")', () => {
    const factory = new RecordingFactory(() => [new QNetworkProxy(ProxyType.Socks5Proxy, 'f', 9)]);
    QNetworkProxyFactory.setApplicationProxyFactory(factory);
    expect(describeProxy(QNetworkProxy.applicationProxy())).toBe('Socks5Proxy(f:9)');
    expect(factory.queries.map((q) => q.peerHostName())).toEqual(['']);
  });
});

// ====================================================================== system configuration

describe('the system configuration (environment variables)', () => {
  function system(query: QNetworkProxyQuery = new QNetworkProxyQuery('example.com', 80)): string[] {
    return describeList(QNetworkProxyFactory.systemProxyForQuery(query));
  }

  it('is off by default (a documented difference: Debian Qt turns it on)', async () => {
    expect(QNetworkProxyFactory.usesSystemConfiguration()).toBe(false);
    const w = await world();
    process.env.all_proxy = w.socksA.url();
    const { socket } = newSocket();
    await connectAndEcho(socket, '0.0.0.0', w.echo.port);
    expect(proxyConnections(w)).toBe(0);
  });

  it('all_proxy=socks5://127.0.0.1:<port> is used for a name target', async () => {
    const w = await world();
    process.env.all_proxy = w.socksA.url();
    QNetworkProxyFactory.setUseSystemConfiguration(true);
    expect(QNetworkProxyFactory.usesSystemConfiguration()).toBe(true);
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.socksA.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
  });

  it('the environment is read at connect time (a variable set after enabling is seen)', async () => {
    const w = await world();
    QNetworkProxyFactory.setUseSystemConfiguration(true);
    process.env.all_proxy = w.socksB.url();
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.socksB.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
  });

  it('without all_proxy, http_proxy is the fallback (HTTP CONNECT)', async () => {
    const w = await world();
    process.env.http_proxy = w.http.url();
    QNetworkProxyFactory.setUseSystemConfiguration(true);
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.http.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
  });

  it('all_proxy wins over http_proxy', async () => {
    const w = await world();
    process.env.http_proxy = w.http.url();
    process.env.all_proxy = w.socksA.url();
    QNetworkProxyFactory.setUseSystemConfiguration(true);
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.socksA.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
    expect(w.http.proxy.connections).toHaveLength(0);
  });

  it('socks5h:// is a normal SOCKS5 proxy, usable for tunnels (documented difference)', async () => {
    const w = await world();
    process.env.all_proxy = w.socksA.url('socks5h');
    QNetworkProxyFactory.setUseSystemConfiguration(true);
    expect(system()).toEqual([`Socks5Proxy(127.0.0.1:${w.socksA.proxy.port})`]);
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.socksA.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
  });

  it('upper-case ALL_PROXY is read when all_proxy is not set (documented difference)', async () => {
    const w = await world();
    process.env.ALL_PROXY = w.socksA.url();
    QNetworkProxyFactory.setUseSystemConfiguration(true);
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(w.socksA.log.targets).toEqual([`${NAME_TARGET}:${NAME_PORT}`]);
  });

  it('lower-case names win over upper-case ones', () => {
    process.env.all_proxy = 'socks5://lower:1';
    process.env.ALL_PROXY = 'socks5://upper:2';
    expect(system()).toEqual(['Socks5Proxy(lower:1)']);
    delete process.env.all_proxy;
    expect(system()).toEqual(['Socks5Proxy(upper:2)']);
    process.env.HTTP_PROXY = 'http://uh:3';
    delete process.env.ALL_PROXY;
    expect(system()).toEqual(['HttpProxy(uh:3)']);
  });

  it('credentials in the URL are percent-decoded and reach the proxy', async () => {
    process.env.all_proxy = 'socks5://us%40er:p%3Aw@s:1';
    const [p] = QNetworkProxyFactory.systemProxyForQuery(new QNetworkProxyQuery('example.com', 80));
    expect([p.user(), p.password(), p.hostName(), p.port()]).toEqual(['us@er', 'p:w', 's', 1]);

    const echo = await echoServer();
    let seen: { user: string; password: string } | null = null;
    const proxy = await startScriptedProxy(async (conn) => {
      const greeting = await readSocksGreeting(conn);
      if (!greeting.methods.includes(2)) {
        conn.write([5, 0xff]);
        return;
      }
      conn.write([5, 2]);
      seen = await readSocksUserPass(conn);
      conn.write([1, 0]);
      await readSocksRequest(conn);
      const up = net.connect({ host: echo.host, port: echo.port });
      await new Promise((r) => up.once('connect', r));
      conn.write(socksReply(0));
      conn.pipeTo(up);
    });
    res.add(() => proxy.close());
    process.env.all_proxy = `socks5://al%40ice:p%3Aw@127.0.0.1:${proxy.port}`;
    QNetworkProxyFactory.setUseSystemConfiguration(true);
    const { socket } = newSocket();
    await connectAndEcho(socket, NAME_TARGET, NAME_PORT);
    expect(seen).toMatchObject({ user: 'al@ice', password: 'p:w' });
  });

  it.each([
    ['socks5://s', 'Socks5Proxy(s:1080)'],
    ['socks5h://s', 'Socks5Proxy(s:1080)'],
    ['http://h', 'HttpProxy(h:8080)'],
    ['socks5://s:1081', 'Socks5Proxy(s:1081)'],
    ['http://h:3128', 'HttpProxy(h:3128)'],
    ['SOCKS5://S:1', 'Socks5Proxy(s:1)'],
    ['socks5://[::1]:1', 'Socks5Proxy(::1:1)'],
    ['socks4://s:9', 'NoProxy'],
    ['socks://s:9', 'NoProxy'],
    ['https://h:443', 'NoProxy'],
  ])(
    'all_proxy=%s → %s (default ports: 1080 for socks5/socks5h, 8080 for http)',
    (value, expected) => {
      process.env.all_proxy = value;
      expect(system()).toEqual([expected]);
    },
  );

  it('an empty all_proxy gives NoProxy', () => {
    process.env.all_proxy = '';
    expect(system()).toEqual(['NoProxy']);
  });

  it('socks5 capabilities from the environment are the normal ones (23)', () => {
    process.env.all_proxy = 'socks5h://s:9';
    expect(
      QNetworkProxyFactory.systemProxyForQuery(
        new QNetworkProxyQuery('a.example', 1),
      )[0].capabilities(),
    ).toBe(23);
  });

  describe('no_proxy', () => {
    const ROWS: Array<[string, string, number, boolean]> = [
      // no_proxy, host, port, bypassed?
      ['example.com', 'example.com', 80, true],
      ['example.com', 'www.example.com', 80, true],
      ['example.com', 'notexample.com', 80, false],
      ['ample.com', 'example.com', 80, false],
      ['com', 'example.com', 80, true],
      ['.example.com', 'example.com', 80, true],
      ['.example.com', 'www.example.com', 80, true],
      ['*.example.com', 'example.com', 80, true],
      ['*.example.com', 'www.example.com', 80, true],
      ['*', 'anything.example', 80, true],
      [' a.com , example.com ', 'example.com', 80, true],
      ['EXAMPLE.COM', 'example.com', 80, true],
      ['example.com', 'EXAMPLE.COM', 80, true],
      ['example.com.', 'example.com', 80, true],
      ['10.0.0.1', '10.0.0.1', 80, true],
      ['0.0.1', '10.0.0.1', 80, false],
      ['10.0.0.0/8', '10.0.0.1', 80, false],
      ['example.com:80', 'example.com', 80, true],
      ['example.com:80', 'example.com', 8080, false],
      ['::1', '::1', 80, true],
      ['', 'example.com', 80, false],
      [',', 'example.com', 80, false],
    ];

    it.each(ROWS)('no_proxy=%j, host %s port %i: bypassed %s', (noProxy, host, port, bypassed) => {
      process.env.all_proxy = 'socks5://s:1';
      process.env.no_proxy = noProxy;
      expect(system(new QNetworkProxyQuery(host, port))).toEqual([
        bypassed ? 'NoProxy' : 'Socks5Proxy(s:1)',
      ]);
    });

    it('upper-case NO_PROXY is read too (documented difference)', () => {
      process.env.all_proxy = 'socks5://s:1';
      process.env.NO_PROXY = 'example.com';
      expect(system(new QNetworkProxyQuery('www.example.com', 80))).toEqual(['NoProxy']);
    });

    it('a no_proxy match makes the socket connect directly', async () => {
      const w = await world();
      process.env.all_proxy = w.socksA.url();
      process.env.no_proxy = 'foo.example, 0.0.0.0';
      QNetworkProxyFactory.setUseSystemConfiguration(true);
      const { socket } = newSocket();
      await connectAndEcho(socket, '0.0.0.0', w.echo.port);
      expect(proxyConnections(w)).toBe(0);
      expect(w.echo.accepted).toHaveLength(1);
    });
  });

  describe('by query type and protocol tag', () => {
    function url(tag: string): QNetworkProxyQuery {
      return new QNetworkProxyQuery('example.com', 80, tag, QueryType.UrlRequest);
    }

    it('all four set: UrlRequest http / https / ftp / foo use http_proxy / https_proxy / ftp_proxy / all_proxy', () => {
      process.env.https_proxy = 'socks5://hs:3';
      process.env.ftp_proxy = 'http://f:4';
      process.env.all_proxy = 'socks5://a:5';
      process.env.http_proxy = 'http://h:6';
      expect([url('http'), url('https'), url('ftp'), url('foo')].map((q) => system(q))).toEqual([
        ['HttpProxy(h:6)'],
        ['Socks5Proxy(hs:3)'],
        ['HttpProxy(f:4)'],
        ['Socks5Proxy(a:5)'],
      ]);
    });

    it('http_proxy only: UrlRequest http, https, ftp, foo and a TcpSocket tagged "http" all fall back to it', () => {
      process.env.http_proxy = 'http://h:1';
      expect(
        [
          url('http'),
          url('https'),
          url('ftp'),
          url('foo'),
          new QNetworkProxyQuery('example.com', 80, 'http'),
        ].map((q) => system(q)),
      ).toEqual([
        ['HttpProxy(h:1)'],
        ['HttpProxy(h:1)'],
        ['HttpProxy(h:1)'],
        ['HttpProxy(h:1)'],
        ['HttpProxy(h:1)'],
      ]);
    });

    it('all_proxy only: UrlRequest http / https / ftp get NoProxy (all_proxy is not consulted for them)', () => {
      process.env.all_proxy = 'socks5://s:2';
      expect([url('http'), url('https'), url('ftp')].map((q) => system(q))).toEqual([
        ['NoProxy'],
        ['NoProxy'],
        ['NoProxy'],
      ]);
    });

    it('TcpServer and UdpSocket: an HTTP proxy is not allowed, SOCKS5 is', () => {
      const server = new QNetworkProxyQuery(8000);
      const udp = new QNetworkProxyQuery('example.com', 53, '', QueryType.UdpSocket);
      process.env.http_proxy = 'http://h:1';
      expect([system(server), system(udp)]).toEqual([['NoProxy'], ['NoProxy']]);
      delete process.env.http_proxy;
      process.env.all_proxy = 'socks5://s:2';
      expect([system(server), system(udp)]).toEqual([['Socks5Proxy(s:2)'], ['Socks5Proxy(s:2)']]);
    });
  });

  describe('proxyForQuery and the setters', () => {
    it('proxyForQuery appends NoProxy to the system answer', () => {
      QNetworkProxyFactory.setUseSystemConfiguration(true);
      const q = new QNetworkProxyQuery('example.com', 80);
      expect(describeList(QNetworkProxyFactory.proxyForQuery(q))).toEqual(['NoProxy', 'NoProxy']);
      process.env.all_proxy = 'socks5://s:1';
      expect(describeList(QNetworkProxyFactory.proxyForQuery(q))).toEqual([
        'Socks5Proxy(s:1)',
        'NoProxy',
      ]);
    });

    it('setUseSystemConfiguration(true) replaces the application proxy and the factory', () => {
      process.env.all_proxy = 'socks5://s:1';
      const q = new QNetworkProxyQuery('example.com', 80);
      QNetworkProxy.setApplicationProxy(new QNetworkProxy(ProxyType.HttpProxy, 'app', 2));
      QNetworkProxyFactory.setUseSystemConfiguration(true);
      expect(describeList(QNetworkProxyFactory.proxyForQuery(q))[0]).toBe('Socks5Proxy(s:1)');
      const factory = new RecordingFactory(() => [new QNetworkProxy(ProxyType.HttpProxy, 'f', 3)]);
      QNetworkProxyFactory.setApplicationProxyFactory(factory);
      expect(QNetworkProxyFactory.usesSystemConfiguration()).toBe(false);
      QNetworkProxyFactory.setUseSystemConfiguration(true);
      expect(describeList(QNetworkProxyFactory.proxyForQuery(q))[0]).toBe('Socks5Proxy(s:1)');
      expect(factory.queries).toHaveLength(0);
    });

    it('setUseSystemConfiguration(false) does not bring the application proxy back: NoProxy', () => {
      process.env.all_proxy = 'socks5://s:1';
      QNetworkProxy.setApplicationProxy(new QNetworkProxy(ProxyType.HttpProxy, 'app', 2));
      QNetworkProxyFactory.setUseSystemConfiguration(true);
      QNetworkProxyFactory.setUseSystemConfiguration(false);
      expect(
        describeList(QNetworkProxyFactory.proxyForQuery(new QNetworkProxyQuery('example.com', 80))),
      ).toEqual(['NoProxy']);
    });

    it('setApplicationProxy turns the system configuration off', () => {
      QNetworkProxyFactory.setUseSystemConfiguration(true);
      QNetworkProxy.setApplicationProxy(new QNetworkProxy(ProxyType.HttpProxy, 'app', 2));
      expect(QNetworkProxyFactory.usesSystemConfiguration()).toBe(false);
    });

    it('applicationProxy() under the system configuration is the environment proxy (Qt: first of proxyForQuery(empty query))', () => {
      process.env.all_proxy = 'socks5://s:1';
      QNetworkProxyFactory.setUseSystemConfiguration(true);
      expect(describeProxy(QNetworkProxy.applicationProxy())).toBe('Socks5Proxy(s:1)');
    });
  });
});

// ====================================================================== loopback bypass

describe('loopback bypass for application-level proxies', () => {
  const ipv6 = hasIPv6Loopback();
  const TARGETS = [
    'localhost',
    'localhost.localdomain',
    '127.0.0.1',
    '127.5.5.5',
    '::1',
    '::ffff:127.0.0.1',
  ];
  if (!ipv6) console.log('loopback bypass: "::1" target skipped, this host has no IPv6 loopback');

  function resolves(name: string): Promise<boolean> {
    return new Promise((resolve) => dns.lookup(name, { all: true }, (err) => resolve(!err)));
  }

  const CASES = GLOBAL_MODES.flatMap((mode) =>
    TARGETS.filter((t) => ipv6 || t !== '::1').map((t) => [mode, t] as [GlobalMode, string]),
  );

  it.each(CASES)(
    'with the %s set, %s connects directly (the factory is not even called)',
    async (mode, target) => {
      const w = await world();
      const factory = installGlobal(mode, w.socksA);
      let echo = w.echo;
      if (target === '127.5.5.5') echo = await echoServer('127.5.5.5');
      if (target === '::1') echo = await echoServer('::1');
      const { socket, rec } = newSocket();
      if (net.isIP(target) === 0 && !(await resolves(target))) {
        // This host cannot resolve the name: the direct path still shows, as a local
        // lookup failing (no proxy would have been asked to resolve it).
        // Ends at errorOccurred, or at connected (a proxy resolved the name), or after 5 s.
        const ended = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5000);
          const end = (): void => {
            clearTimeout(timer);
            resolve();
          };
          socket.errorOccurred.connect(end);
          socket.connected.connect(end);
        });
        socket.connectToHost(target, echo.port);
        await ended;
        expect(rec.log).toEqual([
          'stateChanged(1)',
          'stateChanged(0)',
          'errorOccurred(2, "Host not found", state=0)',
        ]);
      } else {
        await connectAndEcho(socket, target, echo.port);
        expect(echo.accepted).toHaveLength(1);
        expect(rec.log.slice(0, 3)).toEqual(['stateChanged(1)', 'stateChanged(2)', 'hostFound']);
      }
      await sleep(10);
      expect(proxyConnections(w)).toBe(0);
      if (factory) expect(factory.queries).toHaveLength(0);
    },
  );

  it.each([
    ['LOCALHOST', true],
    ['localhost.', true],
    ['127.1.2.3', true],
    ['0:0:0:0:0:0:0:1', true],
    ['foo.localhost', false],
    ['0.0.0.0', false],
    ['localhost6', false],
    ['localhostx', false],
    ['127.0.0.1.nip.io', false],
    ['10.0.0.1', false],
    ['', false],
  ])('proxyForQuery(%j) with an application proxy: bypassed %s', (host, bypassed) => {
    QNetworkProxy.setApplicationProxy(new QNetworkProxy(ProxyType.Socks5Proxy, 'app', 1));
    expect(
      describeList(QNetworkProxyFactory.proxyForQuery(new QNetworkProxyQuery(host, 80))),
    ).toEqual([bypassed ? 'NoProxy' : 'Socks5Proxy(app:1)']);
  });
});

// ====================================================================== value classes

describe('QNetworkProxy', () => {
  it('Capability values are 1, 2, 4, 8, 16, 32, 64', () => {
    const C = ProxyCapability;
    expect([
      C.TunnelingCapability,
      C.ListeningCapability,
      C.UdpTunnelingCapability,
      C.CachingCapability,
      C.HostNameLookupCapability,
      C.SctpTunnelingCapability,
      C.SctpListeningCapability,
    ]).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(QNetworkProxy.Capability).toBe(ProxyCapability);
    expect(QNetworkProxy.ProxyType).toBe(ProxyType);
  });

  it.each([
    [ProxyType.DefaultProxy, 0, 103],
    [ProxyType.Socks5Proxy, 1, 23],
    [ProxyType.NoProxy, 2, 103],
    [ProxyType.HttpProxy, 3, 25],
    [ProxyType.HttpCachingProxy, 4, 24],
    [ProxyType.FtpCachingProxy, 5, 24],
    [99 as ProxyType, 99, 103],
  ])('type %i (value %i) has capabilities %i', (type, value, caps) => {
    expect(type).toBe(value);
    expect(new QNetworkProxy(type).capabilities()).toBe(caps);
  });

  it('QNetworkProxy() is DefaultProxy, capabilities 103, host "", port 0, no credentials', () => {
    const p = new QNetworkProxy();
    expect([p.type(), p.capabilities(), p.hostName(), p.port(), p.user(), p.password()]).toEqual([
      ProxyType.DefaultProxy,
      103,
      '',
      0,
      '',
      '',
    ]);
  });

  it('setType reloads the capabilities of the new type unless setCapabilities was called', () => {
    const p = new QNetworkProxy(ProxyType.Socks5Proxy);
    p.setType(ProxyType.HttpProxy);
    expect(p.capabilities()).toBe(25);
    const q = new QNetworkProxy(ProxyType.Socks5Proxy);
    q.setCapabilities(ProxyCapability.TunnelingCapability);
    q.setType(ProxyType.HttpProxy);
    expect(q.capabilities()).toBe(ProxyCapability.TunnelingCapability);
    q.setType(ProxyType.HttpCachingProxy);
    expect(q.capabilities()).toBe(ProxyCapability.TunnelingCapability);
  });

  it('port 0 stays 0: there is no default port', () => {
    expect(new QNetworkProxy(ProxyType.Socks5Proxy, 'h').port()).toBe(0);
    expect(new QNetworkProxy(ProxyType.Socks5Proxy, 'h', 0).port()).toBe(0);
    expect(new QNetworkProxy(ProxyType.HttpProxy, 'h').port()).toBe(0);
  });

  it('getters and setters', () => {
    const p = new QNetworkProxy();
    p.setType(ProxyType.HttpProxy);
    p.setHostName('proxy.example');
    p.setPort(3128);
    p.setUser('u');
    p.setPassword('pw');
    expect([p.type(), p.hostName(), p.port(), p.user(), p.password()]).toEqual([
      ProxyType.HttpProxy,
      'proxy.example',
      3128,
      'u',
      'pw',
    ]);
  });

  it('isEqual compares type, host (case-sensitively), port, user, password and capabilities', () => {
    const make = (): QNetworkProxy => new QNetworkProxy(ProxyType.Socks5Proxy, 'h', 1, 'u', 'p');
    expect(make().isEqual(make())).toBe(true);
    const variants: Array<(p: QNetworkProxy) => void> = [
      (p) => p.setType(ProxyType.HttpProxy),
      (p) => p.setHostName('H'),
      (p) => p.setPort(2),
      (p) => p.setUser('v'),
      (p) => p.setPassword('q'),
      (p) => p.setCapabilities(ProxyCapability.TunnelingCapability),
    ];
    for (const change of variants) {
      const other = make();
      change(other);
      expect(make().isEqual(other)).toBe(false);
    }
    // Same values, capabilities set explicitly to the same flags: equal.
    const same = make();
    same.setCapabilities(23);
    expect(make().isEqual(same)).toBe(true);
  });

  it('QNetworkProxy() equals QNetworkProxy() but not QNetworkProxy(DefaultProxy) (Qt: a null value is a distinct state)', () => {
    expect(new QNetworkProxy().isEqual(new QNetworkProxy())).toBe(true);
    expect(new QNetworkProxy().isEqual(new QNetworkProxy(ProxyType.DefaultProxy))).toBe(false);
  });
});

describe('QAuthenticator', () => {
  it('starts null with empty user, password and realm; setting either makes it non-null', () => {
    const a = new QAuthenticator();
    expect([a.user(), a.password(), a.realm(), a.isNull()]).toEqual(['', '', '', true]);
    a.setUser('alice');
    expect([a.user(), a.isNull()]).toEqual(['alice', false]);
    const b = new QAuthenticator();
    b.setPassword('pw');
    expect([b.password(), b.isNull()]).toEqual(['pw', false]);
  });
});

describe('QNetworkProxyQuery', () => {
  it('QueryType values: TcpSocket 0, UdpSocket 1, SctpSocket 2, TcpServer 100, UrlRequest 101, SctpServer 102', () => {
    expect([
      QueryType.TcpSocket,
      QueryType.UdpSocket,
      QueryType.SctpSocket,
      QueryType.TcpServer,
      QueryType.UrlRequest,
      QueryType.SctpServer,
    ]).toEqual([0, 1, 2, 100, 101, 102]);
    expect(QNetworkProxyQuery.QueryType).toBe(QueryType);
  });

  function fields(q: QNetworkProxyQuery): unknown[] {
    return [q.queryType(), q.peerHostName(), q.peerPort(), q.localPort(), q.protocolTag()];
  }

  it('QNetworkProxyQuery(): TcpSocket, no host, ports -1, no tag', () => {
    expect(fields(new QNetworkProxyQuery())).toEqual([QueryType.TcpSocket, '', -1, -1, '']);
  });

  it('(host, port[, tag[, type]]): a connection query, TcpSocket by default', () => {
    expect(fields(new QNetworkProxyQuery('h', 80))).toEqual([QueryType.TcpSocket, 'h', 80, -1, '']);
    expect(fields(new QNetworkProxyQuery('h', 80, 'http', QueryType.UdpSocket))).toEqual([
      QueryType.UdpSocket,
      'h',
      80,
      -1,
      'http',
    ]);
  });

  it('(localPort[, tag[, type]]): a server query, TcpServer by default', () => {
    expect(fields(new QNetworkProxyQuery(8000))).toEqual([QueryType.TcpServer, '', -1, 8000, '']);
    expect(fields(new QNetworkProxyQuery(8000, 'tag'))).toEqual([
      QueryType.TcpServer,
      '',
      -1,
      8000,
      'tag',
    ]);
    expect(fields(new QNetworkProxyQuery(8000, 'tag', '', QueryType.SctpServer))[0]).toBe(
      QueryType.SctpServer,
    );
  });

  it('setters', () => {
    const q = new QNetworkProxyQuery();
    q.setQueryType(QueryType.UrlRequest);
    q.setPeerHostName('x');
    q.setPeerPort(1);
    q.setLocalPort(2);
    q.setProtocolTag('ftp');
    expect(fields(q)).toEqual([QueryType.UrlRequest, 'x', 1, 2, 'ftp']);
  });
});
