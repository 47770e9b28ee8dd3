import { posix } from 'node:path';
import { StrataError, errorText } from '../errors.js';
import { createLogger } from '../log.js';
import type { Logger } from '../log.js';
import { localSyncFileOps, registerExitHook } from '../storage/local/exitCleanup.js';
import { isLocalProcessAlive, localProcesses } from '../storage/local/localProcesses.js';
import type { Storage } from '../storage/storage.js';
import { storageErrorCode } from '../storage/storage.js';

/**
 * Per-backup PID locks (spec/catalog-format.md §10), the same files and rules as pg_probackup so
 * that Strata and pg_probackup processes on one host exclude each other:
 * - exclusive: `backup.pid` created with O_EXCL holding `"<pid>\n"`; a file naming a dead process
 *   (or garbage) is stale and taken over; after taking it, wait for the shared owners to go;
 * - shared: `backup_ro.pid`, one PID per line, rewritten under a brief exclusive lock.
 * Every lock this process holds is released when it exits.
 */

const EXCLUSIVE_LOCK_FILE = 'backup.pid';
const SHARED_LOCK_FILE = 'backup_ro.pid';
/** pg_probackup names the temporary shared lock file without a dot before "tmp". */
const SHARED_LOCK_TMP_SUFFIX = 'tmp';
/** LOCK_TIMEOUT: seconds a locker waits for a live owner. */
const LOCK_TIMEOUT_SECONDS = 60;
/** LOCK_STALE_TIMEOUT: seconds an empty `backup.pid` is waited on before it counts as stale. */
const EMPTY_LOCK_STALE_SECONDS = 30;
/** LOG_FREQ: a waiting locker complains every this many seconds. */
const WAIT_LOG_EVERY_SECONDS = 10;
const LOCK_FILE_MODE = 0o600;

export interface LockOptions {
  backupId: string;
  logger: Logger;
  /** How long to wait for a live owner; default 60 s as pg_probackup. 0 = try once. */
  waitSeconds?: number;
  /** Delete's lax mode: running out of space while writing the PID counts as locked. */
  lax?: boolean;
}

interface HeldLock {
  storage: Storage;
  backupId: string;
  exclusive: boolean;
}

/**
 * Locks this process holds, by file system and directory. Every local Storage instance reaches the
 * same files, so they share one key: a lock taken through one is released through another.
 */
const heldLocks = new Map<Storage | 'local', Map<string, HeldLock>>();

function registryKey(storage: Storage, backupDir: string): Storage | 'local' {
  return storage.processesAt(backupDir) === localProcesses ? 'local' : storage;
}
const silentLogger: Logger = createLogger(() => undefined);
let exitHookRegistered = false;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** C `atoi`: leading blanks, optional sign, digits; 0 when there are none. */
function parsePid(text: string): number {
  const match = /^[ \t\n\r\v\f]*([+-]?\d+)/.exec(text);
  return match ? Number(match[1]) : 0;
}

type GrabResult = 'ok' | 'timeout' | 'enospc' | 'erofs';

async function removeStaleLockFile(storage: Storage, path: string): Promise<void> {
  try {
    await storage.unlink(path);
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return;
    throw new StrataError('lock', `Could not remove old lock file "${path}": ${errorText(error)}`, {
      cause: error,
    });
  }
}

