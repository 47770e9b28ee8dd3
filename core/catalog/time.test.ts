import { afterEach, describe, expect, it } from 'vitest';
import { formatLocalTime, formatUtcTime, parseProbackupTime } from './time.js';

const originalTz = process.env.TZ;

afterEach(() => {
  if (originalTz === undefined) delete process.env.TZ;
  else process.env.TZ = originalTz;
});

const utc = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) =>
  Date.UTC(y, mo - 1, d, h, mi, s) / 1000;

describe('parseProbackupTime', () => {
  it('reads the UTC form pg_probackup 2.4.6+ writes', () => {
    expect(parseProbackupTime('2024-05-02 08:19:26+00', 'utc')).toBe(utc(2024, 5, 2, 8, 19, 26));
  });

  it.each([
    ['2020-05-01 14:03:11+03', utc(2020, 5, 1, 11, 3, 11)],
    ['2020-05-01 14:03:11-05', utc(2020, 5, 1, 19, 3, 11)],
    ['2020-05-01 14:03:11+05:30', utc(2020, 5, 1, 8, 33, 11)],
    ['2020-05-01 14:03:11+0530', utc(2020, 5, 1, 8, 33, 11)],
    ['2020-05-01 14:03:11+05:30:15', utc(2020, 5, 1, 8, 32, 56)],
    ['2020-05-01 14:03:11 +03', utc(2020, 5, 1, 11, 3, 11)],
  ])('applies the offset of %s', (text, expected) => {
    expect(parseProbackupTime(text, 'utc')).toBe(expected);
    expect(parseProbackupTime(text, 'local')).toBe(expected);
  });

  it('accepts any separator, short fields and two-digit years', () => {
    expect(parseProbackupTime('2024/05/02T08.19.26', 'utc')).toBe(utc(2024, 5, 2));
    expect(parseProbackupTime('2024/05/02 08.19.26', 'utc')).toBe(utc(2024, 5, 2, 8, 19, 26));
    expect(parseProbackupTime('24-5-2 8:1', 'utc')).toBe(utc(2024, 5, 2, 8, 1));
    expect(parseProbackupTime('2024-05-02', 'utc')).toBe(utc(2024, 5, 2));
    expect(parseProbackupTime('20240502', 'utc')).toBe(utc(2024, 5, 2));
  });

  it('reads a time without offset as local time for the command line', () => {
    process.env.TZ = 'Asia/Kolkata';
    expect(parseProbackupTime('2024-05-02 08:19:26', 'local')).toBe(utc(2024, 5, 2, 2, 49, 26));
    expect(parseProbackupTime('2024-05-02 08:19:26', 'utc')).toBe(utc(2024, 5, 2, 8, 19, 26));
  });

  it.each([
    '',
    'yesterday',
    '2024-05',
    '2024-05-02 08:19:26.5',
    '2024-05-02 08:19:26+16',
    '2024-05-02 08:19:26+03:60',
    '2024-05-02 08:19:26+xx',
    '2024-05-02 08:19:26 junk',
  ])('rejects %j', (text) => {
    expect(parseProbackupTime(text, 'utc')).toBeNull();
  });
});

describe('formatting', () => {
  it('writes UTC with +00', () => {
    expect(formatUtcTime(utc(2024, 5, 2, 8, 19, 26))).toBe('2024-05-02 08:19:26+00');
    expect(formatUtcTime(utc(2026, 11, 24, 22, 13, 54))).toBe('2026-11-24 22:13:54+00');
  });

  it('writes local time with the offset as show prints it', () => {
    const sec = utc(2024, 5, 2, 8, 19, 26);
    process.env.TZ = 'Europe/Moscow';
    expect(formatLocalTime(sec)).toBe('2024-05-02 11:19:26+03');
    process.env.TZ = 'America/New_York';
    expect(formatLocalTime(sec)).toBe('2024-05-02 04:19:26-04');
    expect(formatLocalTime(utc(2024, 1, 2, 8, 19, 26))).toBe('2024-01-02 03:19:26-05');
    process.env.TZ = 'Asia/Kolkata';
    expect(formatLocalTime(sec)).toBe('2024-05-02 13:49:26+05:30');
    process.env.TZ = 'America/St_Johns';
    expect(formatLocalTime(utc(2024, 1, 2, 8, 19, 26))).toBe('2024-01-02 04:49:26-03:30');
    process.env.TZ = 'UTC';
    expect(formatLocalTime(sec)).toBe('2024-05-02 08:19:26+00');
  });

  it('round-trips through the reader', () => {
    process.env.TZ = 'Australia/Adelaide';
    const sec = utc(2023, 12, 31, 23, 59, 59);
    expect(parseProbackupTime(formatLocalTime(sec), 'utc')).toBe(sec);
    expect(parseProbackupTime(formatUtcTime(sec), 'local')).toBe(sec);
  });
});
