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

import { parseHead } from "./_head.ts";
import { decodeLatin1 } from "./_latin1.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";

// ---------------------------------------------------------------------------
// Common types and helpers

/**
 * What a sniffer makes of the bytes received so far: `"incomplete"` when
 * more bytes could change the answer, `"unrecognized"` when the bytes are
 * not this protocol, or `"ok"` with the sniffed value.
 *
 * @typeParam T The sniffed value.
 *
 * @example Usage
 * ```ts
 * import { type SniffResult, sniffConnection, type Sniffed } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const result: SniffResult<Sniffed> = sniffConnection(new TextEncoder().encode("GET / HT"));
 * assert.equal(result.status, "incomplete");
 * ```
 */
export type SniffResult<T> =
  | { readonly status: "incomplete" }
  | { readonly status: "unrecognized" }
  | { readonly status: "ok"; readonly value: T };

/** Limits for the sniffers. Every limit is a positive integer. */
export interface SniffOptions {
  /**
   * Bytes an HTTP request head may take, request line and blank line
   * included.
   *
   * @default {16384}
   */
  maxHeadBytes?: number;
  /**
   * Header lines an HTTP request head may have after its request line.
   *
   * @default {100}
   */
  maxHeaders?: number;
  /**
   * Bytes the TLS records that carry the ClientHello may take, record
   * headers included (the default is one full-size record).
   *
   * @default {16389}
   */
  maxHelloBytes?: number;
  /**
   * Bytes the XMPP XML declaration and stream header may take.
   *
   * @default {4096}
   */
  maxXmppBytes?: number;
  /**
   * Bytes the IRC lines up to and including both `NICK` and `USER` may take.
   *
   * @default {4096}
   */
  maxIrcBytes?: number;
  /**
   * Bytes the Minecraft handshake packet may take, its length prefix
   * included.
   *
   * @default {2048}
   */
  maxMinecraftBytes?: number;
}

const DEFAULT_MAX_HEAD_BYTES = 16_384;
const DEFAULT_MAX_HEADERS = 100;
const DEFAULT_MAX_HELLO_BYTES = 16_384 + 5;
const DEFAULT_MAX_XMPP_BYTES = 4_096;
const DEFAULT_MAX_IRC_BYTES = 4_096;
const DEFAULT_MAX_MINECRAFT_BYTES = 2_048;

const INCOMPLETE = Object.freeze({ status: "incomplete" } as const);
const UNRECOGNIZED = Object.freeze({ status: "unrecognized" } as const);

/** Host names: DNS-style characters only, checked before lower-casing. */
const NAME_REGEXP = /^[A-Za-z0-9_.-]+$/;
const IPV6_LITERAL_REGEXP = /^\[[0-9A-Fa-f:.]+\]$/;
/** The "embedded IP" prefix of §4.1, on an already lower-cased host. */
const EMBEDDED_IP_REGEXP = /^0x(?:[0-9a-f]{8}|[0-9a-f]{32})--(?=.)/;
const PORT_REGEXP = /^[0-9]{1,5}$/;
const MAX_NAME_LENGTH = 255;

function ok<T>(value: T): SniffResult<T> {
  return { status: "ok", value };
}

function resolveLimit(
  value: number | undefined,
  fallback: number,
  name: string,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(
      `Cannot sniff connection: ${name} must be a positive integer, got ${value}`,
    );
  }
  return value;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/** Checks a host name and lower-cases it (after the check, so no Unicode folding). */
function checkName(
  raw: string,
  what: string,
  label: string,
  offset: number,
): string {
  if (raw.length > MAX_NAME_LENGTH || !NAME_REGEXP.test(raw)) {
    throw new ProtocolError(
      `Cannot sniff ${what}: ${label} ${quote(raw)} is not a valid host name`,
      { offset },
    );
  }
  return raw.toLowerCase();
}

function parsePort(
  text: string,
  what: string,
  label: string,
  offset: number,
): number {
  const port = PORT_REGEXP.test(text) ? Number(text) : 0;
  if (port < 1 || port > 65_535) {
    throw new ProtocolError(
      `Cannot sniff ${what}: ${label} ${quote(text)} is not a port number`,
      { offset },
    );
  }
  return port;
}

/**
 * Whether `bytes` starts with the ASCII `word`: `"yes"`, `"maybe"` (the
 * bytes are a proper prefix of it) or `"no"`.
 */
function matchWord(
  bytes: Uint8Array,
  word: string,
  ignoreCase: boolean,
): "yes" | "maybe" | "no" {
  const n = Math.min(bytes.length, word.length);
  for (let i = 0; i < n; i++) {
    let b = bytes[i]!;
    if (ignoreCase && b >= 0x61 && b <= 0x7a) b -= 0x20;
    if (b !== word.charCodeAt(i)) return "no";
  }
  return n === word.length ? "yes" : "maybe";
}

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
// HTTP

/** The request methods a relay accepts (spec §4.1). */
export type HttpMethod =
  | "OPTIONS"
  | "CONNECT"
  | "GET"
  | "HEAD"
  | "POST"
  | "PUT"
  | "TRACE"
  | "PROPFIND"
  | "PROPPATCH"
  | "MKCOL"
  | "DELETE"
  | "COPY"
  | "MOVE"
  | "LOCK"
  | "UNLOCK"
  | "PING"
  | "PATCH";

