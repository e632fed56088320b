// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Abuse controls of the relay (docs/reliability.md §4.4 S4, S8; spec §7.2):
 * address ACLs for clients and tunnels, the client-IP rate limit of a
 * tunnel, and the stream-open rate of a tunnel. Pure bookkeeping; the
 * relay's edge (`edge.ts`) applies it.
 *
 * @module
 */

import type { IpRateLimit } from "../protocol/mod.ts";

export type { IpRateLimit };

/** One rule of a client or tunnel ACL. */
export interface AclRule {
  /** What a matching address gets. */
  action: "allow" | "deny";
  /**
   * An exact address (`10.1.2.3`, `::1`) or an address prefix in CIDR
   * notation (`10.0.0.0/8`, `fd00::/8`, `0.0.0.0/0` for every IPv4
   * address). IPv4-mapped IPv6 clients (`::ffff:10.1.2.3`) match IPv4
   * rules.
   */
  address: string;
}

/** A parsed address: value and width in bits (32 or 128). */
interface Address {
  value: bigint;
  bits: 32 | 128;
}

/** A parsed ACL rule. */
interface CompiledRule {
  allow: boolean;
  value: bigint;
  bits: 32 | 128;
  prefix: number;
}

/** An ordered allow/deny list: the first match wins, no match allows. */
export class Acl {
  readonly #rules: CompiledRule[];

  /** Parses `rules`; throws `TypeError` for a malformed one. */
  constructor(rules: readonly AclRule[], name = "acl") {
    this.#rules = rules.map((rule, i) => compileRule(rule, `${name}[${i}]`));
  }

  /** Whether the ACL has no rules (everything is allowed). */
  get empty(): boolean {
    return this.#rules.length === 0;
  }

  /** Whether `ip` may connect. Unparsable addresses are denied. */
  allows(ip: string): boolean {
    if (this.#rules.length === 0) return true;
    const address = parseAddress(ip);
    if (address === undefined) return false;
    for (const rule of this.#rules) {
      if (rule.bits !== address.bits) continue;
      const shift = BigInt(rule.bits - rule.prefix);
      if ((address.value >> shift) === (rule.value >> shift)) return rule.allow;
    }
    return true;
  }
}

function compileRule(rule: AclRule, where: string): CompiledRule {
  if (rule === null || typeof rule !== "object") {
    throw new TypeError(`Cannot serve relay: ${where} is not a rule`);
  }
  if (rule.action !== "allow" && rule.action !== "deny") {
    throw new TypeError(
      `Cannot serve relay: ${where}.action ${
        JSON.stringify(rule.action)
      } is not "allow" or "deny"`,
    );
  }
  const text = String(rule.address);
  const slash = text.indexOf("/");
  const address = parseAddress(slash === -1 ? text : text.slice(0, slash));
  let prefix = address?.bits ?? 0;
  if (slash !== -1) {
    const digits = text.slice(slash + 1);
    prefix = /^\d{1,3}$/.test(digits) ? Number(digits) : -1;
  }
  if (address === undefined || prefix < 0 || prefix > address.bits) {
    throw new TypeError(
      `Cannot serve relay: ${where}.address ${
        JSON.stringify(rule.address)
      } is not an IP address or prefix`,
    );
  }
  return {
    allow: rule.action === "allow",
    value: address.value,
    bits: address.bits,
    prefix,
  };
}

/** Parses an IPv4 or IPv6 address; IPv4-mapped IPv6 becomes IPv4. */
export function parseAddress(text: string): Address | undefined {
  if (text.includes(":")) {
    const v6 = parseIpv6(text);
    if (v6 === undefined) return undefined;
    if ((v6 >> 32n) === 0xffffn) return { value: v6 & 0xffffffffn, bits: 32 };
    return { value: v6, bits: 128 };
  }
  const v4 = parseIpv4(text);
  return v4 === undefined ? undefined : { value: v4, bits: 32 };
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = (value << 8n) | BigInt(Number(part));
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  const zone = text.indexOf("%");
  if (zone !== -1) text = text.slice(0, zone);
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (v4 === undefined) return undefined;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (/^[0-9a-f]{1,4}$/i.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  let value = 0n;
  for (const group of [...head, ...new Array(missing).fill(0), ...tail]) {
    value = (value << 16n) | BigInt(group);
  }
  return value;
}

/**
 * The distinct client IPs a tunnel served recently (spec §7.2): a new IP
 * beyond `ips` within `seconds` is refused. Clients are counted by IP
 * address only (pagekite.py also hashes User-Agent and Accept-Language).
 */
export class ClientWindow {
  readonly #seen = new Map<string, number>();

  /** Whether `ip` may open a stream now; records it when it may. */
  admit(ip: string, limit: IpRateLimit, now: number): boolean {
    const horizon = now - limit.seconds * 1000;
    for (const [seen, at] of this.#seen) {
      if (at <= horizon) this.#seen.delete(seen);
    }
    if (!this.#seen.has(ip) && this.#seen.size >= limit.ips) return false;
    this.#seen.delete(ip); // keep the map ordered by last sight
    this.#seen.set(ip, now);
    return true;
  }
}

/** Stream opens of one tunnel in the current one-second window. */
export class OpenRate {
  #windowStart = -Infinity;
  #count = 0;

  /** Whether one more open fits under `perSecond`; counts it if so. */
  admit(perSecond: number, now: number): boolean {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#count = 0;
    }
    if (this.#count >= perSecond) return false;
    this.#count++;
    return true;
  }
}

/** The stricter of two client-IP rate limits (fewer IPs per second). */
export function stricterRate(
  a: IpRateLimit | undefined,
  b: IpRateLimit | undefined,
): IpRateLimit | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.ips / b.seconds < a.ips / a.seconds ? b : a;
}

/** Checks an `ipsPerSec` option; throws `RangeError` when malformed. */
export function checkRate(
  rate: IpRateLimit | undefined,
  where: string,
): void {
  if (rate === undefined) return;
  for (const key of ["ips", "seconds"] as const) {
    const value = rate?.[key];
    if (
      typeof value !== "number" || !Number.isSafeInteger(value) || value < 1
    ) {
      throw new RangeError(
        `Cannot serve relay: ${where}.${key} ${value} is not a positive integer`,
      );
    }
  }
}

/** The 403 page for a client the client ACL denies. */
export function forbiddenPage(): Uint8Array {
  const body = "<html><body><h1>403 Forbidden</h1>" +
    "<p>Your address may not use this relay.</p></body></html>\n";
  return new TextEncoder().encode(
    "HTTP/1.1 403 Forbidden\r\n" +
      "Content-Type: text/html; charset=utf-8\r\n" +
      "Pragma: no-cache\r\nExpires: 0\r\nCache-Control: no-store\r\n" +
      `Connection: close\r\nContent-Length: ${body.length}\r\n\r\n` + body,
  );
}

/** The answer to a tunnel request the tunnel ACL denies (spec §1.4). */
export const TUNNEL_FORBIDDEN: Uint8Array = new TextEncoder().encode(
  "HTTP/1.0 403 Forbidden\r\n\r\n",
);
