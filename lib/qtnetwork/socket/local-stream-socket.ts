import * as net from 'node:net';

import { SocketType } from '../kernel/socket-enums.js';
import { QAbstractSocket } from './qabstract-socket.js';

/**
 * The stream under a QLocalSocket: Qt's QLocalSocket on Unix keeps a QTcpSocket-like
 * QAbstractSocket over the Unix-domain descriptor, and so does the port, so that buffering,
 * backpressure, closing and the waits behave exactly as for TCP.
 */
export class LocalStreamSocket extends QAbstractSocket<boolean> {
  constructor() {
    super(SocketType.UnknownSocketType);
  }

  protected override acceptsNativeSocket(sock: net.Socket): boolean {
    // A Unix-domain connection has no IP addresses.
    return !sock.destroyed && net.isIP(sock.remoteAddress ?? sock.localAddress ?? '') === 0;
  }
}
