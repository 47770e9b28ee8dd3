import { StrataError } from '../../errors.js';
import { crc32cFinal, crc32cInit, crc32cUpdate } from '../crc32c.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { maxAlign } from './walPage.js';

/** SizeOfXLogRecord: xl_tot_len, xl_xid, xl_prev, xl_info, xl_rmid, 2 padding bytes, xl_crc. */
export const SIZE_OF_XLOG_RECORD = 24;
/** offsetof(XLogRecord, xl_crc): the CRC covers the header only up to here. */
const XL_CRC_OFFSET = 20;

/**
 * xl_info bits owned by the WAL machinery; the high four (XLR_RMGR_INFO_MASK) belong to the rmgr.
 */
export const XLR_INFO_MASK = 0x0f;
export const XLR_RMGR_INFO_MASK = 0xf0;
/** xl_info: the record changes relation files outside its block references (e.g. truncation). */
export const XLR_SPECIAL_REL_UPDATE = 0x01;
export const XLR_CHECK_CONSISTENCY = 0x02;

/** Block reference ids run 0..XLR_MAX_BLOCK_ID; the ids above are the other record fragments. */
export const XLR_MAX_BLOCK_ID = 32;
export const XLR_BLOCK_ID_DATA_SHORT = 255;
export const XLR_BLOCK_ID_DATA_LONG = 254;
export const XLR_BLOCK_ID_ORIGIN = 253;
/**
 * Carries the top-level xid of a subtransaction's record, for logical decoding (wal_level logical).
 */
export const XLR_BLOCK_ID_TOPLEVEL_XID = 252;

/** XLogRecordBlockHeader.fork_flags: fork number in the low four bits, flags in the high four. */
export const BKPBLOCK_FORK_MASK = 0x0f;
export const BKPBLOCK_HAS_IMAGE = 0x10;
export const BKPBLOCK_HAS_DATA = 0x20;
export const BKPBLOCK_WILL_INIT = 0x40;
export const BKPBLOCK_SAME_REL = 0x80;

/** BLCKSZ: data page size; a full-page image without hole or compression is exactly this long. */
export const BLCKSZ = 8192;

/**
 * XLogRecordBlockImageHeader.bimg_info: the image has its "hole" (zero bytes) removed. Same in
 * 11–18.
 */
export const BKPIMAGE_HAS_HOLE = 0x01;

/**
 * The other bimg_info bits moved in 15 when wal_compression gained lz4 and zstd: up to 14
 * BKPIMAGE_IS_COMPRESSED is 0x02 (pglz) and BKPIMAGE_APPLY 0x04; from 15 BKPIMAGE_APPLY is 0x02
 * and the method is one of BKPIMAGE_COMPRESS_PGLZ 0x04, _LZ4 0x08, _ZSTD 0x10.
 */
export interface BlockImageInfoBits {
  apply: number;
  /** Any of these bits set means the image is compressed. */
  compressedMask: number;
}

export const BKPIMAGE_IS_COMPRESSED_UP_TO_14 = 0x02;
export const BKPIMAGE_APPLY_UP_TO_14 = 0x04;
export const BKPIMAGE_APPLY = 0x02;
export const BKPIMAGE_COMPRESS_PGLZ = 0x04;
export const BKPIMAGE_COMPRESS_LZ4 = 0x08;
export const BKPIMAGE_COMPRESS_ZSTD = 0x10;

export function blockImageInfoBits(major: number): BlockImageInfoBits {
  if (major <= 14)
    return { apply: BKPIMAGE_APPLY_UP_TO_14, compressedMask: BKPIMAGE_IS_COMPRESSED_UP_TO_14 };
  return {
    apply: BKPIMAGE_APPLY,
    compressedMask: BKPIMAGE_COMPRESS_PGLZ | BKPIMAGE_COMPRESS_LZ4 | BKPIMAGE_COMPRESS_ZSTD,
  };
}

