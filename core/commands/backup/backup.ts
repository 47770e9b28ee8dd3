import pLimit from 'p-limit';
import { backupIdFromTime } from '../../catalog/backupId.js';
import { BackupCatalog, type CatalogBackup } from '../../catalog/catalog.js';
import { defaultBackupMeta } from '../../catalog/backupControl.js';
import { checkCompressLevel } from '../../catalog/optionValues.js';
import { formatDatabaseMap } from '../../catalog/databaseMap.js';
import type { InstanceConfig } from '../../catalog/instanceConfig.js';
import { lockBackupExclusive, lockBackupShared, releaseBackupLock } from '../../catalog/locks.js';
import { formatLocalTime } from '../../catalog/time.js';
import type { BackupMeta, BackupMode, CompressAlgorithm, FileEntry } from '../../catalog/types.js';
import { StrataError, errorText } from '../../errors.js';
import { crc32c } from '../../format/crc32c.js';
import { formatLsn } from '../../format/lsn.js';
import { parseControlFile, withMinRecoveryPoint } from '../../format/pgControl.js';
import { WalReader } from '../../format/wal/walReader.js';
import type { Lsn } from '../../format/lsn.js';
import { findRecordAtOrAfter, findRecoveryTime } from '../../format/wal/walScan.js';
import type { WalSegmentSource } from '../../format/wal/walReader.js';
import {
  XLOG_BLCKSZ,
  isWalSegmentName,
  lsnToSegno,
  walSegmentNameForLsn,
} from '../../format/walNames.js';
import {
  connectPostgres,
  type ConnectionOptions,
  type PgSession,
} from '../../postgres/connection.js';
import {
  abortBackup,
  createRestorePoint,
  startBackup,
  stopBackup,
  switchWal,
} from '../../postgres/backupSession.js';
import {
  checkServerForBackup,
  readServerFacts,
  type ServerFacts,
} from '../../postgres/serverFacts.js';
import { WalReceiver } from '../../postgres/walReceiver.js';
import { storageErrorCode } from '../../storage/storage.js';
import { remoteStorageFor } from '../../storage/ssh/splitStorage.js';
import { crc32cOfFile } from '../archive/archiveFiles.js';
import { ArchiveWalSource, DirectoryWalSource } from '../archive/walSources.js';
import { waitForArchivedSegment } from '../archive/waitForArchivedSegment.js';
import { PROGRAM_VERSION, type CommandContext } from '../context.js';
import { prettySize, prettyTimeInterval } from '../show/prettyFormat.js';
import { pinBackup, type BackupPin } from '../setBackup/setBackup.js';
import { validateBackup } from '../validate/validateBackup.js';
import { copyDataFileByRanges, withHeaderPlace } from './dataFileCopy.js';
import { createFileCopyPool } from '../workers/fileCopyPool.js';
import { PageHeaderMapWriter } from './pageHeaderMapWriter.js';
import {
  changedBlocksFromPtrack,
  changedBlocksFromWal,
  changedBlocksFromWalSummaries,
  type ChangedBlockMap,
} from './changedBlocks.js';
import { selectParentBackup } from './parentBackup.js';
import { checkExternalDirs } from './externalDirs.js';
import { listExternalDir, listPgdata, type SourceEntry } from './pgdataWalk.js';

export interface BackupParams extends BackupPin {
  backupPath: string;
  instance: string;
  backupMode: BackupMode;
  stream: boolean;
  slot?: string;
  tempSlot: boolean;
  permSlot: boolean;
  smoothCheckpoint: boolean;
  threads: number;
  progress: boolean;
  /** Command-line values; the instance configuration fills what is not given. */
  pgdata?: string;
  connection: ConnectionOptions;
  compressAlgorithm?: CompressAlgorithm;
  compressLevel?: number;
  archiveTimeoutSec?: number;
  note?: string;
  noValidate: boolean;
  noSync: boolean;
  skipBlockValidation: boolean;
  backupPgLog: boolean;
  /** `-E dir1:dir2` or `none`; the instance's `external-dirs` when absent. */
  externalDirs?: string;
  /** Forces the backup ID (pg_probackup's hidden --start-time). */
  startTimeSec?: number;
}

const FILE_MODE = 0o100600;
const MAX_ID_ATTEMPTS = 10;

function newBackupMeta(id: string, startTime: number, backupMode: BackupMode): BackupMeta {
  return {
    ...defaultBackupMeta(),
    id,
    startTime,
    backupMode,
    programVersion: PROGRAM_VERSION,
    status: 'RUNNING',
  };
}

