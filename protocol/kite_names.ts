// Copyright 2026 the Kitewire authors. MIT license.
/**
 * How both ends find the kite for a connection (spec §4.2 and §5.1): kite
 * keys, protocol fallbacks, port-specific kites first, wildcard parents,
 * and the `unknown` catch-all. Relays look up tunnels this way and
 * connectors look up local services.
 *
 * @module
 */

/**
 * The key of a kite registration: `proto[-port]:domain`, lower case.
 *
 * @param proto The kite protocol, e.g. `http` or `raw`.
 * @param domain The kite domain, e.g. `foo.example.com` or `*.example.com`.
 * @param port The public port of a port-specific kite.
 * @returns The key.
 *
 * @example Usage
 * ```ts
 * import { kiteKey } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.equal(kiteKey("raw", "SSH.example.com", 22), "raw-22:ssh.example.com");
 * ```
 */
export function kiteKey(proto: string, domain: string, port?: number): string {
  return `${proto}${port === undefined ? "" : `-${port}`}:${domain}`
    .toLowerCase();
}

/**
 * The names to try for a domain, most specific first: the name itself,
 * then `*.parent` for each parent that keeps at least two labels
 * (`a.b.example.com` → `*.b.example.com` → `*.example.com`, never
 * `*.com`).
 *
 * @param domain A host name, lower case.
 * @returns The name and its wildcard parents.
 *
 * @example Usage
 * ```ts
 * import { wildcardNames } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(wildcardNames("a.b.example.com"), [
 *   "a.b.example.com",
 *   "*.b.example.com",
 *   "*.example.com",
 * ]);
 * ```
 */
export function wildcardNames(domain: string): string[] {
  const names = [domain];
  const labels = domain.split(".");
  for (let i = 1; labels.length - i >= 2; i++) {
    const name = `*.${labels.slice(i).join(".")}`;
    if (name !== domain) names.push(name);
  }
  return names;
}

/**
 * The kite protocols tried for a request, in order: `http` falls back to
 * the `http2` and `http3` slots, `websocket` to the HTTP ones, a `probe`
 * to every protocol a probe can reach.
 *
 * @param proto `http`, `websocket`, `probe`, or a kite protocol.
 * @returns The protocols to try.
 *
 * @example Usage
 * ```ts
 * import { candidateProtos } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(candidateProtos("websocket"), ["websocket", "http", "http2", "http3"]);
 * assert.deepEqual(candidateProtos("raw"), ["raw"]);
 * ```
 */
export function candidateProtos(proto: string): string[] {
  switch (proto) {
    case "http":
      return ["http", "http2", "http3"];
    case "websocket":
      return ["websocket", "http", "http2", "http3"];
    case "probe":
      return ["http", "https", "websocket", "raw", "irc", "xmpp"];
    default:
      return [proto];
  }
}

/** A kite found by {@linkcode findKite}. */
export interface KiteMatch<T> {
  /** The key that matched, `proto[-port]:domain`. */
  key: string;
  /** The protocol that matched: a stream's `Proto`. */
  proto: string;
  /** What the map holds for that key. */
  value: T;
}

/** Options for {@linkcode findKite}. */
export interface FindKiteOptions {
  /**
   * Public ports to try port-specific kites on; a probe is not tied to the
   * port it came in on.
   *
   * @default {[port]}
   */
  ports?: readonly number[];
  /**
   * Fall back to the `unknown` kite of the first candidate protocol.
   *
   * @default {true}
   */
  unknown?: boolean;
}

/**
 * Finds the kite for `host` on public port `port` in a map keyed by
 * {@linkcode kiteKey}: for each candidate protocol `p`, `p-port:name` then
 * `p:name`, where `name` is the host and then its wildcard parents; failing
 * that, the `unknown` kite.
 *
 * @param kites Kites by key.
 * @param proto `http`, `websocket`, `probe`, or a kite protocol.
 * @param host The requested host name.
 * @param port The public port.
 * @param options Other ports to try, and whether `unknown` counts.
 * @returns The match, or `undefined`.
 *
 * @example Usage
 * ```ts
 * import { findKite, kiteKey } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const kites = new Map([[kiteKey("http", "*.example.com"), "wildcard"]]);
 * const match = findKite(kites, "websocket", "a.example.com", 80);
 * assert.equal(match?.value, "wildcard");
 * assert.equal(match?.proto, "http");
 * ```
 */
export function findKite<T>(
  kites: ReadonlyMap<string, T>,
  proto: string,
  host: string,
  port: number,
  options: FindKiteOptions = {},
): KiteMatch<T> | undefined {
  const candidates = candidateProtos(proto);
  const names = wildcardNames(host.toLowerCase());
  const ports = options.ports ?? [port];
  for (const p of candidates) {
    for (const n of ports) {
      for (const name of names) {
        const found = lookup(kites, p, name, n);
        if (found !== undefined) return found;
      }
    }
    for (const name of names) {
      const found = lookup(kites, p, name);
      if (found !== undefined) return found;
    }
  }
  if (options.unknown === false) return undefined;
  const first = candidates[0]!;
  return lookup(kites, first, "unknown", port) ??
    lookup(kites, first, "unknown");
}

/**
 * The kite a new registration would collide with: the same key, or a
 * wildcard kite of the same protocol covering the domain (pagekite.py
 * refuses `http:foo.example.com` while `http:*.example.com` flies).
 *
 * @param kites Kites by key.
 * @param proto The new kite's protocol.
 * @param domain The new kite's domain.
 * @param port The new kite's public port, if port-specific.
 * @returns The colliding kite, or `undefined`.
 *
 * @example Usage
 * ```ts
 * import { findKiteConflict, kiteKey } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const kites = new Map([[kiteKey("http", "*.example.com"), 1]]);
 * assert.equal(findKiteConflict(kites, "http", "foo.example.com")?.key, "http:*.example.com");
 * assert.equal(findKiteConflict(kites, "raw", "foo.example.com", 22), undefined);
 * ```
 */
export function findKiteConflict<T>(
  kites: ReadonlyMap<string, T>,
  proto: string,
  domain: string,
  port?: number,
): KiteMatch<T> | undefined {
  for (const name of wildcardNames(domain.toLowerCase())) {
    const found = lookup(kites, proto, name, port);
    if (found !== undefined) return found;
  }
  return undefined;
}

function lookup<T>(
  kites: ReadonlyMap<string, T>,
  proto: string,
  domain: string,
  port?: number,
): KiteMatch<T> | undefined {
  const key = kiteKey(proto, domain, port);
  const value = kites.get(key);
  return value === undefined ? undefined : { key, proto, value };
}
