// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeLatin1 } from "./_latin1.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";
import {
  isFastPing,
  sniffConnection,
  type Sniffed,
  sniffHttpHead,
  sniffIrc,
  sniffMinecraft,
  type SniffOptions,
  type SniffResult,
  sniffTlsHello,
  sniffXmpp,
} from "./sniff.ts";

// ---------------------------------------------------------------------------
// Helpers

const INCOMPLETE = { status: "incomplete" } as const;
const UNRECOGNIZED = { status: "unrecognized" } as const;

type Sniffer<T> = (bytes: Uint8Array, options?: SniffOptions) => SniffResult<T>;

function latin1(text: string): Uint8Array {
  return encodeLatin1(text);
}

function concat(...parts: (Uint8Array | readonly number[])[]): Uint8Array {
  const arrays = parts.map((part) => Uint8Array.from(part));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/** Asserts `sniff` is incomplete on every proper prefix, then `expected`. */
function assertSplitEverywhere<T>(
  sniff: Sniffer<T>,
  bytes: Uint8Array,
  expected: SniffResult<T>,
  options: SniffOptions = {},
): void {
  for (let n = 0; n < bytes.length; n++) {
    assert.deepEqual(
      sniff(bytes.subarray(0, n), options),
      INCOMPLETE,
      `prefix of ${n} bytes`,
    );
  }
  assert.deepEqual(sniff(bytes, options), expected);
}

function value<T>(result: SniffResult<T>): T {
  assert.equal(result.status, "ok", JSON.stringify(result));
  return (result as { value: T }).value;
}

function assertProtocolError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `not a ProtocolError: ${error}`);
    assert.match(error.message, message);
    assert.match(error.message, /^Cannot [a-z]+ [^:]+: .*[^.]$/s);
    return true;
  });
}

function assertLimitError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(
      error instanceof ProtocolLimitError,
      `not a ProtocolLimitError: ${error}`,
    );
    assert.match(error.message, message);
    return true;
  });
}

/**
 * Feeds `stream` to `sniff` one byte more at a time and returns how many
 * bytes it had when it threw a ProtocolLimitError.
 */
function trickleUntilLimit<T>(
  sniff: Sniffer<T>,
  stream: Uint8Array,
  options: SniffOptions = {},
): number {
  for (let n = 1; n <= stream.length; n++) {
    let result: SniffResult<T>;
    try {
      result = sniff(stream.subarray(0, n), options);
    } catch (error) {
      assert.ok(error instanceof ProtocolLimitError, `${error}`);
      return n;
    }
    assert.deepEqual(result, INCOMPLETE, `prefix of ${n} bytes`);
  }
  throw new Error("the stream ran out before a ProtocolLimitError");
}

async function readCapture(name: string): Promise<
  { conn: number; dir: string; data: string }[]
> {
  const text = await Deno.readTextFile(
    new URL(`./testdata/captures/${name}`, import.meta.url),
  );
  return text.split("\n").filter((line) => line !== "").map((line) =>
    JSON.parse(line)
  );
}

// ---------------------------------------------------------------------------
// TLS vectors

/**
 * The ClientHello `openssl s_client -servername secure.example.com` sent in
 * transcript B (FE→BE chunk for SID 13, `Proto: https`).
 */
const CAPTURED_HELLO = Uint8Array.fromHex(
  "160301013f0100013b0303f516750fe1ae11608e872da6f3296ea4132d9da316" +
    "42440d1c621ecdb17dfbee20b72e3d3b8007c3814d9e6a75ecec9fbf9a3bdaae" +
    "1f3b5cd54f00877daa5424aa003e130213031301c02cc030009fcca9cca8ccaa" +
    "c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d" +
    "009c003d003c0035002f00ff010000b40000001700150000127365637572652e" +
    "6578616d706c652e636f6d000b000403000102000a00160014001d0017001e00" +
    "19001801000101010201030104002300000016000000170000000d002a002804" +
    "0305030603080708080809080a080b0804080508060401050106010303030103" +
    "02040205020602002b0009080304030303020301002d00020101003300260024" +
    "001d00203493b57e2a34b7271dd5ed940efd0be6bb743be475751641f6208784" +
    "dd558c40",
);
/** The handshake message inside CAPTURED_HELLO (one record). */
const CAPTURED_MESSAGE = CAPTURED_HELLO.subarray(5);

