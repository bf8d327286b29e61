/**
 * QAbstractSocket on the port: the twins of the scenarios in fidelity_socket.py (same
 * names, same calls in the same order, the same lines logged). Where Qt's bind returns a
 * bool for a UDP socket, the port's returns a Promise, which is awaited.
 */
import {
  BindFlag,
  QAbstractSocket,
  QHostAddress,
  QTcpServer,
  QTcpSocket,
  QUdpSocket,
  SocketError,
  SocketState,
  SpecialAddress,
} from '../../lib/qtnetwork/index.js';
import {
  EventLog,
  record,
  settle,
  text,
  waitUntil,
  type Scenario,
  type ScenarioParams,
  type Scope,
} from './port-scenarios.js';

/** What the spec passes: a port free for TCP and UDP, and one nobody listens on. */
export interface SocketParams extends ScenarioParams {
  bindPort: number;
  refusedPort: number;
}

/** The bind modes tried, by the names both sides log. */
const MODES: Array<[string, number]> = [
  ['Default', BindFlag.DefaultForPlatform],
  ['Share', BindFlag.ShareAddress],
  ['DontShare', BindFlag.DontShareAddress],
  ['Reuse', BindFlag.ReuseAddressHint],
];

/** What a bind returned, and the socket after it. */
function bindResult(log: EventLog, name: string, sock: QAbstractSocket, ok: boolean): void {
  log.value(name, [ok, sock.state(), sock.error(), sock.errorString()]);
}

async function listeningServer(scope: Scope): Promise<QTcpServer> {
  const server = scope.keep(new QTcpServer());
  if (!(await server.listen(new QHostAddress('127.0.0.1'), 0))) {
    throw new Error(`listen failed: ${server.errorString()}`);
  }
  return server;
}

/** A QTcpSocket subclass that calls the protected setters. */
class MySocket extends QTcpSocket {
  applyState(state: SocketState): void {
    this.setSocketState(state);
  }

  applyError(error: SocketError): void {
    this.setSocketError(error);
  }

  applyErrorString(text: string): void {
    this.setErrorString(text);
  }
}

function address(name: string): QHostAddress {
  if (name === 'AnyIPv4') return new QHostAddress(SpecialAddress.AnyIPv4);
  if (name === 'Any') return new QHostAddress(SpecialAddress.Any);
  return new QHostAddress(name);
}

const params = (p: ScenarioParams): SocketParams => p as SocketParams;

