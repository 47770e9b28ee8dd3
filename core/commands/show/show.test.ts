import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probackupFixtureDir } from '../../testing/pgBinaries.js';
import { BackupCatalog } from '../../catalog/catalog.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import type { CommandContext } from '../context.js';
import { renderBackupTable } from './backupTable.js';
import { showBackups } from './show.js';
import { renderShowJson } from './showJson.js';

// The fixture's show.json was printed with TZ=UTC (its times end in +00); show prints local time.
process.env.TZ = 'UTC';

const fixtureRoot = probackupFixtureDir;
const fixtureCatalog = join(fixtureRoot, 'catalog');
const storage = new LocalStorage();

function context(nowMs = Date.UTC(2026, 10, 25)) {
  const logger = createMemoryLogger();
  const ctx: CommandContext = { storage, logger, now: () => nowMs };
  return { ctx, logger };
}

async function fixtureBackups(): Promise<CatalogBackup[]> {
  return new BackupCatalog(storage, fixtureCatalog).listBackups('demo');
}

describe('renderShowJson', () => {
  it('prints the fixture catalog byte for byte as pg_probackup 2.5.16 did', async () => {
    const expected = readFileSync(join(fixtureRoot, 'show.json'), 'utf8');
    const text = renderShowJson([{ instance: 'demo', backups: await fixtureBackups() }]);
    expect(JSON.parse(text)).toEqual(JSON.parse(expected));
    expect(text).toBe(expected);
  });

  it('gives parent-tli 0 when the parent is not in the listing', async () => {
    const incremental = (await fixtureBackups()).find((backup) => backup.id === 'TP11RT')!;
    const parsed = JSON.parse(renderShowJson([{ instance: 'demo', backups: [incremental] }]));
    expect(parsed[0].backups[0]['parent-tli']).toBe(0);
    expect(parsed[0].backups[0]['parent-backup-id']).toBe('TP11RH');
  });

  it('writes an empty array of instances as pg_probackup does', () => {
    expect(renderShowJson([])).toBe('[\n]\n');
    expect(renderShowJson([{ instance: 'x', backups: [] }])).toBe(
      '[\n    {\n        "instance": "x",\n        "backups": [\n        ]\n    }\n]\n',
    );
  });
});

describe('renderBackupTable', () => {
  const cell = (value: string, width: number, right = false) =>
    ` ${right ? value.padStart(width) : value.padEnd(width)} `;
  // Column widths of the fixture table: max(header, longest value).
  const widths = [8, 7, 6, 22, 5, 8, 3, 4, 6, 6, 6, 9, 9, 6];
  const rightAligned = [7, 8, 9, 10];
  const line = (values: string[]) =>
    values.map((value, i) => cell(value, widths[i]!, rightAligned.includes(i))).join('') + '\n';

  it('frames the header with = lines and pads every column to its width', async () => {
    const lines = renderBackupTable(
      { instance: 'demo', backups: await fixtureBackups() },
      { nowMs: 0 },
    ).split('\n');
    expect(lines[0]).toBe('='.repeat(133));
    expect(lines[1] + '\n').toBe(
      ' Instance  Version  ID      Recovery Time           Mode   WAL Mode  TLI  Time    Data     WAL  Zratio  Start LSN  Stop LSN   Status \n',
    );
    expect(lines[2]).toBe('='.repeat(133));
    expect(lines.length).toBe(7);
    expect(lines[6]).toBe('');
  });

  it('lists backups newest first with pg_probackup cell values', async () => {
    const backups = (await fixtureBackups()).reverse();
    const lines = renderBackupTable({ instance: 'demo', backups }, { nowMs: 0 }).split('\n');
    expect(lines[3] + '\n').toBe(
      line([
        'demo',
        '15',
        'TP11RT',
        '2026-11-24 22:14:19+00',
        'PAGE',
        'STREAM',
        '1/1',
        '11s',
        '179kB',
        '2048kB',
        '1.00',
        '0/1800028',
        '0/19000B8',
        'OK',
      ]),
    );
    expect(lines[4] + '\n').toBe(
      line([
        'demo',
        '15',
        'TP11RH',
        '2026-11-24 22:14:06+00',
        'DELTA',
        'STREAM',
        '1/1',
        '10s',
        '1074kB',
        '1024kB',
        '1.40',
        '0/1600028',
        '0/1600168',
        'OK',
      ]),
    );
    expect(lines[5] + '\n').toBe(
      line([
        'demo',
        '15',
        'TP11R6',
        '2026-11-24 22:13:56+00',
        'FULL',
        'STREAM',
        '1/0',
        '10s',
        '13MB',
        '1024kB',
        '2.92',
        '0/1300028',
        '0/1300168',
        'OK',
      ]),
    );
  });

  it('times a RUNNING backup from its start to now and shows ---- without an end', async () => {
    const full = (await fixtureBackups()).find((backup) => backup.id === 'TP11R6')!;
    const running: CatalogBackup = { ...full, status: 'RUNNING', endTime: 0, recoveryTime: 0 };
    const text = renderBackupTable(
      { instance: 'demo', backups: [running] },
      { nowMs: (full.startTime + 125) * 1000 },
    );
    const row = text.split('\n')[3]!;
    expect(row).toContain(' 2m:5s ');
    expect(row).toContain(' ---- ');
    const error: CatalogBackup = { ...full, status: 'ERROR', endTime: 0 };
    const errorRow = renderBackupTable({ instance: 'demo', backups: [error] }, { nowMs: 0 }).split(
      '\n',
    )[3]!;
    expect(errorRow.split(/ {2,}/)).toContain('----');
  });
});

