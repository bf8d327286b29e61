import * as net from 'node:net';

/**
 * A TCP port on `host` that nobody used a moment ago: the kernel picks it for a probe that
 * listens on port 0 and closes at once. Another process may take it before the caller
 * listens; good enough for starting local processes, not a reservation. Shared by the
 * sample's launcher, the benchmark and the tests.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
