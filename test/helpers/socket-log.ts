/**
 * Records a socket's signals as readable strings, in emission order, so that a test can
 * compare the whole sequence with what real Qt emits:
 * `stateChanged(2)`, `hostFound`, `connected`, `readyRead(10)` (bytesAvailable() in the slot),
 * `bytesWritten(5)`, `errorOccurred(1, "The remote host closed the connection", state=3)`,
 * `readChannelFinished`, `aboutToClose`, `disconnected`.
 */
import type { QAbstractSocket } from '../../lib/qtnetwork/index.js';
import { qInstallMessageHandler } from '../../lib/qtnetwork/index.js';

export interface SignalLog {
  readonly log: string[];
  /** Appends a marker (e.g. "[returns]") between recorded signals. */
  mark(text: string): void;
  /** Disconnects the recording slots. */
  stop(): void;
}

export function recordSignals(socket: QAbstractSocket): SignalLog {
  const log: string[] = [];
  const offs = [
    socket.stateChanged.connect((s) => log.push(`stateChanged(${s})`)),
    socket.hostFound.connect(() => log.push('hostFound')),
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
 * Routes Qt warnings into an array instead of stderr. `restore()` puts the default handler
 * back (qInstallMessageHandler(null)).
 */
export function captureQtMessages(): { messages: string[]; restore(): void } {
  const messages: string[] = [];
  qInstallMessageHandler((_type, message) => messages.push(message));
  return { messages, restore: () => qInstallMessageHandler(null) };
}
