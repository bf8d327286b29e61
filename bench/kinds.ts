/** The transports the benchmark compares, and how each one's server and client are made. */
export type Kind =
  'qt-tcp' | 'qt-local' | 'nest-tcp' | 'raw-net' | 'raw-unix' | 'qt-tls' | 'nest-tls';

export const KINDS: Kind[] = [
  'qt-tcp',
  'qt-local',
  'nest-tcp',
  'raw-net',
  'raw-unix',
  'qt-tls',
  'nest-tls',
];

export const LABELS: Record<Kind, string> = {
  'qt-tcp': 'this transport, TCP',
  'qt-local': 'this transport, local socket',
  'nest-tcp': "Nest's Transport.TCP",
  'raw-net': 'raw net, length-prefixed echo',
  'raw-unix': 'raw net, Unix socket echo',
  'qt-tls': 'this transport, TCP + TLS',
  'nest-tls': "Nest's Transport.TCP + tlsOptions",
};

/** The raw references: the same length-prefixed echo in plain `net`, over TCP or a Unix socket. */
export function isRaw(kind: Kind): kind is 'raw-net' | 'raw-unix' {
  return kind === 'raw-net' || kind === 'raw-unix';
}

/**
 * Where the TLS kinds find their certificate, key and CA (PEM files): a directory made by
 * run.ts (bench/pki.ts) and passed to the server and client processes.
 */
export function benchPkiDir(): string {
  const dir = process.env.QT_BENCH_PKI;
  if (!dir) throw new Error('QT_BENCH_PKI is not set (run the benchmark through run.js)');
  return dir;
}
