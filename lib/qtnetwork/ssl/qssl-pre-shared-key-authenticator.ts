import { toBuffer } from '../core/to-buffer.js';

interface PskFields {
  readonly identityHint: Buffer;
  readonly identity: Buffer;
  readonly maximumIdentityLength: number;
  readonly preSharedKey: Buffer;
  readonly maximumPreSharedKeyLength: number;
}

const EMPTY: PskFields = {
  identityHint: Buffer.alloc(0),
  identity: Buffer.alloc(0),
  maximumIdentityLength: 0,
  preSharedKey: Buffer.alloc(0),
  maximumPreSharedKeyLength: 0,
};

let makeAuthenticator: (fields: PskFields) => QSslPreSharedKeyAuthenticator;

/**
 * What a TLS handshake with a pre-shared key (PSK) needs from the application (Qt's
 * QSslPreSharedKeyAuthenticator). QSslSocket passes one to the slots of
 * `preSharedKeyAuthenticationRequired`, which fill it in before returning: a client sets
 * the identity and the key (it may derive them from the server's `identityHint()`); a
 * server reads the client's `identity()` and sets the key. Leaving the key empty makes the
 * handshake fail.
 *
 * The identity and hint travel through Node's TLS API as UTF-8 text: bytes that are not
 * valid UTF-8 arrive altered.
 */
export class QSslPreSharedKeyAuthenticator {
  private f: PskFields;

  static {
    makeAuthenticator = (fields) => {
      const a = new QSslPreSharedKeyAuthenticator();
      a.f = fields;
      return a;
    };
  }

  /** A copy of `other`, or an empty authenticator (empty fields, maxima 0). */
  constructor(other?: QSslPreSharedKeyAuthenticator) {
    this.f = other ? other.f : EMPTY;
  }

  /** The hint the server sent (a client's view; a server sees its own configured hint). */
  identityHint(): Buffer {
    return Buffer.from(this.f.identityHint);
  }

  /** The identity: set by a client, the client's identity for a server. */
  identity(): Buffer {
    return Buffer.from(this.f.identity);
  }

  /** Sets the identity a client presents (cut to `maximumIdentityLength()` when sent). */
  setIdentity(identity: Buffer | string): void {
    this.f = { ...this.f, identity: Buffer.from(toBuffer(identity)) };
  }

  /** The longest identity the handshake takes, in bytes (0 on a server: it sets none). */
  maximumIdentityLength(): number {
    return this.f.maximumIdentityLength;
  }

  /** The pre-shared key. */
  preSharedKey(): Buffer {
    return Buffer.from(this.f.preSharedKey);
  }

  /** Sets the pre-shared key (cut to `maximumPreSharedKeyLength()` when used). */
  setPreSharedKey(preSharedKey: Buffer | string): void {
    this.f = { ...this.f, preSharedKey: Buffer.from(toBuffer(preSharedKey)) };
  }

  /** The longest key the handshake takes, in bytes. */
  maximumPreSharedKeyLength(): number {
    return this.f.maximumPreSharedKeyLength;
  }

  /** Exchanges the contents of this authenticator and `other`. */
  swap(other: QSslPreSharedKeyAuthenticator): void {
    [this.f, other.f] = [other.f, this.f];
  }

  /** True if every field is equal (Qt's operator==). */
  isEqual(other: QSslPreSharedKeyAuthenticator): boolean {
    const a = this.f;
    const b = other.f;
    return (
      a.identityHint.equals(b.identityHint) &&
      a.identity.equals(b.identity) &&
      a.maximumIdentityLength === b.maximumIdentityLength &&
      a.preSharedKey.equals(b.preSharedKey) &&
      a.maximumPreSharedKeyLength === b.maximumPreSharedKeyLength
    );
  }
}

/** An authenticator with the read-only fields of a handshake filled in (for QSslSocket). */
export function pskAuthenticatorOf(
  fields: Pick<
    PskFields,
    'identityHint' | 'identity' | 'maximumIdentityLength' | 'maximumPreSharedKeyLength'
  >,
): QSslPreSharedKeyAuthenticator {
  return makeAuthenticator({ ...fields, preSharedKey: Buffer.alloc(0) });
}
