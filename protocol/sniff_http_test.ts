// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import { ProtocolError } from "./errors.ts";
import {
  assertLimitError,
  assertProtocolError,
  assertSplitEverywhere,
  INCOMPLETE,
  latin1,
  readCapture,
  trickleUntilLimit,
  UNRECOGNIZED,
  value,
} from "../tests/_sniff.ts";
import { sniffHttpHead } from "./sniff_http.ts";

Deno.test("sniffHttpHead() parses heads with CRLF and with LF", () => {
  for (const eol of ["\r\n", "\n"]) {
    const head =
      `POST /form HTTP/1.0${eol}Host: foo.example.com${eol}Content-Length: 3${eol}${eol}`;
    const bytes = latin1(`${head}a=b`);
    assert.deepEqual(sniffHttpHead(bytes), {
      status: "ok",
      value: {
        method: "POST",
        target: "/form",
        version: "HTTP/1.0",
        host: "foo.example.com",
        headers: [["Host", "foo.example.com"], ["Content-Length", "3"]],
        length: head.length,
      },
    });
  }
});

Deno.test("sniffHttpHead() is incomplete on every proper prefix", () => {
  const bytes = latin1(
    "GET /hello HTTP/1.1\r\nHost: foo.example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
  );
  assertSplitEverywhere(sniffHttpHead, bytes, {
    status: "ok",
    value: {
      method: "GET",
      target: "/hello",
      version: "HTTP/1.1",
      host: "foo.example.com",
      headers: [
        ["Host", "foo.example.com"],
        ["User-Agent", "curl/7.88.1"],
        ["Accept", "*/*"],
      ],
      length: bytes.length,
    },
  });
});

Deno.test("sniffHttpHead() normalises the Host", async (t) => {
  const cases: [
    string,
    string | undefined,
    { host?: string; port?: number },
  ][] = [
    ["uppercase", "Foo.Example.COM", { host: "foo.example.com" }],
    ["with a port", "foo.example.com:8080", {
      host: "foo.example.com",
      port: 8080,
    }],
    ["with an empty port", "foo.example.com:", { host: "foo.example.com" }],
    ["an embedded IPv4", "0x7F000001--Foo.example.com", {
      host: "foo.example.com",
    }],
    [
      "an embedded IPv6 and a port",
      "0x20010db8000000000000000000000001--foo.example.com:80",
      { host: "foo.example.com", port: 80 },
    ],
    ["a 6-digit prefix is kept", "0x7f0001--foo.example.com", {
      host: "0x7f0001--foo.example.com",
    }],
    ["a lone prefix is kept", "0x7f000001--", { host: "0x7f000001--" }],
    ["an IPv6 literal", "[::1]:8080", { host: "[::1]", port: 8080 }],
    ["an IPv4 address", "127.0.0.1", { host: "127.0.0.1" }],
    ["empty", "", {}],
    ["absent", undefined, {}],
  ];
  for (const [name, host, expected] of cases) {
    await t.step(name, () => {
      const text = host === undefined
        ? "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"
        : `GET / HTTP/1.1\r\nhOST: ${host}\r\n\r\n`;
      const head = value(sniffHttpHead(latin1(text)));
      assert.equal(head.host, expected.host);
      assert.equal(head.port, expected.port);
      assert.equal("host" in head, expected.host !== undefined);
      assert.equal("port" in head, expected.port !== undefined);
    });
  }
});

