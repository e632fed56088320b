// Copyright 2026 the Kitewire authors. MIT license.
// serveRelay() end to end on 127.0.0.1: the scripted connector of
// tests/_connector.ts flies kites, raw sockets play the users. Covers the
// security checks of docs/reliability.md §4.4 (S8 replay, S9 takeover, S12
// unknown SIDs), keepalive and linger timers, flow control with a slow
// consumer, big transfers with and without ZChunks, half-close and
// shutdown.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { signKiteRequest } from "../protocol/mod.ts";
import {
  type RelayOptions,
  type RelayServer,
  serveRelay,
} from "../relay/mod.ts";
import {
  delay,
  ScriptedConnector,
  type ScriptedConnectorOptions,
  type ScriptedKite,
  type ScriptedStream,
  waitUntil,
} from "./_connector.ts";
import { HttpClient } from "./_http.ts";

const SECRET = "s3cret";
const FOO = "foo.example.com";
const BAR = "bar.example.com";
const KiB = 1024;
const MiB = 1024 * KiB;
const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

function startRelay(options: RelayOptions = {}): RelayServer {
  return serveRelay({
    listen: [{ hostname: "127.0.0.1", port: 0 }],
    kites: [{ domain: "*.example.com", secret: SECRET }],
    ...options,
  });
}

function portOf(relay: RelayServer): number {
  return relay.addrs[0]!.port;
}

function kite(domain = FOO, secret = SECRET): ScriptedKite {
  return { proto: "http", domain, secret };
}

function connect(
  relay: RelayServer,
  options: Omit<ScriptedConnectorOptions, "port"> = {},
): Promise<ScriptedConnector> {
  return ScriptedConnector.connect({
    port: portOf(relay),
    kites: [kite()],
    ...options,
  });
}

