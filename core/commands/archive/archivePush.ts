import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CompressAlgorithm } from '../../catalog/types.js';
import { StrataError, isStrataError } from '../../errors.js';
import { isWalSegmentName } from '../../format/walNames.js';
import type { Storage, WriteHandle } from '../../storage/storage.js';
import { storageErrorCode } from '../../storage/storage.js';
import type { CommandContext } from '../context.js';
import { prettyTimeInterval } from '../show/prettyFormat.js';
import {
  crc32cOfFile,
  describeIoError,
  isMissingFileError,
  pumpChunks,
  readFileChunks,
} from './archiveFiles.js';
import { readPushInstanceSettings, readSystemIdentifier } from './instanceFacts.js';

export interface ArchivePushParams {
  backupPath: string;
  instance: string;
  /** `%f`. */
  walFileName: string;
  /** `%p`, relative to `cwd` or absolute. */
  walFilePath?: string;
  /** The directory archive_command runs in: PGDATA. */
  cwd: string;
  batchSize: number;
  threads: number;
  overwrite: boolean;
  noReadyRename: boolean;
  noSync: boolean;
  /** From `--compress` / `--compress-algorithm`; the instance config when absent. */
  /** WAL is compressed only with zlib (`.gz`, what pg_probackup's archive-get reads); lz4 and zstd leave it uncompressed. */
  compressAlgorithm?: CompressAlgorithm;
  compressLevel?: number;
  /** How long a `.part` left by another pusher is waited on; the instance config when absent. */
  archiveTimeoutSec?: number;
}

export interface ArchivePushResult {
  pushed: number;
  skipped: number;
}

/** One WAL file of a batch; `done` settles when it is renamed into the archive, skipped or failed. */
interface BatchFile {
  name: string;
  done: Promise<void>;
  markDone: () => void;
  previous: BatchFile | undefined;
}

interface PushOptions {
  walDir: string;
  archiveDir: string;
  archiveStatusDir: string;
  requestedName: string;
  overwrite: boolean;
  noSync: boolean;
  noReadyRename: boolean;
  compressLevel: number | undefined;
  archiveTimeoutSec: number;
}

const FIRST_PART_POLL_MS = 10;
/** pg_probackup polls a foreign `.part` once a second (archive.c `push_file_internal_*`). */
const MAX_PART_POLL_MS = 1000;

/**
 * `archive-push`, run by PostgreSQL as archive_command with PGDATA as the current directory
 * (cli-behaviour §12.1, catalog-format §12.3): copies `%f` (and, in batch mode, further files marked
 * `.ready`) into `<catalog>/wal/<instance>` through an exclusively created `.part` file, compressed to
 * `.gz` for segments when the instance compresses with zlib, skipping files already archived with
 * the same content.
 */
