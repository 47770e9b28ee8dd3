import { posix } from 'node:path';
import { StrataError, isStrataError } from '../errors.js';
import { createLogger } from '../log.js';
import type { Logger } from '../log.js';
import type { DirEntry, Storage } from '../storage/storage.js';
import { storageErrorCode } from '../storage/storage.js';
import type { BackupCatalog, CatalogBackup } from './catalog.js';
import { heldBackupLock, lockBackupExclusive, releaseBackupLock } from './locks.js';
import { formatLocalTime } from './time.js';

/**
 * Removing a backup directory so that a process killed at any instant leaves something the next
 * command recognises and finishes (spec/catalog-format.md §11.5): status DELETING first, then
 * every file leaves first, `backup.control` last but one, the lock file and the directory last.
 * What a kill can leave behind, and what `repairInterruptedBackups` does with it:
 * - a backup in DELETING whose lock is free: its deletion is finished;
 * - a directory with no `backup.control` holding only lock and temporary files, whose lock is
 *   free (a delete killed after removing `backup.control`, a backup killed before writing its
 *   first one): removed;
 * - an empty directory older than `EMPTY_DIRECTORY_STALE_SECONDS` (a backup killed between
 *   creating its directory and locking it, a delete killed just before the final rmdir): removed.
 */

const BACKUP_CONTROL_FILE = 'backup.control';
/** Files a backup directory holds before its first backup.control and after the last one. */
const LEFTOVER_FILES = new Set([
  'backup.pid',
  'backup_ro.pid',
  'backup_ro.pidtmp',
  'backup.control.tmp',
]);
const LOCK_FILES = new Set(['backup.pid', 'backup_ro.pid']);
/**
 * A backup directory is created, then locked: an empty one may belong to a backup between those
 * two steps. pg_probackup gives an empty lock file the same grace (LOCK_STALE_TIMEOUT, 30 s).
 */
const EMPTY_DIRECTORY_STALE_SECONDS = 30;
const silentLogger = createLogger(() => undefined);

export interface DeleteBackupFilesOptions {
  logger: Logger;
  /** `--progress`: one INFO line per file removed. */
  progress?: boolean;
  signal?: AbortSignal | undefined;
}

function ignoreMissing(error: unknown): void {
  if (storageErrorCode(error) !== 'ENOENT') throw error;
}

/** Every path under `dir` (relative), not following symlinks, directories included. */
async function listTree(storage: Storage, dir: string, prefix = ''): Promise<DirEntry[]> {
  let entries: DirEntry[];
  try {
    entries = await storage.readDir(posix.join(dir, prefix));
  } catch (error) {
    ignoreMissing(error);
    return [];
  }
  const result: DirEntry[] = [];
  for (const entry of entries) {
    const path = prefix === '' ? entry.name : posix.join(prefix, entry.name);
    result.push({ name: path, type: entry.type });
    if (entry.type === 'directory') result.push(...(await listTree(storage, dir, path)));
  }
  return result;
}

/**
 * pg_probackup's `delete_backup_files`: `INFO: Delete: <id> <recovery-time or start-time>`,
 * status DELETING (lax lock), then the files, leaves first (descending path order puts `a/b`
 * before `a`), `backup.control` after all data, the directory last. The caller holds the
 * backup's exclusive lock (or the backup is unreadable and has none to take).
 */
