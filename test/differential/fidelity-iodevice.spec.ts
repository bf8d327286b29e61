/**
 * Differential suite for QIODevice on sockets: each scenario of fidelity_iodevice.py runs on
 * real Qt 5.15 (PyQt5, in a child process) and its twin in port-fidelity-iodevice.ts runs on
 * the port, against the same script peer, and the two event lists (signals with their
 * arguments, return values, warnings, and what the peer received) must be equal. See
 * differential.spec.ts for the method.
 *
 * Covered: read transactions over a QDataStream-style message that arrives in parts
 * (rollback while incomplete, commit once complete), every read call inside a transaction,
 * transactions and readBufferSize, a transaction when the peer closes and when the socket is
 * closed; readLine/peek/skip/getChar/ungetChar edges and their warnings; Text mode; read and
 * write channel counts and channelReadyRead/channelBytesWritten; pos/size/seek/reset. Each
 * on a QTcpSocket and on a QLocalSocket.
 *
 * The peers are script peers: each holds a list of parts and sends the next one whenever
 * it receives a byte from the socket ('q' makes it close its end instead), so a scenario
 * decides when the second part of a message comes and no timing is involved.
 *
 * Skips (with a printed reason) when /usr/bin/python3 (or $QT_DIFF_PYTHON) cannot import PyQt5.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { jest } from '@jest/globals';

import { makeTempDir, removeDir } from '../helpers/qlocal-helpers.js';
import { closedPort, pyqt5MissingReason, type RecordingPeer } from './peers.js';
import { IODEVICE_SCENARIOS } from './port-fidelity-iodevice.js';
import { makeRunner, type Case } from './runner.js';

jest.setTimeout(60000);

const PYTHON = process.env.QT_DIFF_PYTHON ?? '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const DRIVER = path.join(here, 'fidelity_iodevice.py');
const PREFIX = 'fidelity-iodevice:';
const pyqtMissing = pyqt5MissingReason(PYTHON);
if (pyqtMissing) console.log(`${PREFIX} every scenario skipped: ${pyqtMissing}`);

const { check, listQt } = makeRunner({
  python: PYTHON,
  driver: DRIVER,
  table: IODEVICE_SCENARIOS,
});

// ---------------------------------------------------------------------- the script peer

/**
 * A peer that sends `parts[i]` when it receives its i-th chunk of data (so the socket asks
 * for each part by writing a byte), closes its end on 'q', and records what it received.
 */
