import { afterEach, describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { parseLsn } from '../format/lsn.js';
import {
  defaultBackupMeta,
  formatBackupControl,
  formatBackupDetail,
  parseBackupControl,
} from './backupControl.js';
import type { BackupMeta } from './types.js';

/** The example of spec/catalog-format.md §5.1, as pg_probackup 2.5.15 writes it. */
const specExample = `#Configuration
backup-mode = FULL
stream = true
compress-alg = zlib
compress-level = 1
from-replica = false

#Compatibility
block-size = 8192
xlog-block-size = 8192
checksum-version = 1
program-version = 2.5.15
server-version = 16

#Result backup info
timelineid = 1
start-lsn = 0/4C000028
stop-lsn = 0/4D0000B8
start-time = '2024-05-02 08:19:26+00'
end-time = '2024-05-02 08:19:39+00'
recovery-xid = 743
recovery-time = '2024-05-02 08:19:37+00'
data-bytes = 250827955
wal-bytes = 16777216
uncompressed-bytes = 578216425
pgdata-bytes = 578216107
status = OK
primary_conninfo = 'user=backup channel_binding=prefer host=localhost port=5432 sslmode=prefer'
content-crc = 802820606
`;

const path = '/cat/backups/main/SCUN4E/backup.control';
const originalTz = process.env.TZ;
afterEach(() => {
  if (originalTz === undefined) delete process.env.TZ;
  else process.env.TZ = originalTz;
});

function parseError(text: string): StrataError {
  try {
    parseBackupControl(text, path);
  } catch (error) {
    if (error instanceof StrataError) return error;
    throw error;
  }
  throw new Error('expected an error');
}

describe('parseBackupControl', () => {
  it('reads the spec example', () => {
    const meta = parseBackupControl(specExample, path);
    expect(meta).toMatchObject({
      id: 'SCUN4E',
      backupMode: 'FULL',
      startTime: Date.UTC(2024, 4, 2, 8, 19, 26) / 1000,
      startLsn: parseLsn('0/4C000028'),
      stopLsn: parseLsn('0/4D0000B8'),
      recoveryXid: 743n,
      dataBytes: 250827955,
      contentCrc: 802820606,
      primaryConninfo: 'user=backup channel_binding=prefer host=localhost port=5432 sslmode=prefer',
    });
    expect(formatBackupControl(meta)).toBe(specExample);
  });

  it('applies pg_probackup defaults for missing keys', () => {
    const meta = parseBackupControl("start-time = '2024-05-02 08:19:26+00'\n", path);
    expect(meta).toEqual({
      ...defaultBackupMeta(),
      id: 'SCUN4E',
      startTime: Date.UTC(2024, 4, 2, 8, 19, 26) / 1000,
    });
    expect(meta).toMatchObject({
      backupMode: undefined,
      status: 'UNKNOWN',
      dataBytes: -1,
      walBytes: -1,
      compressLevel: 1,
      blockSize: 8192,
    });
  });

  it('accepts mode prefixes, old local-time offsets and spelling variants of keys', () => {
    const meta = parseBackupControl(
      [
        'backup-mode = p',
        "start-time = '2020-05-01 14:03:11+03'",
        "Primary-ConnInfo = 'host=x'",
        "parent_backup_id = 'qawxyz'",
        'compress-alg = ZLIB',
        'compress-level = 010',
      ].join('\n'),
      path,
    );
    expect(meta.backupMode).toBe('PAGE');
    expect(meta.startTime).toBe(Date.UTC(2020, 4, 1, 11, 3, 11) / 1000);
    expect(meta.primaryConninfo).toBe('host=x');
    expect(meta.parentBackupId).toBe('QAWXYZ');
    expect(meta.compressAlg).toBe('zlib');
    expect(meta.compressLevel).toBe(8);
  });

  it('collects unknown keys, unknown statuses and bad LSNs as warnings', () => {
    const warnings: string[] = [];
    const meta = parseBackupControl(
      "start-time = '2024-05-02 08:19:26+00'\nsummary-lsn = 0/1\nstatus = BROKEN\nstart-lsn = 0/XYZ\n",
      path,
      warnings,
    );
    expect(meta.status).toBe('UNKNOWN');
    expect(meta.startLsn).toBe(0n);
    expect(warnings).toEqual([
      `Invalid option "summary-lsn" in file "${path}"`,
      `Invalid START_LSN "0/XYZ" in file "${path}"`,
      `Invalid STATUS "BROKEN" in file "${path}"`,
    ]);
  });

  it.each([
    [
      'a missing start-time',
      'backup-mode = FULL\n',
      `Invalid ID/start-time, control file "${path}" is corrupted`,
    ],
    [
      'a zero start-time',
      "start-time = '1970-01-01 00:00:00+00'\n",
      `Invalid ID/start-time, control file "${path}" is corrupted`,
    ],
    ['an empty file', '#Configuration\n\n', `Control file "${path}" is empty`],
    [
      'a truncated line',
      "start-time = '2024-05-02 08:19:26+00'\nbackup-mo",
      `Syntax error in "backup-mo" (file "${path}", line 2)`,
    ],
    [
      'a bad boolean',
      "stream = maybe\nstart-time = '2024-05-02 08:19:26+00'\n",
      `Option --stream should be a boolean: 'maybe' (file "${path}", line 1)`,
    ],
    [
      'a bad integer',
      "start-time = '2024-05-02 08:19:26+00'\ntimelineid = one\n",
      `Option --timelineid should be a 32bit unsigned integer: 'one' (file "${path}", line 2)`,
    ],
    [
      'a bad time',
      "start-time = 'yesterday'\n",
      `Option --start-time should be a time: 'yesterday' (file "${path}", line 1)`,
    ],
    [
      'an empty note',
      "start-time = '2024-05-02 08:19:26+00'\nnote = ''\n",
      `Option --note should be a valid string: '' (file "${path}", line 2)`,
    ],
    [
      'an invalid mode',
      "start-time = '2024-05-02 08:19:26+00'\nbackup-mode = SUMMARY\n",
      `Invalid backup-mode "SUMMARY" (file "${path}", line 2)`,
    ],
    [
      'an invalid compression',
      "compress-alg = lzma\nstart-time = '2024-05-02 08:19:26+00'\n",
      `Invalid compress algorithm value "lzma" (file "${path}", line 1)`,
    ],
    [
      'binary garbage',
      '\u0000\u0001\u0002 = \u00ff\n== x',
      `Syntax error in "== x" (file "${path}", line 2)`,
    ],
  ])('rejects %s with one StrataError naming the file', (_what, text, message) => {
    const error = parseError(text);
    expect(error.code).toBe('format');
    expect(error.message).toBe(message);
  });
});

describe('formatBackupControl', () => {
  const base: BackupMeta = parseBackupControl(specExample, path);

  it('writes optional keys only when set, in pg_probackup order', () => {
    const text = formatBackupControl({
      ...base,
      backupMode: 'DELTA',
      mergeTime: Date.UTC(2024, 4, 3, 1, 2, 3) / 1000,
      expireTime: Date.UTC(2025, 0, 1) / 1000,
      mergeDestId: 'SCUN2A',
      dataBytes: -1,
      walBytes: -1,
      uncompressedBytes: -1,
      status: 'MERGING',
      parentBackupId: 'SCUM00',
      primaryConninfo: undefined,
      externalDirs: '/etc/a:/etc/b',
      note: "Bob's backup # 1",
      contentCrc: 0,
      programVersion: undefined,
    });
    expect(text).toBe(`#Configuration
backup-mode = DELTA
stream = true
compress-alg = zlib
compress-level = 1
from-replica = false

#Compatibility
block-size = 8192
xlog-block-size = 8192
checksum-version = 1
server-version = 16

#Result backup info
timelineid = 1
start-lsn = 0/4C000028
stop-lsn = 0/4D0000B8
start-time = '2024-05-02 08:19:26+00'
merge-time = '2024-05-03 01:02:03+00'
end-time = '2024-05-02 08:19:39+00'
recovery-xid = 743
recovery-time = '2024-05-02 08:19:37+00'
expire-time = '2025-01-01 00:00:00+00'
merge-dest-id = 'SCUN2A'
pgdata-bytes = 578216107
status = MERGING
parent-backup-id = 'SCUM00'
external-dirs = '/etc/a:/etc/b'
note = 'Bob''s backup # 1'
`);
    expect(parseBackupControl(text, path).note).toBe("Bob's backup # 1");
  });

  it('refuses what pg_probackup could not read back', () => {
    expect(() => formatBackupControl({ ...base, backupMode: undefined })).toThrow(
      'has no backup mode',
    );
    expect(() => formatBackupControl({ ...base, note: 'two\nlines' })).toThrow(
      'contains a line break',
    );
  });
});

describe('formatBackupDetail', () => {
  it('prints the control syntax with local times and the tablespace map', () => {
    process.env.TZ = 'Europe/Moscow';
    const text = formatBackupDetail(parseBackupControl(specExample, path), [
      { oid: '16400', path: '/mnt/ts_b' },
      { oid: '16390', path: '/mnt/ts_a' },
    ]);
    expect(text).toContain(
      "\nstart-time = '2024-05-02 11:19:26+03'\nend-time = '2024-05-02 11:19:39+03'\n",
    );
    expect(
      text.endsWith(
        "content-crc = 802820606\n\ntablespace_map = '16390 /mnt/ts_a; 16400 /mnt/ts_b'\n",
      ),
    ).toBe(true);
    expect(formatBackupDetail({ ...defaultBackupMeta(), startTime: 1 })).toContain(
      '#Configuration\nbackup-mode = \n',
    );
  });
});
