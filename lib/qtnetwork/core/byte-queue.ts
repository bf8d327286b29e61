/** What a slot of `chunks` holds once its chunk has been read (so the chunk can be freed). */
const READ_SLOT = Buffer.alloc(0);
/**
 * Read slots at the front of `chunks` beyond which the array is compacted (when they are
 * also at least half of it). Array.prototype.shift costs time in the array's length once
 * it is long (V8 moves every element), so a queue of many small chunks (a burst of events
 * waiting to be written) would take quadratic time to drain; the queue steps an index
 * instead and drops the read slots in one go.
 */
const COMPACT_AT = 1024;

/**
 * A FIFO of bytes kept as a list of received chunks (Qt's QRingBuffer plays this part).
 * Reads slice chunks without copying when the bytes asked for lie in one chunk, and never
 * concatenate more than what is asked for.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Index in `chunks` of the first chunk not wholly read; the slots before it are read. */
  private first = 0;
  /** Offset of the first unread byte in chunks[first]. */
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
      this.chunks[this.first] = this.chunks[this.first].subarray(this.head);
      this.head = 0;
    }
    if (this.first > 0) this.chunks[--this.first] = chunk;
    else this.chunks.unshift(chunk);
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
    let i = this.first;
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
      const available = this.chunks[this.first].length - this.head;
      if (available > left) {
        this.head += left;
        break;
      }
      left -= available;
      this.dropFirst();
    }
    this.total -= dropped;
    this.compact();
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
    for (let c = this.first; c < this.chunks.length; c++) {
      const chunk = this.chunks[c];
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
      const chunk = this.chunks[this.first];
      const available = chunk.length - this.head;
      if (available > left) {
        out.push(chunk.subarray(this.head, this.head + left));
        this.head += left;
        this.total -= left;
        break;
      }
      out.push(this.head > 0 ? chunk.subarray(this.head) : chunk);
      this.dropFirst();
      this.total -= available;
      left -= available;
    }
    this.compact();
    return out;
  }

  /** Removes and returns every chunk, in order, without copying. */
  takeAll(): Buffer[] {
    const out = this.first > 0 ? this.chunks.slice(this.first) : this.chunks;
    if (out.length > 0 && this.head > 0) out[0] = out[0].subarray(this.head);
    this.clear();
    return out;
  }

  /** Removes everything. */
  clear(): void {
    this.chunks = [];
    this.first = 0;
    this.head = 0;
    this.total = 0;
  }

  /** Moves up to `max` bytes from the front of this queue to the back of `target`. */
  moveTo(target: ByteQueue, max: number): number {
    let left = Math.min(max, this.total);
    const moved = left;
    while (left > 0) {
      const chunk = this.chunks[this.first];
      const available = chunk.length - this.head;
      const take = Math.min(available, left);
      target.push(chunk.subarray(this.head, this.head + take));
      if (take === available) this.dropFirst();
      else this.head += take;
      left -= take;
    }
    this.total -= moved;
    this.compact();
    return moved;
  }

  /** The first chunk has been read: its slot is emptied and the next one comes first. */
  private dropFirst(): void {
    this.chunks[this.first++] = READ_SLOT;
    this.head = 0;
  }

  /** Drops the read slots at the front once the queue is empty, or once they are many. */
  private compact(): void {
    const first = this.first;
    if (first === 0) return;
    if (first === this.chunks.length) {
      this.chunks.length = 0;
      this.first = 0;
    } else if (first >= COMPACT_AT && first * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(first);
      this.first = 0;
    }
  }
}
