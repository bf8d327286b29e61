/** The billing service: a Nest microservice on TCP. */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { ServerQt } from '../../lib/index.js';
import { announceReady, runService } from '../common/ready.js';
import { BillingController } from './billing.controller.js';

@Module({ controllers: [BillingController] })
class BillingModule {}

runService('billing', async () => {
  const host = process.env.BILLING_HOST ?? '127.0.0.1';
  const port = Number(process.env.BILLING_PORT ?? '4000');
  const strategy = new ServerQt({
    transport: 'tcp',
    host,
    port,
    maxPendingConnections: 32,
    socketOptions: { lowDelay: true, keepAlive: true },
    socketActivation: true,
  });
  const app = await NestFactory.createMicroservice(BillingModule, { strategy });
  await app.listen();
  const server = strategy.unwrap() as {
    serverAddress(): { toString(): string };
    serverPort(): number;
  };
  announceReady('billing', app, `${server.serverAddress().toString()}:${server.serverPort()}`);
});
