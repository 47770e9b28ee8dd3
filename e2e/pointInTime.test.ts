import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRestoredCluster, type TestCluster } from '../core/testing/cluster.js';
import { createCatalogCluster, type CatalogCluster } from './catalogCluster.js';
import { completedBackupId, strata } from './strataCli.js';

const major = 17;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Changes are made after a FULL backup in committed batches; each recovery target sits between
 * two of them, and the restored server must hold exactly the batches before it.
 */
describe('point-in-time restore', () => {
  let source: CatalogCluster;
  let cluster: TestCluster;
  let catalog: string;
  let backupId: string;
  const targets: { time: string; xid: string; lsn: string } = { time: '', xid: '', lsn: '' };
  const restored: TestCluster[] = [];

  async function commitBatch(batch: string): Promise<{ xid: string }> {
    return cluster.withClient('postgres', async (client) => {
      await client.query('BEGIN');
      const xid = (await client.query<{ xid: string }>('SELECT txid_current()::text AS xid'))
        .rows[0]!.xid;
      await client.query('INSERT INTO ledger SELECT g, $1 FROM generate_series(1, 100) g', [batch]);
      await client.query('COMMIT');
      return { xid };
    });
  }

  beforeAll(async () => {
    source = await createCatalogCluster({ major, archive: true, instance: 'pitr' });
    ({ cluster, catalog } = source);
    await cluster.query('postgres', 'CREATE TABLE ledger (n int, batch text)');
    await commitBatch('0-base');
    const backup = await source.backup(['-b', 'FULL', '--stream']);
    backupId = completedBackupId(backup.stderr);

    await commitBatch('1-a');
    // A whole second after batch a and a whole second before batch b, so a target time with
    // second precision falls strictly between the two commits.
    await sleep(1100);
    targets.time = (
      await cluster.query<{ t: string }>(
        'postgres',
        "SELECT to_char(date_trunc('second', clock_timestamp() AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24:MI:SS') || '+00' AS t",
      )
    )[0]!.t;
    await sleep(1100);
    targets.xid = (await commitBatch('2-b')).xid;
    await cluster.query('postgres', "SELECT pg_create_restore_point('after-b')");
    await commitBatch('3-c');
    targets.lsn = (
      await cluster.query<{ lsn: string }>(
        'postgres',
        'SELECT pg_current_wal_insert_lsn()::text AS lsn',
      )
    )[0]!.lsn;
    await commitBatch('4-d');
    const last = (
      await cluster.query<{ name: string }>(
        'postgres',
        'SELECT pg_walfile_name(pg_switch_wal()) AS name',
      )
    )[0]!.name;
    for (let attempt = 0; attempt < 600; attempt++) {
      const archived = (
        await cluster.query<{ last: string | null }>(
          'postgres',
          'SELECT last_archived_wal AS last FROM pg_stat_archiver',
        )
      )[0]!.last;
      if (archived !== null && archived >= last) break;
      await sleep(100);
    }
  });

  afterAll(async () => {
    for (const server of restored) await server.destroy();
    await source?.destroy();
  });

  async function restoreAndReadBatches(targetArgs: string[]): Promise<string> {
    const target = join(source.dir, `restore-${restored.length}`);
    await strata(['restore', '-B', catalog, '--instance', 'pitr', '-D', target, ...targetArgs]);
    const server = await startRestoredCluster(major, target);
    restored.push(server);
    let batches = '';
    // The server accepts connections once consistent; it holds the target's data only when
    // recovery has stopped at the target (paused, or promoted).
    for (let attempt = 0; attempt < 600; attempt++) {
      const state = (
        await server.query<{ recovering: boolean; paused: boolean }>(
          'postgres',
          "SELECT pg_is_in_recovery() AS recovering, pg_is_in_recovery() AND pg_get_wal_replay_pause_state() <> 'not paused' AS paused",
        )
      )[0]!;
      if (!state.recovering || state.paused) break;
      await sleep(100);
    }
    batches = (
      await server.query<{ batches: string }>(
        'postgres',
        "SELECT string_agg(DISTINCT batch, ',' ORDER BY batch) AS batches FROM ledger",
      )
    )[0]!.batches;
    await server.stop();
    return batches;
  }

  it('restores to a target time between two commits', async () => {
    expect(await restoreAndReadBatches([`--recovery-target-time=${targets.time}`])).toBe(
      '0-base,1-a',
    );
  });

  it('restores to a target xid, including that transaction', async () => {
    expect(
      await restoreAndReadBatches([
        `--recovery-target-xid=${targets.xid}`,
        '--recovery-target-action=promote',
      ]),
    ).toBe('0-base,1-a,2-b');
  });

  it('restores to a named restore point', async () => {
    expect(await restoreAndReadBatches(['--recovery-target-name=after-b'])).toBe('0-base,1-a,2-b');
  });

  it('restores to a target LSN', async () => {
    expect(await restoreAndReadBatches([`--recovery-target-lsn=${targets.lsn}`])).toBe(
      '0-base,1-a,2-b,3-c',
    );
  });

  it('restores to the end of the archive with --recovery-target=latest', async () => {
    expect(await restoreAndReadBatches(['--recovery-target=latest'])).toBe(
      '0-base,1-a,2-b,3-c,4-d',
    );
  });

  it('restores only the backup itself with --recovery-target=immediate', async () => {
    expect(await restoreAndReadBatches(['-i', backupId, '--recovery-target=immediate'])).toBe(
      '0-base',
    );
  });

  it('validates that the archive reaches a target time', async () => {
    const result = await strata([
      'validate',
      '-B',
      catalog,
      '--instance',
      'pitr',
      '-i',
      backupId,
      `--recovery-target-time=${targets.time}`,
    ]);
    expect(result.stderr).toContain(`Validate of backup ${backupId} completed.`);
  });
});
