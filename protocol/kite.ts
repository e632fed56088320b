// Copyright 2026 the Kitewire authors. MIT license.
/**
 * The kite-request field carried by `X-PageKite:` lines (spec §1.3):
 * `<proto>[-<port>]:<domain>:<bsalt>:<token>:<signature>`, and the
 * `<proto>[-<port>]:<domain>:<bsalt>` kite names of the relay's answers.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import {
  checkSignature,
  type CheckSignatureOptions,
  signToken,
} from "./sign.ts";

/** The longest part of a bad value quoted in an error message. */
const QUOTE_LIMIT = 128;
const PORT_REGEXP = /^[1-9][0-9]{0,4}$/;

/** One kite as the relay names it: protocol, optional port, domain, salt. */
export interface KiteName {
  /** Protocol, lower case: `http`, `https`, `raw`, `websocket`, ... */
  proto: string;
  /**
   * Public port (1..65535) the kite is limited to; absent means every
   * public port of the protocol. Written as `proto-port` on the wire.
   */
  port?: number;
  /** Domain name, lower case; may start with `*.`. */
  domain: string;
  /** The connector's salt (`bsalt`), echoed back by the relay. */
  salt: string;
}

/** One `X-PageKite:` kite request: a kite name, a token and a signature. */
export interface KiteRequest extends KiteName {
  /** The relay's challenge token, or `""` on first contact. */
  token: string;
  /** `signToken(kiteSecret, kiteSignaturePayload(kite))`. */
  signature: string;
}

/** Options for {@linkcode signKiteRequest}. */
export interface SignKiteRequestOptions {
  /**
   * The 8-character salt of the signature.
   *
   * @default {8 random lower-case hex digits}
   */
  salt?: string;
}

/**
 * Parses the value of an `X-PageKite:` line. Exactly five colon-separated
 * fields are required; the protocol and the domain are lower-cased.
 *
 * @param value The header value, e.g.
 * `http:foo.example.com:<bsalt>:<token>:<signature>`.
 * @returns The kite request.
 * @throws {ProtocolError} if the value does not have five fields, the
 * protocol or domain is empty, a field holds white space or a control
 * character, or the port is not 1..65535.
 *
 * @example Usage
 * ```ts
 * import { parseKiteRequest } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const kite = parseKiteRequest("raw-22:SSH.example.com:abc::1a2b3c4d0000");
 * assert.deepEqual(kite, {
 *   proto: "raw",
 *   port: 22,
 *   domain: "ssh.example.com",
 *   salt: "abc",
 *   token: "",
 *   signature: "1a2b3c4d0000",
 * });
 * ```
 */
export function parseKiteRequest(value: string): KiteRequest {
  const fields = splitFields(value, 5, "kite request");
  const name = parseNameFields(fields, value, "kite request");
  const [token, signature] = [fields[3]!, fields[4]!];
  const problem = fieldProblem(token, "token", true) ??
    fieldProblem(signature, "signature", true);
  if (problem !== undefined) {
    throw new ProtocolError(`Cannot parse kite request: ${problem}`);
  }
  return { ...name, token, signature };
}

/**
 * Formats a kite request as the value of an `X-PageKite:` line.
 *
 * @param kite The kite request.
 * @returns `proto[-port]:domain:bsalt:token:signature`.
 * @throws {TypeError} if a field is empty where it must not be, or holds a
 * colon, white space or a control character.
 * @throws {RangeError} if the port is not an integer in 1..65535.
 *
 * @example Usage
 * ```ts
 * import { formatKiteRequest } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const value = formatKiteRequest({
 *   proto: "http",
 *   domain: "foo.example.com",
 *   salt: "abc",
 *   token: "",
 *   signature: "1a2b3c4d0000",
 * });
 * assert.equal(value, "http:foo.example.com:abc::1a2b3c4d0000");
 * ```
 */
export function formatKiteRequest(kite: KiteRequest): string {
  checkField(kite.token, "token", "format kite request", true);
  checkField(kite.signature, "signature", "format kite request", true);
  return `${
    formatName(kite, "format kite request")
  }:${kite.token}:${kite.signature}`;
}

