import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { TestCluster } from '../../testing/cluster.js';
import { repoRoot } from '../../testing/pgBinaries.js';
import { archiveGet } from './archiveGet.js';
import { ArchiveWalSource } from './walSources.js';

const INSTANCE = 'it';
const SEG_SIZE = 1024 * 1024;

/**
 * archive_command needs an executable; the CLI main may not route to archivePush yet, so the test
 * bundles a tiny runner around it: `node runner.mjs <catalog> <instance> %p %f <batch-size>`.
 */
const runnerSource = `
import { archivePush } from './core/commands/archive/archivePush.js';
import { LocalStorage } from './core/storage/local/localStorage.js';
import { createLogger } from './core/log.js';
const [backupPath, instance, walFilePath, walFileName, batch] = process.argv.slice(2);
const logger = createLogger((r) => process.stderr.write(r.level + ': ' + r.message + '\\n'));
try {
  await archivePush(
    { storage: new LocalStorage(), logger, now: () => Date.now() },
    { backupPath, instance, walFileName, walFilePath, cwd: process.cwd(), batchSize: Number(batch),
      threads: 2, overwrite: false, noReadyRename: false, noSync: false },
  );
} catch (error) {
  process.stderr.write('ERROR: ' + error.message + '\\n');
  process.exit(1);
}
`;

let base: string;
let cluster: TestCluster;
let catalog: string;
let archiveDir: string;
let archiveCommand: string;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'strata-archive-it-'));
  const runner = join(base, 'pushRunner.mjs');
  await build({
    stdin: { contents: runnerSource, resolveDir: repoRoot, loader: 'ts' },
    outfile: runner,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    logLevel: 'warning',
  });
  cluster = await TestCluster.create({
    major: 17,
    initdbArgs: ['--wal-segsize=1'],
    settings: { wal_keep_size: "'256MB'" },
  });
  catalog = join(base, 'catalog');
  archiveDir = join(catalog, 'wal', INSTANCE);
  mkdirSync(join(catalog, 'backups', INSTANCE), { recursive: true });
  mkdirSync(archiveDir, { recursive: true });
  const systemId = readFileSync(join(cluster.dataDir, 'global', 'pg_control')).readBigUInt64LE(0);
  writeFileSync(
    join(catalog, 'backups', INSTANCE, 'pg_probackup.conf'),
    [
      '# Backup instance information',
      `pgdata = ${cluster.dataDir}`,
      `system-identifier = ${systemId}`,
      `xlog-seg-size = ${SEG_SIZE}`,
      '# Compression parameters',
      'compress-algorithm = zlib',
      'compress-level = 1',
      '',
    ].join('\n'),
  );
  archiveCommand = `"${process.execPath}" "${runner}" "${catalog}" ${INSTANCE} %p %f 3`;
  // An empty archive_command with archive_mode on lets .ready files pile up until it is set.
  cluster.appendConfig({ archive_mode: 'on', archive_command: "''" });
  await cluster.start();
});

afterAll(async () => {
  await cluster?.destroy();
  if (base) rmSync(base, { recursive: true, force: true });
});

interface ArchiverState {
  archived_count: string;
  failed_count: string;
}

/** Waits until `segment` is in the archive and marked `.done` for the server. */
async function waitForArchived(segment: string): Promise<void> {
  const statusDir = join(cluster.dataDir, 'pg_wal', 'archive_status');
  const deadline = Date.now() + 60_000;
  while (
    !existsSync(join(archiveDir, `${segment}.gz`)) ||
    !existsSync(join(statusDir, `${segment}.done`))
  ) {
    if (Date.now() > deadline) {
      throw new Error(`${segment} not archived: ${readdirSync(statusDir)}\n${cluster.serverLog()}`);
    }
    await sleep(100);
  }
}

describe('archive-push as archive_command of PostgreSQL 17', () => {
  it('archives every switched segment compressed, byte-equal to pg_wal, in batches', async () => {
    await cluster.query('postgres', 'create table t (id int, payload text)');
    let lastSegment = '';
    for (let round = 0; round < 6; round++) {
      await cluster.query(
        'postgres',
        `insert into t select g, repeat(md5(g::text), 20) from generate_series(1, 3000) g`,
      );
      const [row] = await cluster.query<{ name: string }>(
        'postgres',
        'select pg_walfile_name(pg_switch_wal()) as name',
      );
      lastSegment = row!.name;
    }
    const pending = readdirSync(join(cluster.dataDir, 'pg_wal', 'archive_status'));
    expect(pending.filter((name) => name.endsWith('.ready')).length).toBeGreaterThanOrEqual(6);
    await cluster.query('postgres', `alter system set archive_command = '${archiveCommand}'`);
    await cluster.query('postgres', 'select pg_reload_conf()');
    await waitForArchived(lastSegment);
    const [state] = await cluster.query<ArchiverState>(
      'postgres',
      'select archived_count::text, failed_count::text from pg_stat_archiver',
    );
    expect(state!.failed_count).toBe('0');

    const archived = readdirSync(archiveDir).sort();
    expect(archived.length).toBeGreaterThanOrEqual(6);
    expect(archived.every((name) => /^[0-9A-F]{24}\.gz$/.test(name))).toBe(true);
    expect(archived).toContain(`${lastSegment}.gz`);
    const walDir = join(cluster.dataDir, 'pg_wal');
    for (const name of archived) {
      const segment = name.slice(0, 24);
      const onServer = readFileSync(join(walDir, segment));
      expect(onServer.length).toBe(SEG_SIZE);
      expect(gunzipSync(readFileSync(join(archiveDir, name))).equals(onServer)).toBe(true);
    }
    const status = readdirSync(join(walDir, 'archive_status'));
    for (const name of archived) expect(status).toContain(`${name.slice(0, 24)}.done`);
    // pg_stat_archiver counts archive_command runs; a batch of 3 archives three .ready files per run.
    expect(Number(state!.archived_count)).toBeLessThan(archived.length);

    const source = new ArchiveWalSource(new LocalStorage(), archiveDir, SEG_SIZE);
    const segno =
      BigInt(`0x${lastSegment.slice(16)}`) + (BigInt(`0x${lastSegment.slice(8, 16)}`) << 12n);
    const viaSource = await source.readSegment(1, segno);
    expect(Buffer.from(viaSource!).equals(readFileSync(join(walDir, lastSegment)))).toBe(true);

    const restored = join(base, 'restored-segment');
    const logger = createMemoryLogger();
    await archiveGet(
      { storage: new LocalStorage(), logger, now: () => Date.now() },
      {
        backupPath: catalog,
        instance: INSTANCE,
        walFileName: lastSegment,
        walFilePath: restored,
        cwd: cluster.dataDir,
        batchSize: 1,
        threads: 1,
        noValidateWal: false,
      },
    );
    expect(readFileSync(restored).equals(readFileSync(join(walDir, lastSegment)))).toBe(true);
  });
});
