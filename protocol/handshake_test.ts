// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeLatin1 } from "./_latin1.ts";
import { ProtocolError, ProtocolLimitError } from "./errors.ts";
import {
  decodeTunnelRequest,
  decodeTunnelResponse,
  encodeTunnelRequest,
  encodeTunnelResponse,
  findHandshakeEnd,
  kiteRequestHeaders,
  kiteResponseHeaders,
  type KiteResult,
  parseKiteRequestHeaders,
  parseKiteResponseHeaders,
  TunnelRefusedError,
  type TunnelRequest,
  type TunnelResponse,
} from "./handshake.ts";
import {
  checkKiteSignature,
  formatKiteName,
  type KiteName,
  type KiteRequest,
  kiteSignaturePayload,
  signKiteRequest,
} from "./kite.ts";

// --- helpers ---------------------------------------------------------------

function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

function text(bytes: Uint8Array): string {
  return decodeLatin1(bytes);
}

/** One line per result, in the spelling of the wire. */
function describe(result: KiteResult): string {
  switch (result.status) {
    case "ok":
      return `OK ${formatKiteName(result)}${result.tls ? " +SSL-OK" : ""}`;
    case "sign-this":
      return `SignThis ${kiteSignaturePayload(result)}`;
    case "invalid":
      return `Invalid ${formatKiteName(result)}${
        result.reason === undefined ? "" : ";" + result.reason
      }`;
    case "duplicate":
      return `Duplicate ${formatKiteName(result)}`;
  }
}

function assertThrowsWith<E extends Error>(
  fn: () => unknown,
  type: new (...args: never[]) => E,
  message: string | RegExp,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof type, `got ${error}`);
    if (typeof message === "string") assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

// --- captures --------------------------------------------------------------

interface TunnelCapture {
  /** `file#conn`. */
  name: string;
  /** Connector → relay bytes, as Latin-1 text. */
  up: string;
  /** Relay → connector bytes, as Latin-1 text. */
  down: string;
}

async function loadTunnelCaptures(): Promise<TunnelCapture[]> {
  const dir = new URL("./testdata/captures/", import.meta.url);
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".jsonl")) files.push(entry.name);
  }
  const captures: TunnelCapture[] = [];
  for (const file of files.sort()) {
    const conns = new Map<number, { up: string; down: string }>();
    const rows = (await Deno.readTextFile(new URL(file, dir))).split("\n");
    for (const row of rows) {
      if (row.trim() === "") continue;
      const { conn, dir: direction, data } = JSON.parse(row) as {
        conn: number;
        dir: string;
        data?: string;
      };
      const entry = conns.get(conn) ?? { up: "", down: "" };
      conns.set(conn, entry);
      if (direction === "C>S") entry.up += data ?? "";
      if (direction === "S>C") entry.down += data ?? "";
    }
    for (const [conn, { up, down }] of conns) {
      if (up.startsWith("CONNECT PageKite:1")) {
        captures.push({ name: `${file}#${conn}`, up, down });
      }
    }
  }
  return captures;
}

/** The head at the start of `data`, blank line included. */
function headOf(data: string): string {
  return data.slice(0, data.indexOf("\r\n\r\n") + 4);
}

/**
 * Header blocks of NOOP chunks that carry PageKite lines, found as text
 * (without a chunk decoder): from `NOOP: 1\r\n` up to the blank line.
 */
function noopHeaderBlocks(data: string): [string, string][][] {
  const blocks: [string, string][][] = [];
  for (
    let start = data.indexOf("NOOP: 1\r\n");
    start !== -1;
    start = data.indexOf("NOOP: 1\r\n", start + 1)
  ) {
    const end = data.indexOf("\r\n\r\n", start);
    const headers = data.slice(start, end).split("\r\n").map(
      (line): [string, string] => {
        const colon = line.indexOf(":");
        return [line.slice(0, colon), line.slice(colon + 1).trim()];
      },
    );
    if (headers.some(([name]) => name.startsWith("X-PageKite"))) {
      blocks.push(headers);
    }
  }
  return blocks;
}

const SALT_A_DEBIAN = "316e1eb413a70f38cab467ce0b6faa78f41f";
const SALT_A = "c990ad69466a150816bf368f7add0dd750e6";
const SALT_B = "514901fe466473f80c02084c5dbd5a450025";
const SALT_C_FOO = "e3045d4f3ed3f9bc12d62591d5dc5435ae9c";
const SALT_C_OTHER = "11ccef4693ca672bbbf4a537b7d042593cf7";
const SALT_C_UNKNOWN = "e0ef9e15a5c99db0bfbdd7ca53f7c75c7b0b";
const SALT_C_SECOND = "5eecd2f15bea173f73dfef8a5a8e8ef34832";
const SALT_D = "f89068415e04dbc0dea175414c4ffac64e64";
const SALT_F_HTTP = "454754cc93c85048521a74b491186fdd6cc7";
const SALT_F_RAW = "9280398319752c19eb4bc60356fe7675e119";

const B_KITES = [
  ["http:foo.example.com", "tff11a1290049e598b075d88eb360730a42d"],
  ["raw-2222:ssh.example.com", "t1bc210871208bc0a20118b0233c00dfe766"],
  ["https:secure.example.com", "tbb6f39a3de31c89113e1dcd1b5253c688be"],
  ["http:*.wild.example.com", "t1eb5abb22753681da063eb659c358b04ff5"],
  ["http:down.example.com", "te8e2360225fd12cb4269d48f82a2438fca7"],
].map(([name, token]) => ({ name: `${name}:${SALT_B}`, token: token! }));

const C_KITES = [
  [
    `http:foo.example.com:${SALT_C_FOO}`,
    "t9dbc11c8ea0727529d20328c5c7817dfd34",
  ],
  [
    `http:other.example.com:${SALT_C_OTHER}`,
    "tec504ba57f037d1ea55fa6941c8efebedad",
  ],
  [
    `http:unknown.example.com:${SALT_C_UNKNOWN}`,
    "tda1e15a91eaba375f815dd7b3a6b091452f",
  ],
  [
    `http-8888:foo.example.com:${SALT_C_FOO}`,
    "t03355e7d085d39b407328640cc392d3688d",
  ],
  [
    `gopher:foo.example.com:${SALT_C_FOO}`,
    "t237aad11b5712f95c3f4623c343198a5cec",
  ],
].map(([name, token]) => ({ name: name!, token: token! }));

const D_KITES = [
  [
    `http:foo.quota.example.com:${SALT_D}`,
    "t98573dbe39fba5f082f5530505ea5183a9a",
  ],
  [
    `http:broke.quota.example.com:${SALT_D}`,
    "tcabf8df6657ef2f17dc01d8edf9d5056ec5",
  ],
].map(([name, token]) => ({ name: name!, token: token! }));

