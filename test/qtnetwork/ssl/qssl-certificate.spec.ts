/**
 * The value classes of the SSL port: QSslCertificate, QSslKey, QSslCipher, QSslError and
 * QSslConfiguration, and the enums with Qt 5.15's values. Formats (serial numbers,
 * digests, PEM headers) are Qt's, checked against PyQt5 5.15.8 on the same files; here
 * they are checked against the `openssl` command's view of the test certificates.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';

import {
  AlternativeNameEntryType,
  EncodingFormat,
  KeyAlgorithm,
  KeyType,
  PatternSyntax,
  PeerVerifyMode,
  QSsl,
  QSslCertificate,
  QSslCipher,
  QSslConfiguration,
  QSslError,
  QSslKey,
  QSslSocket,
  SocketError,
  SslError,
  SslMode,
  SslOption,
  SslProtocol,
  SubjectInfo,
} from '../../../lib/qtnetwork/index.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';
import { captureQtMessages } from '../../helpers/socket-log.js';

const pki = sslPki();
afterAll(() => removeSslPki());

function opensslField(file: string, flag: string): string {
  return execFileSync('openssl', ['x509', '-in', file, '-noout', flag], {
    encoding: 'utf8',
  }).trim();
}

describe('enums keep Qt 5.15 values', () => {
  test('QSsl, QSslSocket, QSslError and QAbstractSocket SSL values', () => {
    expect(QSsl.SslProtocol.TlsV1_2).toBe(4);
    expect(SslProtocol.TlsV1_3).toBe(15);
    expect(SslProtocol.AnyProtocol).toBe(5);
    expect(SslProtocol.SecureProtocols).toBe(7);
    expect(SslProtocol.TlsV1_2OrLater).toBe(10);
    expect(SslProtocol.TlsV1_3OrLater).toBe(16);
    expect(SslProtocol.UnknownProtocol).toBe(-1);
    expect([
      KeyAlgorithm.Opaque,
      KeyAlgorithm.Rsa,
      KeyAlgorithm.Dsa,
      KeyAlgorithm.Ec,
      KeyAlgorithm.Dh,
    ]).toEqual([0, 1, 2, 3, 4]);
    expect([EncodingFormat.Pem, EncodingFormat.Der]).toEqual([0, 1]);
    expect([KeyType.PrivateKey, KeyType.PublicKey]).toEqual([0, 1]);
    expect(QSslSocket.PeerVerifyMode.AutoVerifyPeer).toBe(3);
    expect([
      PeerVerifyMode.VerifyNone,
      PeerVerifyMode.QueryPeer,
      PeerVerifyMode.VerifyPeer,
    ]).toEqual([0, 1, 2]);
    expect(QSslSocket.SslMode.SslServerMode).toBe(2);
    expect(SslMode.SslClientMode).toBe(1);
    expect(QSslError.SslError.CertificateExpired).toBe(6);
    expect(SslError.HostNameMismatch).toBe(22);
    expect(SslError.NoPeerCertificate).toBe(21);
    expect(SslError.SelfSignedCertificate).toBe(9);
    expect(SslError.UnableToGetLocalIssuerCertificate).toBe(11);
    expect(SslError.OcspStatusUnknown).toBe(36);
    expect(SslError.UnspecifiedError).toBe(-1);
    expect(SslOption.SslOptionDisableServerNameIndication).toBe(0x08);
    expect(AlternativeNameEntryType.IpAddressEntry).toBe(2);
    expect(SubjectInfo.CommonName).toBe(1);
    expect(SubjectInfo.EmailAddress).toBe(8);
    expect(SocketError.SslHandshakeFailedError).toBe(13);
    expect(SocketError.SslInternalError).toBe(20);
    expect(SocketError.SslInvalidUserDataError).toBe(21);
  });
});

describe('QSslError', () => {
  test("errorString() gives Qt's texts", () => {
    expect(new QSslError().errorString()).toBe('No error');
    expect(new QSslError(SslError.CertificateExpired).errorString()).toBe(
      'The certificate has expired',
    );
    expect(new QSslError(SslError.HostNameMismatch).errorString()).toBe(
      'The host name did not match any of the valid hosts for this certificate',
    );
    expect(new QSslError(SslError.SelfSignedCertificateInChain).errorString()).toBe(
      'The root certificate of the certificate chain is self-signed, and untrusted',
    );
    // Qt 5.15 has no text for these.
    expect(new QSslError(SslError.CertificateRevoked).errorString()).toBe('Unknown error');
    expect(new QSslError(SslError.UnspecifiedError).errorString()).toBe('Unknown error');
    expect(new QSslError(SslError.NoSslSupport).errorString()).toBe('');
  });

  test('equality compares the error and the certificate', () => {
    const cert = QSslCertificate.fromPath(pki.serverCert)[0];
    const same = QSslCertificate.fromPath(pki.serverCert)[0];
    expect(new QSslError(SslError.CertificateExpired, cert).isEqual(new QSslError(6, same))).toBe(
      true,
    );
    expect(new QSslError(SslError.CertificateExpired, cert).isEqual(new QSslError(6))).toBe(false);
    expect(new QSslError(SslError.NoPeerCertificate).isEqual(new QSslError(21))).toBe(true);
    expect(new QSslError(SslError.NoPeerCertificate).certificate().isNull()).toBe(true);
  });
});

describe('QSslCertificate', () => {
  const server = QSslCertificate.fromPath(pki.serverCert)[0];

  test('reads the subject, issuer, dates and version', () => {
    expect(server.isNull()).toBe(false);
    expect(server.subjectInfo(SubjectInfo.CommonName)).toEqual(['localhost']);
    expect(server.subjectInfo('O')).toEqual(['nestjs-qt-transport']);
    expect(server.subjectInfo(SubjectInfo.CountryName)).toEqual([]);
    expect(server.issuerInfo(SubjectInfo.CommonName)).toEqual(['QSsl test CA']);
    expect(server.subjectInfoAttributes()).toEqual(['CN', 'O']);
    expect(server.subjectDisplayName()).toBe('localhost');
    expect(server.issuerDisplayName()).toBe('QSsl test CA');
    expect(server.version().toString()).toBe('3');
    const notBefore = new Date(
      opensslField(pki.serverCert, '-startdate').replace('notBefore=', ''),
    );
    expect(server.effectiveDate().getTime()).toBe(notBefore.getTime());
    expect(server.expiryDate().getTime() - server.effectiveDate().getTime()).toBe(30 * 86400000);
    expect(server.isSelfSigned()).toBe(false);
    expect(QSslCertificate.fromPath(pki.caCert)[0].isSelfSigned()).toBe(true);
    expect(server.isBlacklisted()).toBe(false);
  });

  test('serialNumber is lower-case hex bytes joined by colons, as Qt prints it', () => {
    const hex = opensslField(pki.serverCert, '-serial').replace('serial=', '').toLowerCase();
    const expected = (hex.length % 2 ? `0${hex}` : hex).match(/../g)!.join(':');
    expect(server.serialNumber().toString()).toBe(expected);
  });

  test('digest() is MD5 of the DER by default; other algorithms by name', () => {
    const der = server.toDer();
    expect(server.digest().equals(createHash('md5').update(der).digest())).toBe(true);
    expect(server.digest('sha256').toString('hex')).toBe(
      createHash('sha256').update(der).digest('hex'),
    );
  });

  test('subjectAlternativeNames groups DNS names, e-mail addresses and IP addresses', () => {
    const alt = server.subjectAlternativeNames();
    expect(alt.get(AlternativeNameEntryType.DnsEntry)).toEqual(['localhost']);
    expect(alt.get(AlternativeNameEntryType.IpAddressEntry)).toEqual(['127.0.0.1', '::1']);
    const rsa = QSslCertificate.fromPath(pki.rsaCert)[0];
    const rsaAlt = rsa.subjectAlternativeNames();
    expect(rsaAlt.get(AlternativeNameEntryType.DnsEntry)).toEqual(['rsa.example', '*.rsa.example']);
    expect(rsaAlt.get(AlternativeNameEntryType.EmailEntry)).toEqual(['ops@rsa.example']);
    expect(rsa.subjectInfo(SubjectInfo.OrganizationalUnitName)).toEqual(['Tests']);
    expect(rsa.subjectInfo(SubjectInfo.LocalityName)).toEqual(['Berlin']);
    expect(rsa.subjectInfo(SubjectInfo.StateOrProvinceName)).toEqual(['Berlin']);
  });

  test('PEM and DER round-trip; fromData reads every certificate of a bundle', () => {
    const pem = server.toPem();
    expect(pem.toString()).toMatch(
      /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/,
    );
    expect(new QSslCertificate(pem).isEqual(server)).toBe(true);
    expect(new QSslCertificate(server.toDer(), EncodingFormat.Der).isEqual(server)).toBe(true);
    const bundle = Buffer.concat([readFileSync(pki.serverCert), readFileSync(pki.caCert)]);
    const both = QSslCertificate.fromData(bundle);
    expect(both.map((c) => c.subjectDisplayName())).toEqual(['localhost', 'QSsl test CA']);
    const der = Buffer.concat([both[0].toDer(), both[1].toDer()]);
    expect(QSslCertificate.fromData(der, EncodingFormat.Der).length).toBe(2);
    expect(new QSslCertificate(bundle.toString()).isEqual(server)).toBe(true);
  });

  test('null certificates: unparsable data, missing files', () => {
    const none = new QSslCertificate('not a certificate');
    expect(none.isNull()).toBe(true);
    expect(none.subjectInfo('CN')).toEqual([]);
    expect(none.toPem().length).toBe(0);
    expect(none.serialNumber().length).toBe(0);
    expect(Number.isNaN(none.effectiveDate().getTime())).toBe(true);
    expect(none.isEqual(new QSslCertificate())).toBe(true);
    expect(QSslCertificate.fromPath('/nonexistent/file.pem')).toEqual([]);
    const copy = new QSslCertificate(server);
    copy.clear();
    expect(copy.isNull()).toBe(true);
    expect(server.isNull()).toBe(false);
  });

  test('fromPath with a wildcard reads every matching file', () => {
    const all = QSslCertificate.fromPath(
      path.join(pki.dir, '*ca.pem'),
      EncodingFormat.Pem,
      PatternSyntax.Wildcard,
    );
    expect(all.map((c) => c.subjectDisplayName()).sort()).toEqual(['QSsl test CA', 'Stranger CA']);
  });

  test('publicKey() is the key of the certificate', () => {
    const key = server.publicKey();
    expect(key.type()).toBe(KeyType.PublicKey);
    expect(key.algorithm()).toBe(KeyAlgorithm.Ec);
    expect(key.length()).toBe(256);
    expect(key.toPem().toString()).toMatch(/^-----BEGIN PUBLIC KEY-----/);
  });
});

describe('QSslKey', () => {
  test('reads EC and RSA keys, their algorithm and length', () => {
    const ec = new QSslKey(readFileSync(pki.serverKey));
    expect(ec.isNull()).toBe(false);
    expect(ec.algorithm()).toBe(KeyAlgorithm.Ec);
    expect(ec.type()).toBe(KeyType.PrivateKey);
    expect(ec.length()).toBe(256);
    const rsa = new QSslKey(readFileSync(pki.rsaKey), KeyAlgorithm.Rsa);
    expect(rsa.isNull()).toBe(false);
    expect(rsa.length()).toBe(2048);
  });

  test('an explicit algorithm that does not fit gives a null key, as in Qt', () => {
    expect(new QSslKey(readFileSync(pki.serverKey), KeyAlgorithm.Rsa).isNull()).toBe(true);
    expect(new QSslKey(readFileSync(pki.rsaKey), KeyAlgorithm.Ec).isNull()).toBe(true);
    expect(new QSslKey(readFileSync(pki.serverKey), KeyAlgorithm.Ec).isNull()).toBe(false);
  });

  test('encrypted keys need their passphrase', () => {
    const data = readFileSync(pki.serverKeyEncrypted);
    expect(new QSslKey(data).isNull()).toBe(true);
    expect(
      new QSslKey(data, undefined, EncodingFormat.Pem, KeyType.PrivateKey, 'wrong').isNull(),
    ).toBe(true);
    const key = new QSslKey(data, undefined, EncodingFormat.Pem, KeyType.PrivateKey, 'secret');
    expect(key.isEqual(new QSslKey(readFileSync(pki.serverKey)))).toBe(true);
  });

  test("toPem writes Qt's encodings (PKCS#1 RSA, SEC1 EC), encrypted with a passphrase", () => {
    const rsa = new QSslKey(readFileSync(pki.rsaKey));
    expect(rsa.toPem().toString()).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    const ec = new QSslKey(readFileSync(pki.serverKey));
    expect(ec.toPem().toString()).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    const locked = rsa.toPem('pw');
    expect(locked.toString()).toContain('DEK-Info: DES-EDE3-CBC');
    expect(
      new QSslKey(locked, KeyAlgorithm.Rsa, EncodingFormat.Pem, KeyType.PrivateKey, 'pw').isEqual(
        rsa,
      ),
    ).toBe(true);
    const der = rsa.toDer();
    expect(new QSslKey(der, KeyAlgorithm.Rsa, EncodingFormat.Der).isEqual(rsa)).toBe(true);
    const pub = QSslCertificate.fromPath(pki.rsaCert)[0].publicKey();
    expect(
      new QSslKey(pub.toPem(), undefined, EncodingFormat.Pem, KeyType.PublicKey).isEqual(pub),
    ).toBe(true);
    expect(
      new QSslKey(pub.toDer(), undefined, EncodingFormat.Der, KeyType.PublicKey).isEqual(pub),
    ).toBe(true);
  });

  test('a public key block is not a private key, nor a certificate a public key', () => {
    const pub = QSslCertificate.fromPath(pki.serverCert)[0].publicKey().toPem();
    expect(new QSslKey(pub).isNull()).toBe(true);
    expect(
      new QSslKey(
        readFileSync(pki.serverCert),
        undefined,
        EncodingFormat.Pem,
        KeyType.PublicKey,
      ).isNull(),
    ).toBe(true);
    expect(new QSslKey().isNull()).toBe(true);
    expect(new QSslKey().length()).toBe(-1);
  });
});

describe('QSslCipher', () => {
  test('describes suites as OpenSSL does', () => {
    const tls13 = new QSslCipher('TLS_AES_256_GCM_SHA384', SslProtocol.TlsV1_3);
    expect([
      tls13.keyExchangeMethod(),
      tls13.authenticationMethod(),
      tls13.encryptionMethod(),
    ]).toEqual(['any', 'any', 'AESGCM(256)']);
    expect(tls13.usedBits()).toBe(256);
    expect(tls13.protocolString()).toBe('TLSv1.3');
    const tls12 = new QSslCipher('ECDHE-RSA-AES128-GCM-SHA256', SslProtocol.TlsV1_2);
    expect([
      tls12.keyExchangeMethod(),
      tls12.authenticationMethod(),
      tls12.encryptionMethod(),
    ]).toEqual(['ECDH', 'RSA', 'AESGCM(128)']);
    const chacha = new QSslCipher('ECDHE-ECDSA-CHACHA20-POLY1305', SslProtocol.TlsV1_2);
    expect(chacha.encryptionMethod()).toBe('CHACHA20/POLY1305(256)');
    expect(new QSslCipher().isNull()).toBe(true);
    expect(new QSslCipher('TLS_AES_128_GCM_SHA256').protocol()).toBe(SslProtocol.TlsV1_3);
  });
});

describe('QSslConfiguration', () => {
  test("defaults are Qt's; the CA certificates are the system's", () => {
    const c = QSslConfiguration.defaultConfiguration();
    expect(c.isNull()).toBe(false);
    expect(c.protocol()).toBe(SslProtocol.SecureProtocols);
    expect(c.peerVerifyMode()).toBe(PeerVerifyMode.AutoVerifyPeer);
    expect(c.peerVerifyDepth()).toBe(0);
    expect(c.localCertificate().isNull()).toBe(true);
    expect(c.privateKey().isNull()).toBe(true);
    expect(c.caCertificates().length).toBe(tls.rootCertificates.length);
    expect(c.testSslOption(SslOption.SslOptionDisableCompression)).toBe(true);
    expect(c.testSslOption(SslOption.SslOptionDisableSessionTickets)).toBe(false);
    expect(c.ciphers().length).toBeGreaterThan(10);
    expect(new QSslConfiguration().isNull()).toBe(true);
  });

  test('is a value: copies do not see later changes', () => {
    const a = QSslConfiguration.defaultConfiguration();
    const b = new QSslConfiguration(a);
    a.setPeerVerifyMode(PeerVerifyMode.VerifyNone);
    a.setProtocol(SslProtocol.TlsV1_3);
    expect(b.peerVerifyMode()).toBe(PeerVerifyMode.AutoVerifyPeer);
    expect(b.protocol()).toBe(SslProtocol.SecureProtocols);
    expect(QSslConfiguration.defaultConfiguration().peerVerifyMode()).toBe(
      PeerVerifyMode.AutoVerifyPeer,
    );
    const socket = new QSslSocket();
    socket.setSslConfiguration(a);
    a.setPeerVerifyMode(PeerVerifyMode.QueryPeer);
    expect(socket.peerVerifyMode()).toBe(PeerVerifyMode.VerifyNone);
    expect(socket.sslConfiguration().protocol()).toBe(SslProtocol.TlsV1_3);
  });

  test('setCaCertificates replaces the system store; addCaCertificate adds to it', () => {
    const ca = QSslCertificate.fromPath(pki.caCert);
    const only = QSslConfiguration.defaultConfiguration();
    only.setCaCertificates(ca);
    expect(only.caCertificates().map((c) => c.subjectDisplayName())).toEqual(['QSsl test CA']);
    const more = QSslConfiguration.defaultConfiguration();
    more.addCaCertificate(ca[0]);
    expect(more.caCertificates().length).toBe(tls.rootCertificates.length + 1);
    expect(more.addCaCertificates(pki.otherCaCert)).toBe(true);
    expect(more.caCertificates().length).toBe(tls.rootCertificates.length + 2);
  });

  test('local certificate and chain', () => {
    const [leaf, ca] = QSslCertificate.fromData(
      Buffer.concat([readFileSync(pki.serverCert), readFileSync(pki.caCert)]),
    );
    const c = new QSslConfiguration();
    c.setLocalCertificateChain([leaf, ca]);
    expect(c.localCertificate().isEqual(leaf)).toBe(true);
    expect(c.localCertificateChain().length).toBe(2);
    c.setLocalCertificate(ca);
    expect(c.localCertificate().isEqual(ca)).toBe(true);
    expect(c.localCertificateChain()).toEqual([]);
  });

  test('a negative verify depth is refused with a warning', () => {
    const messages = captureQtMessages();
    try {
      const c = new QSslConfiguration();
      c.setPeerVerifyDepth(-1);
      expect(c.peerVerifyDepth()).toBe(0);
      expect(messages.messages[0]).toMatch(/setPeerVerifyDepth/);
    } finally {
      messages.restore();
    }
  });

  test('setCiphers takes OpenSSL names joined with colons', () => {
    const c = new QSslConfiguration();
    c.setCiphers('TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256');
    expect(c.ciphers().map((x) => x.name())).toEqual([
      'TLS_AES_128_GCM_SHA256',
      'ECDHE-ECDSA-AES128-GCM-SHA256',
    ]);
    expect(QSslSocket.supportsSsl()).toBe(true);
    expect(QSslSocket.sslLibraryVersionString()).toMatch(/^OpenSSL \d/);
    expect(QSslSocket.sslLibraryVersionNumber()).toBeGreaterThan(0x10000000);
  });
});
