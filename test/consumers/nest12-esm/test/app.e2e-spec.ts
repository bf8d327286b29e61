import { createRequire } from 'node:module';
import { INestApplication } from '@nestjs/common';
import { Test, TestingModule } from '@nestjs/testing';
import * as transport from 'nestjs-qt-transport';
import { ClientQt, QtTransportOptions, ServerQt } from 'nestjs-qt-transport';
import * as qtnetwork from 'nestjs-qt-transport/qtnetwork';
import { QLocalServer, QTcpServer } from 'nestjs-qt-transport/qtnetwork';
import { filter, firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { AppModule } from './../src/app.module.js';
import { AppService } from './../src/app.service.js';
import { connectQtMicroservices } from './../src/qt-microservices.js';

describe('the hybrid app, called with ClientQt (e2e)', () => {
  const name = `qt-consumer-${process.pid}`;
  let app: INestApplication;
  let servers: { tcp: ServerQt; local: ServerQt };
  const clients: ClientQt[] = [];

  beforeAll(async () => {
    const moduleFixture: TestingModule = await Test.createTestingModule({
      imports: [AppModule],
    }).compile();

    app = moduleFixture.createNestApplication();
    servers = connectQtMicroservices(app, { port: 0, name });
    await app.startAllMicroservices();
    await app.init();
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await app.close();
  });

  it('gives import and require the same classes', () => {
    const requireCjs = createRequire(import.meta.url);
    const required = requireCjs('nestjs-qt-transport') as typeof transport;
    const requiredQt = requireCjs(
      'nestjs-qt-transport/qtnetwork',
    ) as typeof qtnetwork;
    expect(required.ClientQt).toBe(ClientQt);
    expect(required.ServerQt).toBe(ServerQt);
    expect(required.QtContext).toBe(transport.QtContext);
    expect(required.QtConnectionError).toBe(transport.QtConnectionError);
    expect(requiredQt.QTcpServer).toBe(QTcpServer);
    expect(required.QTcpServer).toBe(QTcpServer);
  });

  it('serves on a QTcpServer and on a QLocalServer', () => {
    expect(servers.tcp.unwrap()).toBeInstanceOf(QTcpServer);
    expect(servers.local.unwrap()).toBeInstanceOf(QLocalServer);
  });

  const transports: [string, () => QtTransportOptions][] = [
    [
      'tcp',
      () => ({
        transport: 'tcp',
        host: '127.0.0.1',
        port: servers.tcp.unwrap<QTcpServer>().serverPort(),
      }),
    ],
    ['local', () => ({ transport: 'local', name })],
  ];

  describe.each(transports)('over %s', (transport, options) => {
    let client: ClientQt;

    beforeAll(() => {
      client = new ClientQt(options());
      clients.push(client);
    });

    it('answers a request', async () => {
      const sum = client.send<number, number[]>('sum', [1, 2, 3]);
      await expect(firstValueFrom(sum)).resolves.toBe(6);
    });

    it('streams the replies of an Observable', async () => {
      const count = client.send<number, number>('count', 3);
      await expect(lastValueFrom(count.pipe(toArray()))).resolves.toEqual([
        1, 2, 3,
      ]);
    });

    it("rejects with an RpcException's error", async () => {
      const refused = client.send<never, string>('refuse', 'out of stock');
      await expect(firstValueFrom(refused)).rejects.toEqual({
        code: 'E_REFUSED',
        message: 'out of stock',
      });
    });

    it('delivers an event, with its QtContext', async () => {
      const text = `hello over ${transport}`;
      const notes = app.get(AppService).notes;
      const noted = firstValueFrom(notes.pipe(filter((n) => n.text === text)));
      await lastValueFrom(client.emit('note', text), { defaultValue: null });
      await expect(noted).resolves.toEqual({
        text,
        pattern: 'note',
        transport,
      });
    });
  });
});
