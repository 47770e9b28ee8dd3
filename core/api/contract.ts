/**
 * StrataApi: the one typed facade between the engine and its faces (DESIGN.md). The CLI, Electron
 * main and the `strata ui` web server all use it; the renderer sees only this contract, through the
 * Electron preload bridge or over HTTP+WebSocket. Everything here is plain JSON data: LSNs and
 * 64-bit numbers travel as strings, times as Unix seconds unless the name ends in `Ms`.
 *
 * Catalog locations (`backupPath` everywhere): an absolute path on this computer, or
 * `ssh://user@host:port/absolute/path` for a catalog on a host connected with `connectHost`
 * (core/api/catalogLocation.ts).
 */

export type BackupStatus =
  | 'OK'
  | 'ERROR'
  | 'RUNNING'
  | 'MERGING'
  | 'MERGED'
  | 'DELETING'
  | 'DELETED'
  | 'DONE'
  | 'ORPHAN'
  | 'CORRUPT'
  | 'UNKNOWN';

export type BackupModeName = 'FULL' | 'PAGE' | 'PTRACK' | 'DELTA' | 'SUMMARY';
export type CompressionName = 'none' | 'zlib' | 'pglz' | 'lz4' | 'zstd';

export interface CatalogInfo {
  /** Absolute path of the catalog (pg_probackup's BACKUP_PATH). */
  backupPath: string;
  instances: InstanceSummary[];
}

export interface InstanceSummary {
  name: string;
  pgdata: string | null;
  systemIdentifier: string;
  /** PostgreSQL major of the newest backup, e.g. "17". */
  serverVersion: string | null;
  walSegmentSizeBytes: number;
  backupCount: number;
  lastBackup: { id: string; status: BackupStatus; endTime: number | null } | null;
  retention: { redundancy: number; windowDays: number; walDepth: number };
  /**
   * The database host of the instance's pg_probackup.conf (`remote-host` with `remote-proto` ssh):
   * where its PGDATA lives and where `strata backup/restore` of the instance run over SSH.
   */
  remote: { host: string; port: number; user: string | null } | null;
}

export interface BackupSummary {
  id: string;
  instance: string;
  parentId: string | null;
  mode: BackupModeName | null;
  walMode: 'STREAM' | 'ARCHIVE';
  status: BackupStatus;
  timelineId: number;
  parentTimelineId: number;
  startLsn: string;
  stopLsn: string;
  startTime: number;
  endTime: number | null;
  recoveryTime: number | null;
  recoveryXid: string;
  dataBytes: number | null;
  walBytes: number | null;
  uncompressedBytes: number;
  pgdataBytes: number;
  compressAlg: CompressionName;
  compressLevel: number;
  serverVersion: string | null;
  programVersion: string | null;
  fromReplica: boolean;
  note: string | null;
  expireTime: number | null;
}

export interface BackupDatabase {
  oid: number;
  name: string;
  /** Bytes of this database's files in PGDATA at backup time (from the file list). */
  sizeBytes: number;
}

export interface BackupDetails extends BackupSummary {
  databases: BackupDatabase[];
  tablespaces: Array<{ oid: string; path: string }>;
  externalDirs: string[];
  /** The chain this backup restores from, FULL first. */
  chain: string[];
}

export interface BackupFile {
  path: string;
  externalDirNum: number;
  isDatafile: boolean;
  dbOid: number;
  /** Bytes stored in this backup; -1 = unchanged since the parent. */
  storedBytes: number;
  fullBytes: number;
  compressAlg: CompressionName;
}

export interface ArchiveTimeline {
  tli: number;
  parentTli: number;
  switchpoint: string;
  minSegno: string;
  maxSegno: string;
  segmentCount: number;
  sizeBytes: number;
  zratio: number;
  status: 'OK' | 'DEGRADED';
  lostSegments: Array<{ begin: string; end: string }>;
  closestBackupId: string | null;
  backupIds: string[];
  /** LSN range covered by archived segments, for drawing the timeline on an LSN axis. */
  beginLsn: string;
  endLsn: string;
}

export type RecoveryTargetRequest =
  | { kind: 'latest' }
  | { kind: 'immediate' }
  | { kind: 'time'; time: string }
  | { kind: 'lsn'; lsn: string }
  | { kind: 'xid'; xid: string }
  | { kind: 'name'; name: string };

export interface RestoreRequest {
  backupPath: string;
  instance: string;
  /** Chosen by Strata from the target when absent. */
  backupId?: string;
  target: RecoveryTargetRequest;
  timeline?: string;
  action?: 'pause' | 'promote' | 'shutdown';
  destination: string;
  incrementalMode?: 'none' | 'checksum' | 'lsn';
  tablespaceMapping?: Array<{ from: string; to: string }>;
  externalMapping?: Array<{ from: string; to: string }>;
  restoreAsReplica?: { primaryConninfo?: string; slotName?: string };
  /** Partial restore: database names to include (all when absent). */
  includeDatabases?: string[];
  threads?: number;
  /**
   * The connected host (`RemoteHostInfo.id`) whose `destination` is restored into, over SSH;
   * this computer when absent (also when the instance's pg_probackup.conf names a remote host).
   */
  destinationHost?: string;
}

export interface RestorePlan {
  backupId: string | null;
  /** FULL first. */
  chain: BackupSummary[];
  walCoversTarget: boolean;
  /** Why the target cannot be reached, in plain words, when it cannot. */
  problem: string | null;
  /** The exact equivalent command line. */
  cliCommand: string;
}

