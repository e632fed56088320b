// Copyright 2026 the Kitewire authors. MIT license.
/**
 * A pure sniffer for the TLS ClientHello and its SNI (spec §4.3), in TLS
 * records or in the SSLv2 format.
 *
 * Like every sniffer it takes the bytes received so far and answers
 * `"incomplete"`, `"unrecognized"` or `"ok"` with a value. Limits are
 * checked on incomplete input too, so a peer that trickles bytes is stopped
 * with a {@linkcode ProtocolLimitError} as soon as it crosses one. Input that
 * is recognised but malformed throws {@linkcode ProtocolError}.
 *
 * @module
 */

import { decodeLatin1 } from "./_latin1.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";
import {
  ByteReader,
  DEFAULT_MAX_HELLO_BYTES,
  INCOMPLETE,
  MAX_NAME_LENGTH,
  NAME_REGEXP,
  ok,
  quote,
  resolveLimit,
  type SniffOptions,
  type SniffResult,
  UNRECOGNIZED,
} from "./_sniff_common.ts";

const TLS_WHAT = "TLS ClientHello";
const TLS_HANDSHAKE_RECORD = 0x16;
const TLS_MAX_RECORD_LENGTH = 16_384;
const TLS_CLIENT_HELLO = 1;
const TLS_SERVER_NAME_EXTENSION = 0;
const TLS_HOST_NAME_TYPE = 0;
const SSLV2_CLIENT_HELLO = 1;

/** What a TLS ClientHello says about where the connection should go. */
export interface TlsHello {
  /**
   * `"tls"` for a ClientHello in TLS records; `"sslv2"` for an
   * SSLv2-format hello, which cannot carry SNI.
   */
  readonly format: "tls" | "sslv2";
  /** The first host name of the SNI extension, lower-cased, if any. */
  readonly sni?: string;
  /**
   * Bytes the records that carry the ClientHello take, record headers
   * included.
   */
  readonly length: number;
}

/**
 * Sniffs a TLS ClientHello and its SNI (spec §4.3). The first byte is
 * `0x16` (a TLS handshake record, version 3.x) or has its top bit set (an
 * SSLv2-format hello, which has no SNI). A ClientHello split across
 * several TLS records is reassembled; the answer comes once the record
 * holding its last byte is complete.
 *
 * @param bytes The bytes received so far.
 * @param options Limits: `maxHelloBytes`.
 * @returns `"incomplete"` until the ClientHello is complete,
 * `"unrecognized"` if the bytes are not a TLS or SSLv2 hello, else the
 * hello.
 * @throws {ProtocolLimitError} If the records carrying the ClientHello
 * would exceed `maxHelloBytes`; thrown as soon as a record header or the
 * handshake header says so.
 * @throws {ProtocolError} For a malformed record, handshake message,
 * ClientHello or server name.
 *
 * @example Usage
 * ```ts
 * import { sniffTlsHello } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * // A minimal ClientHello (TLS 1.2, one cipher suite) with SNI "Example.com".
 * const name = new TextEncoder().encode("Example.com");
 * const sni = [0, 0, 0, name.length + 5, 0, name.length + 3, 0, 0, name.length, ...name];
 * const body = [3, 3, ...new Array(32).fill(7), 0, 0, 2, 0x13, 0x01, 1, 0, 0, sni.length, ...sni];
 * const handshake = [1, 0, 0, body.length, ...body];
 * const record = new Uint8Array([0x16, 3, 1, 0, handshake.length, ...handshake]);
 *
 * const result = sniffTlsHello(record);
 * assert.ok(result.status === "ok");
 * assert.equal(result.value.sni, "example.com");
 * assert.equal(result.value.length, record.length);
 * assert.deepEqual(sniffTlsHello(record.subarray(0, 20)), { status: "incomplete" });
 * ```
 */
export function sniffTlsHello(
  bytes: Uint8Array,
  options: SniffOptions = {},
): SniffResult<TlsHello> {
  const maxHelloBytes = resolveLimit(
    options.maxHelloBytes,
    DEFAULT_MAX_HELLO_BYTES,
    "maxHelloBytes",
  );
  if (bytes.length === 0) return INCOMPLETE;
  const first = bytes[0]!;
  if (first === TLS_HANDSHAKE_RECORD) {
    return sniffTlsRecords(bytes, maxHelloBytes);
  }
  if (first >= 0x80) return sniffSslV2Hello(bytes, maxHelloBytes);
  return UNRECOGNIZED;
}

function tlsError(detail: string, offset: number): ProtocolError {
  return new ProtocolError(`Cannot sniff ${TLS_WHAT}: ${detail}`, { offset });
}

function tlsLimitError(
  size: number,
  maxHelloBytes: number,
  offset: number,
): ProtocolLimitError {
  return new ProtocolLimitError(
    `Cannot sniff ${TLS_WHAT}: it needs at least ${size} bytes of records, more than maxHelloBytes ${maxHelloBytes}`,
    { offset },
  );
}

