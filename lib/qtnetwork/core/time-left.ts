/**
 * What is left of a wait of `msecs` (-1 = no limit, which stays -1) that started at `start`
 * (a `Date.now()` value): never less than 0.
 */
export function timeLeft(msecs: number, start: number): number {
  if (msecs < 0) return -1;
  return Math.max(0, msecs - (Date.now() - start));
}
