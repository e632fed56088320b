// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import fc from "fast-check";
import { checkSignature, signToken, timingSafeEqual } from "./sign.ts";

const BSALT = "893f4f1d98e17a28ae3d6fb3f2cd83765514";
const T = 1700000000;
const V4_PAYLOAD = `http:foo.example.com:${BSALT}`;
const V4_TOKEN = "t1234567c02e2d482fb39e2aba144ed8a973";

async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(text),
  );
  return Array.from(
    new Uint8Array(digest),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
}

Deno.test("signToken() reproduces vector V1", async () => {
  const payload = "http-99:testkite.com:123456789012345678901234567890123456:";
  assert.equal(
    await sha1Hex(`wigglybop${payload}00000001`),
    "66483a7e7d92338f838f6e1665093e7c87b87aa3",
  );
  assert.equal(
    await signToken("wigglybop", payload, { salt: "00000001" }),
    "0000000166483a7e7d92338f838f6e166509",
  );
});

Deno.test("signToken() vector V2: the pagekite.py bsalt is a plain SHA-1", async () => {
  const bsalt = (await sha1Hex("GLOBALSECRET127.0.0.1:18080testsecret"))
    .slice(0, 36);
  assert.equal(bsalt, BSALT);
});

Deno.test("signToken() reproduces vector V3", async () => {
  const sign = await signToken(
    "testsecret",
    `http:foo.example.com:${BSALT}:`,
    { salt: "1a2b3c4d" },
  );
  assert.equal(sign, "1a2b3c4dc2b387e8425d334d449d20c63771");
  assert.equal(
    `X-PageKite: http:foo.example.com:${BSALT}::${sign}`,
    "X-PageKite: http:foo.example.com:893f4f1d98e17a28ae3d6fb3f2cd83765514::1a2b3c4dc2b387e8425d334d449d20c63771",
  );
});

Deno.test("signToken() reproduces vector V4", async () => {
  assert.equal(Math.floor(T / 600).toString(16), "2b3bb5");
  const hex = await sha1Hex(`GLOBALSECRET${V4_PAYLOAD}2b3bb5t1234567`);
  assert.equal(`t1234567${hex.slice(0, 28)}`, V4_TOKEN);
  const token = await signToken("GLOBALSECRET", V4_PAYLOAD, {
    salt: "01234567",
    timestamp: T,
  });
  assert.equal(token, V4_TOKEN);
});

Deno.test("checkSignature() reproduces vector V4b", async (t) => {
  const table: [number, boolean][] = [
    [0, true],
    [599, true],
    [600, true],
    [1199, false],
    [1200, false],
    [1800, false],
  ];
  for (const [offset, expected] of table) {
    await t.step(
      `T+${offset} is ${expected ? "valid" : "expired"}`,
      async () => {
        assert.equal(
          await checkSignature(V4_TOKEN, "GLOBALSECRET", V4_PAYLOAD, {
            now: T + offset,
          }),
          expected,
        );
      },
    );
  }
});

Deno.test("checkSignature() rejects a token from a future window", async () => {
  assert.equal(
    await checkSignature(V4_TOKEN, "GLOBALSECRET", V4_PAYLOAD, {
      now: T - 600,
    }),
    false,
  );
});

Deno.test("signToken() and checkSignature() reproduce vector V5", async () => {
  const payload = `http:foo.example.com:${BSALT}:${V4_TOKEN}`;
  const sign = await signToken("testsecret", payload, { salt: "1a2b3c4d" });
  assert.equal(sign, "1a2b3c4dfeec2966f75475fa00339986f9ee");
  assert.equal(await checkSignature(sign, "testsecret", payload), true);
  assert.equal(await checkSignature(sign, "nope", payload), false);
});

Deno.test("signToken() reproduces vector V6", async () => {
  assert.equal(
    await signToken("testsecret", `raw-22:ssh.example.com:${BSALT}:`, {
      salt: "deadbeef",
    }),
    "deadbeeff5341644ff58cfcd8ca37d7e8062",
  );
});