/** Resource manager ids and names of src/include/access/rmgrlist.h (identical in 11–18). */
export const RM_XLOG_ID = 0;
export const RM_XACT_ID = 1;
export const RM_SMGR_ID = 2;
export const RM_DBASE_ID = 4;
export const RM_HEAP2_ID = 9;
export const RM_HEAP_ID = 10;
export const RM_BTREE_ID = 11;
export const RM_LOGICALMSG_ID = 21;
const rmgrNames = [
  'XLOG',
  'Transaction',
  'Storage',
  'CLOG',
  'Database',
  'Tablespace',
  'MultiXact',
  'RelMap',
  'Standby',
  'Heap2',
  'Heap',
  'Btree',
  'Hash',
  'Gin',
  'Gist',
  'Sequence',
  'SPGist',
  'BRIN',
  'CommitTs',
  'ReplicationOrigin',
  'Generic',
  'LogicalMessage',
] as const;
export const RM_MAX_BUILTIN_ID = rmgrNames.length - 1;
/** Custom resource managers (extensions) may use ids 128..255 since 15 (RM_MIN_CUSTOM_ID). */
const RM_MIN_CUSTOM_ID = 128;

/** The rmgr name pg_waldump and pg_walinspect print, or `custom<id>`. */
export function walRmgrName(rmid: number): string {
  return rmgrNames[rmid] ?? `custom${rmid}`;
}

/** RmgrIdIsValid of the given major. */
export function isValidRmid(rmid: number, major: number): boolean {
  if (rmid <= RM_MAX_BUILTIN_ID) return true;
  return major >= 15 && rmid >= RM_MIN_CUSTOM_ID && rmid <= 255;
}

export interface WalRecordHeader {
  totalLength: number;
  xid: number;
  prevLsn: Lsn;
  info: number;
  rmid: number;
  crc: number;
}

