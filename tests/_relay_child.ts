// Copyright 2026 the Kitewire authors. MIT license.
// A relay in its own process, for tests that limit its descriptors
// (`prlimit --nofile=N`): prints `{"port": N}` on one line once it listens,
// and runs until killed or its stdin closes.
import { serveRelay } from "../relay/mod.ts";

let emfile = 0;
const relay = serveRelay({
  listen: [{ hostname: "127.0.0.1", port: 0 }],
  kites: [{ domain: "*.example.com", secret: "s3cret" }],
  onError: (error) => {
    if (/Too many open files/.test(String(error))) emfile++; // expected here
  },
});
await Deno.stdout.write(
  new TextEncoder().encode(
    JSON.stringify({ port: relay.addrs[0]!.port }) + "\n",
  ),
);
for await (const _ of Deno.stdin.readable) {
  // wait for EOF
}
void relay.shutdown();
await relay.shutdown(); // second call: at once
await Deno.stderr.write(
  new TextEncoder().encode(JSON.stringify({ emfile }) + "\n"),
);
