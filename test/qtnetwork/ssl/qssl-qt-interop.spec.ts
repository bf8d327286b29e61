/**
 * QSslSocket and QSslServer against real Qt 5.15 (PyQt5, run with Debian's
 * /usr/bin/python3; test/fixtures/qssl_peer.py):
 *
 * - the same bad server certificates make a Qt client and the port's client emit the
 *   same signals, with the same verification errors in the same order and Qt's texts;
 * - a Qt client with a client certificate talks to the port's QSslServer under mutual TLS;
 * - the port's client talks to a Qt server that requires a client certificate, and is
 *   refused by it without one.
 *
 * Skipped, with the reason printed, when PyQt5 is not installed.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { jest } from '@jest/globals';

import { PeerVerifyMode, SocketState } from '../../../lib/qtnetwork/index.js';
import { fixturesDir, startChild, type ChildRun } from '../../helpers/child-process.js';
import {
  nextConnection,
  readBytes,
  recordSsl,
  sslClient,
  startSslServer,
  type SslSetup,
} from '../../helpers/qssl-helpers.js';
import { removeSslPki, sslPki } from '../../helpers/qssl-pki.js';
import { Resources } from '../../helpers/resources.js';
import { waitUntil } from '../../helpers/signals.js';

jest.setTimeout(30000);

const PYTHON = '/usr/bin/python3';
const PEER = path.join(fixturesDir, 'qssl_peer.py');
const probe = spawnSync(
  PYTHON,
  ['-c', 'from PyQt5.QtNetwork import QSslSocket; assert QSslSocket.supportsSsl()'],
  {
    encoding: 'utf8',
    timeout: 20000,
  },
);
const missing = probe.error
  ? probe.error.message
  : probe.status !== 0
    ? (probe.stderr || `exit ${probe.status}`).trim().split('\n').pop()
    : null;
if (missing)
  console.log(`QSslSocket interop with real Qt skipped: PyQt5 with SSL for ${PYTHON}: ${missing}`);
const maybe = missing ? describe.skip : describe;

const pki = sslPki();
afterAll(() => removeSslPki());
const res = new Resources();
afterEach(() => res.dispose());

function python(args: string[]): ChildRun {
  const child = startChild(PYTHON, ['-B', PEER, ...args]);
  res.add(() => child.stop());
  return child;
}

/** Lines a Qt client printed until END. */
async function qtClientLog(args: string[]): Promise<string[]> {
  const child = python(['client', ...args]);
  const lines: string[] = [];
  for (;;) {
    const line = await child.nextLine(15000);
    if (line === 'END') return lines;
    lines.push(line);
  }
}

/** The signals of the port's client, connecting as the Qt client does. */
async function portClientLog(
  port: number,
  ca: string | null,
  peerName: string | null,
): Promise<string[]> {
  const client = sslClient(res, ca ? { ca: [ca] } : {});
  const log = recordSsl(client);
  client.encrypted.connect(() => client.write('hello from the port\n'));
  if (peerName) client.connectToHostEncrypted('localhost', port, peerName);
  else client.connectToHostEncrypted('localhost', port);
  await client.waitForEncrypted(10000);
  await waitUntil(
    () => client.state() === SocketState.UnconnectedState || client.isEncrypted(),
    10000,
  );
  return [...log];
}

/** The signals that both sides report up to encryption or refusal. */
function verificationPart(log: string[]): string[] {
  const out: string[] = [];
  for (const l of log) {
    if (
      /^(stateChanged|modeChanged|connected|encrypted|peerVerifyError|sslErrors|error|disconnected)/.test(
        l,
      )
    )
      out.push(l);
    if (l === 'encrypted') break;
  }
  return out;
}