/** Reads the 24-byte XLogRecord header at the start of `bytes`. */
export function parseWalRecordHeader(bytes: Uint8Array): WalRecordHeader {
  if (bytes.length < SIZE_OF_XLOG_RECORD) {
    throw new StrataError(
      'wal',
      `WAL record header needs ${SIZE_OF_XLOG_RECORD} bytes, got ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    totalLength: view.getUint32(0, true),
    xid: view.getUint32(4, true),
    prevLsn: view.getBigUint64(8, true),
    info: view.getUint8(16),
    rmid: view.getUint8(17),
    crc: view.getUint32(20, true),
  };
}

/**
 * xl_crc as PostgreSQL computes it (XLogRecordAssemble / ValidXLogRecord): CRC-32C over the data
 * after the header, then over the header up to xl_crc. `record` is the whole record (xl_tot_len).
 */
export function computeWalRecordCrc(record: Uint8Array): number {
  let state = crc32cUpdate(crc32cInit, record.subarray(SIZE_OF_XLOG_RECORD));
  state = crc32cUpdate(state, record.subarray(0, XL_CRC_OFFSET));
  return crc32cFinal(state);
}

export interface WalBlockRef {
  blockId: number;
  forkNumber: number;
  spcOid: number;
  dbOid: number;
  relNumber: number;
  blockNo: number;
  hasImage: boolean;
  applyImage: boolean;
  hasData: boolean;
  willInit: boolean;
}

export interface DecodedWalRecord {
  lsn: Lsn;
  /**
   * Where the next record starts, as xlogreader's EndRecPtr: past the MAXALIGN padding (and past
   * the continuation on following pages); for XLOG_SWITCH, the start of the next segment.
   */
  endLsn: Lsn;
  totalLength: number;
  xid: number;
  prevLsn: Lsn;
  info: number;
  rmid: number;
  blocks: WalBlockRef[];
  mainData: Buffer;
}

export type WalRecordProblemReason =
  'invalid-record-length' | 'invalid-rmid' | 'checksum-mismatch' | 'invalid-record';

export type WalRecordDecodeResult =
  | { ok: true; record: DecodedWalRecord }
  | { ok: false; reason: WalRecordProblemReason; message: string };

function checkMajor(major: number): void {
  if (!Number.isInteger(major) || major < 11 || major > 18) {
    throw new StrataError(
      'usage',
      `PostgreSQL ${major} WAL is not supported: Strata reads WAL of PostgreSQL 11 to 18`,
    );
  }
}

/**
 * Decodes a whole record (the reassembled xl_tot_len bytes starting at `lsn`): verifies xl_crc,
 * then walks the fragment headers as DecodeXLogRecord does, with its cross-checks. `endLsn` is
 * the reader's next-record position; without it the record is taken to end on its own page
 * (lsn + MAXALIGN(xl_tot_len)), which is wrong for a record that continues on another page.
 * Problems are returned, not thrown: a bad record is where valid WAL ends.
 */
export function tryDecodeWalRecord(
  bytes: Uint8Array,
  lsn: Lsn,
  major: number,
  endLsn?: Lsn,
): WalRecordDecodeResult {
  checkMajor(major);
  const at = formatLsn(lsn);
  if (bytes.length < SIZE_OF_XLOG_RECORD) {
    return {
      ok: false,
      reason: 'invalid-record-length',
      message: `invalid record length at ${at}: expected at least ${SIZE_OF_XLOG_RECORD}, got ${bytes.length}`,
    };
  }
  const header = parseWalRecordHeader(bytes);
  if (header.totalLength < SIZE_OF_XLOG_RECORD) {
    return {
      ok: false,
      reason: 'invalid-record-length',
      message: `invalid record length at ${at}: expected at least ${SIZE_OF_XLOG_RECORD}, got ${header.totalLength}`,
    };
  }
  if (bytes.length < header.totalLength) {
    return {
      ok: false,
      reason: 'invalid-record-length',
      message: `record at ${at} has ${bytes.length} of its ${header.totalLength} bytes`,
    };
  }
  if (!isValidRmid(header.rmid, major)) {
    return {
      ok: false,
      reason: 'invalid-rmid',
      message: `invalid resource manager ID ${header.rmid} at ${at}`,
    };
  }
  const record = bytes.subarray(0, header.totalLength);
  if (computeWalRecordCrc(record) !== header.crc) {
    return {
      ok: false,
      reason: 'checksum-mismatch',
      message: `incorrect resource manager data checksum in record at ${at}`,
    };
  }
  const body = decodeRecordBody(record, at, major);
  if (typeof body === 'string') return { ok: false, reason: 'invalid-record', message: body };
  return {
    ok: true,
    record: {
      lsn,
      endLsn: endLsn ?? lsn + BigInt(maxAlign(header.totalLength)),
      totalLength: header.totalLength,
      xid: header.xid,
      prevLsn: header.prevLsn,
      info: header.info,
      rmid: header.rmid,
      blocks: body.blocks,
      mainData: body.mainData,
    },
  };
}

/** As tryDecodeWalRecord, throwing a StrataError (code `wal`) for a record that is not valid. */
export function decodeWalRecord(
  bytes: Uint8Array,
  lsn: Lsn,
  major: number,
  endLsn?: Lsn,
): DecodedWalRecord {
  const result = tryDecodeWalRecord(bytes, lsn, major, endLsn);
  if (!result.ok) throw new StrataError('wal', result.message);
  return result.record;
}

/**
 * Block headers, then the data of the fragments in the same order; returns an error text on
 * failure.
 */
function decodeRecordBody(
  record: Uint8Array,
  at: string,
  major: number,
): { blocks: WalBlockRef[]; mainData: Buffer } | string {
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const imageBits = blockImageInfoBits(major);
  const shortData = `record with invalid length at ${at}`;
  const blocks: WalBlockRef[] = [];
  let pos = SIZE_OF_XLOG_RECORD;
  let remaining = record.length - SIZE_OF_XLOG_RECORD;
  let dataTotal = 0;
  let mainDataLength = 0;
  let maxBlockId = -1;
  let lastRel: { spcOid: number; dbOid: number; relNumber: number } | undefined;

  const take = (size: number): number | undefined => {
    if (remaining < size) return undefined;
    const start = pos;
    pos += size;
    remaining -= size;
    return start;
  };

  while (remaining > dataTotal) {
    const idAt = take(1);
    if (idAt === undefined) return shortData;
    const blockId = record[idAt]!;
    if (blockId === XLR_BLOCK_ID_DATA_SHORT) {
      const lengthAt = take(1);
      if (lengthAt === undefined) return shortData;
      mainDataLength = record[lengthAt]!;
      dataTotal += mainDataLength;
      break;
    }
    if (blockId === XLR_BLOCK_ID_DATA_LONG) {
      const lengthAt = take(4);
      if (lengthAt === undefined) return shortData;
      mainDataLength = view.getUint32(lengthAt, true);
      dataTotal += mainDataLength;
      break;
    }
    if (blockId === XLR_BLOCK_ID_ORIGIN) {
      if (take(2) === undefined) return shortData;
      continue;
    }
    if (blockId === XLR_BLOCK_ID_TOPLEVEL_XID) {
      if (take(4) === undefined) return shortData;
      continue;
    }
    if (blockId > XLR_MAX_BLOCK_ID) return `invalid block_id ${blockId} at ${at}`;
    if (blockId <= maxBlockId) return `out-of-order block_id ${blockId} at ${at}`;
    maxBlockId = blockId;

    const headerAt = take(3);
    if (headerAt === undefined) return shortData;
    const forkFlags = record[headerAt]!;
    const dataLength = view.getUint16(headerAt + 1, true);
    const hasImage = (forkFlags & BKPBLOCK_HAS_IMAGE) !== 0;
    const hasData = (forkFlags & BKPBLOCK_HAS_DATA) !== 0;
    if (hasData && dataLength === 0) return `BKPBLOCK_HAS_DATA set, but no data included at ${at}`;
    if (!hasData && dataLength !== 0)
      return `BKPBLOCK_HAS_DATA not set, but data length is ${dataLength} at ${at}`;
    dataTotal += dataLength;

    let applyImage = false;
    if (hasImage) {
      const imageAt = take(5);
      if (imageAt === undefined) return shortData;
      const imageLength = view.getUint16(imageAt, true);
      const holeOffset = view.getUint16(imageAt + 2, true);
      const imageInfo = record[imageAt + 4]!;
      const hasHole = (imageInfo & BKPIMAGE_HAS_HOLE) !== 0;
      const compressed = (imageInfo & imageBits.compressedMask) !== 0;
      applyImage = (imageInfo & imageBits.apply) !== 0;
      let holeLength: number;
      if (compressed) {
        if (hasHole) {
          const holeAt = take(2);
          if (holeAt === undefined) return shortData;
          holeLength = view.getUint16(holeAt, true);
        } else {
          holeLength = 0;
        }
      } else {
        holeLength = BLCKSZ - imageLength;
      }
      dataTotal += imageLength;
      if (hasHole && (holeOffset === 0 || holeLength === 0 || imageLength === BLCKSZ)) {
        return `BKPIMAGE_HAS_HOLE set, but hole offset ${holeOffset} length ${holeLength} block image length ${imageLength} at ${at}`;
      }
      if (!hasHole && (holeOffset !== 0 || holeLength !== 0)) {
        return `BKPIMAGE_HAS_HOLE not set, but hole offset ${holeOffset} length ${holeLength} at ${at}`;
      }
      if (compressed && imageLength === BLCKSZ) {
        return `BKPIMAGE_COMPRESSED set, but block image length ${imageLength} at ${at}`;
      }
      if (!hasHole && !compressed && imageLength !== BLCKSZ) {
        return `neither BKPIMAGE_HAS_HOLE nor BKPIMAGE_COMPRESSED set, but block image length is ${imageLength} at ${at}`;
      }
    }

    if ((forkFlags & BKPBLOCK_SAME_REL) === 0) {
      const relAt = take(12);
      if (relAt === undefined) return shortData;
      lastRel = {
        spcOid: view.getUint32(relAt, true),
        dbOid: view.getUint32(relAt + 4, true),
        relNumber: view.getUint32(relAt + 8, true),
      };
    } else if (!lastRel) {
      return `BKPBLOCK_SAME_REL set but no previous rel at ${at}`;
    }
    const blockNoAt = take(4);
    if (blockNoAt === undefined) return shortData;
    blocks.push({
      blockId,
      forkNumber: forkFlags & BKPBLOCK_FORK_MASK,
      spcOid: lastRel.spcOid,
      dbOid: lastRel.dbOid,
      relNumber: lastRel.relNumber,
      blockNo: view.getUint32(blockNoAt, true),
      hasImage,
      applyImage,
      hasData,
      willInit: (forkFlags & BKPBLOCK_WILL_INIT) !== 0,
    });
  }
  if (remaining !== dataTotal) return shortData;

  // Block images and block data come first, in block order; the main data is last.
  const mainDataStart = record.length - mainDataLength;
  return { blocks, mainData: Buffer.from(record.subarray(mainDataStart)) };
}
