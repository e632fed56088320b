// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The rewriter a connector runs on the user → local service bytes of an
 * HTTP kite (proto `http`, `http2`, `http3`, `websocket`; spec §5.3): it
 * injects `X-Forwarded-For`, `X-Forwarded-Proto` and `X-PageKite-Port`
 * after every request line of a keep-alive connection, renames copies the
 * user sent, checks HTTP Basic credentials and the optional security
 * filter, and refuses requests whose framing a local service could read
 * differently (request smuggling).
 *
 * @module
 */

import {
  badRequestPage,
  blockedRequestPage,
  headersTooLargePage,
  unauthorizedPage,
} from "./pages.ts";

/**
 * Default for {@linkcode HttpRequestFilterOptions.maxHeadBytes}: 64 KiB.
 *
 * @example Usage
 * ```ts
 * import {
 *   DEFAULT_FILTER_MAX_HEAD_BYTES,
 *   HttpRequestFilter,
 * } from "@kitewire/pagekite/connector";
 * import assert from "node:assert/strict";
 *
 * const filter = new HttpRequestFilter({ remoteIp: "192.0.2.1", publicPort: 80 });
 * const head = new Uint8Array(DEFAULT_FILTER_MAX_HEAD_BYTES + 1).fill(0x47);
 * const out = filter.push(head); // no line end in sight
 * assert.ok(new TextDecoder().decode(out.reply).startsWith("HTTP/1.1 431 "));
 * ```
 */
export const DEFAULT_FILTER_MAX_HEAD_BYTES = 65_536;
/**
 * Default for {@linkcode HttpRequestFilterOptions.maxHeaders}.
 *
 * @example Usage
 * ```ts
 * import {
 *   DEFAULT_FILTER_MAX_HEADERS,
 *   HttpRequestFilter,
 * } from "@kitewire/pagekite/connector";
 * import assert from "node:assert/strict";
 *
 * const filter = new HttpRequestFilter({ remoteIp: "192.0.2.1", publicPort: 80 });
 * const fields = "X-A: b\r\n".repeat(DEFAULT_FILTER_MAX_HEADERS + 1);
 * const out = filter.push(new TextEncoder().encode(`GET / HTTP/1.1\r\n${fields}\r\n`));
 * assert.ok(new TextDecoder().decode(out.reply).startsWith("HTTP/1.1 431 "));
 * ```
 */
export const DEFAULT_FILTER_MAX_HEADERS = 100;

/** Longest chunk-size line (extensions and CRLF included) accepted. */
const MAX_CHUNK_LINE_BYTES = 4096;
/** Most significant hex digits of a chunk size (2^52 stays exact). */
const MAX_CHUNK_SIZE_DIGITS = 13;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;

const TOKEN_REGEXP = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE_REGEXP =
  /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e\x80-\xff]+) (HTTP\/1\.[0-9])$/;
