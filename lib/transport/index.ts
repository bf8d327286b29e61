export {
  ServerQt,
  QT_TRANSPORT,
  NO_MESSAGE_HANDLER,
  type QtTransportStatus,
  type QtServerEvents,
} from './server-qt.js';
export { ClientQt, type QtClientEvents, type QtEndpointEvent } from './client-qt.js';
export { localServerPath, privateSocketDirectory } from './local-path.js';
export { QtContext, type QtContextArgs } from './qt-context.js';
export { QtRecord, type QtOutgoingPacket, type QtPacketMetadata } from './qt-record.js';
export {
  resolveQtOptions,
  type QtTransportOptions,
  type QtSocketOptions,
  type QtProxyOptions,
  type QtReconnectOptions,
  type QtEndpoint,
  reusePortProblem,
  type ResolvedQtOptions,
} from './options.js';
export * from './wire/errors.js';
export { FrameDecoder, frameHeader } from './wire/frame-decoder.js';
export {
  decodePayload,
  encodePayload,
  encodePayloadChunks,
  detectCodec,
  type CodecName,
  type PayloadLimits,
} from './wire/codec.js';
export { encodeCborChunks } from './wire/cbor-encoder.js';
export { QtConnection, type QtStreamSocket } from './wire/qt-connection.js';
