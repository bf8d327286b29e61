/**
 * OCSP stapling on QSslSocket: a client with `setOcspStaplingEnabled(true)` asks for the
 * certificate status, and the response a real TLS server (node:tls) staples is checked as
 * Qt 5.15 checks it. Responses are made with `openssl ocsp` from the test PKI. The expected
 * signals, error lists and texts are those Qt 5.15 (PyQt5, OpenSSL 3) gave against the same
 * kind of server on this machine; test/differential/fidelity-ssl.spec.ts compares the two
 * live.
 */
import { jest } from '@jest/globals';

import {
  PeerVerifyMode,
  QOcspCertificateStatus,
  QOcspResponse,
  QOcspRevocationReason,
  QSslCertificate,
  QSslConfiguration,
  SocketError,
  SocketState,
  SslError,
  SslProtocol,
  type QSslSocket,
} from '../../../lib/qtnetwork/index.js';
import { recordSsl, sslClient, startSslServer, type SslSetup } from '../../helpers/qssl-helpers.js';
import { ocspMaterial, portOf, startStaplingServer } from '../../helpers/qssl-ocsp.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';
import { Resources } from '../../helpers/resources.js';
import { waitUntil } from '../../helpers/signals.js';

jest.setTimeout(20000);

const pki = sslPki();
const ocsp = ocspMaterial(pki);
afterAll(() => removeSslPki());
const res = new Resources();
afterEach(() => res.dispose());

const CONNECTED = [
  'stateChanged(1)',
  'stateChanged(2)',
  'stateChanged(3)',
  'modeChanged(1)',
  'connected',
];
const REFUSED_END = ['stateChanged(6)', 'stateChanged(0)', 'disconnected'];
const serverCert = QSslCertificate.fromPath(pki.serverCert)[0];
const caCert = QSslCertificate.fromPath(pki.caCert)[0];

/** A client that asks for the certificate status and trusts the PKI's CA (unless told). */
function staplingClient(setup: SslSetup = { ca: [pki.caCert] }): QSslSocket {
  const client = sslClient(res, setup);
  const config = client.sslConfiguration();
  config.setOcspStaplingEnabled(true);
  client.setSslConfiguration(config);
  return client;
}

/** Connects `client` to a server stapling `response`; resolves once it is encrypted or closed. */
async function connectTo(
  client: QSslSocket,
  response: Buffer | null,
  chain = ocsp.serverChain,
  maxVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3',
): Promise<void> {
  const server = await startStaplingServer(res, chain, pki.serverKey, response, { maxVersion });
  client.connectToHostEncrypted('localhost', portOf(server));
  await waitUntil(
    () => client.isEncrypted() || client.state() === SocketState.UnconnectedState,
    10000,
    'encrypted or closed',
  );
}

/** A response as [status, reason, responder CN, subject is the server's certificate]. */
function describe1(r: QOcspResponse): [number, number, string[], boolean] {
  return [
    r.certificateStatus(),
    r.revocationReason(),
    r.responder().subjectInfo('CN'),
    r.subject().isEqual(serverCert),
  ];
}

