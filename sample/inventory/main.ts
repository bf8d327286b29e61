/** The inventory service: a Nest microservice on a local socket (owner-only access). */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { ServerQt } from '../../lib/index.js';
import { announceReady, logLevels, runService } from '../common/ready.js';
import { InventoryController } from './inventory.controller.js';

@Module({ controllers: [InventoryController] })
class InventoryModule {}

runService('inventory', async () => {
  const name = process.env.INVENTORY_SOCKET ?? 'qt-sample-inventory';
  const strategy = new ServerQt({
    transport: 'local',
    name,
    socketAccess: ['user'],
    maxPendingConnections: 16,
    // Under systemd the socket unit owns the socket file and passes it in.
    socketActivation: true,
  });
  const app = await NestFactory.createMicroservice(InventoryModule, {
    strategy,
    logger: logLevels(),
  });
  await app.listen();
  const server = strategy.unwrap() as { fullServerName(): string };
  announceReady('inventory', app, server.fullServerName());
});
