// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import fc from "fast-check";
import { ProtocolError } from "./errors.ts";
import {
  checkKiteSignature,
  formatKiteName,
  formatKiteRequest,
  type KiteName,
  type KiteRequest,
  kiteSignaturePayload,
  parseKiteName,
  parseKiteRequest,
  signKiteRequest,
} from "./kite.ts";

const BSALT = "893f4f1d98e17a28ae3d6fb3f2cd83765514";
const V3_LINE =
  `http:foo.example.com:${BSALT}::1a2b3c4dc2b387e8425d334d449d20c63771`;
const V4_TOKEN = "t1234567c02e2d482fb39e2aba144ed8a973";

/** A kite field: printable Latin-1 without white space or colons. */
const FIELD_CHARS = fc.constantFrom(
  ..."abcdefghijklmnopqrstuvwxyz0123456789.-_*;,~!/=+éß",
);
const SALT_CHARS = fc.constantFrom(
  ..."abcdefABCDEF0123456789.-_*;,~!/=+éß",
);

/** Random kite names, already in the lower case that parsing produces. */
const kiteNameArbitrary: fc.Arbitrary<KiteName> = fc.record({
  proto: fc.stringMatching(/^[a-z][a-z0-9]{0,9}$/),
  port: fc.integer({ min: 1, max: 65535 }),
  domain: fc.string({ unit: FIELD_CHARS, minLength: 1, maxLength: 40 }),
  salt: fc.string({ unit: SALT_CHARS, maxLength: 40 }),
}, { requiredKeys: ["proto", "domain", "salt"] }).map((kite) => ({ ...kite }));

/** Random kite requests. */
const kiteRequestArbitrary: fc.Arbitrary<KiteRequest> = fc.record({
  name: kiteNameArbitrary,
  token: fc.oneof(
    fc.constant(""),
    fc.stringMatching(/^t[0-9a-f]{35}$/),
    fc.string({ unit: SALT_CHARS, maxLength: 40 }),
  ),
  signature: fc.oneof(
    fc.stringMatching(/^[0-9a-f]{36}$/),
    fc.string({ unit: SALT_CHARS, maxLength: 48 }),
  ),
}).map(({ name, token, signature }) => ({ ...name, token, signature }));

function assertProtocolError(
  fn: () => unknown,
  message: string | RegExp,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `got ${error}`);
    if (typeof message === "string") assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

Deno.test("parseKiteRequest() reads vector V3's line", () => {
  assert.deepEqual(parseKiteRequest(V3_LINE), {
    proto: "http",
    domain: "foo.example.com",
    salt: BSALT,
    token: "",
    signature: "1a2b3c4dc2b387e8425d334d449d20c63771",
  });
});

Deno.test("parseKiteRequest() reads a port and lower-cases proto and domain", () => {
  assert.deepEqual(parseKiteRequest("RAW-2222:SSH.Example.COM:AbC:Tok:Sig"), {
    proto: "raw",
    port: 2222,
    domain: "ssh.example.com",
    salt: "AbC",
    token: "Tok",
    signature: "Sig",
  });
  assert.equal(
    parseKiteRequest("http:*.wild.example.com:s::x").domain,
    "*.wild.example.com",
  );
  assert.equal(parseKiteRequest("http-1:a:s::x").port, 1);
  assert.equal(parseKiteRequest("http-65535:a:s::x").port, 65535);
});

Deno.test("parseKiteRequest() rejects lines without exactly five fields", () => {
  assertProtocolError(
    () => parseKiteRequest("http:foo.example.com:salt:sig"),
    'Cannot parse kite request: expected 5 colon-separated fields, got 4: "http:foo.example.com:salt:sig"',
  );
  assertProtocolError(
    () => parseKiteRequest("http:foo.example.com:8080:salt::sig"),
    /^Cannot parse kite request: expected 5 colon-separated fields, got 6: /,
  );
  assertProtocolError(
    () => parseKiteRequest(""),
    /expected 5 colon-separated fields, got 1/,
  );
});

Deno.test("parseKiteRequest() rejects a bad port", () => {
  for (
    const port of [
      "0",
      "65536",
      "99999",
      "080",
      "",
      "8o",
      "+80",
      "-80",
      "1e3",
      " 80",
    ]
  ) {
    assertProtocolError(
      () => parseKiteRequest(`http-${port}:foo.example.com:s::x`),
      /^Cannot parse kite request: port ".*" is not a decimal number in 1\.\.65535: /,
    );
  }
});

Deno.test("parseKiteRequest() rejects empty names and unprintable fields", () => {
  assertProtocolError(
    () => parseKiteRequest(":foo.example.com:s::x"),
    /^Cannot parse kite request: protocol is empty/,
  );
  assertProtocolError(
    () => parseKiteRequest("-80:foo.example.com:s::x"),
    /^Cannot parse kite request: protocol is empty/,
  );
  assertProtocolError(
    () => parseKiteRequest("http::s::x"),
    /^Cannot parse kite request: domain is empty/,
  );
  assertProtocolError(
    () => parseKiteRequest("http:foo bar:s::x"),
    /^Cannot parse kite request: domain "foo bar" contains " " at index 3/,
  );
  assertProtocolError(
    () => parseKiteRequest("http:foo:s:\x01:x"),
    /^Cannot parse kite request: token/,
  );
});

Deno.test("formatKiteRequest() writes vector V3's line", () => {
  assert.equal(formatKiteRequest(parseKiteRequest(V3_LINE)), V3_LINE);
  assert.equal(
    formatKiteRequest({
      proto: "raw",
      port: 22,
      domain: "ssh.example.com",
      salt: "s",
      token: "t",
      signature: "x",
    }),
    "raw-22:ssh.example.com:s:t:x",
  );
});

