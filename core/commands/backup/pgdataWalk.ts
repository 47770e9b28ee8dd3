import type { Storage } from '../../storage/storage.js';
import type { Logger } from '../../log.js';

/** A file or directory of PGDATA as the backup sees it; `path` is relative to PGDATA. */
export interface SourceEntry {
  path: string;
  absolutePath: string;
  type: 'file' | 'directory';
  sizeBytes: number;
  mode: number;
  mtimeMs: number;
  isDatafile: boolean;
  dbOid: number;
  segno: number | undefined;
  /** 0 for PGDATA; N for the N-th external directory (catalog-format §7.4). */
  externalDirNum?: number;
}

/** Directories whose contents are never copied, matched by name anywhere outside tablespaces (catalog-format §7.1). */
const contentExcludedDirs = new Set([
  'pg_wal',
  'pg_stat_tmp',
  'pgsql_tmp',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_subtrans',
]);

/** Top-level files a non-exclusive backup never takes (catalog-format §7.1). */
const excludedTopLevelFiles = new Set([
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
  'recovery.conf',
  'postmaster.pid',
  'postmaster.opts',
  'probackup_recovery.conf',
  'recovery.signal',
  'standby.signal',
  'backup_label',
  'tablespace_map',
]);

/** Files inside database and tablespace directories that are never copied. */
const excludedRelationDirFiles = new Set(['pg_internal.init', 'ptrack.map.mmap', 'ptrack.map.tmp']);

const relfilenodePattern = /^([1-9]\d{0,9})(?:\.([1-9]\d{0,4}))?$/;
const forkPattern = /^([1-9]\d{0,9})_(fsm|vm|init)(?:\.\d+)?$/;

/**
 * Where a path sits: `global/…`, `base/<db>/…` or `pg_tblspc/<spc>/<PG_ver>/<db>/…`. Only files
 * directly in those directories can be relation files.
 */
function relationDirOf(parts: string[]): { dbOid: number; inRelationDir: boolean } {
  if (parts[0] === 'global') return { dbOid: 0, inRelationDir: parts.length === 2 };
  if (parts[0] === 'base' && parts.length >= 2) {
    return { dbOid: Number(parts[1]) || 0, inRelationDir: parts.length === 3 };
  }
  if (parts[0] === 'pg_tblspc' && parts.length >= 4) {
    return { dbOid: Number(parts[3]) || 0, inRelationDir: parts.length === 5 };
  }
  return { dbOid: 0, inRelationDir: false };
}

/** The main-fork relation segment rule of catalog-format §7.3.1: `<relfilenode>[.<segno>]` within limits. */
export function classifyRelationFile(relativePath: string): {
  isDatafile: boolean;
  dbOid: number;
  segno: number | undefined;
} {
  const parts = relativePath.split('/');
  const { dbOid, inRelationDir } = relationDirOf(parts);
  const name = parts[parts.length - 1]!;
  if (!inRelationDir) return { isDatafile: false, dbOid, segno: undefined };
  const match = relfilenodePattern.exec(name);
  if (
    !match ||
    Number(match[1]) > 0xffffffff ||
    (match[2] !== undefined && Number(match[2]) > 32767)
  ) {
    return { isDatafile: false, dbOid, segno: undefined };
  }
  return { isDatafile: true, dbOid, segno: match[2] === undefined ? 0 : Number(match[2]) };
}

export interface WalkOptions {
  /** `PG_<major>_<catversion>`, the tablespace version directory of this server. */
  tablespaceVersionDir: string;
  backupPgLog: boolean;
  logger: Logger;
}

/**
 * Lists PGDATA for a backup with pg_probackup's exclusions (catalog-format §7.1, cli §5.5),
 * following the `pg_tblspc/<oid>` symlinks into the tablespaces.
 */