describe('a stapled response the client checks', () => {
  test('a good status signed by the CA: encrypted, with the response reported', async () => {
    const client = staplingClient();
    const log = recordSsl(client);
    await connectTo(client, ocsp.good);
    expect(log).toEqual([...CONNECTED, 'encrypted']);
    expect(client.ocspResponses().map(describe1)).toEqual([
      [QOcspCertificateStatus.Good, QOcspRevocationReason.None, ['QSsl test CA'], true],
    ]);
    expect(client.ocspResponses()[0].responder().isEqual(caCert)).toBe(true);
    expect(client.sslHandshakeErrors()).toEqual([]);
  });

  test('a revoked certificate is CertificateRevoked (Qt 5.15\'s text for it is "Unknown error")', async () => {
    const client = staplingClient();
    const log = recordSsl(client);
    const verifyErrors: QSslCertificate[] = [];
    client.peerVerifyError.connect((e) => verifyErrors.push(e.certificate()));
    await connectTo(client, ocsp.revoked);
    expect(log).toEqual([
      ...CONNECTED,
      'peerVerifyError(13)',
      'sslErrors([13])',
      'error(13:Unknown error)',
      ...REFUSED_END,
    ]);
    expect(verifyErrors[0].isEqual(serverCert)).toBe(true);
    expect(client.ocspResponses().map(describe1)).toEqual([
      [QOcspCertificateStatus.Revoked, QOcspRevocationReason.KeyCompromise, ['QSsl test CA'], true],
    ]);
  });

  test('a revocation without a reason reads as reason None', async () => {
    const client = staplingClient();
    await connectTo(client, ocsp.revokedNoReason);
    expect(client.sslHandshakeErrors().map((e) => e.error())).toEqual([
      SslError.CertificateRevoked,
    ]);
    expect(client.ocspResponses().map(describe1)).toEqual([
      [QOcspCertificateStatus.Revoked, QOcspRevocationReason.None, ['QSsl test CA'], true],
    ]);
  });

  test("an unknown certificate is OcspStatusUnknown, with Qt's text", async () => {
    const client = staplingClient();
    const log = recordSsl(client);
    await connectTo(client, ocsp.unknown);
    expect(log).toEqual([
      ...CONNECTED,
      'peerVerifyError(36)',
      'sslErrors([36])',
      "error(13:The certificate's status is unknown)",
      ...REFUSED_END,
    ]);
    expect(client.ocspResponses()[0].certificateStatus()).toBe(QOcspCertificateStatus.Unknown);
  });

  test('no stapled response is OcspNoResponseFound, without a certificate', async () => {
    const client = staplingClient();
    const log = recordSsl(client);
    await connectTo(client, null);
    expect(log).toEqual([
      ...CONNECTED,
      'peerVerifyError(26)',
      'sslErrors([26])',
      'error(13:No OCSP status response found)',
      ...REFUSED_END,
    ]);
    expect(client.sslHandshakeErrors()[0].certificate().isNull()).toBe(true);
    expect(client.ocspResponses()).toEqual([]);
  });

  test('an unsigned "try later" answer is OcspTryLater, with no response read', async () => {
    const client = staplingClient();
    const log = recordSsl(client);
    await connectTo(client, ocsp.tryLater);
    expect(log).toContain('sslErrors([30])');
    expect(client.errorString()).toBe(
      'OCSP responder was unable to return a status for the requested certificate',
    );
    expect(client.ocspResponses()).toEqual([]);
  });

  test('bytes that are no OCSP response fail the handshake at once, with no verification error', async () => {
    const client = staplingClient();
    const log = recordSsl(client);
    await connectTo(client, ocsp.garbage);
    expect(log).toEqual([
      ...CONNECTED,
      'error(13:Failed to decode OCSP response)',
      'stateChanged(0)',
      'disconnected',
    ]);
  });

  test('a response signed by a CA nobody trusts cannot be trusted (OcspResponseCannotBeTrusted)', async () => {
    const client = staplingClient();
    const log = recordSsl(client);
    await connectTo(client, ocsp.strangerSigned);
    expect(log).toContain('sslErrors([33])');
    expect(client.errorString()).toBe("OCSP responder's identity cannot be verified");
    expect(client.sslHandshakeErrors()[0].certificate().isNull()).toBe(true);
    // The status is read all the same.
    expect(client.ocspResponses()[0].certificateStatus()).toBe(QOcspCertificateStatus.Good);
  });

  test('a responder the CA delegated is trusted only with the OCSPSigning usage', async () => {
    const delegated = staplingClient();
    await connectTo(delegated, ocsp.delegated);
    expect(delegated.isEncrypted()).toBe(true);
    expect(delegated.ocspResponses()[0].responder().isEqual(caCert)).toBe(true);

    const withoutUsage = staplingClient();
    await connectTo(withoutUsage, ocsp.delegatedWithoutUsage);
    expect(withoutUsage.isEncrypted()).toBe(false);
    expect(withoutUsage.sslHandshakeErrors().map((e) => e.error())).toEqual([
      SslError.OcspResponseCannotBeTrusted,
    ]);
  });

  test('with TLS 1.2 the status is stapled and checked alike', async () => {
    const client = staplingClient();
    await connectTo(client, ocsp.revoked, ocsp.serverChain, 'TLSv1.2');
    expect(client.sessionProtocol()).toBe(SslProtocol.TlsV1_2);
    expect(client.sslHandshakeErrors().map((e) => e.error())).toEqual([
      SslError.CertificateRevoked,
    ]);
  });

  test('ignoreSslErrors() goes on past a revoked status; the response stays readable', async () => {
    const client = staplingClient();
    client.sslErrors.connect(() => client.ignoreSslErrors());
    await connectTo(client, ocsp.revoked);
    expect(client.isEncrypted()).toBe(true);
    expect(client.ocspResponses()[0].certificateStatus()).toBe(QOcspCertificateStatus.Revoked);
  });

  test("the order is Qt's: chain errors first, then the status's, then the host name's; the list starts with the status's", async () => {
    // The CA is not trusted, and the name asked for is not the certificate's.
    const client = staplingClient({ ca: [pki.otherCaCert] });
    client.setPeerVerifyName('other.example');
    const emitted: number[] = [];
    client.peerVerifyError.connect((e) => emitted.push(e.error()));
    await connectTo(client, ocsp.revoked);
    expect(emitted).toEqual([
      SslError.SelfSignedCertificateInChain,
      SslError.OcspResponseCannotBeTrusted,
      SslError.CertificateRevoked,
      SslError.HostNameMismatch,
    ]);
    expect(client.sslHandshakeErrors().map((e) => e.error())).toEqual([
      SslError.OcspResponseCannotBeTrusted,
      SslError.CertificateRevoked,
      SslError.HostNameMismatch,
      SslError.SelfSignedCertificateInChain,
    ]);
    expect(client.errorString()).toBe("OCSP responder's identity cannot be verified");
  });

  test('a server that sends its certificate alone: the issuer is found in the trusted CAs (Qt reports OcspResponseCertIdUnknown)', async () => {
    const client = staplingClient();
    await connectTo(client, ocsp.good, pki.serverCert);
    expect(client.isEncrypted()).toBe(true);
    expect(client.ocspResponses()[0].responder().isEqual(caCert)).toBe(true);
  });
});

