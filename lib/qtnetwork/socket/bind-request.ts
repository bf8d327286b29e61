import { checkPort } from '../core/check-port.js';
import { QHostAddress, SpecialAddress } from '../kernel/qhost-address.js';
import { BindFlag, type BindMode } from '../kernel/socket-enums.js';

/** What `QAbstractSocket.bind` takes as the address in its address-first form. */
export type BindAddress = QHostAddress | SpecialAddress | string;

/** A `bind` call in the address-first form, whichever overload it came from. */
export interface BindRequest {
  address: BindAddress;
  port: number;
  mode: BindMode;
}

/** Every BindFlag bit: a larger number after a first argument of 0 cannot be a mode. */
const ALL_BIND_FLAGS =
  BindFlag.ShareAddress | BindFlag.DontShareAddress | BindFlag.ReuseAddressHint;

/**
 * Reads the arguments of `QAbstractSocket.bind`, Qt's two overloads: `bind(port?, mode?)`,
 * which binds Any, and `bind(address, port?, mode?)`. A number in first place is the port,
 * as in Qt (`QUdpSocket.bind(45454)` is the usual way to receive on port 45454), except
 * where it can only be a SpecialAddress (a TypeScript enum value is a plain number): 1 to 6
 * (Broadcast to AnyIPv4, so `bind(SpecialAddress.AnyIPv4, 45454)` binds 0.0.0.0:45454, as
 * in Qt; nobody binds ports 1 to 6), and 0 followed by a number that is no BindMode
 * (`bind(SpecialAddress.Null, 45454)`). A null address binds the IPv4 any-address, as in
 * Qt. Throws a RangeError for a port outside 0-65535.
 */
export function bindRequest(
  args: readonly [(number | BindAddress)?, number?, BindMode?],
): BindRequest {
  const [first, second, third] = args;
  if (first === undefined || isPort(first, second)) {
    return {
      address: SpecialAddress.Any,
      port: checkPort(first ?? 0, 'bind'),
      mode: second ?? BindFlag.DefaultForPlatform,
    };
  }
  return {
    address: isNullAddress(first) ? SpecialAddress.AnyIPv4 : first,
    port: checkPort(second ?? 0, 'bind'),
    mode: third ?? BindFlag.DefaultForPlatform,
  };
}

/** Whether a first argument `value`, followed by `next`, is the port of `bind(port, mode)`. */
function isPort(value: number | BindAddress, next: number | undefined): value is number {
  if (typeof value !== 'number') return false;
  // A fraction is no SpecialAddress: as a port, checkPort refuses it.
  if (!Number.isInteger(value)) return true;
  if (value >= SpecialAddress.Broadcast && value <= SpecialAddress.AnyIPv4) return false;
  return !(value === SpecialAddress.Null && next !== undefined && (next & ~ALL_BIND_FLAGS) !== 0);
}

/** SpecialAddress.Null or a null QHostAddress (text is read as given, and refused if bad). */
function isNullAddress(address: BindAddress): boolean {
  return address === SpecialAddress.Null || (address instanceof QHostAddress && address.isNull());
}
