/**
 * The transport's errors: one class per thing that can go wrong, each with a stable
 * `code`, so that logs and handlers can tell them apart without parsing messages.
 */

/** Base of every error this transport raises. */
export class QtTransportError extends Error {
  /** A stable, machine-readable identifier, e.g. `'QT_FRAME_TOO_LARGE'`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A frame's length header is above `maxFrameSize` (either direction). */
export class FrameTooLargeError extends QtTransportError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      'QT_FRAME_TOO_LARGE',
      `Frame of ${size} bytes exceeds maxFrameSize (${limit} bytes); to carry it, raise the maxFrameSize option of both the client and the server`,
    );
  }
}

/** A frame header of 0xFFFFFFFF: QDataStream's null QByteArray, which carries no packet. */
export class NullFrameError extends QtTransportError {
  constructor() {
    super('QT_NULL_FRAME', 'Received a null QByteArray frame (length 0xFFFFFFFF)');
  }
}

/** A frame of length 0: no packet. */
export class EmptyFrameError extends QtTransportError {
  constructor() {
    super('QT_EMPTY_FRAME', 'Received an empty frame (length 0)');
  }
}

/** A frame whose bytes are neither JSON nor CBOR, or do not decode. */
export class InvalidPayloadError extends QtTransportError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('QT_INVALID_PAYLOAD', `Invalid frame payload: ${reason}`, options);
  }
}

/**
 * A packet holds more values than `maxPacketValues`, or nests deeper than the nesting limit
 * (512 levels below the packet): found while its bytes are scanned, before any of it is
 * built, so that one frame cannot make the receiver build millions of objects.
 */
export class PacketTooComplexError extends QtTransportError {
  constructor(
    /** Which limit was passed: the count of values or the depth of nesting. */
    readonly exceeded: 'values' | 'depth',
    readonly limit: number,
    /** Offset in the payload of the value that passed it. */
    readonly offset: number,
    codec: string,
  ) {
    super(
      'QT_PACKET_TOO_COMPLEX',
      exceeded === 'values'
        ? `${codec} packet holds more than ${limit} values (maxPacketValues); refused at byte ${offset}`
        : `${codec} packet nested deeper than ${limit} levels (the nesting limit); refused at byte ${offset}`,
    );
  }
}

/** A decoded payload that is not a packet of the expected kind. */
export class InvalidPacketError extends QtTransportError {
  constructor(reason: string) {
    super('QT_INVALID_PACKET', `Invalid packet: ${reason}`);
  }
}

/** A peer stopped sending in the middle of a frame for longer than `incompleteFrameTimeout`. */
export class IncompleteFrameTimeoutError extends QtTransportError {
  constructor(
    readonly timeoutMs: number,
    readonly received: number,
    readonly expected: number,
  ) {
    super(
      'QT_INCOMPLETE_FRAME_TIMEOUT',
      `No progress on a frame for ${timeoutMs} ms (${received} of ${expected} bytes received)`,
    );
  }
}

/** More than `maxSendBufferSize` bytes are queued for a peer that does not read. */
export class SendBufferOverflowError extends QtTransportError {
  constructor(
    readonly queued: number,
    readonly limit: number,
  ) {
    super(
      'QT_SEND_BUFFER_OVERFLOW',
      `${queued} bytes queued for a peer that does not read exceed maxSendBufferSize (${limit} bytes)`,
    );
  }
}

/** A peer took none of its waiting replies for `incompleteFrameTimeout` while reading was paused. */
export class WriteStallError extends QtTransportError {
  constructor(
    readonly timeoutMs: number,
    readonly queued: number,
  ) {
    super(
      'QT_WRITE_STALL',
      `The peer read nothing for ${timeoutMs} ms while ${queued} bytes waited for it`,
    );
  }
}

/**
 * A frame took longer than `frameTimeout` (extended by `minFrameRate`) from its first byte:
 * the peer trickles it (slow loris), even if every byte came within `incompleteFrameTimeout`.
 */
export class FrameTimeoutError extends QtTransportError {
  constructor(
    readonly elapsedMs: number,
    readonly allowedMs: number,
    readonly received: number,
    readonly expected: number,
  ) {
    super(
      'QT_FRAME_TIMEOUT',
      `A frame was still incomplete after ${elapsedMs} ms, ${allowedMs} ms allowed for ${received} bytes received (${expected} expected)`,
    );
  }
}

/** A server connection had no frame and no work for `idleTimeout` ms. */
export class IdleTimeoutError extends QtTransportError {
  constructor(readonly timeoutMs: number) {
    super('QT_IDLE_TIMEOUT', `The connection was idle for ${timeoutMs} ms`);
  }
}

/**
 * The server's memory budget (`maxBufferedBytes`) ran out. `action` tells what happened:
 * 'refused', a frame to send that did not fit (the request gets an error reply instead);
 * 'dropped', the connection holding the most buffered bytes was closed because the budget
 * stayed exhausted while others waited for it.
 */
export class MemoryBudgetExceededError extends QtTransportError {
  constructor(
    /** Bytes of the refused frame, or bytes the dropped connection held. */
    readonly bytes: number,
    /** Bytes in use across the server at that moment. */
    readonly used: number,
    readonly limit: number,
    readonly action: 'refused' | 'dropped',
  ) {
    super(
      'QT_MEMORY_BUDGET_EXCEEDED',
      action === 'refused'
        ? `A frame of ${bytes} bytes does not fit the memory budget (${used} of maxBufferedBytes ${limit} bytes in use)`
        : `The connection holding the most buffered bytes (${bytes}) was dropped: the memory budget stayed exhausted (${used} of maxBufferedBytes ${limit} bytes in use)`,
    );
  }
}

