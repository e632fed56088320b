// Copyright 2026 the Kitewire authors. MIT license.
// A small HTTP/1.1 client over a raw TCP connection, so tests can set any
// Host header (fetch cannot) and keep one connection alive for many requests.

/** A parsed response. */
export interface HttpResponse {
  status: number;
  statusText: string;
  /** Header names lower-cased; repeated headers keep the last value. */
  headers: Map<string, string>;
  /** Header lines in order, as sent. */
  rawHead: string;
  body: Uint8Array;
}

/** One request. */
export interface HttpRequestOptions {
  method?: string;
  path?: string;
  host: string;
  headers?: [string, string][];
  body?: Uint8Array;
}

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** A client connection that can send several requests in turn. */
export class HttpClient implements Disposable {
  readonly conn: Deno.Conn;
  #buffer: Uint8Array = new Uint8Array(0);
  #chunk = new Uint8Array(64 * 1024);

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  static async connect(port: number): Promise<HttpClient> {
    return new HttpClient(
      await Deno.connect({ hostname: "127.0.0.1", port }),
    );
  }

  /** Sends a request and reads its response. */
  async request(options: HttpRequestOptions): Promise<HttpResponse> {
    const body = options.body ?? new Uint8Array();
    let head =
      `${options.method ?? "GET"} ${options.path ?? "/"} HTTP/1.1\r\n` +
      `Host: ${options.host}\r\n`;
    for (const [name, value] of options.headers ?? []) {
      head += `${name}: ${value}\r\n`;
    }
    if (body.length > 0) head += `Content-Length: ${body.length}\r\n`;
    await this.#write(encoder.encode(head + "\r\n"));
    if (body.length > 0) await this.#write(body);
    return await this.readResponse(options.method === "HEAD");
  }

  /** Reads one response. */
  async readResponse(noBody = false): Promise<HttpResponse> {
    const headEnd = await this.#until(() => find(this.#buffer, "\r\n\r\n"));
    const rawHead = latin1.decode(this.#buffer.subarray(0, headEnd));
    this.#buffer = this.#buffer.subarray(headEnd + 4);
    const [statusLine, ...lines] = rawHead.split("\r\n");
    const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine!);
    if (match === null) throw new Error(`Not an HTTP response: ${statusLine}`);
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers.set(
        line.slice(0, colon).trim().toLowerCase(),
        line.slice(colon + 1).trim(),
      );
    }
    const status = Number(match[1]);
    let body: Uint8Array = new Uint8Array();
    if (noBody || status === 204 || status === 304) {
      // no body
    } else if (headers.get("transfer-encoding")?.includes("chunked")) {
      const parts: Uint8Array[] = [];
      for (;;) {
        const lineEnd = await this.#until(() => find(this.#buffer, "\r\n"));
        const size = parseInt(
          latin1.decode(this.#buffer.subarray(0, lineEnd)),
          16,
        );
        this.#buffer = this.#buffer.subarray(lineEnd + 2);
        await this.#until(() => this.#buffer.length >= size + 2 ? 0 : -1);
        parts.push(this.#buffer.slice(0, size));
        this.#buffer = this.#buffer.subarray(size + 2);
        if (size === 0) break;
      }
      body = concat(parts);
    } else if (headers.has("content-length")) {
      const size = Number(headers.get("content-length"));
      await this.#until(() => this.#buffer.length >= size ? 0 : -1);
      body = this.#buffer.slice(0, size);
      this.#buffer = this.#buffer.subarray(size);
    } else {
      // Until the server closes.
      const parts = [this.#buffer.slice()];
      for (let n; (n = await this.conn.read(this.#chunk)) !== null;) {
        parts.push(this.#chunk.slice(0, n));
      }
      this.#buffer = new Uint8Array();
      body = concat(parts);
    }
    return { status, statusText: match[2]!, headers, rawHead, body };
  }

  /** Reads everything until the server closes. */
  async readToEnd(): Promise<Uint8Array> {
    const parts = [this.#buffer.slice()];
    for (let n; (n = await this.conn.read(this.#chunk)) !== null;) {
      parts.push(this.#chunk.slice(0, n));
    }
    this.#buffer = new Uint8Array();
    return concat(parts);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) {
      at += await this.conn.write(bytes.subarray(at));
    }
  }

  async #until(found: () => number): Promise<number> {
    for (;;) {
      const at = found();
      if (at !== -1) return at;
      const n = await this.conn.read(this.#chunk);
      if (n === null) {
        throw new Error("Connection closed before the response ended");
      }
      this.#buffer = concat([this.#buffer, this.#chunk.subarray(0, n)]);
    }
  }

  [Symbol.dispose](): void {
    this.conn[Symbol.dispose]();
  }
}

/** One request on a fresh connection. */
export async function httpRequest(
  port: number,
  options: HttpRequestOptions,
): Promise<HttpResponse> {
  using client = await HttpClient.connect(port);
  return await client.request(options);
}

function find(bytes: Uint8Array, text: string): number {
  const first = text.charCodeAt(0);
  for (
    let i = bytes.indexOf(first);
    i !== -1;
    i = bytes.indexOf(first, i + 1)
  ) {
    if (i + text.length > bytes.length) return -1;
    let ok = true;
    for (let j = 1; j < text.length; j++) {
      if (bytes[i + j] !== text.charCodeAt(j)) {
        ok = false;
        break;
      }
    }
    if (ok) return i;
  }
  return -1;
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Hex SHA-256 of bytes. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}
