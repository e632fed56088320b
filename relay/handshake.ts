// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Tunnel handshakes at the relay (spec §1, §2.3): reading a connector's
 * request under a deadline, bounding pending handshakes globally and per
 * IP, answering its kites, kite lines that arrive later inside the tunnel
 * (AddKites), and lingering kite-less tunnels.
 *
 * @module
 */

import {
  decodeTunnelRequest,
  encodeTunnelResponse,
  findHandshakeEnd,
  kiteResponseHeaders,
  parseKiteRequestHeaders,
  ProtocolLimitError,
  type TunnelRequest,
  type TunnelResponse,
} from "../protocol/mod.ts";
import { isDisconnectError, writeAll } from "../tunnel/_io.ts";
import type { RelayContext } from "./_context.ts";
import { announcedRawPorts, publicPorts } from "./_ports.ts";
import type { Tunnel } from "./tunnel.ts";

/** Answer to a tunnel request that is refused before it is read. */
export const UNAVAILABLE: Uint8Array = new TextEncoder().encode(
  "HTTP/1.0 503 Unavailable\r\n\r\n",
);
const BANG = new TextEncoder().encode("!");

/** Tunnel handshakes of one relay. */
export class Handshakes {
  readonly #ctx: RelayContext;
  /** Tunnel handshakes in progress, per IP. */
  readonly #handshakes = new Map<string, number>();

  constructor(ctx: RelayContext) {
    this.#ctx = ctx;
  }

