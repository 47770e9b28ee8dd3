import { StrataError } from '../../errors.js';
import type { Lsn } from '../../format/lsn.js';
import { BLCKSZ, RELSEG_SIZE, checkDataPage } from '../../format/page.js';
import { remoteStorageFor } from '../../storage/ssh/splitStorage.js';
import type { SshStorage } from '../../storage/ssh/sshStorage.js';
import {
  storageErrorCode,
  type ReadHandle,
  type Storage,
  type WriteHandle,
} from '../../storage/storage.js';
import { rereadPage } from '../checkdb/blockValidation.js';

const PAGES_PER_READ = 64;

export interface DataFileCatchupJob {
  sourcePath: string;
  destinationPath: string;
  /** st_mode of the source file; its permission bits are given to the destination file. */
  mode: number;
  /** The `.N` suffix of the segment file (checksums use the block number within the fork). */
  segno: number;
  /** The source file's size when it was listed: the destination ends up exactly this long. */
  sourceSizeBytes: number;
  checksumsEnabled: boolean;
  /**
   * Size of the destination file before the catchup; undefined when it has none. Blocks at or
   * past it are always copied.
   */
  destinationSizeBytes?: number;
  /**
   * DELTA and PTRACK: the destination's checkpoint redo LSN. Pages of the source whose LSN is
   * below it are already in the destination and are not copied (zero pages always are).
   */
  syncLsn?: Lsn;
  /** PTRACK: the changed blocks (sorted ascending); only these are read. */
  blocks?: Uint32Array;
  /** Read and decide, but write nothing. */
  dryRun: boolean;
}

export interface DataFileCatchupResult {
  /** The source file was dropped after it was listed. */
  missing: boolean;
  /** PTRACK found no changed block and the sizes agree: the file was not touched. */
  unchanged: boolean;
  copiedBlocks: number;
  /** Bytes written (or, in a dry run, that would be written). */
  writtenBytes: number;
}

/** The blocks to read: every block, or (PTRACK) the changed ones plus any the destination lacks. */
function blocksToRead(
  job: DataFileCatchupJob,
  nBlocks: number,
  destinationBlocks: number,
): Uint32Array | undefined {
  if (job.blocks === undefined || job.destinationSizeBytes === undefined) return undefined;
  const wanted = new Set<number>();
  for (const block of job.blocks) if (block < nBlocks) wanted.add(block);
  for (let block = destinationBlocks; block < nBlocks; block++) wanted.add(block);
  return Uint32Array.from(wanted).sort();
}

/** Consecutive runs of `blocks`, at most PAGES_PER_READ long; every block when undefined. */
function* readRuns(
  blocks: Uint32Array | undefined,
  nBlocks: number,
): Generator<{ first: number; count: number }> {
  if (blocks === undefined) {
    for (let first = 0; first < nBlocks; first += PAGES_PER_READ) {
      yield { first, count: Math.min(PAGES_PER_READ, nBlocks - first) };
    }
    return;
  }
  let index = 0;
  while (index < blocks.length) {
    const first = blocks[index]!;
    let count = 1;
    while (
      index + count < blocks.length &&
      count < PAGES_PER_READ &&
      blocks[index + count] === first + count
    )
      count++;
    yield { first, count };
    index += count;
  }
}

/**
 * Brings one relation segment of the destination up to the source as a plain file (not the
 * backup format), pg_probackup's catchup_data_file()/copy_pages(): every block read is checked
 * like a backup's (a failing page is re-read, then the catchup fails naming file and block);
 * FULL writes every block, DELTA and PTRACK only blocks at or after the sync LSN; the destination
 * is then cut or extended to the source's listed size.
 */
