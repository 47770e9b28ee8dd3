/**
 * PostgreSQL data pages (heap, index and every other main-fork page): the PageHeaderData of
 * src/include/storage/bufpage.h, pg_probackup's header sanity checks and PostgreSQL's data page
 * checksum (src/include/storage/checksum_impl.h).
 */
import { StrataError } from '../errors.js';
import type { Lsn } from './lsn.js';

/** Page size PostgreSQL and pg_probackup 2.5 are built with (BLCKSZ). */
export const BLCKSZ = 8192;

/** Blocks per relation segment file (RELSEG_SIZE): 1 GiB segments of 8 KiB pages. */
export const RELSEG_SIZE = 131072;

/** SizeOfPageHeaderData: pd_lower can never point inside the header. */
export const PAGE_HEADER_SIZE_BYTES = 24;

/** PD_VALID_FLAG_BITS: PD_HAS_FREE_LINES | PD_PAGE_FULL | PD_ALL_VISIBLE. */
const PD_VALID_FLAG_BITS = 0x0007;

/** MAXIMUM_ALIGNOF on every platform PostgreSQL and pg_probackup run on. */
const MAXIMUM_ALIGNOF = 8;

/** PageHeaderData, little-endian as written by the x86-64 / ARM64 servers Strata backs up. */
export interface PageHeader {
  /** pd_lsn: {xlogid, xrecoff} combined as xlogid << 32 | xrecoff. */
  lsn: Lsn;
  /** pd_checksum. */
  checksum: number;
  /** pd_flags. */
  flags: number;
  /** pd_lower: start of free space. */
  lower: number;
  /** pd_upper: end of free space. */
  upper: number;
  /** pd_special: start of the special space (BLCKSZ for heap pages). */
  special: number;
  /** High byte of pd_pagesize_version. */
  pageSize: number;
  /** Low byte of pd_pagesize_version. */
  layoutVersion: number;
  /** pd_prune_xid. */
  pruneXid: number;
}

export type DataPageCheck =
  | {
      ok: true;
      lsn: Lsn;
      isZero: boolean;
      /**
       * pgChecksumPage for the absolute block number, computed whether or not the cluster has data
       * checksums (pg_probackup stores it in page_header_map either way); 0 for a zero page.
       */
      checksum: number;
    }
  | { ok: false; detail: string };

const hostIsLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function assertPageSize(page: Uint8Array): void {
  if (page.length !== BLCKSZ) {
    throw new StrataError('internal', `A data page must be ${BLCKSZ} bytes, got ${page.length}`);
  }
}

function readUint16(page: Uint8Array, offset: number): number {
  return page[offset]! | (page[offset + 1]! << 8);
}

function readUint32(page: Uint8Array, offset: number): number {
  return (
    (page[offset]! |
      (page[offset + 1]! << 8) |
      (page[offset + 2]! << 16) |
      (page[offset + 3]! << 24)) >>>
    0
  );
}

export function parsePageHeader(page: Uint8Array): PageHeader {
  if (page.length < PAGE_HEADER_SIZE_BYTES) {
    throw new StrataError(
      'internal',
      `A page header needs ${PAGE_HEADER_SIZE_BYTES} bytes, got ${page.length}`,
    );
  }
  const pageSizeVersion = readUint16(page, 18);
  return {
    lsn: (BigInt(readUint32(page, 0)) << 32n) | BigInt(readUint32(page, 4)),
    checksum: readUint16(page, 8),
    flags: readUint16(page, 10),
    lower: readUint16(page, 12),
    upper: readUint16(page, 14),
    special: readUint16(page, 16),
    pageSize: pageSizeVersion & 0xff00,
    layoutVersion: pageSizeVersion & 0x00ff,
    pruneXid: readUint32(page, 20),
  };
}

export function isZeroPage(page: Uint8Array): boolean {
  if ((page.byteOffset & 3) === 0 && (page.length & 3) === 0) {
    const words = new Int32Array(page.buffer, page.byteOffset, page.length >>> 2);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < page.length; i++) if (page[i] !== 0) return false;
  return true;
}

/**
 * pg_probackup's parse_page() checks, in the order and wording of its get_header_errormsg(): null
 * when the header is sane, else the detail text of "Corruption detected in file ..., block N:
 * <detail>". The page layout version is deliberately not checked (pg_probackup does not either).
 */
export function pageHeaderProblem(page: Uint8Array): string | null {
  const header = parsePageHeader(page);
  const { lower, upper, special } = header;
  const maxAlignedSpecial = Math.ceil(special / MAXIMUM_ALIGNOF) * MAXIMUM_ALIGNOF;
  if (header.pageSize !== BLCKSZ) {
    return `page header invalid, page size ${header.pageSize} is not equal to block size ${BLCKSZ}`;
  }
  if (lower < PAGE_HEADER_SIZE_BYTES) {
    return `page header invalid, pd_lower ${lower} is less than page header size ${PAGE_HEADER_SIZE_BYTES}`;
  }
  if (lower > upper)
    return `page header invalid, pd_lower ${lower} is greater than pd_upper ${upper}`;
  if (upper > special)
    return `page header invalid, pd_upper ${upper} is greater than pd_special ${special}`;
  if (special > BLCKSZ)
    return `page header invalid, pd_special ${special} is greater than block size ${BLCKSZ}`;
  if (special !== maxAlignedSpecial) {
    return `page header invalid, pd_special ${special} is misaligned, expected ${maxAlignedSpecial}`;
  }
  if ((header.flags & ~PD_VALID_FLAG_BITS) !== 0)
    return 'page header invalid, pd_flags mask contain illegal bits';
  return null;
}