const F_KITES = [
  [
    `http:foo.example.com:${SALT_F_HTTP}`,
    "t1c5d0e4dbb00f11076567e281267f58136c",
  ],
  [
    `raw-2222:ssh.example.com:${SALT_F_RAW}`,
    "tc9c6504befcd18e8b92fdf4171bdd963e6d",
  ],
].map(([name, token]) => ({ name: name!, token: token! }));

interface TunnelExpectation {
  features: string[];
  version: string;
  replace?: string;
  /** Secret that signed the kites; `invalid` lists kites signed otherwise. */
  secret: string;
  badSignatures?: string[];
  /** `kiteSignaturePayload()` of each kite line of the request head. */
  kites: string[];
  /** Results of the response head. */
  results: string[];
  /** Kite lines sent in NOOP chunks, and the NOOP answers. */
  noopKites?: string[];
  noopResults?: string[];
  /** Other fields of the response head. */
  response: Partial<TunnelResponse>;
  /** Whether encodeTunnelRequest() reproduces the request head exactly. */
  exactRequest: boolean;
}

const PY_RESPONSE = {
  features: ["ZChunks", "WebSockets", "AddKites"],
  protos: [
    "http",
    "http2",
    "http3",
    "https",
    "websocket",
    "irc",
    "raw",
    "minecraft",
    "xmpp",
  ],
  ports: [18080],
  prefix: "X-PageKite",
  motd: "",
} as const satisfies Partial<TunnelResponse>;

/** What the transcripts of spec §8 show for each tunnel connection. */
const EXPECTED: Record<string, TunnelExpectation> = {
  "a-debian-default.jsonl#3": {
    features: ["AddKites", "ZChunks"],
    version: "1.5.2.201011",
    secret: "testsecret",
    kites: [`http:foo.example.com:${SALT_A_DEBIAN}:`],
    results: [
      `SignThis http:foo.example.com:${SALT_A_DEBIAN}:t7bf846dc122da98b1f324a6fe43eb048528`,
    ],
    noopKites: [
      `http:foo.example.com:${SALT_A_DEBIAN}:t7bf846dc122da98b1f324a6fe43eb048528`,
    ],
    noopResults: [`OK http:foo.example.com:${SALT_A_DEBIAN}`],
    response: {
      ...PY_RESPONSE,
      protos: PY_RESPONSE.protos.filter((proto) => proto !== "minecraft"),
      sessionId: "6b022fe6:691293b598bd3c778df4dfb5ad932fc99a3ccfb0",
    },
    exactRequest: true,
  },
  "a-upstream-default.jsonl#3": {
    features: ["AddKites", "ZChunks"],
    version: "1.5.2.260113",
    secret: "testsecret",
    kites: [`http:foo.example.com:${SALT_A}:`],
    results: [
      `SignThis http:foo.example.com:${SALT_A}:t593f57992bc64b84fd20d144cdb8f508d76`,
    ],
    noopKites: [
      `http:foo.example.com:${SALT_A}:t593f57992bc64b84fd20d144cdb8f508d76`,
    ],
    noopResults: [`OK http:foo.example.com:${SALT_A}`],
    response: {
      ...PY_RESPONSE,
      sessionId: "6b023419:2193a1edd18d7a30e8de1dd0752688f3d0d0bd5f",
    },
    exactRequest: true,
  },
  "b-upstream-nozchunks-many-kites.jsonl#3": {
    features: ["AddKites"],
    version: "1.5.2.260113",
    secret: "testsecret",
    kites: B_KITES.map(({ name }) => `${name}:`),
    results: B_KITES.map(({ name, token }) => `SignThis ${name}:${token}`),
    response: {
      ...PY_RESPONSE,
      rawPorts: ["virtual"],
      sessionId: "6b023070:062f870a2b1d45d6c32fd5e244f75775a2444aba",
    },
    exactRequest: false, // --nozchunks: one feature, but the version twice
  },
  "b-upstream-nozchunks-many-kites.jsonl#4": {
    features: ["AddKites"],
    version: "1.5.2.260113",
    replace: "6b023070:062f870a2b1d45d6c32fd5e244f75775a2444aba",
    secret: "testsecret",
    kites: B_KITES.map(({ name, token }) => `${name}:${token}`),
    results: B_KITES.map(({ name }) => `OK ${name}`),
    response: {
      ...PY_RESPONSE,
      rawPorts: ["virtual"],
      sessionId: "6b023071:042966a790659c0ee5477455cda62126bd89e959",
    },
    exactRequest: false,
  },
  "c-rejections-duplicate.jsonl#3": {
    features: ["AddKites", "ZChunks"],
    version: "1.5.2.260113",
    secret: "testsecret",
    badSignatures: ["other.example.com", "unknown.example.com"],
    kites: C_KITES.map(({ name }) => `${name}:`),
    results: C_KITES.map(({ name, token }) => `SignThis ${name}:${token}`),
    noopKites: C_KITES.map(({ name, token }) => `${name}:${token}`),
    noopResults: [
      `OK http:foo.example.com:${SALT_C_FOO}`,
      `Invalid http:other.example.com:${SALT_C_OTHER};signature`,
      `Invalid http:unknown.example.com:${SALT_C_UNKNOWN};unauthorized`,
      `Invalid http-8888:foo.example.com:${SALT_C_FOO};port`,
      `Invalid gopher:foo.example.com:${SALT_C_FOO};proto`,
    ],
    response: {
      ...PY_RESPONSE,
      sessionId: "6b0230e5:89eb938920cf7a4cdca8054ec62b27ead2180738",
    },
    exactRequest: true,
  },
  "c-rejections-duplicate.jsonl#6": {
    features: ["AddKites", "ZChunks"],
    version: "1.5.2.260113",
    secret: "testsecret",
    kites: [`http:foo.example.com:${SALT_C_SECOND}:`],
    results: [
      `SignThis http:foo.example.com:${SALT_C_SECOND}:t19c8f9f2c8303a68d5184946ac3e6736273`,
    ],
    noopKites: [
      `http:foo.example.com:${SALT_C_SECOND}:t19c8f9f2c8303a68d5184946ac3e6736273`,
    ],
    noopResults: [`Duplicate http:foo.example.com:${SALT_C_SECOND}`],
    response: {
      ...PY_RESPONSE,
      sessionId: "6b0230eb:f5758571ee80747dfc1d02e6d557c3464bc23aec",
    },
    exactRequest: true,
  },
  "d-authapp-quota-motd.jsonl#3": {
    features: ["AddKites"],
    version: "1.5.2.260113",
    secret: "quotasecret",
    kites: D_KITES.map(({ name }) => `${name}:`),
    results: D_KITES.map(({ name, token }) => `SignThis ${name}:${token}`),
    response: {
      ...PY_RESPONSE,
      sessionId: "6b023119:c2b6acdb2f49cf70fee25d36d4247f69afe8d0ef",
      motd: "Welcome to the test relay",
    },
    exactRequest: false,
  },
  "d-authapp-quota-motd.jsonl#4": {
    features: ["AddKites"],
    version: "1.5.2.260113",
    replace: "6b023119:c2b6acdb2f49cf70fee25d36d4247f69afe8d0ef",
    secret: "quotasecret",
    kites: D_KITES.map(({ name, token }) => `${name}:${token}`),
    results: [
      `OK ${D_KITES[0]!.name} +SSL-OK`,
      `Invalid ${D_KITES[1]!.name};noquota`,
    ],
    response: {
      ...PY_RESPONSE,
      sessionId: "6b02311a:cdd3a5d3134632c5e936c69e5f12c28e1d43b0b1",
      motd: "Welcome to the test relay",
      qConns: 5,
      qDays: 24,
      ipsPerSec: { ips: 3, seconds: 60 },
      quota: 10240,
    },
    exactRequest: false,
  },
  "f-libpagekite-pagekitec.jsonl#3": {
    features: [],
    version: "0.91.251215C",
    secret: "testsecret",
    kites: F_KITES.map(({ name }) => `${name}:`),
    results: F_KITES.map(({ name, token }) => `SignThis ${name}:${token}`),
    response: {
      ...PY_RESPONSE,
      rawPorts: ["virtual"],
      sessionId: "6b023192:f9cd5457027bfcd82ad70a17e1863a7d7d5b1c87",
    },
    exactRequest: true,
  },
  "f-libpagekite-pagekitec.jsonl#4": {
    features: [],
    version: "0.91.251215C",
    replace: "6b023192:f9cd5457027bfcd82ad70a17e1863a7d7d5b1c87",
    secret: "testsecret",
    kites: F_KITES.map(({ name, token }) => `${name}:${token}`),
    results: F_KITES.map(({ name }) => `OK ${name}`),
    response: {
      ...PY_RESPONSE,
      rawPorts: ["virtual"],
      sessionId: "6b023193:6dafa1fcabab6c931aeee01aa94a06fd0152be4d",
    },
    exactRequest: true,
  },
};

