// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The encoder of the tunnel data stream: chunks in, wire frames out, paced
 * for real pagekite.py peers (spec §3.1, §3.3, §3.7).
 *
 * @module
 */

import { type Chunk, formatChunkHeaders } from "./chunk.ts";
import { writeLatin1 } from "./_latin1.ts";
import { SyncDeflater } from "./_zlib.ts";

/** Options for {@linkcode ChunkEncoder}. */
export interface ChunkEncoderOptions {
  /**
   * Compress data frames: set only when the peer advertised `ZChunks`.
   *
   * @default {false}
   */
  compress?: boolean;
  /**
   * zlib level for compressed frames, 1 (fast, what pagekite.py relays use)
   * to 9.
   *
   * @default {1}
   */
  compressionLevel?: number;
  /**
   * Largest body of one data frame; longer bodies are split into frames of
   * nearly equal size.
   *
   * @default {16384}
   */
  maxFrameBody?: number;
  /**
   * Data frames whose plain payload is at most this many bytes are sent
   * plain.
   *
   * @default {64}
   */
  compressMinBytes?: number;
  /**
   * A frame whose compressed form would take fewer wire bytes than this is
   * sent plain instead. pagekite.py kills a tunnel that delivers more than
   * 150 frames in one ~50 KB read (spec §3.7); frames of at least 512 bytes
   * keep any such read under 100 frames.
   *
   * @default {512}
   */
  minCompressedFrameBytes?: number;
}

/** Default for {@linkcode ChunkEncoderOptions.maxFrameBody}. */
export const DEFAULT_MAX_FRAME_BODY = 16_384;
/** Default for {@linkcode ChunkEncoderOptions.compressMinBytes}. */
export const DEFAULT_COMPRESS_MIN_BYTES = 64;
/** Default for {@linkcode ChunkEncoderOptions.minCompressedFrameBytes}. */
export const DEFAULT_MIN_COMPRESSED_FRAME_BYTES = 512;

/** Most data frames in a row sent plain without trying compression. */
const MAX_COMPRESSION_BACKOFF = 64;
/** Frames up to this size are carved from a shared slab, not allocated. */
const SLAB_FRAME_BYTES = 4096;
const SLAB_BYTES = 65536;

/**
 * Encodes chunks into wire frames for one tunnel direction. It never emits a
 * size-0 frame, `QDays` or `QConns`; it splits data into frames of at most
 * `maxFrameBody` bytes, and when compressing it keeps the one zlib context
 * of the direction, sync-flushed after every frame.
 *
 * Data frames whose compression does not pay (the output grew) or that would
 * come out too small for the pacing rule are followed by a few frames sent
 * plain without trying, doubling up to 64 while compression keeps failing.
 *
 * @example Usage
 * ```ts
 * import { ChunkDecoder, ChunkEncoder } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const encoder = new ChunkEncoder();
 * const wire = encoder.encode({ sid: 7, body: new TextEncoder().encode("hi") });
 * assert.equal(new TextDecoder().decode(wire), "c\r\nSID: 7\r\n\r\nhi");
 *
 * const decoder = new ChunkDecoder();
 * decoder.push(wire);
 * const chunk = decoder.next();
 * assert.ok(chunk !== null && !("lost" in chunk));
 * assert.equal(chunk.sid, 7);
 * ```
 */
export class ChunkEncoder {
  readonly #compress: boolean;
  readonly #level: number;
  readonly #maxFrameBody: number;
  readonly #compressMinBytes: number;
  readonly #minCompressedFrameBytes: number;
  #deflater: SyncDeflater | null = null;
  /** Mark the next compressed frame with `R` (a fresh zlib stream). */
  #resetPending = false;
  #skip = 0;
  #backoff = 1;
  #slab = new Uint8Array(0);
  #slabUsed = 0;
  #frames = 0;
  #compressedFrames = 0;

  /**
   * Constructs a new instance.
   *
   * @param options Compression and framing.
   */
  constructor(options: ChunkEncoderOptions = {}) {
    this.#compress = options.compress ?? false;
    this.#level = options.compressionLevel ?? 1;
    if (
      !Number.isInteger(this.#level) || this.#level < 1 || this.#level > 9
    ) {
      throw new RangeError(
        `Cannot create chunk encoder: compressionLevel ${this.#level} is not an integer from 1 to 9`,
      );
    }
    this.#maxFrameBody = options.maxFrameBody ?? DEFAULT_MAX_FRAME_BODY;
    if (!Number.isInteger(this.#maxFrameBody) || this.#maxFrameBody < 1) {
      throw new RangeError(
        `Cannot create chunk encoder: maxFrameBody ${this.#maxFrameBody} is not a positive integer`,
      );
    }
    this.#compressMinBytes = nonNegative(
      "compressMinBytes",
      options.compressMinBytes ?? DEFAULT_COMPRESS_MIN_BYTES,
    );
    this.#minCompressedFrameBytes = nonNegative(
      "minCompressedFrameBytes",
      options.minCompressedFrameBytes ?? DEFAULT_MIN_COMPRESSED_FRAME_BYTES,
    );
  }

  /** Frames encoded so far. */
  get frames(): number {
    return this.#frames;
  }

