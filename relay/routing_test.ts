// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import { candidateProtos, findConflict, findRoute } from "./routing.ts";

/** A live-registration map whose values name their own key. */
function live(...keys: string[]): Map<string, string> {
  return new Map(keys.map((key) => [key, key]));
}

Deno.test("candidateProtos() lists the fallbacks of spec §4.2 in order", () => {
  assert.deepEqual(candidateProtos("http"), ["http", "http2", "http3"]);
  assert.deepEqual(candidateProtos("websocket"), [
    "websocket",
    "http",
    "http2",
    "http3",
  ]);
  assert.deepEqual(candidateProtos("probe"), [
    "http",
    "https",
    "websocket",
    "raw",
    "irc",
    "xmpp",
  ]);
  assert.deepEqual(candidateProtos("https"), ["https"]);
  assert.deepEqual(candidateProtos("raw"), ["raw"]);
});

Deno.test("findRoute() prefers the port-specific kite", () => {
  const map = live("http:foo.example.com", "http-8080:foo.example.com");
  assert.equal(
    findRoute(map, "http", "foo.example.com", 8080)?.key,
    "http-8080:foo.example.com",
  );
  assert.equal(
    findRoute(map, "http", "foo.example.com", 80)?.key,
    "http:foo.example.com",
  );
});

Deno.test("findRoute() tries the port-specific wildcard before the port-less exact name", () => {
  // p-N:H (wildcard-aware) comes before p:H.
  const map = live("http:foo.example.com", "http-8080:*.example.com");
  assert.equal(
    findRoute(map, "http", "foo.example.com", 8080)?.key,
    "http-8080:*.example.com",
  );
  assert.equal(
    findRoute(map, "http", "foo.example.com", 80)?.key,
    "http:foo.example.com",
  );
});

Deno.test("findRoute() walks wildcard parents, most specific first", async (t) => {
  await t.step("exact name wins over a wildcard", () => {
    const map = live("http:a.b.example.com", "http:*.b.example.com");
    assert.equal(
      findRoute(map, "http", "a.b.example.com", 80)?.key,
      "http:a.b.example.com",
    );
  });
  await t.step("nearest parent wins", () => {
    const map = live("http:*.b.example.com", "http:*.example.com");
    assert.equal(
      findRoute(map, "http", "a.b.example.com", 80)?.key,
      "http:*.b.example.com",
    );
    assert.equal(
      findRoute(map, "http", "c.example.com", 80)?.key,
      "http:*.example.com",
    );
  });
  await t.step("a distant parent still matches", () => {
    const map = live("http:*.example.com");
    assert.equal(
      findRoute(map, "http", "x.y.z.example.com", 80)?.key,
      "http:*.example.com",
    );
  });
  await t.step("a wildcard does not cover its own parent name", () => {
    const map = live("http:*.example.com");
    assert.equal(findRoute(map, "http", "example.com", 80), undefined);
  });
  await t.step("never *.com", () => {
    const map = live("http:*.com");
    assert.equal(findRoute(map, "http", "example.com", 80), undefined);
    assert.equal(findRoute(map, "http", "foo.example.com", 80), undefined);
  });
});

Deno.test("findRoute() lower-cases the host", () => {
  const map = live("http:foo.example.com");
  assert.equal(
    findRoute(map, "http", "FOO.Example.COM", 80)?.key,
    "http:foo.example.com",
  );
});

Deno.test("findRoute() falls back to the unknown kite of the first candidate", async (t) => {
  await t.step("port-specific unknown first", () => {
    const map = live("http:unknown", "http-8080:unknown");
    assert.equal(
      findRoute(map, "http", "nosuch.example.com", 8080)?.key,
      "http-8080:unknown",
    );
    assert.equal(
      findRoute(map, "http", "nosuch.example.com", 80)?.key,
      "http:unknown",
    );
  });
  await t.step("a real kite beats the catch-all", () => {
    const map = live("http:unknown", "http2:foo.example.com");
    const route = findRoute(map, "http", "foo.example.com", 80);
    assert.equal(route?.key, "http2:foo.example.com");
    assert.equal(route?.proto, "http2");
  });
  await t.step("only the first candidate's unknown kite", () => {
    // A websocket request's first candidate is websocket.
    const map = live("http:unknown");
    assert.equal(findRoute(map, "websocket", "foo.example.com", 80), undefined);
    assert.equal(
      findRoute(live("websocket:unknown"), "websocket", "foo.example.com", 80)
        ?.key,
      "websocket:unknown",
    );
  });
  await t.step("nothing at all", () => {
    assert.equal(findRoute(live(), "http", "foo.example.com", 80), undefined);
  });
});

