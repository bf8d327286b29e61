/**
 * QIODevice, ported from Qt's tst_QIODevice (qtbase/tests/auto/corelib/io/qiodevice) and
 * extended with the behaviour of QIODevice's reading API on QTcpSocket. Expected values and
 * warning texts were recorded from real Qt 5.15 (PyQt5 on Qt 5.15.8) with the same
 * subclasses and the same sequences of calls.
 */
import {
  OpenModeFlag,
  QIODevice,
  QTcpSocket,
  QtMsgType,
  SocketState,
  type OpenMode,
} from '../../../lib/qtnetwork/index.js';
import { Scope, captureQtMessages } from '../../helpers/qt-scope.js';
import { nextEmission, sleep, waitUntil } from '../../helpers/signals.js';
import { connectedPair, waitForBytes } from '../../helpers/tcp-pair.js';

const text = (b: Buffer): string => b.toString('latin1');
const ch = (c: string): number => c.charCodeAt(0);

/**
 * A sequential device whose data comes from `readData`, as a Qt subclass supplies it (the
 * Python twin `Pipe(QIODevice)` recorded the expectations). `null` from readData is Qt's -1
 * (end of stream) once `ended` is set.
 */
class Pipe extends QIODevice {
  readonly sink: Buffer[] = [];
  private src: Buffer;

  constructor(
    data: string,
    private readonly ended = true,
  ) {
    super();
    this.src = Buffer.from(data, 'latin1');
  }

  append(data: string): void {
    this.src = Buffer.concat([this.src, Buffer.from(data, 'latin1')]);
  }

  override bytesAvailable(): number {
    return this.src.length + super.bytesAvailable();
  }

  protected override readData(maxSize: number): Buffer | null {
    if (this.src.length === 0 && this.ended) return null;
    const out = Buffer.from(this.src.subarray(0, maxSize));
    this.src = this.src.subarray(out.length);
    return out;
  }

  protected override writeData(data: Buffer): number {
    this.sink.push(Buffer.from(data));
    return data.length;
  }
}

/**
 * A sequential device that buffers what it receives, as a socket does: `feed` appends to
 * QIODevice's read buffer and emits readyRead; `finish` ends the stream.
 */
class BufferedDevice extends QIODevice {
  readonly sink: Buffer[] = [];
  private ended = false;

  feed(data: string | Buffer): void {
    this.buffer.push(typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data));
    this.readyRead.emit();
  }

  finish(): void {
    this.ended = true;
  }

  fail(message: string): void {
    this.setErrorString(message);
  }

  protected override readData(maxSize: number): Buffer | null {
    if (this.ended && maxSize > 0) return null;
    return Buffer.alloc(0);
  }

  protected override writeData(data: Buffer): number {
    this.sink.push(Buffer.from(data));
    return data.length;
  }
}

/** tst_QIODevice's PeekBug: an endless alphabet. */
class PeekBug extends QIODevice {
  private counter = 0;
  protected override readData(maxSize: number): Buffer | null {
    const alphabet = 'abcdefghijklmnopqrstuvqxyz';
    const out = Buffer.alloc(maxSize);
    for (let i = 0; i < maxSize; i++) {
      out[i] = alphabet.charCodeAt(this.counter);
      this.counter = (this.counter + 1) % 26;
    }
    return out;
  }
  protected override writeData(): number {
    return -1;
  }
}

/** tst_QIODevice's SequentialReadBuffer. */
class SequentialReadBuffer extends QIODevice {
  private offset = 0;
  constructor(readonly buf: Buffer) {
    super();
  }
  protected override readData(maxSize: number): Buffer | null {
    const n = Math.min(maxSize, this.buf.length - this.offset);
    const out = Buffer.from(this.buf.subarray(this.offset, this.offset + n));
    this.offset += n;
    return out;
  }
  protected override writeData(): number {
    return -1;
  }
}

/** tst_QIODevice::getSetCheck's MyIODevice: a QTcpSocket exposing setOpenMode. */
class MyIODevice extends QTcpSocket {
  public override setOpenMode(mode: OpenMode): void {
    super.setOpenMode(mode);
  }
}

let qt: ReturnType<typeof captureQtMessages>;
let scope: Scope;

beforeEach(() => {
  qt = captureQtMessages();
  scope = new Scope();
});

afterEach(() => {
  scope.dispose();
  qt.restore();
});

/** The warnings captured since the last call, cleared. */
function takeWarnings(): string[] {
  const out = qt.messages.splice(0);
  for (const t of qt.types.splice(0)) expect(t).toBe(QtMsgType.QtWarningMsg);
  return out;
}

