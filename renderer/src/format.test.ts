import { describe, expect, it } from 'vitest';
import {
  compressionRatio,
  exactBytes,
  formatBytes,
  formatDuration,
  formatLsnText,
  formatTime,
  parseLsnText,
  segmentNameToLsn,
} from './format.js';

describe('formatBytes', () => {
  it('prints bytes below 1 kB as bytes and larger sizes in 1024-based units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 kB');
    expect(formatBytes(16 * 1024 * 1024)).toBe('16 MB');
    expect(formatBytes(5 * 1024 ** 3 + 300 * 1024 ** 2)).toBe('5.3 GB');
  });

  it('shows unknown sizes as a dash and exact values with separators', () => {
    expect(formatBytes(null)).toBe('—');
    expect(formatBytes(-1)).toBe('—');
    expect(exactBytes(123456789)).toBe('123,456,789 bytes');
  });
});

describe('formatDuration', () => {
  it('uses the two largest units', () => {
    expect(formatDuration(4.4)).toBe('4s');
    expect(formatDuration(125)).toBe('2m 05s');
    expect(formatDuration(3 * 3600 + 7 * 60 + 9)).toBe('3h 07m');
    expect(formatDuration(2 * 86400 + 4 * 3600)).toBe('2d 04h');
    expect(formatDuration(null)).toBe('—');
  });
});

describe('formatTime', () => {
  it('prints UTC in the form recovery_target_time accepts', () => {
    expect(formatTime(1_700_000_000)).toBe('2023-11-14 22:13:20+00');
  });
});

describe('compressionRatio', () => {
  it('divides bytes before compression by bytes stored', () => {
    expect(compressionRatio(3000, 1000)).toBe('3.00');
    expect(compressionRatio(3000, 0)).toBe('—');
  });
});

describe('LSN text', () => {
  it('parses and prints PostgreSQL LSNs', () => {
    expect(parseLsnText('16/B374D848')).toBe(0x16b374d848n);
    expect(parseLsnText('0/0')).toBe(0n);
    expect(parseLsnText('0/G')).toBeNull();
    expect(parseLsnText('123')).toBeNull();
    expect(formatLsnText(0x16b374d848n)).toBe('16/B374D848');
    expect(formatLsnText(0x3000060n)).toBe('0/3000060');
  });
});

describe('segment names', () => {
  it('gives the first LSN of a segment for 16 MB and 1 MB segments', () => {
    expect(segmentNameToLsn('000000010000000000000003', 16 << 20)).toBe(0x3000000n);
    expect(segmentNameToLsn('0000000200000001000000A0', 16 << 20)).toBe(0x1a0000000n);
    // 1 MB segments: 4096 per 4 GB "xlogid", so 00000001/00000005 is segment 4096 + 5.
    expect(segmentNameToLsn('000000010000000100000005', 1 << 20)).toBe(BigInt(4096 + 5) << 20n);
    expect(segmentNameToLsn('00000001.history', 16 << 20)).toBeNull();
  });
});
