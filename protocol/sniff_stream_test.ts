// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import {
  assertLimitError,
  assertProtocolError,
  assertSplitEverywhere,
  concat,
  INCOMPLETE,
  latin1,
  minecraftHandshake,
  trickleUntilLimit,
  UNRECOGNIZED,
  value,
  XMPP_HEADER,
} from "../tests/_sniff.ts";
import { sniffConnection } from "./sniff.ts";
import { sniffIrc, sniffMinecraft, sniffXmpp } from "./sniff_stream.ts";

// ---------------------------------------------------------------------------
// XMPP

Deno.test("sniffXmpp() finds the to= domain", () => {
  assertSplitEverywhere(sniffXmpp, latin1(XMPP_HEADER), {
    status: "ok",
    value: { domain: "chat.example.com", length: XMPP_HEADER.length },
  });
  const double =
    '<?xml version="1.0" encoding="UTF-8"?>\n  <stream:stream xmlns="jabber:client" ' +
    'to = "example.org" version="1.0">';
  assert.deepEqual(value(sniffXmpp(latin1(`${double}<auth/>`))), {
    domain: "example.org",
    length: double.length,
  });
  const bare =
    "<stream:stream to='example.net' xmlns:stream='http://etherx.jabber.org/streams'>";
  assert.deepEqual(value(sniffXmpp(latin1(bare))), {
    domain: "example.net",
    length: bare.length,
  });
  const quoted =
    "<?xml version='1.0'?><stream:stream from='a>b' to='example.net'>";
  assert.equal(value(sniffXmpp(latin1(quoted))).domain, "example.net");
  const noTo = "<?xml version='1.0'?><stream:stream version='1.0'>";
  assert.deepEqual(value(sniffXmpp(latin1(noTo))), { length: noTo.length });
});

Deno.test("sniffXmpp() does not recognise other bytes", () => {
  assert.deepEqual(sniffXmpp(latin1("GET / HTTP/1.1\r\n")), UNRECOGNIZED);
  assert.deepEqual(sniffXmpp(latin1("<html>")), UNRECOGNIZED);
  assert.deepEqual(sniffXmpp(latin1("<")), INCOMPLETE);
  assert.deepEqual(sniffXmpp(latin1("<?xm")), INCOMPLETE);
});

Deno.test("sniffXmpp() rejects malformed stream headers", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "another root element",
      "<?xml version='1.0'?><html lang='en'>",
      /root element "html" is not a stream/,
    ],
    [
      "text after the declaration",
      "<?xml version='1.0'?>hello<stream:stream>",
      /byte 21 after the XML declaration is not "<"/,
    ],
    [
      "an unquoted value",
      "<?xml version='1.0'?><stream:stream to=example.com>",
      /value of attribute "to" is not quoted/,
    ],
    [
      "an attribute without value",
      "<?xml version='1.0'?><stream:stream to>",
      /attribute "to" has no "=" and value/,
    ],
    [
      "a duplicate to",
      "<?xml version='1.0'?><stream:stream to='a' to='b'>",
      /attribute "to" appears twice/,
    ],
    [
      "a bad domain",
      "<?xml version='1.0'?><stream:stream to='a b'>",
      /to "a b" is not a valid host name/,
    ],
    [
      "a < inside the tag",
      "<?xml version='1.0'?><stream:stream <x>",
      /"<" at byte 36 inside the start tag/,
    ],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => {
      assertProtocolError(() => sniffXmpp(latin1(text)), message);
      assertProtocolError(() => sniffConnection(latin1(text)), message);
    });
  }
});

Deno.test("sniffXmpp() stops at maxXmppBytes", () => {
  assertLimitError(
    () => sniffXmpp(latin1(XMPP_HEADER), { maxXmppBytes: 100 }),
    /^Cannot sniff XMPP stream header: no complete stream header within maxXmppBytes 100$/,
  );
  const stream = latin1(
    `<?xml version='1.0'?><stream:stream ${" ".repeat(10_000)}`,
  );
  assert.equal(trickleUntilLimit(sniffXmpp, stream), 4096);
  assert.equal(trickleUntilLimit(sniffConnection, stream), 4096);
  const endless = latin1(`<?xml ${"v".repeat(10_000)}`);
  assert.equal(
    trickleUntilLimit(sniffXmpp, endless, { maxXmppBytes: 300 }),
    300,
  );
});

// ---------------------------------------------------------------------------
// IRC

