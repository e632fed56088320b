// Copyright 2026 the Kitewire authors. MIT license.
// Incremental parser for HTTP-like heads: a start line, header lines, and a
// blank line. Shared by the tunnel handshake and the public-side sniffers.

import { decodeLatin1 } from "./_latin1.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";

/** Limits for {@linkcode parseHead}. */
export interface HeadLimits {
  /** Bytes of the whole head, blank line included. */
  maxHeadBytes: number;
  /** Header lines after the start line. */
  maxHeaders: number;
}

/** A parsed head. */
export interface Head {
  /** The first line, without its line end. */
  startLine: string;
  /** Header lines in order: the name as sent, the value trimmed. */
  headers: [name: string, value: string][];
  /** Bytes the head takes, blank line included; the body starts here. */
  length: number;
}

/**
 * Parses a head at the start of `bytes`. Lines may end in CRLF or LF.
 * Returns `null` while the blank line has not arrived yet.
 *
 * @throws {ProtocolLimitError} past `maxHeadBytes` or `maxHeaders`.
 * @throws {ProtocolError} for a header line without a colon or a folded line.
 */
export function parseHead(
  bytes: Uint8Array,
  limits: HeadLimits,
  what = "head",
): Head | null {
  const end = findHeadEnd(bytes, limits, what);
  if (end === -1) return null;
  const headers: [string, string][] = [];
  let startLine = "";
  let lineStart = 0;
  let first = true;
  while (lineStart < end) {
    let lineEnd = bytes.indexOf(0x0a, lineStart);
    if (lineEnd === -1 || lineEnd > end) lineEnd = end;
    const textEnd = lineEnd > lineStart && bytes[lineEnd - 1] === 0x0d
      ? lineEnd - 1
      : lineEnd;
    if (textEnd === lineStart) break; // the blank line
    const line = decodeLatin1(bytes, lineStart, textEnd);
    if (first) {
      startLine = line;
      first = false;
    } else {
      if (line[0] === " " || line[0] === "\t") {
        throw new ProtocolError(
          `Cannot parse ${what}: folded header line at byte ${lineStart}`,
          { offset: lineStart },
        );
      }
      const colon = line.indexOf(":");
      if (colon <= 0) {
        throw new ProtocolError(
          `Cannot parse ${what}: header line at byte ${lineStart} has no name and colon: ${
            JSON.stringify(line.slice(0, 64))
          }`,
          { offset: lineStart },
        );
      }
      if (headers.length >= limits.maxHeaders) {
        throw new ProtocolLimitError(
          `Cannot parse ${what}: more than ${limits.maxHeaders} header lines`,
          { offset: lineStart },
        );
      }
      headers.push([line.slice(0, colon), trimOws(line.slice(colon + 1))]);
    }
    lineStart = lineEnd + 1;
  }
  return { startLine, headers, length: end };
}

/**
 * Finds where the head ends (the offset just past its blank line), or -1 if
 * the blank line has not arrived. Enforces `maxHeadBytes` and `maxHeaders`
 * on incomplete input, so a hostile peer is stopped as soon as it crosses
 * a limit.
 */
export function findHeadEnd(
  bytes: Uint8Array,
  limits: HeadLimits,
  what = "head",
): number {
  const scanEnd = Math.min(bytes.length, limits.maxHeadBytes);
  let lines = 0;
  for (
    let i = bytes.indexOf(0x0a);
    i !== -1 && i < scanEnd;
    i = bytes.indexOf(0x0a, i + 1)
  ) {
    // This line feed ends the start line or a header line.
    if (++lines > limits.maxHeaders + 1) {
      throw new ProtocolLimitError(
        `Cannot parse ${what}: more than ${limits.maxHeaders} header lines`,
        { offset: i + 1 },
      );
    }
    const next = bytes[i + 1];
    if (i + 1 < scanEnd && next === 0x0a) return i + 2;
    if (i + 2 < scanEnd && next === 0x0d && bytes[i + 2] === 0x0a) {
      return i + 3;
    }
  }
  if (bytes.length >= limits.maxHeadBytes) {
    throw new ProtocolLimitError(
      `Cannot parse ${what}: no blank line within maxHeadBytes ${limits.maxHeadBytes}`,
      { offset: limits.maxHeadBytes },
    );
  }
  return -1;
}

function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value[start] === " " || value[start] === "\t")) {
    start++;
  }
  while (end > start && (value[end - 1] === " " || value[end - 1] === "\t")) {
    end--;
  }
  return value.slice(start, end);
}
