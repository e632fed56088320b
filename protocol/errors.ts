// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Typed errors raised by the PageKite protocol codecs.
 *
 * @module
 */

/** Options for {@linkcode ProtocolError} and {@linkcode ProtocolLimitError}. */
export interface ProtocolErrorOptions extends ErrorOptions {
  /**
   * How many bytes of the input had been consumed when the problem was found.
   *
   * @default {0}
   */
  offset?: number;
}

/**
 * Malformed PageKite input: a size line that is not hex, a chunk header that
 * is not `Name: value`, a handshake that is not a tunnel request, and so on.
 *
 * @example Usage
 * ```ts
 * import { ProtocolError } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const error = new ProtocolError("Cannot decode chunk: size line is not hex", { offset: 3 });
 * assert.equal(error.offset, 3);
 * assert.ok(error instanceof SyntaxError);
 * ```
 */
export class ProtocolError extends SyntaxError {
  /** Bytes of the input consumed when the problem was found. */
  readonly offset: number;

  /**
   * Constructs a new instance.
   *
   * @param message What was wrong, phrased "Cannot <action>: <state>".
   * @param options The offset and an optional cause.
   */
  constructor(message: string, options: ProtocolErrorOptions = {}) {
    super(message, options);
    this.name = "ProtocolError";
    this.offset = options.offset ?? 0;
  }
}

/**
 * PageKite input that breaks a configured limit: a chunk longer than
 * `maxChunkSize`, too many headers, a header block that never ends.
 *
 * @example Usage
 * ```ts
 * import { ProtocolLimitError } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const error = new ProtocolLimitError("Cannot decode chunk: size 2147483648 exceeds maxChunkSize 1048576", { offset: 0 });
 * assert.ok(error instanceof RangeError);
 * ```
 */
export class ProtocolLimitError extends RangeError {
  /** Bytes of the input consumed when the limit was crossed. */
  readonly offset: number;

  /**
   * Constructs a new instance.
   *
   * @param message Which limit was crossed and by how much.
   * @param options The offset and an optional cause.
   */
  constructor(message: string, options: ProtocolErrorOptions = {}) {
    super(message, options);
    this.name = "ProtocolLimitError";
    this.offset = options.offset ?? 0;
  }
}
