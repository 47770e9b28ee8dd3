/**
 * Starting and stopping a non-exclusive backup (cli-behaviour.md §5.4 steps 6 and 11). The
 * server ties a non-exclusive backup to the session that started it: every call here must get
 * the same PgSession, kept open from startBackup to stopBackup; closing it aborts the backup.
 */
import { StrataError } from '../errors.js';
import { parseLsn, type Lsn } from '../format/lsn.js';
import type { PgSession } from './connection.js';

/** pg_backup_start/pg_backup_stop replaced pg_start_backup/pg_stop_backup in PostgreSQL 15. */
const renamedBackupFunctionsMajor = 15;

export interface StartBackupOptions {
  /** `<start time> with pg_probackup`; it lands in backup_label's LABEL line. */
  label: string;
  /** Request an immediate checkpoint (not `--smooth-checkpoint`). */
  fast: boolean;
  major: number;
}

export interface StartBackupResult {
  startLsn: Lsn;
  timelineId: number;
}

export async function startBackup(
  session: PgSession,
  options: StartBackupOptions,
): Promise<StartBackupResult> {
  const renamed = options.major >= renamedBackupFunctionsMajor;
  session.logger.info(renamed ? 'wait for pg_backup_start()' : 'wait for pg_start_backup()');
  const sql = renamed
    ? 'SELECT pg_catalog.pg_backup_start($1, $2) AS lsn'
    : 'SELECT pg_catalog.pg_start_backup($1, $2, false) AS lsn';
  const [started] = await session.query<{ lsn: string }>(sql, [options.label, options.fast]);
  const [checkpoint] = await session.query<{ timeline_id: number }>(
    'SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()',
  );
  if (!started || !checkpoint) throw new StrataError('postgres', 'Backup start returned no row');
  return { startLsn: parseLsn(started.lsn), timelineId: Number(checkpoint.timeline_id) };
}

/** Closes the current WAL segment so that it can be archived; returns pg_switch_wal()'s LSN. */
export async function switchWal(session: PgSession): Promise<Lsn> {
  await session.query('SET client_min_messages = warning');
  const [row] = await session.query<{ lsn: string }>('SELECT pg_catalog.pg_switch_wal() AS lsn');
  if (!row) throw new StrataError('postgres', 'pg_switch_wal() returned no row');
  return parseLsn(row.lsn);
}

/** `pg_create_restore_point(name)`; pg_probackup names it `pg_probackup, backup_id <ID>`. */
export async function createRestorePoint(session: PgSession, name: string): Promise<Lsn> {
  const [row] = await session.query<{ lsn: string }>(
    'SELECT pg_catalog.pg_create_restore_point($1) AS lsn',
    [name],
  );
  if (!row) throw new StrataError('postgres', 'pg_create_restore_point() returned no row');
  return parseLsn(row.lsn);
}

export interface StopBackupOptions {
  major: number;
  /** On a standby the stop LSN is the last replayed one, not the function's (§5.7). */
  fromReplica: boolean;
  /** archive-timeout: how long the server may take to answer. */
  timeoutSeconds: number;
}

export interface StopBackupResult {
  stopLsn: Lsn;
  /** Content for PGDATA/backup_label of the restored cluster. */
  backupLabel: string;
  /** Content for tablespace_map; empty when there are no tablespaces. */
  tablespaceMap: string;
  /** txid_snapshot_xmax(txid_current_snapshot()): recovery-xid of the backup. */
  recoveryXid: bigint;
  /** current_timestamp(0) at stop, Unix seconds: the fallback recovery-time. */
  stopTimeSec: number;
}

interface StopBackupRow {
  txid_snapshot_xmax: string;
  current_timestamp: Date;
  lsn: string;
  labelfile: string | null;
  spcmapfile: string | null;
}

function stopBackupFunction(major: number): string {
  return major >= renamedBackupFunctionsMajor
    ? 'pg_backup_stop(false)'
    : 'pg_stop_backup(false, false)';
}

/**
 * The stop query, selecting pg_probackup's five columns. `false` = do not wait for WAL archiving:
 * pg_probackup waits for the stop LSN itself, in the archive or in the stream.
 */
function stopBackupQuery(major: number, fromReplica: boolean): string {
  const lsnColumn = fromReplica ? 'pg_catalog.pg_last_wal_replay_lsn() AS lsn' : 'lsn';
  return (
    'SELECT pg_catalog.txid_snapshot_xmax(pg_catalog.txid_current_snapshot()) AS txid_snapshot_xmax,' +
    ' current_timestamp(0)::timestamptz AS current_timestamp,' +
    ` ${lsnColumn}, labelfile, spcmapfile` +
    ` FROM pg_catalog.${stopBackupFunction(major)}`
  );
}

export async function stopBackup(
  session: PgSession,
  options: StopBackupOptions,
): Promise<StopBackupResult> {
  const functionName =
    options.major >= renamedBackupFunctionsMajor ? 'pg_backup_stop' : 'pg_stop_backup';
  // recovery-time is parsed from this column's text form; ISO keeps it unambiguous.
  await session.query("SET datestyle = 'ISO, DMY'");
  session.logger.info('wait for pg_stop_backup()');
  const pending = session.query<StopBackupRow>(stopBackupQuery(options.major, options.fromReplica));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout('timeout'), options.timeoutSeconds * 1000);
  });
  let outcome: StopBackupRow[] | 'timeout';
  try {
    outcome = await Promise.race([pending, timedOut]);
  } finally {
    clearTimeout(timer);
  }
  if (outcome === 'timeout') {
    pending.catch(() => undefined);
    await session.cancel();
    throw new StrataError(
      'postgres',
      `${functionName} doesn't answer in ${options.timeoutSeconds} seconds, cancel it`,
    );
  }
  const [row] = outcome;
  if (!row) throw new StrataError('postgres', `${functionName}() failed`);
  session.logger.info('pg_stop backup() successfully executed');
  return {
    stopLsn: parseLsn(row.lsn),
    backupLabel: row.labelfile ?? '',
    tablespaceMap: row.spcmapfile ?? '',
    recoveryXid: BigInt(row.txid_snapshot_xmax),
    stopTimeSec: Math.floor(row.current_timestamp.getTime() / 1000),
  };
}

/**
 * Ends a backup that failed after startBackup, so the server leaves backup mode; its result and
 * any error are of no use any more.
 */
export async function abortBackup(session: PgSession): Promise<void> {
  session.logger.warning('A backup is in progress, stopping it.');
  try {
    await session.query(`SELECT 1 FROM pg_catalog.${stopBackupFunction(session.serverMajor)}`);
  } catch {
    // The backup is being abandoned: whatever the server answers changes nothing.
  }
}
