import { resolve as resolvePath } from 'node:path';
import {
  configOptionTable,
  parseOptionValue,
  type InstanceConfig,
} from '../catalog/instanceConfig.js';
import { checkCompressLevel, parseCompressAlgorithm } from '../catalog/optionValues.js';
import type { CompressAlgorithm } from '../catalog/types.js';
import { StrataError } from '../errors.js';
import { archiveGet } from '../commands/archive/archiveGet.js';
import { archivePush } from '../commands/archive/archivePush.js';
import { runBackup } from '../commands/backup/backup.js';
import { runCatchup } from '../commands/catchup/catchup.js';
import { runCheckdb } from '../commands/checkdb/checkdb.js';
import type { CommandContext } from '../commands/context.js';
import { deleteCommand, type DeleteParams } from '../commands/delete/deleteCommand.js';
import { deleteInstance } from '../commands/instance/delInstance.js';
import { setBackup, type BackupPin } from '../commands/setBackup/setBackup.js';
import { showArchive } from '../commands/show/showArchive.js';
import { parseProbackupTime } from '../catalog/time.js';
import { parseCInteger as parseUnitInteger } from '../catalog/units.js';
import { addInstance, initCatalog, setConfig, showConfig } from '../commands/instance/instance.js';
import { mergeBackup } from '../commands/merge/merge.js';
import { restoreBackup } from '../commands/restore/restore.js';
import { parseRecoveryTargetValue, type RecoveryTarget } from '../commands/restore/types.js';
import { showBackups } from '../commands/show/show.js';
import { validateCommand } from '../commands/validate/validateCommand.js';
import { BackupCatalog } from '../catalog/catalog.js';
import { STRATA_VERSION } from '../commands/context.js';
import { remoteTarget, type RemoteOptionFields } from '../remote/remoteOptions.js';
import { terminalSshHooks } from '../remote/terminalHooks.js';
import { withRemoteStorage, type RemoteCommandLayout } from '../storage/ssh/openRemoteStorage.js';
import type { Options } from './options.js';
import { runUiCommand } from './uiCommand.js';

export interface CommandEnvironment {
  stdout: (text: string) => void;
  backupPath: string | undefined;
}

export type CommandHandler = (
  ctx: CommandContext,
  options: Options,
  env: CommandEnvironment,
) => Promise<number>;

function requireInstance(options: Options): string {
  const instance = options.string('instance');
  if (!instance) throw new StrataError('usage', 'Required parameter not specified: --instance');
  return instance;
}

function requireBackupPath(env: CommandEnvironment): string {
  if (!env.backupPath)
    throw new StrataError('usage', 'Required parameter not specified: -B, --backup-path');
  return env.backupPath;
}

/** Instance options given on the command line, typed with the config file's rules (cli §1.4). */
function configOverrides(options: Options, command: string): InstanceConfig {
  const overrides: Record<string, unknown> = {};
  for (const entry of configOptionTable) {
    if (!options.has(entry.name)) continue;
    if (entry.fileOnly)
      throw new StrataError('usage', `Option ${entry.name} cannot be specified in command line`);
    if (entry.cliOnly && command === 'set-config') {
      throw new StrataError('usage', `Option '${entry.name}' set only from terminal`);
    }
    if (entry.cliOnly) continue;
    const text = options.list(entry.name).at(-1) ?? options.string(entry.name)!;
    overrides[entry.field] = parseOptionValue(entry, text);
  }
  if (options.flag('compress') && overrides['compressAlgorithm'] === undefined)
    overrides['compressAlgorithm'] = 'zlib';
  return overrides as InstanceConfig;
}

function threads(options: Options): number {
  return Math.max(1, options.int('threads', 'a 32bit unsigned integer') ?? 1);
}

