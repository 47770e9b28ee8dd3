import * as fs from 'node:fs';

/**
 * Cleanup at process exit for the local driver. Node's 'exit' listeners run synchronously and
 * cannot await, so work that must happen on the way out (releasing `backup.pid` lock files, as
 * pg_probackup does at exit) needs synchronous file calls; this is the one place outside
 * localStorage.ts that makes them, and only for paths on this host.
 */

/** Synchronous file operations for exit hooks; paths are absolute paths on this host. */
export interface SyncFileOps {
  /** The file's text, or undefined when it does not exist. */
  readText(path: string): string | undefined;
  /** Creates the file with O_CREAT|O_EXCL and writes `text`; false when it already exists. */
  createExclusive(path: string, text: string, mode: number): boolean;
  /** Writes `text` to `tmpPath`, then renames it over `path`. */
  replace(path: string, tmpPath: string, text: string, mode: number): void;
  /** Removes the file; no error when it does not exist. */
  unlink(path: string): void;
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

export const localSyncFileOps: SyncFileOps = {
  readText(path) {
    try {
      return fs.readFileSync(path, 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  },
  createExclusive(path, text, mode) {
    let fd: number;
    try {
      fd = fs.openSync(
        path,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL,
        mode,
      );
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') return false;
      throw error;
    }
    try {
      fs.writeSync(fd, text);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  },
  replace(path, tmpPath, text, mode) {
    fs.writeFileSync(tmpPath, text, { mode });
    fs.renameSync(tmpPath, path);
  },
  unlink(path) {
    try {
      fs.unlinkSync(path);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
  },
};

const exitHooks = new Set<() => void>();
let listenerInstalled = false;

function runExitHooks(): void {
  for (const hook of [...exitHooks]) {
    try {
      hook();
    } catch {
      // The process is exiting: a hook that fails (e.g. a removed directory) must not stop the
      // others, and there is no caller left to report to.
    }
  }
  exitHooks.clear();
}

/** Runs `hook` synchronously when the process exits; returns a function that unregisters it. */
export function registerExitHook(hook: () => void): () => void {
  if (!listenerInstalled) {
    process.on('exit', runExitHooks);
    listenerInstalled = true;
  }
  exitHooks.add(hook);
  return () => {
    exitHooks.delete(hook);
  };
}
