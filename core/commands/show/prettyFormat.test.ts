import { describe, expect, it } from 'vitest';
import { formatFixed2, formatZratio, prettySize, prettyTimeInterval } from './prettyFormat.js';

describe('prettySize', () => {
  it('prints 0 for empty and unknown sizes', () => {
    expect(prettySize(0)).toBe('0');
    expect(prettySize(-1)).toBe('0');
  });

  it('prints bytes below 10240', () => {
    expect(prettySize(1)).toBe('1B');
    expect(prettySize(10239)).toBe('10239B');
  });

  it('switches to kB at 10240 and rounds halves up', () => {
    expect(prettySize(10240)).toBe('10kB');
    expect(prettySize(2357 * 1024)).toBe('2357kB');
    // 10751 >> 9 = 20 halves → 10kB; 10752 >> 9 = 21 halves → (21+1)/2 = 11kB
    expect(prettySize(10751)).toBe('10kB');
    expect(prettySize(10752)).toBe('11kB');
  });

  it('keeps kB up to 20478 halves, then MB, GB and TB', () => {
    // 20478 halves of a kB is the largest kB value: (20478+1)/2 = 10239kB
    expect(prettySize(20478 * 512)).toBe('10239kB');
    expect(prettySize(20479 * 512)).toBe('10MB');
    expect(prettySize(16 * 1024 * 1024)).toBe('16MB');
    expect(prettySize(13644328)).toBe('13MB');
    expect(prettySize(183707)).toBe('179kB');
    expect(prettySize(20 * 1024 ** 3)).toBe('20GB');
    expect(prettySize(5 * 1024 ** 4)).toBe('5120GB');
    expect(prettySize(20 * 1024 ** 4)).toBe('20TB');
  });
});

describe('prettyTimeInterval', () => {
  it('prints 0 for zero and negative durations', () => {
    expect(prettyTimeInterval(0)).toBe('0');
    expect(prettyTimeInterval(-5)).toBe('0');
  });

  it('prints the two largest units', () => {
    expect(prettyTimeInterval(11)).toBe('11s');
    expect(prettyTimeInterval(60)).toBe('1m:0s');
    expect(prettyTimeInterval(125)).toBe('2m:5s');
    expect(prettyTimeInterval(3600 + 61)).toBe('1h:1m');
    expect(prettyTimeInterval(2 * 86400 + 5 * 3600 + 59)).toBe('2d:5h');
  });

  it('prints milliseconds of fractional durations', () => {
    expect(prettyTimeInterval(0.25)).toBe('250ms');
    expect(prettyTimeInterval(3.5)).toBe('3s:500ms');
  });
});

describe('formatFixed2', () => {
  it('rounds exact binary ties to even like printf %.2f', () => {
    expect(formatFixed2(1.125)).toBe('1.12');
    expect(formatFixed2(1.375)).toBe('1.38');
    expect(formatFixed2(0.625)).toBe('0.62');
    expect(formatFixed2(2.875)).toBe('2.88');
  });

  it('rounds other values to nearest', () => {
    expect(formatFixed2(1)).toBe('1.00');
    expect(formatFixed2(2.923)).toBe('2.92');
    expect(formatFixed2(1.406)).toBe('1.41');
  });
});

describe('formatZratio', () => {
  it('divides in single precision and falls back to 1.00', () => {
    expect(formatZratio(39885762, 13644328)).toBe('2.92');
    expect(formatZratio(1543523, 1100153)).toBe('1.40');
    expect(formatZratio(183651, 183707)).toBe('1.00');
    expect(formatZratio(0, 100)).toBe('1.00');
    expect(formatZratio(100, -1)).toBe('1.00');
  });
});
