// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import {
  badRequestPage,
  blockedRequestPage,
  headersTooLargePage,
  TLS_ALERT,
  unauthorizedPage,
  unavailablePage,
} from "./pages.ts";

const decoder = new TextDecoder();

/** Splits a response into head lines and body; checks Content-Length. */
function parse(bytes: Uint8Array): { lines: string[]; body: string } {
  const text = decoder.decode(bytes);
  const end = text.indexOf("\r\n\r\n");
  assert.notEqual(end, -1, "no blank line after the head");
  const lines = text.slice(0, end).split("\r\n");
  const bodyBytes = bytes.length - new TextEncoder().encode(
    text.slice(0, end + 4),
  ).length;
  assert.ok(lines.includes(`Content-Length: ${bodyBytes}`), "Content-Length");
  return { lines, body: text.slice(end + 4) };
}

const COMMON_HEADERS = [
  "Content-Type: text/html; charset=utf-8",
  "Pragma: no-cache",
  "Expires: 0",
  "Cache-Control: no-store",
  "Connection: close",
];

Deno.test("unavailablePage() builds the exact 503 Sorry! (be) page", () => {
  const page = unavailablePage({
    uuid: "ef37b95c",
    host: "down.example.com",
    proto: "http",
  });
  const body = '<html><body><h1>Sorry! (be)</h1><p>The HTTP <a href="' +
    'https://jsr.io/@kitewire/pagekite"><i>Kitewire</i></a> kite for ' +
    "<b>down.example.com</b> is unavailable at the moment.</p>" +
    "<p>Please try again later.</p></body></html>\n";
  assert.equal(
    decoder.decode(page),
    "HTTP/1.1 503 Unavailable\r\nX-PageKite-UUID: ef37b95c\r\n" +
      "Content-Type: text/html; charset=utf-8\r\n" +
      `Content-Length: ${body.length}\r\n` +
      "Pragma: no-cache\r\nExpires: 0\r\nCache-Control: no-store\r\n" +
      `Connection: close\r\n\r\n${body}`,
  );
});

Deno.test("unavailablePage() leaves out the UUID when none is given", () => {
  const { lines } = parse(
    unavailablePage({ host: "a.example.com", proto: "websocket" }),
  );
  assert.deepEqual(lines, [
    "HTTP/1.1 503 Unavailable",
    COMMON_HEADERS[0],
    lines[2],
    ...COMMON_HEADERS.slice(1),
  ]);
});

Deno.test("unavailablePage() escapes the host and protocol", () => {
  const { body } = parse(
    unavailablePage({
      host: `<script>alert("x&'y")</script>.example.com`,
      proto: "<b>",
    }),
  );
  assert.ok(!body.includes("<script>"));
  assert.ok(
    body.includes(
      "<b>&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;.example.com</b>",
    ),
  );
  assert.ok(body.includes("The &lt;B&gt; <a"));
});

Deno.test("unavailablePage() counts Content-Length in UTF-8 bytes", () => {
  parse(unavailablePage({ host: "bücher.example", proto: "http" }));
});

Deno.test("unavailablePage() refuses a UUID that could break the head", () => {
  assert.throws(
    () => unavailablePage({ uuid: "a\r\nX: y", host: "h", proto: "http" }),
    TypeError,
  );
});

Deno.test("TLS_ALERT is pagekite.py's access_denied alert", () => {
  assert.deepEqual(
    [...TLS_ALERT],
    [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31],
  );
});

Deno.test("badRequestPage() builds a closing 400 page with the escaped reason", () => {
  const { lines, body } = parse(badRequestPage("bare CR in <head>"));
  assert.equal(lines[0], "HTTP/1.1 400 Bad Request");
  for (const header of COMMON_HEADERS) assert.ok(lines.includes(header));
  assert.equal(
    body,
    "<html><body><h1>Bad request</h1><p>bare CR in &lt;head&gt;</p></body></html>\n",
  );
});

Deno.test("unauthorizedPage() asks for Basic credentials in realm PageKite", () => {
  const { lines } = parse(unauthorizedPage());
  assert.deepEqual(lines.slice(0, 2), [
    "HTTP/1.1 401 Unauthorized",
    "WWW-Authenticate: Basic realm=PageKite",
  ]);
  for (const header of COMMON_HEADERS) assert.ok(lines.includes(header));
});

Deno.test("headersTooLargePage() builds a closing 431 page", () => {
  const { lines, body } = parse(headersTooLargePage("too many"));
  assert.equal(lines[0], "HTTP/1.1 431 Request Header Fields Too Large");
  for (const header of COMMON_HEADERS) assert.ok(lines.includes(header));
  assert.ok(body.includes("<p>too many</p>"));
});

Deno.test("blockedRequestPage() builds the closing 500 Sorry! (be) page", () => {
  const { lines, body } = parse(blockedRequestPage());
  assert.equal(lines[0], "HTTP/1.1 500 Internal Server Error");
  for (const header of COMMON_HEADERS) assert.ok(lines.includes(header));
  assert.ok(body.startsWith("<html><body><h1>Sorry! (be)</h1>"));
});

Deno.test("pages are fresh arrays on every call", () => {
  const a = badRequestPage("x");
  a[0] = 0;
  assert.equal(badRequestPage("x")[0], "H".charCodeAt(0));
});
