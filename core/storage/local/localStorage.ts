import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname } from 'node:path';
import type {
  DirEntry,
  FileStat,
  FileType,
  HostProcesses,
  ReadHandle,
  Storage,
  WriteHandle,
  WriteOptions,
} from '../storage.js';
import { localProcesses } from './localProcesses.js';

function fileTypeOf(stats: {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}): FileType {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  return 'other';
}

async function syncPath(path: string): Promise<void> {
  const handle = await fs.open(path, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Storage on this host's filesystem. */
export class LocalStorage implements Storage {
  readonly kind = 'local' as const;

  processesAt(): HostProcesses {
    return localProcesses;
  }

  localPath(path: string): string {
    return path;
  }

  async stat(path: string, options?: { noFollow?: boolean }): Promise<FileStat | null> {
    try {
      const stats = options?.noFollow ? await fs.lstat(path) : await fs.stat(path);
      return {
        type: fileTypeOf(stats),
        sizeBytes: stats.size,
        mode: stats.mode,
        mtimeMs: stats.mtimeMs,
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  readFile(path: string): Promise<Buffer> {
    return fs.readFile(path);
  }

  async writeFile(path: string, data: Buffer | string, options: WriteOptions = {}): Promise<void> {
    const flags = options.exclusive ? 'wx' : 'w';
    const handle = await fs.open(path, flags, options.mode ?? 0o600);
    try {
      await handle.writeFile(data);
      if (options.sync) await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async writeFileAtomic(
    path: string,
    data: Buffer | string,
    options: { mode?: number; tmpSuffix?: string; sync?: boolean } = {},
  ): Promise<void> {
    const tmpPath = path + (options.tmpSuffix ?? '.tmp');
    const sync = options.sync ?? true;
    try {
      await this.writeFile(tmpPath, data, { mode: options.mode ?? 0o600, sync });
      await fs.rename(tmpPath, path);
    } catch (error) {
      await fs.rm(tmpPath, { force: true });
      throw error;
    }
    if (sync) await syncPath(dirname(path));
  }

  async openRead(path: string): Promise<ReadHandle> {
    const handle = await fs.open(path, 'r');
    return {
      async read(buffer, position, length = buffer.length) {
        const { bytesRead } = await handle.read(buffer, 0, length, position);
        return bytesRead;
      },
      close: () => handle.close(),
    };
  }

  async openWrite(
    path: string,
    options: WriteOptions & { truncate?: boolean } = {},
  ): Promise<WriteHandle> {
    let flags = constants.O_WRONLY | constants.O_CREAT;
    if (options.exclusive) flags |= constants.O_EXCL;
    if (options.truncate) flags |= constants.O_TRUNC;
    const handle = await fs.open(path, flags, options.mode ?? 0o600);
    let end = options.truncate ? 0 : (await handle.stat()).size;
    return {
      async write(data, position) {
        const at = position ?? end;
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await handle.write(
            data,
            written,
            data.length - written,
            at + written,
          );
          written += bytesWritten;
        }
        end = Math.max(end, at + data.length);
      },
      async truncate(sizeBytes) {
        await handle.truncate(sizeBytes);
        end = sizeBytes;
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  }

  async readDir(path: string): Promise<DirEntry[]> {
    const entries = await fs.readdir(path, { withFileTypes: true });
    return entries
      .map((entry) => ({ name: entry.name, type: fileTypeOf(entry) }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  }

  async mkdir(path: string, options: { mode?: number; recursive?: boolean } = {}): Promise<void> {
    await fs.mkdir(path, { mode: options.mode ?? 0o700, recursive: options.recursive ?? false });
  }

  rename(from: string, to: string): Promise<void> {
    return fs.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return fs.unlink(path);
  }

  removeTree(path: string): Promise<void> {
    return fs.rm(path, { recursive: true, force: true });
  }

  symlink(target: string, path: string): Promise<void> {
    return fs.symlink(target, path);
  }

  readLink(path: string): Promise<string> {
    return fs.readlink(path);
  }

  chmod(path: string, mode: number): Promise<void> {
    return fs.chmod(path, mode);
  }

  syncFile(path: string): Promise<void> {
    return syncPath(path);
  }

  syncDir(path: string): Promise<void> {
    return syncPath(path);
  }

  realPath(path: string): Promise<string> {
    return fs.realpath(path);
  }
}
