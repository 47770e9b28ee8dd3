import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultBackupMeta } from '../../catalog/backupControl.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { parseControlFile } from '../../format/pgControl.js';
import type { ControlFile } from '../../format/pgControl.js';
import type { TimelineHistoryEntry } from '../../format/timelineHistory.js';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { fileKey, findShiftLsn, redoPointOf, removeRedundantFiles } from './incremental.js';

const BASE_CONTROL = parseControlFile(
  readFileSync(join(import.meta.dirname, '../../format/fixtures/pg_control.15')),
);

function control(fields: {
  redo: bigint;
  tli?: number;
  minRecoveryPoint?: bigint;
  minRecoveryPointTli?: number;
  backupStartPoint?: bigint;
  checksums?: boolean;
}): ControlFile {
  return {
    ...BASE_CONTROL,
    checkPointCopy: {
      ...BASE_CONTROL.checkPointCopy,
      redo: fields.redo,
      thisTimeLineId: fields.tli ?? 1,
    },
    minRecoveryPoint: fields.minRecoveryPoint ?? 0n,
    minRecoveryPointTli: fields.minRecoveryPointTli ?? 0,
    backupStartPoint: fields.backupStartPoint ?? 0n,
    dataChecksumVersion: fields.checksums === false ? 0 : 1,
  };
}

function backup(id: string, stopLsn: bigint, timelineId = 1): CatalogBackup {
  return { ...defaultBackupMeta(), id, stopLsn, timelineId, status: 'OK', dir: '/x', problems: [] };
}

/** Destination backup first, FULL last. */
const CHAIN = [backup('PAGE02', 0x5000n), backup('DELTA1', 0x3000n), backup('FULL00', 0x1000n)];

describe('redoPointOf', () => {
  it('takes the checkpoint redo, lowered to minRecoveryPoint and backupStartPoint', () => {
    expect(redoPointOf(control({ redo: 0x4000n, tli: 3 }))).toEqual({
      lsn: 0x4000n,
      timelineId: 3,
    });
    expect(
      redoPointOf(
        control({ redo: 0x4000n, tli: 3, minRecoveryPoint: 0x3500n, minRecoveryPointTli: 2 }),
      ),
    ).toEqual({ lsn: 0x3500n, timelineId: 2 });
    expect(
      redoPointOf(
        control({
          redo: 0x4000n,
          tli: 3,
          minRecoveryPoint: 0x3500n,
          minRecoveryPointTli: 2,
          backupStartPoint: 0x2000n,
        }),
      ),
    ).toEqual({ lsn: 0x2000n, timelineId: 3 });
  });
});

describe('findShiftLsn', () => {
  const noHistory = (): Promise<TimelineHistoryEntry[] | undefined> => Promise.resolve([]);

  it('uses the stop LSN of the newest member that ended before the redo point', async () => {
    const logger = createMemoryLogger();
    const shift = await findShiftLsn(CHAIN, control({ redo: 0x4000n }), noHistory, logger);
    expect(shift).toBe(0x3000n);
    const info = logger.records.filter((r) => r.level === 'INFO').map((r) => r.message);
    expect(info).toEqual([
      'Backup DELTA1 is chosen as shiftpoint, its Stop LSN will be used as shift LSN',
      'Destination directory redo point 0/4000 on tli 1 is within reach of backup DELTA1 with Stop LSN 0/3000 on tli 1',
      'shift LSN: 0/3000',
    ]);
  });

  it('accepts a member on an ancestor timeline of the redo timeline', async () => {
    const history = (tli: number) =>
      Promise.resolve(tli === 2 ? [{ timelineId: 1, switchLsn: 0x3800n, reason: '' }] : undefined);
    expect(
      await findShiftLsn(CHAIN, control({ redo: 0x4000n, tli: 2 }), history, createMemoryLogger()),
    ).toBe(0x3000n);
  });

  it('refuses a redo point before the FULL, a foreign timeline and a cluster without checksums', async () => {
    await expect(
      findShiftLsn(CHAIN, control({ redo: 0x800n }), noHistory, createMemoryLogger()),
    ).rejects.toThrow(
      "Cannot perform incremental restore of backup chain PAGE02 in 'lsn' mode, because destination directory redo point 0/800 on tli 1 is out of reach",
    );
    const logger = createMemoryLogger();
    await expect(
      findShiftLsn(
        CHAIN,
        control({ redo: 0x4000n, tli: 2 }),
        () => Promise.resolve(undefined),
        logger,
      ),
    ).rejects.toThrow('redo point 0/4000 on tli 2 is out of reach');
    expect(logger.records.map((r) => r.message)).toContain(
      "Failed to get history for redo timeline 2, multi-timeline incremental restore in 'lsn' mode is impossible",
    );
    await expect(
      findShiftLsn(CHAIN, control({ redo: 0x4000n, checksums: false }), noHistory, logger),
    ).rejects.toThrow(
      "Incremental restore in 'lsn' mode require data_checksums to be enabled in destination data directory",
    );
  });
});

