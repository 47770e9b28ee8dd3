import { StrataError, isStrataError } from '../errors.js';
import { formatLsn, parseLsn } from '../format/lsn.js';
import type { Lsn } from '../format/lsn.js';
import { backupIdFromTime, decodeBackupIdPrefix } from './backupId.js';
import { normalizeKey, parseKeyValueText, quoteValue, singleQuoted } from './keyValue.js';
import { parseBackupMode, parseBool, parseCompressAlgorithm } from './optionValues.js';
import { formatLocalTime, formatUtcTime, parseProbackupTime } from './time.js';
import type { BackupMeta, BackupStatus } from './types.js';
import { parseCIntegerResult } from './units.js';
import type { IntegerKind } from './units.js';

/**
 * `backup.control` (spec/catalog-format.md §5): read with pg_probackup's key-value reader and
 * its defaults for missing keys; written in exactly pg_probackup's layout, times in UTC.
 */

type ControlKeyType = 'string' | 'bool' | 'time' | IntegerKind;

/** Every key pg_probackup 2.5 reads from backup.control, with its reader type. */
const controlKeys: ReadonlyArray<{ name: string; type: ControlKeyType }> = [
  { name: 'backup-mode', type: 'string' },
  { name: 'timelineid', type: 'uint32' },
  { name: 'start-lsn', type: 'string' },
  { name: 'stop-lsn', type: 'string' },
  { name: 'start-time', type: 'time' },
  { name: 'merge-time', type: 'time' },
  { name: 'end-time', type: 'time' },
  { name: 'recovery-xid', type: 'uint64' },
  { name: 'recovery-time', type: 'time' },
  { name: 'expire-time', type: 'time' },
  { name: 'data-bytes', type: 'int64' },
  { name: 'wal-bytes', type: 'int64' },
  { name: 'uncompressed-bytes', type: 'int64' },
  { name: 'pgdata-bytes', type: 'int64' },
  { name: 'block-size', type: 'uint32' },
  { name: 'xlog-block-size', type: 'uint32' },
  { name: 'checksum-version', type: 'uint32' },
  { name: 'program-version', type: 'string' },
  { name: 'server-version', type: 'string' },
  { name: 'stream', type: 'bool' },
  { name: 'status', type: 'string' },
  { name: 'parent-backup-id', type: 'string' },
  { name: 'merge-dest-id', type: 'string' },
  { name: 'compress-alg', type: 'string' },
  { name: 'compress-level', type: 'uint32' },
  { name: 'from-replica', type: 'bool' },
  { name: 'primary-conninfo', type: 'string' },
  { name: 'external-dirs', type: 'string' },
  { name: 'note', type: 'string' },
  { name: 'content-crc', type: 'uint32' },
  { name: 'strata-backup-mode', type: 'string' },
];

const typeWords: Record<ControlKeyType, string> = {
  string: 'a valid string',
  bool: 'a boolean',
  time: 'a time',
  int32: 'a 32bit signed integer',
  uint32: 'a 32bit unsigned integer',
  int64: 'a 64bit signed integer',
  uint64: 'a 64bit unsigned integer',
};

/** Statuses pg_probackup recognises on read (exact, case-sensitive). */
export const storedStatuses: readonly BackupStatus[] = [
  'OK',
  'ERROR',
  'RUNNING',
  'MERGING',
  'MERGED',
  'DELETING',
  'DELETED',
  'DONE',
  'ORPHAN',
  'CORRUPT',
];

/** BLCKSZ and XLOG_BLCKSZ, pg_probackup's defaults for missing block sizes. */
const DEFAULT_BLOCK_SIZE = 8192;

type ParsedValue = string | boolean | bigint | number;

