/**
 * QTcpSocket's signals, in order, with their arguments and the socket's state and error
 * text at each one. The expected sequences were recorded from real Qt 5.15 (PyQt5) on this
 * machine, with the same peers: "[returns]" marks where the call under test returned, so
 * that what Qt emits synchronously inside the call is told apart from what comes later.
 */
import * as net from 'node:net';

import { jest } from '@jest/globals';

import { QTcpServer, QTcpSocket, SocketError, SocketState } from '../../../lib/qtnetwork/index.js';
import { hasIPv6Loopback } from '../../helpers/net.js';
import { closedPort, receiveUntilEnd, startNetPeer, type NetPeer } from '../../helpers/peers.js';
import { Resources } from '../../helpers/resources.js';
import { nextEmission, sleep } from '../../helpers/signals.js';
import { captureQtMessages, recordSignals } from '../../helpers/socket-log.js';

jest.setTimeout(10000);

const res = new Resources();
afterEach(() => res.dispose());

const ipv6 = hasIPv6Loopback();
const FAMILIES: Array<[string, string]> = [['IPv4', '127.0.0.1']];
if (ipv6) FAMILIES.push(['IPv6', '::1']);
else
  console.log(
    'QTcpSocket signal-order IPv6 variants skipped: this host has no IPv6 loopback (::1)',
  );

const REMOTE_CLOSED = `errorOccurred(1, "The remote host closed the connection", state=3)`;

async function netPeer(host: string, serve?: (s: net.Socket) => void): Promise<NetPeer> {
  const peer = await startNetPeer(host, serve);
  res.add(() => peer.close());
  return peer;
}

function newSocket(): QTcpSocket {
  return res.socket(new QTcpSocket());
}

/** A connected socket and the peer's end of its connection. */
async function connectedTo(host: string): Promise<{ socket: QTcpSocket; other: net.Socket }> {
  const peer = await netPeer(host);
  const socket = newSocket();
  socket.connectToHost(host, peer.port);
  expect(await socket.waitForConnected(5000)).toBe(true);
  const other = await peer.nextConnection();
  return { socket, other };
}

if (!ipv6) {
  it('IPv6 signal-order variants are skipped: this host has no IPv6 loopback (::1)', () => {
    expect(hasIPv6Loopback()).toBe(false);
  });
}

