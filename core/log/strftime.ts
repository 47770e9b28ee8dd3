import { timeZoneAbbreviation } from './timeZoneName.js';

/**
 * C `strftime` in the C locale over local time, as pg_probackup applies it to `log-filename` and
 * `error-log-filename` (logger.c, logfile_getname) and to the time stamp of file log lines.
 * glibc's conversions are covered; the E and O modifiers change nothing in the C locale, and an
 * unknown conversion is copied as written, as glibc does.
 */

const weekdayNames = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const monthNames = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

const pad = (value: number, width: number, fill = '0') => String(value).padStart(width, fill);

function dayOfYear(date: Date): number {
  const start = Date.UTC(date.getFullYear(), 0, 1);
  const today = Date.UTC(date.getFullYear(), date.getMonth(), date.getDate());
  return Math.round((today - start) / 86_400_000);
}

/** ISO 8601 week-based year and week number (`%G`, `%V`): weeks start on Monday, week 1 holds Jan 4. */
function isoWeek(date: Date): { year: number; week: number } {
  const thursday = new Date(Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()));
  thursday.setUTCDate(thursday.getUTCDate() + 3 - ((date.getDay() + 6) % 7));
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000)) + 1;
  return { year, week };
}

function utcOffset(date: Date): string {
  const offsetMin = -date.getTimezoneOffset();
  const abs = Math.abs(offsetMin);
  return `${offsetMin < 0 ? '-' : '+'}${pad(Math.floor(abs / 60), 2)}${pad(abs % 60, 2)}`;
}

function conversion(letter: string, date: Date): string | undefined {
  const hour12 = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
  switch (letter) {
    case 'a':
      return weekdayNames[date.getDay()]!.slice(0, 3);
    case 'A':
      return weekdayNames[date.getDay()]!;
    case 'b':
    case 'h':
      return monthNames[date.getMonth()]!.slice(0, 3);
    case 'B':
      return monthNames[date.getMonth()]!;
    case 'c':
      return formatStrftime('%a %b %e %H:%M:%S %Y', date);
    case 'C':
      return pad(Math.floor(date.getFullYear() / 100), 2);
    case 'd':
      return pad(date.getDate(), 2);
    case 'D':
    case 'x':
      return formatStrftime('%m/%d/%y', date);
    case 'e':
      return pad(date.getDate(), 2, ' ');
    case 'F':
      return formatStrftime('%Y-%m-%d', date);
    case 'g':
      return pad(isoWeek(date).year % 100, 2);
    case 'G':
      return String(isoWeek(date).year);
    case 'H':
      return pad(date.getHours(), 2);
    case 'I':
      return pad(hour12, 2);
    case 'j':
      return pad(dayOfYear(date) + 1, 3);
    case 'k':
      return pad(date.getHours(), 2, ' ');
    case 'l':
      return pad(hour12, 2, ' ');
    case 'm':
      return pad(date.getMonth() + 1, 2);
    case 'M':
      return pad(date.getMinutes(), 2);
    case 'n':
      return '\n';
    case 'p':
      return date.getHours() < 12 ? 'AM' : 'PM';
    case 'P':
      return date.getHours() < 12 ? 'am' : 'pm';
    case 'r':
      return formatStrftime('%I:%M:%S %p', date);
    case 'R':
      return formatStrftime('%H:%M', date);
    case 's':
      return String(Math.floor(date.getTime() / 1000));
    case 'S':
      return pad(date.getSeconds(), 2);
    case 't':
      return '\t';
    case 'T':
    case 'X':
      return formatStrftime('%H:%M:%S', date);
    case 'u':
      return String(date.getDay() === 0 ? 7 : date.getDay());
    case 'U':
      return pad(Math.floor((dayOfYear(date) + 7 - date.getDay()) / 7), 2);
    case 'V':
      return pad(isoWeek(date).week, 2);
    case 'w':
      return String(date.getDay());
    case 'W':
      return pad(Math.floor((dayOfYear(date) + 7 - ((date.getDay() + 6) % 7)) / 7), 2);
    case 'y':
      return pad(date.getFullYear() % 100, 2);
    case 'Y':
      return String(date.getFullYear());
    case 'z':
      return utcOffset(date);
    case 'Z':
      return timeZoneAbbreviation(date);
    case '%':
      return '%';
    default:
      return undefined;
  }
}

/** `strftime(pattern)` for `date` in the process's local time zone (TZ). */
export function formatStrftime(pattern: string, date: Date): string {
  let result = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch !== '%' || i + 1 >= pattern.length) {
      result += ch;
      continue;
    }
    let at = i + 1;
    if ((pattern[at] === 'E' || pattern[at] === 'O') && at + 1 < pattern.length) at++;
    const converted = conversion(pattern[at]!, date);
    if (converted === undefined) {
      result += pattern.slice(i, at + 1);
    } else {
      result += converted;
    }
    i = at;
  }
  return result;
}
