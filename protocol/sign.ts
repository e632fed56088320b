// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The PageKite signature primitive (spec §2.1): kite request signatures,
 * relay challenge tokens and dynamic DNS update signatures are all built
 * with {@linkcode signToken} and verified with {@linkcode checkSignature}.
 *
 * @module
 */

/** Seconds in one challenge window; a window is `floor(time / 600)`. */
const WINDOW_SECONDS = 600;
/** Length of the salt prefix of every signature. */
const SALT_LENGTH = 8;
/** Default signature length: the salt plus 28 hex digits of SHA-1. */
const DEFAULT_LENGTH = 36;
/** Longest signature: the salt plus all 40 hex digits of SHA-1. */
const MAX_LENGTH = 48;

/** Options for {@linkcode signToken}. */
export interface SignTokenOptions {
  /**
   * The 8-character salt that becomes the signature's prefix. With a
   * `timestamp`, its first character is replaced by `t`.
   *
   * @default {8 random lower-case hex digits}
   */
  salt?: string;
  /**
   * Unix time in seconds. When given, the signature is bound to the
   * 10-minute window `floor(timestamp / 600)` and starts with `t`.
   *
   * @default {undefined}
   */
  timestamp?: number;
  /**
   * Length of the signature in characters, salt included. Lengths above 48
   * yield 48 (the salt and the full SHA-1).
   *
   * @default {36}
   */
  length?: number;
}

/** Options for {@linkcode checkSignature}. */
export interface CheckSignatureOptions {
  /**
   * The current Unix time in seconds, used for `t`-prefixed (timestamped)
   * signatures.
   *
   * @default {Date.now() / 1000}
   */
  now?: number;
}

/**
 * Signs `payload` with `secret` the way pagekite.py and libpagekite do: the
 * salt, then the first `length - 8` lower-case hex digits of
 * `SHA-1(secret + payload + [window] + salt)` over UTF-8 bytes, where
 * `window` is the lower-case hex of `floor(timestamp / 600)` and is present
 * only when a `timestamp` is given (then the salt starts with `t`).
 *
 * @param secret The shared secret (a kite secret, or the relay's own).
 * @param payload The text to sign, e.g. `http:foo.example.com:<bsalt>:`.
 * @param options The salt, an optional timestamp and the length.
 * @returns The signature, `length` characters long (at most 48).
 * @throws {TypeError} if the salt is not 8 characters long.
 * @throws {RangeError} if `length` is not an integer of at least 8 or the
 * timestamp is not a finite non-negative number.
 *
 * @example Usage
 * ```ts
 * import { signToken } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const sign = await signToken(
 *   "wigglybop",
 *   "http-99:testkite.com:123456789012345678901234567890123456:",
 *   { salt: "00000001" },
 * );
 * assert.equal(sign, "0000000166483a7e7d92338f838f6e166509");
 * ```
 */
export async function signToken(
  secret: string,
  payload: string,
  options: SignTokenOptions = {},
): Promise<string> {
  const { timestamp, length = DEFAULT_LENGTH } = options;
  const salt = options.salt ?? randomSalt();
  if (salt.length !== SALT_LENGTH) {
    throw new TypeError(
      `Cannot sign token: salt must be ${SALT_LENGTH} characters, got ${salt.length}`,
    );
  }
  if (!Number.isInteger(length) || length < SALT_LENGTH) {
    throw new RangeError(
      `Cannot sign token: length must be an integer of at least ${SALT_LENGTH}, got ${length}`,
    );
  }
  let prefix = salt;
  let window = "";
  if (timestamp !== undefined) {
    if (!Number.isFinite(timestamp) || timestamp < 0) {
      throw new RangeError(
        `Cannot sign token: timestamp must be a finite non-negative number of seconds, got ${timestamp}`,
      );
    }
    prefix = "t" + salt.slice(1);
    window = Math.floor(timestamp / WINDOW_SECONDS).toString(16);
  }
  const hex = await sha1Hex(secret + payload + window + prefix);
  return prefix + hex.slice(0, Math.min(length, MAX_LENGTH) - SALT_LENGTH);
}

/**
 * Checks a signature made by {@linkcode signToken}: recomputes it with the
 * signature's own 8-character salt and length and compares the two in
 * constant time. A `t`-prefixed (timestamped) signature is accepted in the
 * window of `now` and in the one before it, so it lives 10 to 20 minutes.
 *
 * Signatures shorter than 36 or longer than 48 characters never verify: a
 * short one would be cheap to guess.
 *
 * @param sign The signature to check (36 characters for kites, 48 for DDNS).
 * @param secret The shared secret.
 * @param payload The text that was signed.
 * @param options The current time for timestamped signatures.
 * @returns Whether the signature is valid.
 *
 * @example Usage
 * ```ts
 * import { checkSignature } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const payload = "http:foo.example.com:893f4f1d98e17a28ae3d6fb3f2cd83765514";
 * const token = "t1234567c02e2d482fb39e2aba144ed8a973";
 * assert.ok(await checkSignature(token, "GLOBALSECRET", payload, { now: 1700000000 }));
 * assert.ok(!await checkSignature(token, "GLOBALSECRET", payload, { now: 1700001200 }));
 * ```
 */
export async function checkSignature(
  sign: string,
  secret: string,
  payload: string,
  options: CheckSignatureOptions = {},
): Promise<boolean> {
  if (sign.length < DEFAULT_LENGTH || sign.length > MAX_LENGTH) return false;
  const salt = sign.slice(0, SALT_LENGTH);
  const length = sign.length;
  if (sign[0] !== "t") {
    return timingSafeEqual(
      await signToken(secret, payload, { salt, length }),
      sign,
    );
  }
  const now = options.now ?? Date.now() / 1000;
  let valid = false;
  for (const timestamp of [now, now - WINDOW_SECONDS]) {
    if (!Number.isFinite(timestamp) || timestamp < 0) continue;
    const expected = await signToken(secret, payload, {
      salt,
      timestamp,
      length,
    });
    // Both windows are always checked, so timing does not tell which matched.
    valid = timingSafeEqual(expected, sign) || valid;
  }
  return valid;
}

/**
 * Compares two strings or byte arrays in time that depends only on their
 * lengths, not on where they differ. Strings are compared as UTF-8 bytes.
 *
 * @param a The first value.
 * @param b The second value.
 * @returns Whether the two hold the same bytes.
 *
 * @example Usage
 * ```ts
 * import { timingSafeEqual } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.ok(timingSafeEqual("abc", new Uint8Array([0x61, 0x62, 0x63])));
 * assert.ok(!timingSafeEqual("abc", "abd"));
 * ```
 */
export function timingSafeEqual(
  a: string | Uint8Array,
  b: string | Uint8Array,
): boolean {
  const x = typeof a === "string" ? new TextEncoder().encode(a) : a;
  const y = typeof b === "string" ? new TextEncoder().encode(b) : b;
  const length = Math.max(x.length, y.length);
  let diff = x.length ^ y.length;
  for (let i = 0; i < length; i++) {
    diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  }
  return diff === 0;
}

async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(text),
  );
  return toHex(new Uint8Array(digest));
}

function randomSalt(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(SALT_LENGTH / 2)));
}

function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}
