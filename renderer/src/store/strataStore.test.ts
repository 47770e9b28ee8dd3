import { describe, expect, it } from 'vitest';
import type {
  BackupDetails,
  BackupSummary,
  CatalogInfo,
  JobInfo,
  JobKind,
  RestorePlan,
  RestoreRequest,
  StrataApi,
  StrataEvent,
} from '../../../core/api/contract.js';
import { sampleBackup, sampleTimeline } from '../testing/sampleData.js';
import { createStrataStore } from './strataStore.js';
import type { RecentCatalogStore } from './strataStore.js';

/**
 * A typed stand-in for StrataApi that answers from memory and lets the test push events, so the
 * store's own logic (what it loads, in which order, how events change state) is tested without a
 * server. The real API is exercised by e2e/ui against a real catalog.
 */
class FakeApi implements StrataApi {
  calls: Array<[string, unknown[]]> = [];
  listeners = new Set<(event: StrataEvent) => void>();
  backups: BackupSummary[] = [
    sampleBackup({ id: 'F1', startTime: 100 }),
    sampleBackup({ id: 'D1', parentId: 'F1', mode: 'DELTA', startTime: 200 }),
  ];
  failOpen: string | null = null;
  planned: RestoreRequest[] = [];
  private jobCount = 0;

  private record(name: string, args: unknown[]): void {
    this.calls.push([name, args]);
  }

  private job(kind: JobKind, title: string): JobInfo {
    this.jobCount++;
    return {
      id: `job-${this.jobCount}`,
      kind,
      title,
      state: 'running',
      startedAt: 1_700_000_000_000,
      endedAt: null,
      progress: null,
      error: null,
      cliCommand: `strata ${kind}`,
    };
  }

