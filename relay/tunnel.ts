// Copyright 2026 the Kitewire authors. MIT license.
/**
 * A tunnel from a connector, as the relay sees it: the chunk stream in both
 * directions, the streams multiplexed over it, keepalive pings, and the
 * write queue that keeps a slow connector from stalling the relay.
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
import { isDisconnectError, writeAll } from "../tunnel/_io.ts";
import { RelayStream, type StreamStats, type StreamTunnel } from "./stream.ts";

/** Queued frames are written in batches of up to this many bytes. */
const BATCH_BYTES = 64 * 1024;
/** Largest SID; pagekite.py and libpagekite keep SIDs to 8 digits. */
const MAX_SID = 99_999_999;
/** Finished SIDs remembered so late frames for them are dropped quietly. */
const MAX_GONE_SIDS = 1024;
const BANG = new TextEncoder().encode("!");

/** What a tunnel needs from its relay. */
export interface TunnelHost {
  /** Answers kite lines that arrived inside a NOOP chunk (AddKites). */
  addKites(tunnel: Tunnel, headers: [string, string][]): Promise<void>;
  /** The tunnel closed: unregister its kites. */
  closed(tunnel: Tunnel): void;
  /** Reports an error that ended a tunnel or stream. */
  report(error: unknown): void;
}

/** Settings of one tunnel. */
export interface TunnelSettings {
  /** Compress data frames (the connector advertised ZChunks). */
  compress: boolean;
  compressionLevel: number;
  maxChunkSize: number;
  queueBytes: number;
  maxStreams: number;
  windowBytes: number;
  maxStreamBufferBytes: number;
  now: () => number;
}

/** What {@linkcode Tunnel.stats} reports. */
export interface TunnelStats {
  /** The tunnel's number within the relay. */
  id: number;
  /** The connector's address, `ip:port`. */
  remote: string;
  /** Live kites, `proto[-port]:domain`. */
  kites: string[];
  /** Features the connector advertised. */
  features: string[];
  /** Whether frames toward the connector may be compressed. */
  compress: boolean;
  /** Open streams. */
  streams: number;
  /** Bytes received from the connector. */
  bytesIn: number;
  /** Bytes written to the connector. */
  bytesOut: number;
  /** Bytes queued toward the connector. */
  queued: number;
  /** Frames received, and how many of them were compressed. */
  framesIn: number;
  compressedFramesIn: number;
  /** Frames sent, and how many of them were compressed. */
  framesOut: number;
  compressedFramesOut: number;
  /** When the tunnel was opened and last heard from (ms). */
  connectedAt: number;
  lastReceivedAt: number;
}

/** A connector's tunnel. */
export class Tunnel implements StreamTunnel {
  readonly id: number;
  readonly conn: Deno.Conn;
  readonly features: readonly string[];
  /** Live kites on this tunnel: key → registration key parts. */
  readonly kites = new Set<string>();
  /** Session ids handed to this connector (each answer gets one). */
  readonly sessionIds = new Set<string>();
  /** Kites already re-challenged after a bad token on this tunnel. */
  readonly rechallenged = new Set<string>();
  readonly connectedAt: number;
  lastReceivedAt: number;
  /** When the last unanswered PING went out. */
  pingSentAt: number | undefined;
  /** Close unless something arrives before this time (duplicate check). */
  reapAt: number | undefined;
  /** A kite-less tunnel is closed at this time. */
  lingerUntil: number | undefined;

  readonly #host: TunnelHost;
  readonly #settings: TunnelSettings;
  readonly #encoder: ChunkEncoder;
  readonly #decoder: ChunkDecoder;
  readonly #streams = new Map<number, RelayStream>();
  /** SIDs of finished streams, oldest first: the connector was told. */
  readonly #gone = new Set<number>();
  readonly #log = getLogger(["kitewire", "relay", "tunnel"]);
  #nextSid = 1;
  #control: Uint8Array[] = [];
  #data: Uint8Array[] = [];
  #queued = 0;
  #writing = false;
  /** Reused buffer for coalescing small frames into one write. */
  #batch: Uint8Array | undefined;
  #waiters: (() => void)[] = [];
  #bytesIn = 0;
  #bytesOut = 0;
  #closed = false;
  /** Frames wait until the handshake answer is written and start() runs. */
  #started = false;
  #task: Promise<void> | undefined;