Deno.test("sniffIrc() takes the domain out of NICK and USER", async (t) => {
  const cases: [string, string, string, string | undefined][] = [
    [
      "the domain in NICK",
      "NICK alice@IRC.Example.com\r\nUSER alice 0 * :Alice Liddell\r\n",
      "NICK alice\r\nUSER alice 0 * :Alice Liddell\r\n",
      "irc.example.com",
    ],
    [
      "the domain in USER",
      "USER alice@irc.example.com 0 * :Alice\nNICK alice\n",
      "USER alice 0 * :Alice\nNICK alice\n",
      "irc.example.com",
    ],
    [
      "the domain in both",
      "nick alice@irc.example.com\r\nuser alice@irc.example.com 8 * :A\r\n",
      "nick alice\r\nuser alice 8 * :A\r\n",
      "irc.example.com",
    ],
    [
      "CAP and PASS first, a trailing NICK parameter",
      "CAP LS 302\r\nPASS secret\r\nNICK :bob@irc.example.org\r\nUSER bob 0 * :Bob\r\n",
      "CAP LS 302\r\nPASS secret\r\nNICK :bob\r\nUSER bob 0 * :Bob\r\n",
      "irc.example.org",
    ],
    [
      "no domain",
      "NICK alice\r\nUSER alice 0 * :Alice\r\n",
      "NICK alice\r\nUSER alice 0 * :Alice\r\n",
      undefined,
    ],
  ];
  for (const [name, text, rewritten, domain] of cases) {
    await t.step(name, () => {
      const bytes = latin1(text);
      const expected = domain === undefined
        ? { rewritten: latin1(rewritten), length: text.length }
        : { domain, rewritten: latin1(rewritten), length: text.length };
      assertSplitEverywhere(sniffIrc, bytes, { status: "ok", value: expected });
      assert.deepEqual(sniffConnection(bytes), {
        status: "ok",
        value: { kind: "irc", registration: expected },
      });
    });
  }
  await t.step("bytes after USER are left alone", () => {
    const text = "NICK a@b.example\r\nUSER a 0 * :A\r\nJOIN #x@y\r\n";
    const registration = value(sniffIrc(latin1(text)));
    assert.equal(registration.length, text.indexOf("JOIN"));
    assert.deepEqual(
      registration.rewritten,
      latin1("NICK a\r\nUSER a 0 * :A\r\n"),
    );
  });
});

Deno.test("sniffIrc() does not recognise other bytes", () => {
  assert.deepEqual(sniffIrc(latin1("GET / HTTP/1.1\r\n")), UNRECOGNIZED);
  assert.deepEqual(sniffIrc(latin1("NICKNAME x\r\n")), UNRECOGNIZED);
  assert.deepEqual(sniffIrc(latin1("JOIN #x\r\n")), UNRECOGNIZED);
  assert.deepEqual(sniffIrc(latin1("NIC")), INCOMPLETE);
  assert.deepEqual(sniffIrc(latin1("cap")), INCOMPLETE);
});

Deno.test("sniffIrc() rejects malformed registrations", () => {
  assertProtocolError(
    () => sniffIrc(latin1("NICK \r\nUSER a 0 * :A\r\n")),
    /NICK line at byte 0 has no parameter/,
  );
  assertProtocolError(
    () => sniffIrc(latin1("NICK a@b/c\r\n")),
    /NICK domain "b\/c" is not a valid host name/,
  );
  assertProtocolError(
    () => sniffConnection(latin1("CAP LS\r\nUSER a@ 0 * :A\r\n")),
    /USER domain "" is not a valid host name/,
  );
});

Deno.test("sniffIrc() stops at maxIrcBytes", () => {
  const stream = latin1(`NICK a@b.example\r\n${"PING :x\r\n".repeat(1000)}`);
  assert.equal(trickleUntilLimit(sniffIrc, stream), 4096);
  assert.equal(trickleUntilLimit(sniffConnection, stream), 4096);
  assertLimitError(
    () => sniffIrc(latin1("NICK a\r\nUSER a 0 * :A\r\n"), { maxIrcBytes: 10 }),
    /^Cannot sniff IRC registration: no NICK and USER lines within maxIrcBytes 10$/,
  );
});

// ---------------------------------------------------------------------------
// Minecraft

Deno.test("sniffMinecraft() reads a handshake", () => {
  const packet = minecraftHandshake("MC.Example.com", { port: 18080 });
  assert.equal(packet[1], 0x00);
  const expected = {
    protocolVersion: 767,
    host: "mc.example.com",
    port: 18080,
    nextState: 1,
    length: packet.length,
  };
  assertSplitEverywhere(sniffMinecraft, packet, {
    status: "ok",
    value: expected,
  });
  // The status request that follows is not part of the handshake.
  const bytes = concat(packet, [0x01, 0x00]);
  assert.deepEqual(value(sniffMinecraft(bytes)), expected);
  assert.deepEqual(value(sniffConnection(bytes)), {
    kind: "minecraft",
    handshake: expected,
  });
});

