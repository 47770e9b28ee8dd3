import type { CompressAlgorithm, PageHeaderEntry } from '../../catalog/types.js';
import { StrataError, errorText } from '../../errors.js';
import { loadPageCodec, tryDecompressPage } from '../../format/compression.js';
import type { Lsn } from '../../format/lsn.js';
import { BLCKSZ, pageHeaderProblem } from '../../format/page.js';
import type { ReadHandle, Storage, WriteHandle } from '../../storage/storage.js';
import {
  FIRST_VERSION_WITHOUT_RAW_SIZE_BUG,
  FIRST_VERSION_WITH_HEADER_MAP,
} from '../validate/programVersion.js';
import { keepsExistingPage, readExistingPages } from './existingPages.js';
import type { ExistingPages, ExistingPagesRequest } from './existingPages.js';

/** BackupPageHeader: uint32 block + int32 compressed_size before every stored page. */
const RECORD_HEADER_BYTES = 8;
/** compressed_size = -2 (PageIsTruncated): "truncate the file to block * BLCKSZ" in backups < 2.3.0. */
const PAGE_IS_TRUNCATED = -2;
/** Backups before 2.4.0 padded compressed payloads to MAXALIGN (8 bytes). */
const LEGACY_PAYLOAD_ALIGN = 8;
/** zlib stream header's first byte (CMF 0x78: deflate with a 32 KiB window). */
const ZLIB_MAGIC = 0x78;
/**
 * Stored files are read and pages written 64 pages (512 KiB) per call: a restore is bound by its
 * calls into the file system, and a `-j N` restore still holds only a few MiB of windows.
 */
const READ_WINDOW_BYTES = 64 * BLCKSZ;
const PAGES_PER_WRITE = 64;

/** One chain member's stored copy of a data file. */
export interface DataFileSource {
  backupId: string;
  /** Absolute path of the stored file under the member's `database/`. */
  path: string;
  compressAlg: CompressAlgorithm;
  /** `program-version` as major*10000 + minor*100 + micro. */
  programVersionNum: number;
  /**
   * The member's page_header_map slice for this file, terminator included (2.4.0+); undefined for
   * older members, whose files are scanned record by record.
   */
  loadHeaders: (() => Promise<PageHeaderEntry[]>) | undefined;
  /** The member's stop LSN: in `-I lsn` only members ending by the shift LSN yield to existing pages. */
  stopLsn?: Lsn;
}

export interface RestoreDataFileOptions {
  destinationPath: string;
  /** Path shown in messages (relative to PGDATA). */
  displayPath: string;
  /** `mode & 0o7777` of the destination entry. */
  mode: number;
  /** `n_blocks` of the destination backup's entry: blocks at or past it are not written. */
  nBlocks: number | undefined;
  /**
   * Members holding stored pages, in the order they are applied. With `newestFirst` the newest
   * comes first and a block, once written, is not written again; otherwise FULL first and newer
   * pages overwrite older ones (backups before 2.4.0, whose n_blocks cannot be trusted).
   */
  sources: DataFileSource[];
  newestFirst: boolean;
  signal: AbortSignal | undefined;
  /**
   * Incremental restore into an existing file (which must exist): it is cut to `nBlocks` pages
   * and its valid pages are kept where the request allows. Needs `newestFirst`.
   */
  existing?: ExistingPagesRequest;
}

export interface RestoredDataFile {
  writtenBytes: number;
  pagesWritten: number;
  /** Pages of the existing file left in place (incremental restore). */
  pagesKept: number;
}

/** Which blocks of one file were already restored from a newer member. */
class BlockBitmap {
  private bits = new Uint8Array(0);

  has(blockNo: number): boolean {
    const byte = blockNo >>> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (blockNo & 7))) !== 0;
  }

  add(blockNo: number): void {
    const byte = blockNo >>> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    this.bits[byte]! |= 1 << (blockNo & 7);
  }
}

/** Reads a stored file forward through a window of a few pages, so that each read call serves several records. */
class WindowedReader {
  private window = Buffer.alloc(0);
  private windowStart = 0;
  private atEnd = false;

