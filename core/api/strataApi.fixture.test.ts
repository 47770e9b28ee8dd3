import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProbackupTime } from '../catalog/time.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import { probackupFixtureDir } from '../testing/pgBinaries.js';
import { createStrataApi } from './strataApi.js';

// Read-only calls on the catalog made by real pg_probackup 2.5.16 (see its README.md): every
// value is compared with what pg_probackup itself printed (show.json, show-archive.json) or with
// the catalog's own files. Nothing here writes: the fixture is read-only.

const catalog = join(probackupFixtureDir, 'catalog');
const showJson = JSON.parse(readFileSync(join(probackupFixtureDir, 'show.json'), 'utf8')) as Array<{
  backups: Array<Record<string, string | number>>;
}>;
const archiveJson = JSON.parse(
  readFileSync(join(probackupFixtureDir, 'show-archive.json'), 'utf8'),
) as Array<{
  timelines: Array<Record<string, unknown>>;
}>;
const api = createStrataApi({
  storage: new LocalStorage(),
  strataCommand: 'strata',
  demoDir: '/nonexistent/demo',
});

/** pg_probackup prints times in the zone it ran in (UTC for the fixture). */
function unixTime(text: string | number | undefined): number | null {
  return text === undefined ? null : parseProbackupTime(String(text), 'utc');
}

