// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import {
  backoffDelay,
  type ConnectorKite,
  type ConnectorOptions,
  resolveConnectorOptions,
} from "./options.ts";

const RECONNECT = { initialMs: 100, maxMs: 3000, resetAfterMs: 60_000 };
/** The largest value `Math.random()` can return. */
const ALMOST_ONE = 1 - Number.EPSILON / 2;

const KITE: ConnectorKite = {
  proto: "http",
  domain: "foo.example.com",
  secret: "s3cret",
  backend: { host: "127.0.0.1", port: 8080 },
};

function options(extra: Partial<ConnectorOptions> = {}): ConnectorOptions {
  return {
    relay: { hostname: "127.0.0.1", port: 1 },
    kites: [KITE],
    ...extra,
  };
}

Deno.test("backoffDelay() bounds attempt n by initialMs * 2^n, capped at maxMs", () => {
  const bounds = [100, 200, 400, 800, 1600, 3000, 3000, 3000];
  for (const [attempt, bound] of bounds.entries()) {
    assert.equal(
      backoffDelay(attempt, RECONNECT, () => ALMOST_ONE),
      bound - 1,
      `attempt ${attempt}`,
    );
    assert.equal(backoffDelay(attempt, RECONNECT, () => 0), 0);
    assert.equal(backoffDelay(attempt, RECONNECT, () => 0.5), bound / 2);
  }
});

