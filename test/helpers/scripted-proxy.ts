/**
 * Scripted proxies for the proxy tests: small `node:net` servers on loopback that play a
 * SOCKS5 or HTTP CONNECT proxy byte by byte, so a test can produce the answers (and the
 * failures) that no well-behaved proxy gives, and read back exactly what the client sent.
 * Also a compliant relaying SOCKS5 / HTTP proxy (any target, piped to a local upstream)
 * that records what it was asked, and a plain echo server.
 */
import * as net from 'node:net';

/** One connection accepted by a scripted proxy, with a buffered, consumable read side. */
export class ProxyConnection {
  private pending = Buffer.alloc(0);
  private readonly chunks: Buffer[] = [];
  private readonly wakers = new Set<() => void>();
  private forward: net.Socket | null = null;
  /** True once the client ended or closed the connection. */
  ended = false;
  /** Resolves when the connection is fully closed. */
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      if (this.forward) {
        this.forward.write(d);
        return;
      }
      this.pending = Buffer.concat([this.pending, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.forward?.end();
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      });
    });
  }

  /** Every byte the client sent so far, consumed or not. */
  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }

  private waitFor<T>(take: () => T | null, what: string, ms: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const value = take();
        if (value !== null) {
          done();
          resolve(value);
        } else if (this.ended) {
          done();
          reject(new Error(`connection ended while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(check);
      };
      this.wakers.add(check);
      check();
    });
  }

  /** Waits for the next `n` bytes and consumes them. */
  read(n: number, ms = 5000): Promise<Buffer> {
    return this.waitFor(
      () => {
        if (this.pending.length < n) return null;
        const out = this.pending.subarray(0, n);
        this.pending = this.pending.subarray(n);
        return Buffer.from(out);
      },
      `${n} bytes`,
      ms,
    );
  }

  /** Waits for `delimiter` and consumes everything up to and including it. */
  readUntil(delimiter: string, ms = 5000): Promise<Buffer> {
    return this.waitFor(
      () => {
        const at = this.pending.indexOf(delimiter, 0, 'latin1');
        if (at < 0) return null;
        const end = at + Buffer.byteLength(delimiter, 'latin1');
        const out = this.pending.subarray(0, end);
        this.pending = this.pending.subarray(end);
        return Buffer.from(out);
      },
      JSON.stringify(delimiter),
      ms,
    );
  }

  /** Writes bytes (a Buffer, a byte array, or a Latin-1 string). */
  write(data: Buffer | number[] | string): void {
    if (this.socket.destroyed) return;
    this.socket.write(toBuffer(data));
  }

  /**
   * Writes `data` in pieces of `size` bytes, `gapMs` apart, so that each piece travels in
   * its own TCP segment.
   */
  async writeInPieces(data: Buffer | number[] | string, size = 1, gapMs = 25): Promise<void> {
    const bytes = toBuffer(data);
    for (let i = 0; i < bytes.length; i += size) {
      this.write(bytes.subarray(i, i + size));
      await new Promise((r) => setTimeout(r, gapMs));
    }
  }

  /** Sends FIN (after `data`, if given). */
  end(data?: Buffer | number[] | string): void {
    if (this.socket.destroyed) return;
    if (data === undefined) this.socket.end();
    else this.socket.end(toBuffer(data));
  }

  /** Closes at once. */
  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Connects the client's side to `upstream` both ways: unread bytes first, then every
   * later byte; an end on either side is passed on.
   */
  pipeTo(upstream: net.Socket): void {
    this.forward = upstream;
    if (this.pending.length > 0) upstream.write(this.pending);
    this.pending = Buffer.alloc(0);
    upstream.on('data', (d: Buffer) => this.write(d));
    upstream.on('end', () => this.end());
    upstream.on('error', () => this.destroy());
    if (this.ended) upstream.end();
  }
}

function toBuffer(data: Buffer | number[] | string): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (typeof data === 'string') return Buffer.from(data, 'latin1');
  return Buffer.from(data);
}

/** A scripted proxy listening on loopback. */
export interface ScriptedProxy {
  readonly host: string;
  readonly port: number;
  /** Every connection accepted so far, in order. */
  readonly connections: ProxyConnection[];
  /** Errors thrown by the script (e.g. the client went away mid-script). */
  readonly scriptErrors: unknown[];
  /** Resolves with the accepted connection number `index` (0-based). */
  connection(index: number, ms?: number): Promise<ProxyConnection>;
  /** Closes every connection and stops listening. */
  close(): Promise<void>;
}

/**
 * Listens on `host` (default 127.0.0.1, port 0) and runs `script` for every accepted
 * connection.
 */
export async function startScriptedProxy(
  script: (conn: ProxyConnection, index: number) => Promise<void> | void,
  host = '127.0.0.1',
): Promise<ScriptedProxy> {
  const connections: ProxyConnection[] = [];
  const scriptErrors: unknown[] = [];
  const wakers = new Set<() => void>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const conn = new ProxyConnection(socket);
    const index = connections.length;
    connections.push(conn);
    for (const w of [...wakers]) w();
    Promise.resolve()
      .then(() => script(conn, index))
      .catch((err: unknown) => scriptErrors.push(err));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    host,
    port,
    connections,
    scriptErrors,
    connection(index, ms = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (connections.length > index) {
            clearTimeout(timer);
            wakers.delete(check);
            resolve(connections[index]);
          }
        };
        const timer = setTimeout(() => {
          wakers.delete(check);
          reject(new Error(`the proxy did not get connection #${index} within ${ms} ms`));
        }, ms);
        wakers.add(check);
        check();
      });
    },
    async close() {
      for (const c of connections) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ------------------------------------------------------------------------- SOCKS5

/** The client's greeting: `05 n methods…`. */
export async function readSocksGreeting(
  conn: ProxyConnection,
): Promise<{ raw: Buffer; version: number; methods: number[] }> {
  const head = await conn.read(2);
  const methods = await conn.read(head[1]);
  return { raw: Buffer.concat([head, methods]), version: head[0], methods: [...methods] };
}

/** The client's username/password sub-negotiation (RFC 1929): `01 ulen user plen pass`. */
export async function readSocksUserPass(
  conn: ProxyConnection,
): Promise<{ raw: Buffer; user: string; password: string }> {
  const head = await conn.read(2);
  const user = await conn.read(head[1]);
  const plen = await conn.read(1);
  const password = await conn.read(plen[0]);
  return {
    raw: Buffer.concat([head, user, plen, password]),
    user: user.toString('latin1'),
    password: password.toString('latin1'),
  };
}

/** A SOCKS5 request as the proxy received it. */
export interface SocksRequest {
  raw: Buffer;
  command: number;
  atyp: number;
  /** The address as text (IPv4 dotted, IPv6 compressed, or the name as sent). */
  host: string;
  port: number;
}

/** The client's request: `05 CMD 00 ATYP ADDR PORT`. */
export async function readSocksRequest(conn: ProxyConnection): Promise<SocksRequest> {
  const head = await conn.read(4);
  let addr: Buffer;
  let host: string;
  if (head[3] === 0x01) {
    addr = await conn.read(4);
    host = [...addr].join('.');
  } else if (head[3] === 0x04) {
    addr = await conn.read(16);
    host = ipv6Text(addr);
  } else if (head[3] === 0x03) {
    const len = await conn.read(1);
    const name = await conn.read(len[0]);
    addr = Buffer.concat([len, name]);
    host = name.toString('latin1');
  } else {
    throw new Error(`unknown ATYP ${head[3]}`);
  }
  const port = await conn.read(2);
  return {
    raw: Buffer.concat([head, addr, port]),
    command: head[1],
    atyp: head[3],
    host,
    port: port.readUInt16BE(0),
  };
}

function ipv6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** A SOCKS5 reply `VER REP RSV 01 BND.ADDR BND.PORT` (IPv4 bound address). */
export function socksReply(
  rep: number,
  options: { version?: number; rsv?: number; bndAddr?: string; bndPort?: number } = {},
): Buffer {
  const { version = 5, rsv = 0, bndAddr = '127.0.0.1', bndPort = 1234 } = options;
  const port = Buffer.alloc(2);
  port.writeUInt16BE(bndPort, 0);
  return Buffer.concat([
    Buffer.from([version, rep, rsv, 0x01]),
    Buffer.from(bndAddr.split('.').map(Number)),
    port,
  ]);
}

/** What a relaying proxy was asked for. */
export interface RelayLog {
  /** The targets asked for, as "host:port" (the host as sent: name, IPv4 or IPv6 text). */
  targets: string[];
  /** Parsed SOCKS requests or HTTP request heads, in order. */
  requests: Array<SocksRequest | HttpRequest>;
}

/**
 * A compliant no-auth SOCKS5 proxy script that accepts every CONNECT (any name or address)
 * and relays it to `upstream()` (a local server), recording the targets in `log`.
 */
export function socksRelay(
  upstream: () => { host: string; port: number },
  log: RelayLog,
): (conn: ProxyConnection) => Promise<void> {
  return async (conn) => {
    await readSocksGreeting(conn);
    conn.write([5, 0]);
    const req = await readSocksRequest(conn);
    log.requests.push(req);
    log.targets.push(`${req.host}:${req.port}`);
    const up = await connectUpstream(upstream());
    if (!up) {
      conn.write(socksReply(5));
      return;
    }
    conn.write(socksReply(0));
    conn.pipeTo(up);
  };
}

function connectUpstream(to: { host: string; port: number }): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const up = net.connect({ host: to.host, port: to.port, allowHalfOpen: true });
    up.once('connect', () => resolve(up));
    up.once('error', () => resolve(null));
  });
}

