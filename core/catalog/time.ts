/**
 * Timestamps as pg_probackup reads and writes them (spec/catalog-format.md §5.3,
 * spec/cli-behaviour.md §1.3). Values are Unix seconds.
 */

const SECONDS_PER_MINUTE = 60;
const SECONDS_PER_HOUR = 3600;
/** PostgreSQL's MAX_TZDISP_HOUR (datatype/timestamp.h): the largest accepted offset in hours. */
const MAX_TZ_DISPLACEMENT_HOURS = 15;

function isAsciiAlnum(ch: string): boolean {
  return /^[0-9A-Za-z]$/.test(ch);
}

function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f';
}

/** C `strtol(s, &end, 10)` from `at`: `end === at` when no digits were read. */
function strtol10(text: string, at: number): { value: number; end: number } {
  let i = at;
  while (isSpace(text[i])) i++;
  let sign = 1;
  if (text[i] === '+' || text[i] === '-') {
    if (text[i] === '-') sign = -1;
    i++;
  }
  const digitsStart = i;
  while (i < text.length && text[i]! >= '0' && text[i]! <= '9') i++;
  if (i === digitsStart) return { value: 0, end: at };
  return { value: sign * Number(text.slice(digitsStart, i)), end: i };
}

/**
 * C `sscanf(fields, "%04d %02d %02d %02d %02d %02d%1s")` on a string of ASCII letters, digits and
 * spaces: the number of conversions made (7 means junk followed the seconds, -1 empty input).
 */
function scanDateFields(fields: string): { count: number; values: number[] } {
  const widths = [4, 2, 2, 2, 2, 2];
  const values: number[] = [];
  let i = 0;
  for (const width of widths) {
    while (isSpace(fields[i])) i++;
    if (i >= fields.length) return { count: values.length === 0 ? -1 : values.length, values };
    const start = i;
    while (i < fields.length && i - start < width && fields[i]! >= '0' && fields[i]! <= '9') i++;
    if (i === start) return { count: values.length, values };
    values.push(Number(fields.slice(start, i)));
  }
  while (isSpace(fields[i])) i++;
  return { count: i < fields.length ? 7 : 6, values };
}

/**
 * Parses a timestamp the way pg_probackup's `parse_time` does: every non-alphanumeric character
 * among the first six fields is a separator; after six fields a `+`/`-` starts an offset `HH`,
 * `HH:MM`, `HH:MM:SS` or `HHMM` (so an offset is only recognised after the seconds); at least
 * year, month and day; two-digit years are 20YY. Without an offset the time is UTC for values
 * read from files (`defaultZone = 'utc'`) and local time (process TZ) for the command line.
 * Returns null when pg_probackup would reject the text.
 */
export function parseProbackupTime(text: string, defaultZone: 'utc' | 'local'): number | null {
  let fields = '';
  let fieldCount = 1;
  let offsetSec = 0;
  let offsetGiven = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (isAsciiAlnum(ch)) {
      fields += ch;
      i++;
    } else if (fieldCount < 6) {
      fieldCount++;
      fields += ' ';
      i++;
    } else if ((ch === '-' || ch === '+') && fieldCount === 6) {
      const hours = strtol10(text, i + 1);
      if (hours.end === i + 1) return null;
      let hr = hours.value;
      let min = 0;
      let sec = 0;
      let cursor = hours.end;
      if (text[cursor] === ':') {
        const minutes = strtol10(text, cursor + 1);
        min = minutes.value;
        cursor = minutes.end;
        if (text[cursor] === ':') {
          const seconds = strtol10(text, cursor + 1);
          sec = seconds.value;
          cursor = seconds.end;
        }
      } else if (cursor === text.length && text.length - i > 3) {
        min = hr % 100;
        hr = Math.trunc(hr / 100);
      }
      if (hr < 0 || hr > MAX_TZ_DISPLACEMENT_HOURS) return null;
      if (min < 0 || min >= 60) return null;
      if (sec < 0 || sec >= 60) return null;
      offsetSec = (hr * 60 + min) * 60 + sec;
      if (ch === '-') offsetSec = -offsetSec;
      offsetGiven = true;
      fieldCount++;
      i = cursor;
    } else if (!isSpace(ch)) {
      return null;
    } else {
      i++;
    }
  }

  const { count, values } = scanDateFields(fields);
  if (count < 3 || count > 6) return null;
  const [rawYear = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0] = values;
  let year = rawYear;
  if (year < 100) year += 2000;
  else if (year < 1900) year += 1900;

  if (offsetGiven || defaultZone === 'utc') {
    return Date.UTC(year, month - 1, day, hour, minute, second) / 1000 - offsetSec;
  }
  return new Date(year, month - 1, day, hour, minute, second).getTime() / 1000;
}

function pad2(value: number): string {
  return String(value).padStart(2, '0');
}

/** `YYYY-MM-DD HH:MM:SS+00`, the form pg_probackup ≥ 2.4.6 writes into backup.control. */
export function formatUtcTime(sec: number): string {
  const date = new Date(sec * 1000);
  return (
    `${date.getUTCFullYear()}-${pad2(date.getUTCMonth() + 1)}-${pad2(date.getUTCDate())} ` +
    `${pad2(date.getUTCHours())}:${pad2(date.getUTCMinutes())}:${pad2(date.getUTCSeconds())}+00`
  );
}

/**
 * Local time (process TZ) with its UTC offset as `+HH`, or `+HH:MM` when the offset is not whole
 * hours — what `show` prints and what `backup.control` held before 2.4.6.
 */
export function formatLocalTime(sec: number): string {
  const date = new Date(sec * 1000);
  const offsetSec = -date.getTimezoneOffset() * SECONDS_PER_MINUTE;
  const absOffset = Math.abs(offsetSec);
  let offset = `${offsetSec >= 0 ? '+' : '-'}${pad2(Math.floor(absOffset / SECONDS_PER_HOUR))}`;
  if (absOffset % SECONDS_PER_HOUR !== 0) {
    offset += `:${pad2(Math.floor((absOffset % SECONDS_PER_HOUR) / SECONDS_PER_MINUTE))}`;
  }
  return (
    `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}${offset}`
  );
}