/** A stream handler that answers one HTTP response naming `name`. */
function answerWith(name: string): (stream: ScriptedStream) => Promise<void> {
  return async (stream) => {
    const body = `served by ${name}`;
    await stream.write(encoder.encode(
      `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    ));
    await stream.end("R");
  };
}

/** GETs `/` for `host` through the relay; the status and body text. */
async function get(
  relay: RelayServer,
  host = FOO,
): Promise<{ status: number; body: string }> {
  using client = await HttpClient.connect(portOf(relay));
  const response = await client.request({ host });
  return { status: response.status, body: latin1.decode(response.body) };
}

/** The relay's kites on the tunnel of `connector`. */
function kitesOf(relay: RelayServer, connector: ScriptedConnector): string[] {
  const remote = `127.0.0.1:${connector.localPort}`;
  return relay.stats().tunnels.find((t) => t.remote === remote)?.kites ?? [];
}

/** Resolves true if `promise` settles within `ms`. */
async function settlesWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A raw user connection that sent a request head for `host`. */
async function openUser(
  relay: RelayServer,
  host = FOO,
  path = "/",
): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: portOf(relay),
  });
  await writeAll(
    conn,
    encoder.encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`),
  );
  return conn;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

/** Reads until EOF; null if the connection was reset instead. */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array | null> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * KiB);
  try {
    for (let n; (n = await conn.read(buffer)) !== null;) {
      parts.push(buffer.slice(0, n));
    }
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) return null;
    throw error;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deterministic bytes; `alphabet` 16 makes them compress about 2:1. */
function pseudoRandom(size: number, seed: number, alphabet = 256): Uint8Array {
  const out = new Uint8Array(size);
  const words = new Uint32Array(out.buffer, 0, size >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  if (alphabet !== 256) {
    for (let i = 0; i < size; i++) out[i] = 0x61 + out[i]! % alphabet;
  }
  return out;
}

function sha256(...parts: Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}

// 1. Replay (S8 d)

Deno.test("serveRelay() refuses a replayed signed kite line", async () => {
  await using relay = startRelay();
  await using original = await connect(relay, { onStream: answerWith("A") });
  assert.equal(original.result(FOO)?.status, "ok");
  const captured = original.sentKites.at(-1)!;
  assert.equal(captured.length, 1);
  assert.match(captured[0]!.token, /^t/);

  // The same signed line on a new connection: one fresh challenge, no OK.
  await using replayer = await connect(relay, {
    requests: captured,
    signThis: "none",
  });
  assert.equal(replayer.answers.length, 1);
  const [fresh] = replayer.answers[0]!.results;
  assert.equal(fresh?.status, "sign-this");
  assert.ok(fresh.status === "sign-this");
  assert.notEqual(fresh.token, captured[0]!.token);
  assert.ok(
    !replayer.answers.some((a) => a.results.some((r) => r.status === "ok")),
  );

  // The used token again, on the same tunnel: refused.
  const again = await replayer.sendKites(captured);
  assert.deepEqual(
    again?.results.map((r) => [r.status, "reason" in r && r.reason]),
    [[
      "invalid",
      "unauthorized",
    ]],
  );

  // The original tunnel keeps the kite and serves.
  assert.deepEqual(kitesOf(relay, original), [`http:${FOO}`]);
  assert.deepEqual(kitesOf(relay, replayer), []);
  assert.deepEqual(await get(relay), { status: 200, body: "served by A" });
  assert.deepEqual(original.errors, []);
});

// 2. X-PageKite-Replace (S9 c)

Deno.test("serveRelay() ignores X-PageKite-Replace without valid signatures", async (t) => {
  await using relay = startRelay();
  await using original = await connect(relay, { onStream: answerWith("A") });
  const session = original.sessionId!;

  await t.step("first contact (unsigned) with Replace", async () => {
    await using intruder = await connect(relay, {
      replace: session,
      signThis: "none",
    });
    assert.equal(intruder.result(FOO)?.status, "sign-this");
    assert.deepEqual(kitesOf(relay, original), [`http:${FOO}`]);
  });

  await t.step("signed with the wrong secret, by reconnect", async () => {
    await using intruder = await connect(relay, {
      kites: [kite(FOO, "wrong")],
      features: [],
      replace: session,
    });
    assert.equal(intruder.sentKites.length, 2);
    const result = intruder.result(FOO);
    assert.equal(result?.status, "invalid");
    assert.equal(result.status === "invalid" && result.reason, "signature");
    await intruder.closed; // refused tunnels are closed
  });

  await t.step("signed with the wrong secret, in the tunnel", async () => {
    await using intruder = await connect(relay, {
      kites: [kite(FOO, "wrong")],
      replace: session,
    });
    assert.equal(intruder.result(FOO)?.status, "invalid");
  });

  await t.step("validly signed, but for another kite", async () => {
    await using other = await connect(relay, {
      kites: [kite(BAR)],
      replace: session,
    });
    assert.equal(other.result(BAR)?.status, "ok");
    assert.deepEqual(kitesOf(relay, other), [`http:${BAR}`]);
  });

  assert.equal(original.ended, false);
  assert.deepEqual(kitesOf(relay, original), [`http:${FOO}`]);
  assert.deepEqual(await get(relay), { status: 200, body: "served by A" });
});

Deno.test("serveRelay() moves kites to a tunnel whose signed request names the old session", async (t) => {
  await using relay = startRelay();
  await using old = await connect(relay, {
    kites: [kite(FOO), kite(BAR)],
    onStream: answerWith("old"),
  });
  assert.deepEqual(kitesOf(relay, old).sort(), [`http:${BAR}`, `http:${FOO}`]);

  await t.step("one of two kites: the old tunnel keeps the other", async () => {
    await using partial = await connect(relay, {
      replace: old.sessionId!,
      onStream: answerWith("partial"),
    });
    assert.equal(partial.result(FOO)?.status, "ok");
    assert.deepEqual(kitesOf(relay, partial), [`http:${FOO}`]);
    assert.deepEqual(kitesOf(relay, old), [`http:${BAR}`]);
    assert.equal(old.ended, false);
    assert.equal((await get(relay, FOO)).body, "served by partial");
    assert.equal((await get(relay, BAR)).body, "served by old");
  });

  await t.step(
    "every kite, by reconnect: the old tunnel is closed",
    async () => {
      await using successor = await connect(relay, {
        kites: [kite(BAR)],
        features: [],
        replace: old.sessionId!,
        onStream: answerWith("successor"),
      });
      assert.equal(successor.result(BAR)?.status, "ok");
      assert.ok(await settlesWithin(old.closed, 2000), "old tunnel not closed");
      assert.deepEqual(kitesOf(relay, successor), [`http:${BAR}`]);
      assert.equal((await get(relay, BAR)).body, "served by successor");
    },
  );
});

// 3. Duplicates (S9 a, d)

Deno.test("serveRelay() answers Duplicate, pings the first tunnel, and reaps it when silent", async () => {
  const duplicateGraceMs = 300;
  await using relay = startRelay({ duplicateGraceMs });
  await using first = await connect(relay, { onStream: answerWith("first") });
  assert.equal(first.result(FOO)?.status, "ok");

  // A live first tunnel: Duplicate, a PING, and it keeps the kite.
  {
    await using second = await connect(relay);
    assert.equal(second.result(FOO)?.status, "duplicate");
    await first.waitForFrame((c) => c.ping !== undefined, 2000);
    await delay(duplicateGraceMs * 2);
    assert.equal(first.ended, false);
    assert.deepEqual(kitesOf(relay, first), [`http:${FOO}`]);
    assert.equal((await get(relay)).body, "served by first");
  }

  // A silent first tunnel is reaped after the grace.
  first.silence();
  const claimedAt = Date.now();
  {
    await using third = await connect(relay);
    assert.equal(third.result(FOO)?.status, "duplicate");
  }
  assert.ok(
    await settlesWithin(first.closed, duplicateGraceMs + 1000),
    "the silent tunnel was not reaped",
  );
  const reapedAfter = Date.now() - claimedAt;
  assert.ok(
    reapedAfter >= duplicateGraceMs - 50,
    `reaped after ${reapedAfter} ms`,
  );
  assert.equal(relay.stats().totals.kites, 0);

  // Now the kite can be claimed.
  await using fourth = await connect(relay, { onStream: answerWith("fourth") });
  assert.equal(fourth.result(FOO)?.status, "ok");
  assert.equal((await get(relay)).body, "served by fourth");
});

// 4. Dead tunnels

Deno.test("serveRelay() closes a silent tunnel and its streams after pingIntervalMs + pingGraceMs", async () => {
  const pingIntervalMs = 200;
  const pingGraceMs = 200;
  await using relay = startRelay({ pingIntervalMs, pingGraceMs });
  await using dead = await connect(relay, {
    kites: [kite(FOO)],
    onStream: async (stream) => void await stream.readAll(),
  });
  await using alive = await connect(relay, { kites: [kite(BAR)] });

  // A user stream on the tunnel that will die.
  const user = await openUser(relay, FOO);
  try {
    await waitUntil(() => dead.streams.size === 1, "the stream to open");
    await dead.ping(); // the relay last heard from it now
    dead.silence();
    const silentAt = Date.now();
    assert.ok(
      await settlesWithin(dead.closed, pingIntervalMs + pingGraceMs + 1000),
      "the silent tunnel was not closed",
    );
    const closedAfter = Date.now() - silentAt;
    assert.ok(
      closedAfter >= pingIntervalMs + pingGraceMs - 50,
      `closed after only ${closedAfter} ms`,
    );
    // Its stream went with it.
    const rest = await readToEnd(user);
    assert.ok(rest === null || rest.length === 0);
    assert.equal(relay.stats().streams.length, 0);
    assert.deepEqual(
      relay.stats().tunnels.map((t) => t.kites),
      [[`http:${BAR}`]],
    );
  } finally {
    user.close();
  }

  // The responsive connector survives several intervals, answering PINGs.
  await delay(4 * (pingIntervalMs + pingGraceMs));
  assert.equal(alive.ended, false);
  assert.ok(
    alive.frames.filter((c) => c.ping !== undefined).length >= 3,
    "the relay did not ping the idle tunnel",
  );
  assert.deepEqual(kitesOf(relay, alive), [`http:${BAR}`]);
});

// 5. AddKites linger

Deno.test("serveRelay() keeps a kite-less AddKites tunnel until addKitesLingerMs", async () => {
  const addKitesLingerMs = 500;
  await using relay = startRelay({ addKitesLingerMs });
  const openedAt = Date.now();
  await using waiting = await connect(relay, { signThis: "none" });
  assert.equal(waiting.result(FOO)?.status, "sign-this");
  assert.equal(relay.stats().totals.tunnels, 1);
  assert.equal(relay.stats().totals.pendingHandshakes, 1);
  assert.equal(relay.stats().totals.kites, 0);

  await delay(addKitesLingerMs / 2);
  assert.equal(waiting.ended, false);
  assert.ok(
    await settlesWithin(waiting.closed, addKitesLingerMs + 1000),
    "the lingering tunnel was not closed",
  );
  const closedAfter = Date.now() - openedAt;
  assert.ok(
    closedAfter >= addKitesLingerMs - 50,
    `closed after ${closedAfter} ms`,
  );
  await waitUntil(() => relay.stats().totals.tunnels === 0, "the tunnel to go");
  assert.equal(relay.stats().totals.pendingHandshakes, 0);
});

Deno.test("serveRelay() stops counting a lingering tunnel once a kite is signed", async () => {
  await using relay = startRelay({ addKitesLingerMs: 300 });
  await using connector = await connect(relay, { signThis: "none" });
  assert.equal(relay.stats().totals.pendingHandshakes, 1);
  const result = connector.result(FOO);
  assert.ok(result?.status === "sign-this");
  const signed = await signKiteRequest(result, SECRET);
  const answer = await connector.sendKites([signed]);
  assert.equal(answer?.results[0]?.status, "ok");
  assert.equal(relay.stats().totals.pendingHandshakes, 0);
  await delay(600);
  assert.equal(connector.ended, false);
  assert.deepEqual(kitesOf(relay, connector), [`http:${FOO}`]);
});

Deno.test("serveRelay() counts each handshake once against maxPendingHandshakesPerIp", async (t) => {
  await using relay = startRelay({ maxPendingHandshakesPerIp: 4 });
  await t.step("four at once, each signing in its tunnel", async () => {
    const connectors = await Promise.all(
      ["a", "b", "c", "d"].map((name) =>
        connect(relay, { kites: [kite(`${name}.example.com`)] })
      ),
    );
    try {
      assert.deepEqual(connectors.map((c) => c.results[0]?.status), [
        "ok",
        "ok",
        "ok",
        "ok",
      ]);
    } finally {
      await Promise.all(connectors.map((c) => c.close()));
    }
  });
  await t.step("lingering tunnels count until signed", async () => {
    const lingering = await Promise.all(
      ["e", "f", "g", "h"].map((name) =>
        connect(relay, {
          kites: [kite(`${name}.example.com`)],
          signThis: "none",
        })
      ),
    );
    try {
      assert.equal(relay.stats().totals.pendingHandshakes, 4);
      await assert.rejects(
        connect(relay, { kites: [kite("i.example.com")] }),
        /503/,
      );
      const first = lingering[0]!;
      const result = first.results[0];
      assert.ok(result?.status === "sign-this");
      const answer = await first.sendKites([
        await signKiteRequest(result, SECRET),
      ]);
      assert.equal(answer?.results[0]?.status, "ok");
      assert.equal(relay.stats().totals.pendingHandshakes, 3);
      await using late = await connect(relay, {
        kites: [kite("i.example.com")],
      });
      assert.equal(late.results[0]?.status, "ok");
    } finally {
      await Promise.all(lingering.map((c) => c.close()));
    }
  });
});

// 6. Slow consumer (L3)

Deno.test("serveRelay() holds at most one window for a slow user while 20 others transfer 16 MiB", async () => {
  const streamWindowBytes = 256 * KiB;
  const size = 16 * MiB;
  const data = pseudoRandom(size, 6);
  const expected = sha256(data);
  await using relay = startRelay({ streamWindowBytes });
  await using connector = await connect(relay, {
    record: false,
    windowBytes: streamWindowBytes,
    onStream: async (stream) => {
      if (await stream.write(data)) await stream.end("R");
    },
  });

  // The slow user reads 1 KiB every 125 ms: 8 KiB/s.
  const slow = await openUser(relay, FOO, "/slow");
  let slowBytes = 0;
  let stopSlow = false;
  const slowReader = (async () => {
    const buffer = new Uint8Array(KiB);
    while (!stopSlow) {
      const n = await slow.read(buffer);
      if (n === null) break;
      slowBytes += n;
      await delay(125);
    }
  })();
  await waitUntil(() => slowBytes > 0, "the slow user's first bytes");
  const slowRemote = `127.0.0.1:${slow.localAddr.port}`;

  const fast = await Promise.all(
    Array.from({ length: 20 }, () => openUser(relay, FOO, "/fast")),
  );
  let fastDone = false;
  let fastMs = 0;
  const started = Date.now();
  const transfers = Promise.all(fast.map(async (conn) => {
    const hash = createHash("sha256");
    let received = 0;
    const buffer = new Uint8Array(64 * KiB);
    for (let n; (n = await conn.read(buffer)) !== null;) {
      hash.update(buffer.subarray(0, n));
      received += n;
    }
    conn.close();
    return { received, digest: hash.digest("hex") };
  })).finally(() => {
    fastDone = true;
    fastMs = Date.now() - started;
  });

  // Watch the slow stream's buffer while the fast ones run, and a bit longer.
  let maxBuffered = 0;
  let samples = 0;
  try {
    while (!fastDone || Date.now() - started < 3000) {
      const stream = relay.stats().streams.find((s) => s.remote === slowRemote);
      assert.ok(stream !== undefined, "the slow stream is gone");
      maxBuffered = Math.max(maxBuffered, stream.buffered);
      samples++;
      assert.ok(
        Date.now() - started < 25_000,
        "the fast transfers took too long",
      );
      await delay(20);
    }
    const results = await transfers;
    assert.ok(fastMs < 20_000, `20 × 16 MiB took ${fastMs} ms`);
    for (const result of results) {
      assert.equal(result.received, size);
      assert.equal(result.digest, expected);
    }
    const stream = relay.stats().streams.find((s) => s.remote === slowRemote)!;
    assert.ok(stream.bytesOut < size, "the slow stream finished");
  } finally {
    stopSlow = true;
    await slowReader;
    slow.close();
  }
  assert.ok(samples > 10);
  // The slow stream did fill its window: the bound below is what held it.
  assert.ok(maxBuffered >= streamWindowBytes / 2, `only ${maxBuffered} bytes`);
  assert.ok(
    maxBuffered <= streamWindowBytes + 16 * KiB + 64,
    `${maxBuffered} bytes buffered for the slow user`,
  );
  await waitUntil(() => relay.stats().streams.length === 0, "streams to end");
  assert.deepEqual(connector.errors, []);
});

Deno.test("serveRelay() stops reading a user streamWindowBytes ahead of the connector's SKB", async () => {
  const streamWindowBytes = 128 * KiB;
  await using relay = startRelay({ streamWindowBytes });
  let stream: ScriptedStream | undefined;
  let stop = false;
  const connector = await connect(relay, {
    record: false,
    onStream: async (opened) => {
      stream = opened;
      // Consume one body every 50 ms: SKB trickles back.
      for await (const _ of opened) {
        if (stop) break;
        await delay(50);
      }
    },
  });
  const user = await openUser(relay, FOO, "/upload");
  const uploading = writeAll(user, new Uint8Array(8 * MiB)).catch(() => {});
  try {
    await waitUntil(() => stream !== undefined, "the stream to open");
    // Until its first SKB arrives the relay reads freely (spec §3.6), so
    // let that first burst drain before watching (however long a loaded
    // machine takes).
    const ahead = (): number =>
      (relay.stats().streams[0]?.bytesIn ?? 0) - stream!.consumed;
    await waitUntil(
      () => ahead() <= streamWindowBytes + 16 * KiB + KiB,
      "the first burst to drain",
      { timeoutMs: 10_000 },
    );
    const started = Date.now();
    let worst = -Infinity;
    while (Date.now() - started < 1500) {
      const [relayed] = relay.stats().streams;
      assert.ok(relayed !== undefined);
      // What the relay read from the user beyond what the connector took.
      worst = Math.max(worst, relayed.bytesIn - stream!.consumed);
      await delay(10);
    }
    assert.ok(stream!.consumed > 100 * KiB, "the upload did not flow");
    assert.ok(
      worst <= streamWindowBytes + 16 * KiB + KiB,
      `the relay read ${worst} bytes ahead of the connector's SKB`,
    );
    assert.ok(worst >= streamWindowBytes / 2, `only ${worst} bytes ahead`);
  } finally {
    stop = true;
    await connector.close();
    user.close();
    await uploading;
  }
});

// 7. Big transfers

for (const zchunks of [false, true]) {
  Deno.test(`serveRelay() carries 64 MiB each way through one stream ${zchunks ? "with" : "without"} ZChunks`, async () => {
    const size = 64 * MiB;
    const alphabet = zchunks ? 16 : 256;
    const upload = pseudoRandom(size, 71, alphabet);
    const download = pseudoRandom(size, 72, alphabet);
    const head = encoder.encode(`POST /big HTTP/1.1\r\nHost: ${FOO}\r\n\r\n`);
    let uploaded = "";
    await using relay = startRelay();
    await using connector = await connect(relay, {
      features: zchunks ? ["AddKites", "ZChunks"] : ["AddKites"],
      record: false,
      onStream: async (stream) => {
        const hash = createHash("sha256").update(stream.body);
        const reading = (async () => {
          for await (const body of stream) hash.update(body);
          uploaded = hash.digest("hex");
        })();
        if (await stream.write(download)) await stream.end("R");
        await reading;
      },
    });

    const user = await Deno.connect({
      hostname: "127.0.0.1",
      port: portOf(relay),
    });
    try {
      const sending = (async () => {
        await writeAll(user, head);
        await writeAll(user, upload);
        await user.closeWrite();
      })();
      const hash = createHash("sha256");
      let received = 0;
      const buffer = new Uint8Array(64 * KiB);
      for (let n; (n = await user.read(buffer)) !== null;) {
        hash.update(buffer.subarray(0, n));
        received += n;
      }
      await sending;
      assert.equal(received, size);
      assert.equal(hash.digest("hex"), sha256(download));
    } finally {
      user.close();
    }
    await waitUntil(() => uploaded !== "", "the upload to arrive");
    assert.equal(uploaded, sha256(head, upload));
    const [tunnel] = relay.stats().tunnels;
    if (zchunks) {
      assert.ok(tunnel!.compressedFramesOut > 100, "relay did not compress");
      assert.ok(tunnel!.compressedFramesIn > 100, "connector did not compress");
      assert.ok(tunnel!.bytesIn < size, "no compression toward the relay");
    } else {
      assert.equal(tunnel!.compressedFramesOut, 0);
      assert.equal(tunnel!.compressedFramesIn, 0);
    }
    await waitUntil(() => relay.stats().streams.length === 0, "streams to end");
    assert.deepEqual(connector.errors, []);
  });
}

// 8. Half-close

Deno.test("serveRelay() half-closes: connector EOF R ends the user's reads but not its writes", async () => {
  await using relay = startRelay();
  const later = Promise.withResolvers<string>();
  await using connector = await connect(relay, {
    onStream: async (stream) => {
      await stream.write(encoder.encode("hello"));
      await stream.end("R");
      later.resolve(latin1.decode(await stream.readAll()));
    },
  });
  const user = await openUser(relay);
  try {
    const buffer = new Uint8Array(100);
    let text = "";
    for (let n; (n = await user.read(buffer)) !== null;) {
      text += latin1.decode(buffer.subarray(0, n));
    }
    assert.equal(text, "hello"); // read returned null: EOF
    await writeAll(user, encoder.encode("still talking"));
    await user.closeWrite();
    assert.equal(await later.promise, "still talking");
    const [stream] = connector.streams.values();
    await stream!.waitForEof("R");
    assert.ok(stream!.eofs[0]?.includes("R"));
    await waitUntil(() => relay.stats().streams.length === 0, "streams to end");
  } finally {
    user.close();
  }
});

Deno.test("serveRelay() half-closes: user EOF reaches the connector as EOF R and replies still flow", async () => {
  await using relay = startRelay();
  const sawEof = Promise.withResolvers<ScriptedStream>();
  await using connector = await connect(relay, {
    onStream: async (stream) => {
      await stream.readAll(); // ends at EOF R
      sawEof.resolve(stream);
      await stream.write(encoder.encode("late reply"));
      await stream.end("R");
    },
  });
  const user = await openUser(relay);
  try {
    await user.closeWrite();
    const stream = await sawEof.promise;
    assert.deepEqual(stream.eofs, ["R"]);
    const rest = await readToEnd(user);
    assert.equal(latin1.decode(rest!), "late reply");
    await waitUntil(() => relay.stats().streams.length === 0, "streams to end");
    // The relay closed both halves: the connector heard a full close.
    await waitUntil(
      () => stream.eofs.some((f) => f === "RW"),
      "the relay's final EOF",
    );
  } finally {
    user.close();
  }
  assert.deepEqual(connector.errors, []);
});

// 9. Unknown SIDs (S12)

Deno.test("serveRelay() answers data for an unknown SID with EOF RW and carries on", async () => {
  await using relay = startRelay();
  await using connector = await connect(relay, {
    onStream: async (stream) => {
      for await (const body of stream) await stream.write(body); // echo
      await stream.end("R");
    },
  });
  const user = await openUser(relay);
  try {
    await waitUntil(() => connector.streams.size === 1, "the stream to open");
    const [live] = connector.streams.keys();
    const echo = async (text: string) => {
      await writeAll(user, encoder.encode(text));
      const buffer = new Uint8Array(100);
      const n = await user.read(buffer);
      return latin1.decode(buffer.subarray(0, n ?? 0));
    };
    assert.equal(await echo("before"), "before");

    await connector.send({ sid: 4343, eof: "RW", body: new Uint8Array() });
    await connector.send({ sid: 4242, body: encoder.encode("who am I?") });
    const answer = await connector.waitForFrame((c) => c.sid === 4242, 2000);
    assert.equal(answer.eof, "RW");
    assert.equal(answer.proto, undefined);
    // An EOF for an unknown SID gets no answer.
    assert.ok(!connector.frames.some((c) => c.sid === 4343));

    assert.equal(await echo("after"), "after");
    assert.equal(relay.stats().streams.length, 1);
    assert.equal(relay.stats().streams[0]!.sid, live);
    assert.equal(connector.ended, false);
  } finally {
    user.close();
  }
  await waitUntil(() => relay.stats().streams.length === 0, "streams to end");
});

// 10. Shutdown

Deno.test("RelayServer.shutdown() closes listeners, tunnels and streams", async () => {
  // The stream never ends: it is closed when the (short) grace is over.
  const relay = startRelay({ addKitesLingerMs: 60_000, shutdownGraceMs: 50 });
  const port = portOf(relay);
  const connector = await connect(relay, {
    onStream: async (stream) => void await stream.readAll(),
  });
  const lingering = await connect(relay, {
    kites: [kite(BAR)],
    signThis: "none",
  });
  const user = await openUser(relay);
  const idle = await Deno.connect({ hostname: "127.0.0.1", port });
  const halfShaken = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(
      halfShaken,
      encoder.encode("CONNECT PageKite:1 HTTP/1.0\r\n"),
    );
    await waitUntil(() => connector.streams.size === 1, "the stream to open");
    await waitUntil(
      () => relay.stats().totals.connections === 5,
      "five connections",
    );

    await relay.shutdown();
    assert.ok(await settlesWithin(relay.finished, 0));
    await relay.shutdown(); // idempotent

    assert.ok(await settlesWithin(connector.closed, 1000));
    assert.ok(await settlesWithin(lingering.closed, 1000));
    const rest = await readToEnd(user);
    assert.ok(rest === null || rest.length === 0);
    assert.equal(await readToEnd(idle).then((b) => b?.length ?? 0), 0);
    assert.equal(await readToEnd(halfShaken).then((b) => b?.length ?? 0), 0);
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port }),
      Deno.errors.ConnectionRefused,
    );
    assert.deepEqual(relay.stats().totals, {
      tunnels: 0,
      kites: 0,
      streams: 0,
      connections: 0,
      pendingHandshakes: 0,
      bytesIn: 0,
      bytesOut: 0,
    });
  } finally {
    user.close();
    idle.close();
    halfShaken.close();
    await connector.close();
    await lingering.close();
    await relay.shutdown();
  }
});

Deno.test("serveRelay() stops when its signal aborts", async () => {
  const controller = new AbortController();
  const relay = startRelay({ signal: controller.signal });
  await using connector = await connect(relay);
  controller.abort();
  await relay.finished;
  assert.ok(await settlesWithin(connector.closed, 1000));
});
