import { posix } from 'node:path';
import pLimit from 'p-limit';
import { decodeBackupIdPrefix } from '../../catalog/backupId.js';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { DEFAULT_XLOG_SEG_SIZE_BYTES } from '../../catalog/instanceConfig.js';
import { lockBackupShared, releaseBackupLock } from '../../catalog/locks.js';
import type { BackupStatus, FileEntry } from '../../catalog/types.js';
import { StrataError, errorText, isStrataError } from '../../errors.js';
import type { Lsn } from '../../format/lsn.js';
import { BLCKSZ } from '../../format/page.js';
import type { ControlFile } from '../../format/pgControl.js';
import { XLOG_BLCKSZ, historyFileName } from '../../format/walNames.js';
import { parseTimelineHistory } from '../../format/timelineHistory.js';
import type { TimelineHistoryEntry } from '../../format/timelineHistory.js';
import type { Logger } from '../../log.js';
import { remoteStorageFor } from '../../storage/ssh/splitStorage.js';
import type { Storage } from '../../storage/storage.js';
import { storageErrorCode } from '../../storage/storage.js';
import type { CommandContext } from '../context.js';
import { prettySize, prettyTimeInterval } from '../show/prettyFormat.js';
import { BackupLinks, orphanDescendants } from '../validate/backupLinks.js';
import { FIRST_VERSION_WITH_HEADER_MAP, programVersionNumber } from '../validate/programVersion.js';
import { validateForRestore } from '../validate/validateForRestore.js';
import { chooseBackup } from './chooseBackup.js';
import {
  defaultRestoreCommand,
  isPitrRequested,
  isRestoreCommandConfigured,
  writeRecoveryConfiguration,
} from './recoveryConfig.js';
import { checkIncrementalCompatibility, isDirectoryEmpty } from './destination.js';
import { fileKey, findShiftLsn } from './incremental.js';
import {
  canonicalWalDir,
  checkTablespaces,
  checkWalDirEmpty,
  resolveExternalDirs,
} from './locations.js';
import {
  checkPartialRestoreOptions,
  isPartialRestore,
  selectExcludedDatabases,
} from './partialRestore.js';
import type { ExcludedDatabases } from './partialRestore.js';
import { canonicalizePath, parsePathMapping } from './pathMapping.js';
import { restoreChainFiles } from './restoreFiles.js';
import type { ChainMember, DestinationState } from './restoreFiles.js';
import { validateRecoveryTargetOptions } from './types.js';
import type { IncrementalMode, ParsedRecoveryTarget, RestoreParams } from './types.js';

/** recovery_target_lsn exists since PostgreSQL 10. */
const FIRST_MAJOR_WITH_TARGET_LSN = 10;
const DESTINATION_DIR_MODE = 0o700;
const RESTORABLE: BackupStatus[] = ['OK', 'DONE'];

function serverMajorOf(backup: CatalogBackup): number {
  const major = Number.parseInt(backup.serverVersion ?? '', 10);
  if (!Number.isFinite(major)) {
    throw new StrataError(
      'format',
      `Backup ${backup.id} has no valid server-version in its backup.control: "${backup.serverVersion ?? ''}"`,
    );
  }
  return major;
}

/**
 * The history of `timelineId` from the archive (restore.c read_timeline_history, strict): its
 * ancestor timelines with their switch LSNs.
 */
async function readTargetHistory(
  storage: Storage,
  walDir: string,
  timelineId: number,
  logger: Logger,
): Promise<TimelineHistoryEntry[]> {
  const history = await readTimelineHistory(storage, walDir, timelineId, logger, true);
  if (history === undefined) {
    throw new StrataError('restore', `Recovery target timeline ${timelineId} does not exist`);
  }
  return history;
}

/**
 * restore.c read_timeline_history: the ancestors of `timelineId` from the archive's history file;
 * undefined when the file is missing. A file without entries fails when `strict`, else reads as
 * missing.
 */
async function readTimelineHistory(
  storage: Storage,
  walDir: string,
  timelineId: number,
  logger: Logger,
  strict: boolean,
): Promise<TimelineHistoryEntry[] | undefined> {
  // Timeline 1 is where every cluster starts: it has no history file.
  if (timelineId === 1) return [];
  const path = posix.join(walDir, historyFileName(timelineId));
  let text: string;
  try {
    text = (await storage.readFile(path)).toString('utf8');
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return undefined;
    throw new StrataError('io', `Could not open file "${path}": ${errorText(error)}`, {
      cause: error,
    });
  }
  const history = parseTimelineHistory(text, timelineId);
  if (history.length === 0) {
    logger.warning(`History file is corrupted or missing: "${path}"`);
    if (!strict) return undefined;
    throw new StrataError(
      'restore',
      `Failed to get history file for target timeline ${timelineId}`,
    );
  }
  return history;
}