Deno.test("findRoute() falls back from http to http2 and http3", () => {
  const route = findRoute(
    live("http3:foo.example.com"),
    "http",
    "foo.example.com",
    80,
  );
  assert.equal(route?.key, "http3:foo.example.com");
  assert.equal(route?.proto, "http3");
  // http2 comes before http3.
  assert.equal(
    findRoute(
      live("http3:foo.example.com", "http2:foo.example.com"),
      "http",
      "foo.example.com",
      80,
    )?.proto,
    "http2",
  );
});

Deno.test("findRoute() sends websocket upgrades to an http kite as Proto http", () => {
  const map = live("http:foo.example.com");
  const route = findRoute(map, "websocket", "foo.example.com", 80);
  assert.equal(route?.key, "http:foo.example.com");
  assert.equal(route?.proto, "http");
  const both = live("http:foo.example.com", "websocket:foo.example.com");
  assert.equal(
    findRoute(both, "websocket", "foo.example.com", 80)?.proto,
    "websocket",
  );
});

Deno.test("findRoute() matches probes over every protocol and served port", () => {
  const map = live("https-443:foo.example.com");
  const route = findRoute(map, "probe", "foo.example.com", 80, [80, 443]);
  assert.equal(route?.key, "https-443:foo.example.com");
  assert.equal(route?.proto, "https");
  // Only served ports are tried.
  assert.equal(findRoute(map, "probe", "foo.example.com", 80, [80]), undefined);
  // http comes first among the probe candidates.
  const both = live("https:foo.example.com", "http:foo.example.com");
  assert.equal(
    findRoute(both, "probe", "foo.example.com", 80, [80])?.proto,
    "http",
  );
});

Deno.test("findRoute() returns the registration and the value", () => {
  const map = new Map([["http:foo.example.com", 42]]);
  assert.deepEqual(findRoute(map, "http", "foo.example.com", 80), {
    key: "http:foo.example.com",
    proto: "http",
    value: 42,
  });
});

Deno.test("findConflict() finds the same key", () => {
  const map = live("http:foo.example.com", "http-8080:bar.example.com");
  assert.equal(
    findConflict(map, "http", "foo.example.com")?.key,
    "http:foo.example.com",
  );
  assert.equal(
    findConflict(map, "http", "bar.example.com", 8080)?.key,
    "http-8080:bar.example.com",
  );
  assert.equal(
    findConflict(map, "http", "FOO.example.com")?.key,
    "http:foo.example.com",
  );
});

Deno.test("findConflict() is wildcard-aware", () => {
  const map = live("http:*.example.com");
  assert.equal(
    findConflict(map, "http", "foo.example.com")?.key,
    "http:*.example.com",
  );
  assert.equal(
    findConflict(map, "http", "a.b.example.com")?.key,
    "http:*.example.com",
  );
  assert.equal(
    findConflict(map, "http", "*.example.com")?.key,
    "http:*.example.com",
  );
});

Deno.test("findConflict() ignores other names, protocols and ports", () => {
  const map = live("http:foo.example.com", "http:*.wild.example.com");
  assert.equal(findConflict(map, "http", "bar.example.com"), undefined);
  assert.equal(findConflict(map, "http", "example.com"), undefined);
  assert.equal(findConflict(map, "https", "foo.example.com"), undefined);
  assert.equal(findConflict(map, "http2", "foo.example.com"), undefined);
  assert.equal(findConflict(map, "http", "foo.example.com", 8080), undefined);
  // A wildcard request does not conflict with names under it.
  assert.equal(findConflict(map, "http", "*.example.com"), undefined);
});

Deno.test("findConflict() never treats *.com as a parent", () => {
  assert.equal(
    findConflict(live("http:*.com"), "http", "example.com"),
    undefined,
  );
  assert.equal(
    findConflict(live("http:*.com"), "http", "foo.example.com"),
    undefined,
  );
});
