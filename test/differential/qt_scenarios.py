#!/usr/bin/python3
"""Runs one differential scenario on real Qt (PyQt5) and prints what happened.

Usage: /usr/bin/python3 qt_scenarios.py SCENARIO 'JSON-PARAMS'
       /usr/bin/python3 qt_scenarios.py --list

Prints one line of JSON on stdout: {"events": [...]} with the scenario's events, in the
format of test/helpers/socket-log.ts (signals with their arguments, in emission order),
plus step markers ("[label]") and values ("name=<JSON>"). On failure it prints
{"failure": "<traceback>", "events": [...]} and exits with status 1.

Each scenario here has a twin of the same name in port-scenarios.ts that does the same
calls on the TypeScript port; differential.spec.ts runs both against the same peers and
compares the two event lists. Keep the twins line for line alike.

Every wait is bounded, and a watchdog (SIGALRM) ends the process if a scenario hangs.
"""

import ctypes
import json
import os
import signal
import sys
import time
import traceback

from PyQt5.QtCore import QCoreApplication, QEventLoop, QTimer, QtMsgType, qInstallMessageHandler
from PyQt5.QtNetwork import (
    QAbstractSocket,
    QHostAddress,
    QLocalServer,
    QLocalSocket,
    QNetworkProxy,
    QTcpServer,
    QTcpSocket,
)

WATCHDOG_SECONDS = 20


def js(value):
    """A value as JSON, as JavaScript's JSON.stringify writes scalars."""
    return json.dumps(value, ensure_ascii=False, separators=(',', ':'))


class ScenarioTimeout(Exception):
    pass


class Log:
    """The scenario's event list."""

    def __init__(self):
        self.events = []

    def add(self, text):
        self.events.append(text)

    def mark(self, label):
        self.add('[%s]' % label)

    def value(self, name, v):
        self.add('%s=%s' % (name, js(v)))

    def step(self, label, sock):
        """A marker, then the socket's state(), error() and errorString()."""
        self.mark(label)
        self.value('state', int(sock.state()))
        self.value('error', int(sock.error()))
        self.value('errorString', sock.errorString())

    def server_step(self, label, server):
        """A marker, then the server's isListening(), serverError() and errorString()."""
        self.mark(label)
        self.value('isListening', server.isListening())
        self.value('serverError', int(server.serverError()))
        self.value('errorString', server.errorString())


# ---------------------------------------------------------------------- recording


def record(sock, log):
    """Connects slots that log every signal of a QTcpSocket or QLocalSocket."""

    def error_text(e):
        return 'errorOccurred(%d, %s, state=%d)' % (int(e), js(sock.errorString()), int(sock.state()))

    sock.stateChanged.connect(lambda s: log.add('stateChanged(%d)' % int(s)))
    if isinstance(sock, QAbstractSocket):
        sock.hostFound.connect(lambda: log.add('hostFound'))
        sock.proxyAuthenticationRequired.connect(
            lambda proxy, auth: log.add(
                'proxyAuthenticationRequired(type=%d, user=%s, realm=%s)'
                % (int(proxy.type()), js(proxy.user()), js(auth.realm()))
            )
        )
    sock.connected.connect(lambda: log.add('connected'))
    sock.readyRead.connect(lambda: log.add('readyRead(%d)' % sock.bytesAvailable()))
    sock.bytesWritten.connect(lambda n: log.add('bytesWritten(%d)' % n))
    sock.errorOccurred.connect(lambda e: log.add(error_text(e)))
    sock.readChannelFinished.connect(lambda: log.add('readChannelFinished'))
    sock.aboutToClose.connect(lambda: log.add('aboutToClose'))
    sock.disconnected.connect(lambda: log.add('disconnected'))


def record_server(server, log):
    server.newConnection.connect(lambda: log.add('newConnection'))


# ---------------------------------------------------------------------- waiting


