// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Kitewire: PageKite for Deno. A relay (front-end) accepts HTTP, HTTPS and
 * raw TCP for named kites and forwards each connection over one multiplexed
 * tunnel to a connector (back-end) behind NAT. This entry point re-exports
 * every module; import `@kitewire/pagekite/protocol` (and, as they land,
 * `./relay`, `./connector`, …) to take only what you need.
 *
 * ```ts
 * import { signToken } from "@kitewire/pagekite";
 * import assert from "node:assert/strict";
 *
 * const sign = await signToken("wigglybop", "http-99:testkite.com:123456789012345678901234567890123456:", { salt: "00000001" });
 * assert.equal(sign, "0000000166483a7e7d92338f838f6e166509");
 * ```
 *
 * @module
 */

export * from "./protocol/mod.ts";
export * from "./relay/mod.ts";
export * from "./connector/mod.ts";