Deno.test("signToken() reproduces vector V7 and checkSignature() accepts it", async () => {
  const payload = "foo.example.com:1.2.3.4,5.6.7.8";
  const sign = await signToken("testsecret", payload, {
    salt: "cafebabe",
    length: 100,
  });
  assert.equal(sign, "cafebabe2d32fb33c292ef4e2a70b1dc9444e458484a3afb");
  assert.equal(sign.length, 48);
  assert.equal(await checkSignature(sign, "testsecret", payload), true);
  assert.equal(
    await checkSignature(sign, "testsecret", payload + ",9.9.9.9"),
    false,
  );
});

Deno.test("checkSignature() reproduces vector V9", async () => {
  const bsalt = "c990ad69466a150816bf368f7add0dd750e6";
  const token = "t593f57992bc64b84fd20d144cdb8f508d76";
  const first = `http:foo.example.com:${bsalt}:`;
  const second = `http:foo.example.com:${bsalt}:${token}`;
  assert.equal(
    await checkSignature(
      "91850bd9c76b9305c0ccec117d712ca59fd8",
      "testsecret",
      first,
    ),
    true,
  );
  assert.equal(
    await checkSignature(
      "c4fb4f7a8a0e4a2f1dc84cf98d1884e6ff5e",
      "testsecret",
      second,
    ),
    true,
  );
  assert.equal(
    await checkSignature(
      "c4fb4f7a8a0e4a2f1dc84cf98d1884e6ff5e",
      "testsecret",
      first,
    ),
    false,
  );
});

Deno.test("checkSignature() reproduces vector V9b", async () => {
  const bsalt = "316e1eb413a70f38cab467ce0b6faa78f41f";
  const token = "t7bf846dc122da98b1f324a6fe43eb048528";
  assert.equal(
    await checkSignature(
      "91de1b2a2125e957b2a3e1dc067658c13859",
      "testsecret",
      `http:foo.example.com:${bsalt}:`,
    ),
    true,
  );
  assert.equal(
    await checkSignature(
      "0ea8f709392c905c8ab62e04a9dfb25ceadc",
      "testsecret",
      `http:foo.example.com:${bsalt}:${token}`,
    ),
    true,
  );
});

Deno.test("signToken() picks a random lower-case hex salt", async () => {
  const signs = await Promise.all(
    Array.from({ length: 8 }, () => signToken("s", "p")),
  );
  for (const sign of signs) {
    assert.match(sign, /^[0-9a-f]{36}$/);
    assert.equal(await checkSignature(sign, "s", "p"), true);
  }
  assert.ok(new Set(signs.map((sign) => sign.slice(0, 8))).size > 1);
});

Deno.test("signToken() replaces the salt's first character with t when timestamped", async () => {
  const sign = await signToken("s", "p", {
    salt: "abcdef01",
    timestamp: T,
  });
  assert.ok(sign.startsWith("tbcdef01"));
  const random = await signToken("s", "p", { timestamp: T });
  assert.match(random, /^t[0-9a-f]{35}$/);
  assert.equal(await checkSignature(random, "s", "p", { now: T }), true);
});

Deno.test("signToken() honours length and caps it at 48", async () => {
  const full = await signToken("s", "p", { salt: "00000000", length: 48 });
  assert.equal(full.length, 48);
  assert.equal(
    await signToken("s", "p", { salt: "00000000", length: 1000 }),
    full,
  );
  assert.equal(
    await signToken("s", "p", { salt: "00000000", length: 20 }),
    full.slice(0, 20),
  );
  assert.equal(
    await signToken("s", "p", { salt: "00000000", length: 8 }),
    "00000000",
  );
  assert.equal(
    await signToken("s", "p", { salt: "00000000" }),
    full.slice(0, 36),
  );
});

Deno.test("signToken() hashes UTF-8 bytes", async () => {
  const sign = await signToken("sécret", "ü:", { salt: "00000000" });
  assert.equal(
    sign,
    "00000000" + (await sha1Hex("sécretü:00000000")).slice(0, 28),
  );
});

