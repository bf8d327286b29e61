/** A datagram received and not read yet, as Node delivered it. */
export interface PendingDatagram {
  readonly data: Buffer;
  /** The sender's address, in Node's text form (`'::ffff:127.0.0.1'` on a dual-stack socket). */
  readonly address: string;
  readonly port: number;
}

/**
 * What one pending datagram is charged beyond its payload, in bytes: roughly what Node and
 * the queue keep per datagram (the Buffer object, the sender's address, the entry). Without
 * it a flood of empty datagrams would cost memory and count nothing.
 */
export const DATAGRAM_OVERHEAD = 256;

/**
 * The datagrams a UDP socket holds for the application, oldest first, bounded in bytes.
 *
 * Qt leaves pending datagrams in the kernel, whose receive buffer (SO_RCVBUF) bounds them
 * and drops what arrives when it is full. Node reads every datagram into JavaScript at once,
 * so this queue plays the kernel buffer's part: each datagram costs its payload plus
 * DATAGRAM_OVERHEAD, and one that does not fit is dropped (the newest, as the kernel drops)
 * and counted. The first datagram is always kept, so a limit smaller than one datagram
 * does not stop all traffic.
 */
export class DatagramQueue {
  private items: PendingDatagram[] = [];
  private head = 0;
  private cost = 0;
  private droppedCount = 0;

  /** @param limit the bound in bytes (payload + overhead per datagram); 0 = unbounded. */
  constructor(private limit: number) {}

  /** Number of datagrams waiting. */
  get length(): number {
    return this.items.length - this.head;
  }

  /** Bytes charged for the waiting datagrams (payloads plus overhead). */
  get bytes(): number {
    return this.cost;
  }

  /** Datagrams dropped because the queue was full, since the last `clear(true)`. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** The bound in bytes; 0 = unbounded. */
  get maxBytes(): number {
    return this.limit;
  }

  /** Changes the bound; datagrams already queued stay, new ones wait for room. */
  setMaxBytes(limit: number): void {
    this.limit = limit;
  }

  /** Queues `d`; false (and counted as dropped) if it does not fit. */
  push(d: PendingDatagram): boolean {
    const charge = d.data.length + DATAGRAM_OVERHEAD;
    if (this.limit > 0 && this.length > 0 && this.cost + charge > this.limit) {
      this.droppedCount++;
      return false;
    }
    this.items.push(d);
    this.cost += charge;
    return true;
  }

  /** The oldest datagram, left in the queue. */
  peek(): PendingDatagram | undefined {
    return this.items[this.head];
  }

  /** Removes and returns the oldest datagram. */
  shift(): PendingDatagram | undefined {
    const d = this.items[this.head];
    if (d === undefined) return undefined;
    this.items[this.head] = undefined as unknown as PendingDatagram;
    this.head++;
    this.cost -= d.data.length + DATAGRAM_OVERHEAD;
    // Compact now and then instead of shifting the array on every read.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    } else if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return d;
  }

  /** Drops every waiting datagram; with `resetDropped`, the drop count starts again at 0. */
  clear(resetDropped = false): void {
    this.items = [];
    this.head = 0;
    this.cost = 0;
    if (resetDropped) this.droppedCount = 0;
  }
}