const DECIMAL_REGEXP = /^[0-9]+$/;
const LEADING_ZEROS_REGEXP = /^0+(?=.)/;
const OWS_EDGES_REGEXP = /^[ \t]+|[ \t]+$/g;
const TRAILING_WHITESPACE_REGEXP = /[ \t]$/;
/** `1*HEXDIG *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )` */
const CHUNK_LINE_REGEXP =
  /^([0-9A-Fa-f]+)(?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*$/;
const BASIC_AUTH_REGEXP = /^basic +([A-Za-z0-9+/]+=*)$/i;
/** Headers whose user-sent copies are renamed `X-Old-…`. */
const RENAMED_HEADER_REGEXP =
  /^(?:x-forwarded-(?:for|proto|port|host)|x-pagekite-(?:for|proto|port)|forwarded|x-real-ip)$/;
const REMOTE_IP_REGEXP = /^[0-9A-Za-z.:%_-]{1,255}$/;
const HOST_REGEXP = /^[0-9A-Za-z.:_\-[\]]{1,255}$/;
const ABSOLUTE_FORM_REGEXP = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;
const QUERY_OR_FRAGMENT_REGEXP = /[?#]/;
const PERCENT_ESCAPE_REGEXP = /%([0-9A-Fa-f]{2})/g;
/**
 * Paths the security filter refuses (matched against the lower-cased path,
 * raw and percent-decoded): XAMPP pages, `/adm*`, `wp-admin` (except its
 * `css/` and `admin-ajax`), `wp-config.php`, `system32/`, `..`,
 * `.htaccess`/`.htpasswd`, phpMyAdmin-like folders, and `adm*`, `install*`
 * or `setup*` PHP scripts.
 */
const BLOCKED_PATH_REGEXP = new RegExp(
  [
    "(?:^|/)xampp",
    "^/adm",
    "/wp-admin(?:/(?!css/|admin-ajax\\.php)|$)",
    "wp-config\\.php",
    "system32(?:/|$)",
    "\\.\\.",
    "\\.ht(?:access|passwd)",
    "(?:^|/)(?:php-?my-?admin[^/]*|pma\\d*|myadmin|mysql-?admin|sqladmin|dbadmin|websql)(?:/|$)",
    "(?:^|/)(?:adm(?!in-ajax\\.php)|install|setup)[^/]*\\.php(?:/|$)",
  ].join("|"),
);

/** User name and password that a kite's requests must carry. */
export interface BasicAuthCredentials {
  /** The user name; it may not contain `:`. */
  user: string;
  /** The password. */
  password: string;
}

/** Options for {@linkcode HttpRequestFilter}: the stream and the kite. */
export interface HttpRequestFilterOptions {
  /**
   * The user's address, the stream's `RIP`, sent as `X-Forwarded-For`
   * exactly as given (it may be `::ffff:1.2.3.4`). When it is empty (the
   * relay sent no `RIP`) or holds anything but letters, digits and
   * `.:%_-`, no `X-Forwarded-For` is added; copies from the user are still
   * renamed.
   */
  remoteIp: string;
  /**
   * The user's port, the stream's `RPort`. Not sent in any header; checked
   * like `publicPort` so one options bag can feed both this filter and
   * `proxyProtocolV1`.
   */
  remotePort?: number;
  /** The public port, the stream's `Port`, sent as `X-PageKite-Port`. */
  publicPort: number;
  /**
   * Whether the user's connection was TLS (the stream's `RTLS`):
   * `X-Forwarded-Proto: https` instead of `http`.
   *
   * @default {false}
   */
  tls?: boolean;
  /**
   * Inject the forwarding headers and rename copies sent by the user.
   * `false` is pagekite.py's `+rawheaders`: heads pass unchanged (line ends
   * are still written as CRLF) but framing is still checked.
   *
   * @default {true}
   */
  forwardingHeaders?: boolean;
  /**
   * `+rewritehost`: add `Host: <this>` and rename the user's `Host` to
   * `X-Old-Host`.
   */
  rewriteHost?: string;
  /**
   * `+password/user=pass`: requests without these HTTP Basic credentials
   * get the `401` page and the stream ends.
   */
  basicAuth?: BasicAuthCredentials;
  /**
   * The security filter of spec §5.3: requests for XAMPP pages, `/adm*`,
   * `wp-admin/` (except `admin-ajax.php` and `css/`), `wp-config.php`,
   * `system32/`, `..`, `.htaccess`/`.htpasswd`, phpMyAdmin-like names and
   * `adm*`/`install*`/`setup*` `.php` scripts get the `500` page and the
   * stream ends. It applies to every method except `CONNECT`, and checks
   * the path both as sent and percent-decoded.
   *
   * @default {false}
   */
  requestFilter?: boolean;
  /**
   * Largest request head (request line, header lines and the blank line)
   * and largest trailer section, in bytes. Larger ones get `431`.
   *
   * @default {65536}
   */
  maxHeadBytes?: number;
  /**
   * Most header fields in a head, and most trailer fields. More get `431`.
   *
   * @default {100}
   */
  maxHeaders?: number;
}

/** What {@linkcode HttpRequestFilter.push} produced. */
export interface FilterOutput {
  /**
   * Bytes for the local service, in order. Pieces may be views into the
   * pushed bytes: write them before reusing the input buffer.
   */
  forward: Uint8Array[];
  /** An answer for the user (an error page), sent after `forward`. */
  reply?: Uint8Array;
  /** The stream must end: send `reply`, then close both directions. */
  close?: boolean;
  /** Why the stream ends, in plain text, for logs. */
  reason?: string;
}

type FilterState =
  | "head"
  | "body"
  | "chunk-size"
  | "chunk-data"
  | "chunk-end"
  | "trailers"
  | "raw"
  | "closed";

interface RequestLine {
  line: string;
  method: string;
  target: string;
  version: string;
}

interface HeaderField {
  /** The whole line, without its line end. */
  line: string;
  /** The name, lower-cased. */
  name: string;
  /** The value without surrounding whitespace. */
  value: string;
}

/** Ends `push()` with an answer for the user. */
class Refusal extends Error {
  readonly page: Uint8Array;

  constructor(page: Uint8Array, reason: string) {
    super(reason);
    this.name = "Refusal";
    this.page = page;
  }
}

/**
 * Rewrites the user → local service bytes of an HTTP stream, one request
 * after another (spec §5.3). Push bytes as they arrive, split anywhere; the
 * result does not depend on the split.
 *
 * After each request line it inserts, in this order,
 * `X-Forwarded-For: <RIP>`, `X-Forwarded-Proto: http|https` and
 * `X-PageKite-Port: <Port>`. Copies the user sent of `X-Forwarded-For`,
 * `-Proto`, `-Port`, `-Host`, `X-PageKite-For`, `-Proto`, `-Port`,
 * `Forwarded` and `X-Real-IP` keep their values under a name prefixed with
 * `X-Old-`. Bodies pass unchanged; the filter follows `Content-Length` and
 * chunked framing (sizes, extensions, trailers) to find the next request.
 * After a `CONNECT` head, or a head with `Upgrade` and `Connection: upgrade`
 * (WebSocket) and its body, everything passes raw. Empty lines before a
 * request line are dropped, and head lines ending in a bare LF are written
 * with CRLF.
 *
 * A request that a local service could frame differently is refused with a
 * `400` page and the stream ends, before any byte of that request is
 * forwarded: `Content-Length` together with `Transfer-Encoding`, more than
 * one `Content-Length` (even identical ones), a `Content-Length` that is not
 * decimal, a `Transfer-Encoding` whose last coding is not `chunked` (or that
 * has `chunked` twice, an empty element, or is in an HTTP/1.0 request),
 * more than one `Host`, `Upgrade: h2c`, obs-fold, whitespace before a
 * header's colon, an invalid header name, a control character in a value, a
 * bare CR or a NUL anywhere in the head, and a request line other than
 * `METHOD SP target SP HTTP/1.x`. A head over `maxHeadBytes` or
 * `maxHeaders` gets `431`. In a chunked body, a bad chunk-size line
 * (invalid size or extension, a bare LF or bare CR, over 4096 bytes), data
 * not followed by CRLF, or a bad trailer line gets `400`; the bytes of that
 * request before the error have been forwarded already, and nothing after
 * it is. With `basicAuth`, a request without the credentials gets `401`;
 * with `requestFilter`, a blocked path gets `500`; both end the stream too.
 * Trailer fields pass unchanged (they are not renamed).
 *
 * The filter sees only the user's side of the connection, so after an
 * upgrade request it cannot know whether the service accepted it. A service
 * that declines an upgrade but keeps the connection open would read any
 * later request on it without injected headers; services behind a kite
 * should close the connection when they refuse an upgrade.
 *
 * @example Usage
 * ```ts
 * import { HttpRequestFilter } from "@kitewire/pagekite/connector";
 * import assert from "node:assert/strict";
 *
 * const filter = new HttpRequestFilter({ remoteIp: "127.0.0.1", publicPort: 18080 });
 * const bytes = new TextEncoder().encode(
 *   "GET /hello HTTP/1.1\r\nHost: foo.example.com\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
 * );
 * const first = filter.push(bytes.subarray(0, 30));
 * assert.deepEqual(first.forward, []); // the head is not complete yet
 * const second = filter.push(bytes.subarray(30));
 * assert.equal(
 *   new TextDecoder().decode(second.forward[0]),
 *   "GET /hello HTTP/1.1\r\nX-Forwarded-For: 127.0.0.1\r\n" +
 *     "X-Forwarded-Proto: http\r\nX-PageKite-Port: 18080\r\n" +
 *     "Host: foo.example.com\r\nX-Old-X-Forwarded-For: 6.6.6.6\r\n\r\n",
 * );
 * ```
 *
 * @example Refusing a smuggling attempt
 * ```ts
 * import { HttpRequestFilter } from "@kitewire/pagekite/connector";
 * import assert from "node:assert/strict";
 *
 * const filter = new HttpRequestFilter({ remoteIp: "192.0.2.1", publicPort: 80 });
 * const out = filter.push(new TextEncoder().encode(
 *   "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n" +
 *     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
 * ));
 * assert.deepEqual(out.forward, []);
 * assert.equal(out.close, true);
 * assert.ok(new TextDecoder().decode(out.reply).startsWith("HTTP/1.1 400 "));
 * ```
 */
export class HttpRequestFilter {
  /** Lines written after each request line (forwarding headers, Host). */
  readonly #injected: string;
  readonly #forwarding: boolean;
  readonly #rewriteHost: boolean;
  readonly #credentials: Uint8Array | null;
  readonly #requestFilter: boolean;
  readonly #maxHeadBytes: number;
  readonly #maxHeaders: number;

  #state: FilterState = "head";
  /** Bytes the current head, trailer section or chunk-size line may grow. */
  #budget: number;
  /** The current line, without CR and LF. */
  #line = new Uint8Array(128);
  #lineLength = 0;
  /** Whether `#line` is complete (its LF was consumed). */
  #lineDone = false;
  /** Whether the last byte was a CR (in a line, or after chunk data). */
  #pendingCr = false;
  #request: RequestLine | null = null;
  #fields: HeaderField[] = [];
  #trailers = 0;
  /** Bytes left of a `Content-Length` body or of a chunk's data. */
  #remaining = 0;
  /** Whether to pass everything raw after the current message. */
  #rawAfter = false;

  /**
   * Constructs a new instance.
   *
   * @param options The stream's addresses and the kite's settings.
   * @throws {TypeError} If a port is not an integer in 0–65535, or
   * `rewriteHost` or the credentials hold characters that cannot go in a
   * header.
   * @throws {RangeError} If a limit is not a positive integer.
   */
  constructor(options: HttpRequestFilterOptions) {
    checkPort("publicPort", options.publicPort);
    if (options.remotePort !== undefined) {
      checkPort("remotePort", options.remotePort);
    }
    this.#forwarding = options.forwardingHeaders ?? true;
    let injected = "";
    if (this.#forwarding) {
      if (REMOTE_IP_REGEXP.test(options.remoteIp)) {
        injected = `X-Forwarded-For: ${options.remoteIp}\r\n`;
      }
      injected += `X-Forwarded-Proto: ${options.tls ? "https" : "http"}\r\n` +
        `X-PageKite-Port: ${options.publicPort}\r\n`;
    }
    this.#rewriteHost = options.rewriteHost !== undefined;
    if (options.rewriteHost !== undefined) {
      if (!HOST_REGEXP.test(options.rewriteHost)) {
        throw new TypeError(
          `Cannot create HTTP request filter: rewriteHost ${
            JSON.stringify(options.rewriteHost)
          } is not a host name`,
        );
      }
      injected += `Host: ${options.rewriteHost}\r\n`;
    }
    this.#injected = injected;
    this.#credentials = null;
    if (options.basicAuth !== undefined) {
      const { user, password } = options.basicAuth;
      if (user.includes(":") || hasControlChar(user)) {
        throw new TypeError(
          'Cannot create HTTP request filter: basicAuth user contains ":" or a control character',
        );
      }
      if (hasControlChar(password)) {
        throw new TypeError(
          "Cannot create HTTP request filter: basicAuth password contains a control character",
        );
      }
      this.#credentials = new TextEncoder().encode(`${user}:${password}`);
    }
    this.#requestFilter = options.requestFilter ?? false;
    this.#maxHeadBytes = checkLimit(
      "maxHeadBytes",
      options.maxHeadBytes ?? DEFAULT_FILTER_MAX_HEAD_BYTES,
    );
    this.#maxHeaders = checkLimit(
      "maxHeaders",
      options.maxHeaders ?? DEFAULT_FILTER_MAX_HEADERS,
    );
    this.#budget = this.#maxHeadBytes;
  }

  /**
   * Takes the next bytes from the user.
   *
   * @param bytes Bytes of the stream, in order, split anywhere.
   * @returns What to forward to the local service, and an answer for the
   * user if the stream must end. Once `close` was set, every later call
   * returns `close` and nothing else.
   *
   * @example Usage
   * ```ts
   * import { HttpRequestFilter } from "@kitewire/pagekite/connector";
   * import assert from "node:assert/strict";
   *
   * const filter = new HttpRequestFilter({
   *   remoteIp: "::ffff:192.0.2.1",
   *   publicPort: 443,
   *   tls: true,
   * });
   * const out = filter.push(new TextEncoder().encode(
   *   "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\n\r\n",
   * ));
   * assert.equal(
   *   out.forward.map((b) => new TextDecoder().decode(b)).join(""),
   *   "POST /a HTTP/1.1\r\nX-Forwarded-For: ::ffff:192.0.2.1\r\n" +
   *     "X-Forwarded-Proto: https\r\nX-PageKite-Port: 443\r\n" +
   *     "Content-Length: 2\r\n\r\nhi" +
   *     "GET /b HTTP/1.1\r\nX-Forwarded-For: ::ffff:192.0.2.1\r\n" +
   *     "X-Forwarded-Proto: https\r\nX-PageKite-Port: 443\r\n\r\n",
   * );
   * ```
   */
  push(bytes: Uint8Array): FilterOutput {
    const forward: Uint8Array[] = [];
    if (this.#state === "closed") return { forward, close: true };
    try {
      let at = 0;
      while (at < bytes.length) at = this.#step(bytes, at, forward);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      this.#state = "closed";
      this.#line = new Uint8Array(0);
      this.#fields = [];
      this.#request = null;
      return { forward, reply: error.page, close: true, reason: error.message };
    }
    return { forward };
  }

  /** Consumes bytes from `at` in the current state; returns the new `at`. */
  #step(bytes: Uint8Array, at: number, forward: Uint8Array[]): number {
    switch (this.#state) {
      case "head":
        return this.#readHead(bytes, at, forward);
      case "body":
      case "chunk-data": {
        const n = Math.min(this.#remaining, bytes.length - at);
        forward.push(bytes.subarray(at, at + n));
        this.#remaining -= n;
        if (this.#remaining === 0) {
          if (this.#state === "body") this.#endMessage();
          else this.#state = "chunk-end";
        }
        return at + n;
      }
      case "chunk-size":
        return this.#readChunkSize(bytes, at, forward);
      case "chunk-end":
        return this.#readChunkEnd(bytes, at, forward);
      case "trailers":
        return this.#readTrailer(bytes, at, forward);
      case "raw":
        forward.push(bytes.subarray(at));
        return bytes.length;
      case "closed":
        return bytes.length;
    }
  }

  #readHead(bytes: Uint8Array, at: number, forward: Uint8Array[]): number {
    const next = this.#scanLine(bytes, at, false);
    if (!this.#lineDone) return next;
    const line = this.#takeLine();
    if (this.#request === null) {
      // Empty lines before a request line are ignored (RFC 9112 §2.2).
      if (line !== "") this.#request = parseRequestLine(line);
    } else if (line !== "") {
      this.#fields.push(parseField(line, "header"));
      if (this.#fields.length > this.#maxHeaders) {
        throw tooLarge(`more than ${this.#maxHeaders} header fields`);
      }
    } else {
      this.#finishHead(forward);
    }
    return next;
  }

  #finishHead(forward: Uint8Array[]): void {
    const request = this.#request!;
    const fields = this.#fields;
    let lengths = 0;
    let contentLength = 0;
    let chunked = false;
    const codings: string[] = [];
    let hosts = 0;
    const upgrades: string[] = [];
    let connectionUpgrade = false;
    const authorizations: string[] = [];
    for (const field of fields) {
      switch (field.name) {
        case "content-length":
          if (++lengths > 1) {
            throw badRequest("more than one Content-Length header");
          }
          if (!DECIMAL_REGEXP.test(field.value)) {
            throw badRequest(
              `Content-Length ${quote(field.value)} is not a decimal number`,
            );
          }
          contentLength = Number(field.value);
          if (!Number.isSafeInteger(contentLength)) {
            throw badRequest("Content-Length is too large");
          }
          break;
        case "transfer-encoding":
          chunked = true;
          codings.push(...splitList(field.value));
          break;
        case "host":
          hosts++;
          break;
        case "upgrade":
          upgrades.push(...splitList(field.value));
          break;
        case "connection":
          if (
            splitList(field.value).some((t) => t.toLowerCase() === "upgrade")
          ) {
            connectionUpgrade = true;
          }
          break;
        case "authorization":
          authorizations.push(field.value);
          break;
      }
    }
    if (chunked) {
      if (lengths > 0) {
        throw badRequest("both Content-Length and Transfer-Encoding");
      }
      if (request.version === "HTTP/1.0") {
        throw badRequest("Transfer-Encoding in an HTTP/1.0 request");
      }
      if (codings.includes("")) {
        throw badRequest("empty element in Transfer-Encoding");
      }
      const last = codings[codings.length - 1]!;
      if (last.toLowerCase() !== "chunked") {
        throw badRequest(
          `final transfer coding ${quote(last)} is not chunked`,
        );
      }
      if (codings.slice(0, -1).some((c) => c.toLowerCase() === "chunked")) {
        throw badRequest("chunked transfer coding applied more than once");
      }
    }
    if (hosts > 1) throw badRequest("more than one Host header");
    if (upgrades.some((u) => u.split("/")[0]!.toLowerCase() === "h2c")) {
      throw badRequest("upgrades to h2c are not supported");
    }
    if (
      this.#credentials !== null && !this.#authorized(authorizations)
    ) {
      throw new Refusal(unauthorizedPage(), "missing or wrong credentials");
    }
    if (
      this.#requestFilter && request.method !== "CONNECT" &&
      isBlockedTarget(request.target)
    ) {
      throw new Refusal(
        blockedRequestPage(),
        `request for ${quote(request.target)} blocked by the security filter`,
      );
    }

    let head = `${request.line}\r\n${this.#injected}`;
    for (const field of fields) {
      const renamed =
        (this.#forwarding && RENAMED_HEADER_REGEXP.test(field.name)) ||
        (this.#rewriteHost && field.name === "host");
      head += renamed ? `X-Old-${field.line}\r\n` : `${field.line}\r\n`;
    }
    forward.push(encodeLatin1(`${head}\r\n`));

    this.#request = null;
    this.#fields = [];
    if (request.method === "CONNECT") {
      this.#state = "raw";
      return;
    }
    this.#rawAfter = connectionUpgrade && upgrades.some((u) => u !== "");
    if (chunked) {
      this.#state = "chunk-size";
      this.#budget = MAX_CHUNK_LINE_BYTES;
    } else if (contentLength > 0) {
      this.#state = "body";
      this.#remaining = contentLength;
    } else {
      this.#endMessage();
    }
  }

  #readChunkSize(
    bytes: Uint8Array,
    at: number,
    forward: Uint8Array[],
  ): number {
    const next = this.#scanLine(bytes, at, true);
    if (!this.#lineDone) return next;
    const line = this.#takeLine();
    const match = CHUNK_LINE_REGEXP.exec(line);
    if (match === null) {
      throw badRequest(`invalid chunk-size line ${quote(line)}`);
    }
    const digits = match[1]!.replace(LEADING_ZEROS_REGEXP, "");
    if (digits.length > MAX_CHUNK_SIZE_DIGITS) {
      throw badRequest(`chunk size ${quote(match[1]!)} is too large`);
    }
    forward.push(encodeLatin1(`${line}\r\n`));
    const size = parseInt(digits, 16);
    if (size === 0) {
      this.#state = "trailers";
      this.#budget = this.#maxHeadBytes;
      this.#trailers = 0;
    } else {
      this.#state = "chunk-data";
      this.#remaining = size;
    }
    return next;
  }

  #readChunkEnd(bytes: Uint8Array, at: number, forward: Uint8Array[]): number {
    const byte = bytes[at]!;
    if (!this.#pendingCr) {
      if (byte !== CR) throw badRequest("chunk data not followed by CRLF");
      this.#pendingCr = true;
    } else {
      if (byte !== LF) throw badRequest("chunk data not followed by CRLF");
      this.#pendingCr = false;
      forward.push(Uint8Array.of(CR, LF));
      this.#state = "chunk-size";
      this.#budget = MAX_CHUNK_LINE_BYTES;
    }
    return at + 1;
  }

  #readTrailer(bytes: Uint8Array, at: number, forward: Uint8Array[]): number {
    const next = this.#scanLine(bytes, at, true);
    if (!this.#lineDone) return next;
    const line = this.#takeLine();
    if (line === "") {
      forward.push(Uint8Array.of(CR, LF));
      this.#endMessage();
      return next;
    }
    parseField(line, "trailer");
    if (++this.#trailers > this.#maxHeaders) {
      throw tooLarge(`more than ${this.#maxHeaders} trailer fields`);
    }
    forward.push(encodeLatin1(`${line}\r\n`));
    return next;
  }

  #endMessage(): void {
    if (this.#rawAfter) {
      this.#state = "raw";
    } else {
      this.#state = "head";
      this.#budget = this.#maxHeadBytes;
    }
  }

  /**
   * Consumes bytes of the current line. Sets `#lineDone` once its LF was
   * consumed, and returns the index after the consumed bytes. `strict`
   * refuses a bare LF as the line end.
   */
  #scanLine(bytes: Uint8Array, at: number, strict: boolean): number {
    let budget = this.#budget;
    let pendingCr = this.#pendingCr;
    let done = false;
    let i = at;
    for (; i < bytes.length; i++) {
      const byte = bytes[i]!;
      if (--budget < 0) throw this.#overBudget();
      if (pendingCr) {
        if (byte !== LF) throw badRequest(`bare CR in ${this.#unit()}`);
        pendingCr = false;
        done = true;
        break;
      }
      if (byte === LF) {
        if (strict) {
          throw badRequest(`bare LF as a line end in ${this.#unit()}`);
        }
        done = true;
        break;
      }
      if (byte === CR) pendingCr = true;
      else if (byte === 0) throw badRequest(`NUL byte in ${this.#unit()}`);
    }
    // A CR can only be the last byte before the LF or before the end of
    // `bytes`: everything else in [at, i) belongs to the line.
    let contentEnd = i;
    if (done ? contentEnd > at && bytes[contentEnd - 1] === CR : pendingCr) {
      contentEnd--;
    }
    this.#appendToLine(bytes.subarray(at, contentEnd));
    this.#budget = budget;
    this.#pendingCr = pendingCr;
    this.#lineDone = done;
    return done ? i + 1 : i;
  }

  #appendToLine(bytes: Uint8Array): void {
    const needed = this.#lineLength + bytes.length;
    if (needed > this.#line.length) {
      let size = this.#line.length * 2;
      while (size < needed) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#line.subarray(0, this.#lineLength));
      this.#line = grown;
    }
    this.#line.set(bytes, this.#lineLength);
    this.#lineLength = needed;
  }

  /** Returns the complete line as Latin-1 text and starts a new one. */
  #takeLine(): string {
    const line = decodeLatin1(this.#line.subarray(0, this.#lineLength));
    this.#lineLength = 0;
    this.#lineDone = false;
    return line;
  }

  #unit(): string {
    switch (this.#state) {
      case "chunk-size":
        return "a chunk-size line";
      case "trailers":
        return "the trailer section";
      default:
        return "the request head";
    }
  }

  #overBudget(): Refusal {
    switch (this.#state) {
      case "chunk-size":
        return badRequest(
          `chunk-size line longer than ${MAX_CHUNK_LINE_BYTES} bytes`,
        );
      case "trailers":
        return tooLarge(
          `trailer section larger than ${this.#maxHeadBytes} bytes`,
        );
      default:
        return tooLarge(`request head larger than ${this.#maxHeadBytes} bytes`);
    }
  }

  /** Whether the `Authorization` values carry the kite's credentials. */
  #authorized(values: string[]): boolean {
    if (values.length !== 1) return false;
    const match = BASIC_AUTH_REGEXP.exec(values[0]!);
    if (match === null) return false;
    let given: Uint8Array;
    try {
      given = Uint8Array.fromBase64(match[1]!);
    } catch {
      return false;
    }
    return timingSafeEqual(given, this.#credentials!);
  }
}

