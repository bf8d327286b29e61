#!/usr/bin/python3
"""QSslSocket's PSK, OCSP stapling and session tickets on real Qt: the Qt side of
fidelity-ssl.spec.ts.

Usage: /usr/bin/python3 fidelity_ssl.py SCENARIO 'JSON-PARAMS'
       /usr/bin/python3 fidelity_ssl.py --list

Each scenario has a twin of the same name in port-fidelity-ssl.ts that makes the same
calls on the port, in the same order, and logs the same lines. What they cover: a PSK
handshake between a client and a server of the same side (the authenticators each slot
gets, the suite agreed, the failures when a key is missing); a client that asks a node:tls
server (started by the spec) for a stapled OCSP response and checks it (signals, errors,
`ocspResponses()`); a client that keeps its session and resumes it (the server reports the
resumption); the value classes QSslPreSharedKeyAuthenticator and QOcspResponse, and the
new QSslConfiguration fields.

Params: the test PKI's files (ca, serverChain, serverKey, otherCa), `port` of the node:tls
server of the case. Paths and ports are never logged.

Qt's OpenSSL backend logs the OpenSSL errors it discards (category qt.network.ssl) as
warnings; they are internal diagnostics the port does not have, and are left out here.
"""

import sys

from PyQt5.QtCore import QtMsgType, qInstallMessageHandler
from PyQt5.QtNetwork import (
    QHostAddress,
    QOcspResponse,
    QSsl,
    QSslCertificate,
    QSslCipher,
    QSslConfiguration,
    QSslPreSharedKeyAuthenticator,
    QSslSocket,
    QTcpServer,
)

import qt_scenarios as kit

SCENARIOS = {}


def scenario(name):
    def register(fn):
        SCENARIOS[name] = fn
        return fn

    return register


CIPHER = 'PSK-AES128-CBC-SHA256'
KEY = bytes.fromhex('00112233445566778899aabbccddeeff')


def without_ssl_diagnostics(log):
    """Logs warnings as kit.main does, except qt.network.ssl's discarded OpenSSL errors."""

    def on_message(msg_type, context, message):
        if msg_type == QtMsgType.QtWarningMsg and context.category != 'qt.network.ssl':
            log.add('warning(%s)' % kit.js(message))

    qInstallMessageHandler(on_message)


def cn(cert):
    return ','.join(cert.subjectInfo(QSslCertificate.CommonName))


def record_ssl(sock, add):
    """Logs the signals of a QSslSocket that the twins compare (no byte counts)."""
    sock.stateChanged.connect(lambda s: add('stateChanged(%d)' % int(s)))
    sock.connected.connect(lambda: add('connected'))
    sock.modeChanged.connect(lambda m: add('modeChanged(%d)' % int(m)))
    sock.encrypted.connect(lambda: add('encrypted'))
    sock.peerVerifyError.connect(
        lambda e: add('peerVerifyError(%d, %s)' % (int(e.error()), kit.js(cn(e.certificate())))))
    sock.sslErrors.connect(lambda errs: add('sslErrors(%s)' % kit.js([int(e.error()) for e in errs])))
    sock.errorOccurred.connect(
        lambda e: add('errorOccurred(%d, %s)' % (int(e), kit.js(sock.errorString()))))
    sock.disconnected.connect(lambda: add('disconnected'))


def authenticator_fields(a):
    return {
        'hint': kit.text(a.identityHint()),
        'identity': kit.text(a.identity()),
        'maxIdentity': a.maximumIdentityLength(),
        'maxKey': a.maximumPreSharedKeyLength(),
        'key': len(bytes(a.preSharedKey())),
    }


def psk_configuration(sock):
    config = sock.sslConfiguration()
    config.setCiphers([QSslCipher(CIPHER)])
    config.setProtocol(QSsl.TlsV1_2)
    config.setPeerVerifyMode(QSslSocket.VerifyNone)
    return config


class PskServer(QTcpServer):
    """Makes a PSK-only QSslSocket of each connection and starts the server handshake."""

    def __init__(self, setup):
        super().__init__()
        self.setup = setup
        self.sockets = []

    def incomingConnection(self, handle):
        sock = QSslSocket()
        self.sockets.append(sock)
        self.setup(sock)
        sock.setSocketDescriptor(handle)
        sock.startServerEncryption()


