// Copyright 2026 the Kitewire authors. MIT license.
/**
 * One stream of a tunnel, at either end (spec §3.5, §3.6): the pump from
 * the local endpoint (a user at the relay, a service at the connector)
 * into the tunnel, the queue from the tunnel to the endpoint, `SKB` flow
 * control both ways, and half-close with `EOF` flags.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { EofFlags } from "../protocol/mod.ts";
import { isDisconnectError, writeAll } from "./_io.ts";

/** Report written bytes to the peer at least every this many. */
const SKB_EVERY_BYTES = 16 * 1024;
/**
 * While a backlog is written out, reports of one stream are at least this
 * far apart (the report when it is written out always goes).
 */
const SKB_BACKLOG_INTERVAL_MS = 5;
/** The endpoint is read in pieces of at most this size. */
const READ_BUFFER_BYTES = 16 * 1024;

/** What a stream needs from its tunnel. */
export interface StreamLink {
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
  /** Bytes sent ahead of the peer's SKB before reading pauses. */
  windowBytes: number;
  /** Bytes waiting for the endpoint before the stream is closed. */
  maxBufferBytes: number;
  /** Clock in milliseconds. */
  now: () => number;
}

/**
 * What the endpoint gets of the bytes that come through the tunnel: the
 * connector rewrites HTTP requests on their way to the local service.
 */
export interface StreamFilterOutput {
  /** Bytes for the endpoint, in order. */
  forward: Uint8Array[];
  /** Bytes to send back through the tunnel (an error page). */
  reply?: Uint8Array;
  /** End the stream once `reply` is sent. */
  close?: boolean;
}

/** Rewrites the bytes that come through the tunnel for the endpoint. */
export type StreamFilter = (bytes: Uint8Array) => StreamFilterOutput;

/** What {@linkcode TunnelStream.stats} reports. */
export interface StreamStats {
  /** The stream id. */
  sid: number;
  /** The kite protocol (`Proto`). */
  proto: string;
  /** The kite host (`Host`). */
  host: string;
  /** The endpoint's address, `ip:port`, once connected. */
  remote: string;
  /** Bytes read from the endpoint and sent into the tunnel. */
  bytesIn: number;
  /** Bytes written to the endpoint. */
  bytesOut: number;
  /** Bytes received through the tunnel and not yet written. */
  buffered: number;
}

/** A stream of a tunnel and its local endpoint. */
export class TunnelStream {
  readonly sid: number;
  readonly proto: string;
  readonly host: string;
  readonly #link: StreamLink;
  readonly #limits: StreamLimits;
  readonly #log = getLogger(["kitewire", "tunnel", "stream"]);
  #conn: Deno.Conn | undefined;
  #filter: StreamFilter | undefined;

  #bytesIn = 0;
  #bytesOut = 0;
  /** The peer's last SKB, in KiB; undefined until the first. */
  #peerKib: number | undefined;
  #resumeReading: (() => void) | null = null;
  #queue: Uint8Array[] = [];
  #buffered = 0;
  /** How many pieces at the head of `#queue` came from prepend(). */
  #prepended = 0;
  #writing = false;
  #reportedKib = 0;
  #reportedAt = -Infinity;
  /** The peer will send no more: close our write side once flushed. */
  #endWrite = false;
  /** The peer closed the stream: close the endpoint once flushed. */
  #endAll = false;
  /** Close the stream once the queue is flushed (a filter said so). */
  #closeAfterFlush = false;
  #readDone = false;
  #writeDone = false;
  #finished = false;
  #task: Promise<void> | undefined;

  constructor(
    sid: number,
    route: { proto: string; host: string },
    link: StreamLink,
    limits: StreamLimits,
  ) {
    this.sid = sid;
    this.proto = route.proto;
    this.host = route.host;
    this.#link = link;
    this.#limits = limits;
  }

  /** Whether the stream has ended. */
  get finished(): boolean {
    return this.#finished;
  }

