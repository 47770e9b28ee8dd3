/**
 * The one interface through which commands reach files, of the catalog and of PGDATA alike
 * (DESIGN.md). Drivers: `local` (this host); the SSH driver for a remote host implements the same
 * contract. Paths are absolute POSIX paths on the driver's host.
 */
export type FileType = 'file' | 'directory' | 'symlink' | 'other';

export interface FileStat {
  type: FileType;
  sizeBytes: number;
  /** Full st_mode, type bits included, as pg_probackup records it. */
  mode: number;
  mtimeMs: number;
}

export interface DirEntry {
  name: string;
  type: FileType;
}

export interface ReadHandle {
  /** Reads up to `length` bytes at `position` into `buffer` from offset 0; returns bytes read (0 at end). */
  read(buffer: Buffer, position: number, length?: number): Promise<number>;
  close(): Promise<void>;
}

export interface WriteHandle {
  /** Writes all of `data` at `position`, or at the current end when omitted. */
  write(data: Buffer, position?: number): Promise<void>;
  truncate(sizeBytes: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface WriteOptions {
  mode?: number;
  /** Fail with code 'EEXIST' when the file exists (O_CREAT|O_EXCL). */
  exclusive?: boolean;
  /** fsync the file (and, for atomic writes, its directory) before returning. */
  sync?: boolean;
}

/**
 * The processes of the host that holds some files: PID lock files in a catalog and a data
 * directory's `postmaster.pid` name processes of the host they are on, so their liveness must be
 * asked there, never on the host that happens to run the command.
 */
export interface HostProcesses {
  /**
   * The PID this command writes into lock files on that host: its own locally; on a remote host
   * the agent serving the connection, which exits with it, so a lock left by a lost connection
   * becomes stale exactly as one left by a killed process.
   */
  readonly ownPid: number;
  /** Signal 0 on that host: true when the process exists, also when another user owns it. */
  isAlive(pid: number): Promise<boolean>;
}

export interface Storage {
  readonly kind: 'local' | 'ssh';
  /** The processes of the host whose files `path` names. */
  processesAt(path: string): HostProcesses;
  /**
   * The path under which this host's file system holds `path` when this Storage serves it from
   * there with plain file system semantics, so that another thread of this process may open it
   * with its own LocalStorage (the worker threads of `-j N`); undefined when `path` is on another
   * host, or when every access must go through this Storage (a wrapper that observes or changes
   * the calls).
   */
  localPath(path: string): string | undefined;
  /** Stat following symlinks unless `noFollow`; null when the path does not exist. */
  stat(path: string, options?: { noFollow?: boolean }): Promise<FileStat | null>;
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Buffer | string, options?: WriteOptions): Promise<void>;
  /** Writes `path + tmpSuffix`, fsyncs it, renames it over `path`, fsyncs the directory. */
  writeFileAtomic(
    path: string,
    data: Buffer | string,
    options?: { mode?: number; tmpSuffix?: string; sync?: boolean },
  ): Promise<void>;
  openRead(path: string): Promise<ReadHandle>;
  openWrite(path: string, options?: WriteOptions & { truncate?: boolean }): Promise<WriteHandle>;
  /** Entries of a directory, sorted by name bytewise. */
  readDir(path: string): Promise<DirEntry[]>;
  mkdir(path: string, options?: { mode?: number; recursive?: boolean }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Removes a file or a whole directory tree; no error when it does not exist. */
  removeTree(path: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readLink(path: string): Promise<string>;
  chmod(path: string, mode: number): Promise<void>;
  syncFile(path: string): Promise<void>;
  syncDir(path: string): Promise<void>;
  /** Canonical absolute path with symlinks resolved. */
  realPath(path: string): Promise<string>;
}

/** The errno code of a failed storage call ('ENOENT', 'EEXIST', 'ENOSPC', …), if it has one. */
export function storageErrorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
