// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The PageKite relay (front-end): `serveRelay()` accepts public HTTP
 * traffic and tunnel requests on the same ports, authenticates kites with
 * pagekite.py's challenge/response signatures, and relays each user
 * connection over the tunnel of its kite. It interoperates with
 * pagekite.py and libpagekite connectors.
 *
 * ```ts ignore
 * import { serveRelay } from "@kitewire/pagekite/relay";
 *
 * await using relay = serveRelay({
 *   listen: [{ port: 8080 }],
 *   kites: [{ domain: "*.example.com", secret: "s3cret" }],
 * });
 * await relay.finished;
 * ```
 *
 * @module
 */

export * from "./relay.ts";
export type { RelayListenOptions, RelayOptions } from "./options.ts";
export type { StaticKite } from "./kites.ts";
export type {
  AclRule,
  AuthAppOptions,
  IpRateLimit,
  RelayEdgeOptions,
} from "./edge_options.ts";
export type { RelayTlsOptions, TlsEndpoint } from "./tls_options.ts";
export type { StreamStats } from "../tunnel/stream.ts";
export type { TunnelStats } from "./tunnel.ts";
