// Copyright 2026 the Kitewire authors. MIT license.
// The public side of serveRelay() without any connector: what the relay
// answers by itself, on IPv4 and IPv6.
import assert from "node:assert/strict";
import { serveRelay } from "./relay.ts";
import { HttpClient, httpRequest } from "../tests/_http.ts";

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

async function exchange(
  addr: Deno.NetAddr,
  request: string | Uint8Array,
): Promise<string> {
  using conn = await Deno.connect({ hostname: addr.hostname, port: addr.port });
  const bytes = typeof request === "string" ? encoder.encode(request) : request;
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
  using client = new HttpClient(conn);
  return latin1.decode(await client.readToEnd());
}

Deno.test("serveRelay() answers fast pings on IPv4 and IPv6 with a stable UUID", async () => {
  await using relay = serveRelay({
    listen: [{ hostname: "127.0.0.1", port: 0 }, { hostname: "::1", port: 0 }],
  });
  assert.equal(relay.addrs.length, 2);
  assert.equal(relay.addrs[1]!.hostname, "::1");
  assert.match(relay.uuid, /^[0-9a-f]{40}$/);
  for (const addr of relay.addrs) {
    for (const method of ["HEAD", "GET"]) {
      const answer = await exchange(
        addr,
        `${method} /ping HTTP/1.1\r\nHost: ping.pagekite\r\n\r\n`,
      );
      assert.ok(
        answer.startsWith(
          `HTTP/1.1 503 Unavailable\r\nX-PageKite-UUID: ${relay.uuid}\r\n`,
        ),
        answer,
      );
      assert.match(answer, /The HTTP connection for <b>ping\.pagekite<\/b>/);
    }
  }
});