Deno.test("sniffHttpHead() reads real requests from the captures", async () => {
  const rows = await readCapture("b-upstream-nozchunks-many-kites.jsonl");
  const requests: string[] = [];
  for (const row of rows) {
    if (row.dir !== "S>C") continue;
    // Chunk payloads that are HTTP requests (the FE forwards them unmodified).
    for (
      const match of row.data.matchAll(
        /\r\n\r\n((?:GET|POST) [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)/g,
      )
    ) {
      requests.push(match[1]!);
    }
  }
  assert.ok(requests.length >= 8, `only ${requests.length} requests`);
  for (const request of requests) {
    const head = value(sniffHttpHead(latin1(request)));
    assert.equal(head.length, request.length);
    assert.match(head.host ?? "", /^(foo|a\.wild|down)\.example\.com$|^x$/);
  }
});

Deno.test("sniffHttpHead() accepts every method of the spec, PING included", () => {
  const methods = [
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
  for (const method of methods) {
    const head = value(sniffHttpHead(latin1(`${method} /x HTTP/1.1\r\n\r\n`)));
    assert.equal(head.method, method);
    assert.equal(head.host, undefined);
  }
});

Deno.test("sniffHttpHead() does not recognise other bytes", () => {
  for (
    const text of [
      "FOO / HTTP/1.1\r\n\r\n",
      "get / HTTP/1.1\r\n\r\n",
      "GETS / HTTP/1.1\r\n\r\n",
      "\r\nGET / HTTP/1.1\r\n\r\n",
      "NICK bob\r\n",
      "\x16\x03\x01",
    ]
  ) {
    assert.deepEqual(sniffHttpHead(latin1(text)), UNRECOGNIZED, text);
  }
  for (const text of ["", "P", "PROP", "PROPPATCH", "GET"]) {
    assert.deepEqual(sniffHttpHead(latin1(text)), INCOMPLETE, text);
  }
});

Deno.test("sniffHttpHead() rejects malformed heads", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "HTTP/2.0",
      "GET / HTTP/2.0\r\n",
      /version "HTTP\/2.0" is not HTTP\/1.0 or HTTP\/1.1/,
    ],
    [
      "HTTP/0.9",
      "GET /\r\n",
      /request line "GET \/" is not "<method> <target> <version>"/,
    ],
    ["two spaces", "GET  / HTTP/1.1\r\n", /request line "GET {2}\/ HTTP\/1.1"/],
    [
      "a control character in the target",
      "GET /\x01 HTTP/1.1\r\n",
      /request target "\/\\u0001"/,
    ],
    [
      "two Host headers",
      "GET / HTTP/1.1\r\nHost: a.example.com\r\nHost: b.example.com\r\n\r\n",
      /more than one Host header/,
    ],
    [
      "a space before the colon",
      "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
      /header name "Host " is not a token/,
    ],
    [
      "a NUL in a value",
      "GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
      /value of header "X-A" contains a control character/,
    ],
    [
      "a bare CR in a value",
      "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
      /value of header "X-A" contains a control character/,
    ],
    [
      "a folded line",
      "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
      /folded header line/,
    ],
    [
      "a line without a colon",
      "GET / HTTP/1.1\r\nnonsense\r\n\r\n",
      /has no name and colon/,
    ],
    [
      "a Host with a space",
      "GET / HTTP/1.1\r\nHost: foo bar\r\n\r\n",
      /Host "foo bar" is not a valid host name/,
    ],
    [
      "a Host with a slash",
      "GET / HTTP/1.1\r\nHost: foo/bar\r\n\r\n",
      /Host "foo\/bar" is not a valid host name/,
    ],
    [
      "a Host with user info",
      "GET / HTTP/1.1\r\nHost: u@foo\r\n\r\n",
      /Host "u@foo" is not a valid host name/,
    ],
    [
      "a Host with two colons",
      "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n",
      /Host port "1:2" is not a port number/,
    ],
    [
      "a Host with port 0",
      "GET / HTTP/1.1\r\nHost: a:0\r\n\r\n",
      /Host port "0" is not a port number/,
    ],
    [
      "a Host with port 65536",
      "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n",
      /Host port "65536" is not a port number/,
    ],
    [
      "a Host with a bad IPv6 literal",
      "GET / HTTP/1.1\r\nHost: [x]:80\r\n\r\n",
      /Host "\[x\]:80" is not a valid host/,
    ],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => {
      assertProtocolError(() => sniffHttpHead(latin1(text)), message);
    });
  }
  await t.step(
    "the request line is checked before the head is complete",
    () => {
      assertProtocolError(
        () => sniffHttpHead(latin1("GET / HTTP/1.2\r\nHo")),
        /HTTP\/1.2/,
      );
    },
  );
  await t.step("offsets point at the bad line", () => {
    const text = "GET / HTTP/1.1\r\nA: 1\r\nHost: a\r\nHost: b\r\n\r\n";
    assert.throws(() => sniffHttpHead(latin1(text)), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.offset, text.indexOf("Host: b"));
      return true;
    });
  });
});

Deno.test("sniffHttpHead() stops at maxHeadBytes and maxHeaders", async (t) => {
  await t.step("a 17 KiB head", () => {
    const text = `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${
      "x".repeat(17 * 1024)
    }\r\n\r\n`;
    assertLimitError(() => sniffHttpHead(latin1(text)), /maxHeadBytes 16384/);
    assert.equal(
      value(sniffHttpHead(latin1(text), { maxHeadBytes: 20_000 })).host,
      "a",
    );
  });
  await t.step("a 20 KiB request line", () => {
    const text = `GET /${"x".repeat(20 * 1024)} HTTP/1.1\r\n\r\n`;
    assertLimitError(
      () => sniffHttpHead(latin1(text)),
      /^Cannot sniff HTTP request head: request line exceeds maxHeadBytes 16384$/,
    );
  });
  await t.step("101 headers", () => {
    const headers = Array.from({ length: 101 }, (_, i) => `X-H${i}: ${i}\r\n`)
      .join("");
    const text = `GET / HTTP/1.1\r\nHost: a\r\n${headers}\r\n`;
    assertLimitError(
      () => sniffHttpHead(latin1(text)),
      /more than 100 header lines/,
    );
    // Caught before the head is complete.
    assertLimitError(
      () => sniffHttpHead(latin1(text.slice(0, text.length - 4))),
      /more than 100 header lines/,
    );
  });
  await t.step("100 headers", () => {
    const headers = Array.from({ length: 99 }, (_, i) => `X-H${i}: ${i}\r\n`)
      .join("");
    const text = `GET / HTTP/1.1\r\nHost: a\r\n${headers}\r\n`;
    assert.equal(value(sniffHttpHead(latin1(text))).headers.length, 100);
  });
  await t.step("a head trickled one byte at a time", () => {
    const stream = latin1(`GET / HTTP/1.1\r\nX-Slow: ${"s".repeat(20_000)}`);
    const n = trickleUntilLimit(sniffHttpHead, stream, { maxHeadBytes: 1000 });
    assert.equal(n, 1000);
  });
  await t.step("a request line trickled one byte at a time", () => {
    const stream = latin1(`GET /${"s".repeat(20_000)}`);
    assert.equal(trickleUntilLimit(sniffHttpHead, stream), 16_384);
  });
  await t.step("headers trickled one byte at a time", () => {
    const stream = latin1(`GET / HTTP/1.1\r\n${"A: b\r\n".repeat(200)}`);
    const n = trickleUntilLimit(sniffHttpHead, stream, { maxHeaders: 10 });
    assert.ok(
      n <= "GET / HTTP/1.1\r\n".length + 12 * "A: b\r\n".length,
      `${n}`,
    );
  });
  await t.step("bad limits are a TypeError", () => {
    assert.throws(
      () => sniffHttpHead(latin1("GET"), { maxHeadBytes: 0 }),
      TypeError,
    );
    assert.throws(
      () => sniffHttpHead(latin1("GET"), { maxHeaders: 1.5 }),
      TypeError,
    );
  });
});
