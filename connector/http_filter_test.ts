// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  DEFAULT_FILTER_MAX_HEAD_BYTES,
  DEFAULT_FILTER_MAX_HEADERS,
  HttpRequestFilter,
  type HttpRequestFilterOptions,
} from "./http_filter.ts";
import {
  badRequestPage,
  blockedRequestPage,
  headersTooLargePage,
  unauthorizedPage,
} from "./pages.ts";

// ---------------------------------------------------------------------------
// Helpers

const BASE: HttpRequestFilterOptions = {
  remoteIp: "127.0.0.1",
  publicPort: 18080,
};
const INJECTED = "X-Forwarded-For: 127.0.0.1\r\n" +
  "X-Forwarded-Proto: http\r\nX-PageKite-Port: 18080\r\n";
const HOST = "Host: foo.example.com\r\n";

function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function text(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += String.fromCharCode(byte);
  return out;
}

/** A head as the local service sees it: `inject` after the request line. */
function injected(head: string, inject: string = INJECTED): string {
  const end = head.indexOf("\r\n") + 2;
  return head.slice(0, end) + inject + head.slice(end);
}

interface Outcome {
  /** Everything forwarded, concatenated. */
  forwarded: string;
  /** The reply page, or null. */
  reply: string | null;
  close: boolean;
}

/** Feeds `pieces` to a new filter; checks the calls after a close. */
function feed(
  pieces: Uint8Array[],
  options: HttpRequestFilterOptions = BASE,
): Outcome {
  const filter = new HttpRequestFilter(options);
  const outcome: Outcome = { forwarded: "", reply: null, close: false };
  for (const piece of pieces) {
    const out = filter.push(piece);
    if (outcome.close) {
      assert.deepEqual(out, { forward: [], close: true });
      continue;
    }
    outcome.forwarded += out.forward.map(text).join("");
    if (out.close === true) {
      assert.ok(out.reply !== undefined, "close without a reply");
      assert.equal(typeof out.reason, "string");
      outcome.close = true;
      outcome.reply = text(out.reply);
    } else {
      assert.equal(out.reply, undefined);
      assert.equal(out.close, undefined);
    }
  }
  return outcome;
}

function run(
  input: string,
  options: HttpRequestFilterOptions = BASE,
): Outcome {
  return feed([latin1(input)], options);
}

/** Splits `bytes` at the given (unsorted, possibly repeated) offsets. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const point of points) {
    pieces.push(bytes.subarray(start, point));
    start = point;
  }
  pieces.push(bytes.subarray(start));
  return pieces;
}

/**
 * Runs `input` whole, split in two at every index, and byte by byte;
 * asserts every run gives the same outcome, and returns it.
 */
function runEverySplit(
  input: string,
  options: HttpRequestFilterOptions = BASE,
): Outcome {
  const bytes = latin1(input);
  const whole = feed([bytes], options);
  for (let i = 0; i <= bytes.length; i++) {
    assert.deepEqual(
      feed([bytes.subarray(0, i), bytes.subarray(i)], options),
      whole,
      `split at ${i}`,
    );
  }
  const bytewise = [...bytes].map((b) => Uint8Array.of(b));
  assert.deepEqual(feed(bytewise, options), whole, "byte by byte");
  return whole;
}

function status(reply: string | null): number | null {
  return reply === null ? null : Number(reply.slice(9, 12));
}

// ---------------------------------------------------------------------------
// Header injection (spec §5.3) and spoofing (S7)

Deno.test("HttpRequestFilter.push() injects forwarding headers exactly as spec §5.3 shows", () => {
  const input = "GET /hello HTTP/1.1\r\nHost: foo.example.com\r\n" +
    "User-Agent: curl/7.88.1\r\nAccept: */*\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
  assert.deepEqual(run(input), {
    forwarded: "GET /hello HTTP/1.1\r\nX-Forwarded-For: 127.0.0.1\r\n" +
      "X-Forwarded-Proto: http\r\nX-PageKite-Port: 18080\r\n" +
      "Host: foo.example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n" +
      "X-Old-X-Forwarded-For: 6.6.6.6\r\n\r\n",
    reply: null,
    close: false,
  });
});

Deno.test("HttpRequestFilter.push() says https for RTLS and keeps a mapped RIP verbatim", () => {
  const out = run("GET / HTTP/1.1\r\n\r\n", {
    remoteIp: "::ffff:1.2.3.4",
    remotePort: 46000,
    publicPort: 443,
    tls: true,
  });
  assert.equal(
    out.forwarded,
    "GET / HTTP/1.1\r\nX-Forwarded-For: ::ffff:1.2.3.4\r\n" +
      "X-Forwarded-Proto: https\r\nX-PageKite-Port: 443\r\n\r\n",
  );
});

Deno.test("HttpRequestFilter.push() leaves out X-Forwarded-For when RIP is empty or not an address", () => {
  for (const remoteIp of ["", "1.2.3.4 evil", "a\r\nb"]) {
    assert.equal(
      run("GET / HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n", {
        remoteIp,
        publicPort: 80,
      }).forwarded,
      "GET / HTTP/1.1\r\nX-Forwarded-Proto: http\r\nX-PageKite-Port: 80\r\n" +
        "X-Old-X-Forwarded-For: 6.6.6.6\r\n\r\n",
      JSON.stringify(remoteIp),
    );
  }
});

