import { StrataError } from '../errors.js';

/**
 * The `key = value` text of `pg_probackup.conf` and `backup.control` (spec/catalog-format.md §3),
 * read as pg_probackup's configuration reader reads it.
 */

export interface KeyValueEntry {
  key: string;
  value: string;
  /** 1-based line number, for messages. */
  line: number;
}

/** C `isspace` in the "C" locale. */
function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f';
}

const keyTerminators = new Set(['=', '#', ' ', '\n', '\r', '\t', '\v']);
const unquotedValueTerminators = new Set(['#', '\n', '\r', '\t', '\v']);

function skipSpace(text: string, at: number): number {
  let i = at;
  while (i < text.length && isSpace(text[i])) i++;
  return i;
}

function syntaxError(line: string, fileName: string, lineNo: number): StrataError {
  return new StrataError(
    'format',
    `Syntax error in "${line}" (file "${fileName}", line ${lineNo})`,
  );
}

/**
 * Reads one value starting at `at`: single-quoted (a doubled `''` is one quote; an unterminated
 * quote runs to the end of the line, as pg_probackup accepts it) or unquoted up to `#`, tab, CR,
 * LF or VT (spaces kept).
 */
function readValue(line: string, at: number): { value: string; end: number } {
  if (line[at] === "'") {
    let value = '';
    let i = at + 1;
    while (i < line.length) {
      if (line[i] === "'") {
        if (line[i + 1] === "'") {
          value += "'";
          i += 2;
          continue;
        }
        return { value, end: i + 1 };
      }
      value += line[i];
      i++;
    }
    return { value, end: i };
  }
  let i = at;
  while (i < line.length && !unquotedValueTerminators.has(line[i]!)) i++;
  return { value: line.slice(at, i), end: i };
}

/** Parses the whole text; comments and blank lines are skipped, a malformed line is fatal. */
export function parseKeyValueText(text: string, fileName: string): KeyValueEntry[] {
  const entries: KeyValueEntry[] = [];
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((rawLine, index) => {
    const lineNo = index + 1;
    let end = rawLine.length;
    while (end > 0 && isSpace(rawLine[end - 1])) end--;
    const line = rawLine.slice(0, end);

    const keyStart = skipSpace(line, 0);
    let keyEnd = keyStart;
    while (keyEnd < line.length && !keyTerminators.has(line[keyEnd]!)) keyEnd++;
    if (keyEnd === keyStart) {
      if (line[keyStart] === '=') throw syntaxError(line, fileName, lineNo);
      return;
    }
    const key = line.slice(keyStart, keyEnd);
    const equals = skipSpace(line, keyEnd);
    if (line[equals] !== '=') throw syntaxError(line, fileName, lineNo);
    const { value, end: valueEnd } = readValue(line, skipSpace(line, equals + 1));
    const rest = skipSpace(line, valueEnd);
    if (rest < line.length && line[rest] !== '#') throw syntaxError(line, fileName, lineNo);
    entries.push({ key, value, line: lineNo });
  });
  return entries;
}

/** Key identity as pg_probackup compares keys: ASCII case-insensitive, `-`, `_` and space equal. */
export function normalizeKey(key: string): string {
  return key.replace(/[A-Z]/g, (ch) => ch.toLowerCase()).replace(/[-_ ]/g, '-');
}

/**
 * A value as Strata writes it: single-quoted, with embedded quotes doubled, when it contains a
 * space, `#`, tab, `=` or `'` (pg_probackup itself only quotes on a space and never doubles, which
 * corrupts values with quotes), or a vertical tab (which would end an unquoted value); verbatim
 * otherwise.
 */
export function quoteValue(value: string): string {
  if (/[ #\t='\v]/.test(value)) return `'${value.replace(/'/g, "''")}'`;
  return value;
}

/**
 * A value between single quotes, for the keys pg_probackup always writes quoted (times, IDs,
 * conninfo, note); a newline cannot be represented in a line-oriented file.
 */
export function singleQuoted(value: string, key: string): string {
  assertSingleLine(value, key);
  return `'${value.replace(/'/g, "''")}'`;
}

export function assertSingleLine(value: string, key: string): void {
  if (/[\n\r]/.test(value)) {
    throw new StrataError(
      'format',
      `Value of "${key}" contains a line break and cannot be written`,
    );
  }
}
