import {
  LocalSocketState,
  QLocalSocket,
  QTcpSocket,
  SocketOption,
  SocketState,
  qInstallMessageHandler,
} from '../../qtnetwork/index.js';

import { decodePayload, encodePayloadChunks, type CodecName } from './codec.js';
import {
  ConnectionClosedError,
  FrameTimeoutError,
  FrameTooLargeError,
  IdleTimeoutError,
  IncompleteFrameTimeoutError,
  MemoryBudgetExceededError,
  SendBufferOverflowError,
  WriteStallError,
  asTransportError,
  type QtTransportError,
} from './errors.js';
import { FrameDecoder, frameHeader } from './frame-decoder.js';
import type { BudgetHolder, MemoryBudget } from './memory-budget.js';
import { isPingPacket } from './packets.js';

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
  /** Closes the connection after this long with no frame arriving and no work running; 0 = off. */
  readonly idleTimeout: number;
  /** Values one incoming packet may hold, counted before it is decoded (PacketTooComplexError). */
  readonly maxPacketValues: number;
  /**
   * Units of the owner's work (handlers) one connection may have running at once; at the
   * limit reading stops until fewer than half are left. Infinity = no limit.
   */
  readonly maxActiveWork?: number;
  /**
   * The byte budget this connection shares with the others of its server: incoming frames
   * are reserved in it when their header arrives, and frames to send are charged until the
   * kernel has taken them. None: only the per-connection limits apply.
   */
  readonly memoryBudget?: MemoryBudget | null;
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

/** Calls `slot` when `socket` enters its unconnected state; returns the disconnecting function. */
export function onUnconnected(socket: QtStreamSocket, slot: () => void): () => void {
  if (socket instanceof QLocalSocket) {
    return socket.stateChanged.connect((state) => {
      if (state === LocalSocketState.UnconnectedState) slot();
    });
  }
  return socket.stateChanged.connect((state) => {
    if (state === SocketState.UnconnectedState) slot();
  });
}

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
 * Bytes of whole frames read ahead, while the work limit holds reading, to find the pings
 * among them (docs/protocol.md, "Ping"). What does not fit waits in the socket.
 */
const READ_AHEAD = 64 * 1024;
/**
 * Frames read ahead up to this size are decoded to see whether they are pings (a ping is
 * some 20 bytes); larger ones wait undecoded.
 */
const PING_MAX_FRAME = 256;
/** Payloads up to this many bytes are copied behind their header into one Buffer (send). */
const SMALL_FRAME = 4096;
/**
 * Within a burst, queued frames are handed to the kernel whenever this many bytes, or this
 * many writes, have gathered since the last hand-over, so the peer works on them while this
 * side goes on. The count keeps each hand-over one writev the kernel takes whole: Node's
 * writev takes at most 1024 buffers at once, and while it finishes a longer one on a later
 * turn of the event loop, every write after it waits in Node until then.
 */
const BURST_FLUSH_BYTES = 64 * 1024;
const BURST_FLUSH_WRITES = 256;
/** What a slot of the read-ahead queue holds once its frame is delivered. */
const NO_FRAME = Buffer.alloc(0);