function u16(n: number): number[] {
  return [n >> 8, n & 0xff];
}

function u24(n: number): number[] {
  return [n >> 16, (n >> 8) & 0xff, n & 0xff];
}

function serverNameExtension(...names: string[]): number[] {
  const list = names.flatMap((
    name,
  ) => [0, ...u16(name.length), ...latin1(name)]);
  return [0, 0, ...u16(list.length + 2), ...u16(list.length), ...list];
}

/** A ClientHello handshake message; `extensions` undefined = none at all. */
function helloMessage(extensions: number[] | undefined): Uint8Array {
  const body = [
    3,
    3,
    ...new Array(32).fill(0xab),
    32,
    ...new Array(32).fill(0xcd),
    ...u16(4),
    0x13,
    0x01,
    0x13,
    0x02,
    1,
    0,
    ...(extensions === undefined
      ? []
      : [...u16(extensions.length), ...extensions]),
  ];
  return Uint8Array.from([1, ...u24(body.length), ...body]);
}

/** Wraps a handshake message in TLS records of the given fragment sizes. */
function toRecords(message: Uint8Array, sizes: number[]): Uint8Array {
  const parts: number[] = [];
  let at = 0;
  for (let i = 0; at < message.length; i++) {
    const size = Math.min(
      sizes[Math.min(i, sizes.length - 1)]!,
      message.length - at,
    );
    parts.push(0x16, 3, 1, ...u16(size), ...message.subarray(at, at + size));
    at += size;
  }
  return Uint8Array.from(parts);
}

const SNI_EXAMPLE = helloMessage([
  0x00,
  0x17,
  0x00,
  0x00, // extended master secret
  ...serverNameExtension("Secure.EXAMPLE.com"),
  0x00,
  0x2b,
  0x00,
  0x03,
  0x02,
  0x03,
  0x04, // supported versions
]);

// ---------------------------------------------------------------------------
// TLS

Deno.test("sniffTlsHello() finds the SNI of a real ClientHello", () => {
  assert.deepEqual(sniffTlsHello(CAPTURED_HELLO), {
    status: "ok",
    value: { format: "tls", sni: "secure.example.com", length: 324 },
  });
});

Deno.test("sniffTlsHello() vector is the ClientHello of the captures", async () => {
  const rows = await readCapture("b-upstream-nozchunks-many-kites.jsonl");
  const row = rows.find((r) =>
    r.dir === "S>C" && r.data.includes("\r\nProto: https\r\n")
  );
  assert.ok(row !== undefined);
  assert.match(row.data, /^[0-9a-f]+\r\nSID: 13\r\n/);
  const size = parseInt(row.data.slice(0, row.data.indexOf("\r\n")), 16);
  const chunk = row.data.slice(row.data.indexOf("\r\n") + 2);
  assert.equal(chunk.length, size);
  const payload = latin1(chunk.slice(chunk.indexOf("\r\n\r\n") + 4));
  assert.deepEqual(payload, CAPTURED_HELLO);
});

Deno.test("sniffTlsHello() is incomplete on every proper prefix of a real ClientHello", () => {
  assertSplitEverywhere(sniffTlsHello, CAPTURED_HELLO, {
    status: "ok",
    value: { format: "tls", sni: "secure.example.com", length: 324 },
  });
});

Deno.test("sniffTlsHello() finds the SNI split across two records at every byte", () => {
  for (let split = 1; split < CAPTURED_MESSAGE.length; split++) {
    const bytes = toRecords(CAPTURED_MESSAGE, [split, CAPTURED_MESSAGE.length]);
    assert.equal(bytes.length, CAPTURED_HELLO.length + 5);
    assertSplitEverywhere(sniffTlsHello, bytes, {
      status: "ok",
      value: { format: "tls", sni: "secure.example.com", length: bytes.length },
    });
  }
});

