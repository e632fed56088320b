// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Options of {@linkcode serveRelay}, with every limit named and defaulted
 * (defaults from docs/reliability.md §5 and pagekite.py).
 *
 * @module
 */

import { checkEdgeOptions } from "./_ports.ts";
import { type RelayEdgeOptions, resolveEdgeOptions } from "./edge_options.ts";
import { type RelayTlsOptions, resolveTlsOptions } from "./tls_options.ts";
import type { StaticKite } from "./kites.ts";
import { resolveLimits } from "./_option_limits.ts";

/** Where a relay listens. */
export interface RelayListenOptions {
  /**
   * The address to bind.
   *
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /** The port; 0 picks a free one. */
  port: number;
}

/** Options for {@linkcode serveRelay}. */
export interface RelayOptions extends RelayEdgeOptions, RelayTlsOptions {
  /**
   * Addresses to listen on. Each accepts public traffic and tunnel
   * requests alike, as pagekite.py's front-end does.
   *
   * @default {[{ hostname: "0.0.0.0", port: 80 }]}
   */
  listen?: RelayListenOptions[];
  /** Kites whose secrets the relay knows (pagekite.py `--domain`). */
  kites?: StaticKite[];
  /**
   * Kite protocols the relay accepts, announced as `X-PageKite-Protos`.
   * Add `xmpp`, `irc` or `minecraft` to relay those protocols; `raw` is in
   * the default only when `rawPorts` is set.
   *
   * @default {["http", "http2", "http3", "websocket"]}
   */
  protos?: string[];
  /**
   * Raw ports (pagekite.py `--rawports`), announced as
   * `X-PageKite-Raw-Ports`. A `raw-N` kite is accepted only for a port
   * listed here (or any port with `"virtual"`); users reach raw kites with
   * `CONNECT host:port`. Each number also makes the relay listen on that
   * port (on the hostname of the first `listen` entry) and route every
   * connection to the raw kite of the domain the same client IP last asked
   * for over HTTP (spec §4.5). When non-empty and `protos` is not given,
   * `raw` joins the default protocols.
   *
   * @default {[]}
   */
  rawPorts?: (number | "virtual")[];
  /**
   * How long a numeric raw port remembers the domain a client IP last
   * requested over HTTP.
   *
   * @default {120000}
   */
  rawPortMemoryMs?: number;
  /**
   * Client IPs remembered for numeric raw ports; the oldest are forgotten
   * first.
   *
   * @default {65536}
   */
  rawPortMemoryEntries?: number;
  /**
   * Listening ports that stand for other public ports (pagekite.py
   * `--portalias=from:to`): connections on `from` are routed, and streams
   * report `Port:`, as if they came in on `to`, and `X-PageKite-Ports`
   * lists `to`.
   *
   * @default {{}}
   */
  portAliases?: Record<number, number>;
  /**
   * Let connectors that advertise `ZChunks` receive compressed frames.
   *
   * @default {true}
   */
  compress?: boolean;
  /**
   * zlib level of compressed frames toward connectors.
   *
   * @default {1}
   */
  compressionLevel?: number;
  /** Message of the day, sent as `X-PageKite-Misc: motd=…`. */
  motd?: string;
  /**
   * A page to show (in a frameset) instead of the relay's own 503 page.
   * When it contains `?`, `where`, `proto`, `domain` and `relay` parameters
   * are appended.
   */
  errorUrl?: string;
  /**
   * Above this many live connections (tunnels and public ones) answers say
   * `X-PageKite-Overloaded: Sorry`, so connectors prefer other relays.
   *
   * @default {10000}
   */
  overloadConnections?: number;
  /**
   * Time for a new connection to show what it is (request head, tunnel
   * request line, ...).
   *
   * @default {10000}
   */
  sniffTimeoutMs?: number;
  /**
   * Bytes of a public request head, blank line included.
   *
   * @default {16384}
   */
  maxRequestHeadBytes?: number;
  /**
   * Header lines of a public request head.
   *
   * @default {100}
   */
  maxRequestHeaders?: number;
  /**
   * Time for a tunnel request to arrive whole and be answered.
   *
   * @default {5000}
   */
  handshakeTimeoutMs?: number;
  /**
   * Bytes of a tunnel request head: about 400 signed kite lines.
   *
   * @default {65536}
   */
  maxHandshakeBytes?: number;
  /**
   * Header lines of a tunnel request head.
   *
   * @default {1024}
   */
  maxHandshakeHeaders?: number;
  /**
   * Tunnel handshakes under way at once, lingering kite-less tunnels
   * included; more are refused with 503.
   *
   * @default {256}
   */
  maxPendingHandshakes?: number;
  /**
   * Tunnel handshakes under way at once from one IP address.
   *
   * @default {64}
   */
  maxPendingHandshakesPerIp?: number;
  /**
   * How long a tunnel with no live kite may stay open waiting for kites
   * signed inside it (`AddKites`).
   *
   * @default {60000}
   */
  addKitesLingerMs?: number;
  /**
   * A tunnel that was silent this long gets a `PING`.
   *
   * @default {30000}
   */
  pingIntervalMs?: number;
  /**
   * A pinged tunnel still silent this long after the interval is dead.
   *
   * @default {30000}
   */
  pingGraceMs?: number;
  /**
   * When a kite is claimed by a second connector, the first tunnel is
   * pinged and closed if it stays silent this long.
   *
   * @default {5000}
   */
  duplicateGraceMs?: number;
  /**
   * Bytes a stream may send ahead of the connector's `SKB` reports before
   * the relay stops reading the user (enforced once the first `SKB`
   * arrives, so connectors that never send it are not stalled).
   *
   * @default {262144}
   */
  streamWindowBytes?: number;
  /**
   * Bytes waiting for a slow user before the stream is closed: a
   * connector that ignores `SKB` cannot make the relay hold more.
   *
   * @default {1048576}
   */
  maxStreamBufferBytes?: number;
  /**
   * Bytes queued toward one connector before streams stop reading their
   * users.
   *
   * @default {1048576}
   */
  tunnelQueueBytes?: number;
  /**
   * Concurrent streams on one tunnel; more users get the 503 page.
   *
   * @default {1024}
   */
  maxStreamsPerTunnel?: number;
  /**
   * Largest frame accepted from a connector.
   *
   * @default {1048576}
   */
  maxChunkSize?: number;
  /**
   * After `shutdown()` began, how long in-flight streams may run before
   * every tunnel is closed; tunnels close as soon as their streams ended.
   *
   * @default {30000}
   */
  shutdownGraceMs?: number;
  /**
   * Pause before accepting again after `accept()` failed (out of
   * descriptors, most likely), so the relay never busy-loops on EMFILE.
   *
   * @default {100}
   */
  acceptBackoffMs?: number;
  /**
   * Stops the relay when aborted, like a call of `RelayServer.shutdown()`:
   * the first abort or call drains, a later one closes everything at once.
   */
  signal?: AbortSignal;
  /** Called with errors of single connections, which never stop the relay. */
  onError?: (error: unknown) => void;
  /** Called once the listeners are bound. */
  onListen?: (addrs: Deno.NetAddr[]) => void;
  /** Clock in milliseconds; tests inject their own. */
  now?: () => number;
}

