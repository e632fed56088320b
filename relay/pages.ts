// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The answers a relay writes itself (spec §4.7): the 503 page for a kite
 * that is not flying (also the fast-ping answer), 400 for a request without
 * a usable Host, the status answer of a probe, and `PONG` for the `PING`
 * method. Each is a complete HTTP response; the relay closes afterwards.
 *
 * @module
 */

const encoder = new TextEncoder();

/** What {@linkcode unavailablePage} needs. */
export interface UnavailablePageOptions {
  /** The relay's `X-PageKite-UUID`. */
  uuid: string;
  /** Put `X-PageKite-Overloaded: Sorry` first. */
  overloaded: boolean;
  /** The host the user asked for. */
  host: string;
  /** `connection` for the fast ping, else `PageKite` (a link). */
  label: "connection" | "kite";
  /** The kite protocol that was asked for. */
  proto: string;
  /** Send a frameset loading this page instead of ours. */
  errorUrl?: string;
  /** The relay's local address, for the error URL's `relay=` parameter. */
  relayIp?: string;
}

const NO_CACHE_HEADERS = "Content-Type: text/html; charset=utf-8\r\n" +
  "Pragma: no-cache\r\nExpires: 0\r\nCache-Control: no-store\r\n" +
  "Connection: close\r\n";

/** Escapes text for HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]!);
}

const HTML_ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * `503 Unavailable`: no tunnel serves the kite, or the fast-ping answer.
 * `X-PageKite-Overloaded` and `X-PageKite-UUID` come right after the
 * status line, where libpagekite (which reads 120 bytes) looks for them.
 */
export function unavailablePage(options: UnavailablePageOptions): Uint8Array {
  let head = "HTTP/1.1 503 Unavailable\r\n";
  if (options.overloaded) head += "X-PageKite-Overloaded: Sorry\r\n";
  head += `X-PageKite-UUID: ${options.uuid}\r\n${NO_CACHE_HEADERS}\r\n`;
  const host = escapeHtml(options.host);
  let body: string;
  if (options.errorUrl !== undefined) {
    let url = options.errorUrl;
    if (url.includes("?")) {
      const params = new URLSearchParams({
        where: "FE",
        proto: options.proto,
        domain: options.host,
        relay: options.relayIp ?? "",
      });
      url += `&${params}`;
    }
    body = `<html><frameset cols='*'><frame target='_top' src='${
      escapeHtml(url)
    }'></frameset></html>\n`;
  } else {
    const what = options.label === "connection"
      ? "connection"
      : '<a href="https://jsr.io/@kitewire/pagekite"><i>Kitewire</i></a> kite';
    body =
      `<html><body><h1>Sorry! (fe)</h1><p>The HTTP ${what} for <b>${host}</b>` +
      " is unavailable at the moment.</p><p>Please try again later.</p>" +
      "</body></html>\n";
  }
  return encoder.encode(head + body);
}

/** `400 Bad request`: no Host header, or one that is not a host name. */
export function badRequestPage(reason: string): Uint8Array {
  const body = `<html><body><h1>Bad request</h1><p>${
    escapeHtml(reason)
  }</p></body></html>\n`;
  return encoder.encode(
    `HTTP/1.1 400 Bad request\r\n${NO_CACHE_HEADERS}\r\n${body}`,
  );
}

/** A 1×1 red GIF: the image answer of a probe for a kite that is down. */
const DOWN_GIF = Uint8Array.of(
  0x47,
  0x49,
  0x46,
  0x38,
  0x39,
  0x61,
  0x01,
  0x00,
  0x01,
  0x00,
  0x80,
  0x00,
  0x00,
  0xff,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x2c,
  0x00,
  0x00,
  0x00,
  0x00,
  0x01,
  0x00,
  0x01,
  0x00,
  0x00,
  0x02,
  0x02,
  0x44,
  0x01,
  0x00,
  0x3b,
);

/**
 * `200 OK` with `X-PageKite-Status: Down-FE`: a probe
 * (`/~:PageKite:~/<domain>/…`) for a kite no tunnel serves. A path ending
 * in `.json` gets JSON, any other a small GIF.
 */
export function probeDownPage(path: string): Uint8Array {
  const json = path.endsWith(".json");
  const body = json
    ? encoder.encode('{"pagekite-status": "down-fe"}')
    : DOWN_GIF;
  const head = encoder.encode(
    "HTTP/1.1 200 OK\r\n" +
      `Content-Type: ${json ? "application/json" : "image/gif"}\r\n` +
      "X-PageKite-Status: Down-FE\r\nAccess-Control-Allow-Origin: *\r\n" +
      `Content-Length: ${body.length}\r\nPragma: no-cache\r\nExpires: 0\r\n` +
      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
  );
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** The answer to the HTTP `PING` method: `PONG <path>`. */
export function pongPage(path: string): Uint8Array {
  return encoder.encode(`PONG ${path}\r\n\r\n`);
}
