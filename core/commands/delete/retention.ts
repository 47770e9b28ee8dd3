import type { CatalogBackup } from '../../catalog/catalog.js';
import { formatLocalTime } from '../../catalog/time.js';
import type { Logger } from '../../log.js';
import { BackupLinks, isValidStatus } from '../validate/backupLinks.js';

/**
 * Which backups retention expires (cli-behaviour.md §9.3; pg_probackup's do_retention_internal).
 * Pure: a listing, the policy and "now" in; the purge and keep lists and the report lines out.
 */

export interface RetentionPolicy {
  /** `retention-redundancy`: valid FULL backups to keep; 0 = off. */
  redundancy: number;
  /** `retention-window`: days of recoverability to keep; 0 = off. */
  windowDays: number;
}

export interface RetentionPlan {
  /** Backups no policy keeps and no pin protects, newest first. */
  expired: CatalogBackup[];
  /**
   * Incremental backups that are kept while their direct parent expired, newest first: the
   * oldest kept member of each partly expired chain, whose ancestors must stay (or be merged).
   */
  keep: CatalogBackup[];
}

const SECONDS_PER_DAY = 24 * 60 * 60;

/**
 * pg_probackup's find_parent_full_backup: the FULL at the root of the chain, or undefined (with
 * its WARNING) when the chain does not reach one.
 */
export function findParentFullBackup(
  links: BackupLinks,
  backup: CatalogBackup,
  logger: Logger,
): CatalogBackup | undefined {
  let current = backup;
  const seen = new Set<CatalogBackup>([current]);
  for (let parent = links.parentOf(current); parent && !seen.has(parent);) {
    seen.add(parent);
    current = parent;
    parent = links.parentOf(current);
  }
  if (current.backupMode === 'FULL') return current;
  if (current.parentBackupId !== undefined) {
    logger.warning(`Backup ${current.parentBackupId} is missing`);
  } else {
    logger.warning(`Failed to find parent FULL backup for ${backup.id}`);
  }
  return undefined;
}

/** `expire-time` in the future: retention leaves the backup alone. */
export function isPinned(backup: CatalogBackup, nowSec: number): boolean {
  return backup.expireTime > 0 && backup.expireTime > nowSec;
}

/**
 * The C expression `(uint32) ((time_t) a - b) / 86400`: whole days, truncated toward zero, then
 * wrapped to 32 bits as pg_probackup prints it with `%u`.
 */
function wholeDays(seconds: number): number {
  return Math.trunc(seconds / SECONDS_PER_DAY) >>> 0;
}

/**
 * Evaluates the policy over `backups` (one instance, newest first) as pg_probackup does, logging
 * what it logs: `INFO: Evaluate backups by retention`, a LOG line per pinned backup, then one
 * `INFO: Backup <id>, mode: …, status: …. Redundancy: k/R, Time Window: d/Wd. Active|Expired`
 * line per backup, newest first.
 */
export function evaluateRetention(
  backups: readonly CatalogBackup[],
  policy: RetentionPolicy,
  nowSec: number,
  logger: Logger,
): RetentionPlan {
  const links = new BackupLinks(backups);

  // Redundancy: FULL backups (of any status), newest first, until `redundancy` valid ones are counted.
  const redundancyFulls = new Set<CatalogBackup>();
  if (policy.redundancy > 0) {
    let validFulls = 0;
    for (const backup of backups) {
      if (backup.backupMode !== 'FULL') continue;
      if (validFulls < policy.redundancy) redundancyFulls.add(backup);
      if (isValidStatus(backup)) validFulls++;
    }
  }
  const windowThreshold = policy.windowDays > 0 ? nowSec - policy.windowDays * SECONDS_PER_DAY : 0;

  logger.info('Evaluate backups by retention');
  const expired = new Set<CatalogBackup>();
  for (const backup of [...backups].reverse()) {
    let redundancyKeep = false;
    if (redundancyFulls.size > 0) {
      const full = findParentFullBackup(links, backup, logger);
      redundancyKeep = full !== undefined && redundancyFulls.has(full);
    }
    // Failed and running backups usually have no recovery time: their start time stands in.
    const backupTime = backup.recoveryTime !== 0 ? backup.recoveryTime : backup.startTime;
    const outsideWindow = windowThreshold === 0 || windowThreshold > backupTime;
    const outsideRedundancy = policy.redundancy === 0 || !redundancyKeep;
    if (!outsideWindow || !outsideRedundancy) continue;
    if (isPinned(backup, nowSec)) {
      logger.log(
        'LOG',
        `Backup ${backup.id} is pinned until '${formatLocalTime(backup.expireTime)}', retain`,
      );
      continue;
    }
    logger.log('VERBOSE', `Mark backup ${backup.id} for purge.`);
    expired.add(backup);
  }

  const keep: CatalogBackup[] = [];
  for (const backup of backups) {
    if (backup.backupMode === 'FULL') continue;
    const parent = links.parentOf(backup);
    if (!parent || expired.has(backup)) continue;
    if (expired.has(parent)) keep.push(backup);
  }

  let fullOrdinal = 1;
  for (const backup of backups) {
    const action = expired.has(backup) ? 'Expired' : 'Active';
    const actualWindow = backup.recoveryTime === 0 ? 0 : wholeDays(nowSec - backup.recoveryTime);
    const pinningWindow =
      backup.expireTime > 0 && backup.expireTime > backup.recoveryTime
        ? wholeDays(backup.expireTime - backup.recoveryTime)
        : 0;
    logger.info(
      `Backup ${backup.id}, mode: ${backup.backupMode ?? ''}, status: ${backup.status}. ` +
        `Redundancy: ${fullOrdinal}/${policy.redundancy}, ` +
        `Time Window: ${actualWindow}d/${pinningWindow !== 0 ? pinningWindow : policy.windowDays}d. ${action}`,
    );
    if (backup.backupMode === 'FULL' && isValidStatus(backup)) fullOrdinal++;
  }

  return { expired: backups.filter((backup) => expired.has(backup)), keep };
}
