/**
 * QUdpSocket and QNetworkDatagram on loopback. Expected values are Qt's: the signal
 * sequences, error codes and texts were recorded from real Qt 5.15.8 (PyQt5, run with
 * /usr/bin/python3) on this machine, and the last tests exchange datagrams with a live
 * PyQt5 QUdpSocket in both directions. Where Node forces a difference (an asynchronous
 * bind and connect, the bound on pending datagrams) the test says so; see
 * docs/qt-differences.md, "QUdpSocket".
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { jest } from '@jest/globals';

import {
  BindFlag,
  NetworkLayerProtocol,
  OpenModeFlag,
  QHostAddress,
  QNetworkDatagram,
  QUdpSocket,
  SocketError,
  SocketOption,
  SocketState,
  SocketType,
  SpecialAddress,
} from '../../../lib/qtnetwork/index.js';
import { fixturesDir, startChild } from '../../helpers/child-process.js';
import { hasIPv6Loopback } from '../../helpers/net.js';
import { Resources } from '../../helpers/resources.js';
import { nextEmission, sleep, waitUntil } from '../../helpers/signals.js';
import { captureQtMessages, recordSignals } from '../../helpers/socket-log.js';
import { CHILD_START_MS, budget } from '../../helpers/time-budget.js';

// Enough for the tests that start a child process (Node, or Python with PyQt5) too.
jest.setTimeout(CHILD_START_MS + budget(15000));

const res = new Resources();
afterEach(() => res.dispose());

const PYTHON = '/usr/bin/python3';

const ipv6 = hasIPv6Loopback();
const FAMILIES: Array<[string, string]> = [['IPv4', '127.0.0.1']];
if (ipv6) FAMILIES.push(['IPv6', '::1']);
else console.log('QUdpSocket IPv6 variants skipped: this host has no IPv6 loopback (::1)');

/** A new QUdpSocket, aborted after the test. */
function udp(): QUdpSocket {
  return res.socket(new QUdpSocket());
}

/** A QUdpSocket bound to `host`:0. */
async function bound(
  host: string,
  mode: number = BindFlag.DefaultForPlatform,
): Promise<QUdpSocket> {
  const s = udp();
  expect(await s.bind(host, 0, mode)).toBe(true);
  return s;
}

/** A UDP port on `host` that nobody is bound to (it was free a moment ago). */
async function closedUdpPort(host: string): Promise<number> {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => s.bind(0, host, () => resolve()));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

// ------------------------------------------------------------------ QNetworkDatagram

describe('QNetworkDatagram', () => {
  it('a default datagram is null: no payload, ports -1, hop limit -1, interface 0', () => {
    const d = new QNetworkDatagram();
    expect(d.isValid()).toBe(false);
    expect(d.isNull()).toBe(true);
    expect(d.data().length).toBe(0);
    expect(d.senderAddress().isNull()).toBe(true);
    expect(d.senderPort()).toBe(-1);
    expect(d.destinationAddress().isNull()).toBe(true);
    expect(d.destinationPort()).toBe(-1);
    expect(d.hopLimit()).toBe(-1);
    expect(d.interfaceIndex()).toBe(0);
    // A payload alone does not make it valid (Qt: an address does).
    expect(new QNetworkDatagram(Buffer.from('x')).isValid()).toBe(false);
  });

  it('the constructor sets payload and destination; a port reads -1 while its address is unset', () => {
    const d = new QNetworkDatagram('x', new QHostAddress('1.2.3.4'), 5);
    expect(d.isValid()).toBe(true);
    expect(d.data().toString()).toBe('x');
    expect(d.destinationAddress().toString()).toBe('1.2.3.4');
    expect(d.destinationPort()).toBe(5);
    expect(d.senderPort()).toBe(-1);
    d.setSender('10.0.0.1');
    expect(d.senderPort()).toBe(0);
    d.clear();
    expect(d.isNull()).toBe(true);
    expect(d.destinationPort()).toBe(-1);
    expect(() => d.setDestination('1.2.3.4', 70000)).toThrow(RangeError);
  });

  it('makeReply swaps sender and destination, keeps the interface, resets the hop limit (as Qt 5.15)', () => {
    const d = new QNetworkDatagram('x', '10.0.0.2', 5);
    d.setSender('10.0.0.1', 7);
    d.setHopLimit(9);
    d.setInterfaceIndex(3);
    const r = d.makeReply('r');
    expect(r.data().toString()).toBe('r');
    expect([r.senderAddress().toString(), r.senderPort()]).toEqual(['10.0.0.2', 5]);
    expect([r.destinationAddress().toString(), r.destinationPort()]).toEqual(['10.0.0.1', 7]);
    expect(r.hopLimit()).toBe(-1);
    expect(r.interfaceIndex()).toBe(3);
    // The original is unchanged.
    expect(d.destinationPort()).toBe(5);
  });

  it('makeReply to a multicast datagram leaves the sender unset (a group is no source address)', () => {
    const d = new QNetworkDatagram('x', '239.1.2.3', 5);
    d.setSender('10.0.0.1', 7);
    const r = d.makeReply('r');
    expect(r.senderAddress().isNull()).toBe(true);
    expect(r.senderPort()).toBe(-1);
    expect([r.destinationAddress().toString(), r.destinationPort()]).toEqual(['10.0.0.1', 7]);
    // Qt copies a broadcast destination (it cannot tell broadcast from unicast IPv4).
    const b = new QNetworkDatagram('x', '255.255.255.255', 5);
    b.setSender('10.0.0.1', 7);
    expect(b.makeReply('r').senderAddress().toString()).toBe('255.255.255.255');
  });
});

