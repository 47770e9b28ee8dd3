import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../lsn.js';
import {
  loadRealWal,
  memorySource,
  readAllRecords,
  realWalMajors,
  segnoOfName,
} from './fixtures/realWal.js';
import { XLOG_BLCKSZ } from './walPage.js';
import type { DecodedWalRecord } from './walRecord.js';
import { WalReader } from './walReader.js';
import {
  findRecordAtOrAfter,
  findRecoveryTime,
  readWalRange,
  scanRecoveryTarget,
  timestampTzToUnixSeconds,
} from './walScan.js';
import {
  isXlogSwitch,
  parseRestorePoint,
  parseXactCompletion,
  walRecordTimestampTz,
} from './walXact.js';

/**
 * Whole Unix seconds of a `YYYY-MM-DD HH:MM:SS.ffffff+00` text, computed without the code under
 * test.
 */
function wholeSecondsOf(utcText: string): number {
  return Math.floor(Date.parse(utcText.replace(' ', 'T').replace('+00', 'Z')) / 1000);
}

describe('timestampTzToUnixSeconds', () => {
  it('counts from 2000-01-01 UTC and keeps microseconds', () => {
    expect(timestampTzToUnixSeconds(0n)).toBe(946_684_800);
    expect(timestampTzToUnixSeconds(-946_684_800_000_000n)).toBe(0);
    expect(timestampTzToUnixSeconds(848_931_761_940_584n)).toBeCloseTo(1_795_616_561.940584, 6);
  });
});

