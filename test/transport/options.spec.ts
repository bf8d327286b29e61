/**
 * resolveQtOptions: the defaults of API.md's table, and for every option a wrong value
 * that fails with InvalidOptionError ('QT_INVALID_OPTION') naming the option and what it
 * accepts; ServerQt and ClientQt fail the same way at construction.
 */
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';

import {
  ClientQt,
  InvalidOptionError,
  QtTransportError,
  ServerQt,
  resolveQtOptions,
  reusePortProblem,
  type QtTransportOptions,
} from '../../lib/transport/index.js';
import { removeSslPki, sslPki } from '../helpers/qssl-pki.js';

const MiB = 1024 * 1024;

function invalid(input: unknown, role: 'server' | 'client' = 'client'): InvalidOptionError {
  let caught: unknown = null;
  try {
    resolveQtOptions(input as QtTransportOptions, role);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InvalidOptionError);
  expect(caught).toBeInstanceOf(QtTransportError);
  const err = caught as InvalidOptionError;
  expect(err.code).toBe('QT_INVALID_OPTION');
  return err;
}

describe('resolveQtOptions: defaults (API.md)', () => {
  const expected = {
    transport: 'tcp',
    host: '127.0.0.1',
    port: 3000,
    socketAccess: ['user'],
    removeStaleSocket: true,
    trustedSocketOwners: [],
    maxPendingConnections: 30,
    listenBacklogSize: 50,
    readBufferSize: 0,
    maxFrameSize: 64 * MiB,
    maxPacketValues: 1_000_000,
    incompleteFrameTimeout: 30000,
    frameTimeout: 30000,
    minFrameRate: 65536,
    maxConnections: 1000,
    idleTimeout: 0,
    maxSendBufferSize: 128 * MiB,
    codec: 'json',
    requestTimeout: 0,
    connectTimeout: 5000,
    reconnect: { retries: 10, initialDelay: 100, maxDelay: 5000 },
    closeTimeout: 10000,
  };

  it.each(['server', 'client'] as const)('fills in every default (%s, no options)', (role) => {
    const o = resolveQtOptions(undefined, role);
    expect(o).toMatchObject(expected);
    expect(o.maxFrameSize).toBe(67108864);
    expect(o.maxSendBufferSize).toBe(134217728);
    expect(o.socketOptions.lowDelay).toBe(true);
    expect(o.socketOptions.keepAlive).toBe(false);
    expect(o.socketOptions.keepAliveIdle).toBeUndefined();
    expect(o.socketOptions.sendBufferSize).toBeUndefined();
    expect(o.socketOptions.receiveBufferSize).toBeUndefined();
    expect(o.socketOptions.typeOfService).toBeUndefined();
    expect(o.proxy.type).toBe('default');
    expect(o.serializer).toBeUndefined();
    expect(o.deserializer).toBeUndefined();
  });

  it('maxBufferedBytes: a quarter of the V8 heap limit by default, at least twice maxFrameSize; 0 turns the budget off; twice maxFrameSize is accepted', () => {
    const quarter = Math.floor(getHeapStatistics().heap_size_limit / 4);
    expect(resolveQtOptions(undefined, 'server').maxBufferedBytes).toBe(
      Math.max(quarter, 128 * MiB),
    );
    const huge = 0xfffffffe;
    expect(resolveQtOptions({ maxFrameSize: huge }, 'server').maxBufferedBytes).toBe(2 * huge);
    expect(resolveQtOptions({ maxBufferedBytes: 0 }, 'server').maxBufferedBytes).toBe(0);
    expect(
      resolveQtOptions({ maxFrameSize: 1024, maxBufferedBytes: 2048 }, 'server').maxBufferedBytes,
    ).toBe(2048);
  });

  it('gives the same defaults for an empty object', () => {
    expect(resolveQtOptions({}, 'client')).toEqual(resolveQtOptions(undefined, 'client'));
  });

  it('ServerQt and ClientQt report the defaults through resolvedOptions()', () => {
    expect(new ServerQt().resolvedOptions()).toMatchObject(expected);
    expect(new ClientQt().resolvedOptions()).toMatchObject(expected);
  });

  it('keeps given values and fills the rest of nested options', () => {
    const o = resolveQtOptions(
      {
        transport: 'local',
        name: 'svc',
        socketAccess: ['user', 'group'],
        socketOptions: { keepAlive: true },
        reconnect: { retries: 3 },
        proxy: { type: 'socks5', hostName: 'gw', port: 1080, user: 'u', password: 'p' },
        codec: 'cbor',
      },
      'client',
    );
    expect(o.transport).toBe('local');
    expect(o.name).toBe('svc');
    expect(o.socketAccess).toEqual(['user', 'group']);
    expect(o.socketOptions).toMatchObject({ lowDelay: true, keepAlive: true });
    expect(o.reconnect).toEqual({ retries: 3, initialDelay: 100, maxDelay: 5000 });
    expect(o.proxy).toEqual({
      type: 'socks5',
      hostName: 'gw',
      port: 1080,
      user: 'u',
      password: 'p',
    });
    expect(o.codec).toBe('cbor');
    expect(resolveQtOptions({ reconnect: false }, 'client').reconnect).toBe(false);
  });

  it('socketOptions.keepAliveIdle turns keepAlive on unless it is given', () => {
    expect(
      resolveQtOptions({ socketOptions: { keepAliveIdle: 5000 } }, 'client').socketOptions,
    ).toMatchObject({ keepAlive: true, keepAliveIdle: 5000 });
    expect(
      resolveQtOptions({ socketOptions: { keepAlive: true, keepAliveIdle: 1000 } }, 'server')
        .socketOptions,
    ).toMatchObject({ keepAlive: true, keepAliveIdle: 1000 });
  });

  it('copies socketAccess (later changes to the input do not leak in)', () => {
    const access: Array<'user' | 'group'> = ['user'];
    const o = resolveQtOptions({ transport: 'local', name: 'x', socketAccess: access }, 'server');
    access.push('group');
    expect(o.socketAccess).toEqual(['user']);
  });

  it('accepts the boundaries of the ranges', () => {
    expect(() =>
      resolveQtOptions(
        {
          port: 0,
          readBufferSize: 0,
          requestTimeout: 0,
          closeTimeout: 0,
          maxFrameSize: 1,
          maxPendingConnections: 1,
          listenBacklogSize: 1,
          socketOptions: { typeOfService: 255 },
          reconnect: { retries: 0, initialDelay: 1, maxDelay: 1 },
        },
        'server',
      ),
    ).not.toThrow();
    expect(() =>
      resolveQtOptions({ port: 65535, maxFrameSize: 0xfffffffe }, 'client'),
    ).not.toThrow();
  });
});

