import { statSync } from 'node:fs';

import {
  LocalSocketError,
  ProxyType,
  QLocalSocket,
  QNetworkProxy,
  QSslSocket,
  QTcpSocket,
  SocketState,
  socketErrorName,
  type SocketError,
} from '../qtnetwork/index.js';

import { QtConnectionError, UntrustedSocketOwnerError } from './wire/errors.js';
import type { QtProxyOptions, ResolvedQtOptions } from './options.js';
import type { QtStreamSocket } from './wire/qt-connection.js';
import { sslConfiguration } from './tls.js';
import { prepareLocalPath } from './local-path.js';

/**
 * Where one connection goes: a local server, or one TCP host (a name, which Qt's
 * connectToHost resolves and tries address by address, or an address). `peerName` is the
 * name a TLS certificate must carry when `host` is an address found by resolving it.
 */
export type DialTarget =
  { kind: 'local' } | { kind: 'tcp'; host: string; port: number; peerName?: string };

/** The Qt proxy type of each `proxy.type`. */
const PROXY_TYPES: Record<QtProxyOptions['type'], ProxyType> = {
  socks5: ProxyType.Socks5Proxy,
  http: ProxyType.HttpProxy,
  none: ProxyType.NoProxy,
  default: ProxyType.DefaultProxy,
};

/** The name of a QLocalSocket error, e.g. 'ServerNotFoundError'. */
export function localErrorName(error: LocalSocketError): string {
  return LocalSocketError[error] ?? 'UnknownSocketError';
}

/**
 * Opens one connection for ClientQt: a QLocalSocket, a QTcpSocket (through the configured
 * proxy) or a QSslSocket whose handshake has completed. Bounded by `connectTimeout` (then
 * the handshake timeout). Fails with QtConnectionError carrying the Qt error's name and
 * text, UntrustedSocketOwnerError or UnsafeSocketDirectoryError; nothing is left open.
 */
export async function dial(opts: ResolvedQtOptions, target: DialTarget): Promise<QtStreamSocket> {
  const socket = createSocket(opts);
  let ok: boolean;
  if (target.kind === 'local') {
    const path = prepareLocalPath(opts.name, false);
    checkSocketOwner(opts, path);
    (socket as QLocalSocket).connectToServer(path);
    ok = await (socket as QLocalSocket).waitForConnected(opts.connectTimeout);
  } else if (socket instanceof QSslSocket) {
    const tls = opts.tls!;
    socket.connectToHostEncrypted(
      target.host,
      target.port,
      undefined,
      tls.peerName ?? target.peerName,
    );
    ok =
      (await socket.waitForConnected(opts.connectTimeout)) &&
      (await socket.waitForEncrypted(tls.handshakeTimeout));
  } else {
    (socket as QTcpSocket).connectToHost(target.host, target.port);
    ok = await (socket as QTcpSocket).waitForConnected(opts.connectTimeout);
  }
  if (ok) return socket;
  const error = failure(opts, socket);
  socket.abort();
  throw error;
}

/** Why a connect attempt failed, as the error its requests get. */
function failure(opts: ResolvedQtOptions, socket: QtStreamSocket): QtConnectionError {
  // Still connecting: the attempt ran out of connectTimeout (a QLocalSocket keeps trying).
  if (socket.state() === SocketState.ConnectingState) {
    return new QtConnectionError(
      'SocketTimeoutError',
      `Connection timed out after ${opts.connectTimeout} ms`,
    );
  }
  if (
    socket instanceof QSslSocket &&
    socket.state() === SocketState.ConnectedState &&
    !socket.isEncrypted()
  ) {
    return new QtConnectionError(
      'SslHandshakeFailedError',
      `The TLS handshake did not complete within ${opts.tls!.handshakeTimeout} ms`,
    );
  }
  if (socket instanceof QLocalSocket) {
    return new QtConnectionError(localErrorName(socket.error()), socket.errorString());
  }
  return new QtConnectionError(
    socketErrorName(socket.error() as SocketError),
    socket.errorString(),
  );
}

function createSocket(opts: ResolvedQtOptions): QtStreamSocket {
  if (opts.transport === 'local') return new QLocalSocket();
  let socket: QTcpSocket;
  if (opts.tls) {
    const ssl = new QSslSocket();
    ssl.setSslConfiguration(sslConfiguration(opts.tls));
    socket = ssl;
  } else {
    socket = new QTcpSocket();
  }
  const p = opts.proxy;
  socket.setProxy(
    new QNetworkProxy(
      PROXY_TYPES[p.type],
      p.hostName ?? '',
      p.port ?? 0,
      p.user ?? '',
      p.password ?? '',
    ),
  );
  if (opts.readBufferSize > 0) socket.setReadBufferSize(opts.readBufferSize);
  return socket;
}

/**
 * Refuses a local server socket that another user owns (docs/reliability.md, "Local
 * sockets"): in a shared directory such as /tmp anyone can listen on a name first and
 * would receive this client's requests. A missing file is left to the connect to report.
 */
function checkSocketOwner(opts: ResolvedQtOptions, path: string): void {
  const trusted = opts.trustedSocketOwners;
  if (trusted === 'any' || typeof process.getuid !== 'function') return;
  let owner: number;
  try {
    owner = statSync(path).uid;
  } catch {
    return;
  }
  if (owner === process.getuid() || owner === 0 || trusted.includes(owner)) return;
  throw new UntrustedSocketOwnerError(path, owner);
}