/** {@linkcode RelayOptions} with every default filled in. */
export type ResolvedRelayOptions =
  & Required<
    Omit<
      RelayOptions,
      | "motd"
      | "errorUrl"
      | "signal"
      | "onError"
      | "onListen"
      | "now"
      | "ipsPerSec"
      | "tlsDefaultName"
    >
  >
  & Pick<
    RelayOptions,
    | "motd"
    | "errorUrl"
    | "signal"
    | "onError"
    | "onListen"
    | "ipsPerSec"
    | "tlsDefaultName"
  >
  & { now: () => number };

const LIMITS = {
  overloadConnections: 10_000,
  sniffTimeoutMs: 10_000,
  maxRequestHeadBytes: 16_384,
  maxRequestHeaders: 100,
  handshakeTimeoutMs: 5_000,
  maxHandshakeBytes: 65_536,
  maxHandshakeHeaders: 1024,
  maxPendingHandshakes: 256,
  maxPendingHandshakesPerIp: 64,
  addKitesLingerMs: 60_000,
  pingIntervalMs: 30_000,
  pingGraceMs: 30_000,
  duplicateGraceMs: 5_000,
  streamWindowBytes: 262_144,
  maxStreamBufferBytes: 1_048_576,
  tunnelQueueBytes: 1_048_576,
  maxStreamsPerTunnel: 1024,
  maxChunkSize: 1_048_576,
  rawPortMemoryMs: 120_000,
  rawPortMemoryEntries: 65_536,
  shutdownGraceMs: 30_000,
  acceptBackoffMs: 100,
} as const;

/** Fills in defaults and checks every limit. */
export function resolveRelayOptions(
  options: RelayOptions,
): ResolvedRelayOptions {
  const resolved = {
    listen: options.listen ?? [{ hostname: "0.0.0.0", port: 80 }],
    kites: options.kites ?? [],
    protos: (options.protos ?? [
      "http",
      "http2",
      "http3",
      "websocket",
      ...(options.rawPorts?.length ? ["raw"] : []),
    ]).map((p) => p.toLowerCase()),
    rawPorts: options.rawPorts ?? [],
    portAliases: options.portAliases ?? {},
    compress: options.compress ?? true,
    compressionLevel: options.compressionLevel ?? 1,
    motd: options.motd,
    errorUrl: options.errorUrl,
    signal: options.signal,
    onError: options.onError,
    onListen: options.onListen,
    now: options.now ?? Date.now,
  } as ResolvedRelayOptions;
  resolveLimits(options, LIMITS, resolved);

  if (resolved.listen.length === 0) {
    throw new TypeError("Cannot serve relay: 'listen' is empty");
  }
  checkEdgeOptions(resolved);
  Object.assign(resolved, resolveEdgeOptions(options));
  Object.assign(resolved, resolveTlsOptions(options));
  return resolved;
}
