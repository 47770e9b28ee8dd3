import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { createMemoryLogger } from '../../log.js';
import type { LogRecord } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import {
  DAY_SEC,
  createSyntheticInstance,
  lsnIn,
  writeSyntheticBackup,
  writeSyntheticHistory,
  writeSyntheticSegments,
} from '../../testing/catalogBuilder.js';
import type { SyntheticBackup } from '../../testing/catalogBuilder.js';
import type { CommandContext } from '../context.js';
import { showBackups } from '../show/show.js';
import { deleteCommand } from './deleteCommand.js';
import type { DeleteParams } from './deleteCommand.js';

process.env.TZ = 'UTC';

const NOW = Date.UTC(2026, 11, 1, 12) / 1000;
const INSTANCE = 'main';
/** A PID no process has: above the largest pid_max Linux allows (2^22). */
const DEAD_PID = 4_194_305;

let catalogPath: string;
let logger: ReturnType<typeof createMemoryLogger>;
let ctx: CommandContext;

beforeEach(() => {
  catalogPath = mkdtempSync(join(tmpdir(), 'strata-delete-'));
  createSyntheticInstance(catalogPath, INSTANCE);
  logger = createMemoryLogger();
  ctx = { storage: new LocalStorage(), logger, now: () => NOW * 1000 };
});

afterEach(() => {
  rmSync(catalogPath, { recursive: true, force: true });
});

function lines(records: LogRecord[] = logger.records): string[] {
  return records.map((record) => `${record.level}: ${record.message}`);
}

function backupIds(): string[] {
  return readdirSync(join(catalogPath, 'backups', INSTANCE))
    .filter((name) => name !== 'pg_probackup.conf')
    .sort();
}

function walFiles(): string[] {
  return readdirSync(join(catalogPath, 'wal', INSTANCE)).sort();
}

function backup(daysAgo: number, fields: Partial<SyntheticBackup> = {}): CatalogBackup {
  const recoveryTime = NOW - daysAgo * DAY_SEC;
  return writeSyntheticBackup(catalogPath, INSTANCE, {
    startTime: recoveryTime - 60,
    recoveryTime,
    ...fields,
  });
}

function child(daysAgo: number, parent: CatalogBackup, fields: Partial<SyntheticBackup> = {}) {
  return backup(daysAgo, { backupMode: 'DELTA', parentBackupId: parent.id, ...fields });
}

function params(fields: Partial<DeleteParams>): DeleteParams {
  return {
    backupPath: catalogPath,
    instance: INSTANCE,
    deleteExpired: false,
    mergeExpired: false,
    deleteWal: false,
    dryRun: false,
    retention: {},
    threads: 1,
    noValidate: false,
    noSync: true,
    progress: false,
    ...fields,
  };
}

describe('delete -i', () => {
  it('deletes the backup and all its descendants, oldest first, and keeps the rest', async () => {
    const full = backup(10, { dataBytes: 20000, walBytes: 16384 });
    const d1 = child(9, full, { dataBytes: 5000, walBytes: 16384 });
    const d2 = child(8, d1, { dataBytes: 5000, walBytes: 16384, stream: false });
    const other = backup(5);
    const result = await deleteCommand(ctx, params({ backupId: d1.id.toLowerCase() }));
    expect(result.deletedIds).toEqual([d1.id, d2.id]);
    expect(backupIds()).toEqual([full.id, other.id].sort());
    expect(lines()).toEqual([
      `LOG: Backup ${d2.id} will be deleted`,
      `LOG: Backup ${d1.id} will be deleted`,
      // 5000 + 16384 (STREAM) + 5000 (ARCHIVE: its WAL is in the archive) = 26384 bytes.
      `INFO: Resident data size to free by delete of backup ${d1.id} : 26kB`,
      `INFO: Delete: ${d1.id} 2026-11-22 12:00:00+00`,
      `INFO: Delete: ${d2.id} 2026-11-23 12:00:00+00`,
    ]);
  });

  it('reports and changes nothing with --dry-run', async () => {
    const full = backup(10);
    child(9, full);
    await deleteCommand(ctx, params({ backupId: full.id, dryRun: true }));
    expect(backupIds()).toHaveLength(2);
    expect(lines().filter((line) => line.includes('can be deleted'))).toHaveLength(2);
  });

  it('refuses an unknown backup with pg_probackup message', async () => {
    backup(10);
    await expect(deleteCommand(ctx, params({ backupId: 'SZZZZZ' }))).rejects.toThrow(
      'Failed to find backup SZZZZZ, cannot delete',
    );
  });

  it('deletes a backup whose backup.control is unreadable (listed as UNKNOWN)', async () => {
    const damaged = backup(10);
    writeFileSync(join(damaged.dir, 'backup.control'), 'status = OK\nstart-time = \x01garbage\n');
    const kept = backup(5);
    await deleteCommand(ctx, params({ backupId: damaged.id }));
    expect(backupIds()).toEqual([kept.id]);
  });
});

