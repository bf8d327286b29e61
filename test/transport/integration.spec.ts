// ServerQt and ClientQt features that need no second process: Nest's processing hooks and
// packet metadata, the client's proxy, socket options and read buffer reaching the Qt
// socket, `status`, `on` and `unwrap`.
import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom, take, toArray } from 'rxjs';

import {
  ClientQt,
  QT_TRANSPORT,
  QtContext,
  QTcpSocket,
  ServerQt,
  SocketOption,
  type QtStreamSocket,
} from '../../lib/index.js';
import { startNpmProxy, type NpmProxy } from '../helpers/proxy-servers.js';

const seenMetadata: unknown[] = [];

@Controller()
class EchoController {
  @MessagePattern('echo')
  echo(@Payload() data: unknown): unknown {
    return data;
  }

  @MessagePattern('meta')
  meta(@Ctx() ctx: QtContext): unknown {
    seenMetadata.push(ctx.getMetadata());
    return ctx.getMetadata() ?? null;
  }
}

@Module({ controllers: [EchoController] })
class EchoModule {}

interface Running {
  app: INestMicroservice;
  server: ServerQt;
  port: number;
}

async function startServer(): Promise<Running> {
  const server = new ServerQt({ transport: 'tcp', port: 0 });
  const app = await NestFactory.createMicroservice(EchoModule, { strategy: server, logger: false });
  await app.listen();
  const port = (server.unwrap() as { serverPort(): number }).serverPort();
  return { app, server, port };
}

describe('ServerQt and ClientQt integration', () => {
  let running: Running;
  const clients: ClientQt[] = [];

  beforeAll(async () => {
    running = await startServer();
  });

  afterAll(async () => {
    for (const c of clients) await c.close();
    await running.app.close();
  });

  function client(options: ConstructorParameters<typeof ClientQt>[0]): ClientQt {
    const c = new ClientQt(options);
    clients.push(c);
    return c;
  }

  it('unwrap() throws before listen and returns the QTcpServer after; status goes connected, then disconnected on close', async () => {
    const server = new ServerQt({ transport: 'tcp', port: 0 });
    expect(() => server.unwrap()).toThrow(/listen/);
    const statuses: string[] = [];
    const sub = server.status.subscribe((s) => statuses.push(s));
    const events: string[] = [];
    server.on('listening', () => events.push('listening'));
    server.on('connection', () => events.push('connection'));
    server.on('disconnect', () => events.push('disconnect'));
    server.on('close', () => events.push('close'));
    const app = await NestFactory.createMicroservice(EchoModule, {
      strategy: server,
      logger: false,
    });
    await app.listen();
    const port = (server.unwrap() as { serverPort(): number }).serverPort();
    expect(port).toBeGreaterThan(0);
    const c = new ClientQt({ port });
    expect(await firstValueFrom(c.send('echo', 'x'))).toBe('x');
    await c.close();
    await app.close();
    sub.unsubscribe();
    expect(statuses).toEqual(['connected', 'disconnected']);
    expect(events[0]).toBe('listening');
    expect(events).toContain('connection');
    expect(events.at(-1)).toBe('close');
  });

  it("Nest's processing hooks run around each request with this transport's id and a QtContext", async () => {
    const calls: string[] = [];
    running.server.setOnProcessingStartHook((transportId, context, done) => {
      calls.push(`start:${transportId === QT_TRANSPORT}:${(context as QtContext).getPattern()}`);
      return done();
    });
    running.server.setOnProcessingEndHook((transportId, context) => {
      calls.push(`end:${transportId === QT_TRANSPORT}:${(context as QtContext).getPattern()}`);
    });
    try {
      const c = client({ port: running.port });
      expect(await firstValueFrom(c.send('echo', 1))).toBe(1);
      const deadline = Date.now() + 2000;
      while (calls.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(calls).toEqual(['start:true:echo', 'end:true:echo']);
    } finally {
      running.server.setOnProcessingStartHook((_id, _ctx, done) => done());
      running.server.setOnProcessingEndHook(() => undefined);
    }
  });

  it('packet metadata set by the client (setOnDispatchHook, on Nest 11 and 12) reaches QtContext.getMetadata()', async () => {
    const c = client({ port: running.port });
    // ClientQt has the hook on both majors (Nest 11's ClientProxy has none; see metadata.spec.ts).
    c.setOnDispatchHook((packet) => {
      packet.metadata = { traceId: 'abc-123' };
    });
    expect(await firstValueFrom(c.send('meta', {}))).toEqual({ traceId: 'abc-123' });
    expect(seenMetadata.at(-1)).toEqual({ traceId: 'abc-123' });
  });

  it('socketOptions and readBufferSize reach the Qt socket of the client and of the server side', async () => {
    const accepted: QtStreamSocket[] = [];
    running.server.on('connection', (s: QtStreamSocket) => accepted.push(s));
    const c = client({
      port: running.port,
      socketOptions: { lowDelay: false, keepAlive: true },
      readBufferSize: 65536,
    });
    expect(await firstValueFrom(c.send('echo', 'opts'))).toBe('opts');
    const socket = c.unwrap<QTcpSocket>();
    expect(socket).toBeInstanceOf(QTcpSocket);
    expect(socket.socketOption(SocketOption.LowDelayOption)).toBe(0);
    expect(socket.socketOption(SocketOption.KeepAliveOption)).toBe(1);
    expect(socket.readBufferSize()).toBe(65536);
    // The server applies its own defaults (lowDelay on) to the accepted socket.
    const serverSide = accepted.at(-1) as QTcpSocket;
    expect(serverSide.socketOption(SocketOption.LowDelayOption)).toBe(1);
  });

  describe('through an HTTP CONNECT proxy (npm proxy)', () => {
    let proxy: NpmProxy;
    beforeAll(async () => {
      proxy = await startNpmProxy();
    });
    afterAll(async () => {
      await proxy.stop();
    });

    it('a ClientQt with proxy: { type: "http" } reaches the server through the proxy', async () => {
      const c = client({
        port: running.port,
        proxy: { type: 'http', hostName: proxy.host, port: proxy.port },
      });
      expect(await firstValueFrom(c.send('echo', { through: 'proxy' }))).toEqual({
        through: 'proxy',
      });
      expect(proxy.connects.map((x) => x.url)).toContain(`127.0.0.1:${running.port}`);
      // The client's local port is one the proxy accepted, not one the server saw directly.
      expect(proxy.clientPorts).toContain(c.unwrap<QTcpSocket>().localPort());
    });

    it('proxy: { type: "none" } connects directly even with a proxy configured elsewhere', async () => {
      const before = proxy.connects.length;
      const c = client({ port: running.port, proxy: { type: 'none' } });
      const values = await firstValueFrom(c.send('echo', [1, 2]).pipe(take(1), toArray()));
      expect(values).toEqual([[1, 2]]);
      expect(proxy.connects.length).toBe(before);
    });
  });
});