/**
 * Parses a kite name as the relay writes it in its answers
 * (`X-PageKite-OK:` and friends): exactly three colon-separated fields.
 *
 * @param value The header value, e.g. `http-8080:foo.example.com:<bsalt>`.
 * @returns The kite name, protocol and domain lower-cased.
 * @throws {ProtocolError} if the value does not have three fields, the
 * protocol or domain is empty, a field holds white space or a control
 * character, or the port is not 1..65535.
 *
 * @example Usage
 * ```ts
 * import { parseKiteName } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseKiteName("http-8080:foo.example.com:abc"), {
 *   proto: "http",
 *   port: 8080,
 *   domain: "foo.example.com",
 *   salt: "abc",
 * });
 * ```
 */
export function parseKiteName(value: string): KiteName {
  return parseNameFields(
    splitFields(value, 3, "kite name"),
    value,
    "kite name",
  );
}

/**
 * Formats a kite name as the relay writes it in its answers; this is also
 * the payload of the relay's challenge token.
 *
 * @param kite The kite (any extra fields are ignored).
 * @returns `proto[-port]:domain:bsalt`.
 * @throws {TypeError} if a field is empty where it must not be, or holds a
 * colon, white space or a control character.
 * @throws {RangeError} if the port is not an integer in 1..65535.
 *
 * @example Usage
 * ```ts
 * import { formatKiteName } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const name = formatKiteName({ proto: "raw", port: 22, domain: "ssh.example.com", salt: "abc" });
 * assert.equal(name, "raw-22:ssh.example.com:abc");
 * ```
 */
export function formatKiteName(kite: KiteName): string {
  return formatName(kite, "format kite name");
}

/**
 * The text a kite request's signature covers: the first four fields of the
 * kite request joined with `:` (so it ends in `:` while the token is empty).
 *
 * @param kite The kite name and its token.
 * @returns `proto[-port]:domain:bsalt:token`.
 * @throws {TypeError} if a field is empty where it must not be, or holds a
 * colon, white space or a control character.
 * @throws {RangeError} if the port is not an integer in 1..65535.
 *
 * @example Usage
 * ```ts
 * import { kiteSignaturePayload } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const payload = kiteSignaturePayload({
 *   proto: "http",
 *   domain: "foo.example.com",
 *   salt: "abc",
 *   token: "",
 * });
 * assert.equal(payload, "http:foo.example.com:abc:");
 * ```
 */
export function kiteSignaturePayload(
  kite: KiteName & { readonly token: string },
): string {
  checkField(kite.token, "token", "format kite payload", true);
  return `${formatName(kite, "format kite payload")}:${kite.token}`;
}

/**
 * Signs a kite request with the kite's shared secret (spec §2.2).
 *
 * @param kite The kite name and the relay's token (`""` or absent on first
 * contact); an existing signature is replaced.
 * @param secret The kite's shared secret.
 * @param options The salt of the signature.
 * @returns The kite request with `token` and `signature` filled in.
 * @throws {TypeError} if a field cannot be written on the wire.
 * @throws {RangeError} if the port is not an integer in 1..65535.
 *
 * @example Usage
 * ```ts
 * import { formatKiteRequest, signKiteRequest } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const kite = await signKiteRequest(
 *   { proto: "http", domain: "foo.example.com", salt: "893f4f1d98e17a28ae3d6fb3f2cd83765514" },
 *   "testsecret",
 *   { salt: "1a2b3c4d" },
 * );
 * assert.equal(
 *   formatKiteRequest(kite),
 *   "http:foo.example.com:893f4f1d98e17a28ae3d6fb3f2cd83765514::1a2b3c4dc2b387e8425d334d449d20c63771",
 * );
 * ```
 */
export async function signKiteRequest(
  kite: KiteName & { readonly token?: string },
  secret: string,
  options: SignKiteRequestOptions = {},
): Promise<KiteRequest> {
  const token = kite.token ?? "";
  const name = kiteNameOf(kite);
  const payload = kiteSignaturePayload({ ...name, token });
  const signature = await signToken(
    secret,
    payload,
    options.salt === undefined ? {} : { salt: options.salt },
  );
  return { ...name, token, signature };
}

/**
 * Checks a kite request's signature against the kite's shared secret, as
 * the relay does before accepting a kite (spec §2.3, step 4).
 *
 * @param kite The kite request.
 * @param secret The kite's shared secret.
 * @param options The current time, for timestamped signatures.
 * @returns Whether the signature is valid.
 *
 * @example Usage
 * ```ts
 * import { checkKiteSignature, parseKiteRequest } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const kite = parseKiteRequest(
 *   "http:foo.example.com:893f4f1d98e17a28ae3d6fb3f2cd83765514::1a2b3c4dc2b387e8425d334d449d20c63771",
 * );
 * assert.ok(await checkKiteSignature(kite, "testsecret"));
 * assert.ok(!await checkKiteSignature(kite, "nope"));
 * ```
 */
