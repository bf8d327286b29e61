import {
  QLocalSocket,
  QTcpSocket,
  SocketOption,
  qInstallMessageHandler,
} from '../../qtnetwork/index.js';

import { decodePayload, encodePayloadChunks, type CodecName } from './codec.js';
import {
  FrameTimeoutError,
  FrameTooLargeError,
  IncompleteFrameTimeoutError,
  QtTransportError,
  SendBufferOverflowError,
  WriteStallError,
} from './errors.js';
import { FrameDecoder, frameHeader } from './frame-decoder.js';

/**
 * The limits one connection keeps (the transport's resolved options satisfy it; units:
 * bytes, milliseconds, bytes per second).
 */
export interface ConnectionLimits {
  readonly maxFrameSize: number;
  /** 0 = the socket's read buffer is unbounded while reading. */
  readonly readBufferSize: number;
  readonly maxSendBufferSize: number;
  readonly incompleteFrameTimeout: number;
  /** 0 = no frame clock. */
  readonly frameTimeout: number;
  readonly minFrameRate: number;
}

/** The TCP options applied to an accepted or connected socket. */
export interface ConnectionSocketOptions {
  readonly socketOptions: {
    readonly lowDelay: boolean;
    readonly keepAlive: boolean;
    readonly keepAliveIdle?: number;
  };
}

/** The Qt sockets a connection runs on. */
export type QtStreamSocket = QTcpSocket | QLocalSocket;

/** What a connection reports to its owner. */
export interface QtConnectionEvents {
  /** A decoded frame: the packet value and the codec it came in. */
  onPacket(value: unknown, codec: CodecName): void;
  /** A protocol error; the connection is already being closed. */
  onProtocolError(error: QtTransportError): void;
  /** The connection has ended (after an error or a close from either side). */
  onClosed(): void;
}

/** Bytes queued for a peer above which the connection stops reading from it. */
const PAUSE_AT = 4 * 1024 * 1024;
/** Read buffer used while paused when the socket's own is unbounded. */
const PAUSED_READ_BUFFER = 64 * 1024;

/**
 * One framed connection over a Qt socket: decodes frames (limits checked as the bytes
 * arrive), encodes packets, and keeps memory bounded by the options, never by the peer:
 * - `maxFrameSize` rejects a frame the moment its header arrives;
 * - `incompleteFrameTimeout` drops a peer stalled mid-frame (every byte of progress resets
 *   it; it does not run between frames);
 * - `frameTimeout` drops a peer whose frame is still incomplete that long after its first
 *   byte, plus a second for every `minFrameRate` bytes of it received (slow loris);
 * - `maxSendBufferSize` drops a peer when more than that waits for it (beyond what the
 *   kernel takes), and a peer that takes nothing of its waiting replies for
 *   `incompleteFrameTimeout` is dropped too;
 * - while more than a few MiB wait to be written to the peer, the connection stops
 *   decoding and reading from it (the socket's read buffer is bounded then, so TCP flow
 *   control holds the peer back), and resumes when the queue drains.
 */
export class QtConnection {
  private readonly decoder: FrameDecoder;
  private stallTimer: NodeJS.Timeout | null = null;
  private frameTimer: NodeJS.Timeout | null = null;
  /** When the incomplete frame's first byte was seen; 0 between frames. */
  private frameStartedAt = 0;
  /** Frames decoded so far (tells the frame clock when a frame has ended). */
  private framesDone = 0;
  private framesDoneAtClock = 0;
  /** Date.now() of the last bytes taken from the peer. */
  private lastReceivedAt = Date.now();
  private writeStallTimer: NodeJS.Timeout | null = null;
  private paused = false;
  /** Reading held by the owner (too much work in flight from this peer). */
  private held = false;
  private closed = false;
  /** Bytes handed to the socket, and bytes it reported written, since the start. */
  private enqueued = 0;
  private written = 0;
  private writeWaiters: Array<{ target: number; resolve: () => void; reject: (e: Error) => void }> =
    [];
  private readonly offs: Array<() => void> = [];