describe('delete: option checks', () => {
  it.each([
    [
      { deleteExpired: true, backupId: 'SZZZZZ' },
      'You cannot specify --delete-expired and (-i, --backup-id) options together',
    ],
    [
      { mergeExpired: true, backupId: 'SZZZZZ' },
      'You cannot specify --merge-expired and (-i, --backup-id) options together',
    ],
    [
      { status: 'OK', backupId: 'SZZZZZ' },
      'You cannot specify --status and (-i, --backup-id) options together',
    ],
    [
      {},
      'You must specify at least one of the delete options: --delete-expired |--delete-wal |--merge-expired |--status |(-i, --backup-id)',
    ],
    [{ status: 'sleeping' }, "Unknown value for '--status' option: 'sleeping'"],
  ])('%o is refused', async (fields, message) => {
    backup(1);
    await expect(deleteCommand(ctx, params(fields))).rejects.toThrow(message);
  });
});

describe('delete --status', () => {
  it('deletes every backup with that status and their descendants', async () => {
    const good = backup(10);
    const failed = backup(9, { status: 'ERROR' });
    const failedChild = child(8, failed, { status: 'ORPHAN' });
    const goodChild = child(7, good);
    await deleteCommand(ctx, params({ status: 'error' }));
    expect(backupIds()).toEqual([good.id, goodChild.id].sort());
    expect(lines()).toEqual(
      expect.arrayContaining([
        "INFO: Deleting all backups with status 'ERROR'",
        `INFO: Backup ${failedChild.id} with status ORPHAN will be deleted`,
        `INFO: Backup ${failed.id} with status ERROR will be deleted`,
        'INFO: Resident data size to free by delete of 2 backups: 4096B',
        `INFO: Successfully deleted 2 backups from instance '${INSTANCE}'`,
      ]),
    );
  });

  it('warns when no backup has the status, or the instance has none', async () => {
    await deleteCommand(ctx, params({ status: 'CORRUPT' }));
    expect(lines()).toEqual([`WARNING: Instance '${INSTANCE}' has no backups`]);
    backup(3);
    logger.records.length = 0;
    await deleteCommand(ctx, params({ status: 'CORRUPT', dryRun: true }));
    expect(lines()).toEqual([
      "INFO: Deleting all backups with status 'CORRUPT' in dry run mode",
      'INFO: Resident data size to free by delete of 0 backups: 0',
      `WARNING: Instance '${INSTANCE}' has no backups with status 'CORRUPT'`,
    ]);
  });
});

