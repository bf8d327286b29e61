/**
 * QSslSocket's PSK, OCSP stapling and session tickets on the port: the twins of the
 * scenarios in fidelity_ssl.py (same names, same calls in the same order, the same lines
 * logged). Where Qt's listen returns a bool, the port's returns a Promise, which is awaited.
 */
import {
  PeerVerifyMode,
  QOcspResponse,
  QSslCertificate,
  QSslCipher,
  QSslConfiguration,
  QSslPreSharedKeyAuthenticator,
  QSslSocket,
  QTcpServer,
  SocketState,
  SslOption,
  SslProtocol,
  type NativeSocketHandle,
} from '../../lib/qtnetwork/index.js';
import {
  settle,
  text,
  waitUntil,
  type EventLog,
  type Scenario,
  type ScenarioParams,
  type Scope,
} from './port-scenarios.js';

/** What the spec passes: the test PKI's files and the node:tls server of the case. */
export interface SslParams extends ScenarioParams {
  ca: string;
  otherCa: string;
  port: number;
}

const CIPHER = 'PSK-AES128-CBC-SHA256';
const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

const params = (p: ScenarioParams): SslParams => p as SslParams;

const cn = (cert: QSslCertificate): string => cert.subjectInfo('CN').join(',');
const js = (v: unknown): string => JSON.stringify(v);

/** Logs the signals of a QSslSocket that the twins compare (no byte counts). */
function recordSsl(sock: QSslSocket, add: (line: string) => void): void {
  sock.stateChanged.connect((s) => add(`stateChanged(${s})`));
  sock.connected.connect(() => add('connected'));
  sock.modeChanged.connect((m) => add(`modeChanged(${m})`));
  sock.encrypted.connect(() => add('encrypted'));
  sock.peerVerifyError.connect((e) =>
    add(`peerVerifyError(${e.error()}, ${js(cn(e.certificate()))})`),
  );
  sock.sslErrors.connect((errors) => add(`sslErrors(${js(errors.map((e) => e.error()))})`));
  sock.errorOccurred.connect((e) => add(`errorOccurred(${e}, ${js(sock.errorString())})`));
  sock.disconnected.connect(() => add('disconnected'));
}

function authenticatorFields(a: QSslPreSharedKeyAuthenticator): Record<string, unknown> {
  return {
    hint: text(a.identityHint()),
    identity: text(a.identity()),
    maxIdentity: a.maximumIdentityLength(),
    maxKey: a.maximumPreSharedKeyLength(),
    key: a.preSharedKey().length,
  };
}

function pskConfiguration(sock: QSslSocket): QSslConfiguration {
  const config = sock.sslConfiguration();
  config.setCiphers([new QSslCipher(CIPHER)]);
  config.setProtocol(SslProtocol.TlsV1_2);
  config.setPeerVerifyMode(PeerVerifyMode.VerifyNone);
  return config;
}

/** Makes a PSK-only QSslSocket of each connection and starts the server handshake. */
class PskServer extends QTcpServer {
  readonly sockets: QSslSocket[] = [];

  constructor(private readonly setup: (sock: QSslSocket) => void) {
    super();
  }

  protected override incomingConnection(handle: NativeSocketHandle): void {
    const sock = new QSslSocket();
    this.sockets.push(sock);
    this.setup(sock);
    sock.setSocketDescriptor(handle);
    sock.startServerEncryption();
  }
}

/** A PSK server and client of this side. */
async function pskPair(
  scope: Scope,
  log: EventLog,
  serverKey: Buffer | null,
  clientKey: Buffer | null,
  hint: string | null,
): Promise<{ serverEvents: string[]; client: QSslSocket; server: PskServer }> {
  const serverEvents: string[] = [];
  const addServer = (line: string): void => {
    serverEvents.push(`server: ${line}`);
  };
  const server = scope.keep(
    new PskServer((sock) => {
      recordSsl(sock, addServer);
      const config = pskConfiguration(sock);
      if (hint !== null) config.setPreSharedKeyIdentityHint(hint);
      sock.setSslConfiguration(config);
      sock.preSharedKeyAuthenticationRequired.connect((a) => {
        addServer(`psk(${js(authenticatorFields(a))})`);
        if (serverKey) a.setPreSharedKey(serverKey);
      });
    }),
  );
  log.value('listen', await server.listen('127.0.0.1', 0));
  const client = scope.keep(new QSslSocket());
  recordSsl(client, (line) => log.add(line));
  client.setSslConfiguration(pskConfiguration(client));
  client.preSharedKeyAuthenticationRequired.connect((a) => {
    log.add(`psk(${js(authenticatorFields(a))})`);
    a.setIdentity('client-1');
    if (clientKey) a.setPreSharedKey(clientKey);
  });
  client.connectToHostEncrypted('127.0.0.1', server.serverPort());
  return { serverEvents, client, server };
}

