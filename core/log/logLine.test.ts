import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatConsoleLogLine, formatFileLogLine, formatJsonLogLine } from './logLine.js';

const savedTz = process.env['TZ'];
beforeEach(() => {
  process.env['TZ'] = 'Europe/Moscow';
});
afterEach(() => {
  process.env['TZ'] = savedTz;
});

const date = new Date('2026-11-25T17:22:55Z');

describe('log lines in pg_probackup formats', () => {
  it('plain file line: local time with zone name, [pid], level, message', () => {
    expect(
      formatFileLogLine('PLAIN', {
        level: 'INFO',
        message: 'Backup T4K2ZC completed',
        date,
        pid: 4242,
      }),
    ).toBe('2026-11-25 20:22:55 MSK [4242]: INFO: Backup T4K2ZC completed\n');
  });

  it('JSON line: json.c key layout, string values, thread [1-1]', () => {
    const line = formatJsonLogLine({ level: 'WARNING', message: 'disk low', date, pid: 7 });
    expect(line).toBe(
      '{"ts": "2026-11-25 20:22:55 MSK","pid": "7","level": "WARNING","msg": "disk low","my_thread_num": "[1-1]"}\n',
    );
    expect(formatFileLogLine('JSON', { level: 'WARNING', message: 'disk low', date, pid: 7 })).toBe(
      line,
    );
  });

  it('JSON escapes quotes, backslashes and control characters as json_add_escaped', () => {
    const message = 'file "a\\b"\tline1\nline2\r\u0001\u007f é';
    const line = formatJsonLogLine({ level: 'ERROR', message, date, pid: 1 });
    expect(line).toContain('"msg": "file \\"a\\\\b\\"\\tline1\\nline2\\r\\u0001\u007f é"');
    expect(JSON.parse(line)).toEqual({
      ts: '2026-11-25 20:22:55 MSK',
      pid: '1',
      level: 'ERROR',
      msg: message,
      my_thread_num: '[1-1]',
    });
  });

  it('console lines stay `LEVEL: message` in plain format', () => {
    expect(formatConsoleLogLine('PLAIN', { level: 'LOG', message: 'x', date, pid: 1 })).toBe(
      'LOG: x\n',
    );
    expect(formatConsoleLogLine('JSON', { level: 'LOG', message: 'x', date, pid: 1 })).toContain(
      '"level": "LOG"',
    );
  });
});
