// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Options of {@linkcode connectKites}: the kites, where their local
 * services are, and every limit and timer, named and defaulted.
 *
 * @module
 */

import { HttpRequestFilter } from "./http_filter.ts";

/** Kite protocols a connector can fly. */
export type KiteProto =
  | "http"
  | "http2"
  | "http3"
  | "https"
  | "raw"
  | "websocket"
  | "xmpp"
  | "irc"
  | "minecraft";

/** A kite and its local service (pagekite.py `--service_on`). */
export interface ConnectorKite {
  /** The kite protocol. */
  proto: KiteProto;
  /** The domain: a name, `*.parent`, or `unknown` for the catch-all. */
  domain: string;
  /** Fly the kite on this public port only (`http-8080`, `raw-22`). */
  publicPort?: number;
  /** The kite's shared secret. */
  secret: string;
  /** The local service; `null` flies the kite without one (answers 503). */
  backend: { host: string; port: number } | null;
  /**
   * Only users from these addresses reach the service: an exact IP, or a
   * prefix ending in `.` or `:` (`10.1.`), like pagekite.py `+ip/`.
   */
  allowIps?: string[];
  /** HTTP Basic credentials every request must carry (`+password/`). */
  basicAuth?: { user: string; password: string };
  /**
   * Send `Host: <name>` to the service (`true`: the backend host), keeping
   * the original as `X-Old-Host` (`+rewritehost`).
   */
  rewriteHost?: boolean | string;
  /**
   * Do not add `X-Forwarded-For`, `X-Forwarded-Proto` and
   * `X-PageKite-Port` (`+rawheaders`).
   *
   * @default {false}
   */
  rawHeaders?: boolean;
  /**
   * Start each connection to the service with a PROXY protocol v1 line
   * (`+proxyproto`).
   *
   * @default {false}
   */
  proxyProtocol?: boolean;
  /**
   * Answer requests for well-known attack paths (`/wp-admin/`, `..`, ...)
   * with 500 instead of passing them on (pagekite.py's default filter).
   *
   * @default {false}
   */
  requestFilter?: boolean;
}

/** Reconnection backoff: exponential with full jitter. */
export interface ReconnectOptions {
  /**
   * The first delay's upper bound.
   *
   * @default {500}
   */
  initialMs?: number;
  /**
   * The largest delay.
   *
   * @default {30000}
   */
  maxMs?: number;
  /**
   * After a tunnel stayed up this long, delays start over.
   *
   * @default {60000}
   */
  resetAfterMs?: number;
}

/** Options for {@linkcode connectKites}. */
export interface ConnectorOptions {
  /** The relay, reached over plain TCP. */
  relay: { hostname: string; port: number };
  /** The kites to fly. */
  kites: ConnectorKite[];
  /**
   * Ask for and answer challenges inside the tunnel (`AddKites`); when off,
   * challenges are answered by reconnecting.
   *
   * @default {true}
   */
  addKites?: boolean;
  /**
   * Advertise `ZChunks`: the relay may compress, and we compress toward a
   * relay that advertised it.
   *
   * @default {true}
   */
  zchunks?: boolean;
  /**
   * zlib level toward the relay (pagekite.py connectors use 9).
   *
   * @default {6}
   */
  compressionLevel?: number;
  /**
   * Sent as `X-PageKite-Version`.
   *
   * @default {"kitewire-0.1.0"}
   */
  version?: string;
  /**
   * Time to connect to the relay.
   *
   * @default {10000}
   */
  connectTimeoutMs?: number;
  /**
   * Time for the relay to answer the tunnel request.
   *
   * @default {30000}
   */
  handshakeTimeoutMs?: number;
  /**
   * Time to connect to a local service.
   *
   * @default {5000}
   */
  backendTimeoutMs?: number;
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
  /** Reconnection backoff. */
  reconnect?: ReconnectOptions;
  /**
   * Bytes sent ahead of the relay's `SKB` before a stream stops reading
   * its service.
   *
   * @default {262144}
   */
  streamWindowBytes?: number;
  /**
   * Bytes waiting for a slow service before the stream is closed.
   *
   * @default {1048576}
   */
  maxStreamBufferBytes?: number;
  /**
   * Bytes queued toward the relay before streams stop reading.
   *
   * @default {1048576}
   */
  tunnelQueueBytes?: number;
  /**
   * Concurrent streams; more are answered as if the service were down.
   *
   * @default {1024}
   */
  maxStreams?: number;
  /**
   * Largest frame accepted from the relay.
   *
   * @default {1048576}
   */
  maxChunkSize?: number;
  /**
   * Events kept for a slow reader of `events`; older ones are dropped.
   *
   * @default {1000}
   */
  maxQueuedEvents?: number;
  /** Stops the connector when aborted. */
  signal?: AbortSignal;
  /** Called with errors of single streams and tunnels. */
  onError?: (error: unknown) => void;
  /** Clock in milliseconds; tests inject their own. */
  now?: () => number;
  /** Random numbers in [0, 1) for backoff jitter; tests inject their own. */
  random?: () => number;
}