Deno.test("sniffTlsHello() reassembles a ClientHello sent in one-byte records", () => {
  const bytes = toRecords(CAPTURED_MESSAGE, [1]);
  assert.equal(bytes.length, CAPTURED_MESSAGE.length * 6);
  assertSplitEverywhere(sniffTlsHello, bytes, {
    status: "ok",
    value: { format: "tls", sni: "secure.example.com", length: bytes.length },
  });
});

Deno.test("sniffTlsHello() answers when the record holding the last byte is complete", () => {
  // The ClientHello ends inside a record that carries one more byte.
  const message = concat(CAPTURED_MESSAGE, [0x00]);
  const bytes = toRecords(message, [100, 400]);
  assertSplitEverywhere(sniffTlsHello, bytes, {
    status: "ok",
    value: { format: "tls", sni: "secure.example.com", length: bytes.length },
  });
  // Bytes after the records are not part of the hello.
  const more = concat(bytes, [0x17, 3, 3, 0, 1, 0]);
  assert.equal(value(sniffTlsHello(more)).length, bytes.length);
});

Deno.test("sniffTlsHello() lower-cases the SNI and uses the first host name", () => {
  const bytes = toRecords(SNI_EXAMPLE, [1000]);
  assert.deepEqual(value(sniffTlsHello(bytes)), {
    format: "tls",
    sni: "secure.example.com",
    length: bytes.length,
  });
  const two = toRecords(
    helloMessage(
      serverNameExtension("First.example.com", "second.example.com"),
    ),
    [1000],
  );
  assert.equal(value(sniffTlsHello(two)).sni, "first.example.com");
});

Deno.test("sniffTlsHello() reports no SNI when there is none", async (t) => {
  await t.step("no extensions at all", () => {
    const bytes = toRecords(helloMessage(undefined), [1000]);
    assert.deepEqual(value(sniffTlsHello(bytes)), {
      format: "tls",
      length: bytes.length,
    });
  });
  await t.step("extensions without server_name", () => {
    const bytes = toRecords(helloMessage([0x00, 0x17, 0x00, 0x00]), [1000]);
    assert.deepEqual(value(sniffTlsHello(bytes)), {
      format: "tls",
      length: bytes.length,
    });
  });
  await t.step("an empty server_name extension", () => {
    const bytes = toRecords(helloMessage([0x00, 0x00, 0x00, 0x00]), [1000]);
    assert.equal(value(sniffTlsHello(bytes)).sni, undefined);
  });
});

Deno.test("sniffTlsHello() reads an SSLv2 hello without SNI", () => {
  // SSLv2-format CLIENT-HELLO offering TLS 1.0: 3 cipher specs, 16-byte challenge.
  const body = [
    1,
    3,
    1,
    ...u16(9),
    ...u16(0),
    ...u16(16),
    0x00,
    0x00,
    0x2f,
    0x00,
    0x00,
    0x35,
    0x00,
    0x00,
    0x0a,
    ...new Array(16).fill(0x42),
  ];
  const bytes = Uint8Array.from([0x80, body.length, ...body]);
  assertSplitEverywhere(sniffTlsHello, bytes, {
    status: "ok",
    value: { format: "sslv2", length: bytes.length },
  });
});

Deno.test("sniffTlsHello() does not recognise other bytes", () => {
  assert.deepEqual(sniffTlsHello(latin1("GET / HTTP/1.1\r\n")), UNRECOGNIZED);
  assert.deepEqual(sniffTlsHello(Uint8Array.of(0x16)), INCOMPLETE);
  assert.deepEqual(sniffTlsHello(Uint8Array.of(0x16, 0x00)), UNRECOGNIZED);
  assert.deepEqual(sniffTlsHello(Uint8Array.of(0x80, 0x01)), INCOMPLETE);
  assert.deepEqual(
    sniffTlsHello(Uint8Array.of(0x80, 0x01, 0x00)),
    UNRECOGNIZED,
  );
  assert.deepEqual(
    sniffTlsHello(Uint8Array.of(0x80, 0x30, 0x01, 0x07)),
    UNRECOGNIZED,
  );
});

