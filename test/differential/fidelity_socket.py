#!/usr/bin/python3
"""QAbstractSocket on real Qt: the Qt side of fidelity-socket.spec.ts.

Usage: /usr/bin/python3 fidelity_socket.py SCENARIO 'JSON-PARAMS'
       /usr/bin/python3 fidelity_socket.py --list

Each scenario has a twin of the same name in port-fidelity-socket.ts that makes the same
calls on the port, in the same order, and logs the same lines. What they cover: bind's two
overloads (bind(port, mode) and bind(address, port, mode)) on UDP and TCP, Qt's bind modes
between two sockets, a bound TCP socket's source port as the peer sees it, the protected
setSocketState/setSocketError of a subclass (they emit nothing), pauseMode and
protocolTag.

Params: bindPort (free for TCP and UDP on every address, fresh for each side), refusedPort
(nobody listens there). Ports are never logged, only whether they are the one asked for.
"""

import sys

from PyQt5.QtNetwork import QAbstractSocket, QHostAddress, QTcpServer, QTcpSocket, QUdpSocket

import qt_scenarios as kit

SCENARIOS = {}


def scenario(name):
    def register(fn):
        SCENARIOS[name] = fn
        return fn

    return register


A = QAbstractSocket

# The bind modes tried, by the names both sides log.
MODES = [
    ('Default', A.DefaultForPlatform),
    ('Share', A.ShareAddress),
    ('DontShare', A.DontShareAddress),
    ('Reuse', A.ReuseAddressHint),
]


def bind_result(log, name, sock, ok):
    """What a bind returned, and the socket after it."""
    log.value(name, [ok, int(sock.state()), int(sock.error()), sock.errorString()])


# ---------------------------------------------------------------------- UDP


@scenario('socket.udp.bindPort')
def udp_bind_port(scope, p, log):
    receiver = scope.keep(QUdpSocket())
    kit.record(receiver, log)
    ok = receiver.bind(p['bindPort'])
    log.value('bind', ok)
    log.step('bind returns', receiver)
    log.value('localPortIsRequested', receiver.localPort() == p['bindPort'])
    log.value('localAddress', receiver.localAddress().toString())
    log.value('localAddressProtocol', int(receiver.localAddress().protocol()))
    sender = scope.keep(QUdpSocket())
    log.value('writeDatagram', sender.writeDatagram(b'hello', QHostAddress('127.0.0.1'), p['bindPort']))
    kit.wait_until(receiver.hasPendingDatagrams, what='the datagram')
    kit.settle()
    data, host, port = receiver.readDatagram(100)
    log.value('datagram', kit.text(data))
    log.value('fromSender', port == sender.localPort())


@scenario('socket.udp.bindSpecialAddress')
def udp_bind_special_address(scope, p, log):
    receiver = scope.keep(QUdpSocket())
    kit.record(receiver, log)
    ok = receiver.bind(QHostAddress.AnyIPv4, p['bindPort'], A.ShareAddress)
    log.value('bind', ok)
    log.value('localPortIsRequested', receiver.localPort() == p['bindPort'])
    log.value('localAddress', receiver.localAddress().toString())
    log.value('localAddressProtocol', int(receiver.localAddress().protocol()))
    sender = scope.keep(QUdpSocket())
    sender.writeDatagram(b'special', QHostAddress('127.0.0.1'), p['bindPort'])
    kit.wait_until(receiver.hasPendingDatagrams, what='the datagram')
    kit.settle()
    log.value('datagram', kit.text(receiver.receiveDatagram().data()))


@scenario('socket.udp.bindModes')
def udp_bind_modes(scope, p, log):
    for first_name, first in MODES:
        for second_name, second in MODES:
            a = QUdpSocket()
            b = QUdpSocket()
            ok_a = a.bind(p['bindPort'], first)
            ok_b = b.bind(p['bindPort'], second)
            log.value('%s+%s' % (first_name, second_name), ok_a)
            bind_result(log, 'second', b, ok_b)
            a.close()
            b.close()
            kit.settle()


