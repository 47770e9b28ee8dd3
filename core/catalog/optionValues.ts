import { StrataError } from '../errors.js';
import { COMPRESS_LEVEL_RANGES } from '../format/compression.js';
import type { BackupMode, CompressAlgorithm } from './types.js';

/**
 * pg_probackup's readers for its enum-like values (spec/cli-behaviour.md §1.3): leading blanks
 * are skipped, then the text must be a case-insensitive prefix of a name, names tried in
 * pg_probackup's order (so `o` is OFF, `p` is PAGE or pglz).
 */

export type LogLevelName = 'OFF' | 'VERBOSE' | 'LOG' | 'INFO' | 'NOTICE' | 'WARNING' | 'ERROR';
export type LogFormat = 'PLAIN' | 'JSON';

const logLevels: readonly LogLevelName[] = [
  'OFF',
  'VERBOSE',
  'LOG',
  'INFO',
  'NOTICE',
  'WARNING',
  'ERROR',
];
const logFormats: readonly LogFormat[] = ['PLAIN', 'JSON'];
/**
 * pg_probackup's names in its order (so `z` stays zlib), then Strata's own: `l` is lz4, `zs` zstd.
 */
const compressAlgorithms: readonly CompressAlgorithm[] = ['zlib', 'pglz', 'none', 'lz4', 'zstd'];
const backupModes: readonly BackupMode[] = ['FULL', 'PAGE', 'PTRACK', 'DELTA'];

/** '' when the text is blank, undefined when it matches no candidate. */
function matchPrefix<T extends string>(text: string, candidates: readonly T[]): T | '' | undefined {
  const trimmed = text.replace(/^[ \t\n\r\v\f]+/, '');
  if (trimmed === '') return '';
  const lower = trimmed.toLowerCase();
  return candidates.find((candidate) => candidate.toLowerCase().startsWith(lower));
}

export function parseLogLevel(text: string): LogLevelName {
  const level = matchPrefix(text, logLevels);
  if (level === '') throw new StrataError('usage', 'log-level is empty');
  if (level === undefined) throw new StrataError('usage', `invalid log-level "${text}"`);
  return level;
}

export function parseLogFormat(text: string): LogFormat {
  const format = matchPrefix(text, logFormats);
  if (format === '') throw new StrataError('usage', 'log-format is empty');
  if (format === undefined) throw new StrataError('usage', `invalid log-format "${text}"`);
  return format;
}

export function parseCompressAlgorithm(text: string): CompressAlgorithm {
  const algorithm = matchPrefix(text, compressAlgorithms);
  if (algorithm === '') throw new StrataError('usage', 'Compress algorithm is empty');
  if (algorithm === undefined)
    throw new StrataError('usage', `Invalid compress algorithm value "${text}"`);
  return algorithm;
}

/**
 * `--compress-level` for an algorithm: 0..9 as pg_probackup for zlib, pglz and none (and lz4,
 * which ignores it), 1..19 for zstd. Without a known algorithm any level some algorithm accepts
 * passes; the caller checks again once the instance configuration has supplied the algorithm.
 */
export function checkCompressLevel(algorithm: CompressAlgorithm | undefined, level: number): void {
  const ranges = algorithm
    ? [COMPRESS_LEVEL_RANGES[algorithm]]
    : Object.values(COMPRESS_LEVEL_RANGES);
  if (ranges.some((range) => level >= range.min && level <= range.max)) return;
  if (algorithm === 'zstd') {
    const { min, max } = COMPRESS_LEVEL_RANGES.zstd;
    throw new StrataError(
      'usage',
      `--compress-level value must be in the range from ${min} to ${max} for zstd`,
    );
  }
  if (algorithm === undefined && level > COMPRESS_LEVEL_RANGES.zlib.max) {
    throw new StrataError(
      'usage',
      `--compress-level value must be in the range from 0 to 9 (1 to ${COMPRESS_LEVEL_RANGES.zstd.max} for zstd)`,
    );
  }
  throw new StrataError('usage', '--compress-level value must be in the range from 0 to 9');
}

export function parseBackupMode(text: string): BackupMode {
  const mode = matchPrefix(text, backupModes);
  if (mode === '' || mode === undefined)
    throw new StrataError('usage', `Invalid backup-mode "${text}"`);
  return mode;
}

/**
 * pg_probackup's boolean reader: true/false/yes/no/on/off/1/0 and unique case-insensitive
 * prefixes (a lone `o` is ambiguous); undefined when not a boolean.
 */
export function parseBool(text: string): boolean | undefined {
  const lower = text.toLowerCase();
  if (lower === '') return undefined;
  if ('true'.startsWith(lower)) return true;
  if ('false'.startsWith(lower)) return false;
  if ('yes'.startsWith(lower)) return true;
  if ('no'.startsWith(lower)) return false;
  if (lower.length >= 2 && 'on'.startsWith(lower)) return true;
  if (lower.length >= 2 && 'off'.startsWith(lower)) return false;
  if (lower === '1') return true;
  if (lower === '0') return false;
  return undefined;
}