Deno.test("signToken() rejects a bad salt, length or timestamp", async () => {
  await assert.rejects(
    signToken("s", "p", { salt: "abc" }),
    (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.equal(
        error.message,
        "Cannot sign token: salt must be 8 characters, got 3",
      );
      return true;
    },
  );
  for (const length of [7, 36.5, NaN]) {
    await assert.rejects(signToken("s", "p", { length }), RangeError);
  }
  for (const timestamp of [-1, Infinity, NaN]) {
    await assert.rejects(signToken("s", "p", { timestamp }), RangeError);
  }
});

Deno.test("checkSignature() refuses signatures shorter than 36 or longer than 48 characters", async () => {
  const short = await signToken("s", "p", { salt: "00000000", length: 20 });
  assert.equal(await checkSignature(short, "s", "p"), false);
  assert.equal(await checkSignature("00000000", "s", "p"), false);
  assert.equal(await checkSignature("", "s", "p"), false);
  const full = await signToken("s", "p", { salt: "00000000", length: 48 });
  assert.equal(await checkSignature(full, "s", "p"), true);
  assert.equal(await checkSignature(full + "0", "s", "p"), false);
  const middle = await signToken("s", "p", { salt: "00000000", length: 40 });
  assert.equal(await checkSignature(middle, "s", "p"), true);
});

Deno.test("checkSignature() rejects a tampered signature", async () => {
  const sign = await signToken("s", "p", { salt: "00000000" });
  const last = sign.at(-1) === "0" ? "1" : "0";
  assert.equal(await checkSignature(sign.slice(0, -1) + last, "s", "p"), false);
  assert.equal(await checkSignature("1" + sign.slice(1), "s", "p"), false);
  assert.equal(await checkSignature(sign.toUpperCase(), "s", "p"), false);
});

Deno.test("checkSignature() uses the current time by default", async () => {
  const now = Date.now() / 1000;
  const fresh = await signToken("s", "p", { timestamp: now });
  assert.equal(await checkSignature(fresh, "s", "p"), true);
  const stale = await signToken("s", "p", { timestamp: now - 1800 });
  assert.equal(await checkSignature(stale, "s", "p"), false);
});

Deno.test("checkSignature() accepts what signToken() makes", () => {
  return fc.assert(
    fc.asyncProperty(
      fc.string(),
      fc.string(),
      fc.stringMatching(/^[0-9a-f]{8}$/),
      fc.option(fc.integer({ min: 600, max: 4_000_000_000 }), {
        nil: undefined,
      }),
      fc.integer({ min: 36, max: 60 }),
      async (secret, payload, salt, timestamp, length) => {
        const options = timestamp === undefined
          ? { salt, length }
          : { salt, length, timestamp };
        const sign = await signToken(secret, payload, options);
        assert.equal(sign.length, Math.min(length, 48));
        const now = timestamp ?? 0;
        assert.equal(
          await checkSignature(sign, secret, payload, { now }),
          true,
        );
        assert.equal(
          await checkSignature(sign, secret + "x", payload, { now }),
          false,
        );
      },
    ),
    { seed: 42, numRuns: 1000 },
  );
});

Deno.test("timingSafeEqual() compares strings and bytes", () => {
  assert.equal(timingSafeEqual("", ""), true);
  assert.equal(timingSafeEqual("abc", "abc"), true);
  assert.equal(timingSafeEqual("abc", "abd"), false);
  assert.equal(timingSafeEqual("abc", "ab"), false);
  assert.equal(timingSafeEqual("ab", "abc"), false);
  assert.equal(timingSafeEqual("", "a"), false);
  assert.equal(timingSafeEqual("ab\0", "ab"), false);
  assert.equal(timingSafeEqual("é", new Uint8Array([0xc3, 0xa9])), true);
  assert.equal(
    timingSafeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3])),
    true,
  );
  assert.equal(
    timingSafeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4])),
    false,
  );
  assert.equal(
    timingSafeEqual(new Uint8Array(256), new Uint8Array(257)),
    false,
  );
});

Deno.test("timingSafeEqual() agrees with ordinary equality", () => {
  fc.assert(
    fc.property(fc.string(), fc.string(), (a, b) => {
      assert.equal(timingSafeEqual(a, b), a === b);
      assert.equal(timingSafeEqual(a, a), true);
    }),
    { seed: 42, numRuns: 1000 },
  );
});
