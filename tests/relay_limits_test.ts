// Copyright 2026 the Kitewire authors. MIT license.
// Abuse controls of the relay (docs/reliability.md §4.4 S4, S8; spec §7.2):
// floods of stalled handshakes and slow headers from several loopback
// source addresses (127.0.0.2…127.0.0.9, bound with node:net), the
// client-IP rate limit, client and tunnel ACLs, the stream-open rate, the
// stream idle timeout and the relay-wide buffer budget.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { Acl } from "../relay/limits.ts";
import {
  type RelayOptions,
  type RelayServer,
  serveRelay,
} from "../relay/mod.ts";
import {
  delay,
  ScriptedConnector,
  type ScriptedStream,
  waitUntil,
} from "./_connector.ts";
import { httpRequest } from "./_http.ts";

const SECRET = "s3cret";
const FOO = "foo.example.com";
const encoder = new TextEncoder();
/** Source addresses the test task may bind (see deno.json). */
const SOURCES = [2, 3, 4, 5, 6, 7, 8, 9].map((n) => `127.0.0.${n}`);

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

async function answerOk(stream: ScriptedStream): Promise<void> {
  const body = "hello";
  await stream.write(encoder.encode(
    `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  ));
  await stream.end("R");
}

function fly(
  relay: RelayServer,
  onStream: (stream: ScriptedStream) => void | Promise<void> = answerOk,
): Promise<ScriptedConnector> {
  return ScriptedConnector.connect({
    port: portOf(relay),
    kites: [{ proto: "http", domain: FOO, secret: SECRET }],
    signThis: "reconnect",
    onStream,
  });
}

/** A node:net socket to the relay from `localAddress`, once connected. */
function openFrom(relay: RelayServer, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port: portOf(relay),
      localAddress,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Everything the peer sends until it closes (or resets). */
function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    socket.on("data", (data: Uint8Array) => {
      text += new TextDecoder("latin1").decode(data);
    });
    socket.on("error", () => {});
    socket.once("close", () => resolve(text));
  });
}

/** Destroys sockets and waits until each has closed. */
async function destroyAll(sockets: Socket[]): Promise<void> {
  await Promise.all(sockets.map((socket) =>
    new Promise<void>((resolve) => {
      if (socket.closed) return resolve();
      socket.once("close", () => resolve());
      socket.destroy();
    })
  ));
}

/** One GET from `localAddress`; the status line's code (0: none). */
async function getFrom(
  relay: RelayServer,
  localAddress: string,
  host = FOO,
): Promise<number> {
  const socket = await openFrom(relay, localAddress);
  const text = readAll(socket);
  socket.write(
    `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
  );
  const answer = await text;
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0);
}

Deno.test("Acl matches exact addresses and prefixes, first match wins", () => {
  const acl = new Acl([
    { action: "deny", address: "10.1.2.3" },
    { action: "allow", address: "10.0.0.0/8" },
    { action: "deny", address: "fd00::/8" },
    { action: "deny", address: "0.0.0.0/0" },
  ]);
  assert.equal(acl.allows("10.1.2.3"), false);
  assert.equal(acl.allows("10.9.9.9"), true);
  assert.equal(acl.allows("::ffff:10.9.9.9"), true);
  assert.equal(acl.allows("192.168.1.1"), false);
  assert.equal(acl.allows("fd12::1"), false);
  assert.equal(acl.allows("2001:db8::1"), true); // no match: allowed
  assert.equal(new Acl([]).allows("anything"), true);
  assert.throws(
    () => new Acl([{ action: "deny", address: "10.0.0.0/33" }]),
    TypeError,
  );
  assert.throws(
    () => new Acl([{ action: "deny", address: "1:2:3:4:5:6:7:8:9" }]),
    TypeError,
  );
});

