import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import {
  createSyntheticInstance,
  lsnIn,
  writeSyntheticBackup,
  writeSyntheticHistory,
  writeSyntheticSegments,
} from '../../testing/catalogBuilder.js';
import { probackupFixtureDir } from '../../testing/pgBinaries.js';
import type { CommandContext } from '../context.js';
import { showArchive } from './showArchive.js';

// The fixture's show-archive.json was printed with TZ=UTC; show prints local time.
process.env.TZ = 'UTC';

const NOW_MS = Date.UTC(2026, 11, 1, 12);

function context() {
  const logger = createMemoryLogger();
  const ctx: CommandContext = { storage: new LocalStorage(), logger, now: () => NOW_MS };
  return { ctx, logger };
}

describe('show --archive on the pg_probackup 2.5.16 fixture', () => {
  const backupPath = join(probackupFixtureDir, 'catalog');

  it('prints the JSON byte for byte as pg_probackup did', async () => {
    const { ctx } = context();
    const text = await showArchive(ctx, { backupPath, instance: 'demo', format: 'json' });
    expect(text).toBe(readFileSync(join(probackupFixtureDir, 'show-archive.json'), 'utf8'));
  });

  it('prints the plain table of cli-behaviour.md §4.5', async () => {
    const { ctx, logger } = context();
    const text = await showArchive(ctx, { backupPath, instance: 'demo', format: 'plain' });
    expect(text).toBe(
      [
        '',
        "ARCHIVE INSTANCE 'demo'",
        '='.repeat(129),
        ' TLI  Parent TLI  Switchpoint  Min Segno                 Max Segno                 N segments  Size    Zratio  N backups  Status ',
        '='.repeat(129),
        ' 1    0           0/0          000000010000000000000008  00000001000000000000001B  20          4308kB  4.75    3          OK     ',
        '',
      ].join('\n'),
    );
    // The three .backup files are not segments, and not unexpected either.
    expect(logger.records.filter((record) => record.level === 'WARNING')).toEqual([]);
  });

  it('reports every instance of the catalog without --instance', async () => {
    const { ctx } = context();
    const text = await showArchive(ctx, { backupPath, format: 'json' });
    expect(JSON.parse(text).map((entry: { instance: string }) => entry.instance)).toEqual(['demo']);
  });
});

