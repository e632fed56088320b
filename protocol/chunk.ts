// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The PageKite chunk: one frame of the tunnel data stream (spec §3), as a
 * typed object, and the pure functions that turn a decoded frame payload
 * into a {@linkcode Chunk} and a chunk into its header block.
 *
 * @module
 */

import { decodeLatin1 } from "./_latin1.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";

/**
 * End-of-stream flags of an `EOF:` header, describing the sender's side
 * (spec §3.5): `"R"` is "I will send no more" (a TCP FIN), `"W"` is "I can no
 * longer write to my endpoint", `"RW"` closes the stream. The legacy bare
 * `EOF: 1` decodes as `"RW"`.
 */
export type EofFlags = "R" | "W" | "RW";

/**
 * One chunk of the tunnel data stream. Every field but `body` is optional and
 * present only when its header is. Stream chunks carry `sid`; control chunks
 * carry `noop` (and may still carry `sid` with `skb`).
 */
export interface Chunk {
  /** `SID`: the stream id. Required unless `noop` is set. */
  sid?: number;
  /** `Proto`: the kite protocol of a new stream (first chunk only). */
  proto?: string;
  /** `Host`: the requested host name of a new stream. */
  host?: string;
  /** `Port`: the public port of a new stream. */
  port?: number;
  /** `RIP`: the end user's IP address. */
  remoteIp?: string;
  /** `RPort`: the end user's source port. */
  remotePort?: number;
  /** `RTLS: 1`: the relay terminated TLS for this stream. */
  remoteTls?: boolean;
  /** `EOF`: the sender closed one or both halves of the stream. */
  eof?: EofFlags;
  /** `NOOP`: a control chunk; its body is not stream data. */
  noop?: boolean;
  /** `PING`: asks for a `PONG` echoing this value. */
  ping?: string;
  /** `PONG`: the answer to a `PING`. */
  pong?: string;
  /** `SKB`: KiB written so far to the endpoint of stream `sid`. */
  skb?: number;
  /** `SPD`: legacy "slow down" flow control. */
  spd?: number;
  /** `ZRST: 1`: "your compressed data was corrupt, restart your compressor". */
  zrst?: boolean;
  /** `Quota`: transfer quota left, in KB. */
  quota?: number;
  /** `QDays`: days of quota left (decoded only; never sent, see §10.2). */
  qdays?: number;
  /** `QConns`: connection quota (decoded only; never sent, see §10.2). */
  qconns?: number;
  /** Every other header in order, for example `X-PageKite` kite lines. */
  headers?: [name: string, value: string][];
  /** The payload after the header block: stream data, or ignored text. */
  body: Uint8Array;
}

/**
 * A frame that arrived but could not be decoded because its compressed bytes
 * would not inflate (spec §3.3). Its stream lost data: the receiver sends
 * `ZRST` (when `sendZrst` is set) and closes the stream `sid`, or every
 * stream that could have been affected when `sid` is unknown.
 */
export interface LostChunk {
  /** Marks a lost frame. */
  lost: true;
  /** The stream, when the headers could still be read. */
  sid?: number;
  /** Why the frame was lost. */
  reason: string;
  /** The declared plain size of the frame. */
  size: number;
  /** The tunnel offset at which the frame started. */
  offset: number;
  /** Set on the first lost frame since the last reset: answer with `ZRST`. */
  sendZrst: boolean;
}

/** Limits for {@linkcode decodeChunkPayload}. */
export interface ChunkHeaderLimits {
  /**
   * Bytes of a chunk's header block, blank line included.
   *
   * @default {8192}
   */
  maxHeaderBytes?: number;
  /**
   * Header lines in one chunk.
   *
   * @default {64}
   */
  maxHeaders?: number;
}

/** Default for {@linkcode ChunkHeaderLimits.maxHeaderBytes}. */
export const DEFAULT_MAX_HEADER_BYTES = 8192;
/** Default for {@linkcode ChunkHeaderLimits.maxHeaders}. */
export const DEFAULT_MAX_HEADERS = 64;

const DECIMAL_REGEXP = /^[0-9]{1,15}$/;
const NUMBER_REGEXP = /^-?[0-9]{1,15}(\.[0-9]{1,15})?$/;

/**
 * Finds the end of the header block in a decoded payload: the index just
 * past its `\r\n\r\n`, or -1 when it is not within the first `maxBytes`.
 *
 * @param payload A decoded frame payload, or the first bytes of one.
 * @param maxBytes Where to stop looking.
 * @returns The index where the body starts, or -1.
 *
 * @example Usage
 * ```ts
 * import { findChunkBody } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const payload = new TextEncoder().encode("SID: 7\r\n\r\nhi");
 * assert.equal(findChunkBody(payload, 8192), 10);
 * ```
 */
