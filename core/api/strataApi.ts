import { BackupCatalog } from '../catalog/catalog.js';
import type { CatalogBackup } from '../catalog/catalog.js';
import type { InstanceConfig } from '../catalog/instanceConfig.js';
import { DEFAULT_XLOG_SEG_SIZE_BYTES } from '../catalog/instanceConfig.js';
import { parseProbackupTime } from '../catalog/time.js';
import type { FileEntry } from '../catalog/types.js';
import { readArchiveTimelines } from '../commands/archiveCatalog/readTimelines.js';
import { runBackup } from '../commands/backup/backup.js';
import type { CommandContext } from '../commands/context.js';
import { deleteCommand } from '../commands/delete/deleteCommand.js';
import { mergeBackup } from '../commands/merge/merge.js';
import { restoreBackup } from '../commands/restore/restore.js';
import type { RestoreParams } from '../commands/restore/types.js';
import { setBackup } from '../commands/setBackup/setBackup.js';
import { parentTimelines } from '../commands/show/showJson.js';
import { readTablespaceMap } from '../commands/show/tablespaceMap.js';
import { validateCommand } from '../commands/validate/validateCommand.js';
import { StrataError, isStrataError } from '../errors.js';
import { createLogger } from '../log.js';
import type { Storage } from '../storage/storage.js';
import { storageErrorCode } from '../storage/storage.js';
import {
  backupCommandLine,
  deleteCommandLine,
  demoCommandLine,
  mergeCommandLine,
  pathMappingArgument,
  restoreCommandLine,
  restoreTargetOf,
  setBackupCommandLine,
  shellQuote,
  validateCommandLine,
} from './cliCommand.js';
import type {
  BackupDetails,
  BackupRequest,
  CatalogInfo,
  InstanceSummary,
  JobInfo,
  RecoveryTargetRequest,
  RestoreRequest,
  StrataApi,
} from './contract.js';
import { createDemo, defaultDemoDir, existingDemoCatalog } from './demo.js';
import { JobRunner } from './jobRunner.js';
import { planRestore } from './restorePlan.js';
import {
  backupDatabases,
  isDirectoryEntry,
  toArchiveTimelines,
  toBackupFile,
  toBackupSummary,
  toInstanceSummary,
} from './views.js';

export interface StrataApiOptions {
  storage: Storage;
  /**
   * How PostgreSQL runs Strata from archive_command and the generated restore_command: a quoted
   * command prefix, e.g. `"/usr/bin/node" "/opt/strata/dist/strata.mjs"` (the CLI), or
   * `ELECTRON_RUN_AS_NODE=1 "<electron>" "<app>/dist/strata.mjs"` (the desktop app).
   */
  strataCommand: string;
  /** The per-user demo directory; `defaultDemoDir()` when absent. */
  demoDir?: string;
  /** Directories whose node_modules may hold PostgreSQL packages for the demo (a source checkout). */
  searchDirs?: readonly string[];
  /** initdb / pg_ctl / postgres for the demo, instead of searching. */
  postgresBinDir?: string;
  /** Unix milliseconds (tests fix it). */
  now?: () => number;
}

/** The API as its host process holds it: the contract plus what only the host may do. */
export interface LocalStrataApi extends StrataApi {
  /** The job as it ended (tests; `strata ui --demo` waits for its demo before printing the URL). */
  waitForJob(jobId: string): Promise<JobInfo>;
}

const silentLogger = createLogger(() => undefined);

function describeTarget(target: RecoveryTargetRequest): string {
  switch (target.kind) {
    case 'latest':
      return 'the latest state';
    case 'immediate':
      return 'the end of the backup';
    case 'time':
      return `time ${target.time}`;
    case 'lsn':
      return `LSN ${target.lsn}`;
    case 'xid':
      return `xid ${target.xid}`;
    case 'name':
      return `restore point '${target.name}'`;
  }
}

/** `/a/b` → `"/a/b" is not a backup catalog …`, for a folder picked by hand that is not one. */
async function openExistingCatalog(storage: Storage, backupPath: string): Promise<BackupCatalog> {
  const catalog = new BackupCatalog(storage, backupPath);
  const stat = await storage.stat(catalog.backupsDir);
  if (stat?.type !== 'directory') {
    const reason =
      (await storage.stat(backupPath)) === null
        ? 'it does not exist'
        : 'it has no backups/ directory';
    throw new StrataError(
      'catalog',
      `"${backupPath}" is not a backup catalog: ${reason}. Choose the directory given to ` +
        "`strata init -B` or pg_probackup's BACKUP_PATH.",
    );
  }
  return catalog;
}

