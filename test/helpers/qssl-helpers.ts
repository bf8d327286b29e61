/**
 * Helpers for the QSslSocket / QSslServer tests: configurations made from the test PKI,
 * servers on loopback, and a signal recorder that writes what a socket emits in the
 * notation the Qt 5.15 (PyQt5) probes print, so expected sequences read alike.
 */
import { readFileSync } from 'node:fs';

import {
  PeerVerifyMode,
  QSslCertificate,
  QSslConfiguration,
  QSslKey,
  QSslServer,
  QSslSocket,
  type QTcpServer,
} from '../../lib/qtnetwork/index.js';
import type { Resources } from './resources.js';

/** What a server or client presents and trusts. */
export interface SslSetup {
  cert?: string;
  key?: string;
  passphrase?: string;
  /** CA files trusted instead of the system's. */
  ca?: string[];
  verify?: PeerVerifyMode;
}

/** A configuration from files of the test PKI. */
export function sslConfig(setup: SslSetup): QSslConfiguration {
  const config = QSslConfiguration.defaultConfiguration();
  if (setup.cert) config.setLocalCertificateChain(QSslCertificate.fromPath(setup.cert));
  if (setup.key) {
    config.setPrivateKey(
      new QSslKey(readFileSync(setup.key), undefined, undefined, undefined, setup.passphrase),
    );
  }
  if (setup.ca) config.setCaCertificates(setup.ca.flatMap((f) => QSslCertificate.fromPath(f)));
  if (setup.verify !== undefined) config.setPeerVerifyMode(setup.verify);
  return config;
}

/** A QSslServer on 127.0.0.1 with `setup`, closed after the test. */
export async function startSslServer(res: Resources, setup: SslSetup): Promise<QSslServer> {
  const server = res.server(new QSslServer());
  server.setSslConfiguration(sslConfig(setup));
  if (!(await server.listen('127.0.0.1', 0))) throw new Error(server.errorString());
  return server;
}

/** A QSslSocket with `setup`, aborted after the test. */
export function sslClient(res: Resources, setup: SslSetup = {}): QSslSocket {
  const socket = res.socket(new QSslSocket());
  socket.setSslConfiguration(sslConfig(setup));
  return socket;
}

/** The next connection `server` hands out (encrypted, for a QSslServer); rejects after `ms`. */
export async function nextConnection<T extends QTcpServer>(
  res: Resources,
  server: T,
  ms = 5000,
): Promise<NonNullable<ReturnType<T['nextPendingConnection']>>> {
  const ok = server.hasPendingConnections() || (await server.waitForNewConnection(ms))[0];
  const socket = server.nextPendingConnection();
  if (!ok || !socket) throw new Error(`no connection within ${ms} ms`);
  res.socket(socket);
  return socket as NonNullable<ReturnType<T['nextPendingConnection']>>;
}

/**
 * Records what `socket` emits, as the PyQt5 probes print it: `stateChanged(3)`,
 * `modeChanged(1)`, `connected`, `encrypted`, `peerVerifyError(6)`, `sslErrors([6])`,
 * `error(13:The certificate has expired)`, `disconnected`.
 */
export function recordSsl(socket: QSslSocket): string[] {
  const log: string[] = [];
  socket.stateChanged.connect((s) => log.push(`stateChanged(${s})`));
  socket.modeChanged.connect((m) => log.push(`modeChanged(${m})`));
  socket.connected.connect(() => log.push('connected'));
  socket.encrypted.connect(() => log.push('encrypted'));
  socket.peerVerifyError.connect((e) => log.push(`peerVerifyError(${e.error()})`));
  socket.sslErrors.connect((errors) =>
    log.push(`sslErrors([${errors.map((e) => e.error()).join(', ')}])`),
  );
  socket.errorOccurred.connect((e) => log.push(`error(${e}:${socket.errorString()})`));
  socket.disconnected.connect(() => log.push('disconnected'));
  return log;
}

/** Reads from `socket` until `n` bytes have arrived; rejects if they do not within `ms`. */
export async function readBytes(socket: QSslSocket, n: number, ms = 10000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  const deadline = Date.now() + ms;
  for (;;) {
    const chunk = socket.read(n - got);
    if (chunk.length > 0) {
      chunks.push(chunk);
      got += chunk.length;
    }
    if (got >= n) return Buffer.concat(chunks);
    const left = deadline - Date.now();
    if (left <= 0 || !(await socket.waitForReadyRead(left))) {
      if (socket.bytesAvailable() > 0) continue;
      throw new Error(`only ${got} of ${n} bytes within ${ms} ms (${socket.errorString()})`);
    }
  }
}
