/**
 * The differential scenarios on the TypeScript port: each function here is the twin of the
 * function of the same name in qt_scenarios.py (real Qt through PyQt5) and makes the same
 * calls in the same order, recording the same events in the same format (see
 * test/helpers/socket-log.ts): signals with their arguments in emission order, step markers
 * "[label]" followed by state=, error=, errorString=, and values "name=<JSON>".
 *
 * Where Qt blocks (waitForReadyRead, waitForNewConnection, ...) the port awaits the Promise
 * of the same name; where Qt returns a bool from listen() the port awaits its Promise.
 * Keep the twins line for line alike.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  QAbstractSocket,
  QHostAddress,
  QLocalServer,
  QLocalSocket,
  QNetworkProxy,
  ProxyType,
  QTcpServer,
  QTcpSocket,
  QtMsgType,
  qInstallMessageHandler,
} from '../../lib/qtnetwork/index.js';

/** What a scenario gets from the spec: the peers' ports and paths. */
export interface ScenarioParams {
  port?: number;
  host?: string;
  path?: string;
  name?: string;
  /** The scenario's private directory (logged as $DIR). */
  dir?: string;
  /** The temp directory relative local names map to (logged as $TMP). */
  tmp?: string;
  missing?: string;
  stale?: string;
  live?: string;
  proxyType?: 'socks5' | 'http';
  proxyHost?: string;
  proxyPort?: number;
  user?: string;
  password?: string;
}

/** A scenario's result: its events, and what went wrong if it did not finish. */
export interface ScenarioResult {
  events: string[];
  failure?: string;
}

/** A value as JSON, as Python's json.dumps(..., separators=(',', ':')) writes it. */
export function js(value: unknown): string {
  return JSON.stringify(value);
}

interface StepTarget {
  state(): number;
  error(): number;
  errorString(): string;
}

interface ServerTarget {
  isListening(): boolean;
  serverError(): number;
  errorString(): string;
}

export class EventLog {
  readonly events: string[] = [];

  add(text: string): void {
    this.events.push(text);
  }

  mark(label: string): void {
    this.add(`[${label}]`);
  }

  value(name: string, v: unknown): void {
    this.add(`${name}=${js(v)}`);
  }

  /** A marker, then the socket's state(), error() and errorString(). */
  step(label: string, sock: StepTarget): void {
    this.mark(label);
    this.value('state', sock.state());
    this.value('error', sock.error());
    this.value('errorString', sock.errorString());
  }

  /** A marker, then the server's isListening(), serverError() and errorString(). */
  serverStep(label: string, server: ServerTarget): void {
    this.mark(label);
    this.value('isListening', server.isListening());
    this.value('serverError', server.serverError());
    this.value('errorString', server.errorString());
  }
}

// ---------------------------------------------------------------------- recording

/** Connects slots that log every signal of a QTcpSocket or QLocalSocket. */
export function record(sock: QAbstractSocket | QLocalSocket, log: EventLog): void {
  const errorText = (e: number): string =>
    `errorOccurred(${e}, ${js(sock.errorString())}, state=${sock.state()})`;
  sock.stateChanged.connect((s: number) => log.add(`stateChanged(${s})`));
  if (sock instanceof QAbstractSocket) {
    sock.hostFound.connect(() => log.add('hostFound'));
    sock.proxyAuthenticationRequired.connect((proxy, auth) =>
      log.add(
        `proxyAuthenticationRequired(type=${proxy.type()}, user=${js(proxy.user())}, realm=${js(auth.realm())})`,
      ),
    );
  }
  sock.connected.connect(() => log.add('connected'));
  sock.readyRead.connect(() => log.add(`readyRead(${sock.bytesAvailable()})`));
  sock.bytesWritten.connect((n) => log.add(`bytesWritten(${n})`));
  sock.errorOccurred.connect((e: number) => log.add(errorText(e)));
  sock.readChannelFinished.connect(() => log.add('readChannelFinished'));
  sock.aboutToClose.connect(() => log.add('aboutToClose'));
  sock.disconnected.connect(() => log.add('disconnected'));
}

// ---------------------------------------------------------------------- waiting

export function spin(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `predicate()` is true (polled every 5 ms); bounded by `ms`. */
export async function waitUntil(
  predicate: () => boolean,
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await spin(5);
  }
}

