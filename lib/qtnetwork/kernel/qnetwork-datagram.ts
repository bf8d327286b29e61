import { checkPort } from '../core/check-port.js';
import { toBuffer } from '../core/to-buffer.js';
import { QHostAddress } from './qhost-address.js';
import { NetworkLayerProtocol } from './socket-enums.js';

/**
 * One UDP datagram with its metadata (Qt's QNetworkDatagram, Qt 5.8+): the payload, the
 * sender and destination addresses and ports, the hop limit (IPv4 TTL) and the interface
 * index.
 *
 * A datagram is valid when it has a sender or a destination address; the payload may be
 * empty. A port reads -1 while its address is unset, as in Qt.
 *
 * Received from QUdpSocket, a datagram carries the sender and, where the port knows it, the
 * destination. Node.js does not report a datagram's destination address, hop limit or
 * interface (Qt reads them with IP_PKTINFO / IP_RECVTTL), so `hopLimit()` is -1 and
 * `interfaceIndex()` 0 on received datagrams, and the destination is set only when the
 * socket is bound to one specific address (see docs/qt-differences.md). When sending, only
 * the destination and the payload are used; Qt also applies the sender address, hop limit
 * and interface where the system allows.
 */
export class QNetworkDatagram {
  private payload: Buffer;
  private sender = new QHostAddress();
  private senderPortNumber = 0;
  private destination = new QHostAddress();
  private destinationPortNumber = 0;
  private hops = -1;
  private ifindex = 0;

  /**
   * A datagram carrying `data` (empty by default; a string is taken as UTF-8) for
   * `destinationAddress`:`port`. Without a destination it is not valid until one is set
   * (QUdpSocket then sends it to the connected peer).
   */
  constructor(
    data: Buffer | string = Buffer.alloc(0),
    destinationAddress: QHostAddress | string = new QHostAddress(),
    port = 0,
  ) {
    this.payload = toBuffer(data);
    this.setDestination(destinationAddress, port);
  }

  /** The payload (a Buffer the datagram holds; not copied). */
  data(): Buffer {
    return this.payload;
  }

  /** Sets the payload (a string is taken as UTF-8). An empty payload is a valid datagram. */
  setData(data: Buffer | string): void {
    this.payload = toBuffer(data);
  }

  /** True if a sender or a destination address is set (Qt's rule); the payload may be empty. */
  isValid(): boolean {
    return (
      this.sender.protocol() !== NetworkLayerProtocol.UnknownNetworkLayerProtocol ||
      this.destination.protocol() !== NetworkLayerProtocol.UnknownNetworkLayerProtocol
    );
  }

  /** The opposite of `isValid()`. */
  isNull(): boolean {
    return !this.isValid();
  }

  /** Received: the peer that sent it. Outgoing: the local address to send from. Null if unset. */
  senderAddress(): QHostAddress {
    return new QHostAddress(this.sender);
  }

  /** The sender's port; -1 while no sender address is set. */
  senderPort(): number {
    return this.sender.isNull() ? -1 : this.senderPortNumber;
  }

  /** Received: the address it was sent to (when known). Outgoing: where to send it. Null if unset. */
  destinationAddress(): QHostAddress {
    return new QHostAddress(this.destination);
  }

  /** The destination port; -1 while no destination address is set. */
  destinationPort(): number {
    return this.destination.isNull() ? -1 : this.destinationPortNumber;
  }

  /** Sets the sender address and port (0 = let the system choose, for an outgoing datagram). */
  setSender(address: QHostAddress | string, port = 0): void {
    this.sender = new QHostAddress(address);
    this.senderPortNumber = checkPort(port, 'QNetworkDatagram.setSender');
  }

  /** Sets the destination address and port. */
  setDestination(address: QHostAddress | string, port: number): void {
    this.destination = new QHostAddress(address);
    this.destinationPortNumber = checkPort(port, 'QNetworkDatagram.setDestination');
  }

  /**
   * The hop limit (IPv4 TTL): for a received datagram what was left of it, for an outgoing
   * one what to send with; -1 = unknown / the system's default.
   */
  hopLimit(): number {
    return this.hops;
  }

  /** Sets the hop limit: 1 to 255, or -1 for the system's default. */
  setHopLimit(count: number): void {
    this.hops = count;
  }

  /** The index of the network interface it arrived on or should leave by; 0 = unknown / any. */
  interfaceIndex(): number {
    return this.ifindex;
  }

  /** Sets the interface index (0 = let the system choose). */
  setInterfaceIndex(index: number): void {
    this.ifindex = index;
  }

  /** Resets payload and metadata to the defaults of an empty datagram (which is not valid). */
  clear(): void {
    this.payload = Buffer.alloc(0);
    this.sender = new QHostAddress();
    this.destination = new QHostAddress();
    this.hops = -1;
    this.ifindex = 0;
  }

  /**
   * A reply to this (received) datagram, carrying `payload`: it goes to this datagram's
   * sender, from the address and port this one was sent to unless that was a multicast
   * group; the interface index is kept and the hop limit is the default, as in Qt.
   */
  makeReply(payload: Buffer | string): QNetworkDatagram {
    const reply = new QNetworkDatagram(payload, this.sender, this.senderPortNumber);
    reply.ifindex = this.ifindex;
    if (!this.destination.isMulticast()) {
      reply.sender = new QHostAddress(this.destination);
      reply.senderPortNumber = this.destinationPortNumber;
    }
    return reply;
  }
}
