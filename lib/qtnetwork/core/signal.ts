/**
 * Qt-style signals: typed, synchronous, emitted in the order the emitting object
 * documents.
 *
 * A slot is a plain function. `connect` returns a function that disconnects that one
 * connection, like the `QMetaObject::Connection` handle Qt returns. Slots run in the order
 * they were connected; a slot connected during an emission is first called on the next
 * emission, and a slot disconnected during an emission is not called if it has not run yet
 * (both as in Qt).
 */

/** A connected function. */
export type Slot<Args extends unknown[]> = (...args: Args) => void;

/**
 * Called with the error thrown by a slot. The emitting object has already finished its own
 * state change when this runs: a throwing slot never leaves a socket half-way through a
 * transition.
 */
export type SlotErrorHandler = (error: unknown, signalName: string) => void;

function rethrowLater(error: unknown): void {
  // An exception in a slot is a bug in the application. Node's convention for a throwing
  // callback is an uncaught exception, so it is raised outside the emitting call stack,
  // after the socket has completed its state change.
  queueMicrotask(() => {
    throw error;
  });
}

let slotErrorHandler: SlotErrorHandler = rethrowLater;

interface Connection<Args extends unknown[]> {
  slot: Slot<Args>;
  connected: boolean;
}

/** A typed signal owned by a QObject-like class. */
export class Signal<Args extends unknown[] = []> {
  private connections: Connection<Args>[] = [];

  /** @param name the signal's Qt name, used in diagnostics (e.g. `'readyRead'`). */
  constructor(readonly name: string = 'signal') {}

  /**
   * Where exceptions thrown by slots go. Default: re-thrown from a microtask, so they
   * surface as uncaught exceptions after the emitting object has finished its transition.
   */
  static setSlotErrorHandler(handler: SlotErrorHandler | null): void {
    slotErrorHandler = handler ?? rethrowLater;
  }

  /** Connects `slot`; returns a function that removes exactly this connection. */
  connect(slot: Slot<Args>): () => void {
    const connection: Connection<Args> = { slot, connected: true };
    // Copy-on-write: an emission in progress keeps iterating over the old array.
    this.connections = [...this.connections, connection];
    return () => this.remove(connection);
  }

  /**
   * Disconnects `slot` (every connection of it), or every slot when called without one.
   * Returns true if anything was disconnected, as `QObject::disconnect` does.
   */
  disconnect(slot?: Slot<Args>): boolean {
    const before = this.connections.length;
    for (const c of this.connections) {
      if (slot === undefined || c.slot === slot) c.connected = false;
    }
    this.connections = this.connections.filter((c) => c.connected);
    return this.connections.length !== before;
  }

  /** Number of connected slots (Qt's `QObject::receivers`). */
  receivers(): number {
    return this.connections.length;
  }

  /**
   * Calls every connected slot with `args`, synchronously. Meant for the object that owns
   * the signal (and its subclasses), as PyQt's `signal.emit`.
   */
  emit(...args: Args): void {
    const current = this.connections;
    for (let i = 0; i < current.length; i++) {
      const c = current[i];
      if (!c.connected) continue;
      try {
        c.slot(...args);
      } catch (error) {
        slotErrorHandler(error, this.name);
      }
    }
  }

  private remove(connection: Connection<Args>): void {
    if (!connection.connected) return;
    connection.connected = false;
    this.connections = this.connections.filter((c) => c !== connection);
  }
}
