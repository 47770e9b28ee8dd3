import { posix } from 'node:path';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { parseDatabaseMap } from '../../catalog/databaseMap.js';
import type { DatabaseMapEntry, FileEntry } from '../../catalog/types.js';
import { StrataError, errorText } from '../../errors.js';
import type { Storage } from '../../storage/storage.js';
import { storageErrorCode } from '../../storage/storage.js';

/** The templates are never in database_map (catalog-format.md §14.1), so they are always restored. */
const TEMPLATE_DATABASES = ['template0', 'template1'];

export interface PartialRestoreRequest {
  dbInclude?: string[];
  dbExclude?: string[];
}

/** The databases a partial restore leaves as empty files. */
export interface ExcludedDatabases {
  oids: Set<number>;
  /** Their names, in database_map order, for the "drop them" message. */
  names: string[];
}

export function isPartialRestore(request: PartialRestoreRequest): boolean {
  return (request.dbInclude?.length ?? 0) > 0 || (request.dbExclude?.length ?? 0) > 0;
}

/** The option checks pg_probackup makes while parsing `--db-include` / `--db-exclude`. */
export function checkPartialRestoreOptions(request: PartialRestoreRequest): void {
  if ((request.dbInclude?.length ?? 0) > 0 && (request.dbExclude?.length ?? 0) > 0) {
    throw new StrataError('usage', "You cannot specify '--db-include' and '--db-exclude' together");
  }
  if (request.dbInclude?.some((name) => TEMPLATE_DATABASES.includes(name))) {
    throw new StrataError(
      'usage',
      "Databases 'template0' and 'template1' cannot be used for partial restore or validation",
    );
  }
}

async function readMap(
  storage: Storage,
  backup: CatalogBackup,
): Promise<DatabaseMapEntry[] | undefined> {
  const path = posix.join(backup.dir, 'database', 'database_map');
  let text: string;
  try {
    text = (await storage.readFile(path)).toString('utf8');
  } catch (error) {
    const reason =
      storageErrorCode(error) === 'ENOENT' ? 'No such file or directory' : errorText(error);
    throw new StrataError('corrupt', `Cannot open "${path}": ${reason}`, { cause: error });
  }
  try {
    const entries = parseDatabaseMap(text, path);
    return entries.length > 0 ? entries : undefined;
  } catch {
    return undefined;
  }
}

/**
 * restore.c get_dbOid_exclude_list (catalog-format.md §14.2): the backup's database_map turned
 * into the OIDs to leave out — every database not named by `--db-include`, or the ones named by
 * `--db-exclude`. Every name must be in the map.
 */
export async function selectExcludedDatabases(
  storage: Storage,
  backup: CatalogBackup,
  destEntries: readonly FileEntry[],
  request: PartialRestoreRequest,
): Promise<ExcludedDatabases> {
  const listed = destEntries.some(
    (entry) => entry.externalDirNum === 0 && posix.basename(entry.path) === 'database_map',
  );
  if (!listed) {
    throw new StrataError(
      'restore',
      `Backup ${backup.id} doesn't contain a database_map, partial restore is impossible.`,
    );
  }
  const map = await readMap(storage, backup);
  if (map === undefined) {
    throw new StrataError(
      'corrupt',
      `Backup ${backup.id} has empty or mangled database_map, partial restore is impossible.`,
    );
  }
  const include = request.dbInclude ?? [];
  const named = include.length > 0 ? include : (request.dbExclude ?? []);
  for (const name of named) {
    if (!map.some((entry) => entry.datname === name)) {
      throw new StrataError(
        'restore',
        `Failed to find a database '${name}' in database_map of backup ${backup.id}`,
      );
    }
  }
  const excluded = map.filter((entry) =>
    include.length > 0 ? !include.includes(entry.datname) : named.includes(entry.datname),
  );
  if (excluded.length === 0) {
    throw new StrataError(
      'restore',
      `Failed to find a match in database_map of backup ${backup.id} for partial restore`,
    );
  }
  return {
    oids: new Set(excluded.map((entry) => entry.dbOid)),
    names: excluded.map((entry) => entry.datname),
  };
}