  /** How many of those frames were compressed. */
  get compressedFrames(): number {
    return this.#compressedFrames;
  }

  /** Whether data frames may be compressed. */
  get compressing(): boolean {
    return this.#compress;
  }

  /**
   * Encodes one chunk into one or more frames, concatenated. A data chunk
   * (neither `noop` nor `eof`) with a body longer than `maxFrameBody` is
   * split: the first frame carries every header, the others only `SID`.
   *
   * @param chunk The chunk.
   * @returns The wire bytes.
   * @throws {TypeError} for a chunk that cannot be put on the wire (see
   * {@linkcode formatChunkHeaders}).
   * @throws {RangeError} for a control or EOF chunk whose body is longer
   * than `maxFrameBody`.
   */
  encode(chunk: Chunk): Uint8Array {
    const body = chunk.body;
    const data = chunk.noop !== true && chunk.eof === undefined;
    if (!data || body.length <= this.#maxFrameBody) {
      if (!data && body.length > this.#maxFrameBody) {
        throw new RangeError(
          `Cannot encode chunk: a control chunk body of ${body.length} bytes exceeds maxFrameBody ${this.#maxFrameBody}`,
        );
      }
      return this.#frame(formatChunkHeaders(chunk), body, data);
    }
    const pieces = Math.ceil(body.length / this.#maxFrameBody);
    const frames: Uint8Array[] = [];
    let size = 0;
    const continuation = `SID: ${chunk.sid}\r\n\r\n`;
    for (let i = 0; i < pieces; i++) {
      const start = Math.floor(body.length * i / pieces);
      const end = Math.floor(body.length * (i + 1) / pieces);
      const frame = this.#frame(
        i === 0 ? formatChunkHeaders(chunk) : continuation,
        body.subarray(start, end),
        true,
      );
      frames.push(frame);
      size += frame.length;
    }
    const out = new Uint8Array(size);
    let at = 0;
    for (const frame of frames) {
      out.set(frame, at);
      at += frame.length;
    }
    return out;
  }

  /**
   * Restarts compression after the peer sent `ZRST`: the next compressed
   * frame starts a fresh zlib stream and carries `R` on its size line.
   */
  resetCompression(): void {
    this.#deflater = null;
    this.#resetPending = true;
  }

  #frame(headers: string, body: Uint8Array, data: boolean): Uint8Array {
    const plainSize = headers.length + body.length;
    if (
      data && this.#compress && plainSize > this.#compressMinBytes &&
      plainSize >= this.#minCompressedFrameBytes
    ) {
      if (this.#skip > 0) {
        this.#skip--;
      } else {
        const compressed = this.#compressed(headers, body, plainSize);
        if (compressed !== null) {
          this.#frames++;
          this.#compressedFrames++;
          return compressed;
        }
      }
    }
    this.#frames++;
    const sizeLine = plainSize.toString(16);
    const frame = this.#allocate(sizeLine.length + 2 + plainSize);
    let at = writeLatin1(frame, 0, sizeLine);
    frame[at++] = 0x0d;
    frame[at++] = 0x0a;
    at = writeLatin1(frame, at, headers);
    frame.set(body, at);
    return frame;
  }

  /**
   * A buffer for one frame. Small ones are views into a shared slab (a new
   * Uint8Array costs more than encoding a small frame); a slab is never
   * reused, so a frame stays valid for as long as the caller holds it.
   */
  #allocate(size: number): Uint8Array {
    if (size > SLAB_FRAME_BYTES) return new Uint8Array(size);
    if (this.#slabUsed + size > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabUsed = 0;
    }
    return this.#slab.subarray(this.#slabUsed, this.#slabUsed += size);
  }

  /** The compressed frame, or null when it must go plain. */
  #compressed(
    headers: string,
    body: Uint8Array,
    plainSize: number,
  ): Uint8Array | null {
    const payload = new Uint8Array(plainSize);
    writeLatin1(payload, 0, headers);
    payload.set(body, headers.length);
    const fresh = this.#deflater === null;
    this.#deflater ??= new SyncDeflater(this.#level);
    const deflated = this.#deflater.compress(payload);
    const reset = fresh && this.#resetPending;
    const sizeLine = `${plainSize.toString(16)}Z${
      deflated.length.toString(16)
    }${reset ? "R" : ""}\r\n`;
    const wireBytes = sizeLine.length + deflated.length;
    if (wireBytes < this.#minCompressedFrameBytes) {
      // Too small for the pacing rule. The deflater has seen these bytes and
      // the peer's inflater will not: start a fresh stream next time.
      this.#deflater = null;
      this.#resetPending = true;
      this.#fail();
      return null;
    }
    if (deflated.length >= plainSize) this.#fail();
    else this.#backoff = 1;
    this.#resetPending = false;
    const frame = this.#allocate(wireBytes);
    writeLatin1(frame, 0, sizeLine);
    frame.set(deflated, sizeLine.length);
    return frame;
  }

  #fail(): void {
    this.#skip = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, MAX_COMPRESSION_BACKOFF);
  }
}

function nonNegative(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot create chunk encoder: ${name} ${value} is not a non-negative integer`,
    );
  }
  return value;
}
