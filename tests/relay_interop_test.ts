// Copyright 2026 the Kitewire authors. MIT license.
// Acceptance tests of serveRelay() with the real pagekite.py (Debian package
// `pagekite`) as the connector: the test starts a local origin, our relay
// and pagekite.py, sends requests to the relay, and checks what comes back,
// what the origin saw and, through a recording proxy, what went over the
// tunnel.
import assert from "node:assert/strict";
import {
  type Chunk,
  ChunkDecoder,
  decodeTunnelRequest,
  decodeTunnelResponse,
  findHandshakeEnd,
  type KiteResult,
  parseKiteRequestHeaders,
  parseKiteResponseHeaders,
  type TunnelRequest,
  type TunnelResponse,
} from "../protocol/mod.ts";
import { type RelayServer, serveRelay } from "../relay/mod.ts";
import { HttpClient, httpRequest, type HttpResponse, sha256 } from "./_http.ts";
import { startPagekite } from "./_pagekite.ts";
import { findPeer } from "./_peers.ts";
import { type ProxiedConnection, startRecordingProxy } from "./_proxy.ts";

const peer = findPeer("pagekite", "pagekite");
const SECRET = "testsecret";
const FOO = "foo.example.com";
const WILD = "*.wild.example.com";
const BAD = "bad.example.com";
const MIB = 1024 * 1024;
/** pagekite.py reads a tunnel in pieces of 16256 × 3.1 bytes... */
const PY_READ_BYTES = 50_393;
/** ...and kills it above 150 frames in one read; we keep a margin. */
const MAX_FRAMES_PER_READ = 100;
const decoder = new TextDecoder();

// Test data

type PayloadKind = "random" | "text";
const payloads = new Map<string, Uint8Array>();

/**
 * Deterministic test bytes, the same for the origin and the test:
 * xorshift32 noise, or one line of text over and over.
 */
function payload(kind: PayloadKind, size: number): Uint8Array {
  const key = `${kind}:${size}`;
  const cached = payloads.get(key);
  if (cached !== undefined) return cached;
  const bytes = new Uint8Array(size);
  if (kind === "random") {
    let x = 0x2545f491;
    for (let i = 0; i < size; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      bytes[i] = x;
      bytes[i + 1] = x >>> 8;
      bytes[i + 2] = x >>> 16;
      bytes[i + 3] = x >>> 24;
    }
  } else {
    const line = new TextEncoder().encode(
      "Kitewire relays this line for pagekite.py, over and over again.\n",
    );
    for (let at = 0; at < size; at += line.length) {
      bytes.set(line.subarray(0, Math.min(line.length, size - at)), at);
    }
  }
  payloads.set(key, bytes);
  return bytes;
}

// The local origin behind pagekite.py

/** A request as the origin saw it. */
interface SeenRequest {
  method: string;
  path: string;
  host: string;
  forwardedFor: string | null;
  pagekitePort: string | null;
  /** The source port of pagekite.py's connection to the origin. */
  remotePort: number;
}

interface Origin extends AsyncDisposable {
  port: number;
  seen: SeenRequest[];
}

/**
 * `GET /hello` greets, `POST /sha256` answers the SHA-256 of its body,
 * `GET /bytes/<random|text>/<n>` sends n deterministic bytes, and
 * `GET /host` echoes the Host header.
 */
