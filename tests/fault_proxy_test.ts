// Copyright 2026 the Kitewire authors. MIT license.
// The fault proxy of tests/_fault_proxy.ts against a TCP echo server: every
// fault is observable from the client (docs/reliability.md §3.3).
import assert from "node:assert/strict";
import { FaultProxy } from "./_fault_proxy.ts";

const encoder = new TextEncoder();

/** A TCP echo server on 127.0.0.1 that passes a client's EOF on. */
class Echo implements AsyncDisposable {
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #tasks = new Set<Promise<void>>();
  /** Connections that ended (EOF or error). */
  ended = 0;

  constructor() {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = this.#listener.addr.port;
    this.#track(this.#accept());
  }

  #track(task: Promise<void>): void {
    const t = task.catch(() => {}).finally(() => this.#tasks.delete(t));
    this.#tasks.add(t);
  }

  async #accept(): Promise<void> {
    for await (const conn of this.#listener) this.#track(this.#echo(conn));
  }

  async #echo(conn: Deno.TcpConn): Promise<void> {
    this.#conns.add(conn);
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let n; (n = await conn.read(buffer)) !== null;) {
        await writeAll(conn, buffer.subarray(0, n));
      }
      await conn.closeWrite();
    } finally {
      this.ended++;
      this.#conns.delete(conn);
      conn.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    for (const conn of this.#conns) conn.close();
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

/** Reads exactly `size` bytes; the size of each read. */
async function readExactly(
  conn: Deno.Conn,
  size: number,
): Promise<{ bytes: Uint8Array; reads: number[] }> {
  const bytes = new Uint8Array(size);
  const reads: number[] = [];
  let at = 0;
  while (at < size) {
    const n = await conn.read(bytes.subarray(at));
    if (n === null) throw new Error(`EOF after ${at} of ${size} bytes`);
    reads.push(n);
    at += n;
  }
  return { bytes, reads };
}

/** Resolves with the read's result, or "timeout" after `ms`. */
async function readWithin(
  conn: Deno.Conn,
  buffer: Uint8Array,
  ms: number,
): Promise<number | null | "timeout" | "error"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const read = conn.read(buffer).catch(() => "error" as const);
  const result = await Promise.race([
    read,
    new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms)),
  ]);
  clearTimeout(timer);
  return result;
}

function pattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
}

async function setup(): Promise<
  { echo: Echo; proxy: FaultProxy; conn: Deno.TcpConn } & AsyncDisposable
