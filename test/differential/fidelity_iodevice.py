#!/usr/bin/python3
"""QIODevice on sockets, on real Qt (PyQt5): the Qt side of fidelity-iodevice.spec.ts.

Usage: /usr/bin/python3 fidelity_iodevice.py SCENARIO 'JSON-PARAMS' (--list for the names)

Read transactions over a message that arrives in parts, skip/peek/readLine/getChar edges,
Text mode, read and write channels with their signals, and pos/size/seek/reset, each on a
QTcpSocket (p['port']) and on a QLocalSocket (p['path']). The peers are the spec's script
peers: each sends its next part whenever it receives a byte ('q' makes it close instead),
so a scenario says when each part comes and no timing is involved. Each scenario here has a twin of the same name in
port-fidelity-iodevice.ts that makes the same calls and logs the same lines.
"""

import struct
import sys

import qt_scenarios as kit
from PyQt5.QtCore import QIODevice
from PyQt5.QtNetwork import QLocalSocket, QTcpSocket

SCENARIOS = {}


def scenario(name):
    def register(fn):
        SCENARIOS[name] = fn
        return fn

    return register


def both(name):
    """Registers fn(kind, scope, p, log) as 'tcp.<name>' and 'local.<name>'."""

    def register(fn):
        for kind in ('tcp', 'local'):
            SCENARIOS['%s.%s' % (kind, name)] = (lambda k: lambda scope, p, log: fn(k, scope, p, log))(kind)
        return fn

    return register


# ---------------------------------------------------------------------- helpers


def lat(data):
    """Bytes as a latin-1 string ('' for Qt's -1, which the port's Buffer API reads as empty)."""
    return '' if data is None else bytes(data).decode('latin-1')


def char(result):
    ok, c = result
    return lat(c) if ok else None


def state(s):
    return int(s.state())


def counts(s):
    try:
        return 'rc=%d wc=%d' % (s.readChannelCount(), s.writeChannelCount())
    except RuntimeError:  # a late signal while PyQt tears the socket down
        return 'deleted'



def unrecord(s):
    """Disconnects record_io's slots (before a QLocalSocket's close: Qt 5.15 emits
    aboutToClose twice there, a documented difference the port does not copy)."""
    for sig in (s.stateChanged, s.connected, s.disconnected, s.readChannelFinished, s.aboutToClose,
                s.readyRead, s.channelReadyRead, s.bytesWritten, s.channelBytesWritten, s.errorOccurred):
        sig.disconnect()


def record_io(s, log):
    """Logs the signals this area is about, with the channel counts where they change."""
    s.stateChanged.connect(lambda st: log.add('stateChanged(%d) %s' % (int(st), counts(s))))
    s.connected.connect(lambda: log.add('connected ' + counts(s)))
    s.disconnected.connect(lambda: log.add('disconnected ' + counts(s)))
    s.readChannelFinished.connect(lambda: log.add('readChannelFinished ' + counts(s)))
    s.aboutToClose.connect(lambda: log.add('aboutToClose ' + counts(s)))
    s.readyRead.connect(lambda: log.add('readyRead(%d)' % s.bytesAvailable()))
    s.channelReadyRead.connect(lambda ch: log.add('channelReadyRead(%d, %d)' % (ch, s.bytesAvailable())))
    s.bytesWritten.connect(lambda n: log.add('bytesWritten(%d)' % n))
    s.channelBytesWritten.connect(lambda ch, n: log.add('channelBytesWritten(%d, %d)' % (ch, n)))
    s.errorOccurred.connect(lambda e: log.add('errorOccurred(%d)' % int(e)))


