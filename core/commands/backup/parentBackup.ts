import type { CatalogBackup } from '../../catalog/catalog.js';
import { StrataError } from '../../errors.js';
import type { Logger } from '../../log.js';

const isValid = (backup: CatalogBackup) => backup.status === 'OK' || backup.status === 'DONE';

/**
 * Chooses the parent of a new incremental backup (cli-behaviour.md §5.3): the newest valid
 * backup whose chain is intact and valid and descends from the newest valid FULL of the current
 * timeline. `backups` are newest first.
 */
export function selectParentBackup(
  backups: CatalogBackup[],
  timelineId: number,
  logger: Logger,
): CatalogBackup {
  const byId = new Map(backups.map((backup) => [backup.id, backup]));
  const full = backups.find(
    (backup) => backup.backupMode === 'FULL' && backup.timelineId === timelineId && isValid(backup),
  );
  if (!full) {
    throw new StrataError(
      'catalog',
      `Valid full backup on current timeline ${timelineId} is not found. Create new full backup before an incremental one`,
    );
  }
  for (const candidate of backups) {
    if (candidate.startTime < full.startTime) break;
    if (!isValid(candidate)) {
      logger.warning(`Backup ${candidate.id} has status: ${candidate.status}. Cannot be a parent.`);
      continue;
    }
    let member: CatalogBackup | undefined = candidate;
    let problem: string | undefined;
    while (member && member.id !== full.id) {
      const parentId: string | undefined = member.parentBackupId;
      if (!parentId) {
        problem = 'missing';
        break;
      }
      const parent = byId.get(parentId);
      if (!parent) {
        logger.warning(
          `Backup ${candidate.id} has missing parent: ${parentId}. Cannot be a parent`,
        );
        problem = 'missing';
        break;
      }
      if (!isValid(parent)) {
        logger.warning(
          `Backup ${candidate.id} has invalid parent: ${parentId}. Cannot be a parent`,
        );
        problem = 'invalid';
        break;
      }
      member = parent;
    }
    if (!problem && member?.id === full.id) return candidate;
  }
  return full;
}