Deno.test("sniffTlsHello() rejects malformed ClientHellos", async (t) => {
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "an extension longer than what is left",
      toRecords(helloMessage([0x00, 0x0a, ...u16(900), 0, 0]), [1000]),
      /^Cannot sniff TLS ClientHello: extension length 900 exceeds the 2 bytes left$/,
    ],
    [
      "extensions longer than the message",
      (() => {
        const message = helloMessage([0x00, 0x17, 0x00, 0x00]);
        message.set(u16(200), message.length - 6);
        return toRecords(message, [1000]);
      })(),
      /extensions length 200 exceeds the 4 bytes left/,
    ],
    [
      "bytes after the extensions",
      (() => {
        const message = helloMessage([0x00, 0x17, 0x00, 0x00, 0xee]);
        message.set(u16(4), message.length - 7);
        return toRecords(message, [1000]);
      })(),
      /1 bytes follow the 4 bytes of extensions/,
    ],
    [
      "a record longer than 2^14",
      Uint8Array.of(0x16, 3, 1, ...u16(16_385)),
      /record length 16385 exceeds 16384/,
    ],
    [
      "an empty record",
      Uint8Array.of(0x16, 3, 1, 0, 0),
      /record at byte 0 is empty/,
    ],
    [
      "a handshake message that is not a ClientHello",
      Uint8Array.of(0x16, 3, 3, 0, 4, 2, 0, 0, 0),
      /handshake message type 2 is not ClientHello \(1\)/,
    ],
    [
      "an application data record before the ClientHello is complete",
      concat(
        toRecords(CAPTURED_MESSAGE.subarray(0, 50), [50]),
        [0x17, 3, 3, 0, 10],
      ),
      /record type 23 at byte 55 is not a handshake record/,
    ],
    [
      "a second record with version 4.x",
      concat(toRecords(CAPTURED_MESSAGE.subarray(0, 50), [50]), [0x16, 4]),
      /record version 4.x at byte 55 is not 3.x/,
    ],
    [
      "a session id of 33 bytes",
      (() => {
        const message = helloMessage(undefined);
        message[4 + 34] = 33;
        return toRecords(message, [1000]);
      })(),
      /session id length 33 exceeds 32/,
    ],
    [
      "a message cut short",
      Uint8Array.of(0x16, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0),
      /^Cannot sniff TLS ClientHello: random needs 32 bytes but 2 are left$/,
    ],
    [
      "a server name that is not a host name",
      toRecords(helloMessage(serverNameExtension("bad name\r\n")), [1000]),
      /server name "bad name\\r\\n" is not a valid host name/,
    ],
    [
      "a server name list of the wrong length",
      toRecords(helloMessage([0, 0, 0, 5, 0, 9, 0, 0, 0]), [1000]),
      /server name list length 9 does not match the 3 bytes of the extension/,
    ],
    [
      "an SSLv2 hello whose fields do not add up",
      Uint8Array.of(
        0x80,
        12,
        1,
        3,
        1,
        ...u16(3),
        ...u16(0),
        ...u16(16),
        0,
        0,
        0,
      ),
      /SSLv2 hello fields take 19 bytes, not the 3 the record holds/,
    ],
  ];
  for (const [name, bytes, message] of cases) {
    await t.step(name, () => {
      assertProtocolError(() => sniffTlsHello(bytes), message);
      assertProtocolError(() => sniffConnection(bytes), message);
    });
  }
});

