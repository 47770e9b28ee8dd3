import { errorText } from '../../errors.js';
import type { Lsn } from '../../format/lsn.js';
import { BLCKSZ, RELSEG_SIZE, checkDataPage } from '../../format/page.js';
import type { Logger } from '../../log.js';
import { remoteStorageFor } from '../../storage/ssh/splitStorage.js';
import { storageErrorCode, type ReadHandle, type Storage } from '../../storage/storage.js';

/**
 * A page read while the server writes it can be torn (half old, half new) and look corrupt;
 * pg_probackup re-reads a failing page up to 300 times before it reports it (PAGE_READ_ATTEMPTS).
 */
export const PAGE_READ_ATTEMPTS = 300;
const PAGES_PER_READ = 64;

export interface CorruptBlock {
  /** Absolute path of the relation segment file, as in the WARNING. */
  path: string;
  /** Block number within the segment file (pg_probackup's `block <n>`). */
  blockNo: number;
  detail: string;
}

export interface RelationFileCheck {
  /** False when the file could not be read at all (reported as a WARNING). */
  readable: boolean;
  blocksChecked: number;
  corruptBlocks: CorruptBlock[];
}

export interface RelationFileToCheck {
  absolutePath: string;
  /** The `.N` suffix of the segment file: block checksums use the block number within the fork. */
  segno: number;
  /** Size when PGDATA was listed; blocks past it are not read (the file may grow meanwhile). */
  sizeBytes: number;
}

/** The outcome of reading a page that failed its checks again. */
export type PageReread =
  | { kind: 'valid'; page: Buffer; lsn: Lsn; isZero: boolean }
  | { kind: 'corrupt'; detail: string }
  /** The file ended under the read: it was truncated since it was listed. */
  | { kind: 'truncated' };

/**
 * Re-reads a page that failed its checks until a read passes them or PAGE_READ_ATTEMPTS reads
 * (the failed one included) are used up; a torn read of a page being written passes on a later
 * read, real corruption never does.
 */
export async function rereadPage(
  handle: ReadHandle,
  blockNo: number,
  absoluteBlockNo: number,
  checksumsEnabled: boolean,
  firstDetail: string,
): Promise<PageReread> {
  const page = Buffer.alloc(BLCKSZ);
  let detail = firstDetail;
  for (let attempt = 1; attempt < PAGE_READ_ATTEMPTS; attempt++) {
    const bytesRead = await handle.read(page, blockNo * BLCKSZ, BLCKSZ);
    if (bytesRead === 0) return { kind: 'truncated' };
    if (bytesRead < BLCKSZ) continue;
    const check = checkDataPage(page, absoluteBlockNo, checksumsEnabled);
    if (check.ok) return { kind: 'valid', page, lsn: check.lsn, isZero: check.isZero };
    detail = check.detail;
  }
  return { kind: 'corrupt', detail };
}

/**
 * pg_probackup's check_data_file(): every block of a main-fork relation segment is read and
 * checked (header sanity; checksum when the cluster has data checksums; all-zero pages are
 * valid). Each corrupt block is reported as `Corruption detected in file …` at WARNING and the
 * check goes on. A file dropped since PGDATA was listed is not an error. A file on a remote host
 * is checked there by the agent; only the findings travel.
 */
export async function checkRelationFile(
  storage: Storage,
  file: RelationFileToCheck,
  checksumsEnabled: boolean,
  logger: Logger,
): Promise<RelationFileCheck> {
  const remote = remoteStorageFor(storage, file.absolutePath);
  if (remote) {
    const { messages, ...check } = await remote.checkRelationFile({ ...file, checksumsEnabled });
    for (const { level, message } of messages) logger.log(level, message);
    return check;
  }
  const { absolutePath, segno } = file;
  let handle: ReadHandle;
  try {
    handle = await storage.openRead(absolutePath);
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') {
      logger.log('LOG', `File "${absolutePath}" is not found`);
      return { readable: true, blocksChecked: 0, corruptBlocks: [] };
    }
    logger.warning(`Cannot open file "${absolutePath}": ${errorText(error)}`);
    return { readable: false, blocksChecked: 0, corruptBlocks: [] };
  }
  if (file.sizeBytes % BLCKSZ !== 0) {
    logger.warning(`File: "${absolutePath}", invalid file size ${file.sizeBytes}`);
  }
  const nBlocks = Math.floor(file.sizeBytes / BLCKSZ);
  const corruptBlocks: CorruptBlock[] = [];
  const chunk = Buffer.alloc(PAGES_PER_READ * BLCKSZ);
  let blockNo = 0;
  try {
    reading: while (blockNo < nBlocks) {
      const wanted = Math.min(PAGES_PER_READ, nBlocks - blockNo);
      const bytesRead = await handle.read(chunk, blockNo * BLCKSZ, wanted * BLCKSZ);
      // PostgreSQL truncates relations at block boundaries: a short read means the file was
      // truncated (a VACUUM, a dropped relation) since it was listed, which is not corruption.
      const pages = Math.floor(bytesRead / BLCKSZ);
      for (let i = 0; i < pages; i++) {
        const current = blockNo + i;
        const absoluteBlockNo = segno * RELSEG_SIZE + current;
        const check = checkDataPage(
          chunk.subarray(i * BLCKSZ, (i + 1) * BLCKSZ),
          absoluteBlockNo,
          checksumsEnabled,
        );
        if (check.ok) continue;
        const outcome = await rereadPage(
          handle,
          current,
          absoluteBlockNo,
          checksumsEnabled,
          check.detail,
        );
        if (outcome.kind === 'truncated') {
          blockNo = current;
          break reading;
        }
        if (outcome.kind === 'valid') continue;
        logger.warning(
          `Corruption detected in file "${absolutePath}", block ${current}: ${outcome.detail}`,
        );
        corruptBlocks.push({ path: absolutePath, blockNo: current, detail: outcome.detail });
      }
      blockNo += pages;
      if (pages < wanted) break;
    }
  } finally {
    await handle.close();
  }
  return { readable: true, blocksChecked: blockNo, corruptBlocks };
}
