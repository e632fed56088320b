// Copyright 2026 the Kitewire authors. MIT license.
// connectKites() end to end on 127.0.0.1. First against the scripted,
// hostile relay of tests/_fake_relay.ts, which sends any frame it likes and
// records every chunk the connector sends back (docs/reliability.md §4.4
// S6, S10, S12, S13; spec §3.5, §5.1-§5.4, §6.4), then against our own
// serveRelay() with a Deno.serve origin: GET, POST, keep-alive forwarding
// headers and 64 MiB each way with and without ZChunks.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  connectKites,
  type Connector,
  type ConnectorEvent,
  type ConnectorKite,
  type ConnectorOptions,
  TLS_ALERT,
} from "../connector/mod.ts";
import { type Chunk, encodeTunnelResponse } from "../protocol/mod.ts";
import { serveRelay } from "../relay/mod.ts";
import {
  Backend,
  closedPort,
  concat,
  delay,
  FakeRelay,
  type FakeTunnel,
  latin1Bytes,
  latin1Text,
  okAnswer,
  rawFrame,
  waitUntil,
  writeAll,
} from "./_fake_relay.ts";
import { HttpClient, httpRequest } from "./_http.ts";

const SECRET = "s3cret";
const FOO = "foo.example.com";
const BAR = "bar.example.com";
const SSH = "ssh.example.com";
const KiB = 1024;
const MiB = 1024 * KiB;
const encoder = new TextEncoder();

// Helpers

interface Harness extends AsyncDisposable {
  connector: Connector;
  /** What `onError` received. */
  errors: unknown[];
  /** Every event, in order. */
  events: ConnectorEvent[];
}

function startConnector(
  relayPort: number,
  kites: ConnectorKite[],
  options: Partial<ConnectorOptions> = {},
): Harness {
  const errors: unknown[] = [];
  const events: ConnectorEvent[] = [];
  const connector = connectKites({
    relay: { hostname: "127.0.0.1", port: relayPort },
    kites,
    reconnect: { initialMs: 20, maxMs: 100 },
    pingIntervalMs: 60_000,
    backendTimeoutMs: 2000,
    onError: (error) => errors.push(error),
    ...options,
  });
  const reading = (async () => {
    for await (const event of connector.events) events.push(event);
  })();
  return {
    connector,
    errors,
    events,
    async [Symbol.asyncDispose]() {
      await connector.shutdown();
      await reading;
    },
  };
}

function httpKite(
  domain: string,
  backend: { address: { host: string; port: number } } | null,
  extra: Partial<ConnectorKite> = {},
): ConnectorKite {
  return {
    proto: "http",
    domain,
    secret: SECRET,
    backend: backend === null ? null : backend.address,
    ...extra,
  };
}

/** The first chunk of a stream, as a pagekite.py relay sends it. */
function open(
  sid: number,
  proto: string,
  host: string,
  body = "",
  extra: Partial<Chunk> = {},
): Chunk {
  return {
    sid,
    proto,
    host,
    port: proto === "https" ? 443 : 80,
    remoteIp: "1.2.3.4",
    remotePort: 5555,
    body: latin1Bytes(body),
    ...extra,
  };
}

function get(path = "/", host = FOO, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
}

/** The one full EOF of a stream, and that nothing came after it. */
function assertClosedOnce(tunnel: FakeTunnel, sid: number): void {
  const eofs = tunnel.eofsOf(sid);
  assert.equal(eofs.length, 1, `one EOF for SID ${sid}`);
  assert.equal(eofs[0]!.eof, "RW");
  const at = tunnel.chunks.indexOf(eofs[0]!);
  assert.ok(
    !tunnel.chunks.slice(at + 1).some((c) => c.sid === sid && !c.noop),
    `nothing for SID ${sid} after its EOF`,
  );
}

function assertUp(h: Harness, tunnel: FakeTunnel, connects = 1): void {
  assert.equal(tunnel.ended, false, "the tunnel is up");
  assert.equal(tunnel.decodeError, undefined);
  const stats = h.connector.stats();
  assert.equal(stats.connected, true);
  assert.equal(stats.connects, connects);
  assert.equal(stats.failures, connects - 1);
  assert.deepEqual(
    h.events.filter((e) => e.type === "disconnected"),
    [],
  );
}

// 1. Duplicate SID open (S12)

Deno.test("connectKites() closes a stream the relay opens twice and dials once", async () => {
  await using backend = new Backend();
  await using other = new Backend();
  await using relay = FakeRelay.serve();
  await using h = startConnector(relay.port, [
    httpKite(FOO, backend),
    httpKite(BAR, other),
  ]);
  const tunnel = await relay.tunnel(0);

  await tunnel.send(open(5, "http", FOO, get("/one")));
  await waitUntil(() => backend.allText().includes("GET /one"), "/one");
  // The same SID again, for another kite and with a request of its own.
  await tunnel.send(open(5, "http", BAR, get("/two", BAR)));
  await tunnel.waitFor((c) => c.sid === 5 && c.eof === "RW", "EOF for SID 5");
  await waitUntil(() => backend.connections[0]!.ended, "first stream closed");
  // Later frames of the SID are dropped quietly.
  await tunnel.send({ sid: 5, body: encoder.encode(get("/three")) });
  await tunnel.sync();
  await delay(50);

  assert.equal(backend.connections.length, 1);
  assert.equal(other.connections.length, 0, "no second dial for SID 5");
  assert.ok(!backend.allText().includes("/two"));
  assert.ok(!backend.allText().includes("/three"));
  assertClosedOnce(tunnel, 5);

  // The tunnel still carries new streams.
  await tunnel.send(open(7, "http", BAR, get("/seven", BAR)));
  await waitUntil(() => other.allText().includes("GET /seven"), "/seven");
  assertUp(h, tunnel);
  assert.deepEqual(h.errors, []);
});

// 2. Unknown SIDs (S12)

