import type * as net from 'node:net';

/**
 * What a server hands to `incomingConnection` and what `setSocketDescriptor` accepts: the
 * accepted connection as Node holds it (Qt passes a `qintptr` descriptor). Node has no
 * public way to adopt an accepted descriptor by number without duplicating its state, so
 * the port passes the connection object itself; a plain number is accepted as well.
 */
export type NativeSocketHandle = net.Socket;

interface WithHandle {
  _handle?: { fd?: number } | null;
}

/**
 * The operating-system descriptor behind a Node socket or server, or -1. Node exposes it
 * only on the internal handle (`_handle.fd`, Unix); this is the one place that reads it.
 */
export function nativeDescriptor(target: net.Socket | net.Server | null | undefined): number {
  const fd = (target as unknown as WithHandle | null | undefined)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}