  constructor(
    readonly socket: QtStreamSocket,
    private readonly options: ConnectionLimits,
    private readonly events: QtConnectionEvents,
  ) {
    this.decoder = new FrameDecoder(options.maxFrameSize);
    if (options.readBufferSize > 0) socket.setReadBufferSize(options.readBufferSize);
    this.offs.push(socket.readyRead.connect(() => this.onReadyRead()));
    this.offs.push(socket.bytesWritten.connect((n) => this.onBytesWritten(n)));
    this.offs.push(socket.disconnected.connect(() => this.finish()));
    this.offs.push(
      (socket.stateChanged as { connect(slot: (state: number) => void): () => void }).connect(
        (state) => {
          if (state === 0) this.finish();
        },
      ),
    );
  }

  /** Applies the socket options (TCP only; Node cannot set buffer sizes or TOS: skipped). */
  static applySocketOptions(socket: QtStreamSocket, options: ConnectionSocketOptions): void {
    if (!(socket instanceof QTcpSocket)) return;
    const previous = qInstallMessageHandler(() => undefined);
    try {
      socket.setSocketOption(SocketOption.LowDelayOption, options.socketOptions.lowDelay);
      if (options.socketOptions.keepAliveIdle !== undefined) {
        socket.setKeepAliveIdleTime(options.socketOptions.keepAliveIdle);
      }
      socket.setSocketOption(SocketOption.KeepAliveOption, options.socketOptions.keepAlive);
    } finally {
      qInstallMessageHandler(previous);
    }
  }

  /** Starts reading what has already arrived (call after wiring the owner's state). */
  start(): void {
    this.onReadyRead();
  }

  /** True while part of a frame has arrived and the rest has not. */
  isMidFrame(): boolean {
    return this.decoder.isMidFrame();
  }

  /** Date.now() when bytes last came from the peer (or when the connection started). */
  lastReceived(): number {
    return this.lastReceivedAt;
  }

  /** True once the connection has ended. */
  isClosed(): boolean {
    return this.closed;
  }

  /** Bytes waiting to be written to the peer. */
  queuedBytes(): number {
    return this.socket.bytesToWrite();
  }

  /**
   * Encodes `value` with `codec` and sends it as one frame. Throws FrameTooLargeError
   * (nothing is sent) if the encoding exceeds `maxFrameSize`. Drops the peer with
   * SendBufferOverflowError if the queue for it would exceed `maxSendBufferSize`.
   * Returns false if the connection is closed.
   */
  send(value: unknown, codec: CodecName): boolean {
    if (this.closed) return false;
    return this.sendChunks(encodePayloadChunks(codec, value));
  }

  /** Sends an already encoded payload as one frame (see `send`). */
  sendPayload(payload: Buffer): boolean {
    return this.sendChunks([payload]);
  }

  /** Sends the payload made of `chunks` (written in order) as one frame. */
  private sendChunks(chunks: Buffer[]): boolean {
    if (this.closed) return false;
    let length = 0;
    for (const c of chunks) length += c.length;
    if (length > this.options.maxFrameSize) {
      throw new FrameTooLargeError(length, this.options.maxFrameSize);
    }
    let queued = this.socket.bytesToWrite() + length + 4;
    if (queued > this.options.maxSendBufferSize) {
      // Only what the kernel will not take counts: hand the queue over first.
      this.socket.flush();
      queued = this.socket.bytesToWrite() + length + 4;
    }
    if (queued > this.options.maxSendBufferSize) {
      this.fail(new SendBufferOverflowError(queued, this.options.maxSendBufferSize));
      return false;
    }
    // Two writes, one system call: the socket hands every write of a tick to the kernel
    // together, so the payload is never copied to join it to its header.
    this.socket.write(frameHeader(length));
    for (const c of chunks) this.socket.write(c);
    this.enqueued += length + 4;
    if (!this.paused && this.socket.bytesToWrite() > this.pauseAt()) this.pause();
    return true;
  }

