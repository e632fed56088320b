// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The tunnel handshake (spec §1.2–§1.7): the connector's
 * `CONNECT PageKite:1` request and the relay's `200 OK` answer, and the same
 * kite lines and per-kite results carried as header lists inside NOOP
 * chunks.
 *
 * @module
 */

import { findHeadEnd, parseHead } from "./_head.ts";
import { encodeLatin1 } from "./_latin1.ts";
import { ProtocolError } from "./errors.ts";
import {
  formatKiteName,
  formatKiteRequest,
  type KiteName,
  type KiteRequest,
  kiteSignaturePayload,
  parseKiteName,
  parseKiteRequest,
} from "./kite.ts";

const DEFAULT_MAX_HEAD_BYTES = 65536;
const DEFAULT_MAX_HEADERS = 1024;
const QUOTE_LIMIT = 128;
const CRLF = "\r\n";
const REQUEST_LINE = "CONNECT PageKite:1 HTTP/1.0";
const STATUS_LINE = "HTTP/1.1 200 OK";
const RESPONSE_HEADERS: readonly [string, string][] = [
  ["Content-Type", "text/html; charset=utf-8"],
  ["Pragma", "no-cache"],
  ["Expires", "0"],
  ["Cache-Control", "no-store"],
  ["Connection", "close"],
  ["Transfer-Encoding", "chunked"],
];
const STATUS_LINE_REGEXP = /^HTTP\/1\.\d (\d{3})(?: (.*))?$/;
const NUMBER_REGEXP = /^-?\d+(?:\.\d+)?$/;
const RATE_REGEXP = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/;
const PORT_REGEXP = /^\d{1,5}$/;
const PREFIXES = ["X-PageKite", "X-Beanstalk"] as const;

/**
 * The prefix of PageKite header names. `X-Beanstalk` is the legacy
 * spelling; a relay answers with the prefix the request used.
 */
export type KiteHeaderPrefix = "X-PageKite" | "X-Beanstalk";

/** Limits for decoding handshake heads, sized for requests with many kites. */
export interface HandshakeOptions {
  /**
   * Bytes of the whole head, blank line included. A kite line is about
   * 120 bytes.
   *
   * @default {65536}
   */
  maxHeadBytes?: number;
  /**
   * Header lines after the start line.
   *
   * @default {1024}
   */
  maxHeaders?: number;
}

/** A connector's tunnel request, or the kite lines of a NOOP chunk. */
export interface TunnelRequest {
  /** One entry per `X-PageKite:` line, in order. */
  kites: KiteRequest[];
  /**
   * Capability flags (`AddKites`, `ZChunks`, `Mobile`), one per
   * `X-PageKite-Features:` line. Decoding always sets this.
   */
  features?: string[];
  /** Software version (`X-PageKite-Version:`; the last one wins). */
  version?: string;
  /** Session id of an old tunnel to replace (`X-PageKite-Replace:`). */
  replace?: string;
  /**
   * Header prefix used. Decoding reports the prefix of the first kite line;
   * encoding defaults to `X-PageKite`.
   */
  prefix?: KiteHeaderPrefix;
}

/** `X-PageKite-OK`: the kite is accepted and routed to this tunnel. */
export interface KiteOkResult extends KiteName {
  /** The result kind. */
  status: "ok";
  /**
   * `true` when an `X-PageKite-SSL-OK` line follows: the relay can
   * terminate TLS for this kite. Absent means no.
   */
  tls?: boolean;
}

/** `X-PageKite-SignThis`: the relay's challenge for this kite. */
export interface KiteSignThisResult extends KiteName {
  /** The result kind. */
  status: "sign-this";
  /** The token to put in the kite request and sign. */
  token: string;
}

/** `X-PageKite-Invalid`: the kite is rejected. */
export interface KiteInvalidResult extends KiteName {
  /** The result kind. */
  status: "invalid";
  /**
   * The `X-PageKite-Invalid-Why` reason: `signature`, `unauthorized`,
   * `port`, `proto`, `quota`, `noquota`, ...
   */
  reason?: string;
}

/** `X-PageKite-Duplicate`: another live tunnel already serves this kite. */
export interface KiteDuplicateResult extends KiteName {
  /** The result kind. */
  status: "duplicate";
}

