import { StrataError } from '../../errors.js';
import type { Lsn } from '../lsn.js';
import type { DecodedWalRecord } from './walRecord.js';
import { WalReader, type WalSegmentSource } from './walReader.js';
import { parseXactCompletion, walRecordTimestampTz } from './walXact.js';

/**
 * (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY: TimestampTz counts from 2000-01-01 UTC.
 */
const POSTGRES_EPOCH_UNIX_SECONDS = 946_684_800;

/** A TimestampTz (microseconds since 2000-01-01 00:00 UTC) as Unix seconds, fraction kept. */
export function timestampTzToUnixSeconds(us: bigint): number {
  return Number(us) / 1_000_000 + POSTGRES_EPOCH_UNIX_SECONDS;
}

/**
 * timestamptz_to_time_t as pg_probackup uses it for recovery-time and its messages: whole seconds,
 * the microseconds truncated toward zero as C integer division does.
 */
function timestampTzToUnixTime(us: bigint): number {
  return Number(us / 1_000_000n) + POSTGRES_EPOCH_UNIX_SECONDS;
}

function unixSecondsToTimestampTz(seconds: number): bigint {
  return BigInt(Math.round((seconds - POSTGRES_EPOCH_UNIX_SECONDS) * 1_000_000));
}

function openReader(
  source: WalSegmentSource,
  timelineId: number,
  walSegmentSizeBytes: number,
): WalReader {
  return new WalReader({ source, timelineId, walSegmentSizeBytes });
}

function readerMajor(reader: WalReader): number {
  const major = reader.major;
  if (major === undefined)
    throw new StrataError('internal', 'WAL major unknown after a record was read');
  return major;
}

/**
 * The first record starting at or after `lsn`, or null when WAL ends first. Used to turn a stop
 * LSN that falls on a page or segment boundary into the LSN of a real record (catalog-format §5.4).
 */
export async function findRecordAtOrAfter(
  source: WalSegmentSource,
  timelineId: number,
  walSegmentSizeBytes: number,
  lsn: Lsn,
): Promise<Lsn | null> {
  const result = await openReader(source, timelineId, walSegmentSizeBytes).findRecordAtOrAfter(lsn);
  return result.kind === 'found' ? result.lsn : null;
}

export type WalRangeResult =
  { ok: true; lastRecordEnd: Lsn } | { ok: false; reachedLsn: Lsn; reason: string };

/**
 * Reads every record from the record at `startLsn` up to and including the record at (or
 * containing) `stopLsn`: the WAL a backup needs to become consistent (cli §7.2). On failure
 * `reachedLsn` is where valid WAL ends and `reason` says why.
 */
export async function readWalRange(
  source: WalSegmentSource,
  timelineId: number,
  walSegmentSizeBytes: number,
  startLsn: Lsn,
  stopLsn: Lsn,
): Promise<WalRangeResult> {
  const reader = openReader(source, timelineId, walSegmentSizeBytes);
  reader.beginRead(startLsn);
  for (;;) {
    const result = await reader.readRecord();
    if (result.kind === 'end') return { ok: false, reachedLsn: result.lsn, reason: result.message };
    const { record } = result;
    if (record.lsn >= stopLsn || record.endLsn > stopLsn)
      return { ok: true, lastRecordEnd: record.endLsn };
  }
}

function inRange(record: DecodedWalRecord, startLsn: Lsn, stopLsn: Lsn): boolean {
  return record.lsn >= startLsn && record.lsn <= stopLsn;
}

/**
 * Unix time (whole seconds, as pg_probackup stores recovery-time) of the last commit, abort or
 * restore point whose record starts in [startLsn, stopLsn]; undefined when there is none or the
 * range cannot be read. Walks back from the record at stopLsn along xl_prev, as pg_probackup's
 * read_recovery_info does, so only the tail of the range is usually read; when stopLsn is not a
 * record start it reads the range forward instead.
 */
