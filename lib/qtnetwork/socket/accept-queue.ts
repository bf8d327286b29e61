import type * as net from 'node:net';

/** Qt's default for `maxPendingConnections()`. */
export const DEFAULT_MAX_PENDING = 30;
/** Qt's default listen backlog (50 unless told otherwise). */
export const DEFAULT_BACKLOG = 50;

/** What a server does with a connection the queue hands out. */
export interface AcceptQueueHost {
  /** Turns an accepted connection into a pending socket (Qt's `incomingConnection`). */
  handOut(raw: net.Socket): void;
  /** Called after each `handOut` (QTcpServer emits `newConnection` here). */
  afterHandOut(): void;
  /**
   * The connections that count against `maxPending` (Qt's private
   * `totalPendingConnections`): the pending list, and for QSslServer also the connections
   * still in their handshake.
   */
  pendingCount(): number;
}

type NewConnectionWaiter = (result: [boolean, boolean]) => void;

/**
 * The pending-connection rules QTcpServer and QLocalServer share.
 *
 * Qt stops accepting while `maxPendingConnections` sockets are pending, and further
 * connections wait in the kernel's accept queue. Node accepts every connection at once, so
 * this queue plays the kernel's part: accepted connections wait here un-read (the server
 * accepts with `pauseOnConnect`), in arrival order, until there is room in the pending list;
 * at most `backlog` of them, and any connection beyond that is closed at once. A flood
 * therefore holds at most maxPending + backlog descriptors.
 */
export class AcceptQueue<S> {
  /** Sockets handed out and not yet taken by `next()`. */
  readonly pending: S[] = [];
  /** Accepted by Node, not yet handed out. */
  private readonly waiting: net.Socket[] = [];
  private waiters: NewConnectionWaiter[] = [];
  private drainScheduled = false;
  private open = false;
  maxPending = DEFAULT_MAX_PENDING;
  backlog = DEFAULT_BACKLOG;
  paused = false;

  constructor(private readonly host: AcceptQueueHost) {}

  /** Starts taking connections (the server is listening). */
  start(): void {
    this.open = true;
  }

  /**
   * Stops: closes every waiting connection, returns the pending sockets for the server to
   * close, and ends every `waitForNew` with `[false, false]`.
   */
  stop(): S[] {
    this.open = false;
    for (const raw of this.waiting.splice(0)) raw.destroy();
    this.settleWaiters([false, false]);
    return this.pending.splice(0);
  }

  /** Number of connections waiting beyond the pending list. */
  waitingCount(): number {
    return this.waiting.length;
  }

  /** A connection Node accepted. */
  offer(raw: net.Socket): void {
    // Errors on a connection nobody has taken yet must not crash the process.
    raw.on('error', () => undefined);
    if (!this.open || this.waiting.length >= this.backlog) {
      // Beyond the backlog the connection is refused, as the kernel would drop it.
      raw.destroy();
      return;
    }
    this.waiting.push(raw);
    this.drain();
    // As in Qt, a wait ends when a connection arrives, even if the pending limit keeps it
    // from being handed out yet.
    if (this.open) this.settleWaiters([true, false]);
  }

  /** Adds a socket to the pending list (works whether or not the server listens). */
  addPending(socket: S): void {
    this.pending.push(socket);
  }

  /** Takes the oldest pending socket; lets the next waiting connection be handed out. */
  next(): S | null {
    const socket = this.pending.shift() ?? null;
    if (socket !== null) this.scheduleDrain();
    return socket;
  }

  /** Re-examines the limits later (after they changed, or accepting resumed). */
  scheduleDrain(): void {
    if (this.drainScheduled || this.waiting.length === 0) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /**
   * Resolves `[true, false]` when a connection arrives within `msecs` (-1 = no limit),
   * `[false, true]` on timeout (after `onTimeout`), `[false, false]` if the server stops.
   * A connection already waiting is handed out at once, even while paused (as in Qt).
   */
  waitForNew(msecs: number, onTimeout: () => void): Promise<[boolean, boolean]> {
    if (!this.open) return Promise.resolve([false, false]);
    if (this.waiting.length > 0) {
      this.handOutNext();
      return Promise.resolve([true, false]);
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const waiter: NewConnectionWaiter = (result) => {
        if (timer) clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(result);
      };
      this.waiters.push(waiter);
      if (msecs >= 0) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          onTimeout();
          resolve([false, true]);
        }, msecs);
      }
    });
  }

  /**
   * Hands out the oldest waiting connection that is still open, if the pending limit
   * allows (pausing does not stop it); false if none was handed out.
   */
  private handOutNext(): boolean {
    while (this.waiting.length > 0 && this.host.pendingCount() < this.maxPending) {
      const raw = this.waiting.shift()!;
      if (raw.destroyed) continue;
      this.host.handOut(raw);
      this.host.afterHandOut();
      return true;
    }
    return false;
  }

  /** Hands waiting connections out while the pending limit allows. */
  private drain(): void {
    // Checked before each one: a slot may pause accepting or close the server meanwhile.
    let handedOut = true;
    while (handedOut && this.open && !this.paused) handedOut = this.handOutNext();
  }

  private settleWaiters(result: [boolean, boolean]): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(result);
  }
}
