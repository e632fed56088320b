// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The HAProxy PROXY protocol v1 line a connector puts before the first
 * bytes it sends to a local service of a `+proxyproto` kite (spec §5.3).
 *
 * @module
 */

const encoder = new TextEncoder();

const IPV4_REGEXP = /^(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}$/;
const IPV6_CHARS_REGEXP = /^[0-9A-Fa-f:.]+$/;
const IPV6_GROUP_REGEXP = /^[0-9A-Fa-f]{1,4}$/;

/** What {@linkcode proxyProtocolV1} needs: the stream's addresses. */
export interface ProxyProtocolOptions {
  /** The user's address, the stream's `RIP` (IPv4, IPv6 or mapped IPv4). */
  remoteIp: string;
  /** The user's port, the stream's `RPort`. */
  remotePort: number;
  /** The public port the user connected to, the stream's `Port`. */
  publicPort: number;
}

/**
 * Builds the PROXY protocol v1 line for a stream:
 * `PROXY TCP4 <RIP> 0.0.0.0 <RPort> <Port>\r\n`, or `TCP6` with destination
 * `::` for an IPv6 user. An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`)
 * becomes plain IPv4, and IPv6 addresses are written in their canonical
 * RFC 5952 form. When the address or a port is unusable (not an IP
 * literal, octets with leading zeros, a zone index, a port outside
 * 0–65535), the line is `PROXY UNKNOWN\r\n`, which tells the service the
 * source is not known.
 *
 * @param options The stream's `RIP`, `RPort` and `Port`.
 * @returns The line's bytes, CRLF included.
 *
 * @example Usage
 * ```ts
 * import { proxyProtocolV1 } from "@kitewire/pagekite/connector";
 * import assert from "node:assert/strict";
 *
 * const line = proxyProtocolV1({
 *   remoteIp: "::ffff:192.0.2.7",
 *   remotePort: 46000,
 *   publicPort: 443,
 * });
 * assert.equal(
 *   new TextDecoder().decode(line),
 *   "PROXY TCP4 192.0.2.7 0.0.0.0 46000 443\r\n",
 * );
 * ```
 */
export function proxyProtocolV1(options: ProxyProtocolOptions): Uint8Array {
  return encoder.encode(proxyLine(options));
}

function proxyLine(options: ProxyProtocolOptions): string {
  const { remoteIp, remotePort, publicPort } = options;
  if (!isPort(remotePort) || !isPort(publicPort)) return "PROXY UNKNOWN\r\n";
  const v4 = parseIpv4(remoteIp);
  if (v4 !== null) {
    return `PROXY TCP4 ${v4.join(".")} 0.0.0.0 ${remotePort} ${publicPort}\r\n`;
  }
  const v6 = parseIpv6(remoteIp);
  if (v6 === null) return "PROXY UNKNOWN\r\n";
  if (isMappedIpv4(v6)) {
    const address = [v6[6]! >> 8, v6[6]! & 0xff, v6[7]! >> 8, v6[7]! & 0xff];
    return `PROXY TCP4 ${
      address.join(".")
    } 0.0.0.0 ${remotePort} ${publicPort}\r\n`;
  }
  return `PROXY TCP6 ${formatIpv6(v6)} :: ${remotePort} ${publicPort}\r\n`;
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/** Four octets, or null unless `text` is a strict dotted quad. */
function parseIpv4(text: string): number[] | null {
  if (!IPV4_REGEXP.test(text)) return null;
  const octets = text.split(".").map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

/** Eight 16-bit groups, or null unless `text` is an IPv6 literal. */
function parseIpv6(text: string): number[] | null {
  if (!IPV6_CHARS_REGEXP.test(text)) return null;
  let head = text;
  const tail: number[] = [];
  const dot = text.indexOf(".");
  if (dot !== -1) {
    const colon = text.lastIndexOf(":");
    if (colon === -1 || colon > dot) return null;
    const v4 = parseIpv4(text.slice(colon + 1));
    if (v4 === null) return null;
    tail.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    head = text.slice(0, colon + 1);
    if (!head.endsWith("::")) head = head.slice(0, -1);
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const left = parseGroups(halves[0]!);
  const right = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (left === null || right === null) return null;
  const given = left.length + right.length + tail.length;
  if (halves.length === 2 ? given > 7 : given !== 8) return null;
  return [
    ...left,
    ...new Array<number>(8 - given).fill(0),
    ...right,
    ...tail,
  ];
}

function parseGroups(text: string): number[] | null {
  if (text === "") return [];
  const groups: number[] = [];
  for (const group of text.split(":")) {
    if (!IPV6_GROUP_REGEXP.test(group)) return null;
    groups.push(parseInt(group, 16));
  }
  return groups;
}

function isMappedIpv4(groups: number[]): boolean {
  return groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
}

/** RFC 5952: lower case, no leading zeros, longest zero run (≥ 2) as `::`. */
function formatIpv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${
    hex.slice(bestStart + bestLength).join(":")
  }`;
}
