import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StrataError } from '../../errors.js';
import type { CommandContext } from '../context.js';

export interface WaitForArchivedSegmentParams {
  /** The instance's archive, `<catalog>/wal/<instance>`. */
  walDir: string;
  segmentName: string;
  /** `archive-timeout`; 0 means pg_probackup's default of 300 s. */
  timeoutSec: number;
  /**
   * Warn after 30 s that the backup assumes ARCHIVE delivery and suggest `--stream` (an ARCHIVE
   * backup waiting for its start segment); false where that advice does not apply.
   */
  messageHint: boolean;
}

/** pg_probackup's `archive-timeout` default (ARCHIVE_TIMEOUT_DEFAULT), used when 0 is configured. */
const DEFAULT_ARCHIVE_TIMEOUT_SEC = 300;
/** pg_probackup gives the `--stream` hint on its 30th one-second poll (backup.c `wait_wal_lsn`). */
const STREAM_HINT_AFTER_MS = 30_000;
const FIRST_POLL_DELAY_MS = 10;
const MAX_POLL_DELAY_MS = 200;

/**
 * Waits until `<segment>` or `<segment>.gz` exists in the archive, as a backup does for its start
 * segment (cli-behaviour §5.4 step 8); the archive directory itself must exist. Polls with a delay growing from 10 ms to 200 ms: the archive is written by another
 * process (archive_command) and Storage has no change notification.
 */
export async function waitForArchivedSegment(
  ctx: CommandContext,
  params: WaitForArchivedSegmentParams,
): Promise<void> {
  const segmentPath = posix.join(params.walDir, params.segmentName);
  const timeoutSec = params.timeoutSec > 0 ? params.timeoutSec : DEFAULT_ARCHIVE_TIMEOUT_SEC;
  const startMs = ctx.now();
  let delayMs = FIRST_POLL_DELAY_MS;
  let announced = false;
  let hinted = !params.messageHint;
  const walDirStat = await ctx.storage.stat(params.walDir);
  if (walDirStat?.type !== 'directory') {
    const reason = walDirStat ? 'Not a directory' : 'No such file or directory';
    throw new StrataError(
      'wal',
      `WAL archive directory is not accessible "${params.walDir}": ${reason}`,
    );
  }
  ctx.logger.log('LOG', `Looking for segment: ${params.segmentName}`);
  for (;;) {
    if (await isFile(ctx, segmentPath)) {
      ctx.logger.log('LOG', `Found WAL segment: ${segmentPath}`);
      return;
    }
    if (await isFile(ctx, `${segmentPath}.gz`)) {
      ctx.logger.log('LOG', `Found compressed WAL segment: ${segmentPath}`);
      return;
    }
    if (!announced) {
      ctx.logger.info(`Wait for WAL segment ${segmentPath} to be archived`);
      announced = true;
    }
    const waitedMs = ctx.now() - startMs;
    if (!hinted && waitedMs >= STREAM_HINT_AFTER_MS) {
      ctx.logger.warning(
        'By default pg_probackup assumes that WAL delivery method to be ARCHIVE. ' +
          "If continuous archiving is not set up, use '--stream' option to make autonomous backup. " +
          'Otherwise check that continuous archiving works correctly.',
      );
      hinted = true;
    }
    if (waitedMs >= timeoutSec * 1000) {
      throw new StrataError(
        'wal',
        `WAL segment ${params.segmentName} could not be archived in ${timeoutSec} seconds`,
      );
    }
    try {
      await sleep(delayMs, undefined, { signal: ctx.signal });
    } catch (error) {
      if (ctx.signal?.aborted) {
        throw new StrataError('interrupted', 'Interrupted during waiting for WAL archiving', {
          cause: error,
        });
      }
      throw error;
    }
    delayMs = Math.min(delayMs * 2, MAX_POLL_DELAY_MS);
  }
}

async function isFile(ctx: CommandContext, path: string): Promise<boolean> {
  const stat = await ctx.storage.stat(path);
  return stat?.type === 'file';
}
