import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { StrataError } from '../errors.js';
import { parseCInteger } from '../catalog/units.js';
import { formatStrftime } from './strftime.js';

/**
 * Opening a log file the way pg_probackup does (logger.c, open_logfile): the name is a strftime
 * pattern under the log directory, and the file is rotated — reopened empty — when it is older
 * than `log-rotation-age` or at least `log-rotation-size`. Its age is the creation time recorded
 * in the sibling `<file>.rotation` (Unix seconds, no newline), because file systems keep no
 * reliable birth time.
 */

export interface LogFileSettings {
  directory: string;
  /** `log-rotation-size`, kB; 0 disables rotation by size. */
  rotationSizeKb: bigint;
  /** `log-rotation-age`, ms; 0 disables rotation by age. */
  rotationAgeMs: bigint;
}

/** strerror texts for the errno codes a log file open can meet; others keep Node's text. */
const strerrorTexts: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
};

function strerror(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return (code && strerrorTexts[code]) || (error as Error).message;
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** logfile_getname: `<directory>/<strftime(pattern)>`; an empty expansion is strftime failing. */
export function logFilePath(directory: string, pattern: string, date: Date): string {
  const name = formatStrftime(pattern, date);
  if (name === '') throw new StrataError('config', `strftime(${pattern}) failed: Success`);
  return `${directory}/${name}`;
}

/**
 * The creation time a `.rotation` file records, as pg_probackup reads it: its first line (fgets:
 * up to and including a newline) through parse_int64, which wants the whole text to be a number.
 */
function readRotationTime(
  controlPath: string,
  warn: (message: string) => void,
): bigint | undefined {
  let text: string;
  try {
    text = readFileSync(controlPath, 'latin1');
  } catch (error) {
    throw new StrataError('io', `cannot open rotation file "${controlPath}": ${strerror(error)}`);
  }
  const newline = text.indexOf('\n');
  const firstLine = newline < 0 ? text.slice(0, 1023) : text.slice(0, Math.min(newline + 1, 1023));
  if (firstLine === '') {
    warn(`cannot read creation timestamp from rotation file "${controlPath}"`);
    return undefined;
  }
  const creationSec = parseCInteger(firstLine, 'int64');
  if (creationSec === undefined) {
    warn(`rotation file "${controlPath}" has wrong creation timestamp "${firstLine}"`);
    return undefined;
  }
  return creationSec;
}

/**
 * Whether an existing log file must be rotated now. The age check runs first; a missing or
 * unreadable `.rotation` file only warns (it is rewritten after opening).
 */
function rotationDue(
  sizeBytes: number,
  controlPath: string,
  settings: LogFileSettings,
  nowSec: number,
  warn: (message: string) => void,
): { rotate: boolean; controlValid: boolean } {
  let rotate = false;
  let controlValid = false;
  if (settings.rotationAgeMs > 0n) {
    let controlExists = true;
    try {
      statSync(controlPath);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') {
        throw new StrataError(
          'io',
          `cannot stat rotation file "${controlPath}": ${strerror(error)}`,
        );
      }
      warn(`missing rotation file: "${controlPath}"`);
      controlExists = false;
    }
    if (controlExists) {
      const creationSec = readRotationTime(controlPath, warn);
      if (creationSec !== undefined) {
        controlValid = true;
        // C compares the signed time_t difference with the uint64 age after the usual
        // arithmetic conversions, so a creation time in the future also rotates.
        const elapsedSec = BigInt.asUintN(64, BigInt(nowSec) - creationSec);
        rotate = elapsedSec > settings.rotationAgeMs / 1000n;
      }
    }
  }
  if (!rotate && settings.rotationSizeKb > 0n) {
    rotate = BigInt(sizeBytes) >= settings.rotationSizeKb * 1024n;
  }
  return { rotate, controlValid };
}

/**
 * Opens (creating the log directory, one level, mode 0700) the log file `pattern` names at
 * `nowMs` for appending, or truncated when rotation is due, and rewrites its `.rotation` file
 * when the file is new, was rotated, or had no valid creation time. Returns the descriptor.
 * Problems with the file are errors; problems with the `.rotation` file go to `warn`. Files get
 * fopen's mode (0666 less the umask), as pg_probackup's do.
 */
export function openLogFile(
  pattern: string,
  settings: LogFileSettings,
  nowMs: number,
  warn: (message: string) => void,
): number {
  const nowSec = Math.floor(nowMs / 1000);
  const path = logFilePath(settings.directory, pattern, new Date(nowMs));
  const controlPath = `${path}.rotation`;
  let sizeBytes: number | undefined;
  try {
    sizeBytes = statSync(path).size;
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT')
      throw new StrataError('io', `cannot stat log file "${path}": ${strerror(error)}`);
  }
  const exists = sizeBytes !== undefined;
  let rotate = false;
  let controlValid = false;
  if (sizeBytes !== undefined && (settings.rotationSizeKb > 0n || settings.rotationAgeMs > 0n)) {
    ({ rotate, controlValid } = rotationDue(sizeBytes, controlPath, settings, nowSec, warn));
  }
  try {
    mkdirSync(settings.directory, { mode: 0o700 });
  } catch {
    // pg_probackup ignores this mkdir's failure: an existing directory is the usual case, and
    // any other problem shows when the file itself is opened.
  }
  let fd: number;
  try {
    fd = openSync(path, rotate ? 'w' : 'a');
  } catch (error) {
    throw new StrataError('io', `could not open log file "${path}": ${strerror(error)}`);
  }
  if (rotate || !exists || !controlValid) {
    let controlFd: number;
    try {
      controlFd = openSync(controlPath, 'w');
    } catch (error) {
      closeSync(fd);
      throw new StrataError('io', `cannot open rotation file "${controlPath}": ${strerror(error)}`);
    }
    writeSync(controlFd, String(nowSec));
    closeSync(controlFd);
  }
  return fd;
}
