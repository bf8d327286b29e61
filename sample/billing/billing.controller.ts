import { hostname } from 'node:os';

import { Controller, Logger } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';

import { Patterns, type Invoice, type Order } from '../common/patterns.js';
import { InvoiceBook } from './invoices.js';

const PRICES: Record<string, number> = { widget: 4.5, gizmo: 120, sprocket: 0.75 };

/** Prices and invoices, answered over TCP. */
@Controller()
export class BillingController {
  private readonly logger = new Logger('billing');
  private readonly invoices = new InvoiceBook();

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
    return this.invoices.list();
  }

  /** Which process answered: shows how calls spread over cluster workers and replicas. */
  @MessagePattern(Patterns.billingWorker)
  worker(): { host: string; pid: number } {
    return { host: hostname(), pid: process.pid };
  }

  /** Acknowledged by the gateway's client: the ack is sent once this has resolved. */
  @EventPattern(Patterns.orderPlaced)
  async placed(@Payload() order: Order): Promise<void> {
    const unitPrice = PRICES[order.sku] ?? 0;
    const invoice = {
      orderId: order.id,
      sku: order.sku,
      quantity: order.quantity,
      total: Math.round(unitPrice * order.quantity * 100) / 100,
    };
    if (await this.invoices.add(invoice)) {
      this.logger.log(`invoice for order ${order.id}: ${invoice.total}`);
    }
  }
}
