// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import type { Chunk, LostChunk } from "./chunk.ts";
import { ChunkDecoder } from "./chunk_decoder.ts";
import { ChunkEncoder } from "./chunk_encoder.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";
import {
  CAPTURES,
  headEnd,
  latin1Bytes,
  loadCapture,
} from "../tests/_captures.ts";

const text = new TextDecoder("latin1");

/** Decodes `wire` pushed in the given pieces, draining after each push. */
function decodePieces(
  pieces: Iterable<Uint8Array>,
  decoder = new ChunkDecoder(),
): (Chunk | LostChunk)[] {
  const out: (Chunk | LostChunk)[] = [];
  for (const piece of pieces) {
    decoder.push(piece);
    for (let c; (c = decoder.next()) !== null;) {
      // Bodies are views valid until the next push: keep copies.
      out.push("lost" in c ? c : { ...c, body: c.body.slice() });
    }
  }
  assert.equal(decoder.buffered, 0, "bytes left over after the last frame");
  return out;
}

function* splitAt(wire: Uint8Array, at: number): Iterable<Uint8Array> {
  yield wire.subarray(0, at);
  yield wire.subarray(at);
}

function* bytewise(wire: Uint8Array): Iterable<Uint8Array> {
  for (let i = 0; i < wire.length; i++) {
    // A fresh one-byte buffer each time, like a reused read buffer would be.
    yield wire.slice(i, i + 1);
  }
}

/** Asserts that every way of splitting `wire` decodes to `expected`. */
function assertAllSplits(
  wire: Uint8Array,
  expected: (Chunk | LostChunk)[],
): void {
  assert.deepEqual(decodePieces([wire]), expected);
  for (let at = 0; at <= wire.length; at++) {
    assert.deepEqual(decodePieces(splitAt(wire, at)), expected, `split ${at}`);
  }
  assert.deepEqual(decodePieces(bytewise(wire)), expected);
}

/** A plain frame around `payload`. */
function frame(payload: string): string {
  return payload.length.toString(16) + "\r\n" + payload;
}

/** Text that deflate shrinks by about half: frames stay compressed. */
function wordy(words: number, seed = 1): Uint8Array {
  return latin1Bytes(
    Array.from(
      { length: words },
      (_, i) => ((i + seed) * 7919 * seed % 100003).toString(36),
    )
      .join(" "),
  );
}

function chunk(fields: Omit<Chunk, "body">, body = ""): Chunk {
  return { ...fields, body: latin1Bytes(body) };
}

