// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import {
  badRequestPage,
  escapeHtml,
  pongPage,
  probeDownPage,
  unavailablePage,
  type UnavailablePageOptions,
} from "./pages.ts";

const latin1 = new TextDecoder("latin1");
const UUID = "85bda9bf4eb615fda5b603e5e8c63585e1371f5c";

/** Splits a response into its head lines and its body. */
function parse(bytes: Uint8Array): { lines: string[]; body: string } {
  const text = latin1.decode(bytes);
  const end = text.indexOf("\r\n\r\n");
  assert.notEqual(end, -1, "no blank line after the head");
  return { lines: text.slice(0, end).split("\r\n"), body: text.slice(end + 4) };
}

function page(options: Partial<UnavailablePageOptions> = {}): {
  lines: string[];
  body: string;
  text: string;
} {
  const bytes = unavailablePage({
    uuid: UUID,
    overloaded: false,
    host: "nosuch.example.com",
    label: "kite",
    proto: "http",
    ...options,
  });
  return { ...parse(bytes), text: latin1.decode(bytes) };
}

Deno.test("unavailablePage() starts with the 503 status line and the UUID", () => {
  const { lines } = page();
  assert.equal(lines[0], "HTTP/1.1 503 Unavailable");
  assert.equal(lines[1], `X-PageKite-UUID: ${UUID}`);
  assert.ok(!lines.some((l) => l.startsWith("X-PageKite-Overloaded")));
});

Deno.test("unavailablePage() puts X-PageKite-Overloaded first when overloaded", () => {
  const { lines, text } = page({ overloaded: true });
  assert.equal(lines[0], "HTTP/1.1 503 Unavailable");
  assert.equal(lines[1], "X-PageKite-Overloaded: Sorry");
  assert.equal(lines[2], `X-PageKite-UUID: ${UUID}`);
  // libpagekite reads only the first 120 bytes.
  assert.ok(text.indexOf(UUID) + UUID.length <= 120);
});

Deno.test("unavailablePage() forbids caching and closes", () => {
  const { lines } = page();
  for (
    const header of [
      "Content-Type: text/html; charset=utf-8",
      "Pragma: no-cache",
      "Expires: 0",
      "Cache-Control: no-store",
      "Connection: close",
    ]
  ) {
    assert.ok(lines.includes(header), header);
  }
});

Deno.test("unavailablePage() names the host in a Sorry page", () => {
  const { body } = page();
  assert.match(body, /^<html><body><h1>Sorry! \(fe\)<\/h1>/);
  assert.match(body, /<b>nosuch\.example\.com<\/b> is unavailable/);
  assert.ok(body.endsWith("</html>\n"));
});

Deno.test("unavailablePage() says connection for the fast ping", () => {
  const { body } = page({ host: "ping.pagekite", label: "connection" });
  assert.match(
    body,
    /The HTTP connection for <b>ping\.pagekite<\/b> is unavailable/,
  );
  assert.doesNotMatch(body, /<a /);
});

Deno.test("unavailablePage() escapes the host", () => {
  const host = `<script>alert("x&'y")</script>`;
  const { body } = page({ host });
  assert.doesNotMatch(body, /<script>|"x|'y/);
  const match = /<b>([^<]*)<\/b> is unavailable/.exec(body);
  assert.ok(match !== null, body);
  assert.equal(unescapeHtml(match[1]!), host);
});

/** Decodes the entities escapeHtml() may write, named or numeric. */
function unescapeHtml(text: string): string {
  const named: Record<string, string> = {
    amp: "&",
    lt: "<",
    gt: ">",
    quot: '"',
    apos: "'",
  };
  return text.replace(
    /&(?:#(\d+)|#x([0-9a-f]+)|([a-z]+));/gi,
    (entity, dec, hex, name) =>
      dec !== undefined
        ? String.fromCharCode(Number(dec))
        : hex !== undefined
        ? String.fromCharCode(parseInt(hex, 16))
        : named[name.toLowerCase()] ?? entity,
  );
}

/** The `src` of the frameset page, with HTML entities decoded. */
function frameSource(body: string): string {
  const match = /<frame target='_top' src='([^']*)'>/.exec(body);
  assert.ok(match !== null, `no frame in ${body}`);
  return unescapeHtml(match[1]!);
}