def spin(ms):
    """Runs the event loop for `ms` milliseconds."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec_()


def wait_until(predicate, ms=5000, what='condition'):
    """Runs the event loop until `predicate()` is true (polled every 5 ms); bounded by `ms`."""
    deadline = time.monotonic() + ms / 1000.0
    while not predicate():
        if time.monotonic() > deadline:
            raise ScenarioTimeout('timed out after %d ms waiting for %s' % (ms, what))
        spin(5)


SETTLE_MS = 50


def settle():
    """Lets late signals arrive before the next step is recorded."""
    spin(SETTLE_MS)


def text(data):
    return bytes(data).decode('utf-8', 'replace')


def rel(path, p):
    """A path with the test's directories replaced by $DIR and $TMP (so logs do not vary)."""
    if p.get('dir') and path.startswith(p['dir']):
        return '$DIR' + path[len(p['dir']):]
    if p.get('tmp') and path.startswith(p['tmp'] + '/'):
        return '$TMP' + path[len(p['tmp']):]
    return path


class Scope:
    """Keeps the scenario's objects alive (PyQt would collect them) and closes them at the end."""

    def __init__(self):
        self.objects = []

    def keep(self, obj):
        self.objects.append(obj)
        return obj

    def close_all(self):
        for obj in reversed(self.objects):
            try:
                if isinstance(obj, (QTcpSocket, QLocalSocket)):
                    obj.abort()
                else:
                    obj.close()
            except Exception:  # clean-up goes on
                pass


# ---------------------------------------------------------------------- scenarios

SCENARIOS = {}


def scenario(name):
    def register(fn):
        SCENARIOS[name] = fn
        return fn

    return register


def connected_tcp(scope, p, log, host='127.0.0.1'):
    """A QTcpSocket connected to the peer at p['port'] (signals recorded from the start)."""
    s = scope.keep(QTcpSocket())
    record(s, log)
    s.connectToHost(host, p['port'])
    wait_until(lambda: s.state() in (0, 3), what='connected')
    return s


# --- QTcpSocket: connecting


@scenario('tcp.connect.success')
def tcp_connect_success(scope, p, log):
    s = scope.keep(QTcpSocket())
    record(s, log)
    s.connectToHost('127.0.0.1', p['port'])
    log.step('connectToHost returns', s)
    wait_until(lambda: s.state() in (0, 3), what='connected')
    settle()
    log.step('connected', s)
    log.value('peerAddress', s.peerAddress().toString())
    log.value('peerPortIsPeer', s.peerPort() == p['port'])
    log.value('peerName', s.peerName())
    log.value('localAddress', s.localAddress().toString())
    log.value('localPortSet', s.localPort() > 0)
    log.value('openMode', int(s.openMode()))
    log.value('isValid', s.isValid())
    s.disconnectFromHost()
    log.step('disconnectFromHost returns', s)
    settle()
    log.value('peerAddress', s.peerAddress().toString())
    log.value('peerPort', s.peerPort())
    log.value('peerName', s.peerName())
    log.value('localPort', s.localPort())
    log.value('isValid', s.isValid())


@scenario('tcp.connect.refused')
def tcp_connect_refused(scope, p, log):
    s = scope.keep(QTcpSocket())
    record(s, log)
    s.connectToHost('127.0.0.1', p['port'])
    log.step('connectToHost returns', s)
    wait_until(lambda: s.state() == 0, what='the failure')
    settle()
    log.step('failed', s)
    log.value('isOpen', s.isOpen())
    log.value('isValid', s.isValid())
    log.value('peerName', s.peerName())
    log.value('peerPort', s.peerPort())
    # A second attempt resets error() and errorString() at once.
    s.connectToHost('127.0.0.1', p['port'])
    log.step('connectToHost again returns', s)
    wait_until(lambda: s.state() == 0, what='the second failure')
    settle()
    log.step('failed again', s)


@scenario('tcp.connect.hostNotFound')
def tcp_connect_host_not_found(scope, p, log):
    s = scope.keep(QTcpSocket())
    record(s, log)
    s.connectToHost(p['host'], 80)
    log.step('connectToHost returns', s)
    wait_until(lambda: s.state() == 0, what='the failure')
    settle()
    log.step('failed', s)
    log.value('peerName', s.peerName())


@scenario('tcp.connect.localhost')
def tcp_connect_localhost(scope, p, log):
    s = scope.keep(QTcpSocket())
    record(s, log)
    s.connectToHost('localhost', p['port'])
    log.step('connectToHost returns', s)
    wait_until(lambda: s.state() in (0, 3), what='connected')
    settle()
    log.step('connected', s)
    log.value('peerName', s.peerName())
    log.value('peerAddress', s.peerAddress().toString())
    s.abort()
    log.step('abort returns', s)