const SETTLE_MS = 50;

/** Lets late signals arrive before the next step is recorded. */
export function settle(): Promise<void> {
  return spin(SETTLE_MS);
}

export function text(data: Buffer): string {
  return data.toString('utf8');
}

/** A path with the test's directories replaced by $DIR and $TMP (so logs do not vary). */
export function rel(p: string, params: ScenarioParams): string {
  if (params.dir && p.startsWith(params.dir)) return '$DIR' + p.slice(params.dir.length);
  if (params.tmp && p.startsWith(params.tmp + '/')) return '$TMP' + p.slice(params.tmp.length);
  return p;
}

export type Closable = QAbstractSocket | QLocalSocket | QTcpServer | QLocalServer;

/** Everything a scenario opens, closed at the end. */
export class Scope {
  private readonly objects: Closable[] = [];

  keep<T extends Closable>(obj: T): T {
    this.objects.push(obj);
    return obj;
  }

  closeAll(): void {
    for (const obj of [...this.objects].reverse()) {
      try {
        if (obj instanceof QAbstractSocket || obj instanceof QLocalSocket) obj.abort();
        else obj.close();
      } catch {
        // clean-up goes on
      }
    }
  }
}

export type Scenario = (scope: Scope, p: ScenarioParams, log: EventLog) => Promise<void>;

const state = (s: { state(): number }): number => s.state();

/** A QTcpSocket connected to the peer at p.port (signals recorded from the start). */
async function connectedTcp(
  scope: Scope,
  p: ScenarioParams,
  log: EventLog,
  host = '127.0.0.1',
): Promise<QTcpSocket> {
  const s = scope.keep(new QTcpSocket());
  record(s, log);
  s.connectToHost(host, p.port!);
  await waitUntil(() => [0, 3].includes(state(s)), 5000, 'connected');
  return s;
}

// ---------------------------------------------------------------------- scenarios

