/** The message patterns the sample's services share (one place, so they cannot drift apart). */
export const Patterns = {
  inventoryCheck: 'inventory.check',
  inventoryReserve: 'inventory.reserve',
  inventoryLevels: 'inventory.levels',
  billingQuote: 'billing.quote',
  billingInvoices: 'billing.invoices',
  billingWorker: 'billing.worker',
  orderPlaced: 'order.placed',
} as const;

/** An order as the gateway accepts it and the services see it. */
export interface Order {
  id: string;
  sku: string;
  quantity: number;
}

/** What billing keeps for each placed order. */
export interface Invoice {
  orderId: string;
  sku: string;
  quantity: number;
  total: number;
}
