/**
 * Timeline history files (`%08X.history`, src/backend/access/transam/timeline.c): one line per
 * ancestor timeline, `<tli>\t<switch LSN>\t<reason>`, oldest first. Timeline N's file lists every
 * timeline N descends from and the LSN at which each one was left; N itself is not listed.
 */
import { StrataError } from '../errors.js';
import { formatLsn } from './lsn.js';
import type { Lsn } from './lsn.js';
import { historyFileName } from './walNames.js';

export interface TimelineHistoryEntry {
  timelineId: number;
  /** First LSN that is no longer on `timelineId` (the first LSN of the next timeline). */
  switchLsn: Lsn;
  reason: string;
}

/** What sscanf("%u\t%X/%X") of readTimeLineHistory() accepts, plus the free-text reason. */
const linePattern = /^(\d+)(?:\s+([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})(?:\s+(.*))?)?/;

/**
 * Parses the history file of timeline `fileTimelineId`. Blank lines and `#` comments are skipped;
 * timeline IDs must strictly increase and stay below the file's own timeline, as PostgreSQL and
 * pg_probackup require.
 */
export function parseTimelineHistory(text: string, fileTimelineId: number): TimelineHistoryEntry[] {
  const fileName = historyFileName(fileTimelineId);
  const entries: TimelineHistoryEntry[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.replace(/\r$/, '');
    const content = line.trimStart();
    if (content === '' || content.startsWith('#')) continue;
    const where = `timeline history file ${fileName}, line ${index + 1}: "${line}"`;
    const match = linePattern.exec(content);
    if (!match)
      throw new StrataError('format', `Syntax error in ${where}. Expected a numeric timeline ID.`);
    if (match[2] === undefined || match[3] === undefined) {
      throw new StrataError(
        'format',
        `Syntax error in ${where}. Expected a write-ahead log switchpoint location.`,
      );
    }
    const timelineId = Number(match[1]);
    if (!Number.isSafeInteger(timelineId) || timelineId > 0xffffffff) {
      throw new StrataError('format', `Invalid data in ${where}. Timeline ID is out of range.`);
    }
    const previous = entries[entries.length - 1];
    if (previous !== undefined && timelineId <= previous.timelineId) {
      throw new StrataError(
        'format',
        `Invalid data in ${where}. Timeline IDs must be in increasing sequence.`,
      );
    }
    entries.push({
      timelineId,
      switchLsn: (BigInt(`0x${match[2]}`) << 32n) | BigInt(`0x${match[3]}`),
      reason: (match[4] ?? '').trimEnd(),
    });
  }
  const last = entries[entries.length - 1];
  if (last !== undefined && last.timelineId >= fileTimelineId) {
    throw new StrataError(
      'format',
      `Invalid data in timeline history file ${fileName}: timeline IDs must be less than the file's own timeline ${fileTimelineId}, found ${last.timelineId}.`,
    );
  }
  return entries;
}

/** The file text PostgreSQL's writeTimeLineHistory() produces for these entries. */
export function formatTimelineHistory(entries: readonly TimelineHistoryEntry[]): string {
  return entries
    .map((entry) => `${entry.timelineId}\t${formatLsn(entry.switchLsn)}\t${entry.reason}\n`)
    .join('');
}

/**
 * tliOfPointInHistory(): the timeline that `lsn` belongs to in the history of `currentTli`. A
 * switch LSN already belongs to the next timeline.
 */
export function timelineOfLsn(
  history: readonly TimelineHistoryEntry[],
  currentTli: number,
  lsn: Lsn,
): number {
  for (const entry of history) {
    if (lsn < entry.switchLsn) return entry.timelineId;
  }
  return currentTli;
}

/**
 * pg_probackup's satisfy_timeline(): whether a position (`tli`, `lsn`), typically a backup's
 * timeline and stop LSN, lies on the history of `currentTli`: `tli` is `currentTli`, or it is an
 * ancestor and `lsn` is at or before the point where the history left it (catalog-format §12.5,
 * cli-behaviour §6.2).
 */
export function isLsnOnTimelineHistory(
  history: readonly TimelineHistoryEntry[],
  currentTli: number,
  tli: number,
  lsn: Lsn,
): boolean {
  if (tli === currentTli) return true;
  return history.some((entry) => entry.timelineId === tli && lsn <= entry.switchLsn);
}
