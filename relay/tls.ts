// Copyright 2026 the Kitewire authors. MIT license.
/**
 * TLS at the relay (spec §1.1, §4.3, §4.4): SNI pass-through to `https`
 * kites, TLS termination for the relay's own endpoints (`tlsEndpoints`)
 * with the cleartext handled like a new plain connection (HTTP with
 * `RTLS: 1`, TLS-wrapped tunnels), `CONNECT name:443` for either, and the
 * access-denied alert for anything else. Termination runs `node:tls` over
 * the sniffed connection itself; the relay never dials.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { createSecureContext, type SecureContext, TLSSocket } from "node:tls";
import {
  ProtocolLimitError,
  sniffTlsHello,
  TLS_ALERT,
  type TlsHello,
} from "../protocol/mod.ts";
import { isDisconnectError, writeAll } from "../tunnel/_io.ts";
import type { RelayContext } from "./_context.ts";
import { sniffIncoming } from "./_sniffing.ts";
import { UNAVAILABLE } from "./handshake.ts";
import { serveHttp } from "./http.ts";
import type { Route } from "./routing.ts";
import type { TlsEndpoint } from "./tls_options.ts";
import type { Tunnel } from "./tunnel.ts";

const CONNECT_OK = new TextEncoder().encode(
  "HTTP/1.0 200 Connection Established\r\n\r\n",
);
const READ_BUFFER_BYTES = 16 * 1024;
/** Time a closing TLS connection gets to flush and say `close_notify`. */
const CLOSE_GRACE_MS = 2000;
/** Kite protocols a terminating relay serves HTTPS for. */
const HTTP_PROTOS: ReadonlySet<string> = new Set([
  "http",
  "http2",
  "http3",
  "websocket",
]);

/** The relay's TLS endpoints, with their secure contexts built once. */
export class TlsEndpoints {
  readonly #contexts = new Map<string, SecureContext>();

