import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { normalizeKey, parseKeyValueText, quoteValue } from './keyValue.js';

function parse(text: string) {
  return parseKeyValueText(text, '/cat/pg_probackup.conf').map(({ key, value, line }) => [
    key,
    value,
    line,
  ]);
}

function syntaxErrorOf(text: string): StrataError {
  try {
    parseKeyValueText(text, '/cat/pg_probackup.conf');
  } catch (error) {
    if (error instanceof StrataError) return error;
    throw error;
  }
  throw new Error('expected a syntax error');
}

describe('parseKeyValueText', () => {
  it('reads unquoted and quoted values, skipping comments and blank lines', () => {
    const text = [
      '# Backup instance information',
      '',
      'pgdata = /var/lib/pg data',
      "note = 'it''s # not a comment'",
      '  compress-level=9   # trailing comment',
      "restore-command = ''",
      '\t#indented comment',
      "unterminated = 'runs to the end",
      "trailing = 'x'   ",
    ].join('\n');
    expect(parse(text)).toEqual([
      ['pgdata', '/var/lib/pg data', 3],
      ['note', "it's # not a comment", 4],
      ['compress-level', '9   ', 5],
      ['restore-command', '', 6],
      ['unterminated', 'runs to the end', 8],
      ['trailing', 'x', 9],
    ]);
  });

  it('ends an unquoted value at a tab or CR', () => {
    expect(parse('a = b\r\nc = d\t# comment\n')).toEqual([
      ['a', 'b', 1],
      ['c', 'd', 2],
    ]);
  });

  it.each([
    [
      'a key without a value',
      'pgdata',
      'Syntax error in "pgdata" (file "/cat/pg_probackup.conf", line 1)',
    ],
    [
      'a value without a key',
      '# ok\n = INFINITE',
      'Syntax error in " = INFINITE" (file "/cat/pg_probackup.conf", line 2)',
    ],
    [
      'junk after a quoted value',
      "a = 'b' c",
      `Syntax error in "a = 'b' c" (file "/cat/pg_probackup.conf", line 1)`,
    ],
    [
      'a comment where = belongs',
      'a # = b',
      'Syntax error in "a # = b" (file "/cat/pg_probackup.conf", line 1)',
    ],
    [
      'text after a tab in a value',
      'a = b\tc',
      'Syntax error in "a = b\tc" (file "/cat/pg_probackup.conf", line 1)',
    ],
  ])('rejects %s naming the file and line', (_what, text, message) => {
    const error = syntaxErrorOf(text);
    expect(error.code).toBe('format');
    expect(error.message).toBe(message);
  });
});

describe('normalizeKey', () => {
  it('treats case, -, _ and space alike', () => {
    expect(normalizeKey('Primary_ConnInfo')).toBe(normalizeKey('primary-conninfo'));
    expect(normalizeKey('LOG LEVEL-file')).toBe('log-level-file');
    expect(normalizeKey('pgdata')).not.toBe(normalizeKey('pgdatabase'));
  });
});

describe('quoteValue', () => {
  it('quotes only values that need it and doubles embedded quotes', () => {
    expect(quoteValue('/var/lib/pgdata')).toBe('/var/lib/pgdata');
    expect(quoteValue('5min')).toBe('5min');
    expect(quoteValue('-o Port=22')).toBe("'-o Port=22'");
    expect(quoteValue('a#b')).toBe("'a#b'");
    expect(quoteValue('a\tb')).toBe("'a\tb'");
    expect(quoteValue('k=v')).toBe("'k=v'");
    expect(quoteValue("it's")).toBe("'it''s'");
  });

  it('round-trips through the reader', () => {
    for (const value of ["it's a 'test'", 'x = y # z', 'tab\there', 'plain']) {
      const [entry] = parseKeyValueText(`k = ${quoteValue(value)}\n`, 'f');
      expect(entry!.value).toBe(value);
    }
  });
});
