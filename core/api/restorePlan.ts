import { posix } from 'node:path';
import { BackupCatalog } from '../catalog/catalog.js';
import type { CatalogBackup } from '../catalog/catalog.js';
import { DEFAULT_XLOG_SEG_SIZE_BYTES } from '../catalog/instanceConfig.js';
import { ArchiveWalSource } from '../commands/archive/walSources.js';
import type { CommandContext } from '../commands/context.js';
import { chooseBackup } from '../commands/restore/chooseBackup.js';
import {
  checkPartialRestoreOptions,
  selectExcludedDatabases,
} from '../commands/restore/partialRestore.js';
import { validateRecoveryTargetOptions } from '../commands/restore/types.js';
import type { ParsedRecoveryTarget } from '../commands/restore/types.js';
import { parentTimelines } from '../commands/show/showJson.js';
import {
  backupWalSource,
  validateBackupWal,
  validateRecoveryTargetWal,
} from '../commands/validate/backupWal.js';
import { StrataError, errorText, isStrataError } from '../errors.js';
import { formatLsn } from '../format/lsn.js';
import type { Lsn } from '../format/lsn.js';
import { parseTimelineHistory } from '../format/timelineHistory.js';
import type { TimelineHistoryEntry } from '../format/timelineHistory.js';
import { WalReader } from '../format/wal/walReader.js';
import { parseRestorePoint } from '../format/wal/walXact.js';
import { XLOG_BLCKSZ, historyFileName } from '../format/walNames.js';
import { createMemoryLogger } from '../log.js';
import type { Storage } from '../storage/storage.js';
import { storageErrorCode } from '../storage/storage.js';
import { restoreCommandLine, restoreTargetOf } from './cliCommand.js';
import type { RestorePlan, RestoreRequest } from './contract.js';
import { toBackupSummary } from './views.js';

/**
 * The restore wizard's step 3: which backup and chain a restore to the requested target would
 * use, and whether the WAL gets there — answered with the engine's own rules (restore's
 * chooseBackup and chain resolution, validate's WAL checks) but without the restore's side
 * effects: no lock is taken, no status is changed, nothing is written. Problems come back as
 * plain words in the plan; only a catalog that cannot be read at all throws.
 */

const RESTORABLE = ['OK', 'DONE'];
/** SizeOfXLogShortPHD: no record starts inside a WAL page's header. */
const SIZE_OF_XLOG_SHORT_PHD = 24n;

/** The archive's history of `timelineId` (its ancestors), as restore reads it; throws when missing. */
async function readTargetHistory(
  storage: Storage,
  walDir: string,
  timelineId: number,
): Promise<TimelineHistoryEntry[]> {
  // Timeline 1 is where every cluster starts: it has no history file.
  if (timelineId === 1) return [];
  const path = posix.join(walDir, historyFileName(timelineId));
  let text: string;
  try {
    text = (await storage.readFile(path)).toString('utf8');
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') {
      throw new StrataError(
        'restore',
        `Recovery target timeline ${timelineId} does not exist: "${path}" is not in the archive`,
      );
    }
    throw new StrataError('io', `Could not open file "${path}": ${errorText(error)}`, {
      cause: error,
    });
  }
  const history = parseTimelineHistory(text, timelineId);
  if (history.length === 0)
    throw new StrataError('restore', `History file is corrupted or missing: "${path}"`);
  return history;
}

/** A restore point after the backup's stop LSN on its timeline, read from the archive. */
async function findRestorePoint(
  storage: Storage,
  walDir: string,
  backup: CatalogBackup,
  walSegmentSizeBytes: number,
  name: string,
): Promise<{ found: boolean; endReason: string }> {
  const reader = new WalReader({
    source: new ArchiveWalSource(storage, walDir, walSegmentSizeBytes),
    timelineId: backup.timelineId,
    walSegmentSizeBytes,
  });
  reader.beginRead(backup.stopLsn);
  for (;;) {
    const result = await reader.readRecord();
    if (result.kind === 'end') return { found: false, endReason: result.message };
    if (parseRestorePoint(result.record)?.name === name) return { found: true, endReason: '' };
  }
}