export async function findRecoveryTime(
  source: WalSegmentSource,
  timelineId: number,
  walSegmentSizeBytes: number,
  startLsn: Lsn,
  stopLsn: Lsn,
): Promise<number | undefined> {
  const reader = openReader(source, timelineId, walSegmentSizeBytes);
  const atStop = await reader.readRecord(stopLsn);
  if (atStop.kind === 'end') return findRecoveryTimeForward(reader, startLsn, stopLsn);
  let record = atStop.record;
  for (;;) {
    if (inRange(record, startLsn, stopLsn)) {
      const timeTz = walRecordTimestampTz(record);
      if (timeTz !== undefined) return timestampTzToUnixTime(timeTz);
    }
    if (record.prevLsn < startLsn) return undefined;
    const previous = await reader.readRecord(record.prevLsn);
    if (previous.kind === 'end') return undefined;
    record = previous.record;
  }
}

async function findRecoveryTimeForward(
  reader: WalReader,
  startLsn: Lsn,
  stopLsn: Lsn,
): Promise<number | undefined> {
  reader.beginRead(startLsn);
  let lastTimeTz: bigint | undefined;
  for (;;) {
    const result = await reader.readRecord();
    if (result.kind === 'end') return undefined;
    const { record } = result;
    if (inRange(record, startLsn, stopLsn)) lastTimeTz = walRecordTimestampTz(record) ?? lastTimeTz;
    if (record.endLsn > stopLsn)
      return lastTimeTz === undefined ? undefined : timestampTzToUnixTime(lastTimeTz);
  }
}

export interface RecoveryTarget {
  /** Unix seconds; fractions allowed. Reached by a commit or abort at or after it. */
  time?: number;
  /**
   * Reached when this transaction commits or aborts (compared on its low 32 bits, the xid in WAL).
   */
  xid?: bigint;
  /** Reached by any record starting at or after it. */
  lsn?: Lsn;
}

export interface RecoveryTargetScan {
  reached: boolean;
  /** Whole Unix seconds of the last commit, abort or restore point read. */
  lastTime: number | undefined;
  /** xl_xid of the last record read that carried one. */
  lastXid: number | undefined;
  /** Start of the last record read (fromLsn when none was). */
  lastLsn: Lsn;
}

/**
 * Reads forward from the record at `fromLsn` until the target is reached or WAL ends, tracking
 * what pg_probackup reports in "Recovery can be done up to time …, xid … and LSN …" (cli §7.2).
 */
export async function scanRecoveryTarget(
  source: WalSegmentSource,
  timelineId: number,
  walSegmentSizeBytes: number,
  fromLsn: Lsn,
  target: RecoveryTarget,
): Promise<RecoveryTargetScan> {
  const reader = openReader(source, timelineId, walSegmentSizeBytes);
  reader.beginRead(fromLsn);
  const targetTimeTz =
    target.time === undefined ? undefined : unixSecondsToTimestampTz(target.time);
  const targetXid = target.xid === undefined ? undefined : Number(BigInt.asUintN(32, target.xid));
  const scan: RecoveryTargetScan = {
    reached: false,
    lastTime: undefined,
    lastXid: undefined,
    lastLsn: fromLsn,
  };
  for (;;) {
    const result = await reader.readRecord();
    if (result.kind === 'end') return scan;
    const { record } = result;
    const timeTz = walRecordTimestampTz(record);
    if (timeTz !== undefined) scan.lastTime = timestampTzToUnixTime(timeTz);
    if (record.xid !== 0) scan.lastXid = record.xid;
    scan.lastLsn = record.lsn;
    const completion = parseXactCompletion(record, readerMajor(reader));
    if (
      (completion && targetTimeTz !== undefined && completion.timeTz >= targetTimeTz) ||
      (completion && targetXid !== undefined && completion.xid === targetXid) ||
      (target.lsn !== undefined && record.lsn >= target.lsn)
    ) {
      scan.reached = true;
      return scan;
    }
  }
}
