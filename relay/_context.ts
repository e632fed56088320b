// Copyright 2026 the Kitewire authors. MIT license.
// What the relay's parts (HTTP routing, tunnel handshakes, ...) need from
// the running relay.

import type { Logger } from "@logtape/logtape";
import type { RelayEdge } from "./edge.ts";
import type { ResolvedRelayOptions } from "./options.ts";
import type { Registry } from "./registry.ts";
import type { Tunnel } from "./tunnel.ts";

/** The running relay, as its parts see it. */
export interface RelayContext {
  readonly options: ResolvedRelayOptions;
  readonly registry: Registry;
  /** ACLs, auth apps, rate limits. */
  readonly edge: RelayEdge;
  readonly log: Logger;
  /** Live tunnels, lingering ones included. */
  readonly tunnels: ReadonlySet<Tunnel>;
  /** The bound addresses. */
  readonly addrs: readonly Deno.NetAddr[];
  /** Whether shutdown has begun. */
  readonly closing: boolean;
  /** Tracks a task so shutdown waits for it. */
  track(task: Promise<void>): void;
  /** Writes a complete answer, ignoring a peer that already left. */
  answer(conn: Deno.Conn, bytes: Uint8Array): Promise<void>;
  /** The 503 page (or fast-ping answer) for `host`. */
  unavailable(
    host: string,
    proto: string,
    label: "connection" | "kite",
    conn?: Deno.Conn,
  ): Uint8Array;
  /** A connection is now owned by a stream or tunnel. */
  release(conn: Deno.Conn): void;
  /** Creates and registers a tunnel for a connector's connection. */
  newTunnel(conn: Deno.Conn, features: readonly string[]): Tunnel;
  /**
   * HOOK for TLS (spec §4.4 row 443): serves an end-user
   * `CONNECT host:443`. It answers the CONNECT itself (`200 Connection
   * Established`, or `HTTP/1.0 503 Unavailable` when neither an `https`
   * kite nor a TLS endpoint serves `host`) and handles what follows as TLS
   * for `host`; `rest` holds the bytes that followed the CONNECT head.
   * Resolves true when a stream took the connection. Absent: such CONNECTs
   * get the 503 (see relay/connect.ts).
   */
  serveConnectTls?(
    conn: Deno.Conn,
    host: string,
    rest: Uint8Array,
    port: number,
  ): Promise<boolean>;
}