// ------------------------------------------------------------------ binding

describe.each(FAMILIES)('QUdpSocket over %s', (_family, host) => {
  it('bind emits stateChanged(BoundState) before it resolves true; the device stays NotOpen (as Qt)', async () => {
    const s = udp();
    const rec = recordSignals(s);
    expect(s.socketType()).toBe(SocketType.UdpSocket);
    expect(s.state()).toBe(SocketState.UnconnectedState);
    const ok = await s.bind(host, 0);
    rec.mark(`bind=${ok}`);
    expect(rec.log).toEqual(['stateChanged(4)', 'bind=true']);
    expect(s.state()).toBe(SocketState.BoundState);
    expect(s.localAddress().isEqual(new QHostAddress(host))).toBe(true);
    expect(s.localPort()).toBeGreaterThan(0);
    expect(s.openMode()).toBe(OpenModeFlag.NotOpen);
    expect(s.isValid()).toBe(true);
    expect(s.socketDescriptor()).toBeGreaterThanOrEqual(0);
    expect(s.hasPendingDatagrams()).toBe(false);
    expect(s.pendingDatagramSize()).toBe(-1);
  });

  it('writeDatagram sends to host:port; the receiver reads the payload with the sender address and port', async () => {
    const a = await bound(host);
    const b = await bound(host);
    const rec = recordSignals(b);
    expect(b.writeDatagram('hello world', new QHostAddress(host), a.localPort())).toBe(11);
    // bytesWritten is emitted before writeDatagram returns, as in Qt.
    expect(rec.log).toEqual(['bytesWritten(11)']);
    expect(await a.waitForReadyRead(3000)).toBe(true);
    expect(a.hasPendingDatagrams()).toBe(true);
    expect(a.pendingDatagramSize()).toBe(11);
    expect(a.bytesAvailable()).toBe(11);
    const got = a.readDatagram(100)!;
    expect(got.data.toString()).toBe('hello world');
    expect(got.host.isEqual(new QHostAddress(host))).toBe(true);
    expect(got.port).toBe(b.localPort());
    expect(a.hasPendingDatagrams()).toBe(false);
    expect(a.pendingDatagramSize()).toBe(-1);
  });

  it('readDatagram(maxSize) truncates and drops the rest of that datagram only; 0 discards one', async () => {
    const a = await bound(host);
    const b = await bound(host);
    b.writeDatagram('hello world', host, a.localPort());
    b.writeDatagram('two', host, a.localPort());
    b.writeDatagram('three33', host, a.localPort());
    b.writeDatagram('four', host, a.localPort());
    await waitUntil(() => a.pendingDatagramCount() === 4, 3000);
    expect(a.readDatagram(5)!.data.toString()).toBe('hello');
    expect(a.pendingDatagramSize()).toBe(3);
    expect(a.readDatagram(0)!.data.length).toBe(0);
    expect(a.pendingDatagramSize()).toBe(7);
    const d = a.receiveDatagram(3);
    expect(d.data().toString()).toBe('thr');
    expect(a.receiveDatagram().data().toString()).toBe('four');
    expect(() => a.readDatagram(-1)).toThrow(RangeError);
  });

  it('reading when nothing is waiting: readDatagram sets TemporaryError "No datagram available for reading"; receiveDatagram() returns a null datagram quietly', async () => {
    const a = await bound(host);
    const rec = recordSignals(a);
    expect(a.receiveDatagram().isValid()).toBe(false);
    expect(rec.log).toEqual([]);
    expect(a.readDatagram(10)).toBeNull();
    expect(a.error()).toBe(SocketError.TemporaryError);
    expect(a.errorString()).toBe('No datagram available for reading');
    expect(rec.log).toEqual(['errorOccurred(22, "No datagram available for reading", state=4)']);
    expect(a.receiveDatagram(10).isValid()).toBe(false);
    expect(rec.log).toHaveLength(2);
  });

  it('an empty datagram is delivered: pendingDatagramSize 0, bytesWritten(0)', async () => {
    const a = await bound(host);
    const b = await bound(host);
    const written = nextEmission(b.bytesWritten);
    expect(b.writeDatagram(Buffer.alloc(0), host, a.localPort())).toBe(0);
    expect(await written).toEqual([0]);
    expect(await a.waitForReadyRead(3000)).toBe(true);
    expect(a.hasPendingDatagrams()).toBe(true);
    expect(a.pendingDatagramSize()).toBe(0);
    const d = a.receiveDatagram();
    expect(d.isValid()).toBe(true);
    expect(d.data().length).toBe(0);
  });

  it('readyRead comes once for datagrams that arrive together, not again until the application reads, then again while some wait (Qt 5.15)', async () => {
    const a = await bound(host);
    const b = await bound(host);
    const rec = recordSignals(a);
    for (const text of ['one', 'two', 'six']) b.writeDatagram(text, host, a.localPort());
    await nextEmission(a.readyRead, 3000);
    await sleep(50);
    // Qt recorded: one readyRead for the three, bytesAvailable() = the first datagram's size.
    expect(rec.log).toEqual(['readyRead(3)']);
    expect(a.pendingDatagramCount()).toBe(3);
    // New datagrams while the application has not read: no readyRead.
    b.writeDatagram('ten', host, a.localPort());
    await waitUntil(() => a.pendingDatagramCount() === 4, 3000);
    await sleep(30);
    expect(rec.log).toEqual(['readyRead(3)']);
    // Reading one: readyRead again on the next turn, since three still wait (Qt's notifier).
    expect(a.readDatagram(10)!.data.toString()).toBe('one');
    expect(rec.log).toHaveLength(1);
    await nextEmission(a.readyRead, 3000);
    expect(rec.log).toEqual(['readyRead(3)', 'readyRead(3)']);
    // Reading everything in the slot: no further readyRead.
    const texts: string[] = [];
    const off = a.readyRead.connect(() => {
      while (a.hasPendingDatagrams()) texts.push(a.receiveDatagram().data().toString());
    });
    b.writeDatagram('more', host, a.localPort());
    // The application has not read since the last readyRead: reading now lets it come.
    expect(a.readDatagram(10)!.data.toString()).toBe('two');
    await waitUntil(() => texts.length === 3, 3000);
    off();
    await sleep(30);
    expect(texts).toEqual(['six', 'ten', 'more']);
    expect(rec.log).toEqual(['readyRead(3)', 'readyRead(3)', 'readyRead(3)']);
  });

  it('receiveDatagram + makeReply round trip: the reply reaches the sender, from the receiver', async () => {
    const server = await bound(host);
    const client = await bound(host);
    server.readyRead.connect(() => {
      while (server.hasPendingDatagrams()) {
        const d = server.receiveDatagram();
        server.writeDatagram(d.makeReply(Buffer.concat([Buffer.from('echo:'), d.data()])));
      }
    });
    client.writeDatagram('ping', host, server.localPort());
    expect(await client.waitForReadyRead(3000)).toBe(true);
    const reply = client.receiveDatagram();
    expect(reply.data().toString()).toBe('echo:ping');
    expect(reply.senderAddress().isEqual(new QHostAddress(host))).toBe(true);
    expect(reply.senderPort()).toBe(server.localPort());
    // Bound to one address, the socket knows where datagrams were sent to.
    expect(reply.destinationAddress().isEqual(new QHostAddress(host))).toBe(true);
    expect(reply.destinationPort()).toBe(client.localPort());
    // Node cannot read these (Qt reads them with IP_RECVTTL / IP_PKTINFO).
    expect(reply.hopLimit()).toBe(-1);
    expect(reply.interfaceIndex()).toBe(0);
  });

  it('DatagramTooLargeError "Datagram was too large to send" beyond the largest UDP payload; the largest one goes through whole', async () => {
    const limit = host.includes(':') ? 65527 : 65507;
    const a = await bound(host);
    const b = await bound(host);
    const rec = recordSignals(b);
    expect(b.writeDatagram(Buffer.alloc(limit + 1, 1), host, a.localPort())).toBe(-1);
    expect(b.error()).toBe(SocketError.DatagramTooLargeError);
    expect(b.errorString()).toBe('Datagram was too large to send');
    expect(rec.log).toEqual([`errorOccurred(6, "Datagram was too large to send", state=4)`]);
    expect(b.writeDatagram(Buffer.alloc(70000), host, a.localPort())).toBe(-1);
    expect(b.writeDatagram(Buffer.alloc(limit, 2), host, a.localPort())).toBe(limit);
    expect(await a.waitForReadyRead(3000)).toBe(true);
    expect(a.pendingDatagramSize()).toBe(limit);
    expect(a.receiveDatagram().data().equals(Buffer.alloc(limit, 2))).toBe(true);
  });

  it('bind AddressInUseError "The bound address is already in use" unless both sockets share the address', async () => {
    const first = await bound(host);
    const second = udp();
    const rec = recordSignals(second);
    expect(await second.bind(host, first.localPort())).toBe(false);
    expect(second.error()).toBe(SocketError.AddressInUseError);
    expect(second.errorString()).toBe('The bound address is already in use');
    expect(second.state()).toBe(SocketState.UnconnectedState);
    expect(rec.log).toEqual(['errorOccurred(8, "The bound address is already in use", state=0)']);
    // ShareAddress on the second only is not enough (Linux: both need SO_REUSEADDR).
    expect(await second.bind(host, first.localPort(), BindFlag.ShareAddress)).toBe(false);
    expect(second.error()).toBe(SocketError.AddressInUseError);

    for (const mode of [BindFlag.ShareAddress, BindFlag.ReuseAddressHint]) {
      const a = await bound(host, mode);
      const b = udp();
      expect(await b.bind(host, a.localPort(), mode)).toBe(true);
      expect(b.localPort()).toBe(a.localPort());
      const c = udp();
      expect(await c.bind(host, a.localPort(), BindFlag.DontShareAddress)).toBe(false);
      expect(c.error()).toBe(SocketError.AddressInUseError);
    }
  });

  it('writeDatagram errors: no address, port 0, the other address family: NetworkError "Unable to send a message"', async () => {
    const s = await bound(host);
    const rec = recordSignals(s);
    expect(s.writeDatagram(new QNetworkDatagram('x'))).toBe(-1);
    expect(s.error()).toBe(SocketError.NetworkError);
    expect(s.errorString()).toBe('Unable to send a message');
    expect(s.writeDatagram('x', new QHostAddress(), 0)).toBe(-1);
    expect(s.writeDatagram('x', host, 0)).toBe(-1);
    const other = host.includes(':') ? '127.0.0.1' : '::1';
    expect(s.writeDatagram('x', other, 9)).toBe(-1);
    expect(rec.log).toEqual(
      Array.from({ length: 4 }, () => 'errorOccurred(7, "Unable to send a message", state=4)'),
    );
    expect(() => s.writeDatagram('x', host, 70000)).toThrow(RangeError);
  });

  it('connected UDP: Qt signal order, write()/read() exchange datagrams with the peer only; read truncates', async () => {
    const server = await bound(host);
    const other = await bound(host);
    const c = udp();
    const rec = recordSignals(c);
    c.connectToHost(host, server.localPort());
    // Node connects asynchronously: Qt is in ConnectedState here already.
    expect(await c.waitForConnected(3000)).toBe(true);
    expect(rec.log).toEqual([
      'stateChanged(1)',
      'stateChanged(2)',
      'hostFound',
      'stateChanged(3)',
      'connected',
    ]);
    expect(c.openMode()).toBe(OpenModeFlag.ReadWrite);
    expect(c.peerAddress().isEqual(new QHostAddress(host))).toBe(true);
    expect(c.peerPort()).toBe(server.localPort());
    expect(c.peerName()).toBe(host);
    expect(c.localPort()).toBeGreaterThan(0);
    rec.log.length = 0;

    expect(c.write('hello')).toBe(5);
    expect(rec.log).toEqual(['bytesWritten(5)']);
    expect(c.writeDatagram(new QNetworkDatagram('via-dg'))).toBe(6);
    expect(await server.waitForReadyRead(3000)).toBe(true);
    await waitUntil(() => server.pendingDatagramCount() === 2, 3000);
    const first = server.receiveDatagram();
    expect(first.data().toString()).toBe('hello');
    expect(first.senderPort()).toBe(c.localPort());
    expect(server.receiveDatagram().data().toString()).toBe('via-dg');

    other.writeDatagram('from-other', host, c.localPort());
    server.writeDatagram('from-srv-1', host, c.localPort());
    server.writeDatagram('from-srv-2', host, c.localPort());
    expect(await c.waitForReadyRead(3000)).toBe(true);
    await waitUntil(() => c.pendingDatagramCount() === 2, 3000);
    await sleep(30);
    // The kernel filtered the other sender's datagram out.
    expect(c.bytesAvailable()).toBe(10);
    expect(c.read(4).toString()).toBe('from');
    expect(c.bytesAvailable()).toBe(10);
    expect(c.readAll().toString()).toBe('from-srv-2');
    expect(c.read(4).length).toBe(0);

    // Node refuses another destination on a connected socket (Linux would send it).
    expect(c.writeDatagram('x', host, other.localPort())).toBe(-1);
    expect(c.error()).toBe(SocketError.NetworkError);
    expect(c.write(Buffer.alloc(70000))).toBe(-1);
    expect(c.error()).toBe(SocketError.DatagramTooLargeError);

    rec.log.length = 0;
    c.disconnectFromHost();
    expect(rec.log).toEqual([
      'stateChanged(6)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
    ]);
    expect(c.isOpen()).toBe(true);
    expect(c.localPort()).toBe(0);
    expect(c.peerPort()).toBe(0);
  });

  it('connected UDP: datagrams written before Node has connected the socket are sent once it has', async () => {
    const server = await bound(host);
    const c = udp();
    c.connectToHost(new QHostAddress(host), server.localPort());
    expect(c.write('early-1')).toBe(7);
    expect(c.write('early-2')).toBe(7);
    expect(await server.waitForReadyRead(3000)).toBe(true);
    await waitUntil(() => server.pendingDatagramCount() === 2, 3000);
    expect(server.receiveDatagram().data().toString()).toBe('early-1');
    expect(server.receiveDatagram().data().toString()).toBe('early-2');
    expect(c.bytesToWrite()).toBe(0);
  });

  it('connectToHost from BoundState keeps the local port; connecting again is OperationError', async () => {
    const server = await bound(host);
    const c = await bound(host);
    const port = c.localPort();
    c.connectToHost(host, server.localPort());
    expect(await c.waitForConnected(3000)).toBe(true);
    expect(c.localPort()).toBe(port);
    const warnings = captureQtMessages();
    try {
      c.connectToHost(host, server.localPort());
    } finally {
      warnings.restore();
    }
    expect(c.error()).toBe(SocketError.OperationError);
    expect(c.errorString()).toBe('Trying to connect while connection is in progress');
    expect(warnings.messages[0]).toMatch(/connectToHost\(\) called when already/);
  });

  it('connected UDP: an ICMP port unreachable makes readyRead come and readDatagram report ConnectionRefusedError, the socket staying connected (Qt 5.15)', async () => {
    const port = await closedUdpPort(host);
    const c = udp();
    c.connectToHost(host, port);
    expect(await c.waitForConnected(3000)).toBe(true);
    const rec = recordSignals(c);
    expect(c.write('ping')).toBe(4);
    expect(await c.waitForReadyRead(3000)).toBe(true);
    expect(c.hasPendingDatagrams()).toBe(false);
    expect(c.readDatagram(10)).toBeNull();
    expect(c.error()).toBe(SocketError.ConnectionRefusedError);
    expect(c.errorString()).toBe('Connection refused');
    expect(c.state()).toBe(SocketState.ConnectedState);
    expect(rec.log).toEqual([
      'bytesWritten(4)',
      'readyRead(0)',
      'errorOccurred(0, "Connection refused", state=3)',
    ]);
  });

  it("connected UDP: read() after an ICMP port unreachable returns -1 and drops the socket, as Qt's readData", async () => {
    const port = await closedUdpPort(host);
    const c = udp();
    c.connectToHost(host, port);
    expect(await c.waitForConnected(3000)).toBe(true);
    c.write('ping');
    expect(await c.waitForReadyRead(3000)).toBe(true);
    expect(c.readInto(Buffer.alloc(10))).toBe(-1);
    expect(c.error()).toBe(SocketError.ConnectionRefusedError);
    expect(c.errorString()).toBe('Connection refused');
    expect(c.state()).toBe(SocketState.UnconnectedState);
  });

  it('waitForReadyRead: true when a datagram is waiting or arrives; a timeout is SocketTimeoutError and the socket stays bound', async () => {
    const a = udp();
    expect(await a.waitForReadyRead(50)).toBe(false);
    expect(await a.bind(host, 0)).toBe(true);
    const rec = recordSignals(a);
    expect(await a.waitForReadyRead(100)).toBe(false);
    expect(a.error()).toBe(SocketError.SocketTimeoutError);
    expect(rec.log).toEqual(['errorOccurred(5, "Network operation timed out", state=4)']);
    expect(a.state()).toBe(SocketState.BoundState);
    const b = await bound(host);
    setTimeout(() => b.writeDatagram('late', host, a.localPort()), 20);
    expect(await a.waitForReadyRead(3000)).toBe(true);
    expect(rec.log[1]).toBe('readyRead(4)');
    // Already waiting: true at once, without another readyRead (as Qt).
    expect(await a.waitForReadyRead(3000)).toBe(true);
    expect(rec.log).toHaveLength(2);
  });
});