const tcpScenarios: Record<string, Scenario> = {
  // --- QTcpSocket: connecting

  async 'tcp.connect.success'(scope, p, log) {
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    s.connectToHost('127.0.0.1', p.port!);
    log.step('connectToHost returns', s);
    await waitUntil(() => [0, 3].includes(state(s)), 5000, 'connected');
    await settle();
    log.step('connected', s);
    log.value('peerAddress', s.peerAddress().toString());
    log.value('peerPortIsPeer', s.peerPort() === p.port);
    log.value('peerName', s.peerName());
    log.value('localAddress', s.localAddress().toString());
    log.value('localPortSet', s.localPort() > 0);
    log.value('openMode', s.openMode());
    log.value('isValid', s.isValid());
    s.disconnectFromHost();
    log.step('disconnectFromHost returns', s);
    await settle();
    log.value('peerAddress', s.peerAddress().toString());
    log.value('peerPort', s.peerPort());
    log.value('peerName', s.peerName());
    log.value('localPort', s.localPort());
    log.value('isValid', s.isValid());
  },

  async 'tcp.connect.refused'(scope, p, log) {
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    s.connectToHost('127.0.0.1', p.port!);
    log.step('connectToHost returns', s);
    await waitUntil(() => state(s) === 0, 5000, 'the failure');
    await settle();
    log.step('failed', s);
    log.value('isOpen', s.isOpen());
    log.value('isValid', s.isValid());
    log.value('peerName', s.peerName());
    log.value('peerPort', s.peerPort());
    // A second attempt resets error() and errorString() at once.
    s.connectToHost('127.0.0.1', p.port!);
    log.step('connectToHost again returns', s);
    await waitUntil(() => state(s) === 0, 5000, 'the second failure');
    await settle();
    log.step('failed again', s);
  },

  async 'tcp.connect.hostNotFound'(scope, p, log) {
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    s.connectToHost(p.host!, 80);
    log.step('connectToHost returns', s);
    await waitUntil(() => state(s) === 0, 5000, 'the failure');
    await settle();
    log.step('failed', s);
    log.value('peerName', s.peerName());
  },

  async 'tcp.connect.localhost'(scope, p, log) {
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    s.connectToHost('localhost', p.port!);
    log.step('connectToHost returns', s);
    await waitUntil(() => [0, 3].includes(state(s)), 5000, 'connected');
    await settle();
    log.step('connected', s);
    log.value('peerName', s.peerName());
    log.value('peerAddress', s.peerAddress().toString());
    s.abort();
    log.step('abort returns', s);
  },

  async 'tcp.connect.whileConnecting'(scope, p, log) {
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    s.connectToHost('127.0.0.1', p.port!);
    log.step('connectToHost returns', s);
    s.connectToHost('127.0.0.1', p.port!);
    log.step('second connectToHost returns', s);
    await waitUntil(() => [0, 3].includes(state(s)), 5000, 'connected');
    await settle();
    log.step('connected', s);
  },

  async 'tcp.unconnected.calls'(scope, _p, log) {
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    log.value('write', s.write('x'));
    log.value('putChar', s.putChar('x'));
    log.value('waitForConnected', await s.waitForConnected(50));
    log.value('waitForDisconnected', await s.waitForDisconnected(50));
    log.value('waitForReadyRead', await s.waitForReadyRead(50));
    log.value('waitForBytesWritten', await s.waitForBytesWritten(50));
    log.value('bytesAvailable', s.bytesAvailable());
    log.value('readAll', text(s.readAll()));
    log.value('isValid', s.isValid());
    log.step('unconnected', s);
    s.disconnectFromHost();
    s.abort();
    s.close();
    log.step('disconnectFromHost, abort, close return', s);
  },

  // --- QTcpSocket: closing

  async 'tcp.peerClose.unread'(scope, p, log) {
    // The peer writes and closes as soon as it accepts: Qt's wait for the connection
    // processes all of that before it returns, so the port waits for the close itself
    // (waiting for ConnectedState would race the peer's bytes on a busy machine).
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    s.connectToHost('127.0.0.1', p.port!);
    await waitUntil(() => state(s) === 0, 5000, 'the remote close');
    log.mark('connected');
    await settle();
    log.step('closed by the peer', s);
    log.value('bytesAvailable', s.bytesAvailable());
    log.value('canReadLine', s.canReadLine());
    log.value('isOpen', s.isOpen());
    log.value('isValid', s.isValid());
    log.value('readLine', text(s.readLine()));
    log.value('read(2)', text(s.read(2)));
    log.value('readAll', text(s.readAll()));
    log.value('atEnd', s.atEnd());
    log.value('bytesAvailable', s.bytesAvailable());
    log.value('write', s.write('x'));
    log.step('write returns', s);
  },

  async 'tcp.disconnectFromHost.pendingWrites'(scope, p, log) {
    const s = await connectedTcp(scope, p, log);
    await settle();
    log.mark('connected');
    log.value('write', s.write('0123456789'));
    s.disconnectFromHost();
    log.step('disconnectFromHost returns', s);
    log.value('bytesToWrite', s.bytesToWrite());
    await waitUntil(() => state(s) === 0, 5000, 'the close');
    await settle();
    log.step('closed', s);
    log.value('bytesToWrite', s.bytesToWrite());
    log.value('openMode', s.openMode());
  },

  async 'tcp.abort.pendingWrites'(scope, p, log) {
    const s = await connectedTcp(scope, p, log);
    await settle();
    log.mark('connected');
    log.value('write', s.write('abc'));
    s.abort();
    log.step('abort returns', s);
    log.value('bytesToWrite', s.bytesToWrite());
    log.value('openMode', s.openMode());
    await settle();
    log.mark('settled');
    s.abort();
    log.step('abort again returns', s);
  },

  async 'tcp.close.pendingWrites'(scope, p, log) {
    const s = await connectedTcp(scope, p, log);
    await settle();
    log.mark('connected');
    log.value('write', s.write('abc'));
    s.close();
    log.step('close returns', s);
    log.value('bytesToWrite', s.bytesToWrite());
    log.value('openMode', s.openMode());
    await waitUntil(() => state(s) === 0, 5000, 'the close');
    await settle();
    log.step('closed', s);
    log.value('isOpen', s.isOpen());
  },

  async 'tcp.close.unreadData'(scope, p, log) {
    const s = await connectedTcp(scope, p, log);
    await waitUntil(() => s.bytesAvailable() === 4, 5000, '4 bytes');
    await settle();
    log.mark('data arrived');
    s.close();
    log.step('close returns', s);
    log.value('bytesAvailable', s.bytesAvailable());
    log.value('openMode', s.openMode());
    log.value('readAll', text(s.readAll()));
  },

  // --- QTcpSocket: reading and waiting

  async 'tcp.readBufferSize'(scope, p, log) {
    const s = scope.keep(new QTcpSocket());
    record(s, log);
    s.setReadBufferSize(10);
    log.value('readBufferSize', s.readBufferSize());
    s.connectToHost('127.0.0.1', p.port!);
    let total = 0;
    while (total < 25) {
      await waitUntil(() => s.bytesAvailable() > 0, 5000, `data (${total} of 25 read)`);
      await settle();
      log.value('bytesAvailable', s.bytesAvailable());
      const chunk = s.readAll();
      log.value('readAll', text(chunk));
      total += chunk.length;
    }
    await settle();
    log.step('all read', s);
    s.setReadBufferSize(0);
    log.value('readBufferSize', s.readBufferSize());
  },

  async 'tcp.waitFor.timeouts'(scope, p, log) {
    const s = await connectedTcp(scope, p, log);
    await settle();
    log.mark('connected');
    log.value('waitForReadyRead', await s.waitForReadyRead(100));
    log.step('waitForReadyRead returns', s);
    log.value('waitForBytesWritten', await s.waitForBytesWritten(100));
    log.step('waitForBytesWritten returns', s);
    log.value('waitForDisconnected', await s.waitForDisconnected(100));
    log.step('waitForDisconnected returns', s);
    log.value('isOpen', s.isOpen());
  },

  // --- QTcpServer

  async 'tcpServer.listen.addressInUse'(scope, p, log) {
    const server = scope.keep(new QTcpServer());
    log.value('listen', await server.listen(new QHostAddress('127.0.0.1'), p.port!));
    log.serverStep('listen returns', server);
    log.value('serverPort', server.serverPort());
    log.value('serverAddress', server.serverAddress().toString());
  },

  async 'tcpServer.listen.twice'(scope, _p, log) {
    const server = scope.keep(new QTcpServer());
    log.serverStep('new', server);
    log.value('listen', await server.listen(new QHostAddress('127.0.0.1'), 0));
    log.serverStep('listen returns', server);
    const port = server.serverPort();
    log.value('listen', await server.listen(new QHostAddress('127.0.0.1'), 0));
    log.serverStep('second listen returns', server);
    log.value('samePort', server.serverPort() === port);
    log.value('serverAddress', server.serverAddress().toString());
    server.close();
    log.serverStep('close returns', server);
    log.value('serverPort', server.serverPort());
    log.value('serverAddress', server.serverAddress().toString());
    log.value('listen', await server.listen(new QHostAddress('127.0.0.1'), 0));
    log.serverStep('listen after close returns', server);
  },

  async 'tcpServer.waitForNewConnection.timeout'(scope, _p, log) {
    const server = scope.keep(new QTcpServer());
    log.value('waitForNewConnection[0]', (await server.waitForNewConnection(20))[0]);
    log.serverStep('not listening', server);
    log.value('listen', await server.listen(new QHostAddress('127.0.0.1'), 0));
    log.value('waitForNewConnection', await server.waitForNewConnection(50));
    log.serverStep('waitForNewConnection returns', server);
    log.value('hasPendingConnections', server.hasPendingConnections());
    log.value('nextPendingConnection', server.nextPendingConnection() !== null);
  },

  async 'tcpServer.pendingConnections.limit'(scope, _p, log) {
    const server = scope.keep(new QTcpServer());
    server.newConnection.connect(() => log.add('newConnection'));
    log.value('maxPendingConnections', server.maxPendingConnections());
    server.setMaxPendingConnections(2);
    log.value('maxPendingConnections', server.maxPendingConnections());
    log.value('listen', await server.listen(new QHostAddress('127.0.0.1'), 0));
    const clients = [0, 1, 2, 3].map(() => scope.keep(new QTcpSocket()));
    for (const c of clients) c.connectToHost('127.0.0.1', server.serverPort());
    await waitUntil(() => clients.every((c) => state(c) === 3), 5000, '4 connected clients');
    await spin(100);
    log.mark('4 clients connected');
    log.value('hasPendingConnections', server.hasPendingConnections());
    let taken = 0;
    for (let i = 0; i < 5; i++) {
      const s = server.nextPendingConnection();
      if (s !== null) {
        scope.keep(s);
        taken += 1;
      }
      log.value('nextPendingConnection', s !== null);
      log.value('hasPendingConnections', server.hasPendingConnections());
      await spin(100);
      log.mark('settled');
      log.value('hasPendingConnections', server.hasPendingConnections());
    }
    log.value('taken', taken);
  },
};

