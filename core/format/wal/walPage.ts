import { StrataError } from '../../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';

/** XLOG_BLCKSZ: the size of a WAL page. pg_probackup and Strata support only the default. */
export const XLOG_BLCKSZ = 8192;

/** SizeOfXLogShortPHD: XLogPageHeaderData is 20 bytes, MAXALIGNed to 24. */
export const SIZE_OF_XLOG_SHORT_PHD = 24;

/**
 * SizeOfXLogLongPHD: XLogLongPageHeaderData adds xlp_sysid, xlp_seg_size, xlp_xlog_blcksz (40
 * bytes).
 */
export const SIZE_OF_XLOG_LONG_PHD = 40;

/** xlp_info: the first bytes on this page continue a record begun on an earlier page. */
export const XLP_FIRST_IS_CONTRECORD = 0x0001;
/** xlp_info: this page has the long header (the first page of every segment). */
export const XLP_LONG_HEADER = 0x0002;
/** xlp_info: backup blocks starting here are optional (defined up to 18, unused on read). */
export const XLP_BKP_REMOVABLE = 0x0004;
/**
 * xlp_info: the continuation expected on this page was lost; a XLOG_OVERWRITE_CONTRECORD record
 * starts here instead. 0x0008 in 11–18 (minor releases of 11–14 from late 2021 on write it too);
 * PostgreSQL 19 moves it to 0x0004 when it drops XLP_BKP_REMOVABLE.
 */
export const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008;
/** XLP_ALL_FLAGS of 11–18: any other bit set in xlp_info makes the page header invalid. */
export const XLP_ALL_FLAGS = 0x000f;

/**
 * MAXALIGN on the 64-bit platforms PostgreSQL WAL comes from: records start on 8-byte boundaries.
 */
export function maxAlign(value: number): number {
  return (value + 7) & ~7;
}

/**
 * XLOG_PAGE_MAGIC of each major (src/include/access/xlog_internal.h of REL_11 … REL_18): the WAL
 * format version, bumped whenever a record layout changes.
 */
const pageMagicByMajor: ReadonlyMap<number, number> = new Map([
  [11, 0xd098],
  [12, 0xd101],
  [13, 0xd106],
  [14, 0xd10d],
  [15, 0xd110],
  [16, 0xd113],
  [17, 0xd116],
  [18, 0xd118],
]);

const majorByPageMagic: ReadonlyMap<number, number> = new Map(
  [...pageMagicByMajor].map(([major, magic]) => [magic, major]),
);

/** The PostgreSQL major whose WAL carries this xlp_magic, or undefined for an unknown value. */
export function walPageMagicMajor(magic: number): number | undefined {
  return majorByPageMagic.get(magic);
}

/** The xlp_magic written by a major, or undefined outside 11–18. */
export function walPageMagicForMajor(major: number): number | undefined {
  return pageMagicByMajor.get(major);
}

