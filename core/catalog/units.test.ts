import { describe, expect, it } from 'vitest';
import { formatWithUnit, parseCInteger, parseCIntegerResult } from './units.js';

describe('parseCInteger', () => {
  it('reads decimal, 0x hex and leading-0 octal like strtol base 0', () => {
    expect(parseCInteger('300', 'uint32')).toBe(300n);
    expect(parseCInteger('0x1F', 'uint32')).toBe(31n);
    expect(parseCInteger('010', 'uint32')).toBe(8n);
    expect(parseCInteger('  42', 'uint32')).toBe(42n);
    expect(parseCInteger('-5', 'int64')).toBe(-5n);
    expect(parseCInteger('08', 'uint32')).toBeUndefined();
    expect(parseCInteger('42 ', 'uint32')).toBeUndefined();
    expect(parseCInteger('', 'uint32')).toBeUndefined();
  });

  it('maps INFINITE to the maximum of the type', () => {
    expect(parseCInteger('INFINITE', 'uint32')).toBe(4294967295n);
    expect(parseCInteger('INFINITE', 'uint64')).toBe(18446744073709551615n);
    expect(parseCInteger('INFINITE', 'int64')).toBe(9223372036854775807n);
  });

  it('checks ranges', () => {
    expect(parseCInteger('4294967295', 'uint32')).toBe(4294967295n);
    expect(parseCIntegerResult('4294967296', 'uint32')).toEqual({ error: 'range' });
    expect(parseCIntegerResult('-1', 'uint32')).toEqual({ error: 'range' });
    expect(parseCIntegerResult('9223372036854775808', 'int64')).toEqual({ error: 'range' });
    expect(parseCIntegerResult('12abc', 'int64')).toEqual({ error: 'syntax' });
    // strtoul negates in unsigned arithmetic, so pg_probackup accepts this for uint64.
    expect(parseCInteger('-1', 'uint64')).toBe(18446744073709551615n);
  });

  it('converts units to the base unit', () => {
    expect(parseCInteger('5min', 'uint32', 's')).toBe(300n);
    expect(parseCInteger('1h', 'uint32', 's')).toBe(3600n);
    expect(parseCInteger('2d', 'uint32', 's')).toBe(172800n);
    expect(parseCInteger('1500ms', 'uint32', 's')).toBe(1n);
    expect(parseCInteger(' 10 MB ', 'uint64', 'kB')).toBe(10240n);
    expect(parseCInteger('1TB', 'uint64', 'kB')).toBe(1073741824n);
    expect(parseCInteger('1KB', 'uint64', 'kB')).toBe(1n);
    expect(parseCInteger('1d', 'uint64', 'ms')).toBe(86400000n);
    expect(parseCInteger('300', 'uint32', 's')).toBe(300n);
  });

  it('rejects unknown units, units on unit-less options and overflow through a unit', () => {
    expect(parseCIntegerResult('5 years', 'uint32', 's')).toEqual({ error: 'syntax' });
    expect(parseCIntegerResult('5mb', 'uint64', 'kB')).toEqual({ error: 'syntax' });
    expect(parseCIntegerResult('5min', 'uint32')).toEqual({ error: 'syntax' });
    expect(parseCIntegerResult('5 min x', 'uint32', 's')).toEqual({ error: 'syntax' });
    expect(parseCIntegerResult('50000d', 'uint32', 's')).toEqual({ error: 'range' });
  });
});

describe('formatWithUnit', () => {
  it('uses the largest unit that divides the value exactly', () => {
    expect(formatWithUnit(300n, 's')).toBe('5min');
    expect(formatWithUnit(301n, 's')).toBe('301s');
    expect(formatWithUnit(7200n, 's')).toBe('2h');
    expect(formatWithUnit(86400n, 's')).toBe('1d');
    expect(formatWithUnit(0n, 's')).toBe('0d');
    expect(formatWithUnit(0n, 'ms')).toBe('0d');
    expect(formatWithUnit(1500n, 'ms')).toBe('1500ms');
    expect(formatWithUnit(0n, 'kB')).toBe('0TB');
    expect(formatWithUnit(10240n, 'kB')).toBe('10MB');
    expect(formatWithUnit(1025n, 'kB')).toBe('1025KB');
  });
});
