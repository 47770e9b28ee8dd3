import type { CatalogBackup } from '../catalog/catalog.js';
import type { InstanceConfig } from '../catalog/instanceConfig.js';
import { DEFAULT_XLOG_SEG_SIZE_BYTES } from '../catalog/instanceConfig.js';
import type { DatabaseMapEntry, FileEntry } from '../catalog/types.js';
import type { ArchiveTimeline as EngineTimeline } from '../commands/archiveCatalog/timelines.js';
import { formatLsn } from '../format/lsn.js';
import { BLCKSZ } from '../format/page.js';
import { segnoToLsn, walSegmentName } from '../format/walNames.js';
import type {
  ArchiveTimeline,
  BackupDatabase,
  BackupFile,
  BackupSummary,
  InstanceSummary,
} from './contract.js';

/**
 * The engine's catalog objects as the contract's plain JSON: LSNs and 64-bit numbers as strings,
 * times as Unix seconds with null for pg_probackup's "unset" 0, byte counts with null for its -1.
 * Pure functions; the API reads, these shape.
 */

/** S_IFMT / S_IFDIR of the `mode` recorded in backup_content.control. */
const FILE_TYPE_MASK = 0o170000;
const DIRECTORY_TYPE = 0o040000;

function timeOrNull(seconds: number): number | null {
  return seconds > 0 ? seconds : null;
}

function bytesOrNull(bytes: number): number | null {
  return bytes >= 0 ? bytes : null;
}

export function toBackupSummary(
  instance: string,
  backup: CatalogBackup,
  parentTimelineId: number,
): BackupSummary {
  return {
    id: backup.id,
    instance,
    parentId: backup.parentBackupId ?? null,
    mode: backup.backupMode ?? null,
    walMode: backup.stream ? 'STREAM' : 'ARCHIVE',
    status: backup.status,
    timelineId: backup.timelineId,
    parentTimelineId,
    startLsn: formatLsn(backup.startLsn),
    stopLsn: formatLsn(backup.stopLsn),
    startTime: backup.startTime,
    endTime: timeOrNull(backup.endTime),
    recoveryTime: timeOrNull(backup.recoveryTime),
    recoveryXid: backup.recoveryXid.toString(),
    dataBytes: bytesOrNull(backup.dataBytes),
    walBytes: bytesOrNull(backup.walBytes),
    uncompressedBytes: backup.uncompressedBytes,
    pgdataBytes: backup.pgdataBytes,
    compressAlg: backup.compressAlg,
    compressLevel: backup.compressLevel,
    serverVersion: backup.serverVersion ?? null,
    programVersion: backup.programVersion ?? null,
    fromReplica: backup.fromReplica,
    note: backup.note ?? null,
    expireTime: timeOrNull(backup.expireTime),
  };
}

export function toInstanceSummary(
  name: string,
  config: InstanceConfig,
  backups: readonly CatalogBackup[],
): InstanceSummary {
  const newest = backups[0];
  return {
    name,
    pgdata: config.pgdata ?? null,
    systemIdentifier: (config.systemIdentifier ?? 0n).toString(),
    serverVersion:
      backups.find((backup) => backup.serverVersion !== undefined)?.serverVersion ?? null,
    walSegmentSizeBytes: config.xlogSegSize || DEFAULT_XLOG_SEG_SIZE_BYTES,
    backupCount: backups.length,
    lastBackup: newest
      ? { id: newest.id, status: newest.status, endTime: timeOrNull(newest.endTime) }
      : null,
    retention: {
      redundancy: config.retentionRedundancy ?? 0,
      windowDays: config.retentionWindow ?? 0,
      walDepth: config.walDepth ?? 0,
    },
    remote: instanceRemote(config),
  };
}

/** pg_probackup is remote exactly when `remote-host` is set and `remote-proto` is ssh (its default). */
export function instanceRemote(config: InstanceConfig): InstanceSummary['remote'] {
  if (!config.remoteHost || (config.remoteProto ?? 'ssh').toLowerCase() !== 'ssh') return null;
  const port = Number(config.remotePort);
  return {
    host: config.remoteHost,
    port: Number.isInteger(port) && port > 0 ? port : 22,
    user: config.remoteUser || null,
  };
}

export function isDirectoryEntry(entry: FileEntry): boolean {
  return (entry.mode & FILE_TYPE_MASK) === DIRECTORY_TYPE;
}

