/**
 * Qt 6's description of the TLS backend on QSslSocket (activeBackend, setActiveBackend,
 * implementedClasses, supportedFeatures, supportedProtocols and their is* forms): the port
 * has one backend, "openssl", and reports what the port implements over it. The warnings
 * and return values of setActiveBackend, before and after TLS is first used, are Qt 6.4's
 * (PyQt6); the enum values are checked against PyQt6 live when it is installed.
 *
 * The first test must run before anything in this file uses TLS.
 */
import { spawnSync } from 'node:child_process';

import {
  ImplementedClass,
  QSsl,
  QSslConfiguration,
  QSslSocket,
  SslProtocol,
  SupportedFeature,
} from '../../../lib/qtnetwork/index.js';
import { captureQtMessages } from '../../helpers/socket-log.js';

const PYTHON = '/usr/bin/python3';

function warnings(run: () => unknown): [unknown, string[]] {
  const capture = captureQtMessages();
  try {
    return [run(), capture.messages];
  } finally {
    capture.restore();
  }
}

describe('setActiveBackend', () => {
  test('before TLS is used: "openssl" is accepted silently; an empty or unknown name is refused with a warning', () => {
    expect(warnings(() => QSslSocket.setActiveBackend('openssl'))).toEqual([true, []]);
    expect(warnings(() => QSslSocket.setActiveBackend(''))).toEqual([
      false,
      ['Invalid parameter (backend name cannot be an empty string)'],
    ]);
    expect(warnings(() => QSslSocket.setActiveBackend('cert-only'))).toEqual([
      false,
      ['Cannot set unavailable backend named "cert-only" as active'],
    ]);
    // Asking which backend is active does not fix the choice (as Qt 6.4).
    expect(QSslSocket.activeBackend()).toBe('openssl');
    expect(warnings(() => QSslSocket.setActiveBackend('openssl'))).toEqual([true, []]);
  });

  test('once TLS is used (the default configuration read), every call warns; only "openssl" is true', () => {
    QSslConfiguration.defaultConfiguration();
    const inUse = (name: string): string =>
      `Cannot set backend named "${name}" as active, another backend is already in use`;
    expect(warnings(() => QSslSocket.setActiveBackend('openssl'))).toEqual([
      true,
      [inUse('openssl')],
    ]);
    expect(warnings(() => QSslSocket.setActiveBackend('foo'))).toEqual([false, [inUse('foo')]]);
    expect(warnings(() => QSslSocket.setActiveBackend(''))).toEqual([
      false,
      ['Invalid parameter (backend name cannot be an empty string)'],
    ]);
  });
});

describe('the backend description', () => {
  test('one backend, "openssl"', () => {
    expect(QSslSocket.activeBackend()).toBe('openssl');
    expect(QSslSocket.availableBackends()).toEqual(['openssl']);
  });

  test('classes: keys, certificates and sockets; no DTLS, Diffie-Hellman parameters or curves', () => {
    const ours = [ImplementedClass.Key, ImplementedClass.Certificate, ImplementedClass.Socket];
    expect(QSslSocket.implementedClasses()).toEqual(ours);
    expect(QSslSocket.implementedClasses('openssl')).toEqual(ours);
    expect(QSslSocket.implementedClasses('schannel')).toEqual([]);
    expect(QSslSocket.isClassImplemented(ImplementedClass.Socket)).toBe(true);
    expect(QSslSocket.isClassImplemented(ImplementedClass.Dtls)).toBe(false);
    expect(QSslSocket.isClassImplemented(ImplementedClass.Socket, 'schannel')).toBe(false);
  });

  test('features: all but alerts, which Node does not report', () => {
    expect(QSslSocket.supportedFeatures()).toEqual([
      SupportedFeature.CertificateVerification,
      SupportedFeature.ClientSideAlpn,
      SupportedFeature.ServerSideAlpn,
      SupportedFeature.Ocsp,
      SupportedFeature.Psk,
      SupportedFeature.SessionTicket,
    ]);
    expect(QSslSocket.isFeatureSupported(SupportedFeature.Psk)).toBe(true);
    expect(QSslSocket.isFeatureSupported(SupportedFeature.Alerts)).toBe(false);
    expect(QSslSocket.supportedFeatures('cert-only')).toEqual([]);
  });

  test("protocols: TLS 1.0 to 1.3 and their ranges, in Qt's order; no DTLS", () => {
    expect(QSslSocket.supportedProtocols()).toEqual([
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
    ]);
    expect(QSslSocket.isProtocolSupported(SslProtocol.TlsV1_3)).toBe(true);
    expect(QSslSocket.isProtocolSupported(SslProtocol.DtlsV1_2)).toBe(false);
    expect(QSslSocket.isProtocolSupported(SslProtocol.UnknownProtocol)).toBe(false);
    expect(QSslSocket.isProtocolSupported(SslProtocol.TlsV1_2, 'foo')).toBe(false);
  });

  test('the enums are reachable from QSsl', () => {
    expect(QSsl.ImplementedClass.DtlsCookie).toBe(6);
    expect(QSsl.SupportedFeature.Alerts).toBe(6);
  });
});

// ---------------------------------------------------------------------- against Qt 6

const QT6 = `
import json
from PyQt6.QtNetwork import QSsl, QSslSocket
print(json.dumps({
    'classes': {m.name: m.value for m in QSsl.ImplementedClass},
    'features': {m.name: m.value for m in QSsl.SupportedFeature},
    'opensslClasses': [c.name for c in QSslSocket.implementedClasses('openssl')],
    'opensslFeatures': [f.name for f in QSslSocket.supportedFeatures('openssl')],
}))
`;
const probe = spawnSync(PYTHON, ['-c', QT6], { encoding: 'utf8', timeout: 30000 });
const qt6 =
  probe.status === 0
    ? (JSON.parse(probe.stdout.trim().split('\n').pop()!) as {
        classes: Record<string, number>;
        features: Record<string, number>;
        opensslClasses: string[];
        opensslFeatures: string[];
      })
    : null;
if (!qt6) {
  console.log(
    `Backend description against Qt 6 skipped: ${PYTHON} cannot import PyQt6 (Debian: python3-pyqt6): ${(probe.stderr ?? probe.error?.message ?? '').trim().split('\n').pop()}`,
  );
}
const withQt6 = qt6 ? describe : describe.skip;

withQt6('against Qt 6.4 (PyQt6)', () => {
  test("ImplementedClass and SupportedFeature have Qt's names and values", () => {
    const classes = Object.fromEntries(
      Object.entries(ImplementedClass).filter(([, v]) => typeof v === 'number'),
    );
    const features = Object.fromEntries(
      Object.entries(SupportedFeature).filter(([, v]) => typeof v === 'number'),
    );
    expect(classes).toEqual(qt6!.classes);
    expect(features).toEqual(qt6!.features);
  });

  test("what the port reports is a part of what Qt's OpenSSL backend reports", () => {
    const names = (values: number[], e: Record<number, string>) => values.map((v) => e[v]);
    for (const c of names(QSslSocket.implementedClasses(), ImplementedClass)) {
      expect(qt6!.opensslClasses).toContain(c);
    }
    for (const f of names(QSslSocket.supportedFeatures(), SupportedFeature)) {
      expect(qt6!.opensslFeatures).toContain(f);
    }
  });
});