export interface BackupRequest {
  backupPath: string;
  instance: string;
  mode: BackupModeName;
  stream: boolean;
  compressAlg?: CompressionName;
  compressLevel?: number;
  threads?: number;
  note?: string;
  ttlSeconds?: number;
  connection?: { host?: string; port?: number; user?: string; database?: string };
}

/**
 * An SSH host to reach, as pg_probackup's `--remote-host`, `--remote-port`, `--remote-user`,
 * `--remote-path` and `--ssh-options` give it (core/remote/README.md says what is understood).
 */
export interface RemoteHostRequest {
  host: string;
  /** 22 when absent. */
  port?: number;
  /** The local user name when absent. */
  user?: string;
  /** The remote directory holding `node` (or the node binary itself); PATH when absent. */
  remotePath?: string;
  /** e.g. `-i ~/.ssh/backup_key -o ServerAliveInterval=30`. */
  sshOptions?: string;
}

export interface ConnectHostRequest extends RemoteHostRequest {
  /**
   * The fingerprint (`SHA256:…`) of the host key the DBA checked and trusted in the first-contact
   * dialog: connecting records it in known_hosts. A key that does not match is not trusted.
   */
  trustHostKey?: string;
  /** The passphrase of the encrypted key file `connectHost` asked for. */
  passphrase?: string;
}

export interface RemoteHostInfo {
  /** `user@host:port`: what `ssh://` catalog locations and `destinationHost` name. */
  id: string;
  host: string;
  port: number;
  user: string;
  remotePath: string | null;
  sshOptions: string | null;
  hostKey: { keyType: string; fingerprint: string };
  /** The version of the remote Node.js that runs the Strata agent, e.g. `20.19.0`. */
  nodeVersion: string;
  /** Bytes this side sent to and received from the host over SSH since the connection was made. */
  traffic: { bytesSent: number; bytesReceived: number };
  /** False once the connection dropped: connect again to use the host. */
  connected: boolean;
  /** Why the connection dropped, when it did. */
  problem: string | null;
}

export type ConnectHostResult =
  | { status: 'connected'; host: RemoteHostInfo }
  /**
   * First contact: known_hosts has no key for this host. Show the fingerprint; call again with
   * `trustHostKey` once the DBA has compared it with the host's (`ssh-keygen -lf` there).
   */
  | {
      status: 'unknown-host-key';
      host: string;
      port: number;
      keyType: string;
      fingerprint: string;
      /** Where a trusted key is recorded; null when known_hosts recording is off. */
      knownHostsFile: string | null;
    }
  /** An encrypted key file needs its passphrase: call again with `passphrase`. */
  | { status: 'passphrase-needed'; keyFile: string };

export type JobKind = 'backup' | 'restore' | 'validate' | 'merge' | 'delete' | 'pin' | 'demo';
export type JobState = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobInfo {
  id: string;
  kind: JobKind;
  title: string;
  state: JobState;
  startedAtMs: number;
  endedAtMs: number | null;
  progress: { done: number; total: number; unit: string } | null;
  /** The failure in plain words, for a failed job. */
  error: string | null;
  cliCommand: string;
}

export interface JobLogLine {
  jobId: string;
  level: 'VERBOSE' | 'LOG' | 'INFO' | 'NOTICE' | 'WARNING' | 'ERROR';
  message: string;
  timeMs: number;
}

export type StrataEvent =
  | { type: 'job'; job: JobInfo }
  | { type: 'log'; line: JobLogLine }
  | { type: 'catalog-changed'; backupPath: string; instance: string };

export interface StrataApi {
  openCatalog(backupPath: string): Promise<CatalogInfo>;
  listBackups(backupPath: string, instance: string): Promise<BackupSummary[]>;
  getBackup(backupPath: string, instance: string, backupId: string): Promise<BackupDetails>;
  listBackupFiles(
    backupPath: string,
    instance: string,
    backupId: string,
    page: { offset: number; limit: number; pathFilter?: string },
  ): Promise<{ files: BackupFile[]; total: number }>;
  listTimelines(backupPath: string, instance: string): Promise<ArchiveTimeline[]>;
  planRestore(request: RestoreRequest): Promise<RestorePlan>;
  startRestore(request: RestoreRequest): Promise<JobInfo>;
  startBackup(request: BackupRequest): Promise<JobInfo>;
  startValidate(backupPath: string, instance: string, backupId?: string): Promise<JobInfo>;
  startMerge(backupPath: string, instance: string, backupId: string): Promise<JobInfo>;
  startDelete(backupPath: string, instance: string, backupId: string): Promise<JobInfo>;
  setPin(
    backupPath: string,
    instance: string,
    backupId: string,
    pin: { ttlSeconds?: number; expireTime?: string; note?: string },
  ): Promise<JobInfo>;
  cancelJob(jobId: string): Promise<void>;
  listJobs(): Promise<JobInfo[]>;
  getJobLog(jobId: string): Promise<JobLogLine[]>;
  /**
   * Connects to an SSH host and starts the Strata agent there. A changed host key is refused
   * (the error names both keys); an unknown one and an encrypted key come back as decisions.
   */
  connectHost(request: ConnectHostRequest): Promise<ConnectHostResult>;
  listHosts(): Promise<RemoteHostInfo[]>;
  disconnectHost(hostId: string): Promise<void>;
  /** The demo catalog (made on first use), or null when none exists yet. */
  demoCatalog(): Promise<string | null>;
  startDemo(): Promise<JobInfo>;
  subscribe(listener: (event: StrataEvent) => void): () => void;
}
