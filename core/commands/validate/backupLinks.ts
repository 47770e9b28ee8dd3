import { decodeBackupIdPrefix } from '../../catalog/backupId.js';
import type { BackupCatalog, CatalogBackup } from '../../catalog/catalog.js';
import type { Logger } from '../../log.js';

/**
 * Parent links between the backups of one listing, as pg_probackup resolves them after reading
 * the catalog (`parent_backup_link`): a backup's parent is the listed backup whose start time its
 * `parent-backup-id` encodes.
 */
export class BackupLinks {
  private readonly byStartTime: Map<number, CatalogBackup>;

  constructor(readonly backups: readonly CatalogBackup[]) {
    this.byStartTime = new Map(backups.map((backup) => [backup.startTime, backup]));
  }

  parentOf(backup: CatalogBackup): CatalogBackup | undefined {
    if (backup.parentBackupId === undefined) return undefined;
    const parent = this.byStartTime.get(decodeBackupIdPrefix(backup.parentBackupId));
    return parent === backup ? undefined : parent;
  }

  /**
   * pg_probackup's `scan_parent_chain`: walks to the oldest reachable ancestor. `broken` when that
   * is not a FULL backup (`oldest` is the member whose parent is missing); `invalid` when a member
   * is not OK/DONE (`oldest` is the oldest such member); else `ok` (`oldest` is the FULL).
   */
  scanParentChain(backup: CatalogBackup): {
    result: 'ok' | 'broken' | 'invalid';
    oldest: CatalogBackup;
  } {
    let invalid: CatalogBackup | undefined;
    let current = backup;
    const seen = new Set<CatalogBackup>([current]);
    for (
      let parent = this.parentOf(current);
      parent && !seen.has(parent);
      parent = this.parentOf(current)
    ) {
      if (!isValidStatus(current)) invalid = current;
      seen.add(parent);
      current = parent;
    }
    if (current.backupMode !== 'FULL') return { result: 'broken', oldest: current };
    if (!isValidStatus(current)) invalid = current;
    return invalid ? { result: 'invalid', oldest: invalid } : { result: 'ok', oldest: current };
  }

  /** pg_probackup's `is_parent(parentStartTime, child, false)`: an ancestor of `child` (or a missing one) has that start time. */
  isDescendantOf(parentStartTime: number, child: CatalogBackup): boolean {
    const seen = new Set<CatalogBackup>();
    let current = child;
    for (;;) {
      if (
        current.parentBackupId !== undefined &&
        decodeBackupIdPrefix(current.parentBackupId) === parentStartTime
      ) {
        return true;
      }
      const parent = this.parentOf(current);
      if (!parent || seen.has(parent)) return false;
      seen.add(current);
      current = parent;
    }
  }
}

/** "Valid" for chain purposes: OK or DONE (catalog-format.md §11.1). */
export function isValidStatus(backup: CatalogBackup): boolean {
  return backup.status === 'OK' || backup.status === 'DONE';
}

/**
 * Every OK/DONE descendant of `parent` becomes ORPHAN (`Backup <id> is orphaned because his
 * parent <pid> has status: <S>`); descendants already invalid only get a WARNING. pg_probackup's
 * `set_orphan_status`.
 */
export async function orphanDescendants(
  catalog: BackupCatalog,
  links: BackupLinks,
  parent: CatalogBackup,
  logger: Logger,
): Promise<void> {
  for (const backup of links.backups) {
    if (!links.isDescendantOf(parent.startTime, backup)) continue;
    if (isValidStatus(backup)) {
      await catalog.setBackupStatus(backup, 'ORPHAN', { logger });
      logger.warning(
        `Backup ${backup.id} is orphaned because his parent ${parent.id} has status: ${parent.status}`,
      );
    } else {
      logger.warning(`Backup ${backup.id} has parent ${parent.id} with status: ${parent.status}`);
    }
  }
}