def psk_pair(scope, log, server_key, client_key, hint):
    """A PSK server and client of this side; returns (server log, client, server)."""
    server_events = []
    add_server = lambda line: server_events.append('server: ' + line)

    def setup(sock):
        record_ssl(sock, add_server)
        config = psk_configuration(sock)
        if hint is not None:
            config.setPreSharedKeyIdentityHint(hint.encode())
        sock.setSslConfiguration(config)

        def on_psk(a):
            add_server('psk(%s)' % kit.js(authenticator_fields(a)))
            if server_key:
                a.setPreSharedKey(server_key)

        sock.preSharedKeyAuthenticationRequired.connect(on_psk)

    server = scope.keep(PskServer(setup))
    log.value('listen', server.listen(QHostAddress('127.0.0.1'), 0))
    client = scope.keep(QSslSocket())
    record_ssl(client, log.add)
    client.setSslConfiguration(psk_configuration(client))

    def on_client_psk(a):
        log.add('psk(%s)' % kit.js(authenticator_fields(a)))
        a.setIdentity(b'client-1')
        if client_key:
            a.setPreSharedKey(client_key)

    client.preSharedKeyAuthenticationRequired.connect(on_client_psk)
    client.connectToHostEncrypted('127.0.0.1', server.serverPort())
    return server_events, client, server


# ---------------------------------------------------------------------- PSK


@scenario('ssl.psk.handshake')
def psk_handshake(scope, p, log):
    without_ssl_diagnostics(log)
    server_events, client, server = psk_pair(scope, log, KEY, KEY, 'hint-1')
    kit.wait_until(client.isEncrypted, what='encrypted')
    log.value('cipher', client.sessionCipher().name())
    log.value('protocol', int(client.sessionProtocol()))
    log.value('peerCertificateIsNull', client.peerCertificate().isNull())
    client.write(b'over a shared key')
    kit.wait_until(lambda: len(server.sockets) == 1 and server.sockets[0].bytesAvailable() == 17,
                   what='the data')
    peer = server.sockets[0]
    log.value('serverRead', kit.text(peer.readAll()))
    log.value('serverCipher', peer.sessionCipher().name())
    for line in server_events:
        log.add(line)


@scenario('ssl.psk.serverSetsNoKey')
def psk_server_sets_no_key(scope, p, log):
    without_ssl_diagnostics(log)
    server_events, client, server = psk_pair(scope, log, None, KEY, None)
    kit.wait_until(lambda: client.state() == 0, what='the failure')
    kit.wait_until(lambda: any('disconnected' in e for e in server_events), what='the server side')
    kit.settle()
    log.value('encrypted', client.isEncrypted())
    for line in server_events:
        log.add(line)


@scenario('ssl.psk.clientSetsNoKey')
def psk_client_sets_no_key(scope, p, log):
    without_ssl_diagnostics(log)
    server_events, client, server = psk_pair(scope, log, KEY, None, None)
    kit.wait_until(lambda: client.state() == 0, what='the failure')
    kit.settle()
    log.value('encrypted', client.isEncrypted())
    log.value('serverAsked', len(server_events) > 0 and any('psk(' in e for e in server_events))


@scenario('ssl.psk.authenticator')
def psk_authenticator(scope, p, log):
    a = QSslPreSharedKeyAuthenticator()
    log.value('empty', authenticator_fields(a))
    a.setIdentity(b'alice')
    a.setPreSharedKey(b'k' * 1000)
    log.value('set', authenticator_fields(a))
    b = QSslPreSharedKeyAuthenticator(a)
    log.value('copyEqual', b == a)
    b.setIdentity(b'bob')
    log.value('afterChange', [kit.text(a.identity()), kit.text(b.identity()), b == a])
    a.swap(b)
    log.value('swapped', [kit.text(a.identity()), kit.text(b.identity())])


# ---------------------------------------------------------------------- OCSP


