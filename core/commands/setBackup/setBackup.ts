import { backupIdToTime } from '../../catalog/backupId.js';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { heldBackupLock, lockBackupExclusive, releaseBackupLock } from '../../catalog/locks.js';
import { formatLocalTime } from '../../catalog/time.js';
import type { BackupMeta } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { CommandContext } from '../context.js';

/** `--ttl` / `--expire-time` of `set-backup` and `backup`. */
export interface BackupPin {
  /** Seconds: pin until recovery-time + ttl; 0 unpins. */
  ttlSec?: number;
  /** Unix seconds: pin until then. */
  expireTimeSec?: number;
}

export interface SetBackupParams extends BackupPin {
  backupPath: string;
  instance: string;
  backupId: string | undefined;
  /** `--note`; `none` (any case) removes the note. */
  note?: string;
}

/** MAX_NOTE_SIZE: pg_probackup keeps at most this many bytes of a note. */
const MAX_NOTE_BYTES = 1024;

/**
 * The note pg_probackup stores: the text up to the first newline (a newline would break the
 * key-value file). The whole text is already limited to MAX_NOTE_BYTES.
 */
export function storedNote(note: string): string {
  return note.split('\n')[0]!;
}

/**
 * pg_probackup's pin_backup (catalog.c): sets `expireTime` from `ttlSec` (recovery-time + ttl)
 * or `expireTimeSec`, or clears it for `ttlSec` 0, with pg_probackup's messages. Used by
 * `set-backup` and by `backup` when it finishes. Returns whether backup.control must be written.
 */
export function pinBackup(
  logger: Logger,
  backup: Pick<BackupMeta, 'id' | 'recoveryTime' | 'expireTime'>,
  pin: BackupPin,
): boolean {
  const pinRequested =
    (pin.ttlSec !== undefined && pin.ttlSec >= 0) ||
    (pin.expireTimeSec !== undefined && pin.expireTimeSec > 0);
  if (!pinRequested) return false;
  if (backup.recoveryTime <= 0) {
    throw new StrataError(
      'usage',
      `Failed to set 'expire-time' for backup ${backup.id}: invalid 'recovery-time'`,
    );
  }
  if (pin.ttlSec !== undefined && pin.ttlSec > 0) {
    backup.expireTime = backup.recoveryTime + pin.ttlSec;
  } else if (pin.ttlSec === 0) {
    if (backup.expireTime === 0) {
      logger.warning(`Backup ${backup.id} is not pinned, nothing to unpin`);
      return false;
    }
    backup.expireTime = 0;
  } else if (pin.expireTimeSec !== undefined && pin.expireTimeSec > 0) {
    backup.expireTime = pin.expireTimeSec;
  } else {
    return false;
  }
  if (backup.expireTime > 0) {
    logger.info(`Backup ${backup.id} is pinned until '${formatLocalTime(backup.expireTime)}'`);
  } else {
    logger.info(`Backup ${backup.id} is unpinned`);
  }
  return true;
}

/**
 * `set-backup -i ID [--ttl=T | --expire-time=TS] [--note=TEXT]` (cli-behaviour.md §3.6;
 * catalog-format.md §11.6): pins or unpins a backup against retention and sets or removes its
 * note. backup.control is re-read and rewritten atomically under the backup's exclusive lock
 * (cli-behaviour.md §13), so a concurrent status change is never lost.
 */
export async function setBackup(
  ctx: CommandContext,
  params: SetBackupParams,
): Promise<CatalogBackup> {
  const { logger, storage } = ctx;
  if (params.backupId === undefined) {
    throw new StrataError(
      'usage',
      "You must specify parameter (-i, --backup-id) for 'set-backup' command",
    );
  }
  if (params.ttlSec !== undefined && params.expireTimeSec !== undefined) {
    throw new StrataError(
      'usage',
      "You cannot specify '--expire-time' and '--ttl' options together",
    );
  }
  const hasPin =
    (params.expireTimeSec !== undefined && params.expireTimeSec > 0) ||
    (params.ttlSec !== undefined && params.ttlSec >= 0);
  if (!hasPin && params.note === undefined) {
    throw new StrataError('usage', "Nothing to set by 'set-backup' command");
  }
  if (params.note !== undefined && Buffer.byteLength(params.note) > MAX_NOTE_BYTES) {
    throw new StrataError('usage', `Backup note cannot exceed ${MAX_NOTE_BYTES} bytes`);
  }

  const catalog = new BackupCatalog(storage, params.backupPath);
  await catalog.assertInstanceExists(params.instance);
  const wantedTime = backupIdToTime(params.backupId);
  const listed = (await catalog.listBackups(params.instance)).find(
    (backup) => backup.startTime === wantedTime,
  );
  if (!listed || listed.backupMode === undefined) {
    throw new StrataError('backup-not-found', `Failed to find backup ${params.backupId}`);
  }
  const alreadyHeld = heldBackupLock(storage, listed.dir)?.exclusive === true;
  if (!alreadyHeld) {
    await lockBackupExclusive(storage, listed.dir, { backupId: listed.id, logger });
  }
  try {
    const backup = await catalog.readBackup(params.instance, listed.id);
    if (!backup || backup.dir !== listed.dir || backup.backupMode === undefined) {
      throw new StrataError('backup-not-found', `Failed to find backup ${params.backupId}`);
    }
    let changed = pinBackup(logger, backup, params);
    if (params.note !== undefined) {
      const note = storedNote(params.note);
      // An empty value is fatal for pg_probackup's reader: an empty note is no note.
      if (params.note.toLowerCase() === 'none' || note === '') {
        backup.note = undefined;
        logger.info(`Removing note from backup ${backup.id}`);
      } else {
        backup.note = note;
        logger.info(`Adding note to backup ${backup.id}: '${note}'`);
      }
      changed = true;
    }
    if (changed) await catalog.writeBackupControl(backup.dir, backup);
    return backup;
  } finally {
    if (!alreadyHeld) {
      await releaseBackupLock(storage, listed.dir, { backupId: listed.id, logger });
    }
  }
}