/** The HTTP versions a relay accepts. */
export type HttpVersion = "HTTP/1.0" | "HTTP/1.1";

const HTTP_METHODS: readonly HttpMethod[] = [
  "OPTIONS",
  "CONNECT",
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "TRACE",
  "PROPFIND",
  "PROPPATCH",
  "MKCOL",
  "DELETE",
  "COPY",
  "MOVE",
  "LOCK",
  "UNLOCK",
  "PING",
  "PATCH",
];

const HTTP_WHAT = "HTTP request head";
const TOKEN_REGEXP = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// deno-lint-ignore no-control-regex
const CONTROL_REGEXP = /[\x00-\x1f\x7f]/;
// deno-lint-ignore no-control-regex
const VALUE_CONTROL_REGEXP = /[\x00-\x08\x0a-\x1f\x7f]/;
const PAGEKITE_TARGET_REGEXP = /^pagekite:/i;

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

interface RequestLine {
  method: HttpMethod;
  target: string;
  version: HttpVersion;
}

function matchMethod(bytes: Uint8Array): SniffResult<HttpMethod> {
  let maybe = false;
  for (const method of HTTP_METHODS) {
    const match = matchWord(bytes, `${method} `, false);
    if (match === "yes") return ok(method);
    if (match === "maybe") maybe = true;
  }
  return maybe ? INCOMPLETE : UNRECOGNIZED;
}

/** Sniffs and checks the request line, as soon as its line end is in. */
function sniffRequestLine(
  bytes: Uint8Array,
  maxHeadBytes: number,
): SniffResult<RequestLine> {
  const method = matchMethod(bytes);
  if (method.status !== "ok") return method;
  const lf = bytes.subarray(0, maxHeadBytes).indexOf(0x0a);
  if (lf === -1) {
    if (bytes.length >= maxHeadBytes) {
      throw new ProtocolLimitError(
        `Cannot sniff ${HTTP_WHAT}: request line exceeds maxHeadBytes ${maxHeadBytes}`,
        { offset: maxHeadBytes },
      );
    }
    return INCOMPLETE;
  }
  const textEnd = lf > 0 && bytes[lf - 1] === 0x0d ? lf - 1 : lf;
  const line = decodeLatin1(bytes, 0, textEnd);
  const parts = line.split(" ");
  if (parts.length !== 3 || parts[1] === "") {
    throw new ProtocolError(
      `Cannot sniff ${HTTP_WHAT}: request line ${
        quote(line)
      } is not "<method> <target> <version>"`,
      { offset: 0 },
    );
  }
  const target = parts[1]!;
  const version = parts[2]!;
  if (CONTROL_REGEXP.test(target)) {
    throw new ProtocolError(
      `Cannot sniff ${HTTP_WHAT}: request target ${
        quote(target)
      } contains a control character`,
      { offset: method.value.length + 1 },
    );
  }
  if (version !== "HTTP/1.0" && version !== "HTTP/1.1") {
    throw new ProtocolError(
      `Cannot sniff ${HTTP_WHAT}: version ${
        quote(version)
      } is not HTTP/1.0 or HTTP/1.1`,
      { offset: line.length - version.length },
    );
  }
  return ok({ method: method.value, target, version });
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

function parseConnectTarget(target: string): { host: string; port: number } {
  const colon = target.lastIndexOf(":");
  const name = colon === -1 ? target : target.slice(0, colon);
  const offset = "CONNECT ".length;
  if (colon === -1) {
    throw new ProtocolError(
      `Cannot sniff ${HTTP_WHAT}: CONNECT target ${quote(target)} has no port`,
      { offset },
    );
  }
  const port = parsePort(
    target.slice(colon + 1),
    HTTP_WHAT,
    "CONNECT port",
    offset,
  );
  if (name.startsWith("[")) {
    if (!IPV6_LITERAL_REGEXP.test(name)) {
      throw new ProtocolError(
        `Cannot sniff ${HTTP_WHAT}: CONNECT host ${
          quote(name)
        } is not a valid host`,
        { offset },
      );
    }
    return { host: name.toLowerCase(), port };
  }
  return { host: checkName(name, HTTP_WHAT, "CONNECT host", offset), port };
}

// ---------------------------------------------------------------------------
// TLS

const TLS_WHAT = "TLS ClientHello";
const TLS_HANDSHAKE_RECORD = 0x16;
const TLS_MAX_RECORD_LENGTH = 16_384;
const TLS_CLIENT_HELLO = 1;
const TLS_SERVER_NAME_EXTENSION = 0;
const TLS_HOST_NAME_TYPE = 0;
const SSLV2_CLIENT_HELLO = 1;

/** What a TLS ClientHello says about where the connection should go. */
export interface TlsHello {
  /**
   * `"tls"` for a ClientHello in TLS records; `"sslv2"` for an
   * SSLv2-format hello, which cannot carry SNI.
   */
  readonly format: "tls" | "sslv2";
  /** The first host name of the SNI extension, lower-cased, if any. */
  readonly sni?: string;
  /**
   * Bytes the records that carry the ClientHello take, record headers
   * included.
   */
  readonly length: number;
}

/** Bounds-checked big-endian reads; errors go through `fail`. */
class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #end: number;
  readonly #fail: (detail: string, at: number) => never;
  #pos: number;

  constructor(
    bytes: Uint8Array,
    start: number,
    end: number,
    fail: (detail: string, at: number) => never,
  ) {
    this.#bytes = bytes;
    this.#pos = start;
    this.#end = end;
    this.#fail = fail;
  }

  get pos(): number {
    return this.#pos;
  }

  get left(): number {
    return this.#end - this.#pos;
  }

  fail(detail: string, at: number = this.#pos): never {
    return this.#fail(detail, at);
  }

  /** Skips a field of a fixed `size`. */
  skip(size: number, what: string): void {
    this.#need(size, what);
    this.#pos += size;
  }

  uint(size: number, what: string): number {
    this.#need(size, what);
    let value = 0;
    for (let i = 0; i < size; i++) {
      value = value * 256 + this.#bytes[this.#pos++]!;
    }
    return value;
  }

  #need(size: number, what: string): void {
    if (this.left < size) {
      this.#fail(
        `${what} needs ${size} bytes but ${this.left} are left`,
        this.#pos,
      );
    }
  }

  /** Skips `length` bytes of a field whose length was read from the input. */
  take(length: number, what: string): number {
    if (length > this.left) {
      this.#fail(
        `${what} length ${length} exceeds the ${this.left} bytes left`,
        this.#pos,
      );
    }
    const start = this.#pos;
    this.#pos += length;
    return start;
  }

  /** Reads a Minecraft/protobuf-style unsigned varint of at most `maxBytes`. */
  varint(what: string, maxBytes: number): number {
    const start = this.#pos;
    let value = 0;
    for (let i = 0; i < maxBytes; i++) {
      if (this.left < 1) this.#fail(`${what} is cut short`, start);
      const b = this.#bytes[this.#pos++]!;
      value += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) return value;
    }
    return this.#fail(`${what} is longer than ${maxBytes} bytes`, start);
  }
}

