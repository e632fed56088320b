// Copyright 2026 the Kitewire authors. MIT license.
// Runs the real pagekite.py (Debian package `pagekite`) on loopback.

/** A running pagekite.py process. */
export interface PagekiteProcess extends AsyncDisposable {
  /** Everything it logged so far. */
  log(): string;
  /** Whether its log shows a Python traceback or a corrupt chunk. */
  crashed(): boolean;
  /** Stops it (SIGTERM) and waits; idempotent. */
  stop(): Promise<void>;
}

/** When {@linkcode startPagekite} considers the process ready. */
export interface PagekiteReady {
  /** Wait until this port on 127.0.0.1 accepts connections. */
  port?: number;
  /** Or until this returns true (polled). */
  ready?: () => boolean | Promise<boolean>;
  /**
   * How long to wait.
   *
   * @default {15000}
   */
  timeoutMs?: number;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

async function portOpen(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `pagekite --clean --nullui --logfile=stdio ARGS` with a temporary
 * HOME (so no rc file is read or written) and waits until it is ready.
 */
export async function startPagekite(
  args: string[],
  ready: PagekiteReady = {},
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
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await child.status;
      await pumps;
      await Deno.remove(home, { recursive: true });
    })();
  const handle: PagekiteProcess = {
    log: () => output,
    crashed: () =>
      output.includes("Traceback") || output.includes("Corrupt chunk"),
    stop,
    [Symbol.asyncDispose]: stop,
  };
  const deadline = Date.now() + (ready.timeoutMs ?? 15_000);
  for (;;) {
    const ok = ready.port !== undefined
      ? await portOpen(ready.port)
      : ready.ready === undefined || await ready.ready();
    if (ok) return handle;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`pagekite ${args.join(" ")} was not ready:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
