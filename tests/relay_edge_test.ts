// Copyright 2026 the Kitewire authors. MIT license.
// The relay's edge with our own connector (docs/reliability.md §3.2, §4.3):
// a silent dead tunnel made by the fault proxy's blackhole (F3), and
// graceful shutdown with a slow streaming response in flight.
import assert from "node:assert/strict";
import { connectKites, type Connector } from "../connector/mod.ts";
import {
  type RelayOptions,
  type RelayServer,
  serveRelay,
} from "../relay/mod.ts";
import { FaultProxy } from "./_fault_proxy.ts";
import { httpRequest } from "./_http.ts";

const SECRET = "s3cret";
const FOO = "foo.example.com";
const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

function startRelay(options: RelayOptions = {}): RelayServer {
  return serveRelay({
    listen: [{ hostname: "127.0.0.1", port: 0 }],
    kites: [{ domain: "*.example.com", secret: SECRET }],
    ...options,
  });
}

/** An origin whose `/stream` sends `count` chunks, one every `everyMs`. */
function startOrigin(
  count: number,
  everyMs: number,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => {
      if (new URL(request.url).pathname !== "/stream") {
        return new Response("hello");
      }
      let sent = 0;
      let timer: ReturnType<typeof setInterval> | undefined;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          timer = setInterval(() => {
            try {
              controller.enqueue(encoder.encode(`piece ${sent++}\n`));
              if (sent >= count) {
                clearInterval(timer);
                controller.close();
              }
            } catch {
              clearInterval(timer);
            }
          }, everyMs);
        },
        cancel() {
          clearInterval(timer);
        },
      });
      return new Response(body, {
        headers: { "content-type": "text/plain" },
      });
    },
  );
}

function startConnector(
  relayPort: number,
  originPort: number,
  extra: Partial<Parameters<typeof connectKites>[0]> = {},
): Connector {
  return connectKites({
    relay: { hostname: "127.0.0.1", port: relayPort },
    kites: [{
      proto: "http",
      domain: FOO,
      secret: SECRET,
      backend: { host: "127.0.0.1", port: originPort },
    }],
    reconnect: { initialMs: 50, maxMs: 200 },
    onError: () => {},
    ...extra,
  });
}

async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await condition()) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await delay(20);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a GET through the relay is answered by the origin. */
async function served(port: number): Promise<boolean> {
  try {
    const r = await httpRequest(port, { host: FOO });
    return r.status === 200;
  } catch {
    return false;
  }
}

/** A user that started a download of `/stream`. */
async function startDownload(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head =
    `GET /stream HTTP/1.1\r\nHost: ${FOO}\r\nConnection: close\r\n\r\n`;
  await conn.write(encoder.encode(head));
  return conn;
}

/**
 * Reads until EOF or an error; the text and how it ended. Gives up (as
 * "hang") after `timeoutMs`.
 */
