import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, makeTempDir } from '../core/testing/cluster.js';
import { completedBackupId, runStrata, strata } from './strataCli.js';
import type { CliResult } from './strataCli.js';

const major = 17;
const instance = 'busy';

interface BackupJson {
  id: string;
  'backup-mode': string;
  'parent-backup-id'?: string;
  status: string;
}

/** The messages a command may end with when another one holds what it needs (cli-behaviour.md §13, §14). */
const CLEAR_FAILURES = [
  /ERROR: Cannot lock backup \w+ directory/,
  /ERROR: Could not create lock file "[^"]+": ENOENT/,
  /ERROR: Failed to find backup \w+, cannot delete/,
  /ERROR: Requested backup \w+ is not found\./,
  /ERROR: Target backup \w+ was not found/,
  /ERROR: Backup directory already exists: "[^"]+"; --start-time must be newer than every backup/,
  /ERROR: Backups of the merge of \w+ changed while waiting for their locks; run merge again/,
];

function expectSuccessOrClearFailure(result: CliResult, what: string): void {
  if (result.code === 0) return;
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('ERROR: '));
  expect(errors, `${what}:\n${result.stderr}`).toHaveLength(1);
  expect(
    CLEAR_FAILURES.some((pattern) => pattern.test(errors[0]!)),
    `${what} failed with an unexpected message:\n${result.stderr}`,
  ).toBe(true);
  expect(result.stderr, what).not.toMatch(/\n\s+at /);
}

describe('commands running at the same time on one instance', () => {
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let cluster: TestCluster;
  let connection: string[];

  async function listBackups(): Promise<BackupJson[]> {
    const result = await strata(['show', '-B', catalog, '--instance', instance, '--format=json']);
    return JSON.parse(result.stdout)[0].backups;
  }

  async function backup(mode: string, extra: string[] = []): Promise<string> {
    const result = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      mode,
      '--stream',
      '--no-sync',
      ...connection,
      ...extra,
    ]);
    return completedBackupId(result.stderr);
  }

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-concurrent-');
    catalog = join(scratch.path, 'catalog');
    cluster = await TestCluster.create({ major, initdbArgs: ['--wal-segsize=1'] });
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', instance, '-D', cluster.dataDir]);
    await cluster.start();
    connection = cluster.connectionArgs();
    await cluster.query(
      'postgres',
      'CREATE TABLE ledger AS SELECT g AS n FROM generate_series(1, 20000) g',
    );
  });

  afterAll(async () => {
    await cluster?.destroy();
    scratch?.remove();
  });

  it('two backups started at once get two directories (the second waits for its own ID)', async () => {
    const args = [
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      'FULL',
      '--stream',
      '--no-sync',
      ...connection,
    ];
    const [first, second] = await Promise.all([runStrata(args), runStrata(args)]);
    expect(first.code, first.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    const ids = [completedBackupId(first.stderr), completedBackupId(second.stderr)];
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) {
      const control = readFileSync(
        join(catalog, 'backups', instance, id, 'backup.control'),
        'utf8',
      );
      expect(control).toContain('status = OK');
      await strata(['validate', '-B', catalog, '--instance', instance, '-i', id]);
    }
  });

  it('two backups forced to the same start time: one wins, the other stops with a clear message', async () => {
    // After every backup so far (a forced start time must be the newest), before any later one.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const startTime = Math.floor(Date.now() / 1000);
    const args = [
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      'FULL',
      '--stream',
      '--no-sync',
      `--start-time=${startTime}`,
      ...connection,
    ];
    const results = await Promise.all([runStrata(args), runStrata(args)]);
    expect(results.map((result) => result.code).sort()).toEqual([0, 1]);
    const loser = results.find((result) => result.code !== 0)!;
    expectSuccessOrClearFailure(loser, 'the second backup');
    const winnerId = completedBackupId(results.find((result) => result.code === 0)!.stderr);
    await strata(['validate', '-B', catalog, '--instance', instance, '-i', winnerId]);
  });

  it('backup, merge, delete and restore at once: each finishes, waits, or fails clearly; nothing is corrupted', async () => {
    const mergeFull = await backup('FULL');
    await cluster.query('postgres', 'INSERT INTO ledger SELECT g FROM generate_series(1, 1000) g');
    const mergeDest = await backup('DELTA');
    const doomedFull = await backup('FULL');
    await cluster.query('postgres', 'INSERT INTO ledger SELECT g FROM generate_series(1, 1000) g');
    const restoreTarget = join(scratch.path, 'restored');

    const [incremental, merge, deletion, restore] = await Promise.all([
      // A DELTA of doomedFull, the newest FULL: its parent is what the delete removes.
      runStrata([
        'backup',
        '-B',
        catalog,
        '--instance',
        instance,
        '-b',
        'DELTA',
        '--stream',
        '--no-sync',
        ...connection,
      ]),
      runStrata(['merge', '-B', catalog, '--instance', instance, '-i', mergeDest]),
      runStrata(['delete', '-B', catalog, '--instance', instance, '-i', doomedFull]),
      runStrata([
        'restore',
        '-B',
        catalog,
        '--instance',
        instance,
        '-i',
        mergeDest,
        '-D',
        restoreTarget,
        '--no-sync',
      ]),
    ]);
    expectSuccessOrClearFailure(incremental, 'backup');
    expectSuccessOrClearFailure(merge, 'merge');
    expectSuccessOrClearFailure(deletion, 'delete');
    expectSuccessOrClearFailure(restore, 'restore');
    if (restore.code === 0)
      expect(existsSync(join(restoreTarget, 'global', 'pg_control'))).toBe(true);

    const backups = await listBackups();
    for (const entry of backups) {
      expect(['OK', 'ERROR'], `${entry.id} is ${entry.status}`).toContain(entry.status);
    }
    const ids = new Set(backups.map((entry) => entry.id));
    if (deletion.code === 0) {
      expect(ids.has(doomedFull)).toBe(false);
      // The delete took the new DELTA with its parent, or the DELTA failed without it.
      for (const entry of backups) expect(entry['parent-backup-id']).not.toBe(doomedFull);
    }
    if (merge.code === 0) {
      expect(ids.has(mergeFull)).toBe(false);
      expect(backups.find((entry) => entry.id === mergeDest)?.['backup-mode']).toBe('FULL');
    }
    // Whatever happened, every backup left OK validates.
    await strata(['delete', '-B', catalog, '--instance', instance, '--status=ERROR']);
    await strata(['validate', '-B', catalog, '--instance', instance]);
  }, 180_000);
});
