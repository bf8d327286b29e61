/**
 * Certificates for the QSslSocket/QSslServer tests, made at test time with the `openssl`
 * command into a temporary directory (removed at exit): a CA; a server certificate for
 * localhost / 127.0.0.1 / ::1; a client certificate; an expired server certificate; one for
 * another host name; a self-signed one; a CA nobody trusts with a client certificate of
 * its own; an encrypted copy of the server key; an RSA key and certificate. EC P-256 keys
 * (fast) unless said otherwise.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface SslPki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Signed by the CA for localhost, valid in January 2020 only. */
  readonly expiredCert: string;
  /** Signed by the CA for wrong.example only. */
  readonly wrongHostCert: string;
  readonly wrongHostKey: string;
  /** Self-signed, for localhost / 127.0.0.1. */
  readonly selfSignedCert: string;
  readonly selfSignedKey: string;
  /** A CA the tests never trust, and a client certificate it signed. */
  readonly otherCaCert: string;
  readonly otherClientCert: string;
  readonly otherClientKey: string;
  /** The server key, encrypted with the passphrase "secret" (AES-256). */
  readonly serverKeyEncrypted: string;
  /** A 2048-bit RSA key (PKCS#8) and a CA-signed certificate for it (CN rsa.example). */
  readonly rsaKey: string;
  readonly rsaCert: string;
}

let made: SslPki | null = null;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function ecKey(dir: string, name: string): void {
  openssl(dir, [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    `${name}.key`,
  ]);
}

function csr(dir: string, name: string, subject: string): void {
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
}

function sign(dir: string, name: string, ca: string, ext: string): void {
  writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '30',
    '-extfile',
    `${name}.ext`,
  ]);
}

function selfSigned(dir: string, name: string, subject: string, ext: string[]): void {
  openssl(dir, [
    'req',
    '-x509',
    '-key',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '30',
    '-subj',
    subject,
    ...ext.flatMap((e) => ['-addext', e]),
  ]);
}

const SERVER_EXT =
  'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n';

/**
 * The PKI of this test file (made on first use, well under a second). Call `removeSslPki`
 * from `afterAll`: Jest's workers do not always get to run exit handlers.
 */
export function sslPki(): SslPki {
  if (made) return made;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qssl-pki-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  for (const ca of ['ca', 'other-ca']) {
    ecKey(dir, ca);
    selfSigned(
      dir,
      ca,
      ca === 'ca' ? '/CN=QSsl test CA/O=nestjs-qt-transport' : '/CN=Stranger CA',
      ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
    );
  }
  for (const [name, ca, subject, ext] of [
    ['server', 'ca', '/CN=localhost/O=nestjs-qt-transport', SERVER_EXT],
    ['client', 'ca', '/CN=test client', 'extendedKeyUsage=clientAuth\n'],
    ['other-client', 'other-ca', '/CN=stranger', 'extendedKeyUsage=clientAuth\n'],
    ['wrong-host', 'ca', '/CN=wrong.example', 'subjectAltName=DNS:wrong.example\n'],
  ] as const) {
    ecKey(dir, name);
    csr(dir, name, subject);
    sign(dir, name, ca, ext);
  }
  ecKey(dir, 'self');
  selfSigned(dir, 'self', '/CN=localhost', ['subjectAltName=DNS:localhost,IP:127.0.0.1']);

  // An expired certificate needs a start date in the past: `openssl ca` takes one.
  mkdirSync(path.join(dir, 'db'));
  writeFileSync(path.join(dir, 'db', 'index.txt'), '');
  writeFileSync(
    path.join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      'database = db/index.txt',
      'new_certs_dir = db',
      'certificate = ca.pem',
      'private_key = ca.key',
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      'rand_serial = yes',
      '[any]',
      'commonName = supplied',
      'organizationName = optional',
      '[server]',
      'subjectAltName = DNS:localhost,IP:127.0.0.1',
      'basicConstraints = CA:FALSE',
      '',
    ].join('\n'),
  );
  openssl(dir, [
    'ca',
    '-batch',
    '-config',
    'ca.cnf',
    '-in',
    'server.csr',
    '-out',
    'expired.pem',
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200201000000Z',
    '-extensions',
    'server',
    '-notext',
  ]);
  openssl(dir, [
    'pkey',
    '-in',
    'server.key',
    '-out',
    'server-encrypted.key',
    '-aes256',
    '-passout',
    'pass:secret',
  ]);
  openssl(dir, [
    'genpkey',
    '-algorithm',
    'RSA',
    '-pkeyopt',
    'rsa_keygen_bits:2048',
    '-out',
    'rsa.key',
  ]);
  csr(dir, 'rsa', '/CN=rsa.example/O=Example/OU=Tests/C=DE/L=Berlin/ST=Berlin');
  sign(
    dir,
    'rsa',
    'ca',
    'subjectAltName=DNS:rsa.example,DNS:*.rsa.example,email:ops@rsa.example\n',
  );

  const f = (name: string): string => path.join(dir, name);
  made = {
    dir,
    caCert: f('ca.pem'),
    caKey: f('ca.key'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    expiredCert: f('expired.pem'),
    wrongHostCert: f('wrong-host.pem'),
    wrongHostKey: f('wrong-host.key'),
    selfSignedCert: f('self.pem'),
    selfSignedKey: f('self.key'),
    otherCaCert: f('other-ca.pem'),
    otherClientCert: f('other-client.pem'),
    otherClientKey: f('other-client.key'),
    serverKeyEncrypted: f('server-encrypted.key'),
    rsaKey: f('rsa.key'),
    rsaCert: f('rsa.pem'),
  };
  return made;
}

/** Removes the PKI's directory (the next `sslPki()` makes a new one). */
export function removeSslPki(): void {
  if (made) rmSync(made.dir, { recursive: true, force: true });
  made = null;
}
