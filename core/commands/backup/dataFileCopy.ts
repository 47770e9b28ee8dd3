import { deflateSync } from 'node:zlib';
import type { CompressAlgorithm, PageHeaderEntry } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import { crc32cFinal, crc32cInit, crc32cUpdate } from '../../format/crc32c.js';
import type { Lsn } from '../../format/lsn.js';
import { BLCKSZ, RELSEG_SIZE, checkDataPage, pgChecksumPage } from '../../format/page.js';
import { pglzCompress } from '../../format/pglz.js';
import type { ReadHandle, Storage, WriteHandle } from '../../storage/storage.js';
import type { PageHeaderMapWriter } from './pageHeaderMapWriter.js';

/** A torn read under concurrent writes looks invalid; pg_probackup re-reads up to 300 times (§7.3.2). */
const PAGE_READ_ATTEMPTS = 300;
const PAGES_PER_READ = 64;
const RECORD_HEADER_BYTES = 8;

export interface DataFileCopyOptions {
  storage: Storage;
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
  headerMap: PageHeaderMapWriter;
  sync: boolean;
}

export interface DataFileCopyResult {
  /** Bytes written into the backup file (0 when no page was stored). */
  writeSizeBytes: number;
  crc: number;
  nBlocks: number;
  storedPages: number;
  header: { hdrOff: bigint; hdrSize: number; hdrCrc: number } | undefined;
}

function compressPage(page: Buffer, algorithm: CompressAlgorithm, level: number): Buffer | undefined {
  if (algorithm === 'zlib') {
    const compressed = deflateSync(page, { level });
    return compressed.length < BLCKSZ ? compressed : undefined;
  }
  if (algorithm === 'pglz') {
    const compressed = pglzCompress(page);
    return compressed && compressed.length < BLCKSZ ? compressed : undefined;
  }
  return undefined;
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
  throw new StrataError('corrupt', `Corruption detected in file "${displayPath}", block ${blockNo}: ${detail}`);
}

/**
 * Copies one relation segment page by page into the backup's format (catalog-format §7.3.5):
 * each stored page is an 8-byte record header and the page, compressed when that helps. Every
 * page read is checked (header, checksum); the per-page headers go to page_header_map.
 */
export async function copyDataFile(options: DataFileCopyOptions): Promise<DataFileCopyResult> {
  const { storage } = options;
  const source = await storage.openRead(options.sourcePath);
  let destination: WriteHandle | undefined;
  let crc = crc32cInit;
  let written = 0;
  let blockNo = 0;
  const headers: PageHeaderEntry[] = [];
  const chunk = Buffer.alloc(PAGES_PER_READ * BLCKSZ);
  const pending: Buffer[] = [];
  let pendingBytes = 0;

  const flush = async () => {
    if (pendingBytes === 0) return;
    destination ??= await storage.openWrite(options.destinationPath, { mode: 0o600, truncate: true });
    const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    await destination.write(data);
    pending.length = 0;
    pendingBytes = 0;
  };

  try {
    for (;;) {
      const bytesRead = await source.read(chunk, blockNo * BLCKSZ, chunk.length);
      const pages = Math.floor(bytesRead / BLCKSZ);
      if (pages === 0) break;
      for (let i = 0; i < pages; i++, blockNo++) {
        let page: Buffer | undefined = chunk.subarray(i * BLCKSZ, (i + 1) * BLCKSZ);
        const absoluteBlockNo = options.segno * RELSEG_SIZE + blockNo;
        let check = checkDataPage(page, absoluteBlockNo, options.checksumsEnabled && !options.skipBlockValidation);
        if (!check.ok && !options.skipBlockValidation) {
          page = await rereadUntilValid(source, blockNo, absoluteBlockNo, options.checksumsEnabled, options.displayPath);
          if (!page) break;
          check = checkDataPage(page, absoluteBlockNo, options.checksumsEnabled);
        }
        const verifiedChecksum = check.ok && options.checksumsEnabled && !options.skipBlockValidation;
        const pageLsn = check.ok ? check.lsn : (BigInt(page.readUInt32LE(0)) << 32n) | BigInt(page.readUInt32LE(4));
        const isZero = check.ok && check.isZero;
        if (options.keepPagesFromLsn !== undefined && !isZero && pageLsn < options.keepPagesFromLsn) continue;
        const payload = compressPage(page, options.compressAlgorithm, options.compressLevel) ?? Buffer.from(page);
        const recordHeader = Buffer.alloc(RECORD_HEADER_BYTES);
        recordHeader.writeUInt32LE(blockNo, 0);
        recordHeader.writeInt32LE(payload.length, 4);
        headers.push({
          lsn: isZero ? 0n : pageLsn,
          block: blockNo,
          pos: written,
          // A page that passed the checksum check carries the right value in pd_checksum already.
          checksum: isZero ? 0 : verifiedChecksum ? page.readUInt16LE(8) : pgChecksumPage(page, absoluteBlockNo),
        });
        crc = crc32cUpdate(crc32cUpdate(crc, recordHeader), payload);
        pending.push(recordHeader, payload);
        pendingBytes += RECORD_HEADER_BYTES + payload.length;
        written += RECORD_HEADER_BYTES + payload.length;
        if (pendingBytes >= 1 << 20) await flush();
      }
      if (pages < PAGES_PER_READ) break;
    }
    await flush();
    if (destination && options.sync) await destination.sync();
  } finally {
    await source.close();
    await destination?.close();
  }
  const header = headers.length > 0 ? await options.headerMap.append(headers, written) : undefined;
  return { writeSizeBytes: written, crc: crc32cFinal(crc), nBlocks: blockNo, storedPages: headers.length, header };
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
  const destination = await storage.openWrite(destinationPath, { mode: mode & 0o7777, truncate: true });
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
