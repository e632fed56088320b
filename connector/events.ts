// Copyright 2026 the Kitewire authors. MIT license.
/**
 * What a connector reports as it runs: tunnels going up and down and the
 * relay's answer for each kite. Events are delivered through an async
 * iterable that never blocks the connector.
 *
 * @module
 */

/** How a relay answered for one kite. */
export type KiteStatus = "flying" | "rejected" | "duplicate" | "challenged";

/** One event of a connector. */
export type ConnectorEvent =
  | {
    /** A tunnel to the relay is up (handshake answered). */
    type: "connected";
    /** The relay, `host:port`. */
    relay: string;
    /** The relay's session id for this tunnel. */
    sessionId?: string;
  }
  | {
    /** The tunnel went down; the connector will reconnect. */
    type: "disconnected";
    relay: string;
    /** Why. */
    reason: string;
    /** Milliseconds until the next attempt. */
    retryInMs: number;
  }
  | {
    /** The relay answered for a kite. */
    type: "kite";
    relay: string;
    /** The kite, `proto[-port]:domain`. */
    kite: string;
    status: KiteStatus;
    /** The relay's reason for a rejection (`signature`, `port`, ...). */
    reason?: string;
  }
  | {
    /** The relay sent a message of the day. */
    type: "motd";
    relay: string;
    message: string;
  };

/**
 * An unbounded-but-capped queue of events read with `for await`. When
 * nobody reads, the oldest events are dropped past `capacity`, so a
 * connector never waits on its listeners.
 */
export class EventQueue<T> implements AsyncIterable<T> {
  readonly #capacity: number;
  #items: T[] = [];
  #waiting: ((result: IteratorResult<T>) => void)[] = [];
  #closed = false;

  /**
   * Constructs a new instance.
   *
   * @param capacity Events kept for a slow reader.
   */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Adds an event (dropped once the queue is closed). */
  push(item: T): void {
    if (this.#closed) return;
    const waiter = this.#waiting.shift();
    if (waiter !== undefined) {
      waiter({ value: item, done: false });
      return;
    }
    this.#items.push(item);
    if (this.#items.length > this.#capacity) this.#items.shift();
  }

  /** Ends every iteration once the queued events are read. */
  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiting.splice(0)) {
      waiter({ value: undefined, done: true });
    }
  }

  /**
   * Iterates the events, waiting for new ones until {@linkcode close}.
   *
   * @returns The iterator.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: (): Promise<IteratorResult<T>> => {
        const item = this.#items.shift();
        if (item !== undefined) {
          return Promise.resolve({ value: item, done: false });
        }
        if (this.#closed) {
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve) => this.#waiting.push(resolve));
      },
      return: (): Promise<IteratorResult<T>> => {
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
