// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Pure sniffers for stream protocols a relay routes by name (spec §4.1):
 * XMPP stream headers, IRC registration and Minecraft handshakes.
 *
 * Every sniffer takes the bytes received so far and answers `"incomplete"`
 * (more bytes could change the answer), `"unrecognized"` (not this
 * protocol) or `"ok"` with a value. Limits are checked on incomplete input
 * too, so a peer that trickles bytes is stopped with a
 * {@linkcode ProtocolLimitError} as soon as it crosses one. Input that is
 * recognised but malformed throws {@linkcode ProtocolError}.
 *
 * @module
 */

import { decodeLatin1 } from "./_latin1.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";
import {
  ByteReader,
  checkName,
  DEFAULT_MAX_IRC_BYTES,
  DEFAULT_MAX_MINECRAFT_BYTES,
  DEFAULT_MAX_XMPP_BYTES,
  INCOMPLETE,
  matchWord,
  ok,
  quote,
  resolveLimit,
  type SniffOptions,
  type SniffResult,
  UNRECOGNIZED,
} from "./_sniff_common.ts";

// ---------------------------------------------------------------------------
// XMPP

const XMPP_WHAT = "XMPP stream header";

/** The start of an XMPP client stream. */
export interface XmppStreamHead {
  /** The `to` attribute of the stream header, lower-cased, if any. */
  readonly domain?: string;
  /**
   * Bytes the XML declaration (if any) and the stream start tag take.
   */
  readonly length: number;
}

function isXmlSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a;
}

function moreXmpp(bytes: Uint8Array, maxXmppBytes: number): SniffResult<never> {
  if (bytes.length >= maxXmppBytes) {
    throw new ProtocolLimitError(
      `Cannot sniff ${XMPP_WHAT}: no complete stream header within maxXmppBytes ${maxXmppBytes}`,
      { offset: maxXmppBytes },
    );
  }
  return INCOMPLETE;
}

/**
 * Sniffs the start of an XMPP client stream (spec §4.1): an XML
 * declaration `<?xml …?>` followed by the `<stream:stream …>` start tag,
 * or that start tag alone. The domain is its `to='…'` or `to="…"`
 * attribute.
 *
 * @param bytes The bytes received so far.
 * @param options Limits: `maxXmppBytes`.
 * @returns `"incomplete"` until the start tag is complete,
 * `"unrecognized"` unless the bytes start with `<?xml` or
 * `<stream:stream`, else the stream head.
 * @throws {ProtocolLimitError} If no complete start tag fits in
 * `maxXmppBytes`.
 * @throws {ProtocolError} For a malformed start tag, a root element that
 * is not `stream`, or a `to` that is not a host name.
 *
 * @example Usage
 * ```ts
 * import { sniffXmpp } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode(
 *   "<?xml version='1.0'?><stream:stream to='Chat.Example.com' version='1.0' " +
 *     "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
 * );
 * const result = sniffXmpp(bytes);
 * assert.ok(result.status === "ok");
 * assert.equal(result.value.domain, "chat.example.com");
 * assert.deepEqual(sniffXmpp(bytes.subarray(0, 40)), { status: "incomplete" });
 * ```
 */
