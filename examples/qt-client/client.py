#!/usr/bin/python3
"""A PyQt5 client of NestJS handlers served by nestjs-qt-transport's ServerQt.

    /usr/bin/python3 client.py tcp 127.0.0.1:3000 json
    /usr/bin/python3 client.py local orders cbor

Calls the handlers of test/e2e/fixtures/server-app.ts and prints one JSON line per result:
a request, a streamed reply, an error reply, an event, and a request that shows the event
arrived. Exits 1 on any failure, and after 10 seconds at the latest.

It uses Qt's blocking socket API (waitForReadyRead), as a script or a worker thread would;
client.cpp shows the event-driven way (readyRead).
"""
import json
import os
import sys

from PyQt5.QtCore import QByteArray, QCoreApplication, QDataStream, QElapsedTimer, QThread
from PyQt5.QtNetwork import QLocalSocket, QTcpSocket

import cbor_subset  # PyQt5 has no QCborValue

TIMEOUT_MS = 10000


def fail(message):
    sys.exit(f'client.py: {message}')


if len(sys.argv) != 4 or sys.argv[1] not in ('tcp', 'local') or sys.argv[3] not in ('json', 'cbor'):
    fail('usage: client.py tcp HOST:PORT|local NAME json|cbor')
transport, address, codec = sys.argv[1:]

app = QCoreApplication(sys.argv)
clock = QElapsedTimer()
clock.start()


def time_left():
    left = TIMEOUT_MS - clock.elapsed()
    if left <= 0:
        fail(f'no answer within {TIMEOUT_MS} ms')
    return left


if transport == 'tcp':
    host, port = address.rsplit(':', 1)
    socket = QTcpSocket()
    socket.connectToHost(host, int(port))
else:
    socket = QLocalSocket()
    socket.connectToServer(address)  # a name in the temp dir, or an absolute socket path
if not socket.waitForConnected(5000):
    fail('connect: ' + socket.errorString())

out = QDataStream(socket)  # for writing only
inp = QDataStream(socket)  # for reading only (a waiting read transaction blocks writes)


def send(packet):
    """One frame: QDataStream << QByteArray writes a 4-byte big-endian length, then the bytes."""
    if codec == 'cbor':
        payload = cbor_subset.dumps(packet)
    else:
        payload = json.dumps(packet, separators=(',', ':')).encode()
    out << QByteArray(payload)
    socket.flush()


def read_frame():
    """Returns the next frame's payload, waiting while only part of it has arrived."""
    while True:
        inp.startTransaction()
        frame = QByteArray()
        inp >> frame
        if inp.commitTransaction():
            return bytes(frame)
        if not socket.waitForReadyRead(time_left()):
            fail('read: ' + socket.errorString())


next_id = 0


def call(pattern, data):
    """Sends a request; returns its replies (several for a stream) and their codec."""
    global next_id
    next_id += 1
    send({'id': next_id, 'pattern': pattern, 'data': data})
    replies = []
    while not replies or not (replies[-1].get('isDisposed') or 'err' in replies[-1]):
        payload = read_frame()
        # A reply uses the codec of its request; the first byte tells which it is.
        reply_codec = 'json' if payload[:1] == b'{' else 'cbor'
        reply = json.loads(payload) if reply_codec == 'json' else cbor_subset.loads(payload)
        if 'id' not in reply:
            continue  # not a reply (the server's draining notice, say): ignore it
        if reply_codec != codec:
            fail(f'a {reply_codec} reply to a {codec} request')
        if reply.get('id') != next_id:
            fail(f'a reply for id {reply.get("id")!r} while waiting for {next_id}')
        replies.append(reply)
    return replies


def report(step, **fields):
    print(json.dumps({'step': step, 'codec': codec, **fields}), flush=True)


# (a) request/reply, (b) a stream: one reply per value, (c) an RpcException -> err
report('request', replies=call('sum', [1, 2, 3, 4]))
report('stream', replies=call('streaming', [1, 2, 3]))
report('error', replies=call('rpcError', {'code': 'E_DEMO', 'message': 'nope'}))

# (d) an event has no id and gets no reply; ask the server which events it has seen.
tag = f'py-{transport}-{codec}-{os.getpid()}'
event = {'pattern': 'note', 'data': {'tag': tag, 'text': 'hello from PyQt5'}}
send(event)
report('event', sent=event)
while True:
    replies = call('events', tag)
    if replies[-1].get('response'):
        break
    QThread.msleep(50)
    time_left()
report('events', replies=replies)