Deno.test("connectKites() answers data for an unknown SID with one EOF and dials nothing", async () => {
  await using canary = new Backend();
  await using relay = FakeRelay.serve();
  await using h = startConnector(relay.port, [httpKite(FOO, canary)]);
  const tunnel = await relay.tunnel(0);

  const frames: Chunk[] = [];
  for (let i = 0; i < 50; i++) {
    frames.push({ sid: 9, body: encoder.encode(`frame ${i} `) });
  }
  // An EOF for a SID nobody knows gets no answer.
  frames.push({ sid: 11, eof: "R", body: new Uint8Array() });
  frames.push({ sid: 12, eof: "RW", body: new Uint8Array() });
  await tunnel.send(...frames);
  await tunnel.sync();
  await delay(50);

  assertClosedOnce(tunnel, 9);
  assert.equal(tunnel.dataOf(9), "");
  assert.equal(tunnel.filter((c) => c.sid === 11 || c.sid === 12).length, 0);
  assert.equal(canary.connections.length, 0);
  assert.equal(h.connector.stats().streams.length, 0, "no state kept");
  assertUp(h, tunnel);
});

Deno.test("connectKites() forgets streams the relay closes before the service answers", async () => {
  await using backend = new Backend();
  await using relay = FakeRelay.serve();
  await using h = startConnector(relay.port, [httpKite(FOO, backend)], {
    maxStreams: 4,
  });
  const tunnel = await relay.tunnel(0);

  // Each user hung up at once: the opening chunk carries EOF: 1WR.
  const frames: Chunk[] = [];
  for (let sid = 100; sid < 110; sid++) {
    frames.push(open(sid, "http", FOO, get(`/gone-${sid}`), { eof: "RW" }));
  }
  await tunnel.send(...frames);
  await tunnel.sync();
  await waitUntil(
    () => backend.connections.every((c) => c.ended),
    "dialed connections closed",
  );
  assert.deepEqual(h.connector.stats().streams, [], "no stream left behind");
  assert.equal(backend.allText(), "");
  for (let sid = 100; sid < 110; sid++) {
    assert.equal(tunnel.eofsOf(sid).length, 0, "the relay closed it already");
  }

  // So maxStreams still has room for real streams.
  for (let sid = 110; sid < 114; sid++) {
    await tunnel.send(open(sid, "http", FOO, get(`/live-${sid}`)));
  }
  await waitUntil(
    () =>
      [110, 111, 112, 113].every((sid) =>
        backend.allText().includes(`/live-${sid}`)
      ),
    "four live streams",
  );
  assertUp(h, tunnel);
});

// 3. Absurd quota values (S13)

Deno.test("connectKites() stays up through absurd Quota, QDays and QConns values", async () => {
  await using backend = new Backend();
  await using relay = FakeRelay.serve({
    answer: (request, index) => {
      const head = latin1Text(encodeTunnelResponse(okAnswer(request, index)));
      return latin1Bytes(
        head.slice(0, -2) +
          "X-PageKite-Quota: 99999999999999\r\nX-PageKite-QDays: -5\r\n" +
          "X-PageKite-QConns: 999999999999999999999999\r\n\r\n",
      );
    },
  });
  await using h = startConnector(relay.port, [
    {
      proto: "raw",
      domain: SSH,
      publicPort: 2222,
      secret: SECRET,
      backend: backend.address,
    },
  ]);
  const tunnel = await relay.tunnel(0);
  await tunnel.send(open(5, "raw", SSH, "hello ", { port: 2222 }));

  await tunnel.sendRaw(concat([
    rawFrame("NOOP: 1\r\nPING: q1\r\nQuota: 99999999999999\r\n\r\n!"),
    rawFrame(
      "NOOP: 1\r\nQuota: -99999999999999\r\nQDays: -1\r\nQConns: 99999999999999\r\n\r\n!",
    ),
    // Not numbers: each of these frames is skipped as a whole.
    rawFrame("NOOP: 1\r\nPING: skipped\r\nQuota: lots\r\n\r\n!"),
    rawFrame("NOOP: 1\r\nQuota: 1e999\r\n\r\n!"),
    rawFrame("NOOP: 1\r\nQDays: 9999999999999999999999\r\n\r\n!"),
    rawFrame("NOOP: 1\r\nQConns: NaN\r\n\r\n!"),
    // PONGs for PINGs we never sent.
    rawFrame("NOOP: 1\r\nPONG: not-ours\r\n\r\n!"),
    rawFrame("NOOP: 1\r\nPONG:\r\n\r\n!"),
    // Kite headers with silly numbers inside a NOOP.
    rawFrame("NOOP: 1\r\nX-PageKite-Quota: 99999999999999\r\n\r\n!"),
    rawFrame("NOOP: 1\r\nX-PageKite-Quota: plenty\r\n\r\n!"),
    // Quota headers on a data chunk of a live stream.
    rawFrame(
      "SID: 5\r\nQDays: 99999999999999\r\nQConns: -3\r\nQuota: -1\r\n\r\nworld",
    ),
  ]));
  await tunnel.sync();
  await waitUntil(() => backend.allText() === "hello world", "the data");

  assert.equal(tunnel.filter((c) => c.pong === "q1").length, 1);
  assert.equal(tunnel.filter((c) => c.pong === "skipped").length, 0);
  assert.equal(backend.connections.length, 1);
  assert.equal(tunnel.eofsOf(5).length, 0, "the stream is still open");
  assertUp(h, tunnel);
  // An unreadable advisory X-PageKite-Quota is ignored, not an error.
  assert.deepEqual(h.errors, []);
});

// 4. PING floods (S13)

