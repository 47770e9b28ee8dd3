import pLimit from 'p-limit';
import { formatLocalTime } from '../../catalog/time.js';
import { StrataError, errorText, isStrataError } from '../../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../../format/lsn.js';
import {
  parseControlFile,
  withMinRecoveryPoint,
  type ControlFile,
} from '../../format/pgControl.js';
import { isLsnOnTimelineHistory, parseTimelineHistory } from '../../format/timelineHistory.js';
import { abortBackup, startBackup, stopBackup } from '../../postgres/backupSession.js';
import {
  connectPostgres,
  type ConnectionOptions,
  type PgSession,
} from '../../postgres/connection.js';
import {
  checkServerForBackup,
  readServerFacts,
  type ServerFacts,
} from '../../postgres/serverFacts.js';
import { WalReceiver, fetchTimelineHistory } from '../../postgres/walReceiver.js';
import { storageErrorCode, type Storage } from '../../storage/storage.js';
import { changedBlocksFromPtrack, type ChangedBlockMap } from '../backup/changedBlocks.js';
import { copyWholeFile } from '../backup/dataFileCopy.js';
import { listPgdata, type SourceEntry } from '../backup/pgdataWalk.js';
import { PROGRAM_VERSION, type CommandContext } from '../context.js';
import { prettySize, prettyTimeInterval } from '../show/prettyFormat.js';
import { catchupDataFile } from './catchupFiles.js';
import { ExcludePaths, mappedTablespacePath, parseTablespaceMapping } from './pathRules.js';
import { postmasterState } from './postmasterPid.js';

export type CatchupMode = 'FULL' | 'DELTA' | 'PTRACK';

export interface CatchupParams {
  backupMode: CatchupMode;
  sourcePgdata: string;
  destinationPgdata: string;
  connection: ConnectionOptions;
  /** `--stream` was given; catchup always streams and says so when it was not. */
  stream: boolean;
  threads: number;
  progress: boolean;
  dryRun: boolean;
  noSync: boolean;
  /** `-x, --exclude-path`, repeatable. */
  excludePaths: string[];
  /** `-T OLDDIR=NEWDIR`, repeatable. */
  tablespaceMapping: string[];
  smoothCheckpoint: boolean;
  slot?: string;
  tempSlot: boolean;
  permSlot: boolean;
  /** How long pg_backup_stop and the end of WAL streaming may take; 300 s by default. */
  archiveTimeoutSec?: number;
  /** `-E` / external-dirs: refused, catchup copies PGDATA only. */
  externalDirs?: string;
}

export interface CatchupResult {
  startLsn: Lsn;
  stopLsn: Lsn;
  timelineId: number;
  /** DELTA / PTRACK: the destination's checkpoint redo LSN the copy started from. */
  syncLsn?: Lsn;
  /** Size of the source's PGDATA without the excluded files (directories count 4096). */
  sourcePgdataBytes: number;
  excludedBytes: number;
  /** Bytes of data and other files written into the destination (would be, with --dry-run). */
  transferredDataBytes: number;
  transferredWalBytes: number;
  /** Destination paths removed (would be, with --dry-run) because the source no longer has them. */
  removedPaths: string[];
}

/** pg_probackup keeps the destination's old pg_control here while the catchup runs. */
const CONTROL_BACKUP_PATH = 'global/pg_control.pbk.bak';
const CONTROL_PATH = 'global/pg_control';
const DEFAULT_ARCHIVE_TIMEOUT_SEC = 300;
/** pg_control may be read while the server rewrites it; a torn read fails its CRC. */
const CONTROL_READ_ATTEMPTS = 10;

