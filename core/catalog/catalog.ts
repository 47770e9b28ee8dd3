import { posix } from 'node:path';
import { StrataError, errorText, isStrataError } from '../errors.js';
import { crc32c } from '../format/crc32c.js';
import { createLogger } from '../log.js';
import type { Logger } from '../log.js';
import type { DirEntry, Storage } from '../storage/storage.js';
import { storageErrorCode } from '../storage/storage.js';
import { backupIdFromTime, decodeBackupIdPrefix } from './backupId.js';
import { defaultBackupMeta, formatBackupControl, parseBackupControl } from './backupControl.js';
import { finishInterruptedDeletes } from './backupRemoval.js';
import { formatContentList, parseContentList } from './contentList.js';
import { parseDatabaseMap } from './databaseMap.js';
import { readInstanceConfig, remoteConfigFields, writeInstanceConfig } from './instanceConfig.js';
import type { InstanceConfig } from './instanceConfig.js';
import {
  heldBackupLock,
  lockBackupExclusive,
  lockBackupShared,
  releaseBackupLock,
} from './locks.js';
import type { BackupMeta, BackupStatus, DatabaseMapEntry, FileEntry } from './types.js';

/**
 * The backup catalog as a whole (spec/catalog-format.md §1): `backups/<instance>/` with the
 * instance configuration and one directory per backup, `wal/<instance>/` with the WAL archive.
 * All file access goes through Storage.
 */

/** A backup as listed: its metadata, its directory, and what was wrong reading it (warnings). */
export type CatalogBackup = BackupMeta & { dir: string; problems: string[] };

/** Where a backup's files are; a CatalogBackup is one. */
export interface BackupLocation {
  dir: string;
  id: string;
  contentCrc: number;
}

export interface BackupChain {
  /** FULL first, the requested backup last; when broken, from the oldest backup found. */
  chain: CatalogBackup[];
  /** The chain does not reach a FULL backup (a parent is missing, or a member has no parent). */
  broken: boolean;
  /** ID of the parent that is not in the catalog, when that is why the chain is broken. */
  missingParentId?: string;
  /** Oldest member whose status is not OK or DONE, when the chain is not broken. */
  invalid?: CatalogBackup;
}

const DIRECTORY_MODE = 0o700;
const CONTROL_FILE_MODE = 0o600;
const BACKUP_CONTROL_FILE = 'backup.control';
const CONTENT_LIST_FILE = 'backup_content.control';
const INSTANCE_CONFIG_FILE = 'pg_probackup.conf';
const DATABASE_DIR = 'database';
const DATABASE_MAP_FILE = 'database_map';

const silentLogger = createLogger(() => undefined);

function isValidStatus(status: BackupStatus): boolean {
  return status === 'OK' || status === 'DONE';
}

/**
 * Resolves the chain of backup `id` through `parent-backup-id` links down to its FULL backup, as
 * pg_probackup's scan_parent_chain: broken when a link is missing, invalid when a member is not
 * OK/DONE. `backups` is a listing of the instance (any order).
 */
export function resolveBackupChain(backups: readonly CatalogBackup[], id: string): BackupChain {
  const targetTime = decodeBackupIdPrefix(id);
  const byStartTime = new Map(backups.map((backup) => [backup.startTime, backup]));
  const target = byStartTime.get(targetTime);
  if (!target || targetTime === 0)
    throw new StrataError('backup-not-found', `Requested backup ${id} is not found.`);
  const chain = [target];
  let current = target;
  while (current.backupMode !== 'FULL') {
    const parentId = current.parentBackupId;
    const parent =
      parentId === undefined ? undefined : byStartTime.get(decodeBackupIdPrefix(parentId));
    if (!parent || chain.includes(parent)) {
      return {
        chain,
        broken: true,
        ...(parentId !== undefined && !parent ? { missingParentId: parentId } : {}),
      };
    }
    chain.unshift(parent);
    current = parent;
  }
  const invalid = chain.find((member) => !isValidStatus(member.status));
  return { chain, broken: false, ...(invalid ? { invalid } : {}) };
}

export class BackupCatalog {
  constructor(
    readonly storage: Storage,
    readonly backupPath: string,
  ) {}

  /** `-B` must be absolute (pg_probackup's message). */
  static assertBackupPath(path: string): void {
    if (!posix.isAbsolute(path))
      throw new StrataError('usage', '-B, --backup-path must be an absolute path');
  }

  get backupsDir(): string {
    return posix.join(this.backupPath, 'backups');
  }

  get walRootDir(): string {
    return posix.join(this.backupPath, 'wal');
  }

  instanceDir(name: string): string {
    return posix.join(this.backupsDir, checkedInstanceName(name));
  }