Deno.test("HttpRequestFilter.push() renames spoofed headers on the first and a keep-alive second request (S7)", () => {
  const spoofed = "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n" +
    "X-PageKite-Port: 1\r\n";
  const more = "x-forwarded-for: 5.6.7.8\r\nX-Forwarded-Port: 2\r\n" +
    "X-Forwarded-Host: evil.example\r\nX-PageKite-For: 9.9.9.9\r\n" +
    "X-PageKite-Proto: https\r\nForwarded: for=1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\n";
  const first = `GET /one HTTP/1.1\r\n${HOST}${spoofed}\r\n`;
  const second = `GET /two HTTP/1.1\r\n${HOST}${spoofed}${more}\r\n`;
  const renamed = "X-Old-X-Forwarded-For: 1.2.3.4\r\n" +
    "X-Old-X-Forwarded-Proto: https\r\nX-Old-X-PageKite-Port: 1\r\n";
  const renamedMore = "X-Old-x-forwarded-for: 5.6.7.8\r\n" +
    "X-Old-X-Forwarded-Port: 2\r\nX-Old-X-Forwarded-Host: evil.example\r\n" +
    "X-Old-X-PageKite-For: 9.9.9.9\r\nX-Old-X-PageKite-Proto: https\r\n" +
    "X-Old-Forwarded: for=1.2.3.4\r\nX-Old-X-Real-IP: 1.2.3.4\r\n";
  const out = runEverySplit(first + second);
  assert.equal(
    out.forwarded,
    `GET /one HTTP/1.1\r\n${INJECTED}${HOST}${renamed}\r\n` +
      `GET /two HTTP/1.1\r\n${INJECTED}${HOST}${renamed}${renamedMore}\r\n`,
  );
  assert.equal(out.close, false);
  // The service sees exactly one of each trusted header per request.
  for (const request of out.forwarded.split("\r\n\r\n").slice(0, 2)) {
    const lines = request.split("\r\n");
    assert.deepEqual(
      lines.filter((l) => /^x-(forwarded|pagekite)-/i.test(l)),
      [
        "X-Forwarded-For: 127.0.0.1",
        "X-Forwarded-Proto: http",
        "X-PageKite-Port: 18080",
      ],
    );
  }
});

Deno.test("HttpRequestFilter.push() with forwardingHeaders false passes heads unchanged but still checks framing", () => {
  const options = { ...BASE, forwardingHeaders: false };
  const input = `GET /a HTTP/1.1\r\n${HOST}X-Forwarded-For: 6.6.6.6\r\n\r\n` +
    `POST /b HTTP/1.1\r\n${HOST}Content-Length: 3\r\n\r\nabc`;
  assert.deepEqual(runEverySplit(input, options), {
    forwarded: input,
    reply: null,
    close: false,
  });
  const smuggle = `POST / HTTP/1.1\r\n${HOST}Content-Length: 5\r\n` +
    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  const refused = run(input + smuggle, options);
  assert.equal(refused.forwarded, input);
  assert.equal(status(refused.reply), 400);
  assert.equal(refused.close, true);
});

Deno.test("HttpRequestFilter.push() with rewriteHost adds Host and renames the original X-Old-Host", () => {
  const input =
    `GET / HTTP/1.1\r\n${HOST}Accept: */*\r\n\r\nGET /2 HTTP/1.1\r\n\r\n`;
  assert.equal(
    run(input, { ...BASE, rewriteHost: "localhost:8080" }).forwarded,
    `GET / HTTP/1.1\r\n${INJECTED}Host: localhost:8080\r\n` +
      "X-Old-Host: foo.example.com\r\nAccept: */*\r\n\r\n" +
      `GET /2 HTTP/1.1\r\n${INJECTED}Host: localhost:8080\r\n\r\n`,
  );
  assert.equal(
    run(input, { ...BASE, forwardingHeaders: false, rewriteHost: "backend" })
      .forwarded,
    "GET / HTTP/1.1\r\nHost: backend\r\nX-Old-Host: foo.example.com\r\n" +
      "Accept: */*\r\n\r\nGET /2 HTTP/1.1\r\nHost: backend\r\n\r\n",
  );
});

Deno.test("HttpRequestFilter.push() drops empty lines before a request line and writes bare-LF heads with CRLF", () => {
  const input = "\r\n\nGET /a HTTP/1.1\nHost: foo.example.com\n\n" +
    "POST /b HTTP/1.0\r\nContent-Length: 2\n\r\nhi\r\nGET /c HTTP/1.1\r\n\r\n";
  assert.equal(
    runEverySplit(input).forwarded,
    `GET /a HTTP/1.1\r\n${INJECTED}${HOST}\r\n` +
      `POST /b HTTP/1.0\r\n${INJECTED}Content-Length: 2\r\n\r\nhi` +
      `GET /c HTTP/1.1\r\n${INJECTED}\r\n`,
  );
});

// ---------------------------------------------------------------------------
// Framing

Deno.test("HttpRequestFilter.push() keeps Content-Length bodies intact, even ones that look like requests", () => {
  const body = `GET /smuggled HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n`;
  const input =
    `POST /a HTTP/1.1\r\n${HOST}Content-Length: ${body.length}\r\n` +
    `\r\n${body}GET /b HTTP/1.1\r\n${HOST}\r\n`;
  assert.equal(
    runEverySplit(input).forwarded,
    `POST /a HTTP/1.1\r\n${INJECTED}${HOST}Content-Length: ${body.length}\r\n` +
      `\r\n${body}GET /b HTTP/1.1\r\n${INJECTED}${HOST}\r\n`,
  );
});

Deno.test("HttpRequestFilter.push() follows chunked bodies with extensions and trailers, split everywhere", () => {
  const body = "5;name=value\r\nhello\r\n" +
    '18 ; q="a \\"b\\"" ;x\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n\r\n' +
    "000\r\nExpires: 0\r\nX-Trailer: yes\r\n\r\n";
  const head = `POST /up HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n`;
  const next = `GET /next HTTP/1.1\r\n${HOST}X-Forwarded-For: 6.6.6.6\r\n\r\n`;
  assert.deepEqual(runEverySplit(head + body + next), {
    forwarded: injected(head) + body +
      `GET /next HTTP/1.1\r\n${INJECTED}${HOST}` +
      "X-Old-X-Forwarded-For: 6.6.6.6\r\n\r\n",
    reply: null,
    close: false,
  });
});

