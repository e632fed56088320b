// Copyright 2026 the Kitewire authors. MIT license.
/**
 * Options of the relay's TLS (spec §1.1, §4.3): the names it terminates
 * TLS for, and the name a ClientHello without SNI stands for. Part of
 * {@linkcode RelayOptions}.
 *
 * @module
 */

/** A name the relay terminates TLS for (pagekite.py `--tls_endpoint`). */
export interface TlsEndpoint {
  /** A host name, or `*.parent` for every name one label below `parent`. */
  name: string;
  /** The certificate chain, PEM. */
  cert: string;
  /** The private key, PEM. */
  key: string;
}

/** TLS options of {@linkcode serveRelay}. */
export interface RelayTlsOptions {
  /**
   * Names the relay terminates TLS for when no `https` kite takes a
   * ClientHello (exact name, else the name with its first label replaced
   * by `*`). The cleartext is handled like a plain connection: HTTP
   * requests reach their kites with `RTLS: 1`, and connectors may open
   * TLS-wrapped tunnels (directly or after `CONNECT name:443`). HTTP kites
   * a name covers are announced with `X-PageKite-SSL-OK`.
   *
   * @default {[]}
   */
  tlsEndpoints?: TlsEndpoint[];
  /**
   * The name a ClientHello without SNI stands for (pagekite.py
   * `--tls_default`). Absent: such a ClientHello gets the access-denied
   * alert.
   */
  tlsDefaultName?: string;
}

/** {@linkcode RelayTlsOptions} with defaults filled in. */
export interface ResolvedTlsOptions {
  tlsEndpoints: TlsEndpoint[];
  tlsDefaultName?: string;
}

/** Fills in defaults and checks the TLS options. */
export function resolveTlsOptions(
  options: RelayTlsOptions,
): ResolvedTlsOptions {
  const tlsEndpoints = options.tlsEndpoints ?? [];
  for (const [i, endpoint] of tlsEndpoints.entries()) {
    if (
      typeof endpoint.name !== "string" || endpoint.name === "" ||
      typeof endpoint.cert !== "string" || typeof endpoint.key !== "string"
    ) {
      throw new TypeError(
        `Cannot serve relay: tlsEndpoints[${i}] needs a name, cert and key`,
      );
    }
  }
  const resolved: ResolvedTlsOptions = { tlsEndpoints };
  if (options.tlsDefaultName !== undefined) {
    resolved.tlsDefaultName = options.tlsDefaultName.toLowerCase();
  }
  return resolved;
}
