import { posix } from 'node:path';
import { StrataError } from '../../errors.js';
import { parseWalSegmentName, walSegmentName } from '../../format/walNames.js';
import type { ReadHandle, WriteHandle } from '../../storage/storage.js';
import type { CommandContext } from '../context.js';
import { prettyTimeInterval } from '../show/prettyFormat.js';
import type { ArchivedWalCandidate } from './archiveFiles.js';
import {
  archivedWalCandidates,
  describeIoError,
  isMissingFileError,
  pumpChunks,
  readHandleChunks,
} from './archiveFiles.js';
import { readWalSegmentSize } from './instanceFacts.js';
import { prefetchedSegmentProblem } from './prefetchValidation.js';

export interface ArchiveGetParams {
  backupPath: string;
  instance: string;
  /** `%f`. */
  walFileName: string;
  /** `%p`, relative to `cwd` (PGDATA) or absolute. */
  walFilePath: string;
  /** The directory restore_command runs in: PGDATA. */
  cwd: string;
  batchSize: number;
  threads: number;
  /** Default `<cwd>/pg_wal/pbk_prefetch`. */
  prefetchDir?: string;
  noValidateWal: boolean;
}

/**
 * PostgreSQL takes a failed restore_command as "no such file" and may end recovery on it, so a
 * failed copy is retried before giving up (archive.c `do_archive_get`).
 */
const DIRECT_COPY_ATTEMPTS = 3;

/** What one archive-get run works with. */
interface GetRun {
  ctx: CommandContext;
  archiveDir: string;
  walSegmentSizeBytes: number;
}

/**
 * `archive-get`, run by PostgreSQL as restore_command with PGDATA as the current directory
 * (cli-behaviour §12.2, catalog-format §12.4). It never reads pg_probackup.conf: the segment size
 * comes from `<cwd>/global/pg_control`. Delivers `%f` to `%p` from the prefetch directory when
 * batching, else straight from the archive; throws a StrataError when the file cannot be delivered,
 * which the CLI turns into exit status 1.
 */
export async function archiveGet(ctx: CommandContext, params: ArchiveGetParams): Promise<void> {
  const { storage, logger } = ctx;
  if (!params.walFileName) {
    throw new StrataError('usage', 'Required parameter not specified: --wal-file-name %f');
  }
  if (!params.walFilePath) {
    throw new StrataError('usage', 'Required parameter not specified: --wal_file_path %p');
  }
  const name = params.walFileName;
  const destination = posix.resolve(params.cwd, params.walFilePath);
  const archiveDir = posix.join(params.backupPath, 'wal', params.instance);
  const batchSize = Math.max(1, Math.trunc(params.batchSize));
  const threads = Math.max(1, Math.trunc(params.threads));
  const workerCount = Math.min(threads, batchSize);

  const startMs = ctx.now();
  const elapsed = () => prettyTimeInterval((ctx.now() - startMs) / 1000);
  const remote = storage.kind === 'ssh' ? 'ssh' : 'none';
  logger.info(
    `pg_probackup archive-get WAL file: ${name}, remote: ${remote}, threads: ${workerCount}/${threads}, batch: ${batchSize}`,
  );
  logger.log('VERBOSE', 'Obtaining XLOG_SEG_SIZE from pg_control file');
  const run: GetRun = {
    ctx,
    archiveDir,
    walSegmentSizeBytes: await readWalSegmentSize(storage, params.cwd),
  };

  let fetched = 0;
  const requested = parseWalSegmentName(name, run.walSegmentSizeBytes);
  if (requested && batchSize > 1) {
    const segment: PrefetchSegment = {
      ...requested,
      name,
      prefetchDir: params.prefetchDir ?? posix.join(params.cwd, 'pg_wal', 'pbk_prefetch'),
    };
    const served = await serveFromPrefetch(
      run,
      segment,
      destination,
      batchSize,
      workerCount,
      !params.noValidateWal,
    );
    if (served.delivered) {
      logger.info(
        `pg_probackup archive-get completed successfully, fetched: ${served.fetched}/${batchSize}, time elapsed: ${elapsed()}`,
      );
      return;
    }
    fetched = served.fetched;
  }

  let delivered = false;
  for (let attempt = 1; attempt <= DIRECT_COPY_ATTEMPTS && !delivered; attempt++) {
    delivered = await getWalFile(run, name, destination, false);
    if (delivered) {
      logger.log('LOG', `pg_probackup archive-get copied WAL file ${name}`);
      fetched++;
    } else {
      logger.log('LOG', `Failed to get WAL file ${name}, retry ${attempt}/${DIRECT_COPY_ATTEMPTS}`);
    }
  }
  if (!delivered) {
    throw new StrataError(
      'wal',
      `pg_probackup archive-get failed to deliver WAL file: ${name}, time elapsed: ${elapsed()}`,
    );
  }
  logger.info(
    `pg_probackup archive-get completed successfully, fetched: ${fetched}/${batchSize}, time elapsed: ${elapsed()}`,
  );
}