/** A whenWritten promise and the byte offset up to which the kernel must have the data. */
interface WriteWaiter {
  target: number;
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * One framed connection over a Qt socket: decodes frames (limits checked as the bytes
 * arrive), encodes packets, and keeps memory bounded by the limits, never by the peer:
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
 *   control holds the peer back), and resumes when the queue drains; the same happens while
 *   the owner has `maxActiveWork` units of work running for this peer, except that whole
 *   frames are then read ahead (up to READ_AHEAD bytes) and the pings among them delivered
 *   at once, so that a peer whose handlers are all busy still gets its pongs;
 * - `idleTimeout` closes a connection that sends nothing while nothing runs for it;
 * - with a `memoryBudget`, a frame that spans reads is admitted only once its announced
 *   size is reserved in the server-wide budget (reading stops meanwhile, and no frame clock
 *   runs: the wait is the server's choice), and a frame to send that does not fit is
 *   refused with MemoryBudgetExceededError.
 * It owns its timers and its closing: `closeAndWait` is the one graceful way out.
 */
export class QtConnection {
  private readonly decoder: FrameDecoder;
  private stallTimer: NodeJS.Timeout | null = null;
  private frameTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  /** When the incomplete frame's first byte was seen; 0 between frames. */
  private frameStartedAt = 0;
  /** Frames decoded so far (tells the frame clock when a frame has ended). */
  private framesDone = 0;
  private framesDoneAtClock = 0;
  /** Date.now() of the last bytes taken from the peer, or of the last work finished. */
  private lastActivityAt = Date.now();
  private writeStallTimer: NodeJS.Timeout | null = null;
  /** Reading stopped because too much waits to be written to the peer. */
  private paused = false;
  /** Reading stopped because the owner has too much work running for this peer. */
  private held = false;
  /** Units of the owner's work running for this peer (beginWork / endWork). */
  private activeWork = 0;
  /**
   * Frames read ahead while held, other than pings, in order, undecoded: delivered first
   * when reading resumes. `aheadHead` is the next one; `aheadBytes` their total size.
   */
  private ahead: Buffer[] = [];
  private aheadHead = 0;
  private aheadBytes = 0;
  private readonly maxActiveWork: number;
  private readonly budget: MemoryBudget | null;
  /** This connection's account in the budget: dropped when the budget stays exhausted. */
  private readonly budgetHolder: BudgetHolder = { shed: (error) => this.fail(error) };
  /** Bytes reserved (or asked for) in the budget for the frame being received; 0 if none. */
  private frameReserved = 0;
  /** Reading stopped until the budget has room for the frame being received. */
  private waitingForBudget = false;
  private closed = false;
  /** Set from the first frame sent in a synchronous run to the next tick (see send). */
  private burst = false;
  /** Where `enqueued` stood when the current burst last handed its frames to the kernel. */
  private burstFlushedAt = 0;
  /** Socket writes made since then. */
  private burstWrites = 0;
  /** The write waiter that whenWritten callers of the current burst share. */
  private burstWaiter: WriteWaiter | null = null;
  /** Bytes handed to the socket, and bytes it reported written, since the start. */
  private enqueued = 0;
  private written = 0;
  private writeWaiters: WriteWaiter[] = [];
  /** Callers of closeAndWait, woken when the connection has ended. */
  private closeWaiters: Array<() => void> = [];
  private readonly offs: Array<() => void> = [];

  constructor(
    readonly socket: QtStreamSocket,
    private readonly limits: ConnectionLimits,
    private readonly events: QtConnectionEvents,
  ) {
    this.decoder = new FrameDecoder(limits.maxFrameSize);
    this.maxActiveWork = limits.maxActiveWork ?? Infinity;
    this.budget = limits.memoryBudget ?? null;
    if (limits.readBufferSize > 0) socket.setReadBufferSize(limits.readBufferSize);
    this.offs.push(socket.readyRead.connect(() => this.onReadyRead()));
    this.offs.push(socket.bytesWritten.connect((n) => this.onBytesWritten(n)));
    this.offs.push(socket.disconnected.connect(() => this.finish()));
    this.offs.push(onUnconnected(socket, () => this.finish()));
    if (limits.idleTimeout > 0) this.armIdleTimer(limits.idleTimeout);
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

  /** True once the connection has ended. */
  isClosed(): boolean {
    return this.closed;
  }

  /**
   * Ms since the peer last sent bytes or work for it last ended, if the connection is idle
   * now: no work running, no frame half received, nothing received and not yet decoded,
   * nothing waiting to be written. -1 when it is not idle (or has ended).
   */
  idleMs(now = Date.now()): number {
    if (
      this.closed ||
      this.activeWork > 0 ||
      this.aheadBytes > 0 ||
      this.decoder.isMidFrame() ||
      this.socket.bytesAvailable() > 0 ||
      this.socket.bytesToWrite() > 0 ||
      this.written < this.enqueued
    ) {
      return -1;
    }
    return Math.max(0, now - this.lastActivityAt);
  }

  /** Bytes of every frame sent so far (a frame's end offset is this right after its send). */
  sentBytes(): number {
    return this.enqueued;
  }

  /** Bytes the socket has handed to the operating system so far. */
  writtenBytes(): number {
    return this.written;
  }

  /** Bytes waiting to be written to the peer. */
  queuedBytes(): number {
    return this.socket.bytesToWrite();
  }

  /**
   * Encodes `value` with `codec` and sends it as one frame. Throws FrameTooLargeError
   * (nothing is sent) if the encoding exceeds `maxFrameSize`, and MemoryBudgetExceededError
   * (nothing is sent) if the frame does not fit the memory budget, unless `essential`: a
   * small frame that must go out (an error reply that ends a request, an acknowledgement)
   * is charged even beyond the budget. Drops the peer with SendBufferOverflowError if the
   * queue for it would exceed `maxSendBufferSize`. Returns false if the connection is closed.
   */
  send(value: unknown, codec: CodecName, essential = false): boolean {
    if (this.closed) return false;
    const chunks = encodePayloadChunks(codec, value);
    let length = 0;
    for (const c of chunks) length += c.length;
    if (length > this.limits.maxFrameSize) {
      throw new FrameTooLargeError(length, this.limits.maxFrameSize);
    }
    let queued = this.socket.bytesToWrite() + length + 4;
    if (queued > this.limits.maxSendBufferSize) {
      // Only what the kernel will not take counts: hand the queue over first.
      this.socket.flush();
      queued = this.socket.bytesToWrite() + length + 4;
    }
    if (queued > this.limits.maxSendBufferSize) {
      this.fail(new SendBufferOverflowError(queued, this.limits.maxSendBufferSize));
      return false;
    }
    if (this.budget) {
      // Charged until the kernel has taken it (onBytesWritten), or the connection ends.
      if (essential) this.budget.charge(this.budgetHolder, length + 4);
      else if (!this.budget.tryCharge(this.budgetHolder, length + 4)) {
        throw new MemoryBudgetExceededError(
          length + 4,
          this.budget.used(),
          this.budget.limit,
          'refused',
        );
      }
    }
    if (length <= SMALL_FRAME) {
      // A small packet (most requests and replies) goes as one Buffer, header and body:
      // one write for the socket to queue and Node to hand over (a plain write, not a
      // corked writev of two pieces); copying a few hundred bytes costs less than that.
      const frame = Buffer.allocUnsafe(length + 4);
      frame.writeUInt32BE(length, 0);
      let at = 4;
      for (const c of chunks) at += c.copy(frame, at);
      this.socket.write(frame);
      this.burstWrites++;
    } else {
      // Two writes, one system call: the socket hands every write of a tick to the kernel
      // together, so a large payload is never copied to join it to its header.
      this.socket.write(frameHeader(length));
      for (const c of chunks) this.socket.write(c);
      this.burstWrites += 1 + chunks.length;
    }
    this.enqueued += length + 4;
    // The first frame of a burst goes to the kernel now; the ones sent after it in the same
    // synchronous run wait for the socket's flush on the next tick and go together. Both
    // ends batching whole bursts fall into lockstep (each side idle while the other works
    // through a batch): at 16 requests in flight, req/s was 1.0x Nest's with this
    // transport's processes busy half the time; the early frame lets the peer start on it
    // while this side works through the rest (1.6-2.2x Nest in A/B runs). Flushing every
    // frame instead costs a system call each (0.8-1.2x Nest). A long burst (an emit loop of
    // thousands of events) is also handed over in parts: held to the end of the run, the
    // peer would start on it only once this side had encoded all of it, and the two
    // processes' work would add up instead of overlapping.
    const first = !this.burst;
    if (first) {
      this.burst = true;
      process.nextTick(this.endBurst);
    }
    if (
      first ||
      this.burstWrites >= BURST_FLUSH_WRITES ||
      this.enqueued - this.burstFlushedAt >= BURST_FLUSH_BYTES
    ) {
      this.socket.flush();
      this.burstFlushedAt = this.enqueued;
      this.burstWrites = 0;
    }
    if (!this.paused && this.socket.bytesToWrite() > this.pauseAt()) this.pause();
    return true;
  }

  /** Ends the burst that `send` began (next tick): the next frame goes out at once again. */
  private readonly endBurst = (): void => {
    this.burst = false;
    this.burstWaiter = null;
  };

  /** Resolves once everything sent so far has been handed to the operating system. */
  whenWritten(): Promise<void> {
    if (this.written >= this.enqueued) return Promise.resolve();
    if (this.closed) return Promise.reject(new ConnectionClosedError());
    // Callers within one burst (a loop emitting events) share a waiter: its target moves to
    // the end of what is queued now. The burst's frames go to the kernel together, so none
    // of them waits longer for it; a promise and a waiter per event were a large part of
    // the client's garbage in an event burst.
    const shared = this.burstWaiter;
    if (shared !== null) {
      shared.target = this.enqueued;
      return shared.promise;
    }
    const waiter = { target: this.enqueued } as WriteWaiter;
    waiter.promise = new Promise<void>((resolve, reject) => {
      waiter.resolve = resolve;
      waiter.reject = reject;
    });
    this.writeWaiters.push(waiter);
    if (this.burst) this.burstWaiter = waiter;
    return waiter.promise;
  }

  /** Closes after writing what is queued. */
  close(): void {
    if (this.closed) return;
    if (this.socket instanceof QLocalSocket) this.socket.disconnectFromServer();
    else this.socket.disconnectFromHost();
  }

  /**
   * Closes after writing what is queued and resolves once the connection has ended; a
   * peer that does not let it end within `graceMs` is aborted.
   */
  closeAndWait(graceMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.abort(), graceMs);
      timer.unref();
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.close();
    });
  }

  /** Closes at once, dropping what is queued. */
  abort(): void {
    this.socket.abort();
    this.finish();
  }

  /**
   * The owner started a unit of work for this peer (a handler). At `maxActiveWork` units
   * reading stops; the connection is never idle while work runs.
   */
  beginWork(): void {
    if (++this.activeWork >= this.maxActiveWork) this.hold();
  }

  /** A unit of work ended; reading resumes below half of `maxActiveWork`. */
  endWork(): void {
    this.lastActivityAt = Date.now();
    if (--this.activeWork < this.maxActiveWork / 2) this.release();
  }

  /** Reading stopped: replies wait for the peer, its work runs, or its frame waits for budget. */
  private readingStopped(): boolean {
    return this.paused || this.held || this.waitingForBudget;
  }

  private onReadyRead(): void {
    if (this.closed) return;
    if (this.readingStopped()) {
      this.readAhead();
      return;
    }
    const chunk = this.socket.readAll();
    if (chunk.length === 0) return;
    this.lastActivityAt = Date.now();
    this.decoder.push(chunk);
    if (!this.deliverFrames()) return;
    this.armStallTimer();
  }

  /**
   * Decodes and delivers the complete frames buffered, until reading stops (paused, held,
   * waiting for budget) or the connection ends. Returns false when the connection ended.
   */
  private deliverFrames(): boolean {
    try {
      while (this.aheadHead < this.ahead.length) {
        const frame = this.ahead[this.aheadHead];
        this.ahead[this.aheadHead++] = NO_FRAME;
        this.aheadBytes -= frame.length;
        if (this.aheadHead === this.ahead.length) {
          this.ahead = [];
          this.aheadHead = 0;
        }
        const { codec, value } = decodePayload(frame, this.limits);
        this.events.onPacket(value, codec);
        if (this.closed) return false;
        if (this.readingStopped()) return true;
      }
      for (let frame = this.decoder.next(); frame !== null; frame = this.decoder.next()) {
        this.framesDone++;
        this.releaseFrameReservation();
        const { codec, value } = decodePayload(frame, this.limits);
        this.events.onPacket(value, codec);
        if (this.closed) return false;
        if (this.readingStopped()) return true;
      }
    } catch (err) {
      this.fail(asTransportError(err));
      return false;
    }
    this.reserveFrame();
    return true;
  }

  /**
   * While the work limit holds reading (only then: not while replies wait for the peer, nor
   * while a frame waits for budget), reads whole frames ahead, up to READ_AHEAD bytes in
   * all, and delivers the pings among them at once: a peer whose handlers are all busy
   * still gets its pongs (docs/protocol.md, "Ping"). The other frames wait, undecoded and
   * in order, for reading to resume. A frame that does not fit in what is left of
   * READ_AHEAD stops it: that frame, and whatever follows it, waits in the socket. A bad
   * frame header closes the connection at once, as it would when read in turn.
   */
  private readAhead(): void {
    if (this.closed || !this.held || this.paused || this.waitingForBudget) return;
    try {
      for (;;) {
        for (let frame = this.decoder.next(); frame !== null; frame = this.decoder.next()) {
          this.framesDone++;
          this.releaseFrameReservation();
          if (this.deliverIfPing(frame)) {
            if (this.closed || this.paused || !this.held) return;
            continue;
          }
          this.ahead.push(frame);
          this.aheadBytes += frame.length;
        }
        const expected = this.decoder.expectedBytes();
        if (expected >= 0 && this.aheadBytes + expected > READ_AHEAD) return;
        const room = READ_AHEAD - this.aheadBytes - this.decoder.bufferedBytes();
        if (room <= 0) return;
        const chunk = this.socket.read(room);
        if (chunk.length === 0) return;
        this.lastActivityAt = Date.now();
        this.decoder.push(chunk);
      }
    } catch (err) {
      this.fail(asTransportError(err));
    }
  }

  /**
   * Delivers `frame` if it is a ping; false otherwise. A small frame that does not decode
   * is not a ping: it waits, and its error is reported in turn.
   */
  private deliverIfPing(frame: Buffer): boolean {
    if (frame.length > PING_MAX_FRAME) return false;
    let decoded: ReturnType<typeof decodePayload>;
    try {
      decoded = decodePayload(frame, this.limits);
    } catch {
      return false;
    }
    if (!isPingPacket(decoded.value)) return false;
    this.events.onPacket(decoded.value, decoded.codec);
    return true;
  }

  /**
   * Reserves, in the memory budget, the announced size of a frame whose header has arrived
   * and whose body has not (a frame that arrives whole in one read needs no reservation:
   * it is decoded at once). Without room, reading stops until `grantFrame`.
   */
  private reserveFrame(): void {
    if (!this.budget || this.frameReserved > 0) return;
    const expected = this.decoder.expectedBytes();
    if (expected <= 0) return;
    this.frameReserved = expected;
    if (this.budget.reserve(this.budgetHolder, expected, () => this.grantFrame())) return;
    this.waitingForBudget = true;
    this.stopReading();
  }

  /** The budget has room for the frame being received: go on reading it. */
  private grantFrame(): void {
    if (this.closed || !this.waitingForBudget) return;
    this.waitingForBudget = false;
    this.resumeReading();
    // The clocks start now, so that a peer granted a reservation must go on sending: one
    // that sends nothing more cannot hold its share without a stall timer running.
    this.armStallTimer();
  }

  /** A frame is complete: its bytes now belong to whoever decodes it. */
  private releaseFrameReservation(): void {
    if (this.frameReserved === 0) return;
    this.budget?.release(this.budgetHolder, this.frameReserved);
    this.frameReserved = 0;
  }

  /**
   * Restarts the stall timer while a frame is incomplete and starts the frame clock at a
   * frame's first byte; stops both between frames.
   */
  private armStallTimer(): void {
    this.clearStallTimer();
    if (this.framesDone !== this.framesDoneAtClock) {
      // A frame ended: whatever is buffered now belongs to a frame that has just begun.
      this.framesDoneAtClock = this.framesDone;
      this.stopFrameClock();
    }
    // Not reading (paused, held, waiting for budget) is the connection's choice: no timer
    // runs then.
    if (this.closed || this.readingStopped() || !this.decoder.isMidFrame()) {
      this.stopFrameClock();
      return;
    }
    if (this.frameStartedAt === 0 && this.limits.frameTimeout > 0) {
      this.frameStartedAt = Date.now();
      this.armFrameTimer(this.limits.frameTimeout);
    }
    const timeout = this.limits.incompleteFrameTimeout;
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

  private clearStallTimer(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
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
        this.limits.frameTimeout + Math.floor((received * 1000) / this.limits.minFrameRate);
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

  /**
   * Checks for idleness `ms` from now: a connection with work running, a frame half
   * received or replies waiting is not idle; one that was active since is checked again
   * when its quiet time would reach the limit.
   */
  private armIdleTimer(ms: number): void {
    // Never more often than every 10 ms, however short the limit: a busy peer costs little.
    this.idleTimer = setTimeout(
      () => {
        this.idleTimer = null;
        if (this.closed) return;
        const limit = this.limits.idleTimeout;
        if (this.activeWork > 0 || this.decoder.isMidFrame() || this.socket.bytesToWrite() > 0) {
          this.armIdleTimer(limit);
          return;
        }
        const quiet = Date.now() - this.lastActivityAt;
        if (quiet < limit) {
          this.armIdleTimer(limit - quiet);
          return;
        }
        this.events.onProtocolError(new IdleTimeoutError(limit));
        this.close();
      },
      Math.max(10, ms),
    );
    this.idleTimer.unref();
  }

  /** Stops reading: no frame clock runs and the socket buffers a bounded amount meanwhile. */
  private stopReading(): void {
    this.clearStallTimer();
    this.stopFrameClock();
    if (this.socket.readBufferSize() === 0) this.socket.setReadBufferSize(PAUSED_READ_BUFFER);
  }

  private pause(): void {
    this.paused = true;
    // Not reading is the connection's choice, not the peer's stall: no frame timeout now.
    this.stopReading();
    this.armWriteStallTimer();
  }

  /** Queued bytes above which reading from the peer stops: 4 MiB, or the send limit if lower. */
  private pauseAt(): number {
    return Math.min(PAUSE_AT, this.limits.maxSendBufferSize);
  }

  private onBytesWritten(bytes: number): void {
    // Every byte sent was charged to the budget (send): what the kernel took is given back.
    this.budget?.release(this.budgetHolder, Math.min(bytes, this.enqueued - this.written));
    this.written += bytes;
    if (this.paused) this.armWriteStallTimer();
    // Waiters are in the order their data was queued, so their targets only grow.
    let done = 0;
    while (done < this.writeWaiters.length && this.writeWaiters[done].target <= this.written) {
      const waiter = this.writeWaiters[done++];
      if (waiter === this.burstWaiter) this.burstWaiter = null;
      waiter.resolve();
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
    this.stopReading();
    // Pings already received, behind the frame that reached the limit, are still answered.
    setImmediate(() => this.readAhead());
  }

  /** Ends a `hold`. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.resumeReading();
  }

  private resumeReading(): void {
    if (this.readingStopped()) {
      // Replies were taken or budget granted, but the work limit still holds: look ahead.
      if (this.held) setImmediate(() => this.readAhead());
      return;
    }
    if (this.limits.readBufferSize === 0) this.socket.setReadBufferSize(0);
    // Frames already received are delivered first: continue where decoding stopped.
    setImmediate(() => {
      if (this.closed || this.readingStopped()) return;
      if (!this.deliverFrames() || this.readingStopped()) return;
      this.onReadyRead();
    });
  }

  /**
   * While reading is paused for a peer that does not take its replies, the peer must make
   * progress: if nothing is written to it for `incompleteFrameTimeout`, it is dropped.
   */
  private armWriteStallTimer(): void {
    this.clearWriteStallTimer();
    const timeout = this.limits.incompleteFrameTimeout;
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
    this.clearStallTimer();
    this.stopFrameClock();
    this.clearWriteStallTimer();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    for (const off of this.offs) off();
    this.decoder.reset();
    this.ahead = [];
    this.aheadHead = 0;
    this.aheadBytes = 0;
    // What was queued for the peer is dropped with the socket, and its frame is gone.
    this.budget?.releaseAll(this.budgetHolder);
    this.frameReserved = 0;
    const waiters = this.writeWaiters;
    this.writeWaiters = [];
    this.burstWaiter = null;
    for (const w of waiters) w.reject(new ConnectionClosedError());
    this.events.onClosed();
    const closeWaiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of closeWaiters) w();
  }
}
