import { readFileSync, rmSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseContentList } from '../core/catalog/contentList.js';
import { startRestoredCluster, type TestCluster } from '../core/testing/cluster.js';
import { createCatalogCluster, type CatalogCluster } from './catalogCluster.js';
import { fingerprintCluster, generateData, type ClusterFingerprint } from '../core/testing/data.js';
import { completedBackupId, runStrata, strata } from './strataCli.js';

type Mode = 'DELTA' | 'PAGE' | 'SUMMARY';

const scenarios: Array<[number, Mode]> = [
  [15, 'DELTA'],
  [15, 'PAGE'],
  [17, 'DELTA'],
  [17, 'PAGE'],
  [17, 'SUMMARY'],
  [18, 'SUMMARY'],
];

/** Pages stored in a backup: the sum of n_headers over its data files. */
function storedPages(catalog: string, instance: string, backupId: string): number {
  const path = join(catalog, 'backups', instance, backupId, 'backup_content.control');
  return parseContentList(readFileSync(path, 'utf8'), path)
    .filter((entry) => entry.isDatafile)
    .reduce((sum, entry) => sum + (entry.nHeaders ?? 0), 0);
}

describe.each(scenarios)('PostgreSQL %i, %s backups', (major, mode) => {
  let source: CatalogCluster;
  let cluster: TestCluster;
  let catalog: string;
  const points: Array<{ backupId: string; fingerprint: ClusterFingerprint }> = [];
  const instance = 'inc';

  async function backup(backupMode: string): Promise<string> {
    return completedBackupId(
      (await source.backup(['-b', backupMode, '--stream', '-j', '2'])).stderr,
    );
  }

  async function checkpointAndBackup(backupMode: string): Promise<void> {
    const fingerprint = await fingerprintCluster(cluster);
    points.push({ backupId: await backup(backupMode), fingerprint });
  }

  beforeAll(async () => {
    source = await createCatalogCluster({
      major,
      instance,
      archive: true,
      settings: mode === 'SUMMARY' ? { summarize_wal: 'on' } : {},
    });
    ({ cluster, catalog } = source);
    await generateData(cluster, { databases: ['shop'], rowsPerTable: 20000 });
    await cluster.query(
      'shop',
      'CREATE TABLE to_truncate AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g',
    );
    await checkpointAndBackup('FULL');

    await cluster.withClient('shop', async (client) => {
      await client.query('UPDATE accounts SET balance = balance + 1 WHERE id % 50 = 0');
      await client.query(
        "INSERT INTO accounts SELECT g, 'late-' || g, 1, DATE '2024-01-01' FROM generate_series(20001, 21000) g",
      );
      await client.query(
        'CREATE TABLE fresh AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 3000) g',
      );
      await client.query('DROP TABLE documents');
      await client.query('TRUNCATE to_truncate');
    });
    await cluster.query('postgres', 'CREATE DATABASE newdb');
    await cluster.query(
      'newdb',
      "CREATE TABLE born AS SELECT g AS id, repeat('x', 50) AS v FROM generate_series(1, 1000) g",
    );
    await checkpointAndBackup(mode);

    await cluster.withClient('shop', async (client) => {
      await client.query('DELETE FROM accounts WHERE id > 15000');
      await client.query('VACUUM accounts');
      await client.query("UPDATE fresh SET v = 'changed' WHERE id < 100");
      await client.query(
        'INSERT INTO to_truncate SELECT g, md5(g::text) FROM generate_series(1, 10) g',
      );
    });
    await cluster.query('newdb', 'DELETE FROM born WHERE id % 2 = 0');
    await checkpointAndBackup(mode);
  });

  afterAll(async () => {
    await source?.destroy();
  });

  it('restores every point of the chain FULL → incremental → incremental to equal data', async () => {
    expect(points).toHaveLength(3);
    for (const [index, point] of points.entries()) {
      const target = join(source.dir, `restore-${index}`);
      await strata([
        'restore',
        '-B',
        catalog,
        '--instance',
        instance,
        '-i',
        point.backupId,
        '-D',
        target,
        '-j',
        '2',
      ]);
      const server = await startRestoredCluster(major, target);
      try {
        expect(await fingerprintCluster(server)).toEqual(point.fingerprint);
      } finally {
        await server.destroy();
      }
    }
  });

  it('shows the chain with parents, modes and OK statuses', async () => {
    const shown = JSON.parse(
      (await strata(['show', '-B', catalog, '--instance', instance, '--format=json'])).stdout,
    );
    const backups = shown[0].backups as Array<Record<string, unknown>>;
    expect(backups.map((b) => b['id'])).toEqual(points.map((p) => p.backupId).reverse());
    expect(backups.map((b) => b['status'])).toEqual(['OK', 'OK', 'OK']);
    expect(backups[0]!['parent-backup-id']).toBe(points[1]!.backupId);
    expect(backups[1]!['parent-backup-id']).toBe(points[0]!.backupId);
    expect(backups[0]!['backup-mode']).toBe(mode);
  });

  it('stores a small fraction of the FULL after a small change', async () => {
    await cluster.query('shop', "UPDATE accounts SET owner = 'small-change' WHERE id = 7");
    const small = await backup(mode);
    const full = storedPages(catalog, instance, points[0]!.backupId);
    const incremental = storedPages(catalog, instance, small);
    expect(full).toBeGreaterThan(500);
    expect(incremental).toBeGreaterThan(0);
    expect(incremental / full).toBeLessThan(0.05);
  });
});

