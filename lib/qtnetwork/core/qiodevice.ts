import { ByteQueue } from './byte-queue.js';
import { toBuffer } from './to-buffer.js';
import { OpenModeFlag, type OpenMode } from './open-mode.js';
import { qWarning } from './qlogging.js';
import { Signal } from './signal.js';
import { dropCarriageReturns, foldLineEnding } from './text-mode.js';

const NEWLINE = 0x0a;
/** How much `readAll` and `readLine` ask for at a time (Qt's QIODEVICE_BUFFERSIZE). */
const READ_CHUNK = 16384;
/** How much `skip` reads at a time when it has to read to skip (as Qt's skipByReading). */
const SKIP_CHUNK = 4096;
const NO_BYTES: Buffer = Buffer.alloc(0);

/** Data accepted by `write`: bytes, or a string written as UTF-8. */
export type WritableData = Buffer | Uint8Array | string;

function toByte(c: number | string): number {
  return typeof c === 'string' ? c.charCodeAt(0) & 0xff : c & 0xff;
}

function join(parts: Buffer[]): Buffer {
  if (parts.length === 0) return NO_BYTES;
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/**
 * The base of Qt's I/O devices (QIODevice), for sequential devices such as sockets: an open
 * mode, a read buffer the device fills, and reads, peeks, lines, skips and read transactions
 * served from it.
 *
 * Reads return a `Buffer` (QByteArray); `readInto` is the `read(char*, qint64)` form, with
 * Qt's -1 for end of stream. Misuse (reading a device that is not open, writing a read-only
 * one) prints Qt's warning through the Qt message handler and returns what Qt returns. Where
 * Qt 5.15 and Qt 6 differ (the function a warning names, `readLine(-1)`), this is Qt 6.
 *
 * A subclass supplies `readData` and `writeData`, and may override `readLineData` and
 * `skipData` (Qt's protected hooks) and `bytesAvailable`.
 */
export abstract class QIODevice {
  static readonly OpenModeFlag = OpenModeFlag;

  /** Emitted when new data is available on the current read channel; not re-emitted from its own slots. */
  readonly readyRead = new Signal<[]>('readyRead');
  /** Emitted with the channel on which new data arrived, whatever the current read channel; may recurse. */
  readonly channelReadyRead = new Signal<[channel: number]>('channelReadyRead');
  /** Emitted with the number of bytes of the current write channel handed to the operating system. */
  readonly bytesWritten = new Signal<[bytes: number]>('bytesWritten');
  /** Emitted with the channel and the number of bytes written to it, whatever the current write channel. */
  readonly channelBytesWritten = new Signal<[channel: number, bytes: number]>(
    'channelBytesWritten',
  );
  /** Emitted by `close()` before the device closes. */
  readonly aboutToClose = new Signal<[]>('aboutToClose');
  /** Emitted when no more data will arrive (the read channel ended). */
  readonly readChannelFinished = new Signal<[]>('readChannelFinished');

  /** Bytes received and not yet read by the application (channel 0, the only one). */
  protected readonly buffer = new ByteQueue();
  private deviceMode: OpenMode = OpenModeFlag.NotOpen;
  private errorText = '';
  /** While a read transaction is in progress, reads leave their bytes in the buffer... */
  private transactionStarted = false;
  /** ...and this is how many of them the transaction has read. */
  private transactionPos = 0;
  private readChannels = 0;
  private writeChannels = 0;
  private readChannel = 0;
  private writeChannel = 0;

  /**
   * Opens the device in `mode` (OpenModeFlag values): one read channel if readable, one
   * write channel if writable; clears the error string and ends a read transaction.
   */
  open(mode: OpenMode): boolean {
    this.deviceMode = mode;
    this.buffer.clear();
    this.errorText = '';
    // Qt keeps a transaction, with its old position, across open(); a reconnected socket
    // then reports a negative bytesAvailable(). The port starts afresh.
    this.endTransaction();
    this.readChannels = this.isReadable() ? 1 : 0;
    this.writeChannels = this.isWritable() ? 1 : 0;
    return true;
  }

  /**
   * Emits `aboutToClose`, sets the mode to NotOpen, drops unread data, ends a read
   * transaction and leaves no channels.
   */
  close(): void {
    if (this.deviceMode === OpenModeFlag.NotOpen) return;
    this.aboutToClose.emit();
    this.deviceMode = OpenModeFlag.NotOpen;
    this.buffer.clear();
    this.endTransaction();
    this.readChannels = 0;
    this.writeChannels = 0;
  }

  /** True unless the mode is NotOpen. */
  isOpen(): boolean {
    return this.deviceMode !== OpenModeFlag.NotOpen;
  }

  /** The mode the device was opened in. */
  openMode(): OpenMode {
    return this.deviceMode;
  }

  /** True if opened with ReadOnly (or ReadWrite). */
  isReadable(): boolean {
    return (this.deviceMode & OpenModeFlag.ReadOnly) !== 0;
  }

  /** True if opened with WriteOnly (or ReadWrite). */
  isWritable(): boolean {
    return (this.deviceMode & OpenModeFlag.WriteOnly) !== 0;
  }

  /** Sockets are sequential: no size, no position, no seeking. */
  isSequential(): boolean {
    return true;
  }

  /**
   * Sets or clears the Text flag: reads then drop '\r' (`readLine` turns a final "\r\n"
   * into "\n"); writes are not translated (as Qt on Unix). Warns if the device is not open.
   */
  setTextModeEnabled(enabled: boolean): void {
    if (!this.isOpen()) {
      this.warn('setTextModeEnabled', 'The device is not open');
      return;
    }
    this.deviceMode = enabled
      ? this.deviceMode | OpenModeFlag.Text
      : this.deviceMode & ~OpenModeFlag.Text;
  }

  /** True if the Text flag is set. */
  isTextModeEnabled(): boolean {
    return (this.deviceMode & OpenModeFlag.Text) !== 0;
  }

  /** A sequential device has no position: always 0 (Qt). */
  pos(): number {
    return 0;
  }

  /** For a sequential device, `bytesAvailable()` (Qt). */
  size(): number {
    return this.bytesAvailable();
  }

  /** A sequential device cannot seek: warns and returns false (Qt). */
  seek(_pos: number): boolean {
    this.warn('seek', 'Cannot call seek on a sequential device');
    return false;
  }

  /** `seek(0)`: on a sequential device, a warning and false (Qt). */
  reset(): boolean {
    return this.seek(0);
  }

  /** Bytes that can be read now without waiting (during a transaction: not yet read by it). */
  bytesAvailable(): number {
    return this.buffer.size - this.transactionPos;
  }

  /** Bytes written by the application and not yet handed to the operating system. */
  bytesToWrite(): number {
    return 0;
  }

  // ---------------------------------------------------------------- channels

  /** Read channels: 1 while open for reading (a socket: once connected), otherwise 0. */
  readChannelCount(): number {
    return this.readChannels;
  }

  /** Write channels: 1 while open for writing (a socket: while connected), otherwise 0. */
  writeChannelCount(): number {
    return this.writeChannels;
  }

  /** The read channel `readyRead` is emitted for (0). */
  currentReadChannel(): number {
    return this.readChannel;
  }

  /**
   * Makes `channel` the current read channel; refused, with Qt's warning, during a read
   * transaction. The port's devices have one channel: on another, `readyRead` is no longer
   * emitted (`channelReadyRead(0)` still is) and reads still read channel 0.
   */
  setCurrentReadChannel(channel: number): void {
    if (this.transactionStarted) {
      this.warn('setReadChannel', 'Failed due to read transaction being in progress');
      return;
    }
    this.readChannel = channel;
  }

  /** The write channel `bytesWritten` is emitted for (0). */
  currentWriteChannel(): number {
    return this.writeChannel;
  }

  /**
   * Makes `channel` the current write channel. On a channel other than 0, `bytesWritten` is
   * no longer emitted (`channelBytesWritten(0, n)` still is) and writes still go to channel 0.
   */
  setCurrentWriteChannel(channel: number): void {
    this.writeChannel = channel;
  }

  // ---------------------------------------------------------------- reading

  /** Reads up to `maxSize` bytes; empty when nothing is available or on error. */
  read(maxSize: number): Buffer {
    if (!this.checkReadable('read')) return NO_BYTES;
    if (maxSize < 0) {
      this.warn('read', 'Called with maxSize < 0');
      return NO_BYTES;
    }
    return this.readBytes(maxSize) ?? NO_BYTES;
  }

  /**
   * Reads into `target` (up to `maxSize`, default its length), as Qt's
   * `read(char *data, qint64 maxSize)`: the number of bytes read, 0 if none are available
   * yet, -1 at end of stream (a socket that is no longer connected) or on error.
   */
  readInto(target: Uint8Array, maxSize: number = target.length): number {
    if (!this.checkReadable('read')) return -1;
    if (maxSize < 0) {
      this.warn('read', 'Called with maxSize < 0');
      return -1;
    }
    const data = this.readBytes(Math.min(maxSize, target.length));
    if (data === null) return -1;
    target.set(data);
    return data.length;
  }

  /** Reads everything available now (the buffer, then whatever `readData` still gives). */
  readAll(): Buffer {
    if (!this.checkReadable('read')) return NO_BYTES;
    const parts: Buffer[] = [];
    let chunk = Math.max(READ_CHUNK, this.buffer.size - this.transactionPos);
    for (;;) {
      const data = this.readBytes(chunk);
      if (data === null || data.length === 0) break;
      parts.push(data);
      chunk = READ_CHUNK;
    }
    return join(parts);
  }

  /**
   * Reads a line: up to and including the next newline, but at most `maxSize - 1` bytes
   * (Qt keeps one byte for a terminating NUL; 0 = no limit), or whatever is available if
   * no newline has arrived. What the buffer does not hold comes from `readLineData`. A
   * `maxSize` below 2 (other than 0) warns and reads nothing, as in Qt 6.
   */
  readLine(maxSize = 0): Buffer {
    if (!this.checkReadable('readLine')) return NO_BYTES;
    if (maxSize !== 0) {
      if (maxSize < 2) {
        this.warn('readLine', 'Called with maxSize < 2');
        return NO_BYTES;
      }
      return this.readLineBytes(maxSize) ?? NO_BYTES;
    }
    // No limit: in pieces of READ_CHUNK bytes, as Qt reads it (an override of readLineData
    // sees the sizes it would see in Qt).
    const parts: Buffer[] = [];
    for (;;) {
      const piece = this.readLineBytes(READ_CHUNK + 1);
      if (piece === null || piece.length === 0) break;
      parts.push(piece);
      if (piece.length !== READ_CHUNK || piece[piece.length - 1] === NEWLINE) break;
    }
    return join(parts);
  }

  /**
   * Returns up to `maxSize` bytes without consuming them (what `readData` gives meanwhile is
   * kept in the buffer). In Text mode, without the '\r' bytes.
   */
  peek(maxSize: number): Buffer {
    if (maxSize < 0) {
      this.warn('peek', 'Called with maxSize < 0');
      return NO_BYTES;
    }
    if (!this.checkReadable('peek')) return NO_BYTES;
    return this.readBytes(maxSize, true) ?? NO_BYTES;
  }

  /**
   * Skips up to `maxSize` bytes of what is available now (Qt 5.10): the number skipped, or -1
   * at end of stream or on error. Beyond the buffer it asks `skipData`; during a read
   * transaction, and in Text mode, it reads instead (the transaction keeps what it skips).
   */
  skip(maxSize: number): number {
    if (maxSize < 0) {
      this.warn('skip', 'Called with maxSize < 0');
      return -1;
    }
    if (!this.checkReadable('skip')) return -1;
    if (this.transactionStarted || this.isTextModeEnabled()) return this.skipByReading(maxSize);
    let skipped = 0;
    if (this.buffer.size > 0) {
      skipped = this.buffer.skip(maxSize);
      this.bufferConsumed();
      if (skipped === maxSize) return skipped;
    }
    const more = this.skipData(maxSize - skipped);
    if (skipped === 0) return more;
    return more === -1 ? skipped : skipped + more;
  }

  /** True if a complete line (ending in a newline) can be read now. */
  canReadLine(): boolean {
    return this.buffer.indexOf(NEWLINE, Infinity, this.transactionPos) >= 0;
  }

  /** Reads one byte; null if none is available. In Text mode '\r' bytes are passed over. */
  getChar(): number | null {
    if (!this.checkReadable('read')) return null;
    const data = this.readBytes(1);
    return data !== null && data.length === 1 ? data[0] : null;
  }

  /**
   * Puts a byte back so that it is the next one read (Qt: for undoing `getChar`). Not
   * during a read transaction (Qt's warning).
   */
  ungetChar(c: number | string): void {
    if (!this.checkReadable('read')) return;
    if (this.transactionStarted) {
      this.warn('ungetChar', 'Called while transaction is in progress');
      return;
    }
    this.buffer.unshift(Buffer.of(toByte(c)));
  }

  /** For a sequential device: true when nothing is buffered or the device is closed. */
  atEnd(): boolean {
    return this.deviceMode === OpenModeFlag.NotOpen || this.bytesAvailable() === 0;
  }

  // ---------------------------------------------------------------- read transactions

  /**
   * Starts a read transaction (Qt 5.7): from now on every read (`read`, `readAll`,
   * `readLine`, `getChar`, `peek`, `skip`) keeps its bytes, so that `rollbackTransaction`
   * can make them readable again, as a QDataStream reading a message that arrives in parts
   * does. Transactions do not nest: a second start warns. While the bytes are kept they
   * count against a socket's `readBufferSize`, as in Qt: a transaction that fills the
   * buffer stops reading until it ends.
   */
  startTransaction(): void {
    if (this.transactionStarted) {
      this.warn('startTransaction', 'Called while transaction already in progress');
      return;
    }
    this.transactionStarted = true;
    this.transactionPos = 0;
  }

  /** Ends the transaction and drops what it read; warns if none is in progress. */
  commitTransaction(): void {
    if (!this.transactionStarted) {
      this.warn('commitTransaction', 'Called while no transaction in progress');
      return;
    }
    const read = this.transactionPos;
    this.endTransaction();
    if (read > 0) {
      this.buffer.skip(read);
      this.bufferConsumed();
    }
  }

  /**
   * Ends the transaction and makes everything it read readable again; warns if none is in
   * progress.
   */
  rollbackTransaction(): void {
    if (!this.transactionStarted) {
      this.warn('rollbackTransaction', 'Called while no transaction in progress');
      return;
    }
    this.endTransaction();
  }

  /** True while a read transaction is in progress. Closing the device ends it. */
  isTransactionStarted(): boolean {
    return this.transactionStarted;
  }

  // ---------------------------------------------------------------- writing

  /** Writes one byte (a number, or the first character of a string); true on success. */
  putChar(c: number | string): boolean {
    return this.write(Buffer.of(toByte(c))) === 1;
  }

  /**
   * Writes `data` (a string is written as UTF-8). Returns the number of bytes accepted, or
   * -1 if the device is not open for writing.
   */
  write(data: WritableData): number {
    if (this.deviceMode === OpenModeFlag.NotOpen) {
      this.warn('write', 'device not open');
      return -1;
    }
    if (!this.isWritable()) {
      this.warn('write', 'ReadOnly device');
      return -1;
    }
    return this.writeData(toBuffer(data));
  }

  // ---------------------------------------------------------------- errors and waiting

  /** A human-readable text for the last error; "Unknown error" when none was set. */
  errorString(): string {
    return this.errorText === '' ? 'Unknown error' : this.errorText;
  }

  /** Resolves true when new data arrives within `msecs`; the base device never does. */
  waitForReadyRead(_msecs = 30000): Promise<boolean> {
    return Promise.resolve(false);
  }

  /** Resolves true when data is written within `msecs`; the base device never does. */
  waitForBytesWritten(_msecs = 30000): Promise<boolean> {
    return Promise.resolve(false);
  }

  // ---------------------------------------------------------------- for subclasses

  /** Sets the text `errorString()` returns. */
  protected setErrorString(text: string): void {
    this.errorText = text;
  }

  /**
   * Sets the open mode without the side effects of `open` (Qt's `setOpenMode`): a readable
   * mode keeps at least one read channel, a writable one at least one write channel.
   */
  protected setOpenMode(mode: OpenMode): void {
    this.deviceMode = mode;
    this.readChannels = this.isReadable() ? Math.max(this.readChannels, 1) : 0;
    this.writeChannels = this.isWritable() ? Math.max(this.writeChannels, 1) : 0;
  }

  /** Sets what `readChannelCount()` reports (a socket has none until it is connected). */
  protected setReadChannelCount(count: number): void {
    this.readChannels = count;
  }

  /** Sets what `writeChannelCount()` reports (a socket has none once disconnected). */
  protected setWriteChannelCount(count: number): void {
    this.writeChannels = count;
  }

  /**
   * Reads beyond the buffer: returns up to `maxSize` bytes, an empty Buffer if none are
   * available yet, or null at end of stream. Buffered devices (sockets) keep all data in
   * the buffer and only report whether the stream has ended.
   */
  protected abstract readData(maxSize: number): Buffer | null;

  /** Accepts `data` for writing; returns the number of bytes taken, or -1. */
  protected abstract writeData(data: Buffer): number;

  /**
   * Qt's readLineData hook: `readLine` calls it for what the buffer does not hold, with the
   * number of bytes still allowed. Returns the bytes read (up to and including a newline,
   * at most `maxSize`), empty if no more are available now, or null at end of stream when
   * none were read. The base reads byte by byte, as Qt's does; during a read transaction
   * `readLine` always uses the base, which keeps what it reads.
   */
  protected readLineData(maxSize: number): Buffer | null {
    return this.readLineByBytes(maxSize);
  }

  /**
   * Qt 6's skipData hook: `skip` calls it for what the buffer does not hold. Returns the
   * number of bytes skipped, or -1 at end of stream or on error. The base reads and drops.
   */
  protected skipData(maxSize: number): number {
    return this.skipByReading(maxSize);
  }

  /** Called after the application took bytes from the buffer (a socket may resume reading). */
  protected bufferConsumed(): void {}

  // ---------------------------------------------------------------- internals

  private endTransaction(): void {
    this.transactionStarted = false;
    this.transactionPos = 0;
  }

  private warn(method: string, what: string): void {
    qWarning(`QIODevice::${method} (${this.constructor.name}): ${what}`);
  }

  private checkReadable(method: string): boolean {
    if (this.deviceMode === OpenModeFlag.NotOpen) {
      this.warn(method, 'device not open');
      return false;
    }
    if (!this.isReadable()) {
      this.warn(method, 'WriteOnly device');
      return false;
    }
    return true;
  }

  /**
   * Qt's QIODevicePrivate::read: up to `maxSize` bytes from the buffer, then from
   * `readData`. A peek, or any read during a transaction, leaves the bytes in the buffer
   * (what `readData` gives is added to it first). In Text mode each '\r' is dropped and
   * more is read in its place. Null is Qt's -1: nothing read and the stream has ended.
   */
  private readBytes(maxSize: number, peeking = false): Buffer | null {
    const keep = peeking || this.transactionStarted;
    const text = this.isTextModeEnabled();
    let pos = this.transactionPos;
    let left = maxSize;
    let consumed = false;
    let deviceAtEnd = false;
    let got = 0;
    const out: Buffer[] = [];
    for (;;) {
      const fresh: Buffer[] = [];
      let freshBytes = 0;
      for (;;) {
        const part = keep ? this.buffer.peek(left, pos) : this.buffer.read(left);
        if (part.length > 0) {
          fresh.push(part);
          freshBytes += part.length;
          left -= part.length;
          if (keep) pos += part.length;
          else consumed = true;
        }
        if (left === 0 || deviceAtEnd) break;
        const more = this.readData(left);
        deviceAtEnd = more === null || more.length < left;
        if (more === null) {
          if (got + freshBytes > 0) break;
          if (consumed) this.bufferConsumed();
          return null;
        }
        if (more.length === 0) break;
        if (keep) {
          // Kept bytes live in the buffer: read them back from there.
          this.buffer.push(more);
          continue;
        }
        fresh.push(more);
        freshBytes += more.length;
        left -= more.length;
        break;
      }
      if (freshBytes === 0) break;
      if (!text) {
        out.push(...fresh);
        break;
      }
      for (const raw of fresh) {
        const kept = dropCarriageReturns(raw);
        left += raw.length - kept.length;
        got += kept.length;
        if (kept.length > 0) out.push(kept);
      }
    }
    if (keep && !peeking) this.transactionPos = pos;
    if (consumed) this.bufferConsumed();
    return join(out);
  }

  /**
   * Qt's QIODevicePrivate::readLine: a line of at most `maxSize - 1` bytes, first from the
   * buffer, then from `readLineData` (the base one during a transaction). In Text mode a
   * final "\r\n" becomes "\n". Null is Qt's -1.
   */
  private readLineBytes(maxSize: number): Buffer | null {
    const limit = maxSize - 1;
    let head = NO_BYTES;
    if (this.transactionStarted) {
      const pos = this.transactionPos;
      if (pos < this.buffer.size) {
        const nl = this.buffer.indexOf(NEWLINE, limit, pos);
        head = this.buffer.peek(nl >= 0 ? nl - pos + 1 : limit, pos);
        this.transactionPos += head.length;
      }
    } else if (this.buffer.size > 0) {
      const nl = this.buffer.indexOf(NEWLINE, limit);
      head = this.buffer.read(nl >= 0 ? nl + 1 : limit);
      this.bufferConsumed();
    }
    if (head.length > 0 && head[head.length - 1] === NEWLINE) return this.textLine(head);
    const want = limit - head.length;
    const rest = this.transactionStarted ? this.readLineByBytes(want) : this.readLineData(want);
    if (rest === null) return head.length > 0 ? head : null;
    return this.textLine(join([head, rest].filter((b) => b.length > 0)));
  }

  /** The base readLineData: byte by byte through the read path (so Text mode applies). */
  private readLineByBytes(maxSize: number): Buffer | null {
    const line: number[] = [];
    let last: Buffer | null = NO_BYTES;
    while (line.length < maxSize) {
      last = this.readBytes(1);
      if (last === null || last.length !== 1) break;
      line.push(last[0]);
      if (last[0] === NEWLINE) break;
    }
    if (line.length === 0 && last === null) return null;
    return Buffer.from(line);
  }

  private textLine(line: Buffer): Buffer {
    return this.isTextModeEnabled() ? foldLineEnding(line) : line;
  }

  /** Qt's skipByReading: reads and drops, at most SKIP_CHUNK bytes at a time. */
  private skipByReading(maxSize: number): number {
    let skipped = 0;
    do {
      const want = Math.min(maxSize, SKIP_CHUNK);
      const data = this.readBytes(want);
      const n = data === null ? -1 : data.length;
      if (n !== want) {
        if (skipped === 0) return n;
        return n === -1 ? skipped : skipped + n;
      }
      skipped += n;
      maxSize -= n;
    } while (maxSize > 0);
    return skipped;
  }
}