  walDir(name: string): string {
    return posix.join(this.walRootDir, checkedInstanceName(name));
  }

  instanceConfigPath(name: string): string {
    return posix.join(this.instanceDir(name), INSTANCE_CONFIG_FILE);
  }

  backupDir(instance: string, id: string): string {
    return posix.join(this.instanceDir(instance), id);
  }

  /** `init` (cli §3.1): creates the catalog, `backups/` and `wal/`; refuses a non-empty directory. */
  async init(): Promise<void> {
    const stat = await this.storage.stat(this.backupPath);
    if (stat) {
      let entries: number;
      try {
        entries = (await this.storage.readDir(this.backupPath)).length;
      } catch (error) {
        throw new StrataError(
          'catalog',
          `Cannot open backup catalog directory "${this.backupPath}": ${errorText(error)}`,
          { cause: error },
        );
      }
      if (entries > 0)
        throw new StrataError('catalog', 'The backup catalog already exists and is not empty');
    }
    await this.storage.mkdir(this.backupPath, { mode: DIRECTORY_MODE, recursive: true });
    await this.storage.mkdir(this.backupsDir, { mode: DIRECTORY_MODE, recursive: true });
    await this.storage.mkdir(this.walRootDir, { mode: DIRECTORY_MODE, recursive: true });
  }

  /** Instance names (directories directly under `backups/`), sorted bytewise. */
  async listInstances(): Promise<string[]> {
    let entries: DirEntry[];
    try {
      entries = await this.storage.readDir(this.backupsDir);
    } catch (error) {
      throw new StrataError(
        'catalog',
        `Cannot open directory "${this.backupsDir}": ${errorText(error)}`,
        {
          cause: error,
        },
      );
    }
    return entries.filter((entry) => entry.type === 'directory').map((entry) => entry.name);
  }

  async assertInstanceExists(name: string): Promise<void> {
    const stat = await this.storage.stat(this.instanceDir(name));
    if (stat?.type !== 'directory') {
      throw new StrataError(
        'instance-not-found',
        `Instance '${name}' does not exist in this backup catalog`,
      );
    }
  }

  /**
   * `add-instance` (cli §3.2): creates `backups/<name>` and `wal/<name>` and writes the config
   * (which must carry pgdata, system-identifier and xlog-seg-size); remote options are not saved.
   */
  async addInstance(name: string, config: InstanceConfig): Promise<void> {
    if (!config.pgdata) {
      throw new StrataError(
        'usage',
        'No postgres data directory specified.\nPlease specify it either using environment variable PGDATA or\ncommand line option --pgdata (-D)',
      );
    }
    for (const dir of [this.backupPath, this.backupsDir, this.walRootDir]) {
      if (!(await this.storage.stat(dir)))
        throw new StrataError('catalog', `Directory does not exist: '${dir}'`);
    }
    const instanceDir = this.instanceDir(name);
    if ((await this.storage.stat(instanceDir))?.type === 'directory') {
      throw new StrataError(
        'catalog',
        `Instance '${name}' backup directory already exists: '${instanceDir}'`,
      );
    }
    const walDir = this.walDir(name);
    if ((await this.storage.stat(walDir))?.type === 'directory') {
      throw new StrataError(
        'catalog',
        `Instance '${name}' WAL archive directory already exists: '${walDir}'`,
      );
    }
    await this.storage.mkdir(instanceDir, { mode: DIRECTORY_MODE });
    await this.storage.mkdir(walDir, { mode: DIRECTORY_MODE });
    const saved: InstanceConfig = { ...config };
    for (const field of remoteConfigFields) delete saved[field];
    await writeInstanceConfig(this.storage, this.instanceConfigPath(name), saved);
  }

  readInstanceConfig(
    name: string,
    options: { onWarning?: (message: string) => void } = {},
  ): Promise<InstanceConfig> {
    return readInstanceConfig(this.storage, this.instanceConfigPath(name), options);
  }

  writeInstanceConfig(name: string, config: InstanceConfig): Promise<void> {
    return writeInstanceConfig(this.storage, this.instanceConfigPath(name), config);
  }

