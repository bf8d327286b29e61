import { ByteQueue } from './byte-queue.js';
import { toBuffer } from './to-buffer.js';
import { OpenModeFlag, type OpenMode } from './open-mode.js';
import { qWarning } from './qlogging.js';
import { Signal } from './signal.js';

const NEWLINE = 0x0a;
/** How much `readAll` and `readLine` ask `readData` for at a time. */
const READ_CHUNK = 16384;

/** Data accepted by `write`: bytes, or a string written as UTF-8. */
export type WritableData = Buffer | Uint8Array | string;

function toByte(c: number | string): number {
  return typeof c === 'string' ? c.charCodeAt(0) & 0xff : c & 0xff;
}

/**
 * The base of Qt's I/O devices (QIODevice), for sequential devices such as sockets: an open
 * mode, a read buffer the device fills, and reads, peeks and lines served from it.
 *
 * Reads return a `Buffer` (QByteArray); `readInto` is the `read(char*, qint64)` form, with
 * Qt's -1 for end of stream. Misuse (reading a device that is not open, writing a read-only
 * one) prints Qt's warning through the Qt message handler and returns what Qt returns.
 */
export abstract class QIODevice {
  static readonly OpenModeFlag = OpenModeFlag;

  /** Emitted when new data is available for reading; not re-emitted from its own slots. */
  readonly readyRead = new Signal<[]>('readyRead');
  /** Emitted with the number of bytes handed to the operating system. */
  readonly bytesWritten = new Signal<[bytes: number]>('bytesWritten');
  /** Emitted by `close()` before the device closes. */
  readonly aboutToClose = new Signal<[]>('aboutToClose');
  /** Emitted when no more data will arrive (the read channel ended). */
  readonly readChannelFinished = new Signal<[]>('readChannelFinished');

  /** Bytes received and not yet read by the application. */
  protected readonly buffer = new ByteQueue();
  private deviceMode: OpenMode = OpenModeFlag.NotOpen;
  private errorText = '';

  /** Opens the device in `mode` (OpenModeFlag values); clears the error string. */
  open(mode: OpenMode): boolean {
    this.deviceMode = mode;
    this.buffer.clear();
    this.errorText = '';
    return true;
  }

