import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

import { EncodingFormat, KeyAlgorithm, KeyType } from './qssl.js';

/** The Qt algorithm of a Node key; Opaque for kinds Qt has no enumerator for (Ed25519...). */
function algorithmOf(key: KeyObject): KeyAlgorithm {
  // A string: Node's typings do not list every kind ('dh').
  switch (key.asymmetricKeyType as string | undefined) {
    case 'rsa':
    case 'rsa-pss':
      return KeyAlgorithm.Rsa;
    case 'dsa':
      return KeyAlgorithm.Dsa;
    case 'ec':
      return KeyAlgorithm.Ec;
    case 'dh':
      return KeyAlgorithm.Dh;
    default:
      return KeyAlgorithm.Opaque;
  }
}

/** Bits of the named curves OpenSSL offers for TLS. */
const CURVE_BITS: Record<string, number> = {
  prime256v1: 256,
  secp256k1: 256,
  secp384r1: 384,
  secp521r1: 521,
  prime192v1: 192,
  secp224r1: 224,
};

function parseKey(
  data: Buffer | string,
  format: EncodingFormat,
  type: KeyType,
  passPhrase: Buffer | string | undefined,
): KeyObject | null {
  const pem = format === EncodingFormat.Pem;
  const bytes = typeof data === 'string' ? Buffer.from(data, pem ? 'utf8' : 'latin1') : data;
  if (pem) {
    const text = bytes.toString('latin1');
    // Qt reads a public key only from a PUBLIC KEY block, a private one only from a
    // PRIVATE KEY block (Node would also take a public key out of a certificate).
    if (
      type === KeyType.PublicKey
        ? !/-----BEGIN [A-Z ]*PUBLIC KEY-----/.test(text)
        : !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)
    ) {
      return null;
    }
  }
  const attempts: Array<'pkcs8' | 'pkcs1' | 'sec1' | 'spki' | undefined> = pem
    ? [undefined]
    : type === KeyType.PrivateKey
      ? ['pkcs8', 'pkcs1', 'sec1']
      : ['spki', 'pkcs1'];
  for (const derType of attempts) {
    try {
      if (type === KeyType.PrivateKey) {
        return createPrivateKey({
          key: bytes,
          format: pem ? 'pem' : 'der',
          ...(derType ? { type: derType as 'pkcs8' | 'pkcs1' | 'sec1' } : {}),
          ...(passPhrase !== undefined ? { passphrase: passPhrase } : {}),
        });
      }
      return createPublicKey({
        key: bytes,
        format: pem ? 'pem' : 'der',
        ...(derType ? { type: derType as 'spki' | 'pkcs1' } : {}),
      });
    } catch {
      // try the next encoding; a key that fits none is a null key, as in Qt
    }
  }
  return null;
}

/**
 * A private or public key (Qt's QSslKey), over Node's `KeyObject`. A value class; a key that
 * cannot be read (wrong format, wrong passphrase, another algorithm than asked for) is a
 * null key, as in Qt.
 *
 * Port extension: when `algorithm` is omitted, the key's own algorithm is used (RSA, DSA,
 * EC or DH). Qt defaults to Rsa and gives a null key for any other kind; pass the
 * algorithm explicitly to get Qt's check.
 */
export class QSslKey {
  static readonly KeyAlgorithm = KeyAlgorithm;
  static readonly KeyType = KeyType;
  static readonly EncodingFormat = EncodingFormat;

  private key: KeyObject | null = null;
  private keyType = KeyType.PrivateKey;

  /**
   * Reads a key from `data` (PEM text or bytes, or DER) of `type`, decrypting it with
   * `passPhrase` if it is encrypted. Without `data` the key is null.
   */
  constructor(
    data?: Buffer | string,
    algorithm?: KeyAlgorithm,
    format: EncodingFormat = EncodingFormat.Pem,
    type: KeyType = KeyType.PrivateKey,
    passPhrase?: Buffer | string,
  ) {
    this.keyType = type;
    if (data === undefined) return;
    const key = parseKey(data, format, type, passPhrase);
    if (key && (algorithm === undefined || algorithmOf(key) === algorithm)) this.key = key;
  }

  /** Wraps a Node key. */
  static fromKeyObject(key: KeyObject): QSslKey {
    const k = new QSslKey();
    k.key = key;
    k.keyType = key.type === 'private' ? KeyType.PrivateKey : KeyType.PublicKey;
    return k;
  }

  /** True when no key was read. */
  isNull(): boolean {
    return this.key === null;
  }

  /** Makes this a null key. */
  clear(): void {
    this.key = null;
  }

  /** PrivateKey or PublicKey. */
  type(): KeyType {
    return this.keyType;
  }

  /** The key's algorithm; Opaque for a null key. */
  algorithm(): KeyAlgorithm {
    return this.key ? algorithmOf(this.key) : KeyAlgorithm.Opaque;
  }

  /** The key length in bits (RSA/DSA modulus, EC curve size); -1 for a null key. */
  length(): number {
    if (!this.key) return -1;
    const details = this.key.asymmetricKeyDetails ?? {};
    if (details.modulusLength !== undefined) return details.modulusLength;
    if (details.namedCurve !== undefined) {
      return CURVE_BITS[details.namedCurve] ?? Number(/\d+/.exec(details.namedCurve)?.[0] ?? -1);
    }
    if (this.key.asymmetricKeyType === 'ed25519' || this.key.asymmetricKeyType === 'x25519') {
      return 256;
    }
    return -1;
  }

  /** The Node key behind this one (Qt's native `handle()`); null for a null key. */
  handle(): KeyObject | null {
    return this.key;
  }

  /**
   * PEM encoding: RSA private keys as PKCS#1 and EC ones as SEC1 (as Qt writes them),
   * others as PKCS#8, public keys as SubjectPublicKeyInfo. With `passPhrase` a private key
   * is encrypted with DES-EDE3-CBC, as Qt does. Empty for a null key.
   */
  toPem(passPhrase?: Buffer | string): Buffer {
    if (!this.key) return Buffer.alloc(0);
    if (this.key.type !== 'private') {
      return Buffer.from(this.key.export({ type: 'spki', format: 'pem' }));
    }
    const encrypt =
      passPhrase !== undefined && passPhrase.length > 0
        ? { cipher: 'des-ede3-cbc', passphrase: passPhrase }
        : {};
    return Buffer.from(
      this.key.export({ type: this.privateEncoding(), format: 'pem', ...encrypt }),
    );
  }

  /** DER encoding (as `toPem`, unencrypted: DER cannot carry Qt's encryption). */
  toDer(): Buffer {
    if (!this.key) return Buffer.alloc(0);
    if (this.key.type !== 'private') return this.key.export({ type: 'spki', format: 'der' });
    return this.key.export({ type: this.privateEncoding(), format: 'der' });
  }

  /** Qt's `operator==`: same type, algorithm and encoding. */
  isEqual(other: QSslKey): boolean {
    if (this.key === null || other.key === null) return this.key === other.key;
    return (
      this.keyType === other.keyType &&
      this.algorithm() === other.algorithm() &&
      this.toDer().equals(other.toDer())
    );
  }

  private privateEncoding(): 'pkcs1' | 'sec1' | 'pkcs8' {
    const t = this.key?.asymmetricKeyType;
    return t === 'rsa' ? 'pkcs1' : t === 'ec' ? 'sec1' : 'pkcs8';
  }
}
