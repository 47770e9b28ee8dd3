import type { BackupMode, FileEntry, PageHeaderEntry } from '../../catalog/types.js';
import { readPageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import { errorText } from '../../errors.js';
import type { Lsn } from '../../format/lsn.js';
import { controlFileCrcValid, parseControlFile } from '../../format/pgControl.js';
import type { Storage } from '../../storage/storage.js';
import { checkDataFilePages } from './dataFilePages.js';
import type { DataFileReport } from './dataFilePages.js';
import { FIRST_VERSION_WITH_PG_CONTROL_CRC } from './programVersion.js';
import { SequentialCrcReader } from './sequentialReader.js';
import type { FileCrcKind } from './sequentialReader.js';

const PG_CONTROL_PATH = 'global/pg_control';

/**
 * What the check of one listed file needs, as plain data: it crosses to a worker thread of `-j N`
 * by structured clone (../workers/fileJobs.ts) or runs as it is on the calling thread.
 */
export interface BackupFileCheck {
  entry: FileEntry;
  /** Where the file is stored: `storedFilePath(backup.dir, entry)`. */
  fullPath: string;
  /** The backup's page_header_map, for a data file's page headers. */
  headerMapPath: string;
  backupMode: BackupMode | undefined;
  checksumVersion: number;
  stopLsn: Lsn;
  programVersionNum: number;
  crcKind: FileCrcKind;
  skipBlockValidation: boolean;
}

/** C's `%X`: upper-case hex without padding, as pg_probackup prints CRCs in these warnings. */
function hex(value: number): string {
  return (value >>> 0).toString(16).toUpperCase();
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
async function checkPgControl(storage: Storage, check: BackupFileCheck): Promise<string[]> {
  const { fullPath, entry } = check;
  const bytes = await storage.readFile(fullPath);
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
  storage: Storage,
  check: BackupFileCheck,
): Promise<{ headers: PageHeaderEntry[] | undefined } | { problem: string }> {
  const { entry } = check;
  if (!entry.nHeaders || entry.nHeaders <= 0) return { headers: undefined };
  try {
    return { headers: await readPageHeaderSlice(storage, check.headerMapPath, entry) };
  } catch (error) {
    return { problem: `Cannot get page headers for file "${check.fullPath}": ${errorText(error)}` };
  }
}

async function checkDataFile(storage: Storage, check: BackupFileCheck): Promise<DataFileReport> {
  const { entry, fullPath } = check;
  const report: DataFileReport = { problems: [], warnings: [] };
  const headers = await readHeaders(storage, check);
  if ('problem' in headers) {
    report.problems.push(headers.problem);
    return report;
  }
  const handle = await storage.openRead(fullPath);
  try {
    const crc = await checkDataFilePages(
      {
        fullPath,
        relPath: entry.path,
        segno: entry.segno ?? 0,
        compressAlg: entry.compressAlg,
        checksumVersion: check.checksumVersion,
        stopLsn: check.stopLsn,
        programVersionNum: check.programVersionNum,
        headers: headers.headers,
        sizeBytes: entry.size,
      },
      new SequentialCrcReader(handle, check.crcKind, entry.size),
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

async function checkStoredFile(storage: Storage, check: BackupFileCheck): Promise<DataFileReport> {
  const { entry, fullPath } = check;
  const none: DataFileReport = { problems: [], warnings: [] };
  if (entry.size === -1) {
    if (check.backupMode !== 'FULL') return none;
    return {
      problems: [`Backup file "${entry.path}" has invalid size. Possible metadata corruption.`],
      warnings: [],
    };
  }
  if (entry.size === 0) return none;
  const stat = await storage.stat(fullPath);
  if (!stat) return { problems: [`Backup file "${fullPath}" is not found`], warnings: [] };
  if (stat.sizeBytes !== entry.size) {
    return {
      problems: [
        `Invalid size of backup file "${fullPath}" : ${stat.sizeBytes}. Expected ${entry.size}`,
      ],
      warnings: [],
    };
  }
  if (entry.isDatafile && !entry.isCfs && !check.skipBlockValidation) {
    return checkDataFile(storage, check);
  }
  if (
    entry.path === PG_CONTROL_PATH &&
    entry.externalDirNum === 0 &&
    check.programVersionNum >= FIRST_VERSION_WITH_PG_CONTROL_CRC
  ) {
    return { problems: await checkPgControl(storage, check), warnings: [] };
  }
  const crc = await wholeFileCrc(storage, fullPath, check.crcKind, entry.size);
  if (crc === entry.crc) return none;
  return {
    problems: [
      `Invalid CRC of backup file "${fullPath}" : ${hex(crc)}. Expected ${hex(entry.crc)}`,
    ],
    warnings: [],
  };
}

/**
 * The checks of one listed regular file (cli-behaviour.md §7.1 step 6). A file that cannot be
 * read is a problem of the backup like any other, reported as `Cannot read backup file …`; only
 * the machinery that runs the check (a worker thread) can fail the call.
 */
export async function checkBackupFile(
  storage: Storage,
  check: BackupFileCheck,
): Promise<DataFileReport> {
  try {
    return await checkStoredFile(storage, check);
  } catch (error) {
    return {
      problems: [`Cannot read backup file "${check.fullPath}": ${errorText(error)}`],
      warnings: [],
    };
  }
}
