import { describe, expect, it } from 'vitest';
import type { RemoteHostInfo } from '../../../core/api/contract.js';
import {
  catalogLocation,
  emptyHostForm,
  hostFormProblem,
  hostKeyFileType,
  hostMatchingRemote,
  hostRequestOf,
  splitCatalogLocation,
} from './hosts.js';

function host(fields: Partial<RemoteHostInfo> & { host: string; user: string; port: number }) {
  return {
    id: `${fields.user}@${fields.host}:${fields.port}`,
    remotePath: null,
    sshOptions: null,
    hostKey: { keyType: 'ssh-ed25519', fingerprint: 'SHA256:x' },
    nodeVersion: 'v20.19.0',
    traffic: { bytesSent: 0, bytesReceived: 0 },
    connected: true,
    problem: null,
    ...fields,
  } satisfies RemoteHostInfo;
}

describe('ssh:// catalog locations', () => {
  it('makes a location from the "On" choice and splits one back for a connected host only', () => {
    expect(catalogLocation('postgres@db1:2222', ' /var/backups ')).toBe(
      'ssh://postgres@db1:2222/var/backups',
    );
    expect(catalogLocation(null, ' /var/backups ')).toBe('/var/backups');
    const hosts = [
      host({ host: 'db1', user: 'postgres', port: 2222 }),
      host({ host: 'db2', user: 'postgres', port: 22, connected: false }),
    ];
    expect(splitCatalogLocation('ssh://postgres@db1:2222/var/backups', hosts)).toEqual({
      hostId: 'postgres@db1:2222',
      path: '/var/backups',
    });
    expect(splitCatalogLocation('ssh://postgres@db2:22/var/backups', hosts)).toEqual({
      hostId: null,
      path: 'ssh://postgres@db2:22/var/backups',
    });
    expect(splitCatalogLocation('/local', hosts)).toEqual({ hostId: null, path: '/local' });
  });
});

describe('the connection form', () => {
  it('sends only typed fields, the port as a number', () => {
    expect(hostRequestOf({ ...emptyHostForm(), host: ' db1 ' })).toEqual({ host: 'db1', port: 22 });
    expect(
      hostRequestOf({
        host: 'db1',
        port: '',
        user: ' postgres ',
        remotePath: '/opt/node/bin',
        sshOptions: ' -i /k -o IdentitiesOnly=yes ',
      }),
    ).toEqual({
      host: 'db1',
      user: 'postgres',
      remotePath: '/opt/node/bin',
      sshOptions: '-i /k -o IdentitiesOnly=yes',
    });
  });

  it('explains a missing host, a bad port and a bad user', () => {
    expect(hostFormProblem(emptyHostForm())).toMatch(/--remote-host/);
    expect(hostFormProblem({ ...emptyHostForm(), host: 'db1', port: '0' })).toMatch(/1 to 65535/);
    expect(hostFormProblem({ ...emptyHostForm(), host: 'db1', port: 'ssh' })).toMatch(/"ssh"/);
    expect(hostFormProblem({ ...emptyHostForm(), host: 'pg@db1' })).toMatch(/not a host name/);
    expect(hostFormProblem({ ...emptyHostForm(), host: 'db1', user: 'a b' })).toMatch(
      /not a user name/,
    );
    expect(hostFormProblem({ ...emptyHostForm(), host: 'db1', port: '' })).toBeNull();
  });
});

describe('hosts and pg_probackup.conf', () => {
  it('matches the connected host of the configured host and port, and user when one is named', () => {
    const other = host({ host: 'db1', user: 'backup', port: 22 });
    const postgres = host({ host: 'db1', user: 'postgres', port: 22 });
    const elsewhere = host({ host: 'db1', user: 'postgres', port: 2222 });
    const hosts = [other, postgres, elsewhere];
    expect(hostMatchingRemote(hosts, { host: 'db1', port: 22, user: 'postgres' })).toBe(postgres);
    expect(hostMatchingRemote(hosts, { host: 'db1', port: 22, user: null })).toBe(other);
    expect(hostMatchingRemote(hosts, { host: 'db9', port: 22, user: null })).toBeNull();
    expect(
      hostMatchingRemote([{ ...postgres, connected: false }], {
        host: 'db1',
        port: 22,
        user: 'postgres',
      }),
    ).toBeNull();
    expect(hostMatchingRemote(hosts, null)).toBeNull();
  });

  it('names the host key file OpenSSH keeps for each key type', () => {
    expect(hostKeyFileType('ssh-ed25519')).toBe('ed25519');
    expect(hostKeyFileType('ecdsa-sha2-nistp256')).toBe('ecdsa');
    expect(hostKeyFileType('rsa-sha2-512')).toBe('rsa');
    expect(hostKeyFileType('ssh-rsa')).toBe('rsa');
    expect(hostKeyFileType('ssh-dss')).toBe('dsa');
  });
});
