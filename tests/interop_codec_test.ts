// Copyright 2026 the Kitewire authors. MIT license.
// The protocol codecs against the real pagekite.py relay (Debian package
// `pagekite`): this test plays a connector with nothing but protocol/ and
// Deno.connect, completes the in-tunnel challenge, and serves requests that
// the relay compresses to us and that we compress back.
import assert from "node:assert/strict";
import {
  type Chunk,
  ChunkDecoder,
  ChunkEncoder,
  decodeTunnelResponse,
  encodeTunnelRequest,
  findHandshakeEnd,
  kiteRequestHeaders,
  type LostChunk,
  parseKiteResponseHeaders,
  signKiteRequest,
  type TunnelResponse,
} from "../protocol/mod.ts";
import { findPeer } from "./_peers.ts";
import { freePort, startPagekite } from "./_pagekite.ts";

const peer = findPeer("pagekite", "pagekite");
const SECRET = "testsecret";
const DOMAIN = "foo.example.com";
const latin1 = new TextDecoder("latin1");

/** A tunnel connection: reads the head, then frames. */
class TunnelReader {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(65536);
  #head: Uint8Array = new Uint8Array(0);
  readonly decoder = new ChunkDecoder();
  log?: () => string;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async readHead(): Promise<TunnelResponse> {
    for (;;) {
      const end = findHandshakeEnd(this.#head);
      if (end !== -1) {
        const response = decodeTunnelResponse(this.#head.subarray(0, end));
        this.decoder.push(this.#head.slice(end));
        return response;
      }
      const n = await this.#conn.read(this.#buffer);
      assert.ok(n !== null, "relay closed the tunnel during the handshake");
      this.#head = new Uint8Array([
        ...this.#head,
        ...this.#buffer.subarray(0, n),
      ]);
    }
  }

  /** The next chunk, copying its body. */
  async next(): Promise<Chunk | LostChunk> {
    for (;;) {
      const chunk = this.decoder.next();
      if (chunk !== null) {
        return "lost" in chunk ? chunk : { ...chunk, body: chunk.body.slice() };
      }
      const n = await this.#conn.read(this.#buffer);
      assert.ok(n !== null, `relay closed the tunnel:\n${this.log?.()}`);
      this.decoder.push(this.#buffer.subarray(0, n));
    }
  }

  /** Skips chunks until one matches. */
  async until(match: (c: Chunk) => boolean): Promise<Chunk> {
    for (;;) {
      const c = await this.next();
      assert.ok(!("lost" in c), `lost frame: ${JSON.stringify(c)}`);
      if (match(c)) return c;
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

/** Reads exactly `size` bytes (pagekite.py keeps the user socket open). */
async function readExactly(conn: Deno.Conn, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  for (let at = 0; at < size;) {
    const n = await conn.read(out.subarray(at));
    assert.ok(n !== null, `connection closed after ${at} of ${size} bytes`);
    at += n;
  }
  return out;
}

/** A response body: random bytes, or text that deflate shrinks a lot. */
function responseBody(kind: "random" | "text", size: number): Uint8Array {
  if (kind === "random") {
    const out = new Uint8Array(size);
    for (let at = 0; at < size; at += 65536) {
      crypto.getRandomValues(out.subarray(at, Math.min(size, at + 65536)));
    }
    return out;
  }
  const words = Array.from(
    { length: size / 4 },
    (_, i) => (i * 7919 % 1009).toString(36),
  );
  return new TextEncoder().encode(
    words.join(" ").padEnd(size, ".").slice(0, size),
  );
}

Deno.test({
  name:
    "protocol codecs fly a kite through the real pagekite.py relay with ZChunks",
  ignore: !peer.available,
  async fn() {
    const port = freePort();
    await using relay = await startPagekite([
      "--isfrontend",
      "--host=127.0.0.1",
      `--ports=${port}`,
      `--domain=http:${DOMAIN}:${SECRET}`,
    ], { port });

    using tunnel = await Deno.connect({ hostname: "127.0.0.1", port });
    const reader = new TunnelReader(tunnel);
    reader.log = relay.log;
    const salt = crypto.getRandomValues(new Uint8Array(18)).toHex();
    const first = await signKiteRequest(
      { proto: "http", domain: DOMAIN, salt },
      SECRET,
    );
    await writeAll(
      tunnel,
      encodeTunnelRequest({
        kites: [first],
        features: ["AddKites", "ZChunks"],
        version: "kitewire-test",
      }),
    );
    const answer = await reader.readHead();
    assert.ok(answer.features?.includes("ZChunks"));
    assert.ok(answer.features?.includes("AddKites"));
    assert.deepEqual(answer.ports, [port]);
    const challenge = answer.results[0];
    assert.equal(challenge?.status, "sign-this");
    assert.equal(challenge.salt, salt);

    // Flow B: answer the challenge inside the tunnel with a NOOP chunk.
    const toRelay = new ChunkEncoder({ compress: true, compressionLevel: 9 });
    const signed = await signKiteRequest(
      { ...first, token: challenge.token },
      SECRET,
    );
    await writeAll(
      tunnel,
      toRelay.encode({
        noop: true,
        headers: kiteRequestHeaders({
          kites: [signed],
          version: "kitewire-test",
        }),
        body: new TextEncoder().encode("!"),
      }),
    );
    const ok = await reader.until((c) =>
      c.noop === true && c.headers !== undefined
    );
    const results = parseKiteResponseHeaders(ok.headers!);
    assert.deepEqual(results.results.map((r) => [r.status, r.domain]), [[
      "ok",
      DOMAIN,
    ]]);

    // No PING toward this relay: Debian's pagekite.py 1.5.2.201011 answers a
    // connector's PING on a kite without quota with a TypeError in SendPong
    // ("Corrupt chunk") and drops the tunnel.

    for (
      const [kind, size] of [["text", 300_000], ["random", 200_000]] as const
    ) {
      // A user asks the relay for the kite.
      const user = await Deno.connect({ hostname: "127.0.0.1", port });
      const request =
        `GET /${kind} HTTP/1.1\r\nHost: ${DOMAIN}\r\nConnection: close\r\n\r\n`;
      await writeAll(user, new TextEncoder().encode(request));
      const open = await reader.until((c) => c.proto !== undefined);
      assert.equal(open.proto, "http");
      assert.equal(open.host, DOMAIN);
      assert.equal(open.port, port);
      assert.equal(open.remoteIp, "127.0.0.1");
      assert.equal(latin1.decode(open.body), request);
      const sid = open.sid!;

      // Answer through the tunnel, compressed where it pays.
      const body = responseBody(kind, size);
      const head =
        `HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`;
      const wire = toRelay.encode({
        sid,
        body: new Uint8Array([...new TextEncoder().encode(head), ...body]),
      });
      if (kind === "text") {
        assert.match(
          latin1.decode(wire.subarray(0, 16)),
          /^[0-9a-f]+Z[0-9a-f]+\r\n/,
          "compressed frames were sent",
        );
      }
      await writeAll(tunnel, wire);
      await writeAll(
        tunnel,
        toRelay.encode({ sid, eof: "R", body: new Uint8Array() }),
      );

      const received = await readExactly(user, head.length + size);
      user.close();
      const text = latin1.decode(received.subarray(0, head.length));
      assert.equal(text, head);
      assert.deepEqual(received.subarray(head.length), body);
      // The user left: the relay closes the stream.
      await reader.until((c) => c.sid === sid && c.eof !== undefined);
    }
    assert.ok(
      reader.decoder.compressedFrames >= 2,
      `the relay sent ${reader.decoder.compressedFrames} compressed frames`,
    );
    assert.equal(relay.crashed(), false, "the relay logged a crash");
  },
});