  constructor(private readonly handle: ReadHandle) {}

  /** Bytes `[position, position + length)`, or fewer when the file ends first. */
  async readAt(position: number, length: number): Promise<Buffer> {
    const offset = position - this.windowStart;
    if (offset >= 0 && offset + length <= this.window.length) {
      return this.window.subarray(offset, offset + length);
    }
    if (offset >= 0 && this.atEnd && offset <= this.window.length) {
      return this.window.subarray(offset, this.window.length);
    }
    const size = Math.max(length, READ_WINDOW_BYTES);
    const buffer = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const read = await this.handle.read(
        buffer.subarray(filled),
        position + filled,
        size - filled,
      );
      if (read === 0) break;
      filled += read;
    }
    this.window = buffer.subarray(0, filled);
    this.windowStart = position;
    this.atEnd = filled < size;
    return this.window.subarray(0, Math.min(length, filled));
  }
}

/**
 * Collects pages of consecutive blocks and writes each run with one call. One run is written
 * while the next is collected (two buffers), so that decompression and the write overlap;
 * `flush` writes what is collected and waits for every write. A failed write is thrown by the
 * next call.
 */
class PageWriter {
  private pending = Buffer.allocUnsafe(PAGES_PER_WRITE * BLCKSZ);
  private spare = Buffer.allocUnsafe(PAGES_PER_WRITE * BLCKSZ);
  private firstBlockNo = 0;
  private pageCount = 0;
  /** The write in flight; it never rejects, its failure is kept for the next call. */
  private inFlight: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;

  constructor(private readonly handle: WriteHandle) {}

  async write(blockNo: number, page: Uint8Array): Promise<void> {
    if (
      this.pageCount > 0 &&
      (blockNo !== this.firstBlockNo + this.pageCount || this.pageCount === PAGES_PER_WRITE)
    ) {
      await this.submit();
    }
    if (this.pageCount === 0) this.firstBlockNo = blockNo;
    this.pending.set(page, this.pageCount * BLCKSZ);
    this.pageCount++;
  }

  async flush(): Promise<void> {
    await this.submit();
    await this.settled();
    this.throwIfFailed();
  }