/** The relay's answer for one kite. */
export type KiteResult =
  | KiteOkResult
  | KiteSignThisResult
  | KiteInvalidResult
  | KiteDuplicateResult;

/** `X-PageKite-IPsPerSec`: the client-IP rate limit of a tunnel. */
export interface IpRateLimit {
  /** How many distinct client IPs are allowed... */
  ips: number;
  /** ...within this many seconds. */
  seconds: number;
}

/** A relay's tunnel response, or the results of a NOOP chunk. */
export interface TunnelResponse {
  /** Per-kite results, in request order. */
  results: KiteResult[];
  /**
   * Header prefix used. Decoding reports the prefix of the first PageKite
   * header; encoding defaults to `X-PageKite`.
   */
  prefix?: KiteHeaderPrefix;
  /**
   * Relay capabilities (`ZChunks`, `WebSockets`, `AddKites`), one per
   * `X-PageKite-Features:` line. Decoding always sets this.
   */
  features?: string[];
  /** Protocols the relay serves (`X-PageKite-Protos`). */
  protos?: string[];
  /** Public ports of the relay (`X-PageKite-Ports`). */
  ports?: number[];
  /** Raw ports; `virtual` means any port through HTTP CONNECT. */
  rawPorts?: (number | "virtual")[];
  /** Opaque id of this tunnel (`X-PageKite-SessionID`). */
  sessionId?: string;
  /**
   * Message of the day from `X-PageKite-Misc: motd=...`; `""` is the empty
   * `motd=` the relay sends when it has none.
   */
  motd?: string;
  /** Upgrade advice, `version;tag;md5;human_url;file_url`. */
  upgrade?: string;
  /** Transfer quota left, in KB (`X-PageKite-Quota`); advisory. */
  quota?: number;
  /** Connections quota (`X-PageKite-QConns`); advisory. */
  qConns?: number;
  /** Days left (`X-PageKite-QDays`); advisory. */
  qDays?: number;
  /** Client-IP rate limit the relay enforces (`X-PageKite-IPsPerSec`). */
  ipsPerSec?: IpRateLimit;
}

/**
 * The relay answered a tunnel request with a status other than 200, e.g.
 * `403 Forbidden` (tunnel ACL) or `503 Unavailable` (unparsable request).
 *
 * @example Usage
 * ```ts
 * import { decodeTunnelResponse, TunnelRefusedError } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("HTTP/1.0 503 Unavailable\r\n\r\n");
 * assert.throws(() => decodeTunnelResponse(bytes), (error) => {
 *   assert.ok(error instanceof TunnelRefusedError);
 *   assert.equal(error.status, 503);
 *   return true;
 * });
 * ```
 */
export class TunnelRefusedError extends Error {
  /** The HTTP status code, e.g. 403 or 503. */
  readonly status: number;
  /** The reason phrase of the status line, e.g. `Unavailable`. */
  readonly statusText: string;

  /**
   * Constructs a new instance.
   *
   * @param status The HTTP status code.
   * @param statusText The reason phrase.
   * @param options An optional cause.
   */
  constructor(status: number, statusText: string, options?: ErrorOptions) {
    super(
      `Cannot open tunnel: relay answered ${status}${
        statusText === "" ? "" : " " + statusText
      }`,
      options,
    );
    this.name = "TunnelRefusedError";
    this.status = status;
    this.statusText = statusText;
  }
}

/**
 * Finds where a handshake head ends in a growing buffer: the offset just
 * past its blank line, or -1 while the blank line has not arrived. Bytes
 * after that offset belong to the chunk stream.
 *
 * @param bytes The bytes received so far.
 * @param options Limits on the head.
 * @returns The head's length, or -1 if it is incomplete.
 * @throws {ProtocolLimitError} as soon as the head breaks a limit.
 *
 * @example Usage
 * ```ts
 * import { findHandshakeEnd } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("HTTP/1.1 200 OK\r\n\r\n1b\r\n");
 * assert.equal(findHandshakeEnd(bytes.subarray(0, 10)), -1);
 * assert.equal(findHandshakeEnd(bytes), 19);
 * ```
 */
export function findHandshakeEnd(
  bytes: Uint8Array,
  options: HandshakeOptions = {},
): number {
  return findHeadEnd(bytes, resolveLimits(options), "handshake");
}