function startOrigin(): Origin {
  const seen: SeenRequest[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request, info) => {
      const url = new URL(request.url);
      seen.push({
        method: request.method,
        path: url.pathname + url.search,
        host: request.headers.get("host") ?? "",
        forwardedFor: request.headers.get("x-forwarded-for"),
        pagekitePort: request.headers.get("x-pagekite-port"),
        remotePort: info.remoteAddr.port,
      });
      if (url.pathname === "/hello") {
        return new Response(`Hello from the origin${url.search}\n`);
      }
      if (url.pathname === "/sha256" && request.method === "POST") {
        const body = await request.bytes();
        return new Response(await sha256(body), {
          headers: { "X-Body-Length": String(body.length) },
        });
      }
      if (url.pathname === "/host") {
        return new Response(request.headers.get("host"));
      }
      const match = /^\/bytes\/(random|text)\/(\d+)$/.exec(url.pathname);
      if (match !== null) {
        const bytes = payload(match[1] as PayloadKind, Number(match[2]));
        return new Response(bytes as Uint8Array<ArrayBuffer>);
      }
      return new Response("Not found\n", { status: 404 });
    },
  );
  return {
    port: server.addr.port,
    seen,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

// Helpers

function service(domain: string, origin: Origin, secret = SECRET): string {
  return `--service_on=http:${domain}:127.0.0.1:${origin.port}:${secret}`;
}

function relayOn(
  port: number,
  options: { duplicateGraceMs?: number } = {},
): RelayServer {
  return serveRelay({
    listen: [{ hostname: "127.0.0.1", port }],
    kites: [
      { domain: FOO, secret: SECRET },
      { domain: WILD, secret: SECRET },
      { domain: BAD, secret: SECRET },
    ],
    ...options,
  });
}

async function waitFor(
  what: string,
  ready: () => boolean,
  timeoutMs: number,
  log?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}${
          log === undefined ? "" : `:\n${log()}`
        }`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function text(response: HttpResponse): string {
  return decoder.decode(response.body);
}

/** Asserts the relay's own 503 page for `host`. */
function assertUnavailable(
  response: HttpResponse,
  relay: RelayServer,
  host: string,
): void {
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("x-pagekite-uuid"), relay.uuid);
  assert.match(text(response), new RegExp(`<b>${host.replaceAll(".", "\\.")}`));
}

/** Kites flying on the relay, one entry per registration. */
function liveKites(relay: RelayServer): string[] {
  return relay.stats().tunnels.flatMap((t) => t.kites).sort();
}

// Reading the proxy's recordings

/** A decoded frame and where it sat in its direction's frame stream. */
interface Frame {
  chunk: Chunk;
  /** Offsets in the frame stream (after the handshake head). */
  start: number;
  end: number;
}

/** A tunnel connection, decoded with the protocol module. */
interface Transcript {
  request: TunnelRequest;
  /** The relay's head; undefined until it arrived. */
  response: TunnelResponse | undefined;
  fromConnector: Frame[];
  fromRelay: Frame[];
  /** Where each proxy read of the relay's frames ended, in frame offsets. */
  relayPieceEnds: number[];
  compressedFromConnector: number;
  compressedFromRelay: number;
}

const CONNECT = new TextEncoder().encode("CONNECT PageKite:");

function isTunnel(connection: ProxiedConnection): boolean {
  const bytes = connection.connectorToRelay();
  return bytes.length >= CONNECT.length &&
    CONNECT.every((b, i) => bytes[i] === b);
}

function tunnels(
  proxy: { connections(): readonly ProxiedConnection[] },
): ProxiedConnection[] {
  return proxy.connections().filter(isTunnel);
}

/** Whether the relay's head has come through. */
function answered(connection: ProxiedConnection): boolean {
  return findHandshakeEnd(connection.relayToConnector()) !== -1;
}

/** Decodes every complete frame; bodies are copied. */
function decodeFrames(bytes: Uint8Array): [Frame[], number] {
  const frames: Frame[] = [];
  const chunks = new ChunkDecoder();
  chunks.push(bytes);
  for (;;) {
    const start = chunks.offset;
    const chunk = chunks.next();
    if (chunk === null) break;
    assert.ok(!("lost" in chunk), `lost frame: ${JSON.stringify(chunk)}`);
    frames.push({
      chunk: { ...chunk, body: chunk.body.slice() },
      start,
      end: chunks.offset,
    });
  }
  return [frames, chunks.compressedFrames];
}

function transcript(connection: ProxiedConnection): Transcript {
  const up = connection.connectorToRelay();
  const upEnd = findHandshakeEnd(up);
  assert.notEqual(upEnd, -1, "the tunnel request is incomplete");
  const request = decodeTunnelRequest(up.subarray(0, upEnd));
  const [fromConnector, compressedFromConnector] = decodeFrames(
    up.subarray(upEnd),
  );
  const down = connection.relayToConnector();
  const downEnd = findHandshakeEnd(down);
  if (downEnd === -1) {
    return {
      request,
      response: undefined,
      fromConnector,
      fromRelay: [],
      relayPieceEnds: [],
      compressedFromConnector,
      compressedFromRelay: 0,
    };
  }
  const response = decodeTunnelResponse(down.subarray(0, downEnd));
  const [fromRelay, compressedFromRelay] = decodeFrames(
    down.subarray(downEnd),
  );
  const relayPieceEnds: number[] = [];
  let at = -downEnd;
  for (const piece of connection.relayToConnectorReads()) {
    at += piece.length;
    if (at > 0) relayPieceEnds.push(at);
  }
  return {
    request,
    response,
    fromConnector,
    fromRelay,
    relayPieceEnds,
    compressedFromConnector,
    compressedFromRelay,
  };
}

function hasKiteLines(chunk: Chunk): boolean {
  return chunk.noop === true &&
    (chunk.headers ?? []).some(([name]) =>
      /^x-(pagekite|beanstalk)(-|$)/i.test(name)
    );
}

/** Kite requests the connector sent inside NOOP chunks (AddKites). */
function signedInTunnel(t: Transcript): TunnelRequest[] {
  return t.fromConnector.filter((f) => hasKiteLines(f.chunk)).map((f) =>
    parseKiteRequestHeaders(f.chunk.headers!)
  ).filter((r) => r.kites.length > 0);
}

/** The relay's answers inside NOOP chunks. */
function answersInTunnel(t: Transcript): TunnelResponse[] {
  return t.fromRelay.filter((f) => hasKiteLines(f.chunk)).map((f) =>
    parseKiteResponseHeaders(f.chunk.headers!)
  ).filter((r) => r.results.length > 0);
}

/** Every kite result the relay sent on any tunnel of a proxy. */
function allResults(
  proxy: { connections(): readonly ProxiedConnection[] },
): KiteResult[] {
  return tunnels(proxy).map(transcript).flatMap((t) => [
    ...(t.response?.results ?? []),
    ...answersInTunnel(t).flatMap((a) => a.results),
  ]);
}

/**
 * The most frames one pagekite.py read could complete. Bytes reach the
 * connector in the pieces the proxy read (what had arrived at once, written
 * on in one piece); pagekite.py reads at most `PY_READ_BYTES` of them at a
 * time, so count frames ending in any `PY_READ_BYTES`-byte window of one
 * piece. (A window over the whole recording would also count frames that
 * were sent far apart in time, such as the SKB reports of a long download.)
 */
function busiestRead(
  frames: Frame[],
  pieceEnds: readonly number[],
): { count: number; frames: Frame[] } {
  let best = { count: 0, first: 0 };
  let first = 0;
  let pieceStart = 0;
  for (const pieceEnd of pieceEnds) {
    while (first < frames.length && frames[first]!.end <= pieceStart) first++;
    let j = first;
    for (let i = first; i < frames.length; i++) {
      const end = frames[i]!.end;
      if (end > pieceEnd) break;
      j = Math.max(j, i);
      while (
        j < frames.length && frames[j]!.end <= pieceEnd &&
        frames[j]!.end < end + PY_READ_BYTES
      ) j++;
      if (j - i > best.count) best = { count: j - i, first: i };
    }
    pieceStart = pieceEnd;
  }
  return {
    count: best.count,
    frames: frames.slice(best.first, best.first + best.count),
  };
}

/** Counts frames by kind, for messages: `{"SKB": 900, "data": 4}`. */
function frameKinds(frames: Frame[]): string {
  const kinds: Record<string, number> = {};
  for (const { chunk } of frames) {
    const kind = chunk.skb !== undefined
      ? "SKB"
      : chunk.eof !== undefined
      ? `EOF ${chunk.eof}`
      : chunk.noop === true
      ? "NOOP"
      : "data";
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return JSON.stringify(kinds);
}

// The tests

Deno.test({
  name:
    "serveRelay() serves pagekite.py connectors: requests, large bodies, wildcards, unknown hosts, ZChunks, in-tunnel challenges and duplicates",
  ignore: !peer.available,
  async fn(t) {
    await using origin = startOrigin();
    await using relay = relayOn(0, { duplicateGraceMs: 2000 });
    const relayPort = relay.addrs[0]!.port;
    await using proxy = startRecordingProxy({ port: relayPort });
    await using py = await startPagekite([
      `--frontend=127.0.0.1:${proxy.port}`,
      service(FOO, origin),
      service(WILD, origin),
    ], { ready: () => relay.stats().totals.kites >= 2, timeoutMs: 20_000 });
    assert.deepEqual(liveKites(relay), [`http:${WILD}`, `http:${FOO}`].sort());

    await t.step("the challenge is answered inside the tunnel", async () => {
      // Flow B: one connection; SignThis in the head, then the signed kites
      // in a NOOP chunk and the relay's OK in another.
      await waitFor(
        "the relay's NOOP answer to reach the proxy",
        () =>
          tunnels(proxy).some((c) => answersInTunnel(transcript(c)).length > 0),
        5000,
      );
      const connections = tunnels(proxy);
      assert.equal(connections.length, 1);
      const wire = transcript(connections[0]!);
      assert.ok(wire.request.features?.includes("AddKites"));
      assert.ok(wire.request.features?.includes("ZChunks"));
      assert.equal(wire.request.replace, undefined);
      assert.deepEqual(wire.request.kites.map((k) => k.token), ["", ""]);
      assert.ok(wire.response !== undefined);
      assert.ok(wire.response.features?.includes("AddKites"));
      const challenges = new Map<string, string>();
      for (const result of wire.response.results) {
        assert.equal(result.status, "sign-this");
        challenges.set(result.domain, result.token);
      }
      assert.deepEqual([...challenges.keys()].sort(), [WILD, FOO].sort());
      const signed = signedInTunnel(wire);
      assert.equal(signed.length, 1, "one NOOP chunk with kite lines");
      for (const kite of signed[0]!.kites) {
        assert.equal(kite.token, challenges.get(kite.domain));
      }
      const answers = answersInTunnel(wire);
      assert.equal(answers.length, 1);
      assert.deepEqual(
        answers[0]!.results.map((r) => `${r.status} ${r.domain}`).sort(),
        [`ok ${WILD}`, `ok ${FOO}`].sort(),
      );
      assert.ok(answers[0]!.sessionId !== undefined);
    });

    await t.step("a GET reaches the origin through the tunnel", async () => {
      const before = origin.seen.length;
      const response = await httpRequest(relayPort, {
        host: FOO,
        path: "/hello",
      });
      assert.equal(response.status, 200);
      assert.equal(text(response), "Hello from the origin\n");
      const seen = origin.seen.slice(before);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.method, "GET");
      assert.equal(seen[0]!.path, "/hello");
      assert.equal(seen[0]!.host, FOO);
      // pagekite.py adds these from the stream's RIP and Port headers.
      assert.equal(seen[0]!.forwardedFor, "127.0.0.1");
      assert.equal(seen[0]!.pagekitePort, String(relayPort));
    });

    await t.step("a wildcard kite serves a name under it", async () => {
      const before = origin.seen.length;
      const response = await httpRequest(relayPort, {
        host: "a.wild.example.com",
        path: "/host",
      });
      assert.equal(response.status, 200);
      assert.equal(text(response), "a.wild.example.com");
      const seen = origin.seen.slice(before);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.host, "a.wild.example.com");
      // The stream was opened with the real name, as Proto http.
      const opened = transcript(tunnels(proxy)[0]!).fromRelay.find((f) =>
        f.chunk.host === "a.wild.example.com"
      );
      assert.ok(opened !== undefined, "no stream for a.wild.example.com");
      assert.equal(opened.chunk.proto, "http");
      assert.equal(opened.chunk.port, relayPort);
      // The wildcard does not cover its parent.
      assertUnavailable(
        await httpRequest(relayPort, { host: "wild.example.com" }),
        relay,
        "wild.example.com",
      );
    });

    await t.step("an unknown host gets the 503 page", async () => {
      const before = origin.seen.length;
      const response = await httpRequest(relayPort, {
        host: "nosuch.example.com",
        path: "/hello",
      });
      assertUnavailable(response, relay, "nosuch.example.com");
      assert.equal(response.headers.get("connection"), "close");
      assert.equal(origin.seen.length, before);
    });

    await t.step("10 requests share one keep-alive connection", async () => {
      const before = origin.seen.length;
      using client = await HttpClient.connect(relayPort);
      for (let i = 0; i < 10; i++) {
        const response = await client.request({
          host: FOO,
          path: `/hello?n=${i}`,
        });
        assert.equal(response.status, 200);
        assert.equal(text(response), `Hello from the origin?n=${i}\n`);
      }
      const seen = origin.seen.slice(before);
      assert.deepEqual(
        seen.map((s) => s.path),
        Array.from({ length: 10 }, (_, i) => `/hello?n=${i}`),
      );
      // One stream: pagekite.py used one connection to the origin...
      assert.equal(new Set(seen.map((s) => s.remotePort)).size, 1);
      // ...and the relay has one stream for this client.
      const local = client.conn.localAddr as Deno.NetAddr;
      assert.equal(
        relay.stats().streams.filter((s) =>
          s.remote === `127.0.0.1:${local.port}`
        ).length,
        1,
      );
    });

    await t.step("a 1 MiB POST body arrives whole", async () => {
      const body = payload("random", MIB);
      const response = await httpRequest(relayPort, {
        method: "POST",
        host: FOO,
        path: "/sha256",
        body,
      });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-body-length"), String(MIB));
      assert.equal(text(response), await sha256(body));
    });

    await t.step("a 16 MiB download arrives whole", async () => {
      const size = 16 * MIB;
      const response = await httpRequest(relayPort, {
        host: FOO,
        path: `/bytes/random/${size}`,
      });
      assert.equal(response.status, 200);
      assert.equal(response.body.length, size);
      assert.equal(
        await sha256(response.body),
        await sha256(payload("random", size)),
      );
    });

    await t.step("ZChunks both ways, random and compressible", async () => {
      const size = 4 * MIB;
      for (const kind of ["random", "text"] as const) {
        const body = payload(kind, size);
        const posted = await httpRequest(relayPort, {
          method: "POST",
          host: FOO,
          path: "/sha256",
          body,
        });
        assert.equal(posted.status, 200);
        assert.equal(text(posted), await sha256(body), `POST of ${kind}`);
        const fetched = await httpRequest(relayPort, {
          host: FOO,
          path: `/bytes/${kind}/${size}`,
        });
        assert.equal(fetched.status, 200);
        assert.equal(fetched.body.length, size);
        assert.equal(
          await sha256(fetched.body),
          await sha256(body),
          `download of ${kind}`,
        );
      }
      const [stats] = relay.stats().tunnels;
      assert.ok(stats !== undefined);
      assert.ok(stats.features.includes("ZChunks"));
      assert.ok(stats.compress);
      assert.ok(stats.compressedFramesOut > 0, "the relay compressed nothing");
      assert.ok(stats.compressedFramesIn > 0, "pagekite.py compressed nothing");
      assert.ok(!py.crashed(), py.log());

      // The same, seen on the wire.
      const connections = tunnels(proxy);
      assert.equal(connections.length, 1);
      const wire = transcript(connections[0]!);
      assert.ok(wire.compressedFromRelay > 0);
      assert.ok(wire.compressedFromConnector > 0);
      const busiest = busiestRead(wire.fromRelay, wire.relayPieceEnds);
      assert.ok(
        busiest.count <= MAX_FRAMES_PER_READ,
        `${busiest.count} frames could complete in one ${PY_READ_BYTES}-byte read: ${
          frameKinds(busiest.frames)
        }, SIDs ${[...new Set(busiest.frames.map((f) => f.chunk.sid))]}`,
      );
      // pagekite.py throttles a stream only after an SKB for it: the relay
      // reports SKB: 0 right behind each opening chunk, before any other
      // control frame of the stream.
      const opened = wire.fromRelay.filter((f) => f.chunk.proto !== undefined);
      assert.ok(opened.length >= 9, `${opened.length} streams`);
      for (const { chunk: { sid } } of opened) {
        const first = wire.fromRelay.find((f) =>
          f.chunk.sid === sid && (f.chunk.noop === true || f.chunk.eof)
        );
        assert.equal(first?.chunk.skb, 0, `first control frame of SID ${sid}`);
      }
    });

    await t.step("a second connector for the kite gets Duplicate", async () => {
      const firstTunnel = `127.0.0.1:${tunnels(proxy)[0]!.relaySidePort}`;
      await using proxy2 = startRecordingProxy({ port: relayPort });
      const duplicate = (): boolean =>
        allResults(proxy2).some((r) =>
          r.status === "duplicate" && r.domain === FOO
        );
      await using py2 = await startPagekite([
        `--frontend=127.0.0.1:${proxy2.port}`,
        service(FOO, origin),
      ], { ready: duplicate, timeoutMs: 20_000 });
      assert.ok(
        !allResults(proxy2).some((r) => r.status === "ok"),
        "the second connector got an OK",
      );
      // The relay pinged the first tunnel; it answers, so it outlives the
      // grace period and keeps serving.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const response = await httpRequest(relayPort, {
        host: FOO,
        path: "/hello",
      });
      assert.equal(response.status, 200);
      assert.equal(text(response), "Hello from the origin\n");
      assert.deepEqual(
        liveKites(relay),
        [`http:${WILD}`, `http:${FOO}`].sort(),
      );
      const owners = relay.stats().tunnels.filter((s) =>
        s.kites.includes(`http:${FOO}`)
      );
      assert.equal(owners.length, 1);
      assert.equal(owners[0]!.remote, firstTunnel);
      assert.ok(!py.crashed(), py.log());
      assert.ok(!py2.crashed(), py2.log());
    });
  },
});

Deno.test({
  name:
    "serveRelay() serves pagekite.py connectors: challenge by reconnect (--nozchunks) and wrong secrets",
  ignore: !peer.available,
  async fn(t) {
    await using origin = startOrigin();
    await using relay = relayOn(0);
    const relayPort = relay.addrs[0]!.port;

    await t.step("--nozchunks reconnects with X-PageKite-Replace", async () => {
      await using proxy = startRecordingProxy({ port: relayPort });
      await using py = await startPagekite([
        `--frontend=127.0.0.1:${proxy.port}`,
        "--nozchunks",
        service(FOO, origin),
      ], { ready: () => relay.stats().totals.kites >= 1, timeoutMs: 20_000 });
      // Flow A: SignThis on the first connection, the signed kite in the
      // request of a second one, which replaces the first.
      await waitFor(
        "the relay's answer on the second connection to reach the proxy",
        () => tunnels(proxy).filter((c) => answered(c)).length >= 2,
        5000,
      );
      const connections = tunnels(proxy);
      assert.equal(connections.length, 2);
      const [first, second] = connections.map(transcript);
      assert.ok(first !== undefined && second !== undefined);
      assert.ok(!first.request.features?.includes("ZChunks"));
      assert.deepEqual(first.request.kites.map((k) => k.token), [""]);
      assert.ok(first.response !== undefined);
      const [challenge] = first.response.results;
      assert.ok(challenge?.status === "sign-this");
      assert.equal(challenge.domain, FOO);
      assert.deepEqual(signedInTunnel(first), []);
      assert.ok(first.response.sessionId !== undefined);
      assert.equal(second.request.replace, first.response.sessionId);
      assert.deepEqual(
        second.request.kites.map((k) => `${k.domain} ${k.token}`),
        [`${FOO} ${challenge.token}`],
      );
      assert.ok(second.response !== undefined);
      assert.deepEqual(
        second.response.results.map((r) => `${r.status} ${r.domain}`),
        [`ok ${FOO}`],
      );

      const response = await httpRequest(relayPort, {
        host: FOO,
        path: "/hello",
      });
      assert.equal(response.status, 200);
      assert.equal(text(response), "Hello from the origin\n");
      // The second connection carries the kite, uncompressed both ways.
      const [stats] = relay.stats().tunnels;
      assert.ok(stats !== undefined);
      assert.equal(relay.stats().tunnels.length, 1);
      assert.equal(stats.remote, `127.0.0.1:${connections[1]!.relaySidePort}`);
      assert.deepEqual(stats.kites, [`http:${FOO}`]);
      assert.ok(!stats.compress);
      assert.equal(stats.compressedFramesOut, 0);
      assert.equal(stats.compressedFramesIn, 0);
      assert.ok(!py.crashed(), py.log());
    });

    await t.step("a wrong secret gets Invalid (signature)", async () => {
      const before = origin.seen.length;
      await using proxy = startRecordingProxy({ port: relayPort });
      const invalid = (): KiteResult | undefined =>
        allResults(proxy).find((r) => r.status === "invalid");
      await using py = await startPagekite([
        `--frontend=127.0.0.1:${proxy.port}`,
        service(BAD, origin, "wrongsecret"),
      ], { ready: () => invalid() !== undefined, timeoutMs: 20_000 });
      const result = invalid();
      assert.ok(result?.status === "invalid");
      assert.equal(result.domain, BAD);
      assert.equal(result.reason, "signature");
      assert.ok(
        !allResults(proxy).some((r) => r.status === "ok"),
        "the kite was accepted",
      );

      assertUnavailable(
        await httpRequest(relayPort, { host: BAD, path: "/hello" }),
        relay,
        BAD,
      );
      assert.ok(!liveKites(relay).includes(`http:${BAD}`));
      assert.equal(origin.seen.length, before);
      // No stream was opened toward the connector.
      for (const wire of tunnels(proxy).map(transcript)) {
        assert.deepEqual(
          wire.fromRelay.filter((f) => f.chunk.proto !== undefined),
          [],
        );
      }
      assert.ok(!py.crashed(), py.log());
    });
  },
});

Deno.test({
  name:
    "serveRelay() serves pagekite.py connectors: the connector comes back after the relay restarts",
  ignore: !peer.available,
  async fn() {
    await using origin = startOrigin();
    await using first = relayOn(0);
    const port = first.addrs[0]!.port;
    await using py = await startPagekite([
      `--frontend=127.0.0.1:${port}`,
      service(FOO, origin),
    ], { ready: () => first.stats().totals.kites >= 1, timeoutMs: 20_000 });
    const before = await httpRequest(port, { host: FOO, path: "/hello" });
    assert.equal(before.status, 200);

    await first.shutdown();
    // The new relay takes the same port; pagekite.py redials a relay about
    // a minute after its previous attempt.
    await using second = relayOn(port);
    await waitFor(
      "pagekite.py to reconnect",
      () => second.stats().totals.kites >= 1,
      240_000,
      py.log,
    );
    const seen = origin.seen.length;
    const after = await httpRequest(port, { host: FOO, path: "/hello" });
    assert.equal(after.status, 200);
    assert.equal(text(after), "Hello from the origin\n");
    assert.equal(origin.seen.length, seen + 1);
    assert.ok(!py.crashed(), py.log());
  },
});
