// Copyright 2026 the Kitewire authors. MIT license.
// Byte <-> string helpers for the ASCII/Latin-1 text of PageKite headers.

/** Decodes `bytes[start:end]` as Latin-1 (one char per byte). */
export function decodeLatin1(
  bytes: Uint8Array,
  start = 0,
  end: number = bytes.length,
): string {
  let out = "";
  for (let i = start; i < end; i += 4096) {
    out += String.fromCharCode.apply(
      null,
      bytes.subarray(i, Math.min(end, i + 4096)) as unknown as number[],
    );
  }
  return out;
}

/** Encodes a string as Latin-1; throws TypeError on chars above U+00FF. */
export function encodeLatin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  writeLatin1(out, 0, text);
  return out;
}

/**
 * Writes `text` as Latin-1 into `target` at `at` and returns the offset just
 * past it; throws TypeError on chars above U+00FF.
 */
export function writeLatin1(
  target: Uint8Array,
  at: number,
  text: string,
): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) {
      throw new TypeError(
        `Cannot encode text: character U+${
          code.toString(16).padStart(4, "0")
        } at index ${i} is not Latin-1`,
      );
    }
    target[at++] = code;
  }
  return at;
}
