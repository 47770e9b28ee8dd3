import { createStore } from 'zustand/vanilla';
import type {
  ArchiveTimeline,
  BackupDetails,
  BackupFile,
  BackupRequest,
  BackupSummary,
  CatalogInfo,
  ConnectHostRequest,
  ConnectHostResult,
  JobInfo,
  JobLogLine,
  RemoteHostInfo,
  RestorePlan,
  StrataApi,
  StrataEvent,
} from '../../../core/api/contract.js';
import type { DesktopBridge } from '../../../core/api/desktopBridge.js';
import { remoteLocationParts } from '../../../core/api/catalogLocation.js';
import {
  emptyHostForm,
  hostFormOf,
  hostFormProblem,
  hostMatchingRemote,
  hostRequestOf,
  reconnectRequestOf,
  remoteLabel,
} from './hosts.js';
import type { HostForm, InstanceRemote } from './hosts.js';
import { emptyRestoreDraft, restoreRequest } from './restoreDraft.js';
import type { RestoreDraft, RestoreStep } from './restoreDraft.js';

/**
 * The UI's state and every action that changes it. Components read slices and call actions; they
 * never talk to the StrataApi themselves. Long work (backup, restore, validate, merge, delete,
 * pin) is a job whose progress arrives as events, so no screen waits on a promise.
 */

export type View = 'catalogs' | 'backups' | 'chains' | 'timeline' | 'restore' | 'jobs';
export type BackupAction = 'validate' | 'merge' | 'delete' | 'pin';
export type PinRequest = Parameters<StrataApi['setPin']>[3];

export type UnknownHostKey = Extract<ConnectHostResult, { status: 'unknown-host-key' }>;

export type Dialog =
  | { kind: 'backup'; jobId: string | null }
  | { kind: 'action'; action: BackupAction; backupIds: string[]; jobIds: string[] }
  /** First contact with a host: its key waits for the DBA's comparison and trust. */
  | { kind: 'host-key'; request: ConnectHostRequest; hostKey: UnknownHostKey }
  /** The key file of a connection is encrypted; `retry` after a passphrase that did not open it. */
  | { kind: 'passphrase'; request: ConnectHostRequest; keyFile: string; retry: boolean };

export interface FilesPage {
  backupId: string;
  offset: number;
  limit: number;
  pathFilter: string;
  total: number;
  files: BackupFile[];
}

/** Where recently opened catalogs are remembered (localStorage in the app, memory in tests). */
export interface RecentCatalogStore {
  load(): string[];
  save(paths: string[]): void;
}

export const FILES_PAGE_SIZE = 100;
const RECENT_LIMIT = 8;
/** Log lines kept per job in memory; a restore of a big cluster can log far more. */
const LOG_LINES_KEPT = 2000;

export interface StrataState {
  view: View;
  /** The last failure of a user action, in plain words, shown until dismissed. */
  error: string | null;
  busy: boolean;
  recentCatalogs: string[];
  demoCatalog: string | null;
  /** A native folder picker exists (the desktop app); a browser page types paths. */
  canChooseDirectory: boolean;
  catalog: CatalogInfo | null;
  instance: string | null;
  backups: BackupSummary[];
  timelines: ArchiveTimeline[];
  /** Backups ticked in the backups table, for actions on several at once. */
  selectedBackupIds: string[];
  /** The backup whose details are shown. */
  focusedBackupId: string | null;
  details: BackupDetails | null;
  files: FilesPage | null;
  dialog: Dialog | null;
  jobs: Record<string, JobInfo>;
  jobLogs: Record<string, JobLogLine[]>;
  focusedJobId: string | null;
  restore: RestoreDraft;
  restorePlan: RestorePlan | null;
  planning: boolean;
  restoreJobId: string | null;
  /** SSH hosts connected in this session, and dropped ones until connected again or removed. */
  hosts: RemoteHostInfo[];
  hostForm: HostForm;
  /** Why the connection form holds what it holds, when the app filled it in. */
  hostFormNote: string | null;
  connecting: boolean;
  /** An `ssh://` catalog that did not open because its host was not connected: it opens once it is. */
  catalogAwaitingHost: string | null;

