import type { ConfigService } from '@nestjs/config';

import type { QtTransportAsyncConfig, QtTransportOptions } from '../../lib/index.js';

/**
 * The gateway's clients, from the environment (the Nest way: through ConfigService):
 * - INVENTORY_SOCKET: the inventory service's local socket name or path;
 * - BILLING_HOST, BILLING_PORT: the billing service's TCP address (a name may resolve to
 *   several addresses: a Kubernetes headless Service, one per ready Pod);
 * - BILLING_BALANCING: how calls spread: `round-robin` (default), `least-pending`, or
 *   `first` (one connection, to the first address that connects);
 * - BILLING_CONNECTIONS: connections to each billing address (default 2). A cluster hands
 *   out connections, not requests: give it at least as many as it has workers;
 * - BILLING_RESOLVE_INTERVAL_MS: how often BILLING_HOST is resolved again, to find replicas
 *   that came or went (default 30000; also at once when a connection is lost);
 * - BILLING_PROXY: optional `socks5://host:port` or `http://host:port` to reach billing through;
 * - BILLING_TLS_CA: TLS to billing, checked against this CA (PEM file); with
 *   GATEWAY_TLS_CERT and GATEWAY_TLS_KEY the gateway presents its own certificate (mutual
 *   TLS); BILLING_TLS_NAME: the name billing's certificate must carry (default BILLING_HOST);
 * - REQUEST_TIMEOUT_MS: per-request timeout (default 5000).
 */
export function transportConfig(config: ConfigService): QtTransportAsyncConfig {
  const requestTimeout = Number(config.get<string>('REQUEST_TIMEOUT_MS') ?? '5000');
  const billing: QtTransportOptions = {
    transport: 'tcp',
    host: config.get<string>('BILLING_HOST') ?? '127.0.0.1',
    port: Number(config.get<string>('BILLING_PORT') ?? '4000'),
    socketOptions: { lowDelay: true, keepAlive: true },
    requestTimeout,
    codec: 'cbor',
    // Checked by the library (InvalidOptionError names a wrong value at start-up).
    loadBalancing: (config.get<string>('BILLING_BALANCING') ||
      'round-robin') as QtTransportOptions['loadBalancing'],
    connectionsPerEndpoint: Number(config.get<string>('BILLING_CONNECTIONS') || '2'),
    ...(config.get<string>('BILLING_RESOLVE_INTERVAL_MS')
      ? { resolveInterval: Number(config.get<string>('BILLING_RESOLVE_INTERVAL_MS')) }
      : {}),
    // 'order.placed' completes once billing has run its handler (the invoice is recorded),
    // not merely once it is written; unacknowledged events go out again after a reconnect.
    acknowledgedEvents: true,
  };
  const ca = config.get<string>('BILLING_TLS_CA');
  if (ca) {
    const certificate = config.get<string>('GATEWAY_TLS_CERT');
    billing.tls = {
      ca,
      ...(certificate
        ? { certificate, privateKey: config.get<string>('GATEWAY_TLS_KEY') ?? '' }
        : {}),
      peerName: config.get<string>('BILLING_TLS_NAME') || undefined,
    };
  }
  const proxy = config.get<string>('BILLING_PROXY');
  if (proxy) {
    const url = new URL(proxy);
    billing.proxy = {
      type: url.protocol === 'http:' ? 'http' : 'socks5',
      hostName: url.hostname,
      port: Number(url.port),
      user: decodeURIComponent(url.username) || undefined,
      password: decodeURIComponent(url.password) || undefined,
    };
  }
  return {
    clients: {
      INVENTORY: {
        transport: 'local',
        name: config.get<string>('INVENTORY_SOCKET') ?? 'qt-sample-inventory',
        requestTimeout,
        readBufferSize: 1024 * 1024,
      },
      BILLING: billing,
    },
  };
}
