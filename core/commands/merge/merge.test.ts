import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupIdFromTime, decodeBackupIdPrefix } from '../../catalog/backupId.js';
import { BackupCatalog } from '../../catalog/catalog.js';
import { isStrataError } from '../../errors.js';
import { createMemoryLogger } from '../../log.js';
import type { LogRecord } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import type { Storage } from '../../storage/storage.js';
import { TestCluster, startRestoredCluster } from '../../testing/cluster.js';
import { fingerprintCluster } from '../../testing/data.js';
import { probackupFixtureDir, strataCliPath } from '../../testing/pgBinaries.js';
import type { CommandContext } from '../context.js';
import { restoreBackup } from '../restore/restore.js';
import { mergeBackup } from './merge.js';
import type { MergeParams } from './merge.js';

/** The pg_probackup 2.5.16 catalog: TP11R6 FULL zlib ← TP11RH DELTA pglz ← TP11RT PAGE none. */
const FIXTURE = join(probackupFixtureDir, 'catalog');
const INSTANCE = 'demo';
const ORDERS_SQL =
  "select count(*)::text || '|' || md5(string_agg(id||note, ',' order by id)) as v from orders";
const STAFF_SQL =
  "select count(*)::text || '|' || md5(string_agg(id||name, ',' order by id)) as v from staff";
/** The fixture README's values after restoring TP11RT. */
const TP11RT_ORDERS = '21000|cac68294542a06cc0958659e4e30bb3b';
const TP11RH_ORDERS_COUNT = '20000';
const STAFF = '2000|5dbb900eb98bac66cc40f18e766e5c12';

let base: string;
/** PGDATA restored from the untouched fixture's TP11RT and TP11RH: what a merge must reproduce. */
let referenceRt: string;
let referenceRh: string;

function context(storage: Storage = new LocalStorage()): {
  ctx: CommandContext;
  records: LogRecord[];
} {
  const logger = createMemoryLogger();
  return { ctx: { storage, logger, now: () => Date.now() }, records: logger.records };
}

function mergeParams(
  backupPath: string,
  backupId: string,
  overrides: Partial<MergeParams> = {},
): MergeParams {
  return {
    backupPath,
    instance: INSTANCE,
    backupId,
    threads: 4,
    noValidate: false,
    noSync: false,
    progress: false,
    ...overrides,
  };
}

let copies = 0;
/** A private, writable copy of the fixture catalog. */
function copyCatalog(): string {
  const path = join(base, `catalog-${++copies}`);
  cpSync(FIXTURE, path, { recursive: true });
  execFileSync('chmod', ['-R', 'u+w', path]);
  return path;
}

function instanceDir(catalogPath: string): string {
  return join(catalogPath, 'backups', INSTANCE);
}

async function restoreTo(catalogPath: string, backupId: string, pgdata: string): Promise<void> {
  const { ctx } = context();
  await restoreBackup(ctx, {
    backupPath: catalogPath,
    instance: INSTANCE,
    pgdata,
    backupId,
    target: {},
    restoreAsReplica: false,
    noValidate: false,
    force: false,
    skipBlockValidation: false,
    threads: 4,
    noSync: true,
    strataCommandPath: `"${process.execPath}" "${strataCliPath}"`,
    progress: false,
  });
}

/** Relative path → bytes of every file under `dir` (the recovery settings name the catalog: left out). */
function treeContents(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(dir, relative), { withFileTypes: true })) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (path !== 'postgresql.auto.conf') files.set(path, readFileSync(join(dir, path)));
    }
  };
  walk('');
  return files;
}

/** Asserts two restored data directories hold the same files with the same bytes. */
function expectSameTree(actualDir: string, expectedDir: string): void {
  const actual = treeContents(actualDir);
  const expected = treeContents(expectedDir);
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  const differing = [...expected].filter(([path, bytes]) => !actual.get(path)!.equals(bytes));
  expect(differing.map(([path]) => path)).toEqual([]);
}

