import { posix } from 'node:path';
import type { BackupCatalog, CatalogBackup } from '../../catalog/catalog.js';
import { StrataError, errorText } from '../../errors.js';
import type { Lsn } from '../../format/lsn.js';
import { lsnToSegno, walSegmentName } from '../../format/walNames.js';
import { storageErrorCode } from '../../storage/storage.js';
import { readArchiveTimelines } from '../archiveCatalog/readTimelines.js';
import type { ArchiveTimeline } from '../archiveCatalog/timelines.js';
import type { CommandContext } from '../context.js';
import { prettySize } from '../show/prettyFormat.js';

/**
 * `--delete-wal` (cli-behaviour.md §9.5; pg_probackup's do_retention_wal and
 * delete_walfiles_in_tli): per timeline, the WAL no backup can use any more is removed — every
 * segment-like file (regular, `.gz`, `.partial`, temporary `.part`, `.backup`) below the segment of
 * the wal-depth anchor, or of the oldest backup on the timeline, or the whole timeline when it has
 * neither; files §9.4 protects stay; `.history` files are never removed.
 */

export interface WalPurgeParams {
  catalog: BackupCatalog;
  instance: string;
  /** Backups of the instance, newest first. */
  backups: readonly CatalogBackup[];
  walSegmentSizeBytes: number;
  walDepth: number;
  dryRun: boolean;
}

export interface WalPurgeResult {
  /** At least one file was removed (or, as pg_probackup counts it, found gone while removing). */
  walDeleted: boolean;
  removedFiles: string[];
}

function purgeTimeline(
  ctx: CommandContext,
  params: WalPurgeParams,
  timeline: ArchiveTimeline,
  keepLsn: Lsn,
): { removeAll: boolean; oldestToKeepSegno: bigint } | undefined {
  const { logger } = ctx;
  const segSize = params.walSegmentSizeBytes;
  const verb = params.dryRun ? 'can' : 'will';
  const tli = timeline.timelineId;
  const segmentName = (segno: bigint) => walSegmentName(tli, segno, segSize);
  if (timeline.files.length === 0) {
    logger.info(`Timeline ${tli} is empty, nothing to remove`);
    return undefined;
  }
  const removeAll = keepLsn === 0n;
  const firstToDeleteSegno = timeline.beginSegno;
  let oldestToKeepSegno: bigint;
  if (removeAll) {
    logger.info(`On timeline ${tli} all files ${verb} be removed`);
    oldestToKeepSegno = timeline.endSegno;
  } else {
    oldestToKeepSegno = lsnToSegno(keepLsn, segSize);
  }

  if (oldestToKeepSegno > 0n && oldestToKeepSegno > firstToDeleteSegno) {
    logger.info(
      `On timeline ${tli} WAL segments between ${segmentName(firstToDeleteSegno)} and ` +
        `${segmentName(oldestToKeepSegno)} ${verb} be removed`,
    );
  }
  let logicalBytes = 0n;
  if (oldestToKeepSegno > firstToDeleteSegno) {
    logicalBytes = (oldestToKeepSegno - firstToDeleteSegno) * BigInt(segSize);
    // Removing everything also removes the last segment, which the difference leaves out.
    if (removeAll) logicalBytes += BigInt(segSize);
  } else if (oldestToKeepSegno < firstToDeleteSegno) {
    // The archive starts after the keep point: its older part is gone, or the keep point comes
    // from a STREAM backup of a timeline whose WAL was never archived.
    if (firstToDeleteSegno > 0n && oldestToKeepSegno > 0n) {
      logger.log(
        'LOG',
        `On timeline ${tli} first segment ${segmentName(firstToDeleteSegno)} is greater than ` +
          `oldest segment to keep ${segmentName(oldestToKeepSegno)}`,
      );
    }
  } else if (!removeAll) {
    logger.info(`Nothing to remove on timeline ${tli}`);
  }
  if (logicalBytes > 0n) {
    logger.info(
      `Logical WAL size to remove on timeline ${tli} : ${prettySize(Number(logicalBytes))}`,
    );
  }
  const residentBytes = timeline.files
    .filter((file) => removeAll || file.segno < oldestToKeepSegno)
    .reduce((sum, file) => sum + file.sizeBytes, 0);
  if (residentBytes > 0) {
    logger.info(`Resident WAL size to free on timeline ${tli} : ${prettySize(residentBytes)}`);
  }
  return { removeAll, oldestToKeepSegno };
}

/** The LSN below whose segment a timeline's WAL may go (0 = all of it), or undefined to keep all. */
function keepLsnOf(timeline: ArchiveTimeline, walDepth: number): Lsn | undefined {
  // A timeline reached by point-in-time recovery from a backup on an ancestor keeps all its WAL,
  // unless wal-depth decides.
  if (timeline.closestBackup && walDepth === 0) return undefined;
  // wal-depth protects this whole timeline for a backup on another one.
  if (timeline.anchorTimelineId > 0 && timeline.anchorTimelineId !== timeline.timelineId) {
    return undefined;
  }
  if (timeline.anchorLsn !== 0n) return timeline.anchorLsn;
  // The oldest backup need not be valid: its WAL is kept all the same.
  return timeline.oldestBackup?.startLsn ?? 0n;
}

/** Runs the WAL purge of one instance; nothing is removed with `dryRun`. */
export async function purgeWal(
  ctx: CommandContext,
  params: WalPurgeParams,
): Promise<WalPurgeResult> {
  const { storage, logger } = ctx;
  const walDir = params.catalog.walDir(params.instance);
  const timelines = await readArchiveTimelines(ctx, {
    catalog: params.catalog,
    instance: params.instance,
    backups: params.backups,
    walSegmentSizeBytes: params.walSegmentSizeBytes,
    walDepth: params.walDepth,
    onBadHistory: 'fail',
  });
  const result: WalPurgeResult = { walDeleted: false, removedFiles: [] };
  for (const timeline of timelines) {
    // A timeline only named by a history file has nothing to remove.
    if (timeline.segmentCount === 0 && timeline.files.length === 0) continue;
    const keepLsn = keepLsnOf(timeline, params.walDepth);
    if (keepLsn === undefined) continue;
    const plan = purgeTimeline(ctx, params, timeline, keepLsn);
    if (!plan || params.dryRun) continue;
    for (const file of timeline.files) {
      if (ctx.signal?.aborted) {
        throw new StrataError('interrupted', 'interrupted during WAL archive purge');
      }
      if (!plan.removeAll && file.segno >= plan.oldestToKeepSegno) continue;
      const path = posix.join(walDir, file.name);
      if (file.keep) {
        logger.log('VERBOSE', `Retain WAL segment "${path}"`);
        continue;
      }
      try {
        await storage.unlink(path);
        logger.log('VERBOSE', `Removed ${removedLabel[file.kind]} "${path}"`);
        result.removedFiles.push(file.name);
      } catch (error) {
        // A file already gone is no error: another purge got there first.
        if (storageErrorCode(error) !== 'ENOENT') {
          throw new StrataError('io', `Could not remove file "${path}": ${errorText(error)}`, {
            cause: error,
          });
        }
      }
      result.walDeleted = true;
    }
  }
  return result;
}

const removedLabel: Record<ArchiveTimeline['files'][number]['kind'], string> = {
  segment: 'WAL segment',
  temp: 'temp WAL segment',
  partial: 'partial WAL segment',
  'backup-history': 'backup history file',
};
