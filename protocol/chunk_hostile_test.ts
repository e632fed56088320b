// Copyright 2026 the Kitewire authors. MIT license.
// Hostile inputs S1–S3 of the reliability plan (§4.4): each is rejected with
// a typed error, early, and without the codec holding more than 16 MiB.
import assert from "node:assert/strict";
import type { Chunk, LostChunk } from "./chunk.ts";
import { ChunkDecoder } from "./chunk_decoder.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";
import { latin1Bytes } from "../tests/_captures.ts";
import { HOSTILE_MEMORY_BUDGET, memoryGrowth } from "../tests/_memory.ts";
import { zlibBomb } from "../tests/_bomb.ts";

/** Pushes `pieces` until the decoder throws; returns the error and bytes fed. */
function feedUntilError(
  pieces: Iterable<Uint8Array>,
): { error: unknown; fed: number; chunks: (Chunk | LostChunk)[] } {
  const decoder = new ChunkDecoder();
  const chunks: (Chunk | LostChunk)[] = [];
  let fed = 0;
  try {
    for (const piece of pieces) {
      decoder.push(piece);
      fed += piece.length;
      for (let c; (c = decoder.next()) !== null;) chunks.push(c);
    }
  } catch (error) {
    return { error, fed, chunks };
  }
  return { error: null, fed, chunks };
}

function* repeat(piece: Uint8Array, times: number): Iterable<Uint8Array> {
  for (let i = 0; i < times; i++) yield piece;
}

function assertHostile(
  name: string,
  pieces: () => Iterable<Uint8Array>,
  check: (error: unknown, fed: number) => void,
): void {
  feedUntilError(pieces()); // warm up the code paths before measuring
  let result: ReturnType<typeof feedUntilError> | undefined;
  const growth = memoryGrowth(() => {
    result = feedUntilError(pieces());
  });
  check(result!.error, result!.fed);
  assert.ok(
    growth.rss < HOSTILE_MEMORY_BUDGET &&
      growth.retained < HOSTILE_MEMORY_BUDGET,
    `${name}: memory grew by rss ${growth.rss}, retained ${growth.retained}`,
  );
}

Deno.test("ChunkDecoder rejects a 12-hex-digit length at the ninth digit", () => {
  assertHostile(
    "FFFFFFFFFFFF",
    () => [latin1Bytes("FFFFFFFFFFFF\r\n")],
    (error) => {
      assert.ok(error instanceof ProtocolLimitError);
      assert.equal(
        error.message,
        "Cannot decode chunk: size has more than 8 hex digits",
      );
      assert.equal(error.offset, 8);
    },
  );
  // Trickled, it is refused at the ninth byte.
  const { error, fed } = feedUntilError(repeat(latin1Bytes("F"), 1 << 20));
  assert.ok(error instanceof ProtocolLimitError);
  assert.equal(fed, 9);
});

Deno.test("ChunkDecoder rejects negative and non-hex lengths", () => {
  for (const wire of ["-1\r\n", "0x10\r\n", "g\r\n", "\r\n", "1.5\r\n"]) {
    const { error } = feedUntilError([latin1Bytes(wire)]);
    assert.ok(
      error instanceof ProtocolError,
      `${JSON.stringify(wire)}: ${error}`,
    );
    assert.match(error.message, /^Cannot decode chunk: /);
  }
});

Deno.test("ChunkDecoder rejects a 1 MiB header line without CRLF after 8 KiB", () => {
  const line = new Uint8Array(1 << 20).fill(0x58); // "XXXX…"
  assertHostile(
    "1 MiB header line",
    function* () {
      yield latin1Bytes("100000\r\n"); // a 1 MiB frame: allowed
      for (let at = 0; at < line.length; at += 4096) {
        yield line.subarray(at, at + 4096);
      }
    },
    (error, fed) => {
      assert.ok(error instanceof ProtocolLimitError, String(error));
      assert.equal(
        error.message,
        "Cannot decode chunk: header block exceeds maxHeaderBytes 8192",
      );
      assert.ok(fed <= 8 + 8192 + 4096, `read ${fed} bytes before refusing`);
    },
  );
  // As a size line, the same bytes fail at once.
  const { error, fed } = feedUntilError([line]);
  assert.ok(error instanceof ProtocolError);
  assert.equal(fed, line.length);
});