async function localConnectFails(scope: Scope, p: ScenarioParams, log: EventLog): Promise<void> {
  const s = scope.keep(new QLocalSocket());
  record(s, log);
  s.connectToServer(p.name!);
  log.mark('connectToServer returns');
  await waitUntil(() => state(s) === 0, 5000, 'the failure');
  await settle();
  log.step('failed', s);
  log.value('serverName', s.serverName());
  log.value('fullServerName', s.fullServerName());
  log.value('isOpen', s.isOpen());
}

const localScenarios: Record<string, Scenario> = {
  // --- QLocalSocket

  async 'local.connect.emptyName'(scope, _p, log) {
    const s = scope.keep(new QLocalSocket());
    record(s, log);
    s.connectToServer('');
    log.step('connectToServer returns', s);
    log.value('serverName', s.serverName());
    log.value('isOpen', s.isOpen());
  },

  async 'local.connect.tooLong'(scope, p, log) {
    const s = scope.keep(new QLocalSocket());
    record(s, log);
    s.connectToServer(p.path!);
    log.step('connectToServer returns', s);
    log.value('serverName', s.serverName());
  },

  'local.connect.notFound': localConnectFails,
  'local.connect.regularFile': localConnectFails,
  'local.connect.directory': localConnectFails,
  'local.connect.staleSocket': localConnectFails,

  async 'local.peerClose.unread'(scope, p, log) {
    const s = scope.keep(new QLocalSocket());
    record(s, log);
    s.connectToServer(p.path!);
    log.mark('connectToServer returns');
    await waitUntil(() => state(s) === 0, 5000, 'the remote close');
    await settle();
    log.step('closed by the peer', s);
    log.value('openMode', s.openMode());
    log.value('isValid', s.isValid());
    log.value('bytesAvailable', s.bytesAvailable());
    log.value('readAll', text(s.readAll()));
    log.value('serverName', s.serverName());
    log.value('fullServerName', s.fullServerName());
  },

  async 'local.disconnectFromServer.pendingWrites'(scope, p, log) {
    const s = scope.keep(new QLocalSocket());
    record(s, log);
    s.connectToServer(p.path!);
    log.mark('connectToServer returns');
    await waitUntil(() => [0, 3].includes(state(s)), 5000, 'connected');
    await settle();
    log.step('connected', s);
    log.value('openMode', s.openMode());
    log.value('serverName', rel(s.serverName(), p));
    log.value('fullServerName', rel(s.fullServerName(), p));
    log.value('write', s.write('abc'));
    s.disconnectFromServer();
    log.step('disconnectFromServer returns', s);
    await waitUntil(() => state(s) === 0, 5000, 'the close');
    await settle();
    log.step('closed', s);
    log.value('serverName', s.serverName());
    log.value('openMode', s.openMode());
    log.value('isValid', s.isValid());
  },

  async 'local.close.pendingWrites'(scope, p, log) {
    const s = scope.keep(new QLocalSocket());
    record(s, log);
    s.connectToServer(p.path!);
    log.mark('connectToServer returns');
    await waitUntil(() => [0, 3].includes(state(s)), 5000, 'connected');
    await settle();
    log.step('connected', s);
    log.value('write', s.write('abc'));
    s.close();
    log.step('close returns', s);
    log.value('bytesToWrite', s.bytesToWrite());
    log.value('openMode', s.openMode());
    await waitUntil(() => state(s) === 0, 5000, 'the close');
    await settle();
    log.step('closed', s);
    log.value('openMode', s.openMode());
    log.value('isValid', s.isValid());
  },

  async 'local.readBufferSize'(scope, p, log) {
    const s = scope.keep(new QLocalSocket());
    record(s, log);
    s.setReadBufferSize(10);
    log.value('readBufferSize', s.readBufferSize());
    s.connectToServer(p.path!);
    log.mark('connectToServer returns');
    let total = 0;
    while (total < 25) {
      await waitUntil(() => s.bytesAvailable() > 0, 5000, `data (${total} of 25 read)`);
      await settle();
      log.value('bytesAvailable', s.bytesAvailable());
      const chunk = s.readAll();
      log.value('readAll', text(chunk));
      total += chunk.length;
    }
    await settle();
    log.step('all read', s);
  },

  async 'local.abort'(scope, p, log) {
    const s = scope.keep(new QLocalSocket());
    record(s, log);
    s.connectToServer(p.path!);
    log.mark('connectToServer returns');
    await waitUntil(() => [0, 3].includes(state(s)), 5000, 'connected');
    await settle();
    log.step('connected', s);
    log.value('waitForReadyRead', await s.waitForReadyRead(100));
    log.step('waitForReadyRead returns', s);
    log.value('write', s.write('abc'));
    s.abort();
    log.step('abort returns', s);
    log.value('bytesToWrite', s.bytesToWrite());
    log.value('openMode', s.openMode());
    log.value('isValid', s.isValid());
    log.value('serverName', s.serverName());
    await settle();
    log.mark('settled');
    s.abort();
    log.step('abort again returns', s);
    log.value('openMode', s.openMode());
  },

  // --- QLocalServer

  async 'localServer.listen.emptyName'(scope, _p, log) {
    const server = scope.keep(new QLocalServer());
    log.value('listen', await server.listen(''));
    log.serverStep('listen returns', server);
    log.value('serverName', server.serverName());
  },

  async 'localServer.listen.inUse'(scope, p, log) {
    const server = scope.keep(new QLocalServer());
    log.value('listen', await server.listen(p.path!));
    log.serverStep('listen returns', server);
    log.value('serverName', server.serverName());
    log.value('fullServerName', server.fullServerName());
  },

  async 'localServer.listen.regularFile'(scope, p, log) {
    const server = scope.keep(new QLocalServer());
    log.value('listen', await server.listen(p.path!));
    log.serverStep('listen returns', server);
    log.value('isFile', isFile(p.path!));
  },

  async 'localServer.listen.twice'(scope, p, log) {
    const server = scope.keep(new QLocalServer());
    log.serverStep('new', server);
    log.value('maxPendingConnections', server.maxPendingConnections());
    log.value('listen', await server.listen(p.name!));
    log.serverStep('listen returns', server);
    log.value('serverName', server.serverName());
    log.value('fullServerName', rel(server.fullServerName(), p));
    log.value('listen', await server.listen(p.name!));
    log.serverStep('second listen returns', server);
    server.close();
    log.serverStep('close returns', server);
    log.value('serverName', server.serverName());
    log.value('fileExists', fs.existsSync(path.join(p.tmp!, p.name!)));
  },

  async 'localServer.listen.tooLong'(scope, p, log) {
    const server = scope.keep(new QLocalServer());
    log.value('listen', await server.listen(p.path!));
    log.serverStep('listen returns', server);
  },

  async 'localServer.removeServer'(scope, p, log) {
    log.value('removeServer(nothing there)', QLocalServer.removeServer(p.missing!));
    log.value('removeServer(stale socket)', QLocalServer.removeServer(p.stale!));
    log.value('staleExists', fs.existsSync(p.stale!));
    const server = scope.keep(new QLocalServer());
    log.value('listen', await server.listen(p.live!));
    log.value('removeServer(live server)', QLocalServer.removeServer(p.live!));
    log.value('liveExists', fs.existsSync(p.live!));
    log.serverStep('after removeServer', server);
    const c = scope.keep(new QLocalSocket());
    record(c, log);
    c.connectToServer(p.live!);
    log.mark('connectToServer returns');
    await waitUntil(() => state(c) === 0, 5000, 'the failure');
    await settle();
    log.step('failed', c);
  },

  async 'localServer.removeServer.regularFile'(_scope, p, log) {
    log.value('removeServer', QLocalServer.removeServer(p.path!));
    log.value('fileExists', fs.existsSync(p.path!));
  },

  async 'localServer.pendingConnections.limit'(scope, p, log) {
    const server = scope.keep(new QLocalServer());
    server.newConnection.connect(() => log.add('newConnection'));
    server.setMaxPendingConnections(2);
    log.value('listen', await server.listen(p.path!));
    const clients = [0, 1, 2, 3, 4].map(() => scope.keep(new QLocalSocket()));
    for (const c of clients) c.connectToServer(p.path!);
    await waitUntil(() => clients.every((c) => state(c) === 3), 5000, '5 connected clients');
    await spin(100);
    log.mark('5 clients connected');
    log.value('hasPendingConnections', server.hasPendingConnections());
    let taken = 0;
    for (let i = 0; i < 6; i++) {
      const s = server.nextPendingConnection();
      if (s !== null) {
        scope.keep(s);
        taken += 1;
      }
      log.value('nextPendingConnection', s !== null);
      await spin(100);
      log.mark('settled');
    }
    log.value('taken', taken);
  },
};

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