/**
 * Encodes a tunnel request the way pagekite.py writes it: the request
 * line, then each feature followed by a version line (only a version line
 * when there are no features, as libpagekite does), the replace line, and
 * one line per kite.
 *
 * @param request The request; it needs at least one kite.
 * @returns The bytes of the head, blank line included.
 * @throws {TypeError} if there are no kites or a value cannot be written
 * on the wire.
 * @throws {RangeError} if a port is not in 1..65535.
 *
 * @example Usage
 * ```ts
 * import { encodeTunnelRequest } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeTunnelRequest({
 *   version: "0.91.251215C",
 *   kites: [{ proto: "http", domain: "foo.example.com", salt: "abc", token: "", signature: "1a2b3c4d0000" }],
 * });
 * assert.equal(
 *   new TextDecoder().decode(bytes),
 *   "CONNECT PageKite:1 HTTP/1.0\r\nX-PageKite-Version: 0.91.251215C\r\n" +
 *     "X-PageKite: http:foo.example.com:abc::1a2b3c4d0000\r\n\r\n",
 * );
 * ```
 */
export function encodeTunnelRequest(request: TunnelRequest): Uint8Array {
  if (request.kites.length === 0) {
    throw new TypeError("Cannot encode tunnel request: there are no kites");
  }
  return encodeHead(REQUEST_LINE, kiteRequestHeaders(request));
}

/**
 * Decodes a complete tunnel request head (bytes after it are ignored). The
 * request line must be `CONNECT pagekite:... HTTP/1.0` or `HTTP/1.1`;
 * header names are case-insensitive, and `X-Beanstalk` is accepted wherever
 * `X-PageKite` is.
 *
 * @param bytes The head, as found with {@linkcode findHandshakeEnd}.
 * @param options Limits on the head.
 * @returns The request, with `features` and `prefix` always set.
 * @throws {ProtocolError} if the head is incomplete, is not a tunnel
 * request, has no kite line, or has a malformed line.
 * @throws {ProtocolLimitError} if the head breaks a limit.
 *
 * @example Usage
 * ```ts
 * import { decodeTunnelRequest } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const request = decodeTunnelRequest(new TextEncoder().encode(
 *   "CONNECT PageKite:1 HTTP/1.0\r\nX-PageKite-Features: AddKites\r\n" +
 *     "X-PageKite: http:foo.example.com:abc::1a2b3c4d0000\r\n\r\n",
 * ));
 * assert.deepEqual(request.features, ["AddKites"]);
 * assert.equal(request.kites[0]?.domain, "foo.example.com");
 * ```
 */
export function decodeTunnelRequest(
  bytes: Uint8Array,
  options: HandshakeOptions = {},
): TunnelRequest {
  const head = parseHead(bytes, resolveLimits(options), "tunnel request");
  if (head === null) {
    throw new ProtocolError(
      "Cannot decode tunnel request: head is incomplete, no blank line yet",
      { offset: bytes.length },
    );
  }
  const parts = head.startLine.split(" ");
  if (
    parts.length !== 3 || parts[0] !== "CONNECT" ||
    !parts[1]!.toLowerCase().startsWith("pagekite:") ||
    (parts[2] !== "HTTP/1.0" && parts[2] !== "HTTP/1.1")
  ) {
    throw new ProtocolError(
      `Cannot decode tunnel request: request line is not "CONNECT PageKite:<n> HTTP/1.x": ${
        quote(head.startLine)
      }`,
    );
  }
  const request = parseKiteRequestHeaders(head.headers);
  if (request.kites.length === 0) {
    throw new ProtocolError(
      "Cannot decode tunnel request: there is no X-PageKite kite line",
      { offset: head.length },
    );
  }
  return request;
}

/**
 * The header lines of a tunnel request, in the order pagekite.py writes
 * them: each feature followed by a version line (a single version line
 * when there are no features), the replace line, then one line per kite.
 * Used for full requests and for NOOP chunks that add kites.
 *
 * @param request The request; it may have no kites.
 * @returns `[name, value]` pairs.
 * @throws {TypeError} if a value cannot be written on the wire.
 * @throws {RangeError} if a port is not in 1..65535.
 *
 * @example Usage
 * ```ts
 * import { kiteRequestHeaders } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const headers = kiteRequestHeaders({
 *   version: "1.5.2.260113",
 *   kites: [{ proto: "http", domain: "foo.example.com", salt: "abc", token: "t1", signature: "s1" }],
 * });
 * assert.deepEqual(headers, [
 *   ["X-PageKite-Version", "1.5.2.260113"],
 *   ["X-PageKite", "http:foo.example.com:abc:t1:s1"],
 * ]);
 * ```
 */
