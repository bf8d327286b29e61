/**
 * QIODevice's read transactions, skip, Text mode, read/write channels and pos/size/seek, on a
 * device the test feeds (no network) and on real sockets. Expected values and warning texts
 * were recorded from real Qt: PyQt5 on Qt 5.15.8, and PyQt6 on Qt 6.4.2 where the two differ
 * (the port follows Qt 6 there). test/differential/fidelity-iodevice.spec.ts compares the
 * socket sequences with live Qt.
 */
import * as net from 'node:net';

import {
  OpenModeFlag,
  QHostAddress,
  QIODevice,
  QLocalServer,
  QLocalSocket,
  QSslSocket,
  QTcpSocket,
  QUdpSocket,
  QtMsgType,
  SocketState,
} from '../../../lib/qtnetwork/index.js';
import { uniqueLocalName } from '../../helpers/qlocal-helpers.js';
import { nextConnection, sslClient, startSslServer } from '../../helpers/qssl-helpers.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';
import { Scope, captureQtMessages } from '../../helpers/qt-scope.js';
import { Resources } from '../../helpers/resources.js';
import { nextEmission, waitUntil } from '../../helpers/signals.js';
import { connectedPair, waitForBytes } from '../../helpers/tcp-pair.js';

const text = (b: Buffer): string => b.toString('latin1');
const ch = (c: string): number => c.charCodeAt(0);

/** A sequential device that buffers what the test feeds it, as a socket does. */
class FedDevice extends QIODevice {
  feed(data: string): void {
    this.buffer.push(Buffer.from(data, 'latin1'));
    this.readyRead.emit();
  }

  protected override readData(): Buffer | null {
    return Buffer.alloc(0);
  }

  protected override writeData(data: Buffer): number {
    return data.length;
  }
}

/** A FedDevice opened ReadWrite (its readData reports "nothing more yet", never the end). */
function fed(data = ''): FedDevice {
  const d = new FedDevice();
  d.open(OpenModeFlag.ReadWrite);
  if (data) d.feed(data);
  return d;
}

let qt: ReturnType<typeof captureQtMessages>;
let scope: Scope;
const res = new Resources();

beforeEach(() => {
  qt = captureQtMessages();
  scope = new Scope();
});

afterEach(async () => {
  scope.dispose();
  await res.dispose();
  qt.restore();
});

/** The warnings captured since the last call, cleared. */
function takeWarnings(): string[] {
  const out = qt.messages.splice(0);
  for (const t of qt.types.splice(0)) expect(t).toBe(QtMsgType.QtWarningMsg);
  return out;
}

/** A QLocalSocket connected to a QLocalServer, and the server's end. */
async function localPair(
  mode = OpenModeFlag.ReadWrite,
): Promise<{ client: QLocalSocket; peer: QLocalSocket }> {
  const server = res.server(new QLocalServer());
  expect(await server.listen(uniqueLocalName('iodevice'))).toBe(true);
  const client = res.socket(new QLocalSocket());
  client.connectToServer(server.serverName(), mode);
  expect(await client.waitForConnected(5000)).toBe(true);
  await waitUntil(() => server.hasPendingConnections(), 5000, 'a pending connection');
  const peer = res.socket(server.nextPendingConnection()!);
  return { client, peer };
}

