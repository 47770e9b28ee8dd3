import { BackupCatalog } from '../catalog/catalog.js';
import type { CatalogBackup } from '../catalog/catalog.js';
import type { InstanceConfig } from '../catalog/instanceConfig.js';
import { DEFAULT_XLOG_SEG_SIZE_BYTES } from '../catalog/instanceConfig.js';
import { parseProbackupTime } from '../catalog/time.js';
import type { FileEntry } from '../catalog/types.js';
import { readArchiveTimelines } from '../commands/archiveCatalog/readTimelines.js';
import { runBackup } from '../commands/backup/backup.js';
import { STRATA_VERSION, type CommandContext } from '../commands/context.js';
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
import { SplitStorage } from '../storage/ssh/splitStorage.js';
import type { Storage } from '../storage/storage.js';
import { storageErrorCode } from '../storage/storage.js';
import { hostname, userInfo } from 'node:os';
import { parseCatalogLocation } from './catalogLocation.js';
import {
  backupCommandLine,
  deleteCommandLine,
  demoCommandLine,
  mergeCommandLine,
  onHost,
  pathMappingArgument,
  remoteArguments,
  restoreCommandLine,
  restoreTargetOf,
  setBackupCommandLine,
  shellQuote,
  validateCommandLine,
  type SshHostWords,
} from './cliCommand.js';
import type {
  BackupDetails,
  BackupRequest,
  CatalogInfo,
  InstanceSummary,
  JobInfo,
  RecoveryTargetRequest,
  RemoteHostInfo,
  RestoreRequest,
  StrataApi,
} from './contract.js';
import { createDemo, defaultDemoDir, existingDemoCatalog } from './demo.js';
import { JobRunner } from './jobRunner.js';
import { RemoteHosts, type RemoteHostsOptions } from './remoteHosts.js';
import { planRestore } from './restorePlan.js';
import {
  backupDatabases,
  instanceRemote,
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
  /** SSH settings of the hosts the app connects to (tests point known_hosts and keys elsewhere). */
  ssh?: Omit<RemoteHostsOptions, 'programVersion'>;
}

/** The API as its host process holds it: the contract plus what only the host may do. */
export interface LocalStrataApi extends StrataApi {
  /** The job as it ended (tests; `strata ui --demo` waits for its demo before printing the URL). */
  waitForJob(jobId: string): Promise<JobInfo>;
  /** Ends the SSH connections (the agents exit with them). */
  close(): Promise<void>;
}

/** A catalog location resolved: the Storage of its host, the path there, and the host. */
interface LocatedCatalog {
  storage: Storage;
  path: string;
  /** The connected host holding the catalog; undefined for this computer. */
  host: RemoteHostInfo | undefined;
  ctx: CommandContext;
}

