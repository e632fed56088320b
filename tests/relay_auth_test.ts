// Copyright 2026 the Kitewire authors. MIT license.
// External auth apps at the relay (spec §7.1, §7.3 item 2): a bash script
// written to a temp dir plays the app. Kites fly with its secret and carry
// its quota; every failure (crash, junk, timeout, too many lookups, the
// handshake deadline) refuses the kite.
import assert from "node:assert/strict";
import {
  type RelayOptions,
  type RelayServer,
  serveRelay,
} from "../relay/mod.ts";
import { delay, ScriptedConnector, waitUntil } from "./_connector.ts";

const APP_SECRET = "app-s3cret";

const SCRIPT = `#!/bin/bash
case "$1" in
  --capabilities) echo "AUTH SERVER" ;;
  --auth)
    case "$2" in
      foo.auth.test)
        echo '{"secret": "${APP_SECRET}", "quota_kb": 10240, "quota_days": 24, "quota_conns": 5, "ips_per_sec-ips": 3, "ips_per_sec-secs": 60}' ;;
      bar.auth.test)
        echo '{"secret": "${APP_SECRET}", "quota_kb": 2048, "quota_days": 30}' ;;
      broke.auth.test) echo '{"secret": "${APP_SECRET}", "quota_kb": 0, "reason": "noquota"}' ;;
      crash.auth.test) echo '{"secret": "${APP_SECRET}"}'; exit 1 ;;
      junk.auth.test) echo 'this is not json' ;;
      hang.auth.test) exec sleep 30 ;;
      *) echo '{"error": "no such kite"}' ;;
    esac ;;
  *) exit 2 ;;
esac
`;

async function writeApp(dir: string, text = SCRIPT): Promise<string> {
  const path = `${dir}/authapp.sh`;
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, 0o755);
  return path;
}