export function sniffXmpp(
  bytes: Uint8Array,
  options: SniffOptions = {},
): SniffResult<XmppStreamHead> {
  const maxXmppBytes = resolveLimit(
    options.maxXmppBytes,
    DEFAULT_MAX_XMPP_BYTES,
    "maxXmppBytes",
  );
  const declaration = matchWord(bytes, "<?xml", false);
  const bare = matchWord(bytes, "<stream:stream", false);
  if (declaration === "no" && bare === "no") return UNRECOGNIZED;
  if (declaration !== "yes" && bare !== "yes") {
    return moreXmpp(bytes, maxXmppBytes);
  }
  const window = Math.min(bytes.length, maxXmppBytes);
  let tagStart = 0;
  if (declaration === "yes") {
    let declarationEnd = -1;
    for (let i = 5; i + 1 < window; i++) {
      if (bytes[i] === 0x3f && bytes[i + 1] === 0x3e) {
        declarationEnd = i + 2;
        break;
      }
    }
    if (declarationEnd === -1) return moreXmpp(bytes, maxXmppBytes);
    tagStart = declarationEnd;
    while (tagStart < window && isXmlSpace(bytes[tagStart])) tagStart++;
    if (tagStart >= window) return moreXmpp(bytes, maxXmppBytes);
    if (bytes[tagStart] !== 0x3c) {
      throw new ProtocolError(
        `Cannot sniff ${XMPP_WHAT}: byte ${tagStart} after the XML declaration is not "<"`,
        { offset: tagStart },
      );
    }
  }
  let quoteByte = 0;
  let tagEnd = -1;
  for (let i = tagStart + 1; i < window; i++) {
    const b = bytes[i]!;
    if (quoteByte !== 0) {
      if (b === quoteByte) quoteByte = 0;
    } else if (b === 0x22 || b === 0x27) {
      quoteByte = b;
    } else if (b === 0x3e) {
      tagEnd = i;
      break;
    } else if (b === 0x3c) {
      throw new ProtocolError(
        `Cannot sniff ${XMPP_WHAT}: "<" at byte ${i} inside the start tag`,
        { offset: i },
      );
    }
  }
  if (tagEnd === -1) return moreXmpp(bytes, maxXmppBytes);
  const attributes = parseStartTag(bytes, tagStart, tagEnd);
  const to = attributes.get("to");
  const domain = to === undefined
    ? undefined
    : checkName(to[0], XMPP_WHAT, "to", to[1]);
  return ok(
    domain === undefined
      ? { length: tagEnd + 1 }
      : { domain, length: tagEnd + 1 },
  );
}

/**
 * Parses `<name attr='v' …>` between `start` ("<") and `end` (">"); returns
 * the attributes with the offset of each value.
 */
function parseStartTag(
  bytes: Uint8Array,
  start: number,
  end: number,
): Map<string, [value: string, offset: number]> {
  const tag = decodeLatin1(bytes, start, end);
  function fail(detail: string, at: number): never {
    throw new ProtocolError(`Cannot sniff ${XMPP_WHAT}: ${detail}`, {
      offset: start + at,
    });
  }
  let i = 1;
  while (i < tag.length && !isXmlSpace(tag.charCodeAt(i)) && tag[i] !== "/") {
    i++;
  }
  const name = tag.slice(1, i);
  if (name !== "stream" && !name.endsWith(":stream")) {
    fail(`root element ${quote(name)} is not a stream`, 1);
  }
  const attributes = new Map<string, [string, number]>();
  for (;;) {
    while (i < tag.length && isXmlSpace(tag.charCodeAt(i))) i++;
    if (i >= tag.length || (tag[i] === "/" && i === tag.length - 1)) break;
    const nameStart = i;
    while (
      i < tag.length && tag[i] !== "=" && !isXmlSpace(tag.charCodeAt(i))
    ) i++;
    const attribute = tag.slice(nameStart, i);
    while (i < tag.length && isXmlSpace(tag.charCodeAt(i))) i++;
    if (attribute === "" || tag[i] !== "=") {
      fail(`attribute ${quote(attribute)} has no "=" and value`, nameStart);
    }
    i++;
    while (i < tag.length && isXmlSpace(tag.charCodeAt(i))) i++;
    const quoteChar = tag[i];
    if (quoteChar !== "'" && quoteChar !== '"') {
      fail(`value of attribute ${quote(attribute)} is not quoted`, i);
    }
    const valueEnd = tag.indexOf(quoteChar, i + 1);
    if (valueEnd === -1) {
      fail(`value of attribute ${quote(attribute)} is not closed`, i);
    }
    if (attributes.has(attribute)) {
      fail(`attribute ${quote(attribute)} appears twice`, nameStart);
    }
    attributes.set(attribute, [tag.slice(i + 1, valueEnd), start + i + 1]);
    i = valueEnd + 1;
  }
  return attributes;
}