def ocsp_client(scope, p, log, verify=None, peer_name=None, ca='ca'):
    """A client that asks for the stapled status, connected to the node:tls server of the case."""
    without_ssl_diagnostics(log)
    client = scope.keep(QSslSocket())
    record_ssl(client, log.add)
    config = client.sslConfiguration()
    config.setCaCertificates(QSslCertificate.fromPath(p[ca]))
    config.setOcspStaplingEnabled(True)
    if verify is not None:
        config.setPeerVerifyMode(verify)
    client.setSslConfiguration(config)
    if peer_name:
        client.setPeerVerifyName(peer_name)
    client.connectToHostEncrypted('localhost', p['port'])
    kit.wait_until(lambda: client.isEncrypted() or client.state() == 0, what='the handshake')
    kit.settle()
    log.value('responses', [
        [int(r.certificateStatus()), int(r.revocationReason()), cn(r.responder()), cn(r.subject())]
        for r in client.ocspResponses()])
    log.value('handshakeErrors', [[int(e.error()), cn(e.certificate())]
                                  for e in client.sslHandshakeErrors()])
    return client


for _name in ('good', 'revoked', 'unknown', 'none', 'tryLater', 'garbage', 'strangerSigned',
              'delegated'):
    scenario('ssl.ocsp.' + _name)(lambda scope, p, log: ocsp_client(scope, p, log))


@scenario('ssl.ocsp.order')
def ocsp_order(scope, p, log):
    ocsp_client(scope, p, log, peer_name='other.example', ca='otherCa')


@scenario('ssl.ocsp.verifyNone')
def ocsp_verify_none(scope, p, log):
    ocsp_client(scope, p, log, verify=QSslSocket.VerifyNone)


@scenario('ssl.ocsp.responseValue')
def ocsp_response_value(scope, p, log):
    r = QOcspResponse()
    log.value('default', [int(r.certificateStatus()), int(r.revocationReason()),
                          r.responder().isNull(), r.subject().isNull()])
    log.value('equal', r == QOcspResponse(r))


# ---------------------------------------------------------------------- sessions


def keeping_client(scope, p, log, name, keep=True, ticket=None):
    """A client (keeping sessions unless told) that connects, echoes once and disconnects."""
    client = scope.keep(QSslSocket())
    config = client.sslConfiguration()
    config.setCaCertificates(QSslCertificate.fromPath(p['ca']))
    config.setSslOption(QSsl.SslOptionDisableSessionPersistence, not keep)
    if ticket is not None:
        config.setSessionTicket(ticket)
    client.setSslConfiguration(config)
    tickets = []

    def view():
        c = client.sslConfiguration()
        return [len(bytes(c.sessionTicket())) > 0, c.sessionTicketLifeTimeHint()]

    client.encrypted.connect(lambda: log.value(name + '.atEncrypted', view()))
    client.newSessionTicketReceived.connect(lambda: tickets.append(view()))
    client.connectToHostEncrypted('localhost', p['port'])
    kit.wait_until(client.isEncrypted, what='encrypted')
    client.write(b'x')
    kit.wait_until(lambda: client.bytesAvailable() > 0, what='the echo')
    kit.settle()
    log.value(name + '.tickets', tickets)
    client.disconnectFromHost()
    kit.wait_until(lambda: client.state() == 0, what='closed')
    return bytes(client.sslConfiguration().sessionTicket())


@scenario('ssl.session.resume')
def session_resume(scope, p, log):
    ticket = keeping_client(scope, p, log, 'first')
    keeping_client(scope, p, log, 'second', ticket=ticket)


@scenario('ssl.session.notKept')
def session_not_kept(scope, p, log):
    ticket = keeping_client(scope, p, log, 'keeping')
    keeping_client(scope, p, log, 'default', keep=False)
    keeping_client(scope, p, log, 'ticketUnused', keep=False, ticket=ticket)


@scenario('ssl.configuration.fields')
def configuration_fields(scope, p, log):
    for name, c in (('null', QSslConfiguration()), ('default', QSslConfiguration.defaultConfiguration())):
        log.value(name, [kit.text(c.preSharedKeyIdentityHint()), c.ocspStaplingEnabled(),
                         kit.text(c.sessionTicket()), c.sessionTicketLifeTimeHint()])
    c = QSslConfiguration()
    c.setPreSharedKeyIdentityHint(b'hint')
    c.setOcspStaplingEnabled(True)
    c.setSessionTicket(b'ticket')
    copy = QSslConfiguration(c)
    log.value('copy', [kit.text(copy.preSharedKeyIdentityHint()), copy.ocspStaplingEnabled(),
                       kit.text(copy.sessionTicket()), copy.sessionTicketLifeTimeHint()])


if __name__ == '__main__':
    sys.exit(kit.main(SCENARIOS))