/** pg_probackup's `grab_excl_lock_file`: takes `backup.pid`, waiting for a live owner. */
async function grabExclusiveLockFile(
  storage: Storage,
  backupDir: string,
  options: LockOptions,
): Promise<GrabResult> {
  const path = posix.join(backupDir, EXCLUSIVE_LOCK_FILE);
  const { backupId, logger } = options;
  let triesLeft = options.waitSeconds ?? LOCK_TIMEOUT_SECONDS;
  let emptyTriesLeft = EMPTY_LOCK_STALE_SECONDS;

  const processes = storage.processesAt(path);

  for (;;) {
    try {
      await storage.writeFile(path, `${processes.ownPid}\n`, {
        exclusive: true,
        mode: LOCK_FILE_MODE,
      });
      return 'ok';
    } catch (error) {
      const code = storageErrorCode(error);
      if (code === 'EROFS') {
        logger.warning(`Could not create lock file "${path}": ${errorText(error)}`);
        return 'erofs';
      }
      if (code !== 'EEXIST') {
        await storage.unlink(path).catch(() => undefined);
        if (code === 'ENOSPC' && options.lax) return 'enospc';
        throw new StrataError('lock', `Could not create lock file "${path}": ${errorText(error)}`, {
          cause: error,
        });
      }
    }

    let content: string;
    try {
      content = (await storage.readFile(path)).toString('utf8');
    } catch (error) {
      if (storageErrorCode(error) === 'ENOENT') continue;
      throw new StrataError('lock', `Cannot open lock file "${path}": ${errorText(error)}`, {
        cause: error,
      });
    }

    if (content.length === 0) {
      const stat = await storage.stat(path);
      const ageSeconds = stat ? (Date.now() - stat.mtimeMs) / 1000 : 0;
      if (emptyTriesLeft === 0 || ageSeconds >= EMPTY_LOCK_STALE_SECONDS) {
        logger.warning(`Lock file "${path}" is empty`);
        await removeStaleLockFile(storage, path);
        continue;
      }
      if (emptyTriesLeft % WAIT_LOG_EVERY_SECONDS === 0) {
        logger.warning(
          `Waiting ${emptyTriesLeft} seconds on empty exclusive lock for backup ${backupId}`,
        );
      }
      await sleep(1000);
      emptyTriesLeft--;
      continue;
    }

    const ownerPid = parsePid(content);
    if (ownerPid <= 0) {
      logger.warning(`Bogus data in lock file "${path}": "${content}"`);
      await removeStaleLockFile(storage, path);
      continue;
    }
    if (ownerPid === processes.ownPid) return 'ok';
    if (!(await processes.isAlive(ownerPid))) {
      logger.warning(`Process ${ownerPid} which used backup ${backupId} no longer exists`);
      await removeStaleLockFile(storage, path);
      continue;
    }
    if (triesLeft % WAIT_LOG_EVERY_SECONDS === 0) {
      logger.warning(`Process ${ownerPid} is using backup ${backupId}, and is still running`);
      logger.warning(`Waiting ${triesLeft} seconds on exclusive lock for backup ${backupId}`);
    }
    if (triesLeft <= 0) return 'timeout';
    await sleep(1000);
    triesLeft--;
  }
}

async function readSharedOwners(
  storage: Storage,
  path: string,
  logger: Logger | undefined,
): Promise<number[]> {
  let text: string;
  try {
    text = (await storage.readFile(path)).toString('utf8');
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return [];
    throw new StrataError('lock', `Cannot open lock file "${path}": ${errorText(error)}`, {
      cause: error,
    });
  }
  const pids: number[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const pid = parsePid(line);
    if (pid <= 0) logger?.warning(`Bogus data in lock file "${path}": "${line}"`);
    else pids.push(pid);
  }
  return pids;
}

/** pg_probackup's `wait_shared_owners`: true when every other shared owner is gone. */
async function waitForSharedOwners(
  storage: Storage,
  backupDir: string,
  options: LockOptions,
): Promise<boolean> {
  const path = posix.join(backupDir, SHARED_LOCK_FILE);
  const { backupId, logger } = options;
  let triesLeft = options.waitSeconds ?? LOCK_TIMEOUT_SECONDS;
  const processes = storage.processesAt(path);
  for (const pid of await readSharedOwners(storage, path, logger)) {
    if (pid === processes.ownPid) continue;
    while (await processes.isAlive(pid)) {
      if (triesLeft % WAIT_LOG_EVERY_SECONDS === 0) {
        logger.warning(
          `Process ${pid} is using backup ${backupId} in shared mode, and is still running`,
        );
        logger.warning(`Waiting ${triesLeft} seconds on lock for backup ${backupId}`);
      }
      if (triesLeft <= 0) {
        logger.warning(
          `Cannot lock backup ${backupId} in exclusive mode, because process ${pid} owns shared lock`,
        );
        return false;
      }
      await sleep(1000);
      triesLeft--;
    }
  }
  await storage.unlink(path).catch(() => undefined);
  return true;
}

/**
 * Rewrites `backup_ro.pid` with the live owners other than this process, plus this process when
 * `addSelf`; removes the file when nobody is left. Written as `backup_ro.pidtmp`, then renamed.
 */