/**
 * Sniffs a TLS ClientHello and its SNI (spec §4.3). The first byte is
 * `0x16` (a TLS handshake record, version 3.x) or has its top bit set (an
 * SSLv2-format hello, which has no SNI). A ClientHello split across
 * several TLS records is reassembled; the answer comes once the record
 * holding its last byte is complete.
 *
 * @param bytes The bytes received so far.
 * @param options Limits: `maxHelloBytes`.
 * @returns `"incomplete"` until the ClientHello is complete,
 * `"unrecognized"` if the bytes are not a TLS or SSLv2 hello, else the
 * hello.
 * @throws {ProtocolLimitError} If the records carrying the ClientHello
 * would exceed `maxHelloBytes`; thrown as soon as a record header or the
 * handshake header says so.
 * @throws {ProtocolError} For a malformed record, handshake message,
 * ClientHello or server name.
 *
 * @example Usage
 * ```ts
 * import { sniffTlsHello } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * // A minimal ClientHello (TLS 1.2, one cipher suite) with SNI "Example.com".
 * const name = new TextEncoder().encode("Example.com");
 * const sni = [0, 0, 0, name.length + 5, 0, name.length + 3, 0, 0, name.length, ...name];
 * const body = [3, 3, ...new Array(32).fill(7), 0, 0, 2, 0x13, 0x01, 1, 0, 0, sni.length, ...sni];
 * const handshake = [1, 0, 0, body.length, ...body];
 * const record = new Uint8Array([0x16, 3, 1, 0, handshake.length, ...handshake]);
 *
 * const result = sniffTlsHello(record);
 * assert.ok(result.status === "ok");
 * assert.equal(result.value.sni, "example.com");
 * assert.equal(result.value.length, record.length);
 * assert.deepEqual(sniffTlsHello(record.subarray(0, 20)), { status: "incomplete" });
 * ```
 */
export function sniffTlsHello(
  bytes: Uint8Array,
  options: SniffOptions = {},
): SniffResult<TlsHello> {
  const maxHelloBytes = resolveLimit(
    options.maxHelloBytes,
    DEFAULT_MAX_HELLO_BYTES,
    "maxHelloBytes",
  );
  if (bytes.length === 0) return INCOMPLETE;
  const first = bytes[0]!;
  if (first === TLS_HANDSHAKE_RECORD) {
    return sniffTlsRecords(bytes, maxHelloBytes);
  }
  if (first >= 0x80) return sniffSslV2Hello(bytes, maxHelloBytes);
  return UNRECOGNIZED;
}

function tlsError(detail: string, offset: number): ProtocolError {
  return new ProtocolError(`Cannot sniff ${TLS_WHAT}: ${detail}`, { offset });
}

function tlsLimitError(
  size: number,
  maxHelloBytes: number,
  offset: number,
): ProtocolLimitError {
  return new ProtocolLimitError(
    `Cannot sniff ${TLS_WHAT}: it needs at least ${size} bytes of records, more than maxHelloBytes ${maxHelloBytes}`,
    { offset },
  );
}