export function kiteRequestHeaders(
  request: TunnelRequest,
): [name: string, value: string][] {
  const action = "encode tunnel request";
  const prefix = request.prefix ?? "X-PageKite";
  const features = request.features ?? [];
  const { version, replace } = request;
  const headers: [string, string][] = [];
  if (version !== undefined) checkText(version, "version", action);
  for (const feature of features) {
    checkText(feature, "feature", action, { empty: false });
    headers.push([`${prefix}-Features`, feature]);
    if (version !== undefined) headers.push([`${prefix}-Version`, version]);
  }
  if (features.length === 0 && version !== undefined) {
    headers.push([`${prefix}-Version`, version]);
  }
  if (replace !== undefined) {
    checkText(replace, "replace session id", action);
    headers.push([`${prefix}-Replace`, replace]);
  }
  for (const kite of request.kites) {
    headers.push([prefix, formatKiteRequest(kite)]);
  }
  return headers;
}

/**
 * Reads a tunnel request from a header list: the headers of a request
 * head, or of a NOOP chunk (§1.7). Names are case-insensitive, both
 * prefixes are accepted, and other headers are ignored.
 *
 * @param headers `[name, value]` pairs with trimmed values.
 * @returns The request, with `features` and `prefix` always set; `kites`
 * may be empty.
 * @throws {ProtocolError} if a kite line or another value is malformed.
 *
 * @example Usage
 * ```ts
 * import { parseKiteRequestHeaders } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const request = parseKiteRequestHeaders([
 *   ["NOOP", "1"],
 *   ["X-PageKite-Version", "1.5.2.260113"],
 *   ["X-PageKite", "http:foo.example.com:abc:t1:s1"],
 * ]);
 * assert.equal(request.version, "1.5.2.260113");
 * assert.equal(request.kites[0]?.token, "t1");
 * ```
 */
export function parseKiteRequestHeaders(
  headers: ReadonlyArray<readonly [name: string, value: string]>,
): TunnelRequest {
  const action = "parse tunnel request";
  const request: TunnelRequest = { kites: [], features: [] };
  let firstPrefix: KiteHeaderPrefix | undefined;
  for (const [name, value] of headers) {
    const split = splitName(name);
    if (split === undefined) continue;
    const [prefix, suffix] = split;
    switch (suffix) {
      case "":
        request.prefix ??= prefix;
        request.kites.push(parseKiteRequest(value));
        break;
      case "-features":
        checkParsedText(value, "feature", action);
        if (value !== "") request.features!.push(value);
        break;
      case "-version":
        checkParsedText(value, "version", action);
        request.version = value;
        break;
      case "-replace":
        checkParsedText(value, "replace session id", action);
        request.replace = value;
        break;
      default:
        continue;
    }
    firstPrefix ??= prefix;
  }
  request.prefix ??= firstPrefix ?? "X-PageKite";
  return request;
}

/**
 * Encodes a tunnel response the way pagekite.py writes it: `HTTP/1.1 200
 * OK`, its fixed Content-Type ... Transfer-Encoding lines, then the lines
 * of {@linkcode kiteResponseHeaders}.
 *
 * @param response The response.
 * @returns The bytes of the head, blank line included.
 * @throws {TypeError} if a value cannot be written on the wire.
 * @throws {RangeError} if a port or a number is out of range.
 *
 * @example Usage
 * ```ts
 * import { decodeTunnelResponse, encodeTunnelResponse } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeTunnelResponse({
 *   features: ["AddKites"],
 *   results: [{ status: "ok", proto: "http", domain: "foo.example.com", salt: "abc" }],
 *   sessionId: "6b02341a:ad0d",
 *   motd: "",
 * });
 * const text = new TextDecoder().decode(bytes);
 * assert.ok(text.startsWith("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"));
 * assert.ok(text.endsWith(
 *   "X-PageKite-OK: http:foo.example.com:abc\r\n" +
 *     "X-PageKite-SessionID: 6b02341a:ad0d\r\nX-PageKite-Misc: motd=\r\n\r\n",
 * ));
 * assert.equal(decodeTunnelResponse(bytes).results[0]?.status, "ok");
 * ```
 */