export function findChunkBody(payload: Uint8Array, maxBytes: number): number {
  const end = Math.min(payload.length, maxBytes);
  for (
    let i = payload.indexOf(0x0d);
    i !== -1 && i + 3 < end;
    i = payload.indexOf(0x0d, i + 1)
  ) {
    if (
      payload[i + 1] === 0x0a && payload[i + 2] === 0x0d &&
      payload[i + 3] === 0x0a
    ) {
      return i + 4;
    }
  }
  return -1;
}

/**
 * Decodes a frame payload (already inflated if it was compressed) into a
 * {@linkcode Chunk}. The body is a view into `payload`, not a copy.
 *
 * @param payload The payload: header block, blank line, body.
 * @param offset The tunnel offset of the frame, for error messages.
 * @param limits Header limits.
 * @returns The chunk.
 * @throws {ProtocolLimitError} when the header block breaks a limit.
 * @throws {ProtocolError} for a malformed header or a chunk without `SID`.
 *
 * @example Usage
 * ```ts
 * import { decodeChunkPayload } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const payload = new TextEncoder().encode("SID: 7\r\nEOF: 1R\r\n\r\nBye!");
 * const chunk = decodeChunkPayload(payload);
 * assert.equal(chunk.sid, 7);
 * assert.equal(chunk.eof, "R");
 * ```
 */
export function decodeChunkPayload(
  payload: Uint8Array,
  offset = 0,
  limits: ChunkHeaderLimits = {},
): Chunk {
  const maxHeaderBytes = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const maxHeaders = limits.maxHeaders ?? DEFAULT_MAX_HEADERS;
  const bodyStart = findChunkBody(payload, maxHeaderBytes);
  if (bodyStart === -1) {
    if (payload.length >= maxHeaderBytes) {
      throw new ProtocolLimitError(
        `Cannot decode chunk: header block exceeds maxHeaderBytes ${maxHeaderBytes}`,
        { offset },
      );
    }
    throw new ProtocolError(
      "Cannot decode chunk: payload has no blank line after its headers",
      { offset },
    );
  }
  const chunk: Chunk = { body: payload.subarray(bodyStart) };
  const blankLine = bodyStart - 2;
  let count = 0;
  let lineStart = 0;
  while (lineStart < blankLine) {
    const lineEnd = payload.indexOf(0x0a, lineStart);
    const textEnd = payload[lineEnd - 1] === 0x0d ? lineEnd - 1 : lineEnd;
    if (textEnd > lineStart) {
      if (++count > maxHeaders) {
        throw new ProtocolLimitError(
          `Cannot decode chunk: more than maxHeaders ${maxHeaders} header lines`,
          { offset: offset + lineStart },
        );
      }
      applyHeader(
        chunk,
        decodeLatin1(payload, lineStart, textEnd),
        offset + lineStart,
      );
    }
    lineStart = lineEnd + 1;
  }
  if (chunk.sid === undefined && chunk.noop !== true) {
    throw new ProtocolError(
      "Cannot decode chunk: a chunk without NOOP needs a SID header",
      { offset },
    );
  }
  return chunk;
}

function applyHeader(chunk: Chunk, line: string, offset: number): void {
  const colon = line.indexOf(":");
  if (colon <= 0) {
    throw new ProtocolError(
      `Cannot decode chunk: header line ${
        JSON.stringify(line.slice(0, 64))
      } is not 'Name: value'`,
      { offset },
    );
  }
  const name = line.slice(0, colon);
  const value = line.slice(colon + 1).trim();
  switch (name.toLowerCase()) {
    case "sid":
      chunk.sid = decimal(name, value, offset);
      return;
    case "proto":
      chunk.proto = value.toLowerCase();
      return;
    case "host":
      chunk.host = value.toLowerCase();
      return;
    case "port":
      chunk.port = port(name, value, offset);
      return;
    case "rip":
      chunk.remoteIp = value;
      return;
    case "rport":
      chunk.remotePort = port(name, value, offset);
      return;
    case "rtls":
      chunk.remoteTls = value !== "" && value !== "0";
      return;
    case "eof":
      chunk.eof = eofFlags(value);
      return;
    case "noop":
      chunk.noop = true;
      return;
    case "ping":
      chunk.ping = value;
      return;
    case "pong":
      chunk.pong = value;
      return;
    case "skb":
      chunk.skb = decimal(name, value, offset);
      return;
    case "spd":
      chunk.spd = decimal(name, value, offset);
      return;
    case "zrst":
      chunk.zrst = true;
      return;
    case "quota":
      chunk.quota = numeric(name, value, offset);
      return;
    case "qdays":
      chunk.qdays = numeric(name, value, offset);
      return;
    case "qconns":
      chunk.qconns = numeric(name, value, offset);
      return;
    default:
      (chunk.headers ??= []).push([name, value]);
  }
}

function eofFlags(value: string): EofFlags {
  const upper = value.toUpperCase();
  const read = upper.includes("R");
  const write = upper.includes("W");
  return read && !write ? "R" : write && !read ? "W" : "RW";
}

function decimal(name: string, value: string, offset: number): number {
  if (!DECIMAL_REGEXP.test(value)) {
    throw new ProtocolError(
      `Cannot decode chunk: ${name} ${
        JSON.stringify(value.slice(0, 32))
      } is not a decimal number`,
      { offset },
    );
  }
  return Number(value);
}

