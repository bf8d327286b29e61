/**
 * Helpers of the e2e specs: the Nest server app (fixtures/server-app.ts) and client app
 * (fixtures/client-app.ts) as child processes, raw framed peers on `node:net`, polling,
 * and a strict little CBOR reader/writer (RFC 8949 core types only, no tags) so that the
 * wire can be checked without the codec under test.
 */
import { readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';

import { nodeWithTsArgs, startChild, type ChildRun } from '../helpers/child-process.js';
import { sslPki } from '../helpers/qssl-pki.js';
import { CHILD_START_MS, budget } from '../helpers/time-budget.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SERVER_APP = path.join(here, 'fixtures', 'server-app.ts');
export const CLIENT_APP = path.join(here, 'fixtures', 'client-app.ts');

/** 'tls' is TCP with mutual TLS (certificates made at test time, see helpers/qssl-pki.ts). */
export type TransportKind = 'tcp' | 'local' | 'tls';

/** Both transports; every e2e test runs once over each. */
export const TRANSPORTS: Array<'tcp' | 'local'> = ['tcp', 'local'];

/** The RPC suite runs a third time over TCP with mutual TLS. */
export const TRANSPORTS_WITH_TLS: TransportKind[] = ['tcp', 'local', 'tls'];

/** ServerQt's `tls` option for the 'tls' kind: client certificates from the test CA required. */
export function serverTlsOptions(): Record<string, unknown> {
  const pki = sslPki();
  return {
    certificate: pki.serverCert,
    privateKey: pki.serverKey,
    ca: pki.caCert,
    verifyMode: 'verify',
  };
}

/** ClientQt's `tls` option for the 'tls' kind: the test CA and a client certificate. */
export function clientTlsOptions(): Record<string, unknown> {
  const pki = sslPki();
  return { certificate: pki.clientCert, privateKey: pki.clientKey, ca: pki.caCert };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let counter = 0;
/** A local server name unique to this test process and call (lives in os.tmpdir()). */
export function uniqueName(label: string): string {
  return `qt-e2e-${process.pid}-${label}-${++counter}`;
}

export { freePort } from '../helpers/net.js';

/**
 * Reads the child's stdout lines until a JSON line with `event` (other lines are skipped);
 * rejects after `ms` (a 15 s budget by default).
 */
export async function waitEvent(
  run: ChildRun,
  event: string,
  ms = budget(15000),
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no "${event}" line within ${ms} ms; stderr: ${run.stderr()}`);
    const line = await run.nextLine(left);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (parsed.event === event) return parsed;
    if (parsed.event === 'listen-error' && event === 'ready') {
      throw new Error(`the server did not listen: ${line}; stderr: ${run.stderr()}`);
    }
  }
}

/** A server app process and where to reach it. */
export interface ServerApp {
  readonly run: ChildRun;
  readonly transport: TransportKind;
  /** TCP port (tcp) or 0. */
  readonly port: number;
  /** Local server name as given (local) or ''. */
  readonly name: string;
  /** Absolute socket path (local) or ''. */
  readonly fullServerName: string;
  /** Options a ClientQt needs to reach it. */
  readonly target: {
    transport: 'tcp' | 'local';
    host?: string;
    port?: number;
    name?: string;
    tls?: Record<string, unknown>;
  };
  /** Writes one command line to its stdin. */
  command(line: string): void;
  /** Kills it (SIGKILL) and waits; removes its socket file (local). */
  stop(): Promise<void>;
}

export interface ServerSpec {
  transport: TransportKind;
  /** TCP port; 0 (default) lets the system choose. */
  port?: number;
  /** Local name; a fresh unique one by default. */
  name?: string;
  /** Extra ServerQt options. */
  options?: Record<string, unknown>;
  /** app.enableShutdownHooks(): SIGTERM closes the app (and the process then ends by it). */
  shutdownHooks?: boolean;
}

/** The command line of a server app process. */
export function serverArgs(spec: ServerSpec & { name: string }): string[] {
  const tcp = spec.transport !== 'local';
  const args = ['--transport', tcp ? 'tcp' : 'local'];
  if (tcp) args.push('--port', String(spec.port ?? 0));
  else args.push('--name', spec.name);
  const options =
    spec.transport === 'tls' ? { tls: serverTlsOptions(), ...spec.options } : spec.options;
  if (options) args.push('--options', JSON.stringify(options));
  if (spec.shutdownHooks) args.push('--shutdown-hooks');
  return nodeWithTsArgs(SERVER_APP, ...args);
}

/** Starts a server app process and waits until it listens. */
export async function startServer(spec: ServerSpec): Promise<ServerApp> {
  const name = spec.transport === 'local' ? (spec.name ?? uniqueName('srv')) : '';
  const run = startChild(process.execPath, serverArgs({ ...spec, name }));
  let ready: Record<string, unknown>;
  try {
    ready = await waitEvent(run, 'ready', CHILD_START_MS);
  } catch (err) {
    await run.stop();
    throw err;
  }
  const port = spec.transport !== 'local' ? Number(ready.port) : 0;
  const fullServerName = spec.transport === 'local' ? String(ready.fullServerName) : '';
  return {
    run,
    transport: spec.transport,
    port,
    name,
    fullServerName,
    target:
      spec.transport === 'tcp'
        ? { transport: 'tcp', host: '127.0.0.1', port }
        : spec.transport === 'tls'
          ? { transport: 'tcp', host: '127.0.0.1', port, tls: clientTlsOptions() }
          : { transport: 'local', name },
    command: (line) => run.proc.stdin!.write(line + '\n'),
    async stop() {
      await run.stop();
      if (fullServerName) rmSync(fullServerName, { force: true });
    },
  };
}

/** Polls `read` until `done` holds for its value; returns the value, or throws after `ms`. */
export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  ms = 5000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T;
  for (;;) {
    last = await read();
    if (done(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`${what} not met within ${ms} ms; last value: ${JSON.stringify(last)}`);
    }
    await sleep(25);
  }
}

/** Rejects after `ms` with `what` in the message, unless `promise` settles first. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- raw framed peers

/** A frame as QDataStream << QByteArray writes it: 32-bit big-endian length, then the bytes. */
export function frame(payload: Buffer | string | object): Buffer {
  const body = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** A 4-byte length header alone. */
export function header(length: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length >>> 0, 0);
  return h;
}

/** A raw connection to a server app that splits what it receives into frames. */
export interface RawPeer {
  readonly socket: net.Socket;
  /** Every complete frame payload received so far. */
  readonly frames: Buffer[];
  /** Bytes received so far. */
  received(): number;
  /** Resolves when the connection has closed (from either side). */
  readonly closed: Promise<void>;
  isClosed(): boolean;
  /** Resolves once at least `n` frames have arrived; rejects after `ms` or at close. */
  waitFrames(n: number, ms?: number): Promise<Buffer[]>;
  destroy(): void;
}

/** Connects a raw `node:net` socket to the server app (TCP port or Unix socket path). */
export async function rawConnect(server: ServerApp): Promise<RawPeer> {
  const pki = server.transport === 'tls' ? sslPki() : null;
  const socket = pki
    ? tls.connect({
        host: '127.0.0.1',
        port: server.port,
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.clientCert),
        key: readFileSync(pki.clientKey),
      })
    : server.transport === 'tcp'
      ? net.createConnection({ host: '127.0.0.1', port: server.port })
      : net.createConnection({ path: server.fullServerName });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once(pki ? 'secureConnect' : 'connect', () => resolve());
    socket.once('close', () => reject(new Error('raw connection closed before connecting')));
  });
  const frames: Buffer[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let total = 0;
  let closed = false;
  const waiters = new Set<() => void>();
  const wakeAll = (): void => {
    for (const w of [...waiters]) w();
  };
  socket.on('data', (chunk: Buffer) => {
    total += chunk.length;
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const length = pending.readUInt32BE(0);
      if (pending.length < 4 + length) break;
      frames.push(pending.subarray(4, 4 + length));
      pending = pending.subarray(4 + length);
    }
    wakeAll();
  });
  const closedPromise = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      wakeAll();
      resolve();
    }),
  );
  return {
    socket,
    frames,
    received: () => total,
    closed: closedPromise,
    isClosed: () => closed,
    async waitFrames(n: number, ms = 10000): Promise<Buffer[]> {
      const deadline = Date.now() + ms;
      while (frames.length < n) {
        if (closed) throw new Error(`connection closed after ${frames.length} of ${n} frames`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${frames.length} of ${n} frames within ${ms} ms`);
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            waiters.delete(done);
            resolve();
          };
          const timer = setTimeout(done, left);
          waiters.add(done);
        });
      }
      return frames;
    },
    destroy: () => socket.destroy(),
  };
}

