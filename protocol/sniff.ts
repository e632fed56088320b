// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Pure sniffers that classify the first bytes of a public connection
 * (spec §4.1, §4.3, §4.4): the fast relay ping, PageKite tunnel requests,
 * HTTP request heads, `CONNECT host:port`, TLS ClientHello (SNI), XMPP
 * stream headers, IRC registration and Minecraft handshakes.
 *
 * Every sniffer takes the bytes received so far and answers `"incomplete"`
 * (more bytes could change the answer), `"unrecognized"` (not this
 * protocol) or `"ok"` with a value. Limits are checked on incomplete input
 * too, so a peer that trickles bytes is stopped with a
 * {@linkcode ProtocolLimitError} as soon as it crosses one. Input that is
 * recognised but malformed throws {@linkcode ProtocolError}.
 *
 * @module
 */

import { decodeLatin1 } from "./_latin1.ts";
import {
  DEFAULT_MAX_HEAD_BYTES,
  INCOMPLETE,
  ok,
  PAGEKITE_TARGET_REGEXP,
  parseConnectTarget,
  resolveLimit,
  type SniffOptions,
  sniffRequestLine,
  type SniffResult,
} from "./_sniff_common.ts";
import {
  type HttpHead,
  type HttpVersion,
  sniffHttpHead,
} from "./sniff_http.ts";
import {
  type IrcRegistration,
  type MinecraftHandshake,
  sniffIrc,
  sniffMinecraft,
  sniffXmpp,
  type XmppStreamHead,
} from "./sniff_stream.ts";
import { sniffTlsHello, type TlsHello } from "./sniff_tls.ts";

export type { SniffOptions, SniffResult } from "./_sniff_common.ts";

// ---------------------------------------------------------------------------
// Fast ping

const FAST_PING_WINDOW = 64;
const FAST_PING_NEEDLE = "\nHost: ping.pagekite";

/**
 * Tells whether a connection is a relay "fast ping" (spec §4.1, §6.1): its
 * first 64 bytes contain `\nHost: ping.pagekite`. The relay answers such a
 * connection at once with its canned 503 page.
 *
 * @param bytes The bytes received so far.
 * @returns Whether the first 64 of them contain the fast-ping marker.
 *
 * @example Usage
 * ```ts
 * import { isFastPing } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const ping = "HEAD /ping HTTP/1.1\r\nHost: ping.pagekite\r\n\r\n";
 * assert.ok(isFastPing(new TextEncoder().encode(ping)));
 * assert.ok(!isFastPing(new TextEncoder().encode("GET / HTTP/1.1\r\n")));
 * ```
 */
export function isFastPing(bytes: Uint8Array): boolean {
  const end = Math.min(bytes.length, FAST_PING_WINDOW);
  return decodeLatin1(bytes, 0, end).includes(FAST_PING_NEEDLE);
}

// ---------------------------------------------------------------------------
// The dispatcher

/** A relay fast ping: answer with the canned 503 page and close. */
export interface SniffedPing {
  /** The kind of connection. */
  readonly kind: "ping";
}

/** A PageKite tunnel request, `CONNECT PageKite:… HTTP/1.x` (spec §1.2). */
export interface SniffedTunnel {
  /** The kind of connection. */
  readonly kind: "tunnel";
  /** The request target, for example `PageKite:1`. */
  readonly target: string;
  /** The HTTP version of the request line. */
  readonly version: HttpVersion;
}

/** An end-user `CONNECT host:port` request (spec §4.4). */
export interface SniffedConnect {
  /** The kind of connection. */
  readonly kind: "connect";
  /** The target host, lower-cased. */
  readonly host: string;
  /** The target port. */
  readonly port: number;
  /** The request head; the tunneled bytes start at `head.length`. */
  readonly head: HttpHead;
}

/** Any other HTTP request, including method `PING`. */
export interface SniffedHttp {
  /** The kind of connection. */
  readonly kind: "http";
  /** The request head. */
  readonly head: HttpHead;
}

/** A TLS (or SSLv2) ClientHello. */
export interface SniffedTls {
  /** The kind of connection. */
  readonly kind: "tls";
  /** What the ClientHello says. */
  readonly hello: TlsHello;
}

/** An XMPP client stream. */
export interface SniffedXmpp {
  /** The kind of connection. */
  readonly kind: "xmpp";
  /** The stream header. */
  readonly stream: XmppStreamHead;
}

