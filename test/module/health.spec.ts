/**
 * QtHealthIndicator with @nestjs/terminus: a Nest HTTP app whose GET /health pings a Nest
 * microservice on ServerQt running in another process, over real HTTP and real Qt sockets.
 * Up (200) while the server answers, down (503) with Qt's error code and text once it is
 * gone; each check closes the connection it opened. The main entry loads without terminus
 * installed, and the indicator type-checks (strict) inside HealthCheckService.check with
 * terminus 12's declarations and with terminus 11's.
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Controller, Get, Inject, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { firstValueFrom } from 'rxjs';
import ts from 'typescript';

import { ClientQt, QtHealthIndicator, type QtPingCheckOptions } from '../../lib/index.js';
import { fixturesDir, startChild } from '../helpers/child-process.js';
import { CHILD_START_MS, budget } from '../helpers/time-budget.js';
import { TRANSPORTS, pollUntil, startServer, uniqueName, type ServerApp } from '../e2e/helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Where the health controller's check points; set by each test run. */
let target: QtPingCheckOptions = {};

@Controller('health')
class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(QtHealthIndicator) private readonly qt: QtHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.qt.pingCheck('billing', target)]);
  }
}

@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [QtHealthIndicator],
})
class HealthModule {}

interface HealthBody {
  status: string;
  details: Record<string, Record<string, unknown>>;
  error?: Record<string, Record<string, unknown>>;
}

/** GET `url` over real HTTP: the status and the JSON body. */
async function get(url: string): Promise<{ status: number; body: HealthBody }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(budget(10000)) });
  return { status: response.status, body: (await response.json()) as HealthBody };
}

describe.each(TRANSPORTS)('GET /health with QtHealthIndicator, over %s', (transport) => {
  let server: ServerApp | null = null;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    app = await NestFactory.create(HealthModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as { port: number };
    url = `http://127.0.0.1:${address.port}/health`;
  });

  afterAll(async () => {
    await server?.stop();
    await app?.close();
  });

  it('is 200 with billing up and its round trip while the server answers; no connection is left open', async () => {
    server = await startServer({ transport });
    target = { ...server.target, timeout: budget(5000) };
    for (let i = 0; i < 3; i++) {
      const { status, body } = await get(url);
      expect(status).toBe(200);
      expect(body.status).toBe('ok');
      expect(body.details.billing.status).toBe('up');
      expect(typeof body.details.billing.responseTime).toBe('number');
    }
    // Every check closed its connection: the server saw as many ends as connections.
    const observer = new ClientQt(server.target);
    try {
      const stats = await pollUntil(
        () =>
          firstValueFrom(observer.send<{ connections: number; disconnects: number }>('stats', {})),
        (s) => s.connections - s.disconnects === 1,
        budget(5000),
        'the checks to close their connections',
      );
      expect(stats.connections).toBe(4);
    } finally {
      await observer.close();
    }
  });

  it('is 503 with billing down, and Qt error code and text, once the server is gone', async () => {
    await server!.stop();
    server = null;
    const { status, body } = await get(url);
    expect(status).toBe(503);
    expect(body.status).toBe('error');
    expect(body.error!.billing).toEqual(
      transport === 'tcp'
        ? { status: 'down', code: 'ConnectionRefusedError', message: 'Connection refused' }
        : {
            status: 'down',
            code: 'ServerNotFoundError',
            message: 'QLocalSocket::connectToServer: Invalid name',
          },
    );
    expect(body.details.billing.status).toBe('down');
  });
});

describe('QtHealthIndicator without @nestjs/terminus installed', () => {
  it('the main entry loads, and pingCheck reports a result in terminus shape', async () => {
    const child = startChild(process.execPath, [
      '--import',
      path.join(fixturesDir, 'register-ts.mjs'),
      '--import',
      path.join(here, 'fixtures', 'no-terminus.mjs'),
      path.join(here, 'fixtures', 'health-without-terminus.ts'),
      uniqueName('nobody'),
    ]);
    try {
      const line = await child.nextLine(CHILD_START_MS);
      expect(JSON.parse(line)).toEqual({
        terminus: 'missing',
        result: {
          billing: {
            status: 'down',
            code: 'ServerNotFoundError',
            message: 'QLocalSocket::connectToServer: Invalid name',
          },
        },
      });
    } finally {
      await child.stop();
    }
  });
});

