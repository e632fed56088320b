// Copyright 2026 the Kitewire authors. MIT license.
/**
 * `connectKites()`: the PageKite back-end. It dials a relay, asks it to fly
 * its kites (answering the relay's challenges inside the tunnel or by
 * reconnecting), relays each stream to the kite's local service, keeps the
 * tunnel alive, and reconnects with backoff when it drops.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type Chunk,
  decodeTunnelResponse,
  encodeTunnelRequest,
  findHandshakeEnd,
  kiteKey,
  type KiteRequest,
  kiteRequestHeaders,
  type KiteResult,
  parseKiteResponseHeaders,
  signKiteRequest,
  type TunnelResponse,
} from "../protocol/mod.ts";
import { isDisconnectError, writeAll } from "../tunnel/_io.ts";
import type { LinkStats } from "../tunnel/link.ts";
import type { StreamStats } from "../tunnel/stream.ts";
import { type ConnectorEvent, EventQueue, type KiteStatus } from "./events.ts";
import {
  backoffDelay,
  type ConnectorKite,
  type ConnectorOptions,
  resolveConnectorOptions,
  type ResolvedConnectorOptions,
  validateKite,
} from "./options.ts";
import { Session, type SessionHost } from "./session.ts";

const BANG = new TextEncoder().encode("!");
/** Rejections that asking again will not change. */
const PERMANENT_REASONS = new Set([
  "signature",
  "unauthorized",
  "port",
  "proto",
]);
/** How many challenge rounds one connection attempt may take. */
const MAX_CHALLENGE_ROUNDS = 3;
/** Why a tunnel whose PING went unanswered is closed. */
const DEAD_REASON = "dead: the relay stayed silent";

/** The state of one kite, as `stats()` reports it. */
export interface KiteState {
  /** `proto[-port]:domain`. */
  kite: string;
  /** The last answer of the relay, or `pending` before the first. */
  status: KiteStatus | "pending";
  /** The relay's reason for a rejection. */
  reason?: string;
}

/** What {@linkcode Connector.stats} reports. */
export interface ConnectorStats {
  /** The relay, `host:port`. */
  relay: string;
  /** Whether a tunnel is up. */
  connected: boolean;
  /** The tunnel's counters while it is up. */
  tunnel?: LinkStats;
  /** Every configured kite and how the relay answered for it. */
  kites: KiteState[];
  /** Open streams. */
  streams: StreamStats[];
  /** Tunnels opened so far. */
  connects: number;
  /** Connection attempts that failed, and tunnels that dropped. */
  failures: number;
}

/** A running connector, shaped like `Deno.serve`'s handle. */
export interface Connector extends AsyncDisposable {
  /** Tunnel and kite events, for `for await`. */
  readonly events: AsyncIterable<ConnectorEvent>;
  /** Resolves once the connector stopped and every task ended. */
  readonly finished: Promise<void>;
  /** Closes the tunnel and every stream, stops reconnecting, and waits. */
  shutdown(): Promise<void>;
  /** The tunnel, the kites and the streams. */
  stats(): ConnectorStats;
  /**
   * Flies one more kite: asked for inside the live tunnel when the relay
   * takes kites there (`AddKites`), else by reconnecting.
   *
   * @throws {TypeError} if the kite flies already or is malformed.
   */
  addKite(kite: ConnectorKite): void;
  /**
   * Stops flying a kite by reconnecting without it; streams of the other
   * kites on the old tunnel end with it.
   *
   * @returns Whether the kite was flying (or trying to).
   */
  removeKite(proto: string, domain: string, publicPort?: number): boolean;
}

/**
 * Starts a connector that flies `options.kites` through `options.relay`.
 *
 * @param options The relay, the kites and their local services, limits.
 * @returns The running connector.
 *
 * @example Usage
 * ```ts ignore
 * import { connectKites } from "@kitewire/pagekite/connector";
 *
 * await using connector = connectKites({
 *   relay: { hostname: "relay.example.net", port: 443 },
 *   kites: [{
 *     proto: "http",
 *     domain: "foo.example.net",
 *     secret: "s3cret",
 *     backend: { host: "127.0.0.1", port: 8080 },
 *   }],
 * });
 * for await (const event of connector.events) console.log(event);
 * ```
 */