// Frames quoted in spec §3.4 and §8, with what they decode to.
const SPEC_FRAMES: [string, Chunk][] = [
  [
    "c7\r\nSID: 7\r\nProto: http\r\nHost: foo.example.com\r\nPort: 18080\r\nRIP: 127.0.0.1\r\nRPort: 45982\r\n\r\nGET /hello HTTP/1.1\r\nHost: foo.example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
    chunk(
      {
        sid: 7,
        proto: "http",
        host: "foo.example.com",
        port: 18080,
        remoteIp: "127.0.0.1",
        remotePort: 45982,
      },
      "GET /hello HTTP/1.1\r\nHost: foo.example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
    ),
  ],
  [
    "58\r\nSID: 11\r\nProto: raw\r\nHost: ssh.example.com\r\nPort: 2222\r\nRIP: 127.0.0.1\r\nRPort: 45994\r\n\r\n",
    chunk({
      sid: 11,
      proto: "raw",
      host: "ssh.example.com",
      port: 2222,
      remoteIp: "127.0.0.1",
      remotePort: 45994,
    }),
  ],
  ["a\r\nSID: 7\r\n\r\n", chunk({ sid: 7 })],
  ["17\r\nSID: 7\r\nEOF: 1R\r\n\r\nBye!", chunk({ sid: 7, eof: "R" }, "Bye!")],
  [
    "18\r\nSID: 7\r\nEOF: 1WR\r\n\r\nBye!",
    chunk({ sid: 7, eof: "RW" }, "Bye!"),
  ],
  ["17\r\nSID: 9\r\nEOF: 1W\r\n\r\nBye!", chunk({ sid: 9, eof: "W" }, "Bye!")],
  ["13\r\nSID: 7\r\nEOF: 1R\r\n\r\n", chunk({ sid: 7, eof: "R" })],
  ["15\r\nSID: 15\r\nEOF: 1RW\r\n\r\n", chunk({ sid: 15, eof: "RW" })],
  [
    "1b\r\nNOOP: 1\r\nSID: 7\r\nSKB: 0\r\n\r\n",
    chunk({ noop: true, sid: 7, skb: 0 }),
  ],
  [
    "23\r\nNOOP: 1\r\nPING: 1795305639.1845\r\n\r\n!",
    chunk({ noop: true, ping: "1795305639.1845" }, "!"),
  ],
  [
    "23\r\nNOOP: 1\r\nPONG: 1795305639.1845\r\n\r\n!",
    chunk({ noop: true, pong: "1795305639.1845" }, "!"),
  ],
  [
    "31\r\nNOOP: 1\r\nPONG: 1795305758.0162\r\nQuota: 10240\r\n\r\n!",
    chunk({ noop: true, pong: "1795305758.0162", quota: 10240 }, "!"),
  ],
  ["14\r\nNOOP: 1\r\nPING: 1\r\n\r\n", chunk({ noop: true, ping: "1" })],
  ["b\r\nNOOP: 1\r\n\r\n", chunk({ noop: true })],
  [
    "1b\r\nNOOP: 1\r\nSID: 7\r\nSPD: 5\r\n\r\n",
    chunk({ noop: true, sid: 7, spd: 5 }),
  ],
  ["15\r\nNOOP: 1\r\nZRST: 1\r\n\r\n!", chunk({ noop: true, zrst: true }, "!")],
  [
    "c1\r\nNOOP: 1\r\nX-PageKite-Version: 1.5.2.260113\r\nX-PageKite: http:foo.example.com:c990ad69466a150816bf368f7add0dd750e6:t593f57992bc64b84fd20d144cdb8f508d76:c4fb4f7a8a0e4a2f1dc84cf98d1884e6ff5e\r\n\r\n\r\n!",
    chunk({
      noop: true,
      headers: [
        ["X-PageKite-Version", "1.5.2.260113"],
        [
          "X-PageKite",
          "http:foo.example.com:c990ad69466a150816bf368f7add0dd750e6:t593f57992bc64b84fd20d144cdb8f508d76:c4fb4f7a8a0e4a2f1dc84cf98d1884e6ff5e",
        ],
      ],
    }, "\r\n!"),
  ],
  [
    "b7\r\nNOOP: 1\r\nX-PageKite-OK: http:foo.example.com:c990ad69466a150816bf368f7add0dd750e6\r\nX-PageKite-SessionID: 6b02341a:ad0dec8351256a396460ff440b57474d4de501e5\r\nX-PageKite-Misc: motd=\r\n\r\n!",
    chunk({
      noop: true,
      headers: [
        [
          "X-PageKite-OK",
          "http:foo.example.com:c990ad69466a150816bf368f7add0dd750e6",
        ],
        [
          "X-PageKite-SessionID",
          "6b02341a:ad0dec8351256a396460ff440b57474d4de501e5",
        ],
        ["X-PageKite-Misc", "motd="],
      ],
    }, "!"),
  ],
  [
    "28\r\nSID: 5\r\n\r\nHello from the local service!\n",
    chunk({ sid: 5 }, "Hello from the local service!\n"),
  ],
  [
    "1c\r\nNOOP: 1\r\nSID: 11\r\nSKB: 0\r\n\r\n",
    chunk({ noop: true, sid: 11, skb: 0 }),
  ],
  [
    "1b\r\nSID: 11\r\n\r\nhello raw world\n",
    chunk({ sid: 11 }, "hello raw world\n"),
  ],
  [
    "20\r\nSID: 11\r\n\r\nECHO:hello raw world\n",
    chunk({ sid: 11 }, "ECHO:hello raw world\n"),
  ],
  [
    "19\r\nSID: 26\r\nEOF: 1WR\r\n\r\nBye!",
    chunk({ sid: 26, eof: "RW" }, "Bye!"),
  ],
  [
    "8a\r\nSID: 30\r\nProto: http\r\nHost: foo.example.com\r\nPort: 80\r\nRIP: 127.0.0.1\r\nRPort: 60066\r\n\r\nGET /viaconnect HTTP/1.1\r\nHost: foo.example.com\r\n\r\n",
    chunk(
      {
        sid: 30,
        proto: "http",
        host: "foo.example.com",
        port: 80,
        remoteIp: "127.0.0.1",
        remotePort: 60066,
      },
      "GET /viaconnect HTTP/1.1\r\nHost: foo.example.com\r\n\r\n",
    ),
  ],
  [
    "23\r\nNOOP: 1\r\nPING: 1795305925.8582\r\n\r\n!",
    chunk({ noop: true, ping: "1795305925.8582" }, "!"),
  ],
];