  /** Resolves once everything sent so far has been handed to the operating system. */
  whenWritten(): Promise<void> {
    if (this.written >= this.enqueued) return Promise.resolve();
    if (this.closed)
      return Promise.reject(
        new QtTransportError(
          'QT_CONNECTION_CLOSED',
          'The connection closed before the data was written',
        ),
      );
    return new Promise((resolve, reject) => {
      this.writeWaiters.push({ target: this.enqueued, resolve, reject });
    });
  }

  /** Closes after writing what is queued. */
  close(): void {
    if (this.closed) return;
    if (this.socket instanceof QLocalSocket) this.socket.disconnectFromServer();
    else this.socket.disconnectFromHost();
  }

  /** Closes at once, dropping what is queued. */
  abort(): void {
    this.socket.abort();
    this.finish();
  }

  private onReadyRead(): void {
    if (this.closed || this.paused || this.held) return;
    const chunk = this.socket.readAll();
    if (chunk.length === 0) return;
    this.lastReceivedAt = Date.now();
    this.decoder.push(chunk);
    try {
      for (let frame = this.decoder.next(); frame !== null; frame = this.decoder.next()) {
        this.framesDone++;
        const { codec, value } = decodePayload(frame);
        this.events.onPacket(value, codec);
        if (this.closed) return;
        if (this.paused || this.held) break;
      }
    } catch (err) {
      this.fail(
        err instanceof QtTransportError ? err : new QtTransportError('QT_INTERNAL', String(err)),
      );
      return;
    }
    this.armStallTimer();
  }

  /**
   * Restarts the stall timer while a frame is incomplete and starts the frame clock at a
   * frame's first byte; stops both between frames.
   */
  private armStallTimer(): void {
    if (this.stallTimer) {
      clearTimeout(this.stallTimer);
      this.stallTimer = null;
    }
    if (this.framesDone !== this.framesDoneAtClock) {
      // A frame ended: whatever is buffered now belongs to a frame that has just begun.
      this.framesDoneAtClock = this.framesDone;
      this.stopFrameClock();
    }
    // Not reading (paused or held) is the connection's choice: no timer runs then.
    if (this.closed || this.paused || this.held || !this.decoder.isMidFrame()) {
      this.stopFrameClock();
      return;
    }
    if (this.frameStartedAt === 0 && this.options.frameTimeout > 0) {
      this.frameStartedAt = Date.now();
      this.armFrameTimer(this.options.frameTimeout);
    }
    const timeout = this.options.incompleteFrameTimeout;
    this.stallTimer = setTimeout(() => {
      this.fail(
        new IncompleteFrameTimeoutError(
          timeout,
          this.decoder.bufferedBytes(),
          this.decoder.expectedBytes() < 0 ? 4 : this.decoder.expectedBytes(),
        ),
      );
    }, timeout);
    this.stallTimer.unref();
  }

  /** Bytes of the incomplete frame received so far, its header included. */
  private frameBytes(): number {
    return this.decoder.bufferedBytes() + (this.decoder.expectedBytes() >= 0 ? 4 : 0);
  }

  private armFrameTimer(ms: number): void {
    this.frameTimer = setTimeout(() => {
      this.frameTimer = null;
      if (this.closed || this.frameStartedAt === 0) return;
      const received = this.frameBytes();
      const allowed =
        this.options.frameTimeout + Math.floor((received * 1000) / this.options.minFrameRate);
      const elapsed = Date.now() - this.frameStartedAt;
      if (elapsed < allowed) {
        this.armFrameTimer(allowed - elapsed);
        return;
      }
      const expected = this.decoder.expectedBytes();
      this.fail(new FrameTimeoutError(elapsed, allowed, received, expected < 0 ? 4 : expected + 4));
    }, ms);
    this.frameTimer.unref();
  }

