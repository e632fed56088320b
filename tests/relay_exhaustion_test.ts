// Copyright 2026 the Kitewire authors. MIT license.
// Descriptor exhaustion (docs/reliability.md §3.2 "FD exhaustion"): a relay
// in a child process under `prlimit --nofile=256`, one tunnel from our
// connector, then 1,000 connection attempts that never send a byte. The
// relay must not crash, the tunnel must keep serving during the flood, and
// everything must work again after it.
import assert from "node:assert/strict";
import { connectKites, type ConnectorKite } from "../connector/mod.ts";
import { httpRequest } from "./_http.ts";
import { findPeer } from "./_peers.ts";

const prlimit = findPeer("prlimit", "util-linux");
const SECRET = "s3cret";
const FOO = "foo.example.com";
const BAR = "bar.example.com";

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function status(port: number, host: string): Promise<number> {
  try {
    const r = await httpRequest(port, { host, path: "/" });
    return r.status;
  } catch {
    return 0;
  }
}

async function waitServed(
  port: number,
  host: string,
  timeoutMs: number,
): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await status(port, host) === 200) return Date.now() - started;
    await delay(50);
  }
  throw new Error(`${host} was not served within ${timeoutMs} ms`);
}

function kite(domain: string, port: number): ConnectorKite {
  return {
    proto: "http",
    domain,
    secret: SECRET,
    backend: { host: "127.0.0.1", port },
  };
}

Deno.test({
  name: "serveRelay() survives running out of descriptors and recovers",
  ignore: !prlimit.available,
  async fn() {
    await using origin = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () => new Response("origin"),
    );
    const script = new URL("./_relay_child.ts", import.meta.url).pathname;
    const child = new Deno.Command("prlimit", {
      args: ["--nofile=256", Deno.execPath(), "run", "-A", script],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let exited = false;
    const statusPromise = child.status.then((s) => {
      exited = true;
      return s;
    });
    const stderr = new Response(child.stderr).text();
    const flood: Deno.TcpConn[] = [];
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let line = "";
      while (!line.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`relay exited: ${await stderr}`);
        line += value;
      }
      reader.releaseLock();
      void child.stdout.cancel().catch(() => {});
      const port = (JSON.parse(line) as { port: number }).port;

      await using first = connectKites({
        relay: { hostname: "127.0.0.1", port },
        kites: [kite(FOO, origin.addr.port)],
        reconnect: { initialMs: 50, maxMs: 500 },
        onError: () => {},
      });
      await waitServed(port, FOO, 10_000);

      // 1,000 connection attempts in batches of 100, held open.
      let served = 0;
      for (let batch = 0; batch < 10; batch++) {
        const attempts = await Promise.allSettled(
          Array.from({ length: 100 }, () =>
            Deno.connect({
              hostname: "127.0.0.1",
              port,
              signal: AbortSignal.timeout(3000),
            } as Deno.ConnectOptions)),
        );
        for (const a of attempts) {
          if (a.status === "fulfilled") flood.push(a.value);
        }
        if (batch === 4 || batch === 9) {
          // During the flood the tunnel still serves.
          await waitServed(port, FOO, 15_000);
          served++;
        }
      }
      assert.equal(served, 2);
      assert.equal(exited, false, "the relay is alive");

      // The load ends: full recovery, a new tunnel included.
      for (const conn of flood.splice(0)) conn.close();
      await waitServed(port, FOO, 10_000);
      await using second = connectKites({
        relay: { hostname: "127.0.0.1", port },
        kites: [kite(BAR, origin.addr.port)],
        reconnect: { initialMs: 50, maxMs: 500 },
        onError: () => {},
      });
      await waitServed(port, BAR, 10_000);
      for (let i = 0; i < 20; i++) {
        assert.equal(await status(port, i % 2 ? FOO : BAR), 200);
      }
      assert.equal(exited, false, "the relay is alive");
      await second.shutdown();
      await first.shutdown();
    } finally {
      for (const conn of flood) conn.close();
      await child.stdin.close().catch(() => {});
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
      }, 5000);
      const s = await statusPromise;
      clearTimeout(timer);
      const err = await stderr;
      assert.ok(!/panicked/.test(err), err);
      assert.equal(s.code, 0, err);
      // The relay did run out of descriptors (reported once per streak).
      assert.match(err, /"emfile":[1-9]/, err);
    }
  },
});