export async function listPgdata(
  storage: Storage,
  pgdata: string,
  options: WalkOptions,
): Promise<SourceEntry[]> {
  const result: SourceEntry[] = [];

  const walk = async (relativeDir: string, inTablespace: boolean): Promise<void> => {
    const absoluteDir = relativeDir ? `${pgdata}/${relativeDir}` : pgdata;
    const entries = await storage.readDir(absoluteDir);
    const dirParts = relativeDir ? relativeDir.split('/') : [];
    const names = new Set(entries.map((entry) => entry.name));
    const unloggedRelfilenodes = new Set<string>();
    if (relationDirOf([...dirParts, 'x']).inRelationDir) {
      for (const name of names) {
        const fork = forkPattern.exec(name);
        if (fork && fork[2] === 'init') unloggedRelfilenodes.add(fork[1]!);
      }
    }
    for (const entry of entries) {
      const relativePath = relativeDir ? `${relativeDir}/${entry.name}` : entry.name;
      const absolutePath = `${absoluteDir}/${entry.name}`;
      if (entry.name.startsWith('.')) {
        options.logger.warning(`Skip hidden file: '${absolutePath}'`);
        continue;
      }
      const stat = await storage.stat(absolutePath);
      if (!stat) continue;
      if (stat.type !== 'file' && stat.type !== 'directory') {
        options.logger.warning(`Skip '${absolutePath}': unexpected file format`);
        continue;
      }
      if (stat.type === 'file' && shouldSkipFile(entry.name, dirParts, unloggedRelfilenodes))
        continue;
      if (stat.type === 'directory') {
        const isTablespaceRoot = dirParts.length === 2 && dirParts[0] === 'pg_tblspc';
        if (entry.name === options.tablespaceVersionDir && !isTablespaceRoot) continue;
        if (isTablespaceRoot && entry.name !== options.tablespaceVersionDir) continue;
      }
      const classified = classifyRelationFile(relativePath);
      result.push({
        path: relativePath,
        absolutePath,
        type: stat.type,
        sizeBytes: stat.type === 'file' ? stat.sizeBytes : 0,
        mode: stat.mode,
        mtimeMs: stat.mtimeMs,
        isDatafile: stat.type === 'file' && classified.isDatafile,
        dbOid: classified.dbOid,
        segno: stat.type === 'file' ? classified.segno : undefined,
      });
      if (stat.type === 'directory') {
        const nowInTablespace =
          inTablespace || (dirParts.length === 1 && dirParts[0] === 'pg_tblspc');
        const skipContents =
          (!nowInTablespace && contentExcludedDirs.has(entry.name)) ||
          (relativeDir === '' && entry.name === 'log' && !options.backupPgLog);
        if (!skipContents) await walk(relativePath, nowInTablespace);
      }
    }
  };

  await walk('', false);
  return result;
}

function shouldSkipFile(
  name: string,
  dirParts: string[],
  unloggedRelfilenodes: Set<string>,
): boolean {
  if (dirParts.length === 0 && excludedTopLevelFiles.has(name)) return true;
  if (name === 'ptrack_init') return true;
  if (!relationDirOf([...dirParts, name]).inRelationDir) return false;
  if (excludedRelationDirFiles.has(name)) return true;
  // Temporary relations are named t<backend>_<relfilenode>; `_ptrack` forks belong to old ptrack.
  if (/^t\d/.test(name) || name.endsWith('_ptrack')) return true;
  const relation = /^(\d+)(?:\.\d+|_fsm(?:\.\d+)?)?$/.exec(name);
  return relation !== null && unloggedRelfilenodes.has(relation[1]!);
}

/**
 * The files and directories of one external directory (catalog-format §7.4): everything except
 * hidden entries, always copied whole; the root itself is not listed. Symlinks are followed.
 */
export async function listExternalDir(
  storage: Storage,
  root: string,
  logger: Logger,
): Promise<SourceEntry[]> {
  const result: SourceEntry[] = [];
  const walk = async (relativeDir: string): Promise<void> => {
    const absoluteDir = relativeDir ? `${root}/${relativeDir}` : root;
    for (const entry of await storage.readDir(absoluteDir)) {
      const relativePath = relativeDir ? `${relativeDir}/${entry.name}` : entry.name;
      const absolutePath = `${absoluteDir}/${entry.name}`;
      if (entry.name.startsWith('.')) {
        logger.warning(`Skip hidden file: '${absolutePath}'`);
        continue;
      }
      const stat = await storage.stat(absolutePath);
      if (!stat) continue;
      if (stat.type !== 'file' && stat.type !== 'directory') {
        logger.warning(`Skip '${absolutePath}': unexpected file format`);
        continue;
      }
      result.push({
        path: relativePath,
        absolutePath,
        type: stat.type,
        sizeBytes: stat.type === 'file' ? stat.sizeBytes : 0,
        mode: stat.mode,
        mtimeMs: stat.mtimeMs,
        isDatafile: false,
        dbOid: 0,
        segno: undefined,
      });
      if (stat.type === 'directory') await walk(relativePath);
    }
  };
  await walk('');
  return result;
}
