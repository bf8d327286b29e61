import { checkPort } from '../core/check-port.js';
import { type WritableData } from '../core/qiodevice.js';
import { toBuffer } from '../core/to-buffer.js';
import { QHostAddress } from '../kernel/qhost-address.js';
import { QNetworkDatagram } from '../kernel/qnetwork-datagram.js';
import { SocketType } from '../kernel/socket-enums.js';
import { QAbstractSocket } from './qabstract-socket.js';
import { truncate } from './udp-helpers.js';
import { UdpSocketEngine } from './udp-socket-engine.js';

/** What `readDatagram` returns: the payload (truncated to `maxSize`) and who sent it. */
export interface ReadDatagramResult {
  data: Buffer;
  host: QHostAddress;
  port: number;
}

/**
 * A UDP socket (Qt's QUdpSocket) over Node's `dgram`: QAbstractSocket with socketType()
 * UdpSocket, Qt's states, signals, error codes and texts.
 *
 * Use it as in Qt: `bind()` then `writeDatagram()` / `readDatagram()` (or
 * `receiveDatagram()`, which returns a QNetworkDatagram); or `connectToHost()` to a peer
 * and then `write()` / `read()`, one datagram per call. A socket that sends before being
 * bound is bound to Any on a system-chosen port, as in Qt.
 *
 * readyRead follows Qt's rule for datagrams: it is emitted when datagrams arrive, once for
 * all that arrived together, and not again until the application has read one (any of
 * `readDatagram`, `receiveDatagram`, `read`); if datagrams are still waiting after such a
 * read, it is emitted again on the next turn of the event loop.
 *
 * It is a QAbstractSocket as in Qt: state, errors, addresses, signals, waits and the
 * QIODevice calls are the base's, over a UDP socket engine (UdpSocketEngine) instead of
 * the TCP one.
 *
 * Differences Node forces (docs/qt-differences.md, "QUdpSocket"):
 * - `bind()` returns `Promise<boolean>`: Node binds asynchronously. stateChanged(BoundState)
 *   is emitted before the Promise resolves, as Qt emits it before bind() returns. The
 *   automatic bind of a first `writeDatagram` on an unbound socket completes after the call
 *   returns, so its stateChanged(BoundState) comes after that datagram's bytesWritten.
 * - `connectToHost()` reaches ConnectedState on a later turn of the event loop, also for an
 *   address (Qt connects a UDP socket at once); writes made meanwhile are sent once connected.
 * - Node reads every datagram from the kernel at once, so pending datagrams are bounded here
 *   (`setReadBufferSize`, default 256 KiB, each datagram counted as its payload plus 256
 *   bytes): one that does not fit is dropped and counted by `droppedDatagramCount()`. Qt
 *   leaves them in the kernel, whose receive buffer drops the same way.
 * - A received QNetworkDatagram has no hop limit (-1) or interface index (0), and its
 *   destination only when the socket is bound to one specific address; Node does not report
 *   them. Sending ignores a datagram's sender, hop limit and interface index.
 * - Errors of a send (other than a datagram too large, a bad address or a missing port,
 *   which are checked first, as the kernel would refuse them at once) come after
 *   `writeDatagram` returned, through errorOccurred.
 * - Node refuses a destination other than the peer on a connected socket: such a
 *   `writeDatagram` fails with NetworkError (Linux would send it).
 * - An ICMP port unreachable from a connected peer is reported as in Qt (readyRead, then
 *   ConnectionRefusedError from the next read), but `hasPendingDatagrams()` does not
 *   swallow it as Qt 5.15's kernel peek does.
 * - Proxies are not used (Qt can send UDP through a SOCKS5 proxy).
 */
export class QUdpSocket extends QAbstractSocket<Promise<boolean>> {
  private readonly udp: UdpSocketEngine;

  constructor() {
    let engine!: UdpSocketEngine;
    super(SocketType.UdpSocket, (host) => (engine = new UdpSocketEngine(host)));
    this.udp = engine;
  }

  // ---------------------------------------------------------------- datagrams

  /** True if at least one datagram is waiting to be read. */
  hasPendingDatagrams(): boolean {
    if (!this.udp.checkBound('hasPendingDatagrams')) return false;
    return this.udp.pending.length > 0;
  }

  /** The size of the first pending datagram in bytes, or -1 when none is waiting. */
  pendingDatagramSize(): number {
    if (!this.udp.checkBound('pendingDatagramSize')) return -1;
    return this.udp.pending.peek()?.data.length ?? -1;
  }

  /**
   * Reads the next datagram: at most `maxSize` bytes of it (the rest of that datagram is
   * lost, as in Qt; 0 discards it), with the sender's address and port. Null when none is
   * waiting (TemporaryError, "No datagram available for reading"), when a connected socket's
   * peer refused an earlier datagram (ConnectionRefusedError, "Connection refused", as Qt
   * reports an ICMP port unreachable), or when the socket is not bound (a warning).
   */
  readDatagram(maxSize: number): ReadDatagramResult | null {
    if (!Number.isInteger(maxSize) || maxSize < 0) {
      throw new RangeError(
        `readDatagram: maxSize must be a non-negative integer, got ${String(maxSize)}`,
      );
    }
    if (!this.udp.checkBound('readDatagram')) return null;
    const d = this.udp.pending.shift();
    this.udp.afterRead();
    if (!d) {
      this.udp.reportNothingToRead();
      return null;
    }
    return { data: truncate(d.data, maxSize), host: new QHostAddress(d.address), port: d.port };
  }

