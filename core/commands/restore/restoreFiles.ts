import { posix } from 'node:path';
import pLimit from 'p-limit';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { readPageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import type { FileEntry } from '../../catalog/types.js';
import { StrataError, errorText, isStrataError } from '../../errors.js';
import { BLCKSZ } from '../../format/page.js';
import type { Logger } from '../../log.js';
import type { Storage } from '../../storage/storage.js';
import type { TablespaceLink } from '../show/tablespaceMap.js';
import { FIRST_VERSION_WITH_HEADER_MAP } from '../validate/programVersion.js';
import { restoreDataFile } from './dataFile.js';
import type { DataFileSource } from './dataFile.js';

/** S_IFMT / S_IFDIR of st_mode, as recorded in the `mode` field of backup_content.control. */
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const PERMISSION_BITS = 0o7777;
/** pg_probackup counts every directory as 4096 bytes in pgdata-bytes and in the transferred total. */
const DIRECTORY_SIZE_BYTES = 4096;
const COPY_CHUNK_BYTES = 128 * 1024;
const PG_CONTROL_PATH = 'global/pg_control';
/** Written by pg_probackup into the backup, never restored into PGDATA (restore.c restore_files). */
const NOT_RESTORED = new Set(['tablespace_map', 'database_map']);

/** One backup of the chain with its file list, newest first in RestoreChainOptions.chain. */
export interface ChainMember {
  backup: CatalogBackup;
  /** Entries of PGDATA (external_dir_num 0) by path. */
  files: Map<string, FileEntry>;
  /** `program-version` as major*10000 + minor*100 + micro. */
  programVersionNum: number;
}

export interface RestoreChainOptions {
  storage: Storage;
  logger: Logger;
  signal: AbortSignal | undefined;
  /** The chain, destination backup first, FULL last. */
  chain: ChainMember[];
  /** The destination backup's complete file list. */
  destEntries: FileEntry[];
  pgdata: string;
  /** `pg_tblspc/<oid>` links of the destination backup (from its `database/tablespace_map`). */
  tablespaces: TablespaceLink[];
  threads: number;
  progress: boolean;
}

export interface RestoreChainResult {
  /** Directories (4096 each) plus bytes written into files, as pg_probackup counts "Transfered bytes". */
  transferredBytes: number;
  /** Every path created in PGDATA, for the final fsync. */
  restoredFiles: string[];
  restoredDirectories: string[];
  /** The first error of a worker; the other workers stop before their next file. */
  failure: StrataError | undefined;
}

export function isDirectoryEntry(entry: FileEntry): boolean {
  return (entry.mode & S_IFMT) === S_IFDIR;
}

function databaseDir(member: ChainMember): string {
  return posix.join(member.backup.dir, 'database');
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StrataError('interrupted', 'Interrupted during restore');
}

/**
 * Creates the destination's directories with their recorded modes (catalog-format.md §15.1 step 3).
 * A directory directly under `pg_tblspc/` named in tablespace_map becomes a symlink to the
 * tablespace path, which is created with the mode of `pg_tblspc` (pg_probackup trusts that mode
 * for tablespaces on PostgreSQL 11+).
 */
async function createDirectories(
  options: RestoreChainOptions,
  directories: FileEntry[],
): Promise<string[]> {
  const { storage, pgdata, logger } = options;
  const links = new Map(options.tablespaces.map((link) => [link.oid, link.path]));
  const tablespaceDirMode =
    directories.find((entry) => entry.path === 'pg_tblspc')?.mode ?? S_IFDIR | 0o700;
  const created: string[] = [];
  const sorted = [...directories].sort((a, b) =>
    Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)),
  );
  for (const entry of sorted) {
    const destination = posix.join(pgdata, entry.path);
    const parent = posix.dirname(entry.path);
    const linkTarget = parent === 'pg_tblspc' ? links.get(posix.basename(entry.path)) : undefined;
    if (linkTarget !== undefined) {
      logger.verbose(`Create directory "${linkTarget}" and symbolic link "${destination}"`);
      await storage.mkdir(linkTarget, {
        recursive: true,
        mode: tablespaceDirMode & PERMISSION_BITS,
      });
      await storage.chmod(linkTarget, tablespaceDirMode & PERMISSION_BITS);
      await storage.symlink(linkTarget, destination);
      created.push(linkTarget);
      continue;
    }
    logger.verbose(`Create directory "${entry.path}"`);
    await storage.mkdir(destination, { recursive: true, mode: entry.mode & PERMISSION_BITS });
    await storage.chmod(destination, entry.mode & PERMISSION_BITS);
    created.push(destination);
  }
  return created;
}

