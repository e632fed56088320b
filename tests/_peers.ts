// Copyright 2026 the Kitewire authors. MIT license.
// Finding the Debian programs that interop and integration tests run.

/** Result of {@linkcode findPeer}. */
export interface PeerCheck {
  /** Whether the test may run. */
  available: boolean;
  /** Why it may not: names the Debian package to install. */
  message: string;
}

const REQUIRE_ENV = "KITEWIRE_REQUIRE_PEERS";

/**
 * Looks for a program on PATH. When it is missing the test is to be skipped
 * (`ignore`) with a message naming the Debian package, unless
 * `KITEWIRE_REQUIRE_PEERS=1`, in which case this throws and the test file
 * fails to load: CI must run every test.
 */
export function findPeer(program: string, debianPackage: string): PeerCheck {
  const path = Deno.env.get("PATH") ?? "";
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    try {
      const info = Deno.statSync(`${dir}/${program}`);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) {
        return { available: true, message: "" };
      }
    } catch {
      // not in this directory
    }
  }
  const message =
    `'${program}' not found on PATH: install the Debian package '${debianPackage}' (apt-get install ${debianPackage})`;
  if (Deno.env.get(REQUIRE_ENV) === "1") {
    throw new Error(`${message}; ${REQUIRE_ENV}=1 makes this a failure`);
  }
  // deno-lint-ignore no-console
  console.warn(`skipping tests that need ${program}: ${message}`);
  return { available: false, message };
}
