import { SocketError } from '../kernel/socket-enums.js';

/**
 * Qt's error texts, word for word as QNativeSocketEngine and QAbstractSocket report them
 * (checked against Qt 5.15), so that `errorString()` reads the same as in a Qt program.
 */
export const ErrorText = {
  ConnectionRefused: 'Connection refused',
  RemoteHostClosed: 'The remote host closed the connection',
  HostNotFound: 'Host not found',
  ConnectionTimedOut: 'Connection timed out',
  NetworkTimeout: 'Network operation timed out',
  SocketOperationTimeout: 'Socket operation timed out',
  HostUnreachable: 'Host unreachable',
  NetworkUnreachable: 'Network unreachable',
  PermissionDenied: 'Permission denied',
  AddressInUse: 'The bound address is already in use',
  AddressNotAvailable: 'The address is not available',
  AddressProtected: 'The address is protected',
  OutOfResources: 'Out of resources',
  UnsupportedOperation: 'Unsupported socket operation',
  OperationNotSupported: 'Operation on socket is not supported',
  InvalidDescriptor: 'Invalid socket descriptor',
  NotConnected: 'Socket is not connected',
  ConnectInProgress: 'Trying to connect while connection is in progress',
  ConnectionReset: 'Connection reset by peer',
  NetworkError: 'Network error',
  DatagramTooLarge: 'Datagram was too large to send',
  SendDatagram: 'Unable to send a message',
  ReceiveDatagram: 'Unable to receive a message',
  NoDatagram: 'No datagram available for reading',
  Unknown: 'Unknown error',
} as const;

/** A Qt error and its text. */
export interface MappedError {
  error: SocketError;
  text: string;
}

/** The errno-style `code` Node puts on system errors. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Maps an error of `connect()` to what Qt's native engine reports. */
export function mapConnectError(err: unknown): MappedError {
  switch (errnoCode(err)) {
    case 'ECONNREFUSED':
      return { error: SocketError.ConnectionRefusedError, text: ErrorText.ConnectionRefused };
    case 'ETIMEDOUT':
      return { error: SocketError.NetworkError, text: ErrorText.ConnectionTimedOut };
    case 'EHOSTUNREACH':
      return { error: SocketError.NetworkError, text: ErrorText.HostUnreachable };
    case 'ENETUNREACH':
      return { error: SocketError.NetworkError, text: ErrorText.NetworkUnreachable };
    case 'EADDRINUSE':
      return { error: SocketError.NetworkError, text: ErrorText.AddressInUse };
    case 'EADDRNOTAVAIL':
      return {
        error: SocketError.SocketAddressNotAvailableError,
        text: ErrorText.AddressNotAvailable,
      };
    case 'EACCES':
    case 'EPERM':
      return { error: SocketError.SocketAccessError, text: ErrorText.PermissionDenied };
    case 'EMFILE':
    case 'ENFILE':
    case 'ENOBUFS':
    case 'ENOMEM':
      return { error: SocketError.SocketResourceError, text: ErrorText.OutOfResources };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return { error: SocketError.HostNotFoundError, text: ErrorText.HostNotFound };
    default:
      return mapIoError(err);
  }
}

/** Maps an error on an established connection (read or write). */
export function mapIoError(err: unknown): MappedError {
  switch (errnoCode(err)) {
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return { error: SocketError.RemoteHostClosedError, text: ErrorText.RemoteHostClosed };
    case 'ETIMEDOUT':
      return { error: SocketError.NetworkError, text: ErrorText.ConnectionTimedOut };
    case 'EHOSTUNREACH':
      return { error: SocketError.NetworkError, text: ErrorText.HostUnreachable };
    case 'ENETUNREACH':
    case 'ENETDOWN':
      return { error: SocketError.NetworkError, text: ErrorText.NetworkUnreachable };
    case 'EMFILE':
    case 'ENFILE':
    case 'ENOBUFS':
    case 'ENOMEM':
      return { error: SocketError.SocketResourceError, text: ErrorText.OutOfResources };
    default:
      return { error: SocketError.NetworkError, text: ErrorText.NetworkError };
  }
}

/** Maps an error of `bind()`/`listen()` as Qt's native engine does. */
export function mapBindError(err: unknown): MappedError {
  switch (errnoCode(err)) {
    case 'EADDRINUSE':
      return { error: SocketError.AddressInUseError, text: ErrorText.AddressInUse };
    case 'EACCES':
    case 'EPERM':
      return { error: SocketError.SocketAccessError, text: ErrorText.AddressProtected };
    case 'EADDRNOTAVAIL':
    case 'EAFNOSUPPORT':
      return {
        error: SocketError.SocketAddressNotAvailableError,
        text: ErrorText.AddressNotAvailable,
      };
    case 'EINVAL':
      return {
        error: SocketError.UnsupportedSocketOperationError,
        text: ErrorText.UnsupportedOperation,
      };
    case 'EMFILE':
    case 'ENFILE':
    case 'ENOBUFS':
    case 'ENOMEM':
      return { error: SocketError.SocketResourceError, text: ErrorText.OutOfResources };
    case 'EBADF':
    case 'ENOTSOCK':
    case 'ERR_INVALID_FD_TYPE':
      return {
        error: SocketError.UnsupportedSocketOperationError,
        text: ErrorText.InvalidDescriptor,
      };
    default:
      return { error: SocketError.UnknownSocketError, text: ErrorText.Unknown };
  }
}
