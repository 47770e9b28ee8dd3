import { posix } from 'node:path';
import type { BackupCatalog, CatalogBackup } from '../../catalog/catalog.js';
import { StrataError, errorText } from '../../errors.js';
import { isHistoryFileName } from '../../format/walNames.js';
import type { DirEntry } from '../../storage/storage.js';
import { storageErrorCode } from '../../storage/storage.js';
import type { CommandContext } from '../context.js';
import { buildArchiveTimelines } from './timelines.js';
import type { ArchiveFileInfo, ArchiveTimeline, BuildTimelinesInput } from './timelines.js';

export interface ReadTimelinesParams {
  catalog: BackupCatalog;
  instance: string;
  /** Backups of the instance, newest first. */
  backups: readonly CatalogBackup[];
  walSegmentSizeBytes: number;
  walDepth: number;
  onBadHistory: BuildTimelinesInput['onBadHistory'];
}

/**
 * Lists `wal/<instance>/` (entries not starting with a dot, with their sizes; pg_probackup's
 * dir_list_file skips hidden files) and reads its timeline history files, then builds the
 * timelines. A missing archive directory is an archive with no files.
 */
export async function readArchiveTimelines(
  ctx: CommandContext,
  params: ReadTimelinesParams,
): Promise<ArchiveTimeline[]> {
  const { storage } = ctx;
  const walDir = params.catalog.walDir(params.instance);
  let entries: DirEntry[];
  try {
    entries = await storage.readDir(walDir);
  } catch (error) {
    if (storageErrorCode(error) !== 'ENOENT') {
      throw new StrataError('io', `Cannot open directory "${walDir}": ${errorText(error)}`, {
        cause: error,
      });
    }
    entries = [];
  }
  const files: ArchiveFileInfo[] = [];
  const histories = new Map<string, string>();
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = posix.join(walDir, entry.name);
    const stat = await storage.stat(path);
    if (!stat) continue;
    files.push({ name: entry.name, sizeBytes: stat.sizeBytes, type: stat.type });
    if (stat.type === 'file' && isHistoryFileName(entry.name)) {
      try {
        histories.set(entry.name, (await storage.readFile(path)).toString('utf8'));
      } catch (error) {
        throw new StrataError('io', `Could not open file "${path}": ${errorText(error)}`, {
          cause: error,
        });
      }
    }
  }
  return buildArchiveTimelines({
    walDir,
    files,
    histories,
    backups: params.backups,
    walSegmentSizeBytes: params.walSegmentSizeBytes,
    walDepth: params.walDepth,
    nowSec: Math.floor(ctx.now() / 1000),
    logger: ctx.logger,
    onBadHistory: params.onBadHistory,
  });
}
