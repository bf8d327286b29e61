import {
  Module,
  type DynamicModule,
  type FactoryProvider,
  type InjectionToken,
  type ModuleMetadata,
  type OnModuleDestroy,
  type OptionalFactoryDependency,
  type Provider,
} from '@nestjs/common';

import { ClientQt, type QtTransportOptions } from '../transport/index.js';

/** Injection token of the server options given to the module (for `connectMicroservice`). */
export const QT_SERVER_OPTIONS = Symbol.for('nestjs-qt-transport:server-options');
/** Injection token of the whole resolved configuration of `forRootAsync`. */
export const QT_TRANSPORT_CONFIG = Symbol.for('nestjs-qt-transport:config');

/** A client the module provides: injectable by `name`. */
export interface QtClientRegistration {
  name: InjectionToken;
  options: QtTransportOptions;
}

/** `QtTransportModule.forRoot` options. */
export interface QtTransportModuleOptions {
  clients?: QtClientRegistration[];
  /** Options for a ServerQt (hybrid apps: `app.connectMicroservice({ strategy: new ServerQt(opts) })`). */
  server?: QtTransportOptions;
  /** Make the providers available in every module. Default false. */
  isGlobal?: boolean;
}

/** What the factory of `forRootAsync` returns. */
export interface QtTransportAsyncConfig {
  /** Options per client name declared in `clients`. */
  clients?: Record<string, QtTransportOptions>;
  server?: QtTransportOptions;
}

/** `QtTransportModule.forRootAsync` options: client names up front, options from a factory. */
export interface QtTransportModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  clients?: string[];
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  useFactory: (...args: never[]) => QtTransportAsyncConfig | Promise<QtTransportAsyncConfig>;
  isGlobal?: boolean;
}

/** Closes the module's clients when the application shuts down. */
class ClientCloser implements OnModuleDestroy {
  constructor(private readonly clients: ClientQt[]) {}

  async onModuleDestroy(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
  }
}

/**
 * Registers ClientQt instances (each injectable by its name, e.g. `@Inject('BILLING')`)
 * and the server options, from static options or from a factory (the Nest way to read
 * configuration). Clients close when the application does.
 */
@Module({})
export class QtTransportModule {
  /** Clients and server options known at import time. */
  static forRoot(options: QtTransportModuleOptions = {}): DynamicModule {
    const clients = options.clients ?? [];
    const providers: Provider[] = clients.map((c): Provider => ({
      provide: c.name,
      useFactory: () => new ClientQt(c.options),
    }));
    providers.push({ provide: QT_SERVER_OPTIONS, useValue: options.server ?? null });
    providers.push({
      provide: ClientCloser,
      useFactory: (...instances: ClientQt[]) => new ClientCloser(instances),
      inject: clients.map((c) => c.name),
    });
    return {
      module: QtTransportModule,
      global: options.isGlobal ?? false,
      providers,
      exports: [...clients.map((c) => c.name), QT_SERVER_OPTIONS],
    };
  }

  /** Clients declared by name; their options (and the server's) come from `useFactory`. */
  static forRootAsync(options: QtTransportModuleAsyncOptions): DynamicModule {
    const names = options.clients ?? [];
    const config: FactoryProvider = {
      provide: QT_TRANSPORT_CONFIG,
      useFactory: options.useFactory as (...args: unknown[]) => unknown,
      inject: options.inject ?? [],
    };
    const providers: Provider[] = [config];
    for (const name of names) {
      providers.push({
        provide: name,
        useFactory: (c: QtTransportAsyncConfig) => {
          const clientOptions = c.clients?.[name];
          if (!clientOptions) {
            throw new Error(
              `QtTransportModule: the factory returned no options for client "${name}"`,
            );
          }
          return new ClientQt(clientOptions);
        },
        inject: [QT_TRANSPORT_CONFIG],
      });
    }
    providers.push({
      provide: QT_SERVER_OPTIONS,
      useFactory: (c: QtTransportAsyncConfig) => c.server ?? null,
      inject: [QT_TRANSPORT_CONFIG],
    });
    providers.push({
      provide: ClientCloser,
      useFactory: (...instances: ClientQt[]) => new ClientCloser(instances),
      inject: names,
    });
    return {
      module: QtTransportModule,
      global: options.isGlobal ?? false,
      imports: options.imports ?? [],
      providers,
      exports: [...names, QT_SERVER_OPTIONS, QT_TRANSPORT_CONFIG],
    };
  }
}
