import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { DEFAULT_XLOG_SEG_SIZE_BYTES } from '../../catalog/instanceConfig.js';
import type { InstanceConfig } from '../../catalog/instanceConfig.js';
import { isStrataError } from '../../errors.js';
import { formatLsn } from '../../format/lsn.js';
import { walSegmentName } from '../../format/walNames.js';
import { readArchiveTimelines } from '../archiveCatalog/readTimelines.js';
import type { ArchiveTimeline } from '../archiveCatalog/timelines.js';
import type { CommandContext } from '../context.js';
import { formatFixed2, prettySize } from './prettyFormat.js';
import { ProbackupJsonWriter } from './probackupJson.js';
import { parentTimelines, writeBackupJsonObject } from './showJson.js';
import { readTablespaceMap } from './tablespaceMap.js';
import type { TablespaceLink } from './tablespaceMap.js';

export interface ShowArchiveParams {
  backupPath: string;
  instance?: string;
  format: 'plain' | 'json';
}

/** One instance's archive as `show --archive` reports it. */
export interface ArchiveReport {
  instance: string;
  walSegmentSizeBytes: number;
  /** Ascending TLI; timelines without segments are left out of the output. */
  timelines: readonly ArchiveTimeline[];
  /** Every backup of the instance (for the parent TLI of the backup objects), newest first. */
  backups: readonly CatalogBackup[];
  tablespaceMaps?: ReadonlyMap<string, readonly TablespaceLink[]>;
}

const COLUMNS = [
  'TLI',
  'Parent TLI',
  'Switchpoint',
  'Min Segno',
  'Max Segno',
  'N segments',
  'Size',
  'Zratio',
  'N backups',
  'Status',
] as const;

/**
 * Zratio of a timeline: segments × segment size / bytes on disk, computed in single precision as
 * show.c does (a C `float`), 0 when nothing is on disk.
 */
function timelineZratio(timeline: ArchiveTimeline, walSegmentSizeBytes: number): string {
  if (timeline.sizeBytes === 0) return formatFixed2(0);
  const logical = Math.fround(
    Math.fround(walSegmentSizeBytes) * Math.fround(timeline.segmentCount),
  );
  return formatFixed2(Math.fround(logical / Math.fround(timeline.sizeBytes)));
}

function shownTimelines(report: ArchiveReport): ArchiveTimeline[] {
  return report.timelines.filter((timeline) => timeline.segmentCount > 0).reverse();
}

/**
 * `show --archive` plain (cli-behaviour.md §4.5): `ARCHIVE INSTANCE '<name>'`, then a `=`-framed
 * table, every cell left-aligned and padded to its column, newest timeline first.
 */
export function renderArchiveTable(report: ArchiveReport): string {
  const segSize = report.walSegmentSizeBytes;
  const rows = shownTimelines(report).map((timeline) => [
    String(timeline.timelineId),
    String(timeline.parentTimelineId),
    formatLsn(timeline.switchpoint),
    walSegmentName(timeline.timelineId, timeline.beginSegno, segSize),
    walSegmentName(timeline.timelineId, timeline.endSegno, segSize),
    String(timeline.segmentCount),
    prettySize(timeline.sizeBytes),
    timelineZratio(timeline, segSize),
    String(timeline.backups.length),
    timeline.lostSegments.length === 0 ? 'OK' : 'DEGRADED',
  ]);
  const widths = COLUMNS.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => row[i]!.length)),
  );
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => ` ${cell.padEnd(widths[i]!)} `).join('') + '\n';
  const rule = '='.repeat(widths.reduce((sum, width) => sum + width + 2, 0)) + '\n';
  return (
    `\nARCHIVE INSTANCE '${report.instance}'\n` +
    rule +
    line(COLUMNS) +
    rule +
    rows.map(line).join('')
  );
}