// --- QTcpSocket through real proxies

async function proxied(
  scope: Scope,
  p: ScenarioParams,
  log: EventLog,
  targetHost: string,
  targetPort: number,
): Promise<QTcpSocket> {
  const proxy = new QNetworkProxy(
    p.proxyType === 'socks5' ? ProxyType.Socks5Proxy : ProxyType.HttpProxy,
    p.proxyHost!,
    p.proxyPort!,
    p.user ?? '',
    p.password ?? '',
  );
  const s = scope.keep(new QTcpSocket());
  s.setProxy(proxy);
  record(s, log);
  s.connectToHost(targetHost, targetPort);
  log.step('connectToHost returns', s);
  await waitUntil(() => [0, 3].includes(state(s)), 10000, 'connected or failed');
  await settle();
  return s;
}

const proxyScenarios: Record<string, Scenario> = {
  async 'proxy.connect.echo'(scope, p, log) {
    const s = await proxied(scope, p, log, '127.0.0.1', p.port!);
    log.step('connected', s);
    log.value('peerAddress', s.peerAddress().toString());
    log.value('peerPortIsTarget', s.peerPort() === p.port);
    log.value('write', s.write('ping'));
    await waitUntil(() => s.bytesAvailable() >= 4, 5000, 'the echo');
    await settle();
    log.value('readAll', text(s.readAll()));
    s.disconnectFromHost();
    log.step('disconnectFromHost returns', s);
    await waitUntil(() => state(s) === 0, 5000, 'the close');
    await settle();
    log.step('closed', s);
  },

  async 'proxy.connect.fails'(scope, p, log) {
    const s = await proxied(scope, p, log, p.host ?? '127.0.0.1', p.port!);
    log.step('failed', s);
    log.value('peerName', s.peerName());
    log.value('peerAddress', s.peerAddress().toString());
    log.value('peerPort', s.peerPort());
    log.value('isOpen', s.isOpen());
  },
};

/** Every scenario of the port, by name (the same names as in qt_scenarios.py). */
export const PORT_SCENARIOS: Readonly<Record<string, Scenario>> = {
  ...tcpScenarios,
  ...localScenarios,
  ...proxyScenarios,
};

/**
 * Runs one scenario on the port, with Qt warnings recorded as `warning("...")` events, and
 * closes everything it opened. Never throws: a failure is returned with the events so far.
 */
export async function runPortScenario(
  name: string,
  params: ScenarioParams,
  table: Readonly<Record<string, Scenario>> = PORT_SCENARIOS,
): Promise<ScenarioResult> {
  const scenario = table[name];
  if (!scenario) throw new Error(`no port scenario named ${name}`);
  const log = new EventLog();
  const previous = qInstallMessageHandler((type, message) => {
    if (type === QtMsgType.QtWarningMsg) log.add(`warning(${js(message)})`);
  });
  const scope = new Scope();
  let result: ScenarioResult;
  try {
    await scenario(scope, params, log);
    result = { events: [...log.events] };
  } catch (err) {
    result = { events: [...log.events], failure: (err as Error).stack ?? String(err) };
  }
  scope.closeAll();
  await spin(10);
  qInstallMessageHandler(previous);
  return result;
}