function backupDirs(catalogPath: string): string[] {
  return readdirSync(instanceDir(catalogPath), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'strata-merge-'));
  const pristine = copyCatalog();
  referenceRt = join(base, 'reference-rt');
  referenceRh = join(base, 'reference-rh');
  await restoreTo(pristine, 'TP11RT', referenceRt);
  await restoreTo(pristine, 'TP11RH', referenceRh);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('merge of the pg_probackup 2.5.16 fixture chain', () => {
  it('merges TP11RT with its chain into one FULL backup TP11RT that restores the README data', async () => {
    const catalogPath = copyCatalog();
    const { ctx, records } = context();
    await expect(mergeBackup(ctx, mergeParams(catalogPath, 'TP11RT'))).resolves.toEqual({
      mergedId: 'TP11RT',
    });
    const info = records.filter((r) => r.level !== 'LOG').map((r) => `${r.level}: ${r.message}`);
    expect(info[0]).toBe('INFO: Merge started');
    expect(info).toContain('INFO: Merging backup TP11RT with parent chain');
    expect(info).toContain(
      'WARNING: In-place merge is disabled because of compression algorithms mismatch',
    );
    expect(info).toContain('INFO: Validate parent chain for backup TP11RT');
    expect(info).toContain('INFO: Start merging backup files');
    expect(
      info.some((line) =>
        /^INFO: Backup files are successfully merged, time elapsed: \S+$/.test(line),
      ),
    ).toBe(true);
    expect(info).toContain('INFO: Rename merged full backup TP11R6 to TP11RT');
    expect(info.at(-1)).toBe('INFO: Merge of backup TP11RT completed');
    // The member next to the FULL is deleted first, the destination last.
    const deletes = info.filter((line) => line.startsWith('INFO: Delete: '));
    expect(deletes.map((line) => line.split(' ')[2])).toEqual(['TP11RH', 'TP11RT']);

    expect(backupDirs(catalogPath)).toEqual(['TP11RT']);
    const catalog = new BackupCatalog(new LocalStorage(), catalogPath);
    const [merged] = await catalog.listBackups(INSTANCE);
    expect(merged).toMatchObject({
      id: 'TP11RT',
      backupMode: 'FULL',
      status: 'OK',
      parentBackupId: undefined,
      mergeDestId: undefined,
      // The destination's recovery point, compression and (absent) note; the FULL's note is gone.
      startLsn: 0x1800028n,
      stopLsn: 0x19000b8n,
      recoveryXid: 730n,
      compressAlg: 'none',
      note: undefined,
      stream: true,
      programVersion: '2.5.0',
      problems: [],
    });
    expect(merged!.startTime).toBe(decodeBackupIdPrefix('TP11RT'));
    expect(merged!.mergeTime).toBeGreaterThan(0);
    const entries = await catalog.readContentList(merged!);
    // Every data file was rebuilt in the destination's compression (none): no compressed page left.
    expect(
      entries.filter((e) => e.isDatafile && e.size > 0).every((e) => e.compressAlg === 'none'),
    ).toBe(true);
    expect(entries.some((e) => e.size === -1)).toBe(false);
    const root = join(instanceDir(catalogPath), 'TP11RT');
    expect(readdirSync(root).sort()).toEqual([
      'backup.control',
      'backup_content.control',
      'database',
      'page_header_map',
    ]);

    // The merged backup restores exactly what TP11RT restored from the three-backup chain.
    const pgdata = join(base, 'merged-rt');
    await restoreTo(catalogPath, 'TP11RT', pgdata);
    expectSameTree(pgdata, referenceRt);
    const server = await startRestoredCluster(15, pgdata);
    try {
      expect((await server.query<{ v: string }>('sales', ORDERS_SQL))[0]!.v).toBe(TP11RT_ORDERS);
      expect((await server.query<{ v: string }>('hr', STAFF_SQL))[0]!.v).toBe(STAFF);
    } finally {
      await server.destroy();
    }
  });

  it('merges a FULL with its only child when -i names the FULL (pglz destination)', async () => {
    const catalogPath = copyCatalog();
    rmSync(join(instanceDir(catalogPath), 'TP11RT'), { recursive: true });
    const { ctx, records } = context();
    await expect(mergeBackup(ctx, mergeParams(catalogPath, 'tp11r6'))).resolves.toEqual({
      mergedId: 'TP11RH',
    });
    const info = records.filter((r) => r.level === 'INFO').map((r) => r.message);
    expect(info).toContain('Merge target backup TP11R6 is full backup');
    expect(info).toContain('Looking for closest incremental backup to merge with');
    expect(backupDirs(catalogPath)).toEqual(['TP11RH']);
    const catalog = new BackupCatalog(new LocalStorage(), catalogPath);
    const [merged] = await catalog.listBackups(INSTANCE);
    expect(merged).toMatchObject({
      id: 'TP11RH',
      backupMode: 'FULL',
      status: 'OK',
      compressAlg: 'pglz',
    });
    const pgdata = join(base, 'merged-rh');
    await restoreTo(catalogPath, 'TP11RH', pgdata);
    expectSameTree(pgdata, referenceRh);
    const server = await startRestoredCluster(15, pgdata);
    try {
      const orders = (await server.query<{ v: string }>('sales', ORDERS_SQL))[0]!.v;
      expect(orders.split('|')[0]).toBe(TP11RH_ORDERS_COUNT);
    } finally {
      await server.destroy();
    }
  });
});

