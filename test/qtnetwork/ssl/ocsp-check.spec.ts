/**
 * The check of a stapled OCSP response (lib/qtnetwork/ssl/ocsp-check.ts) and the DER
 * reader under it, on responses made with `openssl ocsp`: what is reported at a given
 * time (Qt allows 60 s of clock difference), for a certificate the response is not about,
 * and for inputs that are not DER.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

import {
  DerError,
  Tag,
  childrenOf,
  oidOf,
  parseDer,
  sequence,
  smallIntegerOf,
  timeOf,
} from '../../../lib/qtnetwork/ssl/asn1-der.js';
import { checkOcspResponse } from '../../../lib/qtnetwork/ssl/ocsp-check.js';
import { QOcspCertificateStatus, SslError } from '../../../lib/qtnetwork/index.js';
import { ocspMaterial } from '../../helpers/qssl-ocsp.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';

const pki = sslPki();
const ocsp = ocspMaterial(pki);
afterAll(() => removeSslPki());

const x509 = (file: string): X509Certificate => new X509Certificate(readFileSync(file));
const server = x509(pki.serverCert);
const ca = x509(pki.caCert);
const wrongHost = x509(pki.wrongHostCert);

function check(response: Buffer | null, now?: Date, chain = [server, ca]) {
  const outcome = checkOcspResponse({ response, peerChain: chain, trusted: () => [ca], now });
  return {
    failure: outcome.failure,
    errors: outcome.errors.map((e) => e.error()),
    statuses: outcome.responses.map((r) => r.certificateStatus()),
  };
}

describe('checkOcspResponse', () => {
  const day = 86400000;

  test('a fresh good response has no error', () => {
    expect(check(ocsp.good)).toEqual({
      failure: null,
      errors: [],
      statuses: [QOcspCertificateStatus.Good],
    });
  });

  test('after nextUpdate (one day) and 60 s more it has expired; within the 60 s it has not', () => {
    const next = Date.now() + day;
    expect(check(ocsp.good, new Date(next + 2 * day)).errors).toEqual([
      SslError.OcspResponseExpired,
    ]);
    // The response was made a moment before `Date.now()`: its nextUpdate is at most `next`.
    expect(check(ocsp.good, new Date(next - 120000)).errors).toEqual([]);
  });

  test('a day before it was made, neither the response (thisUpdate) nor its signer is valid yet', () => {
    // Qt reports a response from the future as expired too.
    expect(check(ocsp.good, new Date(Date.now() - day)).errors).toEqual([
      SslError.OcspResponseCannotBeTrusted,
      SslError.OcspResponseExpired,
    ]);
  });

  test('a response about another certificate: OcspResponseCertIdUnknown, null responder', () => {
    const outcome = checkOcspResponse({
      response: ocsp.good,
      peerChain: [wrongHost, ca],
      trusted: () => [ca],
    });
    expect(outcome.errors.map((e) => e.error())).toEqual([SslError.OcspResponseCertIdUnknown]);
    expect(outcome.errors[0].certificate().handle()?.raw.equals(wrongHost.raw)).toBe(true);
    expect(outcome.responses[0].responder().isNull()).toBe(true);
  });

  test('a signature that does not match: OcspResponseCannotBeTrusted', () => {
    const tampered = Buffer.from(ocsp.good);
    // The last byte belongs to the signer's certificate or the signature: flip one in the
    // signed data instead (the serial number of the response's CertID is in it).
    const serial = sequence(parseDer(server.raw))[0];
    const at = tampered.indexOf(sequence(serial)[1].content);
    expect(at).toBeGreaterThan(0);
    tampered[at + 2] ^= 0x01;
    const result = check(tampered);
    expect(result.errors[0]).toBe(SslError.OcspResponseCannotBeTrusted);
  });

  test("missing, unsigned and unreadable responses: Qt's errors and texts", () => {
    expect(check(null)).toEqual({
      failure: null,
      errors: [SslError.OcspNoResponseFound],
      statuses: [],
    });
    expect(check(ocsp.tryLater).errors).toEqual([SslError.OcspTryLater]);
    expect(check(Buffer.from('30030a0101', 'hex')).errors).toEqual([SslError.OcspMalformedRequest]);
    expect(check(ocsp.garbage).failure).toBe('Failed to decode OCSP response');
    // Successful, but without responseBytes.
    expect(check(Buffer.from('30030a0100', 'hex')).failure).toBe(
      'Failed to extract basic OCSP response',
    );
    // A truncated response.
    expect(check(ocsp.good.subarray(0, ocsp.good.length - 10)).failure).toBe(
      'Failed to decode OCSP response',
    );
  });
});

describe('the DER reader', () => {
  test('reads what openssl wrote: the response status, the basic response OID, times', () => {
    const [status, bytes] = sequence(parseDer(ocsp.good));
    expect(smallIntegerOf(status, Tag.Enumerated)).toBe(0);
    const [type] = sequence(childrenOf(bytes)[0]);
    expect(oidOf(type)).toBe('1.3.6.1.5.5.7.48.1.1');
  });

  test('times: GeneralizedTime with fractions, UTCTime in both centuries', () => {
    const element = (tag: number, text: string): Buffer =>
      Buffer.concat([Buffer.from([tag, text.length]), Buffer.from(text, 'latin1')]);
    expect(timeOf(parseDer(element(0x18, '20261207101112.5Z'))).toISOString()).toBe(
      '2026-12-07T10:11:12.500Z',
    );
    expect(timeOf(parseDer(element(0x17, '491231235959Z'))).getUTCFullYear()).toBe(2049);
    expect(timeOf(parseDer(element(0x17, '500101000000Z'))).getUTCFullYear()).toBe(1950);
    expect(() => timeOf(parseDer(element(0x18, '2026120710Z')))).toThrow(DerError);
  });

  test('refuses what is not DER: indefinite and overlong lengths, truncation, trailing bytes', () => {
    expect(() => parseDer(Buffer.from('3080', 'hex'))).toThrow(DerError);
    expect(() => parseDer(Buffer.from('3085ffffffffff', 'hex'))).toThrow(DerError);
    expect(() => parseDer(Buffer.from('300500', 'hex'))).toThrow(DerError);
    expect(() => parseDer(Buffer.from('30000000', 'hex'))).toThrow(DerError);
    expect(() => parseDer(Buffer.alloc(0))).toThrow(DerError);
  });

  test('a deeply nested input is read one level at a time, without recursion', () => {
    // 10000 nested SEQUENCEs: only the levels asked for are decoded.
    let inner = Buffer.from('0500', 'hex');
    for (let i = 0; i < 10000; i++) {
      const len = inner.length;
      const header =
        len < 0x80
          ? Buffer.from([0x30, len])
          : len < 0x100
            ? Buffer.from([0x30, 0x81, len])
            : len < 0x10000
              ? Buffer.from([0x30, 0x82, len >> 8, len & 0xff])
              : Buffer.from([0x30, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
      inner = Buffer.concat([header, inner]);
    }
    expect(sequence(parseDer(inner))).toHaveLength(1);
    // And as a stapled response it is simply not an OCSP response.
    expect(check(inner).failure).toBe('Failed to decode OCSP response');
  });
});
