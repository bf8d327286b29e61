/** The billing app: a Nest microservice on TCP (one process, or one cluster worker). */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { ServerQt } from '../../lib/index.js';
import { announceReady, logLevels, runService } from '../common/ready.js';
import { BillingController } from './billing.controller.js';

@Module({ controllers: [BillingController] })
class BillingModule {}

export function startBilling(closeTimeout: number): void {
  runService('billing', async () => {
    const host = process.env.BILLING_HOST ?? '127.0.0.1';
    const port = Number(process.env.BILLING_PORT ?? '4000');
    // TLS when a certificate is configured (sample/deploy/tls/): BILLING_TLS_CERT and
    // BILLING_TLS_KEY (PEM files); with BILLING_TLS_CLIENT_CA as well, clients must present a
    // certificate from that CA (mutual TLS).
    const cert = process.env.BILLING_TLS_CERT;
    const clientCa = process.env.BILLING_TLS_CLIENT_CA;
    const strategy = new ServerQt({
      transport: 'tcp',
      host,
      port,
      maxPendingConnections: 32,
      socketOptions: { lowDelay: true, keepAlive: true },
      socketActivation: true,
      // On SIGTERM (a rolling update, systemctl stop) app.close() drains for this long at
      // most: clients are told, what is in flight is answered, then connections close.
      closeTimeout,
      ...(cert
        ? {
            tls: {
              certificate: cert,
              privateKey: process.env.BILLING_TLS_KEY ?? '',
              ...(clientCa ? { ca: clientCa, verifyMode: 'verify' as const } : {}),
            },
          }
        : {}),
    });
    const app = await NestFactory.createMicroservice(BillingModule, {
      strategy,
      logger: logLevels(),
    });
    await app.listen();
    const server = strategy.unwrap() as {
      serverAddress(): { toString(): string };
      serverPort(): number;
    };
    announceReady(
      'billing',
      app,
      `${server.serverAddress().toString()}:${server.serverPort()}${cert ? (clientCa ? ' (mutual TLS)' : ' (TLS)') : ''}`,
    );
  });
}
