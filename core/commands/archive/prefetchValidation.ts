import { errorText } from '../../errors.js';
import { formatLsn } from '../../format/lsn.js';
import { findRecordAtOrAfter, readWalRange } from '../../format/wal/walScan.js';
import { segnoToLsn } from '../../format/walNames.js';
import type { Storage } from '../../storage/storage.js';
import { DirectoryWalSource } from './walSources.js';

/**
 * Why the records of a prefetched segment do not parse from its first record up to the start of
 * the next segment, or null when they do (pg_probackup's `validate_wal_segment`). The next segment
 * must be prefetched as well: the last record of a segment usually continues into it. A segment
 * that cannot be read at all counts as invalid: archive-get then copies it from the archive.
 */
export async function prefetchedSegmentProblem(
  storage: Storage,
  prefetchDir: string,
  timelineId: number,
  segno: bigint,
  walSegmentSizeBytes: number,
): Promise<string | null> {
  const source = new DirectoryWalSource(storage, prefetchDir, walSegmentSizeBytes);
  const segmentStartLsn = segnoToLsn(segno, walSegmentSizeBytes);
  const nextSegmentStartLsn = segnoToLsn(segno + 1n, walSegmentSizeBytes);
  try {
    const firstRecordLsn = await findRecordAtOrAfter(
      source,
      timelineId,
      walSegmentSizeBytes,
      segmentStartLsn,
    );
    if (firstRecordLsn === null) {
      return `no valid record found after ${formatLsn(segmentStartLsn)}`;
    }
    const result = await readWalRange(
      source,
      timelineId,
      walSegmentSizeBytes,
      firstRecordLsn,
      nextSegmentStartLsn,
    );
    return result.ok ? null : result.reason;
  } catch (error) {
    return errorText(error);
  }
}