function sniffTlsRecords(
  bytes: Uint8Array,
  maxHelloBytes: number,
): SniffResult<TlsHello> {
  if (bytes.length < 2) return INCOMPLETE;
  // A 0x16 not followed by a 3.x version is not TLS (a Minecraft handshake
  // of 22 bytes starts 0x16 0x00).
  if (bytes[1] !== 0x03) return UNRECOGNIZED;
  // Handshake bytes gathered so far, as [start, end) ranges of `bytes`.
  const fragments: [number, number][] = [];
  let gathered = 0;
  let messageEnd = -1; // 4 + the ClientHello's length, once known
  let pos = 0;
  for (;;) {
    if (pos + 5 > bytes.length) {
      if (pos > 0 && pos < bytes.length) checkRecordStart(bytes, pos);
      if (pos + 5 > maxHelloBytes) {
        throw tlsLimitError(pos + 5, maxHelloBytes, pos);
      }
      return INCOMPLETE;
    }
    if (pos > 0) checkRecordStart(bytes, pos);
    const recordLength = (bytes[pos + 3]! << 8) | bytes[pos + 4]!;
    if (recordLength === 0) {
      throw tlsError(`record at byte ${pos} is empty`, pos);
    }
    if (recordLength > TLS_MAX_RECORD_LENGTH) {
      throw tlsError(
        `record length ${recordLength} exceeds ${TLS_MAX_RECORD_LENGTH}`,
        pos,
      );
    }
    const recordEnd = pos + 5 + recordLength;
    if (recordEnd > maxHelloBytes) {
      throw tlsLimitError(recordEnd, maxHelloBytes, pos);
    }
    const dataEnd = Math.min(recordEnd, bytes.length);
    fragments.push([pos + 5, dataEnd]);
    gathered += dataEnd - pos - 5;
    if (messageEnd === -1 && gathered >= 1) {
      const type = handshakeByte(bytes, fragments, 0);
      if (type !== TLS_CLIENT_HELLO) {
        throw tlsError(
          `handshake message type ${type} is not ClientHello (1)`,
          fragments[0]![0],
        );
      }
      if (gathered >= 4) {
        const length = handshakeByte(bytes, fragments, 1) * 65_536 +
          handshakeByte(bytes, fragments, 2) * 256 +
          handshakeByte(bytes, fragments, 3);
        messageEnd = 4 + length;
        if (5 + messageEnd > maxHelloBytes) {
          throw tlsLimitError(5 + messageEnd, maxHelloBytes, 5);
        }
      }
    }
    if (recordEnd > bytes.length) return INCOMPLETE;
    pos = recordEnd;
    if (messageEnd !== -1 && gathered >= messageEnd) break;
  }
  const hello = new Uint8Array(messageEnd);
  let filled = 0;
  for (const [start, end] of fragments) {
    const n = Math.min(end - start, messageEnd - filled);
    hello.set(bytes.subarray(start, start + n), filled);
    filled += n;
    if (filled === messageEnd) break;
  }
  const sni = parseClientHello(hello, (detail, at) => {
    throw tlsError(detail, inputOffset(fragments, at));
  });
  return ok(
    sni === undefined
      ? { format: "tls", length: pos }
      : { format: "tls", sni, length: pos },
  );
}

/** Checks the first two bytes of a record after the first one. */
function checkRecordStart(bytes: Uint8Array, pos: number): void {
  const type = bytes[pos]!;
  if (type !== TLS_HANDSHAKE_RECORD) {
    throw tlsError(
      `record type ${type} at byte ${pos} is not a handshake record`,
      pos,
    );
  }
  const major = bytes[pos + 1];
  if (major !== undefined && major !== 0x03) {
    throw tlsError(`record version ${major}.x at byte ${pos} is not 3.x`, pos);
  }
}

function handshakeByte(
  bytes: Uint8Array,
  fragments: readonly [number, number][],
  index: number,
): number {
  return bytes[inputOffset(fragments, index)]!;
}

/** Maps an offset in the reassembled handshake to an offset in the input. */
function inputOffset(
  fragments: readonly [number, number][],
  index: number,
): number {
  let left = index;
  for (const [start, end] of fragments) {
    if (left < end - start) return start + left;
    left -= end - start;
  }
  const last = fragments[fragments.length - 1];
  return last === undefined ? 0 : last[1];
}

/** Walks a complete ClientHello message; returns its first SNI host name. */
function parseClientHello(
  hello: Uint8Array,
  fail: (detail: string, at: number) => never,
): string | undefined {
  const reader = new ByteReader(hello, 4, hello.length, fail);
  reader.skip(2, "client version");
  reader.skip(32, "random");
  const sessionIdLength = reader.uint(1, "session id length");
  if (sessionIdLength > 32) {
    reader.fail(`session id length ${sessionIdLength} exceeds 32`);
  }
  reader.take(sessionIdLength, "session id");
  const suitesLength = reader.uint(2, "cipher suites length");
  if (suitesLength === 0 || suitesLength % 2 !== 0) {
    reader.fail(
      `cipher suites length ${suitesLength} is not a positive even number`,
    );
  }
  reader.take(suitesLength, "cipher suites");
  const methodsLength = reader.uint(1, "compression methods length");
  if (methodsLength === 0) reader.fail("no compression methods");
  reader.take(methodsLength, "compression methods");
  if (reader.left === 0) return undefined; // no extensions at all
  const extensionsLength = reader.uint(2, "extensions length");
  if (extensionsLength < reader.left) {
    reader.fail(
      `${
        reader.left - extensionsLength
      } bytes follow the ${extensionsLength} bytes of extensions`,
    );
  }
  reader.take(extensionsLength, "extensions");
  const extensions = new ByteReader(
    hello,
    reader.pos - extensionsLength,
    reader.pos,
    fail,
  );
  let sni: string | undefined;
  while (extensions.left > 0) {
    const type = extensions.uint(2, "extension type");
    const length = extensions.uint(2, "extension length");
    const start = extensions.take(length, "extension");
    if (type === TLS_SERVER_NAME_EXTENSION && sni === undefined && length > 0) {
      sni = parseServerName(hello, start, start + length, fail);
    }
  }
  return sni;
}

