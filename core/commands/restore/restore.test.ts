import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrataError } from '../../errors.js';
import { createMemoryLogger } from '../../log.js';
import type { LogRecord } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { TestCluster } from '../../testing/cluster.js';
import { probackupFixtureDir, strataCliPath } from '../../testing/pgBinaries.js';
import type { CommandContext } from '../context.js';
import { restoreBackup } from './restore.js';
import type { RestoreParams } from './types.js';

/** A catalog made by pg_probackup 2.5.16 on PostgreSQL 15 with 1 MiB WAL segments (see its README). */
const FIXTURE = `${probackupFixtureDir}/catalog`;
const INSTANCE = 'demo';
const ORDERS_SQL =
  "select count(*)::text || '|' || md5(string_agg(id||note, ',' order by id)) as v from orders";
const STAFF_SQL =
  "select count(*)::text || '|' || md5(string_agg(id||name, ',' order by id)) as v from staff";
/** The first 20000 orders except the ones TP11RH's DELTA changed (id % 100 = 0): the same in all three backups. */
const UNCHANGED_ORDERS_SQL =
  "select count(*)::text || '|' || md5(string_agg(id||note, ',' order by id)) as v from orders where id <= 20000 and id % 100 <> 0";
const FAR_SQL =
  "select count(*)::text || '|' || md5(string_agg(id||v, ',' order by id)) as v from far";
const CHANGED_ORDERS_SQL = "select count(*)::text as v from orders where note = 'changed'";
/** README values after restoring TP11RT (the hr value holds for all three backups). */
const TP11RT_ORDERS = '21000|cac68294542a06cc0958659e4e30bb3b';
const STAFF = '2000|5dbb900eb98bac66cc40f18e766e5c12';

let base: string;
let catalogPath: string;
/** Rows that no backup of the chain changed, read from a TP11RT restore's server. */
let unchangedOrdersValue: string | undefined;

function context(records?: LogRecord[]): { ctx: CommandContext; records: LogRecord[] } {
  const logger = createMemoryLogger();
  return {
    ctx: { storage: new LocalStorage(), logger, now: () => Date.now() },
    records: records ?? logger.records,
  };
}

function params(pgdata: string, overrides: Partial<RestoreParams> = {}): RestoreParams {
  return {
    backupPath: catalogPath,
    instance: INSTANCE,
    pgdata,
    target: {},
    restoreAsReplica: false,
    noValidate: false,
    force: false,
    skipBlockValidation: false,
    threads: 4,
    noSync: false,
    strataCommandPath: `"${process.execPath}" "${strataCliPath}"`,
    progress: false,
    ...overrides,
  };
}

/** A private, writable copy of the fixture catalog (restore takes shared locks in it). */
function copyCatalog(name: string): string {
  const path = join(base, name);
  cpSync(FIXTURE, path, { recursive: true });
  execFileSync('chmod', ['-R', 'u+w', path]);
  return path;
}

/** Starts a restored data directory with archiving off (its postgresql.conf archives to the origin machine's catalog). */
async function startRestored(dataDir: string): Promise<TestCluster> {
  const cluster = await TestCluster.create({
    major: 15,
    dataDir,
    startSettings: { archive_mode: 'off' },
  });
  try {
    await cluster.start();
  } catch (error) {
    throw new Error(`restored cluster did not start: ${String(error)}\n${cluster.serverLog()}`);
  }
  return cluster;
}

/** Runs the built CLI (dist/strata.mjs, checked by the global setup) and returns its stderr. */
function strataCli(args: string[]): string {
  const result = spawnSync(process.execPath, [strataCliPath, ...args], { encoding: 'utf8' });
  if (result.status !== 0)
    throw new Error(`strata ${args.join(' ')} failed:\n${result.stderr}${result.stdout}`);
  return result.stderr;
}

async function value(cluster: TestCluster, database: string, sql: string): Promise<string> {
  const rows = await cluster.query<{ v: string }>(database, sql);
  return rows[0]!.v;
}

