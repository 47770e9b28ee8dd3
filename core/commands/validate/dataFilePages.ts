import type { CompressAlgorithm, PageHeaderEntry } from '../../catalog/types.js';
import { loadPageCodec, tryDecompressPage } from '../../format/compression.js';
import { formatLsn } from '../../format/lsn.js';
import type { Lsn } from '../../format/lsn.js';
import { BLCKSZ, RELSEG_SIZE, checkDataPage, pageHeaderProblem } from '../../format/page.js';
import {
  FIRST_VERSION_WITH_HEADER_MAP,
  FIRST_VERSION_WITHOUT_RAW_SIZE_BUG,
} from './programVersion.js';
import type { SequentialCrcReader } from './sequentialReader.js';

/** Each page record of a backup data file starts with `block` (uint32) and `compressed_size` (int32). */
const RECORD_HEADER_BYTES = 8;
/** PageIsTruncated: a header-only record of backups before 2.3.0 marking where the relation ended. */
const PAGE_IS_TRUNCATED = -2;
/** The first byte of a zlib stream (CMF 0x78: deflate, 32 KiB window). */
const ZLIB_MAGIC = 0x78;
/** MAXALIGN: before 2.4.0, compressed payloads were padded to 8 bytes. */
const PAYLOAD_ALIGN_BYTES = 8;

export interface DataFileCheck {
  /** Path of the stored file, for messages. */
  fullPath: string;
  /** Path relative to PGDATA, for the "page is from future" warning as pg_probackup words it. */
  relPath: string;
  segno: number;
  compressAlg: CompressAlgorithm;
  /** Backup's checksum-version: with 1, pd_checksum must match the computed checksum. */
  checksumVersion: number;
  stopLsn: Lsn;
  programVersionNum: number;
  /** The file's page_header_map slice, terminator included; undefined for files without one. */
  headers: readonly PageHeaderEntry[] | undefined;
  /** The expected file length (the list's `size`), which the map's terminator must point at. */
  sizeBytes: number;
}

export interface DataFileReport {
  problems: string[];
  /** Conditions pg_probackup only warns about (a page newer than stop-lsn). */
  warnings: string[];
}

function corruption(check: DataFileCheck, blockNo: number, detail: string): string {
  return `Corruption detected in file "${check.fullPath}", block ${blockNo}: ${detail}`;
}

/**
 * pg_probackup's `page_may_be_compressed`: before 2.0.23 a compressed page of exactly BLCKSZ bytes
 * was stored with size BLCKSZ, so a "raw" page with an insane header may really be compressed.
 */
function pageMayBeCompressed(page: Uint8Array, check: DataFileCheck): boolean {
  if (pageHeaderProblem(page) === null) return false;
  if (check.programVersionNum >= FIRST_VERSION_WITHOUT_RAW_SIZE_BUG) return false;
  return !(check.compressAlg === 'zlib' && page[0] !== ZLIB_MAGIC);
}

/** Checks one stored page: decompression, header sanity, checksum, map checksum, LSN ≤ stop-lsn. */
function checkStoredPage(
  check: DataFileCheck,
  blockNo: number,
  payload: Uint8Array,
  mapEntry: PageHeaderEntry | undefined,
  report: DataFileReport,
): void {
  let page: Uint8Array = payload;
  if (payload.length !== BLCKSZ || pageMayBeCompressed(payload, check)) {
    const decompressed = tryDecompressPage(payload, check.compressAlg);
    if ('detail' in decompressed) {
      report.problems.push(corruption(check, blockNo, decompressed.detail));
      return;
    }
    page = decompressed.page;
  }
  const checksumsEnabled = check.checksumVersion !== 0;
  const result = checkDataPage(page, check.segno * RELSEG_SIZE + blockNo, checksumsEnabled);
  if (!result.ok) {
    report.problems.push(corruption(check, blockNo, result.detail));
    return;
  }
  if (result.isZero) return;
  if (checksumsEnabled && mapEntry !== undefined && mapEntry.checksum !== result.checksum) {
    report.problems.push(
      corruption(
        check,
        blockNo,
        `page_header_map holds checksum ${mapEntry.checksum}, the stored page has checksum ${result.checksum}`,
      ),
    );
  }
  if (check.stopLsn > 0n && result.lsn > check.stopLsn) {
    report.warnings.push(
      `File: ${check.relPath}, block ${blockNo}, checksum is ${checksumsEnabled ? 'correct' : 'not enabled'}. ` +
        `Page is from future: pageLSN ${formatLsn(result.lsn)} stopLSN ${formatLsn(check.stopLsn)}`,
    );
  }
}

