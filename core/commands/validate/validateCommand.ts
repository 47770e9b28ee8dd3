import { posix } from 'node:path';
import { decodeBackupIdPrefix } from '../../catalog/backupId.js';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { DEFAULT_XLOG_SEG_SIZE_BYTES } from '../../catalog/instanceConfig.js';
import { StrataError, errorText } from '../../errors.js';
import { parseTimelineHistory } from '../../format/timelineHistory.js';
import type { TimelineHistoryEntry } from '../../format/timelineHistory.js';
import { historyFileName } from '../../format/walNames.js';
import { storageErrorCode } from '../../storage/storage.js';
import type { CommandContext } from '../context.js';
import { chooseBackup } from '../restore/chooseBackup.js';
import { validateRecoveryTargetOptions } from '../restore/types.js';
import type { RecoveryTarget } from '../restore/types.js';
import { BackupLinks, isValidStatus, orphanDescendants } from './backupLinks.js';
import { validateForRestore } from './validateForRestore.js';
import { validateInstance } from './validateInstance.js';

export interface ValidateCommandParams {
  backupPath: string;
  instance?: string;
  backupId?: string;
  target: RecoveryTarget;
  threads: number;
  skipBlockValidation: boolean;
}

/** The history of a numeric `--recovery-target-timeline`, read from the archive (§6.2). */
async function readTargetHistory(
  ctx: CommandContext,
  walDir: string,
  timelineId: number,
): Promise<TimelineHistoryEntry[]> {
  // Timeline 1 is where every cluster starts: it has no history file.
  if (timelineId === 1) return [];
  const path = posix.join(walDir, historyFileName(timelineId));
  let text: string;
  try {
    text = (await ctx.storage.readFile(path)).toString('utf8');
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') {
      throw new StrataError('restore', `Recovery target timeline ${timelineId} does not exist`);
    }
    throw new StrataError('io', `Could not open file "${path}": ${errorText(error)}`, {
      cause: error,
    });
  }
  const history = parseTimelineHistory(text, timelineId);
  if (history.length === 0) {
    ctx.logger.warning(`History file is corrupted or missing: "${path}"`);
    throw new StrataError(
      'restore',
      `Failed to get history file for target timeline ${timelineId}`,
    );
  }
  return history;
}

/**
 * The chain of `dest`, FULL first (§6.3). A missing ancestor orphans the descendants of the missing
 * backup and ends validation; an invalid ancestor orphans its descendants, and validation goes on
 * (the invalid member is re-validated first).
 */
async function resolveChainForValidation(
  ctx: CommandContext,
  catalog: BackupCatalog,
  backups: CatalogBackup[],
  dest: CatalogBackup,
): Promise<CatalogBackup[]> {
  const links = new BackupLinks(backups);
  const resolved = catalog.resolveBackupChain(backups, dest.id);
  if (resolved.broken) {
    const missingId = resolved.missingParentId;
    if (missingId !== undefined) {
      const missingStartTime = decodeBackupIdPrefix(missingId);
      for (const backup of backups) {
        if (!links.isDescendantOf(missingStartTime, backup)) continue;
        if (isValidStatus(backup)) {
          await catalog.setBackupStatus(backup, 'ORPHAN', { logger: ctx.logger });
          ctx.logger.warning(
            `Backup ${backup.id} is orphaned because his parent ${missingId} is missing`,
          );
        } else {
          ctx.logger.warning(`Backup ${backup.id} has missing parent ${missingId}`);
        }
      }
    }
    throw new StrataError('restore', `Validate of backup ${dest.id} failed.`);
  }
  if (resolved.invalid !== undefined)
    await orphanDescendants(catalog, links, resolved.invalid, ctx.logger);
  return resolved.chain;
}

/**
 * The `validate` command (cli-behaviour.md §7.3). With `-i` or a time/xid/LSN target it validates
 * the backup restore would use and its chain, as restore does (§6.2–6.6), ending with
 * `Validate of backup <id> completed.`; otherwise every backup of the instance or catalog.
 * Returns false when some backups are not valid (exit code 1).
 */
export async function validateCommand(
  ctx: CommandContext,
  params: ValidateCommandParams,
): Promise<boolean> {
  const parsedTarget = validateRecoveryTargetOptions(params.target);
  const targetsWal =
    parsedTarget.time !== undefined ||
    parsedTarget.xid !== undefined ||
    parsedTarget.lsn !== undefined;
  if (params.backupId === undefined && !targetsWal) {
    const { allValid } = await validateInstance(ctx, {
      backupPath: params.backupPath,
      ...(params.instance !== undefined ? { instance: params.instance } : {}),
      threads: params.threads,
      skipBlockValidation: params.skipBlockValidation,
    });
    return allValid;
  }

  const { instance } = params;
  if (instance === undefined)
    throw new StrataError('usage', 'Required parameter not specified: --instance');
  const catalog = new BackupCatalog(ctx.storage, params.backupPath);
  await catalog.assertInstanceExists(instance);
  const config = await catalog.readInstanceConfig(instance);
  const walDir = catalog.walDir(instance);
  await catalog.repairInterruptedBackups(instance, ctx.logger, ctx.now);
  const backups = await catalog.listBackups(instance);
  const dest = await chooseBackup({
    backups,
    backupId: params.backupId,
    target: params.target,
    parsedTarget,
    noValidate: false,
    force: false,
    readTargetHistory: (timelineId) => readTargetHistory(ctx, walDir, timelineId),
    logger: ctx.logger,
  });
  const chain = await resolveChainForValidation(ctx, catalog, backups, dest);
  await validateForRestore(ctx, {
    catalog,
    instance,
    chain,
    target: {
      ...(parsedTarget.time !== undefined ? { time: parsedTarget.time } : {}),
      ...(parsedTarget.xid !== undefined ? { xid: parsedTarget.xid } : {}),
      ...(parsedTarget.lsn !== undefined ? { lsn: parsedTarget.lsn } : {}),
    },
    threads: params.threads,
    skipBlockValidation: params.skipBlockValidation,
    walSegmentSizeBytes: config.xlogSegSize ?? DEFAULT_XLOG_SEG_SIZE_BYTES,
  });
  ctx.logger.info(`Backup ${dest.id} is valid.`);
  ctx.logger.info(`Validate of backup ${dest.id} completed.`);
  return true;
}