describe('when the status is not checked', () => {
  test('VerifyNone and QueryPeer clients ask for it but check nothing, as Qt', async () => {
    for (const mode of [PeerVerifyMode.VerifyNone, PeerVerifyMode.QueryPeer]) {
      const client = staplingClient({ ca: [pki.caCert], verify: mode });
      await connectTo(client, ocsp.revoked);
      expect(client.isEncrypted()).toBe(true);
      expect(client.ocspResponses()).toEqual([]);
    }
  });

  test('without stapling a revoked status the server sends anyway goes unread', async () => {
    const client = sslClient(res, { ca: [pki.caCert] });
    await connectTo(client, ocsp.revoked);
    expect(client.isEncrypted()).toBe(true);
    expect(client.ocspResponses()).toEqual([]);
  });

  test('a new connection forgets the responses of the last', async () => {
    const client = staplingClient();
    await connectTo(client, ocsp.good);
    expect(client.ocspResponses()).toHaveLength(1);
    client.disconnectFromHost();
    await waitUntil(() => client.state() === SocketState.UnconnectedState);
    const config = client.sslConfiguration();
    config.setOcspStaplingEnabled(false);
    client.setSslConfiguration(config);
    await connectTo(client, ocsp.good);
    expect(client.isEncrypted()).toBe(true);
    expect(client.ocspResponses()).toEqual([]);
  });
});

describe('servers', () => {
  test("a server configuration with stapling on is refused with Qt's text", async () => {
    const server = await startSslServer(res, { cert: pki.serverCert, key: pki.serverKey });
    const config = server.sslConfiguration();
    config.setOcspStaplingEnabled(true);
    server.setSslConfiguration(config);
    const errors: Array<[SocketError, string]> = [];
    server.errorOccurred.connect((s, e) => errors.push([e, s.errorString()]));
    const client = sslClient(res, { ca: [pki.caCert] });
    client.connectToHostEncrypted('localhost', server.serverPort());
    await waitUntil(() => client.state() === SocketState.UnconnectedState, 10000);
    expect(errors).toEqual([
      [
        SocketError.SslInvalidUserDataError,
        'Server-side QSslSocket does not support OCSP stapling',
      ],
    ]);
    expect(client.isEncrypted()).toBe(false);
    expect(server.hasPendingConnections()).toBe(false);
  });
});

describe('QOcspResponse', () => {
  test('a default response is Unknown, reason None, with null certificates; copies are equal', () => {
    const r = new QOcspResponse();
    expect(r.certificateStatus()).toBe(QOcspCertificateStatus.Unknown);
    expect(r.revocationReason()).toBe(QOcspRevocationReason.None);
    expect(r.responder().isNull()).toBe(true);
    expect(r.subject().isNull()).toBe(true);
    expect(r.isEqual(new QOcspResponse())).toBe(true);
  });

  test('swap exchanges two responses; a copy keeps what it copied', async () => {
    const client = staplingClient();
    await connectTo(client, ocsp.good);
    const read = client.ocspResponses()[0];
    const copy = new QOcspResponse(read);
    const empty = new QOcspResponse();
    expect(copy.isEqual(read)).toBe(true);
    empty.swap(copy);
    expect(empty.certificateStatus()).toBe(QOcspCertificateStatus.Good);
    expect(copy.certificateStatus()).toBe(QOcspCertificateStatus.Unknown);
    expect(copy.isEqual(read)).toBe(false);
  });

  test("Qt's enum values (QOcspRevocationReason.None is -1)", () => {
    expect(QOcspCertificateStatus.Revoked).toBe(1);
    expect(QOcspRevocationReason.None).toBe(-1);
    expect(QOcspRevocationReason.RemoveFromCRL).toBe(7);
  });
});

describe('QSslConfiguration', () => {
  test('ocspStaplingEnabled is off by default and kept by copies', () => {
    const config = new QSslConfiguration();
    expect(config.ocspStaplingEnabled()).toBe(false);
    expect(QSslConfiguration.defaultConfiguration().ocspStaplingEnabled()).toBe(false);
    config.setOcspStaplingEnabled(true);
    expect(new QSslConfiguration(config).ocspStaplingEnabled()).toBe(true);
  });
});