Deno.test("serveRelay() caps 500 stalled handshakes and still registers a connector", async () => {
  await using relay = startRelay({
    handshakeTimeoutMs: 1000,
    maxPendingHandshakesPerIp: 20,
  });
  const sockets: Socket[] = [];
  const ends: Promise<string>[] = [];
  try {
    let peak = 0;
    for (let i = 0; i < 500; i++) {
      const socket = await openFrom(relay, SOURCES[i % SOURCES.length]!);
      sockets.push(socket);
      ends.push(readAll(socket));
      socket.write("CONNECT PageKite:1 HTTP/1.0\r\n"); // ...and stall
      if (i % 50 === 49) {
        peak = Math.max(peak, relay.stats().totals.pendingHandshakes);
      }
    }
    await waitUntil(
      () => relay.stats().totals.pendingHandshakes > 0,
      "stalled handshakes",
    );
    peak = Math.max(peak, relay.stats().totals.pendingHandshakes);
    // 8 sources × 20 per IP, well inside the global cap.
    assert.ok(peak <= 8 * 20, `pending handshakes ${peak}`);
    await using connector = await fly(relay);
    assert.equal(connector.result(FOO)?.status, "ok");
    assert.ok(relay.stats().totals.pendingHandshakes <= 8 * 20);
    // Refused ones were answered 503; the rest are cut at the deadline.
    const answers = await Promise.all(ends);
    assert.ok(answers.some((a) => a.startsWith("HTTP/1.0 503")));
    await waitUntil(
      () => relay.stats().totals.pendingHandshakes === 0,
      "handshakes cut",
    );
    assert.equal(await getFrom(relay, "127.0.0.2"), 200);
  } finally {
    await destroyAll(sockets);
  }
});

Deno.test("serveRelay() closes slow headers at the identify deadline, serving others", async () => {
  await using relay = startRelay({ sniffTimeoutMs: 300 });
  await using _connector = await fly(relay);
  const sockets: Socket[] = [];
  try {
    const started = Date.now();
    const ends: Promise<string>[] = [];
    for (let i = 0; i < 40; i++) {
      const socket = await openFrom(relay, SOURCES[i % SOURCES.length]!);
      sockets.push(socket);
      ends.push(readAll(socket));
      socket.write(`GET / HTTP/1.1\r\nHost: ${FOO}\r\nX-Slow: `); // stall
    }
    // Legitimate users are served meanwhile.
    for (const source of SOURCES.slice(0, 4)) {
      assert.equal(await getFrom(relay, source), 200);
    }
    const answers = await Promise.all(ends);
    const elapsed = Date.now() - started;
    assert.ok(answers.every((a) => a === ""), "closed without an answer");
    assert.ok(elapsed < 3000, `closed after ${elapsed} ms`);
  } finally {
    await destroyAll(sockets);
  }
});

Deno.test("serveRelay() limits new client IPs per tunnel (ipsPerSec)", async () => {
  await using relay = startRelay({ ipsPerSec: { ips: 2, seconds: 60 } });
  await using connector = await fly(relay);
  assert.deepEqual(connector.answers.at(-1)!.ipsPerSec, {
    ips: 2,
    seconds: 60,
  });
  assert.equal(await getFrom(relay, "127.0.0.2"), 200);
  assert.equal(await getFrom(relay, "127.0.0.3"), 200);
  assert.equal(await getFrom(relay, "127.0.0.4"), 503); // the N+1-th IP
  assert.equal(await getFrom(relay, "127.0.0.2"), 200); // known IPs go on
  assert.equal(await getFrom(relay, "127.0.0.3"), 200);
});

Deno.test("serveRelay() applies the strictest ipsPerSec of a tunnel's kites", async () => {
  await using relay = startRelay({
    ipsPerSec: { ips: 5, seconds: 10 },
    kites: [{
      domain: "*.example.com",
      secret: SECRET,
      ipsPerSec: { ips: 1, seconds: 60 },
    }],
  });
  await using connector = await fly(relay);
  assert.deepEqual(connector.answers.at(-1)!.ipsPerSec, {
    ips: 1,
    seconds: 60,
  });
  assert.equal(await getFrom(relay, "127.0.0.5"), 200);
  assert.equal(await getFrom(relay, "127.0.0.6"), 503);
});