export async function archivePush(
  ctx: CommandContext,
  params: ArchivePushParams,
): Promise<ArchivePushResult> {
  const { storage, logger } = ctx;
  if (!params.walFileName) {
    throw new StrataError('usage', 'Required parameter is not specified: --wal-file-name %f');
  }
  const settings = await readPushInstanceSettings(storage, params.backupPath, params.instance);
  const compressAlgorithm = params.compressAlgorithm ?? settings.compressAlgorithm;
  if (compressAlgorithm === 'pglz') {
    throw new StrataError('usage', 'Cannot use pglz for WAL compression');
  }
  const compressLevel = params.compressLevel ?? settings.compressLevel;
  if (compressLevel < 0 || compressLevel > 9) {
    throw new StrataError('usage', '--compress-level value must be in the range from 0 to 9');
  }
  if (compressAlgorithm === 'zlib' && compressLevel === 0) {
    logger.warning('Compression level 0 will lead to data bloat!');
  }
  const archiveTimeoutSec = params.archiveTimeoutSec ?? settings.archiveTimeoutSec;

  let batchSize = Math.max(1, Math.trunc(params.batchSize));
  let threads = Math.max(1, Math.trunc(params.threads));
  let noReadyRename = params.noReadyRename;
  const location = await locateWalDir(storage, params, settings.pgdata);
  if (location.systemIdSource === undefined) {
    if (batchSize > 1 || threads > 1 || !noReadyRename) {
      logger.warning(
        'Supplied --wal_file_path is outside pgdata, force safe values for options: --batch-size=1 -j 1 --no-ready-rename',
      );
      batchSize = 1;
      threads = 1;
      noReadyRename = true;
    }
  } else {
    const systemId = await readSystemIdentifier(storage, location.systemIdSource);
    if (systemId !== settings.systemIdentifier) {
      throw new StrataError(
        'config',
        `Refuse to push WAL segment ${params.walFileName} into archive. Instance parameters mismatch.` +
          `Instance '${params.instance}' should have SYSTEM_ID = ${settings.systemIdentifier} instead of ${systemId}`,
      );
    }
  }

  const archiveStatusDir = posix.join(location.walDir, 'archive_status');
  const batch = await collectBatch(storage, archiveStatusDir, params.walFileName, batchSize);
  const workerCount = Math.min(threads, batch.length);
  const compress = compressAlgorithm === 'zlib';
  logger.info(
    `pg_probackup archive-push WAL file: ${params.walFileName}, threads: ${workerCount}/${threads}, ` +
      `batch: ${batch.length}/${batchSize}, compression: ${compress ? 'zlib' : 'none'}`,
  );

  const options: PushOptions = {
    walDir: location.walDir,
    archiveDir: posix.join(params.backupPath, 'wal', params.instance),
    archiveStatusDir,
    requestedName: params.walFileName,
    overwrite: params.overwrite,
    noSync: params.noSync,
    noReadyRename,
    compressLevel: compress ? compressLevel : undefined,
    archiveTimeoutSec,
  };
  const startMs = ctx.now();
  const elapsed = () => prettyTimeInterval((ctx.now() - startMs) / 1000);
  let pushed = 0;
  let skipped = 0;

  if (workerCount === 1) {
    for (const file of batch) {
      const outcome = await pushBatchFile(ctx, file, options);
      if (outcome === 'pushed') pushed++;
      else skipped++;
    }
  } else {
    let nextIndex = 0;
    let failedWorkers = 0;
    const worker = async () => {
      for (;;) {
        const file = batch[nextIndex++];
        if (!file) return;
        const outcome = await pushBatchFile(ctx, file, options);
        if (outcome === 'pushed') pushed++;
        else skipped++;
      }
    };
    const results = await Promise.allSettled(Array.from({ length: workerCount }, worker));
    for (const result of results) {
      if (result.status === 'fulfilled') continue;
      failedWorkers++;
      logger.log('ERROR', errorMessageOf(result.reason));
    }
    if (failedWorkers > 0) {
      throw new StrataError(
        'wal',
        `pg_probackup archive-push failed, pushed: ${pushed}, skipped: ${skipped}, failed: ${failedWorkers}, time elapsed: ${elapsed()}`,
      );
    }
  }
  logger.info(
    `pg_probackup archive-push completed successfully, pushed: ${pushed}, skipped: ${skipped}, time elapsed: ${elapsed()}`,
  );
  return { pushed, skipped };
}