const CAPTURES = await loadTunnelCaptures();

Deno.test("the captures hold every tunnel connection of spec §8", () => {
  assert.deepEqual(
    CAPTURES.map(({ name }) => name).sort(),
    Object.keys(EXPECTED).sort(),
  );
});

Deno.test("decodeTunnelRequest() reads every captured tunnel request", async (t) => {
  for (const capture of CAPTURES) {
    await t.step(capture.name, async () => {
      const expected = EXPECTED[capture.name]!;
      const request = decodeTunnelRequest(latin1(capture.up));
      assert.deepEqual(request.features, expected.features);
      assert.equal(request.version, expected.version);
      assert.equal(request.replace, expected.replace);
      assert.equal(request.prefix, "X-PageKite");
      assert.deepEqual(request.kites.map(kiteSignaturePayload), expected.kites);
      for (const kite of request.kites) {
        assert.equal(
          await checkKiteSignature(kite, expected.secret),
          !expected.badSignatures?.includes(kite.domain),
          `signature of ${kiteSignaturePayload(kite)}`,
        );
      }
    });
  }
});

Deno.test("decodeTunnelResponse() reads every captured tunnel response", async (t) => {
  for (const capture of CAPTURES) {
    await t.step(capture.name, () => {
      const expected = EXPECTED[capture.name]!;
      // The chunk stream that follows the head is ignored.
      const response = decodeTunnelResponse(latin1(capture.down));
      assert.deepEqual(response.results.map(describe), expected.results);
      const { results: _, ...rest } = response;
      assert.deepEqual(rest, expected.response);
    });
  }
});

Deno.test("parseKiteRequestHeaders() reads the kite lines of captured NOOP chunks", async (t) => {
  for (const capture of CAPTURES) {
    await t.step(capture.name, async () => {
      const expected = EXPECTED[capture.name]!;
      const blocks = noopHeaderBlocks(capture.up);
      const kites = blocks.flatMap((headers) =>
        parseKiteRequestHeaders(headers).kites
      );
      assert.deepEqual(
        kites.map(kiteSignaturePayload),
        expected.noopKites ?? [],
      );
      for (const headers of blocks) {
        assert.equal(
          parseKiteRequestHeaders(headers).version,
          expected.version,
        );
      }
      for (const kite of kites) {
        assert.equal(
          await checkKiteSignature(kite, expected.secret),
          !expected.badSignatures?.includes(kite.domain),
          `signature of ${kiteSignaturePayload(kite)}`,
        );
      }
    });
  }
});

Deno.test("parseKiteResponseHeaders() reads the results of captured NOOP chunks", async (t) => {
  for (const capture of CAPTURES) {
    await t.step(capture.name, () => {
      const expected = EXPECTED[capture.name]!;
      const blocks = noopHeaderBlocks(capture.down);
      const responses = blocks.map((headers) =>
        parseKiteResponseHeaders(headers)
      );
      assert.deepEqual(
        responses.flatMap(({ results }) => results.map(describe)),
        expected.noopResults ?? [],
      );
      for (const response of responses) {
        assert.match(response.sessionId ?? "", /^[0-9a-f]{8}:[0-9a-f]{40}$/);
        assert.equal(response.motd, "");
        assert.deepEqual(response.features, []);
        assert.equal(response.protos, undefined);
      }
    });
  }
});

Deno.test("encodeTunnelResponse() reproduces every captured response head byte for byte", async (t) => {
  for (const capture of CAPTURES) {
    await t.step(capture.name, () => {
      const head = headOf(capture.down);
      assert.equal(
        text(encodeTunnelResponse(decodeTunnelResponse(latin1(head)))),
        head,
      );
    });
  }
});

Deno.test("encodeTunnelRequest() reproduces the captured requests of pagekite.py and libpagekite", async (t) => {
  for (const capture of CAPTURES) {
    await t.step(capture.name, () => {
      const head = headOf(capture.up);
      const request = decodeTunnelRequest(latin1(head));
      const encoded = encodeTunnelRequest(request);
      if (EXPECTED[capture.name]!.exactRequest) {
        assert.equal(text(encoded), head);
      } else {
        assert.notEqual(text(encoded), head);
        assert.deepEqual(decodeTunnelRequest(encoded), request);
      }
    });
  }
});