def connect(kind, scope, p, log, mode=QIODevice.ReadWrite, record=True):
    """A socket connected to the scenario's peer; its signals are recorded once connected
    (Qt connects a QLocalSocket inside connectToServer, the port after it returns)."""
    if kind == 'tcp':
        s = scope.keep(QTcpSocket())
        s.connectToHost('127.0.0.1', p['port'], mode)
    else:
        s = scope.keep(QLocalSocket())
        s.connectToServer(p['path'], mode)
    kit.wait_until(lambda: state(s) == 3, what='connected')
    if record:
        record_io(s, log)
    return s


def wait_bytes(s, n, what='the data'):
    kit.wait_until(lambda: s.bytesAvailable() >= n, what=what)
    kit.settle()


def next_part(s, n, log):
    """Asks the peer for its next part and waits until `n` bytes are available."""
    s.write(b'n')
    wait_bytes(s, n, 'the next part')
    log.value('bytesAvailable', s.bytesAvailable())


def read_frame(s, log):
    """One QDataStream-style frame (32-bit big-endian length, then the bytes), read in a
    transaction as QDataStream does: rolled back while incomplete."""
    s.startTransaction()
    head = bytes(s.read(4) or b'')
    if len(head) < 4:
        s.rollbackTransaction()
        log.value('frame', {'incomplete': 'header', 'bytesAvailable': s.bytesAvailable()})
        return
    (n,) = struct.unpack('>I', head)
    body = bytes(s.read(n) or b'')
    if len(body) < n:
        s.rollbackTransaction()
        log.value('frame', {'incomplete': 'body', 'got': len(body), 'of': n, 'bytesAvailable': s.bytesAvailable()})
        return
    s.commitTransaction()
    log.value('frame', {'body': lat(body), 'bytesAvailable': s.bytesAvailable()})


def close(kind, s):
    if kind == 'local':
        unrecord(s)
    s.close()


def end_connection(kind, s):
    if kind == 'tcp':
        s.disconnectFromHost()
    else:
        s.disconnectFromServer()


# ---------------------------------------------------------------------- scenarios


@both('transaction.frames')
def transaction_frames(kind, scope, p, log):
    # Peer: "\0\0\0\x0bhello" | " world\0\0\0\x03abc\0\0\0\x05" | "wxyz!"
    s = connect(kind, scope, p, log)
    next_part(s, 9, log)
    log.mark('first part')
    read_frame(s, log)
    log.value('isTransactionStarted', s.isTransactionStarted())
    read_frame(s, log)
    next_part(s, 26, log)
    read_frame(s, log)
    read_frame(s, log)
    read_frame(s, log)
    next_part(s, 9, log)
    read_frame(s, log)
    read_frame(s, log)
    s.write(b'q')
    kit.wait_until(lambda: state(s) == 0, what='the peer to close')
    kit.settle()
    log.mark('peer closed')
    read_frame(s, log)


