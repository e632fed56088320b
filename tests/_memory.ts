// Copyright 2026 the Kitewire authors. MIT license.
// Memory growth of a piece of work, for hostile-input tests. Run tests with
// `--v8-flags=--expose-gc` (the test task does) for stable numbers.

/** What {@linkcode memoryGrowth} measured, in bytes. */
export interface MemoryGrowth {
  /** Resident set growth: a stand-in for the peak, since freed pages linger. */
  rss: number;
  /** Growth of JS heap plus external memory (ArrayBuffers) after a GC. */
  retained: number;
}

function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Runs `work` and reports how much memory it took. */
export function memoryGrowth(work: () => void): MemoryGrowth {
  collect();
  const before = Deno.memoryUsage();
  work();
  const peak = Deno.memoryUsage();
  collect();
  const after = Deno.memoryUsage();
  return {
    rss: peak.rss - before.rss,
    retained: after.heapUsed + after.external -
      (before.heapUsed + before.external),
  };
}

/** 16 MiB: the most a hostile input may make the codec hold. */
export const HOSTILE_MEMORY_BUDGET = 16 * 1024 * 1024;