const KEEP_ALIVE_STREAM = [
  `GET /one HTTP/1.1\r\n${HOST}X-Forwarded-For: 6.6.6.6\r\n\r\n`,
  `POST /two HTTP/1.1\r\n${HOST}Content-Length: 11\r\n\r\nhello world`,
  `PUT /three HTTP/1.1\r\n${HOST}Transfer-Encoding: gzip, chunked\r\n\r\n` +
  "3;a=1\r\n\x1f\x8b\x08\r\n0\r\nX-T: 1\r\n\r\n",
  `HEAD /four HTTP/1.1\r\n${HOST}X-PageKite-Port: 1\r\n\r\n`,
  `GET /ws HTTP/1.1\r\n${HOST}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
];
const KEEP_ALIVE_RAW = "\x81\x05hello" +
  "GET /raw HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";

Deno.test("HttpRequestFilter.push() gives the same output for every split of a keep-alive stream", () => {
  const out = runEverySplit(KEEP_ALIVE_STREAM.join("") + KEEP_ALIVE_RAW);
  assert.deepEqual(out, {
    forwarded: `GET /one HTTP/1.1\r\n${INJECTED}${HOST}` +
      "X-Old-X-Forwarded-For: 6.6.6.6\r\n\r\n" +
      injected(KEEP_ALIVE_STREAM[1]!) +
      injected(KEEP_ALIVE_STREAM[2]!) +
      `HEAD /four HTTP/1.1\r\n${INJECTED}${HOST}X-Old-X-PageKite-Port: 1\r\n\r\n` +
      injected(KEEP_ALIVE_STREAM[4]!) + KEEP_ALIVE_RAW,
    reply: null,
    close: false,
  });
});

Deno.test("HttpRequestFilter.push() passes everything after a WebSocket upgrade or CONNECT raw", () => {
  const raw = "\x82\x7e\x00\x04\r\n\0\xff" +
    "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const upgrade = `GET /ws HTTP/1.1\r\n${HOST}Upgrade: websocket\r\n` +
    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
  assert.deepEqual(runEverySplit(upgrade + raw), {
    forwarded: injected(upgrade) + raw,
    reply: null,
    close: false,
  });
  // An upgrade request with a body: the body first, then raw.
  const withBody =
    `POST /ws HTTP/1.1\r\nUpgrade: custom\r\nConnection: upgrade\r\n` +
    "Content-Length: 2\r\n\r\nok";
  assert.equal(
    runEverySplit(withBody + raw).forwarded,
    injected(withBody) + raw,
  );
  const connect = "CONNECT foo.example.com:22 HTTP/1.1\r\n" +
    "Host: foo.example.com:22\r\n\r\n";
  assert.equal(
    runEverySplit(connect + "SSH-2.0-x\r\n" + raw).forwarded,
    injected(connect) + "SSH-2.0-x\r\n" + raw,
  );
});

Deno.test("HttpRequestFilter.push() keeps parsing HTTP when Upgrade comes without Connection: upgrade", () => {
  const first = `GET / HTTP/1.1\r\n${HOST}Upgrade: websocket\r\n\r\n`;
  const second = "GET /b HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
  assert.equal(
    run(first + second).forwarded,
    injected(first) +
      `GET /b HTTP/1.1\r\n${INJECTED}X-Old-X-Forwarded-For: 6.6.6.6\r\n\r\n`,
  );
});

// ---------------------------------------------------------------------------
// The S6 smuggling corpus: a checked-in table of inputs and outcomes

interface CorpusEntry {
  name: string;
  input: string;
  /** The refusal status, or undefined when the input is forwarded. */
  status?: 400 | 431;
  /** Exactly what reaches the local service. */
  forwarded: string;
}

const CHUNKED_HEAD =
  `POST /c HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n`;

function refusedHead(name: string, head: string): CorpusEntry {
  return { name, input: head, status: 400, forwarded: "" };
}

/** A chunked body that is refused where it goes wrong. */
function refusedChunked(
  name: string,
  good: string,
  bad: string,
): CorpusEntry {
  return {
    name,
    input: CHUNKED_HEAD + good + bad,
    status: 400,
    forwarded: injected(CHUNKED_HEAD) + good,
  };
}

function accepted(name: string, input: string, forwarded: string): CorpusEntry {
  return { name, input, forwarded };
}

const S6_CORPUS: CorpusEntry[] = [
  // Content-Length and Transfer-Encoding
  refusedHead(
    "CL and TE together",
    `POST / HTTP/1.1\r\n${HOST}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`,
  ),
  refusedHead(
    "TE and CL together",
    `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG`,
  ),
  refusedHead(
    "two different Content-Lengths",
    `POST / HTTP/1.1\r\n${HOST}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
  ),
  refusedHead(
    "two identical Content-Lengths (refused by choice)",
    `POST / HTTP/1.1\r\n${HOST}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`,
  ),
  refusedHead(
    "Content-Length list",
    `POST / HTTP/1.1\r\n${HOST}Content-Length: 5, 5\r\n\r\nhello`,
  ),
  refusedHead(
    "Content-Length with a plus sign",
    `POST / HTTP/1.1\r\n${HOST}Content-Length: +5\r\n\r\nhello`,
  ),
  refusedHead(
    "negative Content-Length",
    `POST / HTTP/1.1\r\n${HOST}Content-Length: -1\r\n\r\n`,
  ),
  refusedHead(
    "hex Content-Length",
    `POST / HTTP/1.1\r\n${HOST}Content-Length: 0x5\r\n\r\nhello`,
  ),
  refusedHead(
    "Content-Length with an inner space",
    `POST / HTTP/1.1\r\n${HOST}Content-Length: 1 0\r\n\r\n`,
  ),
  refusedHead(
    "empty Content-Length",
    `POST / HTTP/1.1\r\n${HOST}Content-Length:\r\n\r\n`,
  ),
  refusedHead(
    "Content-Length beyond 2^53",
    `POST / HTTP/1.1\r\n${HOST}Content-Length: 99999999999999999999\r\n\r\n`,
  ),
  refusedHead(
    "Transfer-Encoding: xchunked",
    `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`,
  ),
  refusedHead(
    "Transfer-Encoding: chunked, identity",
    `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
  ),
  refusedHead(
    "Transfer-Encoding: identity",
    `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: identity\r\n\r\n`,
  ),
  refusedHead(
    "Transfer-Encoding: chunked, chunked",
    `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`,
  ),
  refusedHead(
    "Transfer-Encoding lines ending in identity",
    `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n`,
  ),
  refusedHead(
    "Transfer-Encoding with an empty element",
    `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n`,
  ),
  refusedHead(
    "Transfer-Encoding with a vertical tab",
    `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n`,
  ),
  refusedHead(
    "Transfer-Encoding in an HTTP/1.0 request",
    `POST / HTTP/1.0\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  ),
  // obs-fold
  refusedHead(
    "obs-fold in Transfer-Encoding",
    `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`,
  ),
  refusedHead(
    "obs-fold in Content-Length",
    `POST / HTTP/1.1\r\n${HOST}Content-Length:\r\n\t5\r\n\r\nhello`,
  ),
  refusedHead(
    "obs-fold in another header",
    `GET / HTTP/1.1\r\n${HOST}X-A: b\r\n c\r\n\r\n`,
  ),
  refusedHead(
    "whitespace-led first header line",
    `GET / HTTP/1.1\r\n ${HOST}\r\n`,
  ),
  // Bare CR, NUL, control characters
  refusedHead(
    "bare CR inside a header line",
    `GET / HTTP/1.1\r\nX-A: b\rTransfer-Encoding: chunked\r\n\r\n`,
  ),
  refusedHead(
    "bare CR before CRLF",
    `GET / HTTP/1.1\r\n${HOST.slice(0, -2)}\r\r\n\r\n`,
  ),
  refusedHead(
    "bare CR instead of the blank line",
    `GET / HTTP/1.1\r\n${HOST}\rGET /x HTTP/1.1\r\n\r\n`,
  ),
  refusedHead("bare CR in the request line", `GET /\r HTTP/1.1\r\n\r\n`),
  refusedHead("NUL in a header value", `GET / HTTP/1.1\r\nX-A: b\0c\r\n\r\n`),
  refusedHead("NUL in a header name", `GET / HTTP/1.1\r\nX-\0A: b\r\n\r\n`),
  refusedHead("NUL in the request line", `GET /\0 HTTP/1.1\r\n\r\n`),
  refusedHead(
    "control character in a header value",
    `GET / HTTP/1.1\r\nX-A: b\x01c\r\n\r\n`,
  ),
  refusedHead("DEL in a header value", `GET / HTTP/1.1\r\nX-A: b\x7f\r\n\r\n`),
  // Header names
  refusedHead(
    "space before the colon",
    `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
  ),
  refusedHead(
    "tab before the colon",
    `POST / HTTP/1.1\r\n${HOST}Content-Length\t: 0\r\n\r\n`,
  ),
  refusedHead(
    "space inside a header name",
    `POST / HTTP/1.1\r\n${HOST}Transfer Encoding: chunked\r\n\r\n`,
  ),
  refusedHead("header line without a colon", `GET / HTTP/1.1\r\nX-A b\r\n\r\n`),
  refusedHead("empty header name", `GET / HTTP/1.1\r\n: b\r\n\r\n`),
  refusedHead(
    "two Host headers",
    `GET / HTTP/1.1\r\n${HOST}Host: other.example.com\r\n\r\n`,
  ),
  // Request lines
  refusedHead("HTTP/2 request line", "GET / HTTP/2.0\r\n\r\n"),
  refusedHead("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
  refusedHead("HTTP/0.9 request line", "GET /\r\n\r\n"),
  refusedHead("two spaces in the request line", "GET  / HTTP/1.1\r\n\r\n"),
  refusedHead("tab in the request line", "GET\t/ HTTP/1.1\r\n\r\n"),
  refusedHead("space inside the target", "GET /a b HTTP/1.1\r\n\r\n"),
  refusedHead("lower-case version", "GET / http/1.1\r\n\r\n"),
  refusedHead("trailing space in the request line", "GET / HTTP/1.1 \r\n\r\n"),
  refusedHead("method with a slash", "GE/T / HTTP/1.1\r\n\r\n"),
  // Upgrades
  refusedHead(
    "Upgrade: h2c",
    `GET / HTTP/1.1\r\n${HOST}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
  ),
  refusedHead(
    "Upgrade: h2c without Connection: upgrade",
    `GET / HTTP/1.1\r\n${HOST}Upgrade: websocket, H2C\r\n\r\n`,
  ),
  // Chunked bodies
  refusedChunked("bare LF in a chunk-size line", "", "5\nhello\r\n0\r\n\r\n"),
  refusedChunked(
    "bare LF after the last chunk size",
    "5\r\nhello\r\n",
    "0\n\r\n",
  ),
  refusedChunked("bare LF after a chunk extension", "", "5;a=b\nhello\r\n"),
  refusedChunked("bare CR in a chunk-size line", "", "5\rhello\r\n"),
  refusedChunked("non-hex chunk size", "", "zz\r\n"),
  refusedChunked("0x chunk size", "", "0x5\r\nhello\r\n"),
  refusedChunked("negative chunk size", "", "-5\r\n"),
  refusedChunked("empty chunk size", "", "\r\n"),
  refusedChunked("space before a chunk size", "", " 5\r\nhello\r\n"),
  refusedChunked("space after a chunk size", "", "5 \r\nhello\r\n"),
  refusedChunked("chunk size of 15 hex digits", "", "fffffffffffffff\r\n"),
  refusedChunked("chunk extension without a name", "", "5;\r\nhello\r\n"),
  refusedChunked("chunk extension with a space", "", "5;a b\r\nhello\r\n"),
  refusedChunked("NUL in a chunk extension", "", "5;a=\0\r\nhello\r\n"),
  refusedChunked(
    "chunk data longer than its size",
    "5\r\nhello",
    "X\r\n0\r\n\r\n",
  ),
  refusedChunked(
    "chunk data without its CRLF",
    "5\r\nhello",
    "0\r\n\r\n",
  ),
  refusedChunked("chunk data ending in a bare LF", "5\r\nhello", "\n0\r\n\r\n"),
  refusedChunked("obs-fold in a trailer", "0\r\nX-A: b\r\n", " c\r\n\r\n"),
  refusedChunked("bare LF in a trailer", "0\r\n", "X-A: b\n\r\n"),
  refusedChunked("space before a trailer colon", "0\r\n", "X-A : b\r\n\r\n"),
  // Forwarded correctly
  accepted(
    "pipelined second request with another Host",
    `GET /a HTTP/1.1\r\n${HOST}\r\nGET /b HTTP/1.1\r\nHost: other.example.com\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n`,
    `GET /a HTTP/1.1\r\n${INJECTED}${HOST}\r\nGET /b HTTP/1.1\r\n${INJECTED}Host: other.example.com\r\nX-Old-X-Forwarded-For: 6.6.6.6\r\n\r\n`,
  ),
  accepted(
    "request inside a Content-Length body",
    `POST / HTTP/1.1\r\n${HOST}Content-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n`,
    `POST / HTTP/1.1\r\n${INJECTED}${HOST}Content-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n`,
  ),
  accepted(
    "request inside a chunk",
    `${CHUNKED_HEAD}12\r\nGET / HTTP/1.1\r\n\r\n\r\n0\r\n\r\n`,
    `${injected(CHUNKED_HEAD)}12\r\nGET / HTTP/1.1\r\n\r\n\r\n0\r\n\r\n`,
  ),
  accepted(
    "Transfer-Encoding: gzip, chunked",
    `POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    `POST / HTTP/1.1\r\n${INJECTED}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
  ),
  accepted(
    "Transfer-Encoding lines ending in chunked",
    `POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n`,
    `POST / HTTP/1.1\r\n${INJECTED}Transfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n`,
  ),
  accepted(
    "chunk sizes with leading zeros and upper-case hex",
    `${CHUNKED_HEAD}0005\r\nhello\r\nA\r\n0123456789\r\n00\r\n\r\n`,
    `${injected(CHUNKED_HEAD)}0005\r\nhello\r\nA\r\n0123456789\r\n00\r\n\r\n`,
  ),
  accepted(
    "Content-Length with leading zeros",
    `POST / HTTP/1.1\r\nContent-Length: 005\r\n\r\nhello`,
    `POST / HTTP/1.1\r\n${INJECTED}Content-Length: 005\r\n\r\nhello`,
  ),
  accepted(
    "obs-text and tabs in header values",
    `GET / HTTP/1.1\r\nX-A:\tcaf\xe9 \t\r\n\r\n`,
    `GET / HTTP/1.1\r\n${INJECTED}X-A:\tcaf\xe9 \t\r\n\r\n`,
  ),
  accepted(
    "absolute-form target",
    `GET http://foo.example.com/a?b=c HTTP/1.1\r\n${HOST}\r\n`,
    `GET http://foo.example.com/a?b=c HTTP/1.1\r\n${INJECTED}${HOST}\r\n`,
  ),
];