// ------------------------------------------------------------------ family-independent

describe('QUdpSocket', () => {
  it('writeDatagram on an unbound socket binds it to Any first (bytesWritten comes before BoundState: Node binds asynchronously)', async () => {
    const a = udp();
    expect(await a.bind('127.0.0.1', 0)).toBe(true);
    const b = udp();
    const rec = recordSignals(b);
    expect(b.writeDatagram('hello world', new QHostAddress('127.0.0.1'), a.localPort())).toBe(11);
    expect(b.state()).toBe(SocketState.UnconnectedState);
    await nextEmission(b.stateChanged, 3000);
    // Qt 5.15: stateChanged(4), bytesWritten(11), both inside writeDatagram.
    expect(rec.log).toEqual(['bytesWritten(11)', 'stateChanged(4)']);
    expect(b.localAddress().protocol()).toBe(NetworkLayerProtocol.AnyIPProtocol);
    expect(b.localAddress().toString()).toBe('0.0.0.0');
    expect(b.localPort()).toBeGreaterThan(0);
    expect(await a.waitForReadyRead(3000)).toBe(true);
    const got = a.readDatagram(100)!;
    expect(got.data.toString()).toBe('hello world');
    expect(got.port).toBe(b.localPort());
  });

  it('bound to Any, the socket takes IPv4 datagrams as IPv4-mapped senders (as Qt) and cannot tell their destination', async () => {
    const any = udp();
    expect(await any.bind(SpecialAddress.Any, 0)).toBe(true);
    expect(any.localAddress().toString()).toBe('0.0.0.0');
    const sender = await bound('127.0.0.1');
    sender.writeDatagram('x', '127.0.0.1', any.localPort());
    expect(await any.waitForReadyRead(3000)).toBe(true);
    const d = any.receiveDatagram();
    expect(d.senderAddress().toString()).toBe('::ffff:127.0.0.1');
    expect(d.senderPort()).toBe(sender.localPort());
    expect(d.destinationAddress().isNull()).toBe(true);
    expect(d.destinationPort()).toBe(-1);
    expect(any.writeDatagram(d.makeReply('back'))).toBe(4);
    expect(await sender.waitForReadyRead(3000)).toBe(true);
    const reply = sender.readDatagram(10)!;
    expect(reply.data.toString()).toBe('back');
    expect(reply.port).toBe(any.localPort());
  });

  it('bind refuses an address not on this host (SocketAddressNotAvailableError) and a string that is no address', async () => {
    const s = udp();
    expect(await s.bind('203.0.113.7', 0)).toBe(false);
    expect(s.error()).toBe(SocketError.SocketAddressNotAvailableError);
    expect(s.errorString()).toBe('The address is not available');
    expect(await s.bind('not-an-address', 0)).toBe(false);
    expect(s.error()).toBe(SocketError.SocketAddressNotAvailableError);
    expect(s.state()).toBe(SocketState.UnconnectedState);
    expect(() => s.bind('127.0.0.1', -1)).toThrow(RangeError);
  });

  it('bind on a bound socket warns and fails with UnknownSocketError (Qt 5.15)', async () => {
    const s = await bound('127.0.0.1');
    const rec = recordSignals(s);
    const warnings = captureQtMessages();
    try {
      expect(await s.bind('127.0.0.1', 0)).toBe(false);
    } finally {
      warnings.restore();
    }
    expect(warnings.messages).toEqual([
      'QNativeSocketEngine::bind() was not called in QAbstractSocket::UnconnectedState',
    ]);
    expect(rec.log).toEqual(['errorOccurred(-1, "Unknown error", state=4)']);
  });

  it('bind to a privileged port without root: SocketAccessError "The address is protected"', async () => {
    const start = Number(
      fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim(),
    );
    if (!(start > 80)) {
      console.log(
        `QUdpSocket privileged-port test skipped: ip_unprivileged_port_start is ${start}`,
      );
      return;
    }
    if (process.getuid?.() !== 0) {
      const s = udp();
      expect(await s.bind('127.0.0.1', 80)).toBe(false);
      expect(s.error()).toBe(SocketError.SocketAccessError);
      expect(s.errorString()).toBe('The address is protected');
      return;
    }
    // As root: bind in a child process without CAP_NET_BIND_SERVICE (setpriv drops it from
    // the bounding set), so the repository needs no access rights for another user.
    let setpriv: string;
    try {
      setpriv = execFileSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).trim();
    } catch {
      console.log('QUdpSocket privileged-port test skipped: setpriv (util-linux) is not installed');
      return;
    }
    const code = [
      `import { QUdpSocket } from ${JSON.stringify(path.resolve(fixturesDir, '../../lib/qtnetwork/index.js'))};`,
      'const s = new QUdpSocket();',
      "const ok = await s.bind('127.0.0.1', 80);",
      'console.log(JSON.stringify({ ok, error: s.error(), text: s.errorString(), state: s.state() }));',
      's.close();',
    ].join('\n');
    const child = startChild(setpriv, [
      '--bounding-set',
      '-net_bind_service',
      process.execPath,
      ...['--import', path.join(fixturesDir, 'register-ts.mjs'), '--input-type=module', '-e', code],
    ]);
    res.add(() => child.stop());
    const line = await child.nextLine(CHILD_START_MS);
    expect(JSON.parse(line)).toEqual({
      ok: false,
      error: SocketError.SocketAccessError,
      text: 'The address is protected',
      state: SocketState.UnconnectedState,
    });
  });

  it('close() and abort() on a bound socket emit what Qt 5.15 emits (no aboutToClose: never opened)', async () => {
    const a = await bound('127.0.0.1');
    const rec = recordSignals(a);
    a.close();
    expect(rec.log).toEqual([
      'stateChanged(6)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
    ]);
    expect(a.localPort()).toBe(0);
    const b = await bound('127.0.0.1');
    const rb = recordSignals(b);
    b.abort();
    expect(rb.log).toEqual(['stateChanged(0)', 'readChannelFinished']);
    expect(b.isValid()).toBe(false);
  });

  it('close() on a connected socket: aboutToClose first; abort() skips ClosingState', async () => {
    const server = await bound('127.0.0.1');
    const c = udp();
    c.connectToHost('127.0.0.1', server.localPort());
    expect(await c.waitForConnected(3000)).toBe(true);
    const rec = recordSignals(c);
    c.close();
    expect(rec.log).toEqual([
      'aboutToClose',
      'stateChanged(6)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
    ]);
    const warnings = captureQtMessages();
    try {
      expect(c.write('x')).toBe(-1);
    } finally {
      warnings.restore();
    }
    expect(warnings.messages).toEqual(['QIODevice::write (QUdpSocket): device not open']);
    const d = udp();
    d.connectToHost('127.0.0.1', server.localPort());
    expect(await d.waitForConnected(3000)).toBe(true);
    const rd = recordSignals(d);
    d.abort();
    expect(rd.log).toEqual([
      'aboutToClose',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
    ]);
  });

  it('connectToHost by name: HostLookupState at once, the rest once the name is resolved', async () => {
    const server = await bound('127.0.0.1');
    const c = udp();
    const rec = recordSignals(c);
    c.connectToHost(
      'localhost',
      server.localPort(),
      OpenModeFlag.ReadWrite,
      NetworkLayerProtocol.IPv4Protocol,
    );
    expect(rec.log).toEqual(['stateChanged(1)']);
    expect(await c.waitForConnected(3000)).toBe(true);
    expect(rec.log).toEqual([
      'stateChanged(1)',
      'stateChanged(2)',
      'hostFound',
      'stateChanged(3)',
      'connected',
    ]);
    expect(c.peerName()).toBe('localhost');
    c.write('by-name');
    expect(await server.waitForReadyRead(3000)).toBe(true);
    expect(server.readDatagram(20)!.data.toString()).toBe('by-name');
  });

  it("calls that need a bound socket warn and fail on an unbound one, with Qt's messages", () => {
    const s = udp();
    const warnings = captureQtMessages();
    try {
      expect(s.hasPendingDatagrams()).toBe(false);
      expect(s.pendingDatagramSize()).toBe(-1);
      expect(s.readDatagram(5)).toBeNull();
      expect(s.receiveDatagram().isValid()).toBe(false);
      expect(s.joinMulticastGroup('239.255.43.21')).toBe(false);
    } finally {
      warnings.restore();
    }
    expect(warnings.messages).toEqual(
      [
        'hasPendingDatagrams',
        'pendingDatagramSize',
        'readDatagram',
        'receiveDatagram',
        'joinMulticastGroup',
      ].map((m) => `QUdpSocket::${m}() called on a QUdpSocket when not in QUdpSocket::BoundState`),
    );
    expect(s.socketOption(SocketOption.MulticastTtlOption)).toBeUndefined();
    expect(s.setSocketDescriptor(3)).toBe(false);
    expect(s.error()).toBe(SocketError.UnsupportedSocketOperationError);
  });

  it('socket options: multicast TTL and loopback (Linux defaults 1 and 1), buffer sizes from the kernel', async () => {
    const s = await bound('127.0.0.1');
    expect(s.socketOption(SocketOption.MulticastTtlOption)).toBe(1);
    expect(s.socketOption(SocketOption.MulticastLoopbackOption)).toBe(1);
    s.setSocketOption(SocketOption.MulticastTtlOption, 3);
    s.setSocketOption(SocketOption.MulticastLoopbackOption, 0);
    expect(s.socketOption(SocketOption.MulticastTtlOption)).toBe(3);
    expect(s.socketOption(SocketOption.MulticastLoopbackOption)).toBe(0);
    s.setSocketOption(SocketOption.ReceiveBufferSizeSocketOption, 65536);
    // Linux doubles what is asked for (Qt reads the same value back).
    expect(s.socketOption(SocketOption.ReceiveBufferSizeSocketOption)).toBe(131072);
    expect(s.socketOption(SocketOption.SendBufferSizeSocketOption)).toBeGreaterThan(0);
    expect(s.socketOption(SocketOption.TypeOfServiceOption)).toBe(-1);
  });

  it('multicast on loopback: join 239.255.43.21 on lo, receive with MulticastLoopbackOption 1, leave, receive no more', async () => {
    const receiver = udp();
    expect(await receiver.bind(SpecialAddress.AnyIPv4, 0, BindFlag.ShareAddress)).toBe(true);
    if (!receiver.joinMulticastGroup('239.255.43.21', 'lo')) {
      console.log(
        'QUdpSocket multicast test skipped: the kernel refused to join 239.255.43.21 on lo',
      );
      return;
    }
    // Joined already: false, as the kernel refuses it (EADDRINUSE); error() unchanged (Qt).
    expect(receiver.joinMulticastGroup('239.255.43.21', 'lo')).toBe(false);
    expect(receiver.joinMulticastGroup('127.0.0.1', 'lo')).toBe(false);
    expect(receiver.joinMulticastGroup('239.255.43.22', 'no-such-interface')).toBe(false);
    expect(receiver.error()).toBe(SocketError.UnknownSocketError);

    const sender = udp();
    expect(await sender.bind(SpecialAddress.AnyIPv4, 0)).toBe(true);
    sender.setMulticastInterface('lo');
    expect(sender.multicastInterface()).toBe('lo');
    sender.setSocketOption(SocketOption.MulticastLoopbackOption, 1);
    sender.setSocketOption(SocketOption.MulticastTtlOption, 1);
    let sendError: SocketError | null = null;
    sender.errorOccurred.connect((e) => (sendError = e));
    expect(sender.writeDatagram('mc', '239.255.43.21', receiver.localPort())).toBe(2);
    const arrived = await receiver.waitForReadyRead(2000);
    if (!arrived && sendError !== null) {
      console.log(
        `QUdpSocket multicast test skipped: sending to 239.255.43.21 on lo failed (${sender.errorString()})`,
      );
      return;
    }
    expect(arrived).toBe(true);
    const d = receiver.receiveDatagram();
    expect(d.data().toString()).toBe('mc');
    expect(d.senderPort()).toBe(sender.localPort());

    expect(receiver.leaveMulticastGroup('239.255.43.21', 'lo')).toBe(true);
    expect(receiver.leaveMulticastGroup('239.255.43.21', 'lo')).toBe(false);
    sender.writeDatagram('mc2', '239.255.43.21', receiver.localPort());
    expect(await receiver.waitForReadyRead(300)).toBe(false);
  });

  it("an IPv4 group cannot be joined from a socket bound to Any: Qt's warning, false", async () => {
    const s = udp();
    expect(await s.bind(SpecialAddress.Any, 0)).toBe(true);
    const warnings = captureQtMessages();
    try {
      expect(s.joinMulticastGroup('239.255.43.21', 'lo')).toBe(false);
    } finally {
      warnings.restore();
    }
    expect(warnings.messages[0]).toMatch(
      /cannot bind to QHostAddress::Any .* join an IPv4 multicast group/,
    );
  });

  it('the receive bound: pending datagrams stay within readBufferSize (payload + 256 each); the newest are dropped and counted; reading makes room', async () => {
    const a = await bound('127.0.0.1');
    expect(a.readBufferSize()).toBe(256 * 1024);
    expect(() => a.setReadBufferSize(-1)).toThrow(RangeError);
    a.setReadBufferSize(4096);
    const b = await bound('127.0.0.1');
    const payload = (first: number): Buffer => Buffer.alloc(100, 7).fill(first, 0, 1);
    for (let i = 0; i < 50; i++) b.writeDatagram(payload(i), '127.0.0.1', a.localPort());
    // 356 bytes each: 11 fit in 4096 (11 * 356 = 3916).
    await waitUntil(() => a.pendingDatagramCount() + a.droppedDatagramCount() === 50, 3000);
    expect(a.pendingDatagramCount()).toBe(11);
    expect(a.droppedDatagramCount()).toBe(39);
    // The oldest are kept, in order.
    expect(a.readDatagram(200)!.data[0]).toBe(0);
    const rest: number[] = [];
    while (a.hasPendingDatagrams()) rest.push(a.readDatagram(200)!.data[0]);
    expect(rest).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    b.writeDatagram('after', '127.0.0.1', a.localPort());
    expect(await a.waitForReadyRead(3000)).toBe(true);
    expect(a.readDatagram(10)!.data.toString()).toBe('after');
    // A bound smaller than one datagram still lets one through.
    a.setReadBufferSize(10);
    b.writeDatagram(payload(1), '127.0.0.1', a.localPort());
    b.writeDatagram(payload(2), '127.0.0.1', a.localPort());
    await waitUntil(() => a.droppedDatagramCount() === 40, 3000);
    expect(a.pendingDatagramCount()).toBe(1);
  });
});

