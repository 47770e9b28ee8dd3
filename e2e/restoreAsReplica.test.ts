import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { generateData } from '../core/testing/data.js';
import { completedBackupId, strata } from './strataCli.js';

const MAJOR = 17;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 0; attempt < 300; attempt++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe(`restore as replica (-R) (PostgreSQL ${MAJOR})`, () => {
  let primary: TestCluster;
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let backupId: string;

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-replica-');
    catalog = join(scratch.path, 'catalog');
    primary = await TestCluster.create({ major: MAJOR });
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', 'r', '-D', primary.dataDir]);
    await primary.start();
    await generateData(primary, { databases: [], rowsPerTable: 2000 });
    await primary.query('postgres', "SELECT pg_create_physical_replication_slot('standby_slot')");
    const result = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      'r',
      '-b',
      'FULL',
      '--stream',
      ...primary.connectionArgs(),
    ]);
    backupId = completedBackupId(result.stderr);
  });

  afterAll(async () => {
    await primary?.destroy();
    scratch?.remove();
  });

  it('starts a standby that streams from the primary through the stored conninfo and the slot', async () => {
    const pgdata = join(scratch.path, 'standby');
    await strata([
      'restore',
      '-B',
      catalog,
      '--instance',
      'r',
      '-i',
      backupId,
      '-D',
      pgdata,
      '-R',
      '-S',
      'standby_slot',
    ]);
    expect(existsSync(join(pgdata, 'standby.signal'))).toBe(true);
    // A STREAM backup without a target needs no archive: no recovery.signal, no restore_command.
    expect(existsSync(join(pgdata, 'recovery.signal'))).toBe(false);
    const autoConf = readFileSync(join(pgdata, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toContain('\n## standby settings\n');
    expect(autoConf).toMatch(new RegExp(`primary_conninfo = '[^']*port=${primary.port}[^']*'`));
    expect(autoConf).toContain("primary_slot_name = 'standby_slot'");
    expect(autoConf).not.toContain('restore_command');

    const standby = await startRestoredCluster(MAJOR, pgdata);
    try {
      const [recovering] = await standby.query<{ r: boolean }>(
        'postgres',
        'select pg_is_in_recovery() as r',
      );
      expect(recovering!.r).toBe(true);
      const receiver = await waitFor('the WAL receiver to stream', async () => {
        const rows = await standby.query<{ status: string; slot_name: string }>(
          'postgres',
          'select status, slot_name from pg_stat_wal_receiver',
        );
        return rows[0]?.status === 'streaming' ? rows[0] : undefined;
      });
      expect(receiver.slot_name).toBe('standby_slot');
      const [slot] = await primary.query<{ active: boolean }>(
        'postgres',
        "select active from pg_replication_slots where slot_name = 'standby_slot'",
      );
      expect(slot!.active).toBe(true);

      await primary.query(
        'postgres',
        "INSERT INTO accounts VALUES (900001, 'from-primary', 1, DATE '2024-06-01')",
      );
      const owner = await waitFor('the row to replicate', async () => {
        const rows = await standby.query<{ owner: string }>(
          'postgres',
          'select owner from accounts where id = 900001',
        );
        return rows[0]?.owner;
      });
      expect(owner).toBe('from-primary');
      await expect(
        standby.query('postgres', "INSERT INTO accounts VALUES (900002, 'x', 1, NULL)"),
      ).rejects.toThrow(/read-only transaction/);
    } finally {
      await standby.destroy();
    }
  });

  it('writes --primary-conninfo instead of the stored one', async () => {
    const pgdata = join(scratch.path, 'standby-conninfo');
    const conninfo = `host=127.0.0.1 port=${primary.port} user=postgres application_name=strata_standby`;
    await strata([
      'restore',
      '-B',
      catalog,
      '--instance',
      'r',
      '-i',
      backupId,
      '-D',
      pgdata,
      '-R',
      '--primary-conninfo',
      conninfo,
    ]);
    const autoConf = readFileSync(join(pgdata, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toContain(`primary_conninfo = '${conninfo}'`);
    expect(autoConf).not.toContain('primary_slot_name');
    const standby = await startRestoredCluster(MAJOR, pgdata);
    try {
      const name = await waitFor('the standby to connect', async () => {
        const rows = await primary.query<{ application_name: string; state: string }>(
          'postgres',
          "select application_name, state from pg_stat_replication where application_name = 'strata_standby'",
        );
        return rows[0]?.state === 'streaming' ? rows[0].application_name : undefined;
      });
      expect(name).toBe('strata_standby');
    } finally {
      await standby.destroy();
    }
  });
});