async function withApp(
  fn: (command: string) => Promise<void>,
  text?: string,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kitewire_auth_" });
  try {
    await fn(await writeApp(dir, text));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function startRelay(command: string, options: RelayOptions = {}): RelayServer {
  return serveRelay({
    listen: [{ hostname: "127.0.0.1", port: 0 }],
    kites: [{ domain: "static.example.com", secret: "static" }],
    authApps: [{ domain: "auth.test", command, timeoutMs: 3000 }],
    ...options,
  });
}

function fly(
  relay: RelayServer,
  domains: string[],
  secret = APP_SECRET,
): Promise<ScriptedConnector> {
  return ScriptedConnector.connect({
    port: relay.addrs[0]!.port,
    kites: domains.map((domain) => ({ proto: "http", domain, secret })),
    signThis: "reconnect", // so the handshake head carries the results
  });
}

function why(connector: ScriptedConnector, domain: string): string {
  const result = connector.result(domain);
  assert.ok(result !== undefined, `no result for ${domain}`);
  return result.status === "invalid"
    ? `invalid:${result.reason}`
    : result.status;
}

Deno.test("serveRelay() flies a kite with an auth app's secret and announces its quota", async () => {
  await withApp(async (command) => {
    await using relay = startRelay(command);
    await using connector = await fly(relay, [
      "foo.auth.test",
      "bar.auth.test",
      "broke.auth.test",
    ]);
    assert.equal(why(connector, "foo.auth.test"), "ok");
    assert.equal(why(connector, "bar.auth.test"), "ok");
    assert.equal(why(connector, "broke.auth.test"), "invalid:noquota");
    const answer = connector.answers.at(-1)!;
    // Minimum positive values over the accepted kites (spec §7.1).
    assert.equal(answer.quota, 2048);
    assert.equal(answer.qDays, 24);
    assert.equal(answer.qConns, 5);
    assert.deepEqual(answer.ipsPerSec, { ips: 3, seconds: 60 });
    assert.equal(relay.stats().totals.kites, 2);
  });
});

Deno.test("serveRelay() checks the signature against the auth app's secret", async () => {
  await withApp(async (command) => {
    await using relay = startRelay(command);
    await using connector = await fly(relay, ["foo.auth.test"], "wrong");
    assert.equal(why(connector, "foo.auth.test"), "invalid:signature");
    assert.equal(relay.stats().totals.kites, 0);
  });
});

Deno.test("serveRelay() refuses kites when the auth app fails (fail closed)", async (t) => {
  await withApp(async (command) => {
    await using relay = startRelay(command);
    for (
      const domain of [
        "crash.auth.test", // exit 1 after printing a secret
        "junk.auth.test", // not JSON
        "nobody.auth.test", // {"error": ...}
      ]
    ) {
      await t.step(domain, async () => {
        await using connector = await fly(relay, [domain]);
        assert.equal(why(connector, domain), "invalid:unauthorized");
      });
    }
    // Not covered by the app's domain, no static secret either.
    await using other = await fly(relay, ["foo.elsewhere.test"]);
    assert.equal(why(other, "foo.elsewhere.test"), "invalid:unauthorized");
    assert.equal(relay.stats().totals.kites, 0);
  });
});

Deno.test("serveRelay() refuses a kite when the auth app hangs past its timeout", async () => {
  await withApp(async (command) => {
    await using relay = startRelay(command, {
      authApps: [{ domain: "auth.test", command, timeoutMs: 300 }],
    });
    const started = Date.now();
    await using connector = await fly(relay, ["hang.auth.test"]);
    assert.equal(why(connector, "hang.auth.test"), "invalid:unauthorized");
    assert.ok(Date.now() - started < 3000, "refused at the app timeout");
  });
});

Deno.test("serveRelay() counts auth-app time against the handshake deadline", async () => {
  await withApp(async (command) => {
    await using relay = startRelay(command, {
      handshakeTimeoutMs: 600,
      authApps: [{ domain: "auth.test", command, timeoutMs: 20_000 }],
    });
    const started = Date.now();
    try {
      await using connector = await fly(relay, ["hang.auth.test"]);
      await connector.closed;
    } catch {
      // The relay hung up mid-handshake: that is the point.
    }
    assert.ok(Date.now() - started < 5000, "cut at the handshake deadline");
    await waitUntil(
      () => relay.stats().totals.pendingHandshakes === 0,
      "no pending handshake",
    );
    assert.equal(relay.stats().totals.kites, 0);
  });
});

Deno.test("serveRelay() refuses at once beyond maxAuthLookups", async () => {
  await withApp(async (command) => {
    await using relay = startRelay(command, {
      maxAuthLookups: 1,
      authApps: [{ domain: "auth.test", command, timeoutMs: 1500 }],
    });
    const hanging = fly(relay, ["hang.auth.test"]);
    // The hanging lookup holds the only slot (its challenge round first).
    await delay(400);
    const started = Date.now();
    await using connector = await fly(relay, ["foo.auth.test"]);
    assert.equal(why(connector, "foo.auth.test"), "invalid:unauthorized");
    assert.ok(Date.now() - started < 1000, "refused without waiting");
    await using hung = await hanging;
    assert.equal(why(hung, "hang.auth.test"), "invalid:unauthorized");
  });
});

Deno.test("serveRelay() refuses kites of an app that does not do AUTH", async () => {
  await withApp(
    async (command) => {
      await using relay = startRelay(command);
      await using connector = await fly(relay, ["foo.auth.test"]);
      assert.equal(why(connector, "foo.auth.test"), "invalid:unauthorized");
    },
    `#!/bin/bash\n[ "$1" = --capabilities ] && echo ZK-AUTH\necho '{"secret": "${APP_SECRET}"}'\n`,
  );
});

Deno.test("serveRelay() prefers a static secret over the auth app", async () => {
  await withApp(async (command) => {
    await using relay = startRelay(command, {
      kites: [{ domain: "foo.auth.test", secret: "static" }],
    });
    await using connector = await fly(relay, ["foo.auth.test"], "static");
    assert.equal(why(connector, "foo.auth.test"), "ok");
    assert.equal(connector.answers.at(-1)!.quota, undefined);
  });
});

Deno.test("serveRelay() rejects DNS zero-knowledge auth and bad auth apps", () => {
  assert.throws(
    () =>
      serveRelay({
        listen: [{ hostname: "127.0.0.1", port: 0 }],
        authApps: [{ domain: "example.com", command: "auth.example.net" }],
      }),
    (error) =>
      error instanceof TypeError && /DNS zero-knowledge/.test(error.message),
  );
  assert.throws(
    () =>
      serveRelay({
        listen: [{ hostname: "127.0.0.1", port: 0 }],
        authApps: [{ command: "/bin/true", timeoutMs: 0 }],
      }),
    RangeError,
  );
});
