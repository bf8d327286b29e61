import { Controller, Get, Inject } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';

import { QtHealthIndicator, type QtTransportOptions } from '../../lib/index.js';
import { transportConfig } from './transport-config.js';

/**
 * GET /health: 200 while inventory (local socket) and billing (TCP) each answer a ping —
 * a frame the server answers without running a handler — and 503 with Qt's error text and
 * code for the one that does not. Kubernetes' readiness probe asks here.
 */
@Controller('health')
export class HealthController {
  private readonly inventory: QtTransportOptions;
  private readonly billing: QtTransportOptions;

  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(QtHealthIndicator) private readonly qt: QtHealthIndicator,
    @Inject(ConfigService) config: ConfigService,
  ) {
    const clients = transportConfig(config).clients ?? {};
    this.inventory = clients.INVENTORY;
    this.billing = clients.BILLING;
  }

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.qt.pingCheck('inventory', { ...this.inventory, timeout: 1000 }),
      () => this.qt.pingCheck('billing', { ...this.billing, timeout: 1000 }),
    ]);
  }
}