  constructor(endpoints: readonly TlsEndpoint[]) {
    for (const { name, cert, key } of endpoints) {
      const lower = name.toLowerCase();
      if (this.#contexts.has(lower)) continue; // the first one wins
      this.#contexts.set(lower, createSecureContext({ cert, key }));
    }
  }

  /** How many endpoints there are. */
  get size(): number {
    return this.#contexts.size;
  }

  /**
   * The secure context for `name`: an exact endpoint, else the one for
   * `name` with its first label replaced by `*`.
   */
  find(name: string): SecureContext | undefined {
    const lower = name.toLowerCase();
    const exact = this.#contexts.get(lower);
    if (exact !== undefined) return exact;
    const dot = lower.indexOf(".");
    if (dot <= 0) return undefined;
    return this.#contexts.get(`*${lower.slice(dot)}`);
  }

  /** Whether the relay terminates TLS for `name`. */
  covers(name: string): boolean {
    return this.find(name) !== undefined;
  }

  /**
   * Whether a kite is announced with `X-PageKite-SSL-OK`: an HTTP kite
   * whose name an endpoint covers.
   */
  announces(proto: string, domain: string): boolean {
    return HTTP_PROTOS.has(proto) && this.covers(domain);
  }
}

/** What TLS handling needs from the relay beyond {@linkcode RelayContext}. */
export interface TlsRelayContext extends RelayContext {
  /** The relay's TLS endpoints. */
  readonly tls: TlsEndpoints;
  /** Runs a tunnel handshake; true when a tunnel took the connection. */
  acceptTunnel(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean>;
}

/**
 * Handles a connection that began with a ClientHello (spec §4.3): SNI
 * pass-through to an `https` kite, termination for a TLS endpoint, else
 * the access-denied alert. `bytes` is everything read so far. Resolves
 * true when a stream or tunnel took the connection.
 */
export function serveTls(
  ctx: TlsRelayContext,
  conn: Deno.Conn,
  hello: TlsHello,
  bytes: Uint8Array,
  port: number,
): Promise<boolean> {
  const name = hello.sni ?? ctx.options.tlsDefaultName;
  return relayTls(ctx, conn, name, bytes, port, false);
}

/**
 * Serves `CONNECT host:443` (spec §4.4; the relay's `serveConnectTls`
 * hook): when `host` is exactly an `https` kite or a TLS endpoint covers
 * it, answers `200 Connection Established`, waits for the ClientHello, and
 * carries on as for a ClientHello for `host`; else answers
 * `HTTP/1.0 503 Unavailable`. `rest` holds the bytes that followed the
 * CONNECT head. Resolves true when a stream or tunnel took the connection.
 */
export async function serveTlsConnect(
  ctx: TlsRelayContext,
  conn: Deno.Conn,
  host: string,
  rest: Uint8Array,
  port: number,
): Promise<boolean> {
  const name = host.toLowerCase();
  if (exactHttps(ctx, name, port) === undefined && !ctx.tls.covers(name)) {
    await ctx.answer(conn, UNAVAILABLE);
    return false;
  }
  await writeAll(conn, CONNECT_OK);
  const hello = await readHello(ctx, conn, rest);
  if (hello === null) return false;
  return await relayTls(ctx, conn, name, hello, port, true);
}

function exactHttps(
  ctx: RelayContext,
  name: string,
  port: number,
): Route<Tunnel> | undefined {
  return ctx.registry.exact("https", name, port) ??
    ctx.registry.exact("https", name);
}

/** Reads until a ClientHello is complete; null when it never comes. */
async function readHello(
  ctx: RelayContext,
  conn: Deno.Conn,
  initial: Uint8Array,
): Promise<Uint8Array | null> {
  let bytes = initial;
  const buffer = new Uint8Array(READ_BUFFER_BYTES);
  const timer = setTimeout(
    () => conn[Symbol.dispose](),
    ctx.options.sniffTimeoutMs,
  );
  try {
    for (;;) {
      const result = sniffTlsHello(bytes);
      if (result.status === "ok") return bytes;
      if (result.status === "unrecognized") return null;
      const n = await conn.read(buffer);
      if (n === null) return null;
      bytes = concat(bytes, buffer.subarray(0, n));
    }
  } catch (error) {
    if (isDisconnectError(error) || error instanceof ProtocolLimitError) {
      return null;
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function relayTls(
  ctx: TlsRelayContext,
  conn: Deno.Conn,
  name: string | undefined,
  bytes: Uint8Array,
  port: number,
  exact: boolean,
): Promise<boolean> {
  if (name !== undefined) {
    const route = exact
      ? exactHttps(ctx, name, port)
      : ctx.registry.route("https", name, port);
    if (route !== undefined) {
      const stream = route.value.openStream(
        { proto: route.proto, host: name, port },
        conn.remoteAddr as Deno.NetAddr,
        bytes,
      );
      if (stream !== null) {
        ctx.release(conn);
        ctx.track(stream.attach(conn));
        return true;
      }
    }
    const context = ctx.tls.find(name);
    if (context !== undefined) {
      return await terminate(ctx, conn, context, bytes, port);
    }
  }
  await ctx.answer(conn, TLS_ALERT);
  return false;
}

/**
 * Terminates TLS on `conn` and handles the cleartext like a new plain
 * connection: HTTP is routed with `RTLS: 1`, a tunnel request opens a
 * TLS-wrapped tunnel.
 */
async function terminate(
  ctx: TlsRelayContext,
  conn: Deno.Conn,
  context: SecureContext,
  bytes: Uint8Array,
  port: number,
): Promise<boolean> {
  const clear = new TlsServerConn(conn, context, bytes);
  const timer = setTimeout(() => clear.close(), ctx.options.sniffTimeoutMs);
  let owned = false;
  try {
    await clear.handshake();
    const sniffed = await sniffIncoming(ctx, clear);
    if (sniffed === null) return false;
    const { what, bytes: first } = sniffed;
    clearTimeout(timer);
    const refusal = ctx.edge.refuse(clear, what.kind);
    if (refusal !== undefined) {
      if (refusal.length > 0) await ctx.answer(clear, refusal);
      return false;
    }
    switch (what.kind) {
      case "ping":
        await ctx.answer(
          clear,
          ctx.unavailable("ping.pagekite", "http", "connection"),
        );
        break;
      case "tunnel":
        owned = await ctx.acceptTunnel(clear, first);
        break;
      case "http":
        owned = await serveHttp(ctx, clear, what, first, port, { tls: true });
        break;
      default:
        break; // TLS in TLS, CONNECT, XMPP, ...: not served inside TLS
    }
    if (owned) {
      ctx.release(conn);
    } else {
      await clear.closeWrite().catch(() => {});
    }
    return owned;
  } catch (error) {
    if (isDisconnectError(error)) return false;
    throw error;
  } finally {
    clearTimeout(timer);
    if (!owned) clear.close();
  }
}

/**
 * A `node:stream` Duplex over a `Deno.Conn`, for `node:tls` to run on:
 * `prefix` (bytes already read while sniffing) comes out first.
 */
class ConnDuplex extends Duplex {
  readonly #conn: Deno.Conn;
  #reading = false;

  constructor(conn: Deno.Conn, prefix: Uint8Array) {
    super({ allowHalfOpen: true });
    this.#conn = conn;
    if (prefix.length > 0) this.push(Buffer.from(prefix));
  }

  override _read(): void {
    if (this.#reading) return;
    this.#reading = true;
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    this.#conn.read(buffer).then((n) => {
      this.#reading = false;
      this.push(n === null ? null : Buffer.from(buffer.buffer, 0, n));
    }, (error) => {
      this.#reading = false;
      if (isDisconnectError(error)) this.push(null);
      else this.destroy(error);
    });
  }

  override _write(
    chunk: Buffer,
    _encoding: string,
    callback: (error?: Error | null) => void,
  ): void {
    writeAll(this.#conn, chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#conn.closeWrite().then(() => callback(), () => callback());
  }

  override _destroy(
    error: Error | null,
    callback: (error?: Error | null) => void,
  ): void {
    this.#conn[Symbol.dispose]();
    callback(error);
  }
}

/**
 * The cleartext side of a connection whose TLS the relay terminates,
 * shaped like a `Deno.Conn` for tunnels and streams: `node:tls` runs the
 * server side over the sniffed connection.
 */
class TlsServerConn implements Deno.Conn {
  readonly localAddr: Deno.Addr;
  readonly remoteAddr: Deno.Addr;
  readonly #conn: Deno.Conn;
  readonly #duplex: ConnDuplex;
  readonly #socket: TLSSocket;
  readonly #finished = Promise.withResolvers<void>();
  #pending: Uint8Array = new Uint8Array(0);
  #waiters: (() => void)[] = [];
  #secure = false;
  #ended = false;
  #closed = false;
  #error: Error | undefined;
  #writeEnded = false;
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  #writable: WritableStream<Uint8Array<ArrayBufferLike>> | undefined;

  constructor(conn: Deno.Conn, context: SecureContext, prefix: Uint8Array) {
    this.#conn = conn;
    this.localAddr = conn.localAddr;
    this.remoteAddr = conn.remoteAddr;
    this.#duplex = new ConnDuplex(conn, prefix);
    this.#duplex.on("error", (error: Error) => this.#fail(error));
    this.#duplex.on("finish", () => this.#finished.resolve());
    this.#duplex.on("close", () => this.#finished.resolve());
    this.#socket = new TLSSocket(this.#duplex as never, {
      isServer: true,
      secureContext: context,
    });
    this.#socket.on("secure", () => {
      this.#secure = true;
      this.#notify();
    });
    this.#socket.on("readable", () => this.#notify());
    this.#socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    this.#socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
    this.#socket.on("error", (error: Error) => this.#fail(error));
  }

