/**
 * Writes a stream of WAL bytes into segment files of a directory, as pg_probackup keeps streamed
 * WAL (catalog-format.md §7.2): full-size segments named like archived ones, each listed with
 * its CRC32C. A segment is `<name>.partial` while it fills and gets its name when complete.
 */
import { StrataError } from '../errors.js';
import { crc32cFinal, crc32cInit, crc32cUpdate } from '../format/crc32c.js';
import { formatLsn, type Lsn } from '../format/lsn.js';
import type { Storage, WriteHandle } from '../storage/storage.js';
import { lsnToSegno, walSegmentName } from '../format/walNames.js';

export interface StreamedWalFile {
  name: string;
  sizeBytes: number;
  crc: number;
}

const partialSuffix = '.partial';
const zeroBlock = Buffer.alloc(1024 * 1024);

interface OpenSegment {
  name: string;
  handle: WriteHandle;
  crcState: number;
  writtenBytes: number;
}

export class WalSegmentWriter {
  private readonly storage: Storage;
  private readonly walDir: string;
  private readonly timelineId: number;
  private readonly segmentSizeBytes: number;
  private segment: OpenSegment | null = null;
  private nextLsn: Lsn;
  private syncedLsn: Lsn;
  private readonly finished: StreamedWalFile[] = [];

  /** `startLsn` must be the first byte of a segment: segments are written whole. */
  constructor(options: {
    storage: Storage;
    walDir: string;
    timelineId: number;
    segmentSizeBytes: number;
    startLsn: Lsn;
  }) {
    this.storage = options.storage;
    this.walDir = options.walDir;
    this.timelineId = options.timelineId;
    this.segmentSizeBytes = options.segmentSizeBytes;
    if (options.startLsn % BigInt(options.segmentSizeBytes) !== 0n) {
      throw new StrataError(
        'internal',
        `WAL streaming must start at a segment boundary, not ${formatLsn(options.startLsn)}`,
      );
    }
    this.nextLsn = options.startLsn;
    this.syncedLsn = options.startLsn;
  }

  /** One past the last byte written. */
  get position(): Lsn {
    return this.nextLsn;
  }

  /** One past the last byte that is in a completed, fsync'ed segment. */
  get flushedLsn(): Lsn {
    return this.syncedLsn;
  }

  /** Completed segments so far, in stream order. */
  get segments(): readonly StreamedWalFile[] {
    return this.finished;
  }

  private path(name: string): string {
    return `${this.walDir}/${name}`;
  }

  /** Appends WAL that starts at `dataStart`, which must continue the stream without a gap. */
  async write(dataStart: Lsn, data: Buffer): Promise<void> {
    if (dataStart !== this.nextLsn) {
      throw new StrataError(
        'wal',
        `Received WAL at ${formatLsn(dataStart)}, expected it to continue at ${formatLsn(this.nextLsn)}`,
      );
    }
    const segmentSize = BigInt(this.segmentSizeBytes);
    let offset = 0;
    while (offset < data.length) {
      const segmentOffset = Number(this.nextLsn % segmentSize);
      const segment = this.segment ?? (await this.openSegment());
      const length = Math.min(data.length - offset, this.segmentSizeBytes - segmentOffset);
      const chunk = data.subarray(offset, offset + length);
      await segment.handle.write(chunk, segmentOffset);
      segment.crcState = crc32cUpdate(segment.crcState, chunk);
      segment.writtenBytes = segmentOffset + length;
      this.nextLsn += BigInt(length);
      offset += length;
      if (segment.writtenBytes === this.segmentSizeBytes) await this.completeSegment(segment);
    }
  }

  private async openSegment(): Promise<OpenSegment> {
    const name = walSegmentName(
      this.timelineId,
      lsnToSegno(this.nextLsn, this.segmentSizeBytes),
      this.segmentSizeBytes,
    );
    const handle = await this.storage.openWrite(this.path(name + partialSuffix), {
      truncate: true,
      mode: 0o600,
    });
    this.segment = { name, handle, crcState: crc32cInit, writtenBytes: 0 };
    return this.segment;
  }

  private async completeSegment(segment: OpenSegment): Promise<void> {
    await segment.handle.sync();
    await segment.handle.close();
    await this.storage.rename(this.path(segment.name + partialSuffix), this.path(segment.name));
    this.segment = null;
    this.syncedLsn = this.nextLsn;
    this.finished.push({
      name: segment.name,
      sizeBytes: this.segmentSizeBytes,
      crc: crc32cFinal(segment.crcState),
    });
  }

  /**
   * Ends the stream: the segment being filled is zero-padded to the full segment size (as
   * pg_probackup leaves it), synced and renamed; then the directory is synced.
   */
  async finish(): Promise<void> {
    const segment = this.segment;
    if (segment) {
      await segment.handle.truncate(this.segmentSizeBytes);
      let remaining = this.segmentSizeBytes - segment.writtenBytes;
      while (remaining > 0) {
        const length = Math.min(remaining, zeroBlock.length);
        segment.crcState = crc32cUpdate(segment.crcState, zeroBlock.subarray(0, length));
        remaining -= length;
      }
      segment.writtenBytes = this.segmentSizeBytes;
      await this.completeSegment(segment);
    }
    await this.storage.syncDir(this.walDir);
  }

  /** Closes the open segment and leaves it as `.partial`: the stream failed, nothing is complete. */
  async abandon(): Promise<void> {
    const segment = this.segment;
    this.segment = null;
    if (segment) {
      try {
        await segment.handle.close();
      } catch {
        // Closing a handle of a failed stream can fail too; the file stays .partial either way.
      }
    }
  }
}