function compression(options: Options): { algorithm?: CompressAlgorithm; level?: number } {
  const algorithmText = options.list('compress-algorithm').at(-1);
  const algorithm =
    algorithmText !== undefined
      ? parseCompressAlgorithm(algorithmText)
      : options.flag('compress')
        ? 'zlib'
        : undefined;
  const level = options.int('compress-level', 'a 32bit signed integer');
  if (level !== undefined) checkCompressLevel(algorithm, level);
  return { ...(algorithm ? { algorithm } : {}), ...(level !== undefined ? { level } : {}) };
}

function archiveTimeout(options: Options): number | undefined {
  const text = options.string('archive-timeout');
  if (text === undefined) return undefined;
  const entry = configOptionTable.find((option) => option.name === 'archive-timeout')!;
  return Number(parseOptionValue(entry, text));
}

/** The command prefix written into a generated restore_command: this Node and this bundle. */
function strataCommandPrefix(): string {
  return `"${process.execPath}" "${process.argv[1]}"`;
}

function recoveryTarget(options: Options): RecoveryTarget {
  const target: RecoveryTarget = {};
  const value = options.string('recovery-target');
  if (value !== undefined) Object.assign(target, parseRecoveryTargetValue(value));
  if (options.flag('immediate')) target.immediate = true;
  const time = options.string('recovery-target-time');
  if (time !== undefined) target.time = time;
  const xid = options.string('recovery-target-xid');
  if (xid !== undefined) target.xid = xid;
  const lsn = options.string('recovery-target-lsn');
  if (lsn !== undefined) target.lsn = lsn;
  const name = options.string('recovery-target-name');
  if (name !== undefined) target.name = name;
  const inclusive = options.string('recovery-target-inclusive');
  if (inclusive !== undefined) {
    const parsed = /^(t|tr|tru|true|y|ye|yes|on|1)$/i.test(inclusive)
      ? true
      : /^(f|fa|fal|fals|false|n|no|of|off|0)$/i.test(inclusive)
        ? false
        : undefined;
    if (parsed === undefined)
      throw new StrataError(
        'usage',
        `Option --recovery-target-inclusive should be a boolean: '${inclusive}'`,
      );
    target.inclusive = parsed;
  }
  const timeline = options.string('recovery-target-timeline');
  if (timeline !== undefined) target.timeline = timeline;
  const action = options.string('recovery-target-action');
  if (action !== undefined) {
    if (action !== 'pause' && action !== 'promote' && action !== 'shutdown') {
      throw new StrataError(
        'usage',
        `Invalid value for '--recovery-target-action' option '${action}'`,
      );
    }
    target.action = action;
  }
  return target;
}

function pgdataOption(options: Options): string | undefined {
  const pgdata = options.string('pgdata') ?? process.env['PGDATA'];
  if (pgdata !== undefined && !pgdata.startsWith('/')) {
    throw new StrataError('usage', `-D, --pgdata must be an absolute path: ${pgdata}`);
  }
  return pgdata;
}

/**
 * `--ttl` and `--expire-time` of backup and set-backup, checked as pg_probackup's main() does:
 * a negative ttl or an expire time at or before the epoch asks for nothing.
 */
function pinOptions(options: Options): BackupPin {
  const ttlText = options.string('ttl');
  const expireText = options.string('expire-time');
  let ttlSec: number | undefined;
  if (ttlText !== undefined) {
    const value = parseUnitInteger(ttlText, 'int64', 's');
    if (value === undefined)
      throw new StrataError('usage', `Option --ttl should be a 64bit signed integer: '${ttlText}'`);
    ttlSec = Number(value);
  }
  if (expireText !== undefined && ttlSec !== undefined && ttlSec >= 0) {
    throw new StrataError(
      'usage',
      "You cannot specify '--expire-time' and '--ttl' options together",
    );
  }
  let expireTimeSec: number | undefined;
  if (expireText !== undefined) {
    const value = parseProbackupTime(expireText, 'local');
    if (value === null)
      throw new StrataError('usage', `Invalid value for '--expire-time' option: '${expireText}'`);
    expireTimeSec = value;
  }
  return {
    ...(ttlSec !== undefined && ttlSec >= 0 ? { ttlSec } : {}),
    ...(expireTimeSec !== undefined && expireTimeSec > 0 ? { expireTimeSec } : {}),
  };
}

