import { Logger, type INestApplicationContext } from '@nestjs/common';

/**
 * Tells the process that started this service that it is ready (one JSON line on stdout),
 * and closes the app cleanly on SIGTERM/SIGINT. Shared by the three services.
 */
export function announceReady(
  service: string,
  app: INestApplicationContext,
  address: string,
): void {
  process.stdout.write(`${JSON.stringify({ ready: service, address })}\n`);
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
  start().catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: unknown })?.code;
    new Logger(service).error(`could not start: ${message}${code ? ` (${String(code)})` : ''}`);
    process.exit(1);
  });
}