// ---------------------------------------------------------------------------
// IRC

const IRC_WHAT = "IRC registration";
const IRC_FIRST_COMMANDS = ["NICK ", "USER ", "PASS ", "CAP "];

/** The registration lines of an IRC client, with the domain taken out. */
export interface IrcRegistration {
  /**
   * The domain of the first `NICK nick@domain` or `USER user@domain`,
   * lower-cased, if any.
   */
  readonly domain?: string;
  /**
   * `bytes[0:length]` with the `@domain` part of every `NICK` and `USER`
   * parameter removed: forward these bytes instead of the original ones.
   */
  readonly rewritten: Uint8Array;
  /**
   * Bytes the lines take, up to and including the line end of the later of
   * `NICK` and `USER`.
   */
  readonly length: number;
}

interface IrcParameter {
  command: string;
  /** The first parameter, without a leading ":". */
  text: string;
  /** Where `text` starts in the line. */
  start: number;
}

/** Splits `[:prefix] COMMAND param …` into the command and first parameter. */
function parseIrcLine(line: string): IrcParameter | undefined {
  let i = 0;
  function word(): [string, number] {
    while (line[i] === " ") i++;
    const start = i;
    while (i < line.length && line[i] !== " ") i++;
    return [line.slice(start, i), start];
  }
  let [command] = word();
  if (command.startsWith(":") || command.startsWith("@")) [command] = word();
  let [text, start] = word();
  if (text.startsWith(":")) {
    text = text.slice(1);
    start++;
  }
  return command === ""
    ? undefined
    : { command: command.toUpperCase(), text, start };
}

function moreIrc(bytes: Uint8Array, maxIrcBytes: number): SniffResult<never> {
  if (bytes.length >= maxIrcBytes) {
    throw new ProtocolLimitError(
      `Cannot sniff ${IRC_WHAT}: no NICK and USER lines within maxIrcBytes ${maxIrcBytes}`,
      { offset: maxIrcBytes },
    );
  }
  return INCOMPLETE;
}

/**
 * Sniffs the registration of an IRC client (spec §4.1): the first line is
 * `NICK`, `USER`, `PASS` or `CAP` (any case), and a `NICK nick@domain` or
 * `USER user@domain …` line names the domain. The answer comes once both a
 * `NICK` and a `USER` line are complete, so that the `@domain` part can be
 * taken out of both before they are forwarded. Lines may end in CRLF or LF.
 *
 * @param bytes The bytes received so far.
 * @param options Limits: `maxIrcBytes`.
 * @returns `"incomplete"` until both `NICK` and `USER` are in,
 * `"unrecognized"` unless the first line starts with one of the commands
 * above and a space, else the registration.
 * @throws {ProtocolLimitError} If `NICK` and `USER` are not both in within
 * `maxIrcBytes`.
 * @throws {ProtocolError} For a `NICK` or `USER` line without a parameter
 * or with a domain that is not a host name.
 *
 * @example Usage
 * ```ts
 * import { sniffIrc } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode(
 *   "NICK alice@IRC.Example.com\r\nUSER alice 0 * :Alice\r\n",
 * );
 * const result = sniffIrc(bytes);
 * assert.ok(result.status === "ok");
 * assert.equal(result.value.domain, "irc.example.com");
 * assert.equal(
 *   new TextDecoder().decode(result.value.rewritten),
 *   "NICK alice\r\nUSER alice 0 * :Alice\r\n",
 * );
 * assert.deepEqual(sniffIrc(bytes.subarray(0, 28)), { status: "incomplete" });
 * ```
 */