describe('read transactions', () => {
  it('rollback makes everything read since startTransaction readable again', () => {
    const d = fed('line one\nline two\nrest');
    d.startTransaction();
    expect(d.isTransactionStarted()).toBe(true);
    expect(text(d.readLine())).toBe('line one\n');
    expect(d.getChar()).toBe(ch('l'));
    expect(text(d.peek(3))).toBe('ine');
    expect(d.skip(4)).toBe(4);
    expect(text(d.read(4))).toBe('two\n');
    expect(text(d.readAll())).toBe('rest');
    expect(d.bytesAvailable()).toBe(0);
    expect(d.atEnd()).toBe(true);
    expect(d.canReadLine()).toBe(false);
    d.rollbackTransaction();
    expect(d.isTransactionStarted()).toBe(false);
    expect(d.bytesAvailable()).toBe(22);
    expect(text(d.readAll())).toBe('line one\nline two\nrest');
    expect(takeWarnings()).toEqual([]);
  });

  it('commit drops what the transaction read; counts start from its position', () => {
    const d = fed('abc\ndef\n');
    d.startTransaction();
    expect(text(d.read(2))).toBe('ab');
    expect(d.bytesAvailable()).toBe(6);
    expect(d.size()).toBe(6);
    expect(text(d.peek(10))).toBe('c\ndef\n');
    expect(d.canReadLine()).toBe(true);
    expect(text(d.readLine())).toBe('c\n');
    d.commitTransaction();
    expect(d.bytesAvailable()).toBe(4);
    expect(text(d.readAll())).toBe('def\n');
  });

  it('a length-prefixed message in two parts: rolled back until whole, then committed', () => {
    const d = fed();
    const frames: string[] = [];
    const attempts: number[] = [];
    d.readyRead.connect(() => {
      for (;;) {
        d.startTransaction();
        const head = d.read(4);
        const body = head.length === 4 ? d.read(head.readUInt32BE(0)) : Buffer.alloc(0);
        if (head.length < 4 || body.length < head.readUInt32BE(0)) {
          d.rollbackTransaction();
          attempts.push(d.bytesAvailable());
          return;
        }
        d.commitTransaction();
        frames.push(text(body));
      }
    });
    d.feed('\0\0\0\x0bhello');
    expect(frames).toEqual([]);
    d.feed(' world\0\0\0\x03ab');
    d.feed('c');
    expect(frames).toEqual(['hello world', 'abc']);
    expect(attempts).toEqual([9, 6, 0]);
    expect(takeWarnings()).toEqual([]);
  });

  it('warns as Qt does: nested start, commit or rollback without one, ungetChar and setCurrentReadChannel during one', () => {
    const d = fed('xyz');
    d.commitTransaction();
    d.rollbackTransaction();
    d.startTransaction();
    d.startTransaction();
    d.ungetChar('a');
    d.setCurrentReadChannel(0);
    expect(takeWarnings()).toEqual([
      'QIODevice::commitTransaction (FedDevice): Called while no transaction in progress',
      'QIODevice::rollbackTransaction (FedDevice): Called while no transaction in progress',
      'QIODevice::startTransaction (FedDevice): Called while transaction already in progress',
      'QIODevice::ungetChar (FedDevice): Called while transaction is in progress',
      'QIODevice::setReadChannel (FedDevice): Failed due to read transaction being in progress',
    ]);
    expect(d.isTransactionStarted()).toBe(true);
    expect(text(d.readAll())).toBe('xyz'); // ungetChar was refused
  });

  it('close ends a transaction; one may start on a closed device, whose reads still warn', () => {
    const d = fed('abc');
    d.startTransaction();
    d.read(1);
    d.close();
    expect(d.isTransactionStarted()).toBe(false);
    d.startTransaction();
    expect(d.isTransactionStarted()).toBe(true);
    expect(d.read(1).length).toBe(0);
    expect(takeWarnings()).toEqual(['QIODevice::read (FedDevice): device not open']);
    d.commitTransaction();
    expect(d.isTransactionStarted()).toBe(false);
  });

  it('open starts without a transaction (Qt keeps the old one and its position)', () => {
    const d = fed('abc');
    d.startTransaction();
    d.read(2);
    d.open(OpenModeFlag.ReadWrite);
    expect(d.isTransactionStarted()).toBe(false);
    d.feed('new');
    expect(d.bytesAvailable()).toBe(3);
    expect(text(d.readAll())).toBe('new');
  });

  it("QTcpSocket: the transaction's bytes count against readBufferSize; commit resumes reading", async () => {
    const { client, peer } = await connectedPair(scope);
    client.setReadBufferSize(4);
    peer.write('0123456789');
    await waitForBytes(client, 4);
    client.startTransaction();
    expect(text(client.readAll())).toBe('0123');
    expect(client.bytesAvailable()).toBe(0);
    const more = nextEmission(client.readyRead);
    client.commitTransaction();
    await more;
    expect(text(client.read(4))).toBe('4567');
    await waitForBytes(client, 2);
    expect(text(client.readAll())).toBe('89');
  });

  it('QLocalSocket: a transaction reads on past the stream’s readBufferSize', async () => {
    const { client, peer } = await localPair();
    client.setReadBufferSize(4);
    peer.write('0123456789');
    await waitUntil(() => client.bytesAvailable() >= 4, 5000, '4 bytes');
    client.startTransaction();
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      if (client.bytesAvailable() === 0) await nextEmission(client.readyRead);
      got.push(text(client.readAll()));
    }
    expect(got).toEqual(['0123', '4567', '89']);
    client.rollbackTransaction();
    expect(client.bytesAvailable()).toBe(10);
    expect(text(client.readAll())).toBe('0123456789');
  });
});

