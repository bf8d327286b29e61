// The UDP socket's pure helpers: payload limits and truncation, IPv4 forms, interfaces.
import * as os from 'node:os';

import { QHostAddress } from '../kernel/qhost-address.js';
import { NetworkLayerProtocol } from '../kernel/socket-enums.js';

/** The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header). */
const MAX_IPV4_PAYLOAD = 65507;
/** The largest UDP payload over IPv6 without jumbograms: 65535 - 8 (UDP header). */
const MAX_IPV6_PAYLOAD = 65527;

/** The largest payload to `nodeAddress` (IPv4 and IPv4-mapped addresses contain a dot). */
export function maxPayload(nodeAddress: string): number {
  return nodeAddress.includes('.') ? MAX_IPV4_PAYLOAD : MAX_IPV6_PAYLOAD;
}

/** At most `maxSize` bytes of `data`; a truncated copy, so the rest is not kept alive. */
export function truncate(data: Buffer, maxSize: number): Buffer {
  return data.length > maxSize ? Buffer.from(data.subarray(0, maxSize)) : data;
}

/** The dotted IPv4 text of an IPv4 or IPv4-mapped address; null for other addresses. */
export function ipv4Text(address: QHostAddress): string | null {
  if (address.protocol() === NetworkLayerProtocol.IPv4Protocol) return address.toString();
  if (address.protocol() !== NetworkLayerProtocol.IPv6Protocol) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address.toString());
  return mapped ? mapped[1] : null;
}

/**
 * What Node takes for an interface: for IPv4 one of its IPv4 addresses, for IPv6 `::%name`.
 * `iface` is an interface name or one of its addresses; null if no such interface.
 */
export function resolveInterface(
  iface: string | QHostAddress,
  family: 4 | 6,
): { node: string; name: string } | null {
  const interfaces = os.networkInterfaces();
  const asAddress = iface instanceof QHostAddress ? iface : new QHostAddress(iface);
  let name: string | undefined;
  if (asAddress.isNull()) {
    name = typeof iface === 'string' && interfaces[iface] ? iface : undefined;
  } else {
    name = Object.keys(interfaces).find((n) =>
      (interfaces[n] ?? []).some((i) => new QHostAddress(i.address).isEqual(asAddress)),
    );
  }
  if (name === undefined) return null;
  if (family === 6) return { node: `::%${name}`, name };
  const v4 = (interfaces[name] ?? []).find((i) => i.family === 'IPv4');
  return v4 ? { node: v4.address, name } : null;
}