function directoryEntry(path: string, mode: number): FileEntry {
  return {
    path,
    size: 0,
    mode,
    isDatafile: false,
    isCfs: false,
    crc: 0,
    compressAlg: 'none',
    externalDirNum: 0,
    dbOid: 0,
    fullSize: undefined,
    segno: undefined,
    linked: undefined,
    nBlocks: undefined,
    nHeaders: undefined,
    hdrCrc: undefined,
    hdrOff: undefined,
    hdrSize: undefined,
  };
}

function fileEntry(
  path: string,
  mode: number,
  sizeBytes: number,
  crc: number,
  dbOid = 0,
): FileEntry {
  return { ...directoryEntry(path, mode), size: sizeBytes, crc, dbOid };
}

/** Directory and WAL accounting of catalog-format §6.5. */
function accountSizes(entries: FileEntry[], stream: boolean, meta: BackupMeta): void {
  let dataBytes = 0;
  let uncompressedBytes = 0;
  let walBytes = 0;
  for (const entry of entries) {
    if (entry.size === 0 && (entry.mode & 0o170000) === 0o040000) {
      dataBytes += 4096;
      uncompressedBytes += 4096;
      continue;
    }
    if (entry.size <= 0) continue;
    const name = entry.path.slice(entry.path.lastIndexOf('/') + 1);
    if (entry.externalDirNum === 0 && entry.path.startsWith('pg_wal/') && isWalSegmentName(name)) {
      walBytes += entry.size;
      continue;
    }
    dataBytes += entry.size;
    uncompressedBytes += entry.fullSize ?? entry.size;
  }
  meta.dataBytes = dataBytes;
  meta.uncompressedBytes = uncompressedBytes;
  if (stream) meta.walBytes = walBytes;
}

