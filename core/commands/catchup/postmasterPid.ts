import { storageErrorCode, type Storage } from '../../storage/storage.js';

/** What `postmaster.pid` of a data directory says about a server running on it. */
export type PostmasterState =
  | { kind: 'stopped' }
  | { kind: 'running'; pid: number }
  /** The file exists but its first line is not a process id (pg_probackup's "mangled"). */
  | { kind: 'mangled'; pidFile: string };

/**
 * pg_probackup's fio_check_postmaster(): the first line of `postmaster.pid` is the postmaster's
 * process id (a negative number for a single-user backend, PostgreSQL's CreateLockFile); the
 * server runs when that process exists. A pid file left by a crash names a dead process: stopped.
 * The process is looked for on the host that holds the data directory.
 */
export async function postmasterState(storage: Storage, pgdata: string): Promise<PostmasterState> {
  const pidFile = `${pgdata}/postmaster.pid`;
  let content: string;
  try {
    content = (await storage.readFile(pidFile)).toString('utf8');
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return { kind: 'stopped' };
    throw error;
  }
  const firstLine = content.split('\n', 1)[0]!.trim();
  if (!/^-?\d+$/.test(firstLine)) return { kind: 'mangled', pidFile };
  const pid = Math.abs(Number(firstLine));
  if (pid === 0) return { kind: 'mangled', pidFile };
  return (await storage.processesAt(pidFile).isAlive(pid))
    ? { kind: 'running', pid }
    : { kind: 'stopped' };
}
