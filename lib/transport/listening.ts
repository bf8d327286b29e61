/** What ServerQt needs to listen: systemd's descriptor, access flags, the address. */
import * as dns from 'node:dns/promises';

import { LocalServerSocketOption, QHostAddress } from '../qtnetwork/index.js';

/** The first descriptor systemd passed to this process (sd_listen_fds), or null. */
export function systemdListenFd(): number | null {
  const count = Number(process.env.LISTEN_FDS ?? '0');
  const pid = process.env.LISTEN_PID;
  if (!Number.isInteger(count) || count < 1) return null;
  if (pid !== undefined && pid !== '' && Number(pid) !== process.pid) return null;
  return 3;
}

/** QLocalServer access flags for the `socketAccess` option. */
export function accessFlags(access: Array<'user' | 'group' | 'other' | 'world'>): number {
  let flags = 0;
  for (const a of access) {
    if (a === 'user') flags |= LocalServerSocketOption.UserAccessOption;
    if (a === 'group') flags |= LocalServerSocketOption.GroupAccessOption;
    if (a === 'other') flags |= LocalServerSocketOption.OtherAccessOption;
    if (a === 'world') flags |= LocalServerSocketOption.WorldAccessOption;
  }
  return flags;
}

/** The address to listen on: an address as given, or a host name's first address. */
export async function listenAddress(host: string): Promise<QHostAddress> {
  const literal = new QHostAddress(host);
  if (!literal.isNull()) return literal;
  const { address } = await dns.lookup(host);
  return new QHostAddress(address);
}
