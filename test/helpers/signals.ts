import type { Signal } from '../../lib/qtnetwork/index.js';

/** Resolves with the arguments of the next emission of `signal`; rejects after `ms`. */
export function nextEmission<Args extends unknown[]>(
  signal: Signal<Args>,
  ms = 5000,
): Promise<Args> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${ms} ms waiting for ${signal.name}`));
    }, ms);
    const off = signal.connect((...args: Args) => {
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

/** Polls `predicate` every few ms until it is true; rejects after `ms`. */
export async function waitUntil(
  predicate: () => boolean,
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets pending I/O callbacks and timers run for `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