  private stopFrameClock(): void {
    if (this.frameTimer) clearTimeout(this.frameTimer);
    this.frameTimer = null;
    this.frameStartedAt = 0;
  }

  private pause(): void {
    this.paused = true;
    // Not reading is the connection's choice, not the peer's stall: no frame timeout now.
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.stopFrameClock();
    this.armWriteStallTimer();
    // Bound what the socket keeps reading meanwhile, so that the peer is held back by TCP.
    if (this.socket.readBufferSize() === 0) this.socket.setReadBufferSize(PAUSED_READ_BUFFER);
  }

  /** Queued bytes above which reading from the peer stops: 4 MiB, or the send limit if lower. */
  private pauseAt(): number {
    return Math.min(PAUSE_AT, this.options.maxSendBufferSize);
  }

  private onBytesWritten(bytes: number): void {
    this.written += bytes;
    if (this.paused) this.armWriteStallTimer();
    // Waiters are in the order their data was queued, so their targets only grow.
    let done = 0;
    while (done < this.writeWaiters.length && this.writeWaiters[done].target <= this.written) {
      this.writeWaiters[done++].resolve();
    }
    if (done > 0) this.writeWaiters.splice(0, done);
    if (!this.paused || this.socket.bytesToWrite() > this.pauseAt() / 2) return;
    this.paused = false;
    this.clearWriteStallTimer();
    this.resumeReading();
  }

  /**
   * Stops taking packets from the peer while the owner has too much of its work in flight
   * (the socket's read buffer is bounded meanwhile, so TCP holds the peer back); `release`
   * goes on where it stopped.
   */
  hold(): void {
    if (this.held || this.closed) return;
    this.held = true;
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.stopFrameClock();
    if (this.socket.readBufferSize() === 0) this.socket.setReadBufferSize(PAUSED_READ_BUFFER);
  }

  /** Ends a `hold`. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.resumeReading();
  }

  private resumeReading(): void {
    if (this.paused || this.held) return;
    if (this.options.readBufferSize === 0) this.socket.setReadBufferSize(0);
    // Frames already received and decoded later: continue where decoding stopped.
    setImmediate(() => {
      if (this.closed || this.paused || this.held) return;
      this.drainDecoded();
      this.onReadyRead();
    });
  }

  /** Delivers frames that were complete when decoding paused. */
  private drainDecoded(): void {
    try {
      for (let frame = this.decoder.next(); frame !== null; frame = this.decoder.next()) {
        this.framesDone++;
        const { codec, value } = decodePayload(frame);
        this.events.onPacket(value, codec);
        if (this.closed || this.paused || this.held) return;
      }
    } catch (err) {
      this.fail(
        err instanceof QtTransportError ? err : new QtTransportError('QT_INTERNAL', String(err)),
      );
    }
  }

  /**
   * While reading is paused for a peer that does not take its replies, the peer must make
   * progress: if nothing is written to it for `incompleteFrameTimeout`, it is dropped.
   */
  private armWriteStallTimer(): void {
    this.clearWriteStallTimer();
    const timeout = this.options.incompleteFrameTimeout;
    this.writeStallTimer = setTimeout(() => {
      this.fail(new WriteStallError(timeout, this.socket.bytesToWrite()));
    }, timeout);
    this.writeStallTimer.unref();
  }

  private clearWriteStallTimer(): void {
    if (this.writeStallTimer) clearTimeout(this.writeStallTimer);
    this.writeStallTimer = null;
  }

  private fail(error: QtTransportError): void {
    if (this.closed) return;
    this.events.onProtocolError(error);
    this.abort();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.stopFrameClock();
    this.clearWriteStallTimer();
    for (const off of this.offs) off();
    this.decoder.reset();
    const waiters = this.writeWaiters;
    this.writeWaiters = [];
    for (const w of waiters) {
      w.reject(
        new QtTransportError(
          'QT_CONNECTION_CLOSED',
          'The connection closed before the data was written',
        ),
      );
    }
    this.events.onClosed();
  }
}