/** Rewrites keys of a backup's backup.control (`key = value` lines); a value of undefined drops the key. */
function editControl(
  catalogPath: string,
  backupId: string,
  changes: Record<string, string | undefined>,
): void {
  const path = join(instanceDir(catalogPath), backupId, 'backup.control');
  let text = readFileSync(path, 'utf8');
  for (const [key, value] of Object.entries(changes)) {
    const line = new RegExp(`^${key} = .*\\n`, 'm');
    if (value === undefined) text = text.replace(line, '');
    else if (line.test(text)) text = text.replace(line, `${key} = ${value}\n`);
    else text = text.replace(/^status = .*\n/m, (status) => `${status}${key} = ${value}\n`);
  }
  writeFileSync(path, text);
}

async function mergeError(catalogPath: string, backupId: string): Promise<string> {
  const { ctx } = context();
  try {
    await mergeBackup(ctx, mergeParams(catalogPath, backupId));
  } catch (error) {
    if (isStrataError(error)) return error.message;
    throw error;
  }
  throw new Error(`merge -i ${backupId} succeeded`);
}

describe('merge eligibility (cli-behaviour.md §8.1)', () => {
  it('refuses an ID that is not in the catalog, or not an ID', async () => {
    const catalogPath = copyCatalog();
    expect(await mergeError(catalogPath, 'TP11RZ')).toBe('Target backup TP11RZ was not found');
    expect(await mergeError(catalogPath, '***')).toBe('Invalid backup-id "***"');
  });

  it('refuses a FULL with two valid children, and a FULL with none', async () => {
    const catalogPath = copyCatalog();
    // A second child of TP11R6: TP11RT's copy re-dated one second after TP11RH, parented on the FULL.
    const siblingTime = decodeBackupIdPrefix('TP11RH') + 1;
    const siblingId = backupIdFromTime(siblingTime);
    cpSync(join(instanceDir(catalogPath), 'TP11RT'), join(instanceDir(catalogPath), siblingId), {
      recursive: true,
    });
    editControl(catalogPath, siblingId, {
      'start-time': `'${new Date(siblingTime * 1000).toISOString().slice(0, 19).replace('T', ' ')}+00'`,
      'parent-backup-id': "'TP11R6'",
    });
    expect(await mergeError(catalogPath, 'TP11R6')).toBe(
      'Merge target is full backup and has multiple direct children, you must specify child backup id you want to merge with',
    );

    const lonely = copyCatalog();
    rmSync(join(instanceDir(lonely), 'TP11RH'), { recursive: true });
    rmSync(join(instanceDir(lonely), 'TP11RT'), { recursive: true });
    expect(await mergeError(lonely, 'TP11R6')).toBe(
      'Failed to find merge candidate, backup TP11R6 has no valid children',
    );
  });

  it('refuses a target or member with a status merge cannot use, and a FULL merging with another backup', async () => {
    const catalogPath = copyCatalog();
    editControl(catalogPath, 'TP11RT', { status: 'ERROR' });
    expect(await mergeError(catalogPath, 'TP11RT')).toBe('Backup TP11RT has status: ERROR');
    editControl(catalogPath, 'TP11RT', { status: 'OK' });
    editControl(catalogPath, 'TP11RH', { status: 'ORPHAN' });
    expect(await mergeError(catalogPath, 'TP11RT')).toBe('Backup TP11RH has status: ORPHAN');
    editControl(catalogPath, 'TP11RH', { status: 'OK' });
    editControl(catalogPath, 'TP11R6', { status: 'MERGING', 'merge-dest-id': "'TP11RH'" });
    expect(await mergeError(catalogPath, 'TP11RT')).toBe(
      'Full backup TP11R6 has unfinished merge with backup TP11RH',
    );
    editControl(catalogPath, 'TP11R6', { status: 'MERGING', 'merge-dest-id': undefined });
    expect(await mergeError(catalogPath, 'TP11R6')).toBe(
      'Failed to determine merge destination backup',
    );
  });

  it('refuses an incremental whose parent is missing', async () => {
    const catalogPath = copyCatalog();
    rmSync(join(instanceDir(catalogPath), 'TP11RH'), { recursive: true });
    expect(await mergeError(catalogPath, 'TP11RT')).toBe(
      'Failed to find parent full backup for TP11RT',
    );
  });

  it('validates the chain first and changes nothing when a member is corrupt', async () => {
    const catalogPath = copyCatalog();
    const catalog = new BackupCatalog(new LocalStorage(), catalogPath);
    const delta = (await catalog.listBackups(INSTANCE)).find((b) => b.id === 'TP11RH')!;
    const damaged = (await catalog.readContentList(delta)).find(
      (e) => e.isDatafile && e.size > 100,
    )!;
    const path = join(instanceDir(catalogPath), 'TP11RH', 'database', damaged.path);
    const bytes = readFileSync(path);
    bytes[50] = bytes[50]! ^ 0xff;
    writeFileSync(path, bytes);
    expect(await mergeError(catalogPath, 'TP11RT')).toBe(
      'Backup TP11RH has status CORRUPT, merge is aborted',
    );
    const statuses = Object.fromEntries(
      (await catalog.listBackups(INSTANCE)).map((b) => [b.id, b.status]),
    );
    expect(statuses).toEqual({ TP11R6: 'OK', TP11RH: 'CORRUPT', TP11RT: 'OK' });
    expect(existsSync(join(instanceDir(catalogPath), 'TP11R6', 'page_header_map_tmp'))).toBe(false);
  });
});

