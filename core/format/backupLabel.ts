/**
 * backup_label, the file pg_backup_stop() returns and a backup carries in its data directory
 * (written by do_pg_backup_stop / build_backup_content in src/backend/access/transam/xlog*.c):
 *
 *   START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
 *   CHECKPOINT LOCATION: 0/2000060
 *   BACKUP METHOD: streamed
 *   BACKUP FROM: primary
 *   START TIME: 2024-01-01 00:00:00 UTC
 *   LABEL: ...
 *   START TIMELINE: 1
 *
 * Keys this parser does not know (such as PostgreSQL 17's INCREMENTAL FROM LSN) are ignored.
 */
import { StrataError } from '../errors.js';
import { parseLsn } from './lsn.js';
import type { Lsn } from './lsn.js';

export interface BackupLabel {
  startWalLocation: Lsn;
  startWalFile: string;
  checkpointLocation: Lsn;
  backupMethod?: string;
  backupFrom?: string;
  startTime?: string;
  label?: string;
  startTimeline?: number;
}

const startWalPattern = /^([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}) \(file ([0-9A-F]{24})\)$/;

function invalid(detail: string): StrataError {
  return new StrataError('format', `Invalid backup_label: ${detail}`);
}

function lsnField(key: string, value: string): Lsn {
  try {
    return parseLsn(value);
  } catch {
    throw invalid(`"${key}" has an invalid LSN "${value}"`);
  }
}

export function parseBackupLabel(text: string): BackupLabel {
  const fields = new Map<string, string>();
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '');
    const separator = line.indexOf(': ');
    if (separator <= 0) continue;
    const key = line.slice(0, separator);
    if (!fields.has(key)) fields.set(key, line.slice(separator + 2));
  }

  const startWal = fields.get('START WAL LOCATION');
  if (startWal === undefined) throw invalid('"START WAL LOCATION" is missing');
  const startMatch = startWalPattern.exec(startWal);
  if (!startMatch)
    throw invalid(`"START WAL LOCATION" is not "X/X (file <segment>)": "${startWal}"`);
  const checkpoint = fields.get('CHECKPOINT LOCATION');
  if (checkpoint === undefined) throw invalid('"CHECKPOINT LOCATION" is missing');

  const result: BackupLabel = {
    startWalLocation: lsnField('START WAL LOCATION', startMatch[1]!),
    startWalFile: startMatch[2]!,
    checkpointLocation: lsnField('CHECKPOINT LOCATION', checkpoint),
  };
  const backupMethod = fields.get('BACKUP METHOD');
  if (backupMethod !== undefined) result.backupMethod = backupMethod;
  const backupFrom = fields.get('BACKUP FROM');
  if (backupFrom !== undefined) result.backupFrom = backupFrom;
  const startTime = fields.get('START TIME');
  if (startTime !== undefined) result.startTime = startTime;
  const label = fields.get('LABEL');
  if (label !== undefined) result.label = label;
  const startTimeline = fields.get('START TIMELINE');
  if (startTimeline !== undefined) {
    if (!/^\d+$/.test(startTimeline))
      throw invalid(`"START TIMELINE" is not a number: "${startTimeline}"`);
    result.startTimeline = Number(startTimeline);
  }
  return result;
}