// ------------------------------------------------------------------ types (tsc, strict)

/**
 * terminus 11's declarations of what HealthCheckService.check takes (its
 * health-indicator-result.interface.d.ts and health-indicator.d.ts): status is 'up' | 'down'
 * only, and an indicator function returns a HealthIndicatorResult.
 */
const TERMINUS_11 = `
export type HealthIndicatorStatus = 'up' | 'down';
export type HealthIndicatorResult<
  Key extends string = string,
  Status extends HealthIndicatorStatus = HealthIndicatorStatus,
  OptionalData extends Record<string, any> = Record<string, any>,
> = Record<Key, { status: Status } & OptionalData>;
export type HealthIndicatorFunction = () => PromiseLike<HealthIndicatorResult> | HealthIndicatorResult;
export declare class HealthCheckService {
  check(healthIndicators: HealthIndicatorFunction[]): Promise<{ status: string }>;
}
`;

/** What a user writes, as the README shows it: no cast anywhere. */
const USAGE = `
import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';

import { QtHealthIndicator } from '../../lib/index.js';
import { HealthCheckService as HealthCheckService11 } from './terminus-11.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly qt: QtHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.qt.pingCheck('billing', { transport: 'tcp', host: 'billing', port: 3001, timeout: 500 }),
      () => this.qt.pingCheck('audit', { transport: 'local', name: 'audit' }),
    ]);
  }
}

export async function details(health: HealthCheckService, qt: QtHealthIndicator): Promise<number | undefined> {
  const result = await health.check([() => qt.pingCheck('billing', { port: 3001 })]);
  const billing = result.details.billing;
  const status: 'up' | 'down' = billing.status;
  return status === 'up' && billing.status === 'up' ? billing.responseTime : undefined;
}

export function withTerminus11(health: HealthCheckService11, qt: QtHealthIndicator) {
  return health.check([() => qt.pingCheck('billing', { port: 3001 })]);
}
`;

/** The same with mistakes a checker must catch: it proves the check above is real. */
const MISUSE = `
import { HealthCheckService } from '@nestjs/terminus';

import { QtHealthIndicator } from '../../lib/index.js';

export function wrong(health: HealthCheckService, qt: QtHealthIndicator) {
  return health.check([() => qt.pingCheck('billing', { transport: 'udp', timeout: '1s' })]);
}
`;

describe('QtHealthIndicator type-checks in HealthCheckService.check (tsc, strict)', () => {
  it('without casts, with terminus 12 and 11; and a misuse fails', () => {
    const files = new Map([
      [path.join(here, 'health-usage.virtual.ts'), USAGE],
      [path.join(here, 'health-misuse.virtual.ts'), MISUSE],
      [path.join(here, 'terminus-11.ts'), TERMINUS_11],
    ]);
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      esModuleInterop: true,
      skipLibCheck: true,
      noEmit: true,
      types: ['node'],
    };
    const host = ts.createCompilerHost(options);
    const { fileExists, readFile, getSourceFile } = host;
    host.fileExists = (f) => files.has(f) || fileExists.call(host, f);
    host.readFile = (f) => files.get(f) ?? readFile.call(host, f);
    host.getSourceFile = (f, version, ...rest) => {
      const text = files.get(f);
      return text !== undefined
        ? ts.createSourceFile(f, text, version)
        : getSourceFile.call(host, f, version, ...rest);
    };
    const program = ts.createProgram([...files.keys()].slice(0, 2), options, host);
    const messages = (file: string): string[] =>
      ts
        .getPreEmitDiagnostics(program, program.getSourceFile(file))
        .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(messages(path.join(here, 'health-usage.virtual.ts'))).toEqual([]);
    expect(messages(path.join(here, 'health-misuse.virtual.ts'))).toEqual([
      expect.stringContaining(`'"udp"' is not assignable`),
      expect.stringContaining(`'string' is not assignable to type 'number'`),
    ]);
  });
});
