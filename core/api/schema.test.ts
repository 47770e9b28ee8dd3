import { describe, expect, it } from 'vitest';
import { isStrataError } from '../errors.js';
import { apiMethodNames } from './methods.js';
import { apiArgumentSchemas, parseApiArguments } from './schema.js';

function rejection(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    if (isStrataError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a rejection');
}

const restore = {
  backupPath: '/var/backups/catalog',
  instance: 'main',
  target: { kind: 'time', time: '2026-11-25 10:00:00+00' },
  destination: '/var/lib/postgresql/restored',
};

describe('parseApiArguments', () => {
  it('has a schema for every method of the contract', () => {
    expect(Object.keys(apiArgumentSchemas).sort()).toEqual([...apiMethodNames].sort());
  });

  it('returns valid arguments as typed', () => {
    expect(parseApiArguments('getBackup', ['/c', 'main', 'TP11RT'])).toEqual([
      '/c',
      'main',
      'TP11RT',
    ]);
    expect(parseApiArguments('planRestore', [restore])).toEqual([restore]);
    expect(parseApiArguments('listJobs', [])).toEqual([]);
  });

  it('accepts an omitted optional last argument as missing or as JSON null', () => {
    expect(parseApiArguments('startValidate', ['/c', 'main'])).toEqual(['/c', 'main']);
    expect(parseApiArguments('startValidate', ['/c', 'main', null])).toEqual(['/c', 'main']);
    expect(parseApiArguments('startValidate', ['/c', 'main', 'TP11RT'])).toEqual([
      '/c',
      'main',
      'TP11RT',
    ]);
  });

  it('takes catalogs on connected hosts, and SSH hosts that cannot smuggle options', () => {
    const remote = 'ssh://postgres@db1.example:2222/var/lib/pg_probackup';
    expect(parseApiArguments('listBackups', [remote, 'main'])).toEqual([remote, 'main']);
    expect(
      parseApiArguments('planRestore', [{ ...restore, destinationHost: 'postgres@[::1]:22' }]),
    ).toEqual([{ ...restore, destinationHost: 'postgres@[::1]:22' }]);
    expect(rejection(() => parseApiArguments('openCatalog', ['ssh://db1/var/b'])).message).toBe(
      'openCatalog: backupPath must be an absolute path or ssh://user@host:port/absolute/path',
    );
    const host = { host: 'db1.example', port: 22, user: 'postgres' };
    expect(parseApiArguments('connectHost', [host])).toEqual([host]);
    expect(
      rejection(() => parseApiArguments('connectHost', [{ ...host, host: '-db1' }])).message,
    ).toBe('connectHost: request.host must not start with "-"');
    expect(
      rejection(() => parseApiArguments('connectHost', [{ ...host, user: 'a b' }])).message,
    ).toBe('connectHost: request.user must be a host name, an address or a user name');
    expect(
      rejection(() => parseApiArguments('connectHost', [{ ...host, trustHostKey: 'yes' }])).message,
    ).toBe('connectHost: request.trustHostKey must be a fingerprint such as SHA256:…');
    expect(rejection(() => parseApiArguments('disconnectHost', ['db1'])).message).toBe(
      'disconnectHost: hostId must be a host ID such as postgres@db1:22',
    );
  });

  it('names the argument and the rule a value breaks', () => {
    expect(rejection(() => parseApiArguments('openCatalog', ['relative/catalog']))).toEqual({
      code: 'usage',
      message:
        'openCatalog: backupPath must be an absolute path or ssh://user@host:port/absolute/path',
    });
    expect(
      rejection(() => parseApiArguments('getBackup', ['/c', '../etc', 'TP11RT'])).message,
    ).toBe('getBackup: instance must be a directory name (no "/", not "." or "..")');
    expect(
      rejection(() =>
        parseApiArguments('planRestore', [{ ...restore, target: { kind: 'lsn', lsn: '12345' } }]),
      ).message,
    ).toBe('planRestore: request.target.lsn must be an LSN such as 0/3000028');
    expect(
      rejection(() =>
        parseApiArguments('startBackup', [
          { backupPath: '/c', instance: 'i', mode: 'FULL', stream: 'yes' },
        ]),
      ).message,
    ).toBe('startBackup: request.stream expected boolean, received string');
  });

  it('rejects unknown keys, extra arguments and values of the wrong kind', () => {
    expect(
      rejection(() => parseApiArguments('planRestore', [{ ...restore, force: true }])).message,
    ).toMatch(/^planRestore: request Unrecognized key: "force"/);
    expect(rejection(() => parseApiArguments('listJobs', ['extra'])).code).toBe('usage');
    expect(rejection(() => parseApiArguments('listBackups', { backupPath: '/c' })).message).toBe(
      'listBackups: the arguments must be a JSON array',
    );
    expect(
      rejection(() =>
        parseApiArguments('planRestore', [
          { ...restore, target: { kind: 'xid', xid: '4294967296' } },
        ]),
      ).message,
    ).toBe('planRestore: request.target.xid must fit in 32 bits');
    expect(
      rejection(() =>
        parseApiArguments('setPin', [
          '/c',
          'main',
          'TP11RT',
          { ttlSeconds: 10, expireTime: '2030-01-01 00:00:00' },
        ]),
      ).message,
    ).toMatch(/ttlSeconds and expireTime cannot be given together/);
    expect(
      rejection(() =>
        parseApiArguments('listBackupFiles', ['/c', 'main', 'TP11RT', { offset: 0, limit: 0 }]),
      ).message,
    ).toBe('listBackupFiles: page.limit Too small: expected number to be >=1');
  });
});
