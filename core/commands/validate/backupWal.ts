import { posix } from 'node:path';
import type { BackupCatalog, CatalogBackup } from '../../catalog/catalog.js';
import { formatLocalTime } from '../../catalog/time.js';
import { StrataError } from '../../errors.js';
import { formatLsn } from '../../format/lsn.js';
import type { Lsn } from '../../format/lsn.js';
import type { WalSegmentSource } from '../../format/wal/walReader.js';
import { readWalRange, scanRecoveryTarget } from '../../format/wal/walScan.js';
import { XLOG_BLCKSZ } from '../../format/walNames.js';
import { storageErrorCode } from '../../storage/storage.js';
import type { Storage } from '../../storage/storage.js';
import { ArchiveWalSource, DirectoryWalSource } from '../archive/walSources.js';
import type { CommandContext } from '../context.js';

/** SizeOfXLogShortPHD: a record never starts inside a WAL page's header (XRecOffIsValid). */
const SIZE_OF_XLOG_SHORT_PHD = 24;

/** A time / xid / LSN recovery target; the only kinds whose reachability validate checks (§7.2). */
export interface WalRecoveryTarget {
  /** Unix seconds. */
  time?: number;
  xid?: bigint;
  lsn?: Lsn;
}

/** PostgreSQL's XRecOffIsValid: the LSN lies past the header of its WAL page. */
export function isValidRecordOffset(lsn: Lsn): boolean {
  return lsn % BigInt(XLOG_BLCKSZ) >= BigInt(SIZE_OF_XLOG_SHORT_PHD);
}

/**
 * Where the WAL a backup needs is: a STREAM backup carries it in `database/pg_wal`, an ARCHIVE
 * backup relies on the instance's archive `wal/<instance>` (cli-behaviour.md §7.2).
 */
export function backupWalSource(
  storage: Storage,
  catalog: BackupCatalog,
  instance: string,
  backup: CatalogBackup,
  walSegmentSizeBytes: number,
): WalSegmentSource {
  if (backup.stream) {
    return new DirectoryWalSource(
      storage,
      posix.join(backup.dir, 'database', 'pg_wal'),
      walSegmentSizeBytes,
    );
  }
  return new ArchiveWalSource(storage, catalog.walDir(instance), walSegmentSizeBytes);
}

function assertValidLsns(backup: CatalogBackup): void {
  if (!isValidRecordOffset(backup.startLsn)) {
    throw new StrataError(
      'corrupt',
      `Invalid start_lsn value ${formatLsn(backup.startLsn)} of backup ${backup.id}`,
    );
  }
  if (!isValidRecordOffset(backup.stopLsn)) {
    throw new StrataError(
      'corrupt',
      `Invalid stop_lsn value ${formatLsn(backup.stopLsn)} of backup ${backup.id}`,
    );
  }
}

/**
 * Whether every WAL record from the backup's start-lsn to its stop-lsn can be read from
 * `walSource` on the backup's timeline (cli-behaviour.md §7.2): without them the backup cannot
 * be made consistent. Logs pg_probackup's WARNING when they cannot; changes no status.
 */
export async function validateBackupWal(
  ctx: CommandContext,
  params: { backup: CatalogBackup; walSource: WalSegmentSource; walSegmentSizeBytes: number },
): Promise<boolean> {
  const { backup } = params;
  assertValidLsns(backup);
  const range = await readWalRange(
    params.walSource,
    backup.timelineId,
    params.walSegmentSizeBytes,
    backup.startLsn,
    backup.stopLsn,
  );
  if (range.ok) return true;
  ctx.logger.warning(
    `Could not read WAL record at ${formatLsn(range.reachedLsn)}: ${range.reason}`,
  );
  ctx.logger.warning(
    `There are not enough WAL records to consistenly restore backup ${backup.id} from ` +
      `START LSN: ${formatLsn(backup.startLsn)} to STOP LSN: ${formatLsn(backup.stopLsn)}`,
  );
  return false;
}

