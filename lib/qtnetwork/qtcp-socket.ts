import { QAbstractSocket } from './qabstract-socket.js';
import { SocketType } from './socket-enums.js';

/** A TCP connection (Qt's QTcpSocket): QAbstractSocket with socketType() TcpSocket. */
export class QTcpSocket extends QAbstractSocket {
  constructor() {
    super(SocketType.TcpSocket);
  }
}