function infoMessages(records: LogRecord[]): string[] {
  return records.filter((r) => r.level === 'INFO').map((r) => r.message);
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'strata-restore-'));
  catalogPath = copyCatalog('catalog');
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('restoreBackup of the pg_probackup 2.5.16 fixture', () => {
  it('restores TP11RT (PAGE ← DELTA pglz ← FULL zlib) and the server returns the README data', async () => {
    const pgdata = join(base, 'rt');
    const { ctx, records } = context();
    await expect(restoreBackup(ctx, params(pgdata))).resolves.toMatchObject({ backupId: 'TP11RT' });

    const info = infoMessages(records);
    const start = info.indexOf('Restoring the database from backup TP11RT');
    expect(start).toBeGreaterThanOrEqual(0);
    // The chain was validated first (data files of each member, then the target's WAL).
    expect(info.indexOf('Validating parents for backup TP11RT')).toBeGreaterThanOrEqual(0);
    expect(info.indexOf('Validating parents for backup TP11RT')).toBeLessThan(start);
    expect(info[start - 1]).toBe('Backup TP11RT is valid.');
    // pgdata-bytes 39967335 + wal-bytes 2097152 of a STREAM backup, in pg_probackup's pretty_size.
    expect(info[start + 1]).toBe('Start restoring backup files. PGDATA size: 40MB');
    expect(info[start + 2]).toMatch(
      /^Backup files are restored\. Transfered bytes: \d+MB, time elapsed: \S+$/,
    );
    expect(info[start + 3]).toMatch(
      /^Restore incremental ratio \(less is better\): \d+% \(\d+MB\/40MB\)$/,
    );
    expect(info[start + 4]).toBe('Syncing restored files to disk');
    expect(info.at(-1)).toBe('Restore of backup TP11RT completed.');
    expect(records.some((r) => r.level === 'ERROR')).toBe(false);

    // Layout: PGDATA 0700, recorded modes, backup_label kept, the catalog-only files not restored.
    expect(statSync(pgdata).mode & 0o7777).toBe(0o700);
    expect(statSync(join(pgdata, 'base')).mode & 0o7777).toBe(0o700);
    expect(statSync(join(pgdata, 'global', 'pg_control')).size).toBe(8192);
    expect(statSync(join(pgdata, 'postgresql.conf')).mode & 0o7777).toBe(0o600);
    expect(readFileSync(join(pgdata, 'backup_label'), 'utf8')).toContain(
      'START WAL LOCATION: 0/1800028',
    );
    expect(existsSync(join(pgdata, 'database_map'))).toBe(false);
    expect(existsSync(join(pgdata, 'tablespace_map'))).toBe(false);
    expect(readdirSync(join(pgdata, 'pg_wal')).filter((name) => name.length === 24)).toEqual([
      '000000010000000000000018',
      '000000010000000000000019',
    ]);
    // STREAM backup without target: no recovery settings, only pg_probackup's comment line.
    expect(existsSync(join(pgdata, 'recovery.signal'))).toBe(false);
    const autoConf = readFileSync(join(pgdata, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toMatch(
      /\n# recovery settings added by pg_probackup restore of backup TP11RT at '[^']+'\n$/,
    );
    expect(autoConf).not.toContain('restore_command');
    // Shared locks are gone once the restore ends.
    expect(existsSync(join(catalogPath, 'backups', INSTANCE, 'TP11RT', 'backup_ro.pid'))).toBe(
      false,
    );

    const cluster = await startRestored(pgdata);
    try {
      expect(await value(cluster, 'sales', ORDERS_SQL)).toBe(TP11RT_ORDERS);
      expect(await value(cluster, 'hr', STAFF_SQL)).toBe(STAFF);
      expect(await value(cluster, 'sales', CHANGED_ORDERS_SQL)).toBe('200');
      unchangedOrdersValue = await value(cluster, 'sales', UNCHANGED_ORDERS_SQL);
    } finally {
      await cluster.destroy();
    }
  });

  it('restores TP11RH (DELTA pglz ← FULL zlib) with 20000 orders, 200 of them changed', async () => {
    const pgdata = join(base, 'rh');
    const { ctx } = context();
    await expect(
      restoreBackup(ctx, params(pgdata, { backupId: 'TP11RH', threads: 2 })),
    ).resolves.toMatchObject({
      backupId: 'TP11RH',
    });
    const cluster = await startRestored(pgdata);
    try {
      expect((await value(cluster, 'sales', ORDERS_SQL)).split('|')[0]).toBe('20000');
      expect(await value(cluster, 'sales', CHANGED_ORDERS_SQL)).toBe('200');
      expect(await value(cluster, 'sales', UNCHANGED_ORDERS_SQL)).toBe(await unchangedOrders());
      expect(await value(cluster, 'hr', STAFF_SQL)).toBe(STAFF);
    } finally {
      await cluster.destroy();
    }
  });

  it('restores TP11R6 (FULL zlib) with 20000 unchanged orders', async () => {
    const pgdata = join(base, 'r6');
    const { ctx } = context();
    await expect(
      restoreBackup(ctx, params(pgdata, { backupId: 'TP11R6', threads: 1 })),
    ).resolves.toMatchObject({
      backupId: 'TP11R6',
    });
    const cluster = await startRestored(pgdata);
    try {
      expect((await value(cluster, 'sales', ORDERS_SQL)).split('|')[0]).toBe('20000');
      expect(await value(cluster, 'sales', CHANGED_ORDERS_SQL)).toBe('0');
      expect(await value(cluster, 'sales', UNCHANGED_ORDERS_SQL)).toBe(await unchangedOrders());
      expect(await value(cluster, 'hr', STAFF_SQL)).toBe(STAFF);
    } finally {
      await cluster.destroy();
    }
  });

  it('recovers TP11RH to an LSN through the generated restore_command and reaches the TP11RT data', async () => {
    const pgdata = join(base, 'pitr');
    const { ctx } = context();
    // 0/1800028 is TP11RT's start: the 1000 inserted orders were archived before it.
    const target = { lsn: '0/1800028', action: 'promote' as const };
    await restoreBackup(ctx, params(pgdata, { backupId: 'TP11RH', target }));
    expect(readFileSync(join(pgdata, 'recovery.signal')).length).toBe(0);
    const autoConf = readFileSync(join(pgdata, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toContain(
      "## recovery settings\nrecovery_target_lsn = '0/1800028'\nrecovery_target_timeline = 'current'\n" +
        "recovery_target_action = 'promote'\n" +
        `restore_command = '"${process.execPath}" "${strataCliPath}" archive-get -B "${catalogPath}" ` +
        `--instance "${INSTANCE}" --wal-file-path=%p --wal-file-name=%f'\n`,
    );
    const cluster = await startRestored(pgdata);
    try {
      await waitForPromotion(cluster);
      expect(await value(cluster, 'sales', ORDERS_SQL)).toBe(TP11RT_ORDERS);
      expect(await value(cluster, 'hr', STAFF_SQL)).toBe(STAFF);
    } finally {
      await cluster.destroy();
    }
  });
});

async function unchangedOrders(): Promise<string> {
  if (unchangedOrdersValue !== undefined) return unchangedOrdersValue;
  const pgdata = join(base, 'reference');
  await restoreBackup(context().ctx, params(pgdata, { noValidate: true }));
  const cluster = await startRestored(pgdata);
  try {
    expect(await value(cluster, 'sales', ORDERS_SQL)).toBe(TP11RT_ORDERS);
    unchangedOrdersValue = await value(cluster, 'sales', UNCHANGED_ORDERS_SQL);
  } finally {
    await cluster.destroy();
  }
  expect(unchangedOrdersValue.split('|')[0]).toBe('19800');
  return unchangedOrdersValue;
}

async function waitForPromotion(cluster: TestCluster): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    const rows = await cluster.query<{ recovering: boolean }>(
      'postgres',
      'select pg_is_in_recovery() as recovering',
    );
    if (!rows[0]!.recovering) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the restored server did not finish recovery\n${cluster.serverLog()}`);
}

describe('restoreBackup of a cluster with a tablespace', () => {
  it('restores pg_tblspc/<oid> as a symlink to the recorded tablespace path', async () => {
    const catalog = join(base, 'ts-catalog');
    const tablespaceDir = join(base, 'ts-old');
    mkdirSync(tablespaceDir);
    const source = await TestCluster.create({ major: 15 });
    let expected: string;
    let backupId: string;
    try {
      await source.start();
      await source.query('postgres', `CREATE TABLESPACE ts1 LOCATION '${tablespaceDir}'`);
      await source.query(
        'postgres',
        'CREATE TABLE far (id int PRIMARY KEY, v text) TABLESPACE ts1; ' +
          'INSERT INTO far SELECT g, md5(g::text) FROM generate_series(1, 5000) g',
      );
      expected = await value(source, 'postgres', FAR_SQL);
      strataCli(['init', '-B', catalog]);
      strataCli(['add-instance', '-B', catalog, '--instance', 'ts', '-D', source.dataDir]);
      const backup = strataCli([
        'backup',
        '-B',
        catalog,
        '--instance',
        'ts',
        '-b',
        'FULL',
        '--stream',
        ...source.connectionArgs(),
      ]);
      backupId = /INFO: Backup (\w+) completed/.exec(backup)![1]!;
    } finally {
      await source.destroy();
    }
    // The original cluster is gone; its tablespace directory must be empty to be restored into.
    rmSync(tablespaceDir, { recursive: true, force: true });

    const pgdata = join(base, 'ts-restored');
    const { ctx, records } = context();
    await restoreBackup(ctx, params(pgdata, { backupPath: catalog, instance: 'ts', backupId }));
    const links = readdirSync(join(pgdata, 'pg_tblspc'));
    expect(links).toHaveLength(1);
    const link = join(pgdata, 'pg_tblspc', links[0]!);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(tablespaceDir);
    expect(infoMessages(records)).toContain(
      `Tablespace ${links[0]} will be restored using old path "${tablespaceDir}"`,
    );
    expect(readdirSync(tablespaceDir)).toEqual([expect.stringMatching(/^PG_15_\d+$/)]);

    const cluster = await startRestored(pgdata);
    try {
      expect(await value(cluster, 'postgres', FAR_SQL)).toBe(expected);
    } finally {
      await cluster.destroy();
    }
  });

  it('refuses a tablespace path that is not empty', async () => {
    const catalog = join(base, 'ts-catalog');
    const backupId = readdirSync(join(catalog, 'backups', 'ts')).find(
      (name) => name !== 'pg_probackup.conf',
    )!;
    const pgdata = join(base, 'ts-restored-again');
    const occupied = readlinkSync(
      join(
        base,
        'ts-restored',
        'pg_tblspc',
        readdirSync(join(base, 'ts-restored', 'pg_tblspc'))[0]!,
      ),
    );
    const error = await restoreBackup(
      context().ctx,
      params(pgdata, { backupPath: catalog, instance: 'ts', backupId }),
    ).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StrataError);
    expect((error as StrataError).message).toBe(
      `Restore tablespace destination is not empty: "${occupied}"`,
    );
    expect(existsSync(pgdata)).toBe(false);
  });
});

describe('restoreBackup into a non-empty PGDATA (-I) and partial restore of the fixture', () => {
  const TP11RT_HR = STAFF;

  async function checkTp11rt(pgdata: string): Promise<void> {
    const cluster = await startRestored(pgdata);
    try {
      expect(await value(cluster, 'sales', ORDERS_SQL)).toBe(TP11RT_ORDERS);
      expect(await value(cluster, 'hr', STAFF_SQL)).toBe(TP11RT_HR);
    } finally {
      await cluster.destroy();
    }
  }

  it('-I checksum turns a restored TP11R6 into TP11RT, rewriting only the pages that differ', async () => {
    const pgdata = join(base, 'incr-checksum');
    await restoreBackup(context().ctx, params(pgdata, { backupId: 'TP11R6', noValidate: true }));
    writeFileSync(join(pgdata, 'stray-file'), 'not in any backup');
    const { ctx, records } = context();
    const result = await restoreBackup(ctx, params(pgdata, { incrementalMode: 'checksum' }));
    expect(result).toMatchObject({ backupId: 'TP11RT', incrementalMode: 'checksum' });
    expect(result.pagesWritten).toBeGreaterThan(0);
    expect(result.pagesKept).toBeGreaterThan(result.pagesWritten);
    const info = infoMessages(records);
    expect(info).toContain(`Running incremental restore into nonempty directory: "${pgdata}"`);
    expect(info).toContain('Removing redundant files in destination directory');
    expect(info).toContain(
      `Incremental restore in 'checksum' mode: ${result.pagesWritten} data pages written, ` +
        `${result.pagesKept} kept from the destination directory`,
    );
    const ratio = info.find((m) => m.startsWith('Restore incremental ratio'))!;
    expect(Number(/: (\d+)%/.exec(ratio)![1])).toBeLessThan(100);
    expect(existsSync(join(pgdata, 'stray-file'))).toBe(false);
    expect(existsSync(join(pgdata, 'global', 'pg_control.pbk.bak'))).toBe(false);
    await checkTp11rt(pgdata);
  });

  it('-I lsn refuses a never-started restore (backup_label), then works from its redo point', async () => {
    const pgdata = join(base, 'incr-lsn');
    await restoreBackup(context().ctx, params(pgdata, { backupId: 'TP11R6', noValidate: true }));
    const refused = await restoreBackup(
      context().ctx,
      params(pgdata, { incrementalMode: 'lsn', noValidate: true }),
    ).catch((error: unknown) => error);
    expect((refused as StrataError).message).toBe(
      'Incremental restore is not allowed: Backup label exists. Cannot use incremental restore in LSN mode.',
    );
    const started = await startRestored(pgdata);
    await started.query('sales', "update orders set note = 'diverged' where id <= 50");
    await started.stop();

    const { ctx, records } = context();
    const result = await restoreBackup(ctx, params(pgdata, { incrementalMode: 'lsn' }));
    expect(result.incrementalMode).toBe('lsn');
    expect(result.pagesKept).toBeGreaterThan(0);
    expect(infoMessages(records).some((m) => /^shift LSN: [0-9A-F]+\/[0-9A-F]+$/.test(m))).toBe(
      true,
    );
    await checkTp11rt(pgdata);
  });

  it('--db-include restores one database and leaves the others as empty files to drop', async () => {
    const pgdata = join(base, 'partial');
    const { ctx, records } = context();
    // -I into an empty directory is a plain restore, so a partial one needs no other flag.
    const result = await restoreBackup(
      ctx,
      params(pgdata, { dbInclude: ['sales'], incrementalMode: 'checksum' }),
    );
    expect(result.excludedDatabases).toEqual(['postgres', 'hr']);
    expect(result.incrementalMode).toBe('none');
    expect(infoMessages(records)).toContain(
      'Destination directory and tablespace directories are empty, disable incremental restore',
    );
    expect(infoMessages(records)).toContain(
      'Partial restore: the files of databases "postgres", "hr" are left empty; drop them ' +
        '(DROP DATABASE) once the server has started',
    );
    const hrDir = join(pgdata, 'base', '16385');
    const hrFiles = readdirSync(hrDir);
    expect(hrFiles).toContain('PG_VERSION');
    expect(hrFiles.every((name) => statSync(join(hrDir, name)).size === 0)).toBe(true);
    expect(readFileSync(join(pgdata, 'base', '16384', 'PG_VERSION'), 'utf8')).toBe('15\n');

    const cluster = await startRestored(pgdata);
    try {
      expect(await value(cluster, 'sales', ORDERS_SQL)).toBe(TP11RT_ORDERS);
      await expect(cluster.query('hr', 'select 1')).rejects.toThrow();
      await cluster.query('sales', 'DROP DATABASE hr');
      await cluster.query('sales', 'DROP DATABASE postgres');
      const names = await cluster.query<{ datname: string }>(
        'sales',
        'select datname from pg_database order by datname',
      );
      expect(names.map((row) => row.datname)).toEqual(['sales', 'template0', 'template1']);
    } finally {
      await cluster.destroy();
    }
  });
});

describe('restoreBackup refusals and failures', () => {
  async function failure(run: Promise<unknown>): Promise<StrataError> {
    try {
      await run;
    } catch (error) {
      expect(error).toBeInstanceOf(StrataError);
      return error as StrataError;
    }
    throw new Error('expected the restore to fail');
  }

  it('refuses a non-empty or relative destination and unsupported options before touching anything', async () => {
    const busy = join(base, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'PG_VERSION'), '15\n');
    expect((await failure(restoreBackup(context().ctx, params(busy)))).message).toBe(
      `Restore destination is not empty: "${busy}"`,
    );
    expect((await failure(restoreBackup(context().ctx, params('relative/pgdata')))).message).toBe(
      '-D, --pgdata must be an absolute path: relative/pgdata',
    );
    const fresh = join(base, 'never-created');
    expect(
      (
        await failure(
          restoreBackup(context().ctx, params(fresh, { tablespaceMapping: ['pgdata=/x'] })),
        )
      ).message,
    ).toBe('Old directory is not an absolute path in tablespace mapping: pgdata');
    expect(
      (
        await failure(
          restoreBackup(context().ctx, params(fresh, { tablespaceMapping: ['/old=/new'] })),
        )
      ).message,
    ).toBe(
      'Backup TP11RT has no tablespaceses, nothing to remap via "--tablespace-mapping" option',
    );
    expect(
      (
        await failure(
          restoreBackup(context().ctx, params(fresh, { externalMapping: ['/old=/new'] })),
        )
      ).message,
    ).toBe(
      '--external-mapping option\'s old directory doesn\'t have an entry in list of external directories of current backup: "/old"',
    );
    expect(
      (await failure(restoreBackup(context().ctx, params(fresh, { waldir: 'wal' })))).message,
    ).toBe('WAL directory location must be an absolute path');
    expect(
      (await failure(restoreBackup(context().ctx, params(fresh, { dbInclude: ['template1'] }))))
        .message,
    ).toBe(
      "Databases 'template0' and 'template1' cannot be used for partial restore or validation",
    );
    expect(
      (await failure(restoreBackup(context().ctx, params(fresh, { dbExclude: ['nope'] })))).message,
    ).toBe("Failed to find a database 'nope' in database_map of backup TP11RT");
    expect(
      (await failure(restoreBackup(context().ctx, params(fresh, { backupId: 'TP11RA' })))).message,
    ).toBe('Requested backup TP11RA is not found.');
    expect(
      (await failure(restoreBackup(context().ctx, params(fresh, { target: { xid: '700' } }))))
        .message,
    ).toBe('Backup satisfying target options is not found.');
    expect(existsSync(fresh)).toBe(false);
  });

  it('reports a backup file that breaks mid-restore as an ERROR and never claims success', async () => {
    const brokenCatalog = copyCatalog('broken-catalog');
    const fullDir = join(brokenCatalog, 'backups', INSTANCE, 'TP11R6', 'database');
    // The largest stored file of the FULL backup, cut in the middle of its page records.
    const largest = execFileSync('find', [fullDir, '-type', 'f', '-printf', '%s %p\\n'])
      .toString()
      .trim()
      .split('\n')
      .map((line) => ({
        size: Number(line.split(' ')[0]),
        path: line.slice(line.indexOf(' ') + 1),
      }))
      .filter((file) => !file.path.includes('/pg_wal/'))
      .sort((a, b) => b.size - a.size)[0]!;
    truncateSync(largest.path, Math.floor(largest.size / 2));

    const pgdata = join(base, 'broken');
    const { ctx, records } = context();
    const error = await failure(
      restoreBackup(
        ctx,
        params(pgdata, { backupPath: brokenCatalog, backupId: 'TP11R6', noValidate: true }),
      ),
    );
    expect(error.message).toMatch(
      /^Backup files restoring failed\. Transfered bytes: \S+, time elapsed: \S+$/,
    );
    const workerError = records.find((r) => r.level === 'ERROR');
    expect(workerError?.message).toContain(largest.path);
    expect(records.some((r) => r.message.startsWith('Restore of backup'))).toBe(false);
    expect(records.some((r) => r.message === 'Backup TP11R6 is used without validation.')).toBe(
      true,
    );
    // pg_control is written last, so the half-restored directory cannot be started by mistake.
    expect(existsSync(join(pgdata, 'global', 'pg_control'))).toBe(false);
  });
});