/**
 * The prefetch path of cli-behaviour §12.2. A segment already prefetched is used only once the
 * next one is there too (a record may continue into it); otherwise `batch-size` segments from the
 * requested one are copied into the prefetch directory first. `delivered` false sends the caller
 * to a direct copy.
 */
async function serveFromPrefetch(
  run: GetRun,
  segment: PrefetchSegment,
  destination: string,
  batchSize: number,
  workerCount: number,
  validate: boolean,
): Promise<{ delivered: boolean; fetched: number }> {
  const { storage, logger } = run.ctx;
  const { segno, name, prefetchDir } = segment;
  let fetched = 0;

  if (await storage.stat(posix.join(prefetchDir, name))) {
    if (!(await nextSegmentPrefetched(run, segment))) {
      fetched = await runPrefetch(run, segment, segno + 1n, batchSize, workerCount);
    }
    const inPrefetch = await maintainPrefetch(run, prefetchDir, segno);
    if (await moveFromPrefetch(run, segment, destination, validate)) {
      logger.info(
        `pg_probackup archive-get used prefetched WAL segment ${name}, prefetch state: ${inPrefetch - 1}/${batchSize}`,
      );
      return { delivered: true, fetched };
    }
    await emptyDirectory(run, prefetchDir);
    return { delivered: false, fetched };
  }

  try {
    await storage.mkdir(prefetchDir, { recursive: true });
  } catch (error) {
    logger.log(
      'LOG',
      `Cannot create prefetch directory "${prefetchDir}": ${describeIoError(error)}`,
    );
  }
  fetched = await runPrefetch(run, segment, segno, batchSize, workerCount);
  const inPrefetch = await maintainPrefetch(run, prefetchDir, segno);
  if (await moveFromPrefetch(run, segment, destination, validate)) {
    logger.info(
      `pg_probackup archive-get copied WAL file ${name}, prefetch state: ${inPrefetch - 1}/${batchSize}`,
    );
    return { delivered: true, fetched };
  }
  return { delivered: false, fetched };
}

interface PrefetchSegment {
  timelineId: number;
  segno: bigint;
  name: string;
  prefetchDir: string;
}

async function nextSegmentPrefetched(run: GetRun, segment: PrefetchSegment): Promise<boolean> {
  const next = walSegmentName(segment.timelineId, segment.segno + 1n, run.walSegmentSizeBytes);
  return (await run.ctx.storage.stat(posix.join(segment.prefetchDir, next))) !== null;
}

/**
 * Copies segments `firstSegno … firstSegno + batchSize − 1` of the timeline into the prefetch
 * directory (full segments only, decompressed), `workerCount` at a time, stopping at the first one
 * the archive does not have yet. Returns how many were copied.
 */
async function runPrefetch(
  run: GetRun,
  segment: PrefetchSegment,
  firstSegno: bigint,
  batchSize: number,
  workerCount: number,
): Promise<number> {
  const names: string[] = [];
  for (let offset = 0n; offset < BigInt(batchSize); offset++) {
    names.push(walSegmentName(segment.timelineId, firstSegno + offset, run.walSegmentSizeBytes));
  }
  let nextIndex = 0;
  let stopped = false;
  let fetched = 0;
  const worker = async () => {
    while (!stopped) {
      const name = names[nextIndex++];
      if (name === undefined) return;
      if (!(await getWalFile(run, name, posix.join(segment.prefetchDir, name), true))) {
        run.ctx.logger.log('LOG', `Failed to prefetch WAL segment ${name}`);
        stopped = true;
        return;
      }
      fetched++;
    }
  };
  await Promise.all(Array.from({ length: workerCount }, worker));
  return fetched;
}

/**
 * Drops prefetched files that can no longer be asked for: anything that is not a segment name and
 * segments before the requested one. Returns how many files remain.
 */
async function maintainPrefetch(
  run: GetRun,
  prefetchDir: string,
  firstSegno: bigint,
): Promise<number> {
  const { storage, logger } = run.ctx;
  let entries;
  try {
    entries = await storage.readDir(prefetchDir);
  } catch (error) {
    if (!isMissingFileError(error)) {
      logger.warning(`Cannot open directory "${prefetchDir}": ${describeIoError(error)}`);
    }
    return 0;
  }
  let kept = 0;
  for (const entry of entries) {
    const parsed = parseWalSegmentName(entry.name, run.walSegmentSizeBytes);
    if (parsed && parsed.segno >= firstSegno) {
      kept++;
      continue;
    }
    await storage.removeTree(posix.join(prefetchDir, entry.name));
  }
  return kept;
}

/** Removes what the prefetch directory holds, keeping the directory. */
async function emptyDirectory(run: GetRun, dir: string): Promise<void> {
  const { storage } = run.ctx;
  let entries;
  try {
    entries = await storage.readDir(dir);
  } catch (error) {
    if (isMissingFileError(error)) return;
    throw error;
  }
  for (const entry of entries) await storage.removeTree(posix.join(dir, entry.name));
}

/**
 * Renames the prefetched segment onto `%p` when it can be trusted: with validation on, the next
 * segment must be prefetched too and the segment's records must parse; an invalid one is deleted.
 */
