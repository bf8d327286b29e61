/**
 * End-to-end lifecycle of a ClientQt against a Nest microservice on ServerQt in another
 * process, over TCP and over a local socket: connecting with no server (the Qt error, then
 * a retry on the next send), a graceful app.close() with a handler in flight (the server
 * drains: draining.spec.ts has the details with raw peers), and
 * reconnecting after the server process is killed (SIGKILL) and restarted on the same
 * port or name, or not restarted at all.
 */
import { existsSync } from 'node:fs';

import { filter, firstValueFrom, take, type Observable } from 'rxjs';

import { ClientQt, QtConnectionError } from '../../lib/index.js';

import {
  TRANSPORTS,
  frame,
  freePort,
  pollUntil,
  rawConnect,
  startServer,
  uniqueName,
  waitEvent,
  within,
  type RawPeer,
  type ServerApp,
} from './helpers.js';

/** Settles with the value or the error, never rejects. */
function outcome<T>(source: Observable<T>): Promise<{ value?: T; error?: unknown }> {
  return firstValueFrom(source).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

describe.each(TRANSPORTS)('e2e lifecycle over %s', (transport) => {
  const servers: ServerApp[] = [];
  const clients: ClientQt[] = [];
  const raws: RawPeer[] = [];
  /** A running server the shutdown test may take over from the connect test. */
  let spare: ServerApp | null = null;

  const start = async (spec: { port?: number; name?: string } = {}): Promise<ServerApp> => {
    const server = await startServer({ transport, ...spec });
    servers.push(server);
    return server;
  };
  const track = (client: ClientQt): ClientQt => {
    clients.push(client);
    return client;
  };
  const noServerError =
    transport === 'tcp'
      ? { qtError: 'ConnectionRefusedError', message: 'Connection refused' }
      : { qtError: 'ServerNotFoundError', message: 'QLocalSocket::connectToServer: Invalid name' };

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const r of raws.splice(0)) r.destroy();
  });

  afterAll(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });

  it('with no server, the first send fails with the Qt error; the next send tries again', async () => {
    const port = transport === 'tcp' ? await freePort() : 0;
    const name = transport === 'local' ? uniqueName('late') : '';
    const target =
      transport === 'tcp' ? { transport, host: '127.0.0.1', port } : { transport, name };
    const client = track(new ClientQt({ ...target, requestTimeout: 10000 }));

    // Every request waiting for the failed attempt fails with it.
    const first = await Promise.all([
      outcome(client.send('sum', [1, 2])),
      outcome(client.send('sum', [3, 4])),
    ]);
    for (const { error } of first) {
      expect(error).toBeInstanceOf(QtConnectionError);
      expect(error).toMatchObject(noServerError);
    }
    // The next send tries again (and fails again, nobody listens yet).
    expect((await outcome(client.send('sum', [1, 2]))).error).toMatchObject(noServerError);

    spare = await start({ port, name });
    expect(await firstValueFrom(client.send<number>('sum', [1, 2]))).toBe(3);
  });

  it('app.close() with a handler in flight: its reply still arrives, requests that cross the draining notice are served, nothing is accepted after, the socket file goes', async () => {
    const server = spare ?? (await start());
    spare = null;
    const client = track(
      new ClientQt({ ...server.target, reconnect: false, requestTimeout: 10000 }),
    );
    expect(await firstValueFrom(client.send('ping', {}))).toBe('pong');
    const peer = await rawConnect(server);
    raws.push(peer);

    const slow = outcome(client.send<string>('slow', 300));
    await waitEvent(server.run, 'slow-start');
    server.command('close');
    await waitEvent(server.run, 'closing');
    // Requests that arrive while the server drains are served: they may have crossed its
    // draining notice (docs/protocol.md, "Draining"). The raw peer's, which never answers
    // the notice, and the client's, unless the client read the notice before it sent the
    // request and had nowhere else to send it (then it fails with a connection error). The
    // refusal of a peer that does not answer in time is in draining.spec.ts.
    const during = outcome(client.send('ping', {}));
    peer.socket.write(frame({ id: 'late', pattern: 'ping', data: null }));

    const slowResult = await within(slow, 5000, 'the slow reply');
    const closed = await waitEvent(server.run, 'closed');
    const duringResult = await within(during, 5000, 'the request sent during close');
    if (duringResult.error === undefined) expect(duringResult.value).toBe('pong');
    else expect(duringResult.error).toBeInstanceOf(QtConnectionError);
    await within(peer.closed, 5000, 'the raw connection to be closed by the server');
    expect(peer.frames.map((f) => JSON.parse(f.toString('utf8')) as unknown)).toEqual([
      { draining: true },
      { id: 'late', response: 'pong', isDisposed: true },
    ]);

    if (transport === 'local') {
      expect(closed.socketFileExists).toBe(false);
      expect(existsSync(server.fullServerName)).toBe(false);
    }
    // The error reply above came before the server closed the client's connection: wait
    // until the client has seen the close, so its next request needs a new connection.
    await within(
      firstValueFrom(client.status.pipe(filter((s) => s === 'disconnected'))),
      5000,
      'the client to see its connection closed',
    );
    // A request after close fails with a connection error: nobody listens any more.
    const after = await outcome(client.send('ping', {}));
    expect(after.error).toBeInstanceOf(QtConnectionError);
    expect(after.error).toMatchObject(noServerError);

    server.command('stats');
    const stats = (await waitEvent(server.run, 'stats')) as { calls: Record<string, number> };
    expect(stats.calls.slow).toBe(1);
    // The ping before close(), the raw peer's, and the client's if it was sent.
    expect(stats.calls.ping).toBe(duringResult.error === undefined ? 3 : 2);
    // The reply of the handler that was running when close() began (checked last, so that
    // the checks above run either way).
    expect(slowResult).toEqual({ value: 'slow-done' });
  });

  it('after the server process is killed and restarted, the client reconnects by itself', async () => {
    const first = await start();
    const client = track(
      new ClientQt({
        ...first.target,
        requestTimeout: 20000,
        reconnect: { retries: 100, initialDelay: 50, maxDelay: 200 },
      }),
    );
    const statuses: string[] = [];
    client.status.subscribe((s) => statuses.push(s));
    expect(await firstValueFrom(client.send('ping', {}))).toBe('pong');

    // A stream open during the kill.
    const values: number[] = [];
    const stream = new Promise<{ error?: unknown; completed?: boolean }>((resolve) => {
      client.send<number>('ticker', uniqueName('killed')).subscribe({
        next: (v) => values.push(v),
        error: (error: unknown) => resolve({ error }),
        complete: () => resolve({ completed: true }),
      });
    });
    await pollUntil(
      async () => values.length,
      (n) => n >= 2,
      5000,
      'the stream to flow',
    );
    const statusesBeforeKill = statuses.length;

    await first.run.stop('SIGKILL');
    const streamEnd = await within(stream, 5000, 'the open stream to fail');
    expect(streamEnd.error).toBeInstanceOf(QtConnectionError);
    // A lost connection carries Qt's name for it: RemoteHostClosedError over TCP,
    // PeerClosedError over a local socket.
    expect(streamEnd.error).toMatchObject({
      code: transport === 'tcp' ? 'RemoteHostClosedError' : 'PeerClosedError',
    });
    await pollUntil(
      async () => statuses.at(-1),
      (s) => s === 'reconnecting',
      5000,
      'reconnecting',
    );

    // A request issued while the server is down waits for the reconnect.
    const waiting = outcome(client.send<number>('sum', [20, 22]));
    // Same port, or same name: the killed server's socket file is still there (stale).
    if (transport === 'local') expect(existsSync(first.fullServerName)).toBe(true);
    const second = await start({ port: first.port, name: first.name });

    expect(await within(waiting, 20000, 'the waiting request')).toEqual({ value: 42 });
    await pollUntil(
      async () => statuses.at(-1),
      (s) => s === 'connected',
      5000,
      'connected',
    );
    const afterKill = statuses.slice(statusesBeforeKill);
    expect(afterKill[0]).toBe('reconnecting');
    expect(afterKill.at(-1)).toBe('connected');
    expect(await firstValueFrom(client.send('ping', {}))).toBe('pong');
    spare = second;
  });

  it('when reconnect retries run out, pending requests fail and status ends disconnected', async () => {
    const server = spare ?? (await start());
    spare = null;
    const client = track(
      new ClientQt({
        ...server.target,
        requestTimeout: 10000,
        reconnect: { retries: 2, initialDelay: 50, maxDelay: 100 },
      }),
    );
    const statuses: string[] = [];
    client.status.subscribe((s) => statuses.push(s));
    expect(await firstValueFrom(client.send('ping', {}))).toBe('pong');

    const inFlight = outcome(client.send('never', uniqueName('in-flight')));
    // Issued the moment the client starts reconnecting: it waits for the attempts.
    const duringReconnect = firstValueFrom(
      client.status.pipe(
        filter((s) => s === 'reconnecting'),
        take(1),
      ),
    ).then(() => outcome(client.send('sum', [1, 2])));

    await server.run.stop('SIGKILL');
    const lost = await within(inFlight, 5000, 'the in-flight request to fail');
    expect(lost.error).toBeInstanceOf(QtConnectionError);
    const waited = await within(duringReconnect, 10000, 'the request issued while reconnecting');
    expect(waited.error).toBeInstanceOf(QtConnectionError);
    // The last reconnect attempt's Qt error: nobody accepts on the port, or on the stale
    // socket file the killed server left.
    expect(waited.error).toMatchObject({ code: 'ConnectionRefusedError' });
    await pollUntil(
      async () => statuses.at(-1),
      (s) => s === 'disconnected',
      5000,
      'disconnected',
    );
    expect(statuses).toContain('reconnecting');
    expect(statuses.at(-1)).toBe('disconnected');
  });
});