/** A client that asks for the stapled status, connected to the node:tls server of the case. */
async function ocspClient(
  scope: Scope,
  p: ScenarioParams,
  log: EventLog,
  options: { verify?: PeerVerifyMode; peerName?: string; ca?: 'ca' | 'otherCa' } = {},
): Promise<QSslSocket> {
  const { port } = params(p);
  const client = scope.keep(new QSslSocket());
  recordSsl(client, (line) => log.add(line));
  const config = client.sslConfiguration();
  config.setCaCertificates(QSslCertificate.fromPath(params(p)[options.ca ?? 'ca']));
  config.setOcspStaplingEnabled(true);
  if (options.verify !== undefined) config.setPeerVerifyMode(options.verify);
  client.setSslConfiguration(config);
  if (options.peerName) client.setPeerVerifyName(options.peerName);
  client.connectToHostEncrypted('localhost', port);
  await waitUntil(
    () => client.isEncrypted() || client.state() === SocketState.UnconnectedState,
    5000,
    'the handshake',
  );
  await settle();
  log.value(
    'responses',
    client
      .ocspResponses()
      .map((r) => [
        r.certificateStatus(),
        r.revocationReason(),
        cn(r.responder()),
        cn(r.subject()),
      ]),
  );
  log.value(
    'handshakeErrors',
    client.sslHandshakeErrors().map((e) => [e.error(), cn(e.certificate())]),
  );
  return client;
}

/** A client (keeping sessions unless told) that connects, echoes once and disconnects. */
async function keepingClient(
  scope: Scope,
  p: ScenarioParams,
  log: EventLog,
  name: string,
  keep = true,
  ticket?: Buffer,
): Promise<Buffer> {
  const client = scope.keep(new QSslSocket());
  const config = client.sslConfiguration();
  config.setCaCertificates(QSslCertificate.fromPath(params(p).ca));
  config.setSslOption(SslOption.SslOptionDisableSessionPersistence, !keep);
  if (ticket !== undefined) config.setSessionTicket(ticket);
  client.setSslConfiguration(config);
  const tickets: unknown[] = [];
  const view = (): [boolean, number] => {
    const c = client.sslConfiguration();
    return [c.sessionTicket().length > 0, c.sessionTicketLifeTimeHint()];
  };
  client.encrypted.connect(() => log.value(`${name}.atEncrypted`, view()));
  client.newSessionTicketReceived.connect(() => tickets.push(view()));
  client.connectToHostEncrypted('localhost', params(p).port);
  await waitUntil(() => client.isEncrypted(), 5000, 'encrypted');
  client.write('x');
  await waitUntil(() => client.bytesAvailable() > 0, 5000, 'the echo');
  await settle();
  log.value(`${name}.tickets`, tickets);
  client.disconnectFromHost();
  await waitUntil(() => client.state() === SocketState.UnconnectedState, 5000, 'closed');
  return client.sslConfiguration().sessionTicket();
}

const ocspCase: Scenario = async (scope, p, log) => {
  await ocspClient(scope, p, log);
};