async function isDirectoryEmpty(storage: Storage, dir: string): Promise<boolean> {
  try {
    return (await storage.readDir(dir)).length === 0;
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return true;
    throw error;
  }
}

/** pg_probackup's test for a target to check: a valid xid, a non-zero time, or an LSN past a page header. */
export function hasWalRecoveryTarget(target: WalRecoveryTarget): boolean {
  return (
    (target.xid !== undefined && target.xid !== 0n) ||
    (target.time !== undefined && target.time !== 0) ||
    (target.lsn !== undefined && isValidRecordOffset(target.lsn))
  );
}

/** pg_probackup's "Not enough WAL records to …" naming the target that was asked for. */
function notEnoughWalMessage(target: WalRecoveryTarget): string {
  const time = target.time ? formatLocalTime(Math.floor(target.time)) : undefined;
  const xid = target.xid !== undefined && target.xid !== 0n ? target.xid : undefined;
  if (xid !== undefined && time !== undefined)
    return `Not enough WAL records to time ${time} and xid ${xid}`;
  if (xid !== undefined) return `Not enough WAL records to xid ${xid}`;
  if (time !== undefined) return `Not enough WAL records to time ${time}`;
  return `Not enough WAL records to lsn ${formatLsn(target.lsn ?? 0n)}`;
}

/**
 * With a time, xid or LSN target (cli-behaviour.md §7.2): checks that the archive holds the WAL
 * from the backup's stop-lsn up to the target. Logs `Backup validation completed successfully on
 * …` or the WARNING `Recovery can be done up to …` and throws `Not enough WAL records to …`.
 * Without a target it does nothing and returns false.
 */
export async function validateRecoveryTargetWal(
  ctx: CommandContext,
  params: {
    backup: CatalogBackup;
    archiveDir: string;
    target: WalRecoveryTarget;
    walSegmentSizeBytes: number;
  },
): Promise<boolean> {
  const { backup, target } = params;
  if (!hasWalRecoveryTarget(target)) return false;
  if (await isDirectoryEmpty(ctx.storage, params.archiveDir)) {
    throw new StrataError(
      'wal',
      'WAL archive is empty. You cannot restore backup to a recovery target without WAL archive.',
    );
  }
  let lastTime = backup.recoveryTime;
  let lastXid: bigint = backup.recoveryXid;
  let lastLsn = backup.stopLsn;
  let reached =
    (target.xid !== undefined && target.xid !== 0n && target.xid === backup.recoveryXid) ||
    (target.time !== undefined && target.time !== 0 && backup.recoveryTime >= target.time) ||
    (target.lsn !== undefined && isValidRecordOffset(target.lsn) && backup.stopLsn >= target.lsn);
  if (!reached) {
    const source = new ArchiveWalSource(ctx.storage, params.archiveDir, params.walSegmentSizeBytes);
    const scan = await scanRecoveryTarget(
      source,
      backup.timelineId,
      params.walSegmentSizeBytes,
      backup.stopLsn,
      {
        ...(target.time ? { time: target.time } : {}),
        ...(target.xid !== undefined && target.xid !== 0n ? { xid: target.xid } : {}),
        ...(target.lsn !== undefined && isValidRecordOffset(target.lsn) ? { lsn: target.lsn } : {}),
      },
    );
    reached = scan.reached;
    if (scan.lastTime !== undefined) lastTime = scan.lastTime;
    if (scan.lastXid !== undefined) lastXid = BigInt(scan.lastXid);
    lastLsn = scan.lastLsn;
  }
  const upTo = `time ${formatLocalTime(lastTime)}, xid ${lastXid} and LSN ${formatLsn(lastLsn)}`;
  if (reached) {
    ctx.logger.info(`Backup validation completed successfully on ${upTo}`);
    return true;
  }
  ctx.logger.warning(`Recovery can be done up to ${upTo}`);
  throw new StrataError('wal', notEnoughWalMessage(target));
}
