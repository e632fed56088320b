// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import fc from "fast-check";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";
import {
  assertProtocolError,
  assertSplitEverywhere,
  CAPTURED_HELLO,
  CAPTURED_MESSAGE,
  concat,
  INCOMPLETE,
  latin1,
  minecraftHandshake,
  readCapture,
  toRecords,
  trickleUntilLimit,
  UNRECOGNIZED,
  value,
  XMPP_HEADER,
} from "../tests/_sniff.ts";
import {
  isFastPing,
  sniffConnection,
  type Sniffed,
  type SniffResult,
} from "./sniff.ts";

// ---------------------------------------------------------------------------
// Fast ping, tunnel and CONNECT

Deno.test("isFastPing() finds the marker in the first 64 bytes only", () => {
  assert.ok(
    isFastPing(latin1("HEAD /ping HTTP/1.1\r\nHost: ping.pagekite\r\n\r\n")),
  );
  assert.ok(isFastPing(latin1("GET /ping HTTP/1.1\r\nHost: ping.pagekite")));
  assert.ok(!isFastPing(latin1("GET /ping HTTP/1.1\r\nHost: ping.pagekit")));
  assert.ok(
    !isFastPing(latin1("GET /ping HTTP/1.1\r\nhost: ping.pagekite\r\n\r\n")),
  );
  const far = `GET /${"x".repeat(40)} HTTP/1.1\r\nHost: ping.pagekite\r\n\r\n`;
  assert.ok(!isFastPing(latin1(far)));
  const edge = `GET /${"x".repeat(29)} HTTP/1.1\r\nHost: ping.pagekite`;
  assert.equal(edge.length, 64);
  assert.ok(isFastPing(latin1(edge)));
  assert.ok(isFastPing(latin1(`${edge}\r\n\r\n`)));
  assert.ok(!isFastPing(latin1(`x${edge}`)));
});

Deno.test("sniffConnection() answers the fast pings of the captures", async () => {
  const pings = new Set<string>();
  for (
    const name of ["a-upstream-default.jsonl", "f-libpagekite-pagekitec.jsonl"]
  ) {
    for (const row of await readCapture(name)) {
      if (row.dir === "C>S" && row.data.includes("Host: ping.pagekite")) {
        pings.add(row.data);
      }
    }
  }
  assert.deepEqual([...pings].sort(), [
    "GET /ping HTTP/1.1\r\nHost: ping.pagekite\r\n\r\n",
    "HEAD /ping HTTP/1.1\r\nHost: ping.pagekite\r\n\r\n",
  ]);
  for (const ping of pings) {
    const bytes = latin1(ping);
    const markerEnd = ping.indexOf("pagekite\r\n") + "pagekite".length;
    for (let n = 0; n <= bytes.length; n++) {
      assert.deepEqual(
        sniffConnection(bytes.subarray(0, n)),
        n < markerEnd ? INCOMPLETE : { status: "ok", value: { kind: "ping" } },
        `${n}`,
      );
    }
  }
});

Deno.test("sniffConnection() answers a tunnel request at its request line", async () => {
  const line = "CONNECT PageKite:1 HTTP/1.0\r\n";
  assertSplitEverywhere(sniffConnection, latin1(line), {
    status: "ok",
    value: { kind: "tunnel", target: "PageKite:1", version: "HTTP/1.0" },
  });
  assert.deepEqual(
    value(sniffConnection(latin1("CONNECT pagekite:magic HTTP/1.1\n"))),
    {
      kind: "tunnel",
      target: "pagekite:magic",
      version: "HTTP/1.1",
    },
  );
  // The tunnel requests of pagekite.py and libpagekite in the captures.
  const requests = new Set<string>();
  for (
    const name of ["a-upstream-default.jsonl", "f-libpagekite-pagekitec.jsonl"]
  ) {
    for (const row of await readCapture(name)) {
      if (row.dir === "C>S" && row.data.startsWith("CONNECT PageKite:")) {
        requests.add(row.data);
      }
    }
  }
  assert.ok(requests.size >= 2);
  for (const request of requests) {
    const sniffed = value(sniffConnection(latin1(request)));
    assert.equal(sniffed.kind, "tunnel");
  }
  assertProtocolError(
    () => sniffConnection(latin1("CONNECT PageKite:1 HTTP/1.2\r\n")),
    /version "HTTP\/1.2"/,
  );
});

