import { X509Certificate } from 'node:crypto';
import type * as tls from 'node:tls';

import {
  CONTEXT,
  explicit,
  parseDer,
  sequence,
  smallIntegerOf,
  type DerElement,
} from './asn1-der.js';
import { NextProtocolNegotiationStatus } from './qssl.js';
import { QSslCertificate } from './qssl-certificate.js';
import { QSslCipher, protocolFromString } from './qssl-cipher.js';
import type { SslSession, SslSettings } from './qssl-configuration.js';

/**
 * What QSslSocket reads from Node's TLS socket once its handshake is done: the peer's
 * chain, the session (Qt's session fields of QSslConfiguration) and OpenSSL's verdict.
 */

/** What Node's TLS socket keeps about verification (`ssl` is Node's own TLS handle). */
interface TlsHandle {
  verifyError?: () => { code?: string } | null | undefined;
}

/** The peer's chain as Node reports it (detailed `getPeerCertificate(true)`), own first. */
export function peerChainOf(t: tls.TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let c: tls.DetailedPeerCertificate | undefined = t.getPeerCertificate(true);
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    try {
      out.push(new X509Certificate(c.raw));
    } catch {
      break;
    }
    const next: tls.DetailedPeerCertificate | undefined = c.issuerCertificate;
    if (!next || next === c) break;
    c = next;
  }
  if (out.length === 0 && t.isSessionReused()) {
    // A resumed session: the server sent no certificate this time. OpenSSL keeps the one it
    // sent first in the session (where Qt reads it), but Node reads a client's peer from
    // the chain received, so it is read from the saved session here.
    const session = t.getSession();
    const peer = session ? sessionField(session, 3) : null;
    if (peer) {
      try {
        out.push(new X509Certificate(peer.raw));
      } catch {
        // no certificate, as Node says
      }
    }
  }
  return out;
}

/** The element inside field [tag] of a saved session (OpenSSL's SSL_SESSION encoding). */
function sessionField(session: Buffer, tag: number): DerElement | null {
  try {
    const field = sequence(parseDer(session)).find((e) => e.cls === CONTEXT && e.tag === tag);
    return field ? explicit(field, tag) : null;
  } catch {
    return null;
  }
}

/** The session of a finished handshake on `t` with peer chain `chain`, made with `settings`. */
export function sessionOf(
  t: tls.TLSSocket,
  chain: X509Certificate[],
  settings: SslSettings,
): SslSession {
  const peer = chain.length > 0 ? QSslCertificate.fromX509(chain[0]) : new QSslCertificate();
  const alpn = t.alpnProtocol;
  return {
    peerCertificate: peer,
    peerCertificateChain: chain.map((x) => QSslCertificate.fromX509(x)),
    sessionCipher: new QSslCipher(t.getCipher()?.name ?? '', protocolFromString(t.getProtocol())),
    sessionProtocol: protocolFromString(t.getProtocol()),
    nextNegotiatedProtocol: typeof alpn === 'string' ? Buffer.from(alpn) : Buffer.alloc(0),
    nextProtocolNegotiationStatus:
      typeof alpn === 'string'
        ? NextProtocolNegotiationStatus.NextProtocolNegotiationNegotiated
        : settings.allowedNextProtocols.length > 0
          ? NextProtocolNegotiationStatus.NextProtocolNegotiationUnsupported
          : NextProtocolNegotiationStatus.NextProtocolNegotiationNone,
  };
}

/** OpenSSL's verification result for the peer of `t` (null: verified). */
export function opensslResult(t: tls.TLSSocket, client: boolean): string | null {
  if (client) return t.authorizationError ? String(t.authorizationError) : null;
  // Node computes a server's result only inside tls.Server; it is read from the TLS handle
  // as tls.Server does. Were that unavailable, the peer is reported unverified.
  const handle = (t as unknown as { ssl?: TlsHandle | null }).ssl;
  if (!handle || typeof handle.verifyError !== 'function') return 'UNSPECIFIED';
  return handle.verifyError()?.code ?? null;
}

/**
 * The ticket lifetime hint, in seconds, of a saved session (OpenSSL's SSL_SESSION encoding,
 * what Node's `getSession()` and 'session' event give, as Qt's `sessionTicket()`): field [9];
 * 0 when the session holds no ticket.
 */
export function ticketLifetimeHintOf(session: Buffer): number {
  const hint = sessionField(session, 9);
  try {
    return hint ? smallIntegerOf(hint) : 0;
  } catch {
    return 0;
  }
}
