import { backupIdFromTime, backupIdToTime, decodeBackupIdPrefix } from '../../catalog/backupId.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import type { BackupStatus } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import { isLsnOnTimelineHistory } from '../../format/timelineHistory.js';
import type { TimelineHistoryEntry } from '../../format/timelineHistory.js';
import type { Logger } from '../../log.js';
import type { ParsedRecoveryTarget, RecoveryTarget } from './types.js';

export interface ChooseBackupOptions {
  /** The instance's backups, newest first. */
  backups: CatalogBackup[];
  backupId: string | undefined;
  target: RecoveryTarget;
  parsedTarget: ParsedRecoveryTarget;
  noValidate: boolean;
  force: boolean;
  /**
   * The history of the numeric `--recovery-target-timeline` (its ancestors); throws when its
   * history file is missing. Read once, on first need.
   */
  readTargetHistory: (timelineId: number) => Promise<TimelineHistoryEntry[]>;
  logger: Logger;
}

const RESTORABLE: BackupStatus[] = ['OK', 'DONE'];
/** Statuses a backup named with `-i` may have and still be restored after re-validation. */
const REVALIDATABLE: BackupStatus[] = ['ORPHAN', 'CORRUPT', 'RUNNING'];

/** restore.c satisfy_recovery_target: the backup ends before the requested xid / time / LSN. */
export function backupSatisfiesTarget(
  backup: CatalogBackup,
  parsed: ParsedRecoveryTarget,
  target: RecoveryTarget,
): boolean {
  if (target.xid !== undefined && parsed.xid !== undefined) return backup.recoveryXid <= parsed.xid;
  if (target.time !== undefined && parsed.time !== undefined)
    return backup.recoveryTime <= parsed.time;
  if (target.lsn !== undefined && parsed.lsn !== undefined) return backup.stopLsn <= parsed.lsn;
  return true;
}

function startTimeOf(backup: CatalogBackup): number {
  return backup.startTime > 0 ? backup.startTime : decodeBackupIdPrefix(backup.id);
}

/**
 * Picks the backup to restore (cli-behaviour.md §6.2): the one named by `-i`, which must satisfy
 * the target, or else the newest OK/DONE backup satisfying the target and target timeline.
 */
export async function chooseBackup(options: ChooseBackupOptions): Promise<CatalogBackup> {
  const { backups, logger, parsedTarget, target } = options;
  const requestedTime =
    options.backupId !== undefined ? backupIdToTime(options.backupId) : undefined;
  const requestedId = requestedTime !== undefined ? backupIdFromTime(requestedTime) : undefined;
  let targetHistory: TimelineHistoryEntry[] | undefined;

  for (const backup of backups) {
    const startTime = startTimeOf(backup);
    if (requestedTime !== undefined && startTime > requestedTime) continue;
    if (requestedTime === undefined && !RESTORABLE.includes(backup.status)) {
      logger.warning(
        `Skipping backup ${backup.id}, because it has non-valid status: ${backup.status}`,
      );
      continue;
    }
    if (requestedTime !== undefined && startTime !== requestedTime) continue;

    if (!RESTORABLE.includes(backup.status)) {
      if (REVALIDATABLE.includes(backup.status) && (!options.noValidate || options.force)) {
        logger.warning(`Backup ${backup.id} has status: ${backup.status}`);
      } else {
        throw new StrataError('restore', `Backup ${backup.id} has status: ${backup.status}`);
      }
    }

    if (parsedTarget.timelineId !== undefined) {
      targetHistory ??= await options.readTargetHistory(parsedTarget.timelineId);
      const onTimeline = isLsnOnTimelineHistory(
        targetHistory,
        parsedTarget.timelineId,
        backup.timelineId,
        backup.stopLsn,
      );
      if (!onTimeline) {
        if (requestedId !== undefined) {
          throw new StrataError(
            'restore',
            `Target backup ${requestedId} does not satisfy target timeline`,
          );
        }
        continue;
      }
    }

    if (!backupSatisfiesTarget(backup, parsedTarget, target)) {
      if (requestedId !== undefined) {
        throw new StrataError(
          'restore',
          `Requested backup ${requestedId} does not satisfy restore options`,
        );
      }
      continue;
    }
    return backup;
  }

  if (requestedId !== undefined) {
    throw new StrataError('backup-not-found', `Requested backup ${requestedId} is not found.`);
  }
  throw new StrataError('backup-not-found', 'Backup satisfying target options is not found.');
}