export function connectKites(options: ConnectorOptions): Connector {
  return new KiteConnector(resolveConnectorOptions(options));
}

interface KiteEntry {
  key: string;
  kite: ConnectorKite;
  /** Our salt for this kite (`bsalt`), stable for the connector's life. */
  salt: string;
  state: KiteState;
  /** The relay's last challenge for this kite. */
  token: string;
}

class KiteConnector implements Connector, SessionHost {
  readonly finished: Promise<void>;
  readonly #options: ResolvedConnectorOptions;
  readonly #log = getLogger(["kitewire", "connector"]);
  readonly #events: EventQueue<ConnectorEvent>;
  readonly #kites = new Map<string, ConnectorKite>();
  readonly #entries: KiteEntry[] = [];
  readonly #tasks = new Set<Promise<void>>();
  readonly #relay: string;
  readonly #stop = new AbortController();
  #session: Session | undefined;
  #sessionClosed: PromiseWithResolvers<string> | undefined;
  /** The relay session id to replace on the next connection. */
  #replace: string | undefined;
  /** The relay dropped a tunnel right after our PING: do not ping it. */
  #noPing = false;
  /** When the last keepalive NOOP went to a relay we do not ping. */
  #keepaliveAt = 0;
  #connects = 0;
  #failures = 0;
  /** Reconnect at once (the kites changed), without counting a failure. */
  #immediate = false;
  /** Cuts a backoff short. */
  #wake = new AbortController();
  /** Whether the live tunnel takes kite lines inside it. */
  #inTunnel = false;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: ResolvedConnectorOptions) {
    this.#options = options;
    this.#events = new EventQueue(options.maxQueuedEvents);
    this.#relay = `${options.relay.hostname}:${options.relay.port}`;
    for (const kite of options.kites) {
      const key = kiteKey(kite.proto, kite.domain, kite.publicPort);
      this.#kites.set(key, kite);
      this.#entries.push({
        key,
        kite,
        salt: randomHex(18),
        state: { kite: key, status: "pending" },
        token: "",
      });
    }
    options.signal?.addEventListener("abort", () => void this.shutdown(), {
      once: true,
    });
    const run = this.#run();
    this.finished = run.then(async () => {
      while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
      this.#events.close();
    });
    if (options.signal?.aborted) void this.shutdown();
  }

  get events(): AsyncIterable<ConnectorEvent> {
    return this.#events;
  }

  async shutdown(): Promise<void> {
    if (!this.#stop.signal.aborted) {
      this.#stop.abort();
      this.#session?.close("connector shutdown");
    }
    await this.finished;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  stats(): ConnectorStats {
    const session = this.#session;
    const stats: ConnectorStats = {
      relay: this.#relay,
      connected: session !== undefined && !session.closed,
      kites: this.#entries.map((e) => ({ ...e.state })),
      streams: session?.streamStats() ?? [],
      connects: this.#connects,
      failures: this.#failures,
    };
    if (session !== undefined && !session.closed) {
      stats.tunnel = session.linkStats();
    }
    return stats;
  }

  addKite(kite: ConnectorKite): void {
    const key = kiteKey(kite.proto, kite.domain, kite.publicPort);
    if (this.#kites.has(key)) {
      throw new TypeError(`Cannot add kite: ${key} flies already`);
    }
    validateKite(kite);
    const entry: KiteEntry = {
      key,
      kite,
      salt: randomHex(18),
      state: { kite: key, status: "pending" },
      token: "",
    };
    this.#kites.set(key, kite);
    this.#entries.push(entry);
    const session = this.#session;
    if (session !== undefined && !session.closed && this.#inTunnel) {
      this.#track(this.#sendKites(session, [entry]));
    } else {
      this.#reconnectNow();
    }
  }

  removeKite(proto: string, domain: string, publicPort?: number): boolean {
    const key = kiteKey(proto, domain, publicPort);
    const index = this.#entries.findIndex((e) => e.key === key);
    if (index === -1) return false;
    this.#entries.splice(index, 1);
    this.#kites.delete(key);
    this.#reconnectNow();
    return true;
  }

  /** Closes the tunnel (or cuts a backoff short) to reconnect at once. */
  #reconnectNow(): void {
    if (this.#stop.signal.aborted) return;
    this.#immediate = true;
    if (this.#session !== undefined && !this.#session.closed) {
      this.#session.close("the kites changed");
    } else {
      this.#wake.abort();
    }
  }

  // SessionHost

  noop(session: Session, chunk: Chunk): void {
    let response: TunnelResponse;
    try {
      response = parseKiteResponseHeaders(chunk.headers ?? []);
    } catch (error) {
      this.report(error);
      return;
    }
    if (response.results.length === 0) return;
    if (response.sessionId !== undefined) {
      session.sessionId = this.#replace = response.sessionId;
    }
    this.#apply(response.results);
    const challenged = response.results.filter((r) => r.status === "sign-this");
    if (challenged.length > 0) {
      // Answer again inside the tunnel (a token expired, say).
      this.#track(this.#answerInTunnel(session));
    } else if (!this.#entries.some((e) => e.state.status === "flying")) {
      session.close("the relay accepted none of our kites");
    }
  }

  closed(session: Session, reason: string): void {
    if (this.#session === session) this.#sessionClosed?.resolve(reason);
  }

  report(error: unknown): void {
    if (this.#options.onError !== undefined) this.#options.onError(error);
    else this.#log.warn("Connector error: {error}", { error });
  }

  track(task: Promise<void>): void {
    this.#track(task);
  }

  // The connection loop

  #track(task: Promise<void>): void {
    const tracked = task.catch((error) => this.report(error)).finally(() =>
      this.#tasks.delete(tracked)
    );
    this.#tasks.add(tracked);
  }

  async #run(): Promise<void> {
    const { reconnect, now, random } = this.#options;
    let attempt = 0;
    while (!this.#stop.signal.aborted) {
      if (this.#entries.length === 0) {
        // Nothing to fly: wait for addKite() or shutdown().
        this.#wake = new AbortController();
        await sleep(
          2 ** 31 - 1,
          AbortSignal.any([this.#stop.signal, this.#wake.signal]),
        );
        this.#immediate = false;
        continue;
      }
      const started = now();
      // Kites changed from here on make the new tunnel reconnect at once.
      this.#immediate = false;
      let reason: string;
      try {
        reason = await this.#connectOnce();
      } catch (error) {
        reason = isDisconnectError(error) || error instanceof Error
          ? (error as Error).message
          : String(error);
        if (
          !isDisconnectError(error) &&
          !(error instanceof Deno.errors.ConnectionRefused)
        ) {
          this.#log.info("Cannot fly kites via {relay}: {reason}", {
            relay: this.#relay,
            reason,
          });
        }
      }
      this.#session = undefined;
      if (this.#stop.signal.aborted) break;
      const immediate = this.#immediate;
      this.#immediate = false;
      if (!immediate) this.#failures++;
      if (now() - started >= reconnect.resetAfterMs) attempt = 0;
      const delay = immediate ? 0 : backoffDelay(attempt++, reconnect, random);
      for (const entry of this.#entries) {
        if (entry.state.status === "flying") entry.state.status = "pending";
      }
      this.#events.push({
        type: "disconnected",
        relay: this.#relay,
        reason,
        retryInMs: delay,
      });
      this.#wake = new AbortController();
      await sleep(
        delay,
        AbortSignal.any([this.#stop.signal, this.#wake.signal]),
      );
    }
  }

  /**
   * One connection: handshake, challenges, then relaying until the tunnel
   * closes. Returns why it closed.
   */
  async #connectOnce(): Promise<string> {
    // Challenge tokens are for one attempt: a relay that restarted, or a
    // token that expired, answers an old one "unauthorized", as if the kite
    // were refused. Ask for fresh ones, as pagekite.py does.
    for (const entry of this.#entries) entry.token = "";
    for (let round = 0;; round++) {
      const signal = AbortSignal.any([
        this.#stop.signal,
        AbortSignal.timeout(this.#options.connectTimeoutMs),
      ]);
      const conn = await Deno.connect({ ...this.#options.relay, signal });
      conn.setNoDelay(true);
      let handshake;
      try {
        handshake = await this.#handshake(conn);
      } catch (error) {
        conn.close();
        throw error;
      }
      const { response, rest } = handshake;
      this.#replace = response.sessionId ?? this.#replace;
      this.#apply(response.results);
      if (response.motd !== undefined && response.motd !== "") {
        this.#events.push({
          type: "motd",
          relay: this.#relay,
          message: response.motd,
        });
      }
      const challenged = response.results.some((r) => r.status === "sign-this");
      const flying = response.results.some((r) => r.status === "ok");
      const inTunnel = this.#options.addKites &&
        (response.features ?? []).includes("AddKites");
      if (challenged && !inTunnel) {
        // Flow A: answer by reconnecting with the tokens and Replace.
        conn.close();
        if (round + 1 >= MAX_CHALLENGE_ROUNDS) {
          throw new Error("the relay kept challenging our signatures");
        }
        continue;
      }
      if (!challenged && !flying) {
        conn.close();
        throw new Error("the relay accepted none of our kites");
      }
      return await this.#fly(conn, response, rest, challenged);
    }
  }

  /** Sends the tunnel request and reads the answer. */
  async #handshake(
    conn: Deno.Conn,
  ): Promise<{ response: TunnelResponse; rest: Uint8Array }> {
    const kites = await this.#signedKites();
    const features: string[] = [];
    if (this.#options.addKites) features.push("AddKites");
    if (this.#options.zchunks) features.push("ZChunks");
    const request = {
      kites,
      features,
      version: this.#options.version,
      ...(this.#replace === undefined ? {} : { replace: this.#replace }),
    };
    const timer = setTimeout(
      () => conn[Symbol.dispose](),
      this.#options.handshakeTimeoutMs,
    );
    try {
      await writeAll(conn, encodeTunnelRequest(request));
      let bytes: Uint8Array = new Uint8Array(0);
      const buffer = new Uint8Array(16 * 1024);
      for (;;) {
        const end = findHandshakeEnd(bytes);
        if (end !== -1) {
          return {
            response: decodeTunnelResponse(bytes.subarray(0, end)),
            rest: bytes.slice(end),
          };
        }
        const n = await conn.read(buffer);
        if (n === null) {
          throw new Deno.errors.UnexpectedEof(
            "the relay closed the connection before answering",
          );
        }
        const grown = new Uint8Array(bytes.length + n);
        grown.set(bytes);
        grown.set(buffer.subarray(0, n), bytes.length);
        bytes = grown;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The kites to ask for, signed with their latest tokens: all but those
   * the relay refused for good (bad signature or secret, port or protocol
   * not served), unless that leaves none: then all again, in case the
   * relay's configuration changed.
   */
  #signedKites(): Promise<KiteRequest[]> {
    const wanted = this.#entries.filter((e) =>
      !(e.state.status === "rejected" &&
        PERMANENT_REASONS.has(e.state.reason ?? ""))
    );
    return Promise.all(
      (wanted.length > 0 ? wanted : this.#entries).map((e) =>
        signKiteRequest({
          proto: e.kite.proto,
          domain: e.kite.domain.toLowerCase(),
          salt: e.salt,
          token: e.token,
          ...(e.kite.publicPort === undefined
            ? {}
            : { port: e.kite.publicPort }),
        }, e.kite.secret)
      ),
    );
  }

  /** Runs a tunnel until it closes; returns why it closed. */
  async #fly(
    conn: Deno.Conn,
    response: TunnelResponse,
    rest: Uint8Array,
    challenged: boolean,
  ): Promise<string> {
    const o = this.#options;
    const compress = o.zchunks && (response.features ?? []).includes("ZChunks");
    const session = new Session(conn, this.#kites, this, {
      compress,
      compressionLevel: o.compressionLevel,
      maxChunkSize: o.maxChunkSize,
      queueBytes: o.tunnelQueueBytes,
      windowBytes: o.streamWindowBytes,
      maxBufferBytes: o.maxStreamBufferBytes,
      backendTimeoutMs: o.backendTimeoutMs,
      maxStreams: o.maxStreams,
      relay: this.#relay,
      now: o.now,
    });
    if (response.sessionId !== undefined) {
      session.sessionId = response.sessionId;
    }
    this.#session = session;
    this.#sessionClosed = Promise.withResolvers<string>();
    this.#inTunnel = this.#options.addKites &&
      (response.features ?? []).includes("AddKites");
    if (this.#immediate) {
      // addKite() or removeKite() ran while we were connecting: this
      // tunnel was asked for the old kites.
      session.close("the kites changed");
    }
    this.#connects++;
    this.#events.push({
      type: "connected",
      relay: this.#relay,
      ...(response.sessionId === undefined
        ? {}
        : { sessionId: response.sessionId }),
    });
    this.#track(session.start(rest));
    if (challenged) await this.#answerInTunnel(session);
    const tick = Math.max(20, Math.min(1000, o.pingIntervalMs / 4));
    const timer = setInterval(() => this.#keepalive(session), tick);
    try {
      const reason = await this.#sessionClosed.promise;
      if (
        !session.ponged && session.pingSentAt !== undefined &&
        o.now() - session.pingSentAt < 2000 && reason !== DEAD_REASON &&
        !this.#stop.signal.aborted
      ) {
        // Debian's pagekite.py 1.5.2.201011 drops a tunnel when a connector
        // pings it (a TypeError in its SendPong). Stop pinging that relay;
        // its own pings and TCP errors still tell us when it is gone.
        this.#noPing = true;
        this.#log.warn(
          "The relay {relay} dropped the tunnel after our PING: no more PINGs to it",
          { relay: this.#relay },
        );
      }
      return reason;
    } finally {
      clearInterval(timer);
    }
  }

  /** Answers challenges inside the tunnel with a NOOP of signed kites. */
  async #answerInTunnel(session: Session): Promise<void> {
    await this.#sendKites(
      session,
      this.#entries.filter((e) => e.state.status === "challenged"),
    );
  }

  /** Asks for kites inside the tunnel with a NOOP of signed kite lines. */
  async #sendKites(session: Session, entries: KiteEntry[]): Promise<void> {
    if (entries.length === 0 || session.closed) return;
    const kites = await Promise.all(entries.map((e) => this.#sign(e)));
    session.sendControl({
      noop: true,
      headers: kiteRequestHeaders({ kites, version: this.#options.version }),
      body: BANG,
    });
  }

  #sign(e: KiteEntry): Promise<KiteRequest> {
    return signKiteRequest({
      proto: e.kite.proto,
      domain: e.kite.domain.toLowerCase(),
      salt: e.salt,
      token: e.token,
      ...(e.kite.publicPort === undefined ? {} : { port: e.kite.publicPort }),
    }, e.kite.secret);
  }

  #keepalive(session: Session): void {
    if (session.closed) return;
    const { pingIntervalMs, pingGraceMs, now } = this.#options;
    const silent = now() - session.lastReceivedAt;
    if (this.#noPing) {
      // Keep NATs open without a PING the relay cannot take. Nothing
      // answers a NOOP, so silence proves nothing here: TCP errors and the
      // relay's own PINGs tell us when it is gone.
      if (
        silent >= pingIntervalMs && now() - this.#keepaliveAt >= pingIntervalMs
      ) {
        this.#keepaliveAt = now();
        session.sendControl({ noop: true, body: BANG });
      }
    } else if (silent >= pingIntervalMs + pingGraceMs) {
      session.close(DEAD_REASON);
    } else if (silent >= pingIntervalMs) {
      session.ping();
    }
  }

  /** Records the relay's answers and reports them as events. */
  #apply(results: KiteResult[]): void {
    for (const result of results) {
      const key = kiteKey(result.proto, result.domain, result.port);
      const entry = this.#entries.find((e) => e.key === key);
      if (entry === undefined) continue;
      const status: KiteStatus = result.status === "ok"
        ? "flying"
        : result.status === "sign-this"
        ? "challenged"
        : result.status === "invalid"
        ? "rejected"
        : "duplicate";
      entry.state = { kite: key, status };
      if (result.status === "sign-this") entry.token = result.token;
      if (result.status === "invalid") {
        entry.token = "";
        if (result.reason !== undefined) entry.state.reason = result.reason;
      }
      this.#events.push({
        type: "kite",
        relay: this.#relay,
        kite: key,
        status,
        ...(entry.state.reason === undefined
          ? {}
          : { reason: entry.state.reason }),
      });
      this.#log.info("Kite {kite} via {relay}: {status}{why}", {
        kite: key,
        relay: this.#relay,
        status,
        why: entry.state.reason === undefined ? "" : ` (${entry.state.reason})`,
      });
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

function randomHex(bytes: number): string {
  let hex = "";
  for (const b of crypto.getRandomValues(new Uint8Array(bytes))) {
    hex += b.toString(16).padStart(2, "0");
  }
  return hex;
}
