/**
 * Returns `port` if it is a port number (an integer from 0 to 65535); otherwise throws a
 * RangeError that names the call (`method`, e.g. 'connectToHost' or 'QTcpServer.listen').
 */
export function checkPort(port: number, method: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`${method}: port must be an integer from 0 to 65535, got ${port}`);
  }
  return port;
}
