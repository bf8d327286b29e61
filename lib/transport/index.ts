export {
  ServerQt,
  QT_TRANSPORT,
  NO_MESSAGE_HANDLER,
  type QtTransportStatus,
  type QtServerEvents,
} from './server-qt.js';
export { ClientQt, type QtClientEvents } from './client-qt.js';
export { QtContext, type QtContextArgs } from './qt-context.js';
export {
  resolveQtOptions,
  type QtTransportOptions,
  type QtSocketOptions,
  type QtProxyOptions,
  type QtReconnectOptions,
  type ResolvedQtOptions,
} from './options.js';
export * from './errors.js';
export { FrameDecoder, frameHeader } from './frame-decoder.js';
export {
  decodePayload,
  encodePayload,
  encodePayloadChunks,
  detectCodec,
  type CodecName,
} from './codec.js';
export { encodeCborChunks } from './cbor-encoder.js';
export { QtConnection, type QtStreamSocket } from './qt-connection.js';
