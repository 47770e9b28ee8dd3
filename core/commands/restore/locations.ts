import { posix } from 'node:path';
import type { CatalogBackup } from '../../catalog/catalog.js';
import type { FileEntry } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import { crc32 } from '../../format/crc32.js';
import { crc32c } from '../../format/crc32c.js';
import type { Logger } from '../../log.js';
import type { Storage } from '../../storage/storage.js';
import { readTablespaceMap } from '../show/tablespaceMap.js';
import { programVersionNumber, usesCrc32c } from '../validate/programVersion.js';
import { isDirectoryEmpty } from './destination.js';
import { canonicalizePath, mappedPath, pathsOverlap } from './pathMapping.js';
import type { PathMapping } from './pathMapping.js';

/** A tablespace of the backup and the directory `pg_tblspc/<oid>` will link to. */
export interface TablespaceTarget {
  oid: string;
  /** The path in the backup's tablespace_map. */
  recordedPath: string;
  /** Where it is restored: the `-T` NEWDIR, else the recorded path. */
  path: string;
}

export interface TablespaceCheckInput {
  dest: CatalogBackup;
  destEntries: readonly FileEntry[];
  pgdata: string;
  mappings: readonly PathMapping[];
  incremental: boolean;
  force: boolean;
  pgdataIsEmpty: boolean;
  noValidate: boolean;
}

export interface TablespaceCheckResult {
  targets: TablespaceTarget[];
  /** False when a tablespace directory holds files an incremental restore may reuse. */
  allEmpty: boolean;
}

function hexCrc(value: number): string {
  return value.toString(16).toUpperCase();
}

/** Fails when two restore locations would share files. */
function checkNoOverlap(
  pgdata: string,
  locations: ReadonlyArray<{ what: string; path: string }>,
): void {
  for (const [index, location] of locations.entries()) {
    if (pathsOverlap(location.path, pgdata)) {
      throw new StrataError(
        'usage',
        `${location.what} "${location.path}" overlaps the data directory "${pgdata}"; ` +
          'restore it to a directory outside PGDATA',
      );
    }
    for (const other of locations.slice(index + 1)) {
      if (pathsOverlap(location.path, other.path)) {
        throw new StrataError(
          'usage',
          `${location.what} "${location.path}" and ${other.what.toLowerCase()} "${other.path}" overlap; ` +
            'map them to separate directories',
        );
      }
    }
  }
}

async function removeContents(storage: Storage, path: string): Promise<void> {
  for (const entry of await storage.readDir(path)) {
    await storage.removeTree(posix.join(path, entry.name));
  }
}

/**
 * dir.c check_tablespace_mapping (cli-behaviour.md §6.4): every `-T` OLDDIR must be a tablespace
 * of the backup, every target absolute and — unless an incremental restore may reuse it — empty.
 * With `--force`, a remapped or orphaned target of an incremental restore is emptied.
 */
export async function checkTablespaces(
  storage: Storage,
  input: TablespaceCheckInput,
  logger: Logger,
): Promise<TablespaceCheckResult> {
  const { dest } = input;
  logger.verbose(`Checking tablespace directories of backup ${dest.id}`);
  const mapEntry = input.destEntries.find(
    (entry) => entry.externalDirNum === 0 && entry.path === 'tablespace_map',
  );
  if (!mapEntry) {
    if (input.mappings.length > 0) {
      throw new StrataError(
        'usage',
        `Backup ${dest.id} has no tablespaceses, nothing to remap via "--tablespace-mapping" option`,
      );
    }
    return { targets: [], allEmpty: true };
  }
  const mapPath = posix.join(dest.dir, 'database', 'tablespace_map');
  const links = await readTablespaceMap(storage, dest.dir);
  if (links === undefined) {
    throw new StrataError(
      'corrupt',
      `Tablespace map is missing: "${mapPath}", probably backup ${dest.id} is corrupt, validate it`,
    );
  }
  if (!input.noValidate) {
    const bytes = await storage.readFile(mapPath);
    const crc = usesCrc32c(programVersionNumber(dest.programVersion))
      ? crc32c(bytes)
      : crc32(bytes);
    if (crc !== mapEntry.crc) {
      throw new StrataError(
        'corrupt',
        `Invalid CRC of tablespace map file "${mapPath}" : ${hexCrc(crc)}. Expected ${hexCrc(mapEntry.crc)}, ` +
          `probably backup ${dest.id} is corrupt, validate it`,
      );
    }
  }
  for (const mapping of input.mappings) {
    if (!links.some((link) => link.path === mapping.oldDir)) {
      throw new StrataError(
        'usage',
        `--tablespace-mapping option's old directory doesn't have an entry in tablespace_map file: "${mapping.oldDir}"`,
      );
    }
  }

  const targets = links.map((link) => ({
    oid: link.oid,
    recordedPath: link.path,
    path: mappedPath(link.path, input.mappings),
  }));
  let allEmpty = true;
  for (const target of targets) {
    const remapped = target.path !== target.recordedPath;
    if (remapped) {
      logger.info(
        `Tablespace ${target.oid} will be remapped from "${target.recordedPath}" to "${target.path}"`,
      );
    } else {
      logger.info(
        `Tablespace ${target.oid} will be restored using old path "${target.recordedPath}"`,
      );
    }
    if (!posix.isAbsolute(target.path)) {
      throw new StrataError(
        'restore',
        `Tablespace directory path must be an absolute path: ${target.path}`,
      );
    }
  }
  checkNoOverlap(
    input.pgdata,
    targets.map((target) => ({ what: `Tablespace ${target.oid} directory`, path: target.path })),
  );
  for (const target of targets) {
    if (await isDirectoryEmpty(storage, target.path)) continue;
    const remapped = target.path !== target.recordedPath;
    if (!input.incremental) {
      throw new StrataError(
        'restore',
        `Restore tablespace destination is not empty: "${target.path}"`,
      );
    }
    if (remapped && !input.force) {
      throw new StrataError(
        'restore',
        `Remapped tablespace destination is not empty: "${target.path}". Use "--force" flag if you ` +
          'want to automatically clean up the content of new tablespace destination',
      );
    }
    if (input.pgdataIsEmpty && !input.force) {
      throw new StrataError(
        'restore',
        `PGDATA is empty, but tablespace destination is not: "${target.path}". Use "--force" flag ` +
          'is you want to automatically clean up the content of tablespace destination',
      );
    }
    if (input.force && (input.pgdataIsEmpty || remapped)) {
      logger.warning(
        `Cleaning up the content of ${remapped ? 'remapped tablespace' : 'tablespace'} directory: "${target.path}"`,
      );
      await removeContents(storage, target.path);
      continue;
    }
    allEmpty = false;
  }
  return { targets, allEmpty };
}