describe('delete --delete-expired / retention (fixed clock)', () => {
  it('the §9.3 example with window 7: E is deleted, A and B are retained for C', async () => {
    const E = backup(30);
    const A = backup(20);
    const B = child(10, A, { backupMode: 'PAGE' });
    const C = child(3, B, { backupMode: 'PAGE' });
    const result = await deleteCommand(
      ctx,
      params({ deleteExpired: true, retention: { retentionWindow: 7 } }),
    );
    expect(result.deletedIds).toEqual([E.id]);
    expect(backupIds()).toEqual([A.id, B.id, C.id].sort());
    const text = lines();
    expect(text).toContain(
      `LOG: Retain backup ${B.id} because his descendant ${C.id} is guarded by retention`,
    );
    expect(text).toContain(
      `LOG: Retain backup ${A.id} because his descendant ${C.id} is guarded by retention`,
    );
    expect(text.slice(-3)).toEqual([
      'INFO: There are no backups to merge by retention policy',
      'INFO: Purging finished',
      'INFO: There is no WAL to purge by retention policy',
    ]);
  });

  it('redundancy 2 from pg_probackup.conf; the command line wins over it', async () => {
    createSyntheticInstance(catalogPath, INSTANCE, {
      extraLines: ['# Retention parameters', 'retention-redundancy = 2'],
    });
    const f1 = backup(40);
    child(39, f1);
    const f2 = backup(30);
    const f3 = backup(20);
    const f3d = child(19, f3);
    await deleteCommand(ctx, params({ deleteExpired: true }));
    expect(backupIds()).toEqual([f2.id, f3.id, f3d.id].sort());
    await deleteCommand(
      ctx,
      params({ deleteExpired: true, retention: { retentionRedundancy: 1 } }),
    );
    expect(backupIds()).toEqual([f3.id, f3d.id].sort());
  });

  it('window and redundancy together keep what either keeps', async () => {
    backup(30);
    backup(20);
    const f3 = backup(10);
    const f4 = backup(2);
    await deleteCommand(
      ctx,
      params({ deleteExpired: true, retention: { retentionRedundancy: 2, retentionWindow: 5 } }),
    );
    expect(backupIds()).toEqual([f3.id, f4.id].sort());
  });

  it('a pinned backup is never deleted by retention', async () => {
    const pinned = backup(60, { expireTime: NOW + DAY_SEC });
    backup(50);
    const fresh = backup(1);
    await deleteCommand(
      ctx,
      params({ deleteExpired: true, retention: { retentionRedundancy: 1, retentionWindow: 7 } }),
    );
    expect(backupIds()).toEqual([pinned.id, fresh.id].sort());
  });

  it('warns and stops when no policy is set; dry-run evaluates but deletes nothing', async () => {
    backup(30);
    await deleteCommand(ctx, params({ deleteExpired: true }));
    expect(lines()).toEqual(['WARNING: Retention policy is not set']);
    logger.records.length = 0;
    await deleteCommand(
      ctx,
      params({ deleteExpired: true, dryRun: true, retention: { retentionWindow: 7 } }),
    );
    expect(backupIds()).toHaveLength(1);
    expect(lines()).toContain('INFO: There are no backups to delete by retention policy');
  });
});

/** Four STREAM backups starting in segments 2, 4, 6 and 8 of timeline 1; WAL segments 1..10. */
function walDepthCatalog(overrides: Array<Partial<SyntheticBackup>> = []): CatalogBackup[] {
  const backups = [2, 4, 6, 8].map((segno, i) =>
    backup(40 - i * 10, {
      startLsn: lsnIn(segno),
      stopLsn: lsnIn(segno, 0x2100),
      ...overrides[i],
    }),
  );
  writeSyntheticSegments(catalogPath, INSTANCE, { timelineId: 1, fromSegno: 1, toSegno: 10 });
  return backups;
}

function segmentNames(from: number, to: number, timelineId = 1): string[] {
  const names: string[] = [];
  for (let segno = from; segno <= to; segno++) {
    names.push(
      `${timelineId.toString(16).padStart(8, '0')}00000000${segno.toString(16).toUpperCase().padStart(8, '0')}`,
    );
  }
  return names;
}

