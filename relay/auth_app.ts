// Copyright 2026 the Kitewire authors. MIT license.
/**
 * External auth apps (spec §7.3 item 2, pagekite.py `--authdomain` with a
 * path): `app --capabilities` must list `AUTH`; `app --auth <domain>`
 * prints one JSON object with the kite's `secret` and its quota. The relay
 * verifies the kite signature itself. Every failure (crash, non-zero exit,
 * garbage, timeout, too many lookups at once) refuses the kite: auth fails
 * closed. DNS zero-knowledge auth (item 3) is not supported.
 *
 * @module
 */

import type { IpRateLimit } from "../protocol/mod.ts";

/** An external program that knows kite secrets and quotas. */
export interface AuthAppOptions {
  /**
   * The kite domain suffix the app covers: `example.com` covers
   * `example.com` and every name under it. Absent means every kite that no
   * static kite covers.
   */
  domain?: string;
  /**
   * The program, a path containing `/`. (pagekite.py reads a value without
   * `/` as a DNS suffix for zero-knowledge auth, which Kitewire does not
   * support; such a command is refused.)
   */
  command: string;
  /** Arguments put before `--capabilities` / `--auth <domain>`. */
  args?: string[];
  /**
   * Time one run of the app may take; it is killed after that, and the
   * kite refused. The tunnel handshake deadline
   * (`handshakeTimeoutMs`) also bounds it.
   *
   * @default {5000}
   */
  timeoutMs?: number;
}

/** What an auth app said about a kite. */
export interface AuthAnswer {
  /** The kite's secret; absent when the app refused or failed. */
  secret?: string;
  /** Refuse the kite with this reason (`unauthorized`, `noquota`, ...). */
  reject?: string;
  /** `quota_kb`: transfer quota left, in KB; absent = unlimited. */
  quota?: number;
  /** `quota_days`. */
  qDays?: number;
  /** `quota_conns`. */
  qConns?: number;
  /** `ips_per_sec-ips` / `ips_per_sec-secs`. */
  ipsPerSec?: IpRateLimit;
}

const DEFAULT_TIMEOUT_MS = 5000;
/** Most bytes an app may print. */
const MAX_OUTPUT_BYTES = 65_536;
const UNAUTHORIZED: AuthAnswer = { reject: "unauthorized" };

/** Checks auth app options; throws `TypeError` for unusable ones. */
export function checkAuthApps(apps: readonly AuthAppOptions[]): void {
  if (!Array.isArray(apps)) {
    throw new TypeError("Cannot serve relay: 'authApps' is not an array");
  }
  for (const [i, app] of apps.entries()) {
    const where = `authApps[${i}]`;
    if (app === null || typeof app !== "object") {
      throw new TypeError(`Cannot serve relay: ${where} is not an object`);
    }
    if (typeof app.command !== "string" || app.command === "") {
      throw new TypeError(`Cannot serve relay: ${where}.command is empty`);
    }
    if (!app.command.includes("/")) {
      throw new TypeError(
        `Cannot serve relay: ${where}.command ${
          JSON.stringify(app.command)
        } looks like a DNS suffix; DNS zero-knowledge auth is unsupported (give a path containing "/")`,
      );
    }
    if (
      app.domain !== undefined &&
      (typeof app.domain !== "string" || app.domain === "")
    ) {
      throw new TypeError(`Cannot serve relay: ${where}.domain is empty`);
    }
    if (
      app.args !== undefined &&
      (!Array.isArray(app.args) ||
        !(app.args as unknown[]).every((a) => typeof a === "string"))
    ) {
      throw new TypeError(
        `Cannot serve relay: ${where}.args is not a list of strings`,
      );
    }
    const timeout = app.timeoutMs;
    if (
      timeout !== undefined &&
      (!Number.isSafeInteger(timeout) || timeout < 1)
    ) {
      throw new RangeError(
        `Cannot serve relay: ${where}.timeoutMs ${timeout} is not a positive integer`,
      );
    }
  }
}

/** Runs auth apps, with a bound on lookups under way. */
export class AuthApps {
  readonly #apps: readonly AuthAppOptions[];
  readonly #maxLookups: number;
  readonly #capable = new Map<AuthAppOptions, Promise<boolean>>();
  #running = 0;

  constructor(apps: readonly AuthAppOptions[], maxLookups: number) {
    this.#apps = apps;
    this.#maxLookups = maxLookups;
  }

  /** Lookups under way. */
  get running(): number {
    return this.#running;
  }