export function checkKiteSignature(
  kite: KiteRequest,
  secret: string,
  options: CheckSignatureOptions = {},
): Promise<boolean> {
  return checkSignature(
    kite.signature,
    secret,
    kiteSignaturePayload(kite),
    options,
  );
}

function splitFields(value: string, count: number, what: string): string[] {
  const fields = value.split(":");
  if (fields.length !== count) {
    throw new ProtocolError(
      `Cannot parse ${what}: expected ${count} colon-separated fields, got ${fields.length}: ${
        quote(value)
      }`,
    );
  }
  return fields;
}

function parseNameFields(
  fields: string[],
  value: string,
  what: string,
): KiteName {
  const protoField = fields[0]!;
  const dash = protoField.indexOf("-");
  const name: KiteName = {
    proto: (dash === -1 ? protoField : protoField.slice(0, dash))
      .toLowerCase(),
    domain: fields[1]!.toLowerCase(),
    salt: fields[2]!,
  };
  const problem = fieldProblem(name.proto, "protocol", false) ??
    fieldProblem(name.domain, "domain", false) ??
    fieldProblem(name.salt, "salt", true);
  if (problem !== undefined) {
    throw new ProtocolError(`Cannot parse ${what}: ${problem}`);
  }
  if (dash !== -1) {
    const portText = protoField.slice(dash + 1);
    const port = Number(portText);
    if (!PORT_REGEXP.test(portText) || port > 65535) {
      throw new ProtocolError(
        `Cannot parse ${what}: port ${
          quote(portText)
        } is not a decimal number in 1..65535: ${quote(value)}`,
      );
    }
    name.port = port;
  }
  return name;
}

function formatName(kite: KiteName, action: string): string {
  checkField(kite.proto, "protocol", action, false);
  if (kite.proto.includes("-")) {
    throw new TypeError(
      `Cannot ${action}: protocol ${quote(kite.proto)} contains "-"`,
    );
  }
  checkField(kite.domain, "domain", action, false);
  checkField(kite.salt, "salt", action, true);
  let proto = kite.proto;
  if (kite.port !== undefined) {
    if (!Number.isInteger(kite.port) || kite.port < 1 || kite.port > 65535) {
      throw new RangeError(
        `Cannot ${action}: port must be an integer in 1..65535, got ${kite.port}`,
      );
    }
    proto += `-${kite.port}`;
  }
  return `${proto}:${kite.domain}:${kite.salt}`;
}

/** Fields may not hold colons, white space, control characters or non-Latin-1. */
function checkField(
  value: string,
  field: string,
  action: string,
  emptyOk: boolean,
): void {
  const problem = fieldProblem(value, field, emptyOk);
  if (problem !== undefined) {
    throw new TypeError(`Cannot ${action}: ${problem}`);
  }
}

/** Describes what makes `value` unfit for a kite field, if anything. */
function fieldProblem(
  value: string,
  field: string,
  emptyOk: boolean,
): string | undefined {
  if (value === "" && !emptyOk) return `${field} is empty`;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code <= 0x20 || code === 0x3a || code === 0x7f || code > 0xff) {
      return `${field} ${quote(value)} contains ${
        JSON.stringify(value[i])
      } at index ${i}`;
    }
  }
  return undefined;
}

/**
 * The name part of a kite request or result: `proto`, `port`, `domain` and
 * `salt`, without token, signature or status.
 *
 * @param kite A kite request, result, or name.
 * @returns A new {@linkcode KiteName}.
 *
 * @example Usage
 * ```ts
 * import { kiteNameOf, parseKiteRequest } from "@kitewire/pagekite/protocol";
 * import assert from "node:assert/strict";
 *
 * const request = parseKiteRequest("raw-22:ssh.example.com:abc:t1:s1");
 * assert.deepEqual(kiteNameOf(request), {
 *   proto: "raw",
 *   domain: "ssh.example.com",
 *   salt: "abc",
 *   port: 22,
 * });
 * ```
 */
export function kiteNameOf(kite: KiteName): KiteName {
  const name: KiteName = {
    proto: kite.proto,
    domain: kite.domain,
    salt: kite.salt,
  };
  if (kite.port !== undefined) name.port = kite.port;
  return name;
}

function quote(value: string): string {
  return JSON.stringify(
    value.length > QUOTE_LIMIT ? value.slice(0, QUOTE_LIMIT) + "…" : value,
  );
}
