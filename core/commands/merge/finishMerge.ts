import { posix } from 'node:path';
import pLimit from 'p-limit';
import { deleteBackupFiles } from '../../catalog/backupRemoval.js';
import type { DeleteBackupFilesOptions } from '../../catalog/backupRemoval.js';
import type { BackupCatalog, CatalogBackup } from '../../catalog/catalog.js';
import { formatContentList, parseContentList } from '../../catalog/contentList.js';
import { lockBackupExclusive, releaseBackupLock } from '../../catalog/locks.js';
import type { BackupMeta, FileEntry } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import { crc32c } from '../../format/crc32c.js';
import { isWalSegmentName } from '../../format/walNames.js';
import type { Logger } from '../../log.js';
import type { Storage } from '../../storage/storage.js';
import { storageErrorCode } from '../../storage/storage.js';
import { PROGRAM_VERSION } from '../context.js';
import { isDirectoryEntry } from '../restore/restoreFiles.js';
import {
  DATABASE_DIR,
  PAGE_HEADER_MAP_FILE,
  PAGE_HEADER_MAP_TMP_FILE,
  STAGED_SUFFIX,
  databasePath,
} from './mergeFiles.js';

/**
 * Steps 5–7 of a merge (cli-behaviour.md §8.2): the staged files replace the FULL's, the FULL
 * takes the destination's metadata and becomes MERGED, the incremental members are deleted, and
 * the FULL's directory takes the destination's ID. Every step can be repeated after a crash.
 */

/**
 * The merged backup's file list, written complete (tmp, fsync, rename) once every file is staged.
 * Its appearance is the merge's commit point: from then on the merge only moves forward.
 */
export const MERGED_CONTENT_LIST_FILE = 'backup_content.control.merge';
const CONTENT_LIST_FILE = 'backup_content.control';
/** pg_probackup counts every directory as 4096 bytes in data-bytes and uncompressed-bytes (§6.5). */
const DIRECTORY_SIZE_BYTES = 4096;

async function ignoreMissing(operation: Promise<void>): Promise<boolean> {
  try {
    await operation;
    return true;
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return false;
    throw error;
  }
}

/** Writes the merged file list beside the FULL's own list: the commit point of the merge. */
export async function commitMergedList(
  storage: Storage,
  fullDir: string,
  entries: readonly FileEntry[],
): Promise<void> {
  await storage.writeFileAtomic(
    posix.join(fullDir, MERGED_CONTENT_LIST_FILE),
    formatContentList(entries),
    { mode: 0o600, tmpSuffix: '.tmp', sync: true },
  );
}

export async function hasCommittedList(storage: Storage, fullDir: string): Promise<boolean> {
  return (await storage.stat(posix.join(fullDir, MERGED_CONTENT_LIST_FILE))) !== null;
}

async function readCommittedList(
  storage: Storage,
  fullDir: string,
): Promise<{ entries: FileEntry[]; contentCrc: number }> {
  const path = posix.join(fullDir, MERGED_CONTENT_LIST_FILE);
  const bytes = await storage.readFile(path);
  return { entries: parseContentList(bytes.toString('utf8'), path), contentCrc: crc32c(bytes) };
}

/** Files the merged backup stores: regular files of PGDATA with bytes (size > 0). */
function storedFiles(entries: readonly FileEntry[]): FileEntry[] {
  return entries.filter(
    (entry) => !isDirectoryEntry(entry) && entry.externalDirNum === 0 && entry.size > 0,
  );
}

/** data-bytes, uncompressed-bytes and (STREAM) wal-bytes of a file list, as write_backup_filelist counts them. */
function accountSizes(entries: readonly FileEntry[]): {
  dataBytes: number;
  uncompressedBytes: number;
  walBytes: number;
} {
  let dataBytes = 0;
  let uncompressedBytes = 0;
  let walBytes = 0;
  for (const entry of entries) {
    if (isDirectoryEntry(entry)) {
      dataBytes += DIRECTORY_SIZE_BYTES;
      uncompressedBytes += DIRECTORY_SIZE_BYTES;
      continue;
    }
    if (entry.size <= 0) continue;
    if (entry.externalDirNum === 0 && isWalSegmentName(posix.basename(entry.path))) {
      walBytes += entry.size;
      continue;
    }
    dataBytes += entry.size;
    uncompressedBytes += entry.fullSize ?? entry.size;
  }
  return { dataBytes, uncompressedBytes, walBytes };
}

