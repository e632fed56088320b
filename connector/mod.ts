// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The PageKite connector (back-end): `connectKites()` dials a relay, flies
 * kites through it with pagekite.py's challenge/response signatures, and
 * relays each user connection to the kite's local service, adding
 * `X-Forwarded-*` headers to every HTTP request. It interoperates with
 * pagekite.py relays.
 *
 * ```ts ignore
 * import { connectKites } from "@kitewire/pagekite/connector";
 *
 * await using connector = connectKites({
 *   relay: { hostname: "relay.example.net", port: 80 },
 *   kites: [{
 *     proto: "http",
 *     domain: "foo.example.net",
 *     secret: "s3cret",
 *     backend: { host: "127.0.0.1", port: 8080 },
 *   }],
 * });
 * await connector.finished;
 * ```
 *
 * @module
 */

export * from "./connector.ts";
export * from "./events.ts";
export type {
  ConnectorKite,
  ConnectorOptions,
  KiteProto,
  ReconnectOptions,
} from "./options.ts";
export * from "./http_filter.ts";
export * from "./pages.ts";
export * from "./proxy_protocol.ts";
export type { LinkStats } from "../tunnel/link.ts";
export type { StreamStats } from "../tunnel/stream.ts";