async function readAll(
  conn: Deno.Conn,
  timeoutMs: number,
  onData?: (text: string) => void,
): Promise<{ text: string; end: "eof" | "error" | "hang" }> {
  const buffer = new Uint8Array(16 * 1024);
  let text = "";
  const timer = setTimeout(() => conn.close(), timeoutMs);
  let timedOut = false;
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return { text, end: "eof" };
      text += latin1.decode(buffer.subarray(0, n));
      onData?.(text);
    }
  } catch {
    timedOut = Date.now() >= deadline - 5;
    return { text, end: timedOut ? "hang" : "error" };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("serveRelay() closes a blackholed tunnel within ping interval + grace, and the connector comes back", async () => {
  const pingIntervalMs = 300;
  const pingGraceMs = 300;
  await using origin = startOrigin(10_000, 20);
  await using relay = startRelay({ pingIntervalMs, pingGraceMs });
  await using proxy = FaultProxy.listen({
    target: { port: relay.addrs[0]!.port },
  });
  await using connector = startConnector(proxy.port, origin.addr.port, {
    pingIntervalMs,
    pingGraceMs,
    handshakeTimeoutMs: 1000,
  });
  const port = relay.addrs[0]!.port;
  await waitUntil(() => served(port), "the kite to fly");
  assert.equal(relay.stats().totals.tunnels, 1);

  // Two users mid-download.
  const users = [await startDownload(port), await startDownload(port)];
  const got = users.map(() => Promise.withResolvers<void>());
  const reads = users.map((user, i) =>
    readAll(user, 10_000, (text) => {
      if (text.includes("piece 3\n")) got[i]!.resolve();
    })
  );
  await Promise.all(got.map((g) => g.promise));

  const blackholedAt = Date.now();
  proxy.blackhole();
  await waitUntil(
    () => relay.stats().totals.tunnels === 0,
    "the relay to close the dead tunnel",
  );
  const detectedMs = Date.now() - blackholedAt;
  assert.ok(
    detectedMs <= pingIntervalMs + pingGraceMs + 500,
    `dead tunnel closed after ${detectedMs} ms`,
  );
  // Streams on it failed promptly: every user got EOF or an error, none hang.
  for (const [i, read] of reads.entries()) {
    const { text, end } = await read;
    users[i]!.close();
    assert.notEqual(end, "hang");
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.ok(!text.includes("piece 9999\n"), "the download was cut");
  }
  const failedMs = Date.now() - blackholedAt;
  assert.ok(failedMs <= pingIntervalMs + pingGraceMs + 1000, `${failedMs} ms`);

  // Lifted: the connector reconnects and the kite flies again.
  await delay(200);
  proxy.blackhole(false);
  await waitUntil(() => served(port), "the connector to reconnect", 10_000);
  assert.equal(relay.stats().totals.tunnels, 1);
  assert.ok(connector.stats().connects >= 2);
});

Deno.test("RelayServer.shutdown() lets an in-flight stream finish within the grace", async () => {
  await using origin = startOrigin(10, 100); // about one second
  const relay = startRelay({ shutdownGraceMs: 5000 });
  const port = relay.addrs[0]!.port;
  await using _connector = startConnector(port, origin.addr.port);
  try {
    await waitUntil(() => served(port), "the kite to fly");
    const user = await startDownload(port);
    const started = Promise.withResolvers<void>();
    const read = readAll(user, 10_000, (text) => {
      if (text.includes("piece 0\n")) started.resolve();
    });
    await started.promise;

    const t0 = Date.now();
    let stopped = false;
    const stopping = relay.shutdown().then(() => stopped = true);
    // New connections are refused during the grace.
    // (A connect racing the listener's close may see a reset instead.)
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port }),
      (e) =>
        e instanceof Deno.errors.ConnectionRefused ||
        e instanceof Deno.errors.ConnectionReset,
    );
    await delay(50);
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port }),
      Deno.errors.ConnectionRefused,
    );
    assert.equal(stopped, false, "the relay waits for the stream");

    const { text, end } = await read;
    user.close();
    assert.equal(end, "eof");
    assert.ok(text.includes("piece 9\n"), "the whole response arrived");
    assert.ok(text.endsWith("0\r\n\r\n"), "with its last chunk");
    await stopping;
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 5000, `shutdown took ${elapsed} ms`);
    assert.equal(relay.stats().totals.tunnels, 0);
  } finally {
    await relay.shutdown();
  }
});

Deno.test("RelayServer.shutdown() a second time, or an abort, closes everything at once", async (t) => {
  await using origin = startOrigin(100_000, 50); // never ends in time

  for (const how of ["second call", "signal abort"] as const) {
    await t.step(how, async () => {
      const controller = new AbortController();
      const relay = startRelay({ signal: controller.signal });
      const port = relay.addrs[0]!.port;
      await using connector = startConnector(port, origin.addr.port);
      try {
        await waitUntil(() => served(port), "the kite to fly");
        const user = await startDownload(port);
        const started = Promise.withResolvers<void>();
        const read = readAll(user, 10_000, (text) => {
          if (text.includes("piece 0\n")) started.resolve();
        });
        await started.promise;

        const first = relay.shutdown(); // default grace: 30 s
        await delay(200);
        assert.equal(relay.stats().totals.streams, 1, "still draining");
        const t0 = Date.now();
        if (how === "second call") await relay.shutdown();
        else controller.abort();
        await first;
        const elapsed = Date.now() - t0;
        assert.ok(elapsed < 1000, `stopped after ${elapsed} ms`);
        const { end } = await read;
        user.close();
        assert.notEqual(end, "hang");
      } finally {
        await relay.shutdown();
        await connector.shutdown();
      }
    });
  }
});