@both('transaction.ops')
def transaction_ops(kind, scope, p, log):
    # Peer: "line one\nline t" | "wo\nend"
    s = connect(kind, scope, p, log)
    next_part(s, 15, log)
    log.mark('transaction 1')
    s.startTransaction()
    log.value('isTransactionStarted', s.isTransactionStarted())
    log.value('readLine', lat(s.readLine()))
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('canReadLine', s.canReadLine())
    log.value('readLine', lat(s.readLine()))
    log.value('atEnd', s.atEnd())
    log.value('readLine', lat(s.readLine()))
    log.value('getChar', char(s.getChar()))
    log.value('read(5)', lat(s.read(5)))
    log.value('peek(5)', lat(s.peek(5)))
    log.value('skip(3)', s.skip(3))
    log.value('size', s.size())
    s.rollbackTransaction()
    log.value('isTransactionStarted', s.isTransactionStarted())
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('canReadLine', s.canReadLine())
    log.mark('transaction 2')
    s.startTransaction()
    log.value('getChar', char(s.getChar()))
    log.value('peek(4)', lat(s.peek(4)))
    log.value('skip(5)', s.skip(5))
    log.value('read(3)', lat(s.read(3)))
    log.value('peek(100)', lat(s.peek(100)))
    log.value('readLine(4)', lat(s.readLine(4)))
    log.value('bytesAvailable', s.bytesAvailable())
    s.ungetChar(b'X')
    s.setCurrentReadChannel(0)
    s.startTransaction()
    log.value('readAll', lat(s.readAll()))
    log.value('bytesAvailable', s.bytesAvailable())
    s.rollbackTransaction()
    log.value('bytesAvailable', s.bytesAvailable())
    s.rollbackTransaction()
    s.commitTransaction()
    log.mark('transaction 3')
    s.startTransaction()
    log.value('read(9)', lat(s.read(9)))
    s.commitTransaction()
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('peek(100)', lat(s.peek(100)))
    next_part(s, 12, log)
    s.startTransaction()
    log.value('readLine', lat(s.readLine()))
    log.value('readLine', lat(s.readLine()))
    s.commitTransaction()
    log.value('readLine', lat(s.readLine()))
    log.value('bytesAvailable', s.bytesAvailable())
    log.mark('close in a transaction')
    s.startTransaction()
    log.value('read(1)', lat(s.read(1)))
    close(kind, s)
    log.value('isTransactionStarted', s.isTransactionStarted())
    log.value('bytesAvailable', s.bytesAvailable())
    s.startTransaction()
    log.value('isTransactionStarted', s.isTransactionStarted())
    log.value('read(1)', lat(s.read(1)))
    s.commitTransaction()
    log.value('isTransactionStarted', s.isTransactionStarted())


@both('transaction.peerCloses')
def transaction_peer_closes(kind, scope, p, log):
    # Peer: "abcdef"; 'q' makes it close.
    s = connect(kind, scope, p, log)
    next_part(s, 6, log)
    s.startTransaction()
    log.value('read(4)', lat(s.read(4)))
    s.write(b'q')
    kit.wait_until(lambda: state(s) == 0, what='the peer to close')
    kit.settle()
    log.mark('peer closed')
    log.value('isTransactionStarted', s.isTransactionStarted())
    log.value('isOpen', s.isOpen())
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('read(10)', lat(s.read(10)))
    log.value('atEnd', s.atEnd())
    log.value('skip(3)', s.skip(3))
    log.value('skip(0)', s.skip(0))
    s.rollbackTransaction()
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('readLine', lat(s.readLine()))
    log.value('skip(3)', s.skip(3))
    log.value('skip(0)', s.skip(0))
    log.value('getChar', char(s.getChar()))
    log.value('read(3)', lat(s.read(3)))
    s.startTransaction()
    log.value('readAll', lat(s.readAll()))
    close(kind, s)
    log.value('isTransactionStarted', s.isTransactionStarted())


@both('transaction.readBufferSize')
def transaction_read_buffer_size(kind, scope, p, log):
    # Peer: "0123456789" | "abcdefgh". A transaction keeps what it reads in the buffer: on a
    # QTcpSocket that counts against readBufferSize and reading stops until it ends; a
    # QLocalSocket keeps them in its own buffer above the stream, which goes on reading.
    s = connect(kind, scope, p, log)
    s.setReadBufferSize(4)
    next_part(s, 4, log)
    log.mark('transaction')
    s.startTransaction()
    # Whole reads only: once the buffer is drained both resume reading (after a partial read
    # Qt 5.15 waits for the drain and the port does not; docs/qt-differences.md, "Reading
    # and readBufferSize").
    log.value('read(4)', lat(s.read(4)))
    kit.settle()
    log.value('readAll', lat(s.readAll()))
    kit.settle()
    log.value('readAll', lat(s.readAll()))
    kit.settle()
    s.rollbackTransaction()
    log.value('bytesAvailable', s.bytesAvailable())
    kit.settle()
    log.mark('commit')
    s.startTransaction()
    log.value('readAll', lat(s.readAll()))
    s.commitTransaction()
    kit.settle()
    s.startTransaction()
    log.value('readAll', lat(s.readAll()))
    s.commitTransaction()
    kit.settle()
    log.value('readAll', lat(s.readAll()))
    kit.settle()
    log.mark('readBufferSize 0 during a transaction')
    next_part(s, 4, log)
    s.startTransaction()
    log.value('read(4)', lat(s.read(4)))
    kit.settle()
    s.setReadBufferSize(0)
    kit.wait_until(lambda: s.bytesAvailable() >= 4, what='the rest')
    kit.settle()
    s.rollbackTransaction()
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('readAll', lat(s.readAll()))