async function startScriptPeer(
  parts: readonly string[],
  where: { path: string } | { host: string },
): Promise<RecordingPeer> {
  const chunks = parts.map((s) => Buffer.from(s, 'latin1'));
  let connections: Array<{ received: Buffer; closed: boolean }> = [];
  const open = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const c = { received: Buffer.alloc(0), closed: false };
    connections.push(c);
    open.add(socket);
    let next = 0;
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      c.received = Buffer.concat([c.received, d]);
      if (d.includes(0x71 /* 'q' */)) socket.end();
      else if (next < chunks.length) socket.write(chunks[next++]);
    });
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      c.closed = true;
      open.delete(socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in where) server.listen(where.path, () => resolve());
    else server.listen({ host: where.host, port: 0 }, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    path: 'path' in where ? where.path : '',
    reset: () => {
      connections = [];
    },
    async report(ms = 3000) {
      const deadline = Date.now() + ms;
      while (connections.some((c) => !c.closed) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      return connections.map(
        (c) =>
          `peer: received ${JSON.stringify(c.received.toString('latin1'))}${c.closed ? '' : ' (still open)'}`,
      );
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The parts each scenario's peer sends, in order (latin-1). */
const SCRIPTS = {
  frames: ['\0\0\0\x0bhello', ' world\0\0\0\x03abc\0\0\0\x05', 'wxyz!'],
  ops: ['line one\nline t', 'wo\nend'],
  peerCloses: ['abcdef'],
  readBufferSize: ['0123456789', 'abcdefgh'],
  edges: ['hello world\nsecond line\nthird'],
  text: ['ab\r\ncd\r\r\nef\rgh\r', '\r\r\nX\r\nYZ\r\n', '1\r\n2\r\n3\r\n'],
  textLater: ['one\r\ntwo\r\nthree\r\n'],
  channels: ['pong'],
} as const;
type Script = keyof typeof SCRIPTS;

const tcpPeers = new Map<Script, RecordingPeer>();
const localPeers = new Map<Script, RecordingPeer>();
let refusedPort = 0;
let dir = '';

/**
 * docs/qt-differences.md, "QIODevice": the port follows Qt 6, whose warnings from readLine
 * name readLine ("QIODevice::readLine (QTcpSocket): device not open") where Qt 5.15 names
 * read. This renames Qt 5.15's warning just before a logged readLine call; nothing else.
 */
function qt6ReadLineWarnings(qt: string[]): string[] {
  return qt.map((line, i) =>
    line.startsWith('warning("QIODevice::read (') && qt[i + 1]?.startsWith('readLine')
      ? line.replace('QIODevice::read (', 'QIODevice::readLine (')
      : line,
  );
}

/** The same scenario on a QTcpSocket and on a QLocalSocket, each with its script peer. */
function bothKinds(
  name: string,
  script: Script,
  title: string,
  normalise?: (qt: string[]) => string[],
): Case[] {
  return [
    {
      scenario: `tcp.${name}`,
      title: `QTcpSocket: ${title}`,
      setup: () => {
        const peer = tcpPeers.get(script)!;
        return { params: { port: peer.port }, peer };
      },
      normalise,
    },
    {
      scenario: `local.${name}`,
      title: `QLocalSocket: ${title}`,
      setup: () => {
        const peer = localPeers.get(script)!;
        return { params: { path: peer.path }, peer };
      },
      normalise,
    },
  ];
}

const CASES: Case[] = [
  ...bothKinds(
    'transaction.frames',
    'frames',
    'length-prefixed frames read in transactions: rolled back while the first arrives in two parts, committed once whole',
  ),
  ...bothKinds(
    'transaction.ops',
    'ops',
    'readLine, getChar, read, peek, skip and readAll inside transactions; rollback, commit, the warnings, close during one',
  ),
  ...bothKinds(
    'transaction.peerCloses',
    'peerCloses',
    'the peer closes during a transaction: it stays started, the data readable; skip gives -1 once unconnected',
  ),
  ...bothKinds(
    'transaction.readBufferSize',
    'readBufferSize',
    'a transaction with readBufferSize 4 (TCP stops reading until it ends; the local stream goes on)',
  ),
  ...bothKinds(
    'edges',
    'edges',
    'readLine limits, peek past and skip beyond what is there, ungetChar, pos/size/seek/reset, calls on a closed socket',
    qt6ReadLineWarnings,
  ),
  ...bothKinds(
    'text',
    'text',
    'opened with Text: reads drop \\r, readLine folds a final \\r\\n, skip counts what it returns',
  ),
  ...bothKinds('text.enabledLater', 'textLater', 'setTextModeEnabled(true) on an open socket'),
  ...bothKinds(
    'channels',
    'channels',
    'channel counts through a connection, channelReadyRead/channelBytesWritten after readyRead/bytesWritten',
  ),
  {
    scenario: 'tcp.channels.modes',
    title: 'QTcpSocket: one read channel when ReadOnly, one write channel when WriteOnly',
    setup: () => {
      const peer = tcpPeers.get('channels')!;
      return { params: { port: peer.port }, peer };
    },
  },
  {
    scenario: 'tcp.channels.refused',
    title: 'QTcpSocket: a refused connection never has channels',
    setup: () => ({ params: { port: refusedPort } }),
  },
];

// ---------------------------------------------------------------------- the tests

const describeQt = pyqtMissing ? describe.skip : describe;

describeQt('QIODevice on sockets: Qt 5.15 (PyQt5) and the port, scenario by scenario', () => {
  beforeAll(async () => {
    dir = makeTempDir('fidelity-iodevice');
    for (const [script, parts] of Object.entries(SCRIPTS) as Array<[Script, readonly string[]]>) {
      tcpPeers.set(script, await startScriptPeer(parts, { host: '127.0.0.1' }));
      localPeers.set(script, await startScriptPeer(parts, { path: path.join(dir, script) }));
    }
    refusedPort = await closedPort();
  });

  afterAll(async () => {
    for (const p of [...tcpPeers.values(), ...localPeers.values()]) await p.close();
    tcpPeers.clear();
    localPeers.clear();
    if (dir) removeDir(dir);
  });

  it('the Qt driver and the port know the same scenarios', async () => {
    const listed = await listQt();
    expect(Object.keys(IODEVICE_SCENARIOS).sort()).toEqual(listed);
    expect(CASES.map((c) => c.scenario).sort()).toEqual(listed);
  });

  describe.each(CASES.map((c) => [c.scenario, c] as const))('%s', (_name, c) => {
    it(c.title, () => check(c));
  });
});

if (pyqtMissing) {
  it('fidelity-iodevice scenarios are skipped: real Qt is not available', () => {
    console.log(`${PREFIX} ${pyqtMissing}`);
    expect(pyqtMissing).not.toBeNull();
  });
}