/** A 2.4.0+ data file: records located through its page_header_map slice. */
async function checkPagesByMap(
  check: DataFileCheck,
  headers: readonly PageHeaderEntry[],
  reader: SequentialCrcReader,
  report: DataFileReport,
): Promise<void> {
  const terminator = headers[headers.length - 1];
  if (terminator !== undefined && terminator.pos !== check.sizeBytes) {
    report.problems.push(
      `Page headers of backup file "${check.fullPath}" end at offset ${terminator.pos}, the file list says it has ${check.sizeBytes} bytes`,
    );
  }
  let lastEnd = 0;
  for (let i = 0; i + 1 < headers.length; i++) {
    const entry = headers[i]!;
    const payloadBytes = headers[i + 1]!.pos - entry.pos - RECORD_HEADER_BYTES;
    if (entry.pos < lastEnd || payloadBytes < 1 || payloadBytes > BLCKSZ) {
      report.problems.push(
        corruption(
          check,
          entry.block,
          `page_header_map places the record at offset ${entry.pos} with a payload of ${payloadBytes} bytes`,
        ),
      );
      return;
    }
    const record = await reader.bytesAt(entry.pos, RECORD_HEADER_BYTES + payloadBytes);
    if (record.length < RECORD_HEADER_BYTES + payloadBytes) {
      report.problems.push(
        `Cannot read block ${entry.block} file "${check.fullPath}": the file ends at the record`,
      );
      return;
    }
    lastEnd = entry.pos + RECORD_HEADER_BYTES + payloadBytes;
    const storedBlock = record.readUInt32LE(0);
    const storedSize = record.readInt32LE(4);
    if (storedBlock !== entry.block || storedSize !== payloadBytes) {
      report.problems.push(
        corruption(
          check,
          entry.block,
          `the record at offset ${entry.pos} is for block ${storedBlock} with ${storedSize} bytes, ` +
            `page_header_map expects block ${entry.block} with ${payloadBytes} bytes`,
        ),
      );
      continue;
    }
    checkStoredPage(check, entry.block, record.subarray(RECORD_HEADER_BYTES), entry, report);
  }
}

/** A data file without a map (before 2.4.0): records read one after the other from their own headers. */
async function checkPagesSequentially(
  check: DataFileCheck,
  reader: SequentialCrcReader,
  report: DataFileReport,
): Promise<void> {
  const padded = check.programVersionNum < FIRST_VERSION_WITH_HEADER_MAP;
  let position = 0;
  for (;;) {
    const header = await reader.bytesAt(position, RECORD_HEADER_BYTES);
    if (header.length === 0) return;
    if (header.length < RECORD_HEADER_BYTES) {
      report.problems.push(`Odd size page found at offset ${position} of "${check.fullPath}"`);
      return;
    }
    const blockNo = header.readUInt32LE(0);
    const compressedSize = header.readInt32LE(4);
    position += RECORD_HEADER_BYTES;
    if (compressedSize === PAGE_IS_TRUNCATED) continue;
    if (compressedSize <= 0 || compressedSize > BLCKSZ) {
      report.problems.push(
        corruption(
          check,
          blockNo,
          `the record at offset ${position - RECORD_HEADER_BYTES} has size ${compressedSize}`,
        ),
      );
      return;
    }
    const storedBytes = padded
      ? Math.ceil(compressedSize / PAYLOAD_ALIGN_BYTES) * PAYLOAD_ALIGN_BYTES
      : compressedSize;
    const payload = await reader.bytesAt(position, storedBytes);
    if (payload.length < storedBytes) {
      report.problems.push(
        `Cannot read block ${blockNo} file "${check.fullPath}": the file ends inside the record`,
      );
      return;
    }
    position += storedBytes;
    checkStoredPage(check, blockNo, payload.subarray(0, compressedSize), undefined, report);
  }
}

/**
 * Validates a backup data file page by page (cli-behaviour.md §7.1 step 6) while computing its
 * whole-file CRC in the same pass. Returns the CRC; problems and warnings are added to `report`.
 */
export async function checkDataFilePages(
  check: DataFileCheck,
  reader: SequentialCrcReader,
  report: DataFileReport,
): Promise<number> {
  await loadPageCodec(check.compressAlg);
  if (check.headers !== undefined) await checkPagesByMap(check, check.headers, reader, report);
  else await checkPagesSequentially(check, reader, report);
  return (await reader.finish()).crc;
}
