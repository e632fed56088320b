// Copyright 2026 the Kitewire authors. MIT license.
// The relay edge on 127.0.0.1: end-user CONNECT (spec §4.4) to raw and
// HTTP kites, numeric raw-port listeners (§4.5), XMPP/IRC/Minecraft
// routing (§4.1), port aliases, and the rule that the relay never dials:
// a static scan of relay/*.ts plus a canary listener that must never see a
// connection.
import assert from "node:assert/strict";
import { connectKites } from "../connector/mod.ts";
import type { Chunk } from "../protocol/mod.ts";
import {
  type RelayOptions,
  type RelayServer,
  serveRelay,
} from "../relay/mod.ts";
import {
  ScriptedConnector,
  type ScriptedKite,
  type ScriptedStream,
  waitUntil,
} from "./_connector.ts";
import { HttpClient } from "./_http.ts";

const SECRET = "s3cret";
const ESTABLISHED = "HTTP/1.0 200 Connection Established\r\n\r\n";
const UNAVAILABLE = "HTTP/1.0 503 Unavailable\r\n\r\n";
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

/** A port that was free a moment ago. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A listener that counts connections: the relay must never dial it. */
class Canary implements AsyncDisposable {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #loop: Promise<void>;
  accepted = 0;

  constructor() {
    this.#loop = (async () => {
      try {
        for await (const conn of this.#listener) {
          this.accepted++;
          conn.close();
        }
      } catch { /* closed */ }
    })();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#loop;
    assert.equal(this.accepted, 0, "the relay dialed the canary");
  }
}

/** A TCP echo server. */
class EchoServer implements AsyncDisposable {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #conns = new Set<Promise<void>>();
  readonly #loop: Promise<void>;