function port(name: string, value: string, offset: number): number {
  const n = decimal(name, value, offset);
  if (n > 65535) {
    throw new ProtocolError(
      `Cannot decode chunk: ${name} ${n} is not a port number`,
      { offset },
    );
  }
  return n;
}

function numeric(name: string, value: string, offset: number): number {
  if (!NUMBER_REGEXP.test(value)) {
    throw new ProtocolError(
      `Cannot decode chunk: ${name} ${
        JSON.stringify(value.slice(0, 32))
      } is not a number`,
      { offset },
    );
  }
  return Number(value);
}

/**
 * Renders the header block of a chunk, blank line included, in the order and
 * spelling pagekite.py uses (`NOOP` first, then `SID`, `Proto`, `Host`,
 * `Port`, `RIP`, `RPort`, `RTLS`, `EOF`, …, then `headers`).
 *
 * @param chunk The chunk; its `body` is ignored.
 * @returns The header block text, ending in `\r\n\r\n`.
 * @throws {TypeError} for a value that would break the framing, a chunk with
 * neither `sid` nor `noop`, or `qdays`/`qconns` (pagekite.py connectors crash
 * on them, spec §10.2).
 *
 * @example Usage
 * ```ts
 * import { formatChunkHeaders } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   formatChunkHeaders({ sid: 7, eof: "R", body: new Uint8Array() }),
 *   "SID: 7\r\nEOF: 1R\r\n\r\n",
 * );
 * ```
 */
export function formatChunkHeaders(chunk: Chunk): string {
  if (chunk.sid === undefined && chunk.noop !== true) {
    throw new TypeError(
      "Cannot encode chunk: a chunk needs 'sid' or 'noop'",
    );
  }
  if (chunk.qdays !== undefined || chunk.qconns !== undefined) {
    throw new TypeError(
      "Cannot encode chunk: QDays and QConns are never sent in chunks (pagekite.py connectors crash on them)",
    );
  }
  let text = "";
  if (chunk.noop === true) text += "NOOP: 1\r\n";
  if (chunk.sid !== undefined) text += `SID: ${sidText(chunk.sid)}\r\n`;
  if (chunk.proto !== undefined) text += line("Proto", chunk.proto);
  if (chunk.host !== undefined) text += line("Host", chunk.host);
  if (chunk.port !== undefined) text += `Port: ${portText(chunk.port)}\r\n`;
  if (chunk.remoteIp !== undefined) text += line("RIP", chunk.remoteIp);
  if (chunk.remotePort !== undefined) {
    text += `RPort: ${portText(chunk.remotePort)}\r\n`;
  }
  if (chunk.remoteTls === true) text += "RTLS: 1\r\n";
  if (chunk.eof !== undefined) {
    text += chunk.eof === "RW" ? "EOF: 1WR\r\n" : `EOF: 1${chunk.eof}\r\n`;
  }
  if (chunk.ping !== undefined) text += line("PING", chunk.ping);
  if (chunk.pong !== undefined) text += line("PONG", chunk.pong);
  if (chunk.skb !== undefined) text += `SKB: ${count("skb", chunk.skb)}\r\n`;
  if (chunk.spd !== undefined) text += `SPD: ${count("spd", chunk.spd)}\r\n`;
  if (chunk.zrst === true) text += "ZRST: 1\r\n";
  if (chunk.quota !== undefined) {
    if (!Number.isFinite(chunk.quota)) {
      throw new TypeError(
        `Cannot encode chunk: quota ${chunk.quota} is not a finite number`,
      );
    }
    text += `Quota: ${chunk.quota}\r\n`;
  }
  for (const [name, value] of chunk.headers ?? []) {
    if (!HEADER_NAME_REGEXP.test(name)) {
      throw new TypeError(
        `Cannot encode chunk: header name ${JSON.stringify(name)} is invalid`,
      );
    }
    text += line(name, value);
  }
  return text + "\r\n";
}

const HEADER_NAME_REGEXP = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VALUE_BREAK_REGEXP = /[\r\n]/;

function line(name: string, value: string): string {
  if (VALUE_BREAK_REGEXP.test(value)) {
    throw new TypeError(
      `Cannot encode chunk: ${name} value ${
        JSON.stringify(value.slice(0, 32))
      } contains CR or LF`,
    );
  }
  return `${name}: ${value}\r\n`;
}

function sidText(sid: number): number {
  if (!Number.isSafeInteger(sid) || sid < 0 || sid > 99_999_999) {
    throw new TypeError(
      `Cannot encode chunk: sid ${sid} is not an integer from 0 to 99999999`,
    );
  }
  return sid;
}

function portText(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`Cannot encode chunk: port ${port} is out of range`);
  }
  return port;
}

function count(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(
      `Cannot encode chunk: ${name} ${value} is not a non-negative integer`,
    );
  }
  return value;
}