Deno.test("sniffConnection() parses CONNECT host:port", () => {
  const text =
    "CONNECT SSH.example.com:2222 HTTP/1.1\r\nHost: ssh.example.com:2222\r\n\r\n";
  const bytes = concat(latin1(text), latin1("SSH-2.0-OpenSSH_9.2\r\n"));
  for (let n = 0; n < text.length; n++) {
    assert.deepEqual(sniffConnection(bytes.subarray(0, n)), INCOMPLETE, `${n}`);
  }
  const sniffed = value(sniffConnection(bytes));
  assert.ok(sniffed.kind === "connect");
  assert.equal(sniffed.host, "ssh.example.com");
  assert.equal(sniffed.port, 2222);
  assert.equal(sniffed.head.length, text.length);
  assert.equal(sniffed.head.method, "CONNECT");

  const v6 = value(
    sniffConnection(latin1("CONNECT [::1]:22 HTTP/1.0\r\n\r\n")),
  );
  assert.ok(v6.kind === "connect" && v6.host === "[::1]" && v6.port === 22);

  assertProtocolError(
    () => sniffConnection(latin1("CONNECT foo.example.com HTTP/1.1\r\n\r\n")),
    /CONNECT target "foo.example.com" has no port/,
  );
  assertProtocolError(
    () =>
      sniffConnection(latin1("CONNECT foo.example.com:http HTTP/1.1\r\n\r\n")),
    /CONNECT port "http" is not a port number/,
  );
  assertProtocolError(
    () => sniffConnection(latin1("CONNECT a/b:80 HTTP/1.1\r\n\r\n")),
    /CONNECT host "a\/b" is not a valid host name/,
  );
});

Deno.test("sniffConnection() gives PING requests to the caller as HTTP", () => {
  const sniffed = value(
    sniffConnection(latin1("PING /whatever HTTP/1.1\r\n\r\n")),
  );
  assert.ok(sniffed.kind === "http");
  assert.equal(sniffed.head.method, "PING");
  assert.equal(sniffed.head.target, "/whatever");
});

// ---------------------------------------------------------------------------
// The dispatcher

Deno.test("sniffConnection() classifies each kind of connection", () => {
  const cases: [Uint8Array, Sniffed["kind"]][] = [
    [latin1("HEAD /ping HTTP/1.1\r\nHost: ping.pagekite\r\n\r\n"), "ping"],
    [latin1("CONNECT PageKite:1 HTTP/1.0\r\nX-PageKite: x\r\n"), "tunnel"],
    [latin1("CONNECT a.example.com:80 HTTP/1.1\r\n\r\n"), "connect"],
    [latin1("GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n"), "http"],
    [CAPTURED_HELLO, "tls"],
    [latin1(XMPP_HEADER), "xmpp"],
    [latin1("NICK a@b.example\r\nUSER a 0 * :A\r\n"), "irc"],
    [minecraftHandshake("mc.example.com"), "minecraft"],
  ];
  for (const [bytes, kind] of cases) {
    assert.equal(value(sniffConnection(bytes)).kind, kind);
  }
  assert.deepEqual(sniffConnection(new Uint8Array()), INCOMPLETE);
  for (
    const text of ["hello?\n", "SSH-2.0-OpenSSH_9.2\r\n", "\x00\x00\x00\x00"]
  ) {
    assert.deepEqual(sniffConnection(latin1(text)), UNRECOGNIZED, text);
  }
});

