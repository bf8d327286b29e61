/**
 * Counts the values of a payload and its depth of nesting in one pass over its bytes,
 * before a decoder builds anything. JSON.parse of a 64 MiB frame of `[{},{},…]` makes 22
 * million objects (tens of seconds, gigabytes), CBOR's one-byte empty maps make three
 * times as many, and a limit checked on the result comes too late. Nothing is decoded
 * here: strings are skipped by their length or their closing quote, never read.
 *
 * JSON: for a payload JSON.parse accepts, the counts are exact. For one it rejects they may
 * be off after the first syntax error, but JSON.parse stops building there, and what comes
 * before it is valid JSON, counted exactly: the scan bounds what JSON.parse builds either
 * way. Syntax is JSON.parse's to check.
 *
 * CBOR: the scan walks the item heads (RFC 8949's well-formedness: lengths, indefinite-length
 * maps and arrays and their breaks, tags) and so also rejects a payload that is cut short,
 * has bytes after its map, or has a malformed head, each an InvalidPayloadError. What the
 * items mean (the documented subset) is checked after decoding, in codec.ts.
 */
import { InvalidPayloadError, PacketTooComplexError } from './errors.js';

/** What a scan checks: values in all and depth of nesting. */
export interface ScanLimits {
  /**
   * Values the payload may hold: every map, array, string (map keys too), number, boolean
   * and null counts one; in CBOR a tag and `undefined` too.
   */
  readonly maxValues: number;
  /** Levels maps and arrays may nest below the packet's own map (MAX_NESTING). */
  readonly maxNesting: number;
}

// ---------------------------------------------------------------- JSON

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Byte classes of the JSON scan; PASS (whitespace, `,`, `:`, stray bytes) is passed over. */
const PASS = 0;
const OPEN = 1;
const CLOSE = 2;
const STRING = 3;
/** The first byte of a number or of true, false, null. */
const SCALAR = 4;

const CLASS = new Uint8Array(256);
CLASS[0x7b] = CLASS[0x5b] = OPEN; // { [
CLASS[0x7d] = CLASS[0x5d] = CLOSE; // } ]
CLASS[QUOTE] = STRING;
for (const c of '-0123456789tfn') CLASS[c.charCodeAt(0)] = SCALAR;

/** Bytes that go on a number or a literal (any letter: a wrong literal is JSON.parse's to report). */
const SCALAR_BODY = new Uint8Array(256);
for (const c of '0123456789+-.eE') SCALAR_BODY[c.charCodeAt(0)] = 1;
for (let c = 0x61; c <= 0x7a; c++) SCALAR_BODY[c] = 1;

/**
 * Bytes of a string looked at one by one before the search is handed to indexOf: most
 * strings of a packet (keys, patterns, ids) are short, and a call into indexOf costs more
 * than reading a few bytes. Where escaped quotes come close together (JSON text inside a
 * string), the stretch read byte by byte grows, up to LONGEST_STRETCH.
 */
const SHORT_STRING = 32;
const LONGEST_STRETCH = 4096;

/**
 * Throws PacketTooComplexError as soon as `payload` (JSON text, UTF-8) holds more than
 * `limits.maxValues` values or nests deeper than `limits.maxNesting` levels below the packet.
 */
export function scanJson(payload: Buffer, limits: ScanLimits): void {
  const { maxValues, maxNesting } = limits;
  const end = payload.length;
  let values = 0;
  let depth = 0;
  let i = 0;
  while (i < end) {
    const at = i;
    switch (CLASS[payload[i]]) {
      case PASS:
        i++;
        continue;
      case CLOSE:
        depth--;
        i++;
        continue;
      case OPEN:
        // The packet's own map is at depth 1.
        if (++depth > maxNesting + 1) {
          throw new PacketTooComplexError('depth', maxNesting, at, 'JSON');
        }
        i++;
        break;
      case STRING:
        i = stringEnd(payload, i + 1, end);
        break;
      default:
        i++;
        while (i < end && SCALAR_BODY[payload[i]] === 1) i++;
    }
    if (++values > maxValues) throw new PacketTooComplexError('values', maxValues, at, 'JSON');
  }
}

/**
 * The offset after the quote that closes the string whose contents start at `from`, or
 * `end` if none does (JSON.parse reports that). UTF-8 never uses the bytes of `"` and `\`
 * inside a multi-byte character, so bytes can be compared as they are. Bytes are read one
 * by one for a stretch, then indexOf finds the next quote: it closes the string if an even
 * number of backslashes precedes it (`\\"` ends the string, `\"` does not).
 */
function stringEnd(payload: Buffer, from: number, end: number): number {
  let i = from;
  let stretch = SHORT_STRING;
  for (;;) {
    const stop = Math.min(end, i + stretch);
    while (i < stop) {
      const b = payload[i++];
      if (b === QUOTE) return i;
      if (b === BACKSLASH) i++;
    }
    if (i >= end) return end;
    // `i` is not inside an escape here: backslashes from `i` on are counted exactly.
    const q = payload.indexOf(QUOTE, i);
    if (q === -1) return end;
    let b = q - 1;
    while (b >= i && payload[b] === BACKSLASH) b--;
    if (((q - 1 - b) & 1) === 0) return q + 1;
    // An escaped quote: if it came within the stretch, more may follow closely.
    stretch = q - i < stretch ? Math.min(2 * stretch, LONGEST_STRETCH) : SHORT_STRING;
    i = q + 1;
  }
}