describe('delete --delete-wal (§9.4, §9.5)', () => {
  it('without wal-depth keeps the WAL from the oldest backup on', async () => {
    walDepthCatalog();
    await deleteCommand(ctx, params({ deleteWal: true }));
    expect(walFiles()).toEqual(segmentNames(2, 10));
    expect(lines()).toEqual(
      expect.arrayContaining([
        'INFO: On timeline 1 WAL segments between 000000010000000000000001 and 000000010000000000000002 will be removed',
        'INFO: Logical WAL size to remove on timeline 1 : 1024kB',
        'INFO: Resident WAL size to free on timeline 1 : 100B',
      ]),
    );
  });

  it('wal-depth 2: anchor B3, WAL before its start segment removed (the §9.4 example)', async () => {
    walDepthCatalog();
    await deleteCommand(ctx, params({ deleteWal: true, retention: { walDepth: 2 } }));
    expect(walFiles()).toEqual(segmentNames(6, 10));
    expect(lines()).toContain('LOG: On timeline 1 WAL is protected from purge at 0/600028');
  });

  it('wal-depth 2 with B3 CORRUPT: anchor B2', async () => {
    walDepthCatalog([{}, {}, { status: 'CORRUPT' }, {}]);
    await deleteCommand(ctx, params({ deleteWal: true, retention: { walDepth: 2 } }));
    expect(walFiles()).toEqual(segmentNames(4, 10));
  });

  it('wal-depth 1 with the newest backup pinned: the pin is ignored, anchor B3', async () => {
    walDepthCatalog([{}, {}, {}, { expireTime: NOW + DAY_SEC }]);
    await deleteCommand(ctx, params({ deleteWal: true, retention: { walDepth: 1 } }));
    expect(walFiles()).toEqual(segmentNames(6, 10));
    expect(lines()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^LOG: Pinned backup \w+ is ignored for the purpose of WAL retention$/,
        ),
      ]),
    );
  });

  it('wal-depth 2 keeps the start..stop segments of an older ARCHIVE backup', async () => {
    walDepthCatalog([{ stream: false, stopLsn: lsnIn(3, 0x100) }]);
    await deleteCommand(ctx, params({ deleteWal: true, retention: { walDepth: 2 } }));
    expect(walFiles()).toEqual([...segmentNames(2, 3), ...segmentNames(6, 10)]);
  });

  it('--dry-run removes nothing', async () => {
    walDepthCatalog();
    await deleteCommand(ctx, params({ deleteWal: true, dryRun: true, retention: { walDepth: 1 } }));
    expect(walFiles()).toEqual(segmentNames(1, 10));
    expect(lines()).toContain(
      'INFO: On timeline 1 WAL segments between 000000010000000000000001 and 000000010000000000000008 can be removed',
    );
  });

  it('a timeline without backups loses every segment-like file; .history files stay', async () => {
    walDepthCatalog();
    writeSyntheticHistory(catalogPath, INSTANCE, 2, [
      { timelineId: 1, switchLsn: lsnIn(9, 0x100) },
    ]);
    // Timeline 2 branched off in segment 9, after B4 stopped: B4 is its closest backup.
    writeSyntheticSegments(catalogPath, INSTANCE, { timelineId: 2, fromSegno: 9, toSegno: 11 });
    writeFileSync(
      join(catalogPath, 'wal', INSTANCE, '000000020000000000000009.00000028.backup'),
      'x',
    );
    writeSyntheticHistory(catalogPath, INSTANCE, 3, [
      { timelineId: 1, switchLsn: lsnIn(1, 0x100) },
    ]);
    // Timeline 3 branched off before any backup: it has no closest backup and no backups.
    writeSyntheticSegments(catalogPath, INSTANCE, { timelineId: 3, fromSegno: 1, toSegno: 2 });
    writeFileSync(join(catalogPath, 'wal', INSTANCE, '000000030000000000000003.partial'), 'x');
    await deleteCommand(ctx, params({ deleteWal: true }));
    expect(walFiles()).toEqual([
      ...segmentNames(2, 10),
      '00000002.history',
      '000000020000000000000009',
      '000000020000000000000009.00000028.backup',
      '00000002000000000000000A',
      '00000002000000000000000B',
      '00000003.history',
    ]);
    expect(lines()).toContain('INFO: On timeline 3 all files will be removed');
  });

  it('wal-depth keeps a branch reachable: the interval from its closest backup to the switch point', async () => {
    walDepthCatalog();
    writeSyntheticHistory(catalogPath, INSTANCE, 2, [
      { timelineId: 1, switchLsn: lsnIn(5, 0x100) },
    ]);
    writeSyntheticSegments(catalogPath, INSTANCE, { timelineId: 2, fromSegno: 5, toSegno: 6 });
    // wal-depth 1 anchors timeline 1 at B4 (segment 8); timeline 2 has no backups of its own and
    // is reached from B2 (stop in segment 4), so segments 4..5 of timeline 1 stay too.
    await deleteCommand(ctx, params({ deleteWal: true, retention: { walDepth: 1 } }));
    expect(walFiles()).toEqual([
      ...segmentNames(4, 5),
      ...segmentNames(8, 10),
      '00000002.history',
      ...segmentNames(5, 6, 2),
    ]);
  });

  it('refuses to purge when a history file is damaged', async () => {
    walDepthCatalog();
    writeFileSync(join(catalogPath, 'wal', INSTANCE, '00000002.history'), '1\tnot-an-lsn\n');
    writeSyntheticSegments(catalogPath, INSTANCE, { timelineId: 2, fromSegno: 9, toSegno: 9 });
    await expect(deleteCommand(ctx, params({ deleteWal: true }))).rejects.toThrow(
      /Syntax error in timeline history file 00000002.history, line 1/,
    );
    expect(walFiles()).toHaveLength(12);
  });
});

