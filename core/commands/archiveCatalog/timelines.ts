import { posix } from 'node:path';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { StrataError, isStrataError } from '../../errors.js';
import { formatLsn } from '../../format/lsn.js';
import type { Lsn } from '../../format/lsn.js';
import { parseTimelineHistory } from '../../format/timelineHistory.js';
import {
  XLOG_BLCKSZ,
  isBackupHistoryFileName,
  isHistoryFileName,
  lsnToSegno,
  walSegmentName,
} from '../../format/walNames.js';
import type { Logger } from '../../log.js';

/**
 * The WAL archive of an instance as timelines (pg_probackup's `catalog_get_timelines`,
 * cli-behaviour.md §4.5–4.6 and §9.4): which segments each timeline has, where it branched off
 * its parent, the gaps between its first and last segment, the backups taken on it, the backup
 * from which it can be reached by point-in-time recovery, and — with `wal-depth` — which files
 * WAL retention protects. Pure: the caller lists the archive and reads the history files.
 */

export type ArchivedWalKind = 'segment' | 'partial' | 'temp' | 'backup-history';

export interface ArchivedWalFile {
  name: string;
  sizeBytes: number;
  /** Segment number the name encodes (for a backup history file: its start segment). */
  segno: bigint;
  kind: ArchivedWalKind;
  /** Protected from purge by WAL retention (§9.4). */
  keep: boolean;
}

/** Segments `beginSegno` to `endSegno`, both included. */
export interface SegmentInterval {
  beginSegno: bigint;
  endSegno: bigint;
}

export interface ArchiveTimeline {
  timelineId: number;
  /** From `<tli>.history`: the timeline this one branched off (0 when unknown). */
  parentTimelineId: number;
  /** LSN at which this timeline left its parent (0 when unknown). */
  switchpoint: Lsn;
  parent: ArchiveTimeline | undefined;
  /** First and last regular segment (0 when the timeline has none). */
  beginSegno: bigint;
  endSegno: bigint;
  /** Regular segments (`.gz` included) and their bytes on disk. */
  segmentCount: number;
  sizeBytes: number;
  /** Every segment-like file of the timeline (regular, partial, temporary, backup history), by name. */
  files: ArchivedWalFile[];
  /** Gaps between the first and the last regular segment. */
  lostSegments: SegmentInterval[];
  /** Backups whose `timelineid` is this timeline, newest first. */
  backups: CatalogBackup[];
  /** The backup with the lowest valid start LSN: the WAL it needs is the oldest any backup needs. */
  oldestBackup: CatalogBackup | undefined;
  /** The OK/DONE backup on the nearest ancestor timeline from which recovery reaches this timeline. */
  closestBackup: CatalogBackup | undefined;
  /** WAL from this LSN on is kept by wal-depth (0 = no anchor). */
  anchorLsn: Lsn;
  anchorTimelineId: number;
  keepSegments: SegmentInterval[];
}

export interface ArchiveFileInfo {
  name: string;
  sizeBytes: number;
  type: 'file' | 'directory' | 'symlink' | 'other';
}

export interface BuildTimelinesInput {
  /** The archive directory (for messages). */
  walDir: string;
  /** Its entries, sorted by name bytewise, hidden ones excluded. */
  files: readonly ArchiveFileInfo[];
  /** Text of each `<tli>.history` file, by file name. */
  histories: ReadonlyMap<string, string>;
  /** Backups of the instance, newest first. */
  backups: readonly CatalogBackup[];
  walSegmentSizeBytes: number;
  /** `wal-depth`; 0 computes no retention anchors. */
  walDepth: number;
  nowSec: number;
  logger: Logger;
  /**
   * A damaged history file: `warn` disregards it (show), `fail` stops with its error — WAL purge
   * must not decide what to delete without knowing which timelines descend from which.
   */
  onBadHistory: 'warn' | 'fail';
}

const HEX_UPPER = /^[0-9A-F]*/;
const SEGMENT_NAME_LENGTH = 24;
/** SizeOfXLogShortPHD: a record position inside a WAL page is at least past the short page header. */
const XLOG_SHORT_PAGE_HEADER_BYTES = 24n;

