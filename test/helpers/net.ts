import * as os from 'node:os';

/** True if this host has an IPv6 loopback interface (::1). */
export function hasIPv6Loopback(): boolean {
  return Object.values(os.networkInterfaces()).some((list) =>
    (list ?? []).some((i) => i.family === 'IPv6' && i.address === '::1'),
  );
}

/** The free-port helper of the sample and the benchmark, one for the whole project. */
export { freePort } from '../../sample/common/free-port.js';