export function encodeTunnelResponse(response: TunnelResponse): Uint8Array {
  return encodeHead(STATUS_LINE, [
    ...RESPONSE_HEADERS,
    ...kiteResponseHeaders(response),
  ]);
}

/**
 * Decodes a complete tunnel response head (bytes after it, such as the
 * first chunks, are ignored). Any `HTTP/1.x 200` status is accepted; lines
 * may end in LF alone, names are case-insensitive, both prefixes are
 * accepted and unknown headers are ignored.
 *
 * @param bytes The head, as found with {@linkcode findHandshakeEnd}.
 * @param options Limits on the head.
 * @returns The response, with `results`, `features` and `prefix` always set.
 * @throws {TunnelRefusedError} if the status is not 200 (e.g. 403, 503).
 * @throws {ProtocolError} if the head is incomplete, is not an HTTP/1.x
 * response, or has a malformed PageKite line.
 * @throws {ProtocolLimitError} if the head breaks a limit.
 *
 * @example Usage
 * ```ts
 * import { decodeTunnelResponse } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const response = decodeTunnelResponse(new TextEncoder().encode(
 *   "HTTP/1.1 200 OK\nx-pagekite-signthis: http:foo.example.com:abc:t123\n\n",
 * ));
 * assert.deepEqual(response.results, [
 *   { status: "sign-this", proto: "http", domain: "foo.example.com", salt: "abc", token: "t123" },
 * ]);
 * ```
 */
export function decodeTunnelResponse(
  bytes: Uint8Array,
  options: HandshakeOptions = {},
): TunnelResponse {
  const head = parseHead(bytes, resolveLimits(options), "tunnel response");
  if (head === null) {
    throw new ProtocolError(
      "Cannot decode tunnel response: head is incomplete, no blank line yet",
      { offset: bytes.length },
    );
  }
  const match = STATUS_LINE_REGEXP.exec(head.startLine);
  if (match === null) {
    throw new ProtocolError(
      `Cannot decode tunnel response: status line is not "HTTP/1.x <status> <reason>": ${
        quote(head.startLine)
      }`,
    );
  }
  const status = Number(match[1]);
  if (status !== 200) {
    throw new TunnelRefusedError(status, match[2] ?? "");
  }
  return parseKiteResponseHeaders(head.headers);
}

/**
 * The PageKite header lines of a tunnel response, in pagekite.py's order:
 * Features (one per line), Protos, Ports, Raw-Ports, the per-kite results
 * (OK then SSL-OK, SignThis, Invalid then Invalid-Why, Duplicate),
 * SessionID, Misc, Upgrade, QConns, QDays, IPsPerSec, Quota. Absent fields
 * are left out. Used for full responses and for NOOP chunk answers.
 *
 * @param response The response.
 * @returns `[name, value]` pairs.
 * @throws {TypeError} if a value cannot be written on the wire.
 * @throws {RangeError} if a port or a number is out of range.
 *
 * @example Usage
 * ```ts
 * import { kiteResponseHeaders } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const headers = kiteResponseHeaders({
 *   results: [
 *     { status: "invalid", proto: "gopher", domain: "foo.example.com", salt: "abc", reason: "proto" },
 *   ],
 *   motd: "Hello world",
 * });
 * assert.deepEqual(headers, [
 *   ["X-PageKite-Invalid", "gopher:foo.example.com:abc"],
 *   ["X-PageKite-Invalid-Why", "gopher:foo.example.com:abc;proto"],
 *   ["X-PageKite-Misc", "motd=Hello+world"],
 * ]);
 * ```
 */