export function sniffIrc(
  bytes: Uint8Array,
  options: SniffOptions = {},
): SniffResult<IrcRegistration> {
  const maxIrcBytes = resolveLimit(
    options.maxIrcBytes,
    DEFAULT_MAX_IRC_BYTES,
    "maxIrcBytes",
  );
  let maybe = false;
  let recognized = false;
  for (const command of IRC_FIRST_COMMANDS) {
    const match = matchWord(bytes, command, true);
    if (match === "yes") recognized = true;
    if (match === "maybe") maybe = true;
  }
  if (!recognized) return maybe ? moreIrc(bytes, maxIrcBytes) : UNRECOGNIZED;
  const window = Math.min(bytes.length, maxIrcBytes);
  const cuts: [number, number][] = [];
  let domain: string | undefined;
  let sawNick = false;
  let sawUser = false;
  let lineStart = 0;
  while (lineStart < window) {
    const lf = bytes.indexOf(0x0a, lineStart);
    if (lf === -1 || lf >= window) break;
    const textEnd = lf > lineStart && bytes[lf - 1] === 0x0d ? lf - 1 : lf;
    const parsed = parseIrcLine(decodeLatin1(bytes, lineStart, textEnd));
    if (parsed?.command === "NICK" || parsed?.command === "USER") {
      if (parsed.text === "") {
        throw new ProtocolError(
          `Cannot sniff ${IRC_WHAT}: ${parsed.command} line at byte ${lineStart} has no parameter`,
          { offset: lineStart },
        );
      }
      const at = parsed.text.indexOf("@");
      if (at !== -1) {
        const offset = lineStart + parsed.start + at;
        const name = checkName(
          parsed.text.slice(at + 1),
          IRC_WHAT,
          `${parsed.command} domain`,
          offset + 1,
        );
        domain ??= name;
        cuts.push([offset, lineStart + parsed.start + parsed.text.length]);
      }
      if (parsed.command === "NICK") sawNick = true;
      else sawUser = true;
      if (sawNick && sawUser) {
        const length = lf + 1;
        return ok(
          domain === undefined
            ? { rewritten: bytes.slice(0, length), length }
            : { domain, rewritten: cutBytes(bytes, length, cuts), length },
        );
      }
    }
    lineStart = lf + 1;
  }
  return moreIrc(bytes, maxIrcBytes);
}

function cutBytes(
  bytes: Uint8Array,
  length: number,
  cuts: readonly [number, number][],
): Uint8Array {
  let removed = 0;
  for (const [start, end] of cuts) removed += end - start;
  const out = new Uint8Array(length - removed);
  let from = 0;
  let to = 0;
  for (const [start, end] of cuts) {
    out.set(bytes.subarray(from, start), to);
    to += start - from;
    from = end;
  }
  out.set(bytes.subarray(from, length), to);
  return out;
}

// ---------------------------------------------------------------------------
// Minecraft

const MINECRAFT_WHAT = "Minecraft handshake";
/** Packet id, protocol version, address length, port and next state. */
const MINECRAFT_MIN_PACKET = 6;

/** A Minecraft (Java Edition) handshake packet. */
export interface MinecraftHandshake {
  /** The client's protocol version number. */
  readonly protocolVersion: number;
  /**
   * The server address the client connected to, lower-cased, without the
   * `\0…` suffix some mod loaders append and without a trailing dot.
   * Absent when empty.
   */
  readonly host?: string;
  /** The server port the client connected to. */
  readonly port: number;
  /** What the client wants next: 1 status, 2 login, 3 transfer. */
  readonly nextState: number;
  /** Bytes the handshake packet takes, its length prefix included. */
  readonly length: number;
}

