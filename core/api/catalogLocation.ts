import { StrataError } from '../errors.js';

/**
 * Where a catalog is, as the contract's `backupPath` names it: an absolute path on this computer,
 * or `ssh://user@host:port/absolute/path` on a host connected with `connectHost`. The host part
 * is a `RemoteHostInfo.id`; IPv6 addresses are bracketed as in URLs (`ssh://u@[::1]:22/b`).
 * Browser-safe: the renderer builds and splits locations with the same functions.
 */
export interface CatalogLocation {
  /** `user@host:port` of a connected host; undefined for this computer. */
  hostId: string | undefined;
  /** The catalog directory on that host. */
  path: string;
}

const SSH_LOCATION = /^ssh:\/\/([^@/\s]+@(?:\[[0-9A-Fa-f:.]+\]|[^:/\s[\]]+):\d{1,5})(\/.*)$/;

export function isRemoteLocation(location: string): boolean {
  return location.startsWith('ssh://');
}

/** The parts of an `ssh://` location, or undefined when `location` is not a well-formed one. */
export function remoteLocationParts(
  location: string,
): { hostId: string; user: string; host: string; port: number; path: string } | undefined {
  const match = SSH_LOCATION.exec(location);
  const host = match ? splitRemoteHostId(match[1]!) : undefined;
  if (!match || !host) return undefined;
  return { hostId: match[1]!, ...host, path: match[2]! };
}

/** The host and path of a location, or StrataError('usage') saying what a location looks like. */
export function parseCatalogLocation(location: string): CatalogLocation {
  if (!isRemoteLocation(location)) {
    if (!location.startsWith('/')) {
      throw new StrataError(
        'usage',
        `"${location}" is not a catalog location: give an absolute path, or ssh://user@host:port/path for a connected host`,
      );
    }
    return { hostId: undefined, path: location };
  }
  const parts = remoteLocationParts(location);
  if (!parts) {
    throw new StrataError(
      'usage',
      `"${location}" is not a remote catalog location: write it as ssh://user@host:port/absolute/path`,
    );
  }
  return { hostId: parts.hostId, path: parts.path };
}

export function formatCatalogLocation(location: CatalogLocation): string {
  return location.hostId === undefined ? location.path : `ssh://${location.hostId}${location.path}`;
}

/** `user@host:port`, the id of a connected host (IPv6 addresses in brackets). */
export function remoteHostId(user: string, host: string, port: number): string {
  return `${user}@${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The parts of a host id, for a form prefilled from a location whose host is not connected. */
export function splitRemoteHostId(
  hostId: string,
): { user: string; host: string; port: number } | undefined {
  const match = /^([^@/\s]+)@(?:\[([0-9A-Fa-f:.]+)\]|([^:/\s[\]]+)):(\d{1,5})$/.exec(hostId);
  if (!match) return undefined;
  return { user: match[1]!, host: match[2] ?? match[3]!, port: Number(match[4]) };
}
