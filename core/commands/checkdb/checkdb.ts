import pLimit from 'p-limit';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { InstanceConfig } from '../../catalog/instanceConfig.js';
import { StrataError } from '../../errors.js';
import { BLCKSZ } from '../../format/page.js';
import { parseControlFile, type ControlFile } from '../../format/pgControl.js';
import { connectPostgres, type ConnectionOptions } from '../../postgres/connection.js';
import { checkServerForBackup, readServerFacts } from '../../postgres/serverFacts.js';
import { listPgdata } from '../backup/pgdataWalk.js';
import { postmasterState } from '../catchup/postmasterPid.js';
import type { CommandContext } from '../context.js';
import { amcheckInstance, type AmcheckSummary } from './amcheck.js';
import { checkRelationFile, type CorruptBlock } from './blockValidation.js';

export interface CheckdbParams {
  /** `-B`: with `--instance`, the instance's pg_probackup.conf supplies PGDATA and connection options. */
  backupPath?: string;
  instance?: string;
  /** `-D`; required unless `--skip-block-validation`. */
  pgdata?: string;
  connection: ConnectionOptions;
  amcheck: boolean;
  heapallindexed: boolean;
  checkunique: boolean;
  skipBlockValidation: boolean;
  threads: number;
  progress: boolean;
}

export interface BlockValidationSummary {
  checkedFiles: number;
  checkedBlocks: number;
  corruptBlocks: CorruptBlock[];
  /** True when the server was not running and PGDATA was checked without a connection. */
  offline: boolean;
}

export interface CheckdbResult {
  blockValidation?: BlockValidationSummary;
  amcheck?: AmcheckSummary;
}

function checkOptionConsistency(params: CheckdbParams): void {
  if (!params.amcheck) {
    if (params.heapallindexed)
      throw new StrataError('usage', '--heapallindexed can only be used with --amcheck option');
    if (params.checkunique)
      throw new StrataError('usage', '--checkunique can only be used with --amcheck option');
  }
  if (
    params.backupPath !== undefined &&
    params.instance === undefined &&
    params.pgdata === undefined
  ) {
    throw new StrataError('usage', 'Required parameter not specified: --instance');
  }
}

/** Command-line values first, then the instance's pg_probackup.conf, which checkdb may lack (cli §1.4). */
async function withInstanceConfig(
  ctx: CommandContext,
  params: CheckdbParams,
): Promise<CheckdbParams> {
  if (params.backupPath === undefined || params.instance === undefined) return params;
  const catalog = new BackupCatalog(ctx.storage, params.backupPath);
  await catalog.assertInstanceExists(params.instance);
  const configPath = catalog.instanceConfigPath(params.instance);
  if (!(await ctx.storage.stat(configPath))) return params;
  const config: InstanceConfig = await catalog.readInstanceConfig(params.instance, {
    onWarning: (message) => ctx.logger.warning(message),
  });
  const connection: ConnectionOptions = { ...params.connection };
  connection.pghost ??= config.pghost;
  connection.pgport ??= config.pgport;
  connection.pguser ??= config.pguser;
  connection.pgdatabase ??= config.pgdatabase;
  const pgdata = params.pgdata ?? config.pgdata;
  return { ...params, connection, ...(pgdata !== undefined ? { pgdata } : {}) };
}

/**
 * Whether data checksums are on, from the running server (after pg_probackup's server checks and
 * the system identifier check), or from pg_control when no server runs on PGDATA: a stopped
 * cluster is checked as well, which pg_probackup cannot do.
 */
async function checksumsOfCluster(
  ctx: CommandContext,
  pgdata: string,
  control: ControlFile,
  connection: ConnectionOptions,
): Promise<{ checksumsEnabled: boolean; offline: boolean }> {
  const state = await postmasterState(ctx.storage, pgdata);
  if (state.kind === 'stopped') {
    if (control.blcksz !== BLCKSZ) {
      throw new StrataError(
        'postgres',
        `block_size(${control.blcksz}) is not compatible(${BLCKSZ} expected)`,
      );
    }
    const checksumsEnabled = control.dataChecksumVersion !== 0;
    ctx.logger.info(
      `PostgreSQL is not running on "${pgdata}": checking data files without a connection, ` +
        `data checksums are ${checksumsEnabled ? 'on' : 'off'} according to global/pg_control`,
    );
    return { checksumsEnabled, offline: true };
  }
  const session = await connectPostgres(connection, ctx.logger);
  try {
    const facts = await readServerFacts(session);
    checkServerForBackup(facts, { logger: ctx.logger });
    if (control.systemIdentifier !== facts.systemIdentifier) {
      throw new StrataError(
        'postgres',
        `Data directory initialized with system id ${control.systemIdentifier}, but connected instance system id is ${facts.systemIdentifier}`,
      );
    }
    return { checksumsEnabled: facts.dataChecksums, offline: false };
  } finally {
    await session.close();
  }
}

