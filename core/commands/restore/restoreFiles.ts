import { posix } from 'node:path';
import pLimit from 'p-limit';
import type { CatalogBackup } from '../../catalog/catalog.js';
import type { FileEntry } from '../../catalog/types.js';
import { StrataError, errorText, isStrataError } from '../../errors.js';
import { crc32cFinal, crc32cInit, crc32cUpdate } from '../../format/crc32c.js';
import { remoteStorageFor } from '../../storage/ssh/splitStorage.js';
import type { Lsn } from '../../format/lsn.js';
import { BLCKSZ } from '../../format/page.js';
import type { Logger } from '../../log.js';
import type { Storage } from '../../storage/storage.js';
import { storageErrorCode } from '../../storage/storage.js';
import { FIRST_VERSION_WITH_HEADER_MAP } from '../validate/programVersion.js';
import type { RestoreDataFileJobSource } from '../workers/fileJobs.js';
import {
  commandWorkerPool,
  type FileWorkerPool,
  type FileWorkerPoolOptions,
} from '../workers/workerPool.js';
import { PG_CONTROL_BAK_PATH, PG_CONTROL_PATH } from './destination.js';
import { fileKey, removeRedundantFiles } from './incremental.js';

/** S_IFMT / S_IFDIR of st_mode, as recorded in the `mode` field of backup_content.control. */
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const PERMISSION_BITS = 0o7777;
/** pg_probackup's DIR_PERMISSION for the root of an external directory, which is not listed. */
const EXTERNAL_ROOT_MODE = 0o700;
/** pg_probackup counts every directory as 4096 bytes in pgdata-bytes and in the transferred total. */
const DIRECTORY_SIZE_BYTES = 4096;
const COPY_CHUNK_BYTES = 128 * 1024;
/** Written by pg_probackup into the backup, never restored into PGDATA (restore.c restore_files). */
const NOT_RESTORED = new Set(['tablespace_map', 'database_map']);
const WAL_DIR = 'pg_wal';

/** One backup of the chain with its file list, newest first in RestoreChainOptions.chain. */
export interface ChainMember {
  backup: CatalogBackup;
  /** Entries by fileKey(external_dir_num, path). */
  files: Map<string, FileEntry>;
  /** `program-version` as major*10000 + minor*100 + micro. */
  programVersionNum: number;
}

/** What PGDATA (and the other restore locations) held before the restore. */
export type DestinationState =
  | { kind: 'empty' }
  /** `--force` over another system's PGDATA: every file goes, then a plain restore. */
  | { kind: 'wipe' }
  /** `-I checksum|lsn`: files are reused where their content allows. */
  | { kind: 'incremental'; mode: 'checksum' | 'lsn'; shiftLsn: Lsn };

export interface RestoreChainOptions {
  storage: Storage;
  logger: Logger;
  signal: AbortSignal | undefined;
  /** The chain, destination backup first, FULL last. */
  chain: ChainMember[];
  /** The destination backup's complete file list. */
  destEntries: FileEntry[];
  pgdata: string;
  /** `pg_tblspc/<oid>` links of the destination backup, `path` already remapped by `-T`. */
  tablespaces: ReadonlyArray<{ oid: string; path: string }>;
  threads: number;
  progress: boolean;
  /** Restore location of external directory N at index N-1; undefined to skip them. */
  externalDirs?: readonly string[];
  /** `--waldir`: `pg_wal` becomes a symlink to it. */
  waldir?: string;
  /** Databases of a partial restore whose files become empty files. */
  excludedDbOids?: ReadonlySet<number>;
  destination?: DestinationState;
  /** Unix milliseconds, for elapsed times. */
  now?: () => number;
  /** Called once the destination is prepared, right before the first file is restored. */
  onFilesStart?: () => void;
  /** Where the data files of `threads` > 1 are rebuilt; the worker bundle beside the CLI unless given. */
  workerPool?: FileWorkerPoolOptions;
}