function parseServerName(
  hello: Uint8Array,
  start: number,
  end: number,
  fail: (detail: string, at: number) => never,
): string | undefined {
  const reader = new ByteReader(hello, start, end, fail);
  const listLength = reader.uint(2, "server name list length");
  if (listLength !== reader.left) {
    reader.fail(
      `server name list length ${listLength} does not match the ${reader.left} bytes of the extension`,
    );
  }
  let name: string | undefined;
  while (reader.left > 0) {
    const type = reader.uint(1, "server name type");
    const length = reader.uint(2, "server name length");
    const at = reader.take(length, "server name");
    if (type === TLS_HOST_NAME_TYPE && name === undefined) {
      const raw = decodeLatin1(hello, at, at + length);
      if (raw.length > MAX_NAME_LENGTH || !NAME_REGEXP.test(raw)) {
        reader.fail(`server name ${quote(raw)} is not a valid host name`, at);
      }
      name = raw.toLowerCase();
    }
  }
  return name;
}

function sniffSslV2Hello(
  bytes: Uint8Array,
  maxHelloBytes: number,
): SniffResult<TlsHello> {
  // Two-byte record header (top bit set, 15-bit length), then message type
  // 1 (CLIENT-HELLO) and a version whose major byte is 0 (SSL 2) or 3.
  if (bytes.length >= 3 && bytes[2] !== SSLV2_CLIENT_HELLO) return UNRECOGNIZED;
  if (bytes.length >= 4 && bytes[3] !== 0x00 && bytes[3] !== 0x03) {
    return UNRECOGNIZED;
  }
  if (bytes.length < 4) return INCOMPLETE;
  const recordLength = ((bytes[0]! & 0x7f) << 8) | bytes[1]!;
  const total = 2 + recordLength;
  if (total > maxHelloBytes) throw tlsLimitError(total, maxHelloBytes, 0);
  if (recordLength < 9) {
    throw tlsError(`SSLv2 hello length ${recordLength} is less than 9`, 0);
  }
  if (bytes.length < total) return INCOMPLETE;
  const suitesLength = (bytes[5]! << 8) | bytes[6]!;
  const sessionIdLength = (bytes[7]! << 8) | bytes[8]!;
  const challengeLength = (bytes[9]! << 8) | bytes[10]!;
  const fields = suitesLength + sessionIdLength + challengeLength;
  if (9 + fields !== recordLength) {
    throw tlsError(
      `SSLv2 hello fields take ${fields} bytes, not the ${
        recordLength - 9
      } the record holds`,
      5,
    );
  }
  if (suitesLength === 0 || suitesLength % 3 !== 0) {
    throw tlsError(
      `SSLv2 cipher specs length ${suitesLength} is not a positive multiple of 3`,
      5,
    );
  }
  if (challengeLength < 16 || challengeLength > 32) {
    throw tlsError(
      `SSLv2 challenge length ${challengeLength} is not between 16 and 32`,
      9,
    );
  }
  return ok({ format: "sslv2", length: total });
}

// ---------------------------------------------------------------------------
// XMPP

const XMPP_WHAT = "XMPP stream header";

/** The start of an XMPP client stream. */
export interface XmppStreamHead {
  /** The `to` attribute of the stream header, lower-cased, if any. */
  readonly domain?: string;
  /**
   * Bytes the XML declaration (if any) and the stream start tag take.
   */
  readonly length: number;
}

function isXmlSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a;
}

function moreXmpp(bytes: Uint8Array, maxXmppBytes: number): SniffResult<never> {
  if (bytes.length >= maxXmppBytes) {
    throw new ProtocolLimitError(
      `Cannot sniff ${XMPP_WHAT}: no complete stream header within maxXmppBytes ${maxXmppBytes}`,
      { offset: maxXmppBytes },
    );
  }
  return INCOMPLETE;
}

/**
 * Sniffs the start of an XMPP client stream (spec §4.1): an XML
 * declaration `<?xml …?>` followed by the `<stream:stream …>` start tag,
 * or that start tag alone. The domain is its `to='…'` or `to="…"`
 * attribute.
 *
 * @param bytes The bytes received so far.
 * @param options Limits: `maxXmppBytes`.
 * @returns `"incomplete"` until the start tag is complete,
 * `"unrecognized"` unless the bytes start with `<?xml` or
 * `<stream:stream`, else the stream head.
 * @throws {ProtocolLimitError} If no complete start tag fits in
 * `maxXmppBytes`.
 * @throws {ProtocolError} For a malformed start tag, a root element that
 * is not `stream`, or a `to` that is not a host name.
 *
 * @example Usage
 * ```ts
 * import { sniffXmpp } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode(
 *   "<?xml version='1.0'?><stream:stream to='Chat.Example.com' version='1.0' " +
 *     "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
 * );
 * const result = sniffXmpp(bytes);
 * assert.ok(result.status === "ok");
 * assert.equal(result.value.domain, "chat.example.com");
 * assert.deepEqual(sniffXmpp(bytes.subarray(0, 40)), { status: "incomplete" });
 * ```
 */