/**
 * The FULL's backup.control after the merge (merge.c merge_chain): the destination's recovery
 * point, WAL mode, compression, pin and note; no parent; this program's version. pgdata-bytes is
 * the destination's, the size of the data directory the merged backup restores.
 */
function mergedMeta(
  full: BackupMeta,
  dest: BackupMeta,
  entries: readonly FileEntry[],
  contentCrc: number,
  endTime: number,
): BackupMeta {
  const sizes = accountSizes(entries);
  return {
    ...full,
    programVersion: PROGRAM_VERSION,
    parentBackupId: undefined,
    startLsn: dest.startLsn,
    stopLsn: dest.stopLsn,
    recoveryTime: dest.recoveryTime,
    recoveryXid: dest.recoveryXid,
    timelineId: dest.timelineId,
    fromReplica: dest.fromReplica,
    externalDirs: dest.externalDirs,
    primaryConninfo: dest.primaryConninfo,
    compressAlg: dest.compressAlg,
    compressLevel: dest.compressLevel,
    expireTime: dest.expireTime,
    note: dest.note,
    stream: dest.stream,
    dataBytes: sizes.dataBytes,
    uncompressedBytes: sizes.uncompressedBytes,
    walBytes: dest.stream ? sizes.walBytes : dest.walBytes,
    pgdataBytes: dest.pgdataBytes,
    endTime,
    status: 'MERGED',
    contentCrc,
  };
}

/**
 * Deletes from the FULL's `database/` every file and directory the merged list does not hold:
 * files of relations dropped before the destination, old WAL of a STREAM FULL, files that are
 * empty in the destination, and leftovers of interrupted attempts.
 */
async function removeUnlistedFiles(
  storage: Storage,
  logger: Logger,
  fullDir: string,
  entries: readonly FileEntry[],
): Promise<void> {
  const keepFiles = new Set(storedFiles(entries).map((entry) => entry.path));
  const keepDirectories = new Set(
    entries
      .filter((entry) => isDirectoryEntry(entry) && entry.externalDirNum === 0)
      .map((entry) => entry.path),
  );
  const walk = async (relativeDir: string): Promise<void> => {
    const absoluteDir = posix.join(fullDir, DATABASE_DIR, relativeDir);
    for (const child of await storage.readDir(absoluteDir)) {
      const relativePath = relativeDir === '' ? child.name : `${relativeDir}/${child.name}`;
      const absolutePath = posix.join(absoluteDir, child.name);
      if (child.type === 'directory') {
        await walk(relativePath);
        if (keepDirectories.has(relativePath)) continue;
        await storage.removeTree(absolutePath);
      } else {
        if (keepFiles.has(relativePath)) continue;
        await storage.unlink(absolutePath);
      }
      logger.verbose(`Deleted "${absolutePath}"`);
    }
  };
  await walk('');
}

export interface InstallMergedFilesOptions {
  catalog: BackupCatalog;
  logger: Logger;
  full: CatalogBackup;
  dest: CatalogBackup;
  threads: number;
  noSync: boolean;
  nowSec: number;
}

/**
 * From the committed list on (FULL MERGING, merged list present): renames every staged
 * `<file>_tmp` over the FULL's file and `page_header_map_tmp` over `page_header_map`, deletes what
 * the list does not hold, then writes the FULL's new backup.control with status MERGED and puts
 * the merged list in place. A staged file already renamed is simply no longer there, so a
 * repeated run picks up where the last one stopped.
 */