Deno.test("unavailablePage() shows errorUrl in a frameset", () => {
  const { lines, body } = page({ errorUrl: "https://errors.example.net/down" });
  assert.equal(lines[0], "HTTP/1.1 503 Unavailable");
  assert.match(body, /^<html><frameset cols='\*'>/);
  assert.doesNotMatch(body, /Sorry!/);
  // No `?`: the URL is used as it is.
  assert.equal(frameSource(body), "https://errors.example.net/down");
});

Deno.test("unavailablePage() appends where, proto, domain and relay to an errorUrl with ?", () => {
  const { body } = page({
    errorUrl: "https://errors.example.net/down?lang=en",
    host: "a&b.example.com",
    proto: "websocket",
    relayIp: "127.0.0.1",
  });
  const url = new URL(frameSource(body));
  assert.equal(url.origin + url.pathname, "https://errors.example.net/down");
  assert.deepEqual([...url.searchParams], [
    ["lang", "en"],
    ["where", "FE"],
    ["proto", "websocket"],
    ["domain", "a&b.example.com"],
    ["relay", "127.0.0.1"],
  ]);
  // Escaped in the attribute: every & starts an entity.
  assert.doesNotMatch(body, /src='[^']*&(?![a-z]+;|#\d+;)/);
});

Deno.test("unavailablePage() escapes an errorUrl that tries to break out", () => {
  const { body } = page({ errorUrl: "https://x.example/'><script>" });
  assert.doesNotMatch(body, /<script>/);
  assert.equal(frameSource(body), "https://x.example/'><script>");
});

Deno.test("unavailablePage() leaves relay empty without an address", () => {
  const { body } = page({ errorUrl: "https://errors.example.net/?" });
  const url = new URL(frameSource(body));
  assert.equal(url.searchParams.get("relay"), "");
  assert.equal(url.searchParams.get("domain"), "nosuch.example.com");
});

Deno.test("escapeHtml() escapes the five special characters", () => {
  const text = `<a href="x">'&'</a>`;
  const escaped = escapeHtml(text);
  assert.doesNotMatch(escaped, /[<>"']/);
  assert.doesNotMatch(escaped, /&(?![a-z]+;|#\d+;)/);
  assert.equal(unescapeHtml(escaped), text);
  assert.equal(escapeHtml("plain.example.com"), "plain.example.com");
});

Deno.test("badRequestPage() answers 400 with an escaped reason", () => {
  const { lines, body } = parse(badRequestPage("Missing <Host> header"));
  assert.equal(lines[0], "HTTP/1.1 400 Bad request");
  assert.ok(lines.includes("Connection: close"));
  assert.ok(lines.includes("Cache-Control: no-store"));
  assert.doesNotMatch(body, /<Host>/);
  assert.match(unescapeHtml(body), /Missing <Host> header/);
});

Deno.test("probeDownPage() answers JSON with X-PageKite-Status: Down-FE", () => {
  const bytes = probeDownPage("/~:PageKite:~/foo.example.com/status.json");
  const { lines, body } = parse(bytes);
  assert.equal(lines[0], "HTTP/1.1 200 OK");
  assert.ok(lines.includes("X-PageKite-Status: Down-FE"));
  assert.ok(lines.includes("Access-Control-Allow-Origin: *"));
  assert.ok(lines.includes("Content-Type: application/json"));
  assert.ok(lines.includes("Cache-Control: no-store"));
  assert.ok(lines.includes(`Content-Length: ${body.length}`));
  assert.deepEqual(JSON.parse(body), { "pagekite-status": "down-fe" });
  assert.equal(body, '{"pagekite-status": "down-fe"}');
});

Deno.test("probeDownPage() answers a GIF for other paths", () => {
  const bytes = probeDownPage("/~:PageKite:~/foo.example.com/status.gif");
  const { lines, body } = parse(bytes);
  assert.equal(lines[0], "HTTP/1.1 200 OK");
  assert.ok(lines.includes("X-PageKite-Status: Down-FE"));
  assert.ok(lines.includes("Access-Control-Allow-Origin: *"));
  assert.ok(lines.includes("Content-Type: image/gif"));
  assert.ok(lines.includes(`Content-Length: ${body.length}`));
  assert.ok(body.startsWith("GIF89a"));
  assert.ok(body.endsWith(";")); // GIF trailer
});

Deno.test("pongPage() echoes the path", () => {
  assert.equal(
    latin1.decode(pongPage("/some/path")),
    "PONG /some/path\r\n\r\n",
  );
});