@scenario('tcp.connect.whileConnecting')
def tcp_connect_while_connecting(scope, p, log):
    s = scope.keep(QTcpSocket())
    record(s, log)
    s.connectToHost('127.0.0.1', p['port'])
    log.step('connectToHost returns', s)
    s.connectToHost('127.0.0.1', p['port'])
    log.step('second connectToHost returns', s)
    wait_until(lambda: s.state() in (0, 3), what='connected')
    settle()
    log.step('connected', s)


@scenario('tcp.unconnected.calls')
def tcp_unconnected_calls(scope, p, log):
    s = scope.keep(QTcpSocket())
    record(s, log)
    log.value('write', s.write(b'x'))
    log.value('putChar', s.putChar(b'x'))
    log.value('waitForConnected', s.waitForConnected(50))
    log.value('waitForDisconnected', s.waitForDisconnected(50))
    log.value('waitForReadyRead', s.waitForReadyRead(50))
    log.value('waitForBytesWritten', s.waitForBytesWritten(50))
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('readAll', text(s.readAll()))
    log.value('isValid', s.isValid())
    log.step('unconnected', s)
    s.disconnectFromHost()
    s.abort()
    s.close()
    log.step('disconnectFromHost, abort, close return', s)


# --- QTcpSocket: closing


@scenario('tcp.peerClose.unread')
def tcp_peer_close_unread(scope, p, log):
    # The peer writes and closes as soon as it accepts: wait for the close itself, as the
    # port's driver does, so that the mark never races the peer's bytes.
    s = scope.keep(QTcpSocket())
    record(s, log)
    s.connectToHost('127.0.0.1', p['port'])
    wait_until(lambda: s.state() == 0, what='the remote close')
    log.mark('connected')
    settle()
    log.step('closed by the peer', s)
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('canReadLine', s.canReadLine())
    log.value('isOpen', s.isOpen())
    log.value('isValid', s.isValid())
    log.value('readLine', text(s.readLine()))
    log.value('read(2)', text(s.read(2)))
    log.value('readAll', text(s.readAll()))
    log.value('atEnd', s.atEnd())
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('write', s.write(b'x'))
    log.step('write returns', s)


@scenario('tcp.disconnectFromHost.pendingWrites')
def tcp_disconnect_pending_writes(scope, p, log):
    s = connected_tcp(scope, p, log)
    settle()
    log.mark('connected')
    log.value('write', s.write(b'0123456789'))
    s.disconnectFromHost()
    log.step('disconnectFromHost returns', s)
    log.value('bytesToWrite', s.bytesToWrite())
    wait_until(lambda: s.state() == 0, what='the close')
    settle()
    log.step('closed', s)
    log.value('bytesToWrite', s.bytesToWrite())
    log.value('openMode', int(s.openMode()))


@scenario('tcp.abort.pendingWrites')
def tcp_abort_pending_writes(scope, p, log):
    s = connected_tcp(scope, p, log)
    settle()
    log.mark('connected')
    log.value('write', s.write(b'abc'))
    s.abort()
    log.step('abort returns', s)
    log.value('bytesToWrite', s.bytesToWrite())
    log.value('openMode', int(s.openMode()))
    settle()
    log.mark('settled')
    s.abort()
    log.step('abort again returns', s)


@scenario('tcp.close.pendingWrites')
def tcp_close_pending_writes(scope, p, log):
    s = connected_tcp(scope, p, log)
    settle()
    log.mark('connected')
    log.value('write', s.write(b'abc'))
    s.close()
    log.step('close returns', s)
    log.value('bytesToWrite', s.bytesToWrite())
    log.value('openMode', int(s.openMode()))
    wait_until(lambda: s.state() == 0, what='the close')
    settle()
    log.step('closed', s)
    log.value('isOpen', s.isOpen())


@scenario('tcp.close.unreadData')
def tcp_close_unread_data(scope, p, log):
    s = connected_tcp(scope, p, log)
    wait_until(lambda: s.bytesAvailable() == 4, what='4 bytes')
    settle()
    log.mark('data arrived')
    s.close()
    log.step('close returns', s)
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('openMode', int(s.openMode()))
    log.value('readAll', text(s.readAll()))


# --- QTcpSocket: reading and waiting


