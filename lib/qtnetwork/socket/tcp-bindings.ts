import { ConversionModeFlag, QHostAddress } from '../kernel/qhost-address.js';
import { BindFlag, NetworkLayerProtocol } from '../kernel/socket-enums.js';

/**
 * The local ends that this process's TCP sockets have bound with `QAbstractSocket.bind`,
 * so that `bind` can apply Qt's sharing rule at once, as Qt does.
 *
 * Qt binds a TCP client socket in the kernel inside `bind()`: a second socket on the same
 * port fails there with AddressInUseError unless both asked for ShareAddress or
 * ReuseAddressHint (SO_REUSEADDR on Linux). Node binds a TCP client only when it connects,
 * and libuv always sets SO_REUSEADDR, so neither the time nor the rule is the kernel's
 * here. This table keeps the rule between the sockets of this process; a port held by
 * another program is still found only by the connect (see docs/qt-differences.md,
 * "Binding a client socket").
 */
export interface TcpBinding {
  readonly address: QHostAddress;
  readonly port: number;
  /** The bind asked for SO_REUSEADDR (ShareAddress or ReuseAddressHint). */
  readonly shared: boolean;
  /** The socket's engine: a binding whose socket was dropped without closing no longer counts. */
  readonly owner: WeakRef<object>;
}

const bindings = new Set<TcpBinding>();

/** True if `mode` (BindFlag values) asks for SO_REUSEADDR, as Qt decides on Unix. */
export function sharesAddress(mode: number): boolean {
  return (mode & (BindFlag.ShareAddress | BindFlag.ReuseAddressHint)) !== 0;
}

/**
 * Records a binding of `address`:`port`; null if a binding of this process already holds
 * that port on an overlapping address and the two may not share it. Port 0 (the system
 * picks one when connecting) never conflicts.
 */
export function claimTcpBinding(
  owner: object,
  address: QHostAddress,
  port: number,
  mode: number,
): TcpBinding | null {
  const binding: TcpBinding = {
    address: new QHostAddress(address),
    port,
    shared: sharesAddress(mode),
    owner: new WeakRef(owner),
  };
  if (port !== 0) {
    for (const other of bindings) {
      if (other.owner.deref() === undefined) {
        bindings.delete(other);
        continue;
      }
      if (
        other.port === port &&
        !(other.shared && binding.shared) &&
        overlap(other.address, binding.address)
      ) {
        return null;
      }
    }
  }
  bindings.add(binding);
  return binding;
}

/** Gives a binding up (the socket's local end is gone). */
export function releaseTcpBinding(binding: TcpBinding): void {
  bindings.delete(binding);
}

/** Which families an address takes connections of: 4, 6, or both (a wildcard). */
function families(a: QHostAddress): { v4: boolean; v6: boolean; wildcard: boolean } {
  switch (a.protocol()) {
    case NetworkLayerProtocol.AnyIPProtocol:
      return { v4: true, v6: true, wildcard: true };
    case NetworkLayerProtocol.IPv4Protocol:
      return { v4: true, v6: false, wildcard: a.toIPv4Address() === 0 };
    default:
      // Qt binds AnyIPv6 ("::") IPv6-only.
      return { v4: false, v6: true, wildcard: a.toNodeAddress() === '::' };
  }
}

/** Whether two local addresses take connections on some address in common (as Linux decides). */
function overlap(a: QHostAddress, b: QHostAddress): boolean {
  const fa = families(a);
  const fb = families(b);
  if (fa.wildcard || fb.wildcard) return (fa.v4 && fb.v4) || (fa.v6 && fb.v6);
  return a.isEqual(b, ConversionModeFlag.StrictConversion);
}
