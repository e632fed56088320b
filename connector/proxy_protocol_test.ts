// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import { proxyProtocolV1 } from "./proxy_protocol.ts";

function line(
  remoteIp: string,
  remotePort = 46000,
  publicPort = 18080,
): string {
  return new TextDecoder().decode(
    proxyProtocolV1({ remoteIp, remotePort, publicPort }),
  );
}

Deno.test("proxyProtocolV1() writes TCP4 lines for IPv4 users", () => {
  assert.equal(
    line("127.0.0.1"),
    "PROXY TCP4 127.0.0.1 0.0.0.0 46000 18080\r\n",
  );
  assert.equal(
    line("203.0.113.255", 0, 65535),
    "PROXY TCP4 203.0.113.255 0.0.0.0 0 65535\r\n",
  );
  assert.deepEqual(
    [...proxyProtocolV1({ remoteIp: "1.2.3.4", remotePort: 5, publicPort: 6 })],
    [..."PROXY TCP4 1.2.3.4 0.0.0.0 5 6\r\n"].map((c) => c.charCodeAt(0)),
  );
});

Deno.test("proxyProtocolV1() writes TCP6 lines in RFC 5952 form for IPv6 users", () => {
  const cases: [string, string][] = [
    ["::1", "::1"],
    ["2001:db8::1", "2001:db8::1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["fe80::", "fe80::"],
    ["::", "::"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ];
  for (const [input, canonical] of cases) {
    assert.equal(
      line(input),
      `PROXY TCP6 ${canonical} :: 46000 18080\r\n`,
      input,
    );
  }
});

Deno.test("proxyProtocolV1() strips ::ffff: from IPv4-mapped addresses", () => {
  for (
    const input of [
      "::ffff:1.2.3.4",
      "::FFFF:1.2.3.4",
      "0:0:0:0:0:ffff:1.2.3.4",
      "::ffff:102:304",
    ]
  ) {
    assert.equal(
      line(input),
      "PROXY TCP4 1.2.3.4 0.0.0.0 46000 18080\r\n",
      input,
    );
  }
});

Deno.test("proxyProtocolV1() writes PROXY UNKNOWN for unusable addresses and ports", () => {
  const bad = [
    "",
    "localhost",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    " 1.2.3.4",
    "1.2.3.4\r\n",
    "fe80::1%eth0",
    "[::1]",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7",
    "12345::",
    "::ffff:1.2.3",
    "::1.2.3.4:5",
    "1:2:3:4:5:6:7::8",
  ];
  for (const input of bad) {
    assert.equal(line(input), "PROXY UNKNOWN\r\n", JSON.stringify(input));
  }
  assert.equal(line("1.2.3.4", -1), "PROXY UNKNOWN\r\n");
  assert.equal(line("1.2.3.4", 1, 65536), "PROXY UNKNOWN\r\n");
  assert.equal(line("1.2.3.4", 1.5), "PROXY UNKNOWN\r\n");
  assert.equal(line("::1", NaN), "PROXY UNKNOWN\r\n");
});
