import { describe, expect, it } from 'vitest';
import {
  formatCatalogLocation,
  parseCatalogLocation,
  remoteHostId,
  splitRemoteHostId,
} from './catalogLocation.js';

describe('catalog locations', () => {
  it('splits a location into its host and its path, and back', () => {
    for (const [location, hostId, path] of [
      ['/var/lib/pg_probackup', undefined, '/var/lib/pg_probackup'],
      ['ssh://postgres@db1:22/var/lib/pg_probackup', 'postgres@db1:22', '/var/lib/pg_probackup'],
      ['ssh://backup@[fe80::1]:2222/b', 'backup@[fe80::1]:2222', '/b'],
      ['ssh://u@10.0.0.5:22/', 'u@10.0.0.5:22', '/'],
    ] as const) {
      expect(parseCatalogLocation(location)).toEqual({ hostId, path });
      expect(formatCatalogLocation({ hostId, path })).toBe(location);
    }
  });

  it('refuses relative paths and remote locations without user, port or path', () => {
    for (const bad of ['catalog', 'ssh://db1:22/b', 'ssh://u@db1/b', 'ssh://u@db1:22', '']) {
      expect(() => parseCatalogLocation(bad)).toThrow(/catalog location/);
    }
  });

  it('names hosts as user@host:port, bracketing IPv6 addresses', () => {
    expect(remoteHostId('postgres', 'db1', 22)).toBe('postgres@db1:22');
    expect(remoteHostId('postgres', '::1', 2222)).toBe('postgres@[::1]:2222');
    expect(splitRemoteHostId('postgres@[::1]:2222')).toEqual({
      user: 'postgres',
      host: '::1',
      port: 2222,
    });
    expect(splitRemoteHostId('postgres@db1')).toBeUndefined();
  });
});
