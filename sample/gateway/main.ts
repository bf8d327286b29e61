/** The gateway: an HTTP service that calls inventory (local socket) and billing (TCP). */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';

import { QtHealthIndicator, QtTransportModule } from '../../lib/index.js';
import { announceReady, logLevels, runService } from '../common/ready.js';
import { GatewayController } from './gateway.controller.js';
import { HealthController } from './health.controller.js';
import { transportConfig } from './transport-config.js';

@Module({
  imports: [
    ConfigModule.forRoot({ ignoreEnvFile: true }),
    QtTransportModule.forRootAsync({
      clients: ['INVENTORY', 'BILLING'],
      imports: [ConfigModule],
      inject: [ConfigService],
      useFactory: (config: ConfigService) => transportConfig(config),
    }),
    TerminusModule.forRoot({ logger: false }),
  ],
  controllers: [GatewayController, HealthController],
  providers: [QtHealthIndicator],
})
class GatewayModule {}

runService('gateway', async () => {
  const app = await NestFactory.create(GatewayModule, { logger: logLevels() });
  // npm start -- --verbose: an HTTP span per request, parent of the calls it makes.
  if (process.env.SAMPLE_TRACE === '1') {
    app.useGlobalInterceptors((await import('../common/trace-tree.js')).httpSpanInterceptor());
  }
  const host = process.env.GATEWAY_HOST ?? '127.0.0.1';
  const port = Number(process.env.GATEWAY_PORT ?? '8080');
  await app.listen(port, host);
  const address = app.getHttpServer().address() as { address: string; port: number };
  announceReady('gateway', app, `http://${address.address}:${address.port}`);
});