@scenario('tcp.readBufferSize')
def tcp_read_buffer_size(scope, p, log):
    s = scope.keep(QTcpSocket())
    record(s, log)
    s.setReadBufferSize(10)
    log.value('readBufferSize', s.readBufferSize())
    s.connectToHost('127.0.0.1', p['port'])
    total = 0
    while total < 25:
        wait_until(lambda: s.bytesAvailable() > 0, what='data (%d of 25 read)' % total)
        settle()
        log.value('bytesAvailable', s.bytesAvailable())
        chunk = bytes(s.readAll())
        log.value('readAll', text(chunk))
        total += len(chunk)
    settle()
    log.step('all read', s)
    s.setReadBufferSize(0)
    log.value('readBufferSize', s.readBufferSize())


@scenario('tcp.waitFor.timeouts')
def tcp_wait_timeouts(scope, p, log):
    s = connected_tcp(scope, p, log)
    settle()
    log.mark('connected')
    log.value('waitForReadyRead', s.waitForReadyRead(100))
    log.step('waitForReadyRead returns', s)
    log.value('waitForBytesWritten', s.waitForBytesWritten(100))
    log.step('waitForBytesWritten returns', s)
    log.value('waitForDisconnected', s.waitForDisconnected(100))
    log.step('waitForDisconnected returns', s)
    log.value('isOpen', s.isOpen())


# --- QTcpServer


@scenario('tcpServer.listen.addressInUse')
def tcp_server_listen_in_use(scope, p, log):
    server = scope.keep(QTcpServer())
    log.value('listen', server.listen(QHostAddress('127.0.0.1'), p['port']))
    log.server_step('listen returns', server)
    log.value('serverPort', server.serverPort())
    log.value('serverAddress', server.serverAddress().toString())


@scenario('tcpServer.listen.twice')
def tcp_server_listen_twice(scope, p, log):
    server = scope.keep(QTcpServer())
    log.server_step('new', server)
    log.value('listen', server.listen(QHostAddress('127.0.0.1'), 0))
    log.server_step('listen returns', server)
    port = server.serverPort()
    log.value('listen', server.listen(QHostAddress('127.0.0.1'), 0))
    log.server_step('second listen returns', server)
    log.value('samePort', server.serverPort() == port)
    log.value('serverAddress', server.serverAddress().toString())
    server.close()
    log.server_step('close returns', server)
    log.value('serverPort', server.serverPort())
    log.value('serverAddress', server.serverAddress().toString())
    log.value('listen', server.listen(QHostAddress('127.0.0.1'), 0))
    log.server_step('listen after close returns', server)


@scenario('tcpServer.waitForNewConnection.timeout')
def tcp_server_wait_timeout(scope, p, log):
    server = scope.keep(QTcpServer())
    # Not listening, Qt leaves *timedOut unset (PyQt then returns whatever was in memory):
    # only the result is compared.
    log.value('waitForNewConnection[0]', server.waitForNewConnection(20)[0])
    log.server_step('not listening', server)
    log.value('listen', server.listen(QHostAddress('127.0.0.1'), 0))
    log.value('waitForNewConnection', list(server.waitForNewConnection(50)))
    log.server_step('waitForNewConnection returns', server)
    log.value('hasPendingConnections', server.hasPendingConnections())
    log.value('nextPendingConnection', server.nextPendingConnection() is not None)


@scenario('tcpServer.pendingConnections.limit')
def tcp_server_pending_limit(scope, p, log):
    server = scope.keep(QTcpServer())
    record_server(server, log)
    log.value('maxPendingConnections', server.maxPendingConnections())
    server.setMaxPendingConnections(2)
    log.value('maxPendingConnections', server.maxPendingConnections())
    log.value('listen', server.listen(QHostAddress('127.0.0.1'), 0))
    clients = [scope.keep(QTcpSocket()) for _ in range(4)]
    for c in clients:
        c.connectToHost('127.0.0.1', server.serverPort())
    wait_until(lambda: all(c.state() == 3 for c in clients), what='4 connected clients')
    spin(100)
    log.mark('4 clients connected')
    log.value('hasPendingConnections', server.hasPendingConnections())
    taken = 0
    for _ in range(5):
        s = server.nextPendingConnection()
        if s is not None:
            scope.keep(s)
            taken += 1
        log.value('nextPendingConnection', s is not None)
        log.value('hasPendingConnections', server.hasPendingConnections())
        spin(100)
        log.mark('settled')
        log.value('hasPendingConnections', server.hasPendingConnections())
    log.value('taken', taken)