async function chooseBackupId(
  ctx: CommandContext,
  catalog: BackupCatalog,
  instance: string,
  existing: CatalogBackup[],
  forcedStartSec: number | undefined,
): Promise<{ id: string; startTime: number; dir: string }> {
  const newest = existing[0];
  for (let attempt = 0; attempt < MAX_ID_ATTEMPTS; attempt++) {
    const startTime = forcedStartSec ?? Math.floor(ctx.now() / 1000);
    if (newest && newest.startTime > startTime) {
      throw new StrataError(
        'catalog',
        `Can't assign backup_id, there is already a backup in future (${newest.id})`,
      );
    }
    const id = backupIdFromTime(startTime);
    const dir = catalog.backupDir(instance, id);
    // mkdir is the claim: two backups started in the same second cannot both create the directory,
    // so the second one waits for the next second (pg_probackup's pgBackupCreateDir).
    try {
      await ctx.storage.mkdir(dir, { mode: 0o700 });
      return { id, startTime, dir };
    } catch (error) {
      if (storageErrorCode(error) !== 'EEXIST') throw error;
    }
    if (forcedStartSec !== undefined) {
      throw new StrataError(
        'catalog',
        `Backup directory already exists: "${dir}"; --start-time must be newer than every backup`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new StrataError(
    'catalog',
    `Cannot create a backup directory for a new backup in "${catalog.instanceDir(instance)}": every attempt found it taken`,
  );
}

/** Timeline-switch-aware WAL access for reading the backup's own WAL range. */
function walSourceFor(
  ctx: CommandContext,
  stream: boolean,
  streamDir: string,
  archiveDir: string,
  segSize: number,
): WalSegmentSource {
  return stream
    ? new DirectoryWalSource(ctx.storage, streamDir, segSize)
    : new ArchiveWalSource(ctx.storage, archiveDir, segSize);
}

/**
 * `backup -b FULL` (cli-behaviour.md §5.4): start a non-exclusive backup, copy PGDATA page by
 * page with validation, stop the backup, make sure the WAL from start to stop LSN is in the backup
 * (STREAM) or the archive (ARCHIVE), write the catalog files, validate. Any failure after the
 * directory exists leaves the backup ERROR, never OK.
 */
export async function runBackup(
  ctx: CommandContext,
  params: BackupParams,
): Promise<{ backupId: string; status: string }> {
  const { storage, logger } = ctx;
  const catalog = new BackupCatalog(storage, params.backupPath);
  await catalog.assertInstanceExists(params.instance);
  const config: InstanceConfig = await catalog.readInstanceConfig(params.instance);
  const pgdata = params.pgdata ?? config.pgdata;
  if (!pgdata) {
    throw new StrataError(
      'usage',
      'No postgres data directory specified.\nPlease specify it either using environment variable PGDATA or\ncommand line option --pgdata (-D)',
    );
  }
  const compressAlgorithm = params.compressAlgorithm ?? config.compressAlgorithm ?? 'none';
  const compressLevel = params.compressLevel ?? config.compressLevel ?? 1;
  checkCompressLevel(compressAlgorithm, compressLevel);
  if (compressAlgorithm === 'pglz' && params.threads > 1) {
    throw new StrataError('usage', 'Multithread backup does not support pglz compression');
  }
  const archiveTimeoutSec = params.archiveTimeoutSec ?? config.archiveTimeoutSec ?? 300;
  const segSize = config.xlogSegSize || 16 * 1024 * 1024;
  const sync = !params.noSync;

  await catalog.repairInterruptedBackups(params.instance, logger);
  const existing = await catalog.listBackups(params.instance);
  const { id, startTime, dir } = await chooseBackupId(
    ctx,
    catalog,
    params.instance,
    existing,
    params.startTimeSec,
  );
  await lockBackupExclusive(storage, dir, { backupId: id, logger });
  const meta = newBackupMeta(id, startTime, params.backupMode);
  meta.stream = params.stream;
  meta.compressAlg = compressAlgorithm;
  meta.compressLevel = compressLevel;
  if (params.note !== undefined && params.note.toLowerCase() !== 'none') meta.note = params.note;
  await catalog.writeBackupControl(params.instance, meta);

  logger.info(
    `Backup start, pg_probackup version: ${PROGRAM_VERSION}, instance: ${params.instance}, backup ID: ${id}, ` +
      `backup mode: ${params.backupMode}, wal mode: ${params.stream ? 'STREAM' : 'ARCHIVE'}, remote: ${storage.kind === 'ssh'}, ` +
      `compress-algorithm: ${compressAlgorithm}, compress-level: ${compressLevel}`,
  );

  const parentLocks: CatalogBackup[] = [];
  let session: PgSession | undefined;
  let backupStarted = false;
  let receiver: WalReceiver | undefined;
  try {
    const databaseDir = `${dir}/database`;
    await storage.mkdir(databaseDir, { mode: 0o700 });
    const connection: ConnectionOptions = {
      pghost: params.connection.pghost ?? config.pghost,
      pgport: params.connection.pgport ?? config.pgport,
      pguser: params.connection.pguser ?? config.pguser,
      pgdatabase: params.connection.pgdatabase ?? config.pgdatabase,
    };
    session = await connectPostgres(connection, logger);
    const facts: ServerFacts = await readServerFacts(session);
    checkServerForBackup(facts, { expectedSystemIdentifier: config.systemIdentifier, logger });
    const controlFile = parseControlFile(await storage.readFile(`${pgdata}/global/pg_control`));
    if (controlFile.systemIdentifier !== facts.systemIdentifier) {
      throw new StrataError(
        'postgres',
        `Backup data directory was initialized for system id ${controlFile.systemIdentifier}, but connected instance system id is ${facts.systemIdentifier}`,
      );
    }
    meta.fromReplica = facts.isInRecovery;
    if (meta.fromReplica) logger.info(`Backup ${id} is going to be taken from standby`);
    meta.serverVersion = String(facts.major);
    meta.checksumVersion = facts.dataChecksums ? 1 : 0;
    meta.primaryConninfo = session.primaryConninfo();

    logger.info('Database backup start');
    const started = await startBackup(session, {
      label: `${formatLocalTime(startTime)} with pg_probackup`,
      fast: !params.smoothCheckpoint,
      major: facts.major,
    });
    backupStarted = true;
    meta.startLsn = started.startLsn;
    meta.timelineId = started.timelineId;
    let incremental: IncrementalSource | undefined;
    if (params.backupMode !== 'FULL') {
      const parent = selectParentBackup(existing, started.timelineId, logger);
      if (started.startLsn < parent.startLsn) {
        throw new StrataError(
          'postgres',
          `Current START LSN ${formatLsn(started.startLsn)} is lower than START LSN ${formatLsn(parent.startLsn)} of previous backup ${parent.id}. It may indicate that we are trying to backup PostgreSQL instance from the past.`,
        );
      }
      logger.info(`Parent backup: ${parent.id}`);
      meta.parentBackupId = parent.id;
      // A reader's lock on the parent chain for the whole backup: a delete or merge of the parent
      // waits for this backup (or fails) instead of leaving it without its parent.
      for (const member of catalog.resolveBackupChain(existing, parent.id).chain) {
        await lockBackupShared(storage, member.dir, { backupId: member.id, logger });
        parentLocks.push(member);
      }
      const parentEntries = new Map<string, FileEntry>();
      for (const entry of await catalog.readContentList(parent)) {
        parentEntries.set(entryKey(entry.externalDirNum, entry.path), entry);
      }
      incremental = { mode: params.backupMode, parent, parentEntries };
    }
    await catalog.writeBackupControl(params.instance, meta);

    const archiveDir = catalog.walDir(params.instance);
    const streamDir = `${databaseDir}/pg_wal`;
    if (params.stream) {
      await storage.mkdir(streamDir, { mode: 0o700 });
      const slotName =
        params.slot ??
        (params.permSlot ? 'pg_probackup_perm_slot' : `pg_probackup_slot_${process.pid}`);
      receiver = await WalReceiver.start({
        connection,
        storage,
        walDir: streamDir,
        startLsn: started.startLsn,
        timelineId: started.timelineId,
        walSegmentSizeBytes: segSize,
        slot: {
          name: slotName,
          temporary: !params.permSlot && (params.tempSlot || params.slot === undefined),
          create: params.tempSlot || params.permSlot || params.slot === undefined,
        },
        expectedSystemIdentifier: facts.systemIdentifier,
        logger,
      });
    }
    if (!params.stream || params.backupMode === 'PAGE') {
      // A standby cannot switch WAL; its start segment arrives when the primary fills it.
      if (!meta.fromReplica) await switchWal(session);
      await waitForArchivedSegment(ctx, {
        walDir: archiveDir,
        segmentName: walSegmentNameForLsn(started.timelineId, started.startLsn, segSize),
        timeoutSec: archiveTimeoutSec,
        messageHint: true,
      });
    }

    const sources = await listPgdata(storage, pgdata, {
      tablespaceVersionDir: `PG_${facts.major}_${controlFile.catalogVersionNo}`,
      backupPgLog: params.backupPgLog,
      logger,
    });
    const tablespacePaths: string[] = [];
    for (const entry of await storage.readDir(`${pgdata}/pg_tblspc`).catch(() => [])) {
      tablespacePaths.push(await storage.readLink(`${pgdata}/pg_tblspc/${entry.name}`));
    }
    const externalDirsValue = params.externalDirs ?? config.externalDirs;
    const externalDirs = await checkExternalDirs(
      storage,
      externalDirsValue,
      pgdata,
      tablespacePaths,
    );
    if (externalDirs.length > 0) meta.externalDirs = externalDirsValue;
    if (sources.length < 100) {
      throw new StrataError(
        'io',
        'PGDATA is almost empty. Either it was concurrently deleted or pg_probackup do not possess sufficient permissions to list PGDATA content',
      );
    }
    meta.pgdataBytes = sources.reduce(
      (sum, entry) => sum + (entry.type === 'directory' ? 4096 : entry.sizeBytes),
      0,
    );
    for (const [index, dir] of externalDirs.entries()) {
      for (const entry of await listExternalDir(storage, dir, logger)) {
        sources.push({ ...entry, externalDirNum: index + 1 });
      }
    }
    const databases = await session.query<{ oid: string; datname: string }>(
      "SELECT oid::text AS oid, datname FROM pg_catalog.pg_database WHERE datname NOT IN ('template1','template0')",
    );
    logger.info(`PGDATA size: ${prettySize(meta.pgdataBytes)}`);
    logger.info(
      `Current Start LSN: ${formatLsn(meta.startLsn)}, TLI: ${meta.timelineId.toString(16).toUpperCase()}`,
    );
    if (incremental) {
      const { parent } = incremental;
      logger.info(
        `Parent Start LSN: ${formatLsn(parent.startLsn)}, TLI: ${parent.timelineId.toString(16).toUpperCase()}`,
      );
      const tablespaceVersionDir = `PG_${facts.major}_${controlFile.catalogVersionNo}`;
      if (
        incremental.mode === 'PAGE' ||
        incremental.mode === 'PTRACK' ||
        incremental.mode === 'SUMMARY'
      ) {
        logger.info('Extracting pagemap of changed blocks');
        const extractStartedMs = ctx.now();
        if (incremental.mode === 'PAGE') {
          incremental.changedBlocks = await changedBlocksFromWal(
            new ArchiveWalSource(storage, archiveDir, segSize),
            meta.timelineId,
            segSize,
            parent.startLsn,
            meta.startLsn,
            tablespaceVersionDir,
          );
        } else if (incremental.mode === 'PTRACK') {
          incremental.changedBlocks = await changedBlocksFromPtrack(
            session,
            parent.startLsn,
            parent.startLsn,
          );
        } else {
          incremental.changedBlocks = await changedBlocksFromWalSummaries(
            session,
            meta.timelineId,
            parent.startLsn,
            meta.startLsn,
            tablespaceVersionDir,
            archiveTimeoutSec * 1000,
          );
        }
        logger.info(
          `Pagemap successfully extracted, time elapsed: ${Math.round((ctx.now() - extractStartedMs) / 1000)} sec`,
        );
      }
    }

    const entries = await transferFiles(ctx, {
      sources,
      backupDir: dir,
      externalDirCount: externalDirs.length,
      databaseDir,
      headerMapPath: `${dir}/page_header_map`,
      checksumsEnabled: facts.dataChecksums,
      params,
      compressAlgorithm,
      compressLevel,
      sync,
      incremental,
    });

    if (!meta.fromReplica) await createRestorePoint(session, `pg_probackup, backup_id ${id}`);
    const stopped = await stopBackup(session, {
      major: facts.major,
      fromReplica: meta.fromReplica,
      timeoutSeconds: archiveTimeoutSec,
    });
    backupStarted = false;
    let stopLsn = stopped.stopLsn;
    // A stop LSN at a WAL page boundary is not a record position (catalog-format §5.4). On a
    // primary, pg_backup_stop switched segments, so the record after it exists.
    const atPageBoundary = stopLsn % BigInt(XLOG_BLCKSZ) === 0n;
    const needsRecordAfterStop = atPageBoundary && !meta.fromReplica;
    const waitLsn = needsRecordAfterStop ? stopLsn + BigInt(XLOG_BLCKSZ) : stopLsn;

    if (receiver) {
      const streamed = await receiver.stopAt(waitLsn, archiveTimeoutSec * 1000);
      receiver = undefined;
      for (const segment of streamed.segments) {
        entries.push(
          fileEntry(`pg_wal/${segment.name}`, FILE_MODE, segment.sizeBytes, segment.crc),
        );
      }
      if (streamed.historyFile) {
        const { name, sizeBytes, crc } = streamed.historyFile;
        entries.push(fileEntry(`pg_wal/${name}`, FILE_MODE, sizeBytes, crc));
      }
    } else {
      const stopSegment = walSegmentNameForLsn(meta.timelineId, waitLsn - 1n, segSize);
      logger.info(
        `Wait for LSN ${formatLsn(stopLsn)} in archived WAL segment ${archiveDir}/${stopSegment}`,
      );
      await waitForArchivedSegment(ctx, {
        walDir: archiveDir,
        segmentName: stopSegment,
        timeoutSec: archiveTimeoutSec,
        messageHint: false,
      });
    }
    const walSource = walSourceFor(ctx, params.stream, streamDir, archiveDir, segSize);
    if (needsRecordAfterStop) {
      const next = await findRecordAtOrAfter(walSource, meta.timelineId, segSize, stopLsn);
      if (next === null) {
        throw new StrataError(
          'wal',
          `Cannot find a WAL record after stop LSN ${formatLsn(stopLsn)}`,
        );
      }
      stopLsn = next;
    } else if (
      meta.fromReplica &&
      !(await recordStartsAt(walSource, meta.timelineId, segSize, stopLsn))
    ) {
      // The standby's last replayed position is the end of the newest record; nothing may follow
      // it yet, so the backup stops at that record instead (catalog-format §5.4).
      stopLsn = await lastRecordBefore(walSource, meta.timelineId, segSize, meta.startLsn, stopLsn);
    }
    meta.stopLsn = stopLsn;
    if (meta.fromReplica) {
      // A standby's pg_control knows nothing of this backup; recovery of the copy must reach at
      // least the stop LSN before it is consistent (catalog-format §7.5).
      const controlPath = `${databaseDir}/global/pg_control`;
      const patched = withMinRecoveryPoint(await storage.readFile(controlPath), stopLsn);
      await storage.writeFile(controlPath, patched, { mode: 0o600, sync });
      const controlEntry = entries.find(
        (entry) => entry.path === 'global/pg_control' && entry.externalDirNum === 0,
      );
      if (controlEntry) controlEntry.crc = parseControlFile(patched).crc;
    }
    logger.info(`stop_lsn: ${formatLsn(stopLsn)}`);
    meta.recoveryXid = stopped.recoveryXid;

    for (const [name, content] of [
      ['backup_label', stopped.backupLabel],
      ['tablespace_map', stopped.tablespaceMap],
    ] as const) {
      if (!content) continue;
      const data = Buffer.from(content);
      await storage.writeFile(`${databaseDir}/${name}`, data, { mode: 0o600, sync });
      entries.push(fileEntry(name, FILE_MODE, data.length, crc32c(data)));
    }
    const databaseMap = Buffer.from(
      formatDatabaseMap(databases.map((row) => ({ dbOid: Number(row.oid), datname: row.datname }))),
    );
    await storage.writeFile(`${databaseDir}/database_map`, databaseMap, { mode: 0o600, sync });
    entries.push(fileEntry('database_map', FILE_MODE, databaseMap.length, crc32c(databaseMap)));
    await session.close();
    session = undefined;

    logger.info('Getting the Recovery Time from WAL');
    const recoveryTime = await findRecoveryTime(
      walSource,
      meta.timelineId,
      segSize,
      meta.startLsn,
      meta.stopLsn,
    );
    if (recoveryTime === undefined) {
      logger.info('Failed to find Recovery Time in WAL, forced to trust current_timestamp');
      meta.recoveryTime = stopped.stopTimeSec;
    } else {
      meta.recoveryTime = Math.floor(recoveryTime);
    }

    accountSizes(entries, params.stream, meta);
    if (!params.stream) {
      const segments = lsnToSegno(meta.stopLsn, segSize) - lsnToSegno(meta.startLsn, segSize);
      meta.walBytes = Number(segments > 0n ? segments : 1n) * segSize;
    }
    if (sync) {
      logger.info('Syncing backup files to disk');
      await storage.syncDir(databaseDir);
    }
    meta.contentCrc = await catalog.writeContentList(params.instance, id, entries);
    meta.endTime = Math.floor(ctx.now() / 1000);
    meta.status = 'DONE';
    await catalog.writeBackupControl(params.instance, meta);
    // do_backup pins only with a positive ttl or expire time: `--ttl=0` has nothing to unpin.
    const pinRequested = (params.ttlSec ?? 0) > 0 || (params.expireTimeSec ?? 0) > 0;
    if (pinRequested && pinBackup(logger, meta, params)) {
      await catalog.writeBackupControl(params.instance, meta);
    }

    let status: string = 'DONE';
    if (!params.noValidate) {
      const backup = await catalog.readBackup(params.instance, id);
      if (!backup)
        throw new StrataError(
          'catalog',
          `Backup ${id} disappeared from the catalog during the backup`,
        );
      status = await validateBackup(ctx, {
        catalog,
        instance: params.instance,
        backup,
        threads: params.threads,
        skipBlockValidation: params.skipBlockValidation,
        walSegmentSizeBytes: segSize,
      });
    }
    const resident = meta.dataBytes + (params.stream ? Math.max(meta.walBytes, 0) : 0);
    logger.info(`Backup ${id} resident size: ${prettySize(resident)}`);
    if (status === 'CORRUPT') throw new StrataError('corrupt', `Backup ${id} failed`);
    logger.info(`Backup ${id} completed`);
    return { backupId: id, status };
  } catch (error) {
    if (receiver) await receiver.abort().catch(() => undefined);
    if (session && backupStarted) {
      await abortBackup(session).catch(() => undefined);
    }
    await session?.close().catch(() => undefined);
    const current = await catalog.readBackup(params.instance, id).catch(() => undefined);
    if (current && (current.status === 'RUNNING' || current.status === 'DONE')) {
      logger.warning(`Backup ${id} is running, setting its status to ERROR`);
      await catalog.writeBackupControl(params.instance, {
        ...current,
        status: 'ERROR',
        endTime: Math.floor(ctx.now() / 1000),
      });
    }
    if (error instanceof StrataError) throw error;
    throw new StrataError('internal', `Backup ${id} failed: ${errorText(error)}`, { cause: error });
  } finally {
    for (const member of parentLocks) {
      await releaseBackupLock(storage, member.dir, { backupId: member.id }).catch(() => undefined);
    }
    await releaseBackupLock(storage, dir, { backupId: id }).catch(() => undefined);
  }
}

/** What an incremental backup compares against: its parent and how changed blocks are found. */
interface IncrementalSource {
  mode: BackupMode;
  parent: CatalogBackup;
  parentEntries: Map<string, FileEntry>;
  /** PAGE, PTRACK and SUMMARY: changed blocks per relation segment file. */
  changedBlocks?: ChangedBlockMap;
}

/** Files are identified by their external directory number and path (catalog-format §6.2). */
function entryKey(externalDirNum: number, path: string): string {
  return `${externalDirNum}:${path}`;
}

/** A remote data file is copied as ranges of 8 MiB, two in flight: the agent reads the next one while this side writes. */
const REMOTE_RANGE_BLOCKS = 1024;
const REMOTE_RANGES_IN_FLIGHT = 2;

/** pg_filenode.map is small and rewritten in place by PostgreSQL: always copied (§7.5). */
const ALWAYS_COPIED = new Set(['pg_filenode.map']);

/**
 * An incremental backup skips a non-data file that existed in the parent with the same size,
 * was not modified after the parent started, and has the same CRC (catalog-format §7.5).
 */
async function unchangedSinceParent(
  ctx: CommandContext,
  source: SourceEntry,
  parentEntry: FileEntry | undefined,
  parentStartTimeSec: number,
): Promise<{ sizeBytes: number; crc: number } | undefined> {
  if (!parentEntry || ALWAYS_COPIED.has(source.path.slice(source.path.lastIndexOf('/') + 1)))
    return undefined;
  const parentSize = parentEntry.size === -1 ? (parentEntry.fullSize ?? -1) : parentEntry.size;
  if (parentSize !== source.sizeBytes || source.mtimeMs > parentStartTimeSec * 1000)
    return undefined;
  // On a remote PGDATA the agent computes the CRC there: an unchanged file does not cross the network.
  const remote = remoteStorageFor(ctx.storage, source.absolutePath);
  const crc = remote
    ? (await remote.fileCrc32c(source.absolutePath)).crc
    : await crc32cOfFile(ctx.storage, source.absolutePath, false);
  return crc === parentEntry.crc ? { sizeBytes: source.sizeBytes, crc } : undefined;
}

interface TransferOptions {
  sources: SourceEntry[];
  backupDir: string;
  externalDirCount: number;
  databaseDir: string;
  headerMapPath: string;
  checksumsEnabled: boolean;
  params: BackupParams;
  compressAlgorithm: CompressAlgorithm;
  compressLevel: number;
  sync: boolean;
  incremental: IncrementalSource | undefined;
}

/**
 * Copies every listed file with `-j` workers, smallest first as pg_probackup does, then
 * `global/pg_control` last: a backup whose pg_control is present was copied completely.
 */
async function transferFiles(ctx: CommandContext, options: TransferOptions): Promise<FileEntry[]> {
  const { storage, logger } = ctx;
  const { databaseDir } = options;
  const entries: FileEntry[] = [];
  const storedPath = (source: SourceEntry) =>
    source.externalDirNum
      ? `${options.backupDir}/external_directories/externaldir${source.externalDirNum}/${source.path}`
      : `${databaseDir}/${source.path}`;
  for (let num = 1; num <= options.externalDirCount; num++) {
    await storage.mkdir(`${options.backupDir}/external_directories/externaldir${num}`, {
      mode: 0o700,
      recursive: true,
    });
  }
  for (const source of options.sources) {
    if (source.type !== 'directory') continue;
    await storage.mkdir(storedPath(source), { mode: 0o700, recursive: true });
    entries.push({
      ...directoryEntry(source.path, source.mode),
      dbOid: source.dbOid,
      externalDirNum: source.externalDirNum ?? 0,
    });
  }
  const files = options.sources
    .filter((source) => source.type === 'file' && source.path !== 'global/pg_control')
    .sort((a, b) => a.sizeBytes - b.sizeBytes);
  const headerMap = new PageHeaderMapWriter(storage, options.headerMapPath);
  logger.info('Start transferring data files');
  const startedMs = ctx.now();
  const limit = pLimit(Math.max(1, options.params.threads));
  // Page checks, checksums and compression are CPU-bound: with -j N they run on N worker threads.
  const pool = createFileCopyPool(Math.max(1, options.params.threads));
  const progressLevel = options.params.progress ? 'INFO' : 'LOG';
  let done = 0;
  const copyOne = async (source: SourceEntry): Promise<FileEntry | undefined> => {
    if (ctx.signal?.aborted) throw new StrataError('interrupted', 'interrupted');
    const destinationPath = storedPath(source);
    const externalDirNum = source.externalDirNum ?? 0;
    try {
      const parentEntry = options.incremental?.parentEntries.get(
        entryKey(externalDirNum, source.path),
      );
      if (source.isDatafile) {
        const selection = pageSelection(options.incremental, source, parentEntry);
        const job = {
          sourcePath: source.absolutePath,
          displayPath: source.absolutePath,
          destinationPath,
          segno: source.segno ?? 0,
          checksumsEnabled: options.checksumsEnabled,
          skipBlockValidation: options.params.skipBlockValidation,
          compressAlgorithm: options.compressAlgorithm,
          compressLevel: options.compressLevel,
          sync: options.sync,
          ...selection,
        };
        // On a remote PGDATA the agent reads, checks, selects and compresses the pages there, so
        // only the stored records cross the network (core/storage/ssh).
        const remote = remoteStorageFor(storage, source.absolutePath);
        const copied = remote
          ? await withHeaderPlace(
              await copyDataFileByRanges(storage, job, {
                rangeBlocks: REMOTE_RANGE_BLOCKS,
                rangesInFlight: REMOTE_RANGES_IN_FLIGHT,
                runRange: (range) => remote.copyPageRange(range),
              }),
              headerMap,
            )
          : await pool.copyDataFile({ storage, headerMap, ...job });
        const fullSize = copied.storedPages * 8192;
        // PAGE-style modes read only some blocks: the file's length when listed is its block count.
        const nBlocks = selection.blocks ? Math.floor(source.sizeBytes / 8192) : copied.nBlocks;
        const unchanged = copied.storedPages === 0 && parentEntry !== undefined;
        return {
          ...fileEntry(
            source.path,
            source.mode,
            unchanged ? -1 : copied.writeSizeBytes,
            unchanged ? 0 : copied.crc,
            source.dbOid,
          ),
          isDatafile: true,
          compressAlg: options.compressAlgorithm,
          fullSize: fullSize !== 0 && fullSize !== copied.writeSizeBytes ? fullSize : undefined,
          segno: source.segno,
          nBlocks: nBlocks > 0 ? nBlocks : undefined,
          nHeaders: copied.header ? copied.storedPages : undefined,
          hdrCrc: copied.header?.hdrCrc,
          hdrOff: copied.header?.hdrOff,
          hdrSize: copied.header?.hdrSize,
        };
      }
      if (options.incremental) {
        const same = await unchangedSinceParent(
          ctx,
          source,
          parentEntry,
          options.incremental.parent.startTime,
        );
        if (same) {
          return {
            ...fileEntry(source.path, source.mode, -1, same.crc, source.dbOid),
            fullSize: same.sizeBytes || undefined,
            externalDirNum,
          };
        }
      }
      const copied = await pool.copyWholeFile(
        storage,
        source.absolutePath,
        destinationPath,
        source.mode,
        options.sync,
      );
      return {
        ...fileEntry(source.path, source.mode, copied.sizeBytes, copied.crc, source.dbOid),
        externalDirNum,
      };
    } catch (error) {
      // A file dropped while the backup runs (a dropped table) is simply not in the backup.
      if ((error as { code?: string }).code === 'ENOENT') return undefined;
      throw error;
    } finally {
      done++;
      logger.log(
        progressLevel,
        `Progress: (${done}/${files.length + 1}). Process file "${source.path}"`,
      );
    }
  };
  const copied = await Promise.all(files.map((source) => limit(() => copyOne(source)))).finally(
    () => pool.close(),
  );
  for (const entry of copied) if (entry) entries.push(entry);

  logger.log(
    'LOG',
    `Stored ${copied.filter((entry) => entry && entry.size > 0).length} of ${files.length} files in this backup`,
  );
  const control = options.sources.find((source) => source.path === 'global/pg_control');
  if (!control) throw new StrataError('io', `pg_control is missing: "${databaseDir}"`);
  const controlBytes = await storage.readFile(control.absolutePath);
  const parsed = parseControlFile(controlBytes);
  await storage.writeFile(`${databaseDir}/global/pg_control`, controlBytes, {
    mode: control.mode & 0o7777,
    sync: options.sync,
  });
  entries.push(fileEntry('global/pg_control', control.mode, controlBytes.length, parsed.crc));
  await headerMap.close(options.sync);
  logger.info(
    `Data files are transferred, time elapsed: ${prettyTimeInterval((ctx.now() - startedMs) / 1000)}`,
  );
  return entries;
}

/**
 * Which pages of a data file an incremental backup stores (catalog-format §7.3.3): FULL and files
 * new since the parent take every page; DELTA takes pages at or after the parent's start LSN;
 * PAGE, PTRACK and SUMMARY read only the blocks their map names (PTRACK also filtered by LSN, as
 * its map may hold false positives).
 */
function pageSelection(
  incremental: IncrementalSource | undefined,
  source: SourceEntry,
  parentEntry: FileEntry | undefined,
): { keepPagesFromLsn?: bigint; blocks?: Uint32Array } {
  if (!incremental || !parentEntry) return {};
  const fromLsn = incremental.parent.startLsn;
  if (incremental.mode === 'DELTA') return { keepPagesFromLsn: fromLsn };
  const changed = incremental.changedBlocks?.get(source.path);
  const blocks = Uint32Array.from(changed ?? []).sort();
  return incremental.mode === 'PTRACK' ? { blocks, keepPagesFromLsn: fromLsn } : { blocks };
}

async function recordStartsAt(
  source: WalSegmentSource,
  timelineId: number,
  segSize: number,
  lsn: Lsn,
): Promise<boolean> {
  const reader = new WalReader({ source, timelineId, walSegmentSizeBytes: segSize });
  return (await reader.readRecord(lsn)).kind === 'record';
}

/** The start of the last WAL record that begins before `beforeLsn`, reading from `fromLsn`. */
async function lastRecordBefore(
  source: WalSegmentSource,
  timelineId: number,
  segSize: number,
  fromLsn: Lsn,
  beforeLsn: Lsn,
): Promise<Lsn> {
  const reader = new WalReader({ source, timelineId, walSegmentSizeBytes: segSize });
  let last: Lsn | undefined;
  let next: Lsn | undefined = fromLsn;
  for (;;) {
    const result = await reader.readRecord(next);
    next = undefined;
    if (result.kind === 'end' || result.record.lsn >= beforeLsn) break;
    last = result.record.lsn;
  }
  if (last === undefined) {
    throw new StrataError(
      'wal',
      `Cannot find a WAL record between ${formatLsn(fromLsn)} and ${formatLsn(beforeLsn)} for the stop LSN`,
    );
  }
  return last;
}
