// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Options of the relay's edge: external auth apps and abuse controls
 * (docs/reliability.md §4.4, §5; spec §7.2, §7.3). Part of
 * {@linkcode RelayOptions}.
 *
 * @module
 */

import { type AuthAppOptions, checkAuthApps } from "./auth_app.ts";
import type { StaticKite } from "./kites.ts";
import { Acl, type AclRule, checkRate, type IpRateLimit } from "./limits.ts";
import { resolveLimits } from "./_option_limits.ts";

export type { AclRule, AuthAppOptions, IpRateLimit };

/** Auth apps and abuse controls of {@linkcode serveRelay}. */
export interface RelayEdgeOptions {
  /**
   * External programs asked for the secret and quota of kites no static
   * kite covers (pagekite.py `--authdomain=[domain:]/path/to/app`), first
   * match by `domain` wins. Failures refuse the kite (`unauthorized`).
   *
   * @default {[]}
   */
  authApps?: AuthAppOptions[];
  /**
   * Auth-app lookups under way at once; more kites are refused
   * (`unauthorized`) at once.
   *
   * @default {16}
   */
  maxAuthLookups?: number;
  /**
   * Client-IP rate limit of every tunnel (pagekite.py `--ratelimit_ips`):
   * a new client IP beyond `ips` within `seconds` gets the 503 page.
   * Static kites and auth apps may set stricter ones; a tunnel announces
   * its strictest as `X-PageKite-IPsPerSec`. Absent: no global limit.
   */
  ipsPerSec?: IpRateLimit;
  /**
   * Who may use the relay's public side: first matching rule wins, no
   * match allows. Denied HTTP clients get a 403 page; others are closed.
   *
   * @default {[]}
   */
  clientAcl?: AclRule[];
  /**
   * Who may open tunnels: first matching rule wins, no match allows.
   * Denied connectors get `HTTP/1.0 403 Forbidden`.
   *
   * @default {[]}
   */
  tunnelAcl?: AclRule[];
  /**
   * A stream that moved no byte either way this long is closed.
   *
   * @default {120000}
   */
  streamIdleTimeoutMs?: number;
  /**
   * New streams per tunnel per second; more users get the 503 page.
   *
   * @default {1000}
   */
  maxStreamOpensPerSecond?: number;
  /**
   * Bytes buffered relay-wide (queued toward connectors plus waiting for
   * users); while above, new streams are refused with the 503 page.
   *
   * @default {67108864}
   */
  maxBufferedBytes?: number;
}

/** {@linkcode RelayEdgeOptions} with defaults filled in and checked. */
export type ResolvedEdgeOptions =
  & Required<Omit<RelayEdgeOptions, "ipsPerSec">>
  & Pick<RelayEdgeOptions, "ipsPerSec">;

const EDGE_LIMITS = {
  maxAuthLookups: 16,
  streamIdleTimeoutMs: 120_000,
  maxStreamOpensPerSecond: 1000,
  maxBufferedBytes: 64 * 1024 * 1024,
} as const;

/** Fills in the edge defaults; throws for malformed options. */
export function resolveEdgeOptions(
  options: RelayEdgeOptions & { kites?: StaticKite[] },
): ResolvedEdgeOptions {
  const resolved = {
    authApps: options.authApps ?? [],
    clientAcl: options.clientAcl ?? [],
    tunnelAcl: options.tunnelAcl ?? [],
  } as ResolvedEdgeOptions;
  if (options.ipsPerSec !== undefined) resolved.ipsPerSec = options.ipsPerSec;
  resolveLimits(options, EDGE_LIMITS, resolved);

  checkAuthApps(resolved.authApps);
  new Acl(resolved.clientAcl, "clientAcl");
  new Acl(resolved.tunnelAcl, "tunnelAcl");
  checkRate(resolved.ipsPerSec, "ipsPerSec");
  for (const [i, kite] of (options.kites ?? []).entries()) {
    checkRate(kite.ipsPerSec, `kites[${i}].ipsPerSec`);
  }
  return resolved;
}