# --- QLocalSocket


@scenario('local.connect.emptyName')
def local_connect_empty_name(scope, p, log):
    s = scope.keep(QLocalSocket())
    record(s, log)
    s.connectToServer('')
    log.step('connectToServer returns', s)
    log.value('serverName', s.serverName())
    log.value('isOpen', s.isOpen())


@scenario('local.connect.tooLong')
def local_connect_too_long(scope, p, log):
    s = scope.keep(QLocalSocket())
    record(s, log)
    s.connectToServer(p['path'])
    log.step('connectToServer returns', s)
    log.value('serverName', s.serverName())


def local_connect_fails(scope, p, log):
    s = scope.keep(QLocalSocket())
    record(s, log)
    s.connectToServer(p['name'])
    log.mark('connectToServer returns')
    wait_until(lambda: s.state() == 0, what='the failure')
    settle()
    log.step('failed', s)
    log.value('serverName', s.serverName())
    log.value('fullServerName', s.fullServerName())
    log.value('isOpen', s.isOpen())


for _name in ('notFound', 'regularFile', 'directory', 'staleSocket'):
    SCENARIOS['local.connect.' + _name] = local_connect_fails


@scenario('local.peerClose.unread')
def local_peer_close_unread(scope, p, log):
    s = scope.keep(QLocalSocket())
    record(s, log)
    s.connectToServer(p['path'])
    log.mark('connectToServer returns')
    wait_until(lambda: s.state() == 0, what='the remote close')
    settle()
    log.step('closed by the peer', s)
    log.value('openMode', int(s.openMode()))
    log.value('isValid', s.isValid())
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('readAll', text(s.readAll()))
    log.value('serverName', s.serverName())
    log.value('fullServerName', s.fullServerName())


@scenario('local.disconnectFromServer.pendingWrites')
def local_disconnect_pending_writes(scope, p, log):
    s = scope.keep(QLocalSocket())
    record(s, log)
    s.connectToServer(p['path'])
    log.mark('connectToServer returns')
    wait_until(lambda: s.state() in (0, 3), what='connected')
    settle()
    log.step('connected', s)
    log.value('openMode', int(s.openMode()))
    log.value('serverName', rel(s.serverName(), p))
    log.value('fullServerName', rel(s.fullServerName(), p))
    log.value('write', s.write(b'abc'))
    s.disconnectFromServer()
    log.step('disconnectFromServer returns', s)
    wait_until(lambda: s.state() == 0, what='the close')
    settle()
    log.step('closed', s)
    log.value('serverName', s.serverName())
    log.value('openMode', int(s.openMode()))
    log.value('isValid', s.isValid())


@scenario('local.close.pendingWrites')
def local_close_pending_writes(scope, p, log):
    s = scope.keep(QLocalSocket())
    record(s, log)
    s.connectToServer(p['path'])
    log.mark('connectToServer returns')
    wait_until(lambda: s.state() in (0, 3), what='connected')
    settle()
    log.step('connected', s)
    log.value('write', s.write(b'abc'))
    s.close()
    log.step('close returns', s)
    log.value('bytesToWrite', s.bytesToWrite())
    log.value('openMode', int(s.openMode()))
    wait_until(lambda: s.state() == 0, what='the close')
    settle()
    log.step('closed', s)
    log.value('openMode', int(s.openMode()))
    log.value('isValid', s.isValid())


@scenario('local.readBufferSize')
def local_read_buffer_size(scope, p, log):
    s = scope.keep(QLocalSocket())
    record(s, log)
    s.setReadBufferSize(10)
    log.value('readBufferSize', s.readBufferSize())
    s.connectToServer(p['path'])
    log.mark('connectToServer returns')
    total = 0
    while total < 25:
        wait_until(lambda: s.bytesAvailable() > 0, what='data (%d of 25 read)' % total)
        settle()
        log.value('bytesAvailable', s.bytesAvailable())
        chunk = bytes(s.readAll())
        log.value('readAll', text(chunk))
        total += len(chunk)
    settle()
    log.step('all read', s)


