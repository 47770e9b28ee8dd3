import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProbackupLogger, defaultLogSettings, type LogSettings } from './probackupLogger.js';

const savedTz = process.env['TZ'];
let scratch: string;
let consoleLines: string[];
let clockMs: number;

beforeEach(() => {
  process.env['TZ'] = 'UTC';
  scratch = mkdtempSync(join(tmpdir(), 'strata-logger-'));
  consoleLines = [];
  clockMs = Date.UTC(2026, 10, 25, 17, 22, 55);
});

afterEach(() => {
  process.env['TZ'] = savedTz;
  rmSync(scratch, { recursive: true, force: true });
});

function logger(settings: Partial<LogSettings>) {
  return createProbackupLogger(
    { ...defaultLogSettings, directory: join(scratch, 'log'), ...settings },
    { writeConsole: (text) => consoleLines.push(text), now: () => clockMs, pid: 4242 },
  );
}

const read = (name: string) => readFileSync(join(scratch, 'log', name), 'utf8');

describe('the CLI logger: console, log file and error log file', () => {
  it('sends each message where its level reaches, file first, with the injected clock', () => {
    const log = logger({
      levelConsole: 'WARNING',
      levelFile: 'INFO',
      errorFilename: 'errors-%Y.log',
    });
    log.logToFileOnly('INFO', 'command: strata backup -B /c ');
    log.verbose('a LOG line');
    log.info('an INFO line');
    clockMs += 1000;
    log.warning('a WARNING line');
    log.log('ERROR', 'an ERROR line');
    log.close();
    expect(read('pg_probackup.log')).toBe(
      '2026-11-25 17:22:55 UTC [4242]: INFO: command: strata backup -B /c \n' +
        '2026-11-25 17:22:55 UTC [4242]: INFO: an INFO line\n' +
        '2026-11-25 17:22:56 UTC [4242]: WARNING: a WARNING line\n' +
        '2026-11-25 17:22:56 UTC [4242]: ERROR: an ERROR line\n',
    );
    expect(read('errors-2026.log')).toBe('2026-11-25 17:22:56 UTC [4242]: ERROR: an ERROR line\n');
    expect(read('pg_probackup.log.rotation')).toBe(
      String(Date.UTC(2026, 10, 25, 17, 22, 55) / 1000),
    );
    expect(consoleLines).toEqual(['WARNING: a WARNING line\n', 'ERROR: an ERROR line\n']);
  });

  it('level VERBOSE takes LOG lines; JSON file format writes one object per line', () => {
    const log = logger({ levelFile: 'VERBOSE', formatFile: 'JSON' });
    log.verbose('detail');
    log.close();
    expect(read('pg_probackup.log')).toBe(
      '{"ts": "2026-11-25 17:22:55 UTC","pid": "4242","level": "LOG","msg": "detail","my_thread_num": "[1-1]"}\n',
    );
    expect(consoleLines).toEqual([]);
  });

  it('with file logging off writes no log file, but the error log still gets ERROR lines', () => {
    const log = logger({ levelFile: 'OFF', errorFilename: 'errors.log' });
    log.info('console only');
    log.log('ERROR', 'failed');
    log.close();
    expect(existsSync(join(scratch, 'log', 'pg_probackup.log'))).toBe(false);
    expect(read('errors.log')).toBe('2026-11-25 17:22:55 UTC [4242]: ERROR: failed\n');
    expect(consoleLines).toEqual(['INFO: console only\n', 'ERROR: failed\n']);
  });

  it('without a log directory nothing goes to files', () => {
    const log = createProbackupLogger(
      { ...defaultLogSettings, levelFile: 'INFO', errorFilename: 'e.log' },
      { writeConsole: (text) => consoleLines.push(text), now: () => clockMs, pid: 1 },
    );
    log.log('ERROR', 'x');
    expect(consoleLines).toEqual(['ERROR: x\n']);
  });

  it('a log file that cannot be opened fails the logging call once, then the console goes on', () => {
    writeFileSync(join(scratch, 'log'), 'not a directory');
    const log = logger({ levelFile: 'INFO' });
    expect(() => log.info('first')).toThrow(
      `cannot stat log file "${join(scratch, 'log', 'pg_probackup.log')}": Not a directory`,
    );
    log.info('second');
    expect(consoleLines).toEqual(['INFO: second\n']);
  });

  it('rotation warnings go to the console only', () => {
    const settings = { levelFile: 'INFO' as const, rotationAgeMs: 60_000n };
    const first = logger(settings);
    first.info('one');
    first.close();
    rmSync(join(scratch, 'log', 'pg_probackup.log.rotation'));
    const second = logger(settings);
    second.info('two');
    second.close();
    const rotation = join(scratch, 'log', 'pg_probackup.log.rotation');
    expect(consoleLines).toEqual([
      'INFO: one\n',
      `WARNING: missing rotation file: "${rotation}"\n`,
      'INFO: two\n',
    ]);
    expect(read('pg_probackup.log')).not.toContain('missing rotation file');
  });
});