Deno.test("sniffConnection() tells a 22-byte Minecraft handshake from TLS", () => {
  // Packet length 0x16 with a 2-byte protocol version and a 15-byte address.
  const packet = minecraftHandshake("mc.example.net.", { version: 767 });
  assert.equal(packet[0], 0x16);
  assert.equal(packet[1], 0x00);
  const sniffed = value(sniffConnection(packet));
  assert.ok(sniffed.kind === "minecraft");
  assert.equal(sniffed.handshake.host, "mc.example.net");
});

Deno.test("sniffConnection() stops a head trickled one byte at a time", () => {
  const stream = latin1(`GET / HTTP/1.1\r\nX-Slow: ${"s".repeat(20_000)}`);
  assert.equal(trickleUntilLimit(sniffConnection, stream), 16_384);
  const tls = toRecords(CAPTURED_MESSAGE, [1]);
  const n = trickleUntilLimit(sniffConnection, tls, { maxHelloBytes: 1000 });
  assert.ok(n <= 1000, `${n}`);
});

Deno.test("sniffConnection() returns a result or throws a protocol error for any bytes", () => {
  function check(bytes: Uint8Array): void {
    try {
      const result = sniffConnection(bytes, {
        maxHeadBytes: 512,
        maxHelloBytes: 512,
      });
      assert.ok(["incomplete", "unrecognized", "ok"].includes(result.status));
    } catch (error) {
      if (
        error instanceof ProtocolError || error instanceof ProtocolLimitError
      ) {
        assert.match(error.message, /^Cannot [a-z]+ [^:]+: /);
        return;
      }
      throw error;
    }
  }
  const starts = [
    "",
    "GET ",
    "CONNECT ",
    "GET / HTTP/1.1\r\nHost: ",
    "<?xml ",
    "<stream:stream ",
    "NICK ",
    "USER a@",
    "\x16\x03\x01",
    "\x80",
    "\x10\x00",
  ].map(latin1);
  fc.assert(
    fc.property(
      fc.constantFrom(...starts),
      fc.uint8Array({ maxLength: 600 }),
      (start, rest) => check(concat(start, rest)),
    ),
    { seed: 42, numRuns: 1000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), check),
    { seed: 42, numRuns: 1000 },
  );
  // Real vectors with random bytes changed.
  const vectors = [
    CAPTURED_HELLO,
    toRecords(CAPTURED_MESSAGE, [7]),
    latin1(XMPP_HEADER),
    minecraftHandshake("mc.example.com"),
    latin1("GET /x HTTP/1.1\r\nHost: 0x7f000001--a.example.com:80\r\n\r\n"),
    latin1("NICK a@b.example\r\nUSER a 0 * :A\r\n"),
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...vectors),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.nat(),
      (vector, changes, cut) => {
        const bytes = vector.slice(0, vector.length - (cut % 8));
        for (const [at, b] of changes) bytes[at % bytes.length] = b;
        check(bytes);
      },
    ),
    { seed: 42, numRuns: 1000 },
  );
});

Deno.test("sniffConnection() answers the same for every prefix once it has answered", () => {
  // Once a prefix gets an answer other than "incomplete", longer prefixes of
  // a well-formed stream get the same answer (fast pings aside).
  const streams = [
    concat(CAPTURED_HELLO, [0x14, 3, 3, 0, 1, 1]),
    latin1(`${XMPP_HEADER}<auth/>`),
    latin1("GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\nbody"),
    latin1("CONNECT PageKite:1 HTTP/1.0\r\nX-PageKite: x\r\n\r\n"),
    latin1("NICK a@b.example\r\nUSER a 0 * :A\r\nJOIN #a\r\n"),
    concat(minecraftHandshake("mc.example.com"), [1, 0]),
  ];
  for (const stream of streams) {
    let first: SniffResult<Sniffed> | undefined;
    for (let n = 0; n <= stream.length; n++) {
      const result = sniffConnection(stream.subarray(0, n));
      if (first === undefined) {
        if (result.status !== "incomplete") first = result;
      } else {
        assert.deepEqual(result, first, `${n}`);
      }
    }
    assert.equal(first?.status, "ok");
  }
});
