import { StrataError } from '../errors.js';
import { parseCIntegerResult } from './units.js';

/**
 * The JSON-like lines of `backup_content.control` and `database_map`
 * (`{"name":"value", "name":"value"}`), scanned as pg_probackup's `get_control_value_str` does
 * (spec/catalog-format.md §6.3): names and values are double-quoted with no escapes, blanks are
 * allowed around `:` and after `,`, an unquoted letter where a name or value is expected is a
 * format error, and anything between a value and the next `,` is skipped (so the closing `}`
 * needs no special case). The first occurrence of a name wins.
 */

export interface ControlLineContext {
  path: string;
  /** 1-based line number. */
  line: number;
  text: string;
}

function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f';
}

function isAlpha(ch: string): boolean {
  return /^[A-Za-z]$/.test(ch);
}

export function badFormat(context: ControlLineContext): StrataError {
  return new StrataError(
    'format',
    `File "${context.path}" has invalid format in line ${context.line}: ${context.text}`,
  );
}

/** All `"name":"value"` pairs of one line. */
export function scanControlLine(context: ControlLineContext): Map<string, string> {
  const fields = new Map<string, string>();
  const text = context.text;
  const skipBlanks = (from: number): number => {
    let at = from;
    while (at < text.length && isSpace(text[at]!)) at++;
    return at;
  };
  let i = 0;
  while (i < text.length) {
    // pg_probackup refuses a letter where a quoted name should start.
    const ch = text[i]!;
    if (ch !== '"') {
      if (isAlpha(ch)) throw badFormat(context);
      i++;
      continue;
    }
    const nameEnd = text.indexOf('"', i + 1);
    if (nameEnd < 0) throw badFormat(context);
    const name = text.slice(i + 1, nameEnd);
    const colon = skipBlanks(nameEnd + 1);
    if (text[colon] !== ':') throw badFormat(context);
    const valueStart = skipBlanks(colon + 1);
    if (text[valueStart] !== '"') throw badFormat(context);
    const valueEnd = text.indexOf('"', valueStart + 1);
    if (valueEnd < 0) throw badFormat(context);
    if (!fields.has(name)) fields.set(name, text.slice(valueStart + 1, valueEnd));
    // Whatever follows the value up to the next comma (the closing brace) is skipped.
    const comma = text.indexOf(',', valueEnd + 1);
    if (comma < 0) break;
    i = comma + 1;
  }
  return fields;
}

/** A field pg_probackup requires: `Field "<name>" is not found in line N of file "<path>"`. */
export function requireField(
  fields: Map<string, string>,
  name: string,
  context: ControlLineContext,
): string {
  const value = fields.get(name);
  if (value === undefined) {
    throw new StrataError(
      'format',
      `Field "${name}" is not found in line ${context.line} of file "${context.path}": ${context.text}`,
    );
  }
  return value;
}

/**
 * A signed 64-bit integer field (C `strtol` base 0, no trailing junk). A value out of range is
 * undefined: pg_probackup then uses -1 (BYTES_INVALID) for a mandatory field and treats an
 * optional one as absent. Anything else unparsable is a format error.
 */
export function parseInt64Field(value: string, context: ControlLineContext): bigint | undefined {
  const parsed = parseCIntegerResult(value, 'int64');
  if ('value' in parsed) return parsed.value;
  if (parsed.error === 'range') return undefined;
  throw badFormat(context);
}