  /** Emits `aboutToClose`, sets the mode to NotOpen and drops unread data. */
  close(): void {
    if (this.deviceMode === OpenModeFlag.NotOpen) return;
    this.aboutToClose.emit();
    this.deviceMode = OpenModeFlag.NotOpen;
    this.buffer.clear();
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

  /** Sockets are sequential: no size, no seeking. */
  isSequential(): boolean {
    return true;
  }

  /** Bytes that can be read now without waiting. */
  bytesAvailable(): number {
    return this.buffer.size;
  }

  /** Bytes written by the application and not yet handed to the operating system. */
  bytesToWrite(): number {
    return 0;
  }

  /** Reads up to `maxSize` bytes; empty when nothing is available or on error. */
  read(maxSize: number): Buffer {
    const chunks: Buffer[] = [];
    this.readInternal(maxSize, 'read', chunks);
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  }

  /**
   * Reads into `target` (up to `maxSize`, default its length), as Qt's
   * `read(char *data, qint64 maxSize)`: the number of bytes read, 0 if none are available
   * yet, -1 at end of stream (a socket that is no longer connected) or on error.
   */
  readInto(target: Uint8Array, maxSize: number = target.length): number {
    const chunks: Buffer[] = [];
    const n = this.readInternal(Math.min(maxSize, target.length), 'read', chunks);
    let offset = 0;
    for (const c of chunks) {
      target.set(c, offset);
      offset += c.length;
    }
    return n;
  }

  /** Reads everything available now (the buffer, then whatever `readData` still gives). */
  readAll(): Buffer {
    if (!this.checkReadable('read')) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    if (this.buffer.size > 0) {
      chunks.push(this.buffer.read(this.buffer.size));
      this.bufferConsumed();
    }
    for (;;) {
      const more = this.readData(READ_CHUNK);
      if (!more || more.length === 0) break;
      chunks.push(more);
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  }

  /**
   * Reads a line: up to and including the next newline, but at most `maxSize - 1` bytes
   * (Qt keeps one byte for a terminating NUL; 0 = no limit), or whatever is available if
   * no newline has arrived. A `maxSize` of 1 warns and reads nothing, as in Qt.
   */
  readLine(maxSize = 0): Buffer {
    if (!this.checkReadable('read')) return Buffer.alloc(0);
    if (maxSize < 0) {
      qWarning(`QIODevice::readLine (${this.constructor.name}): Called with maxSize < 0`);
      return Buffer.alloc(0);
    }
    if (maxSize === 1) {
      qWarning(`QIODevice::readLine (${this.constructor.name}): Called with maxSize < 2`);
      return Buffer.alloc(0);
    }
    const limit = maxSize === 0 ? Infinity : maxSize - 1;
    for (;;) {
      const nl = this.buffer.indexOf(NEWLINE, Math.min(limit, this.buffer.size));
      if (nl >= 0 || this.buffer.size >= limit) {
        const line = this.buffer.read(nl >= 0 ? nl + 1 : limit);
        if (line.length > 0) this.bufferConsumed();
        return line;
      }
      // No newline yet: a device that reads on demand may have more.
      const want = limit === Infinity ? READ_CHUNK : limit - this.buffer.size;
      if (!this.pull(want)) break;
    }
    const rest = this.buffer.read(this.buffer.size);
    if (rest.length > 0) this.bufferConsumed();
    return rest;
  }

  /** Returns up to `maxSize` bytes without consuming them. */
  peek(maxSize: number): Buffer {
    if (!this.checkReadable('peek')) return Buffer.alloc(0);
    if (this.buffer.size < maxSize) this.pull(maxSize - this.buffer.size);
    return this.buffer.peek(maxSize);
  }

  /** True if a complete line (ending in a newline) can be read now. */
  canReadLine(): boolean {
    return this.buffer.indexOf(NEWLINE) >= 0;
  }

  /** Reads one byte; null if none is available. */
  getChar(): number | null {
    if (!this.checkReadable('read')) return null;
    if (this.buffer.size === 0 && !this.pull(1)) return null;
    const b = this.buffer.read(1)[0];
    this.bufferConsumed();
    return b;
  }

  /** Writes one byte (a number, or the first character of a string); true on success. */
  putChar(c: number | string): boolean {
    return this.write(Buffer.of(toByte(c))) === 1;
  }

  /** Puts a byte back so that it is the next one read (Qt: for undoing `getChar`). */
  ungetChar(c: number | string): void {
    if (!this.checkReadable('read')) return;
    this.buffer.unshift(Buffer.of(toByte(c)));
  }

  /**
   * Writes `data` (a string is written as UTF-8). Returns the number of bytes accepted, or
   * -1 if the device is not open for writing.
   */
  write(data: WritableData): number {
    if (this.deviceMode === OpenModeFlag.NotOpen) {
      qWarning(`QIODevice::write (${this.constructor.name}): device not open`);
      return -1;
    }
    if (!this.isWritable()) {
      qWarning(`QIODevice::write (${this.constructor.name}): ReadOnly device`);
      return -1;
    }
    return this.writeData(toBuffer(data));
  }

  /** For a sequential device: true when nothing is buffered or the device is closed. */
  atEnd(): boolean {
    return this.deviceMode === OpenModeFlag.NotOpen || this.bytesAvailable() === 0;
  }

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

  /** Sets the text `errorString()` returns. */
  protected setErrorString(text: string): void {
    this.errorText = text;
  }

  /** Sets the open mode without the side effects of `open` (Qt's `setOpenMode`). */
  protected setOpenMode(mode: OpenMode): void {
    this.deviceMode = mode;
  }

  /**
   * Reads beyond the buffer: returns up to `maxSize` bytes, an empty Buffer if none are
   * available yet, or null at end of stream. Buffered devices (sockets) keep all data in
   * the buffer and only report whether the stream has ended.
   */
  protected abstract readData(maxSize: number): Buffer | null;

  /** Accepts `data` for writing; returns the number of bytes taken, or -1. */
  protected abstract writeData(data: Buffer): number;

  /** Called after the application took bytes from the buffer (a socket may resume reading). */
  protected bufferConsumed(): void {}

  /** Moves up to `n` bytes from `readData` into the buffer; false if none came. */
  private pull(n: number): boolean {
    const more = this.readData(n);
    if (!more || more.length === 0) return false;
    this.buffer.push(more);
    return true;
  }

  private checkReadable(method: string): boolean {
    if (this.deviceMode === OpenModeFlag.NotOpen) {
      qWarning(`QIODevice::${method} (${this.constructor.name}): device not open`);
      return false;
    }
    if (!this.isReadable()) {
      qWarning(`QIODevice::${method} (${this.constructor.name}): WriteOnly device`);
      return false;
    }
    return true;
  }

  private readInternal(maxSize: number, method: string, out: Buffer[]): number {
    if (!this.checkReadable(method)) return -1;
    if (maxSize < 0) {
      qWarning(`QIODevice::${method} (${this.constructor.name}): Called with maxSize < 0`);
      return -1;
    }
    const fromBuffer = this.buffer.read(maxSize);
    if (fromBuffer.length > 0) {
      out.push(fromBuffer);
      this.bufferConsumed();
    }
    if (fromBuffer.length === maxSize && maxSize > 0) return fromBuffer.length;
    const more = this.readData(maxSize - fromBuffer.length);
    if (more === null) return fromBuffer.length > 0 ? fromBuffer.length : -1;
    if (more.length > 0) out.push(more);
    return fromBuffer.length + more.length;
  }
}
