/**
 * QIODevice on sockets, on the port: the twins of fidelity_iodevice.py (real Qt through
 * PyQt5), scenario by scenario, making the same calls in the same order and logging the same
 * lines. Read transactions over a message that arrives in parts, skip/peek/readLine/getChar
 * edges, Text mode, read and write channels with their signals, and pos/size/seek/reset, on a
 * QTcpSocket (p.port) and on a QLocalSocket (p.path), against fidelity-iodevice.spec.ts's
 * script peers (each sends its next part when it receives a byte; 'q' makes it close).
 */
import {
  OpenModeFlag,
  QLocalSocket,
  QTcpSocket,
  type OpenMode,
} from '../../lib/qtnetwork/index.js';
import {
  settle,
  waitUntil,
  type EventLog,
  type Scenario,
  type ScenarioParams,
  type Scope,
} from './port-scenarios.js';

type Kind = 'tcp' | 'local';
type Socket = QTcpSocket | QLocalSocket;
type KindScenario = (kind: Kind, scope: Scope, p: ScenarioParams, log: EventLog) => Promise<void>;

/** One scenario for both kinds: 'tcp.<name>' and 'local.<name>'. */
function both(name: string, fn: KindScenario): Record<string, Scenario> {
  return {
    [`tcp.${name}`]: (scope, p, log) => fn('tcp', scope, p, log),
    [`local.${name}`]: (scope, p, log) => fn('local', scope, p, log),
  };
}

// ---------------------------------------------------------------------- helpers

/** Bytes as a latin-1 string. */
const lat = (data: Buffer): string => data.toString('latin1');

const char = (c: number | null): string | null => (c === null ? null : String.fromCharCode(c));

const state = (s: Socket): number => s.state();

const counts = (s: Socket): string => `rc=${s.readChannelCount()} wc=${s.writeChannelCount()}`;

function recordIo(s: Socket, log: EventLog): void {
  s.stateChanged.connect((st: number) => log.add(`stateChanged(${st}) ${counts(s)}`));
  s.connected.connect(() => log.add(`connected ${counts(s)}`));
  s.disconnected.connect(() => log.add(`disconnected ${counts(s)}`));
  s.readChannelFinished.connect(() => log.add(`readChannelFinished ${counts(s)}`));
  s.aboutToClose.connect(() => log.add(`aboutToClose ${counts(s)}`));
  s.readyRead.connect(() => log.add(`readyRead(${s.bytesAvailable()})`));
  s.channelReadyRead.connect((ch) => log.add(`channelReadyRead(${ch}, ${s.bytesAvailable()})`));
  s.bytesWritten.connect((n) => log.add(`bytesWritten(${n})`));
  s.channelBytesWritten.connect((ch, n) => log.add(`channelBytesWritten(${ch}, ${n})`));
  s.errorOccurred.connect((e: number) => log.add(`errorOccurred(${e})`));
}

/** Disconnects recordIo's slots (before a QLocalSocket's close; see the Python twin). */
function unrecord(s: Socket): void {
  s.stateChanged.disconnect();
  s.connected.disconnect();
  s.disconnected.disconnect();
  s.readChannelFinished.disconnect();
  s.aboutToClose.disconnect();
  s.readyRead.disconnect();
  s.channelReadyRead.disconnect();
  s.bytesWritten.disconnect();
  s.channelBytesWritten.disconnect();
  s.errorOccurred.disconnect();
}

async function connect(
  kind: Kind,
  scope: Scope,
  p: ScenarioParams,
  log: EventLog,
  mode: OpenMode = OpenModeFlag.ReadWrite,
  record = true,
): Promise<Socket> {
  let s: Socket;
  if (kind === 'tcp') {
    const tcp = scope.keep(new QTcpSocket());
    tcp.connectToHost('127.0.0.1', p.port!, mode);
    s = tcp;
  } else {
    const local = scope.keep(new QLocalSocket());
    local.connectToServer(p.path!, mode);
    s = local;
  }
  await waitUntil(() => state(s) === 3, 5000, 'connected');
  if (record) recordIo(s, log);
  return s;
}

async function waitBytes(s: Socket, n: number, what = 'the data'): Promise<void> {
  await waitUntil(() => s.bytesAvailable() >= n, 5000, what);
  await settle();
}

async function nextPart(s: Socket, n: number, log: EventLog): Promise<void> {
  s.write('n');
  await waitBytes(s, n, 'the next part');
  log.value('bytesAvailable', s.bytesAvailable());
}

