/** Settles a wait with its result. */
export type Settle = (value: boolean) => void;

/**
 * Runs one of the port's waitFor* Promises: `watch` connects the slots that settle it and
 * returns their disconnectors; after `msecs` (-1 = never) `onTimeout` runs and the wait
 * resolves false. Every slot is disconnected once it has settled, whichever way.
 */
export function waitOn(
  msecs: number,
  watch: (settle: Settle) => Array<() => void>,
  onTimeout: () => void,
): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    let disconnectors: Array<() => void> = [];
    let settled = false;
    const settle: Settle = (value) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      for (const d of disconnectors) d();
      resolve(value);
    };
    disconnectors = watch(settle);
    if (settled) {
      for (const d of disconnectors) d();
      return;
    }
    if (msecs >= 0) {
      timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        for (const d of disconnectors) d();
        onTimeout();
        resolve(false);
      }, msecs);
    }
  });
}
