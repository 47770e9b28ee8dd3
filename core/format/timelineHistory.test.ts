import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { parseLsn } from './lsn.js';
import {
  formatTimelineHistory,
  isLsnOnTimelineHistory,
  parseTimelineHistory,
  timelineOfLsn,
} from './timelineHistory.js';
import type { TimelineHistoryEntry } from './timelineHistory.js';

/** 00000003.history as PostgreSQL writes it after two promotions. */
const historyOf3 =
  '1\t0/5000000\tno recovery target specified\n\n2\t0/90000A0\tat restore point "before_drop"\n';

const entriesOf3: TimelineHistoryEntry[] = [
  { timelineId: 1, switchLsn: parseLsn('0/5000000'), reason: 'no recovery target specified' },
  { timelineId: 2, switchLsn: parseLsn('0/90000A0'), reason: 'at restore point "before_drop"' },
];

function formatErrorOf(action: () => unknown): StrataError {
  try {
    action();
  } catch (error) {
    if (error instanceof StrataError) return error;
    throw error;
  }
  throw new Error('expected a StrataError');
}

describe('parseTimelineHistory', () => {
  it('reads the entries of a history file', () => {
    expect(parseTimelineHistory(historyOf3, 3)).toEqual(entriesOf3);
  });

  it('skips blank lines, comments and leading blanks and accepts CRLF', () => {
    const text = '# copied by hand\r\n\r\n  1\t0/5000000\tno recovery target specified\r\n';
    expect(parseTimelineHistory(text, 2)).toEqual([entriesOf3[0]]);
  });

  it('gives an empty history for an empty file', () => {
    expect(parseTimelineHistory('', 1)).toEqual([]);
  });

  it('accepts a line without a reason', () => {
    expect(parseTimelineHistory('1\t0/5000000\n', 2)).toEqual([
      { timelineId: 1, switchLsn: parseLsn('0/5000000'), reason: '' },
    ]);
  });

  it('names the file and line of a line without a numeric timeline ID', () => {
    const error = formatErrorOf(() =>
      parseTimelineHistory('1\t0/5000000\tok\nabc\t0/6000000\n', 3),
    );
    expect(error.code).toBe('format');
    expect(error.message).toBe(
      'Syntax error in timeline history file 00000003.history, line 2: "abc\t0/6000000". Expected a numeric timeline ID.',
    );
  });

  it('names the line of an entry without a switch point', () => {
    const error = formatErrorOf(() => parseTimelineHistory('\n\n1\tsoon\n', 2));
    expect(error.message).toMatch(
      /00000002\.history, line 3: "1\tsoon"\. Expected a write-ahead log switchpoint/,
    );
  });

  it('requires strictly increasing timeline IDs', () => {
    const error = formatErrorOf(() =>
      parseTimelineHistory('2\t0/5000000\tx\n2\t0/6000000\ty\n', 3),
    );
    expect(error.message).toMatch(/line 2: .*Timeline IDs must be in increasing sequence/);
  });

  it("requires timeline IDs below the file's own timeline", () => {
    const error = formatErrorOf(() =>
      parseTimelineHistory('1\t0/5000000\tx\n2\t0/6000000\ty\n', 2),
    );
    expect(error.message).toMatch(/less than the file's own timeline 2, found 2/);
  });
});

describe('formatTimelineHistory', () => {
  it('writes one tab-separated line per entry that parses back to the same entries', () => {
    const text = formatTimelineHistory(entriesOf3);
    expect(text).toBe(
      '1\t0/5000000\tno recovery target specified\n2\t0/90000A0\tat restore point "before_drop"\n',
    );
    expect(parseTimelineHistory(text, 3)).toEqual(entriesOf3);
  });
});

describe('timeline membership', () => {
  it('finds the timeline an LSN belongs to; a switch LSN belongs to the next timeline', () => {
    expect(timelineOfLsn(entriesOf3, 3, parseLsn('0/4FFFFFF'))).toBe(1);
    expect(timelineOfLsn(entriesOf3, 3, parseLsn('0/5000000'))).toBe(2);
    expect(timelineOfLsn(entriesOf3, 3, parseLsn('0/90000A0'))).toBe(3);
    expect(timelineOfLsn([], 1, parseLsn('5/0'))).toBe(1);
  });

  it('tells whether (tli, lsn) lies on the history, as pg_probackup satisfy_timeline() does', () => {
    expect(isLsnOnTimelineHistory(entriesOf3, 3, 3, parseLsn('9/0'))).toBe(true);
    expect(isLsnOnTimelineHistory(entriesOf3, 3, 1, parseLsn('0/5000000'))).toBe(true);
    expect(isLsnOnTimelineHistory(entriesOf3, 3, 1, parseLsn('0/5000001'))).toBe(false);
    expect(isLsnOnTimelineHistory(entriesOf3, 3, 2, parseLsn('0/7000000'))).toBe(true);
    expect(isLsnOnTimelineHistory(entriesOf3, 3, 4, parseLsn('0/1000000'))).toBe(false);
    expect(isLsnOnTimelineHistory([], 1, 2, parseLsn('0/1000000'))).toBe(false);
  });
});
