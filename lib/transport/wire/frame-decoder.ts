import { ByteQueue } from '../../qtnetwork/index.js';

import { EmptyFrameError, FrameTooLargeError, NullFrameError } from './errors.js';

const HEADER = 4;
const NULL_FRAME = 0xffffffff;

/**
 * Splits a byte stream into frames exactly as Qt's `QDataStream >> QByteArray` reads them:
 * a 32-bit big-endian length, then that many bytes.
 *
 * A small state machine over a list of received chunks: bytes are never concatenated
 * beyond one frame, and a frame lying inside one chunk is returned as a slice of it. The
 * length is checked the moment its 4 bytes arrive, so an oversized or null frame is
 * rejected before any of its body is buffered.
 */
export class FrameDecoder {
  private readonly queue = new ByteQueue();
  /** Length of the frame being read; -1 while waiting for a header. */
  private expected = -1;

  /** @param maxFrameSize largest accepted frame body, in bytes. */
  constructor(private readonly maxFrameSize: number) {}

  /** Adds received bytes (kept by reference). */
  push(chunk: Buffer): void {
    this.queue.push(chunk);
  }

  /**
   * The next complete frame's body, or null when more bytes are needed. Throws
   * NullFrameError, EmptyFrameError or FrameTooLargeError on a bad header; the stream
   * cannot be resynchronised after that, so the connection must be closed.
   */
  next(): Buffer | null {
    if (this.expected < 0) {
      if (this.queue.size < HEADER) return null;
      const length = this.queue.read(HEADER).readUInt32BE(0);
      if (length === NULL_FRAME) throw new NullFrameError();
      if (length === 0) throw new EmptyFrameError();
      if (length > this.maxFrameSize) throw new FrameTooLargeError(length, this.maxFrameSize);
      this.expected = length;
    }
    if (this.queue.size < this.expected) return null;
    const frame = this.queue.read(this.expected);
    this.expected = -1;
    return frame;
  }

  /** True while part of a frame (header or body) has arrived and the rest has not. */
  isMidFrame(): boolean {
    return this.expected >= 0 || this.queue.size > 0;
  }

  /** Bytes buffered for the incomplete frame. */
  bufferedBytes(): number {
    return this.queue.size;
  }

  /** The length of the frame being read, or -1 while its header is incomplete. */
  expectedBytes(): number {
    return this.expected;
  }

  /** Drops everything buffered. */
  reset(): void {
    this.queue.clear();
    this.expected = -1;
  }
}

/** The 4-byte header for a frame of `length` bytes. */
export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt32BE(length, 0);
  return header;
}