Deno.test("kiteRequestHeaders() and kiteResponseHeaders() reproduce captured NOOP chunks", async (t) => {
  for (const capture of CAPTURES) {
    await t.step(capture.name, () => {
      for (const headers of noopHeaderBlocks(capture.up)) {
        assert.deepEqual(
          kiteRequestHeaders(parseKiteRequestHeaders(headers)),
          headers.slice(1), // without "NOOP: 1"
        );
      }
      for (const headers of noopHeaderBlocks(capture.down)) {
        assert.deepEqual(
          kiteResponseHeaders(parseKiteResponseHeaders(headers)),
          headers.slice(1),
        );
      }
    });
  }
});

Deno.test("findHandshakeEnd() finds a captured head split at every byte", () => {
  const capture = CAPTURES.find(({ name }) => name.startsWith("a-upstream"))!;
  const bytes = latin1(capture.down);
  const length = headOf(capture.down).length;
  for (let end = 0; end <= bytes.length; end++) {
    assert.equal(
      findHandshakeEnd(bytes.subarray(0, end)),
      end < length ? -1 : length,
      `at ${end}`,
    );
  }
  assert.equal(findHandshakeEnd(latin1("HTTP/1.1 200 OK\n\nabc")), 17);
});

// --- vectors and hand-written heads ----------------------------------------

const V8 = "CONNECT PageKite:1 HTTP/1.0\r\n" +
  "X-PageKite-Features: AddKites\r\n" +
  "X-PageKite-Version: 1.5.2.260113\r\n" +
  "X-PageKite-Features: ZChunks\r\n" +
  "X-PageKite-Version: 1.5.2.260113\r\n" +
  "X-PageKite: http:foo.example.com:893f4f1d98e17a28ae3d6fb3f2cd83765514::1a2b3c4dc2b387e8425d334d449d20c63771\r\n" +
  "\r\n";

Deno.test("encodeTunnelRequest() reproduces vector V8 byte for byte", async () => {
  const kite = await signKiteRequest(
    {
      proto: "http",
      domain: "foo.example.com",
      salt: "893f4f1d98e17a28ae3d6fb3f2cd83765514",
    },
    "testsecret",
    { salt: "1a2b3c4d" },
  );
  const bytes = encodeTunnelRequest({
    features: ["AddKites", "ZChunks"],
    version: "1.5.2.260113",
    kites: [kite],
  });
  assert.deepEqual(bytes, latin1(V8));
  assert.deepEqual(decodeTunnelRequest(bytes), {
    kites: [kite],
    features: ["AddKites", "ZChunks"],
    version: "1.5.2.260113",
    prefix: "X-PageKite",
  });
});

const KITE_LINE = "X-PageKite: http:foo.example.com:abc::1a2b3c4d0000\r\n";

Deno.test("decodeTunnelRequest() accepts X-Beanstalk, any case, LF line ends and unknown headers", () => {
  const request = decodeTunnelRequest(latin1(
    "CONNECT pagekite:1 HTTP/1.1\n" +
      "Host: relay.example.com\n" +
      "x-beanstalk-features: AddKites\n" +
      "X-BEANSTALK-VERSION: 0.1\n" +
      "X-Beanstalk-Version: 0.2\n" +
      "x-beanstalk-replace:   6b023070:062f  \n" +
      "X-PageKite-Features: ZChunks\n" +
      "X-Beanstalk:HTTP-8080:Foo.Example.com:abc::sig\n" +
      "X-PageKite-Unknown: 1\n" +
      "\n",
  ));
  assert.deepEqual(request, {
    kites: [{
      proto: "http",
      port: 8080,
      domain: "foo.example.com",
      salt: "abc",
      token: "",
      signature: "sig",
    }],
    features: ["AddKites", "ZChunks"],
    version: "0.2",
    replace: "6b023070:062f",
    prefix: "X-Beanstalk",
  });
});

Deno.test("encodeTunnelRequest() writes the prefix it is given", () => {
  const request: TunnelRequest = {
    kites: [{
      proto: "http",
      domain: "foo.example.com",
      salt: "abc",
      token: "",
      signature: "x",
    }],
    features: ["AddKites"],
    version: "1",
    replace: "6b:0",
    prefix: "X-Beanstalk",
  };
  assert.equal(
    text(encodeTunnelRequest(request)),
    "CONNECT PageKite:1 HTTP/1.0\r\n" +
      "X-Beanstalk-Features: AddKites\r\nX-Beanstalk-Version: 1\r\n" +
      "X-Beanstalk-Replace: 6b:0\r\n" +
      "X-Beanstalk: http:foo.example.com:abc::x\r\n\r\n",
  );
  assert.deepEqual(
    text(encodeTunnelRequest({ kites: request.kites })),
    "CONNECT PageKite:1 HTTP/1.0\r\nX-PageKite: http:foo.example.com:abc::x\r\n\r\n",
  );
});

Deno.test("decodeTunnelRequest() rejects what is not a tunnel request", () => {
  const lines = [
    "GET / HTTP/1.1",
    "CONNECT foo.example.com:443 HTTP/1.1",
    "CONNECT PageKite:1 HTTP/2",
    "CONNECT PageKite:1",
    "CONNECT  PageKite:1 HTTP/1.0",
    "connect PageKite:1 HTTP/1.0",
    "HEAD /ping HTTP/1.1",
  ];
  for (const line of lines) {
    assertThrowsWith(
      () => decodeTunnelRequest(latin1(`${line}\r\n${KITE_LINE}\r\n`)),
      ProtocolError,
      `Cannot decode tunnel request: request line is not "CONNECT PageKite:<n> HTTP/1.x": ${
        JSON.stringify(line)
      }`,
    );
  }
  assertThrowsWith(
    () =>
      decodeTunnelRequest(
        latin1("CONNECT PageKite:1 HTTP/1.0\r\nX-PageKite-Version: 1\r\n\r\n"),
      ),
    ProtocolError,
    "Cannot decode tunnel request: there is no X-PageKite kite line",
  );
  assertThrowsWith(
    () =>
      decodeTunnelRequest(
        latin1(`CONNECT PageKite:1 HTTP/1.0\r\n${KITE_LINE}`),
      ),
    ProtocolError,
    "Cannot decode tunnel request: head is incomplete, no blank line yet",
  );
  assertThrowsWith(
    () =>
      decodeTunnelRequest(
        latin1(`CONNECT PageKite:1 HTTP/1.0\r\nbroken line\r\n\r\n`),
      ),
    ProtocolError,
    /^Cannot parse tunnel request: header line at byte 29 has no name and colon/,
  );
});

