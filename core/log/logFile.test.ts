import {
  closeSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError } from '../errors.js';
import { openLogFile, type LogFileSettings } from './logFile.js';

const savedTz = process.env['TZ'];
let scratch: string;
let directory: string;
let warnings: string[];
const T0_SEC = Date.UTC(2026, 10, 25, 12) / 1000;

beforeEach(() => {
  process.env['TZ'] = 'UTC';
  scratch = mkdtempSync(join(tmpdir(), 'strata-log-file-'));
  directory = join(scratch, 'log');
  warnings = [];
});

afterEach(() => {
  process.env['TZ'] = savedTz;
  rmSync(scratch, { recursive: true, force: true });
});

function settings(rotation: Partial<LogFileSettings> = {}): LogFileSettings {
  return { directory, rotationSizeKb: 0n, rotationAgeMs: 0n, ...rotation };
}

/** Opens the log at `atSec`, appends `text`, closes it. */
function writeLog(atSec: number, text: string, rotation: Partial<LogFileSettings> = {}): void {
  const fd = openLogFile('pg_probackup.log', settings(rotation), atSec * 1000, (message) =>
    warnings.push(message),
  );
  writeSync(fd, text);
  closeSync(fd);
}

const logPath = () => join(directory, 'pg_probackup.log');
const rotationPath = () => `${logPath()}.rotation`;
const logText = () => readFileSync(logPath(), 'utf8');
const rotationText = () => readFileSync(rotationPath(), 'utf8');

describe('opening the log file with pg_probackup rotation rules', () => {
  it('creates the directory (0700), the file and a .rotation file holding the creation second', () => {
    writeLog(T0_SEC, 'one\n');
    expect(statSync(directory).mode & 0o777).toBe(0o700);
    expect(logText()).toBe('one\n');
    expect(rotationText()).toBe(String(T0_SEC));
    expect(warnings).toEqual([]);
  });

  it('names the file by strftime at the moment it is opened', () => {
    const fd = openLogFile('pg_probackup-%Y%m%d-%H.log', settings(), T0_SEC * 1000, () => {});
    closeSync(fd);
    expect(existsSync(join(directory, 'pg_probackup-20261125-12.log'))).toBe(true);
    expect(readFileSync(join(directory, 'pg_probackup-20261125-12.log.rotation'), 'utf8')).toBe(
      String(T0_SEC),
    );
  });

  it('appends without rotation, rewriting .rotation each time as pg_probackup does', () => {
    writeLog(T0_SEC, 'one\n');
    writeLog(T0_SEC + 3600, 'two\n');
    expect(logText()).toBe('one\ntwo\n');
    // Without an age limit the .rotation file is never read, so it counts as invalid: rewritten.
    expect(rotationText()).toBe(String(T0_SEC + 3600));
  });

  it('rotates by size once the file reaches log-rotation-size', () => {
    const rotation = { rotationSizeKb: 1n };
    writeLog(T0_SEC, 'x'.repeat(1023), rotation);
    writeLog(T0_SEC + 1, 'y', rotation);
    expect(logText()).toBe(`${'x'.repeat(1023)}y`);
    writeLog(T0_SEC + 2, 'z', rotation);
    expect(logText()).toBe('z');
    expect(rotationText()).toBe(String(T0_SEC + 2));
  });

  it('rotates by age only when more than log-rotation-age has passed since .rotation', () => {
    const rotation = { rotationAgeMs: 60_000n };
    writeLog(T0_SEC, 'one\n', rotation);
    writeLog(T0_SEC + 60, 'two\n', rotation);
    expect(logText()).toBe('one\ntwo\n');
    expect(rotationText()).toBe(String(T0_SEC));
    writeLog(T0_SEC + 61, 'three\n', rotation);
    expect(logText()).toBe('three\n');
    expect(rotationText()).toBe(String(T0_SEC + 61));
    expect(warnings).toEqual([]);
  });

  it('a .rotation time in the future rotates (C compares it as unsigned)', () => {
    const rotation = { rotationAgeMs: 86_400_000n };
    writeLog(T0_SEC, 'one\n', rotation);
    writeFileSync(rotationPath(), String(T0_SEC + 10));
    writeLog(T0_SEC + 5, 'two\n', rotation);
    expect(logText()).toBe('two\n');
  });

  it('warns about a missing, garbled or empty .rotation file and recreates it', () => {
    const rotation = { rotationAgeMs: 1000n };
    writeLog(T0_SEC, 'one\n', rotation);
    rmSync(rotationPath());
    writeLog(T0_SEC + 100, 'two\n', rotation);
    expect(logText()).toBe('one\ntwo\n');
    expect(rotationText()).toBe(String(T0_SEC + 100));

    writeFileSync(rotationPath(), 'yesterday');
    writeLog(T0_SEC + 200, 'three\n', rotation);
    writeFileSync(rotationPath(), '');
    writeLog(T0_SEC + 300, 'four\n', rotation);
    expect(logText()).toBe('one\ntwo\nthree\nfour\n');
    expect(rotationText()).toBe(String(T0_SEC + 300));
    expect(warnings).toEqual([
      `missing rotation file: "${rotationPath()}"`,
      `rotation file "${rotationPath()}" has wrong creation timestamp "yesterday"`,
      `cannot read creation timestamp from rotation file "${rotationPath()}"`,
    ]);
  });

  it('a log file that cannot be opened is an error naming it', () => {
    const nested = {
      directory: join(scratch, 'missing', 'log'),
      rotationSizeKb: 0n,
      rotationAgeMs: 0n,
    };
    let caught: unknown;
    try {
      openLogFile('pg_probackup.log', nested, T0_SEC * 1000, () => {});
    } catch (error) {
      caught = error;
    }
    expect(isStrataError(caught) && caught.message).toBe(
      `could not open log file "${join(nested.directory, 'pg_probackup.log')}": No such file or directory`,
    );
  });
});
