/**
 * A FIFO of bytes kept as a list of received chunks (Qt's QRingBuffer plays this part).
 * Reads slice chunks without copying when the bytes asked for lie in one chunk, and never
 * concatenate more than what is asked for.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Offset of the first unread byte in chunks[0]. */
  private head = 0;
  private total = 0;

  /** Bytes held. */
  get size(): number {
    return this.total;
  }

  /** Appends `chunk` (kept by reference: the caller must not modify it afterwards). */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Puts `chunk` back in front, as the next bytes to be read. */
  unshift(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.head > 0) {
      this.chunks[0] = this.chunks[0].subarray(this.head);
      this.head = 0;
    }
    this.chunks.unshift(chunk);
    this.total += chunk.length;
  }

  /** Removes and returns up to `max` bytes. */
  read(max: number): Buffer {
    const out = this.peek(max);
    this.skip(out.length);
    return out;
  }

  /**
   * Returns up to `max` bytes without removing them, starting `from` bytes in (a read
   * transaction's position).
   */
  peek(max: number, from = 0): Buffer {
    const start = Math.min(Math.max(0, Math.floor(from)), this.total);
    const n = Math.min(Math.max(0, Math.floor(max)), this.total - start);
    if (n === 0) return Buffer.alloc(0);
    // Find the chunk that holds byte `start`.
    let i = 0;
    let offset = this.head + start;
    while (offset >= this.chunks[i].length) {
      offset -= this.chunks[i].length;
      i++;
    }
    const first = this.chunks[i];
    if (first.length - offset >= n) return first.subarray(offset, offset + n);
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    for (; copied < n; i++) {
      const chunk = this.chunks[i];
      const take = Math.min(chunk.length - offset, n - copied);
      chunk.copy(out, copied, offset, offset + take);
      copied += take;
      offset = 0;
    }
    return out;
  }

  /** Drops up to `n` bytes from the front; returns how many were dropped. */
  skip(n: number): number {
    let left = Math.min(Math.max(0, Math.floor(n)), this.total);
    const dropped = left;
    while (left > 0) {
      const available = this.chunks[0].length - this.head;
      if (available > left) {
        this.head += left;
        break;
      }
      left -= available;
      this.chunks.shift();
      this.head = 0;
    }
    this.total -= dropped;
    return dropped;
  }

  /**
   * Index (counted from the front) of the first `byte` among the `limit` bytes that start
   * `from` bytes in, or -1.
   */
  indexOf(byte: number, limit: number = this.total, from = 0): number {
    const max = Math.min(from + limit, this.total);
    let base = 0;
    let offset = this.head;
    for (const chunk of this.chunks) {
      if (base >= max) break;
      const size = chunk.length - offset;
      if (base + size > from) {
        const begin = offset + Math.max(0, from - base);
        const end = Math.min(chunk.length, offset + (max - base));
        const i = chunk.indexOf(byte, begin);
        if (i >= 0 && i < end) return base + (i - offset);
      }
      base += size;
      offset = 0;
    }
    return -1;
  }

  /**
   * Removes and returns the first `max` bytes (or all, if fewer) as chunks, in order, without
   * copying: a chunk that straddles the limit is split into two views of it.
   */
  take(max: number): Buffer[] {
    if (max >= this.total) return this.takeAll();
    const out: Buffer[] = [];
    let left = Math.max(0, Math.floor(max));
    while (left > 0) {
      const chunk = this.chunks[0];
      const available = chunk.length - this.head;
      if (available > left) {
        out.push(chunk.subarray(this.head, this.head + left));
        this.head += left;
        this.total -= left;
        break;
      }
      out.push(this.head > 0 ? chunk.subarray(this.head) : chunk);
      this.chunks.shift();
      this.head = 0;
      this.total -= available;
      left -= available;
    }
    return out;
  }

  /** Removes and returns every chunk, in order, without copying. */
  takeAll(): Buffer[] {
    const out = this.chunks;
    if (out.length > 0 && this.head > 0) out[0] = out[0].subarray(this.head);
    this.chunks = [];
    this.head = 0;
    this.total = 0;
    return out;
  }

  /** Removes everything. */
  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.total = 0;
  }

  /** Moves up to `max` bytes from the front of this queue to the back of `target`. */
  moveTo(target: ByteQueue, max: number): number {
    let left = Math.min(max, this.total);
    const moved = left;
    while (left > 0) {
      const chunk = this.chunks[0];
      const available = chunk.length - this.head;
      const take = Math.min(available, left);
      target.push(chunk.subarray(this.head, this.head + take));
      if (take === available) {
        this.chunks.shift();
        this.head = 0;
      } else {
        this.head += take;
      }
      left -= take;
    }
    this.total -= moved;
    return moved;
  }
}
