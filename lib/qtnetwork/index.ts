/**
 * nestjs-qt-transport/qtnetwork: a TypeScript port of Qt's socket classes, usable on its
 * own (no Nest, no rxjs).
 */
export { Signal, type Slot, type SlotErrorHandler } from './signal.js';
export { qInstallMessageHandler, qWarning, QtMsgType, type QtMessageHandler } from './qlogging.js';
export {
  SocketState,
  SocketError,
  SocketType,
  NetworkLayerProtocol,
  SocketOption,
  BindFlag,
  socketErrorName,
} from './socket-enums.js';
export { OpenModeFlag, type OpenMode } from './open-mode.js';
export { QHostAddress, SpecialAddress, ConversionModeFlag } from './qhost-address.js';
export { QIODevice, type WritableData } from './qiodevice.js';
export { QAbstractSocket } from './qabstract-socket.js';
export { QTcpSocket } from './qtcp-socket.js';
export { QTcpServer } from './qtcp-server.js';
export { QUdpSocket, type ReadDatagramResult } from './qudp-socket.js';
export { QNetworkDatagram } from './qnetwork-datagram.js';
export {
  QSsl,
  KeyType,
  EncodingFormat,
  KeyAlgorithm,
  AlternativeNameEntryType,
  SslProtocol,
  SslOption,
  PeerVerifyMode,
  SslMode,
  NextProtocolNegotiationStatus,
} from './qssl.js';
export { QSslCertificate, SubjectInfo, PatternSyntax } from './qssl-certificate.js';
export { QSslKey } from './qssl-key.js';
export { QSslCipher } from './qssl-cipher.js';
export { QSslError, SslError } from './qssl-error.js';
export { QSslConfiguration } from './qssl-configuration.js';
export { QSslSocket } from './qssl-socket.js';
export { QSslServer } from './qssl-server.js';
export {
  LocalSocketState,
  LocalSocketError,
  LocalServerSocketOption,
  LocalSocketOption,
} from './local-socket-enums.js';
export { QLocalSocket } from './qlocal-socket.js';
export { QNetworkProxy, ProxyType, ProxyCapability } from './qnetwork-proxy.js';
export { QNetworkProxyQuery, QueryType } from './qnetwork-proxy-query.js';
export { QNetworkProxyFactory } from './qnetwork-proxy-factory.js';
export { QAuthenticator } from './qauthenticator.js';
export { QLocalServer } from './qlocal-server.js';
export {
  fullLocalServerName,
  probeLocalServer,
  MAX_SOCKET_PATH_BYTES,
  type LocalServerStatus,
} from './local-names.js';
export { type NativeSocketHandle } from './native-handle.js';
export { ByteQueue } from './byte-queue.js';