export function sniffXmpp(
  bytes: Uint8Array,
  options: SniffOptions = {},
): SniffResult<XmppStreamHead> {
  const maxXmppBytes = resolveLimit(
    options.maxXmppBytes,
    DEFAULT_MAX_XMPP_BYTES,
    "maxXmppBytes",
  );
  const declaration = matchWord(bytes, "<?xml", false);
  const bare = matchWord(bytes, "<stream:stream", false);
  if (declaration === "no" && bare === "no") return UNRECOGNIZED;
  if (declaration !== "yes" && bare !== "yes") {
    return moreXmpp(bytes, maxXmppBytes);
  }
  const window = Math.min(bytes.length, maxXmppBytes);
  let tagStart = 0;
  if (declaration === "yes") {
    let declarationEnd = -1;
    for (let i = 5; i + 1 < window; i++) {
      if (bytes[i] === 0x3f && bytes[i + 1] === 0x3e) {
        declarationEnd = i + 2;
        break;
      }
    }
    if (declarationEnd === -1) return moreXmpp(bytes, maxXmppBytes);
    tagStart = declarationEnd;
    while (tagStart < window && isXmlSpace(bytes[tagStart])) tagStart++;
    if (tagStart >= window) return moreXmpp(bytes, maxXmppBytes);
    if (bytes[tagStart] !== 0x3c) {
      throw new ProtocolError(
        `Cannot sniff ${XMPP_WHAT}: byte ${tagStart} after the XML declaration is not "<"`,
        { offset: tagStart },
      );
    }
  }
  let quoteByte = 0;
  let tagEnd = -1;
  for (let i = tagStart + 1; i < window; i++) {
    const b = bytes[i]!;
    if (quoteByte !== 0) {
      if (b === quoteByte) quoteByte = 0;
    } else if (b === 0x22 || b === 0x27) {
      quoteByte = b;
    } else if (b === 0x3e) {
      tagEnd = i;
      break;
    } else if (b === 0x3c) {
      throw new ProtocolError(
        `Cannot sniff ${XMPP_WHAT}: "<" at byte ${i} inside the start tag`,
        { offset: i },
      );
    }
  }
  if (tagEnd === -1) return moreXmpp(bytes, maxXmppBytes);
  const attributes = parseStartTag(bytes, tagStart, tagEnd);
  const to = attributes.get("to");
  const domain = to === undefined
    ? undefined
    : checkName(to[0], XMPP_WHAT, "to", to[1]);
  return ok(
    domain === undefined
      ? { length: tagEnd + 1 }
      : { domain, length: tagEnd + 1 },
  );
}

/**
 * Parses `<name attr='v' …>` between `start` ("<") and `end` (">"); returns
 * the attributes with the offset of each value.
 */
function parseStartTag(
  bytes: Uint8Array,
  start: number,
  end: number,
): Map<string, [value: string, offset: number]> {
  const tag = decodeLatin1(bytes, start, end);
  function fail(detail: string, at: number): never {
    throw new ProtocolError(`Cannot sniff ${XMPP_WHAT}: ${detail}`, {
      offset: start + at,
    });
  }
  let i = 1;
  while (i < tag.length && !isXmlSpace(tag.charCodeAt(i)) && tag[i] !== "/") {
    i++;
  }
  const name = tag.slice(1, i);
  if (name !== "stream" && !name.endsWith(":stream")) {
    fail(`root element ${quote(name)} is not a stream`, 1);
  }
  const attributes = new Map<string, [string, number]>();
  for (;;) {
    while (i < tag.length && isXmlSpace(tag.charCodeAt(i))) i++;
    if (i >= tag.length || (tag[i] === "/" && i === tag.length - 1)) break;
    const nameStart = i;
    while (
      i < tag.length && tag[i] !== "=" && !isXmlSpace(tag.charCodeAt(i))
    ) i++;
    const attribute = tag.slice(nameStart, i);
    while (i < tag.length && isXmlSpace(tag.charCodeAt(i))) i++;
    if (attribute === "" || tag[i] !== "=") {
      fail(`attribute ${quote(attribute)} has no "=" and value`, nameStart);
    }
    i++;
    while (i < tag.length && isXmlSpace(tag.charCodeAt(i))) i++;
    const quoteChar = tag[i];
    if (quoteChar !== "'" && quoteChar !== '"') {
      fail(`value of attribute ${quote(attribute)} is not quoted`, i);
    }
    const valueEnd = tag.indexOf(quoteChar, i + 1);
    if (valueEnd === -1) {
      fail(`value of attribute ${quote(attribute)} is not closed`, i);
    }
    if (attributes.has(attribute)) {
      fail(`attribute ${quote(attribute)} appears twice`, nameStart);
    }
    attributes.set(attribute, [tag.slice(i + 1, valueEnd), start + i + 1]);
    i = valueEnd + 1;
  }
  return attributes;
}

// ---------------------------------------------------------------------------
// IRC

const IRC_WHAT = "IRC registration";
const IRC_FIRST_COMMANDS = ["NICK ", "USER ", "PASS ", "CAP "];

/** The registration lines of an IRC client, with the domain taken out. */
export interface IrcRegistration {
  /**
   * The domain of the first `NICK nick@domain` or `USER user@domain`,
   * lower-cased, if any.
   */
  readonly domain?: string;
  /**
   * `bytes[0:length]` with the `@domain` part of every `NICK` and `USER`
   * parameter removed: forward these bytes instead of the original ones.
   */
  readonly rewritten: Uint8Array;
  /**
   * Bytes the lines take, up to and including the line end of the later of
   * `NICK` and `USER`.
   */
  readonly length: number;
}

