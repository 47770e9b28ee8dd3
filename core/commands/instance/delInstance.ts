import { posix } from 'node:path';
import { deleteBackupFiles } from '../../catalog/backupRemoval.js';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { lockBackupExclusive, releaseBackupLock } from '../../catalog/locks.js';
import { StrataError, errorText } from '../../errors.js';
import type { DirEntry } from '../../storage/storage.js';
import { storageErrorCode } from '../../storage/storage.js';
import type { CommandContext } from '../context.js';

export interface DeleteInstanceParams {
  backupPath: string;
  instance: string;
}

function isMissing(error: unknown): boolean {
  return storageErrorCode(error) === 'ENOENT';
}

/**
 * `del-instance` (cli-behaviour.md §3.3): exclusive locks on every backup (a backup in use by
 * another process stops it before anything is removed), every backup deleted (DELETING, then
 * removed), every file of `wal/<instance>/`, the configuration file, then the archive directory
 * and the instance's backups directory. Each step tolerates what an interrupted earlier run already removed, so running
 * it again finishes the job.
 */
export async function deleteInstance(
  ctx: CommandContext,
  params: DeleteInstanceParams,
): Promise<void> {
  const { storage, logger } = ctx;
  const catalog = new BackupCatalog(storage, params.backupPath);
  await catalog.assertInstanceExists(params.instance);
  const backups = await catalog.listBackups(params.instance);

  const locked: CatalogBackup[] = [];
  try {
    for (const backup of backups) {
      await lockBackupExclusive(storage, backup.dir, { backupId: backup.id, logger });
      locked.push(backup);
    }
    for (const backup of backups) {
      if (ctx.signal?.aborted)
        throw new StrataError('interrupted', 'interrupted during delete backup');
      await deleteBackupFiles(catalog, backup, { logger, signal: ctx.signal });
    }
  } finally {
    for (const backup of locked) {
      await releaseBackupLock(storage, backup.dir, { backupId: backup.id, logger });
    }
  }

  const walDir = catalog.walDir(params.instance);
  let walEntries: DirEntry[] = [];
  try {
    walEntries = await storage.readDir(walDir);
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  for (const entry of walEntries) await storage.removeTree(posix.join(walDir, entry.name));

  const configPath = catalog.instanceConfigPath(params.instance);
  try {
    await storage.unlink(configPath);
  } catch (error) {
    if (!isMissing(error)) {
      throw new StrataError('io', `Can't remove "${configPath}": ${errorText(error)}`, {
        cause: error,
      });
    }
  }
  // The backups directory goes last: it is what makes the instance exist, so a run interrupted
  // before it is gone can be repeated.
  for (const dir of [walDir, catalog.instanceDir(params.instance)]) {
    const remaining = await storage.readDir(dir).catch((error: unknown) => {
      if (isMissing(error)) return undefined;
      throw error;
    });
    if (remaining === undefined) continue;
    if (remaining.length > 0) {
      throw new StrataError(
        'io',
        `Can't remove "${dir}": Directory not empty (${remaining.map((entry) => entry.name).join(', ')})`,
      );
    }
    await storage.removeTree(dir);
  }
  logger.info(`Instance '${params.instance}' successfully deleted`);
}