async function copyStoredFile(
  storage: Storage,
  sourcePath: string,
  destinationPath: string,
  mode: number,
  signal: AbortSignal | undefined,
): Promise<number> {
  const input = await storage.openRead(sourcePath);
  let copied = 0;
  try {
    const output = await storage.openWrite(destinationPath, { truncate: true, mode });
    try {
      const buffer = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
      for (;;) {
        throwIfAborted(signal);
        const read = await input.read(buffer, copied, COPY_CHUNK_BYTES);
        if (read === 0) break;
        await output.write(buffer.subarray(0, read), copied);
        copied += read;
      }
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
  return copied;
}

async function createEmptyFile(storage: Storage, path: string, mode: number): Promise<void> {
  await storage.writeFile(path, Buffer.alloc(0), { mode });
}

/**
 * A non-data file comes whole from the newest member holding a copy (catalog-format.md §15.2):
 * the destination's own copy, else walking towards the FULL past `size -1` ("unchanged") entries.
 */
async function restoreNonDataFile(
  options: RestoreChainOptions,
  entry: FileEntry,
  destinationPath: string,
): Promise<number> {
  const { storage, chain } = options;
  const mode = entry.mode & PERMISSION_BITS;
  for (const [index, member] of chain.entries()) {
    const stored = index === 0 ? entry : member.files.get(entry.path);
    if (!stored) {
      throw new StrataError(
        'corrupt',
        `Failed to locate non-data file "${entry.path}" in backup ${member.backup.id}`,
      );
    }
    if (stored.size === 0) {
      await createEmptyFile(storage, destinationPath, mode);
      await storage.chmod(destinationPath, mode);
      return 0;
    }
    if (stored.size > 0) {
      const sourcePath = posix.join(databaseDir(member), entry.path);
      const copied = await copyStoredFile(
        storage,
        sourcePath,
        destinationPath,
        mode,
        options.signal,
      );
      if (copied !== stored.size) {
        throw new StrataError(
          'corrupt',
          `Backup file "${sourcePath}" has ${copied} bytes, its file list says ${stored.size}. ` +
            `Backup ${member.backup.id} is corrupt; validate it`,
        );
      }
      await storage.chmod(destinationPath, mode);
      return copied;
    }
  }
  throw new StrataError(
    'corrupt',
    `Failed to locate a backup containing full copy of non-data file "${destinationPath}"`,
  );
}

function dataFileSources(
  options: RestoreChainOptions,
  entry: FileEntry,
  newestFirst: boolean,
): DataFileSource[] {
  const { storage } = options;
  const sources: DataFileSource[] = [];
  for (const member of options.chain) {
    const stored = member.files.get(entry.path);
    // Absent (created later), unchanged (-1) or empty (0) in this member: nothing stored here.
    if (!stored || stored.size <= 0) continue;
    const mapPath = posix.join(member.backup.dir, 'page_header_map');
    const hasMap =
      member.programVersionNum >= FIRST_VERSION_WITH_HEADER_MAP && (stored.nHeaders ?? 0) > 0;
    sources.push({
      backupId: member.backup.id,
      path: posix.join(databaseDir(member), entry.path),
      compressAlg: stored.compressAlg,
      programVersionNum: member.programVersionNum,
      loadHeaders: hasMap ? () => readPageHeaderSlice(storage, mapPath, stored) : undefined,
    });
  }
  return newestFirst ? sources : sources.reverse();
}

async function restoreOneFile(
  options: RestoreChainOptions,
  entry: FileEntry,
  newestFirst: boolean,
): Promise<number> {
  const destinationPath = posix.join(options.pgdata, entry.path);
  const mode = entry.mode & PERMISSION_BITS;
  if (!entry.isDatafile || entry.isCfs) {
    options.logger.verbose(`Restoring non-data file: "${destinationPath}"`);
    return restoreNonDataFile(options, entry, destinationPath);
  }
  options.logger.verbose(`Restoring data file: "${destinationPath}"`);
  if (entry.size === 0) {
    await createEmptyFile(options.storage, destinationPath, mode);
    await options.storage.chmod(destinationPath, mode);
    return 0;
  }
  return restoreDataFile(options.storage, {
    destinationPath,
    displayPath: entry.path,
    mode,
    nBlocks: entry.nBlocks,
    sources: dataFileSources(options, entry, newestFirst),
    newestFirst,
    signal: options.signal,
  });
}

/** The size a file will have in PGDATA, to hand the largest files to workers first. */
function expectedSizeBytes(entry: FileEntry): number {
  if (entry.isDatafile && entry.nBlocks !== undefined) return entry.nBlocks * BLCKSZ;
  return Math.max(entry.fullSize ?? entry.size, entry.size, 0);
}

/**
 * Restores every file of the destination backup into PGDATA from the chain (catalog-format.md
 * §15.1–15.2): directories first, then the files on `threads` workers, largest first, and
 * `global/pg_control` last, so that a restore interrupted half-way never leaves a cluster that
 * looks startable.
 */
export async function restoreChainFiles(options: RestoreChainOptions): Promise<RestoreChainResult> {
  const { chain, logger } = options;
  const dest = chain[0]!;
  // Newest first with a bitmap, unless the destination predates page_header_map (n_blocks then
  // cannot be trusted) or the chain is a lone FULL (nothing to skip).
  const newestFirst = dest.programVersionNum >= FIRST_VERSION_WITH_HEADER_MAP && chain.length > 1;

  const pgdataEntries = options.destEntries.filter((entry) => entry.externalDirNum === 0);
  const directories = pgdataEntries.filter(isDirectoryEntry);
  let transferredBytes = options.destEntries.filter(isDirectoryEntry).length * DIRECTORY_SIZE_BYTES;
  const restoredDirectories = await createDirectories(options, directories);

  const files = pgdataEntries.filter(
    (entry) => !isDirectoryEntry(entry) && !NOT_RESTORED.has(entry.path),
  );
  const controlFile = files.find((entry) => entry.path === PG_CONTROL_PATH);
  if (!controlFile) {
    throw new StrataError(
      'corrupt',
      `File "${PG_CONTROL_PATH}" not found in backup ${dest.backup.id}`,
    );
  }
  const ordinary = files
    .filter((entry) => entry !== controlFile)
    .sort((a, b) => expectedSizeBytes(b) - expectedSizeBytes(a));

  const limit = pLimit(Math.max(1, options.threads));
  const progressLevel = options.progress ? 'INFO' : 'LOG';
  let started = 0;
  let failure: StrataError | undefined;
  const restoreGuarded = async (entry: FileEntry, progressMessage: () => string): Promise<void> => {
    if (failure !== undefined) return;
    try {
      throwIfAborted(options.signal);
      logger.log(progressLevel, progressMessage());
      const writtenBytes = await restoreOneFile(options, entry, newestFirst);
      transferredBytes += writtenBytes;
    } catch (error) {
      failure ??= isStrataError(error)
        ? error
        : new StrataError(
            'io',
            `Cannot restore file "${posix.join(options.pgdata, entry.path)}": ${errorText(error)}`,
            { cause: error },
          );
    }
  };
  await Promise.all(
    ordinary.map((entry) =>
      limit(() =>
        restoreGuarded(
          entry,
          () => `Progress: (${++started}/${files.length}). Restore file "${entry.path}"`,
        ),
      ),
    ),
  );
  await restoreGuarded(controlFile, () => `Progress: Restore file "${controlFile.path}"`);
  return {
    transferredBytes,
    restoredFiles: files.map((entry) => posix.join(options.pgdata, entry.path)),
    restoredDirectories,
    failure,
  };
}
