import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { lockBackupExclusive, releaseBackupLock } from '../../catalog/locks.js';
import type { FileEntry } from '../../catalog/types.js';
import { StrataError, errorText } from '../../errors.js';
import { createLogger } from '../../log.js';
import type { Logger } from '../../log.js';
import { COMPATIBLE_PROBACKUP_VERSION } from '../context.js';
import type { CommandContext } from '../context.js';
import { isDirectoryEntry } from '../restore/restoreFiles.js';
import { prettyTimeInterval } from '../show/prettyFormat.js';
import { FIRST_VERSION_WITH_HEADER_MAP, programVersionNumber } from '../validate/programVersion.js';
import { validateBackupDataFiles } from '../validate/validateBackup.js';
import {
  commitMergedList,
  deleteMergedIncrementals,
  hasCommittedList,
  installMergedFiles,
  putMergedListInPlace,
  renameMergedFull,
} from './finishMerge.js';
import { REBUILT_SUFFIX, STAGED_SUFFIX, stageMergedFiles } from './mergeFiles.js';
import type { MergeMember } from './mergeFiles.js';
import { planMerge } from './mergePlan.js';
import type { MergePlan } from './mergePlan.js';

export interface MergeParams {
  backupPath: string;
  instance: string;
  /** `-i`: the destination (an incremental backup), or a FULL backup (its only valid child is merged into it). */
  backupId: string;
  threads: number;
  noValidate: boolean;
  noSync: boolean;
  progress: boolean;
}

/** STORAGE_FORMAT_VERSION 2.4.4: older members disable in-place merge (catalog-format.md §16.1). */
const STORAGE_FORMAT_VERSION = '2.4.4';

const silentLogger = createLogger(() => undefined);

interface MergeRun {
  ctx: CommandContext;
  catalog: BackupCatalog;
  params: MergeParams;
  plan: MergePlan;
}

/** Wall-clock seconds between two `ctx.now()` readings, counted as pg_probackup's time() does. */
function elapsedSeconds(startMs: number, endMs: number): number {
  return Math.floor(endMs / 1000) - Math.floor(startMs / 1000);
}

/** FULL first, then the incrementals from the oldest to the destination (pg_probackup's order). */
function membersOldestFirst(plan: MergePlan): CatalogBackup[] {
  return [plan.full, ...[...plan.incrementals].reverse()];
}

/** Refusals of merge_chain before anything is written: versions, external directories. */
function checkMembers(run: MergeRun, dest: CatalogBackup, retry: boolean): void {
  const { plan } = run;
  const supported = programVersionNumber(COMPATIBLE_PROBACKUP_VERSION);
  for (const member of membersOldestFirst(plan)) {
    if (programVersionNumber(member.programVersion) > supported) {
      throw new StrataError(
        'format',
        `Backup ${member.id} has been produced by pg_probackup version ${member.programVersion ?? ''}, ` +
          `but current program version is ${COMPATIBLE_PROBACKUP_VERSION}. Forward compatibility is not supported.`,
      );
    }
    if (member.externalDirs !== undefined) {
      throw new StrataError(
        'usage',
        `Backup ${member.id} has external directories (${member.externalDirs}); merging them is not ` +
          'supported by Strata yet',
      );
    }
  }
  // Since 2.4.0 data files have page_header_map: a retry across that boundary is refused (merge.c).
  if (
    retry &&
    programVersionNumber(dest.programVersion) >= FIRST_VERSION_WITH_HEADER_MAP &&
    programVersionNumber(plan.full.programVersion) < FIRST_VERSION_WITH_HEADER_MAP
  ) {
    throw new StrataError(
      'format',
      'Retry of failed merge for backups with different between minor versions is forbidden to avoid ' +
        'data corruption because of storage format changes introduced in 2.4.0 version, please take a new full backup',
    );
  }
}

/**
 * Whether files unchanged since the FULL may stay in place (merge.c): same compression in FULL
 * and destination, every member in the current storage format, and not a retry — pg_probackup's
 * rule; the FULL's files are intact until the commit here, but a retry rebuilds every file so
 * that nothing an interrupted attempt left is relied on.
 */
function inPlaceAllowed(run: MergeRun, dest: CatalogBackup, retry: boolean): boolean {
  const { plan, ctx } = run;
  let allowed = !retry;
  if (plan.full.compressAlg !== dest.compressAlg) {
    ctx.logger.warning('In-place merge is disabled because of compression algorithms mismatch');
    allowed = false;
  }
  const members = membersOldestFirst(plan);
  const oldest = members.reduce((min, member) =>
    programVersionNumber(member.programVersion) < programVersionNumber(min.programVersion)
      ? member
      : min,
  );
  if (programVersionNumber(oldest.programVersion) < programVersionNumber(STORAGE_FORMAT_VERSION)) {
    ctx.logger.warning(
      'In-place merge is disabled because of storage format incompatibility. ' +
        `Backup ${oldest.id} storage format version: ${oldest.programVersion ?? ''}, ` +
        `current storage format version: ${STORAGE_FORMAT_VERSION}`,
    );
    allowed = false;
  }
  return allowed;
}

