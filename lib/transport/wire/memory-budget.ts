import { MemoryBudgetExceededError } from './errors.js';

/** Something that holds part of a budget: one connection. */
export interface BudgetHolder {
  /**
   * Drops the holder because the budget stayed exhausted and it holds the most; it must
   * release what it holds (`releaseAll`).
   */
  shed(error: MemoryBudgetExceededError): void;
}

/** How a MemoryBudget shares its bytes and when it drops a holder. */
export interface MemoryBudgetOptions {
  /** Bytes at the top of the budget that only light holders may use. Default limit / 8. */
  readonly reserve?: number;
  /** A holder holding at most this many bytes, the new ones included, is light. Default 64 KiB. */
  readonly lightBytes?: number;
  /**
   * Ms the budget may stay exhausted (a frame waits, or a refused frame still would not
   * fit) before the holder holding the most is dropped; one holder per period. Default 1000.
   */
  readonly graceMs?: number;
}

/** Node's read size: what one socket read buffers anyway, so the unit of a light holder. */
const LIGHT_BYTES = 64 * 1024;
const GRACE_MS = 1000;

interface Waiter {
  readonly holder: BudgetHolder;
  readonly bytes: number;
  readonly grant: () => void;
}

/**
 * A byte budget shared by every connection of a server, in the spirit of gRPC's resource
 * quota and Envoy's overload manager: each connection charges the bytes it buffers (an
 * incoming frame's announced size, reserved when its header arrives; frames queued for the
 * peer until the kernel has taken them), and the sum never exceeds `limit`, except for
 * what `charge` forces in (small error replies that end a request).
 *
 * - `reserve` asks for an incoming frame: granted now if it fits, else the caller waits
 *   (stops reading, so TCP holds the peer back) and `grant` runs once it fits. A frame is
 *   admitted whole, so an admitted frame can always complete: peers cannot deadlock each
 *   other with half-received frames.
 * - `tryCharge` is for a frame to send: refused (false) if it does not fit.
 * - The top `reserve` bytes (limit / 8) are only for light holders, those holding at most
 *   `lightBytes` (64 KiB) with the new bytes: peers with large frames or long queues fill
 *   at most 7/8 of the budget, so small requests and replies go on beside them.
 * - Pressure: while a frame waits, or when a frame refused a period ago still would not
 *   fit, the holder holding the most bytes is dropped (`shed`), one per `graceMs`, until
 *   the pressure ends.
 */
export class MemoryBudget {
  private usedBytes = 0;
  /**
   * Bytes charged per holder. A holder stays listed from its first charge until
   * `releaseAll` (its connection has ended), at 0 in between: deleting its key whenever its
   * charge reached 0 and adding it back on the next send made V8 shrink and regrow the
   * Map's table, an allocation or two for every write of every connection.
   */
  private readonly holders = new Map<BudgetHolder, number>();
  private waiters: Waiter[] = [];
  private readonly reserveBytes: number;
  private readonly lightBytes: number;
  private readonly graceMs: number;
  private pressureTimer: NodeJS.Timeout | null = null;
  /**
   * Since the pressure was last checked: the use above which the smallest frame refused
   * would still not fit; -1 if none was refused.
   */
  private refusedAbove = -1;
  private shedCount = 0;

