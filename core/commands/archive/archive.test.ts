import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StrataError } from '../../errors.js';
import { createMemoryLogger } from '../../log.js';
import type { LogRecord } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { postgresBinDir } from '../../testing/pgBinaries.js';
import type { CommandContext } from '../context.js';
import { archiveGet } from './archiveGet.js';
import type { ArchiveGetParams } from './archiveGet.js';
import { archivePush } from './archivePush.js';
import type { ArchivePushParams } from './archivePush.js';
import { waitForArchivedSegment } from './waitForArchivedSegment.js';
import { ArchiveWalSource, DirectoryWalSource } from './walSources.js';
import { probackupFixtureDir } from '../../testing/pgBinaries.js';

const SEG_SIZE = 1024 * 1024;
const INSTANCE = 'node';
/** Real 1 MiB WAL segments of PostgreSQL 15 archived by pg_probackup 2.5.16 with `--compress`. */
const FIXTURE_WAL = `${probackupFixtureDir}/catalog/wal/demo`;

let root: string;
let pgControl: Buffer;
let systemId: bigint;

/** One scratch catalog + fake PGDATA per test. */
let catalog: string;
let pgdata: string;
let archiveDir: string;
let walDir: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'strata-archive-'));
  const template = join(root, 'initdb');
  execFileSync(
    join(postgresBinDir(17), 'initdb'),
    ['-D', template, '-k', '--wal-segsize=1', '-U', 'postgres', '-A', 'trust'],
    { stdio: 'ignore' },
  );
  pgControl = readFileSync(join(template, 'global', 'pg_control'));
  // ControlFileData starts with system_identifier (uint64), little-endian on every supported platform.
  systemId = pgControl.readBigUInt64LE(0);
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

let caseNo = 0;
beforeEach(() => {
  caseNo++;
  catalog = join(root, `catalog${caseNo}`);
  pgdata = join(root, `pgdata${caseNo}`);
  archiveDir = join(catalog, 'wal', INSTANCE);
  walDir = join(pgdata, 'pg_wal');
  mkdirSync(join(catalog, 'backups', INSTANCE), { recursive: true });
  mkdirSync(archiveDir, { recursive: true });
  mkdirSync(join(pgdata, 'global'), { recursive: true });
  mkdirSync(join(walDir, 'archive_status'), { recursive: true });
  writeFileSync(join(pgdata, 'global', 'pg_control'), pgControl);
  writeConfig();
});

function writeConfig(extra = '', systemIdentifier = systemId): void {
  writeFileSync(
    join(catalog, 'backups', INSTANCE, 'pg_probackup.conf'),
    `# Backup instance information\npgdata = ${pgdata}\nsystem-identifier = ${systemIdentifier}\nxlog-seg-size = ${SEG_SIZE}\n${extra}`,
  );
}

function makeContext(): CommandContext & { records: LogRecord[] } {
  const logger = createMemoryLogger();
  return { storage: new LocalStorage(), logger, now: () => Date.now(), records: logger.records };
}

function messages(records: LogRecord[], level?: LogRecord['level']): string[] {
  return records.filter((r) => !level || r.level === level).map((r) => r.message);
}

function segmentName(segno: number): string {
  return `00000001${'0'.repeat(8)}${segno.toString(16).toUpperCase().padStart(8, '0')}`;
}

/** Deterministic, poorly compressible segment content that differs by `seed`. */
function segmentBytes(seed: number, sizeBytes = SEG_SIZE): Buffer {
  const bytes = Buffer.alloc(sizeBytes);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < sizeBytes; i += 4) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    bytes.writeUInt32LE(x, i);
  }
  return bytes;
}

function putSegment(name: string, content: Buffer, ready = false): void {
  writeFileSync(join(walDir, name), content);
  if (ready) writeFileSync(join(walDir, 'archive_status', `${name}.ready`), '');
}

