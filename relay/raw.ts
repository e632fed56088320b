// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Numeric raw-port listeners (spec §4.5): a connection on such a port
 * (SSH, say, which waits for the server to speak) names no host, so it is
 * routed to the raw kite of the domain that the same client IP most
 * recently asked for over HTTP, remembered for `rawPortMemoryMs`. With no
 * such domain or kite the connection is closed.
 *
 * @module
 */

import type { RelayContext } from "./_context.ts";
import { isDisconnectError } from "../tunnel/_io.ts";
import { publicPort } from "./_ports.ts";

const EMPTY = new Uint8Array(0);

/** The relay's numeric raw ports and the memory of recent HTTP domains. */
export class RawPorts {
  readonly #ctx: RelayContext;
  /** Client IP to the domain it last asked for, oldest first. */
  readonly #recent = new Map<string, { domain: string; at: number }>();
  /** Listening ports that are raw ports. */
  readonly ports: Set<number> = new Set<number>();

  constructor(ctx: RelayContext) {
    this.#ctx = ctx;
  }

  /** Notes the domain of an HTTP request, when raw ports listen. */
  remember(conn: Deno.Conn, domain: string | undefined): void {
    if (this.ports.size === 0 || domain === undefined || domain === "") {
      return;
    }
    const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
    const now = this.#ctx.options.now();
    this.#recent.delete(ip);
    this.#recent.set(ip, { domain, at: now });
    const { rawPortMemoryMs, rawPortMemoryEntries } = this.#ctx.options;
    for (const [key, { at }] of this.#recent) {
      if (
        this.#recent.size <= rawPortMemoryEntries && now - at < rawPortMemoryMs
      ) break;
      this.#recent.delete(key);
    }
  }

  /** The domain `ip` asked for within `rawPortMemoryMs`, if any. */
  recall(ip: string): string | undefined {
    const entry = this.#recent.get(ip);
    if (entry === undefined) return undefined;
    if (
      this.#ctx.options.now() - entry.at >= this.#ctx.options.rawPortMemoryMs
    ) {
      this.#recent.delete(ip);
      return undefined;
    }
    return entry.domain;
  }

  /** Relays a connection on a raw port, or closes it. */
  async serve(conn: Deno.TcpConn, listenPort: number): Promise<void> {
    let stream;
    try {
      conn.setNoDelay(true);
      const port = publicPort(this.#ctx.options, listenPort);
      const remote = conn.remoteAddr as Deno.NetAddr;
      const domain = this.recall(remote.hostname);
      if (domain !== undefined && !this.#ctx.closing) {
        stream = this.#ctx.registry.route("raw", domain, port)?.value
          .openStream({ proto: "raw", host: domain, port }, remote, EMPTY);
      }
    } catch (error) {
      if (!isDisconnectError(error)) throw error;
    } finally {
      if (stream == null) conn[Symbol.dispose]();
    }
    if (stream == null) return;
    this.#ctx.release(conn);
    await stream.attach(conn);
  }
}