@both('edges')
def edges(kind, scope, p, log):
    # Peer: "hello world\nsecond line\nthird"
    s = connect(kind, scope, p, log)
    next_part(s, 29, log)
    log.value('isSequential', s.isSequential())
    log.value('pos', s.pos())
    log.value('size', s.size())
    log.value('seek(0)', s.seek(0))
    log.value('seek(3)', s.seek(3))
    log.value('reset', s.reset())
    log.value('pos', s.pos())
    log.value('readLine(5)', lat(s.readLine(5)))
    log.value('readLine(2)', lat(s.readLine(2)))
    log.value('readLine(1)', lat(s.readLine(1)))
    log.value('readLine(3)', lat(s.readLine(3)))
    log.value('readLine', lat(s.readLine()))
    log.value('getChar', char(s.getChar()))
    s.ungetChar(b's')
    s.ungetChar(b'>')
    log.value('readLine(100)', lat(s.readLine(100)))
    log.value('peek(100)', lat(s.peek(100)))
    log.value('peek(0)', lat(s.peek(0)))
    log.value('read(0)', lat(s.read(0)))
    log.value('skip(0)', s.skip(0))
    log.value('skip(-1)', s.skip(-1))
    log.value('skip(2)', s.skip(2))
    log.value('skip(100)', s.skip(100))
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('atEnd', s.atEnd())
    log.value('size', s.size())
    log.value('skip(5)', s.skip(5))
    log.value('getChar', char(s.getChar()))
    log.value('peek(5)', lat(s.peek(5)))
    log.value('canReadLine', s.canReadLine())
    s.ungetChar(b'\n')
    log.value('canReadLine', s.canReadLine())
    log.value('readLine', lat(s.readLine()))
    close(kind, s)
    log.mark('closed')
    log.value('pos', s.pos())
    log.value('size', s.size())
    log.value('skip(1)', s.skip(1))
    log.value('skip(-1)', s.skip(-1))
    log.value('peek(1)', lat(s.peek(1)))
    log.value('readLine(5)', lat(s.readLine(5)))
    log.value('seek(0)', s.seek(0))
    log.value('atEnd', s.atEnd())


@both('text')
def text_mode(kind, scope, p, log):
    # Peer: "ab\r\ncd\r\r\nef\rgh\r" | "\r\r\nX\r\nYZ\r\n" | "1\r\n2\r\n3\r\n"
    s = connect(kind, scope, p, log, QIODevice.ReadWrite | QIODevice.Text)
    log.value('openMode', int(s.openMode()) & ~int(QIODevice.Unbuffered))
    log.value('isTextModeEnabled', s.isTextModeEnabled())
    next_part(s, 15, log)
    log.value('canReadLine', s.canReadLine())
    log.value('readLine', lat(s.readLine()))
    log.value('bytesAvailable', s.bytesAvailable())
    if kind == 'tcp':
        # A QLocalSocket reads lines through its stream (Qt 6) or byte by byte (Qt 5.15):
        # the two treat a '\r' inside a line differently (see the spec), so only the
        # QTcpSocket reads this one as a line.
        log.value('readLine', lat(s.readLine()))
    else:
        log.value('read(5)', lat(s.read(5)))
    log.value('peek(3)', lat(s.peek(3)))
    log.value('getChar', [char(s.getChar()), char(s.getChar()), char(s.getChar())])
    log.value('read(4)', lat(s.read(4)))
    log.value('bytesAvailable', s.bytesAvailable())
    next_part(s, 10, log)
    log.value('skip(2)', s.skip(2))
    log.value('bytesAvailable', s.bytesAvailable())
    log.value('peek(20)', lat(s.peek(20)))
    log.value('readAll', lat(s.readAll()))
    next_part(s, 9, log)
    s.startTransaction()
    log.value('readLine', lat(s.readLine()))
    log.value('read(5)', lat(s.read(5)))
    log.value('bytesAvailable', s.bytesAvailable())
    s.rollbackTransaction()
    s.startTransaction()
    log.value('skip(4)', s.skip(4))
    log.value('bytesAvailable', s.bytesAvailable())
    s.commitTransaction()
    log.value('readLine', lat(s.readLine()))
    log.value('readLine', lat(s.readLine()))
    s.setTextModeEnabled(False)
    log.value('isTextModeEnabled', s.isTextModeEnabled())
    close(kind, s)
    s.setTextModeEnabled(True)
    log.value('isTextModeEnabled', s.isTextModeEnabled())


