import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { probackupFixtureDir } from '../../testing/pgBinaries.js';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { releaseAllBackupLocks } from '../../catalog/locks.js';
import { readPageHeaderSlice } from '../../catalog/pageHeaderMap.js';
import type { FileEntry } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import { parseLsn } from '../../format/lsn.js';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { DirectoryWalSource } from '../archive/walSources.js';
import type { CommandContext } from '../context.js';
import { validateBackupFiles } from './backupFiles.js';
import { validateBackupWal } from './backupWal.js';
import { validateBackup } from './validateBackup.js';
import { validateCommand } from './validateCommand.js';
import { validateForRestore } from './validateForRestore.js';
import { validateInstance } from './validateInstance.js';

process.env.TZ = 'UTC';

const fixtureRoot = probackupFixtureDir;
/** The fixture cluster was initialised with --wal-segsize=1. */
const WAL_SEGMENT_BYTES = 1024 * 1024;
const storage = new LocalStorage();

let root: string;
let catalogPath: string;
let catalog: BackupCatalog;
let instanceDir: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'strata-validate-'));
  catalogPath = join(root, 'catalog');
  cpSync(join(fixtureRoot, 'catalog'), catalogPath, { recursive: true });
  // The fixture is read-only; the copy must take locks and status changes.
  execFileSync('chmod', ['-R', 'u+w', catalogPath]);
  catalog = new BackupCatalog(storage, catalogPath);
  instanceDir = join(catalogPath, 'backups', 'demo');
});

afterEach(async () => {
  await releaseAllBackupLocks();
  rmSync(root, { recursive: true, force: true });
});

function context() {
  const logger = createMemoryLogger();
  const ctx: CommandContext = { storage, logger, now: () => Date.now() };
  const messages = (level?: string) =>
    logger.records
      .filter((record) => level === undefined || record.level === level)
      .map((record) => record.message);
  return { ctx, logger, messages };
}

async function backup(id: string): Promise<CatalogBackup> {
  const found = await catalog.readBackup('demo', id);
  if (!found) throw new Error(`fixture backup ${id} is missing`);
  return found;
}

function statusOnDisk(id: string): string {
  return /^status = (\S+)$/m.exec(
    readFileSync(join(instanceDir, id, 'backup.control'), 'utf8'),
  )![1]!;
}

function setStatusOnDisk(id: string, status: string): void {
  const path = join(instanceDir, id, 'backup.control');
  writeFileSync(path, readFileSync(path, 'utf8').replace(/^status = \S+$/m, `status = ${status}`));
}

/** A data file of the backup with at least two stored pages, and the map entry of its second page. */
async function storedPage(
  id: string,
): Promise<{ entry: FileEntry; path: string; block: number; pos: number; payloadBytes: number }> {
  const target = await backup(id);
  const entries = await catalog.readContentList(target);
  for (const entry of entries) {
    if (!entry.isDatafile || (entry.nHeaders ?? 0) < 2) continue;
    const headers = await readPageHeaderSlice(storage, join(target.dir, 'page_header_map'), entry);
    const second = headers[1]!;
    return {
      entry,
      path: join(target.dir, 'database', entry.path),
      block: second.block,
      pos: second.pos,
      payloadBytes: headers[2]!.pos - second.pos - 8,
    };
  }
  throw new Error(`backup ${id} has no data file with two pages`);
}

function flipByte(path: string, offset: number): void {
  const bytes = readFileSync(path);
  bytes[offset] = bytes[offset]! ^ 0xff;
  writeFileSync(path, bytes);
}

const validateParams = (target: CatalogBackup, threads = 1) => ({
  catalog,
  instance: 'demo',
  backup: target,
  threads,
  skipBlockValidation: false,
  walSegmentSizeBytes: WAL_SEGMENT_BYTES,
});