interface IrcParameter {
  command: string;
  /** The first parameter, without a leading ":". */
  text: string;
  /** Where `text` starts in the line. */
  start: number;
}

/** Splits `[:prefix] COMMAND param …` into the command and first parameter. */
function parseIrcLine(line: string): IrcParameter | undefined {
  let i = 0;
  function word(): [string, number] {
    while (line[i] === " ") i++;
    const start = i;
    while (i < line.length && line[i] !== " ") i++;
    return [line.slice(start, i), start];
  }
  let [command] = word();
  if (command.startsWith(":") || command.startsWith("@")) [command] = word();
  let [text, start] = word();
  if (text.startsWith(":")) {
    text = text.slice(1);
    start++;
  }
  return command === ""
    ? undefined
    : { command: command.toUpperCase(), text, start };
}

function moreIrc(bytes: Uint8Array, maxIrcBytes: number): SniffResult<never> {
  if (bytes.length >= maxIrcBytes) {
    throw new ProtocolLimitError(
      `Cannot sniff ${IRC_WHAT}: no NICK and USER lines within maxIrcBytes ${maxIrcBytes}`,
      { offset: maxIrcBytes },
    );
  }
  return INCOMPLETE;
}

/**
 * Sniffs the registration of an IRC client (spec §4.1): the first line is
 * `NICK`, `USER`, `PASS` or `CAP` (any case), and a `NICK nick@domain` or
 * `USER user@domain …` line names the domain. The answer comes once both a
 * `NICK` and a `USER` line are complete, so that the `@domain` part can be
 * taken out of both before they are forwarded. Lines may end in CRLF or LF.
 *
 * @param bytes The bytes received so far.
 * @param options Limits: `maxIrcBytes`.
 * @returns `"incomplete"` until both `NICK` and `USER` are in,
 * `"unrecognized"` unless the first line starts with one of the commands
 * above and a space, else the registration.
 * @throws {ProtocolLimitError} If `NICK` and `USER` are not both in within
 * `maxIrcBytes`.
 * @throws {ProtocolError} For a `NICK` or `USER` line without a parameter
 * or with a domain that is not a host name.
 *
 * @example Usage
 * ```ts
 * import { sniffIrc } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode(
 *   "NICK alice@IRC.Example.com\r\nUSER alice 0 * :Alice\r\n",
 * );
 * const result = sniffIrc(bytes);
 * assert.ok(result.status === "ok");
 * assert.equal(result.value.domain, "irc.example.com");
 * assert.equal(
 *   new TextDecoder().decode(result.value.rewritten),
 *   "NICK alice\r\nUSER alice 0 * :Alice\r\n",
 * );
 * assert.deepEqual(sniffIrc(bytes.subarray(0, 28)), { status: "incomplete" });
 * ```
 */
export function sniffIrc(
  bytes: Uint8Array,
  options: SniffOptions = {},
): SniffResult<IrcRegistration> {
  const maxIrcBytes = resolveLimit(
    options.maxIrcBytes,
    DEFAULT_MAX_IRC_BYTES,
    "maxIrcBytes",
  );
  let maybe = false;
  let recognized = false;
  for (const command of IRC_FIRST_COMMANDS) {
    const match = matchWord(bytes, command, true);
    if (match === "yes") recognized = true;
    if (match === "maybe") maybe = true;
  }
  if (!recognized) return maybe ? moreIrc(bytes, maxIrcBytes) : UNRECOGNIZED;
  const window = Math.min(bytes.length, maxIrcBytes);
  const cuts: [number, number][] = [];
  let domain: string | undefined;
  let sawNick = false;
  let sawUser = false;
  let lineStart = 0;
  while (lineStart < window) {
    const lf = bytes.indexOf(0x0a, lineStart);
    if (lf === -1 || lf >= window) break;
    const textEnd = lf > lineStart && bytes[lf - 1] === 0x0d ? lf - 1 : lf;
    const parsed = parseIrcLine(decodeLatin1(bytes, lineStart, textEnd));
    if (parsed?.command === "NICK" || parsed?.command === "USER") {
      if (parsed.text === "") {
        throw new ProtocolError(
          `Cannot sniff ${IRC_WHAT}: ${parsed.command} line at byte ${lineStart} has no parameter`,
          { offset: lineStart },
        );
      }
      const at = parsed.text.indexOf("@");
      if (at !== -1) {
        const offset = lineStart + parsed.start + at;
        const name = checkName(
          parsed.text.slice(at + 1),
          IRC_WHAT,
          `${parsed.command} domain`,
          offset + 1,
        );
        domain ??= name;
        cuts.push([offset, lineStart + parsed.start + parsed.text.length]);
      }
      if (parsed.command === "NICK") sawNick = true;
      else sawUser = true;
      if (sawNick && sawUser) {
        const length = lf + 1;
        return ok(
          domain === undefined
            ? { rewritten: bytes.slice(0, length), length }
            : { domain, rewritten: cutBytes(bytes, length, cuts), length },
        );
      }
    }
    lineStart = lf + 1;
  }
  return moreIrc(bytes, maxIrcBytes);
}

function cutBytes(
  bytes: Uint8Array,
  length: number,
  cuts: readonly [number, number][],
): Uint8Array {
  let removed = 0;
  for (const [start, end] of cuts) removed += end - start;
  const out = new Uint8Array(length - removed);
  let from = 0;
  let to = 0;
  for (const [start, end] of cuts) {
    out.set(bytes.subarray(from, start), to);
    to += start - from;
    from = end;
  }
  out.set(bytes.subarray(from, length), to);
  return out;
}

