// QLocalServer and QLocalSocket over Windows named pipes, run by a Windows node.exe with
// node's own test runner against the built package (scripts/deploy/windows-check.sh runs
// it under Wine). Where Wine is known to differ from Windows, the test records what
// happened, asserts Windows' behaviour only where Wine matches it, and marks the rest
// TODO with a "WINE DIFFERENCE" diagnostic instead of passing it.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import {
  LocalServerSocketOption,
  LocalSocketError,
  LocalSocketState,
  QLocalServer,
  QLocalSocket,
  SocketError,
} from '../../dist/lib/qtnetwork/index.js';
import {
  UNDER_WINE,
  WINDOWS_ONLY,
  nextSignal,
  startChild,
  uniqueName,
  waitFor,
} from './helpers.mjs';

const PIPE = '\\\\.\\pipe\\';
const TIMEOUT = { timeout: 30000 };

/** Every server and socket a test opened; closed after the file's tests. */
const opened = [];
after(() => {
  for (const o of opened.reverse()) o.close();
});

async function listening(name, options = LocalServerSocketOption.NoOptions) {
  const server = new QLocalServer();
  opened.push(server);
  server.setSocketOptions(options);
  const ok = await server.listen(name);
  assert.equal(ok, true, `listen(${JSON.stringify(name)}): ${server.errorString()}`);
  return server;
}

/** Connects a QLocalSocket to `name` and takes the server's end from `server`. */
async function connectedPair(server, name) {
  const client = new QLocalSocket();
  opened.push(client);
  client.connectToServer(name);
  assert.equal(await client.waitForConnected(10000), true, client.errorString());
  await waitFor(() => server.hasPendingConnections(), 'the server to accept');
  const peer = server.nextPendingConnection();
  opened.push(peer);
  return { client, peer };
}

/** Reads exactly `n` bytes from `socket`, waiting up to `ms` for them. */
async function readExactly(socket, n, ms = 10000) {
  await waitFor(() => socket.bytesAvailable() >= n, `${n} bytes`, ms);
  return socket.read(n);
}

/** The outcome of a listen, in words, for the TAP diagnostics. */
function outcome(ok, server) {
  if (ok) return 'listen() returned true';
  return `listen() returned false, ${SocketError[server.serverError()]} "${server.errorString()}"`;
}

/**
 * A second listen on a name in use. Windows refuses it: libuv creates a pipe's first
 * instance with FILE_FLAG_FIRST_PIPE_INSTANCE, which fails (ERROR_ACCESS_DENIED, libuv's
 * EADDRINUSE) when the name exists, and the port reports AddressInUseError. Wine does not
 * enforce that flag; the test then says so and is marked TODO, never passed.
 */
function judgeSecondListen(t, ok, server, where) {
  t.diagnostic(`second listen on a taken name (${where}): ${outcome(ok, server)}`);
  if (!ok) {
    assert.equal(server.serverError(), SocketError.AddressInUseError);
    assert.equal(server.errorString(), 'QLocalServer::listen: Address in use');
    assert.equal(server.isListening(), false);
    return;
  }
  assert.ok(
    UNDER_WINE,
    'a second listen on a pipe name in use succeeded on Windows: it must give AddressInUseError',
  );
  t.diagnostic(
    'WINE DIFFERENCE: a second server may create a pipe name that is in use ' +
      '(FILE_FLAG_FIRST_PIPE_INSTANCE is not enforced); Windows refuses it and the port ' +
      'reports AddressInUseError there',
  );
  t.todo('Windows refuses this listen (AddressInUseError); Wine accepts it');
}

