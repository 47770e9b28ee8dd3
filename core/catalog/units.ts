/**
 * Integer option values as pg_probackup parses and prints them (spec/catalog-format.md §3, §4.2;
 * spec/cli-behaviour.md §1.3): C `strtol`/`strtoul` with base 0 (decimal, `0x` hex, leading-`0`
 * octal), the literal `INFINITE` for the type's maximum, and for options with a unit an optional
 * unit suffix converted to the option's base unit.
 */

export type OptionUnit = 's' | 'ms' | 'kB';
export type IntegerKind = 'int32' | 'uint32' | 'int64' | 'uint64';

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

export const integerLimits: Record<IntegerKind, { min: bigint; max: bigint }> = {
  int32: { min: -(1n << 31n), max: (1n << 31n) - 1n },
  uint32: { min: 0n, max: (1n << 32n) - 1n },
  int64: { min: INT64_MIN, max: INT64_MAX },
  uint64: { min: 0n, max: UINT64_MAX },
};

/**
 * Unit → base-unit multipliers, largest unit first (pg_probackup's tables, from PostgreSQL's
 * guc.c). A negative multiplier divides. Printing picks the first unit that divides the value
 * exactly, which is why 1 kB prints as `1KB` (the `KB` row precedes `kB`) and 0 as `0d` / `0TB`.
 */
const unitTables: Record<OptionUnit, ReadonlyArray<{ unit: string; multiplier: bigint }>> = {
  s: [
    { unit: 'd', multiplier: 86400n },
    { unit: 'h', multiplier: 3600n },
    { unit: 'min', multiplier: 60n },
    { unit: 's', multiplier: 1n },
    { unit: 'ms', multiplier: -1000n },
  ],
  ms: [
    { unit: 'd', multiplier: 86400000n },
    { unit: 'h', multiplier: 3600000n },
    { unit: 'min', multiplier: 60000n },
    { unit: 's', multiplier: 1000n },
    { unit: 'ms', multiplier: 1n },
  ],
  kB: [
    { unit: 'TB', multiplier: 1024n * 1024n * 1024n },
    { unit: 'GB', multiplier: 1024n * 1024n },
    { unit: 'MB', multiplier: 1024n },
    { unit: 'KB', multiplier: 1n },
    { unit: 'kB', multiplier: 1n },
  ],
};

/** The longest unit name pg_probackup reads (MAX_UNIT_LEN). */
const MAX_UNIT_LENGTH = 3;

function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f';
}

function digitValue(ch: string | undefined): number {
  if (ch === undefined) return 99;
  const code = ch.toLowerCase().charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 122) return code - 87;
  return 99;
}

/**
 * C `strtol` (signed) or `strtoul` (unsigned) with base 0. `end === 0` when nothing was converted.
 * strtoul negates a `-` value in unsigned arithmetic; both report ERANGE as `overflow`.
 */
function scanCInteger(
  text: string,
  signed: boolean,
): { value: bigint; end: number; overflow: boolean } {
  let i = 0;
  while (isSpace(text[i])) i++;
  let negative = false;
  if (text[i] === '+' || text[i] === '-') {
    negative = text[i] === '-';
    i++;
  }
  let base = 10n;
  if (
    text[i] === '0' &&
    (text[i + 1] === 'x' || text[i + 1] === 'X') &&
    digitValue(text[i + 2]) < 16
  ) {
    base = 16n;
    i += 2;
  } else if (text[i] === '0') {
    base = 8n;
  }
  const digitsStart = i;
  let magnitude = 0n;
  while (i < text.length && digitValue(text[i]) < Number(base)) {
    magnitude = magnitude * base + BigInt(digitValue(text[i]));
    i++;
  }
  if (i === digitsStart) return { value: 0n, end: 0, overflow: false };
  if (signed) {
    const value = negative ? -magnitude : magnitude;
    return { value, end: i, overflow: value < INT64_MIN || value > INT64_MAX };
  }
  const overflow = magnitude > UINT64_MAX;
  return {
    value: negative ? (UINT64_MAX + 1n - magnitude) & UINT64_MAX : magnitude,
    end: i,
    overflow,
  };
}

function convertToBaseUnit(
  value: bigint,
  unitName: string,
  unit: OptionUnit,
  max: bigint,
): bigint | undefined {
  const row = unitTables[unit].find((entry) => entry.unit === unitName);
  if (!row) return undefined;
  if (row.multiplier < 0n) return value / -row.multiplier;
  if (value > max / row.multiplier) return undefined;
  return value * row.multiplier;
}

/**
 * Parses an integer value as pg_probackup's `parse_int32/uint32/int64/uint64` do: `range` when
 * the number (or the number times its unit) does not fit the type, `syntax` for no digits, junk
 * after the number or an unknown unit.
 */
export function parseCIntegerResult(
  text: string,
  kind: IntegerKind,
  unit?: OptionUnit,
): { value: bigint } | { error: 'syntax' | 'range' } {
  const limits = integerLimits[kind];
  if (text === 'INFINITE') return { value: limits.max };
  const signed = kind === 'int32' || kind === 'int64';
  const scanned = scanCInteger(text, signed);
  if (scanned.end === 0) return { error: 'syntax' };
  let rest = scanned.end;
  if (rest < text.length && unit === undefined) return { error: 'syntax' };
  if (scanned.overflow) return { error: 'range' };
  let value = scanned.value;
  const is32 = kind === 'int32' || kind === 'uint32';
  if (is32 && (value < limits.min || value > limits.max)) return { error: 'range' };

  while (isSpace(text[rest])) rest++;
  if (rest < text.length && unit !== undefined) {
    let unitName = '';
    while (rest < text.length && !isSpace(text[rest]) && unitName.length < MAX_UNIT_LENGTH) {
      unitName += text[rest];
      rest++;
    }
    while (isSpace(text[rest])) rest++;
    if (rest < text.length) return { error: 'syntax' };
    const converted = convertToBaseUnit(value, unitName, unit, signed ? INT64_MAX : UINT64_MAX);
    if (converted === undefined)
      return { error: unitTables[unit].some((row) => row.unit === unitName) ? 'range' : 'syntax' };
    value = converted;
  }
  if (is32 && (value < limits.min || value > limits.max)) return { error: 'range' };
  return { value };
}

/** The value, or undefined where pg_probackup rejects the text (see `parseCIntegerResult`). */
export function parseCInteger(
  text: string,
  kind: IntegerKind,
  unit?: OptionUnit,
): bigint | undefined {
  const result = parseCIntegerResult(text, kind, unit);
  return 'value' in result ? result.value : undefined;
}

/** The value in the largest unit that represents it exactly, without a space: `5min`, `10MB`, `0d`. */
export function formatWithUnit(value: bigint, unit: OptionUnit): string {
  // Every table has a row with multiplier 1, so a dividing row always exists; the dividing
  // (negative-multiplier) rows come after it and are never chosen.
  const row = unitTables[unit].find(
    (entry) => entry.multiplier > 0n && value % entry.multiplier === 0n,
  )!;
  return `${value / row.multiplier}${row.unit}`;
}
