// Copyright 2026 the Kitewire authors. MIT license.
/**
 * One user connection relayed over a tunnel (spec §3.5, §3.6, §4.6): the
 * pump from the user into the tunnel, the queue from the tunnel to the
 * user, `SKB` flow control both ways, and half-close with `EOF` flags.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { EofFlags } from "../protocol/mod.ts";
import { isDisconnectError, writeAll } from "../tunnel/_io.ts";

/** Report written bytes to the connector at least every this many. */
const SKB_EVERY_BYTES = 16 * 1024;
/** The user socket is read in pieces of at most this size. */
const READ_BUFFER_BYTES = 16 * 1024;

/** What a stream needs from its tunnel. */
export interface StreamTunnel {
  /** Queues a stream chunk (data or EOF) in order with other data. */
  sendData(sid: number, body: Uint8Array, eof?: EofFlags): void;
  /** Queues a flow-control report. */
  sendSkb(sid: number, kib: number): void;
  /** Resolves when the tunnel's queue has room. */
  writable(): Promise<void>;
  /** Forgets a finished stream. */
  forget(sid: number): void;
  /** Whether the tunnel is closed. */
  readonly closed: boolean;
}

/** Limits of one stream. */
export interface StreamLimits {
  /** Bytes sent ahead of the connector's SKB before reading pauses. */
  windowBytes: number;
  /** Bytes waiting for the user before the stream is closed. */
  maxBufferBytes: number;
}

/** What {@linkcode RelayStream.stats} reports. */
export interface StreamStats {
  /** The stream id. */
  sid: number;
  /** The kite protocol (`Proto`). */
  proto: string;
  /** The host the user asked for. */
  host: string;
  /** The user's address, `ip:port`. */
  remote: string;
  /** Bytes read from the user and sent into the tunnel. */
  bytesIn: number;
  /** Bytes written to the user. */
  bytesOut: number;
  /** Bytes received from the connector and not yet written to the user. */
  buffered: number;
}

/** A user connection relayed over a tunnel. */
export class RelayStream {
  readonly sid: number;
  readonly proto: string;
  readonly host: string;
  readonly #conn: Deno.Conn;
  readonly #tunnel: StreamTunnel;
  readonly #limits: StreamLimits;
  readonly #log = getLogger(["kitewire", "relay", "stream"]);

  #bytesIn = 0;
  #bytesOut = 0;
  /** The connector's last SKB, in KiB; undefined until the first. */
  #peerKib: number | undefined;
  #resumeReading: (() => void) | null = null;
  #queue: Uint8Array[] = [];
  #buffered = 0;
  #writing = false;
  #reportedKib = 0;
  /** The connector will send no more: close our write side once flushed. */
  #endWrite = false;
  /** The connector closed the stream: close the socket once flushed. */
  #endAll = false;
  #readDone = false;
  #writeDone = false;
  #finished = false;
  #task: Promise<void> | undefined;

  constructor(
    sid: number,
    route: { proto: string; host: string },
    conn: Deno.Conn,
    tunnel: StreamTunnel,
    limits: StreamLimits,
  ) {
    this.sid = sid;
    this.proto = route.proto;
    this.host = route.host;
    this.#conn = conn;
    this.#tunnel = tunnel;
    this.#limits = limits;
  }

  /** Starts pumping the user's bytes into the tunnel; resolves when done. */
  start(): Promise<void> {
    this.#task ??= this.#pump();
    return this.#task;
  }