/**
 * An LSN target as validate can check it. Recovery stops at the first record at or past any LSN,
 * but validate only checks LSNs a record could start at (XRecOffIsValid): one inside a page
 * header is moved to just past the short header, where the first record after it starts at the
 * earliest, so the check still asks for WAL reaching the target.
 */
function checkableLsn(lsn: Lsn): Lsn {
  const offset = lsn % BigInt(XLOG_BLCKSZ);
  return offset < SIZE_OF_XLOG_SHORT_PHD ? lsn - offset + SIZE_OF_XLOG_SHORT_PHD : lsn;
}

function warningsOf(logger: ReturnType<typeof createMemoryLogger>, from: number): string[] {
  return logger.records
    .slice(from)
    .filter((record) => record.level === 'WARNING')
    .map((record) => record.message);
}

async function checkTargetWal(
  ctx: CommandContext,
  catalog: BackupCatalog,
  request: RestoreRequest,
  dest: CatalogBackup,
  parsed: ParsedRecoveryTarget,
  walSegmentSizeBytes: number,
): Promise<string | null> {
  const logger = createMemoryLogger();
  const quiet: CommandContext = { ...ctx, logger };
  const walDir = catalog.walDir(request.instance);
  const walSource = backupWalSource(
    ctx.storage,
    catalog,
    request.instance,
    dest,
    walSegmentSizeBytes,
  );
  const consistent = await validateBackupWal(quiet, {
    backup: dest,
    walSource,
    walSegmentSizeBytes,
  });
  if (!consistent) {
    return `${warningsOf(logger, 0).join('. ')}. Without this WAL the backup cannot be made consistent.`;
  }
  const target = request.target;
  if (target.kind === 'time' || target.kind === 'xid' || target.kind === 'lsn') {
    const before = logger.records.length;
    const lsn = parsed.lsn === undefined ? undefined : checkableLsn(parsed.lsn);
    try {
      await validateRecoveryTargetWal(quiet, {
        backup: dest,
        archiveDir: walDir,
        target: { time: parsed.time, xid: parsed.xid, lsn },
        walSegmentSizeBytes,
      });
    } catch (error) {
      if (!isStrataError(error)) throw error;
      const message =
        lsn !== undefined && parsed.lsn !== undefined
          ? error.message.replace(formatLsn(lsn), formatLsn(parsed.lsn))
          : error.message;
      return [message, ...warningsOf(logger, before)].join('. ');
    }
  }
  if (target.kind === 'name') {
    const scan = await findRestorePoint(
      ctx.storage,
      walDir,
      dest,
      walSegmentSizeBytes,
      target.name,
    );
    if (!scan.found) {
      return (
        `Restore point "${target.name}" is not in the archived WAL after backup ${dest.id} ` +
        `(stop LSN ${formatLsn(dest.stopLsn)}): ${scan.endReason}. Choose an earlier backup or another target.`
      );
    }
  }
  return null;
}

async function destinationProblem(
  storage: Storage,
  request: RestoreRequest,
): Promise<string | null> {
  if (request.incrementalMode !== undefined && request.incrementalMode !== 'none') return null;
  try {
    const entries = await storage.readDir(request.destination);
    if (entries.length === 0) return null;
    return (
      `Restore destination is not empty: "${request.destination}". Choose an empty or new directory, ` +
      'or an incremental mode (checksum or lsn) to reuse what it holds.'
    );
  } catch (error) {
    const code = storageErrorCode(error);
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR')
      return `Restore destination "${request.destination}" is a file, not a directory.`;
    throw error;
  }
}

/**
 * `ctx.storage` reaches both the catalog and the destination (a SplitStorage when they are on two
 * hosts); `cliCommand` is the equivalent command, restoreCommandLine's when absent.
 */
