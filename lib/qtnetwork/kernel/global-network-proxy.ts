import type { QNetworkProxy } from './qnetwork-proxy.js';
import type { QNetworkProxyFactory } from './qnetwork-proxy-factory.js';

/**
 * The application-wide proxy settings (Qt's QGlobalNetworkProxy): an application proxy or
 * a factory, never both. Kept apart so QNetworkProxy and QNetworkProxyFactory can share it
 * without importing each other at load time.
 */
export const globalNetworkProxy: {
  applicationProxy: QNetworkProxy | null;
  factory: QNetworkProxyFactory | null;
  useSystem: boolean;
  /** Set by QNetworkProxyFactory: the first proxy for an empty query. */
  resolveForEmptyQuery: (() => QNetworkProxy) | null;
} = { applicationProxy: null, factory: null, useSystem: false, resolveForEmptyQuery: null };