async function rewriteSharedOwners(
  storage: Storage,
  backupDir: string,
  addSelf: boolean,
  logger: Logger | undefined,
): Promise<void> {
  const path = posix.join(backupDir, SHARED_LOCK_FILE);
  const processes = storage.processesAt(path);
  const owners: number[] = [];
  for (const pid of await readSharedOwners(storage, path, logger)) {
    if (pid !== processes.ownPid && (await processes.isAlive(pid))) owners.push(pid);
  }
  if (addSelf) owners.push(processes.ownPid);
  if (owners.length === 0) {
    await storage.unlink(path).catch(() => undefined);
    return;
  }
  await storage.writeFileAtomic(path, owners.map((pid) => `${pid}\n`).join(''), {
    mode: LOCK_FILE_MODE,
    tmpSuffix: SHARED_LOCK_TMP_SUFFIX,
    sync: false,
  });
}

async function releaseExclusiveLockFile(storage: Storage, backupDir: string): Promise<void> {
  const path = posix.join(backupDir, EXCLUSIVE_LOCK_FILE);
  let content: string;
  try {
    content = (await storage.readFile(path)).toString('utf8');
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') return;
    throw error;
  }
  if (content === '' || parsePid(content) === storage.processesAt(path).ownPid)
    await storage.unlink(path).catch(() => undefined);
}

function registerHeldLock(storage: Storage, backupDir: string, lock: HeldLock): void {
  const key = registryKey(storage, backupDir);
  let byDir = heldLocks.get(key);
  if (!byDir) {
    byDir = new Map();
    heldLocks.set(key, byDir);
  }
  byDir.set(backupDir, lock);
  if (!exitHookRegistered) {
    registerExitHook(releaseLocalLocksAtExit);
    exitHookRegistered = true;
  }
}

function forgetHeldLock(storage: Storage, backupDir: string): void {
  const key = registryKey(storage, backupDir);
  const byDir = heldLocks.get(key);
  byDir?.delete(backupDir);
  if (byDir?.size === 0) heldLocks.delete(key);
}

/** The lock this process holds on `backupDir`, if any. */
export function heldBackupLock(
  storage: Storage,
  backupDir: string,
): { exclusive: boolean } | undefined {
  const lock = heldLocks.get(registryKey(storage, backupDir))?.get(backupDir);
  return lock ? { exclusive: lock.exclusive } : undefined;
}

function cannotLock(backupId: string): StrataError {
  return new StrataError('lock', `Cannot lock backup ${backupId} directory`);
}

/**
 * Takes the exclusive lock of a backup directory (backup, merge, delete, status changes), waiting
 * up to `waitSeconds` for a live owner and then for shared owners. Throws
 * `Cannot lock backup <id> directory` when it cannot.
 */
export async function lockBackupExclusive(
  storage: Storage,
  backupDir: string,
  options: LockOptions,
): Promise<void> {
  const result = await grabExclusiveLockFile(storage, backupDir, options);
  if (result === 'timeout' || result === 'erofs') throw cannotLock(options.backupId);
  if (!(await waitForSharedOwners(storage, backupDir, options))) {
    await releaseExclusiveLockFile(storage, backupDir);
    throw cannotLock(options.backupId);
  }
  if (result === 'enospc') {
    // Lax mode after ENOSPC: unlinking backup_ro.pid may have freed space; try once more, and
    // give up only if another process took the lock meanwhile.
    if ((await grabExclusiveLockFile(storage, backupDir, options)) === 'timeout') {
      throw cannotLock(options.backupId);
    }
  }
  registerHeldLock(storage, backupDir, { storage, backupId: options.backupId, exclusive: true });
}

/**
 * Takes a shared lock (validate, restore): a brief exclusive lock, this PID added to
 * `backup_ro.pid`, the exclusive lock released. A no-op when this process already holds the
 * exclusive lock; granted without a file on a read-only file system, as pg_probackup does.
 */