export async function planRestore(
  ctx: CommandContext,
  request: RestoreRequest,
  cliCommand = restoreCommandLine(request),
): Promise<RestorePlan> {
  const refused = (problem: string): RestorePlan => ({
    backupId: null,
    chain: [],
    walCoversTarget: false,
    problem,
    cliCommand,
  });
  const catalog = new BackupCatalog(ctx.storage, request.backupPath);
  await catalog.assertInstanceExists(request.instance);
  const config = await catalog.readInstanceConfig(request.instance);
  const walSegmentSizeBytes = config.xlogSegSize || DEFAULT_XLOG_SEG_SIZE_BYTES;
  const target = restoreTargetOf(request);
  let parsed: ParsedRecoveryTarget;
  try {
    parsed = validateRecoveryTargetOptions(target);
    checkPartialRestoreOptions({ dbInclude: request.includeDatabases });
  } catch (error) {
    if (!isStrataError(error)) throw error;
    return refused(error.message);
  }

  const backups = await catalog.listBackups(request.instance);
  let dest: CatalogBackup;
  try {
    dest = await chooseBackup({
      backups,
      backupId: request.backupId,
      target,
      parsedTarget: parsed,
      noValidate: false,
      force: false,
      readTargetHistory: (timelineId) =>
        readTargetHistory(ctx.storage, catalog.walDir(request.instance), timelineId),
      logger: createMemoryLogger(),
    });
  } catch (error) {
    if (!isStrataError(error)) throw error;
    return refused(
      error.code === 'backup-not-found' && request.backupId === undefined
        ? 'No OK backup ends before this target: a restore needs a backup that finished before the point it recovers to.'
        : error.message,
    );
  }

  const parentTli = parentTimelines(backups);
  const resolved = catalog.resolveBackupChain(backups, dest.id);
  const chain = resolved.chain.map((backup) =>
    toBackupSummary(request.instance, backup, parentTli.get(backup.id) ?? 0),
  );
  const problems: string[] = [];
  let walCoversTarget = false;
  if (resolved.broken) {
    problems.push(
      resolved.missingParentId !== undefined
        ? `Backup ${dest.id} cannot be restored: its parent ${resolved.missingParentId} is missing from the catalog.`
        : `Backup ${dest.id} cannot be restored: its chain does not reach a FULL backup.`,
    );
  } else if (resolved.invalid !== undefined) {
    problems.push(
      `Backup ${resolved.invalid.id} in the chain of ${dest.id} has status ${resolved.invalid.status}: ` +
        'validate it, or choose another backup.',
    );
  } else if (!RESTORABLE.includes(dest.status)) {
    problems.push(
      `Backup ${dest.id} has status ${dest.status}: validate it, or choose another backup.`,
    );
  } else {
    // A damaged backup.control (an LSN no record can start at) or an unreadable archive is a
    // reason the target cannot be reached, not a failure of the plan.
    const walProblem = await checkTargetWal(
      ctx,
      catalog,
      request,
      dest,
      parsed,
      walSegmentSizeBytes,
    ).catch((error: unknown) => {
      if (!isStrataError(error)) throw error;
      return error.message;
    });
    walCoversTarget = walProblem === null;
    if (walProblem !== null) problems.push(walProblem);
  }

  if (request.includeDatabases !== undefined) {
    try {
      await selectExcludedDatabases(ctx.storage, dest, await catalog.readContentList(dest), {
        dbInclude: request.includeDatabases,
      });
    } catch (error) {
      if (!isStrataError(error)) throw error;
      problems.push(error.message);
    }
  }
  const destination = await destinationProblem(ctx.storage, request);
  if (destination !== null) problems.push(destination);

  return {
    backupId: dest.id,
    chain,
    walCoversTarget,
    problem: problems.length > 0 ? problems.join('\n') : null,
    cliCommand,
  };
}
