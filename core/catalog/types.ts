import type { Lsn } from '../format/lsn.js';

/**
 * Backup modes: pg_probackup's, as stored in `backup-mode` (spec/catalog-format.md §5.2), and
 * Strata's SUMMARY (changed blocks from PostgreSQL 17's WAL summaries). An incremental backup's
 * content does not depend on how its changed blocks were found, so a SUMMARY backup is stored as
 * `backup-mode = DELTA` plus the Strata-only key `strata-backup-mode = SUMMARY`: pg_probackup
 * restores it as a DELTA backup (and only warns about the unknown key).
 */
export type BackupMode = 'FULL' | 'PAGE' | 'PTRACK' | 'DELTA' | 'SUMMARY';

/** Stored statuses (§11.1); `UNKNOWN` is what a backup without a readable status shows. */
export type BackupStatus =
  | 'OK'
  | 'ERROR'
  | 'RUNNING'
  | 'MERGING'
  | 'MERGED'
  | 'DELETING'
  | 'DELETED'
  | 'DONE'
  | 'ORPHAN'
  | 'CORRUPT'
  | 'UNKNOWN';

/**
 * `compress-alg` values. `lz4` and `zstd` are Strata-only: pg_probackup 2.5 stops on them with its
 * own `Invalid compress algorithm value` error, so it never misreads such a backup.
 */
export type CompressAlgorithm = 'none' | 'zlib' | 'pglz' | 'lz4' | 'zstd';

/**
 * Everything `backup.control` holds (§5), in memory. Times are Unix seconds (0 = unset); byte
 * counts use -1 for "unknown" as pg_probackup does.
 */
export interface BackupMeta {
  /** Base36 of startTime, unless the directory name says otherwise (then the directory wins for paths). */
  id: string;
  backupMode: BackupMode | undefined;
  stream: boolean;
  compressAlg: CompressAlgorithm;
  compressLevel: number;
  fromReplica: boolean;
  blockSize: number;
  xlogBlockSize: number;
  checksumVersion: number;
  programVersion: string | undefined;
  serverVersion: string | undefined;
  timelineId: number;
  startLsn: Lsn;
  stopLsn: Lsn;
  startTime: number;
  mergeTime: number;
  endTime: number;
  recoveryXid: bigint;
  recoveryTime: number;
  expireTime: number;
  mergeDestId: string | undefined;
  dataBytes: number;
  walBytes: number;
  uncompressedBytes: number;
  pgdataBytes: number;
  status: BackupStatus;
  parentBackupId: string | undefined;
  primaryConninfo: string | undefined;
  externalDirs: string | undefined;
  note: string | undefined;
  contentCrc: number;
}

/** One line of `backup_content.control` (§6). */
export interface FileEntry {
  path: string;
  /** Bytes stored in this backup; -1 = unchanged since the parent; 0 = empty or directory. */
  size: number;
  mode: number;
  isDatafile: boolean;
  isCfs: boolean;
  crc: number;
  compressAlg: CompressAlgorithm;
  externalDirNum: number;
  dbOid: number;
  /** Uncompressed size; undefined when equal to `size` or zero. */
  fullSize: number | undefined;
  segno: number | undefined;
  linked: string | undefined;
  nBlocks: number | undefined;
  nHeaders: number | undefined;
  hdrCrc: number | undefined;
  hdrOff: bigint | undefined;
  hdrSize: number | undefined;
}

/** One entry of a data file's slice in `page_header_map` (§8). */
export interface PageHeaderEntry {
  lsn: Lsn;
  block: number;
  pos: number;
  checksum: number;
}

/** One line of `database_map` (§14.1). */
export interface DatabaseMapEntry {
  dbOid: number;
  datname: string;
}