/** Decodes a JSON frame payload. */
export function json(payload: Buffer): Record<string, unknown> {
  return JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
}

// ---------------------------------------------------------------- strict CBOR (RFC 8949)

function cborHead(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(n, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Encodes maps with text keys, arrays, text, Buffers (byte strings), integers, booleans, null. */
export function cborEncode(value: unknown): Buffer {
  if (value === null || value === undefined) return Buffer.from([0xf6]);
  if (value === false) return Buffer.from([0xf4]);
  if (value === true) return Buffer.from([0xf5]);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) {
      const b = Buffer.alloc(9);
      b[0] = 0xfb;
      b.writeDoubleBE(value, 1);
      return b;
    }
    return value >= 0 ? cborHead(0, value) : cborHead(1, -1 - value);
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([cborHead(3, bytes.length), bytes]);
  }
  if (Buffer.isBuffer(value)) return Buffer.concat([cborHead(2, value.length), value]);
  if (Array.isArray(value)) {
    return Buffer.concat([cborHead(4, value.length), ...value.map(cborEncode)]);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  return Buffer.concat([
    cborHead(5, entries.length),
    ...entries.flatMap(([k, v]) => [cborEncode(k), cborEncode(v)]),
  ]);
}

/**
 * Decodes one CBOR item of the core types Qt's QCborValue reads (no tags: a tag is an
 * error here, since the transport promises no library-specific extensions). Throws on
 * trailing bytes.
 */
export function cborDecode(data: Buffer): unknown {
  let pos = 0;
  const length = (info: number): number => {
    if (info < 24) return info;
    if (info === 24) return data[pos++]!;
    if (info === 25) {
      const v = data.readUInt16BE(pos);
      pos += 2;
      return v;
    }
    if (info === 26) {
      const v = data.readUInt32BE(pos);
      pos += 4;
      return v;
    }
    if (info === 27) {
      const v = Number(data.readBigUInt64BE(pos));
      pos += 8;
      return v;
    }
    throw new Error(`CBOR: indefinite or reserved length ${info} at ${pos - 1}`);
  };
  const item = (): unknown => {
    if (pos >= data.length) throw new Error('CBOR: truncated');
    const initial = data[pos++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    switch (major) {
      case 0:
        return length(info);
      case 1:
        return -1 - length(info);
      case 2: {
        const n = length(info);
        const b = Buffer.from(data.subarray(pos, pos + n));
        pos += n;
        return b;
      }
      case 3: {
        const n = length(info);
        const s = data.subarray(pos, pos + n).toString('utf8');
        pos += n;
        return s;
      }
      case 4: {
        const n = length(info);
        return Array.from({ length: n }, () => item());
      }
      case 5: {
        const n = length(info);
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const key = item();
          if (typeof key !== 'string') throw new Error(`CBOR: map key ${String(key)} is not text`);
          out[key] = item();
        }
        return out;
      }
      case 6:
        throw new Error(`CBOR: tag ${length(info)} (a library-specific extension?)`);
      default: {
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        if (info === 23) return undefined;
        if (info === 25) {
          const v = data.readUInt16BE(pos);
          pos += 2;
          const sign = v & 0x8000 ? -1 : 1;
          const exp = (v >> 10) & 0x1f;
          const mant = v & 0x3ff;
          if (exp === 0) return sign * 2 ** -14 * (mant / 1024);
          if (exp === 31) return mant ? NaN : sign * Infinity;
          return sign * 2 ** (exp - 15) * (1 + mant / 1024);
        }
        if (info === 26) {
          const v = data.readFloatBE(pos);
          pos += 4;
          return v;
        }
        if (info === 27) {
          const v = data.readDoubleBE(pos);
          pos += 8;
          return v;
        }
        throw new Error(`CBOR: simple value ${info}`);
      }
    }
  };
  const value = item();
  if (pos !== data.length) throw new Error(`CBOR: ${data.length - pos} trailing bytes`);
  return value;
}
