import { finishInterruptedDeletes } from '../../catalog/backupRemoval.js';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { DEFAULT_XLOG_SEG_SIZE_BYTES } from '../../catalog/instanceConfig.js';
import type { InstanceConfig } from '../../catalog/instanceConfig.js';
import { isStrataError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { BackupLinks, isValidStatus } from './backupLinks.js';
import { validateBackupUnlocked, withSharedBackupLock } from './validateBackup.js';

export interface ValidateInstanceParams {
  backupPath: string;
  /** Without it every instance of the catalog is validated (`validate -B DIR`). */
  instance?: string;
  threads: number;
  skipBlockValidation: boolean;
}

/** What one `validate` run found, for its closing lines and exit code. */
interface RunState {
  corruptedFound: boolean;
  skippedDueToLock: boolean;
}

interface InstanceRun {
  ctx: CommandContext;
  catalog: BackupCatalog;
  instance: string;
  walSegmentSizeBytes: number;
  params: ValidateInstanceParams;
  state: RunState;
}

/** Validates one backup under a shared lock; false when the lock could not be had (then skipped). */
async function validateLocked(run: InstanceRun, backup: CatalogBackup): Promise<boolean> {
  const result = await withSharedBackupLock(run.ctx, backup, () =>
    validateBackupUnlocked(run.ctx, {
      catalog: run.catalog,
      instance: run.instance,
      backup,
      threads: run.params.threads,
      skipBlockValidation: run.params.skipBlockValidation,
      walSegmentSizeBytes: run.walSegmentSizeBytes,
    }),
  );
  if (result !== 'lock-failed') return true;
  run.ctx.logger.warning(`Cannot lock backup ${backup.id} directory, skip validation`);
  run.state.skippedDueToLock = true;
  return false;
}

/**
 * Whether `backup` may be validated now: an incremental whose chain is broken, or that has an
 * invalid ancestor older than itself, is orphaned instead (only the oldest invalid member of a
 * chain is re-validated).
 */
async function mayValidate(
  run: InstanceRun,
  links: BackupLinks,
  backup: CatalogBackup,
): Promise<boolean> {
  if (backup.backupMode === 'FULL') return true;
  const { catalog, ctx, state } = run;
  const { result, oldest } = links.scanParentChain(backup);
  if (result === 'broken') {
    const missingId = oldest.parentBackupId ?? '';
    state.corruptedFound = true;
    if (isValidStatus(backup)) {
      await catalog.setBackupStatus(backup, 'ORPHAN', { logger: ctx.logger });
      ctx.logger.warning(
        `Backup ${backup.id} is orphaned because his parent ${missingId} is missing`,
      );
    } else {
      ctx.logger.warning(`Backup ${backup.id} has missing parent ${missingId}`);
    }
    return false;
  }
  if (result === 'invalid' && oldest !== backup) {
    if (isValidStatus(backup)) {
      await catalog.setBackupStatus(backup, 'ORPHAN', { logger: ctx.logger });
      ctx.logger.warning(
        `Backup ${backup.id} is orphaned because his parent ${oldest.id} has status: ${oldest.status}`,
      );
    } else {
      ctx.logger.warning(
        `Backup ${backup.id} has parent ${oldest.id} with status: ${oldest.status}`,
      );
    }
    return false;
  }
  return true;
}

/**
 * After `current` came out OK, its ORPHAN descendants whose oldest invalid ancestor was `current`
 * are re-validated, oldest first, so that a repaired chain becomes OK again.
 */
async function revalidateOrphanDescendants(
  run: InstanceRun,
  links: BackupLinks,
  newerBackups: readonly CatalogBackup[],
  current: CatalogBackup,
): Promise<void> {
  for (const backup of [...newerBackups].reverse()) {
    if (!links.isDescendantOf(current.startTime, backup)) continue;
    const { result, oldest } = links.scanParentChain(backup);
    if (result !== 'invalid' || oldest !== backup) continue;
    if (backup.status === 'ORPHAN' && !(await validateLocked(run, backup))) continue;
    if (backup.status !== 'OK') run.state.corruptedFound = true;
  }
}

/** pg_probackup's do_validate_instance: every backup of the instance, newest first. */
async function validateInstanceBackups(run: InstanceRun): Promise<void> {
  const { catalog, ctx, state } = run;
  ctx.logger.info(`Validate backups of the instance '${run.instance}'`);
  await finishInterruptedDeletes(catalog, run.instance, ctx.logger);
  const backups = await catalog.listBackups(run.instance);
  const links = new BackupLinks(backups);
  for (let i = 0; i < backups.length; i++) {
    const current = backups[i]!;
    if (!(await mayValidate(run, links, current))) continue;
    if (!(await validateLocked(run, current))) continue;
    const newer = backups.slice(0, i);
    if (current.status !== 'OK') {
      state.corruptedFound = true;
      for (const backup of [...newer].reverse()) {
        if (!links.isDescendantOf(current.startTime, backup) || !isValidStatus(backup)) continue;
        await catalog.setBackupStatus(backup, 'ORPHAN', { logger: ctx.logger });
        ctx.logger.warning(
          `Backup ${backup.id} is orphaned because his parent ${current.id} has status: ${current.status}`,
        );
      }
      continue;
    }
    await revalidateOrphanDescendants(run, links, newer, current);
  }
}

/**
 * The instance's configuration, or undefined when pg_probackup would call it empty: a missing file
 * or one without any option (`validate -B` then counts the instance as invalid).
 */
async function readConfigIfAny(
  catalog: BackupCatalog,
  instance: string,
): Promise<InstanceConfig | undefined> {
  let config: InstanceConfig;
  try {
    config = await catalog.readInstanceConfig(instance);
  } catch (error) {
    if (isStrataError(error) && error.code === 'config' && /doesn't exist/.test(error.message))
      return undefined;
    throw error;
  }
  return Object.keys(config).length === 0 ? undefined : config;
}

/**
 * `validate -B DIR [--instance N]` without `-i` or a time/xid/LSN target (cli-behaviour.md §7.3,
 * catalog-format.md §11.3): every backup of the instance (or of every instance), newest first, is
 * validated under a shared lock — data files, then WAL — unless its chain is broken or an older
 * ancestor is invalid, in which case it is orphaned. A backup that fails orphans its OK/DONE
 * descendants; one that passes re-validates the ORPHAN descendants it was blocking. Ends with
 * `All backups are valid`, or WARNINGs `Some backups weren't locked and they were skipped` /
 * `Some backups are not valid`; `allValid` false means exit code 1.
 */
export async function validateInstance(
  ctx: CommandContext,
  params: ValidateInstanceParams,
): Promise<{ allValid: boolean }> {
  const catalog = new BackupCatalog(ctx.storage, params.backupPath);
  const state: RunState = { corruptedFound: false, skippedDueToLock: false };
  const runInstance = async (instance: string, config: InstanceConfig) => {
    const walSegmentSizeBytes = config.xlogSegSize ?? DEFAULT_XLOG_SEG_SIZE_BYTES;
    await validateInstanceBackups({ ctx, catalog, instance, walSegmentSizeBytes, params, state });
  };

  if (params.instance !== undefined) {
    await catalog.assertInstanceExists(params.instance);
    await runInstance(params.instance, await catalog.readInstanceConfig(params.instance));
  } else {
    for (const instance of await catalog.listInstances()) {
      const config = await readConfigIfAny(catalog, instance);
      if (config === undefined) {
        ctx.logger.warning(`Configuration file "${catalog.instanceConfigPath(instance)}" is empty`);
        state.corruptedFound = true;
        continue;
      }
      await runInstance(instance, config);
    }
  }

  if (state.skippedDueToLock)
    ctx.logger.warning("Some backups weren't locked and they were skipped");
  if (state.corruptedFound) {
    ctx.logger.warning('Some backups are not valid');
    return { allValid: false };
  }
  if (!state.skippedDueToLock) ctx.logger.info('All backups are valid');
  return { allValid: true };
}