/** An IRC client registration. */
export interface SniffedIrc {
  /** The kind of connection. */
  readonly kind: "irc";
  /** The registration lines and their domain. */
  readonly registration: IrcRegistration;
}

/** A Minecraft (Java Edition) handshake. */
export interface SniffedMinecraft {
  /** The kind of connection. */
  readonly kind: "minecraft";
  /** The handshake packet. */
  readonly handshake: MinecraftHandshake;
}

/** What {@linkcode sniffConnection} found, told apart by `kind`. */
export type Sniffed =
  | SniffedPing
  | SniffedTunnel
  | SniffedConnect
  | SniffedHttp
  | SniffedTls
  | SniffedXmpp
  | SniffedIrc
  | SniffedMinecraft;

/**
 * Classifies the first bytes of a public connection, in the order of spec
 * §4.1: fast ping, TLS (`0x16` or an SSLv2 hello), XMPP (`<?xml`),
 * Minecraft handshake, HTTP (a tunnel request `CONNECT PageKite:…`, an
 * end-user `CONNECT host:port`, or any other request) and IRC. Call it
 * again on the grown prefix while it answers `"incomplete"`.
 *
 * A tunnel request is answered as soon as its request line is complete;
 * the rest of its head is for the handshake parser. Any other HTTP request
 * is answered once its head is complete. A fast ping is recognised only in
 * the bytes given, so it wins over any answer those bytes allow.
 *
 * @param bytes The bytes received so far.
 * @param options Limits for the sniffers.
 * @returns `"incomplete"` while more bytes could change the answer,
 * `"unrecognized"` if no sniffer recognises the bytes, else what they are.
 * @throws {ProtocolLimitError} If the recognised protocol's limit is
 * crossed, even before its message is complete.
 * @throws {ProtocolError} If the bytes are recognised but malformed.
 *
 * @example Usage
 * ```ts
 * import { sniffConnection } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const encoder = new TextEncoder();
 * const tunnel = sniffConnection(encoder.encode("CONNECT PageKite:1 HTTP/1.0\r\n"));
 * assert.ok(tunnel.status === "ok" && tunnel.value.kind === "tunnel");
 *
 * const bytes = encoder.encode("GET / HTTP/1.1\r\nHost: 0x7f000001--foo.example.com\r\n\r\n");
 * const http = sniffConnection(bytes);
 * assert.ok(http.status === "ok" && http.value.kind === "http");
 * assert.equal(http.value.head.host, "foo.example.com");
 *
 * assert.deepEqual(sniffConnection(bytes.subarray(0, 10)), { status: "incomplete" });
 * assert.deepEqual(sniffConnection(encoder.encode("hello?\n")), { status: "unrecognized" });
 * ```
 */
export function sniffConnection(
  bytes: Uint8Array,
  options: SniffOptions = {},
): SniffResult<Sniffed> {
  if (bytes.length === 0) return INCOMPLETE;
  if (isFastPing(bytes)) return ok({ kind: "ping" });

  const tls = sniffTlsHello(bytes, options);
  if (tls.status === "ok") return ok({ kind: "tls", hello: tls.value });
  if (tls.status === "incomplete") return tls;

  const xmpp = sniffXmpp(bytes, options);
  if (xmpp.status === "ok") return ok({ kind: "xmpp", stream: xmpp.value });
  if (xmpp.status === "incomplete") return xmpp;

  const minecraft = sniffMinecraft(bytes, options);
  if (minecraft.status === "ok") {
    return ok({ kind: "minecraft", handshake: minecraft.value });
  }
  if (minecraft.status === "incomplete") return minecraft;

  const maxHeadBytes = resolveLimit(
    options.maxHeadBytes,
    DEFAULT_MAX_HEAD_BYTES,
    "maxHeadBytes",
  );
  const line = sniffRequestLine(bytes, maxHeadBytes);
  if (line.status === "incomplete") return line;
  if (line.status === "ok") {
    const { method, target, version } = line.value;
    if (method === "CONNECT" && PAGEKITE_TARGET_REGEXP.test(target)) {
      return ok({ kind: "tunnel", target, version });
    }
    const head = sniffHttpHead(bytes, options);
    if (head.status !== "ok") return INCOMPLETE;
    if (method === "CONNECT") {
      const { host, port } = parseConnectTarget(target);
      return ok({ kind: "connect", host, port, head: head.value });
    }
    return ok({ kind: "http", head: head.value });
  }

  const irc = sniffIrc(bytes, options);
  if (irc.status === "ok") return ok({ kind: "irc", registration: irc.value });
  return irc;
}
