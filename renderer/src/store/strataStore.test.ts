import { describe, expect, it } from 'vitest';
import type {
  BackupDetails,
  BackupSummary,
  CatalogInfo,
  ConnectHostRequest,
  ConnectHostResult,
  InstanceSummary,
  JobInfo,
  JobKind,
  RemoteHostInfo,
  RestorePlan,
  RestoreRequest,
  StrataApi,
  StrataEvent,
} from '../../../core/api/contract.js';
import { sampleBackup, sampleTimeline } from '../testing/sampleData.js';
import { createStrataStore } from './strataStore.js';
import type { RecentCatalogStore } from './strataStore.js';

/** A failure with a stable code, as StrataApiError carries it across the API boundary. */
class CodedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function remoteHost(fields: Partial<RemoteHostInfo> & { host: string }): RemoteHostInfo {
  const port = fields.port ?? 22;
  const user = fields.user ?? 'postgres';
  return {
    id: `${user}@${fields.host}:${port}`,
    port,
    user,
    remotePath: null,
    sshOptions: null,
    hostKey: {
      keyType: 'ssh-ed25519',
      fingerprint: 'SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
    },
    nodeVersion: 'v20.19.0',
    traffic: { bytesSent: 1000, bytesReceived: 20000 },
    connected: true,
    problem: null,
    ...fields,
  };
}