/** This computer as seen from another host, for a command line run there that reaches back here. */
function thisComputer(): SshHostWords {
  return { host: hostname(), port: 22, user: userInfo().username };
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

function restoreParamsOf(
  request: RestoreRequest,
  strataCommand: string,
  archive: { host: string; port: number; user: string } | undefined,
): RestoreParams {
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
    ...(archive !== undefined
      ? {
          archiveHost: archive.host,
          archivePort: String(archive.port),
          archiveUser: archive.user,
        }
      : {}),
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
    // Pinned by the backup itself, under its own lock and before its validation (pg_probackup's do_backup).
    ...(request.ttlSeconds !== undefined && request.ttlSeconds > 0
      ? { ttlSec: request.ttlSeconds }
      : {}),
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
  const hosts = new RemoteHosts({ programVersion: STRATA_VERSION, ...options.ssh });
  let demoJobId: string | undefined;

  const locate = (location: string): LocatedCatalog => {
    const { hostId, path } = parseCatalogLocation(location);
    if (hostId === undefined) return { storage, path, host: undefined, ctx: readContext };
    const remote = hosts.storage(hostId);
    return {
      storage: remote,
      path,
      host: hosts.info(hostId),
      ctx: { ...readContext, storage: remote },
    };
  };

  const openCatalogAt = async (location: string) => {
    const at = locate(location);
    return { at, catalog: await openExistingCatalog(at.storage, at.path) };
  };

  const instanceSummary = async (
    catalog: BackupCatalog,
    name: string,
  ): Promise<InstanceSummary> => {
    const config = await readConfigLeniently(catalog, name);
    return toInstanceSummary(name, config, await catalog.listBackups(name));
  };

  /**
   * Where a restore reads and writes: the catalog on its host, the destination on this computer
   * or a connected host; the equivalent command runs on the catalog's host with `--remote-*`
   * options reaching the destination's; the restore_command runs on the destination's host.
   */
  const restoreSetup = async (request: RestoreRequest) => {
    const { at, catalog } = await openCatalogAt(request.backupPath);
    const config = await readConfigLeniently(catalog, request.instance);
    const destinationHost =
      request.destinationHost !== undefined ? hosts.info(request.destinationHost) : undefined;
    const destinationStorage =
      destinationHost !== undefined ? hosts.storage(destinationHost.id) : storage;
    const sameHost = at.host?.id === destinationHost?.id;
    const jobStorage = sameHost
      ? at.storage
      : new SplitStorage({ roots: [at.path], inside: at.storage, outside: destinationStorage });
    const engineRequest: RestoreRequest = { ...request, backupPath: at.path };
    const remoteWords = sameHost
      ? instanceRemote(config) !== null
        ? remoteArguments('none')
        : []
      : remoteArguments(destinationHost ?? thisComputer());
    const cliCommand = onHost(restoreCommandLine(engineRequest, remoteWords), at.host);
    const archive = at.host !== undefined && !sameHost && !config.archiveHost ? at.host : undefined;
    return {
      at,
      config,
      destinationHost,
      ctx: { ...readContext, storage: jobStorage },
      engineRequest,
      cliCommand,
      archive,
      restoreStrataCommand: destinationHost === undefined ? strataCommand : 'strata',
    };
  };

  return {
    async openCatalog(backupPath): Promise<CatalogInfo> {
      const { catalog } = await openCatalogAt(backupPath);
      const instances: InstanceSummary[] = [];
      for (const name of await catalog.listInstances())
        instances.push(await instanceSummary(catalog, name));
      return { backupPath, instances };
    },

    async listBackups(backupPath, instance) {
      const { catalog } = await openCatalogAt(backupPath);
      await catalog.assertInstanceExists(instance);
      const backups = await catalog.listBackups(instance);
      const parentTli = parentTimelines(backups);
      return backups.map((backup) =>
        toBackupSummary(instance, backup, parentTli.get(backup.id) ?? 0),
      );
    },

    async getBackup(backupPath, instance, backupId): Promise<BackupDetails> {
      const { at, catalog } = await openCatalogAt(backupPath);
      const backup = await requireBackup(catalog, instance, backupId);
      const backups = await catalog.listBackups(instance);
      const parentTli = parentTimelines(backups);
      const entries = await contentListOrEmpty(catalog, backup);
      const databaseMap = await catalog.readDatabaseMap(backup).catch((error: unknown) => {
        if (isStrataError(error)) return undefined;
        throw error;
      });
      const tablespaces = (await readTablespaceMap(at.storage, backup.dir)) ?? [];
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
      const { catalog } = await openCatalogAt(backupPath);
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
      const { at, catalog } = await openCatalogAt(backupPath);
      await catalog.assertInstanceExists(instance);
      const config = await readConfigLeniently(catalog, instance);
      const walSegmentSizeBytes = config.xlogSegSize || DEFAULT_XLOG_SEG_SIZE_BYTES;
      const timelines = await readArchiveTimelines(at.ctx, {
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
      const setup = await restoreSetup(request);
      return planRestore(setup.ctx, setup.engineRequest, setup.cliCommand);
    },

    async startRestore(request) {
      const setup = await restoreSetup(request);
      const where = setup.destinationHost ? ` on ${setup.destinationHost.id}` : '';
      return runner.start({
        kind: 'restore',
        title: `Restore ${request.instance} to ${describeTarget(request.target)} into ${request.destination}${where}`,
        cliCommand: setup.cliCommand,
        changes: { backupPath: request.backupPath, instance: request.instance },
        storage: setup.ctx.storage,
        async run(ctx) {
          const result = await restoreBackup(
            ctx,
            restoreParamsOf(setup.engineRequest, setup.restoreStrataCommand, setup.archive),
          );
          ctx.logger.info(
            `Restored backup ${result.backupId} into "${request.destination}"${where}. Start the server with: ` +
              `pg_ctl -D ${shellQuote(request.destination)} start`,
          );
        },
      });
    },

    async startBackup(request) {
      const { at, catalog } = await openCatalogAt(request.backupPath);
      const engineRequest: BackupRequest = { ...request, backupPath: at.path };
      if (at.host !== undefined) {
        throw new StrataError(
          'usage',
          `Backups of a catalog on ${at.host.id} run on that host, next to the catalog and the ` +
            `database: ${onHost(backupCommandLine(engineRequest), at.host)}`,
        );
      }
      const remote = instanceRemote(await readConfigLeniently(catalog, request.instance));
      let jobStorage = storage;
      let from = '';
      if (remote !== null) {
        const hostId = hosts.find(remote);
        if (hostId === undefined) {
          throw new StrataError(
            'remote-not-connected',
            `Instance '${request.instance}' is backed up over SSH from ${remote.user ?? userInfo().username}@${remote.host}:${remote.port} ` +
              '(remote-host in its pg_probackup.conf): connect to that host first',
          );
        }
        jobStorage = new SplitStorage({
          roots: [at.path],
          inside: storage,
          outside: hosts.storage(hostId),
        });
        from = ` from ${hostId}`;
      }
      return runner.start({
        kind: 'backup',
        title: `${request.mode} backup of ${request.instance}${from} (${request.stream ? 'STREAM' : 'ARCHIVE'})`,
        cliCommand: backupCommandLine(engineRequest),
        changes: { backupPath: request.backupPath, instance: request.instance },
        storage: jobStorage,
        async run(ctx) {
          await runBackup(ctx, backupParamsOf(engineRequest));
        },
      });
    },

    async startValidate(backupPath, instance, backupId) {
      const { at } = await openCatalogAt(backupPath);
      return runner.start({
        kind: 'validate',
        title:
          backupId === undefined
            ? `Validate every backup of ${instance}`
            : `Validate backup ${backupId} of ${instance}`,
        cliCommand: onHost(validateCommandLine(at.path, instance, backupId), at.host),
        changes: { backupPath, instance },
        storage: at.storage,
        async run(ctx) {
          const valid = await validateCommand(ctx, {
            backupPath: at.path,
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
      const { at } = await openCatalogAt(backupPath);
      return runner.start({
        kind: 'merge',
        title: `Merge backup ${backupId} of ${instance} into its FULL backup`,
        cliCommand: onHost(mergeCommandLine(at.path, instance, backupId), at.host),
        changes: { backupPath, instance },
        storage: at.storage,
        async run(ctx) {
          await mergeBackup(ctx, {
            backupPath: at.path,
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
      const { at } = await openCatalogAt(backupPath);
      return runner.start({
        kind: 'delete',
        title: `Delete backup ${backupId} of ${instance} and its descendants`,
        cliCommand: onHost(deleteCommandLine(at.path, instance, backupId), at.host),
        changes: { backupPath, instance },
        storage: at.storage,
        async run(ctx) {
          await deleteCommand(ctx, {
            backupPath: at.path,
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
      const { at } = await openCatalogAt(backupPath);
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
        cliCommand: onHost(setBackupCommandLine(at.path, instance, backupId, pin), at.host),
        changes: { backupPath, instance },
        storage: at.storage,
        async run(ctx) {
          await setBackup(ctx, {
            backupPath: at.path,
            instance,
            backupId,
            ...(pin.ttlSeconds !== undefined ? { ttlSec: pin.ttlSeconds } : {}),
            ...(expireTimeSec !== undefined ? { expireTimeSec } : {}),
            ...(pin.note !== undefined ? { note: pin.note } : {}),
          });
        },
      });
    },

    connectHost(request) {
      return hosts.connect(request);
    },

    async listHosts() {
      return hosts.list();
    },

    disconnectHost(hostId) {
      return hosts.disconnect(hostId);
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

    close() {
      return hosts.closeAll();
    },
  };
}
