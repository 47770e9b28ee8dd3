import { posix } from 'node:path';
import { StrataError } from '../../errors.js';
import type { Storage } from '../../storage/storage.js';

/** One line of a backup's `database/tablespace_map`: `pg_tblspc/<oid>` links to `path`. */
export interface TablespaceLink {
  oid: string;
  path: string;
}

/**
 * Parses `tablespace_map` as pg_probackup's `read_tablespace_map` does: the first word of a line
 * is the tablespace OID, everything after the following blanks up to the newline is the path
 * (which may contain spaces). Returned sorted bytewise by path (strcmp), the order `show` prints them
 * in.
 */
export function parseTablespaceMap(text: string, mapPath: string): TablespaceLink[] {
  const links: TablespaceLink[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const match = /^\s*(\S+)\s*(.*)$/.exec(line);
    if (!match) throw new StrataError('format', `Invalid format found in "${mapPath}"`);
    links.push({ oid: match[1]!, path: canonicalizePath(match[2]!) });
  }
  return links.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/** PostgreSQL's canonicalize_path for the POSIX paths of a map: no `//`, `.`, `..` or trailing `/`. */
function canonicalizePath(path: string): string {
  if (path === '') return path;
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/** The tablespaces of a backup, or undefined when its `database/tablespace_map` does not exist. */
export async function readTablespaceMap(
  storage: Storage,
  backupDir: string,
): Promise<TablespaceLink[] | undefined> {
  const mapPath = posix.join(backupDir, 'database', 'tablespace_map');
  const stat = await storage.stat(mapPath);
  if (!stat) return undefined;
  return parseTablespaceMap((await storage.readFile(mapPath)).toString('utf8'), mapPath);
}