describe('showBackups', () => {
  let root: string;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'strata-show-'));
  });

  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('prints the JSON of one instance and of the whole catalog', async () => {
    const { ctx } = context();
    const expected = JSON.parse(readFileSync(join(fixtureRoot, 'show.json'), 'utf8'));
    const one = await showBackups(ctx, {
      backupPath: fixtureCatalog,
      instance: 'demo',
      format: 'json',
    });
    const all = await showBackups(ctx, { backupPath: fixtureCatalog, format: 'json' });
    expect(JSON.parse(one)).toEqual(expected);
    expect(JSON.parse(all)).toEqual(expected);
  });

  it('names each instance before its table when showing the whole catalog', async () => {
    const { ctx } = context();
    const all = await showBackups(ctx, { backupPath: fixtureCatalog, format: 'plain' });
    const one = await showBackups(ctx, {
      backupPath: fixtureCatalog,
      instance: 'demo',
      format: 'plain',
    });
    expect(all).toBe(`\nBACKUP INSTANCE 'demo'\n${one}`);
    expect(one.startsWith('='.repeat(133) + '\n')).toBe(true);
  });

  it('shows one backup as its backup.control with local times', async () => {
    const { ctx } = context();
    const detail = await showBackups(ctx, {
      backupPath: fixtureCatalog,
      instance: 'demo',
      backupId: 'tp11r6',
      format: 'plain',
    });
    expect(detail).toBe(
      readFileSync(join(fixtureCatalog, 'backups', 'demo', 'TP11R6', 'backup.control'), 'utf8'),
    );
  });

  it('shows one backup in JSON without its parent timeline', async () => {
    const { ctx } = context();
    const text = await showBackups(ctx, {
      backupPath: fixtureCatalog,
      instance: 'demo',
      backupId: 'TP11RH',
      format: 'json',
    });
    const parsed = JSON.parse(text);
    expect(parsed).toHaveLength(1);
    expect(parsed[0].backups.map((backup: { id: string }) => backup.id)).toEqual(['TP11RH']);
    expect(parsed[0].backups[0]['parent-tli']).toBe(0);
  });

  it('reports an unknown backup ID with an INFO and prints nothing', async () => {
    const { ctx, logger } = context();
    const text = await showBackups(ctx, {
      backupPath: fixtureCatalog,
      instance: 'demo',
      backupId: 'tp11zz',
      format: 'plain',
    });
    expect(text).toBe('');
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        level: 'INFO',
        message: 'Requested backup "TP11ZZ" is not found.',
      }),
    );
    const json = await showBackups(ctx, {
      backupPath: fixtureCatalog,
      instance: 'demo',
      backupId: 'TP11ZZ',
      format: 'json',
    });
    expect(JSON.parse(json)).toEqual([{ instance: 'demo', backups: [] }]);
  });

  it('warns about a catalog without instances', async () => {
    const catalogPath = join(root, 'empty');
    await new BackupCatalog(storage, catalogPath).init();
    const { ctx, logger } = context();
    expect(await showBackups(ctx, { backupPath: catalogPath, format: 'json' })).toBe('[\n]\n');
    expect(await showBackups(ctx, { backupPath: catalogPath, format: 'plain' })).toBe('');
    expect(
      logger.records.filter((record) => record.level === 'WARNING').map((record) => record.message),
    ).toEqual([
      "This backup catalog contains no backup instances. Backup instance can be added via 'add-instance' command.",
      "This backup catalog contains no backup instances. Backup instance can be added via 'add-instance' command.",
    ]);
  });

  it('adds the tablespaces of a backup that has a tablespace_map', async () => {
    const catalogPath = join(root, 'tablespaces');
    const backupDir = join(catalogPath, 'backups', 'demo', 'TP11R6');
    mkdirSync(join(backupDir, 'database'), { recursive: true });
    cpSync(
      join(fixtureCatalog, 'backups', 'demo', 'TP11R6', 'backup.control'),
      join(backupDir, 'backup.control'),
    );
    chmodSync(join(backupDir, 'backup.control'), 0o600);
    writeFileSync(
      join(backupDir, 'database', 'tablespace_map'),
      '16390 /srv/ts b\n16389 /srv/ts a\n',
    );
    const { ctx } = context();

    const json = JSON.parse(
      await showBackups(ctx, { backupPath: catalogPath, instance: 'demo', format: 'json' }),
    );
    expect(json[0].backups[0].tablespace_map).toEqual([
      { oid: '16389', path: '/srv/ts a' },
      { oid: '16390', path: '/srv/ts b' },
    ]);
    const detail = await showBackups(ctx, {
      backupPath: catalogPath,
      instance: 'demo',
      backupId: 'TP11R6',
      format: 'plain',
    });
    expect(detail.endsWith("\ntablespace_map = '16389 /srv/ts a; 16390 /srv/ts b'\n")).toBe(true);
  });
});
