import { Injectable } from '@nestjs/common';

import { ClientQt, type QtTransportOptions } from '../transport/index.js';

/** `QtHealthIndicator.pingCheck` options: where the server is, and the check's bound. */
export type QtPingCheckOptions = QtTransportOptions & {
  /**
   * Ms the whole check may take, connecting included (also the connection attempt's
   * bound unless `connectTimeout` is given). Default 1000, as terminus's own indicators.
   */
  timeout?: number;
};

/** The server answered the ping: `responseTime` is its round trip, in ms. */
export type QtPingUp = { status: 'up'; responseTime: number };

/**
 * No pong: `message` is Qt's text (e.g. "Connection refused") and `code` Qt's error name
 * (e.g. 'ConnectionRefusedError', 'ServerNotFoundError') or the transport's
 * ('QT_REQUEST_TIMEOUT': connected, but no pong in time).
 */
export type QtPingDown = { status: 'down'; message: string; code: string };

/**
 * What `pingCheck` resolves with: terminus's HealthIndicatorResult for `Key`
 * (`{ [key]: { status, ...details } }`), which `HealthCheckService.check` of
 * `@nestjs/terminus` 11 and 12 takes as it is.
 */
export type QtHealthIndicatorResult<Key extends string = string> = Record<
  Key,
  QtPingUp | QtPingDown
>;

/** The check's default bound, in ms: terminus's own for its microservice indicator. */
const DEFAULT_TIMEOUT = 1000;

/**
 * A health indicator for `@nestjs/terminus`: is a ServerQt there, and does it answer?
 * `pingCheck` connects, sends a ping (docs/protocol.md, "Ping"), and reports the round trip
 * or Qt's error. Up proves that the server's event loop and protocol answer on a new
 * connection, not that its handlers succeed; a server whose handlers are all busy is up.
 *
 * Terminus stays an optional peer: nothing of it is loaded here; the result is built in the
 * shape terminus documents, so importing the package does not need terminus installed.
 * Provide it where the health controller is (`providers: [QtHealthIndicator]`).
 */
@Injectable()
export class QtHealthIndicator {
  /**
   * Pings the server `options` point to and resolves with `{ [key]: { status: 'up',
   * responseTime } }`, or `{ [key]: { status: 'down', message, code } }`; never rejects.
   * Each check opens one connection (to the first endpoint that connects: balancing
   * options are not used) and closes it, so polling leaves nothing open.
   */
  async pingCheck<Key extends string>(
    key: Key,
    options: QtPingCheckOptions = {},
  ): Promise<QtHealthIndicatorResult<Key>> {
    const { timeout = DEFAULT_TIMEOUT, ...transport } = options;
    let client: ClientQt | null = null;
    try {
      client = new ClientQt({
        ...transport,
        connectTimeout: transport.connectTimeout ?? timeout,
        loadBalancing: 'first',
        acknowledgedEvents: false,
      });
      const responseTime = await client.ping(timeout);
      return { [key]: { status: 'up', responseTime } } as Record<Key, QtPingUp>;
    } catch (err) {
      return { [key]: down(err) } as Record<Key, QtPingDown>;
    } finally {
      // Not awaited: a peer that does not answer the close must not hold the health answer.
      client?.close().catch(() => undefined);
    }
  }
}

/** The down details of a failed check: the error's text and code. */
function down(err: unknown): QtPingDown {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      status: 'down',
      message: err.message,
      code: typeof code === 'string' ? code : err.name,
    };
  }
  return { status: 'down', message: String(err), code: 'Error' };
}