/** Step 2: every member but a FULL in MERGING (its files are the merge's input) must validate OK. */
async function validateChain(run: MergeRun, dest: CatalogBackup): Promise<void> {
  const { ctx, catalog, params } = run;
  ctx.logger.info(`Validate parent chain for backup ${dest.id}`);
  for (const member of membersOldestFirst(run.plan)) {
    if (member.backupMode === 'FULL' && member.status === 'MERGING') continue;
    await validateBackupDataFiles(ctx, {
      catalog,
      instance: params.instance,
      backup: member,
      threads: params.threads,
      // pg_probackup merges with skip_block_validation on: the file CRCs prove the bytes.
      skipBlockValidation: true,
    });
    if (member.status !== 'OK') {
      throw new StrataError(
        'corrupt',
        `Backup ${member.id} has status ${member.status}, merge is aborted`,
      );
    }
  }
}

/** Staged names must not be files of the backup itself (a relation can't, but a config file could). */
function checkTemporaryNames(destEntries: readonly FileEntry[], dest: CatalogBackup): void {
  const paths = new Set(destEntries.map((entry) => entry.path));
  for (const entry of destEntries) {
    if (isDirectoryEntry(entry)) continue;
    for (const suffix of [STAGED_SUFFIX, REBUILT_SUFFIX]) {
      if (paths.has(entry.path + suffix)) {
        throw new StrataError(
          'catalog',
          `Backup ${dest.id} holds both "${entry.path}" and "${entry.path}${suffix}"; merge needs ` +
            `the second name for its temporary copy of the first. Rename "${entry.path}${suffix}" ` +
            'in the data directory and take a new backup',
        );
      }
    }
  }
}

/** The chain's file lists, destination first (MergePlan.incrementals starts with it), FULL last. */
async function loadMembers(run: MergeRun): Promise<MergeMember[]> {
  const members: MergeMember[] = [];
  for (const backup of [...run.plan.incrementals, run.plan.full]) {
    const entries = await run.catalog.readContentList(backup);
    const files = new Map<string, FileEntry>();
    for (const entry of entries) if (entry.externalDirNum === 0) files.set(entry.path, entry);
    members.push({ backup, files, programVersionNum: programVersionNumber(backup.programVersion) });
  }
  return members;
}

/**
 * Steps 3–4 up to the commit point: members MERGING (the FULL recording the destination and the
 * merge time), every file of the merged backup staged in the FULL's directory, the merged list
 * written beside the FULL's.
 */
async function stageMerge(run: MergeRun, dest: CatalogBackup, retry: boolean): Promise<void> {
  const { ctx, catalog, params, plan } = run;
  const { logger, storage } = ctx;
  checkMembers(run, dest, retry);
  const inPlace = inPlaceAllowed(run, dest, retry);
  if (!params.noValidate) await validateChain(run, dest);

  const chain = await loadMembers(run);
  const destEntries = await catalog.readContentList(dest);
  checkTemporaryNames(destEntries, dest);

  const startMs = ctx.now();
  plan.full.status = 'MERGING';
  plan.full.mergeDestId = plan.destId;
  plan.full.mergeTime = Math.floor(startMs / 1000);
  await catalog.writeBackupControl(plan.full.dir, plan.full);
  for (const member of [...plan.incrementals].reverse()) {
    await catalog.setBackupStatus(member, 'MERGING', { logger });
  }

  logger.info('Start merging backup files');
  const staged = await stageMergedFiles({
    storage,
    logger,
    signal: ctx.signal,
    chain,
    destEntries,
    inPlaceAllowed: inPlace,
    threads: params.threads,
    noSync: params.noSync,
    progress: params.progress,
  });
  const elapsed = prettyTimeInterval(elapsedSeconds(startMs, ctx.now()));
  if (staged.failure !== undefined) {
    logger.log('ERROR', staged.failure.message);
    throw new StrataError(
      staged.failure.code,
      `Backup files merging failed, time elapsed: ${elapsed}`,
      { cause: staged.failure },
    );
  }
  if (!params.noSync) {
    for (const directory of staged.stagedDirectories) await storage.syncDir(directory);
  }
  logger.info(`Backup files are successfully merged, time elapsed: ${elapsed}`);
  await commitMergedList(storage, plan.full.dir, staged.entries);
}

/**
 * The state machine of README.md, from whatever state the FULL is found in: OK/DONE (fresh
 * merge), MERGING without a committed list (redo the staging), MERGING with one (install),
 * MERGED (delete and rename).
 */
