// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The PageKite wire protocol, pure and runtime-agnostic: the chunk codec
 * with ZChunks compression, the tunnel handshake, challenge/response
 * signatures, and the sniffers that classify a public connection. Nothing
 * here does I/O or keeps time; relays and connectors drive it.
 *
 * ```ts
 * import { ChunkDecoder, ChunkEncoder } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const encoder = new ChunkEncoder({ compress: true });
 * const decoder = new ChunkDecoder();
 * decoder.push(encoder.encode({ sid: 1, body: new Uint8Array(100_000) }));
 * let received = 0;
 * for (let chunk; (chunk = decoder.next()) !== null;) {
 *   if (!("lost" in chunk)) received += chunk.body.length;
 * }
 * assert.equal(received, 100_000);
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./chunk.ts";
export * from "./chunk_decoder.ts";
export * from "./chunk_encoder.ts";
export * from "./sign.ts";
export * from "./kite.ts";
export * from "./kite_names.ts";
export * from "./handshake.ts";
export * from "./sniff.ts";
export * from "./sniff_http.ts";
export * from "./sniff_tls.ts";
export * from "./sniff_stream.ts";
