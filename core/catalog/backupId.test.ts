import { describe, expect, it } from 'vitest';
import {
  backupIdFromTime,
  backupIdToTime,
  compareBackupIds,
  decodeBackupIdPrefix,
} from './backupId.js';

describe('backup IDs', () => {
  it('encode the start time in upper-case base36', () => {
    expect(backupIdFromTime(1700000000)).toBe('S44WE8');
    expect(backupIdFromTime(2176782336)).toBe('1000000');
    expect(backupIdFromTime(Date.UTC(2026, 10, 24, 22, 13, 54) / 1000)).toBe('TP11R6');
  });

  it('decode case-insensitively, stopping at the first non-digit like strtoul', () => {
    expect(backupIdToTime('S44WE8')).toBe(1700000000);
    expect(backupIdToTime('s44we8')).toBe(1700000000);
    expect(decodeBackupIdPrefix('S44WE8.old')).toBe(1700000000);
    expect(decodeBackupIdPrefix('.hidden')).toBe(0);
  });

  it('refuse an ID that decodes to 0', () => {
    expect(() => backupIdToTime('0')).toThrow('Invalid backup-id "0"');
    expect(() => backupIdToTime('!!')).toThrow('Invalid backup-id "!!"');
  });

  it('order by numeric start time, not by text', () => {
    expect(compareBackupIds('ZZZZZZ', '1000000')).toBeLessThan(0);
    expect(['1000000', 'TP11RH', 'TP11R6'].sort(compareBackupIds)).toEqual([
      'TP11R6',
      'TP11RH',
      '1000000',
    ]);
  });
});
