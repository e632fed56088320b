// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The chunk stream of one tunnel, at either end: frames written through a
 * queue (control frames first, data in order, small frames coalesced),
 * frames read and dispatched to streams, `PING`/`PONG`, `ZRST`, and lost
 * compressed frames. Relays and connectors extend it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type Chunk,
  ChunkDecoder,
  ChunkEncoder,
  type EofFlags,
  type LostChunk,
} from "../protocol/mod.ts";
import { isDisconnectError, writeAll } from "./_io.ts";
import {
  type StreamLimits,
  type StreamLink,
  type StreamStats,
  TunnelStream,
} from "./stream.ts";

/** Queued frames are written in batches of up to this many bytes. */
const BATCH_BYTES = 64 * 1024;
/** Finished SIDs remembered so late frames for them are dropped quietly. */
const MAX_GONE_SIDS = 1024;
const BANG = new TextEncoder().encode("!");

/** Settings of a tunnel link. */
export interface LinkSettings extends StreamLimits {
  /** Compress data frames (the peer advertised ZChunks). */
  compress: boolean;
  /** zlib level of compressed frames. */
  compressionLevel: number;
  /** Largest frame accepted from the peer. */
  maxChunkSize: number;
  /** Bytes queued toward the peer before streams stop reading. */
  queueBytes: number;
  /** Clock in milliseconds. */
  now: () => number;
}

/** Counters of a link. */
export interface LinkStats {
  /** The peer's address, `ip:port`. */
  remote: string;
  /** Open streams. */
  streams: number;
  /** Bytes received from the peer. */
  bytesIn: number;
  /** Bytes written to the peer. */
  bytesOut: number;
  /** Bytes queued toward the peer. */
  queued: number;
  /** Frames received. */
  framesIn: number;
  /** Frames received compressed. */
  compressedFramesIn: number;
  /** Frames sent. */
  framesOut: number;
  /** Frames sent compressed. */
  compressedFramesOut: number;
  /** Whether frames toward the peer may be compressed. */
  compress: boolean;
  /** When the link was opened (ms). */
  connectedAt: number;
  /** When the peer was last heard from (ms). */
  lastReceivedAt: number;
  /** Smoothed round-trip time of PINGs, in ms, once measured. */
  rttMs?: number;
}

/** A tunnel's chunk stream and its streams. */
export class TunnelLink implements StreamLink {
  readonly conn: Deno.Conn;
  readonly connectedAt: number;
  /** When something last arrived. */
  lastReceivedAt: number;
  /** When the last unanswered PING went out. */
  pingSentAt: number | undefined;
  protected readonly settings: LinkSettings;
  protected readonly log = getLogger(["kitewire", "tunnel"]);
  protected readonly streams = new Map<number, TunnelStream>();
  /** SIDs of finished streams, oldest first: the peer was told. */
  readonly #gone = new Set<number>();
  readonly #encoder: ChunkEncoder;
  readonly #decoder: ChunkDecoder;
  #control: Uint8Array[] = [];
  #data: Uint8Array[] = [];
  #queued = 0;
  /** Bytes of `#control` frames queued. */
  #controlQueued = 0;
  #writing = false;
  #batch: Uint8Array | undefined;
  #waiters: (() => void)[] = [];
  #bytesIn = 0;
  #bytesOut = 0;
  #rttMs: number | undefined;
  #closed = false;
  /** Frames wait until start(): the handshake answer goes first. */
  #started = false;
  #task: Promise<void> | undefined;