describe('QIODevice through a subclass (readData / writeData)', () => {
  it('a new device is closed: isOpen, openMode, isReadable, isWritable, errorString', () => {
    const d = new Pipe('abc');
    expect(d.isOpen()).toBe(false);
    expect(d.openMode()).toBe(OpenModeFlag.NotOpen);
    expect(d.isReadable()).toBe(false);
    expect(d.isWritable()).toBe(false);
    expect(d.errorString()).toBe('Unknown error');
    expect(d.bytesToWrite()).toBe(0);
    expect(d.isSequential()).toBe(true);
    expect(QIODevice.OpenModeFlag).toBe(OpenModeFlag);
  });

  it.each([
    ['ReadOnly', OpenModeFlag.ReadOnly, true, false],
    ['WriteOnly', OpenModeFlag.WriteOnly, false, true],
    ['ReadWrite', OpenModeFlag.ReadWrite, true, true],
    ['ReadWrite | Unbuffered', OpenModeFlag.ReadWrite | OpenModeFlag.Unbuffered, true, true],
    ['WriteOnly | Append', OpenModeFlag.WriteOnly | OpenModeFlag.Append, false, true],
  ])('open(%s = %d): openMode keeps the flags; isReadable %s, isWritable %s', (_n, mode, r, w) => {
    const d = new Pipe('abc');
    expect(d.open(mode)).toBe(true);
    expect(d.isOpen()).toBe(true);
    expect(d.openMode()).toBe(mode);
    expect(d.isReadable()).toBe(r);
    expect(d.isWritable()).toBe(w);
    d.close();
    expect(d.isOpen()).toBe(false);
    expect(d.openMode()).toBe(OpenModeFlag.NotOpen);
    expect(takeWarnings()).toEqual([]);
  });

  it('reading or writing a device that is not open warns and fails (Qt texts)', () => {
    const d = new Pipe('abc');
    expect(d.read(3).length).toBe(0);
    expect(takeWarnings()).toEqual(['QIODevice::read (Pipe): device not open']);
    expect(d.readInto(Buffer.alloc(3))).toBe(-1);
    expect(takeWarnings()).toEqual(['QIODevice::read (Pipe): device not open']);
    expect(d.write('x')).toBe(-1);
    expect(takeWarnings()).toEqual(['QIODevice::write (Pipe): device not open']);
    expect(d.sink).toEqual([]);
  });

  it('a ReadOnly device refuses writes, a WriteOnly device refuses reads (Qt texts)', () => {
    const d = new Pipe('', false);
    d.open(OpenModeFlag.ReadOnly);
    expect(d.read(5).length).toBe(0);
    expect(takeWarnings()).toEqual([]);
    d.append('abc');
    expect(text(d.read(5))).toBe('abc');
    expect(d.write('x')).toBe(-1);
    expect(takeWarnings()).toEqual(['QIODevice::write (Pipe): ReadOnly device']);
    d.close();

    d.open(OpenModeFlag.WriteOnly);
    expect(d.read(5).length).toBe(0);
    expect(takeWarnings()).toEqual(['QIODevice::read (Pipe): WriteOnly device']);
    expect(d.write('xy')).toBe(2);
    expect(takeWarnings()).toEqual([]);
    expect(Buffer.concat(d.sink).toString()).toBe('xy');
  });

  it('read, readInto and readAll pull data through readData; -1 at end of stream', () => {
    const d = new Pipe('line one\nline two\nrest');
    d.open(OpenModeFlag.ReadWrite);
    expect(d.bytesAvailable()).toBe(22);
    expect(text(d.read(2))).toBe('li');
    const target = Buffer.alloc(4);
    expect(d.readInto(target)).toBe(4);
    expect(text(target)).toBe('ne o');
    expect(text(d.readAll())).toBe('ne\nline two\nrest');
    expect(d.atEnd()).toBe(true);
    expect(d.readInto(Buffer.alloc(5))).toBe(-1);
    expect(d.read(5).length).toBe(0);
    expect(d.readAll().length).toBe(0);
    expect(takeWarnings()).toEqual([]);
  });

  it('a device with no data yet: read gives nothing, readInto 0, atEnd true', () => {
    const d = new Pipe('', false);
    d.open(OpenModeFlag.ReadOnly);
    expect(d.read(5).length).toBe(0);
    expect(d.readInto(Buffer.alloc(5))).toBe(0);
    expect(d.readAll().length).toBe(0);
    expect(d.atEnd()).toBe(true);
    d.append('abc');
    expect(d.atEnd()).toBe(false);
    expect(text(d.read(5))).toBe('abc');
  });

  it('peek reads through readData without consuming', () => {
    const d = new Pipe('line one\nline two\nrest');
    d.open(OpenModeFlag.ReadWrite);
    expect(text(d.peek(4))).toBe('line');
    expect(d.bytesAvailable()).toBe(22);
    expect(text(d.read(2))).toBe('li');
  });

  it('getChar and ungetChar work on data that comes from readData', () => {
    const d = new Pipe('line one\nline two\nrest');
    d.open(OpenModeFlag.ReadWrite);
    expect(text(d.read(2))).toBe('li');
    expect(d.getChar()).toBe(ch('n'));
    d.ungetChar('Z');
    expect(text(d.read(3))).toBe('Ze ');
  });

  it('readLine reads lines through readData (Qt sequence)', () => {
    const d = new Pipe('line one\nline two\nrest');
    d.open(OpenModeFlag.ReadWrite);
    expect(text(d.read(3))).toBe('lin');
    expect(text(d.readLine())).toBe('e one\n');
    expect(text(d.readLine(5))).toBe('line');
    expect(text(d.readLine())).toBe(' two\n');
    expect(d.atEnd()).toBe(false);
    expect(text(d.readAll())).toBe('rest');
    expect(d.atEnd()).toBe(true);
  });

  it('write and putChar go to writeData', () => {
    const d = new Pipe('');
    d.open(OpenModeFlag.ReadWrite);
    expect(d.write('hello')).toBe(5);
    expect(d.putChar('!')).toBe(true);
    expect(d.putChar(0x3f)).toBe(true);
    expect(d.write(Buffer.from([1, 2]))).toBe(2);
    expect(d.write(new Uint8Array([3]))).toBe(1);
    expect(Buffer.concat(d.sink)).toEqual(Buffer.from('hello!?\x01\x02\x03', 'latin1'));
    expect(takeWarnings()).toEqual([]);
  });

  it('peekBug: peeking at more than one byte puts them all back', () => {
    const peekBug = new PeekBug();
    peekBug.open(OpenModeFlag.ReadOnly);
    expect(text(peekBug.peek(2))).toBe('ab');
    expect(text(peekBug.read(1))).toBe('a');
    expect(text(peekBug.peek(2))).toBe('bc');
    expect(text(peekBug.read(1))).toBe('b');
    expect(text(peekBug.read(1))).toBe('c');
    expect(text(peekBug.read(1))).toBe('d');
    expect(text(peekBug.peek(2))).toBe('ef');
  });

  it('readAllKeepPosition: getChar, ungetChar, then readAll returns everything', () => {
    const buffer = new SequentialReadBuffer(Buffer.from('Hello world!'));
    buffer.open(OpenModeFlag.ReadOnly);
    const c = buffer.getChar();
    expect(c).toBe(ch('H'));
    buffer.ungetChar(c!);
    expect(text(buffer.readAll())).toBe('Hello world!');
  });

  it('readAll reads until readData has no more, whatever bytesAvailable says', () => {
    // SequentialReadBuffer does not override bytesAvailable (0), as in Qt's test.
    const buffer = new SequentialReadBuffer(Buffer.from('Hello world!'));
    buffer.open(OpenModeFlag.ReadOnly);
    expect(buffer.bytesAvailable()).toBe(0);
    expect(text(buffer.readAll())).toBe('Hello world!');
    expect(buffer.read(3).length).toBe(0);
  });

  it('close emits aboutToClose while still open, then drops unread data', () => {
    const d = new BufferedDevice();
    d.open(OpenModeFlag.ReadOnly);
    d.feed('abcdef');
    const seen: Array<[OpenMode, number]> = [];
    d.aboutToClose.connect(() => seen.push([d.openMode(), d.bytesAvailable()]));
    d.close();
    expect(seen).toEqual([[OpenModeFlag.ReadOnly, 6]]);
    expect(d.isOpen()).toBe(false);
    expect(d.bytesAvailable()).toBe(0);
    d.close(); // closing a closed device emits nothing
    expect(seen.length).toBe(1);
    d.open(OpenModeFlag.ReadOnly);
    expect(d.read(10).length).toBe(0);
    expect(d.bytesAvailable()).toBe(0);
  });

  it('errorString is "Unknown error" until set; open() clears it', () => {
    const d = new BufferedDevice();
    expect(d.errorString()).toBe('Unknown error');
    d.fail('Something broke');
    expect(d.errorString()).toBe('Something broke');
    d.open(OpenModeFlag.ReadOnly);
    expect(d.errorString()).toBe('Unknown error');
  });

  it('bytesAvailable, atEnd and canReadLine follow the buffer', () => {
    const d = new BufferedDevice();
    expect(d.atEnd()).toBe(true);
    expect(d.canReadLine()).toBe(false);
    d.open(OpenModeFlag.ReadOnly);
    expect(d.atEnd()).toBe(true);
    d.feed('ab');
    expect(d.bytesAvailable()).toBe(2);
    expect(d.atEnd()).toBe(false);
    expect(d.canReadLine()).toBe(false);
    d.feed('c\nd');
    expect(d.canReadLine()).toBe(true);
    expect(text(d.readLine())).toBe('abc\n');
    expect(d.canReadLine()).toBe(false);
    expect(d.bytesAvailable()).toBe(1);
    expect(d.getChar()).toBe(ch('d'));
    expect(d.getChar()).toBeNull();
    expect(d.atEnd()).toBe(true);
  });

  it('readInto returns the count, 0 when nothing is buffered yet, -1 at end of stream', () => {
    const d = new BufferedDevice();
    d.open(OpenModeFlag.ReadOnly);
    const target = Buffer.alloc(8, 0x2e);
    expect(d.readInto(target)).toBe(0);
    d.feed('hello');
    expect(d.readInto(target, 3)).toBe(3);
    expect(text(target)).toBe('hel.....');
    expect(d.readInto(target)).toBe(2);
    expect(text(target.subarray(0, 2))).toBe('lo');
    expect(d.readInto(target, 0)).toBe(0);
    d.feed('x');
    d.finish();
    expect(d.readInto(target)).toBe(1); // buffered data first
    expect(d.readInto(target)).toBe(-1);
    expect(takeWarnings()).toEqual([]);
  });

  it('unget (QBuffer part): ungetChar, readLine(maxSize < 2) warns', () => {
    const buffer = new BufferedDevice();
    buffer.open(OpenModeFlag.ReadWrite);
    buffer.feed('ZXCV');
    expect(text(buffer.read(4))).toBe('ZXCV');

    buffer.ungetChar('a');
    buffer.ungetChar('b');
    buffer.ungetChar('c');
    buffer.ungetChar('d');
    expect(text(buffer.readLine(5))).toBe('dcba');

    buffer.ungetChar('a');
    buffer.ungetChar('b');
    buffer.ungetChar('c');
    buffer.ungetChar('d');
    const expected = ['d', 'c', 'b', 'a', ''];
    for (let i = 0; i < 5; ++i) {
      expect(buffer.readLine(1).length).toBe(0);
      expect(takeWarnings()).toEqual([
        'QIODevice::readLine (BufferedDevice): Called with maxSize < 2',
      ]);
      expect(text(buffer.readLine(2))).toBe(expected[i]);
    }

    buffer.ungetChar('\n');
    expect(text(buffer.readLine())).toBe('\n');
  });

  describe('readLine (tst_QIODevice::readLine_data)', () => {
    const rows: Array<[string, Buffer]> = [];
    rows.push(['0', Buffer.from('\nAA')]);
    rows.push(['1', Buffer.from('A\nAA')]);
    const data = Buffer.alloc(9000, 'A');
    for (const [name, set, unset] of [
      ['8194', 8193, -1],
      ['8193', 8192, 8193],
      ['8192', 8191, 8192],
      ['8191', 8190, 8191],
      ['6000', 5999, -1],
      ['4096', 4095, -1],
    ] as Array<[string, number, number]>) {
      if (unset >= 0) data[unset] = ch('A');
      data[set] = ch('\n');
      rows.push([name, Buffer.from(data)]);
    }
    data[4094] = ch('\n');
    data[4095] = ch('A');
    rows.push(['4095', Buffer.from(data)]);

    it.each(rows)('row %s', (_name, bytes) => {
      const linelen = bytes.indexOf(0x0a) + 1;
      const fresh = (): BufferedDevice => {
        const d = new BufferedDevice();
        d.open(OpenModeFlag.ReadWrite);
        d.feed(bytes);
        return d;
      };
      let buffer = fresh();
      expect(buffer.canReadLine()).toBe(true);
      // try with a line length limit
      expect(buffer.readLine(linelen + 100).length).toBe(linelen);
      // try the exact length of the line (plus terminating \0)
      buffer = fresh();
      expect(buffer.readLine(linelen + 1).length).toBe(linelen);
      // try without a length limit
      buffer = fresh();
      expect(buffer.readLine().length).toBe(linelen);
    });
  });

  describe('readLine2 (tst_QIODevice::readLine2_data)', () => {
    const lengths: Array<[string, number]> = [];
    for (const base of [1024, 4096, 8192, 16384, 32768]) {
      for (const delta of [-4, -3, -2, -1, 0, 1, 2]) {
        const name =
          delta === 0 ? `${base}` : `${base} ${delta < 0 ? '-' : '+'} ${Math.abs(delta)}`;
        lengths.push([name, base + delta]);
      }
      if (base === 16384) lengths.push(['20000', 20000]);
    }
    lengths.push(['40000', 40000]);

    it.each(lengths)('row %s', (_name, length) => {
      const line = Buffer.alloc(length, 'x');
      const data = Buffer.concat([
        Buffer.from('First line.\r\n'),
        line,
        Buffer.from('\r\n'),
        line,
        Buffer.from('\r\n'),
        Buffer.from('\r\n0123456789'),
      ]);
      const buffer = new BufferedDevice();
      buffer.open(OpenModeFlag.ReadOnly);
      buffer.feed(data);
      expect(buffer.readLine().length).toBe(13);
      expect(buffer.readLine().length).toBe(length + 2);
      expect(buffer.readLine().length).toBe(length + 2);
      expect(buffer.readLine().length).toBe(2);
      expect(buffer.readLine().length).toBe(10);
      expect(buffer.readLine().length).toBe(0);
    });
  });

  it('readLine(maxSize) reads at most maxSize - 1 bytes (Qt keeps room for the NUL)', () => {
    // Qt: QByteArray readLine(qint64 maxSize) calls readLine(char *, maxSize), which reads
    // at most maxSize - 1 bytes; maxSize 1 warns "Called with maxSize < 2".
    const d = new BufferedDevice();
    d.open(OpenModeFlag.ReadOnly);
    d.feed('hello world\n');
    expect(text(d.readLine(5))).toBe('hell');
    expect(text(d.readLine(2))).toBe('o');
    expect(takeWarnings()).toEqual([]);
    const linelen = 'hello world\n'.length - 5;
    expect(text(d.readLine(linelen))).toBe(' world'); // one short: no newline
    expect(text(d.readLine())).toBe('\n');
  });

  it('readLine with a negative maxSize warns and returns nothing (Qt 6: "maxSize < 2")', () => {
    // Qt 5.15 warned "Called with maxSize < 0" here; Qt 6 checks maxSize < 2 only.
    const d = new BufferedDevice();
    d.open(OpenModeFlag.ReadOnly);
    d.feed('abc\n');
    expect(d.readLine(-1).length).toBe(0);
    expect(takeWarnings()).toEqual([
      'QIODevice::readLine (BufferedDevice): Called with maxSize < 2',
    ]);
    expect(d.bytesAvailable()).toBe(4);
  });
});

