// Copyright 2026 the Kitewire authors. MIT license.
// One zlib stream per tunnel direction (spec §3.3), over fflate's synchronous
// raw DEFLATE streams. We write and check the two-byte zlib header ourselves
// and never finish the stream, so no Adler-32 is computed on the hot path.

import { Deflate, Inflate } from "fflate";

/** Input bytes fed to the inflater at once: bounds one step's output. */
const INFLATE_SLICE_BYTES = 1024;

/** The zlib header for a compression level (RFC 1950 FLEVEL, window 32K). */
function zlibHeader(level: number): Uint8Array {
  const flevel = level <= 1 ? 0 : level <= 5 ? 1 : level === 6 ? 2 : 3;
  const cmf = 0x78;
  let flg = flevel << 6;
  flg += 31 - ((cmf * 256 + flg) % 31);
  return Uint8Array.of(cmf, flg);
}

/** A deflate context whose every `compress()` ends in a sync flush. */
export class SyncDeflater {
  #deflate: Deflate;
  #header: Uint8Array | null;
  #parts: Uint8Array[] = [];
  #size = 0;

  constructor(level: number) {
    this.#header = zlibHeader(level);
    this.#deflate = new Deflate(
      { level: level as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 },
      (data) => {
        if (data.length === 0) return;
        this.#parts.push(data);
        this.#size += data.length;
      },
    );
  }

  /** Compresses `data` and sync-flushes; the result ends in `00 00 ff ff`. */
  compress(data: Uint8Array): Uint8Array {
    this.#parts = [];
    this.#size = 0;
    if (this.#header !== null) {
      this.#parts.push(this.#header);
      this.#size = this.#header.length;
      this.#header = null;
    }
    this.#deflate.push(data);
    this.#deflate.flush(true);
    if (this.#parts.length === 1) return this.#parts[0]!;
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const part of this.#parts) {
      out.set(part, at);
      at += part.length;
    }
    this.#parts = [];
    return out;
  }
}

/** What {@linkcode BoundedInflater.inflate} reports for a frame it lost. */
export interface InflateFailure {
  /** Why the frame could not be inflated. */
  reason: string;
  /** The first bytes inflated before the failure (may hold the headers). */
  partial: Uint8Array;
}

/**
 * An inflate context fed in small slices, so that a decompression bomb is
 * stopped at `limit + 1` bytes of output instead of being fully inflated.
 */
export class BoundedInflater {
  #inflate: Inflate | null = null;
  #headerSeen = false;
  #out: Uint8Array = new Uint8Array(0);
  #outSize = 0;
  #limit = 0;
  #over = false;
  #broken = false;

  /** Inflates one frame; `expected` is its declared plain size. */
  inflate(data: Uint8Array, expected: number): Uint8Array | InflateFailure {
    if (this.#broken) {
      return {
        reason:
          "an earlier frame broke the inflate context and no reset (R) came yet",
        partial: new Uint8Array(0),
      };
    }
    this.#out = new Uint8Array(expected);
    this.#outSize = 0;
    this.#limit = expected;
    this.#over = false;
    let at = 0;
    try {
      if (!this.#headerSeen) {
        const reason = checkZlibHeader(data);
        if (reason !== null) return this.#fail(reason);
        this.#headerSeen = true;
        at = 2;
      }
      this.#inflate ??= new Inflate((chunk) => this.#collect(chunk));
      while (at < data.length) {
        const end = Math.min(data.length, at + INFLATE_SLICE_BYTES);
        this.#inflate.push(data.subarray(at, end));
        at = end;
        if (this.#over) {
          return this.#fail(
            `inflated past the declared size ${expected}`,
          );
        }
      }
    } catch (error) {
      return this.#fail(
        `zlib error: ${error instanceof Error ? error.message : error}`,
      );
    }
    if (this.#outSize !== expected) {
      return this.#fail(
        `inflated to ${this.#outSize} bytes, declared size ${expected}`,
      );
    }
    const out = this.#out;
    this.#out = new Uint8Array(0);
    return out;
  }

  /** Starts a fresh inflate context (a size line with `R`). */
  reset(): void {
    this.#inflate = null;
    this.#headerSeen = false;
    this.#broken = false;
  }

  #collect(chunk: Uint8Array): void {
    if (this.#over) return;
    const room = this.#limit - this.#outSize;
    if (chunk.length > room) {
      this.#out.set(chunk.subarray(0, room), this.#outSize);
      this.#outSize = this.#limit;
      this.#over = true;
      return;
    }
    this.#out.set(chunk, this.#outSize);
    this.#outSize += chunk.length;
  }

  #fail(reason: string): InflateFailure {
    const partial = this.#out.subarray(0, this.#outSize);
    this.#out = new Uint8Array(0);
    // The context's history no longer matches the sender's: it stays
    // unusable until the sender restarts its compressor (an `R` frame).
    this.#inflate = null;
    this.#broken = true;
    return { reason, partial };
  }

  /** Whether an earlier failure left the context unusable until a reset. */
  get broken(): boolean {
    return this.#broken;
  }
}

function checkZlibHeader(data: Uint8Array): string | null {
  if (data.length < 2) return "zlib header missing";
  const cmf = data[0]!;
  const flg = data[1]!;
  if ((cmf & 0x0f) !== 8 || (cmf >> 4) > 7) {
    return `zlib header 0x${cmf.toString(16)} is not DEFLATE`;
  }
  if ((cmf * 256 + flg) % 31 !== 0) return "zlib header check failed";
  if ((flg & 0x20) !== 0) return "zlib preset dictionaries are not supported";
  return null;
}
