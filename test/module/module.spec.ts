/**
 * QtTransportModule (forRoot, forRootAsync), Nest's own ClientsModule with ClientQt, and a
 * hybrid application (NestFactory.create + connectMicroservice), all against real ServerQt
 * microservices on local sockets in this process.
 */
import 'reflect-metadata';
import { jest } from '@jest/globals';
import * as http from 'node:http';

import {
  Controller,
  Inject,
  Injectable,
  Module,
  type DynamicModule,
  type INestApplicationContext,
  type INestMicroservice,
  type NestApplicationOptions,
} from '@nestjs/common';
import { AbstractHttpAdapter, NestFactory } from '@nestjs/core';
import { ClientsModule, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';

import {
  ClientQt,
  InvalidOptionError,
  QT_SERVER_OPTIONS,
  QT_TRANSPORT_CONFIG,
  QtTransportModule,
  ServerQt,
  type QtTransportOptions,
} from '../../lib/index.js';
import { uniqueLocalName } from '../helpers/qlocal-helpers.js';
import { Resources } from '../helpers/resources.js';
import { waitUntil } from '../helpers/signals.js';

const res = new Resources();
afterEach(() => res.dispose());

const NEST = { logger: false as const, abortOnError: false };

@Controller()
class MathController {
  @MessagePattern('sum')
  sum(@Payload() data: number[]): number {
    return data.reduce((a, b) => a + b, 0);
  }
}

@Module({ controllers: [MathController] })
class MathModule {}

/** A ServerQt microservice answering 'sum' on a fresh local socket; closed after the test. */
async function startServer(): Promise<{ name: string; server: ServerQt }> {
  const name = uniqueLocalName('module');
  const server = new ServerQt({ transport: 'local', name });
  const app: INestMicroservice = await NestFactory.createMicroservice(MathModule, {
    ...NEST,
    strategy: server,
  });
  res.add(() => app.close());
  await app.listen();
  return { name, server };
}

/** Creates an application context for `module`, closed after the test unless closed before. */
async function context(
  module: DynamicModule | (new () => unknown),
): Promise<INestApplicationContext> {
  const ctx = await NestFactory.createApplicationContext(module, NEST);
  let closed = false;
  const close = ctx.close.bind(ctx);
  ctx.close = async () => {
    closed = true;
    await close();
  };
  res.add(() => (closed ? undefined : close()));
  return ctx;
}

/** The last status a ClientQt reported. */
function lastStatus(client: ClientQt): () => string | undefined {
  let last: string | undefined;
  const sub = client.status.subscribe((s) => (last = s));
  res.add(() => sub.unsubscribe());
  return () => last;
}

describe('QtTransportModule.forRoot', () => {
  it('provides each client by its name (a ClientQt with its options) and the server options', async () => {
    const { name } = await startServer();
    const server: QtTransportOptions = { transport: 'local', name: 'orders' };

    @Injectable()
    class Inventory {
      constructor(@Inject('INVENTORY') readonly client: ClientQt) {}
    }

    @Module({
      imports: [
        QtTransportModule.forRoot({
          clients: [
            { name: 'INVENTORY', options: { transport: 'local', name, requestTimeout: 4321 } },
          ],
          server,
        }),
      ],
      providers: [Inventory],
    })
    class AppModule {}

    const ctx = await context(AppModule);
    const client = ctx.get<ClientQt>('INVENTORY');
    expect(client).toBeInstanceOf(ClientQt);
    expect(client.resolvedOptions()).toMatchObject({
      transport: 'local',
      name,
      requestTimeout: 4321,
    });
    expect(ctx.get(Inventory).client).toBe(client);
    expect(ctx.get(QT_SERVER_OPTIONS)).toEqual(server);
    expect(await firstValueFrom(client.send('sum', [1, 2, 3]))).toBe(6);
  });

  it('QT_SERVER_OPTIONS is null when no server options are given', async () => {
    @Module({ imports: [QtTransportModule.forRoot({ clients: [] })] })
    class AppModule {}
    const ctx = await context(AppModule);
    expect(ctx.get(QT_SERVER_OPTIONS)).toBeNull();
  });

  it('closes its clients when the application closes', async () => {
    const { name, server } = await startServer();
    let disconnects = 0;
    server.on('disconnect', () => disconnects++);

    @Module({
      imports: [
        QtTransportModule.forRoot({
          clients: [
            { name: 'A', options: { transport: 'local', name } },
            { name: 'B', options: { transport: 'local', name } },
          ],
        }),
      ],
    })
    class AppModule {}

    const ctx = await context(AppModule);
    const a = ctx.get<ClientQt>('A');
    const b = ctx.get<ClientQt>('B');
    expect(await firstValueFrom(a.send('sum', [1]))).toBe(1);
    expect(await firstValueFrom(b.send('sum', [2]))).toBe(2);
    const statusA = lastStatus(a);
    const closeA = jest.spyOn(a, 'close');
    const closeB = jest.spyOn(b, 'close');
    expect(statusA()).toBe('connected');

    await ctx.close();
    expect(closeA).toHaveBeenCalled();
    expect(closeB).toHaveBeenCalled();
    expect(statusA()).toBe('disconnected');
    await waitUntil(() => disconnects === 2, 5000, 'the server to see both clients go');
  });

  it('a client with invalid options fails the application at startup with InvalidOptionError', async () => {
    @Module({
      imports: [
        QtTransportModule.forRoot({
          clients: [{ name: 'BAD', options: { transport: 'local' } }],
        }),
      ],
    })
    class AppModule {}
    await expect(NestFactory.createApplicationContext(AppModule, NEST)).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
  });
});

describe('QtTransportModule.forRootAsync', () => {
  /** A tiny configuration module (@nestjs/config is not a dependency). */
  @Injectable()
  class ConfigService {
    private readonly values = new Map<string, unknown>();
    set(key: string, value: unknown): void {
      this.values.set(key, value);
    }
    get<T>(key: string): T {
      return this.values.get(key) as T;
    }
  }

  const CONFIG_VALUES = Symbol('CONFIG_VALUES');

  @Module({})
  class ConfigModule {
    static forRoot(values: Record<string, unknown>): DynamicModule {
      return {
        module: ConfigModule,
        providers: [
          { provide: CONFIG_VALUES, useValue: values },
          {
            provide: ConfigService,
            useFactory: (v: Record<string, unknown>) => {
              const c = new ConfigService();
              for (const [k, x] of Object.entries(v)) c.set(k, x);
              return c;
            },
            inject: [CONFIG_VALUES],
          },
        ],
        exports: [ConfigService],
      };
    }
  }

  it('gives each declared client the options of the factory, which reads an injected config service', async () => {
    const { name } = await startServer();
    const factoryArgs: unknown[] = [];

    @Module({
      imports: [
        QtTransportModule.forRootAsync({
          clients: ['BILLING'],
          imports: [ConfigModule.forRoot({ BILLING_NAME: name, TIMEOUT: 2500 })],
          inject: [ConfigService],
          useFactory: async (c: ConfigService) => {
            factoryArgs.push(c);
            await new Promise((r) => setTimeout(r, 5));
            return {
              clients: {
                BILLING: {
                  transport: 'local',
                  name: c.get<string>('BILLING_NAME'),
                  requestTimeout: c.get<number>('TIMEOUT'),
                  codec: 'cbor',
                },
              },
              server: { transport: 'local', name: 'billing-server' },
            };
          },
        }),
      ],
    })
    class AppModule {}

    const ctx = await context(AppModule);
    expect(factoryArgs).toHaveLength(1);
    expect(factoryArgs[0]).toBeInstanceOf(ConfigService);
    const client = ctx.get<ClientQt>('BILLING');
    expect(client).toBeInstanceOf(ClientQt);
    expect(client.resolvedOptions()).toMatchObject({
      transport: 'local',
      name,
      requestTimeout: 2500,
      codec: 'cbor',
    });
    expect(ctx.get(QT_SERVER_OPTIONS)).toEqual({ transport: 'local', name: 'billing-server' });
    expect(ctx.get(QT_TRANSPORT_CONFIG)).toMatchObject({ clients: { BILLING: { name } } });
    expect(await firstValueFrom(client.send('sum', [20, 22]))).toBe(42);

    const close = jest.spyOn(client, 'close');
    await ctx.close();
    expect(close).toHaveBeenCalled();
  });

  it('a factory that returns no options for a declared client fails at startup, naming the client', async () => {
    @Module({
      imports: [
        QtTransportModule.forRootAsync({
          clients: ['BILLING', 'SHIPPING'],
          useFactory: () => ({ clients: { BILLING: { transport: 'local', name: 'b' } } }),
        }),
      ],
    })
    class AppModule {}
    await expect(NestFactory.createApplicationContext(AppModule, NEST)).rejects.toThrow(
      /no options for client "SHIPPING"/,
    );
  });

  it('a factory that returns invalid client options fails at startup with InvalidOptionError', async () => {
    @Module({
      imports: [
        QtTransportModule.forRootAsync({
          clients: ['BILLING'],
          useFactory: () => ({ clients: { BILLING: { transport: 'udp' as 'tcp' } } }),
        }),
      ],
    })
    class AppModule {}
    await expect(NestFactory.createApplicationContext(AppModule, NEST)).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
  });
});

describe("Nest's ClientsModule with customClass: ClientQt", () => {
  it('registers a ClientQt that talks to a ServerQt and is closed with the application', async () => {
    const { name } = await startServer();

    // Written exactly as API.md shows it: this line is also a type-level test (tsc).
    @Module({
      imports: [
        ClientsModule.register([
          { name: 'ORDERS', customClass: ClientQt, options: { transport: 'local', name } },
        ]),
      ],
    })
    class ClientApp {}

    const ctx = await context(ClientApp);
    const client = ctx.get<ClientQt>('ORDERS');
    expect(client).toBeInstanceOf(ClientQt);
    expect(client.resolvedOptions().name).toBe(name);
    expect(await firstValueFrom(client.send('sum', [5, 6]))).toBe(11);
    const status = lastStatus(client);
    await ctx.close();
    expect(status()).toBe('disconnected');
  });
});

/**
 * An HTTP adapter that serves nothing: NestFactory.create needs one, and no HTTP platform
 * package is installed. The hybrid application below never listens on HTTP.
 */
class NoHttpAdapter extends AbstractHttpAdapter {
  override initHttpServer(_options: NestApplicationOptions): void {
    this.httpServer = http.createServer();
  }
  override close(): void {}
  override useStaticAssets(): void {}
  override setViewEngine(): void {}
  override getRequestHostname(): string {
    return '';
  }
  override getRequestMethod(): string {
    return '';
  }
  override getRequestUrl(): string {
    return '';
  }
  override status(): void {}
  override reply(): void {}
  override end(): void {}
  override render(): void {}
  override redirect(): void {}
  override setErrorHandler(): void {}
  override setNotFoundHandler(): void {}
  override isHeadersSent(): boolean {
    return false;
  }
  override getHeader(): undefined {
    return undefined;
  }
  override setHeader(): void {}
  override appendHeader(): void {}
  override registerParserMiddleware(): void {}
  override enableCors(): void {}
  override createMiddlewareFactory(): (path: string, callback: unknown) => void {
    return () => undefined;
  }
  override getType(): string {
    return 'none';
  }
  override applyVersionFilter(): () => () => void {
    return () => () => undefined;
  }
}

describe('a hybrid application', () => {
  it('NestFactory.create + connectMicroservice(new ServerQt(app.get(QT_SERVER_OPTIONS))) + startAllMicroservices answers a client', async () => {
    const name = uniqueLocalName('hybrid');

    @Module({
      imports: [
        QtTransportModule.forRoot({
          server: { transport: 'local', name },
          clients: [{ name: 'SELF', options: { transport: 'local', name } }],
        }),
      ],
      controllers: [MathController],
    })
    class AppModule {}

    const app = await NestFactory.create(AppModule, new NoHttpAdapter(), NEST);
    let closed = false;
    res.add(() => (closed ? undefined : app.close()));
    const options = app.get<QtTransportOptions>(QT_SERVER_OPTIONS);
    expect(options).toEqual({ transport: 'local', name });
    const strategy = new ServerQt(options);
    app.connectMicroservice({ strategy });
    await app.startAllMicroservices();
    await app.init();

    const client = app.get<ClientQt>('SELF');
    expect(await firstValueFrom(client.send('sum', [40, 2]))).toBe(42);

    // A client outside the application too.
    const outside = new ClientQt({ transport: 'local', name });
    res.add(() => outside.close());
    expect(await firstValueFrom(outside.send('sum', [1, 1]))).toBe(2);
    await outside.close();

    closed = true;
    await app.close();
    expect(() => strategy.unwrap()).toThrow();
  });
});