  setView(view: View): void;
  dismissError(): void;
  /** First load: demo and jobs, then the catalog the page was opened for (`strata ui -B`), if any. */
  loadStart(initialCatalog: string | null): Promise<void>;
  openCatalog(backupPath: string): Promise<void>;
  chooseCatalogDirectory(): Promise<void>;
  selectInstance(instance: string): Promise<void>;
  refresh(): Promise<void>;
  setSelectedBackups(ids: string[]): void;
  focusBackup(backupId: string | null): Promise<void>;
  loadFiles(offset: number, pathFilter: string): Promise<void>;
  openDialog(dialog: Dialog): void;
  closeDialog(): void;
  startBackup(request: Omit<BackupRequest, 'backupPath' | 'instance'>): Promise<void>;
  runBackupAction(action: BackupAction, backupIds: string[], pin?: PinRequest): Promise<void>;
  startDemo(): Promise<void>;
  cancelJob(jobId: string): Promise<void>;
  focusJob(jobId: string | null): Promise<void>;
  beginRestore(preset?: Partial<RestoreDraft>): void;
  updateRestore(patch: Partial<RestoreDraft>): void;
  goToRestoreStep(step: RestoreStep): Promise<void>;
  planRestore(): Promise<void>;
  startRestore(): Promise<void>;
  loadHosts(): Promise<void>;
  updateHostForm(patch: Partial<HostForm>): void;
  /** Fills the connection form with an instance's pg_probackup.conf host. */
  prefillHostFormFromInstance(instance: string, remote: InstanceRemote): void;
  /** Connects the host of the connection form. */
  connectHost(): Promise<void>;
  /** Connects a listed host again, with the options it was connected with. */
  reconnectHost(hostId: string): Promise<void>;
  /** The DBA compared the fingerprint in the first-contact dialog and trusts it. */
  trustHostKey(): Promise<void>;
  submitPassphrase(passphrase: string): Promise<void>;
  disconnectHost(hostId: string): Promise<void>;
}

