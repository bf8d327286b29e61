import { Controller, Logger } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';

import { Patterns, type Invoice, type Order } from '../common/patterns.js';

const PRICES: Record<string, number> = { widget: 4.5, gizmo: 120, sprocket: 0.75 };

/** Prices and invoices, answered over TCP. */
@Controller()
export class BillingController {
  private readonly logger = new Logger('billing');
  private readonly invoices: Invoice[] = [];

  @MessagePattern(Patterns.billingQuote)
  quote(@Payload() request: { sku: string; quantity: number }): {
    unitPrice: number;
    total: number;
  } {
    const unitPrice = PRICES[request.sku] ?? 0;
    return { unitPrice, total: Math.round(unitPrice * request.quantity * 100) / 100 };
  }

  @MessagePattern(Patterns.billingInvoices)
  list(): Invoice[] {
    return this.invoices;
  }

  @EventPattern(Patterns.orderPlaced)
  placed(@Payload() order: Order): void {
    const unitPrice = PRICES[order.sku] ?? 0;
    const invoice = {
      orderId: order.id,
      sku: order.sku,
      quantity: order.quantity,
      total: Math.round(unitPrice * order.quantity * 100) / 100,
    };
    this.invoices.push(invoice);
    this.logger.log(`invoice for order ${order.id}: ${invoice.total}`);
  }
}