/** {@linkcode ConnectorOptions} with every default filled in. */
export interface ResolvedConnectorOptions {
  relay: { hostname: string; port: number };
  kites: ConnectorKite[];
  addKites: boolean;
  zchunks: boolean;
  compressionLevel: number;
  version: string;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  backendTimeoutMs: number;
  pingIntervalMs: number;
  pingGraceMs: number;
  reconnect: Required<ReconnectOptions>;
  streamWindowBytes: number;
  maxStreamBufferBytes: number;
  tunnelQueueBytes: number;
  maxStreams: number;
  maxChunkSize: number;
  maxQueuedEvents: number;
  signal: AbortSignal | undefined;
  onError: ((error: unknown) => void) | undefined;
  now: () => number;
  random: () => number;
}

/**
 * Checks a kite: a domain and a secret, and options the HTTP filter takes
 * (so bad credentials or host names fail here, not on every stream).
 */
export function validateKite(kite: ConnectorKite): void {
  if (kite.domain === "" || kite.secret === "") {
    throw new TypeError(
      `Cannot connect kites: kite ${
        JSON.stringify(kite.domain)
      } needs a domain and a secret`,
    );
  }
  new HttpRequestFilter({
    remoteIp: "127.0.0.1",
    remotePort: 1,
    publicPort: 1,
    ...(typeof kite.rewriteHost === "string"
      ? { rewriteHost: kite.rewriteHost }
      : {}),
    ...(kite.basicAuth === undefined ? {} : { basicAuth: kite.basicAuth }),
  });
}

/** Fills in defaults and checks every limit. */
export function resolveConnectorOptions(
  options: ConnectorOptions,
): ResolvedConnectorOptions {
  const positive = (
    name: string,
    value: number | undefined,
    fallback: number,
  ) => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new RangeError(
        `Cannot connect kites: ${name} ${v} is not a positive integer`,
      );
    }
    return v;
  };
  if (options.kites.length === 0) {
    throw new TypeError("Cannot connect kites: 'kites' is empty");
  }
  for (const kite of options.kites) validateKite(kite);

  const level = options.compressionLevel ?? 6;
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new RangeError(
      `Cannot connect kites: compressionLevel ${level} is not an integer from 1 to 9`,
    );
  }
  return {
    relay: options.relay,
    kites: options.kites,
    addKites: options.addKites ?? true,
    zchunks: options.zchunks ?? true,
    compressionLevel: level,
    version: options.version ?? "kitewire-0.1.0",
    connectTimeoutMs: positive(
      "connectTimeoutMs",
      options.connectTimeoutMs,
      10_000,
    ),
    handshakeTimeoutMs: positive(
      "handshakeTimeoutMs",
      options.handshakeTimeoutMs,
      30_000,
    ),
    backendTimeoutMs: positive(
      "backendTimeoutMs",
      options.backendTimeoutMs,
      5_000,
    ),
    pingIntervalMs: positive("pingIntervalMs", options.pingIntervalMs, 30_000),
    pingGraceMs: positive("pingGraceMs", options.pingGraceMs, 30_000),
    reconnect: {
      initialMs: positive(
        "reconnect.initialMs",
        options.reconnect?.initialMs,
        500,
      ),
      maxMs: positive("reconnect.maxMs", options.reconnect?.maxMs, 30_000),
      resetAfterMs: positive(
        "reconnect.resetAfterMs",
        options.reconnect?.resetAfterMs,
        60_000,
      ),
    },
    streamWindowBytes: positive(
      "streamWindowBytes",
      options.streamWindowBytes,
      262_144,
    ),
    maxStreamBufferBytes: positive(
      "maxStreamBufferBytes",
      options.maxStreamBufferBytes,
      1_048_576,
    ),
    tunnelQueueBytes: positive(
      "tunnelQueueBytes",
      options.tunnelQueueBytes,
      1_048_576,
    ),
    maxStreams: positive("maxStreams", options.maxStreams, 1024),
    maxChunkSize: positive("maxChunkSize", options.maxChunkSize, 1_048_576),
    maxQueuedEvents: positive("maxQueuedEvents", options.maxQueuedEvents, 1000),
    signal: options.signal,
    onError: options.onError,
    now: options.now ?? Date.now,
    random: options.random ?? Math.random,
  };
}

/**
 * The delay before reconnection attempt `attempt` (0-based): full jitter
 * over an exponentially growing bound, capped at `maxMs`.
 */
export function backoffDelay(
  attempt: number,
  reconnect: Required<ReconnectOptions>,
  random: () => number,
): number {
  const bound = Math.min(
    reconnect.maxMs,
    reconnect.initialMs * 2 ** Math.min(attempt, 30),
  );
  return Math.floor(random() * bound);
}