Deno.test("serveRelay() enforces the client ACL", async () => {
  await using relay = startRelay({
    clientAcl: [
      { action: "deny", address: "127.0.0.3" },
      { action: "allow", address: "127.0.0.0/8" },
      { action: "deny", address: "0.0.0.0/0" },
    ],
  });
  await using _connector = await fly(relay);
  assert.equal(await getFrom(relay, "127.0.0.2"), 200);
  assert.equal(await getFrom(relay, "127.0.0.3"), 403);
});

Deno.test("serveRelay() enforces the tunnel ACL", async () => {
  await using relay = startRelay({
    tunnelAcl: [{ action: "deny", address: "127.0.0.4" }],
  });
  const socket = await openFrom(relay, "127.0.0.4");
  const answer = readAll(socket);
  socket.write(
    "CONNECT PageKite:1 HTTP/1.0\r\nX-PageKite: http:foo.example.com:abc::\r\n\r\n",
  );
  assert.equal(await answer, "HTTP/1.0 403 Forbidden\r\n\r\n");
  // 127.0.0.1 is not denied.
  await using connector = await fly(relay);
  assert.equal(connector.result(FOO)?.status, "ok");
});

Deno.test("serveRelay() refuses streams beyond maxStreamOpensPerSecond", async () => {
  await using relay = startRelay({ maxStreamOpensPerSecond: 3 });
  await using _connector = await fly(relay);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const response = await httpRequest(portOf(relay), { host: FOO });
    statuses.push(response.status);
  }
  assert.equal(statuses.filter((s) => s === 200).length >= 3, true);
  assert.ok(statuses.includes(503), `statuses ${statuses}`);
  await delay(1100);
  assert.equal((await httpRequest(portOf(relay), { host: FOO })).status, 200);
});

Deno.test("serveRelay() closes streams idle for streamIdleTimeoutMs", async () => {
  await using relay = startRelay({ streamIdleTimeoutMs: 300 });
  // The connector takes the stream and never answers.
  await using connector = await fly(relay, () => {});
  const socket = await openFrom(relay, "127.0.0.2");
  const answer = readAll(socket);
  const started = Date.now();
  socket.write(`GET / HTTP/1.1\r\nHost: ${FOO}\r\n\r\n`);
  await waitUntil(() => relay.stats().totals.streams === 1, "the stream");
  assert.equal(await answer, "");
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 250 && elapsed < 3000, `closed after ${elapsed} ms`);
  assert.equal(relay.stats().totals.streams, 0);
  // The connector was told (EOF) and the tunnel lives on.
  assert.equal(connector.ended, false);
  await destroyAll([socket]);
});

Deno.test("serveRelay() refuses new streams while over maxBufferedBytes", async () => {
  await using relay = startRelay({ maxBufferedBytes: 64 * 1024 });
  const MiB = 1024 * 1024;
  await using _connector = await fly(relay, async (stream) => {
    const head = new TextDecoder().decode(
      stream.first.body ?? new Uint8Array(),
    );
    if (!head.startsWith("GET /big ")) return answerOk(stream);
    // A big answer to a user who does not read: the relay buffers it.
    await stream.write(encoder.encode(
      `HTTP/1.1 200 OK\r\nContent-Length: ${16 * MiB}\r\n\r\n`,
    ));
    const block = new Uint8Array(64 * 1024);
    for (let sent = 0; sent < 16 * MiB; sent += block.length) {
      await stream.write(block).catch(() => {});
    }
  });
  const reader = await openFrom(relay, "127.0.0.2");
  reader.pause(); // never read
  reader.on("error", () => {});
  reader.write(`GET /big HTTP/1.1\r\nHost: ${FOO}\r\n\r\n`);
  await waitUntil(
    () =>
      relay.stats().streams.reduce((n, s) => n + s.buffered, 0) +
          relay.stats().tunnels.reduce((n, t) => n + t.queued, 0) >=
        64 * 1024,
    "buffered bytes",
  );
  await delay(150); // past the relay's cached total
  assert.equal(await getFrom(relay, "127.0.0.3"), 503);
  await destroyAll([reader]);
  await waitUntil(() => relay.stats().totals.streams === 0, "stream closed");
  await delay(150);
  assert.equal(await getFrom(relay, "127.0.0.3"), 200);
});
