import { EventNotAcknowledgedError, TooManyUnackedEventsError } from './errors.js';

/** The bounds of the acknowledged-event mode (option `acknowledgedEvents`). */
export interface AckBounds {
  /** Events that may wait for their acknowledgement at once. */
  readonly maxUnacked: number;
  /** How many times one event is sent again after reconnects before it fails. */
  readonly maxResends: number;
}

interface Unacked<P> {
  readonly packet: P & { ackId: number };
  resends: number;
  /** What `send` returned when it last sent the event (the connection it went out on). */
  sentOn: unknown;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The client's side of acknowledged events: numbers each event, remembers it until the
 * server acknowledges it, hands the unacknowledged ones out again after a reconnect (in the
 * order sent) and fails those that ran out of resends. It sends nothing itself.
 */
export class AckedEvents<P extends object> {
  private readonly waiting = new Map<number, Unacked<P>>();
  private nextAckId = 1;

  constructor(private readonly bounds: AckBounds) {}

  /** Events waiting for their acknowledgement. */
  get size(): number {
    return this.waiting.size;
  }

  /**
   * Registers `packet`; `send` gets it with its ackId (and may throw: the event is then
   * forgotten and the Promise fails) and returns where it went (kept for `orphan`; null or
   * undefined: nowhere yet). The Promise resolves on the acknowledgement.
   */
  add(packet: P, send: (numbered: P & { ackId: number }) => unknown): Promise<void> {
    if (this.waiting.size >= this.bounds.maxUnacked) {
      return Promise.reject(new TooManyUnackedEventsError(this.waiting.size));
    }
    return new Promise<void>((resolve, reject) => {
      const ackId = this.nextAckId++;
      const entry: Unacked<P> = {
        packet: { ...packet, ackId },
        resends: 0,
        sentOn: null,
        resolve,
        reject,
      };
      this.waiting.set(ackId, entry);
      try {
        entry.sentOn = send(entry.packet) ?? null;
      } catch (err) {
        this.waiting.delete(ackId);
        reject(err);
      }
    });
  }

  /** The server acknowledged `ackId`; an unknown or repeated one is ignored. */
  acknowledge(ackId: number): void {
    const entry = this.waiting.get(ackId);
    if (!entry) return;
    this.waiting.delete(ackId);
    entry.resolve();
  }

  /**
   * After a reconnect: passes each unacknowledged event that went out on nothing still open
   * (see `orphan`; all of them by default) to `send` again, in the order first sent; an event
   * already sent `maxResends` more times fails with EventNotAcknowledgedError. `send` returns
   * where it went, as for `add`.
   */
  resend(send: (numbered: P & { ackId: number }) => unknown, onlyOrphans = false): void {
    for (const [ackId, entry] of this.waiting) {
      if (onlyOrphans && entry.sentOn !== null) continue;
      if (entry.resends >= this.bounds.maxResends) {
        this.waiting.delete(ackId);
        const pattern = String((entry.packet as { pattern?: unknown }).pattern);
        entry.reject(new EventNotAcknowledgedError(pattern, entry.resends));
        continue;
      }
      entry.resends++;
      entry.sentOn = send(entry.packet) ?? null;
    }
  }

  /** The connection `sentOn` is gone: its unacknowledged events are orphans, to be sent again. */
  orphan(sentOn: unknown): void {
    for (const entry of this.waiting.values()) if (entry.sentOn === sentOn) entry.sentOn = null;
  }

  /** Fails every event that waits for its acknowledgement. */
  failAll(err: unknown): void {
    for (const [ackId, entry] of [...this.waiting]) {
      this.waiting.delete(ackId);
      entry.reject(err);
    }
  }
}