> {
  const echo = new Echo();
  const proxy = FaultProxy.listen({ target: { port: echo.port } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  return {
    echo,
    proxy,
    conn,
    async [Symbol.asyncDispose]() {
      try {
        conn.close();
      } catch {
        // closed by the test
      }
      await proxy.close();
      await echo[Symbol.asyncDispose]();
    },
  };
}

Deno.test("FaultProxy passes bytes both ways unchanged", async () => {
  await using s = await setup();
  const data = pattern(200_000);
  const [, echoed] = await Promise.all([
    writeAll(s.conn, data),
    readExactly(s.conn, data.length),
  ]);
  assert.deepEqual(echoed.bytes, data);
  assert.equal(s.proxy.connections, 1);
});

Deno.test("FaultProxy adds latency per direction, changeable at run time", async () => {
  await using s = await setup();
  const ping = encoder.encode("ping");
  const roundTrip = async () => {
    const start = performance.now();
    await writeAll(s.conn, ping);
    await readExactly(s.conn, ping.length);
    return performance.now() - start;
  };
  await roundTrip();
  s.proxy.set("up", { latencyMs: 80 });
  s.proxy.set("down", { latencyMs: 40 });
  const slow = await roundTrip();
  assert.ok(slow >= 118, `round trip ${slow} ms >= 120 ms`);
  assert.ok(slow < 1000, `round trip ${slow} ms`);
  s.proxy.set("both", { latencyMs: undefined });
  const fast = await roundTrip();
  assert.ok(fast < 60, `round trip ${fast} ms without latency`);
});

Deno.test("FaultProxy latency is pipelined, not a throughput cap", async () => {
  await using s = await setup();
  s.proxy.set("down", { latencyMs: 100 });
  const data = pattern(2 * 1024 * 1024);
  const start = performance.now();
  await Promise.all([
    writeAll(s.conn, data),
    readExactly(s.conn, data.length),
  ]);
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 99, `${elapsed} ms`);
  assert.ok(elapsed < 2000, `2 MiB took ${elapsed} ms`);
});

Deno.test("FaultProxy caps bandwidth", async () => {
  await using s = await setup();
  const rate = 100_000;
  s.proxy.set("down", { bytesPerSecond: rate });
  const data = pattern(50_000);
  const start = performance.now();
  await Promise.all([
    writeAll(s.conn, data),
    readExactly(s.conn, data.length),
  ]);
  const seconds = (performance.now() - start) / 1000;
  const throughput = data.length / seconds;
  // 50 kB at 100 kB/s: 0.5 s, less the first tenth of a second (burst).
  assert.ok(throughput <= rate * 1.25, `throughput ${throughput} B/s`);
  assert.ok(throughput >= rate * 0.5, `throughput ${throughput} B/s`);
});

Deno.test("FaultProxy delivers slices as separate pieces", async () => {
  await using s = await setup();
  s.proxy.set("down", { sliceBytes: 7, sliceDelayMs: 15 });
  const data = pattern(70);
  await writeAll(s.conn, data);
  const { bytes, reads } = await readExactly(s.conn, data.length);
  assert.deepEqual(bytes, data);
  assert.ok(reads.every((n) => n <= 7), `reads ${reads}`);
  assert.ok(reads.length >= 10, `reads ${reads}`);
});

Deno.test("FaultProxy blackhole keeps the socket open and forwards nothing", async () => {
  await using s = await setup();
  s.proxy.blackhole();
  await writeAll(s.conn, encoder.encode("lost"));
  const buffer = new Uint8Array(16);
  const pending = s.conn.read(buffer);
  let settled = false;
  pending.finally(() => settled = true).catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(settled, false, "nothing arrives, the socket is not closed");
  assert.equal(s.proxy.connections, 1, "both sockets stay open");
  assert.equal(s.echo.ended, 0);
  // Lifted: new bytes flow again, the dropped ones are gone.
  s.proxy.blackhole(false);
  await writeAll(s.conn, encoder.encode("back"));
  const n = await pending;
  assert.equal(new TextDecoder().decode(buffer.subarray(0, n!)), "back");
});

Deno.test("FaultProxy passes a half-close on and keeps the other direction", async () => {
  await using s = await setup();
  const data = pattern(100_000);
  await writeAll(s.conn, data);
  await s.conn.closeWrite();
  // The echo server sees EOF only through the proxy; it then echoes the
  // rest and half-closes back, which the proxy passes on too.
  const { bytes } = await readExactly(s.conn, data.length);
  assert.deepEqual(bytes, data);
  assert.equal(await readWithin(s.conn, new Uint8Array(16), 2000), null);
});

Deno.test("FaultProxy.halfClose() shuts one direction on demand", async () => {
  await using s = await setup();
  await writeAll(s.conn, encoder.encode("abc"));
  await readExactly(s.conn, 3);
  s.proxy.halfClose("up"); // the echo server reads EOF and half-closes back
  assert.equal(await readWithin(s.conn, new Uint8Array(16), 2000), null);
});

Deno.test("FaultProxy.reset() closes both sockets at once", async () => {
  await using s = await setup();
  await writeAll(s.conn, encoder.encode("abc"));
  await readExactly(s.conn, 3);
  s.proxy.reset();
  const result = await readWithin(s.conn, new Uint8Array(16), 2000);
  assert.ok(result === null || result === "error", `read gave ${result}`);
  const deadline = Date.now() + 2000;
  while (s.echo.ended === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(s.echo.ended, 1, "the target's socket closed too");
  assert.equal(s.proxy.connections, 0);
});

Deno.test("FaultProxy.close() is idempotent and ends every task", async () => {
  const echo = new Echo();
  const proxy = FaultProxy.listen({ target: { port: echo.port } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  await writeAll(conn, encoder.encode("x"));
  await readExactly(conn, 1);
  await Promise.all([proxy.close(), proxy.close()]);
  await proxy.close();
  assert.equal(proxy.connections, 0);
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port: proxy.port }),
    Deno.errors.ConnectionRefused,
  );
  conn.close();
  await echo[Symbol.asyncDispose]();
});