describe('merge of a Strata FULL ← DELTA chain with the same compression (in-place merge)', () => {
  it('keeps unchanged files in place, cuts a truncated relation, drops deleted files, and restores equal data', async () => {
    const cluster = await TestCluster.create({ major: 15 });
    const catalogPath = join(base, 'strata-catalog');
    const restored = join(base, 'strata-merged');
    const cli = (args: string[]) => {
      const result = spawnSync(process.execPath, [strataCliPath, ...args], { encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`strata ${args.join(' ')}:\n${result.stderr}`);
      return result.stderr;
    };
    try {
      cli(['init', '-B', catalogPath]);
      cli(['add-instance', '-B', catalogPath, '--instance', INSTANCE, '-D', cluster.dataDir]);
      await cluster.start();
      await cluster.withClient('postgres', async (client) => {
        await client.query(`
          CREATE TABLE untouched (id int, pad text);
          INSERT INTO untouched SELECT g, repeat('u', 200) FROM generate_series(1, 20000) g;
          CREATE TABLE shrinking (id int, pad text);
          INSERT INTO shrinking SELECT g, repeat('s', 200) FROM generate_series(1, 20000) g;
          CREATE TABLE dropped (id int, pad text);
          INSERT INTO dropped SELECT g, repeat('d', 200) FROM generate_series(1, 5000) g;`);
        // Frozen before the FULL: reading `untouched` later must not set hint bits (and, with
        // checksums on, log new page images) that would make its pages change after the FULL.
        await client.query('VACUUM FREEZE');
        await client.query('CHECKPOINT');
      });
      const connection = cluster.connectionArgs();
      const backup = (mode: string) =>
        /INFO: Backup (\w+) completed/.exec(
          cli([
            'backup',
            '-B',
            catalogPath,
            '--instance',
            INSTANCE,
            '-b',
            mode,
            '--stream',
            '--compress-algorithm=zlib',
            ...connection,
          ]),
        )![1]!;
      const fullId = backup('FULL');
      const relationPath = async (table: string) =>
        (
          await cluster.query<{ p: string }>(
            'postgres',
            `select pg_relation_filepath('${table}') as p`,
          )
        )[0]!.p;
      const untouchedPath = await relationPath('untouched');
      const shrinkingPath = await relationPath('shrinking');
      const droppedPath = await relationPath('dropped');
      await cluster.withClient('postgres', async (client) => {
        await client.query('DELETE FROM shrinking WHERE id > 1000');
        // A separate statement: VACUUM cannot run inside the implicit transaction of a batch.
        await client.query('VACUUM shrinking');
        await client.query(`
          DROP TABLE dropped;
          CREATE TABLE created AS SELECT g AS id FROM generate_series(1, 3000) g;
          CHECKPOINT;`);
      });
      const expected = await fingerprintCluster(cluster);
      const deltaId = backup('DELTA');

      const catalog = new BackupCatalog(new LocalStorage(), catalogPath);
      const listed = await catalog.listBackups(INSTANCE);
      const fullEntries = await catalog.readContentList(listed.find((b) => b.id === fullId)!);
      const deltaEntries = await catalog.readContentList(listed.find((b) => b.id === deltaId)!);
      const entryOf = (entries: typeof fullEntries, path: string) =>
        entries.find((e) => e.path === path)!;
      expect(entryOf(deltaEntries, untouchedPath).size).toBe(-1);
      expect(entryOf(deltaEntries, shrinkingPath).nBlocks).toBeLessThan(
        entryOf(fullEntries, shrinkingPath).nBlocks!,
      );
      const untouchedStored = readFileSync(
        join(instanceDir(catalogPath), fullId, 'database', untouchedPath),
      );

      const { ctx, records } = context();
      await expect(mergeBackup(ctx, mergeParams(catalogPath, deltaId))).resolves.toEqual({
        mergedId: deltaId,
      });
      expect(
        records.some(
          (r) => r.level === 'WARNING' && r.message.startsWith('In-place merge is disabled'),
        ),
      ).toBe(false);
      expect(records.map((r) => r.message)).toContain(
        `The file didn't change since FULL backup, skip merge: "${untouchedPath}"`,
      );
      expect(backupDirs(catalogPath)).toEqual([deltaId]);

      const mergedDir = join(instanceDir(catalogPath), deltaId);
      const merged = (await catalog.listBackups(INSTANCE))[0]!;
      const mergedEntries = await catalog.readContentList(merged);
      // In place: the same stored bytes and CRC as in the FULL.
      expect(readFileSync(join(mergedDir, 'database', untouchedPath)).equals(untouchedStored)).toBe(
        true,
      );
      expect(entryOf(mergedEntries, untouchedPath)).toMatchObject({
        size: entryOf(fullEntries, untouchedPath).size,
        crc: entryOf(fullEntries, untouchedPath).crc,
        nBlocks: entryOf(fullEntries, untouchedPath).nBlocks,
        compressAlg: 'zlib',
      });
      // Truncated: only the destination's blocks are left.
      expect(entryOf(mergedEntries, shrinkingPath).nBlocks).toBe(
        entryOf(deltaEntries, shrinkingPath).nBlocks,
      );
      expect(entryOf(mergedEntries, shrinkingPath).nHeaders).toBe(
        entryOf(deltaEntries, shrinkingPath).nBlocks,
      );
      // Dropped: gone from the list and from the directory.
      expect(mergedEntries.some((e) => e.path === droppedPath)).toBe(false);
      expect(existsSync(join(mergedDir, 'database', droppedPath))).toBe(false);
      expect(cli(['validate', '-B', catalogPath, '--instance', INSTANCE])).toContain(
        'All backups are valid',
      );

      cli(['restore', '-B', catalogPath, '--instance', INSTANCE, '-D', restored]);
      await cluster.stop();
      const server = await startRestoredCluster(15, restored);
      try {
        expect(await fingerprintCluster(server)).toEqual(expected);
      } finally {
        await server.destroy();
      }
    } finally {
      await cluster.destroy();
    }
  });
});
