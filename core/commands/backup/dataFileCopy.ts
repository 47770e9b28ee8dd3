import { encodePageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import type { CompressAlgorithm, PageHeaderEntry } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import { compressPage, loadPageCodec } from '../../format/compression.js';
import { crc32c, crc32cFinal, crc32cInit, crc32cUpdate } from '../../format/crc32c.js';
import { crc32cCombine } from '../../format/crc32cCombine.js';
import type { Lsn } from '../../format/lsn.js';
import { BLCKSZ, RELSEG_SIZE, checkDataPage, pgChecksumPage } from '../../format/page.js';
import type { ReadHandle, Storage, WriteHandle } from '../../storage/storage.js';
import type { PageHeaderMapWriter } from './pageHeaderMapWriter.js';

/** A torn read under concurrent writes looks invalid; pg_probackup re-reads up to 300 times (§7.3.2). */
const PAGE_READ_ATTEMPTS = 300;
const PAGES_PER_READ = 64;
const RECORD_HEADER_BYTES = 8;
const FLUSH_BYTES = 1 << 20;

/**
 * Everything one data-file copy needs, as plain data: it crosses to a worker thread unchanged
 * (structured clone), where the copy runs on that thread's own local Storage.
 */
export interface DataFileCopyJob {
  sourcePath: string;
  /** Path shown in messages. */
  displayPath: string;
  destinationPath: string;
  segno: number;
  checksumsEnabled: boolean;
  skipBlockValidation: boolean;
  compressAlgorithm: CompressAlgorithm;
  compressLevel: number;
  /** Incremental backups keep only pages at or after this LSN (zero pages always); FULL passes undefined. */
  keepPagesFromLsn?: Lsn;
  /**
   * PAGE, PTRACK and SUMMARY modes: the changed blocks, sorted ascending. Only these blocks are
   * read (positional reads) and stored; blocks at or past the file's current length are ignored.
   * Undefined reads the whole file.
   */
  blocks?: Uint32Array;
  sync: boolean;
}

export interface DataFileCopyOptions extends DataFileCopyJob {
  storage: Storage;
  headerMap: PageHeaderMapWriter;
}

export interface DataFileCopyResult {
  /** Bytes written into the backup file (0 when no page was stored). */
  writeSizeBytes: number;
  crc: number;
  /**
   * Blocks read to the end of the file (whole-file copies), or the file's length in blocks when
   * it was opened (`blocks` copies: catalog-format §7.3.4).
   */
  nBlocks: number;
  storedPages: number;
  header: { hdrOff: bigint; hdrSize: number; hdrCrc: number } | undefined;
}

/** A copy's result before its page_header_map slice has a place in the map. */
export interface DataFileCopyOutput extends Omit<DataFileCopyResult, 'header'> {
  /**
   * The compressed slice (stored pages + terminator); undefined when no page was stored. A
   * Uint8Array: from a worker thread it arrives as one (structured clone drops Buffer).
   */
  headerSlice: { bytes: Uint8Array; hdrCrc: number } | undefined;
}

async function rereadUntilValid(
  handle: ReadHandle,
  blockNo: number,
  absoluteBlockNo: number,
  checksumsEnabled: boolean,
  displayPath: string,
): Promise<Buffer | undefined> {
  const page = Buffer.alloc(BLCKSZ);
  let detail = '';
  for (let attempt = 0; attempt < PAGE_READ_ATTEMPTS; attempt++) {
    const bytesRead = await handle.read(page, blockNo * BLCKSZ, BLCKSZ);
    if (bytesRead < BLCKSZ) return undefined;
    const check = checkDataPage(page, absoluteBlockNo, checksumsEnabled);
    if (check.ok) return page;
    detail = check.detail;
  }
  throw new StrataError(
    'corrupt',
    `Corruption detected in file "${displayPath}", block ${blockNo}: ${detail}`,
  );
}

/** Consecutive runs of the requested blocks below `limitBlocks`, at most PAGES_PER_READ long. */
function* blockRuns(
  blocks: Uint32Array,
  limitBlocks: number,
): Generator<{ first: number; count: number }> {
  let index = 0;
  while (index < blocks.length && blocks[index]! < limitBlocks) {
    const first = blocks[index]!;
    let count = 1;
    while (
      index + count < blocks.length &&
      count < PAGES_PER_READ &&
      blocks[index + count] === first + count &&
      first + count < limitBlocks
    ) {
      count++;
    }
    yield { first, count };
    index += count;
  }
}

/** Where scanned page records go: the backup file itself, or memory for a range job. */
interface RecordSink {
  /** Bytes of records so far: the next record's offset. */
  readonly written: number;
  add(blockNo: number, payload: Buffer): Promise<void>;
}

function recordHeader(blockNo: number, payloadBytes: number): Buffer {
  const header = Buffer.alloc(RECORD_HEADER_BYTES);
  header.writeUInt32LE(blockNo, 0);
  header.writeInt32LE(payloadBytes, 4);
  return header;
}

/** Writes page records to the backup file, created on the first record, with their CRC32C. */
class RecordWriter implements RecordSink {
  private destination: WriteHandle | undefined;
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  crc = crc32cInit;
  written = 0;

  constructor(
    private readonly storage: Storage,
    private readonly path: string,
  ) {}

  async add(blockNo: number, payload: Buffer): Promise<void> {
    this.push(recordHeader(blockNo, payload.length));
    this.push(payload);
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  /**
   * Appends records already laid out (a range job's output). With their CRC-32C computed where
   * they were made, it is combined into the file's instead of computed again here.
   */
  async addBytes(records: Buffer, recordsCrc?: number): Promise<void> {
    if (records.length === 0) return;
    if (recordsCrc === undefined) {
      this.push(records);
    } else {
      const combined = crc32cCombine(crc32cFinal(this.crc), recordsCrc, records.length);
      // The running state is the final value before its inversion (crc32cFinal).
      this.crc = (combined ^ 0xffffffff) >>> 0;
      this.pending.push(records);
      this.pendingBytes += records.length;
      this.written += records.length;
    }
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  private push(bytes: Buffer): void {
    this.crc = crc32cUpdate(this.crc, bytes);
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    this.written += bytes.length;
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    this.destination ??= await this.storage.openWrite(this.path, { mode: 0o600, truncate: true });
    const data =
      this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    await this.destination.write(data);
    this.pending.length = 0;
    this.pendingBytes = 0;
  }

  async finish(sync: boolean): Promise<void> {
    await this.flush();
    if (this.destination && sync) await this.destination.sync();
  }

  /** True once the backup file exists. */
  get created(): boolean {
    return this.destination !== undefined;
  }

  async close(): Promise<void> {
    await this.destination?.close();
  }
}

/** Keeps a range's records in memory, to hand them to the thread that writes the file. */
class RecordCollector implements RecordSink {
  readonly chunks: Buffer[] = [];
  written = 0;

  add(blockNo: number, payload: Buffer): Promise<void> {
    this.chunks.push(recordHeader(blockNo, payload.length), payload);
    this.written += RECORD_HEADER_BYTES + payload.length;
    return Promise.resolve();
  }
}

/** The part of a data file one scan covers. */
interface ScanRange {
  firstBlock: number;
  /** Exclusive; undefined reads to the end of the file. */
  endBlock: number | undefined;
  /** `blocks` copies: the requested blocks of this range, and the file's length in blocks. */
  blocks: Uint32Array | undefined;
  limitBlocks: number;
}

/**
 * Reads the pages of `range`, checks each (re-reading an invalid page, §7.3.2), keeps those the
 * job selects, compresses them and hands the records to `sink`; the header entries' `pos` are
 * offsets in the sink. Returns the block after the last one read and whether the file ended
 * (a short read) before the range did.
 */
async function scanPages(
  source: ReadHandle,
  job: PageScanJob,
  range: ScanRange,
  sink: RecordSink,
  headers: PageHeaderEntry[],
): Promise<{ endBlock: number; ended: boolean }> {
  const validate = !job.skipBlockValidation;
  /** Checks, selects and stores one page read at `blockNo`; false when the file ended under the read. */
  const storePage = async (blockNo: number, read: Buffer): Promise<boolean> => {
    let page: Buffer | undefined = read;
    const absoluteBlockNo = job.segno * RELSEG_SIZE + blockNo;
    let check = checkDataPage(page, absoluteBlockNo, job.checksumsEnabled && validate);
    if (!check.ok && validate) {
      page = await rereadUntilValid(
        source,
        blockNo,
        absoluteBlockNo,
        job.checksumsEnabled,
        job.displayPath,
      );
      if (!page) return false;
      check = checkDataPage(page, absoluteBlockNo, job.checksumsEnabled);
    }
    const isZero = check.ok && check.isZero;
    const pageLsn = check.ok
      ? check.lsn
      : (BigInt(page.readUInt32LE(0)) << 32n) | BigInt(page.readUInt32LE(4));
    if (job.keepPagesFromLsn !== undefined && !isZero && pageLsn < job.keepPagesFromLsn) {
      return true;
    }
    headers.push({
      lsn: isZero ? 0n : pageLsn,
      block: blockNo,
      pos: sink.written,
      checksum: isZero ? 0 : check.ok ? check.checksum : pgChecksumPage(page, absoluteBlockNo),
    });
    const payload =
      compressPage(page, job.compressAlgorithm, job.compressLevel) ?? Buffer.from(page);
    await sink.add(blockNo, payload);
    return true;
  };

  const chunk = Buffer.alloc(PAGES_PER_READ * BLCKSZ);
  if (range.blocks === undefined) {
    let blockNo = range.firstBlock;
    for (;;) {
      const wanted = Math.min(PAGES_PER_READ, (range.endBlock ?? Infinity) - blockNo);
      if (wanted <= 0) return { endBlock: blockNo, ended: false };
      const bytesRead = await source.read(chunk, blockNo * BLCKSZ, wanted * BLCKSZ);
      const pages = Math.floor(bytesRead / BLCKSZ);
      for (let i = 0; i < pages; i++) {
        if (!(await storePage(blockNo, chunk.subarray(i * BLCKSZ, (i + 1) * BLCKSZ)))) {
          return { endBlock: blockNo, ended: true };
        }
        blockNo++;
      }
      if (pages < wanted) return { endBlock: blockNo, ended: true };
    }
  }
  const limit = Math.min(range.limitBlocks, range.endBlock ?? Infinity);
  for (const run of blockRuns(range.blocks, limit)) {
    if (run.first < range.firstBlock) continue;
    const bytesRead = await source.read(chunk, run.first * BLCKSZ, run.count * BLCKSZ);
    const pages = Math.floor(bytesRead / BLCKSZ);
    for (let i = 0; i < pages; i++) {
      const page = chunk.subarray(i * BLCKSZ, (i + 1) * BLCKSZ);
      if (!(await storePage(run.first + i, page))) return { endBlock: limit, ended: true };
    }
    if (pages < run.count) return { endBlock: limit, ended: true };
  }
  return { endBlock: limit, ended: false };
}

/** What a scan needs of a copy job. */
type PageScanJob = Omit<DataFileCopyJob, 'destinationPath' | 'sync' | 'blocks'>;

function fileGone(displayPath: string): Error {
  // The errno code callers already treat as "dropped while the backup ran" (ENOENT).
  return Object.assign(new Error(`File "${displayPath}" disappeared`), { code: 'ENOENT' });
}

function encodeSlice(
  headers: PageHeaderEntry[],
  fileSizeBytes: number,
): DataFileCopyOutput['headerSlice'] {
  if (headers.length === 0) return undefined;
  return encodePageHeaderSlice([
    ...headers,
    { lsn: 0n, block: 0, pos: fileSizeBytes, checksum: 0 },
  ]);
}

/**
 * Copies one relation segment page by page into the backup's format (catalog-format §7.3.5):
 * each stored page is an 8-byte record header and the page, compressed when that helps. Every
 * page read is checked (header, checksum; an invalid page is re-read, §7.3.2). Returns the file's
 * page_header_map slice encoded, so that this can run on a worker thread and the caller only
 * appends bytes to the map.
 */
export async function copyDataFilePages(
  storage: Storage,
  job: DataFileCopyJob,
): Promise<DataFileCopyOutput> {
  await loadPageCodec(job.compressAlgorithm);
  const headers: PageHeaderEntry[] = [];
  const writer = new RecordWriter(storage, job.destinationPath);
  let limitBlocks = 0;
  if (job.blocks !== undefined) {
    const stat = await storage.stat(job.sourcePath);
    if (!stat) throw fileGone(job.displayPath);
    limitBlocks = Math.floor(stat.sizeBytes / BLCKSZ);
  }
  const source = await storage.openRead(job.sourcePath);
  let nBlocks: number;
  try {
    const range = { firstBlock: 0, endBlock: undefined, blocks: job.blocks, limitBlocks };
    nBlocks = (await scanPages(source, job, range, writer, headers)).endBlock;
    await writer.finish(job.sync);
  } finally {
    await source.close();
    await writer.close();
  }
  return {
    writeSizeBytes: writer.written,
    crc: crc32cFinal(writer.crc),
    nBlocks,
    storedPages: headers.length,
    headerSlice: encodeSlice(headers, writer.written),
  };
}

/** One block range of a data file, copied into memory (a job of `copyDataFileByRanges`). */
export interface PageRangeJob extends PageScanJob {
  firstBlock: number;
  /** Exclusive; undefined reads to the end of the file. */
  endBlock: number | undefined;
  /** `blocks` copies: the requested blocks in this range, sorted. */
  blocks: Uint32Array | undefined;
  /** `blocks` copies: the file's length in blocks when the copy began; later blocks are ignored. */
  limitBlocks: number;
}

export interface PageRangeOutput {
  /** The range's page records, laid out as in the backup file. */
  records: Uint8Array;
  /**
   * CRC-32C of `records`, computed where the range was copied so that the thread writing the file
   * only combines it; a producer that leaves it out has it computed by that thread.
   */
  crc?: number;
  /** Header entries of the stored pages, `pos` relative to `records`. */
  headers: PageHeaderEntry[];
  endBlock: number;
  /** The file ended (a short read) inside this range: later ranges are void. */
  ended: boolean;
}

export async function copyPageRange(storage: Storage, job: PageRangeJob): Promise<PageRangeOutput> {
  await loadPageCodec(job.compressAlgorithm);
  const collector = new RecordCollector();
  const headers: PageHeaderEntry[] = [];
  const source = await storage.openRead(job.sourcePath);
  try {
    const scanned = await scanPages(source, job, job, collector, headers);
    // A buffer of its own (never a slice of Node's shared pool), so a worker can transfer it.
    const records = new Uint8Array(collector.written);
    let offset = 0;
    for (const chunk of collector.chunks) {
      records.set(chunk, offset);
      offset += chunk.length;
    }
    return { records, crc: crc32c(records), headers, ...scanned };
  } finally {
    await source.close();
  }
}

export interface RangeCopyOptions {
  /** Blocks per range job. */
  rangeBlocks: number;
  /** Range jobs submitted ahead of the one being written (bounds the records held in memory). */
  rangesInFlight: number;
  /** Runs one range job, typically on a worker thread. */
  runRange: (job: PageRangeJob) => Promise<PageRangeOutput>;
}

/**
 * `copyDataFilePages` split into block ranges that run in parallel (one large relation segment
 * keeps every worker busy), their records written in block order on the calling thread. The
 * result is byte for byte the one `copyDataFilePages` gives.
 */
export async function copyDataFileByRanges(
  storage: Storage,
  job: DataFileCopyJob,
  options: RangeCopyOptions,
): Promise<DataFileCopyOutput> {
  const stat = await storage.stat(job.sourcePath);
  if (!stat) throw fileGone(job.displayPath);
  const sizeBlocks = Math.floor(stat.sizeBytes / BLCKSZ);
  const { blocks, destinationPath, sync, ...scanJob } = job;
  const ranges: PageRangeJob[] = [];
  let blockIndex = 0;
  for (let first = 0; first === 0 || first < sizeBlocks; first += options.rangeBlocks) {
    const end = first + options.rangeBlocks;
    const last = end >= sizeBlocks;
    let rangeBlocks: Uint32Array | undefined;
    if (blocks !== undefined) {
      // `blocks` is sorted: each range takes the next run of it (a copy, so that only it is cloned).
      const start = blockIndex;
      while (blockIndex < blocks.length && blocks[blockIndex]! < end) blockIndex++;
      rangeBlocks = blocks.slice(start, blockIndex);
      if (rangeBlocks.length === 0 && !last) continue;
    }
    // Whole-file copies read the last range to the end, as the file may have grown since stat.
    const endBlock = last && blocks === undefined ? undefined : end;
    ranges.push({
      ...scanJob,
      firstBlock: first,
      endBlock,
      blocks: rangeBlocks,
      limitBlocks: sizeBlocks,
    });
    if (last) break;
  }

  const writer = new RecordWriter(storage, destinationPath);
  const headers: PageHeaderEntry[] = [];
  const submitted: Array<Promise<PageRangeOutput>> = [];
  const submit = (index: number) => {
    const range = ranges[index];
    if (range === undefined) return;
    const running = options.runRange(range);
    // Results are awaited in order; a later range's failure must not go unhandled meanwhile.
    running.catch(() => undefined);
    submitted[index] = running;
  };
  for (let index = 0; index < options.rangesInFlight; index++) submit(index);
  let nBlocks = blocks === undefined ? 0 : sizeBlocks;
  try {
    for (let index = 0; index < ranges.length; index++) {
      const output = await submitted[index]!;
      submit(index + options.rangesInFlight);
      const offset = writer.written;
      for (const entry of output.headers) headers.push({ ...entry, pos: entry.pos + offset });
      await writer.addBytes(
        Buffer.from(output.records.buffer, output.records.byteOffset, output.records.byteLength),
        output.crc,
      );
      if (blocks === undefined) nBlocks = output.endBlock;
      if (output.ended) break;
    }
    await writer.finish(sync);
  } catch (error) {
    await writer.close();
    if (writer.created) await storage.unlink(destinationPath).catch(() => undefined);
    throw error;
  } finally {
    await Promise.allSettled(submitted);
  }
  await writer.close();
  return {
    writeSizeBytes: writer.written,
    crc: crc32cFinal(writer.crc),
    nBlocks,
    storedPages: headers.length,
    headerSlice: encodeSlice(headers, writer.written),
  };
}

/** `copyDataFilePages` on the calling thread, its header slice appended to the backup's map. */
export async function copyDataFile(options: DataFileCopyOptions): Promise<DataFileCopyResult> {
  const { storage, headerMap, ...job } = options;
  const output = await copyDataFilePages(storage, job);
  return withHeaderPlace(output, headerMap);
}

/** Appends a copy's slice to page_header_map and answers where it went. */
export async function withHeaderPlace(
  output: DataFileCopyOutput,
  headerMap: PageHeaderMapWriter,
): Promise<DataFileCopyResult> {
  const { headerSlice, ...rest } = output;
  const header = headerSlice ? await headerMap.appendSlice(headerSlice) : undefined;
  return { ...rest, header };
}

/** Copies a non-data file byte for byte, computing its CRC32C (catalog-format §7.5). */
export async function copyWholeFile(
  storage: Storage,
  sourcePath: string,
  destinationPath: string,
  mode: number,
  sync: boolean,
): Promise<{ sizeBytes: number; crc: number }> {
  const source = await storage.openRead(sourcePath);
  const destination = await storage.openWrite(destinationPath, {
    mode: mode & 0o7777,
    truncate: true,
  });
  const buffer = Buffer.alloc(1 << 20);
  let position = 0;
  let crc = crc32cInit;
  try {
    for (;;) {
      const bytesRead = await source.read(buffer, position);
      if (bytesRead === 0) break;
      const data = buffer.subarray(0, bytesRead);
      crc = crc32cUpdate(crc, data);
      await destination.write(data, position);
      position += bytesRead;
    }
    if (sync) await destination.sync();
  } finally {
    await source.close();
    await destination.close();
  }
  return { sizeBytes: position, crc: crc32cFinal(crc) };
}
