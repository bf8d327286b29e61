/**
 * Local peers for socket tests: plain `node:net` servers on loopback that play the part of
 * the network services Qt's own autotests talk to (IMAP, HTTP, FTP), a port nobody listens
 * on, and a "black hole" whose SYNs go unanswered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';

/** A plain `net` server on loopback whose accepted connections the test can take in order. */
export interface NetPeer {
  readonly host: string;
  readonly port: number;
  readonly server: net.Server;
  /** Every connection accepted so far. */
  readonly sockets: net.Socket[];
  /** Resolves with the next accepted connection not yet taken; rejects after `ms`. */
  nextConnection(ms?: number): Promise<net.Socket>;
  /** Destroys every accepted connection and stops listening. */
  close(): Promise<void>;
}

/**
 * Listens on `host` (port 0) and calls `onConnection` for each accepted connection, as soon
 * as it is accepted (before any data is read).
 */
export async function startNetPeer(
  host: string,
  onConnection?: (socket: net.Socket) => void,
): Promise<NetPeer> {
  const sockets: net.Socket[] = [];
  const queue: net.Socket[] = [];
  const waiters: Array<(s: net.Socket) => void> = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => undefined);
    sockets.push(socket);
    onConnection?.(socket);
    const waiter = waiters.shift();
    if (waiter) waiter(socket);
    else queue.push(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  return {
    host,
    port: address.port,
    server,
    sockets,
    nextConnection(ms = 5000) {
      const ready = queue.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(take);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no connection to the ${host} peer within ${ms} ms`));
        }, ms);
        const take = (s: net.Socket): void => {
          clearTimeout(timer);
          resolve(s);
        };
        waiters.push(take);
      });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Collects what `socket` receives until the peer ends its side (or the connection closes),
 * then resolves with all of it. Rejects after `ms`.
 */
export function receiveUntilEnd(socket: net.Socket, ms = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(
      () => reject(new Error(`peer did not see the end of the stream within ${ms} ms`)),
      ms,
    );
    const done = (): void => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    };
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('end', done);
    socket.once('close', done);
  });
}

/** Resolves once `socket` has received at least `n` bytes in total; with all of them. */
export function receiveBytes(socket: net.Socket, n: number, ms = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(
      () => reject(new Error(`peer received ${size} of ${n} bytes within ${ms} ms`)),
      ms,
    );
    const onData = (d: Buffer): void => {
      chunks.push(d);
      size += d.length;
      if (size >= n) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    socket.on('data', onData);
  });
}

/** A port on `host` that nobody listens on (it was free a moment ago). */
export async function closedPort(host: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ------------------------------------------------------------------ fake services

/** The greeting of the fake IMAP server (Qt's tests read the real one from their server). */
export const IMAP_GREETING = '* OK [CAPABILITY IMAP4rev1] qt-transport test IMAP server ready\r\n';

/**
 * A minimal IMAP server on `socket`: sends the greeting, answers `<tag> NOOP` (and any other
 * command) with `<tag> OK Completed`, and `<tag> LOGOUT` with a BYE line, the tagged OK and
 * the end of the connection.
 */
export function serveImap(socket: net.Socket): void {
  socket.write(IMAP_GREETING);
  let pending = '';
  socket.on('data', (d: Buffer) => {
    pending += d.toString('latin1');
    let end: number;
    while ((end = pending.indexOf('\r\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const [tag, command = ''] = line.split(' ');
      if (command.toUpperCase() === 'LOGOUT') {
        socket.end(`* BYE LOGOUT received\r\n${tag} OK Completed\r\n`);
        return;
      }
      socket.write(`${tag} OK Completed\r\n`);
    }
  });
}

/** The body the fake HTTP server sends. */
export const HTTP_BODY = `<html><body>${'qt'.repeat(100)}</body></html>\n`;

/** The whole reply of the fake HTTP server, headers and body. */
export function httpReply(keepAlive: boolean): string {
  return (
    `HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: ${HTTP_BODY.length}\r\n` +
    `${keepAlive ? 'Connection: keep-alive\r\n' : ''}\r\n${HTTP_BODY}`
  );
}

/**
 * A minimal HTTP/1.0 server on `socket`: answers each request (ended by an empty line) with
 * 200 and HTTP_BODY; closes after the reply unless the request asked for keep-alive.
 */
export function serveHttp(socket: net.Socket): void {
  let pending = '';
  socket.on('data', (d: Buffer) => {
    pending += d.toString('latin1');
    let end: number;
    while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
      const request = pending.slice(0, end);
      pending = pending.slice(end + 4);
      const keepAlive = /\r\nConnection: keep-alive/i.test(request);
      const reply = httpReply(keepAlive);
      if (keepAlive) socket.write(reply);
      else {
        socket.end(reply);
        return;
      }
    }
  });
}

/** The greeting of the fake FTP server (vsFTPd's form, as Qt's atEnd test expects). */
export const FTP_GREETING = '220 (vsFTPd 2.3.5)\r\n';

/** A minimal FTP control connection: greeting; QUIT is answered with 221 and a close. */
export function serveFtp(socket: net.Socket): void {
  socket.write(FTP_GREETING);
  let pending = '';
  socket.on('data', (d: Buffer) => {
    pending += d.toString('latin1');
    let end: number;
    while ((end = pending.indexOf('\r\n')) >= 0) {
      const line = pending.slice(0, end).toUpperCase();
      pending = pending.slice(end + 2);
      if (line === 'QUIT') {
        socket.end('221 Goodbye.\r\n');
        return;
      }
      socket.write('500 Unknown command.\r\n');
    }
  });
}

// ------------------------------------------------------------------ black hole

/** A listening port whose accept queue is full, so that new connects get no SYN-ACK. */
export interface Blackhole {
  readonly host: string;
  readonly port: number;
  /** Kills the listener process and closes the connections that fill its queue. */
  close(): void;
}

const BLACKHOLE_LISTENER = `
const net = require('node:net');
const server = net.createServer();
server.listen({ host: process.argv[1], port: 0, backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n', () => {
    // Block the event loop: Node never calls accept(), the kernel's queue stays full.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
    process.exit(0);
  });
});
`;

function tryConnect(host: string, port: number, ms: number): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(null);
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

/**
 * Starts a listener in a child process that never accepts (its event loop is blocked), with
 * a backlog of 1, and fills its accept queue with completed connections. Linux then drops
 * further SYNs, so a connect to `port` hangs in ConnectingState, as Qt's test server port
 * that "drops packets" does. Throws if the connects cannot be made to hang.
 */
export async function startBlackhole(host: string): Promise<Blackhole> {
  const child: ChildProcess = spawn(process.execPath, ['-e', BLACKHOLE_LISTENER, host], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const fillers: net.Socket[] = [];
  const close = (): void => {
    for (const f of fillers) f.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('black hole listener did not start')), 5000);
      child.once('error', reject);
      child.stdout!.once('data', (d: Buffer) => {
        clearTimeout(timer);
        resolve(Number(String(d).trim()));
      });
    });
    for (let i = 0; i < 8; i++) {
      const filler = await tryConnect(host, port, 300);
      if (filler === null) return { host, port, close };
      fillers.push(filler);
    }
    throw new Error(`connects to the black hole on ${host} never started to hang`);
  } catch (err) {
    close();
    throw err;
  }
}
