// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The relay's challenge tokens (spec §2.3): timestamped signatures over a
 * kite name with a per-relay secret, valid in their 10-minute window and
 * the next, and accepted once.
 *
 * @module
 */

import { checkSignature, signToken } from "../protocol/mod.ts";

/** A token lives at most two 10-minute windows. */
const TOKEN_LIFETIME_MS = 20 * 60 * 1000;

/** Issues and redeems challenge tokens. */
export class Challenges {
  readonly #secret: string;
  readonly #now: () => number;
  /** Redeemed tokens and when they expire, so a replay is refused. */
  readonly #used = new Map<string, number>();

  /**
   * @param now Clock in milliseconds (tests inject their own).
   * @param secret The relay secret; random when absent.
   */
  constructor(now: () => number, secret?: string) {
    this.#now = now;
    this.#secret = secret ??
      crypto.getRandomValues(new Uint8Array(32)).reduce(
        (hex, b) => hex + b.toString(16).padStart(2, "0"),
        "",
      );
  }

  /** A fresh token for `name` (`proto[-port]:domain:bsalt`). */
  issue(name: string): Promise<string> {
    return signToken(this.#secret, name, {
      timestamp: this.#now() / 1000,
    });
  }

  /**
   * Redeems a token: true once for a token this relay issued for `name`
   * within the last two windows, false for anything else, including the
   * second use of the same token.
   */
  async redeem(name: string, token: string): Promise<boolean> {
    if (token === "" || token[0] !== "t") return false;
    this.#expire();
    if (this.#used.has(token)) return false;
    const valid = await checkSignature(token, this.#secret, name, {
      now: this.#now() / 1000,
    });
    if (!valid) return false;
    // Checked again: another redemption may have raced the await.
    if (this.#used.has(token)) return false;
    this.#used.set(token, this.#now() + TOKEN_LIFETIME_MS);
    return true;
  }

  /** How many redeemed tokens are remembered. */
  get remembered(): number {
    return this.#used.size;
  }

  #expire(): void {
    const now = this.#now();
    for (const [token, expires] of this.#used) {
      if (expires > now) break; // insertion order is expiry order
      this.#used.delete(token);
    }
  }
}