describe('show --archive: timelines, lost segments, closest backup', () => {
  let catalogPath: string;
  const instance = 'forked';

  beforeEach(() => {
    catalogPath = mkdtempSync(join(tmpdir(), 'strata-show-archive-'));
    createSyntheticInstance(catalogPath, instance);
  });

  afterEach(() => rmSync(catalogPath, { recursive: true, force: true }));

  function timelinesJson(text: string) {
    return JSON.parse(text)[0].timelines as Array<Record<string, unknown>>;
  }

  it('lists both timelines of a fork with parent, switch point and the backup to reach the child from', async () => {
    const base = Date.UTC(2026, 10, 1) / 1000;
    const full = writeSyntheticBackup(catalogPath, instance, {
      startTime: base,
      startLsn: lsnIn(2),
      stopLsn: lsnIn(2, 0x3100),
    });
    const later = writeSyntheticBackup(catalogPath, instance, {
      startTime: base + 100,
      startLsn: lsnIn(6),
      stopLsn: lsnIn(6, 0x3100),
    });
    const onChild = writeSyntheticBackup(catalogPath, instance, {
      startTime: base + 200,
      timelineId: 2,
      startLsn: lsnIn(7),
      stopLsn: lsnIn(7, 0x3100),
      status: 'CORRUPT',
    });
    writeSyntheticSegments(catalogPath, instance, {
      timelineId: 1,
      fromSegno: 1,
      toSegno: 8,
      sizeBytes: 1000,
    });
    writeSyntheticHistory(catalogPath, instance, 2, [
      { timelineId: 1, switchLsn: lsnIn(5, 0x1a0) },
    ]);
    writeSyntheticSegments(catalogPath, instance, {
      timelineId: 2,
      fromSegno: 5,
      toSegno: 8,
      gz: true,
    });
    writeFileSync(join(catalogPath, 'wal', instance, '000000010000000000000005.partial'), 'p');

    const { ctx, logger } = context();
    const timelines = timelinesJson(
      await showArchive(ctx, { backupPath: catalogPath, instance, format: 'json' }),
    );
    expect(timelines.map((timeline) => timeline['tli'])).toEqual([2, 1]);
    expect(timelines[0]).toMatchObject({
      tli: 2,
      'parent-tli': 1,
      switchpoint: '0/5001A0',
      'min-segno': '000000020000000000000005',
      'max-segno': '000000020000000000000008',
      'n-segments': 4,
      size: 400,
      // The closest backup stopped before the switch point: not `later` (it stopped after it).
      'closest-backup-id': full.id,
      status: 'OK',
      'lost-segments': [],
    });
    expect((timelines[0]!['backups'] as Array<{ id: string }>).map((backup) => backup.id)).toEqual([
      onChild.id,
    ]);
    expect(timelines[1]).toMatchObject({
      tli: 1,
      'parent-tli': 0,
      switchpoint: '0/0',
      'n-segments': 8,
      size: 8000,
      zratio: 1048.58,
      'closest-backup-id': '',
    });
    expect((timelines[1]!['backups'] as Array<{ id: string }>).map((backup) => backup.id)).toEqual([
      later.id,
      full.id,
    ]);
    expect(logger.records.filter((record) => record.level === 'WARNING')).toEqual([]);

    const plain = await showArchive(ctx, { backupPath: catalogPath, instance, format: 'plain' });
    expect(plain.split('\n')).toEqual([
      '',
      "ARCHIVE INSTANCE 'forked'",
      '='.repeat(130),
      ' TLI  Parent TLI  Switchpoint  Min Segno                 Max Segno                 N segments  Size   Zratio    N backups  Status ',
      '='.repeat(130),
      ' 2    1           0/5001A0     000000020000000000000005  000000020000000000000008  4           400B   10485.76  1          OK     ',
      ' 1    0           0/0          000000010000000000000001  000000010000000000000008  8           8000B  1048.58   2          OK     ',
      '',
    ]);
  });

  it('reports removed segments as lost and the timeline as DEGRADED', async () => {
    writeSyntheticSegments(catalogPath, instance, { timelineId: 1, fromSegno: 3, toSegno: 12 });
    rmSync(join(catalogPath, 'wal', instance, '000000010000000000000005'));
    rmSync(join(catalogPath, 'wal', instance, '000000010000000000000008'));
    rmSync(join(catalogPath, 'wal', instance, '000000010000000000000009'));
    // A segment present both plain and compressed is no gap.
    writeFileSync(join(catalogPath, 'wal', instance, '00000001000000000000000A.gz'), 'z');
    const { ctx } = context();
    const [timeline] = timelinesJson(
      await showArchive(ctx, { backupPath: catalogPath, instance, format: 'json' }),
    );
    expect(timeline).toMatchObject({
      'min-segno': '000000010000000000000003',
      'max-segno': '00000001000000000000000C',
      'n-segments': 8,
      status: 'DEGRADED',
      'lost-segments': [
        { 'begin-segno': '000000010000000000000005', 'end-segno': '000000010000000000000005' },
        { 'begin-segno': '000000010000000000000008', 'end-segno': '000000010000000000000009' },
      ],
    });
    const plain = await showArchive(ctx, { backupPath: catalogPath, instance, format: 'plain' });
    expect(plain).toContain('DEGRADED');
  });

  it('warns about unexpected names and a damaged history file, and still reports', async () => {
    writeSyntheticSegments(catalogPath, instance, { timelineId: 1, fromSegno: 1, toSegno: 2 });
    writeSyntheticSegments(catalogPath, instance, { timelineId: 2, fromSegno: 2, toSegno: 2 });
    writeFileSync(
      join(catalogPath, 'wal', instance, '00000002.history'),
      '1\t0/2000000\tok\n2\t0/3000000\tbad\n',
    );
    writeFileSync(join(catalogPath, 'wal', instance, 'notes.txt'), 'x');
    writeFileSync(join(catalogPath, 'wal', instance, '000000010000000000000003.bz2'), 'x');
    const { ctx, logger } = context();
    const timelines = timelinesJson(
      await showArchive(ctx, { backupPath: catalogPath, instance, format: 'json' }),
    );
    expect(timelines.map((timeline) => [timeline['tli'], timeline['parent-tli']])).toEqual([
      [2, 0],
      [1, 0],
    ]);
    const warnings = logger.records
      .filter((record) => record.level === 'WARNING')
      .map((record) => record.message);
    expect(warnings).toEqual([
      'unexpected WAL file name "000000010000000000000003.bz2"',
      expect.stringMatching(
        /^Invalid data in timeline history file 00000002\.history: timeline IDs must be less than the file's own timeline 2, found 2\. \(".*00000002\.history"\); the file is disregarded$/,
      ),
      'unexpected WAL file name "notes.txt"',
    ]);
  });

  it('prints an instance without WAL as an empty table / an empty timeline list', async () => {
    const { ctx } = context();
    expect(await showArchive(ctx, { backupPath: catalogPath, instance, format: 'json' })).toBe(
      '[\n    {\n        "instance": "forked",\n        "timelines": [\n        ]\n    }\n]\n',
    );
    const plain = await showArchive(ctx, { backupPath: catalogPath, instance, format: 'plain' });
    expect(plain.split('\n')).toHaveLength(6);
  });
});
