import { posix } from 'node:path';
import type { BackupCatalog, CatalogBackup } from '../../catalog/catalog.js';
import { heldBackupLock, lockBackupShared, releaseBackupLock } from '../../catalog/locks.js';
import type { BackupStatus } from '../../catalog/types.js';
import { StrataError, isStrataError } from '../../errors.js';
import { COMPATIBLE_PROBACKUP_VERSION } from '../context.js';
import type { CommandContext } from '../context.js';
import { validateBackupFiles } from './backupFiles.js';
import { backupWalSource, validateBackupWal } from './backupWal.js';
import { programVersionNumber } from './programVersion.js';

/** What validating one backup ended in; `skipped` when its status or lock kept it from being checked. */
export type BackupValidationResult = 'OK' | 'CORRUPT' | 'ERROR' | 'skipped';

export interface ValidateBackupParams {
  catalog: BackupCatalog;
  instance: string;
  backup: CatalogBackup;
  threads: number;
  skipBlockValidation: boolean;
}

/** Statuses whose backups are (re)validated (§7.1 step 3); everything else is skipped. */
const VALIDATABLE: readonly BackupStatus[] = ['OK', 'DONE', 'ORPHAN', 'MERGING', 'CORRUPT'];
/** Issue #132: these versions could write a corrupt file list once it grew past 4096000 bytes. */
const FILE_LIST_BUG_VERSIONS = [20104, 20105, 20201];
const FILE_LIST_BUG_MIN_BYTES = 8192 * 500;
const CONTENT_LIST_FILE = 'backup_content.control';

/**
 * pg_probackup does not promise to read backups of newer versions; Strata reads what the
 * pg_probackup release it follows writes, and refuses newer ones the same way (§7.1 step 1).
 */
function assertNotNewerThanSupported(backup: CatalogBackup): void {
  if (
    programVersionNumber(backup.programVersion) > programVersionNumber(COMPATIBLE_PROBACKUP_VERSION)
  ) {
    throw new StrataError(
      'format',
      `pg_probackup binary version is ${COMPATIBLE_PROBACKUP_VERSION}, but backup ${backup.id} version is ` +
        `${backup.programVersion}. pg_probackup do not guarantee to be forward compatible. ` +
        'Please upgrade pg_probackup binary.',
    );
  }
}

async function isFileListBugVictim(ctx: CommandContext, backup: CatalogBackup): Promise<boolean> {
  if (!FILE_LIST_BUG_VERSIONS.includes(programVersionNumber(backup.programVersion))) return false;
  const stat = await ctx.storage.stat(posix.join(backup.dir, CONTENT_LIST_FILE));
  return stat !== null && stat.sizeBytes >= FILE_LIST_BUG_MIN_BYTES;
}

/**
 * Validates a backup's data files (cli-behaviour.md §7.1; catalog-format.md §11.3) and records the
 * outcome as its status: RUNNING becomes ERROR (the caller holds its lock, so its owner is gone),
 * other non-validatable statuses are skipped, otherwise OK or CORRUPT. WAL is not looked at. The
 * caller holds the backup's lock.
 */
export async function validateBackupDataFiles(
  ctx: CommandContext,
  params: ValidateBackupParams,
): Promise<BackupValidationResult> {
  const { catalog, backup } = params;
  const { logger } = ctx;
  assertNotNewerThanSupported(backup);
  if (backup.status === 'RUNNING') {
    logger.warning(
      `Backup ${backup.id} has status RUNNING, change it to ERROR and skip validation`,
    );
    await catalog.setBackupStatus(backup, 'ERROR', { logger });
    return 'ERROR';
  }
  if (!VALIDATABLE.includes(backup.status)) {
    logger.warning(`Backup ${backup.id} has status ${backup.status}. Skip validation.`);
    return 'skipped';
  }
  if (backup.backupMode === 'FULL' && backup.status === 'MERGING') {
    logger.warning(`Full backup ${backup.id} has status ${backup.status}, skip validation`);
    return 'skipped';
  }
  const revalidating = backup.status === 'ORPHAN' || backup.status === 'CORRUPT';
  logger.info(`${revalidating ? 'Revalidating' : 'Validating'} backup ${backup.id}`);
  if (backup.backupMode === undefined) logger.warning(`Invalid backup_mode of backup ${backup.id}`);

  let ok: boolean;
  try {
    ok = (await validateBackupFiles(ctx, params)).ok;
  } catch (error) {
    if (!isStrataError(error) || error.code === 'interrupted') throw error;
    logger.warning(error.message);
    logger.warning(`Backup ${backup.id} file list is corrupted`);
    await catalog.setBackupStatus(backup, 'CORRUPT', { logger });
    return 'CORRUPT';
  }

  await catalog.setBackupStatus(backup, ok ? 'OK' : 'CORRUPT', { logger });
  if (!ok) {
    logger.warning(`Backup ${backup.id} data files are corrupted`);
    return 'CORRUPT';
  }
  logger.info(`Backup ${backup.id} data files are valid`);
  if (await isFileListBugVictim(ctx, backup)) {
    logger.warning(
      `Backup ${backup.id} is a victim of metadata corruption. Additional information can be found here: ` +
        'https://github.com/postgrespro/pg_probackup/issues/132',
    );
    await catalog.setBackupStatus(backup, 'CORRUPT', { logger });
    return 'CORRUPT';
  }
  return 'OK';
}