Deno.test("ChunkDecoder decodes the frames of spec §3.4 and §8 split at every byte", async (t) => {
  for (const [wire, expected] of SPEC_FRAMES) {
    await t.step(JSON.stringify(wire.slice(0, 40)), () => {
      assertAllSplits(latin1Bytes(wire), [expected]);
    });
  }
  await t.step("all of them back to back", () => {
    const wire = latin1Bytes(SPEC_FRAMES.map(([w]) => w).join(""));
    assertAllSplits(wire, SPEC_FRAMES.map(([, c]) => c));
  });
});

Deno.test("ChunkEncoder reproduces the pagekite.py frames of spec §3.4 and §8 byte for byte", () => {
  const encoder = new ChunkEncoder();
  for (const [wire, decoded] of SPEC_FRAMES) {
    // lpk spells a full close "1RW"; we emit py's "1WR".
    if (wire.includes("EOF: 1RW")) continue;
    assert.equal(text.decode(encoder.encode(decoded)), wire);
  }
});

// Spec §3.3: two frames from one zlib context (Python zlib, level 1).
const VECTOR_33 = Uint8Array.fromHex(
  "37635a36340d0a78010af674b15230e5e50a28ca2fc9b752c8282929e0e5f2c82f2eb15248cbcfd74bad48cc2dc849d54bcecf05aac92f020a5b18f072057906582918ea19e919eb99007910095320e0e5e2e572770d51d057f0080909d037d433c4691a2f17000000ffff" +
    "36305a31350d0a0a86da0dd592989e9899478cbe0a2201000000ffff",
);

Deno.test("ChunkDecoder inflates the §3.3 compression vector split at every byte", () => {
  assertAllSplits(VECTOR_33, [
    chunk(
      {
        sid: 5,
        proto: "http",
        host: "foo.example.com",
        port: 80,
        remoteIp: "1.2.3.4",
        remotePort: 5555,
      },
      "GET / HTTP/1.1\r\nHost: foo.example.com\r\n\r\n",
    ),
    chunk(
      { sid: 5 },
      "GET /again HTTP/1.1\r\nHost: foo.example.com\r\n\r\n" + "x".repeat(40),
    ),
  ]);
});

/** The chunk streams of a capture: bytes after each tunnel head. */
function captureStreams(
  name: string,
): { label: string; wire: Uint8Array; cuts: number[] }[] {
  const streams = [];
  for (const connection of loadCapture(name)) {
    if (
      !text.decode(connection.clientToRelay.subarray(0, 18)).startsWith(
        "CONNECT PageKite:",
      )
    ) {
      continue;
    }
    for (const dir of ["C>S", "S>C"] as const) {
      const all = dir === "C>S"
        ? connection.clientToRelay
        : connection.relayToClient;
      const start = headEnd(all);
      if (start === -1) continue;
      const cuts: number[] = [];
      let at = 0;
      for (const record of connection.records) {
        if (record.dir !== dir) continue;
        at += record.data.length;
        if (at > start && at < all.length) cuts.push(at - start);
      }
      streams.push({
        label: `${name} conn ${connection.conn} ${dir}`,
        wire: all.subarray(start),
        cuts,
      });
    }
  }
  return streams;
}

function* atCuts(wire: Uint8Array, cuts: number[]): Iterable<Uint8Array> {
  let from = 0;
  for (const cut of cuts) {
    yield wire.subarray(from, cut);
    from = cut;
  }
  yield wire.subarray(from);
}

