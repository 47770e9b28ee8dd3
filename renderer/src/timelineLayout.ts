import type { ArchiveTimeline, BackupStatus, BackupSummary } from '../../core/api/contract.js';
import { parseLsnText, segmentNameToLsn } from './format.js';

/**
 * The WAL timeline picture as numbers: one lane per timeline on a shared LSN axis, archived WAL
 * as a bar, lost segments as gaps, backups at their start..stop LSNs, forks at the switchpoint of
 * a child timeline, and the spans a point-in-time restore can reach. Positions are fractions of
 * the axis (0..1); the component scales them to pixels.
 */

export interface LsnRange {
  begin: bigint;
  end: bigint;
}

export interface TimelineLane {
  tli: number;
  parentTli: number;
  lane: number;
  switchpoint: bigint;
  /** Archived WAL, first byte of the first segment to the end of the last one. */
  archived: LsnRange | null;
  gaps: LsnRange[];
  /** Where a restore from a valid backup can stop on this timeline. */
  reachable: LsnRange[];
  status: ArchiveTimeline['status'];
}

export interface BackupMark {
  backup: BackupSummary;
  lane: number;
  startLsn: bigint;
  stopLsn: bigint;
}

export interface TimelinePicture {
  axis: LsnRange;
  lanes: TimelineLane[];
  backups: BackupMark[];
  /** Known (LSN, time) pairs from backups, for reading an approximate time off the axis. */
  timePoints: Array<{ tli: number; lsn: bigint; time: number }>;
}

/** Statuses whose backups can be restored (pg_probackup restores OK and DONE backups). */
const RESTORABLE: ReadonlySet<BackupStatus> = new Set(['OK', 'DONE']);

function lsnOf(text: string): bigint {
  return parseLsnText(text) ?? 0n;
}

function mergeRanges(ranges: LsnRange[]): LsnRange[] {
  const sorted = [...ranges].sort((a, b) => (a.begin < b.begin ? -1 : a.begin > b.begin ? 1 : 0));
  const merged: LsnRange[] = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last && range.begin <= last.end) {
      if (range.end > last.end) last.end = range.end;
    } else {
      merged.push({ ...range });
    }
  }
  return merged;
}

/**
 * How far WAL replay can go from `from` on a timeline: to the first lost segment after it, or the
 * end of the archive. Null when `from` is not in the archive at all.
 */
function replayEnd(from: bigint, archived: LsnRange | null, gaps: LsnRange[]): bigint | null {
  if (!archived || from < archived.begin || from > archived.end) return null;
  let end = archived.end;
  for (const gap of gaps) {
    if (gap.end <= from) continue;
    if (gap.begin <= from) return null;
    if (gap.begin < end) end = gap.begin;
  }
  return end;
}

export function layoutTimelines(
  timelines: readonly ArchiveTimeline[],
  backups: readonly BackupSummary[],
  walSegmentSizeBytes: number,
): TimelinePicture {
  const segSize = BigInt(walSegmentSizeBytes);
  const tlis = new Set<number>(timelines.map((timeline) => timeline.tli));
  for (const backup of backups) tlis.add(backup.timelineId);
  const order = [...tlis].sort((a, b) => a - b);
  const laneOf = new Map(order.map((tli, lane) => [tli, lane]));

  const lanes: TimelineLane[] = order.map((tli) => {
    const timeline = timelines.find((candidate) => candidate.tli === tli);
    if (!timeline) {
      return {
        tli,
        parentTli: 0,
        lane: laneOf.get(tli)!,
        switchpoint: 0n,
        archived: null,
        gaps: [],
        reachable: [],
        status: 'OK',
      };
    }
    const archived =
      timeline.segmentCount > 0
        ? { begin: lsnOf(timeline.beginLsn), end: lsnOf(timeline.endLsn) }
        : null;
    const gaps = timeline.lostSegments.flatMap((lost) => {
      const begin = segmentNameToLsn(lost.begin, walSegmentSizeBytes);
      const last = segmentNameToLsn(lost.end, walSegmentSizeBytes);
      return begin === null || last === null ? [] : [{ begin, end: last + segSize }];
    });
    return {
      tli,
      parentTli: timeline.parentTli,
      lane: laneOf.get(tli)!,
      switchpoint: lsnOf(timeline.switchpoint),
      archived,
      gaps,
      reachable: [],
      status: timeline.status,
    };
  });

  const marks: BackupMark[] = backups.map((backup) => ({
    backup,
    lane: laneOf.get(backup.timelineId)!,
    startLsn: lsnOf(backup.startLsn),
    stopLsn: lsnOf(backup.stopLsn),
  }));

  // A restore reaches from a valid backup's stop LSN as far as WAL replays without a gap. A STREAM
  // backup carries the WAL up to its own stop LSN; an ARCHIVE backup needs the archive from its
  // start LSN. A child timeline is reachable from its switchpoint when its parent reaches it.
  for (const lane of lanes) {
    const ranges: LsnRange[] = [];
    for (const mark of marks) {
      if (mark.backup.timelineId !== lane.tli || !RESTORABLE.has(mark.backup.status)) continue;
      const from = mark.backup.walMode === 'STREAM' ? mark.stopLsn : mark.startLsn;
      const end = replayEnd(from, lane.archived, lane.gaps);
      ranges.push({
        begin: mark.stopLsn,
        end: end !== null && end > mark.stopLsn ? end : mark.stopLsn,
      });
    }
    const parent = lanes.find((candidate) => candidate.tli === lane.parentTli);
    if (
      parent &&
      parent.reachable.some(
        (range) => range.begin <= lane.switchpoint && lane.switchpoint <= range.end,
      )
    ) {
      const end = replayEnd(lane.switchpoint, lane.archived, lane.gaps);
      if (end !== null) ranges.push({ begin: lane.switchpoint, end });
    }
    lane.reachable = mergeRanges(ranges);
  }

  let axisBegin: bigint | null = null;
  let axisEnd: bigint | null = null;
  const extend = (lsn: bigint) => {
    if (axisBegin === null || lsn < axisBegin) axisBegin = lsn;
    if (axisEnd === null || lsn > axisEnd) axisEnd = lsn;
  };
  for (const lane of lanes) {
    if (lane.archived) {
      extend(lane.archived.begin);
      extend(lane.archived.end);
    }
  }
  for (const mark of marks) {
    extend(mark.startLsn);
    extend(mark.stopLsn);
  }
  const begin: bigint = axisBegin ?? 0n;
  const end: bigint = axisEnd !== null && axisEnd > begin ? axisEnd : begin + segSize;

  const timePoints: TimelinePicture['timePoints'] = [];
  for (const mark of marks) {
    timePoints.push({
      tli: mark.backup.timelineId,
      lsn: mark.startLsn,
      time: mark.backup.startTime,
    });
    if (mark.backup.recoveryTime !== null) {
      timePoints.push({
        tli: mark.backup.timelineId,
        lsn: mark.stopLsn,
        time: mark.backup.recoveryTime,
      });
    }
  }
  timePoints.sort((a, b) => (a.lsn < b.lsn ? -1 : a.lsn > b.lsn ? 1 : 0));

  return { axis: { begin, end }, lanes, backups: marks, timePoints };
}

