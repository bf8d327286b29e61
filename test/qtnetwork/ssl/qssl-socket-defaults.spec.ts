/**
 * Qt 5.15's application-wide TLS settings on QSslSocket (`setDefaultCaCertificates`,
 * `setDefaultCiphers`, ...) and the per-socket `ciphers`/`setCiphers`: they read and edit
 * QSslConfiguration's default, and a socket keeps the settings it was made with. The
 * expected results were checked with PyQt5 5.15 on the same kind of certificates.
 */
import {
  QSslCertificate,
  QSslCipher,
  QSslConfiguration,
  QSslSocket,
} from '../../../lib/qtnetwork/index.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';

const pki = sslPki();
afterAll(() => removeSslPki());

let saved: QSslConfiguration;
beforeEach(() => {
  saved = QSslConfiguration.defaultConfiguration();
});
afterEach(() => QSslConfiguration.setDefaultConfiguration(saved));

const names = (ciphers: QSslCipher[]): string[] => ciphers.map((c) => c.name());
const caOf = (file: string): QSslCertificate => QSslCertificate.fromPath(file)[0];

describe('QSslSocket default CA certificates (Qt 5.15 statics)', () => {
  it('setDefaultCaCertificates makes the list the only CAs of sockets made afterwards', () => {
    const before = new QSslSocket();
    const ca = caOf(pki.caCert);
    QSslSocket.setDefaultCaCertificates([ca]);
    expect(QSslSocket.defaultCaCertificates().map((c) => c.isEqual(ca))).toEqual([true]);
    expect(QSslConfiguration.defaultConfiguration().caCertificates()).toHaveLength(1);
    expect(new QSslSocket().caCertificates()).toHaveLength(1);
    // A socket keeps the settings it was made with (Qt copies the default at construction).
    expect(before.caCertificates().length).toBeGreaterThan(1);
  });

  it('addDefaultCaCertificate adds a CA once; addDefaultCaCertificates adds every one', () => {
    const ca = caOf(pki.caCert);
    const other = caOf(pki.otherCaCert);
    QSslSocket.setDefaultCaCertificates([ca]);
    QSslSocket.addDefaultCaCertificate(ca);
    expect(QSslSocket.defaultCaCertificates()).toHaveLength(1);
    QSslSocket.addDefaultCaCertificate(other);
    expect(QSslSocket.defaultCaCertificates()).toHaveLength(2);
    expect(QSslSocket.addDefaultCaCertificates(pki.caCert)).toBe(true);
    expect(QSslSocket.defaultCaCertificates()).toHaveLength(3);
    expect(QSslSocket.addDefaultCaCertificates([other])).toBe(true);
    expect(QSslSocket.defaultCaCertificates()).toHaveLength(4);
    expect(QSslSocket.addDefaultCaCertificates(`${pki.dir}/no-such-file.pem`)).toBe(false);
  });

  it("systemCaCertificates is QSslConfiguration's system store", () => {
    const system = QSslSocket.systemCaCertificates();
    expect(system.length).toBeGreaterThan(0);
    expect(system.map((c) => c.digest())).toEqual(
      QSslConfiguration.systemCaCertificates().map((c) => c.digest()),
    );
  });
});

describe('QSslSocket ciphers', () => {
  it('setDefaultCiphers sets the ciphers of sockets made afterwards', () => {
    const before = new QSslSocket();
    const one = [new QSslCipher('ECDHE-RSA-AES128-GCM-SHA256')];
    QSslSocket.setDefaultCiphers(one);
    expect(names(QSslSocket.defaultCiphers())).toEqual(['ECDHE-RSA-AES128-GCM-SHA256']);
    expect(names(new QSslSocket().ciphers())).toEqual(['ECDHE-RSA-AES128-GCM-SHA256']);
    expect(before.ciphers().length).toBeGreaterThan(1);
  });

  it("setCiphers takes a list or OpenSSL's names joined with ':'", () => {
    const socket = new QSslSocket();
    socket.setCiphers('ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256');
    const expected = ['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256'];
    expect(names(socket.ciphers())).toEqual(expected);
    expect(names(socket.sslConfiguration().ciphers())).toEqual(expected);
    socket.setCiphers([new QSslCipher('ECDHE-RSA-AES128-GCM-SHA256')]);
    expect(names(socket.ciphers())).toEqual(['ECDHE-RSA-AES128-GCM-SHA256']);
  });

  it("supportedCiphers is QSslConfiguration's list", () => {
    expect(QSslSocket.supportedCiphers().length).toBeGreaterThan(0);
    expect(names(QSslSocket.supportedCiphers())).toEqual(
      names(QSslConfiguration.supportedCiphers()),
    );
  });
});

it('sslLibraryBuildVersionNumber is the version number of the OpenSSL Node has', () => {
  expect(QSslSocket.sslLibraryBuildVersionNumber()).toBe(QSslSocket.sslLibraryVersionNumber());
  expect(QSslSocket.sslLibraryBuildVersionNumber()).toBeGreaterThan(0x10000000);
});
