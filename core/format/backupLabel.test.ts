import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { parseBackupLabel } from './backupLabel.js';
import { parseLsn } from './lsn.js';
import { probackupFixtureDir } from '../testing/pgBinaries.js';

const FIXTURE_BACKUPS = `${probackupFixtureDir}/catalog/backups/demo`;

describe('parseBackupLabel', () => {
  it('reads the backup_label of the pg_probackup fixture FULL backup', () => {
    const text = readFileSync(`${FIXTURE_BACKUPS}/TP11R6/database/backup_label`, 'utf8');
    expect(parseBackupLabel(text)).toEqual({
      startWalLocation: parseLsn('0/1300028'),
      startWalFile: '000000010000000000000013',
      checkpointLocation: parseLsn('0/1300060'),
      backupMethod: 'streamed',
      backupFrom: 'primary',
      startTime: '2026-11-24 22:13:54 UTC',
      label: '2026-11-24 22:13:54+00 with pg_probackup',
      startTimeline: 1,
    });
  });

  it('keeps a label containing ": " whole and ignores keys it does not know', () => {
    const text = [
      'START WAL LOCATION: 1/2000028 (file 000000020000000100000002)',
      'CHECKPOINT LOCATION: 1/2000060',
      'BACKUP METHOD: streamed',
      'BACKUP FROM: standby',
      'START TIME: 2025-01-02 03:04:05 CET',
      'LABEL: nightly: db1',
      'START TIMELINE: 2',
      'INCREMENTAL FROM LSN: 1/1000028',
      '',
    ].join('\n');
    expect(parseBackupLabel(text)).toEqual({
      startWalLocation: parseLsn('1/2000028'),
      startWalFile: '000000020000000100000002',
      checkpointLocation: parseLsn('1/2000060'),
      backupMethod: 'streamed',
      backupFrom: 'standby',
      startTime: '2025-01-02 03:04:05 CET',
      label: 'nightly: db1',
      startTimeline: 2,
    });
  });

  it('reads a minimal label of old servers, which have only the two locations', () => {
    const label = parseBackupLabel(
      'START WAL LOCATION: 0/9000028 (file 000000010000000000000009)\nCHECKPOINT LOCATION: 0/9000060\n',
    );
    expect(label).toEqual({
      startWalLocation: parseLsn('0/9000028'),
      startWalFile: '000000010000000000000009',
      checkpointLocation: parseLsn('0/9000060'),
    });
  });

  it.each([
    ['CHECKPOINT LOCATION: 0/9000060\n', /"START WAL LOCATION" is missing/],
    [
      'START WAL LOCATION: 0/9000028 (file 000000010000000000000009)\n',
      /"CHECKPOINT LOCATION" is missing/,
    ],
    [
      'START WAL LOCATION: 0/9000028\nCHECKPOINT LOCATION: 0/9000060\n',
      /is not "X\/X \(file <segment>\)"/,
    ],
    [
      'START WAL LOCATION: 0/9000028 (file 000000010000000000000009)\nCHECKPOINT LOCATION: later\n',
      /"CHECKPOINT LOCATION" has an invalid LSN "later"/,
    ],
  ])('rejects an invalid label %#', (text, message) => {
    expect(() => parseBackupLabel(text)).toThrow(message);
    expect(() => parseBackupLabel(text)).toThrow(StrataError);
  });
});
