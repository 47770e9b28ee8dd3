import type { CatalogBackup } from '../../catalog/catalog.js';
import { formatLocalTime } from '../../catalog/time.js';
import { formatLsn } from '../../format/lsn.js';
import { formatZratio, prettySize, prettyTimeInterval } from './prettyFormat.js';

interface Column {
  header: string;
  rightAligned: boolean;
}

/** Columns of pg_probackup's backup table, in order (cli-behaviour.md §4.2). */
const COLUMNS: readonly Column[] = [
  { header: 'Instance', rightAligned: false },
  { header: 'Version', rightAligned: false },
  { header: 'ID', rightAligned: false },
  { header: 'Recovery Time', rightAligned: false },
  { header: 'Mode', rightAligned: false },
  { header: 'WAL Mode', rightAligned: false },
  { header: 'TLI', rightAligned: false },
  { header: 'Time', rightAligned: true },
  { header: 'Data', rightAligned: true },
  { header: 'WAL', rightAligned: true },
  { header: 'Zratio', rightAligned: true },
  { header: 'Start LSN', rightAligned: false },
  { header: 'Stop LSN', rightAligned: false },
  { header: 'Status', rightAligned: false },
];

/** Newest first by start time, the order pg_probackup lists a catalog in. */
export function sortNewestFirst(backups: readonly CatalogBackup[]): CatalogBackup[] {
  return [...backups].sort((a, b) => b.startTime - a.startTime);
}

function durationCell(backup: CatalogBackup, nowSec: number): string {
  if (backup.status === 'RUNNING') return prettyTimeInterval(nowSec - backup.startTime);
  if (backup.mergeTime !== 0) return prettyTimeInterval(backup.endTime - backup.mergeTime);
  if (backup.endTime !== 0) return prettyTimeInterval(backup.endTime - backup.startTime);
  return '----';
}

function rowCells(
  instance: string,
  backup: CatalogBackup,
  parentTli: number,
  nowSec: number,
): string[] {
  return [
    instance,
    backup.serverVersion || '----',
    backup.id,
    backup.recoveryTime !== 0 ? formatLocalTime(backup.recoveryTime) : '----',
    backup.backupMode ?? '',
    backup.stream ? 'STREAM' : 'ARCHIVE',
    `${backup.timelineId}/${backup.backupMode === 'FULL' ? 0 : parentTli}`,
    durationCell(backup, nowSec),
    prettySize(backup.dataBytes),
    prettySize(backup.walBytes),
    formatZratio(backup.uncompressedBytes, backup.dataBytes),
    formatLsn(backup.startLsn),
    formatLsn(backup.stopLsn),
    backup.status,
  ];
}

function formatLine(cells: readonly string[], widths: readonly number[]): string {
  return (
    cells
      .map((cell, i) => {
        const width = widths[i] ?? 0;
        const padded = COLUMNS[i]?.rightAligned ? cell.padStart(width) : cell.padEnd(width);
        return ` ${padded} `;
      })
      .join('') + '\n'
  );
}

/**
 * The plain `show` table of one instance: a `=` line, the header, a `=` line, then one row per
 * backup, newest first. Every cell is `' ' + value padded to the column width + ' '`.
 *
 * The parent timeline of an incremental is that of its parent among `backups`; like pg_probackup
 * (show.c keeps `parent_tli` across rows) an incremental whose parent is not listed shows the
 * value of the previous row.
 */
export function renderBackupTable(
  rows: { instance: string; backups: readonly CatalogBackup[] },
  options: { nowMs: number },
): string {
  const nowSec = Math.floor(options.nowMs / 1000);
  const backups = sortNewestFirst(rows.backups);
  const byId = new Map(backups.map((backup) => [backup.id, backup]));
  let parentTli = 0;
  const cellRows = backups.map((backup) => {
    const parent =
      backup.parentBackupId === undefined ? undefined : byId.get(backup.parentBackupId);
    if (parent) parentTli = parent.timelineId;
    return rowCells(rows.instance, backup, parentTli, nowSec);
  });

  const widths = COLUMNS.map((column, i) =>
    Math.max(column.header.length, ...cellRows.map((cells) => (cells[i] ?? '').length)),
  );
  const rule = '='.repeat(widths.reduce((sum, width) => sum + width + 2, 0)) + '\n';
  return (
    rule +
    formatLine(
      COLUMNS.map((column) => column.header),
      widths,
    ) +
    rule +
    cellRows.map((cells) => formatLine(cells, widths)).join('')
  );
}