function errorMessageOf(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

interface WalDirLocation {
  /** The directory the WAL files are read from (and whose `archive_status` is renamed in). */
  walDir: string;
  /** The data directory whose pg_control names the pushing cluster; undefined = no check possible. */
  systemIdSource: string | undefined;
}

/** The four cases of cli-behaviour §12.1 for finding `pg_wal` and the pg_control to check. */
async function locateWalDir(
  storage: Storage,
  params: ArchivePushParams,
  configPgdata: string,
): Promise<WalDirLocation> {
  if (params.walFilePath === undefined) {
    return { walDir: posix.join(params.cwd, 'pg_wal'), systemIdSource: params.cwd };
  }
  const givenDir = posix.resolve(
    params.cwd,
    stripTrailingFileName(params.walFilePath, params.walFileName),
  );
  const configWalDir = posix.join(configPgdata, 'pg_wal');
  if (await isSameDirectory(storage, givenDir, configWalDir)) {
    return { walDir: configWalDir, systemIdSource: configPgdata };
  }
  const cwdControl = await storage.stat(posix.join(params.cwd, 'global', 'pg_control'));
  return { walDir: givenDir, systemIdSource: cwdControl ? params.cwd : undefined };
}

/** `%p` without a trailing `%f` (pg_probackup's `pgut_str_strip_trailing_filename`). */
function stripTrailingFileName(walFilePath: string, walFileName: string): string {
  return walFilePath.endsWith(walFileName)
    ? walFilePath.slice(0, walFilePath.length - walFileName.length)
    : walFilePath;
}

/** Both paths name the same directory once symlinks are resolved (pg_wal may be a symlink). */
async function isSameDirectory(storage: Storage, a: string, b: string): Promise<boolean> {
  try {
    return (await storage.realPath(a)) === (await storage.realPath(b));
  } catch (error) {
    if (isMissingFileError(error)) return false;
    throw error;
  }
}

/**
 * The requested file first, then (batch > 1) names marked `<name>.ready` in `archive_status`, in name
 * order, up to the batch size; the batch is pushed and renamed into the archive in name order.
 * pg_probackup takes the name up to the first dot and requires the rest to be exactly `.ready`,
 * so only dot-free names (segments) join a batch.
 */
async function collectBatch(
  storage: Storage,
  archiveStatusDir: string,
  requestedName: string,
  batchSize: number,
): Promise<BatchFile[]> {
  const names = [requestedName];
  if (batchSize > 1) {
    for (const entry of await storage.readDir(archiveStatusDir)) {
      const dot = entry.name.indexOf('.');
      if (dot <= 0 || entry.name.slice(dot) !== '.ready') continue;
      const name = entry.name.slice(0, dot);
      if (name === requestedName) continue;
      names.push(name);
      if (names.length >= batchSize) break;
    }
    names.sort();
  }
  const files: BatchFile[] = [];
  for (const name of names) {
    let markDone = () => {};
    const done = new Promise<void>((resolve) => {
      markDone = resolve;
    });
    files.push({ name, done, markDone, previous: files[files.length - 1] });
  }
  return files;
}

/** Pushes one file of the batch, then (not for the requested file) renames its `.ready` to `.done`. */
async function pushBatchFile(
  ctx: CommandContext,
  file: BatchFile,
  options: PushOptions,
): Promise<'pushed' | 'skipped'> {
  ctx.logger.log('LOG', `pushing file "${file.name}"`);
  let outcome: 'pushed' | 'skipped';
  try {
    outcome = await pushWalFile(ctx, file, options);
  } finally {
    file.markDone();
  }
  if (!options.noReadyRename && file.name !== options.requestedName) {
    const ready = posix.join(options.archiveStatusDir, `${file.name}.ready`);
    const done = posix.join(options.archiveStatusDir, `${file.name}.done`);
    ctx.logger.log('LOG', `Rename "${ready}" to "${done}"`);
    try {
      await ctx.storage.rename(ready, done);
    } catch (error) {
      ctx.logger.warning(
        `Cannot rename ready file "${ready}" to "${done}": ${describeIoError(error)}`,
      );
    }
  }
  return outcome;
}

/**
 * Copies one WAL file into the archive (catalog-format §12.3): claim `<dest>.part` with O_EXCL, skip
 * or refuse when `<dest>` exists (CRC-32C of the content, decompressed for `.gz`), copy (gzip for
 * segments when compressing), fsync, wait for the previous file of the batch, rename.
 */
async function pushWalFile(
  ctx: CommandContext,
  file: BatchFile,
  options: PushOptions,
): Promise<'pushed' | 'skipped'> {
  const { storage, logger } = ctx;
  const compress = options.compressLevel !== undefined && isWalSegmentName(file.name);
  const sourcePath = posix.join(options.walDir, file.name);
  const destination = posix.join(options.archiveDir, compress ? `${file.name}.gz` : file.name);
  const partPath = `${destination}.part`;

  const sourceStat = await storage.stat(sourcePath);
  if (!sourceStat) {
    throw new StrataError(
      'io',
      `Cannot open source ${compress ? 'WAL ' : ''}file "${sourcePath}": No such file or directory`,
    );
  }

  const part = await claimPartFile(ctx, partPath, options.archiveTimeoutSec);
  let partOpen = true;
  const abandonPart = async () => {
    if (partOpen) await part.close().catch(() => undefined);
    partOpen = false;
    await storage.unlink(partPath).catch(() => undefined);
  };
  try {
    logger.log('LOG', `Temp WAL file successfully created: "${partPath}"`);
    if (await storage.stat(destination)) {
      const sourceCrc = await crc32cOfFile(storage, sourcePath, false);
      const archivedCrc = await crc32cOfFile(storage, destination, compress);
      if (sourceCrc === archivedCrc) {
        logger.log(
          'LOG',
          `WAL file already exists in archive with the same checksum, skip pushing: "${sourcePath}"`,
        );
        await abandonPart();
        return 'skipped';
      }
      if (!options.overwrite) {
        throw new StrataError(
          'wal',
          `WAL file already exists in archive with different checksum: "${destination}"`,
        );
      }
      logger.log(
        'LOG',
        `WAL file already exists in archive with different checksum, overwriting: "${destination}"`,
      );
    }

    await copyIntoPart(storage, sourcePath, part, partPath, options.compressLevel, compress);
    if (!options.noSync) await syncPart(part, partPath);
    partOpen = false;
    await part.close();
    await waitForPrevious(ctx, file);
    logger.log('LOG', `Rename "${partPath}" to "${destination}"`);
    try {
      await storage.rename(partPath, destination);
    } catch (error) {
      throw new StrataError(
        'io',
        `Cannot rename file "${partPath}" to "${destination}": ${describeIoError(error)}`,
        { cause: error },
      );
    }
    if (!options.noSync) await storage.syncDir(options.archiveDir);
    return 'pushed';
  } catch (error) {
    await abandonPart();
    throw error;
  }
}

async function copyIntoPart(
  storage: Storage,
  sourcePath: string,
  part: WriteHandle,
  partPath: string,
  compressLevel: number | undefined,
  compress: boolean,
): Promise<void> {
  const sourceChunks = async function* () {
    try {
      yield* readFileChunks(storage, sourcePath);
    } catch (error) {
      throw new StrataError(
        'io',
        `Cannot read source file "${sourcePath}": ${describeIoError(error)}`,
        { cause: error },
      );
    }
  };
  try {
    await pumpChunks(
      sourceChunks(),
      compress && compressLevel !== undefined
        ? { kind: 'gzip', level: compressLevel }
        : { kind: 'plain' },
      (chunk) => part.write(chunk),
    );
  } catch (error) {
    if (isStrataError(error)) throw error;
    const what = compress ? 'compressed temp WAL file' : 'destination temp file';
    throw new StrataError(
      'io',
      `Cannot write to ${what} "${partPath}": ${describeIoError(error)}`,
      {
        cause: error,
      },
    );
  }
}

async function syncPart(part: WriteHandle, partPath: string): Promise<void> {
  try {
    await part.sync();
  } catch (error) {
    throw new StrataError('io', `Failed to sync file "${partPath}": ${describeIoError(error)}`, {
      cause: error,
    });
  }
}

/** Files of a batch enter the archive in name order: a file is renamed after its predecessor settles. */
async function waitForPrevious(ctx: CommandContext, file: BatchFile): Promise<void> {
  if (!file.previous) return;
  const signal = ctx.signal;
  if (!signal) {
    await file.previous.done;
    return;
  }
  if (signal.aborted)
    throw new StrataError('interrupted', 'Terminated while waiting for prev file');
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () =>
      reject(new StrataError('interrupted', 'Terminated while waiting for prev file'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([file.previous.done, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Creates `<dest>.part` with O_CREAT|O_EXCL, the lock between concurrent pushers of one file. A
 * `.part` that already exists is watched for `archive-timeout` seconds: if it goes away it is
 * claimed; if it never grew it is a dead pusher's leftover and is replaced; if it grew, another
 * pusher is alive and this push fails.
 */
async function claimPartFile(
  ctx: CommandContext,
  partPath: string,
  archiveTimeoutSec: number,
): Promise<WriteHandle> {
  const { storage, logger } = ctx;
  const created = await createExclusive(storage, partPath, 'Failed to open temp WAL file');
  if (created) return created;

  const startMs = ctx.now();
  let firstSizeBytes: number | undefined;
  let grew = false;
  let delayMs = FIRST_PART_POLL_MS;
  while (ctx.now() - startMs < archiveTimeoutSec * 1000) {
    const stat = await storage.stat(partPath);
    if (!stat) {
      const claimed = await createExclusive(storage, partPath, 'Failed to open temp WAL file');
      if (claimed) return claimed;
      continue;
    }
    if (firstSizeBytes === undefined) {
      logger.log(
        'LOG',
        `Temp WAL file already exists, waiting on it ${archiveTimeoutSec} seconds: "${partPath}"`,
      );
      firstSizeBytes = stat.sizeBytes;
    }
    if (stat.sizeBytes > firstSizeBytes) grew = true;
    await pause(ctx, delayMs);
    delayMs = Math.min(delayMs * 2, MAX_PART_POLL_MS);
  }
  if (grew) {
    throw new StrataError(
      'wal',
      `Failed to open temp WAL file "${partPath}" in ${archiveTimeoutSec} seconds`,
    );
  }
  logger.log('LOG', `Reusing stale temp WAL file "${partPath}"`);
  await storage.unlink(partPath).catch((error: unknown) => {
    if (!isMissingFileError(error)) throw error;
  });
  const reclaimed = await createExclusive(storage, partPath, 'Cannot open temp WAL file');
  if (!reclaimed) {
    throw new StrataError('wal', `Cannot open temp WAL file "${partPath}": File exists`);
  }
  return reclaimed;
}

/** The new file's handle, or undefined when the file already exists. */
async function createExclusive(
  storage: Storage,
  path: string,
  failure: string,
): Promise<WriteHandle | undefined> {
  try {
    return await storage.openWrite(path, { exclusive: true, mode: 0o600 });
  } catch (error) {
    if (storageErrorCode(error) === 'EEXIST') return undefined;
    throw new StrataError('io', `${failure} "${path}": ${describeIoError(error)}`, {
      cause: error,
    });
  }
}

async function pause(ctx: CommandContext, delayMs: number): Promise<void> {
  try {
    await sleep(delayMs, undefined, { signal: ctx.signal });
  } catch (error) {
    if (ctx.signal?.aborted) {
      throw new StrataError('interrupted', 'interrupted', { cause: error });
    }
    throw error;
  }
}