/**
 * A server connection was closed because `maxConnections` was reached, another connection
 * waited, and this one had been idle (nothing arriving, nothing running, nothing queued)
 * the longest.
 */
export class IdleAtCapacityError extends QtTransportError {
  constructor(
    readonly idleMs: number,
    readonly maxConnections: number,
  ) {
    super(
      'QT_IDLE_AT_CAPACITY',
      `Closed after ${idleMs} ms idle to admit a new connection: maxConnections (${maxConnections}) reached`,
    );
  }
}

/** An option failed validation; the message names the option and what it accepts. */
export class InvalidOptionError extends QtTransportError {
  constructor(
    readonly option: string,
    expected: string,
    received: unknown,
  ) {
    super(
      'QT_INVALID_OPTION',
      `Invalid option "${option}": expected ${expected}, got ${describe(received)}`,
    );
  }
}

/**
 * A connection could not be made or was lost. Its `code` (and `qtError`) is the Qt error's
 * name, e.g. 'ConnectionRefusedError' or 'ServerNotFoundError', and its message is Qt's
 * `errorString()`, as for listen failures.
 */
export class QtConnectionError extends QtTransportError {
  constructor(
    readonly qtError: string,
    message: string,
  ) {
    super(qtError, message);
  }
}

/** A request got no complete answer within `requestTimeout`. */
export class RequestTimeoutError extends QtTransportError {
  constructor(
    readonly pattern: string,
    readonly timeoutMs: number,
  ) {
    super('QT_REQUEST_TIMEOUT', `Request "${pattern}" timed out after ${timeoutMs} ms`);
  }
}

/** The client was closed while the request was pending. */
export class ClientClosedError extends QtTransportError {
  constructor() {
    super('QT_CLIENT_CLOSED', 'The client was closed before the request completed');
  }
}

/**
 * A server could not listen. Its `code` (and `qtError`) is the Qt error's name, e.g.
 * 'AddressInUseError', and its message is the Qt server's `errorString()`.
 */
export class QtListenError extends QtTransportError {
  constructor(
    readonly qtError: string,
    message: string,
  ) {
    super(qtError, message);
  }
}

/** Something failed that is not one of the errors above: a bug, reported with its cause. */
export class InternalError extends QtTransportError {
  constructor(cause: unknown) {
    super('QT_INTERNAL', String(cause), { cause });
  }
}

/** The connection closed before what was sent on it had been handed to the kernel. */
export class ConnectionClosedError extends QtTransportError {
  constructor() {
    super('QT_CONNECTION_CLOSED', 'The connection closed before the data was written');
  }
}

/** A client failed the server's TLS handshake; it was closed and never served. */
export class TlsHandshakeError extends QtTransportError {
  constructor(
    readonly peer: string,
    reason: string,
  ) {
    super('QT_TLS_HANDSHAKE_FAILED', `TLS handshake with ${peer} failed: ${reason}`);
  }
}

/** `acknowledgedEvents.maxUnacked` events already wait for their acknowledgement. */
export class TooManyUnackedEventsError extends QtTransportError {
  constructor(readonly waiting: number) {
    super(
      'QT_TOO_MANY_UNACKED_EVENTS',
      `${waiting} events wait for acknowledgement (acknowledgedEvents.maxUnacked)`,
    );
  }
}

/** An event was sent `acknowledgedEvents.maxResends` more times and never acknowledged. */
export class EventNotAcknowledgedError extends QtTransportError {
  constructor(
    readonly pattern: string,
    readonly resends: number,
  ) {
    super(
      'QT_EVENT_NOT_ACKNOWLEDGED',
      `Event "${pattern}" was not acknowledged after ${resends} resends`,
    );
  }
}

/** A request reused the id of a request of the same connection still in flight. */
export class DuplicateRequestIdError extends QtTransportError {
  constructor(readonly id: string | number) {
    super(
      'QT_DUPLICATE_REQUEST_ID',
      `Request id ${JSON.stringify(id)} is already in flight on this connection`,
    );
  }
}

/**
 * The server was closing and did not run the request (its error reply carried
 * `QT_SERVER_CLOSING`): it is safe to send it again, to this service elsewhere or later.
 */
export class ServerClosingError extends QtConnectionError {
  constructor(message: string) {
    super('QT_SERVER_CLOSING', message);
  }
}

/**
 * A local server's socket file belongs to a user this client does not trust (not itself,
 * not root, not in `trustedSocketOwners`): nothing was sent to it.
 */
export class UntrustedSocketOwnerError extends QtConnectionError {
  constructor(
    readonly path: string,
    readonly ownerUid: number,
  ) {
    super(
      'QT_UNTRUSTED_SOCKET_OWNER',
      `The socket ${path} belongs to uid ${ownerUid}, which is not trusted (trustedSocketOwners)`,
    );
  }
}

/**
 * The private directory that holds this user's bare local names (`<tmpdir>/nestjs-qt-<uid>`)
 * is not safe to use: another user made it first, it is a link, or others may enter it.
 * Nothing was created in it, listened on or sent. Remove it, or give an absolute `name`.
 */
export class UnsafeSocketDirectoryError extends QtTransportError {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(
      'QT_UNSAFE_SOCKET_DIRECTORY',
      `The local socket directory ${path} is not safe to use: ${reason}`,
    );
  }
}

/** `err` itself when it is one of the transport's errors, else an InternalError around it. */
export function asTransportError(err: unknown): QtTransportError {
  return err instanceof QtTransportError ? err : new InternalError(err);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
