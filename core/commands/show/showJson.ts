import type { CatalogBackup } from '../../catalog/catalog.js';
import { formatLocalTime } from '../../catalog/time.js';
import { formatLsn } from '../../format/lsn.js';
import { sortNewestFirst } from './backupTable.js';
import { ProbackupJsonWriter } from './probackupJson.js';
import type { TablespaceLink } from './tablespaceMap.js';

/** One instance of `show --format=json`: its backups and, per backup ID, the tablespaces it has. */
export interface ShowJsonInstance {
  instance: string;
  backups: readonly CatalogBackup[];
  tablespaceMaps?: ReadonlyMap<string, readonly TablespaceLink[]>;
}

/**
 * One backup object of `show --format=json` (cli-behaviour.md §4.4), keys in pg_probackup's order
 * and with its types (`from-replica` is a string, byte counts are numbers). `parentTli` is the
 * timeline of the parent when the parent is among the listed backups, else 0.
 */
export function writeBackupJsonObject(
  json: ProbackupJsonWriter,
  backup: CatalogBackup,
  parentTli: number,
  tablespaces: readonly TablespaceLink[] | undefined,
): void {
  json.beginObject();
  json.string('id', backup.id);
  if (backup.parentBackupId !== undefined) json.string('parent-backup-id', backup.parentBackupId);
  json.string('backup-mode', backup.backupMode ?? '');
  json.string('wal', backup.stream ? 'STREAM' : 'ARCHIVE');
  json.string('compress-alg', backup.compressAlg);
  json.number('compress-level', backup.compressLevel);
  json.string('from-replica', backup.fromReplica ? 'true' : 'false');
  json.number('block-size', backup.blockSize);
  json.number('xlog-block-size', backup.xlogBlockSize);
  json.number('checksum-version', backup.checksumVersion);
  json.string('program-version', backup.programVersion ?? '');
  json.string('server-version', backup.serverVersion ?? '');
  json.number('current-tli', backup.timelineId);
  json.number('parent-tli', parentTli);
  json.string('start-lsn', formatLsn(backup.startLsn));
  json.string('stop-lsn', formatLsn(backup.stopLsn));
  json.string('start-time', formatLocalTime(backup.startTime));
  if (backup.endTime !== 0) json.string('end-time', formatLocalTime(backup.endTime));
  json.number('recovery-xid', backup.recoveryXid);
  if (backup.recoveryTime > 0) json.string('recovery-time', formatLocalTime(backup.recoveryTime));
  if (backup.expireTime > 0) json.string('expire-time', formatLocalTime(backup.expireTime));
  if (backup.dataBytes !== -1) json.number('data-bytes', backup.dataBytes);
  if (backup.walBytes !== -1) json.number('wal-bytes', backup.walBytes);
  if (backup.uncompressedBytes >= 0) json.number('uncompressed-bytes', backup.uncompressedBytes);
  if (backup.pgdataBytes >= 0) json.number('pgdata-bytes', backup.pgdataBytes);
  if (backup.primaryConninfo !== undefined) json.string('primary_conninfo', backup.primaryConninfo);
  if (backup.externalDirs !== undefined) json.string('external-dirs', backup.externalDirs);
  json.string('status', backup.status);
  if (backup.note !== undefined) json.string('note', backup.note);
  if (backup.contentCrc !== 0) json.number('content-crc', backup.contentCrc);
  if (tablespaces !== undefined) {
    json.key('tablespace_map');
    json.beginArray();
    tablespaces.forEach((link, i) => {
      if (i > 0) json.separator();
      json.beginObject();
      json.string('oid', link.oid);
      json.string('path', link.path);
      json.endObject();
    });
    json.endArray();
  }
  json.endObject();
}

/** The parent timeline `show` prints: that of the parent when it is in the same listing, else 0. */
export function parentTimelines(backups: readonly CatalogBackup[]): Map<string, number> {
  const byId = new Map(backups.map((backup) => [backup.id, backup]));
  const result = new Map<string, number>();
  for (const backup of backups) {
    const parent =
      backup.parentBackupId === undefined ? undefined : byId.get(backup.parentBackupId);
    result.set(backup.id, parent ? parent.timelineId : 0);
  }
  return result;
}

/**
 * `show --format=json`: `[` instance objects `{"instance": …, "backups": [ … newest first … ]}` `]`,
 * laid out like pg_probackup (4-space indentation, trailing newline). No instances gives `[\n]\n`.
 */
export function renderShowJson(instances: readonly ShowJsonInstance[]): string {
  const json = new ProbackupJsonWriter();
  json.beginArray();
  instances.forEach((entry, i) => {
    if (i > 0) json.separator();
    json.beginObject();
    json.string('instance', entry.instance);
    json.key('backups');
    json.beginArray();
    const backups = sortNewestFirst(entry.backups);
    const parentTli = parentTimelines(backups);
    backups.forEach((backup, j) => {
      if (j > 0) json.separator();
      writeBackupJsonObject(
        json,
        backup,
        parentTli.get(backup.id) ?? 0,
        entry.tablespaceMaps?.get(backup.id),
      );
    });
    json.endArray();
    json.endObject();
  });
  json.endArray();
  return json.toString() + '\n';
}