Deno.test("ChunkDecoder rejects 10,000 chunk headers", () => {
  const headers = "X-Filler: 1\r\n".repeat(10_000) + "\r\n";
  const payload = "SID: 1\r\n" + headers;
  assertHostile(
    "10,000 headers",
    () => [latin1Bytes(payload.length.toString(16) + "\r\n" + payload)],
    (error) => {
      assert.ok(error instanceof ProtocolLimitError, String(error));
      assert.match(error.message, /exceeds maxHeaderBytes 8192/);
    },
  );
  // Short header lines hit the count limit before the byte limit.
  const short = "SID: 1\r\n" + "A: 1\r\n".repeat(1000) + "\r\n";
  const { error } = feedUntilError([
    latin1Bytes(short.length.toString(16) + "\r\n" + short),
  ]);
  assert.ok(error instanceof ProtocolLimitError);
  assert.equal(
    error.message,
    "Cannot decode chunk: more than maxHeaders 64 header lines",
  );
});

Deno.test("ChunkDecoder rejects a declared 2 GiB frame before reading it", () => {
  for (const line of ["80000000\r\n", "10Z80000000\r\n", "80000000Z10\r\n"]) {
    assertHostile(
      line,
      function* () {
        yield latin1Bytes(line);
        yield* repeat(new Uint8Array(65536), 16);
      },
      (error, fed) => {
        assert.ok(error instanceof ProtocolLimitError, String(error));
        assert.equal(
          error.message,
          "Cannot decode chunk: size 2147483648 exceeds maxChunkSize 1048576",
        );
        assert.equal(fed, line.length);
      },
    );
  }
});

Deno.test("ChunkDecoder stops a frame declaring 1 KiB that inflates to 1 GiB", () => {
  const bomb = zlibBomb(1 << 30);
  assert.ok(bomb.length < 1 << 20, "the bomb fits in one frame");
  const wire = new Uint8Array([
    ...latin1Bytes(`400Z${bomb.length.toString(16)}\r\n`),
    ...bomb,
  ]);
  const started = performance.now();
  assertHostile("1 GiB bomb declaring 1 KiB", () => [wire], (error) => {
    assert.equal(error, null);
  });
  const { chunks } = feedUntilError([wire]);
  const [lost] = chunks as LostChunk[];
  assert.equal(chunks.length, 1);
  assert.equal(lost!.lost, true);
  assert.equal(lost!.sendZrst, true);
  assert.match(lost!.reason, /inflated past the declared size 1024$/);
  assert.ok(performance.now() - started < 5000, "inflation was not cut short");
});

Deno.test("ChunkDecoder rejects a frame declaring 1 GiB of inflated data", () => {
  const bomb = zlibBomb(1 << 30);
  const { error } = feedUntilError([
    latin1Bytes(`40000000Z${bomb.length.toString(16)}\r\n`),
    bomb,
  ]);
  assert.ok(error instanceof ProtocolLimitError);
  assert.equal(
    error.message,
    "Cannot decode chunk: size 1073741824 exceeds maxChunkSize 1048576",
  );
});

Deno.test("ChunkDecoder stops a 1 MiB-declared bomb one byte past the limit", () => {
  const bomb = zlibBomb(1 << 30);
  const wire = new Uint8Array([
    ...latin1Bytes(`100000Z${bomb.length.toString(16)}\r\n`),
    ...bomb,
  ]);
  assertHostile("1 GiB bomb declaring 1 MiB", () => [wire], (error) => {
    assert.equal(error, null);
  });
  const { chunks } = feedUntilError([wire]);
  assert.match(
    (chunks[0] as LostChunk).reason,
    /inflated past the declared size 1048576$/,
  );
});
