/**
 * WAL file names and segment arithmetic (src/include/access/xlog_internal.h), for any WAL segment
 * size a cluster can be initialized with (initdb --wal-segsize).
 */
import { StrataError } from '../errors.js';
import type { Lsn } from './lsn.js';

/** A 24-hex-digit WAL segment file name: timeline, then segno split into "log" and "seg" parts. */
export type WalSegmentName = string;

/** XLOG_BLCKSZ: WAL page size PostgreSQL and pg_probackup 2.5 are built with. */
export const XLOG_BLCKSZ = 8192;

/** WalSegMinSize / WalSegMaxSize: 1 MiB to 1 GiB, powers of two. */
const WAL_SEGMENT_MIN_BYTES = 1024 * 1024;
const WAL_SEGMENT_MAX_BYTES = 1024 * 1024 * 1024;

const segmentNamePattern = /^[0-9A-F]{24}$/;
const partialNamePattern = /^[0-9A-F]{24}(?:\.gz)?\.partial$/;
const historyNamePattern = /^[0-9A-F]{8}\.history$/;
const backupHistoryNamePattern = /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/;

function hex8(value: number | bigint): string {
  return value.toString(16).toUpperCase().padStart(8, '0');
}

export function isValidWalSegmentSize(bytes: number): boolean {
  return (
    Number.isInteger(bytes) &&
    bytes >= WAL_SEGMENT_MIN_BYTES &&
    bytes <= WAL_SEGMENT_MAX_BYTES &&
    (bytes & (bytes - 1)) === 0
  );
}

function checkWalSegmentSize(walSegmentSizeBytes: number): void {
  if (!isValidWalSegmentSize(walSegmentSizeBytes)) {
    throw new StrataError(
      'config',
      `Invalid WAL segment size ${walSegmentSizeBytes} bytes: it must be a power of two between 1MB and 1GB (xlog-seg-size)`,
    );
  }
}

/** XLogSegmentsPerXLogId: segments per 4 GiB "log" (the middle 8 hex digits of a name). */
function segmentsPerXLogId(walSegmentSizeBytes: number): bigint {
  checkWalSegmentSize(walSegmentSizeBytes);
  return 0x100000000n / BigInt(walSegmentSizeBytes);
}

/** XLogFileName: `%08X%08X%08X` of timeline, segno / segments-per-id, segno % segments-per-id. */
export function walSegmentName(
  timelineId: number,
  segno: bigint,
  walSegmentSizeBytes: number,
): WalSegmentName {
  const perId = segmentsPerXLogId(walSegmentSizeBytes);
  return `${hex8(timelineId)}${hex8(segno / perId)}${hex8(segno % perId)}`;
}

/**
 * XLogFromFileName: timeline and segno of a 24-hex segment name (upper case, as PostgreSQL writes
 * them), or null when the name is not one, including a "seg" part too large for the segment size.
 */
export function parseWalSegmentName(
  name: string,
  walSegmentSizeBytes: number,
): { timelineId: number; segno: bigint } | null {
  if (!segmentNamePattern.test(name)) return null;
  const perId = segmentsPerXLogId(walSegmentSizeBytes);
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  if (seg >= perId) return null;
  return { timelineId: Number.parseInt(name.slice(0, 8), 16), segno: log * perId + seg };
}

/** IsXLogFileName: exactly 24 upper-case hex digits. */
export function isWalSegmentName(name: string): boolean {
  return segmentNamePattern.test(name);
}

/**
 * A partial segment: `<24hex>.partial` as the server writes at promotion, or `<24hex>.gz.partial`
 * as compressed by other tools (both appear in a pg_probackup archive, catalog-format §12.1).
 */
export function isPartialWalName(name: string): boolean {
  return partialNamePattern.test(name);
}

/** IsTLHistoryFileName: `%08X.history`. */
export function isHistoryFileName(name: string): boolean {
  return historyNamePattern.test(name);
}

/** IsBackupHistoryFileName: `<24hex>.<8hex>.backup`, the start segment and the offset in it. */
export function isBackupHistoryFileName(name: string): boolean {
  return backupHistoryNamePattern.test(name);
}

/** TLHistoryFileName. */
export function historyFileName(timelineId: number): string {
  return `${hex8(timelineId)}.history`;
}

/** XLByteToSeg: number of the segment holding `lsn`. */
export function lsnToSegno(lsn: Lsn, walSegmentSizeBytes: number): bigint {
  checkWalSegmentSize(walSegmentSizeBytes);
  return lsn / BigInt(walSegmentSizeBytes);
}

/** XLogSegNoOffsetToRecPtr with offset 0: the LSN where segment `segno` starts. */
export function segnoToLsn(segno: bigint, walSegmentSizeBytes: number): Lsn {
  checkWalSegmentSize(walSegmentSizeBytes);
  return segno * BigInt(walSegmentSizeBytes);
}

/** XLogSegmentOffset: byte offset of `lsn` within its segment. */
export function lsnSegmentOffset(lsn: Lsn, walSegmentSizeBytes: number): number {
  checkWalSegmentSize(walSegmentSizeBytes);
  return Number(lsn % BigInt(walSegmentSizeBytes));
}

/** Name of the segment of timeline `timelineId` that holds `lsn` (XLByteToSeg + XLogFileName). */
export function walSegmentNameForLsn(
  timelineId: number,
  lsn: Lsn,
  walSegmentSizeBytes: number,
): WalSegmentName {
  return walSegmentName(timelineId, lsnToSegno(lsn, walSegmentSizeBytes), walSegmentSizeBytes);
}