function pushParams(name: string, overrides: Partial<ArchivePushParams> = {}): ArchivePushParams {
  return {
    backupPath: catalog,
    instance: INSTANCE,
    walFileName: name,
    walFilePath: `pg_wal/${name}`,
    cwd: pgdata,
    batchSize: 1,
    threads: 1,
    overwrite: false,
    noReadyRename: false,
    noSync: false,
    ...overrides,
  };
}

function getParams(name: string, overrides: Partial<ArchiveGetParams> = {}): ArchiveGetParams {
  return {
    backupPath: catalog,
    instance: INSTANCE,
    walFileName: name,
    walFilePath: 'pg_wal/RECOVERYXLOG',
    cwd: pgdata,
    batchSize: 1,
    threads: 1,
    noValidateWal: false,
    ...overrides,
  };
}

async function rejection(promise: Promise<unknown>): Promise<StrataError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error('expected a StrataError, the call succeeded');
}

describe('archivePush', () => {
  it('copies a segment into the archive and logs pg_probackup lines', async () => {
    const name = segmentName(1);
    const content = segmentBytes(1);
    putSegment(name, content);
    const ctx = makeContext();
    expect(await archivePush(ctx, pushParams(name))).toEqual({ pushed: 1, skipped: 0 });
    expect(readFileSync(join(archiveDir, name)).equals(content)).toBe(true);
    expect(readdirSync(archiveDir)).toEqual([name]);
    const info = messages(ctx.records, 'INFO');
    expect(info[0]).toBe(
      `pg_probackup archive-push WAL file: ${name}, threads: 1/1, batch: 1/1, compression: none`,
    );
    expect(info[1]).toMatch(
      /^pg_probackup archive-push completed successfully, pushed: 1, skipped: 0, time elapsed: (0|\d+ms|\d+s(:\d+ms)?)$/,
    );
  });

  it('skips a segment already archived with the same content', async () => {
    const name = segmentName(2);
    putSegment(name, segmentBytes(2));
    await archivePush(makeContext(), pushParams(name));
    const mtimeBefore = statSync(join(archiveDir, name)).mtimeMs;
    const ctx = makeContext();
    expect(await archivePush(ctx, pushParams(name))).toEqual({ pushed: 0, skipped: 1 });
    expect(messages(ctx.records, 'LOG')).toContain(
      `WAL file already exists in archive with the same checksum, skip pushing: "${join(walDir, name)}"`,
    );
    expect(statSync(join(archiveDir, name)).mtimeMs).toBe(mtimeBefore);
    expect(readdirSync(archiveDir)).toEqual([name]);
  });

  it('refuses different content under the same name unless --overwrite', async () => {
    const name = segmentName(3);
    putSegment(name, segmentBytes(3));
    await archivePush(makeContext(), pushParams(name));
    const replacement = segmentBytes(33);
    putSegment(name, replacement);
    const error = await rejection(archivePush(makeContext(), pushParams(name)));
    expect(error.message).toBe(
      `WAL file already exists in archive with different checksum: "${join(archiveDir, name)}"`,
    );
    expect(readFileSync(join(archiveDir, name)).equals(segmentBytes(3))).toBe(true);
    expect(readdirSync(archiveDir)).toEqual([name]);

    expect(await archivePush(makeContext(), pushParams(name, { overwrite: true }))).toEqual({
      pushed: 1,
      skipped: 0,
    });
    expect(readFileSync(join(archiveDir, name)).equals(replacement)).toBe(true);
  });

  it('compresses segments to .gz but never .partial, .history or .backup files', async () => {
    const name = segmentName(4);
    const content = segmentBytes(4);
    putSegment(name, content);
    const ctx = makeContext();
    await archivePush(ctx, pushParams(name, { compressAlgorithm: 'zlib', compressLevel: 3 }));
    expect(messages(ctx.records, 'INFO')[0]).toMatch(/compression: zlib$/);
    const stored = readFileSync(join(archiveDir, `${name}.gz`));
    expect(stored.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(true);
    expect(gunzipSync(stored).equals(content)).toBe(true);

    const others = [`${segmentName(5)}.partial`, '00000002.history', `${name}.00000028.backup`];
    for (const other of others) {
      putSegment(other, Buffer.from(`content of ${other}\n`));
      await archivePush(makeContext(), pushParams(other, { compressAlgorithm: 'zlib' }));
      expect(readFileSync(join(archiveDir, other)).toString()).toBe(`content of ${other}\n`);
    }
    expect(readdirSync(archiveDir).sort()).toEqual([`${name}.gz`, ...others].sort());
  });

  it('takes compression from pg_probackup.conf and skips a same-content .gz', async () => {
    writeConfig('# Compression parameters\ncompress-algorithm = zlib\ncompress-level = 5\n');
    const name = segmentName(6);
    putSegment(name, segmentBytes(6));
    await archivePush(makeContext(), pushParams(name));
    expect(gunzipSync(readFileSync(join(archiveDir, `${name}.gz`))).equals(segmentBytes(6))).toBe(
      true,
    );
    expect(await archivePush(makeContext(), pushParams(name))).toEqual({ pushed: 0, skipped: 1 });
    expect(
      await archivePush(makeContext(), pushParams(name, { compressAlgorithm: 'none' })),
    ).toEqual({ pushed: 1, skipped: 0 });
    expect(readFileSync(join(archiveDir, name)).equals(segmentBytes(6))).toBe(true);
  });

  it('refuses pglz', async () => {
    const name = segmentName(7);
    putSegment(name, segmentBytes(7));
    const error = await rejection(
      archivePush(makeContext(), pushParams(name, { compressAlgorithm: 'pglz' })),
    );
    expect(error.message).toBe('Cannot use pglz for WAL compression');
  });

  it('refuses a cluster whose system identifier differs from the instance', async () => {
    writeConfig('', 1234567890123456789n);
    const name = segmentName(8);
    putSegment(name, segmentBytes(8));
    const error = await rejection(archivePush(makeContext(), pushParams(name)));
    expect(error.message).toBe(
      `Refuse to push WAL segment ${name} into archive. Instance parameters mismatch.` +
        `Instance '${INSTANCE}' should have SYSTEM_ID = 1234567890123456789 instead of ${systemId}`,
    );
    expect(readdirSync(archiveDir)).toEqual([]);
  });

  it('checks the system identifier of cwd when no --wal-file-path is given', async () => {
    const name = segmentName(9);
    putSegment(name, segmentBytes(9));
    const params: ArchivePushParams = { ...pushParams(name), walFilePath: undefined };
    expect(await archivePush(makeContext(), params)).toEqual({ pushed: 1, skipped: 0 });
    writeConfig('', 42n);
    const error = await rejection(archivePush(makeContext(), params));
    expect(error.message).toMatch(/should have SYSTEM_ID = 42 instead of \d+$/);
  });

  it('forces safe options for a WAL path outside any data directory', async () => {
    const outside = join(root, `outside${caseNo}`);
    mkdirSync(outside);
    const name = segmentName(10);
    writeFileSync(join(outside, name), segmentBytes(10));
    const ctx = makeContext();
    const result = await archivePush(ctx, {
      ...pushParams(name, { batchSize: 5, threads: 4 }),
      walFilePath: join(outside, name),
      cwd: outside,
    });
    expect(result).toEqual({ pushed: 1, skipped: 0 });
    expect(messages(ctx.records, 'WARNING')).toEqual([
      'Supplied --wal_file_path is outside pgdata, force safe values for options: --batch-size=1 -j 1 --no-ready-rename',
    ]);
    expect(messages(ctx.records, 'INFO')[0]).toContain('threads: 1/1, batch: 1/1');
    expect(readFileSync(join(archiveDir, name)).equals(segmentBytes(10))).toBe(true);
  });

  it('pushes a batch of .ready files in name order and renames them to .done', async () => {
    const names = [11, 12, 13, 14].map(segmentName);
    names.forEach((name, i) => putSegment(name, segmentBytes(100 + i), true));
    writeFileSync(join(walDir, 'archive_status', '00000002.history.ready'), '');
    const ctx = makeContext();
    const result = await archivePush(
      ctx,
      pushParams(names[0]!, { batchSize: 3, threads: 2, compressAlgorithm: 'zlib' }),
    );
    expect(result).toEqual({ pushed: 3, skipped: 0 });
    expect(messages(ctx.records, 'INFO')[0]).toBe(
      `pg_probackup archive-push WAL file: ${names[0]}, threads: 2/2, batch: 3/3, compression: zlib`,
    );
    expect(readdirSync(archiveDir).sort()).toEqual(names.slice(0, 3).map((n) => `${n}.gz`));
    names.slice(0, 3).forEach((name, i) => {
      expect(
        gunzipSync(readFileSync(join(archiveDir, `${name}.gz`))).equals(segmentBytes(100 + i)),
      ).toBe(true);
    });
    expect(readdirSync(join(walDir, 'archive_status')).sort()).toEqual(
      [
        '00000002.history.ready',
        `${names[0]}.ready`,
        `${names[1]}.done`,
        `${names[2]}.done`,
        `${names[3]}.ready`,
      ].sort(),
    );
    const renames = messages(ctx.records, 'LOG').filter(
      (m) => m.startsWith('Rename "') && m.includes('.part"'),
    );
    expect(renames.map((m) => m.slice(m.lastIndexOf('/') + 1, m.lastIndexOf('.gz')))).toEqual(
      names.slice(0, 3),
    );
  });

  it('keeps .ready files with --no-ready-rename', async () => {
    const names = [15, 16].map(segmentName);
    names.forEach((name, i) => putSegment(name, segmentBytes(200 + i), true));
    await archivePush(makeContext(), pushParams(names[0]!, { batchSize: 2, noReadyRename: true }));
    expect(readdirSync(join(walDir, 'archive_status')).sort()).toEqual(
      names.map((n) => `${n}.ready`),
    );
    expect(readdirSync(archiveDir).sort()).toEqual(names);
  });

  it('takes over a .part left by a dead pusher once archive-timeout passes', async () => {
    const name = segmentName(17);
    putSegment(name, segmentBytes(17));
    writeFileSync(join(archiveDir, `${name}.part`), Buffer.alloc(4096, 7));
    const ctx = makeContext();
    const startMs = Date.now();
    expect(await archivePush(ctx, pushParams(name, { archiveTimeoutSec: 2 }))).toEqual({
      pushed: 1,
      skipped: 0,
    });
    expect(Date.now() - startMs).toBeGreaterThanOrEqual(2000);
    expect(messages(ctx.records, 'LOG')).toContain(
      `Reusing stale temp WAL file "${join(archiveDir, name)}.part"`,
    );
    expect(readFileSync(join(archiveDir, name)).equals(segmentBytes(17))).toBe(true);
    expect(readdirSync(archiveDir)).toEqual([name]);
  });

  it('fails when a .part keeps growing: another pusher is alive', async () => {
    const name = segmentName(18);
    putSegment(name, segmentBytes(18));
    const partPath = join(archiveDir, `${name}.part`);
    writeFileSync(partPath, Buffer.alloc(1024));
    const timer = setInterval(() => appendFileSync(partPath, Buffer.alloc(1024)), 150);
    try {
      const error = await rejection(
        archivePush(makeContext(), pushParams(name, { archiveTimeoutSec: 2 })),
      );
      expect(error.message).toBe(`Failed to open temp WAL file "${partPath}" in 2 seconds`);
    } finally {
      clearInterval(timer);
    }
    expect(existsSync(join(archiveDir, name))).toBe(false);
  });

  it('claims the .part as soon as the other pusher removes it', async () => {
    const name = segmentName(19);
    putSegment(name, segmentBytes(19));
    const partPath = join(archiveDir, `${name}.part`);
    writeFileSync(partPath, Buffer.alloc(1024));
    setTimeout(() => unlinkSync(partPath), 300);
    const startMs = Date.now();
    await archivePush(makeContext(), pushParams(name, { archiveTimeoutSec: 30 }));
    expect(Date.now() - startMs).toBeLessThan(5000);
    expect(readFileSync(join(archiveDir, name)).equals(segmentBytes(19))).toBe(true);
  });

  it('names a missing instance and a missing source file', async () => {
    const name = segmentName(20);
    const missingInstance = await rejection(
      archivePush(makeContext(), pushParams(name, { instance: 'nope' })),
    );
    expect(missingInstance.message).toBe("Instance 'nope' does not exist in this backup catalog");
    const missingSource = await rejection(archivePush(makeContext(), pushParams(name)));
    expect(missingSource.message).toBe(
      `Cannot open source file "${join(walDir, name)}": No such file or directory`,
    );
    expect(readdirSync(archiveDir)).toEqual([]);
  });
});

describe('archiveGet', () => {
  it('delivers a compressed segment decompressed to %p relative to PGDATA', async () => {
    const name = segmentName(30);
    putSegment(name, segmentBytes(30));
    await archivePush(makeContext(), pushParams(name, { compressAlgorithm: 'zlib' }));
    const ctx = makeContext();
    await archiveGet(ctx, getParams(name));
    expect(readFileSync(join(walDir, 'RECOVERYXLOG')).equals(segmentBytes(30))).toBe(true);
    expect(statSync(join(walDir, 'RECOVERYXLOG')).mode & 0o777).toBe(0o600);
    const info = messages(ctx.records, 'INFO');
    expect(info[0]).toBe(
      `pg_probackup archive-get WAL file: ${name}, remote: none, threads: 1/1, batch: 1`,
    );
    expect(info[1]).toMatch(
      /^pg_probackup archive-get completed successfully, fetched: 1\/1, time elapsed: /,
    );
  });

  it('prefers <seg>.gz over <seg> and copies history files as they are', async () => {
    const name = segmentName(31);
    writeFileSync(join(archiveDir, name), segmentBytes(1));
    writeFileSync(join(archiveDir, `${name}.gz`), gzipSync(segmentBytes(31)));
    await archiveGet(makeContext(), getParams(name));
    expect(readFileSync(join(walDir, 'RECOVERYXLOG')).equals(segmentBytes(31))).toBe(true);

    writeFileSync(
      join(archiveDir, '00000002.history'),
      '1\t0/3000000\tno recovery target specified\n',
    );
    await archiveGet(
      makeContext(),
      getParams('00000002.history', { walFilePath: 'pg_wal/RECOVERYHISTORY' }),
    );
    expect(readFileSync(join(walDir, 'RECOVERYHISTORY'), 'utf8')).toBe(
      '1\t0/3000000\tno recovery target specified\n',
    );
  });

  it('zero-extends a .partial segment to the segment size', async () => {
    const name = segmentName(32);
    const partial = segmentBytes(32, 300 * 1024);
    writeFileSync(join(archiveDir, `${name}.partial`), partial);
    await archiveGet(makeContext(), getParams(name));
    const delivered = readFileSync(join(walDir, 'RECOVERYXLOG'));
    expect(delivered.length).toBe(SEG_SIZE);
    expect(delivered.subarray(0, partial.length).equals(partial)).toBe(true);
    expect(delivered.subarray(partial.length).equals(Buffer.alloc(SEG_SIZE - partial.length))).toBe(
      true,
    );

    const gzName = segmentName(33);
    writeFileSync(join(archiveDir, `${gzName}.gz.partial`), gzipSync(partial));
    writeFileSync(join(archiveDir, `${gzName}.partial`), Buffer.alloc(10, 1));
    await archiveGet(makeContext(), getParams(gzName));
    const fromGz = readFileSync(join(walDir, 'RECOVERYXLOG'));
    expect(fromGz.length).toBe(SEG_SIZE);
    expect(fromGz.subarray(0, partial.length).equals(partial)).toBe(true);
  });

  it('fails after three attempts when the archive lacks the file, leaving no file at %p', async () => {
    const name = segmentName(34);
    const ctx = makeContext();
    const error = await rejection(archiveGet(ctx, getParams(name)));
    expect(error.code).toBe('wal');
    expect(error.message).toMatch(
      new RegExp(`^pg_probackup archive-get failed to deliver WAL file: ${name}, time elapsed: `),
    );
    expect(
      messages(ctx.records, 'LOG').filter((m) => m.startsWith('Failed to get WAL file')),
    ).toEqual([1, 2, 3].map((n) => `Failed to get WAL file ${name}, retry ${n}/3`));
    expect(existsSync(join(walDir, 'RECOVERYXLOG'))).toBe(false);
  });

  it('requires %f and %p', async () => {
    expect((await rejection(archiveGet(makeContext(), getParams('')))).message).toBe(
      'Required parameter not specified: --wal-file-name %f',
    );
    expect(
      (await rejection(archiveGet(makeContext(), getParams(segmentName(1), { walFilePath: '' }))))
        .message,
    ).toBe('Required parameter not specified: --wal_file_path %p');
  });
});

describe('archiveGet prefetch', () => {
  /** Real consecutive WAL from the fixture: segments 0x08…0x1B of timeline 1. */
  function copyFixtureWal(from: number, to: number): void {
    for (let segno = from; segno <= to; segno++) {
      const name = `${segmentName(segno)}.gz`;
      copyFileSync(join(FIXTURE_WAL, name), join(archiveDir, name));
    }
  }
  const fixtureSegment = (segno: number) =>
    gunzipSync(readFileSync(join(FIXTURE_WAL, `${segmentName(segno)}.gz`)));
  const prefetchDir = () => join(walDir, 'pbk_prefetch');

  it('prefetches a batch, validates and serves segments from it, and refills it', async () => {
    copyFixtureWal(0x09, 0x0f);
    const first = makeContext();
    await archiveGet(first, getParams(segmentName(0x09), { batchSize: 3, threads: 2 }));
    expect(readFileSync(join(walDir, 'RECOVERYXLOG')).equals(fixtureSegment(0x09))).toBe(true);
    expect(messages(first.records, 'INFO')).toEqual([
      `pg_probackup archive-get WAL file: ${segmentName(0x09)}, remote: none, threads: 2/2, batch: 3`,
      `pg_probackup archive-get copied WAL file ${segmentName(0x09)}, prefetch state: 2/3`,
      expect.stringMatching(
        /^pg_probackup archive-get completed successfully, fetched: 3\/3, time elapsed: /,
      ),
    ]);
    expect(readdirSync(prefetchDir())).toEqual([segmentName(0x0a), segmentName(0x0b)]);

    const second = makeContext();
    await archiveGet(second, getParams(segmentName(0x0a), { batchSize: 3 }));
    expect(readFileSync(join(walDir, 'RECOVERYXLOG')).equals(fixtureSegment(0x0a))).toBe(true);
    expect(messages(second.records, 'INFO')[1]).toBe(
      `pg_probackup archive-get used prefetched WAL segment ${segmentName(0x0a)}, prefetch state: 1/3`,
    );

    const third = makeContext();
    await archiveGet(third, getParams(segmentName(0x0b), { batchSize: 3 }));
    expect(readFileSync(join(walDir, 'RECOVERYXLOG')).equals(fixtureSegment(0x0b))).toBe(true);
    expect(messages(third.records, 'INFO').slice(1)).toEqual([
      `pg_probackup archive-get used prefetched WAL segment ${segmentName(0x0b)}, prefetch state: 3/3`,
      expect.stringMatching(/fetched: 3\/3, time elapsed: /),
    ]);
    expect(readdirSync(prefetchDir())).toEqual([0x0c, 0x0d, 0x0e].map(segmentName));
  });

  it('deletes a prefetched segment whose records do not parse and copies it directly', async () => {
    copyFixtureWal(0x10, 0x12);
    mkdirSync(prefetchDir());
    const broken = Buffer.from(fixtureSegment(0x10));
    // A damaged record in the middle of the segment: its CRC no longer matches.
    broken.fill(0x55, 300_000, 300_100);
    writeFileSync(join(prefetchDir(), segmentName(0x10)), broken);
    writeFileSync(join(prefetchDir(), segmentName(0x11)), fixtureSegment(0x11));
    writeFileSync(join(prefetchDir(), 'garbage'), 'x');
    writeFileSync(join(prefetchDir(), segmentName(0x0f)), 'old');
    const ctx = makeContext();
    await archiveGet(ctx, getParams(segmentName(0x10), { batchSize: 2 }));
    expect(messages(ctx.records, 'LOG')).toContain(
      `WAL in prefetched segment ${segmentName(0x10)} does not parse: incorrect resource manager data checksum in record at 0/10489F0`,
    );
    expect(messages(ctx.records, 'LOG')).toContain(
      `Prefetched WAL segment ${segmentName(0x10)} is invalid, cannot use it`,
    );
    expect(readFileSync(join(walDir, 'RECOVERYXLOG')).equals(fixtureSegment(0x10))).toBe(true);
    expect(readdirSync(prefetchDir())).toEqual([]);
  });

  it('with --no-validate-wal serves the last prefetched segment without its successor', async () => {
    copyFixtureWal(0x1a, 0x1b);
    const ctx = makeContext();
    await archiveGet(ctx, getParams(segmentName(0x1b), { batchSize: 4, noValidateWal: true }));
    expect(readFileSync(join(walDir, 'RECOVERYXLOG')).equals(fixtureSegment(0x1b))).toBe(true);
    expect(messages(ctx.records, 'INFO')[1]).toBe(
      `pg_probackup archive-get copied WAL file ${segmentName(0x1b)}, prefetch state: 0/4`,
    );
  });

  it('without the next segment falls back to a direct copy when validating', async () => {
    copyFixtureWal(0x1b, 0x1b);
    const ctx = makeContext();
    await archiveGet(ctx, getParams(segmentName(0x1b), { batchSize: 4 }));
    expect(readFileSync(join(walDir, 'RECOVERYXLOG')).equals(fixtureSegment(0x1b))).toBe(true);
    expect(messages(ctx.records, 'LOG')).toContain(
      `pg_probackup archive-get copied WAL file ${segmentName(0x1b)}`,
    );
    expect(messages(ctx.records, 'INFO').at(-1)).toMatch(/fetched: 2\/4/);
  });
});

describe('WAL segment sources', () => {
  it('ArchiveWalSource reads .gz, plain and zero-extended .partial segments, null when absent', async () => {
    copyFileSync(
      join(FIXTURE_WAL, `${segmentName(0x08)}.gz`),
      join(archiveDir, `${segmentName(0x08)}.gz`),
    );
    writeFileSync(join(archiveDir, segmentName(0x40)), segmentBytes(40));
    writeFileSync(join(archiveDir, `${segmentName(0x41)}.partial`), segmentBytes(41, 5000));
    const source = new ArchiveWalSource(new LocalStorage(), archiveDir, SEG_SIZE);

    const fromGz = await source.readSegment(1, 0x08n);
    const expected = gunzipSync(readFileSync(join(FIXTURE_WAL, `${segmentName(0x08)}.gz`)));
    expect(Buffer.from(fromGz!).equals(expected)).toBe(true);
    // XLogLongPageHeaderData: xlp_magic 0xD110 for PostgreSQL 15, xlp_info has XLP_LONG_HEADER (2).
    expect(Buffer.from(fromGz!).readUInt16LE(0)).toBe(0xd110);
    expect(await source.readSegment(1, 0x08n)).toBe(fromGz);

    expect(Buffer.from((await source.readSegment(1, 0x40n))!).equals(segmentBytes(40))).toBe(true);
    const partial = Buffer.from((await source.readSegment(1, 0x41n))!);
    expect(partial.length).toBe(SEG_SIZE);
    expect(partial.subarray(0, 5000).equals(segmentBytes(41, 5000))).toBe(true);
    expect(partial.subarray(5000).every((b) => b === 0)).toBe(true);
    expect(await source.readSegment(1, 0x42n)).toBeNull();
    expect(await source.readSegment(2, 0x40n)).toBeNull();
  });

  it('ArchiveWalSource reports a corrupt .gz naming the file', async () => {
    writeFileSync(join(archiveDir, `${segmentName(0x43)}.gz`), Buffer.from('not gzip at all'));
    const source = new ArchiveWalSource(new LocalStorage(), archiveDir, SEG_SIZE);
    await expect(source.readSegment(1, 0x43n)).rejects.toThrow(
      `Cannot read compressed WAL file "${join(archiveDir, segmentName(0x43))}.gz"`,
    );
  });

  it('DirectoryWalSource reads plain segments and returns null for missing ones', async () => {
    writeFileSync(join(walDir, segmentName(0x50)), segmentBytes(50));
    const source = new DirectoryWalSource(new LocalStorage(), walDir, SEG_SIZE);
    expect(Buffer.from((await source.readSegment(1, 0x50n))!).equals(segmentBytes(50))).toBe(true);
    expect(await source.readSegment(1, 0x51n)).toBeNull();
  });
});

describe('waitForArchivedSegment', () => {
  it('returns once the segment appears, compressed or not', async () => {
    const name = segmentName(0x60);
    setTimeout(() => writeFileSync(join(archiveDir, `${name}.gz`), 'x'), 250);
    const ctx = makeContext();
    await waitForArchivedSegment(ctx, {
      walDir: archiveDir,
      segmentName: name,
      timeoutSec: 10,
      messageHint: true,
    });
    expect(messages(ctx.records, 'INFO')).toEqual([
      `Wait for WAL segment ${join(archiveDir, name)} to be archived`,
    ]);
    expect(messages(ctx.records, 'LOG')).toContain(
      `Found compressed WAL segment: ${join(archiveDir, name)}`,
    );
  });

  it('times out with pg_probackup message', async () => {
    const ctx = makeContext();
    const error = await rejection(
      waitForArchivedSegment(ctx, {
        walDir: archiveDir,
        segmentName: segmentName(0x61),
        timeoutSec: 1,
        messageHint: false,
      }),
    );
    expect(error.message).toBe(
      `WAL segment ${segmentName(0x61)} could not be archived in 1 seconds`,
    );
  });

  it('gives the --stream hint after 30 s on a moving clock', async () => {
    let fakeNowMs = 0;
    const logger = createMemoryLogger();
    const ctx: CommandContext = {
      storage: new LocalStorage(),
      logger,
      now: () => (fakeNowMs += 5000),
    };
    const error = await rejection(
      waitForArchivedSegment(ctx, {
        walDir: archiveDir,
        segmentName: segmentName(0x62),
        timeoutSec: 40,
        messageHint: true,
      }),
    );
    expect(error.message).toContain('could not be archived in 40 seconds');
    expect(messages(logger.records, 'WARNING')).toHaveLength(1);
    expect(messages(logger.records, 'WARNING')[0]).toContain("use '--stream' option");
  });

  it('names an archive directory that does not exist', async () => {
    const missing = join(catalog, 'wal', 'other');
    const error = await rejection(
      waitForArchivedSegment(makeContext(), {
        walDir: missing,
        segmentName: segmentName(1),
        timeoutSec: 1,
        messageHint: false,
      }),
    );
    expect(error.message).toBe(
      `WAL archive directory is not accessible "${missing}": No such file or directory`,
    );
  });
});
