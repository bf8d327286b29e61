/**
 * Peers for the differential suite: plain `node:net` servers on loopback TCP or on a Unix
 * socket path, shared by the Qt run and the port run of a scenario. Each records what every
 * connection received, so that the spec can append the peer's view ("peer: received ...")
 * to both event lists and compare it too.
 */
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';

/** What a peer does with each accepted connection. */
export type PeerBehaviour =
  /** Nothing: reads and records. */
  | { kind: 'idle' }
  /** Writes `data` at once, then ends its side (FIN) if `end`. */
  | { kind: 'send'; data: string; end: boolean }
  /** Writes back what it receives. */
  | { kind: 'echo' };

interface Connection {
  readonly socket: net.Socket;
  received: Buffer;
  closed: boolean;
}

export interface RecordingPeer {
  /** TCP port (0 for a Unix-socket peer). */
  readonly port: number;
  /** Unix socket path ('' for a TCP peer). */
  readonly path: string;
  /** Forgets the connections so far (call before a run). */
  reset(): void;
  /**
   * Waits (at most `ms`) until every connection since `reset()` has closed, then describes
   * each, in accept order: `peer: received "<data>"` (and `(still open)` if it did not close).
   */
  report(ms?: number): Promise<string[]>;
  close(): Promise<void>;
}

/** Starts a peer listening on 127.0.0.1 (port 0) or on the Unix socket `path`. */
export async function startPeer(
  behaviour: PeerBehaviour,
  where: { path: string } | { host: string } = { host: '127.0.0.1' },
): Promise<RecordingPeer> {
  let connections: Connection[] = [];
  const all = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const c: Connection = { socket, received: Buffer.alloc(0), closed: false };
    connections.push(c);
    all.add(socket);
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      c.received = Buffer.concat([c.received, d]);
      if (behaviour.kind === 'echo') socket.write(d);
    });
    // The other side ended: end ours too, so the connection closes.
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      c.closed = true;
      all.delete(socket);
    });
    if (behaviour.kind === 'send') {
      if (behaviour.end) socket.end(behaviour.data);
      else socket.write(behaviour.data);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in where) server.listen(where.path, () => resolve());
    else server.listen({ host: where.host, port: 0 }, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    path: 'path' in where ? where.path : '',
    reset: () => {
      connections = [];
    },
    async report(ms = 3000) {
      const deadline = Date.now() + ms;
      while (connections.some((c) => !c.closed) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      return connections.map(
        (c) =>
          `peer: received ${JSON.stringify(c.received.toString('utf8'))}${c.closed ? '' : ' (still open)'}`,
      );
    },
    async close() {
      for (const s of all) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port on 127.0.0.1 that nobody listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Why real Qt cannot run here, or null: /usr/bin/python3 must import PyQt5.QtNetwork. */
export function pyqt5MissingReason(python: string): string | null {
  const r = spawnSync(python, ['-c', 'import PyQt5.QtNetwork'], {
    timeout: 15000,
    encoding: 'utf8',
  });
  if (r.status === 0) return null;
  const detail = (r.stderr ?? '').trim().split('\n').pop() ?? '';
  return `${python} cannot import PyQt5.QtNetwork (Debian: apt-get install python3-pyqt5)${detail ? `: ${detail}` : ''}`;
}
