// Copyright 2026 the Kitewire authors. MIT license.
/**
 * A synchronous, incremental decoder for the tunnel data stream: bytes in any
 * split, frames out, with every size bounded (spec §3.1, §3.3, §3.7).
 *
 * @module
 */

import {
  type Chunk,
  type ChunkHeaderLimits,
  decodeChunkPayload,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_HEADERS,
  findChunkBody,
  type LostChunk,
} from "./chunk.ts";
import { BoundedInflater } from "./_zlib.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";

/** Options for {@linkcode ChunkDecoder}. */
export interface ChunkDecoderOptions extends ChunkHeaderLimits {
  /**
   * Largest frame accepted, in bytes: both the declared plain size and the
   * compressed size on the wire. Inflation stops one byte past
   * min(declared size, this).
   *
   * @default {1048576}
   */
  maxChunkSize?: number;
  /**
   * Most hex digits in a size (plain or compressed).
   *
   * @default {8}
   */
  maxSizeDigits?: number;
}

/** Default for {@linkcode ChunkDecoderOptions.maxChunkSize}. */
export const DEFAULT_MAX_CHUNK_SIZE = 1_048_576;
/** Default for {@linkcode ChunkDecoderOptions.maxSizeDigits}. */
export const DEFAULT_MAX_SIZE_DIGITS = 8;

/** A parsed size line. */
interface SizeLine {
  /** Bytes of the size line, CRLF included. */
  lineBytes: number;
  /** Declared plain (inflated) size. */
  plainSize: number;
  /** Bytes of payload on the wire. */
  wireSize: number;
  compressed: boolean;
  reset: boolean;
  /** Whether the header block end was already seen (plain frames). */
  headersSeen: boolean;
}

const EMPTY = new Uint8Array(0);

/**
 * Decodes a tunnel's chunk stream. Feed bytes with {@linkcode push}, then
 * call {@linkcode next} until it returns `null`. Bytes may be split anywhere.
 *
 * Bodies of decoded chunks are views, not copies: they stay valid until the
 * next `push()`, so a caller that keeps one longer copies it.
 *
 * Errors are typed: {@linkcode ProtocolError} (a `SyntaxError`) for malformed
 * input and {@linkcode ProtocolLimitError} (a `RangeError`) for a crossed
 * limit, each with the tunnel offset. An error in a frame's framing (its size
 * line) is final: the decoder throws it again on every later call. An error
 * in the headers of a well-framed frame skips only that frame. A compressed
 * frame that will not inflate comes out as a {@linkcode LostChunk}.
 *
 * @example Usage
 * ```ts
 * import { ChunkDecoder } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const decoder = new ChunkDecoder();
 * const wire = new TextEncoder().encode("c\r\nSID: 7\r\n\r\nhi17\r\nSID: 7\r\nEOF: 1R\r\n\r\nBye!");
 * decoder.push(wire.subarray(0, 5));
 * assert.equal(decoder.next(), null); // needs more bytes
 * decoder.push(wire.subarray(5));
 * const first = decoder.next();
 * assert.ok(first !== null && !("lost" in first));
 * assert.equal(new TextDecoder().decode(first.body), "hi");
 * const second = decoder.next();
 * assert.ok(second !== null && !("lost" in second));
 * assert.equal(second.eof, "R");
 * assert.equal(decoder.next(), null);
 * ```
 */
export class ChunkDecoder {
  readonly #maxChunkSize: number;
  readonly #maxSizeDigits: number;
  readonly #maxSizeLine: number;
  readonly #limits: Required<ChunkHeaderLimits>;
  readonly #inflater = new BoundedInflater();

  /** Unconsumed bytes are `#buf[#start:#end]`. */
  #buf: Uint8Array = EMPTY;
  #start = 0;
  #end = 0;
  /** Whether `#buf` is our own storage (else it is the caller's input). */
  #owned = false;
  /** Tunnel offset of `#buf[#start]`. */
  #offset = 0;
  #size: SizeLine | null = null;
  #failure: Error | null = null;
  #lostSinceReset = false;
  #frames = 0;
  #compressedFrames = 0;

