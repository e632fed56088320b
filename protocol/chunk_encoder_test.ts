// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import type { Chunk } from "./chunk.ts";
import { ChunkDecoder } from "./chunk_decoder.ts";
import { ChunkEncoder } from "./chunk_encoder.ts";

const latin1 = new TextDecoder("latin1");

/** The size lines of the frames in `wire`. */
function sizeLines(wire: Uint8Array): string[] {
  const decoder = new ChunkDecoder();
  decoder.push(wire);
  const lines: string[] = [];
  let at = 0;
  while (decoder.next() !== null) {
    lines.push(latin1.decode(wire.subarray(at, wire.indexOf(13, at))));
    at = decoder.offset;
  }
  return lines;
}

/** Text that deflate shrinks by about half. */
function wordy(bytes: number, seed: number): Uint8Array {
  let text = "";
  for (let i = 0; text.length < bytes; i++) {
    text += ((i + seed) * 7919 * seed % 100003).toString(36) + " ";
  }
  return new TextEncoder().encode(text.slice(0, bytes));
}

Deno.test("ChunkEncoder refuses QDays, QConns and values that would break the framing", () => {
  const encoder = new ChunkEncoder();
  const body = new Uint8Array();
  assert.throws(
    () => encoder.encode({ noop: true, qdays: 3, body }),
    /^TypeError: Cannot encode chunk: QDays and QConns are never sent in chunks/,
  );
  assert.throws(
    () => encoder.encode({ noop: true, qconns: 3, body }),
    TypeError,
  );
  assert.throws(
    () => encoder.encode({ sid: 1, host: "a\r\nSID: 2", body }),
    /^TypeError: Cannot encode chunk: Host value "a\\r\\nSID: 2" contains CR or LF$/,
  );
  assert.throws(
    () => encoder.encode({ body } as Chunk),
    /^TypeError: Cannot encode chunk: a chunk needs 'sid' or 'noop'$/,
  );
  assert.throws(() => encoder.encode({ sid: 1e8, body }), TypeError);
  assert.throws(() => encoder.encode({ sid: 1, port: 70000, body }), TypeError);
  assert.throws(
    () => encoder.encode({ sid: 1, headers: [["Bad Name", "x"]], body }),
    TypeError,
  );
});

Deno.test("ChunkEncoder splits data into near-equal frames of at most maxFrameBody", () => {
  const encoder = new ChunkEncoder();
  const wire = encoder.encode({
    sid: 3,
    proto: "raw",
    body: new Uint8Array(16385),
  });
  assert.deepEqual(sizeLines(wire), [
    (22 + 8192).toString(16), // "SID: 3\r\nProto: raw\r\n\r\n" + 8192 bytes
    (10 + 8193).toString(16), // "SID: 3\r\n\r\n" + 8193 bytes
  ]);
  const small = new ChunkEncoder({ maxFrameBody: 100 });
  assert.equal(
    sizeLines(small.encode({ sid: 1, body: new Uint8Array(1000) })).length,
    10,
  );
});

Deno.test("ChunkEncoder does not split control chunks", () => {
  const encoder = new ChunkEncoder({ maxFrameBody: 10 });
  assert.throws(
    () => encoder.encode({ sid: 1, eof: "R", body: new Uint8Array(11) }),
    /^RangeError: Cannot encode chunk: a control chunk body of 11 bytes exceeds maxFrameBody 10$/,
  );
  assert.throws(
    () => encoder.encode({ noop: true, body: new Uint8Array(11) }),
    RangeError,
  );
});

Deno.test("ChunkEncoder compresses only data frames of 512 bytes or more, and only when asked", () => {
  const body = wordy(4000, 1);
  assert.match(
    sizeLines(new ChunkEncoder().encode({ sid: 1, body }))[0]!,
    /^[0-9a-f]+$/,
  );
  const encoder = new ChunkEncoder({ compress: true });
  assert.match(
    sizeLines(encoder.encode({ sid: 1, body }))[0]!,
    /^[0-9a-f]+Z[0-9a-f]+$/,
  );
  // Control frames and short data stay plain.
  assert.match(
    sizeLines(encoder.encode({ sid: 1, eof: "R", body: wordy(600, 2) }))[0]!,
    /^[0-9a-f]+$/,
  );
  assert.match(
    sizeLines(encoder.encode({ sid: 1, body: wordy(400, 3) }))[0]!,
    /^[0-9a-f]+$/,
  );
});

Deno.test("ChunkEncoder sends too-compressible frames plain and restarts zlib with R", () => {
  const encoder = new ChunkEncoder({ compress: true });
  const decoder = new ChunkDecoder();
  const zeros = encoder.encode({ sid: 1, body: new Uint8Array(16384) });
  // 16 KiB of zeros would deflate to a few dozen bytes: too few for pacing.
  assert.deepEqual(sizeLines(zeros), [(10 + 16384).toString(16)]);
  // The backoff skips one attempt, then compression resumes on a fresh stream.
  encoder.encode({ sid: 1, body: wordy(4000, 4) });
  const next = encoder.encode({ sid: 1, body: wordy(4000, 5) });
  assert.match(sizeLines(next)[0]!, /^[0-9a-f]+Z[0-9a-f]+R$/);
  decoder.push(zeros);
  assert.ok(decoder.next() !== null);
});

Deno.test("ChunkEncoder marks the first compressed frame after resetCompression() with R", () => {
  const encoder = new ChunkEncoder({ compress: true });
  assert.match(
    sizeLines(encoder.encode({ sid: 1, body: wordy(4000, 6) }))[0]!,
    /Z[0-9a-f]+$/,
  );
  encoder.resetCompression();
  const wire = encoder.encode({ sid: 1, body: wordy(4000, 7) });
  assert.match(sizeLines(wire)[0]!, /Z[0-9a-f]+R$/);
  assert.equal(
    wire[latin1.decode(wire).indexOf("\r\n") + 2],
    0x78,
    "a fresh zlib header",
  );
  assert.match(
    sizeLines(encoder.encode({ sid: 1, body: wordy(4000, 8) }))[0]!,
    /Z[0-9a-f]+$/,
  );
});

Deno.test("ChunkEncoder refuses bad options", () => {
  assert.throws(() => new ChunkEncoder({ compressionLevel: 0 }), RangeError);
  assert.throws(() => new ChunkEncoder({ maxFrameBody: 0 }), RangeError);
  assert.throws(
    () => new ChunkEncoder({ minCompressedFrameBytes: -1 }),
    /minCompressedFrameBytes -1 is not a non-negative integer/,
  );
});
