/**
 * QIODevice's Text mode on reading (OpenModeFlag.Text): Qt drops every '\r' that `read`,
 * `peek`, `getChar` and `skip` pass through, while `readLine` only turns a line's final
 * "\r\n" into "\n" (see QIODevice.readLine). Writing is not translated on Unix, nor here.
 */

const CR = 0x0d;
const LF = 0x0a;

/** `data` without its '\r' bytes (the same Buffer when it has none). */
export function dropCarriageReturns(data: Buffer): Buffer {
  let at = data.indexOf(CR);
  if (at < 0) return data;
  const out = Buffer.allocUnsafe(data.length);
  data.copy(out, 0, 0, at);
  let length = at;
  for (; at < data.length; at++) {
    if (data[at] !== CR) out[length++] = data[at];
  }
  return out.subarray(0, length);
}

/** A line ending in "\r\n" with that ending made "\n"; any other line as it is. */
export function foldLineEnding(line: Buffer): Buffer {
  const n = line.length;
  if (n < 2 || line[n - 1] !== LF || line[n - 2] !== CR) return line;
  const out = Buffer.from(line.subarray(0, n - 1));
  out[n - 2] = LF;
  return out;
}