describe('StrataApi on the pg_probackup 2.5.16 fixture catalog', () => {
  it('openCatalog lists the instance with its facts', async () => {
    const info = await api.openCatalog(catalog);
    expect(info.backupPath).toBe(catalog);
    expect(info.instances).toEqual([
      {
        name: 'demo',
        pgdata: '/var/lib/postgresql/fixture/pgdata',
        systemIdentifier: '7711864751650477886',
        serverVersion: '15',
        walSegmentSizeBytes: 1024 * 1024,
        backupCount: 3,
        lastBackup: {
          id: 'TP11RT',
          status: 'OK',
          endTime: unixTime(showJson[0]!.backups[0]!['end-time']),
        },
        retention: { redundancy: 0, windowDays: 0, walDepth: 0 },
        remote: null,
      },
    ]);
  });

  it('openCatalog refuses a directory that is not a catalog, with the reason', async () => {
    await expect(api.openCatalog(join(catalog, 'backups'))).rejects.toThrow(
      `"${join(catalog, 'backups')}" is not a backup catalog: it has no backups/ directory`,
    );
    await expect(api.openCatalog('/nonexistent/catalog')).rejects.toThrow('it does not exist');
  });

  it('listBackups gives the fields of pg_probackup show --format=json', async () => {
    const backups = await api.listBackups(catalog, 'demo');
    const expected = showJson[0]!.backups;
    expect(backups.map((backup) => backup.id)).toEqual(expected.map((backup) => backup['id']));
    for (const [i, backup] of backups.entries()) {
      const shown = expected[i]!;
      expect(backup).toMatchObject({
        instance: 'demo',
        parentId: shown['parent-backup-id'] ?? null,
        mode: shown['backup-mode'],
        walMode: shown['wal'],
        status: shown['status'],
        timelineId: shown['current-tli'],
        parentTimelineId: shown['parent-tli'],
        startLsn: shown['start-lsn'],
        stopLsn: shown['stop-lsn'],
        startTime: unixTime(shown['start-time']),
        endTime: unixTime(shown['end-time']),
        recoveryTime: unixTime(shown['recovery-time']),
        recoveryXid: String(shown['recovery-xid']),
        dataBytes: shown['data-bytes'],
        walBytes: shown['wal-bytes'],
        uncompressedBytes: shown['uncompressed-bytes'],
        pgdataBytes: shown['pgdata-bytes'],
        compressAlg: shown['compress-alg'],
        compressLevel: shown['compress-level'],
        serverVersion: shown['server-version'],
        programVersion: shown['program-version'],
        fromReplica: false,
        note: shown['note'] ?? null,
        expireTime: null,
      });
    }
  });

  it('getBackup adds the databases with their sizes, the chain and the tablespaces', async () => {
    const page = await api.getBackup(catalog, 'demo', 'TP11RT');
    expect(page.chain).toEqual(['TP11R6', 'TP11RH', 'TP11RT']);
    expect(page.tablespaces).toEqual([]);
    expect(page.externalDirs).toEqual([]);
    expect(page.databases.map((db) => [db.name, db.oid])).toEqual([
      ['hr', 16385],
      ['postgres', 5],
      ['sales', 16384],
    ]);
    // The sizes are those of the data directory: block counts of the file list, also for the
    // files this PAGE backup did not store; sales holds 21000 rows, hr 2000.
    const files = await api.listBackupFiles(catalog, 'demo', 'TP11RT', {
      offset: 0,
      limit: 10_000,
    });
    for (const db of page.databases) {
      const expected = files.files
        .filter((file) => file.dbOid === db.oid)
        .reduce((sum, file) => sum + file.fullBytes, 0);
      expect(db.sizeBytes).toBe(expected);
      expect(db.sizeBytes).toBeGreaterThan(1024 * 1024);
    }
    await expect(api.getBackup(catalog, 'demo', 'ZZZZZZ')).rejects.toThrow(
      `Backup ZZZZZZ is not found in instance 'demo'`,
    );
  });

  it('listBackupFiles pages and filters the file list', async () => {
    const all = await api.listBackupFiles(catalog, 'demo', 'TP11R6', { offset: 0, limit: 5 });
    expect(all.files).toHaveLength(5);
    expect(all.total).toBeGreaterThan(900);
    const next = await api.listBackupFiles(catalog, 'demo', 'TP11R6', { offset: 5, limit: 5 });
    expect(next.files[0]!.path > all.files[4]!.path).toBe(true);
    const control = await api.listBackupFiles(catalog, 'demo', 'TP11R6', {
      offset: 0,
      limit: 10,
      pathFilter: 'PG_CONTROL',
    });
    expect(control).toEqual({
      total: 1,
      files: [
        {
          path: 'global/pg_control',
          externalDirNum: 0,
          isDatafile: false,
          dbOid: 0,
          storedBytes: 8192,
          fullBytes: 8192,
          // pg_probackup compresses data files only.
          compressAlg: 'none',
        },
      ],
    });
    // In the PAGE backup most data files are unchanged: stored as -1, yet their PGDATA size is known.
    const page = await api.listBackupFiles(catalog, 'demo', 'TP11RT', { offset: 0, limit: 10_000 });
    const unchanged = page.files.find((file) => file.isDatafile && file.storedBytes === -1);
    expect(unchanged?.fullBytes).toBeGreaterThan(0);
  });

  it('listTimelines matches pg_probackup show --archive --format=json', async () => {
    const timelines = await api.listTimelines(catalog, 'demo');
    const shown = archiveJson[0]!.timelines[0]!;
    expect(timelines).toEqual([
      {
        tli: shown['tli'],
        parentTli: shown['parent-tli'],
        switchpoint: shown['switchpoint'],
        minSegno: shown['min-segno'],
        maxSegno: shown['max-segno'],
        segmentCount: shown['n-segments'],
        sizeBytes: shown['size'],
        zratio: shown['zratio'],
        status: shown['status'],
        lostSegments: [],
        closestBackupId: null,
        backupIds: ['TP11RT', 'TP11RH', 'TP11R6'],
        // Segments 0x08 … 0x1B of 1 MB each.
        beginLsn: '0/800000',
        endLsn: '0/1C00000',
      },
    ]);
  });

  it('planRestore proposes the chain and checks the WAL, without writing anything', async () => {
    const destination = '/nonexistent/strata-restore-target';
    const latest = await api.planRestore({
      backupPath: catalog,
      instance: 'demo',
      target: { kind: 'latest' },
      destination,
    });
    expect(latest).toMatchObject({ backupId: 'TP11RT', walCoversTarget: true, problem: null });
    expect(latest.chain.map((backup) => backup.id)).toEqual(['TP11R6', 'TP11RH', 'TP11RT']);
    expect(latest.cliCommand).toBe(
      `strata restore -B ${catalog} --instance=demo -D ${destination} --recovery-target=latest`,
    );

    // The xid of the DELTA backup's recovery point: the newest backup that ends by it is TP11RH.
    const byXid = await api.planRestore({
      backupPath: catalog,
      instance: 'demo',
      target: { kind: 'xid', xid: '729' },
      destination,
    });
    expect(byXid).toMatchObject({ backupId: 'TP11RH', walCoversTarget: true, problem: null });
    expect(byXid.chain.map((backup) => backup.id)).toEqual(['TP11R6', 'TP11RH']);

    const beyond = await api.planRestore({
      backupPath: catalog,
      instance: 'demo',
      target: { kind: 'lsn', lsn: '0/7000000' },
      destination,
    });
    expect(beyond.backupId).toBe('TP11RT');
    expect(beyond.walCoversTarget).toBe(false);
    expect(beyond.problem).toMatch(
      /^Not enough WAL records to lsn 0\/7000000\. Recovery can be done up to time .*, xid \d+ and LSN 0\/1[0-9A-F]+$/,
    );

    const tooEarly = await api.planRestore({
      backupPath: catalog,
      instance: 'demo',
      target: { kind: 'time', time: '2020-01-01 00:00:00+00' },
      destination,
    });
    expect(tooEarly).toMatchObject({ backupId: null, walCoversTarget: false, chain: [] });
    expect(tooEarly.problem).toMatch(/^No OK backup ends before this target/);

    const partial = await api.planRestore({
      backupPath: catalog,
      instance: 'demo',
      target: { kind: 'latest' },
      destination,
      includeDatabases: ['sales', 'inventory'],
    });
    expect(partial.walCoversTarget).toBe(true);
    expect(partial.problem).toBe(
      "Failed to find a database 'inventory' in database_map of backup TP11RT",
    );

    const occupied = await api.planRestore({
      backupPath: catalog,
      instance: 'demo',
      target: { kind: 'immediate' },
      destination: catalog,
    });
    expect(occupied.problem).toMatch(/^Restore destination is not empty: /);
  });
});
