import { describe, expect, it } from 'vitest';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { createMemoryLogger } from '../../log.js';
import { DAY_SEC, syntheticBackup } from '../../testing/catalogBuilder.js';
import type { SyntheticBackup } from '../../testing/catalogBuilder.js';
import { evaluateRetention } from './retention.js';
import type { RetentionPolicy } from './retention.js';

process.env.TZ = 'UTC';

/** "Today" of the scenarios: 2026-12-01 12:00:00 UTC. */
const NOW = Date.UTC(2026, 11, 1, 12) / 1000;

/** A backup whose recovery point is `daysAgo` days before NOW (start a minute earlier). */
function at(daysAgo: number, fields: Partial<SyntheticBackup> = {}): CatalogBackup {
  const recoveryTime = NOW - daysAgo * DAY_SEC;
  return syntheticBackup({ startTime: recoveryTime - 60, recoveryTime, ...fields });
}

function incremental(
  daysAgo: number,
  parent: CatalogBackup,
  fields: Partial<SyntheticBackup> = {},
) {
  return at(daysAgo, {
    backupMode: 'DELTA',
    parentBackupId: parent.id,
    timelineId: parent.timelineId,
    ...fields,
  });
}

function newestFirst(backups: CatalogBackup[]): CatalogBackup[] {
  return [...backups].sort((a, b) => b.startTime - a.startTime);
}

function evaluate(backups: CatalogBackup[], policy: RetentionPolicy) {
  const logger = createMemoryLogger();
  const plan = evaluateRetention(newestFirst(backups), policy, NOW, logger);
  return {
    expired: plan.expired.map((backup) => backup.id),
    keep: plan.keep.map((backup) => backup.id),
    lines: logger.records.map((record) => `${record.level}: ${record.message}`),
  };
}

describe('evaluateRetention: the worked example of cli-behaviour.md §9.3', () => {
  // A FULL (D-20) <- B PAGE (D-10) <- C PAGE (D-3), and E FULL (D-30).
  const E = at(30);
  const A = at(20);
  const B = incremental(10, A, { backupMode: 'PAGE' });
  const C = incremental(3, B, { backupMode: 'PAGE' });

  it('window 7 days: E, A and B expire; C is kept while its parent B expired', () => {
    const result = evaluate([A, B, C, E], { redundancy: 0, windowDays: 7 });
    expect(result.expired).toEqual([B.id, A.id, E.id]);
    expect(result.keep).toEqual([C.id]);
    expect(result.lines).toEqual([
      'INFO: Evaluate backups by retention',
      `VERBOSE: Mark backup ${E.id} for purge.`,
      `VERBOSE: Mark backup ${A.id} for purge.`,
      `VERBOSE: Mark backup ${B.id} for purge.`,
      `INFO: Backup ${C.id}, mode: PAGE, status: OK. Redundancy: 1/0, Time Window: 3d/7d. Active`,
      `INFO: Backup ${B.id}, mode: PAGE, status: OK. Redundancy: 1/0, Time Window: 10d/7d. Expired`,
      `INFO: Backup ${A.id}, mode: FULL, status: OK. Redundancy: 1/0, Time Window: 20d/7d. Expired`,
      `INFO: Backup ${E.id}, mode: FULL, status: OK. Redundancy: 2/0, Time Window: 30d/7d. Expired`,
    ]);
  });

  it('redundancy 1: the newest valid FULL A keeps its chain; E expires', () => {
    const result = evaluate([A, B, C, E], { redundancy: 1, windowDays: 0 });
    expect(result.expired).toEqual([E.id]);
    expect(result.keep).toEqual([]);
    expect(result.lines.at(-1)).toBe(
      `INFO: Backup ${E.id}, mode: FULL, status: OK. Redundancy: 2/1, Time Window: 30d/0d. Expired`,
    );
  });
});