Deno.test("sniffTlsHello() stops at maxHelloBytes", async (t) => {
  await t.step("a record header declaring too much", () => {
    assertLimitError(
      () =>
        sniffTlsHello(CAPTURED_HELLO.subarray(0, 5), { maxHelloBytes: 120 }),
      /^Cannot sniff TLS ClientHello: it needs at least 324 bytes of records, more than maxHelloBytes 120$/,
    );
  });
  await t.step("a handshake header declaring too much", () => {
    const bytes = Uint8Array.of(0x16, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff);
    assertLimitError(() => sniffTlsHello(bytes), /16777224 bytes of records/);
    assert.deepEqual(sniffTlsHello(bytes.subarray(0, 8)), INCOMPLETE);
  });
  await t.step("one-byte records trickled one byte at a time", () => {
    const stream = toRecords(CAPTURED_MESSAGE, [1]);
    const n = trickleUntilLimit(sniffTlsHello, stream, { maxHelloBytes: 600 });
    assert.ok(n <= 600, `threw only at ${n} bytes`);
  });
  await t.step("the default admits one full-size record", () => {
    const body = new Uint8Array(16_384 - 85);
    const message = helloMessage([0x00, 0x15, ...u16(body.length), ...body]);
    assert.equal(message.length, 16_384);
    const bytes = toRecords(message, [16_384]);
    assert.deepEqual(value(sniffTlsHello(bytes)), {
      format: "tls",
      length: 16_389,
    });
    assertLimitError(
      () => sniffTlsHello(toRecords(message, [16_000])),
      /maxHelloBytes 16389/,
    );
  });
});

// ---------------------------------------------------------------------------
// HTTP

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
// XMPP

const XMPP_HEADER =
  "<?xml version='1.0'?><stream:stream to='Chat.Example.com' " +
  "version='1.0' xml:lang='en' xmlns='jabber:client' " +
  "xmlns:stream='http://etherx.jabber.org/streams'>";

Deno.test("sniffXmpp() finds the to= domain", () => {
  assertSplitEverywhere(sniffXmpp, latin1(XMPP_HEADER), {
    status: "ok",
    value: { domain: "chat.example.com", length: XMPP_HEADER.length },
  });
  const double =
    '<?xml version="1.0" encoding="UTF-8"?>\n  <stream:stream xmlns="jabber:client" ' +
    'to = "example.org" version="1.0">';
  assert.deepEqual(value(sniffXmpp(latin1(`${double}<auth/>`))), {
    domain: "example.org",
    length: double.length,
  });
  const bare =
    "<stream:stream to='example.net' xmlns:stream='http://etherx.jabber.org/streams'>";
  assert.deepEqual(value(sniffXmpp(latin1(bare))), {
    domain: "example.net",
    length: bare.length,
  });
  const quoted =
    "<?xml version='1.0'?><stream:stream from='a>b' to='example.net'>";
  assert.equal(value(sniffXmpp(latin1(quoted))).domain, "example.net");
  const noTo = "<?xml version='1.0'?><stream:stream version='1.0'>";
  assert.deepEqual(value(sniffXmpp(latin1(noTo))), { length: noTo.length });
});

Deno.test("sniffXmpp() does not recognise other bytes", () => {
  assert.deepEqual(sniffXmpp(latin1("GET / HTTP/1.1\r\n")), UNRECOGNIZED);
  assert.deepEqual(sniffXmpp(latin1("<html>")), UNRECOGNIZED);
  assert.deepEqual(sniffXmpp(latin1("<")), INCOMPLETE);
  assert.deepEqual(sniffXmpp(latin1("<?xm")), INCOMPLETE);
});

