/**
 * Helpers for the QLocalSocket / QLocalServer specs: unique server names, a signal
 * recorder in the format of socket-log.ts, Qt's LocalSocket invariant checks
 * (tst_qlocalsocket.cpp's `LocalSocket` class), stale socket files and file modes.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { QLocalSocket } from '../../lib/qtnetwork/index.js';

let counter = 0;

/**
 * A server name no other test (or parallel Jest worker) uses:
 * `qtport-<tag>-<pid>-<counter>`.
 */
export function uniqueLocalName(tag = 'test'): string {
  counter += 1;
  return `qtport-${tag}-${process.pid}-${counter}`;
}

/** A fresh private directory under os.tmpdir(); the caller removes it (removeDir). */
export function makeTempDir(tag = 'dir'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `qtport-${tag}-`));
}

/** Removes a directory made by makeTempDir, whatever is in it. */
export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface LocalSignalLog {
  readonly log: string[];
  /** Appends a marker (e.g. "[returns]") between recorded signals. */
  mark(text: string): void;
  /** Disconnects the recording slots. */
  stop(): void;
}

/**
 * Records a QLocalSocket's signals as strings, in emission order: `stateChanged(2)`,
 * `connected`, `readyRead(5)` (bytesAvailable() in the slot), `bytesWritten(3)`,
 * `errorOccurred(1, "QLocalSocket: Remote closed", state=3)`, `readChannelFinished`,
 * `aboutToClose`, `disconnected`.
 */
export function recordLocalSignals(socket: QLocalSocket): LocalSignalLog {
  const log: string[] = [];
  const offs = [
    socket.stateChanged.connect((s) => log.push(`stateChanged(${s})`)),
    socket.connected.connect(() => log.push('connected')),
    socket.readyRead.connect(() => log.push(`readyRead(${socket.bytesAvailable()})`)),
    socket.bytesWritten.connect((n) => log.push(`bytesWritten(${n})`)),
    socket.errorOccurred.connect((e) =>
      log.push(
        `errorOccurred(${e}, ${JSON.stringify(socket.errorString())}, state=${socket.state()})`,
      ),
    ),
    socket.readChannelFinished.connect(() => log.push('readChannelFinished')),
    socket.aboutToClose.connect(() => log.push('aboutToClose')),
    socket.disconnected.connect(() => log.push('disconnected')),
  ];
  return {
    log,
    mark: (text) => log.push(text),
    stop: () => offs.forEach((off) => off()),
  };
}

/**
 * The checks of tst_qlocalsocket.cpp's `LocalSocket` class, made in every slot: connected
 * means ConnectedState and open; disconnected means UnconnectedState; an error has a text
 * other than "Unknown error" and error() is the emitted error; stateChanged's argument is
 * state(); readyRead comes with bytes available. Violations are collected, not thrown.
 */
export function watchInvariants(socket: QLocalSocket): { violations: string[]; stop(): void } {
  const violations: string[] = [];
  const offs = [
    socket.connected.connect(() => {
      if (socket.state() !== 3) violations.push(`connected in state ${socket.state()}`);
      if (!socket.isOpen()) violations.push('connected while not open');
    }),
    socket.disconnected.connect(() => {
      if (socket.state() !== 0) violations.push(`disconnected in state ${socket.state()}`);
    }),
    socket.errorOccurred.connect((e) => {
      if (socket.errorString() === 'Unknown error') {
        violations.push(`errorOccurred(${e}) with "Unknown error"`);
      }
      if (socket.error() !== e)
        violations.push(`errorOccurred(${e}) but error() ${socket.error()}`);
    }),
    socket.stateChanged.connect((s) => {
      if (socket.state() !== s) violations.push(`stateChanged(${s}) but state() ${socket.state()}`);
    }),
    socket.readyRead.connect(() => {
      if (socket.bytesAvailable() <= 0) violations.push('readyRead with nothing available');
    }),
  ];
  return { violations, stop: () => offs.forEach((off) => off()) };
}

/** Records the arguments of every emission of a signal. */
export function spyOn<Args extends unknown[]>(signal: {
  connect(slot: (...args: Args) => void): () => void;
}): { calls: Args[]; count(): number; stop(): void } {
  const calls: Args[] = [];
  const stop = signal.connect((...args: Args) => {
    calls.push(args);
  });
  return { calls, count: () => calls.length, stop };
}

/**
 * Leaves a stale socket file at `socketPath`: a child Node process listens on it and is
 * killed with SIGKILL, so nobody unlinks the file and nobody accepts on it.
 */
export function makeStaleSocket(socketPath: string): void {
  const script = [
    "const net = require('node:net');",
    'const server = net.createServer();',
    'server.listen(process.argv[1], () => process.kill(process.pid, "SIGKILL"));',
  ].join('\n');
  const result = spawnSync(process.execPath, ['-e', script, socketPath], {
    timeout: 10000,
    stdio: 'ignore',
  });
  if (result.signal !== 'SIGKILL') {
    throw new Error(`the stale-socket child ended with ${result.signal ?? result.status}`);
  }
  if (!fs.lstatSync(socketPath).isSocket()) {
    throw new Error(`no socket file was left at ${socketPath}`);
  }
}

/**
 * The permission bits a new socket gets without access options: bind(2) creates it with
 * 0777 & ~umask. Found by creating a file with mode 0777 (process.umask() without an
 * argument is deprecated).
 */
export function modeFromUmask(): number {
  const dir = makeTempDir('umask');
  try {
    const file = path.join(dir, 'probe');
    fs.writeFileSync(file, '', { mode: 0o777 });
    return fs.statSync(file).mode & 0o777;
  } finally {
    removeDir(dir);
  }
}

/** The permission bits of the file at `p` (not following a symbolic link). */
export function permissionBits(p: string): number {
  return fs.lstatSync(p).mode & 0o777;
}

/** True if a socket file is at `p`. */
export function isSocketAt(p: string): boolean {
  try {
    return fs.lstatSync(p).isSocket();
  } catch {
    return false;
  }
}

/** True if /usr/bin/python3 can import PyQt5 (real Qt), for tests that talk to real Qt. */
export function havePyQt5(): boolean {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import PyQt5.QtNetwork'], {
    timeout: 15000,
    stdio: 'ignore',
  });
  return r.status === 0;
}