  /**
   * Constructs a new instance.
   *
   * @param options Limits.
   */
  constructor(options: ChunkDecoderOptions = {}) {
    this.#maxChunkSize = limit(
      "maxChunkSize",
      options.maxChunkSize ?? DEFAULT_MAX_CHUNK_SIZE,
    );
    this.#maxSizeDigits = limit(
      "maxSizeDigits",
      options.maxSizeDigits ?? DEFAULT_MAX_SIZE_DIGITS,
    );
    if (this.#maxSizeDigits > 13) {
      throw new RangeError(
        `Cannot create chunk decoder: maxSizeDigits ${this.#maxSizeDigits} exceeds 13 (sizes must stay exact numbers)`,
      );
    }
    // hex "Z" hex "R" CR LF
    this.#maxSizeLine = 2 * this.#maxSizeDigits + 4;
    this.#limits = {
      maxHeaderBytes: limit(
        "maxHeaderBytes",
        options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
      ),
      maxHeaders: limit(
        "maxHeaders",
        options.maxHeaders ?? DEFAULT_MAX_HEADERS,
      ),
    };
  }

  /** Bytes of the tunnel consumed so far (the offset of the next frame). */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Whether a framing error stopped the decoder for good: every later
   * {@linkcode next} throws it again, and the tunnel must be closed.
   */
  get failed(): boolean {
    return this.#failure !== null;
  }

  /** Frames decoded so far, lost ones included. */
  get frames(): number {
    return this.#frames;
  }

  /** How many of those frames were compressed (`Z` on the size line). */
  get compressedFrames(): number {
    return this.#compressedFrames;
  }

  /** Bytes received but not yet decoded. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Adds received bytes. The decoder keeps a reference to `bytes` until the
   * frames in it are decoded; bytes of an incomplete frame are copied when
   * {@linkcode next} returns `null`, so the caller may then reuse its buffer.
   *
   * @param bytes Bytes read from the tunnel.
   */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.#start === this.#end) {
      this.#buf = bytes;
      this.#start = 0;
      this.#end = bytes.length;
      this.#owned = false;
      return;
    }
    const pending = this.#end - this.#start;
    const needed = pending + bytes.length;
    if (!this.#owned || this.#buf.length - this.#end < bytes.length) {
      if (this.#owned && this.#buf.length >= needed) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = new Uint8Array(
          Math.max(needed, this.#frameBytes(), this.#owned ? pending * 2 : 0),
        );
        grown.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = grown;
        this.#owned = true;
      }
      this.#start = 0;
      this.#end = pending;
    }
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  /**
   * Decodes the next frame, if all of it has arrived.
   *
   * @returns The chunk, a lost frame, or `null` when more bytes are needed.
   * @throws {ProtocolError} for malformed input.
   * @throws {ProtocolLimitError} when a frame breaks a limit.
   */
  next(): Chunk | LostChunk | null {
    if (this.#failure !== null) throw this.#failure;
    return this.#next();
  }

  #next(): Chunk | LostChunk | null {
    if (this.#start === this.#end) return this.#retain(0);
    let size = this.#size;
    try {
      size ??= this.#readSizeLine();
      if (size === null) return this.#retain(this.#maxSizeLine);
      if (
        this.#end - this.#start < size.lineBytes + size.wireSize &&
        !size.compressed && !size.headersSeen
      ) {
        this.#checkPartialHeaders();
      }
    } catch (error) {
      // The framing is lost for good: every later call fails the same way.
      this.#failure = error as Error;
      throw error;
    }
    const total = size.lineBytes + size.wireSize;
    if (this.#end - this.#start < total) return this.#retain(total);
    const frameOffset = this.#offset;
    const payload = this.#buf.subarray(
      this.#start + size.lineBytes,
      this.#start + total,
    );
    this.#start += total;
    this.#offset += total;
    this.#size = null;
    this.#frames++;
    if (size.compressed) this.#compressedFrames++;
    if (size.reset) {
      this.#inflater.reset();
      this.#lostSinceReset = false;
    }
    if (!size.compressed) {
      return decodeChunkPayload(payload, frameOffset, this.#limits);
    }
    const inflated = this.#inflater.inflate(payload, size.plainSize);
    if (inflated instanceof Uint8Array) {
      return decodeChunkPayload(inflated, frameOffset, this.#limits);
    }
    const lost: LostChunk = {
      lost: true,
      reason:
        `Cannot inflate chunk at offset ${frameOffset}: ${inflated.reason}`,
      size: size.plainSize,
      offset: frameOffset,
      sendZrst: !this.#lostSinceReset,
    };
    this.#lostSinceReset = true;
    const sid = sidFromPartial(inflated.partial);
    if (sid !== undefined) lost.sid = sid;
    return lost;
  }

  /** Bytes the frame in progress needs in all (0 when unknown). */
  #frameBytes(): number {
    return this.#size === null ? 0 : this.#size.lineBytes + this.#size.wireSize;
  }

  /** Keeps the partial frame in our own storage and asks for more bytes. */
  #retain(frameBytes: number): null {
    const pending = this.#end - this.#start;
    if (pending === 0) {
      this.#buf = EMPTY;
      this.#start = this.#end = 0;
      this.#owned = false;
    } else if (!this.#owned) {
      const own = new Uint8Array(Math.max(frameBytes, pending));
      own.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = own;
      this.#start = 0;
      this.#end = pending;
      this.#owned = true;
    }
    return null;
  }

  #readSizeLine(): SizeLine | null {
    const buf = this.#buf;
    const start = this.#start;
    const scanEnd = Math.min(this.#end, start + this.#maxSizeLine);
    const lf = buf.indexOf(0x0a, start);
    if (lf === -1 || lf >= scanEnd) {
      if (scanEnd - start >= this.#maxSizeLine) {
        this.#checkSizeText(start, scanEnd);
        throw new ProtocolLimitError(
          `Cannot decode chunk: size line longer than ${this.#maxSizeLine} bytes`,
          { offset: this.#offset },
        );
      }
      this.#checkSizeText(start, scanEnd);
      return null;
    }
    const textEnd = lf > start && buf[lf - 1] === 0x0d ? lf - 1 : lf;
    let at = start;
    const plain = this.#hex(at, textEnd, "size");
    at = plain.end;
    let wireSize = plain.value;
    let compressed = false;
    let reset = false;
    if (at < textEnd && (buf[at] === 0x5a || buf[at] === 0x7a)) { // Z
      const deflated = this.#hex(at + 1, textEnd, "compressed size");
      wireSize = deflated.value;
      at = deflated.end;
      compressed = true;
    }
    if (at < textEnd && (buf[at] === 0x52 || buf[at] === 0x72)) { // R
      reset = true;
      at++;
    }
    if (at !== textEnd) {
      throw new ProtocolError(
        `Cannot decode chunk: unexpected ${
          JSON.stringify(String.fromCharCode(buf[at]!))
        } in size line at offset ${this.#offset + at - start}`,
        { offset: this.#offset + at - start },
      );
    }
    if (plain.value === 0) {
      throw new ProtocolError("Cannot decode chunk: size 0 is not allowed", {
        offset: this.#offset,
      });
    }
    if (plain.value > this.#maxChunkSize || wireSize > this.#maxChunkSize) {
      throw new ProtocolLimitError(
        `Cannot decode chunk: size ${
          Math.max(plain.value, wireSize)
        } exceeds maxChunkSize ${this.#maxChunkSize}`,
        { offset: this.#offset },
      );
    }
    if (compressed && wireSize === 0) {
      throw new ProtocolError(
        "Cannot decode chunk: compressed size 0 is not allowed",
        { offset: this.#offset },
      );
    }
    this.#size = {
      lineBytes: lf + 1 - start,
      plainSize: plain.value,
      wireSize,
      compressed,
      reset,
      headersSeen: false,
    };
    return this.#size;
  }

  /** Parses hex digits from `at`; at least one, at most maxSizeDigits. */
  #hex(at: number, end: number, what: string): { value: number; end: number } {
    const buf = this.#buf;
    let value = 0;
    let i = at;
    for (; i < end; i++) {
      const digit = hexDigit(buf[i]!);
      if (digit === -1) break;
      if (i - at === this.#maxSizeDigits) {
        throw new ProtocolLimitError(
          `Cannot decode chunk: ${what} has more than ${this.#maxSizeDigits} hex digits`,
          { offset: this.#offset + i - this.#start },
        );
      }
      value = value * 16 + digit;
    }
    if (i === at) {
      throw new ProtocolError(
        `Cannot decode chunk: ${what} is not hex at offset ${
          this.#offset + at - this.#start
        }`,
        { offset: this.#offset + at - this.#start },
      );
    }
    return { value, end: i };
  }

  /** Rejects an incomplete size line as soon as it cannot become valid. */
  #checkSizeText(start: number, end: number): void {
    const buf = this.#buf;
    let digits = 0;
    let state = 0; // 0 plain hex, 1 after Z, 2 after R, 3 after CR
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      const offset = this.#offset + i - start;
      if (state < 2 && hexDigit(c) !== -1) {
        if (++digits > this.#maxSizeDigits) {
          throw new ProtocolLimitError(
            `Cannot decode chunk: size has more than ${this.#maxSizeDigits} hex digits`,
            { offset },
          );
        }
        continue;
      }
      if (state === 0 && digits > 0 && (c === 0x5a || c === 0x7a)) {
        state = 1;
        digits = 0;
      } else if (state < 2 && digits > 0 && (c === 0x52 || c === 0x72)) {
        state = 2;
      } else if (state < 3 && digits > 0 && c === 0x0d) {
        state = 3;
      } else {
        throw new ProtocolError(
          `Cannot decode chunk: unexpected ${
            JSON.stringify(String.fromCharCode(c))
          } in size line at offset ${offset}`,
          { offset },
        );
      }
    }
  }

  /** Fails a trickled plain frame whose header block is already too long. */
  #checkPartialHeaders(): void {
    const size = this.#size!;
    const payload = this.#buf.subarray(
      this.#start + size.lineBytes,
      this.#end,
    );
    const max = this.#limits.maxHeaderBytes;
    if (findChunkBody(payload, max) !== -1) {
      size.headersSeen = true;
    } else if (payload.length >= max) {
      throw new ProtocolLimitError(
        `Cannot decode chunk: header block exceeds maxHeaderBytes ${max}`,
        { offset: this.#offset },
      );
    }
  }
}

function limit(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot create chunk decoder: ${name} ${value} is not a positive integer`,
    );
  }
  return value;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

const SID_LINE_REGEXP = /(?:^|\n)SID:\s*([0-9]{1,15})\r?\n/i;

/** The stream id in the first bytes of a frame that failed to inflate. */
function sidFromPartial(partial: Uint8Array): number | undefined {
  if (partial.length === 0) return undefined;
  const head = partial.subarray(0, Math.min(partial.length, 512));
  let text = "";
  for (const byte of head) text += String.fromCharCode(byte);
  const end = text.indexOf("\r\n\r\n");
  const match = SID_LINE_REGEXP.exec(
    end === -1 ? text : text.slice(0, end + 2),
  );
  return match === null ? undefined : Number(match[1]);
}