export type StrataStore = ReturnType<typeof createStrataStore>;

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The stable code of a failed API call (StrataApiError's `code`, e.g. `remote-not-connected`). */
function codeOf(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : null;
}

export function createStrataStore(
  api: StrataApi,
  recents: RecentCatalogStore,
  desktop?: DesktopBridge,
) {
  const store = createStore<StrataState>()((set, get) => {
    /**
     * Runs an action, turning a rejection into the error banner instead of an unhandled promise.
     * `busy` marks the short reads a DBA waits for (opening a catalog), not jobs.
     */
    async function guarded(
      work: () => Promise<void>,
      options: { busy?: boolean } = {},
    ): Promise<void> {
      if (options.busy) set({ busy: true });
      try {
        await work();
      } catch (error) {
        set({ error: messageOf(error) });
      } finally {
        if (options.busy) set({ busy: false });
      }
    }

    function backupPath(): string {
      const catalog = get().catalog;
      if (!catalog) throw new Error('Open a catalog first.');
      return catalog.backupPath;
    }

    function instanceName(): string {
      const instance = get().instance;
      if (!instance) throw new Error('Choose an instance first.');
      return instance;
    }

    /** Stores a job from a start reply, unless its events already told that it ended. */
    function rememberJob(job: JobInfo): void {
      set((state) => {
        const known = state.jobs[job.id];
        if (known && known.state !== 'running') return {};
        return { jobs: { ...state.jobs, [job.id]: job } };
      });
    }

    function closeHostDialog(): void {
      const kind = get().dialog?.kind;
      if (kind === 'host-key' || kind === 'passphrase') set({ dialog: null });
    }

    async function loadHostList(): Promise<void> {
      set({ hosts: await api.listHosts() });
    }

    /**
     * One connection attempt. The API answers the decisions it needs (an unknown host key, a
     * passphrase) instead of connecting; each becomes a dialog whose answer repeats the request.
     */
    async function connectWith(request: ConnectHostRequest): Promise<void> {
      set({ connecting: true });
      try {
        await guarded(async () => {
          let result: ConnectHostResult;
          try {
            result = await api.connectHost(request);
          } catch (error) {
            closeHostDialog();
            throw error;
          }
          if (result.status === 'unknown-host-key') {
            set({ dialog: { kind: 'host-key', request, hostKey: result } });
            return;
          }
          if (result.status === 'passphrase-needed') {
            set({
              dialog: {
                kind: 'passphrase',
                request,
                keyFile: result.keyFile,
                retry: request.passphrase !== undefined,
              },
            });
            return;
          }
          const connected = result.host;
          closeHostDialog();
          set((state) => ({
            hosts: [...state.hosts.filter((host) => host.id !== connected.id), connected],
            hostFormNote: null,
          }));
          await loadHostList();
          const awaiting = get().catalogAwaitingHost;
          if (awaiting && remoteLocationParts(awaiting)?.hostId === connected.id) {
            set({ catalogAwaitingHost: null });
            await get().openCatalog(awaiting);
          }
        });
      } finally {
        set({ connecting: false });
      }
    }

    /**
     * After an `ssh://` catalog failed to open because its host is not connected: the connection
     * form gets the location's user, host and port (and the options of a dropped connection to
     * the same host), and the catalog opens once the host is connected.
     */
    function offerConnectionFor(location: string): void {
      const parsed = remoteLocationParts(location);
      if (!parsed) return;
      const dropped = get().hosts.find((host) => host.id === parsed.hostId);
      set({
        hostForm: dropped
          ? hostFormOf(dropped)
          : {
              ...emptyHostForm(),
              host: parsed.host,
              port: String(parsed.port),
              user: parsed.user,
            },
        hostFormNote: `${location} is on ${parsed.hostId}, which is not connected. The connection form is filled in from the location: add the SSH options it needs, connect, and the catalog opens.`,
        catalogAwaitingHost: location,
      });
    }

    async function loadInstance(path: string, instance: string): Promise<void> {
      const [backups, timelines] = await Promise.all([
        api.listBackups(path, instance),
        api.listTimelines(path, instance),
      ]);
      const known = new Set(backups.map((backup) => backup.id));
      set((state) => ({
        backups,
        timelines,
        selectedBackupIds: state.selectedBackupIds.filter((id) => known.has(id)),
      }));
      const focused = get().focusedBackupId;
      if (focused && !known.has(focused))
        set({ focusedBackupId: null, details: null, files: null });
    }

    return {
      view: 'catalogs',
      error: null,
      busy: false,
      recentCatalogs: recents.load(),
      demoCatalog: null,
      canChooseDirectory: desktop !== undefined,
      catalog: null,
      instance: null,
      backups: [],
      timelines: [],
      selectedBackupIds: [],
      focusedBackupId: null,
      details: null,
      files: null,
      dialog: null,
      jobs: {},
      jobLogs: {},
      focusedJobId: null,
      restore: emptyRestoreDraft(),
      restorePlan: null,
      planning: false,
      restoreJobId: null,
      hosts: [],
      hostForm: emptyHostForm(),
      hostFormNote: null,
      connecting: false,
      catalogAwaitingHost: null,

      setView(view) {
        set({ view });
      },

      dismissError() {
        set({ error: null });
      },

      async loadStart(initialCatalog) {
        await guarded(async () => {
          const [demoCatalog, jobs, hosts] = await Promise.all([
            api.demoCatalog(),
            api.listJobs(),
            api.listHosts(),
          ]);
          set((state) => ({
            demoCatalog,
            hosts,
            jobs: { ...Object.fromEntries(jobs.map((job) => [job.id, job])), ...state.jobs },
          }));
        });
        if (initialCatalog) {
          await get().openCatalog(initialCatalog);
          if (get().catalog) set({ view: 'backups' });
        }
      },

      async chooseCatalogDirectory() {
        if (!desktop) return;
        await guarded(async () => {
          const path = await desktop.chooseCatalogDirectory();
          if (path) await get().openCatalog(path);
        });
      },

      async openCatalog(path) {
        const wanted = path.trim();
        if (wanted === '') {
          set({ error: 'Type the path of a catalog folder (the directory given to `init -B`).' });
          return;
        }
        await guarded(
          async () => {
            let catalog: CatalogInfo;
            try {
              catalog = await api.openCatalog(wanted);
            } catch (error) {
              if (codeOf(error) === 'remote-not-connected') {
                await loadHostList().catch(() => undefined);
                offerConnectionFor(wanted);
              }
              throw error;
            }
            const recentCatalogs = [
              catalog.backupPath,
              ...get().recentCatalogs.filter((p) => p !== catalog.backupPath),
            ].slice(0, RECENT_LIMIT);
            recents.save(recentCatalogs);
            const previous = get().instance;
            const instance =
              catalog.instances.find((candidate) => candidate.name === previous)?.name ??
              catalog.instances[0]?.name ??
              null;
            set({
              catalog,
              recentCatalogs,
              instance,
              backups: [],
              timelines: [],
              selectedBackupIds: [],
              focusedBackupId: null,
              details: null,
              files: null,
              error: null,
            });
            if (instance) await loadInstance(catalog.backupPath, instance);
          },
          { busy: true },
        );
      },

      async selectInstance(instance) {
        await guarded(async () => {
          set({
            instance,
            selectedBackupIds: [],
            focusedBackupId: null,
            details: null,
            files: null,
          });
          await loadInstance(backupPath(), instance);
        });
      },

      async refresh() {
        await guarded(
          async () => {
            const path = backupPath();
            const catalog = await api.openCatalog(path);
            set({ catalog });
            const instance = get().instance;
            if (instance) await loadInstance(path, instance);
            const focused = get().focusedBackupId;
            if (focused && instance) set({ details: await api.getBackup(path, instance, focused) });
          },
          { busy: true },
        );
      },

      setSelectedBackups(ids) {
        set({ selectedBackupIds: ids });
      },

      async focusBackup(backupId) {
        if (backupId === null) {
          set({ focusedBackupId: null, details: null, files: null });
          return;
        }
        set({ focusedBackupId: backupId });
        await guarded(async () => {
          const path = backupPath();
          const instance = instanceName();
          const [details, page] = await Promise.all([
            api.getBackup(path, instance, backupId),
            api.listBackupFiles(path, instance, backupId, { offset: 0, limit: FILES_PAGE_SIZE }),
          ]);
          if (get().focusedBackupId !== backupId) return;
          set({
            details,
            files: {
              backupId,
              offset: 0,
              limit: FILES_PAGE_SIZE,
              pathFilter: '',
              total: page.total,
              files: page.files,
            },
          });
        });
      },

      async loadFiles(offset, pathFilter) {
        const backupId = get().focusedBackupId;
        if (!backupId) return;
        await guarded(async () => {
          const page = {
            offset: Math.max(0, offset),
            limit: FILES_PAGE_SIZE,
            ...(pathFilter ? { pathFilter } : {}),
          };
          const result = await api.listBackupFiles(backupPath(), instanceName(), backupId, page);
          set({
            files: {
              backupId,
              offset: page.offset,
              limit: FILES_PAGE_SIZE,
              pathFilter,
              total: result.total,
              files: result.files,
            },
          });
        });
      },

      openDialog(dialog) {
        set({ dialog });
      },

      closeDialog() {
        set({ dialog: null });
      },

      async startBackup(request) {
        await guarded(async () => {
          const job = await api.startBackup({
            ...request,
            backupPath: backupPath(),
            instance: instanceName(),
          });
          rememberJob(job);
          set({ dialog: { kind: 'backup', jobId: job.id } });
        });
      },

      async runBackupAction(action, backupIds, pin) {
        await guarded(async () => {
          const path = backupPath();
          const instance = instanceName();
          const jobIds: string[] = [];
          const ids: Array<string | undefined> =
            action === 'validate' && backupIds.length === 0 ? [undefined] : backupIds;
          for (const id of ids) {
            // Merge and delete take the instance's lock, so jobs run one after the other; a delete
            // also removes the incrementals built on a backup, which may be later in the list.
            if (
              id !== undefined &&
              jobIds.length > 0 &&
              (action === 'delete' || action === 'merge')
            ) {
              const remaining = await api.listBackups(path, instance);
              if (!remaining.some((backup) => backup.id === id)) continue;
            }
            let job: JobInfo;
            if (action === 'validate') job = await api.startValidate(path, instance, id);
            else if (action === 'merge') job = await api.startMerge(path, instance, id!);
            else if (action === 'delete') job = await api.startDelete(path, instance, id!);
            else job = await api.setPin(path, instance, id!, pin ?? {});
            rememberJob(job);
            jobIds.push(job.id);
            set({ dialog: { kind: 'action', action, backupIds, jobIds: [...jobIds] } });
            await finished(job.id);
          }
        });
      },

      async startDemo() {
        await guarded(async () => {
          const job = await api.startDemo();
          rememberJob(job);
          set({ focusedJobId: job.id });
          const done = await finished(job.id);
          if (done.state === 'succeeded') {
            const demoCatalog = await api.demoCatalog();
            set({ demoCatalog });
            if (demoCatalog) await get().openCatalog(demoCatalog);
          }
        });
      },

      async cancelJob(jobId) {
        await guarded(() => api.cancelJob(jobId));
      },

      async focusJob(jobId) {
        set({ focusedJobId: jobId });
        if (!jobId) return;
        await guarded(async () => {
          const lines = await api.getJobLog(jobId);
          set((state) => {
            // Lines that arrived by event while the log was fetched are already in it.
            const known = new Set(lines.map((line) => `${line.timeMs}\u0000${line.message}`));
            const live = (state.jobLogs[jobId] ?? []).filter(
              (line) => !known.has(`${line.timeMs}\u0000${line.message}`),
            );
            return {
              jobLogs: { ...state.jobLogs, [jobId]: [...lines, ...live].slice(-LOG_LINES_KEPT) },
            };
          });
        });
      },

      beginRestore(preset = {}) {
        const instance = preset.instance ?? get().instance;
        const remote =
          get().catalog?.instances.find((candidate) => candidate.name === instance)?.remote ?? null;
        set({
          view: 'restore',
          restore: {
            ...emptyRestoreDraft(get().instance),
            // pg_probackup restores such an instance on its configured host: the same by default.
            destinationHost: hostMatchingRemote(get().hosts, remote)?.id ?? null,
            ...preset,
          },
          restorePlan: null,
          restoreJobId: null,
        });
      },

      updateRestore(patch) {
        const changesPlan = Object.keys(patch).some((key) => key !== 'step');
        set((state) => ({
          restore: { ...state.restore, ...patch },
          // A new answer makes the shown plan stale; the next step plans again.
          restorePlan: changesPlan && state.restore.step <= 3 ? null : state.restorePlan,
        }));
      },

      async goToRestoreStep(step) {
        // The plan and review steps show a plan of the answers as they are now, never an older one.
        const replans = step === 3 || step === 5;
        set((state) => ({
          restore: { ...state.restore, step },
          restorePlan: replans ? null : state.restorePlan,
        }));
        if (replans) await get().planRestore();
      },

      async planRestore() {
        set({ planning: true });
        try {
          await guarded(async () => {
            const draft = get().restore;
            const plan = await api.planRestore(restoreRequest(draft, backupPath()));
            set({ restorePlan: plan });
            if (plan.backupId && plan.backupId !== draft.databasesBackupId) {
              const details = await api.getBackup(
                backupPath(),
                draft.instance ?? instanceName(),
                plan.backupId,
              );
              const names = new Set(details.databases.map((db) => db.name));
              set((state) => ({
                restore: {
                  ...state.restore,
                  databases: details.databases,
                  databasesBackupId: details.id,
                  excludedDatabases: state.restore.excludedDatabases.filter((name) =>
                    names.has(name),
                  ),
                  tablespaceMapping:
                    state.restore.tablespaceMapping.length > 0
                      ? state.restore.tablespaceMapping
                      : details.tablespaces.map((tablespace) => ({
                          from: tablespace.path,
                          to: tablespace.path,
                        })),
                  externalMapping:
                    state.restore.externalMapping.length > 0
                      ? state.restore.externalMapping
                      : details.externalDirs.map((dir) => ({ from: dir, to: dir })),
                },
              }));
            }
          });
        } finally {
          set({ planning: false });
        }
      },

      async startRestore() {
        await guarded(async () => {
          const job = await api.startRestore(restoreRequest(get().restore, backupPath()));
          rememberJob(job);
          set((state) => ({ restoreJobId: job.id, restore: { ...state.restore, step: 6 } }));
        });
      },

      async loadHosts() {
        await guarded(loadHostList);
      },

      updateHostForm(patch) {
        set((state) => ({ hostForm: { ...state.hostForm, ...patch } }));
      },

      prefillHostFormFromInstance(instance, remote) {
        set({
          hostForm: {
            ...emptyHostForm(),
            host: remote.host,
            port: String(remote.port),
            user: remote.user ?? '',
          },
          hostFormNote: `Filled in from pg_probackup.conf of instance ${instance} (${remoteLabel(remote)}): add the SSH options it uses (its ssh-options), then connect.`,
        });
      },

      async connectHost() {
        const form = get().hostForm;
        const problem = hostFormProblem(form);
        if (problem) {
          set({ error: problem });
          return;
        }
        await connectWith(hostRequestOf(form));
      },

      async reconnectHost(hostId) {
        const host = get().hosts.find((candidate) => candidate.id === hostId);
        if (!host) return;
        await connectWith(reconnectRequestOf(host));
      },

      async trustHostKey() {
        const dialog = get().dialog;
        if (dialog?.kind !== 'host-key') return;
        await connectWith({ ...dialog.request, trustHostKey: dialog.hostKey.fingerprint });
      },

      async submitPassphrase(passphrase) {
        const dialog = get().dialog;
        if (dialog?.kind !== 'passphrase') return;
        await connectWith({ ...dialog.request, passphrase });
      },

      async disconnectHost(hostId) {
        await guarded(async () => {
          await api.disconnectHost(hostId);
          set((state) => ({ hosts: state.hosts.filter((host) => host.id !== hostId) }));
          await loadHostList();
        });
      },
    };
  });

  /** Resolves when a job leaves the running state, from the event stream. */
  const waiters = new Map<string, Array<(job: JobInfo) => void>>();
  function finished(jobId: string): Promise<JobInfo> {
    const job = store.getState().jobs[jobId];
    if (job && job.state !== 'running') return Promise.resolve(job);
    return new Promise((resolveJob) => {
      waiters.set(jobId, [...(waiters.get(jobId) ?? []), resolveJob]);
    });
  }

  function applyEvent(event: StrataEvent): void {
    if (event.type === 'job') {
      const job = event.job;
      store.setState((state) => ({ jobs: { ...state.jobs, [job.id]: job } }));
      if (job.state !== 'running') {
        for (const resolveJob of waiters.get(job.id) ?? []) resolveJob(job);
        waiters.delete(job.id);
        // Every job but a restore changes the catalog; the catalog-changed event may come from
        // another window too, so this refresh is for jobs started here.
        const state = store.getState();
        if (job.kind !== 'restore' && state.catalog) void state.refresh();
        // A job that failed may have lost its host's connection: the hosts table says so.
        if (job.state === 'failed' && state.hosts.length > 0) void state.loadHosts();
      }
    } else if (event.type === 'log') {
      const line = event.line;
      store.setState((state) => ({
        jobLogs: {
          ...state.jobLogs,
          [line.jobId]: [...(state.jobLogs[line.jobId] ?? []), line].slice(-LOG_LINES_KEPT),
        },
      }));
    } else {
      const state = store.getState();
      if (state.catalog?.backupPath === event.backupPath) void state.refresh();
    }
  }

  const unsubscribe = api.subscribe(applyEvent);
  return Object.assign(store, { dispose: unsubscribe });
}