describe('validateBackup on the pg_probackup 2.5.16 fixture', () => {
  it.each([
    ['TP11R6', 'zlib FULL'],
    ['TP11RH', 'pglz DELTA'],
    ['TP11RT', 'uncompressed PAGE'],
  ])('finds %s (%s) valid: data files and WAL', async (id) => {
    const { ctx, messages } = context();
    expect(await validateBackup(ctx, validateParams(await backup(id), 2))).toBe('OK');
    expect(messages()).toEqual([
      `Validating backup ${id}`,
      `Backup ${id} data files are valid`,
      `Backup ${id} WAL segments are valid`,
    ]);
    expect(statusOnDisk(id)).toBe('OK');
    expect(existsSync(join(instanceDir, id, 'backup_ro.pid'))).toBe(false);
  });

  it('checks every regular file of the list, page by page for data files', async () => {
    const { ctx } = context();
    const result = await validateBackupFiles(ctx, {
      catalog,
      instance: 'demo',
      backup: await backup('TP11R6'),
      threads: 4,
      skipBlockValidation: false,
    });
    expect(result).toEqual({ ok: true, problems: [] });
  });

  it('names the file and block of a damaged zlib page', async () => {
    const page = await storedPage('TP11R6');
    flipByte(page.path, page.pos + 8 + Math.floor(page.payloadBytes / 2));
    const { ctx, messages } = context();
    expect(await validateBackup(ctx, validateParams(await backup('TP11R6')))).toBe('CORRUPT');
    const warnings = messages('WARNING');
    expect(warnings).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^Corruption detected in file "${page.path}", block ${page.block}: cannot decompress the zlib page`,
        ),
      ),
    );
    expect(warnings).toContainEqual(
      expect.stringMatching(new RegExp(`^Invalid CRC of backup file "${page.path}": `)),
    );
    expect(warnings.at(-1)).toBe('Backup TP11R6 data files are corrupted');
    expect(statusOnDisk('TP11R6')).toBe('CORRUPT');
  });

  it('reports a page checksum mismatch of an uncompressed page with the block number', async () => {
    const page = await storedPage('TP11RT');
    expect(page.payloadBytes).toBe(8192);
    flipByte(page.path, page.pos + 8 + 4000);
    const { ctx, messages } = context();
    const result = await validateBackupFiles(ctx, {
      catalog,
      instance: 'demo',
      backup: await backup('TP11RT'),
      threads: 1,
      skipBlockValidation: false,
    });
    expect(result.ok).toBe(false);
    expect(result.problems[0]).toMatch(
      new RegExp(
        `^Corruption detected in file "${page.path}", block ${page.block}: page verification failed, calculated checksum \\d+ but expected \\d+$`,
      ),
    );
    expect(messages('WARNING')).toEqual(result.problems);
  });

  it('with --skip-block-validation checks the data file by its CRC only', async () => {
    const page = await storedPage('TP11RT');
    flipByte(page.path, page.pos + 8 + 4000);
    const { ctx } = context();
    const result = await validateBackupFiles(ctx, {
      catalog,
      instance: 'demo',
      backup: await backup('TP11RT'),
      threads: 1,
      skipBlockValidation: true,
    });
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatch(
      new RegExp(`^Invalid CRC of backup file "${page.path}" : [0-9A-F]+\\. Expected [0-9A-F]+$`),
    );
  });

  it('reports a truncated file by its size', async () => {
    const path = join(instanceDir, 'TP11R6', 'database', 'postgresql.conf');
    truncateSync(path, 100);
    const { ctx, messages } = context();
    expect(await validateBackup(ctx, validateParams(await backup('TP11R6')))).toBe('CORRUPT');
    expect(messages('WARNING')).toEqual([
      `Invalid size of backup file "${path}" : 100. Expected 29916`,
      'Backup TP11R6 data files are corrupted',
    ]);
  });

  it('reports a missing file', async () => {
    const path = join(instanceDir, 'TP11RH', 'database', 'backup_label');
    rmSync(path);
    const { ctx, messages } = context();
    expect(await validateBackup(ctx, validateParams(await backup('TP11RH')))).toBe('CORRUPT');
    expect(messages('WARNING')[0]).toBe(`Backup file "${path}" is not found`);
  });

  it('checks global/pg_control by the CRC stored inside it', async () => {
    flipByte(join(instanceDir, 'TP11RT', 'database', 'global', 'pg_control'), 40);
    const { ctx, messages } = context();
    expect(await validateBackup(ctx, validateParams(await backup('TP11RT')))).toBe('CORRUPT');
    expect(messages('WARNING')[0]).toMatch(
      /global\/pg_control": the CRC stored in pg_control does not match its contents$/,
    );
  });

  it('marks the backup CORRUPT when its file list does not match content-crc', async () => {
    const listPath = join(instanceDir, 'TP11RH', 'backup_content.control');
    writeFileSync(
      listPath,
      readFileSync(listPath, 'utf8').replace('"mode":"33152"', '"mode":"33188"'),
    );
    const { ctx, messages } = context();
    expect(await validateBackup(ctx, validateParams(await backup('TP11RH')))).toBe('CORRUPT');
    expect(messages('WARNING')).toContain('Backup TP11RH file list is corrupted');
    expect(statusOnDisk('TP11RH')).toBe('CORRUPT');
  });

  it('turns a RUNNING backup whose owner is gone into ERROR', async () => {
    setStatusOnDisk('TP11RT', 'RUNNING');
    const { ctx, messages } = context();
    expect(await validateBackup(ctx, validateParams(await backup('TP11RT')))).toBe('ERROR');
    expect(messages('WARNING')).toEqual([
      'Backup TP11RT has status RUNNING, change it to ERROR and skip validation',
    ]);
    expect(statusOnDisk('TP11RT')).toBe('ERROR');
  });

  it('revalidates a CORRUPT backup back to OK once it is whole', async () => {
    setStatusOnDisk('TP11R6', 'CORRUPT');
    const { ctx, messages } = context();
    expect(await validateBackup(ctx, validateParams(await backup('TP11R6')))).toBe('OK');
    expect(messages('INFO')[0]).toBe('Revalidating backup TP11R6');
    expect(statusOnDisk('TP11R6')).toBe('OK');
  });
});

describe('validateBackupWal', () => {
  it('fails without the WAL from start-lsn to stop-lsn', async () => {
    const emptyDir = join(root, 'no-wal');
    execFileSync('mkdir', [emptyDir]);
    const { ctx, messages } = context();
    const ok = await validateBackupWal(ctx, {
      backup: await backup('TP11RH'),
      walSource: new DirectoryWalSource(storage, emptyDir, WAL_SEGMENT_BYTES),
      walSegmentSizeBytes: WAL_SEGMENT_BYTES,
    });
    expect(ok).toBe(false);
    expect(messages('WARNING').at(-1)).toBe(
      'There are not enough WAL records to consistenly restore backup TP11RH from START LSN: 0/1600028 to STOP LSN: 0/1600168',
    );
  });

  it('reads the WAL a STREAM backup carries', async () => {
    const target = await backup('TP11RT');
    const { ctx } = context();
    const ok = await validateBackupWal(ctx, {
      backup: target,
      walSource: new DirectoryWalSource(
        storage,
        join(target.dir, 'database', 'pg_wal'),
        WAL_SEGMENT_BYTES,
      ),
      walSegmentSizeBytes: WAL_SEGMENT_BYTES,
    });
    expect(ok).toBe(true);
  });
});

describe('validateInstance', () => {
  it('validates every backup newest first and ends with All backups are valid', async () => {
    const { ctx, messages } = context();
    expect(
      await validateInstance(ctx, {
        backupPath: catalogPath,
        instance: 'demo',
        threads: 2,
        skipBlockValidation: false,
      }),
    ).toEqual({
      allValid: true,
    });
    expect(messages('INFO')).toEqual([
      "Validate backups of the instance 'demo'",
      ...['TP11RT', 'TP11RH', 'TP11R6'].flatMap((id) => [
        `Validating backup ${id}`,
        `Backup ${id} data files are valid`,
        `Backup ${id} WAL segments are valid`,
      ]),
      'All backups are valid',
    ]);
  });

  it('orphans the incrementals of a deleted FULL backup', async () => {
    rmSync(join(instanceDir, 'TP11R6'), { recursive: true });
    const { ctx, messages } = context();
    expect(
      await validateInstance(ctx, {
        backupPath: catalogPath,
        threads: 1,
        skipBlockValidation: false,
      }),
    ).toEqual({
      allValid: false,
    });
    expect(messages('WARNING')).toEqual([
      'Backup TP11RT is orphaned because his parent TP11R6 is missing',
      'Backup TP11RH is orphaned because his parent TP11R6 is missing',
      'Some backups are not valid',
    ]);
    expect(statusOnDisk('TP11RT')).toBe('ORPHAN');
    expect(statusOnDisk('TP11RH')).toBe('ORPHAN');
  });

  it('orphans the descendants of a corrupt FULL and re-validates them once it is repaired', async () => {
    const path = join(instanceDir, 'TP11R6', 'database', 'PG_VERSION');
    const original = readFileSync(path);
    writeFileSync(path, '99\n');
    const first = context();
    expect(
      (
        await validateInstance(first.ctx, {
          backupPath: catalogPath,
          instance: 'demo',
          threads: 1,
          skipBlockValidation: false,
        })
      ).allValid,
    ).toBe(false);
    expect(first.messages('WARNING')).toContain(
      'Backup TP11RH is orphaned because his parent TP11R6 has status: CORRUPT',
    );
    expect(first.messages('WARNING')).toContain(
      'Backup TP11RT is orphaned because his parent TP11R6 has status: CORRUPT',
    );
    expect(['TP11R6', 'TP11RH', 'TP11RT'].map(statusOnDisk)).toEqual([
      'CORRUPT',
      'ORPHAN',
      'ORPHAN',
    ]);

    writeFileSync(path, original);
    const second = context();
    expect(
      await validateInstance(second.ctx, {
        backupPath: catalogPath,
        instance: 'demo',
        threads: 1,
        skipBlockValidation: false,
      }),
    ).toEqual({
      allValid: true,
    });
    expect(second.messages('INFO')).toEqual([
      "Validate backups of the instance 'demo'",
      'Revalidating backup TP11R6',
      'Backup TP11R6 data files are valid',
      'Backup TP11R6 WAL segments are valid',
      'Revalidating backup TP11RH',
      'Backup TP11RH data files are valid',
      'Backup TP11RH WAL segments are valid',
      'Revalidating backup TP11RT',
      'Backup TP11RT data files are valid',
      'Backup TP11RT WAL segments are valid',
      'All backups are valid',
    ]);
    expect(['TP11R6', 'TP11RH', 'TP11RT'].map(statusOnDisk)).toEqual(['OK', 'OK', 'OK']);
  });

  it('counts an instance without configuration as invalid', async () => {
    rmSync(join(instanceDir, 'pg_probackup.conf'));
    const { ctx, messages } = context();
    expect(
      (
        await validateInstance(ctx, {
          backupPath: catalogPath,
          threads: 1,
          skipBlockValidation: false,
        })
      ).allValid,
    ).toBe(false);
    expect(messages('WARNING')).toEqual([
      `Configuration file "${join(instanceDir, 'pg_probackup.conf')}" is empty`,
      'Some backups are not valid',
    ]);
  });
});

describe('validateForRestore', () => {
  async function chain(): Promise<CatalogBackup[]> {
    const backups = await catalog.listBackups('demo');
    return catalog.resolveBackupChain(backups, 'TP11RT').chain;
  }

  const restoreParams = (
    members: CatalogBackup[],
    target?: { time?: number; xid?: bigint; lsn?: bigint },
  ) => ({
    catalog,
    instance: 'demo',
    chain: members,
    ...(target ? { target } : {}),
    threads: 2,
    skipBlockValidation: false,
    walSegmentSizeBytes: WAL_SEGMENT_BYTES,
  });

  it('validates the chain FULL first, then the WAL of the target backup', async () => {
    const { ctx, messages } = context();
    await validateForRestore(ctx, restoreParams(await chain()));
    expect(messages('INFO')).toEqual([
      'Validating parents for backup TP11RT',
      'Validating backup TP11R6',
      'Backup TP11R6 data files are valid',
      'Validating backup TP11RH',
      'Backup TP11RH data files are valid',
      'Validating backup TP11RT',
      'Backup TP11RT data files are valid',
      'Backup TP11RT WAL segments are valid',
    ]);
  });

  it('orphans the chain above a corrupt FULL and refuses the target', async () => {
    writeFileSync(join(instanceDir, 'TP11R6', 'database', 'PG_VERSION'), '99\n');
    const members = await chain();
    const { ctx, messages } = context();
    const error = await validateForRestore(ctx, restoreParams(members)).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(StrataError);
    expect((error as StrataError).message).toBe('Backup TP11RT is orphan.');
    expect(messages('WARNING')).toContain(
      'Backup TP11RT is orphaned because his parent TP11R6 has status: CORRUPT',
    );
    expect(members.map((member) => member.status)).toEqual(['CORRUPT', 'ORPHAN', 'ORPHAN']);
    expect(statusOnDisk('TP11RH')).toBe('ORPHAN');
  });

  it('confirms an LSN target that the archive reaches', async () => {
    const { ctx, messages } = context();
    await validateForRestore(ctx, restoreParams(await chain(), { lsn: parseLsn('0/1A00100') }));
    expect(messages('INFO')).not.toContain('Backup TP11RT WAL segments are valid');
    expect(messages('INFO').at(-1)).toMatch(
      /^Backup validation completed successfully on time 2026-11-24 22:14:19\+00, xid 730 and LSN 0\/1A0[0-9A-F]{4}$/,
    );
  });

  it('confirms a time target before the recovery time without reading the archive', async () => {
    const members = await chain();
    const { ctx, messages } = context();
    await validateForRestore(ctx, restoreParams(members, { time: members[2]!.recoveryTime - 1 }));
    expect(messages('INFO').at(-1)).toBe(
      'Backup validation completed successfully on time 2026-11-24 22:14:19+00, xid 730 and LSN 0/19000B8',
    );
  });

  it('fails an LSN target beyond the archive', async () => {
    const { ctx, messages } = context();
    const error = await validateForRestore(
      ctx,
      restoreParams(await chain(), { lsn: parseLsn('0/1C00100') }),
    ).catch((caught: unknown) => caught);
    expect((error as StrataError).message).toBe('Not enough WAL records to lsn 0/1C00100');
    expect(messages('WARNING').at(-1)).toBe(
      'Recovery can be done up to time 2026-11-24 22:14:19+00, xid 730 and LSN 0/1B77CC0',
    );
  });

  it('refuses a recovery target without a WAL archive', async () => {
    for (const name of readdirSync(join(catalogPath, 'wal', 'demo')))
      rmSync(join(catalogPath, 'wal', 'demo', name));
    const { ctx } = context();
    const error = await validateForRestore(ctx, restoreParams(await chain(), { xid: 999n })).catch(
      (caught: unknown) => caught,
    );
    expect((error as StrataError).message).toBe(
      'WAL archive is empty. You cannot restore backup to a recovery target without WAL archive.',
    );
  });
});

describe('validateCommand', () => {
  it('validates one backup with -i and ends with Validate of backup … completed.', async () => {
    const { ctx, messages } = context();
    expect(
      await validateCommand(ctx, {
        backupPath: catalogPath,
        instance: 'demo',
        backupId: 'TP11RH',
        target: {},
        threads: 1,
        skipBlockValidation: false,
      }),
    ).toBe(true);
    expect(messages('INFO').slice(-3)).toEqual([
      'Backup TP11RH WAL segments are valid',
      'Backup TP11RH is valid.',
      'Validate of backup TP11RH completed.',
    ]);
  });
});