/**
 * [option name in the error, a wrong input, words the message must contain (the accepted
 * values)]. One row per option (and per nested option).
 */
const WRONG: Array<[string, Record<string, unknown>, string[]]> = [
  ['transport', { transport: 'udp' }, ["'tcp'", "'local'"]],
  ['transport', { transport: 1 }, ["'tcp'", "'local'"]],
  ['host', { host: '' }, ['non-empty string']],
  ['host', { host: 127 }, ['non-empty string']],
  ['port', { port: -1 }, ['integer', '0', '65535']],
  ['port', { port: 65536 }, ['integer', '0', '65535']],
  ['port', { port: 80.5 }, ['integer', '0', '65535']],
  ['port', { port: '3000' }, ['integer', '0', '65535']],
  ['port', { port: NaN }, ['integer', '0', '65535']],
  ['name', { name: '' }, ['non-empty string']],
  ['name', { transport: 'local', name: 42 }, ['non-empty string']],
  ['socketAccess', { socketAccess: ['root'] }, ["'user'", "'group'", "'other'", "'world'"]],
  ['trustedSocketOwners', { trustedSocketOwners: 'all' }, ['uids', "'any'"]],
  ['trustedSocketOwners', { trustedSocketOwners: [-1] }, ['uids', "'any'"]],
  ['trustedSocketOwners', { trustedSocketOwners: [1.5] }, ['uids', "'any'"]],
  ['socketAccess', { socketAccess: 'user' }, ["'user'", "'group'", "'other'", "'world'"]],
  ['removeStaleSocket', { removeStaleSocket: 'yes' }, ['true or false']],
  ['maxPendingConnections', { maxPendingConnections: 0 }, ['integer', '1']],
  ['maxPendingConnections', { maxPendingConnections: 2.5 }, ['integer', '1']],
  ['listenBacklogSize', { listenBacklogSize: 0 }, ['integer', '1']],
  ['socketOptions', { socketOptions: 'fast' }, ['object']],
  ['socketOptions.lowDelay', { socketOptions: { lowDelay: 1 } }, ['true or false']],
  ['socketOptions.keepAlive', { socketOptions: { keepAlive: 'on' } }, ['true or false']],
  ['socketOptions.sendBufferSize', { socketOptions: { sendBufferSize: 0 } }, ['integer', '1']],
  [
    'socketOptions.receiveBufferSize',
    { socketOptions: { receiveBufferSize: -5 } },
    ['integer', '1'],
  ],
  ['socketOptions.typeOfService', { socketOptions: { typeOfService: 256 } }, ['0', '255']],
  [
    'socketOptions.nagle',
    { socketOptions: { nagle: true } },
    [
      'lowDelay',
      'keepAlive',
      'keepAliveIdle',
      'sendBufferSize',
      'receiveBufferSize',
      'typeOfService',
    ],
  ],
  ['readBufferSize', { readBufferSize: -1 }, ['integer', '0']],
  ['proxy', { proxy: 'socks5' }, ['object']],
  ['proxy.type', { proxy: { type: 'ftp' } }, ["'socks5'", "'http'", "'none'", "'default'"]],
  ['proxy.hostName', { proxy: { type: 'socks5', port: 1080 } }, ['non-empty string']],
  ['proxy.hostName', { proxy: { type: 'http', hostName: '', port: 3128 } }, ['non-empty string']],
  ['proxy.port', { proxy: { type: 'socks5', hostName: 'gw' } }, ['1', '65535']],
  ['proxy.port', { proxy: { type: 'http', hostName: 'gw', port: 70000 } }, ['1', '65535']],
  ['proxy.user', { proxy: { type: 'socks5', hostName: 'gw', port: 1, user: 5 } }, ['string']],
  ['proxy.password', { proxy: { type: 'none', password: {} } }, ['string']],
  ['proxy.host', { proxy: { type: 'socks5', host: 'gw', port: 1 } }, ['type', 'hostName', 'port']],
  ['maxFrameSize', { maxFrameSize: 0 }, ['integer', '1', '4294967294']],
  ['maxFrameSize', { maxFrameSize: 0xffffffff }, ['integer', '1', '4294967294']],
  ['maxPacketValues', { maxPacketValues: 0 }, ['integer', '1']],
  ['maxPacketValues', { maxPacketValues: 1.5 }, ['integer', '1']],
  ['maxPacketValues', { maxPacketValues: '1000' }, ['integer', '1']],
  ['incompleteFrameTimeout', { incompleteFrameTimeout: 0 }, ['integer', '1']],
  ['frameTimeout', { frameTimeout: -1 }, ['integer', '0', '2147483647']],
  ['frameTimeout', { frameTimeout: 2 ** 31 }, ['integer', '0', '2147483647']],
  ['minFrameRate', { minFrameRate: 0 }, ['integer', '1']],
  ['maxConnections', { maxConnections: -1 }, ['integer', '0']],
  ['maxConnections', { maxConnections: 1.5 }, ['integer', '0']],
  ['idleTimeout', { idleTimeout: -1 }, ['integer', '0', '2147483647']],
  ['socketOptions.keepAliveIdle', { socketOptions: { keepAliveIdle: 999 } }, ['integer', '1000']],
  [
    'socketOptions.keepAliveIdle',
    { socketOptions: { keepAlive: false, keepAliveIdle: 5000 } },
    ['keepAlive is false'],
  ],
  ['maxSendBufferSize', { maxSendBufferSize: 0 }, ['integer', '1']],
  ['maxBufferedBytes', { maxBufferedBytes: -1 }, ['0 (no budget)', 'twice maxFrameSize']],
  ['maxBufferedBytes', { maxBufferedBytes: '1G' }, ['0 (no budget)', 'integer']],
  [
    'maxBufferedBytes',
    { maxFrameSize: 1024, maxBufferedBytes: 2047 },
    ['twice maxFrameSize (2048)', '2047'],
  ],
  ['codec', { codec: 'msgpack' }, ["'json'", "'cbor'"]],
  ['serializer', { serializer: {} }, ['serialize()']],
  ['serializer', { serializer: () => 'x' }, ['serialize()']],
  ['deserializer', { deserializer: { serialize: () => 1 } }, ['deserialize()']],
  ['requestTimeout', { requestTimeout: -1 }, ['integer', '0']],
  ['connectTimeout', { connectTimeout: 0 }, ['integer', '1']],
  ['reconnect', { reconnect: true }, ['object', 'false']],
  ['reconnect', { reconnect: 'never' }, ['object', 'false']],
  ['reconnect.retries', { reconnect: { retries: -1 } }, ['integer', '0']],
  ['reconnect.initialDelay', { reconnect: { initialDelay: 0 } }, ['integer', '1']],
  ['reconnect.maxDelay', { reconnect: { maxDelay: '5s' } }, ['integer', '1']],
  ['reconnect.backoff', { reconnect: { backoff: 2 } }, ['retries', 'initialDelay', 'maxDelay']],
  ['closeTimeout', { closeTimeout: -1 }, ['integer', '0']],
  ['tls', { tls: 'on' }, ['object', 'certificate', 'privateKey', 'ca', 'verifyMode']],
  ['tls', { transport: 'local', name: 'svc', tls: {} }, ["'local'", 'TCP']],
  ['tls.cert', { tls: { cert: 'x' } }, ['certificate', 'privateKey', 'ca', 'peerName']],
  [
    'tls.certificate',
    { tls: { certificate: '/nonexistent/server.pem' } },
    ['PEM text', 'file path', 'ENOENT'],
  ],
  ['tls.certificate', { tls: { certificate: Buffer.from('not a certificate') } }, ['PEM']],
  [
    'tls.ca',
    { tls: { ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' } },
    ['PEM'],
  ],
  [
    'tls.verifyMode',
    { tls: { verifyMode: 'strict' } },
    ["'none'", "'query'", "'verify'", "'auto'"],
  ],
  ['tls.peerName', { tls: { peerName: '' } }, ['non-empty string']],
  ['tls.handshakeTimeout', { tls: { handshakeTimeout: 0 } }, ['integer', '1']],
  ['tls.passphrase', { tls: { passphrase: 42 } }, ['string']],
];

describe('resolveQtOptions: a wrong value names the option and the accepted values', () => {
  it.each(WRONG)('%s: %j', (option, input, accepted) => {
    const err = invalid(input);
    expect(err.option).toBe(option);
    expect(err.message).toContain(`"${option}"`);
    for (const word of accepted) expect(err.message).toContain(word);
  });

  it('every option of the API table has at least one wrong-value row', () => {
    const covered = new Set(WRONG.map(([option]) => option.split('.')[0]));
    for (const option of [
      'transport',
      'host',
      'port',
      'name',
      'socketAccess',
      'removeStaleSocket',
      'trustedSocketOwners',
      'maxPendingConnections',
      'listenBacklogSize',
      'socketOptions',
      'readBufferSize',
      'proxy',
      'maxFrameSize',
      'incompleteFrameTimeout',
      'frameTimeout',
      'minFrameRate',
      'maxConnections',
      'idleTimeout',
      'maxSendBufferSize',
      'maxBufferedBytes',
      'codec',
      'serializer',
      'deserializer',
      'requestTimeout',
      'connectTimeout',
      'reconnect',
      'closeTimeout',
      'tls',
    ]) {
      expect(covered).toContain(option);
    }
  });

  it('the message shows the value received', () => {
    expect(invalid({ transport: 'udp' }).message).toContain('"udp"');
    expect(invalid({ port: 70000 }).message).toContain('70000');
  });

  it('an unknown key is rejected, naming the key', () => {
    const err = invalid({ prot: 3000 });
    expect(err.option).toBe('prot');
    expect(err.message).toContain('"prot"');
    expect(err.message).toContain('known option');
    expect(err.message).toContain('port');
  });

  it("transport 'local' without a name is rejected, naming 'name' and 'local'", () => {
    const err = invalid({ transport: 'local' }, 'server');
    expect(err.option).toBe('name');
    expect(err.message).toContain('"name"');
    expect(err.message).toContain('local');
    invalid({ transport: 'local' }, 'client');
  });

  it.each([
    ['a string', 'tcp'],
    ['null', null],
    ['an array', [{ port: 1 }]],
  ])('options that are %s are rejected', (_what, input) => {
    expect(invalid(input).message).toContain('object');
  });
});

describe('ServerQt and ClientQt validate at construction', () => {
  it.each(WRONG.filter((_, i) => i % 4 === 0))(
    'new ServerQt / new ClientQt with a wrong %s throw InvalidOptionError',
    (option, input) => {
      for (const make of [
        () => new ServerQt(input as QtTransportOptions),
        () => new ClientQt(input as QtTransportOptions),
      ]) {
        let caught: unknown = null;
        try {
          make();
        } catch (err) {
          caught = err;
        }
        expect(caught).toBeInstanceOf(InvalidOptionError);
        expect((caught as InvalidOptionError).option).toBe(option);
      }
    },
  );

  it('an unknown key and a local transport without a name fail both constructors', () => {
    expect(() => new ServerQt({ bogus: 1 } as QtTransportOptions)).toThrow(InvalidOptionError);
    expect(() => new ClientQt({ bogus: 1 } as QtTransportOptions)).toThrow(InvalidOptionError);
    expect(() => new ServerQt({ transport: 'local' })).toThrow(/"name"/);
    expect(() => new ClientQt({ transport: 'local' })).toThrow(/"name"/);
  });
});

describe('time options stay within what a timer can wait', () => {
  // Node runs a setTimeout above 2^31 - 1 ms after 1 ms (TimeoutOverflowWarning): a value
  // accepted there would time out at once instead of after ~25 days.
  it.each(['incompleteFrameTimeout', 'requestTimeout', 'connectTimeout', 'closeTimeout'])(
    '%s: 2^31 ms is rejected (the message names the option and its range)',
    (option) => {
      const err = invalid({ [option]: 2 ** 31 });
      expect(err.option).toBe(option);
      expect(err.message).toContain('2147483647');
    },
  );

  it.each(['initialDelay', 'maxDelay'])('reconnect.%s: 2^31 ms is rejected', (key) => {
    const err = invalid({ reconnect: { [key]: 2 ** 31 } });
    expect(err.option).toBe(`reconnect.${key}`);
  });

  it('2^31 - 1 ms is accepted', () => {
    expect(() =>
      resolveQtOptions(
        {
          incompleteFrameTimeout: 2 ** 31 - 1,
          requestTimeout: 2 ** 31 - 1,
          connectTimeout: 2 ** 31 - 1,
          closeTimeout: 2 ** 31 - 1,
          reconnect: { initialDelay: 2 ** 31 - 1, maxDelay: 2 ** 31 - 1 },
        },
        'client',
      ),
    ).not.toThrow();
  });
});

describe('resolveQtOptions: tls', () => {
  it('reads PEM from file paths, PEM text and Buffers; a server needs a certificate and a key; defaults verifyMode auto and handshakeTimeout 5000', () => {
    const pki = sslPki();
    const server = resolveQtOptions(
      { tls: { certificate: pki.serverCert, privateKey: readFileSync(pki.serverKey) } },
      'server',
    ).tls!;
    expect(server.certificates).toHaveLength(1);
    expect(server.certificates[0]!.subjectInfo('CN')).toEqual(['localhost']);
    expect(server.privateKey!.isNull()).toBe(false);
    expect(server.ca).toBeNull();
    expect(server.verifyMode).toBe('auto');
    expect(server.handshakeTimeout).toBe(5000);
    const client = resolveQtOptions(
      { tls: { ca: [readFileSync(pki.caCert, 'utf8'), pki.otherCaCert], peerName: 'localhost' } },
      'client',
    ).tls!;
    expect(client.ca!.map((c) => c.subjectInfo('CN')[0])).toEqual(['QSsl test CA', 'Stranger CA']);
    expect(client.certificates).toEqual([]);
    expect(client.peerName).toBe('localhost');
    expect(resolveQtOptions({}, 'client').tls).toBeNull();
    expect(invalid({ tls: { ca: pki.caCert } }, 'server').option).toBe('tls');
    expect(invalid({ tls: { certificate: pki.clientCert } }, 'client').option).toBe(
      'tls.privateKey',
    );
  });

  it('never shows a private key or passphrase in the message', () => {
    const err = invalid({
      tls: { privateKey: '-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n' },
    });
    expect(err.option).toBe('tls.privateKey');
    expect(err.message).not.toContain('secret');
    expect(invalid({ tls: { passphrase: 123456 } }).message).not.toContain('123456');
  });
});

afterAll(() => removeSslPki());

describe('options for many processes and replicas', () => {
  it('defaults: reusePort false; loadBalancing first; resolveInterval 30000; connectionsPerEndpoint 1; endpoints = host and port', () => {
    const o = resolveQtOptions({ host: 'svc', port: 4000 }, 'client');
    expect(o).toMatchObject({
      reusePort: false,
      loadBalancing: 'first',
      resolveInterval: 30000,
      connectionsPerEndpoint: 1,
      endpoints: [{ host: 'svc', port: 4000 }],
    });
    expect(resolveQtOptions({ transport: 'local', name: 'x' }, 'client').endpoints).toEqual([]);
  });

  it('endpoints are checked one by one and copied', () => {
    const list = [
      { host: 'a', port: 1 },
      { host: '10.0.0.2', port: 65535 },
    ];
    const o = resolveQtOptions({ endpoints: list, loadBalancing: 'least-pending' }, 'client');
    expect(o.endpoints).toEqual(list);
    expect(o.endpoints).not.toBe(list);
    expect(invalid({ endpoints: [] }).option).toBe('endpoints');
    expect(invalid({ endpoints: 'a:1' }).option).toBe('endpoints');
    expect(
      invalid({
        endpoints: [
          { host: 'a', port: 1 },
          { host: '', port: 2 },
        ],
      }).option,
    ).toBe('endpoints[1].host');
    expect(invalid({ endpoints: [{ host: 'a', port: 0 }] }).option).toBe('endpoints[0].port');
    expect(invalid({ endpoints: [{ host: 'a' }] }).option).toBe('endpoints[0].port');
    expect(invalid({ endpoints: [{ host: 'a', port: 1, weight: 2 }] }).option).toBe(
      'endpoints[0].weight',
    );
    expect(
      invalid({ transport: 'local', name: 'x', endpoints: [{ host: 'a', port: 1 }] }).option,
    ).toBe('endpoints');
  });

  it('loadBalancing, resolveInterval and connectionsPerEndpoint take only their values', () => {
    expect(invalid({ loadBalancing: 'random' }).message).toMatch(
      /'first', 'round-robin', 'least-pending'/,
    );
    expect(invalid({ resolveInterval: -1 }).option).toBe('resolveInterval');
    expect(resolveQtOptions({ resolveInterval: 0 }, 'client').resolveInterval).toBe(0);
    expect(invalid({ connectionsPerEndpoint: 0 }).option).toBe('connectionsPerEndpoint');
    expect(invalid({ connectionsPerEndpoint: 65 }).option).toBe('connectionsPerEndpoint');
  });

  it('reusePort: a server on a Node without SO_REUSEPORT, or on a local socket, is an InvalidOptionError naming why; a client ignores it', () => {
    const problem = reusePortProblem();
    if (problem) {
      const err = invalid({ reusePort: true }, 'server');
      expect(err.option).toBe('reusePort');
      expect(err.message).toContain(`Node ${process.versions.node}`);
      expect(() => new ServerQt({ reusePort: true })).toThrow(InvalidOptionError);
    } else {
      expect(resolveQtOptions({ reusePort: true }, 'server').reusePort).toBe(true);
    }
    expect(invalid({ transport: 'local', name: 'x', reusePort: true }, 'server').message).toMatch(
      /local/,
    );
    expect(resolveQtOptions({ reusePort: true }, 'client').reusePort).toBe(true);
  });

  it('reusePortProblem: by Node version and platform', () => {
    expect(reusePortProblem('20.20.0', 'linux')).toMatch(/Node 22\.12 or later.*Node 20\.20\.0/);
    expect(reusePortProblem('22.11.0', 'linux')).not.toBeNull();
    expect(reusePortProblem('22.12.0', 'linux')).toBeNull();
    expect(reusePortProblem('23.0.0', 'linux')).not.toBeNull();
    expect(reusePortProblem('23.1.0', 'linux')).toBeNull();
    expect(reusePortProblem('24.0.0', 'freebsd')).toBeNull();
    expect(reusePortProblem('24.0.0', 'darwin')).toMatch(/platform/);
    expect(reusePortProblem('24.0.0', 'win32')).toMatch(/platform/);
  });
});