  /** @param limit bytes that may be charged at once (a positive integer). */
  constructor(
    readonly limit: number,
    options: MemoryBudgetOptions = {},
  ) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`MemoryBudget: limit must be a positive integer, got ${limit}`);
    }
    this.reserveBytes = options.reserve ?? Math.floor(limit / 8);
    this.lightBytes = options.lightBytes ?? LIGHT_BYTES;
    this.graceMs = options.graceMs ?? GRACE_MS;
  }

  /** Bytes charged now, across all holders. */
  used(): number {
    return this.usedBytes;
  }

  /** Bytes `holder` has charged. */
  heldBy(holder: BudgetHolder): number {
    return this.holders.get(holder) ?? 0;
  }

  /** Frames waiting for their reservation. */
  waiting(): number {
    return this.waiters.length;
  }

  /** Holders dropped so far because the budget stayed exhausted. */
  shedTotal(): number {
    return this.shedCount;
  }

  /** Whether `bytes` more for `holder` fit now (the reserve counts for light holders only). */
  fits(holder: BudgetHolder, bytes: number): boolean {
    return this.usedBytes + bytes <= this.ceiling(holder, bytes);
  }

  /** Charges `bytes` to `holder` if they fit; false (and nothing charged) otherwise. */
  tryCharge(holder: BudgetHolder, bytes: number): boolean {
    if (!this.fits(holder, bytes)) {
      this.refusedAbove = Math.max(this.refusedAbove, this.ceiling(holder, bytes) - bytes);
      this.armPressure();
      return false;
    }
    this.add(holder, bytes);
    return true;
  }

  /** Charges `bytes` whether they fit or not (a small frame that must go out). */
  charge(holder: BudgetHolder, bytes: number): void {
    this.add(holder, bytes);
  }

  /**
   * Reserves `bytes` for an incoming frame of `holder`: true if charged now; otherwise the
   * frame waits, in order, and `grant` is called once it has been charged. A holder has at
   * most one frame waiting.
   */
  reserve(holder: BudgetHolder, bytes: number, grant: () => void): boolean {
    if (this.fits(holder, bytes)) {
      this.add(holder, bytes);
      return true;
    }
    this.waiters.push({ holder, bytes, grant });
    this.armPressure();
    return false;
  }

  /** Gives back `bytes` of `holder`'s charge, and admits the waiting frames that now fit. */
  release(holder: BudgetHolder, bytes: number): void {
    const held = this.heldBy(holder);
    const n = Math.min(bytes, held);
    if (n <= 0) return;
    this.holders.set(holder, held - n);
    this.usedBytes -= n;
    this.admitWaiters();
  }

  /** Gives back everything `holder` holds and forgets its waiting frame (it has ended). */
  releaseAll(holder: BudgetHolder): void {
    this.waiters = this.waiters.filter((w) => w.holder !== holder);
    this.release(holder, this.heldBy(holder));
    this.holders.delete(holder);
    if (this.waiters.length === 0 && this.refusedAbove < 0) this.disarmPressure();
  }

  /** The use `bytes` more for `holder` may bring the budget to: the limit for a light holder. */
  private ceiling(holder: BudgetHolder, bytes: number): number {
    const light = this.heldBy(holder) + bytes <= this.lightBytes;
    return light ? this.limit : this.limit - this.reserveBytes;
  }

  private add(holder: BudgetHolder, bytes: number): void {
    if (bytes <= 0) return;
    this.holders.set(holder, this.heldBy(holder) + bytes);
    this.usedBytes += bytes;
  }

  /**
   * Grants waiting frames in arrival order, each that fits: a small frame may pass a large
   * one that does not fit yet (the large one's turn comes as holders release).
   */
  private admitWaiters(): void {
    if (this.waiters.length === 0) return;
    const granted: Waiter[] = [];
    this.waiters = this.waiters.filter((w) => {
      if (!this.fits(w.holder, w.bytes)) return true;
      this.add(w.holder, w.bytes);
      granted.push(w);
      return false;
    });
    for (const w of granted) w.grant();
  }

  private armPressure(): void {
    if (this.pressureTimer) return;
    this.pressureTimer = setTimeout(() => this.onPressure(), this.graceMs);
    // The budget never keeps a process alive: its holders' sockets do.
    this.pressureTimer.unref();
  }

  private disarmPressure(): void {
    if (this.pressureTimer) clearTimeout(this.pressureTimer);
    this.pressureTimer = null;
  }

  /**
   * A grace period has passed under pressure: if frames still wait, or the smallest frame
   * refused since the last check still would not fit, the holder holding the most bytes
   * (the first such one on a tie) is dropped, and the check runs again a period later
   * while frames wait.
   */
  private onPressure(): void {
    this.pressureTimer = null;
    const stillRefused = this.refusedAbove >= 0 && this.usedBytes > this.refusedAbove;
    const pressed = this.waiters.length > 0 || stillRefused;
    this.refusedAbove = -1;
    if (!pressed) return;
    let victim: BudgetHolder | null = null;
    let most = 0;
    for (const [holder, held] of this.holders) {
      if (held > most) {
        victim = holder;
        most = held;
      }
    }
    if (victim) {
      this.shedCount++;
      victim.shed(new MemoryBudgetExceededError(most, this.usedBytes, this.limit, 'dropped'));
      // A holder that failed to release is forgotten all the same: it is gone.
      if (this.holders.has(victim)) this.releaseAll(victim);
    }
    // Frames still waiting keep the pressure on; a later refusal arms it again by itself.
    if (this.waiters.length > 0) this.armPressure();
  }
}
