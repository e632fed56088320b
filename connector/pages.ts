// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The answers a connector sends to users itself, through the tunnel
 * (spec §5.2): the `503` page when no local service takes a stream, the TLS
 * alert for `https` kites, and the `400`, `401`, `431` and `500` pages of
 * `HttpRequestFilter`. Each page is a complete HTTP/1.1 response
 * with `Connection: close`; the stream ends after it.
 *
 * @module
 */

const encoder = new TextEncoder();

const HTML_SPECIAL_REGEXP = /[&<>"']/g;
const UUID_REGEXP = /^[0-9A-Za-z-]*$/;
const KITEWIRE_LINK =
  '<a href="https://jsr.io/@kitewire/pagekite"><i>Kitewire</i></a>';

export { TLS_ALERT } from "../protocol/mod.ts";

/** What {@linkcode unavailablePage} needs. */
export interface UnavailablePageOptions {
  /**
   * The connector's `X-PageKite-UUID`, sent right after the status line;
   * letters, digits and `-` only. Left out when not given.
   */
  uuid?: string;
  /** The host the user asked for (the stream's `Host`). */
  host: string;
  /** The kite protocol of the stream (its `Proto`), e.g. `http`. */
  proto: string;
}

/**
 * Builds the `503 Unavailable` page "Sorry! (be)" that a connector sends
 * when no kite or local service takes an HTTP stream (spec §5.2). The host
 * and protocol are HTML-escaped; the page forbids caching and closes the
 * connection.
 *
 * @param options The stream's host and protocol, and the connector UUID.
 * @returns The complete HTTP response.
 * @throws {TypeError} If `uuid` holds characters other than letters, digits
 * and `-`.
 *
 * @example Usage
 * ```ts
 * import { unavailablePage } from "@kitewire/pagekite/connector";
 * import assert from "node:assert/strict";
 *
 * const page = new TextDecoder().decode(
 *   unavailablePage({ uuid: "ef37b95c", host: "down.example.com", proto: "http" }),
 * );
 * assert.ok(page.startsWith("HTTP/1.1 503 Unavailable\r\nX-PageKite-UUID: ef37b95c\r\n"));
 * assert.ok(page.includes("<h1>Sorry! (be)</h1>"));
 * assert.ok(page.includes("<b>down.example.com</b>"));
 * ```
 */
export function unavailablePage(options: UnavailablePageOptions): Uint8Array {
  let extra = "";
  if (options.uuid !== undefined) {
    if (!UUID_REGEXP.test(options.uuid)) {
      throw new TypeError(
        `Cannot build unavailable page: uuid ${
          JSON.stringify(options.uuid)
        } holds characters other than letters, digits and "-"`,
      );
    }
    extra = `X-PageKite-UUID: ${options.uuid}\r\n`;
  }
  const body = "<html><body><h1>Sorry! (be)</h1><p>The " +
    `${escapeHtml(options.proto.toUpperCase())} ${KITEWIRE_LINK} kite for ` +
    `<b>${escapeHtml(options.host)}</b> is unavailable at the moment.</p>` +
    "<p>Please try again later.</p></body></html>\n";
  return htmlResponse("503 Unavailable", extra, body);
}

/**
 * Builds the `400 Bad Request` page that `HttpRequestFilter` sends
 * for a request it will not forward (malformed or ambiguous framing).
 *
 * @param reason What was wrong, in plain text; it is HTML-escaped.
 * @returns The complete HTTP response.
 *
 * @example Usage
 * ```ts
 * import { badRequestPage } from "@kitewire/pagekite/connector";
 * import assert from "node:assert/strict";
 *
 * const page = new TextDecoder().decode(badRequestPage("obs-fold in a header"));
 * assert.ok(page.startsWith("HTTP/1.1 400 Bad Request\r\n"));
 * assert.ok(page.includes("Connection: close\r\n"));
 * assert.ok(page.includes("<p>obs-fold in a header</p>"));
 * ```
 */
export function badRequestPage(reason: string): Uint8Array {
  return htmlResponse(
    "400 Bad Request",
    "",
    `<html><body><h1>Bad request</h1><p>${
      escapeHtml(reason)
    }</p></body></html>\n`,
  );
}

/**
 * Builds the `401 Unauthorized` page with
 * `WWW-Authenticate: Basic realm=PageKite`, sent for a request to a
 * password-protected kite without the right credentials (spec §5.2).
 *
 * @returns The complete HTTP response.
 *
 * @example Usage
 * ```ts
 * import { unauthorizedPage } from "@kitewire/pagekite/connector";
 * import assert from "node:assert/strict";
 *
 * const page = new TextDecoder().decode(unauthorizedPage());
 * assert.ok(page.startsWith(
 *   "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=PageKite\r\n",
 * ));
 * ```
 */
export function unauthorizedPage(): Uint8Array {
  return htmlResponse(
    "401 Unauthorized",
    "WWW-Authenticate: Basic realm=PageKite\r\n",
    "<html><body><h1>Unauthorized</h1>" +
      "<p>This kite needs a user name and password.</p></body></html>\n",
  );
}

/**
 * Builds the `431 Request Header Fields Too Large` page, sent for a request
 * head over the filter's byte or header-count limit.
 *
 * @param reason Which limit was crossed, in plain text; it is HTML-escaped.
 * @returns The complete HTTP response.
 *
 * @example Usage
 * ```ts
 * import { headersTooLargePage } from "@kitewire/pagekite/connector";
 * import assert from "node:assert/strict";
 *
 * const page = new TextDecoder().decode(
 *   headersTooLargePage("more than 100 header fields"),
 * );
 * assert.ok(page.startsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
 * assert.ok(page.includes("<p>more than 100 header fields</p>"));
 * ```
 */
export function headersTooLargePage(reason: string): Uint8Array {
  return htmlResponse(
    "431 Request Header Fields Too Large",
    "",
    `<html><body><h1>Request header fields too large</h1><p>${
      escapeHtml(reason)
    }</p></body></html>\n`,
  );
}

/**
 * Builds the `500` page "Sorry! (be)" sent for a request the security
 * filter blocked (spec §5.2, §5.3).
 *
 * @returns The complete HTTP response.
 *
 * @example Usage
 * ```ts
 * import { blockedRequestPage } from "@kitewire/pagekite/connector";
 * import assert from "node:assert/strict";
 *
 * const page = new TextDecoder().decode(blockedRequestPage());
 * assert.ok(page.startsWith("HTTP/1.1 500 Internal Server Error\r\n"));
 * assert.ok(page.includes("<h1>Sorry! (be)</h1>"));
 * ```
 */
export function blockedRequestPage(): Uint8Array {
  return htmlResponse(
    "500 Internal Server Error",
    "",
    "<html><body><h1>Sorry! (be)</h1><p>This request was blocked by the " +
      `security filter of the ${KITEWIRE_LINK} back-end.</p></body></html>\n`,
  );
}

/** Escapes text for HTML element content and quoted attributes. */
function escapeHtml(text: string): string {
  return text.replace(HTML_SPECIAL_REGEXP, htmlEntity);
}

function htmlEntity(char: string): string {
  switch (char) {
    case "&":
      return "&amp;";
    case "<":
      return "&lt;";
    case ">":
      return "&gt;";
    case '"':
      return "&quot;";
    default:
      return "&#39;";
  }
}

/**
 * A complete response: status line, `extra` header lines (each ending in
 * CRLF), the common headers, and the UTF-8 body.
 */
function htmlResponse(
  status: string,
  extra: string,
  body: string,
): Uint8Array {
  const bodyBytes = encoder.encode(body);
  const head = encoder.encode(
    `HTTP/1.1 ${status}\r\n${extra}` +
      "Content-Type: text/html; charset=utf-8\r\n" +
      `Content-Length: ${bodyBytes.length}\r\n` +
      "Pragma: no-cache\r\nExpires: 0\r\nCache-Control: no-store\r\n" +
      "Connection: close\r\n\r\n",
  );
  const out = new Uint8Array(head.length + bodyBytes.length);
  out.set(head);
  out.set(bodyBytes, head.length);
  return out;
}