Deno.test("sniffMinecraft() normalises the server address", () => {
  const forge = value(
    sniffMinecraft(minecraftHandshake("Play.Example.com\0FML3\0")),
  );
  assert.equal(forge.host, "play.example.com");
  const dot = value(
    sniffMinecraft(minecraftHandshake("play.example.com.", { next: 2 })),
  );
  assert.equal(dot.host, "play.example.com");
  assert.equal(dot.nextState, 2);
  const empty = value(sniffMinecraft(minecraftHandshake("")));
  assert.equal("host" in empty, false);
  const snapshot = value(
    sniffMinecraft(minecraftHandshake("a", { version: 0x40000000 + 200 })),
  );
  assert.equal(snapshot.protocolVersion, 0x40000000 + 200);
});

Deno.test("sniffMinecraft() reads a handshake longer than 127 bytes", () => {
  const name = `${"a".repeat(150)}.example.com`;
  const packet = minecraftHandshake(name);
  assert.ok(packet[0]! >= 0x80);
  assertSplitEverywhere(sniffMinecraft, packet, {
    status: "ok",
    value: {
      protocolVersion: 767,
      host: name,
      port: 25565,
      nextState: 1,
      length: packet.length,
    },
  });
  assert.equal(value(sniffConnection(packet)).kind, "minecraft");
});

Deno.test("sniffMinecraft() does not recognise other bytes", () => {
  assert.deepEqual(sniffMinecraft(latin1("GET / HTTP/1.1\r\n")), UNRECOGNIZED);
  assert.deepEqual(
    sniffMinecraft(Uint8Array.of(5, 0, 0, 0, 0, 0)),
    UNRECOGNIZED,
  );
  assert.deepEqual(
    sniffMinecraft(Uint8Array.of(0xff, 0xff, 0xff, 0x7f)),
    UNRECOGNIZED,
  );
  assert.deepEqual(sniffMinecraft(Uint8Array.of(20)), INCOMPLETE);
  assert.deepEqual(sniffMinecraft(Uint8Array.of(0x81)), INCOMPLETE);
});

Deno.test("sniffMinecraft() rejects malformed handshakes", async (t) => {
  const good = minecraftHandshake("mc.example.com");
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "next state 5",
      minecraftHandshake("a.example", { next: 5 }),
      /next state 5 is not 1, 2 or 3/,
    ],
    [
      "an address longer than the packet",
      Uint8Array.of(8, 0, 0x7f, 40, 0x61, 0x62, 0x63, 0, 1),
      /server address length 40 exceeds the 5 bytes left/,
    ],
    [
      "an address that is not UTF-8",
      minecraftHandshake(Uint8Array.of(0x61, 0xff, 0x62)),
      /server address is not UTF-8/,
    ],
    [
      "an address that is not a host name",
      minecraftHandshake("mc example com"),
      /server address "mc example com" is not a valid host name/,
    ],
    [
      "bytes after the next state",
      (() => {
        const bytes = concat(good, [0]);
        bytes[0] = bytes[0]! + 1;
        return bytes;
      })(),
      /1 bytes follow the next state/,
    ],
    [
      "a packet cut short",
      Uint8Array.of(6, 0, 0x7f, 0, 0x63, 0xdd, 0x80),
      /next state is cut short/,
    ],
  ];
  for (const [name, bytes, message] of cases) {
    await t.step(name, () => {
      assertProtocolError(() => sniffMinecraft(bytes), message);
      assertProtocolError(() => sniffConnection(bytes), message);
    });
  }
});

Deno.test("sniffMinecraft() stops at maxMinecraftBytes", () => {
  // A declared packet of 3 + 16383 bytes: stopped after three bytes.
  const huge = Uint8Array.of(0xff, 0x7f, 0x00, 0xff, 0x05);
  assertLimitError(
    () => sniffMinecraft(huge.subarray(0, 3)),
    /^Cannot sniff Minecraft handshake: packet of 16385 bytes exceeds maxMinecraftBytes 2048$/,
  );
  assertLimitError(() => sniffConnection(huge), /maxMinecraftBytes 2048/);
  const name = `${"a".repeat(240)}.example.com`;
  const packet = minecraftHandshake(name);
  assert.equal(value(sniffMinecraft(packet)).host, name);
  assertLimitError(
    () => sniffMinecraft(packet.subarray(0, 3), { maxMinecraftBytes: 200 }),
    /packet of 262 bytes exceeds maxMinecraftBytes 200/,
  );
  assert.equal(
    value(sniffMinecraft(packet, { maxMinecraftBytes: 262 })).length,
    262,
  );
});