describe.each(FAMILIES)('QTcpSocket signal order over %s loopback (%s)', (_family, host) => {
  it('connect to an IP literal, write before connected, disconnectFromHost after bytesWritten', async () => {
    const peer = await netPeer(host);
    const socket = newSocket();
    const rec = recordSignals(socket);
    socket.connectToHost(host, peer.port);
    rec.mark('[returns]');
    expect(socket.state()).toBe(SocketState.ConnectingState);
    expect(socket.write('hello')).toBe(5);
    await nextEmission(socket.bytesWritten);
    const received = receiveUntilEnd(await peer.nextConnection());
    socket.disconnectFromHost();
    rec.mark('[disconnectFromHost returns]');
    expect(rec.log).toEqual([
      'stateChanged(1)',
      'stateChanged(2)',
      'hostFound',
      '[returns]',
      'stateChanged(3)',
      'connected',
      'bytesWritten(5)',
      'stateChanged(6)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
      '[disconnectFromHost returns]',
    ]);
    expect(socket.state()).toBe(SocketState.UnconnectedState);
    expect(socket.openMode()).toBe(QTcpSocket.OpenModeFlag.ReadWrite);
    expect((await received).toString()).toBe('hello');
  });

  it('a refused connect: stateChanged(Unconnected) then errorOccurred(ConnectionRefusedError), never disconnected', async () => {
    const port = await closedPort(host);
    const socket = newSocket();
    const rec = recordSignals(socket);
    const failed = nextEmission(socket.errorOccurred);
    socket.connectToHost(host, port);
    rec.mark('[returns]');
    await failed;
    await sleep(50);
    expect(rec.log).toEqual([
      'stateChanged(1)',
      'stateChanged(2)',
      'hostFound',
      '[returns]',
      'stateChanged(0)',
      'errorOccurred(0, "Connection refused", state=0)',
    ]);
    expect(socket.error()).toBe(SocketError.ConnectionRefusedError);
  });

  it('after a refused connect, connectToHost again resets error() to UnknownSocketError and errorString() to "Unknown error"', async () => {
    const port = await closedPort(host);
    const socket = newSocket();
    const failed = nextEmission(socket.errorOccurred);
    socket.connectToHost(host, port);
    await failed;
    expect(socket.error()).toBe(SocketError.ConnectionRefusedError);
    const failedAgain = nextEmission(socket.errorOccurred);
    socket.connectToHost(host, port);
    expect(socket.error()).toBe(SocketError.UnknownSocketError);
    expect(socket.errorString()).toBe('Unknown error');
    expect(socket.state()).toBe(SocketState.ConnectingState);
    await failedAgain;
  });

  it('abort() with 3 bytes unwritten is synchronous and drops them: aboutToClose, stateChanged(0), readChannelFinished, disconnected', async () => {
    const { socket, other } = await connectedTo(host);
    const received = receiveUntilEnd(other);
    const rec = recordSignals(socket);
    expect(socket.write('abc')).toBe(3);
    socket.abort();
    rec.mark('[returns]');
    expect(socket.bytesToWrite()).toBe(0);
    expect(socket.openMode()).toBe(0);
    expect(socket.state()).toBe(SocketState.UnconnectedState);
    expect((await received).length).toBe(0);
    await sleep(20);
    expect(rec.log).toEqual([
      'aboutToClose',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
      '[returns]',
    ]);
  });

  it('close() with a pending write: aboutToClose, stateChanged(6), [returns in ClosingState with 3 bytes to write], bytesWritten(3), stateChanged(0), readChannelFinished, disconnected', async () => {
    const { socket, other } = await connectedTo(host);
    const received = receiveUntilEnd(other);
    const rec = recordSignals(socket);
    const disconnected = nextEmission(socket.disconnected);
    expect(socket.write('abc')).toBe(3);
    socket.close();
    rec.mark(`[returns state=${socket.state()} bytesToWrite=${socket.bytesToWrite()}]`);
    await disconnected;
    expect(rec.log).toEqual([
      'aboutToClose',
      'stateChanged(6)',
      '[returns state=6 bytesToWrite=3]',
      'bytesWritten(3)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
    ]);
    expect(socket.openMode()).toBe(0);
    expect((await received).toString()).toBe('abc');
  });

  it('disconnectFromHost() with 10 bytes unwritten: stateChanged(6), [returns in ClosingState with 10 bytes to write], bytesWritten(10), stateChanged(0), readChannelFinished, disconnected', async () => {
    const { socket, other } = await connectedTo(host);
    const received = receiveUntilEnd(other);
    const rec = recordSignals(socket);
    const disconnected = nextEmission(socket.disconnected);
    expect(socket.write('0123456789')).toBe(10);
    socket.disconnectFromHost();
    rec.mark(`[returns state=${socket.state()} bytesToWrite=${socket.bytesToWrite()}]`);
    await disconnected;
    expect(rec.log).toEqual([
      'stateChanged(6)',
      '[returns state=6 bytesToWrite=10]',
      'bytesWritten(10)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
    ]);
    expect(socket.peerAddress().toString()).toBe('');
    expect(socket.peerPort()).toBe(0);
    expect(socket.openMode()).toBe(QTcpSocket.OpenModeFlag.ReadWrite);
    expect((await received).toString()).toBe('0123456789');
  });

  it('disconnectFromHost() with nothing pending is synchronous: stateChanged(6), stateChanged(0), readChannelFinished, disconnected', async () => {
    const { socket } = await connectedTo(host);
    const rec = recordSignals(socket);
    socket.disconnectFromHost();
    rec.mark('[returns]');
    await sleep(20);
    expect(rec.log).toEqual([
      'stateChanged(6)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
      '[returns]',
    ]);
  });

  it('the peer writing "line1\\nrest" and closing: readyRead, RemoteHostClosedError while still connected, then Closing, Unconnected; the data stays readable', async () => {
    const { socket, other } = await connectedTo(host);
    const rec = recordSignals(socket);
    const disconnected = nextEmission(socket.disconnected);
    other.end('line1\nrest');
    await disconnected;
    await sleep(20);
    expect(rec.log).toEqual([
      'readyRead(10)',
      REMOTE_CLOSED,
      'stateChanged(6)',
      'stateChanged(0)',
      'readChannelFinished',
      'disconnected',
    ]);
    expect(socket.readLine().toString()).toBe('line1\n');
    expect(socket.read(2).toString()).toBe('re');
    expect(socket.readAll().toString()).toBe('st');
    expect(socket.readInto(Buffer.alloc(16))).toBe(-1);
    expect(socket.atEnd()).toBe(true);
    expect(socket.isOpen()).toBe(true);
    expect(socket.error()).toBe(SocketError.RemoteHostClosedError);
    expect(socket.write('x')).toBe(-1);
    // Qt: writing to an unconnected socket sets UnknownSocketError "Socket is not connected".
    expect(socket.error()).toBe(SocketError.UnknownSocketError);
    expect(socket.errorString()).toBe('Socket is not connected');
  });

  it('waitForReadyRead(100) on an idle connection: SocketTimeoutError "Network operation timed out", still connected; waitForBytesWritten with nothing pending is false without error; waitForDisconnected(100) times out the same way', async () => {
    const { socket } = await connectedTo(host);
    const rec = recordSignals(socket);
    const timeout = 'errorOccurred(5, "Network operation timed out", state=3)';
    expect(await socket.waitForReadyRead(100)).toBe(false);
    expect(rec.log).toEqual([timeout]);
    expect(socket.state()).toBe(SocketState.ConnectedState);
    expect(socket.isOpen()).toBe(true);
    expect(await socket.waitForBytesWritten(100)).toBe(false);
    expect(rec.log).toEqual([timeout]);
    expect(await socket.waitForDisconnected(100)).toBe(false);
    expect(rec.log).toEqual([timeout, timeout]);
    expect(socket.state()).toBe(SocketState.ConnectedState);
    expect(socket.error()).toBe(SocketError.SocketTimeoutError);
  });

  it('connectToHost while connecting: OperationError "Trying to connect while connection is in progress" with a warning; the first attempt goes on', async () => {
    const peer = await netPeer(host);
    const warnings = captureQtMessages();
    res.add(warnings.restore);
    const socket = newSocket();
    socket.connectToHost(host, peer.port);
    expect(socket.state()).toBe(SocketState.ConnectingState);
    const rec = recordSignals(socket);
    socket.connectToHost(host, peer.port);
    expect(rec.log).toEqual([
      'errorOccurred(19, "Trying to connect while connection is in progress", state=2)',
    ]);
    expect(socket.state()).toBe(SocketState.ConnectingState);
    expect(socket.error()).toBe(SocketError.OperationError);
    expect(warnings.messages).toEqual([
      `QAbstractSocket::connectToHost() called when already looking up or connecting/connected to "${host}"`,
    ]);
    expect(await socket.waitForConnected(5000)).toBe(true);
  });

  it('peerName() is the host given to connectToHost; the server side of the connection has an empty peerName()', async () => {
    const server = res.server(new QTcpServer());
    expect(await server.listen(host, 0)).toBe(true);
    const socket = newSocket();
    socket.connectToHost(host, server.serverPort());
    expect(socket.peerName()).toBe(host);
    expect(await socket.waitForConnected(5000)).toBe(true);
    expect(socket.peerName()).toBe(host);
    if (!server.hasPendingConnections())
      expect((await server.waitForNewConnection(5000))[0]).toBe(true);
    const accepted = res.socket(server.nextPendingConnection()!);
    expect(accepted.peerName()).toBe('');
    expect(accepted.peerPort()).toBe(socket.localPort());
    expect(accepted.peerAddress().toString()).toBe(host);
  });

  it.each(['disconnectFromHost', 'close', 'abort'] as const)(
    'peerName() keeps the host name after %s() (Qt 5.15 clears only the addresses and ports)',
    async (how) => {
      const { socket } = await connectedTo(host);
      socket[how]();
      await sleep(20);
      expect(socket.state()).toBe(SocketState.UnconnectedState);
      expect(socket.peerAddress().toString()).toBe('');
      expect(socket.peerPort()).toBe(0);
      expect(socket.localAddress().toString()).toBe('');
      expect(socket.localPort()).toBe(0);
      expect(socket.peerName()).toBe(host);
    },
  );
});