  /** Waits for the write in flight, whatever its outcome (before the handle is closed). */
  async settled(): Promise<void> {
    const writing = this.inFlight;
    this.inFlight = undefined;
    await writing;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  /** Starts writing the collected run once the previous write is done. */
  private async submit(): Promise<void> {
    if (this.pageCount === 0) return;
    await this.settled();
    this.throwIfFailed();
    const run = this.pending.subarray(0, this.pageCount * BLCKSZ);
    this.inFlight = this.handle.write(run, this.firstBlockNo * BLCKSZ).catch((error: unknown) => {
      this.failure = { error };
    });
    [this.pending, this.spare] = [this.spare, this.pending];
    this.pageCount = 0;
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StrataError('interrupted', 'Interrupted during data file restore');
}

/**
 * pg_probackup ≤ 2.0.22 could store a compressed page whose compressed size happened to be BLCKSZ
 * as if raw (data.c page_may_be_compressed): such a page fails the header checks and, for zlib,
 * starts with the zlib magic byte.
 */
function rawPageMayBeCompressed(page: Buffer, source: DataFileSource): boolean {
  if (source.programVersionNum >= FIRST_VERSION_WITHOUT_RAW_SIZE_BUG) return false;
  if (source.compressAlg === 'none') return false;
  if (pageHeaderProblem(page) === null) return false;
  return source.compressAlg !== 'zlib' || page[0] === ZLIB_MAGIC;
}

function decompressPage(payload: Buffer, source: DataFileSource, blockNo: number): Buffer {
  const decompressed = tryDecompressPage(payload, source.compressAlg);
  if ('page' in decompressed) return decompressed.page;
  throw new StrataError(
    'corrupt',
    `Cannot decompress block ${blockNo} of backup file "${source.path}" (backup ${source.backupId}): ` +
      `${decompressed.detail}. The backup is corrupt; validate it`,
  );
}

function pageFromPayload(payload: Buffer, source: DataFileSource, blockNo: number): Buffer {
  if (payload.length === BLCKSZ && !rawPageMayBeCompressed(payload, source)) return payload;
  return decompressPage(payload, source, blockNo);
}

interface ApplyState {
  writer: PageWriter;
  handle: WriteHandle;
  nBlocks: number | undefined;
  bitmap: BlockBitmap | undefined;
  signal: AbortSignal | undefined;
  existing: ExistingPages | undefined;
  writtenBytes: number;
  pagesKept: number;
}

/** Marks a block whose existing page stays, so no member writes it; true when it was marked. */
function keepExisting(
  state: ApplyState,
  blockNo: number,
  header: PageHeaderEntry | undefined,
  source: DataFileSource,
): boolean {
  if (state.existing === undefined || state.bitmap === undefined || state.bitmap.has(blockNo)) {
    return false;
  }
  if (!keepsExistingPage(state.existing, blockNo, header, source.stopLsn)) return false;
  state.bitmap.add(blockNo);
  state.pagesKept++;
  return true;
}

async function writePage(state: ApplyState, blockNo: number, page: Buffer): Promise<void> {
  await state.writer.write(blockNo, page);
  state.bitmap?.add(blockNo);
  state.writtenBytes += BLCKSZ;
}

/** Applies a 2.4.0+ stored file, locating each record through its page_header_map entries. */
async function applyWithHeaders(
  state: ApplyState,
  source: DataFileSource,
  reader: WindowedReader,
  headers: PageHeaderEntry[],
): Promise<void> {
  for (let index = 0; index + 1 < headers.length; index++) {
    throwIfAborted(state.signal);
    const header = headers[index]!;
    const blockNo = header.block;
    // Records are in increasing block order, so nothing after the first block past n_blocks is needed.
    if (state.nBlocks !== undefined && state.nBlocks > 0 && blockNo >= state.nBlocks) break;
    if (keepExisting(state, blockNo, header, source) || state.bitmap?.has(blockNo)) continue;
    const payloadLength = headers[index + 1]!.pos - header.pos - RECORD_HEADER_BYTES;
    if (payloadLength <= 0 || payloadLength > BLCKSZ) {
      throw new StrataError(
        'corrupt',
        `Invalid page record size ${payloadLength} for block ${blockNo} in the page header map of ` +
          `"${source.path}" (backup ${source.backupId}). The backup is corrupt; validate it`,
      );
    }
    const record = await reader.readAt(header.pos, RECORD_HEADER_BYTES + payloadLength);
    if (record.length !== RECORD_HEADER_BYTES + payloadLength) {
      throw new StrataError(
        'corrupt',
        `Cannot read block ${blockNo} of backup file "${source.path}" (backup ${source.backupId}): ` +
          'the file is shorter than its page header map says. The backup is corrupt; validate it',
      );
    }
    const payload = record.subarray(RECORD_HEADER_BYTES);
    await writePage(state, blockNo, pageFromPayload(payload, source, blockNo));
  }
}

/**
 * Applies a stored file without page_header_map entries by reading its records in sequence: an
 * 8-byte header, then the payload (padded to 8 bytes before 2.4.0); `-2` marks a truncation.
 */
async function applyBySequentialScan(
  state: ApplyState,
  source: DataFileSource,
  reader: WindowedReader,
): Promise<void> {
  let position = 0;
  for (;;) {
    throwIfAborted(state.signal);
    const header = await reader.readAt(position, RECORD_HEADER_BYTES);
    if (header.length === 0) return;
    if (header.length < RECORD_HEADER_BYTES) {
      throw new StrataError(
        'corrupt',
        `Odd size page found at offset ${position} of "${source.path}" (backup ${source.backupId})`,
      );
    }
    const blockNo = header.readUInt32LE(0);
    const compressedSize = header.readInt32LE(4);
    position += RECORD_HEADER_BYTES;
    if (blockNo === 0 && compressedSize === 0) {
      throw new StrataError(
        'corrupt',
        `Empty block in file "${source.path}" (backup ${source.backupId})`,
      );
    }
    if (compressedSize === PAGE_IS_TRUNCATED) {
      await state.writer.flush();
      await state.handle.truncate(blockNo * BLCKSZ);
      return;
    }
    if (compressedSize <= 0 || compressedSize > BLCKSZ) {
      throw new StrataError(
        'corrupt',
        `Size of block ${blockNo} exceeds BLCKSZ: ${compressedSize} in "${source.path}" ` +
          `(backup ${source.backupId}). The backup is corrupt; validate it`,
      );
    }
    if (state.nBlocks !== undefined && state.nBlocks > 0 && blockNo >= state.nBlocks) return;
    const storedLength =
      source.programVersionNum >= FIRST_VERSION_WITH_HEADER_MAP
        ? compressedSize
        : Math.ceil(compressedSize / LEGACY_PAYLOAD_ALIGN) * LEGACY_PAYLOAD_ALIGN;
    if (keepExisting(state, blockNo, undefined, source) || state.bitmap?.has(blockNo)) {
      position += storedLength;
      continue;
    }
    const stored = await reader.readAt(position, storedLength);
    if (stored.length < compressedSize) {
      throw new StrataError(
        'corrupt',
        `Cannot read block ${blockNo} of backup file "${source.path}" (backup ${source.backupId}): ` +
          'unexpected end of file. The backup is corrupt; validate it',
      );
    }
    position += storedLength;
    await writePage(
      state,
      blockNo,
      pageFromPayload(stored.subarray(0, compressedSize), source, blockNo),
    );
  }
}

/**
 * Rebuilds one data file (relation main-fork segment) from the page records of the chain members
 * that stored it (catalog-format.md §15.2) and returns the bytes written. Reads and writes go
 * through a window of a few pages: a file is never held in memory.
 */
export async function restoreDataFile(
  storage: Storage,
  options: RestoreDataFileOptions,
): Promise<number> {
  return (await restoreDataFilePages(storage, options)).writtenBytes;
}

/** restoreDataFile with the page counts, for incremental restore's report. */
export async function restoreDataFilePages(
  storage: Storage,
  options: RestoreDataFileOptions,
): Promise<RestoredDataFile> {
  if (options.existing !== undefined && !options.newestFirst) {
    throw new StrataError(
      'internal',
      `Incremental restore of "${options.displayPath}" needs the newest-first block bitmap`,
    );
  }
  const handle = await storage.openWrite(options.destinationPath, {
    truncate: options.existing === undefined,
    mode: options.mode,
  });
  const state: ApplyState = {
    writer: new PageWriter(handle),
    handle,
    nBlocks: options.nBlocks,
    bitmap: options.newestFirst ? new BlockBitmap() : undefined,
    signal: options.signal,
    existing: undefined,
    writtenBytes: 0,
    pagesKept: 0,
  };
  try {
    if (options.existing !== undefined && options.nBlocks !== undefined && options.nBlocks > 0) {
      await handle.truncate(options.nBlocks * BLCKSZ);
      state.existing = await readExistingPages(
        storage,
        options.destinationPath,
        options.nBlocks,
        options.existing,
        options.signal,
      );
    }
    for (const source of options.sources) {
      await loadPageCodec(source.compressAlg);
      const headers = source.loadHeaders ? await source.loadHeaders() : undefined;
      const input = await storage.openRead(source.path).catch((error: unknown) => {
        throw new StrataError(
          'io',
          `Cannot open backup file "${source.path}" (backup ${source.backupId}): ${errorText(error)}`,
          { cause: error },
        );
      });
      try {
        const reader = new WindowedReader(input);
        if (headers) await applyWithHeaders(state, source, reader, headers);
        else await applyBySequentialScan(state, source, reader);
        await state.writer.flush();
      } finally {
        await input.close();
      }
    }
    if (options.nBlocks !== undefined) await handle.truncate(options.nBlocks * BLCKSZ);
  } finally {
    await state.writer.settled();
    await handle.close();
  }
  await storage.chmod(options.destinationPath, options.mode);
  return {
    writtenBytes: state.writtenBytes,
    pagesWritten: state.writtenBytes / BLCKSZ,
    pagesKept: state.pagesKept,
  };
}
