import type { ArchiveTimeline, BackupSummary } from '../../../core/api/contract.js';

/**
 * Contract-shaped values for the renderer's unit tests of pure layout and store logic. The real
 * engine's data is covered by the end-to-end tests in e2e/ui, which run against a real catalog.
 */

export function sampleBackup(fields: Partial<BackupSummary> & { id: string }): BackupSummary {
  return {
    instance: 'main',
    parentId: null,
    mode: 'FULL',
    walMode: 'STREAM',
    status: 'OK',
    timelineId: 1,
    parentTimelineId: 0,
    startLsn: '0/2000028',
    stopLsn: '0/2000100',
    startTime: 1_700_000_000,
    endTime: 1_700_000_010,
    recoveryTime: 1_700_000_008,
    recoveryXid: '740',
    dataBytes: 1000,
    walBytes: 16 << 20,
    uncompressedBytes: 1000,
    pgdataBytes: 1000,
    compressAlg: 'none',
    compressLevel: 0,
    serverVersion: '17',
    programVersion: '2.5.0',
    fromReplica: false,
    note: null,
    expireTime: null,
    ...fields,
  };
}

export function sampleTimeline(
  fields: Partial<ArchiveTimeline> & { tli: number },
): ArchiveTimeline {
  return {
    parentTli: 0,
    switchpoint: '0/0',
    minSegno: '000000010000000000000001',
    maxSegno: '000000010000000000000008',
    segmentCount: 8,
    sizeBytes: 8 << 20,
    zratio: 1,
    status: 'OK',
    lostSegments: [],
    closestBackupId: null,
    backupIds: [],
    beginLsn: '0/1000000',
    endLsn: '0/9000000',
    ...fields,
  };
}
