import { crc32Final, crc32Init, crc32Update } from '../../format/crc32.js';
import { crc32cFinal, crc32cInit, crc32cUpdate } from '../../format/crc32c.js';
import type { ReadHandle } from '../../storage/storage.js';

/** Files are read in 1 MiB chunks: large enough for throughput, small enough for `-j` readers at once. */
const CHUNK_BYTES = 1024 * 1024;

/** The CRC flavour a backup's file CRCs use (catalog-format.md §9). */
export type FileCrcKind = 'crc32c' | 'crc32';

/**
 * Reads a file once, front to back, feeding every byte into the file CRC exactly once, while
 * handing out the byte ranges a validator asks for (in increasing order). So a data file is
 * checked page by page and its whole-file CRC is known at the end, from a single pass.
 */
export class SequentialCrcReader {
  private window: Buffer = Buffer.alloc(0);
  /** File offset of window[0]. */
  private windowStart = 0;
  private nextReadOffset = 0;
  private atEof = false;
  private crcState: number;
  private readonly chunkBytes: number;

  /** `expectedSizeBytes` (the listed size) keeps small files from getting a 1 MiB buffer each. */
  constructor(
    private readonly handle: ReadHandle,
    private readonly crcKind: FileCrcKind,
    expectedSizeBytes?: number,
  ) {
    this.crcState = crcKind === 'crc32c' ? crc32cInit : crc32Init;
    this.chunkBytes =
      expectedSizeBytes === undefined
        ? CHUNK_BYTES
        : Math.min(CHUNK_BYTES, Math.max(expectedSizeBytes, 1));
  }

  /**
   * Bytes `[position, position + length)`, or the shorter remainder when the file ends first.
   * Positions must not go backwards; skipped bytes still count in the CRC. The returned buffer
   * is only valid until the next call.
   */
  async bytesAt(position: number, length: number): Promise<Buffer> {
    if (position < this.windowStart) {
      throw new RangeError(`read at ${position} after the reader passed ${this.windowStart}`);
    }
    const end = position + length;
    while (this.nextReadOffset < end && !this.atEof)
      await this.readChunk(end - this.nextReadOffset);
    const from = Math.min(position - this.windowStart, this.window.length);
    this.window = this.window.subarray(from);
    this.windowStart += from;
    return this.window.subarray(0, Math.min(length, this.window.length));
  }

  /** Reads what is left of the file into the CRC and returns the final CRC of the whole file. */
  async finish(): Promise<{ crc: number; sizeBytes: number }> {
    this.window = Buffer.alloc(0);
    this.windowStart = this.nextReadOffset;
    while (!this.atEof) {
      await this.readChunk(this.chunkBytes);
      this.window = Buffer.alloc(0);
      this.windowStart = this.nextReadOffset;
    }
    const crc = this.crcKind === 'crc32c' ? crc32cFinal(this.crcState) : crc32Final(this.crcState);
    return { crc, sizeBytes: this.nextReadOffset };
  }

  private async readChunk(atLeastBytes: number): Promise<void> {
    const chunk = Buffer.allocUnsafe(Math.max(this.chunkBytes, atLeastBytes));
    const bytesRead = await this.handle.read(chunk, this.nextReadOffset, chunk.length);
    if (bytesRead === 0) {
      this.atEof = true;
      return;
    }
    const data = chunk.subarray(0, bytesRead);
    this.crcState =
      this.crcKind === 'crc32c'
        ? crc32cUpdate(this.crcState, data)
        : crc32Update(this.crcState, data);
    this.nextReadOffset += bytesRead;
    this.window = this.window.length === 0 ? data : Buffer.concat([this.window, data]);
  }
}