// ------------------------------------------------------------------ real Qt

const pyqt =
  spawnSync(PYTHON, ['-c', 'import PyQt5.QtNetwork'], { timeout: 15000, stdio: 'ignore' })
    .status === 0;
if (!pyqt) {
  console.log('QUdpSocket real-Qt tests skipped: /usr/bin/python3 cannot import PyQt5');
}

/**
 * A real Qt 5.15 QUdpSocket: binds to host:0, prints {"port"}, sends "hello from qt" to the
 * port's socket, answers each datagram with makeReply("echo:" + data), and after `expected`
 * datagrams prints its signal log and the senders it saw.
 */
const QT_PEER = String.raw`
import sys, json
from PyQt5.QtCore import QCoreApplication, QTimer
from PyQt5.QtNetwork import QUdpSocket, QHostAddress
app = QCoreApplication(sys.argv)
host, peer_port, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log, senders = [], []
s = QUdpSocket()
s.stateChanged.connect(lambda st: log.append('stateChanged(%d)' % int(st)))
s.bytesWritten.connect(lambda n: log.append('bytesWritten(%d)' % n))
s.errorOccurred.connect(lambda e: log.append('errorOccurred(%d)' % int(e)))
def on_ready():
    log.append('readyRead(%d)' % s.bytesAvailable())
    while s.hasPendingDatagrams():
        d = s.receiveDatagram()
        senders.append([d.senderAddress().toString(), d.senderPort(), bytes(d.data()).decode()])
        s.writeDatagram(d.makeReply(b'echo:' + bytes(d.data())))
    if len(senders) >= expected:
        print(json.dumps({'log': log, 'senders': senders}), flush=True)
        app.quit()
s.readyRead.connect(on_ready)
ok = s.bind(QHostAddress(host), 0)
log.append('bind=%s' % ('true' if ok else 'false'))
print(json.dumps({'port': s.localPort()}), flush=True)
log.append('writeDatagram=%d' % s.writeDatagram(b'hello from qt', QHostAddress(host), peer_port))
def give_up():
    print(json.dumps({'timeout': log}), flush=True)
    app.exit(3)
QTimer.singleShot(10000, give_up)
sys.exit(app.exec_())
`;