  /** The app covering `domain`, if any. */
  appFor(domain: string): AuthAppOptions | undefined {
    const name = domain.toLowerCase();
    return this.#apps.find((app) => {
      if (app.domain === undefined) return true;
      const suffix = app.domain.toLowerCase().replace(/^\*?\./, "");
      return name === suffix || name.endsWith(`.${suffix}`);
    });
  }

  /**
   * Asks the app covering `domain`; `undefined` when none covers it. Any
   * failure answers `{ reject: "unauthorized" }`.
   */
  async lookup(
    domain: string,
    signal?: AbortSignal,
  ): Promise<AuthAnswer | undefined> {
    const app = this.appFor(domain);
    if (app === undefined) return undefined;
    if (this.#running >= this.#maxLookups || signal?.aborted) {
      return UNAUTHORIZED;
    }
    this.#running++;
    try {
      if (!await this.#capabilities(app, signal)) return UNAUTHORIZED;
      const text = await run(app, ["--auth", domain], signal);
      return parseAuthAnswer(text);
    } catch {
      return UNAUTHORIZED;
    } finally {
      this.#running--;
    }
  }

  #capabilities(app: AuthAppOptions, signal?: AbortSignal): Promise<boolean> {
    let known = this.#capable.get(app);
    if (known === undefined) {
      known = run(app, ["--capabilities"], signal).then(
        (text) => text.split(/[\s,]+/).includes("AUTH"),
        () => false,
      );
      this.#capable.set(app, known);
      // Ask again next time unless the app said it does AUTH.
      known.then((ok) => {
        if (!ok) this.#capable.delete(app);
      });
    }
    return known;
  }
}

/** Parses an app's `--auth` answer; fails closed on anything odd. */
export function parseAuthAnswer(text: string): AuthAnswer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return UNAUTHORIZED;
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return UNAUTHORIZED;
  }
  const o = json as Record<string, unknown>;
  if (
    o.error !== undefined || typeof o.secret !== "string" || o.secret === ""
  ) {
    return UNAUTHORIZED;
  }
  const answer: AuthAnswer = { secret: o.secret };
  const numbers: [string, "quota" | "qDays" | "qConns"][] = [
    ["quota_kb", "quota"],
    ["quota_days", "qDays"],
    ["quota_conns", "qConns"],
  ];
  for (const [field, key] of numbers) {
    const value = o[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      return UNAUTHORIZED;
    }
    if (value >= 0) answer[key] = Math.floor(value); // negative: unlimited
  }
  if (answer.quota === 0) {
    answer.reject = typeof o.reason === "string" && /^[\w-]{1,64}$/.test(
        o.reason,
      )
      ? o.reason
      : "noquota";
  }
  const ips = o["ips_per_sec-ips"];
  const secs = o["ips_per_sec-secs"];
  if (
    typeof ips === "number" && typeof secs === "number" &&
    Number.isSafeInteger(ips) && Number.isSafeInteger(secs) && ips > 0 &&
    secs > 0
  ) {
    answer.ipsPerSec = { ips, seconds: secs };
  }
  return answer;
}

/** Runs the app once; resolves its stdout, rejects on any failure. */
async function run(
  app: AuthAppOptions,
  args: string[],
  deadline?: AbortSignal,
): Promise<string> {
  const timeout = new AbortController();
  const timer = setTimeout(
    () => timeout.abort(),
    app.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  );
  const signal = deadline === undefined
    ? timeout.signal
    : AbortSignal.any([deadline, timeout.signal]);
  try {
    const child = new Deno.Command(app.command, {
      args: [...(app.args ?? []), ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal,
    }).spawn();
    const reader = child.stdout.getReader();
    // A killed app's own children may hold stdout open: stop reading.
    const stop = () => void reader.cancel().catch(() => {});
    signal.addEventListener("abort", stop, { once: true });
    const parts: Uint8Array[] = [];
    let size = 0;
    let tooBig = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.length;
        if (size > MAX_OUTPUT_BYTES) {
          tooBig = true;
          try {
            child.kill();
          } catch { /* already gone */ }
          await reader.cancel();
          break;
        }
        parts.push(value);
      }
    } finally {
      signal.removeEventListener("abort", stop);
    }
    const status = await child.status;
    if (signal.aborted) throw new Error("Auth app timed out");
    if (tooBig) throw new Error("Auth app printed too much");
    if (!status.success) throw new Error(`Auth app exited ${status.code}`);
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const part of parts) {
      bytes.set(part, offset);
      offset += part.length;
    }
    return new TextDecoder().decode(bytes);
  } finally {
    clearTimeout(timer);
  }
}
