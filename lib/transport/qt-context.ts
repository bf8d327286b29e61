import { BaseRpcContext } from '@nestjs/microservices';

import type { QtStreamSocket } from './wire/qt-connection.js';

/** What a QtContext carries: the socket, the pattern, the request id and the metadata. */
export type QtContextArgs = [
  socket: QtStreamSocket,
  pattern: string,
  id: string | number | undefined,
  metadata: Record<string, unknown> | undefined,
];

/**
 * The context of a message handled by ServerQt, for `@Ctx()`: the Qt socket it came on
 * (QTcpSocket or QLocalSocket), its pattern, its id (undefined for events) and its
 * metadata (when the packet carries some).
 */
export class QtContext extends BaseRpcContext<QtContextArgs> {
  constructor(args: QtContextArgs) {
    super(args);
  }

  /** The QTcpSocket or QLocalSocket the message came on. */
  getSocket(): QtStreamSocket {
    return this.args[0];
  }

  /** The message's pattern, as a string (object patterns are normalized as Nest does). */
  getPattern(): string {
    return this.args[1];
  }

  /** The request's id; undefined for an event. */
  getId(): string | number | undefined {
    return this.args[2];
  }

  /** The packet's metadata, if it carried any. */
  getMetadata(): Record<string, unknown> | undefined {
    return this.args[3];
  }
}