Deno.test("connectKites() answers each of 5,000 PINGs in one burst with its PONG", async () => {
  await using backend = new Backend();
  await using relay = FakeRelay.serve();
  await using h = startConnector(relay.port, [httpKite(FOO, backend)]);
  const tunnel = await relay.tunnel(0);

  const count = 5000;
  const pings: Chunk[] = [];
  for (let i = 0; i < count; i++) {
    pings.push({ noop: true, ping: `flood-${i}`, body: encoder.encode("!") });
  }
  await tunnel.send(...pings);
  await waitUntil(
    () =>
      tunnel.filter((c) => c.pong?.startsWith("flood-") === true).length >=
        count,
    "5,000 PONGs",
    { timeoutMs: 10_000 },
  );
  await tunnel.sync();

  const pongs = tunnel.filter((c) => c.pong?.startsWith("flood-") === true);
  assert.equal(pongs.length, count, "one PONG per PING");
  assert.deepEqual(
    pongs.map((c) => c.pong),
    pings.map((c) => c.ping),
    "in order, each echoing its PING",
  );
  assert.equal(h.connector.stats().tunnel?.queued, 0);
  assertUp(h, tunnel);
});

Deno.test("connectKites() drops PONGs past tunnelQueueBytes when the relay stops reading", async () => {
  await using backend = new Backend();
  await using relay = FakeRelay.serve();
  const queueBytes = 64 * KiB;
  await using h = startConnector(relay.port, [httpKite(FOO, backend)], {
    tunnelQueueBytes: queueBytes,
  });
  const tunnel = await relay.tunnel(0);
  tunnel.pauseReading();

  // ~17 MB of PINGs with 64-byte values: more PONGs than the socket buffers hold.
  const value = "v".repeat(58);
  const batch: Chunk[] = [];
  for (let i = 0; i < 2000; i++) {
    batch.push({
      noop: true,
      ping: `${value}${String(i).padStart(6, "0")}`,
      body: encoder.encode("!"),
    });
  }
  const frames = concat(batch.map((c) =>
    rawFrame(
      `NOOP: 1\r\nPING: ${c.ping}\r\n\r\n!`,
    )
  ));
  const rounds = 100;
  let sent = 0;
  for (let i = 0; i < rounds; i++) {
    await tunnel.sendRaw(frames);
    sent += frames.length;
  }
  await waitUntil(
    () => (h.connector.stats().tunnel?.bytesIn ?? 0) >= sent,
    "the connector to read every PING",
    { timeoutMs: 20_000 },
  );
  const queued = h.connector.stats().tunnel!.queued;
  assert.ok(
    queued <= queueBytes + 128,
    `queued ${queued} bytes, over tunnelQueueBytes ${queueBytes}`,
  );

  tunnel.resumeReading();
  // PINGs that arrive while the queue is still full get no PONG either.
  await waitUntil(
    () => h.connector.stats().tunnel?.queued === 0,
    "the queue to drain",
    { timeoutMs: 20_000 },
  );
  await tunnel.sync();
  const pongs = tunnel.filter((c) => c.pong?.startsWith(value) === true).length;
  assert.ok(pongs > 0, "PONGs while there was room");
  assert.ok(pongs < rounds * batch.length, `${pongs} PONGs: some dropped`);
  assertUp(h, tunnel);
});

// 5. Forged streams (S10)

Deno.test("connectKites() never dials for a stream of a kite it does not fly", async () => {
  await using web = new Backend();
  await using ssh = new Backend();
  await using canary = new Backend();
  await using relay = FakeRelay.serve();
  await using h = startConnector(relay.port, [
    httpKite(FOO, web),
    {
      proto: "raw",
      domain: SSH,
      publicPort: 22,
      secret: SECRET,
      backend: ssh.address,
    },
  ]);
  const tunnel = await relay.tunnel(0);

  await tunnel.send(
    open(21, "http", "evil.example.com", get("/", "evil.example.com")),
    open(22, "raw", SSH, "SSH-2.0-x\r\n", { port: 23 }),
    open(23, "https", FOO, "\x16\x03\x01\x00\x05hello"),
    open(24, "raw", "127.0.0.1", "", { port: canary.port }),
    open(25, "http", `${FOO}.evil.net`, get("/", `${FOO}.evil.net`)),
    open(26, "websocket", "evil.example.com", get("/ws", "evil.example.com")),
    open(27, "raw", "evil.example.com", "x", { port: 22 }),
  );
  await tunnel.sync();
  await delay(100);

  assert.equal(web.connections.length, 0);
  assert.equal(ssh.connections.length, 0);
  assert.equal(canary.connections.length, 0);
  for (const sid of [21, 25, 26]) {
    const page = tunnel.dataOf(sid);
    assert.match(page, /^HTTP\/1\.1 503 Unavailable\r\n/);
    assert.ok(page.includes("Sorry! (be)"));
    assertClosedOnce(tunnel, sid);
  }
  assert.ok(tunnel.dataOf(21).includes("<b>evil.example.com</b>"));
  assert.deepEqual(latin1Bytes(tunnel.dataOf(23)), TLS_ALERT);
  assertClosedOnce(tunnel, 23);
  for (const sid of [22, 24, 27]) {
    assert.equal(tunnel.dataOf(sid), "", `EOF only for raw SID ${sid}`);
    assertClosedOnce(tunnel, sid);
  }
  assertUp(h, tunnel);
});

// 6. Smuggling through the tunnel (S6)

