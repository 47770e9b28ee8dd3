import { posix } from 'node:path';
import { StrataError } from '../../errors.js';

/** One `-T` / `--external-mapping` argument: a directory of the backup and where it goes now. */
export interface PathMapping {
  oldDir: string;
  newDir: string;
}

export type MappingKind = 'tablespace' | 'external directory';

/**
 * PostgreSQL's canonicalize_path for POSIX paths: no doubled or trailing `/`, no `.` parts, `..`
 * folded where a parent exists.
 */
export function canonicalizePath(path: string): string {
  if (path === '') return path;
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/** True when one canonical path is the other or lies inside it. */
export function pathsOverlap(a: string, b: string): boolean {
  const inside = (outer: string, inner: string) =>
    inner === outer || inner.startsWith(outer === '/' ? '/' : `${outer}/`);
  return inside(a, b) || inside(b, a);
}

/**
 * Parses `OLDDIR=NEWDIR` as pg_probackup's opt_path_map (pg_basebackup's tablespace_list_append):
 * `\=` stands for a literal `=`, both sides are canonicalized and must be absolute.
 */
export function parsePathMapping(arg: string, kind: MappingKind): PathMapping {
  let oldDir = '';
  let newDir = '';
  let inNew = false;
  for (let index = 0; index < arg.length; index++) {
    const char = arg[index]!;
    if (char === '\\' && arg[index + 1] === '=') continue;
    if (char === '=' && (index === 0 || arg[index - 1] !== '\\')) {
      if (newDir !== '') throw new StrataError('usage', `Multiple "=" signs in ${kind} mapping`);
      inNew = true;
      continue;
    }
    if (inNew) newDir += char;
    else oldDir += char;
  }
  if (oldDir === '' || newDir === '') {
    throw new StrataError(
      'usage',
      `Invalid ${kind} mapping format "${arg}", must be "OLDDIR=NEWDIR"`,
    );
  }
  oldDir = canonicalizePath(oldDir);
  newDir = canonicalizePath(newDir);
  if (!posix.isAbsolute(oldDir)) {
    throw new StrataError(
      'usage',
      `Old directory is not an absolute path in ${kind} mapping: ${oldDir}`,
    );
  }
  if (!posix.isAbsolute(newDir)) {
    throw new StrataError(
      'usage',
      `New directory is not an absolute path in ${kind} mapping: ${newDir}`,
    );
  }
  return { oldDir, newDir };
}

/** The new directory of `dir` under the first mapping naming it, else `dir` itself. */
export function mappedPath(dir: string, mappings: readonly PathMapping[]): string {
  return mappings.find((mapping) => mapping.oldDir === dir)?.newDir ?? dir;
}
