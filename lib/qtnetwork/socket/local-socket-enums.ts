/**
 * The enums of QLocalSocket and QLocalServer, with Qt's names and numeric values. Each is
 * also reachable from its class (`QLocalSocket.LocalSocketError`, `QLocalServer.SocketOption`).
 */

/** `QLocalSocket::LocalSocketState`: the same values as the matching SocketState. */
export enum LocalSocketState {
  UnconnectedState = 0,
  ConnectingState = 2,
  ConnectedState = 3,
  ClosingState = 6,
}

/** `QLocalSocket::LocalSocketError`: the same values as the matching SocketError. */
export enum LocalSocketError {
  ConnectionRefusedError = 0,
  PeerClosedError = 1,
  ServerNotFoundError = 2,
  SocketAccessError = 3,
  SocketResourceError = 4,
  SocketTimeoutError = 5,
  DatagramTooLargeError = 6,
  ConnectionError = 7,
  UnsupportedSocketOperationError = 10,
  OperationError = 19,
  UnknownSocketError = -1,
}

/** `QLocalServer::SocketOption` (flags; combine with `|`). */
export enum LocalServerSocketOption {
  NoOptions = 0x0,
  UserAccessOption = 0x01,
  GroupAccessOption = 0x02,
  OtherAccessOption = 0x04,
  WorldAccessOption = 0x07,
  AbstractNamespaceOption = 0x08,
}

/** `QLocalServer::SocketOptions`: LocalServerSocketOption values combined with `|`. */
export type LocalServerSocketOptions = number;

/** `QLocalSocket::SocketOption` (Qt 6.2; flags). */
export enum LocalSocketOption {
  NoOptions = 0x00,
  AbstractNamespaceOption = 0x01,
}

/** `QLocalSocket::SocketOptions` (Qt 6.2): LocalSocketOption values combined with `|`. */
export type LocalSocketOptions = number;
