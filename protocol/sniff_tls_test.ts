// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import {
  assertLimitError,
  assertProtocolError,
  assertSplitEverywhere,
  CAPTURED_HELLO,
  CAPTURED_MESSAGE,
  concat,
  INCOMPLETE,
  latin1,
  readCapture,
  toRecords,
  trickleUntilLimit,
  u16,
  UNRECOGNIZED,
  value,
} from "../tests/_sniff.ts";
import { sniffConnection } from "./sniff.ts";
import { sniffTlsHello } from "./sniff_tls.ts";

// ---------------------------------------------------------------------------
// Vectors

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