Deno.test("decodeTunnelRequest() rejects malformed kite lines", () => {
  const cases: [string, string | RegExp][] = [
    [
      "http:foo.example.com:abc:sig",
      'Cannot parse kite request: expected 5 colon-separated fields, got 4: "http:foo.example.com:abc:sig"',
    ],
    [
      "http:foo.example.com:80:abc::sig",
      /^Cannot parse kite request: expected 5 colon-separated fields, got 6: /,
    ],
    [
      "http-http:foo.example.com:abc::sig",
      /^Cannot parse kite request: port "http" is not a decimal number in 1\.\.65535: /,
    ],
    [
      "http-70000:foo.example.com:abc::sig",
      /^Cannot parse kite request: port "70000" is not a decimal number in 1\.\.65535: /,
    ],
    ["http::abc::sig", "Cannot parse kite request: domain is empty"],
  ];
  for (const [value, message] of cases) {
    for (const prefix of ["X-PageKite", "X-Beanstalk"]) {
      assertThrowsWith(
        () =>
          decodeTunnelRequest(
            latin1(
              `CONNECT PageKite:1 HTTP/1.0\r\n${prefix}: ${value}\r\n\r\n`,
            ),
          ),
        ProtocolError,
        message,
      );
    }
    assertThrowsWith(
      () => parseKiteRequestHeaders([["NOOP", "1"], ["X-PageKite", value]]),
      ProtocolError,
      message,
    );
  }
});

Deno.test("decodeTunnelRequest() accepts many kites within the default limits", () => {
  const kites: KiteRequest[] = Array.from({ length: 400 }, (_, i) => ({
    proto: "http",
    port: 1 + i,
    domain: `kite-${i}.example.com`,
    salt: "514901fe466473f80c02084c5dbd5a450025",
    token: "tff11a1290049e598b075d88eb360730a42d",
    signature: "1cfc849eff603bfd1c796261f343a528d406",
  }));
  const bytes = encodeTunnelRequest({ kites, version: "1" });
  assert.ok(bytes.length > 50_000);
  assert.deepEqual(decodeTunnelRequest(bytes).kites, kites);
  assert.equal(findHandshakeEnd(bytes), bytes.length);
});

Deno.test("decodeTunnelRequest() enforces maxHeadBytes and maxHeaders", () => {
  const kites: KiteRequest[] = Array.from({ length: 10 }, (_, i) => ({
    proto: "http",
    domain: `kite-${i}.example.com`,
    salt: "abc",
    token: "",
    signature: "x",
  }));
  const bytes = encodeTunnelRequest({ kites });
  assert.equal(decodeTunnelRequest(bytes, { maxHeaders: 10 }).kites.length, 10);
  assertThrowsWith(
    () => decodeTunnelRequest(bytes, { maxHeaders: 9 }),
    ProtocolLimitError,
    "Cannot parse tunnel request: more than 9 header lines",
  );
  assertThrowsWith(
    () => findHandshakeEnd(bytes, { maxHeaders: 8 }),
    ProtocolLimitError,
    "Cannot parse handshake: more than 8 header lines",
  );
  assert.equal(
    decodeTunnelRequest(bytes, { maxHeadBytes: bytes.length }).kites.length,
    10,
  );
  assertThrowsWith(
    () => decodeTunnelRequest(bytes, { maxHeadBytes: bytes.length - 1 }),
    ProtocolLimitError,
    `Cannot parse tunnel request: no blank line within maxHeadBytes ${
      bytes.length - 1
    }`,
  );
  // A hostile peer is stopped before the head is complete.
  const endless = latin1(
    "CONNECT PageKite:1 HTTP/1.0\r\n" + KITE_LINE.repeat(2000),
  );
  assert.throws(() => findHandshakeEnd(endless), ProtocolLimitError);
  assert.throws(() => decodeTunnelRequest(endless), ProtocolLimitError);
  const long = latin1(
    "CONNECT PageKite:1 HTTP/1.0\r\nX-PageKite: " + "a".repeat(70_000),
  );
  assertThrowsWith(
    () => findHandshakeEnd(long),
    ProtocolLimitError,
    "Cannot parse handshake: no blank line within maxHeadBytes 65536",
  );
  assertThrowsWith(
    () =>
      decodeTunnelResponse(
        latin1("HTTP/1.1 200 OK\r\n" + "X: 1\r\n".repeat(1025) + "\r\n"),
      ),
    ProtocolLimitError,
    "Cannot parse tunnel response: more than 1024 header lines",
  );
  assert.throws(() => findHandshakeEnd(bytes, { maxHeaders: 0 }), RangeError);
  assert.throws(
    () => findHandshakeEnd(bytes, { maxHeadBytes: 1.5 }),
    RangeError,
  );
});

Deno.test("encodeTunnelRequest() rejects values that would break the head", () => {
  const kite: KiteRequest = {
    proto: "http",
    domain: "foo.example.com",
    salt: "abc",
    token: "",
    signature: "x",
  };
  const cases: [TunnelRequest, RegExp][] = [
    [{ kites: [] }, /^Cannot encode tunnel request: there are no kites$/],
    [{ kites: [kite], version: "1\r\nX-Evil: 1" }, /version .* contains "\\r"/],
    [{ kites: [kite], version: " 1" }, /starts or ends with white space/],
    [{ kites: [kite], features: [""] }, /feature is empty/],
    [{ kites: [kite], features: ["A\nB"] }, /feature .* contains "\\n"/],
    [
      { kites: [kite], replace: "x\0" },
      /replace session id .* contains "\\u0000"/,
    ],
    [
      { kites: [{ ...kite, domain: "foo:80" }] },
      /domain "foo:80" contains ":"/,
    ],
    [{ kites: [kite], version: "€" }, /contains "€"/],
  ];
  for (const [request, message] of cases) {
    assertThrowsWith(() => encodeTunnelRequest(request), TypeError, message);
  }
  assert.throws(
    () => encodeTunnelRequest({ kites: [{ ...kite, port: 0 }] }),
    RangeError,
  );
});

const OK_HEAD = "HTTP/1.1 200 OK\r\n" +
  "Content-Type: text/html; charset=utf-8\r\n" +
  "Pragma: no-cache\r\n" +
  "Expires: 0\r\n" +
  "Cache-Control: no-store\r\n" +
  "Connection: close\r\n" +
  "Transfer-Encoding: chunked\r\n";