@both('text.enabledLater')
def text_enabled_later(kind, scope, p, log):
    # Peer: "one\r\ntwo\r\nthree\r\n"
    s = connect(kind, scope, p, log)
    next_part(s, 17, log)
    log.value('readLine', lat(s.readLine()))
    s.setTextModeEnabled(True)
    log.value('openMode', int(s.openMode()) & ~int(QIODevice.Unbuffered))
    log.value('readLine', lat(s.readLine()))
    log.value('read(3)', lat(s.read(3)))
    log.value('readAll', lat(s.readAll()))


@both('channels')
def channels(kind, scope, p, log):
    # Peer: "" (nothing on connecting) | "pong"
    if kind == 'tcp':
        s = scope.keep(QTcpSocket())
        log.value('counts', counts(s))
        record_io(s, log)
        s.connectToHost('127.0.0.1', p['port'])
        log.value('counts', counts(s))
        kit.wait_until(lambda: state(s) == 3, what='connected')
    else:
        s = scope.keep(QLocalSocket())
        log.value('counts', counts(s))
        s.connectToServer(p['path'])
        kit.wait_until(lambda: state(s) == 3, what='connected')
        record_io(s, log)
    log.mark('connected')
    log.value('counts', counts(s))
    log.value('currentReadChannel', s.currentReadChannel())
    log.value('currentWriteChannel', s.currentWriteChannel())
    next_part(s, 4, log)
    log.value('read', lat(s.readAll()))
    s.setCurrentReadChannel(0)
    s.setCurrentWriteChannel(0)
    s.startTransaction()
    s.setCurrentReadChannel(0)
    s.rollbackTransaction()
    log.mark('disconnect')
    end_connection(kind, s)
    kit.wait_until(lambda: state(s) == 0, what='the close')
    kit.settle()
    log.value('counts', counts(s))
    log.value('isOpen', s.isOpen())


@scenario('tcp.channels.modes')
def tcp_channels_modes(scope, p, log):
    for name, mode in (('ReadOnly', QIODevice.ReadOnly), ('WriteOnly', QIODevice.WriteOnly)):
        log.mark(name)
        s = connect('tcp', scope, p, log, mode, record=False)
        log.value('counts', counts(s))
        s.abort()
        log.value('counts', counts(s))


@scenario('tcp.channels.refused')
def tcp_channels_refused(scope, p, log):
    s = scope.keep(QTcpSocket())
    record_io(s, log)
    s.connectToHost('127.0.0.1', p['port'])
    kit.wait_until(lambda: state(s) == 0, what='the failure')
    kit.settle()
    log.value('counts', counts(s))
    log.value('isOpen', s.isOpen())


if __name__ == '__main__':
    sys.exit(kit.main(SCENARIOS))
