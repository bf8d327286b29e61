// Behaviour tests for QTcpServer, ported from Qt's autotest tst_QTcpServer
// (qtbase/tests/auto/network/socket/qtcpserver/tst_qtcpserver.cpp) and checked against real
// Qt 5.15 (PyQt5) on this machine. Every test talks to real sockets on the loopback
// interface; nothing is mocked. Qt's blocking waits become awaited Promises, and where Qt
// relies on a connection being accepted "during" a blocking call, the test starts the
// wait in the same synchronous run as the connect, so no event-loop turn can come between.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  NetworkLayerProtocol,
  qInstallMessageHandler,
  QHostAddress,
  QTcpServer,
  QTcpSocket,
  QtMsgType,
  SocketError,
  SocketState,
  SpecialAddress,
  type NativeSocketHandle,
} from '../../../lib/qtnetwork/index.js';
import { hasIPv6Loopback } from '../../helpers/net.js';
import { captureQtMessages, countEmissions, readLineFrom, Scope } from '../../helpers/qt-scope.js';
import { nextEmission, sleep, waitUntil } from '../../helpers/signals.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.resolve(here, '../../fixtures');

const IPV6 = hasIPv6Loopback();
if (!IPV6)
  console.warn('qtcp-server.spec: no IPv6 loopback (::1) on this host; IPv6 tests are skipped');
const itIPv6 = IPV6 ? it : it.skip;

let scope: Scope;
beforeEach(() => {
  scope = new Scope();
});
afterEach(() => {
  scope.dispose();
  // A test that fails between capture and restore must not leave its handler installed.
  qInstallMessageHandler(null);
});

/** Connects a tracked client to `host`:`port`. */
function client(host: string | QHostAddress | SpecialAddress, port: number): QTcpSocket {
  const c = scope.socket();
  c.connectToHost(
    host instanceof QHostAddress || typeof host === 'string' ? host : new QHostAddress(host),
    port,
  );
  return c;
}

