// Copyright 2026 the Kitewire authors. MIT license.
// Property tests of the chunk codec (fast-check, fixed seed).
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Chunk, LostChunk } from "./chunk.ts";
import { ChunkDecoder } from "./chunk_decoder.ts";
import { ChunkEncoder } from "./chunk_encoder.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";
import { HOSTILE_MEMORY_BUDGET, memoryGrowth } from "../tests/_memory.ts";

const RUNS = { seed: 42, numRuns: 1000 };

/** A header value as the decoder returns it: no CR/LF, no outer spaces. */
const value = fc.string({ unit: "grapheme-ascii", maxLength: 40 })
  .map((s) => s.replace(/[\r\n]/g, "").trim());
const token = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,30}$/);
const port = fc.integer({ min: 0, max: 65535 });
const count = fc.integer({ min: 0, max: 2 ** 40 });
const extraName = fc.stringMatching(/^X-[A-Za-z0-9-]{1,20}$/);

const fields = {
  proto: token,
  host: token,
  port,
  remoteIp: fc.oneof(fc.ipV4(), fc.ipV6()),
  remotePort: port,
  remoteTls: fc.constant(true),
  eof: fc.constantFrom("R" as const, "W" as const, "RW" as const),
  ping: value,
  pong: value,
  skb: count,
  spd: count,
  zrst: fc.constant(true),
  quota: fc.integer({ min: -1000, max: 2 ** 40 }),
  headers: fc.array(fc.tuple(extraName, value), { minLength: 1, maxLength: 5 }),
};

/** Bodies: random, or highly compressible. */
function bodyOf(max: number): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: max }),
    fc.tuple(fc.integer({ min: 0, max }), fc.integer({ min: 0, max: 255 }))
      .map(([n, b]) => new Uint8Array(n).fill(b)),
    fc.tuple(fc.integer({ min: 0, max: max / 8 }), value).map(([n, s]) =>
      new TextEncoder().encode(s.repeat(n).slice(0, max))
    ),
  );
}

/** Any chunk that fits one frame. */
const anyChunk: fc.Arbitrary<Chunk> = fc.oneof(
  // A stream chunk: data, EOF, or the opening chunk with routing headers.
  fc.record(
    {
      sid: fc.integer({ min: 0, max: 99_999_999 }),
      ...fields,
      body: bodyOf(16384),
    },
    { requiredKeys: ["sid", "body"], noNullPrototype: true },
  ),
  // A control chunk.
  fc.record(
    {
      noop: fc.constant(true),
      sid: fc.integer({ min: 0, max: 99_999_999 }),
      ...fields,
      body: bodyOf(64),
    },
    { requiredKeys: ["noop", "body"], noNullPrototype: true },
  ),
);

function drain(decoder: ChunkDecoder): (Chunk | LostChunk)[] {
  const out: (Chunk | LostChunk)[] = [];
  for (let c; (c = decoder.next()) !== null;) {
    out.push("lost" in c ? c : { ...c, body: c.body.slice() });
  }
  return out;
}

/** Decodes `wire` fed in pieces cut at `cuts` (fractions of its length). */
function decodeCut(wire: Uint8Array, cuts: number[]): (Chunk | LostChunk)[] {
  const decoder = new ChunkDecoder();
  const out: (Chunk | LostChunk)[] = [];
  let from = 0;
  for (
    const cut of [...cuts.map((f) => Math.floor(f * wire.length)), wire.length]
      .sort((a, b) => a - b)
  ) {
    decoder.push(wire.subarray(from, cut));
    out.push(...drain(decoder));
    from = cut;
  }
  assert.equal(decoder.buffered, 0);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), {
  maxLength: 6,
});

Deno.test("ChunkEncoder and ChunkDecoder round-trip every chunk kind", () => {
  fc.assert(
    fc.property(anyChunk, cuts, (chunk, at) => {
      const wire = new ChunkEncoder().encode(chunk);
      assert.deepEqual(decodeCut(wire, at), [chunk]);
    }),
    RUNS,
  );
});

Deno.test("ChunkEncoder and ChunkDecoder round-trip compressed streams of frames", () => {
  fc.assert(
    fc.property(
      fc.array(anyChunk, { minLength: 1, maxLength: 12 }),
      fc.integer({ min: 1, max: 9 }),
      fc.array(fc.integer({ min: 0, max: 11 }), { maxLength: 2 }),
      cuts,
      (chunks, level, resets, at) => {
        const encoder = new ChunkEncoder({
          compress: true,
          compressionLevel: level,
        });
        const frames = chunks.map((chunk, i) => {
          // The peer sent ZRST: the next compressed frame restarts zlib.
          if (resets.includes(i)) encoder.resetCompression();
          return encoder.encode(chunk);
        });
        assert.deepEqual(decodeCut(concat(frames), at), chunks);
      },
    ),
    RUNS,
  );
});

Deno.test("ChunkEncoder splits long data into frames of at most 16 KiB that decode back", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1000 }),
      bodyOf(200_000),
      fc.boolean(),
      (sid, body, compress) => {
        const wire = new ChunkEncoder({ compress }).encode({
          sid,
          proto: "raw",
          body,
        });
        const chunks = decodeCut(wire, []) as Chunk[];
        assert.equal(
          chunks.length,
          Math.max(1, Math.ceil(body.length / 16384)),
        );
        assert.equal(chunks[0]!.proto, "raw");
        for (const c of chunks) {
          assert.equal(c.sid, sid);
          assert.ok(c.body.length <= 16384);
        }
        assert.deepEqual(concat(chunks.map((c) => c.body)), body);
      },
    ),
    { seed: 42, numRuns: 200 },
  );
});