Deno.test("sniffXmpp() rejects malformed stream headers", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "another root element",
      "<?xml version='1.0'?><html lang='en'>",
      /root element "html" is not a stream/,
    ],
    [
      "text after the declaration",
      "<?xml version='1.0'?>hello<stream:stream>",
      /byte 21 after the XML declaration is not "<"/,
    ],
    [
      "an unquoted value",
      "<?xml version='1.0'?><stream:stream to=example.com>",
      /value of attribute "to" is not quoted/,
    ],
    [
      "an attribute without value",
      "<?xml version='1.0'?><stream:stream to>",
      /attribute "to" has no "=" and value/,
    ],
    [
      "a duplicate to",
      "<?xml version='1.0'?><stream:stream to='a' to='b'>",
      /attribute "to" appears twice/,
    ],
    [
      "a bad domain",
      "<?xml version='1.0'?><stream:stream to='a b'>",
      /to "a b" is not a valid host name/,
    ],
    [
      "a < inside the tag",
      "<?xml version='1.0'?><stream:stream <x>",
      /"<" at byte 36 inside the start tag/,
    ],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => {
      assertProtocolError(() => sniffXmpp(latin1(text)), message);
      assertProtocolError(() => sniffConnection(latin1(text)), message);
    });
  }
});

Deno.test("sniffXmpp() stops at maxXmppBytes", () => {
  assertLimitError(
    () => sniffXmpp(latin1(XMPP_HEADER), { maxXmppBytes: 100 }),
    /^Cannot sniff XMPP stream header: no complete stream header within maxXmppBytes 100$/,
  );
  const stream = latin1(
    `<?xml version='1.0'?><stream:stream ${" ".repeat(10_000)}`,
  );
  assert.equal(trickleUntilLimit(sniffXmpp, stream), 4096);
  assert.equal(trickleUntilLimit(sniffConnection, stream), 4096);
  const endless = latin1(`<?xml ${"v".repeat(10_000)}`);
  assert.equal(
    trickleUntilLimit(sniffXmpp, endless, { maxXmppBytes: 300 }),
    300,
  );
});

// ---------------------------------------------------------------------------
// IRC

Deno.test("sniffIrc() takes the domain out of NICK and USER", async (t) => {
  const cases: [string, string, string, string | undefined][] = [
    [
      "the domain in NICK",
      "NICK alice@IRC.Example.com\r\nUSER alice 0 * :Alice Liddell\r\n",
      "NICK alice\r\nUSER alice 0 * :Alice Liddell\r\n",
      "irc.example.com",
    ],
    [
      "the domain in USER",
      "USER alice@irc.example.com 0 * :Alice\nNICK alice\n",
      "USER alice 0 * :Alice\nNICK alice\n",
      "irc.example.com",
    ],
    [
      "the domain in both",
      "nick alice@irc.example.com\r\nuser alice@irc.example.com 8 * :A\r\n",
      "nick alice\r\nuser alice 8 * :A\r\n",
      "irc.example.com",
    ],
    [
      "CAP and PASS first, a trailing NICK parameter",
      "CAP LS 302\r\nPASS secret\r\nNICK :bob@irc.example.org\r\nUSER bob 0 * :Bob\r\n",
      "CAP LS 302\r\nPASS secret\r\nNICK :bob\r\nUSER bob 0 * :Bob\r\n",
      "irc.example.org",
    ],
    [
      "no domain",
      "NICK alice\r\nUSER alice 0 * :Alice\r\n",
      "NICK alice\r\nUSER alice 0 * :Alice\r\n",
      undefined,
    ],
  ];
  for (const [name, text, rewritten, domain] of cases) {
    await t.step(name, () => {
      const bytes = latin1(text);
      const expected = domain === undefined
        ? { rewritten: latin1(rewritten), length: text.length }
        : { domain, rewritten: latin1(rewritten), length: text.length };
      assertSplitEverywhere(sniffIrc, bytes, { status: "ok", value: expected });
      assert.deepEqual(sniffConnection(bytes), {
        status: "ok",
        value: { kind: "irc", registration: expected },
      });
    });
  }
  await t.step("bytes after USER are left alone", () => {
    const text = "NICK a@b.example\r\nUSER a 0 * :A\r\nJOIN #x@y\r\n";
    const registration = value(sniffIrc(latin1(text)));
    assert.equal(registration.length, text.indexOf("JOIN"));
    assert.deepEqual(
      registration.rewritten,
      latin1("NICK a\r\nUSER a 0 * :A\r\n"),
    );
  });
});