const UNKNOWN_KEY: ConnectHostResult = {
  status: 'unknown-host-key',
  host: 'db1',
  port: 2222,
  keyType: 'ssh-ed25519',
  fingerprint: 'SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
  knownHostsFile: '/home/dba/.ssh/known_hosts',
};

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
  /** pg_probackup.conf's remote host of each instance (`remote-host` …). */
  remotes: Record<string, InstanceSummary['remote']> = {};
  hosts: RemoteHostInfo[] = [];
  /** What each connectHost call answers, in order; an Error is thrown. */
  connectReplies: Array<ConnectHostResult | Error> = [];
  connectRequests: ConnectHostRequest[] = [];
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
      startedAtMs: 1_700_000_000_000,
      endedAtMs: null,
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
    const hostId = /^ssh:\/\/([^/]+)\//.exec(backupPath)?.[1];
    if (hostId && !this.hosts.some((host) => host.id === hostId && host.connected)) {
      throw new CodedError(
        'remote-not-connected',
        `The catalog ${backupPath} is on ${hostId}, which is not connected`,
      );
    }
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
        remote: this.remotes[name] ?? null,
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
  async connectHost(request: ConnectHostRequest): Promise<ConnectHostResult> {
    this.connectRequests.push(request);
    const reply = this.connectReplies.shift();
    if (reply === undefined) throw new Error('unexpected connectHost');
    if (reply instanceof Error) throw reply;
    if (reply.status === 'connected') {
      this.hosts = [...this.hosts.filter((host) => host.id !== reply.host.id), reply.host];
    }
    return reply;
  }
  async listHosts() {
    this.record('listHosts', []);
    return this.hosts;
  }
  async disconnectHost(hostId: string) {
    this.record('disconnectHost', [hostId]);
    this.hosts = this.hosts.filter((host) => host.id !== hostId);
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
    api.emit({
      type: 'job',
      job: { ...job, state: 'succeeded', endedAtMs: job.startedAtMs + 2000 },
    });
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

describe('strata store: SSH hosts', () => {
  it('asks to trust an unknown host key, connects nothing on Cancel, and sends the fingerprint on Trust', async () => {
    const api = new FakeApi();
    const store = createStrataStore(api, memoryRecents());
    store.getState().updateHostForm({
      host: ' db1 ',
      port: '2222',
      user: 'postgres',
      sshOptions: '-i /keys/backup -o UserKnownHostsFile=/tmp/kh',
    });
    api.connectReplies = [UNKNOWN_KEY];
    await store.getState().connectHost();
    expect(store.getState().dialog).toEqual({
      kind: 'host-key',
      request: {
        host: 'db1',
        port: 2222,
        user: 'postgres',
        sshOptions: '-i /keys/backup -o UserKnownHostsFile=/tmp/kh',
      },
      hostKey: UNKNOWN_KEY,
    });
    store.getState().closeDialog();
    expect(store.getState().hosts).toEqual([]);
    expect(api.connectRequests).toHaveLength(1);

    const connected = remoteHost({ host: 'db1', port: 2222 });
    api.connectReplies = [UNKNOWN_KEY, { status: 'connected', host: connected }];
    await store.getState().connectHost();
    await store.getState().trustHostKey();
    expect(api.connectRequests[2]).toEqual({
      host: 'db1',
      port: 2222,
      user: 'postgres',
      sshOptions: '-i /keys/backup -o UserKnownHostsFile=/tmp/kh',
      trustHostKey: 'SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
    });
    expect(store.getState().dialog).toBeNull();
    expect(store.getState().hosts.map((host) => host.id)).toEqual(['postgres@db1:2222']);
    expect(store.getState().error).toBeNull();
  });

  it('asks for the passphrase of an encrypted key, again after a wrong one', async () => {
    const api = new FakeApi();
    const store = createStrataStore(api, memoryRecents());
    store.getState().updateHostForm({ host: 'db1', sshOptions: '-i /keys/locked' });
    api.connectReplies = [
      { status: 'passphrase-needed', keyFile: '/keys/locked' },
      { status: 'passphrase-needed', keyFile: '/keys/locked' },
      { status: 'connected', host: remoteHost({ host: 'db1' }) },
    ];
    await store.getState().connectHost();
    expect(store.getState().dialog).toMatchObject({
      kind: 'passphrase',
      keyFile: '/keys/locked',
      retry: false,
    });
    await store.getState().submitPassphrase('wrong');
    expect(store.getState().dialog).toMatchObject({ kind: 'passphrase', retry: true });
    await store.getState().submitPassphrase('right');
    expect(api.connectRequests.map((request) => request.passphrase)).toEqual([
      undefined,
      'wrong',
      'right',
    ]);
    expect(api.connectRequests[2]).toMatchObject({
      host: 'db1',
      port: 22,
      sshOptions: '-i /keys/locked',
    });
    expect(store.getState().dialog).toBeNull();
    expect(store.getState().hosts).toHaveLength(1);
  });

  it('shows a refused (changed) host key in the banner and closes the dialog', async () => {
    const api = new FakeApi();
    const store = createStrataStore(api, memoryRecents());
    store.getState().updateHostForm({ host: 'db1', port: '2222' });
    const refusal =
      'Host key verification failed: the ssh-ed25519 host key of "db1" port 2222 has CHANGED. It presented SHA256:new…; known_hosts has SHA256:old…';
    api.connectReplies = [UNKNOWN_KEY, new CodedError('remote', refusal)];
    await store.getState().connectHost();
    await store.getState().trustHostKey();
    expect(store.getState().error).toBe(refusal);
    expect(store.getState().dialog).toBeNull();
    expect(store.getState().hosts).toEqual([]);
  });

  it('refuses to connect without a host or with a port out of range, without calling the API', async () => {
    const api = new FakeApi();
    const store = createStrataStore(api, memoryRecents());
    await store.getState().connectHost();
    expect(store.getState().error).toMatch(/--remote-host/);
    store.getState().updateHostForm({ host: 'db1', port: '70000' });
    await store.getState().connectHost();
    expect(store.getState().error).toMatch(/1 to 65535/);
    expect(api.connectRequests).toEqual([]);
  });

  it('fills the connection form from an ssh:// catalog whose host is not connected, and opens it once connected', async () => {
    const api = new FakeApi();
    const recents = memoryRecents();
    const store = createStrataStore(api, recents);
    const location = 'ssh://postgres@db1:2222/var/lib/pg_probackup';
    await store.getState().openCatalog(location);
    let state = store.getState();
    expect(state.catalog).toBeNull();
    expect(state.error).toContain('not connected');
    expect(state.hostForm).toEqual({
      host: 'db1',
      port: '2222',
      user: 'postgres',
      remotePath: '',
      sshOptions: '',
    });
    expect(state.hostFormNote).toContain(location);
    expect(state.catalogAwaitingHost).toBe(location);

    store.getState().updateHostForm({ sshOptions: '-i /keys/backup' });
    api.connectReplies = [
      {
        status: 'connected',
        host: remoteHost({ host: 'db1', port: 2222, sshOptions: '-i /keys/backup' }),
      },
    ];
    await store.getState().connectHost();
    state = store.getState();
    expect(api.connectRequests[0]).toEqual({
      host: 'db1',
      port: 2222,
      user: 'postgres',
      sshOptions: '-i /keys/backup',
    });
    expect(state.catalog?.backupPath).toBe(location);
    expect(state.backups.map((backup) => backup.id)).toEqual(['F1', 'D1']);
    expect(state.catalogAwaitingHost).toBeNull();
    expect(state.hostFormNote).toBeNull();
    expect(recents.saved).toEqual([location]);
  });

  it('reconnects a dropped host with the options it had, and forgets a disconnected one', async () => {
    const api = new FakeApi();
    const dropped = remoteHost({
      host: 'db1',
      remotePath: '/opt/node/bin',
      sshOptions: '-i /keys/backup',
      connected: false,
      problem: 'Lost the connection to the Strata agent on postgres@db1:22: read ECONNRESET',
    });
    api.hosts = [dropped];
    const store = createStrataStore(api, memoryRecents());
    await store.getState().loadHosts();
    expect(store.getState().hosts[0]?.connected).toBe(false);
    api.connectReplies = [
      { status: 'connected', host: { ...dropped, connected: true, problem: null } },
    ];
    await store.getState().reconnectHost(dropped.id);
    expect(api.connectRequests[0]).toEqual({
      host: 'db1',
      port: 22,
      user: 'postgres',
      remotePath: '/opt/node/bin',
      sshOptions: '-i /keys/backup',
    });
    expect(store.getState().hosts[0]?.connected).toBe(true);
    await store.getState().disconnectHost(dropped.id);
    expect(api.calls.filter(([name]) => name === 'disconnectHost')).toEqual([
      ['disconnectHost', [dropped.id]],
    ]);
    expect(store.getState().hosts).toEqual([]);
  });

  it('restores by default onto the connected host the instance’s pg_probackup.conf names', async () => {
    const api = new FakeApi();
    api.remotes = { main: { host: 'db1', port: 2222, user: 'postgres' } };
    const host = remoteHost({ host: 'db1', port: 2222 });
    api.hosts = [remoteHost({ host: 'db1', port: 2222, user: 'other' }), host];
    const store = createStrataStore(api, memoryRecents());
    await store.getState().loadStart(null);
    await store.getState().openCatalog('/cat');
    store.getState().beginRestore();
    expect(store.getState().restore.destinationHost).toBeNull();
    await store.getState().selectInstance('main');
    store.getState().beginRestore();
    expect(store.getState().restore.destinationHost).toBe('postgres@db1:2222');
    store.getState().updateRestore({ destination: '/srv/r' });
    await store.getState().startRestore();
    const request = api.calls.find(([name]) => name === 'startRestore')![1][0] as RestoreRequest;
    expect(request.destinationHost).toBe('postgres@db1:2222');

    // Once the host dropped, a new restore goes to this computer unless the DBA chooses again.
    api.hosts = [{ ...host, connected: false, problem: 'gone' }];
    await store.getState().loadHosts();
    store.getState().beginRestore();
    expect(store.getState().restore.destinationHost).toBeNull();
  });
});