Deno.test("ChunkDecoder replays every capture whole, as read, and byte by byte", async (t) => {
  let frames = 0;
  let compressed = 0;
  for (const name of CAPTURES) {
    for (const { label, wire, cuts } of captureStreams(name)) {
      await t.step(label, () => {
        const whole = decodePieces([wire]);
        for (const c of whole) {
          assert.ok(!("lost" in c), `${label}: ${JSON.stringify(c)}`);
        }
        assert.deepEqual(decodePieces(atCuts(wire, cuts)), whole);
        assert.deepEqual(decodePieces(bytewise(wire)), whole);
        frames += whole.length;
        compressed +=
          text.decode(wire).match(/(^|[\r\n!])[0-9a-f]+Z[0-9a-f]+\r\n/g)
            ?.length ?? 0;
      });
    }
  }
  assert.ok(frames > 100, `only ${frames} frames in the captures`);
  assert.ok(compressed >= 4, `only ${compressed} compressed frames`);
});

Deno.test("ChunkDecoder reads the compressed request of capture A", () => {
  const tunnel = loadCapture("a-upstream-default.jsonl").find((c) =>
    text.decode(c.clientToRelay).startsWith("CONNECT PageKite:")
  )!;
  const toConnector = decodePieces([
    tunnel.relayToClient.subarray(headEnd(tunnel.relayToClient)),
  ]) as Chunk[];
  const open = toConnector.find((c) => c.proto !== undefined)!;
  assert.equal(open.sid, 5);
  assert.equal(open.host, "foo.example.com");
  assert.equal(open.port, 18080);
  assert.match(
    text.decode(open.body),
    /^GET \/ HTTP\/1\.1\r\nHost: foo\.example\.com\r\n/,
  );
  const toRelay = decodePieces([
    tunnel.clientToRelay.subarray(headEnd(tunnel.clientToRelay)),
  ]) as Chunk[];
  const response = toRelay.find((c) => c.sid === 5 && c.body.length > 100)!;
  assert.match(text.decode(response.body), /^HTTP\/1\.0 200 OK\r\n/);
  assert.deepEqual(
    toRelay.filter((c) => c.eof !== undefined).map((c) => c.eof),
    ["R", "RW"],
  );
});

Deno.test("ChunkDecoder rejects malformed size lines with ProtocolError and an offset", async (t) => {
  const cases: [string, RegExp, number][] = [
    [
      "c\r\nSID: 7\r\n\r\nhixyz\r\n",
      /^Cannot decode chunk: size is not hex at offset 15$/,
      15,
    ],
    ["0\r\n", /size 0 is not allowed/, 0],
    ["-5\r\n", /not hex/, 0],
    ["5Q\r\n", /unexpected "Q" in size line/, 1],
    ["5Z\r\n", /compressed size is not hex/, 2],
    [" 5\r\n", /size is not hex at offset 0/, 0],
    [" 5", /unexpected " " in size line at offset 0/, 0],
  ];
  for (const [wire, message, offset] of cases) {
    await t.step(JSON.stringify(wire), () => {
      const decoder = new ChunkDecoder();
      decoder.push(latin1Bytes(wire));
      const first = () => {
        for (let c; (c = decoder.next()) !== null;) void c;
      };
      assert.throws(first, (e: unknown) => {
        assert.ok(e instanceof ProtocolError, String(e));
        assert.match(e.message, message);
        assert.equal(e.offset, offset);
        return true;
      });
      // The framing is lost: the decoder keeps failing.
      assert.throws(() => decoder.next(), ProtocolError);
    });
  }
});

Deno.test("ChunkDecoder skips a well-framed chunk with bad headers and goes on", () => {
  const decoder = new ChunkDecoder();
  decoder.push(latin1Bytes(
    frame("SID: x7\r\n\r\nhi") + frame("Bogus\r\n\r\nhi") +
      frame("Port: 1\r\n\r\n") + frame("SID: 8\r\n\r\nok"),
  ));
  assert.throws(() => decoder.next(), /SID "x7" is not a decimal number/);
  assert.throws(
    () => decoder.next(),
    /header line "Bogus" is not 'Name: value'/,
  );
  assert.throws(
    () => decoder.next(),
    /a chunk without NOOP needs a SID header/,
  );
  const next = decoder.next() as Chunk;
  assert.equal(next.sid, 8);
  assert.equal(text.decode(next.body), "ok");
});