(pyqt ? describe.each(FAMILIES) : describe.skip.each(FAMILIES))(
  'QUdpSocket with a real Qt 5.15 peer over %s',
  (_family, host) => {
    it('datagrams go both ways, senders are right, and bind + writeDatagram + readyRead emit what Qt emits', async () => {
      const s = udp();
      const log: string[] = [];
      s.stateChanged.connect((st) => log.push(`stateChanged(${st})`));
      s.bytesWritten.connect((n) => log.push(`bytesWritten(${n})`));
      s.errorOccurred.connect((e) => log.push(`errorOccurred(${e})`));
      const fromQt: Array<[string, number, string]> = [];
      s.readyRead.connect(() => {
        log.push(`readyRead(${s.bytesAvailable()})`);
        while (s.hasPendingDatagrams()) {
          const d = s.receiveDatagram();
          fromQt.push([d.senderAddress().toString(), d.senderPort(), d.data().toString()]);
        }
      });
      const ok = await s.bind(host, 0);
      log.push(`bind=${ok}`);

      const qt = startChild(PYTHON, ['-c', QT_PEER, host, String(s.localPort()), '3']);
      res.add(() => qt.stop());
      const { port: qtPort } = JSON.parse(await qt.nextLine(CHILD_START_MS)) as { port: number };
      log.push(`writeDatagram=${s.writeDatagram('hello from js', host, qtPort)}`);
      for (const text of ['one', 'two']) s.writeDatagram(text, host, qtPort);

      const report = JSON.parse(await qt.nextLine(10000)) as {
        log?: string[];
        senders?: Array<[string, number, string]>;
        timeout?: string[];
      };
      expect(report.timeout).toBeUndefined();
      await waitUntil(() => fromQt.length === 4, 5000, 'the datagram and the three echoes from Qt');

      // Both ways, with the right senders.
      const canonical = new QHostAddress(host).toString();
      expect(report.senders).toEqual([
        [canonical, s.localPort(), 'hello from js'],
        [canonical, s.localPort(), 'one'],
        [canonical, s.localPort(), 'two'],
      ]);
      expect(fromQt).toEqual([
        [canonical, qtPort, 'hello from qt'],
        [canonical, qtPort, 'echo:hello from js'],
        [canonical, qtPort, 'echo:one'],
        [canonical, qtPort, 'echo:two'],
      ]);

      // bind + writeDatagram: the same sequence on both sides.
      const qtLog = report.log!;
      const start = ['stateChanged(4)', 'bind=true', 'bytesWritten(13)', 'writeDatagram=13'];
      expect(qtLog.slice(0, 4)).toEqual(start);
      expect(log.filter((e) => !e.startsWith('readyRead')).slice(0, 4)).toEqual(start);
      // readyRead: reported with the first datagram's size; each one comes before the reads
      // it announced, and there are never more readyReads than datagrams.
      const qtReady = qtLog.filter((e) => e.startsWith('readyRead'));
      expect(qtReady[0]).toBe('readyRead(13)');
      expect(qtReady.length).toBeGreaterThanOrEqual(1);
      expect(qtReady.length).toBeLessThanOrEqual(3);
      const ours = log.filter((e) => e.startsWith('readyRead'));
      expect(ours[0]).toBe('readyRead(13)');
      expect(ours.length).toBeLessThanOrEqual(4);
      expect(log.filter((e) => e.startsWith('errorOccurred'))).toEqual([]);
    });
  },
);
