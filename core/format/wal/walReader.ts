import { StrataError } from '../../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import {
  checkWalPageHeader,
  maxAlign,
  parseWalPageHeader,
  walPageMagicMajor,
  XLOG_BLCKSZ,
  XLP_FIRST_IS_CONTRECORD,
  XLP_FIRST_IS_OVERWRITE_CONTRECORD,
  type WalPageHeader,
  type WalPageProblemReason,
} from './walPage.js';
import {
  isValidRmid,
  parseWalRecordHeader,
  SIZE_OF_XLOG_RECORD,
  tryDecodeWalRecord,
  type DecodedWalRecord,
  type WalRecordProblemReason,
} from './walRecord.js';
import { isXlogSwitch } from './walXact.js';

/**
 * Where WAL segments come from (a pg_wal directory, the archive, a backup); bytes are uncompressed.
 */
export interface WalSegmentSource {
  /** The whole segment file of this timeline, or null when there is none. */
  readSegment(timelineId: number, segno: bigint): Promise<Uint8Array | null>;
}

export type WalEndReason =
  | WalPageProblemReason
  | WalRecordProblemReason
  | 'missing-segment'
  | 'invalid-segment-size'
  | 'invalid-record-offset'
  | 'contrecord-requested'
  | 'invalid-prev-link'
  | 'missing-contrecord'
  | 'invalid-contrecord-length';

/** Why reading stopped: the end of valid WAL, as a value (it is the normal way a WAL scan ends). */
export interface WalEnd {
  kind: 'end';
  reason: WalEndReason;
  /**
   * The position reading was asked to continue from: the record (or page) that could not be read.
   */
  lsn: Lsn;
  /** PostgreSQL's wording where it has one, naming the LSN and segment. */
  message: string;
}

export type WalReadResult = { kind: 'record'; record: DecodedWalRecord } | WalEnd;
export type WalFindResult = { kind: 'found'; lsn: Lsn } | WalEnd;

export interface WalReaderOptions {
  source: WalSegmentSource;
  timelineId: number;
  walSegmentSizeBytes: number;
  /** pg_control's system identifier; when given, segments of another cluster are refused. */
  systemIdentifier?: bigint;
}

interface Problem {
  reason: WalEndReason;
  message: string;
}

interface LoadedPage {
  header: WalPageHeader;
  page: Uint8Array;
}

/**
 * Segments kept in memory: the current one and the previous, for records that cross between them.
 */
const CACHED_SEGMENTS = 2;