maybe('the port and Qt 5.15 verify a server alike', () => {
  const cases: Array<[string, SslSetup, string | null, string | null]> = [
    ['a trusted certificate', { cert: pki.serverCert, key: pki.serverKey }, pki.caCert, null],
    ['an expired certificate', { cert: pki.expiredCert, key: pki.serverKey }, pki.caCert, null],
    [
      'a certificate for another host',
      { cert: pki.wrongHostCert, key: pki.wrongHostKey },
      pki.caCert,
      null,
    ],
    [
      'the right peer name for it',
      { cert: pki.wrongHostCert, key: pki.wrongHostKey },
      pki.caCert,
      'wrong.example',
    ],
    ['a self-signed certificate', { cert: pki.selfSignedCert, key: pki.selfSignedKey }, null, null],
    [
      'an unknown CA, certificate alone',
      { cert: pki.serverCert, key: pki.serverKey },
      pki.otherCaCert,
      null,
    ],
    [
      'an unknown root sent in the chain',
      { cert: pki.serverCert, key: pki.serverKey, ca: [pki.caCert] },
      pki.otherCaCert,
      null,
    ],
    [
      'another host and an unknown CA',
      { cert: pki.wrongHostCert, key: pki.wrongHostKey },
      pki.otherCaCert,
      null,
    ],
  ];
  test.each(cases)('%s', async (_name, setup, ca, peerName) => {
    const server = await startSslServer(res, setup);
    server.newConnection.connect(() => {
      const s = server.nextPendingConnection();
      if (!s) return;
      res.socket(s);
      s.readyRead.connect(() => {
        if (s.canReadLine()) s.write(s.readAll());
      });
    });
    const qt = verificationPart(
      await qtClientLog(['localhost', String(server.serverPort()), ca ?? '-', peerName ?? '-']),
    );
    const port = verificationPart(await portClientLog(server.serverPort(), ca, peerName));
    expect(qt).toContain('connected');
    expect(qt.some((l) => l === 'encrypted' || l.startsWith('error(13:'))).toBe(true);
    expect(port).toEqual(qt);
  });
});

maybe('mutual TLS with real Qt', () => {
  test("a Qt client with a certificate is served by the port's QSslServer", async () => {
    const server = await startSslServer(res, {
      cert: pki.serverCert,
      key: pki.serverKey,
      ca: [pki.caCert],
      verify: PeerVerifyMode.VerifyPeer,
    });
    const child = python([
      'client',
      'localhost',
      String(server.serverPort()),
      pki.caCert,
      '-',
      pki.clientCert,
      pki.clientKey,
    ]);
    const peer = await nextConnection(res, server, 15000);
    expect(peer.peerCertificate().subjectInfo('CN')).toEqual(['test client']);
    expect((await readBytes(peer, 14)).toString()).toBe('hello from qt\n');
    peer.write('hello from the port\n');
    const lines: string[] = [];
    for (let l = await child.nextLine(); l !== 'END'; l = await child.nextLine()) lines.push(l);
    expect(lines).toContain('encrypted');
    expect(lines).toContain('peerCN localhost');
    expect(lines).toContain('read hello from the port');
  });

  test("the port's client is served by a Qt server that requires a certificate, and refused without one", async () => {
    const child = python([
      'server',
      pki.serverCert,
      pki.serverKey,
      pki.caCert,
      String(PeerVerifyMode.VerifyPeer),
    ]);
    const port = Number((await child.nextLine(15000)).replace('PORT ', ''));

    const good = sslClient(res, { ca: [pki.caCert], cert: pki.clientCert, key: pki.clientKey });
    good.connectToHostEncrypted('localhost', port);
    expect(await good.waitForEncrypted(10000)).toBe(true);
    good.write('echo me');
    expect((await readBytes(good, 7)).toString()).toBe('echo me');
    const serverLines: string[] = [];
    while (!serverLines.includes('0 peerCN test client')) serverLines.push(await child.nextLine());
    expect(serverLines).toContain('0 encrypted');

    const anonymous = sslClient(res, { ca: [pki.caCert] });
    const log = recordSsl(anonymous);
    anonymous.connectToHostEncrypted('localhost', port);
    await waitUntil(() => anonymous.state() === SocketState.UnconnectedState, 10000);
    const refusal: string[] = [];
    while (!refusal.includes('1 disconnected')) refusal.push(await child.nextLine());
    // Qt refuses with the same error the port's QSslServer reports.
    expect(refusal).toContain('1 sslErrors([21])');
    expect(refusal).toContain('1 error(13:The peer did not present any certificate)');
    expect(log).toContain('error(1:The remote host closed the connection)');
  });
});
