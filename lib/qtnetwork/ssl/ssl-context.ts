import { constants, randomBytes } from 'node:crypto';
import * as tls from 'node:tls';

import { KeyType, SslOption, SslProtocol } from './qssl.js';
import type { SslSettings } from './qssl-configuration.js';

/** Why a TLS context could not be made from a configuration, with Qt's text. */
export class SslContextError extends Error {
  constructor(readonly text: string) {
    super(text);
    this.name = 'SslContextError';
  }
}

/**
 * OpenSSL's reason for `err` as Qt prints OpenSSL errors ("error:0A00010B:SSL
 * routines::wrong version number"); Node's own message if it is not an OpenSSL error.
 */
export function opensslReason(err: unknown): string {
  // Not `instanceof Error`: errors may come from another realm (a vm context).
  if (typeof err !== 'object' || err === null) return String(err);
  const e = err as { message?: unknown; library?: unknown; reason?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  const code = /error:([0-9A-Fa-f]{8}):/.exec(message)?.[1];
  if (code && typeof e.library === 'string' && typeof e.reason === 'string') {
    return `error:${code}:${e.library}::${e.reason}`;
  }
  return typeof e.reason === 'string' ? e.reason : message.trim();
}

/** True for an error raised by OpenSSL (Node marks them with the library they come from). */
export function isOpensslError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { library?: unknown; code?: unknown };
  return (
    typeof e.library === 'string' ||
    (typeof e.code === 'string' && (e.code.startsWith('ERR_SSL_') || e.code.startsWith('ERR_TLS_')))
  );
}

type Version = tls.SecureVersion;

/** The versions Node may negotiate for `protocol`; a text (Qt's) when it cannot be used. */
export function versionRange(protocol: SslProtocol): { min: Version; max: Version } | string {
  switch (protocol) {
    case SslProtocol.TlsV1_0:
      return { min: 'TLSv1', max: 'TLSv1' };
    case SslProtocol.TlsV1_1:
      return { min: 'TLSv1.1', max: 'TLSv1.1' };
    case SslProtocol.TlsV1_2:
      return { min: 'TLSv1.2', max: 'TLSv1.2' };
    case SslProtocol.TlsV1_3:
    case SslProtocol.TlsV1_3OrLater:
      return { min: 'TLSv1.3', max: 'TLSv1.3' };
    case SslProtocol.AnyProtocol:
    case SslProtocol.TlsV1_0OrLater:
      return { min: 'TLSv1', max: 'TLSv1.3' };
    case SslProtocol.TlsV1_1OrLater:
      return { min: 'TLSv1.1', max: 'TLSv1.3' };
    case SslProtocol.SecureProtocols:
    case SslProtocol.TlsV1_2OrLater:
      return { min: 'TLSv1.2', max: 'TLSv1.3' };
    case SslProtocol.SslV2:
    case SslProtocol.SslV3:
    case SslProtocol.TlsV1SslV3:
      return 'unsupported protocol';
    default:
      // DTLS and UnknownProtocol are refused before any context is made, as in Qt.
      return 'Attempted to use an unsupported protocol.';
  }
}

/** True for the protocols Qt refuses at once (DTLS on a TCP socket, UnknownProtocol). */
export function isRefusedProtocol(protocol: SslProtocol): boolean {
  return (
    protocol === SslProtocol.UnknownProtocol ||
    protocol === SslProtocol.DtlsV1_0 ||
    protocol === SslProtocol.DtlsV1_0OrLater ||
    protocol === SslProtocol.DtlsV1_2 ||
    protocol === SslProtocol.DtlsV1_2OrLater
  );
}

type Entry = tls.SecureContext | SslContextError;

/** A server's context and a client's, for each settings object (made on first use). */
const cache = new WeakMap<SslSettings, { server?: Entry; client?: Entry }>();