export async function deleteBackupFiles(
  catalog: BackupCatalog,
  backup: CatalogBackup,
  options: DeleteBackupFilesOptions,
): Promise<void> {
  const { storage } = catalog;
  const { logger } = options;
  const shownTime = backup.recoveryTime > 0 ? backup.recoveryTime : backup.startTime;
  logger.info(`Delete: ${backup.id} ${formatLocalTime(shownTime)}`);
  if (backup.backupMode !== undefined && backup.status !== 'DELETING') {
    await catalog.setBackupStatus(backup, 'DELETING', { logger, lax: true });
  }

  const files = (await listTree(storage, backup.dir)).filter(
    (entry) => entry.name !== BACKUP_CONTROL_FILE && !LOCK_FILES.has(entry.name),
  );
  files.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  for (let i = 0; i < files.length; i++) {
    if (options.signal?.aborted) {
      throw new StrataError('interrupted', 'interrupted during delete backup');
    }
    const entry = files[i]!;
    const path = posix.join(backup.dir, entry.name);
    if (options.progress)
      logger.info(`Progress: (${i + 1}/${files.length}). Delete file "${path}"`);
    if (entry.type === 'directory') await storage.removeTree(path);
    else await storage.unlink(path).catch(ignoreMissing);
  }
  await storage.unlink(posix.join(backup.dir, BACKUP_CONTROL_FILE)).catch(ignoreMissing);
  await storage.removeTree(backup.dir);
  await releaseBackupLock(storage, backup.dir, { backupId: backup.id, logger });
  backup.status = 'DELETED';
}

/**
 * Takes the lock of a backup nobody is using, at once; false when another process holds it. A
 * probe, not a wait: the "is still running" warnings of a busy lock are not shown.
 */
async function lockIfUnused(storage: Storage, backup: CatalogBackup): Promise<boolean> {
  try {
    await lockBackupExclusive(storage, backup.dir, {
      backupId: backup.id,
      logger: silentLogger,
      waitSeconds: 0,
      lax: true,
    });
    return true;
  } catch (error) {
    if (isStrataError(error) && error.code === 'lock') return false;
    throw error;
  }
}

/** What a killed backup or delete left of a backup directory without backup.control. */
async function leftoverKind(storage: Storage, dir: string): Promise<'leftover' | 'fresh' | 'none'> {
  let entries: DirEntry[];
  try {
    entries = await storage.readDir(dir);
  } catch (error) {
    ignoreMissing(error);
    return 'none';
  }
  if (entries.some((entry) => !LEFTOVER_FILES.has(entry.name))) return 'none';
  if (entries.length > 0) return 'leftover';
  const stat = await storage.stat(dir);
  if (!stat) return 'none';
  // The file system's clock, not the command's: mtimes are real time even when a test fixes "now".
  return Date.now() - stat.mtimeMs >= EMPTY_DIRECTORY_STALE_SECONDS * 1000 ? 'leftover' : 'fresh';
}

/**
 * Finishes what killed processes left in an instance (see the top of this file): backups in
 * DELETING nobody holds are deleted, and directories that are only the remains of a backup or a
 * delete are removed. Backups this process holds are left alone. Returns the IDs removed.
 */
export async function finishInterruptedDeletes(
  catalog: BackupCatalog,
  instance: string,
  logger: Logger,
): Promise<string[]> {
  const { storage } = catalog;
  const removed: string[] = [];
  for (const backup of await catalog.listBackups(instance)) {
    if (heldBackupLock(storage, backup.dir)) continue;
    if (backup.status === 'DELETING') {
      if (!(await lockIfUnused(storage, backup))) continue;
      const current = await catalog.readBackup(instance, backup.id);
      if (current?.status !== 'DELETING' || current.dir !== backup.dir) {
        await releaseBackupLock(storage, backup.dir, { backupId: backup.id, logger });
        continue;
      }
      logger.warning(`Backup ${backup.id} has status DELETING, finishing its deletion`);
      await deleteBackupFiles(catalog, current, { logger });
      removed.push(backup.id);
      continue;
    }
    if (backup.backupMode !== undefined) continue;
    if ((await leftoverKind(storage, backup.dir)) !== 'leftover') continue;
    if (!(await lockIfUnused(storage, backup))) continue;
    try {
      if ((await leftoverKind(storage, backup.dir)) !== 'leftover') continue;
      logger.warning(
        `Backup directory "${backup.dir}" holds no backup.control, only what an interrupted backup or delete left; removing it`,
      );
      await storage.removeTree(backup.dir);
      removed.push(backup.id);
    } finally {
      await releaseBackupLock(storage, backup.dir, { backupId: backup.id, logger });
    }
  }
  return removed;
}