/**
 * The backup's external directories in the order of their numbers (catalog-format.md §7.4):
 * `external-dirs` split on `:`, canonicalized and sorted bytewise, so directory N is element N-1.
 */
export function backupExternalDirs(dest: CatalogBackup): string[] {
  if (dest.externalDirs === undefined) return [];
  const dirs = dest.externalDirs
    .split(':')
    .filter((dir) => dir !== '')
    .map(canonicalizePath);
  for (const dir of dirs) {
    if (!posix.isAbsolute(dir)) {
      throw new StrataError('format', `External directory "${dir}" is not an absolute path`);
    }
  }
  return dirs.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

export interface ExternalDirsInput {
  dest: CatalogBackup;
  pgdata: string;
  mappings: readonly PathMapping[];
  incremental: boolean;
  tablespaces: readonly TablespaceTarget[];
}

/**
 * dir.c check_external_dir_mapping (cli-behaviour.md §6.4): the restore location of external
 * directory N at index N-1 — `--external-mapping` NEWDIR or the backed-up path. Every OLDDIR must
 * be one of the backup's directories; a non-incremental restore needs every target empty.
 * Numbers keep the backup's order even when a mapping would sort differently.
 */
export async function resolveExternalDirs(
  storage: Storage,
  input: ExternalDirsInput,
  logger: Logger,
): Promise<string[]> {
  const { dest } = input;
  logger.verbose(`check external directories of backup ${dest.id}`);
  const dirs = backupExternalDirs(dest);
  for (const mapping of input.mappings) {
    if (!dirs.includes(mapping.oldDir)) {
      throw new StrataError(
        'usage',
        "--external-mapping option's old directory doesn't have an entry in list of external " +
          `directories of current backup: "${mapping.oldDir}"`,
      );
    }
  }
  const targets = dirs.map((dir) => mappedPath(dir, input.mappings));
  checkNoOverlap(input.pgdata, [
    ...targets.map((path, index) => ({ what: `External directory ${index + 1}`, path })),
    ...input.tablespaces.map((target) => ({
      what: `Tablespace ${target.oid} directory`,
      path: target.path,
    })),
  ]);
  if (!input.incremental) {
    for (const target of targets) {
      if (!(await isDirectoryEmpty(storage, target))) {
        throw new StrataError('restore', `External directory is not empty: "${target}"`);
      }
    }
  }
  return targets;
}

/** `--waldir` (restore.c, dir.c create_data_directories): absolute, and empty when it exists. */
export function canonicalWalDir(waldir: string): string {
  const path = canonicalizePath(waldir);
  if (!posix.isAbsolute(path)) {
    throw new StrataError('usage', 'WAL directory location must be an absolute path');
  }
  return path;
}

export async function checkWalDirEmpty(storage: Storage, waldir: string): Promise<void> {
  if (!(await isDirectoryEmpty(storage, waldir))) {
    throw new StrataError('restore', `WAL directory location is not empty: "${waldir}"`);
  }
}
