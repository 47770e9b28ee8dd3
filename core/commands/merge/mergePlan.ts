import { backupIdFromTime, backupIdToTime, decodeBackupIdPrefix } from '../../catalog/backupId.js';
import { resolveBackupChain } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import type { BackupStatus } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import type { Logger } from '../../log.js';

/**
 * Which backups a `merge -i ID` works on (cli-behaviour.md §8.1, pg_probackup's do_merge),
 * including every state an interrupted merge can leave behind (§8.3).
 */
export interface MergePlan {
  /** The FULL backup the chain is merged into; its directory is renamed to `destId` at the end. */
  full: CatalogBackup;
  /**
   * The backup whose ID and recovery point the result takes. Undefined only when the FULL is
   * MERGED and the destination's directory is already gone.
   */
  dest: CatalogBackup | undefined;
  /** The destination's canonical ID. */
  destId: string;
  destStartTime: number;
  /**
   * The incremental members still in the catalog, destination first, towards the FULL. After a
   * crash during their deletion this may be a broken remainder (a member without readable
   * backup.control, or whose parent is already gone).
   */
  incrementals: CatalogBackup[];
}

/** Statuses a member of a merge may have: OK/DONE, or those an interrupted merge leaves (§8.1). */
const MERGEABLE: readonly BackupStatus[] = ['OK', 'DONE', 'MERGING', 'MERGED', 'DELETING'];

function isValid(backup: CatalogBackup): boolean {
  return backup.status === 'OK' || backup.status === 'DONE';
}

function startTimeOf(id: string | undefined): number {
  return id === undefined ? 0 : decodeBackupIdPrefix(id);
}

function statusError(backup: CatalogBackup): StrataError {
  return new StrataError('catalog', `Backup ${backup.id} has status: ${backup.status}`);
}

/** A FULL backup whose recorded merge destination (`merge-dest-id`) is the backup started at `startTime`. */
function recordsMergeInto(backup: CatalogBackup, startTime: number): boolean {
  return backup.backupMode === 'FULL' && startTimeOf(backup.mergeDestId) === startTime;
}

/**
 * pg_probackup's is_prolific: more than one OK/DONE backup names `full` as its direct parent.
 */
function validChildren(backups: readonly CatalogBackup[], full: CatalogBackup): CatalogBackup[] {
  return backups.filter(
    (backup) => isValid(backup) && startTimeOf(backup.parentBackupId) === full.startTime,
  );
}

interface FullTarget {
  full: CatalogBackup;
  dest: CatalogBackup | undefined;
  /** A FULL produced by a merge that ended before its validation: nothing is left to merge. */
  alreadyMerged: boolean;
}

/** `-i` names a FULL backup: merge it with its only valid child, or resume its recorded merge. */
function planForFullTarget(
  backups: readonly CatalogBackup[],
  full: CatalogBackup,
  logger: Logger,
): FullTarget {
  logger.info(`Merge target backup ${full.id} is full backup`);
  const byStartTime = (startTime: number) =>
    backups.find((backup) => backup.startTime === startTime && backup !== full);
  switch (full.status) {
    case 'OK':
    case 'DONE': {
      const children = validChildren(backups, full);
      if (children.length > 1) {
        throw new StrataError(
          'catalog',
          'Merge target is full backup and has multiple direct children, you must specify child backup id you want to merge with',
        );
      }
      logger.info('Looking for closest incremental backup to merge with');
      if (children.length === 0) {
        // A merge killed during its final validation leaves a FULL carrying merge-time and no
        // child at all: the merge itself is done, so its re-run only has the validation left.
        const hasChildren = backups.some(
          (backup) => startTimeOf(backup.parentBackupId) === full.startTime,
        );
        if (full.mergeTime > 0 && !hasChildren)
          return { full, dest: undefined, alreadyMerged: true };
        throw new StrataError(
          'catalog',
          `Failed to find merge candidate, backup ${full.id} has no valid children`,
        );
      }
      return { full, dest: children[0], alreadyMerged: false };
    }
    case 'MERGING': {
      if (full.mergeDestId === undefined) {
        throw new StrataError('catalog', 'Failed to determine merge destination backup');
      }
      const dest = byStartTime(startTimeOf(full.mergeDestId));
      if (!dest) {
        throw new StrataError(
          'catalog',
          `Full backup ${full.id} has unfinished merge with missing backup ${full.mergeDestId}`,
        );
      }
      return { full, dest, alreadyMerged: false };
    }
    case 'MERGED': {
      const dest = byStartTime(startTimeOf(full.mergeDestId));
      if (!dest) {
        logger.warning(
          `Full backup ${full.id} has unfinished merge with missing backup ${full.mergeDestId ?? ''}`,
        );
      }
      return { full, dest, alreadyMerged: false };
    }
    default:
      throw statusError(full);
  }
}