async function moveFromPrefetch(
  run: GetRun,
  segment: PrefetchSegment,
  destination: string,
  validate: boolean,
): Promise<boolean> {
  const { storage, logger } = run.ctx;
  const prefetched = posix.join(segment.prefetchDir, segment.name);
  if (!(await storage.stat(prefetched))) return false;
  if (validate) {
    if (!(await nextSegmentPrefetched(run, segment))) return false;
    const problem = await prefetchedSegmentProblem(
      storage,
      segment.prefetchDir,
      segment.timelineId,
      segment.segno,
      run.walSegmentSizeBytes,
    );
    if (problem !== null) {
      logger.log('LOG', `WAL in prefetched segment ${segment.name} does not parse: ${problem}`);
      logger.log('LOG', `Prefetched WAL segment ${segment.name} is invalid, cannot use it`);
      await storage.unlink(prefetched).catch(() => undefined);
      return false;
    }
  }
  try {
    await storage.rename(prefetched, destination);
    return true;
  } catch (error) {
    logger.warning(
      `Cannot rename file '${prefetched}' to '${destination}': ${describeIoError(error)}`,
    );
    await storage.unlink(prefetched).catch(() => undefined);
    return false;
  }
}

/**
 * Copies one WAL file from the archive to `toPath`, written directly (created or truncated, mode
 * 0600) and removed again on failure. In prefetch mode only full segments are looked for; otherwise
 * a `.partial` source is taken last and the copy zero-extended to the segment size, as
 * pg_receivewal's partial files are shorter than a segment.
 */
async function getWalFile(
  run: GetRun,
  name: string,
  toPath: string,
  prefetchMode: boolean,
): Promise<boolean> {
  const { storage, logger } = run.ctx;
  let out: WriteHandle;
  try {
    out = await storage.openWrite(toPath, { truncate: true, mode: 0o600 });
  } catch (error) {
    logger.warning(`Failed to open file '${toPath}': ${describeIoError(error)}`);
    return false;
  }
  const discard = async () => {
    await out.close().catch(() => undefined);
    await storage.unlink(toPath).catch(() => undefined);
  };
  try {
    await storage.chmod(toPath, 0o600);
  } catch (error) {
    logger.warning(`Cannot change mode of file '${toPath}': ${describeIoError(error)}`);
    await discard();
    return false;
  }

  let outcome: CopyOutcome = 'missing';
  let source: ArchivedWalCandidate | undefined;
  for (const candidate of archivedWalCandidates(run.archiveDir, name, !prefetchMode)) {
    outcome = await copyCandidate(run, candidate, out, toPath);
    source = candidate;
    if (outcome !== 'missing') break;
  }
  if (outcome === 'missing' && !prefetchMode)
    logger.log('LOG', `Target WAL file is missing: ${name}`);
  if (outcome !== 'copied') {
    await discard();
    return false;
  }
  if (source?.partial) {
    try {
      await out.truncate(run.walSegmentSizeBytes);
    } catch (error) {
      logger.warning(`Cannot extend file "${toPath}": ${describeIoError(error)}`);
      await discard();
      return false;
    }
  }
  try {
    await out.close();
  } catch (error) {
    logger.warning(`Cannot close file '${toPath}': ${describeIoError(error)}`);
    await storage.unlink(toPath).catch(() => undefined);
    return false;
  }
  logger.log('LOG', `WAL file successfully ${prefetchMode ? 'prefetched' : 'copied'}: ${name}`);
  return true;
}

type CopyOutcome = 'copied' | 'missing' | 'failed';

/** Copies one candidate file of the archive (gunzipped when `.gz`) into `out`. */
async function copyCandidate(
  run: GetRun,
  candidate: ArchivedWalCandidate,
  out: WriteHandle,
  toPath: string,
): Promise<CopyOutcome> {
  const { storage, logger } = run.ctx;
  logger.log(
    'LOG',
    `Attempting to ${candidate.gzipped ? 'open compressed' : 'open'} WAL file '${candidate.path}'`,
  );
  let input: ReadHandle;
  try {
    input = await storage.openRead(candidate.path);
  } catch (error) {
    if (isMissingFileError(error)) return 'missing';
    logger.warning(
      `Cannot open ${candidate.gzipped ? 'compressed' : 'source'} WAL file "${candidate.path}": ${describeIoError(error)}`,
    );
    return 'failed';
  }
  let writeError: unknown;
  try {
    await pumpChunks(
      readHandleChunks(input),
      candidate.gzipped ? { kind: 'gunzip' } : { kind: 'plain' },
      async (chunk) => {
        try {
          await out.write(chunk);
        } catch (error) {
          writeError = error;
          throw error;
        }
      },
    );
    return 'copied';
  } catch (error) {
    if (writeError !== undefined) {
      logger.warning(`Cannot write to WAL file '${toPath}': ${describeIoError(writeError)}`);
    } else {
      logger.warning(
        `Cannot read ${candidate.gzipped ? 'compressed' : 'source'} WAL file "${candidate.path}": ${describeIoError(error)}`,
      );
    }
    return 'failed';
  } finally {
    await input.close().catch(() => undefined);
  }
}
