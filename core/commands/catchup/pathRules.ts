import { posix } from 'node:path';
import { StrataError } from '../../errors.js';

/**
 * `-x, --exclude-path` (cli-behaviour.md §11): an absolute value is compared with a file's full
 * path, a relative one with its path relative to PGDATA; either way a plain string prefix, as
 * pg_probackup's pgPrefixCompareString does (so `pg_log` also excludes `pg_logical`).
 */
export class ExcludePaths {
  private readonly absolute: string[];
  private readonly relative: string[];

  constructor(paths: readonly string[]) {
    this.absolute = paths.filter((path) => path.startsWith('/'));
    this.relative = paths.filter((path) => !path.startsWith('/'));
  }

  get isEmpty(): boolean {
    return this.absolute.length === 0 && this.relative.length === 0;
  }

  excludes(pgdata: string, relativePath: string): boolean {
    const fullPath = `${pgdata}/${relativePath}`;
    return (
      this.absolute.some((prefix) => fullPath.startsWith(prefix)) ||
      this.relative.some((prefix) => relativePath.startsWith(prefix))
    );
  }
}

/** PostgreSQL's canonicalize_path for the forms a mapping takes: no `.`, `..`, `//` or trailing `/`. */
function canonicalPath(path: string): string {
  const normalized = posix.normalize(path);
  return normalized.length > 1 ? normalized.replace(/\/+$/, '') : normalized;
}

/**
 * `-T, --tablespace-mapping OLDDIR=NEWDIR`, repeatable (pg_probackup's opt_path_map): `\=`
 * stands for a literal `=`; both directories must be absolute. Returns OLDDIR → NEWDIR.
 */
export function parseTablespaceMapping(values: readonly string[]): Map<string, string> {
  const mapping = new Map<string, string>();
  for (const value of values) {
    let oldDir = '';
    let newDir: string | undefined;
    for (let i = 0; i < value.length; i++) {
      const char = value[i]!;
      if (char === '\\' && value[i + 1] === '=') continue;
      if (char === '=' && (i === 0 || value[i - 1] !== '\\')) {
        if (newDir !== undefined && newDir !== '')
          throw new StrataError('usage', 'Multiple "=" signs in tablespace mapping');
        newDir = '';
        continue;
      }
      if (newDir === undefined) oldDir += char;
      else newDir += char;
    }
    if (!oldDir || !newDir) {
      throw new StrataError(
        'usage',
        `Invalid tablespace mapping format "${value}", must be "OLDDIR=NEWDIR"`,
      );
    }
    oldDir = canonicalPath(oldDir);
    newDir = canonicalPath(newDir);
    if (!oldDir.startsWith('/')) {
      throw new StrataError(
        'usage',
        `Old directory is not an absolute path in tablespace mapping: ${oldDir}`,
      );
    }
    if (!newDir.startsWith('/')) {
      throw new StrataError(
        'usage',
        `New directory is not an absolute path in tablespace mapping: ${newDir}`,
      );
    }
    // pg_probackup's get_tablespace_mapping() takes the first mapping of a directory.
    if (!mapping.has(oldDir)) mapping.set(oldDir, newDir);
  }
  return mapping;
}

/** The directory a source tablespace goes to: its mapping, or itself when it has none. */
export function mappedTablespacePath(
  mapping: ReadonlyMap<string, string>,
  sourcePath: string,
): string {
  return mapping.get(canonicalPath(sourcePath)) ?? sourcePath;
}
