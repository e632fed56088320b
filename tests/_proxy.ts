// Copyright 2026 the Kitewire authors. MIT license.
// A recording TCP proxy for interop tests: it sits between a connector and a
// relay on 127.0.0.1, forwards both directions with half-close, and keeps
// every byte, so a test can decode what really went over the wire.

/** One connection through the proxy, and what went through it. */
export interface ProxiedConnection {
  /** Accept order, from 0. */
  readonly index: number;
  /**
   * The local port of the proxy's connection to the relay: the relay sees
   * this connection as `127.0.0.1:<relaySidePort>`. Undefined if the relay
   * could not be reached.
   */
  readonly relaySidePort: number | undefined;
  /** Whether both directions have ended and both sockets are closed. */
  readonly closed: boolean;
  /** The bytes the connector sent toward the relay, so far. */
  connectorToRelay(): Uint8Array;
  /** The bytes the relay sent toward the connector, so far. */
  relayToConnector(): Uint8Array;
  /**
   * The same bytes, one entry per `read()` of the proxy: what arrived
   * together, and was written on to the connector in one piece.
   */
  relayToConnectorReads(): readonly Uint8Array[];
  /** The connector's bytes, one entry per `read()` of the proxy. */
  connectorToRelayReads(): readonly Uint8Array[];
}

/** Where {@linkcode startRecordingProxy} forwards to. */
export interface RecordingProxyOptions {
  /**
   * The relay's address.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /** The relay's port. */
  port: number;
}

/** A running proxy; `close()` ends every connection and waits. */
export interface RecordingProxy extends AsyncDisposable {
  /** The port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** Every connection so far, in accept order. */
  connections(): readonly ProxiedConnection[];
  /** Stops accepting, closes every connection and waits; idempotent. */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (a free port) and forwards to the relay. */
export function startRecordingProxy(
  options: RecordingProxyOptions,
): RecordingProxy {
  return new ProxyServer(options);
}

class Recording implements ProxiedConnection {
  readonly index: number;
  relaySidePort: number | undefined;
  closed = false;
  readonly toRelay: Uint8Array[] = [];
  readonly toConnector: Uint8Array[] = [];

  constructor(index: number) {
    this.index = index;
  }

  connectorToRelay(): Uint8Array {
    return concatAll(this.toRelay);
  }

  relayToConnector(): Uint8Array {
    return concatAll(this.toConnector);
  }

  relayToConnectorReads(): readonly Uint8Array[] {
    return this.toConnector.slice();
  }

  connectorToRelayReads(): readonly Uint8Array[] {
    return this.toRelay.slice();
  }
}

/** A connection that can be closed from several places, once. */
class Socket {
  readonly conn: Deno.Conn;
  #closed = false;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }
}

class ProxyServer implements RecordingProxy {
  readonly port: number;
  readonly #target: { hostname: string; port: number };
  readonly #listener: Deno.TcpListener;
  readonly #recordings: Recording[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #tasks = new Set<Promise<void>>();
  #closing: Promise<void> | undefined;

  constructor(options: RecordingProxyOptions) {
    this.#target = {
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port,
    };
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = this.#listener.addr.port;
    this.#track(this.#accept());
  }

  connections(): readonly ProxiedConnection[] {
    return this.#recordings.slice();
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#listener.close();
      for (const socket of this.#sockets) socket.close();
      while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #track(task: Promise<void>): void {
    const tracked = task.finally(() => this.#tasks.delete(tracked));
    this.#tasks.add(tracked);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      if (this.#closing !== undefined) {
        conn.close();
        return;
      }
      const recording = new Recording(this.#recordings.length);
      this.#recordings.push(recording);
      this.#track(this.#serve(new Socket(conn), recording));
    }
  }

  async #serve(connector: Socket, recording: Recording): Promise<void> {
    this.#sockets.add(connector);
    let relay: Socket | undefined;
    try {
      try {
        relay = new Socket(await Deno.connect(this.#target));
      } catch {
        return; // relay down: the connector sees its connection close
      }
      this.#sockets.add(relay);
      if (this.#closing !== undefined) return;
      recording.relaySidePort = (relay.conn.localAddr as Deno.NetAddr).port;
      await Promise.all([
        pump(connector, relay, recording.toRelay),
        pump(relay, connector, recording.toConnector),
      ]);
    } finally {
      connector.close();
      relay?.close();
      this.#sockets.delete(connector);
      if (relay !== undefined) this.#sockets.delete(relay);
      recording.closed = true;
    }
  }
}

/**
 * Copies `from` to `to`, recording every read, and half-closes `to` at
 * EOF. Any error (a reset, or the proxy closing) closes both sockets so the
 * other direction ends too.
 */
async function pump(
  from: Socket,
  to: Socket,
  record: Uint8Array[],
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (let n; (n = await from.conn.read(buffer)) !== null;) {
      const bytes = buffer.slice(0, n);
      record.push(bytes);
      for (let at = 0; at < bytes.length;) {
        at += await to.conn.write(bytes.subarray(at));
      }
    }
    await to.conn.closeWrite();
  } catch {
    from.close();
    to.close();
  }
}

function concatAll(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
