/**
 * QSslSocket's PSK, OCSP stapling and session tickets, differential: each scenario of
 * fidelity_ssl.py runs on real Qt 5.15 (PyQt5, in a child process) and its twin in
 * port-fidelity-ssl.ts on the port, and the two event lists must be equal (see
 * differential.spec.ts for the method). What they prove: a PSK handshake between a client and
 * a server of the same side, with the authenticators each slot gets and the failures when a
 * side sets no key; the check of a stapled OCSP response (good, revoked, unknown, missing,
 * unsigned, unreadable, signed by a stranger or a delegated responder; the order of the
 * errors with chain and host name errors; not checked in VerifyNone); saved sessions kept,
 * announced and resumed, or not kept; the value classes and the configuration's new fields.
 *
 * The peers are node:tls servers started here, on the test PKI (test/helpers/qssl-pki.ts)
 * with responses made by `openssl ocsp` (test/helpers/qssl-ocsp.ts): a fresh one for each
 * side, stapling the case's response, or recording whether each connection resumed a
 * session (its view is appended to both lists).
 *
 * Skips (with a printed reason) when /usr/bin/python3 (or $QT_DIFF_PYTHON) cannot import
 * PyQt5.
 */
import { readFileSync } from 'node:fs';
import type * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';

import { jest } from '@jest/globals';

import { ocspMaterial, type OcspMaterial } from '../helpers/qssl-ocsp.js';
import { removeSslPki, sslPki } from '../helpers/qssl-pki.js';
import { pyqt5MissingReason, type RecordingPeer } from './peers.js';
import { SSL_SCENARIOS, type SslParams } from './port-fidelity-ssl.js';
import { makeRunner, type Case, type Setup } from './runner.js';

jest.setTimeout(60000);

const PYTHON = process.env.QT_DIFF_PYTHON ?? '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const DRIVER = path.join(here, 'fidelity_ssl.py');
const PREFIX = 'fidelity-ssl:';

const pyqtMissing = pyqt5MissingReason(PYTHON);
if (pyqtMissing) console.log(`${PREFIX} every scenario skipped: ${pyqtMissing}`);

const { check, listQt } = makeRunner({ python: PYTHON, driver: DRIVER, table: SSL_SCENARIOS });

const pki = sslPki();
const ocsp = ocspMaterial(pki);
afterAll(() => removeSslPki());

/** A node:tls echo server with the PKI's server certificate (sent with its CA). */
async function tlsPeer(
  response: Buffer | null,
): Promise<{ port: number; reused: boolean[]; close: () => void }> {
  const reused: boolean[] = [];
  const connections = new Set<net.Socket>();
  const server = tls.createServer(
    { cert: readFileSync(ocsp.serverChain), key: readFileSync(pki.serverKey) },
    (socket) => {
      reused.push(socket.isSessionReused());
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => socket.write(d));
    },
  );
  server.on('OCSPRequest', (_c, _i, done: (err: Error | null, r: Buffer | null) => void) =>
    done(null, response),
  );
  server.on('connection', (c: net.Socket) => {
    connections.add(c);
    c.on('close', () => connections.delete(c));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    reused,
    close: () => {
      for (const c of connections) c.destroy();
      server.close();
    },
  };
}

function baseParams(port = 0): SslParams {
  return { ca: pki.caCert, otherCa: pki.otherCaCert, port };
}

const noPeer = (): Setup => ({ params: baseParams() });

/** A server stapling `pick(ocsp)` (null: none). */
function stapling(pick: (m: OcspMaterial) => Buffer | null): () => Promise<Setup> {
  return async () => {
    const peer = await tlsPeer(pick(ocsp));
    return { params: baseParams(peer.port), cleanup: peer.close };
  };
}

/** A server whose view (did each connection resume?) is appended to the events. */
async function resuming(): Promise<Setup> {
  const peer = await tlsPeer(null);
  const recording: RecordingPeer = {
    port: peer.port,
    path: '',
    reset: () => {
      peer.reused.length = 0;
    },
    report: () => Promise.resolve(peer.reused.map((r) => `peer: resumed=${r}`)),
    close: () => Promise.resolve(peer.close()),
  };
  return { params: baseParams(peer.port), peer: recording, cleanup: peer.close };
}

/**
 * docs/qt-differences.md, "QSslSocket and QSslServer" (failed handshakes on a server): when
 * OpenSSL fails a server's handshake, Qt closes the connection without sending the alert
 * OpenSSL wrote, so its client sees the remote host close; Node sends the alert, so the
 * port's client reports it. Qt's client line becomes what the alert gives.
 */
