// Copyright 2026 the Kitewire authors. MIT license.
// Builds a zlib stream that inflates to a chosen size at DEFLATE's best
// ratio (about 1032:1), without compressing anything: one dynamic-Huffman
// block whose length code 258 and distance code 1 are a single bit each.

class BitWriter {
  bytes: Uint8Array;
  bit = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }
  /** Writes `count` bits of `value`, least significant first. */
  bits(value: number, count: number): void {
    for (let i = 0; i < count; i++, this.bit++) {
      if ((value >> i) & 1) this.bytes[this.bit >> 3]! |= 1 << (this.bit & 7);
    }
  }
  /** Writes a Huffman code, most significant bit first. */
  code(code: number, length: number): void {
    for (let i = length - 1; i >= 0; i--, this.bit++) {
      if ((code >> i) & 1) this.bytes[this.bit >> 3]! |= 1 << (this.bit & 7);
    }
  }
}

/**
 * A zlib stream (header, one dynamic block, a sync flush) that inflates to
 * `size` zero bytes, rounded down to 1 + a multiple of 258.
 */
export function zlibBomb(size: number): Uint8Array {
  const matches = Math.floor((size - 1) / 258);
  const w = new BitWriter(64 + Math.ceil(matches / 4) + 16);
  w.bits(0x78, 8);
  w.bits(0x01, 8);
  w.bits(0, 1); // not final
  w.bits(2, 2); // dynamic Huffman
  w.bits(29, 5); // HLIT: 286 literal/length codes
  w.bits(0, 5); // HDIST: 1 distance code
  w.bits(14, 4); // HCLEN: 18 code-length codes
  // Code-length code lengths in RFC 1951 order: 18 → 1 bit, 2 and 1 → 2 bits.
  const order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
  const clen: Record<number, number> = { 18: 1, 2: 2, 1: 2 };
  for (const sym of order) w.bits(clen[sym] ?? 0, 3);
  // Canonical codes: 18 → 0, 1 → 10, 2 → 11.
  const sym1 = () => w.code(0b10, 2);
  const sym2 = () => w.code(0b11, 2);
  const zeros = (n: number) => {
    w.code(0, 1);
    w.bits(n - 11, 7);
  };
  sym2(); // literal 0: length 2
  zeros(138);
  zeros(117); // literals 1..255 unused
  sym2(); // 256 (end of block): length 2
  zeros(28); // 257..284 unused
  sym1(); // 285 (length 258): length 1
  sym1(); // distance code 0 (distance 1): length 1
  // Canonical literal/length codes: 285 → 0, 0 → 10, 256 → 11.
  w.code(0b10, 2); // one literal zero byte
  w.bit += matches * 2; // each match is "0" (length 258) + "0" (distance 1)
  w.code(0b11, 2); // end of block
  w.bits(0, 3); // an empty stored block: the sync flush
  w.bit = (w.bit + 7) & ~7;
  w.bits(0x0000, 16);
  w.bits(0xffff, 16);
  return w.bytes.subarray(0, w.bit >> 3);
}