/** XRecOffIsValid: the LSN can be the position of a WAL record. */
export function isValidRecordPosition(lsn: Lsn): boolean {
  return lsn % BigInt(XLOG_BLCKSZ) >= XLOG_SHORT_PAGE_HEADER_BYTES;
}

function newTimeline(timelineId: number): ArchiveTimeline {
  return {
    timelineId,
    parentTimelineId: 0,
    switchpoint: 0n,
    parent: undefined,
    beginSegno: 0n,
    endSegno: 0n,
    segmentCount: 0,
    sizeBytes: 0,
    files: [],
    lostSegments: [],
    backups: [],
    oldestBackup: undefined,
    closestBackup: undefined,
    anchorLsn: 0n,
    anchorTimelineId: 0,
    keepSegments: [],
  };
}

const kindLabels: Record<Exclude<ArchivedWalKind, 'segment'>, string> = {
  'backup-history': 'backup history file',
  partial: 'partial WAL file',
  temp: 'temp WAL file',
};

/** The kind of a name that starts with a segment name and goes on after a dot, if it is one. */
function suffixedKind(name: string): ArchivedWalKind | 'gz' | undefined {
  const suffix = name.slice(SEGMENT_NAME_LENGTH);
  if (isBackupHistoryFileName(name)) return 'backup-history';
  if (suffix === '.partial' || suffix === '.gz.partial') return 'partial';
  if (suffix === '.part' || suffix === '.gz.part' || suffix === '.partial.part') return 'temp';
  if (suffix === '.gz') return 'gz';
  return undefined;
}

/** Parent timeline and switch point from a history file; undefined when it must be disregarded. */
function historyParent(
  input: BuildTimelinesInput,
  name: string,
  timelineId: number,
): { parentTimelineId: number; switchpoint: Lsn } | undefined {
  const path = posix.join(input.walDir, name);
  let entries;
  try {
    entries = parseTimelineHistory(input.histories.get(name) ?? '', timelineId);
  } catch (error) {
    if (!isStrataError(error)) throw error;
    if (input.onBadHistory === 'fail') {
      throw new StrataError('format', `${error.message} ("${path}")`, { cause: error });
    }
    input.logger.warning(`${error.message} ("${path}"); the file is disregarded`);
    return undefined;
  }
  const parent = entries[entries.length - 1];
  if (parent === undefined) {
    const problem = `History file is corrupted or missing: "${path}"`;
    if (input.onBadHistory === 'fail') {
      throw new StrataError(
        'format',
        `${problem}; WAL cannot be purged without knowing where timeline ${timelineId} branched off`,
      );
    }
    input.logger.warning(problem);
    return undefined;
  }
  return { parentTimelineId: parent.timelineId, switchpoint: parent.switchLsn };
}

/** get_closest_backup: up the parent chain, the OK/DONE backup with the highest stop LSN before the switch. */
function closestBackupOf(timeline: ArchiveTimeline): CatalogBackup | undefined {
  let closest: CatalogBackup | undefined;
  let current = timeline;
  while (current.parent && !closest) {
    for (const backup of current.parent.backups) {
      if (
        backup.stopLsn !== 0n &&
        isValidRecordPosition(backup.stopLsn) &&
        backup.stopLsn <= current.switchpoint &&
        (backup.status === 'OK' || backup.status === 'DONE') &&
        (!closest || backup.stopLsn > closest.stopLsn)
      ) {
        closest = backup;
      }
    }
    current = current.parent;
  }
  return closest;
}

/** get_oldest_backup: the backup with the lowest valid start LSN, whatever its status. */
function oldestBackupOf(timeline: ArchiveTimeline): CatalogBackup | undefined {
  let oldest: CatalogBackup | undefined;
  for (const backup of timeline.backups) {
    if (backup.startLsn === 0n || !isValidRecordPosition(backup.startLsn)) continue;
    if (!oldest || backup.startLsn < oldest.startLsn) oldest = backup;
  }
  return oldest;
}

