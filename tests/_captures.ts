// Copyright 2026 the Kitewire authors. MIT license.
// Loads the byte-exact tunnel captures in protocol/testdata/captures/.

/** One record of a capture: a read as the proxy saw it. */
export interface CaptureRecord {
  /** `C>S` connector → relay, `S>C` relay → connector. */
  dir: "C>S" | "S>C";
  /** The bytes of that read. */
  data: Uint8Array;
}

/** One TCP connection through the capturing proxy. */
export interface CaptureConnection {
  /** Connection number within the capture. */
  conn: number;
  /** The reads in order, both directions. */
  records: CaptureRecord[];
  /** Everything the connector sent. */
  clientToRelay: Uint8Array;
  /** Everything the relay sent. */
  relayToClient: Uint8Array;
}

/** Where the capture files are. */
export const CAPTURE_DIR = new URL(
  "../protocol/testdata/captures/",
  import.meta.url,
);

/** Names of the capture files. */
export const CAPTURES = [
  "a-debian-default.jsonl",
  "a-upstream-default.jsonl",
  "b-upstream-nozchunks-many-kites.jsonl",
  "c-rejections-duplicate.jsonl",
  "d-authapp-quota-motd.jsonl",
  "f-libpagekite-pagekitec.jsonl",
] as const;

/** Decodes a Latin-1 string (code point = byte value) into bytes. */
export function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Reads a capture file into its connections. */
export function loadCapture(name: string): CaptureConnection[] {
  const text = Deno.readTextFileSync(new URL(name, CAPTURE_DIR));
  const byConn = new Map<number, CaptureRecord[]>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const row = JSON.parse(line) as {
      conn: number;
      dir: string;
      data: string;
    };
    if (row.dir !== "C>S" && row.dir !== "S>C") continue;
    if (row.data.length === 0) continue;
    const records = byConn.get(row.conn) ?? [];
    records.push({ dir: row.dir, data: latin1Bytes(row.data) });
    byConn.set(row.conn, records);
  }
  return [...byConn].map(([conn, records]) => ({
    conn,
    records,
    clientToRelay: concat(records.filter((r) => r.dir === "C>S")),
    relayToClient: concat(records.filter((r) => r.dir === "S>C")),
  }));
}

function concat(records: CaptureRecord[]): Uint8Array {
  const out = new Uint8Array(records.reduce((n, r) => n + r.data.length, 0));
  let at = 0;
  for (const r of records) {
    out.set(r.data, at);
    at += r.data.length;
  }
  return out;
}

/** The index just past the first blank line (`\r\n\r\n`), or -1. */
export function headEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (
      bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 &&
      bytes[i + 3] === 10
    ) return i + 4;
  }
  return -1;
}