  /**
   * Backups of an instance, newest first by start time. A directory whose backup.control is
   * missing or unreadable is still listed, as UNKNOWN with the start time its name encodes.
   */
  async listBackups(instance: string): Promise<CatalogBackup[]> {
    const instanceDir = this.instanceDir(instance);
    let entries: DirEntry[];
    try {
      entries = await this.storage.readDir(instanceDir);
    } catch (error) {
      if (storageErrorCode(error) === 'ENOENT') {
        throw new StrataError(
          'instance-not-found',
          `Instance '${instance}' does not exist in this backup catalog`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
    const backups: CatalogBackup[] = [];
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const dir = posix.join(instanceDir, entry.name);
      const isDirectory =
        entry.type === 'directory' ||
        (entry.type === 'symlink' && (await this.storage.stat(dir))?.type === 'directory');
      if (isDirectory) backups.push(await this.readBackupAt(dir, entry.name));
    }
    return backups.sort((a, b) => b.startTime - a.startTime);
  }

  /** One backup by ID (any case), or undefined when the instance has no such backup. */
  async readBackup(instance: string, id: string): Promise<CatalogBackup | undefined> {
    if (/^[0-9A-Za-z]+$/.test(id)) {
      const dir = this.backupDir(instance, id);
      if ((await this.storage.stat(dir))?.type === 'directory') return this.readBackupAt(dir, id);
    }
    const startTime = decodeBackupIdPrefix(id);
    return (await this.listBackups(instance)).find((backup) => backup.startTime === startTime);
  }

  private async readBackupAt(dir: string, dirName: string): Promise<CatalogBackup> {
    const controlPath = posix.join(dir, BACKUP_CONTROL_FILE);
    const problems: string[] = [];
    let text: string | undefined;
    try {
      text = (await this.storage.readFile(controlPath)).toString('utf8');
    } catch (error) {
      problems.push(
        storageErrorCode(error) === 'ENOENT'
          ? `Control file "${controlPath}" doesn't exist`
          : `Cannot read control file "${controlPath}": ${errorText(error)}`,
      );
    }
    if (text !== undefined) {
      try {
        const meta = parseBackupControl(text, controlPath, problems);
        if (meta.id !== dirName) {
          problems.push(
            `backup ID in control file "${meta.id}" doesn't match name of the backup folder "${controlPath}"`,
          );
        }
        return { ...meta, dir, problems };
      } catch (error) {
        if (!isStrataError(error)) throw error;
        problems.push(error.message);
      }
    }
    const startTime = decodeBackupIdPrefix(dirName);
    return { ...defaultBackupMeta(), id: backupIdFromTime(startTime), startTime, dir, problems };
  }

  /**
   * Writes backup.control atomically (§5.5: `.tmp` mode 0600, fsync, rename) into `target`
   * when it is an absolute directory, else into the backup's directory of instance `target`.
   */
  async writeBackupControl(target: string, meta: BackupMeta): Promise<void> {
    const dir = posix.isAbsolute(target) ? target : this.backupDir(target, meta.id);
    await this.storage.writeFileAtomic(
      posix.join(dir, BACKUP_CONTROL_FILE),
      formatBackupControl(meta),
      {
        mode: CONTROL_FILE_MODE,
        tmpSuffix: '.tmp',
        sync: true,
      },
    );
  }

  /**
   * Changes a backup's status as pg_probackup's write_backup_status: re-reads backup.control,
   * changes only `status` (and `end-time` when given), under a brief exclusive lock; nothing is
   * written when the status is already the requested one. Updates `backup` in place.
   */
  async setBackupStatus(
    backup: CatalogBackup,
    status: BackupStatus,
    options: { endTime?: number; logger?: Logger; lax?: boolean } = {},
  ): Promise<void> {
    const current = await this.readBackupAt(backup.dir, posix.basename(backup.dir));
    if (current.backupMode === undefined || current.status === status) return;
    const held = heldBackupLock(this.storage, backup.dir);
    const lockOptions = {
      backupId: current.id,
      logger: options.logger ?? silentLogger,
      lax: options.lax ?? false,
    };
    if (!held?.exclusive) await lockBackupExclusive(this.storage, backup.dir, lockOptions);
    try {
      current.status = status;
      if (options.endTime !== undefined) current.endTime = options.endTime;
      await this.writeBackupControl(backup.dir, current);
    } finally {
      if (!held?.exclusive) {
        await releaseBackupLock(this.storage, backup.dir, lockOptions);
        if (held) await lockBackupShared(this.storage, backup.dir, lockOptions);
      }
    }
    backup.status = status;
    if (options.endTime !== undefined) backup.endTime = options.endTime;
  }

  /**
   * The backup's file list; verified against `content-crc` when that is non-zero (§6.4):
   * a mismatch is StrataError('corrupt') `Backup <id> file list is corrupted`.
   */
  async readContentList(backup: BackupLocation): Promise<FileEntry[]> {
    const path = posix.join(backup.dir, CONTENT_LIST_FILE);
    let bytes: Buffer;
    try {
      bytes = await this.storage.readFile(path);
    } catch (error) {
      throw new StrataError(
        'corrupt',
        `Backup ${backup.id} file list is corrupted: cannot open "${path}": ${errorText(error)}`,
        {
          cause: error,
        },
      );
    }
    if (backup.contentCrc !== 0) {
      const actual = crc32c(bytes);
      if (actual !== backup.contentCrc) {
        throw new StrataError(
          'corrupt',
          `Backup ${backup.id} file list is corrupted: CRC of "${path}" is ${actual}, backup.control expects ${backup.contentCrc}`,
        );
      }
    }
    return parseContentList(bytes.toString('utf8'), path);
  }

  /**
   * Writes the file list atomically (`.tmp` mode 0600, fsync, rename) and returns its CRC32C,
   * the `content-crc` to store in backup.control. Called with a backup (or its directory), or
   * with an instance name and backup ID.
   */
  async writeContentList(
    backup: { dir: string } | string,
    entries: readonly FileEntry[],
  ): Promise<number>;
  async writeContentList(
    instance: string,
    id: string,
    entries: readonly FileEntry[],
  ): Promise<number>;
  async writeContentList(
    target: { dir: string } | string,
    idOrEntries: string | readonly FileEntry[],
    maybeEntries?: readonly FileEntry[],
  ): Promise<number> {
    let dir: string;
    let entries: readonly FileEntry[];
    if (typeof idOrEntries === 'string') {
      dir = this.backupDir(target as string, idOrEntries);
      entries = maybeEntries ?? [];
    } else {
      dir = typeof target === 'string' ? target : target.dir;
      entries = idOrEntries;
    }
    const bytes = formatContentList(entries);
    await this.storage.writeFileAtomic(posix.join(dir, CONTENT_LIST_FILE), bytes, {
      mode: CONTROL_FILE_MODE,
      tmpSuffix: '.tmp',
      sync: true,
    });
    return crc32c(bytes);
  }

  /** `database/database_map` of a backup; undefined when the backup has none (§14.1). */
  async readDatabaseMap(backup: { dir: string }): Promise<DatabaseMapEntry[] | undefined> {
    const path = posix.join(backup.dir, DATABASE_DIR, DATABASE_MAP_FILE);
    let bytes: Buffer;
    try {
      bytes = await this.storage.readFile(path);
    } catch (error) {
      if (storageErrorCode(error) === 'ENOENT') return undefined;
      throw error;
    }
    return parseDatabaseMap(bytes.toString('utf8'), path);
  }

  resolveBackupChain(backups: readonly CatalogBackup[], id: string): BackupChain {
    return resolveBackupChain(backups, id);
  }

  /**
   * Repairs what processes killed while working on this instance left behind, as every command
   * that lists backups should before using the listing: deletions caught in DELETING are finished
   * and leftover directories removed (backupRemoval.ts), RUNNING backups of dead processes
   * become ERROR.
   */
  async repairInterruptedBackups(
    instance: string,
    logger: Logger,
    now: () => number = Date.now,
  ): Promise<void> {
    await finishInterruptedDeletes(this, instance, logger);
    await this.markDeadRunningBackupsAsError(instance, logger, now);
  }

  /**
   * RUNNING backups whose owner is gone (their lock can be taken at once) become ERROR with
   * `end-time` = now (§11.2.4). A backup this process is taking, or whose owner is alive, is left
   * alone. Returns the IDs changed.
   */
  async markDeadRunningBackupsAsError(
    instance: string,
    logger: Logger,
    now: () => number = Date.now,
  ): Promise<string[]> {
    const changed: string[] = [];
    for (const backup of await this.listBackups(instance)) {
      if (backup.status !== 'RUNNING' || heldBackupLock(this.storage, backup.dir)) continue;
      const lockOptions = { backupId: backup.id, logger, waitSeconds: 0 };
      try {
        await lockBackupExclusive(this.storage, backup.dir, lockOptions);
      } catch (error) {
        if (isStrataError(error) && error.code === 'lock') continue;
        throw error;
      }
      try {
        const current = await this.readBackupAt(backup.dir, posix.basename(backup.dir));
        if (current.status !== 'RUNNING' || current.backupMode === undefined) continue;
        logger.warning(`Backup ${current.id} has status RUNNING, change it to ERROR`);
        current.status = 'ERROR';
        current.endTime = Math.floor(now() / 1000);
        await this.writeBackupControl(backup.dir, current);
        changed.push(current.id);
      } finally {
        await releaseBackupLock(this.storage, backup.dir, lockOptions);
      }
    }
    return changed;
  }
}

/** Instance names are directory names: no path separators, not `.` or `..`, not empty. */
function checkedInstanceName(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new StrataError('usage', `Invalid instance name "${name}"`);
  }
  return name;
}
