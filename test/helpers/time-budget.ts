/**
 * How long a test waits for the machine, as opposed to a bound it asserts about the code.
 *
 * A budget (a child's start-up, a line from a real Qt peer, an event that a working server
 * sends at once) only stops a test that would otherwise hang, so it is generous: on a busy
 * machine everything is slower, and the test must still pass. A bound the test asserts
 * (a timer option's effect, "dropped at once") is never a budget.
 *
 * `TEST_TIME_SCALE` (a positive number, default 1) multiplies every budget, and Jest's test
 * timeout in jest.config.js, for a machine slower or busier than two loaded cores.
 */

function readScale(): number {
  const raw = process.env.TEST_TIME_SCALE;
  if (raw === undefined || raw === '') return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale <= 0) {
    throw new RangeError(`TEST_TIME_SCALE must be a positive number, not ${JSON.stringify(raw)}`);
  }
  return scale;
}

/** The factor from `TEST_TIME_SCALE`; 1 when it is not set. */
export const TIME_SCALE = readScale();

/** `ms` times `TEST_TIME_SCALE`: a wait for the machine, never an asserted bound. */
export function budget(ms: number): number {
  return Math.round(ms * TIME_SCALE);
}

/**
 * How long a child process (Node on the precompiled sources, Python with PyQt) may take to
 * print its first line: a few seconds on two cores busy with other work.
 */
export const CHILD_START_MS = budget(20000);