describe('skip', () => {
  it('skips buffered bytes; beyond them 0 while connected, -1 once the connection is gone', async () => {
    const { client, peer } = await connectedPair(scope);
    peer.write('abcdef');
    await waitForBytes(client, 6);
    expect(client.skip(2)).toBe(2);
    expect(text(client.peek(10))).toBe('cdef');
    expect(client.skip(10)).toBe(4);
    expect(client.skip(3)).toBe(0);
    expect(client.skip(0)).toBe(0);
    const gone = nextEmission(client.disconnected);
    peer.close();
    await gone;
    expect(client.skip(0)).toBe(-1);
    expect(client.skip(3)).toBe(-1);
    expect(client.skip(-1)).toBe(-1);
    expect(takeWarnings()).toEqual(['QIODevice::skip (QTcpSocket): Called with maxSize < 0']);
  });
});

describe('Text mode', () => {
  it('read, peek, getChar and skip drop every \\r; readLine folds only a final \\r\\n', () => {
    const d = fed('ab\r\ncd\r\r\nef\rgh\r');
    d.setTextModeEnabled(true);
    expect(d.isTextModeEnabled()).toBe(true);
    expect(d.openMode()).toBe(OpenModeFlag.ReadWrite | OpenModeFlag.Text);
    expect(d.bytesAvailable()).toBe(15); // the raw bytes
    expect(text(d.readLine())).toBe('ab\n');
    expect(text(d.readLine())).toBe('cd\r\n');
    expect(text(d.peek(3))).toBe('efg');
    expect([d.getChar(), d.getChar(), d.getChar()]).toEqual([ch('e'), ch('f'), ch('g')]);
    expect(text(d.readLine())).toBe('h\r'); // no newline: nothing to fold
    d.feed('\r\r\nX\r\nYZ\r\n');
    expect(d.skip(2)).toBe(2); // "\r\r\nX" gives "\nX"
    expect(text(d.read(4))).toBe('\nYZ\n');
    d.setTextModeEnabled(false);
    d.feed('a\r\n');
    expect(text(d.readAll())).toBe('a\r\n');
  });

  it('setTextModeEnabled on a closed device warns and changes nothing', () => {
    const d = new FedDevice();
    d.setTextModeEnabled(true);
    expect(d.isTextModeEnabled()).toBe(false);
    expect(takeWarnings()).toEqual([
      'QIODevice::setTextModeEnabled (FedDevice): The device is not open',
    ]);
  });

  it('QLocalSocket reads lines through its stream, as Qt 6 does (Qt 6.4 values)', async () => {
    // Qt 5.15 reads a QLocalSocket's lines byte by byte and drops every '\r' in them:
    // "efgh\n", "ij", "1\n", "2", "\n" (docs/qt-differences.md, "QIODevice").
    const { client, peer } = await localPair(OpenModeFlag.ReadWrite | OpenModeFlag.Text);
    peer.write('ab\r\ncd\r\r\nef\rgh\nij\r');
    await waitUntil(() => client.bytesAvailable() >= 18, 5000, '18 bytes');
    const lines = [];
    for (let i = 0; i < 5; i++) lines.push([text(client.readLine()), client.bytesAvailable()]);
    expect(lines).toEqual([
      ['ab\n', 14],
      ['cd\n', 9],
      ['ef\rgh\n', 3],
      ['ij\r', 0],
      ['', 0],
    ]);
    peer.write('1\r\n2\r\n');
    await waitUntil(() => client.bytesAvailable() >= 6, 5000, '6 bytes');
    expect([text(client.readLine(3)), client.bytesAvailable()]).toEqual(['1\r', 4]);
    expect([text(client.readLine(2)), client.bytesAvailable()]).toEqual(['\n', 3]);
    expect([text(client.readLine(4)), client.bytesAvailable()]).toEqual(['2\n', 0]);
  });
});