function readFrame(s: Socket, log: EventLog): void {
  s.startTransaction();
  const head = s.read(4);
  if (head.length < 4) {
    s.rollbackTransaction();
    log.value('frame', { incomplete: 'header', bytesAvailable: s.bytesAvailable() });
    return;
  }
  const n = head.readUInt32BE(0);
  const body = s.read(n);
  if (body.length < n) {
    s.rollbackTransaction();
    log.value('frame', {
      incomplete: 'body',
      got: body.length,
      of: n,
      bytesAvailable: s.bytesAvailable(),
    });
    return;
  }
  s.commitTransaction();
  log.value('frame', { body: lat(body), bytesAvailable: s.bytesAvailable() });
}

function close(kind: Kind, s: Socket): void {
  if (kind === 'local') unrecord(s);
  s.close();
}

function endConnection(s: Socket): void {
  if (s instanceof QTcpSocket) s.disconnectFromHost();
  else s.disconnectFromServer();
}

// ---------------------------------------------------------------------- scenarios

const transactionFrames: KindScenario = async (kind, scope, p, log) => {
  const s = await connect(kind, scope, p, log);
  await nextPart(s, 9, log);
  log.mark('first part');
  readFrame(s, log);
  log.value('isTransactionStarted', s.isTransactionStarted());
  readFrame(s, log);
  await nextPart(s, 26, log);
  readFrame(s, log);
  readFrame(s, log);
  readFrame(s, log);
  await nextPart(s, 9, log);
  readFrame(s, log);
  readFrame(s, log);
  s.write('q');
  await waitUntil(() => state(s) === 0, 5000, 'the peer to close');
  await settle();
  log.mark('peer closed');
  readFrame(s, log);
};

const transactionOps: KindScenario = async (kind, scope, p, log) => {
  const s = await connect(kind, scope, p, log);
  await nextPart(s, 15, log);
  log.mark('transaction 1');
  s.startTransaction();
  log.value('isTransactionStarted', s.isTransactionStarted());
  log.value('readLine', lat(s.readLine()));
  log.value('bytesAvailable', s.bytesAvailable());
  log.value('canReadLine', s.canReadLine());
  log.value('readLine', lat(s.readLine()));
  log.value('atEnd', s.atEnd());
  log.value('readLine', lat(s.readLine()));
  log.value('getChar', char(s.getChar()));
  log.value('read(5)', lat(s.read(5)));
  log.value('peek(5)', lat(s.peek(5)));
  log.value('skip(3)', s.skip(3));
  log.value('size', s.size());
  s.rollbackTransaction();
  log.value('isTransactionStarted', s.isTransactionStarted());
  log.value('bytesAvailable', s.bytesAvailable());
  log.value('canReadLine', s.canReadLine());
  log.mark('transaction 2');
  s.startTransaction();
  log.value('getChar', char(s.getChar()));
  log.value('peek(4)', lat(s.peek(4)));
  log.value('skip(5)', s.skip(5));
  log.value('read(3)', lat(s.read(3)));
  log.value('peek(100)', lat(s.peek(100)));
  log.value('readLine(4)', lat(s.readLine(4)));
  log.value('bytesAvailable', s.bytesAvailable());
  s.ungetChar('X');
  s.setCurrentReadChannel(0);
  s.startTransaction();
  log.value('readAll', lat(s.readAll()));
  log.value('bytesAvailable', s.bytesAvailable());
  s.rollbackTransaction();
  log.value('bytesAvailable', s.bytesAvailable());
  s.rollbackTransaction();
  s.commitTransaction();
  log.mark('transaction 3');
  s.startTransaction();
  log.value('read(9)', lat(s.read(9)));
  s.commitTransaction();
  log.value('bytesAvailable', s.bytesAvailable());
  log.value('peek(100)', lat(s.peek(100)));
  await nextPart(s, 12, log);
  s.startTransaction();
  log.value('readLine', lat(s.readLine()));
  log.value('readLine', lat(s.readLine()));
  s.commitTransaction();
  log.value('readLine', lat(s.readLine()));
  log.value('bytesAvailable', s.bytesAvailable());
  log.mark('close in a transaction');
  s.startTransaction();
  log.value('read(1)', lat(s.read(1)));
  close(kind, s);
  log.value('isTransactionStarted', s.isTransactionStarted());
  log.value('bytesAvailable', s.bytesAvailable());
  s.startTransaction();
  log.value('isTransactionStarted', s.isTransactionStarted());
  log.value('read(1)', lat(s.read(1)));
  s.commitTransaction();
  log.value('isTransactionStarted', s.isTransactionStarted());
};