function build(s: SslSettings, server: boolean): tls.SecureContext {
  const range = versionRange(s.protocol);
  if (typeof range === 'string') throw new SslContextError(range);
  const chain =
    s.localCertificateChain.length > 0
      ? s.localCertificateChain
      : s.localCertificate.isNull()
        ? []
        : [s.localCertificate];
  if (chain.length > 0 && (s.privateKey.isNull() || s.privateKey.type() !== KeyType.PrivateKey)) {
    // Qt appends OpenSSL's error queue, empty here.
    throw new SslContextError('Cannot provide a certificate with no key, ');
  }
  const options: tls.SecureContextOptions = {
    // A server resumes sessions from the tickets this context issued (the sockets made from
    // one configuration share it). OpenSSL refuses to resume, with a fatal error, when the
    // server asks for client certificates and no session context is set. A client's has
    // none, as Qt's and Node's: a saved session names the context it was made in, and
    // must fit any client's.
    ...(server ? { sessionIdContext: randomBytes(16).toString('hex') } : {}),
    minVersion: range.min,
    maxVersion: range.max,
    // Qt prefers the server's cipher order unless told otherwise.
    honorCipherOrder: (s.sslOptions & SslOption.SslOptionDisableServerCipherPreference) === 0,
    secureOptions:
      ((s.sslOptions & SslOption.SslOptionDisableSessionTickets) !== 0
        ? constants.SSL_OP_NO_TICKET
        : 0) |
      ((s.sslOptions & SslOption.SslOptionDisableCompression) !== 0
        ? constants.SSL_OP_NO_COMPRESSION
        : 0) |
      ((s.sslOptions & SslOption.SslOptionDisableLegacyRenegotiation) === 0
        ? constants.SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION
        : 0),
  };
  if (s.ciphers) options.ciphers = s.ciphers.map((c) => c.name()).join(':');
  if (chain.length > 0) {
    options.cert = Buffer.concat(chain.map((c) => c.toPem()));
    options.key = s.privateKey.toPem();
  }
  if (!s.systemCaCertificates) {
    options.ca = s.caCertificates.map((c) => c.toPem());
  } else if (s.caCertificates.length > 0) {
    // Node trusts its bundled store only when no `ca` is given: name it as well.
    options.ca = [...tls.rootCertificates, ...s.caCertificates.map((c) => c.toPem().toString())];
  }
  try {
    return tls.createSecureContext(options);
  } catch (err) {
    const reason = opensslReason(err);
    if (/key values mismatch|does not match/i.test(reason)) {
      throw new SslContextError(`Private key does not certify public key, ${reason}`);
    }
    if (/cipher/i.test(reason))
      throw new SslContextError(`Invalid or empty cipher list (${reason})`);
    throw new SslContextError(`Error creating SSL context (${reason})`);
  }
}

/**
 * Lets `derived`, which differs from `settings` only in what no TLS context depends on (a
 * saved session), use the context of `settings` instead of making its own.
 */
export function shareContext(settings: SslSettings, derived: SslSettings): void {
  const entry = cache.get(settings);
  if (entry) cache.set(derived, { ...entry });
}

/**
 * The TLS context for `settings` in a client (`server` false) or a server, made once per
 * settings object and side (copies of one configuration share it). Throws SslContextError
 * with Qt's text when the settings cannot be used.
 */
export function secureContextFor(settings: SslSettings, server: boolean): tls.SecureContext {
  let entries = cache.get(settings);
  if (!entries) {
    entries = {};
    cache.set(settings, entries);
  }
  const side = server ? 'server' : 'client';
  let entry = entries[side];
  if (!entry) {
    try {
      entry = build(settings, server);
    } catch (err) {
      entry =
        err instanceof SslContextError
          ? err
          : new SslContextError(`Error creating SSL context (${opensslReason(err)})`);
    }
    entries[side] = entry;
  }
  if (entry instanceof SslContextError) throw entry;
  return entry;
}
