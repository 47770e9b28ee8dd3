import type { LogFormat } from '../catalog/optionValues.js';
import type { LogLevel } from '../log.js';
import { formatStrftime } from './strftime.js';

/**
 * The lines pg_probackup's logger writes (logger.c, elog_internal), one per message:
 *
 * - plain file line: `2026-11-25 17:22:55 UTC [4242]: INFO: Backup T4K2ZC completed`;
 * - JSON (file or console): `{"ts": "…","pid": "4242","level": "INFO","msg": "…","my_thread_num": "[1-1]"}`,
 *   every value a string, keys written by json.c's json_add_key (`"key": ` after a bare comma).
 */

/** The time stamp of a log line: strftime `%Y-%m-%d %H:%M:%S %Z` in local time. */
export function logTimestamp(date: Date): string {
  return formatStrftime('%Y-%m-%d %H:%M:%S %Z', date);
}

/** json.c's json_add_escaped: the usual short escapes, other control bytes as \u00XX. */
function jsonString(text: string): string {
  let result = '"';
  for (const ch of text) {
    switch (ch) {
      case '\b':
        result += '\\b';
        break;
      case '\f':
        result += '\\f';
        break;
      case '\n':
        result += '\\n';
        break;
      case '\r':
        result += '\\r';
        break;
      case '\t':
        result += '\\t';
        break;
      case '"':
        result += '\\"';
        break;
      case '\\':
        result += '\\\\';
        break;
      default:
        result += ch < ' ' ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : ch;
    }
  }
  return `${result}"`;
}

export interface LogLineFields {
  level: LogLevel;
  message: string;
  date: Date;
  pid: number;
}

/**
 * `my_thread_num` is a thread-local that starts at 1 in every thread and is renumbered only by
 * archive-push/get and checkdb workers; Strata's workers report through the main thread.
 */
const THREAD_NUM = 1;

export function formatJsonLogLine({ level, message, date, pid }: LogLineFields): string {
  const fields: [string, string][] = [
    ['ts', logTimestamp(date)],
    ['pid', String(pid)],
    ['level', level],
    ['msg', message],
    ['my_thread_num', `[${THREAD_NUM}-1]`],
  ];
  return `{${fields.map(([key, value]) => `${jsonString(key)}: ${jsonString(value)}`).join(',')}}\n`;
}

/** A line of the log file or the error log file in `log-format-file`. */
export function formatFileLogLine(format: LogFormat, fields: LogLineFields): string {
  if (format === 'JSON') return formatJsonLogLine(fields);
  return `${logTimestamp(fields.date)} [${fields.pid}]: ${fields.level}: ${fields.message}\n`;
}

/** A stderr line in `log-format-console`: `LEVEL: message`, or the JSON object. */
export function formatConsoleLogLine(format: LogFormat, fields: LogLineFields): string {
  if (format === 'JSON') return formatJsonLogLine(fields);
  return `${fields.level}: ${fields.message}\n`;
}