async function readControlFile(
  storage: Storage,
  path: string,
): Promise<{ bytes: Buffer; control: ControlFile }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < CONTROL_READ_ATTEMPTS; attempt++) {
    const bytes = await storage.readFile(path);
    try {
      return { bytes, control: parseControlFile(bytes) };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

/** pg_probackup's dir_is_empty(): a directory that does not exist is empty. */
async function isDirEmpty(storage: Storage, path: string): Promise<boolean> {
  try {
    return (await storage.readDir(path)).length === 0;
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return true;
    throw new StrataError('io', `Cannot open directory "${path}": ${errorText(error)}`, {
      cause: error,
    });
  }
}

/** get_control_file_or_back_file(): a catchup that failed half-way left only the renamed copy. */
async function readDestinationControl(storage: Storage, pgdata: string): Promise<ControlFile> {
  for (const path of [CONTROL_PATH, CONTROL_BACKUP_PATH]) {
    if (await storage.stat(`${pgdata}/${path}`))
      return (await readControlFile(storage, `${pgdata}/${path}`)).control;
  }
  throw new StrataError(
    'io',
    `Cannot read "${pgdata}/${CONTROL_PATH}": the destination has no pg_control`,
  );
}

function tliHex(timelineId: number): string {
  return timelineId.toString(16).toUpperCase();
}

/**
 * ptrack 2.x usable on the source (pg_probackup's catchup preflight, in its messages); returns
 * the quoted schema of the extension.
 */
async function checkPtrackUsable(session: PgSession): Promise<string> {
  const [extension] = await session.query<{ schema: string }>(
    "SELECT n.nspname AS schema FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'ptrack'",
  );
  if (!extension)
    throw new StrataError('postgres', 'This PostgreSQL instance does not support ptrack');
  const schema = `"${extension.schema.replace(/"/g, '""')}"`;
  const [version] = await session.query<{ v: string }>(`SELECT ${schema}.ptrack_version() AS v`);
  if (!version || Number.parseFloat(version.v) < 2) {
    throw new StrataError(
      'postgres',
      'Ptrack extension is too old.\nUpgrade ptrack to version >= 2',
    );
  }
  const [mapSize] = await session.query<{ setting: string }>(
    "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'ptrack.map_size'",
  );
  if (!mapSize || Number(mapSize.setting) === 0)
    throw new StrataError('postgres', 'Ptrack is disabled');
  return schema;
}

/** ptrack tracks changes from its init LSN on: the destination must not be older than that. */
async function checkPtrackCoversDestination(
  session: PgSession,
  schema: string,
  syncLsn: Lsn,
): Promise<void> {
  const [row] = await session.query<{ lsn: string }>(
    `SELECT ${schema}.ptrack_init_lsn()::text AS lsn`,
  );
  const initLsn = row ? parseLsn(row.lsn) : 0n;
  if (initLsn === 0n || initLsn > syncLsn) {
    throw new StrataError(
      'postgres',
      `LSN from ptrack_control in source ${formatLsn(initLsn)} is greater than checkpoint LSN in destination ${formatLsn(syncLsn)}.\nYou can perform only FULL catchup.`,
    );
  }
}

/**
 * Every tablespace of the source must be mapped with -T for a local catchup (the destination
 * would otherwise share the source's tablespace directories); in FULL mode mapped targets must
 * be empty. Tablespaces inside PGDATA (in-place, relative locations) need no mapping.
 */
async function checkTablespaceMapping(
  ctx: CommandContext,
  session: PgSession,
  mapping: ReadonlyMap<string, string>,
  mode: CatchupMode,
): Promise<void> {
  const rows = await session.query<{ location: string }>(
    "SELECT pg_catalog.pg_tablespace_location(oid) AS location FROM pg_catalog.pg_tablespace WHERE pg_catalog.pg_tablespace_location(oid) <> ''",
  );
  for (const { location } of rows) {
    if (!location.startsWith('/')) continue;
    const linked = mappedTablespacePath(mapping, location);
    if (linked === location) {
      throw new StrataError(
        'usage',
        `Local catchup executed, but source database contains tablespace ("${location}"), that is not listed in the map`,
      );
    }
    if (mode === 'FULL' && !(await isDirEmpty(ctx.storage, linked))) {
      throw new StrataError(
        'usage',
        `Target mapped tablespace directory ("${linked}") is not empty in FULL catchup`,
      );
    }
  }
}

interface DestinationState {
  /** Redo LSN of the destination's last checkpoint: it holds every change before it. */
  syncLsn: Lsn;
  timelineId: number;
}

/** A destination that is to be brought forward must not be in use or half-restored. */
async function checkDestinationIdle(ctx: CommandContext, destination: string): Promise<void> {
  const state = await postmasterState(ctx.storage, destination);
  if (state.kind === 'mangled') {
    throw new StrataError(
      'restore',
      `Pid file "${state.pidFile}" is mangled, cannot determine whether postmaster is running or not`,
    );
  }
  if (state.kind === 'running') {
    throw new StrataError(
      'restore',
      `Postmaster with pid ${state.pid} is running in destination directory "${destination}"`,
    );
  }
  if (await ctx.storage.stat(`${destination}/backup_label`)) {
    throw new StrataError('restore', 'Destination directory contains "backup_label" file');
  }
}

/** The destination's pg_control: same system as the source, and where its copy stands. */
async function destinationStateOf(
  ctx: CommandContext,
  destination: string,
  facts: ServerFacts,
): Promise<DestinationState> {
  const control = await readDestinationControl(ctx.storage, destination);
  if (control.systemIdentifier !== facts.systemIdentifier) {
    throw new StrataError(
      'restore',
      `Database identifiers mismatch: we connected to DB id ${facts.systemIdentifier}, but in "${destination}" we found id ${control.systemIdentifier}`,
    );
  }
  return {
    syncLsn: control.checkPointCopy.redo,
    timelineId: control.checkPointCopy.thisTimeLineId,
  };
}

/**
 * The destination's redo point must lie on the source's timeline history, or WAL replay from
 * the source's start point could not continue the destination's state.
 */
async function checkTimelines(
  ctx: CommandContext,
  connection: ConnectionOptions,
  sourceTimelineId: number,
  destination: DestinationState,
): Promise<void> {
  ctx.logger.log(
    'LOG',
    `source.tli = ${tliHex(sourceTimelineId)}, dest_redo.lsn = ${formatLsn(destination.syncLsn)}, dest_redo.tli = ${tliHex(destination.timelineId)}`,
  );
  if (sourceTimelineId === 1) {
    if (destination.timelineId !== 1)
      throw new StrataError('restore', 'Source is behind destination in timeline history');
    return;
  }
  let content: string | null;
  try {
    content = await fetchTimelineHistory(connection, sourceTimelineId);
  } catch (error) {
    ctx.logger.warning(errorText(error));
    content = null;
  }
  if (content === null) throw new StrataError('restore', 'Cannot get source timeline history');
  const history = parseTimelineHistory(content, sourceTimelineId);
  if (
    !isLsnOnTimelineHistory(history, sourceTimelineId, destination.timelineId, destination.syncLsn)
  ) {
    throw new StrataError('restore', 'Destination is not in source timeline history');
  }
}

/** Directories and their sizes as pg_probackup counts them (calculate_datasize_of_filelist). */
function datasize(entries: readonly SourceEntry[]): number {
  return entries.reduce(
    (sum, entry) => sum + (entry.type === 'directory' ? 4096 : entry.sizeBytes),
    0,
  );
}

function isTablespaceLink(path: string): boolean {
  return /^pg_tblspc\/[^/]+$/.test(path);
}

interface CatchupRun {
  ctx: CommandContext;
  params: CatchupParams;
  source: string;
  destination: string;
  excludes: ExcludePaths;
}

/** Lists a data directory with the backup's exclusions and marks what --exclude-path removes. */
async function listWithExclusions(
  run: CatchupRun,
  pgdata: string,
  tablespaceVersionDir: string,
  label: 'Source' | 'Destination',
): Promise<{ all: SourceEntry[]; kept: Map<string, SourceEntry>; excluded: Set<string> }> {
  const all = await listPgdata(run.ctx.storage, pgdata, {
    tablespaceVersionDir,
    backupPgLog: false,
    logger: run.ctx.logger,
  });
  const kept = new Map<string, SourceEntry>();
  const excluded = new Set<string>();
  for (const entry of all) {
    if (run.excludes.excludes(pgdata, entry.path)) {
      run.ctx.logger.info(
        `${label} file "${pgdata}/${entry.path}" excluded with --exclude-path option`,
      );
      excluded.add(entry.path);
    } else {
      kept.set(entry.path, entry);
    }
  }
  return { all, kept, excluded };
}

/**
 * Creates the source's directories in the destination; a `pg_tblspc/<oid>` link becomes a link
 * to the mapped directory, which is created (pg_probackup's catchup directory step).
 */
async function createDirectories(
  run: CatchupRun,
  sources: readonly SourceEntry[],
  mapping: ReadonlyMap<string, string>,
): Promise<void> {
  const { storage, logger } = run.ctx;
  const dryRun = run.params.dryRun;
  for (const entry of sources) {
    if (entry.type !== 'directory') continue;
    const target = `${run.destination}/${entry.path}`;
    const sourceStat = isTablespaceLink(entry.path)
      ? await storage.stat(entry.absolutePath, { noFollow: true })
      : null;
    if (sourceStat?.type !== 'symlink') {
      logger.log('LOG', `Create directory '${target}'`);
      if (!dryRun) await storage.mkdir(target, { mode: 0o700, recursive: true });
      continue;
    }
    const linkContent = await storage.readLink(entry.absolutePath);
    const linked = mappedTablespacePath(mapping, linkContent);
    logger.info(
      `Map tablespace full_path: "${entry.absolutePath}" old_symlink_content: "${linkContent}" new_symlink_content: "${linked}"`,
    );
    if (!linked.startsWith('/')) {
      throw new StrataError(
        'usage',
        `Tablespace directory path must be an absolute path: ${linked}`,
      );
    }
    logger.info(`Create directory "${linked}" and symbolic link "${target}"`);
    if (dryRun) continue;
    await storage.mkdir(linked, { mode: 0o700, recursive: true });
    const existing = await storage.stat(target, { noFollow: true });
    if (existing?.type === 'symlink' && (await storage.readLink(target)) === linked) continue;
    if (existing) await storage.removeTree(target);
    await storage.symlink(linked, target);
  }
}

/**
 * DELTA / PTRACK: removes what the destination has and the source does not (dropped relations
 * and databases), deepest paths first, keeping excluded paths and the saved pg_control.
 */
async function removeRedundantFiles(
  run: CatchupRun,
  destinationEntries: readonly SourceEntry[],
  sourceKept: ReadonlyMap<string, SourceEntry>,
  sourceExcluded: ReadonlySet<string>,
  destinationExcluded: ReadonlySet<string>,
): Promise<string[]> {
  const { storage, logger } = run.ctx;
  logger.info('Removing redundant files in destination directory');
  const removed: string[] = [];
  const sorted = [...destinationEntries].sort((a, b) =>
    a.path < b.path ? 1 : a.path > b.path ? -1 : 0,
  );
  for (const entry of sorted) {
    if (entry.path === CONTROL_PATH || entry.path === CONTROL_BACKUP_PATH) continue;
    if (
      destinationExcluded.has(entry.path) ||
      sourceKept.has(entry.path) ||
      sourceExcluded.has(entry.path)
    )
      continue;
    if (
      entry.type === 'directory' &&
      [...destinationExcluded].some((path) => path.startsWith(`${entry.path}/`))
    )
      continue;
    const fullPath = `${run.destination}/${entry.path}`;
    if (!run.params.dryRun) {
      if (entry.type === 'directory') await storage.removeTree(fullPath);
      else
        await storage.unlink(fullPath).catch((error: unknown) => {
          if (storageErrorCode(error) !== 'ENOENT') throw error;
        });
    }
    logger.log('LOG', `Deleted file "${fullPath}"`);
    removed.push(entry.path);
  }
  return removed;
}

interface TransferPlan {
  files: SourceEntry[];
  destinationEntries: ReadonlyMap<string, SourceEntry>;
  checksumsEnabled: boolean;
  syncLsn: Lsn | undefined;
  changedBlocks: ChangedBlockMap | undefined;
}

/**
 * Copies every file but pg_control with `-j` workers, largest first, adding the bytes written
 * to `transferred.bytes` as it goes (a failed catchup reports how far it got).
 */
async function transferFiles(
  run: CatchupRun,
  plan: TransferPlan,
  transferred: { bytes: number },
): Promise<void> {
  const { storage, logger } = run.ctx;
  const { dryRun, progress } = run.params;
  const files = [...plan.files].sort((a, b) => b.sizeBytes - a.sizeBytes);
  const limit = pLimit(Math.max(1, run.params.threads));
  const copyOne = async (entry: SourceEntry, index: number): Promise<void> => {
    if (run.ctx.signal?.aborted) throw new StrataError('interrupted', 'Interrupted during catchup');
    logger.log(
      progress ? 'INFO' : 'LOG',
      `Progress: (${index + 1}/${files.length}). Process file "${entry.path}"`,
    );
    const target = `${run.destination}/${entry.path}`;
    const existing = plan.destinationEntries.get(entry.path);
    let written: number;
    if (entry.isDatafile) {
      const changed = plan.changedBlocks?.get(entry.path);
      const result = await catchupDataFile(storage, {
        sourcePath: entry.absolutePath,
        destinationPath: target,
        mode: entry.mode,
        segno: entry.segno ?? 0,
        sourceSizeBytes: entry.sizeBytes,
        checksumsEnabled: plan.checksumsEnabled,
        ...(existing?.type === 'file' ? { destinationSizeBytes: existing.sizeBytes } : {}),
        ...(plan.syncLsn !== undefined ? { syncLsn: plan.syncLsn } : {}),
        ...(plan.changedBlocks ? { blocks: Uint32Array.from(changed ?? []).sort() } : {}),
        dryRun,
      });
      if (result.missing) {
        logger.log('LOG', `File not found: "${entry.absolutePath}"`);
        return;
      }
      if (result.unchanged) {
        logger.log('LOG', `Skipping the unchanged file: "${entry.absolutePath}", read 0 bytes`);
        return;
      }
      written = result.writtenBytes;
    } else if (dryRun) {
      written = entry.sizeBytes;
    } else {
      try {
        written = (await copyWholeFile(storage, entry.absolutePath, target, entry.mode, false))
          .sizeBytes;
        if (existing) await storage.chmod(target, entry.mode & 0o7777);
      } catch (error) {
        // A file removed while the catchup runs (a dropped table) is simply not copied.
        if (storageErrorCode(error) !== 'ENOENT') throw error;
        logger.log('LOG', `File not found: "${entry.absolutePath}"`);
        return;
      }
    }
    transferred.bytes += written;
    logger.log('LOG', `File "${entry.absolutePath}". Copied ${written} bytes`);
  };
  await Promise.all(files.map((entry, index) => limit(() => copyOne(entry, index))));
}

async function syncDestination(run: CatchupRun, paths: readonly string[]): Promise<void> {
  const { storage, logger } = run.ctx;
  logger.info('Syncing copied files to disk');
  const startedMs = run.ctx.now();
  const limit = pLimit(Math.max(1, run.params.threads));
  await Promise.all(
    paths.map((path) =>
      limit(async () => {
        try {
          await storage.syncFile(`${run.destination}/${path}`);
        } catch (error) {
          if (storageErrorCode(error) === 'ENOENT') return;
          throw new StrataError(
            'io',
            `Cannot sync file "${run.destination}/${path}": ${errorText(error)}`,
            { cause: error },
          );
        }
      }),
    ),
  );
  await storage.syncDir(run.destination);
  logger.info(
    `Files are synced, time elapsed: ${prettyTimeInterval((run.ctx.now() - startedMs) / 1000)}`,
  );
}

/**
 * `catchup -b FULL|DELTA|PTRACK` (cli-behaviour.md §11): makes a destination data directory a
 * copy of a running source cluster without a catalog. A non-exclusive backup is started on the
 * source, its WAL streamed into `<destination>/pg_wal`, PGDATA copied as plain files (DELTA and
 * PTRACK only the pages changed since the destination's checkpoint, and files gone from the
 * source removed), pg_control last, the backup stopped, and `backup_label` written, so the
 * destination starts by replaying WAL to a consistent state.
 */
export async function runCatchup(
  ctx: CommandContext,
  params: CatchupParams,
): Promise<CatchupResult> {
  const { storage, logger } = ctx;
  if (!params.stream) logger.info('--stream is required, forcing stream mode');
  if (params.externalDirs !== undefined && params.externalDirs !== '') {
    throw new StrataError('usage', 'External directories not supported fom "catchup" command');
  }
  const mapping = parseTablespaceMapping(params.tablespaceMapping);
  const run: CatchupRun = {
    ctx,
    params,
    source: params.sourcePgdata,
    destination: params.destinationPgdata,
    excludes: new ExcludePaths(params.excludePaths),
  };
  const incremental = params.backupMode !== 'FULL';
  const archiveTimeoutSec = params.archiveTimeoutSec ?? DEFAULT_ARCHIVE_TIMEOUT_SEC;

  const { control: sourceControl } = await readControlFile(
    storage,
    `${run.source}/${CONTROL_PATH}`,
  );
  const session = await connectPostgres(params.connection, logger);
  let backupStarted = false;
  let receiver: WalReceiver | undefined;
  try {
    const facts = await readServerFacts(session);
    checkServerForBackup(facts, { logger });
    logger.info(
      `Catchup start, pg_probackup version: ${PROGRAM_VERSION}, PostgreSQL version: ${facts.serverVersionText}, ` +
        `remote: false, source-pgdata: ${run.source}, destination-pgdata: ${run.destination}`,
    );
    const fromReplica = facts.isInRecovery;
    if (fromReplica) logger.info('Running catchup from standby');

    const destinationEmpty = await isDirEmpty(storage, run.destination);
    if (destinationEmpty && incremental) {
      throw new StrataError(
        'usage',
        `"${run.destination}" is empty, but incremental catchup mode requested.`,
      );
    }
    if (!destinationEmpty && !incremental) {
      throw new StrataError(
        'usage',
        `Can't perform full catchup into non-empty directory "${run.destination}".`,
      );
    }
    if (incremental) await checkDestinationIdle(ctx, run.destination);
    if (sourceControl.systemIdentifier !== facts.systemIdentifier) {
      throw new StrataError(
        'postgres',
        `Database identifiers mismatch: we connected to DB id ${facts.systemIdentifier}, but in "${run.source}" we found id ${sourceControl.systemIdentifier}`,
      );
    }
    const destinationState = incremental
      ? await destinationStateOf(ctx, run.destination, facts)
      : undefined;
    const ptrackSchema =
      params.backupMode === 'PTRACK' ? await checkPtrackUsable(session) : undefined;
    await checkTablespaceMapping(ctx, session, mapping, params.backupMode);
    if (destinationState)
      await checkTimelines(ctx, params.connection, facts.timelineId, destinationState);

    logger.info('Database catchup start');
    const tablespaceVersionDir = `PG_${sourceControl.major}_${sourceControl.catalogVersionNo}`;
    const destinationList = destinationState
      ? await listWithExclusions(run, run.destination, tablespaceVersionDir, 'Destination')
      : undefined;
    const syncLsn = destinationState?.syncLsn;
    if (syncLsn !== undefined) logger.info(`syncLSN = ${formatLsn(syncLsn)}`);
    if (ptrackSchema !== undefined)
      await checkPtrackCoversDestination(session, ptrackSchema, syncLsn!);

    const startTimeSec = Math.floor(ctx.now() / 1000);
    const started = await startBackup(session, {
      label: `${formatLocalTime(startTimeSec)} with pg_probackup`,
      fast: !params.smoothCheckpoint,
      major: facts.major,
    });
    backupStarted = true;
    logger.info(`pg_start_backup START LSN ${formatLsn(started.startLsn)}`);
    if (syncLsn !== undefined && syncLsn > started.startLsn) {
      throw new StrataError(
        'restore',
        `Current START LSN ${formatLsn(started.startLsn)} is lower than SYNC LSN ${formatLsn(syncLsn)}, ` +
          'it may indicate that we are trying to catchup with PostgreSQL instance from the past',
      );
    }

    const walDir = `${run.destination}/pg_wal`;
    if (params.dryRun) {
      logger.info('WAL streaming skipping with --dry-run option');
    } else {
      await storage.mkdir(walDir, { mode: 0o700, recursive: true });
      receiver = await WalReceiver.start({
        connection: params.connection,
        storage,
        walDir,
        startLsn: started.startLsn,
        timelineId: started.timelineId,
        walSegmentSizeBytes: facts.walSegmentSizeBytes,
        slot: {
          name:
            params.slot ??
            (params.permSlot ? 'pg_probackup_perm_slot' : `pg_probackup_slot_${process.pid}`),
          temporary: !params.permSlot && (params.tempSlot || params.slot === undefined),
          create: params.tempSlot || params.permSlot || params.slot === undefined,
        },
        expectedSystemIdentifier: facts.systemIdentifier,
        logger,
      });
    }

    const sourceList = await listWithExclusions(run, run.source, tablespaceVersionDir, 'Source');
    const sourceBytes = datasize(sourceList.all);
    const sourcePgdataBytes = datasize([...sourceList.kept.values()]);
    logger.info(
      `Source PGDATA size: ${prettySize(sourcePgdataBytes)} (excluded ${prettySize(sourceBytes - sourcePgdataBytes)})`,
    );
    logger.info(
      `Start LSN (source): ${formatLsn(started.startLsn)}, TLI: ${tliHex(started.timelineId)}`,
    );
    if (destinationState) {
      logger.info(
        `LSN in destination: ${formatLsn(destinationState.syncLsn)}, TLI: ${tliHex(destinationState.timelineId)}`,
      );
    }

    let changedBlocks: ChangedBlockMap | undefined;
    if (params.backupMode === 'PTRACK') {
      logger.info('Extracting pagemap of changed blocks');
      const extractStartedMs = ctx.now();
      changedBlocks = await changedBlocksFromPtrack(session, syncLsn!, syncLsn!);
      logger.info(
        `Pagemap successfully extracted, time elapsed: ${Math.round((ctx.now() - extractStartedMs) / 1000)} sec`,
      );
    }

    // A path excluded on either side is left alone on both (pg_probackup marks the source file too).
    for (const path of destinationList?.excluded ?? []) sourceList.kept.delete(path);
    await createDirectories(run, [...sourceList.kept.values()], mapping);
    const controlEntry = sourceList.kept.get(CONTROL_PATH);
    if (!controlEntry)
      throw new StrataError('io', `"${CONTROL_PATH}" not found in "${run.source}"`);

    let removedPaths: string[] = [];
    if (destinationList) {
      removedPaths = await removeRedundantFiles(
        run,
        destinationList.all,
        sourceList.kept,
        sourceList.excluded,
        destinationList.excluded,
      );
      if (!params.dryRun && (await storage.stat(`${run.destination}/${CONTROL_PATH}`))) {
        await storage.rename(
          `${run.destination}/${CONTROL_PATH}`,
          `${run.destination}/${CONTROL_BACKUP_PATH}`,
        );
      }
    }

    logger.info('Start transferring data files');
    const transferStartedMs = ctx.now();
    const files = [...sourceList.kept.values()].filter(
      (entry) => entry.type === 'file' && entry.path !== CONTROL_PATH,
    );
    const transferred = { bytes: 0 };
    try {
      await transferFiles(
        run,
        {
          files,
          destinationEntries: destinationList?.kept ?? new Map(),
          checksumsEnabled: facts.dataChecksums,
          syncLsn,
          changedBlocks,
        },
        transferred,
      );
    } catch (error) {
      if (isStrataError(error) && error.code === 'interrupted') throw error;
      logger.log('ERROR', isStrataError(error) ? error.message : errorText(error));
      throw new StrataError(
        isStrataError(error) ? error.code : 'io',
        `Catchup failed. Transfered: ${prettySize(transferred.bytes)}, time elapsed: ${prettyTimeInterval((ctx.now() - transferStartedMs) / 1000)}`,
        { cause: error },
      );
    }
    let transferredDataBytes = transferred.bytes;
    const { bytes: controlBytes } = await readControlFile(storage, controlEntry.absolutePath);
    if (!params.dryRun) {
      await storage.writeFile(`${run.destination}/${CONTROL_PATH}`, controlBytes, {
        mode: controlEntry.mode & 0o7777,
      });
      await storage.removeTree(`${run.destination}/${CONTROL_BACKUP_PATH}`);
    }
    transferredDataBytes += controlBytes.length;

    const stopped = await stopBackup(session, {
      major: facts.major,
      fromReplica,
      timeoutSeconds: archiveTimeoutSec,
    });
    backupStarted = false;
    const stopLsn = stopped.stopLsn;
    logger.info(`stop_lsn: ${formatLsn(stopLsn)}`);
    let transferredWalBytes = 0;
    if (receiver) {
      const streamed = await receiver.stopAt(stopLsn, archiveTimeoutSec * 1000);
      receiver = undefined;
      transferredWalBytes = streamed.segments.reduce((sum, segment) => sum + segment.sizeBytes, 0);
    }
    if (!params.dryRun) {
      // tablespace_map is not written: the pg_tblspc links already point at the mapped directories.
      await storage.writeFile(`${run.destination}/backup_label`, Buffer.from(stopped.backupLabel), {
        mode: 0o600,
      });
      if (fromReplica) {
        // A standby's pg_control says nothing of this copy: recovery of the destination must reach
        // at least the stop LSN before it is consistent.
        const controlPath = `${run.destination}/${CONTROL_PATH}`;
        await storage.writeFile(
          controlPath,
          withMinRecoveryPoint(await storage.readFile(controlPath), stopLsn),
          {
            mode: controlEntry.mode & 0o7777,
          },
        );
      }
    }

    const elapsed = prettyTimeInterval((ctx.now() - transferStartedMs) / 1000);
    logger.info(
      `Databases synchronized. Transfered datafiles size: ${prettySize(transferredDataBytes)}, ` +
        `transfered wal size: ${prettySize(transferredWalBytes)}, time elapsed: ${elapsed}`,
    );
    if (incremental) {
      const ratio =
        sourcePgdataBytes > 0 ? Math.round((transferredDataBytes / sourcePgdataBytes) * 100) : 0;
      logger.info(
        `Catchup incremental ratio (less is better): ${ratio}% (${prettySize(transferredDataBytes)}/${prettySize(sourcePgdataBytes)})`,
      );
    }
    if (params.dryRun) {
      logger.info(`Dry run: nothing was written to "${run.destination}"`);
    } else if (params.noSync) {
      logger.warning('Files are not synced to disk');
    } else {
      await syncDestination(run, [
        ...files.map((entry) => entry.path),
        CONTROL_PATH,
        'backup_label',
      ]);
    }
    return {
      startLsn: started.startLsn,
      stopLsn,
      timelineId: started.timelineId,
      ...(syncLsn !== undefined ? { syncLsn } : {}),
      sourcePgdataBytes,
      excludedBytes: sourceBytes - sourcePgdataBytes,
      transferredDataBytes,
      transferredWalBytes,
      removedPaths,
    };
  } catch (error) {
    if (receiver) await receiver.abort().catch(() => undefined);
    if (backupStarted) await abortBackup(session).catch(() => undefined);
    throw error;
  } finally {
    await session.close();
  }
}
