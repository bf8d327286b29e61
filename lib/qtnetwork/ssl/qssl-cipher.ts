import { SslProtocol } from './qssl.js';

const PROTOCOLS: Record<string, SslProtocol> = {
  SSLv3: SslProtocol.SslV3,
  TLSv1: SslProtocol.TlsV1_0,
  'TLSv1.1': SslProtocol.TlsV1_1,
  'TLSv1.2': SslProtocol.TlsV1_2,
  'TLSv1.3': SslProtocol.TlsV1_3,
};

/** The SslProtocol for a protocol name as OpenSSL prints it ("TLSv1.3"). */
export function protocolFromString(text: string | null | undefined): SslProtocol {
  return text ? (PROTOCOLS[text] ?? SslProtocol.UnknownProtocol) : SslProtocol.UnknownProtocol;
}

/** OpenSSL's name for a protocol ("TLSv1.2"); "" for other values. */
export function protocolToString(protocol: SslProtocol): string {
  for (const [name, value] of Object.entries(PROTOCOLS)) if (value === protocol) return name;
  return '';
}

interface Parts {
  kx: string;
  au: string;
  enc: string;
  bits: number;
}

/**
 * What OpenSSL's cipher description says about a suite, worked out from its name (Node
 * gives the name, not the description): key exchange, authentication, encryption and bits.
 */
function describe(name: string, protocol: SslProtocol): Parts {
  const n = name.toUpperCase();
  const bits = /CHACHA20|AES_?256|AES256|CAMELLIA256/.test(n)
    ? 256
    : /AES_?128|AES128|CAMELLIA128/.test(n)
      ? 128
      : /3DES|DES-CBC3/.test(n)
        ? 112
        : 0;
  const family = /CHACHA20/.test(n)
    ? 'CHACHA20/POLY1305'
    : /AES.*GCM|GCM/.test(n)
      ? 'AESGCM'
      : /AES.*CCM|CCM/.test(n)
        ? 'AESCCM'
        : /AES/.test(n)
          ? 'AES'
          : /CAMELLIA/.test(n)
            ? 'Camellia'
            : /3DES|DES-CBC3/.test(n)
              ? '3DES'
              : 'None';
  const enc = bits > 0 ? `${family}(${bits})` : family;
  if (protocol === SslProtocol.TlsV1_3 || n.startsWith('TLS_')) {
    // TLS 1.3 suites do not fix the key exchange or the authentication.
    return { kx: 'any', au: 'any', enc, bits };
  }
  const kx = /^ECDHE|^ECDH-/.test(n)
    ? 'ECDH'
    : /^DHE|^EDH/.test(n)
      ? 'DH'
      : /^PSK/.test(n)
        ? 'PSK'
        : 'RSA';
  const au = /ECDSA/.test(n) ? 'ECDSA' : /-DSS-/.test(n) ? 'DSS' : /^PSK/.test(n) ? 'PSK' : 'RSA';
  return { kx, au, enc, bits };
}

/**
 * A cipher suite (Qt's QSslCipher): its OpenSSL name and protocol, and the parts of it Qt
 * reports. A value class; `new QSslCipher()` is null.
 */
export class QSslCipher {
  private readonly cipherName: string;
  private readonly proto: SslProtocol;
  private readonly parts: Parts;

  /** The suite called `name` (OpenSSL's name) in `protocol`; null without a name. */
  constructor(name = '', protocol: SslProtocol = SslProtocol.UnknownProtocol) {
    this.cipherName = name;
    this.proto =
      protocol === SslProtocol.UnknownProtocol && name.toUpperCase().startsWith('TLS_')
        ? SslProtocol.TlsV1_3
        : protocol;
    this.parts = describe(name, this.proto);
  }

  /** True for a cipher without a name. */
  isNull(): boolean {
    return this.cipherName === '';
  }

  /** OpenSSL's name, e.g. "TLS_AES_256_GCM_SHA384" or "ECDHE-RSA-AES128-GCM-SHA256". */
  name(): string {
    return this.cipherName;
  }

  /** Bits of the symmetric key in use (0 if unknown). */
  usedBits(): number {
    return this.parts.bits;
  }

  /** Bits the cipher supports (the same as `usedBits` for every suite OpenSSL 3 offers). */
  supportedBits(): number {
    return this.parts.bits;
  }

  /** Key exchange, as OpenSSL's description names it ("ECDH", "DH", "RSA"; "any" for TLS 1.3). */
  keyExchangeMethod(): string {
    return this.isNull() ? '' : this.parts.kx;
  }

  /** Authentication ("RSA", "ECDSA"; "any" for TLS 1.3). */
  authenticationMethod(): string {
    return this.isNull() ? '' : this.parts.au;
  }

  /** Encryption with its bits, as OpenSSL's description writes it ("AESGCM(256)"). */
  encryptionMethod(): string {
    return this.isNull() ? '' : this.parts.enc;
  }

  /** The protocol as text ("TLSv1.3"). */
  protocolString(): string {
    return protocolToString(this.proto);
  }

  /** The protocol. */
  protocol(): SslProtocol {
    return this.proto;
  }

  /** Qt's `operator==`: same name and protocol. */
  isEqual(other: QSslCipher): boolean {
    return this.cipherName === other.cipherName && this.proto === other.proto;
  }
}