export function kiteResponseHeaders(
  response: TunnelResponse,
): [name: string, value: string][] {
  const action = "encode tunnel response";
  const prefix = response.prefix ?? "X-PageKite";
  const headers: [string, string][] = [];
  function add(suffix: string, value: string): void {
    headers.push([prefix + suffix, value]);
  }
  for (const feature of response.features ?? []) {
    checkText(feature, "feature", action, { empty: false });
    add("-Features", feature);
  }
  if (response.protos !== undefined) {
    for (const proto of response.protos) {
      checkText(proto, "protocol", action, { empty: false, comma: false });
    }
    add("-Protos", response.protos.join(", "));
  }
  if (response.ports !== undefined) {
    add("-Ports", response.ports.map((port) => formatPort(port)).join(", "));
  }
  if (response.rawPorts !== undefined) {
    add(
      "-Raw-Ports",
      response.rawPorts.map((port) =>
        port === "virtual" ? port : formatPort(port)
      ).join(", "),
    );
  }
  for (const result of response.results) {
    switch (result.status) {
      case "ok":
        add("-OK", formatKiteName(result));
        if (result.tls === true) add("-SSL-OK", formatKiteName(result));
        break;
      case "sign-this":
        add("-SignThis", kiteSignaturePayload(result));
        break;
      case "invalid":
        add("-Invalid", formatKiteName(result));
        if (result.reason !== undefined) {
          checkText(result.reason, "reason", action, { semicolon: false });
          add("-Invalid-Why", `${formatKiteName(result)};${result.reason}`);
        }
        break;
      case "duplicate":
        add("-Duplicate", formatKiteName(result));
        break;
      default:
        throw new TypeError(
          `Cannot ${action}: unknown kite result status ${
            JSON.stringify((result as { status: unknown }).status)
          }`,
        );
    }
  }
  if (response.sessionId !== undefined) {
    checkText(response.sessionId, "session id", action);
    add("-SessionID", response.sessionId);
  }
  if (response.motd !== undefined) {
    if (!response.motd.isWellFormed()) {
      throw new TypeError(`Cannot ${action}: motd has a lone surrogate`);
    }
    add("-Misc", `motd=${formEncode(response.motd)}`);
  }
  if (response.upgrade !== undefined) {
    checkText(response.upgrade, "upgrade", action);
    add("-Upgrade", response.upgrade);
  }
  if (response.qConns !== undefined) {
    add("-QConns", formatNumber(response.qConns, "qConns"));
  }
  if (response.qDays !== undefined) {
    add("-QDays", formatNumber(response.qDays, "qDays"));
  }
  if (response.ipsPerSec !== undefined) {
    const { ips, seconds } = response.ipsPerSec;
    const rate = `${formatNumber(ips, "ipsPerSec.ips")}/${
      formatNumber(seconds, "ipsPerSec.seconds")
    }`;
    if (!RATE_REGEXP.test(rate)) {
      throw new RangeError(
        `Cannot ${action}: ipsPerSec must be non-negative, got ${rate}`,
      );
    }
    add("-IPsPerSec", rate);
  }
  if (response.quota !== undefined) {
    add("-Quota", formatNumber(response.quota, "quota"));
  }
  return headers;
}

/**
 * Reads a tunnel response from a header list: the headers of a response
 * head, or of a NOOP chunk answer (§1.5 B, §1.7). Names are
 * case-insensitive, both prefixes are accepted, and other headers are
 * ignored. `SSL-OK` marks the latest `OK` of the same kite, `Invalid-Why`
 * gives the reason of the latest `Invalid` of the same kite.
 *
 * @param headers `[name, value]` pairs with trimmed values.
 * @returns The response, with `results`, `features` and `prefix` always set.
 * @throws {ProtocolError} if a PageKite value is malformed.
 *
 * @example Usage
 * ```ts
 * import { parseKiteResponseHeaders } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const response = parseKiteResponseHeaders([
 *   ["NOOP", "1"],
 *   ["X-PageKite-Duplicate", "http:foo.example.com:abc"],
 *   ["X-PageKite-SessionID", "6b0230ec:1a8a"],
 *   ["X-PageKite-Misc", "motd="],
 * ]);
 * assert.equal(response.results[0]?.status, "duplicate");
 * assert.equal(response.sessionId, "6b0230ec:1a8a");
 * assert.equal(response.motd, "");
 * ```
 */
