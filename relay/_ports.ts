// Copyright 2026 the Kitewire authors. MIT license.
// Public ports of the relay: port aliases (pagekite.py `--portalias`), raw
// ports (`--rawports`) and what the tunnel response announces.

import type { TunnelResponse } from "../protocol/mod.ts";
import type { ResolvedRelayOptions } from "./options.ts";

type PortOptions = Pick<ResolvedRelayOptions, "rawPorts" | "portAliases">;

/** Throws for a raw port or port alias that is not a port number. */
export function checkEdgeOptions(options: PortOptions): void {
  for (const port of options.rawPorts) {
    if (port !== "virtual" && !isPort(port)) {
      throw new RangeError(
        `Cannot serve relay: raw port ${port} is not "virtual" or a port number`,
      );
    }
  }
  for (const [from, to] of Object.entries(options.portAliases)) {
    if (!isPort(Number(from)) || !isPort(to)) {
      throw new RangeError(
        `Cannot serve relay: port alias ${from}:${to} is not two port numbers`,
      );
    }
  }
}

/** The public port a connection on listening port `port` stands for. */
export function publicPort(options: PortOptions, port: number): number {
  return Object.hasOwn(options.portAliases, port)
    ? options.portAliases[port]!
    : port;
}

/** The public ports (`X-PageKite-Ports`): listening ports after aliases. */
export function publicPorts(
  options: PortOptions,
  addrs: readonly Deno.NetAddr[],
): number[] {
  return [...new Set(addrs.map((a) => publicPort(options, a.port)))];
}

/** Whether a `raw-<port>` kite, or a CONNECT to `port`, may be served. */
export function isRawPort(options: PortOptions, port: number): boolean {
  return options.rawPorts.includes("virtual") ||
    options.rawPorts.includes(port);
}

/** Raw ports that need a listener of their own. */
export function rawListenPorts(
  options: PortOptions,
  addrs: readonly Deno.NetAddr[],
): number[] {
  const bound = new Set(addrs.map((a) => a.port));
  return [
    ...new Set(
      options.rawPorts.filter((p): p is number =>
        p !== "virtual" && !bound.has(p)
      ),
    ),
  ];
}

/** `rawPorts` for the tunnel response, when the relay has raw ports. */
export function announcedRawPorts(
  options: PortOptions,
): Pick<TunnelResponse, "rawPorts"> {
  return options.rawPorts.length === 0
    ? {}
    : { rawPorts: [...new Set(options.rawPorts)] };
}

function isPort(port: unknown): port is number {
  return typeof port === "number" && Number.isInteger(port) && port > 0 &&
    port < 65536;
}
