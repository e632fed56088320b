// Copyright 2026 the Kitewire authors. MIT license.
/**
 * A pure sniffer for HTTP/1.0 and HTTP/1.1 request heads (spec §4.1): the
 * request line, the header lines and the `Host`, lower-cased and without
 * its port or "embedded IP" prefix.
 *
 * Like every sniffer it takes the bytes received so far and answers
 * `"incomplete"`, `"unrecognized"` or `"ok"` with a value. Limits are
 * checked on incomplete input too, so a peer that trickles bytes is stopped
 * with a {@linkcode ProtocolLimitError} as soon as it crosses one. Input that
 * is recognised but malformed throws {@linkcode ProtocolError}.
 *
 * @module
 */

import { parseHead } from "./_head.ts";
import { ProtocolError } from "./errors.ts";
import {
  checkName,
  DEFAULT_MAX_HEAD_BYTES,
  DEFAULT_MAX_HEADERS,
  HTTP_WHAT,
  type HttpMethod,
  type HttpVersion,
  INCOMPLETE,
  IPV6_LITERAL_REGEXP,
  ok,
  parsePort,
  quote,
  resolveLimit,
  type SniffOptions,
  sniffRequestLine,
  type SniffResult,
} from "./_sniff_common.ts";

export type { HttpMethod, HttpVersion } from "./_sniff_common.ts";

const TOKEN_REGEXP = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// deno-lint-ignore no-control-regex
const VALUE_CONTROL_REGEXP = /[\x00-\x08\x0a-\x1f\x7f]/;
/** The "embedded IP" prefix of §4.1, on an already lower-cased host. */
const EMBEDDED_IP_REGEXP = /^0x(?:[0-9a-f]{8}|[0-9a-f]{32})--(?=.)/;

/** A complete HTTP/1.x request head. */
export interface HttpHead {
  /** The request method. */
  readonly method: HttpMethod;
  /** The request target as sent, for example `/index.html`. */
  readonly target: string;
  /** The protocol version. */
  readonly version: HttpVersion;
  /**
   * The `Host` header lower-cased, without its port and without an
   * "embedded IP" prefix `0x<8 or 32 hex digits>--`. Absent when there is
   * no `Host` header or it is empty.
   */
  readonly host?: string;
  /** The port of the `Host` header, if it has one. */
  readonly port?: number;
  /** Header lines in order: the name as sent, the value trimmed. */
  readonly headers: readonly (readonly [name: string, value: string])[];
  /** Bytes the head takes, blank line included; the body starts here. */
  readonly length: number;
}

/** Offset of the `index`-th header line (0-based), for error messages. */
function headerOffset(bytes: Uint8Array, index: number): number {
  let at = bytes.indexOf(0x0a) + 1;
  for (let i = 0; i < index && at > 0; i++) at = bytes.indexOf(0x0a, at) + 1;
  return at;
}

function parseHostHeader(
  value: string,
  offset: number,
): { host?: string; port?: number } {
  if (value === "") return {};
  let name = value;
  let portText = "";
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    name = close === -1 ? value : value.slice(0, close + 1);
    const rest = close === -1 ? "" : value.slice(close + 1);
    if (
      close === -1 || !IPV6_LITERAL_REGEXP.test(name) ||
      rest[0] !== ":" && rest !== ""
    ) {
      throw new ProtocolError(
        `Cannot sniff ${HTTP_WHAT}: Host ${quote(value)} is not a valid host`,
        { offset },
      );
    }
    portText = rest.slice(1);
  } else {
    const colon = value.indexOf(":");
    if (colon !== -1) {
      name = value.slice(0, colon);
      portText = value.slice(colon + 1);
    }
  }
  const port = portText === ""
    ? undefined
    : parsePort(portText, HTTP_WHAT, "Host port", offset);
  const host = name.startsWith("[")
    ? name.toLowerCase()
    : checkName(name, HTTP_WHAT, "Host", offset).replace(
      EMBEDDED_IP_REGEXP,
      "",
    );
  return port === undefined ? { host } : { host, port };
}

/**
 * Sniffs an HTTP/1.0 or HTTP/1.1 request head (spec §4.1): the request
 * line must start with one of the methods of §4.1 (`PING` included). Lines
 * may end in CRLF or LF. The request line is checked as soon as it is
 * complete; the rest once the blank line has arrived.
 *
 * @param bytes The bytes received so far.
 * @param options Limits: `maxHeadBytes` and `maxHeaders`.
 * @returns `"incomplete"` until the blank line is in, `"unrecognized"` if
 * the bytes do not start with a known method and a space, else the head.
 * @throws {ProtocolLimitError} If the head exceeds `maxHeadBytes` or
 * `maxHeaders`, even before it is complete.
 * @throws {ProtocolError} For a bad request line, version, header line or
 * `Host`, or more than one `Host` header.
 *
 * @example Usage
 * ```ts
 * import { sniffHttpHead } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode(
 *   "GET /index.html HTTP/1.1\r\nHost: Foo.Example.com:8080\r\n\r\n",
 * );
 * const result = sniffHttpHead(bytes);
 * assert.ok(result.status === "ok");
 * assert.equal(result.value.method, "GET");
 * assert.equal(result.value.host, "foo.example.com");
 * assert.equal(result.value.port, 8080);
 * assert.equal(result.value.length, bytes.length);
 * assert.deepEqual(sniffHttpHead(bytes.subarray(0, 30)), { status: "incomplete" });
 * ```
 */
export function sniffHttpHead(
  bytes: Uint8Array,
  options: SniffOptions = {},
): SniffResult<HttpHead> {
  const maxHeadBytes = resolveLimit(
    options.maxHeadBytes,
    DEFAULT_MAX_HEAD_BYTES,
    "maxHeadBytes",
  );
  const maxHeaders = resolveLimit(
    options.maxHeaders,
    DEFAULT_MAX_HEADERS,
    "maxHeaders",
  );
  const line = sniffRequestLine(bytes, maxHeadBytes);
  if (line.status !== "ok") return line;
  const head = parseHead(bytes, { maxHeadBytes, maxHeaders }, HTTP_WHAT);
  if (head === null) return INCOMPLETE;
  let hostValue: string | undefined;
  let hostOffset = 0;
  for (let i = 0; i < head.headers.length; i++) {
    const [name, value] = head.headers[i]!;
    if (!TOKEN_REGEXP.test(name)) {
      throw new ProtocolError(
        `Cannot sniff ${HTTP_WHAT}: header name ${quote(name)} is not a token`,
        { offset: headerOffset(bytes, i) },
      );
    }
    if (VALUE_CONTROL_REGEXP.test(value)) {
      throw new ProtocolError(
        `Cannot sniff ${HTTP_WHAT}: value of header ${
          quote(name)
        } contains a control character`,
        { offset: headerOffset(bytes, i) },
      );
    }
    if (name.toLowerCase() === "host") {
      if (hostValue !== undefined) {
        throw new ProtocolError(
          `Cannot sniff ${HTTP_WHAT}: more than one Host header`,
          { offset: headerOffset(bytes, i) },
        );
      }
      hostValue = value;
      hostOffset = headerOffset(bytes, i);
    }
  }
  const { host, port } = hostValue === undefined
    ? {}
    : parseHostHeader(hostValue, hostOffset);
  return ok({
    method: line.value.method,
    target: line.value.target,
    version: line.value.version,
    ...(host === undefined ? {} : { host }),
    ...(port === undefined ? {} : { port }),
    headers: head.headers,
    length: head.length,
  });
}