/**
 * Sniffs a Minecraft (Java Edition) handshake (spec §4.1): a varint packet
 * length, packet id 0, a varint protocol version, the varint-prefixed UTF-8
 * server address, the big-endian u16 port and a varint next state. With a
 * packet length under 128 the second byte is `0x00`. The caller compares
 * `port` with its listening port.
 *
 * @param bytes The bytes received so far.
 * @param options Limits: `maxMinecraftBytes`.
 * @returns `"incomplete"` until the packet is complete, `"unrecognized"`
 * unless the bytes start with a packet length of at least 6 and packet id
 * 0, else the handshake.
 * @throws {ProtocolLimitError} If the packet length exceeds
 * `maxMinecraftBytes`.
 * @throws {ProtocolError} For a malformed packet or server address.
 *
 * @example Usage
 * ```ts
 * import { sniffMinecraft } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const address = new TextEncoder().encode("MC.Example.com");
 * const body = [0x00, 0xff, 0x05, address.length, ...address, 0x63, 0xdd, 0x01];
 * const bytes = new Uint8Array([body.length, ...body, 0x01, 0x00]);
 * const result = sniffMinecraft(bytes);
 * assert.ok(result.status === "ok");
 * assert.equal(result.value.host, "mc.example.com");
 * assert.equal(result.value.port, 25565);
 * assert.equal(result.value.protocolVersion, 767);
 * assert.equal(result.value.length, body.length + 1);
 * ```
 */
export function sniffMinecraft(
  bytes: Uint8Array,
  options: SniffOptions = {},
): SniffResult<MinecraftHandshake> {
  const maxMinecraftBytes = resolveLimit(
    options.maxMinecraftBytes,
    DEFAULT_MAX_MINECRAFT_BYTES,
    "maxMinecraftBytes",
  );
  // The packet length: a varint of at most 3 bytes (2 MiB).
  let packetLength = 0;
  let headerLength = 0;
  for (;;) {
    if (headerLength === 3) return UNRECOGNIZED;
    if (headerLength >= bytes.length) return INCOMPLETE;
    const b = bytes[headerLength]!;
    packetLength += (b & 0x7f) * 2 ** (7 * headerLength);
    headerLength++;
    if (b < 0x80) break;
  }
  if (headerLength >= bytes.length) return INCOMPLETE;
  if (bytes[headerLength] !== 0x00 || packetLength < MINECRAFT_MIN_PACKET) {
    return UNRECOGNIZED;
  }
  const total = headerLength + packetLength;
  if (total > maxMinecraftBytes) {
    throw new ProtocolLimitError(
      `Cannot sniff ${MINECRAFT_WHAT}: packet of ${total} bytes exceeds maxMinecraftBytes ${maxMinecraftBytes}`,
      { offset: 0 },
    );
  }
  if (bytes.length < total) return INCOMPLETE;
  function fail(detail: string, at: number): never {
    throw new ProtocolError(`Cannot sniff ${MINECRAFT_WHAT}: ${detail}`, {
      offset: at,
    });
  }
  const reader = new ByteReader(bytes, headerLength + 1, total, fail);
  const protocolVersion = reader.varint("protocol version", 5) | 0;
  const addressLength = reader.varint("server address length", 3);
  const addressStart = reader.take(addressLength, "server address");
  let address: string;
  try {
    address = new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(addressStart, addressStart + addressLength),
    );
  } catch (error) {
    throw new ProtocolError(
      `Cannot sniff ${MINECRAFT_WHAT}: server address is not UTF-8`,
      { offset: addressStart, cause: error },
    );
  }
  const port = reader.uint(2, "server port");
  const nextState = reader.varint("next state", 5);
  if (nextState < 1 || nextState > 3) {
    fail(`next state ${nextState} is not 1, 2 or 3`, reader.pos - 1);
  }
  if (reader.left !== 0) {
    fail(`${reader.left} bytes follow the next state`, reader.pos);
  }
  const nul = address.indexOf("\0");
  let name = nul === -1 ? address : address.slice(0, nul);
  if (name.endsWith(".")) name = name.slice(0, -1);
  const host = name === ""
    ? undefined
    : checkName(name, MINECRAFT_WHAT, "server address", addressStart);
  return ok({
    protocolVersion,
    ...(host === undefined ? {} : { host }),
    port,
    nextState,
    length: total,
  });
}