function segmentFileName(timelineId: number, segno: bigint, walSegmentSizeBytes: number): string {
  const segmentsPerXLogId = 0x100000000n / BigInt(walSegmentSizeBytes);
  const hex = (value: bigint | number) => value.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timelineId)}${hex(segno / segmentsPerXLogId)}${hex(segno % segmentsPerXLogId)}`;
}

/**
 * Sequential WAL reader over whole segments, after xlogreader.c: reassembles records that continue
 * across pages and segments, checks every page header and every record's CRC, and reports where
 * valid WAL ends (missing segment, zeroed or recycled page, bad length or checksum) as a WalEnd
 * value. The WAL format version (major) is learnt from the first page it reads.
 */
export class WalReader {
  readonly timelineId: number;
  readonly walSegmentSizeBytes: number;
  private readonly source: WalSegmentSource;
  private readonly segments = new Map<bigint, Uint8Array>();
  private magic: number | undefined;
  private systemIdentifier: bigint | undefined;
  private latestPageLsn: Lsn = 0n;
  private latestPageTimelineId = 0;
  private nextRecordLsn: Lsn | undefined;
  /**
   * Start of the record read last; undefined after beginRead (the prev-link is then only checked to
   * point backwards).
   */
  private previousRecordLsn: Lsn | undefined;

  constructor(options: WalReaderOptions) {
    const size = options.walSegmentSizeBytes;
    if (
      !Number.isInteger(size) ||
      size < 1024 * 1024 ||
      size > 1024 * 1024 * 1024 ||
      (size & (size - 1)) !== 0
    ) {
      throw new StrataError(
        'usage',
        `Invalid WAL segment size ${size}: it must be a power of two from 1 MB to 1 GB`,
      );
    }
    if (
      !Number.isInteger(options.timelineId) ||
      options.timelineId < 1 ||
      options.timelineId > 0xffffffff
    ) {
      throw new StrataError('usage', `Invalid timeline ID ${options.timelineId}`);
    }
    this.source = options.source;
    this.timelineId = options.timelineId;
    this.walSegmentSizeBytes = size;
    this.systemIdentifier = options.systemIdentifier;
  }

  /** PostgreSQL major of the WAL read so far (from xlp_magic), undefined before the first page. */
  get major(): number | undefined {
    return this.magic === undefined ? undefined : walPageMagicMajor(this.magic);
  }

  /**
   * Positions the reader at a record start, or at the start of a page whose first record is not
   * a continuation (XLogBeginRead).
   */
  beginRead(lsn: Lsn): void {
    this.nextRecordLsn = lsn;
    this.previousRecordLsn = undefined;
  }

  /**
   * Reads the record at the current position (or at `lsn`, as beginRead(lsn) first) and moves
   * past it. At the end of valid WAL the position stays where it was, so a later call retries.
   */
  async readRecord(lsn?: Lsn): Promise<WalReadResult> {
    if (lsn !== undefined) this.beginRead(lsn);
    const startLsn = this.nextRecordLsn;
    if (startLsn === undefined) {
      throw new StrataError('internal', 'WalReader.readRecord called before beginRead');
    }
    const end = (problem: Problem): WalEnd => ({
      kind: 'end',
      reason: problem.reason,
      lsn: startLsn,
      message: problem.message,
    });

    let recordLsn = startLsn;
    for (;;) {
      const pageLsn = recordLsn - (recordLsn % BigInt(XLOG_BLCKSZ));
      let pageOffset = Number(recordLsn % BigInt(XLOG_BLCKSZ));
      const first = await this.loadPage(pageLsn);
      if ('reason' in first) return end(first);
      const headerSize = first.header.headerSizeBytes;
      if (pageOffset === 0) {
        recordLsn += BigInt(headerSize);
        pageOffset = headerSize;
      } else if (pageOffset < headerSize) {
        return end({
          reason: 'invalid-record-offset',
          message: `invalid record offset at ${formatLsn(recordLsn)}: expected at least ${headerSize}, got ${pageOffset}`,
        });
      }
      if (first.header.info & XLP_FIRST_IS_CONTRECORD && pageOffset === headerSize) {
        return end({
          reason: 'contrecord-requested',
          message: `contrecord is requested by ${formatLsn(recordLsn)}`,
        });
      }

      const at = formatLsn(recordLsn);
      const view = new DataView(first.page.buffer, first.page.byteOffset, first.page.byteLength);
      const totalLength = view.getUint32(pageOffset, true);
      const headerOnPage = pageOffset <= XLOG_BLCKSZ - SIZE_OF_XLOG_RECORD;
      if (headerOnPage) {
        const problem = this.checkRecordHeader(
          first.page.subarray(pageOffset, pageOffset + SIZE_OF_XLOG_RECORD),
          recordLsn,
        );
        if (problem) return end(problem);
      } else if (totalLength < SIZE_OF_XLOG_RECORD) {
        return end({
          reason: 'invalid-record-length',
          message: `invalid record length at ${at}: expected at least ${SIZE_OF_XLOG_RECORD}, got ${totalLength}`,
        });
      }

      const onFirstPage = XLOG_BLCKSZ - pageOffset;
      let recordBytes: Uint8Array;
      let nextLsn: Lsn;
      if (totalLength <= onFirstPage) {
        recordBytes = first.page.subarray(pageOffset, pageOffset + totalLength);
        nextLsn = recordLsn + BigInt(maxAlign(totalLength));
      } else {
        recordBytes = new Uint8Array(totalLength);
        recordBytes.set(first.page.subarray(pageOffset));
        let gotBytes = onFirstPage;
        let gotHeader = headerOnPage;
        let continuationPageLsn = pageLsn;
        let overwritten = false;
        let lastRemLen = 0;
        let lastHeaderSize = 0;
        while (gotBytes < totalLength) {
          continuationPageLsn += BigInt(XLOG_BLCKSZ);
          const next = await this.loadPage(continuationPageLsn);
          if ('reason' in next) return end(next);
          if (next.header.info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) {
            overwritten = true;
            break;
          }
          if ((next.header.info & XLP_FIRST_IS_CONTRECORD) === 0) {
            return end({
              reason: 'missing-contrecord',
              message: `there is no contrecord flag at ${formatLsn(continuationPageLsn)} (record at ${at})`,
            });
          }
          const remLen = next.header.remLen;
          if (remLen === 0 || totalLength !== remLen + gotBytes) {
            return end({
              reason: 'invalid-contrecord-length',
              message: `invalid contrecord length ${remLen} (expected ${totalLength - gotBytes}) at ${formatLsn(continuationPageLsn)} (record at ${at})`,
            });
          }
          const contHeaderSize = next.header.headerSizeBytes;
          const chunk = Math.min(remLen, XLOG_BLCKSZ - contHeaderSize);
          recordBytes.set(next.page.subarray(contHeaderSize, contHeaderSize + chunk), gotBytes);
          gotBytes += chunk;
          lastRemLen = remLen;
          lastHeaderSize = contHeaderSize;
          if (!gotHeader) {
            const problem = this.checkRecordHeader(
              recordBytes.subarray(0, SIZE_OF_XLOG_RECORD),
              recordLsn,
            );
            if (problem) return end(problem);
            gotHeader = true;
          }
        }
        if (overwritten) {
          // The continuation was lost at a crash and the server wrote a XLOG_OVERWRITE_CONTRECORD
          // record on this page instead: the broken record is skipped, reading goes on from there.
          recordLsn = continuationPageLsn;
          continue;
        }
        nextLsn = continuationPageLsn + BigInt(lastHeaderSize + maxAlign(lastRemLen));
      }

      const header = parseWalRecordHeader(recordBytes);
      if (isXlogSwitch(header)) {
        // XLOG_SWITCH: the rest of the segment is unused; the next record starts the next segment.
        const segmentSize = BigInt(this.walSegmentSizeBytes);
        nextLsn = ((nextLsn + segmentSize - 1n) / segmentSize) * segmentSize;
      }
      const decoded = tryDecodeWalRecord(recordBytes, recordLsn, this.requireMajor(), nextLsn);
      if (!decoded.ok) return end(decoded);
      this.previousRecordLsn = recordLsn;
      this.nextRecordLsn = nextLsn;
      return { kind: 'record', record: decoded.record };
    }
  }

  /**
   * Finds the first record that starts at or after `lsn`, which may point anywhere (a page or
   * segment boundary, the middle of a record), as XLogFindNextRecord does: skips the
   * continuation at the start of its page using xlp_rem_len, then reads forward. On success the
   * reader is positioned at that record.
   */
  async findRecordAtOrAfter(lsn: Lsn): Promise<WalFindResult> {
    let candidate = lsn;
    for (;;) {
      const pageLsn = candidate - (candidate % BigInt(XLOG_BLCKSZ));
      const loaded = await this.loadPage(pageLsn);
      if ('reason' in loaded)
        return { kind: 'end', reason: loaded.reason, lsn: candidate, message: loaded.message };
      const { header } = loaded;
      if (header.info & XLP_FIRST_IS_CONTRECORD) {
        if (maxAlign(header.remLen) >= XLOG_BLCKSZ - header.headerSizeBytes) {
          candidate = pageLsn + BigInt(XLOG_BLCKSZ);
          continue;
        }
        candidate = pageLsn + BigInt(header.headerSizeBytes + maxAlign(header.remLen));
      } else {
        candidate = pageLsn + BigInt(header.headerSizeBytes);
      }
      break;
    }
    this.beginRead(candidate);
    for (;;) {
      const result = await this.readRecord();
      if (result.kind === 'end') return result;
      if (result.record.lsn >= lsn) {
        this.beginRead(result.record.lsn);
        return { kind: 'found', lsn: result.record.lsn };
      }
    }
  }

  private requireMajor(): number {
    const major = this.major;
    if (major === undefined)
      throw new StrataError('internal', 'WAL major unknown before any page was read');
    return major;
  }

  /** ValidXLogRecordHeader: a plausible length, a known rmgr, and a prev-link that fits. */
  private checkRecordHeader(headerBytes: Uint8Array, recordLsn: Lsn): Problem | undefined {
    const header = parseWalRecordHeader(headerBytes);
    const at = formatLsn(recordLsn);
    if (header.totalLength < SIZE_OF_XLOG_RECORD) {
      return {
        reason: 'invalid-record-length',
        message: `invalid record length at ${at}: expected at least ${SIZE_OF_XLOG_RECORD}, got ${header.totalLength}`,
      };
    }
    if (!isValidRmid(header.rmid, this.requireMajor())) {
      return {
        reason: 'invalid-rmid',
        message: `invalid resource manager ID ${header.rmid} at ${at}`,
      };
    }
    const previous = this.previousRecordLsn;
    const prevLinkValid =
      previous === undefined ? header.prevLsn < recordLsn : header.prevLsn === previous;
    if (!prevLinkValid) {
      return {
        reason: 'invalid-prev-link',
        message: `record with incorrect prev-link ${formatLsn(header.prevLsn)} at ${at}`,
      };
    }
    return undefined;
  }

  /** Loads and validates one page (and, on first use of a segment, that segment's long header). */
  private async loadPage(pageLsn: Lsn): Promise<LoadedPage | Problem> {
    const segmentSize = BigInt(this.walSegmentSizeBytes);
    const segno = pageLsn / segmentSize;
    const segmentName = segmentFileName(this.timelineId, segno, this.walSegmentSizeBytes);
    let segment = this.segments.get(segno);
    if (!segment) {
      const bytes = await this.source.readSegment(this.timelineId, segno);
      if (!bytes) return { reason: 'missing-segment', message: `missing segment ${segmentName}` };
      if (bytes.length !== this.walSegmentSizeBytes) {
        return {
          reason: 'invalid-segment-size',
          message: `WAL segment ${segmentName} has ${bytes.length} bytes, expected ${this.walSegmentSizeBytes}`,
        };
      }
      const problem = this.checkPage(
        bytes.subarray(0, XLOG_BLCKSZ),
        segno * segmentSize,
        segmentName,
      );
      if ('reason' in problem) return problem;
      if (problem.header.long) this.systemIdentifier ??= problem.header.long.systemIdentifier;
      if (this.segments.size >= CACHED_SEGMENTS) {
        const oldest = this.segments.keys().next().value;
        if (oldest !== undefined) this.segments.delete(oldest);
      }
      this.segments.set(segno, bytes);
      segment = bytes;
    }
    const offset = Number(pageLsn % segmentSize);
    return this.checkPage(segment.subarray(offset, offset + XLOG_BLCKSZ), pageLsn, segmentName);
  }

  private checkPage(page: Uint8Array, pageLsn: Lsn, segmentName: string): LoadedPage | Problem {
    const header = parseWalPageHeader(page);
    const problem = checkWalPageHeader(header, page, {
      pageLsn,
      walSegmentSizeBytes: this.walSegmentSizeBytes,
      segmentName,
      timelineId: this.timelineId,
      ...(this.magic !== undefined ? { magic: this.magic } : {}),
      ...(this.systemIdentifier !== undefined ? { systemIdentifier: this.systemIdentifier } : {}),
    });
    if (problem) return problem;
    // Timelines only grow along a WAL stream (a child timeline's id is above its parent's).
    if (pageLsn > this.latestPageLsn) {
      if (header.timelineId < this.latestPageTimelineId) {
        return {
          reason: 'unexpected-timeline',
          message: `out-of-sequence timeline ID ${header.timelineId} (after ${this.latestPageTimelineId}) in WAL segment ${segmentName}, LSN ${formatLsn(pageLsn)}`,
        };
      }
      this.latestPageLsn = pageLsn;
      this.latestPageTimelineId = header.timelineId;
    }
    this.magic ??= header.magic;
    return { header, page };
  }
}