/**
 * §6.3: a missing ancestor orphans every OK/DONE descendant of the missing ID and fails the
 * restore; an intact chain with an invalid member orphans that member's OK/DONE descendants.
 */
async function resolveChain(
  catalog: BackupCatalog,
  backups: CatalogBackup[],
  dest: CatalogBackup,
  logger: Logger,
): Promise<CatalogBackup[]> {
  const resolved = catalog.resolveBackupChain(backups, dest.id);
  const links = new BackupLinks(backups);
  if (resolved.broken) {
    const missingId = resolved.missingParentId;
    const missingStartTime = missingId === undefined ? 0 : decodeBackupIdPrefix(missingId);
    for (const backup of backups) {
      if (missingStartTime === 0 || !links.isDescendantOf(missingStartTime, backup)) continue;
      if (RESTORABLE.includes(backup.status)) {
        await catalog.setBackupStatus(backup, 'ORPHAN', { logger });
        logger.warning(
          `Backup ${backup.id} is orphaned because his parent ${missingId} is missing`,
        );
      } else {
        logger.warning(`Backup ${backup.id} has missing parent ${missingId}`);
      }
    }
    throw new StrataError('restore', `Restore of backup ${dest.id} failed.`);
  }
  if (resolved.invalid !== undefined)
    await orphanDescendants(catalog, links, resolved.invalid, logger);
  return resolved.chain;
}

/** §6.6 ending: the destination's status after validation decides whether the restore goes on. */
function checkDestinationStatus(dest: CatalogBackup, params: RestoreParams, logger: Logger): void {
  if (RESTORABLE.includes(dest.status)) {
    if (params.noValidate || params.force)
      logger.warning(`Backup ${dest.id} is used without validation.`);
    else logger.info(`Backup ${dest.id} is valid.`);
    return;
  }
  if (dest.status === 'CORRUPT' || dest.status === 'ORPHAN') {
    const text = `Backup ${dest.id} is ${dest.status === 'CORRUPT' ? 'corrupt' : 'orphan'}.`;
    if (!params.force) throw new StrataError('corrupt', text);
    logger.warning(text);
    return;
  }
  throw new StrataError('restore', `Backup ${dest.id} has status: ${dest.status}`);
}

/**
 * restore.c restore_chain's checks on every member before a file is written; pg_probackup refuses
 * page and WAL block sizes other than its own.
 */
function checkChainMembers(chain: CatalogBackup[], params: RestoreParams, logger: Logger): void {
  for (const backup of chain) {
    if (!RESTORABLE.includes(backup.status)) {
      if (!params.force) {
        throw new StrataError(
          'restore',
          `Backup ${backup.id} cannot be restored because it is not valid`,
        );
      }
      logger.warning(`Backup ${backup.id} is not valid, restore is forced`);
    }
    if (backup.blockSize !== BLCKSZ) {
      throw new StrataError(
        'restore',
        `BLCKSZ(${backup.blockSize}) is not compatible(${BLCKSZ} expected)`,
      );
    }
    if (backup.xlogBlockSize !== XLOG_BLCKSZ) {
      throw new StrataError(
        'restore',
        `XLOG_BLCKSZ(${backup.xlogBlockSize}) is not compatible(${XLOG_BLCKSZ} expected)`,
      );
    }
  }
}

async function loadChainMembers(
  catalog: BackupCatalog,
  chain: CatalogBackup[],
  destEntries: FileEntry[],
): Promise<ChainMember[]> {
  const members: ChainMember[] = [];
  for (const backup of [...chain].reverse()) {
    const entries = members.length === 0 ? destEntries : await catalog.readContentList(backup);
    const files = new Map<string, FileEntry>();
    for (const entry of entries) files.set(fileKey(entry.externalDirNum, entry.path), entry);
    members.push({ backup, files, programVersionNum: programVersionNumber(backup.programVersion) });
  }
  return members;
}

/** Wall-clock seconds between two `ctx.now()` readings, counted as pg_probackup's time() does. */
function elapsedSeconds(startMs: number, endMs: number): number {
  return Math.floor(endMs / 1000) - Math.floor(startMs / 1000);
}

