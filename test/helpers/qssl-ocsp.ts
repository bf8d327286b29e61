/**
 * OCSP material for the QSslSocket tests, made with `openssl ocsp` in the test PKI's
 * directory (test/helpers/qssl-pki.ts): responses about the PKI's server certificate
 * (good, revoked, unknown), signed by the CA itself, by a responder the CA delegated (with
 * and without the OCSPSigning usage) and by the CA nobody trusts; a chain file with the
 * server certificate and its CA (what a server sends so that Qt finds the issuer); and a
 * TLS server that staples a given response.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';

import type { Resources } from './resources.js';
import type { SslPki } from './qssl-pki.js';

export interface OcspMaterial {
  /** The server certificate followed by the CA. */
  readonly serverChain: string;
  readonly good: Buffer;
  /** Revoked a day ago for keyCompromise. */
  readonly revoked: Buffer;
  /** Revoked a day ago with no reason given. */
  readonly revokedNoReason: Buffer;
  /** The CA does not know the certificate. */
  readonly unknown: Buffer;
  /** "good", signed by a responder the CA delegated with the OCSPSigning usage. */
  readonly delegated: Buffer;
  /** "good", signed by a certificate of the CA that lacks the OCSPSigning usage. */
  readonly delegatedWithoutUsage: Buffer;
  /** "good", signed by the CA the tests never trust. */
  readonly strangerSigned: Buffer;
  /** An unsigned "tryLater" answer (responseStatus 3). */
  readonly tryLater: Buffer;
  /** Bytes that are no OCSP response. */
  readonly garbage: Buffer;
}

const made = new Map<string, OcspMaterial>();

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** openssl's index.txt date form (YYMMDDHHMMSSZ), `days` from now. */
function indexDate(days: number): string {
  const d = new Date(Date.now() + days * 86400000);
  return d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

/** A certificate for an OCSP responder, signed by the PKI's CA. */
function responderCert(dir: string, name: string, ext: string): void {
  openssl(dir, [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    `${name}.key`,
  ]);
  openssl(dir, [
    'req',
    '-new',
    '-key',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  ]);
  writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '30',
    '-extfile',
    `${name}.ext`,
  ]);
}

/** The OCSP material for `pki` (made once per PKI, in its directory). */
export function ocspMaterial(pki: SslPki): OcspMaterial {
  const known = made.get(pki.dir);
  if (known) return known;
  const dir = pki.dir;
  const serial = execFileSync('openssl', ['x509', '-in', pki.serverCert, '-noout', '-serial'], {
    encoding: 'utf8',
  })
    .trim()
    .replace(/^serial=/, '');
  const line = (status: string, revoked: string): string =>
    `${status}\t${indexDate(30)}\t${revoked}\t${serial}\tunknown\t/CN=localhost\n`;
  writeFileSync(path.join(dir, 'ocsp-good.txt'), line('V', ''));
  writeFileSync(path.join(dir, 'ocsp-revoked.txt'), line('R', `${indexDate(-1)},keyCompromise`));
  writeFileSync(path.join(dir, 'ocsp-revoked-plain.txt'), line('R', indexDate(-1)));
  writeFileSync(path.join(dir, 'ocsp-empty.txt'), '');
  responderCert(dir, 'ocsp-responder', 'extendedKeyUsage=OCSPSigning\n');
  responderCert(dir, 'ocsp-no-usage', 'extendedKeyUsage=serverAuth\n');
  openssl(dir, [
    'ocsp',
    '-issuer',
    'ca.pem',
    '-cert',
    pki.serverCert,
    '-reqout',
    'ocsp-request.der',
    '-no_nonce',
  ]);
  const respond = (out: string, index: string, signer: string, key: string): Buffer => {
    openssl(dir, [
      'ocsp',
      '-index',
      index,
      '-rsigner',
      signer,
      '-rkey',
      key,
      '-CA',
      'ca.pem',
      '-reqin',
      'ocsp-request.der',
      '-respout',
      out,
      '-ndays',
      '1',
    ]);
    return readFileSync(path.join(dir, out));
  };
  const chain = path.join(dir, 'server-chain.pem');
  writeFileSync(chain, Buffer.concat([readFileSync(pki.serverCert), readFileSync(pki.caCert)]));
  const material: OcspMaterial = {
    serverChain: chain,
    good: respond('ocsp-good.der', 'ocsp-good.txt', 'ca.pem', 'ca.key'),
    revoked: respond('ocsp-revoked.der', 'ocsp-revoked.txt', 'ca.pem', 'ca.key'),
    revokedNoReason: respond(
      'ocsp-revoked-plain.der',
      'ocsp-revoked-plain.txt',
      'ca.pem',
      'ca.key',
    ),
    unknown: respond('ocsp-unknown.der', 'ocsp-empty.txt', 'ca.pem', 'ca.key'),
    delegated: respond(
      'ocsp-delegated.der',
      'ocsp-good.txt',
      'ocsp-responder.pem',
      'ocsp-responder.key',
    ),
    delegatedWithoutUsage: respond(
      'ocsp-no-usage.der',
      'ocsp-good.txt',
      'ocsp-no-usage.pem',
      'ocsp-no-usage.key',
    ),
    strangerSigned: respond('ocsp-stranger.der', 'ocsp-good.txt', 'other-ca.pem', 'other-ca.key'),
    tryLater: Buffer.from('30030a0103', 'hex'),
    garbage: Buffer.from('not an OCSP response'),
  };
  made.set(pki.dir, material);
  return material;
}

/**
 * A TLS server on 127.0.0.1 (node:tls) presenting `cert` (a file, the chain to send) with
 * `key`, that staples `response` (null: none) and echoes what it reads. Closed after the test.
 */
export async function startStaplingServer(
  res: Resources,
  cert: string,
  key: string,
  response: Buffer | null,
  options: tls.TlsOptions = {},
): Promise<tls.Server> {
  const server = tls.createServer(
    { cert: readFileSync(cert), key: readFileSync(key), ...options },
    (socket) => {
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => socket.write(d));
    },
  );
  server.on('OCSPRequest', (_cert, _issuer, done: (err: Error | null, r: Buffer | null) => void) =>
    done(null, response),
  );
  const connections = new Set<net.Socket>();
  server.on('connection', (c: net.Socket) => {
    connections.add(c);
    c.on('close', () => connections.delete(c));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  res.add(
    () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.destroy();
        server.close(() => resolve());
      }),
  );
  return server;
}

/** The port a node:tls server listens on. */
export function portOf(server: tls.Server): number {
  return (server.address() as { port: number }).port;
}