describe('QIODevice through connected QTcpSockets', () => {
  it('getSetCheck: setOpenMode / openMode', () => {
    const var1 = scope.socket(new MyIODevice());
    var1.setOpenMode(OpenModeFlag.NotOpen);
    expect(var1.openMode()).toBe(OpenModeFlag.NotOpen);
    var1.setOpenMode(OpenModeFlag.ReadWrite);
    expect(var1.openMode()).toBe(OpenModeFlag.ReadWrite);
  });

  it('constructing_QTcpSocket: open after connecting; the same first line twice', async () => {
    const server = scope.server();
    server.newConnection.connect(() => {
      const s = scope.take(server);
      s?.write('* OK IMAP4rev1 test server ready\r\n');
    });
    expect(await server.listen('127.0.0.1', 0)).toBe(true);

    const socket = scope.socket();
    const device: QIODevice = socket;
    expect(device.isOpen()).toBe(false);

    socket.connectToHost('127.0.0.1', server.serverPort());
    expect(await socket.waitForConnected(5000)).toBe(true);
    expect(device.isOpen()).toBe(true);
    while (!device.canReadLine()) expect(await device.waitForReadyRead(5000)).toBe(true);
    const line1 = device.readLine(1024);
    expect(line1.length).toBeGreaterThan(0);

    socket.close();
    expect(device.isOpen()).toBe(false);
    socket.connectToHost('127.0.0.1', server.serverPort());
    expect(await socket.waitForConnected(5000)).toBe(true);
    expect(device.isOpen()).toBe(true);
    while (!device.canReadLine()) expect(await device.waitForReadyRead(5000)).toBe(true);
    const line2 = socket.readLine(1024);
    expect(text(line2)).toBe(text(line1));
    expect(text(line2)).toBe('* OK IMAP4rev1 test server ready\r\n');
  });

  it('read_QByteArray: read(10), read(256), read(0)', async () => {
    const { client, peer } = await connectedPair(scope);
    peer.write(Buffer.alloc(1000, 'q'));
    await waitForBytes(client, 1000);
    expect(client.read(10).length).toBe(10);
    expect(client.read(256).length).toBe(256);
    expect(client.read(0).length).toBe(0);
    expect(client.bytesAvailable()).toBe(1000 - 266);
  });

  it('a QTcpSocket that is not open: warnings and results as Qt 5.15 gives them', () => {
    const s = scope.socket();
    expect(s.errorString()).toBe('Unknown error');
    expect(s.openMode()).toBe(OpenModeFlag.NotOpen);
    expect(s.isOpen()).toBe(false);
    expect(s.canReadLine()).toBe(false);
    expect(s.atEnd()).toBe(true);
    expect(s.bytesAvailable()).toBe(0);
    expect(takeWarnings()).toEqual([]);
  });

  const notOpen = 'device not open';
  const writeOnly = 'WriteOnly device';
  type Op = [string, unknown, string, (s: QTcpSocket) => unknown];
  const readOps = (what: string): Op[] => [
    ['read(10)', 0, `QIODevice::read (QTcpSocket): ${what}`, (s) => s.read(10).length],
    ['readInto', -1, `QIODevice::read (QTcpSocket): ${what}`, (s) => s.readInto(Buffer.alloc(4))],
    ['readAll()', 0, `QIODevice::read (QTcpSocket): ${what}`, (s) => s.readAll().length],
    // Qt 6 names readLine in these warnings (Qt 5.15 says "read").
    ['readLine()', 0, `QIODevice::readLine (QTcpSocket): ${what}`, (s) => s.readLine().length],
    ['readLine(5)', 0, `QIODevice::readLine (QTcpSocket): ${what}`, (s) => s.readLine(5).length],
    ['peek(5)', 0, `QIODevice::peek (QTcpSocket): ${what}`, (s) => s.peek(5).length],
    ['getChar()', null, `QIODevice::read (QTcpSocket): ${what}`, (s) => s.getChar()],
    ['ungetChar()', undefined, `QIODevice::read (QTcpSocket): ${what}`, (s) => s.ungetChar('a')],
  ];

  it.each([
    ...readOps(notOpen),
    ['write', -1, 'QIODevice::write (QTcpSocket): device not open', (s) => s.write('abc')],
    ['putChar', false, 'QIODevice::write (QTcpSocket): device not open', (s) => s.putChar('a')],
  ] as Op[])('not open: %s returns %j and warns %j', (_name, result, warning, call) => {
    const s = scope.socket();
    expect(call(s)).toBe(result);
    expect(takeWarnings()).toEqual([warning]);
  });

  it('a ReadOnly socket: write and putChar fail with "ReadOnly device"', async () => {
    const { client, peer } = await connectedPair(scope, OpenModeFlag.ReadOnly);
    expect(client.openMode()).toBe(OpenModeFlag.ReadOnly);
    expect(client.isWritable()).toBe(false);
    expect(client.write('abc')).toBe(-1);
    expect(takeWarnings()).toEqual(['QIODevice::write (QTcpSocket): ReadOnly device']);
    expect(client.putChar('a')).toBe(false);
    expect(takeWarnings()).toEqual(['QIODevice::write (QTcpSocket): ReadOnly device']);
    peer.write('in');
    await waitForBytes(client, 2);
    expect(text(client.readAll())).toBe('in');
  });

  it.each(readOps(writeOnly))(
    'a WriteOnly socket: %s returns %j and warns %j',
    async (_name, result, warning, call) => {
      const { client } = await connectedPair(scope, OpenModeFlag.WriteOnly);
      expect(client.openMode()).toBe(OpenModeFlag.WriteOnly);
      expect(call(client)).toBe(result);
      expect(takeWarnings()).toEqual([warning]);
    },
  );

  it('a WriteOnly socket writes, and discards what the peer sends', async () => {
    const { client, peer } = await connectedPair(scope, OpenModeFlag.WriteOnly);
    expect(client.write('abc')).toBe(3);
    await waitForBytes(peer, 3);
    expect(text(peer.readAll())).toBe('abc');
    let readyReads = 0;
    client.readyRead.connect(() => readyReads++);
    const written = nextEmission(peer.bytesWritten);
    peer.write('data-to-wo');
    await written; // handed to the kernel: it reaches the client's socket at once
    await sleep(100); // let the client's read callbacks run
    expect(client.bytesAvailable()).toBe(0);
    expect(readyReads).toBe(0);
    expect(takeWarnings()).toEqual([]);
  });

  it('line reading: canReadLine, peek, readLine, getChar, ungetChar (Qt 5.15 sequence)', async () => {
    const { client, peer } = await connectedPair(scope);
    peer.write('hello world\nsecond line\nthird');
    await waitForBytes(client, 29);
    expect(client.bytesAvailable()).toBe(29);
    expect(client.canReadLine()).toBe(true);
    expect(text(client.peek(5))).toBe('hello');
    expect(client.bytesAvailable()).toBe(29);
    expect(text(client.readLine())).toBe('hello world\n');
    expect(client.getChar()).toBe(ch('s'));
    client.ungetChar('s');
    client.ungetChar('X');
    expect(client.bytesAvailable()).toBe(18);
    expect(text(client.readLine())).toBe('Xsecond line\n');
    expect(client.canReadLine()).toBe(false);
    expect(text(client.readLine(0))).toBe('third');
    expect(client.readLine().length).toBe(0);
    expect(client.read(10).length).toBe(0);
    expect(client.readInto(Buffer.alloc(4))).toBe(0);
    expect(client.atEnd()).toBe(true);

    peer.write('abcdef');
    await waitForBytes(client, 6);
    expect(client.read(0).length).toBe(0);
    expect(text(client.read(2))).toBe('ab');
    expect(text(client.readAll())).toBe('cdef');
    expect(takeWarnings()).toEqual([]);
  });

  it('readLine(maxSize) on a socket: at most maxSize - 1 bytes; maxSize 1 warns', async () => {
    const { client, peer } = await connectedPair(scope);
    peer.write('hello world\n');
    await waitForBytes(client, 12);
    expect(text(client.readLine(5))).toBe('hell');
    expect(client.readLine(1).length).toBe(0);
    expect(takeWarnings()).toEqual(['QIODevice::readLine (QTcpSocket): Called with maxSize < 2']);
    expect(text(client.readLine(2))).toBe('o');
    expect(text(client.readLine())).toBe(' world\n');
  });

  it('unget (socket part): getChar/ungetChar/peek/read/readLine', async () => {
    const server = scope.server();
    server.newConnection.connect(() => {
      const s = scope.take(server);
      s?.write('HTTP/1.0 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n');
    });
    expect(await server.listen('127.0.0.1', 0)).toBe(true);
    const socket = scope.socket();
    socket.connectToHost('127.0.0.1', server.serverPort());
    socket.write('GET / HTTP/1.0\r\n\r\n');
    expect(await socket.waitForReadyRead(5000)).toBe(true);
    await waitForBytes(socket, 56);
    const dev: QIODevice = socket;

    let c = dev.getChar()!;
    dev.ungetChar(c);
    expect(text(dev.peek(4))).toBe('HTTP');
    c = dev.getChar()!;
    const c2 = dev.getChar()!;
    dev.ungetChar(c2);
    dev.ungetChar(c);
    expect(text(dev.read(1))).toBe('H');
    expect(text(dev.read(3))).toBe('TTP');

    dev.readLine();
    c = dev.getChar()!;
    dev.ungetChar(c);
    expect(text(dev.readLine(5))).toBe('Date');
    socket.close();
  });

  it('peek: peeking does not consume; peek beyond what is buffered returns what is there', async () => {
    const { client, peer } = await connectedPair(scope);
    peer.write('ZXCV');
    await waitForBytes(client, 4);
    expect(text(client.peek(4))).toBe('ZXCV');
    expect(client.bytesAvailable()).toBe(4);
    expect(text(client.peek(1))).toBe('Z');
    expect(text(client.peek(5))).toBe('ZXCV');
    expect(text(client.read(4))).toBe('ZXCV');
    expect(client.peek(4).length).toBe(0);
  });

  it('peekAndRead: peek(26) then read(26) until atEnd gives the original data', async () => {
    const { client, peer } = await connectedPair(scope);
    const originalData = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(1000));
    peer.write(originalData);
    await waitForBytes(client, originalData.length);
    const readData: Buffer[] = [];
    while (!client.atEnd()) {
      const peeked = client.peek(26);
      const got = client.read(26);
      expect(got).toEqual(peeked);
      readData.push(got);
    }
    expect(Buffer.concat(readData)).toEqual(originalData);
  });

  it('readLine2 through a socket (rows 1024 + 1, 16384, 40000)', async () => {
    for (const length of [1025, 16384, 40000]) {
      const { client, peer } = await connectedPair(scope);
      const line = Buffer.alloc(length, 'x');
      const data = Buffer.concat([
        Buffer.from('First line.\r\n'),
        line,
        Buffer.from('\r\n'),
        line,
        Buffer.from('\r\n'),
        Buffer.from('\r\n0123456789'),
      ]);
      peer.write(data);
      await waitForBytes(client, data.length);
      expect(client.readLine().length).toBe(13);
      expect(client.readLine().length).toBe(length + 2);
      expect(client.readLine().length).toBe(length + 2);
      expect(client.readLine().length).toBe(2);
      expect(client.readLine().length).toBe(10);
      expect(client.readLine().length).toBe(0);
    }
  });

  it('after the peer closes: still open, buffered data readable, then read gives -1', async () => {
    const { client, peer } = await connectedPair(scope);
    peer.write('xyz');
    await waitForBytes(client, 3);
    const disconnected = nextEmission(client.disconnected);
    peer.close();
    await disconnected;
    expect(client.state()).toBe(SocketState.UnconnectedState);
    expect(client.openMode()).toBe(OpenModeFlag.ReadWrite);
    expect(client.bytesAvailable()).toBe(3);
    expect(client.atEnd()).toBe(false);
    expect(text(client.read(10))).toBe('xyz');
    expect(client.readInto(Buffer.alloc(10))).toBe(-1);
    expect(client.readAll().length).toBe(0);
    expect(client.getChar()).toBeNull();
    expect(client.errorString()).toBe('The remote host closed the connection');
    expect(takeWarnings()).toEqual([]);
    client.close();
    expect(client.openMode()).toBe(OpenModeFlag.NotOpen);
  });

  it('close(): aboutToClose while open with data, then Closing, Unconnected, readChannelFinished, disconnected', async () => {
    const { client, peer } = await connectedPair(scope);
    peer.write('unread');
    await waitForBytes(client, 6);
    const order: unknown[] = [];
    client.aboutToClose.connect(() =>
      order.push(['aboutToClose', client.openMode(), client.state(), client.bytesAvailable()]),
    );
    client.stateChanged.connect((st) => order.push(['state', st, client.openMode()]));
    client.readChannelFinished.connect(() => order.push(['readChannelFinished']));
    client.disconnected.connect(() => order.push(['disconnected']));
    client.close();
    await waitUntil(() => client.state() === SocketState.UnconnectedState, 5000, 'unconnected');
    expect(order).toEqual([
      ['aboutToClose', OpenModeFlag.ReadWrite, SocketState.ConnectedState, 6],
      ['state', SocketState.ClosingState, OpenModeFlag.NotOpen],
      ['state', SocketState.UnconnectedState, OpenModeFlag.NotOpen],
      ['readChannelFinished'],
      ['disconnected'],
    ]);
    expect(client.bytesAvailable()).toBe(0);
    expect(client.read(5).length).toBe(0);
    expect(takeWarnings()).toEqual(['QIODevice::read (QTcpSocket): device not open']);
    expect(client.errorString()).toBe('Unknown error');
    const before = order.length;
    client.close();
    expect(order.length).toBe(before);
  });

  it('readyRead is emitted for new data; readInto counts what it copied', async () => {
    const { client, peer } = await connectedPair(scope);
    const ready = nextEmission(client.readyRead);
    peer.write('12345678');
    await ready;
    await waitForBytes(client, 8);
    const target = Buffer.alloc(5);
    expect(client.readInto(target)).toBe(5);
    expect(text(target)).toBe('12345');
    expect(client.readInto(target, 2)).toBe(2);
    expect(text(target.subarray(0, 2))).toBe('67');
    expect(client.readInto(target)).toBe(1);
    expect(client.readInto(target)).toBe(0);
  });
});

