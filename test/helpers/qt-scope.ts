import {
  qInstallMessageHandler,
  QTcpServer,
  QTcpSocket,
  type QAbstractSocket,
  type QtMsgType,
} from '../../lib/qtnetwork/index.js';

/**
 * Owns what a test opens (servers, sockets, anything else with a cleanup) and closes it
 * all in `dispose()`, which the spec calls from `afterEach`, so a failing test leaves
 * nothing listening or connected behind it.
 */
export class Scope {
  private readonly servers = new Set<QTcpServer>();
  private readonly sockets = new Set<QAbstractSocket>();
  private readonly cleanups: Array<() => void> = [];

  /** Tracks `server` (a new QTcpServer by default) and returns it. */
  server<T extends QTcpServer = QTcpServer>(server?: T): T {
    const s = server ?? (new QTcpServer() as T);
    this.servers.add(s);
    return s;
  }

  /** Tracks `socket` (a new QTcpSocket by default) and returns it. */
  socket<T extends QAbstractSocket = QTcpSocket>(socket?: T): T {
    const s = socket ?? (new QTcpSocket() as unknown as T);
    this.sockets.add(s);
    return s;
  }

  /** `server.nextPendingConnection()`, tracked. */
  take(server: QTcpServer): QTcpSocket | null {
    const s = server.nextPendingConnection();
    if (s) this.sockets.add(s);
    return s;
  }

  /** Runs `fn` at dispose time. */
  defer(fn: () => void): void {
    this.cleanups.push(fn);
  }

  /** Aborts every socket, closes every server, runs the deferred cleanups. */
  dispose(): void {
    for (const s of this.sockets) s.abort();
    for (const s of this.servers) s.close();
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        fn();
      } catch {
        // cleanup must go on
      }
    }
    this.sockets.clear();
    this.servers.clear();
  }
}

/**
 * Routes Qt warnings into `messages` instead of stderr until `restore()` (which installs
 * the default handler again, as `qInstallMessageHandler(nullptr)` does).
 */
export function captureQtMessages(): {
  messages: string[];
  types: QtMsgType[];
  restore: () => void;
} {
  const messages: string[] = [];
  const types: QtMsgType[] = [];
  qInstallMessageHandler((type, message) => {
    types.push(type);
    messages.push(message);
  });
  return { messages, types, restore: () => void qInstallMessageHandler(null) };
}

/** Counts the emissions of a signal-like object until `stop()`. */
export function countEmissions(signal: { connect(slot: () => void): () => void }): {
  count: () => number;
  stop: () => void;
} {
  let n = 0;
  const stop = signal.connect(() => {
    n++;
  });
  return { count: () => n, stop };
}

/**
 * Reads one line from `socket`, waiting (bounded by `ms`) until a whole line is buffered.
 * Rejects if the connection ends or the time runs out first.
 */
export async function readLineFrom(socket: QAbstractSocket, ms = 5000): Promise<string> {
  const deadline = Date.now() + ms;
  while (!socket.canReadLine()) {
    const left = deadline - Date.now();
    if (left <= 0 || !(await socket.waitForReadyRead(left))) {
      if (socket.canReadLine()) break;
      throw new Error(
        `no line within ${ms} ms (state ${socket.state()}, error "${socket.errorString()}")`,
      );
    }
  }
  return socket.readLine().toString('utf8');
}
