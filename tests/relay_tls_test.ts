// Copyright 2026 the Kitewire authors. MIT license.
// The relay's TLS on 127.0.0.1 (spec §1.1, §4.3, §4.4, §8.7): SNI
// pass-through to an https kite behind connectKites(), termination for
// tlsEndpoints (RTLS: 1, X-Forwarded-Proto: https, X-PageKite-SSL-OK,
// wildcard endpoints, tlsDefaultName for a ClientHello without SNI),
// TLS-wrapped tunnels (direct and after CONNECT name:443), and the
// access-denied alert. Certificates: tests/testdata/certs/README.md.
import assert from "node:assert/strict";
import { connect as connectNodeTls } from "node:tls";
import { connectKites, type ConnectorKite } from "../connector/mod.ts";
import { type RelayOptions, serveRelay } from "../relay/mod.ts";
import { ScriptedConnector, type ScriptedStream } from "./_connector.ts";
import { CAPTURED_HELLO } from "./_sniff.ts";

const CERTS = new URL("./testdata/certs/", import.meta.url);
const CA = await Deno.readTextFile(new URL("ca.pem", CERTS));
const CERT = await Deno.readTextFile(new URL("leaf.pem", CERTS));
const KEY = await Deno.readTextFile(new URL("leaf.key", CERTS));
const SECRET = "s3cret";
const TLS_ALERT = Uint8Array.of(0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function startRelay(options: RelayOptions = {}) {
  return serveRelay({
    listen: [{ hostname: "127.0.0.1", port: 0 }],
    kites: [{ domain: "*.example.com", secret: SECRET }, {
      domain: "*.tls.example.com",
      secret: SECRET,
    }],
    protos: ["http", "https"],
    tlsEndpoints: [
      { name: "relay.example.com", cert: CERT, key: KEY },
      { name: "*.tls.example.com", cert: CERT, key: KEY },
    ],
    ...options,
  });
}

async function waitUntil(condition: () => boolean, what: string) {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function readAll(conn: Deno.Conn): Promise<string> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(16 * 1024);
  for (let n; (n = await conn.read(buffer)) !== null;) {
    parts.push(buffer.slice(0, n));
  }
  return decoder.decode(concat(parts));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

/** TLS to the relay, verifying `name` while connecting by IP. */
async function connectTls(port: number, name: string): Promise<Deno.TlsConn> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  return await Deno.startTls(tcp, { hostname: name, caCerts: [CA] });
}

/** One HTTP/1.1 request with `Connection: close`; the whole answer. */
async function get(conn: Deno.Conn, host: string): Promise<string> {
  await writeAll(
    conn,
    encoder.encode(
      `GET /hello HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    ),
  );
  return await readAll(conn);
}

/** Flies kites with connectKites() and waits until they all fly. */
async function flyKites(port: number, kites: ConnectorKite[]) {
  const connector = connectKites({
    relay: { hostname: "127.0.0.1", port },
    kites,
    reconnect: { initialMs: 20, maxMs: 100 },
  });
  const reading = (async () => {
    for await (const _ of connector.events) { /* drain */ }
  })();
  await waitUntil(
    () => connector.stats().kites.every((k) => k.status === "flying"),
    "the kites to fly",
  );
  return {
    connector,
    async [Symbol.asyncDispose]() {
      await connector.shutdown();
      await reading;
    },
  };
}

/** A scripted stream handler that answers one HTTP request. */
async function answerHttp(stream: ScriptedStream): Promise<void> {
  const body = `tls=${
    stream.first.remoteTls === true
  } host=${stream.first.host}`;
  await stream.write(
    encoder.encode(
      `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    ),
  );
  await stream.end("RW");
}

Deno.test("serveRelay() passes a ClientHello for an https kite through untouched", async () => {
  await using origin = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: CERT,
    key: KEY,
    onListen() {},
  }, (request) => new Response(`secure ${new URL(request.url).pathname}`));
  await using relay = startRelay();
  const port = relay.addrs[0]!.port;
  await using _kites = await flyKites(port, [{
    proto: "https",
    domain: "secure.example.com",
    secret: SECRET,
    backend: { host: "127.0.0.1", port: origin.addr.port },
  }]);
  using conn = await connectTls(port, "secure.example.com");
  const answer = await get(conn, "secure.example.com");
  assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(answer, /secure \/hello$/);
});

