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

/**
 * The descriptor behind a `dgram` socket, or -1. Node keeps the handle in the socket's
 * internal state object (a symbol-keyed property, `handle.fd` on Unix); the public
 * `_handle` accessor is deprecated (DEP0112) and warns, so it is not used.
 */
export function nativeDatagramDescriptor(target: object | null | undefined): number {
  if (!target) return -1;
  for (const key of Object.getOwnPropertySymbols(target)) {
    const state = (target as Record<symbol, unknown>)[key] as { handle?: { fd?: unknown } } | null;
    if (state && typeof state === 'object' && 'handle' in state) {
      const fd = state.handle?.fd;
      return typeof fd === 'number' && fd >= 0 ? fd : -1;
    }
  }
  return -1;
}