export async function catchupDataFile(
  storage: Storage,
  job: DataFileCatchupJob,
): Promise<DataFileCatchupResult> {
  const nBlocks = Math.floor(job.sourceSizeBytes / BLCKSZ);
  const destinationBlocks = Math.floor((job.destinationSizeBytes ?? 0) / BLCKSZ);
  const incremental = job.syncLsn !== undefined && job.destinationSizeBytes !== undefined;
  const blocks = incremental ? blocksToRead(job, nBlocks, destinationBlocks) : undefined;
  const result: DataFileCatchupResult = {
    missing: false,
    unchanged: false,
    copiedBlocks: 0,
    writtenBytes: 0,
  };
  if (
    blocks !== undefined &&
    blocks.length === 0 &&
    job.destinationSizeBytes === job.sourceSizeBytes
  ) {
    return { ...result, unchanged: true };
  }

  const remote = remoteStorageFor(storage, job.sourcePath);
  if (remote) {
    return catchupRemoteDataFile(remote, storage, job, {
      nBlocks,
      destinationBlocks,
      incremental,
      blocks,
      result,
    });
  }

  let source: ReadHandle;
  try {
    source = await storage.openRead(job.sourcePath);
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return { ...result, missing: true };
    throw error;
  }
  let destination: WriteHandle | undefined;
  try {
    if (!job.dryRun) {
      destination = await storage.openWrite(job.destinationPath, { mode: job.mode & 0o7777 });
      if (job.destinationSizeBytes !== undefined)
        await storage.chmod(job.destinationPath, job.mode & 0o7777);
    }
    const chunk = Buffer.alloc(PAGES_PER_READ * BLCKSZ);
    let endOfFile = false;
    for (const run of readRuns(blocks, nBlocks)) {
      if (endOfFile) break;
      const bytesRead = await source.read(chunk, run.first * BLCKSZ, run.count * BLCKSZ);
      let pages = Math.floor(bytesRead / BLCKSZ);
      if (pages < run.count) endOfFile = true;
      // Pages [pendingFirst, i) of this run are to be written in one piece.
      let pendingFirst = -1;
      const flush = async (end: number): Promise<void> => {
        if (pendingFirst < 0) return;
        const count = end - pendingFirst;
        if (destination) {
          await destination.write(
            chunk.subarray(pendingFirst * BLCKSZ, end * BLCKSZ),
            (run.first + pendingFirst) * BLCKSZ,
          );
        }
        result.copiedBlocks += count;
        result.writtenBytes += count * BLCKSZ;
        pendingFirst = -1;
      };
      for (let i = 0; i < pages; i++) {
        const blockNo = run.first + i;
        const absoluteBlockNo = job.segno * RELSEG_SIZE + blockNo;
        const page = chunk.subarray(i * BLCKSZ, (i + 1) * BLCKSZ);
        let check = checkDataPage(page, absoluteBlockNo, job.checksumsEnabled);
        if (!check.ok) {
          const reread = await rereadPage(
            source,
            blockNo,
            absoluteBlockNo,
            job.checksumsEnabled,
            check.detail,
          );
          if (reread.kind === 'truncated') {
            endOfFile = true;
            pages = i;
            break;
          }
          if (reread.kind === 'corrupt') {
            throw new StrataError(
              'corrupt',
              `Corruption detected in file "${job.sourcePath}", block ${blockNo}: ${reread.detail}`,
            );
          }
          page.set(reread.page);
          check = { ok: true, lsn: reread.lsn, isZero: reread.isZero, checksum: 0 };
        }
        const alreadyInDestination =
          incremental && blockNo < destinationBlocks && !check.isZero && check.lsn < job.syncLsn!;
        if (alreadyInDestination) {
          await flush(i);
        } else if (pendingFirst < 0) {
          pendingFirst = i;
        }
      }
      await flush(pages);
    }
    // Cuts what the source no longer has, or extends (with zeros, as PostgreSQL reads them)
    // when the source file ended early under the reads; a no-op when the lengths agree.
    await destination?.truncate(job.sourceSizeBytes);
  } finally {
    await source.close();
    await destination?.close();
  }
  return result;
}

/** Blocks per agent request: 8 MiB of pages at most in one reply. */
const REMOTE_RANGE_BLOCKS = 1024;
/** pg_probackup's BackupPageHeader before each page record: block number and payload size. */
const PAGE_RECORD_HEADER_BYTES = 8;

interface RemotePlan {
  nBlocks: number;
  destinationBlocks: number;
  incremental: boolean;
  blocks: Uint32Array | undefined;
  result: DataFileCatchupResult;
}

/**
 * The same catchup of a relation segment on a remote source host: the agent reads, checks and
 * selects the pages there (the backup's `copyPageRange`, uncompressed, with the sync LSN as its
 * filter for the blocks the destination has), so only the pages to write cross the network.
 * Blocks the destination lacks are always taken, as above.
 */
