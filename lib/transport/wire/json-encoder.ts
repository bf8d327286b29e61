/**
 * Encodes a packet as JSON text in UTF-8, as `Buffer.from(JSON.stringify(packet))` does, but
 * with its large strings written by reference: a string of LARGE_STRING characters or more,
 * near the top of the packet (the payload itself, or a field of it), that JSON writes as it
 * is (no character to escape) goes to the socket as its own UTF-8 Buffer between the small
 * JSON texts around it. JSON.stringify would check and copy each of its characters one by
 * one (1.5 to 2 ms per MiB on the project's machine, the largest single cost of a large
 * round trip); three native scans do the check in a fifth of that (isVerbatim), and the
 * text is never copied into a larger one. The bytes are the same as JSON.stringify's.
 *
 * Anything else (small packets, and whatever lies deeper or is not a plain object, array or
 * string) is JSON.stringify's, untouched. An error on the way (a cycle, a BigInt, a toJSON
 * that throws) makes the packet go through JSON.stringify whole, which throws the error it
 * always threw.
 */

/** Strings at least this long (UTF-16 code units) are looked for and written by reference. */
const LARGE_STRING = 64 * 1024;
/** Values the search for a large string looks at, in all, before it gives up. */
const SEARCH_VALUES = 32;
/** Levels of plain objects and arrays the search enters (the packet is the first). */
const SEARCH_DEPTH = 3;

/** A text with no control character (U+0000 to U+001F): everything from the space up. */
const NO_CONTROL = /^[ -\uffff]*$/;

/**
 * Whether JSON writes `s` between quotes as it is: JSON escapes the control characters, the
 * quote, the backslash and lone surrogates, nothing else. Each check is one native pass (the
 * two searches are memchr's, the regular expression a single range, which V8 runs three
 * times faster than a class of several); together some 0.3 ms per MiB where JSON.stringify
 * takes 1.5 to 2. A subject this long can make a regular expression throw RangeError (stack):
 * the caller's catch then leaves the packet to JSON.stringify.
 */
function isVerbatim(s: string): boolean {
  return (
    s.indexOf('"') < 0 &&
    s.indexOf('\\') < 0 &&
    NO_CONTROL.test(s) &&
    (s as unknown as { isWellFormed(): boolean }).isWellFormed()
  );
}

/** A plain object or array without toJSON: JSON.stringify writes its own properties. */
function isPlainContainer(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  if (
    Array.isArray(value) ? proto !== Array.prototype : proto !== Object.prototype && proto !== null
  ) {
    return false;
  }
  return typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}

/** Values the running search may still look at (holdsLargeString sets it). */
let searchLeft = 0;

function search(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return value.length >= LARGE_STRING;
  if (typeof value !== 'object' || value === null || depth >= SEARCH_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (--searchLeft < 0) return false;
      if (search(value[i] as unknown, depth + 1)) return true;
    }
    return false;
  }
  // Only plain objects: `for in` over a Buffer or a Map would list what JSON never reads.
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (--searchLeft < 0) return false;
    if (search(record[key], depth + 1)) return true;
  }
  return false;
}

/**
 * Whether `value` (at `depth` in the packet) holds a large string within the search's reach:
 * SEARCH_VALUES values, SEARCH_DEPTH levels. Some 50 ns for a small packet, where
 * JSON.stringify takes 700. It reads the properties it looks at: a getter among them runs
 * once more than JSON.stringify would run it.
 */
function holdsLargeString(value: unknown, depth: number): boolean {
  searchLeft = SEARCH_VALUES;
  return search(value, depth);
}

/** The JSON text so far, as Buffers: small texts joined, large strings on their own. */
class JsonChunks {
  readonly chunks: Buffer[] = [];
  private text = '';

  add(text: string): void {
    this.text += text;
  }

  /** A large string that JSON writes as it is: its quotes join the texts around it. */
  addVerbatim(s: string): void {
    this.chunks.push(Buffer.from(`${this.text}"`, 'utf8'));
    this.chunks.push(Buffer.from(s, 'utf8'));
    this.text = '"';
  }

  finish(): Buffer[] {
    if (this.text.length > 0) this.chunks.push(Buffer.from(this.text, 'utf8'));
    return this.chunks;
  }
}

/**
 * JSON.stringify's text for `value` as the property `key` of a container, or undefined when
 * JSON leaves the property out. toJSON is given the key, as JSON.stringify gives it: through
 * a holder object when there is a toJSON to call.
 */
function propertyText(key: string, value: unknown): string | undefined {
  const hasToJson =
    ((typeof value === 'object' && value !== null) || typeof value === 'bigint') &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function';
  if (!hasToJson) return JSON.stringify(value) as string | undefined;
  const holder = Object.create(null) as Record<string, unknown>;
  holder[key] = value;
  const text = JSON.stringify(holder);
  // `{"key":...}`, or `{}` when toJSON gave something JSON leaves out.
  return text.length === 2 ? undefined : text.slice(JSON.stringify(key).length + 2, -1);
}

/** Whether writeValue takes `value` apart (or writes it itself) rather than asking JSON.stringify. */
function takesApart(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return true;
  return (
    typeof value === 'object' &&
    value !== null &&
    depth < SEARCH_DEPTH &&
    isPlainContainer(value) &&
    holdsLargeString(value, depth)
  );
}

/**
 * Writes `value` (the property `key` of its container); false when JSON leaves it out.
 * `open` holds the containers being written, to find a cycle (JSON.stringify reports it).
 */
function writeValue(
  out: JsonChunks,
  key: string,
  value: unknown,
  depth: number,
  open: object[],
): boolean {
  if (!takesApart(value, depth)) {
    const text = propertyText(key, value);
    if (text === undefined) return false;
    out.add(text);
    return true;
  }
  if (typeof value === 'string') {
    if (value.length >= LARGE_STRING && isVerbatim(value)) out.addVerbatim(value);
    else out.add(JSON.stringify(value));
    return true;
  }
  const container = value as object;
  if (open.includes(container)) throw new TypeError('a cycle');
  open.push(container);
  if (Array.isArray(container)) {
    out.add('[');
    for (let i = 0; i < container.length; i++) {
      if (i > 0) out.add(',');
      if (!writeValue(out, String(i), container[i] as unknown, depth + 1, open)) out.add('null');
    }
    out.add(']');
  } else {
    const record = container as Record<string, unknown>;
    let separator = '{';
    for (const k of Object.keys(record)) {
      const item = record[k];
      // A property JSON leaves out leaves out its key too: the text comes first.
      if (takesApart(item, depth + 1)) {
        out.add(`${separator}${JSON.stringify(k)}:`);
        writeValue(out, k, item, depth + 1, open);
      } else {
        const text = propertyText(k, item);
        if (text === undefined) continue;
        out.add(`${separator}${JSON.stringify(k)}:${text}`);
      }
      separator = ',';
    }
    out.add(separator === '{' ? '{}' : '}');
  }
  open.pop();
  return true;
}

/**
 * The packet as UTF-8 JSON text, in Buffers to write in order; the same bytes as
 * `Buffer.from(JSON.stringify(value), 'utf8')`, which is what a packet with no large string
 * near its top gets.
 */
export function encodeJsonChunks(value: unknown): Buffer[] {
  if (holdsLargeString(value, 0)) {
    try {
      const out = new JsonChunks();
      if (writeValue(out, '', value, 0, [])) return out.finish();
    } catch {
      // JSON.stringify below throws what it always threw for this packet.
    }
  }
  return [Buffer.from(JSON.stringify(value), 'utf8')];
}
