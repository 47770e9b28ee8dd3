import { StrataError } from '../errors.js';

/**
 * Backup IDs (spec/catalog-format.md §1.1): the backup's start time in Unix seconds, written in
 * base36 with upper-case digits and no padding. pg_probackup decodes them with C `strtoul(s, NULL,
 * 36)`, so decoding is case-insensitive and stops at the first character that is not a base36
 * digit; an ID that decodes to 0 is invalid.
 */

const base36Digit = /[0-9a-z]/i;

export function backupIdFromTime(startTimeSec: number): string {
  if (!Number.isSafeInteger(startTimeSec) || startTimeSec < 0) {
    throw new StrataError('internal', `Cannot make a backup ID from start time ${startTimeSec}`);
  }
  return startTimeSec.toString(36).toUpperCase();
}

/**
 * The start time a directory name or `parent-backup-id` value stands for, decoded as `strtoul`
 * does (leading blanks and a `+` skipped, trailing junk ignored); 0 when nothing decodes. Values
 * beyond 2^53 saturate, as strtoul saturates at ULONG_MAX.
 */
export function decodeBackupIdPrefix(text: string): number {
  let i = 0;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  if (text[i] === '+') i++;
  let value = 0n;
  let digits = 0;
  while (i < text.length && base36Digit.test(text[i]!)) {
    value = value * 36n + BigInt(parseInt(text[i]!, 36));
    i++;
    digits++;
  }
  if (digits === 0) return 0;
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** Start time of a user-given backup ID (`-i`); `Invalid backup-id "<s>"` when it decodes to 0. */
export function backupIdToTime(id: string): number {
  const startTimeSec = decodeBackupIdPrefix(id);
  if (startTimeSec === 0) throw new StrataError('usage', `Invalid backup-id "${id}"`);
  return startTimeSec;
}

/** Orders IDs by the start time they encode (a 7-character ID is newer than any 6-character one). */
export function compareBackupIds(a: string, b: string): number {
  return decodeBackupIdPrefix(a) - decodeBackupIdPrefix(b);
}
