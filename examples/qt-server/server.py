"""A small Qt (PyQt5) server that speaks docs/protocol.md, for ClientQt to call.

Usage:  /usr/bin/python3 server.py tcp PORT     (0 = any free port, on 127.0.0.1)
        /usr/bin/python3 server.py local NAME   (a QLocalServer name or socket path)

Prints {"event":"ready",...} on stdout once listening, and {"event":"cancel","id":...}
for every cancel it receives. JSON payloads only (PyQt5 has no QCborValue; see
server.cpp for CBOR).

Patterns:
  sum    data [a, b, ...]      -> one reply: the sum
  echo   data anything         -> one reply: the data
  count  data {n, ms}          -> a stream: 1, 2, ..., n, one value every ms milliseconds
  fail   data {message}        -> an error reply {status: 'error', message}
  notes                        -> the data of every `note` event received so far
  note   (an event, no id)     -> stored
  anything else                -> the "no matching message handler" error
"""
import json
import sys

from PyQt5.QtCore import QByteArray, QCoreApplication, QDataStream, QJsonDocument, QTimer
from PyQt5.QtNetwork import QHostAddress, QLocalServer, QTcpServer

NO_HANDLER = 'There is no matching message handler defined in the remote service.'
notes = []  # the data of every `note` event, for the `notes` request
connections = set()  # keeps the Connection objects alive


def say(**line):
    print(json.dumps(line), flush=True)


class Connection:
    """One client: frames in, replies out, and the streams (timers) still running."""

    def __init__(self, socket):
        self.socket = socket
        # Two streams: a read that waits for more bytes leaves its stream at ReadPastEnd,
        # and Qt drops whatever is written through a stream in that state.
        self.inp = QDataStream(socket)  # for reading only
        self.out = QDataStream(socket)  # for writing only
        self.streams = {}  # request id -> QTimer
        socket.readyRead.connect(self.read_frames)
        socket.disconnected.connect(self.closed)

    def read_frames(self):
        while True:
            self.inp.startTransaction()
            frame = QByteArray()
            self.inp >> frame
            if not self.inp.commitTransaction():
                return  # part of a frame: wait for the rest
            doc = QJsonDocument.fromJson(frame)
            if frame.isEmpty() or not doc.isObject():
                self.socket.abort()  # a null/empty frame, CBOR or bad JSON: a protocol error
                return
            packet = doc.toVariant()
            try:
                self.handle(packet)
            except Exception as error:  # e.g. bad data; PyQt would abort on an escaped one
                print('handler failed:', repr(error), file=sys.stderr, flush=True)
                if packet.get('id') is not None:
                    err = {'status': 'error', 'message': 'Internal server error'}
                    self.reply({'id': packet['id'], 'err': err, 'isDisposed': True})

    def reply(self, packet):
        self.out << QJsonDocument.fromVariant(packet).toJson(QJsonDocument.Compact)

    def handle(self, packet):
        pattern, data, id = packet.get('pattern'), packet.get('data'), packet.get('id')
        if packet.get('cancel') is True:
            timer = self.streams.pop(id, None)
            if timer:
                timer.stop()
                timer.deleteLater()
            say(event='cancel', id=id)
        elif id is None:  # an event: no reply, whatever happens
            if pattern == 'note':
                notes.append(data)
        elif pattern == 'sum':
            self.reply({'id': id, 'response': sum(data), 'isDisposed': True})
        elif pattern == 'echo':
            self.reply({'id': id, 'response': data, 'isDisposed': True})
        elif pattern == 'count':
            self.count(id, data['n'], data.get('ms', 0))
        elif pattern == 'fail':
            err = {'status': 'error', 'message': data.get('message', 'failed')}
            self.reply({'id': id, 'err': err, 'isDisposed': True})
        elif pattern == 'notes':
            self.reply({'id': id, 'response': notes, 'isDisposed': True})
        else:
            self.reply({'id': id, 'err': NO_HANDLER, 'isDisposed': True, 'status': 'error'})

    def count(self, id, n, ms):
        if n <= 0:
            self.reply({'id': id, 'isDisposed': True})
            return
        timer = QTimer(self.socket)
        self.streams[id] = timer
        sent = [0]

        def tick():
            sent[0] += 1
            packet = {'id': id, 'response': sent[0]}
            if sent[0] == n:  # isDisposed rides on the last value
                packet['isDisposed'] = True
                timer.stop()
                timer.deleteLater()
                del self.streams[id]
            self.reply(packet)

        timer.timeout.connect(tick)
        timer.start(ms)

    def closed(self):
        for timer in self.streams.values():
            timer.stop()
        self.streams.clear()
        self.socket.deleteLater()
        connections.discard(self)



def main():
    app = QCoreApplication(sys.argv)
    kind, where = sys.argv[1], sys.argv[2]
    if kind == 'tcp':
        server = QTcpServer()
        ok = server.listen(QHostAddress(QHostAddress.LocalHost), int(where))
        ready = {'port': server.serverPort()}
    else:
        server = QLocalServer()
        QLocalServer.removeServer(where)  # a socket file left by a crashed run
        ok = server.listen(where)
        ready = {'name': server.fullServerName()}
    if not ok:
        sys.exit('listen: ' + server.errorString())

    def accept():
        while server.hasPendingConnections():
            connections.add(Connection(server.nextPendingConnection()))

    server.newConnection.connect(accept)
    say(event='ready', **ready)
    sys.exit(app.exec_())


if __name__ == '__main__':
    main()
