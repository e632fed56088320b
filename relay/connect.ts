// Copyright 2026 the Kitewire authors. MIT license.
/**
 * End-user `CONNECT host:port` at the relay (spec §4.4). Kite names match
 * exactly here: no wildcard kites, no `unknown`.
 *
 * - Port 80 or 8080 with an `http`/`http2`/`http3` kite for `host` (with or
 *   without that port): `200 Connection Established`, then the tunneled
 *   bytes are read as an HTTP request for that kite, sent with `Port:` the
 *   CONNECT port.
 * - Port 443: handed to the TLS hook `ctx.serveConnectTls` when the relay
 *   has one; without it, handled as any other port.
 * - A raw port (`rawPorts`, or any port with `virtual`) with a `raw-<port>`
 *   or `raw` kite for `host`: 200, then a raw stream whose first chunk
 *   carries whatever followed the CONNECT head (often nothing).
 * - Otherwise `HTTP/1.0 503 Unavailable` and close.
 *
 * @module
 */

import {
  ProtocolError,
  ProtocolLimitError,
  type SniffedConnect,
  sniffHttpHead,
} from "../protocol/mod.ts";
import { isDisconnectError } from "../tunnel/_io.ts";
import type { RelayContext } from "./_context.ts";
import { isRawPort } from "./_ports.ts";
import { UNAVAILABLE } from "./handshake.ts";
import { badRequestPage } from "./pages.ts";
import type { Route } from "./routing.ts";
import type { Tunnel } from "./tunnel.ts";

/** The answer to a CONNECT the relay serves. */
export const CONNECT_ESTABLISHED: Uint8Array = new TextEncoder().encode(
  "HTTP/1.0 200 Connection Established\r\n\r\n",
);
const HTTP_CONNECT_PORTS: readonly number[] = [80, 8080];
const HTTP_PROTOS = ["http", "http2", "http3"] as const;
const TLS_PORT = 443;

/** Serves an end-user CONNECT; true when a stream took the connection. */
export async function serveConnect(
  ctx: RelayContext,
  conn: Deno.Conn,
  what: SniffedConnect,
  bytes: Uint8Array,
): Promise<boolean> {
  const { host, port } = what;
  const rest = bytes.slice(what.head.length);
  if (HTTP_CONNECT_PORTS.includes(port)) {
    if (findHttpKite(ctx, host, port) !== undefined) {
      await ctx.answer(conn, CONNECT_ESTABLISHED);
      return await serveTunneledHttp(ctx, conn, host, port, rest);
    }
  } else if (port === TLS_PORT && ctx.serveConnectTls !== undefined) {
    return await ctx.serveConnectTls(conn, host, rest, port);
  }
  if (isRawPort(ctx.options, port)) {
    const route = ctx.registry.exact("raw", host, port) ??
      ctx.registry.exact("raw", host);
    const stream = route?.value.openStream(
      { proto: "raw", host, port },
      conn.remoteAddr as Deno.NetAddr,
      rest,
    );
    if (stream != null) {
      await ctx.answer(conn, CONNECT_ESTABLISHED);
      ctx.release(conn);
      ctx.track(stream.attach(conn));
      return true;
    }
  }
  await ctx.answer(conn, UNAVAILABLE);
  return false;
}

function findHttpKite(
  ctx: RelayContext,
  host: string,
  port: number,
): Route<Tunnel> | undefined {
  for (const proto of HTTP_PROTOS) {
    const route = ctx.registry.exact(proto, host, port) ??
      ctx.registry.exact(proto, host);
    if (route !== undefined) return route;
  }
  return undefined;
}

/** Reads the request inside an established CONNECT and relays it. */
async function serveTunneledHttp(
  ctx: RelayContext,
  conn: Deno.Conn,
  host: string,
  port: number,
  first: Uint8Array,
): Promise<boolean> {
  const bytes = await readHttpHead(ctx, conn, first);
  if (bytes === null) return false;
  const route = findHttpKite(ctx, host, port);
  const stream = route?.value.openStream(
    { proto: route.proto, host, port },
    conn.remoteAddr as Deno.NetAddr,
    bytes,
  );
  if (stream == null) {
    await ctx.answer(conn, ctx.unavailable(host, "http", "kite", conn));
    return false;
  }
  ctx.release(conn);
  ctx.track(stream.attach(conn));
  return true;
}

/**
 * Reads until `bytes` hold a complete HTTP request head, within the
 * relay's sniff timeout and head limits; null when the user left or sent
 * something else (answered with 400).
 */
async function readHttpHead(
  ctx: RelayContext,
  conn: Deno.Conn,
  first: Uint8Array,
): Promise<Uint8Array | null> {
  const limits = {
    maxHeadBytes: ctx.options.maxRequestHeadBytes,
    maxHeaders: ctx.options.maxRequestHeaders,
  };
  const buffer = new Uint8Array(16 * 1024);
  let bytes = first;
  const timer = setTimeout(
    () => conn[Symbol.dispose](),
    ctx.options.sniffTimeoutMs,
  );
  try {
    for (;;) {
      if (bytes.length > 0) {
        let result;
        try {
          result = sniffHttpHead(bytes, limits);
        } catch (error) {
          if (
            error instanceof ProtocolError ||
            error instanceof ProtocolLimitError
          ) {
            await ctx.answer(conn, badRequestPage(error.message));
            return null;
          }
          throw error;
        }
        if (result.status === "ok") return bytes;
        if (result.status === "unrecognized") {
          await ctx.answer(conn, badRequestPage("Unsupported request"));
          return null;
        }
      }
      const n = await conn.read(buffer);
      if (n === null) return null;
      const grown = new Uint8Array(bytes.length + n);
      grown.set(bytes);
      grown.set(buffer.subarray(0, n), bytes.length);
      bytes = grown;
    }
  } catch (error) {
    if (isDisconnectError(error)) return null; // gone, or timed out
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
