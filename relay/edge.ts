// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The relay's edge policy: client and tunnel ACLs, auth-app lookups and
 * the quota they bring (spec §7.1, §7.3), the client-IP rate limit (§7.2),
 * the stream-open rate, the relay-wide buffer budget, and the stream idle
 * timeout. The relay, the registry and the handshakes call into it.
 *
 * @module
 */

import type { KiteRequest, TunnelResponse } from "../protocol/mod.ts";
import { type AuthAnswer, AuthApps } from "./auth_app.ts";
import { kiteKey } from "./kites.ts";
import {
  Acl,
  ClientWindow,
  forbiddenPage,
  type IpRateLimit,
  OpenRate,
  stricterRate,
  TUNNEL_FORBIDDEN,
} from "./limits.ts";
import type { ResolvedRelayOptions } from "./options.ts";
import type { Tunnel } from "./tunnel.ts";

/** Per-tunnel edge state. */
interface TunnelState {
  /** Auth-app answers, by kite key. */
  auth: Map<string, AuthAnswer>;
  clients: ClientWindow;
  opens: OpenRate;
}

/** How long a computed relay-wide buffer total is reused. */
const BUFFERED_CACHE_MS = 100;

/** Edge policy of one relay. */
export class RelayEdge {
  readonly #options: ResolvedRelayOptions;
  readonly #tunnels: () => Iterable<Tunnel>;
  readonly #clientAcl: Acl;
  readonly #tunnelAcl: Acl;
  readonly #apps: AuthApps;
  readonly #state = new WeakMap<Tunnel, TunnelState>();
  /** Bytes and since-when of each stream, by `tunnel:sid`. */
  #activity = new Map<string, { total: number; since: number }>();
  #buffered = 0;
  #bufferedAt = -Infinity;

  constructor(options: ResolvedRelayOptions, tunnels: () => Iterable<Tunnel>) {
    this.#options = options;
    this.#tunnels = tunnels;
    this.#clientAcl = new Acl(options.clientAcl, "clientAcl");
    this.#tunnelAcl = new Acl(options.tunnelAcl, "tunnelAcl");
    this.#apps = new AuthApps(options.authApps, options.maxAuthLookups);
  }

  /**
   * The answer for a connection the ACLs refuse (empty: just close), or
   * `undefined` when it may go on.
   */
  refuse(conn: Deno.Conn, kind: string): Uint8Array | undefined {
    const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
    if (kind === "tunnel") {
      return this.#tunnelAcl.allows(ip) ? undefined : TUNNEL_FORBIDDEN;
    }
    if (this.#clientAcl.allows(ip)) return undefined;
    return kind === "http" || kind === "ping"
      ? forbiddenPage()
      : new Uint8Array(0);
  }

  /**
   * The secret for a kite no static kite covers, from an auth app; with
   * `reject` when the kite must be refused even if its signature holds.
   */
  async authenticate(
    tunnel: Tunnel,
    kite: KiteRequest,
    signal?: AbortSignal,
  ): Promise<{ secret?: string; reject?: string }> {
    const answer = await this.#apps.lookup(kite.domain, signal);
    if (answer === undefined) return {};
    if (answer.secret !== undefined) {
      this.#stateOf(tunnel).auth.set(
        kiteKey(kite.proto, kite.domain, kite.port),
        answer,
      );
    }
    return answer;
  }

  /** Quota and rate-limit headers for a tunnel's answer (spec §7.1). */
  tunnelAnswer(
    tunnel: Tunnel,
  ): Pick<TunnelResponse, "quota" | "qDays" | "qConns" | "ipsPerSec"> {
    const out: Pick<
      TunnelResponse,
      "quota" | "qDays" | "qConns" | "ipsPerSec"
    > = {};
    const auth = this.#state.get(tunnel)?.auth;
    for (const key of tunnel.kites) {
      const answer = auth?.get(key);
      if (answer === undefined) continue;
      for (const field of ["quota", "qDays", "qConns"] as const) {
        const value = answer[field];
        if (value !== undefined && value > 0) {
          out[field] = Math.min(out[field] ?? Infinity, value);
        }
      }
    }
    const rate = this.#rateOf(tunnel);
    if (rate !== undefined) out.ipsPerSec = rate;
    return out;
  }

  /**
   * Whether a user from `remote` may open a stream on `tunnel` now: the
   * client-IP rate limit, the stream-open rate and the relay-wide buffer
   * budget.
   */
  admitStream(tunnel: Tunnel, remote: Deno.NetAddr): boolean {
    const now = this.#options.now();
    if (this.#bufferedBytes(now) >= this.#options.maxBufferedBytes) {
      return false;
    }
    const state = this.#stateOf(tunnel);
    const rate = this.#rateOf(tunnel);
    if (
      rate !== undefined && !state.clients.admit(remote.hostname, rate, now)
    ) {
      return false;
    }
    return state.opens.admit(this.#options.maxStreamOpensPerSecond, now);
  }

  /** Closes streams idle for `streamIdleTimeoutMs`; called periodically. */
  housekeeping(now: number): void {
    const idle = this.#options.streamIdleTimeoutMs;
    const seen = new Map<string, { total: number; since: number }>();
    let buffered = 0;
    for (const tunnel of this.#tunnels()) {
      buffered += tunnel.linkStats().queued;
      for (const stream of tunnel.streamStats()) {
        buffered += stream.buffered;
        const key = `${tunnel.id}:${stream.sid}`;
        const total = stream.bytesIn + stream.bytesOut;
        const last = this.#activity.get(key);
        if (last === undefined || last.total !== total) {
          seen.set(key, { total, since: now });
        } else if (now - last.since >= idle) {
          tunnel.abortStream(stream.sid);
        } else {
          seen.set(key, last);
        }
      }
    }
    this.#activity = seen;
    this.#buffered = buffered;
    this.#bufferedAt = now;
  }

  #bufferedBytes(now: number): number {
    if (now - this.#bufferedAt < BUFFERED_CACHE_MS) return this.#buffered;
    let buffered = 0;
    for (const tunnel of this.#tunnels()) {
      buffered += tunnel.linkStats().queued;
      for (const stream of tunnel.streamStats()) buffered += stream.buffered;
    }
    this.#buffered = buffered;
    this.#bufferedAt = now;
    return buffered;
  }

  /** The strictest client-IP limit over the tunnel's live kites. */
  #rateOf(tunnel: Tunnel): IpRateLimit | undefined {
    let rate = this.#options.ipsPerSec;
    const auth = this.#state.get(tunnel)?.auth;
    for (const key of tunnel.kites) {
      const domain = key.slice(key.indexOf(":") + 1);
      for (const kite of this.#options.kites) {
        if (kite.ipsPerSec === undefined) continue;
        const base = kite.domain.toLowerCase().replace(/^\*\./, "");
        if (domain === base || domain.endsWith(`.${base}`)) {
          rate = stricterRate(rate, kite.ipsPerSec);
        }
      }
      rate = stricterRate(rate, auth?.get(key)?.ipsPerSec);
    }
    return rate;
  }

  #stateOf(tunnel: Tunnel): TunnelState {
    let state = this.#state.get(tunnel);
    if (state === undefined) {
      state = {
        auth: new Map(),
        clients: new ClientWindow(),
        opens: new OpenRate(),
      };
      this.#state.set(tunnel, state);
    }
    return state;
  }
}
