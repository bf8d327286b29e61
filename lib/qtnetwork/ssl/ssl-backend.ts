import { qWarning } from '../core/qlogging.js';
import { ImplementedClass, SslProtocol, SupportedFeature } from './qssl.js';

/**
 * What QSslSocket's static functions say about the TLS backend (Qt 6's plugin description:
 * `activeBackend`, `implementedClasses`, `supportedFeatures`, ...) and the TLS library.
 * The port has one backend, OpenSSL through Node's `tls`, named "openssl" as Qt names its
 * OpenSSL plugin; it reports what the port implements over it, not what OpenSSL can do.
 */

const OPENSSL = 'openssl';

/** QSslKey, QSslCertificate and QSslSocket; not QSslDiffieHellmanParameters, QSslEllipticCurve or DTLS. */
const CLASSES: readonly ImplementedClass[] = [
  ImplementedClass.Key,
  ImplementedClass.Certificate,
  ImplementedClass.Socket,
];

/** Everything but alerts, which Node does not report. */
const FEATURES: readonly SupportedFeature[] = [
  SupportedFeature.CertificateVerification,
  SupportedFeature.ClientSideAlpn,
  SupportedFeature.ServerSideAlpn,
  SupportedFeature.Ocsp,
  SupportedFeature.Psk,
  SupportedFeature.SessionTicket,
];

/**
 * The protocols a TCP socket can negotiate, in Qt's order (no DTLS: there is no QDtls).
 * TLS 1.0 and 1.1 need OpenSSL's security level 0 (`setCiphers('DEFAULT@SECLEVEL=0')`).
 */
const PROTOCOLS: readonly SslProtocol[] = [
  SslProtocol.AnyProtocol,
  SslProtocol.SecureProtocols,
  SslProtocol.TlsV1_0,
  SslProtocol.TlsV1_0OrLater,
  SslProtocol.TlsV1_1,
  SslProtocol.TlsV1_1OrLater,
  SslProtocol.TlsV1_2,
  SslProtocol.TlsV1_2OrLater,
  SslProtocol.TlsV1_3,
  SslProtocol.TlsV1_3OrLater,
];

/** Set once a TLS socket or server exists: from then on the backend cannot be changed. */
let inUse = false;

/** Notes that TLS is in use (Qt loads its backend there, and fixes the choice). */
export function markBackendInUse(): void {
  inUse = true;
}

/** The backend's name: "openssl". */
export function activeBackend(): string {
  return OPENSSL;
}

/** The backends available: only "openssl". */
export function availableBackends(): string[] {
  return [OPENSSL];
}

/**
 * Qt 6's choice of backend, with its warnings: true for "openssl"; false (with a warning)
 * for an empty or unknown name.
 */
export function setActiveBackend(backendName: string): boolean {
  if (backendName.length === 0) {
    qWarning('Invalid parameter (backend name cannot be an empty string)');
    return false;
  }
  if (inUse) {
    // Qt reports the choice as made once TLS is in use, and accepts only the backend in use.
    qWarning(
      `Cannot set backend named "${backendName}" as active, another backend is already in use`,
    );
    return backendName === OPENSSL;
  }
  if (backendName !== OPENSSL) {
    qWarning(`Cannot set unavailable backend named "${backendName}" as active`);
    return false;
  }
  return true;
}

/** True if `backendName` ("" = the active one) is the port's backend. */
function isOurs(backendName: string): boolean {
  return backendName === '' || backendName === OPENSSL;
}

/** The classes `backendName` ("" = the active one) implements; none for another name. */
export function implementedClasses(backendName = ''): ImplementedClass[] {
  return isOurs(backendName) ? [...CLASSES] : [];
}

/** The features `backendName` ("" = the active one) supports; none for another name. */
export function supportedFeatures(backendName = ''): SupportedFeature[] {
  return isOurs(backendName) ? [...FEATURES] : [];
}

/** The protocols `backendName` ("" = the active one) supports; none for another name. */
export function supportedProtocols(backendName = ''): SslProtocol[] {
  return isOurs(backendName) ? [...PROTOCOLS] : [];
}

/** The TLS library in use, e.g. "OpenSSL 3.0.13". */
export function libraryVersionString(): string {
  return `OpenSSL ${process.versions.openssl}`;
}

/** OpenSSL's version number (0xMNN00PP0 for OpenSSL 3). */
export function libraryVersionNumber(): number {
  const [major = 0, minor = 0, patch = 0] = process.versions.openssl
    .split(/[.+-]/)
    .map((n) => Number.parseInt(n, 10) || 0);
  return major * 0x10000000 + minor * 0x100000 + patch * 0x10;
}
