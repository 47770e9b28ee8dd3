import type { BackupCatalog, CatalogBackup } from '../../catalog/catalog.js';
import { StrataError } from '../../errors.js';
import type { Lsn } from '../../format/lsn.js';
import type { CommandContext } from '../context.js';
import { BackupLinks, orphanDescendants } from './backupLinks.js';
import { hasWalRecoveryTarget, validateRecoveryTargetWal } from './backupWal.js';
import {
  validateBackupDataFiles,
  validateBackupWalAndStatus,
  withSharedBackupLock,
} from './validateBackup.js';

export interface ValidateForRestoreParams {
  catalog: BackupCatalog;
  instance: string;
  /** The backup to restore and its ancestors, FULL first (objects of the caller's listing). */
  chain: CatalogBackup[];
  target?: { time?: number; xid?: bigint; lsn?: Lsn; timeline?: number };
  threads: number;
  skipBlockValidation: boolean;
  walSegmentSizeBytes: number;
  /** `--force`: a CORRUPT or ORPHAN target only gets a WARNING. */
  force?: boolean;
}

async function underSharedLock<T>(
  ctx: CommandContext,
  backup: CatalogBackup,
  fn: () => Promise<T>,
): Promise<T> {
  const result = await withSharedBackupLock(ctx, backup, fn);
  if (result === 'lock-failed')
    throw new StrataError('lock', `Cannot lock backup ${backup.id} directory`);
  return result;
}

/**
 * Copies the statuses just written for the instance's backups onto the chain objects the caller
 * holds, so that it sees the ORPHAN marks made from a fresh listing.
 */
function syncStatuses(chain: CatalogBackup[], listing: readonly CatalogBackup[]): void {
  const byId = new Map(listing.map((backup) => [backup.id, backup]));
  for (const member of chain) {
    const listed = byId.get(member.id);
    if (listed) member.status = listed.status;
  }
}

/**
 * Validation before a restore (cli-behaviour.md §6.6), also the engine of `validate -i ID` and
 * `validate --recovery-target-*`: each chain member FULL → target is validated (data files only,
 * under a shared lock); the first one that is not OK stops the loop and its OK/DONE descendants
 * become ORPHAN. When all are OK, the WAL of the target backup is checked from start-lsn to
 * stop-lsn and, with a time/xid/LSN target, up to the target in the archive.
 *
 * Throws `Backup <id> is corrupt.` / `Backup <id> is orphan.` / `Backup <id> has status: <S>`
 * when the target backup did not come out valid (CORRUPT and ORPHAN only warn with `force`), and
 * `Not enough WAL records to …` or `WAL archive is empty. …` for an unreachable target. Logs
 * nothing on success beyond the per-backup messages: the caller says `Backup <id> is valid.`.
 */
export async function validateForRestore(
  ctx: CommandContext,
  params: ValidateForRestoreParams,
): Promise<void> {
  const { catalog, chain } = params;
  const dest = chain[chain.length - 1];
  if (!dest) throw new StrataError('internal', 'validateForRestore needs a backup chain');
  const { logger } = ctx;
  if (dest.backupMode !== 'FULL') logger.info(`Validating parents for backup ${dest.id}`);

  let corrupted: CatalogBackup | undefined;
  for (const member of chain) {
    const common = {
      catalog,
      instance: params.instance,
      backup: member,
      threads: params.threads,
      skipBlockValidation: params.skipBlockValidation,
    };
    await underSharedLock(ctx, member, () => validateBackupDataFiles(ctx, common));
    if (member.status !== 'OK') {
      corrupted = member;
      break;
    }
  }

  if (corrupted === undefined) {
    const target = params.target ?? {};
    const walParams = {
      catalog,
      instance: params.instance,
      backup: dest,
      walSegmentSizeBytes: params.walSegmentSizeBytes,
    };
    const hasTarget = hasWalRecoveryTarget(target);
    const walResult = await underSharedLock(ctx, dest, () =>
      validateBackupWalAndStatus(ctx, walParams, { reportValid: !hasTarget }),
    );
    if (walResult === 'OK' && hasTarget) {
      await validateRecoveryTargetWal(ctx, {
        backup: dest,
        archiveDir: catalog.walDir(params.instance),
        target,
        walSegmentSizeBytes: params.walSegmentSizeBytes,
      });
    }
  } else {
    const listing = await catalog.listBackups(params.instance);
    const links = new BackupLinks(listing);
    const listedCorrupted = listing.find((backup) => backup.id === corrupted.id) ?? corrupted;
    await orphanDescendants(catalog, links, listedCorrupted, logger);
    syncStatuses(chain, listing);
  }

  if (dest.status === 'OK' || dest.status === 'DONE') return;
  if (dest.status === 'CORRUPT' || dest.status === 'ORPHAN') {
    const message = `Backup ${dest.id} is ${dest.status === 'CORRUPT' ? 'corrupt' : 'orphan'}.`;
    if (!params.force) throw new StrataError('corrupt', message);
    logger.warning(message);
    return;
  }
  throw new StrataError('restore', `Backup ${dest.id} has status: ${dest.status}`);
}
