// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import { kiteKey, KiteSecrets, wildcardNames } from "./kites.ts";

Deno.test("kiteKey() joins proto, port and domain in lower case", () => {
  assert.equal(kiteKey("http", "foo.example.com"), "http:foo.example.com");
  assert.equal(kiteKey("raw", "SSH.Example.com", 22), "raw-22:ssh.example.com");
  assert.equal(kiteKey("HTTP", "*.example.com"), "http:*.example.com");
});

Deno.test("wildcardNames() stops before *.com", () => {
  assert.deepEqual(wildcardNames("a.b.example.com"), [
    "a.b.example.com",
    "*.b.example.com",
    "*.example.com",
  ]);
  assert.deepEqual(wildcardNames("foo.example.com"), [
    "foo.example.com",
    "*.example.com",
  ]);
  assert.deepEqual(wildcardNames("example.com"), ["example.com"]);
  assert.deepEqual(wildcardNames("localhost"), ["localhost"]);
});

Deno.test("KiteSecrets.find() prefers proto-port entries over proto entries", () => {
  const secrets = new KiteSecrets([
    { domain: "foo.example.com", secret: "plain", protos: ["http"] },
    { domain: "foo.example.com", secret: "ported", protos: ["http-8080"] },
  ]);
  assert.equal(secrets.find("http", "foo.example.com", 8080), "ported");
  assert.equal(secrets.find("http", "foo.example.com", 80), "plain");
  assert.equal(secrets.find("http", "foo.example.com"), "plain");
});

Deno.test("KiteSecrets.find() tries a proto-port wildcard before a proto exact name", () => {
  // Spec §2.3 step 4: proto-port:domain, then proto:domain, each with the
  // wildcard fallback.
  const secrets = new KiteSecrets([
    { domain: "foo.example.com", secret: "exact", protos: ["raw"] },
    { domain: "*.example.com", secret: "wild", protos: ["raw-22"] },
  ]);
  assert.equal(secrets.find("raw", "foo.example.com", 22), "wild");
  assert.equal(secrets.find("raw", "foo.example.com", 23), "exact");
});

Deno.test("KiteSecrets.find() prefers exact names, then the nearest wildcard", () => {
  const secrets = new KiteSecrets([
    { domain: "*.example.com", secret: "outer" },
    { domain: "*.b.example.com", secret: "inner" },
    { domain: "a.b.example.com", secret: "exact" },
  ]);
  assert.equal(secrets.find("http", "a.b.example.com"), "exact");
  assert.equal(secrets.find("http", "c.b.example.com"), "inner");
  assert.equal(secrets.find("http", "x.y.b.example.com"), "inner");
  assert.equal(secrets.find("http", "c.example.com"), "outer");
  assert.equal(secrets.find("http", "example.com"), undefined);
  assert.equal(secrets.find("http", "other.org"), undefined);
});

Deno.test("KiteSecrets.find() never uses a *.com entry", () => {
  const secrets = new KiteSecrets([{ domain: "*.com", secret: "tld" }]);
  assert.equal(secrets.find("http", "example.com"), undefined);
  assert.equal(secrets.find("http", "foo.example.com"), undefined);
});

Deno.test("KiteSecrets.find() honours the protos list", async (t) => {
  const secrets = new KiteSecrets([
    { domain: "foo.example.com", secret: "web", protos: ["http", "websocket"] },
    { domain: "foo.example.com", secret: "ssh", protos: ["raw-22"] },
  ]);
  await t.step("listed protocols", () => {
    assert.equal(secrets.find("http", "foo.example.com"), "web");
    assert.equal(secrets.find("websocket", "foo.example.com"), "web");
    assert.equal(secrets.find("http", "foo.example.com", 8080), "web");
    assert.equal(secrets.find("raw", "foo.example.com", 22), "ssh");
  });
  await t.step("protocols not listed", () => {
    assert.equal(secrets.find("https", "foo.example.com"), undefined);
    assert.equal(secrets.find("raw", "foo.example.com"), undefined);
    assert.equal(secrets.find("raw", "foo.example.com", 2222), undefined);
  });
  await t.step("no list means every protocol", () => {
    const any = new KiteSecrets([{ domain: "foo.example.com", secret: "any" }]);
    assert.equal(any.find("https", "foo.example.com"), "any");
    assert.equal(any.find("raw", "foo.example.com", 22), "any");
  });
  await t.step("a later entry serves what an earlier one does not list", () => {
    const two = new KiteSecrets([
      { domain: "*.example.com", secret: "raw-only", protos: ["raw"] },
      { domain: "*.example.com", secret: "http-only", protos: ["http"] },
    ]);
    assert.equal(two.find("http", "foo.example.com"), "http-only");
    assert.equal(two.find("raw", "foo.example.com"), "raw-only");
  });
});

Deno.test("KiteSecrets.find() matches domains case-insensitively", () => {
  const secrets = new KiteSecrets([
    { domain: "Foo.Example.COM", secret: "s" },
    { domain: "*.Wild.Example.com", secret: "w" },
  ]);
  assert.equal(secrets.find("http", "foo.example.com"), "s");
  assert.equal(secrets.find("http", "FOO.EXAMPLE.COM"), "s");
  assert.equal(secrets.find("http", "A.wild.example.com"), "w");
});

Deno.test("KiteSecrets.find() knows the unknown catch-all kite by name", () => {
  const secrets = new KiteSecrets([{ domain: "unknown", secret: "catch" }]);
  assert.equal(secrets.find("http", "unknown"), "catch");
  assert.equal(secrets.find("http", "foo.example.com"), undefined);
});

Deno.test("KiteSecrets() rejects an empty domain or secret", () => {
  assert.throws(
    () => new KiteSecrets([{ domain: "", secret: "s" }]),
    TypeError,
  );
  assert.throws(
    () => new KiteSecrets([{ domain: "foo.example.com", secret: "" }]),
    TypeError,
  );
});