async function readConfigLeniently(
  catalog: BackupCatalog,
  instance: string,
): Promise<InstanceConfig> {
  try {
    return await catalog.readInstanceConfig(instance);
  } catch (error) {
    if (isStrataError(error) || storageErrorCode(error) === 'ENOENT') return {};
    throw error;
  }
}

async function requireBackup(
  catalog: BackupCatalog,
  instance: string,
  backupId: string,
): Promise<CatalogBackup> {
  await catalog.assertInstanceExists(instance);
  const backup = await catalog.readBackup(instance, backupId);
  if (!backup) {
    throw new StrataError(
      'backup-not-found',
      `Backup ${backupId} is not found in instance '${instance}' of "${catalog.backupPath}"`,
    );
  }
  return backup;
}

/** The file list of a backup that may have none yet (RUNNING) or a damaged one: empty then. */
async function contentListOrEmpty(
  catalog: BackupCatalog,
  backup: CatalogBackup,
): Promise<FileEntry[]> {
  try {
    return await catalog.readContentList(backup);
  } catch (error) {
    if (isStrataError(error)) return [];
    throw error;
  }
}

function restoreParamsOf(request: RestoreRequest, strataCommand: string): RestoreParams {
  return {
    backupPath: request.backupPath,
    instance: request.instance,
    pgdata: request.destination,
    ...(request.backupId !== undefined ? { backupId: request.backupId } : {}),
    target: restoreTargetOf(request),
    restoreAsReplica: request.restoreAsReplica !== undefined,
    ...(request.restoreAsReplica?.primaryConninfo !== undefined
      ? { primaryConninfo: request.restoreAsReplica.primaryConninfo }
      : {}),
    ...(request.restoreAsReplica?.slotName !== undefined
      ? { primarySlotName: request.restoreAsReplica.slotName }
      : {}),
    noValidate: false,
    force: false,
    skipBlockValidation: false,
    threads: request.threads ?? 1,
    noSync: false,
    strataCommandPath: strataCommand,
    progress: false,
    ...(request.incrementalMode !== undefined ? { incrementalMode: request.incrementalMode } : {}),
    ...(request.includeDatabases !== undefined ? { dbInclude: request.includeDatabases } : {}),
    ...(request.tablespaceMapping !== undefined
      ? { tablespaceMapping: request.tablespaceMapping.map(pathMappingArgument) }
      : {}),
    ...(request.externalMapping !== undefined
      ? { externalMapping: request.externalMapping.map(pathMappingArgument) }
      : {}),
  };
}

function backupParamsOf(request: BackupRequest) {
  const connection = request.connection ?? {};
  return {
    backupPath: request.backupPath,
    instance: request.instance,
    backupMode: request.mode,
    stream: request.stream,
    tempSlot: false,
    permSlot: false,
    smoothCheckpoint: false,
    threads: request.threads ?? 1,
    progress: false,
    connection: {
      ...(connection.host !== undefined ? { pghost: connection.host } : {}),
      ...(connection.port !== undefined ? { pgport: connection.port } : {}),
      ...(connection.user !== undefined ? { pguser: connection.user } : {}),
      ...(connection.database !== undefined ? { pgdatabase: connection.database } : {}),
    },
    ...(request.compressAlg !== undefined ? { compressAlgorithm: request.compressAlg } : {}),
    ...(request.compressLevel !== undefined ? { compressLevel: request.compressLevel } : {}),
    ...(request.note !== undefined ? { note: request.note.split('\n')[0]! } : {}),
    noValidate: false,
    noSync: false,
    skipBlockValidation: false,
    backupPgLog: false,
  };
}

/**
 * StrataApi over the engine (core/commands): reads go straight to the catalog, everything that
 * changes something is a job of a JobRunner. Every argument is trusted here: the web server and
 * Electron IPC validate with schema.ts before calling.
 */