const transactionPeerCloses: KindScenario = async (kind, scope, p, log) => {
  const s = await connect(kind, scope, p, log);
  await nextPart(s, 6, log);
  s.startTransaction();
  log.value('read(4)', lat(s.read(4)));
  s.write('q');
  await waitUntil(() => state(s) === 0, 5000, 'the peer to close');
  await settle();
  log.mark('peer closed');
  log.value('isTransactionStarted', s.isTransactionStarted());
  log.value('isOpen', s.isOpen());
  log.value('bytesAvailable', s.bytesAvailable());
  log.value('read(10)', lat(s.read(10)));
  log.value('atEnd', s.atEnd());
  log.value('skip(3)', s.skip(3));
  log.value('skip(0)', s.skip(0));
  s.rollbackTransaction();
  log.value('bytesAvailable', s.bytesAvailable());
  log.value('readLine', lat(s.readLine()));
  log.value('skip(3)', s.skip(3));
  log.value('skip(0)', s.skip(0));
  log.value('getChar', char(s.getChar()));
  log.value('read(3)', lat(s.read(3)));
  s.startTransaction();
  log.value('readAll', lat(s.readAll()));
  close(kind, s);
  log.value('isTransactionStarted', s.isTransactionStarted());
};

const transactionReadBufferSize: KindScenario = async (kind, scope, p, log) => {
  const s = await connect(kind, scope, p, log);
  s.setReadBufferSize(4);
  await nextPart(s, 4, log);
  log.mark('transaction');
  s.startTransaction();
  log.value('read(4)', lat(s.read(4)));
  await settle();
  log.value('readAll', lat(s.readAll()));
  await settle();
  log.value('readAll', lat(s.readAll()));
  await settle();
  s.rollbackTransaction();
  log.value('bytesAvailable', s.bytesAvailable());
  await settle();
  log.mark('commit');
  s.startTransaction();
  log.value('readAll', lat(s.readAll()));
  s.commitTransaction();
  await settle();
  s.startTransaction();
  log.value('readAll', lat(s.readAll()));
  s.commitTransaction();
  await settle();
  log.value('readAll', lat(s.readAll()));
  await settle();
  log.mark('readBufferSize 0 during a transaction');
  await nextPart(s, 4, log);
  s.startTransaction();
  log.value('read(4)', lat(s.read(4)));
  await settle();
  s.setReadBufferSize(0);
  await waitUntil(() => s.bytesAvailable() >= 4, 5000, 'the rest');
  await settle();
  s.rollbackTransaction();
  log.value('bytesAvailable', s.bytesAvailable());
  log.value('readAll', lat(s.readAll()));
};

const edges: KindScenario = async (kind, scope, p, log) => {
  const s = await connect(kind, scope, p, log);
  await nextPart(s, 29, log);
  log.value('isSequential', s.isSequential());
  log.value('pos', s.pos());
  log.value('size', s.size());
  log.value('seek(0)', s.seek(0));
  log.value('seek(3)', s.seek(3));
  log.value('reset', s.reset());
  log.value('pos', s.pos());
  log.value('readLine(5)', lat(s.readLine(5)));
  log.value('readLine(2)', lat(s.readLine(2)));
  log.value('readLine(1)', lat(s.readLine(1)));
  log.value('readLine(3)', lat(s.readLine(3)));
  log.value('readLine', lat(s.readLine()));
  log.value('getChar', char(s.getChar()));
  s.ungetChar('s');
  s.ungetChar('>');
  log.value('readLine(100)', lat(s.readLine(100)));
  log.value('peek(100)', lat(s.peek(100)));
  log.value('peek(0)', lat(s.peek(0)));
  log.value('read(0)', lat(s.read(0)));
  log.value('skip(0)', s.skip(0));
  log.value('skip(-1)', s.skip(-1));
  log.value('skip(2)', s.skip(2));
  log.value('skip(100)', s.skip(100));
  log.value('bytesAvailable', s.bytesAvailable());
  log.value('atEnd', s.atEnd());
  log.value('size', s.size());
  log.value('skip(5)', s.skip(5));
  log.value('getChar', char(s.getChar()));
  log.value('peek(5)', lat(s.peek(5)));
  log.value('canReadLine', s.canReadLine());
  s.ungetChar('\n');
  log.value('canReadLine', s.canReadLine());
  log.value('readLine', lat(s.readLine()));
  close(kind, s);
  log.mark('closed');
  log.value('pos', s.pos());
  log.value('size', s.size());
  log.value('skip(1)', s.skip(1));
  log.value('skip(-1)', s.skip(-1));
  log.value('peek(1)', lat(s.peek(1)));
  log.value('readLine(5)', lat(s.readLine(5)));
  log.value('seek(0)', s.seek(0));
  log.value('atEnd', s.atEnd());
};

