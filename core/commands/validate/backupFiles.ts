import { posix } from 'node:path';
import pLimit from 'p-limit';
import type { BackupCatalog, CatalogBackup } from '../../catalog/catalog.js';
import type { FileEntry } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { commandWorkerPool, type FileWorkerPoolOptions } from '../workers/workerPool.js';
import type { BackupFileCheck } from './backupFile.js';
import { programVersionNumber, usesCrc32c } from './programVersion.js';

/** S_IFMT / S_IFREG of st_mode as stored in the file list: only regular files are validated. */
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const DATABASE_DIR = 'database';
const EXTERNAL_DIR = 'external_directories';
const PAGE_HEADER_MAP_FILE = 'page_header_map';

export interface BackupFilesParams {
  catalog: BackupCatalog;
  instance: string;
  backup: CatalogBackup;
  threads: number;
  skipBlockValidation: boolean;
  /** Where the checks of `threads` > 1 run; the worker bundle beside the CLI unless given. */
  workerPool?: FileWorkerPoolOptions;
}

export interface BackupFilesResult {
  ok: boolean;
  /** One message per problem found, in pg_probackup's WARNING wording (without `WARNING: `). */
  problems: string[];
}

/** Where a listed file is stored: `database/<path>` or `external_directories/externaldir<N>/<path>`. */
export function storedFilePath(backupDir: string, entry: FileEntry): string {
  if (entry.externalDirNum > 0) {
    return posix.join(backupDir, EXTERNAL_DIR, `externaldir${entry.externalDirNum}`, entry.path);
  }
  return posix.join(backupDir, DATABASE_DIR, entry.path);
}

/**
 * Checks every regular file of a backup's file list (cli-behaviour.md §7.1 step 6): presence,
 * size, CRC (CRC-32C, or CRC-32 for 2.0.22–2.0.24 backups); data files page by page through
 * page_header_map (decompression, header, checksum, LSN); global/pg_control by its internal CRC.
 * Files are checked `threads` at a time, on worker threads when `threads` > 1, the catalog is on
 * this host and the file is not small (../workers). Every problem is logged as a WARNING when its file is done and
 * returned; unlike pg_probackup, which stops a worker at its first missing or mis-sized file, all
 * files are checked so that one run names every damaged file.
 *
 * Throws StrataError('corrupt') `Backup <id> file list is corrupted…` when the list cannot be read.
 */
export async function validateBackupFiles(
  ctx: CommandContext,
  params: BackupFilesParams,
): Promise<BackupFilesResult> {
  const { backup } = params;
  const entries = await params.catalog.readContentList(backup);
  const programVersionNum = programVersionNumber(backup.programVersion);
  const checkOf = (entry: FileEntry): BackupFileCheck => ({
    entry,
    fullPath: storedFilePath(backup.dir, entry),
    headerMapPath: posix.join(backup.dir, PAGE_HEADER_MAP_FILE),
    backupMode: backup.backupMode,
    checksumVersion: backup.checksumVersion,
    stopLsn: backup.stopLsn,
    programVersionNum,
    crcKind: usesCrc32c(programVersionNum) ? 'crc32c' : 'crc32',
    skipBlockValidation: params.skipBlockValidation,
  });
  const problems: string[] = [];
  const threads = Math.max(1, params.threads);
  const limit = pLimit(threads);
  const pool = commandWorkerPool(threads, params.workerPool);
  try {
    await Promise.all(
      entries
        .filter((entry) => (entry.mode & S_IFMT) === S_IFREG)
        .map((entry) =>
          limit(async () => {
            if (ctx.signal?.aborted)
              throw new StrataError('interrupted', 'Interrupted during validate');
            const { output: report } = await pool.run(
              ctx.storage,
              'checkBackupFile',
              checkOf(entry),
              { sizeBytes: entry.size },
            );
            for (const warning of report.warnings) ctx.logger.warning(warning);
            for (const problem of report.problems) {
              ctx.logger.warning(problem);
              problems.push(problem);
            }
          }),
        ),
    );
  } finally {
    await pool.close();
  }
  return { ok: problems.length === 0, problems };
}
