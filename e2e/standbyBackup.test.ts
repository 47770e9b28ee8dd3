import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { fingerprintCluster, generateData } from '../core/testing/data.js';
import { completedBackupId, strata } from './strataCli.js';

const major = 17;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A primary and a streaming standby made by Strata itself (a FULL backup restored with -R);
 * FULL and DELTA backups taken from the standby restore to the primary's data.
 */
describe('backups taken from a hot standby', () => {
  let primary: TestCluster;
  let standby: TestCluster;
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  const restored: TestCluster[] = [];

  async function waitForReplay(): Promise<void> {
    const target = (
      await primary.query<{ lsn: string }>('postgres', 'SELECT pg_current_wal_lsn()::text AS lsn')
    )[0]!.lsn;
    for (let attempt = 0; attempt < 600; attempt++) {
      const caughtUp = (
        await standby.query<{ ok: boolean }>(
          'postgres',
          'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok',
          [target],
        )
      )[0]!.ok;
      if (caughtUp) return;
      await sleep(50);
    }
    throw new Error('standby did not catch up');
  }

  function standbyConnection(): string[] {
    return standby.connectionArgs();
  }

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-standby-');
    catalog = join(scratch.path, 'catalog');
    primary = await TestCluster.create({ major });
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', 'primary', '-D', primary.dataDir]);
    await primary.start();
    await generateData(primary, { databases: ['app'], rowsPerTable: 8000 });
    const seed = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      'primary',
      '-b',
      'FULL',
      '--stream',
      ...primary.connectionArgs(),
    ]);
    const standbyDir = join(scratch.path, 'standby');
    await strata([
      'restore',
      '-B',
      catalog,
      '--instance',
      'primary',
      '-i',
      completedBackupId(seed.stderr),
      '-D',
      standbyDir,
      '-R',
      `--primary-conninfo=host=127.0.0.1 port=${primary.port} user=postgres`,
    ]);
    standby = await startRestoredCluster(major, standbyDir);
    await strata(['add-instance', '-B', catalog, '--instance', 'standby', '-D', standbyDir]);
  });

  afterAll(async () => {
    for (const server of restored) await server.destroy();
    await standby?.destroy();
    await primary?.destroy();
    scratch?.remove();
  });

  it('restores FULL and DELTA backups of the standby to the primary data', async () => {
    expect(
      (await standby.query<{ r: boolean }>('postgres', 'SELECT pg_is_in_recovery() AS r'))[0]!.r,
    ).toBe(true);
    await primary.query(
      'app',
      "INSERT INTO accounts SELECT g, 'standby-era', 1, DATE '2025-01-01' FROM generate_series(100001, 102000) g",
    );
    await waitForReplay();
    const fullPoint = await fingerprintCluster(primary);
    const full = completedBackupId(
      (
        await strata([
          'backup',
          '-B',
          catalog,
          '--instance',
          'standby',
          '-b',
          'FULL',
          '--stream',
          ...standbyConnection(),
        ])
      ).stderr,
    );
    await primary.query('app', 'UPDATE accounts SET balance = balance * 2 WHERE id % 7 = 0');
    await waitForReplay();
    const deltaPoint = await fingerprintCluster(primary);
    const delta = completedBackupId(
      (
        await strata([
          'backup',
          '-B',
          catalog,
          '--instance',
          'standby',
          '-b',
          'DELTA',
          '--stream',
          ...standbyConnection(),
        ])
      ).stderr,
    );

    const shown = JSON.parse(
      (await strata(['show', '-B', catalog, '--instance', 'standby', '--format=json'])).stdout,
    )[0].backups;
    expect(
      shown.map((b: Record<string, string>) => [b['id'], b['from-replica'], b['status']]),
    ).toEqual([
      [delta, 'true', 'OK'],
      [full, 'true', 'OK'],
    ]);

    for (const [backupId, expected] of [
      [full, fullPoint],
      [delta, deltaPoint],
    ] as const) {
      const target = join(scratch.path, `restore-${backupId}`);
      await strata([
        'restore',
        '-B',
        catalog,
        '--instance',
        'standby',
        '-i',
        backupId,
        '-D',
        target,
      ]);
      const server = await startRestoredCluster(major, target);
      restored.push(server);
      expect(await fingerprintCluster(server)).toEqual(expected);
      await server.stop();
    }
  });
});