/** The retention settings given on the command line (they win over pg_probackup.conf). */
function retentionOverrides(overrides: InstanceConfig): DeleteParams['retention'] {
  return {
    ...(overrides.retentionRedundancy !== undefined
      ? { retentionRedundancy: overrides.retentionRedundancy }
      : {}),
    ...(overrides.retentionWindow !== undefined
      ? { retentionWindow: overrides.retentionWindow }
      : {}),
    ...(overrides.walDepth !== undefined ? { walDepth: overrides.walDepth } : {}),
  };
}

const localCommandHandlers: Record<string, CommandHandler> = {
  async init(ctx, _options, env) {
    await initCatalog(ctx, requireBackupPath(env));
    return 0;
  },

  async 'add-instance'(ctx, options, env) {
    await addInstance(ctx, {
      backupPath: requireBackupPath(env),
      instance: requireInstance(options),
      pgdata: pgdataOption(options),
      overrides: configOverrides(options, 'add-instance'),
    });
    return 0;
  },

  async 'set-config'(ctx, options, env) {
    await setConfig(ctx, {
      backupPath: requireBackupPath(env),
      instance: requireInstance(options),
      overrides: configOverrides(options, 'set-config'),
    });
    return 0;
  },

  async 'show-config'(ctx, options, env) {
    const format = options.list('format').at(-1) ?? 'plain';
    if (!'plain'.startsWith(format) && !'json'.startsWith(format)) {
      throw new StrataError('usage', `Invalid show format "${format}"`);
    }
    env.stdout(
      await showConfig(ctx, {
        backupPath: requireBackupPath(env),
        instance: requireInstance(options),
        format: 'json'.startsWith(format) && format.length > 0 ? 'json' : 'plain',
        noScaleUnits: options.flag('no-scale-units'),
      }),
    );
    return 0;
  },

  async backup(ctx, options, env) {
    const modeText = options.list('backup-mode').at(-1);
    const backupMode = (['FULL', 'PAGE', 'PTRACK', 'DELTA', 'SUMMARY'] as const).find(
      (mode) =>
        modeText !== undefined && modeText.length > 0 && mode.startsWith(modeText.toUpperCase()),
    );
    if (modeText !== undefined && !backupMode)
      throw new StrataError('usage', `Invalid backup-mode "${modeText}"`);
    const pin = pinOptions(options);
    const note = options.string('note');
    if (note !== undefined && Buffer.byteLength(note) > 1024) {
      throw new StrataError('usage', 'Backup note cannot exceed 1024 bytes');
    }
    if (options.flag('perm-slot') && options.flag('temp-slot')) {
      throw new StrataError(
        'usage',
        'You cannot specify "--perm-slot" option with the "--temp-slot" option',
      );
    }
    if (!backupMode) {
      throw new StrataError(
        'usage',
        'No backup mode specified.\nPlease specify it either using environment variable BACKUP_MODE or\ncommand line option --backup-mode (-b)',
      );
    }
    const { algorithm, level } = compression(options);
    const overrides = configOverrides(options, 'backup');
    const startTime = options.int('start-time', 'a 32bit unsigned integer');
    const slot = options.string('slot');
    const archiveTimeoutSec = archiveTimeout(options);
    const backupPath = requireBackupPath(env);
    const instance = requireInstance(options);
    await runBackup(ctx, {
      backupPath,
      instance,
      backupMode,
      stream: options.flag('stream'),
      ...(slot !== undefined ? { slot } : {}),
      tempSlot: options.flag('temp-slot'),
      permSlot: options.flag('perm-slot'),
      smoothCheckpoint: options.flag('smooth-checkpoint'),
      threads: threads(options),
      progress: options.flag('progress'),
      ...(overrides.pgdata !== undefined ? { pgdata: overrides.pgdata } : {}),
      connection: {
        ...(overrides.pghost !== undefined ? { pghost: overrides.pghost } : {}),
        ...(overrides.pgport !== undefined ? { pgport: overrides.pgport } : {}),
        ...(overrides.pguser !== undefined ? { pguser: overrides.pguser } : {}),
        ...(overrides.pgdatabase !== undefined ? { pgdatabase: overrides.pgdatabase } : {}),
      },
      ...(algorithm ? { compressAlgorithm: algorithm } : {}),
      ...(level !== undefined ? { compressLevel: level } : {}),
      ...(archiveTimeoutSec !== undefined ? { archiveTimeoutSec } : {}),
      ...(note !== undefined ? { note: note.split('\n')[0]! } : {}),
      noValidate: options.flag('no-validate'),
      noSync: options.flag('no-sync'),
      skipBlockValidation: options.flag('skip-block-validation'),
      backupPgLog: options.flag('backup-pg-log'),
      ...(overrides.externalDirs !== undefined ? { externalDirs: overrides.externalDirs } : {}),
      ...(startTime !== undefined ? { startTimeSec: startTime } : {}),
      ...pin,
    });
    const deleteExpired = options.flag('delete-expired');
    const mergeExpired = options.flag('merge-expired');
    const deleteWal = options.flag('delete-wal');
    // do_backup ends with do_retention when any retention option is given (§5.4 step 18).
    if (deleteExpired || mergeExpired || deleteWal) {
      await deleteCommand(ctx, {
        backupPath,
        instance,
        deleteExpired,
        mergeExpired,
        deleteWal,
        dryRun: options.flag('dry-run'),
        retention: retentionOverrides(overrides),
        threads: threads(options),
        noValidate: options.flag('no-validate'),
        noSync: options.flag('no-sync'),
        progress: options.flag('progress'),
      });
    }
    return 0;
  },

  async 'archive-push'(ctx, options, env) {
    const walFileName = options.string('wal-file-name');
    if (!walFileName)
      throw new StrataError('usage', 'Required parameter is not specified: --wal-file-name %f');
    const { algorithm, level } = compression(options);
    const walFilePath = options.string('wal-file-path');
    const archiveTimeoutSec = archiveTimeout(options);
    await archivePush(ctx, {
      backupPath: requireBackupPath(env),
      instance: requireInstance(options),
      walFileName,
      ...(walFilePath !== undefined ? { walFilePath } : {}),
      cwd: process.cwd(),
      batchSize: Math.max(1, options.int('batch-size') ?? 1),
      threads: threads(options),
      overwrite: options.flag('overwrite'),
      noReadyRename: options.flag('no-ready-rename'),
      noSync: options.flag('no-sync'),
      ...(algorithm ? { compressAlgorithm: algorithm } : {}),
      ...(level !== undefined ? { compressLevel: level } : {}),
      ...(archiveTimeoutSec !== undefined ? { archiveTimeoutSec } : {}),
    });
    return 0;
  },

  async 'archive-get'(ctx, options, env) {
    const walFileName = options.string('wal-file-name');
    if (!walFileName)
      throw new StrataError('usage', 'Required parameter not specified: --wal-file-name %f');
    const walFilePath = options.string('wal-file-path');
    if (!walFilePath)
      throw new StrataError('usage', 'Required parameter not specified: --wal_file_path %p');
    const prefetchDir = options.string('prefetch-dir');
    await archiveGet(ctx, {
      backupPath: requireBackupPath(env),
      instance: requireInstance(options),
      walFileName,
      walFilePath,
      cwd: process.cwd(),
      batchSize: Math.max(1, options.int('batch-size') ?? 1),
      threads: threads(options),
      ...(prefetchDir !== undefined ? { prefetchDir } : {}),
      noValidateWal: options.flag('no-validate-wal'),
    });
    return 0;
  },

  async show(ctx, options, env) {
    const format = options.list('format').at(-1) ?? 'plain';
    if (!('plain'.startsWith(format) || 'json'.startsWith(format)) || format === '') {
      throw new StrataError('usage', `Invalid show format "${format}"`);
    }
    const instance = options.string('instance');
    const backupId = options.string('backup-id');
    if (backupId !== undefined && instance === undefined) {
      throw new StrataError('usage', 'You must specify --instance to use (-i, --backup-id) option');
    }
    if (options.flag('archive')) {
      if (backupId !== undefined)
        throw new StrataError(
          'usage',
          'You cannot specify --archive and (-i, --backup-id) options together',
        );
      env.stdout(
        await showArchive(ctx, {
          backupPath: requireBackupPath(env),
          ...(instance !== undefined ? { instance } : {}),
          format: 'json'.startsWith(format) ? 'json' : 'plain',
        }),
      );
      return 0;
    }
    env.stdout(
      await showBackups(ctx, {
        backupPath: requireBackupPath(env),
        ...(instance !== undefined ? { instance } : {}),
        ...(backupId !== undefined ? { backupId } : {}),
        format: 'json'.startsWith(format) ? 'json' : 'plain',
      }),
    );
    return 0;
  },

  async validate(ctx, options, env) {
    if (options.flag('no-validate'))
      throw new StrataError(
        'usage',
        'You cannot specify "--no-validate" option with the "validate" command',
      );
    if (options.flag('force'))
      throw new StrataError(
        'usage',
        'You cannot specify "--force" flag with the "validate" command',
      );
    const instance = options.string('instance');
    const backupId = options.string('backup-id');
    if (backupId !== undefined && instance === undefined) {
      throw new StrataError('usage', 'Required parameter not specified: --instance');
    }
    const allValid = await validateCommand(ctx, {
      backupPath: requireBackupPath(env),
      ...(instance !== undefined ? { instance } : {}),
      ...(backupId !== undefined ? { backupId } : {}),
      target: recoveryTarget(options),
      threads: threads(options),
      skipBlockValidation: options.flag('skip-block-validation'),
    });
    return allValid ? 0 : 1;
  },

  async merge(ctx, options, env) {
    const backupPath = requireBackupPath(env);
    const instance = requireInstance(options);
    const backupId = options.string('backup-id');
    if (backupId === undefined)
      throw new StrataError('usage', 'Required parameter is not specified: --backup-id');
    await mergeBackup(ctx, {
      backupPath,
      instance,
      backupId,
      threads: threads(options),
      noValidate: options.flag('no-validate'),
      noSync: options.flag('no-sync'),
      progress: options.flag('progress'),
    });
    return 0;
  },

  async restore(ctx, options, env) {
    const backupPath = requireBackupPath(env);
    const instance = requireInstance(options);
    const pgdata = pgdataOption(options);
    if (!pgdata) {
      throw new StrataError(
        'usage',
        'No postgres data directory specified.\nPlease specify it either using environment variable PGDATA or\ncommand line option --pgdata (-D)',
      );
    }
    const modeText = options.list('incremental-mode').at(-1);
    let incrementalMode: 'none' | 'checksum' | 'lsn' | undefined;
    if (modeText !== undefined) {
      const lowered = modeText.toLowerCase();
      if (lowered !== 'none' && lowered !== 'checksum' && lowered !== 'lsn') {
        throw new StrataError(
          'usage',
          `Invalid value for '--incremental-mode' option: '${modeText}'`,
        );
      }
      incrementalMode = lowered;
    }
    if (options.has('db-include') && options.has('db-exclude')) {
      throw new StrataError(
        'usage',
        "You cannot specify '--db-include' and '--db-exclude' together",
      );
    }
    const backupId = options.string('backup-id');
    const primaryConninfo = options.string('primary-conninfo');
    const primarySlotName = options.string('slot');
    const restoreCommand = options.string('restore-command');
    const waldir = options.string('waldir');
    const overrides = configOverrides(options, 'restore');
    await restoreBackup(ctx, {
      backupPath,
      instance,
      pgdata,
      ...(backupId !== undefined ? { backupId } : {}),
      target: recoveryTarget(options),
      restoreAsReplica: options.flag('restore-as-replica'),
      ...(primaryConninfo !== undefined ? { primaryConninfo } : {}),
      ...(primarySlotName !== undefined ? { primarySlotName } : {}),
      ...(restoreCommand !== undefined ? { restoreCommand } : {}),
      ...(overrides.archiveHost !== undefined ? { archiveHost: overrides.archiveHost } : {}),
      ...(overrides.archivePort !== undefined ? { archivePort: overrides.archivePort } : {}),
      ...(overrides.archiveUser !== undefined ? { archiveUser: overrides.archiveUser } : {}),
      noValidate: options.flag('no-validate'),
      force: options.flag('force'),
      skipBlockValidation: options.flag('skip-block-validation'),
      threads: threads(options),
      noSync: options.flag('no-sync'),
      strataCommandPath: strataCommandPrefix(),
      progress: options.flag('progress'),
      ...(incrementalMode !== undefined ? { incrementalMode } : {}),
      ...(options.has('db-include') ? { dbInclude: options.list('db-include') } : {}),
      ...(options.has('db-exclude') ? { dbExclude: options.list('db-exclude') } : {}),
      ...(options.has('tablespace-mapping')
        ? { tablespaceMapping: options.list('tablespace-mapping') }
        : {}),
      ...(options.has('external-mapping')
        ? { externalMapping: options.list('external-mapping') }
        : {}),
      skipExternalDirs: options.flag('skip-external-dirs'),
      destroyAllOtherDbs: options.flag('destroy-all-other-dbs'),
      ...(waldir !== undefined ? { waldir } : {}),
    });
    return 0;
  },

  async checkdb(ctx, options, env) {
    const instance = options.string('instance');
    // PGDATA is read from the environment unless -B is given without --instance (cli §1.4).
    const pgdataText =
      options.string('pgdata') ??
      ((env.backupPath === undefined || instance !== undefined
        ? process.env['PGDATA']
        : undefined) ||
        undefined);
    if (pgdataText !== undefined && !pgdataText.startsWith('/')) {
      throw new StrataError('usage', `-D, --pgdata must be an absolute path: ${pgdataText}`);
    }
    const overrides = configOverrides(options, 'checkdb');
    await runCheckdb(ctx, {
      ...(env.backupPath !== undefined ? { backupPath: env.backupPath } : {}),
      ...(instance !== undefined ? { instance } : {}),
      ...(pgdataText !== undefined ? { pgdata: pgdataText } : {}),
      connection: {
        ...(overrides.pghost !== undefined ? { pghost: overrides.pghost } : {}),
        ...(overrides.pgport !== undefined ? { pgport: overrides.pgport } : {}),
        ...(overrides.pguser !== undefined ? { pguser: overrides.pguser } : {}),
        ...(overrides.pgdatabase !== undefined ? { pgdatabase: overrides.pgdatabase } : {}),
      },
      amcheck: options.flag('amcheck'),
      heapallindexed: options.flag('heapallindexed'),
      checkunique: options.flag('checkunique'),
      skipBlockValidation: options.flag('skip-block-validation'),
      threads: threads(options),
      progress: options.flag('progress'),
    });
    return 0;
  },

  async catchup(ctx, options) {
    const modeText = options.list('backup-mode').at(-1);
    const backupMode =
      modeText === undefined
        ? undefined
        : (['FULL', 'PAGE', 'PTRACK', 'DELTA'] as const).find(
            (mode) => modeText.length > 0 && mode.startsWith(modeText.toUpperCase()),
          );
    if (modeText !== undefined && backupMode === undefined)
      throw new StrataError('usage', `Invalid backup-mode "${modeText}"`);
    const sourcePgdata = options.string('source-pgdata');
    if (sourcePgdata === undefined)
      throw new StrataError(
        'usage',
        'You must specify "--source-pgdata" option with the "catchup" command',
      );
    const destinationPgdata = options.string('destination-pgdata');
    if (destinationPgdata === undefined) {
      throw new StrataError(
        'usage',
        'You must specify "--destination-pgdata" option with the "catchup" command',
      );
    }
    if (backupMode === undefined) {
      throw new StrataError(
        'usage',
        'No backup mode specified.\nPlease specify it either using environment variable BACKUP_MODE or\ncommand line option --backup-mode (-b)',
      );
    }
    if (backupMode === 'PAGE') {
      throw new StrataError(
        'usage',
        'Only "FULL", "PTRACK" and "DELTA" modes are supported with the "catchup" command',
      );
    }
    if (options.flag('perm-slot') && options.flag('temp-slot')) {
      throw new StrataError(
        'usage',
        'You cannot specify "--perm-slot" option with the "--temp-slot" option',
      );
    }
    const overrides = configOverrides(options, 'catchup');
    const slot = options.string('slot');
    const archiveTimeoutSec = archiveTimeout(options);
    await runCatchup(ctx, {
      backupMode,
      sourcePgdata: resolvePath(sourcePgdata),
      destinationPgdata: resolvePath(destinationPgdata),
      connection: {
        ...(overrides.pghost !== undefined ? { pghost: overrides.pghost } : {}),
        ...(overrides.pgport !== undefined ? { pgport: overrides.pgport } : {}),
        ...(overrides.pguser !== undefined ? { pguser: overrides.pguser } : {}),
        ...(overrides.pgdatabase !== undefined ? { pgdatabase: overrides.pgdatabase } : {}),
      },
      stream: options.flag('stream'),
      threads: threads(options),
      progress: options.flag('progress'),
      dryRun: options.flag('dry-run'),
      noSync: options.flag('no-sync'),
      excludePaths: options.list('exclude-path'),
      tablespaceMapping: options.list('tablespace-mapping'),
      smoothCheckpoint: options.flag('smooth-checkpoint'),
      ...(slot !== undefined ? { slot } : {}),
      tempSlot: options.flag('temp-slot'),
      permSlot: options.flag('perm-slot'),
      ...(archiveTimeoutSec !== undefined ? { archiveTimeoutSec } : {}),
      ...(overrides.externalDirs !== undefined ? { externalDirs: overrides.externalDirs } : {}),
    });
    return 0;
  },

  async delete(ctx, options, env) {
    const backupPath = requireBackupPath(env);
    const instance = requireInstance(options);
    const overrides = configOverrides(options, 'delete');
    const backupId = options.string('backup-id');
    const status = options.string('status');
    await deleteCommand(ctx, {
      backupPath,
      instance,
      ...(backupId !== undefined ? { backupId } : {}),
      ...(status !== undefined ? { status } : {}),
      deleteExpired: options.flag('delete-expired'),
      mergeExpired: options.flag('merge-expired'),
      deleteWal: options.flag('delete-wal'),
      dryRun: options.flag('dry-run'),
      retention: retentionOverrides(overrides),
      threads: threads(options),
      noValidate: options.flag('no-validate'),
      noSync: options.flag('no-sync'),
      progress: options.flag('progress'),
    });
    return 0;
  },

  async 'set-backup'(ctx, options, env) {
    const backupPath = requireBackupPath(env);
    const instance = requireInstance(options);
    const pin = pinOptions(options);
    const note = options.string('note');
    await setBackup(ctx, {
      backupPath,
      instance,
      backupId: options.string('backup-id'),
      ...pin,
      ...(note !== undefined ? { note } : {}),
    });
    return 0;
  },

  async 'del-instance'(ctx, options, env) {
    await deleteInstance(ctx, {
      backupPath: requireBackupPath(env),
      instance: requireInstance(options),
    });
    return 0;
  },

  async ui(ctx, options, env) {
    return runUiCommand(ctx, options, { ...env, strataCommand: strataCommandPrefix() });
  },
};