  /** Answers kite lines that arrived inside a NOOP chunk (AddKites). */
  async addKites(tunnel: Tunnel, headers: [string, string][]): Promise<void> {
    let request;
    try {
      request = parseKiteRequestHeaders(headers);
    } catch (error) {
      this.#ctx.log.warn(
        "Tunnel {id}: bad kite lines in a NOOP chunk: {error}",
        { id: tunnel.id, error },
      );
      return;
    }
    // Auth apps get the handshake deadline here too.
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(),
      this.#ctx.options.handshakeTimeoutMs,
    );
    let results;
    try {
      results = await this.#ctx.registry.answer(
        tunnel,
        request,
        deadline.signal,
      );
    } finally {
      clearTimeout(timer);
    }
    if (tunnel.closed) return;
    const answer: TunnelResponse = {
      results,
      sessionId: this.#ctx.registry.newSession(tunnel),
      motd: this.#ctx.options.motd ?? "",
      ...this.#ctx.edge.tunnelAnswer(tunnel),
    };
    if (request.prefix !== undefined) answer.prefix = request.prefix;
    tunnel.sendControl({
      noop: true,
      headers: kiteResponseHeaders(answer),
      body: BANG,
    });
    this.#logResults(tunnel, results);
  }

  pending(ip?: string): number {
    let pending = 0;
    for (const [from, count] of this.#handshakes) {
      if (ip === undefined || from === ip) pending += count;
    }
    // A tunnel still in #welcome() is counted in #handshakes; count it
    // again only once it lingers for kites signed in the tunnel.
    for (const tunnel of this.#ctx.tunnels) {
      if (
        tunnel.kites.size === 0 && tunnel.lingerUntil !== undefined &&
        (ip === undefined ||
          (tunnel.conn.remoteAddr as Deno.NetAddr).hostname === ip)
      ) pending++;
    }
    return pending;
  }

  /** Answers a tunnel request; true when a tunnel took the connection. */
  async accept(conn: Deno.Conn, first: Uint8Array): Promise<boolean> {
    const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
    if (
      this.pending() >= this.#ctx.options.maxPendingHandshakes ||
      this.pending(ip) >= this.#ctx.options.maxPendingHandshakesPerIp
    ) {
      this.#ctx.log.warn(
        "Refusing a tunnel from {ip}: too many pending handshakes",
        { ip },
      );
      await this.#ctx.answer(conn, UNAVAILABLE);
      return false;
    }
    this.#handshakes.set(ip, (this.#handshakes.get(ip) ?? 0) + 1);
    // The deadline covers reading the request and auth-app lookups.
    const deadline = new AbortController();
    const timer = setTimeout(() => {
      deadline.abort();
      conn[Symbol.dispose]();
    }, this.#ctx.options.handshakeTimeoutMs);
    try {
      const limits = {
        maxHeadBytes: this.#ctx.options.maxHandshakeBytes,
        maxHeaders: this.#ctx.options.maxHandshakeHeaders,
      };
      let bytes: Uint8Array = first;
      let end: number;
      const buffer = new Uint8Array(16 * 1024);
      try {
        while ((end = findHandshakeEnd(bytes, limits)) === -1) {
          const n = await conn.read(buffer);
          if (n === null) return false;
          bytes = concat(bytes, buffer.subarray(0, n));
        }
      } catch (error) {
        if (error instanceof ProtocolLimitError) {
          await this.#ctx.answer(conn, UNAVAILABLE);
          return false;
        }
        throw error;
      }
      let request;
      try {
        request = decodeTunnelRequest(bytes.subarray(0, end), limits);
      } catch (error) {
        this.#ctx.log.warn("Refusing a tunnel from {ip}: {error}", {
          ip,
          error,
        });
        await this.#ctx.answer(conn, UNAVAILABLE);
        return false;
      }
      const features = request.features ?? [];
      const tunnel = this.#ctx.newTunnel(conn, features);
      try {
        return await this.#welcome(
          tunnel,
          request,
          bytes.slice(end),
          timer,
          deadline.signal,
        );
      } catch (error) {
        tunnel.close(
          isDisconnectError(error)
            ? "the connector left during the handshake"
            : String(error),
        );
        if (!isDisconnectError(error)) throw error;
        return true;
      }
    } catch (error) {
      if (isDisconnectError(error)) return false;
      throw error;
    } finally {
      clearTimeout(timer);
      const count = (this.#handshakes.get(ip) ?? 1) - 1;
      if (count === 0) this.#handshakes.delete(ip);
      else this.#handshakes.set(ip, count);
    }
  }

  /** Answers the kites of a new tunnel and starts it. */
  async #welcome(
    tunnel: Tunnel,
    request: TunnelRequest,
    rest: Uint8Array,
    timer: ReturnType<typeof setTimeout>,
    deadline: AbortSignal,
  ): Promise<boolean> {
    const features = tunnel.features;
    const conn = tunnel.conn;
    {
      const results = await this.#ctx.registry.answer(
        tunnel,
        request,
        deadline,
      );
      const response: TunnelResponse = {
        results,
        features: this.#ctx.options.compress
          ? ["ZChunks", "AddKites"]
          : ["AddKites"],
        protos: this.#ctx.options.protos.slice(),
        ports: publicPorts(this.#ctx.options, this.#ctx.addrs),
        ...announcedRawPorts(this.#ctx.options),
        sessionId: this.#ctx.registry.newSession(tunnel),
        motd: this.#ctx.options.motd ?? "",
        ...this.#ctx.edge.tunnelAnswer(tunnel),
      };
      if (request.prefix !== undefined) response.prefix = request.prefix;
      await writeAll(conn, encodeTunnelResponse(response));
      this.#logResults(tunnel, results);
      const live = results.some((r) => r.status === "ok");
      const rejected = results.some((r) =>
        r.status === "invalid" || r.status === "duplicate"
      );
      if (!live) {
        if (!features.includes("AddKites") || rejected || this.#ctx.closing) {
          tunnel.close("no kite was accepted");
          return true;
        }
        tunnel.lingerUntil = this.#ctx.options.now() +
          this.#ctx.options.addKitesLingerMs;
      }
      clearTimeout(timer);
      this.#ctx.track(tunnel.start(rest));
      return true;
    }
  }

  #logResults(tunnel: Tunnel, results: TunnelResponse["results"]): void {
    for (const r of results) {
      this.#ctx.log.info("Tunnel {id} from {remote}: {status} {kite}{why}", {
        id: tunnel.id,
        remote: tunnel.remote,
        status: r.status,
        kite: `${r.proto}${
          r.port === undefined ? "" : `-${r.port}`
        }:${r.domain}`,
        why: r.status === "invalid" && r.reason !== undefined
          ? ` (${r.reason})`
          : "",
      });
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