async function runMerge(run: MergeRun): Promise<void> {
  const { ctx, catalog, params, plan } = run;
  const { logger, storage } = ctx;
  const { full, dest } = plan;
  const nowSec = () => Math.floor(ctx.now() / 1000);
  if (full.status !== 'MERGED') {
    if (!dest) throw new StrataError('internal', `Merge of backup ${full.id} has no destination`);
    const retry = dest.status === 'MERGING' || full.status === 'MERGING';
    logger.info(
      retry
        ? `Retry failed merge of backup ${dest.id} with parent chain`
        : `Merging backup ${dest.id} with parent chain`,
    );
    if (full.status === 'MERGING' && (await hasCommittedList(storage, full.dir))) {
      logger.verbose(`Files of backup ${dest.id} are already merged into ${full.id}`);
    } else {
      await stageMerge(run, dest, retry);
    }
    await installMergedFiles({
      catalog,
      logger,
      full,
      dest,
      threads: params.threads,
      noSync: params.noSync,
      nowSec: nowSec(),
    });
  } else {
    if (dest) logger.info(`Retry failed merge of backup ${dest.id} with parent chain`);
    await putMergedListInPlace(storage, full.dir, params.noSync);
  }
  await deleteMergedIncrementals(catalog, plan.incrementals, {
    logger,
    progress: params.progress,
    signal: ctx.signal,
  });
  await renameMergedFull({
    catalog,
    logger,
    instance: params.instance,
    full,
    destId: plan.destId,
    destStartTime: plan.destStartTime,
    noSync: params.noSync,
  });
}

/** The backups a plan works on, by directory, to notice a catalog changed while waiting for locks. */
function planKey(plan: MergePlan): string {
  return [plan.full, ...plan.incrementals]
    .map((backup) => `${backup.dir}:${backup.status}`)
    .join('|');
}

async function lockAll(
  ctx: CommandContext,
  backups: readonly CatalogBackup[],
  locked: CatalogBackup[],
): Promise<void> {
  for (const backup of backups) {
    await lockBackupExclusive(ctx.storage, backup.dir, { backupId: backup.id, logger: ctx.logger });
    locked.push(backup);
  }
}

async function releaseAll(
  logger: Logger,
  ctx: CommandContext,
  locked: CatalogBackup[],
): Promise<void> {
  for (const backup of locked.reverse()) {
    try {
      await releaseBackupLock(ctx.storage, backup.dir, { backupId: backup.id, logger });
    } catch (error) {
      logger.warning(`Cannot release the lock of backup ${backup.id}: ${errorText(error)}`);
    }
  }
}

/**
 * `merge -i ID` (cli-behaviour.md §8; catalog-format.md §11.4): merges the incremental chain of
 * backup ID into its FULL backup, which then takes ID and the destination's recovery point.
 * Crash-safe: after an interruption at any point, running it again with the same ID (or the
 * FULL's) finishes the merge (README.md, "State machine").
 */
export async function mergeBackup(
  ctx: CommandContext,
  params: MergeParams,
): Promise<{ mergedId: string }> {
  const { logger, storage } = ctx;
  const catalog = new BackupCatalog(storage, params.backupPath);
  await catalog.assertInstanceExists(params.instance);
  logger.info('Merge started');
  const target = planMerge(await catalog.listBackups(params.instance), params.backupId, logger);

  const locked: CatalogBackup[] = [];
  let merged: CatalogBackup;
  try {
    if (target.kind === 'merged') {
      merged = target.full;
      await lockAll(ctx, [merged], locked);
    } else {
      await lockAll(ctx, membersOldestFirst(target.plan), locked);
      // Another process may have moved the merge on while this one waited for the locks.
      const current = planMerge(
        await catalog.listBackups(params.instance),
        params.backupId,
        silentLogger,
      );
      if (current.kind !== 'merge' || planKey(current.plan) !== planKey(target.plan)) {
        throw new StrataError(
          'catalog',
          `Backups of the merge of ${target.plan.destId} changed while waiting for their locks; run merge again`,
        );
      }
      const plan = current.plan;
      locked.splice(0, locked.length, ...membersOldestFirst(plan));
      await runMerge({ ctx, catalog, params, plan });
      merged = plan.full;
    }

    if (!params.noValidate) {
      await validateBackupDataFiles(ctx, {
        catalog,
        instance: params.instance,
        backup: merged,
        threads: params.threads,
        skipBlockValidation: true,
      });
    }
    if (merged.status === 'CORRUPT') {
      throw new StrataError('corrupt', `Merging of backup ${merged.id} failed`);
    }
  } finally {
    await releaseAll(logger, ctx, locked);
  }
  logger.info(`Merge of backup ${merged.id} completed`);
  return { mergedId: merged.id };
}
