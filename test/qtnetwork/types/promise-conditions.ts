/**
 * Type-level fixture for promise-conditions.spec.ts: the calls of the port that return a
 * Promise (docs/qt-differences.md, "Blocking calls become Promises") used as conditions
 * without `await`. Every line tagged "misuse" is such a mistake; the Promise is always
 * truthy, so the condition never sees a failure.
 *
 * - tsc (`npm run typecheck`, which compiles this file) must reject the lines marked
 *   `@ts-expect-error` (TS2801, "This condition will always return true since this
 *   'Promise<boolean>' is always defined"); if it stops rejecting one, the unused directive
 *   fails the type check.
 * - tsc accepts a negated Promise (`!promise`) and a Promise as a `while` condition; ESLint's
 *   no-misused-promises rejects every tagged line, which the spec checks by linting this
 *   file with inline comments ignored.
 */
/* eslint-disable @typescript-eslint/no-misused-promises -- every tagged line is a misuse under test */
import { QLocalServer, QTcpServer, QTcpSocket, QUdpSocket } from '../../../lib/qtnetwork/index.js';

export function misuses(
  local: QLocalServer,
  tcp: QTcpServer,
  sock: QTcpSocket,
  udp: QUdpSocket,
): number {
  let n = 0;
  // @ts-expect-error TS2801: a Promise as an if condition
  if (local.listen('name')) n++; // misuse
  // @ts-expect-error TS2801: a Promise as a ternary condition
  n += sock.waitForConnected(100) ? 1 : 0; // misuse
  // @ts-expect-error TS2801: a Promise as an operand of &&
  if (udp.bind(0) && n > 0) n++; // misuse
  // tsc accepts the rest.
  while (tcp.listen()) break; // misuse
  if (!local.listen('name')) n++; // misuse
  if (!tcp.setSocketDescriptor(3)) n++; // misuse
  const pending = sock.waitForReadyRead(100);
  if (!pending) n++; // misuse
  return n;
}

/** The correct forms: no error from either tool. */
export async function uses(local: QLocalServer, tcp: QTcpServer): Promise<number> {
  let n = 0;
  if (!(await local.listen('name'))) n++;
  if (await tcp.listen()) n++;
  return n;
}
