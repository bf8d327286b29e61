import * as net from 'node:net';

import { SocketType } from '../kernel/socket-enums.js';
import { QAbstractSocket } from './qabstract-socket.js';

/**
 * The stream under a QLocalSocket: Qt's QLocalSocket on Unix keeps a QTcpSocket-like
 * QAbstractSocket over the Unix-domain descriptor, and so does the port, so that buffering,
 * backpressure, closing and the waits behave exactly as for TCP.
 */
export class LocalStreamSocket extends QAbstractSocket<boolean> {
  constructor() {
    super(SocketType.UnknownSocketType);
  }

  /**
   * Up to `max` bytes of what the stream has received, taken straight from its buffer: what
   * `read(max)` returns, without the device's read loop. A stream socket keeps every byte
   * it receives in that buffer (its readData only tells the end), and this stream never
   * runs a read transaction or Text mode (QLocalSocket does those itself), so the two are
   * the same whenever the stream is readable; otherwise it is `read(max)`, with its warning.
   * A whole chunk as the kernel delivered it comes back as it is, a view without a copy.
   */
  readBuffered(max: number): Buffer {
    if (!this.isReadable() || this.isTransactionStarted() || this.isTextModeEnabled()) {
      return this.read(max);
    }
    const out = this.buffer.read(max);
    if (out.length > 0) this.bufferConsumed();
    return out;
  }

  /**
   * `write(data)` for bytes: the stream's writeData at once when it is open for writing
   * (what `write` does after its checks), otherwise `write` with its warning and -1.
   */
  writeBytes(data: Buffer): number {
    return this.isWritable() ? this.writeData(data) : this.write(data);
  }

  protected override acceptsNativeSocket(sock: net.Socket): boolean {
    // A Unix-domain connection has no IP addresses.
    return !sock.destroyed && net.isIP(sock.remoteAddress ?? sock.localAddress ?? '') === 0;
  }
}
