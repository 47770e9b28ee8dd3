/**
 * Progress and messages are events, never console prints (DESIGN.md): commands report through a
 * Logger; the CLI renders it as pg_probackup's `LEVEL: message` lines on stderr and in its log
 * files (core/log/), the API as job events.
 */
export type LogLevel = 'VERBOSE' | 'LOG' | 'INFO' | 'NOTICE' | 'WARNING' | 'ERROR';

export const logLevelRank: Record<LogLevel | 'OFF', number> = {
  VERBOSE: 0,
  LOG: 1,
  INFO: 2,
  NOTICE: 3,
  WARNING: 4,
  ERROR: 5,
  OFF: 6,
};

export interface LogRecord {
  level: LogLevel;
  message: string;
  timeMs: number;
}

export interface Logger {
  log(level: LogLevel, message: string): void;
  verbose(message: string): void;
  info(message: string): void;
  warning(message: string): void;
}

/** A Logger that hands every record, stamped by `now` (Unix ms), to one sink function. */
export function createLogger(
  sink: (record: LogRecord) => void,
  now: () => number = Date.now,
): Logger {
  const log = (level: LogLevel, message: string) => sink({ level, message, timeMs: now() });
  return {
    log,
    verbose: (message) => log('LOG', message),
    info: (message) => log('INFO', message),
    warning: (message) => log('WARNING', message),
  };
}

/** Collects records in memory; used by tests and by API jobs. */
export function createMemoryLogger(): Logger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  return Object.assign(
    createLogger((record) => records.push(record)),
    { records },
  );
}
