import { describe, expect, it } from 'vitest';
import { backupIdToTime } from '../../catalog/backupId.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import type { BackupStatus } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import type { TimelineHistoryEntry } from '../../format/timelineHistory.js';
import { createMemoryLogger } from '../../log.js';
import { chooseBackup } from './chooseBackup.js';
import type { ChooseBackupOptions } from './chooseBackup.js';
import { validateRecoveryTargetOptions } from './types.js';
import type { RecoveryTarget } from './types.js';

function backup(id: string, fields: Partial<CatalogBackup> = {}): CatalogBackup {
  const startTime = backupIdToTime(id);
  return {
    id,
    backupMode: 'FULL',
    stream: true,
    compressAlg: 'none',
    compressLevel: 1,
    fromReplica: false,
    blockSize: 8192,
    xlogBlockSize: 8192,
    checksumVersion: 1,
    programVersion: '2.5.16',
    serverVersion: '15',
    timelineId: 1,
    startLsn: 0n,
    stopLsn: 0n,
    startTime,
    mergeTime: 0,
    endTime: startTime + 10,
    recoveryXid: 0n,
    recoveryTime: startTime + 2,
    expireTime: 0,
    mergeDestId: undefined,
    dataBytes: 0,
    walBytes: 0,
    uncompressedBytes: 0,
    pgdataBytes: 0,
    status: 'OK',
    parentBackupId: undefined,
    primaryConninfo: undefined,
    externalDirs: undefined,
    note: undefined,
    contentCrc: 0,
    dir: `/catalog/backups/demo/${id}`,
    problems: [],
    ...fields,
  };
}

/** The fixture catalog's three backups, newest first. */
const fixture = [
  backup('TP11RT', {
    backupMode: 'PAGE',
    parentBackupId: 'TP11RH',
    recoveryXid: 730n,
    stopLsn: 0x19000b8n,
  }),
  backup('TP11RH', {
    backupMode: 'DELTA',
    parentBackupId: 'TP11R6',
    recoveryXid: 729n,
    stopLsn: 0x1600168n,
  }),
  backup('TP11R6', { recoveryXid: 728n, stopLsn: 0x1300168n }),
];

async function choose(
  target: RecoveryTarget,
  overrides: Partial<ChooseBackupOptions> = {},
): Promise<{ id: string; warnings: string[] }> {
  const logger = createMemoryLogger();
  const chosen = await chooseBackup({
    backups: fixture,
    backupId: undefined,
    target,
    parsedTarget: validateRecoveryTargetOptions(target),
    noValidate: false,
    force: false,
    readTargetHistory: () => Promise.reject(new Error('no history expected')),
    logger,
    ...overrides,
  });
  return {
    id: chosen.id,
    warnings: logger.records.filter((r) => r.level === 'WARNING').map((r) => r.message),
  };
}

async function failure(
  target: RecoveryTarget,
  overrides: Partial<ChooseBackupOptions> = {},
): Promise<string> {
  try {
    await choose(target, overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return (error as StrataError).message;
  }
  throw new Error('expected an error');
}

function withStatus(status: BackupStatus): CatalogBackup[] {
  return [{ ...fixture[0]!, status }, fixture[1]!, fixture[2]!];
}

describe('chooseBackup', () => {
  it('takes the newest backup without target and the one named by -i', async () => {
    expect((await choose({})).id).toBe('TP11RT');
    expect((await choose({}, { backupId: 'tp11rh' })).id).toBe('TP11RH');
  });

  it('takes the newest backup ending before the xid, time or lsn target', async () => {
    expect((await choose({ xid: '729' })).id).toBe('TP11RH');
    expect((await choose({ lsn: '0/1600168' })).id).toBe('TP11RH');
    expect((await choose({ lsn: '0/1600167' })).id).toBe('TP11R6');
    const rhRecoveryTime = fixture[1]!.recoveryTime;
    const iso = new Date(rhRecoveryTime * 1000)
      .toISOString()
      .replace('T', ' ')
      .replace('.000Z', '+00');
    expect((await choose({ time: iso })).id).toBe('TP11RH');
    expect(await failure({ xid: '100' })).toBe('Backup satisfying target options is not found.');
  });

  it('refuses a named backup that does not satisfy the target, or that does not exist', async () => {
    expect(await failure({ xid: '729' }, { backupId: 'TP11RT' })).toBe(
      'Requested backup TP11RT does not satisfy restore options',
    );
    expect(await failure({}, { backupId: 'TP11RA' })).toBe('Requested backup TP11RA is not found.');
  });

  it('skips backups that are not OK/DONE unless named, then warns and relies on re-validation', async () => {
    const corrupt = withStatus('CORRUPT');
    const skipped = await choose({}, { backups: corrupt });
    expect(skipped).toEqual({
      id: 'TP11RH',
      warnings: ['Skipping backup TP11RT, because it has non-valid status: CORRUPT'],
    });
    const named = await choose({}, { backups: corrupt, backupId: 'TP11RT' });
    expect(named).toEqual({ id: 'TP11RT', warnings: ['Backup TP11RT has status: CORRUPT'] });
    expect(await failure({}, { backups: corrupt, backupId: 'TP11RT', noValidate: true })).toBe(
      'Backup TP11RT has status: CORRUPT',
    );
    expect(
      (await choose({}, { backups: corrupt, backupId: 'TP11RT', noValidate: true, force: true }))
        .id,
    ).toBe('TP11RT');
    expect(await failure({}, { backups: withStatus('ERROR'), backupId: 'TP11RT' })).toBe(
      'Backup TP11RT has status: ERROR',
    );
  });

  it('keeps only backups on the target timeline history', async () => {
    // Timeline 2 left timeline 1 at 0/1700000: TP11RT (stop 0/19000B8 on tli 1) is not on it.
    const history: TimelineHistoryEntry[] = [
      { timelineId: 1, switchLsn: 0x1700000n, reason: 'no recovery target specified' },
    ];
    const readTargetHistory = (tli: number) => {
      expect(tli).toBe(2);
      return Promise.resolve(history);
    };
    expect((await choose({ timeline: '2' }, { readTargetHistory })).id).toBe('TP11RH');
    expect(await failure({ timeline: '2' }, { readTargetHistory, backupId: 'TP11RT' })).toBe(
      'Target backup TP11RT does not satisfy target timeline',
    );
    const onTimeline2 = [{ ...fixture[0]!, timelineId: 2 }, fixture[1]!, fixture[2]!];
    expect((await choose({ timeline: '2' }, { readTargetHistory, backups: onTimeline2 })).id).toBe(
      'TP11RT',
    );
  });
});