export async function lockBackupShared(
  storage: Storage,
  backupDir: string,
  options: LockOptions,
): Promise<void> {
  if (heldBackupLock(storage, backupDir)?.exclusive) return;
  const result = await grabExclusiveLockFile(storage, backupDir, options);
  if (result === 'timeout') throw cannotLock(options.backupId);
  if (result === 'erofs') return;
  try {
    await rewriteSharedOwners(storage, backupDir, true, options.logger);
  } catch (error) {
    if (storageErrorCode(error) !== 'EROFS') {
      await releaseExclusiveLockFile(storage, backupDir);
      throw error;
    }
  }
  await releaseExclusiveLockFile(storage, backupDir);
  registerHeldLock(storage, backupDir, { storage, backupId: options.backupId, exclusive: false });
}

/**
 * Releases the lock this process holds on `backupDir` (none held: nothing to do). A shared lock is
 * removed under a brief exclusive lock; if that cannot be had, the entry is left behind, as
 * pg_probackup leaves it (the next locker drops it once this process is gone).
 */
export async function releaseBackupLock(
  storage: Storage,
  backupDir: string,
  options: { backupId?: string; logger?: Logger } = {},
): Promise<void> {
  const held = heldLocks.get(registryKey(storage, backupDir))?.get(backupDir);
  if (!held) return;
  forgetHeldLock(storage, backupDir);
  if (held.exclusive) {
    await releaseExclusiveLockFile(storage, backupDir);
    return;
  }
  const logger = options.logger ?? silentLogger;
  // Try once: the holder of backup.pid may be an exclusive locker waiting for this very shared
  // lock to go (pg_probackup waits here too, and two such processes stall each other for the
  // whole lock timeout). Left behind, the entry names this process, which the waiter sees gone
  // at its next poll once this process exits.
  const grabbed = await grabExclusiveLockFile(storage, backupDir, {
    backupId: options.backupId ?? held.backupId,
    logger,
    lax: true,
    waitSeconds: 0,
  });
  if (grabbed !== 'ok') return;
  try {
    await rewriteSharedOwners(storage, backupDir, false, logger);
  } finally {
    await releaseExclusiveLockFile(storage, backupDir);
  }
}

/** Releases every lock this process holds (for a graceful shutdown, before `process.exit`). */
export async function releaseAllBackupLocks(): Promise<void> {
  for (const byDir of [...heldLocks.values()]) {
    for (const [backupDir, lock] of [...byDir]) await releaseBackupLock(lock.storage, backupDir);
  }
}

/**
 * The synchronous release run by the process 'exit' hook, for locks on this host's file system.
 * Locks taken through a remote Storage cannot be released synchronously; they stay until the next
 * locker finds their PID dead.
 */
function releaseLocalLocksAtExit(): void {
  for (const [key, byDir] of heldLocks) {
    if (key !== 'local') continue;
    for (const [backupDir, lock] of byDir) {
      try {
        releaseLocalLockSync(backupDir, lock.exclusive);
      } catch {
        // Exiting: one unreleasable lock (directory removed, permissions) must not keep the
        // others; a lock left behind names a dead PID and is taken over by the next locker.
      }
    }
  }
  heldLocks.clear();
}

function releaseLocalLockSync(backupDir: string, exclusive: boolean): void {
  const exclusivePath = posix.join(backupDir, EXCLUSIVE_LOCK_FILE);
  if (exclusive) {
    if (parsePid(localSyncFileOps.readText(exclusivePath) ?? '') === process.pid) {
      localSyncFileOps.unlink(exclusivePath);
    }
    return;
  }
  if (!localSyncFileOps.createExclusive(exclusivePath, `${process.pid}\n`, LOCK_FILE_MODE)) return;
  const sharedPath = posix.join(backupDir, SHARED_LOCK_FILE);
  const owners = (localSyncFileOps.readText(sharedPath) ?? '')
    .split('\n')
    .map(parsePid)
    .filter((pid) => pid > 0 && pid !== process.pid && isLocalProcessAlive(pid));
  if (owners.length === 0) localSyncFileOps.unlink(sharedPath);
  else {
    localSyncFileOps.replace(
      sharedPath,
      sharedPath + SHARED_LOCK_TMP_SUFFIX,
      owners.map((pid) => `${pid}\n`).join(''),
      LOCK_FILE_MODE,
    );
  }
  localSyncFileOps.unlink(exclusivePath);
}