async function syncRestoredFiles(
  storage: Storage,
  files: string[],
  directories: string[],
  pgdata: string,
  threads: number,
): Promise<void> {
  const limit = pLimit(Math.max(1, threads));
  await Promise.all(files.map((path) => limit(() => storage.syncFile(path))));
  await Promise.all([pgdata, ...directories].map((path) => limit(() => storage.syncDir(path))));
}

/** What a restore did, for callers that report beyond the log. */
export interface RestoreResult {
  backupId: string;
  /** The mode the files were restored in: `-I` downgrades to `none` for an empty destination. */
  incrementalMode: IncrementalMode;
  transferredBytes: number;
  /** Data pages written into the destination. */
  pagesWritten: number;
  /** Data pages already in the destination that an incremental restore left in place. */
  pagesKept: number;
  /** Databases a partial restore left as empty files, to be dropped after the server starts. */
  excludedDatabases: string[];
}

interface DestinationCheck {
  mode: IncrementalMode;
  pgdataIsEmpty: boolean;
  /** `--force` over another system's PGDATA. */
  wipe: boolean;
  control: ControlFile | undefined;
}

/** cli-behaviour.md §6.1: an empty destination, or one an incremental restore may reuse. */
async function checkDestination(
  storage: Storage,
  pgdata: string,
  params: RestoreParams,
  systemIdentifier: bigint | undefined,
  logger: Logger,
): Promise<DestinationCheck> {
  const mode = params.incrementalMode ?? 'none';
  if (await isDirectoryEmpty(storage, pgdata)) {
    return { mode, pgdataIsEmpty: true, wipe: false, control: undefined };
  }
  if (mode === 'none') {
    throw new StrataError('restore', `Restore destination is not empty: "${pgdata}"`);
  }
  logger.info(`Running incremental restore into nonempty directory: "${pgdata}"`);
  const checked = await checkIncrementalCompatibility(
    storage,
    {
      pgdata,
      mode,
      systemIdentifier,
      partial: isPartialRestore(params),
      destroyAllOtherDbs: params.destroyAllOtherDbs ?? false,
      force: params.force,
    },
    logger,
  );
  return { mode, pgdataIsEmpty: false, wipe: checked.cleanup, control: checked.control };
}

/**
 * `restore`: rebuilds a cluster's data directory from a backup chain of the catalog and writes
 * the recovery configuration (cli-behaviour.md §6, catalog-format.md §14–15). PGDATA must be
 * empty or missing, unless `-I checksum|lsn` reuses what it holds.
 */
