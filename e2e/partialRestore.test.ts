import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { fingerprintCluster, generateData, type ClusterFingerprint } from '../core/testing/data.js';
import { completedBackupId, strata } from './strataCli.js';

const MAJOR = 17;
const DATABASES = ['alpha', 'beta', 'gamma', 'delta'];

/** The part of a fingerprint that belongs to the given databases. */
function subset(fingerprint: ClusterFingerprint, databases: string[]): ClusterFingerprint {
  return Object.fromEntries(
    Object.entries(fingerprint).filter(([key]) => databases.some((db) => key.startsWith(`${db}.`))),
  );
}

describe(`partial restore (PostgreSQL ${MAJOR})`, () => {
  let cluster: TestCluster;
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let backupId: string;
  let fingerprint: ClusterFingerprint;
  const oids = new Map<string, string>();

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-partial-');
    catalog = join(scratch.path, 'catalog');
    cluster = await TestCluster.create({ major: MAJOR });
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', 'p', '-D', cluster.dataDir]);
    await cluster.start();
    await generateData(cluster, { databases: DATABASES, rowsPerTable: 5000 });
    for (const row of await cluster.query<{ datname: string; oid: string }>(
      'postgres',
      'select datname, oid::text as oid from pg_database',
    )) {
      oids.set(row.datname, row.oid);
    }
    fingerprint = await fingerprintCluster(cluster);
    const result = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      'p',
      '-b',
      'FULL',
      '--stream',
      ...cluster.connectionArgs(),
    ]);
    backupId = completedBackupId(result.stderr);
  });

  afterAll(async () => {
    await cluster?.destroy();
    scratch?.remove();
  });

  /** Every file of an excluded database is there, and empty. */
  function expectEmptyDatabaseFiles(pgdata: string, datname: string): void {
    const dir = join(pgdata, 'base', oids.get(datname)!);
    const files = readdirSync(dir);
    expect(files).toContain('PG_VERSION');
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) expect(statSync(join(dir, file)).size).toBe(0);
  }

  async function expectUnusable(server: TestCluster, datname: string): Promise<void> {
    await expect(server.query(datname, 'select count(*) from accounts')).rejects.toThrow();
  }

  it('--db-include of two databases restores them; the other three start unusable and can be dropped', async () => {
    const pgdata = join(scratch.path, 'include');
    const restored = await strata([
      'restore',
      '-B',
      catalog,
      '--instance',
      'p',
      '-i',
      backupId,
      '-D',
      pgdata,
      '--db-include',
      'postgres',
      '--db-include',
      'beta',
    ]);
    expect(restored.stderr).toContain(
      'INFO: Partial restore: the files of databases "alpha", "gamma", "delta" are left empty; ' +
        'drop them (DROP DATABASE) once the server has started',
    );
    for (const excluded of ['alpha', 'gamma', 'delta']) expectEmptyDatabaseFiles(pgdata, excluded);

    const server = await startRestoredCluster(MAJOR, pgdata);
    try {
      const listed = await server.query<{ datname: string }>(
        'postgres',
        'select datname from pg_database order by datname',
      );
      expect(listed.map((row) => row.datname)).toEqual([
        'alpha',
        'beta',
        'delta',
        'gamma',
        'postgres',
        'template0',
        'template1',
      ]);
      for (const excluded of ['alpha', 'gamma', 'delta']) {
        await expectUnusable(server, excluded);
        await server.query('postgres', `DROP DATABASE ${excluded}`);
      }
      expect(await fingerprintCluster(server)).toEqual(subset(fingerprint, ['postgres', 'beta']));
    } finally {
      await server.destroy();
    }
  });

  it('--db-exclude of one database restores the four others', async () => {
    const pgdata = join(scratch.path, 'exclude');
    await strata([
      'restore',
      '-B',
      catalog,
      '--instance',
      'p',
      '-i',
      backupId,
      '-D',
      pgdata,
      '--db-exclude',
      'gamma',
    ]);
    expectEmptyDatabaseFiles(pgdata, 'gamma');
    const server = await startRestoredCluster(MAJOR, pgdata);
    try {
      await expectUnusable(server, 'gamma');
      await server.query('postgres', 'DROP DATABASE gamma');
      expect(await fingerprintCluster(server)).toEqual(
        subset(fingerprint, ['postgres', 'alpha', 'beta', 'delta']),
      );
    } finally {
      await server.destroy();
    }
  });
});