  /**
   * Connects the endpoint and starts relaying; bytes that came through
   * the tunnel before are written first. Resolves when the endpoint's
   * side is done.
   */
  attach(conn: Deno.Conn, filter?: StreamFilter): Promise<void> {
    if (this.#finished) {
      conn[Symbol.dispose]();
      return Promise.resolve();
    }
    this.#conn = conn;
    this.#filter = filter;
    if (filter !== undefined && this.#queue.length > this.#prepended) {
      // Prepended bytes (a PROXY line) are not the user's: no filtering.
      const early = this.#queue.splice(this.#prepended);
      for (const bytes of early) this.#buffered -= bytes.length;
      for (const bytes of early) this.#accept(bytes);
    }
    if (!this.#writing) void this.#flush();
    this.#task ??= this.#pump();
    return this.#task;
  }

  /** Queues bytes from the tunnel for the endpoint (copies them). */
  deliver(body: Uint8Array): void {
    if (this.#finished || this.#writeDone || body.length === 0) return;
    if (this.#conn !== undefined && this.#filter !== undefined) {
      this.#accept(body.slice());
    } else {
      this.#enqueue(body.slice());
    }
    if (this.#buffered > this.#limits.maxBufferBytes) {
      this.#log.warn(
        "Closing stream {sid}: {buffered} bytes wait for a slow endpoint, over maxStreamBufferBytes {max}",
        {
          sid: this.sid,
          buffered: this.#buffered,
          max: this.#limits.maxBufferBytes,
        },
      );
      this.abort();
      return;
    }
    if (this.#conn !== undefined && !this.#writing) void this.#flush();
  }

  /** Queues bytes for the endpoint ahead of anything from the tunnel. */
  prepend(bytes: Uint8Array): void {
    this.#queue.unshift(bytes);
    this.#buffered += bytes.length;
    this.#prepended++;
  }

  /** The peer reported writing `kib` KiB to its endpoint. */
  acknowledge(kib: number): void {
    this.#peerKib = kib;
    this.#wake();
  }

  /** The peer closed its side (`EOF` flags are the sender's). */
  end(flags: EofFlags): void {
    if (this.#finished) return;
    if (flags === "R" || flags === "RW") this.#endWrite = true;
    if (flags === "W" || flags === "RW") {
      // The peer cannot deliver more: stop reading the endpoint.
      this.#readDone = true;
      this.#wake();
    }
    if (flags === "RW") this.#endAll = true;
    if (this.#conn === undefined) {
      if (flags === "RW") {
        // Closed before the endpoint was connected: nothing to flush.
        this.drop();
        this.#link.forget(this.sid);
      }
      return;
    }
    if (!this.#writing) void this.#flush();
  }

  /** Closes the stream at once, telling the peer. */
  abort(): void {
    if (this.#finished) return;
    this.#readDone = this.#writeDone = true;
    this.#queue = [];
    this.#buffered = 0;
    this.#finish();
  }

  /** Closes the endpoint without telling anyone (the tunnel is gone). */
  drop(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#queue = [];
    this.#buffered = 0;
    this.#wake();
    this.#conn?.[Symbol.dispose]();
  }

  /** A snapshot of the stream's counters. */
  stats(): StreamStats {
    const addr = this.#conn?.remoteAddr as Deno.NetAddr | undefined;
    return {
      sid: this.sid,
      proto: this.proto,
      host: this.host,
      remote: addr === undefined ? "" : `${addr.hostname}:${addr.port}`,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      buffered: this.#buffered,
    };
  }

  #enqueue(bytes: Uint8Array): void {
    this.#queue.push(bytes);
    this.#buffered += bytes.length;
  }

  /** Runs our own copy of some bytes through the filter. */
  #accept(bytes: Uint8Array): void {
    const out = this.#filter!(bytes);
    for (const part of out.forward) this.#enqueue(part);
    if (out.reply !== undefined) {
      this.#link.sendData(this.sid, out.reply);
    }
    if (out.close === true) {
      this.#closeAfterFlush = true;
      this.#readDone = true;
      this.#wake();
    }
  }

  async #pump(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    const conn = this.#conn!;
    let sawEof = false;
    try {
      for (;;) {
        await this.#mayRead();
        if (this.#readDone || this.#finished) break;
        const n = await conn.read(buffer);
        if (n === null) {
          sawEof = true;
          break;
        }
        if (this.#readDone || this.#finished) break;
        this.#bytesIn += n;
        this.#link.sendData(this.sid, buffer.subarray(0, n));
      }
    } catch (error) {
      if (!this.#finished && !isDisconnectError(error)) {
        this.#log.warn("Stream {sid}: reading the endpoint failed: {error}", {
          sid: this.sid,
          error,
        });
      }
      // A reset endpoint can take no more data either.
      if (!this.#finished) this.abort();
      return;
    }
    if (this.#finished) return;
    if (sawEof && !this.#readDone) {
      this.#link.sendData(this.sid, new Uint8Array(0), "R");
    }
    this.#readDone = true;
    this.#maybeFinish();
  }

  /** Waits while the stream is a window ahead or the tunnel is full. */
  async #mayRead(): Promise<void> {
    for (;;) {
      if (this.#readDone || this.#finished || this.#link.closed) return;
      const ahead = this.#peerKib === undefined
        ? 0
        : this.#bytesIn - this.#peerKib * 1024;
      if (ahead <= this.#limits.windowBytes) break;
      await new Promise<void>((resolve) => this.#resumeReading = resolve);
    }
    await this.#link.writable();
  }

  #wake(): void {
    const resume = this.#resumeReading;
    this.#resumeReading = null;
    resume?.();
  }

  async #flush(): Promise<void> {
    const conn = this.#conn!;
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#finished) {
        const chunk = this.#queue.shift()!;
        await writeAll(conn, chunk);
        this.#buffered -= chunk.length;
        this.#bytesOut += chunk.length;
        this.#report(this.#queue.length === 0);
      }
      if (this.#finished) return;
      if (this.#endAll || this.#closeAfterFlush) {
        this.#writeDone = this.#readDone = true;
      } else if (this.#endWrite && !this.#writeDone) {
        this.#writeDone = true;
        await conn.closeWrite();
      }
    } catch (error) {
      if (this.#finished) return;
      if (!isDisconnectError(error)) {
        this.#log.warn(
          "Stream {sid}: writing to the endpoint failed: {error}",
          {
            sid: this.sid,
            error,
          },
        );
      }
      // "I can no longer write to my endpoint."
      this.#writeDone = true;
      this.#queue = [];
      this.#buffered = 0;
      if (!this.#readDone) {
        this.#link.sendData(this.sid, new Uint8Array(0), "W");
      }
    } finally {
      this.#writing = false;
    }
    this.#maybeFinish();
  }

  /**
   * Sends SKB when the queue drains and, while it does not, every 16 KiB
   * written but at most every `SKB_BACKLOG_INTERVAL_MS`. A backlog written
   * out fast so gets no report per 16 KiB: when many streams did that at
   * once, their reports reached a busy peer as one burst, and pagekite.py
   * kills a tunnel that delivers more than 150 frames in one read.
   */
  #report(drained: boolean): void {
    const kib = Math.floor(this.#bytesOut / 1024);
    if (kib <= this.#reportedKib) return;
    const now = this.#limits.now();
    if (
      drained ||
      ((kib - this.#reportedKib) * 1024 >= SKB_EVERY_BYTES &&
        now - this.#reportedAt >= SKB_BACKLOG_INTERVAL_MS)
    ) {
      this.#reportedKib = kib;
      this.#reportedAt = now;
      this.#link.sendSkb(this.sid, kib);
    }
  }

  #maybeFinish(): void {
    if (this.#readDone && this.#writeDone && !this.#writing) this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#wake();
    this.#conn?.[Symbol.dispose]();
    if (!this.#link.closed) {
      if (!this.#endAll) {
        this.#link.sendData(this.sid, new Uint8Array(0), "RW");
      }
      this.#link.forget(this.sid);
    }
  }
}