export async function installMergedFiles(options: InstallMergedFilesOptions): Promise<void> {
  const { catalog, logger, full } = options;
  const { storage } = catalog;
  const { entries, contentCrc } = await readCommittedList(storage, full.dir);

  const renamedDirectories = new Set<string>();
  const limit = pLimit(Math.max(1, options.threads));
  await Promise.all(
    storedFiles(entries).map((entry) =>
      limit(async () => {
        const finalPath = databasePath(full.dir, entry.path);
        if (await ignoreMissing(storage.rename(finalPath + STAGED_SUFFIX, finalPath))) {
          renamedDirectories.add(posix.dirname(finalPath));
        }
      }),
    ),
  );
  const mapPath = posix.join(full.dir, PAGE_HEADER_MAP_FILE);
  const renamedMap = await ignoreMissing(
    storage.rename(posix.join(full.dir, PAGE_HEADER_MAP_TMP_FILE), mapPath),
  );
  // No page stored anywhere in the merged backup: the old map describes nothing that is left.
  if (!renamedMap && !entries.some((entry) => (entry.nHeaders ?? 0) > 0)) {
    await ignoreMissing(storage.unlink(mapPath));
  }
  if (!options.noSync) {
    for (const directory of [...renamedDirectories, full.dir]) await storage.syncDir(directory);
  }
  await removeUnlistedFiles(storage, logger, full.dir, entries);
  await ignoreMissing(storage.unlink(posix.join(full.dir, `${MERGED_CONTENT_LIST_FILE}.tmp`)));

  Object.assign(full, mergedMeta(full, options.dest, entries, contentCrc, options.nowSec));
  await catalog.writeBackupControl(full.dir, full);
  await putMergedListInPlace(storage, full.dir, options.noSync);
}

/**
 * The last move of the FULL's new metadata: the merged list replaces the FULL's list, which the
 * MERGED backup.control (its content-crc) already describes.
 */
export async function putMergedListInPlace(
  storage: Storage,
  fullDir: string,
  noSync: boolean,
): Promise<void> {
  const moved = await ignoreMissing(
    storage.rename(
      posix.join(fullDir, MERGED_CONTENT_LIST_FILE),
      posix.join(fullDir, CONTENT_LIST_FILE),
    ),
  );
  if (moved && !noSync) await storage.syncDir(fullDir);
}

/**
 * Step 6: deletes the incremental members (catalog/backupRemoval.ts: DELETING, data, then
 * backup.control, then the directory), the one next to the FULL first and the destination last,
 * so that whatever is left after a crash is still reachable from the destination's ID.
 */
export async function deleteMergedIncrementals(
  catalog: BackupCatalog,
  incrementals: readonly CatalogBackup[],
  options: DeleteBackupFilesOptions,
): Promise<void> {
  for (const member of [...incrementals].reverse()) {
    await deleteBackupFiles(catalog, member, options);
  }
}

export interface RenameMergedFullOptions {
  catalog: BackupCatalog;
  logger: Logger;
  instance: string;
  full: CatalogBackup;
  destId: string;
  destStartTime: number;
  noSync: boolean;
}

/**
 * Step 7: the FULL's directory takes the destination's ID, then its backup.control the
 * destination's start time, status OK and no merge-dest-id. A directory already renamed by an
 * interrupted run is recognised by its name. The exclusive lock moves with the directory.
 */
export async function renameMergedFull(options: RenameMergedFullOptions): Promise<void> {
  const { catalog, logger, full, destId } = options;
  const { storage } = catalog;
  const destDir = catalog.backupDir(options.instance, destId);
  if (full.dir !== destDir) {
    if (await storage.stat(destDir)) {
      throw new StrataError(
        'catalog',
        `Could not rename directory "${full.dir}" to "${destDir}": the destination exists`,
      );
    }
    logger.verbose(`Rename ${full.dir} to ${destDir}`);
    await storage.rename(full.dir, destDir);
    if (!options.noSync) await storage.syncDir(catalog.instanceDir(options.instance));
    await releaseBackupLock(storage, full.dir, { backupId: full.id, logger });
    full.dir = destDir;
    await lockBackupExclusive(storage, destDir, { backupId: destId, logger });
  }
  logger.info(`Rename merged full backup ${full.id} to ${destId}`);
  full.status = 'OK';
  full.startTime = options.destStartTime;
  full.id = destId;
  full.mergeDestId = undefined;
  await catalog.writeBackupControl(destDir, full);
}
