import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../core/format/lsn.js';
import { parseTimelineHistory } from '../core/format/timelineHistory.js';
import { TestCluster, makeTempDir } from '../core/testing/cluster.js';
import { completedBackupId, strata } from './strataCli.js';

const major = 17;
const instance = 'fork';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface ArchiveTimelineJson {
  tli: number;
  'parent-tli': number;
  switchpoint: string;
  'min-segno': string;
  'max-segno': string;
  'n-segments': number;
  'closest-backup-id': string;
  status: string;
  'lost-segments': Array<{ 'begin-segno': string; 'end-segno': string }>;
  backups: Array<{ id: string; 'current-tli': number }>;
}

/** Switches to a new segment and waits until the server's archiver has pushed it. */
async function archiveCurrentSegment(cluster: TestCluster): Promise<void> {
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
    if (archived !== null && archived >= last) return;
    await sleep(100);
  }
  throw new Error(`segment ${last} was not archived`);
}

/**
 * A timeline fork made the way a DBA makes one: a FULL backup, more changes, a point-in-time
 * restore to an LSN between them with promotion, the promoted server archiving into the same
 * instance on timeline 2 and backed up there. `show --archive` must describe both timelines.
 */
describe('show --archive after a timeline fork', () => {
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let original: TestCluster;
  let promoted: TestCluster;
  let fullId: string;
  let fullStopLsn: bigint;
  let secondId: string;
  let targetLsn: bigint;

  async function showArchiveJson(): Promise<ArchiveTimelineJson[]> {
    const result = await strata([
      'show',
      '-B',
      catalog,
      '--instance',
      instance,
      '--archive',
      '--format=json',
    ]);
    return JSON.parse(result.stdout)[0].timelines;
  }

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-fork-');
    catalog = join(scratch.path, 'catalog');
    original = await TestCluster.create({
      major,
      initdbArgs: ['--wal-segsize=1'],
      archiveTo: { backupPath: catalog, instance },
    });
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', instance, '-D', original.dataDir]);
    await original.start();
    await original.query(
      'postgres',
      "CREATE TABLE ledger AS SELECT g AS n, 'a' AS batch FROM generate_series(1, 1000) g",
    );
    const full = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      'FULL',
      '--stream',
      ...original.connectionArgs(),
    ]);
    fullId = completedBackupId(full.stderr);
    const control = readFileSync(
      join(catalog, 'backups', instance, fullId, 'backup.control'),
      'utf8',
    );
    fullStopLsn = parseLsn(/^stop-lsn = (.*)$/m.exec(control)![1]!);

    await original.query(
      'postgres',
      "INSERT INTO ledger SELECT g, 'b' FROM generate_series(1, 1000) g",
    );
    await archiveCurrentSegment(original);
    targetLsn = parseLsn(
      (
        await original.query<{ lsn: string }>(
          'postgres',
          'SELECT pg_current_wal_insert_lsn()::text AS lsn',
        )
      )[0]!.lsn,
    );
    await original.query(
      'postgres',
      "INSERT INTO ledger SELECT g, 'c' FROM generate_series(1, 1000) g",
    );
    await archiveCurrentSegment(original);
    await original.stop();

    const restoredDir = join(scratch.path, 'promoted');
    await strata([
      'restore',
      '-B',
      catalog,
      '--instance',
      instance,
      '-D',
      restoredDir,
      `--recovery-target-lsn=${formatLsn(targetLsn)}`,
      '--recovery-target-action=promote',
    ]);
    // The restored postgresql.conf still archives into the same instance: timeline 2 goes there.
    promoted = await TestCluster.create({ major, dataDir: restoredDir });
    await promoted.start();
    for (let attempt = 0; attempt < 600; attempt++) {
      const state = await promoted.query<{ recovering: boolean }>(
        'postgres',
        'SELECT pg_is_in_recovery() AS recovering',
      );
      if (!state[0]!.recovering) break;
      await sleep(100);
    }
    await promoted.query(
      'postgres',
      "INSERT INTO ledger SELECT g, 'd' FROM generate_series(1, 1000) g",
    );
    await archiveCurrentSegment(promoted);
    const second = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      instance,
      '-b',
      'FULL',
      '--stream',
      '-D',
      restoredDir,
      ...promoted.connectionArgs(),
    ]);
    secondId = completedBackupId(second.stderr);
  }, 240_000);

  afterAll(async () => {
    await promoted?.destroy();
    await original?.destroy();
    scratch?.remove();
  });

  it('lists both timelines with the parent and switch point of 00000002.history', async () => {
    const timelines = await showArchiveJson();
    expect(timelines.map((timeline) => timeline.tli)).toEqual([2, 1]);
    const [child, parent] = timelines as [ArchiveTimelineJson, ArchiveTimelineJson];
    const history = parseTimelineHistory(
      readFileSync(join(catalog, 'wal', instance, '00000002.history'), 'utf8'),
      2,
    );
    expect(history).toHaveLength(1);
    expect(child['parent-tli']).toBe(1);
    expect(parseLsn(child.switchpoint)).toBe(history[0]!.switchLsn);
    // Recovery stopped at the target LSN, after the FULL backup and before the 'c' rows.
    expect(parseLsn(child.switchpoint)).toBeGreaterThanOrEqual(targetLsn);
    expect(parseLsn(child.switchpoint)).toBeGreaterThan(fullStopLsn);
    expect(child['closest-backup-id']).toBe(fullId);
    expect(child.backups.map((backup) => backup.id)).toEqual([secondId]);
    expect(child.backups[0]!['current-tli']).toBe(2);
    expect(child['min-segno'].slice(0, 8)).toBe('00000002');
    expect(parent['parent-tli']).toBe(0);
    expect(parent.switchpoint).toBe('0/0');
    expect(parent['closest-backup-id']).toBe('');
    expect(parent.backups.map((backup) => backup.id)).toEqual([fullId]);
    expect(parent.status).toBe('OK');

    const plain = await strata(['show', '-B', catalog, '--instance', instance, '--archive']);
    const rows = plain.stdout.split('\n').filter((line) => /^ \d+ /.test(line));
    expect(rows.map((row) => row.trim().split(/\s+/).slice(0, 3))).toEqual([
      ['2', '1', child.switchpoint],
      ['1', '0', '0/0'],
    ]);
  });

  it('reports a segment removed from the archive as lost', async () => {
    const walDir = join(catalog, 'wal', instance);
    const segments = readdirSync(walDir)
      .filter((name) => /^00000001[0-9A-F]{16}$/.test(name))
      .sort();
    expect(segments.length).toBeGreaterThan(3);
    const removed = segments[Math.floor(segments.length / 2)]!;
    rmSync(join(walDir, removed));
    const parent = (await showArchiveJson()).find((timeline) => timeline.tli === 1)!;
    expect(parent.status).toBe('DEGRADED');
    expect(parent['lost-segments']).toEqual([{ 'begin-segno': removed, 'end-segno': removed }]);
    const plain = await strata(['show', '-B', catalog, '--instance', instance, '--archive']);
    expect(plain.stdout).toMatch(/^ 1 .* DEGRADED *$/m);
  });
});