  constructor(
    id: number,
    conn: Deno.Conn,
    features: readonly string[],
    host: TunnelHost,
    settings: TunnelSettings,
  ) {
    this.id = id;
    this.conn = conn;
    this.features = features;
    this.#host = host;
    this.#settings = settings;
    this.#encoder = new ChunkEncoder({
      compress: settings.compress,
      compressionLevel: settings.compressionLevel,
    });
    this.#decoder = new ChunkDecoder({ maxChunkSize: settings.maxChunkSize });
    this.connectedAt = this.lastReceivedAt = settings.now();
  }

  /** Whether the tunnel is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** How many streams are open. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** The remote address, `ip:port`. */
  get remote(): string {
    const addr = this.conn.remoteAddr as Deno.NetAddr;
    return `${addr.hostname}:${addr.port}`;
  }

  /**
   * Starts writing queued frames and reading chunks (`initial` holds bytes
   * that arrived with the tunnel request). Call it once the handshake
   * answer is written. Resolves when the tunnel is closed.
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
  sendData(sid: number, body: Uint8Array, eof?: EofFlags): void {
    if (this.#closed) return;
    const chunk: Chunk = eof === undefined ? { sid, body } : { sid, eof, body };
    this.#enqueue(this.#data, this.#encoder.encode(chunk));
  }

  /** Queues an `SKB` report for a stream. */
  sendSkb(sid: number, kib: number): void {
    this.sendControl({ noop: true, sid, skb: kib, body: new Uint8Array() });
  }

  /** Sends a `PING` unless one is outstanding. */
  ping(): void {
    if (this.pingSentAt !== undefined || this.#closed) return;
    this.pingSentAt = this.#settings.now();
    const value = (this.pingSentAt / 1000).toFixed(4);
    this.sendControl({ noop: true, ping: value, body: BANG });
  }

  /** Resolves when the write queue has room (or the tunnel closed). */
  writable(): Promise<void> {
    if (this.#queued < this.#settings.queueBytes || this.#closed) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Opens a stream for a user connection: sends the first chunk with the
   * routing headers and the bytes read so far, then relays. Returns null
   * when the tunnel has no room for another stream.
   */
  openStream(
    conn: Deno.Conn,
    route: { proto: string; host: string; port: number },
    prefix: Uint8Array,
  ): RelayStream | null {
    if (this.#closed || this.#streams.size >= this.#settings.maxStreams) {
      return null;
    }
    const sid = this.#allocateSid();
    const stream = new RelayStream(sid, route, conn, this, {
      windowBytes: this.#settings.windowBytes,
      maxBufferBytes: this.#settings.maxStreamBufferBytes,
    });
    this.#streams.set(sid, stream);
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.#enqueue(
      this.#data,
      this.#encoder.encode({
        sid,
        proto: route.proto,
        host: route.host,
        port: route.port,
        remoteIp: addr.hostname,
        remotePort: addr.port,
        body: prefix,
      }),
    );
    // pagekite.py throttles a stream only once it has seen an SKB for it,
    // so report 0 right away: else it sends as fast as its origin answers.
    this.#enqueue(
      this.#data,
      this.#encoder.encode({ noop: true, sid, skb: 0, body: new Uint8Array() }),
    );
    return stream;
  }

  /** Forgets a finished stream. */
  forget(sid: number): void {
    this.#streams.delete(sid);
    this.#markGone(sid);
  }

  /** Closes the tunnel and every stream on it. Idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#log.info("Tunnel {id} from {remote} closed: {reason}", {
      id: this.id,
      remote: this.remote,
      reason,
    });
    for (const stream of this.#streams.values()) stream.drop();
    this.#streams.clear();
    this.#control = [];
    this.#data = [];
    this.#queued = 0;
    for (const wake of this.#waiters.splice(0)) wake();
    this.conn[Symbol.dispose]();
    this.#host.closed(this);
  }

  /** A snapshot of the tunnel's counters. */
  stats(): TunnelStats {
    return {
      id: this.id,
      remote: this.remote,
      kites: [...this.kites],
      features: [...this.features],
      compress: this.#encoder.compressing,
      streams: this.#streams.size,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      queued: this.#queued,
      framesIn: this.#decoder.frames,
      compressedFramesIn: this.#decoder.compressedFrames,
      framesOut: this.#encoder.frames,
      compressedFramesOut: this.#encoder.compressedFrames,
      connectedAt: this.connectedAt,
      lastReceivedAt: this.lastReceivedAt,
    };
  }

  /** Snapshots of the open streams. */
  streamStats(): StreamStats[] {
    return [...this.#streams.values()].map((s) => s.stats());
  }

  #allocateSid(): number {
    for (;;) {
      const sid = this.#nextSid;
      this.#nextSid = sid >= MAX_SID ? 1 : sid + 1;
      if (!this.#streams.has(sid)) {
        this.#gone.delete(sid);
        return sid;
      }
    }
  }

  #markGone(sid: number): void {
    this.#gone.add(sid);
    if (this.#gone.size > MAX_GONE_SIDS) {
      this.#gone.delete(this.#gone.values().next().value!);
    }
  }

  #enqueue(queue: Uint8Array[], frame: Uint8Array): void {
    if (this.#closed) return;
    queue.push(frame);
    this.#queued += frame.length;
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
        if (this.#queued < this.#settings.queueBytes) {
          for (const wake of this.#waiters.splice(0)) wake();
        }
      }
    } catch (error) {
      if (!isDisconnectError(error)) this.#host.report(error);
      this.close("writing to the connector failed");
    } finally {
      this.#writing = false;
    }
  }

  async #read(initial: Uint8Array): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let reason = "the connector closed the tunnel";
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
          this.#host.report(error);
        }
      }
    }
    this.close(reason);
  }

  #received(bytes: Uint8Array): void {
    this.lastReceivedAt = this.#settings.now();
    this.pingSentAt = undefined;
    this.reapAt = undefined;
    this.#bytesIn += bytes.length;
    this.#decoder.push(bytes);
    for (;;) {
      let chunk: Chunk | LostChunk | null;
      try {
        chunk = this.#decoder.next();
      } catch (error) {
        if (this.#decoder.failed) throw error;
        // A well-framed chunk with bad headers: skip it, keep the rest.
        this.#log.warn("Tunnel {id}: skipping a bad chunk: {error}", {
          id: this.id,
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
    this.#log.warn("Tunnel {id}: {reason}", {
      id: this.id,
      reason: chunk.reason,
    });
    if (chunk.sendZrst) {
      this.sendControl({ noop: true, zrst: true, body: BANG });
    }
    // The data of some stream is gone: close it, or every stream when the
    // frame's headers could not be read.
    const affected = chunk.sid === undefined
      ? [...this.#streams.values()]
      : [this.#streams.get(chunk.sid)].filter((s) => s !== undefined);
    for (const stream of affected) stream.abort();
  }

  #dispatch(chunk: Chunk): void {
    if (chunk.zrst === true) this.#encoder.resetCompression();
    if (chunk.ping !== undefined) {
      this.sendControl({
        noop: true,
        pong: chunk.ping.slice(0, 64),
        body: BANG,
      });
    }
    if (chunk.noop === true) {
      if (chunk.sid !== undefined && chunk.skb !== undefined) {
        this.#streams.get(chunk.sid)?.acknowledge(chunk.skb);
      }
      if (chunk.headers?.some(([name]) => isKiteLine(name))) {
        const headers = chunk.headers;
        this.#host.addKites(this, headers).catch((error) =>
          this.#host.report(error)
        );
      }
      return;
    }
    const sid = chunk.sid!;
    const stream = this.#streams.get(sid);
    if (stream === undefined) {
      // Connectors cannot open streams; tell them this one is gone, once:
      // frames still in flight after a close must not each get an EOF (a
      // burst of tiny frames makes pagekite.py kill the tunnel).
      if (chunk.eof === undefined && !this.#gone.has(sid)) {
        this.sendData(sid, new Uint8Array(), "RW");
        this.#markGone(sid);
      }
      return;
    }
    if (chunk.body.length > 0) stream.deliver(chunk.body);
    if (chunk.eof !== undefined) stream.end(chunk.eof);
  }
}

function isKiteLine(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === "x-pagekite" || lower === "x-beanstalk";
}