function isPinned(backup: CatalogBackup, nowSec: number): boolean {
  return backup.expireTime > 0 && backup.expireTime > nowSec;
}

/**
 * §9.4: on each timeline, the wal-depth-th newest valid unpinned backup anchors the WAL kept from
 * its start LSN on; older ARCHIVE backups keep their own start..stop segments. A timeline with too
 * few backups stays reachable from its closest backup: it is kept whole, and on each ancestor the
 * segments from the closest backup (or the intermediate timeline's first segment) to the switch
 * point are kept.
 */
function applyWalDepth(timelines: ArchiveTimeline[], input: BuildTimelinesInput): void {
  const { walDepth, walSegmentSizeBytes: segSize, logger, nowSec } = input;
  const segmentName = (tli: number, segno: bigint) => walSegmentName(tli, segno, segSize);
  for (const start of timelines) {
    let count = 0;
    for (const backup of start.backups) {
      if (backup.startLsn === 0n || backup.timelineId <= 0) continue;
      if (backup.status !== 'OK' && backup.status !== 'DONE') continue;
      if (isPinned(backup, nowSec)) {
        logger.log('LOG', `Pinned backup ${backup.id} is ignored for the purpose of WAL retention`);
        continue;
      }
      count++;
      if (count === walDepth) {
        logger.log(
          'LOG',
          `On timeline ${start.timelineId} WAL is protected from purge at ${formatLsn(backup.startLsn)}`,
        );
        start.anchorLsn = backup.startLsn;
        start.anchorTimelineId = backup.timelineId;
        break;
      }
    }

    if (start.anchorLsn === 0n) {
      const closest = start.closestBackup;
      if (!closest || closest.startLsn === 0n || closest.timelineId <= 0) continue;
      start.anchorLsn = closest.startLsn;
      start.anchorTimelineId = closest.timelineId;
      let timeline = start;
      while (timeline.parent) {
        const switchpoint = timeline.switchpoint;
        timeline = timeline.parent;
        const interval: SegmentInterval = {
          beginSegno:
            timeline.timelineId !== closest.timelineId
              ? timeline.beginSegno
              : lsnToSegno(closest.startLsn, segSize),
          endSegno: lsnToSegno(switchpoint, segSize),
        };
        logger.log(
          'LOG',
          `Timeline ${start.timelineId} to stay reachable from timeline ${closest.timelineId} protect from purge ` +
            `WAL interval between ${segmentName(timeline.timelineId, interval.beginSegno)} and ` +
            `${segmentName(timeline.timelineId, interval.endSegno)} on timeline ${timeline.timelineId}`,
        );
        timeline.keepSegments.push(interval);
      }
      continue;
    }

    // pg_probackup resumes at index `count` of the list; the backups it revisits are newer than
    // the anchor and skipped by the start-LSN test, so every older one is still considered.
    for (const backup of start.backups.slice(count)) {
      if (backup.stream) continue;
      if (backup.startLsn === 0n || backup.timelineId <= 0) continue;
      if (backup.startLsn >= start.anchorLsn) continue;
      const stopSegno = lsnToSegno(backup.stopLsn, segSize);
      // A stop LSN taken on a standby may point into a continuation record: keep one more segment.
      const interval: SegmentInterval = {
        beginSegno: lsnToSegno(backup.startLsn, segSize),
        endSegno: backup.fromReplica ? stopSegno + 1n : stopSegno,
      };
      logger.log(
        'LOG',
        `Archive backup ${backup.id} to stay consistent protect from purge WAL interval between ` +
          `${segmentName(start.timelineId, interval.beginSegno)} and ${segmentName(start.timelineId, interval.endSegno)} ` +
          `on timeline ${backup.timelineId}`,
      );
      start.keepSegments.push(interval);
    }
  }

  for (const timeline of timelines) {
    if (timeline.anchorLsn === 0n) continue;
    if (timeline.anchorTimelineId > 0 && timeline.anchorTimelineId !== timeline.timelineId)
      continue;
    const anchorSegno = lsnToSegno(timeline.anchorLsn, segSize);
    for (const file of timeline.files) {
      file.keep =
        file.segno >= anchorSegno ||
        timeline.keepSegments.some(
          (interval) => file.segno >= interval.beginSegno && file.segno <= interval.endSegno,
        );
    }
  }
}

