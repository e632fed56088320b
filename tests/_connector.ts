// Copyright 2026 the Kitewire authors. MIT license.
// A scripted connector (back-end) for relay tests, built only on the
// protocol/ codecs and Deno.connect. It flies kites on a relay, answers
// SignThis in the tunnel or by reconnecting with X-PageKite-Replace, hands
// every new stream to a handler, honours the relay's SKB window, reports
// SKB for what the handler consumed, answers PINGs, and records what it
// received. It can be told to go silent to play a dead connector.

import {
  type Chunk,
  ChunkDecoder,
  ChunkEncoder,
  decodeTunnelResponse,
  encodeTunnelRequest,
  type EofFlags,
  findHandshakeEnd,
  type KiteName,
  type KiteRequest,
  kiteRequestHeaders,
  type KiteResult,
  type LostChunk,
  parseKiteResponseHeaders,
  signKiteRequest,
  type TunnelResponse,
} from "../protocol/mod.ts";

/** A kite to fly, with its shared secret. */
export interface ScriptedKite {
  proto: string;
  domain: string;
  secret: string;
  port?: number;
}

/** Options of {@linkcode ScriptedConnector.connect}. */
export interface ScriptedConnectorOptions {
  /** The relay's port on 127.0.0.1. */
  port: number;
  /** Kites to fly. */
  kites?: ScriptedKite[];
  /**
   * Kite lines sent as they are in the first request, instead of lines
   * signed from `kites` (to replay captured lines).
   */
  requests?: KiteRequest[];
  /** `X-PageKite-Features` flags. @default {["AddKites"]} */
  features?: string[];
  /**
   * How to answer SignThis: `tunnel` signs in a NOOP chunk (AddKites),
   * `reconnect` opens a new connection with `X-PageKite-Replace`, `none`
   * leaves the challenge unanswered. @default {"tunnel" when both sides
   * have AddKites, else "reconnect"}
   */
  signThis?: "tunnel" | "reconnect" | "none";
  /**
   * `X-PageKite-Replace` for every request and signing NOOP; by default a
   * reconnect names the session id of the connection it replaces.
   */
  replace?: string;
  /** Bytes a stream may send ahead of the relay's last SKB. @default {262144} */
  windowBytes?: number;
  /** Report SKB for consumed bytes. @default {true} */
  skb?: boolean;
  /** Keep every received frame and byte (off for big transfers). @default {true} */
  record?: boolean;
  /**
   * Called for each new stream; without a handler streams are refused
   * with `EOF: 1RW`.
   */
  onStream?: (stream: ScriptedStream) => void | Promise<void>;
  /**
   * Opens the tunnel connection (TLS-wrapped tunnels); by default a plain
   * `Deno.connect` to 127.0.0.1.
   */
  dial?: (port: number) => Promise<Deno.Conn>;
}

const encoder = new TextEncoder();
const BANG = encoder.encode("!");
const FRAME_BODY = 16 * 1024;

/** The key a kite result is filed under: `proto[-port]:domain`. */
export function resultKey(
  kite: { proto: string; domain: string; port?: number | undefined },
): string {
  return `${kite.proto}${
    kite.port === undefined ? "" : `-${kite.port}`
  }:${kite.domain}`;
}

/** A connector's tunnel to a relay. */
export class ScriptedConnector implements AsyncDisposable {
  /** Every kite answer: handshake heads and NOOP answers, in order. */
  readonly answers: TunnelResponse[] = [];
  /** Kite lines of every request and signing NOOP, in order. */
  readonly sentKites: KiteRequest[][] = [];
  /** Streams by SID. */
  readonly streams = new Map<number, ScriptedStream>();
  /** Frames received after the handshake (when recording). */
  readonly frames: Chunk[] = [];
  /** Raw bytes received after the handshake head (when recording). */
  readonly rawBytes: Uint8Array[] = [];
  /** Frames that would not inflate. */
  readonly lost: LostChunk[] = [];
  /** Errors thrown by stream handlers or the reader. */
  readonly errors: unknown[] = [];
  /** Resolves when the tunnel connection has ended, for whatever reason. */
  readonly closed: Promise<void>;