describe('channels', () => {
  it('a device has one read channel while readable and one write channel while writable', () => {
    const d = new FedDevice();
    expect([d.readChannelCount(), d.writeChannelCount()]).toEqual([0, 0]);
    for (const [mode, counts] of [
      [OpenModeFlag.ReadOnly, [1, 0]],
      [OpenModeFlag.WriteOnly, [0, 1]],
      [OpenModeFlag.ReadWrite, [1, 1]],
    ] as const) {
      d.open(mode);
      expect([d.readChannelCount(), d.writeChannelCount()]).toEqual(counts);
    }
    d.close();
    expect([d.readChannelCount(), d.writeChannelCount()]).toEqual([0, 0]);
    expect([d.currentReadChannel(), d.currentWriteChannel()]).toEqual([0, 0]);
  });

  it('QTcpSocket: readyRead then channelReadyRead(0); bytesWritten then channelBytesWritten(0, n)', async () => {
    const { client, peer } = await connectedPair(scope);
    const log: string[] = [];
    client.readyRead.connect(() => log.push('readyRead'));
    client.channelReadyRead.connect((c) => log.push(`channelReadyRead(${c})`));
    client.bytesWritten.connect((n) => log.push(`bytesWritten(${n})`));
    client.channelBytesWritten.connect((c, n) => log.push(`channelBytesWritten(${c}, ${n})`));
    const written = nextEmission(client.channelBytesWritten);
    client.write('abc');
    await written;
    const read = nextEmission(client.channelReadyRead);
    peer.write('xyz');
    await read;
    expect(log).toEqual([
      'bytesWritten(3)',
      'channelBytesWritten(0, 3)',
      'readyRead',
      'channelReadyRead(0)',
    ]);
  });

  it('on another current channel readyRead and bytesWritten stop; the channel signals go on', async () => {
    // Qt has no channel 1 on a socket either (reading or writing there crashes Qt 5.15);
    // the port keeps reading and writing channel 0.
    const { client, peer } = await connectedPair(scope);
    const log: string[] = [];
    client.readyRead.connect(() => log.push('readyRead'));
    client.channelReadyRead.connect((c) => log.push(`channelReadyRead(${c})`));
    client.bytesWritten.connect((n) => log.push(`bytesWritten(${n})`));
    client.channelBytesWritten.connect((c, n) => log.push(`channelBytesWritten(${c}, ${n})`));
    client.setCurrentReadChannel(1);
    client.setCurrentWriteChannel(1);
    const written = nextEmission(client.channelBytesWritten);
    client.write('ab');
    await written;
    const read = nextEmission(client.channelReadyRead);
    peer.write('cd');
    await read;
    expect(log).toEqual(['channelBytesWritten(0, 2)', 'channelReadyRead(0)']);
    expect(text(client.readAll())).toBe('cd');
  });

  it('QTcpSocket: no channels while connecting; the write channel goes when the connection does', async () => {
    const { client, peer } = await connectedPair(scope);
    expect([client.readChannelCount(), client.writeChannelCount()]).toEqual([1, 1]);
    expect([peer.readChannelCount(), peer.writeChannelCount()]).toEqual([1, 1]);
    const gone = nextEmission(client.disconnected);
    peer.close();
    await gone;
    expect([client.readChannelCount(), client.writeChannelCount()]).toEqual([1, 0]);
    const again = new QTcpSocket();
    scope.socket(again);
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    again.connectToHost('127.0.0.1', (server.address() as net.AddressInfo).port);
    expect(again.isOpen()).toBe(true);
    expect([again.readChannelCount(), again.writeChannelCount()]).toEqual([0, 0]);
    expect(await again.waitForConnected(5000)).toBe(true);
    expect([again.readChannelCount(), again.writeChannelCount()]).toEqual([1, 1]);
    again.abort();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('QLocalSocket emits neither channel signal (Qt 5.15 and 6.4)', async () => {
    const { client, peer } = await localPair();
    const log: string[] = [];
    client.readyRead.connect(() => log.push('readyRead'));
    client.channelReadyRead.connect((c) => log.push(`channelReadyRead(${c})`));
    client.bytesWritten.connect((n) => log.push(`bytesWritten(${n})`));
    client.channelBytesWritten.connect((c, n) => log.push(`channelBytesWritten(${c}, ${n})`));
    const written = nextEmission(client.bytesWritten);
    client.write('abc');
    await written;
    const read = nextEmission(client.readyRead);
    peer.write('xyz');
    await read;
    expect(log).toEqual(['bytesWritten(3)', 'readyRead']);
    expect([client.readChannelCount(), client.writeChannelCount()]).toEqual([1, 1]);
  });

  it('QUdpSocket: channelReadyRead(0) after readyRead; writeDatagram emits no channelBytesWritten (Qt 5.15)', async () => {
    const a = res.socket(new QUdpSocket());
    const b = res.socket(new QUdpSocket());
    expect(await a.bind(new QHostAddress('127.0.0.1'), 0)).toBe(true);
    expect([a.isOpen(), a.readChannelCount(), a.writeChannelCount()]).toEqual([false, 0, 0]);
    const log: string[] = [];
    a.readyRead.connect(() => log.push('a readyRead'));
    a.channelReadyRead.connect((c) => log.push(`a channelReadyRead(${c})`));
    b.bytesWritten.connect((n) => log.push(`b bytesWritten(${n})`));
    b.channelBytesWritten.connect((c, n) => log.push(`b channelBytesWritten(${c}, ${n})`));
    const arrived = nextEmission(a.channelReadyRead);
    expect(b.writeDatagram('hi', new QHostAddress('127.0.0.1'), a.localPort())).toBe(2);
    await arrived;
    expect(log.splice(0)).toEqual(['b bytesWritten(2)', 'a readyRead', 'a channelReadyRead(0)']);
    b.connectToHost(new QHostAddress('127.0.0.1'), a.localPort());
    await waitUntil(() => b.state() === SocketState.ConnectedState, 5000, 'connected');
    expect([b.readChannelCount(), b.writeChannelCount()]).toEqual([1, 1]);
    expect(b.write('xy')).toBe(2);
    expect(log).toEqual(['b bytesWritten(2)', 'b channelBytesWritten(0, 2)']);
  });

  describe('QSslSocket', () => {
    const pki = sslPki();
    afterAll(() => removeSslPki());

    it('bytesWritten then channelBytesWritten(0, n); readyRead then channelReadyRead(0) (Qt 5.15, 6.4)', async () => {
      const srv = await startSslServer(res, { cert: pki.serverCert, key: pki.serverKey });
      const client = sslClient(res, { ca: [pki.caCert] });
      client.connectToHostEncrypted('localhost', srv.serverPort());
      expect(await client.waitForEncrypted(5000)).toBe(true);
      const peer = await nextConnection(res, srv);
      expect(peer).toBeInstanceOf(QSslSocket);
      const log: string[] = [];
      client.readyRead.connect(() => log.push('readyRead'));
      client.channelReadyRead.connect((c) => log.push(`channelReadyRead(${c})`));
      client.bytesWritten.connect((n) => log.push(`bytesWritten(${n})`));
      client.channelBytesWritten.connect((c, n) => log.push(`channelBytesWritten(${c}, ${n})`));
      const written = nextEmission(client.channelBytesWritten);
      client.write('ping');
      await written;
      const read = nextEmission(client.channelReadyRead);
      peer.write('pong');
      await read;
      expect(log).toEqual([
        'bytesWritten(4)',
        'channelBytesWritten(0, 4)',
        'readyRead',
        'channelReadyRead(0)',
      ]);
    });
  });
});

describe('pos, size, seek and reset on a sequential device', () => {
  it('pos is 0, size is bytesAvailable, seek and reset warn and fail (Qt)', () => {
    const d = fed('abcdef');
    d.read(2);
    expect(d.pos()).toBe(0);
    expect(d.size()).toBe(4);
    expect(d.seek(0)).toBe(false);
    expect(d.reset()).toBe(false);
    expect(takeWarnings()).toEqual([
      'QIODevice::seek (FedDevice): Cannot call seek on a sequential device',
      'QIODevice::seek (FedDevice): Cannot call seek on a sequential device',
    ]);
    expect(text(d.read(4))).toBe('cdef');
    d.close();
    expect([d.pos(), d.size()]).toEqual([0, 0]);
  });
});
