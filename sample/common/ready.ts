import cluster from 'node:cluster';

import { Logger, type INestApplicationContext, type LogLevel } from '@nestjs/common';

/**
 * The Nest log levels a service prints: LOG_LEVELS (a comma list, e.g. `log,warn,error,debug`)
 * or, by default, everything but `debug` and `verbose`. Health probes that connect and close
 * (a compose healthcheck, a Kubernetes tcpSocket probe) are logged at `debug` by ServerQt: a
 * line per probe unless debug is asked for.
 */
export function logLevels(): LogLevel[] {
  const asked = process.env.LOG_LEVELS?.split(',')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return (asked?.length ? asked : ['log', 'warn', 'error', 'fatal']) as LogLevel[];
}

/** What a service tells the process that started it, once it serves. */
export interface ReadyMessage {
  ready: string;
  address: string;
  /** A cluster's primary: the pids of its workers (each serves on `address`). */
  workers?: number[];
}

/**
 * Tells the process that started this service that it is ready (one JSON line on stdout;
 * in a node:cluster worker, a message to the primary, which speaks for all its workers),
 * and closes the app cleanly on SIGTERM/SIGINT: Nest's shutdown closes ServerQt, which
 * drains its connections first. Shared by the three services.
 */
export function announceReady(
  service: string,
  app: INestApplicationContext,
  address: string,
): void {
  const message: ReadyMessage = { ready: service, address };
  if (cluster.isWorker) process.send!(message);
  else process.stdout.write(`${JSON.stringify(message)}\n`);
  const logger = new Logger(service);
  let closing = false;
  const stop = (signal: string): void => {
    if (closing) return;
    closing = true;
    logger.log(`${signal}: shutting down`);
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** Starts a service: a clear one-line message and exit code 1 instead of a stack dump. */
export function runService(service: string, start: () => Promise<void>): void {
  traceIfAsked(service)
    .then(start)
    .catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      const code = (err as { code?: unknown })?.code;
      new Logger(service).error(`could not start: ${message}${code ? ` (${String(code)})` : ''}`);
      process.exit(1);
    });
}

/**
 * With SAMPLE_TRACE=1 (`npm start -- --verbose`), records this process's spans and prints
 * each as a `{"span":…}` line for sample/main.ts to draw the trace tree from. The SDK is
 * loaded only then: an image without the OpenTelemetry packages runs as before.
 */
async function traceIfAsked(service: string): Promise<void> {
  if (process.env.SAMPLE_TRACE !== '1') return;
  const { recordSpans } = await import('./trace-tree.js');
  const name = cluster.isWorker ? `${service} ${process.pid}` : service;
  recordSpans(name, (span) => process.stdout.write(`${JSON.stringify({ span })}\n`));
}
