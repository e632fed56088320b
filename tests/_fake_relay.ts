// Copyright 2026 the Kitewire authors. MIT license.
// A scripted, possibly hostile relay for connector tests, built only on the
// protocol/ codecs and Deno.listen on 127.0.0.1: it reads a connector's
// tunnel request, answers it (OK for every kite unless told otherwise),
// then lets the test send any frame, well-formed or not, and records every
// chunk that comes back. Also: a recording local service (`Backend`) and
// small wait helpers.

import {
  type Chunk,
  ChunkDecoder,
  ChunkEncoder,
  decodeTunnelRequest,
  encodeTunnelResponse,
  findHandshakeEnd,
  type TunnelRequest,
  type TunnelResponse,
} from "../protocol/mod.ts";
import { waitUntil } from "./_wait.ts";

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** How a fake relay answers tunnel request number `index` (0-based). */
export type FakeAnswer = (
  request: TunnelRequest,
  index: number,
) => TunnelResponse | Uint8Array;

/** Options of {@linkcode FakeRelay.serve}. */
export interface FakeRelayOptions {
  /**
   * Relay features when the answer is the default one.
   *
   * @default {["AddKites", "ZChunks"]}
   */
  features?: string[];
  /**
   * The answer; by default OK for every requested kite, the features
   * above and session id `session-<index + 1>`.
   */
  answer?: FakeAnswer;
}

/** The default answer: every kite flies. */
export function okAnswer(
  request: TunnelRequest,
  index: number,
  features: string[] = ["AddKites", "ZChunks"],
): TunnelResponse {
  return {
    features,
    results: request.kites.map((k) => ({
      status: "ok" as const,
      proto: k.proto,
      domain: k.domain,
      salt: k.salt,
      ...(k.port === undefined ? {} : { port: k.port }),
    })),
    sessionId: `session-${index + 1}`,
    motd: "",
  };
}