describe('removeRedundantFiles', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'strata-incremental-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('deletes what the backup lacks, through tablespace links, and keeps the rest', async () => {
    const pgdata = join(root, 'pgdata');
    const tablespace = join(root, 'ts');
    const external = join(root, 'ext');
    for (const dir of ['global', 'base/5', 'pg_tblspc', 'pg_wal']) {
      mkdirSync(join(pgdata, dir), { recursive: true });
    }
    mkdirSync(join(tablespace, 'PG_15_1', '5'), { recursive: true });
    mkdirSync(join(external, 'old'), { recursive: true });
    symlinkSync(tablespace, join(pgdata, 'pg_tblspc', '16390'));
    const files = [
      'PG_VERSION',
      'postmaster.opts',
      'global/pg_control.pbk.bak',
      'global/pg_filenode.map',
      'base/5/1259',
      'base/5/99999',
      'pg_wal/000000010000000000000009',
      'pg_tblspc/16390/PG_15_1/5/16400',
      'pg_tblspc/16390/PG_15_1/5/16401',
      '.hidden',
    ];
    for (const file of files) writeFileSync(join(pgdata, file), file);
    writeFileSync(join(external, 'keep.conf'), 'x');
    writeFileSync(join(external, 'old', 'gone.conf'), 'x');

    const backupKeys = new Set(
      [
        'PG_VERSION',
        'global',
        'global/pg_filenode.map',
        'base',
        'base/5',
        'base/5/1259',
        'pg_tblspc',
        'pg_tblspc/16390',
        'pg_tblspc/16390/PG_15_1',
        'pg_tblspc/16390/PG_15_1/5',
        'pg_tblspc/16390/PG_15_1/5/16400',
        'pg_wal',
      ].map((path) => fileKey(0, path)),
    );
    backupKeys.add(fileKey(1, 'keep.conf'));
    const kept = await removeRedundantFiles(
      new LocalStorage(),
      { pgdata, externalDirs: [external], backupKeys, cleanup: false, now: Date.now },
      createMemoryLogger(),
    );

    expect([...kept].sort()).toEqual(
      [
        fileKey(0, 'PG_VERSION'),
        fileKey(0, 'base/5/1259'),
        fileKey(0, 'global/pg_control.pbk.bak'),
        fileKey(0, 'pg_tblspc/16390/PG_15_1/5/16400'),
        fileKey(1, 'keep.conf'),
      ].sort(),
    );
    for (const gone of [
      'postmaster.opts',
      'global/pg_filenode.map',
      'base/5/99999',
      'pg_wal/000000010000000000000009',
    ]) {
      expect(existsSync(join(pgdata, gone))).toBe(false);
    }
    expect(existsSync(join(tablespace, 'PG_15_1', '5', '16401'))).toBe(false);
    expect(existsSync(join(tablespace, 'PG_15_1', '5', '16400'))).toBe(true);
    expect(lstatSync(join(pgdata, 'pg_tblspc', '16390')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(external, 'old'))).toBe(false);
    expect(existsSync(join(pgdata, '.hidden'))).toBe(true);

    const wiped = await removeRedundantFiles(
      new LocalStorage(),
      { pgdata, externalDirs: [], backupKeys, cleanup: true, now: Date.now },
      createMemoryLogger(),
    );
    expect(wiped.size).toBe(0);
    expect(existsSync(join(pgdata, 'PG_VERSION'))).toBe(false);
    expect(existsSync(join(pgdata, 'base', '5'))).toBe(true);
  });
});
