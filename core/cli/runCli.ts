import { isAbsolute, resolve } from 'node:path';
import { BackupCatalog } from '../catalog/catalog.js';
import { StrataError, errorText, isStrataError } from '../errors.js';
import { parseLogFormat, parseLogLevel } from '../catalog/optionValues.js';
import {
  createProbackupLogger,
  defaultLogSettings,
  type LogSettings,
  type ProbackupLogger,
} from '../log/probackupLogger.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import type { CommandContext } from '../commands/context.js';
import { helpText, versionLine } from './help.js';
import { resolveLogSettings } from './logSettings.js';
import { Options, parseArgs } from './options.js';
import { commandHandlers } from './commands.js';

const knownCommands = new Set([
  'init',
  'add-instance',
  'del-instance',
  'archive-push',
  'archive-get',
  'backup',
  'restore',
  'validate',
  'delete',
  'merge',
  'show',
  'set-config',
  'set-backup',
  'show-config',
  'checkdb',
  'catchup',
  'ui',
  'help',
  'version',
]);

/** Commands that use `-i`; others refuse it (cli §2.1). */
const commandsWithBackupId = new Set([
  'restore',
  'validate',
  'delete',
  'merge',
  'set-backup',
  'show',
]);

/**
 * Commands whose full command line pg_probackup writes to the log file only (pg_probackup.c:
 * the line is built before getopt_long permutes argv).
 */
const commandsLoggingCommandLine = new Set([
  'backup',
  'restore',
  'validate',
  'delete',
  'merge',
  'set-config',
  'set-backup',
]);

/** The console options alone, for the messages before the instance configuration is read. */
function consoleSettings(options: Options): LogSettings {
  const level = options.list('log-level-console').at(-1);
  const format = options.list('log-format-console').at(-1);
  return {
    ...defaultLogSettings,
    ...(level !== undefined ? { levelConsole: parseLogLevel(level) } : {}),
    ...(format !== undefined ? { formatConsole: parseLogFormat(format) } : {}),
  };
}

/**
 * Runs one command line; returns the process exit code. Output goes to the given writers, and to
 * the log files when `--log-level-file` (or the instance's `log-level-file`) is not off.
 * `programName` is the command line's first word in the log's `command:` line.
 */
export async function runCli(
  argv: string[],
  io: {
    stdout: (text: string) => void;
    stderr: (text: string) => void;
    signal?: AbortSignal;
    programName?: string;
  },
): Promise<number> {
  const loggerIo = { writeConsole: io.stderr, pid: process.pid };
  let logger: ProbackupLogger = createProbackupLogger(defaultLogSettings, {
    ...loggerIo,
    now: Date.now,
  });
  try {
    const parsed = parseArgs(argv);
    const options = new Options(parsed);
    logger = createProbackupLogger(consoleSettings(options), { ...loggerIo, now: Date.now });
    const command = parsed.command;
    if (command === undefined) {
      throw new StrataError(
        'usage',
        'No subcommand specified. Please run with "help" argument to see possible subcommands.',
      );
    }
    if (!knownCommands.has(command))
      throw new StrataError('usage', `Unknown subcommand "${command}"`);
    if (command === 'version' || options.flag('version')) {
      io.stdout(`${versionLine()}\n`);
      return 0;
    }
    if (command === 'help' || options.flag('help')) {
      io.stdout(helpText(command === 'help' ? parsed.positionals[0] : command));
      return 0;
    }
    if (options.has('backup-id') && !commandsWithBackupId.has(command)) {
      throw new StrataError(
        'usage',
        `Cannot use -i (--backup-id) option together with the "${command}" command`,
      );
    }
    const handler = commandHandlers[command];
    if (!handler) {
      throw new StrataError(
        'usage',
        `The "${command}" command is not available in this version of Strata`,
      );
    }
    const now = commandClock();
    const storage = new LocalStorage();
    const backupPath = backupPathOf(options, command);
    logger = createProbackupLogger(
      await resolveLogSettings(storage, options, command, backupPath),
      { ...loggerIo, now },
    );
    if (commandsLoggingCommandLine.has(command)) {
      logger.logToFileOnly('INFO', `command: ${[io.programName ?? 'strata', ...argv].join(' ')} `);
    }
    const ctx: CommandContext = {
      storage,
      logger,
      now,
      ...(io.signal ? { signal: io.signal } : {}),
    };
    return await handler(ctx, options, { stdout: io.stdout, backupPath });
  } catch (error) {
    const message = isStrataError(error) ? error.message : errorText(error);
    try {
      logger.log('ERROR', message);
    } catch (logError) {
      // The log file could not be opened for this very message: report both on the console.
      io.stderr(`ERROR: ${message}\nERROR: ${errorText(logError)}\n`);
    }
    return 1;
  } finally {
    logger.close();
  }
}

/**
 * The clock commands read. STRATA_NOW=<unix seconds> starts it at that moment instead of the real
 * time (it then runs at the real pace, so waits and timeouts still end): for tests and
 * reproducible runs of time-dependent commands such as retention (`delete --delete-expired`).
 */
function commandClock(): () => number {
  const fixed = process.env['STRATA_NOW'];
  if (fixed === undefined) return () => Date.now();
  if (!/^\d+$/.test(fixed)) {
    throw new StrataError('usage', `STRATA_NOW must be a Unix time in seconds: '${fixed}'`);
  }
  const offsetMs = Number(fixed) * 1000 - Date.now();
  return () => Date.now() + offsetMs;
}

/** `-B` or BACKUP_PATH; must be absolute (cli §1.4). Undefined for commands that work without one. */
function backupPathOf(options: Options, command: string): string | undefined {
  const path = options.string('backup-path') ?? process.env['BACKUP_PATH'];
  if (path === undefined) {
    if (command === 'checkdb' || command === 'catchup' || command === 'ui') return undefined;
    throw new StrataError(
      'usage',
      'No backup catalog path specified.\nPlease specify it either using environment variable BACKUP_PATH or\ncommand line option --backup-path (-B)',
    );
  }
  BackupCatalog.assertBackupPath(path);
  return isAbsolute(path) ? path : resolve(path);
}