Deno.test("serveRelay() terminates TLS for an endpoint: RTLS and X-Forwarded-Proto", async (t) => {
  await using origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) =>
      request.method === "POST"
        ? new Response(await request.arrayBuffer())
        : new Response(`proto=${request.headers.get("x-forwarded-proto")}`),
  );
  await using relay = startRelay();
  const port = relay.addrs[0]!.port;
  await using _kites = await flyKites(port, [{
    proto: "http",
    domain: "www.tls.example.com",
    secret: SECRET,
    backend: { host: "127.0.0.1", port: origin.addr.port },
  }]);
  await using scripted = await ScriptedConnector.connect({
    port,
    kites: [
      { proto: "http", domain: "app.tls.example.com", secret: SECRET },
      { proto: "http", domain: "plain.example.com", secret: SECRET },
    ],
    onStream: answerHttp,
  });

  await t.step("the backend sees X-Forwarded-Proto: https", async () => {
    using conn = await connectTls(port, "www.tls.example.com");
    const answer = await get(conn, "www.tls.example.com");
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(answer, /proto=https$/);
  });

  await t.step("2 MiB each way through a terminated stream", async () => {
    const body = new Uint8Array(2 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 11)) & 0xff;
    using conn = await connectTls(port, "www.tls.example.com");
    const head = `POST /echo HTTP/1.1\r\nHost: www.tls.example.com\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    const [, answer] = await Promise.all([
      writeAll(conn, concat([encoder.encode(head), body])),
      (async () => {
        const parts: Uint8Array[] = [];
        const buffer = new Uint8Array(64 * 1024);
        for (let n; (n = await conn.read(buffer)) !== null;) {
          parts.push(buffer.slice(0, n));
        }
        return concat(parts);
      })(),
    ]);
    const text = decoder.decode(answer.subarray(0, 200));
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    const start = text.indexOf("\r\n\r\n") + 4;
    assert.deepEqual(answer.subarray(start), body);
  });

  await t.step("the first chunk says RTLS: 1 (wildcard endpoint)", async () => {
    using conn = await connectTls(port, "app.tls.example.com");
    const answer = await get(conn, "app.tls.example.com");
    assert.match(answer, /tls=true host=app\.tls\.example\.com$/);
  });

  await t.step("plain HTTP has no RTLS", async () => {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const answer = await get(conn, "plain.example.com");
    assert.match(answer, /tls=false host=plain\.example\.com$/);
  });

  await t.step("X-PageKite-SSL-OK for kites an endpoint covers", () => {
    assert.equal(scripted.result("app.tls.example.com")?.status, "ok");
    assert.equal(
      (scripted.result("app.tls.example.com") as { tls?: boolean }).tls,
      true,
    );
    assert.equal(scripted.result("plain.example.com")?.status, "ok");
    assert.equal(
      (scripted.result("plain.example.com") as { tls?: boolean }).tls,
      undefined,
    );
  });

  await t.step(
    "a name with neither kite nor endpoint gets the alert",
    async () => {
      using tcp = await Deno.connect({ hostname: "127.0.0.1", port });
      // A real ClientHello for secure.example.com: no https kite flies it
      // here, and no endpoint covers it.
      await writeAll(tcp, CAPTURED_HELLO);
      const answer = new Uint8Array(64);
      let length = 0;
      for (let n; (n = await tcp.read(answer.subarray(length))) !== null;) {
        length += n;
      }
      assert.deepEqual(answer.subarray(0, length), TLS_ALERT);
    },
  );

  await t.step("Deno.startTls to an unknown name fails", async () => {
    await assert.rejects(async () => {
      using conn = await connectTls(port, "nobody.example.com");
      await conn.handshake();
    });
  });
});

Deno.test("serveRelay() uses tlsDefaultName for a ClientHello without SNI", async () => {
  for (const tlsDefaultName of [undefined, "app.tls.example.com"]) {
    await using relay = startRelay(
      tlsDefaultName === undefined ? {} : { tlsDefaultName },
    );
    const port = relay.addrs[0]!.port;
    await using _scripted = await ScriptedConnector.connect({
      port,
      kites: [{ proto: "http", domain: "app.tls.example.com", secret: SECRET }],
      onStream: answerHttp,
    });
    // node:tls sends no SNI when it connects to an IP address.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connectNodeTls({
        host: "127.0.0.1",
        port,
        ca: [CA],
        checkServerIdentity: () => undefined,
      });
      const parts: Uint8Array[] = [];
      socket.on("secureConnect", () => {
        socket.write(
          "GET / HTTP/1.1\r\nHost: app.tls.example.com\r\nConnection: close\r\n\r\n",
        );
      });
      socket.on("data", (data: Uint8Array) => parts.push(data));
      socket.on("end", () => resolve(decoder.decode(concat(parts))));
      socket.on("error", (error) => {
        socket.destroy();
        reject(error);
      });
    }).catch((error: Error) => `error: ${error.message}`);
    if (tlsDefaultName === undefined) {
      assert.match(answer, /^error: /);
    } else {
      assert.match(answer, /tls=true host=app\.tls\.example\.com$/);
    }
  }
});

for (const transport of ["direct TLS", "CONNECT then TLS"] as const) {
  Deno.test(`serveRelay() accepts a TLS-wrapped tunnel (${transport})`, async () => {
    await using relay = startRelay();
    const port = relay.addrs[0]!.port;
    await using scripted = await ScriptedConnector.connect({
      port,
      kites: [{ proto: "http", domain: "foo.example.com", secret: SECRET }],
      onStream: answerHttp,
      dial: async (relayPort) => {
        const tcp = await Deno.connect({
          hostname: "127.0.0.1",
          port: relayPort,
        });
        if (transport === "CONNECT then TLS") {
          await writeAll(
            tcp,
            encoder.encode(
              "CONNECT relay.example.com:443 HTTP/1.1\r\n" +
                "Host: relay.example.com\r\n\r\n",
            ),
          );
          const expected = "HTTP/1.0 200 Connection Established\r\n\r\n";
          const head = new Uint8Array(expected.length);
          for (let at = 0; at < head.length;) {
            const n = await tcp.read(head.subarray(at));
            if (n === null) throw new Error("The relay closed the CONNECT");
            at += n;
          }
          assert.equal(decoder.decode(head), expected);
        }
        return await Deno.startTls(tcp, {
          hostname: "relay.example.com",
          caCerts: [CA],
        });
      },
    });
    assert.equal(scripted.result("foo.example.com")?.status, "ok");
    await waitUntil(
      () => relay.stats().tunnels.some((t) => t.kites.length > 0),
      "the relay to list the kite",
    );
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const answer = await get(conn, "foo.example.com");
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(answer, /tls=false host=foo\.example\.com$/);
    await scripted.close();
  });
}

Deno.test("serveRelay() answers CONNECT name:443 for an unknown name with 503", async () => {
  await using relay = startRelay();
  using tcp = await Deno.connect({
    hostname: "127.0.0.1",
    port: relay.addrs[0]!.port,
  });
  await writeAll(
    tcp,
    encoder.encode("CONNECT nobody.example.org:443 HTTP/1.1\r\n\r\n"),
  );
  assert.match(await readAll(tcp), /^HTTP\/1\.0 503 Unavailable\r\n/);
});