Deno.test("backoffDelay() jitters over the whole range, in whole milliseconds", () => {
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const delay = backoffDelay(3, RECONNECT, random);
    assert.ok(Number.isInteger(delay) && delay >= 0 && delay < 800, `${delay}`);
    seen.add(Math.floor(delay / 100));
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("backoffDelay() stays finite and capped for huge attempt numbers", () => {
  for (const attempt of [31, 64, 1024, 1e9, Number.MAX_SAFE_INTEGER]) {
    assert.equal(backoffDelay(attempt, RECONNECT, () => ALMOST_ONE), 2999);
  }
  const small = {
    initialMs: 1,
    maxMs: Number.MAX_SAFE_INTEGER,
    resetAfterMs: 1,
  };
  const delay = backoffDelay(1e6, small, () => ALMOST_ONE);
  assert.ok(Number.isSafeInteger(delay), `${delay}`);
  assert.equal(delay, 2 ** 30 - 1);
});

Deno.test("backoffDelay() never exceeds maxMs when initialMs is larger", () => {
  const odd = { initialMs: 5000, maxMs: 1000, resetAfterMs: 1 };
  assert.equal(backoffDelay(0, odd, () => ALMOST_ONE), 999);
});

Deno.test("resolveConnectorOptions() fills in every default", () => {
  const resolved = resolveConnectorOptions(options());
  assert.equal(resolved.addKites, true);
  assert.equal(resolved.zchunks, true);
  assert.equal(resolved.compressionLevel, 6);
  assert.equal(resolved.version, "kitewire-0.1.0");
  assert.equal(resolved.connectTimeoutMs, 10_000);
  assert.equal(resolved.handshakeTimeoutMs, 30_000);
  assert.equal(resolved.backendTimeoutMs, 5_000);
  assert.equal(resolved.pingIntervalMs, 30_000);
  assert.equal(resolved.pingGraceMs, 30_000);
  assert.deepEqual(resolved.reconnect, {
    initialMs: 500,
    maxMs: 30_000,
    resetAfterMs: 60_000,
  });
  assert.equal(resolved.streamWindowBytes, 262_144);
  assert.equal(resolved.maxStreamBufferBytes, 1_048_576);
  assert.equal(resolved.tunnelQueueBytes, 1_048_576);
  assert.equal(resolved.maxStreams, 1024);
  assert.equal(resolved.maxChunkSize, 1_048_576);
  assert.equal(resolved.maxQueuedEvents, 1000);
  assert.equal(resolved.signal, undefined);
  assert.equal(resolved.onError, undefined);
  assert.equal(resolved.now, Date.now);
  assert.equal(resolved.random, Math.random);
});

Deno.test("resolveConnectorOptions() keeps given values", () => {
  const now = () => 42;
  const random = () => 0.25;
  const resolved = resolveConnectorOptions(options({
    addKites: false,
    zchunks: false,
    compressionLevel: 9,
    pingIntervalMs: 100,
    reconnect: { maxMs: 2000 },
    now,
    random,
  }));
  assert.equal(resolved.addKites, false);
  assert.equal(resolved.zchunks, false);
  assert.equal(resolved.compressionLevel, 9);
  assert.equal(resolved.pingIntervalMs, 100);
  assert.deepEqual(resolved.reconnect, {
    initialMs: 500,
    maxMs: 2000,
    resetAfterMs: 60_000,
  });
  assert.equal(resolved.now, now);
  assert.equal(resolved.random, random);
});

Deno.test("resolveConnectorOptions() throws RangeError for a limit that is not a positive integer", async (t) => {
  const limits = [
    "connectTimeoutMs",
    "handshakeTimeoutMs",
    "backendTimeoutMs",
    "pingIntervalMs",
    "pingGraceMs",
    "streamWindowBytes",
    "maxStreamBufferBytes",
    "tunnelQueueBytes",
    "maxStreams",
    "maxChunkSize",
    "maxQueuedEvents",
  ] as const;
  for (const name of limits) {
    await t.step(name, () => {
      for (const value of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
        assert.throws(
          () => resolveConnectorOptions(options({ [name]: value })),
          (error: unknown) =>
            error instanceof RangeError &&
            error.message ===
              `Cannot connect kites: ${name} ${value} is not a positive integer`,
          `${name}: ${value}`,
        );
      }
    });
  }
  await t.step("reconnect", () => {
    for (const key of ["initialMs", "maxMs", "resetAfterMs"] as const) {
      assert.throws(
        () => resolveConnectorOptions(options({ reconnect: { [key]: 0 } })),
        new RangeError(
          `Cannot connect kites: reconnect.${key} 0 is not a positive integer`,
        ),
      );
    }
  });
  await t.step("compressionLevel", () => {
    for (const level of [0, 10, 2.5, NaN]) {
      assert.throws(
        () => resolveConnectorOptions(options({ compressionLevel: level })),
        new RangeError(
          `Cannot connect kites: compressionLevel ${level} is not an integer from 1 to 9`,
        ),
      );
    }
  });
});

Deno.test("resolveConnectorOptions() throws TypeError for missing kites, domains and secrets", () => {
  assert.throws(
    () => resolveConnectorOptions(options({ kites: [] })),
    new TypeError("Cannot connect kites: 'kites' is empty"),
  );
  assert.throws(
    () =>
      resolveConnectorOptions(options({ kites: [{ ...KITE, domain: "" }] })),
    new TypeError('Cannot connect kites: kite "" needs a domain and a secret'),
  );
  assert.throws(
    () =>
      resolveConnectorOptions(options({ kites: [{ ...KITE, secret: "" }] })),
    new TypeError(
      'Cannot connect kites: kite "foo.example.com" needs a domain and a secret',
    ),
  );
});

Deno.test("resolveConnectorOptions() throws TypeError for bad credentials or host names", () => {
  const bad: Partial<ConnectorKite>[] = [
    { basicAuth: { user: "a:b", password: "p" } },
    { basicAuth: { user: "a\r\nX-Evil: 1", password: "p" } },
    { basicAuth: { user: "a", password: "p\n" } },
    { rewriteHost: "evil.example.com\r\nX-Evil: 1" },
    { rewriteHost: "" },
    { rewriteHost: "a b" },
  ];
  for (const extra of bad) {
    assert.throws(
      () =>
        resolveConnectorOptions(options({ kites: [{ ...KITE, ...extra }] })),
      TypeError,
      JSON.stringify(extra),
    );
  }
  // rewriteHost: true means the backend's host, checked per stream.
  resolveConnectorOptions(options({ kites: [{ ...KITE, rewriteHost: true }] }));
});