@scenario('local.abort')
def local_abort(scope, p, log):
    s = scope.keep(QLocalSocket())
    record(s, log)
    s.connectToServer(p['path'])
    log.mark('connectToServer returns')
    wait_until(lambda: s.state() in (0, 3), what='connected')
    settle()
    log.step('connected', s)
    log.value('waitForReadyRead', s.waitForReadyRead(100))
    log.step('waitForReadyRead returns', s)
    log.value('write', s.write(b'abc'))
    s.abort()
    log.step('abort returns', s)
    log.value('bytesToWrite', s.bytesToWrite())
    log.value('openMode', int(s.openMode()))
    log.value('isValid', s.isValid())
    log.value('serverName', s.serverName())
    settle()
    log.mark('settled')
    s.abort()
    log.step('abort again returns', s)
    log.value('openMode', int(s.openMode()))


# --- QLocalServer


@scenario('localServer.listen.emptyName')
def local_server_listen_empty(scope, p, log):
    server = scope.keep(QLocalServer())
    log.value('listen', server.listen(''))
    log.server_step('listen returns', server)
    log.value('serverName', server.serverName())


@scenario('localServer.listen.inUse')
def local_server_listen_in_use(scope, p, log):
    server = scope.keep(QLocalServer())
    log.value('listen', server.listen(p['path']))
    log.server_step('listen returns', server)
    log.value('serverName', server.serverName())
    log.value('fullServerName', server.fullServerName())


@scenario('localServer.listen.regularFile')
def local_server_listen_regular_file(scope, p, log):
    server = scope.keep(QLocalServer())
    log.value('listen', server.listen(p['path']))
    log.server_step('listen returns', server)
    log.value('isFile', os.path.isfile(p['path']))


@scenario('localServer.listen.twice')
def local_server_listen_twice(scope, p, log):
    server = scope.keep(QLocalServer())
    log.server_step('new', server)
    log.value('maxPendingConnections', server.maxPendingConnections())
    log.value('listen', server.listen(p['name']))
    log.server_step('listen returns', server)
    log.value('serverName', server.serverName())
    log.value('fullServerName', rel(server.fullServerName(), p))
    log.value('listen', server.listen(p['name']))
    log.server_step('second listen returns', server)
    server.close()
    log.server_step('close returns', server)
    log.value('serverName', server.serverName())
    log.value('fileExists', os.path.exists(os.path.join(p['tmp'], p['name'])))


def clear_errno():
    """Sets the C library's errno to 0, as a fresh C++ program has it."""
    libc = ctypes.CDLL(None, use_errno=False)
    libc.__errno_location.restype = ctypes.POINTER(ctypes.c_int)
    libc.__errno_location().contents.value = 0


@scenario('localServer.listen.tooLong')
def local_server_listen_too_long(scope, p, log):
    server = scope.keep(QLocalServer())
    # Qt 5.15 reports a path too long for sun_path with whatever errno holds at that moment
    # (no system call failed). Under PyQt5 that is an ENOENT left by Python's start-up
    # ("Name error"); in a C++ program it is 0 ("Unknown error 0"). Clearing errno records
    # the C++ program's result.
    clear_errno()
    log.value('listen', server.listen(p['path']))
    log.server_step('listen returns', server)


@scenario('localServer.removeServer')
def local_server_remove_server(scope, p, log):
    log.value('removeServer(nothing there)', QLocalServer.removeServer(p['missing']))
    log.value('removeServer(stale socket)', QLocalServer.removeServer(p['stale']))
    log.value('staleExists', os.path.exists(p['stale']))
    server = scope.keep(QLocalServer())
    log.value('listen', server.listen(p['live']))
    log.value('removeServer(live server)', QLocalServer.removeServer(p['live']))
    log.value('liveExists', os.path.exists(p['live']))
    log.server_step('after removeServer', server)
    c = scope.keep(QLocalSocket())
    record(c, log)
    c.connectToServer(p['live'])
    log.mark('connectToServer returns')
    wait_until(lambda: c.state() == 0, what='the failure')
    settle()
    log.step('failed', c)


@scenario('localServer.removeServer.regularFile')
def local_server_remove_regular_file(scope, p, log):
    log.value('removeServer', QLocalServer.removeServer(p['path']))
    log.value('fileExists', os.path.exists(p['path']))


