// Copyright 2026 the Kitewire authors. MIT license.
// Encode and decode throughput of the chunk codec: 64 B, 1 KiB, 16 KiB and
// 1 MiB payloads, plain and compressed. Each group's baseline is a plain
// memory copy of the same bytes, measured in the same run, so the ratio
// `deno bench` prints says how close the codec gets to memcpy.
//
//   deno bench bench/chunk_bench.ts
//
// Each iteration handles 1 MiB of payload (the 1 MiB case: one payload),
// so MB/s = 1.048576 / (time per iteration in ms) * 1000.

import { ChunkDecoder, ChunkEncoder } from "../protocol/mod.ts";

const SIZES: [string, number][] = [
  ["64 B", 64],
  ["1 KiB", 1024],
  ["16 KiB", 16 * 1024],
  ["1 MiB", 1024 * 1024],
];
const PER_ITERATION = 1024 * 1024;

/** Bytes that compress about 3:1, like text or JSON. */
function texty(size: number): Uint8Array {
  const out = new Uint8Array(size);
  let state = 7;
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[i] = 0x61 + ((state >>> 16) % 12);
  }
  return out;
}

for (const [label, size] of SIZES) {
  const count = Math.max(1, PER_ITERATION / size);
  const payload = texty(size);
  const copyTarget = new Uint8Array(size * count);

  for (const compress of [false, true]) {
    const kind = compress ? "compressed" : "plain";
    const group = `${label} ${kind}`;
    const encoder = new ChunkEncoder({ compress });
    // A wire image of `count` data chunks, encoded once for the decode runs.
    const frames: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      frames.push(encoder.encode({ sid: 7, body: payload }));
    }
    const wire = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of frames) {
      wire.set(f, at);
      at += f.length;
    }

    Deno.bench({
      name: `memcpy ${group}`,
      group,
      baseline: true,
      fn() {
        for (let i = 0; i < count; i++) copyTarget.set(payload, i * size);
      },
    });

    Deno.bench({
      name: `encode ${group}`,
      group,
      fn() {
        const e = new ChunkEncoder({ compress });
        for (let i = 0; i < count; i++) e.encode({ sid: 7, body: payload });
      },
    });

    Deno.bench({
      name: `decode ${group}`,
      group,
      fn() {
        const decoder = new ChunkDecoder();
        decoder.push(wire);
        let bytes = 0;
        for (let c; (c = decoder.next()) !== null;) {
          if (!("lost" in c)) bytes += c.body.length;
        }
        if (bytes !== size * count) throw new Error(`decoded ${bytes}`);
      },
    });
  }
}
