import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import {
  createSyntheticInstance,
  writeSyntheticBackup,
  writeSyntheticHistory,
  writeSyntheticSegments,
} from '../../testing/catalogBuilder.js';
import type { CommandContext } from '../context.js';
import { deleteInstance } from './delInstance.js';

let catalogPath: string;
let logger: ReturnType<typeof createMemoryLogger>;
let ctx: CommandContext;

beforeEach(() => {
  catalogPath = mkdtempSync(join(tmpdir(), 'strata-del-instance-'));
  createSyntheticInstance(catalogPath, 'gone');
  createSyntheticInstance(catalogPath, 'stays');
  logger = createMemoryLogger();
  ctx = { storage: new LocalStorage(), logger, now: () => Date.now() };
});

afterEach(() => rmSync(catalogPath, { recursive: true, force: true }));

describe('del-instance', () => {
  it('removes every backup, the archive and the configuration, and nothing of other instances', async () => {
    const full = writeSyntheticBackup(catalogPath, 'gone', { startTime: 1_800_000_000 });
    writeSyntheticBackup(catalogPath, 'gone', {
      startTime: 1_800_000_100,
      backupMode: 'DELTA',
      parentBackupId: full.id,
    });
    writeSyntheticSegments(catalogPath, 'gone', { timelineId: 1, fromSegno: 1, toSegno: 3 });
    writeSyntheticHistory(catalogPath, 'gone', 2, [{ timelineId: 1, switchLsn: 0x2000000n }]);
    const other = writeSyntheticBackup(catalogPath, 'stays', { startTime: 1_800_000_000 });
    await deleteInstance(ctx, { backupPath: catalogPath, instance: 'gone' });
    expect(readdirSync(join(catalogPath, 'backups'))).toEqual(['stays']);
    expect(readdirSync(join(catalogPath, 'wal'))).toEqual(['stays']);
    expect(existsSync(other.dir)).toBe(true);
    expect(logger.records.at(-1)!.message).toBe("Instance 'gone' successfully deleted");
  });

  it('finishes the job when an earlier run was interrupted after the backups were gone', async () => {
    writeSyntheticSegments(catalogPath, 'gone', { timelineId: 1, fromSegno: 1, toSegno: 2 });
    rmSync(join(catalogPath, 'backups', 'gone', 'pg_probackup.conf'));
    await deleteInstance(ctx, { backupPath: catalogPath, instance: 'gone' });
    expect(readdirSync(join(catalogPath, 'backups'))).toEqual(['stays']);
  });

  it('refuses an instance that does not exist', async () => {
    await expect(
      deleteInstance(ctx, { backupPath: catalogPath, instance: 'nope' }),
    ).rejects.toThrow("Instance 'nope' does not exist in this backup catalog");
  });
});