// ---------------------------------------------------------------------------
// Minecraft

const MINECRAFT_WHAT = "Minecraft handshake";
/** Packet id, protocol version, address length, port and next state. */
const MINECRAFT_MIN_PACKET = 6;

/** A Minecraft (Java Edition) handshake packet. */
export interface MinecraftHandshake {
  /** The client's protocol version number. */
  readonly protocolVersion: number;
  /**
   * The server address the client connected to, lower-cased, without the
   * `\0…` suffix some mod loaders append and without a trailing dot.
   * Absent when empty.
   */
  readonly host?: string;
  /** The server port the client connected to. */
  readonly port: number;
  /** What the client wants next: 1 status, 2 login, 3 transfer. */
  readonly nextState: number;
  /** Bytes the handshake packet takes, its length prefix included. */
  readonly length: number;
}

/**
 * Sniffs a Minecraft (Java Edition) handshake (spec §4.1): a varint packet
 * length, packet id 0, a varint protocol version, the varint-prefixed UTF-8
 * server address, the big-endian u16 port and a varint next state. With a
 * packet length under 128 the second byte is `0x00`. The caller compares
 * `port` with its listening port.
 *
 * @param bytes The bytes received so far.
 * @param options Limits: `maxMinecraftBytes`.
 * @returns `"incomplete"` until the packet is complete, `"unrecognized"`
 * unless the bytes start with a packet length of at least 6 and packet id
 * 0, else the handshake.
 * @throws {ProtocolLimitError} If the packet length exceeds
 * `maxMinecraftBytes`.
 * @throws {ProtocolError} For a malformed packet or server address.
 *
 * @example Usage
 * ```ts
 * import { sniffMinecraft } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const address = new TextEncoder().encode("MC.Example.com");
 * const body = [0x00, 0xff, 0x05, address.length, ...address, 0x63, 0xdd, 0x01];
 * const bytes = new Uint8Array([body.length, ...body, 0x01, 0x00]);
 * const result = sniffMinecraft(bytes);
 * assert.ok(result.status === "ok");
 * assert.equal(result.value.host, "mc.example.com");
 * assert.equal(result.value.port, 25565);
 * assert.equal(result.value.protocolVersion, 767);
 * assert.equal(result.value.length, body.length + 1);
 * ```
 */
export function sniffMinecraft(
  bytes: Uint8Array,
  options: SniffOptions = {},
): SniffResult<MinecraftHandshake> {
  const maxMinecraftBytes = resolveLimit(
    options.maxMinecraftBytes,
    DEFAULT_MAX_MINECRAFT_BYTES,
    "maxMinecraftBytes",
  );
  // The packet length: a varint of at most 3 bytes (2 MiB).
  let packetLength = 0;
  let headerLength = 0;
  for (;;) {
    if (headerLength === 3) return UNRECOGNIZED;
    if (headerLength >= bytes.length) return INCOMPLETE;
    const b = bytes[headerLength]!;
    packetLength += (b & 0x7f) * 2 ** (7 * headerLength);
    headerLength++;
    if (b < 0x80) break;
  }
  if (headerLength >= bytes.length) return INCOMPLETE;
  if (bytes[headerLength] !== 0x00 || packetLength < MINECRAFT_MIN_PACKET) {
    return UNRECOGNIZED;
  }
  const total = headerLength + packetLength;
  if (total > maxMinecraftBytes) {
    throw new ProtocolLimitError(
      `Cannot sniff ${MINECRAFT_WHAT}: packet of ${total} bytes exceeds maxMinecraftBytes ${maxMinecraftBytes}`,
      { offset: 0 },
    );
  }
  if (bytes.length < total) return INCOMPLETE;
  function fail(detail: string, at: number): never {
    throw new ProtocolError(`Cannot sniff ${MINECRAFT_WHAT}: ${detail}`, {
      offset: at,
    });
  }
  const reader = new ByteReader(bytes, headerLength + 1, total, fail);
  const protocolVersion = reader.varint("protocol version", 5) | 0;
  const addressLength = reader.varint("server address length", 3);
  const addressStart = reader.take(addressLength, "server address");
  let address: string;
  try {
    address = new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(addressStart, addressStart + addressLength),
    );
  } catch (error) {
    throw new ProtocolError(
      `Cannot sniff ${MINECRAFT_WHAT}: server address is not UTF-8`,
      { offset: addressStart, cause: error },
    );
  }
  const port = reader.uint(2, "server port");
  const nextState = reader.varint("next state", 5);
  if (nextState < 1 || nextState > 3) {
    fail(`next state ${nextState} is not 1, 2 or 3`, reader.pos - 1);
  }
  if (reader.left !== 0) {
    fail(`${reader.left} bytes follow the next state`, reader.pos);
  }
  const nul = address.indexOf("\0");
  let name = nul === -1 ? address : address.slice(0, nul);
  if (name.endsWith(".")) name = name.slice(0, -1);
  const host = name === ""
    ? undefined
    : checkName(name, MINECRAFT_WHAT, "server address", addressStart);
  return ok({
    protocolVersion,
    ...(host === undefined ? {} : { host }),
    port,
    nextState,
    length: total,
  });
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
