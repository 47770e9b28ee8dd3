import { afterEach, describe, expect, it } from 'vitest';
import { formatStrftime } from './strftime.js';
import { parsePosixZoneNames, timeZoneAbbreviation } from './timeZoneName.js';

const savedTz = process.env['TZ'];
afterEach(() => {
  process.env['TZ'] = savedTz;
});

function inZone(tz: string): void {
  process.env['TZ'] = tz;
}

const utc = (text: string) => new Date(`${text}Z`);

// Expected values were produced by glibc's `date +FORMAT` (strftime) for the same instants.
describe('strftime as glibc in the C locale', () => {
  it('expands every conversion of a Sunday afternoon like glibc', () => {
    inZone('UTC');
    const date = utc('2026-03-01T14:05:09');
    const pattern =
      '%a|%A|%b|%B|%c|%C|%d|%D|%e|%F|%g|%G|%h|%H|%I|%j|%k|%l|%m|%M|%p|%P|%r|%R|%s|%S|%T|%u|%U|%V|%w|%W|%x|%X|%y|%Y|%z|%Z|%%|%Ey|%Q';
    expect(formatStrftime(pattern, date)).toBe(
      'Sun|Sunday|Mar|March|Sun Mar  1 14:05:09 2026|20|01|03/01/26| 1|2026-03-01|26|2026|Mar|14|02|060|14| 2|03|05|PM|pm|02:05:09 PM|14:05|1772373909|09|14:05:09|7|09|09|0|08|03/01/26|14:05:09|26|2026|+0000|UTC|%|26|%Q',
    );
  });

  it('numbers ISO and calendar weeks at year boundaries', () => {
    inZone('UTC');
    expect(formatStrftime('%G-%V %g %U %W %j %u %w %I %l %p', utc('2027-01-01T00:30:00'))).toBe(
      '2026-53 26 00 00 001 5 5 12 12 AM',
    );
    expect(formatStrftime('%G-%V %U %W %j', utc('2024-12-30T23:59:59'))).toBe('2025-01 52 53 365');
  });

  it('names a log file by the local time of the zone in TZ', () => {
    inZone('Asia/Kolkata');
    expect(formatStrftime('pg_probackup-%Y-%m-%d_%H%M%S.log', utc('2026-01-15T12:00:00'))).toBe(
      'pg_probackup-2026-01-15_173000.log',
    );
    expect(formatStrftime('%z %Z', utc('2026-01-15T12:00:00'))).toBe('+0530 IST');
  });

  it('copies text without conversions, a trailing % and unknown conversions as written', () => {
    inZone('UTC');
    expect(formatStrftime('pg_probackup.log', new Date(0))).toBe('pg_probackup.log');
    expect(formatStrftime('a%', new Date(0))).toBe('a%');
    expect(formatStrftime('%q%Oq', new Date(0))).toBe('%q%Oq');
  });
});

describe('%Z time zone abbreviations as glibc reads the tz database', () => {
  const cases: [string, string, string][] = [
    ['Europe/Moscow', '2026-07-15T12:00:00', 'MSK'],
    ['Europe/Moscow', '1990-07-01T12:00:00', 'MSD'],
    ['Europe/Berlin', '2026-01-15T12:00:00', 'CET'],
    ['Europe/Berlin', '2026-07-15T12:00:00', 'CEST'],
    ['Europe/Berlin', '1990-07-01T12:00:00', 'CEST'],
    ['America/Sao_Paulo', '2026-01-15T12:00:00', '-03'],
    ['America/Sao_Paulo', '2018-01-15T12:00:00', '-02'],
    ['EST5EDT', '2026-07-15T12:00:00', 'EDT'],
    [':Europe/Berlin', '2026-01-15T12:00:00', 'CET'],
    ['UTC', '2026-01-15T12:00:00', 'UTC'],
  ];
  for (const [tz, instant, expected] of cases) {
    it(`TZ=${tz} at ${instant}Z is ${expected}`, () => {
      inZone(tz);
      expect(timeZoneAbbreviation(utc(instant), tz)).toBe(expected);
    });
  }

  it('an empty TZ is UTC; a TZ naming no zone file is read as a POSIX rule', () => {
    inZone('UTC');
    expect(timeZoneAbbreviation(utc('2026-01-15T12:00:00'), '')).toBe('UTC');
    expect(timeZoneAbbreviation(utc('2026-01-15T12:00:00'), 'Foo/Bar')).toBe('Foo');
  });

  it('reads the names and offsets of POSIX rules', () => {
    expect(parsePosixZoneNames('CET-1CEST,M3.5.0,M10.5.0/3')).toEqual({
      std: { name: 'CET', offsetSec: 3600 },
      dst: { name: 'CEST', offsetSec: 7200 },
    });
    expect(parsePosixZoneNames('<+0530>-5:30')).toEqual({
      std: { name: '+0530', offsetSec: 19800 },
    });
    expect(parsePosixZoneNames('NZST-12NZDT-13,M9.5.0,M4.1.0/3')).toEqual({
      std: { name: 'NZST', offsetSec: 43200 },
      dst: { name: 'NZDT', offsetSec: 46800 },
    });
    expect(parsePosixZoneNames('5')).toBeUndefined();
  });
});
