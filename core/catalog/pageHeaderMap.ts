import { deflateSync, inflateSync } from 'node:zlib';
import { StrataError, errorText } from '../errors.js';
import { crc32c } from '../format/crc32c.js';
import type { Storage } from '../storage/storage.js';
import { storageErrorCode } from '../storage/storage.js';
import type { FileEntry, PageHeaderEntry } from './types.js';

/**
 * `page_header_map` slices (spec/catalog-format.md §8): per data file, an array of pg_probackup's
 * BackupPageHeader2 — one per stored page plus a terminator whose `pos` is the data file's
 * length — compressed with zlib level 1. `hdr_crc` is CRC32C of the uncompressed array.
 */

/**
 * sizeof(BackupPageHeader2) on 64-bit builds: lsn (uint64) at 0, block (int32) at 8, pos (int32)
 * at 12, checksum (uint16) at 16, then 6 bytes of struct padding.
 */
export const PAGE_HEADER_ENTRY_BYTES = 24;
/** BLCKSZ: a stored page record's payload is at most one uncompressed page. */
const BLOCK_SIZE_BYTES = 8192;
/** Each page record in the data file starts with `block` and `compressed_size` (2 × int32). */
const PAGE_RECORD_HEADER_BYTES = 8;
/** pg_probackup compresses header slices with zlib level 1. */
const HEADER_ZLIB_LEVEL = 1;

/** The uncompressed slice: little-endian entries, zero padding. */
export function packPageHeaders(entries: readonly PageHeaderEntry[]): Buffer {
  const raw = Buffer.alloc(entries.length * PAGE_HEADER_ENTRY_BYTES);
  entries.forEach((entry, index) => {
    const at = index * PAGE_HEADER_ENTRY_BYTES;
    raw.writeBigUInt64LE(entry.lsn, at);
    raw.writeInt32LE(entry.block, at + 8);
    raw.writeInt32LE(entry.pos, at + 12);
    raw.writeUInt16LE(entry.checksum, at + 16);
  });
  return raw;
}

export function unpackPageHeaders(raw: Uint8Array): PageHeaderEntry[] {
  const view = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const entries: PageHeaderEntry[] = [];
  for (let at = 0; at + PAGE_HEADER_ENTRY_BYTES <= view.length; at += PAGE_HEADER_ENTRY_BYTES) {
    entries.push({
      lsn: view.readBigUInt64LE(at),
      block: view.readInt32LE(at + 8),
      pos: view.readInt32LE(at + 12),
      checksum: view.readUInt16LE(at + 16),
    });
  }
  return entries;
}

/** Compresses a slice (entries including the terminator); `hdrCrc` goes into the file list. */
export function encodePageHeaderSlice(entries: readonly PageHeaderEntry[]): {
  bytes: Buffer;
  hdrCrc: number;
} {
  const raw = packPageHeaders(entries);
  return { bytes: deflateSync(raw, { level: HEADER_ZLIB_LEVEL }), hdrCrc: crc32c(raw) };
}

/**
 * Inflates a slice of `nHeaders` pages (+ terminator) and checks its length and `hdr_crc` over the
 * raw bytes as read (padding included). Any mismatch is StrataError('corrupt') naming `where`.
 */
export function decodePageHeaderSlice(
  compressed: Uint8Array,
  nHeaders: number,
  hdrCrc: number,
  where: string,
): PageHeaderEntry[] {
  const expectedBytes = (nHeaders + 1) * PAGE_HEADER_ENTRY_BYTES;
  let raw: Buffer;
  try {
    raw = inflateSync(compressed, { maxOutputLength: expectedBytes + 1 });
  } catch (error) {
    const detail =
      storageErrorCode(error) === 'ERR_BUFFER_TOO_LARGE'
        ? `they inflate to more than the expected ${expectedBytes} bytes`
        : errorText(error);
    throw new StrataError('corrupt', `Cannot decompress page headers of ${where}: ${detail}`, {
      cause: error,
    });
  }
  if (raw.length !== expectedBytes) {
    throw new StrataError(
      'corrupt',
      `Page headers of ${where} have ${raw.length} bytes after decompression, expected ${expectedBytes}`,
    );
  }
  const actualCrc = crc32c(raw);
  if (actualCrc !== hdrCrc) {
    throw new StrataError(
      'corrupt',
      `Page header map CRC mismatch for ${where}: current ${actualCrc}, expected ${hdrCrc}`,
    );
  }
  return unpackPageHeaders(raw);
}

/**
 * Reads and decodes the slice of one data file from `mapPath` at `[hdr_off, hdr_off + hdr_size)`.
 * A file without page headers (`n_headers` absent or 0) has none: [].
 */
export async function readPageHeaderSlice(
  storage: Storage,
  mapPath: string,
  entry: FileEntry,
): Promise<PageHeaderEntry[]> {
  if (!entry.nHeaders || entry.nHeaders <= 0) return [];
  const where = `file "${entry.path}" in "${mapPath}"`;
  if (
    entry.hdrOff === undefined ||
    entry.hdrSize === undefined ||
    entry.hdrCrc === undefined ||
    entry.hdrSize <= 0
  ) {
    throw new StrataError(
      'corrupt',
      `File list entry of "${entry.path}" has n_headers but no hdr_off/hdr_size/hdr_crc`,
    );
  }
  const compressed = Buffer.alloc(entry.hdrSize);
  const handle = await storage.openRead(mapPath);
  let bytesRead: number;
  try {
    bytesRead = await handle.read(compressed, Number(entry.hdrOff), entry.hdrSize);
  } finally {
    await handle.close();
  }
  if (bytesRead !== entry.hdrSize) {
    throw new StrataError(
      'corrupt',
      `Cannot read page headers of ${where} at offset ${entry.hdrOff}: got ${bytesRead} of ${entry.hdrSize} bytes`,
    );
  }
  return decodePageHeaderSlice(compressed, entry.nHeaders, entry.hdrCrc, where);
}

/**
 * Checks that a decoded slice (terminator included) describes a data file of `dataFileSizeBytes`:
 * positions start at 0 and increase, blocks increase, each payload is 1…8192 bytes, and the
 * terminator's `pos` is the file length.
 */
export function verifyPageHeaderChain(
  entries: readonly PageHeaderEntry[],
  dataFileSizeBytes: number,
  where: string,
): void {
  const fail = (detail: string): never => {
    throw new StrataError(
      'corrupt',
      `Page headers of ${where} do not match the data file: ${detail}`,
    );
  };
  if (entries.length < 2) fail('no page entries');
  if (entries[0]!.pos !== 0) fail(`first page record at ${entries[0]!.pos}, expected 0`);
  for (let i = 0; i + 1 < entries.length; i++) {
    const current = entries[i]!;
    const next = entries[i + 1]!;
    const payloadBytes = next.pos - current.pos - PAGE_RECORD_HEADER_BYTES;
    if (payloadBytes < 1 || payloadBytes > BLOCK_SIZE_BYTES) {
      fail(
        `record of block ${current.block} at ${current.pos} has a payload of ${payloadBytes} bytes`,
      );
    }
    if (i + 2 < entries.length && next.block <= current.block) {
      fail(`block ${next.block} follows block ${current.block}`);
    }
  }
  const terminator = entries[entries.length - 1]!;
  if (terminator.pos !== dataFileSizeBytes) {
    fail(`records end at ${terminator.pos}, the file has ${dataFileSizeBytes} bytes`);
  }
}
