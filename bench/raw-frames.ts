import type * as net from 'node:net';

/**
 * Length-prefixed framing for the raw `net` reference (client and server): calls
 * `onFrames` with the whole frames (header included) of each batch that completes one.
 * Chunks are joined only once a whole frame is there, never re-copying a growing buffer.
 */
export function onRawFrames(socket: net.Socket, onFrames: (frames: Buffer[]) => void): void {
  let chunks: Buffer[] = [];
  let total = 0;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    total += chunk.length;
    if (total < 4) return;
    if (chunks.length > 1 && chunks[0].length < 4) chunks = [Buffer.concat(chunks)];
    if (total < 4 + chunks[0].readUInt32BE(0)) return;
    const pending = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
    chunks = [];
    total = 0;
    const frames: Buffer[] = [];
    let offset = 0;
    while (pending.length - offset >= 4) {
      const length = pending.readUInt32BE(offset);
      if (pending.length - offset - 4 < length) break;
      frames.push(pending.subarray(offset, offset + 4 + length));
      offset += 4 + length;
    }
    if (offset < pending.length) {
      chunks = [pending.subarray(offset)];
      total = pending.length - offset;
    }
    onFrames(frames);
  });
}

/** A frame: the 4-byte big-endian length, then `body`. */
export function rawFrame(body: Buffer): Buffer[] {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return [header, body];
}