export interface RestoreChainResult {
  /** Directories (4096 each) plus bytes written into files, as pg_probackup counts "Transfered bytes". */
  transferredBytes: number;
  /** Data pages written into PGDATA. */
  pagesWritten: number;
  /** Data pages of existing files left in place by an incremental restore. */
  pagesKept: number;
  /** Every file path written, for the final fsync. */
  restoredFiles: string[];
  restoredDirectories: string[];
  /** The first error of a worker; the other workers stop before their next file. */
  failure: StrataError | undefined;
}

export function isDirectoryEntry(entry: FileEntry): boolean {
  return (entry.mode & S_IFMT) === S_IFDIR;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StrataError('interrupted', 'Interrupted during restore');
}

/** Where a member stores the files of PGDATA (0) or of external directory N. */
function storedRoot(backup: CatalogBackup, externalDirNum: number): string {
  return externalDirNum === 0
    ? posix.join(backup.dir, 'database')
    : posix.join(backup.dir, 'external_directories', `externaldir${externalDirNum}`);
}

/** Makes `path` a symlink to `target`, replacing a symlink an earlier restore left there. */
async function replaceWithSymlink(storage: Storage, target: string, path: string): Promise<void> {
  const existing = await storage.stat(path, { noFollow: true });
  if (existing?.type === 'symlink') await storage.unlink(path);
  else if (existing) {
    throw new StrataError(
      'restore',
      `Could not create symbolic link "${path}": a ${existing.type} is in the way; ` +
        `remove it or restore into an empty directory`,
    );
  }
  await storage.symlink(target, path);
}

class FileRestorer {
  private readonly externalDirs: readonly string[];
  /** fileKey of the files an incremental restore found in place and may reuse. */
  existingKeys = new Set<string>();
  transferredBytes = 0;
  pagesWritten = 0;
  pagesKept = 0;

  constructor(
    private readonly options: RestoreChainOptions,
    private readonly newestFirst: boolean,
    private readonly pool: FileWorkerPool,
  ) {
    this.externalDirs = options.externalDirs ?? [];
  }

  private get incremental(): Extract<DestinationState, { kind: 'incremental' }> | undefined {
    const destination = this.options.destination;
    return destination?.kind === 'incremental' ? destination : undefined;
  }

  destinationPath(entry: FileEntry): string {
    const root =
      entry.externalDirNum === 0
        ? this.options.pgdata
        : this.externalDirs[entry.externalDirNum - 1];
    if (root === undefined) {
      throw new StrataError(
        'corrupt',
        `Inconsistent external directory backup metadata: "${entry.path}" belongs to external ` +
          `directory ${entry.externalDirNum}, the backup lists ${this.externalDirs.length}`,
      );
    }
    return posix.join(root, entry.path);
  }

