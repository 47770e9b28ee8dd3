import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { createMemoryLogger } from '../log.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import { parseBackupControl } from './backupControl.js';
import { BackupCatalog, resolveBackupChain } from './catalog.js';
import type { CatalogBackup } from './catalog.js';
import { releaseAllBackupLocks } from './locks.js';
import { probackupFixtureDir } from '../testing/pgBinaries.js';

const fixtureInstance = join(probackupFixtureDir, 'catalog', 'backups', 'demo');
const storage = new LocalStorage();
let root: string;
let catalogPath: string;
let catalog: BackupCatalog;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'strata-catalog-'));
  catalogPath = join(root, 'catalog');
  catalog = new BackupCatalog(storage, catalogPath);
});

afterEach(async () => {
  await releaseAllBackupLocks();
  rmSync(root, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<StrataError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof StrataError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

/** A catalog with instance "demo" holding copies of the fixture's backup.control and file lists. */
async function copyFixtureBackups(): Promise<string> {
  await catalog.init();
  const instanceDir = join(catalogPath, 'backups', 'demo');
  mkdirSync(instanceDir);
  mkdirSync(join(catalogPath, 'wal', 'demo'));
  cpSync(join(fixtureInstance, 'pg_probackup.conf'), join(instanceDir, 'pg_probackup.conf'));
  for (const id of ['TP11R6', 'TP11RH', 'TP11RT']) {
    mkdirSync(join(instanceDir, id, 'database'), { recursive: true });
    for (const file of ['backup.control', 'backup_content.control']) {
      writeFileSync(join(instanceDir, id, file), readFileSync(join(fixtureInstance, id, file)));
    }
  }
  return instanceDir;
}

describe('catalog layout', () => {
  it('requires an absolute backup path', () => {
    expect(() => BackupCatalog.assertBackupPath('backups')).toThrow(
      '-B, --backup-path must be an absolute path',
    );
    expect(() => BackupCatalog.assertBackupPath('/srv/backups')).not.toThrow();
  });

  it('init creates backups/ and wal/ (0700) and refuses a non-empty directory', async () => {
    await catalog.init();
    expect(readdirSync(catalogPath).sort()).toEqual(['backups', 'wal']);
    expect(statSync(join(catalogPath, 'backups')).mode & 0o777).toBe(0o700);
    const error = await rejection(catalog.init());
    expect(error.message).toBe('The backup catalog already exists and is not empty');

    const empty = join(root, 'empty');
    mkdirSync(empty);
    await new BackupCatalog(storage, empty).init();
    expect(readdirSync(empty).sort()).toEqual(['backups', 'wal']);
  });

  it('add-instance creates both directories and a config without remote options', async () => {
    await catalog.init();
    await catalog.addInstance('main', {
      pgdata: '/var/lib/postgresql/16/main',
      systemIdentifier: 7365432109876543210n,
      xlogSegSize: 16777216,
      remoteHost: 'db1',
      remoteProto: 'ssh',
      retentionRedundancy: 2,
    });
    expect(readFileSync(join(catalogPath, 'backups', 'main', 'pg_probackup.conf'), 'utf8')).toBe(
      '# Backup instance information\npgdata = /var/lib/postgresql/16/main\nsystem-identifier = 7365432109876543210\n' +
        'xlog-seg-size = 16777216\n# Retention parameters\nretention-redundancy = 2\n',
    );
    expect(statSync(join(catalogPath, 'wal', 'main')).isDirectory()).toBe(true);
    const saved = await catalog.readInstanceConfig('main');
    expect(saved.retentionRedundancy).toBe(2);
    expect(saved).not.toHaveProperty('remoteHost');

    const again = await rejection(catalog.addInstance('main', { pgdata: '/x' }));
    expect(again.message).toBe(
      `Instance 'main' backup directory already exists: '${join(catalogPath, 'backups', 'main')}'`,
    );
    mkdirSync(join(catalogPath, 'wal', 'other'));
    const walTaken = await rejection(catalog.addInstance('other', { pgdata: '/x' }));
    expect(walTaken.message).toBe(
      `Instance 'other' WAL archive directory already exists: '${join(catalogPath, 'wal', 'other')}'`,
    );
    const noPgdata = await rejection(catalog.addInstance('third', {}));
    expect(noPgdata.message).toMatch(/^No postgres data directory specified\./);
    const noCatalog = await rejection(
      new BackupCatalog(storage, join(root, 'none')).addInstance('x', { pgdata: '/x' }),
    );
    expect(noCatalog.message).toBe(`Directory does not exist: '${join(root, 'none')}'`);
    expect(() => catalog.instanceDir('../escape')).toThrow('Invalid instance name "../escape"');
  });

  it('lists instances (directories only, sorted) and checks one exists', async () => {
    await catalog.init();
    for (const name of ['zeta', 'alpha', 'Mid']) mkdirSync(join(catalogPath, 'backups', name));
    writeFileSync(join(catalogPath, 'backups', 'stray-file'), '');
    expect(await catalog.listInstances()).toEqual(['Mid', 'alpha', 'zeta']);
    await catalog.assertInstanceExists('alpha');
    const missing = await rejection(catalog.assertInstanceExists('beta'));
    expect(missing.code).toBe('instance-not-found');
    expect(missing.message).toBe("Instance 'beta' does not exist in this backup catalog");
  });
});

describe('backups', () => {
  it('lists backups newest first, including unreadable ones as UNKNOWN', async () => {
    const instanceDir = await copyFixtureBackups();
    mkdirSync(join(instanceDir, 'TP11ZZ'));
    mkdirSync(join(instanceDir, 'TP11S0'));
    writeFileSync(
      join(instanceDir, 'TP11S0', 'backup.control'),
      'backup-mode = FULL\nstart-time\n',
    );
    mkdirSync(join(instanceDir, '.hidden'));
    mkdirSync(join(instanceDir, '1000000'));
    writeFileSync(
      join(instanceDir, '1000000', 'backup.control'),
      readFileSync(join(fixtureInstance, 'TP11R6', 'backup.control')),
    );

    const backups = await catalog.listBackups('demo');
    expect(backups.map((backup) => [backup.id, backup.status])).toEqual([
      ['TP11ZZ', 'UNKNOWN'],
      ['TP11S0', 'UNKNOWN'],
      ['TP11RT', 'OK'],
      ['TP11RH', 'OK'],
      ['TP11R6', 'OK'],
      ['TP11R6', 'OK'],
    ]);
    const [noControl, garbled] = backups;
    expect(noControl!.problems).toEqual([
      `Control file "${join(instanceDir, 'TP11ZZ', 'backup.control')}" doesn't exist`,
    ]);
    expect(noControl!.backupMode).toBeUndefined();
    expect(garbled!.problems).toEqual([
      `Syntax error in "start-time" (file "${join(instanceDir, 'TP11S0', 'backup.control')}", line 2)`,
    ]);
    const misnamed = backups.find((candidate) => candidate.dir === join(instanceDir, '1000000'))!;
    expect(misnamed.id).toBe('TP11R6');
    expect(misnamed.problems[0]).toMatch(
      /^backup ID in control file "TP11R6" doesn't match name of the backup folder/,
    );
    expect(await catalog.readBackup('demo', 'tp11rh')).toMatchObject({
      id: 'TP11RH',
      backupMode: 'DELTA',
    });
    expect(await catalog.readBackup('demo', 'AAAAAA')).toBeUndefined();
  });

  it('writes backup.control atomically with mode 0600', async () => {
    const instanceDir = await copyFixtureBackups();
    const original = readFileSync(join(instanceDir, 'TP11RH', 'backup.control'), 'utf8');
    const backup = (await catalog.readBackup('demo', 'TP11RH'))!;
    await catalog.writeBackupControl('demo', { ...backup, note: 'checked' });
    const path = join(instanceDir, 'TP11RH', 'backup.control');
    expect(readFileSync(path, 'utf8')).toBe(
      original.replace('content-crc', "note = 'checked'\ncontent-crc"),
    );
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(instanceDir, 'TP11RH')).sort()).toEqual([
      'backup.control',
      'backup_content.control',
      'database',
    ]);
  });

  it('changes a status under a brief exclusive lock, and not at all when it is already set', async () => {
    const instanceDir = await copyFixtureBackups();
    const backup = (await catalog.readBackup('demo', 'TP11RT'))!;
    await catalog.setBackupStatus(backup, 'CORRUPT', { endTime: 1800000000 });
    const path = join(instanceDir, 'TP11RT', 'backup.control');
    const text = readFileSync(path, 'utf8');
    expect(parseBackupControl(text, path)).toMatchObject({
      status: 'CORRUPT',
      endTime: 1800000000,
    });
    expect(backup.status).toBe('CORRUPT');
    expect(existsSync(join(instanceDir, 'TP11RT', 'backup.pid'))).toBe(false);
    const before = statSync(path).mtimeMs;
    await catalog.setBackupStatus(backup, 'CORRUPT', { endTime: 1900000000 });
    expect(statSync(path).mtimeMs).toBe(before);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('verifies content-crc when reading a file list and writes lists atomically', async () => {
    const instanceDir = await copyFixtureBackups();
    const backup = (await catalog.readBackup('demo', 'TP11RT'))!;
    const entries = await catalog.readContentList(backup);
    expect(entries).toHaveLength(1596);

    const crc = await catalog.writeContentList('demo', 'TP11RT', entries);
    expect(crc).toBe(backup.contentCrc);
    expect(await catalog.writeContentList(backup, entries.slice(1))).not.toBe(backup.contentCrc);
    expect(readdirSync(join(instanceDir, 'TP11RT')).sort()).toEqual([
      'backup.control',
      'backup_content.control',
      'database',
    ]);
    const error = await rejection(catalog.readContentList(backup));
    expect(error.code).toBe('corrupt');
    expect(error.message).toMatch(
      /^Backup TP11RT file list is corrupted: CRC of ".*backup_content.control" is \d+, backup\.control expects 2620150613$/,
    );
    expect(await catalog.readContentList({ ...backup, contentCrc: 0 })).toHaveLength(1595);
    expect(await catalog.readDatabaseMap(backup)).toBeUndefined();
  });

  it('marks RUNNING backups of dead processes as ERROR, leaving live ones alone', async () => {
    const instanceDir = await copyFixtureBackups();
    const running = (id: string) => {
      const path = join(instanceDir, id, 'backup.control');
      writeFileSync(path, readFileSync(path, 'utf8').replace('status = OK', 'status = RUNNING'));
    };
    running('TP11RT');
    running('TP11RH');
    writeFileSync(join(instanceDir, 'TP11RT', 'backup.pid'), '999999999\n');
    writeFileSync(join(instanceDir, 'TP11RH', 'backup.pid'), `${process.ppid}\n`);
    const logger = createMemoryLogger();

    const changed = await catalog.markDeadRunningBackupsAsError(
      'demo',
      logger,
      () => 1_800_000_000_000,
    );
    expect(changed).toEqual(['TP11RT']);
    const backups = await catalog.listBackups('demo');
    expect(backups.map((backup) => [backup.id, backup.status, backup.endTime])).toEqual([
      ['TP11RT', 'ERROR', 1800000000],
      ['TP11RH', 'RUNNING', Date.UTC(2026, 10, 24, 22, 14, 15) / 1000],
      ['TP11R6', 'OK', Date.UTC(2026, 10, 24, 22, 14, 4) / 1000],
    ]);
    expect(existsSync(join(instanceDir, 'TP11RT', 'backup.pid'))).toBe(false);
    expect(readFileSync(join(instanceDir, 'TP11RH', 'backup.pid'), 'utf8')).toBe(
      `${process.ppid}\n`,
    );
    expect(logger.records.map((record) => record.message)).toContain(
      'Backup TP11RT has status RUNNING, change it to ERROR',
    );
  });
});

describe('resolveBackupChain', () => {
  function backup(
    id: string,
    mode: CatalogBackup['backupMode'],
    parent?: string,
    status: CatalogBackup['status'] = 'OK',
  ): CatalogBackup {
    return {
      ...parseBackupControl(`start-time = '2026-01-01 00:00:00+00'\n`, '/x'),
      id,
      startTime: parseInt(id, 36),
      backupMode: mode,
      parentBackupId: parent,
      status,
      dir: `/c/${id}`,
      problems: [],
    };
  }

  it('follows parents down to the FULL backup', () => {
    const list = [
      backup('AAAAAD', 'PAGE', 'AAAAAC'),
      backup('AAAAAC', 'DELTA', 'AAAAAA'),
      backup('AAAAAA', 'FULL'),
    ];
    const result = resolveBackupChain(list, 'aaaaad');
    expect(result.chain.map((member) => member.id)).toEqual(['AAAAAA', 'AAAAAC', 'AAAAAD']);
    expect(result.broken).toBe(false);
    expect(result.invalid).toBeUndefined();
  });

  it('reports a missing parent as broken and the oldest invalid member as invalid', () => {
    const broken = resolveBackupChain(
      [backup('AAAAAD', 'PAGE', 'AAAAAC'), backup('AAAAAA', 'FULL')],
      'AAAAAD',
    );
    expect(broken).toMatchObject({ broken: true, missingParentId: 'AAAAAC' });
    expect(broken.chain.map((member) => member.id)).toEqual(['AAAAAD']);

    const invalid = resolveBackupChain(
      [
        backup('AAAAAD', 'PAGE', 'AAAAAC', 'ERROR'),
        backup('AAAAAC', 'DELTA', 'AAAAAA', 'CORRUPT'),
        backup('AAAAAA', 'FULL'),
      ],
      'AAAAAD',
    );
    expect(invalid.broken).toBe(false);
    expect(invalid.invalid?.id).toBe('AAAAAC');

    const cycle = resolveBackupChain([backup('AAAAAD', 'PAGE', 'AAAAAD')], 'AAAAAD');
    expect(cycle).toMatchObject({ broken: true });
    expect(() => resolveBackupChain([], 'AAAAAD')).toThrow('Requested backup AAAAAD is not found.');
  });
});