describe('QTcpSocket signal order with host names and without a connection', () => {
  it('connect to "localhost": stateChanged(1) inside connectToHost; stateChanged(2), hostFound, stateChanged(3), connected after it returns', async () => {
    const peer = await netPeer('127.0.0.1');
    const socket = newSocket();
    const rec = recordSignals(socket);
    const connected = nextEmission(socket.connected);
    socket.connectToHost('localhost', peer.port);
    rec.mark('[returns]');
    expect(socket.state()).toBe(SocketState.HostLookupState);
    await connected;
    expect(rec.log).toEqual([
      'stateChanged(1)',
      '[returns]',
      'stateChanged(2)',
      'hostFound',
      'stateChanged(3)',
      'connected',
    ]);
    expect(socket.peerName()).toBe('localhost');
    expect(socket.peerAddress().toString()).toBe('127.0.0.1');
  });

  it('host not found: stateChanged(1), [returns], stateChanged(0), errorOccurred(HostNotFoundError) "Host not found"; no hostFound', async () => {
    const socket = newSocket();
    const rec = recordSignals(socket);
    const failed = nextEmission(socket.errorOccurred);
    socket.connectToHost('nonexistent.invalid', 80);
    rec.mark('[returns]');
    await failed;
    await sleep(20);
    expect(rec.log).toEqual([
      'stateChanged(1)',
      '[returns]',
      'stateChanged(0)',
      'errorOccurred(2, "Host not found", state=0)',
    ]);
  });

  it('on an unconnected socket: waitForConnected is false; waitForDisconnected is false with a Qt warning; no signals', async () => {
    const warnings = captureQtMessages();
    res.add(warnings.restore);
    const socket = newSocket();
    const rec = recordSignals(socket);
    expect(await socket.waitForConnected(100)).toBe(false);
    expect(warnings.messages).toEqual([]);
    expect(await socket.waitForDisconnected(100)).toBe(false);
    expect(warnings.messages).toEqual([
      'QAbstractSocket::waitForDisconnected() is not allowed in UnconnectedState',
    ]);
    expect(await socket.waitForReadyRead(100)).toBe(false);
    expect(warnings.messages).toHaveLength(1);
    expect(rec.log).toEqual([]);
    expect(socket.error()).toBe(SocketError.UnknownSocketError);
  });

  it('on an unconnected socket: waitForBytesWritten is false with a Qt warning (Qt 5.15)', async () => {
    const warnings = captureQtMessages();
    res.add(warnings.restore);
    const socket = newSocket();
    expect(await socket.waitForBytesWritten(100)).toBe(false);
    expect(warnings.messages).toEqual([
      'QAbstractSocket::waitForBytesWritten() is not allowed in UnconnectedState',
    ]);
  });

  it('write() on an unconnected socket returns -1 and warns that the device is not open', () => {
    const warnings = captureQtMessages();
    res.add(warnings.restore);
    const socket = newSocket();
    const rec = recordSignals(socket);
    expect(socket.write('x')).toBe(-1);
    expect(socket.putChar('x')).toBe(false);
    expect(warnings.messages).toEqual([
      'QIODevice::write (QTcpSocket): device not open',
      'QIODevice::write (QTcpSocket): device not open',
    ]);
    expect(rec.log).toEqual([]);
    expect(socket.error()).toBe(SocketError.UnknownSocketError);
    expect(socket.errorString()).toBe('Unknown error');
  });

  if (ipv6) {
    it('a server listening on Any (dual stack) sees an IPv4 client as ::ffff:127.0.0.1, with an empty peerName()', async () => {
      const server = res.server(new QTcpServer());
      expect(await server.listen()).toBe(true);
      const socket = newSocket();
      socket.connectToHost('127.0.0.1', server.serverPort());
      expect(await socket.waitForConnected(5000)).toBe(true);
      if (!server.hasPendingConnections())
        expect((await server.waitForNewConnection(5000))[0]).toBe(true);
      const accepted = res.socket(server.nextPendingConnection()!);
      expect(accepted.peerAddress().toString()).toBe('::ffff:127.0.0.1');
      expect(accepted.peerPort()).toBe(socket.localPort());
      expect(accepted.peerName()).toBe('');
      expect(socket.peerName()).toBe('127.0.0.1');
    });
  }
});
