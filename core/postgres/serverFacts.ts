/**
 * What a backup needs to know about the server, and pg_probackup's pre-flight checks on it
 * (cli-behaviour.md §5.4 step 4).
 */
import { StrataError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PgSession } from './connection.js';

export interface ServerFacts {
  /** server_version_num, e.g. 170002. */
  serverVersionNum: number;
  major: number;
  /** server_version, e.g. `17.2`. */
  serverVersionText: string;
  /** BLCKSZ. */
  blockSize: number;
  /** XLOG_BLCKSZ. */
  walBlockSize: number;
  walSegmentSizeBytes: number;
  dataChecksums: boolean;
  isInRecovery: boolean;
  isSuperuser: boolean;
  systemIdentifier: bigint;
  /** Timeline of the latest checkpoint (pg_control_checkpoint().timeline_id). */
  timelineId: number;
}

export const oldestSupportedMajor = 11;
export const newestSupportedMajor = 18;

/** Page sizes pg_probackup's format is built for (BLCKSZ and XLOG_BLCKSZ of a default build). */
const expectedBlockSize = 8192;

/**
 * pg_settings units a size setting may carry: wal_segment_size is reported in bytes ('B') since
 * PostgreSQL 11 and in WAL blocks ('8kB') before.
 */
const unitBytes: Record<string, number> = {
  B: 1,
  kB: 1024,
  '8kB': 8192,
  MB: 1024 * 1024,
  GB: 1024 * 1024 * 1024,
};

function settingBytes(name: string, setting: string, unit: string | null): number {
  const factor = unitBytes[unit ?? 'B'];
  const value = Number(setting);
  if (factor === undefined || !Number.isInteger(value)) {
    throw new StrataError(
      'postgres',
      `Cannot parse ${name}: "${setting}" with unit "${unit ?? ''}"`,
    );
  }
  return value * factor;
}

function unsupportedVersionError(serverVersionText: string, major: number): StrataError {
  if (major < oldestSupportedMajor) {
    return new StrataError(
      'postgres',
      `Server version is ${serverVersionText}, must be ${oldestSupportedMajor} or higher`,
    );
  }
  return new StrataError(
    'postgres',
    `Server version is ${serverVersionText}, Strata supports PostgreSQL ${oldestSupportedMajor} to ${newestSupportedMajor}`,
  );
}

interface VersionRow {
  server_version_num: string;
  server_version: string;
}

interface FactsRow {
  block_size: string;
  wal_block_size: string;
  wal_segment_size: string;
  wal_segment_size_unit: string | null;
  data_checksums: string;
  is_in_recovery: boolean;
  is_superuser: string;
  system_identifier: string;
  timeline_id: number;
}

/**
 * Reads the server's facts. The pg_control_* functions exist from 9.6 on: an older server is
 * refused with the version error before they are called.
 */
export async function readServerFacts(session: PgSession): Promise<ServerFacts> {
  const [version] = await session.query<VersionRow>(
    "SELECT pg_catalog.current_setting('server_version_num') AS server_version_num," +
      " pg_catalog.current_setting('server_version') AS server_version",
  );
  if (!version) throw new StrataError('postgres', 'Unknown server version');
  const serverVersionNum = Number(version.server_version_num);
  const major = Math.floor(serverVersionNum / 10000);
  if (serverVersionNum < 90600) throw unsupportedVersionError(version.server_version, major);

  const [row] = await session.query<FactsRow>(
    'SELECT' +
      " pg_catalog.current_setting('block_size') AS block_size," +
      " pg_catalog.current_setting('wal_block_size') AS wal_block_size," +
      ' s.setting AS wal_segment_size, s.unit AS wal_segment_size_unit,' +
      " pg_catalog.current_setting('data_checksums') AS data_checksums," +
      ' pg_catalog.pg_is_in_recovery() AS is_in_recovery,' +
      " pg_catalog.current_setting('is_superuser') AS is_superuser," +
      ' (SELECT system_identifier FROM pg_catalog.pg_control_system())::text AS system_identifier,' +
      ' (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()) AS timeline_id' +
      " FROM pg_catalog.pg_settings s WHERE s.name = 'wal_segment_size'",
  );
  if (!row)
    throw new StrataError(
      'postgres',
      'Cannot read the server settings: no row for wal_segment_size',
    );
  return {
    serverVersionNum,
    major,
    serverVersionText: version.server_version,
    blockSize: Number(row.block_size),
    walBlockSize: Number(row.wal_block_size),
    walSegmentSizeBytes: settingBytes(
      'wal_segment_size',
      row.wal_segment_size,
      row.wal_segment_size_unit,
    ),
    dataChecksums: row.data_checksums === 'on',
    isInRecovery: row.is_in_recovery,
    isSuperuser: row.is_superuser === 'on',
    systemIdentifier: BigInt(row.system_identifier),
    timelineId: Number(row.timeline_id),
  };
}

export interface ServerCheckOptions {
  /** The instance's system id (pg_probackup.conf `system-identifier`). */
  expectedSystemIdentifier?: bigint;
  /** System id read from PGDATA's global/pg_control. */
  pgdataSystemIdentifier?: bigint;
  logger: Logger;
}

/**
 * pg_probackup's checks before a backup, in its order: page sizes, server version, data
 * checksums (INFO or WARNING), superuser (WARNING), then system identifiers.
 */
export function checkServerForBackup(facts: ServerFacts, options: ServerCheckOptions): void {
  const { logger } = options;
  for (const [name, value] of [
    ['block_size', facts.blockSize],
    ['wal_block_size', facts.walBlockSize],
  ] as const) {
    if (value !== expectedBlockSize) {
      throw new StrataError(
        'postgres',
        `${name}(${value}) is not compatible(${expectedBlockSize} expected)`,
      );
    }
  }
  if (facts.major < oldestSupportedMajor || facts.major > newestSupportedMajor) {
    throw unsupportedVersionError(facts.serverVersionText, facts.major);
  }
  if (facts.dataChecksums) {
    logger.info(
      'This PostgreSQL instance was initialized with data block checksums. Data block corruption will be detected',
    );
  } else {
    logger.warning(
      'This PostgreSQL instance was initialized without data block checksums. ' +
        'pg_probackup have no way to detect data block corruption without them. ' +
        "Reinitialize PGDATA with option '--data-checksums'.",
    );
  }
  if (facts.isSuperuser) {
    logger.warning(
      'Current PostgreSQL role is superuser. It is not recommended to run pg_probackup under superuser.',
    );
  }
  const expected = options.expectedSystemIdentifier;
  if (expected !== undefined && expected !== facts.systemIdentifier) {
    throw new StrataError(
      'postgres',
      `Backup data directory was initialized for system id ${expected}, ` +
        `but connected instance system id is ${facts.systemIdentifier}`,
    );
  }
  const pgdata = options.pgdataSystemIdentifier;
  if (expected !== undefined && pgdata !== undefined && pgdata !== expected) {
    throw new StrataError(
      'postgres',
      `Backup data directory was initialized for system id ${expected}, ` +
        `but target backup directory system id is ${pgdata}`,
    );
  }
}
