/**
 * Everything a test opens, closed in reverse order by `dispose()` (call it from afterEach),
 * so that no socket, server or child process outlives its test.
 */
export class Resources {
  private readonly disposers: Array<() => unknown> = [];

  /** Registers a socket (anything with `abort()`); returns it. */
  socket<T extends { abort(): void }>(socket: T): T {
    this.disposers.push(() => socket.abort());
    return socket;
  }

  /** Registers a server (anything with `close()`); returns it. */
  server<T extends { close(): unknown }>(server: T): T {
    this.disposers.push(() => server.close());
    return server;
  }

  /** Registers any clean-up function (it may return a Promise). */
  add(dispose: () => unknown): void {
    this.disposers.push(dispose);
  }

  /** Runs every clean-up, newest first; errors are collected and rethrown at the end. */
  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    while (this.disposers.length > 0) {
      const dispose = this.disposers.pop()!;
      try {
        await dispose();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}
