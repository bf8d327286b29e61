import cluster from 'node:cluster';

import type { Invoice } from '../common/patterns.js';

/** What billing's cluster workers and their primary tell each other about invoices. */
export type InvoiceMessage =
  /** worker → primary: a new invoice, to relay to the other workers. */
  | { invoice: Invoice; seq: number }
  /** primary → worker: the invoice numbered `seq` has been sent to every other worker. */
  | { relayed: number }
  /** worker → primary: send me every invoice so far (a worker that starts). */
  | { invoicesWanted: true }
  /** primary → worker: invoices recorded by other workers. */
  | { invoices: Invoice[] };

export function isInvoiceMessage(m: unknown): m is InvoiceMessage {
  return (
    typeof m === 'object' &&
    m !== null &&
    ('invoice' in m || 'relayed' in m || 'invoicesWanted' in m || 'invoices' in m)
  );
}

/**
 * The invoices billing has recorded, in memory, one per order (an event delivered twice,
 * as acknowledged events may be, records one invoice).
 *
 * In a node:cluster each worker has its own memory, and the 'order.placed' event reaches
 * one worker while 'billing.invoices' may be answered by another. So a worker sends each
 * new invoice through the primary to the others, and `add` resolves once the primary has
 * passed it on: the gateway's acknowledged emit completes only then, so whichever worker
 * answers next lists it. A worker that starts later asks the primary for the invoices so
 * far. Replicas on other machines share nothing: each lists the invoices of the events it
 * received (a real billing service keeps them in a database).
 */
export class InvoiceBook {
  private readonly invoices = new Map<string, Invoice>();
  private readonly waiting = new Map<number, () => void>();
  private seq = 0;

  constructor() {
    if (!cluster.isWorker) return;
    process.on('message', (m: unknown) => {
      if (!isInvoiceMessage(m)) return;
      if ('invoices' in m) for (const i of m.invoices) this.invoices.set(i.orderId, i);
      if ('relayed' in m) {
        this.waiting.get(m.relayed)?.();
        this.waiting.delete(m.relayed);
      }
    });
    process.send!({ invoicesWanted: true } satisfies InvoiceMessage);
  }

  /** Records `invoice`; false if its order already has one. */
  async add(invoice: Invoice): Promise<boolean> {
    if (this.invoices.has(invoice.orderId)) return false;
    this.invoices.set(invoice.orderId, invoice);
    if (!cluster.isWorker) return true;
    const seq = ++this.seq;
    await new Promise<void>((resolve) => {
      this.waiting.set(seq, resolve);
      process.send!({ invoice, seq } satisfies InvoiceMessage);
    });
    return true;
  }

  list(): Invoice[] {
    return [...this.invoices.values()];
  }
}
