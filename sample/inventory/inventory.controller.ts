import { Controller, Logger } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { from, type Observable } from 'rxjs';

import type { QtContext } from '../../lib/index.js';
import { Patterns, type Order } from '../common/patterns.js';

/** Stock levels, answered over a local socket. */
@Controller()
export class InventoryController {
  private readonly logger = new Logger('inventory');
  private readonly stock = new Map<string, number>([
    ['widget', 12],
    ['gizmo', 2],
    ['sprocket', 40],
  ]);
  private readonly reserved = new Map<string, number>();

  @MessagePattern(Patterns.inventoryCheck)
  check(@Payload() sku: string): { sku: string; inStock: number } {
    return { sku, inStock: this.available(sku) };
  }

  /** Reserves stock for an order; too little stock is an RpcException the gateway maps to 409. */
  @MessagePattern(Patterns.inventoryReserve)
  reserve(@Payload() order: Order, @Ctx() ctx: QtContext): { reserved: number; left: number } {
    const left = this.available(order.sku);
    if (!this.stock.has(order.sku)) {
      throw new RpcException({ status: 404, message: `Unknown product "${order.sku}"` });
    }
    if (order.quantity > left) {
      throw new RpcException({
        status: 409,
        message: `Only ${left} ${order.sku} in stock, ${order.quantity} requested`,
      });
    }
    this.reserved.set(order.sku, (this.reserved.get(order.sku) ?? 0) + order.quantity);
    this.logger.log(`reserved ${order.quantity} ${order.sku} (request ${String(ctx.getId())})`);
    return { reserved: order.quantity, left: left - order.quantity };
  }

  /** A streamed reply: one value per product, each its own reply frame. */
  @MessagePattern(Patterns.inventoryLevels)
  levels(): Observable<{ sku: string; inStock: number }> {
    return from([...this.stock.keys()].map((sku) => ({ sku, inStock: this.available(sku) })));
  }

  /** The event: a placed order leaves the stock for good. */
  @EventPattern(Patterns.orderPlaced)
  placed(@Payload() order: Order): void {
    this.stock.set(order.sku, (this.stock.get(order.sku) ?? 0) - order.quantity);
    this.reserved.set(order.sku, (this.reserved.get(order.sku) ?? 0) - order.quantity);
    this.logger.log(`order ${order.id} placed: ${order.quantity} ${order.sku} shipped`);
  }

  private available(sku: string): number {
    return (this.stock.get(sku) ?? 0) - (this.reserved.get(sku) ?? 0);
  }
}