function badRequest(reason: string): Refusal {
  return new Refusal(badRequestPage(reason), reason);
}

function tooLarge(reason: string): Refusal {
  return new Refusal(headersTooLargePage(reason), reason);
}

function parseRequestLine(line: string): RequestLine {
  const match = REQUEST_LINE_REGEXP.exec(line);
  if (match === null) {
    throw badRequest(`malformed request line ${quote(line)}`);
  }
  return {
    line,
    method: match[1]!,
    target: match[2]!,
    version: match[3]!,
  };
}

/** Parses a header or trailer line; refuses what could be read two ways. */
function parseField(line: string, kind: "header" | "trailer"): HeaderField {
  const first = line.charCodeAt(0);
  if (first === SP || first === HTAB) {
    throw badRequest(`obs-fold (a ${kind} line starting with whitespace)`);
  }
  const colon = line.indexOf(":");
  if (colon === -1) throw badRequest(`${kind} line without a colon`);
  const name = line.slice(0, colon);
  if (TRAILING_WHITESPACE_REGEXP.test(name)) {
    throw badRequest(`whitespace between a ${kind} name and its colon`);
  }
  if (!TOKEN_REGEXP.test(name)) {
    throw badRequest(`invalid ${kind} name ${quote(name)}`);
  }
  const value = line.slice(colon + 1);
  if (hasControlChar(value)) {
    throw badRequest(`control character in the ${kind} ${quote(name)}`);
  }
  return {
    line,
    name: name.toLowerCase(),
    value: value.replace(OWS_EDGES_REGEXP, ""),
  };
}

