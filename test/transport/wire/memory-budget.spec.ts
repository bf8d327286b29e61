/**
 * MemoryBudget: the server-wide byte budget. Charges and releases per holder; incoming
 * frames reserved whole or waiting in order; the part kept for light holders; and the
 * pressure rule (while frames wait, or after a refusal while the budget is still full, the
 * holder holding the most is dropped once per grace period). Timers are Jest's fake ones,
 * so each grace period passes exactly when the test says.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';

import { MemoryBudgetExceededError, QtTransportError } from '../../../lib/transport/index.js';
import { MemoryBudget, type BudgetHolder } from '../../../lib/transport/wire/memory-budget.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A holder that records being shed and, as a connection does, then releases everything. */
class Holder implements BudgetHolder {
  readonly shedErrors: MemoryBudgetExceededError[] = [];
  constructor(
    readonly name: string,
    private readonly budget: () => MemoryBudget,
  ) {}
  shed(error: MemoryBudgetExceededError): void {
    this.shedErrors.push(error);
    this.budget().releaseAll(this);
  }
}

let budget: MemoryBudget;
const holder = (name: string): Holder => new Holder(name, () => budget);

beforeEach(() => {
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

describe('MemoryBudget: charging', () => {
  it('charges and releases per holder; used() is the sum; a holder that released all is forgotten', () => {
    budget = new MemoryBudget(8 * MiB);
    const a = holder('a');
    const b = holder('b');
    expect(budget.tryCharge(a, 3 * MiB)).toBe(true);
    expect(budget.tryCharge(b, 2 * MiB)).toBe(true);
    expect(budget.used()).toBe(5 * MiB);
    expect(budget.heldBy(a)).toBe(3 * MiB);
    budget.release(a, 1 * MiB);
    expect(budget.heldBy(a)).toBe(2 * MiB);
    // Releasing more than is held gives back only what is held.
    budget.release(b, 10 * MiB);
    expect(budget.heldBy(b)).toBe(0);
    expect(budget.used()).toBe(2 * MiB);
    budget.releaseAll(a);
    expect(budget.used()).toBe(0);
  });

  it('a heavy charge may fill the budget only up to the reserve (limit / 8); a light holder may use the reserve', () => {
    budget = new MemoryBudget(8 * MiB);
    const heavy = holder('heavy');
    const light = holder('light');
    expect(budget.tryCharge(heavy, 7 * MiB)).toBe(true);
    // 1 byte more for the heavy holder would pass 7/8.
    expect(budget.tryCharge(heavy, 1)).toBe(false);
    expect(budget.heldBy(heavy)).toBe(7 * MiB);
    // A holder holding at most 64 KiB (with the new bytes) may go up to the limit.
    expect(budget.tryCharge(light, 64 * KiB)).toBe(true);
    expect(budget.tryCharge(light, 1)).toBe(false);
    expect(budget.used()).toBe(7 * MiB + 64 * KiB);
  });

  it('charge() forces bytes in beyond the limit (an essential frame) and they are released as usual', () => {
    budget = new MemoryBudget(1 * MiB);
    const a = holder('a');
    expect(budget.tryCharge(a, 800 * KiB)).toBe(true);
    budget.charge(a, 600 * KiB);
    expect(budget.used()).toBe(1400 * KiB);
    budget.release(a, 600 * KiB);
    expect(budget.used()).toBe(800 * KiB);
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => new MemoryBudget(0)).toThrow(RangeError);
    expect(() => new MemoryBudget(1.5)).toThrow(RangeError);
  });
});

describe('MemoryBudget: incoming frames wait for room', () => {
  it('a frame that fits is reserved at once; one that does not waits and is granted, charged, when a holder releases', () => {
    budget = new MemoryBudget(8 * MiB);
    const a = holder('a');
    const b = holder('b');
    expect(budget.reserve(a, 4 * MiB, () => undefined)).toBe(true);
    const granted: string[] = [];
    expect(budget.reserve(b, 4 * MiB, () => granted.push('b'))).toBe(false);
    expect(budget.waiting()).toBe(1);
    expect(budget.heldBy(b)).toBe(0);
    budget.release(a, 4 * MiB);
    expect(granted).toEqual(['b']);
    expect(budget.heldBy(b)).toBe(4 * MiB);
    expect(budget.waiting()).toBe(0);
  });

  it('waiting frames are granted in arrival order, each that fits: a small one passes a large one that does not fit yet', () => {
    budget = new MemoryBudget(8 * MiB);
    const big = holder('big');
    const w1 = holder('w1');
    const w2 = holder('w2');
    const small = holder('small');
    expect(budget.reserve(big, 7 * MiB, () => undefined)).toBe(true);
    const granted: string[] = [];
    budget.reserve(w1, 3 * MiB, () => granted.push('w1'));
    budget.reserve(w2, 3 * MiB, () => granted.push('w2'));
    // A light frame fits the reserve at once, waiters or not.
    expect(budget.reserve(small, 32 * KiB, () => granted.push('small'))).toBe(true);
    budget.release(big, 4 * MiB);
    // 3 MiB + 32 KiB used: w1 fits (6 MiB + 32 KiB <= 7 MiB); w2 does not yet.
    expect(granted).toEqual(['w1']);
    budget.release(big, 3 * MiB);
    expect(granted).toEqual(['w1', 'w2']);
  });

  it('releaseAll forgets a waiting frame of the holder (its connection ended)', () => {
    budget = new MemoryBudget(8 * MiB);
    const a = holder('a');
    const b = holder('b');
    budget.reserve(a, 7 * MiB, () => undefined);
    const granted: string[] = [];
    budget.reserve(b, 2 * MiB, () => granted.push('b'));
    budget.releaseAll(b);
    budget.releaseAll(a);
    expect(granted).toEqual([]);
    expect(budget.used()).toBe(0);
    expect(budget.waiting()).toBe(0);
  });
});

describe('MemoryBudget: pressure drops the holder holding the most', () => {
  it('while a frame waits, the largest holder is shed after each grace period (QT_MEMORY_BUDGET_EXCEEDED, action "dropped"), until the frame is granted', () => {
    budget = new MemoryBudget(16 * MiB, { graceMs: 500 });
    const small = holder('small');
    const large = holder('large');
    const middle = holder('middle');
    const waiter = holder('waiter');
    budget.reserve(small, 2 * MiB, () => undefined);
    budget.reserve(large, 6 * MiB, () => undefined);
    budget.reserve(middle, 5 * MiB, () => undefined);
    const granted: string[] = [];
    expect(budget.reserve(waiter, 6 * MiB, () => granted.push('waiter'))).toBe(false);
    jest.advanceTimersByTime(499);
    expect(large.shedErrors).toHaveLength(0);
    jest.advanceTimersByTime(1);
    expect(large.shedErrors).toHaveLength(1);
    const error = large.shedErrors[0]!;
    expect(error).toBeInstanceOf(MemoryBudgetExceededError);
    expect(error).toBeInstanceOf(QtTransportError);
    expect(error.code).toBe('QT_MEMORY_BUDGET_EXCEEDED');
    expect(error.action).toBe('dropped');
    expect(error.bytes).toBe(6 * MiB);
    expect(error.limit).toBe(16 * MiB);
    expect(error.message).toContain('maxBufferedBytes');
    // The place freed went to the waiting frame; nobody else is dropped.
    expect(granted).toEqual(['waiter']);
    jest.advanceTimersByTime(5000);
    expect(middle.shedErrors).toHaveLength(0);
    expect(small.shedErrors).toHaveLength(0);
    expect(budget.shedTotal()).toBe(1);
  });

  it('one holder per grace period while frames still wait', () => {
    budget = new MemoryBudget(16 * MiB, { graceMs: 100 });
    const holders = [4, 4, 4, 2].map((mib, i) => {
      const h = holder(`h${i}`);
      budget.reserve(h, mib * MiB, () => undefined);
      return h;
    });
    const waiter = holder('waiter');
    const granted: string[] = [];
    // 14 MiB used, the heavy ceiling is 14 MiB: a 12 MiB frame needs three 4 MiB holders gone.
    budget.reserve(waiter, 12 * MiB, () => granted.push('waiter'));
    jest.advanceTimersByTime(100);
    expect(budget.shedTotal()).toBe(1);
    jest.advanceTimersByTime(100);
    expect(budget.shedTotal()).toBe(2);
    expect(granted).toEqual([]);
    jest.advanceTimersByTime(100);
    expect(budget.shedTotal()).toBe(3);
    expect(granted).toEqual(['waiter']);
    // On a tie the first holder to have charged goes first.
    expect(holders.map((h) => h.shedErrors.length)).toEqual([1, 1, 1, 0]);
    jest.advanceTimersByTime(1000);
    expect(budget.shedTotal()).toBe(3);
  });

  it('no frame waiting and no refusal: holders keep what they hold, however full the budget', () => {
    budget = new MemoryBudget(8 * MiB, { graceMs: 100 });
    const a = holder('a');
    budget.tryCharge(a, 7 * MiB);
    jest.advanceTimersByTime(10000);
    expect(a.shedErrors).toHaveLength(0);
  });

  it('a refused frame to send drops the largest holder a grace period later if it still would not fit; not once enough has drained for it', () => {
    budget = new MemoryBudget(8 * MiB, { graceMs: 200 });
    const a = holder('a');
    const b = holder('b');
    budget.tryCharge(a, 5 * MiB);
    budget.tryCharge(b, 2 * MiB);
    expect(budget.tryCharge(b, 1 * MiB)).toBe(false);
    // Some drained, not enough for the refused megabyte: still exhausted.
    budget.release(b, 512 * KiB);
    jest.advanceTimersByTime(200);
    expect(a.shedErrors).toHaveLength(1);
    expect(b.shedErrors).toHaveLength(0);

    // Enough drained before the check: nobody is dropped.
    budget.tryCharge(a, 5 * MiB);
    expect(budget.tryCharge(b, 1 * MiB)).toBe(false);
    budget.release(a, 1 * MiB);
    jest.advanceTimersByTime(1000);
    expect(a.shedErrors).toHaveLength(1);
    expect(b.shedErrors).toHaveLength(0);
  });

  it('a holder that does not release when shed is forgotten all the same', () => {
    budget = new MemoryBudget(8 * MiB, { graceMs: 100 });
    const stubborn: BudgetHolder = { shed: () => undefined };
    budget.reserve(stubborn, 7 * MiB, () => undefined);
    const granted: string[] = [];
    budget.reserve(holder('w'), 4 * MiB, () => granted.push('w'));
    jest.advanceTimersByTime(100);
    expect(budget.heldBy(stubborn)).toBe(0);
    expect(granted).toEqual(['w']);
  });
});
