// Copyright 2026 the Kitewire authors. MIT license.
/**
 * `serveRelay()`: the PageKite front-end. It listens on one or more ports,
 * tells tunnel requests from public traffic by their first bytes, answers
 * kite requests, and relays public connections to the tunnel of their kite.
 * The relay never dials anything.
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import type { Sniffed } from "../protocol/mod.ts";
import { isDisconnectError, writeAll } from "../tunnel/_io.ts";
import type { StreamStats } from "../tunnel/stream.ts";
import type { RelayContext } from "./_context.ts";
import { sniffIncoming } from "./_sniffing.ts";
import { Drain, isOutOfDescriptors, shedOldest } from "./_drain.ts";
import { RelayEdge } from "./edge.ts";
import { Handshakes } from "./handshake.ts";
import { serveHttp } from "./http.ts";
import { serveTls, serveTlsConnect, TlsEndpoints } from "./tls.ts";
import { serveConnect } from "./connect.ts";
import { publicPort, publicPorts, rawListenPorts } from "./_ports.ts";
import { serveProtocol } from "./protocols.ts";
import { RawPorts } from "./raw.ts";
import {
  type RelayOptions,
  type ResolvedRelayOptions,
  resolveRelayOptions,
} from "./options.ts";
import { unavailablePage } from "./pages.ts";
import { Registry } from "./registry.ts";
import { Tunnel, type TunnelHost, type TunnelStats } from "./tunnel.ts";

/** What {@linkcode RelayServer.stats} reports. */
export interface RelayStats {
  /** The relay's `X-PageKite-UUID`. */
  uuid: string;
  /** Tunnels with their kites, peers and counters. */
  tunnels: TunnelStats[];
  /** Open streams, each with the id of its tunnel. */
  streams: (StreamStats & { tunnel: number })[];
  /** Totals over the relay. */
  totals: {
    tunnels: number;
    kites: number;
    streams: number;
    /** Open connections: tunnels, streams, and ones still being read. */
    connections: number;
    /** Tunnel handshakes under way, kite-less lingering tunnels included. */
    pendingHandshakes: number;
    /** Bytes received from and written to connectors. */
    bytesIn: number;
    bytesOut: number;
  };
}

/** A running relay, shaped like `Deno.serve`'s handle. */
export interface RelayServer extends AsyncDisposable {
  /** The bound addresses, in the order of `listen`. */
  readonly addrs: Deno.NetAddr[];
  /** The relay's `X-PageKite-UUID`, stable for its lifetime. */
  readonly uuid: string;
  /** Resolves once the relay stopped and every task has ended. */
  readonly finished: Promise<void>;
  /**
   * Drains and stops the relay. The first call stops accepting (new
   * connections are refused), closes connections still being identified,
   * and lets in-flight streams finish: each tunnel closes once it carries
   * no stream, and whatever is left is closed when `shutdownGraceMs` is
   * over. A second call, or an abort of the `signal` option during the
   * grace, closes everything at once. Resolves once every task ended.
   *
   * The library registers no signal handlers. A CLI wires SIGTERM (and
   * SIGINT) to this method at start-up, before the relay could run out of
   * descriptors (`Deno.addSignalListener` panics without one), so that a
   * first signal drains and a second one stops at once:
   *
   * ```ts ignore
   * const relay = serveRelay(options);
   * Deno.addSignalListener("SIGTERM", () => void relay.shutdown());
   * await relay.finished;
   * ```
   */
  shutdown(): Promise<void>;
  /** Tunnels, kites, streams and counters. */
  stats(): RelayStats;
}

/**
 * Starts a relay.
 *
 * @param options Ports, kites and limits.
 * @returns The running relay.
 *
 * @example Usage
 * ```ts
 * import { serveRelay } from "@kitewire/pagekite/relay";
 * import assert from "node:assert/strict";
 *
 * await using relay = serveRelay({
 *   listen: [{ hostname: "127.0.0.1", port: 0 }],
 *   kites: [{ domain: "foo.example.com", secret: "s3cret" }],
 * });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: relay.addrs[0]!.port });
 * await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: foo.example.com\r\n\r\n"));
 * const answer = new Uint8Array(64);
 * const n = await conn.read(answer);
 * conn.close();
 * // No connector flies the kite yet.
 * assert.match(new TextDecoder().decode(answer.subarray(0, n!)), /^HTTP\/1\.1 503 Unavailable/);
 * ```
 */