/**
 * Axis ticks at round LSNs: multiples of the smallest power of two that gives at most `maxTicks`
 * intervals, so labels read like 0/1000000, 0/1200000 rather than arbitrary fractions.
 */
export function lsnTicks(axis: LsnRange, maxTicks: number): bigint[] {
  const span = axis.end - axis.begin;
  if (span <= 0n) return [axis.begin];
  let step = 1n;
  while (step * BigInt(maxTicks) < span) step <<= 1n;
  const ticks: bigint[] = [];
  for (let tick = ((axis.begin + step - 1n) / step) * step; tick <= axis.end; tick += step)
    ticks.push(tick);
  return ticks;
}

/** The position of an LSN on the axis, 0 at its beginning and 1 at its end. */
export function axisFraction(axis: LsnRange, lsn: bigint): number {
  const span = axis.end - axis.begin;
  if (span <= 0n) return 0;
  // Scaled in integers first: LSNs exceed 2^53, their differences inside one picture do not
  // need to, but the scaling keeps 1e-6 of precision either way.
  return Number(((lsn - axis.begin) * 1_000_000n) / span) / 1_000_000;
}

/** The LSN at a position of the axis (the inverse of axisFraction). */
export function lsnAtFraction(axis: LsnRange, fraction: number): bigint {
  const clamped = Math.min(1, Math.max(0, fraction));
  return (
    axis.begin + ((axis.end - axis.begin) * BigInt(Math.round(clamped * 1_000_000))) / 1_000_000n
  );
}

/**
 * A time for an LSN on a timeline, interpolated between the nearest backups' known (LSN, time)
 * pairs. Approximate by nature (WAL is not written at a steady rate), so the UI labels it "≈";
 * null outside the known points, where nothing bounds it.
 */
export function estimateTime(picture: TimelinePicture, tli: number, lsn: bigint): number | null {
  const points = picture.timePoints.filter((point) => point.tli === tli);
  let before: (typeof points)[number] | undefined;
  let after: (typeof points)[number] | undefined;
  for (const point of points) {
    if (point.lsn <= lsn) before = point;
    else if (!after) after = point;
  }
  if (before && after && after.lsn > before.lsn) {
    const fraction =
      Number(((lsn - before.lsn) * 1_000_000n) / (after.lsn - before.lsn)) / 1_000_000;
    return Math.round(before.time + fraction * (after.time - before.time));
  }
  return before && before.lsn === lsn ? before.time : null;
}

/** Whether a restore can stop at this LSN on this timeline. */
export function isReachable(picture: TimelinePicture, tli: number, lsn: bigint): boolean {
  const lane = picture.lanes.find((candidate) => candidate.tli === tli);
  return lane?.reachable.some((range) => range.begin <= lsn && lsn <= range.end) ?? false;
}
