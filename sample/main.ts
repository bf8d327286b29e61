/**
 * The sample: for now it shows the Qt TCP core on its own, the way a Qt programmer would
 * use QTcpServer and QTcpSocket, on loopback. The Nest services join it as the transport
 * lands (see the README's status table).
 */
import { QTcpServer, QTcpSocket, SocketState, SpecialAddress } from '../lib/qtnetwork/index.js';

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<number> {
  const server = new QTcpServer();
  if (!(await server.listen(SpecialAddress.LocalHost, 0))) {
    log(`server: listen failed: ${server.errorString()}`);
    return 1;
  }
  log(`server: listening on ${server.serverAddress().toString()}:${server.serverPort()}`);

  // Server side: every line a client sends comes back upper-cased.
  server.newConnection.connect(() => {
    for (let peer = server.nextPendingConnection(); peer; peer = server.nextPendingConnection()) {
      const socket = peer;
      log(`server: connection from ${socket.peerAddress().toString()}:${socket.peerPort()}`);
      socket.readyRead.connect(() => {
        while (socket.canReadLine()) {
          const line = socket.readLine().toString('utf8');
          socket.write(line.toUpperCase());
        }
      });
      socket.disconnected.connect(() => log('server: client disconnected'));
    }
  });

  const client = new QTcpSocket();
  client.stateChanged.connect((state) => log(`client: state ${SocketState[state]}`));
  client.connectToHost('127.0.0.1', server.serverPort());
  if (!(await client.waitForConnected(5000))) {
    log(`client: connect failed: ${client.errorString()}`);
    return 1;
  }

  const questions = ['hello from a QTcpSocket', 'lines are framed by newline here'];
  for (const question of questions) {
    const started = process.hrtime.bigint();
    client.write(`${question}\n`);
    while (!client.canReadLine()) {
      if (!(await client.waitForReadyRead(5000))) {
        log(`client: no answer: ${client.errorString()}`);
        return 1;
      }
    }
    const answer = client.readLine().toString('utf8').trimEnd();
    const micros = Number(process.hrtime.bigint() - started) / 1000;
    log(`client: sent "${question}" -> got "${answer}" in ${micros.toFixed(0)} µs`);
  }

  client.disconnectFromHost();
  if (client.state() !== SocketState.UnconnectedState) await client.waitForDisconnected(5000);
  server.close();
  log('done: the Qt TCP core served every request and shut down cleanly');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`sample failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
