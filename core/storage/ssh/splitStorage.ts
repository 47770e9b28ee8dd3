import { posix } from 'node:path';
import type {
  DirEntry,
  FileStat,
  HostProcesses,
  ReadHandle,
  Storage,
  WriteHandle,
  WriteOptions,
} from '../storage.js';
import { SshStorage } from './sshStorage.js';

/**
 * One Storage over two hosts, chosen by path: paths under `roots` go to `inside`, all others to
 * `outside`. This is pg_probackup's split of a remote command between the backup host and the
 * database host (its fio "locations"): a backup or restore keeps the catalog (`-B`) on this host
 * and reaches PGDATA, tablespaces and external directories on the database host; archive-push
 * and archive-get run on the database host and reach the catalog on the backup host. Commands
 * keep working on one `ctx.storage` and need not know which side a path is on.
 */
export class SplitStorage implements Storage {
  readonly kind: 'local' | 'ssh';
  private readonly roots: string[];

  constructor(private readonly options: { roots: string[]; inside: Storage; outside: Storage }) {
    this.roots = options.roots.map((root) => posix.normalize(root).replace(/(.)\/+$/, '$1'));
    this.kind = options.inside.kind === 'ssh' || options.outside.kind === 'ssh' ? 'ssh' : 'local';
  }

  /** The storage that serves `path`. */
  storageFor(path: string): Storage {
    const normalized = posix.normalize(path);
    const inside = this.roots.some(
      (root) => root === '/' || normalized === root || normalized.startsWith(`${root}/`),
    );
    return inside ? this.options.inside : this.options.outside;
  }

  processesAt(path: string): HostProcesses {
    return this.storageFor(path).processesAt(path);
  }

  localPath(path: string): string | undefined {
    return this.storageFor(path).localPath(path);
  }

  stat(path: string, options?: { noFollow?: boolean }): Promise<FileStat | null> {
    return this.storageFor(path).stat(path, options);
  }

  readFile(path: string): Promise<Buffer> {
    return this.storageFor(path).readFile(path);
  }

  writeFile(path: string, data: Buffer | string, options?: WriteOptions): Promise<void> {
    return this.storageFor(path).writeFile(path, data, options);
  }

  writeFileAtomic(
    path: string,
    data: Buffer | string,
    options?: { mode?: number; tmpSuffix?: string; sync?: boolean },
  ): Promise<void> {
    return this.storageFor(path).writeFileAtomic(path, data, options);
  }

  openRead(path: string): Promise<ReadHandle> {
    return this.storageFor(path).openRead(path);
  }

  openWrite(path: string, options?: WriteOptions & { truncate?: boolean }): Promise<WriteHandle> {
    return this.storageFor(path).openWrite(path, options);
  }

  readDir(path: string): Promise<DirEntry[]> {
    return this.storageFor(path).readDir(path);
  }

  mkdir(path: string, options?: { mode?: number; recursive?: boolean }): Promise<void> {
    return this.storageFor(path).mkdir(path, options);
  }

  async rename(from: string, to: string): Promise<void> {
    const source = this.storageFor(from);
    if (source !== this.storageFor(to)) {
      // rename(2) across filesystems fails with EXDEV; across hosts it cannot be atomic either.
      throw Object.assign(
        new Error(`Cannot rename "${from}" to "${to}": they are on different hosts`),
        { code: 'EXDEV' },
      );
    }
    await source.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return this.storageFor(path).unlink(path);
  }

  removeTree(path: string): Promise<void> {
    return this.storageFor(path).removeTree(path);
  }

  symlink(target: string, path: string): Promise<void> {
    return this.storageFor(path).symlink(target, path);
  }

  readLink(path: string): Promise<string> {
    return this.storageFor(path).readLink(path);
  }

  chmod(path: string, mode: number): Promise<void> {
    return this.storageFor(path).chmod(path, mode);
  }

  syncFile(path: string): Promise<void> {
    return this.storageFor(path).syncFile(path);
  }

  syncDir(path: string): Promise<void> {
    return this.storageFor(path).syncDir(path);
  }

  realPath(path: string): Promise<string> {
    return this.storageFor(path).realPath(path);
  }
}

/**
 * The remote storage serving `path` when `storage` reaches it over SSH (an SshStorage, or the
 * remote side of a SplitStorage), so that callers can run work next to the data
 * (`fileCrc32c`, `copyPageRange`); undefined for a path on this host.
 */
export function remoteStorageFor(storage: Storage, path: string): SshStorage | undefined {
  const serving = storage instanceof SplitStorage ? storage.storageFor(path) : storage;
  return serving instanceof SshStorage ? serving : undefined;
}
