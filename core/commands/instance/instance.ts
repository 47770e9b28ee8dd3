import { BackupCatalog } from '../../catalog/catalog.js';
import {
  effectiveInstanceConfig,
  remoteConfigFields,
  renderShowConfig,
  type InstanceConfig,
} from '../../catalog/instanceConfig.js';
import { StrataError } from '../../errors.js';
import { parseControlFile } from '../../format/pgControl.js';
import type { CommandContext } from '../context.js';

/** `init` (cli-behaviour.md §3.1). */
export async function initCatalog(ctx: CommandContext, backupPath: string): Promise<void> {
  await new BackupCatalog(ctx.storage, backupPath).init();
  ctx.logger.info(`Backup catalog '${backupPath}' successfully initialized`);
}

/**
 * `add-instance` (§3.2): the system identifier and WAL segment size come from PGDATA's
 * pg_control, so later backups and archive-push can check they talk to the same cluster.
 */
export async function addInstance(
  ctx: CommandContext,
  params: {
    backupPath: string;
    instance: string;
    pgdata: string | undefined;
    overrides: InstanceConfig;
  },
): Promise<void> {
  if (!params.pgdata) {
    throw new StrataError(
      'usage',
      'No postgres data directory specified.\nPlease specify it either using environment variable PGDATA or\ncommand line option --pgdata (-D)',
    );
  }
  if (!params.pgdata.startsWith('/')) {
    throw new StrataError('usage', `-D, --pgdata must be an absolute path: ${params.pgdata}`);
  }
  const controlPath = `${params.pgdata}/global/pg_control`;
  const controlBytes = await ctx.storage.readFile(controlPath).catch((error: unknown) => {
    throw new StrataError(
      'io',
      `Could not read "${controlPath}": ${(error as Error).message}; is -D the data directory of a PostgreSQL cluster?`,
    );
  });
  const control = parseControlFile(controlBytes);
  const config: InstanceConfig = { ...params.overrides };
  for (const field of remoteConfigFields) delete config[field];
  config.pgdata = params.pgdata;
  config.systemIdentifier = control.systemIdentifier;
  config.xlogSegSize = control.xlogSegSize;
  await new BackupCatalog(ctx.storage, params.backupPath).addInstance(params.instance, config);
  ctx.logger.info(`Instance '${params.instance}' successfully initialized`);
}

/** `set-config` (§3.4): command-line values merged over the file's, file rewritten atomically. */
export async function setConfig(
  ctx: CommandContext,
  params: { backupPath: string; instance: string; overrides: InstanceConfig },
): Promise<void> {
  const catalog = new BackupCatalog(ctx.storage, params.backupPath);
  await catalog.assertInstanceExists(params.instance);
  const current = await catalog.readInstanceConfig(params.instance);
  await catalog.writeInstanceConfig(params.instance, { ...current, ...params.overrides });
}

/** `show-config` (§3.5): the effective configuration, defaults included. */
export async function showConfig(
  ctx: CommandContext,
  params: { backupPath: string; instance: string; format: 'plain' | 'json'; noScaleUnits: boolean },
): Promise<string> {
  const catalog = new BackupCatalog(ctx.storage, params.backupPath);
  await catalog.assertInstanceExists(params.instance);
  const config = effectiveInstanceConfig(await catalog.readInstanceConfig(params.instance));
  return renderShowConfig(config, params.format, params.noScaleUnits);
}
