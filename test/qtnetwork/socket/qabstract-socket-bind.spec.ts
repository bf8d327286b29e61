/**
 * QAbstractSocket.bind: Qt's two overloads, `bind(port?, mode?)` and `bind(address, port?,
 * mode?)`, on QTcpSocket, QUdpSocket and QSslSocket (their types, and what each call binds),
 * and Qt's bind modes. The outcomes are Qt 5.15's (PyQt5) on Linux, which
 * test/differential/fidelity-socket.spec.ts compares live: `QUdpSocket.bind(45454)` receives
 * on 45454; two sockets share a port only when both binds have ShareAddress or
 * ReuseAddressHint (SO_REUSEADDR), else the second fails with AddressInUseError ("The bound
 * address is already in use"); a second bind of a bound socket warns and fails with
 * UnknownSocketError; a bound TCP socket keeps its port through a refused connect.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';

import {
  BindFlag,
  NetworkLayerProtocol,
  QAbstractSocket,
  QHostAddress,
  QSslSocket,
  QTcpSocket,
  QUdpSocket,
  SocketError,
  SocketState,
  SpecialAddress,
  type BindMode,
} from '../../../lib/qtnetwork/index.js';
import { bindRequest } from '../../../lib/qtnetwork/socket/bind-request.js';
import { Scope, captureQtMessages } from '../../helpers/qt-scope.js';
import { waitUntil } from '../../helpers/signals.js';

let scope: Scope;
let qt: ReturnType<typeof captureQtMessages>;

beforeEach(() => {
  scope = new Scope();
  qt = captureQtMessages();
});

afterEach(() => {
  scope.dispose();
  qt.restore();
});

/** A UDP port nobody has bound a moment ago. */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp6');
  await new Promise<void>((resolve) => s.bind(0, '::', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(resolve));
  return port;
}

