// Copyright 2026 the Kitewire authors. MIT license.
// A small fault-injecting TCP proxy for tests (docs/reliability.md §3.3, in
// place of netem and toxiproxy): it listens on 127.0.0.1:0 and forwards
// every connection to a target. Faults are set per direction and may change
// while data flows: added latency (pipelined, so it does not cap
// throughput), a bandwidth cap (token bucket), slicing (pieces of at most N
// bytes with a pause between them), blackhole (bytes are read and dropped,
// both sockets stay open, like a NAT entry that vanished), half-close (the
// proxy itself shuts one direction), and reset (every connection closed at
// once). A peer's half-close (EOF) is passed on as `closeWrite()`.

/** `up`: client to target; `down`: target to client. */
export type FaultDirection = "up" | "down";

/** Faults of one direction. Unset fields mean "no fault". */
export interface FaultSettings {
  /** Every piece is delivered this long after it was read. */
  latencyMs?: number;
  /** At most this many bytes per second (token bucket). */
  bytesPerSecond?: number;
  /** Deliver in pieces of at most this many bytes... */
  sliceBytes?: number;
  /** ...with this pause between pieces. @default {0} */
  sliceDelayMs?: number;
  /** Read and drop everything; both sockets stay open. */
  blackhole?: boolean;
}

/** Options of {@linkcode FaultProxy.listen}. */
export interface FaultProxyOptions {
  /** Where connections go, on 127.0.0.1. */
  target: { hostname?: string; port: number };
  /** Faults toward the target. */
  up?: FaultSettings;
  /** Faults toward the client. */
  down?: FaultSettings;
}

const READ_BYTES = 16 * 1024;
/** Bytes read ahead of a delayed writer before reading pauses. */
const MAX_QUEUED_BYTES = 1024 * 1024;

interface Piece {
  bytes: Uint8Array;
  /** Deliver at this time (performance.now()). */
  at: number;
}

/** One direction of one proxied connection. */
class Pipe {
  readonly #proxy: FaultProxy;
  readonly #direction: FaultDirection;
  readonly #src: Deno.TcpConn;
  readonly #dst: Deno.TcpConn;
  readonly #queue: Piece[] = [];
  #queued = 0;
  #eof = false;
  #wakeWriter: (() => void) | undefined;
  #wakeReader: (() => void) | undefined;
  /** When the token bucket has room again. */
  #nextFree = 0;
  #closedWrite = false;
  bytesForwarded = 0;

  constructor(
    proxy: FaultProxy,
    direction: FaultDirection,
    src: Deno.TcpConn,
    dst: Deno.TcpConn,
  ) {
    this.#proxy = proxy;
    this.#direction = direction;
    this.#src = src;
    this.#dst = dst;
  }

  run(): Promise<void> {
    return Promise.all([this.#read(), this.#write()]).then(() => {});
  }

  /** Shuts the destination's write side (proxy-made half-close). */
  closeWrite(): void {
    if (this.#closedWrite) return;
    this.#closedWrite = true;
    try {
      this.#dst.closeWrite().catch(() => {});
    } catch {
      // already closed
    }
  }

  /** Wakes waiting loops so they notice the connection closed. */
  wake(): void {
    this.#wakeReader?.();
    this.#wakeWriter?.();
  }

  async #read(): Promise<void> {
    try {
      for (;;) {
        while (this.#queued >= MAX_QUEUED_BYTES) {
          await new Promise<void>((r) => this.#wakeReader = r);
          this.#wakeReader = undefined;
        }
        const buffer = new Uint8Array(READ_BYTES);
        const n = await this.#src.read(buffer);
        if (n === null) break;
        const settings = this.#proxy.settings(this.#direction);
        if (settings.blackhole) continue; // dropped
        this.#queue.push({
          bytes: buffer.subarray(0, n),
          at: performance.now() + (settings.latencyMs ?? 0),
        });
        this.#queued += n;
        this.#wakeWriter?.();
      }
    } catch {
      // the connection was closed or reset
    } finally {
      this.#eof = true;
      this.#wakeWriter?.();
    }
  }

  async #write(): Promise<void> {
    try {
      for (;;) {
        const piece = this.#queue.shift();
        if (piece === undefined) {
          if (this.#eof) break;
          await new Promise<void>((r) => this.#wakeWriter = r);
          this.#wakeWriter = undefined;
          continue;
        }
        const wait = piece.at - performance.now();
        if (wait > 0) await delay(wait);
        await this.#deliver(piece.bytes);
        this.#queued -= piece.bytes.length;
        this.#wakeReader?.();
      }
      this.closeWrite(); // pass the EOF on
    } catch {
      // the destination went away
    }
  }

  async #deliver(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) {
      const s = this.#proxy.settings(this.#direction);
      if (s.blackhole) return; // turned on while the piece waited
      let size = bytes.length - at;
      if (s.sliceBytes !== undefined) size = Math.min(size, s.sliceBytes);
      if (s.bytesPerSecond !== undefined) {
        // Write at most a tenth of a second's worth at a time.
        size = Math.min(size, Math.max(1, Math.floor(s.bytesPerSecond / 10)));
        const now = performance.now();
        const start = Math.max(now, this.#nextFree);
        if (start > now) await delay(start - now);
        this.#nextFree = start + size / s.bytesPerSecond * 1000;
      }
      const part = bytes.subarray(at, at + size);
      for (let done = 0; done < part.length;) {
        done += await this.#dst.write(part.subarray(done));
      }
      at += size;
      this.bytesForwarded += size;
      if (s.sliceBytes !== undefined && at < bytes.length) {
        await delay(s.sliceDelayMs ?? 0);
      }
    }
  }
}

/** One client connection and its connection to the target. */
class Link {
  readonly client: Deno.TcpConn;
  readonly target: Deno.TcpConn;
  readonly up: Pipe;
  readonly down: Pipe;
  #closed = false;

