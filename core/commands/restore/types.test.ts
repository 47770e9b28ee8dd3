import { describe, expect, it } from 'vitest';
import { StrataError } from '../../errors.js';
import { parseRecoveryTargetValue, validateRecoveryTargetOptions } from './types.js';

const AT_MOST_ONE =
  "At most one of '--recovery-target', '--recovery-target-name', '--recovery-target-time', " +
  "'--recovery-target-xid' or '--recovery-target-lsn' options can be specified";

function messageOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return (error as StrataError).message;
  }
  throw new Error('expected an error');
}

describe('validateRecoveryTargetOptions', () => {
  it('parses each kind of target into the values used to choose a backup', () => {
    expect(validateRecoveryTargetOptions({ time: '2026-11-24 22:14:06+00' })).toEqual({
      time: Date.UTC(2026, 10, 24, 22, 14, 6) / 1000,
    });
    expect(validateRecoveryTargetOptions({ xid: '0x2D9' })).toEqual({ xid: 729n });
    expect(validateRecoveryTargetOptions({ lsn: '0/19000B8' })).toEqual({ lsn: 0x19000b8n });
    expect(validateRecoveryTargetOptions({ name: 'before-drop', timeline: '3' })).toEqual({
      timelineId: 3,
    });
    expect(validateRecoveryTargetOptions({ latest: true, timeline: 'latest' })).toEqual({});
    expect(validateRecoveryTargetOptions({})).toEqual({});
  });

  it('reads a time without offset as local time', () => {
    const previous = process.env.TZ;
    process.env.TZ = 'Asia/Kolkata';
    try {
      expect(validateRecoveryTargetOptions({ time: '2026-11-25 03:44:06' }).time).toBe(
        Date.UTC(2026, 10, 24, 22, 14, 6) / 1000,
      );
    } finally {
      if (previous === undefined) delete process.env.TZ;
      else process.env.TZ = previous;
    }
  });

  it('allows at most one target', () => {
    expect(messageOf(() => validateRecoveryTargetOptions({ xid: '5', lsn: '0/1' }))).toBe(
      AT_MOST_ONE,
    );
    expect(messageOf(() => validateRecoveryTargetOptions({ immediate: true, name: 'x' }))).toBe(
      AT_MOST_ONE,
    );
    expect(messageOf(() => validateRecoveryTargetOptions({ immediate: true, latest: true }))).toBe(
      AT_MOST_ONE,
    );
  });

  it('allows --recovery-target-inclusive=true only with time, xid or lsn', () => {
    expect(messageOf(() => validateRecoveryTargetOptions({ name: 'x', inclusive: true }))).toBe(
      "The '--recovery-target-inclusive' option can be applied only when either of " +
        "'--recovery-target-time', '--recovery-target-xid' or '--recovery-target-lsn' options is specified",
    );
    expect(validateRecoveryTargetOptions({ inclusive: false })).toEqual({});
    expect(validateRecoveryTargetOptions({ xid: '7', inclusive: true })).toEqual({ xid: 7n });
  });

  it('allows --recovery-target-action only with a target', () => {
    expect(
      messageOf(() => validateRecoveryTargetOptions({ action: 'promote', timeline: '2' })),
    ).toBe(
      "The '--recovery-target-action' option can be applied only when either of '--recovery-target', " +
        "'--recovery-target-time', '--recovery-target-xid', '--recovery-target-lsn' or " +
        "'--recovery-target-name' options is specified",
    );
    expect(validateRecoveryTargetOptions({ immediate: true, action: 'promote' })).toEqual({});
  });

  it('rejects malformed values with pg_probackup messages', () => {
    expect(messageOf(() => validateRecoveryTargetOptions({ lsn: '0/XYZ' }))).toBe(
      'Invalid LSN "0/XYZ"',
    );
    expect(messageOf(() => validateRecoveryTargetOptions({ time: 'yesterday' }))).toBe(
      "Invalid value for '--recovery-target-time' option 'yesterday'",
    );
    expect(messageOf(() => validateRecoveryTargetOptions({ xid: '4294967296' }))).toBe(
      "Invalid value for '--recovery-target-xid' option '4294967296'",
    );
    expect(messageOf(() => validateRecoveryTargetOptions({ timeline: '0' }))).toBe(
      "Invalid value for '--recovery-target-timeline' option '0'",
    );
    expect(messageOf(() => validateRecoveryTargetOptions({ timeline: 'newest' }))).toBe(
      "Invalid value for '--recovery-target-timeline' option 'newest'",
    );
    const action = 'stop' as 'pause';
    expect(messageOf(() => validateRecoveryTargetOptions({ name: 'x', action }))).toBe(
      "Invalid value for '--recovery-target-action' option 'stop'",
    );
  });
});

describe('parseRecoveryTargetValue', () => {
  it('accepts exactly immediate and latest', () => {
    expect(parseRecoveryTargetValue('immediate')).toEqual({ immediate: true });
    expect(parseRecoveryTargetValue('latest')).toEqual({ latest: true });
    expect(messageOf(() => parseRecoveryTargetValue('Latest'))).toBe(
      "Invalid value for '--recovery-target' option 'Latest'",
    );
  });
});
