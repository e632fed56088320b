// Copyright 2026 the Kitewire authors. MIT license.
// Runs the real pagekite.py (Debian package `pagekite`) on loopback.

/** A running pagekite.py process. */
export interface PagekiteProcess extends AsyncDisposable {
  /** Everything it logged so far. */
  log(): string;
  /** Whether its log shows a Python traceback. */
  crashed(): boolean;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

async function waitForPort(port: number, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return false;
}

/**
 * Starts `pagekite --clean --nullui --logfile=stdio ARGS` with a temporary
 * HOME (so no rc file is read or written) and waits until `port` accepts
 * connections. Stops it on dispose.
 */
export async function startPagekite(
  args: string[],
  port: number,
): Promise<PagekiteProcess> {
  const home = await Deno.makeTempDir({ prefix: "kitewire-pagekite-" });
  const child = new Deno.Command("pagekite", {
    args: ["--clean", "--nullui", "--logfile=stdio", ...args],
    env: { HOME: home, PYTHONUNBUFFERED: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>): Promise<void> => {
    for await (const part of stream) output += decoder.decode(part);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const handle: PagekiteProcess = {
    log: () => output,
    crashed: () => output.includes("Traceback"),
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await child.status;
      await pumps;
      await Deno.remove(home, { recursive: true });
    },
  };
  if (!await waitForPort(port, Date.now() + 15_000)) {
    await handle[Symbol.asyncDispose]();
    throw new Error(`pagekite did not listen on ${port}:\n${output}`);
  }
  return handle;
}
