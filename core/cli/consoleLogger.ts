import { createLogger, logLevelRank, type LogLevel, type Logger } from '../log.js';

export type ConsoleLevel = LogLevel | 'OFF';

const levelNames: ConsoleLevel[] = ['OFF', 'VERBOSE', 'LOG', 'INFO', 'NOTICE', 'WARNING', 'ERROR'];

/** `--log-level-console`: case-insensitive prefix match in pg_probackup's order (cli §1.3). */
export function parseConsoleLevel(text: string): ConsoleLevel | undefined {
  const wanted = text.toUpperCase();
  return levelNames.find((level) => level.startsWith(wanted) && wanted.length > 0);
}

/** pg_probackup's console format: `LEVEL: message` on stderr (cli §1.7). */
export function createConsoleLogger(
  threshold: ConsoleLevel,
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  return createLogger((record) => {
    if (logLevelRank[record.level] < logLevelRank[threshold]) return;
    write(`${record.level}: ${record.message}\n`);
  });
}