  constructor(proxy: FaultProxy, client: Deno.TcpConn, target: Deno.TcpConn) {
    this.client = client;
    this.target = target;
    this.up = new Pipe(proxy, "up", client, target);
    this.down = new Pipe(proxy, "down", target, client);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.client.close();
    this.target.close();
    this.up.wake();
    this.down.wake();
  }
}

/** A fault-injecting TCP proxy on 127.0.0.1. */
export class FaultProxy implements AsyncDisposable {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #settings: Record<FaultDirection, FaultSettings>;
  readonly #links = new Set<Link>();
  readonly #tasks = new Set<Promise<void>>();
  #closed = false;
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(options: FaultProxyOptions) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = this.#listener.addr.port;
    this.#target = {
      hostname: options.target.hostname ?? "127.0.0.1",
      port: options.target.port,
    };
    this.#settings = { up: { ...options.up }, down: { ...options.down } };
    this.#track(this.#accept());
  }

  /** Starts a proxy toward `options.target`. */
  static listen(options: FaultProxyOptions): FaultProxy {
    return new FaultProxy(options);
  }

  /** Live proxied connections. */
  get connections(): number {
    return this.#links.size;
  }

  /** The current faults of one direction. */
  settings(direction: FaultDirection): Readonly<FaultSettings> {
    return this.#settings[direction];
  }

  /**
   * Changes faults of one or both directions; fields given replace the
   * current ones (`undefined` clears a fault). Applies to bytes read from
   * now on, and to every connection, current and future.
   */
  set(
    direction: FaultDirection | "both",
    settings: { [K in keyof FaultSettings]?: FaultSettings[K] | undefined },
  ): void {
    const dirs: FaultDirection[] = direction === "both"
      ? ["up", "down"]
      : [direction];
    for (const d of dirs) {
      const next: FaultSettings = { ...this.#settings[d] };
      for (const [key, value] of Object.entries(settings)) {
        const k = key as keyof FaultSettings;
        if (value === undefined) delete next[k];
        else (next as Record<string, unknown>)[k] = value;
      }
      this.#settings[d] = next;
    }
  }

  /** Removes every fault. */
  clear(): void {
    this.#settings.up = {};
    this.#settings.down = {};
  }

  /** Starts or stops dropping everything, both directions. */
  blackhole(on = true): void {
    this.set("both", { blackhole: on });
  }

  /**
   * Half-closes every current connection in one direction: `up` shuts
   * the target's read side (it sees EOF), `down` the client's.
   */
  halfClose(direction: FaultDirection): void {
    for (const link of this.#links) link[direction].closeWrite();
  }

  /** Closes every current connection abruptly (both sockets). */
  reset(): void {
    for (const link of [...this.#links]) link.close();
  }

  /** Stops listening, closes every connection, and waits. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#listener.close();
      this.reset();
    }
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #track(task: Promise<void>): void {
    const tracked = task.catch(() => {}).finally(() =>
      this.#tasks.delete(tracked)
    );
    this.#tasks.add(tracked);
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        if (this.#closed) return;
        await delay(50);
        continue;
      }
      this.accepted++;
      this.#track(this.#serve(client));
    }
  }

  async #serve(client: Deno.TcpConn): Promise<void> {
    let target: Deno.TcpConn;
    try {
      target = await Deno.connect(this.#target);
    } catch {
      client.close();
      return;
    }
    if (this.#closed) {
      client.close();
      target.close();
      return;
    }
    client.setNoDelay(true);
    target.setNoDelay(true);
    const link = new Link(this, client, target);
    this.#links.add(link);
    try {
      await Promise.all([link.up.run(), link.down.run()]);
    } finally {
      this.#links.delete(link);
      link.close();
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
