import { backupIdFromTime, backupIdToTime } from '../../catalog/backupId.js';
import { formatBackupDetail } from '../../catalog/backupControl.js';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import type { BackupMeta } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { renderBackupTable } from './backupTable.js';
import { renderShowJson } from './showJson.js';
import type { ShowJsonInstance } from './showJson.js';
import { readTablespaceMap } from './tablespaceMap.js';
import type { TablespaceLink } from './tablespaceMap.js';

export interface ShowParams {
  backupPath: string;
  instance?: string;
  backupId?: string;
  format: 'plain' | 'json';
}

/**
 * `show -i ID` in plain format (cli-behaviour.md §4.3): the backup's metadata in backup.control
 * syntax with local times and, when the backup has tablespaces, a `tablespace_map = '…'` line.
 */
export function renderBackupDetail(
  backup: BackupMeta,
  tablespaces?: readonly TablespaceLink[],
): string {
  return formatBackupDetail(backup, tablespaces);
}

/**
 * A backup whose process was killed stays RUNNING on disk; showing it as running would be a lie,
 * so show marks it ERROR first when its lock can be taken (its owner is gone), unlike pg_probackup.
 */
async function listInstanceBackups(ctx: CommandContext, catalog: BackupCatalog, instance: string) {
  await catalog.repairInterruptedBackups(instance, ctx.logger, ctx.now);
  const backups = await catalog.listBackups(instance);
  for (const backup of backups) for (const problem of backup.problems) ctx.logger.warning(problem);
  return backups;
}

async function withTablespaceMaps(
  ctx: CommandContext,
  instance: string,
  backups: CatalogBackup[],
): Promise<ShowJsonInstance> {
  const tablespaceMaps = new Map<string, TablespaceLink[]>();
  for (const backup of backups) {
    const links = await readTablespaceMap(ctx.storage, backup.dir);
    if (links !== undefined) tablespaceMaps.set(backup.id, links);
  }
  return { instance, backups, tablespaceMaps };
}

/**
 * The text `show` prints on stdout (cli-behaviour.md §4.1), with the selection rules of
 * pg_probackup: the whole catalog (`BACKUP INSTANCE '<name>'` before each table, or one JSON array
 * of instances), one instance, or one backup (`-i`: the detail view in plain, a one-backup array
 * in JSON). Messages — the empty-catalog WARNING, `Requested backup "<ID>" is not found.`,
 * unreadable backup.control files — go to the logger.
 */
export async function showBackups(ctx: CommandContext, params: ShowParams): Promise<string> {
  const catalog = new BackupCatalog(ctx.storage, params.backupPath);
  const { instance, format } = params;

  if (instance === undefined) {
    if (params.backupId !== undefined) {
      throw new StrataError('usage', 'You must specify --instance to use (-i, --backup-id) option');
    }
    const names = await catalog.listInstances();
    if (names.length === 0) {
      ctx.logger.warning(
        "This backup catalog contains no backup instances. Backup instance can be added via 'add-instance' command.",
      );
    }
    if (format === 'json') {
      const instances: ShowJsonInstance[] = [];
      for (const name of names) {
        instances.push(
          await withTablespaceMaps(ctx, name, await listInstanceBackups(ctx, catalog, name)),
        );
      }
      return renderShowJson(instances);
    }
    let text = '';
    for (const name of names) {
      const backups = await listInstanceBackups(ctx, catalog, name);
      text +=
        `\nBACKUP INSTANCE '${name}'\n` +
        renderBackupTable({ instance: name, backups }, { nowMs: ctx.now() });
    }
    return text;
  }

  await catalog.assertInstanceExists(instance);
  const backups = await listInstanceBackups(ctx, catalog, instance);
  if (params.backupId === undefined) {
    if (format === 'json')
      return renderShowJson([await withTablespaceMaps(ctx, instance, backups)]);
    return renderBackupTable({ instance, backups }, { nowMs: ctx.now() });
  }

  const requestedTime = backupIdToTime(params.backupId);
  const requested = backups.filter((backup) => backup.startTime === requestedTime);
  if (format === 'json')
    return renderShowJson([await withTablespaceMaps(ctx, instance, requested)]);
  const backup = requested[0];
  if (backup === undefined) {
    ctx.logger.info(`Requested backup "${backupIdFromTime(requestedTime)}" is not found.`);
    return '';
  }
  return renderBackupDetail(backup, await readTablespaceMap(ctx.storage, backup.dir));
}