/**
 * A sequential device that overrides Qt's protected hooks readLineData (upper-casing the
 * line it reads, so its work is visible) and skipData, and logs every hook call. The Python
 * twin (a PyQt6 QIODevice subclass opened ReadOnly | Unbuffered, as the port reads) recorded
 * the sizes and results; Qt's extra readData(0) calls, which the port never makes, are left
 * out.
 */
class HookDevice extends QIODevice {
  readonly calls: string[] = [];
  private src: Buffer;

  constructor(data: string) {
    super();
    this.src = Buffer.from(data, 'latin1');
  }

  take(): string[] {
    return this.calls.splice(0);
  }

  override bytesAvailable(): number {
    return this.src.length + super.bytesAvailable();
  }

  protected override readData(maxSize: number): Buffer | null {
    this.calls.push(`readData(${maxSize})`);
    if (this.src.length === 0 && maxSize > 0) return null;
    const out = Buffer.from(this.src.subarray(0, maxSize));
    this.src = this.src.subarray(out.length);
    return out;
  }

  protected override writeData(data: Buffer): number {
    return data.length;
  }

  protected override readLineData(maxSize: number): Buffer | null {
    this.calls.push(`readLineData(${maxSize})`);
    const nl = this.src.indexOf(0x0a);
    const n = Math.min(maxSize, nl >= 0 ? nl + 1 : this.src.length);
    const out = Buffer.from(this.src.subarray(0, n).toString('latin1').toUpperCase(), 'latin1');
    this.src = this.src.subarray(n);
    return out;
  }