export function createStrataApi(options: StrataApiOptions): LocalStrataApi {
  const { storage, strataCommand } = options;
  const now = options.now ?? Date.now;
  const runner = new JobRunner({ storage, now });
  const demoDir = options.demoDir ?? defaultDemoDir();
  const readContext: CommandContext = { storage, logger: silentLogger, now };
  let demoJobId: string | undefined;

  const instanceSummary = async (
    catalog: BackupCatalog,
    name: string,
  ): Promise<InstanceSummary> => {
    const config = await readConfigLeniently(catalog, name);
    return toInstanceSummary(name, config, await catalog.listBackups(name));
  };

  return {
    async openCatalog(backupPath): Promise<CatalogInfo> {
      const catalog = await openExistingCatalog(storage, backupPath);
      const instances: InstanceSummary[] = [];
      for (const name of await catalog.listInstances())
        instances.push(await instanceSummary(catalog, name));
      return { backupPath, instances };
    },

    async listBackups(backupPath, instance) {
      const catalog = await openExistingCatalog(storage, backupPath);
      await catalog.assertInstanceExists(instance);
      const backups = await catalog.listBackups(instance);
      const parentTli = parentTimelines(backups);
      return backups.map((backup) =>
        toBackupSummary(instance, backup, parentTli.get(backup.id) ?? 0),
      );
    },

    async getBackup(backupPath, instance, backupId): Promise<BackupDetails> {
      const catalog = await openExistingCatalog(storage, backupPath);
      const backup = await requireBackup(catalog, instance, backupId);
      const backups = await catalog.listBackups(instance);
      const parentTli = parentTimelines(backups);
      const entries = await contentListOrEmpty(catalog, backup);
      const databaseMap = await catalog.readDatabaseMap(backup).catch((error: unknown) => {
        if (isStrataError(error)) return undefined;
        throw error;
      });
      const tablespaces = (await readTablespaceMap(storage, backup.dir)) ?? [];
      return {
        ...toBackupSummary(instance, backup, parentTli.get(backup.id) ?? 0),
        databases: backupDatabases(databaseMap, entries),
        tablespaces: tablespaces.map((link) => ({ oid: link.oid, path: link.path })),
        externalDirs:
          backup.externalDirs === undefined
            ? []
            : backup.externalDirs.split(':').filter((dir) => dir !== ''),
        chain: catalog.resolveBackupChain(backups, backup.id).chain.map((member) => member.id),
      };
    },

    async listBackupFiles(backupPath, instance, backupId, page) {
      const catalog = await openExistingCatalog(storage, backupPath);
      const backup = await requireBackup(catalog, instance, backupId);
      const filter = page.pathFilter?.toLowerCase() ?? '';
      const files = (await catalog.readContentList(backup))
        .filter(
          (entry) =>
            !isDirectoryEntry(entry) &&
            (filter === '' || entry.path.toLowerCase().includes(filter)),
        )
        .sort(
          (a, b) =>
            a.externalDirNum - b.externalDirNum || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0),
        );
      return {
        files: files.slice(page.offset, page.offset + page.limit).map(toBackupFile),
        total: files.length,
      };
    },

    async listTimelines(backupPath, instance) {
      const catalog = await openExistingCatalog(storage, backupPath);
      await catalog.assertInstanceExists(instance);
      const config = await readConfigLeniently(catalog, instance);
      const walSegmentSizeBytes = config.xlogSegSize || DEFAULT_XLOG_SEG_SIZE_BYTES;
      const timelines = await readArchiveTimelines(readContext, {
        catalog,
        instance,
        backups: await catalog.listBackups(instance),
        walSegmentSizeBytes,
        walDepth: 0,
        onBadHistory: 'warn',
      });
      return toArchiveTimelines(timelines, walSegmentSizeBytes);
    },

    async planRestore(request) {
      await openExistingCatalog(storage, request.backupPath);
      return planRestore(readContext, request);
    },

    async startRestore(request) {
      await openExistingCatalog(storage, request.backupPath);
      return runner.start({
        kind: 'restore',
        title: `Restore ${request.instance} to ${describeTarget(request.target)} into ${request.destination}`,
        cliCommand: restoreCommandLine(request),
        changes: { backupPath: request.backupPath, instance: request.instance },
        async run(ctx) {
          const result = await restoreBackup(ctx, restoreParamsOf(request, strataCommand));
          ctx.logger.info(
            `Restored backup ${result.backupId} into "${request.destination}". Start the server with: ` +
              `pg_ctl -D ${shellQuote(request.destination)} start`,
          );
        },
      });
    },

    async startBackup(request) {
      await openExistingCatalog(storage, request.backupPath);
      return runner.start({
        kind: 'backup',
        title: `${request.mode} backup of ${request.instance} (${request.stream ? 'STREAM' : 'ARCHIVE'})`,
        cliCommand: backupCommandLine(request),
        changes: { backupPath: request.backupPath, instance: request.instance },
        async run(ctx) {
          const result = await runBackup(ctx, backupParamsOf(request));
          if (request.ttlSeconds !== undefined) {
            await setBackup(ctx, {
              backupPath: request.backupPath,
              instance: request.instance,
              backupId: result.backupId,
              ttlSec: request.ttlSeconds,
            });
          }
        },
      });
    },

    async startValidate(backupPath, instance, backupId) {
      await openExistingCatalog(storage, backupPath);
      return runner.start({
        kind: 'validate',
        title:
          backupId === undefined
            ? `Validate every backup of ${instance}`
            : `Validate backup ${backupId} of ${instance}`,
        cliCommand: validateCommandLine(backupPath, instance, backupId),
        changes: { backupPath, instance },
        async run(ctx) {
          const valid = await validateCommand(ctx, {
            backupPath,
            instance,
            ...(backupId !== undefined ? { backupId } : {}),
            target: {},
            threads: 1,
            skipBlockValidation: false,
          });
          if (!valid) {
            throw new StrataError(
              'corrupt',
              'Some backups are not valid: see the warnings above for the files and blocks',
            );
          }
        },
      });
    },

    async startMerge(backupPath, instance, backupId) {
      await openExistingCatalog(storage, backupPath);
      return runner.start({
        kind: 'merge',
        title: `Merge backup ${backupId} of ${instance} into its FULL backup`,
        cliCommand: mergeCommandLine(backupPath, instance, backupId),
        changes: { backupPath, instance },
        async run(ctx) {
          await mergeBackup(ctx, {
            backupPath,
            instance,
            backupId,
            threads: 1,
            noValidate: false,
            noSync: false,
            progress: false,
          });
        },
      });
    },

    async startDelete(backupPath, instance, backupId) {
      await openExistingCatalog(storage, backupPath);
      return runner.start({
        kind: 'delete',
        title: `Delete backup ${backupId} of ${instance} and its descendants`,
        cliCommand: deleteCommandLine(backupPath, instance, backupId),
        changes: { backupPath, instance },
        async run(ctx) {
          await deleteCommand(ctx, {
            backupPath,
            instance,
            backupId,
            deleteExpired: false,
            mergeExpired: false,
            deleteWal: false,
            dryRun: false,
            retention: {},
            threads: 1,
            noValidate: false,
            noSync: false,
            progress: false,
          });
        },
      });
    },

    async setPin(backupPath, instance, backupId, pin) {
      await openExistingCatalog(storage, backupPath);
      let expireTimeSec: number | undefined;
      if (pin.expireTime !== undefined) {
        const parsed = parseProbackupTime(pin.expireTime, 'local');
        if (parsed === null) {
          throw new StrataError(
            'usage',
            `Invalid expire time '${pin.expireTime}': write it as YYYY-MM-DD HH:MM:SS, optionally with a zone (+02)`,
          );
        }
        expireTimeSec = parsed;
      }
      const what =
        pin.ttlSeconds === 0
          ? 'Unpin'
          : pin.ttlSeconds !== undefined || expireTimeSec !== undefined
            ? 'Pin'
            : 'Set the note of';
      return runner.start({
        kind: 'pin',
        title: `${what} backup ${backupId} of ${instance}`,
        cliCommand: setBackupCommandLine(backupPath, instance, backupId, pin),
        changes: { backupPath, instance },
        async run(ctx) {
          await setBackup(ctx, {
            backupPath,
            instance,
            backupId,
            ...(pin.ttlSeconds !== undefined ? { ttlSec: pin.ttlSeconds } : {}),
            ...(expireTimeSec !== undefined ? { expireTimeSec } : {}),
            ...(pin.note !== undefined ? { note: pin.note } : {}),
          });
        },
      });
    },

    async cancelJob(jobId) {
      runner.cancel(jobId);
    },

    async listJobs() {
      return runner.list();
    },

    async getJobLog(jobId) {
      return runner.log(jobId);
    },

    async demoCatalog() {
      return existingDemoCatalog(readContext, demoDir);
    },

    async startDemo() {
      const running = runner.list().find((job) => job.id === demoJobId && job.state === 'running');
      if (running) return running;
      const job = runner.start({
        kind: 'demo',
        title:
          'Create the demo: a sandbox PostgreSQL cluster, its catalog, backups and archived WAL',
        cliCommand: demoCommandLine,
        async run(ctx, control) {
          const catalog = await createDemo(ctx, control, {
            demoDir,
            strataCommand,
            searchDirs: options.searchDirs ?? [process.cwd()],
            ...(options.postgresBinDir !== undefined
              ? { postgresBinDir: options.postgresBinDir }
              : {}),
          });
          runner.publish({ type: 'catalog-changed', backupPath: catalog, instance: 'demo' });
        },
      });
      demoJobId = job.id;
      return job;
    },

    subscribe(listener) {
      return runner.subscribe(listener);
    },

    waitForJob(jobId) {
      return runner.waitFor(jobId);
    },
  };
}
