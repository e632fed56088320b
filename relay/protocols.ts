// Copyright 2026 the Kitewire authors. MIT license.
/**
 * XMPP, IRC and Minecraft at the relay (spec §4.1): each names its domain
 * in its first bytes (the stream's `to`, `NICK`/`USER nick@domain`, the
 * handshake's server address) and goes to the `xmpp`, `irc` or `minecraft`
 * kite of that domain, wildcard kites and `unknown` included, as for HTTP.
 * The first chunk carries the bytes read; for IRC with the `@domain` parts
 * taken out.
 *
 * @module
 */

import type {
  SniffedIrc,
  SniffedMinecraft,
  SniffedXmpp,
} from "../protocol/mod.ts";
import type { RelayContext } from "./_context.ts";

/**
 * Routes an XMPP, IRC or Minecraft connection on public port `port`; true
 * when a stream took the connection. A Minecraft handshake counts only
 * when its port is the listening port (or `port`).
 */
export function serveProtocol(
  ctx: RelayContext,
  conn: Deno.Conn,
  what: SniffedXmpp | SniffedIrc | SniffedMinecraft,
  bytes: Uint8Array,
  port: number,
): boolean {
  let host: string | undefined;
  let body = bytes;
  switch (what.kind) {
    case "xmpp":
      host = what.stream.domain;
      break;
    case "irc": {
      const { domain, rewritten, length } = what.registration;
      host = domain;
      body = new Uint8Array(rewritten.length + bytes.length - length);
      body.set(rewritten);
      body.set(bytes.subarray(length), rewritten.length);
      break;
    }
    case "minecraft": {
      const listening = (conn.localAddr as Deno.NetAddr).port;
      const { port: asked } = what.handshake;
      if (asked !== listening && asked !== port) return false;
      host = what.handshake.host;
      break;
    }
  }
  if (host === undefined || host === "") return false;
  const route = ctx.registry.route(what.kind, host, port);
  const stream = route?.value.openStream(
    { proto: route.proto, host, port },
    conn.remoteAddr as Deno.NetAddr,
    body,
  );
  if (stream == null) return false;
  ctx.release(conn);
  ctx.track(stream.attach(conn));
  return true;
}