  /** Resolves once the TLS handshake is done. */
  async handshake(): Promise<void> {
    while (!this.#secure) {
      this.#check();
      if (this.#ended) {
        throw new Deno.errors.UnexpectedEof("TLS handshake did not complete");
      }
      await this.#change();
    }
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#pending.length === 0) {
      this.#check();
      const chunk = this.#socket.read() as Buffer | null;
      if (chunk !== null && chunk.length > 0) {
        this.#pending = new Uint8Array(
          chunk.buffer,
          chunk.byteOffset,
          chunk.length,
        );
        break;
      }
      if (this.#ended || this.#socket.readableEnded) return null;
      await this.#change();
    }
    const n = Math.min(p.length, this.#pending.length);
    p.set(this.#pending.subarray(0, n));
    this.#pending = this.#pending.subarray(n);
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    this.#check();
    if (this.#writeEnded) {
      return Promise.reject(new Deno.errors.BrokenPipe("Write side closed"));
    }
    const length = p.length;
    return new Promise((resolve, reject) => {
      this.#socket.write(Buffer.from(p), (error) => {
        if (error) reject(asDisconnect(error));
        else resolve(length);
      });
    });
  }

  async closeWrite(): Promise<void> {
    if (this.#writeEnded || this.#closed) return;
    this.#writeEnded = true;
    await new Promise<void>((resolve) => this.#socket.end(() => resolve()));
    await this.#finished.promise;
  }

  /**
   * Closes both directions. After a handshake, what was written is flushed
   * and `close_notify` sent first (within `CLOSE_GRACE_MS`), so a stream
   * that ends right after its last write loses nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#notify();
    if (!this.#secure || this.#error !== undefined || this.#socket.destroyed) {
      this.#destroy();
      return;
    }
    const timer = setTimeout(() => this.#destroy(), CLOSE_GRACE_MS);
    if (!this.#writeEnded) {
      this.#writeEnded = true;
      this.#socket.end();
    }
    void this.#finished.promise.then(() => {
      clearTimeout(timer);
      this.#destroy();
    });
  }

  #destroy(): void {
    this.#socket.destroy();
    this.#duplex.destroy();
    this.#conn[Symbol.dispose]();
    this.#finished.resolve();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Nagle is the inner connection's business: a no-op. */
  setNoDelay(): void {}

  ref(): void {}

  unref(): void {}

  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#readable ??= new ReadableStream({
      pull: async (controller) => {
        const buffer = new Uint8Array(READ_BUFFER_BYTES);
        const n = await this.read(buffer);
        if (n === null) controller.close();
        else controller.enqueue(buffer.subarray(0, n));
      },
      cancel: () => this.close(),
    });
  }

  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.#writable ??= new WritableStream({
      write: (chunk) => writeAll(this, chunk),
      close: () => this.closeWrite(),
      abort: () => this.close(),
    });
  }

  #check(): void {
    if (this.#closed) throw new Deno.errors.BadResource("Connection closed");
    if (this.#error !== undefined) throw asDisconnect(this.#error);
  }

  #fail(error: Error): void {
    this.#error ??= error;
    this.#notify();
  }

  #change(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** A TLS or socket failure is the peer's problem: a disconnect. */
function asDisconnect(error: Error): Error {
  if (isDisconnectError(error)) return error;
  return new Deno.errors.ConnectionReset(error.message, { cause: error });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