  emit(event: StrataEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  async openCatalog(backupPath: string): Promise<CatalogInfo> {
    this.record('openCatalog', [backupPath]);
    if (this.failOpen) throw new Error(this.failOpen);
    return {
      backupPath,
      instances: ['alpha', 'main'].map((name) => ({
        name,
        pgdata: `/pg/${name}`,
        systemIdentifier: '7000000000000000001',
        serverVersion: '17',
        walSegmentSizeBytes: 16 << 20,
        backupCount: 2,
        lastBackup: { id: 'D1', status: 'OK', endTime: 210 },
        retention: { redundancy: 0, windowDays: 0, walDepth: 0 },
      })),
    };
  }
  async listBackups(backupPath: string, instance: string): Promise<BackupSummary[]> {
    this.record('listBackups', [backupPath, instance]);
    return this.backups;
  }
  async getBackup(backupPath: string, instance: string, backupId: string): Promise<BackupDetails> {
    this.record('getBackup', [backupPath, instance, backupId]);
    const backup = this.backups.find((candidate) => candidate.id === backupId)!;
    return {
      ...backup,
      databases: [
        { oid: 5, name: 'postgres', sizeBytes: 100 },
        { oid: 16384, name: 'sales', sizeBytes: 200 },
      ],
      tablespaces: [{ oid: '16390', path: '/ts/fast' }],
      externalDirs: [],
      chain: backup.parentId ? [backup.parentId, backup.id] : [backup.id],
    };
  }
  async listBackupFiles(
    backupPath: string,
    instance: string,
    backupId: string,
    page: { offset: number; limit: number; pathFilter?: string },
  ) {
    this.record('listBackupFiles', [backupPath, instance, backupId, page]);
    return { files: [], total: 1234 };
  }
  async listTimelines(backupPath: string, instance: string) {
    this.record('listTimelines', [backupPath, instance]);
    return [sampleTimeline({ tli: 1 })];
  }
  async planRestore(request: RestoreRequest): Promise<RestorePlan> {
    this.planned.push(request);
    return {
      backupId: 'D1',
      chain: this.backups,
      walCoversTarget: true,
      problem: null,
      cliCommand: `strata restore -D ${request.destination}`,
    };
  }
  async startRestore(request: RestoreRequest) {
    this.record('startRestore', [request]);
    return this.job('restore', 'Restore');
  }
  async startBackup(request: Parameters<StrataApi['startBackup']>[0]) {
    this.record('startBackup', [request]);
    return this.job('backup', 'Backup');
  }
  async startValidate(backupPath: string, instance: string, backupId?: string) {
    this.record('startValidate', [backupPath, instance, backupId]);
    return this.job('validate', `Validate ${backupId}`);
  }
  async startMerge(backupPath: string, instance: string, backupId: string) {
    this.record('startMerge', [backupPath, instance, backupId]);
    return this.job('merge', 'Merge');
  }
  async startDelete(backupPath: string, instance: string, backupId: string) {
    this.record('startDelete', [backupPath, instance, backupId]);
    return this.job('delete', `Delete ${backupId}`);
  }
  async setPin(
    backupPath: string,
    instance: string,
    backupId: string,
    pin: Parameters<StrataApi['setPin']>[3],
  ) {
    this.record('setPin', [backupPath, instance, backupId, pin]);
    return this.job('pin', 'Pin');
  }
  async cancelJob(jobId: string) {
    this.record('cancelJob', [jobId]);
  }
  async listJobs() {
    return [];
  }
  async getJobLog(jobId: string) {
    return [{ jobId, level: 'INFO' as const, message: 'from the server', timeMs: 1 }];
  }
  async demoCatalog() {
    return null;
  }
  async startDemo() {
    return this.job('demo', 'Demo');
  }
  subscribe(listener: (event: StrataEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function memoryRecents(initial: string[] = []): RecentCatalogStore & { saved: string[] } {
  const recents = {
    saved: initial,
    load: () => recents.saved,
    save: (paths: string[]) => {
      recents.saved = paths;
    },
  };
  return recents;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('strata store', () => {
  it('opens a catalog, picks its first instance and loads its backups and timelines', async () => {
    const api = new FakeApi();
    const recents = memoryRecents(['/old', '/cat']);
    const store = createStrataStore(api, recents);
    await store.getState().openCatalog(' /cat ');
    const state = store.getState();
    expect(state.catalog?.backupPath).toBe('/cat');
    expect(state.instance).toBe('alpha');
    expect(state.backups.map((backup) => backup.id)).toEqual(['F1', 'D1']);
    expect(state.timelines).toHaveLength(1);
    expect(recents.saved).toEqual(['/cat', '/old']);
    expect(api.calls.map(([name]) => name)).toEqual([
      'openCatalog',
      'listBackups',
      'listTimelines',
    ]);
  });

  it('shows an API failure as the error banner instead of throwing', async () => {
    const api = new FakeApi();
    api.failOpen = 'ERROR: cannot open catalog "/nope": no such directory';
    const store = createStrataStore(api, memoryRecents());
    await store.getState().openCatalog('/nope');
    expect(store.getState().error).toBe('ERROR: cannot open catalog "/nope": no such directory');
    expect(store.getState().catalog).toBeNull();
    await store.getState().openCatalog('  ');
    expect(store.getState().error).toMatch(/Type the path/);
  });

  it('applies job and log events, and refreshes the catalog when a job that changes it ends', async () => {
    const api = new FakeApi();
    const store = createStrataStore(api, memoryRecents());
    await store.getState().openCatalog('/cat');
    await store.getState().startBackup({ mode: 'DELTA', stream: true });
    const job = Object.values(store.getState().jobs)[0]!;
    expect(store.getState().dialog).toEqual({ kind: 'backup', jobId: job.id });

    api.emit({
      type: 'log',
      line: { jobId: job.id, level: 'INFO', message: 'Progress: (1/2)', timeMs: 5 },
    });
    api.emit({ type: 'job', job: { ...job, progress: { done: 1, total: 2, unit: 'files' } } });
    expect(store.getState().jobs[job.id]!.progress).toEqual({ done: 1, total: 2, unit: 'files' });
    expect(store.getState().jobLogs[job.id]!.map((line) => line.message)).toEqual([
      'Progress: (1/2)',
    ]);

    api.backups = [
      ...api.backups,
      sampleBackup({ id: 'D2', parentId: 'D1', mode: 'DELTA', startTime: 300 }),
    ];
    api.calls = [];
    api.emit({ type: 'job', job: { ...job, state: 'succeeded', endedAt: job.startedAt + 2000 } });
    await tick();
    expect(api.calls.map(([name]) => name)).toContain('listBackups');
    expect(store.getState().backups.map((backup) => backup.id)).toEqual(['F1', 'D1', 'D2']);
  });

  it('runs actions on several backups one job after the other', async () => {
    const api = new FakeApi();
    const store = createStrataStore(api, memoryRecents());
    await store.getState().openCatalog('/cat');
    const running = store.getState().runBackupAction('validate', ['F1', 'D1']);
    await tick();
    expect(api.calls.filter(([name]) => name === 'startValidate')).toHaveLength(1);
    const first = store.getState().jobs['job-1']!;
    api.emit({ type: 'job', job: { ...first, state: 'succeeded' } });
    await tick();
    expect(
      api.calls.filter(([name]) => name === 'startValidate').map(([, args]) => args[2]),
    ).toEqual(['F1', 'D1']);
    api.emit({
      type: 'job',
      job: { ...store.getState().jobs['job-2']!, state: 'failed', error: 'Backup D1 is corrupt' },
    });
    await running;
    expect(store.getState().dialog).toEqual({
      kind: 'action',
      action: 'validate',
      backupIds: ['F1', 'D1'],
      jobIds: ['job-1', 'job-2'],
    });
  });

  it('skips a backup that an earlier delete removed with its parent', async () => {
    const api = new FakeApi();
    const store = createStrataStore(api, memoryRecents());
    await store.getState().openCatalog('/cat');
    const running = store.getState().runBackupAction('delete', ['F1', 'D1']);
    await tick();
    api.backups = [];
    api.emit({ type: 'job', job: { ...store.getState().jobs['job-1']!, state: 'succeeded' } });
    await running;
    expect(api.calls.filter(([name]) => name === 'startDelete').map(([, args]) => args[2])).toEqual(
      ['F1'],
    );
  });

  it('plans a restore and fills the database map and tablespaces of the backup the plan chose', async () => {
    const api = new FakeApi();
    const store = createStrataStore(api, memoryRecents());
    await store.getState().openCatalog('/cat');
    store.getState().beginRestore();
    store.getState().updateRestore({
      destination: '/srv/r',
      targetKind: 'lsn',
      targetValues: { time: '', lsn: '0/5000000', xid: '', name: '' },
    });
    await store.getState().goToRestoreStep(3);
    const state = store.getState();
    expect(api.planned[0]).toMatchObject({
      instance: 'alpha',
      destination: '/srv/r',
      target: { kind: 'lsn', lsn: '0/5000000' },
      action: 'promote',
    });
    expect(state.restorePlan?.backupId).toBe('D1');
    expect(state.restore.databases.map((db) => db.name)).toEqual(['postgres', 'sales']);
    expect(state.restore.databasesBackupId).toBe('D1');
    expect(state.restore.tablespaceMapping).toEqual([{ from: '/ts/fast', to: '/ts/fast' }]);

    store.getState().updateRestore({ excludedDatabases: ['sales'] });
    await store.getState().startRestore();
    const request = api.calls.find(([name]) => name === 'startRestore')![1][0] as RestoreRequest;
    expect(request.includeDatabases).toEqual(['postgres']);
    expect(request.tablespaceMapping).toBeUndefined();
    expect(store.getState().restore.step).toBe(6);
    expect(store.getState().restoreJobId).toBe('job-1');
  });

  it('keeps a finished state when the start reply arrives after the job already ended', async () => {
    const api = new FakeApi();
    const store = createStrataStore(api, memoryRecents());
    await store.getState().openCatalog('/cat');
    const original = api.startValidate.bind(api);
    api.startValidate = async (...args) => {
      const job = await original(...args);
      api.emit({ type: 'job', job: { ...job, state: 'succeeded' } });
      return job;
    };
    await store.getState().runBackupAction('validate', []);
    expect(store.getState().jobs['job-1']!.state).toBe('succeeded');
  });

  it('merges a fetched job log with lines that arrived by event meanwhile', async () => {
    const api = new FakeApi();
    const store = createStrataStore(api, memoryRecents());
    api.emit({ type: 'log', line: { jobId: 'j', level: 'INFO', message: 'live', timeMs: 2 } });
    await store.getState().focusJob('j');
    expect(store.getState().jobLogs['j']!.map((line) => line.message)).toEqual([
      'from the server',
      'live',
    ]);
  });
});
