import { backupIdToTime } from '../../catalog/backupId.js';
import { deleteBackupFiles, finishInterruptedDeletes } from '../../catalog/backupRemoval.js';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { DEFAULT_XLOG_SEG_SIZE_BYTES } from '../../catalog/instanceConfig.js';
import type { InstanceConfig } from '../../catalog/instanceConfig.js';
import { heldBackupLock, lockBackupExclusive, releaseBackupLock } from '../../catalog/locks.js';
import type { BackupStatus } from '../../catalog/types.js';
import { StrataError, errorText, isStrataError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { mergeBackup } from '../merge/merge.js';
import { prettySize } from '../show/prettyFormat.js';
import { BackupLinks } from '../validate/backupLinks.js';
import { evaluateRetention, findParentFullBackup } from './retention.js';
import type { RetentionPlan } from './retention.js';
import { purgeWal } from './walPurge.js';
import { storedStatuses } from '../../catalog/backupControl.js';

export interface DeleteParams {
  backupPath: string;
  instance: string;
  /** `-i`: this backup and all its descendants. */
  backupId?: string;
  /** `--status`: every backup with this status and their descendants. */
  status?: string;
  deleteExpired: boolean;
  mergeExpired: boolean;
  deleteWal: boolean;
  dryRun: boolean;
  /** `--retention-redundancy`, `--retention-window`, `--wal-depth` from the command line. */
  retention: Pick<InstanceConfig, 'retentionRedundancy' | 'retentionWindow' | 'walDepth'>;
  /** For `--merge-expired`. */
  threads: number;
  noValidate: boolean;
  noSync: boolean;
  progress: boolean;
}

export interface DeleteResult {
  deletedIds: string[];
  mergedIds: string[];
  removedWalFiles: string[];
}

interface DeleteRun {
  ctx: CommandContext;
  catalog: BackupCatalog;
  params: DeleteParams;
  config: InstanceConfig;
  result: DeleteResult;
}

/** The option checks of pg_probackup's DELETE_CMD, in its order. */
function checkOptions(params: DeleteParams): void {
  const withId = params.backupId !== undefined;
  if (params.deleteExpired && withId) {
    throw new StrataError(
      'usage',
      'You cannot specify --delete-expired and (-i, --backup-id) options together',
    );
  }
  if (params.mergeExpired && withId) {
    throw new StrataError(
      'usage',
      'You cannot specify --merge-expired and (-i, --backup-id) options together',
    );
  }
  if (params.status !== undefined && withId) {
    throw new StrataError(
      'usage',
      'You cannot specify --status and (-i, --backup-id) options together',
    );
  }
  if (
    !params.deleteExpired &&
    !params.mergeExpired &&
    !params.deleteWal &&
    params.status === undefined &&
    !withId
  ) {
    throw new StrataError(
      'usage',
      'You must specify at least one of the delete options: --delete-expired |--delete-wal |--merge-expired |--status |(-i, --backup-id)',
    );
  }
}

/** Resident size a delete frees: data, plus the WAL a STREAM backup holds. */
function residentBytes(backups: readonly CatalogBackup[]): number {
  return backups.reduce(
    (sum, backup) => sum + backup.dataBytes + (backup.stream ? backup.walBytes : 0),
    0,
  );
}

/**
 * The instance's backups after the repair every listing command does (DELETING backups of dead
 * processes finished, RUNNING ones marked ERROR). The repair's deletions count as this delete's.
 */
async function listRepaired(run: DeleteRun): Promise<CatalogBackup[]> {
  const { ctx, catalog, params } = run;
  run.result.deletedIds.push(
    ...(await finishInterruptedDeletes(catalog, params.instance, ctx.logger)),
  );
  await catalog.markDeadRunningBackupsAsError(params.instance, ctx.logger, ctx.now);
  const backups = await catalog.listBackups(params.instance);
  for (const backup of backups) for (const problem of backup.problems) ctx.logger.warning(problem);
  return backups;
}

/**
 * Exclusive locks (lax: a full disk does not stop a delete) on the backups `select` picks from a
 * listing, oldest first. Another process may change the catalog while we wait — a merge renames
 * its FULL, a new incremental takes a doomed backup as parent — so after locking the catalog is
 * listed again and the selection repeated until everything it picks is locked. Returns the
 * selection from the last listing, newest first.
 */
async function lockSelection(
  run: DeleteRun,
  select: (backups: CatalogBackup[]) => CatalogBackup[],
  locked: Map<string, CatalogBackup>,
): Promise<CatalogBackup[]> {
  const { ctx, catalog, params } = run;
  for (;;) {
    const selection = select(await catalog.listBackups(params.instance));
    const missing = selection.filter((backup) => !locked.has(backup.dir));
    if (missing.length === 0) return selection;
    for (const backup of [...missing].reverse()) {
      await lockBackupExclusive(ctx.storage, backup.dir, {
        backupId: backup.id,
        logger: ctx.logger,
        lax: true,
      });
      locked.set(backup.dir, backup);
    }
  }
}

async function releaseLocks(run: DeleteRun, locked: Map<string, CatalogBackup>): Promise<void> {
  for (const backup of locked.values()) {
    if (!heldBackupLock(run.ctx.storage, backup.dir)) continue;
    try {
      await releaseBackupLock(run.ctx.storage, backup.dir, {
        backupId: backup.id,
        logger: run.ctx.logger,
      });
    } catch (error) {
      run.ctx.logger.warning(`Cannot release the lock of backup ${backup.id}: ${errorText(error)}`);
    }
  }
}

/** The backup with this ID (any case) and every backup descending from it, newest first. */
function withDescendants(backups: CatalogBackup[], targetTime: number): CatalogBackup[] {
  const links = new BackupLinks(backups);
  return backups.filter(
    (backup) => backup.startTime === targetTime || links.isDescendantOf(targetTime, backup),
  );
}

/** `delete -i ID` (§9.1): the backup and all its descendants, oldest first. */
async function deleteById(run: DeleteRun, backupId: string): Promise<void> {
  const { ctx, params } = run;
  const targetTime = backupIdToTime(backupId);
  const backups = await listRepaired(run);
  const target = backups.find((backup) => backup.startTime === targetTime);
  if (!target) {
    // Asked again after an interrupted delete: the repair above has just finished it.
    if (run.result.deletedIds.some((id) => backupIdToTime(id) === targetTime)) return;
    throw new StrataError('backup-not-found', `Failed to find backup ${backupId}, cannot delete`);
  }
  const planned = withDescendants(backups, targetTime);
  for (const backup of planned) {
    ctx.logger.log('LOG', `Backup ${backup.id} ${params.dryRun ? 'can' : 'will'} be deleted`);
  }
  ctx.logger.info(
    `Resident data size to free by delete of backup ${target.id} : ${prettySize(residentBytes(planned))}`,
  );
  if (params.dryRun) return;

  const locked = new Map<string, CatalogBackup>();
  try {
    const selection = await lockSelection(
      run,
      (current) => {
        if (!current.some((backup) => backup.startTime === targetTime)) {
          throw new StrataError(
            'backup-not-found',
            `Failed to find backup ${backupId}, cannot delete`,
          );
        }
        return withDescendants(current, targetTime);
      },
      locked,
    );
    const oldestFirst = [...selection].reverse();
    // Every backup is marked DELETING before any is removed: if this process dies, the next
    // command finishes all of them, and no descendant is left without its parent.
    for (const backup of oldestFirst) {
      await run.catalog.setBackupStatus(backup, 'DELETING', { logger: ctx.logger, lax: true });
    }
    for (const backup of oldestFirst) {
      if (ctx.signal?.aborted)
        throw new StrataError('interrupted', 'interrupted during delete backup');
      await deleteBackupFiles(run.catalog, backup, {
        logger: ctx.logger,
        progress: params.progress,
        signal: ctx.signal,
      });
      run.result.deletedIds.push(backup.id);
    }
  } finally {
    await releaseLocks(run, locked);
  }
}

function parseStatus(text: string): BackupStatus {
  const status = storedStatuses.find((candidate) => candidate === text.toUpperCase());
  if (!status) throw new StrataError('usage', `Unknown value for '--status' option: '${text}'`);
  return status;
}

/** `delete --status=S` (§9.2): backups with that status and their descendants; no WAL purge. */
async function deleteByStatus(run: DeleteRun, statusText: string): Promise<void> {
  const { ctx, params } = run;
  const status = parseStatus(statusText);
  const backups = await listRepaired(run);
  if (backups.length === 0) {
    ctx.logger.warning(`Instance '${params.instance}' has no backups`);
    return;
  }
  ctx.logger.info(
    `Deleting all backups with status '${status}'${params.dryRun ? ' in dry run mode' : ''}`,
  );
  const links = new BackupLinks(backups);
  const selected = new Set<CatalogBackup>();
  let found = 0;
  for (const backup of backups) {
    if (backup.status !== status) continue;
    found++;
    selected.add(backup);
    for (const candidate of backups) {
      if (links.isDescendantOf(backup.startTime, candidate)) selected.add(candidate);
    }
  }
  const deleteList = backups.filter((backup) => selected.has(backup));
  for (const backup of deleteList) {
    ctx.logger.info(
      `Backup ${backup.id} with status ${backup.status} ${params.dryRun ? 'can' : 'will'} be deleted`,
    );
    if (params.dryRun) continue;
    if (!(await lockForPurge(run, backup))) continue;
    try {
      await deleteBackupFiles(run.catalog, backup, {
        logger: ctx.logger,
        progress: params.progress,
        signal: ctx.signal,
      });
      run.result.deletedIds.push(backup.id);
    } finally {
      await releaseBackupLock(ctx.storage, backup.dir, { backupId: backup.id, logger: ctx.logger });
    }
  }
  ctx.logger.info(
    `Resident data size to free by delete of ${deleteList.length} backups: ${prettySize(residentBytes(deleteList))}`,
  );
  if (!params.dryRun && deleteList.length > 0) {
    ctx.logger.info(
      `Successfully deleted ${deleteList.length} ${deleteList.length === 1 ? 'backup' : 'backups'} from instance '${params.instance}'`,
    );
  }
  if (found === 0) {
    ctx.logger.warning(`Instance '${params.instance}' has no backups with status '${status}'`);
  }
}

/**
 * A lax exclusive lock for deleting one backup, re-checking that the backup is still what was
 * listed (a concurrent merge or delete may have moved or removed it): false, with the WARNING of
 * pg_probackup's purge, when it cannot be had.
 */
async function lockForPurge(run: DeleteRun, backup: CatalogBackup): Promise<boolean> {
  const { ctx, catalog, params } = run;
  try {
    await lockBackupExclusive(ctx.storage, backup.dir, {
      backupId: backup.id,
      logger: ctx.logger,
      lax: true,
    });
  } catch (error) {
    if (!isStrataError(error) || error.code !== 'lock') throw error;
    ctx.logger.warning(`Cannot lock backup ${backup.id} directory, skip purging`);
    return false;
  }
  const current = await catalog.readBackup(params.instance, backup.id);
  if (!current || current.dir !== backup.dir) {
    await releaseBackupLock(ctx.storage, backup.dir, { backupId: backup.id, logger: ctx.logger });
    ctx.logger.warning(`Backup ${backup.id} was changed by another process, skip purging`);
    return false;
  }
  return true;
}

/** Step 6 of §9.3: each partly expired chain whose FULL expired is merged into its kept member. */
async function mergeExpiredChains(
  run: DeleteRun,
  backups: CatalogBackup[],
  plan: RetentionPlan,
  expired: Set<string>,
  keep: Set<string>,
): Promise<void> {
  const { ctx, params } = run;
  const links = new BackupLinks(backups);
  for (const keepBackup of plan.keep) {
    if (!keep.has(keepBackup.id)) continue;
    ctx.logger.info(`Consider backup ${keepBackup.id} for merge`);
    const full = findParentFullBackup(links, keepBackup, ctx.logger);
    if (!full) {
      ctx.logger.warning(`Failed to find FULL parent for ${keepBackup.id}`);
      continue;
    }
    if (!expired.has(full.id)) {
      ctx.logger.warning(
        `Skip backup ${keepBackup.id} for merging, because his FULL parent is not marked for purge`,
      );
      continue;
    }
    ctx.logger.info(
      `Merge incremental chain between full backup ${full.id} and backup ${keepBackup.id}`,
    );
    const members: CatalogBackup[] = [];
    for (let member: CatalogBackup | undefined = keepBackup; member && member !== full;) {
      members.push(member);
      member = links.parentOf(member);
    }
    expired.delete(full.id);
    await mergeBackup(ctx, {
      backupPath: params.backupPath,
      instance: params.instance,
      backupId: keepBackup.id,
      threads: params.threads,
      noValidate: params.noValidate,
      noSync: params.noSync,
      progress: params.progress,
    });
    run.result.mergedIds.push(keepBackup.id);
    for (const member of members) {
      expired.delete(member.id);
      keep.delete(member.id);
    }
  }
  ctx.logger.info('Retention merging finished');
}

/** Step 7 of §9.3: expired backups that no kept incremental depends on are deleted, newest first. */
async function purgeExpired(
  run: DeleteRun,
  expired: Set<string>,
  keep: Set<string>,
): Promise<void> {
  const { ctx, params } = run;
  const backups = await run.catalog.listBackups(params.instance);
  const links = new BackupLinks(backups);
  const keepBackups = backups.filter((backup) => keep.has(backup.id));
  for (const candidate of backups) {
    if (!expired.has(candidate.id)) continue;
    ctx.logger.log('LOG', `Consider backup ${candidate.id} for purge`);
    let guardedBy: CatalogBackup | undefined;
    for (const keepBackup of keepBackups) {
      if (keepBackup.backupMode === 'FULL') continue;
      ctx.logger.log('LOG', `Check if backup ${candidate.id} is parent of backup ${keepBackup.id}`);
      if (
        keepBackup.startTime === candidate.startTime ||
        links.isDescendantOf(candidate.startTime, keepBackup)
      ) {
        guardedBy = keepBackup;
        break;
      }
    }
    if (guardedBy) {
      ctx.logger.log(
        'LOG',
        `Retain backup ${candidate.id} because his descendant ${guardedBy.id} is guarded by retention`,
      );
      continue;
    }
    if (ctx.signal?.aborted)
      throw new StrataError('interrupted', 'interrupted during delete backup');
    if (!(await lockForPurge(run, candidate))) continue;
    try {
      await deleteBackupFiles(run.catalog, candidate, {
        logger: ctx.logger,
        progress: params.progress,
        signal: ctx.signal,
      });
      run.result.deletedIds.push(candidate.id);
    } finally {
      await releaseBackupLock(ctx.storage, candidate.dir, {
        backupId: candidate.id,
        logger: ctx.logger,
      });
    }
  }
}

function walSegmentSize(config: InstanceConfig): number {
  return config.xlogSegSize || DEFAULT_XLOG_SEG_SIZE_BYTES;
}

async function runWalPurge(run: DeleteRun, backups: CatalogBackup[]): Promise<boolean> {
  const { ctx, catalog, params, config } = run;
  const purged = await purgeWal(ctx, {
    catalog,
    instance: params.instance,
    backups,
    walSegmentSizeBytes: walSegmentSize(config),
    walDepth: config.walDepth ?? 0,
    dryRun: params.dryRun,
  });
  run.result.removedWalFiles.push(...purged.removedFiles);
  return purged.walDeleted;
}

/** `--delete-expired`, `--merge-expired`, `--delete-wal` (§9.3–9.5; pg_probackup's do_retention). */
async function applyRetention(run: DeleteRun): Promise<void> {
  const { ctx, params, config } = run;
  const { logger } = ctx;
  const policy = {
    redundancy: config.retentionRedundancy ?? 0,
    windowDays: config.retentionWindow ?? 0,
  };
  let backups = await listRepaired(run);
  let retentionSet = false;
  if (params.deleteExpired || params.mergeExpired) {
    if (policy.redundancy > 0) logger.log('LOG', `REDUNDANCY=${policy.redundancy}`);
    if (policy.windowDays > 0) logger.log('LOG', `WINDOW=${policy.windowDays}`);
    if (policy.redundancy === 0 && policy.windowDays === 0) {
      logger.warning('Retention policy is not set');
      if (!params.deleteWal) return;
    } else {
      retentionSet = true;
    }
  }
  if (retentionSet && backups.length === 0) {
    logger.warning('Backup list is empty, retention purge and merge are problematic');
  }

  const nowSec = Math.floor(ctx.now() / 1000);
  const plan: RetentionPlan =
    retentionSet && backups.length > 0
      ? evaluateRetention(backups, policy, nowSec, logger)
      : { expired: [], keep: [] };
  const expired = new Set(plan.expired.map((backup) => backup.id));
  const keep = new Set(plan.keep.map((backup) => backup.id));
  if (params.mergeExpired && !params.dryRun && backups.length > 0) {
    await mergeExpiredChains(run, backups, plan, expired, keep);
  }
  const deletedBeforePurge = run.result.deletedIds.length;
  if (params.deleteExpired && !params.dryRun && backups.length > 0) {
    await purgeExpired(run, expired, keep);
  }
  let walDeleted = false;
  if (params.deleteWal) {
    backups = await run.catalog.listBackups(params.instance);
    walDeleted = await runWalPurge(run, backups);
  }

  if (run.result.mergedIds.length === 0)
    logger.info('There are no backups to merge by retention policy');
  logger.info(
    run.result.deletedIds.length > deletedBeforePurge
      ? 'Purging finished'
      : 'There are no backups to delete by retention policy',
  );
  if (!walDeleted) logger.info('There is no WAL to purge by retention policy');
}

/**
 * The `delete` command (cli-behaviour.md §9): `-i ID` (with descendants, then `--delete-wal`),
 * `--status`, or retention (`--delete-expired`, `--merge-expired`, `--delete-wal`), each with
 * `--dry-run`. Retention settings on the command line win over the instance configuration.
 * Backups are removed crash-safely (core/catalog/backupRemoval.ts): a delete killed at any point
 * is finished by the next command that lists the instance.
 */
export async function deleteCommand(
  ctx: CommandContext,
  params: DeleteParams,
): Promise<DeleteResult> {
  checkOptions(params);
  const catalog = new BackupCatalog(ctx.storage, params.backupPath);
  await catalog.assertInstanceExists(params.instance);
  const config: InstanceConfig = await catalog.readInstanceConfig(params.instance);
  for (const [key, value] of Object.entries(params.retention)) {
    if (value !== undefined) config[key as keyof DeleteParams['retention']] = value;
  }
  const run: DeleteRun = {
    ctx,
    catalog,
    params,
    config,
    result: { deletedIds: [], mergedIds: [], removedWalFiles: [] },
  };
  if (params.backupId !== undefined) {
    await deleteById(run, params.backupId);
    if (params.deleteWal) await runWalPurge(run, await catalog.listBackups(params.instance));
  } else if (params.status !== undefined) {
    await deleteByStatus(run, params.status);
  } else {
    await applyRetention(run);
  }
  return run.result;
}
