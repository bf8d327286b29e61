/**
 * ServerQt's `reusePort` (API.md, "Many processes and many replicas"): independent
 * processes listen on one TCP port (SO_REUSEPORT) where the installed Node can; elsewhere
 * the option fails at construction with an InvalidOptionError that names the Node version.
 * Tests that need SO_REUSEPORT are skipped, with the reason printed, on a Node without it.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { firstValueFrom } from 'rxjs';

import { ClientQt, InvalidOptionError, reusePortProblem, ServerQt } from '../../lib/index.js';
import { startCluster, type ClusterRun } from '../helpers/cluster-run.js';
import { freePort } from '../helpers/net.js';
import { Resources } from '../helpers/resources.js';
import { CHILD_START_MS, budget } from '../helpers/time-budget.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLUSTER_APP = path.join(here, 'fixtures', 'cluster-app.ts');
const T = 4 * CHILD_START_MS + budget(30000);

const problem = reusePortProblem();
if (problem) {
  console.log(
    `[scaling] reusePort tests that need SO_REUSEPORT are skipped: this Node cannot set it (needs ${problem})`,
  );
} else {
  console.log(
    `[scaling] the test of a Node without SO_REUSEPORT is skipped: Node ${process.versions.node} on ${process.platform} can set it`,
  );
}
const itWithReusePort = problem ? it.skip : it;
const itWithoutReusePort = problem ? it : it.skip;

let res: Resources;
beforeEach(() => {
  res = new Resources();
});
afterEach(async () => {
  await res.dispose();
});

describe('ServerQt reusePort', () => {
  itWithoutReusePort(
    `on a Node without SO_REUSEPORT (this is Node ${process.versions.node}), new ServerQt({ reusePort: true }) throws InvalidOptionError naming the Node version needed and this one`,
    () => {
      let thrown: unknown;
      try {
        new ServerQt({ transport: 'tcp', port: 0, reusePort: true });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(InvalidOptionError);
      const err = thrown as InvalidOptionError;
      expect(err.code).toBe('QT_INVALID_OPTION');
      expect(err.option).toBe('reusePort');
      expect(err.message).toContain('Node 22.12 or later');
      expect(err.message).toContain(`this is Node ${process.versions.node}`);
    },
  );

  it('reusePort: false is accepted everywhere, and reusePort with transport local is refused', () => {
    expect(() => new ServerQt({ transport: 'tcp', port: 0, reusePort: false })).not.toThrow();
    expect(() => new ServerQt({ transport: 'local', name: 'x', reusePort: true })).toThrow(
      InvalidOptionError,
    );
  });

  itWithReusePort(
    'two independent processes listen on one port, and calls reach both',
    async () => {
      const port = await freePort();
      const args = [
        '--transport',
        'tcp',
        '--port',
        String(port),
        '--workers',
        '0',
        '--options',
        JSON.stringify({ reusePort: true }),
      ];
      const runs: ClusterRun[] = [];
      for (let i = 0; i < 2; i++) {
        const run = startCluster(CLUSTER_APP, args);
        res.add(() => run.stop());
        runs.push(run);
      }
      const pids = new Set<number>();
      for (const run of runs) {
        const ready = await run.next('ready');
        expect(ready.port).toBe(port);
        pids.add(Number(ready.pid));
      }
      // The kernel picks a socket per connection (a hash of its addresses): a bounded
      // number of connections, each from a new port, reaches both.
      const seen = new Set<number>();
      for (let round = 0; round < 5 && seen.size < pids.size; round++) {
        const clients = Array.from(
          { length: 20 },
          () =>
            new ClientQt({
              transport: 'tcp',
              host: '127.0.0.1',
              port,
              reconnect: false,
              requestTimeout: budget(15000),
            }),
        );
        try {
          const answers = await Promise.all(
            clients.map((c) => firstValueFrom(c.send<number>('pid', {}))),
          );
          for (const pid of answers) seen.add(pid);
        } finally {
          await Promise.all(clients.map((c) => c.close()));
        }
      }
      expect(seen).toEqual(pids);
    },
    T,
  );
});
