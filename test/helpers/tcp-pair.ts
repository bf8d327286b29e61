import {
  OpenModeFlag,
  SpecialAddress,
  type OpenMode,
  type QTcpServer,
  type QTcpSocket,
} from '../../lib/qtnetwork/index.js';
import type { Scope } from './qt-scope.js';
import { waitUntil } from './signals.js';

/** A listening server, a client connected to it, and the server's end of that connection. */
export interface TcpPair {
  server: QTcpServer;
  client: QTcpSocket;
  peer: QTcpSocket;
}

/**
 * Listens on 127.0.0.1 (a free port), connects a QTcpSocket to it with `mode` and takes the
 * accepted connection. Everything is tracked by `scope`, so `scope.dispose()` closes it all.
 */
export async function connectedPair(
  scope: Scope,
  mode: OpenMode = OpenModeFlag.ReadWrite,
): Promise<TcpPair> {
  const server = scope.server();
  if (!(await server.listen(SpecialAddress.LocalHost, 0))) {
    throw new Error(`listen failed: ${server.errorString()}`);
  }
  const client = scope.socket();
  client.connectToHost('127.0.0.1', server.serverPort(), mode);
  if (!(await client.waitForConnected(5000))) {
    throw new Error(`connect failed: ${client.errorString()}`);
  }
  if (!server.hasPendingConnections()) await server.waitForNewConnection(5000);
  await waitUntil(() => server.hasPendingConnections(), 5000, 'a pending connection');
  const peer = scope.take(server)!;
  return { server, client, peer };
}

/** Waits (bounded) until `socket` has at least `n` bytes buffered. */
export async function waitForBytes(socket: QTcpSocket, n: number, ms = 5000): Promise<void> {
  await waitUntil(() => socket.bytesAvailable() >= n, ms, `${n} bytes available`);
}
