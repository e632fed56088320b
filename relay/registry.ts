// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The relay's kite registry: which tunnel flies which kite, and the checks
 * a kite request passes before it flies (spec §2.3): port, protocol,
 * challenge token, signature, `X-PageKite-Replace`, duplicates.
 *
 * @module
 */

import {
  checkKiteSignature,
  formatKiteName,
  type KiteName,
  kiteNameOf,
  type KiteRequest,
  type KiteResult,
  type TunnelRequest,
} from "../protocol/mod.ts";
import { Challenges } from "./challenge.ts";
import { kiteKey, KiteSecrets, type StaticKite } from "./kites.ts";
import {
  findConflict,
  findRoute,
  type Route,
  type RouteProto,
} from "./routing.ts";
import type { Tunnel } from "./tunnel.ts";

/** Settings of a registry. */
export interface RegistrySettings {
  kites: readonly StaticKite[];
  protos: readonly string[];
  /** The relay's public ports, after binding. */
  ports: () => readonly number[];
  /** Ports of `raw-N` kites; `virtual` allows any. @default {[]} */
  rawPorts?: readonly (number | "virtual")[];
  now: () => number;
  /**
   * Asks an auth app for a kite no static kite covers: its secret, and a
   * reason to refuse it even when the signature holds (quota).
   */
  authenticate?: (
    tunnel: Tunnel,
    kite: KiteRequest,
    signal?: AbortSignal,
  ) => Promise<{ secret?: string; reject?: string }>;
  /**
   * Whether the relay terminates TLS for a kite, announced with
   * `X-PageKite-SSL-OK`.
   */
  tlsFor?: (proto: string, domain: string) => boolean;
}

/** Live kites, session ids, and the kite checks. */
export class Registry {
  readonly #live = new Map<string, Tunnel>();
  readonly #sessions = new Map<string, Tunnel>();
  readonly #secrets: KiteSecrets;
  readonly #challenges: Challenges;
  readonly #settings: RegistrySettings;

  constructor(settings: RegistrySettings) {
    this.#settings = settings;
    this.#secrets = new KiteSecrets(settings.kites);
    this.#challenges = new Challenges(settings.now);
  }

  /** How many kites fly. */
  get size(): number {
    return this.#live.size;
  }

