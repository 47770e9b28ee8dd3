import { posix } from 'node:path';
import pLimit from 'p-limit';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { readPageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import type { FileEntry } from '../../catalog/types.js';
import { StrataError, errorText, isStrataError } from '../../errors.js';
import { BLCKSZ } from '../../format/page.js';
import { parseControlFile } from '../../format/pgControl.js';
import type { Logger } from '../../log.js';
import type { Storage } from '../../storage/storage.js';
import { storageErrorCode } from '../../storage/storage.js';
import { copyDataFile, copyWholeFile } from '../backup/dataFileCopy.js';
import { PageHeaderMapWriter } from '../backup/pageHeaderMapWriter.js';
import { restoreDataFile } from '../restore/dataFile.js';
import type { DataFileSource } from '../restore/dataFile.js';
import { isDirectoryEntry } from '../restore/restoreFiles.js';
import { FIRST_VERSION_WITH_HEADER_MAP } from '../validate/programVersion.js';

/**
 * Step 4 of a merge (cli-behaviour.md §8.2, catalog-format.md §11.4): the files of the merged
 * backup are built inside the FULL backup's directory *beside* the FULL's own files. Nothing the
 * FULL's backup_content.control or page_header_map describes is modified here, so a merge
 * interrupted during this step is simply redone; the staged files replace the FULL's only after
 * the new file list is committed (finishMerge.ts).
 */

export const DATABASE_DIR = 'database';
export const PAGE_HEADER_MAP_FILE = 'page_header_map';
/** The new map is written beside the old one and renamed over it once the merge is committed (§8). */
export const PAGE_HEADER_MAP_TMP_FILE = 'page_header_map_tmp';
/** Suffix of a merged file waiting to be renamed over the FULL's file. */
export const STAGED_SUFFIX = '_tmp';
/** Suffix of the plain relation file rebuilt from the chain before it is re-encoded (pg_probackup's `_tmp1`). */
export const REBUILT_SUFFIX = '_tmp1';
const STAGED_FILE_MODE = 0o600;
const PG_CONTROL_PATH = 'global/pg_control';

/** One member of the chain being merged, with its PGDATA file list by path. */
export interface MergeMember {
  backup: CatalogBackup;
  files: Map<string, FileEntry>;
  /** `program-version` as major*10000 + minor*100 + micro. */
  programVersionNum: number;
}

export interface StageMergeOptions {
  storage: Storage;
  logger: Logger;
  signal: AbortSignal | undefined;
  /** Destination first, FULL last. */
  chain: MergeMember[];
  /** The destination's file list: the merged backup's content. */
  destEntries: FileEntry[];
  /** Files unchanged in every incremental may stay as the FULL holds them (§8.2 step 4). */
  inPlaceAllowed: boolean;
  threads: number;
  noSync: boolean;
  progress: boolean;
}

export interface StageMergeResult {
  /** The merged backup's file list, sorted by path. */
  entries: FileEntry[];
  /** Directories holding staged files, to be synced before the merge is committed. */
  stagedDirectories: string[];
  /** The first error of a worker; the others stop before their next file. */
  failure: StrataError | undefined;
}

export function databasePath(backupDir: string, path: string): string {
  return posix.join(backupDir, DATABASE_DIR, path);
}

/**
 * The entry fields that describe stored bytes are recomputed for the merged file; path, mode,
 * flags, dbOid and segno stay the destination's.
 */
function mergedEntry(destEntry: FileEntry): FileEntry {
  return {
    ...destEntry,
    size: 0,
    crc: 0,
    compressAlg: 'none',
    fullSize: undefined,
    linked: undefined,
    nBlocks: undefined,
    nHeaders: undefined,
    hdrCrc: undefined,
    hdrOff: undefined,
    hdrSize: undefined,
  };
}

/** `full_size` is written only when it differs from `size` and is not zero (§6.2). */
function fullSizeField(uncompressedBytes: number, sizeBytes: number): number | undefined {
  return uncompressedBytes !== 0 && uncompressedBytes !== sizeBytes ? uncompressedBytes : undefined;
}

function isDataFile(entry: FileEntry): boolean {
  return entry.isDatafile && !entry.isCfs;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StrataError('interrupted', 'Interrupted during merge');
}

async function unlinkIfExists(storage: Storage, path: string): Promise<void> {
  try {
    await storage.unlink(path);
  } catch (error) {
    if (storageErrorCode(error) !== 'ENOENT') throw error;
  }
}

class FileMerger {
  private readonly dest: MergeMember;
  private readonly full: MergeMember;
  private readonly fullDir: string;
  private readonly headerMap: PageHeaderMapWriter;
  readonly stagedDirectories = new Set<string>();

  constructor(private readonly options: StageMergeOptions) {
    this.dest = options.chain[0]!;
    this.full = options.chain[options.chain.length - 1]!;
    this.fullDir = this.full.backup.dir;
    this.headerMap = new PageHeaderMapWriter(
      options.storage,
      posix.join(this.fullDir, PAGE_HEADER_MAP_TMP_FILE),
    );
  }

  closeHeaderMap(): Promise<void> {
    return this.headerMap.close(!this.options.noSync);
  }

  /** The entry a member's list has for `path`; the destination's own entry for the destination. */
  private memberEntry(member: MergeMember, destEntry: FileEntry): FileEntry | undefined {
    return member === this.dest ? destEntry : member.files.get(destEntry.path);
  }

  private staged(path: string): string {
    const stagedPath = databasePath(this.fullDir, path) + STAGED_SUFFIX;
    this.stagedDirectories.add(posix.dirname(stagedPath));
    return stagedPath;
  }

  async merge(destEntry: FileEntry): Promise<FileEntry> {
    if (isDirectoryEntry(destEntry)) return { ...destEntry };
    const entry = mergedEntry(destEntry);
    // An empty file has no stored bytes in any backup (§7.3.3): nothing to build.
    if (destEntry.size === 0) {
      if (!isDataFile(destEntry)) entry.crc = destEntry.crc;
      return entry;
    }
    if (this.options.inPlaceAllowed) {
      const kept = await this.keepInPlace(destEntry, entry);
      if (kept) return kept;
    }
    return isDataFile(destEntry)
      ? this.rebuildDataFile(destEntry, entry)
      : this.copyNonDataFile(destEntry, entry);
  }

  /**
   * pg_probackup's in-place merge: a file the FULL holds, unchanged (`size -1`) in every
   * incremental and not truncated since (same n_blocks), stays as it is; only its page headers
   * are copied into the new map.
   */
  private async keepInPlace(
    destEntry: FileEntry,
    entry: FileEntry,
  ): Promise<FileEntry | undefined> {
    const fullEntry = this.full.files.get(destEntry.path);
    if (!fullEntry || fullEntry.nBlocks !== destEntry.nBlocks) return undefined;
    for (const member of this.options.chain) {
      if (member === this.full) continue;
      if (this.memberEntry(member, destEntry)?.size !== -1) return undefined;
    }
    this.options.logger.verbose(
      `The file didn't change since FULL backup, skip merge: "${destEntry.path}"`,
    );
    entry.size = fullEntry.size;
    entry.crc = fullEntry.crc;
    if (!isDataFile(destEntry)) {
      entry.fullSize = fullEntry.fullSize;
      return entry;
    }
    entry.compressAlg = fullEntry.compressAlg;
    entry.nBlocks = fullEntry.nBlocks;
    entry.fullSize = fullSizeField(
      fullEntry.nBlocks !== undefined ? fullEntry.nBlocks * BLCKSZ : (fullEntry.fullSize ?? 0),
      fullEntry.size,
    );
    if ((fullEntry.nHeaders ?? 0) > 0) {
      const mapPath = posix.join(this.fullDir, PAGE_HEADER_MAP_FILE);
      const headers = await readPageHeaderSlice(this.options.storage, mapPath, fullEntry);
      const terminator = headers[headers.length - 1]!;
      const header = await this.headerMap.append(headers.slice(0, -1), terminator.pos);
      entry.nHeaders = fullEntry.nHeaders;
      entry.hdrCrc = header.hdrCrc;
      entry.hdrOff = header.hdrOff;
      entry.hdrSize = header.hdrSize;
    }
    return entry;
  }

  private dataFileSources(destEntry: FileEntry, newestFirst: boolean): DataFileSource[] {
    const sources: DataFileSource[] = [];
    for (const member of this.options.chain) {
      const stored = this.memberEntry(member, destEntry);
      // Absent (created later), unchanged (-1) or empty (0) in this member: no pages here.
      if (!stored || stored.size <= 0) continue;
      const mapPath = posix.join(member.backup.dir, PAGE_HEADER_MAP_FILE);
      const hasMap =
        member.programVersionNum >= FIRST_VERSION_WITH_HEADER_MAP && (stored.nHeaders ?? 0) > 0;
      sources.push({
        backupId: member.backup.id,
        path: databasePath(member.backup.dir, destEntry.path),
        compressAlg: stored.compressAlg,
        programVersionNum: member.programVersionNum,
        loadHeaders: hasMap
          ? () => readPageHeaderSlice(this.options.storage, mapPath, stored)
          : undefined,
      });
    }
    return newestFirst ? sources : sources.reverse();
  }

  /**
   * A data file is restored from the chain (newest page wins, blocks past the destination's
   * n_blocks dropped) into a plain `<file>_tmp1`, then backed up again page by page in the
   * destination's compression into `<file>_tmp`, with its headers appended to the new map.
   */
  private async rebuildDataFile(destEntry: FileEntry, entry: FileEntry): Promise<FileEntry> {
    const { storage } = this.options;
    const dest = this.dest.backup;
    // Newest member first with a block bitmap, unless the destination predates page_header_map
    // (its n_blocks cannot be trusted), as restore does.
    const newestFirst = this.dest.programVersionNum >= FIRST_VERSION_WITH_HEADER_MAP;
    const rebuiltPath = databasePath(this.fullDir, destEntry.path) + REBUILT_SUFFIX;
    const sources = this.dataFileSources(destEntry, newestFirst);
    // Stored nowhere but listed as empty by a member (an empty relation file, unchanged since):
    // the merged file is empty too. Only a retry gets here; a first run keeps it in place.
    const emptyInChain = this.options.chain.some(
      (member) => this.memberEntry(member, destEntry)?.size === 0,
    );
    if (sources.length === 0 && emptyInChain) {
      entry.size = 0;
      entry.crc = 0;
      return entry;
    }
    if (sources.length === 0) {
      throw new StrataError(
        'corrupt',
        `Failed to locate a backup containing pages of data file "${destEntry.path}"`,
      );
    }
    const stagedPath = this.staged(destEntry.path);
    await restoreDataFile(storage, {
      destinationPath: rebuiltPath,
      displayPath: destEntry.path,
      mode: STAGED_FILE_MODE,
      nBlocks: destEntry.nBlocks,
      sources,
      newestFirst,
      signal: this.options.signal,
    });
    await unlinkIfExists(storage, stagedPath);
    const copied = await copyDataFile({
      storage,
      sourcePath: rebuiltPath,
      displayPath: destEntry.path,
      destinationPath: stagedPath,
      segno: destEntry.segno ?? 0,
      checksumsEnabled: dest.checksumVersion === 1,
      // The pages come from validated backups: pg_probackup skips block checks during merge.
      skipBlockValidation: true,
      compressAlgorithm: dest.compressAlg,
      compressLevel: dest.compressLevel,
      headerMap: this.headerMap,
      sync: !this.options.noSync,
    });
    await storage.unlink(rebuiltPath);
    if (copied.writeSizeBytes === 0) return entry;
    entry.size = copied.writeSizeBytes;
    entry.crc = copied.crc;
    entry.compressAlg = dest.compressAlg;
    entry.fullSize = fullSizeField(copied.storedPages * BLCKSZ, copied.writeSizeBytes);
    entry.nBlocks = copied.nBlocks > 0 ? copied.nBlocks : undefined;
    if (copied.header) {
      entry.nHeaders = copied.storedPages;
      entry.hdrCrc = copied.header.hdrCrc;
      entry.hdrOff = copied.header.hdrOff;
      entry.hdrSize = copied.header.hdrSize;
    }
    return entry;
  }

  /**
   * A non-data file comes whole from the newest member holding a copy: the destination's own,
   * else the first one found walking towards the FULL past `size -1` ("unchanged") entries.
   */
  private async copyNonDataFile(destEntry: FileEntry, entry: FileEntry): Promise<FileEntry> {
    const { storage } = this.options;
    for (const member of this.options.chain) {
      const stored = this.memberEntry(member, destEntry);
      if (!stored) {
        throw new StrataError(
          'corrupt',
          `Failed to locate non-data file "${destEntry.path}" in backup ${member.backup.id}`,
        );
      }
      if (stored.size === 0) return entry;
      if (stored.size < 0) continue;
      const sourcePath = databasePath(member.backup.dir, destEntry.path);
      const stagedPath = this.staged(destEntry.path);
      const copied = await copyWholeFile(
        storage,
        sourcePath,
        stagedPath,
        STAGED_FILE_MODE,
        !this.options.noSync,
      );
      if (copied.sizeBytes !== stored.size) {
        throw new StrataError(
          'corrupt',
          `Backup file "${sourcePath}" has ${copied.sizeBytes} bytes, its file list says ${stored.size}. ` +
            `Backup ${member.backup.id} is corrupt; validate it`,
        );
      }
      entry.size = copied.sizeBytes;
      // The list's crc of pg_control is the CRC stored inside it (catalog-format.md §9).
      entry.crc =
        destEntry.path === PG_CONTROL_PATH
          ? parseControlFile(await storage.readFile(stagedPath)).crc
          : copied.crc;
      return entry;
    }
    throw new StrataError(
      'corrupt',
      `Failed to locate a full copy of non-data file "${destEntry.path}"`,
    );
  }
}

function comparePaths(a: FileEntry, b: FileEntry): number {
  return (
    a.externalDirNum - b.externalDirNum || Buffer.compare(Buffer.from(a.path), Buffer.from(b.path))
  );
}

/**
 * Builds every file of the merged backup in the FULL's directory with `threads` workers: the
 * destination's directories, staged `<file>_tmp` copies of the files that change, and the new
 * page header map in `page_header_map_tmp`. Files kept in place are left untouched.
 */
export async function stageMergedFiles(options: StageMergeOptions): Promise<StageMergeResult> {
  const { storage, logger } = options;
  const fullDir = options.chain[options.chain.length - 1]!.backup.dir;
  // A map left by an interrupted attempt must not be taken for this attempt's.
  await unlinkIfExists(storage, posix.join(fullDir, PAGE_HEADER_MAP_TMP_FILE));
  for (const entry of options.destEntries) {
    if (!isDirectoryEntry(entry)) continue;
    await storage.mkdir(databasePath(fullDir, entry.path), { recursive: true, mode: 0o700 });
  }

  const merger = new FileMerger(options);
  const limit = pLimit(Math.max(1, options.threads));
  const progressLevel = options.progress ? 'INFO' : 'LOG';
  const total = options.destEntries.length;
  let failure: StrataError | undefined;
  const merged = await Promise.all(
    options.destEntries.map((destEntry, index) =>
      limit(async (): Promise<FileEntry | undefined> => {
        if (failure !== undefined) return undefined;
        try {
          throwIfAborted(options.signal);
          if (!isDirectoryEntry(destEntry)) {
            logger.log(
              progressLevel,
              `Progress: (${index + 1}/${total}). Merging file "${destEntry.path}"`,
            );
          }
          return await merger.merge(destEntry);
        } catch (error) {
          failure ??= isStrataError(error)
            ? error
            : new StrataError('io', `Cannot merge file "${destEntry.path}": ${errorText(error)}`, {
                cause: error,
              });
          return undefined;
        }
      }),
    ),
  );
  await merger.closeHeaderMap();
  const entries = merged.filter((entry): entry is FileEntry => entry !== undefined);
  return {
    entries: entries.sort(comparePaths),
    stagedDirectories: [...merger.stagedDirectories],
    failure,
  };
}