@scenario('socket.udp.bindTwice')
def udp_bind_twice(scope, p, log):
    s = scope.keep(QUdpSocket())
    kit.record(s, log)
    log.value('bind', s.bind(p['bindPort']))
    log.step('bound', s)
    log.value('bindAgain', s.bind(p['bindPort']))
    log.step('bindAgain returns', s)
    log.value('localPortIsRequested', s.localPort() == p['bindPort'])


@scenario('socket.bindNullAddress')
def bind_null_address(scope, p, log):
    for name, make in (('tcp', QTcpSocket), ('udp', QUdpSocket)):
        s = scope.keep(make())
        ok = s.bind(QHostAddress(), 0)
        log.value(name, [ok, s.localAddress().toString(), int(s.localAddress().protocol())])
        s.abort() if name == 'tcp' else s.close()
        special = scope.keep(make())
        ok = special.bind(QHostAddress.Null, p['bindPort'])
        log.value(name + 'Null', [ok, special.localAddress().toString(), special.localPort() == p['bindPort']])
        special.abort() if name == 'tcp' else special.close()


# ---------------------------------------------------------------------- TCP


def listening_server(scope):
    server = scope.keep(QTcpServer())
    if not server.listen(QHostAddress('127.0.0.1'), 0):
        raise RuntimeError('listen failed: ' + server.errorString())
    return server


@scenario('socket.tcp.bindPortConnect')
def tcp_bind_port_connect(scope, p, log):
    server = listening_server(scope)
    s = scope.keep(QTcpSocket())
    kit.record(s, log)
    log.value('bind', s.bind(p['bindPort']))
    log.step('bind returns', s)
    log.value('localPortIsRequested', s.localPort() == p['bindPort'])
    log.value('localAddress', s.localAddress().toString())
    s.connectToHost('127.0.0.1', server.serverPort())
    log.step('connectToHost returns', s)
    kit.wait_until(lambda: s.state() in (0, 3), what='connected')
    kit.wait_until(server.hasPendingConnections, what='the server side')
    kit.settle()
    log.step('connected', s)
    peer = scope.keep(server.nextPendingConnection())
    log.value('peerSeesBoundPort', peer.peerPort() == p['bindPort'])
    log.value('localPortIsRequested', s.localPort() == p['bindPort'])
    # The server side closes first, so that no TIME_WAIT holds the bound port afterwards.
    peer.disconnectFromHost()
    kit.wait_until(lambda: s.state() == 0, what='the close')
    kit.settle()
    log.step('closed', s)
    log.value('localPort', s.localPort())


@scenario('socket.tcp.bindModes')
def tcp_bind_modes(scope, p, log):
    for first_name, first in MODES:
        for second_name, second in MODES:
            a = QTcpSocket()
            b = QTcpSocket()
            ok_a = a.bind(p['bindPort'], first)
            ok_b = b.bind(p['bindPort'], second)
            log.value('%s+%s' % (first_name, second_name), ok_a)
            bind_result(log, 'second', b, ok_b)
            a.abort()
            b.abort()


@scenario('socket.tcp.bindAddresses')
def tcp_bind_addresses(scope, p, log):
    pairs = [
        ('127.0.0.1', '127.0.0.2'),
        ('127.0.0.1', '127.0.0.1'),
        ('127.0.0.1', 'AnyIPv4'),
        ('AnyIPv4', 'Any'),
        ('::1', '127.0.0.1'),
        ('::1', 'Any'),
    ]

    def address(text):
        if text == 'AnyIPv4':
            return QHostAddress(QHostAddress.AnyIPv4)
        if text == 'Any':
            return QHostAddress(QHostAddress.Any)
        return QHostAddress(text)

    for first, second in pairs:
        a = QTcpSocket()
        b = QTcpSocket()
        ok_a = a.bind(address(first), p['bindPort'])
        ok_b = b.bind(address(second), p['bindPort'])
        log.value('%s+%s' % (first, second), ok_a)
        bind_result(log, 'second', b, ok_b)
        a.abort()
        b.abort()