Deno.test("sniffIrc() does not recognise other bytes", () => {
  assert.deepEqual(sniffIrc(latin1("GET / HTTP/1.1\r\n")), UNRECOGNIZED);
  assert.deepEqual(sniffIrc(latin1("NICKNAME x\r\n")), UNRECOGNIZED);
  assert.deepEqual(sniffIrc(latin1("JOIN #x\r\n")), UNRECOGNIZED);
  assert.deepEqual(sniffIrc(latin1("NIC")), INCOMPLETE);
  assert.deepEqual(sniffIrc(latin1("cap")), INCOMPLETE);
});

Deno.test("sniffIrc() rejects malformed registrations", () => {
  assertProtocolError(
    () => sniffIrc(latin1("NICK \r\nUSER a 0 * :A\r\n")),
    /NICK line at byte 0 has no parameter/,
  );
  assertProtocolError(
    () => sniffIrc(latin1("NICK a@b/c\r\n")),
    /NICK domain "b\/c" is not a valid host name/,
  );
  assertProtocolError(
    () => sniffConnection(latin1("CAP LS\r\nUSER a@ 0 * :A\r\n")),
    /USER domain "" is not a valid host name/,
  );
});

Deno.test("sniffIrc() stops at maxIrcBytes", () => {
  const stream = latin1(`NICK a@b.example\r\n${"PING :x\r\n".repeat(1000)}`);
  assert.equal(trickleUntilLimit(sniffIrc, stream), 4096);
  assert.equal(trickleUntilLimit(sniffConnection, stream), 4096);
  assertLimitError(
    () => sniffIrc(latin1("NICK a\r\nUSER a 0 * :A\r\n"), { maxIrcBytes: 10 }),
    /^Cannot sniff IRC registration: no NICK and USER lines within maxIrcBytes 10$/,
  );
});

// ---------------------------------------------------------------------------
// Minecraft

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n % 128;
    n = Math.floor(n / 128);
    out.push(n > 0 ? b | 0x80 : b);
  } while (n > 0);
  return out;
}

function minecraftHandshake(
  address: Uint8Array | string,
  { version = 767, port = 25565, next = 1 } = {},
): Uint8Array {
  const name = typeof address === "string"
    ? new TextEncoder().encode(address)
    : address;
  const body = [
    0x00,
    ...varint(version),
    ...varint(name.length),
    ...name,
    ...u16(port),
    ...varint(next),
  ];
  return Uint8Array.from([...varint(body.length), ...body]);
}

Deno.test("sniffMinecraft() reads a handshake", () => {
  const packet = minecraftHandshake("MC.Example.com", { port: 18080 });
  assert.equal(packet[1], 0x00);
  const expected = {
    protocolVersion: 767,
    host: "mc.example.com",
    port: 18080,
    nextState: 1,
    length: packet.length,
  };
  assertSplitEverywhere(sniffMinecraft, packet, {
    status: "ok",
    value: expected,
  });
  // The status request that follows is not part of the handshake.
  const bytes = concat(packet, [0x01, 0x00]);
  assert.deepEqual(value(sniffMinecraft(bytes)), expected);
  assert.deepEqual(value(sniffConnection(bytes)), {
    kind: "minecraft",
    handshake: expected,
  });
});

Deno.test("sniffMinecraft() normalises the server address", () => {
  const forge = value(
    sniffMinecraft(minecraftHandshake("Play.Example.com\0FML3\0")),
  );
  assert.equal(forge.host, "play.example.com");
  const dot = value(
    sniffMinecraft(minecraftHandshake("play.example.com.", { next: 2 })),
  );
  assert.equal(dot.host, "play.example.com");
  assert.equal(dot.nextState, 2);
  const empty = value(sniffMinecraft(minecraftHandshake("")));
  assert.equal("host" in empty, false);
  const snapshot = value(
    sniffMinecraft(minecraftHandshake("a", { version: 0x40000000 + 200 })),
  );
  assert.equal(snapshot.protocolVersion, 0x40000000 + 200);
});