const SMUGGLING: [name: string, request: string][] = [
  [
    "CL and TE",
    "POST / HTTP/1.1\r\nHost: foo\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: foo\r\n\r\n",
  ],
  [
    "TE and CL",
    "POST / HTTP/1.1\r\nHost: foo\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
  ],
  [
    "two Content-Lengths",
    "POST / HTTP/1.1\r\nHost: foo\r\nContent-Length: 4\r\nContent-Length: 30\r\n\r\nabcdGET /admin HTTP/1.1\r\n\r\n",
  ],
  [
    "TE xchunked",
    "POST / HTTP/1.1\r\nHost: foo\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
  ],
  [
    "TE chunked, identity",
    "POST / HTTP/1.1\r\nHost: foo\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
  ],
  [
    "obs-fold in TE",
    "POST / HTTP/1.1\r\nHost: foo\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
  ],
  [
    "space before colon",
    "POST / HTTP/1.1\r\nHost: foo\r\nContent-Length : 4\r\n\r\nabcd",
  ],
  ["NUL in a header", "GET / HTTP/1.1\r\nHost: foo\r\nX-A: a\x00b\r\n\r\n"],
  ["bare CR in a header", "GET / HTTP/1.1\r\nHost: foo\r\nX-A: a\rb\r\n\r\n"],
  ["two Hosts", "GET / HTTP/1.1\r\nHost: foo\r\nHost: bar\r\n\r\n"],
  [
    "Upgrade h2c",
    "GET / HTTP/1.1\r\nHost: foo\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
  ],
  [
    "TE in HTTP/1.0",
    "POST / HTTP/1.0\r\nHost: foo\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  ],
];

Deno.test("connectKites() answers smuggling attempts with 400 and forwards none of them", async (t) => {
  await using backend = new Backend();
  await using relay = FakeRelay.serve();
  await using h = startConnector(relay.port, [httpKite(FOO, backend)]);
  const tunnel = await relay.tunnel(0);

  await t.step(
    "a valid request before CL+TE on one stream passes alone",
    async () => {
      await tunnel.send(open(31, "http", FOO, get("/ok") + SMUGGLING[0]![1]));
      await tunnel.waitFor((c) => c.sid === 31 && c.eof === "RW", "EOF");
      await waitUntil(() => backend.connections[0]?.ended === true, "closed");
      assert.match(tunnel.dataOf(31), /^HTTP\/1\.1 400 Bad Request\r\n/);
      assertClosedOnce(tunnel, 31);
      const seen = backend.connections[0]!.text();
      assert.match(
        seen,
        /^GET \/ok HTTP\/1\.1\r\nX-Forwarded-For: 1\.2\.3\.4\r\n/,
      );
      assert.ok(!seen.includes("POST"), seen);
      assert.ok(!seen.includes("/admin"), seen);
    },
  );

  await t.step(
    "a bad chunk size: 400, nothing after it forwarded",
    async () => {
      // The head was fine and went through; the body is refused.
      const before = backend.connections.length;
      await tunnel.send(open(
        32,
        "http",
        FOO,
        "POST / HTTP/1.1\r\nHost: foo\r\nTransfer-Encoding: chunked\r\n\r\n" +
          "0\n\r\nGET /admin HTTP/1.1\r\n\r\n",
      ));
      await tunnel.waitFor((c) => c.sid === 32 && c.eof === "RW", "EOF");
      assert.match(tunnel.dataOf(32), /^HTTP\/1\.1 400 Bad Request\r\n/);
      assertClosedOnce(tunnel, 32);
      await waitUntil(
        () => backend.connections[before]?.ended === true,
        "closed",
      );
      const seen = backend.connections[before]!.text();
      assert.ok(seen.endsWith("Transfer-Encoding: chunked\r\n\r\n"), seen);
      assert.ok(!seen.includes("/admin"), seen);
    },
  );

  let sid = 40;
  for (const [name, request] of SMUGGLING) {
    await t.step(`${name}: 400, and no byte reaches the service`, async () => {
      const before = backend.connections.length;
      sid++;
      // Split after the request line, as a slow user would send it.
      const cut = request.indexOf("\r\n") + 2;
      await tunnel.send(open(sid, "http", FOO, request.slice(0, cut)));
      await tunnel.send({ sid, body: latin1Bytes(request.slice(cut)) });
      await tunnel.waitFor((c) => c.sid === sid && c.eof === "RW", "EOF");
      assert.match(tunnel.dataOf(sid), /^HTTP\/1\.1 400 Bad Request\r\n/);
      assertClosedOnce(tunnel, sid);
      await waitUntil(
        () => backend.connections.slice(before).every((c) => c.ended),
        "the service connection closed",
      );
      for (const c of backend.connections.slice(before)) {
        assert.equal(c.text(), "", "bytes of a refused request");
      }
    });
  }
  assertUp(h, tunnel);
});

// 7. Local service down (§5.2)

Deno.test("connectKites() answers a stream whose service is down per protocol", async () => {
  const port = closedPort();
  const down = { host: "127.0.0.1", port };
  await using relay = FakeRelay.serve();
  await using h = startConnector(relay.port, [
    {
      proto: "http",
      domain: "down.example.com",
      secret: SECRET,
      backend: down,
    },
    {
      proto: "https",
      domain: "tls.example.com",
      secret: SECRET,
      backend: down,
    },
    {
      proto: "raw",
      domain: SSH,
      publicPort: 2222,
      secret: SECRET,
      backend: down,
    },
    {
      proto: "http",
      domain: "none.example.com",
      secret: SECRET,
      backend: null,
    },
  ]);
  const tunnel = await relay.tunnel(0);

  await tunnel.send(
    open(51, "http", "down.example.com", get("/", "down.example.com")),
    open(52, "https", "tls.example.com", "\x16\x03\x01\x00\x05hello"),
    open(53, "raw", SSH, "SSH-2.0-x\r\n", { port: 2222 }),
    open(54, "http", "none.example.com", get("/", "none.example.com")),
  );
  for (const sid of [51, 52, 53, 54]) {
    await tunnel.waitFor((c) => c.sid === sid && c.eof === "RW", `EOF ${sid}`);
  }
  await tunnel.sync();

  for (const [sid, host] of [[51, "down"], [54, "none"]] as const) {
    const page = tunnel.dataOf(sid);
    assert.match(page, /^HTTP\/1\.1 503 Unavailable\r\n/);
    assert.ok(page.includes("<h1>Sorry! (be)</h1>"));
    assert.ok(page.includes(`<b>${host}.example.com</b>`));
    assert.ok(page.includes("Connection: close\r\n"));
    assertClosedOnce(tunnel, sid);
  }
  assert.deepEqual(latin1Bytes(tunnel.dataOf(52)), TLS_ALERT);
  assertClosedOnce(tunnel, 52);
  assert.equal(tunnel.dataOf(53), "");
  assertClosedOnce(tunnel, 53);
  assert.equal(h.connector.stats().streams.length, 0);
  assertUp(h, tunnel);
});

// 8. Kite options end to end (§5.1, §5.3)

const OK_RESPONSE = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/** A service that answers OK_RESPONSE once a request head is complete. */
function answeringBackend(): Backend {
  const answered = new WeakSet<Deno.TcpConn>();
  return new Backend(async (c) => {
    if (answered.has(c.conn) || !c.text().includes("\r\n\r\n")) return;
    answered.add(c.conn);
    await c.write(OK_RESPONSE);
  });
}

Deno.test("connectKites() applies allowIps, basicAuth, rewriteHost, rawHeaders and proxyProtocol", async (t) => {
  await using ipSvc = answeringBackend();
  await using authSvc = answeringBackend();
  await using rwSvc = answeringBackend();
  await using rawSvc = answeringBackend();
  await using ppSvc = answeringBackend();
  await using ppRawSvc = new Backend();
  await using relay = FakeRelay.serve();
  await using h = startConnector(relay.port, [
    httpKite("ip.example.com", ipSvc, { allowIps: ["10.1.", "192.0.2.7"] }),
    httpKite("auth.example.com", authSvc, {
      basicAuth: { user: "alice", password: "wonder land" },
    }),
    httpKite("rw.example.com", rwSvc, { rewriteHost: true }),
    httpKite("rw2.example.com", rwSvc, { rewriteHost: "internal.test" }),
    httpKite("raw.example.com", rawSvc, { rawHeaders: true }),
    httpKite("pp.example.com", ppSvc, { proxyProtocol: true }),
    {
      proto: "raw",
      domain: "pp.example.com",
      publicPort: 2222,
      secret: SECRET,
      backend: ppRawSvc.address,
      proxyProtocol: true,
    },
  ]);
  const tunnel = await relay.tunnel(0);
  const IP = "ip.example.com";

  await t.step(
    "allowIps refuses other users with 503 and no dial",
    async () => {
      await tunnel.send(
        open(61, "http", IP, get("/", IP), { remoteIp: "10.2.3.4" }),
        open(62, "http", IP, get("/", IP), { remoteIp: "192.0.2.70" }),
      );
      for (const sid of [61, 62]) {
        await tunnel.waitFor((c) => c.sid === sid && c.eof === "RW", "EOF");
        assert.match(tunnel.dataOf(sid), /^HTTP\/1\.1 503 Unavailable\r\n/);
        assertClosedOnce(tunnel, sid);
      }
      await delay(50);
      assert.equal(ipSvc.connections.length, 0);
    },
  );

  await t.step(
    "allowIps lets listed users through (mapped IPv4 too)",
    async () => {
      await tunnel.send(
        open(63, "http", IP, get("/a", IP), { remoteIp: "10.1.2.3" }),
        open(64, "http", IP, get("/b", IP), { remoteIp: "::ffff:192.0.2.7" }),
      );
      for (const sid of [63, 64]) {
        await waitUntil(
          () => tunnel.dataOf(sid) === OK_RESPONSE,
          `answer ${sid}`,
        );
      }
      assert.equal(ipSvc.connections.length, 2);
      assert.ok(ipSvc.allText().includes("X-Forwarded-For: 10.1.2.3\r\n"));
      assert.ok(
        ipSvc.allText().includes("X-Forwarded-For: ::ffff:192.0.2.7\r\n"),
      );
    },
  );

  await t.step(
    "basicAuth answers 401 without credentials, passes with them",
    async () => {
      const AUTH = "auth.example.com";
      await tunnel.send(open(65, "http", AUTH, get("/", AUTH)));
      await tunnel.send(open(
        66,
        "http",
        AUTH,
        get("/", AUTH, "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n"),
      ));
      for (const sid of [65, 66]) {
        await tunnel.waitFor((c) => c.sid === sid && c.eof === "RW", "EOF");
        const page = tunnel.dataOf(sid);
        assert.match(page, /^HTTP\/1\.1 401 Unauthorized\r\n/);
        assert.ok(page.includes("WWW-Authenticate: Basic realm=PageKite\r\n"));
        assertClosedOnce(tunnel, sid);
      }
      await waitUntil(
        () => authSvc.connections.every((c) => c.ended),
        "refused connections closed",
      );
      assert.equal(authSvc.allText(), "", "no byte of a refused request");
      const good = btoa("alice:wonder land");
      await tunnel.send(open(
        67,
        "http",
        AUTH,
        get("/secret", AUTH, `Authorization: Basic ${good}\r\n`),
      ));
      await waitUntil(() => tunnel.dataOf(67) === OK_RESPONSE, "answer");
      assert.ok(authSvc.allText().startsWith("GET /secret HTTP/1.1\r\n"));
    },
  );

  await t.step(
    "rewriteHost sends the service's name, keeps X-Old-Host",
    async () => {
      await tunnel.send(
        open(68, "http", "rw.example.com", get("/", "rw.example.com")),
      );
      await waitUntil(() => tunnel.dataOf(68) === OK_RESPONSE, "answer 68");
      await tunnel.send(
        open(69, "http", "rw2.example.com", get("/", "rw2.example.com")),
      );
      await waitUntil(() => tunnel.dataOf(69) === OK_RESPONSE, "answer 69");
      const [first, second] = rwSvc.connections.map((c) => c.text());
      assert.ok(first!.includes("Host: 127.0.0.1\r\n"), first);
      assert.ok(first!.includes("X-Old-Host: rw.example.com\r\n"), first);
      assert.doesNotMatch(first!, /\nHost: rw\.example\.com\r\n/);
      assert.ok(second!.includes("Host: internal.test\r\n"), second);
      assert.ok(second!.includes("X-Old-Host: rw2.example.com\r\n"), second);
    },
  );

  await t.step("rawHeaders passes requests unchanged", async () => {
    const request = get(
      "/raw",
      "raw.example.com",
      "X-Forwarded-For: 6.6.6.6\r\n",
    );
    await tunnel.send(open(70, "http", "raw.example.com", request));
    await waitUntil(() => tunnel.dataOf(70) === OK_RESPONSE, "answer");
    assert.equal(rawSvc.connections[0]!.text(), request);
  });

  await t.step(
    "proxyProtocol puts the PROXY v1 line first (http)",
    async () => {
      await tunnel.send(
        open(71, "http", "pp.example.com", get("/pp", "pp.example.com")),
      );
      await waitUntil(() => tunnel.dataOf(71) === OK_RESPONSE, "answer");
      assert.equal(
        ppSvc.connections[0]!.text(),
        "PROXY TCP4 1.2.3.4 0.0.0.0 5555 80\r\n" +
          "GET /pp HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n" +
          "X-Forwarded-Proto: http\r\nX-PageKite-Port: 80\r\n" +
          "Host: pp.example.com\r\n\r\n",
      );
    },
  );

  await t.step("proxyProtocol puts the PROXY v1 line first (raw)", async () => {
    await tunnel.send(open(72, "raw", "pp.example.com", "hello", {
      port: 2222,
      remoteIp: "::ffff:192.0.2.7",
      remotePort: 40000,
    }));
    await tunnel.send({ sid: 72, body: encoder.encode(" world") });
    await waitUntil(
      () => ppRawSvc.allText().endsWith("world"),
      "raw data",
    );
    assert.equal(
      ppRawSvc.allText(),
      "PROXY TCP4 192.0.2.7 0.0.0.0 40000 2222\r\nhello world",
    );
  });

  assertUp(h, tunnel);
  assert.deepEqual(h.errors, []);
});

// 9. Reconnection (§1.6, §6.4)

Deno.test("connectKites() reconnects with X-PageKite-Replace within its backoff", async () => {
  await using backend = new Backend();
  await using relay = FakeRelay.serve();
  await using h = startConnector(relay.port, [httpKite(FOO, backend)], {
    reconnect: { initialMs: 40, maxMs: 80 },
    random: () => 0.999,
  });
  const lifecycle = () =>
    h.events.filter((e) => e.type === "connected" || e.type === "disconnected");

  const first = await relay.tunnel(0);
  assert.equal(first.request!.replace, undefined);
  await waitUntil(() => lifecycle().length === 1, "connected");

  let closedAt = Date.now();
  first.close();
  const second = await relay.tunnel(1);
  let took = Date.now() - closedAt;
  assert.equal(second.request!.replace, "session-1");
  assert.ok(took >= 30 && took < 1000, `reconnected after ${took} ms`);

  await waitUntil(() => lifecycle().length === 3, "connected again");
  closedAt = Date.now();
  second.close();
  const third = await relay.tunnel(2);
  took = Date.now() - closedAt;
  assert.equal(third.request!.replace, "session-2");
  assert.ok(took >= 70 && took < 1000, `reconnected after ${took} ms`);
  await waitUntil(() => lifecycle().length === 5, "connected a third time");

  assert.deepEqual(
    lifecycle().map((e) =>
      e.type === "connected"
        ? `connected ${e.sessionId}`
        : `disconnected ${e.retryInMs}`
    ),
    [
      "connected session-1",
      "disconnected 39",
      "connected session-2",
      "disconnected 79",
      "connected session-3",
    ],
  );
  const stats = h.connector.stats();
  assert.equal(stats.connects, 3);
  assert.equal(stats.failures, 2);
  assert.equal(stats.connected, true);
  assert.deepEqual(stats.kites.map((k) => k.status), ["flying"]);

  // The new tunnel carries streams.
  await third.send(open(3, "http", FOO, get("/back")));
  await waitUntil(() => backend.allText().includes("GET /back"), "/back");
});

// 10. Dead relay (§5.4)

Deno.test("connectKites() pings a silent relay, then declares it dead and reconnects", async () => {
  await using backend = new Backend();
  await using relay = FakeRelay.serve();
  await using h = startConnector(relay.port, [httpKite(FOO, backend)], {
    pingIntervalMs: 100,
    pingGraceMs: 150,
  });

  const first = await relay.tunnel(0);
  const started = Date.now();
  await waitUntil(() => first.ended, "the connector to drop the tunnel", {
    timeoutMs: 5000,
  });
  const took = first.endedAt! - started;
  assert.ok(took >= 200 && took < 2000, `declared dead after ${took} ms`);
  const pings = first.filter((c) => c.noop === true && c.ping !== undefined);
  assert.equal(pings.length, 1, "one PING, not one per tick");
  const down = h.events.find((e) => e.type === "disconnected");
  assert.ok(
    down?.type === "disconnected" && /dead/.test(down.reason),
    down?.type,
  );

  // A relay that answers PINGs keeps its tunnel.
  const second = await relay.tunnel(1);
  const answered = new Set<string>();
  const pong = async (tunnel: FakeTunnel) => {
    for (const c of tunnel.filter((c) => c.ping !== undefined)) {
      if (answered.has(c.ping!)) continue;
      answered.add(c.ping!);
      await tunnel.send({
        noop: true,
        pong: c.ping!,
        body: encoder.encode("!"),
      });
    }
  };
  const until = Date.now() + 800;
  while (Date.now() < until) {
    await pong(second);
    await delay(10);
  }
  assert.equal(second.ended, false, "a tunnel with PONGs stays up");
  assert.ok(answered.size >= 3, `${answered.size} PINGs on a quiet tunnel`);
  assert.ok(h.connector.stats().tunnel?.rttMs !== undefined);
  // Silence again: dead again.
  await waitUntil(() => second.ended, "the second tunnel to be dropped");
  await relay.tunnel(2);
  assert.equal(h.connector.stats().connects, 3);
});

// 11. Shutdown

Deno.test("Connector.shutdown() ends the tunnel, the streams and the events", async () => {
  await using backend = new Backend();
  await using relay = FakeRelay.serve();
  const h = startConnector(relay.port, [
    {
      proto: "raw",
      domain: SSH,
      publicPort: 22,
      secret: SECRET,
      backend: backend.address,
    },
  ]);
  const tunnel = await relay.tunnel(0);
  await tunnel.send(open(1, "raw", SSH, "hello", { port: 22 }));
  await waitUntil(() => backend.allText() === "hello", "stream open");
  await backend.connections[0]!.write("hi back");
  await waitUntil(() => tunnel.dataOf(1) === "hi back", "data back");

  const started = Date.now();
  await h.connector.shutdown();
  await h.connector.finished;
  await h[Symbol.asyncDispose](); // ends the events iteration
  assert.ok(Date.now() - started < 1000);
  await waitUntil(() => tunnel.ended, "the relay to see the tunnel close");
  await waitUntil(() => backend.connections[0]!.ended, "the stream closed");
  assert.equal(h.connector.stats().connected, false);
  assert.deepEqual(h.connector.stats().streams, []);
  assert.equal(h.events.at(-1)?.type, "connected");
  // Idempotent.
  await h.connector.shutdown();
  assert.equal(relay.tunnels.length, 1, "no reconnection after shutdown");
});

Deno.test("connectKites() stops when its signal aborts, also while waiting to reconnect", async (t) => {
  await t.step("aborting a live connector", async () => {
    await using relay = FakeRelay.serve();
    const controller = new AbortController();
    await using h = startConnector(relay.port, [httpKite(FOO, null)], {
      signal: controller.signal,
    });
    const tunnel = await relay.tunnel(0);
    controller.abort();
    await h.connector.finished;
    await waitUntil(() => tunnel.ended, "tunnel closed");
  });

  await t.step("an aborted signal never flies a kite", async () => {
    await using relay = FakeRelay.serve();
    await using h = startConnector(relay.port, [httpKite(FOO, null)], {
      signal: AbortSignal.abort(),
    });
    await h.connector.finished;
    await delay(50);
    assert.equal(relay.tunnels.filter((t) => t.answered).length, 0);
    assert.equal(h.connector.stats().connects, 0);
  });

  await t.step("shutdown during a long backoff returns at once", async () => {
    await using h = startConnector(closedPort(), [httpKite(FOO, null)], {
      reconnect: { initialMs: 60_000, maxMs: 60_000 },
      random: () => 0.5,
    });
    await waitUntil(
      () => h.events.some((e) => e.type === "disconnected"),
      "first failure",
    );
    const started = Date.now();
    await h.connector.shutdown();
    assert.ok(Date.now() - started < 500);
    assert.equal(h.connector.stats().failures, 1);
  });
});

// Against our own relay

interface Origin extends AsyncDisposable {
  port: number;
}

/** Deterministic bytes over 16 letters: compressible, but not trivially. */
function payload(size: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let x = seed | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = 0x61 + (x & 0x0f);
  }
  return out;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function startOrigin(download: Uint8Array<ArrayBuffer>): Origin {
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, async (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/") return new Response("hello from the origin");
    if (url.pathname === "/headers") {
      const names = [
        "host",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-pagekite-port",
        "x-old-x-forwarded-for",
      ];
      return Response.json(
        Object.fromEntries(names.map((n) => [n, request.headers.get(n)])),
      );
    }
    if (url.pathname === "/download") return new Response(download);
    if (url.pathname === "/upload" && request.body !== null) {
      const hash = createHash("sha256");
      let length = 0;
      for await (const part of request.body) {
        hash.update(part);
        length += part.length;
      }
      return Response.json({ length, sha256: hash.digest("hex") });
    }
    return new Response("not found", { status: 404 });
  });
  return {
    port: server.addr.port,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** Reads a response head on `conn`; the head and the bytes after it. */
async function readHead(
  conn: Deno.Conn,
): Promise<{ head: string; rest: Uint8Array }> {
  const buffer = new Uint8Array(64 * KiB);
  let bytes: Uint8Array = new Uint8Array(0);
  for (;;) {
    const text = latin1Text(bytes);
    const end = text.indexOf("\r\n\r\n");
    if (end !== -1) {
      return { head: text.slice(0, end), rest: bytes.slice(end + 4) };
    }
    if (bytes.length > 64 * KiB) throw new Error("response head too long");
    const n = await conn.read(buffer);
    if (n === null) throw new Error("closed before the response head");
    bytes = concat([bytes, buffer.subarray(0, n)]);
  }
}

/** GETs `path` and hashes the body as it streams in. */
async function download(
  port: number,
  path: string,
): Promise<{ length: number; sha256: string }> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(
    conn,
    encoder.encode(`GET ${path} HTTP/1.1\r\nHost: ${FOO}\r\n\r\n`),
  );
  const { head, rest } = await readHead(conn);
  assert.match(head, /^HTTP\/1\.1 200 /);
  const size = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
  const hash = createHash("sha256").update(rest);
  let length = rest.length;
  const buffer = new Uint8Array(256 * KiB);
  while (length < size) {
    const n = await conn.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
    length += n;
  }
  return { length, sha256: hash.digest("hex") };
}

/** POSTs `body` in 1 MiB writes; the origin's answer. */
async function upload(
  port: number,
  body: Uint8Array,
): Promise<{ length: number; sha256: string }> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(
    conn,
    encoder.encode(
      `POST /upload HTTP/1.1\r\nHost: ${FOO}\r\n` +
        `Content-Length: ${body.length}\r\n\r\n`,
    ),
  );
  for (let at = 0; at < body.length; at += MiB) {
    await writeAll(conn, body.subarray(at, at + MiB));
  }
  const { head, rest } = await readHead(conn);
  assert.match(head, /^HTTP\/1\.1 200 /);
  const size = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
  let bytes = rest;
  const buffer = new Uint8Array(4 * KiB);
  while (bytes.length < size) {
    const n = await conn.read(buffer);
    if (n === null) break;
    bytes = concat([bytes, buffer.subarray(0, n)]);
  }
  return JSON.parse(latin1Text(bytes));
}