  constructor() {
    this.#loop = (async () => {
      try {
        for await (const conn of this.#listener) {
          const task = this.#echo(conn);
          this.#conns.add(task);
          void task.finally(() => this.#conns.delete(task));
        }
      } catch { /* closed */ }
    })();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async #echo(conn: Deno.Conn): Promise<void> {
    try {
      const buffer = new Uint8Array(4096);
      for (let n; (n = await conn.read(buffer)) !== null;) {
        await conn.write(buffer.subarray(0, n));
      }
      await conn.closeWrite();
    } catch {
      /* gone */
    } finally {
      conn.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#loop;
    await Promise.allSettled([...this.#conns]);
  }
}

async function dial(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

/** Reads until the text read so far contains `needle`; null at EOF first. */
async function readUntil(
  conn: Deno.Conn,
  needle: string,
): Promise<string | null> {
  let text = "";
  const buffer = new Uint8Array(4096);
  while (!text.includes(needle)) {
    const n = await conn.read(buffer);
    if (n === null) return null;
    text += latin1.decode(buffer.subarray(0, n));
  }
  return text;
}

/** Reads to EOF. */
async function readAll(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buffer = new Uint8Array(4096);
  try {
    for (let n; (n = await conn.read(buffer)) !== null;) {
      text += latin1.decode(buffer.subarray(0, n));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  }
  return text;
}

/** Sends a CONNECT and returns everything the relay answered until EOF. */
async function connectRefused(port: number, target: string): Promise<string> {
  using conn = await dial(port);
  await conn.write(encoder.encode(`CONNECT ${target} HTTP/1.1\r\n\r\n`));
  return await readAll(conn);
}

/** Streams the connector saw, answering each with `reply(first chunk)`. */
function recordStreams(
  reply: (first: Chunk) => string,
): {
  firsts: Chunk[];
  onStream: (stream: ScriptedStream) => Promise<void>;
} {
  const firsts: Chunk[] = [];
  return {
    firsts,
    onStream: async (stream) => {
      firsts.push(stream.first);
      await stream.write(encoder.encode(reply(stream.first)));
      await stream.end("R");
      await stream.readAll();
    },
  };
}

Deno.test("relay CONNECT to a raw kite reaches connectKites' echo backend", async () => {
  await using canary = new Canary();
  await using echo = new EchoServer();
  await using relay = startRelay({ rawPorts: ["virtual"] });
  await using connector = connectKites({
    relay: { hostname: "127.0.0.1", port: portOf(relay) },
    kites: [{
      proto: "raw",
      domain: "ssh.example.com",
      publicPort: 2222,
      secret: SECRET,
      backend: { host: "127.0.0.1", port: echo.port },
    }],
  });
  await waitUntil(
    () => connector.stats().kites.every((k) => k.status === "flying"),
    "the raw kite to fly",
  );
  using conn = await dial(portOf(relay));
  await conn.write(
    encoder.encode("CONNECT ssh.example.com:2222 HTTP/1.1\r\n\r\n"),
  );
  assert.equal(await readUntil(conn, "\r\n\r\n"), ESTABLISHED);
  await conn.write(encoder.encode("hello raw world\n"));
  assert.equal(await readUntil(conn, "\n"), "hello raw world\n");
  await conn.closeWrite();
  assert.equal(await readAll(conn), "");
  assert.equal(canary.accepted, 0);
});

Deno.test("relay CONNECT answers 503 for hosts and ports no kite serves", async () => {
  await using canary = new Canary();
  await using relay = startRelay({ rawPorts: [2222] });
  const { onStream, firsts } = recordStreams(() => "");
  await using connector = await ScriptedConnector.connect({
    port: portOf(relay),
    kites: [
      { proto: "raw", domain: "ssh.example.com", secret: SECRET, port: 2222 },
      { proto: "raw", domain: "*.wild.example.com", secret: SECRET },
      { proto: "http", domain: "*.example.com", secret: SECRET },
      { proto: "http", domain: "unknown", secret: SECRET },
    ],
    onStream,
  });
  const [answer] = connector.answers;
  assert.deepEqual(answer?.rawPorts, [2222]);
  assert.ok(answer?.protos?.includes("raw"));
  assert.equal(connector.result("ssh.example.com", "raw", 2222)?.status, "ok");
  // raw-23 is not a raw port: refused.
  await using refused = await ScriptedConnector.connect({
    port: portOf(relay),
    kites: [{
      proto: "raw",
      domain: "bad.example.com",
      secret: SECRET,
      port: 23,
    }],
  });
  const bad = refused.result("bad.example.com", "raw", 23);
  assert.equal(bad?.status, "invalid");
  assert.equal(bad?.status === "invalid" && bad.reason, "port");
  const port = portOf(relay);
  for (
    const target of [
      `127.0.0.1:${canary.port}`,
      `localhost:${canary.port}`,
      "nosuch.example.com:2222",
      "ssh.example.com:22", // not a raw port
      "a.wild.example.com:2222", // CONNECT matches names exactly
      "bad.example.com:23",
      "foo.example.com:80", // only a wildcard http kite
      "foo.example.com:443", // no https kite or TLS endpoint
      "[::1]:80",
    ]
  ) {
    assert.equal(await connectRefused(port, target), UNAVAILABLE, target);
  }
  assert.equal(firsts.length, 0);
  assert.equal(canary.accepted, 0);
});

Deno.test("relay CONNECT host:80 carries the tunneled HTTP request to the http kite", async () => {
  await using canary = new Canary();
  await using relay = startRelay();
  const { onStream, firsts } = recordStreams(() =>
    "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nthrough"
  );
  await using _connector = await ScriptedConnector.connect({
    port: portOf(relay),
    kites: [
      { proto: "http", domain: "foo.example.com", secret: SECRET },
      { proto: "http2", domain: "bar.example.com", secret: SECRET },
    ],
    onStream,
  });
  for (
    const [host, port] of [["foo.example.com", 80], [
      "bar.example.com",
      8080,
    ]] as const
  ) {
    using conn = await dial(portOf(relay));
    await conn.write(
      encoder.encode(`CONNECT ${host}:${port} HTTP/1.1\r\n\r\n`),
    );
    assert.equal(await readUntil(conn, "\r\n\r\n"), ESTABLISHED);
    const request = `GET /viaconnect HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    // The request trickles in: the relay waits for its whole head.
    await conn.write(encoder.encode(request.slice(0, 10)));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await conn.write(encoder.encode(request.slice(10)));
    assert.match(
      await readAll(conn),
      /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nthrough$/,
    );
    const first = firsts.at(-1)!;
    assert.equal(first.proto, port === 80 ? "http" : "http2");
    assert.equal(first.host, host);
    assert.equal(first.port, port);
    assert.equal(latin1.decode(first.body), request);
  }
  assert.equal(canary.accepted, 0);
});

Deno.test("relay routes a numeric raw port to the raw kite the client IP last asked for over HTTP", async () => {
  const rawPort = freePort();
  await using relay = startRelay({ rawPorts: [rawPort], rawPortMemoryMs: 300 });
  const raw = new Map<number, ScriptedStream>();
  await using connector = await ScriptedConnector.connect({
    port: portOf(relay),
    kites: [
      { proto: "http", domain: "foo.example.com", secret: SECRET },
      {
        proto: "raw",
        domain: "foo.example.com",
        secret: SECRET,
        port: rawPort,
      },
    ],
    onStream: async (stream) => {
      if (stream.first.proto === "raw") {
        raw.set(stream.sid, stream);
        for await (const body of stream) await stream.write(body); // echo
        await stream.end("R");
        return;
      }
      await stream.write(encoder.encode(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
      ));
      await stream.end("R");
      await stream.readAll();
    },
  });
  assert.deepEqual(connector.answers[0]?.rawPorts, [rawPort]);
  assert.deepEqual(connector.answers[0]?.ports, [portOf(relay)]);

  // No HTTP request from this IP yet: closed.
  {
    using conn = await dial(rawPort);
    assert.equal(await readAll(conn), "");
  }
  {
    using client = await HttpClient.connect(portOf(relay));
    const response = await client.request({ host: "foo.example.com" });
    assert.equal(response.status, 200);
  }
  {
    using conn = await dial(rawPort);
    await conn.write(encoder.encode("SSH-2.0-test\r\n"));
    assert.equal(await readUntil(conn, "\r\n"), "SSH-2.0-test\r\n");
    const stream = [...raw.values()].at(-1)!;
    assert.equal(stream.first.host, "foo.example.com");
    assert.equal(stream.first.port, rawPort);
    assert.equal(stream.first.body.length, 0);
    await conn.closeWrite();
    assert.equal(await readAll(conn), "");
  }
  // Forgotten after rawPortMemoryMs.
  await new Promise((resolve) => setTimeout(resolve, 350));
  {
    using conn = await dial(rawPort);
    assert.equal(await readAll(conn), "");
  }
  assert.equal(raw.size, 1);
});

Deno.test("relay routes XMPP, IRC and Minecraft to their kites", async () => {
  await using relay = startRelay({
    protos: ["http", "xmpp", "irc", "minecraft"],
  });
  const port = portOf(relay);
  const { onStream, firsts } = recordStreams((first) => `hi ${first.proto}\n`);
  const kites: ScriptedKite[] = [
    { proto: "xmpp", domain: "chat.example.com", secret: SECRET },
    { proto: "irc", domain: "*.irc.example.com", secret: SECRET },
    { proto: "minecraft", domain: "mc.example.com", secret: SECRET },
  ];
  await using _connector = await ScriptedConnector.connect({
    port,
    kites,
    onStream,
  });

  const xmpp = "<?xml version='1.0'?><stream:stream to='Chat.Example.com' " +
    "version='1.0' xmlns='jabber:client' " +
    "xmlns:stream='http://etherx.jabber.org/streams'>";
  const irc =
    "NICK alice@a.irc.example.com\r\nUSER alice 0 * :Alice\r\nJOIN #x\r\n";
  const address = encoder.encode("mc.example.com");
  const handshake = (toPort: number) => {
    const body = [
      0x00,
      0xff,
      0x05,
      address.length,
      ...address,
      toPort >> 8,
      toPort & 0xff,
      0x01,
    ];
    return new Uint8Array([body.length, ...body, 0x01, 0x00]);
  };
  const cases: [Uint8Array, string, string, string][] = [
    [encoder.encode(xmpp), "xmpp", "chat.example.com", xmpp],
    [
      encoder.encode(irc),
      "irc",
      "a.irc.example.com",
      "NICK alice\r\nUSER alice 0 * :Alice\r\nJOIN #x\r\n",
    ],
    [
      handshake(port),
      "minecraft",
      "mc.example.com",
      latin1.decode(handshake(port)),
    ],
  ];
  for (const [bytes, proto, host, body] of cases) {
    using conn = await dial(port);
    await conn.write(bytes);
    assert.equal(await readAll(conn), `hi ${proto}\n`, proto);
    const first = firsts.at(-1)!;
    assert.equal(first.proto, proto);
    assert.equal(first.host, host);
    assert.equal(first.port, port);
    assert.equal(latin1.decode(first.body), body);
  }
  // A Minecraft handshake for another port, and unknown domains: closed.
  const closed = [
    handshake(port === 25565 ? 25566 : 25565),
    encoder.encode(xmpp.replace("Chat", "other")),
    encoder.encode(irc.replace("a.irc", "irc")),
  ];
  for (const bytes of closed) {
    using conn = await dial(port);
    await conn.write(bytes);
    assert.equal(await readAll(conn), "");
  }
  assert.equal(firsts.length, cases.length);
});

Deno.test("relay port aliases route and report the target port", async () => {
  const aliasPort = freePort();
  await using _relay = startRelay({
    listen: [{ hostname: "127.0.0.1", port: aliasPort }],
    portAliases: { [aliasPort]: 8080 },
  });
  const { onStream, firsts } = recordStreams(() =>
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
  );
  await using connector = await ScriptedConnector.connect({
    port: aliasPort,
    kites: [
      { proto: "http", domain: "foo.example.com", secret: SECRET, port: 8080 },
    ],
    onStream,
  });
  assert.deepEqual(connector.answers[0]?.ports, [8080]);
  assert.equal(connector.result("foo.example.com", "http", 8080)?.status, "ok");
  // The alias itself is no public port.
  await using refused = await ScriptedConnector.connect({
    port: aliasPort,
    kites: [{
      proto: "http",
      domain: "bar.example.com",
      secret: SECRET,
      port: aliasPort,
    }],
  });
  assert.equal(
    refused.result("bar.example.com", "http", aliasPort)?.status,
    "invalid",
  );
  using client = await HttpClient.connect(aliasPort);
  const response = await client.request({ host: "foo.example.com" });
  assert.equal(response.status, 200);
  assert.equal(firsts[0]?.port, 8080);
  assert.equal(firsts[0]?.remoteIp, "127.0.0.1");
  // Behind a local reverse proxy on the alias port, X-Forwarded-For is the
  // user (pagekite.py --portalias).
  using proxied = await HttpClient.connect(aliasPort);
  const viaProxy = await proxied.request({
    host: "foo.example.com",
    headers: [["X-Forwarded-For", "203.0.113.9, 10.0.0.1"]],
  });
  assert.equal(viaProxy.status, 200);
  assert.equal(firsts[1]?.remoteIp, "203.0.113.9");
});

Deno.test("relay sources never dial out", async () => {
  const dir = new URL("../relay/", import.meta.url);
  const forbidden: [RegExp, string][] = [
    [/\bDeno\s*\.\s*connect(Tls|Quic)?\b/, "Deno.connect*"],
    [/(^|[^\w.#])connectTls\s*\(/m, "connectTls("],
    [/\bfetch\s*\(/, "fetch("],
    [/\bnew\s+WebSocket(Stream)?\s*\(/, "new WebSocket("],
  ];
  // node: modules that can dial, and their calls that do.
  const nodeImport =
    /import\s+(?:type\s+)?(?:\*\s+as\s+(\w+)|(\w+)|\{([^}]*)\})\s+from\s+["'](?:node:)?(?:net|tls|http|https|http2)["']/g;
  const dialing = /^(connect|createConnection|request|get)$/;
  let scanned = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    if (entry.name.endsWith("_test.ts")) continue;
    const text = await Deno.readTextFile(new URL(entry.name, dir));
    const code = text.replace(/\/\*[^]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    scanned++;
    for (const [pattern, what] of forbidden) {
      assert.ok(!pattern.test(code), `relay/${entry.name} calls ${what}`);
    }
    for (const [, namespace, name, names] of code.matchAll(nodeImport)) {
      for (const imported of (names ?? "").split(",")) {
        const local = imported.trim().replace(/^type\s+/, "")
          .split(/\s+as\s+/)[0]!;
        assert.ok(
          !dialing.test(local),
          `relay/${entry.name} imports ${local} from a node: network module`,
        );
      }
      const object = namespace ?? name;
      if (object === undefined) continue;
      const call = new RegExp(
        `\\b${object}\\s*\\.\\s*(connect|createConnection|request|get)\\s*\\(`,
      );
      assert.ok(!call.test(code), `relay/${entry.name} dials with ${object}`);
    }
  }
  assert.ok(scanned >= 10, `scanned only ${scanned} files`);
});