describe('interrupted deletes are finished by the next command that lists backups', () => {
  it('a DELETING backup whose owner is dead is removed by show', async () => {
    const kept = backup(10);
    const doomed = backup(5, { status: 'DELETING' });
    writeFileSync(join(doomed.dir, 'backup.pid'), `${DEAD_PID}\n`);
    await showBackups(ctx, { backupPath: catalogPath, instance: INSTANCE, format: 'plain' });
    expect(backupIds()).toEqual([kept.id]);
    expect(lines()).toContain(
      `WARNING: Backup ${doomed.id} has status DELETING, finishing its deletion`,
    );
  });

  it('delete -i of a backup a killed delete left DELETING finishes it without an error', async () => {
    const doomed = backup(5, { status: 'DELETING' });
    writeFileSync(join(doomed.dir, 'backup.pid'), `${DEAD_PID}\n`);
    const result = await deleteCommand(ctx, params({ backupId: doomed.id }));
    expect(result.deletedIds).toEqual([doomed.id]);
    expect(backupIds()).toEqual([]);
  });

  it('a DELETING backup whose owner is alive is left alone', async () => {
    const busy = backup(5, { status: 'DELETING' });
    writeFileSync(join(busy.dir, 'backup.pid'), `${process.ppid}\n`);
    await new BackupCatalog(ctx.storage, catalogPath).repairInterruptedBackups(
      INSTANCE,
      logger,
      ctx.now,
    );
    expect(backupIds()).toEqual([busy.id]);
  });

  it('directories holding only what a killed delete or backup left are removed', async () => {
    const kept = backup(10);
    const lockOnly = join(catalogPath, 'backups', INSTANCE, 'T0000A');
    mkdirSync(lockOnly);
    writeFileSync(join(lockOnly, 'backup.pid'), `${DEAD_PID}\n`);
    writeFileSync(join(lockOnly, 'backup.control.tmp'), 'half');
    const freshEmpty = join(catalogPath, 'backups', INSTANCE, 'T0000B');
    mkdirSync(freshEmpty);
    const damaged = join(catalogPath, 'backups', INSTANCE, 'T0000C');
    mkdirSync(join(damaged, 'database'), { recursive: true });
    await new BackupCatalog(ctx.storage, catalogPath).repairInterruptedBackups(
      INSTANCE,
      logger,
      ctx.now,
    );
    // The empty directory may be a backup between mkdir and lock: it stays until it is 30 s old.
    expect(backupIds()).toEqual([kept.id, 'T0000B', 'T0000C'].sort());
    expect(existsSync(lockOnly)).toBe(false);
    const longAgo = new Date(Date.now() - 31_000);
    utimesSync(freshEmpty, longAgo, longAgo);
    await new BackupCatalog(ctx.storage, catalogPath).repairInterruptedBackups(
      INSTANCE,
      logger,
      ctx.now,
    );
    expect(backupIds()).toEqual([kept.id, 'T0000C'].sort());
  });
});
