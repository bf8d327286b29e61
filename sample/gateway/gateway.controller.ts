import { randomUUID } from 'node:crypto';

import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  HttpException,
  Inject,
  Param,
  Post,
  Query,
} from '@nestjs/common';
import { firstValueFrom, lastValueFrom, toArray, type Observable } from 'rxjs';

import type { ClientQt } from '../../lib/index.js';
import { Patterns, type Invoice, type Order } from '../common/patterns.js';

/** An RpcException from a service becomes the HTTP error it names (or 502). */
async function call<T>(source: Observable<T>): Promise<T> {
  try {
    return await firstValueFrom(source);
  } catch (err) {
    const e = err as { status?: unknown; message?: unknown; code?: unknown };
    const status = typeof e.status === 'number' ? e.status : 502;
    const message = typeof e.message === 'string' ? e.message : 'The service failed';
    throw new HttpException({ statusCode: status, message, code: e.code }, status);
  }
}

/** The REST API: each route calls the services over the Qt transport. */
@Controller()
export class GatewayController {
  constructor(
    @Inject('INVENTORY') private readonly inventory: ClientQt,
    @Inject('BILLING') private readonly billing: ClientQt,
  ) {}

  /** Stock from inventory (local socket) and the price from billing (TCP), in parallel. */
  @Get('products/:sku')
  async product(
    @Param('sku') sku: string,
  ): Promise<{ sku: string; inStock: number; unitPrice: number }> {
    const [stock, quote] = await Promise.all([
      call(this.inventory.send<{ inStock: number }>(Patterns.inventoryCheck, sku)),
      call(this.billing.send<{ unitPrice: number }>(Patterns.billingQuote, { sku, quantity: 1 })),
    ]);
    return { sku, inStock: stock.inStock, unitPrice: quote.unitPrice };
  }

  /** Reserves stock (a request), then tells both services the order is placed (an event). */
  @Post('orders')
  @HttpCode(201)
  async order(@Body() body: { sku?: unknown; quantity?: unknown }): Promise<unknown> {
    if (
      typeof body?.sku !== 'string' ||
      !Number.isInteger(body.quantity) ||
      (body.quantity as number) < 1
    ) {
      throw new BadRequestException('Send { "sku": string, "quantity": a positive integer }');
    }
    const order: Order = {
      id: randomUUID().slice(0, 8),
      sku: body.sku,
      quantity: body.quantity as number,
    };
    const reservation = await call(
      this.inventory.send<{ reserved: number; left: number }>(Patterns.inventoryReserve, order),
    );
    const quote = await call(
      this.billing.send<{ total: number }>(Patterns.billingQuote, {
        sku: order.sku,
        quantity: order.quantity,
      }),
    );
    await Promise.all([
      lastValueFrom(this.inventory.emit(Patterns.orderPlaced, order), { defaultValue: undefined }),
      lastValueFrom(this.billing.emit(Patterns.orderPlaced, order), { defaultValue: undefined }),
    ]);
    return { order, total: quote.total, stockLeft: reservation.left };
  }

  /** A streamed reply: inventory answers with one value per product. */
  @Get('stock')
  stock(): Promise<Array<{ sku: string; inStock: number }>> {
    return lastValueFrom(
      this.inventory
        .send<{ sku: string; inStock: number }>(Patterns.inventoryLevels, {})
        .pipe(toArray()),
    );
  }

  @Get('invoices')
  invoices(): Promise<Invoice[]> {
    return call(this.billing.send<Invoice[]>(Patterns.billingInvoices, {}));
  }

  /**
   * Which billing processes answer `calls` requests in a row (8 by default, at most 100):
   * the cluster workers of one machine, or the replicas (Pods) behind a headless Service.
   */
  @Get('billing/workers')
  async billingWorkers(@Query('calls') calls?: string): Promise<{
    calls: number;
    answeredBy: Array<{ host: string; pid: number; calls: number }>;
  }> {
    const n = calls === undefined ? 8 : Number(calls);
    if (!Number.isInteger(n) || n < 1 || n > 100) {
      throw new BadRequestException('calls: an integer from 1 to 100');
    }
    const answeredBy = new Map<string, { host: string; pid: number; calls: number }>();
    for (let i = 0; i < n; i++) {
      const { host, pid } = await call(
        this.billing.send<{ host: string; pid: number }>(Patterns.billingWorker, {}),
      );
      const seen = answeredBy.get(`${host}/${pid}`) ?? { host, pid, calls: 0 };
      seen.calls++;
      answeredBy.set(`${host}/${pid}`, seen);
    }
    return { calls: n, answeredBy: [...answeredBy.values()] };
  }
}
