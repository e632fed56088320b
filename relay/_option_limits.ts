// Copyright 2026 the Kitewire authors. MIT license.
// Filling in and checking the relay's numeric limits.

/**
 * Copies each limit of `defaults` into `resolved`, taking the caller's
 * value from `options` when given; every limit must be a positive integer.
 */
export function resolveLimits(
  options: object,
  defaults: Readonly<Record<string, number>>,
  resolved: object,
): void {
  for (const [name, fallback] of Object.entries(defaults)) {
    const value = (options as Record<string, unknown>)[name] ?? fallback;
    if (
      typeof value !== "number" || !Number.isSafeInteger(value) || value < 1
    ) {
      throw new RangeError(
        `Cannot serve relay: ${name} ${value} is not a positive integer`,
      );
    }
    (resolved as Record<string, number>)[name] = value;
  }
}