function writeTimeline(
  json: ProbackupJsonWriter,
  report: ArchiveReport,
  timeline: ArchiveTimeline,
  parentTli: ReadonlyMap<string, number>,
): void {
  const segSize = report.walSegmentSizeBytes;
  const segmentName = (segno: bigint) => walSegmentName(timeline.timelineId, segno, segSize);
  json.beginObject();
  json.number('tli', timeline.timelineId);
  json.number('parent-tli', timeline.parentTimelineId);
  json.string('switchpoint', formatLsn(timeline.switchpoint));
  json.string('min-segno', segmentName(timeline.beginSegno));
  json.string('max-segno', segmentName(timeline.endSegno));
  json.number('n-segments', timeline.segmentCount);
  json.number('size', timeline.sizeBytes);
  json.raw('zratio', timelineZratio(timeline, segSize));
  json.string('closest-backup-id', timeline.closestBackup?.id ?? '');
  json.string('status', timeline.lostSegments.length === 0 ? 'OK' : 'DEGRADED');
  if (timeline.lostSegments.length === 0) {
    json.raw('lost-segments', '[]');
  } else {
    json.key('lost-segments');
    json.beginArray();
    timeline.lostSegments.forEach((interval, i) => {
      if (i > 0) json.separator();
      json.beginObject();
      json.string('begin-segno', segmentName(interval.beginSegno));
      json.string('end-segno', segmentName(interval.endSegno));
      json.endObject();
    });
    json.endArray();
  }
  if (timeline.backups.length === 0) {
    json.raw('backups', '[]');
  } else {
    json.key('backups');
    json.beginArray();
    timeline.backups.forEach((backup, i) => {
      if (i > 0) json.separator();
      writeBackupJsonObject(
        json,
        backup,
        parentTli.get(backup.id) ?? 0,
        report.tablespaceMaps?.get(backup.id),
      );
    });
    json.endArray();
  }
  json.endObject();
}

/**
 * `show --archive --format=json` (§4.6): `[` one object per instance with its timelines, newest
 * first, each with its lost segments and its backups (§4.4 objects) `]`, in pg_probackup's layout
 * (empty lists printed `[]`, zratio with two decimals).
 */
export function renderArchiveJson(reports: readonly ArchiveReport[]): string {
  const json = new ProbackupJsonWriter();
  json.beginArray();
  reports.forEach((report, i) => {
    if (i > 0) json.separator();
    json.beginObject();
    json.string('instance', report.instance);
    json.key('timelines');
    json.beginArray();
    const parentTli = parentTimelines(report.backups);
    shownTimelines(report).forEach((timeline, j) => {
      if (j > 0) json.separator();
      writeTimeline(json, report, timeline, parentTli);
    });
    json.endArray();
    json.endObject();
  });
  json.endArray();
  return json.toString() + '\n';
}

/** Everything `show --archive` needs of one instance. */
export async function readArchiveReport(
  ctx: CommandContext,
  catalog: BackupCatalog,
  instance: string,
  config: InstanceConfig,
): Promise<ArchiveReport> {
  await catalog.repairInterruptedBackups(instance, ctx.logger, ctx.now);
  const backups = await catalog.listBackups(instance);
  for (const backup of backups) for (const problem of backup.problems) ctx.logger.warning(problem);
  const walSegmentSizeBytes = config.xlogSegSize || DEFAULT_XLOG_SEG_SIZE_BYTES;
  const timelines = await readArchiveTimelines(ctx, {
    catalog,
    instance,
    backups,
    walSegmentSizeBytes,
    walDepth: 0,
    onBadHistory: 'warn',
  });
  const tablespaceMaps = new Map<string, TablespaceLink[]>();
  for (const timeline of timelines) {
    for (const backup of timeline.backups) {
      const links = await readTablespaceMap(ctx.storage, backup.dir);
      if (links !== undefined) tablespaceMaps.set(backup.id, links);
    }
  }
  return { instance, walSegmentSizeBytes, timelines, backups, tablespaceMaps };
}

/**
 * `show [--instance N] --archive` (cli-behaviour.md §4.1, §4.5, §4.6): the WAL archive report of
 * one instance, or of every instance of the catalog; returns the stdout text. Without
 * `--instance`, an instance whose configuration cannot be read is reported in a WARNING and
 * skipped, so one damaged instance does not hide the others.
 */
export async function showArchive(ctx: CommandContext, params: ShowArchiveParams): Promise<string> {
  const catalog = new BackupCatalog(ctx.storage, params.backupPath);
  const reports: ArchiveReport[] = [];
  if (params.instance !== undefined) {
    await catalog.assertInstanceExists(params.instance);
    const config = await catalog.readInstanceConfig(params.instance, {
      onWarning: (message) => ctx.logger.warning(message),
    });
    reports.push(await readArchiveReport(ctx, catalog, params.instance, config));
  } else {
    const names = await catalog.listInstances();
    if (names.length === 0) {
      ctx.logger.warning(
        "This backup catalog contains no backup instances. Backup instance can be added via 'add-instance' command.",
      );
    }
    for (const name of names) {
      let config: InstanceConfig;
      try {
        config = await catalog.readInstanceConfig(name, {
          onWarning: (message) => ctx.logger.warning(message),
        });
      } catch (error) {
        if (!isStrataError(error)) throw error;
        ctx.logger.warning(`Skipping instance '${name}': ${error.message}`);
        continue;
      }
      reports.push(await readArchiveReport(ctx, catalog, name, config));
    }
  }
  if (params.format === 'json') return renderArchiveJson(reports);
  return reports.map(renderArchiveTable).join('');
}