export const SSL_SCENARIOS: Record<string, Scenario> = {
  // ---------------------------------------------------------------------- PSK

  async 'ssl.psk.handshake'(scope, _p, log) {
    const { serverEvents, client, server } = await pskPair(scope, log, KEY, KEY, 'hint-1');
    await waitUntil(() => client.isEncrypted(), 5000, 'encrypted');
    log.value('cipher', client.sessionCipher().name());
    log.value('protocol', client.sessionProtocol());
    log.value('peerCertificateIsNull', client.peerCertificate().isNull());
    client.write('over a shared key');
    await waitUntil(
      () => server.sockets.length === 1 && server.sockets[0].bytesAvailable() === 17,
      5000,
      'the data',
    );
    const peer = server.sockets[0];
    log.value('serverRead', text(peer.readAll()));
    log.value('serverCipher', peer.sessionCipher().name());
    for (const line of serverEvents) log.add(line);
  },

  async 'ssl.psk.serverSetsNoKey'(scope, _p, log) {
    const { serverEvents, client } = await pskPair(scope, log, null, KEY, null);
    await waitUntil(() => client.state() === SocketState.UnconnectedState, 5000, 'the failure');
    await waitUntil(
      () => serverEvents.some((e) => e.includes('disconnected')),
      5000,
      'the server side',
    );
    await settle();
    log.value('encrypted', client.isEncrypted());
    for (const line of serverEvents) log.add(line);
  },

  async 'ssl.psk.clientSetsNoKey'(scope, _p, log) {
    const { serverEvents, client } = await pskPair(scope, log, KEY, null, null);
    await waitUntil(() => client.state() === SocketState.UnconnectedState, 5000, 'the failure');
    await settle();
    log.value('encrypted', client.isEncrypted());
    log.value(
      'serverAsked',
      serverEvents.length > 0 && serverEvents.some((e) => e.includes('psk(')),
    );
  },

  async 'ssl.psk.authenticator'(_scope, _p, log) {
    const a = new QSslPreSharedKeyAuthenticator();
    log.value('empty', authenticatorFields(a));
    a.setIdentity('alice');
    a.setPreSharedKey('k'.repeat(1000));
    log.value('set', authenticatorFields(a));
    const b = new QSslPreSharedKeyAuthenticator(a);
    log.value('copyEqual', b.isEqual(a));
    b.setIdentity('bob');
    log.value('afterChange', [text(a.identity()), text(b.identity()), b.isEqual(a)]);
    a.swap(b);
    log.value('swapped', [text(a.identity()), text(b.identity())]);
  },

  // ---------------------------------------------------------------------- OCSP

  'ssl.ocsp.good': ocspCase,
  'ssl.ocsp.revoked': ocspCase,
  'ssl.ocsp.unknown': ocspCase,
  'ssl.ocsp.none': ocspCase,
  'ssl.ocsp.tryLater': ocspCase,
  'ssl.ocsp.garbage': ocspCase,
  'ssl.ocsp.strangerSigned': ocspCase,
  'ssl.ocsp.delegated': ocspCase,

  async 'ssl.ocsp.order'(scope, p, log) {
    await ocspClient(scope, p, log, { peerName: 'other.example', ca: 'otherCa' });
  },

  async 'ssl.ocsp.verifyNone'(scope, p, log) {
    await ocspClient(scope, p, log, { verify: PeerVerifyMode.VerifyNone });
  },

  async 'ssl.ocsp.responseValue'(_scope, _p, log) {
    const r = new QOcspResponse();
    log.value('default', [
      r.certificateStatus(),
      r.revocationReason(),
      r.responder().isNull(),
      r.subject().isNull(),
    ]);
    log.value('equal', r.isEqual(new QOcspResponse(r)));
  },

  // ---------------------------------------------------------------------- sessions

  async 'ssl.session.resume'(scope, p, log) {
    const ticket = await keepingClient(scope, p, log, 'first');
    await keepingClient(scope, p, log, 'second', true, ticket);
  },

  async 'ssl.session.notKept'(scope, p, log) {
    const ticket = await keepingClient(scope, p, log, 'keeping');
    await keepingClient(scope, p, log, 'default', false);
    await keepingClient(scope, p, log, 'ticketUnused', false, ticket);
  },

  async 'ssl.configuration.fields'(_scope, _p, log) {
    for (const [name, c] of [
      ['null', new QSslConfiguration()],
      ['default', QSslConfiguration.defaultConfiguration()],
    ] as const) {
      log.value(name, [
        text(c.preSharedKeyIdentityHint()),
        c.ocspStaplingEnabled(),
        text(c.sessionTicket()),
        c.sessionTicketLifeTimeHint(),
      ]);
    }
    const c = new QSslConfiguration();
    c.setPreSharedKeyIdentityHint('hint');
    c.setOcspStaplingEnabled(true);
    c.setSessionTicket(Buffer.from('ticket'));
    const copy = new QSslConfiguration(c);
    log.value('copy', [
      text(copy.preSharedKeyIdentityHint()),
      copy.ocspStaplingEnabled(),
      text(copy.sessionTicket()),
      copy.sessionTicketLifeTimeHint(),
    ]);
  },
};
