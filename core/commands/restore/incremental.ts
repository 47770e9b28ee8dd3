import { posix } from 'node:path';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { StrataError } from '../../errors.js';
import { formatLsn } from '../../format/lsn.js';
import type { Lsn } from '../../format/lsn.js';
import type { ControlFile } from '../../format/pgControl.js';
import type { TimelineHistoryEntry } from '../../format/timelineHistory.js';
import type { Logger } from '../../log.js';
import type { Storage } from '../../storage/storage.js';
import { prettyTimeInterval } from '../show/prettyFormat.js';
import { PG_CONTROL_BAK_PATH } from './destination.js';

/** The relation mapper file (RELMAPPER_FILENAME): its CRC cannot be trusted, so it is always rewritten. */
const RELMAPPER_FILENAME = 'pg_filenode.map';

/** Key of a file in PGDATA (0) or in external directory N, as pg_probackup compares them. */
export function fileKey(externalDirNum: number, path: string): string {
  return `${externalDirNum}:${path}`;
}

/** The point the destination's data files are known to be consistent at (util.c get_redo). */
export interface RedoPoint {
  lsn: Lsn;
  timelineId: number;
}

/**
 * The checkpoint's redo point, lowered to minRecoveryPoint or backupStartPoint when those are set
 * and earlier: pages of a cluster that stopped in recovery are only known up to there.
 */
export function redoPointOf(control: ControlFile): RedoPoint {
  let lsn = control.checkPointCopy.redo;
  let timelineId = control.checkPointCopy.thisTimeLineId;
  if (control.minRecoveryPoint > 0n && control.minRecoveryPoint < lsn) {
    lsn = control.minRecoveryPoint;
    timelineId = control.minRecoveryPointTli;
  }
  if (control.backupStartPoint > 0n && control.backupStartPoint < lsn) {
    lsn = control.backupStartPoint;
    timelineId = control.checkPointCopy.thisTimeLineId;
  }
  return { lsn, timelineId };
}

/**
 * The shift LSN of `-I lsn` (cli-behaviour.md §6.5): walking the chain from the destination
 * backup towards the FULL, the stop LSN of the first member that ended before the destination's
 * redo point on the redo timeline or one of its ancestors. Destination pages with an LSN at or
 * before it are identical to that member's.
 */
export async function findShiftLsn(
  chain: readonly CatalogBackup[],
  control: ControlFile,
  readHistory: (timelineId: number) => Promise<TimelineHistoryEntry[] | undefined>,
  logger: Logger,
): Promise<Lsn> {
  const redo = redoPointOf(control);
  if (control.dataChecksumVersion === 0) {
    throw new StrataError(
      'restore',
      "Incremental restore in 'lsn' mode require data_checksums to be enabled in destination data directory",
    );
  }
  const history = await readHistory(redo.timelineId);
  if (history === undefined) {
    logger.warning(
      `Failed to get history for redo timeline ${redo.timelineId}, ` +
        "multi-timeline incremental restore in 'lsn' mode is impossible",
    );
  }
  const dest = chain[0]!;
  for (const backup of chain) {
    if (backup.stopLsn >= redo.lsn) continue;
    if (backup.timelineId === redo.timelineId) {
      logger.info(
        `Backup ${backup.id} is chosen as shiftpoint, its Stop LSN will be used as shift LSN`,
      );
      return reachable(backup);
    }
    if (history === undefined) {
      logger.warning(
        `Redo timeline ${redo.timelineId} differs from target timeline ${backup.timelineId}, ` +
          "in this case, to safely run incremental restore in 'lsn' mode, the history file for " +
          `timeline ${redo.timelineId} is mandatory`,
      );
      break;
    }
    if (history.some((entry) => entry.timelineId === backup.timelineId)) return reachable(backup);
    logger.info(
      `Backup ${backup.id} cannot be a shiftpoint, because its tli ${backup.timelineId} is not ` +
        `in history of redo timeline ${redo.timelineId}`,
    );
  }
  throw new StrataError(
    'restore',
    `Cannot perform incremental restore of backup chain ${dest.id} in 'lsn' mode, because ` +
      `destination directory redo point ${formatLsn(redo.lsn)} on tli ${redo.timelineId} is out of reach`,
  );

  function reachable(backup: CatalogBackup): Lsn {
    logger.info(
      `Destination directory redo point ${formatLsn(redo.lsn)} on tli ${redo.timelineId} is within ` +
        `reach of backup ${backup.id} with Stop LSN ${formatLsn(backup.stopLsn)} on tli ${backup.timelineId}`,
    );
    logger.info(`shift LSN: ${formatLsn(backup.stopLsn)}`);
    return backup.stopLsn;
  }
}

