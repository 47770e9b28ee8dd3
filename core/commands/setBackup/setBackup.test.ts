import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import {
  DAY_SEC,
  createSyntheticInstance,
  writeSyntheticBackup,
} from '../../testing/catalogBuilder.js';
import type { CommandContext } from '../context.js';
import { setBackup } from './setBackup.js';
import type { SetBackupParams } from './setBackup.js';

process.env.TZ = 'UTC';

const NOW = Date.UTC(2026, 11, 1, 12) / 1000;
const INSTANCE = 'main';
let catalogPath: string;
let logger: ReturnType<typeof createMemoryLogger>;
let ctx: CommandContext;
let target: CatalogBackup;

beforeEach(() => {
  catalogPath = mkdtempSync(join(tmpdir(), 'strata-set-backup-'));
  createSyntheticInstance(catalogPath, INSTANCE);
  logger = createMemoryLogger();
  ctx = { storage: new LocalStorage(), logger, now: () => NOW * 1000 };
  target = writeSyntheticBackup(catalogPath, INSTANCE, {
    startTime: NOW - 3 * DAY_SEC,
    recoveryTime: Date.UTC(2026, 10, 28, 12, 0, 30) / 1000,
  });
});

afterEach(() => rmSync(catalogPath, { recursive: true, force: true }));

function run(fields: Partial<SetBackupParams>) {
  return setBackup(ctx, {
    backupPath: catalogPath,
    instance: INSTANCE,
    backupId: target.id,
    ...fields,
  });
}

function control(): string {
  return readFileSync(join(target.dir, 'backup.control'), 'utf8');
}

function lines(): string[] {
  return logger.records.map((record) => `${record.level}: ${record.message}`);
}

describe('set-backup', () => {
  it('--ttl pins until recovery-time + ttl', async () => {
    await run({ ttlSec: 7 * DAY_SEC });
    expect(control()).toContain("expire-time = '2026-12-05 12:00:30+00'");
    expect(lines()).toEqual([`INFO: Backup ${target.id} is pinned until '2026-12-05 12:00:30+00'`]);
  });

  it('--expire-time pins until that time; --ttl=0 unpins; unpinning twice warns', async () => {
    await run({ expireTimeSec: Date.UTC(2027, 0, 1) / 1000 });
    expect(control()).toContain("expire-time = '2027-01-01 00:00:00+00'");
    await run({ ttlSec: 0 });
    expect(control()).not.toContain('expire-time');
    await run({ ttlSec: 0 });
    expect(lines().slice(1)).toEqual([
      `INFO: Backup ${target.id} is unpinned`,
      `WARNING: Backup ${target.id} is not pinned, nothing to unpin`,
    ]);
  });

  it('--note keeps the first line; --note=none removes it', async () => {
    await run({ note: "before 'upgrade'\nsecond line" });
    expect(control()).toContain("note = 'before ''upgrade'''");
    await run({ note: 'NONE' });
    expect(control()).not.toContain('note');
    expect(lines()).toEqual([
      `INFO: Adding note to backup ${target.id}: 'before 'upgrade''`,
      `INFO: Removing note from backup ${target.id}`,
    ]);
  });

  it('keeps every other key of backup.control as it was', async () => {
    const before = control();
    await run({ note: 'n' });
    // `note` is written after `status` (the synthetic file list is empty: no content-crc line).
    expect(control()).toBe(`${before}note = 'n'\n`);
  });

  it.each([
    [
      { backupId: undefined },
      "You must specify parameter (-i, --backup-id) for 'set-backup' command",
    ],
    [{}, "Nothing to set by 'set-backup' command"],
    [
      { ttlSec: 10, expireTimeSec: NOW },
      "You cannot specify '--expire-time' and '--ttl' options together",
    ],
    [{ backupId: 'SZZZZZ', note: 'x' }, 'Failed to find backup SZZZZZ'],
    [{ note: 'x'.repeat(1025) }, 'Backup note cannot exceed 1024 bytes'],
  ])('%o is refused', async (fields, message) => {
    await expect(run(fields)).rejects.toThrow(message);
  });

  it('refuses to pin a backup without a recovery time', async () => {
    const text = control().replace(/recovery-time = .*\n/, '');
    writeFileSync(join(target.dir, 'backup.control'), text);
    await expect(run({ ttlSec: 60 })).rejects.toThrow(
      `Failed to set 'expire-time' for backup ${target.id}: invalid 'recovery-time'`,
    );
  });
});