export function parseKiteResponseHeaders(
  headers: ReadonlyArray<readonly [name: string, value: string]>,
): TunnelResponse {
  const action = "parse tunnel response";
  const response: TunnelResponse = { results: [], features: [] };
  const results = response.results;
  for (const [name, value] of headers) {
    const split = splitName(name);
    if (split === undefined) continue;
    const [prefix, suffix] = split;
    switch (suffix) {
      case "-features":
        checkParsedText(value, "feature", action);
        if (value !== "") response.features!.push(value);
        break;
      case "-protos":
        checkParsedText(value, "protocol list", action);
        response.protos = splitList(value);
        break;
      case "-ports":
        response.ports = splitList(value).map((port) =>
          parsePort(port, "ports")
        );
        break;
      case "-raw-ports":
        response.rawPorts = splitList(value).map((port) =>
          port.toLowerCase() === "virtual"
            ? "virtual"
            : parsePort(port, "raw ports")
        );
        break;
      case "-ok":
        results.push({ status: "ok", ...parseKiteName(value) });
        break;
      case "-ssl-ok": {
        const kite = parseKiteName(value);
        const ok = findLast(results, "ok", kite);
        if (ok !== undefined) ok.tls = true;
        break;
      }
      case "-signthis":
        results.push({ status: "sign-this", ...parseChallenge(value) });
        break;
      case "-invalid":
        results.push({ status: "invalid", ...parseKiteName(value) });
        break;
      case "-invalid-why": {
        const semicolon = value.lastIndexOf(";");
        if (semicolon === -1) {
          throw new ProtocolError(
            `Cannot ${action}: Invalid-Why value has no ";" before the reason: ${
              quote(value)
            }`,
          );
        }
        const kite = parseKiteName(value.slice(0, semicolon));
        const reason = value.slice(semicolon + 1).replace(/^[ \t]+/, "");
        checkParsedText(reason, "reason", action);
        const invalid = findLast(results, "invalid", kite);
        if (invalid !== undefined) invalid.reason = reason;
        break;
      }
      case "-duplicate":
        results.push({ status: "duplicate", ...parseKiteName(value) });
        break;
      case "-sessionid":
        checkParsedText(value, "session id", action);
        response.sessionId = value;
        break;
      case "-misc": {
        const motd = new URLSearchParams(value).get("motd");
        if (motd !== null) response.motd = motd;
        break;
      }
      case "-upgrade":
        checkParsedText(value, "upgrade", action);
        response.upgrade = value;
        break;
      // Advisory numbers: a value we cannot read is ignored, never fatal
      // (a relay's odd quota must not keep a connector from connecting).
      case "-quota": {
        const quota = parseAdvisory(value);
        if (quota !== undefined) response.quota = quota;
        break;
      }
      case "-qconns": {
        const qConns = parseAdvisory(value);
        if (qConns !== undefined) response.qConns = qConns;
        break;
      }
      case "-qdays": {
        const qDays = parseAdvisory(value);
        if (qDays !== undefined) response.qDays = qDays;
        break;
      }
      case "-ipspersec": {
        const match = RATE_REGEXP.exec(value);
        if (match !== null) {
          response.ipsPerSec = {
            ips: Number(match[1]),
            seconds: Number(match[2]),
          };
        }
        break;
      }
      default:
        continue;
    }
    response.prefix ??= prefix;
  }
  response.prefix ??= "X-PageKite";
  return response;
}

function resolveLimits(
  options: HandshakeOptions,
): { maxHeadBytes: number; maxHeaders: number } {
  const {
    maxHeadBytes = DEFAULT_MAX_HEAD_BYTES,
    maxHeaders = DEFAULT_MAX_HEADERS,
  } = options;
  for (
    const [name, value] of [["maxHeadBytes", maxHeadBytes], [
      "maxHeaders",
      maxHeaders,
    ]] as const
  ) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(
        `Cannot read handshake: ${name} must be a positive integer, got ${value}`,
      );
    }
  }
  return { maxHeadBytes, maxHeaders };
}

function encodeHead(
  startLine: string,
  headers: readonly (readonly [string, string])[],
): Uint8Array {
  let text = startLine + CRLF;
  for (const [name, value] of headers) text += `${name}: ${value}${CRLF}`;
  return encodeLatin1(text + CRLF);
}