const remoteFields = [
  'remoteProto',
  'remoteHost',
  'remotePort',
  'remotePath',
  'remoteUser',
  'sshOptions',
  'sshConfig',
] as const;

/**
 * Which paths of each remote-capable command stay on this host (cli §2.10): the catalog for
 * backup, restore, add-instance and checkdb (PGDATA is on the remote host), the destination for
 * catchup (the source is remote); archive-push and archive-get run on the database host and reach
 * the catalog on the remote backup host. Undefined when the command lacks what it needs: it then
 * reports that itself.
 */
const catalogHere = (
  _options: Options,
  env: CommandEnvironment,
): RemoteCommandLayout | undefined =>
  env.backupPath ? { roots: [env.backupPath], rootsAre: 'local' } : undefined;
const catalogThere = (
  _options: Options,
  env: CommandEnvironment,
): RemoteCommandLayout | undefined =>
  env.backupPath ? { roots: [env.backupPath], rootsAre: 'remote' } : undefined;
const remoteLayouts: Record<
  string,
  (options: Options, env: CommandEnvironment) => RemoteCommandLayout | undefined
> = {
  'add-instance': catalogHere,
  backup: catalogHere,
  restore: catalogHere,
  checkdb: (_options, env) => ({
    roots: env.backupPath ? [env.backupPath] : [],
    rootsAre: 'local',
  }),
  catchup: (options) => {
    const destination = options.list('destination-pgdata').at(-1);
    return destination ? { roots: [resolvePath(destination)], rootsAre: 'local' } : undefined;
  },
  'archive-push': catalogThere,
  'archive-get': catalogThere,
};