Deno.test("encodeTunnelResponse() writes every header in pagekite.py's order", () => {
  const foo = { proto: "http", domain: "foo.example.com", salt: "s1" };
  const response: TunnelResponse = {
    features: ["ZChunks", "AddKites"],
    protos: ["http", "raw"],
    ports: [80, 443],
    rawPorts: [22, "virtual"],
    results: [
      { status: "ok", ...foo, tls: true },
      { status: "ok", ...foo, port: 8080 },
      { status: "sign-this", ...foo, token: "t1" },
      { status: "invalid", ...foo, reason: "quota" },
      { status: "invalid", ...foo, proto: "gopher" },
      { status: "duplicate", ...foo },
    ],
    sessionId: "6b:0",
    motd: "Hi there, a+b=c & 100% é~*",
    upgrade: "1.6;stable;md5;https://h/;https://f/",
    qConns: 5,
    qDays: 24,
    ipsPerSec: { ips: 3, seconds: 60 },
    quota: 10240.5,
  };
  const expected = OK_HEAD +
    "X-PageKite-Features: ZChunks\r\n" +
    "X-PageKite-Features: AddKites\r\n" +
    "X-PageKite-Protos: http, raw\r\n" +
    "X-PageKite-Ports: 80, 443\r\n" +
    "X-PageKite-Raw-Ports: 22, virtual\r\n" +
    "X-PageKite-OK: http:foo.example.com:s1\r\n" +
    "X-PageKite-SSL-OK: http:foo.example.com:s1\r\n" +
    "X-PageKite-OK: http-8080:foo.example.com:s1\r\n" +
    "X-PageKite-SignThis: http:foo.example.com:s1:t1\r\n" +
    "X-PageKite-Invalid: http:foo.example.com:s1\r\n" +
    "X-PageKite-Invalid-Why: http:foo.example.com:s1;quota\r\n" +
    "X-PageKite-Invalid: gopher:foo.example.com:s1\r\n" +
    "X-PageKite-Duplicate: http:foo.example.com:s1\r\n" +
    "X-PageKite-SessionID: 6b:0\r\n" +
    "X-PageKite-Misc: motd=Hi+there%2C+a%2Bb%3Dc+%26+100%25+%C3%A9~%2A\r\n" +
    "X-PageKite-Upgrade: 1.6;stable;md5;https://h/;https://f/\r\n" +
    "X-PageKite-QConns: 5\r\n" +
    "X-PageKite-QDays: 24\r\n" +
    "X-PageKite-IPsPerSec: 3/60\r\n" +
    "X-PageKite-Quota: 10240.5\r\n" +
    "\r\n";
  const bytes = encodeTunnelResponse(response);
  assert.equal(text(bytes), expected);
  assert.deepEqual(decodeTunnelResponse(bytes), {
    ...response,
    prefix: "X-PageKite",
  });
});

Deno.test("encodeTunnelResponse() writes a bare head and the X-Beanstalk prefix", () => {
  assert.equal(text(encodeTunnelResponse({ results: [] })), OK_HEAD + "\r\n");
  assert.equal(
    text(encodeTunnelResponse({
      prefix: "X-Beanstalk",
      results: [{ status: "duplicate", proto: "http", domain: "a", salt: "" }],
    })),
    OK_HEAD + "X-Beanstalk-Duplicate: http:a:\r\n\r\n",
  );
});

Deno.test("decodeTunnelResponse() accepts X-Beanstalk, any case, LF line ends and unknown headers", () => {
  const response = decodeTunnelResponse(latin1(
    "HTTP/1.0 200 Tunnel OK\n" +
      "x-beanstalk-features: AddKites\n" +
      "X-Beanstalk-OK: HTTP:Foo.example.com:abc\n" +
      "x-pagekite-ssl-ok: http:foo.example.com:abc\n" +
      "X-BEANSTALK-SIGNTHIS: raw-22:ssh.example.com:abc:t0\n" +
      "X-Beanstalk-Invalid: http:bar.example.com:abc\n" +
      "X-Beanstalk-Invalid-Why: http:bar.example.com:abc; nodays \n" +
      "X-Beanstalk-Warning: ignored\n" +
      "X-PageKite-UUID: ignored\n" +
      "Server: whatever\n" +
      "X-Beanstalk-Misc: motd=a%20b+c&other=1\n" +
      "X-Beanstalk-Ports: 80 ,443,\n" +
      "X-Beanstalk-Raw-Ports: VIRTUAL\n" +
      "\n" +
      "1b\r\nNOOP: 1\r\n\r\n",
  ));
  assert.deepEqual(response, {
    results: [
      {
        status: "ok",
        proto: "http",
        domain: "foo.example.com",
        salt: "abc",
        tls: true,
      },
      {
        status: "sign-this",
        proto: "raw",
        port: 22,
        domain: "ssh.example.com",
        salt: "abc",
        token: "t0",
      },
      {
        status: "invalid",
        proto: "http",
        domain: "bar.example.com",
        salt: "abc",
        reason: "nodays",
      },
    ],
    features: ["AddKites"],
    prefix: "X-Beanstalk",
    motd: "a b c",
    ports: [80, 443],
    rawPorts: ["virtual"],
  });
});

Deno.test("parseKiteResponseHeaders() pairs SSL-OK and Invalid-Why with the latest matching kite", () => {
  const a = "http:a.example.com:s";
  const b = "http:b.example.com:s";
  const response = parseKiteResponseHeaders([
    ["X-PageKite-OK", a],
    ["X-PageKite-OK", b],
    ["X-PageKite-OK", a],
    ["X-PageKite-SSL-OK", a],
    ["X-PageKite-SSL-OK", "http:nomatch.example.com:s"],
    ["X-PageKite-Invalid", b],
    ["X-PageKite-Invalid-Why", b + ";signature"],
    ["X-PageKite-Invalid", b],
    ["X-PageKite-Invalid-Why", "http:c.example.com:s;orphan"],
    ["X-PageKite-Invalid", a],
    ["X-PageKite-Invalid-Why", b + ";port"],
  ]);
  assert.deepEqual(response.results.map(describe), [
    `OK ${a}`,
    `OK ${b}`,
    `OK ${a} +SSL-OK`,
    `Invalid ${b};signature`,
    `Invalid ${b};port`,
    `Invalid ${a}`,
  ]);
});