  constructor(conn: Deno.Conn, settings: LinkSettings) {
    this.conn = conn;
    this.settings = settings;
    this.#encoder = new ChunkEncoder({
      compress: settings.compress,
      compressionLevel: settings.compressionLevel,
    });
    this.#decoder = new ChunkDecoder({ maxChunkSize: settings.maxChunkSize });
    this.connectedAt = this.lastReceivedAt = settings.now();
  }

  /** Whether the link is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** How many streams are open. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** The peer's address, `ip:port`. */
  get remote(): string {
    const addr = this.conn.remoteAddr as Deno.NetAddr;
    return `${addr.hostname}:${addr.port}`;
  }

  /**
   * Starts writing queued frames and reading the peer's (`initial` holds
   * bytes that arrived with the handshake). Resolves when the link closes.
   */
  start(initial: Uint8Array): Promise<void> {
    this.#started = true;
    if (this.#queued > 0 && !this.#writing) void this.#flush();
    this.#task ??= this.#read(initial);
    return this.#task;
  }

  /** Queues a control chunk (never compressed, sent before queued data). */
  sendControl(chunk: Chunk): void {
    if (this.#closed) return;
    this.#enqueue(this.#control, this.#encoder.encode(chunk));
  }

  /** Queues a stream chunk, in order with the stream's other chunks. */
  sendChunk(chunk: Chunk): void {
    if (this.#closed) return;
    this.#enqueue(this.#data, this.#encoder.encode(chunk));
  }

  /** Queues stream data or an EOF. */
  sendData(sid: number, body: Uint8Array, eof?: EofFlags): void {
    this.sendChunk(eof === undefined ? { sid, body } : { sid, eof, body });
  }

  /** Queues an `SKB` report for a stream. */
  sendSkb(sid: number, kib: number): void {
    this.sendControl({ noop: true, sid, skb: kib, body: new Uint8Array() });
  }

  /**
   * Sends a `PING` unless one is outstanding: sent, and nothing heard
   * since. (libpagekite answers with a bare NOOP, which counts.)
   */
  ping(): void {
    if (this.#closed) return;
    if (
      this.pingSentAt !== undefined && this.lastReceivedAt <= this.pingSentAt
    ) return;
    this.pingSentAt = this.settings.now();
    const value = (this.pingSentAt / 1000).toFixed(4);
    this.sendControl({ noop: true, ping: value, body: BANG });
  }

  /** Resolves when the write queue has room (or the link closed). */
  writable(): Promise<void> {
    if (this.#queued < this.settings.queueBytes || this.#closed) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** A new stream object registered under `sid`. */
  protected addStream(
    sid: number,
    route: { proto: string; host: string },
  ): TunnelStream {
    const stream = new TunnelStream(sid, route, this, this.settings);
    this.streams.set(sid, stream);
    this.#gone.delete(sid);
    return stream;
  }

  /**
   * Reports `SKB: 0` for a new stream. pagekite.py throttles a stream only
   * once it has seen an SKB for it; without one it sends as fast as its
   * endpoint delivers, however slow ours is.
   */
  protected sendFirstSkb(sid: number): void {
    this.sendChunk({ noop: true, sid, skb: 0, body: new Uint8Array() });
  }

  /** Forgets a finished stream. */
  forget(sid: number): void {
    this.streams.delete(sid);
    this.#markGone(sid);
  }

  /** Whether `sid` belonged to a stream that finished recently. */
  protected isGone(sid: number): boolean {
    return this.#gone.has(sid);
  }

  #markGone(sid: number): void {
    this.#gone.add(sid);
    if (this.#gone.size > MAX_GONE_SIDS) {
      this.#gone.delete(this.#gone.values().next().value!);
    }
  }

  /** Closes the link and every stream on it. Idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.log.debug("Tunnel with {remote} closed: {reason}", {
      remote: this.remote,
      reason,
    });
    for (const stream of this.streams.values()) stream.drop();
    this.streams.clear();
    this.#control = [];
    this.#data = [];
    this.#queued = 0;
    this.#controlQueued = 0;
    for (const wake of this.#waiters.splice(0)) wake();
    this.conn[Symbol.dispose]();
    this.onClosed(reason);
  }

  /** Counters of the link. */
  linkStats(): LinkStats {
    const stats: LinkStats = {
      remote: this.remote,
      streams: this.streams.size,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      queued: this.#queued,
      framesIn: this.#decoder.frames,
      compressedFramesIn: this.#decoder.compressedFrames,
      framesOut: this.#encoder.frames,
      compressedFramesOut: this.#encoder.compressedFrames,
      compress: this.#encoder.compressing,
      connectedAt: this.connectedAt,
      lastReceivedAt: this.lastReceivedAt,
    };
    if (this.#rttMs !== undefined) stats.rttMs = this.#rttMs;
    return stats;
  }

  /** Snapshots of the open streams. */
  streamStats(): StreamStats[] {
    return [...this.streams.values()].map((s) => s.stats());
  }

  /** A NOOP chunk with headers other than SKB/PING/PONG arrived. */
  protected onNoop(_chunk: Chunk): void {}

  /**
   * A stream chunk for a SID with no stream. The default answers EOF so
   * the peer forgets it; a connector opens a stream here instead.
   */
  protected onUnknownStream(chunk: Chunk): void {
    this.refuseStream(chunk);
  }

  /**
   * Tells the peer a stream is gone (`EOF: 1WR`), once per SID: frames
   * still in flight after a close must not each get an EOF, since a burst
   * of tiny frames makes pagekite.py kill the tunnel.
   */
  protected refuseStream(chunk: Chunk): void {
    const sid = chunk.sid!;
    if (chunk.eof !== undefined || this.#gone.has(sid)) return;
    this.#markGone(sid);
    // A peer that floods unknown SIDs and reads nothing gets no answers
    // once the queue is full, so it cannot make us hold more.
    if (this.#queued >= this.settings.queueBytes) return;
    this.sendData(sid, new Uint8Array(), "RW");
  }

  /** A PONG answered our PING. */
  protected onPong(): void {}

  /** The link closed. */
  protected onClosed(_reason: string): void {}

  /** Reports an error that ended the link. */
  protected onError(error: unknown): void {
    this.log.warn("Tunnel with {remote} failed: {error}", {
      remote: this.remote,
      error,
    });
  }

  #enqueue(queue: Uint8Array[], frame: Uint8Array): void {
    queue.push(frame);
    this.#queued += frame.length;
    if (queue === this.#control) this.#controlQueued += frame.length;
    if (this.#started && !this.#writing) void this.#flush();
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    const batch = this.#batch ??= new Uint8Array(BATCH_BYTES);
    try {
      while (!this.#closed) {
        const queue = this.#control.length > 0 ? this.#control : this.#data;
        const first = queue.shift();
        if (first === undefined) break;
        let bytes = first;
        if (first.length < BATCH_BYTES && queue.length > 0) {
          // Coalesce small frames into one write.
          batch.set(first);
          let used = first.length;
          while (queue.length > 0 && used + queue[0]!.length <= BATCH_BYTES) {
            const next = queue.shift()!;
            batch.set(next, used);
            used += next.length;
          }
          bytes = batch.subarray(0, used);
        }
        await writeAll(this.conn, bytes);
        this.#bytesOut += bytes.length;
        this.#queued -= bytes.length;
        if (queue === this.#control) this.#controlQueued -= bytes.length;
        if (this.#queued < this.settings.queueBytes) {
          for (const wake of this.#waiters.splice(0)) wake();
        }
      }
    } catch (error) {
      if (!isDisconnectError(error)) this.onError(error);
      this.close("writing to the peer failed");
    } finally {
      this.#writing = false;
    }
  }

  async #read(initial: Uint8Array): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let reason = "the peer closed the tunnel";
    try {
      if (initial.length > 0) this.#received(initial);
      while (!this.#closed) {
        const n = await this.conn.read(buffer);
        if (n === null) break;
        this.#received(buffer.subarray(0, n));
      }
    } catch (error) {
      if (!this.#closed) {
        if (isDisconnectError(error)) {
          reason = `the connection failed: ${(error as Error).message}`;
        } else {
          reason = error instanceof Error ? error.message : String(error);
          this.onError(error);
        }
      }
    }
    this.close(reason);
  }

  #received(bytes: Uint8Array): void {
    this.lastReceivedAt = this.settings.now();
    this.#bytesIn += bytes.length;
    this.#decoder.push(bytes);
    for (;;) {
      let chunk: Chunk | LostChunk | null;
      try {
        chunk = this.#decoder.next();
      } catch (error) {
        if (this.#decoder.failed) throw error;
        // A well-framed chunk with bad headers: skip it, keep the rest.
        this.log.warn("Tunnel with {remote}: skipping a bad chunk: {error}", {
          remote: this.remote,
          error,
        });
        continue;
      }
      if (chunk === null) return;
      if ("lost" in chunk) this.#lost(chunk);
      else this.#dispatch(chunk);
    }
  }

  #lost(chunk: LostChunk): void {
    this.log.warn("Tunnel with {remote}: {reason}", {
      remote: this.remote,
      reason: chunk.reason,
    });
    if (chunk.sendZrst) {
      this.sendControl({ noop: true, zrst: true, body: BANG });
    }
    // Data of some stream is gone: close it, or every stream when the
    // frame's headers could not be read.
    const affected = chunk.sid === undefined
      ? [...this.streams.values()]
      : [this.streams.get(chunk.sid)].filter((s) => s !== undefined);
    for (const stream of affected) stream.abort();
  }

  #dispatch(chunk: Chunk): void {
    if (chunk.zrst === true) this.#encoder.resetCompression();
    // A peer that floods PINGs and reads no PONGs gets none past the
    // queue limit: they would only pile up in memory.
    if (
      chunk.ping !== undefined &&
      this.#controlQueued < this.settings.queueBytes
    ) {
      this.sendControl({
        noop: true,
        pong: chunk.ping.slice(0, 64),
        body: BANG,
      });
    }
    if (chunk.pong !== undefined) this.#pong();
    if (chunk.noop === true) {
      if (chunk.sid !== undefined && chunk.skb !== undefined) {
        this.streams.get(chunk.sid)?.acknowledge(chunk.skb);
      }
      if (chunk.headers !== undefined) this.onNoop(chunk);
      return;
    }
    const stream = this.streams.get(chunk.sid!);
    if (stream === undefined) {
      this.onUnknownStream(chunk);
      return;
    }
    if (chunk.proto !== undefined) {
      // A second opening for a live SID: whose bytes the stream carries is
      // no longer clear. Close it (EOF), and deliver or dial nothing.
      this.log.warn("Tunnel with {remote}: SID {sid} opened twice", {
        remote: this.remote,
        sid: stream.sid,
      });
      stream.abort();
      return;
    }
    if (chunk.body.length > 0) stream.deliver(chunk.body);
    if (chunk.eof !== undefined) stream.end(chunk.eof);
  }

  #pong(): void {
    if (this.pingSentAt === undefined) return;
    const rtt = this.settings.now() - this.pingSentAt;
    this.#rttMs = this.#rttMs === undefined
      ? rtt
      : 0.9 * this.#rttMs + 0.1 * rtt;
    this.pingSentAt = undefined;
  }
}