/**
 * The remote options of a command: the instance's pg_probackup.conf when the catalog is on this
 * host, overridden by the command line.
 */
async function remoteOptionFields(
  ctx: CommandContext,
  options: Options,
  env: CommandEnvironment,
  command: string,
  layout: RemoteCommandLayout,
): Promise<RemoteOptionFields> {
  const fields: RemoteOptionFields = {};
  const instance = options.list('instance').at(-1);
  if (layout.rootsAre === 'local' && env.backupPath && instance) {
    const catalog = new BackupCatalog(ctx.storage, env.backupPath);
    const config = (await ctx.storage.stat(catalog.instanceConfigPath(instance)).catch(() => null))
      ? await catalog.readInstanceConfig(instance).catch(() => undefined)
      : undefined;
    for (const field of remoteFields)
      if (config?.[field] !== undefined) fields[field] = config[field];
  }
  const overrides = configOverrides(options, command);
  for (const field of remoteFields)
    if (overrides[field] !== undefined) fields[field] = overrides[field];
  return fields;
}

/** Runs the remote-capable commands with `ctx.storage` reaching the remote host when the options ask for one. */
function remoteCapable(handlers: Record<string, CommandHandler>): Record<string, CommandHandler> {
  const result = { ...handlers };
  for (const [command, layoutOf] of Object.entries(remoteLayouts)) {
    const handler = handlers[command]!;
    result[command] = async (ctx, options, env) => {
      const layout = layoutOf(options, env);
      if (!layout) return handler(ctx, options, env);
      const fields = await remoteOptionFields(ctx, options, env, command, layout);
      const target = remoteTarget(fields, { warn: (message) => ctx.logger.log('LOG', message) });
      if (!target) return handler(ctx, options, env);
      return withRemoteStorage(
        ctx.storage,
        target,
        layout,
        { programVersion: STRATA_VERSION, hooks: terminalSshHooks(ctx.logger), logger: ctx.logger },
        (storage) => handler({ ...ctx, storage }, options, env),
      );
    };
  }
  return result;
}

export const commandHandlers = remoteCapable(localCommandHandlers);