Deno.test("serveRelay() puts X-PageKite-Overloaded first when over overloadConnections", async () => {
  await using relay = serveRelay({
    listen: [{ hostname: "127.0.0.1", port: 0 }],
    overloadConnections: 1,
  });
  // Two idle connections the relay is still sniffing push it over the limit.
  using idle1 = await Deno.connect({
    hostname: "127.0.0.1",
    port: relay.addrs[0]!.port,
  });
  using idle2 = await Deno.connect({
    hostname: "127.0.0.1",
    port: relay.addrs[0]!.port,
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  const answer = await exchange(
    relay.addrs[0]!,
    "HEAD /ping HTTP/1.1\r\nHost: ping.pagekite\r\n\r\n",
  );
  assert.ok(
    answer.startsWith(
      "HTTP/1.1 503 Unavailable\r\nX-PageKite-Overloaded: Sorry\r\nX-PageKite-UUID: ",
    ),
    answer,
  );
  void idle1, idle2;
});

Deno.test("serveRelay() answers what no kite serves by itself", async (t) => {
  await using relay = serveRelay({
    listen: [{ hostname: "127.0.0.1", port: 0 }],
    kites: [{ domain: "foo.example.com", secret: "s" }],
  });
  const port = relay.addrs[0]!.port;
  await t.step("an unknown host gets the 503 page", async () => {
    const response = await httpRequest(port, { host: "nosuch.example.com" });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("x-pagekite-uuid"), relay.uuid);
    assert.equal(response.headers.get("cache-control"), "no-store");
    assert.match(
      latin1.decode(response.body),
      /<b>nosuch\.example\.com<\/b> is unavailable/,
    );
  });
  await t.step("a known kite without a tunnel gets the 503 page", async () => {
    const response = await httpRequest(port, { host: "Foo.Example.com:8080" });
    assert.equal(response.status, 503);
    assert.match(latin1.decode(response.body), /<b>foo\.example\.com<\/b>/);
  });
  await t.step("the PING method gets PONG and the path", async () => {
    const answer = await exchange(
      relay.addrs[0]!,
      "PING /some/path HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert.equal(answer, "PONG /some/path\r\n\r\n");
  });
  await t.step("a probe for a missing kite says Down-FE", async () => {
    const json = await httpRequest(port, {
      host: "relay",
      path: "/~:PageKite:~/foo.example.com/status.json",
    });
    assert.equal(json.status, 200);
    assert.equal(json.headers.get("x-pagekite-status"), "Down-FE");
    assert.equal(json.headers.get("access-control-allow-origin"), "*");
    assert.equal(latin1.decode(json.body), '{"pagekite-status": "down-fe"}');
    const image = await httpRequest(port, {
      host: "relay",
      path: "/~:PageKite:~/foo.example.com/status.gif",
    });
    assert.equal(image.headers.get("content-type"), "image/gif");
    assert.equal(latin1.decode(image.body.subarray(0, 6)), "GIF89a");
  });
  await t.step("no Host header gets 400", async () => {
    const answer = await exchange(relay.addrs[0]!, "GET / HTTP/1.1\r\n\r\n");
    assert.match(answer, /^HTTP\/1\.1 400 Bad request\r\n/);
  });
  await t.step("an oversized head gets 400", async () => {
    const answer = await exchange(
      relay.addrs[0]!,
      `GET / HTTP/1.1\r\nHost: foo.example.com\r\nX-Big: ${
        "a".repeat(20_000)
      }\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 400 Bad request\r\n/);
    assert.match(answer, /maxHeadBytes|16384/);
  });
  await t.step("TLS without a route gets the access_denied alert", async () => {
    const hello = Uint8Array.fromHex(
      "16030100" + "2f" + "0100002b" + "0303" + "00".repeat(32) +
        "00" + "0002130101" + "00" + "0000",
    );
    const answer = await exchange(relay.addrs[0]!, hello);
    assert.deepEqual(
      [...encoder.encode(answer)].map((b) => b.toString(16).padStart(2, "0"))
        .join(""),
      "15030300020231",
    );
  });
  await t.step("CONNECT without a route gets 503", async () => {
    const answer = await exchange(
      relay.addrs[0]!,
      "CONNECT ssh.example.com:22 HTTP/1.1\r\n\r\n",
    );
    assert.equal(answer, "HTTP/1.0 503 Unavailable\r\n\r\n");
  });
  await t.step("a malformed tunnel request gets 503", async () => {
    const answer = await exchange(
      relay.addrs[0]!,
      "CONNECT PageKite:1 HTTP/1.0\r\nX-PageKite: http:foo.example.com\r\n\r\n",
    );
    assert.equal(answer, "HTTP/1.0 503 Unavailable\r\n\r\n");
  });
});

Deno.test("serveRelay() with errorUrl shows that page with the request's details", async () => {
  await using relay = serveRelay({
    listen: [{ hostname: "127.0.0.1", port: 0 }],
    errorUrl: "https://errors.example.net/down?lang=en",
  });
  const response = await httpRequest(relay.addrs[0]!.port, {
    host: "gone.example.com",
  });
  assert.equal(response.status, 503);
  assert.match(
    latin1.decode(response.body),
    /<frame target='_top' src='https:\/\/errors\.example\.net\/down\?lang=en&amp;where=FE&amp;proto=http&amp;domain=gone\.example\.com&amp;relay=127\.0\.0\.1'>/,
  );
});

Deno.test("serveRelay() closes connections that say nothing within sniffTimeoutMs", async () => {
  await using relay = serveRelay({
    listen: [{ hostname: "127.0.0.1", port: 0 }],
    sniffTimeoutMs: 100,
  });
  using conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: relay.addrs[0]!.port,
  });
  const started = Date.now();
  const n = await conn.read(new Uint8Array(16));
  assert.equal(n, null);
  assert.ok(Date.now() - started < 2000);
  assert.equal(relay.stats().totals.connections, 0);
});

Deno.test("serveRelay() refuses limits that are not positive integers", () => {
  assert.throws(
    () => serveRelay({ pingIntervalMs: 0 }),
    /^RangeError: Cannot serve relay: pingIntervalMs 0 is not a positive integer$/,
  );
  assert.throws(() => serveRelay({ listen: [] }), TypeError);
});

Deno.test("serveRelay() stops when its signal is aborted", async () => {
  const controller = new AbortController();
  const relay = serveRelay({
    listen: [{ hostname: "127.0.0.1", port: 0 }],
    signal: controller.signal,
  });
  const port = relay.addrs[0]!.port;
  controller.abort();
  await relay.finished;
  await assert.rejects(() => Deno.connect({ hostname: "127.0.0.1", port }));
});
