// Copyright 2026 the Kitewire authors. MIT license.
// The relay's edge under stress: graceful shutdown (drain) and descriptor
// exhaustion (EMFILE) in the accept loop.
//
// Shutdown. `Drain` runs once `shutdown()` began and the listeners are
// closed: every `DRAIN_POLL_MS` it closes tunnels that carry no stream, so a
// tunnel goes as soon as its last in-flight stream ends; when the grace
// (`shutdownGraceMs`) is over, or on `force()` (a second `shutdown()` call,
// or the relay's signal aborting during the grace) it closes everything
// that is left at once.
//
// Exhaustion. When `accept()` fails because the process is out of
// descriptors, the connection stays in the kernel's backlog. The relay
// then sheds load: it closes the oldest connections still being identified
// (sent no complete request head or tunnel request yet), a tenth of them and
// at least one, and backs off `acceptBackoffMs` before accepting again.
// Connections owned by tunnels and streams are never shed, so existing
// tunnels keep serving; an unidentified connection costs a client nothing
// it had. Holding a reserve descriptor (opening /dev/null and releasing it
// on EMFILE) was the other option; it needs read permission the relay does
// not otherwise need, and frees only one slot.

import type { Tunnel } from "./tunnel.ts";

/** How often a draining relay looks for tunnels whose streams ended. */
const DRAIN_POLL_MS = 25;

/** What a drain needs from the relay. */
export interface DrainHost {
  readonly tunnels: ReadonlySet<Tunnel>;
  /** Closes every tunnel and connection that is left. */
  closeAll(reason: string): void;
}

/** A relay's graceful shutdown, from its start to the last tunnel. */
export class Drain {
  readonly #host: DrainHost;
  #poll: ReturnType<typeof setInterval> | undefined;
  #grace: ReturnType<typeof setTimeout> | undefined;
  #forced = false;
  #reason = "";

  constructor(host: DrainHost, graceMs: number) {
    this.#host = host;
    this.#grace = setTimeout(() => this.force("shutdown grace over"), graceMs);
    this.#poll = setInterval(() => this.#closeIdle(), DRAIN_POLL_MS);
    this.#closeIdle();
  }

  /** Whether everything was closed already. */
  get forced(): boolean {
    return this.#forced;
  }

  /** Closes everything now. Idempotent. */
  force(reason: string): void {
    if (this.#forced) return;
    this.#forced = true;
    clearTimeout(this.#grace);
    this.#grace = undefined;
    this.#reason = reason;
    // The poll keeps running: a handshake that was under way may still
    // add a tunnel, which is closed on the next tick.
    this.#host.closeAll(reason);
  }

  /** Stops the timers (the relay has no tasks left). */
  stop(): void {
    clearInterval(this.#poll);
    clearTimeout(this.#grace);
    this.#poll = this.#grace = undefined;
  }

  #closeIdle(): void {
    if (this.#forced) {
      this.#host.closeAll(this.#reason);
      return;
    }
    for (const tunnel of [...this.#host.tunnels]) {
      if (tunnel.streamCount === 0) tunnel.close("relay shutdown");
    }
  }
}

/** Whether an `accept()` error means the process ran out of descriptors. */
export function isOutOfDescriptors(error: unknown): boolean {
  // EMFILE (24): per process; ENFILE (23): system-wide.
  return error instanceof Error &&
    /Too many open files|os error 2[34]\b/.test(error.message);
}

/**
 * Closes the oldest connections of `conns` (insertion order): a tenth of
 * them, at least one. Returns how many were closed.
 */
export function shedOldest(conns: Set<Deno.Conn>): number {
  const count = Math.max(1, Math.ceil(conns.size / 10));
  let shed = 0;
  for (const conn of conns) {
    if (shed >= count) break;
    conns.delete(conn);
    conn[Symbol.dispose]();
    shed++;
  }
  return shed;
}