@scenario('socket.tcp.bindTwice')
def tcp_bind_twice(scope, p, log):
    s = scope.keep(QTcpSocket())
    kit.record(s, log)
    log.value('bind', s.bind(p['bindPort']))
    log.step('bound', s)
    log.value('bindAgain', s.bind(p['bindPort']))
    log.step('bindAgain returns', s)
    log.value('localPortIsRequested', s.localPort() == p['bindPort'])


@scenario('socket.tcp.bindKeptAfterFailedConnect')
def tcp_bind_kept_after_failed_connect(scope, p, log):
    server = listening_server(scope)
    s = scope.keep(QTcpSocket())
    kit.record(s, log)
    log.value('bind', s.bind(p['bindPort']))
    s.connectToHost('127.0.0.1', p['refusedPort'])
    kit.wait_until(lambda: s.state() == 0, what='the failure')
    kit.settle()
    log.step('refused', s)
    log.value('localPortIsRequested', s.localPort() == p['bindPort'])
    s.connectToHost('127.0.0.1', server.serverPort())
    kit.wait_until(lambda: s.state() in (0, 3), what='connected')
    kit.wait_until(server.hasPendingConnections, what='the server side')
    kit.settle()
    log.step('connected', s)
    peer = scope.keep(server.nextPendingConnection())
    log.value('peerSeesBoundPort', peer.peerPort() == p['bindPort'])
    # Not a close by the peer: Qt (5.15 and 6.4) would report it with the stale error of the
    # refused attempt ("Connection refused"), which the port does not reproduce.
    s.abort()
    log.step('aborted', s)


# ---------------------------------------------------------------------- subclass hooks


class MySocket(QTcpSocket):
    """A subclass that calls the protected setters, as a socket written on top of Qt's would."""

    def set_state(self, state):
        self.setSocketState(state)

    def set_error(self, error):
        self.setSocketError(error)

    def set_error_string(self, text):
        self.setErrorString(text)


@scenario('socket.subclass.setSocketStateError')
def subclass_set_socket_state_error(scope, p, log):
    s = scope.keep(MySocket())
    kit.record(s, log)
    s.set_state(A.ConnectedState)
    log.step('setSocketState(ConnectedState)', s)
    log.value('isValid', s.isValid())
    log.value('isOpen', s.isOpen())
    s.set_error(A.ConnectionRefusedError)
    log.step('setSocketError(ConnectionRefusedError)', s)
    s.set_error_string('custom text')
    log.step('setErrorString', s)
    s.set_error(A.HostNotFoundError)
    log.step('setSocketError(HostNotFoundError)', s)
    s.set_state(A.BoundState)
    log.step('setSocketState(BoundState)', s)
    s.set_state(A.UnconnectedState)
    log.step('setSocketState(UnconnectedState)', s)


# ---------------------------------------------------------------------- pause mode, protocol tag


@scenario('socket.pauseMode')
def pause_mode(scope, p, log):
    log.value('PauseNever', int(A.PauseNever))
    log.value('PauseOnSslErrors', int(A.PauseOnSslErrors))
    t = scope.keep(QTcpSocket())
    u = scope.keep(QUdpSocket())
    kit.record(t, log)
    log.value('tcpDefault', int(t.pauseMode()))
    log.value('udpDefault', int(u.pauseMode()))
    t.setPauseMode(A.PauseOnSslErrors)
    log.value('tcpSet', int(t.pauseMode()))
    t.resume()
    log.step('resume unconnected', t)
    t.setPauseMode(A.PauseNever)
    log.value('tcpCleared', int(t.pauseMode()))


@scenario('socket.protocolTag')
def protocol_tag(scope, p, log):
    t = scope.keep(QTcpSocket())
    u = scope.keep(QUdpSocket())
    log.value('tcpDefault', t.protocolTag())
    log.value('udpDefault', u.protocolTag())
    t.setProtocolTag('mqtt')
    log.value('tcpSet', t.protocolTag())
    log.value('udpUnchanged', u.protocolTag())
    t.setProtocolTag('')
    log.value('tcpCleared', t.protocolTag())


if __name__ == '__main__':
    sys.exit(kit.main(SCENARIOS))
