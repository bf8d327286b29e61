// ServerQt and ClientQt (the Nest transport) over a Windows named pipe, run by a Windows
// node.exe with node's own test runner against the built package (see
// scripts/deploy/windows-check.sh). A real Nest microservice answers a @MessagePattern and
// receives an @EventPattern, in this process and in a second node.exe process.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, describe, test } from 'node:test';

import { isNativeAccelerationEnabled } from 'cbor-x';
import { firstValueFrom, lastValueFrom } from 'rxjs';

import { ClientQt, decodePayload, encodePayload } from '../../dist/lib/index.js';
import { startService } from './fixtures/nest-app.mjs';
import { WINDOWS_ONLY, startChild, uniqueName, waitFor } from './helpers.mjs';

const PIPE = '\\\\.\\pipe\\';
const TIMEOUT = { timeout: 60000 };

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function client(name, codec) {
  const c = new ClientQt({ transport: 'local', name, codec });
  cleanups.push(() => c.close());
  await c.connect();
  return c;
}

/** A @MessagePattern round trip, an @EventPattern, and the server seeing the event. */
async function roundTrips(c, tag) {
  assert.equal(await firstValueFrom(c.send('sum', [1, 2, 3, 4])), 10);
  const where = await firstValueFrom(c.send('platform', {}));
  assert.equal(where.platform, 'win32');
  await lastValueFrom(c.emit('note', { tag }), { defaultValue: undefined });
  let seen = [];
  await waitFor(async () => {
    seen = await firstValueFrom(c.send('seen', {}));
    return seen.some((e) => e.tag === tag);
  }, `the server to receive the 'note' event ${tag}`);
  assert.deepEqual(
    seen.filter((e) => e.tag === tag),
    [{ tag }],
  );
  return where;
}

describe('ServerQt and ClientQt over a named pipe', WINDOWS_ONLY, () => {
  test('cbor-x falls back to JavaScript: no native addon for win32', () => {
    const require = createRequire(import.meta.url);
    assert.throws(() => require('cbor-extract'), 'cbor-extract has no win32 build here');
    assert.equal(isNativeAccelerationEnabled, false);
    const value = { n: 1, s: 'x', list: [1.5, true, null], bytes: Buffer.from([1, 2, 3]) };
    const { codec, value: decoded } = decodePayload(encodePayload('cbor', value));
    assert.equal(codec, 'cbor');
    assert.equal(decoded.n, 1);
    assert.deepEqual(decoded.list, [1.5, true, null]);
    assert.deepEqual([...decoded.bytes], [1, 2, 3]);
  });

  test(
    'a Nest microservice in this process: @MessagePattern and @EventPattern',
    TIMEOUT,
    async () => {
      const name = uniqueName('nest');
      const service = await startService(name);
      cleanups.push(() => service.app.close());
      assert.equal(service.strategy.unwrap().fullServerName(), `${PIPE}${name}`);
      const c = await client(name, 'json');
      const where = await roundTrips(c, 'in-process');
      assert.equal(where.pid, process.pid);
      assert.deepEqual(service.events, [{ tag: 'in-process' }]);
    },
  );

  test('a Nest microservice in another node.exe process, CBOR codec', TIMEOUT, async () => {
    const name = uniqueName('nest-child');
    const child = startChild('nest-service.mjs', [name, 'cbor']);
    try {
      const ready = await child.next('ready', 45000);
      assert.equal(ready.fullServerName, `${PIPE}${name}`);
      const c = await client(`${PIPE}${name}`, 'cbor');
      const where = await roundTrips(c, 'cross-process');
      assert.equal(where.pid, ready.pid);
      assert.notEqual(where.pid, process.pid);
      await c.close();
    } finally {
      assert.equal(await child.stop(), 0, child.stderr());
    }
  });

  test('ClientQt to a name nobody serves: ServerNotFoundError', TIMEOUT, async () => {
    const c = new ClientQt({
      transport: 'local',
      name: uniqueName('nobody'),
      connectTimeout: 5000,
    });
    cleanups.push(() => c.close());
    await assert.rejects(c.connect(), {
      name: 'QtConnectionError',
      code: 'ServerNotFoundError',
      message: 'QLocalSocket::connectToServer: Invalid name',
    });
  });
});