/**
 * The file's size in PGDATA when the backup was taken: a data file's block count says it even
 * when this backup did not store it (size -1, unchanged since the parent); other files carry
 * their uncompressed size, or only the stored size.
 */
export function pgdataSizeBytes(entry: FileEntry): number {
  if (entry.isDatafile && entry.nBlocks !== undefined && entry.nBlocks >= 0)
    return entry.nBlocks * BLCKSZ;
  return Math.max(entry.fullSize ?? entry.size, 0);
}

export function toBackupFile(entry: FileEntry): BackupFile {
  return {
    path: entry.path,
    externalDirNum: entry.externalDirNum,
    isDatafile: entry.isDatafile,
    dbOid: entry.dbOid,
    storedBytes: entry.size,
    fullBytes: pgdataSizeBytes(entry),
    compressAlg: entry.compressAlg,
  };
}

/**
 * The databases of a backup with their sizes: every database of `database_map`, sized by the
 * files of the file list that belong to its OID. A backup without a map (PostgreSQL of an older
 * pg_probackup) lists the OIDs its files carry, named by OID.
 */
export function backupDatabases(
  databaseMap: readonly DatabaseMapEntry[] | undefined,
  entries: readonly FileEntry[],
): BackupDatabase[] {
  const sizes = new Map<number, number>();
  for (const entry of entries) {
    if (entry.dbOid === 0 || entry.externalDirNum !== 0 || isDirectoryEntry(entry)) continue;
    sizes.set(entry.dbOid, (sizes.get(entry.dbOid) ?? 0) + pgdataSizeBytes(entry));
  }
  const named: BackupDatabase[] =
    databaseMap !== undefined
      ? databaseMap.map((db) => ({
          oid: db.dbOid,
          name: db.datname,
          sizeBytes: sizes.get(db.dbOid) ?? 0,
        }))
      : [...sizes.entries()].map(([oid, sizeBytes]) => ({
          oid,
          name: `database ${oid}`,
          sizeBytes,
        }));
  return named.sort((a, b) => a.name.localeCompare(b.name) || a.oid - b.oid);
}

/**
 * Zratio of an archived timeline as show.c computes it: segments × segment size / bytes on disk,
 * in single precision, rounded to two decimals for display; 0 when nothing is on disk.
 */
function timelineZratio(timeline: EngineTimeline, walSegmentSizeBytes: number): number {
  if (timeline.sizeBytes === 0) return 0;
  const logical = Math.fround(
    Math.fround(walSegmentSizeBytes) * Math.fround(timeline.segmentCount),
  );
  return Math.round(Math.fround(logical / Math.fround(timeline.sizeBytes)) * 100) / 100;
}

/**
 * A timeline for the WAL timeline view: those with archived segments (as `show --archive`) and
 * also those that only have backups (a STREAM-only instance), oldest TLI first.
 */
export function toArchiveTimelines(
  timelines: readonly EngineTimeline[],
  walSegmentSizeBytes: number,
): ArchiveTimeline[] {
  return timelines
    .filter((timeline) => timeline.segmentCount > 0 || timeline.backups.length > 0)
    .sort((a, b) => a.timelineId - b.timelineId)
    .map((timeline) => {
      const segmentName = (segno: bigint) =>
        walSegmentName(timeline.timelineId, segno, walSegmentSizeBytes);
      const hasSegments = timeline.segmentCount > 0;
      return {
        tli: timeline.timelineId,
        parentTli: timeline.parentTimelineId,
        switchpoint: formatLsn(timeline.switchpoint),
        minSegno: hasSegments ? segmentName(timeline.beginSegno) : '',
        maxSegno: hasSegments ? segmentName(timeline.endSegno) : '',
        segmentCount: timeline.segmentCount,
        sizeBytes: timeline.sizeBytes,
        zratio: timelineZratio(timeline, walSegmentSizeBytes),
        status: timeline.lostSegments.length === 0 ? 'OK' : 'DEGRADED',
        lostSegments: timeline.lostSegments.map((gap) => ({
          begin: segmentName(gap.beginSegno),
          end: segmentName(gap.endSegno),
        })),
        closestBackupId: timeline.closestBackup?.id ?? null,
        backupIds: timeline.backups.map((backup) => backup.id),
        beginLsn: hasSegments
          ? formatLsn(segnoToLsn(timeline.beginSegno, walSegmentSizeBytes))
          : '0/0',
        endLsn: hasSegments
          ? formatLsn(segnoToLsn(timeline.endSegno + 1n, walSegmentSizeBytes))
          : '0/0',
      };
    });
}
