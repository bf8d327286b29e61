/**
 * Qt's message handler, for the warnings Qt prints with `qWarning()` (for example
 * "QTcpServer::listen() called when already listening"). Install a handler to route or
 * silence them; the default writes to stderr, as Qt does.
 */

/** Qt's `QtMsgType` values. */
export enum QtMsgType {
  QtDebugMsg = 0,
  QtWarningMsg = 1,
  QtCriticalMsg = 2,
  QtFatalMsg = 3,
  QtInfoMsg = 4,
}

/** Receives each message: its type and text. */
export type QtMessageHandler = (type: QtMsgType, message: string) => void;

const defaultHandler: QtMessageHandler = (_type, message) => {
  process.stderr.write(`${message}\n`);
};

let handler: QtMessageHandler = defaultHandler;

/**
 * Installs `next` as the message handler and returns the previous one; `null` restores
 * the default (stderr), as `qInstallMessageHandler(nullptr)` does.
 */
export function qInstallMessageHandler(next: QtMessageHandler | null): QtMessageHandler {
  const previous = handler;
  handler = next ?? defaultHandler;
  return previous;
}

/** Sends a warning to the installed message handler. */
export function qWarning(message: string): void {
  handler(QtMsgType.QtWarningMsg, message);
}