export function serveRelay(options: RelayOptions = {}): RelayServer {
  return new Relay(resolveRelayOptions(options));
}

class Relay implements RelayServer, TunnelHost, RelayContext {
  readonly addrs: Deno.NetAddr[] = [];
  readonly uuid: string;
  readonly finished: Promise<void>;
  readonly options: ResolvedRelayOptions;
  readonly log: Logger = getLogger(["kitewire", "relay"]);
  readonly #listeners: Deno.TcpListener[] = [];
  readonly registry: Registry;
  readonly edge: RelayEdge;
  /** TLS endpoints (`tlsEndpoints`), with their secure contexts. */
  readonly tls: TlsEndpoints;
  readonly tunnels: Set<Tunnel> = new Set<Tunnel>();
  /** Connections still being identified. */
  readonly #sniffing = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #handshakes: Handshakes;
  readonly #rawPorts: RawPorts = new RawPorts(this);
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #done = Promise.withResolvers<void>();
  #nextTunnelId = 1;
  #closingFlag = false;
  #draining: Drain | undefined;
  /** The last accept() failed: report again only after a success. */
  #acceptFailing = false;

  get closing(): boolean {
    return this.#closingFlag;
  }

  constructor(options: ResolvedRelayOptions) {
    this.options = options;
    this.uuid = randomHex(20);
    this.finished = this.#done.promise;
    this.#handshakes = new Handshakes(this);
    this.edge = new RelayEdge(options, () => this.tunnels);
    this.tls = new TlsEndpoints(options.tlsEndpoints);
    this.registry = new Registry({
      tlsFor: (proto, domain) => this.tls.announces(proto, domain),
      authenticate: (tunnel, kite, signal) =>
        this.edge.authenticate(tunnel, kite, signal),
      kites: options.kites,
      protos: options.protos,
      ports: () => publicPorts(options, this.addrs),
      rawPorts: options.rawPorts,
      now: options.now,
    });
    try {
      for (const { hostname = "0.0.0.0", port } of options.listen) {
        const listener = Deno.listen({ hostname, port, transport: "tcp" });
        this.#listeners.push(listener);
        this.addrs.push(listener.addr);
      }
      // Numeric raw ports (spec §4.5) listen beside `listen`, not in addrs.
      const rawHostname = options.listen[0]!.hostname ?? "0.0.0.0";
      for (const port of rawListenPorts(options, this.addrs)) {
        const hostname = rawHostname;
        this.#listeners.push(Deno.listen({ hostname, port, transport: "tcp" }));
        this.#rawPorts.ports.add(port);
      }
    } catch (error) {
      for (const listener of this.#listeners) listener.close();
      throw error;
    }
    for (const listener of this.#listeners) this.track(this.#accept(listener));
    const tick = Math.max(
      20,
      Math.min(
        1000,
        options.pingIntervalMs / 4,
        options.duplicateGraceMs / 4,
        options.addKitesLingerMs / 4,
        options.streamIdleTimeoutMs / 4,
      ),
    );
    this.#timer = setInterval(() => this.#housekeeping(), tick);
    this.log.info("Relay {uuid} listening on {addrs}", {
      uuid: this.uuid,
      addrs: this.addrs.map((a) => `${a.hostname}:${a.port}`).join(", "),
    });
    options.signal?.addEventListener("abort", () => void this.shutdown(), {
      once: true,
    });
    if (options.signal?.aborted) void this.shutdown();
    options.onListen?.(this.addrs);
  }

  async shutdown(): Promise<void> {
    if (!this.#closingFlag) {
      this.#closingFlag = true;
      for (const listener of this.#listeners) listener.close();
      for (const conn of this.#sniffing) conn[Symbol.dispose]();
      // Tunnels stay while their streams run, up to shutdownGraceMs.
      this.#draining = new Drain(this, this.options.shutdownGraceMs);
      void this.#drain();
    } else {
      this.#draining?.force("relay shutdown");
    }
    await this.finished;
  }

  /** Closes every tunnel and connection that is left (end of a drain). */
  closeAll(reason: string): void {
    clearInterval(this.#timer);
    for (const conn of this.#sniffing) conn[Symbol.dispose]();
    for (const tunnel of [...this.tunnels]) tunnel.close(reason);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  stats(): RelayStats {
    const tunnels = [...this.tunnels];
    const tunnelStats = tunnels.map((t) => t.stats());
    const streams = tunnels.flatMap((t) =>
      t.streamStats().map((s) => ({ ...s, tunnel: t.id }))
    );
    return {
      uuid: this.uuid,
      tunnels: tunnelStats,
      streams,
      totals: {
        tunnels: tunnels.length,
        kites: this.registry.size,
        streams: streams.length,
        connections: this.#connections(),
        pendingHandshakes: this.#handshakes.pending(),
        bytesIn: tunnelStats.reduce((n, t) => n + t.bytesIn, 0),
        bytesOut: tunnelStats.reduce((n, t) => n + t.bytesOut, 0),
      },
    };
  }

  // TunnelHost

  addKites(tunnel: Tunnel, headers: [string, string][]): Promise<void> {
    return this.#handshakes.addKites(tunnel, headers);
  }

  closed(tunnel: Tunnel): void {
    this.registry.unregister(tunnel);
    this.tunnels.delete(tunnel);
  }

  report(error: unknown): void {
    if (this.options.onError !== undefined) this.options.onError(error);
    else this.log.warn("Relay error: {error}", { error });
  }

  acceptTunnel(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
    return this.#handshakes.accept(conn, bytes);
  }

  serveConnectTls(
    conn: Deno.Conn,
    host: string,
    rest: Uint8Array,
    port: number,
  ): Promise<boolean> {
    return serveTlsConnect(this, conn, host, rest, port);
  }

  release(conn: Deno.Conn): void {
    this.#sniffing.delete(conn);
  }

  newTunnel(conn: Deno.Conn, features: readonly string[]): Tunnel {
    const o = this.options;
    const tunnel = new Tunnel(this.#nextTunnelId++, conn, features, this, {
      compress: o.compress && features.includes("ZChunks"),
      compressionLevel: o.compressionLevel,
      maxChunkSize: o.maxChunkSize,
      queueBytes: o.tunnelQueueBytes,
      maxStreams: o.maxStreamsPerTunnel,
      admitStream: (tunnel, remote) => this.edge.admitStream(tunnel, remote),
      windowBytes: o.streamWindowBytes,
      maxBufferBytes: o.maxStreamBufferBytes,
      now: o.now,
    });
    this.tunnels.add(tunnel);
    return tunnel;
  }

  // Connections

  track(task: Promise<void>): void {
    const tracked = task.catch((error) => this.report(error)).finally(() =>
      this.#tasks.delete(tracked)
    );
    this.#tasks.add(tracked);
  }

  async #drain(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    this.#draining?.stop();
    clearInterval(this.#timer);
    this.#done.resolve();
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    const listenPort = listener.addr.port;
    const port = publicPort(this.options, listenPort);
    while (!this.#closingFlag) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (this.#closingFlag || error instanceof Deno.errors.BadResource) {
          return;
        }
        // Out of descriptors, most likely: shed the oldest connections
        // still being identified, back off, keep accepting (_drain.ts).
        if (isOutOfDescriptors(error)) shedOldest(this.#sniffing);
        if (!this.#acceptFailing) this.report(error);
        this.#acceptFailing = true;
        await new Promise((r) => setTimeout(r, this.options.acceptBackoffMs));
        continue;
      }
      this.#acceptFailing = false;
      this.track(
        this.#rawPorts.ports.has(listenPort)
          ? this.#rawPorts.serve(conn, listenPort)
          : this.#handle(conn, port),
      );
    }
  }

  #connections(): number {
    let streams = 0;
    for (const tunnel of this.tunnels) streams += tunnel.streamCount;
    return this.#sniffing.size + this.tunnels.size + streams;
  }

  #overloaded(): boolean {
    return this.#connections() > this.options.overloadConnections;
  }

  async #handle(conn: Deno.TcpConn, port: number): Promise<void> {
    this.#sniffing.add(conn);
    let owned = true; // false once a tunnel or stream owns the connection
    try {
      conn.setNoDelay(true);
      const sniffed = await this.#sniff(conn);
      if (sniffed === null) return;
      const { what, bytes } = sniffed;
      const refusal = this.edge.refuse(conn, what.kind);
      if (refusal !== undefined) {
        if (refusal.length > 0) await this.answer(conn, refusal);
        return;
      }
      switch (what.kind) {
        case "ping":
          await this.answer(
            conn,
            this.unavailable("ping.pagekite", "http", "connection"),
          );
          return;
        case "tunnel":
          owned = !await this.#handshakes.accept(conn, bytes);
          return;
        case "http":
          this.#rawPorts.remember(conn, what.head.host);
          owned = !await serveHttp(this, conn, what, bytes, port);
          return;
        case "connect":
          owned = !await serveConnect(this, conn, what, bytes);
          return;
        case "tls":
          owned = !await serveTls(this, conn, what.hello, bytes, port);
          return;
        default: // XMPP, IRC, Minecraft
          owned = !serveProtocol(this, conn, what, bytes, port);
          return;
      }
    } catch (error) {
      if (!isDisconnectError(error)) this.report(error);
    } finally {
      this.#sniffing.delete(conn);
      if (owned) conn[Symbol.dispose]();
    }
  }

  /** Reads until the first bytes say what the connection is. */
  async #sniff(
    conn: Deno.Conn,
  ): Promise<{ what: Sniffed; bytes: Uint8Array } | null> {
    const timer = setTimeout(
      () => conn[Symbol.dispose](),
      this.options.sniffTimeoutMs,
    );
    try {
      return await sniffIncoming(this, conn);
    } catch (error) {
      if (isDisconnectError(error)) return null; // gone, or timed out
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async answer(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
    try {
      await writeAll(conn, bytes);
    } catch (error) {
      if (!isDisconnectError(error)) throw error;
    }
  }

  unavailable(
    host: string,
    proto: string,
    label: "connection" | "kite",
    conn?: Deno.Conn,
  ): Uint8Array {
    const page: Parameters<typeof unavailablePage>[0] = {
      uuid: this.uuid,
      overloaded: this.#overloaded(),
      host,
      label,
      proto,
    };
    if (this.options.errorUrl !== undefined && label === "kite") {
      page.errorUrl = this.options.errorUrl;
      if (conn !== undefined) {
        page.relayIp = (conn.localAddr as Deno.NetAddr).hostname;
      }
    }
    return unavailablePage(page);
  }

  #housekeeping(): void {
    const now = this.options.now();
    this.edge.housekeeping(now);
    const { pingIntervalMs, pingGraceMs } = this.options;
    for (const tunnel of [...this.tunnels]) {
      if (
        tunnel.suspectedAt !== undefined &&
        tunnel.lastReceivedAt >= tunnel.suspectedAt
      ) {
        tunnel.suspectedAt = undefined; // it answered: alive
      }
      if (
        tunnel.suspectedAt !== undefined &&
        now - tunnel.suspectedAt >= this.options.duplicateGraceMs
      ) {
        tunnel.close("silent after its kite was claimed by another connector");
      } else if (
        tunnel.lingerUntil !== undefined && tunnel.kites.size === 0 &&
        now >= tunnel.lingerUntil
      ) {
        tunnel.close("no kite was signed within addKitesLingerMs");
      } else if (now - tunnel.lastReceivedAt >= pingIntervalMs + pingGraceMs) {
        tunnel.close("dead: no answer to PING");
      } else if (now - tunnel.lastReceivedAt >= pingIntervalMs) {
        tunnel.ping();
      }
    }
  }
}

function randomHex(bytes: number): string {
  let hex = "";
  for (const b of crypto.getRandomValues(new Uint8Array(bytes))) {
    hex += b.toString(16).padStart(2, "0");
  }
  return hex;
}