function sniffTlsRecords(
  bytes: Uint8Array,
  maxHelloBytes: number,
): SniffResult<TlsHello> {
  if (bytes.length < 2) return INCOMPLETE;
  // A 0x16 not followed by a 3.x version is not TLS (a Minecraft handshake
  // of 22 bytes starts 0x16 0x00).
  if (bytes[1] !== 0x03) return UNRECOGNIZED;
  // Handshake bytes gathered so far, as [start, end) ranges of `bytes`.
  const fragments: [number, number][] = [];
  let gathered = 0;
  let messageEnd = -1; // 4 + the ClientHello's length, once known
  let pos = 0;
  for (;;) {
    if (pos + 5 > bytes.length) {
      if (pos > 0 && pos < bytes.length) checkRecordStart(bytes, pos);
      if (pos + 5 > maxHelloBytes) {
        throw tlsLimitError(pos + 5, maxHelloBytes, pos);
      }
      return INCOMPLETE;
    }
    if (pos > 0) checkRecordStart(bytes, pos);
    const recordLength = (bytes[pos + 3]! << 8) | bytes[pos + 4]!;
    if (recordLength === 0) {
      throw tlsError(`record at byte ${pos} is empty`, pos);
    }
    if (recordLength > TLS_MAX_RECORD_LENGTH) {
      throw tlsError(
        `record length ${recordLength} exceeds ${TLS_MAX_RECORD_LENGTH}`,
        pos,
      );
    }
    const recordEnd = pos + 5 + recordLength;
    if (recordEnd > maxHelloBytes) {
      throw tlsLimitError(recordEnd, maxHelloBytes, pos);
    }
    const dataEnd = Math.min(recordEnd, bytes.length);
    fragments.push([pos + 5, dataEnd]);
    gathered += dataEnd - pos - 5;
    if (messageEnd === -1 && gathered >= 1) {
      const type = handshakeByte(bytes, fragments, 0);
      if (type !== TLS_CLIENT_HELLO) {
        throw tlsError(
          `handshake message type ${type} is not ClientHello (1)`,
          fragments[0]![0],
        );
      }
      if (gathered >= 4) {
        const length = handshakeByte(bytes, fragments, 1) * 65_536 +
          handshakeByte(bytes, fragments, 2) * 256 +
          handshakeByte(bytes, fragments, 3);
        messageEnd = 4 + length;
        if (5 + messageEnd > maxHelloBytes) {
          throw tlsLimitError(5 + messageEnd, maxHelloBytes, 5);
        }
      }
    }
    if (recordEnd > bytes.length) return INCOMPLETE;
    pos = recordEnd;
    if (messageEnd !== -1 && gathered >= messageEnd) break;
  }
  const hello = new Uint8Array(messageEnd);
  let filled = 0;
  for (const [start, end] of fragments) {
    const n = Math.min(end - start, messageEnd - filled);
    hello.set(bytes.subarray(start, start + n), filled);
    filled += n;
    if (filled === messageEnd) break;
  }
  const sni = parseClientHello(hello, (detail, at) => {
    throw tlsError(detail, inputOffset(fragments, at));
  });
  return ok(
    sni === undefined
      ? { format: "tls", length: pos }
      : { format: "tls", sni, length: pos },
  );
}

/** Checks the first two bytes of a record after the first one. */
function checkRecordStart(bytes: Uint8Array, pos: number): void {
  const type = bytes[pos]!;
  if (type !== TLS_HANDSHAKE_RECORD) {
    throw tlsError(
      `record type ${type} at byte ${pos} is not a handshake record`,
      pos,
    );
  }
  const major = bytes[pos + 1];
  if (major !== undefined && major !== 0x03) {
    throw tlsError(`record version ${major}.x at byte ${pos} is not 3.x`, pos);
  }
}

function handshakeByte(
  bytes: Uint8Array,
  fragments: readonly [number, number][],
  index: number,
): number {
  return bytes[inputOffset(fragments, index)]!;
}

/** Maps an offset in the reassembled handshake to an offset in the input. */
function inputOffset(
  fragments: readonly [number, number][],
  index: number,
): number {
  let left = index;
  for (const [start, end] of fragments) {
    if (left < end - start) return start + left;
    left -= end - start;
  }
  const last = fragments[fragments.length - 1];
  return last === undefined ? 0 : last[1];
}

