/**
 * nestjs-qt-transport/qtnetwork: a TypeScript port of Qt's socket classes, usable on its
 * own (no Nest, no rxjs).
 */
export { Signal, type Slot, type SlotErrorHandler } from './core/signal.js';
export {
  qInstallMessageHandler,
  qWarning,
  QtMsgType,
  type QtMessageHandler,
} from './core/qlogging.js';
export {
  SocketState,
  SocketError,
  SocketType,
  NetworkLayerProtocol,
  SocketOption,
  BindFlag,
  PauseMode,
  socketErrorName,
  type BindMode,
  type PauseModes,
} from './kernel/socket-enums.js';
export { OpenModeFlag, type OpenMode } from './core/open-mode.js';
export {
  QHostAddress,
  SpecialAddress,
  ConversionModeFlag,
  type ConversionMode,
} from './kernel/qhost-address.js';
export { QIODevice, type WritableData } from './core/qiodevice.js';
export { QAbstractSocket } from './socket/qabstract-socket.js';
export { QTcpSocket } from './socket/qtcp-socket.js';
export { QTcpServer } from './socket/qtcp-server.js';
export { QUdpSocket, type ReadDatagramResult } from './socket/qudp-socket.js';
export { QNetworkDatagram } from './kernel/qnetwork-datagram.js';
// qssl.ts holds only Qt's public SSL enums and the QSsl namespace: all of it is exported.
export * from './ssl/qssl.js';
export { QSslCertificate, SubjectInfo, PatternSyntax } from './ssl/qssl-certificate.js';
export { QSslKey } from './ssl/qssl-key.js';
export { QSslCipher } from './ssl/qssl-cipher.js';
export { QSslError, SslError } from './ssl/qssl-error.js';
export { QSslConfiguration } from './ssl/qssl-configuration.js';
export { QSslPreSharedKeyAuthenticator } from './ssl/qssl-pre-shared-key-authenticator.js';
export {
  QOcspResponse,
  QOcspCertificateStatus,
  QOcspRevocationReason,
} from './ssl/qocsp-response.js';
export { QSslSocket } from './ssl/qssl-socket.js';
export { QSslServer } from './ssl/qssl-server.js';
export {
  LocalSocketState,
  LocalSocketError,
  LocalServerSocketOption,
  LocalSocketOption,
  type LocalServerSocketOptions,
  type LocalSocketOptions,
} from './socket/local-socket-enums.js';
export { QLocalSocket } from './socket/qlocal-socket.js';
export {
  QNetworkProxy,
  ProxyType,
  ProxyCapability,
  type ProxyCapabilities,
} from './kernel/qnetwork-proxy.js';
export {
  KnownHeaders,
  type HeaderValue,
  type ParsedHeaderValue,
} from './kernel/network-headers.js';
export { QNetworkProxyQuery, QueryType } from './kernel/qnetwork-proxy-query.js';
export { QNetworkProxyFactory } from './kernel/qnetwork-proxy-factory.js';
export { QAuthenticator } from './kernel/qauthenticator.js';
export { QLocalServer } from './socket/qlocal-server.js';
export {
  fullLocalServerName,
  probeLocalServer,
  MAX_SOCKET_PATH_BYTES,
  type LocalServerStatus,
} from './socket/local-names.js';
export { type NativeSocketHandle } from './socket/native-handle.js';
export { ByteQueue } from './core/byte-queue.js';
