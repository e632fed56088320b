// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Finding the tunnel for a public connection (spec §4.2), on top of the
 * kite-name rules shared with connectors (`protocol/kite_names.ts`). Pure:
 * it looks into the map of live registrations and never dials.
 *
 * @module
 */

import {
  candidateProtos,
  findKite,
  findKiteConflict,
  type KiteMatch,
} from "../protocol/mod.ts";

export { candidateProtos, findKiteConflict as findConflict };

/** Kinds of request a relay routes: `http`, `websocket`, `probe`, or a kite protocol. */
export type RouteProto = string;

/** A registration found by {@linkcode findRoute}. */
export type Route<T> = KiteMatch<T>;

/**
 * Finds the registration for `host` on public port `port`, per spec §4.2.
 * Probes are not port-specific: they try every port in `ports`.
 */
export function findRoute<T>(
  live: ReadonlyMap<string, T>,
  proto: RouteProto,
  host: string,
  port: number,
  ports: readonly number[] = [port],
): Route<T> | undefined {
  return findKite(live, proto, host, port, {
    ports: proto === "probe" ? ports : [port],
  });
}
