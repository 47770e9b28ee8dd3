import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addInstance, initCatalog } from '../commands/instance/instance.js';
import { createLogger } from '../log.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import { TestCluster, makeTempDir, startRestoredCluster } from '../testing/cluster.js';
import { fingerprintCluster, generateData } from '../testing/data.js';
import type { ClusterFingerprint } from '../testing/data.js';
import { strataCliPath } from '../testing/pgBinaries.js';
import type { JobInfo, StrataEvent } from './contract.js';
import { createStrataApi } from './strataApi.js';

// StrataApi against a real PostgreSQL 17 whose WAL is archived by `strata archive-push`: backups
// taken through startBackup, a point-in-time restore and a partial restore planned with
// planRestore and run with startRestore, each proved by starting the restored server and
// comparing its data with the source's at the target.

const MAJOR = 17;
const INSTANCE = 'main';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function only(fingerprint: ClusterFingerprint, databases: string[]): ClusterFingerprint {
  return Object.fromEntries(
    Object.entries(fingerprint).filter(([key]) => databases.some((db) => key.startsWith(`${db}.`))),
  );
}

describe(`StrataApi jobs on PostgreSQL ${MAJOR}`, () => {
  const scratch = makeTempDir('strata-api-');
  const catalog = join(scratch.path, 'catalog');
  const storage = new LocalStorage();
  const api = createStrataApi({
    storage,
    strataCommand: `"${process.execPath}" "${strataCliPath}"`,
    demoDir: join(scratch.path, 'demo'),
  });
  const events: StrataEvent[] = [];
  const restored: TestCluster[] = [];
  let cluster: TestCluster;
  let connection: { host: string; port: number; user: string; database: string };
  let fullId: string;
  let deltaId: string;
  let targetTime: string;
  let atDelta: ClusterFingerprint;
  let atTarget: ClusterFingerprint;
  let atEnd: ClusterFingerprint;

  async function commitBatch(batch: string): Promise<void> {
    await cluster.query(
      'postgres',
      'INSERT INTO ledger SELECT g, $1 FROM generate_series(1, 100) g',
      [batch],
    );
  }

  async function runJob(start: Promise<JobInfo>): Promise<JobInfo> {
    const job = await start;
    return api.waitForJob(job.id);
  }

  beforeAll(async () => {
    api.subscribe((event) => events.push(event));
    cluster = await TestCluster.create({
      major: MAJOR,
      archiveTo: { backupPath: catalog, instance: INSTANCE },
    });
    const ctx = { storage, logger: createLogger(() => undefined), now: Date.now };
    await initCatalog(ctx, catalog);
    await addInstance(ctx, {
      backupPath: catalog,
      instance: INSTANCE,
      pgdata: cluster.dataDir,
      overrides: {},
    });
    await cluster.start();
    connection = { host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' };
    await generateData(cluster, { databases: ['shop', 'hr'], rowsPerTable: 3000 });
    await cluster.query('postgres', 'CREATE TABLE ledger (n int, batch text)');
    await commitBatch('0-base');
  });

  afterAll(async () => {
    for (const server of restored) await server.destroy();
    await cluster?.destroy();
    scratch.remove();
  });

  it('takes a FULL and a DELTA backup as jobs, pinning the FULL with a TTL', async () => {
    const full = await runJob(
      api.startBackup({
        backupPath: catalog,
        instance: INSTANCE,
        mode: 'FULL',
        stream: true,
        compressAlg: 'zlib',
        threads: 2,
        note: 'api full',
        ttlSeconds: 3600,
        connection,
      }),
    );
    expect(full.error).toBeNull();
    expect(full.state).toBe('succeeded');
    expect(full.progress?.unit).toBe('files');
    expect(full.progress?.done).toBe(full.progress?.total);
    expect(full.cliCommand).toBe(
      `strata backup -B ${catalog} --instance=main -b FULL --stream --compress-algorithm=zlib -j 2 --note='api full' --ttl=3600 ` +
        `-h 127.0.0.1 -p ${cluster.port} -U postgres -d postgres`,
    );

    await commitBatch('1-a');
    await cluster.query('shop', 'UPDATE accounts SET balance = balance + 1 WHERE id % 3 = 0');
    const delta = await runJob(
      api.startBackup({
        backupPath: catalog,
        instance: INSTANCE,
        mode: 'DELTA',
        stream: false,
        connection,
      }),
    );
    expect(delta.state).toBe('succeeded');
    atDelta = await fingerprintCluster(cluster);

    const backups = await api.listBackups(catalog, INSTANCE);
    expect(backups.map((backup) => [backup.mode, backup.walMode, backup.status])).toEqual([
      ['DELTA', 'ARCHIVE', 'OK'],
      ['FULL', 'STREAM', 'OK'],
    ]);
    [deltaId, fullId] = [backups[0]!.id, backups[1]!.id];
    const fullBackup = backups[1]!;
    expect(fullBackup.note).toBe('api full');
    expect(fullBackup.compressAlg).toBe('zlib');
    expect(fullBackup.expireTime).toBe(fullBackup.recoveryTime! + 3600);
    expect(backups[0]!.parentId).toBe(fullId);

    const jobLog = await api.getJobLog(full.id);
    expect(jobLog.some((line) => line.message === `Backup ${fullId} completed`)).toBe(true);
    expect(
      events.some(
        (event) =>
          event.type === 'catalog-changed' &&
          event.backupPath === catalog &&
          event.instance === INSTANCE,
      ),
    ).toBe(true);

    // The target: after batch b, a whole second before batch c.
    await commitBatch('2-b');
    atTarget = await fingerprintCluster(cluster);
    await sleep(1100);
    targetTime = (
      await cluster.query<{ t: string }>(
        'postgres',
        "SELECT to_char(date_trunc('second', clock_timestamp() AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24:MI:SS') || '+00' AS t",
      )
    )[0]!.t;
    await sleep(1100);
    await commitBatch('3-c');
    await cluster.query('hr', 'DELETE FROM accounts WHERE id % 2 = 0');
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
    atEnd = await fingerprintCluster(cluster);
  });

  it('plans a point-in-time restore: the chain ending before the target, and WAL that reaches it', async () => {
    const destination = join(scratch.path, 'pitr');
    const plan = await api.planRestore({
      backupPath: catalog,
      instance: INSTANCE,
      target: { kind: 'time', time: targetTime },
      destination,
    });
    expect(plan.problem).toBeNull();
    expect(plan.walCoversTarget).toBe(true);
    expect(plan.backupId).toBe(deltaId);
    expect(plan.chain.map((backup) => backup.id)).toEqual([fullId, deltaId]);
    expect(plan.cliCommand).toBe(
      `strata restore -B ${catalog} --instance=main -D ${destination} --recovery-target-time='${targetTime}'`,
    );

    const future = await api.planRestore({
      backupPath: catalog,
      instance: INSTANCE,
      target: { kind: 'time', time: '2099-01-01 00:00:00+00' },
      destination,
    });
    expect(future.walCoversTarget).toBe(false);
    expect(future.problem).toMatch(
      /^Not enough WAL records to time 2099-01-01 .*\. Recovery can be done up to time /,
    );
  });

  it('restores to the target time as a job; the started server holds the data of that moment', async () => {
    const destination = join(scratch.path, 'pitr');
    const job = await api.startRestore({
      backupPath: catalog,
      instance: INSTANCE,
      target: { kind: 'time', time: targetTime },
      action: 'promote',
      destination,
      threads: 2,
    });
    expect(job.cliCommand).toBe(
      `strata restore -B ${catalog} --instance=main -D ${destination} --recovery-target-time='${targetTime}' ` +
        '--recovery-target-action=promote -j 2',
    );
    const ended = await api.waitForJob(job.id);
    expect(ended.error).toBeNull();
    expect(ended.state).toBe('succeeded');
    const states = events.flatMap((event) =>
      event.type === 'job' && event.job.id === job.id ? [event.job.state] : [],
    );
    expect(states[0]).toBe('running');
    expect(states.at(-1)).toBe('succeeded');
    expect(
      events.some(
        (event) =>
          event.type === 'job' && event.job.id === job.id && (event.job.progress?.done ?? 0) > 0,
      ),
    ).toBe(true);
    const log = (await api.getJobLog(job.id)).map((line) => line.message);
    expect(log).toContain(`Restore of backup ${deltaId} completed.`);
    expect(log.at(-1)).toBe(
      `Restored backup ${deltaId} into "${destination}". Start the server with: pg_ctl -D ${destination} start`,
    );

    const server = await startRestoredCluster(MAJOR, destination);
    restored.push(server);
    await waitForPromotion(server);
    expect(await fingerprintCluster(server)).toEqual(atTarget);
    expect(atTarget).not.toEqual(atEnd);
    await server.stop();
  });

  it('restores only the ticked databases; the others are left empty', async () => {
    const destination = join(scratch.path, 'partial');
    const request = {
      backupPath: catalog,
      instance: INSTANCE,
      backupId: deltaId,
      target: { kind: 'immediate' as const },
      action: 'promote' as const,
      destination,
      includeDatabases: ['postgres', 'shop'],
    };
    const plan = await api.planRestore(request);
    expect(plan).toMatchObject({ backupId: deltaId, walCoversTarget: true, problem: null });
    expect(plan.chain.map((backup) => backup.id)).toEqual([fullId, deltaId]);
    const ended = await api.waitForJob((await api.startRestore(request)).id);
    expect(ended.error).toBeNull();
    expect(ended.state).toBe('succeeded');
    expect(ended.cliCommand).toBe(
      `strata restore -B ${catalog} --instance=main -D ${destination} -i ${deltaId} --recovery-target=immediate ` +
        '--recovery-target-action=promote --db-include=postgres --db-include=shop',
    );
    expect((await api.getJobLog(ended.id)).some((line) => line.message.includes('"hr"'))).toBe(
      true,
    );

    const server = await startRestoredCluster(MAJOR, destination);
    restored.push(server);
    await waitForPromotion(server);
    await expect(server.query('hr', 'SELECT count(*) FROM accounts')).rejects.toThrow();
    // The unrestored database is dropped, as the job's log says to; the rest is the DELTA's moment.
    await server.query('postgres', 'DROP DATABASE hr');
    expect(await fingerprintCluster(server)).toEqual(only(atDelta, ['postgres', 'shop']));
    await server.stop();
  });

  it('cancels a restore job while it copies files: it ends cancelled and leaves no pg_control behind', async () => {
    const destination = join(scratch.path, 'cancelled');
    let jobId = '';
    let cancelledAtFile = 0;
    // Cancel at the first file the restore reports, from inside the event: the next file stops it.
    const unsubscribe = api.subscribe((event) => {
      if (
        event.type === 'job' &&
        event.job.id === jobId &&
        event.job.progress &&
        cancelledAtFile === 0
      ) {
        cancelledAtFile = event.job.progress.done;
        void api.cancelJob(jobId);
      }
    });
    const job = await api.startRestore({
      backupPath: catalog,
      instance: INSTANCE,
      target: { kind: 'latest' },
      destination,
    });
    jobId = job.id;
    const ended = await api.waitForJob(job.id);
    unsubscribe();
    expect(cancelledAtFile).toBeGreaterThan(0);
    expect(ended.state).toBe('cancelled');
    expect(ended.error).toMatch(/^Backup files restoring failed/);
    const log = (await api.getJobLog(job.id)).map((line) => line.message);
    expect(log).toContain('Cancel requested, stopping the job');
    expect(log).toContain('Interrupted during data file restore');
    expect(existsSync(join(destination, 'global', 'pg_control'))).toBe(false);
  });

  async function waitForPromotion(server: TestCluster): Promise<void> {
    for (let attempt = 0; attempt < 600; attempt++) {
      const [state] = await server.query<{ recovering: boolean }>(
        'postgres',
        'SELECT pg_is_in_recovery() AS recovering',
      );
      if (!state!.recovering) return;
      await sleep(100);
    }
    throw new Error('the restored server did not finish recovery');
  }
});