/** Encodes `text` (header block, blank line, body) as one plain frame. */
export function rawFrame(text: string): Uint8Array {
  const payload = latin1Bytes(text);
  const head = encoder.encode(`${payload.length.toString(16)}\r\n`);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** Latin-1 text to bytes (code point = byte value). */
export function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Bytes to Latin-1 text. */
export function latin1Text(bytes: Uint8Array): string {
  return latin1.decode(bytes);
}

/** A relay on 127.0.0.1 that plays a script. */
export class FakeRelay implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  /** Every tunnel accepted so far, in order. */
  readonly tunnels: FakeTunnel[] = [];
  readonly #options: FakeRelayOptions;
  readonly #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;

  private constructor(options: FakeRelayOptions) {
    this.#options = options;
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** Starts a fake relay. */
  static serve(options: FakeRelayOptions = {}): FakeRelay {
    return new FakeRelay(options);
  }

  /** The port connectors dial. */
  get port(): number {
    return this.listener.addr.port;
  }

  /** Tunnel number `index` (0-based), once its handshake was answered. */
  async tunnel(index: number, timeoutMs = 5000): Promise<FakeTunnel> {
    await waitUntil(
      () => this.tunnels[index]?.answered === true,
      `tunnel ${index}`,
      { timeoutMs },
    );
    return this.tunnels[index]!;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.listener) {
        const index = this.tunnels.length;
        const answer = this.#options.answer ??
          ((request, i) => okAnswer(request, i, this.#options.features));
        const tunnel = new FakeTunnel(conn, index, answer);
        this.tunnels.push(tunnel);
        const task = tunnel.run().finally(() => this.#tasks.delete(task));
        this.#tasks.add(task);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }

  /** Closes the listener and every tunnel, and waits for their tasks. */
  async close(): Promise<void> {
    try {
      this.listener.close();
    } catch {
      // already closed
    }
    await this.#accepting;
    for (const tunnel of this.tunnels) tunnel.close();
    await Promise.all([...this.#tasks]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** One tunnel of a fake relay: what the connector sent, and a way back. */
export class FakeTunnel {
  readonly conn: Deno.TcpConn;
  readonly index: number;
  /** The connector's tunnel request, once read. */
  request: TunnelRequest | undefined;
  /** Whether the handshake was answered. */
  answered = false;
  /** Every chunk received after the handshake (bodies are copies). */
  readonly chunks: Chunk[] = [];
  /** Why decoding failed, if it did. */
  decodeError: unknown;
  /** Tunnel bytes received after the handshake. */
  bytesIn = 0;
  /** When the connector closed the tunnel (ms), once it did. */
  endedAt: number | undefined;
  readonly #answer: FakeAnswer;
  readonly #decoder = new ChunkDecoder({ maxChunkSize: 16 * 1024 * 1024 });
  #encoder = new ChunkEncoder();
  #paused: PromiseWithResolvers<void> | undefined;
  #closed = false;
  #syncs = 0;

  constructor(conn: Deno.TcpConn, index: number, answer: FakeAnswer) {
    this.conn = conn;
    this.index = index;
    this.#answer = answer;
  }

  /** Whether the connector closed the tunnel (or we did). */
  get ended(): boolean {
    return this.endedAt !== undefined;
  }

  /** Reads the handshake, answers it, then records chunks until EOF. */
  async run(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      let head: Uint8Array = new Uint8Array(0);
      let end = -1;
      while ((end = findHandshakeEnd(head)) === -1) {
        const n = await this.conn.read(buffer);
        if (n === null) return;
        head = concat([head, buffer.subarray(0, n)]);
      }
      const request = decodeTunnelRequest(head.subarray(0, end));
      this.request = request;
      const answer = this.#answer(request, this.index);
      let answerBytes: Uint8Array;
      if (answer instanceof Uint8Array) {
        answerBytes = answer;
      } else {
        answerBytes = encodeTunnelResponse(answer);
        const compress = (request.features ?? []).includes("ZChunks") &&
          (answer.features ?? []).includes("ZChunks");
        this.#encoder = new ChunkEncoder({ compress });
      }
      await writeAll(this.conn, answerBytes);
      this.answered = true;
      this.#received(head.subarray(end));
      for (;;) {
        if (this.#paused !== undefined) await this.#paused.promise;
        const n = await this.conn.read(buffer);
        if (n === null) break;
        this.#received(buffer.subarray(0, n));
      }
    } catch (error) {
      if (!isDisconnect(error)) this.decodeError ??= error;
    } finally {
      this.endedAt = Date.now();
      this.close();
    }
  }

  #received(bytes: Uint8Array): void {
    this.bytesIn += bytes.length;
    this.#decoder.push(bytes);
    for (let chunk; (chunk = this.#decoder.next()) !== null;) {
      if ("lost" in chunk) {
        this.decodeError ??= new Error(`lost frame: ${chunk.reason}`);
        continue;
      }
      this.chunks.push({ ...chunk, body: chunk.body.slice() });
    }
  }

  /** Sends chunks, encoded (and compressed if both sides use ZChunks). */
  async send(...chunks: Chunk[]): Promise<void> {
    await writeAll(
      this.conn,
      concat(chunks.map((c) => this.#encoder.encode(c))),
    );
  }

  /** Sends bytes as they are. */
  async sendRaw(bytes: Uint8Array): Promise<void> {
    await writeAll(this.conn, bytes);
  }

  /** Stops reading the tunnel (the connector's writes back up). */
  pauseReading(): void {
    this.#paused ??= Promise.withResolvers<void>();
  }

  /** Reads the tunnel again. */
  resumeReading(): void {
    this.#paused?.resolve();
    this.#paused = undefined;
  }

  /** Chunks that match. */
  filter(match: (chunk: Chunk) => boolean): Chunk[] {
    return this.chunks.filter(match);
  }

  /** Waits for a chunk that matches, and returns the first one. */
  async waitFor(
    match: (chunk: Chunk) => boolean,
    what: string,
    timeoutMs = 5000,
  ): Promise<Chunk> {
    let found: Chunk | undefined;
    await waitUntil(
      () => (found = this.chunks.find(match)) !== undefined,
      what,
      { timeoutMs },
    );
    return found!;
  }

  /**
   * A barrier: when it resolves, the connector handled every frame sent
   * before and sent everything it queued in reply. A PING checks the
   * control queue, data for a fresh unknown SID (answered with an EOF)
   * the data queue.
   */
  async sync(timeoutMs = 5000): Promise<void> {
    const n = ++this.#syncs;
    const value = `sync-${n}`;
    const sid = 90_000_000 + n;
    await this.send(
      { noop: true, ping: value, body: encoder.encode("!") },
      { sid, body: encoder.encode("x") },
    );
    await this.waitFor((c) => c.pong === value, `PONG ${value}`, timeoutMs);
    await this.waitFor(
      (c) => c.sid === sid && c.eof !== undefined,
      `EOF for barrier SID ${sid}`,
      timeoutMs,
    );
  }

  /** The data a stream sent (non-NOOP bodies), as Latin-1 text. */
  dataOf(sid: number): string {
    return this.chunks
      .filter((c) => c.sid === sid && c.noop !== true)
      .map((c) => latin1.decode(c.body))
      .join("");
  }

  /** EOF chunks of a stream. */
  eofsOf(sid: number): Chunk[] {
    return this.chunks.filter((c) =>
      c.sid === sid && c.noop !== true && c.eof !== undefined
    );
  }

  /** Closes the tunnel. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#paused?.resolve();
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** One connection a {@linkcode Backend} accepted. */
export interface BackendConnection {
  conn: Deno.TcpConn;
  /** Everything received so far. */
  received: Uint8Array[];
  /** Whether the connector closed (or half-closed) its side. */
  ended: boolean;
  /** The received bytes as Latin-1 text. */
  text(): string;
  /** Writes to the connector; errors are swallowed. */
  write(bytes: Uint8Array | string): Promise<void>;
}

/** A local service on 127.0.0.1 that records every byte it gets. */
export class Backend implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  readonly connections: BackendConnection[] = [];
  readonly #onData:
    | ((c: BackendConnection) => void | Promise<void>)
    | undefined;
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  /**
   * @param onData Called after each read (to answer requests, say).
   */
  constructor(onData?: (c: BackendConnection) => void | Promise<void>) {
    this.#onData = onData;
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get port(): number {
    return this.listener.addr.port;
  }

  /** The connector's backend setting for this service. */
  get address(): { host: string; port: number } {
    return { host: "127.0.0.1", port: this.port };
  }

  /** Every byte received on every connection, as Latin-1 text. */
  allText(): string {
    return this.connections.map((c) => c.text()).join("");
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.listener) {
        const record: BackendConnection = {
          conn,
          received: [],
          ended: false,
          text: () => latin1.decode(concat(record.received)),
          write: async (bytes) => {
            try {
              await writeAll(
                conn,
                typeof bytes === "string" ? encoder.encode(bytes) : bytes,
              );
            } catch {
              // the connector went away
            }
          },
        };
        this.connections.push(record);
        const task = this.#read(record).finally(() => this.#tasks.delete(task));
        this.#tasks.add(task);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }

  async #read(record: BackendConnection): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await record.conn.read(buffer);
        if (n === null) break;
        record.received.push(buffer.slice(0, n));
        await this.#onData?.(record);
      }
    } catch {
      // reset or closed by close()
    }
    record.ended = true;
  }

  /** Closes the listener and every connection, and waits. */
  async close(): Promise<void> {
    try {
      this.listener.close();
    } catch {
      // already closed
    }
    await this.#accepting;
    for (const c of this.connections) {
      try {
        c.conn.close();
      } catch {
        // already closed
      }
    }
    await Promise.all([...this.#tasks]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

export { delay, waitUntil } from "./_wait.ts";

/** Writes every byte. */
export async function writeAll(
  conn: Deno.Conn,
  bytes: Uint8Array,
): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.NotConnected;
}