/** A backup.control with pg_probackup's defaults (pgBackupInit) for every key. */
export function defaultBackupMeta(): BackupMeta {
  return {
    id: '',
    backupMode: undefined,
    stream: false,
    compressAlg: 'none',
    compressLevel: 1,
    fromReplica: false,
    blockSize: DEFAULT_BLOCK_SIZE,
    xlogBlockSize: DEFAULT_BLOCK_SIZE,
    checksumVersion: 0,
    programVersion: undefined,
    serverVersion: undefined,
    timelineId: 0,
    startLsn: 0n,
    stopLsn: 0n,
    startTime: 0,
    mergeTime: 0,
    endTime: 0,
    recoveryXid: 0n,
    recoveryTime: 0,
    expireTime: 0,
    mergeDestId: undefined,
    dataBytes: -1,
    walBytes: -1,
    uncompressedBytes: 0,
    pgdataBytes: 0,
    status: 'UNKNOWN',
    parentBackupId: undefined,
    primaryConninfo: undefined,
    externalDirs: undefined,
    note: undefined,
    contentCrc: 0,
  };
}

function parseControlValue(type: ControlKeyType, text: string): ParsedValue | undefined {
  switch (type) {
    case 'string':
      return text === '' ? undefined : text;
    case 'bool':
      return parseBool(text);
    case 'time':
      return parseProbackupTime(text, 'utc') ?? undefined;
    default: {
      const result = parseCIntegerResult(text, type);
      return 'value' in result ? result.value : undefined;
    }
  }
}

/** A stored ID as pg_probackup re-encodes it (`base36enc(base36dec(s))`); 0 means unset. */
function normalizedBackupId(text: string): string | undefined {
  const startTime = decodeBackupIdPrefix(text);
  return startTime === 0 ? undefined : backupIdFromTime(startTime);
}

/**
 * Parses a backup.control. Unknown keys, an unknown or missing status and unparsable LSNs are warnings
 * (pushed to `warnings`; status becomes UNKNOWN, LSN 0) as in pg_probackup; a syntax error, a bad
 * value, an invalid backup mode or compression, an empty file and a missing or zero `start-time`
 * are one StrataError('format') naming the file.
 */