export const SOCKET_SCENARIOS: Record<string, Scenario> = {
  // ---------------------------------------------------------------------- UDP

  async 'socket.udp.bindPort'(scope, p, log) {
    const { bindPort } = params(p);
    const receiver = scope.keep(new QUdpSocket());
    record(receiver, log);
    const ok = await receiver.bind(bindPort);
    log.value('bind', ok);
    log.step('bind returns', receiver);
    log.value('localPortIsRequested', receiver.localPort() === bindPort);
    log.value('localAddress', receiver.localAddress().toString());
    log.value('localAddressProtocol', receiver.localAddress().protocol());
    const sender = scope.keep(new QUdpSocket());
    log.value(
      'writeDatagram',
      sender.writeDatagram('hello', new QHostAddress('127.0.0.1'), bindPort),
    );
    await waitUntil(() => receiver.hasPendingDatagrams(), 5000, 'the datagram');
    await settle();
    const datagram = receiver.readDatagram(100)!;
    log.value('datagram', text(datagram.data));
    log.value('fromSender', datagram.port === sender.localPort());
  },

  async 'socket.udp.bindSpecialAddress'(scope, p, log) {
    const { bindPort } = params(p);
    const receiver = scope.keep(new QUdpSocket());
    record(receiver, log);
    const ok = await receiver.bind(SpecialAddress.AnyIPv4, bindPort, BindFlag.ShareAddress);
    log.value('bind', ok);
    log.value('localPortIsRequested', receiver.localPort() === bindPort);
    log.value('localAddress', receiver.localAddress().toString());
    log.value('localAddressProtocol', receiver.localAddress().protocol());
    const sender = scope.keep(new QUdpSocket());
    sender.writeDatagram('special', new QHostAddress('127.0.0.1'), bindPort);
    await waitUntil(() => receiver.hasPendingDatagrams(), 5000, 'the datagram');
    await settle();
    log.value('datagram', text(receiver.receiveDatagram().data()));
  },

  async 'socket.udp.bindModes'(_scope, p, log) {
    const { bindPort } = params(p);
    for (const [firstName, first] of MODES) {
      for (const [secondName, second] of MODES) {
        const a = new QUdpSocket();
        const b = new QUdpSocket();
        const okA = await a.bind(bindPort, first);
        const okB = await b.bind(bindPort, second);
        log.value(`${firstName}+${secondName}`, okA);
        bindResult(log, 'second', b, okB);
        a.close();
        b.close();
        await settle();
      }
    }
  },

  async 'socket.udp.bindTwice'(scope, p, log) {
    const { bindPort } = params(p);
    const s = scope.keep(new QUdpSocket());
    record(s, log);
    log.value('bind', await s.bind(bindPort));
    log.step('bound', s);
    log.value('bindAgain', await s.bind(bindPort));
    log.step('bindAgain returns', s);
    log.value('localPortIsRequested', s.localPort() === bindPort);
  },

  async 'socket.bindNullAddress'(scope, p, log) {
    const { bindPort } = params(p);
    const kinds: Array<[string, () => QAbstractSocket]> = [
      ['tcp', () => new QTcpSocket()],
      ['udp', () => new QUdpSocket()],
    ];
    for (const [name, make] of kinds) {
      const s = scope.keep(make());
      const ok = await s.bind(new QHostAddress(), 0);
      log.value(name, [ok, s.localAddress().toString(), s.localAddress().protocol()]);
      if (name === 'tcp') s.abort();
      else s.close();
      const special = scope.keep(make());
      const okNull = await special.bind(SpecialAddress.Null, bindPort);
      log.value(`${name}Null`, [
        okNull,
        special.localAddress().toString(),
        special.localPort() === bindPort,
      ]);
      if (name === 'tcp') special.abort();
      else special.close();
    }
  },

  // ---------------------------------------------------------------------- TCP

  async 'socket.tcp.bindPortConnect'(scope, p, log) {
    const { bindPort } = params(p);
    const server = await listeningServer(scope);
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    log.value('bind', s.bind(bindPort));
    log.step('bind returns', s);
    log.value('localPortIsRequested', s.localPort() === bindPort);
    log.value('localAddress', s.localAddress().toString());
    s.connectToHost('127.0.0.1', server.serverPort());
    log.step('connectToHost returns', s);
    await waitUntil(() => [0, 3].includes(s.state()), 5000, 'connected');
    await waitUntil(() => server.hasPendingConnections(), 5000, 'the server side');
    await settle();
    log.step('connected', s);
    const peer = scope.keep(server.nextPendingConnection()!);
    log.value('peerSeesBoundPort', peer.peerPort() === bindPort);
    log.value('localPortIsRequested', s.localPort() === bindPort);
    // The server side closes first, so that no TIME_WAIT holds the bound port afterwards.
    peer.disconnectFromHost();
    await waitUntil(() => s.state() === 0, 5000, 'the close');
    await settle();
    log.step('closed', s);
    log.value('localPort', s.localPort());
  },

  async 'socket.tcp.bindModes'(_scope, p, log) {
    const { bindPort } = params(p);
    for (const [firstName, first] of MODES) {
      for (const [secondName, second] of MODES) {
        const a = new QTcpSocket();
        const b = new QTcpSocket();
        const okA = a.bind(bindPort, first);
        const okB = b.bind(bindPort, second);
        log.value(`${firstName}+${secondName}`, okA);
        bindResult(log, 'second', b, okB);
        a.abort();
        b.abort();
      }
    }
  },

  async 'socket.tcp.bindAddresses'(_scope, p, log) {
    const { bindPort } = params(p);
    const pairs: Array<[string, string]> = [
      ['127.0.0.1', '127.0.0.2'],
      ['127.0.0.1', '127.0.0.1'],
      ['127.0.0.1', 'AnyIPv4'],
      ['AnyIPv4', 'Any'],
      ['::1', '127.0.0.1'],
      ['::1', 'Any'],
    ];
    for (const [first, second] of pairs) {
      const a = new QTcpSocket();
      const b = new QTcpSocket();
      const okA = a.bind(address(first), bindPort);
      const okB = b.bind(address(second), bindPort);
      log.value(`${first}+${second}`, okA);
      bindResult(log, 'second', b, okB);
      a.abort();
      b.abort();
    }
  },

  async 'socket.tcp.bindTwice'(scope, p, log) {
    const { bindPort } = params(p);
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    log.value('bind', s.bind(bindPort));
    log.step('bound', s);
    log.value('bindAgain', s.bind(bindPort));
    log.step('bindAgain returns', s);
    log.value('localPortIsRequested', s.localPort() === bindPort);
  },

  async 'socket.tcp.bindKeptAfterFailedConnect'(scope, p, log) {
    const { bindPort, refusedPort } = params(p);
    const server = await listeningServer(scope);
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    log.value('bind', s.bind(bindPort));
    s.connectToHost('127.0.0.1', refusedPort);
    await waitUntil(() => s.state() === 0, 5000, 'the failure');
    await settle();
    log.step('refused', s);
    log.value('localPortIsRequested', s.localPort() === bindPort);
    s.connectToHost('127.0.0.1', server.serverPort());
    await waitUntil(() => [0, 3].includes(s.state()), 5000, 'connected');
    await waitUntil(() => server.hasPendingConnections(), 5000, 'the server side');
    await settle();
    log.step('connected', s);
    const peer = scope.keep(server.nextPendingConnection()!);
    log.value('peerSeesBoundPort', peer.peerPort() === bindPort);
    // Not a close by the peer (see the Python twin).
    s.abort();
    log.step('aborted', s);
  },

  // ---------------------------------------------------------------------- subclass hooks

  async 'socket.subclass.setSocketStateError'(scope, _p, log) {
    const s = scope.keep(new MySocket());
    record(s, log);
    s.applyState(SocketState.ConnectedState);
    log.step('setSocketState(ConnectedState)', s);
    log.value('isValid', s.isValid());
    log.value('isOpen', s.isOpen());
    s.applyError(SocketError.ConnectionRefusedError);
    log.step('setSocketError(ConnectionRefusedError)', s);
    s.applyErrorString('custom text');
    log.step('setErrorString', s);
    s.applyError(SocketError.HostNotFoundError);
    log.step('setSocketError(HostNotFoundError)', s);
    s.applyState(SocketState.BoundState);
    log.step('setSocketState(BoundState)', s);
    s.applyState(SocketState.UnconnectedState);
    log.step('setSocketState(UnconnectedState)', s);
  },

  // ---------------------------------------------------------------------- pause mode, protocol tag

  async 'socket.pauseMode'(scope, _p, log) {
    log.value('PauseNever', QAbstractSocket.PauseMode.PauseNever);
    log.value('PauseOnSslErrors', QAbstractSocket.PauseMode.PauseOnSslErrors);
    const t = scope.keep(new QTcpSocket());
    const u = scope.keep(new QUdpSocket());
    record(t, log);
    log.value('tcpDefault', t.pauseMode());
    log.value('udpDefault', u.pauseMode());
    t.setPauseMode(QAbstractSocket.PauseMode.PauseOnSslErrors);
    log.value('tcpSet', t.pauseMode());
    t.resume();
    log.step('resume unconnected', t);
    t.setPauseMode(QAbstractSocket.PauseMode.PauseNever);
    log.value('tcpCleared', t.pauseMode());
  },

  async 'socket.protocolTag'(scope, _p, log) {
    const t = scope.keep(new QTcpSocket());
    const u = scope.keep(new QUdpSocket());
    log.value('tcpDefault', t.protocolTag());
    log.value('udpDefault', u.protocolTag());
    t.setProtocolTag('mqtt');
    log.value('tcpSet', t.protocolTag());
    log.value('udpUnchanged', u.protocolTag());
    t.setProtocolTag('');
    log.value('tcpCleared', t.protocolTag());
  },
};
