// Load behaviour of QTcpServer on real loopback connections: many clients at once, and the
// pending-connection limit (maxPendingConnections) with the bounded waiting queue behind it
// (listenBacklogSize), as docs/DESIGN.md describes for the port: at most
// maxPendingConnections connections are handed out before nextPendingConnection(); the
// next ones wait un-read, in arrival order, at most listenBacklogSize of them; connections
// beyond that are closed by the server.
import {
  QTcpServer,
  QTcpSocket,
  SocketError,
  SocketState,
  SpecialAddress,
} from '../../../lib/qtnetwork/index.js';
import { countEmissions, readLineFrom, Scope } from '../../helpers/qt-scope.js';
import { sleep, waitUntil } from '../../helpers/signals.js';

let scope: Scope;
beforeEach(() => {
  scope = new Scope();
});
afterEach(() => {
  scope.dispose();
});

/** Collects everything a socket receives. */
function collect(socket: QTcpSocket): { text: () => string } {
  const chunks: Buffer[] = [];
  socket.readyRead.connect(() => chunks.push(socket.readAll()));
  return { text: () => Buffer.concat(chunks).toString('utf8') };
}

/**
 * Watches a server's hand-outs: every newConnection and every nextPendingConnection made
 * through `take()` updates the count of connections handed out but not taken, and records
 * the largest it ever was and whether hasPendingConnections() agreed with it.
 */
function watchHandOuts(server: QTcpServer) {
  let emitted = 0;
  let taken = 0;
  let maxOutstanding = 0;
  const disagreements: string[] = [];
  const check = (when: string): void => {
    const outstanding = emitted - taken;
    maxOutstanding = Math.max(maxOutstanding, outstanding);
    if (server.hasPendingConnections() !== outstanding > 0) {
      disagreements.push(
        `${when}: outstanding ${outstanding}, hasPendingConnections ${server.hasPendingConnections()}`,
      );
    }
  };
  server.newConnection.connect(() => {
    emitted++;
    check(`newConnection #${emitted}`);
  });
  return {
    emitted: () => emitted,
    taken: () => taken,
    maxOutstanding: () => maxOutstanding,
    disagreements,
    take(): QTcpSocket | null {
      const s = scope.take(server);
      if (s) {
        taken++;
        check(`take #${taken}`);
      }
      return s;
    },
  };
}

/**
 * Connects `n` clients strictly one after another: each is connected before the next
 * starts. `prepare` runs before each connects, `onConnected` once it is connected.
 */
async function connectInOrder(
  port: number,
  n: number,
  prepare: (c: QTcpSocket, i: number) => void,
  onConnected: (c: QTcpSocket, i: number) => void,
): Promise<QTcpSocket[]> {
  const clients: QTcpSocket[] = [];
  for (let i = 0; i < n; i++) {
    const c = scope.socket();
    prepare(c, i);
    c.connectToHost('127.0.0.1', port);
    clients.push(c);
    if (!(await c.waitForConnected(5000)))
      throw new Error(`client ${i} did not connect: ${c.errorString()}`);
    onConnected(c, i);
  }
  return clients;
}