  protected override skipData(maxSize: number): number {
    this.calls.push(`skipData(${maxSize})`);
    const n = Math.min(maxSize, this.src.length);
    this.src = this.src.subarray(n);
    return n;
  }
}

describe('QIODevice hooks: readLineData and skipData overridden by a subclass (Qt 6)', () => {
  it('readLine hands readLineData what the buffer does not hold, with the room left', () => {
    const d = new HookDevice('hello\nworld\nagain');
    d.open(OpenModeFlag.ReadOnly);
    expect(text(d.readLine())).toBe('HELLO\n');
    expect(d.take()).toEqual(['readLineData(16384)']); // readLine() reads in 16 KiB pieces
    expect(text(d.readLine(4))).toBe('WOR');
    expect(d.take()).toEqual(['readLineData(3)']); // maxSize - 1: Qt keeps room for a NUL
    expect(text(d.peek(2))).toBe('ld');
    expect(d.take()).toEqual(['readData(2)']);
    expect(text(d.readLine())).toBe('ld\n'); // "ld" from the buffer, "\n" from the hook
    expect(d.take()).toEqual(['readLineData(16382)']);
    expect(takeWarnings()).toEqual([]);
  });

  it('a line longer than 16 KiB takes several readLineData calls', () => {
    const d = new HookDevice(`abc\n${'x'.repeat(20000)}\nend`);
    d.open(OpenModeFlag.ReadOnly);
    expect(d.readLine().length).toBe(4);
    expect(d.take()).toEqual(['readLineData(16384)']);
    expect(d.readLine().length).toBe(20001);
    expect(d.take()).toEqual(['readLineData(16384)', 'readLineData(16384)']);
    expect(text(d.readLine())).toBe('END');
    expect(d.take()).toEqual(['readLineData(16384)']);
  });

  it('during a transaction readLine reads byte by byte, bypassing the override', () => {
    const d = new HookDevice('in');
    d.open(OpenModeFlag.ReadOnly);
    d.startTransaction();
    expect(text(d.readLine())).toBe('in'); // not upper-cased: the base readLineData
    expect(d.take()).toEqual(['readData(1)', 'readData(1)', 'readData(1)']);
    d.rollbackTransaction();
    expect(text(d.readLine())).toBe('in'); // from the buffer; the hook finds nothing more
    expect(d.take()).toEqual(['readLineData(16382)']);
    expect(d.readLine().length).toBe(0);
    expect(d.take()).toEqual(['readLineData(16384)']);
  });

  it('skip takes what the buffer holds and asks skipData for the rest', () => {
    const d = new HookDevice('abcdefgh');
    d.open(OpenModeFlag.ReadOnly);
    expect(text(d.peek(2))).toBe('ab');
    d.take();
    expect(d.skip(4)).toBe(4);
    expect(d.take()).toEqual(['skipData(2)']);
    expect(text(d.read(1))).toBe('e');
    d.take();
    expect(d.skip(0)).toBe(0);
    expect(d.take()).toEqual(['skipData(0)']);
    expect(d.skip(5)).toBe(3);
    expect(d.take()).toEqual(['skipData(5)']);
  });

  it('skip in a transaction or in Text mode reads instead of calling skipData', () => {
    const d = new HookDevice('ab\r\ncd\r\nef');
    d.open(OpenModeFlag.ReadOnly);
    d.startTransaction();
    expect(d.skip(3)).toBe(3);
    expect(d.take()).toEqual(['readData(3)']);
    expect(d.bytesAvailable()).toBe(7);
    d.rollbackTransaction();
    expect(d.bytesAvailable()).toBe(10); // the skipped bytes were kept for the rollback
    d.setTextModeEnabled(true);
    // "ab\r" is buffered; the '\r' does not count, so one more byte ("\n") is read.
    expect(d.skip(3)).toBe(3);
    expect(d.take()).toEqual(['readData(1)']);
    expect(text(d.readAll())).toBe('cd\nef');
  });

  it('the base skipData reads and drops: -1 at end of stream', () => {
    const d = new Pipe('abcdef');
    d.open(OpenModeFlag.ReadOnly);
    expect(text(d.peek(2))).toBe('ab');
    expect(d.skip(4)).toBe(4);
    expect(d.skip(4)).toBe(2);
    expect(d.skip(4)).toBe(-1);
    expect(d.skip(0)).toBe(0);
    expect(takeWarnings()).toEqual([]);
  });
});