// ---------------------------------------------------------------- CBOR

const BREAK = 0xff;
/** Entries of the stack of open containers besides a count of items still to come. */
const INDEFINITE_ARRAY = -1;
/** An indefinite-length map that expects a key (or its break) ... */
const INDEFINITE_MAP_KEY = -2;
/** ... or the value of the key just read (a break there is malformed). */
const INDEFINITE_MAP_VALUE = -3;
const TWO_POW_32 = 2 ** 32;

function malformed(reason: string, at: number): InvalidPayloadError {
  return new InvalidPayloadError(`CBOR does not decode: ${reason} at byte ${at}`);
}

/** The argument of a head (RFC 8949 §3.1) whose `size` bytes start at `p`. */
function argumentAt(payload: Buffer, p: number, size: number): number {
  if (size === 1) return payload[p];
  if (size === 2) return (payload[p] << 8) | payload[p + 1];
  if (size === 4) return payload.readUInt32BE(p);
  return payload.readUInt32BE(p) * TWO_POW_32 + payload.readUInt32BE(p + 4);
}

/**
 * Throws PacketTooComplexError as soon as `payload` (one CBOR item) holds more than
 * `limits.maxValues` values or nests deeper than `limits.maxNesting` levels below the
 * packet, and InvalidPayloadError if a head is not well formed, the item is cut short, or
 * bytes follow it. Work and memory are bounded by the values counted: the stack holds one
 * number per open map or array. Returns whether the payload holds a tag (only a tag can make
 * the decoder build anything but plain maps, arrays, Buffers and scalars).
 */
export function scanCbor(payload: Buffer, limits: ScanLimits): boolean {
  const { maxValues, maxNesting } = limits;
  const end = payload.length;
  /** Items still to come in each open map or array (a map counts keys and values). */
  const open: number[] = [];
  let values = 0;
  let pos = 0;
  /** The item just read was a tag: the next one is its content, not a break. */
  let tagged = false;
  /** Whether any tag was seen: without one, no decoder extension can be in the payload. */
  let anyTag = false;

  for (;;) {
    if (pos >= end) throw malformed('cut short', pos);
    const at = pos;
    const initial = payload[pos++];
    if (initial === BREAK) {
      const top = open.length > 0 ? open[open.length - 1] : 0;
      if (tagged || top === INDEFINITE_MAP_VALUE) {
        throw malformed('a break where an item must be (after a tag or a map key)', at);
      }
      if (top !== INDEFINITE_ARRAY && top !== INDEFINITE_MAP_KEY) {
        throw malformed('a break outside an indefinite-length map or array', at);
      }
      // The container ends here; it is complete as an item of its parent below.
      open.pop();
    } else {
      if (++values > maxValues) throw new PacketTooComplexError('values', maxValues, at, 'CBOR');
      const major = initial >> 5;
      const info = initial & 0x1f;
      let length = 0;
      if (info >= 24) {
        if (info === 31) {
          if (major !== 4 && major !== 5) {
            // Strings too: cbor-x does not read indefinite-length ones (nor does this scan).
            throw malformed(
              `an indefinite length not on a map or array (head 0x${initial.toString(16)})`,
              at,
            );
          }
          length = -1;
        } else if (info > 27) {
          throw malformed(`reserved additional information (head 0x${initial.toString(16)})`, at);
        } else {
          const size = 1 << (info - 24);
          if (size > end - pos) throw malformed('cut short in a head', at);
          // Only lengths and counts are needed; other arguments (an integer's or a tag's
          // value, a simple value, a float) are skipped.
          if (major >= 2 && major <= 5) length = argumentAt(payload, pos, size);
          pos += size;
        }
      } else {
        length = info;
      }
      if (major === 6) {
        tagged = anyTag = true;
        continue;
      }
      if (major === 2 || major === 3) {
        if (length > end - pos) throw malformed('cut short in a string', at);
        pos += length;
      } else if (major === 4 || major === 5) {
        // The packet's own map is at depth 1; this one would be at open.length + 1.
        if (open.length > maxNesting) {
          throw new PacketTooComplexError('depth', maxNesting, at, 'CBOR');
        }
        if (length !== 0) {
          if (length < 0) open.push(major === 4 ? INDEFINITE_ARRAY : INDEFINITE_MAP_KEY);
          else open.push(major === 5 ? 2 * length : length);
          tagged = false;
          continue;
        }
      }
    }
    tagged = false;
    // An item is complete: it counts in its container, which may be complete in turn.
    for (;;) {
      const depth = open.length;
      if (depth === 0) {
        if (pos !== end) throw malformed(`trailing bytes (${end - pos}) after the packet`, pos);
        return anyTag;
      }
      const top = open[depth - 1];
      if (top > 1) {
        open[depth - 1] = top - 1;
        break;
      }
      if (top === INDEFINITE_ARRAY) break;
      if (top === INDEFINITE_MAP_KEY) {
        open[depth - 1] = INDEFINITE_MAP_VALUE;
        break;
      }
      if (top === INDEFINITE_MAP_VALUE) {
        open[depth - 1] = INDEFINITE_MAP_KEY;
        break;
      }
      // Its last item: the container is complete, and an item of its parent.
      open.pop();
    }
  }
}