  /** Queues bytes from the connector for the user (copies them). */
  deliver(body: Uint8Array): void {
    if (this.#finished || this.#writeDone || body.length === 0) return;
    this.#queue.push(body.slice());
    this.#buffered += body.length;
    if (this.#buffered > this.#limits.maxBufferBytes) {
      this.#log.warn(
        "Closing stream {sid}: {buffered} bytes wait for a slow user, over maxStreamBufferBytes {max} (the connector ignores SKB)",
        {
          sid: this.sid,
          buffered: this.#buffered,
          max: this.#limits.maxBufferBytes,
        },
      );
      this.abort();
      return;
    }
    if (!this.#writing) void this.#flush();
  }

  /** The connector reported writing `kib` KiB to its endpoint. */
  acknowledge(kib: number): void {
    this.#peerKib = kib;
    this.#wake();
  }

  /** The connector closed its side (`EOF` flags are the sender's). */
  end(flags: EofFlags): void {
    if (this.#finished) return;
    if (flags === "R" || flags === "RW") this.#endWrite = true;
    if (flags === "W" || flags === "RW") {
      // The connector cannot deliver more: stop reading the user.
      this.#readDone = true;
      this.#wake();
    }
    if (flags === "RW") this.#endAll = true;
    if (!this.#writing) void this.#flush();
  }

  /** Closes the stream at once, telling the connector. */
  abort(): void {
    if (this.#finished) return;
    this.#readDone = this.#writeDone = true;
    this.#queue = [];
    this.#buffered = 0;
    this.#finish();
  }

  /** Closes the user connection without telling anyone (tunnel gone). */
  drop(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#queue = [];
    this.#buffered = 0;
    this.#wake();
    this.#conn[Symbol.dispose]();
  }

  /** A snapshot of the stream's counters. */
  stats(): StreamStats {
    const addr = this.#conn.remoteAddr as Deno.NetAddr;
    return {
      sid: this.sid,
      proto: this.proto,
      host: this.host,
      remote: `${addr.hostname}:${addr.port}`,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      buffered: this.#buffered,
    };
  }

  async #pump(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    let sawEof = false;
    try {
      for (;;) {
        await this.#mayRead();
        if (this.#readDone || this.#finished) break;
        const n = await this.#conn.read(buffer);
        if (n === null) {
          sawEof = true;
          break;
        }
        if (this.#readDone || this.#finished) break;
        this.#bytesIn += n;
        this.#tunnel.sendData(this.sid, buffer.subarray(0, n));
      }
    } catch (error) {
      if (!this.#finished && !isDisconnectError(error)) {
        this.#log.warn("Stream {sid}: reading the user failed: {error}", {
          sid: this.sid,
          error,
        });
      }
      // A reset user can take no more data either.
      if (!this.#finished) this.abort();
      return;
    }
    if (this.#finished) return;
    if (sawEof && !this.#readDone) {
      this.#tunnel.sendData(this.sid, new Uint8Array(0), "R");
    }
    this.#readDone = true;
    this.#maybeFinish();
  }

  /** Waits while the stream is a window ahead or the tunnel is full. */
  async #mayRead(): Promise<void> {
    for (;;) {
      if (this.#readDone || this.#finished || this.#tunnel.closed) return;
      const ahead = this.#peerKib === undefined
        ? 0
        : this.#bytesIn - this.#peerKib * 1024;
      if (ahead <= this.#limits.windowBytes) break;
      await new Promise<void>((resolve) => this.#resumeReading = resolve);
    }
    await this.#tunnel.writable();
  }

  #wake(): void {
    const resume = this.#resumeReading;
    this.#resumeReading = null;
    resume?.();
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#finished) {
        const chunk = this.#queue.shift()!;
        await writeAll(this.#conn, chunk);
        this.#buffered -= chunk.length;
        this.#bytesOut += chunk.length;
        this.#report(this.#queue.length === 0);
      }
      if (this.#finished) return;
      if (this.#endAll) {
        this.#writeDone = this.#readDone = true;
      } else if (this.#endWrite && !this.#writeDone) {
        this.#writeDone = true;
        await this.#conn.closeWrite();
      }
    } catch (error) {
      if (this.#finished) return;
      if (!isDisconnectError(error)) {
        this.#log.warn("Stream {sid}: writing to the user failed: {error}", {
          sid: this.sid,
          error,
        });
      }
      // "I can no longer write to my endpoint."
      this.#writeDone = true;
      this.#queue = [];
      this.#buffered = 0;
      if (!this.#readDone) {
        this.#tunnel.sendData(this.sid, new Uint8Array(0), "W");
      }
    } finally {
      this.#writing = false;
    }
    this.#maybeFinish();
  }

  /** Sends SKB every 16 KiB written, and when the queue drains. */
  #report(drained: boolean): void {
    const kib = Math.floor(this.#bytesOut / 1024);
    if (kib <= this.#reportedKib) return;
    if (drained || (kib - this.#reportedKib) * 1024 >= SKB_EVERY_BYTES) {
      this.#reportedKib = kib;
      this.#tunnel.sendSkb(this.sid, kib);
    }
  }

  #maybeFinish(): void {
    if (this.#readDone && this.#writeDone && !this.#writing) this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#wake();
    this.#conn[Symbol.dispose]();
    if (!this.#tunnel.closed) {
      if (!this.#endAll) {
        this.#tunnel.sendData(this.sid, new Uint8Array(0), "RW");
      }
      this.#tunnel.forget(this.sid);
    }
  }
}
