import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backupIdFromTime } from '../catalog/backupId.js';
import { defaultBackupMeta, formatBackupControl } from '../catalog/backupControl.js';
import type { CatalogBackup } from '../catalog/catalog.js';
import { formatContentList } from '../catalog/contentList.js';
import { crc32c } from '../format/crc32c.js';
import { formatLsn } from '../format/lsn.js';
import type { Lsn } from '../format/lsn.js';
import { historyFileName, walSegmentName } from '../format/walNames.js';
import type { BackupMeta } from '../catalog/types.js';

/**
 * Synthetic catalogs for tests of the catalog's lifecycle (retention, WAL purge, show --archive):
 * control files written with the catalog's own writer, WAL files that have the right names and
 * sizes but no WAL inside. Nothing here can be restored; tests that restore take real backups.
 */

export const DAY_SEC = 24 * 60 * 60;

export type SyntheticBackup = Partial<BackupMeta> & { startTime: number };

/** A backup's metadata as a listing returns it, for pure functions over listings. */
export function syntheticBackup(fields: SyntheticBackup, dir = ''): CatalogBackup {
  const meta: BackupMeta = {
    ...defaultBackupMeta(),
    backupMode: 'FULL',
    status: 'OK',
    timelineId: 1,
    programVersion: '2.5.0',
    serverVersion: '15',
    dataBytes: 1024,
    walBytes: 1024,
    stream: true,
    ...fields,
    id: fields.id ?? backupIdFromTime(fields.startTime),
  };
  if (fields.recoveryTime === undefined) meta.recoveryTime = fields.startTime + 10;
  if (fields.endTime === undefined) meta.endTime = fields.startTime + 20;
  return { ...meta, dir, problems: [] };
}

/** `init` + `add-instance` without a cluster: the directories and a pg_probackup.conf. */
export function createSyntheticInstance(
  catalogPath: string,
  instance: string,
  config: { xlogSegSize?: number; extraLines?: string[] } = {},
): void {
  mkdirSync(join(catalogPath, 'backups', instance), { recursive: true, mode: 0o700 });
  mkdirSync(join(catalogPath, 'wal', instance), { recursive: true, mode: 0o700 });
  writeFileSync(
    join(catalogPath, 'backups', instance, 'pg_probackup.conf'),
    [
      '# Backup instance information',
      'pgdata = /nonexistent/pgdata',
      'system-identifier = 7000000000000000001',
      `xlog-seg-size = ${config.xlogSegSize ?? 1024 * 1024}`,
      ...(config.extraLines ?? []),
      '',
    ].join('\n'),
  );
}

/** Writes a backup directory: backup.control, an empty file list with its CRC, a `database/` with one file. */
export function writeSyntheticBackup(
  catalogPath: string,
  instance: string,
  fields: SyntheticBackup,
): CatalogBackup {
  const dir = join(
    catalogPath,
    'backups',
    instance,
    fields.id ?? backupIdFromTime(fields.startTime),
  );
  mkdirSync(join(dir, 'database', 'base'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'database', 'base', 'data'), 'synthetic');
  const list = formatContentList([]);
  writeFileSync(join(dir, 'backup_content.control'), list);
  const backup = syntheticBackup({ contentCrc: crc32c(list), ...fields }, dir);
  writeFileSync(join(dir, 'backup.control'), formatBackupControl(backup));
  return backup;
}

/** Segments `fromSegno`..`toSegno` of a timeline in the archive, `sizeBytes` each (`.gz` when asked). */
export function writeSyntheticSegments(
  catalogPath: string,
  instance: string,
  options: {
    timelineId: number;
    fromSegno: number;
    toSegno: number;
    segSize?: number;
    sizeBytes?: number;
    gz?: boolean;
  },
): string[] {
  const segSize = options.segSize ?? 1024 * 1024;
  const names: string[] = [];
  for (let segno = options.fromSegno; segno <= options.toSegno; segno++) {
    const name =
      walSegmentName(options.timelineId, BigInt(segno), segSize) + (options.gz ? '.gz' : '');
    writeFileSync(join(catalogPath, 'wal', instance, name), Buffer.alloc(options.sizeBytes ?? 100));
    names.push(name);
  }
  return names;
}

/** `<tli>.history` naming its parent timelines, oldest first, as PostgreSQL writes it. */
export function writeSyntheticHistory(
  catalogPath: string,
  instance: string,
  timelineId: number,
  parents: ReadonlyArray<{ timelineId: number; switchLsn: Lsn }>,
): void {
  const text = parents
    .map(
      (parent) =>
        `${parent.timelineId}\t${formatLsn(parent.switchLsn)}\tno recovery target specified\n`,
    )
    .join('');
  writeFileSync(join(catalogPath, 'wal', instance, historyFileName(timelineId)), text);
}

/** The LSN of byte `offset` of segment `segno` (1 MiB segments unless told). */
export function lsnIn(segno: number, offset = 0x28, segSize = 1024 * 1024): Lsn {
  return BigInt(segno) * BigInt(segSize) + BigInt(offset);
}