describe('QLocalServer and QLocalSocket over named pipes', WINDOWS_ONLY, () => {
  test('runs as a Windows process', (t) => {
    assert.equal(process.platform, 'win32');
    t.diagnostic(`node ${process.version}, ${UNDER_WINE ? 'under Wine' : 'on Windows'}`);
  });

  test(
    'a plain name listens on the pipe path: fullServerName() is the pipe prefix + name',
    TIMEOUT,
    async () => {
      const name = uniqueName('plain');
      const server = await listening(name);
      assert.equal(server.isListening(), true);
      assert.equal(server.serverName(), name);
      assert.equal(server.fullServerName(), `${PIPE}${name}`);
      const { client } = await connectedPair(server, name);
      assert.equal(client.serverName(), name);
      assert.equal(client.fullServerName(), `${PIPE}${name}`);
      assert.equal(client.state(), LocalSocketState.ConnectedState);
    },
  );

  test(
    'a name that is already a pipe path (pipe prefix + x) is used as it is',
    TIMEOUT,
    async () => {
      const name = uniqueName('full');
      const full = `${PIPE}${name}`;
      const server = await listening(full);
      assert.equal(server.serverName(), full);
      assert.equal(server.fullServerName(), full);
      // The plain name and the full one reach the same pipe, from either side.
      const byPlain = await connectedPair(server, name);
      assert.equal(byPlain.client.fullServerName(), full);
      const byFull = await connectedPair(server, full);
      assert.equal(byFull.client.fullServerName(), full);
    },
  );

  test('pipe names are case-insensitive (Windows)', TIMEOUT, async () => {
    const name = uniqueName('Case');
    const server = await listening(name);
    const { client } = await connectedPair(server, name.toUpperCase());
    assert.equal(client.state(), LocalSocketState.ConnectedState);
  });

  test('echo both ways, small and 1 MiB', TIMEOUT, async () => {
    const server = await listening(uniqueName('echo'));
    const { client, peer } = await connectedPair(server, server.serverName());
    client.write(Buffer.from('hello server'));
    assert.equal((await readExactly(peer, 12)).toString(), 'hello server');
    peer.write(Buffer.from('hello client'));
    assert.equal((await readExactly(client, 12)).toString(), 'hello client');

    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    client.write(big);
    assert.ok((await readExactly(peer, big.length)).equals(big), 'client to server, 1 MiB');
    peer.write(big);
    assert.ok((await readExactly(client, big.length)).equals(big), 'server to client, 1 MiB');
  });

  test('a peer closing is seen by the other end', TIMEOUT, async () => {
    const server = await listening(uniqueName('close'));
    const first = await connectedPair(server, server.serverName());
    const peerGone = nextSignal(first.peer.disconnected, 'the server end to disconnect');
    first.client.disconnectFromServer();
    await peerGone;
    assert.equal(first.peer.state(), LocalSocketState.UnconnectedState);

    const second = await connectedPair(server, server.serverName());
    const errors = [];
    second.client.errorOccurred.connect((e) => errors.push(e));
    const clientGone = nextSignal(second.client.disconnected, 'the client to disconnect');
    second.peer.disconnectFromServer();
    await clientGone;
    assert.equal(second.client.state(), LocalSocketState.UnconnectedState);
    assert.deepEqual(errors, [LocalSocketError.PeerClosedError]);
    assert.equal(second.client.errorString(), 'QLocalSocket: Remote closed');
  });

  test('connecting to a name nobody listens on: ServerNotFoundError', TIMEOUT, async () => {
    const client = new QLocalSocket();
    opened.push(client);
    const errors = [];
    client.errorOccurred.connect((e) => errors.push(e));
    client.connectToServer(uniqueName('nobody'));
    assert.equal(await client.waitForConnected(10000), false);
    assert.deepEqual(errors, [LocalSocketError.ServerNotFoundError]);
    assert.equal(client.error(), LocalSocketError.ServerNotFoundError);
    assert.equal(client.errorString(), 'QLocalSocket::connectToServer: Invalid name');
    assert.equal(client.state(), LocalSocketState.UnconnectedState);
  });

  test('an empty pipe name is a name error on both sides', TIMEOUT, async () => {
    const server = new QLocalServer();
    opened.push(server);
    assert.equal(await server.listen(PIPE), false);
    assert.equal(server.serverError(), SocketError.HostNotFoundError);
    assert.match(server.errorString(), /^QLocalServer::listen: Name error/);
    const client = new QLocalSocket();
    opened.push(client);
    client.connectToServer(PIPE);
    assert.equal(await client.waitForConnected(5000), false);
    assert.equal(client.error(), LocalSocketError.ServerNotFoundError);
  });

  test('a second listen on a taken name, same process', TIMEOUT, async (t) => {
    const name = uniqueName('taken');
    const first = await listening(name);
    const second = new QLocalServer();
    opened.push(second);
    const ok = await second.listen(name);
    // Whatever happened to the second, the first still serves the name.
    const client = new QLocalSocket();
    opened.push(client);
    client.connectToServer(name);
    assert.equal(await client.waitForConnected(10000), true, client.errorString());
    await waitFor(
      () => first.hasPendingConnections() || second.hasPendingConnections(),
      'a server to accept',
    );
    t.diagnostic(
      `the connection went to the ${first.hasPendingConnections() ? 'first' : 'second'} server`,
    );
    judgeSecondListen(t, ok, second, 'same process');
  });

  test('a second listen on a taken name, another node.exe process', TIMEOUT, async (t) => {
    const name = uniqueName('taken2');
    const child = startChild('echo-server.mjs', [name]);
    try {
      const listened = await child.next('listen');
      assert.equal(listened.ok, true, `the other process's listen: ${listened.errorString}`);
      assert.equal(listened.fullServerName, `${PIPE}${name}`);

      // Named pipes between two processes: echo through the other process's server.
      const client = new QLocalSocket();
      opened.push(client);
      client.connectToServer(name);
      assert.equal(await client.waitForConnected(10000), true, client.errorString());
      client.write(Buffer.from('across'));
      const expected = `echo:${listened.pid}:across`;
      assert.equal((await readExactly(client, expected.length)).toString(), expected);
      client.disconnectFromServer();

      const second = new QLocalServer();
      opened.push(second);
      const ok = await second.listen(name);
      judgeSecondListen(t, ok, second, 'another process');
    } finally {
      await child.stop();
    }
  });

  test('removeServer does nothing and returns true; a live pipe stays', TIMEOUT, async () => {
    const name = uniqueName('remove');
    assert.equal(QLocalServer.removeServer(name), true);
    const server = await listening(name);
    assert.equal(QLocalServer.removeServer(name), true);
    assert.equal(QLocalServer.removeServer(`${PIPE}${name}`), true);
    const { client } = await connectedPair(server, name);
    assert.equal(client.state(), LocalSocketState.ConnectedState);
  });

  test('serverStatus and removeStaleServer: live or absent, never stale', TIMEOUT, async () => {
    const name = uniqueName('status');
    assert.equal(await QLocalServer.serverStatus(name), 'absent');
    assert.equal(await QLocalServer.removeStaleServer(name), true);
    const server = await listening(name);
    assert.equal(await QLocalServer.serverStatus(name), 'live');
    assert.equal(await QLocalServer.removeStaleServer(name), false);
    assert.equal(server.isListening(), true);
    server.close();
    await waitFor(
      async () => (await QLocalServer.serverStatus(name)) === 'absent',
      'the pipe to go away',
    );
  });

  test('after close() the name can be listened on again at once', TIMEOUT, async () => {
    const name = uniqueName('again');
    const first = await listening(name);
    first.close();
    assert.equal(first.fullServerName(), '');
    const second = await listening(name);
    const { client } = await connectedPair(second, name);
    assert.equal(client.state(), LocalSocketState.ConnectedState);
  });

  for (const [label, options] of [
    ['UserAccessOption', LocalServerSocketOption.UserAccessOption],
    ['WorldAccessOption', LocalServerSocketOption.WorldAccessOption],
  ]) {
    test(
      `with ${label} the pipe listens and accepts (its DACL is not checked)`,
      TIMEOUT,
      async () => {
        const server = await listening(uniqueName(label), options);
        assert.equal(server.socketOptions(), options);
        const { client, peer } = await connectedPair(server, server.serverName());
        client.write(Buffer.from('acl'));
        assert.equal((await readExactly(peer, 3)).toString(), 'acl');
      },
    );
  }

  test('listen(descriptor) is refused on Windows', TIMEOUT, async () => {
    const server = new QLocalServer();
    opened.push(server);
    assert.equal(await server.listen(3), false);
    assert.equal(server.serverError(), SocketError.UnsupportedSocketOperationError);
    assert.equal(server.errorString(), 'QLocalServer::listen: Invalid socket descriptor');
  });

  test('socketDescriptor() is -1 for a pipe connection', TIMEOUT, async () => {
    const server = await listening(uniqueName('fd'));
    const { client, peer } = await connectedPair(server, server.serverName());
    assert.equal(client.socketDescriptor(), -1);
    assert.equal(peer.socketDescriptor(), -1);
  });
});