describe('chains with a damaged or missing parent', () => {
  let source: CatalogCluster;
  let cluster: TestCluster;
  let catalog: string;
  const ids: string[] = [];

  beforeAll(async () => {
    source = await createCatalogCluster({ major: 17, instance: 'o' });
    ({ cluster, catalog } = source);
    await generateData(cluster, { databases: [], rowsPerTable: 5000 });
    for (const backupMode of ['FULL', 'DELTA', 'DELTA']) {
      await cluster.query(
        'postgres',
        'UPDATE accounts SET balance = balance + 1 WHERE id % 100 = 0',
      );
      ids.push(completedBackupId((await source.backup(['-b', backupMode, '--stream'])).stderr));
    }
  });

  afterAll(async () => {
    await source?.destroy();
  });

  it('makes the children of a CORRUPT backup ORPHAN and refuses to restore them', async () => {
    const relation = (
      await cluster.query<{ path: string }>(
        'postgres',
        "SELECT pg_relation_filepath('accounts') AS path",
      )
    )[0]!.path;
    const stored = join(catalog, 'backups', 'o', ids[0]!, 'database', relation);
    const fd = openSync(stored, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, 8 + 5000);
    byte[0] = byte[0]! ^ 0x55;
    writeSync(fd, byte, 0, 1, 8 + 5000);
    closeSync(fd);

    const validate = await runStrata(['validate', '-B', catalog, '--instance', 'o']);
    expect(validate.code).toBe(1);
    const statuses = JSON.parse(
      (await strata(['show', '-B', catalog, '--instance', 'o', '--format=json'])).stdout,
    )[0].backups.map((b: { status: string }) => b.status);
    expect(statuses).toEqual(['ORPHAN', 'ORPHAN', 'CORRUPT']);
    const restore = await runStrata([
      'restore',
      '-B',
      catalog,
      '--instance',
      'o',
      '-i',
      ids[2]!,
      '-D',
      join(source.dir, 'r1'),
    ]);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toMatch(new RegExp(`Backup ${ids[2]} (is orphan|has status: ORPHAN)`));
  });

  it('makes the child of a missing backup ORPHAN and refuses to restore it', async () => {
    rmSync(join(catalog, 'backups', 'o', ids[1]!), { recursive: true, force: true });
    const validate = await runStrata(['validate', '-B', catalog, '--instance', 'o']);
    expect(validate.code).toBe(1);
    const restore = await runStrata([
      'restore',
      '-B',
      catalog,
      '--instance',
      'o',
      '-i',
      ids[2]!,
      '-D',
      join(source.dir, 'r2'),
    ]);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toContain(ids[1]!);
  });
});

describe('PTRACK backups', () => {
  it('refuse clearly on a server without the ptrack extension and leave the backup ERROR', async () => {
    const source = await createCatalogCluster({ major: 17, instance: 'p' });
    const { catalog, connection } = source;
    try {
      await source.backup(['-b', 'FULL', '--stream']);
      const ptrack = await runStrata([
        'backup',
        '-B',
        catalog,
        '--instance',
        'p',
        '-b',
        'PTRACK',
        '--stream',
        ...connection,
      ]);
      expect(ptrack.code).toBe(1);
      expect(ptrack.stderr).toContain('ERROR: This PostgreSQL instance does not support ptrack');
      const statuses = JSON.parse(
        (await strata(['show', '-B', catalog, '--instance', 'p', '--format=json'])).stdout,
      )[0].backups.map((b: { status: string }) => b.status);
      expect(statuses).toEqual(['ERROR', 'OK']);
    } finally {
      await source.destroy();
    }
  });
});