export async function restoreBackup(
  ctx: CommandContext,
  params: RestoreParams,
): Promise<RestoreResult> {
  const { storage, logger } = ctx;
  checkPartialRestoreOptions(params);
  const tablespaceMappings = (params.tablespaceMapping ?? []).map((arg) =>
    parsePathMapping(arg, 'tablespace'),
  );
  const externalMappings = (params.externalMapping ?? []).map((arg) =>
    parsePathMapping(arg, 'external directory'),
  );
  const waldir = params.waldir !== undefined ? canonicalWalDir(params.waldir) : undefined;
  const parsedTarget: ParsedRecoveryTarget = validateRecoveryTargetOptions(params.target);
  if (!posix.isAbsolute(params.pgdata)) {
    throw new StrataError('usage', `-D, --pgdata must be an absolute path: ${params.pgdata}`);
  }
  const pgdata = canonicalizePath(params.pgdata);

  const catalog = new BackupCatalog(storage, params.backupPath);
  await catalog.assertInstanceExists(params.instance);
  const instanceConfig = await catalog.readInstanceConfig(params.instance);
  const destinationCheck = await checkDestination(
    storage,
    pgdata,
    params,
    instanceConfig.systemIdentifier,
    logger,
  );
  let mode = destinationCheck.mode;
  logger.verbose('Restore begin.');
  await catalog.markDeadRunningBackupsAsError(params.instance, logger, ctx.now);
  const backups = await catalog.listBackups(params.instance);
  const walDir = catalog.walDir(params.instance);

  const dest = await chooseBackup({
    backups,
    backupId: params.backupId,
    target: params.target,
    parsedTarget,
    noValidate: params.noValidate,
    force: params.force,
    readTargetHistory: (timelineId) => readTargetHistory(storage, walDir, timelineId, logger),
    logger,
  });
  const chain = await resolveChain(catalog, backups, dest, logger);
  const destEntries = await catalog.readContentList(dest);
  const tablespaces = await checkTablespaces(
    storage,
    {
      dest,
      destEntries,
      pgdata,
      mappings: tablespaceMappings,
      incremental: mode !== 'none',
      force: params.force,
      pgdataIsEmpty: destinationCheck.pgdataIsEmpty,
      noValidate: params.noValidate || params.force,
    },
    logger,
  );
  if (
    mode !== 'none' &&
    !destinationCheck.wipe &&
    destinationCheck.pgdataIsEmpty &&
    tablespaces.allEmpty
  ) {
    logger.info(
      'Destination directory and tablespace directories are empty, disable incremental restore',
    );
    mode = 'none';
  }
  const externalDirs = params.skipExternalDirs
    ? undefined
    : await resolveExternalDirs(
        storage,
        {
          dest,
          pgdata,
          mappings: externalMappings,
          incremental: mode !== 'none',
          tablespaces: tablespaces.targets,
        },
        logger,
      );
  if (waldir !== undefined) await checkWalDirEmpty(storage, waldir);

  let shiftLsn: Lsn = 0n;
  if (mode === 'lsn' && !destinationCheck.wipe && destinationCheck.control !== undefined) {
    shiftLsn = await findShiftLsn(
      [...chain].reverse(),
      destinationCheck.control,
      (timelineId) => readTimelineHistory(storage, walDir, timelineId, logger, false),
      logger,
    );
  }

  const locked: CatalogBackup[] = [];
  let result: RestoreResult;
  try {
    for (const backup of chain) {
      await lockBackupShared(storage, backup.dir, { backupId: backup.id, logger });
      locked.push(backup);
    }

    if (!params.noValidate && !params.force) {
      await validateForRestore(ctx, {
        catalog,
        instance: params.instance,
        chain,
        target: {
          time: parsedTarget.time,
          xid: parsedTarget.xid,
          lsn: parsedTarget.lsn,
          timeline: parsedTarget.timelineId,
        },
        threads: params.threads,
        skipBlockValidation: params.skipBlockValidation,
        walSegmentSizeBytes: instanceConfig.xlogSegSize ?? DEFAULT_XLOG_SEG_SIZE_BYTES,
      });
    }
    checkDestinationStatus(dest, params, logger);

    // After validation, so that the database_map can be trusted (restore.c).
    const excluded: ExcludedDatabases | undefined = isPartialRestore(params)
      ? await selectExcludedDatabases(storage, dest, destEntries, params)
      : undefined;

    const serverMajor = serverMajorOf(dest);
    if (params.target.lsn !== undefined && serverMajor < FIRST_MAJOR_WITH_TARGET_LSN) {
      throw new StrataError(
        'restore',
        `Backup ${dest.id} was created for version ${dest.serverVersion ?? ''} which doesn't support recovery_target_lsn`,
      );
    }
    checkChainMembers(chain, params, logger);
    if (
      mode !== 'none' &&
      programVersionNumber(dest.programVersion) < FIRST_VERSION_WITH_HEADER_MAP
    ) {
      // pg_probackup's text names 2.3.0 although its threshold is 2.4.0 (cli-behaviour.md §18).
      throw new StrataError(
        'restore',
        'Incremental restore is not possible for backups older than 2.3.0 version',
      );
    }

    logger.info(`Restoring the database from backup ${dest.id}`);
    const members = await loadChainMembers(catalog, chain, destEntries);
    await storage.mkdir(pgdata, { recursive: true, mode: DESTINATION_DIR_MODE });

    const destination: DestinationState = destinationCheck.wipe
      ? { kind: 'wipe' }
      : mode === 'none'
        ? { kind: 'empty' }
        : { kind: 'incremental', mode, shiftLsn };
    const destBytes = dest.stream ? dest.pgdataBytes + dest.walBytes : dest.pgdataBytes;
    let startMs = ctx.now();
    const restored = await restoreChainFiles({
      storage,
      logger,
      signal: ctx.signal,
      chain: members,
      destEntries,
      pgdata,
      tablespaces: tablespaces.targets,
      threads: params.threads,
      progress: params.progress,
      destination,
      now: ctx.now,
      onFilesStart: () => {
        logger.info(`Start restoring backup files. PGDATA size: ${prettySize(destBytes)}`);
        startMs = ctx.now();
      },
      ...(externalDirs !== undefined ? { externalDirs } : {}),
      ...(waldir !== undefined ? { waldir } : {}),
      ...(excluded !== undefined ? { excludedDbOids: excluded.oids } : {}),
    });
    const elapsed = prettyTimeInterval(elapsedSeconds(startMs, ctx.now()));
    const transferred = prettySize(restored.transferredBytes);
    if (restored.failure !== undefined) {
      logger.log('ERROR', restored.failure.message);
      throw new StrataError(
        restored.failure.code,
        `Backup files restoring failed. Transfered bytes: ${transferred}, time elapsed: ${elapsed}`,
        { cause: restored.failure },
      );
    }
    logger.info(
      `Backup files are restored. Transfered bytes: ${transferred}, time elapsed: ${elapsed}`,
    );
    const ratio = destBytes > 0 ? Math.round((restored.transferredBytes / destBytes) * 100) : 0;
    logger.info(
      `Restore incremental ratio (less is better): ${ratio}% (${transferred}/${prettySize(destBytes)})`,
    );
    if (destination.kind === 'incremental') {
      logger.info(
        `Incremental restore in '${destination.mode}' mode: ${restored.pagesWritten} data pages ` +
          `written, ${restored.pagesKept} kept from the destination directory`,
      );
    }

    if (params.noSync) {
      logger.warning('Restored files are not synced to disk');
    } else {
      logger.info('Syncing restored files to disk');
      const syncStartMs = ctx.now();
      await syncRestoredFiles(
        storage,
        restored.restoredFiles,
        restored.restoredDirectories,
        pgdata,
        params.threads,
      );
      logger.info(
        `Restored backup files are synced, time elapsed: ${prettyTimeInterval(elapsedSeconds(syncStartMs, ctx.now()))}`,
      );
    }

    const recoveryInput = {
      backupId: dest.id,
      serverMajor,
      stream: dest.stream,
      target: params.target,
      restoreAsReplica: params.restoreAsReplica,
      primaryConninfo: params.primaryConninfo ?? dest.primaryConninfo,
      primarySlotName: params.primarySlotName,
      // Command line first, then the instance's pg_probackup.conf (cli-behaviour.md §1.4).
      restoreCommand: params.restoreCommand ?? instanceConfig.restoreCommand,
      generatedRestoreCommand: defaultRestoreCommand({
        strataCommandPath: params.strataCommandPath,
        backupPath: params.backupPath,
        instance: params.instance,
        archiveHost: params.archiveHost ?? instanceConfig.archiveHost,
        archivePort: params.archivePort ?? instanceConfig.archivePort,
        archiveUser: params.archiveUser ?? instanceConfig.archiveUser,
      }),
      nowSec: Math.floor(ctx.now() / 1000),
    };
    const remotePgdata = remoteStorageFor(storage, pgdata);
    if (
      remotePgdata !== undefined &&
      remoteStorageFor(storage, params.backupPath) === undefined &&
      isPitrRequested(recoveryInput) &&
      !isRestoreCommandConfigured(recoveryInput.restoreCommand) &&
      !(params.archiveHost ?? instanceConfig.archiveHost)
    ) {
      logger.warning(
        `PostgreSQL on ${remotePgdata.description} will run restore_command "${recoveryInput.generatedRestoreCommand}" ` +
          'there: it needs Strata at that path on that host and a way to this catalog. Set archive-host and ' +
          `archive-user (set-config -B ${params.backupPath} --instance ${params.instance} --archive-host=<this host> ` +
          '--archive-user=<user>), or restore-command, before restoring, or give the restored server the WAL it needs another way',
      );
    }
    if (parsedTarget.timelineId !== undefined && dest.stream && !isPitrRequested(recoveryInput)) {
      logger.warning(
        "The '--recovery-target-timeline' option applied for STREAM backup. The timeline number will be ignored.",
      );
    }
    await writeRecoveryConfiguration(storage, pgdata, recoveryInput, {
      sync: !params.noSync,
      logger,
    });
    if (excluded !== undefined) {
      logger.info(
        `Partial restore: the files of databases ${excluded.names.map((name) => `"${name}"`).join(', ')} ` +
          'are left empty; drop them (DROP DATABASE) once the server has started',
      );
    }
    result = {
      backupId: dest.id,
      incrementalMode: destination.kind === 'incremental' ? destination.mode : 'none',
      transferredBytes: restored.transferredBytes,
      pagesWritten: restored.pagesWritten,
      pagesKept: restored.pagesKept,
      excludedDatabases: excluded?.names ?? [],
    };
  } catch (error) {
    if (isStrataError(error)) throw error;
    throw new StrataError('restore', `Restore of backup ${dest.id} failed: ${errorText(error)}`, {
      cause: error,
    });
  } finally {
    for (const backup of locked.reverse()) {
      await releaseBackupLock(storage, backup.dir, { backupId: backup.id, logger });
    }
  }

  logger.info(`Restore of backup ${dest.id} completed.`);
  return result;
}