/** Splits a comma-separated header value; empty elements stay. */
function splitList(value: string): string[] {
  return value.split(",").map((item) => item.replace(OWS_EDGES_REGEXP, ""));
}

/** Whether text holds a control character other than HTAB. */
function hasControlChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 && code !== HTAB) || code === 0x7f) return true;
  }
  return false;
}

/** Whether the security filter refuses a request target. */
function isBlockedTarget(target: string): boolean {
  if (target === "*") return false;
  let path = target;
  const absolute = ABSOLUTE_FORM_REGEXP.exec(path);
  if (absolute !== null) path = path.slice(absolute[0].length);
  const end = path.search(QUERY_OR_FRAGMENT_REGEXP);
  if (end !== -1) path = path.slice(0, end);
  const decoded = path.replace(
    PERCENT_ESCAPE_REGEXP,
    (_, hex: string) => String.fromCharCode(parseInt(hex, 16)),
  );
  return [path, decoded].some((p) =>
    BLOCKED_PATH_REGEXP.test(p.replaceAll("\\", "/").toLowerCase())
  );
}

/**
 * Compares `given` with `expected` in time that depends only on the length
 * of `expected`.
 */
function timingSafeEqual(given: Uint8Array, expected: Uint8Array): boolean {
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) {
    diff |= (i < given.length ? given[i]! : 0) ^ expected[i]!;
  }
  return diff === 0;
}

/** A short, quoted rendering of user input for messages. */
function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

function checkPort(name: string, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(
      `Cannot create HTTP request filter: ${name} ${port} is not a port number`,
    );
  }
}

function checkLimit(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot create HTTP request filter: ${name} ${value} is not a positive integer`,
    );
  }
  return value;
}

function decodeLatin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return text;
}

/** Encodes text whose characters are all below U+0100. */
function encodeLatin1(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}
