/**
 * ClientQt's slot planning (lib/transport/client-parts.ts): how the connections' places
 * follow the addresses a name resolves to. Round-robin takes turns over the slots in order,
 * so a resolver that rotates its answers (dnsmasq does) must not reorder them.
 */
import { planSlots, type Slot } from '../../lib/transport/client-parts.js';
import type { QtEndpoint } from '../../lib/transport/options.js';

const endpoint: QtEndpoint = { host: 'billing.internal', port: 4000 };
const wanted = (...addresses: string[]): Array<{ endpoint: QtEndpoint; address: string }> =>
  addresses.map((address) => ({ endpoint, address }));
const addressesOf = (slots: readonly Slot[]): string[] => slots.map((s) => s.info.address);

describe('planSlots', () => {
  it('makes one slot per address and copy, and names the first copy of each address', () => {
    const plan = planSlots([], wanted('10.0.0.1', '10.0.0.2'), 2);
    expect(addressesOf(plan.next)).toEqual(['10.0.0.1', '10.0.0.1', '10.0.0.2', '10.0.0.2']);
    expect(plan.added.map((a) => a.first)).toEqual([true, false, true, false]);
    expect(plan.vanished).toEqual([]);
    expect(plan.next[0].targets).toEqual([
      { kind: 'tcp', host: '10.0.0.1', port: 4000, peerName: 'billing.internal' },
    ]);
  });

  it('keeps the slots (the same objects) in their order when the answers come rotated', () => {
    const first = planSlots([], wanted('10.0.0.1', '10.0.0.2', '10.0.0.3'), 1).next;
    const again = planSlots(first, wanted('10.0.0.3', '10.0.0.1', '10.0.0.2'), 1);
    expect(again.next).toEqual(first);
    expect(again.next.every((s, i) => s === first[i])).toBe(true);
    expect(again.added).toEqual([]);
    expect(again.vanished).toEqual([]);
  });

  it('appends new addresses after the kept ones and reports the vanished ones', () => {
    const first = planSlots([], wanted('10.0.0.1', '10.0.0.2', '10.0.0.3'), 1).next;
    const changed = planSlots(first, wanted('10.0.0.9', '10.0.0.3', '10.0.0.1'), 1);
    expect(addressesOf(changed.next)).toEqual(['10.0.0.1', '10.0.0.3', '10.0.0.9']);
    expect(changed.next[0]).toBe(first[0]);
    expect(changed.next[1]).toBe(first[2]);
    expect(addressesOf(changed.added.map((a) => a.slot))).toEqual(['10.0.0.9']);
    expect(addressesOf(changed.vanished)).toEqual(['10.0.0.2']);
  });
});
