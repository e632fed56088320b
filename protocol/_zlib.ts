// Copyright 2026 the Kitewire authors. MIT license.
// One zlib stream per tunnel direction (spec §3.3), over pako's synchronous
// zlib port: every compressed frame ends in a sync flush, and inflation is
// fed in small slices so that a decompression bomb is cut short.

import { Deflate, Inflate, Z_SYNC_FLUSH } from "pako";

/** Input bytes fed to the inflater at once: bounds one step's output. */
const INFLATE_SLICE_BYTES = 4096;

/** A deflate context whose every `compress()` ends in a sync flush. */
export class SyncDeflater {
  #deflate: Deflate;
  #parts: Uint8Array[] = [];
  #size = 0;

  constructor(level: number) {
    this.#deflate = new Deflate({
      level: level as 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9,
      // Room for a whole 16 KiB frame, so one frame is usually one part.
      chunkSize: 20 * 1024,
    });
    this.#deflate.onData = (data: Uint8Array): void => {
      // pako hands over a fresh buffer per output chunk.
      this.#parts.push(data);
      this.#size += data.length;
    };
  }

  /** Compresses `data` and sync-flushes; the result ends in `00 00 ff ff`. */
  compress(data: Uint8Array): Uint8Array {
    this.#parts = [];
    this.#size = 0;
    if (!this.#deflate.push(data, Z_SYNC_FLUSH)) {
      throw new Error(`Cannot compress chunk: zlib error ${this.#deflate.err}`);
    }
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
 * stopped one byte past its declared size instead of being fully inflated.
 * After a failure the context is unusable until {@linkcode reset}, because
 * its history no longer matches the sender's.
 */
export class BoundedInflater {
  #inflate: Inflate | null = null;
  #out: Uint8Array = new Uint8Array(0);
  #outSize = 0;
  #over = false;
  #broken = false;

  /** Whether an earlier failure left the context unusable until a reset. */
  get broken(): boolean {
    return this.#broken;
  }

  /** Starts a fresh inflate context (a size line with `R`). */
  reset(): void {
    this.#inflate = null;
    this.#broken = false;
  }

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
    this.#over = false;
    const inflate = this.#inflate ??= this.#create();
    for (let at = 0; at < data.length; at += INFLATE_SLICE_BYTES) {
      const slice = data.subarray(at, at + INFLATE_SLICE_BYTES);
      if (!inflate.push(slice, Z_SYNC_FLUSH) || inflate.err !== 0) {
        return this.#fail(`zlib error: ${inflate.msg || inflate.err}`);
      }
      if (this.#over) {
        return this.#fail(`inflated past the declared size ${expected}`);
      }
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

  #create(): Inflate {
    const inflate = new Inflate({ chunkSize: 16 * 1024 });
    inflate.onData = (chunk: Uint8Array): void => this.#collect(chunk);
    inflate.onEnd = (): void => {};
    return inflate;
  }

  #collect(chunk: Uint8Array): void {
    if (this.#over) return;
    const room = this.#out.length - this.#outSize;
    if (chunk.length > room) {
      this.#out.set(chunk.subarray(0, room), this.#outSize);
      this.#outSize += room;
      this.#over = true;
      return;
    }
    this.#out.set(chunk, this.#outSize);
    this.#outSize += chunk.length;
  }

  #fail(reason: string): InflateFailure {
    const partial = this.#out.subarray(0, this.#outSize);
    this.#out = new Uint8Array(0);
    this.#inflate = null;
    this.#broken = true;
    return { reason, partial };
  }
}