describe('QTcpServer (tst_QTcpServer)', () => {
  it('tst_QTcpServer::constructing — a new server is idle: not listening, port 0, null address, 30 pending max, no descriptor, UnknownSocketError with an empty text', () => {
    const server = scope.server();
    expect(server.isListening()).toBe(false);
    expect(server.serverPort()).toBe(0);
    expect(server.serverAddress().isNull()).toBe(true);
    expect(server.serverAddress().toString()).toBe('');
    expect(server.maxPendingConnections()).toBe(30);
    expect(server.hasPendingConnections()).toBe(false);
    expect(server.nextPendingConnection()).toBeNull();
    expect(server.socketDescriptor()).toBe(-1);
    expect(server.serverError()).toBe(SocketError.UnknownSocketError);
    expect(server.serverError()).toBe(-1);
    expect(server.errorString()).toBe('');
  });

  it('tst_QTcpServer::getSetCheck — maxPendingConnections returns what was set, including 0, INT_MIN and INT_MAX', () => {
    const server = scope.server();
    server.setMaxPendingConnections(0);
    expect(server.maxPendingConnections()).toBe(0);
    server.setMaxPendingConnections(-2147483648);
    expect(server.maxPendingConnections()).toBe(-2147483648);
    server.setMaxPendingConnections(2147483647);
    expect(server.maxPendingConnections()).toBe(2147483647);
  });

  it('tst_QTcpServer::clientServerLoop — listen on Any, accept one client, newConnection once, data both ways; peer is ::ffff:127.0.0.1 with an empty peerName', async () => {
    const server = scope.server();
    const spy = countEmissions(server.newConnection);
    expect(server.isListening()).toBe(false);
    expect(server.hasPendingConnections()).toBe(false);

    expect(await server.listen(SpecialAddress.Any, 0)).toBe(true);
    expect(server.isListening()).toBe(true);
    expect(server.serverPort()).toBeGreaterThan(0);
    expect(server.serverAddress().toString()).toBe('0.0.0.0');
    expect(server.serverAddress().protocol()).toBe(NetworkLayerProtocol.AnyIPProtocol);
    expect(server.socketDescriptor()).toBeGreaterThanOrEqual(0);

    const c = client(SpecialAddress.LocalHost, server.serverPort());
    const [connected, waited] = await Promise.all([
      c.waitForConnected(5000),
      server.waitForNewConnection(5000),
    ]);
    expect(connected).toBe(true);
    expect(waited).toEqual([true, false]);
    expect(server.hasPendingConnections()).toBe(true);
    expect(spy.count()).toBe(1);

    const serverSocket = scope.take(server);
    expect(serverSocket).not.toBeNull();
    expect(server.hasPendingConnections()).toBe(false);
    expect(server.nextPendingConnection()).toBeNull();
    expect(serverSocket!.state()).toBe(SocketState.ConnectedState);
    expect(serverSocket!.peerAddress().toString()).toBe('::ffff:127.0.0.1');
    expect(serverSocket!.peerName()).toBe('');
    expect(serverSocket!.peerPort()).toBe(c.localPort());
    expect(serverSocket!.localPort()).toBe(server.serverPort());

    expect(serverSocket!.write('Greetings, client!\n')).toBe(19);
    serverSocket!.flush();
    expect(await c.waitForReadyRead(5000)).toBe(true);
    expect(c.readAll().toString()).toBe('Greetings, client!\n');

    expect(c.write('Well, hello to you!\n')).toBe(20);
    c.flush();
    expect(await serverSocket!.waitForReadyRead(5000)).toBe(true);
    expect(serverSocket!.readAll().toString()).toBe('Well, hello to you!\n');
  });

  itIPv6(
    'tst_QTcpServer::ipv6Server — a server on ::1 reports ::1 and accepts a client connecting to "::1"',
    async () => {
      const server = scope.server();
      expect(await server.listen(SpecialAddress.LocalHostIPv6, 0)).toBe(true);
      expect(server.serverPort()).toBeGreaterThan(0);
      expect(server.serverAddress().isEqual(new QHostAddress(SpecialAddress.LocalHostIPv6))).toBe(
        true,
      );
      expect(server.serverAddress().toString()).toBe('::1');
      expect(server.serverAddress().protocol()).toBe(NetworkLayerProtocol.IPv6Protocol);

      const c = client('::1', server.serverPort());
      const [connected, waited] = await Promise.all([
        c.waitForConnected(5000),
        server.waitForNewConnection(-1),
      ]);
      expect(connected).toBe(true);
      expect(waited).toEqual([true, false]);
      expect(server.hasPendingConnections()).toBe(true);
      const serverSocket = scope.take(server);
      expect(serverSocket).not.toBeNull();
      expect(serverSocket!.peerAddress().toString()).toBe('::1');
      expect(serverSocket!.localAddress().toString()).toBe('::1');
      serverSocket!.close();
      expect(serverSocket!.state()).toBe(SocketState.UnconnectedState);
    },
  );

  describe('tst_QTcpServer::dualStack', () => {
    const rows: Array<[string, SpecialAddress, boolean, boolean]> = [
      ['any', SpecialAddress.Any, true, true],
      ['anyIPv4', SpecialAddress.AnyIPv4, true, false],
      ['anyIPv6', SpecialAddress.AnyIPv6, false, true],
    ];
    for (const [name, bindAddress, v4ok, v6ok] of rows) {
      itIPv6(
        `tst_QTcpServer::dualStack(${name}) — an IPv4 client ${v4ok ? 'connects' : 'is refused'}, an IPv6 client ${v6ok ? 'connects' : 'is refused'}`,
        async () => {
          const server = scope.server();
          expect(await server.listen(bindAddress)).toBe(true);
          const v4client = client(SpecialAddress.LocalHost, server.serverPort());
          const v6client = client(SpecialAddress.LocalHostIPv6, server.serverPort());
          expect(await v4client.waitForConnected(5000)).toBe(v4ok);
          expect(await v6client.waitForConnected(5000)).toBe(v6ok);
          if (!v4ok) expect(v4client.error()).toBe(SocketError.ConnectionRefusedError);
          if (!v6ok) expect(v6client.error()).toBe(SocketError.ConnectionRefusedError);
        },
      );
    }
  });

  itIPv6(
    'tst_QTcpServer::ipv6ServerMapped — a server on 127.0.0.1 accepts 127.0.0.1 and the IPv4-mapped ::ffff:127.0.0.1 (both spellings), but not ::1',
    async () => {
      const server = scope.server();
      expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);

      for (const host of ['127.0.0.1', '::ffff:127.0.0.1', '::ffff:7F00:0001']) {
        const c = client(host, server.serverPort());
        const [waited, connected] = await Promise.all([
          server.waitForNewConnection(5000),
          c.waitForConnected(5000),
        ]);
        expect({ host, waited, connected }).toEqual({
          host,
          waited: [true, false],
          connected: true,
        });
        const accepted = scope.take(server);
        expect(accepted).not.toBeNull();
        // The server socket is IPv4: it sees the client as plain 127.0.0.1 (as Qt does).
        expect(accepted!.peerAddress().toString()).toBe('127.0.0.1');
        accepted!.abort();
      }

      const c4 = client('::1', server.serverPort());
      const [waited, connected] = await Promise.all([
        server.waitForNewConnection(300),
        c4.waitForConnected(5000),
      ]);
      expect(waited).toEqual([false, true]);
      expect(connected).toBe(false);
      expect(c4.error()).toBe(SocketError.ConnectionRefusedError);
      expect(server.hasPendingConnections()).toBe(false);
    },
  );

  it('tst_QTcpServer::crashTests — close() on a server that never listened is harmless; listen() works afterwards', async () => {
    const server = scope.server();
    server.close();
    expect(server.isListening()).toBe(false);
    expect(server.serverError()).toBe(SocketError.UnknownSocketError);
    expect(await server.listen()).toBe(true);
    expect(server.isListening()).toBe(true);
  });

  it('tst_QTcpServer::maxPendingConnections — with a limit of 2 and 3 clients, 2 are handed out, then the third once one is taken', async () => {
    const server = scope.server();
    server.setMaxPendingConnections(2);
    const spy = countEmissions(server.newConnection);
    expect(await server.listen()).toBe(true);

    const sockets = [0, 1, 2].map(() => client(SpecialAddress.LocalHost, server.serverPort()));
    const waited = await server.waitForNewConnection(5000);
    expect(waited).toEqual([true, false]);
    expect(server.hasPendingConnections()).toBe(true);
    // Qt's accept loop takes everything queued in one go (up to the limit); here the
    // connections arrive over a few event-loop turns, so let all three arrive first.
    expect(await Promise.all(sockets.map((s) => s.waitForConnected(5000)))).toEqual([
      true,
      true,
      true,
    ]);
    await waitUntil(() => spy.count() === 2, 5000, 'two newConnection emissions');

    expect(server.hasPendingConnections()).toBe(true);
    expect(scope.take(server)).not.toBeNull();
    expect(server.hasPendingConnections()).toBe(true);
    expect(scope.take(server)).not.toBeNull();
    expect(server.hasPendingConnections()).toBe(false);
    expect(server.nextPendingConnection()).toBeNull();

    expect(await server.waitForNewConnection(5000)).toEqual([true, false]);
    expect(server.hasPendingConnections()).toBe(true);
    expect(scope.take(server)).not.toBeNull();
    expect(spy.count()).toBe(3);
  });

  it('tst_QTcpServer::maxPendingConnections — with a limit of 2 and 5 clients, newConnection fires exactly twice while all 5 clients are connected; taking one hands out one more', async () => {
    const server = scope.server();
    server.setMaxPendingConnections(2);
    expect(server.maxPendingConnections()).toBe(2);
    const spy = countEmissions(server.newConnection);
    expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);

    const clients = [0, 1, 2, 3, 4].map(() =>
      client(SpecialAddress.LocalHost, server.serverPort()),
    );
    expect(await Promise.all(clients.map((c) => c.waitForConnected(5000)))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    await waitUntil(() => spy.count() >= 2, 5000, 'newConnection');
    await sleep(200);
    expect(spy.count()).toBe(2);
    for (const c of clients) expect(c.state()).toBe(SocketState.ConnectedState);
    expect(server.hasPendingConnections()).toBe(true);

    expect(scope.take(server)).not.toBeNull();
    await waitUntil(() => spy.count() >= 3, 5000, 'a third newConnection');
    await sleep(200);
    expect(spy.count()).toBe(3);
  });

  it('tst_QTcpServer::maxPendingConnections — close() closes the connections not taken (pending and waiting): every client sees RemoteHostClosedError and disconnected; the server is reset', async () => {
    const server = scope.server();
    server.setMaxPendingConnections(2);
    const spy = countEmissions(server.newConnection);
    expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);
    const clients = [0, 1, 2, 3, 4].map(() =>
      client(SpecialAddress.LocalHost, server.serverPort()),
    );
    const disconnects = clients.map((c) => countEmissions(c.disconnected));
    const errors: SocketError[][] = clients.map(() => []);
    clients.forEach((c, i) => c.errorOccurred.connect((e) => errors[i].push(e)));
    expect(await Promise.all(clients.map((c) => c.waitForConnected(5000)))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    await waitUntil(() => spy.count() === 2, 5000, 'two newConnection emissions');

    server.close();
    expect(server.isListening()).toBe(false);
    expect(server.hasPendingConnections()).toBe(false);
    expect(server.nextPendingConnection()).toBeNull();
    expect(server.serverPort()).toBe(0);
    expect(server.serverAddress().isNull()).toBe(true);
    expect(server.serverAddress().toString()).toBe('');
    expect(server.socketDescriptor()).toBe(-1);

    await waitUntil(
      () => clients.every((c) => c.state() === SocketState.UnconnectedState),
      5000,
      'every client to see the connection end',
    );
    for (let i = 0; i < clients.length; i++) {
      expect({ i, error: clients[i].error(), text: clients[i].errorString() }).toEqual({
        i,
        error: SocketError.RemoteHostClosedError,
        text: 'The remote host closed the connection',
      });
      expect(errors[i]).toEqual([SocketError.RemoteHostClosedError]);
      expect(disconnects[i].count()).toBe(1);
    }
    expect(spy.count()).toBe(2);
  });

  it('tst_QTcpServer::crashTests — after close(), listen() on the same port succeeds and serves new clients', async () => {
    const server = scope.server();
    expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);
    const port = server.serverPort();
    const first = client(SpecialAddress.LocalHost, port);
    expect(await first.waitForConnected(5000)).toBe(true);
    await waitUntil(() => server.hasPendingConnections(), 5000, 'the first connection');
    server.close();
    expect(server.isListening()).toBe(false);

    expect(await server.listen(SpecialAddress.LocalHost, port)).toBe(true);
    expect(server.isListening()).toBe(true);
    expect(server.serverPort()).toBe(port);
    expect(server.serverAddress().toString()).toBe('127.0.0.1');
    expect(server.hasPendingConnections()).toBe(false);

    const second = client(SpecialAddress.LocalHost, port);
    const [connected, waited] = await Promise.all([
      second.waitForConnected(5000),
      server.waitForNewConnection(5000),
    ]);
    expect(connected).toBe(true);
    expect(waited).toEqual([true, false]);
    const accepted = scope.take(server)!;
    expect(accepted.peerPort()).toBe(second.localPort());
    accepted.write('again\n');
    expect(await readLineFrom(second)).toBe('again\n');
  });

  describe('tst_QTcpServer::listenError', () => {
    it('tst_QTcpServer::listenError — listening on a foreign address (1.2.3.4, 10.123.45.67) fails with SocketAddressNotAvailableError, "The address is not available"', async () => {
      for (const foreign of ['1.2.3.4', '10.123.45.67']) {
        const server = scope.server();
        expect(await server.listen(new QHostAddress(foreign), 0)).toBe(false);
        expect(server.serverError()).toBe(SocketError.SocketAddressNotAvailableError);
        expect(server.serverError()).toBe(9);
        expect(server.errorString()).toBe('The address is not available');
        expect(server.isListening()).toBe(false);
        expect(server.serverPort()).toBe(0);
        expect(server.serverAddress().toString()).toBe('');
      }
    });

    it('tst_QTcpServer::listenError — a port in use fails with AddressInUseError, "The bound address is already in use"; the error stays after a later successful listen', async () => {
      const holder = scope.server();
      expect(await holder.listen(SpecialAddress.LocalHost)).toBe(true);
      const server = scope.server();
      expect(await server.listen('127.0.0.1', holder.serverPort())).toBe(false);
      expect(server.serverError()).toBe(SocketError.AddressInUseError);
      expect(server.serverError()).toBe(8);
      expect(server.errorString()).toBe('The bound address is already in use');
      expect(server.isListening()).toBe(false);
      expect(server.serverPort()).toBe(0);
      expect(server.serverAddress().toString()).toBe('');

      expect(await server.listen('127.0.0.1', 0)).toBe(true);
      expect(server.isListening()).toBe(true);
      // Qt clears the error only when the next one replaces it.
      expect(server.serverError()).toBe(SocketError.AddressInUseError);
      expect(server.errorString()).toBe('The bound address is already in use');
    });
  });

  describe('tst_QTcpServer::waitForConnectionTest', () => {
    it('tst_QTcpServer::waitForConnectionTest — a server that is not listening resolves [false, false] at once', async () => {
      const server = scope.server();
      expect(await server.waitForNewConnection(10)).toEqual([false, false]);
      expect(await server.waitForNewConnection(-1)).toEqual([false, false]);
      expect(server.serverError()).toBe(SocketError.UnknownSocketError);
    });

    it('tst_QTcpServer::waitForConnectionTest — with no client the wait times out with [false, true]; a client arriving later ends the next wait with [true, false]', async () => {
      const server = scope.server();
      expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);
      expect(await server.waitForNewConnection(50)).toEqual([false, true]);
      expect(server.isListening()).toBe(true);

      // Qt's ThreadConnector: a client that connects a little later.
      let later: QTcpSocket | null = null;
      const timer = setTimeout(() => {
        later = client(SpecialAddress.LocalHost, server.serverPort());
      }, 200);
      scope.defer(() => clearTimeout(timer));
      expect(await server.waitForNewConnection(3000)).toEqual([true, false]);
      expect(later).not.toBeNull();
      expect(server.hasPendingConnections()).toBe(true);
    });

    it('tst_QTcpServer::waitForConnectionTest — a timed-out wait sets serverError() SocketTimeoutError, "Network operation timed out"', async () => {
      const server = scope.server();
      expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);
      expect(await server.waitForNewConnection(50)).toEqual([false, true]);
      expect(server.serverError()).toBe(SocketError.SocketTimeoutError);
      expect(server.errorString()).toBe('Network operation timed out');
      expect(server.isListening()).toBe(true);
    });
  });

  describe('tst_QTcpServer::setSocketDescriptor', () => {
    let child: ChildProcess | null = null;
    afterEach(() => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      child = null;
    });

    it('tst_QTcpServer::setSocketDescriptor — a descriptor that is not open is refused with UnsupportedSocketOperationError, "Invalid socket descriptor"', async () => {
      // Qt uses 42; pick a number surely not open in this process.
      let fd = 4242;
      while (isOpenDescriptor(fd)) fd++;
      const server = scope.server();
      expect(await server.setSocketDescriptor(fd)).toBe(false);
      expect(server.serverError()).toBe(SocketError.UnsupportedSocketOperationError);
      expect(server.errorString()).toBe('Invalid socket descriptor');
      expect(server.isListening()).toBe(false);
      expect(server.socketDescriptor()).toBe(-1);
      expect(server.serverPort()).toBe(0);
    });

    it('tst_QTcpServer::setSocketDescriptor — serves on an inherited listening descriptor (socket activation, in a child process)', async () => {
      // Why a child process: the descriptor must be a real listening socket that no Node
      // object owns yet, as with systemd socket activation. Node cannot duplicate or
      // receive a raw descriptor, so /usr/bin/python3 creates the socket (127.0.0.1, port
      // 0, listening), makes it inheritable, prints its port and descriptor, and execs
      // Node in its place on fixtures/serve-inherited-fd.mjs, which adopts it with
      // QTcpServer.setSocketDescriptor(fd). The child imports the library's TypeScript
      // sources through fixtures/register-ts.mjs (the project's own `typescript`
      // transpiles them), so the test needs no prior build.
      const launcher = [
        'import os, socket, sys',
        's = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
        "s.bind(('127.0.0.1', 0))",
        's.listen(16)',
        's.set_inheritable(True)',
        "print('PORT %d FD %d' % (s.getsockname()[1], s.fileno()), flush=True)",
        'node, register, fixture = sys.argv[1:4]',
        "os.execv(node, [node, '--import', register, fixture, str(s.fileno())])",
      ].join('\n');
      const proc = spawn(
        '/usr/bin/python3',
        [
          '-c',
          launcher,
          process.execPath,
          path.join(fixtures, 'register-ts.mjs'),
          path.join(fixtures, 'serve-inherited-fd.mjs'),
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      child = proc;
      let stderr = '';
      proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) =>
        proc.on('exit', (code) => resolve(code)),
      );
      const lines = readLines(proc);

      const first = await lines.next(15000, () => stderr);
      const m = /^PORT (\d+) FD (\d+)$/.exec(first);
      expect(m).not.toBeNull();
      const port = Number(m![1]);
      const fd = Number(m![2]);

      const report = JSON.parse(await lines.next(15000, () => stderr)) as Record<string, unknown>;
      expect(report).toEqual({
        ok: true,
        listening: true,
        port,
        address: '127.0.0.1',
        descriptor: fd,
        error: SocketError.UnknownSocketError,
        errorString: '',
      });

      const c = client('127.0.0.1', port);
      expect(await c.waitForConnected(5000)).toBe(true);
      expect(await readLineFrom(c)).toBe(`hello from ${port}\n`);
      c.write('ping');
      const gotDisconnected = nextEmission(c.disconnected, 5000);
      await gotDisconnected;
      expect(c.readAll().toString()).toBe('echo:ping');

      proc.stdin!.end();
      expect(await exited).toBe(0);
    }, 30000);

    it("tst_QTcpServer::setSocketDescriptor — refused while listening, with Qt's warning; the server keeps listening", async () => {
      const server = scope.server();
      expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);
      const port = server.serverPort();
      const warnings = captureQtMessages();
      try {
        expect(await server.setSocketDescriptor(server.socketDescriptor())).toBe(false);
        expect(warnings.messages).toEqual([
          'QTcpServer::setSocketDescriptor() called when already listening',
        ]);
        expect(warnings.types).toEqual([QtMsgType.QtWarningMsg]);
      } finally {
        warnings.restore();
      }
      expect(server.isListening()).toBe(true);
      expect(server.serverPort()).toBe(port);
      expect(server.serverError()).toBe(SocketError.UnknownSocketError);
    });
  });

  it("tst_QTcpServer::listenWhileListening — a second listen() fails with Qt's warning; the server keeps listening, its error unchanged", async () => {
    const server = scope.server();
    expect(await server.listen()).toBe(true);
    const port = server.serverPort();
    const warnings = captureQtMessages();
    try {
      expect(await server.listen()).toBe(false);
      expect(warnings.messages).toEqual(['QTcpServer::listen() called when already listening']);
      expect(warnings.types).toEqual([QtMsgType.QtWarningMsg]);
    } finally {
      warnings.restore();
    }
    expect(server.isListening()).toBe(true);
    expect(server.serverPort()).toBe(port);
    expect(server.serverError()).toBe(SocketError.UnknownSocketError);
    expect(server.errorString()).toBe('');

    // And it still serves.
    const c = client(SpecialAddress.LocalHost, port);
    const [connected, waited] = await Promise.all([
      c.waitForConnected(5000),
      server.waitForNewConnection(5000),
    ]);
    expect(connected).toBe(true);
    expect(waited).toEqual([true, false]);
  });

  it('tst_QTcpServer::addressReusable — a port whose previous server closed its connection first (TIME_WAIT) can be listened on again at once', async () => {
    const first = scope.server();
    expect(await first.listen(SpecialAddress.LocalHost)).toBe(true);
    const port = first.serverPort();
    const c = client(SpecialAddress.LocalHost, port);
    const [connected] = await Promise.all([
      c.waitForConnected(5000),
      first.waitForNewConnection(5000),
    ]);
    expect(connected).toBe(true);
    const accepted = scope.take(first)!;
    const clientGone = nextEmission(c.disconnected, 5000);
    // The server side closes first, so its end of the connection goes to TIME_WAIT and
    // keeps the port; only SO_REUSEADDR (which Qt sets) lets a new server bind it.
    accepted.disconnectFromHost();
    await clientGone;
    await waitUntil(
      () => accepted.state() === SocketState.UnconnectedState,
      5000,
      'server side closed',
    );
    first.close();

    const second = scope.server();
    expect(await second.listen(SpecialAddress.LocalHost, port)).toBe(true);
    expect(second.serverPort()).toBe(port);
    expect(second.serverError()).toBe(SocketError.UnknownSocketError);
  });

  describe('tst_QTcpServer::serverAddress', () => {
    const rows: Array<[string, SpecialAddress | string, string, NetworkLayerProtocol, boolean]> = [
      ['Any', SpecialAddress.Any, '0.0.0.0', NetworkLayerProtocol.AnyIPProtocol, false],
      ['AnyIPv4', SpecialAddress.AnyIPv4, '0.0.0.0', NetworkLayerProtocol.IPv4Protocol, false],
      ['AnyIPv6', SpecialAddress.AnyIPv6, '::', NetworkLayerProtocol.IPv6Protocol, true],
      ['127.0.0.1', '127.0.0.1', '127.0.0.1', NetworkLayerProtocol.IPv4Protocol, false],
      ['::1', '::1', '::1', NetworkLayerProtocol.IPv6Protocol, true],
    ];
    for (const [name, listenAddress, text, protocol, needsIPv6] of rows) {
      (needsIPv6 ? itIPv6 : it)(
        `tst_QTcpServer::serverAddress(${name}) — serverAddress() is ${text} (${NetworkLayerProtocol[protocol]})`,
        async () => {
          const server = scope.server();
          expect(await server.listen(new QHostAddress(listenAddress))).toBe(true);
          const address = server.serverAddress();
          expect(address.toString()).toBe(text);
          expect(address.protocol()).toBe(protocol);
          expect(address.isEqual(new QHostAddress(listenAddress))).toBe(true);
        },
      );

      (needsIPv6 ? itIPv6 : it)(
        `tst_QTcpServer::qtbug6305(${name}) — a second server on the same address and port fails with AddressInUseError`,
        async () => {
          const server = scope.server();
          expect(await server.listen(new QHostAddress(listenAddress))).toBe(true);
          const server2 = scope.server();
          expect(await server2.listen(new QHostAddress(listenAddress), server.serverPort())).toBe(
            false,
          );
          expect(server2.serverError()).toBe(SocketError.AddressInUseError);
          expect(server2.errorString()).toBe('The bound address is already in use');
          expect(server2.isListening()).toBe(false);
        },
      );
    }

    it('tst_QTcpServer::serverAddress — listen() on a null QHostAddress listens on IPv4 Any, as Qt 5.15 does (serverAddress 0.0.0.0, IPv4Protocol)', async () => {
      const server = scope.server();
      expect(await server.listen(new QHostAddress())).toBe(true);
      expect(server.serverAddress().toString()).toBe('0.0.0.0');
      expect(server.serverAddress().protocol()).toBe(NetworkLayerProtocol.IPv4Protocol);
      const c = client(SpecialAddress.LocalHost, server.serverPort());
      expect(await c.waitForConnected(5000)).toBe(true);
    });
  });

  describe('tst_QTcpServer::linkLocal', () => {
    const linkLocal = Object.entries(os.networkInterfaces()).flatMap(([name, list]) =>
      (list ?? [])
        .filter(
          (i) =>
            (i.family === 'IPv6' && i.address.toLowerCase().startsWith('fe80:')) ||
            i.address.startsWith('169.254.'),
        )
        .map((i) => (i.family === 'IPv6' ? `${i.address}%${name}` : i.address)),
    );
    if (linkLocal.length === 0)
      console.warn('qtcp-server.spec: no link-local addresses on this host; linkLocal is skipped');
    const itLL = linkLocal.length > 0 ? it : it.skip;

    itLL(
      `tst_QTcpServer::linkLocal — servers on the same port on each link-local address (${linkLocal.join(', ')}) each accept an unbound and a bound client`,
      async () => {
        const servers: QTcpServer[] = [];
        let port = 0;
        for (const a of linkLocal) {
          const server = scope.server();
          expect({
            a,
            ok: await server.listen(new QHostAddress(a), port),
            err: server.errorString(),
          }).toEqual({ a, ok: true, err: '' });
          expect(server.serverAddress().toString()).toBe(new QHostAddress(a).toString());
          port = server.serverPort();
          servers.push(server);
        }
        for (const a of linkLocal) {
          const unbound = client(a, port);
          expect(await unbound.waitForConnected(5000)).toBe(true);
          const bound = scope.socket();
          expect(bound.bind(new QHostAddress(a))).toBe(true);
          bound.connectToHost(new QHostAddress(a), port);
          expect(await bound.waitForConnected(5000)).toBe(true);
          expect(bound.localAddress().isEqual(new QHostAddress(a))).toBe(true);
        }
        for (const server of servers) {
          await waitUntil(() => server.hasPendingConnections(), 5000, 'a connection');
          expect(scope.take(server)).not.toBeNull();
          if (!server.hasPendingConnections())
            expect((await server.waitForNewConnection(5000))[0]).toBe(true);
          const second = scope.take(server);
          expect(second).not.toBeNull();
          expect(second!.peerAddress().toString()).toBe(server.serverAddress().toString());
          expect(server.hasPendingConnections()).toBe(false);
        }
      },
    );

    const scoped = linkLocal.filter((a) => a.includes('%'));
    if (scoped.length === 0) {
      console.warn(
        'qtcp-server.spec: no IPv6 link-local address on this host; the scope-id test is skipped',
      );
    }
    (scoped.length > 0 ? it : it.skip)(
      'tst_QTcpServer::linkLocal — an IPv6 link-local address without its scope id cannot be listened on: UnsupportedSocketOperationError, "Unsupported socket operation"',
      async () => {
        const server = scope.server();
        expect(await server.listen(new QHostAddress(scoped[0].split('%')[0]))).toBe(false);
        expect(server.serverError()).toBe(SocketError.UnsupportedSocketOperationError);
        expect(server.errorString()).toBe('Unsupported socket operation');
      },
    );
  });

  it('tst_QTcpServer::eagainBlockingAccept — consecutive connections from one socket each produce a newConnection', async () => {
    const server = scope.server();
    expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);
    const spy = countEmissions(server.newConnection);
    const s = client(SpecialAddress.LocalHost, server.serverPort());
    await waitUntil(() => spy.count() === 1, 500 * 10, 'first newConnection');
    s.close();
    s.connectToHost(new QHostAddress(SpecialAddress.LocalHost), server.serverPort());
    await waitUntil(() => spy.count() === 2, 500 * 10, 'second newConnection');
    s.close();
    expect(server.isListening()).toBe(true);
    expect(server.serverError()).toBe(SocketError.UnknownSocketError);
  });

  it('tst_QTcpServer::qtbug14268_peek — a socket taken in newConnection peeks everything received so far, across several reads', async () => {
    const server = scope.server();
    expect(await server.listen()).toBe(true);
    let lastDataPeeked = '';
    let peeks = 0;
    server.newConnection.connect(() => {
      const s = scope.take(server)!;
      s.readyRead.connect(() => {
        lastDataPeeked = s.peek(128 * 1024).toString('hex');
        peeks++;
      });
    });
    const c = client(SpecialAddress.LocalHost, server.serverPort());
    expect(await c.waitForConnected(2000)).toBe(true);

    const expectations: Array<[string, string]> = [
      ['abc\n', '6162630a'],
      ['def\n', '6162630a6465660a'],
      ['ghi\n', '6162630a6465660a6768690a'],
    ];
    for (const [data, expected] of expectations) {
      const before = peeks;
      c.write(data);
      await waitUntil(
        () => peeks > before && lastDataPeeked === expected,
        5000,
        `peek of ${expected}`,
      );
      expect(lastDataPeeked).toBe(expected);
    }
  });

  it('tst_QTcpServer::canAccessPendingConnectionsWhileNotListening — addPendingConnection works on a server that does not listen', () => {
    class NonListeningTcpServer extends QTcpServer {
      addSocketFromOutside(s: QTcpSocket): void {
        this.addPendingConnection(s);
      }
    }
    const server = scope.server(new NonListeningTcpServer());
    const available = countEmissions(server.pendingConnectionAvailable);
    const newConnections = countEmissions(server.newConnection);
    const socket = scope.socket();
    server.addSocketFromOutside(socket);
    expect(server.isListening()).toBe(false);
    expect(available.count()).toBe(1);
    expect(newConnections.count()).toBe(0);
    expect(server.hasPendingConnections()).toBe(true);
    expect(server.nextPendingConnection()).toBe(socket);
    expect(server.hasPendingConnections()).toBe(false);
  });

  describe('tst_QTcpServer::pauseAccepting', () => {
    it('tst_QTcpServer::pauseAccepting — while paused, connecting clients get no newConnection; resumeAccepting hands them all out', async () => {
      const server = scope.server();
      const spy = countEmissions(server.newConnection);
      expect(await server.listen()).toBe(true);
      const NumSockets = 6;
      const sockets: QTcpSocket[] = [client(SpecialAddress.LocalHost, server.serverPort())];
      await waitUntil(() => spy.count() === 1, 5000, 'first newConnection');

      server.pauseAccepting();
      for (let i = 1; i < NumSockets; ++i)
        sockets.push(client(SpecialAddress.LocalHost, server.serverPort()));
      // The clients are connected (the kernel accepts for the server)...
      expect(await Promise.all(sockets.map((s) => s.waitForConnected(5000)))).toEqual(
        Array(NumSockets).fill(true),
      );
      // ...but nothing is handed out while paused.
      await sleep(400);
      expect(spy.count()).toBe(1);
      expect(server.isListening()).toBe(true);

      server.resumeAccepting();
      await waitUntil(() => spy.count() === NumSockets, 5000, 'all newConnection emissions');
      await sleep(100);
      expect(spy.count()).toBe(NumSockets);
    });

    it('tst_QTcpServer::pauseAccepting — waitForNewConnection still accepts while paused (Qt 5.15 observed)', async () => {
      const server = scope.server();
      const spy = countEmissions(server.newConnection);
      expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);
      server.pauseAccepting();
      const c = client(SpecialAddress.LocalHost, server.serverPort());
      expect(await c.waitForConnected(5000)).toBe(true);
      await sleep(200);
      expect(spy.count()).toBe(0);
      expect(await server.waitForNewConnection(1000)).toEqual([true, false]);
      expect(spy.count()).toBe(1);
      expect(server.hasPendingConnections()).toBe(true);
    });
  });

  describe('tst_QTcpServer::pendingConnectionAvailable', () => {
    class DerivedServer extends QTcpServer {
      readonly handles: NativeSocketHandle[] = [];
      emitNextSocket(): QTcpSocket | null {
        const handle = this.handles.pop();
        if (!handle) return null;
        const socket = scope.socket();
        expect(socket.setSocketDescriptor(handle)).toBe(true);
        this.addPendingConnection(socket);
        return socket;
      }
      protected override incomingConnection(handle: NativeSocketHandle): void {
        this.handles.push(handle);
      }
    }

    for (const useDerivedServer of [false, true]) {
      it(`tst_QTcpServer::pendingConnectionAvailable(${useDerivedServer ? 'DerivedServer' : 'QTcpServer'}) — emitted when a connection joins the pending list${useDerivedServer ? ' (by an overriding incomingConnection calling addPendingConnection later)' : ''}, newConnection after each accept`, async () => {
        const server = scope.server(useDerivedServer ? new DerivedServer() : new QTcpServer());
        if (useDerivedServer)
          scope.defer(() => (server as DerivedServer).handles.forEach((h) => h.destroy()));
        const newConnectionSpy = countEmissions(server.newConnection);
        const pendingConnectionSpy = countEmissions(server.pendingConnectionAvailable);
        expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);

        const socket = client(SpecialAddress.LocalHost, server.serverPort());
        await nextEmission(server.newConnection, 5000);
        expect(await socket.waitForConnected(5000)).toBe(true);
        expect(socket.state()).toBe(SocketState.ConnectedState);
        expect(newConnectionSpy.count()).toBe(1);

        expect(pendingConnectionSpy.count()).toBe(useDerivedServer ? 0 : 1);
        expect(server.hasPendingConnections()).toBe(!useDerivedServer);
        if (useDerivedServer) expect((server as DerivedServer).emitNextSocket()).not.toBeNull();
        expect(pendingConnectionSpy.count()).toBe(1);

        const accepted = scope.take(server);
        expect(accepted).not.toBeNull();
        expect(accepted!.state()).toBe(SocketState.ConnectedState);
        accepted!.write('x');
        expect(await socket.waitForReadyRead(5000)).toBe(true);
        expect(socket.readAll().toString()).toBe('x');
      });
    }
  });

  it('tst_QTcpServer::listenBacklogSize — 50 by default; the value set is returned and listen() serves with it', async () => {
    const server = scope.server();
    expect(server.listenBacklogSize()).toBe(50);
    server.setListenBacklogSize(10);
    expect(server.listenBacklogSize()).toBe(10);
    expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);
    expect(server.listenBacklogSize()).toBe(10);
    const c = client(SpecialAddress.LocalHost, server.serverPort());
    const [connected, waited] = await Promise.all([
      c.waitForConnected(5000),
      server.waitForNewConnection(5000),
    ]);
    expect(connected).toBe(true);
    expect(waited).toEqual([true, false]);
  });
});

/** True if `fd` is an open descriptor of this process. */
function isOpenDescriptor(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Reads a child's stdout line by line; `next` rejects after `ms` with the child's stderr. */
function readLines(proc: ChildProcess): {
  next: (ms: number, stderr: () => string) => Promise<string>;
} {
  let buffered = '';
  const lines: string[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  proc.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let i: number;
    while ((i = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
    }
    wake?.();
  });
  proc.stdout!.on('end', () => {
    ended = true;
    wake?.();
  });
  return {
    async next(ms, stderr) {
      const deadline = Date.now() + ms;
      while (lines.length === 0) {
        if (ended) throw new Error(`child ended without output; stderr: ${stderr()}`);
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(`no output from the child within ${ms} ms; stderr: ${stderr()}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(t);
            wake = null;
            resolve();
          };
        });
      }
      return lines.shift()!;
    },
  };
}
