import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { parseLsn } from './lsn.js';
import {
  XLOG_BLCKSZ,
  historyFileName,
  isBackupHistoryFileName,
  isHistoryFileName,
  isPartialWalName,
  isValidWalSegmentSize,
  isWalSegmentName,
  lsnSegmentOffset,
  lsnToSegno,
  parseWalSegmentName,
  segnoToLsn,
  walSegmentName,
  walSegmentNameForLsn,
} from './walNames.js';
import { probackupFixtureDir } from '../testing/pgBinaries.js';

const MiB = 1024 * 1024;
const FIXTURE_WAL = `${probackupFixtureDir}/catalog/wal/demo`;

describe('WAL segment names with 16 MiB segments', () => {
  it('names the segment of LSN 0/4C000028', () => {
    expect(lsnToSegno(parseLsn('0/4C000028'), 16 * MiB)).toBe(0x4cn);
    expect(lsnSegmentOffset(parseLsn('0/4C000028'), 16 * MiB)).toBe(0x28);
    expect(walSegmentNameForLsn(1, parseLsn('0/4C000028'), 16 * MiB)).toBe(
      '00000001000000000000004C',
    );
  });

  it('carries into the middle part after 256 segments', () => {
    expect(walSegmentName(1, 0x100n, 16 * MiB)).toBe('000000010000000100000000');
    expect(walSegmentNameForLsn(0x1a, parseLsn('12/3AFFFFFF'), 16 * MiB)).toBe(
      '0000001A000000120000003A',
    );
    expect(walSegmentNameForLsn(0xffffffff, parseLsn('FFFFFFFF/FF000000'), 16 * MiB)).toBe(
      'FFFFFFFFFFFFFFFF000000FF',
    );
  });

  it('parses names back to timeline and segno', () => {
    expect(parseWalSegmentName('00000003000000120000003A', 16 * MiB)).toEqual({
      timelineId: 3,
      segno: 0x123an,
    });
    expect(parseWalSegmentName('000000010000000000000100', 16 * MiB)).toBeNull();
  });
});

describe('WAL segment names with 1 MiB segments', () => {
  it('names the segment of LSN 0/4C000028', () => {
    expect(lsnToSegno(parseLsn('0/4C000028'), MiB)).toBe(0x4c0n);
    expect(walSegmentNameForLsn(1, parseLsn('0/4C000028'), MiB)).toBe('0000000100000000000004C0');
  });

  it('names the segments of the pg_probackup fixture backups (initdb --wal-segsize=1)', () => {
    expect(walSegmentNameForLsn(1, parseLsn('0/1300028'), MiB)).toBe('000000010000000000000013');
    expect(walSegmentNameForLsn(1, parseLsn('0/1600168'), MiB)).toBe('000000010000000000000016');
  });

  it('uses 4096 segments per 4 GiB', () => {
    expect(walSegmentName(2, 4096n + 5n, MiB)).toBe('000000020000000100000005');
    expect(parseWalSegmentName('000000020000000100000005', MiB)).toEqual({
      timelineId: 2,
      segno: 4101n,
    });
    expect(parseWalSegmentName('000000020000000100001000', MiB)).toBeNull();
  });
});

describe('WAL segment arithmetic', () => {
  it('round-trips segno and segment start for 1 GiB segments', () => {
    const gib = 1024 * MiB;
    expect(segnoToLsn(7n, gib)).toBe(7n * BigInt(gib));
    expect(lsnToSegno(segnoToLsn(7n, gib) + 123n, gib)).toBe(7n);
    expect(walSegmentName(1, 7n, gib)).toBe('000000010000000100000003');
  });

  it('accepts only powers of two from 1 MiB to 1 GiB as segment sizes', () => {
    expect([MiB, 16 * MiB, 1024 * MiB].every(isValidWalSegmentSize)).toBe(true);
    expect([0, 512 * 1024, 3 * MiB, 2048 * MiB, 1.5].some(isValidWalSegmentSize)).toBe(false);
    expect(() => walSegmentName(1, 1n, 3 * MiB)).toThrow(StrataError);
    expect(() => lsnToSegno(1n, 0)).toThrow(/Invalid WAL segment size 0 bytes/);
  });

  it('uses 8192-byte WAL pages', () => {
    expect(XLOG_BLCKSZ).toBe(8192);
  });
});

describe('WAL archive file kinds', () => {
  it('recognizes segment names exactly', () => {
    expect(isWalSegmentName('000000010000000000000013')).toBe(true);
    expect(isWalSegmentName('00000001000000000000001a')).toBe(false);
    expect(isWalSegmentName('000000010000000000000013.gz')).toBe(false);
    expect(isWalSegmentName('00000001000000000000013')).toBe(false);
  });

  it('recognizes partial segments, compressed or not', () => {
    expect(isPartialWalName('000000010000000000000013.partial')).toBe(true);
    expect(isPartialWalName('000000010000000000000013.gz.partial')).toBe(true);
    expect(isPartialWalName('000000010000000000000013.partial.part')).toBe(false);
    expect(isPartialWalName('000000010000000000000013')).toBe(false);
  });

  it('recognizes timeline history files and names them', () => {
    expect(historyFileName(2)).toBe('00000002.history');
    expect(historyFileName(0x1a)).toBe('0000001A.history');
    expect(isHistoryFileName('0000001A.history')).toBe(true);
    expect(isHistoryFileName('1A.history')).toBe(false);
    expect(isHistoryFileName('0000001A.history.part')).toBe(false);
  });

  it('recognizes backup history files', () => {
    expect(isBackupHistoryFileName('000000010000000000000013.00000028.backup')).toBe(true);
    expect(isBackupHistoryFileName('000000010000000000000013.28.backup')).toBe(false);
    expect(isBackupHistoryFileName('000000010000000000000013.backup')).toBe(false);
  });

  it('classifies every file of the pg_probackup fixture WAL archive (1 MiB segments)', () => {
    const names = readdirSync(FIXTURE_WAL);
    const segments = names.filter((name) => name.endsWith('.gz')).map((name) => name.slice(0, -3));
    const backupHistories = names.filter(isBackupHistoryFileName);
    expect(segments.length + backupHistories.length).toBe(names.length);
    expect(segments.every(isWalSegmentName)).toBe(true);
    const segnos = segments.map((name) => parseWalSegmentName(name, MiB)?.segno);
    expect(segnos[0]).toBe(8n);
    segnos.forEach((segno, index) => expect(segno).toBe(8n + BigInt(index)));
    expect(backupHistories).toContain('000000010000000000000013.00000028.backup');
  });
});
