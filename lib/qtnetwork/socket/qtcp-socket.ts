import { SocketType } from '../kernel/socket-enums.js';
import { QAbstractSocket } from './qabstract-socket.js';

/**
 * A TCP connection (Qt's QTcpSocket): QAbstractSocket with socketType() TcpSocket, over the
 * TCP socket engine. `bind` is synchronous for TCP, so its result is a plain boolean, as in Qt.
 */
export class QTcpSocket extends QAbstractSocket<boolean> {
  constructor() {
    super(SocketType.TcpSocket);
  }
}
