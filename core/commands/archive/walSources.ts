import { posix } from 'node:path';
import { StrataError, errorText } from '../../errors.js';
import type { WalSegmentSource } from '../../format/wal/walReader.js';
import { walSegmentName } from '../../format/walNames.js';
import type { Storage } from '../../storage/storage.js';
import {
  archivedWalCandidates,
  isMissingFileError,
  pumpChunks,
  readFileChunks,
} from './archiveFiles.js';

/**
 * Keeps the last segment read: WAL decoders ask for the same segment many times in a row while they
 * walk its records, and a record that crosses into the next segment asks for the previous one again.
 */
class LastSegmentCache {
  private key: string | undefined;
  private bytes: Uint8Array | null = null;

  async get(
    timelineId: number,
    segno: bigint,
    load: () => Promise<Uint8Array | null>,
  ): Promise<Uint8Array | null> {
    const key = `${timelineId}/${segno}`;
    if (key === this.key) return this.bytes;
    const bytes = await load();
    this.key = key;
    this.bytes = bytes;
    return bytes;
  }
}

/**
 * WAL segments of an instance's archive (`<catalog>/wal/<instance>`), looked up as archive-get does:
 * `<seg>.gz` (decompressed), `<seg>`, `<seg>.gz.partial`, `<seg>.partial`; a partial segment comes
 * back zero-extended to the segment size. A complete segment comes back as stored, so a short file
 * stays visibly short.
 */
export class ArchiveWalSource implements WalSegmentSource {
  private readonly cache = new LastSegmentCache();

  constructor(
    private readonly storage: Storage,
    private readonly walDir: string,
    private readonly walSegmentSizeBytes: number,
  ) {}

  readSegment(timelineId: number, segno: bigint): Promise<Uint8Array | null> {
    return this.cache.get(timelineId, segno, () => this.loadSegment(timelineId, segno));
  }

  private async loadSegment(timelineId: number, segno: bigint): Promise<Uint8Array | null> {
    const name = walSegmentName(timelineId, segno, this.walSegmentSizeBytes);
    for (const candidate of archivedWalCandidates(this.walDir, name, true)) {
      const stat = await this.storage.stat(candidate.path);
      if (!stat || stat.type !== 'file') continue;
      if (!candidate.gzipped) {
        const stored = await this.storage.readFile(candidate.path);
        if (!candidate.partial || stored.length >= this.walSegmentSizeBytes) return stored;
        const extended = Buffer.alloc(this.walSegmentSizeBytes);
        stored.copy(extended);
        return extended;
      }
      return this.gunzipSegment(candidate.path, candidate.partial);
    }
    return null;
  }

  /** Decompresses straight into one segment-sized buffer, so the segment is held once. */
  private async gunzipSegment(path: string, partial: boolean): Promise<Uint8Array> {
    const segment = Buffer.alloc(this.walSegmentSizeBytes);
    let filled = 0;
    try {
      await pumpChunks(readFileChunks(this.storage, path), { kind: 'gunzip' }, (chunk) => {
        if (filled + chunk.length > segment.length) {
          throw new StrataError(
            'corrupt',
            `Compressed WAL file "${path}" holds more than one WAL segment of ${this.walSegmentSizeBytes} bytes`,
          );
        }
        chunk.copy(segment, filled);
        filled += chunk.length;
      });
    } catch (error) {
      if (error instanceof StrataError) throw error;
      throw new StrataError(
        'corrupt',
        `Cannot read compressed WAL file "${path}": ${errorText(error)}`,
        { cause: error },
      );
    }
    return partial ? segment : segment.subarray(0, filled);
  }
}

/**
 * WAL segments in a plain directory of uncompressed segments, such as a STREAM backup's
 * `database/pg_wal` or archive-get's prefetch directory.
 */
export class DirectoryWalSource implements WalSegmentSource {
  private readonly cache = new LastSegmentCache();

  constructor(
    private readonly storage: Storage,
    private readonly dir: string,
    private readonly walSegmentSizeBytes: number,
  ) {}

  readSegment(timelineId: number, segno: bigint): Promise<Uint8Array | null> {
    return this.cache.get(timelineId, segno, async () => {
      const path = posix.join(
        this.dir,
        walSegmentName(timelineId, segno, this.walSegmentSizeBytes),
      );
      try {
        return await this.storage.readFile(path);
      } catch (error) {
        if (isMissingFileError(error)) return null;
        throw error;
      }
    });
  }
}
