// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Public HTTP at the relay (spec §4.1, §4.2, §4.7): the `PING` method,
 * probes, websocket upgrades, routing by Host to a tunnel, and the relay's
 * own answers when no tunnel serves the kite.
 *
 * @module
 */

import type { SniffedHttp } from "../protocol/mod.ts";
import type { RelayContext } from "./_context.ts";
import { badRequestPage, pongPage, probeDownPage } from "./pages.ts";

const PROBE_PREFIX = "/~:PageKite:~/";

/**
 * Routes an HTTP request; true when a stream took the connection.
 * `options.tls` says the relay terminated TLS for it (`RTLS: 1`).
 */
export async function serveHttp(
  ctx: RelayContext,
  conn: Deno.Conn,
  what: SniffedHttp,
  bytes: Uint8Array,
  port: number,
  options: { tls?: boolean } = {},
): Promise<boolean> {
  const { head } = what;
  if (head.method === "PING") {
    await ctx.answer(conn, pongPage(head.target));
    return false;
  }
  let proto = "http";
  let host = head.host;
  if (head.target.startsWith(PROBE_PREFIX)) {
    proto = "probe";
    host = head.target.slice(PROBE_PREFIX.length).split("/")[0]!
      .toLowerCase();
  } else if (
    head.headers.some(([name, value]) =>
      name.toLowerCase() === "upgrade" && value.toLowerCase() === "websocket"
    )
  ) {
    proto = "websocket";
  }
  if (host === undefined || host === "") {
    await ctx.answer(conn, badRequestPage("Missing Host header"));
    return false;
  }
  const route = ctx.registry.route(proto, host, port);
  if (route === undefined) {
    await ctx.answer(
      conn,
      proto === "probe"
        ? probeDownPage(head.target)
        : ctx.unavailable(host, proto, "kite", conn),
    );
    return false;
  }
  const tunnel = route.value;
  const stream = tunnel.openStream(
    {
      proto: proto === "probe" ? "http" : route.proto,
      host,
      port,
      tls: options.tls === true,
    },
    clientAddress(conn, head.headers, port),
    bytes,
  );
  if (stream === null) {
    await ctx.answer(conn, ctx.unavailable(host, proto, "kite", conn));
    return false;
  }
  ctx.release(conn);
  ctx.track(stream.attach(conn));
  return true;
}

/**
 * The user's address. Behind a local reverse proxy (a connection from
 * loopback on a port that is an alias of another, pagekite.py's
 * `--portalias`), the first `X-Forwarded-For` value is the user.
 */
function clientAddress(
  conn: Deno.Conn,
  headers: readonly (readonly [string, string])[],
  port: number,
): Deno.NetAddr {
  const remote = conn.remoteAddr as Deno.NetAddr;
  const local = conn.localAddr as Deno.NetAddr;
  const loopback = remote.hostname === "127.0.0.1" || remote.hostname === "::1";
  if (!loopback || local.port === port) return remote;
  const forwarded = headers.find(([name]) =>
    name.toLowerCase() === "x-forwarded-for"
  )?.[1].split(",")[0]?.trim();
  if (forwarded === undefined || !IP_REGEXP.test(forwarded)) return remote;
  return { ...remote, hostname: forwarded };
}

const IP_REGEXP = /^[0-9a-fA-F:.]{2,45}$/;