/**
 * Block validation (cli-behaviour.md §10): every main-fork relation segment of PGDATA, listed
 * with the backup's exclusions, is read page by page with the backup's checks; corrupt pages
 * are WARNINGs and the check goes on; any corruption ends in `Checkdb failed`.
 */
async function validateBlocks(
  ctx: CommandContext,
  params: CheckdbParams,
): Promise<BlockValidationSummary> {
  const { storage, logger } = ctx;
  const pgdata = params.pgdata;
  if (pgdata === undefined) {
    throw new StrataError('usage', 'Required parameter not specified: PGDATA (-D, --pgdata)');
  }
  const control = parseControlFile(await storage.readFile(`${pgdata}/global/pg_control`));
  const { checksumsEnabled, offline } = await checksumsOfCluster(
    ctx,
    pgdata,
    control,
    params.connection,
  );
  const files = (
    await listPgdata(storage, pgdata, {
      tablespaceVersionDir: `PG_${control.major}_${control.catalogVersionNo}`,
      backupPgLog: false,
      logger,
    })
  )
    .filter((entry) => entry.type === 'file' && entry.isDatafile)
    .sort((a, b) => a.sizeBytes - b.sizeBytes);

  logger.info('Start checking data files');
  const limit = pLimit(Math.max(1, params.threads));
  const summary: BlockValidationSummary = {
    checkedFiles: 0,
    checkedBlocks: 0,
    corruptBlocks: [],
    offline,
  };
  let unreadable = false;
  await Promise.all(
    files.map((file, index) =>
      limit(async () => {
        if (ctx.signal?.aborted) throw new StrataError('interrupted', 'Interrupted during checkdb');
        logger.log('VERBOSE', `Checking file:  "${file.absolutePath}" `);
        if (params.progress)
          logger.info(
            `Progress: (${index + 1}/${files.length}). Process file "${file.absolutePath}"`,
          );
        const result = await checkRelationFile(
          storage,
          { absolutePath: file.absolutePath, segno: file.segno ?? 0, sizeBytes: file.sizeBytes },
          checksumsEnabled,
          logger,
        );
        summary.checkedFiles++;
        summary.checkedBlocks += result.blocksChecked;
        summary.corruptBlocks.push(...result.corruptBlocks);
        if (!result.readable) unreadable = true;
      }),
    ),
  );
  if (summary.corruptBlocks.length > 0 || unreadable)
    throw new StrataError('corrupt', 'Checkdb failed');
  logger.info('Data files are valid');
  return summary;
}

/**
 * `checkdb` (cli-behaviour.md §10): block validation of PGDATA unless --skip-block-validation,
 * then, with --amcheck, bt_index_check of every btree index in every database with amcheck.
 * Problems end in pg_probackup's ERROR messages (thrown); the result says what was checked.
 */
export async function runCheckdb(
  ctx: CommandContext,
  params: CheckdbParams,
): Promise<CheckdbResult> {
  checkOptionConsistency(params);
  const effective = await withInstanceConfig(ctx, params);
  if (effective.skipBlockValidation && !effective.amcheck) {
    throw new StrataError(
      'usage',
      "Option '--skip-block-validation' must be used with '--amcheck' option",
    );
  }
  const result: CheckdbResult = {};
  if (!effective.skipBlockValidation) result.blockValidation = await validateBlocks(ctx, effective);
  if (!effective.amcheck) return result;

  // pg_probackup runs its server checks again for the amcheck connection; once is enough.
  if (result.blockValidation === undefined || result.blockValidation.offline) {
    const session = await connectPostgres(effective.connection, ctx.logger);
    try {
      checkServerForBackup(await readServerFacts(session), { logger: ctx.logger });
    } finally {
      await session.close();
    }
  }
  const amcheck = await amcheckInstance({
    connection: effective.connection,
    heapallindexed: effective.heapallindexed,
    checkunique: effective.checkunique,
    threads: effective.threads,
    progress: effective.progress,
    logger: ctx.logger,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  result.amcheck = amcheck;
  const someSkipped = amcheck.skippedDatabases.length > 0;
  if (amcheck.failures.length > 0) {
    throw new StrataError(
      'corrupt',
      'checkdb --amcheck finished with failure. Not all checked indexes are valid. ' +
        (someSkipped ? 'Some databases were not amchecked.' : 'All databases were amchecked.'),
    );
  }
  ctx.logger.info('checkdb --amcheck finished successfully. All checked indexes are valid.');
  if (someSkipped) throw new StrataError('corrupt', 'Some databases were not amchecked.');
  ctx.logger.info('All databases were amchecked.');
  return result;
}
