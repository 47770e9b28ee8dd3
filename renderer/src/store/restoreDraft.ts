import type {
  BackupDatabase,
  RecoveryTargetRequest,
  RemoteHostInfo,
  RestoreRequest,
} from '../../../core/api/contract.js';
import { parseLsnText } from '../format.js';
import { remoteLabel } from './hosts.js';
import type { InstanceRemote } from './hosts.js';

/**
 * The restore wizard's answers so far, and the pure rules over them: which request they make,
 * what is still missing at each step, and what the DBA does after the restore.
 */

export type TargetKind = RecoveryTargetRequest['kind'];
export type RecoveryAction = NonNullable<RestoreRequest['action']>;
export type IncrementalMode = NonNullable<RestoreRequest['incrementalMode']>;

export const RESTORE_STEPS = ['Instance', 'Target', 'Plan', 'Options', 'Review', 'Run'] as const;
export type RestoreStep = 1 | 2 | 3 | 4 | 5 | 6;

export interface PathMapping {
  from: string;
  to: string;
}

export interface RestoreDraft {
  step: RestoreStep;
  instance: string | null;
  /** A backup the DBA chose; null lets Strata choose from the target. */
  backupId: string | null;
  targetKind: TargetKind;
  /** The typed value per kind, kept when the DBA switches kinds back and forth. */
  targetValues: { time: string; lsn: string; xid: string; name: string };
  /** Recovery target timeline: '' for the backup's own, a number, `current` or `latest`. */
  timeline: string;
  action: RecoveryAction;
  destination: string;
  /** The connected host (`RemoteHostInfo.id`) the destination is on; null for this computer. */
  destinationHost: string | null;
  incrementalMode: IncrementalMode;
  tablespaceMapping: PathMapping[];
  externalMapping: PathMapping[];
  restoreAsReplica: boolean;
  primaryConninfo: string;
  slotName: string;
  /** The database map of the backup the plan chose, for partial restore. */
  databases: BackupDatabase[];
  /** The backup `databases` came from: a new plan with another backup reloads them. */
  databasesBackupId: string | null;
  /** Databases the DBA unticked. */
  excludedDatabases: string[];
  threads: number;
}

export function emptyRestoreDraft(instance: string | null = null): RestoreDraft {
  return {
    step: 1,
    instance,
    backupId: null,
    targetKind: 'latest',
    targetValues: { time: '', lsn: '', xid: '', name: '' },
    timeline: '',
    action: 'promote',
    destination: '',
    destinationHost: null,
    incrementalMode: 'none',
    tablespaceMapping: [],
    externalMapping: [],
    restoreAsReplica: false,
    primaryConninfo: '',
    slotName: '',
    databases: [],
    databasesBackupId: null,
    excludedDatabases: [],
    threads: 1,
  };
}

export function recoveryTarget(draft: RestoreDraft): RecoveryTargetRequest {
  switch (draft.targetKind) {
    case 'latest':
      return { kind: 'latest' };
    case 'immediate':
      return { kind: 'immediate' };
    case 'time':
      return { kind: 'time', time: draft.targetValues.time.trim() };
    case 'lsn':
      return { kind: 'lsn', lsn: draft.targetValues.lsn.trim() };
    case 'xid':
      return { kind: 'xid', xid: draft.targetValues.xid.trim() };
    case 'name':
      return { kind: 'name', name: draft.targetValues.name };
  }
}

/** What keeps the target step from going on, in plain words; null when the target is complete. */
export function targetProblem(draft: RestoreDraft): string | null {
  const values = draft.targetValues;
  switch (draft.targetKind) {
    case 'time':
      return values.time.trim() === '' ? 'Type a time, or click a point on the timeline.' : null;
    case 'lsn':
      return parseLsnText(values.lsn) === null
        ? 'An LSN is two hex numbers separated by a slash, like 0/3000060.'
        : null;
    case 'xid':
      return /^\s*\d+\s*$/.test(values.xid)
        ? null
        : 'A transaction ID is a whole number, like 745.';
    case 'name':
      return values.name === '' ? 'Type the name given to pg_create_restore_point().' : null;
    default:
      return null;
  }
}

/** Databases the restore fills, when the DBA unticked some; undefined restores them all. */
export function includedDatabases(draft: RestoreDraft): string[] | undefined {
  if (draft.excludedDatabases.length === 0) return undefined;
  return draft.databases
    .map((db) => db.name)
    .filter((name) => !draft.excludedDatabases.includes(name));
}

/** What keeps the options step from going on; null when the restore can be reviewed. */
export function optionsProblem(draft: RestoreDraft): string | null {
  if (!draft.destination.startsWith('/'))
    return 'The destination must be an absolute path of an empty or new directory.';
  if (draft.databases.length > 0 && includedDatabases(draft)?.length === 0) {
    return 'Tick at least one database: a partial restore needs something to restore.';
  }
  for (const mapping of [...draft.tablespaceMapping, ...draft.externalMapping]) {
    if (!mapping.from.startsWith('/') || !mapping.to.startsWith('/')) {
      return `Both sides of a mapping must be absolute paths ("${mapping.from}" → "${mapping.to}").`;
    }
  }
  return null;
}