  /** The tunnel for a public request, per spec §4.2. */
  route(
    proto: RouteProto,
    host: string,
    port: number,
  ): Route<Tunnel> | undefined {
    return findRoute(this.#live, proto, host, port, this.#settings.ports());
  }

  /**
   * The tunnel of exactly the kite `proto[-port]:domain`: no wildcard, no
   * `unknown` (end-user CONNECT, spec §4.4).
   */
  exact(
    proto: string,
    domain: string,
    port?: number,
  ): Route<Tunnel> | undefined {
    const key = kiteKey(proto, domain, port);
    const value = this.#live.get(key);
    return value === undefined ? undefined : { key, proto, value };
  }

  /** A fresh session id for `tunnel`. */
  newSession(tunnel: Tunnel): string {
    const random = crypto.getRandomValues(new Uint8Array(20));
    let hex = "";
    for (const b of random) hex += b.toString(16).padStart(2, "0");
    const id = `${Math.floor(this.#settings.now() / 1000).toString(16)}:${hex}`;
    this.#sessions.set(id, tunnel);
    tunnel.sessionIds.add(id);
    return id;
  }

  /** Removes a closed tunnel's kites and sessions. */
  unregister(tunnel: Tunnel): void {
    for (const key of tunnel.kites) {
      if (this.#live.get(key) === tunnel) this.#live.delete(key);
    }
    tunnel.kites.clear();
    for (const id of tunnel.sessionIds) this.#sessions.delete(id);
    tunnel.sessionIds.clear();
  }

  /**
   * Answers every kite of a request for `tunnel`, registering the ones
   * that pass. Results come in request order.
   */
  async answer(
    tunnel: Tunnel,
    request: TunnelRequest,
    signal?: AbortSignal,
  ): Promise<KiteResult[]> {
    const results: (KiteResult | undefined)[] = [];
    const verified: { index: number; kite: KiteRequest; key: string }[] = [];
    for (const [index, kite] of request.kites.entries()) {
      const name = kiteNameOf(kite);
      const key = kiteKey(kite.proto, kite.domain, kite.port);
      const invalid = (reason: string): KiteResult => ({
        ...name,
        status: "invalid",
        reason,
      });
      if (tunnel.kites.has(key)) {
        results.push(this.#ok(name)); // asked again: still flying
        continue;
      }
      if (kite.port !== undefined && !this.#servesPort(kite.proto, kite.port)) {
        results.push(invalid("port"));
        continue;
      }
      if (!this.#settings.protos.includes(kite.proto)) {
        results.push(invalid("proto"));
        continue;
      }
      const signed = formatKiteName(name);
      if (kite.token === "") {
        results.push(await this.#challenge(name, signed));
        continue;
      }
      if (!await this.#challenges.redeem(signed, kite.token)) {
        // Expired, forged or replayed: one fresh challenge per tunnel, then
        // a refusal.
        if (tunnel.rechallenged.has(key)) {
          results.push(invalid("unauthorized"));
        } else {
          tunnel.rechallenged.add(key);
          results.push(await this.#challenge(name, signed));
        }
        continue;
      }
      let secret = this.#secrets.find(kite.proto, kite.domain, kite.port);
      let reject: string | undefined;
      if (secret === undefined && this.#settings.authenticate !== undefined) {
        ({ secret, reject } = await this.#settings.authenticate(
          tunnel,
          kite,
          signal,
        ));
      }
      if (secret === undefined) {
        results.push(invalid(reject ?? "unauthorized"));
        continue;
      }
      if (!await checkKiteSignature(kite, secret)) {
        results.push(invalid("signature"));
        continue;
      }
      if (reject !== undefined) {
        results.push(invalid(reject));
        continue;
      }
      results.push(undefined);
      verified.push({ index, kite, key });
    }
    // Only a connector that proved its kites may retire an old tunnel.
    if (request.replace !== undefined && verified.length > 0) {
      this.#replace(tunnel, request.replace, verified.map((v) => v.key));
    }
    for (const { index, kite, key } of verified) {
      const conflict = findConflict(
        this.#live,
        kite.proto,
        kite.domain,
        kite.port,
      );
      if (conflict !== undefined && conflict.value !== tunnel) {
        results[index] = { ...kiteNameOf(kite), status: "duplicate" };
        this.#suspect(conflict.value);
        continue;
      }
      this.#live.set(key, tunnel);
      tunnel.kites.add(key);
      tunnel.lingerUntil = undefined;
      results[index] = this.#ok(kiteNameOf(kite));
    }
    return results as KiteResult[];
  }

  /** Whether a port-specific kite may fly on `port`. */
  #servesPort(proto: string, port: number): boolean {
    if (this.#settings.ports().includes(port)) return true;
    const raw = this.#settings.rawPorts ?? [];
    return proto === "raw" &&
      (raw.includes("virtual") || raw.includes(port));
  }

  #ok(name: KiteName): KiteResult {
    const result: KiteResult = { ...name, status: "ok" };
    if (this.#settings.tlsFor?.(name.proto, name.domain) === true) {
      result.tls = true;
    }
    return result;
  }

  async #challenge(name: KiteName, signed: string): Promise<KiteResult> {
    return {
      ...name,
      status: "sign-this",
      token: await this.#challenges.issue(signed),
    };
  }

  /** Retires the old tunnel's copies of `keys`; closes it if none remain. */
  #replace(tunnel: Tunnel, sessionId: string, keys: string[]): void {
    const old = this.#sessions.get(sessionId);
    if (old === undefined || old === tunnel) return;
    for (const key of keys) {
      if (old.kites.delete(key) && this.#live.get(key) === old) {
        this.#live.delete(key);
      }
    }
    if (old.kites.size === 0) old.close("replaced by a newer tunnel");
  }

  /** Pings a tunnel whose kite is claimed again; reaped if it stays silent. */
  #suspect(tunnel: Tunnel): void {
    if (tunnel.suspectedAt !== undefined) return;
    tunnel.suspectedAt = this.#settings.now();
    tunnel.ping();
  }
}