describe('evaluateRetention: redundancy', () => {
  it('redundancy 2 keeps the two newest valid FULL chains and every newer invalid FULL', () => {
    const f1 = at(40);
    const f1d = incremental(39, f1);
    const f2 = at(30);
    const f3 = at(20, { status: 'CORRUPT' });
    const f4 = at(10);
    const f4d = incremental(9, f4);
    const result = evaluate([f1, f1d, f2, f3, f4, f4d], { redundancy: 2, windowDays: 0 });
    // f4 and f2 are the two valid FULLs; the CORRUPT f3 between them is in the list too.
    expect(result.expired).toEqual([f1d.id, f1.id]);
    expect(result.keep).toEqual([]);
  });

  it('an ERROR or CORRUPT FULL does not count toward redundancy and expires with its chain', () => {
    const good = at(20);
    const bad = at(10, { status: 'ERROR' });
    const badChild = incremental(9, bad, { status: 'ORPHAN' });
    const result = evaluate([good, bad, badChild], { redundancy: 1, windowDays: 0 });
    // The list holds bad (newer, invalid) and good (the first valid one): nothing expires.
    expect(result.expired).toEqual([]);
    const older = at(30);
    const again = evaluate([older, good, bad, badChild], { redundancy: 1, windowDays: 0 });
    expect(again.expired).toEqual([older.id]);
  });
});

describe('evaluateRetention: window and redundancy together', () => {
  it('a backup expires only when outside the window and outside redundancy', () => {
    const f1 = at(30);
    const f2 = at(20);
    const f3 = at(10);
    const f4 = at(2);
    // Window 5 days keeps f4; redundancy 2 keeps f4 and f3.
    const both = evaluate([f1, f2, f3, f4], { redundancy: 2, windowDays: 5 });
    expect(both.expired).toEqual([f2.id, f1.id]);
    // Window 15 days keeps f4 and f3; redundancy 3 keeps f2 too.
    const wider = evaluate([f1, f2, f3, f4], { redundancy: 3, windowDays: 15 });
    expect(wider.expired).toEqual([f1.id]);
  });
});

describe('evaluateRetention: pinned backups', () => {
  it('a pinned FULL never expires and shows its pin length as the window', () => {
    const pinned = at(40, { expireTime: NOW + 5 * DAY_SEC });
    const newer = at(1);
    const result = evaluate([pinned, newer], { redundancy: 1, windowDays: 7 });
    expect(result.expired).toEqual([]);
    expect(result.lines).toContain(
      `LOG: Backup ${pinned.id} is pinned until '2026-12-06 12:00:00+00', retain`,
    );
    expect(result.lines).toContain(
      `INFO: Backup ${pinned.id}, mode: FULL, status: OK. Redundancy: 2/1, Time Window: 40d/45d. Active`,
    );
  });

  it('an expired pin no longer protects the backup', () => {
    const unpinned = at(40, { expireTime: NOW - 1 });
    const result = evaluate([unpinned, at(1)], { redundancy: 0, windowDays: 7 });
    expect(result.expired).toEqual([unpinned.id]);
  });

  it('a pinned incremental keeps its expired ancestors (it enters the keep list)', () => {
    const full = at(30);
    const d1 = incremental(25, full);
    const d2 = incremental(20, d1, { expireTime: NOW + DAY_SEC });
    const d3 = incremental(15, d2);
    const result = evaluate([full, d1, d2, d3], { redundancy: 0, windowDays: 7 });
    expect(result.expired).toEqual([d3.id, d1.id, full.id]);
    expect(result.keep).toEqual([d2.id]);
  });
});

describe('evaluateRetention: a chain spanning the window', () => {
  it('expires the part before the window and keeps its oldest member inside it', () => {
    const full = at(10);
    const d1 = incremental(8, full);
    const d2 = incremental(6, d1);
    const d3 = incremental(2, d2);
    const result = evaluate([full, d1, d2, d3], { redundancy: 0, windowDays: 7 });
    expect(result.expired).toEqual([d1.id, full.id]);
    expect(result.keep).toEqual([d2.id]);
  });

  it('an orphan (its parent missing) is never in the keep list', () => {
    const full = at(10);
    const orphan = at(3, { backupMode: 'DELTA', parentBackupId: 'ZZZZZZ', status: 'ORPHAN' });
    const result = evaluate([full, orphan], { redundancy: 1, windowDays: 0 });
    expect(result.expired).toEqual([orphan.id]);
    expect(result.keep).toEqual([]);
    expect(result.lines).toContain('WARNING: Backup ZZZZZZ is missing');
  });

  it('a backup without a recovery time is judged by its start time', () => {
    const failed = at(3, { status: 'ERROR', recoveryTime: 0 });
    const result = evaluate([at(20), failed], { redundancy: 0, windowDays: 7 });
    expect(result.expired).toHaveLength(1);
    expect(result.lines).toContain(
      `INFO: Backup ${failed.id}, mode: FULL, status: ERROR. Redundancy: 1/0, Time Window: 0d/7d. Active`,
    );
  });
});
