import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { crc32c } from '../format/crc32c.js';
import {
  PAGE_HEADER_ENTRY_BYTES,
  decodePageHeaderSlice,
  encodePageHeaderSlice,
  packPageHeaders,
  verifyPageHeaderChain,
} from './pageHeaderMap.js';
import type { PageHeaderEntry } from './types.js';

const entries: PageHeaderEntry[] = [
  { lsn: 0x1_0000_0028n, block: 0, pos: 0, checksum: 0xbeef },
  { lsn: 0n, block: 3, pos: 8 + 120, checksum: 0 },
  { lsn: 0n, block: 0, pos: 8 + 120 + 8 + 8192, checksum: 0 },
];

function corruptError(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (error) {
    if (error instanceof StrataError) return error;
    throw error;
  }
  throw new Error('expected an error');
}

describe('page header slices', () => {
  it('pack 24-byte little-endian entries with zero padding', () => {
    const raw = packPageHeaders(entries.slice(0, 1));
    expect(PAGE_HEADER_ENTRY_BYTES).toBe(24);
    expect(raw.toString('hex')).toBe(
      '28000000' + '01000000' + '00000000' + '00000000' + 'efbe' + '000000000000',
    );
  });

  it('round-trip through zlib with the CRC over the raw array', () => {
    const { bytes, hdrCrc } = encodePageHeaderSlice(entries);
    expect(bytes[0]).toBe(0x78);
    expect(hdrCrc).toBe(crc32c(packPageHeaders(entries)));
    expect(decodePageHeaderSlice(bytes, 2, hdrCrc, 'file "base/1/2"')).toEqual(entries);
  });

  it('refuse a CRC mismatch, a wrong count and garbage, naming the file', () => {
    const { bytes, hdrCrc } = encodePageHeaderSlice(entries);
    const crc = corruptError(() => decodePageHeaderSlice(bytes, 2, hdrCrc ^ 1, 'file "base/1/2"'));
    expect(crc.code).toBe('corrupt');
    expect(crc.message).toContain('file "base/1/2"');
    expect(crc.message).toContain(`expected ${hdrCrc ^ 1}`);
    expect(corruptError(() => decodePageHeaderSlice(bytes, 1, hdrCrc, 'f')).message).toContain(
      'inflate to more than the expected 48 bytes',
    );
    expect(corruptError(() => decodePageHeaderSlice(bytes, 5, hdrCrc, 'f')).message).toContain(
      'expected 144',
    );
    expect(
      corruptError(() => decodePageHeaderSlice(bytes.subarray(0, 10), 2, hdrCrc, 'f')).message,
    ).toContain('Cannot decompress page headers of f');
    const padded = packPageHeaders(entries);
    padded[20] = 0xff;
    const withGarbagePadding = deflateSync(padded);
    expect(decodePageHeaderSlice(withGarbagePadding, 2, crc32c(padded), 'f')).toEqual(entries);
  });

  it('check a slice against its data file', () => {
    expect(() => verifyPageHeaderChain(entries, 8 + 120 + 8 + 8192, 'f')).not.toThrow();
    expect(() => verifyPageHeaderChain(entries, 9000, 'f')).toThrow(
      'records end at 8328, the file has 9000 bytes',
    );
    const tooLong = entries.map((entry, i) =>
      i === 2 ? { ...entry, pos: 8 + 120 + 8 + 8193 } : entry,
    );
    expect(() => verifyPageHeaderChain(tooLong, 8 + 120 + 8 + 8193, 'f')).toThrow(
      'payload of 8193 bytes',
    );
    const unordered = entries.map((entry, i) => (i === 1 ? { ...entry, block: 0 } : entry));
    expect(() => verifyPageHeaderChain(unordered, 8328, 'f')).toThrow('block 0 follows block 0');
  });
});
