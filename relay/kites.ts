// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Kite names, the relay's static kite secrets, and the wildcard-aware
 * lookup both use (spec §2.3 step 4, §4.2, §7.3).
 *
 * @module
 */

import { kiteKey, wildcardNames } from "../protocol/mod.ts";

export { kiteKey, wildcardNames };

/** A kite the relay knows the secret of (pagekite.py `--domain`). */
export interface StaticKite {
  /**
   * The domain: a name, `*.parent` for every name under `parent`, or
   * `unknown` for the catch-all kite.
   */
  domain: string;
  /** The shared secret connectors sign with. */
  secret: string;
  /**
   * Protocols this secret is good for, each `proto` or `proto-port`
   * (`http`, `raw-22`); absent means every protocol.
   */
  protos?: string[];
  /**
   * Client-IP rate limit of this kite and the names under it (pagekite.py
   * `--ratelimit_ips=domain:N/S`); a tunnel enforces the strictest of its
   * kites'.
   */
  ipsPerSec?: { ips: number; seconds: number };
}

/** Looks up kite secrets: exact names first, then wildcards. */
export class KiteSecrets {
  readonly #byDomain = new Map<string, StaticKite[]>();

  constructor(kites: readonly StaticKite[]) {
    for (const kite of kites) {
      if (kite.domain === "" || kite.secret === "") {
        throw new TypeError(
          `Cannot configure kite ${
            JSON.stringify(kite.domain)
          }: domain and secret must not be empty`,
        );
      }
      const domain = kite.domain.toLowerCase();
      const list = this.#byDomain.get(domain) ?? [];
      list.push(kite);
      this.#byDomain.set(domain, list);
    }
  }

  /**
   * The secret for a kite request, or `undefined` when no static kite
   * covers it: `proto-port` entries first, then `proto`, each with the
   * wildcard fallback.
   */
  find(proto: string, domain: string, port?: number): string | undefined {
    const wanted = port === undefined ? [proto] : [`${proto}-${port}`, proto];
    for (const p of wanted) {
      for (const name of wildcardNames(domain.toLowerCase())) {
        for (const kite of this.#byDomain.get(name) ?? []) {
          if (
            kite.protos === undefined ||
            kite.protos.some((listed) => listed.toLowerCase() === p)
          ) {
            return kite.secret;
          }
        }
      }
    }
    return undefined;
  }
}