const textMode: KindScenario = async (kind, scope, p, log) => {
  const s = await connect(kind, scope, p, log, OpenModeFlag.ReadWrite | OpenModeFlag.Text);
  log.value('openMode', s.openMode() & ~OpenModeFlag.Unbuffered);
  log.value('isTextModeEnabled', s.isTextModeEnabled());
  await nextPart(s, 15, log);
  log.value('canReadLine', s.canReadLine());
  log.value('readLine', lat(s.readLine()));
  log.value('bytesAvailable', s.bytesAvailable());
  if (kind === 'tcp') {
    log.value('readLine', lat(s.readLine()));
  } else {
    log.value('read(5)', lat(s.read(5)));
  }
  log.value('peek(3)', lat(s.peek(3)));
  log.value('getChar', [char(s.getChar()), char(s.getChar()), char(s.getChar())]);
  log.value('read(4)', lat(s.read(4)));
  log.value('bytesAvailable', s.bytesAvailable());
  await nextPart(s, 10, log);
  log.value('skip(2)', s.skip(2));
  log.value('bytesAvailable', s.bytesAvailable());
  log.value('peek(20)', lat(s.peek(20)));
  log.value('readAll', lat(s.readAll()));
  await nextPart(s, 9, log);
  s.startTransaction();
  log.value('readLine', lat(s.readLine()));
  log.value('read(5)', lat(s.read(5)));
  log.value('bytesAvailable', s.bytesAvailable());
  s.rollbackTransaction();
  s.startTransaction();
  log.value('skip(4)', s.skip(4));
  log.value('bytesAvailable', s.bytesAvailable());
  s.commitTransaction();
  log.value('readLine', lat(s.readLine()));
  log.value('readLine', lat(s.readLine()));
  s.setTextModeEnabled(false);
  log.value('isTextModeEnabled', s.isTextModeEnabled());
  close(kind, s);
  s.setTextModeEnabled(true);
  log.value('isTextModeEnabled', s.isTextModeEnabled());
};

const textEnabledLater: KindScenario = async (kind, scope, p, log) => {
  const s = await connect(kind, scope, p, log);
  await nextPart(s, 17, log);
  log.value('readLine', lat(s.readLine()));
  s.setTextModeEnabled(true);
  log.value('openMode', s.openMode() & ~OpenModeFlag.Unbuffered);
  log.value('readLine', lat(s.readLine()));
  log.value('read(3)', lat(s.read(3)));
  log.value('readAll', lat(s.readAll()));
};

const channels: KindScenario = async (kind, scope, p, log) => {
  let s: Socket;
  if (kind === 'tcp') {
    const tcp = scope.keep(new QTcpSocket());
    log.value('counts', counts(tcp));
    recordIo(tcp, log);
    tcp.connectToHost('127.0.0.1', p.port!);
    log.value('counts', counts(tcp));
    await waitUntil(() => state(tcp) === 3, 5000, 'connected');
    s = tcp;
  } else {
    const local = scope.keep(new QLocalSocket());
    log.value('counts', counts(local));
    local.connectToServer(p.path!);
    await waitUntil(() => state(local) === 3, 5000, 'connected');
    recordIo(local, log);
    s = local;
  }
  log.mark('connected');
  log.value('counts', counts(s));
  log.value('currentReadChannel', s.currentReadChannel());
  log.value('currentWriteChannel', s.currentWriteChannel());
  await nextPart(s, 4, log);
  log.value('read', lat(s.readAll()));
  s.setCurrentReadChannel(0);
  s.setCurrentWriteChannel(0);
  s.startTransaction();
  s.setCurrentReadChannel(0);
  s.rollbackTransaction();
  log.mark('disconnect');
  endConnection(s);
  await waitUntil(() => state(s) === 0, 5000, 'the close');
  await settle();
  log.value('counts', counts(s));
  log.value('isOpen', s.isOpen());
};

/** Every twin, by the names fidelity_iodevice.py gives them. */
export const IODEVICE_SCENARIOS: Readonly<Record<string, Scenario>> = {
  ...both('transaction.frames', transactionFrames),
  ...both('transaction.ops', transactionOps),
  ...both('transaction.peerCloses', transactionPeerCloses),
  ...both('transaction.readBufferSize', transactionReadBufferSize),
  ...both('edges', edges),
  ...both('text', textMode),
  ...both('text.enabledLater', textEnabledLater),
  ...both('channels', channels),

  async 'tcp.channels.modes'(scope, p, log) {
    for (const [name, mode] of [
      ['ReadOnly', OpenModeFlag.ReadOnly],
      ['WriteOnly', OpenModeFlag.WriteOnly],
    ] as const) {
      log.mark(name);
      const s = await connect('tcp', scope, p, log, mode, false);
      log.value('counts', counts(s));
      (s as QTcpSocket).abort();
      log.value('counts', counts(s));
    }
  },

  async 'tcp.channels.refused'(scope, p, log) {
    const s = scope.keep(new QTcpSocket());
    recordIo(s, log);
    s.connectToHost('127.0.0.1', p.port!);
    await waitUntil(() => state(s) === 0, 5000, 'the failure');
    await settle();
    log.value('counts', counts(s));
    log.value('isOpen', s.isOpen());
  },
};