Deno.test("ChunkDecoder reports a corrupt compressed frame as lost, then recovers after R", () => {
  const encoder = new ChunkEncoder({ compress: true });
  const body = wordy(800);
  const good = encoder.encode({ sid: 1, body });
  assert.match(text.decode(good.subarray(0, 12)), /^[0-9a-f]+Z[0-9a-f]+\r\n/);
  const corrupt = good.slice();
  corrupt.fill(0xff, 20, 40);
  const decoder = new ChunkDecoder();
  const second = encoder.encode({ sid: 2, body: wordy(800, 2) });
  assert.match(text.decode(second.subarray(0, 12)), /^[0-9a-f]+Z/);
  const plain = latin1Bytes("c\r\nSID: 3\r\n\r\nhi");
  const out = decodePieces([corrupt, plain, second], decoder);
  const [lost, kept, lostToo] = out as [LostChunk, Chunk, LostChunk];
  assert.equal(lost.lost, true);
  assert.equal(lost.sendZrst, true);
  assert.match(lost.reason, /^Cannot inflate chunk at offset 0: /);
  assert.equal(kept.sid, 3, "plain frames still decode");
  assert.equal(lostToo.lost, true, "history is broken until the sender resets");
  assert.equal(lostToo.sendZrst, false, "one ZRST per episode");
  // The peer sends ZRST; the encoder starts a fresh stream marked R.
  encoder.resetCompression();
  const fresh = encoder.encode({ sid: 4, body: wordy(800, 3) });
  assert.match(text.decode(fresh.subarray(0, 14)), /^[0-9a-f]+Z[0-9a-f]+R\r\n/);
  const [recovered] = decodePieces([fresh], decoder) as Chunk[];
  assert.equal(recovered!.sid, 4);
  assert.deepEqual(recovered!.body, wordy(800, 3));
});

Deno.test("ChunkDecoder stops a compressed frame that inflates past its declared size", () => {
  const encoder = new ChunkEncoder({ compress: true });
  const wire = encoder.encode({ sid: 9, body: wordy(800) });
  assert.match(text.decode(wire.subarray(0, 12)), /^[0-9a-f]+Z[0-9a-f]+\r\n/);
  // Declare fewer plain bytes than the frame really holds.
  const line = text.decode(wire.subarray(0, wire.indexOf(10) + 1));
  const lied = line.replace(/^[0-9a-f]+/, "100");
  const forged = new Uint8Array([
    ...latin1Bytes(lied),
    ...wire.subarray(line.length),
  ]);
  const [lost] = decodePieces([forged]) as LostChunk[];
  assert.equal(lost!.lost, true);
  assert.equal(lost!.sid, 9, "the SID is read from the first inflated bytes");
  assert.match(lost!.reason, /inflated past the declared size 256/);
});

Deno.test("ChunkDecoder limits are options", () => {
  const decoder = new ChunkDecoder({ maxChunkSize: 10 });
  decoder.push(latin1Bytes("b\r\n"));
  assert.throws(() => decoder.next(), (e: unknown) => {
    assert.ok(e instanceof ProtocolLimitError);
    assert.equal(
      e.message,
      "Cannot decode chunk: size 11 exceeds maxChunkSize 10",
    );
    return true;
  });
  const few = new ChunkDecoder({ maxHeaders: 2 });
  few.push(latin1Bytes("1b\r\nNOOP: 1\r\nSID: 7\r\nSKB: 0\r\n\r\n"));
  assert.throws(() => few.next(), /more than maxHeaders 2 header lines/);
  const short = new ChunkDecoder({ maxSizeDigits: 2 });
  short.push(latin1Bytes("100"));
  assert.throws(() => short.next(), /size has more than 2 hex digits/);
});

Deno.test("ChunkDecoder refuses limits that are not positive integers", () => {
  assert.throws(
    () => new ChunkDecoder({ maxChunkSize: 0 }),
    /^RangeError: Cannot create chunk decoder: maxChunkSize 0 is not a positive integer$/,
  );
  assert.throws(() => new ChunkDecoder({ maxHeaders: 1.5 }), RangeError);
  assert.throws(() => new ChunkDecoder({ maxSizeDigits: 14 }), /exceeds 13/);
});