Deno.test("ChunkDecoder throws nothing but typed errors on arbitrary bytes", () => {
  const valid = fc.array(anyChunk, { maxLength: 4 }).map((chunks) => {
    const encoder = new ChunkEncoder({ compress: true });
    return concat(chunks.map((c) => encoder.encode(c)));
  });
  // Random bytes, and valid streams with random bytes overwritten.
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 2048 }),
    fc.tuple(
      valid,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
    )
      .map(([wire, edits]) => {
        const out = wire.slice();
        for (const [at, byte] of edits) {
          if (out.length > 0) out[at % out.length] = byte;
        }
        return out;
      }),
  );
  fc.assert(
    fc.property(input, cuts, (wire, at) => {
      const error = decodeOrError(wire, at);
      if (error !== null) {
        assert.match(error.message, /^Cannot decode chunk: /);
        assert.ok(error.offset >= 0 && error.offset <= wire.length);
      }
    }),
    { seed: 42, numRuns: 10_000 },
  );
});

/** Decodes, returning the typed error if any; rethrows anything else. */
function decodeOrError(
  wire: Uint8Array,
  at: number[],
): ProtocolError | ProtocolLimitError | null {
  try {
    const decoder = new ChunkDecoder();
    let from = 0;
    for (
      const cut of [...at.map((f) => Math.floor(f * wire.length)), wire.length]
        .sort((a, b) => a - b)
    ) {
      decoder.push(wire.subarray(from, cut));
      drain(decoder);
      from = cut;
    }
    return null;
  } catch (error) {
    if (error instanceof ProtocolError || error instanceof ProtocolLimitError) {
      return error;
    }
    throw error;
  }
}

Deno.test("ChunkDecoder holds no memory after 10,000 random and mutated streams", () => {
  // A fixed-seed generator outside fast-check, whose own bookkeeping would
  // otherwise count as growth.
  let state = 42;
  const random = (n: number): number => {
    state = (state * 1103515245 + 12345) >>> 0;
    return state % n;
  };
  const encoder = new ChunkEncoder({ compress: true });
  const template = concat([
    encoder.encode({
      sid: 1,
      proto: "http",
      host: "a.example.com",
      body: new Uint8Array(3000).fill(65),
    }),
    encoder.encode({ noop: true, sid: 1, skb: 3, body: new Uint8Array() }),
    encoder.encode({ sid: 1, eof: "RW", body: new Uint8Array() }),
  ]);
  let typed = 0;
  const growth = memoryGrowth(() => {
    for (let run = 0; run < 10_000; run++) {
      const wire = run % 2 === 0
        ? Uint8Array.from({ length: random(4096) }, () => random(256))
        : template.slice();
      if (run % 2 === 1) {
        for (let edits = 1 + random(8); edits > 0; edits--) {
          wire[random(wire.length)] = random(256);
        }
      }
      if (
        decodeOrError(wire, [random(100) / 100, random(100) / 100]) !== null
      ) typed++;
    }
  });
  assert.ok(typed > 3000, `only ${typed} inputs were rejected`);
  assert.ok(
    growth.retained < HOSTILE_MEMORY_BUDGET,
    `retained ${growth.retained}`,
  );
});

/** pagekite.py reads at most 16256 × 3.1 bytes from a tunnel at once. */
const PY_READ_BYTES = Math.floor(16256 * 3.1);

Deno.test("ChunkEncoder keeps any 50 KB of a paced stream under 100 frames", () => {
  const payload = fc.oneof(
    fc.uint8Array({ minLength: 512, maxLength: 20_000 }),
    fc.tuple(
      fc.integer({ min: 512, max: 20_000 }),
      fc.integer({ min: 0, max: 255 }),
    )
      .map(([n, b]) => new Uint8Array(n).fill(b)),
    fc.tuple(
      fc.integer({ min: 512, max: 20_000 }),
      fc.string({ minLength: 1, maxLength: 8 }),
    )
      .map(([n, s]) => new TextEncoder().encode(s.repeat(n).slice(0, n))),
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 1, max: 8 }), payload), {
        minLength: 1,
        maxLength: 20,
      }),
      fc.integer({ min: 1, max: 9 }),
      (writes, level) => {
        const encoder = new ChunkEncoder({
          compress: true,
          compressionLevel: level,
        });
        const wire = concat(
          writes.map(([sid, body]) => encoder.encode({ sid, body })),
        );
        // Frame end offsets, from the decoder.
        const decoder = new ChunkDecoder();
        decoder.push(wire);
        const ends: number[] = [];
        for (let c; (c = decoder.next()) !== null;) {
          assert.ok(!("lost" in c));
          ends.push(decoder.offset);
        }
        // Frames wholly inside any window of PY_READ_BYTES.
        const starts = [0, ...ends.slice(0, -1)];
        let first = 0;
        for (let last = 0; last < ends.length; last++) {
          while (ends[last]! - starts[first]! > PY_READ_BYTES) first++;
          assert.ok(
            last - first + 1 <= 100,
            `${last - first + 1} frames in one read`,
          );
        }
      },
    ),
    RUNS,
  );
});