/** Where the restore writes, for the review and the result: a host id or this computer. */
export function restoreLocationLabel(draft: RestoreDraft): string {
  return draft.destinationHost ?? 'this computer';
}

/** What keeps a restore onto a host from going on: the host must still be connected. */
export function destinationHostProblem(
  draft: RestoreDraft,
  hosts: RemoteHostInfo[],
): string | null {
  const hostId = draft.destinationHost;
  if (hostId === null) return null;
  const host = hosts.find((candidate) => candidate.id === hostId);
  if (host?.connected) return null;
  return `${hostId} is not connected${host?.problem ? ` (${host.problem})` : ''}: connect it again under Catalogs → Hosts, or restore on this computer.`;
}

/**
 * A warning when the instance's pg_probackup.conf names a database host but the restore writes
 * here: pg_probackup would restore on that host (`remote-host`), the app restores where it is told.
 */
export function remoteConfigNote(
  draft: RestoreDraft,
  remote: InstanceRemote | null,
): string | null {
  if (remote === null || draft.destinationHost !== null) return null;
  return `pg_probackup.conf of ${draft.instance ?? 'this instance'} names ${remoteLabel(remote)} (remote-host): this restore is made here, on this computer. Choose that host under "Restore on" to restore there.`;
}

/** A mapping row that moves something: the wizard prefills rows that keep each path as it was. */
function isRemapping(mapping: PathMapping): boolean {
  return mapping.from !== mapping.to && (mapping.from !== '' || mapping.to !== '');
}

/** The request the answers make; `destination` may still be empty while the plan is previewed. */
export function restoreRequest(draft: RestoreDraft, backupPath: string): RestoreRequest {
  const request: RestoreRequest = {
    backupPath,
    instance: draft.instance ?? '',
    target: recoveryTarget(draft),
    destination: draft.destination,
  };
  if (draft.backupId) request.backupId = draft.backupId;
  if (draft.timeline.trim() !== '') request.timeline = draft.timeline.trim();
  if (draft.targetKind !== 'latest') request.action = draft.action;
  if (draft.incrementalMode !== 'none') request.incrementalMode = draft.incrementalMode;
  const tablespaces = draft.tablespaceMapping.filter(isRemapping);
  if (tablespaces.length > 0) request.tablespaceMapping = tablespaces;
  const externals = draft.externalMapping.filter(isRemapping);
  if (externals.length > 0) request.externalMapping = externals;
  if (draft.restoreAsReplica) {
    const replica: NonNullable<RestoreRequest['restoreAsReplica']> = {};
    if (draft.primaryConninfo.trim() !== '') replica.primaryConninfo = draft.primaryConninfo.trim();
    if (draft.slotName.trim() !== '') replica.slotName = draft.slotName.trim();
    request.restoreAsReplica = replica;
  }
  const include = includedDatabases(draft);
  if (include) request.includeDatabases = include;
  if (draft.threads > 1) request.threads = draft.threads;
  if (draft.destinationHost !== null) request.destinationHost = draft.destinationHost;
  return request;
}

/**
 * The steps after a successful restore, in order. PostgreSQL starts recovery on its own when the
 * restored directory holds recovery settings; a paused target waits for pg_wal_replay_resume();
 * files of unticked databases are restored empty and must be dropped (cli-behaviour.md §6.7).
 */
export function nextSteps(draft: RestoreDraft): string[] {
  const steps: string[] = [];
  const destination = draft.destination;
  const where = draft.destinationHost === null ? 'this host' : 'that host';
  steps.push(
    `${draft.destinationHost === null ? 'Start' : `On ${draft.destinationHost}, start`} the server: pg_ctl -D ${destination} start. If the original server runs on ${where}, first give the copy another port, and an archive_command that does not write into the original's archive (postgresql.conf).`,
  );
  if (draft.restoreAsReplica) {
    steps.push('The server starts as a standby and follows the primary named in primary_conninfo.');
  } else if (draft.targetKind !== 'latest' && draft.action === 'pause') {
    steps.push(
      'Recovery pauses at the target: check the data, then run SELECT pg_wal_replay_resume(); to finish recovery and open for writes.',
    );
  } else if (draft.targetKind !== 'latest' && draft.action === 'shutdown') {
    steps.push(
      'The server stops at the target; start it again without recovery settings to open it for writes.',
    );
  } else {
    steps.push(
      'Recovery replays WAL to the target, then the server is promoted and opens for writes.',
    );
  }
  const include = includedDatabases(draft);
  if (include) {
    const skipped = draft.databases.map((db) => db.name).filter((name) => !include.includes(name));
    steps.push(
      `The databases you unticked (${skipped.join(', ')}) exist but are empty: DROP DATABASE each of them once the server is up.`,
    );
  }
  steps.push(
    'Take a new FULL backup of the restored server once it runs as a primary: its timeline has changed.',
  );
  return steps;
}