Deno.test("decodeTunnelResponse() reports a refusal with its status", () => {
  const cases: [string, number, string, string][] = [
    [
      "HTTP/1.0 503 Unavailable\r\n\r\n",
      503,
      "Unavailable",
      "Cannot open tunnel: relay answered 503 Unavailable",
    ],
    [
      "HTTP/1.0 403 Forbidden\r\n\r\n",
      403,
      "Forbidden",
      "Cannot open tunnel: relay answered 403 Forbidden",
    ],
    [
      "HTTP/1.1 302\r\nLocation: /\r\n\r\n",
      302,
      "",
      "Cannot open tunnel: relay answered 302",
    ],
  ];
  for (const [head, status, statusText, message] of cases) {
    assert.throws(
      () => decodeTunnelResponse(latin1(head)),
      (error: unknown) => {
        assert.ok(error instanceof TunnelRefusedError);
        assert.equal(error.name, "TunnelRefusedError");
        assert.equal(error.status, status);
        assert.equal(error.statusText, statusText);
        assert.equal(error.message, message);
        return true;
      },
    );
  }
  assert.deepEqual(
    decodeTunnelResponse(latin1("HTTP/1.0 200 Connection Established\r\n\r\n")),
    { results: [], features: [], prefix: "X-PageKite" },
  );
});

Deno.test("decodeTunnelResponse() rejects malformed heads and values", () => {
  const cases: [string, string | RegExp][] = [
    [
      "HTTP/2 200 OK\r\n\r\n",
      'Cannot decode tunnel response: status line is not "HTTP/1.x <status> <reason>": "HTTP/2 200 OK"',
    ],
    ["CONNECT PageKite:1 HTTP/1.0\r\n\r\n", /status line is not/],
    ["HTTP/1.1 20 OK\r\n\r\n", /status line is not/],
    [
      "HTTP/1.1 200 OK\r\n",
      "Cannot decode tunnel response: head is incomplete, no blank line yet",
    ],
    [
      "HTTP/1.1 200 OK\r\nX-PageKite-OK: http:foo.example.com:abc:t1\r\n\r\n",
      /^Cannot parse kite name: expected 3 colon-separated fields, got 4: /,
    ],
    [
      "HTTP/1.1 200 OK\r\nX-PageKite-SignThis: http:foo.example.com:abc\r\n\r\n",
      /^Cannot parse SignThis value: expected 4 colon-separated fields, got 3: /,
    ],
    [
      "HTTP/1.1 200 OK\r\nX-PageKite-Invalid-Why: http:foo.example.com:abc\r\n\r\n",
      /^Cannot parse tunnel response: Invalid-Why value has no ";" before the reason: /,
    ],
    [
      "HTTP/1.1 200 OK\r\nX-PageKite-Duplicate: http-0:foo.example.com:abc\r\n\r\n",
      /^Cannot parse kite name: port "0" is not a decimal number/,
    ],
    [
      "HTTP/1.1 200 OK\r\nX-PageKite-Ports: 80, http\r\n\r\n",
      'Cannot parse tunnel response: ports entry "http" is not a port number',
    ],
    [
      "HTTP/1.1 200 OK\r\nX-PageKite-SessionID: a\x01b\r\n\r\n",
      /^Cannot parse tunnel response: session id "a\\u0001b" contains/,
    ],
  ];
  for (const [head, message] of cases) {
    assertThrowsWith(
      () => decodeTunnelResponse(latin1(head)),
      ProtocolError,
      message,
    );
  }
});

Deno.test("decodeTunnelResponse() ignores advisory numbers it cannot read", () => {
  const response = decodeTunnelResponse(latin1(
    "HTTP/1.1 200 OK\r\nX-PageKite-Quota: lots\r\nX-PageKite-QDays: -\r\n" +
      "X-PageKite-QConns: 5\r\nX-PageKite-IPsPerSec: 3\r\n" +
      "X-PageKite-OK: http:foo.example.com:abc\r\n\r\n",
  ));
  assert.equal(response.quota, undefined);
  assert.equal(response.qDays, undefined);
  assert.equal(response.qConns, 5);
  assert.equal(response.ipsPerSec, undefined);
  assert.equal(response.results[0]?.status, "ok");
});

Deno.test("encodeTunnelResponse() rejects values that would break the head", () => {
  const foo = { proto: "http", domain: "foo.example.com", salt: "s" };
  const typeErrors: [TunnelResponse, RegExp][] = [
    [{ results: [], features: [""] }, /feature is empty/],
    [
      { results: [], protos: ["http, raw"] },
      /protocol "http, raw" contains ","/,
    ],
    [{ results: [], protos: [""] }, /protocol is empty/],
    [{ results: [], sessionId: "a\r\nb" }, /session id .* contains "\\r"/],
    [{ results: [], upgrade: "x\n" }, /upgrade .* contains "\\n"/],
    [{ results: [], motd: "\ud800" }, /motd has a lone surrogate/],
    [
      { results: [{ status: "invalid", ...foo, reason: "a;b" }] },
      /reason "a;b" contains ";"/,
    ],
    [
      { results: [{ status: "invalid", ...foo, reason: "why\r\n" }] },
      /reason .* contains "\\r"/,
    ],
    [
      { results: [{ status: "sign-this", ...foo, token: "a:b" }] },
      /token "a:b" contains ":"/,
    ],
    [
      { results: [{ status: "ok", ...foo, domain: "a\nb" }] },
      /domain .* contains "\\n"/,
    ],
    [
      {
        results: [{ status: "maybe", ...foo } as unknown as KiteResult],
      },
      /^Cannot encode tunnel response: unknown kite result status "maybe"$/,
    ],
  ];
  for (const [response, message] of typeErrors) {
    assertThrowsWith(() => encodeTunnelResponse(response), TypeError, message);
  }
  const rangeErrors: TunnelResponse[] = [
    { results: [], ports: [65536] },
    { results: [], rawPorts: [-1] },
    { results: [], quota: NaN },
    { results: [], qDays: Infinity },
    { results: [], qConns: 1e21 },
    { results: [], ipsPerSec: { ips: -1, seconds: 60 } },
    { results: [{ status: "ok", ...foo, port: 0 }] },
  ];
  for (const response of rangeErrors) {
    assert.throws(() => encodeTunnelResponse(response), RangeError);
  }
});

// --- round trips -----------------------------------------------------------

const FIELD_CHARS = fc.constantFrom(
  ..."abcdefghijklmnopqrstuvwxyz0123456789.-_*;,~!/=+éß",
);
const SALT_CHARS = fc.constantFrom(
  ..."abcdefABCDEF0123456789.-_*;,~!/=+éß",
);
/** Header text: printable Latin-1, no white space at either end. */
const TEXT_CHARS = fc.constantFrom(
  ..."aZ09 .:;,-_=+/!?'\"\xa0éÿ",
);

function withoutEdgeSpace(value: string): string {
  return value.replace(/^[ \t]+|[ \t]+$/g, "");
}

const textArbitrary = fc.string({ unit: TEXT_CHARS, maxLength: 30 }).map(
  withoutEdgeSpace,
);
const wordArbitrary = fc.string({
  unit: fc.constantFrom(..."aZ09._-+/é"),
  minLength: 1,
  maxLength: 12,
});

