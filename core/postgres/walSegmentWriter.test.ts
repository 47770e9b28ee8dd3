import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32c } from '../format/crc32c.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import { makeTempDir } from '../testing/cluster.js';
import { WalSegmentWriter } from './walSegmentWriter.js';

/** 1 MB is the smallest segment initdb accepts (--wal-segsize=1). */
const segmentSize = 1024 * 1024;
const storage = new LocalStorage();

describe('WalSegmentWriter', () => {
  let dir: { path: string; remove: () => void };
  beforeEach(() => {
    dir = makeTempDir('strata-walwriter-');
  });
  afterEach(() => dir.remove());

  it('splits a stream across segments, renames full ones and pads the last to full size', async () => {
    const start = 0x1_00000000n + 5n * BigInt(segmentSize);
    const writer = new WalSegmentWriter({
      storage,
      walDir: dir.path,
      timelineId: 3,
      segmentSizeBytes: segmentSize,
      startLsn: start,
    });
    const stream = randomBytes(2 * segmentSize + 1000);
    // Messages that straddle the segment boundaries, as XLogData may.
    const cuts = [0, 700_000, segmentSize + 10, 2 * segmentSize + 1000];
    for (let i = 0; i + 1 < cuts.length; i++) {
      await writer.write(start + BigInt(cuts[i]!), stream.subarray(cuts[i], cuts[i + 1]));
      if (i === 0) expect(readdirSync(dir.path)).toEqual(['000000030000000100000005.partial']);
    }
    expect(writer.segments.map((s) => s.name)).toEqual([
      '000000030000000100000005',
      '000000030000000100000006',
    ]);
    expect(writer.flushedLsn).toBe(start + 2n * BigInt(segmentSize));
    await writer.finish();
    expect(writer.position).toBe(start + BigInt(stream.length));
    expect(writer.flushedLsn).toBe(writer.position);
    expect(readdirSync(dir.path)).toEqual([
      '000000030000000100000005',
      '000000030000000100000006',
      '000000030000000100000007',
    ]);
    const last = readFileSync(`${dir.path}/000000030000000100000007`);
    expect(last.length).toBe(segmentSize);
    expect(last.subarray(0, 1000).equals(stream.subarray(2 * segmentSize))).toBe(true);
    expect(last.subarray(1000).every((byte) => byte === 0)).toBe(true);
    for (const segment of writer.segments) {
      const bytes = readFileSync(`${dir.path}/${segment.name}`);
      expect(segment.sizeBytes).toBe(segmentSize);
      expect(segment.crc).toBe(crc32c(bytes));
    }
    const first = readFileSync(`${dir.path}/000000030000000100000005`);
    expect(first.equals(stream.subarray(0, segmentSize))).toBe(true);
  });

  it('refuses a gap in the stream, naming both positions', async () => {
    const writer = new WalSegmentWriter({
      storage,
      walDir: dir.path,
      timelineId: 1,
      segmentSizeBytes: segmentSize,
      startLsn: 0n,
    });
    await writer.write(0n, Buffer.alloc(100));
    await expect(writer.write(200n, Buffer.alloc(10))).rejects.toThrow(
      'Received WAL at 0/C8, expected it to continue at 0/64',
    );
  });

  it('leaves an abandoned segment as .partial', async () => {
    const writer = new WalSegmentWriter({
      storage,
      walDir: dir.path,
      timelineId: 1,
      segmentSizeBytes: segmentSize,
      startLsn: 0n,
    });
    await writer.write(0n, Buffer.alloc(100, 1));
    await writer.abandon();
    expect(readdirSync(dir.path)).toEqual(['000000010000000000000000.partial']);
    expect(writer.segments).toEqual([]);
  });
});