@scenario('localServer.pendingConnections.limit')
def local_server_pending_limit(scope, p, log):
    server = scope.keep(QLocalServer())
    server.newConnection.connect(lambda: log.add('newConnection'))
    server.setMaxPendingConnections(2)
    log.value('listen', server.listen(p['path']))
    clients = [scope.keep(QLocalSocket()) for _ in range(5)]
    for c in clients:
        c.connectToServer(p['path'])
    wait_until(lambda: all(c.state() == 3 for c in clients), what='5 connected clients')
    spin(100)
    log.mark('5 clients connected')
    log.value('hasPendingConnections', server.hasPendingConnections())
    taken = 0
    for _ in range(6):
        s = server.nextPendingConnection()
        if s is not None:
            scope.keep(s)
            taken += 1
        log.value('nextPendingConnection', s is not None)
        spin(100)
        log.mark('settled')
    log.value('taken', taken)


# --- QTcpSocket through real proxies


def proxied(scope, p, log, target_host, target_port):
    proxy = QNetworkProxy(
        QNetworkProxy.Socks5Proxy if p['proxyType'] == 'socks5' else QNetworkProxy.HttpProxy,
        p['proxyHost'],
        p['proxyPort'],
        p.get('user', ''),
        p.get('password', ''),
    )
    s = scope.keep(QTcpSocket())
    s.setProxy(proxy)
    record(s, log)
    s.connectToHost(target_host, target_port)
    log.step('connectToHost returns', s)
    wait_until(lambda: s.state() in (0, 3), ms=10000, what='connected or failed')
    settle()
    return s


@scenario('proxy.connect.echo')
def proxy_connect_echo(scope, p, log):
    s = proxied(scope, p, log, '127.0.0.1', p['port'])
    log.step('connected', s)
    log.value('peerAddress', s.peerAddress().toString())
    log.value('peerPortIsTarget', s.peerPort() == p['port'])
    log.value('write', s.write(b'ping'))
    wait_until(lambda: s.bytesAvailable() >= 4, what='the echo')
    settle()
    log.value('readAll', text(s.readAll()))
    s.disconnectFromHost()
    log.step('disconnectFromHost returns', s)
    wait_until(lambda: s.state() == 0, what='the close')
    settle()
    log.step('closed', s)


@scenario('proxy.connect.fails')
def proxy_connect_fails(scope, p, log):
    s = proxied(scope, p, log, p.get('host', '127.0.0.1'), p['port'])
    log.step('failed', s)
    log.value('peerName', s.peerName())
    log.value('peerAddress', s.peerAddress().toString())
    log.value('peerPort', s.peerPort())
    log.value('isOpen', s.isOpen())


# ---------------------------------------------------------------------- main


def main(scenarios=None):
    """Runs the scenario named on the command line. Other drivers (the fidelity_*.py files
    beside this one) import this module and pass their own table of scenarios."""
    if scenarios is None:
        scenarios = SCENARIOS
    if len(sys.argv) == 2 and sys.argv[1] == '--list':
        print(json.dumps(sorted(scenarios)))
        return 0
    if len(sys.argv) != 3 or sys.argv[1] not in scenarios:
        sys.stderr.write('usage: %s SCENARIO JSON-PARAMS (--list for the names)\n' % sys.argv[0])
        return 2
    name, params = sys.argv[1], json.loads(sys.argv[2])
    signal.alarm(WATCHDOG_SECONDS)
    app = QCoreApplication(sys.argv[:1])
    log = Log()

    def on_message(msg_type, _context, message):
        if msg_type == QtMsgType.QtWarningMsg:
            log.add('warning(%s)' % js(message))

    qInstallMessageHandler(on_message)
    scope = Scope()
    status = 0
    try:
        scenarios[name](scope, params, log)
        result = {'events': list(log.events)}
    except Exception:
        result = {'events': list(log.events), 'failure': traceback.format_exc()}
        status = 1
    scope.close_all()
    spin(10)
    qInstallMessageHandler(None)
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + '\n')
    sys.stdout.flush()
    del app
    # Skip interpreter teardown: PyQt objects destroyed in arbitrary order can crash it.
    os._exit(status)


if __name__ == '__main__':
    sys.exit(main())