describe('QTcpServer under load', () => {
  it('200 clients against one server: each sends a distinct message and gets exactly its own message echoed back; all close cleanly', async () => {
    const N = 200;
    const server = scope.server();
    const serverSockets: QTcpSocket[] = [];
    // Take connections as they come, and echo whatever each one sends.
    server.newConnection.connect(() => {
      for (let s = scope.take(server); s; s = scope.take(server)) {
        const socket = s;
        serverSockets.push(socket);
        socket.readyRead.connect(() => socket.write(socket.readAll()));
      }
    });
    expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);

    const messages = Array.from(
      { length: N },
      (_, i) => `client ${i}: ${'abcdefghij'.repeat(1 + (i % 50))}\n`,
    );
    const clients = messages.map((message) => {
      const c = scope.socket();
      c.connected.connect(() => c.write(message));
      c.connectToHost('127.0.0.1', server.serverPort());
      return c;
    });
    const received = clients.map(collect);

    await waitUntil(
      () => received.every((r, i) => r.text().length >= messages[i].length),
      15000,
      'every echo',
    );
    for (let i = 0; i < N; i++) {
      if (received[i].text() !== messages[i]) {
        throw new Error(
          `client ${i} got ${JSON.stringify(received[i].text().slice(0, 40))}…, expected its own message`,
        );
      }
    }
    expect(serverSockets.length).toBe(N);
    expect(server.hasPendingConnections()).toBe(false);

    for (const c of clients) c.disconnectFromHost();
    await waitUntil(
      () =>
        clients.every((c) => c.state() === SocketState.UnconnectedState) &&
        serverSockets.every((s) => s.state() === SocketState.UnconnectedState),
      10000,
      'every connection to close on both ends',
    );
    expect(server.isListening()).toBe(true);
  }, 30000);

  it('the pending-connection limit with 100 clients and a limit of 5: never more than 5 handed out; the rest wait un-read, and are served one by one in the order they connected', async () => {
    const N = 100;
    const LIMIT = 5;
    const server = scope.server();
    server.setMaxPendingConnections(LIMIT);
    // Room in the waiting queue for all the others, so that none is refused here.
    server.setListenBacklogSize(N);
    const handOuts = watchHandOuts(server);
    expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);

    const answers: Array<{ text: () => string }> = [];
    const clients = await connectInOrder(
      server.serverPort(),
      N,
      (c) => answers.push(collect(c)),
      (c, i) => c.write(`${i}\n`),
    );

    // Nobody takes connections yet: exactly LIMIT are handed out, the rest wait.
    await waitUntil(() => handOuts.emitted() >= LIMIT, 5000, `${LIMIT} newConnection emissions`);
    await sleep(300);
    expect(handOuts.emitted()).toBe(LIMIT);
    expect(server.hasPendingConnections()).toBe(true);
    // The waiting ones are connected (as far as the client can tell) and unanswered.
    for (const c of clients) expect(c.state()).toBe(SocketState.ConnectedState);
    expect(answers.every((a) => a.text() === '')).toBe(true);

    // Take them slowly, one per event-loop turn, and answer each.
    const order: number[] = [];
    for (let round = 0; order.length < N && round < 100000; round++) {
      await new Promise((resolve) => setImmediate(resolve));
      if (!server.hasPendingConnections()) continue;
      const s = handOuts.take()!;
      const index = Number((await readLineFrom(s)).trim());
      order.push(index);
      s.write(`ack ${index}\n`);
      expect(handOuts.maxOutstanding()).toBeLessThanOrEqual(LIMIT);
    }
    expect(order).toEqual(Array.from({ length: N }, (_, i) => i));

    await waitUntil(() => answers.every((a) => a.text().endsWith('\n')), 10000, 'every answer');
    answers.forEach((a, i) => expect(a.text()).toBe(`ack ${i}\n`));
    expect(handOuts.emitted()).toBe(N);
    expect(handOuts.taken()).toBe(N);
    expect(handOuts.maxOutstanding()).toBe(LIMIT);
    expect(handOuts.disagreements).toEqual([]);
    expect(server.hasPendingConnections()).toBe(false);
  }, 30000);

  it('listenBacklogSize bounds the waiting queue: with 1 pending and a backlog of 3, of 10 clients 1 is handed out, 3 wait, the other 6 are closed by the server; only those 4 are ever served', async () => {
    const N = 10;
    const server = scope.server();
    server.setMaxPendingConnections(1);
    server.setListenBacklogSize(3);
    expect(server.listenBacklogSize()).toBe(3);
    const handOuts = watchHandOuts(server);
    expect(await server.listen(SpecialAddress.LocalHost)).toBe(true);

    const answers: Array<{ text: () => string }> = [];
    const disconnects: Array<{ count: () => number }> = [];
    const clients = await connectInOrder(
      server.serverPort(),
      N,
      (c) => {
        answers.push(collect(c));
        disconnects.push(countEmissions(c.disconnected));
      },
      (c, i) => c.write(`${i}\n`),
    );

    // Connections beyond 1 + 3 are closed by the server.
    const refused = clients.slice(4);
    await waitUntil(
      () => refused.every((c) => c.state() === SocketState.UnconnectedState),
      5000,
      'clients 4..9 to be closed by the server',
    );
    for (const c of refused) {
      expect(c.error()).toBe(SocketError.RemoteHostClosedError);
      expect(c.errorString()).toBe('The remote host closed the connection');
    }
    // The first four stay connected: one handed out, three waiting.
    await sleep(200);
    for (const c of clients.slice(0, 4)) expect(c.state()).toBe(SocketState.ConnectedState);
    expect(handOuts.emitted()).toBe(1);
    expect(server.hasPendingConnections()).toBe(true);
    expect(disconnects.slice(4).map((d) => d.count())).toEqual(Array(6).fill(1));

    // Serve one at a time: exactly the four that were kept, in order.
    const order: number[] = [];
    for (let round = 0; order.length < 4 && round < 100000; round++) {
      await new Promise((resolve) => setImmediate(resolve));
      if (!server.hasPendingConnections()) continue;
      const s = handOuts.take()!;
      const index = Number((await readLineFrom(s)).trim());
      order.push(index);
      s.write(`ack ${index}\n`);
      expect(handOuts.maxOutstanding()).toBeLessThanOrEqual(1);
    }
    expect(order).toEqual([0, 1, 2, 3]);
    await waitUntil(
      () => answers.slice(0, 4).every((a) => a.text().endsWith('\n')),
      5000,
      'answers',
    );
    answers.slice(0, 4).forEach((a, i) => expect(a.text()).toBe(`ack ${i}\n`));

    // Nothing more is handed out: the refused ones are gone for good.
    expect(await server.waitForNewConnection(300)).toEqual([false, true]);
    expect(handOuts.emitted()).toBe(4);
    expect(server.hasPendingConnections()).toBe(false);
    expect(answers.slice(4).every((a) => a.text() === '')).toBe(true);
    expect(handOuts.disagreements).toEqual([]);
  }, 30000);
});