/** N_SUMS: the checksum runs 32 FNV-1a-like hashes in parallel over interleaved 32-bit words. */
const N_SUMS = 32;
const FNV_PRIME = 16777619;
const WORDS_PER_PAGE = BLCKSZ / 4;

/** checksumBaseOffsets of checksum_impl.h: the distinct initial state of each parallel hash. */
// prettier-ignore
const checksumBaseOffsets = Int32Array.of(
  0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a,
  0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c,
  0xf8d4474f, 0xe39eb970, 0x42c6ae16, 0x993216fa,
  0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb,
  0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de,
  0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4,
  0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e,
  0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
);

const wordScratch = new Int32Array(WORDS_PER_PAGE);
const wordScratchBytes = new Uint8Array(wordScratch.buffer);

/** The page as 2048 little-endian 32-bit words, without copying when the buffer allows it. */
function pageWords(page: Uint8Array): Int32Array {
  if (!hostIsLittleEndian) {
    for (let i = 0; i < WORDS_PER_PAGE; i++) {
      const o = i * 4;
      wordScratch[i] = page[o]! | (page[o + 1]! << 8) | (page[o + 2]! << 16) | (page[o + 3]! << 24);
    }
    return wordScratch;
  }
  if ((page.byteOffset & 3) === 0)
    return new Int32Array(page.buffer, page.byteOffset, WORDS_PER_PAGE);
  wordScratchBytes.set(page);
  return wordScratch;
}

/**
 * PostgreSQL's pg_checksum_page(): the block checksum over the page with pd_checksum read as zero
 * (the low half of word 2 on a little-endian page), XORed with the block number, reduced to
 * 1..65535 so that a checksummed page never carries checksum 0. `blockNo` is the absolute block
 * number within the relation fork (segno * RELSEG_SIZE + block in the segment file).
 *
 * Hash j only ever sees words j, j + 32, j + 64, ... (the page read as uint32[64][32]), so each of
 * the 32 hashes is computed to the end in turn with its state in a local: the same result as
 * PostgreSQL's row-by-row loop, without a load and a store of the state per word.
 */
export function pgChecksumPage(page: Uint8Array, blockNo: number): number {
  assertPageSize(page);
  const words = pageWords(page);
  let result = 0;
  for (let j = 0; j < N_SUMS; j++) {
    let sum = checksumBaseOffsets[j]!;
    let tmp = sum ^ (j === 2 ? words[2]! & ~0xffff : words[j]!);
    sum = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17);
    for (let i = N_SUMS + j; i < WORDS_PER_PAGE; i += N_SUMS) {
      tmp = sum ^ words[i]!;
      sum = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17);
    }
    // Two final rounds with value 0, for additional mixing of the last words.
    sum = Math.imul(sum, FNV_PRIME) ^ (sum >>> 17);
    sum = Math.imul(sum, FNV_PRIME) ^ (sum >>> 17);
    result ^= sum;
  }
  return (((result ^ blockNo) >>> 0) % 65535) + 1;
}

/** Absolute block number of block `blockNo` of segment file `segno` (the `.N` suffix). */
export function absoluteBlockNo(segno: number, blockNo: number): number {
  return segno * RELSEG_SIZE + blockNo;
}

/**
 * pg_probackup's per-block check when reading a data file (catalog-format §7.3.2): all-zero pages
 * are valid, otherwise the header must be sane and, with data checksums on, pd_checksum must equal
 * the computed checksum.
 */
export function checkDataPage(
  page: Uint8Array,
  absoluteBlockNumber: number,
  checksumsEnabled: boolean,
): DataPageCheck {
  assertPageSize(page);
  if (isZeroPage(page)) return { ok: true, lsn: 0n, isZero: true, checksum: 0 };
  const problem = pageHeaderProblem(page);
  if (problem !== null) return { ok: false, detail: problem };
  const header = parsePageHeader(page);
  const checksum = pgChecksumPage(page, absoluteBlockNumber);
  if (checksumsEnabled && checksum !== header.checksum) {
    // pg_probackup's get_checksum_errormsg() passes pd_checksum as "calculated" and the computed
    // value as "expected"; the wording is kept so that messages match pg_probackup's.
    return {
      ok: false,
      detail: `page verification failed, calculated checksum ${header.checksum} but expected ${checksum}`,
    };
  }
  return { ok: true, lsn: header.lsn, isZero: false, checksum };
}