/**
 * The WAL half of a backup's validation (§7.2) for a backup whose data files are OK: CORRUPT and
 * `WAL segments are corrupted` when start-lsn..stop-lsn cannot be read, else `… are valid`.
 */
export async function validateBackupWalAndStatus(
  ctx: CommandContext,
  params: {
    catalog: BackupCatalog;
    instance: string;
    backup: CatalogBackup;
    walSegmentSizeBytes: number;
  },
  options: { reportValid: boolean },
): Promise<'OK' | 'CORRUPT'> {
  const { catalog, backup } = params;
  const walSource = backupWalSource(
    ctx.storage,
    catalog,
    params.instance,
    backup,
    params.walSegmentSizeBytes,
  );
  const walOk = await validateBackupWal(ctx, {
    backup,
    walSource,
    walSegmentSizeBytes: params.walSegmentSizeBytes,
  });
  if (!walOk) {
    await catalog.setBackupStatus(backup, 'CORRUPT', { logger: ctx.logger });
    ctx.logger.warning(`Backup ${backup.id} WAL segments are corrupted`);
    return 'CORRUPT';
  }
  if (options.reportValid) ctx.logger.info(`Backup ${backup.id} WAL segments are valid`);
  return 'OK';
}

/**
 * Runs `fn` under a shared lock of the backup (§10.3), or returns `lock-failed` when the lock
 * cannot be had. A lock this process already holds (restore locks its chain first) is used as it
 * is and left in place.
 */
export async function withSharedBackupLock<T>(
  ctx: CommandContext,
  backup: CatalogBackup,
  fn: () => Promise<T>,
): Promise<T | 'lock-failed'> {
  const alreadyHeld = heldBackupLock(ctx.storage, backup.dir) !== undefined;
  const lockOptions = { backupId: backup.id, logger: ctx.logger };
  if (!alreadyHeld) {
    try {
      await lockBackupShared(ctx.storage, backup.dir, lockOptions);
    } catch (error) {
      if (isStrataError(error) && error.code === 'lock') return 'lock-failed';
      throw error;
    }
  }
  try {
    return await fn();
  } finally {
    if (!alreadyHeld) await releaseBackupLock(ctx.storage, backup.dir, lockOptions);
  }
}

/** Data files and then, when they are valid, WAL: the validation `validate` does per backup. */
export async function validateBackupUnlocked(
  ctx: CommandContext,
  params: ValidateBackupParams & { walSegmentSizeBytes: number },
): Promise<BackupValidationResult> {
  const result = await validateBackupDataFiles(ctx, params);
  if (result !== 'OK') return result;
  return validateBackupWalAndStatus(ctx, params, { reportValid: true });
}

/**
 * Validates one backup completely (cli-behaviour.md §7.1 steps 3–7 and §7.2) under a shared lock:
 * its data files, then, when they are valid, the WAL from its start-lsn to its stop-lsn (from
 * `database/pg_wal` for STREAM, the archive for ARCHIVE backups). The status is written as
 * pg_probackup does (OK, CORRUPT; RUNNING → ERROR). A backup whose lock cannot be had is
 * `skipped` with `Cannot lock backup <id> directory, skip validation`.
 */
export async function validateBackup(
  ctx: CommandContext,
  params: ValidateBackupParams & { walSegmentSizeBytes: number },
): Promise<BackupValidationResult> {
  const result = await withSharedBackupLock(ctx, params.backup, () =>
    validateBackupUnlocked(ctx, params),
  );
  if (result !== 'lock-failed') return result;
  ctx.logger.warning(`Cannot lock backup ${params.backup.id} directory, skip validation`);
  return 'skipped';
}
