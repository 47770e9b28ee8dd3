import { StrataError } from '../../errors.js';
import type { Storage } from '../../storage/storage.js';

/**
 * `external-dirs` (catalog-format §7.4): a `:`-separated list of absolute directories; `none`
 * means none. Directory number N (1-based) is the position in the canonicalized list sorted
 * bytewise, which is also how restore maps `externaldirN` back to a path.
 */
export function splitExternalDirs(value: string | undefined): string[] {
  if (value === undefined || value === '' || value.toLowerCase() === 'none') return [];
  return value.split(':').filter((dir) => dir.length > 0);
}

function canonical(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

export function sortedExternalDirs(value: string | undefined): string[] {
  return splitExternalDirs(value)
    .map(canonical)
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

const contains = (outer: string, inner: string) => inner === outer || inner.startsWith(`${outer}/`);

/**
 * Checks of cli-behaviour.md §5.4 step 1 and 5: absolute, existing, not containing a tablespace
 * or each other, not inside PGDATA (its files are already in the backup).
 */
export async function checkExternalDirs(
  storage: Storage,
  value: string | undefined,
  pgdata: string,
  tablespacePaths: string[],
): Promise<string[]> {
  for (const dir of splitExternalDirs(value)) {
    if (!dir.startsWith('/'))
      throw new StrataError('usage', `External directory "${dir}" is not an absolute path`);
  }
  const dirs = sortedExternalDirs(value);
  for (const dir of dirs) {
    const stat = await storage.stat(dir);
    if (stat?.type !== 'directory') {
      throw new StrataError(
        'io',
        `External directory "${dir}" does not exist or is not a directory`,
      );
    }
    if (contains(pgdata, dir) || contains(dir, pgdata)) {
      throw new StrataError(
        'usage',
        `External directory path (-E option) "${dir}" overlaps the data directory "${pgdata}"`,
      );
    }
    for (const tablespace of tablespacePaths) {
      if (contains(dir, tablespace)) {
        throw new StrataError(
          'usage',
          `External directory path (-E option) "${dir}" contains tablespace "${tablespace}"`,
        );
      }
    }
    for (const other of dirs) {
      if (other !== dir && contains(dir, other)) {
        throw new StrataError(
          'usage',
          `External directory path (-E option) "${dir}" contain another external directory "${other}"`,
        );
      }
    }
  }
  return dirs;
}
