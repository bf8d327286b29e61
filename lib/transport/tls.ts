import { readFileSync } from 'node:fs';

import { PeerVerifyMode, QSslCertificate, QSslConfiguration, QSslKey } from '../qtnetwork/index.js';

import { InvalidOptionError } from './wire/errors.js';

/** PEM text, a Buffer holding PEM, or the path of a PEM file. */
export type PemSource = string | Buffer;

/**
 * TLS for a TCP connection (QSslSocket / QSslServer). A server needs `certificate` and
 * `privateKey`; mutual TLS is `verifyMode: 'verify'` on the server with `ca` naming the
 * clients' CA, and `certificate` + `privateKey` on the client.
 */
export interface QtTlsOptions {
  /** This side's certificate (its chain may follow in the same PEM). Required on a server. */
  certificate?: PemSource;
  /** This side's private key. Required with `certificate`. */
  privateKey?: PemSource;
  /** Passphrase of an encrypted private key. */
  passphrase?: string;
  /** CA certificates the peer's certificate is checked against. Default: the system's. */
  ca?: PemSource | PemSource[];
  /**
   * Qt's PeerVerifyMode: 'none' (no check), 'query' (ask for the peer's certificate but
   * accept any), 'verify' (a valid certificate is required), or 'auto' (default): 'verify'
   * on a client, 'query' on a server.
   */
  verifyMode?: 'none' | 'query' | 'verify' | 'auto';
  /** Client: the name the server's certificate must carry. Default: `host`. */
  peerName?: string;
  /** Ms the handshake may take (the server's handshake timeout). Default 5000. */
  handshakeTimeout?: number;
}

/** TLS options with the PEM read and checked. */
export interface ResolvedTlsOptions {
  certificates: QSslCertificate[];
  privateKey: QSslKey | null;
  ca: QSslCertificate[] | null;
  verifyMode: 'none' | 'query' | 'verify' | 'auto';
  peerName: string | undefined;
  handshakeTimeout: number;
}

const KEYS = [
  'certificate',
  'privateKey',
  'passphrase',
  'ca',
  'verifyMode',
  'peerName',
  'handshakeTimeout',
];

/** The PEM bytes of `source`: PEM text, a Buffer, or a file read now. */
function pemBytes(option: string, source: unknown): Buffer {
  if (Buffer.isBuffer(source)) return source;
  if (typeof source !== 'string' || source === '') {
    throw new InvalidOptionError(option, 'PEM text, a Buffer of PEM, or a PEM file path', source);
  }
  if (source.includes('-----BEGIN ')) return Buffer.from(source, 'utf8');
  try {
    return readFileSync(source);
  } catch (err) {
    throw new InvalidOptionError(
      option,
      `PEM text, a Buffer of PEM, or a readable PEM file path (${(err as Error).message})`,
      source,
    );
  }
}

function certificates(option: string, source: unknown): QSslCertificate[] {
  const certs = QSslCertificate.fromData(pemBytes(option, source));
  if (certs.length === 0 || certs.some((c) => c.isNull())) {
    throw new InvalidOptionError(option, 'one or more PEM certificates', source);
  }
  return certs;
}

/** Validates `tls` (undefined: no TLS). Files are read at once; bad PEM names the option. */
export function resolveTlsOptions(
  value: unknown,
  role: 'server' | 'client',
  transport: 'tcp' | 'local',
  maxTimerMs: number,
): ResolvedTlsOptions | null {
  if (value === undefined || value === false) return null;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError('tls', `an object { ${KEYS.join(', ')} }`, value);
  }
  if (transport !== 'tcp') {
    throw new InvalidOptionError('tls', "nothing with transport 'local' (TLS is for TCP)", value);
  }
  const t = value as Record<string, unknown>;
  for (const key of Object.keys(t)) {
    if (!KEYS.includes(key)) {
      throw new InvalidOptionError(`tls.${key}`, `one of the keys ${KEYS.join(', ')}`, key);
    }
  }
  if (t.passphrase !== undefined && typeof t.passphrase !== 'string') {
    throw new InvalidOptionError('tls.passphrase', 'a string', '(hidden)');
  }
  const certs = t.certificate === undefined ? [] : certificates('tls.certificate', t.certificate);
  let privateKey: QSslKey | null = null;
  if (t.privateKey !== undefined) {
    privateKey = new QSslKey(
      pemBytes('tls.privateKey', t.privateKey),
      undefined,
      undefined,
      undefined,
      t.passphrase as string | undefined,
    );
    if (privateKey.isNull()) {
      throw new InvalidOptionError(
        'tls.privateKey',
        'a PEM private key (with tls.passphrase if it is encrypted)',
        '(hidden)',
      );
    }
  }
  let ca: QSslCertificate[] | null = null;
  if (t.ca !== undefined) {
    const sources = Array.isArray(t.ca) ? t.ca : [t.ca];
    if (sources.length === 0)
      throw new InvalidOptionError('tls.ca', 'one or more PEM sources', t.ca);
    ca = sources.flatMap((s) => certificates('tls.ca', s));
  }
  const verifyMode = t.verifyMode ?? 'auto';
  if (!['none', 'query', 'verify', 'auto'].includes(verifyMode as string)) {
    throw new InvalidOptionError(
      'tls.verifyMode',
      "one of 'none', 'query', 'verify', 'auto'",
      verifyMode,
    );
  }
  if (t.peerName !== undefined && (typeof t.peerName !== 'string' || t.peerName === '')) {
    throw new InvalidOptionError('tls.peerName', 'a non-empty string', t.peerName);
  }
  const handshakeTimeout = t.handshakeTimeout ?? 5000;
  if (
    typeof handshakeTimeout !== 'number' ||
    !Number.isInteger(handshakeTimeout) ||
    handshakeTimeout < 1 ||
    handshakeTimeout > maxTimerMs
  ) {
    throw new InvalidOptionError(
      'tls.handshakeTimeout',
      `an integer from 1 to ${maxTimerMs}`,
      handshakeTimeout,
    );
  }
  if (role === 'server' && (certs.length === 0 || !privateKey)) {
    throw new InvalidOptionError(
      'tls',
      'a certificate and a privateKey on a server',
      Object.keys(t),
    );
  }
  if (certs.length > 0 !== (privateKey !== null)) {
    throw new InvalidOptionError(
      certs.length > 0 ? 'tls.privateKey' : 'tls.certificate',
      'both tls.certificate and tls.privateKey, or neither',
      undefined,
    );
  }
  return {
    certificates: certs,
    privateKey,
    ca,
    verifyMode: verifyMode as ResolvedTlsOptions['verifyMode'],
    peerName: t.peerName as string | undefined,
    handshakeTimeout,
  };
}

/** The Qt peer-verify mode of each `tls.verifyMode`. */
const VERIFY_MODES: Record<ResolvedTlsOptions['verifyMode'], PeerVerifyMode> = {
  none: PeerVerifyMode.VerifyNone,
  query: PeerVerifyMode.QueryPeer,
  verify: PeerVerifyMode.VerifyPeer,
  auto: PeerVerifyMode.AutoVerifyPeer,
};

/** The QSslConfiguration for these options. */
export function sslConfiguration(tls: ResolvedTlsOptions): QSslConfiguration {
  const config = QSslConfiguration.defaultConfiguration();
  if (tls.certificates.length > 0) {
    config.setLocalCertificateChain(tls.certificates);
  }
  if (tls.privateKey) config.setPrivateKey(tls.privateKey);
  if (tls.ca) config.setCaCertificates(tls.ca);
  config.setPeerVerifyMode(VERIFY_MODES[tls.verifyMode]);
  return config;
}