const kiteNameArbitrary: fc.Arbitrary<KiteName> = fc.record({
  proto: fc.stringMatching(/^[a-z][a-z0-9]{0,9}$/),
  port: fc.integer({ min: 1, max: 65535 }),
  domain: fc.string({ unit: FIELD_CHARS, minLength: 1, maxLength: 40 }),
  salt: fc.string({ unit: SALT_CHARS, maxLength: 40 }),
}, { requiredKeys: ["proto", "domain", "salt"] }).map((kite) => ({
  ...kite,
}));

const kiteRequestArbitrary: fc.Arbitrary<KiteRequest> = fc.record({
  name: kiteNameArbitrary,
  token: fc.oneof(
    fc.constant(""),
    fc.stringMatching(/^t[0-9a-f]{35}$/),
    fc.string({ unit: SALT_CHARS, maxLength: 40 }),
  ),
  signature: fc.string({ unit: SALT_CHARS, maxLength: 48 }),
}).map(({ name, token, signature }) => ({ ...name, token, signature }));

const prefixArbitrary = fc.constantFrom(
  "X-PageKite" as const,
  "X-Beanstalk" as const,
);

function optional<T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(arbitrary, { nil: undefined });
}

/** `T` with keys that may be `undefined` made optional instead. */
type Defined<T> =
  & { [K in keyof T as undefined extends T[K] ? never : K]: T[K] }
  & {
    [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<
      T[K],
      undefined
    >;
  };

/** Drops keys whose value is `undefined` (exactOptionalPropertyTypes). */
function defined<T extends object>(value: T): Defined<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined),
  ) as Defined<T>;
}

function requestArbitrary(minKites: number): fc.Arbitrary<TunnelRequest> {
  return fc.record({
    kites: fc.array(kiteRequestArbitrary, {
      minLength: minKites,
      maxLength: 5,
    }),
    features: fc.array(wordArbitrary, { maxLength: 3 }),
    version: optional(textArbitrary),
    replace: optional(textArbitrary),
    prefix: prefixArbitrary,
  }).map(defined);
}

/** Names from a small pool too, so results for the same kite occur. */
const resultNameArbitrary = fc.oneof(
  kiteNameArbitrary,
  fc.constantFrom<KiteName>(
    { proto: "http", domain: "a.example.com", salt: "s" },
    { proto: "http", port: 80, domain: "a.example.com", salt: "s" },
  ),
);

const resultArbitrary: fc.Arbitrary<KiteResult> = fc.oneof(
  fc.record({ name: resultNameArbitrary, tls: optional(fc.constant(true)) })
    .map(({ name, tls }) => defined({ status: "ok" as const, ...name, tls })),
  fc.record({
    name: resultNameArbitrary,
    token: fc.string({ unit: SALT_CHARS, maxLength: 36 }),
  }).map(({ name, token }) => ({
    status: "sign-this" as const,
    ...name,
    token,
  })),
  fc.record({
    name: resultNameArbitrary,
    reason: optional(
      textArbitrary.map((reason) =>
        withoutEdgeSpace(reason.replaceAll(";", ""))
      ),
    ),
  }).map(({ name, reason }) =>
    defined({ status: "invalid" as const, ...name, reason })
  ),
  resultNameArbitrary.map((name) => ({
    status: "duplicate" as const,
    ...name,
  })),
);

const numberArbitrary = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.integer({ min: 1, max: 100_000_000 }).map((n) => n / 100),
);
const portArbitrary = fc.integer({ min: 0, max: 65535 });

const responseArbitrary: fc.Arbitrary<TunnelResponse> = fc.record({
  results: fc.array(resultArbitrary, { maxLength: 6 }),
  prefix: prefixArbitrary,
  features: fc.array(wordArbitrary, { maxLength: 3 }),
  protos: optional(fc.array(wordArbitrary, { maxLength: 4 })),
  ports: optional(fc.array(portArbitrary, { maxLength: 3 })),
  rawPorts: optional(
    fc.array(fc.oneof(portArbitrary, fc.constant("virtual" as const)), {
      maxLength: 3,
    }),
  ),
  sessionId: optional(textArbitrary),
  motd: optional(fc.string({ unit: "grapheme", maxLength: 30 })),
  upgrade: optional(textArbitrary),
  quota: optional(numberArbitrary),
  qConns: optional(numberArbitrary),
  qDays: optional(numberArbitrary),
  ipsPerSec: optional(
    fc.record({
      ips: fc.integer({ min: 0, max: 1000 }),
      seconds: fc.integer({ min: 0, max: 86400 }),
    }).map((rate) => ({ ...rate })),
  ),
}).map(defined);

/** With no PageKite header at all, the prefix cannot be told. */
function withPrefix(response: TunnelResponse): TunnelResponse {
  return kiteResponseHeaders(response).length === 0
    ? { ...response, prefix: "X-PageKite" }
    : response;
}

Deno.test("decodeTunnelRequest() inverts encodeTunnelRequest()", () => {
  fc.assert(
    fc.property(requestArbitrary(1), (request) => {
      const bytes = encodeTunnelRequest(request);
      assert.equal(findHandshakeEnd(bytes), bytes.length);
      assert.deepEqual(decodeTunnelRequest(bytes), request);
    }),
    { seed: 42, numRuns: 1000 },
  );
});

Deno.test("parseKiteRequestHeaders() inverts kiteRequestHeaders()", () => {
  fc.assert(
    fc.property(requestArbitrary(0), (request) => {
      const headers = kiteRequestHeaders(request);
      // With no header at all, the prefix cannot be told.
      const expected = headers.length === 0
        ? { ...request, prefix: "X-PageKite" }
        : request;
      assert.deepEqual(parseKiteRequestHeaders(headers), expected);
    }),
    { seed: 42, numRuns: 1000 },
  );
});

Deno.test("decodeTunnelResponse() inverts encodeTunnelResponse()", () => {
  fc.assert(
    fc.property(responseArbitrary, (response) => {
      const bytes = encodeTunnelResponse(response);
      assert.equal(findHandshakeEnd(bytes), bytes.length);
      assert.deepEqual(decodeTunnelResponse(bytes), withPrefix(response));
    }),
    { seed: 42, numRuns: 1000 },
  );
});

Deno.test("parseKiteResponseHeaders() inverts kiteResponseHeaders()", () => {
  fc.assert(
    fc.property(responseArbitrary, (response) => {
      const headers = kiteResponseHeaders(response);
      assert.deepEqual(parseKiteResponseHeaders(headers), withPrefix(response));
    }),
    { seed: 42, numRuns: 1000 },
  );
});