  /**
   * Reads the next datagram with its metadata: payload (at most `maxSize` bytes; -1 = all
   * of it), sender address and port, destination when known. An invalid (null) datagram
   * when none is waiting; with a `maxSize` of 0 or more that also sets TemporaryError, as
   * `readDatagram` does. A refusal by a connected peer is reported as by `readDatagram`.
   */
  receiveDatagram(maxSize = -1): QNetworkDatagram {
    if (!Number.isInteger(maxSize)) {
      throw new RangeError(`receiveDatagram: maxSize must be an integer, got ${String(maxSize)}`);
    }
    if (!this.udp.checkBound('receiveDatagram')) return new QNetworkDatagram();
    const d = this.udp.pending.shift();
    if (!d) {
      if (maxSize >= 0 || this.udp.hasRefusal()) {
        this.udp.afterRead();
        this.udp.reportNothingToRead();
      }
      return new QNetworkDatagram();
    }
    this.udp.afterRead();
    const datagram = new QNetworkDatagram(maxSize >= 0 ? truncate(d.data, maxSize) : d.data);
    datagram.setSender(new QHostAddress(d.address), d.port);
    const destination = this.udp.destination();
    if (destination) datagram.setDestination(destination, this.localPort());
    return datagram;
  }

  /**
   * Sends one datagram; returns its size, or -1 with the error set and errorOccurred
   * emitted. `data` is bytes (a string is sent as UTF-8) for `host`:`port`, or a
   * QNetworkDatagram (its destination, or the connected peer when it has none).
   * bytesWritten(size) is emitted before it returns, as in Qt. Failures: a payload over
   * 65507 bytes (IPv4) or 65527 (IPv6): DatagramTooLargeError, "Datagram was too large to
   * send"; no address, port 0, or an address of the other family than the socket's:
   * NetworkError, "Unable to send a message". An unbound socket is first bound to Any.
   */
  writeDatagram(
    data: WritableData | QNetworkDatagram,
    host?: QHostAddress | string,
    port?: number,
  ): number {
    if (data instanceof QNetworkDatagram) {
      return this.udp.sendDatagram(
        data.data(),
        data.destinationAddress(),
        Math.max(0, data.destinationPort()),
      );
    }
    const target = host === undefined ? new QHostAddress() : new QHostAddress(host);
    return this.udp.sendDatagram(toBuffer(data), target, checkPort(port ?? 0, 'writeDatagram'));
  }

  /**
   * Port extension: the number of datagrams waiting to be read (Qt has no such call; its
   * datagrams wait in the kernel).
   */
  pendingDatagramCount(): number {
    return this.udp.pending.length;
  }

  /**
   * Port extension: datagrams dropped because the pending ones filled `readBufferSize`,
   * since the socket was last bound (by `bind`, by a first `writeDatagram`, or by
   * `connectToHost` on an unbound socket). Qt's kernel buffer drops silently.
   */
  droppedDatagramCount(): number {
    return this.udp.pending.dropped;
  }

  // ---------------------------------------------------------------- multicast

  /**
   * Joins the multicast group `groupAddress` on `iface` (an interface name such as `'lo'`,
   * or one of its addresses; the system's choice when omitted). The socket must be bound
   * (to AnyIPv4 for an IPv4 group, as Qt requires). True on success; false otherwise,
   * without changing `error()` (as in Qt).
   */
  joinMulticastGroup(groupAddress: QHostAddress | string, iface?: string | QHostAddress): boolean {
    if (!this.udp.checkBound('joinMulticastGroup')) return false;
    return this.udp.changeMembership(true, groupAddress, iface);
  }

  /** Leaves a group joined with `joinMulticastGroup` (same `iface`). True on success. */
  leaveMulticastGroup(groupAddress: QHostAddress | string, iface?: string | QHostAddress): boolean {
    if (!this.udp.checkBound('leaveMulticastGroup')) return false;
    return this.udp.changeMembership(false, groupAddress, iface);
  }

  /**
   * Sets the interface outgoing multicast datagrams leave by (IP_MULTICAST_IF /
   * IPV6_MULTICAST_IF): a name such as `'lo'`, or one of its addresses. Needs a bound socket.
   */
  setMulticastInterface(iface: string | QHostAddress): void {
    this.udp.setMulticastInterface(iface);
  }

  /** The name of the interface set with `setMulticastInterface`; '' when none was set. */
  multicastInterface(): string {
    if (!this.udp.checkBound('multicastInterface')) return '';
    return this.udp.multicastInterface();
  }
}
