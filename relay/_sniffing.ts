// Copyright 2026 the Kitewire authors. MIT license.
// Reading a new connection (plain, or the cleartext of terminated TLS)
// until its first bytes say what it is.

import {
  ProtocolError,
  ProtocolLimitError,
  sniffConnection,
  type Sniffed,
} from "../protocol/mod.ts";
import type { RelayContext } from "./_context.ts";
import { badRequestPage } from "./pages.ts";

/**
 * Reads until the first bytes say what the connection is, within
 * `maxRequestHeadBytes`. Malformed or unrecognised HTTP gets a 400 and
 * `null`; so does a connection that ends first.
 */
export async function sniffIncoming(
  ctx: RelayContext,
  conn: Deno.Conn,
): Promise<{ what: Sniffed; bytes: Uint8Array } | null> {
  const max = ctx.options.maxRequestHeadBytes;
  let bytes: Uint8Array = new Uint8Array(0);
  const buffer = new Uint8Array(max);
  for (;;) {
    const n = await conn.read(buffer.subarray(0, max - bytes.length + 1));
    if (n === null) return null;
    const grown = new Uint8Array(bytes.length + n);
    grown.set(bytes);
    grown.set(buffer.subarray(0, n), bytes.length);
    bytes = grown;
    let result;
    try {
      result = sniffConnection(bytes, {
        maxHeadBytes: max,
        maxHeaders: ctx.options.maxRequestHeaders,
      });
    } catch (error) {
      if (
        error instanceof ProtocolError || error instanceof ProtocolLimitError
      ) {
        await ctx.answer(conn, badRequestPage(error.message));
        return null;
      }
      throw error;
    }
    if (result.status === "ok") return { what: result.value, bytes };
    if (result.status === "unrecognized") {
      const text = String.fromCharCode(...bytes.subarray(0, 8));
      if (/^[A-Z]+ /.test(text)) {
        await ctx.answer(conn, badRequestPage("Unsupported request"));
      }
      return null;
    }
  }
}
