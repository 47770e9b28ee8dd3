import { StrataError } from '../../errors.js';
import { formatLsn } from '../lsn.js';
import { RM_XACT_ID, RM_XLOG_ID, XLR_RMGR_INFO_MASK, type DecodedWalRecord } from './walRecord.js';

/** xl_info of RM_XLOG_ID records (src/include/catalog/pg_control.h). */
export const XLOG_SWITCH = 0x40;
export const XLOG_RESTORE_POINT = 0x70;

/**
 * xl_info of RM_XACT_ID records (src/include/access/xact.h): three opcode bits and
 * XLOG_XACT_HAS_INFO.
 */
export const XLOG_XACT_COMMIT = 0x00;
export const XLOG_XACT_PREPARE = 0x10;
export const XLOG_XACT_ABORT = 0x20;
export const XLOG_XACT_COMMIT_PREPARED = 0x30;
export const XLOG_XACT_ABORT_PREPARED = 0x40;
export const XLOG_XACT_OPMASK = 0x70;
export const XLOG_XACT_HAS_INFO = 0x80;

/** xl_xact_xinfo.xinfo: which optional parts follow xact_time, in this order. */
const XACT_XINFO_HAS_DBINFO = 1 << 0;
const XACT_XINFO_HAS_SUBXACTS = 1 << 1;
const XACT_XINFO_HAS_RELFILENODES = 1 << 2;
const XACT_XINFO_HAS_INVALS = 1 << 3;
const XACT_XINFO_HAS_TWOPHASE = 1 << 4;
/** Since 15: statistics entries dropped by the transaction. */
const XACT_XINFO_HAS_DROPPED_STATS = 1 << 8;

/** sizeof(RelFileNode) / sizeof(RelFileLocator): three Oids in every major. */
const SIZE_OF_REL_FILE_NODE = 12;
/**
 * sizeof(SharedInvalidationMessage): a union whose largest member (SharedInvalSmgrMsg) is 16 bytes.
 */
const SIZE_OF_SHARED_INVAL_MESSAGE = 16;

/**
 * sizeof(xl_xact_stats_item): {int kind; Oid dboid; Oid objoid} in 15–17; 18 widened the object
 * id to 64 bits, stored as objid_lo and objid_hi.
 */
function statsItemSizeBytes(major: number): number {
  return major >= 18 ? 16 : 12;
}

export interface XactCompletion {
  kind: 'commit' | 'abort';
  /** COMMIT PREPARED / ROLLBACK PREPARED of a two-phase transaction. */
  prepared: boolean;
  /**
   * The transaction that completed: xl_xid, or for a prepared transaction the xid stored in the
   * record (the header carries the xid of the session that ran COMMIT PREPARED, usually 0).
   */
  xid: number;
  /** xact_time: TimestampTz, microseconds since 2000-01-01 00:00 UTC. */
  timeTz: bigint;
}

/** The commit or abort a RM_XACT_ID record completes, or undefined for other records. */
export function parseXactCompletion(
  record: DecodedWalRecord,
  major: number,
): XactCompletion | undefined {
  if (record.rmid !== RM_XACT_ID) return undefined;
  const opcode = record.info & XLOG_XACT_OPMASK;
  const isCommit = opcode === XLOG_XACT_COMMIT || opcode === XLOG_XACT_COMMIT_PREPARED;
  const isAbort = opcode === XLOG_XACT_ABORT || opcode === XLOG_XACT_ABORT_PREPARED;
  if (!isCommit && !isAbort) return undefined;
  const prepared = opcode === XLOG_XACT_COMMIT_PREPARED || opcode === XLOG_XACT_ABORT_PREPARED;
  const data = record.mainData;
  const malformed = () =>
    new StrataError(
      'wal',
      `transaction record at ${formatLsn(record.lsn)} is not laid out as PostgreSQL ${major} writes it`,
    );
  if (data.length < 8) throw malformed();
  const timeTz = data.readBigInt64LE(0);
  let twoPhaseXid: number | undefined;
  if (record.info & XLOG_XACT_HAS_INFO) {
    if (data.length < 12) throw malformed();
    const xinfo = data.readUInt32LE(8);
    let pos = 12;
    const skipArray = (elementSizeBytes: number) => {
      if (pos + 4 > data.length) throw malformed();
      const count = data.readInt32LE(pos);
      pos += 4 + count * elementSizeBytes;
    };
    if (xinfo & XACT_XINFO_HAS_DBINFO) pos += 8;
    if (xinfo & XACT_XINFO_HAS_SUBXACTS) skipArray(4);
    if (xinfo & XACT_XINFO_HAS_RELFILENODES) skipArray(SIZE_OF_REL_FILE_NODE);
    if (major >= 15 && xinfo & XACT_XINFO_HAS_DROPPED_STATS) skipArray(statsItemSizeBytes(major));
    if (isCommit && xinfo & XACT_XINFO_HAS_INVALS) skipArray(SIZE_OF_SHARED_INVAL_MESSAGE);
    if (xinfo & XACT_XINFO_HAS_TWOPHASE) {
      if (pos + 4 > data.length) throw malformed();
      twoPhaseXid = data.readUInt32LE(pos);
    }
  }
  if (prepared && twoPhaseXid === undefined) throw malformed();
  const xid = twoPhaseXid ?? record.xid;
  return { kind: isCommit ? 'commit' : 'abort', prepared, xid, timeTz };
}

export interface RestorePoint {
  /** rp_time: TimestampTz. */
  timeTz: bigint;
  /** rp_name: up to MAXFNAMELEN (64) bytes, NUL-terminated. */
  name: string;
}

/** The xl_restore_point of a XLOG_RESTORE_POINT record, or undefined for other records. */
export function parseRestorePoint(record: DecodedWalRecord): RestorePoint | undefined {
  if (record.rmid !== RM_XLOG_ID || (record.info & XLR_RMGR_INFO_MASK) !== XLOG_RESTORE_POINT)
    return undefined;
  const data = record.mainData;
  if (data.length < 8)
    throw new StrataError(
      'wal',
      `restore point record at ${formatLsn(record.lsn)} has ${data.length} bytes of data`,
    );
  const nameBytes = data.subarray(8, Math.min(data.length, 8 + 64));
  const end = nameBytes.indexOf(0);
  return {
    timeTz: data.readBigInt64LE(0),
    name: nameBytes.subarray(0, end < 0 ? nameBytes.length : end).toString('utf8'),
  };
}

/**
 * The timestamp a record carries for recovery purposes, as pg_probackup's getRecordTimestamp
 * reads it: xact_time of a commit or abort (prepared or not), rp_time of a restore point.
 */
export function walRecordTimestampTz(record: DecodedWalRecord): bigint | undefined {
  if (record.rmid === RM_XLOG_ID) {
    return parseRestorePoint(record)?.timeTz;
  }
  if (record.rmid === RM_XACT_ID) {
    const opcode = record.info & XLOG_XACT_OPMASK;
    if (opcode === XLOG_XACT_PREPARE || opcode > XLOG_XACT_ABORT_PREPARED) return undefined;
    if (record.mainData.length < 8) {
      throw new StrataError(
        'wal',
        `transaction record at ${formatLsn(record.lsn)} has ${record.mainData.length} bytes of data`,
      );
    }
    return record.mainData.readBigInt64LE(0);
  }
  return undefined;
}

/** Whether this is the XLOG_SWITCH record that ends a segment early. */
export function isXlogSwitch(record: { rmid: number; info: number }): boolean {
  return record.rmid === RM_XLOG_ID && (record.info & XLR_RMGR_INFO_MASK) === XLOG_SWITCH;
}