export function parseBackupControl(
  text: string,
  path: string,
  warnings: string[] = [],
): BackupMeta {
  const values = new Map<string, { value: ParsedValue; line: number; text: string }>();
  for (const { key, value, line } of parseKeyValueText(text, path)) {
    const wanted = normalizeKey(key);
    const spec = controlKeys.find((entry) => normalizeKey(entry.name) === wanted);
    if (!spec) {
      warnings.push(`Invalid option "${key}" in file "${path}"`);
      continue;
    }
    const parsed = parseControlValue(spec.type, value);
    if (parsed === undefined) {
      throw new StrataError(
        'format',
        `Option --${spec.name} should be ${typeWords[spec.type]}: '${value}' (file "${path}", line ${line})`,
      );
    }
    values.set(spec.name, { value: parsed, line, text: value });
  }
  if (values.size === 0) throw new StrataError('format', `Control file "${path}" is empty`);

  const get = <T extends ParsedValue>(name: string): T | undefined =>
    values.get(name)?.value as T | undefined;
  const rewrap = <T>(name: string, parse: (text: string) => T): T | undefined => {
    const entry = values.get(name);
    if (!entry) return undefined;
    try {
      return parse(entry.text);
    } catch (error) {
      if (!isStrataError(error)) throw error;
      throw new StrataError('format', `${error.message} (file "${path}", line ${entry.line})`, {
        cause: error,
      });
    }
  };
  const lsn = (name: string, label: string): Lsn => {
    const text = get<string>(name);
    if (text === undefined) return 0n;
    try {
      return parseLsn(text);
    } catch {
      warnings.push(`Invalid ${label} "${text}" in file "${path}"`);
      return 0n;
    }
  };
  const int = (name: string): number | undefined => {
    const value = get<bigint>(name);
    return value === undefined ? undefined : Number(value);
  };

  const meta = defaultBackupMeta();
  meta.startTime = get<number>('start-time') ?? 0;
  if (meta.startTime === 0) {
    throw new StrataError('format', `Invalid ID/start-time, control file "${path}" is corrupted`);
  }
  meta.id = backupIdFromTime(meta.startTime);
  meta.backupMode = rewrap('backup-mode', parseBackupMode);
  if (get<string>('strata-backup-mode') === 'SUMMARY') meta.backupMode = 'SUMMARY';
  meta.stream = get<boolean>('stream') ?? meta.stream;
  meta.compressAlg = rewrap('compress-alg', parseCompressAlgorithm) ?? meta.compressAlg;
  meta.compressLevel = int('compress-level') ?? meta.compressLevel;
  meta.fromReplica = get<boolean>('from-replica') ?? meta.fromReplica;
  meta.blockSize = int('block-size') ?? meta.blockSize;
  meta.xlogBlockSize = int('xlog-block-size') ?? meta.xlogBlockSize;
  meta.checksumVersion = int('checksum-version') ?? meta.checksumVersion;
  meta.programVersion = get<string>('program-version');
  meta.serverVersion = get<string>('server-version');
  meta.timelineId = int('timelineid') ?? meta.timelineId;
  meta.startLsn = lsn('start-lsn', 'START_LSN');
  meta.stopLsn = lsn('stop-lsn', 'STOP_LSN');
  meta.mergeTime = get<number>('merge-time') ?? 0;
  meta.endTime = get<number>('end-time') ?? 0;
  meta.recoveryXid = get<bigint>('recovery-xid') ?? 0n;
  meta.recoveryTime = get<number>('recovery-time') ?? 0;
  meta.expireTime = get<number>('expire-time') ?? 0;
  const mergeDest = get<string>('merge-dest-id');
  meta.mergeDestId = mergeDest === undefined ? undefined : normalizedBackupId(mergeDest);
  meta.dataBytes = int('data-bytes') ?? meta.dataBytes;
  meta.walBytes = int('wal-bytes') ?? meta.walBytes;
  meta.uncompressedBytes = int('uncompressed-bytes') ?? meta.uncompressedBytes;
  meta.pgdataBytes = int('pgdata-bytes') ?? meta.pgdataBytes;
  const status = get<string>('status');
  if (status !== undefined) {
    const known = storedStatuses.find((candidate) => candidate === status);
    if (known) meta.status = known;
    else warnings.push(`Invalid STATUS "${status}" in file "${path}"`);
  } else {
    // pg_probackup says nothing and shows the backup as UNKNOWN; say which file lacks it.
    warnings.push(`Field "status" is not found in file "${path}"`);
  }
  const parent = get<string>('parent-backup-id');
  meta.parentBackupId = parent === undefined ? undefined : normalizedBackupId(parent);
  meta.primaryConninfo = get<string>('primary-conninfo');
  meta.externalDirs = get<string>('external-dirs');
  meta.note = get<string>('note');
  meta.contentCrc = int('content-crc') ?? meta.contentCrc;
  return meta;
}