for (const zchunks of [true, false]) {
  Deno.test(`connectKites() relays through serveRelay() to a Deno.serve origin (ZChunks ${zchunks ? "on" : "off"})`, async (t) => {
    const big = payload(64 * MiB, zchunks ? 7 : 11);
    await using origin = startOrigin(big);
    await using relay = serveRelay({
      listen: [{ hostname: "127.0.0.1", port: 0 }],
      kites: [{ domain: "*.example.com", secret: SECRET }],
    });
    const port = relay.addrs[0]!.port;
    await using h = startConnector(port, [{
      proto: "http",
      domain: FOO,
      secret: SECRET,
      backend: { host: "127.0.0.1", port: origin.port },
    }], { zchunks });
    await waitUntil(
      () => h.connector.stats().kites[0]?.status === "flying",
      "the kite to fly",
    );
    await waitUntil(
      () => relay.stats().tunnels.some((t) => t.kites.length > 0),
      "the relay to list the kite",
    );

    await t.step("GET", async () => {
      using client = await HttpClient.connect(port);
      const response = await client.request({ host: FOO });
      assert.equal(response.status, 200);
      assert.equal(latin1Text(response.body), "hello from the origin");
    });

    await t.step("1 MiB POST", async () => {
      const body = payload(MiB, 3);
      using client = await HttpClient.connect(port);
      const response = await client.request({
        method: "POST",
        path: "/upload",
        host: FOO,
        body,
      });
      assert.equal(response.status, 200);
      assert.deepEqual(JSON.parse(latin1Text(response.body)), {
        length: MiB,
        sha256: sha256Hex(body),
      });
    });

    await t.step("forwarding headers on each keep-alive request", async () => {
      using client = await HttpClient.connect(port);
      const first = await client.request({ path: "/headers", host: FOO });
      const second = await client.request({
        path: "/headers",
        host: FOO,
        headers: [["X-Forwarded-For", "6.6.6.6"]],
      });
      for (const response of [first, second]) {
        assert.equal(response.status, 200);
        const seen = JSON.parse(latin1Text(response.body));
        assert.equal(seen.host, FOO);
        assert.match(seen["x-forwarded-for"], /^(::ffff:)?127\.0\.0\.1$/);
        assert.equal(seen["x-forwarded-proto"], "http");
        assert.equal(seen["x-pagekite-port"], String(port));
      }
      assert.equal(
        JSON.parse(latin1Text(first.body))["x-old-x-forwarded-for"],
        null,
      );
      assert.equal(
        JSON.parse(latin1Text(second.body))["x-old-x-forwarded-for"],
        "6.6.6.6",
      );
    });

    await t.step("64 MiB download", async () => {
      const result = await download(port, "/download");
      assert.deepEqual(result, { length: big.length, sha256: sha256Hex(big) });
    });

    await t.step("64 MiB upload", async () => {
      const result = await upload(port, big);
      assert.deepEqual(result, { length: big.length, sha256: sha256Hex(big) });
    });

    const stats = h.connector.stats();
    assert.equal(stats.connects, 1);
    if (zchunks) {
      assert.ok(
        stats.tunnel!.compressedFramesOut > 0,
        "compressed to the relay",
      );
      assert.ok(
        stats.tunnel!.compressedFramesIn > 0,
        "compressed from the relay",
      );
    } else {
      assert.equal(stats.tunnel!.compressedFramesOut, 0);
      assert.equal(stats.tunnel!.compressedFramesIn, 0);
    }
    assert.deepEqual(h.errors, []);
  });
}

