import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBackupControl, parseBackupControl } from '../core/catalog/backupControl.js';
import { lsnToSegno } from '../core/format/walNames.js';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { completedBackupId, runStrata, strata } from './strataCli.js';

const major = 17;
const DAY_SEC = 24 * 60 * 60;
const SEGMENT_BYTES = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Retention on real backups, with the clock fixed through STRATA_NOW. Backups are taken now with
 * forced start times (`--start-time`) and their recovery time is then moved back by the catalog's
 * own writer, so that a chain spans weeks while its data is real and restorable.
 */
describe('retention on real backups', () => {
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let cluster: TestCluster;
  let connection: string[];
  const now = Math.floor(Date.now() / 1000);
  const rowsAt = new Map<string, number>();

  function controlPath(instance: string, id: string): string {
    return join(catalog, 'backups', instance, id, 'backup.control');
  }

  function readControl(instance: string, id: string) {
    const path = controlPath(instance, id);
    return parseBackupControl(readFileSync(path, 'utf8'), path);
  }

  /** Moves a backup's recovery point `daysAgo` days before "now" (its start time is forced alike). */
  function ageBackup(instance: string, id: string, daysAgo: number): void {
    const meta = readControl(instance, id);
    meta.recoveryTime = now - daysAgo * DAY_SEC + 60;
    meta.endTime = meta.recoveryTime + 1;
    writeFileSync(controlPath(instance, id), formatBackupControl(meta));
  }

  async function rows(): Promise<number> {
    return Number(
      (await cluster.query<{ n: string }>('postgres', 'SELECT count(*)::text AS n FROM ledger'))[0]!
        .n,
    );
  }

  async function backup(instance: string, mode: string, extra: string[]): Promise<string> {
    await cluster.query('postgres', 'INSERT INTO ledger SELECT g FROM generate_series(1, 777) g');
    const result = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      mode,
      '--no-sync',
      ...connection,
      ...extra,
    ]);
    const id = completedBackupId(result.stderr);
    rowsAt.set(id, await rows());
    return id;
  }

  function deleteAt(instance: string, args: string[]) {
    return runStrata(['delete', '-B', catalog, '--instance', instance, ...args], {
      env: { STRATA_NOW: String(now) },
    });
  }

  function backupIds(instance: string): string[] {
    return readdirSync(join(catalog, 'backups', instance))
      .filter((name) => name !== 'pg_probackup.conf')
      .sort();
  }

  async function restoredRows(instance: string, id: string): Promise<number> {
    const target = join(scratch.path, `restore-${instance}-${id}`);
    await strata([
      'restore',
      '-B',
      catalog,
      '--instance',
      instance,
      '-i',
      id,
      '-D',
      target,
      '--recovery-target=immediate',
      '--no-sync',
    ]);
    const server = await startRestoredCluster(major, target);
    try {
      for (let attempt = 0; attempt < 300; attempt++) {
        const state = await server.query<{ ready: boolean }>(
          'postgres',
          "SELECT NOT pg_is_in_recovery() OR pg_get_wal_replay_pause_state() <> 'not paused' AS ready",
        );
        if (state[0]!.ready) break;
        await sleep(100);
      }
      return Number(
        (
          await server.query<{ n: string }>('postgres', 'SELECT count(*)::text AS n FROM ledger')
        )[0]!.n,
      );
    } finally {
      await server.destroy();
    }
  }

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-retention-');
    catalog = join(scratch.path, 'catalog');
    cluster = await TestCluster.create({
      major,
      initdbArgs: ['--wal-segsize=1'],
      archiveTo: { backupPath: catalog, instance: 'archived' },
    });
    await strata(['init', '-B', catalog]);
    for (const instance of ['window', 'archived']) {
      await strata(['add-instance', '-B', catalog, '--instance', instance, '-D', cluster.dataDir]);
    }
    await cluster.start();
    connection = cluster.connectionArgs();
    await cluster.query('postgres', 'CREATE TABLE ledger (n int)');
  });

  afterAll(async () => {
    await cluster?.destroy();
    scratch?.remove();
  });

  it('window 7 days, the §9.3 example: dry run, a pin, then merge of A+B+C into C and E deleted', async () => {
    const instance = 'window';
    // E FULL (D-30); A FULL (D-20) <- B DELTA (D-10) <- C DELTA (D-3).
    const stream = ['--stream'];
    const E = await backup(instance, 'FULL', [...stream, `--start-time=${now - 30 * DAY_SEC}`]);
    const A = await backup(instance, 'FULL', [...stream, `--start-time=${now - 20 * DAY_SEC}`]);
    const B = await backup(instance, 'DELTA', [...stream, `--start-time=${now - 10 * DAY_SEC}`]);
    const C = await backup(instance, 'DELTA', [...stream, `--start-time=${now - 3 * DAY_SEC}`]);
    for (const [id, days] of [
      [E, 30],
      [A, 20],
      [B, 10],
      [C, 3],
    ] as const)
      ageBackup(instance, id, days);
    const all = [A, B, C, E].sort();

    const dryRun = await deleteAt(instance, [
      '--delete-expired',
      '--merge-expired',
      '--retention-window=7',
      '--dry-run',
    ]);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(backupIds(instance)).toEqual(all);
    expect(dryRun.stderr).toContain(
      `INFO: Backup ${C}, mode: DELTA, status: OK. Redundancy: 1/0, Time Window: 2d/7d. Active`,
    );
    expect(dryRun.stderr).toContain(
      `INFO: Backup ${B}, mode: DELTA, status: OK. Redundancy: 1/0, Time Window: 9d/7d. Expired`,
    );
    expect(dryRun.stderr).toContain(
      `INFO: Backup ${E}, mode: FULL, status: OK. Redundancy: 2/0, Time Window: 29d/7d. Expired`,
    );

    // Pinned for 40 days from its recovery point, E outlives the window; A and B stay for C.
    await strata(['set-backup', '-B', catalog, '--instance', instance, '-i', E, '--ttl=40d']);
    const pinned = await deleteAt(instance, ['--delete-expired', '--retention-window=7']);
    expect(pinned.code, pinned.stderr).toBe(0);
    expect(backupIds(instance)).toEqual(all);
    expect(pinned.stderr).toContain(
      `INFO: Backup ${E}, mode: FULL, status: OK. Redundancy: 2/0, Time Window: 29d/40d. Active`,
    );
    expect(pinned.stderr).toContain('INFO: There are no backups to delete by retention policy');
    await strata(['set-backup', '-B', catalog, '--instance', instance, '-i', E, '--ttl=0']);

    const merged = await deleteAt(instance, [
      '--delete-expired',
      '--merge-expired',
      '--retention-window=7',
    ]);
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stderr).toContain(
      `INFO: Merge incremental chain between full backup ${A} and backup ${C}`,
    );
    expect(merged.stderr).toContain('INFO: Purging finished');
    expect(backupIds(instance)).toEqual([C]);
    const result = readControl(instance, C);
    expect(result.backupMode).toBe('FULL');
    expect(result.status).toBe('OK');
    expect(result.recoveryTime).toBe(now - 3 * DAY_SEC + 60);
    await strata(['validate', '-B', catalog, '--instance', instance]);
    expect(await restoredRows(instance, C)).toBe(rowsAt.get(C));
  }, 240_000);

  it('redundancy 2 with wal-depth 1 on ARCHIVE backups: the oldest FULL goes, WAL is kept from the anchor and for the older ARCHIVE backup', async () => {
    const instance = 'archived';
    await backup(instance, 'FULL', []);
    const F2 = await backup(instance, 'FULL', []);
    const F3 = await backup(instance, 'FULL', []);
    const purged = await deleteAt(instance, [
      '--delete-expired',
      '--delete-wal',
      '--retention-redundancy=2',
      '--wal-depth=1',
      '--log-level-console=log',
    ]);
    expect(purged.code, purged.stderr).toBe(0);
    expect(backupIds(instance)).toEqual([F2, F3].sort());

    const f2 = readControl(instance, F2);
    const f3 = readControl(instance, F3);
    const kept = (segno: bigint) =>
      segno >= lsnToSegno(f3.startLsn, SEGMENT_BYTES) ||
      (segno >= lsnToSegno(f2.startLsn, SEGMENT_BYTES) &&
        segno <= lsnToSegno(f2.stopLsn, SEGMENT_BYTES));
    const segments = readdirSync(join(catalog, 'wal', instance))
      .filter((name) => /^00000001[0-9A-F]{16}$/.test(name))
      .map((name) => BigInt(`0x${name.slice(8, 16)}`) * 4096n + BigInt(`0x${name.slice(16)}`));
    expect(segments.length).toBeGreaterThan(0);
    for (const segno of segments) expect(kept(segno), `segment ${segno} should be gone`).toBe(true);
    expect(segments).toContain(lsnToSegno(f2.startLsn, SEGMENT_BYTES));
    expect(segments).toContain(lsnToSegno(f3.startLsn, SEGMENT_BYTES));
    expect(purged.stderr).toContain(`LOG: On timeline 1 WAL is protected from purge at`);
    await strata(['validate', '-B', catalog, '--instance', instance]);
    expect(await restoredRows(instance, F2)).toBe(rowsAt.get(F2));
  }, 240_000);

  it('del-instance removes one instance and leaves the other as it was', async () => {
    const before = backupIds('archived');
    const result = await strata(['del-instance', '-B', catalog, '--instance', 'window']);
    expect(result.stderr).toContain("INFO: Instance 'window' successfully deleted");
    expect(readdirSync(join(catalog, 'backups'))).toEqual(['archived']);
    expect(readdirSync(join(catalog, 'wal'))).toEqual(['archived']);
    expect(backupIds('archived')).toEqual(before);
  });
});
