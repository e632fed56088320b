// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import { Challenges } from "./challenge.ts";

const NAME = "http:foo.example.com:893f4f1d98e17a28ae3d6fb3f2cd83765514";
const SECOND = 1000;
const MINUTE = 60 * SECOND;
/** 1700000000 s is 200 s into its 10-minute window (spec vector V4b). */
const T = 1_700_000_000 * SECOND;

/** A clock the test moves by hand. */
function clock(start = T): { now: () => number; set(ms: number): void } {
  let time = start;
  return { now: () => time, set: (ms) => void (time = ms) };
}

Deno.test("Challenges.issue() makes 36-character timestamped tokens", async () => {
  const c = clock();
  const challenges = new Challenges(c.now, "GLOBALSECRET");
  const token = await challenges.issue(NAME);
  assert.equal(token.length, 36);
  assert.equal(token[0], "t");
  assert.notEqual(await challenges.issue(NAME), token); // random salt
});

Deno.test("Challenges.redeem() accepts a token in its window and the next", async (t) => {
  const c = clock();
  const challenges = new Challenges(c.now, "GLOBALSECRET");
  // T is 200 s into its window, so the next window ends at T + 1000 s.
  for (const after of [0, 399, 400, 599, 600, 999]) {
    await t.step(`${after} s after issue`, async () => {
      c.set(T);
      const token = await challenges.issue(NAME);
      c.set(T + after * SECOND);
      assert.equal(await challenges.redeem(NAME, token), true);
    });
  }
});

Deno.test("Challenges.redeem() refuses a token after the next window", async (t) => {
  const c = clock();
  const challenges = new Challenges(c.now, "GLOBALSECRET");
  for (const after of [1000, 1199, 1200, 1800, 24 * 3600]) {
    await t.step(`${after} s after issue`, async () => {
      c.set(T);
      const token = await challenges.issue(NAME);
      c.set(T + after * SECOND);
      assert.equal(await challenges.redeem(NAME, token), false);
    });
  }
});

Deno.test("Challenges.redeem() refuses a token issued in the future", async () => {
  const c = clock();
  const challenges = new Challenges(c.now, "GLOBALSECRET");
  const token = await challenges.issue(NAME);
  c.set(T - 10 * MINUTE);
  assert.equal(await challenges.redeem(NAME, token), false);
});

Deno.test("Challenges.redeem() accepts a token once", async () => {
  const c = clock();
  const challenges = new Challenges(c.now, "GLOBALSECRET");
  const token = await challenges.issue(NAME);
  assert.equal(await challenges.redeem(NAME, token), true);
  assert.equal(await challenges.redeem(NAME, token), false);
  c.set(T + MINUTE);
  assert.equal(await challenges.redeem(NAME, token), false);
  assert.equal(challenges.remembered, 1);
});

Deno.test("Challenges.redeem() lets only one of two racing redemptions win", async () => {
  const c = clock();
  const challenges = new Challenges(c.now, "GLOBALSECRET");
  const token = await challenges.issue(NAME);
  const results = await Promise.all([
    challenges.redeem(NAME, token),
    challenges.redeem(NAME, token),
    challenges.redeem(NAME, token),
  ]);
  assert.deepEqual(results.filter((ok) => ok).length, 1);
});

Deno.test("Challenges.redeem() refuses a token for another kite name", async () => {
  const c = clock();
  const challenges = new Challenges(c.now, "GLOBALSECRET");
  const token = await challenges.issue(NAME);
  for (
    const other of [
      "http:bar.example.com:893f4f1d98e17a28ae3d6fb3f2cd83765514",
      "http-8080:foo.example.com:893f4f1d98e17a28ae3d6fb3f2cd83765514",
      "http:foo.example.com:other-salt",
    ]
  ) {
    assert.equal(await challenges.redeem(other, token), false, other);
  }
  // The failed attempts did not use the token up.
  assert.equal(await challenges.redeem(NAME, token), true);
});

Deno.test("Challenges.redeem() refuses tokens of another relay and non-tokens", async () => {
  const c = clock();
  const ours = new Challenges(c.now, "GLOBALSECRET");
  const theirs = new Challenges(c.now, "OTHERSECRET");
  const token = await theirs.issue(NAME);
  assert.equal(await ours.redeem(NAME, token), false);
  assert.equal(await ours.redeem(NAME, ""), false);
  // Not timestamped: a kite signature, not a challenge.
  assert.equal(
    await ours.redeem(NAME, "1a2b3c4dc2b387e8425d334d449d20c63771"),
    false,
  );
  assert.equal(await ours.redeem(NAME, "t"), false);
});

Deno.test("Challenges.redeem() accepts spec vector V4 with the pinned secret", async () => {
  // signToken("GLOBALSECRET", "http:foo.example.com:893f…", salt t1234567,
  // timestamp 1700000000).
  const c = clock();
  const challenges = new Challenges(c.now, "GLOBALSECRET");
  assert.equal(
    await challenges.redeem(
      "http:foo.example.com:893f4f1d98e17a28ae3d6fb3f2cd83765514",
      "t1234567c02e2d482fb39e2aba144ed8a973",
    ),
    true,
  );
});

Deno.test("Challenges() with no secret picks a random one per instance", async () => {
  const c = clock();
  const a = new Challenges(c.now);
  const b = new Challenges(c.now);
  const token = await a.issue(NAME);
  assert.equal(await b.redeem(NAME, token), false);
  assert.equal(await a.redeem(NAME, token), true);
});

Deno.test("Challenges.remembered forgets redeemed tokens once they expire", async () => {
  const c = clock();
  const challenges = new Challenges(c.now, "GLOBALSECRET");
  assert.equal(
    await challenges.redeem(NAME, await challenges.issue(NAME)),
    true,
  );
  c.set(T + 5 * MINUTE);
  assert.equal(
    await challenges.redeem(NAME, await challenges.issue(NAME)),
    true,
  );
  assert.equal(challenges.remembered, 2);
  // The first expires 20 minutes after its redemption, the second later.
  c.set(T + 21 * MINUTE);
  assert.equal(await challenges.redeem(NAME, "tnothing"), false);
  assert.equal(challenges.remembered, 1);
  c.set(T + 26 * MINUTE);
  assert.equal(await challenges.redeem(NAME, "tnothing"), false);
  assert.equal(challenges.remembered, 0);
});