describe.each(realWalMajors)(
  'WAL scans on PostgreSQL %i (fixtures from a real server)',
  (major) => {
    const wal = loadRealWal(major);
    const { manifest } = wal;
    const segmentSizeBytes = manifest.walSegmentSizeBytes;
    const segmentSize = BigInt(segmentSizeBytes);
    const startLsn = parseLsn(manifest.startLsn);
    const source = memorySource(wal.segments);
    let allRecords: Promise<DecodedWalRecord[]> | undefined;
    const records = () =>
      (allRecords ??= readAllRecords(
        new WalReader({
          source: memorySource(wal.segments),
          timelineId: 1,
          walSegmentSizeBytes: segmentSizeBytes,
        }),
        startLsn,
      ).then((all) => all.records));
    const completionRecord = async (xid: number) =>
      (await records()).find((record) => parseXactCompletion(record, major)?.xid === xid)!;
    const withoutSegment = (segno: bigint) => {
      const segments = new Map(wal.segments);
      segments.delete(segno);
      return segments;
    };

    describe('findRecoveryTime', () => {
      it('is the time of a commit at the stop LSN', async () => {
        const commit = await completionRecord(manifest.commit.xid);
        expect(await findRecoveryTime(source, 1, segmentSizeBytes, startLsn, commit.lsn)).toBe(
          wholeSecondsOf(manifest.commit.timestampUtc),
        );
      });

      it('is the time of a restore point, and of a two-phase commit, when those are the last in range', async () => {
        const restorePoint = (await records()).find(
          (record) => parseRestorePoint(record) !== undefined,
        )!;
        const rpTime = await findRecoveryTime(
          source,
          1,
          segmentSizeBytes,
          startLsn,
          restorePoint.lsn,
        );
        expect(rpTime).toBe(
          Number(parseRestorePoint(restorePoint)!.timeTz / 1_000_000n) + 946_684_800,
        );
        expect(rpTime).toBeLessThanOrEqual(wholeSecondsOf(manifest.commit.timestampUtc));
        const twoPhase = await completionRecord(manifest.twoPhase.xid);
        const afterTwoPhase = (await records()).find((record) => record.lsn > twoPhase.lsn)!;
        expect(
          await findRecoveryTime(source, 1, segmentSizeBytes, startLsn, afterTwoPhase.lsn),
        ).toBe(wholeSecondsOf(manifest.twoPhase.timestampUtc));
      });

      it('is undefined when no record in the range has a time', async () => {
        const first = (await records())[0]!;
        expect(walRecordTimestampTz(first)).toBeUndefined();
        expect(
          await findRecoveryTime(source, 1, segmentSizeBytes, startLsn, first.lsn),
        ).toBeUndefined();
      });

      it('reads the range forward when the stop LSN is a page boundary inside a record', async () => {
        const all = await records();
        const twoPhase = await completionRecord(manifest.twoPhase.xid);
        const filler = all.find(
          (record) => record.lsn > twoPhase.lsn && record.totalLength > 3 * XLOG_BLCKSZ,
        )!;
        const boundary = (filler.lsn / BigInt(XLOG_BLCKSZ) + 2n) * BigInt(XLOG_BLCKSZ);
        const timed = all.filter(
          (record) => record.lsn <= boundary && walRecordTimestampTz(record) !== undefined,
        );
        expect(timed.at(-1)).toBe(twoPhase);
        expect(await findRecoveryTime(source, 1, segmentSizeBytes, startLsn, boundary)).toBe(
          wholeSecondsOf(manifest.twoPhase.timestampUtc),
        );
      });

      it('walks back from the stop record and reads only the segments it needs', async () => {
        const all = await records();
        const switchRecord = all.find(isXlogSwitch)!;
        const lastTimed = all
          .filter(
            (record) =>
              record.lsn <= switchRecord.lsn && walRecordTimestampTz(record) !== undefined,
          )
          .at(-1)!;
        expect(lastTimed.lsn / segmentSize).toBe(switchRecord.lsn / segmentSize);
        const firstSegno = startLsn / segmentSize;
        const tail = memorySource(withoutSegment(firstSegno));
        const expected = Number(walRecordTimestampTz(lastTimed)! / 1_000_000n) + 946_684_800;
        expect(await findRecoveryTime(tail, 1, segmentSizeBytes, startLsn, switchRecord.lsn)).toBe(
          expected,
        );
        expect(tail.reads).not.toContain(firstSegno);
      });
    });

    describe('readWalRange', () => {
      it('succeeds up to a stop record, and up to a stop LSN inside a record', async () => {
        const all = await records();
        const switchRecord = all.find(isXlogSwitch)!;
        expect(await readWalRange(source, 1, segmentSizeBytes, startLsn, switchRecord.lsn)).toEqual(
          { ok: true, lastRecordEnd: switchRecord.endLsn },
        );
        const commit = await completionRecord(manifest.commit.xid);
        expect(await readWalRange(source, 1, segmentSizeBytes, startLsn, commit.lsn + 8n)).toEqual({
          ok: true,
          lastRecordEnd: commit.endLsn,
        });
      });

      it('fails where WAL ends before the stop LSN', async () => {
        const last = (await records()).at(-1)!;
        expect(
          await readWalRange(source, 1, segmentSizeBytes, startLsn, last.endLsn + 100n),
        ).toEqual({
          ok: false,
          reachedLsn: last.endLsn,
          reason: `invalid record length at ${formatLsn(last.endLsn)}: expected at least 24, got 0`,
        });
      });

      it('fails on a missing segment, naming it', async () => {
        const middleName = manifest.segments[1]!;
        const middle = segnoOfName(middleName, segmentSizeBytes);
        const all = await records();
        const result = await readWalRange(
          memorySource(withoutSegment(middle)),
          1,
          segmentSizeBytes,
          startLsn,
          all.at(-1)!.lsn,
        );
        const crossing = all.find(
          (record) =>
            record.lsn / segmentSize < middle && (record.endLsn - 1n) / segmentSize === middle,
        )!;
        expect(result).toEqual({
          ok: false,
          reachedLsn: crossing.lsn,
          reason: `missing segment ${middleName}`,
        });
      });
    });

    describe('findRecordAtOrAfter', () => {
      it('moves a segment-boundary LSN to the first record after the continuation, and finds nothing past the end', async () => {
        const cross = manifest.messages.find((message) => message.role === 'cross-segment')!;
        const crossEnd = parseLsn(cross.endLsn);
        const boundary = (crossEnd / segmentSize) * segmentSize;
        expect(await findRecordAtOrAfter(source, 1, segmentSizeBytes, boundary)).toBe(crossEnd);
        const last = (await records()).at(-1)!;
        expect(await findRecordAtOrAfter(source, 1, segmentSizeBytes, last.endLsn)).toBeNull();
      });
    });

    describe('scanRecoveryTarget', () => {
      it('reaches a target xid at its commit, also given as a 64-bit xid with an epoch', async () => {
        const commit = await completionRecord(manifest.commit.xid);
        expect(
          await scanRecoveryTarget(source, 1, segmentSizeBytes, startLsn, {
            xid: BigInt(manifest.commit.xid),
          }),
        ).toEqual({
          reached: true,
          lastTime: wholeSecondsOf(manifest.commit.timestampUtc),
          lastXid: manifest.commit.xid,
          lastLsn: commit.lsn,
        });
        const twoPhase = await completionRecord(manifest.twoPhase.xid);
        const byFullXid = await scanRecoveryTarget(source, 1, segmentSizeBytes, startLsn, {
          xid: (1n << 32n) | BigInt(manifest.twoPhase.xid),
        });
        expect(byFullXid).toMatchObject({
          reached: true,
          lastLsn: twoPhase.lsn,
          lastTime: wholeSecondsOf(manifest.twoPhase.timestampUtc),
        });
      });

      it('reaches a target time at the first commit at or after it, to the microsecond', async () => {
        const twoPhase = await completionRecord(manifest.twoPhase.xid);
        const twoPhaseMicros = BigInt(manifest.twoPhase.timestampTzMicros);
        const atTime = await scanRecoveryTarget(source, 1, segmentSizeBytes, startLsn, {
          time: timestampTzToUnixSeconds(twoPhaseMicros),
        });
        expect(atTime).toMatchObject({ reached: true, lastLsn: twoPhase.lsn });
        const justAfter = await scanRecoveryTarget(source, 1, segmentSizeBytes, startLsn, {
          time: timestampTzToUnixSeconds(twoPhaseMicros + 1n),
        });
        const laterCommit = (await records()).find((record) => {
          const completion = parseXactCompletion(record, major);
          return completion !== undefined && completion.timeTz > twoPhaseMicros;
        })!;
        expect(justAfter).toMatchObject({ reached: true, lastLsn: laterCommit.lsn });
        expect(laterCommit.lsn).toBeGreaterThan(twoPhase.lsn);
      });

      it('reaches a target LSN at the first record at or after it', async () => {
        const restorePoint = (await records()).find(
          (record) => parseRestorePoint(record) !== undefined,
        )!;
        const result = await scanRecoveryTarget(source, 1, segmentSizeBytes, startLsn, {
          lsn: restorePoint.lsn - 1n,
        });
        expect(result).toMatchObject({ reached: true, lastLsn: restorePoint.lsn });
      });

      it('reports how far recovery can go when WAL ends before the target', async () => {
        const all = await records();
        const lastTimed = all
          .filter((record) => walRecordTimestampTz(record) !== undefined)
          .at(-1)!;
        const lastWithXid = all.filter((record) => record.xid !== 0).at(-1)!;
        const commit = await completionRecord(manifest.commit.xid);
        const result = await scanRecoveryTarget(source, 1, segmentSizeBytes, commit.lsn, {
          time: 4_000_000_000,
          xid: 3n,
          lsn: 0xffffffffffn,
        });
        expect(result).toEqual({
          reached: false,
          lastTime: Number(walRecordTimestampTz(lastTimed)! / 1_000_000n) + 946_684_800,
          lastXid: lastWithXid.xid,
          lastLsn: all.at(-1)!.lsn,
        });
      });
    });
  },
);