Deno.test("sniffMinecraft() reads a handshake longer than 127 bytes", () => {
  const name = `${"a".repeat(150)}.example.com`;
  const packet = minecraftHandshake(name);
  assert.ok(packet[0]! >= 0x80);
  assertSplitEverywhere(sniffMinecraft, packet, {
    status: "ok",
    value: {
      protocolVersion: 767,
      host: name,
      port: 25565,
      nextState: 1,
      length: packet.length,
    },
  });
  assert.equal(value(sniffConnection(packet)).kind, "minecraft");
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

Deno.test("sniffMinecraft() does not recognise other bytes", () => {
  assert.deepEqual(sniffMinecraft(latin1("GET / HTTP/1.1\r\n")), UNRECOGNIZED);
  assert.deepEqual(
    sniffMinecraft(Uint8Array.of(5, 0, 0, 0, 0, 0)),
    UNRECOGNIZED,
  );
  assert.deepEqual(
    sniffMinecraft(Uint8Array.of(0xff, 0xff, 0xff, 0x7f)),
    UNRECOGNIZED,
  );
  assert.deepEqual(sniffMinecraft(Uint8Array.of(20)), INCOMPLETE);
  assert.deepEqual(sniffMinecraft(Uint8Array.of(0x81)), INCOMPLETE);
});

Deno.test("sniffMinecraft() rejects malformed handshakes", async (t) => {
  const good = minecraftHandshake("mc.example.com");
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "next state 5",
      minecraftHandshake("a.example", { next: 5 }),
      /next state 5 is not 1, 2 or 3/,
    ],
    [
      "an address longer than the packet",
      Uint8Array.of(8, 0, 0x7f, 40, 0x61, 0x62, 0x63, 0, 1),
      /server address length 40 exceeds the 5 bytes left/,
    ],
    [
      "an address that is not UTF-8",
      minecraftHandshake(Uint8Array.of(0x61, 0xff, 0x62)),
      /server address is not UTF-8/,
    ],
    [
      "an address that is not a host name",
      minecraftHandshake("mc example com"),
      /server address "mc example com" is not a valid host name/,
    ],
    [
      "bytes after the next state",
      (() => {
        const bytes = concat(good, [0]);
        bytes[0] = bytes[0]! + 1;
        return bytes;
      })(),
      /1 bytes follow the next state/,
    ],
    [
      "a packet cut short",
      Uint8Array.of(6, 0, 0x7f, 0, 0x63, 0xdd, 0x80),
      /next state is cut short/,
    ],
  ];
  for (const [name, bytes, message] of cases) {
    await t.step(name, () => {
      assertProtocolError(() => sniffMinecraft(bytes), message);
      assertProtocolError(() => sniffConnection(bytes), message);
    });
  }
});

Deno.test("sniffMinecraft() stops at maxMinecraftBytes", () => {
  // A declared packet of 3 + 16383 bytes: stopped after three bytes.
  const huge = Uint8Array.of(0xff, 0x7f, 0x00, 0xff, 0x05);
  assertLimitError(
    () => sniffMinecraft(huge.subarray(0, 3)),
    /^Cannot sniff Minecraft handshake: packet of 16385 bytes exceeds maxMinecraftBytes 2048$/,
  );
  assertLimitError(() => sniffConnection(huge), /maxMinecraftBytes 2048/);
  const name = `${"a".repeat(240)}.example.com`;
  const packet = minecraftHandshake(name);
  assert.equal(value(sniffMinecraft(packet)).host, name);
  assertLimitError(
    () => sniffMinecraft(packet.subarray(0, 3), { maxMinecraftBytes: 200 }),
    /packet of 262 bytes exceeds maxMinecraftBytes 200/,
  );
  assert.equal(
    value(sniffMinecraft(packet, { maxMinecraftBytes: 262 })).length,
    262,
  );
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
