import { posix } from 'node:path';
import pLimit from 'p-limit';
import type { BackupCatalog, CatalogBackup } from '../../catalog/catalog.js';
import { readPageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import type { FileEntry, PageHeaderEntry } from '../../catalog/types.js';
import { StrataError, errorText } from '../../errors.js';
import { controlFileCrcValid, parseControlFile } from '../../format/pgControl.js';
import type { Storage } from '../../storage/storage.js';
import type { CommandContext } from '../context.js';
import { checkDataFilePages } from './dataFilePages.js';
import type { DataFileReport } from './dataFilePages.js';
import {
  FIRST_VERSION_WITH_PG_CONTROL_CRC,
  programVersionNumber,
  usesCrc32c,
} from './programVersion.js';
import { SequentialCrcReader } from './sequentialReader.js';
import type { FileCrcKind } from './sequentialReader.js';

/** S_IFMT / S_IFREG of st_mode as stored in the file list: only regular files are validated. */
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const DATABASE_DIR = 'database';
const EXTERNAL_DIR = 'external_directories';
const PAGE_HEADER_MAP_FILE = 'page_header_map';
const PG_CONTROL_PATH = 'global/pg_control';

export interface BackupFilesParams {
  catalog: BackupCatalog;
  instance: string;
  backup: CatalogBackup;
  threads: number;
  skipBlockValidation: boolean;
}

export interface BackupFilesResult {
  ok: boolean;
  /** One message per problem found, in pg_probackup's WARNING wording (without `WARNING: `). */
  problems: string[];
}

interface BackupFileContext {
  storage: Storage;
  backup: CatalogBackup;
  programVersionNum: number;
  crcKind: FileCrcKind;
  skipBlockValidation: boolean;
}

/** C's `%X`: upper-case hex without padding, as pg_probackup prints CRCs in these warnings. */
function hex(value: number): string {
  return (value >>> 0).toString(16).toUpperCase();
}

/** Where a listed file is stored: `database/<path>` or `external_directories/externaldir<N>/<path>`. */
export function storedFilePath(backupDir: string, entry: FileEntry): string {
  if (entry.externalDirNum > 0) {
    return posix.join(backupDir, EXTERNAL_DIR, `externaldir${entry.externalDirNum}`, entry.path);
  }
  return posix.join(backupDir, DATABASE_DIR, entry.path);
}

async function wholeFileCrc(
  storage: Storage,
  path: string,
  crcKind: FileCrcKind,
  sizeBytes: number,
): Promise<number> {
  const handle = await storage.openRead(path);
  try {
    return (await new SequentialCrcReader(handle, crcKind, sizeBytes).finish()).crc;
  } finally {
    await handle.close();
  }
}

/**
 * `global/pg_control` is listed with the CRC stored inside it (since 2.0.25): the stored copy must
 * carry a valid internal CRC equal to the listed one.
 */
async function checkPgControl(
  fc: BackupFileContext,
  fullPath: string,
  entry: FileEntry,
): Promise<string[]> {
  const bytes = await fc.storage.readFile(fullPath);
  if (!controlFileCrcValid(bytes)) {
    return [
      `Invalid CRC of backup file "${fullPath}": the CRC stored in pg_control does not match its contents`,
    ];
  }
  let crc: number;
  try {
    crc = parseControlFile(bytes).crc;
  } catch (error) {
    return [`Cannot read backup file "${fullPath}": ${errorText(error)}`];
  }
  return crc === entry.crc
    ? []
    : [`Invalid CRC of backup file "${fullPath}" : ${hex(crc)}. Expected ${hex(entry.crc)}`];
}

async function readHeaders(
  fc: BackupFileContext,
  fullPath: string,
  entry: FileEntry,
): Promise<{ headers: PageHeaderEntry[] | undefined } | { problem: string }> {
  if (!entry.nHeaders || entry.nHeaders <= 0) return { headers: undefined };
  try {
    const mapPath = posix.join(fc.backup.dir, PAGE_HEADER_MAP_FILE);
    return { headers: await readPageHeaderSlice(fc.storage, mapPath, entry) };
  } catch (error) {
    return { problem: `Cannot get page headers for file "${fullPath}": ${errorText(error)}` };
  }
}

async function checkDataFile(
  fc: BackupFileContext,
  fullPath: string,
  entry: FileEntry,
): Promise<DataFileReport> {
  const report: DataFileReport = { problems: [], warnings: [] };
  const headers = await readHeaders(fc, fullPath, entry);
  if ('problem' in headers) {
    report.problems.push(headers.problem);
    return report;
  }
  const handle = await fc.storage.openRead(fullPath);
  try {
    const crc = await checkDataFilePages(
      {
        fullPath,
        relPath: entry.path,
        segno: entry.segno ?? 0,
        compressAlg: entry.compressAlg,
        checksumVersion: fc.backup.checksumVersion,
        stopLsn: fc.backup.stopLsn,
        programVersionNum: fc.programVersionNum,
        headers: headers.headers,
        sizeBytes: entry.size,
      },
      new SequentialCrcReader(handle, fc.crcKind, entry.size),
      report,
    );
    if (crc !== entry.crc) {
      report.problems.push(
        `Invalid CRC of backup file "${fullPath}": ${hex(crc)}. Expected ${hex(entry.crc)}`,
      );
    }
  } finally {
    await handle.close();
  }
  return report;
}

/** The checks of one listed regular file (cli-behaviour.md §7.1 step 6). */
async function checkFile(fc: BackupFileContext, entry: FileEntry): Promise<DataFileReport> {
  const none: DataFileReport = { problems: [], warnings: [] };
  if (entry.size === -1) {
    if (fc.backup.backupMode !== 'FULL') return none;
    return {
      problems: [`Backup file "${entry.path}" has invalid size. Possible metadata corruption.`],
      warnings: [],
    };
  }
  if (entry.size === 0) return none;
  const fullPath = storedFilePath(fc.backup.dir, entry);
  const stat = await fc.storage.stat(fullPath);
  if (!stat) return { problems: [`Backup file "${fullPath}" is not found`], warnings: [] };
  if (stat.sizeBytes !== entry.size) {
    return {
      problems: [
        `Invalid size of backup file "${fullPath}" : ${stat.sizeBytes}. Expected ${entry.size}`,
      ],
      warnings: [],
    };
  }
  if (entry.isDatafile && !entry.isCfs && !fc.skipBlockValidation)
    return checkDataFile(fc, fullPath, entry);
  if (
    entry.path === PG_CONTROL_PATH &&
    entry.externalDirNum === 0 &&
    fc.programVersionNum >= FIRST_VERSION_WITH_PG_CONTROL_CRC
  ) {
    return { problems: await checkPgControl(fc, fullPath, entry), warnings: [] };
  }
  const crc = await wholeFileCrc(fc.storage, fullPath, fc.crcKind, entry.size);
  if (crc === entry.crc) return none;
  return {
    problems: [
      `Invalid CRC of backup file "${fullPath}" : ${hex(crc)}. Expected ${hex(entry.crc)}`,
    ],
    warnings: [],
  };
}

/**
 * Checks every regular file of a backup's file list (cli-behaviour.md §7.1 step 6): presence,
 * size, CRC (CRC-32C, or CRC-32 for 2.0.22–2.0.24 backups); data files page by page through
 * page_header_map (decompression, header, checksum, LSN); global/pg_control by its internal CRC.
 * Files are checked `threads` at a time. Every problem is logged as a WARNING when found and
 * returned; unlike pg_probackup, which stops a worker at its first missing or mis-sized file,
 * all files are checked so that one run names every damaged file.
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
  const fc: BackupFileContext = {
    storage: ctx.storage,
    backup,
    programVersionNum,
    crcKind: usesCrc32c(programVersionNum) ? 'crc32c' : 'crc32',
    skipBlockValidation: params.skipBlockValidation,
  };
  const problems: string[] = [];
  const limit = pLimit(Math.max(1, params.threads));
  await Promise.all(
    entries
      .filter((entry) => (entry.mode & S_IFMT) === S_IFREG)
      .map((entry) =>
        limit(async () => {
          if (ctx.signal?.aborted)
            throw new StrataError('interrupted', 'Interrupted during validate');
          let report: DataFileReport;
          try {
            report = await checkFile(fc, entry);
          } catch (error) {
            report = {
              problems: [
                `Cannot read backup file "${storedFilePath(backup.dir, entry)}": ${errorText(error)}`,
              ],
              warnings: [],
            };
          }
          for (const warning of report.warnings) ctx.logger.warning(warning);
          for (const problem of report.problems) {
            ctx.logger.warning(problem);
            problems.push(problem);
          }
        }),
      ),
  );
  return { ok: problems.length === 0, problems };
}
