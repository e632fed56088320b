// Copyright 2026 the Kitewire authors. MIT license.
// Private helpers shared by the sniffers: limits, host name and port checks,
// a bounds-checked byte reader, and the HTTP request line and CONNECT target
// parsing that both `sniffHttpHead` and `sniffConnection` need. The public
// types declared here are re-exported by `sniff.ts` and `sniff_http.ts`.

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

export const DEFAULT_MAX_HEAD_BYTES = 16_384;
export const DEFAULT_MAX_HEADERS = 100;
export const DEFAULT_MAX_HELLO_BYTES = 16_384 + 5;
export const DEFAULT_MAX_XMPP_BYTES = 4_096;
export const DEFAULT_MAX_IRC_BYTES = 4_096;
export const DEFAULT_MAX_MINECRAFT_BYTES = 2_048;

export const INCOMPLETE = Object.freeze({ status: "incomplete" } as const);
export const UNRECOGNIZED = Object.freeze({ status: "unrecognized" } as const);

/** Host names: DNS-style characters only, checked before lower-casing. */
export const NAME_REGEXP = /^[A-Za-z0-9_.-]+$/;
export const IPV6_LITERAL_REGEXP = /^\[[0-9A-Fa-f:.]+\]$/;
const PORT_REGEXP = /^[0-9]{1,5}$/;
export const MAX_NAME_LENGTH = 255;

export function ok<T>(value: T): SniffResult<T> {
  return { status: "ok", value };
}

export function resolveLimit(
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

export function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/** Checks a host name and lower-cases it (after the check, so no Unicode folding). */
export function checkName(
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

export function parsePort(
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
export function matchWord(
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
// Byte reader (TLS and Minecraft)

/** Bounds-checked big-endian reads; errors go through `fail`. */
export class ByteReader {
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

// ---------------------------------------------------------------------------
// HTTP request line and CONNECT target

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

export const HTTP_WHAT = "HTTP request head";
// deno-lint-ignore no-control-regex
const CONTROL_REGEXP = /[\x00-\x1f\x7f]/;
export const PAGEKITE_TARGET_REGEXP = /^pagekite:/i;

export interface RequestLine {
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
export function sniffRequestLine(
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

export function parseConnectTarget(
  target: string,
): { host: string; port: number } {
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
