import { QAbstractSocket } from './qabstract-socket.js';
import { QHostAddress, SpecialAddress } from '../kernel/qhost-address.js';
import { BindFlag, SocketType } from '../kernel/socket-enums.js';

/** A TCP connection (Qt's QTcpSocket): QAbstractSocket with socketType() TcpSocket. */
export class QTcpSocket extends QAbstractSocket {
  constructor() {
    super(SocketType.TcpSocket);
  }

  /**
   * Binds the local end of the next connection (see QAbstractSocket.bind); synchronous for
   * TCP, so the result is a plain boolean, as in Qt.
   */
  override bind(
    address: QHostAddress | SpecialAddress | string = SpecialAddress.Any,
    port = 0,
    mode: number = BindFlag.DefaultForPlatform,
  ): boolean {
    // QAbstractSocket's own bind (the TCP one) never returns a Promise.
    return super.bind(address, port, mode) as boolean;
  }
}