Deno.test("formatKiteRequest() rejects values that would break the line", () => {
  const kite: KiteRequest = {
    proto: "http",
    domain: "foo.example.com",
    salt: "s",
    token: "",
    signature: "x",
  };
  const bad: [Partial<KiteRequest>, RegExp][] = [
    [
      { domain: "a:b" },
      /^Cannot format kite request: domain "a:b" contains ":"/,
    ],
    [{ domain: "" }, /^Cannot format kite request: domain is empty$/],
    [{ domain: "a\r\nX-Evil: 1" }, /domain .* contains "\\r"/],
    [{ proto: "" }, /protocol is empty/],
    [{ proto: "http-80" }, /protocol "http-80" contains "-"/],
    [{ salt: "a b" }, /salt "a b" contains " "/],
    [{ token: "t:1" }, /token "t:1" contains ":"/],
    [{ signature: "x\n" }, /signature .* contains "\\n"/],
    [{ domain: "ü€" }, /contains "€"/],
  ];
  for (const [change, message] of bad) {
    assert.throws(
      () => formatKiteRequest({ ...kite, ...change }),
      (error: unknown) => {
        assert.ok(error instanceof TypeError, `got ${error}`);
        assert.match(error.message, message);
        return true;
      },
    );
  }
  for (const port of [0, 65536, 1.5, NaN]) {
    assert.throws(() => formatKiteRequest({ ...kite, port }), RangeError);
  }
});

Deno.test("parseKiteRequest() inverts formatKiteRequest()", () => {
  fc.assert(
    fc.property(kiteRequestArbitrary, (kite) => {
      const line = formatKiteRequest(kite);
      assert.deepEqual(parseKiteRequest(line), kite);
      assert.equal(formatKiteRequest(parseKiteRequest(line)), line);
    }),
    { seed: 42, numRuns: 1000 },
  );
});

Deno.test("parseKiteName() reads a three-field kite name", () => {
  assert.deepEqual(parseKiteName("http-8888:Foo.example.com:e3045d4f"), {
    proto: "http",
    port: 8888,
    domain: "foo.example.com",
    salt: "e3045d4f",
  });
  assertProtocolError(
    () => parseKiteName("http:foo.example.com:salt:token"),
    /^Cannot parse kite name: expected 3 colon-separated fields, got 4: /,
  );
  assertProtocolError(
    () => parseKiteName("http:foo.example.com"),
    /^Cannot parse kite name: expected 3 colon-separated fields, got 2: /,
  );
});

Deno.test("formatKiteName() inverts parseKiteName()", () => {
  fc.assert(
    fc.property(kiteNameArbitrary, (kite) => {
      assert.deepEqual(parseKiteName(formatKiteName(kite)), kite);
    }),
    { seed: 42, numRuns: 1000 },
  );
});

Deno.test("formatKiteName() ignores token and signature", () => {
  assert.equal(
    formatKiteName(parseKiteRequest(V3_LINE)),
    `http:foo.example.com:${BSALT}`,
  );
});

Deno.test("kiteSignaturePayload() ends in a colon while the token is empty", () => {
  assert.equal(
    kiteSignaturePayload(parseKiteRequest(V3_LINE)),
    `http:foo.example.com:${BSALT}:`,
  );
  assert.equal(
    kiteSignaturePayload({
      proto: "raw",
      port: 22,
      domain: "ssh.example.com",
      salt: BSALT,
      token: V4_TOKEN,
    }),
    `raw-22:ssh.example.com:${BSALT}:${V4_TOKEN}`,
  );
});

Deno.test("signKiteRequest() reproduces vectors V3, V5 and V6", async () => {
  const foo = { proto: "http", domain: "foo.example.com", salt: BSALT };
  assert.equal(
    formatKiteRequest(
      await signKiteRequest(foo, "testsecret", { salt: "1a2b3c4d" }),
    ),
    V3_LINE,
  );
  const v5 = await signKiteRequest(
    { ...foo, token: V4_TOKEN },
    "testsecret",
    { salt: "1a2b3c4d" },
  );
  assert.deepEqual(v5, {
    ...foo,
    token: V4_TOKEN,
    signature: "1a2b3c4dfeec2966f75475fa00339986f9ee",
  });
  const v6 = await signKiteRequest(
    { proto: "raw", port: 22, domain: "ssh.example.com", salt: BSALT },
    "testsecret",
    { salt: "deadbeef" },
  );
  assert.equal(v6.signature, "deadbeeff5341644ff58cfcd8ca37d7e8062");
});

Deno.test("signKiteRequest() replaces an old signature and signs with a random salt", async () => {
  const old = parseKiteRequest(V3_LINE);
  const kite = await signKiteRequest(
    { ...old, token: V4_TOKEN },
    "testsecret",
  );
  assert.notEqual(kite.signature, old.signature);
  assert.match(kite.signature, /^[0-9a-f]{36}$/);
  assert.equal(await checkKiteSignature(kite, "testsecret"), true);
});

Deno.test("checkKiteSignature() verifies vectors V3 and V5", async () => {
  const v3 = parseKiteRequest(V3_LINE);
  assert.equal(await checkKiteSignature(v3, "testsecret"), true);
  assert.equal(await checkKiteSignature(v3, "nope"), false);
  const v5 = parseKiteRequest(
    `http:foo.example.com:${BSALT}:${V4_TOKEN}:1a2b3c4dfeec2966f75475fa00339986f9ee`,
  );
  assert.equal(await checkKiteSignature(v5, "testsecret"), true);
  assert.equal(await checkKiteSignature(v5, "nope"), false);
  assert.equal(
    await checkKiteSignature({ ...v5, token: "" }, "testsecret"),
    false,
  );
});
