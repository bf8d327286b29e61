import type { WritePacket } from '@nestjs/microservices';
import type { Observable, Subscription } from 'rxjs';

import type { QtCallTrace } from './telemetry/qt-telemetry.js';

/** The error reply that ends a stream still sending values when the server closes. */
const STREAM_ENDED_BY_CLOSE = {
  code: 'QT_STREAM_ENDED_BY_CLOSE',
  message: 'The server is closing: the stream was ended',
} as const;

/**
 * Writes a handler's Observable to the peer as Nest's TCP transport does: one reply per
 * value, `isDisposed` on the last (merged into the last value when it completes within the
 * same tick), an error reply that ends the request. A value is held back for one tick only,
 * to be merged with a completion that follows it. While values flow, `streaming` holds, under
 * `id`, what ends the stream when the server closes (the held value, then
 * QT_STREAM_ENDED_BY_CLOSE). The span (`call`) ends just before the last reply is sent: the
 * frame can reach the kernel during the send, and the client's span, which ends when it
 * arrives, must not end before the server's.
 */
export function streamReplies(
  stream$: Observable<unknown>,
  streaming: Map<string | number, () => void>,
  id: string | number,
  call: QtCallTrace | null,
  send: (reply: WritePacket) => void,
): Subscription {
  let held: { value: unknown } | null = null;
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    if (held) {
      const { value } = held;
      held = null;
      send({ response: value } as WritePacket);
    }
  };
  return stream$.subscribe({
    next: (value) => {
      if (held) send({ response: held.value } as WritePacket);
      else if (!streaming.has(id)) {
        streaming.set(id, () => {
          flush();
          send({ err: STREAM_ENDED_BY_CLOSE, isDisposed: true } as WritePacket);
        });
      }
      held = { value };
      if (!flushScheduled) {
        flushScheduled = true;
        process.nextTick(flush);
      }
    },
    error: (err: unknown) => {
      flush();
      call?.end();
      send({ err, isDisposed: true } as WritePacket);
    },
    complete: () => {
      const last = held;
      held = null;
      call?.end();
      send(
        (last ? { response: last.value, isDisposed: true } : { isDisposed: true }) as WritePacket,
      );
    },
  });
}