  readonly #options: ScriptedConnectorOptions;
  readonly #salt: string;
  readonly #latest = new Map<string, KiteResult>();
  readonly #kiteWaiters: ((answer: TunnelResponse) => void)[] = [];
  readonly #frameWaiters = new Set<
    { match: (chunk: Chunk) => boolean; resolve: (chunk: Chunk) => void }
  >();
  readonly #pongWaiters = new Map<string, (chunk: Chunk) => void>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #closed = Promise.withResolvers<void>();
  #conn!: Deno.Conn;
  #relayFeatures: string[] = [];
  #encoder = new ChunkEncoder();
  #decoder = new ChunkDecoder();
  #writing: Promise<void> = Promise.resolve();
  #silent = false;
  #ended = false;
  #pings = 0;

  private constructor(options: ScriptedConnectorOptions) {
    this.#options = options;
    this.#salt = randomHex(18);
    this.closed = this.#closed.promise;
  }

  /** Opens a tunnel and runs the handshake, challenge included. */
  static async connect(
    options: ScriptedConnectorOptions,
  ): Promise<ScriptedConnector> {
    const connector = new ScriptedConnector(options);
    await connector.#handshake();
    return connector;
  }

  /** The tunnel connection's local port (the relay sees it as the remote). */
  get localPort(): number {
    return (this.#conn.localAddr as Deno.NetAddr).port;
  }

  /** The latest session id the relay handed out. */
  get sessionId(): string | undefined {
    return this.answers.findLast((a) => a.sessionId !== undefined)?.sessionId;
  }

  /** Every session id the relay handed out, oldest first. */
  get sessionIds(): string[] {
    return this.answers.flatMap((a) =>
      a.sessionId === undefined ? [] : [a.sessionId]
    );
  }

  /** The latest result of each kite, in the order results arrived. */
  get results(): KiteResult[] {
    return [...this.#latest.values()];
  }

  /** The latest result for one kite. */
  result(
    domain: string,
    proto = "http",
    port?: number,
  ): KiteResult | undefined {
    return this.#latest.get(resultKey({ proto, domain, port }));
  }

  /** Features the relay advertised. */
  get relayFeatures(): readonly string[] {
    return this.#relayFeatures;
  }

  /** Whether the tunnel connection has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Stops answering and sending, like a hung connector. Incoming bytes are
   * still read and thrown away, so {@linkcode closed} notices a hang-up. */
  silence(): void {
    this.#silent = true;
  }

  /** Sends a chunk as it is. */
  send(chunk: Chunk): Promise<void> {
    if (this.#silent || this.#ended) return Promise.resolve();
    const sending = this.#writing.then(async () => {
      if (this.#ended) return;
      try {
        await writeAll(this.#conn, this.#encoder.encode(chunk));
      } catch (error) {
        this.#end(); // the reader then reports the end
        throw error;
      }
    });
    this.#writing = sending.catch(() => {});
    return sending;
  }

  /** Sends a PING and waits for its PONG. */
  ping(value = `test-${++this.#pings}`): Promise<Chunk> {
    const pong = new Promise<Chunk>((resolve) =>
      this.#pongWaiters.set(value, resolve)
    );
    void this.send({ noop: true, ping: value, body: BANG }).catch(() => {});
    return pong;
  }

  /**
   * Sends kite lines in a NOOP chunk (AddKites) and waits for the relay's
   * answer, or undefined when the tunnel ends first.
   */
  async sendKites(
    kites: KiteRequest[],
    extra: { replace?: string } = {},
  ): Promise<TunnelResponse | undefined> {
    const request: Parameters<typeof kiteRequestHeaders>[0] = { kites };
    if (extra.replace !== undefined) request.replace = extra.replace;
    this.sentKites.push(kites);
    const answer = new Promise<TunnelResponse | undefined>((resolve) => {
      this.#kiteWaiters.push(resolve);
      void this.closed.then(() => resolve(undefined));
    });
    await this.send({
      noop: true,
      headers: kiteRequestHeaders(request),
      body: BANG,
    });
    return await answer;
  }

  /**
   * The first received frame that matches, recorded or future; rejects
   * after `timeoutMs` or when the tunnel ends first.
   */
  async waitForFrame(
    match: (chunk: Chunk) => boolean,
    timeoutMs = 5000,
  ): Promise<Chunk> {
    const seen = this.frames.find(match);
    if (seen !== undefined) return seen;
    const { promise, resolve, reject } = Promise.withResolvers<Chunk>();
    const waiter = { match, resolve };
    this.#frameWaiters.add(waiter);
    const timer = setTimeout(
      () => reject(new Error(`No matching frame within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const ended = () => reject(new Error("The tunnel ended"));
    void this.closed.then(ended);
    try {
      return await promise;
    } finally {
      clearTimeout(timer);
      this.#frameWaiters.delete(waiter);
    }
  }

  /** Closes the tunnel and waits for the reader and every stream handler. */
  async close(): Promise<void> {
    this.#end();
    await this.closed;
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    await this.#writing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // Handshake

  async #handshake(): Promise<void> {
    const options = this.#options;
    const features = options.features ?? ["AddKites"];
    let kites = options.requests ?? await this.#sign(new Map());
    let replace = options.replace;
    for (let attempt = 0;; attempt++) {
      const { response, rest } = await this.#open(kites, features, replace);
      const challenges = response.results.filter((r) =>
        r.status === "sign-this"
      );
      const mode = options.signThis ??
        (features.includes("AddKites") &&
            this.#relayFeatures.includes("AddKites")
          ? "tunnel"
          : "reconnect");
      if (challenges.length > 0 && mode === "reconnect" && attempt === 0) {
        this.#conn.close();
        kites = await this.#sign(tokensOf(challenges));
        replace = options.replace ?? response.sessionId;
        continue;
      }
      this.#track(this.#read(rest));
      if (challenges.length > 0 && mode === "tunnel") {
        const signed = await this.#sign(tokensOf(challenges), true);
        const extra = options.replace === undefined
          ? {}
          : { replace: options.replace };
        if (signed.length > 0) await this.sendKites(signed, extra);
      }
      return;
    }
  }

  /** Signs the configured kites; `onlyChallenged` keeps those with a token. */
  async #sign(
    tokens: Map<string, string>,
    onlyChallenged = false,
  ): Promise<KiteRequest[]> {
    const signed: KiteRequest[] = [];
    for (const kite of this.#options.kites ?? []) {
      const token = tokens.get(resultKey(kite));
      if (onlyChallenged && token === undefined) continue;
      const name: KiteName & { token: string } = {
        proto: kite.proto,
        domain: kite.domain,
        salt: this.#salt,
        token: token ?? "",
      };
      if (kite.port !== undefined) name.port = kite.port;
      signed.push(await signKiteRequest(name, kite.secret));
    }
    return signed;
  }

  /** Connects, sends a request, and reads the answer head. */
  async #open(
    kites: KiteRequest[],
    features: string[],
    replace: string | undefined,
  ): Promise<{ response: TunnelResponse; rest: Uint8Array }> {
    if (this.#options.dial !== undefined) {
      this.#conn = await this.#options.dial(this.#options.port);
    } else {
      const tcp = await Deno.connect({
        hostname: "127.0.0.1",
        port: this.#options.port,
      });
      tcp.setNoDelay(true);
      this.#conn = tcp;
    }
    const request: Parameters<typeof encodeTunnelRequest>[0] = {
      kites,
      features,
      version: "kitewire-scripted",
    };
    if (replace !== undefined) request.replace = replace;
    this.sentKites.push(kites);
    try {
      await writeAll(this.#conn, encodeTunnelRequest(request));
      let head: Uint8Array = new Uint8Array(0);
      const buffer = new Uint8Array(16 * 1024);
      for (;;) {
        const end = findHandshakeEnd(head);
        if (end !== -1) {
          const response = decodeTunnelResponse(head.subarray(0, end));
          this.#relayFeatures = response.features ?? [];
          const compress = this.#relayFeatures.includes("ZChunks") &&
            features.includes("ZChunks");
          this.#encoder = new ChunkEncoder({ compress });
          this.#decoder = new ChunkDecoder();
          this.#answered(response);
          return { response, rest: head.slice(end) };
        }
        const n = await this.#conn.read(buffer);
        if (n === null) {
          throw new Error("The relay closed the tunnel during the handshake");
        }
        head = concat(head, buffer.subarray(0, n));
      }
    } catch (error) {
      this.#conn.close();
      throw error;
    }
  }

  #answered(response: TunnelResponse): void {
    this.answers.push(response);
    for (const result of response.results) {
      this.#latest.set(resultKey(result), result);
    }
  }

  // Tunnel

  #track(task: Promise<void>): void {
    const tracked = task.catch((error) => {
      this.errors.push(error);
    }).finally(() => this.#tasks.delete(tracked));
    this.#tasks.add(tracked);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  async #read(initial: Uint8Array): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      if (initial.length > 0) this.#received(initial);
      while (!this.#ended) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        if (!this.#silent) this.#received(buffer.subarray(0, n));
      }
    } catch (error) {
      if (!this.#ended && !isDisconnect(error)) this.errors.push(error);
    } finally {
      this.#end();
      for (const stream of this.streams.values()) stream.tunnelEnded();
      for (const resolve of this.#pongWaiters.values()) {
        resolve({ noop: true, body: new Uint8Array() });
      }
      this.#pongWaiters.clear();
      this.#closed.resolve();
    }
  }

  #received(bytes: Uint8Array): void {
    if (this.#options.record !== false) this.rawBytes.push(bytes.slice());
    this.#decoder.push(bytes);
    for (let chunk; (chunk = this.#decoder.next()) !== null;) {
      if ("lost" in chunk) this.lost.push(chunk);
      else this.#dispatch(chunk);
    }
  }

  #dispatch(chunk: Chunk): void {
    if (this.#options.record !== false) {
      this.frames.push({ ...chunk, body: chunk.body.slice() });
    }
    for (const waiter of this.#frameWaiters) {
      if (waiter.match(chunk)) waiter.resolve(chunk);
    }
    if (chunk.zrst === true) this.#encoder.resetCompression();
    if (chunk.ping !== undefined) {
      void this.send({ noop: true, pong: chunk.ping, body: BANG }).catch(
        () => {},
      );
    }
    if (chunk.pong !== undefined) {
      this.#pongWaiters.get(chunk.pong)?.(chunk);
      this.#pongWaiters.delete(chunk.pong);
    }
    if (chunk.noop === true) {
      if (chunk.sid !== undefined && chunk.skb !== undefined) {
        this.streams.get(chunk.sid)?.acknowledged(chunk.skb);
      }
      if (chunk.headers?.some(([name]) => isKiteHeader(name))) {
        const answer = parseKiteResponseHeaders(chunk.headers);
        this.#answered(answer);
        this.#kiteWaiters.shift()?.(answer);
      }
      return;
    }
    const sid = chunk.sid!;
    let stream = this.streams.get(sid);
    if (stream === undefined) {
      if (chunk.proto === undefined && chunk.host === undefined) return;
      stream = new ScriptedStream(this, chunk, {
        windowBytes: this.#options.windowBytes ?? 256 * 1024,
        skb: this.#options.skb ?? true,
      });
      this.streams.set(sid, stream);
      const handler = this.#options.onStream;
      if (handler === undefined) {
        void stream.end("RW").catch(() => {});
      } else {
        const opened = stream;
        this.#track((async () => await handler(opened))());
      }
    } else if (chunk.body.length > 0) {
      stream.delivered(chunk.body.slice());
    }
    if (chunk.eof !== undefined) stream.eofReceived(chunk.eof);
  }
}

/** One stream as the connector sees it. */
export class ScriptedStream {
  readonly sid: number;
  /** The first chunk, with the routing headers. */
  readonly first: Chunk;
  /** The first chunk's body: what the relay read from the user so far. */
  readonly body: Uint8Array;
  /** EOF flags received from the relay, in order. */
  readonly eofs: EofFlags[] = [];
  readonly #connector: ScriptedConnector;
  readonly #windowBytes: number;
  readonly #skb: boolean;
  #queue: Uint8Array[] = [];
  #next: (() => void) | null = null;
  /** The relay will send no more data (EOF with R, or the tunnel ended). */
  #inputDone = false;
  /** The relay can take no more data (EOF with W, or the tunnel ended). */
  #outputDone = false;
  #sent = 0;
  #consumed = 0;
  #reportedKib = 0;
  #peerKib: number | undefined;
  #window: (() => void) | null = null;
  #eofWaiters: (() => void)[] = [];

  constructor(
    connector: ScriptedConnector,
    first: Chunk,
    settings: { windowBytes: number; skb: boolean },
  ) {
    this.#connector = connector;
    this.sid = first.sid!;
    this.first = { ...first, body: first.body.slice() };
    this.body = this.first.body;
    this.#windowBytes = settings.windowBytes;
    this.#skb = settings.skb;
    this.#consume(this.body.length);
  }

  /** Bytes written with {@linkcode write}. */
  get sent(): number {
    return this.#sent;
  }

  /** Body bytes handed to the handler, the first body included. */
  get consumed(): number {
    return this.#consumed;
  }

  /** The relay's latest SKB, in KiB. */
  get peerKib(): number | undefined {
    return this.#peerKib;
  }

  /** Whether the relay said it can take no more data. */
  get outputDone(): boolean {
    return this.#outputDone;
  }

  /**
   * Later bodies, in order; each is "consumed" (and SKB reported) when the
   * loop takes it. Ends at the relay's EOF R or when the tunnel ends.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const body = this.#queue.shift();
      if (body !== undefined) {
        this.#consume(body.length);
        yield body;
        continue;
      }
      if (this.#inputDone) return;
      await new Promise<void>((resolve) => this.#next = resolve);
    }
  }

  /** Reads every later body into one array. */
  async readAll(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const body of this) parts.push(body);
    return concat(...parts);
  }

  /**
   * Sends data in frames of up to 16 KiB, waiting while more than
   * `windowBytes` ahead of the relay's last SKB (once one arrived).
   * Resolves false if the relay stopped taking data first.
   */
  async write(bytes: Uint8Array): Promise<boolean> {
    for (let at = 0; at < bytes.length;) {
      while (
        !this.#outputDone && this.#peerKib !== undefined &&
        this.#sent - this.#peerKib * 1024 > this.#windowBytes
      ) {
        await new Promise<void>((resolve) => this.#window = resolve);
      }
      if (this.#outputDone) return false;
      const piece = bytes.subarray(at, at + FRAME_BODY);
      at += piece.length;
      this.#sent += piece.length;
      try {
        await this.#connector.send({ sid: this.sid, body: piece });
      } catch (error) {
        if (this.#connector.ended) return false;
        throw error;
      }
    }
    return true;
  }

  /** Sends an EOF with these flags (`R`: no more data from us). */
  end(flags: EofFlags = "R"): Promise<void> {
    return this.#connector.send({
      sid: this.sid,
      eof: flags,
      body: new Uint8Array(),
    });
  }

  /** Resolves once an EOF containing `flag` arrived (or the tunnel ended). */
  waitForEof(flag: "R" | "W" = "R"): Promise<void> {
    const seen = () =>
      this.eofs.some((f) => f.includes(flag)) || this.#connector.ended;
    if (seen()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (seen()) resolve();
        else this.#eofWaiters.push(check);
      };
      this.#eofWaiters.push(check);
    });
  }

  // Called by the connector.

  delivered(body: Uint8Array): void {
    this.#queue.push(body);
    this.#wakeReader();
  }

  acknowledged(kib: number): void {
    this.#peerKib = kib;
    this.#wakeWriter();
  }

  eofReceived(flags: EofFlags): void {
    this.eofs.push(flags);
    if (flags.includes("R")) this.#inputDone = true;
    if (flags.includes("W")) this.#outputDone = true;
    this.#wakeReader();
    this.#wakeWriter();
    for (const check of this.#eofWaiters.splice(0)) check();
  }

  tunnelEnded(): void {
    this.#inputDone = this.#outputDone = true;
    this.#wakeReader();
    this.#wakeWriter();
    for (const check of this.#eofWaiters.splice(0)) check();
  }

  #consume(bytes: number): void {
    this.#consumed += bytes;
    const kib = Math.floor(this.#consumed / 1024);
    if (!this.#skb || kib <= this.#reportedKib) return;
    this.#reportedKib = kib;
    void this.#connector.send({
      noop: true,
      sid: this.sid,
      skb: kib,
      body: new Uint8Array(),
    }).catch(() => {});
  }

  #wakeReader(): void {
    const next = this.#next;
    this.#next = null;
    next?.();
  }

  #wakeWriter(): void {
    const window = this.#window;
    this.#window = null;
    window?.();
  }
}

export { delay, waitUntil } from "./_wait.ts";

function tokensOf(results: KiteResult[]): Map<string, string> {
  const tokens = new Map<string, string>();
  for (const r of results) {
    if (r.status === "sign-this") tokens.set(resultKey(r), r.token);
  }
  return tokens;
}

function isKiteHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith("x-pagekite") || lower.startsWith("x-beanstalk");
}

function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.Interrupted;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}