/** A path found in the destination: PGDATA (0) or external directory N. */
export interface DestinationFile {
  path: string;
  externalDirNum: number;
  isDirectory: boolean;
}

/**
 * Lists a directory tree as pg_probackup's fio_list_dir for incremental restore: symlinks are
 * followed (tablespaces, a linked pg_wal), hidden entries are skipped.
 */
async function listTree(
  storage: Storage,
  root: string,
  externalDirNum: number,
): Promise<DestinationFile[]> {
  const found: DestinationFile[] = [];
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await storage.readDir(
      relative === '' ? root : posix.join(root, relative),
    )) {
      if (entry.name.startsWith('.')) continue;
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      let isDirectory = entry.type === 'directory';
      if (entry.type === 'symlink') {
        isDirectory = (await storage.stat(posix.join(root, path)))?.type === 'directory';
      }
      found.push({ path, externalDirNum, isDirectory });
      if (isDirectory) await walk(path);
    }
  };
  if ((await storage.stat(root))?.type === 'directory') await walk('');
  return found;
}

async function deletePath(storage: Storage, fullPath: string): Promise<void> {
  const stat = await storage.stat(fullPath, { noFollow: true });
  if (!stat) return;
  if (stat.type === 'directory') await storage.removeTree(fullPath);
  else await storage.unlink(fullPath);
}

export interface PrepareDestinationInput {
  pgdata: string;
  /** Restore locations of the external directories (index N-1), empty when they are skipped. */
  externalDirs: readonly string[];
  /** Keys (fileKey) of every entry of the destination backup's file list. */
  backupKeys: ReadonlySet<string>;
  /** Remove every file, keeping only the backup's directories (`--force` on another system). */
  cleanup: boolean;
  /** Unix milliseconds, for the elapsed times. */
  now: () => number;
}

function elapsed(startMs: number, endMs: number): string {
  return prettyTimeInterval(Math.floor(endMs / 1000) - Math.floor(startMs / 1000));
}

/**
 * restore.c restore_chain before the files (catalog-format.md §15.3): lists the destination and
 * deletes whatever the backup does not have — plus `pg_filenode.map`, always rewritten — keeping
 * `global/pg_control.pbk.bak`. Returns the keys of the files that are left for reuse.
 */
export async function removeRedundantFiles(
  storage: Storage,
  input: PrepareDestinationInput,
  logger: Logger,
): Promise<Set<string>> {
  logger.info('Extracting the content of destination directory for incremental restore');
  let startMs = input.now();
  const listed = await listTree(storage, input.pgdata, 0);
  for (const [index, dir] of input.externalDirs.entries()) {
    listed.push(...(await listTree(storage, dir, index + 1)));
  }
  // Deepest paths first, so that a directory is empty by the time it is reached.
  listed.sort(
    (a, b) =>
      Buffer.compare(Buffer.from(b.path), Buffer.from(a.path)) ||
      b.externalDirNum - a.externalDirNum,
  );
  logger.info(
    `Destination directory content extracted, time elapsed: ${elapsed(startMs, input.now())}`,
  );
  logger.info('Removing redundant files in destination directory');
  startMs = input.now();
  const kept = new Set<string>();
  for (const file of listed) {
    const key = fileKey(file.externalDirNum, file.path);
    let redundant = !input.backupKeys.has(key);
    if (file.externalDirNum === 0 && posix.basename(file.path) === RELMAPPER_FILENAME) {
      redundant = true;
    }
    if (file.externalDirNum === 0 && file.path === PG_CONTROL_BAK_PATH) redundant = false;
    if (file.isDirectory && !redundant) continue;
    if (input.cleanup || redundant) {
      const root =
        file.externalDirNum === 0 ? input.pgdata : input.externalDirs[file.externalDirNum - 1]!;
      const fullPath = posix.join(root, file.path);
      await deletePath(storage, fullPath);
      logger.verbose(`Deleted file "${fullPath}"`);
      continue;
    }
    kept.add(key);
  }
  logger.info(`Redundant files are removed, time elapsed: ${elapsed(startMs, input.now())}`);
  return kept;
}