export interface WalPageHeader {
  magic: number;
  info: number;
  timelineId: number;
  pageAddr: Lsn;
  remLen: number;
  /** Size of this page's header: where its WAL data starts. */
  headerSizeBytes: number;
  /** Present on a long header only. */
  long?: { systemIdentifier: bigint; segmentSizeBytes: number; xlogBlockSizeBytes: number };
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads the header at the start of `page` (little-endian, as x86-64 and ARM servers write it). */
export function parseWalPageHeader(page: Uint8Array): WalPageHeader {
  if (page.length < SIZE_OF_XLOG_SHORT_PHD) {
    throw new StrataError(
      'wal',
      `WAL page header needs ${SIZE_OF_XLOG_SHORT_PHD} bytes, got ${page.length}`,
    );
  }
  const view = dataView(page);
  const info = view.getUint16(2, true);
  const header: WalPageHeader = {
    magic: view.getUint16(0, true),
    info,
    timelineId: view.getUint32(4, true),
    pageAddr: view.getBigUint64(8, true),
    remLen: view.getUint32(16, true),
    headerSizeBytes: info & XLP_LONG_HEADER ? SIZE_OF_XLOG_LONG_PHD : SIZE_OF_XLOG_SHORT_PHD,
  };
  if (info & XLP_LONG_HEADER) {
    if (page.length < SIZE_OF_XLOG_LONG_PHD) {
      throw new StrataError(
        'wal',
        `long WAL page header needs ${SIZE_OF_XLOG_LONG_PHD} bytes, got ${page.length}`,
      );
    }
    header.long = {
      systemIdentifier: view.getBigUint64(24, true),
      segmentSizeBytes: view.getUint32(32, true),
      xlogBlockSizeBytes: view.getUint32(36, true),
    };
  }
  return header;
}

/** True when the page header is all zeros: WAL was never written here (end of WAL). */
export function isZeroedPageHeader(page: Uint8Array): boolean {
  for (let i = 0; i < SIZE_OF_XLOG_SHORT_PHD; i++) if (page[i] !== 0) return false;
  return true;
}

export type WalPageProblemReason =
  | 'zeroed-page'
  | 'invalid-magic'
  | 'invalid-page-header'
  | 'unexpected-pageaddr'
  | 'unexpected-timeline';

export interface WalPageProblem {
  reason: WalPageProblemReason;
  message: string;
}

export interface WalPageExpectation {
  /** Where this page sits in the WAL stream. */
  pageLsn: Lsn;
  walSegmentSizeBytes: number;
  /** File name of the segment, for messages. */
  segmentName: string;
  /** The timeline being read: a page may carry an older (parent) timeline, never a newer one. */
  timelineId: number;
  /** The magic seen on earlier pages: WAL of one stream never changes format. */
  magic?: number;
  /** The system identifier seen on earlier segments. */
  systemIdentifier?: bigint;
}

/**
 * Validates a page header the way XLogReaderValidatePageHeader does: known magic, only defined
 * info bits, a long header exactly on a segment's first page with matching segment and block
 * sizes, xlp_pageaddr equal to the page's own position (a recycled segment fails here), a
 * timeline no newer than the one being read, and xlp_rem_len present when the page starts with a
 * continuation. Returns undefined when the header is valid.
 */
export function checkWalPageHeader(
  header: WalPageHeader,
  page: Uint8Array,
  expected: WalPageExpectation,
): WalPageProblem | undefined {
  const segmentOffset = Number(expected.pageLsn % BigInt(expected.walSegmentSizeBytes));
  const where = `in WAL segment ${expected.segmentName}, LSN ${formatLsn(expected.pageLsn)}, offset ${segmentOffset}`;
  if (isZeroedPageHeader(page)) {
    return { reason: 'zeroed-page', message: `zeroed page ${where}: end of WAL` };
  }
  const hexMagic = header.magic.toString(16).toUpperCase().padStart(4, '0');
  if (walPageMagicMajor(header.magic) === undefined) {
    return { reason: 'invalid-magic', message: `invalid magic number ${hexMagic} ${where}` };
  }
  if (expected.magic !== undefined && header.magic !== expected.magic) {
    const previous = expected.magic.toString(16).toUpperCase().padStart(4, '0');
    return {
      reason: 'invalid-magic',
      message: `invalid magic number ${hexMagic} ${where}: earlier pages have ${previous}`,
    };
  }
  const hexInfo = header.info.toString(16).toUpperCase().padStart(4, '0');
  if ((header.info & ~XLP_ALL_FLAGS) !== 0) {
    return { reason: 'invalid-page-header', message: `invalid info bits ${hexInfo} ${where}` };
  }
  if (header.long) {
    if (
      expected.systemIdentifier !== undefined &&
      header.long.systemIdentifier !== expected.systemIdentifier
    ) {
      return {
        reason: 'invalid-page-header',
        message: `WAL file is from different database system: WAL file database system identifier is ${header.long.systemIdentifier}, expected ${expected.systemIdentifier} (${where})`,
      };
    }
    if (header.long.segmentSizeBytes !== expected.walSegmentSizeBytes) {
      return {
        reason: 'invalid-page-header',
        message: `WAL file is from different database system: incorrect segment size ${header.long.segmentSizeBytes} in page header, expected ${expected.walSegmentSizeBytes} (${where})`,
      };
    }
    if (header.long.xlogBlockSizeBytes !== XLOG_BLCKSZ) {
      return {
        reason: 'invalid-page-header',
        message: `WAL file is from different database system: incorrect XLOG_BLCKSZ ${header.long.xlogBlockSizeBytes} in page header (${where})`,
      };
    }
  } else if (segmentOffset === 0) {
    return {
      reason: 'invalid-page-header',
      message: `invalid info bits ${hexInfo} ${where}: the first page of a segment must have a long header`,
    };
  }
  if (header.pageAddr !== expected.pageLsn) {
    return {
      reason: 'unexpected-pageaddr',
      message: `unexpected pageaddr ${formatLsn(header.pageAddr)} ${where}`,
    };
  }
  if (header.timelineId > expected.timelineId) {
    return {
      reason: 'unexpected-timeline',
      message: `unexpected timeline ID ${header.timelineId} ${where}: reading timeline ${expected.timelineId}`,
    };
  }
  if (header.info & XLP_FIRST_IS_CONTRECORD && header.remLen === 0) {
    return {
      reason: 'invalid-page-header',
      message: `continuation flag set with xlp_rem_len 0 ${where}`,
    };
  }
  return undefined;
}
