// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Finding the kite for a public connection (spec §4.2): protocol fallbacks,
 * port-specific registrations first, wildcards, then the `unknown` kite.
 * Pure: it looks into a map of live registrations and never dials.
 *
 * @module
 */

import { kiteKey, wildcardNames } from "./kites.ts";

/** Kinds of request a relay routes: `http`, `websocket`, `probe`, or a kite protocol. */
export type RouteProto = string;

/** Protocols tried for a request, in order. */
export function candidateProtos(proto: RouteProto): string[] {
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

/** A registration found by {@linkcode findRoute}. */
export interface Route<T> {
  /** The registration key that matched, `proto[-port]:domain`. */
  key: string;
  /** The protocol that matched: the stream's `Proto`. */
  proto: string;
  /** The registration. */
  value: T;
}

/**
 * Finds the registration for `host` on public port `port`: for each
 * candidate protocol `p`, `p-port:name` then `p:name`, where `name` is the
 * host and then its wildcard parents; failing that, the `unknown` kite of
 * the first candidate. Probes are not port-specific: they try every port
 * in `ports`.
 */
export function findRoute<T>(
  live: ReadonlyMap<string, T>,
  proto: RouteProto,
  host: string,
  port: number,
  ports: readonly number[] = [port],
): Route<T> | undefined {
  const candidates = candidateProtos(proto);
  const names = wildcardNames(host.toLowerCase());
  const probePorts = proto === "probe" ? ports : [port];
  for (const p of candidates) {
    for (const n of probePorts) {
      for (const name of names) {
        const found = lookup(live, p, name, n);
        if (found !== undefined) return found;
      }
    }
    for (const name of names) {
      const found = lookup(live, p, name);
      if (found !== undefined) return found;
    }
  }
  const first = candidates[0]!;
  return lookup(live, first, "unknown", port) ?? lookup(live, first, "unknown");
}

function lookup<T>(
  live: ReadonlyMap<string, T>,
  proto: string,
  domain: string,
  port?: number,
): Route<T> | undefined {
  const key = kiteKey(proto, domain, port);
  const value = live.get(key);
  return value === undefined ? undefined : { key, proto, value };
}

/**
 * The live registration a new kite would duplicate: the same key, or a
 * wildcard kite of the same protocol covering the domain (pagekite.py
 * refuses `http:foo.example.com` while `http:*.example.com` flies).
 */
export function findConflict<T>(
  live: ReadonlyMap<string, T>,
  proto: string,
  domain: string,
  port?: number,
): Route<T> | undefined {
  for (const name of wildcardNames(domain.toLowerCase())) {
    const found = lookup(live, proto, name, port);
    if (found !== undefined) return found;
  }
  return undefined;
}
