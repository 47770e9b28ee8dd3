import { encodePageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import type { PageHeaderEntry } from '../../catalog/types.js';
import type { Storage, WriteHandle } from '../../storage/storage.js';

/** Where a data file's slice went in page_header_map: the file list's hdr_off, hdr_size, hdr_crc. */
export interface PageHeaderPlace {
  hdrOff: bigint;
  hdrSize: number;
  hdrCrc: number;
}

/**
 * Appends the compressed header slices of data files to the backup's `page_header_map`
 * (catalog-format §8). Workers finish files in any order; appends are serialised so each slice
 * gets its own contiguous range.
 */
export class PageHeaderMapWriter {
  private handle: WriteHandle | undefined;
  private offset = 0n;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly storage: Storage,
    readonly path: string,
  ) {}

  /** `entries` are the stored pages; the terminator whose `pos` is the data file length is added here. */
  append(entries: PageHeaderEntry[], dataFileSizeBytes: number): Promise<PageHeaderPlace> {
    return this.appendSlice(
      encodePageHeaderSlice([
        ...entries,
        { lsn: 0n, block: 0, pos: dataFileSizeBytes, checksum: 0 },
      ]),
    );
  }

  /** Appends a slice already encoded (by `encodePageHeaderSlice`, e.g. on a worker thread). */
  appendSlice(slice: { bytes: Uint8Array; hdrCrc: number }): Promise<PageHeaderPlace> {
    const bytes = Buffer.from(slice.bytes.buffer, slice.bytes.byteOffset, slice.bytes.byteLength);
    const result = this.queue.then(async () => {
      this.handle ??= await this.storage.openWrite(this.path, { mode: 0o600, truncate: true });
      const hdrOff = this.offset;
      await this.handle.write(bytes, Number(hdrOff));
      this.offset += BigInt(bytes.length);
      return { hdrOff, hdrSize: bytes.length, hdrCrc: slice.hdrCrc };
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  async close(sync: boolean): Promise<void> {
    await this.queue;
    if (!this.handle) return;
    if (sync) await this.handle.sync();
    await this.handle.close();
    this.handle = undefined;
  }
}