Deno.test("Connector.addKite() and removeKite() change the kites of a live connector", async (t) => {
  for (const addKites of [true, false]) {
    await t.step(`addKites: ${addKites}`, async () => {
      await using origin = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        (request) => new Response(`host=${request.headers.get("host")}`),
      );
      await using relay = serveRelay({
        listen: [{ hostname: "127.0.0.1", port: 0 }],
        kites: [
          { domain: "a.example.com", secret: "sa" },
          { domain: "b.example.com", secret: "sb" },
        ],
      });
      const port = relay.addrs[0]!.port;
      const backend = { host: "127.0.0.1", port: origin.addr.port };
      await using connector = connectKites({
        relay: { hostname: "127.0.0.1", port },
        kites: [{
          proto: "http",
          domain: "a.example.com",
          secret: "sa",
          backend,
        }],
        addKites,
        reconnect: { initialMs: 50, maxMs: 100 },
      });
      const flying = (): string[] =>
        relay.stats().tunnels.flatMap((tunnel) => tunnel.kites).sort();
      await waitUntil(() => flying().length === 1, "kite a flies");
      connector.addKite({
        proto: "http",
        domain: "b.example.com",
        secret: "sb",
        backend,
      });
      await waitUntil(() => flying().length === 2, "kite b flies");
      assert.deepEqual(flying(), ["http:a.example.com", "http:b.example.com"]);
      // In-tunnel when the relay takes AddKites, else by reconnecting.
      assert.equal(connector.stats().connects, addKites ? 1 : 2);
      assert.equal(connector.stats().failures, 0);
      const b = await httpRequest(port, { host: "b.example.com" });
      assert.equal(new TextDecoder().decode(b.body), "host=b.example.com");
      assert.throws(
        () =>
          connector.addKite({
            proto: "http",
            domain: "b.example.com",
            secret: "sb",
            backend,
          }),
        /^TypeError: Cannot add kite: http:b\.example\.com flies already$/,
      );
      assert.equal(connector.removeKite("http", "a.example.com"), true);
      assert.equal(connector.removeKite("http", "nosuch.example.com"), false);
      await waitUntil(
        () => flying().length === 1 && flying()[0] === "http:b.example.com",
        "only kite b flies",
      );
      const a = await httpRequest(port, { host: "a.example.com" });
      assert.equal(a.status, 503);
      assert.deepEqual(connector.stats().kites.map((k) => k.kite), [
        "http:b.example.com",
      ]);
    });
  }
});