/** `-i` names an incremental backup: its chain down to the FULL, or the FULL that records it. */
function fullForIncrementalTarget(
  backups: readonly CatalogBackup[],
  dest: CatalogBackup,
  logger: Logger,
): CatalogBackup {
  const interrupted = dest.status === 'MERGING' || dest.status === 'DELETING';
  if (interrupted) logger.warning(`Rerun unfinished merge for backup ${dest.id}`);
  const resolved = resolveBackupChain(backups, dest.id);
  if (!resolved.broken) {
    const full = resolved.chain[0]!;
    if (
      (full.status === 'MERGING' || full.status === 'MERGED') &&
      startTimeOf(full.mergeDestId) !== dest.startTime
    ) {
      throw new StrataError(
        'catalog',
        `Full backup ${full.id} has unfinished merge with backup ${full.mergeDestId ?? ''}`,
      );
    }
    return full;
  }
  const oldest = resolved.chain[0]!;
  logger.warning(
    oldest.parentBackupId !== undefined
      ? `Backup ${oldest.parentBackupId} is missing`
      : `Failed to find parent FULL backup for ${dest.id}`,
  );
  // A chain broken by an interrupted merge: the members next to the FULL are already deleted.
  if (!interrupted)
    throw new StrataError('catalog', `Failed to find parent full backup for ${dest.id}`);
  const full = backups.find((backup) => recordsMergeInto(backup, dest.startTime));
  if (!full) {
    throw new StrataError(
      'catalog',
      `Failed to find full backup that has unfinished merge with backup ${dest.id}, cannot rerun merge`,
    );
  }
  if (full.status !== 'MERGED') {
    throw new StrataError('catalog', 'Incremental chain is broken, merge is impossible to finish');
  }
  logger.warning('Incremental chain is broken, try to recover unfinished merge');
  return full;
}

/**
 * The incremental members from `dest` towards the FULL, following parent links while they lead
 * to a backup in the catalog. Once the FULL is MERGED these are only deleted, whatever their state.
 */
function incrementalMembers(
  backups: readonly CatalogBackup[],
  dest: CatalogBackup | undefined,
  full: CatalogBackup,
): CatalogBackup[] {
  const members: CatalogBackup[] = [];
  let current = dest;
  while (current && current.backupMode !== 'FULL' && !members.includes(current)) {
    if (full.status !== 'MERGED' && !MERGEABLE.includes(current.status)) {
      throw statusError(current);
    }
    members.push(current);
    const parentTime = startTimeOf(current.parentBackupId);
    current =
      parentTime === 0 ? undefined : backups.find((backup) => backup.startTime === parentTime);
  }
  return members;
}

export type MergeTarget =
  { kind: 'merge'; plan: MergePlan } | { kind: 'merged'; full: CatalogBackup };

/**
 * Resolves `merge -i <requestedId>` against a listing of the instance (newest first): the FULL,
 * the destination and the incremental members, or the errors of cli-behaviour.md §8.1 with
 * pg_probackup's texts. Unreadable leftovers of an interrupted merge (a destination whose
 * backup.control is gone) are accepted when a MERGED FULL records them as its destination.
 */
export function planMerge(
  backups: readonly CatalogBackup[],
  requestedId: string,
  logger: Logger,
): MergeTarget {
  const requestedTime = backupIdToTime(requestedId);
  const mergedOwner = backups.find(
    (backup) => backup.status === 'MERGED' && recordsMergeInto(backup, requestedTime),
  );
  let target = backups.find((backup) => backup.startTime === requestedTime);
  if (target && target.backupMode === undefined && mergedOwner) target = mergedOwner;
  if (target && !MERGEABLE.includes(target.status)) throw statusError(target);
  // Crash after the destination's directory was deleted: its FULL still records it.
  target ??= mergedOwner;
  if (!target) {
    throw new StrataError(
      'backup-not-found',
      `Target backup ${backupIdFromTime(requestedTime)} was not found`,
    );
  }

  let full: CatalogBackup;
  let dest: CatalogBackup | undefined;
  if (target.backupMode === 'FULL') {
    if (target.status === 'DELETING') throw statusError(target);
    const resolved = planForFullTarget(backups, target, logger);
    if (resolved.alreadyMerged) return { kind: 'merged', full: resolved.full };
    full = resolved.full;
    dest = resolved.dest;
  } else {
    dest = target;
    full = fullForIncrementalTarget(backups, dest, logger);
  }
  if (!['OK', 'DONE', 'MERGING', 'MERGED'].includes(full.status)) throw statusError(full);

  const destStartTime = dest?.startTime ?? startTimeOf(full.mergeDestId);
  return {
    kind: 'merge',
    plan: {
      full,
      dest,
      destId: backupIdFromTime(destStartTime),
      destStartTime,
      incrementals: incrementalMembers(backups, dest, full),
    },
  };
}
