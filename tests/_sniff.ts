// Copyright 2026 the Kitewire authors. MIT license.
// Helpers and vectors shared by the sniffer tests.

import assert from "node:assert/strict";
import { encodeLatin1 } from "../protocol/_latin1.ts";
import { CAPTURE_DIR } from "./_captures.ts";
import { ProtocolError, ProtocolLimitError } from "../protocol/errors.ts";
import type { SniffOptions, SniffResult } from "../protocol/sniff.ts";

export const INCOMPLETE = { status: "incomplete" } as const;
export const UNRECOGNIZED = { status: "unrecognized" } as const;

export type Sniffer<T> = (
  bytes: Uint8Array,
  options?: SniffOptions,
) => SniffResult<T>;

export function latin1(text: string): Uint8Array {
  return encodeLatin1(text);
}

export function concat(
  ...parts: (Uint8Array | readonly number[])[]
): Uint8Array {
  const arrays = parts.map((part) => Uint8Array.from(part));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/** Asserts `sniff` is incomplete on every proper prefix, then `expected`. */
export function assertSplitEverywhere<T>(
  sniff: Sniffer<T>,
  bytes: Uint8Array,
  expected: SniffResult<T>,
  options: SniffOptions = {},
): void {
  for (let n = 0; n < bytes.length; n++) {
    assert.deepEqual(
      sniff(bytes.subarray(0, n), options),
      INCOMPLETE,
      `prefix of ${n} bytes`,
    );
  }
  assert.deepEqual(sniff(bytes, options), expected);
}

export function value<T>(result: SniffResult<T>): T {
  assert.equal(result.status, "ok", JSON.stringify(result));
  return (result as { value: T }).value;
}

export function assertProtocolError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `not a ProtocolError: ${error}`);
    assert.match(error.message, message);
    assert.match(error.message, /^Cannot [a-z]+ [^:]+: .*[^.]$/s);
    return true;
  });
}

export function assertLimitError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(
      error instanceof ProtocolLimitError,
      `not a ProtocolLimitError: ${error}`,
    );
    assert.match(error.message, message);
    return true;
  });
}

/**
 * Feeds `stream` to `sniff` one byte more at a time and returns how many
 * bytes it had when it threw a ProtocolLimitError.
 */
export function trickleUntilLimit<T>(
  sniff: Sniffer<T>,
  stream: Uint8Array,
  options: SniffOptions = {},
): number {
  for (let n = 1; n <= stream.length; n++) {
    let result: SniffResult<T>;
    try {
      result = sniff(stream.subarray(0, n), options);
    } catch (error) {
      assert.ok(error instanceof ProtocolLimitError, `${error}`);
      return n;
    }
    assert.deepEqual(result, INCOMPLETE, `prefix of ${n} bytes`);
  }
  throw new Error("the stream ran out before a ProtocolLimitError");
}

export async function readCapture(name: string): Promise<
  { conn: number; dir: string; data: string }[]
> {
  const text = await Deno.readTextFile(
    new URL(name, CAPTURE_DIR),
  );
  return text.split("\n").filter((line) => line !== "").map((line) =>
    JSON.parse(line)
  );
}

// ---------------------------------------------------------------------------
// Vectors shared by more than one test file

/**
 * The ClientHello `openssl s_client -servername secure.example.com` sent in
 * transcript B (FE→BE chunk for SID 13, `Proto: https`).
 */
export const CAPTURED_HELLO = Uint8Array.fromHex(
  "160301013f0100013b0303f516750fe1ae11608e872da6f3296ea4132d9da316" +
    "42440d1c621ecdb17dfbee20b72e3d3b8007c3814d9e6a75ecec9fbf9a3bdaae" +
    "1f3b5cd54f00877daa5424aa003e130213031301c02cc030009fcca9cca8ccaa" +
    "c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d" +
    "009c003d003c0035002f00ff010000b40000001700150000127365637572652e" +
    "6578616d706c652e636f6d000b000403000102000a00160014001d0017001e00" +
    "19001801000101010201030104002300000016000000170000000d002a002804" +
    "0305030603080708080809080a080b0804080508060401050106010303030103" +
    "02040205020602002b0009080304030303020301002d00020101003300260024" +
    "001d00203493b57e2a34b7271dd5ed940efd0be6bb743be475751641f6208784" +
    "dd558c40",
);
/** The handshake message inside CAPTURED_HELLO (one record). */
export const CAPTURED_MESSAGE = CAPTURED_HELLO.subarray(5);

export function u16(n: number): number[] {
  return [n >> 8, n & 0xff];
}

/** Wraps a handshake message in TLS records of the given fragment sizes. */
export function toRecords(message: Uint8Array, sizes: number[]): Uint8Array {
  const parts: number[] = [];
  let at = 0;
  for (let i = 0; at < message.length; i++) {
    const size = Math.min(
      sizes[Math.min(i, sizes.length - 1)]!,
      message.length - at,
    );
    parts.push(0x16, 3, 1, ...u16(size), ...message.subarray(at, at + size));
    at += size;
  }
  return Uint8Array.from(parts);
}

export const XMPP_HEADER =
  "<?xml version='1.0'?><stream:stream to='Chat.Example.com' " +
  "version='1.0' xml:lang='en' xmlns='jabber:client' " +
  "xmlns:stream='http://etherx.jabber.org/streams'>";

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n % 128;
    n = Math.floor(n / 128);
    out.push(n > 0 ? b | 0x80 : b);
  } while (n > 0);
  return out;
}

export function minecraftHandshake(
  address: Uint8Array | string,
  { version = 767, port = 25565, next = 1 } = {},
): Uint8Array {
  const name = typeof address === "string"
    ? new TextEncoder().encode(address)
    : address;
  const body = [
    0x00,
    ...varint(version),
    ...varint(name.length),
    ...name,
    ...u16(port),
    ...varint(next),
  ];
  return Uint8Array.from([...varint(body.length), ...body]);
}
