import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseContentList } from '../core/catalog/contentList.js';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { fingerprintCluster, generateData, type ClusterFingerprint } from '../core/testing/data.js';
import { completedBackupId, runStrata, strata } from './strataCli.js';

const MAJOR = 17;

/** Pages of the restored data files: the sum of n_blocks over the backup's data files. */
function totalPages(catalog: string, backupId: string): number {
  const path = join(catalog, 'backups', 'inc', backupId, 'backup_content.control');
  return parseContentList(readFileSync(path, 'utf8'), path)
    .filter((entry) => entry.isDatafile && entry.externalDirNum === 0)
    .reduce((sum, entry) => sum + (entry.nBlocks ?? 0), 0);
}

/** Pages written and kept, from the INFO line of an incremental restore. */
function pageCounts(stderr: string, mode: string): { written: number; kept: number } {
  const match = new RegExp(
    `INFO: Incremental restore in '${mode}' mode: (\\d+) data pages written, (\\d+) kept from the destination directory`,
  ).exec(stderr);
  if (!match) throw new Error(`no page count line in:\n${stderr}`);
  return { written: Number(match[1]), kept: Number(match[2]) };
}

describe(`incremental restore into a diverged data directory (PostgreSQL ${MAJOR})`, () => {
  let cluster: TestCluster;
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let connection: string[];
  let newBackupId: string;
  let newFingerprint: ClusterFingerprint;
  let checksumDir: string;
  let lsnDir: string;

  async function backup(mode: string): Promise<string> {
    const result = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      'inc',
      '-b',
      mode,
      '--stream',
      '-j',
      '2',
      ...connection,
    ]);
    return completedBackupId(result.stderr);
  }

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-incr-restore-');
    catalog = join(scratch.path, 'catalog');
    cluster = await TestCluster.create({ major: MAJOR });
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', 'inc', '-D', cluster.dataDir]);
    await cluster.start();
    connection = cluster.connectionArgs();
    await generateData(cluster, { databases: ['shop', 'crm'], rowsPerTable: 40000 });
    // Hint bits and the visibility map settle now, so that later backups hold only real changes.
    for (const database of ['postgres', 'shop', 'crm']) await cluster.query(database, 'VACUUM');
    await backup('FULL');
    await cluster.query('shop', 'UPDATE accounts SET balance = balance + 1 WHERE id % 500 = 0');
    const deltaId = await backup('DELTA');

    // A copy of the cluster at the DELTA, then lived on its own for a while.
    checksumDir = join(scratch.path, 'copy-checksum');
    await strata(['restore', '-B', catalog, '--instance', 'inc', '-i', deltaId, '-D', checksumDir]);
    const copy = await startRestoredCluster(MAJOR, checksumDir);
    await copy.query('shop', "UPDATE accounts SET owner = 'diverged' WHERE id <= 200");
    await copy.query(
      'crm',
      'CREATE TABLE only_on_copy AS SELECT g FROM generate_series(1, 1000) g',
    );
    await copy.stop();
    lsnDir = join(scratch.path, 'copy-lsn');
    execFileSync('cp', ['-a', checksumDir, lsnDir]);

    // Meanwhile the original moves on too.
    await cluster.withClient('crm', async (client) => {
      await client.query('UPDATE accounts SET balance = 0 WHERE id % 250 = 0');
      await client.query(
        "INSERT INTO accounts SELECT g, 'late-' || g, 1, DATE '2024-01-01' FROM generate_series(40001, 41000) g",
      );
      await client.query(
        'CREATE TABLE fresh AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g',
      );
    });
    await cluster.query('shop', 'DELETE FROM accounts WHERE id BETWEEN 100 AND 150');
    newFingerprint = await fingerprintCluster(cluster);
    newBackupId = await backup('DELTA');
  });

  afterAll(async () => {
    await cluster?.destroy();
    scratch?.remove();
  });

  async function expectNewBackupData(pgdata: string): Promise<void> {
    const server = await startRestoredCluster(MAJOR, pgdata);
    try {
      expect(await fingerprintCluster(server)).toEqual(newFingerprint);
    } finally {
      await server.stop();
    }
  }

  it.each([
    ['checksum', () => checksumDir],
    ['lsn', () => lsnDir],
  ])(
    '-I %s brings the old copy to the new backup, writing far fewer pages than it has',
    async (mode, dir) => {
      const pgdata = dir();
      const result = await strata([
        'restore',
        '-B',
        catalog,
        '--instance',
        'inc',
        '-i',
        newBackupId,
        '-D',
        pgdata,
        '-I',
        mode,
        '-j',
        '2',
      ]);
      expect(result.stderr).toContain(
        `INFO: Running incremental restore into nonempty directory: "${pgdata}"`,
      );
      if (mode === 'lsn') expect(result.stderr).toMatch(/INFO: shift LSN: [0-9A-F]+\/[0-9A-F]+/);
      const counts = pageCounts(result.stderr, mode);
      const total = totalPages(catalog, newBackupId);
      expect(total).toBeGreaterThan(2000);
      expect(counts.written).toBeGreaterThan(0);
      expect(counts.written * 5).toBeLessThanOrEqual(total);
      expect(counts.kept).toBeGreaterThan(total / 2);
      expect(existsSync(join(pgdata, 'global', 'pg_control.pbk.bak'))).toBe(false);
      await expectNewBackupData(pgdata);
    },
  );

  it('refuses a running postmaster and another system, and --force wipes the other system', async () => {
    const running = await startRestoredCluster(MAJOR, checksumDir);
    try {
      const refused = await runStrata([
        'restore',
        '-B',
        catalog,
        '--instance',
        'inc',
        '-D',
        checksumDir,
        '-I',
        'checksum',
      ]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        'ERROR: Incremental restore is not allowed: Postmaster is running.',
      );
      expect(refused.stderr).toMatch(
        /WARNING: Postmaster with pid \d+ is running in destination directory/,
      );
    } finally {
      await running.stop();
    }

    const stranger = await TestCluster.create({ major: MAJOR });
    try {
      const args = [
        'restore',
        '-B',
        catalog,
        '--instance',
        'inc',
        '-i',
        newBackupId,
        '-D',
        stranger.dataDir,
        '-I',
        'checksum',
      ];
      const refused = await runStrata(args);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        'ERROR: Incremental restore is not allowed: System ID mismatch.',
      );
      expect(refused.stderr).toContain('WARNING: Backup catalog was initialized for system id');
      expect(existsSync(join(stranger.dataDir, 'postgresql.conf'))).toBe(true);

      const forced = await strata([...args, '--force']);
      expect(forced.stderr).toContain('INFO: Removing redundant files in destination directory');
      expect(forced.stderr).not.toContain("Incremental restore in 'checksum' mode");
      await expectNewBackupData(stranger.dataDir);
    } finally {
      await stranger.destroy();
    }
  });
});
