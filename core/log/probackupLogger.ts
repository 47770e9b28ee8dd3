import { closeSync, writeSync } from 'node:fs';
import type { LogFormat, LogLevelName } from '../catalog/optionValues.js';
import { createLogger, logLevelRank, type LogLevel, type Logger } from '../log.js';
import { openLogFile } from './logFile.js';
import { formatConsoleLogLine, formatFileLogLine, type LogLineFields } from './logLine.js';

/**
 * pg_probackup's LoggerConfig (logger.h) after the command line, the instance configuration and
 * the defaults are merged (cli-behaviour.md §1.7).
 */
export interface LogSettings {
  levelConsole: LogLevelName;
  levelFile: LogLevelName;
  formatConsole: LogFormat;
  formatFile: LogFormat;
  /** strftime pattern under `directory`. */
  filename: string;
  /** strftime pattern of the file that also receives ERROR lines. */
  errorFilename?: string;
  /** Without one nothing is written to files (init_logger sets `$BACKUP_PATH/log` when needed). */
  directory?: string;
  rotationSizeKb: bigint;
  rotationAgeMs: bigint;
}

/** LOG_FILENAME_DEFAULT and the other defaults of logger.h. */
export const defaultLogSettings: LogSettings = {
  levelConsole: 'INFO',
  levelFile: 'OFF',
  formatConsole: 'PLAIN',
  formatFile: 'PLAIN',
  filename: 'pg_probackup.log',
  rotationSizeKb: 0n,
  rotationAgeMs: 0n,
};

export interface ProbackupLogger extends Logger {
  /** elog_file: to the log files only (the `command: …` line). */
  logToFileOnly(level: LogLevel, message: string): void;
  /** Closes the log files; later messages reopen them. */
  close(): void;
}

interface OpenedFile {
  pattern: string;
  fd?: number;
  /** Set when opening failed: the error was reported once, the file is not tried again. */
  failed: boolean;
}

/**
 * The CLI's logger (logger.c, elog_internal): a message at or above `levelFile` is appended to
 * the log file, an ERROR also to the error log file, and one at or above `levelConsole` written
 * to the console — in that order. Files are opened, and rotated when due, at their first
 * message. A log file that cannot be opened is an error, as in pg_probackup, thrown from the
 * logging call; `.rotation` warnings go to the console only (elog_stderr).
 */
export function createProbackupLogger(
  settings: LogSettings,
  io: { writeConsole: (text: string) => void; now: () => number; pid: number },
): ProbackupLogger {
  const { directory } = settings;
  const logFile: OpenedFile = { pattern: settings.filename, failed: false };
  const errorLogFile: OpenedFile | undefined =
    settings.errorFilename !== undefined
      ? { pattern: settings.errorFilename, failed: false }
      : undefined;

  const fieldsAt = (level: LogLevel, message: string, timeMs: number): LogLineFields => ({
    level,
    message,
    date: new Date(timeMs),
    pid: io.pid,
  });

  const warnConsole = (message: string) => {
    if (logLevelRank.WARNING < logLevelRank[settings.levelConsole]) return;
    io.writeConsole(
      formatConsoleLogLine(settings.formatConsole, fieldsAt('WARNING', message, io.now())),
    );
  };

  const appendTo = (file: OpenedFile, line: string, timeMs: number) => {
    if (file.failed || directory === undefined) return;
    if (file.fd === undefined) {
      try {
        file.fd = openLogFile(
          file.pattern,
          {
            directory,
            rotationSizeKb: settings.rotationSizeKb,
            rotationAgeMs: settings.rotationAgeMs,
          },
          timeMs,
          warnConsole,
        );
      } catch (error) {
        file.failed = true;
        throw error;
      }
    }
    try {
      writeSync(file.fd, line);
    } catch {
      // Like pg_probackup's unchecked fprintf: a full disk must not fail the backup being logged.
    }
  };

  const write = (level: LogLevel, message: string, timeMs: number, fileOnly: boolean) => {
    const fields = fieldsAt(level, message, timeMs);
    const fileLine = () => formatFileLogLine(settings.formatFile, fields);
    if (logLevelRank[level] >= logLevelRank[settings.levelFile])
      appendTo(logFile, fileLine(), timeMs);
    if (level === 'ERROR' && errorLogFile) appendTo(errorLogFile, fileLine(), timeMs);
    if (!fileOnly && logLevelRank[level] >= logLevelRank[settings.levelConsole])
      io.writeConsole(formatConsoleLogLine(settings.formatConsole, fields));
  };

  const logger = createLogger(
    (record) => write(record.level, record.message, record.timeMs, false),
    io.now,
  );
  return {
    ...logger,
    logToFileOnly: (level, message) => write(level, message, io.now(), true),
    close() {
      for (const file of [logFile, errorLogFile]) {
        if (file?.fd === undefined) continue;
        closeSync(file.fd);
        file.fd = undefined;
      }
    },
  };
}
