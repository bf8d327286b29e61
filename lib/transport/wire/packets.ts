import { InvalidPacketError } from './errors.js';

/** A request or an event as the server receives it. */
export interface IncomingQtPacket {
  id?: string | number;
  pattern: unknown;
  data?: unknown;
  metadata?: Record<string, unknown>;
}

/** A client's cancel of a request: the server tears down that handler's Observable. */
export interface CancelQtPacket {
  id: string | number;
  cancel: true;
}

/** A server's acknowledgement of an event sent in the acknowledged-event mode. */
export interface AckQtPacket {
  ackId: number;
}

/**
 * Draining, both ways (docs/protocol.md, "Draining"). Server → client: this server is
 * closing; send nothing new on this connection. Client → server, in answer: nothing more
 * will come on this connection after this packet (so once the requests before it are
 * answered, the server may close the connection).
 */
export interface DrainingQtPacket {
  draining: true;
}

/** The one draining packet. */
export function drainingPacket(): DrainingQtPacket {
  return { draining: true };
}

/** True for a draining packet: `draining: true`, and no `id` or `pattern`. */
export function isDrainingPacket(value: unknown): boolean {
  return (
    isRecord(value) &&
    value.draining === true &&
    value.id === undefined &&
    value.pattern === undefined
  );
}

/**
 * Ping (docs/protocol.md, "Ping"), client → server: a round trip that the server answers
 * at once with a pong carrying the same integer, without running any handler.
 */
export interface PingQtPacket {
  ping: number;
}

/** Pong, server → client: the answer to the ping with the same integer. */
export interface PongQtPacket {
  pong: number;
}

/** The ping carrying `n`. */
export function pingPacket(n: number): PingQtPacket {
  return { ping: n };
}

/** The pong answering the ping `n`. */
export function pongPacket(n: number): PongQtPacket {
  return { pong: n };
}

/** A packet that is neither a request, an event nor a reply: no `id`, no `pattern`. */
function isControl(value: unknown): value is Record<string, unknown> {
  return isRecord(value) && value.id === undefined && value.pattern === undefined;
}

/** True for a ping a server accepts: `ping`, an integer, and no `id` or `pattern`. */
export function isPingPacket(value: unknown): boolean {
  return isControl(value) && Number.isSafeInteger(value.ping);
}

/** The pong a client received, or null when `value` is not one. */
export function pongOf(value: unknown): PongQtPacket | null {
  return isControl(value) && Number.isSafeInteger(value.pong)
    ? { pong: value.pong as number }
    : null;
}

/** A reply as the client receives it. */
export interface ReplyQtPacket {
  id: string | number;
  response?: unknown;
  err?: unknown;
  isDisposed?: boolean;
  status?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value)
  );
}

function isId(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * Checks a packet a server received: a request ({ id, pattern }), an event ({ pattern }),
 * a cancel ({ id, cancel: true }), a client's draining packet ({ draining: true }) or a
 * ping ({ ping }). Replies are never accepted by a server.
 */
export function classifyServerPacket(
  value: unknown,
):
  | { kind: 'request' | 'event'; packet: IncomingQtPacket }
  | { kind: 'cancel'; packet: CancelQtPacket }
  | { kind: 'draining'; packet: DrainingQtPacket }
  | { kind: 'ping'; packet: PingQtPacket } {
  if (!isRecord(value)) throw new InvalidPacketError('a packet must be a map/object');
  if (isDrainingPacket(value)) return { kind: 'draining', packet: drainingPacket() };
  if (isControl(value) && 'ping' in value) {
    if (!Number.isSafeInteger(value.ping)) {
      throw new InvalidPacketError('a ping must carry an integer (at most 2^53 - 1 in magnitude)');
    }
    return { kind: 'ping', packet: pingPacket(value.ping as number) };
  }
  if (value.cancel === true) {
    if (!isId(value.id)) throw new InvalidPacketError('a cancel must carry the id of a request');
    return { kind: 'cancel', packet: { id: value.id, cancel: true } };
  }
  if ('response' in value || 'err' in value || 'isDisposed' in value) {
    throw new InvalidPacketError('a server does not accept replies');
  }
  const pattern = value.pattern;
  if (
    pattern === undefined ||
    pattern === null ||
    (typeof pattern !== 'string' && !isRecord(pattern))
  ) {
    throw new InvalidPacketError('a request or event must carry a pattern (a string or an object)');
  }
  if (value.id !== undefined && !isId(value.id)) {
    throw new InvalidPacketError('a request id must be a string or a number');
  }
  if (
    value.ackId !== undefined &&
    !(typeof value.ackId === 'number' && Number.isInteger(value.ackId))
  ) {
    throw new InvalidPacketError('an event ackId must be an integer');
  }
  if (value.metadata !== undefined && !isRecord(value.metadata)) {
    throw new InvalidPacketError('metadata must be a map/object');
  }
  const packet = value as unknown as IncomingQtPacket;
  return { kind: value.id === undefined ? 'event' : 'request', packet };
}

/** Checks a packet a client received: a reply ({ id, response?, err?, isDisposed? }). */
export function checkReplyPacket(value: unknown): ReplyQtPacket {
  if (!isRecord(value)) throw new InvalidPacketError('a packet must be a map/object');
  if ('pattern' in value)
    throw new InvalidPacketError('a client does not accept requests or events');
  if (!isId(value.id)) throw new InvalidPacketError('a reply must carry the id of its request');
  return value as unknown as ReplyQtPacket;
}

/**
 * The acknowledgement a client received, or null when `value` is not one. It is looked for
 * before Nest's deserializer runs, which would take `{ ackId }` for a foreign payload.
 */
export function ackOf(value: unknown): AckQtPacket | null {
  return isRecord(value) && value.id === undefined && typeof value.ackId === 'number'
    ? { ackId: value.ackId }
    : null;
}

/** Checks a packet a client received: a reply, or an event acknowledgement ({ ackId }). */
export function checkClientPacket(
  value: unknown,
): { kind: 'reply'; packet: ReplyQtPacket } | { kind: 'ack'; packet: AckQtPacket } {
  const ack = ackOf(value);
  return ack ? { kind: 'ack', packet: ack } : { kind: 'reply', packet: checkReplyPacket(value) };
}

/**
 * Splits the acknowledged-event field off an incoming packet: it is the transport's, not
 * the packet's, and Nest's deserializer would take a packet with an unknown key for a
 * foreign payload. `ackId` is set when the sender waits for an acknowledgement.
 */
export function takeAckId(packet: IncomingQtPacket & { ackId?: number }): {
  packet: IncomingQtPacket;
  ackId?: number;
} {
  if (packet.ackId === undefined) return { packet };
  const { ackId, ...rest } = packet;
  return { packet: rest, ackId };
}

/** The acknowledgement a server sends once the handler of event `ackId` has run. */
export function ackPacket(ackId: number): AckQtPacket {
  return { ackId };
}