/** pg_probackup's pgBackupWriteControl, with the time zone of its caller. */
function renderControl(
  meta: BackupMeta,
  formatTime: (sec: number) => string,
  backupMode: string,
): string {
  const lines: string[] = [];
  const add = (line: string) => lines.push(line);
  const quotedTime = (key: string, sec: number) =>
    add(`${key} = ${singleQuoted(formatTime(sec), key)}`);
  const present = (value: string | undefined): value is string =>
    value !== undefined && value !== '';

  add('#Configuration');
  add(`backup-mode = ${backupMode === 'SUMMARY' ? 'DELTA' : backupMode}`);
  add(`stream = ${meta.stream}`);
  add(`compress-alg = ${meta.compressAlg}`);
  add(`compress-level = ${meta.compressLevel}`);
  add(`from-replica = ${meta.fromReplica}`);
  if (backupMode === 'SUMMARY') add('strata-backup-mode = SUMMARY');
  add('');
  add('#Compatibility');
  add(`block-size = ${meta.blockSize}`);
  add(`xlog-block-size = ${meta.xlogBlockSize}`);
  add(`checksum-version = ${meta.checksumVersion}`);
  if (present(meta.programVersion)) add(`program-version = ${quoteValue(meta.programVersion)}`);
  if (present(meta.serverVersion)) add(`server-version = ${quoteValue(meta.serverVersion)}`);
  add('');
  add('#Result backup info');
  add(`timelineid = ${meta.timelineId}`);
  add(`start-lsn = ${formatLsn(meta.startLsn)}`);
  add(`stop-lsn = ${formatLsn(meta.stopLsn)}`);
  quotedTime('start-time', meta.startTime);
  if (meta.mergeTime > 0) quotedTime('merge-time', meta.mergeTime);
  if (meta.endTime > 0) quotedTime('end-time', meta.endTime);
  add(`recovery-xid = ${meta.recoveryXid}`);
  if (meta.recoveryTime > 0) quotedTime('recovery-time', meta.recoveryTime);
  if (meta.expireTime > 0) quotedTime('expire-time', meta.expireTime);
  if (present(meta.mergeDestId))
    add(`merge-dest-id = ${singleQuoted(meta.mergeDestId, 'merge-dest-id')}`);
  if (meta.dataBytes !== -1) add(`data-bytes = ${meta.dataBytes}`);
  if (meta.walBytes !== -1) add(`wal-bytes = ${meta.walBytes}`);
  if (meta.uncompressedBytes >= 0) add(`uncompressed-bytes = ${meta.uncompressedBytes}`);
  if (meta.pgdataBytes >= 0) add(`pgdata-bytes = ${meta.pgdataBytes}`);
  add(`status = ${meta.status}`);
  if (present(meta.parentBackupId)) {
    add(`parent-backup-id = ${singleQuoted(meta.parentBackupId, 'parent-backup-id')}`);
  }
  if (present(meta.primaryConninfo)) {
    add(`primary_conninfo = ${singleQuoted(meta.primaryConninfo, 'primary_conninfo')}`);
  }
  if (present(meta.externalDirs))
    add(`external-dirs = ${singleQuoted(meta.externalDirs, 'external-dirs')}`);
  if (present(meta.note)) add(`note = ${singleQuoted(meta.note, 'note')}`);
  if (meta.contentCrc !== 0) add(`content-crc = ${meta.contentCrc}`);
  return lines.map((line) => `${line}\n`).join('');
}

/**
 * The file as pg_probackup writes it (§5.1): fixed key order and blank lines, optional keys
 * omitted, times in UTC, LSNs as `%X/%X`, quoted values with embedded quotes doubled.
 */
export function formatBackupControl(meta: BackupMeta): string {
  if (meta.backupMode === undefined) {
    throw new StrataError(
      'internal',
      `Backup ${meta.id} has no backup mode; its backup.control cannot be written`,
    );
  }
  if (meta.startTime <= 0) {
    throw new StrataError(
      'internal',
      `Backup ${meta.id} has no start time; its backup.control cannot be written`,
    );
  }
  return renderControl(meta, formatUtcTime, meta.backupMode);
}

/**
 * `show -i ID` in plain format (spec/cli-behaviour.md §4.3): the backup.control syntax with local
 * times, then, when the backup has tablespaces, `tablespace_map = '<oid> <path>; …'` sorted by
 * path after a blank line.
 */
export function formatBackupDetail(
  meta: BackupMeta,
  tablespaceMap?: ReadonlyArray<{ oid: string; path: string }>,
): string {
  let text = renderControl(meta, formatLocalTime, meta.backupMode ?? '');
  if (tablespaceMap && tablespaceMap.length > 0) {
    const sorted = [...tablespaceMap].sort((a, b) =>
      Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)),
    );
    text += `\ntablespace_map = '${sorted.map((entry) => `${entry.oid} ${entry.path}`).join('; ')}'\n`;
  }
  return text;
}
