// Copyright 2026 the Kitewire authors. MIT license.
/**
 * A connector's live tunnel: streams opened by the relay are connected to
 * the kite's local service (spec §5.1), HTTP requests are rewritten on the
 * way (§5.3), and failures are answered to the user (§5.2).
 *
 * @module
 */

import { type Chunk, findKite, type KiteMatch } from "../protocol/mod.ts";
import { type LinkSettings, TunnelLink } from "../tunnel/link.ts";
import type { StreamFilter, TunnelStream } from "../tunnel/stream.ts";
import { HttpRequestFilter } from "./http_filter.ts";
import type { ConnectorKite } from "./options.ts";
import { TLS_ALERT, unavailablePage } from "./pages.ts";
import { proxyProtocolV1 } from "./proxy_protocol.ts";

/** Protocols whose requests are parsed and rewritten (spec §5.3). */
const HTTP_PROTOS = new Set(["http", "http2", "http3", "websocket"]);

/** What a session needs from its connector. */
export interface SessionHost {
  /** Kite lines or results arrived inside a NOOP chunk. */
  noop(session: Session, chunk: Chunk): void;
  /** The tunnel closed. */
  closed(session: Session, reason: string): void;
  /** Reports an error of a stream or the tunnel. */
  report(error: unknown): void;
  /** Tracks a task so shutdown can wait for it. */
  track(task: Promise<void>): void;
}

/** Settings of a session. */
export interface SessionSettings extends LinkSettings {
  /** Time to connect to a local service. */
  backendTimeoutMs: number;
  /** Concurrent streams. */
  maxStreams: number;
  /** The relay, `host:port`, for logs and events. */
  relay: string;
}

/** A live tunnel of a connector. */
export class Session extends TunnelLink {
  readonly #host: SessionHost;
  readonly #kites: ReadonlyMap<string, ConnectorKite>;
  readonly #backendTimeoutMs: number;
  readonly #maxStreams: number;
  /** The session id the relay gave this tunnel last. */
  sessionId: string | undefined;
  /** Whether a PONG ever came back on this tunnel. */
  ponged = false;

  constructor(
    conn: Deno.Conn,
    kites: ReadonlyMap<string, ConnectorKite>,
    host: SessionHost,
    settings: SessionSettings,
  ) {
    super(conn, settings);
    this.#host = host;
    this.#kites = kites;
    this.#backendTimeoutMs = settings.backendTimeoutMs;
    this.#maxStreams = settings.maxStreams;
  }

  protected override onNoop(chunk: Chunk): void {
    this.#host.noop(this, chunk);
  }

  protected override onPong(): void {
    this.ponged = true;
  }

  protected override onClosed(reason: string): void {
    this.#host.closed(this, reason);
  }

  protected override onError(error: unknown): void {
    this.#host.report(error);
  }

  /** The relay opens a stream: find the kite and dial its service. */
  protected override onUnknownStream(chunk: Chunk): void {
    const sid = chunk.sid!;
    if (chunk.proto === undefined || chunk.host === undefined) {
      // Not a stream opening: a late chunk of a stream we forgot.
      this.refuseStream(chunk);
      return;
    }
    const proto = chunk.proto;
    const match = findKite(this.#kites, proto, chunk.host, chunk.port ?? 0);
    const kite = match?.value;
    if (
      kite === undefined || kite.backend === null ||
      this.streams.size >= this.#maxStreams ||
      !allowed(kite, chunk.remoteIp)
    ) {
      // Never dial for a kite we do not fly.
      this.#refuse(sid, proto, chunk.host);
      return;
    }
    const stream = this.addStream(sid, { proto, host: chunk.host });
    this.sendFirstSkb(sid);
    if (kite.proxyProtocol === true) {
      stream.prepend(
        proxyProtocolV1({
          remoteIp: chunk.remoteIp ?? "",
          remotePort: chunk.remotePort ?? 0,
          publicPort: chunk.port ?? 0,
        }),
      );
    }
    if (chunk.body.length > 0) stream.deliver(chunk.body);
    if (chunk.eof !== undefined) stream.end(chunk.eof);
    this.#host.track(this.#connect(stream, match!, kite, chunk));
  }

  async #connect(
    stream: TunnelStream,
    match: KiteMatch<ConnectorKite>,
    kite: ConnectorKite,
    chunk: Chunk,
  ): Promise<void> {
    const backend = kite.backend!;
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({
        hostname: backend.host,
        port: backend.port,
        signal: AbortSignal.timeout(this.#backendTimeoutMs),
      });
      conn.setNoDelay(true);
    } catch (error) {
      this.log.info(
        "Stream {sid} for {kite}: cannot reach {host}:{port}: {error}",
        {
          sid: stream.sid,
          kite: match.key,
          host: backend.host,
          port: backend.port,
          error: error instanceof Error ? error.message : String(error),
        },
      );
      if (!stream.finished && !this.closed) {
        stream.drop();
        // Not forget(): that marks the SID gone, and #refuse sends no EOF
        // for a gone SID.
        this.streams.delete(stream.sid);
        this.#refuse(stream.sid, stream.proto, stream.host);
      }
      return;
    }
    await stream.attach(conn, this.#filter(kite, chunk, backend.host));
  }

  #filter(
    kite: ConnectorKite,
    chunk: Chunk,
    backendHost: string,
  ): StreamFilter | undefined {
    if (!HTTP_PROTOS.has(chunk.proto!)) return undefined;
    const filter = new HttpRequestFilter({
      remoteIp: chunk.remoteIp ?? "",
      remotePort: chunk.remotePort ?? 0,
      publicPort: chunk.port ?? 0,
      tls: chunk.remoteTls === true,
      forwardingHeaders: kite.rawHeaders !== true,
      ...(kite.rewriteHost === undefined || kite.rewriteHost === false ? {} : {
        rewriteHost: kite.rewriteHost === true ? backendHost : kite.rewriteHost,
      }),
      ...(kite.basicAuth === undefined ? {} : { basicAuth: kite.basicAuth }),
      requestFilter: kite.requestFilter === true,
    });
    return (bytes) => filter.push(bytes);
  }

  /** Answers a stream we cannot serve, as pagekite.py does (§5.2). */
  #refuse(sid: number, proto: string, host: string): void {
    if (HTTP_PROTOS.has(proto)) {
      this.sendData(sid, unavailablePage({ host, proto }));
    } else if (proto === "https") {
      this.sendData(sid, TLS_ALERT);
    }
    this.refuseStream({ sid, body: new Uint8Array() });
  }
}

/**
 * Whether `ip` may use the kite: an `allowIps` rule is an exact address,
 * or a prefix when it ends in `.` or `:` or has fewer than four IPv4 parts
 * (`10.1` allows `10.1.x.y`, as pagekite.py's `+ip/10.1`).
 */
function allowed(kite: ConnectorKite, ip: string | undefined): boolean {
  if (kite.allowIps === undefined) return true;
  if (ip === undefined) return false;
  const plain = ip.startsWith("::ffff:") ? ip.slice(7) : ip;
  return kite.allowIps.some((rule) => {
    if (rule.endsWith(".") || rule.endsWith(":")) return plain.startsWith(rule);
    if (!rule.includes(":") && rule.split(".").length < 4) {
      return plain.startsWith(`${rule}.`);
    }
    return plain === rule || ip === rule;
  });
}