  /**
   * Creates the destination's directories with their recorded modes (catalog-format.md §15.1
   * step 3). A directory directly under `pg_tblspc/` named in tablespace_map becomes a symlink to
   * the tablespace path, which is created with the mode of `pg_tblspc` (pg_probackup trusts that
   * mode for tablespaces on PostgreSQL 11+); `pg_wal` likewise becomes a symlink to `--waldir`.
   */
  async createDirectories(directories: FileEntry[]): Promise<string[]> {
    const { storage, pgdata, logger, waldir } = this.options;
    const replaceLinks = (this.options.destination?.kind ?? 'empty') !== 'empty';
    const links = new Map(this.options.tablespaces.map((link) => [link.oid, link.path]));
    const tablespaceDirMode =
      directories.find((entry) => entry.externalDirNum === 0 && entry.path === 'pg_tblspc')?.mode ??
      S_IFDIR | 0o700;
    const created: string[] = [];
    const sorted = [...directories].sort(
      (a, b) =>
        a.externalDirNum - b.externalDirNum ||
        Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)),
    );
    const link = async (target: string, mode: number, destination: string) => {
      logger.verbose(`Create directory "${target}" and symbolic link "${destination}"`);
      await storage.mkdir(target, { recursive: true, mode });
      await storage.chmod(target, mode);
      if (replaceLinks) await replaceWithSymlink(storage, target, destination);
      else await storage.symlink(target, destination);
      created.push(target);
    };
    for (const [index, root] of this.externalDirs.entries()) {
      logger.verbose(`Create external directory ${index + 1} "${root}"`);
      await storage.mkdir(root, { recursive: true, mode: EXTERNAL_ROOT_MODE });
      created.push(root);
    }
    for (const entry of sorted) {
      const mode = entry.mode & PERMISSION_BITS;
      if (entry.externalDirNum > 0) {
        if (this.options.externalDirs === undefined) continue;
        const destination = this.destinationPath(entry);
        logger.verbose(`Create external directory "${destination}"`);
        await storage.mkdir(destination, { recursive: true, mode });
        await storage.chmod(destination, mode);
        created.push(destination);
        continue;
      }
      const destination = posix.join(pgdata, entry.path);
      if (waldir !== undefined && entry.path === WAL_DIR) {
        await link(waldir, mode, destination);
        continue;
      }
      const parent = posix.dirname(entry.path);
      const linkTarget = parent === 'pg_tblspc' ? links.get(posix.basename(entry.path)) : undefined;
      if (linkTarget !== undefined) {
        await link(linkTarget, tablespaceDirMode & PERMISSION_BITS, destination);
        continue;
      }
      logger.verbose(`Create directory "${entry.path}"`);
      await storage.mkdir(destination, { recursive: true, mode });
      await storage.chmod(destination, mode);
      created.push(destination);
    }
    return created;
  }

  async restoreOne(entry: FileEntry): Promise<void> {
    const { storage, logger } = this.options;
    const destinationPath = this.destinationPath(entry);
    const mode = entry.mode & PERMISSION_BITS;
    if (entry.externalDirNum === 0 && this.options.excludedDbOids?.has(entry.dbOid)) {
      // An absent file could fail WAL redo; an empty one is what a dropped relation looks like.
      await createEmptyFile(storage, destinationPath, mode);
      logger.verbose(`Skip file due to partial restore: "${entry.path}"`);
      return;
    }
    const exists = this.existingKeys.has(fileKey(entry.externalDirNum, entry.path));
    if (!entry.isDatafile || entry.isCfs) {
      logger.verbose(`Restoring non-data file: "${destinationPath}"`);
      // Awaited first: `total += await …` would read the total before the copy and lose the
      // bytes that concurrent files add meanwhile.
      const copiedBytes = await this.restoreNonDataFile(entry, destinationPath, exists);
      this.transferredBytes += copiedBytes;
      return;
    }
    logger.verbose(`Restoring data file: "${destinationPath}"`);
    if (entry.size === 0) {
      await createEmptyFile(storage, destinationPath, mode);
      return;
    }
    const incremental = this.incremental;
    const dest = this.options.chain[0]!.backup;
    const { output: restored } = await this.pool.run(
      storage,
      'restoreDataFile',
      {
        destinationPath,
        displayPath: entry.path,
        mode,
        nBlocks: entry.nBlocks,
        sources: this.dataFileSources(entry),
        newestFirst: this.newestFirst,
        ...(incremental && exists
          ? {
              existing: {
                mode: incremental.mode,
                limitLsn: incremental.mode === 'lsn' ? incremental.shiftLsn : dest.stopLsn,
                checksumsEnabled: dest.checksumVersion !== 0,
                segno: entry.segno ?? 0,
              },
            }
          : {}),
      },
      { signal: this.options.signal, sizeBytes: expectedSizeBytes(entry) },
    );
    this.transferredBytes += restored.writtenBytes;
    this.pagesWritten += restored.pagesWritten;
    this.pagesKept += restored.pagesKept;
  }

  private dataFileSources(entry: FileEntry): RestoreDataFileJobSource[] {
    const sources: RestoreDataFileJobSource[] = [];
    const key = fileKey(entry.externalDirNum, entry.path);
    for (const member of this.options.chain) {
      const stored = member.files.get(key);
      // Absent (created later), unchanged (-1) or empty (0) in this member: nothing stored here.
      if (!stored || stored.size <= 0) continue;
      const mapPath = posix.join(member.backup.dir, 'page_header_map');
      const hasMap =
        member.programVersionNum >= FIRST_VERSION_WITH_HEADER_MAP && (stored.nHeaders ?? 0) > 0;
      sources.push({
        backupId: member.backup.id,
        path: posix.join(storedRoot(member.backup, entry.externalDirNum), entry.path),
        compressAlg: stored.compressAlg,
        programVersionNum: member.programVersionNum,
        headerMap: hasMap ? { mapPath, entry: stored } : undefined,
        stopLsn: member.backup.stopLsn,
      });
    }
    return this.newestFirst ? sources : sources.reverse();
  }

  /**
   * A non-data file comes whole from the newest member holding a copy (catalog-format.md §15.2):
   * the destination's own copy, else walking towards the FULL past `size -1` ("unchanged")
   * entries. An existing file with that copy's CRC32C is kept (incremental restore).
   */
  async restoreNonDataFile(
    entry: FileEntry,
    destinationPath: string,
    exists: boolean,
  ): Promise<number> {
    const { storage, chain } = this.options;
    const mode = entry.mode & PERMISSION_BITS;
    const key = fileKey(entry.externalDirNum, entry.path);
    for (const [index, member] of chain.entries()) {
      const stored = index === 0 ? entry : member.files.get(key);
      if (!stored) {
        throw new StrataError(
          'corrupt',
          `Failed to locate non-data file "${entry.path}" in backup ${member.backup.id}`,
        );
      }
      if (stored.size === 0) {
        await createEmptyFile(storage, destinationPath, mode);
        return 0;
      }
      if (stored.size < 0) continue;
      if (exists && (await fileCrc32c(storage, destinationPath)) === stored.crc) {
        this.options.logger.verbose(
          `Already existing non-data file "${destinationPath}" has the same checksum, skip restore`,
        );
        await storage.chmod(destinationPath, mode);
        return 0;
      }
      const sourcePath = posix.join(storedRoot(member.backup, entry.externalDirNum), entry.path);
      const copied = await copyStoredFile(
        storage,
        sourcePath,
        destinationPath,
        mode,
        this.options.signal,
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
    throw new StrataError(
      'corrupt',
      `Failed to locate a backup containing full copy of non-data file "${destinationPath}"`,
    );
  }
}

/** CRC-32C of an existing file; on a remote host the agent computes it there. */
async function fileCrc32c(storage: Storage, path: string): Promise<number> {
  const remote = remoteStorageFor(storage, path);
  if (remote) return (await remote.fileCrc32c(path)).crc;
  const input = await storage.openRead(path);
  try {
    const buffer = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
    let state = crc32cInit;
    let position = 0;
    for (;;) {
      const read = await input.read(buffer, position, COPY_CHUNK_BYTES);
      if (read === 0) break;
      state = crc32cUpdate(state, buffer.subarray(0, read));
      position += read;
    }
    return crc32cFinal(state);
  } finally {
    await input.close();
  }
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
  await storage.chmod(path, mode);
}

/** The size a file will have in PGDATA, to hand the largest files to workers first. */
function expectedSizeBytes(entry: FileEntry): number {
  if (entry.isDatafile && entry.nBlocks !== undefined) return entry.nBlocks * BLCKSZ;
  return Math.max(entry.fullSize ?? entry.size, entry.size, 0);
}

/** Renames the destination's pg_control aside for the time of an incremental restore (§15.3). */
async function setControlFileAside(
  storage: Storage,
  pgdata: string,
  logger: Logger,
): Promise<void> {
  const from = posix.join(pgdata, PG_CONTROL_PATH);
  const to = posix.join(pgdata, PG_CONTROL_BAK_PATH);
  try {
    await storage.rename(from, to);
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return;
    logger.warning(`Cannot rename file "${from}" to "${to}": ${errorText(error)}`);
  }
}

/**
 * Restores every file of the destination backup from the chain (catalog-format.md §15.1–15.3):
 * directories first, then — for an incremental restore — whatever the backup does not have is
 * removed, then the files `threads` at a time, largest first, and `global/pg_control` last, so
 * that a restore interrupted half-way never leaves a cluster that looks startable. With `threads`
 * > 1 the data files whose copies and destination are on this host are rebuilt on worker threads
 * (../workers), all but the smallest; a remote destination's are rebuilt on the calling thread.
 */
export async function restoreChainFiles(options: RestoreChainOptions): Promise<RestoreChainResult> {
  const pool = commandWorkerPool(Math.max(1, options.threads), options.workerPool);
  try {
    return await restoreChainFilesWith(options, pool);
  } finally {
    await pool.close();
  }
}

async function restoreChainFilesWith(
  options: RestoreChainOptions,
  pool: FileWorkerPool,
): Promise<RestoreChainResult> {
  const { chain, logger, storage, pgdata } = options;
  const dest = chain[0]!;
  const destination = options.destination ?? { kind: 'empty' };
  // Newest first with a bitmap, unless the destination predates page_header_map (n_blocks then
  // cannot be trusted) or a lone FULL goes into an empty directory (nothing to skip).
  const newestFirst =
    dest.programVersionNum >= FIRST_VERSION_WITH_HEADER_MAP &&
    (chain.length > 1 || destination.kind === 'incremental');
  const withExternal = options.externalDirs !== undefined;

  const restorable = options.destEntries.filter(
    (entry) => entry.externalDirNum === 0 || withExternal,
  );
  const directories = restorable.filter(isDirectoryEntry);
  const restorer = new FileRestorer(options, newestFirst, pool);
  restorer.transferredBytes =
    options.destEntries.filter(isDirectoryEntry).length * DIRECTORY_SIZE_BYTES;
  const restoredDirectories = await restorer.createDirectories(directories);

  if (destination.kind !== 'empty') {
    const existingKeys = await removeRedundantFiles(
      storage,
      {
        pgdata,
        externalDirs: options.externalDirs ?? [],
        backupKeys: new Set(options.destEntries.map((e) => fileKey(e.externalDirNum, e.path))),
        cleanup: destination.kind === 'wipe',
        now: options.now ?? Date.now,
      },
      logger,
    );
    // pg_control is set aside below and always written anew.
    existingKeys.delete(fileKey(0, PG_CONTROL_PATH));
    if (destination.kind === 'incremental') restorer.existingKeys = existingKeys;
  }

  const files = restorable.filter(
    (entry) =>
      !isDirectoryEntry(entry) && !(entry.externalDirNum === 0 && NOT_RESTORED.has(entry.path)),
  );
  const controlFile = files.find(
    (entry) => entry.externalDirNum === 0 && entry.path === PG_CONTROL_PATH,
  );
  if (!controlFile) {
    throw new StrataError(
      'corrupt',
      `File "${PG_CONTROL_PATH}" not found in backup ${dest.backup.id}`,
    );
  }
  if (destination.kind === 'incremental') await setControlFileAside(storage, pgdata, logger);
  const ordinary = files
    .filter((entry) => entry !== controlFile)
    .sort((a, b) => expectedSizeBytes(b) - expectedSizeBytes(a));

  options.onFilesStart?.();
  const limit = pLimit(Math.max(1, options.threads));
  const progressLevel = options.progress ? 'INFO' : 'LOG';
  let started = 0;
  let failure: StrataError | undefined;
  const restoreGuarded = async (entry: FileEntry, progressMessage: () => string): Promise<void> => {
    if (failure !== undefined) return;
    try {
      throwIfAborted(options.signal);
      logger.log(progressLevel, progressMessage());
      await restorer.restoreOne(entry);
    } catch (error) {
      failure ??= isStrataError(error)
        ? error
        : new StrataError(
            'io',
            `Cannot restore file "${restorer.destinationPath(entry)}": ${errorText(error)}`,
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
  if (failure === undefined && destination.kind === 'incremental') {
    const bak = posix.join(pgdata, PG_CONTROL_BAK_PATH);
    if (await storage.stat(bak)) await storage.unlink(bak);
  }
  return {
    transferredBytes: restorer.transferredBytes,
    pagesWritten: restorer.pagesWritten,
    pagesKept: restorer.pagesKept,
    restoredFiles:
      failure === undefined ? files.map((entry) => restorer.destinationPath(entry)) : [],
    restoredDirectories,
    failure,
  };
}
