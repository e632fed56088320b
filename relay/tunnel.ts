// Copyright 2026 the Kitewire authors. MIT license.
/**
 * A tunnel from a connector, as the relay sees it: the shared tunnel link
 * plus the relay's bookkeeping (kites, session ids, challenges, duplicate
 * checks) and the streams it opens for users.
 *
 * @module
 */

import type { Chunk } from "../protocol/mod.ts";
import {
  type LinkSettings,
  type LinkStats,
  TunnelLink,
} from "../tunnel/link.ts";
import type { TunnelStream } from "../tunnel/stream.ts";

/** Largest SID; pagekite.py and libpagekite keep SIDs to 8 digits. */
const MAX_SID = 99_999_999;

/** What a tunnel needs from its relay. */
export interface TunnelHost {
  /** Answers kite lines that arrived inside a NOOP chunk (AddKites). */
  addKites(tunnel: Tunnel, headers: [string, string][]): Promise<void>;
  /** The tunnel closed: unregister its kites. */
  closed(tunnel: Tunnel): void;
  /** Reports an error that ended a tunnel or stream. */
  report(error: unknown): void;
}

/** Settings of one tunnel. */
export interface TunnelSettings extends LinkSettings {
  /** Concurrent streams. */
  maxStreams: number;
  /** Whether a user may open a stream now (rate limits); absent: yes. */
  admitStream?: (tunnel: Tunnel, remote: Deno.NetAddr) => boolean;
}

/** What {@linkcode Tunnel.stats} reports. */
export interface TunnelStats extends LinkStats {
  /** The tunnel's number within the relay. */
  id: number;
  /** Live kites, `proto[-port]:domain`. */
  kites: string[];
  /** Features the connector advertised. */
  features: string[];
}

/** A connector's tunnel. */
export class Tunnel extends TunnelLink {
  readonly id: number;
  readonly features: readonly string[];
  /** Live kites on this tunnel, by key. */
  readonly kites = new Set<string>();
  /** Session ids handed to this connector (each answer gets one). */
  readonly sessionIds = new Set<string>();
  /** Kites already re-challenged after a bad token on this tunnel. */
  readonly rechallenged = new Set<string>();
  /** When another connector claimed one of our kites (we got pinged). */
  suspectedAt: number | undefined;
  /** A kite-less tunnel is closed at this time. */
  lingerUntil: number | undefined;
  readonly #host: TunnelHost;
  readonly #maxStreams: number;
  readonly #admitStream: TunnelSettings["admitStream"];
  #nextSid = 1;

  constructor(
    id: number,
    conn: Deno.Conn,
    features: readonly string[],
    host: TunnelHost,
    settings: TunnelSettings,
  ) {
    super(conn, settings);
    this.id = id;
    this.features = features;
    this.#host = host;
    this.#maxStreams = settings.maxStreams;
    this.#admitStream = settings.admitStream;
  }

  /**
   * Opens a stream for a user connection: queues the first chunk with the
   * routing headers and the bytes read so far. The caller then attaches
   * the user's connection. Returns null when the tunnel has no room.
   * `route.tls` marks a user whose TLS the relay terminated (`RTLS: 1`).
   */
  openStream(
    route: { proto: string; host: string; port: number; tls?: boolean },
    remote: Deno.NetAddr,
    prefix: Uint8Array,
  ): TunnelStream | null {
    if (this.closed || this.streams.size >= this.#maxStreams) return null;
    if (this.#admitStream?.(this, remote) === false) return null;
    const sid = this.#allocateSid();
    const stream = this.addStream(sid, route);
    this.sendChunk({
      sid,
      proto: route.proto,
      host: route.host,
      port: route.port,
      remoteIp: remote.hostname,
      remotePort: remote.port,
      body: prefix,
      ...(route.tls === true ? { remoteTls: true } : {}),
    });
    this.sendFirstSkb(sid);
    return stream;
  }

  /** Closes one stream at once (e.g. idle too long), telling the peer. */
  abortStream(sid: number): void {
    this.streams.get(sid)?.abort();
  }

  /** A snapshot of the tunnel's counters. */
  stats(): TunnelStats {
    return {
      ...this.linkStats(),
      id: this.id,
      kites: [...this.kites],
      features: [...this.features],
    };
  }

  protected override onNoop(chunk: Chunk): void {
    const headers = chunk.headers!;
    if (!headers.some(([name]) => isKiteLine(name))) return;
    this.#host.addKites(this, headers).catch((error) =>
      this.#host.report(error)
    );
  }

  protected override onClosed(reason: string): void {
    this.log.info("Tunnel {id} from {remote} closed: {reason}", {
      id: this.id,
      remote: this.remote,
      reason,
    });
    this.#host.closed(this);
  }

  protected override onError(error: unknown): void {
    this.#host.report(error);
  }

  #allocateSid(): number {
    for (;;) {
      const sid = this.#nextSid;
      this.#nextSid = sid >= MAX_SID ? 1 : sid + 1;
      if (!this.streams.has(sid)) return sid;
    }
  }
}

function isKiteLine(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === "x-pagekite" || lower === "x-beanstalk";
}