/**
 * The archive's timelines in ascending TLI order, including timelines that only have a history
 * file (they link their children to their parents but have no segments to show). Unexpected names
 * are warned about and ignored.
 */
export function buildArchiveTimelines(input: BuildTimelinesInput): ArchiveTimeline[] {
  const { logger, walSegmentSizeBytes: segSize } = input;
  const segmentsPerXLogId = 0x100000000n / BigInt(segSize);
  const timelines: ArchiveTimeline[] = [];
  let current: ArchiveTimeline | undefined;
  const timelineFor = (timelineId: number): ArchiveTimeline => {
    if (!current || current.timelineId !== timelineId) {
      current = newTimeline(timelineId);
      timelines.push(current);
    }
    return current;
  };
  const unexpected = (name: string) => logger.warning(`unexpected WAL file name "${name}"`);

  for (const file of input.files) {
    const { name } = file;
    if (file.type === 'directory') {
      unexpected(name);
      continue;
    }
    if (HEX_UPPER.exec(name)![0].length === SEGMENT_NAME_LENGTH) {
      let kind: ArchivedWalKind | 'gz' | undefined = 'segment';
      if (name.length > SEGMENT_NAME_LENGTH) {
        kind = name[SEGMENT_NAME_LENGTH] === '.' ? suffixedKind(name) : undefined;
        if (kind === undefined) {
          unexpected(name);
          continue;
        }
      }
      const timelineId = Number.parseInt(name.slice(0, 8), 16);
      const segno =
        BigInt(`0x${name.slice(8, 16)}`) * segmentsPerXLogId + BigInt(`0x${name.slice(16, 24)}`);
      if (kind !== 'segment' && kind !== 'gz') {
        logger.log('VERBOSE', `${kindLabels[kind]} "${name}"`);
        timelineFor(timelineId).files.push({
          name,
          sizeBytes: file.sizeBytes,
          segno,
          kind,
          keep: false,
        });
        continue;
      }
      const isNewTimeline = !current || current.timelineId !== timelineId;
      const timeline = timelineFor(timelineId);
      // Segments before the first one present may never have existed: only gaps count as lost.
      // A segment may be there both plain and as .gz; the same number twice is no gap.
      if (!isNewTimeline && timeline.segmentCount !== 0) {
        const expected = timeline.endSegno + 1n;
        if (segno !== expected && segno !== timeline.endSegno) {
          timeline.lostSegments.push({ beginSegno: expected, endSegno: segno - 1n });
        }
      }
      if (timeline.beginSegno === 0n) timeline.beginSegno = segno;
      timeline.endSegno = segno;
      timeline.segmentCount++;
      timeline.sizeBytes += file.sizeBytes;
      timeline.files.push({ name, sizeBytes: file.sizeBytes, segno, kind: 'segment', keep: false });
      continue;
    }
    if (isHistoryFileName(name)) {
      const timelineId = Number.parseInt(name.slice(0, 8), 16);
      const parent = historyParent(input, name, timelineId);
      if (!parent) continue;
      if (!current || current.timelineId !== timelineId) {
        const timeline = timelineFor(timelineId);
        timeline.parentTimelineId = parent.parentTimelineId;
        timeline.switchpoint = parent.switchpoint;
        timeline.parent = timelines.find(
          (candidate) => candidate.timelineId === parent.parentTimelineId,
        );
      }
      continue;
    }
    unexpected(name);
  }

  for (const timeline of timelines) {
    timeline.backups = input.backups.filter((backup) => backup.timelineId === timeline.timelineId);
  }
  for (const timeline of timelines) {
    timeline.oldestBackup = oldestBackupOf(timeline);
    timeline.closestBackup = closestBackupOf(timeline);
  }
  if (input.walDepth > 0) applyWalDepth(timelines, input);
  return timelines;
}