/** Splits a PageKite header name into its prefix and lower-case suffix. */
function splitName(name: string): [KiteHeaderPrefix, string] | undefined {
  const lower = name.toLowerCase();
  for (const prefix of PREFIXES) {
    const p = prefix.toLowerCase();
    if (
      lower.startsWith(p) &&
      (lower.length === p.length || lower[p.length] === "-")
    ) {
      return [prefix, lower.slice(p.length)];
    }
  }
  return undefined;
}

function findLast<S extends "ok" | "invalid">(
  results: KiteResult[],
  status: S,
  kite: KiteName,
): Extract<KiteResult, { status: S }> | undefined {
  for (let i = results.length - 1; i >= 0; i--) {
    const result = results[i]!;
    if (
      result.status === status && result.proto === kite.proto &&
      result.port === kite.port && result.domain === kite.domain &&
      result.salt === kite.salt
    ) {
      return result as Extract<KiteResult, { status: S }>;
    }
  }
  return undefined;
}

/** Parses a SignThis value, `proto[-port]:domain:bsalt:token`. */
function parseChallenge(value: string): KiteName & { token: string } {
  const count = value.split(":").length;
  if (count !== 4) {
    throw new ProtocolError(
      `Cannot parse SignThis value: expected 4 colon-separated fields, got ${count}: ${
        quote(value)
      }`,
    );
  }
  const { signature: _, ...challenge } = parseKiteRequest(value + ":");
  return challenge;
}

function splitList(value: string): string[] {
  return value.split(",").map((item) => item.trim()).filter((item) =>
    item !== ""
  );
}

function parsePort(text: string, what: string): number {
  const port = Number(text);
  if (!PORT_REGEXP.test(text) || port > 65535) {
    throw new ProtocolError(
      `Cannot parse tunnel response: ${what} entry ${
        quote(text)
      } is not a port number`,
    );
  }
  return port;
}

function formatPort(port: number): string {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot encode tunnel response: port must be an integer in 0..65535, got ${port}`,
    );
  }
  return String(port);
}

function parseAdvisory(text: string): number | undefined {
  return NUMBER_REGEXP.test(text) ? Number(text) : undefined;
}

function formatNumber(value: number, what: string): string {
  const text = String(value);
  if (!NUMBER_REGEXP.test(text)) {
    throw new RangeError(
      `Cannot encode tunnel response: ${what} must be a finite number in plain decimal notation, got ${text}`,
    );
  }
  return text;
}

/** `application/x-www-form-urlencoded` as Python's `quote_plus` writes it. */
function formEncode(text: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    if (
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) ||
      (byte >= 0x61 && byte <= 0x7a) || byte === 0x2d || byte === 0x2e ||
      byte === 0x5f || byte === 0x7e
    ) {
      out += String.fromCharCode(byte);
    } else if (byte === 0x20) {
      out += "+";
    } else {
      out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
    }
  }
  return out;
}

interface TextRules {
  /** Whether `""` is allowed. */
  empty?: boolean;
  /** Whether `,` is allowed. */
  comma?: boolean;
  /** Whether `;` is allowed. */
  semicolon?: boolean;
}

/** Describes what keeps `value` from being a header value (or list item). */
function textProblem(
  value: string,
  what: string,
  rules: TextRules = {},
): string | undefined {
  if (value === "" && rules.empty === false) return `${what} is empty`;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (
      code < 0x20 || code === 0x7f || code > 0xff ||
      (code === 0x2c && rules.comma === false) ||
      (code === 0x3b && rules.semicolon === false)
    ) {
      return `${what} ${quote(value)} contains ${
        JSON.stringify(value[i])
      } at index ${i}`;
    }
  }
  if (/^[ \t]|[ \t]$/.test(value)) {
    return `${what} ${quote(value)} starts or ends with white space`;
  }
  return undefined;
}

function checkText(
  value: string,
  what: string,
  action: string,
  rules?: TextRules,
): void {
  const problem = textProblem(value, what, rules);
  if (problem !== undefined) {
    throw new TypeError(`Cannot ${action}: ${problem}`);
  }
}

function checkParsedText(value: string, what: string, action: string): void {
  const problem = textProblem(value, what);
  if (problem !== undefined) {
    throw new ProtocolError(`Cannot ${action}: ${problem}`);
  }
}

function quote(value: string): string {
  return JSON.stringify(
    value.length > QUOTE_LIMIT ? value.slice(0, QUOTE_LIMIT) + "…" : value,
  );
}