async function catchupRemoteDataFile(
  remote: SshStorage,
  storage: Storage,
  job: DataFileCatchupJob,
  plan: RemotePlan,
): Promise<DataFileCatchupResult> {
  const { result } = plan;
  let destination: WriteHandle | undefined;
  let first = true;
  const openDestination = async (): Promise<void> => {
    first = false;
    if (job.dryRun) return;
    destination = await storage.openWrite(job.destinationPath, { mode: job.mode & 0o7777 });
    if (job.destinationSizeBytes !== undefined)
      await storage.chmod(job.destinationPath, job.mode & 0o7777);
  };
  try {
    for (const range of remoteRanges(plan, job.syncLsn)) {
      const reply = await remote
        .copyPageRange({
          sourcePath: job.sourcePath,
          displayPath: job.sourcePath,
          segno: job.segno,
          checksumsEnabled: job.checksumsEnabled,
          skipBlockValidation: false,
          compressAlgorithm: 'none',
          compressLevel: 0,
          limitBlocks: plan.nBlocks,
          ...range,
        })
        .catch((error: unknown) => {
          if (first && storageErrorCode(error) === 'ENOENT') return undefined;
          throw error;
        });
      // As in the local copy, a source dropped since it was listed leaves the destination alone.
      if (reply === undefined) return { ...result, missing: true };
      if (first) await openDestination();
      await writeRecords(reply.records, destination, result);
      if (reply.ended) break;
    }
    if (first) await openDestination();
    await destination?.truncate(job.sourceSizeBytes);
  } finally {
    await destination?.close();
  }
  return result;
}

/**
 * The agent requests of a remote catchup: REMOTE_RANGE_BLOCKS-block ranges, the sync LSN as the
 * filter below the destination's end (blocks it lacks are always taken), PTRACK's changed blocks
 * per range; a range where PTRACK wants nothing is not asked for.
 */
function* remoteRanges(
  plan: RemotePlan,
  syncLsn: Lsn | undefined,
): Generator<{
  firstBlock: number;
  endBlock: number;
  keepPagesFromLsn: Lsn | undefined;
  blocks: Uint32Array | undefined;
}> {
  const filteredEnd = plan.incremental ? Math.min(plan.destinationBlocks, plan.nBlocks) : 0;
  const parts = [
    { from: 0, to: filteredEnd, keepPagesFromLsn: syncLsn },
    { from: filteredEnd, to: plan.nBlocks, keepPagesFromLsn: undefined },
  ];
  for (const part of parts) {
    for (let firstBlock = part.from; firstBlock < part.to; firstBlock += REMOTE_RANGE_BLOCKS) {
      const endBlock = Math.min(firstBlock + REMOTE_RANGE_BLOCKS, part.to);
      const blocks = plan.blocks?.filter((block) => block >= firstBlock && block < endBlock);
      if (blocks?.length === 0) continue;
      yield { firstBlock, endBlock, keepPagesFromLsn: part.keepPagesFromLsn, blocks };
    }
  }
}

/** Writes uncompressed page records at their blocks, a run of consecutive blocks at a time. */
async function writeRecords(
  records: Uint8Array,
  destination: WriteHandle | undefined,
  result: DataFileCatchupResult,
): Promise<void> {
  const bytes = Buffer.from(records.buffer, records.byteOffset, records.byteLength);
  const recordBytes = PAGE_RECORD_HEADER_BYTES + BLCKSZ;
  let offset = 0;
  while (offset < bytes.length) {
    const firstBlock = bytes.readUInt32LE(offset);
    const pages: Buffer[] = [];
    while (
      offset < bytes.length &&
      bytes.readUInt32LE(offset) === firstBlock + pages.length &&
      pages.length < PAGES_PER_READ
    ) {
      pages.push(bytes.subarray(offset + PAGE_RECORD_HEADER_BYTES, offset + recordBytes));
      offset += recordBytes;
    }
    if (destination) await destination.write(Buffer.concat(pages), firstBlock * BLCKSZ);
    result.copiedBlocks += pages.length;
    result.writtenBytes += pages.length * BLCKSZ;
  }
}
