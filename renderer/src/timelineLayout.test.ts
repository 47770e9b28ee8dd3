import { describe, expect, it } from 'vitest';
import {
  axisFraction,
  estimateTime,
  isReachable,
  layoutTimelines,
  lsnAtFraction,
  lsnTicks,
} from './timelineLayout.js';
import { sampleBackup, sampleTimeline } from './testing/sampleData.js';

const SEG = 16 << 20;

describe('layoutTimelines', () => {
  const full = sampleBackup({
    id: 'F',
    walMode: 'ARCHIVE',
    startLsn: '0/2000028',
    stopLsn: '0/2000138',
    startTime: 1000,
    recoveryTime: 1010,
  });
  const delta = sampleBackup({
    id: 'D',
    parentId: 'F',
    mode: 'DELTA',
    startLsn: '0/5000028',
    stopLsn: '0/5000100',
    startTime: 2000,
    recoveryTime: 2004,
  });
  const tl1 = sampleTimeline({
    tli: 1,
    beginLsn: '0/1000000',
    endLsn: '0/9000000',
    lostSegments: [{ begin: '000000010000000000000007', end: '000000010000000000000007' }],
    status: 'DEGRADED',
  });
  const tl2 = sampleTimeline({
    tli: 2,
    parentTli: 1,
    switchpoint: '0/4000100',
    minSegno: '000000020000000000000004',
    maxSegno: '000000020000000000000006',
    beginLsn: '0/4000000',
    endLsn: '0/7000000',
  });

  it('puts each timeline on its own lane and turns lost segment names into an LSN gap', () => {
    const picture = layoutTimelines([tl2, tl1], [full, delta], SEG);
    expect(picture.lanes.map((lane) => [lane.tli, lane.lane])).toEqual([
      [1, 0],
      [2, 1],
    ]);
    expect(picture.lanes[0]!.gaps).toEqual([{ begin: 0x7000000n, end: 0x8000000n }]);
    expect(picture.lanes[1]!.switchpoint).toBe(0x4000100n);
    expect(picture.axis).toEqual({ begin: 0x1000000n, end: 0x9000000n });
  });

  it('reaches from each valid backup up to the first gap, and into a child timeline from its switchpoint', () => {
    const picture = layoutTimelines([tl1, tl2], [full, delta], SEG);
    expect(picture.lanes[0]!.reachable).toEqual([{ begin: 0x2000138n, end: 0x7000000n }]);
    expect(picture.lanes[1]!.reachable).toEqual([{ begin: 0x4000100n, end: 0x7000000n }]);
    expect(isReachable(picture, 1, 0x6ffffffn)).toBe(true);
    expect(isReachable(picture, 1, 0x7800000n)).toBe(false);
    expect(isReachable(picture, 1, 0x2000000n)).toBe(false);
  });

  it('does not count ORPHAN or CORRUPT backups as a start for a restore', () => {
    const picture = layoutTimelines([tl1], [{ ...full, status: 'CORRUPT' }], SEG);
    expect(picture.lanes[0]!.reachable).toEqual([]);
  });

  it('lets a STREAM backup reach its own stop LSN even when the archive starts later', () => {
    const stream = sampleBackup({
      id: 'S',
      walMode: 'STREAM',
      startLsn: '0/800028',
      stopLsn: '0/1000200',
    });
    const picture = layoutTimelines([tl1], [stream], SEG);
    expect(picture.lanes[0]!.reachable).toEqual([{ begin: 0x1000200n, end: 0x7000000n }]);
    expect(picture.axis.begin).toBe(0x800028n);
  });

  it('interpolates a time between two backups and gives none beyond them', () => {
    const picture = layoutTimelines([tl1], [full, delta], SEG);
    const midway = (0x2000138n + 0x5000028n) / 2n;
    expect(estimateTime(picture, 1, midway)).toBe(1505);
    expect(estimateTime(picture, 1, 0x2000138n)).toBe(1010);
    expect(estimateTime(picture, 1, 0x8000000n)).toBeNull();
  });
});

describe('axis fractions', () => {
  it('maps LSNs above 2^53 without losing the position', () => {
    const axis = { begin: 0xfff0_0000_0000_0000n, end: 0xfff0_0000_1000_0000n };
    expect(axisFraction(axis, 0xfff0_0000_0800_0000n)).toBe(0.5);
    expect(lsnAtFraction(axis, 0.25)).toBe(0xfff0_0000_0400_0000n);
    expect(lsnAtFraction(axis, 2)).toBe(axis.end);
  });
});

describe('lsnTicks', () => {
  it('puts ticks on multiples of a power of two inside the axis', () => {
    expect(lsnTicks({ begin: 0x800000n, end: 0x1c00000n }, 6)).toEqual([
      0x800000n,
      0xc00000n,
      0x1000000n,
      0x1400000n,
      0x1800000n,
      0x1c00000n,
    ]);
    expect(lsnTicks({ begin: 0x1000028n, end: 0x1000100n }, 4)).toEqual([
      0x1000040n,
      0x1000080n,
      0x10000c0n,
      0x1000100n,
    ]);
  });
});
