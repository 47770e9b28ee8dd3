import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  utimesSync,
} from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { runStrata, spawnStrata, strata } from './strataCli.js';

/**
 * Crash safety (catalog-format.md §11): backup, merge, delete and archive-push are killed with
 * SIGKILL at random moments. After every kill the next command must succeed and find a catalog
 * with nothing half-done left in it (no RUNNING or DELETING backup without a live owner), and at
 * the end every backup marked OK must validate and restore. Kill points are drawn from each
 * command's own measured duration; the seed is printed so a failure can be replayed with
 * STRATA_KILL_SEED.
 */

const major = 17;
const instance = 'crash';
const pushInstance = 'push';
const REQUIRED_KILLS = 50;
const seed = Number(process.env['STRATA_KILL_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded generator, so a failing sequence of kill points can be replayed. */
function seededRandom(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface BackupJson {
  id: string;
  'backup-mode': string;
  'parent-backup-id'?: string;
  status: string;
}

interface KilledRun {
  killed: boolean;
  code: number | null;
  stderr: string;
  durationMs: number;
}

describe('commands killed at random moments', () => {
  const random = seededRandom(seed);
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let cluster: TestCluster;
  let connection: string[];
  /** Row count of the table at the time each backup was taken. */
  const expectedRows = new Map<string, number>();
  /** Unkilled duration of each operation, measured on its first run. */
  const durations = new Map<string, number>();
  const log: string[] = [];
  let kills = 0;
  /** The backups the last `show` listed. */
  let lastListing: BackupJson[] = [];
  let rowsNow = 0;

  function context(): string {
    return `seed ${seed}; last steps:\n${log.slice(-12).join('\n')}`;
  }

  async function run(args: string[]): Promise<string> {
    const result = await runStrata(args);
    if (result.code !== 0) {
      throw new Error(
        `strata ${args.join(' ')} exited ${result.code}\n${result.stderr}\n${context()}`,
      );
    }
    return result.stdout;
  }

  /** Runs a command; from its second run on kills it at a random point of its measured duration. */
  async function runMaybeKilled(kind: string, args: string[]): Promise<KilledRun> {
    const measured = durations.get(kind);
    // Node needs a good part of the first 100 ms to start: most kill points fall after that.
    const delayMs = measured === undefined ? undefined : measured * (0.2 + 0.78 * random());
    const child = spawnStrata(args);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout!.resume();
    const startMs = Date.now();
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    let killed = false;
    if (delayMs !== undefined) {
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) {
          killed = child.kill('SIGKILL');
        }
      }, delayMs);
      await exited;
      clearTimeout(timer);
    }
    const code = await exited;
    const durationMs = Date.now() - startMs;
    if (measured === undefined) {
      if (code !== 0) throw new Error(`strata ${args.join(' ')} failed\n${stderr}\n${context()}`);
      durations.set(kind, durationMs);
    }
    if (killed) kills++;
    log.push(
      `${kind}: ${killed ? `killed after ${Math.round(delayMs!)} ms` : `exit ${code}`} (${durationMs} ms)`,
    );
    return { killed, code, stderr, durationMs };
  }

  /**
   * The next command: `show` must succeed and find nothing left RUNNING or DELETING. A killed
   * merge may leave MERGING and MERGED backups: those are for the next merge to resume.
   */
  async function listBackups(options: { afterMergeKill?: boolean } = {}): Promise<BackupJson[]> {
    const out = await run(['show', '-B', catalog, '--instance', instance, '--format=json']);
    const backups: BackupJson[] = JSON.parse(out)[0].backups;
    lastListing = backups;
    // DONE: a backup killed while validating itself is complete, only not validated yet.
    const allowed = [
      'OK',
      'DONE',
      'ERROR',
      'ORPHAN',
      ...(options.afterMergeKill ? ['MERGING', 'MERGED'] : []),
    ];
    for (const backup of backups) {
      if (allowed.includes(backup.status) || isFreshEmptyDirectory(backup)) continue;
      throw new Error(`backup ${backup.id} is ${backup.status} after show\n${context()}`);
    }
    return backups;
  }

  /**
   * A backup killed between creating its directory and locking it leaves an empty directory,
   * listed as UNKNOWN; the repair removes it only once it is 30 s old (it might be a backup
   * about to lock it).
   */
  function isFreshEmptyDirectory(backup: BackupJson): boolean {
    const dir = join(catalog, 'backups', instance, backup.id);
    return backup.status === 'UNKNOWN' && existsSync(dir) && readdirSync(dir).length === 0;
  }

  /** Ages the empty directories a kill left past the repair's grace, and lets show remove them. */
  async function removeFreshEmptyDirectories(): Promise<void> {
    const empty = (await listBackups()).filter(isFreshEmptyDirectory);
    const longAgo = new Date(Date.now() - 60_000);
    for (const backup of empty)
      utimesSync(join(catalog, 'backups', instance, backup.id), longAgo, longAgo);
    if (empty.length > 0) expect((await listBackups()).filter(isFreshEmptyDirectory)).toEqual([]);
  }

  async function addRows(): Promise<void> {
    await cluster.query(
      'postgres',
      'INSERT INTO ledger SELECT g, md5(g::text) FROM generate_series(1, 500) g',
    );
    rowsNow += 500;
  }

  function backupArgs(mode: string, stream: boolean): string[] {
    // --no-sync: a killed process loses nothing the page cache holds, and fsync only slows the test.
    return [
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      mode,
      '--no-sync',
      ...(stream ? ['--stream'] : []),
      ...connection,
    ];
  }

  async function backupRound(mode: 'FULL' | 'DELTA', stream: boolean): Promise<void> {
    const before = new Set(lastListing.map((backup) => backup.id));
    await addRows();
    await runMaybeKilled(`backup-${mode}-${stream}`, backupArgs(mode, stream));
    for (const backup of await listBackups()) {
      if (before.has(backup.id)) continue;
      if (backup.status === 'OK' || backup.status === 'DONE') expectedRows.set(backup.id, rowsNow);
      else if (!isFreshEmptyDirectory(backup)) expect(backup.status, context()).toBe('ERROR');
    }
  }

  async function takeBackup(mode: 'FULL' | 'DELTA'): Promise<string> {
    const before = new Set(lastListing.map((backup) => backup.id));
    await addRows();
    await run(backupArgs(mode, true));
    const created = (await listBackups()).filter((backup) => !before.has(backup.id));
    expect(created.map((backup) => backup.status)).toEqual(['OK']);
    expectedRows.set(created[0]!.id, rowsNow);
    return created[0]!.id;
  }

  /** The chain of `id` FULL first, or undefined when it is broken or not all OK. */
  function chainOf(backups: BackupJson[], id: string): BackupJson[] | undefined {
    const byId = new Map(backups.map((backup) => [backup.id, backup]));
    const chain: BackupJson[] = [];
    for (
      let current = byId.get(id);
      current;
      current = byId.get(current['parent-backup-id'] ?? '')
    ) {
      if (current.status !== 'OK' && current.status !== 'DONE') return undefined;
      chain.unshift(current);
      if (current['backup-mode'] === 'FULL') return chain;
    }
    return undefined;
  }

  /** A DELTA whose merge orphans no OK backup: every OK child of its ancestors is on its chain. */
  function mergeCandidate(backups: BackupJson[]): BackupJson | undefined {
    for (const backup of backups) {
      if (backup['backup-mode'] !== 'DELTA') continue;
      const chain = chainOf(backups, backup.id);
      if (!chain) continue;
      const ancestors = new Set(chain.slice(0, -1).map((member) => member.id));
      const members = new Set(chain.map((member) => member.id));
      const offChain = backups.filter(
        (other) =>
          (other.status === 'OK' || other.status === 'DONE') &&
          ancestors.has(other['parent-backup-id'] ?? '') &&
          !members.has(other.id),
      );
      if (offChain.length === 0) return backup;
    }
    return undefined;
  }

  async function mergeRound(): Promise<void> {
    let dest = mergeCandidate(lastListing);
    if (!dest) {
      await takeBackup('FULL');
      const id = await takeBackup('DELTA');
      dest = lastListing.find((backup) => backup.id === id)!;
    }
    const chain = chainOf(lastListing, dest.id)!;
    await runMaybeKilled('merge', [
      'merge',
      '-B',
      catalog,
      '--instance',
      instance,
      '-i',
      dest.id,
      '-j',
      '2',
    ]);
    const after = await listBackups({ afterMergeKill: true });
    const merged = after.find((backup) => backup.id === dest!.id);
    if (!(merged?.['backup-mode'] === 'FULL' && merged.status === 'OK')) {
      await run(['merge', '-B', catalog, '--instance', instance, '-i', dest.id]);
    }
    const final = await listBackups();
    expect(
      final.find((backup) => backup.id === dest!.id),
      context(),
    ).toMatchObject({ 'backup-mode': 'FULL', status: 'OK' });
    for (const member of chain) {
      if (member.id !== dest.id) {
        expect(
          final.some((backup) => backup.id === member.id),
          context(),
        ).toBe(false);
        expectedRows.delete(member.id);
      }
    }
  }

  async function deleteRound(): Promise<void> {
    let backups = lastListing;
    // A failed backup when there is one, else the newest DELTA (a leaf: nothing else goes with it).
    let target =
      backups.find((backup) => backup.status === 'ERROR') ??
      backups.find((backup) => backup['backup-mode'] === 'DELTA');
    if (!target) {
      await takeBackup('DELTA');
      backups = await listBackups();
      target = backups[0]!;
    }
    await runMaybeKilled('delete', [
      'delete',
      '-B',
      catalog,
      '--instance',
      instance,
      '-i',
      target.id,
    ]);
    const remaining = new Set((await listBackups()).map((backup) => backup.id));
    for (const id of [...expectedRows.keys()]) if (!remaining.has(id)) expectedRows.delete(id);
  }

  async function retentionRound(): Promise<void> {
    await runMaybeKilled('retention', [
      'delete',
      '-B',
      catalog,
      '--instance',
      instance,
      '--delete-expired',
      '--delete-wal',
      '--retention-redundancy=3',
    ]);
    const remaining = new Set((await listBackups()).map((backup) => backup.id));
    for (const id of [...expectedRows.keys()]) if (!remaining.has(id)) expectedRows.delete(id);
  }

  let pushCounter = 0;
  async function pushRound(sourceSegment: string): Promise<void> {
    // A fresh name each round: pushing a name already archived with the same content is a no-op.
    pushCounter++;
    const name = `0000000A000000000000${pushCounter.toString(16).toUpperCase().padStart(4, '0')}`;
    const sourceDir = join(scratch.path, 'push-source');
    copyFileSync(sourceSegment, join(sourceDir, name));
    const args = [
      'archive-push',
      '-B',
      catalog,
      '--instance',
      pushInstance,
      '--wal-file-name',
      name,
      `--wal-file-path=${join(sourceDir, name)}`,
      '--compress',
      '--archive-timeout=1',
    ];
    await runMaybeKilled('archive-push', args);
    await run(args);
    const archived = gunzipSync(readFileSync(join(catalog, 'wal', pushInstance, `${name}.gz`)));
    expect(archived.equals(readFileSync(sourceSegment)), context()).toBe(true);
    const leftovers = readdirSync(join(catalog, 'wal', pushInstance)).filter((file) =>
      file.endsWith('.part'),
    );
    expect(leftovers, context()).toEqual([]);
  }

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-kill-');
    catalog = join(scratch.path, 'catalog');
    cluster = await TestCluster.create({
      major,
      initdbArgs: ['--wal-segsize=1'],
      archiveTo: { backupPath: catalog, instance },
    });
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', instance, '-D', cluster.dataDir]);
    await strata([
      'add-instance',
      '-B',
      catalog,
      '--instance',
      pushInstance,
      '-D',
      cluster.dataDir,
    ]);
    await strata(['set-config', '-B', catalog, '--instance', instance, '--archive-timeout=2']);
    await cluster.start();
    connection = cluster.connectionArgs();
    await cluster.query('postgres', 'CREATE TABLE ledger (n int, v text)');
    mkdirSync(join(scratch.path, 'push-source'));
    await takeBackup('FULL');
  }, 120_000);

  afterAll(async () => {
    await cluster?.destroy();
    scratch?.remove();
  });

  it(`leaves a catalog the next command repairs, after at least ${REQUIRED_KILLS} kills`, async () => {
    // A real segment to push, copied away from the archive that WAL purge rounds shrink.
    const sourceSegment = join(scratch.path, 'segment');
    copyFileSync(
      join(
        catalog,
        'wal',
        instance,
        readdirSync(join(catalog, 'wal', instance)).find((name) => /^[0-9A-F]{24}$/.test(name))!,
      ),
      sourceSegment,
    );
    // Cheap commands more often than FULL backups, so that 50 kills fit in a few minutes.
    const rounds: Array<() => Promise<void>> = [
      () => backupRound('DELTA', true),
      () => pushRound(sourceSegment),
      () => deleteRound(),
      () => mergeRound(),
      () => pushRound(sourceSegment),
      () => backupRound('DELTA', false),
      () => deleteRound(),
      () => pushRound(sourceSegment),
      () => retentionRound(),
      () => backupRound('DELTA', true),
      () => mergeRound(),
      () => backupRound('FULL', true),
    ];
    const startedMs = Date.now();
    for (let round = 0; kills < REQUIRED_KILLS; round++) {
      if (round > 400) throw new Error(`only ${kills} kills in ${round} rounds\n${context()}`);
      await rounds[round % rounds.length]!();
    }

    const loopMs = Date.now() - startedMs;
    // Failed backups are what kills leave; the rest of the instance must validate as a whole.
    await removeFreshEmptyDirectories();
    await run(['delete', '-B', catalog, '--instance', instance, '--status=ERROR']);
    await run(['validate', '-B', catalog, '--instance', instance]);
    const okBackups = (await listBackups()).filter((backup) => backup.status === 'OK');
    expect(okBackups.length).toBeGreaterThan(0);
    // Every OK backup restores; a sample is started and must hold the rows it was taken with.
    const sample = new Set([
      okBackups[0]!.id,
      okBackups.find((backup) => backup['backup-mode'] === 'FULL')?.id,
      okBackups.at(-1)!.id,
    ]);
    for (const [index, backup] of okBackups.entries()) {
      const target = join(scratch.path, `restore-${index}`);
      await run([
        'restore',
        '-B',
        catalog,
        '--instance',
        instance,
        '-i',
        backup.id,
        '-D',
        target,
        '--recovery-target=immediate',
        '--no-sync',
        '--no-validate',
        '-j',
        '2',
      ]);
      expect(existsSync(join(target, 'global', 'pg_control')), context()).toBe(true);
      if (!sample.has(backup.id)) continue;
      const restored = await startRestoredCluster(major, target);
      try {
        for (let attempt = 0; attempt < 300; attempt++) {
          const state = await restored.query<{ recovering: boolean; paused: boolean }>(
            'postgres',
            "SELECT pg_is_in_recovery() AS recovering, pg_is_in_recovery() AND pg_get_wal_replay_pause_state() <> 'not paused' AS paused",
          );
          if (!state[0]!.recovering || state[0]!.paused) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        const rows = await restored.query<{ n: string }>(
          'postgres',
          'SELECT count(*)::text AS n FROM ledger',
        );
        expect(Number(rows[0]!.n), `${backup.id}: ${context()}`).toBe(expectedRows.get(backup.id));
      } finally {
        await restored.destroy();
      }
    }
    console.log(
      `${kills} kills in ${loopMs} ms, checks ${Date.now() - startedMs - loopMs} ms, seed ${seed}; ` +
        `unkilled durations (ms): ${JSON.stringify(Object.fromEntries(durations))}`,
    );
  }, 600_000);
});
