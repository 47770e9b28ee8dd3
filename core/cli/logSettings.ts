import { join, resolve } from 'node:path';
import { BackupCatalog } from '../catalog/catalog.js';
import {
  configOptionTable,
  parseOptionValue,
  type InstanceConfig,
} from '../catalog/instanceConfig.js';
import { parseLogFormat } from '../catalog/optionValues.js';
import { StrataError } from '../errors.js';
import { defaultLogSettings, type LogSettings } from '../log/probackupLogger.js';
import type { Storage } from '../storage/storage.js';
import type { Options } from './options.js';

/** The logging options of pg_probackup's table (cli-behaviour.md §2.8), by config field. */
const loggingFields = [
  'logLevelConsole',
  'logLevelFile',
  'logFormatFile',
  'logFilename',
  'errorLogFilename',
  'logDirectory',
  'logRotationSizeKb',
  'logRotationAgeMs',
] as const;

type LoggingConfig = Pick<InstanceConfig, (typeof loggingFields)[number]>;

/** Commands that read no pg_probackup.conf (pg_probackup.c: add-instance, archive-get). */
const commandsWithoutConfig = new Set(['add-instance', 'archive-get']);

/** The logging options given on the command line, typed by the config file's rules. */
function commandLineLogging(options: Options): LoggingConfig & { remoteHost?: string } {
  const result: Record<string, unknown> = {};
  for (const entry of configOptionTable) {
    const wanted = (loggingFields as readonly string[]).includes(entry.field);
    if ((!wanted && entry.field !== 'remoteHost') || !options.has(entry.name)) continue;
    result[entry.field] = parseOptionValue(entry, options.list(entry.name).at(-1)!);
  }
  return result as LoggingConfig & { remoteHost?: string };
}

/**
 * The instance's pg_probackup.conf when this command reads one and it is on this host. A file
 * that cannot be read is left to the command, which reports it in its own words.
 */
async function instanceConfigOf(
  storage: Storage,
  options: Options,
  command: string,
  backupPath: string | undefined,
): Promise<InstanceConfig | undefined> {
  const instance = options.list('instance').at(-1);
  if (!instance || !backupPath || commandsWithoutConfig.has(command)) return undefined;
  const catalog = new BackupCatalog(storage, backupPath);
  try {
    if (!(await storage.stat(catalog.instanceConfigPath(instance)))) return undefined;
    return await catalog.readInstanceConfig(instance);
  } catch {
    return undefined;
  }
}

/**
 * The logger configuration of one command (pg_probackup.c main, then init_logger): command line
 * over pg_probackup.conf over the defaults; with file logging on and no `log-directory`, the
 * catalog's `log/`. archive-push and archive-get that reach the catalog over SSH log to the
 * console only. checkdb and catchup need an explicit directory when they have no catalog.
 */
export async function resolveLogSettings(
  storage: Storage,
  options: Options,
  command: string,
  backupPath: string | undefined,
): Promise<LogSettings> {
  const cli = commandLineLogging(options);
  const file = await instanceConfigOf(storage, options, command, backupPath);
  const pick = <K extends keyof LoggingConfig>(key: K): LoggingConfig[K] => cli[key] ?? file?.[key];
  const formatConsoleText = options.list('log-format-console').at(-1);
  const settings: LogSettings = {
    levelConsole: pick('logLevelConsole') ?? defaultLogSettings.levelConsole,
    levelFile: pick('logLevelFile') ?? defaultLogSettings.levelFile,
    formatConsole:
      formatConsoleText !== undefined
        ? parseLogFormat(formatConsoleText)
        : defaultLogSettings.formatConsole,
    formatFile: pick('logFormatFile') ?? defaultLogSettings.formatFile,
    filename: pick('logFilename') ?? defaultLogSettings.filename,
    rotationSizeKb: pick('logRotationSizeKb') ?? defaultLogSettings.rotationSizeKb,
    rotationAgeMs: pick('logRotationAgeMs') ?? defaultLogSettings.rotationAgeMs,
  };
  const errorFilename = pick('errorLogFilename');
  if (errorFilename !== undefined) settings.errorFilename = errorFilename;

  const remoteHost = cli.remoteHost ?? file?.remoteHost;
  const remoteProto = options.list('remote-proto').at(-1) ?? file?.remoteProto;
  if (
    (command === 'archive-push' || command === 'archive-get') &&
    remoteHost !== undefined &&
    remoteProto !== 'none'
  ) {
    settings.levelFile = 'OFF';
  }

  const directory = pick('logDirectory');
  const fileLogging = settings.levelFile !== 'OFF';
  if (fileLogging && directory === undefined) {
    const pgdata = options.list('pgdata').at(-1) ?? file?.pgdata ?? process.env['PGDATA'];
    const instance = options.list('instance').at(-1);
    if (command === 'checkdb' && (!pgdata || !instance)) {
      throw new StrataError(
        'usage',
        'Cannot save checkdb logs to a file. You must specify --log-directory option when running checkdb with --log-level-file option enabled.',
      );
    }
    if (command === 'catchup') {
      throw new StrataError(
        'usage',
        'Cannot save catchup logs to a file. You must specify --log-directory option when running catchup with --log-level-file option enabled.',
      );
    }
  }
  if (directory !== undefined) settings.directory = resolve(directory);
  else if (fileLogging && backupPath !== undefined) settings.directory = join(backupPath, 'log');
  return settings;
}
