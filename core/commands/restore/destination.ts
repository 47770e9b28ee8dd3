import { posix } from 'node:path';
import { StrataError, errorText } from '../../errors.js';
import { parseControlFile } from '../../format/pgControl.js';
import type { ControlFile } from '../../format/pgControl.js';
import type { Logger } from '../../log.js';
import type { Storage } from '../../storage/storage.js';
import { storageErrorCode } from '../../storage/storage.js';
import type { IncrementalMode } from './types.js';

export const PG_CONTROL_PATH = 'global/pg_control';
/** Where an incremental restore keeps the destination's pg_control while it works (XLOG_CONTROL_BAK_FILE). */
export const PG_CONTROL_BAK_PATH = 'global/pg_control.pbk.bak';

/** pg_probackup's dir_is_empty: a missing directory counts as empty. */
export async function isDirectoryEmpty(storage: Storage, path: string): Promise<boolean> {
  const stat = await storage.stat(path);
  if (!stat) return true;
  if (stat.type !== 'directory') {
    throw new StrataError('restore', `Cannot open directory "${path}": Not a directory`);
  }
  return (await storage.readDir(path)).length === 0;
}

/** Reads `path` whole, or undefined when it is missing or empty. */
async function readIfPresent(storage: Storage, path: string): Promise<Buffer | undefined> {
  try {
    const bytes = await storage.readFile(path);
    return bytes.length > 0 ? bytes : undefined;
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return undefined;
    throw new StrataError('io', `Cannot read file "${path}": ${errorText(error)}`, {
      cause: error,
    });
  }
}

/**
 * The destination's pg_control (util.c get_control_file_or_back_file): `global/pg_control`, or the
 * `global/pg_control.pbk.bak` an interrupted incremental restore left behind.
 */
export async function readDestinationControlFile(
  storage: Storage,
  pgdata: string,
): Promise<ControlFile> {
  const bytes =
    (await readIfPresent(storage, posix.join(pgdata, PG_CONTROL_PATH))) ??
    (await readIfPresent(storage, posix.join(pgdata, PG_CONTROL_BAK_PATH)));
  if (bytes === undefined) {
    throw new StrataError(
      'restore',
      `Could not read ${PG_CONTROL_PATH} and ${PG_CONTROL_BAK_PATH} files in "${pgdata}"`,
    );
  }
  return parseControlFile(bytes);
}

/**
 * The postmaster PID of `postmaster.pid` when that process lives (utils/file.c
 * local_check_postmaster): 0 without a file or with a dead process, 1 when the file does not start
 * with a number.
 */
async function runningPostmasterPid(storage: Storage, pgdata: string): Promise<number> {
  const path = posix.join(pgdata, 'postmaster.pid');
  let text: string;
  try {
    text = (await storage.readFile(path)).toString('latin1');
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return 0;
    throw new StrataError('io', `Cannot open file "${path}": ${errorText(error)}`, {
      cause: error,
    });
  }
  const match = /^\s*([+-]?\d+)/.exec(text);
  if (!match) return 1;
  const pid = Number(match[1]);
  if (pid <= 1) return pid;
  return (await storage.processesAt(path).isAlive(pid)) ? pid : 0;
}

export interface IncrementalCheckInput {
  pgdata: string;
  mode: Exclude<IncrementalMode, 'none'>;
  /** `system-identifier` of the instance in pg_probackup.conf. */
  systemIdentifier: bigint | undefined;
  partial: boolean;
  destroyAllOtherDbs: boolean;
  force: boolean;
}

export interface IncrementalCheckResult {
  control: ControlFile;
  /** `--force` with another system identifier: wipe PGDATA and restore as into an empty one. */
  cleanup: boolean;
}

/**
 * restore.c check_incremental_compatibility and its caller (cli-behaviour.md §6.1): whether files
 * of a non-empty PGDATA may be reused. The first reason, in pg_probackup's order, refuses with
 * `Incremental restore is not allowed: <reason>`.
 */
export async function checkIncrementalCompatibility(
  storage: Storage,
  input: IncrementalCheckInput,
  logger: Logger,
): Promise<IncrementalCheckResult> {
  const { pgdata } = input;
  const pid = await runningPostmasterPid(storage, pgdata);
  if (pid === 1) {
    logger.warning(
      `Pid file "${posix.join(pgdata, 'postmaster.pid')}" is mangled, cannot determine whether postmaster is running or not`,
    );
  } else if (pid > 1) {
    logger.warning(`Postmaster with pid ${pid} is running in destination directory "${pgdata}"`);
  }

  logger.verbose('Trying to read pg_control file in destination directory');
  const control = await readDestinationControlFile(storage, pgdata);
  const systemIdMatches = control.systemIdentifier === input.systemIdentifier;
  if (!systemIdMatches) {
    logger.warning(
      `Backup catalog was initialized for system id ${input.systemIdentifier ?? 0n}, ` +
        `but destination directory system id is ${control.systemIdentifier}`,
    );
  }

  let backupLabelExists = false;
  if (input.mode === 'lsn' && (await storage.stat(posix.join(pgdata, 'backup_label')))) {
    backupLabelExists = true;
    logger.warning(
      'Destination directory contains "backup_control" file. This does NOT mean that you should ' +
        "delete this file and retry, only that incremental restore in 'lsn' mode may produce " +
        'incorrect result, when applied to cluster with pg_control not synchronized with cluster ' +
        "state.Consider to use incremental restore in 'checksum' mode",
    );
  }

  const refuse = (reason: string): never => {
    throw new StrataError('restore', `Incremental restore is not allowed: ${reason}`);
  };
  if (pid > 1) refuse('Postmaster is running.');
  if (!systemIdMatches) {
    if (input.force) return { control, cleanup: true };
    refuse('System ID mismatch.');
  }
  if (backupLabelExists) refuse('Backup label exists. Cannot use incremental restore in LSN mode.');
  if (input.partial && !input.destroyAllOtherDbs) {
    refuse('Partial incremental restore into non-empty PGDATA is forbidden.');
  }
  if (pid === 1) refuse('We cannot be sure about the database state.');
  return { control, cleanup: false };
}
