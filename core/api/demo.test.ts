import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../storage/local/localStorage.js';
import { makeTempDir } from '../testing/cluster.js';
import { repoRoot, strataCliPath } from '../testing/pgBinaries.js';
import { defaultDemoDir } from './demo.js';
import { createStrataApi } from './strataApi.js';

describe('defaultDemoDir', () => {
  it('is STRATA_DEMO_DIR, else the platform place for per-user data', () => {
    expect(defaultDemoDir({ STRATA_DEMO_DIR: '/srv/demo' }, 'linux')).toBe('/srv/demo');
    expect(defaultDemoDir({ XDG_DATA_HOME: '/home/u/.data' }, 'linux')).toBe(
      '/home/u/.data/strata/demo',
    );
    expect(defaultDemoDir({}, 'linux')).toMatch(/\/\.local\/share\/strata\/demo$/);
    expect(defaultDemoDir({}, 'darwin')).toMatch(/\/Library\/Application Support\/Strata\/demo$/);
  });
});

// The whole demo, as a new user gets it: made by the engine from a sandbox PostgreSQL of this
// checkout's node_modules, with WAL archived through the built CLI.
describe('the demo job', () => {
  const scratch = makeTempDir('strata-demo-');
  const demoDir = join(scratch.path, 'demo');
  const api = createStrataApi({
    storage: new LocalStorage(),
    strataCommand: `"${process.execPath}" "${strataCliPath}"`,
    demoDir,
    searchDirs: [repoRoot],
  });

  afterAll(() => scratch.remove());

  it(
    'makes a catalog with FULL, DELTA and PAGE backups, archived WAL and a second timeline',
    { timeout: 600_000 },
    async () => {
      expect(await api.demoCatalog()).toBeNull();
      const job = await api.startDemo();
      expect(job).toMatchObject({ kind: 'demo', state: 'running', cliCommand: 'strata ui --demo' });
      // A second request while it runs joins the running job.
      expect((await api.startDemo()).id).toBe(job.id);
      const ended = await api.waitForJob(job.id);
      const log = (await api.getJobLog(job.id)).map((line) => `${line.level}: ${line.message}`);
      expect(ended.error, log.join('\n')).toBeNull();
      expect(ended.state).toBe('succeeded');
      expect(ended.progress).toEqual({ done: 12, total: 12, unit: 'steps' });

      const catalog = join(demoDir, 'catalog');
      expect(await api.demoCatalog()).toBe(catalog);
      const info = await api.openCatalog(catalog);
      expect(info.instances).toHaveLength(1);
      expect(info.instances[0]).toMatchObject({
        name: 'demo',
        pgdata: join(demoDir, 'pgdata'),
        backupCount: 4,
        walSegmentSizeBytes: 1024 * 1024,
        retention: { redundancy: 3, windowDays: 7, walDepth: 0 },
      });

      const backups = await api.listBackups(catalog, 'demo');
      expect(
        backups.map((backup) => [backup.mode, backup.walMode, backup.status, backup.timelineId]),
      ).toEqual([
        ['FULL', 'STREAM', 'OK', 2],
        ['PAGE', 'ARCHIVE', 'OK', 1],
        ['DELTA', 'ARCHIVE', 'OK', 1],
        ['FULL', 'STREAM', 'OK', 1],
      ]);
      const [full2, page, delta, full1] = backups as [
        (typeof backups)[0],
        (typeof backups)[0],
        (typeof backups)[0],
        (typeof backups)[0],
      ];
      expect(page.parentId).toBe(delta.id);
      expect(delta.parentId).toBe(full1.id);
      expect(full1.note).toBe('demo: first full backup');

      const timelines = await api.listTimelines(catalog, 'demo');
      expect(
        timelines.map((timeline) => [timeline.tli, timeline.parentTli, timeline.status]),
      ).toEqual([
        [1, 0, 'OK'],
        [2, 1, 'OK'],
      ]);
      const [tl1, tl2] = timelines as [(typeof timelines)[0], (typeof timelines)[0]];
      expect(tl1.backupIds).toEqual([page.id, delta.id, full1.id]);
      expect(tl2.backupIds).toEqual([full2.id]);
      expect(tl2.closestBackupId).toBe(page.id);
      expect(tl1.segmentCount).toBeGreaterThan(5);
      expect(tl2.segmentCount).toBeGreaterThan(0);

      const details = await api.getBackup(catalog, 'demo', page.id);
      expect(details.databases.map((db) => db.name)).toEqual([
        'analytics',
        'hr',
        'postgres',
        'shop',
      ]);
      expect(details.chain).toEqual([full1.id, delta.id, page.id]);

      // The restore point lies on timeline 1 after the PAGE backup: reachable from it on that timeline...
      const destination = join(scratch.path, 'restore');
      const fromPage = await api.planRestore({
        backupPath: catalog,
        instance: 'demo',
        backupId: page.id,
        target: { kind: 'name', name: 'before-cleanup' },
        timeline: '1',
        destination,
      });
      expect(fromPage).toMatchObject({ backupId: page.id, walCoversTarget: true, problem: null });
      // ...and not after the newest backup, taken on timeline 2 after the fork: the plan says why.
      const newest = await api.planRestore({
        backupPath: catalog,
        instance: 'demo',
        target: { kind: 'name', name: 'before-cleanup' },
        destination,
      });
      expect(newest.backupId).toBe(full2.id);
      expect(newest.walCoversTarget).toBe(false);
      expect(newest.problem).toMatch(
        new RegExp(
          `^Restore point "before-cleanup" is not in the archived WAL after backup ${full2.id}`,
        ),
      );

      const again = await api.waitForJob((await api.startDemo()).id);
      expect(again.state).toBe('succeeded');
      expect((await api.getJobLog(again.id)).map((line) => line.message)).toContain(
        `The demo catalog already exists: "${catalog}"`,
      );
    },
  );
});