/** A TCP port nobody listens on a moment ago. */
async function freeTcpPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A node:net server on 127.0.0.1 that records the source port of each connection. */
async function sourcePortRecorder(): Promise<{ port: number; sources: number[] }> {
  const sources: number[] = [];
  const server = net.createServer((c) => {
    sources.push(c.remotePort ?? 0);
    c.on('error', () => undefined);
    c.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scope.defer(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, sources };
}

describe('the arguments of bind (Qt’s two overloads)', () => {
  it.each<[string, Parameters<typeof bindRequest>[0], ReturnType<typeof bindRequest>]>([
    ['bind()', [], { address: SpecialAddress.Any, port: 0, mode: 0 }],
    ['bind(0)', [0], { address: SpecialAddress.Any, port: 0, mode: 0 }],
    ['bind(45454)', [45454], { address: SpecialAddress.Any, port: 45454, mode: 0 }],
    [
      'bind(45454, ShareAddress)',
      [45454, BindFlag.ShareAddress],
      { address: SpecialAddress.Any, port: 45454, mode: BindFlag.ShareAddress },
    ],
    [
      'bind(7) (the first port after the SpecialAddress values)',
      [7],
      { address: SpecialAddress.Any, port: 7, mode: 0 },
    ],
    [
      'bind(SpecialAddress.AnyIPv4, 45454, ReuseAddressHint)',
      [SpecialAddress.AnyIPv4, 45454, BindFlag.ReuseAddressHint],
      { address: SpecialAddress.AnyIPv4, port: 45454, mode: BindFlag.ReuseAddressHint },
    ],
    [
      'bind(SpecialAddress.LocalHost)',
      [SpecialAddress.LocalHost],
      { address: SpecialAddress.LocalHost, port: 0, mode: 0 },
    ],
    [
      'bind(SpecialAddress.Null, 45454): a port follows, so 0 is the null address (IPv4 Any)',
      [SpecialAddress.Null, 45454],
      { address: SpecialAddress.AnyIPv4, port: 45454, mode: 0 },
    ],
    [
      'bind(0, ShareAddress): a mode follows, so 0 is the port',
      [0, BindFlag.ShareAddress],
      { address: SpecialAddress.Any, port: 0, mode: BindFlag.ShareAddress },
    ],
    [
      "bind('127.0.0.1', 5, DontShareAddress)",
      ['127.0.0.1', 5, BindFlag.DontShareAddress],
      { address: '127.0.0.1', port: 5, mode: BindFlag.DontShareAddress },
    ],
  ])('%s', (_name, args, expected) => {
    expect(bindRequest(args)).toEqual(expected);
  });

  it('a QHostAddress in first place is the address; a null one is the IPv4 any-address (Qt)', () => {
    const address = new QHostAddress('::1');
    expect(bindRequest([address, 8080])).toEqual({ address, port: 8080, mode: 0 });
    expect(bindRequest([new QHostAddress(), 8080])).toEqual({
      address: SpecialAddress.AnyIPv4,
      port: 8080,
      mode: 0,
    });
  });

  it.each([
    ['QTcpSocket', () => new QTcpSocket()],
    ['QUdpSocket', () => new QUdpSocket()],
  ])('%s.bind(null address) binds 0.0.0.0, IPv4 only (as Qt 5.15)', async (_name, make) => {
    const s: QAbstractSocket = scope.socket(make());
    expect(await s.bind(new QHostAddress(), 0)).toBe(true);
    expect(s.localAddress().toString()).toBe('0.0.0.0');
    expect(s.localAddress().protocol()).toBe(NetworkLayerProtocol.IPv4Protocol);
  });

  it.each([[-1], [65536], [1.5], [Number.NaN]])(
    'port %p throws a RangeError naming bind',
    (port) => {
      expect(() => bindRequest([port])).toThrow(/bind: port must be an integer from 0 to 65535/);
      expect(() => bindRequest(['127.0.0.1', port])).toThrow(RangeError);
      expect(() => new QTcpSocket().bind(port)).toThrow(RangeError);
    },
  );

  it('the overloads are typed per class: a boolean for TCP and TLS, a Promise for UDP', async () => {
    const tcp = scope.socket(new QTcpSocket());
    const ssl = scope.socket(new QSslSocket());
    const udp = scope.socket(new QUdpSocket());
    const mode: BindMode = BindFlag.ShareAddress | BindFlag.ReuseAddressHint;
    const a: boolean = tcp.bind(0, mode);
    const b: boolean = ssl.bind(SpecialAddress.LocalHost, 0);
    const c: Promise<boolean> = udp.bind(0);
    const base: QAbstractSocket = tcp;
    const d: boolean | Promise<boolean> = base.bind();
    expect([a, b, await c, d]).toEqual([true, true, true, false]);
    // @ts-expect-error: a host name is not an address, and a string is no port
    expect(() => tcp.bind('127.0.0.1', '80')).toThrow(RangeError);
  });
});

describe('bind(port) binds Any on that port', () => {
  it('QUdpSocket.bind(port): BoundState, localPort() the port, and a datagram sent there arrives', async () => {
    const port = await freeUdpPort();
    const receiver = scope.socket(new QUdpSocket());
    const states: SocketState[] = [];
    receiver.stateChanged.connect((s) => states.push(s));
    expect(await receiver.bind(port)).toBe(true);
    expect(states).toEqual([SocketState.BoundState]);
    expect(receiver.localPort()).toBe(port);
    expect(receiver.localAddress().isEqual(new QHostAddress(SpecialAddress.Any))).toBe(true);
    const sender = scope.socket(new QUdpSocket());
    expect(sender.writeDatagram('hello', '127.0.0.1', port)).toBe(5);
    await waitUntil(() => receiver.hasPendingDatagrams(), 5000, 'the datagram');
    expect(receiver.readDatagram(100)?.data.toString()).toBe('hello');
  });

  it.each([
    ['QTcpSocket', () => new QTcpSocket()],
    ['QSslSocket', () => new QSslSocket()],
  ])(
    '%s.bind(port) then connectToHost: the peer sees the bound port as the source',
    async (_name, make) => {
      const port = await freeTcpPort();
      const peer = await sourcePortRecorder();
      const s = scope.socket(make());
      expect(s.bind(port)).toBe(true);
      expect(s.state()).toBe(SocketState.BoundState);
      expect(s.localPort()).toBe(port);
      s.connectToHost('127.0.0.1', peer.port);
      expect(await s.waitForConnected(5000)).toBe(true);
      expect(s.localPort()).toBe(port);
      await waitUntil(() => peer.sources.length === 1, 5000, 'the connection');
      expect(peer.sources).toEqual([port]);
    },
  );
});

describe('bind modes (Qt on Linux: ShareAddress and ReuseAddressHint set SO_REUSEADDR)', () => {
  const MODES: Array<[string, number, boolean]> = [
    ['DefaultForPlatform', BindFlag.DefaultForPlatform, false],
    ['ShareAddress', BindFlag.ShareAddress, true],
    ['DontShareAddress', BindFlag.DontShareAddress, false],
    ['ReuseAddressHint', BindFlag.ReuseAddressHint, true],
  ];
  const PAIRS = MODES.flatMap(([n1, m1, s1]) =>
    MODES.map(([n2, m2, s2]) => [`${n1} + ${n2}`, m1, m2, s1 && s2] as const),
  );

  it.each(PAIRS)('two QUdpSockets on one port, %s', async (_name, first, second, shared) => {
    const port = await freeUdpPort();
    const a = scope.socket(new QUdpSocket());
    const b = scope.socket(new QUdpSocket());
    expect(await a.bind(port, first)).toBe(true);
    const errors: SocketError[] = [];
    b.errorOccurred.connect((e) => errors.push(e));
    expect(await b.bind(port, second)).toBe(shared);
    if (shared) {
      expect(b.state()).toBe(SocketState.BoundState);
      expect(errors).toEqual([]);
    } else {
      expect(b.state()).toBe(SocketState.UnconnectedState);
      expect(errors).toEqual([SocketError.AddressInUseError]);
      expect(b.errorString()).toBe('The bound address is already in use');
    }
  });

  it.each(PAIRS)('two QTcpSockets bound to one port, %s', async (_name, first, second, shared) => {
    const port = await freeTcpPort();
    const a = scope.socket(new QTcpSocket());
    const b = scope.socket(new QTcpSocket());
    expect(a.bind(port, first)).toBe(true);
    const errors: SocketError[] = [];
    b.errorOccurred.connect((e) => errors.push(e));
    expect(b.bind(port, second)).toBe(shared);
    expect(b.state()).toBe(shared ? SocketState.BoundState : SocketState.UnconnectedState);
    expect(errors).toEqual(shared ? [] : [SocketError.AddressInUseError]);
  });

  it('a TCP port is free again once the socket holding it is closed or aborted', async () => {
    const port = await freeTcpPort();
    const a = scope.socket(new QTcpSocket());
    expect(a.bind(port)).toBe(true);
    const b = scope.socket(new QTcpSocket());
    expect(b.bind(port)).toBe(false);
    a.close();
    expect(b.bind(port)).toBe(true);
    b.abort();
    expect(a.bind(port)).toBe(true);
  });

  it('distinct TCP addresses share a port; overlapping ones (Any covers both families) do not', async () => {
    const port = await freeTcpPort();
    const bind = (address: QHostAddress | SpecialAddress | string): boolean =>
      scope.socket(new QTcpSocket()).bind(address, port);
    expect(bind('127.0.0.1')).toBe(true);
    expect(bind('127.0.0.2')).toBe(true);
    expect(bind('::1')).toBe(true);
    expect(bind(SpecialAddress.AnyIPv4)).toBe(false);
    expect(bind(SpecialAddress.Any)).toBe(false);
    expect(bind('127.0.0.1')).toBe(false);
  });

  it('a port a server of this process listens on: bind succeeds, connectToHost fails with AddressInUseError', async () => {
    // Qt fails in bind(); Node binds a client only when it connects (docs/qt-differences.md).
    const listening = await sourcePortRecorder();
    const target = await sourcePortRecorder();
    const s = scope.socket(new QTcpSocket());
    expect(s.bind(new QHostAddress('127.0.0.1'), listening.port)).toBe(true);
    const errors: SocketError[] = [];
    s.errorOccurred.connect((e) => errors.push(e));
    s.connectToHost('127.0.0.1', target.port);
    expect(await s.waitForConnected(5000)).toBe(false);
    expect(errors).toEqual([SocketError.AddressInUseError]);
    expect(s.errorString()).toBe('The bound address is already in use');
    expect(target.sources).toEqual([]);
  });
});

describe('binding a bound socket, and a bound socket that fails to connect', () => {
  it.each([
    ['QTcpSocket', () => new QTcpSocket()],
    ['QUdpSocket', () => new QUdpSocket()],
  ])(
    '%s: a second bind warns, fails with UnknownSocketError and leaves it bound',
    async (_name, make) => {
      const s: QAbstractSocket = scope.socket(make());
      expect(await s.bind(0)).toBe(true);
      const errors: SocketError[] = [];
      s.errorOccurred.connect((e) => errors.push(e));
      expect(await s.bind(0)).toBe(false);
      expect(qt.messages).toEqual([
        'QNativeSocketEngine::bind() was not called in QAbstractSocket::UnconnectedState',
      ]);
      expect(errors).toEqual([SocketError.UnknownSocketError]);
      expect(s.errorString()).toBe('Unknown error');
      expect(s.state()).toBe(SocketState.BoundState);
    },
  );

  it('a bound QTcpSocket keeps its port through a refused connect and connects from it next', async () => {
    const port = await freeTcpPort();
    const refused = await freeTcpPort();
    const peer = await sourcePortRecorder();
    const s = scope.socket(new QTcpSocket());
    expect(s.bind(port)).toBe(true);
    s.connectToHost('127.0.0.1', refused);
    expect(await s.waitForConnected(5000)).toBe(false);
    expect(s.error()).toBe(SocketError.ConnectionRefusedError);
    expect(s.localPort()).toBe(port);
    // Another socket still may not take the port.
    expect(scope.socket(new QTcpSocket()).bind(port)).toBe(false);
    s.connectToHost('127.0.0.1', peer.port);
    expect(await s.waitForConnected(5000)).toBe(true);
    await waitUntil(() => peer.sources.length === 1, 5000, 'the connection');
    expect(peer.sources).toEqual([port]);
  });
});