/** Walks a complete ClientHello message; returns its first SNI host name. */
function parseClientHello(
  hello: Uint8Array,
  fail: (detail: string, at: number) => never,
): string | undefined {
  const reader = new ByteReader(hello, 4, hello.length, fail);
  reader.skip(2, "client version");
  reader.skip(32, "random");
  const sessionIdLength = reader.uint(1, "session id length");
  if (sessionIdLength > 32) {
    reader.fail(`session id length ${sessionIdLength} exceeds 32`);
  }
  reader.take(sessionIdLength, "session id");
  const suitesLength = reader.uint(2, "cipher suites length");
  if (suitesLength === 0 || suitesLength % 2 !== 0) {
    reader.fail(
      `cipher suites length ${suitesLength} is not a positive even number`,
    );
  }
  reader.take(suitesLength, "cipher suites");
  const methodsLength = reader.uint(1, "compression methods length");
  if (methodsLength === 0) reader.fail("no compression methods");
  reader.take(methodsLength, "compression methods");
  if (reader.left === 0) return undefined; // no extensions at all
  const extensionsLength = reader.uint(2, "extensions length");
  if (extensionsLength < reader.left) {
    reader.fail(
      `${
        reader.left - extensionsLength
      } bytes follow the ${extensionsLength} bytes of extensions`,
    );
  }
  reader.take(extensionsLength, "extensions");
  const extensions = new ByteReader(
    hello,
    reader.pos - extensionsLength,
    reader.pos,
    fail,
  );
  let sni: string | undefined;
  while (extensions.left > 0) {
    const type = extensions.uint(2, "extension type");
    const length = extensions.uint(2, "extension length");
    const start = extensions.take(length, "extension");
    if (type === TLS_SERVER_NAME_EXTENSION && sni === undefined && length > 0) {
      sni = parseServerName(hello, start, start + length, fail);
    }
  }
  return sni;
}

function parseServerName(
  hello: Uint8Array,
  start: number,
  end: number,
  fail: (detail: string, at: number) => never,
): string | undefined {
  const reader = new ByteReader(hello, start, end, fail);
  const listLength = reader.uint(2, "server name list length");
  if (listLength !== reader.left) {
    reader.fail(
      `server name list length ${listLength} does not match the ${reader.left} bytes of the extension`,
    );
  }
  let name: string | undefined;
  while (reader.left > 0) {
    const type = reader.uint(1, "server name type");
    const length = reader.uint(2, "server name length");
    const at = reader.take(length, "server name");
    if (type === TLS_HOST_NAME_TYPE && name === undefined) {
      const raw = decodeLatin1(hello, at, at + length);
      if (raw.length > MAX_NAME_LENGTH || !NAME_REGEXP.test(raw)) {
        reader.fail(`server name ${quote(raw)} is not a valid host name`, at);
      }
      name = raw.toLowerCase();
    }
  }
  return name;
}

function sniffSslV2Hello(
  bytes: Uint8Array,
  maxHelloBytes: number,
): SniffResult<TlsHello> {
  // Two-byte record header (top bit set, 15-bit length), then message type
  // 1 (CLIENT-HELLO) and a version whose major byte is 0 (SSL 2) or 3.
  if (bytes.length >= 3 && bytes[2] !== SSLV2_CLIENT_HELLO) return UNRECOGNIZED;
  if (bytes.length >= 4 && bytes[3] !== 0x00 && bytes[3] !== 0x03) {
    return UNRECOGNIZED;
  }
  if (bytes.length < 4) return INCOMPLETE;
  const recordLength = ((bytes[0]! & 0x7f) << 8) | bytes[1]!;
  const total = 2 + recordLength;
  if (total > maxHelloBytes) throw tlsLimitError(total, maxHelloBytes, 0);
  if (recordLength < 9) {
    throw tlsError(`SSLv2 hello length ${recordLength} is less than 9`, 0);
  }
  if (bytes.length < total) return INCOMPLETE;
  const suitesLength = (bytes[5]! << 8) | bytes[6]!;
  const sessionIdLength = (bytes[7]! << 8) | bytes[8]!;
  const challengeLength = (bytes[9]! << 8) | bytes[10]!;
  const fields = suitesLength + sessionIdLength + challengeLength;
  if (9 + fields !== recordLength) {
    throw tlsError(
      `SSLv2 hello fields take ${fields} bytes, not the ${
        recordLength - 9
      } the record holds`,
      5,
    );
  }
  if (suitesLength === 0 || suitesLength % 3 !== 0) {
    throw tlsError(
      `SSLv2 cipher specs length ${suitesLength} is not a positive multiple of 3`,
      5,
    );
  }
  if (challengeLength < 16 || challengeLength > 32) {
    throw tlsError(
      `SSLv2 challenge length ${challengeLength} is not between 16 and 32`,
      9,
    );
  }
  return ok({ format: "sslv2", length: total });
}

/**
 * The TLS alert sent for a TLS connection nobody serves (spec §4.3, §5.2):
 * a fatal `access_denied` alert record, `15 03 03 00 02 02 31`, as
 * pagekite.py sends it. Relays send it for a ClientHello without a route,
 * connectors on an `https` stream they cannot serve.
 *
 * @example Usage
 * ```ts
 * import { TLS_ALERT } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...TLS_ALERT], [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31]);
 * ```
 */
export const TLS_ALERT: Readonly<Uint8Array> = Uint8Array.of(
  0x15,
  0x03,
  0x03,
  0x00,
  0x02,
  0x02,
  0x31,
);