function serverAlertSent(qt: string[]): string[] {
  const closed = qt.indexOf('errorOccurred(1, "The remote host closed the connection")');
  if (closed < 0 || qt[closed + 1] !== 'stateChanged(6)') return qt;
  return [
    ...qt.slice(0, closed),
    'errorOccurred(13, "Error during SSL handshake: error:0A00045B:SSL routines::tlsv1 alert unknown psk identity")',
    ...qt.slice(closed + 2),
  ];
}

const CASES: Case[] = [
  {
    scenario: 'ssl.psk.handshake',
    title:
      "a PSK handshake (TLS 1.2): the client's slot gets the hint and 255/512, the server's the identity and 0/512; the PSK suite",
    setup: noPeer,
  },
  {
    scenario: 'ssl.psk.serverSetsNoKey',
    title: "a server slot that sets no key: both sides' handshakes fail, with the same errors",
    setup: noPeer,
    normalise: serverAlertSent,
  },
  {
    scenario: 'ssl.psk.clientSetsNoKey',
    title: 'a client slot that sets no key fails its handshake before the server is asked',
    setup: noPeer,
  },
  {
    scenario: 'ssl.psk.authenticator',
    title: 'QSslPreSharedKeyAuthenticator: empty values, setters, copies, equality, swap',
    setup: noPeer,
  },
  {
    scenario: 'ssl.ocsp.good',
    title: 'a good stapled status: encrypted, one response (Good, no reason, the CA, the server)',
    setup: stapling((m) => m.good),
  },
  {
    scenario: 'ssl.ocsp.revoked',
    title: 'a revoked status: CertificateRevoked with the server certificate; the handshake fails',
    setup: stapling((m) => m.revoked),
  },
  {
    scenario: 'ssl.ocsp.unknown',
    title: 'an unknown status: OcspStatusUnknown',
    setup: stapling((m) => m.unknown),
  },
  {
    scenario: 'ssl.ocsp.none',
    title: 'no stapled response: OcspNoResponseFound, no response listed',
    setup: stapling(() => null),
  },
  {
    scenario: 'ssl.ocsp.tryLater',
    title: 'an unsigned tryLater answer: OcspTryLater',
    setup: stapling((m) => m.tryLater),
  },
  {
    scenario: 'ssl.ocsp.garbage',
    title: 'bytes that are no OCSP response: the handshake fails at once, no verification error',
    setup: stapling((m) => m.garbage),
  },
  {
    scenario: 'ssl.ocsp.strangerSigned',
    title: 'a response signed by an untrusted CA: OcspResponseCannotBeTrusted, status still read',
    setup: stapling((m) => m.strangerSigned),
  },
  {
    scenario: 'ssl.ocsp.delegated',
    title: 'a response signed by a responder the CA delegated (OCSPSigning): trusted',
    setup: stapling((m) => m.delegated),
  },
  {
    scenario: 'ssl.ocsp.order',
    title:
      'untrusted CA, revoked, another name: chain errors, then the status errors, then the name; the list starts with the status errors',
    setup: stapling((m) => m.revoked),
  },
  {
    scenario: 'ssl.ocsp.verifyNone',
    title: 'VerifyNone: the status is asked for but not checked; no response listed',
    setup: stapling((m) => m.revoked),
  },
  {
    scenario: 'ssl.ocsp.responseValue',
    title: 'QOcspResponse: Unknown, reason None, null certificates; copies are equal',
    setup: noPeer,
  },
  {
    scenario: 'ssl.session.resume',
    title:
      'a client keeping sessions: kept at encrypted (TLS 1.3, hint 0), two tickets announced (7200); the ticket resumes the next connection',
    setup: resuming,
  },
  {
    scenario: 'ssl.session.notKept',
    title:
      'with SslOptionDisableSessionPersistence: nothing kept or announced, a ticket set is not offered',
    setup: resuming,
  },
  {
    scenario: 'ssl.configuration.fields',
    title:
      "QSslConfiguration's PSK hint, OCSP stapling, session ticket and its hint: defaults and copies",
    setup: noPeer,
  },
];

const describeQt = pyqtMissing ? describe.skip : describe;

describeQt(
  'QSslSocket PSK, OCSP and sessions: Qt 5.15 (PyQt5) and the port, scenario by scenario',
  () => {
    it('the Qt driver and the port know the same scenarios', async () => {
      const listed = await listQt();
      expect(Object.keys(SSL_SCENARIOS).sort()).toEqual(listed);
      expect(CASES.map((c) => c.scenario).sort()).toEqual(listed);
    });

    describe.each(CASES.map((c) => [c.scenario, c] as const))('%s', (_name, c) => {
      it(c.title, () => check(c));
    });
  },
);

if (pyqtMissing) {
  it('ssl fidelity scenarios are skipped: real Qt is not available', () => {
    console.log(`${PREFIX} ${pyqtMissing}`);
    expect(pyqtMissing).not.toBeNull();
  });
}
