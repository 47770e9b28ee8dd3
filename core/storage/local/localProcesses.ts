import { StrataError, errorText } from '../../errors.js';
import type { HostProcesses } from '../storage.js';

/**
 * Liveness of a PID on this host by signal 0: ESRCH means gone; EPERM means it exists but belongs
 * to another user (the postgres account, another DBA's pg_probackup), which still counts.
 */
export function isLocalProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    if (code === 'EPERM') return true;
    throw new StrataError(
      'io',
      `Failed to send signal 0 to a process ${pid}: ${errorText(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** This host's processes, with this process as the lock owner. */
export const localProcesses: HostProcesses = {
  ownPid: process.pid,
  isAlive: (pid) => Promise.resolve(isLocalProcessAlive(pid)),
};