Deno.test("HttpRequestFilter.push() handles the S6 smuggling corpus as the table says", async (t) => {
  const first = `GET /first HTTP/1.1\r\n${HOST}\r\n`;
  const smuggled = "GET /after HTTP/1.1\r\nHost: evil.example\r\n\r\n";
  for (const entry of S6_CORPUS) {
    await t.step(entry.name, () => {
      const out = runEverySplit(entry.input);
      assert.equal(out.forwarded, entry.forwarded);
      assert.equal(status(out.reply), entry.status ?? null);
      assert.equal(out.close, entry.status !== undefined);
      // Pipelined after a good request: that one passes, this one the same.
      const pipelined = run(first + entry.input);
      assert.equal(pipelined.forwarded, injected(first) + entry.forwarded);
      assert.equal(status(pipelined.reply), entry.status ?? null);
      if (entry.status !== undefined) {
        // Nothing after a refusal is ever forwarded.
        assert.deepEqual(run(entry.input + smuggled), out);
        assert.ok(!out.forwarded.includes("/after"));
      }
    });
  }
});

Deno.test("HttpRequestFilter.push() answers with the shared error pages", () => {
  const refused = run(`GET / HTTP/1.1\r\nX-A : b\r\n\r\n`);
  assert.equal(
    refused.reply,
    text(badRequestPage("whitespace between a header name and its colon")),
  );
  const filter = new HttpRequestFilter(BASE);
  const out = filter.push(latin1("GET / HTTP/1.1\r\nX: \0\r\n\r\n"));
  assert.equal(out.reason, "NUL byte in the request head");
  assert.match(text(out.reply!), /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(text(out.reply!), /\r\nConnection: close\r\n/);
  assert.match(text(out.reply!), /<p>NUL byte in the request head<\/p>/);
});

// ---------------------------------------------------------------------------
// Limits (S5)

Deno.test("HttpRequestFilter.push() takes a head of exactly maxHeadBytes and refuses one byte more with 431", () => {
  const options = { ...BASE, maxHeadBytes: 100 };
  const start = "GET / HTTP/1.1\r\nX-Pad: ";
  const exact = start + "x".repeat(100 - start.length - 4) + "\r\n\r\n";
  assert.equal(exact.length, 100);
  assert.equal(run(exact, options).forwarded, injected(exact));
  const over = start + "x".repeat(100 - start.length - 3) + "\r\n\r\n";
  const out = runEverySplit(over, options);
  assert.deepEqual(out, {
    forwarded: "",
    reply: text(headersTooLargePage("request head larger than 100 bytes")),
    close: true,
  });
});

Deno.test("HttpRequestFilter.push() refuses a trickled head as soon as it crosses maxHeadBytes", () => {
  const filter = new HttpRequestFilter(BASE);
  const line = latin1("GET / HTTP/1.1\r\nX: ");
  assert.deepEqual(filter.push(line), { forward: [] });
  const pad = new Uint8Array(DEFAULT_FILTER_MAX_HEAD_BYTES - line.length).fill(
    0x61,
  );
  assert.deepEqual(filter.push(pad), { forward: [] });
  const out = filter.push(Uint8Array.of(0x61));
  assert.equal(out.close, true);
  assert.equal(status(text(out.reply!)), 431);
});

Deno.test("HttpRequestFilter.push() takes maxHeaders header fields and refuses one more with 431", () => {
  const fields = (n: number) => "X-A: b\r\n".repeat(n);
  const ok = `GET / HTTP/1.1\r\n${fields(DEFAULT_FILTER_MAX_HEADERS)}\r\n`;
  assert.equal(run(ok).forwarded, injected(ok));
  const over = run(
    `GET / HTTP/1.1\r\n${fields(DEFAULT_FILTER_MAX_HEADERS + 1)}\r\n`,
  );
  assert.equal(over.forwarded, "");
  assert.equal(status(over.reply), 431);
  const small = run(`GET / HTTP/1.1\r\n${fields(3)}\r\n`, {
    ...BASE,
    maxHeaders: 2,
  });
  assert.equal(status(small.reply), 431);
});

Deno.test("HttpRequestFilter.push() bounds trailers and chunk-size lines", () => {
  const trailers = `${CHUNKED_HEAD}0\r\n${"X-T: 1\r\n".repeat(3)}\r\n`;
  assert.equal(
    run(trailers, { ...BASE, maxHeaders: 3 }).forwarded,
    injected(trailers),
  );
  const tooMany = run(trailers, { ...BASE, maxHeaders: 2 });
  assert.equal(status(tooMany.reply), 431);
  assert.equal(
    tooMany.forwarded,
    injected(CHUNKED_HEAD) + "0\r\nX-T: 1\r\nX-T: 1\r\n",
  );
  const longTrailer = run(
    `${CHUNKED_HEAD}0\r\nX-T: ${"a".repeat(200)}\r\n\r\n`,
    { ...BASE, maxHeadBytes: 200 },
  );
  assert.equal(status(longTrailer.reply), 431);
  // 4096 bytes of chunk-size line (CRLF included) pass, 4097 do not.
  const ext = (n: number) => `1;e=${"v".repeat(n)}\r\nx\r\n0\r\n\r\n`;
  const fits = CHUNKED_HEAD + ext(4096 - 6);
  assert.equal(run(fits).forwarded, injected(fits));
  const tooLong = run(CHUNKED_HEAD + ext(4096 - 5));
  assert.equal(status(tooLong.reply), 400);
  assert.equal(tooLong.forwarded, injected(CHUNKED_HEAD));
});

// ---------------------------------------------------------------------------
// Basic auth (spec §5.2)

Deno.test("HttpRequestFilter.push() forwards requests with the right Basic credentials", () => {
  const options = {
    ...BASE,
    basicAuth: { user: "bob", password: "pa:ss wörd" },
  };
  const token = new TextEncoder().encode("bob:pa:ss wörd").toBase64();
  for (
    const value of [`Basic ${token}`, `basic  ${token}`, `BASIC ${token} `]
  ) {
    const input = `GET / HTTP/1.1\r\nAuthorization: ${value}\r\n\r\n`;
    assert.deepEqual(run(input, options), {
      forwarded: injected(input),
      reply: null,
      close: false,
    });
  }
});

Deno.test("HttpRequestFilter.push() answers 401 to requests without the right Basic credentials", () => {
  const options = { ...BASE, basicAuth: { user: "bob", password: "secret" } };
  const good = btoa("bob:secret");
  const bad = [
    "",
    `Authorization: Basic ${btoa("bob:wrong")}\r\n`,
    `Authorization: Basic ${btoa("bob:secret2")}\r\n`,
    `Authorization: Basic ${btoa("bob:secre")}\r\n`,
    `Authorization: Basic ${btoa("alice:secret")}\r\n`,
    `Authorization: Bearer ${good}\r\n`,
    `Authorization: Basic\r\n`,
    `Authorization: Basic ${good}!\r\n`,
    `Authorization: Basic ${good}\r\nAuthorization: Basic ${good}\r\n`,
  ];
  for (const header of bad) {
    const out = run(`GET / HTTP/1.1\r\n${header}\r\n`, options);
    assert.deepEqual(
      out,
      { forwarded: "", reply: text(unauthorizedPage()), close: true },
      header,
    );
    assert.match(out.reply!, /\r\nWWW-Authenticate: Basic realm=PageKite\r\n/);
  }
  // Every request of a keep-alive connection is checked.
  const first = `GET /1 HTTP/1.1\r\nAuthorization: Basic ${good}\r\n\r\n`;
  const out = runEverySplit(`${first}GET /2 HTTP/1.1\r\n\r\n`, options);
  assert.deepEqual(out, {
    forwarded: injected(first),
    reply: text(unauthorizedPage()),
    close: true,
  });
});

// ---------------------------------------------------------------------------
// Security filter (spec §5.3)

Deno.test("HttpRequestFilter.push() answers 500 to paths the security filter blocks", () => {
  const options = { ...BASE, requestFilter: true };
  const blocked = [
    "/xampp/",
    "/xampp/phpinfo.php",
    "/admin",
    "/administrator/index.php",
    "/adm",
    "/wp-admin/",
    "/wp-admin",
    "/blog/wp-admin/options.php",
    "/wp-config.php",
    "/blog/wp-config.php.bak",
    "/windows/system32/cmd.exe",
    "/a/../etc/passwd",
    "/a/%2e%2e/etc/passwd",
    "/a/%2E%2E%2Fetc",
    "/a\\..\\b",
    "/.htaccess",
    "/dir/.htpasswd",
    "/phpmyadmin/",
    "/phpMyAdmin-4.9/index.php",
    "/php-my-admin/",
    "/pma/",
    "/myadmin/",
    "/mysqladmin/",
    "/tools/adminer.php",
    "/install.php",
    "/wp/install-helper.php",
    "/setup.php",
    "/app/setup-config.php?step=1",
    "http://foo.example.com/wp-config.php",
    "/WP-CONFIG.PHP",
  ];
  for (const target of blocked) {
    for (const method of ["GET", "POST", "DELETE"]) {
      const out = run(`${method} ${target} HTTP/1.1\r\n${HOST}\r\n`, options);
      assert.deepEqual(
        out,
        { forwarded: "", reply: text(blockedRequestPage()), close: true },
        `${method} ${target}`,
      );
    }
  }
  assert.match(text(blockedRequestPage()), /^HTTP\/1\.1 500 /);
});

Deno.test("HttpRequestFilter.push() lets the security filter pass ordinary paths", () => {
  const options = { ...BASE, requestFilter: true };
  const allowed = [
    "/",
    "/index.php",
    "/wp-admin/admin-ajax.php",
    "/wp-admin/admin-ajax.php?action=x",
    "/wp-admin/css/forms.css",
    "/blog/wp-login.php",
    "/docs/administration",
    "/a/b.c/d",
    "/search?q=../x",
    "/pmail/",
    "/reinstall",
    "*",
  ];
  for (const target of allowed) {
    const input = `OPTIONS ${target} HTTP/1.1\r\n${HOST}\r\n`;
    assert.deepEqual(
      run(input, options),
      { forwarded: injected(input), reply: null, close: false },
      target,
    );
  }
  // Without the option nothing is blocked.
  const input = `GET /wp-config.php HTTP/1.1\r\n${HOST}\r\n`;
  assert.equal(run(input).forwarded, injected(input));
  // CONNECT targets are not paths.
  const connect = "CONNECT admin.example.com:443 HTTP/1.1\r\n\r\n";
  assert.equal(run(connect, options).forwarded, injected(connect));
});

// ---------------------------------------------------------------------------
// Lifecycle and options

Deno.test("HttpRequestFilter.push() returns only close after the stream was refused", () => {
  const filter = new HttpRequestFilter(BASE);
  const out = filter.push(latin1("GET /ok HTTP/1.1\r\n\r\nBAD\r\n\r\n"));
  assert.equal(out.forward.length, 1);
  assert.equal(out.close, true);
  assert.equal(out.reason, 'malformed request line "BAD"');
  for (const more of ["GET / HTTP/1.1\r\n\r\n", ""]) {
    assert.deepEqual(filter.push(latin1(more)), { forward: [], close: true });
  }
});

Deno.test("HttpRequestFilter.push() forwards body bytes as views of the input", () => {
  const filter = new HttpRequestFilter(BASE);
  filter.push(latin1("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"));
  const body = latin1("0123456789");
  const out = filter.push(body);
  assert.equal(out.forward.length, 1);
  assert.equal(out.forward[0]!.buffer, body.buffer);
});

Deno.test("HttpRequestFilter() refuses bad options", () => {
  assert.throws(
    () => new HttpRequestFilter({ ...BASE, publicPort: 65536 }),
    new TypeError(
      "Cannot create HTTP request filter: publicPort 65536 is not a port number",
    ),
  );
  assert.throws(
    () => new HttpRequestFilter({ ...BASE, remotePort: -1 }),
    TypeError,
  );
  assert.throws(
    () => new HttpRequestFilter({ ...BASE, rewriteHost: "a\r\nX-Evil: 1" }),
    TypeError,
  );
  assert.throws(
    () =>
      new HttpRequestFilter({
        ...BASE,
        basicAuth: { user: "a:b", password: "c" },
      }),
    TypeError,
  );
  assert.throws(
    () =>
      new HttpRequestFilter({
        ...BASE,
        basicAuth: { user: "a", password: "c\n" },
      }),
    TypeError,
  );
  for (const limit of [0, -1, 1.5, NaN]) {
    assert.throws(
      () => new HttpRequestFilter({ ...BASE, maxHeadBytes: limit }),
      RangeError,
    );
    assert.throws(
      () => new HttpRequestFilter({ ...BASE, maxHeaders: limit }),
      RangeError,
    );
  }
});

// ---------------------------------------------------------------------------
// Properties (fast-check, fixed seed)

const RENAMED = new Set([
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-port",
  "x-forwarded-host",
  "x-pagekite-for",
  "x-pagekite-proto",
  "x-pagekite-port",
  "forwarded",
  "x-real-ip",
]);

const VALUE_CHARS = " \t!\"#$%&'()*+,-./0123456789:;<=>?@AZaz[\\]^_`{|}~\xe9";
const anyValue = fc.string({
  unit: fc.constantFrom(...VALUE_CHARS),
  maxLength: 12,
});
const anyName = fc.constantFrom(
  "Accept",
  "User-Agent",
  "X-Test",
  "Cookie",
  "X-Forwarded-For",
  "x-forwarded-proto",
  "X-PageKite-Port",
  "X-PageKite-For",
  "Forwarded",
);
const anyField = fc.tuple(anyName, fc.constantFrom(":", ": ", ":\t"), anyValue)
  .map(([name, colon, value]) => `${name}${colon}${value}`);
const anyBytes = (max: number) =>
  fc.uint8Array({ maxLength: max }).map((b) => text(b));
const anyChunk = fc.record({
  data: fc.uint8Array({ minLength: 1, maxLength: 20 }).map((b) => text(b)),
  zeros: fc.nat(2),
  upper: fc.boolean(),
  ext: fc.constantFrom("", ";a", ";a=b", ' ; q="x y"'),
});
const anyBody = fc.oneof(
  fc.constant({ kind: "none" as const }),
  anyBytes(40).map((data) => ({ kind: "length" as const, data })),
  fc.record({
    kind: fc.constant("chunked" as const),
    chunks: fc.array(anyChunk, { maxLength: 4 }),
    trailers: fc.array(anyField, { maxLength: 2 }),
  }),
);
const anyRequest = fc.record({
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"),
  target: fc.constantFrom("/", "/a", "/a/b?c=d", "*", "http://x.example/y"),
  version: fc.constantFrom("HTTP/1.1", "HTTP/1.0"),
  host: fc.boolean(),
  fields: fc.array(anyField, { maxLength: 5 }),
  body: anyBody,
  eol: fc.constantFrom("\r\n", "\n"),
});
const anyStream = fc.record({
  requests: fc.array(anyRequest, { minLength: 1, maxLength: 4 }),
  raw: fc.option(anyBytes(30), { nil: undefined }),
});

type AnyStream = typeof anyStream extends fc.Arbitrary<infer T> ? T : never;

/** The stream's bytes, and what the local service must receive. */
function model(stream: AnyStream): { input: string; expected: string } {
  let input = "";
  let expected = "";
  const requests = [...stream.requests];
  for (const [i, r] of requests.entries()) {
    const upgrade = i === requests.length - 1 && stream.raw !== undefined;
    const fields = [...r.fields];
    if (r.host) fields.unshift("Host: foo.example.com");
    if (upgrade) fields.push("Upgrade: websocket", "Connection: Upgrade");
    let body = "";
    const body0 = r.version === "HTTP/1.0" && r.body.kind === "chunked"
      ? { kind: "none" as const }
      : r.body;
    if (body0.kind === "length") {
      fields.push(`Content-Length: ${body0.data.length}`);
      body = body0.data;
    } else if (body0.kind === "chunked") {
      fields.push("Transfer-Encoding: chunked");
      for (const c of body0.chunks) {
        let size = c.data.length.toString(16);
        if (c.upper) size = size.toUpperCase();
        body += `${"0".repeat(c.zeros)}${size}${c.ext}\r\n${c.data}\r\n`;
      }
      body += `0\r\n${body0.trailers.map((t) => `${t}\r\n`).join("")}\r\n`;
    }
    const line = `${r.method} ${r.target} ${r.version}`;
    input += `${line}${r.eol}${fields.map((f) => f + r.eol).join("")}${r.eol}` +
      body;
    expected += `${line}\r\n${INJECTED}`;
    for (const f of fields) {
      const name = f.slice(0, f.indexOf(":")).toLowerCase();
      expected += `${RENAMED.has(name) ? "X-Old-" : ""}${f}\r\n`;
    }
    expected += `\r\n${body}`;
  }
  if (stream.raw !== undefined) {
    input += stream.raw;
    expected += stream.raw;
  }
  return { input, expected };
}

const cuts = fc.array(fc.nat(), { maxLength: 8 });

Deno.test("HttpRequestFilter.push() forwards generated keep-alive streams as the model says, however split", () => {
  fc.assert(
    fc.property(anyStream, cuts, (stream, at) => {
      const { input, expected } = model(stream);
      assert.deepEqual(feed(split(latin1(input), at)), {
        forwarded: expected,
        reply: null,
        close: false,
      });
    }),
    { seed: 42, numRuns: 1000 },
  );
});

const MUTATION_BYTES = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x2c, 0x30, 0x3a, 0x3b];
const anyMutation = fc.record({
  at: fc.nat(),
  byte: fc.oneof(
    fc.constantFrom(...MUTATION_BYTES),
    fc.integer({ min: 0, max: 255 }),
  ),
  remove: fc.boolean(),
});

Deno.test("HttpRequestFilter.push() output does not depend on the split, even for broken input", () => {
  fc.assert(
    fc.property(
      anyStream,
      fc.array(anyMutation, { minLength: 1, maxLength: 3 }),
      cuts,
      (stream, mutations, at) => {
        const bytes = [...latin1(model(stream).input)];
        for (const m of mutations) {
          const i = m.at % (bytes.length + 1);
          if (m.remove && i < bytes.length) bytes.splice(i, 1);
          else bytes.splice(i, 0, m.byte);
        }
        const input = Uint8Array.from(bytes);
        const whole = feed([input]);
        assert.deepEqual(feed(split(input, at)), whole);
        if (whole.close) assert.ok([400, 431].includes(status(whole.reply)!));
      },
    ),
    { seed: 42, numRuns: 1000 },
  );
});