// ------------------------------------------------------------------------- HTTP

/** An HTTP request head as the proxy received it. */
export interface HttpRequest {
  raw: string;
  requestLine: string;
  /** Header lines as sent ("Name: value"), in order. */
  headerLines: string[];
  /** Headers by lower-case name (the last value wins). */
  headers: Record<string, string>;
}

/** Reads one request head (up to the empty line). */
export async function readHttpRequest(conn: ProxyConnection): Promise<HttpRequest> {
  const raw = (await conn.readUntil('\r\n\r\n')).toString('latin1');
  const lines = raw.slice(0, -4).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0)
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { raw, requestLine: lines[0], headerLines: lines.slice(1), headers };
}

/**
 * A compliant HTTP CONNECT proxy script (no authentication) that answers 200 and relays
 * to `upstream()`, recording the CONNECT targets in `log`.
 */
export function httpRelay(
  upstream: () => { host: string; port: number },
  log: RelayLog,
): (conn: ProxyConnection) => Promise<void> {
  return async (conn) => {
    const req = await readHttpRequest(conn);
    log.requests.push(req);
    log.targets.push(req.requestLine.split(' ')[1] ?? '');
    const up = await connectUpstream(upstream());
    if (!up) {
      conn.write('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    conn.write('HTTP/1.1 200 Connection established\r\n\r\n');
    conn.pipeTo(up);
  };
}

// ------------------------------------------------------------------------- echo

/** A loopback echo server that records who connected. */
export interface EchoServer {
  readonly host: string;
  readonly port: number;
  /** Remote addresses of the accepted connections, in order. */
  readonly accepted: string[];
  close(): Promise<void>;
}

/** Starts an echo server on `host` (port 0, or `port`). */
export async function startEchoServer(host = '127.0.0.1', port = 0): Promise<EchoServer> {
  const accepted: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    accepted.push(socket.remoteAddress ?? '');
    socket.pipe(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  return {
    host,
    port: address.port,
    accepted,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
