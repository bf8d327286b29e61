/**
 * The `metadata` a client attaches to a packet: a map of strings that travels beside the
 * payload (docs/protocol.md), as Nest 12's `PacketMetadata`. (The protocol allows any value;
 * what a Qt program sends reaches `QtContext.getMetadata()` as it came.)
 */
export type QtPacketMetadata = Record<string, string>;

/**
 * A packet as ClientQt sends it, as a dispatch hook (`ClientQt.setOnDispatchHook`) sees it:
 * the hook may set `metadata`; it must not replace `pattern` or `data`.
 */
export interface QtOutgoingPacket {
  pattern: unknown;
  data: unknown;
  /** Reaches the handler as `QtContext.getMetadata()`. */
  metadata?: QtPacketMetadata;
}

/**
 * A payload with metadata of its own, for one call: `client.send('sum', new QtRecord([1, 2],
 * { tenant: 'a' }))` or `client.emit(...)`, on Nest 11 and 12 alike (as Nest's `RmqRecord`
 * and `NatsRecord` carry per-message options). The handler gets `data` as its payload and
 * the metadata from `QtContext.getMetadata()`; this metadata is laid over what a dispatch
 * hook set (its keys win).
 */
export class QtRecord<TData = unknown> {
  constructor(
    /** The payload the handler receives. */
    readonly data: TData,
    /** Metadata for this call only. */
    readonly metadata: QtPacketMetadata = {},
  ) {}
}
