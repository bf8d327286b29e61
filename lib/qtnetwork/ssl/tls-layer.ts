import type * as net from 'node:net';
import * as tls from 'node:tls';

import type { SslSettings } from './qssl-configuration.js';
import {
  pskAuthenticatorOf,
  type QSslPreSharedKeyAuthenticator,
} from './qssl-pre-shared-key-authenticator.js';
import { PeerVerifyMode } from './qssl.js';

/**
 * Node's TLS socket that QSslSocket puts over its TCP connection, with the options its
 * configuration asks for: SNI, ALPN, a session to resume, an OCSP status request, and the
 * PSK callbacks that let the application answer `preSharedKeyAuthenticationRequired`.
 */

/** OpenSSL's limits (PSK_MAX_IDENTITY_LEN, PSK_MAX_PSK_LEN), in bytes. */
const MAX_IDENTITY = 256;
const MAX_PSK = 512;
/** Qt offers one byte less than OpenSSL's room for an identity (it keeps one for a NUL). */
const MAX_IDENTITY_OFFERED = MAX_IDENTITY - 1;

export interface TlsLayerSetup {
  client: boolean;
  settings: SslSettings;
  context: tls.SecureContext;
  /** A client's SNI name; undefined sends none. */
  serverName?: string;
  /** A client's saved session (OpenSSL's encoding) to resume. */
  session?: Buffer;
  /** A client asks the server to staple the certificate's OCSP status. */
  requestOcsp: boolean;
  /**
   * Lets the application fill in `authenticator` (the socket emits its signal); false when
   * the socket was closed meanwhile, so that no key is handed over.
   */
  askPsk: (authenticator: QSslPreSharedKeyAuthenticator) => boolean;
}

/** `identity` as the text Node's PSK callback returns, no longer than OpenSSL takes. */
function identityText(identity: Buffer): string {
  let text = identity.subarray(0, MAX_IDENTITY_OFFERED).toString('utf8');
  // Bytes that are not UTF-8 become U+FFFD, which is longer: cut until it fits.
  while (Buffer.byteLength(text) > MAX_IDENTITY_OFFERED) text = text.slice(0, -1);
  return text;
}

/**
 * The client's PSK callback. In TLS 1.3 OpenSSL calls it while writing the ClientHello, to
 * offer a key before it knows the server; Qt declines that call (its PSK support is TLS
 * 1.2's, the application is asked once the server has chosen a PSK cipher suite), and so
 * does the port: only a call after a TLS 1.2 (or older) server hello reaches the
 * application. `this` is Node's TLS socket; `inHello` covers the call made inside
 * `tls.connect` itself, before the socket could be named.
 */
function clientPskCallback(
  setup: TlsLayerSetup,
  inHello: () => boolean,
): (hint: string | null) => tls.PSKCallbackNegotation | null {
  return function (this: unknown, hint: string | null) {
    const protocol = this instanceof tls.TLSSocket ? this.getProtocol() : null;
    if (inHello() || protocol === 'TLSv1.3') return null;
    const authenticator = pskAuthenticatorOf({
      identityHint: Buffer.from(hint ?? '', 'utf8'),
      identity: Buffer.alloc(0),
      maximumIdentityLength: MAX_IDENTITY_OFFERED,
      maximumPreSharedKeyLength: MAX_PSK,
    });
    if (!setup.askPsk(authenticator)) return null;
    const key = authenticator.preSharedKey();
    // No key: the handshake fails, as in Qt.
    if (key.length === 0) return null;
    return { psk: key.subarray(0, MAX_PSK), identity: identityText(authenticator.identity()) };
  };
}

/** The server's PSK callback: the client's identity in, the key out (none fails the handshake). */
function serverPskCallback(
  setup: TlsLayerSetup,
): (socket: tls.TLSSocket, identity: string) => Buffer | null {
  return (_socket, identity) => {
    const authenticator = pskAuthenticatorOf({
      identityHint: setup.settings.preSharedKeyIdentityHint ?? Buffer.alloc(0),
      identity: Buffer.from(identity, 'utf8'),
      // A server sets no identity.
      maximumIdentityLength: 0,
      maximumPreSharedKeyLength: MAX_PSK,
    });
    if (!setup.askPsk(authenticator)) return null;
    const key = authenticator.preSharedKey();
    return key.length === 0 ? null : key.subarray(0, MAX_PSK);
  };
}

/** Puts Node's TLS socket over `raw` and starts the handshake. */
export function openTlsLayer(raw: net.Socket, setup: TlsLayerSetup): tls.TLSSocket {
  const { settings } = setup;
  const alpn =
    settings.allowedNextProtocols.length > 0
      ? settings.allowedNextProtocols.map((p) => p.toString('latin1'))
      : undefined;
  if (setup.client) {
    let inHello = true;
    try {
      return tls.connect({
        socket: raw,
        secureContext: setup.context,
        rejectUnauthorized: false,
        // QSslSocket checks the name itself, with Qt's rules, after the handshake.
        checkServerIdentity: () => undefined,
        pskCallback: clientPskCallback(setup, () => inHello),
        ...(setup.serverName ? { servername: setup.serverName } : {}),
        ...(alpn ? { ALPNProtocols: alpn } : {}),
        ...(setup.session ? { session: setup.session } : {}),
        ...(setup.requestOcsp ? { requestOCSP: true } : {}),
      });
    } finally {
      inHello = false;
    }
  }
  const hint = settings.preSharedKeyIdentityHint;
  const options: tls.TLSSocketOptions & Pick<tls.TlsOptions, 'pskCallback' | 'pskIdentityHint'> = {
    isServer: true,
    secureContext: setup.context,
    requestCert: settings.peerVerifyMode !== PeerVerifyMode.VerifyNone,
    rejectUnauthorized: false,
    pskCallback: serverPskCallback(setup),
    ...(hint && hint.length > 0 ? { pskIdentityHint: hint.toString('utf8') } : {}),
    ...(alpn ? { ALPNProtocols: alpn } : {}),
  };
  return new tls.TLSSocket(raw, options);
}

/**
 * Qt ends an encrypted connection that it closes (not aborts) with a close_notify alert
 * (SSL_shutdown). QAbstractSocket closes by destroying Node's socket, which sends none; when
 * `graceful()` says the close is such a one, end() writes the alert first, at once when
 * nothing else is waiting.
 */
export function sendCloseNotifyOnDestroy(t: tls.TLSSocket, graceful: () => boolean): void {
  const destroy = t.destroy.bind(t);
  t.destroy = (error?: Error): tls.TLSSocket => {
    if (
      error === undefined &&
      graceful() &&
      !t.destroyed &&
      !t.writableEnded &&
      t.writableLength === 0
    ) {
      t.end();
    }
    return destroy(error);
  };
}
